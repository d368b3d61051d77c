/*
 * partition_int.h - the partition's private header: struct partition and
 * the helpers its files share.
 *
 * A partition is five files, one job each: partition.c (the struct's
 * life: create, close, append and roll, retired descriptors, info and
 * configuration), partition_recovery.c (open: the directory scan, the
 * repairs and the recovery point a reopened log starts from),
 * partition_flush.c (making appends durable: fdatasyncs, partition.state's
 * recovery point, the losses a failed sync leaves), partition_read.c
 * (reads, holes and the offset/byte/time lookups) and partition_maint.c
 * (what the periodic tick does to old segments: retention, delete_before,
 * compression).  Only they include this header; the rest of fluxfs sees
 * partition.h.
 *
 * Locking.  p->lock serialises every change (append, roll, flush,
 * retention, config, the compression swap).  p->seglock (a rwlock)
 * protects the segment array and each segment's mapping and data
 * descriptor: readers hold it shared; whoever replaces or removes a
 * segment, or grows a mapping, holds p->lock and then takes it
 * exclusively for the short swap.  Appends write through the active
 * segment without seglock and publish by storing end_byte (release) after
 * the index entries are written, so a reader that loads end_byte (acquire)
 * never sees a batch before its entry.  Removed segments and replaced
 * descriptors are retired: closed at once unless a zero-copy reader has
 * pinned them (partition_read_ranges), then at the last unpin.
 */
#ifndef FLUXFS_PARTITION_INT_H
#define FLUXFS_PARTITION_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "commit.h"
#include "config.h"
#include "layout.h"
#include "metrics.h"
#include "partition.h"
#include "segment.h"

struct partition {
	pthread_mutex_t lock;
	pthread_rwlock_t seglock;
	struct segment **segs;	  /* oldest first; protected by seglock */
	uint32_t nsegs, segs_cap; /* changed under lock + seglock */
	_Atomic uint64_t start_offset, start_byte; /* written under lock */
	_Atomic uint64_t next_offset, end_byte;	   /* written under lock */
	_Atomic int64_t last_ts;
	_Atomic uint64_t flushed_byte; /* written under lock */
	uint64_t flushed_offset;       /* message at flushed_byte; lock */
	uint64_t first_base_byte;      /* of segs[0]; protected by lock */
	uint64_t state_rp;     /* recovery point on disk; protected by lock */
	int64_t last_flush_ms; /* protected by lock */
	int64_t state_ms;      /* when the tick last caught the state up;
				* protected by lock */
	int flush_err;	       /* the last flush's failure, to log changes only;
				* protected by lock */
	struct partition_loss *losses; /* recorded losses; protected by lock */
	uint64_t nlisted;	       /* entries in losses; lock */
	_Atomic uint64_t nlosses;      /* written under lock */
	/* partition_hold_retention()'s offset plus one; 0: no hold. */
	_Atomic uint64_t retention_hold;
	struct config cfg;     /* protected by lock */
	int dfd;
	char *name; /* for diagnostics; protected by lock */
	struct log_metrics m;
	struct seg_entry *plan; /* scratch entries; protected by lock */
	size_t plan_cap;

	struct codec_cache cache; /* the last decoded compressed block */

