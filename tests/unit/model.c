/*
 * model.c - the model of a partition log shared by check_partition and
 * check_recovery (see model.h): a plain byte array with a table of
 * message starts and of batch ends, simple enough to be obviously right,
 * which the tests then hold the real partition to.  Plus the info check,
 * config and directory helpers both tests use.
 */
#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->nseg = 1;
}

void model_release(struct model *m)
{
	free(m->data);
	free(m->msg);
}

void model_append(struct model *m, const char *buf, size_t len)
{
	size_t i;

	while (m->end + len > m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1 << 16;
		m->data = realloc(m->data, m->cap);
	}
	memcpy(m->data + m->end, buf, len);
	for (i = 0; i < len; i++) {
		if (i == 0 || buf[i - 1] == '\n') {
			if (m->nmsg == m->msgcap) {
				m->msgcap = m->msgcap ? m->msgcap * 2 : 1024;
				m->msg = realloc(m->msg,
						 m->msgcap * sizeof(*m->msg));
			}
			m->msg[m->nmsg++] = m->end + i;
		}
	}
	m->end += len;
	/* a test that outgrows the table must fail, not scribble on the
	 * stack; tested with if, not ck_assert, as each ck_assert costs a
	 * write */
	if (m->nb == MODEL_MAX_BATCHES)
		ck_abort_msg("model: more than %d batches", MODEL_MAX_BATCHES);
	m->bend[m->nb] = m->end;
	m->bmsg[m->nb++] = m->nmsg;
}

void model_drop(struct model *m, uint32_t k)
{
	m->nb -= k;
	m->end = m->nb ? m->bend[m->nb - 1] : 0;
	m->nmsg = m->nb ? m->bmsg[m->nb - 1] : 0;
}

uint64_t model_msg_at(const struct model *m, uint64_t b)
{
	uint64_t lo = 0, hi = m->nmsg, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (m->msg[mid] <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

void model_check_info(struct partition *p, const struct model *m,
		      struct partition_info *info)
{
	partition_get_info(p, info);
	ck_assert_uint_eq(info->end_byte, m->end);
	ck_assert_uint_eq(info->next_offset, m->nmsg);
	ck_assert_uint_eq(info->start_byte, m->start_byte);
	ck_assert_uint_eq(info->start_offset, m->start_off);
}

void model_cfg_init(struct config *c, uint64_t segment_bytes)
{
	memset(c, 0, sizeof(*c));
	c->segment_bytes = segment_bytes;
	c->segment_ms = -1;
	c->retention_bytes = -1;
	c->retention_ms = -1;
	c->flush_ms = -1;
	c->max_message_bytes = 1 << 20;
	c->compression = COMPRESSION_NONE;
}

int count_files(const char *dir, const char *suffix)
{
	size_t sl = strlen(suffix), l;
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		l = strlen(de->d_name);
		if (l > sl && !strcmp(de->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}
