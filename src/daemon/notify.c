/*
 * notify.c - the notifier thread and its coalescing queue.
 *
 * Pending work is an open-addressed hash of (inode, lowest byte) pairs.
 * The thread swaps the table for an empty one under the lock and sends
 * outside it, so appends never wait for the kernel.  While it sends, the
 * inodes of that batch stay visible to notifier_pending() (the in-flight
 * table), so a reader opening during the send still drops its cache.
 * Calls (work that must wait for the kernel, queued by request handlers
 * that may not) run in the order they were queued.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "notify.h"

struct slot {
	uint64_t ino; /* 0: empty */
	uint64_t from;
};

struct table {
	struct slot *slots;
	size_t cap; /* power of two */
	size_t used;
};

struct entry_del {
	struct entry_del *next;
	uint64_t parent;
	uint64_t child;
	char name[]; /* NUL-terminated */
};

struct call {
	struct call *next;
	notifier_call_fn fn;
	void *arg;
};

struct notifier {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t sent_cond; /* a round of sends ended (notifier_wait) */
	struct table queued;	  /* protected by lock */
	struct table inflight;	  /* protected by lock; written by the thread */
	struct entry_del *dels;	  /* protected by lock; newest first */
	struct call *calls;	  /* protected by lock; oldest first */
	struct call **calls_tail; /* protected by lock */
	int stopping;		  /* protected by lock */
	pthread_t thread;
	notifier_send_fn send;
	notifier_delete_fn del;
	void *arg;
	atomic_uint_fast64_t sent;
};

static size_t slot_hash(uint64_t ino, size_t cap)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	return (size_t)ino & (cap - 1);
}

/* The slot holding ino, or the empty slot where it would go (the table
 * has a free slot: load is kept at most one half). */
static struct slot *table_slot(struct table *t, uint64_t ino)
{
	size_t i = slot_hash(ino, t->cap);

	while (t->slots[i].ino != ino && t->slots[i].ino != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static int table_has(struct table *t, uint64_t ino)
{
	return t->cap && table_slot(t, ino)->ino == ino;
}

/* Make room for one more entry (load at most one half). */
static int table_grow(struct table *t)
{
	struct table n;
	size_t i;

	if (t->cap && (t->used + 1) * 2 <= t->cap)
		return 0;
	n.cap = t->cap ? t->cap * 2 : 64;
	n.used = t->used;
	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++) {
		if (!t->slots[i].ino)
			continue;
		*table_slot(&n, t->slots[i].ino) = t->slots[i];
	}
	free(t->slots);
	*t = n;
	return 0;
}

static void table_clear(struct table *t)
{
	if (t->used)
		memset(t->slots, 0, t->cap * sizeof(*t->slots));
	t->used = 0;
}

/* Queue an invalidation of ino from byte from. */
int notifier_queue(struct notifier *nt, uint64_t ino, uint64_t from)
{
	struct slot *s;
	int ret = 0, wake = 0;

	pthread_mutex_lock(&nt->lock);
	if (table_has(&nt->queued, ino)) {
		s = table_slot(&nt->queued, ino);
		if (from < s->from)
			s->from = from;
		goto out;
	}
	ret = table_grow(&nt->queued);
	if (ret < 0)
		goto out;
	s = table_slot(&nt->queued, ino);
	s->ino = ino;
	s->from = from;
	wake = nt->queued.used++ == 0;
out:
	pthread_mutex_unlock(&nt->lock);
	if (wake)
		pthread_cond_signal(&nt->cond);
	return ret;
}

/* Queue an entry deletion. */
int notifier_queue_delete(struct notifier *nt, uint64_t parent, uint64_t child,
			  const char *name)
{
	size_t len = strlen(name) + 1;
	struct entry_del *d = malloc(sizeof(*d) + len);

	if (!d)
		return -ENOMEM;
	d->parent = parent;
	d->child = child;
	memcpy(d->name, name, len);
	pthread_mutex_lock(&nt->lock);
	d->next = nt->dels;
	nt->dels = d;
	pthread_mutex_unlock(&nt->lock);
	pthread_cond_signal(&nt->cond);
	return 0;
}

/* Queue a call, run by the thread after those queued before it. */
int notifier_queue_call(struct notifier *nt, notifier_call_fn fn, void *arg)
{
	struct call *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_lock(&nt->lock);
	*nt->calls_tail = c;
	nt->calls_tail = &c->next;
	pthread_mutex_unlock(&nt->lock);
	pthread_cond_signal(&nt->cond);
	return 0;
}

/* Run the queued calls (taken from the queue), oldest first. */
static void run_calls(struct call *c)
{
	struct call *next;

	for (; c; c = next) {
		next = c->next;
		c->fn(c->arg);
		free(c);
	}
}

/* Send the queued deletions (taken from the queue), oldest first. */
static void send_deletes(struct notifier *nt, struct entry_del *d)
{
	struct entry_del *rev = NULL, *next;
	int ret;

	for (; d; d = next) {
		next = d->next;
		d->next = rev;
		rev = d;
	}
	for (d = rev; d; d = next) {
		next = d->next;
		ret = nt->del ? nt->del(nt->arg, d->parent, d->child, d->name)
			      : 0;
		if (ret < 0 && ret != -ENOENT && ret != -ENODEV)
			diag_warn("cannot drop entry '%s': %s", d->name,
				  strerror(-ret));
		free(d);
	}
}

/* Whether ino has an invalidation queued or in flight. */
int notifier_pending(struct notifier *nt, uint64_t ino)
{
	int ret;

	pthread_mutex_lock(&nt->lock);
	ret = table_has(&nt->queued, ino) || table_has(&nt->inflight, ino);
	pthread_mutex_unlock(&nt->lock);
	return ret;
}

int notifier_wait(struct notifier *nt, uint64_t ino, unsigned timeout_ms)
{
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&nt->lock);
	while (ret == 0 &&
	       (table_has(&nt->queued, ino) || table_has(&nt->inflight, ino)))
		ret = -pthread_cond_timedwait(&nt->sent_cond, &nt->lock,
					      &until);
	if (ret == -ETIMEDOUT &&
	    !table_has(&nt->queued, ino) && !table_has(&nt->inflight, ino))
		ret = 0;
	pthread_mutex_unlock(&nt->lock);
	return ret;
}

