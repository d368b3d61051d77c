/*
 * fdbudget.h - the daemon's descriptor budget for open partitions: which
 * partitions hold descriptors, how many, in what order they were last
 * used, and which idle one to close when a new one needs room.
 *
 * A partition's files are opened on first use and closed when idle; this
 * module only keeps the books.  Each open partition is an entry with a
 * cost (its descriptors) and a pin count (open handles, a maintenance
 * pass, a query in progress).  Entries sit on one list, most recently
 * used first.  Before a partition is opened its owner asks for room:
 * either the budget has it (the cost is reserved), or the least recently
 * used unpinned entry the owner can claim is handed back to be closed,
 * or, when every open entry is pinned, -EMFILE: only the request that
 * wanted a new partition fails, nothing open is touched.
 *
 * The module closes nothing and calls nothing but the claim callback the
 * caller gives it (a trylock of the victim's open/close lock), so it is
 * tested alone (tests/unit/check_fdbudget.c).  Thread-safe: one mutex.
 */
#ifndef FLUXFS_FDBUDGET_H
#define FLUXFS_FDBUDGET_H

#include <pthread.h>
#include <stdint.h>

struct fdb_entry {
	struct fdb_entry *prev, *next; /* on the list while open */
	unsigned pins;
	unsigned cost; /* descriptors counted for it */
	int open;
};

struct fdbudget {
	pthread_mutex_t lock;
	struct fdb_entry head; /* list sentinel: head.next is the newest */
	uint64_t budget;       /* descriptors open partitions may hold */
	uint64_t used;	       /* counted, reservations included */
	uint64_t open;	       /* entries open */
	uint64_t evictions;    /* idle partitions handed back to close */
	uint64_t refusals;     /* requests refused with -EMFILE */
};

/* Descriptors a partition is counted for before it is opened: its
 * directory, and the active segment's .log and .idx. */
#define FDB_OPEN_COST 3

void fdb_init(struct fdbudget *b, uint64_t budget);
void fdb_destroy(struct fdbudget *b);

/* Room for cost more descriptors.  Returns 0 when the budget has it (cost
 * is now reserved: fdb_opened or fdb_unreserve settles it); 1 with
 * *victim an idle entry, taken off the list and no longer counted as
 * open, that the caller must close and then fdb_closed(), before asking
 * again; -EAGAIN when idle entries exist but none could be claimed now
 * (ask again in a moment); or -EMFILE when every entry is pinned.
 * claim(victim, arg) is called under the module's lock for each idle
 * candidate, least recently used first, and returns non-zero if the
 * caller may close it now (it must not block). */
int fdb_make_room(struct fdbudget *b, unsigned cost,
		  int (*claim)(struct fdb_entry *e, void *arg), void *arg,
		  struct fdb_entry **victim);
/* A reservation not used (the open failed). */
void fdb_unreserve(struct fdbudget *b, unsigned cost);
/* e was opened on a reservation of reserved descriptors and costs cost:
 * it is on the list, newest, with one pin. */
void fdb_opened(struct fdbudget *b, struct fdb_entry *e, unsigned reserved,
		unsigned cost);
/* Pin an open entry; touch makes it the most recently used (a read or
 * write does, maintenance does not).  0, or -ENOENT if e is not open. */
int fdb_pin(struct fdbudget *b, struct fdb_entry *e, int touch);
/* Drop a pin; cost is what e holds now (a roll adds segments). */
void fdb_unpin(struct fdbudget *b, struct fdb_entry *e, unsigned cost);
/* e, handed back by fdb_make_room or fdb_take, was closed. */
void fdb_closed(struct fdbudget *b, struct fdb_entry *e);
/* Take e off the list to close it whatever its pins (the partition is
 * removed, or the daemon stops): 1 if it was open, else 0. */
int fdb_take(struct fdbudget *b, struct fdb_entry *e);
/* Whether a partition costing cost could be opened now: the budget has
 * the room, or an open entry is unpinned (and could be closed for it).
 * A hint: it may change right after. */
int fdb_could_open(struct fdbudget *b, unsigned cost);
/* Call fn(e, arg) for every open entry, newest first, with the budget's
 * lock held (fn must not call this module); stops early when fn returns
 * non-zero. */
void fdb_each_open(struct fdbudget *b,
		   int (*fn)(struct fdb_entry *e, void *arg), void *arg);
/* Take e off the list to close it only if it is open and unpinned: 1
 * (the caller closes it, then fdb_closed), else 0 and e is left as it
 * is.  A partition opened for a moment (maintenance learning its due
 * time) goes back without waiting to be the least recently used. */
int fdb_take_idle(struct fdbudget *b, struct fdb_entry *e);
/* Over the budget (costs grew since they were counted): an idle victim
 * to close as in fdb_make_room, 1; or 0 if within budget or none can be
 * claimed. */
int fdb_over(struct fdbudget *b, int (*claim)(struct fdb_entry *e, void *arg),
	     void *arg, struct fdb_entry **victim);

#endif
