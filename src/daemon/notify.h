/*
 * notify.h - the notifier thread: kernel page-cache invalidations sent
 * from outside request handlers, coalesced per inode.
 *
 * A page-range invalidation sent from inside a write handler can deadlock
 * the kernel against the daemon (the invalidation waits for a page lock
 * that the very request being served holds), so the append path only
 * queues "inode ino changed from byte b" here, which costs a mutex and a
 * hash probe.  The thread sends one invalidation per queued inode, from
 * the lowest byte queued since its last send: a burst of appends while it
 * is busy costs one notification.  No FUSE here: the sender is a callback
 * (the FUSE layer supplies it), so this module is plain threading.
 */
#ifndef FLUXFS_NOTIFY_H
#define FLUXFS_NOTIFY_H

#include <stdint.h>

struct notifier;

/* Send one invalidation: bytes [from, end of file) of inode ino.  Returns
 * 0 or -errno (-ENOENT / -ENODEV are expected and ignored). */
typedef int (*notifier_send_fn)(void *arg, uint64_t ino, uint64_t from);
/* Tell the kernel that entry name of directory parent (inode child) is
 * gone.  Returns 0 or -errno (-ENOENT / -ENODEV ignored). */
typedef int (*notifier_delete_fn)(void *arg, uint64_t parent, uint64_t child,
				  const char *name);

/* Work queued to run on the thread (it may block on the kernel). */
typedef void (*notifier_call_fn)(void *arg);

/* Start the thread; del may be NULL. */
int notifier_start(notifier_send_fn send, notifier_delete_fn del, void *arg,
		   struct notifier **out);
/* Queue an entry deletion (sent in order, from the thread). */
int notifier_queue_delete(struct notifier *nt, uint64_t parent, uint64_t child,
			  const char *name);
/* Queue fn(arg), run on the thread after every call queued before it
 * (also when stopping: notifier_stop runs what is queued). */
int notifier_queue_call(struct notifier *nt, notifier_call_fn fn, void *arg);
/* Queue an invalidation of ino from byte from; coalesces with one already
 * queued for ino (the lower from wins). Never blocks on the kernel. */
int notifier_queue(struct notifier *nt, uint64_t ino, uint64_t from);
/* Whether an invalidation of ino is queued or being sent (a reader open
 * must then not keep the page cache). */
int notifier_pending(struct notifier *nt, uint64_t ino);
/* Wait until nothing is queued or being sent for ino: 0, or -ETIMEDOUT
 * after timeout_ms. */
int notifier_wait(struct notifier *nt, uint64_t ino, unsigned timeout_ms);
/* Notifications sent so far (for .metrics). */
uint64_t notifier_sent(struct notifier *nt);
/* Send what is queued, stop the thread and free it. */
void notifier_stop(struct notifier *nt);

#endif
