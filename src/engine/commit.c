/*
 * commit.c - group commit (leader/follower) over a caller's flush: see
 * commit.h.  A request is a node on its caller's stack; the leader takes
 * the whole queue before it starts the flush, so the set a flush answers
 * is exactly the set that was queued when it began.
 *
 * Each request waits on its own semaphore, not on one condition shared by
 * all: a broadcast woke every waiter at once and each then queued for the
 * commit's mutex to leave pthread_cond_wait (with 64 partitions sharing
 * a syncfs, a convoy of context switches after every flush).  Now the
 * leader posts exactly the requests its flush covered, outside the
 * mutex, and hands the lead to one queued request, if any.
 */
#include <errno.h>
#include <semaphore.h>

#include "commit.h"

struct commit_req {
	struct commit_req *next;
	sem_t wake; /* posted when done, or when this request is to lead */
	int done;
	int ret;
};

int commit_init(struct commit *c)
{
	int r;

	c->queue = NULL;
	c->busy = 0;
	c->queued = 0;
	c->flushes = 0;
	c->requests = 0;
	r = pthread_mutex_init(&c->lock, NULL);
	return -r;
}

void commit_destroy(struct commit *c)
{
	pthread_mutex_destroy(&c->lock);
}

/* Run one flush for every request queued now, me among them (c->busy is
 * ours), then answer them and pass the lead on.  Returns my result. */
static int lead(struct commit *c, struct commit_req *me, commit_flush_fn flush,
		void *arg)
{
	struct commit_req *covered, *r, *next_leader, *after;
	unsigned n;
	int ret;

	pthread_mutex_lock(&c->lock);
	covered = c->queue;
	n = c->queued;
	c->queue = NULL;
	c->queued = 0;
	pthread_mutex_unlock(&c->lock);
	ret = flush(arg, n);
	pthread_mutex_lock(&c->lock);
	c->flushes++;
	c->requests += n;
	/* A request queued while we flushed leads the next flush (busy
	 * stays set for it); with none, the next caller leads. */
	next_leader = c->queue;
	if (!next_leader)
		c->busy = 0;
	pthread_mutex_unlock(&c->lock);
	if (next_leader)
		sem_post(&next_leader->wake);
	for (r = covered; r; r = after) {
		after = r->next; /* r may be gone once posted */
		r->ret = ret;
		r->done = 1;
		if (r != me)
			sem_post(&r->wake);
	}
	return ret;
}

int commit_sync(struct commit *c, commit_flush_fn flush, void *arg)
{
	struct commit_req me = {NULL, {{0}}, 0, 0};
	int leader, ret;

	if (sem_init(&me.wake, 0, 0) < 0)
		return -errno;
	pthread_mutex_lock(&c->lock);
	me.next = c->queue;
	c->queue = &me;
	c->queued++;
	leader = !c->busy;
	c->busy = 1;
	pthread_mutex_unlock(&c->lock);
	if (!leader) {
		while (sem_wait(&me.wake) < 0)
			; /* EINTR */
		leader = !me.done;
	}
	ret = leader ? lead(c, &me, flush, arg) : me.ret;
	sem_destroy(&me.wake);
	return ret;
}

void commit_stats(struct commit *c, uint64_t *flushes, uint64_t *requests,
		  unsigned *queued)
{
	pthread_mutex_lock(&c->lock);
	if (flushes)
		*flushes = c->flushes;
	if (requests)
		*requests = c->requests;
	if (queued)
		*queued = c->queued;
	pthread_mutex_unlock(&c->lock);
}
