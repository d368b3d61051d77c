/*
 * metrics.h - the storage engine's counters, one set per partition.
 *
 * Plain relaxed atomics: bumped on hot paths without locks, read at any
 * time (by .metrics and fluxctl stat) as a consistent-enough snapshot.
 */
#ifndef FLUXFS_METRICS_H
#define FLUXFS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

struct log_metrics {
	atomic_uint_fast64_t bytes_appended;
	atomic_uint_fast64_t messages_appended;
	atomic_uint_fast64_t batches_appended;
	atomic_uint_fast64_t bytes_read;
	atomic_uint_fast64_t reads;
	atomic_uint_fast64_t segments_created;
	atomic_uint_fast64_t segments_deleted;
	atomic_uint_fast64_t segments_compressed;
	atomic_uint_fast64_t index_lookups;
	atomic_uint_fast64_t crc_failures;
	atomic_uint_fast64_t lost_messages; /* in dropped batches, at open */
	atomic_uint_fast64_t recoveries;
	atomic_uint_fast64_t truncated_bytes;
	atomic_uint_fast64_t flushes;
	atomic_uint_fast64_t flush_failures;
	/* partition_sync calls (fsyncs); a flush covers one or more */
	atomic_uint_fast64_t sync_requests;
	atomic_uint_fast64_t data_losses; /* flushes whose data sync failed */
	atomic_uint_fast64_t lost_bytes;  /* bytes those flushes covered */
	atomic_uint_fast64_t append_ns_total; /* time spent in partition_append */
	atomic_uint_fast64_t flush_ns_total;  /* time spent in fsync paths */
};

#define metrics_add(m, field, n) \
	atomic_fetch_add_explicit(&(m)->field, (n), memory_order_relaxed)
#define metrics_get(m, field) \
	atomic_load_explicit(&(m)->field, memory_order_relaxed)

/* Monotonic nanoseconds: what the *_ns_total counters add up, and what
 * the daemon times short spans with. */
static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
