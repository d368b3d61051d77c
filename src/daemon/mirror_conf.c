/*
 * mirror_conf.c - the pure parts of the Kafka mirror: the kafka.config
 * file, the fluxfs-offset header, partition and topic names, and where a
 * restarted export or import resumes (mirror_conf.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "mirror_conf.h"
#include "registry.h"

/* Once per exported message: digits written backwards, not snprintf
 * (its format parsing was a few per cent of the exporter's time). */
int mirror_header_encode(uint64_t offset, char *buf)
{
	char tmp[MIRROR_HEADER_MAX];
	int n = 0, i;

	do {
		tmp[n++] = (char)('0' + offset % 10);
		offset /= 10;
	} while (offset);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

int mirror_header_decode(const void *val, size_t len, uint64_t *offset)
{
	const unsigned char *p = val;
	uint64_t v = 0;
	size_t i;

	if (!val || len == 0 || len >= MIRROR_HEADER_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*offset = v;
	return 0;
}

int mirror_partition_number(const char *name, int32_t *out)
{
	int64_t v = 0;
	size_t i, len = strlen(name);

	if (len == 0 || len > 10 || (len > 1 && name[0] == '0'))
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -EINVAL;
		v = v * 10 + (name[i] - '0');
	}
	if (v > INT32_MAX)
		return -EINVAL;
	*out = (int32_t)v;
	return 0;
}

int mirror_topic_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > MIRROR_TOPIC_MAX)
		return -EINVAL;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return layout_name_chars_ok(name, len) ? 0 : -EINVAL;
}

/* The span [*b, *e) without leading and trailing blanks. */
static void trim(const char **b, const char **e)
{
	while (*b < *e && (**b == ' ' || **b == '\t'))
		(*b)++;
	while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' ||
			   (*e)[-1] == '\r'))
		(*e)--;
}

int mirror_conf_file_parse(const char *text, size_t len,
			   int (*cb)(void *arg, const char *key,
				     const char *val),
			   void *arg, unsigned *bad_line)
{
	const char *p = text, *end = text + len, *nl, *eq, *kb, *ke, *vb, *ve;
	char key[256], val[4096];
	unsigned line = 0;
	int ret;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		line++;
		kb = p;
		ve = nl;
		p = nl < end ? nl + 1 : end;
		trim(&kb, &ve);
		if (kb == ve || *kb == '#')
			continue;
		eq = memchr(kb, '=', (size_t)(ve - kb));
		ke = eq;
		vb = eq ? eq + 1 : NULL;
		if (eq)
			trim(&kb, &ke);
		if (eq)
			trim(&vb, &ve);
		if (!eq || kb == ke || (size_t)(ke - kb) >= sizeof(key) ||
		    (size_t)(ve - vb) >= sizeof(val)) {
			if (bad_line)
				*bad_line = line;
			return -EINVAL;
		}
		memcpy(key, kb, (size_t)(ke - kb));
		key[ke - kb] = '\0';
		memcpy(val, vb, (size_t)(ve - vb));
		val[ve - vb] = '\0';
		ret = cb(arg, key, val);
		if (ret)
			return ret;
	}
	return 0;
}

uint64_t mirror_export_resume(uint64_t stored, int has_last,
			      uint64_t last_header)
{
	return has_last ? last_header + 1 : stored;
}

int mirror_export_resume_emptied(uint64_t stored, int remote_known,
				 uint64_t stored_remote, uint64_t end,
				 uint64_t local_start, uint64_t local_next,
				 uint64_t *next)
{
	uint64_t at;

	if (!remote_known)
		return -ESTALE;
	if (end >= stored_remote) {
		if (end - stored_remote > local_next - stored ||
		    stored > local_next)
			return -ESTALE;
		at = stored + (end - stored_remote);
	} else {
		if (stored_remote - end > stored)
			return -ESTALE;
		at = stored - (stored_remote - end);
	}
	if (local_start > at || local_start > stored)
		return -ESTALE;
	*next = at;
	return 0;
}

int mirror_eof_is_empty(int64_t end, int64_t log_start)
{
	return end == 0 || (log_start >= 0 && end == log_start);
}

int mirror_import_resume(const struct layout_mirror_pos *m,
			 uint64_t local_next, uint64_t *remote)
{
	if (local_next == m->local_after)
		*remote = m->remote_after;
	else if (local_next == m->local_before)
		*remote = m->remote_before;
	else if (local_next > m->local_before && local_next < m->local_after &&
		 m->remote_after - m->remote_before ==
			 m->local_after - m->local_before)
		/* A prefix of the intent's appends landed; one message per
		 * record, offsets without gaps: the same prefix of records. */
		*remote = m->remote_before + (local_next - m->local_before);
	else
		return -ESTALE;
	return 0;
}