/* Notifications sent so far. */
uint64_t notifier_sent(struct notifier *nt)
{
	return atomic_load_explicit(&nt->sent, memory_order_relaxed);
}

static void *notifier_main(void *arg)
{
	struct notifier *nt = arg;
	struct table t;
	size_t i;
	int ret, stop;
	struct entry_del *dels;
	struct call *calls;

	pthread_mutex_lock(&nt->lock);
	for (;;) {
		while (!nt->queued.used && !nt->dels && !nt->calls &&
		       !nt->stopping)
			pthread_cond_wait(&nt->cond, &nt->lock);
		if (nt->calls) {
			calls = nt->calls;
			nt->calls = NULL;
			nt->calls_tail = &nt->calls;
			pthread_mutex_unlock(&nt->lock);
			run_calls(calls);
			pthread_mutex_lock(&nt->lock);
			continue;
		}
		if (nt->dels) {
			dels = nt->dels;
			nt->dels = NULL;
			pthread_mutex_unlock(&nt->lock);
			send_deletes(nt, dels);
			pthread_mutex_lock(&nt->lock);
			continue;
		}
		if (!nt->queued.used)
			break;
		/* Swap: the queue becomes the in-flight set. */
		t = nt->inflight;
		nt->inflight = nt->queued;
		nt->queued = t;
		table_clear(&nt->queued);
		t = nt->inflight;
		pthread_mutex_unlock(&nt->lock);
		for (i = 0; i < t.cap; i++) {
			if (!t.slots[i].ino)
				continue;
			ret = nt->send(nt->arg, t.slots[i].ino,
				       t.slots[i].from);
			atomic_fetch_add_explicit(&nt->sent, 1,
						  memory_order_relaxed);
			if (ret < 0 && ret != -ENOENT && ret != -ENODEV)
				diag_warn("cannot invalidate inode %llu: %s",
					  (unsigned long long)t.slots[i].ino,
					  strerror(-ret));
		}
		pthread_mutex_lock(&nt->lock);
		table_clear(&nt->inflight);
		pthread_cond_broadcast(&nt->sent_cond);
		stop = nt->stopping && !nt->queued.used && !nt->calls &&
		       !nt->dels;
		if (stop)
			break;
	}
	pthread_mutex_unlock(&nt->lock);
	return NULL;
}

/* Start the notifier thread. */
int notifier_start(notifier_send_fn send, notifier_delete_fn del, void *arg,
		   struct notifier **out)
{
	struct notifier *nt;
	pthread_condattr_t ca;
	int ret;

	nt = calloc(1, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	pthread_mutex_init(&nt->lock, NULL);
	pthread_cond_init(&nt->cond, NULL);
	/* notifier_wait's deadline must not move with the wall clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&nt->sent_cond, &ca);
	pthread_condattr_destroy(&ca);
	nt->send = send;
	nt->del = del;
	nt->arg = arg;
	nt->calls_tail = &nt->calls;
	ret = -pthread_create(&nt->thread, NULL, notifier_main, nt);
	if (ret < 0) {
		pthread_cond_destroy(&nt->sent_cond);
		pthread_cond_destroy(&nt->cond);
		pthread_mutex_destroy(&nt->lock);
		free(nt);
		return ret;
	}
	*out = nt;
	return 0;
}

/* Drain, stop and free the notifier. */
void notifier_stop(struct notifier *nt)
{
	if (!nt)
		return;
	pthread_mutex_lock(&nt->lock);
	nt->stopping = 1;
	pthread_mutex_unlock(&nt->lock);
	pthread_cond_signal(&nt->cond);
	pthread_join(nt->thread, NULL);
	free(nt->queued.slots);
	free(nt->inflight.slots);
	pthread_cond_destroy(&nt->sent_cond);
	pthread_cond_destroy(&nt->cond);
	pthread_mutex_destroy(&nt->lock);
	free(nt);
}
