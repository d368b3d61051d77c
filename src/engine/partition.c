/*
 * partition.c - one partition's log as an object: struct partition's
 * life (create, close, discard), append and roll, the retired segments
 * and descriptors that pinned readers keep open, partition.state's
 * snapshot, and the info and configuration accessors.
 *
 * Opening an existing partition (recovery) is partition_recovery.c,
 * flushing partition_flush.c, reads and lookups partition_read.c,
 * retention, delete_before and compression partition_maint.c; the struct
 * and the locking rules they all follow are in partition_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "diag.h"
#include "io.h"
#include "partition_int.h"

/* ------------------------------------------------------------------ */
/* Diagnostics, retired segments, the segment array                     */

/* The partition directory's full path for a diagnostic (the name alone
 * if /proc cannot tell). */
void part_path(struct partition *p, char *buf, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", p->dfd);
	n = readlink(link, buf, size - 1);
	if (n <= 0) {
		snprintf(buf, size, "%s", p->name);
		return;
	}
	buf[n] = '\0';
}

static void free_retired_locked(struct partition *p)
{
	uint32_t i;

	for (i = 0; i < p->nrsegs; i++)
		segment_free(p->rsegs[i]);
	for (i = 0; i < p->nrfds; i++)
		io_close(p->rfds[i]);
	p->nrsegs = 0;
	p->nrfds = 0;
}

/* Keep retired segments and descriptors open until the matching unpin:
 * zero-copy readers and flushes use descriptors without p->lock. */
void part_pin(struct partition *p)
{
	pthread_mutex_lock(&p->retire_lock);
	p->pins++;
	pthread_mutex_unlock(&p->retire_lock);
}

void part_unpin(struct partition *p)
{
	pthread_mutex_lock(&p->retire_lock);
	if (p->pins > 0 && --p->pins == 0)
		free_retired_locked(p);
	pthread_mutex_unlock(&p->retire_lock);
}

/* Sealed segments hold no descriptor while they can be read through
 * their mappings: a partition appended to through thousands of rolls
 * costs its directory and its active segment's .log and .idx, not two
 * descriptors per segment.  A zero-copy reply needs a descriptor, so
 * reads of such a segment copy from the mapping instead (old data,
 * read rarely); no later flush needs them (the segment is synced), and
 * compression opens the files it reads.  A compressed segment's blocks
 * decode from a mapping of its compressed file the same way. */
void part_seg_idle(struct partition *p, struct segment *s)
{
	int log_fd, idx_fd;

	if (!s->sealed || !s->synced || s->busy || !s->map || s->log_fd < 0)
		return;
	if (s->codec == COMPRESSION_NONE
		    ? !s->lmap || atomic_load(&s->log_short) ||
			      s->lmap_len < seg_end(s) - s->base_byte
		    : !s->cmap || s->cmap_len < s->disk_bytes)
		return;
	pthread_rwlock_wrlock(&p->seglock);
	log_fd = s->log_fd;
	idx_fd = s->idx_fd;
	s->log_fd = -1;
	s->idx_fd = -1;
	pthread_rwlock_unlock(&p->seglock);
	/* A flush syncs both without p->lock, pinned: compression can
	 * finish this segment while a flush that began before still holds
	 * its descriptors (the .idx was closed at once, and that flush
	 * failed with EBADF). */
	part_retire(p, NULL, idx_fd);
	part_retire(p, NULL, log_fd);
}

/* Close s (or fd) now, or at the last unpin if zero-copy readers hold
 * descriptors. */
void part_retire(struct partition *p, struct segment *s, int fd)
{
	void *grown;

	pthread_mutex_lock(&p->retire_lock);
	if (p->pins == 0) {
		segment_free(s);
		io_close(fd);
		goto out;
	}
	if (s) {
		grown = realloc(p->rsegs, (p->nrsegs + 1) * sizeof(*p->rsegs));
		if (grown) {
			p->rsegs = grown;
			p->rsegs[p->nrsegs++] = s;
		} /* else leak rather than close under a reader */
	}
	if (fd >= 0) {
		grown = realloc(p->rfds, (p->nrfds + 1) * sizeof(*p->rfds));
		if (grown) {
			p->rfds = grown;
			p->rfds[p->nrfds++] = fd;
		}
	}
out:
	pthread_mutex_unlock(&p->retire_lock);
}

