/*
 * maint.c - the maintenance thread and its pass over the partitions.
 *
 * A pass pins every open partition under the registry's read lock, then
 * works on each without it: partition_tick (flush, roll, retention) and
 * partition_compress_one, which may take long and must not hold up
 * namespace changes.  A closed (idle) partition is opened for its tick
 * only when work is due in it: the registry keeps, for each, when its
 * next time roll, retention or compression falls due (computed by the
 * engine when it closed, or carried over a clean unmount by the mount
 * summary), so a pass looks at a number per idle partition and opens a
 * few of them, within the descriptor budget.  A partition whose due
 * time is not known (loaded at a mount after a crash) is opened by a
 * slow sweep, a few per pass, ticked and closed again at once: its close
 * records its due time.  Errors are logged when they start, change and
 * end, not every pass: a full disk fails every tick until space is
 * freed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "maint.h"
#include "registry_int.h"

struct maint {
	struct registry *reg;
	pthread_t thread;
	int stop; /* protected by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* Idle partitions opened per pass because work is due in them: each
 * open may close another idle partition for room, so a backlog (many
 * partitions expiring at once) is worked off a few at a time. */
#define MAINT_IDLE_PER_PASS 16
/* Idle partitions whose due time is not known opened per pass to learn
 * it (the sweep after a crash): 40 a second, each closed after its
 * tick, so the sweep holds a few descriptors at a time and never
 * competes with the mount's own start. */
#define MAINT_SWEEP_PER_PASS 4
/* partition.conf files a pass reads to learn which idle partitions the
 * sweep needs, and the time it may spend reading them.  The pass holds
 * the registry's lock while it walks the tree, and an open waits for
 * it: reading 100,000 of them at once (the first pass after a crash)
 * kept every open waiting 0.1 to 3 s.  At up to 64 a pass (about 1 ms
 * from the page cache; the time bound for a cold disk) the sweep learns
 * 640 partitions a second. */
#define MAINT_CONF_LOADS_PER_PASS 64
#define MAINT_CONF_LOAD_NS 2000000L

/* Tick open partition p (pinned open by the caller), compress what
 * waits, and add what happened to *sum. */
static void tick_one(struct registry *reg, struct node *p, int64_t now_ms,
		     struct maint_report *sum)
{
	struct partition_tick_report rep;
	struct log_metrics *m;
	uint64_t v;
	int ret;

	sum->partitions++;
	/* A full disk fails every tick until space is freed: say when that
	 * starts, changes and ends, not every second. */
	ret = partition_tick(p->part, now_ms, &rep);
	if (ret < 0 && ret != p->maint_err)
		diag_err("maintenance of partition '%s': %s (retrying)",
			 p->name, strerror(-ret));
	else if (ret == 0 && p->maint_err)
		diag_info("maintenance of partition '%s' works again", p->name);
	p->maint_err = ret;
	sum->failed += ret < 0;
	sum->flushed += rep.flushed != 0;
	sum->rolled += rep.rolled != 0;
	sum->segments_deleted += rep.segments_deleted;
	ret = partition_compress_one(p->part);
	if (ret < 0 && ret != p->compress_err)
		diag_err("cannot compress a segment of partition '%s': "
			 "%s (retrying)",
			 p->name, strerror(-ret));
	p->compress_err = ret < 0 ? ret : 0;
	sum->failed += ret < 0;
	sum->compressed += ret > 0;
	if (rep.segments_deleted) {
		pthread_rwlock_rdlock(&reg->lock);
		diag_info("retention deleted %u segments of '%s/%s'",
			  rep.segments_deleted, p->parent->name, p->name);
		pthread_rwlock_unlock(&reg->lock);
		if (reg->hooks.invalidate)
			reg->hooks.invalidate(reg, p, 0);
	}
	m = partition_metrics(p->part);
	v = metrics_get(m, crc_failures);
	if (v != p->seen_crc_failures) {
		pthread_rwlock_rdlock(&reg->lock);
		diag_err("%llu crc failures reading '%s/%s'",
			 (unsigned long long)(v - p->seen_crc_failures),
			 p->parent->name, p->name);
		pthread_rwlock_unlock(&reg->lock);
		p->seen_crc_failures = v;
	}
}

/* Whether idle partition p has maintenance due at now_ms (a time roll,
 * retention or compression, as partition_next_due said when it closed). */
static int idle_due(struct node *p, int64_t now_ms)
{
	int64_t due;

	pthread_mutex_lock(&p->meta_lock);
	due = p->idle_due;
	pthread_mutex_unlock(&p->meta_lock);
	return due <= now_ms;
}

