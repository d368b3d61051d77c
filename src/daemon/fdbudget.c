/*
 * fdbudget.c - the books of the descriptor budget for open partitions:
 * the list of open entries in order of use, their costs and pins, and
 * the choice of an idle victim (fdbudget.h).
 *
 * Entries stay on the list while pinned, so a pin that does not touch
 * (maintenance visits every open partition each second) keeps the order
 * of real use; the victim search walks from the oldest end and skips
 * pinned entries and those the caller cannot claim.
 */
#include <errno.h>

#include "fdbudget.h"

void fdb_init(struct fdbudget *b, uint64_t budget)
{
	pthread_mutex_init(&b->lock, NULL);
	b->head.prev = b->head.next = &b->head;
	b->budget = budget;
	b->used = b->open = b->evictions = b->refusals = 0;
}

void fdb_destroy(struct fdbudget *b)
{
	pthread_mutex_destroy(&b->lock);
}

static void unlink_entry(struct fdb_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void link_newest(struct fdbudget *b, struct fdb_entry *e)
{
	e->next = b->head.next;
	e->prev = &b->head;
	b->head.next->prev = e;
	b->head.next = e;
}

/* The oldest idle entry claim accepts, taken off the list; NULL if none.
 * Called with b->lock held. */
static struct fdb_entry *pick_victim(struct fdbudget *b,
				     int (*claim)(struct fdb_entry *, void *),
				     void *arg, int *busy)
{
	struct fdb_entry *e;

	*busy = 0;
	for (e = b->head.prev; e != &b->head; e = e->prev) {
		if (e->pins)
			continue;
		if (claim && !claim(e, arg)) {
			*busy = 1; /* idle, but being opened or closed */
			continue;
		}
		unlink_entry(e);
		e->open = 0;
		b->open--;
		b->evictions++;
		return e;
	}
	return NULL;
}

int fdb_make_room(struct fdbudget *b, unsigned cost,
		  int (*claim)(struct fdb_entry *e, void *arg), void *arg,
		  struct fdb_entry **victim)
{
	int ret = 0, busy;

	*victim = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->used + cost <= b->budget) {
		b->used += cost;
	} else {
		*victim = pick_victim(b, claim, arg, &busy);
		if (*victim) {
			ret = 1;
		} else if (busy) {
			ret = -EAGAIN;
		} else {
			b->refusals++;
			ret = -EMFILE;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

void fdb_unreserve(struct fdbudget *b, unsigned cost)
{
	pthread_mutex_lock(&b->lock);
	b->used -= cost <= b->used ? cost : b->used;
	pthread_mutex_unlock(&b->lock);
}

void fdb_opened(struct fdbudget *b, struct fdb_entry *e, unsigned reserved,
		unsigned cost)
{
	pthread_mutex_lock(&b->lock);
	b->used += cost;
	b->used -= reserved <= b->used ? reserved : b->used;
	e->cost = cost;
	e->pins = 1;
	e->open = 1;
	b->open++;
	link_newest(b, e);
	pthread_mutex_unlock(&b->lock);
}

int fdb_pin(struct fdbudget *b, struct fdb_entry *e, int touch)
{
	int ret = 0;

	pthread_mutex_lock(&b->lock);
	if (!e->open) {
		ret = -ENOENT;
	} else {
		e->pins++;
		if (touch) {
			unlink_entry(e);
			link_newest(b, e);
		}
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

void fdb_unpin(struct fdbudget *b, struct fdb_entry *e, unsigned cost)
{
	pthread_mutex_lock(&b->lock);
	if (e->pins)
		e->pins--;
	if (e->open && cost != e->cost) {
		b->used += cost;
		b->used -= e->cost <= b->used ? e->cost : b->used;
		e->cost = cost;
	}
	pthread_mutex_unlock(&b->lock);
}

void fdb_closed(struct fdbudget *b, struct fdb_entry *e)
{
	pthread_mutex_lock(&b->lock);
	b->used -= e->cost <= b->used ? e->cost : b->used;
	e->cost = 0;
	e->pins = 0;
	pthread_mutex_unlock(&b->lock);
}

/* Take e off the list if it is open (and, with only_idle, unpinned). */
static int take(struct fdbudget *b, struct fdb_entry *e, int only_idle)
{
	int took;

	pthread_mutex_lock(&b->lock);
	took = e->open && (!only_idle || !e->pins);
	if (took) {
		unlink_entry(e);
		e->open = 0;
		b->open--;
	}
	pthread_mutex_unlock(&b->lock);
	return took;
}

int fdb_take(struct fdbudget *b, struct fdb_entry *e)
{
	return take(b, e, 0);
}

int fdb_could_open(struct fdbudget *b, unsigned cost)
{
	struct fdb_entry *e;
	int could;

	pthread_mutex_lock(&b->lock);
	could = b->used + cost <= b->budget;
	for (e = b->head.prev; !could && e != &b->head; e = e->prev)
		could = !e->pins;
	pthread_mutex_unlock(&b->lock);
	return could;
}

void fdb_each_open(struct fdbudget *b,
		   int (*fn)(struct fdb_entry *e, void *arg), void *arg)
{
	struct fdb_entry *e;

	pthread_mutex_lock(&b->lock);
	for (e = b->head.next; e != &b->head; e = e->next)
		if (fn(e, arg))
			break;
	pthread_mutex_unlock(&b->lock);
}

int fdb_take_idle(struct fdbudget *b, struct fdb_entry *e)
{
	return take(b, e, 1);
}

int fdb_over(struct fdbudget *b, int (*claim)(struct fdb_entry *e, void *arg),
	     void *arg, struct fdb_entry **victim)
{
	int ret = 0, busy;

	*victim = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->used > b->budget) {
		*victim = pick_victim(b, claim, arg, &busy);
		ret = *victim != NULL;
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}