	/* One flush and one partition.state writer at a time; taken before
	 * lock.  A flush writes the state file holding only this, so appends
	 * never wait for its fsync. */
	pthread_mutex_t state_lock;
	struct commit commit; /* fsyncs waiting share flushes */
	/* Its filesystem's syncs and the error generation it last checked
	 * (partition_flush.c): set by the first sync, which holds state_lock
	 * (a flush) or lock (a flush_ms=0 append). */
	_Atomic(void *) volume;
	_Atomic uint64_t vol_seen;
	pthread_mutex_t retire_lock;
	uint32_t pins;		/* protected by retire_lock */
	struct segment **rsegs; /* protected by retire_lock */
	uint32_t nrsegs;
	int *rfds; /* protected by retire_lock */
	uint32_t nrfds;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static inline struct segment *active_seg(struct partition *p)
{
	return p->segs[p->nsegs - 1];
}

static inline uint64_t seg_end(const struct segment *s)
{
	return atomic_load_explicit(&s->end_byte, memory_order_acquire);
}

static inline uint32_t seg_n(const struct segment *s)
{
	return atomic_load_explicit(&s->nentries, memory_order_acquire);
}

/* The last segment whose base (the uint64_t member at byte offset field
 * of struct segment: base_byte or base_offset) is <= v; NULL if none. */
static inline struct segment *seg_upto(struct partition *p, size_t field,
				       uint64_t v)
{
	uint32_t lo = 0, hi = p->nsegs, mid;
	uint64_t base;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		memcpy(&base, (const char *)p->segs[mid] + field, sizeof(base));
		if (base <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? p->segs[lo - 1] : NULL;
}

/* The segment holding global byte pos, or message offset off. */
#define seg_by_byte(p, pos) \
	seg_upto(p, offsetof(struct segment, base_byte), pos)
#define seg_by_offset(p, off) \
	seg_upto(p, offsetof(struct segment, base_offset), off)

/* ------------------------------------------------------------------ */
/* Shared between the partition's files                                 */

/* partition.c: the struct, its segment array and retired descriptors. */

/* The partition directory's full path for a diagnostic. */
void part_path(struct partition *p, char *buf, size_t size);
/* Hold retired descriptors open until the matching part_unpin(). */
void part_pin(struct partition *p);
void part_unpin(struct partition *p);
/* Close s (or fd) now, or at the last unpin. */
void part_retire(struct partition *p, struct segment *s, int fd);
/* Give back the descriptors of sealed segment s if it can be read
 * through its mappings alone (a raw segment on stable storage, mapped
 * whole, or a compressed one whose file is mapped): reads of it then
 * copy from the mapping, and compression opens its files when it runs.
 * Caller holds p->lock (or is opening p). */
void part_seg_idle(struct partition *p, struct segment *s);
/* Append s to the segment array (caller holds p->lock). */
int part_segs_push(struct partition *p, struct segment *s);
/* Write partition.state (caller holds p->lock and, once the partition
 * is shared, p->state_lock). */
int part_state_write(struct partition *p, const struct layout_state *st);
/* The state as it is now in memory. */
void part_state_now(struct partition *p, struct layout_state *st);
struct partition *partition_alloc(int dfd, const char *name,
				  const struct config *cfg);
void partition_free(struct partition *p);
/* Start a new active segment (caller holds p->lock). */
int part_roll_locked(struct partition *p);
/* Whether the active segment must roll before len more bytes. */
int part_roll_due(struct partition *p, size_t len, int64_t now_ms);

/* partition_flush.c: flush with p->lock held throughout (close). */
int part_flush_locked(struct partition *p);
/* Write partition.state with the recovery point the syncs reached, syncing
 * no data (the tick, every PART_STATE_CATCH_UP_MS while it lags). */
int part_state_catch_up(struct partition *p);
/* How often the tick moves a lagging recovery point up: a reopen after a
 * crash checks the entries above it against their CRCs, and a bad entry
 * there is cut as a torn tail with everything after it, so the lag
 * bounds that work and that risk (see storage.md); each move is a file
 * written and renamed and two fsyncs. */
#define PART_STATE_CATCH_UP_MS 10000
/* The sync of a flush_ms=0 append, written to the active segment a and
 * not yet published (caller holds p->lock): both files, shared with the
 * other partitions of the filesystem syncing at the same time.  0, or
 * the error: the append then fails and is cut back. */
int part_sync_append(struct partition *p, struct segment *a);
/* The scheduled flush: partition_flush() without the state write when
 * recovery does not need it (the tick catches the state up). */
int part_flush_scheduled(struct partition *p);

/* partition_read.c: byte -> containing message (caller holds seglock
 * shared), and the report of a batch whose CRC fails. */
int part_byte_to_offset_locked(struct partition *p, uint64_t byte,
			       uint64_t *offset, uint64_t *msg_start);
void part_report_bad(struct partition *p, struct segment *s, uint32_t i);

#endif
