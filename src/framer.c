/*
 * framer.c - split writes into complete lines and a held partial line.
 *
 * The scan is memrchr for the last newline (everything before it is
 * complete) and a memchr walk to count messages and check their lengths.
 * Buffers belong to the handle and grow to the largest write seen, so a
 * steady stream of writes allocates nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"

/* Grow *buf to hold at least need bytes, keeping its contents. */
static int reserve(char **buf, size_t *cap, size_t need)
{
	size_t n;
	char *p;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 256;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : n * 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Initialise an empty framer. */
void framer_init(struct framer *f)
{
	memset(f, 0, sizeof(*f));
}

/* Free a framer's buffers. */
void framer_release(struct framer *f)
{
	free(f->pending);
	free(f->joined);
	framer_init(f);
}

/* Count the lines of buf (which ends with a newline) and check each is
 * at most max bytes; the first line is first_extra bytes longer (held
 * bytes).  Returns the count, or -EMSGSIZE with *first set when the
 * first line was the long one. */
static int64_t count_lines(const char *buf, size_t len, size_t first_extra,
			   uint64_t max, int *first)
{
	const char *p = buf, *end = buf + len, *nl;
	int64_t count = 0;
	uint64_t line;

	while (p < end) {
		nl = memchr(p, '\n', end - p);
		/* buf ends with '\n', so nl is never NULL here */
		line = (uint64_t)(nl - p) + 1;
		if (count == 0)
			line += first_extra;
		if (max && line > max) {
			*first = count == 0;
			return -EMSGSIZE;
		}
		count++;
		p = nl + 1;
	}
	return count;
}

/* Decide what a write of buf[0..len) appends and holds. */
int framer_plan(struct framer *f, const char *buf, size_t len,
		uint64_t max_message, struct framer_plan *plan)
{
	const char *last;
	size_t complete;
	int64_t count;
	int first = 0;

	memset(plan, 0, sizeof(*plan));
	last = len ? memrchr(buf, '\n', len) : NULL;
	if (!last) {
		/* No newline: the whole write extends the held line. */
		if (max_message && f->pending_len + len > max_message) {
			plan->drop_pending = f->pending_len > 0;
			return -EMSGSIZE;
		}
		plan->tail = buf;
		plan->tail_len = len;
		return reserve(&f->pending, &f->pending_cap,
			       f->pending_len + len);
	}
	complete = (size_t)(last - buf) + 1;
	count = count_lines(buf, complete, f->pending_len, max_message, &first);
	if (count < 0) {
		plan->drop_pending = first && f->pending_len > 0;
		return (int)count;
	}
	if (count > UINT32_MAX)
		return -EMSGSIZE;
	plan->tail = buf + complete;
	plan->tail_len = len - complete;
	if (max_message && plan->tail_len > max_message)
		return -EMSGSIZE;
	if (reserve(&f->pending, &f->pending_cap, plan->tail_len) < 0)
		return -ENOMEM;
	plan->count = (uint32_t)count;
	if (f->pending_len == 0) {
		plan->batch = buf;
		plan->batch_len = complete;
		return 0;
	}
	if (reserve(&f->joined, &f->joined_cap, f->pending_len + complete) < 0)
		return -ENOMEM;
	memcpy(f->joined, f->pending, f->pending_len);
	memcpy(f->joined + f->pending_len, buf, complete);
	plan->batch = f->joined;
	plan->batch_len = f->pending_len + complete;
	return 0;
}

/* Keep the plan's tail as the held partial line. */
void framer_commit(struct framer *f, const struct framer_plan *plan)
{
	if (plan->batch_len == 0) {
		if (plan->tail_len)
			memcpy(f->pending + f->pending_len, plan->tail,
			       plan->tail_len);
		f->pending_len += plan->tail_len;
		return;
	}
	if (plan->tail_len)
		memcpy(f->pending, plan->tail, plan->tail_len);
	f->pending_len = plan->tail_len;
}

/* Drop the held partial line. */
void framer_clear(struct framer *f)
{
	f->pending_len = 0;
}