/* The partitions a pass ticks, each pinned. */
struct pass_pins {
	struct registry *reg;
	struct node **pins;
	size_t n, cap;
};

static int pins_add(struct pass_pins *pp, struct node *p)
{
	struct node **np;

	if (pp->n == pp->cap) {
		pp->cap = pp->cap ? pp->cap * 2 : 64;
		np = realloc(pp->pins, pp->cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		pp->pins = np;
	}
	if (registry_pin(pp->reg, p) == 0)
		pp->pins[pp->n++] = p;
	return 0;
}

/* fdb_each_open's callback: pin an open partition, unless it was
 * deleted (it stays open for the handles that hold it; maintenance
 * leaves it alone).  Under the budget's lock, which a partition's
 * teardown takes (to take it off the list) before the node can go, and
 * the registry's (removed is stable). */
static int pin_open(struct fdb_entry *e, void *arg)
{
	struct node *p =
		(struct node *)((char *)e - offsetof(struct node, fdb));

	return !p->removed && pins_add(arg, p) < 0;
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (struct node *const *)a;
	uintptr_t y = (uintptr_t) * (struct node *const *)b;

	return x < y ? -1 : x > y;
}

/* A partition can be pinned twice in a pass (open when the budget's
 * list was read, closed by the time the walk saw it idle and due):
 * keep one pin of each. */
static void pins_dedup(struct pass_pins *pp)
{
	size_t i, k = 0;

	if (pp->n < 2)
		return; /* pins may be NULL: qsort must not see it */
	qsort(pp->pins, pp->n, sizeof(*pp->pins), by_address);
	for (i = 0; i < pp->n; i++) {
		if (k > 0 && pp->pins[k - 1] == pp->pins[i])
			registry_unpin(pp->reg, pp->pins[i]);
		else
			pp->pins[k++] = pp->pins[i];
	}
	pp->n = k;
}

/* The walk of the tree for idle work: the closed partitions with
 * maintenance due (up to MAINT_IDLE_PER_PASS) into pp, those whose due
 * time is to be learnt (up to sweep_max) into sweep.  Returns when idle
 * work may next be due: the earliest due time it left, or now_ms when it
 * took or left due or unknown partitions (the next pass walks again,
 * whether their opens work or fail). */
static int64_t walk_idle(struct registry *reg, int64_t now_ms,
			 struct pass_pins *pp, struct node **sweep,
			 size_t *nsweep, size_t sweep_max)
{
	unsigned loads = MAINT_CONF_LOADS_PER_PASS, left;
	int64_t loads_until = now_ns() + MAINT_CONF_LOAD_NS;
	int64_t next = INT64_MAX, due;
	size_t idle = 0;
	struct node *t, *p;
	int unknown;

	pthread_rwlock_rdlock(&reg->lock);
	for (t = reg->root.children; t; t = t->next) {
		for (p = t->children; p; p = p->next) {
			if (p->part || p->removed)
				continue; /* open: from the budget's list */
			left = loads;
			if (*nsweep < sweep_max &&
			    registry_due_unknown(reg, p, &loads)) {
				if (registry_pin(reg, p) == 0)
					sweep[(*nsweep)++] = p;
				/* walk again: its open may fail, and then
				 * no close tells the time */
				next = now_ms;
				continue;
			}
			if (loads != left && now_ns() > loads_until)
				loads = 0;
			pthread_mutex_lock(&p->meta_lock);
			due = p->idle_due;
			unknown = p->due_unknown;
			pthread_mutex_unlock(&p->meta_lock);
			if (unknown) {
				next = now_ms; /* a later pass learns it */
				continue;
			}
			if (due > now_ms) {
				next = due < next ? due : next;
				continue;
			}
			next = now_ms; /* due: this pass or a later one */
			if (idle >= MAINT_IDLE_PER_PASS)
				continue;
			idle++;
			if (pins_add(pp, p) < 0)
				goto out; /* next is now_ms: walk again */
		}
	}
out:
	pthread_rwlock_unlock(&reg->lock);
	return next;
}

/* One round: tick every open partition, and open the idle ones with work
 * due (a few per pass, within the descriptor budget) to tick them too;
 * compress what waits, report what the engine did on its own
 * (retention, as the tick reports it; CRC failures, which reads find and
 * count).  The open partitions come from the descriptor budget's list;
 * the tree (100,000 partitions take about 4 ms to walk, while opens
 * wait for the registry's lock) is walked only when the registry's hint
 * says idle work may be due. */
void maint_pass(struct registry *reg, int64_t (*now)(void),
		struct maint_report *out)
{
	struct pass_pins pp = {reg, NULL, 0, 0};
	struct node *sweep[MAINT_SWEEP_PER_PASS], *p;
	struct maint_report sum;
	size_t i, nsweep = 0, sweep_max = 0;
	int64_t now_ms = now(), next;
	int is_open;

	memset(&sum, 0, sizeof(sum));
	pthread_rwlock_rdlock(&reg->lock);
	fdb_each_open(&reg->fdb, pin_open, &pp);
	pthread_rwlock_unlock(&reg->lock);
	if (now_ms >= atomic_load(&reg->idle_hint)) {
		/* No sweep while every open partition is pinned: its opens
		 * would fail (EMFILE), each with a log line. */
		if (fdb_could_open(&reg->fdb, FDB_OPEN_COST))
			sweep_max = MAINT_SWEEP_PER_PASS;
		/* Raised before the walk: a due time set while it runs
		 * lowers it again, and is not lost. */
		atomic_store(&reg->idle_hint, INT64_MAX);
		next = walk_idle(reg, now_ms, &pp, sweep, &nsweep, sweep_max);
		idle_hint_lower(reg, next);
		sum.walked = 1;
	}
	pins_dedup(&pp);
	for (i = 0; i < pp.n; i++) {
		p = pp.pins[i];
		if (registry_part_peek(reg, p) == 0) {
			is_open = 1;
		} else {
			/* Idle with work due (or closed since it was
			 * listed: then it was flushed when it closed, and
			 * its due time is checked again). */
			is_open = 0;
			if (!idle_due(p, now_ms) || registry_part_get(reg, p) < 0)
				goto next;
			sum.idle_opened++;
		}
		tick_one(reg, p, now(), &sum);
		if (!is_open && idle_due(p, now_ms)) {
			/* Still due after its tick (a segment held, busy or
			 * not compressible yet): look again in a minute, not
			 * every pass.  Its close sets the time anew. */
			pthread_mutex_lock(&p->meta_lock);
			p->idle_due = now_ms + 60000;
			pthread_mutex_unlock(&p->meta_lock);
			idle_hint_lower(reg, now_ms + 60000);
		}
		registry_part_put(reg, p);
	next:
		registry_unpin(reg, p);
	}
	free(pp.pins);
	for (i = 0; i < nsweep; i++) {
		p = sweep[i];
		if (registry_part_get(reg, p) == 0) {
			sum.idle_swept++;
			tick_one(reg, p, now(), &sum);
			registry_part_put(reg, p);
			/* its close records its due time (unless someone
			 * uses it now: then a later close does) */
			registry_part_close_idle(reg, p);
		}
		registry_unpin(reg, p);
	}
	/* Rolls add descriptors to open partitions: close idle ones while
	 * the budget is exceeded. */
	registry_part_trim(reg);
	if (out)
		*out = sum;
}

static void *maint_main(void *arg)
{
	struct maint *mt = arg;
	struct timespec deadline;

	pthread_mutex_lock(&mt->lock);
	while (!mt->stop) {
		pthread_mutex_unlock(&mt->lock);
		maint_pass(mt->reg, registry_now_ms, NULL);
		pthread_mutex_lock(&mt->lock);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += MAINT_PERIOD_MS * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		if (!mt->stop)
			pthread_cond_timedwait(&mt->cond, &mt->lock, &deadline);
	}
	pthread_mutex_unlock(&mt->lock);
	return NULL;
}

/* Start the maintenance thread. */
int maint_start(struct registry *reg, struct maint **out)
{
	struct maint *mt = calloc(1, sizeof(*mt));
	int ret;

	if (!mt)
		return -ENOMEM;
	mt->reg = reg;
	pthread_mutex_init(&mt->lock, NULL);
	pthread_cond_init(&mt->cond, NULL);
	ret = -pthread_create(&mt->thread, NULL, maint_main, mt);
	if (ret < 0) {
		pthread_cond_destroy(&mt->cond);
		pthread_mutex_destroy(&mt->lock);
		free(mt);
		return ret;
	}
	*out = mt;
	return 0;
}

/* Stop the maintenance thread, wait for it, free it. */
void maint_stop(struct maint *mt)
{
	if (!mt)
		return;
	pthread_mutex_lock(&mt->lock);
	mt->stop = 1;
	pthread_cond_signal(&mt->cond);
	pthread_mutex_unlock(&mt->lock);
	pthread_join(mt->thread, NULL);
	pthread_cond_destroy(&mt->cond);
	pthread_mutex_destroy(&mt->lock);
	free(mt);
}
