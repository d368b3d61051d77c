/*
 * diag.h - the daemon's and tools' diagnostics: one line per notable event.
 *
 * Lines go to stderr until diag_use_syslog() is called (the daemon calls it
 * when it detaches).  Messages are lower case, no full stop, subject
 * quoted: "cannot open '%s'".  Topic/partition are named in the message.
 */
#ifndef FLUXFS_DIAG_H
#define FLUXFS_DIAG_H
#include <stddef.h>

#include <syslog.h>

void diag_use_syslog(const char *ident);
/* Lines below this syslog priority are dropped (default LOG_INFO).  Only
 * the recovery fuzzer calls it, to silence the repairs it provokes. */
void diag_set_level(int priority);
void diag(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define diag_err(...) diag(LOG_ERR, __VA_ARGS__)
#define diag_warn(...) diag(LOG_WARNING, __VA_ARGS__)
#define diag_info(...) diag(LOG_INFO, __VA_ARGS__)
#define diag_debug(...) diag(LOG_DEBUG, __VA_ARGS__)

/* s made safe for a log line, in buf: bytes outside printable ASCII (and
 * backslashes) as \xNN, at most 64 bytes of s, "..." if cut.  Returns
 * buf; DIAG_PRINTABLE_MAX bytes always suffice. */
#define DIAG_PRINTABLE_MAX (4 * 64 + 4)
const char *diag_printable(const char *s, char *buf, size_t size);

#endif
