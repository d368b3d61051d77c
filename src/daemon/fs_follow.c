/*
 * fs_follow.c - parked follow-view reads and poll handles, woken by appends.
 *
 * One mutex (fw->lock) protects every parked read and every stored poll
 * handle: each node keeps its own list of both (n->fs->follow_waiters,
 * n->fs->follow_polls) so an append only walks its partition's, and every
 * parked read is also on one mount-wide list so an interrupt, which
 * names only the request, can find it.  A wakeup skips the lock
 * entirely while nothing is parked or polled anywhere (fw->active).
 *
 * Replies are sent outside the lock: waiters are unlinked under it, then
 * answered.  Whoever unlinks a waiter (wake, interrupt, detach, shutdown)
 * owns it and is the only one to reply, so a request is answered once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fs_follow.h"
#include "fs_int.h"

struct follow_wait {
	fuse_req_t req;
	struct follow_file *ff;
	uint64_t off;
	size_t size;
	struct follow_wait *nnext; /* n's list; protected by fw->lock */
	struct follow_wait *nprev;
	struct follow_wait *gnext; /* the mount's list; protected by fw->lock */
	struct follow_wait *gprev;
};

struct follow {
	pthread_mutex_t lock;
	struct follow_wait *all;     /* protected by lock */
	int closing;		     /* protected by lock */
	atomic_uint_fast64_t active; /* parked reads + stored poll handles */
	atomic_uint_fast64_t parked;
	const struct follow_ops *ops; /* every call into FUSE */
};

/* Create the module. */
int follow_new(const struct follow_ops *ops, struct follow **out)
{
	struct follow *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return -ENOMEM;
	pthread_mutex_init(&fw->lock, NULL);
	fw->ops = ops;
	*out = fw;
	return 0;
}

/* Free the module. */
void follow_free(struct follow *fw)
{
	if (!fw)
		return;
	pthread_mutex_destroy(&fw->lock);
	free(fw);
}

/* Initialise a handle's follow state. */
void follow_file_init(struct follow_file *ff, struct node *n, int view)
{
	memset(ff, 0, sizeof(*ff));
	ff->n = n;
	ff->view = view;
	ff->gen = atomic_load(&n->fs->follow_gen);
	atomic_store(&ff->pos, 0);
}

/* Called with fw->lock. */
static void waiter_unlink(struct follow *fw, struct follow_wait *w)
{
	struct node *n = w->ff->n;

	if (w->nprev)
		w->nprev->nnext = w->nnext;
	else
		n->fs->follow_waiters = w->nnext;
	if (w->nnext)
		w->nnext->nprev = w->nprev;
	if (w->gprev)
		w->gprev->gnext = w->gnext;
	else
		fw->all = w->gnext;
	if (w->gnext)
		w->gnext->gprev = w->gprev;
	w->nnext = w->gnext = NULL;
	atomic_fetch_sub(&fw->active, 1);
	atomic_fetch_sub(&fw->parked, 1);
}

/* Called with fw->lock. */
static void waiter_link(struct follow *fw, struct follow_wait *w)
{
	struct node *n = w->ff->n;

	w->nprev = NULL;
	w->nnext = n->fs->follow_waiters;
	if (w->nnext)
		w->nnext->nprev = w;
	n->fs->follow_waiters = w;
	w->gprev = NULL;
	w->gnext = fw->all;
	if (w->gnext)
		w->gnext->gprev = w;
	fw->all = w;
	atomic_fetch_add(&fw->active, 1);
	atomic_fetch_add(&fw->parked, 1);
}

/* Called with fw->lock: drop ff's stored poll handle, if any. */
static void poll_unlink(struct follow *fw, struct follow_file *ff)
{
	if (!ff->ph)
		return;
	if (ff->prev)
		ff->prev->next = ff->next;
	else
		ff->n->fs->follow_polls = ff->next;
	if (ff->next)
		ff->next->prev = ff->prev;
	ff->prev = ff->next = NULL;
	ff->ph = NULL;
	atomic_fetch_sub(&fw->active, 1);
}

