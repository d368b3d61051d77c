/*
 * partition_maint.c - what maintenance does to a partition's old
 * segments: retention by age and size, delete_before (the start moved
 * forward), compression of sealed segments, and partition_tick(), which
 * runs the scheduled flush, the time roll and retention and reports what
 * it did.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "diag.h"
#include "io.h"
#include "partition_int.h"

/* ------------------------------------------------------------------ */
/* Retention, delete_before, the tick                                   */

/* Remove segs[0..k) (sealed) after the state names the new start. */
static int drop_head_locked(struct partition *p, uint32_t k, uint64_t start_off,
			    uint64_t start_byte)
{
	struct segment **gone;
	struct layout_state st;
	uint32_t i;
	int ret;

	part_state_now(p, &st);
	st.start_offset = start_off;
	st.start_byte = start_byte;
	st.first_base_byte = p->segs[k]->base_byte;
	ret = part_state_write(p, &st);
	if (ret < 0)
		return ret;
	gone = k ? malloc(k * sizeof(*gone)) : NULL;
	if (k && !gone)
		return -ENOMEM;
	pthread_rwlock_wrlock(&p->seglock);
	for (i = 0; i < k; i++)
		gone[i] = p->segs[i];
	memmove(p->segs, p->segs + k, (p->nsegs - k) * sizeof(*p->segs));
	p->nsegs -= k;
	atomic_store(&p->start_offset, start_off);
	atomic_store(&p->start_byte, start_byte);
	p->first_base_byte = p->segs[0]->base_byte;
	pthread_rwlock_unlock(&p->seglock);
	for (i = 0; i < k; i++) {
		segment_unlink(p->dfd, gone[i]->base_offset);
		part_retire(p, gone[i], -1);
	}
	if (k)
		io_fsync_dir(p->dfd);
	free(gone);
	metrics_add(&p->m, segments_deleted, k);
	return (int)k;
}

static int retention_locked(struct partition *p, int64_t now_ms)
{
	uint64_t end = atomic_load(&p->end_byte), total, size;
	uint64_t hold = atomic_load(&p->retention_hold);
	struct segment *s;
	uint32_t k = 0, n;
	int by_age, by_size;

	while (k + 1 < p->nsegs) {
		s = p->segs[k];
		if (s->busy)
			break;
		/* Held: the segment has a message at or after the hold. */
		if (hold && p->segs[k + 1]->base_offset > hold - 1)
			break;
		n = seg_n(s);
		size = seg_end(s) - s->base_byte;
		total = end - s->base_byte;
		by_age = p->cfg.retention_ms >= 0 && n > 0 &&
			 now_ms - segment_entry(s, n - 1).ts >
				 p->cfg.retention_ms;
		by_size = p->cfg.retention_bytes >= 0 &&
			  total - size >= (uint64_t)p->cfg.retention_bytes;
		if (!by_age && !by_size)
			break;
		k++;
	}
	if (k == 0)
		return 0;
	s = p->segs[k];
	return drop_head_locked(p, k,
				s->base_offset > atomic_load(&p->start_offset)
					? s->base_offset
					: atomic_load(&p->start_offset),
				s->base_byte > atomic_load(&p->start_byte)
					? s->base_byte
					: atomic_load(&p->start_byte));
}

void partition_hold_retention(struct partition *p, uint64_t offset)
{
	atomic_store(&p->retention_hold,
		     offset == PARTITION_NO_HOLD ? 0 : offset + 1);
}

