/*
 * framer.c - split writes into complete lines and a held partial line.
 *
 * The scan is memrchr for the last newline (everything before it is
 * complete); lengths are checked only when the batch is longer than the
 * limit, by windows (below), and messages are counted by the engine.  The
 * held bytes and the write are handed on as two pieces, never copied
 * together.  The one buffer belongs to the handle and grows to the
 * longest partial line seen, so a steady stream of writes allocates
 * nothing.
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
	framer_init(f);
}

/* Check that every line of buf (which ends with a newline) is at most max
 * bytes, the first one held bytes longer.  A line longer than max exists
 * iff some window of max bytes starting at a line start holds no newline:
 * one memrchr per window jumps to the last line start inside it, so the
 * cost is a few calls per max bytes, not one per message.  Returns 0, or
 * -EMSGSIZE with *first set when the first line is the long one. */
static int check_lines(const char *buf, size_t len, size_t held, uint64_t max,
		       int *first)
{
	const char *nl;
	size_t at;

	*first = 0;
	if (!max || held + len <= max)
		return 0;
	*first = 1;
	if (held >= max)
		return -EMSGSIZE;
	nl = memchr(buf, '\n', len < max - held ? len : (size_t)(max - held));
	if (!nl)
		return -EMSGSIZE;
	*first = 0;
	at = (size_t)(nl - buf) + 1;
	while (len - at > max) {
		nl = memrchr(buf + at, '\n', (size_t)max);
		if (!nl)
			return -EMSGSIZE;
		at = (size_t)(nl - buf) + 1;
	}
	return 0;
}

/* Decide what a write of buf[0..len) appends and holds. */
int framer_plan(struct framer *f, const char *buf, size_t len,
		uint64_t max_message, struct framer_plan *plan)
{
	const char *last;
	size_t complete;
	int first = 0, ret;

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
	ret = check_lines(buf, complete, f->pending_len, max_message, &first);
	if (ret < 0) {
		plan->drop_pending = first && f->pending_len > 0;
		return ret;
	}
	plan->tail = buf + complete;
	plan->tail_len = len - complete;
	if (max_message && plan->tail_len > max_message)
		return -EMSGSIZE;
	/* Reserve before taking f->pending's address: it may move. */
	if (reserve(&f->pending, &f->pending_cap, plan->tail_len) < 0)
		return -ENOMEM;
	if (f->pending_len) {
		plan->iov[plan->iovcnt].iov_base = f->pending;
		plan->iov[plan->iovcnt++].iov_len = f->pending_len;
	}
	plan->iov[plan->iovcnt].iov_base = (void *)(uintptr_t)buf;
	plan->iov[plan->iovcnt++].iov_len = complete;
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
