/*
 * commit.c - group commit (leader/follower) over a caller's flush: see
 * commit.h.  A request is a node on its caller's stack; the leader takes
 * the whole queue before it starts the flush, so the set a flush answers
 * is exactly the set that was queued when it began.
 */
#include "commit.h"

struct commit_req {
	struct commit_req *next;
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
	if (r)
		return -r;
	r = pthread_cond_init(&c->cond, NULL);
	if (r) {
		pthread_mutex_destroy(&c->lock);
		return -r;
	}
	return 0;
}

void commit_destroy(struct commit *c)
{
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
}

/* Run one flush for every request queued now (caller holds c->lock and
 * found no flush running); returns with c->lock held again. */
static void lead(struct commit *c, commit_flush_fn flush, void *arg)
{
	struct commit_req *covered = c->queue, *r;
	unsigned n = c->queued;
	int ret;

	c->queue = NULL;
	c->queued = 0;
	c->busy = 1;
	pthread_mutex_unlock(&c->lock);
	ret = flush(arg, n);
	pthread_mutex_lock(&c->lock);
	c->flushes++;
	for (r = covered; r; r = r->next) {
		r->ret = ret;
		r->done = 1;
		c->requests++;
	}
	c->busy = 0;
	/* Wakes the covered requests, and the queued ones: one of them
	 * leads the next flush. */
	pthread_cond_broadcast(&c->cond);
}

int commit_sync(struct commit *c, commit_flush_fn flush, void *arg)
{
	struct commit_req me = {NULL, 0, 0};

	pthread_mutex_lock(&c->lock);
	me.next = c->queue;
	c->queue = &me;
	c->queued++;
	while (!me.done) {
		if (!c->busy)
			lead(c, flush, arg);
		else
			pthread_cond_wait(&c->cond, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return me.ret;
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