/* Append s to the array (caller holds p->lock). */
int part_segs_push(struct partition *p, struct segment *s)
{
	struct segment **grown = NULL;
	uint32_t cap = p->segs_cap;

	if (p->nsegs == p->segs_cap) {
		cap = cap ? cap * 2 : 8;
		grown = malloc(cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		if (p->nsegs)
			memcpy(grown, p->segs, p->nsegs * sizeof(*grown));
	}
	pthread_rwlock_wrlock(&p->seglock);
	if (grown) {
		free(p->segs);
		p->segs = grown;
		p->segs_cap = cap;
	}
	if (p->nsegs)
		active_seg(p)->sealed = 1;
	p->segs[p->nsegs++] = s;
	pthread_rwlock_unlock(&p->seglock);
	return 0;
}

/* ------------------------------------------------------------------ */
/* partition.state                                                      */

/* Write partition.state and note the recovery point on disk (caller
 * holds p->lock and, once the partition is shared, p->state_lock). */
int part_state_write(struct partition *p, const struct layout_state *st)
{
	int ret = layout_state_store(p->dfd, st);

	if (ret == 0)
		p->state_rp = st->recovery_point;
	return ret;
}

void part_state_now(struct partition *p, struct layout_state *st)
{
	st->start_offset = atomic_load(&p->start_offset);
	st->start_byte = atomic_load(&p->start_byte);
	st->first_base_byte = p->first_base_byte;
	st->recovery_point = atomic_load(&p->flushed_byte);
}

/* ------------------------------------------------------------------ */
/* Create, close                                                        */

struct partition *partition_alloc(int dfd, const char *name,
				  const struct config *cfg)
{
	struct partition *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->name = strdup(name);
	if (!p->name) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_rwlock_init(&p->seglock, NULL);
	codec_cache_init(&p->cache);
	pthread_mutex_init(&p->retire_lock, NULL);
	pthread_mutex_init(&p->state_lock, NULL);
	commit_init(&p->commit);
	p->cfg = *cfg;
	p->dfd = dfd;
	atomic_store(&p->last_ts, -1);
	return p;
}

void partition_free(struct partition *p)
{
	uint32_t i;

	for (i = 0; i < p->nsegs; i++)
		segment_free(p->segs[i]);
	pthread_mutex_lock(&p->retire_lock);
	free_retired_locked(p);
	pthread_mutex_unlock(&p->retire_lock);
	free(p->rsegs);
	free(p->rfds);
	free(p->segs);
	free(p->plan);
	free(p->losses);
	io_close(p->dfd);
	pthread_mutex_destroy(&p->lock);
	pthread_rwlock_destroy(&p->seglock);
	codec_cache_release(&p->cache);
	pthread_mutex_destroy(&p->retire_lock);
	pthread_mutex_destroy(&p->state_lock);
	commit_destroy(&p->commit);
	free(p->name);
	free(p);
}

/* Create dirfd/name holding an empty partition. */
int partition_create(int dirfd, const char *name, const struct config *cfg,
		     int64_t now_ms, struct partition **out)
{
	struct partition *p;
	struct segment *s;
	struct layout_state st = {0, 0, 0, 0};
	int dfd, ret;

	ret = io_mkdirat(dirfd, name, 0755);
	if (ret < 0)
		return ret;
	dfd = io_opendirat(dirfd, name);
	if (dfd < 0) {
		ret = dfd;
		goto err_rmdir;
	}
	p = partition_alloc(dfd, name, cfg);
	if (!p) {
		io_close(dfd);
		ret = -ENOMEM;
		goto err_rmdir;
	}
	ret = segment_create(dfd, 0, 0, &s);
	if (ret < 0)
		goto err_free;
	ret = part_segs_push(p, s);
	if (ret < 0) {
		segment_free(s);
		goto err_free;
	}
	ret = part_state_write(p, &st);
	if (ret == 0)
		ret = io_fsync_dir(dirfd);
	if (ret < 0)
		goto err_free;
	metrics_add(&p->m, segments_created, 1);
	p->last_flush_ms = now_ms;
	p->state_ms = now_ms;
	*out = p;
	return 0;
err_free:
	segment_unlink(dfd, 0);
	io_unlinkat(dfd, LAYOUT_STATE_FILE, 0);
	partition_free(p);
err_rmdir:
	io_unlinkat(dirfd, name, AT_REMOVEDIR);
	return ret;
}

void partition_discard(struct partition *p)
{
	/* As partition_close: wait for a flush or append still running. */
	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	partition_free(p);
}

/* Flush, then free the partition. */
int partition_close(struct partition *p)
{
	int ret, cut;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	/* A failed append's bytes its cut-back could not remove would be
	 * read back as data by the next open. */
	cut = segment_cut_tail(active_seg(p));
	if (cut < 0)
		diag_err("closing '%s': cannot cut a failed append's bytes "
			 "back: %s",
			 p->name, strerror(-cut));
	ret = part_flush_locked(p);
	if (ret == 0)
		ret = cut;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	partition_free(p);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Append and roll                                                      */

int part_roll_locked(struct partition *p)
{
	struct segment *old = active_seg(p), *s;
	int ret;

	/* Sealed with a failed append's entries past its end, it would
	 * claim offsets the new segment holds. */
	ret = segment_cut_tail(old);
	if (ret < 0)
		return ret;
	ret = segment_create(p->dfd, old->next_offset, seg_end(old), &s);
	if (ret < 0)
		return ret;
	ret = io_fsync_dir(p->dfd);
	if (ret == 0)
		ret = part_segs_push(p, s);
	if (ret < 0) {
		segment_unlink(p->dfd, s->base_offset);
		segment_free(s);
		return ret;
	}
	metrics_add(&p->m, segments_created, 1);
	return 0;
}

int part_roll_due(struct partition *p, size_t len, int64_t now_ms)
{
	struct segment *a = active_seg(p);
	uint32_t n = seg_n(a);

	if (n == 0)
		return 0;
	if (seg_end(a) - a->base_byte + len > p->cfg.segment_bytes)
		return 1;
	return p->cfg.segment_ms >= 0 &&
	       now_ms - segment_entry(a, 0).ts >= p->cfg.segment_ms;
}

/* Append one batch of complete messages given as pieces. */
int partition_appendv(struct partition *p, const struct iovec *iov, int iovcnt,
		      uint32_t count, int64_t now_ms, uint64_t expect_end,
		      uint64_t *first_offset, uint64_t *byte_pos)
{
	struct segment *a;
	int64_t t0 = now_ns(), ts;
	uint64_t end, first;
	uint32_t n, msgs;
	size_t need, len = 0;
	int ret, sync, i;

	if (iovcnt <= 0)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > PARTITION_MAX_BATCH)
			return -EMSGSIZE;
		len += iov[i].iov_len;
	}
	if (len == 0 || count == 0)
		return -EINVAL;
	if (len > PARTITION_MAX_BATCH)
		return -EMSGSIZE;
	pthread_mutex_lock(&p->lock);
	end = atomic_load_explicit(&p->end_byte, memory_order_relaxed);
	if (active_seg(p)->readonly) {
		ret = -EROFS; /* logged once, when it was opened */
		goto out;
	}
	if (expect_end != PARTITION_ANY_END && expect_end != end) {
		if (byte_pos)
			*byte_pos = end;
		ret = -EPERM;
		goto out;
	}
	if (part_roll_due(p, len, now_ms)) {
		ret = part_roll_locked(p);
		if (ret < 0)
			goto out;
	}
	a = active_seg(p);
	need = segment_plan_max(len);
	if (need > p->plan_cap) {
		free(p->plan);
		p->plan = malloc(need * sizeof(*p->plan));
		p->plan_cap = p->plan ? need : 0;
		if (!p->plan) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/* Timestamps never go back, so time lookups can binary search. */
	ts = atomic_load(&p->last_ts);
	if (now_ms > ts)
		ts = now_ms;
	first = a->next_offset;
	n = segment_planv(iov, iovcnt, len, first, end, ts, p->plan, &msgs);
	if (count != PARTITION_ANY_COUNT && msgs != count) {
		ret = -EINVAL;
		goto out;
	}
	ret = segment_map_grow(a, seg_n(a) + n, end + len - a->base_byte,
			       &p->seglock);
	if (ret < 0) {
		diag_err("cannot map the index of '%s': %s", p->name,
			 strerror(-ret));
		goto out;
	}
	/* flush_ms=0 syncs under the lock, between the write and the
	 * publication, so that a failed sync can cut the batch back and the
	 * write fail having changed nothing.  The kernel lets one O_APPEND
	 * write run on an inode at a time, so there is nothing to group
	 * within the partition; the sync is shared with the other
	 * partitions of the filesystem syncing at the same time. */
	sync = p->cfg.flush_ms == 0;
	ret = segment_writev(a, iov, iovcnt, len, p->plan, n);
	if (ret == 0 && sync) {
		ret = part_sync_append(p, a);
		if (ret < 0)
			segment_unwrite(a); /* else retried before more */
	}
	if (ret < 0) {
		diag_err("cannot append to '%s': %s", p->name, strerror(-ret));
		goto out;
	}
	segment_publish(a, len, p->plan, n, sync);
	atomic_store(&p->last_ts, ts);
	atomic_store_explicit(&p->next_offset, first + msgs,
			      memory_order_release);
	atomic_store_explicit(&p->end_byte, end + len, memory_order_release);
	/* fdatasync covered the whole active file; older segments count
	 * only if they were flushed already */
	if (sync && atomic_load(&p->flushed_byte) >= a->base_byte) {
		atomic_store(&p->flushed_byte, end + len);
		p->flushed_offset = first + msgs;
	}
	metrics_add(&p->m, bytes_appended, len);
	metrics_add(&p->m, messages_appended, msgs);
	metrics_add(&p->m, batches_appended, 1);
	if (first_offset)
		*first_offset = first;
	if (byte_pos)
		*byte_pos = end;
out:
	pthread_mutex_unlock(&p->lock);
	metrics_add(&p->m, append_ns_total, (uint64_t)(now_ns() - t0));
	return ret;
}

/* Append one contiguous batch of complete messages. */
int partition_append(struct partition *p, const void *buf, size_t len,
		     uint32_t count, int64_t now_ms, uint64_t expect_end,
		     uint64_t *first_offset, uint64_t *byte_pos)
{
	struct iovec v = {(void *)(uintptr_t)buf, len};

	if (count == PARTITION_ANY_COUNT)
		return -EINVAL; /* this form promises the caller counted */
	return partition_appendv(p, &v, 1, count, now_ms, expect_end,
				 first_offset, byte_pos);
}

/* Make a log with no messages begin at start_byte. */
int partition_set_start_byte(struct partition *p, uint64_t start_byte)
{
	struct segment *a;
	struct layout_state st;
	int ret = -EPERM;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	a = active_seg(p);
	if (p->nsegs != 1 || seg_n(a) != 0 || atomic_load(&p->next_offset))
		goto out;
	st.start_offset = 0;
	st.start_byte = start_byte;
	st.first_base_byte = start_byte;
	st.recovery_point = start_byte;
	/* The state names the new start first: a crash in between leaves
	 * an empty segment whose header is fixed from the state. */
	ret = part_state_write(p, &st);
	if (ret == 0)
		ret = segment_set_base_byte(a, start_byte);
	if (ret < 0)
		goto out;
	p->first_base_byte = start_byte;
	atomic_store(&p->start_byte, start_byte);
	atomic_store(&p->end_byte, start_byte);
	atomic_store(&p->flushed_byte, start_byte);
	p->flushed_offset = 0;
out:
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Info, configuration, odds and ends                                   */

/* A snapshot of the partition's positions and sizes. */
void partition_get_info(struct partition *p, struct partition_info *info)
{
	struct seg_entry ent;
	const struct seg_entry *e;
	struct segment *s;
	uint64_t so;
	uint32_t i, n;
	long k;

	memset(info, 0, sizeof(*info));
	pthread_rwlock_rdlock(&p->seglock);
	info->end_byte =
		atomic_load_explicit(&p->end_byte, memory_order_acquire);
	info->next_offset = atomic_load(&p->next_offset);
	info->start_offset = atomic_load(&p->start_offset);
	info->start_byte = atomic_load(&p->start_byte);
	info->segments = p->nsegs;
	info->last_ts = atomic_load(&p->last_ts);
	info->first_ts = -1;
	info->flushed_byte = atomic_load(&p->flushed_byte);
	info->descriptors = 1; /* the directory */
	for (i = 0; i < p->nsegs; i++) {
		s = p->segs[i];
		info->descriptors += (s->log_fd >= 0) + (s->idx_fd >= 0);
		/* a raw segment's size follows its published end (the
		 * appender updates disk_bytes without the segment lock) */
		info->disk_bytes += s->codec == COMPRESSION_NONE
					    ? seg_end(s) - s->base_byte
					    : s->disk_bytes;
		info->lost_messages += s->lost_msgs;
		info->lost_bytes += s->lost_bytes;
	}
	so = info->start_offset;
	if (so < info->next_offset) {
		s = seg_by_offset(p, so);
		n = s ? seg_n(s) : 0;
		k = s ? segment_find_offset(s, n, so) : -1;
		if (k >= 0) {
			ent = segment_entry(s, (uint32_t)k);
			e = &ent;
			info->first_ts = e->ts;
		}
	} else {
		info->last_ts = info->next_offset ? info->last_ts : -1;
	}
	pthread_rwlock_unlock(&p->seglock);
	/* Rare: only then is p->lock, which appends hold, worth taking. */
	if (atomic_load(&p->nlosses)) {
		pthread_mutex_lock(&p->lock);
		info->losses = p->nlosses;
		if (p->nlisted)
			info->last_loss = p->losses[p->nlisted - 1];
		pthread_mutex_unlock(&p->lock);
	}
}

/* Replace the effective configuration. */
int partition_set_config(struct partition *p, const struct config *cfg)
{
	pthread_mutex_lock(&p->lock);
	p->cfg = *cfg;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The partition's counters. */
struct log_metrics *partition_metrics(struct partition *p)
{
	return &p->m;
}

/* Take the new name after the parent renamed the directory. */
void partition_renamed(struct partition *p, int dirfd, const char *name)
{
	char *copy = strdup(name);

	(void)dirfd; /* the partition keeps its own directory descriptor */
	if (!copy)
		return;
	pthread_mutex_lock(&p->lock);
	free(p->name);
	p->name = copy;
	pthread_mutex_unlock(&p->lock);
}

/* The partition directory's descriptor. */
int partition_dirfd(struct partition *p)
{
	return p->dfd;
}