/* Release a handle's follow state. */
void follow_file_release(struct follow *fw, struct follow_file *ff)
{
	struct fuse_pollhandle *ph;

	pthread_mutex_lock(&fw->lock);
	ph = ff->ph;
	poll_unlink(fw, ff);
	pthread_mutex_unlock(&fw->lock);
	if (ph)
		fw->ops->pollhandle_destroy(ph);
}

static int ended(const struct follow_file *ff)
{
	return ff->view && atomic_load(&ff->n->fs->follow_gen) != ff->gen;
}

static uint64_t end_of(struct node *n)
{
	struct partition_info info;

	partition_get_info(n->part, &info);
	return info.end_byte;
}

/* Answer a woken waiter (unlinked, owned by the caller) and free it. */
static void waiter_answer(struct follow *fw, struct follow_wait *w, int eof)
{
	if (eof) {
		fw->ops->reply_buf(w->req, NULL, 0);
	} else {
		fw->ops->reply_data(w->req, w->ff->n, w->off, w->size,
				    &w->ff->pos);
	}
	free(w);
}

/* The interrupt callback: the reader got a signal. */
static void follow_interrupt(fuse_req_t req, void *data)
{
	struct follow *fw = data;
	struct follow_wait *w;

	pthread_mutex_lock(&fw->lock);
	for (w = fw->all; w; w = w->gnext)
		if (w->req == req)
			break;
	if (w)
		waiter_unlink(fw, w);
	pthread_mutex_unlock(&fw->lock);
	/* Not found: not parked yet (the parker checks the flag under the
	 * lock) or already being answered. */
	if (!w)
		return;
	fw->ops->reply_err(req, EINTR);
	free(w);
}

/* A read on a follow-view file. */
void follow_read(struct follow *fw, fuse_req_t req, struct follow_file *ff,
		 uint64_t off, size_t size, int nonblock)
{
	struct follow_wait *w;
	int err = 0;

	off += ff->base;
	if (ended(ff) || size == 0) {
		fw->ops->reply_buf(req, NULL, 0);
		return;
	}
	if (off < end_of(ff->n)) {
		fw->ops->reply_data(req, ff->n, off, size, &ff->pos);
		return;
	}
	if (nonblock) {
		fw->ops->reply_err(req, EAGAIN);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		fw->ops->reply_err(req, ENOMEM);
		return;
	}
	w->req = req;
	w->ff = ff;
	w->off = off;
	w->size = size;
	/* Before the request becomes visible to the waker: an interrupt
	 * arriving later finds it on fw->all. */
	fw->ops->req_interrupt_func(req, follow_interrupt, fw);
	pthread_mutex_lock(&fw->lock);
	if (fw->closing || ended(ff)) {
		err = -1; /* end-of-file */
	} else if (fw->ops->req_interrupted(req)) {
		err = EINTR;
	} else {
		/* Re-check under the lock: an append that published its end
		 * before we took the lock will not look for us. */
		waiter_link(fw, w);
		atomic_thread_fence(memory_order_seq_cst);
		if (off < end_of(ff->n)) {
			waiter_unlink(fw, w);
			err = -2;
		} else {
			w = NULL;
		}
	}
	pthread_mutex_unlock(&fw->lock);
	if (!w)
		return; /* parked */
	if (err == EINTR) {
		fw->ops->reply_err(req, EINTR);
		free(w);
	} else if (err == -1) {
		fw->ops->reply_buf(req, NULL, 0);
		free(w);
	} else {
		fw->ops->reply_data(req, ff->n, off, size, &ff->pos);
		free(w);
	}
}

/* The poll operation. */
void follow_poll(struct follow *fw, fuse_req_t req, struct follow_file *ff,
		 struct fuse_pollhandle *ph)
{
	struct fuse_pollhandle *old = NULL;
	struct follow_file **list = &ff->n->fs->follow_polls;
	struct node *n = ff->n;
	unsigned revents = 0;

