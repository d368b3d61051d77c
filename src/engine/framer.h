/*
 * framer.h - line framing of one open file handle's writes.
 *
 * A write() is split into the complete lines it finishes (together with
 * the bytes held from earlier writes, they form one batch that is
 * appended at once, so a message is never split or interleaved) and a
 * trailing partial line that the handle holds until its newline arrives
 * or the handle is flushed.  Pure: no FUSE, no I/O, no locking (the
 * caller serialises a handle's writes), so it can be unit tested and
 * fuzzed on its own.
 *
 * Two phases make a write transactional: framer_plan() decides what to
 * append and reserves every byte of memory the commit will need; the
 * caller appends plan.iov; only if that succeeds does framer_commit()
 * keep the new partial line.  A failed append leaves the framer as it was.
 *
 * The framer does not count messages: the engine counts the batch's
 * newlines in the pass it makes to cut chunks (PARTITION_ANY_COUNT), so
 * the bytes are scanned once, not twice.
 */
#ifndef FLUXFS_FRAMER_H
#define FLUXFS_FRAMER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct framer {
	char *pending; /* partial line held for the next write */
	size_t pending_len;
	size_t pending_cap;
};

/* What one write turns into. */
struct framer_plan {
	/* The batch to append now, as pieces: the held bytes (if any), then
	 * the write's complete lines.  Never joined in memory: pass them to
	 * partition_appendv(), which writes them with one pwritev. */
	struct iovec iov[2];
	int iovcnt;
	size_t batch_len; /* bytes in the batch; 0: nothing to append */
	const char *tail; /* bytes after the last newline, from the write */
	size_t tail_len;
	int drop_pending; /* on -EMSGSIZE: the held bytes were part of the
			   * message that was too long */
};

void framer_init(struct framer *f);
/* Free the buffers; the framer is empty and reusable. */
void framer_release(struct framer *f);
/* Split buf[0..len) given the held bytes.  max_message is the longest
 * message allowed, newline included (0: no limit); a partial line longer
 * than it also fails.  Returns 0, -EMSGSIZE (nothing may be stored of
 * this write; plan->drop_pending says whether the held bytes belong to
 * the offending message) or -ENOMEM.  The plan points into buf and into
 * the framer: valid until the next framer call.  Every batch ends with a
 * newline. */
int framer_plan(struct framer *f, const char *buf, size_t len,
		uint64_t max_message, struct framer_plan *plan);
/* After plan->batch was stored: hold plan->tail as the partial line.
 * Cannot fail (framer_plan reserved the memory). */
void framer_commit(struct framer *f, const struct framer_plan *plan);
/* Forget the held bytes (after they were stored by a flush, or on
 * -EMSGSIZE with drop_pending). */
void framer_clear(struct framer *f);
/* The held partial line, for a flush to append as one message. */
static inline const char *framer_pending(const struct framer *f, size_t *len)
{
	*len = f->pending_len;
	return f->pending;
}

#endif
