/*
 * fuzz_framer.c - libFuzzer target for the line framer: any chunking of a
 * byte stream into writes must yield the same messages as one write.
 *
 * Input: byte 0 seeds the chunking, byte 1 picks a message limit for the
 * second pass, the rest is the stream.  Pass one, without a limit: the
 * stream as one write, then the same stream cut into random chunks (0 to
 * 64 bytes, empty writes included); each batch (its iovec pieces) must
 * be whole lines, and the messages (batches split at
 * newlines, then the held partial line as the close would store it) must
 * be identical.  Pass two, with a limit: every stored message is within
 * it, and a refused write stores nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	char *buf; /* messages, each ending in '\n' except maybe the last */
	size_t len, cap;
	size_t nmsg;
};

static void sink_add(struct sink *s, const char *p, size_t len, size_t nmsg)
{
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2 + 64;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf)
			abort();
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->nmsg += nmsg;
}

/* A batch must be whole lines, each within max, its pieces adding up to
 * batch_len; it goes to the sink. */
static void take_batch(const struct framer_plan *pl, uint64_t max,
		       struct sink *out)
{
	size_t i, total = 0, lines = 0, start, before = out->len;
	int k;

	if (pl->iovcnt < 0 || pl->iovcnt > 2)
		abort();
	for (k = 0; k < pl->iovcnt; k++) {
		if (pl->iov[k].iov_len && !pl->iov[k].iov_base)
			abort();
		sink_add(out, pl->iov[k].iov_base, pl->iov[k].iov_len, 0);
		total += pl->iov[k].iov_len;
	}
	if (total != pl->batch_len)
		abort();
	if (total == 0)
		return;
	if (out->buf[out->len - 1] != '\n')
		abort();
	for (i = before, start = before; i < out->len; i++) {
		if (out->buf[i] != '\n')
			continue;
		lines++;
		if (max && i + 1 - start > max)
			abort();
		start = i + 1;
	}
	out->nmsg += lines;
}

/* Feed stream in chunks (seeded; seed 0 = one write), close, collect. */
static void run(const char *stream, size_t len, unsigned seed, uint64_t max,
		struct sink *out)
{
	struct framer_plan pl;
	struct framer f;
	uint32_t st = seed * 2654435761u + 1;
	size_t at = 0, n, plen;
	const char *pend;
	int ret;

	framer_init(&f);
	do {
		if (seed) {
			st = st * 1103515245u + 12345u;
			n = (st >> 16) % 65;
			if (n > len - at)
				n = len - at;
		} else {
			n = len;
		}
		memset(&pl, 0, sizeof(pl));
		ret = framer_plan(&f, stream + at, n, max, &pl);
		if (ret == -EMSGSIZE) {
			if (!max)
				abort(); /* no limit, no EMSGSIZE */
			/* as fs_io.c: a failed write changes nothing, the held
			 * bytes stay for the close to store */
		} else if (ret == 0) {
			take_batch(&pl, max, out);
			framer_commit(&f, &pl);
			pend = framer_pending(&f, &plen);
			if (plen &&
			    (memchr(pend, '\n', plen) || (max && plen > max)))
				abort(); /* held bytes are one partial line */
		} else {
			abort();
		}
		at += n;
	} while (at < len);
	/* The close stores the held partial line as one message. */
	pend = framer_pending(&f, &plen);
	if (plen)
		sink_add(out, pend, plen, 1);
	framer_clear(&f);
	framer_release(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink one = {0}, many = {0}, lim = {0};
	const char *stream;
	size_t len;
	uint64_t max;

	if (size < 2)
		return 0;
	stream = (const char *)data + 2;
	len = size - 2;
	run(stream, len, 0, 0, &one);
	run(stream, len, 1u + data[0], 0, &many);
	/* Without a limit nothing is lost or changed: both are the stream. */
	if (one.len != len || many.len != len || one.nmsg != many.nmsg ||
	    (len && (memcmp(one.buf, stream, len) != 0 ||
		     memcmp(many.buf, stream, len) != 0)))
		abort();
	/* With a limit: messages within it (checked in run), never more
	 * bytes than were written. */
	max = 1 + data[1] % 80;
	run(stream, len, 1u + data[0], max, &lim);
	if (lim.len > len)
		abort();
	free(one.buf);
	free(many.buf);
	free(lim.buf);
	return 0;
}
