/*
 * diag.c - diagnostics to stderr or syslog, one line per event.
 *
 * The daemon switches to syslog when it detaches from its terminal; tools
 * and "fluxfs -f" keep stderr.  A line is written with one write() so
 * concurrent threads never interleave their messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"

static atomic_int diag_syslog;
static atomic_int diag_level = LOG_INFO;

/* Send every later line to syslog under ident. */
void diag_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&diag_syslog, 1);
}

/* Drop lines less urgent than priority. */
void diag_set_level(int priority)
{
	atomic_store(&diag_level, priority);
}

/* Log one line at priority. */
void diag(int priority, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, saved = errno;

	if (priority > atomic_load(&diag_level))
		return;
	va_start(ap, fmt);
	if (atomic_load(&diag_syslog)) {
		vsyslog(priority, fmt, ap);
		va_end(ap);
		errno = saved;
		return;
	}
	n = snprintf(line, sizeof(line), "fluxfs: ");
	n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

/* See diag.h. */
const char *diag_printable(const char *s, char *buf, size_t size)
{
	size_t i, o = 0;

	for (i = 0; s[i] && i < 64 && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
	}
	if (s[i] && o + 4 <= size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	if (size)
		buf[o < size ? o : size - 1] = '\0';
	return buf;
}
