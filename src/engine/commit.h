/*
 * commit.h - group commit: many callers that each need "everything
 * written so far is durable" share one flush.  The first caller to find no
 * flush running becomes the leader and runs the flush for every request
 * queued up to that moment; requests that arrive while it runs wait and
 * are covered together by the next flush (leader/follower, as databases
 * do).  Each request gets the result of the one flush that covered it: a
 * flush never answers a request that arrived after it began, and a failed
 * flush fails every request it covered and no other.
 *
 * The flush itself is the caller's (a callback): this module owns only
 * who runs it and who is told what.  No libfuse, no partition knowledge.
 */
#ifndef FLUXFS_COMMIT_H
#define FLUXFS_COMMIT_H

#include <pthread.h>
#include <stdint.h>

struct commit_req;

/* A commit usable without commit_init (a static one). */
#define COMMIT_INITIALIZER                                                    \
	{                                                                     \
		PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0                   \
	}

struct commit {
	pthread_mutex_t lock;	  /* protects the fields below */
	struct commit_req *queue; /* waiting for the next flush */
	int busy;		  /* a flush is running */
	unsigned queued;	  /* requests in queue */
	uint64_t flushes;	  /* flushes run, for tests and metrics */
	uint64_t requests;	  /* requests answered */
};

/* The flush, run by the leader with the leader's arg: makes durable
 * everything written before it was called by the covered requests (the
 * leader's and covered - 1 others').  Returns 0 or -errno. */
typedef int (*commit_flush_fn)(void *arg, unsigned covered);

int commit_init(struct commit *c);
void commit_destroy(struct commit *c);

/* Wait until a flush that began after this call has finished, running it
 * ourselves when no other flush is in flight.  Returns that flush's
 * result. */
int commit_sync(struct commit *c, commit_flush_fn flush, void *arg);

/* How many flushes ran and how many requests they answered, and how many
 * wait for the next flush now (any may be NULL). */
void commit_stats(struct commit *c, uint64_t *flushes, uint64_t *requests,
		  unsigned *queued);

#endif