/* Delete whole sealed segments by age and size. */
int partition_apply_retention(struct partition *p, int64_t now_ms)
{
	int ret;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	ret = retention_locked(p, now_ms);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

/* Advance the start to the first message ending after byte. */
int partition_delete_before(struct partition *p, uint64_t byte)
{
	uint64_t end, off, start;
	uint32_t k = 0;
	int ret = 0;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	end = atomic_load(&p->end_byte);
	if (byte <= atomic_load(&p->start_byte))
		goto out;
	if (byte >= end) {
		off = atomic_load(&p->next_offset);
		start = end;
	} else {
		pthread_rwlock_rdlock(&p->seglock);
		ret = part_byte_to_offset_locked(p, byte, &off, &start);
		pthread_rwlock_unlock(&p->seglock);
		if (ret < 0)
			goto out;
		if (start <= atomic_load(&p->start_byte))
			goto out;
	}
	while (k + 1 < p->nsegs && !p->segs[k]->busy &&
	       seg_end(p->segs[k]) <= start)
		k++;
	ret = drop_head_locked(p, k, off, start);
out:
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

/* Scheduled flush, time roll, retention. */
int partition_tick(struct partition *p, int64_t now_ms,
		   struct partition_tick_report *rep)
{
	struct partition_tick_report none;
	int ret = 0, r, due, catch_up;

	if (!rep)
		rep = &none;
	memset(rep, 0, sizeof(*rep));
	pthread_mutex_lock(&p->lock);
	due = p->cfg.flush_ms > 0 &&
	      now_ms - p->last_flush_ms >= p->cfg.flush_ms;
	if (due)
		p->last_flush_ms = now_ms;
	pthread_mutex_unlock(&p->lock);
	if (due) {
		ret = part_flush_scheduled(p);
		rep->flushed = 1;
	}
	/* Scheduled flushes, fsyncs and synced appends leave
	 * partition.state's recovery point behind while it stays inside the
	 * active segment: move it up to what they made durable now and
	 * then, so that a reopen checks seconds of appends, not a segment's,
	 * and a damaged active index costs no older acknowledged data (see
	 * storage.md). */
	pthread_mutex_lock(&p->lock);
	catch_up = now_ms - p->state_ms >= PART_STATE_CATCH_UP_MS &&
		   p->state_rp < atomic_load(&p->flushed_byte);
	pthread_mutex_unlock(&p->lock);
	if (catch_up) {
		/* A failed write is retried at every tick, as a failed
		 * flush is, so the failure is reported until it is over
		 * (and logged once by the caller), not every 10 s. */
		r = part_state_catch_up(p);
		if (r == 0) {
			pthread_mutex_lock(&p->lock);
			p->state_ms = now_ms;
			pthread_mutex_unlock(&p->lock);
		}
		if (ret == 0)
			ret = r;
	}
	pthread_mutex_lock(&p->state_lock); /* retention writes the state */
	pthread_mutex_lock(&p->lock);
	if (p->cfg.segment_ms >= 0 && !active_seg(p)->readonly &&
	    part_roll_due(p, 0, now_ms)) {
		r = part_roll_locked(p);
		rep->rolled = r == 0;
		if (ret == 0)
			ret = r;
	}
	r = retention_locked(p, now_ms);
	if (r > 0)
		rep->segments_deleted = (uint32_t)r;
	if (ret == 0 && r < 0)
		ret = r;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Compression                                                          */

/* CRC-check every entry of sealed s, reading 1 MiB at a time.  Returns
 * 1 if all good, 0 if a bad one was found, -errno. */
static int verify_all(struct partition *p, struct segment *s)
{
	uint32_t n = seg_n(s), i = 0, j;
	unsigned char *buf;
	uint64_t span, base, at;
	ssize_t got;
	int st = SEG_V_GOOD, ret = 1;

	buf = malloc(1 << 20);
	if (!buf)
		return -ENOMEM;
	while (i < n && ret == 1) {
		j = i;
		span = 0;
		while (j < n && span + segment_entry(s, j).len <= (1 << 20))
			span += segment_entry(s, j++).len;
		if (j == i) { /* one entry larger than the buffer */
			st = segment_verify_entry(s, i, NULL);
			j = i + 1;
			if (st == SEG_V_NEWBAD)
				part_report_bad(p, s, i);
		} else {
			base = segment_entry(s, i).pos;
			got = segment_pread(s, buf, (size_t)span, base);
			if (got != (ssize_t)span) {
				ret = got < 0 ? (int)got : -EIO;
				break;
			}
			for (; i < j; i++) {
				at = segment_entry(s, i).pos - base;
				st = segment_verify_entry(s, i, buf + at);
				if (st == SEG_V_NEWBAD)
					part_report_bad(p, s, i);
				if (st != SEG_V_GOOD)
					break;
			}
		}
		if (st < 0)
			ret = st;
		else if (st != SEG_V_GOOD)
			ret = 0;
		i = j;
	}
	free(buf);
	return ret;
}

/* fd if s holds its file with suffix open, else a descriptor opened
 * now (a segment read through its mappings holds none), which *owned
 * gets for the caller to close; -errno if it cannot be opened. */
static int seg_file(struct partition *p, struct segment *s, int fd,
		    const char *suffix, int *owned)
{
	char name[LAYOUT_NAME_MAX];

	*owned = -1;
	if (fd >= 0)
		return fd;
	layout_seg_name(name, sizeof(name), s->base_offset, suffix);
	fd = io_openat(p->dfd, name, O_RDONLY, 0);
	if (fd >= 0)
		*owned = fd;
	return fd;
}

int64_t partition_next_due(struct partition *p)
{
	int64_t due = INT64_MAX, t;
	struct segment *a, *s;
	uint64_t end;
	uint32_t n, i;

	pthread_mutex_lock(&p->lock);
	a = active_seg(p);
	n = seg_n(a);
	if (n && p->cfg.segment_ms >= 0 && !a->readonly) {
		t = segment_entry(a, 0).ts + p->cfg.segment_ms;
		due = t < due ? t : due;
	}
	if (p->nsegs > 1) {
		s = p->segs[0];
		n = seg_n(s);
		end = atomic_load(&p->end_byte);
		if (p->cfg.retention_ms >= 0 && n) {
			t = segment_entry(s, n - 1).ts + p->cfg.retention_ms + 1;
			due = t < due ? t : due;
		}
		if (p->cfg.retention_bytes >= 0 &&
		    end - seg_end(s) >= (uint64_t)p->cfg.retention_bytes)
			due = 0;
	}
	for (i = 0; p->cfg.compression != COMPRESSION_NONE && i + 1 < p->nsegs;
	     i++) {
		s = p->segs[i];
		if (s->codec == COMPRESSION_NONE && !s->nocompress &&
		    seg_n(s) > 0) {
			due = 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return due;
}

/* Compress the oldest raw sealed segment, if configured. */
int partition_compress_one(struct partition *p)
{
	struct codec_block *blocks = NULL;
	enum compression c;
	int level;
	struct segment *s = NULL;
	char name[LAYOUT_NAME_MAX], logname[LAYOUT_NAME_MAX];
	char tmp[LAYOUT_NAME_MAX + sizeof(LAYOUT_TMP_SUFFIX)];
	uint64_t raw_len;
	uint32_t nb = 0, i;
	int fd = -1, ret, old_fd, stage = 0, src, idx, src_owned = -1;
	int idx_owned = -1;
	struct stat st;

retry:
	pthread_mutex_lock(&p->lock);
	c = p->cfg.compression;
	level = p->cfg.compression_level;
	s = NULL;
	for (i = 0; c != COMPRESSION_NONE && i + 1 < p->nsegs; i++) {
		if (p->segs[i]->codec == COMPRESSION_NONE &&
		    !p->segs[i]->busy && !p->segs[i]->nocompress &&
		    seg_n(p->segs[i]) > 0) {
			s = p->segs[i];
			s->busy = 1;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!s)
		return 0;
	/* The segment is sealed and busy: nothing changes or removes it
	 * while the codec runs without the lock. */
	ret = verify_all(p, s);
	if (ret == 0) {
		/* Keep the bad entry addressable (EIO) in the raw file. */
		pthread_mutex_lock(&p->lock);
		s->nocompress = 1;
		s->busy = 0;
		pthread_mutex_unlock(&p->lock);
		goto retry;
	}
	if (ret < 0)
		goto out;
	/* The raw .log is about to go: the index must reach the disk first,
	 * or a crash could leave compressed data whose index lost its tail,
	 * which recovery cannot rebuild (only a raw .log has lines). */
	idx = seg_file(p, s, s->idx_fd, LAYOUT_IDX_SUFFIX, &idx_owned);
	ret = idx < 0 ? idx : io_fdatasync(idx);
	io_close(idx_owned);
	if (ret < 0)
		goto out;
	src = seg_file(p, s, s->log_fd, LAYOUT_LOG_SUFFIX, &src_owned);
	if (src < 0) {
		ret = src;
		goto out;
	}
	raw_len = seg_end(s) - s->base_byte;
	layout_seg_name(name, sizeof(name), s->base_offset,
			layout_data_suffix(c));
	snprintf(tmp, sizeof(tmp), "%s" LAYOUT_TMP_SUFFIX, name);
	layout_seg_name(logname, sizeof(logname), s->base_offset,
			LAYOUT_LOG_SUFFIX);
	fd = io_openat(p->dfd, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	stage = 1;
	ret = codec_compress_level(c, level, src, raw_len, fd, &blocks, &nb);
	io_close(src_owned);
	src_owned = -1;
	if (ret == 0)
		ret = io_fsync(fd);
	if (ret == 0)
		ret = io_fstat(fd, &st);
	if (ret < 0)
		goto out;
	stage = 2;
	ret = layout_blk_store(p->dfd, s->base_offset, c, raw_len, blocks, nb);
	if (ret < 0)
		goto out;
	stage = 3;
	ret = io_renameat(p->dfd, tmp, p->dfd, name);
	if (ret == 0)
		ret = io_fsync_dir(p->dfd);
	if (ret < 0)
		goto out;
	/* From here the .log is still authoritative until it is unlinked;
	 * recovery discards the compressed copy if it finds both. */
	pthread_mutex_lock(&p->lock);
	pthread_rwlock_wrlock(&p->seglock);
	old_fd = s->log_fd;
	segment_unmap_log(s);
	s->log_fd = fd;
	s->codec = c;
	s->blocks = blocks;
	s->nblocks = nb;
	s->disk_bytes = (uint64_t)st.st_size;
	segment_map_compressed(s);
	pthread_rwlock_unlock(&p->seglock);
	fd = -1;
	blocks = NULL;
	ret = io_unlinkat(p->dfd, logname, 0);
	if (ret == 0)
		ret = io_fsync_dir(p->dfd);
	s->busy = 0;
	s->synced = 1; /* the index synced above, the file before its rename */
	part_seg_idle(p, s);
	pthread_mutex_unlock(&p->lock);
	part_retire(p, NULL, old_fd);
	metrics_add(&p->m, segments_compressed, 1);
	if (ret < 0)
		diag_warn("cannot remove '%s' of '%s' after compressing it",
			  logname, p->name);
	return 1;
out:
	if (stage >= 1)
		io_unlinkat(p->dfd, stage >= 3 ? name : tmp, 0);
	if (stage >= 3)
		io_unlinkat(p->dfd, tmp, 0);
	if (stage >= 2) {
		layout_seg_name(name, sizeof(name), s->base_offset,
				LAYOUT_BLK_SUFFIX);
		io_unlinkat(p->dfd, name, 0);
	}
	io_close(fd);
	io_close(src_owned);
	free(blocks);
	pthread_mutex_lock(&p->lock);
	s->busy = 0;
	pthread_mutex_unlock(&p->lock);
	return ret < 0 ? ret : 0;
}