	pthread_mutex_lock(&fw->lock);
	if (ph) {
		old = ff->ph;
		if (!old) {
			ff->prev = NULL;
			ff->next = *list;
			if (ff->next)
				ff->next->prev = ff;
			*list = ff;
			atomic_fetch_add(&fw->active, 1);
		}
		ff->ph = ph;
	}
	atomic_thread_fence(memory_order_seq_cst);
	if (fw->closing || ended(ff) || end_of(n) > atomic_load(&ff->pos))
		revents = POLLIN | POLLRDNORM;
	pthread_mutex_unlock(&fw->lock);
	if (old)
		fw->ops->pollhandle_destroy(old);
	fw->ops->reply_poll(req, revents);
}

/* Called with fw->lock: notify (and drop) the poll handles on list that
 * belong to n and have data past their last read; all of n's if all is
 * set. */
static void notify_polls(struct follow *fw, struct follow_file *list,
			 struct node *n, uint64_t end, int all)
{
	struct follow_file *ff, *next;
	struct fuse_pollhandle *ph;
	int ret;

	for (ff = list; ff; ff = next) {
		next = ff->next;
		if (ff->n != n)
			continue;
		if (!all && end <= atomic_load(&ff->pos))
			continue;
		ph = ff->ph;
		poll_unlink(fw, ff);
		/* A write on /dev/fuse that only wakes a waitqueue: safe
		 * under our lock and inside a handler. */
		ret = fw->ops->notify_poll(ph);
		if (ret < 0 && ret != -ENOENT && ret != -ENODEV)
			diag_warn("cannot notify a poll of '%s': %s", n->name,
				  strerror(-ret));
		fw->ops->pollhandle_destroy(ph);
	}
}

/* n's log grew to end: answer its parked reads and poll handles. */
void follow_wake(struct follow *fw, struct node *n, uint64_t end)
{
	struct follow_wait *w, *next, *woken = NULL;
	uint64_t now;

	/* Pairs with the fence in follow_read: the new end is published
	 * before we look at the count. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load(&fw->active))
		return;
	pthread_mutex_lock(&fw->lock);
	/* Concurrent appends may get here out of order. */
	now = end_of(n);
	if (now > end)
		end = now;
	for (w = n->fs->follow_waiters; w; w = next) {
		next = w->nnext;
		if (w->off >= end)
			continue;
		waiter_unlink(fw, w);
		w->gnext = woken;
		woken = w;
	}
	notify_polls(fw, n->fs->follow_polls, n, end, 0);
	pthread_mutex_unlock(&fw->lock);
	for (w = woken; w; w = next) {
		next = w->gnext;
		waiter_answer(fw, w, 0);
	}
}

/* Unlink every waiter of n (or of every node if n is NULL) into a list. */
static struct follow_wait *take_all(struct follow *fw, struct node *n)
{
	struct follow_wait *w, *next, *taken = NULL;

	for (w = n ? n->fs->follow_waiters : fw->all; w; w = next) {
		next = n ? w->nnext : w->gnext;
		waiter_unlink(fw, w);
		w->gnext = taken;
		taken = w;
	}
	return taken;
}

/* n left its name: end its follow readers. */
void follow_detach(struct follow *fw, struct node *n)
{
	struct follow_wait *w, *next, *taken;

	pthread_mutex_lock(&fw->lock);
	atomic_fetch_add(&n->fs->follow_gen, 1);
	taken = take_all(fw, n);
	notify_polls(fw, n->fs->follow_polls, n, 0, 1);
	pthread_mutex_unlock(&fw->lock);
	for (w = taken; w; w = next) {
		next = w->gnext;
		waiter_answer(fw, w, 1);
	}
}

/* End every parked read: the session is ending. */
int follow_shutdown(struct follow *fw)
{
	struct follow_wait *w, *next, *taken;
	int count = 0;

	if (!fw)
		return 0;
	pthread_mutex_lock(&fw->lock);
	fw->closing = 1;
	taken = take_all(fw, NULL);
	pthread_mutex_unlock(&fw->lock);
	for (w = taken; w; w = next) {
		next = w->gnext;
		waiter_answer(fw, w, 1);
		count++;
	}
	return count;
}

/* Reads parked now. */
uint64_t follow_parked(struct follow *fw)
{
	return fw ? atomic_load(&fw->parked) : 0;
}
