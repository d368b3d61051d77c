/*
 * fs_follow.h - parked reads of the follow view and poll handles: the
 * FUSE layer's wakeups of followers.
 *
 * A read at the end of a follow file (MNT/.follow/<topic>/<partition>)
 * is not answered: its fuse_req_t is parked on the partition's node and
 * answered by follow_wake, which the FUSE layer calls after every append
 * (fs_appended), so a waiting reader holds no daemon thread.  Poll
 * handles of follow files are kept the same way and notified from the
 * same call.  A partition file itself
 * polls like a regular file (always ready) and never comes here: waiting
 * for data is the follow view's job.
 *
 * Ordering (no lost wakeups): a reader decides "at the end" and parks
 * under the module's lock; follow_wake runs after the new end is
 * published and takes the same lock, so it either sees the waiter or the
 * reader sees the new end.  No partition lock is held while a reply is
 * sent.  An interrupt (any signal to the reader) answers EINTR at once;
 * a partition that is removed or renamed ends its follow readers with
 * end-of-file (follow_detach); shutdown answers every parked read with
 * end-of-file (follow_shutdown).
 *
 * Part of the FUSE layer: parked requests are FUSE requests; every reply,
 * interrupt hook and poll notification goes through the struct follow_ops
 * the layer hands to follow_new.
 */
#ifndef FLUXFS_FS_FOLLOW_H
#define FLUXFS_FS_FOLLOW_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdint.h>

#include "registry.h"

struct follow;

/* Reply to req with up to size bytes of n's partition at byte off (the
 * caller made sure off is below the end), storing where the read ends in
 * *pos before the reply goes out.  Returns the bytes sent, or -errno
 * after replying with that error. */
typedef long (*follow_reply_fn)(fuse_req_t req, struct node *n, uint64_t off,
				size_t size, atomic_uint_fast64_t *pos);
/* Every call the module makes to FUSE, set once by follow_new: the FUSE
 * layer points them at libfuse (their signatures are libfuse's), a unit
 * test at recorders, so parking and waking run without /dev/fuse. */
struct follow_ops {
	follow_reply_fn reply_data;
	int (*reply_buf)(fuse_req_t req, const char *buf, size_t size);
	int (*reply_err)(fuse_req_t req, int err);
	int (*reply_poll)(fuse_req_t req, unsigned revents);
	void (*req_interrupt_func)(fuse_req_t req, fuse_interrupt_func_t func,
				   void *data);
	int (*req_interrupted)(fuse_req_t req);
	int (*notify_poll)(struct fuse_pollhandle *ph);
	void (*pollhandle_destroy)(struct fuse_pollhandle *ph);
};
/* Per open file (partition or follow view): embedded in the handle. */
struct follow_file {
	struct node *n;
	int view;		    /* a follow-view file (reads park) */
	uint64_t base;		    /* partition byte at the file's offset 0
				     * (a group view starts mid-log) */
	unsigned gen;		    /* view: n->follow_gen when opened */
	atomic_uint_fast64_t pos;   /* end of the last read answered */
	struct fuse_pollhandle *ph; /* protected by the follow lock */
	struct follow_file *prev;   /* n's poll list; follow lock */
	struct follow_file *next;
};

/* Create the module; ops (kept, not copied) is how it talks to FUSE. */
int follow_new(const struct follow_ops *ops, struct follow **out);
/* Free the module (after follow_shutdown and the session's end). */
void follow_free(struct follow *fw);

/* Set up / tear down a handle's state (release drops its poll handle). */
void follow_file_init(struct follow_file *ff, struct node *n, int view);
void follow_file_release(struct follow *fw, struct follow_file *ff);

/* A read at file offset off (partition byte ff->base + off) on a
 * follow-view file: answered now if data is there, else
 * EAGAIN (nonblock) or parked until data, an interrupt, detach or
 * shutdown. */
void follow_read(struct follow *fw, fuse_req_t req, struct follow_file *ff,
		 uint64_t off, size_t size, int nonblock);
/* The poll operation for a follow-view file ff: keep ph (replacing the
 * previous one) and reply POLLIN when data past the last read exists. */
void follow_poll(struct follow *fw, fuse_req_t req, struct follow_file *ff,
		 struct fuse_pollhandle *ph);

/* n's log now ends at end: answer its parked reads, notify the poll
 * handles of its follow files.  Called after every append, no
 * partition lock held. */
void follow_wake(struct follow *fw, struct node *n, uint64_t end);
/* n left its name (unlink, rename, replaced): its follow readers get
 * end-of-file now and on every later read. */
void follow_detach(struct follow *fw, struct node *n);
/* Answer every parked read with end-of-file; later reads at the end get
 * end-of-file too (the session is ending).  Returns how many it ended. */
int follow_shutdown(struct follow *fw);

/* For .metrics: reads parked now. */
uint64_t follow_parked(struct follow *fw);

#endif
