/*
 * partition.c - one partition's log: the ordered segments, append, reads at
 * a byte offset, lookups, roll, flush and partition.state, retention,
 * delete_before, compression of sealed segments and recovery on open.
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "diag.h"
#include "io.h"
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
	int flush_err;	       /* the last flush's failure, to log changes only;
				* protected by lock */
	struct partition_loss *losses; /* recorded losses; protected by lock */
	uint64_t nlisted;	       /* entries in losses; lock */
	_Atomic uint64_t nlosses;      /* written under lock */
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
	pthread_mutex_t retire_lock;
	uint32_t pins;		/* protected by retire_lock */
	struct segment **rsegs; /* protected by retire_lock */
	uint32_t nrsegs;
	int *rfds; /* protected by retire_lock */
	uint32_t nrfds;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static struct segment *active_seg(struct partition *p)
{
	return p->segs[p->nsegs - 1];
}

static uint64_t seg_end(const struct segment *s)
{
	return atomic_load_explicit(&s->end_byte, memory_order_acquire);
}

static uint32_t seg_n(const struct segment *s)
{
	return atomic_load_explicit(&s->nentries, memory_order_acquire);
}

/* The last segment whose base (the uint64_t member at byte offset field
 * of struct segment: base_byte or base_offset) is <= v; NULL if none. */
static struct segment *seg_upto(struct partition *p, size_t field, uint64_t v)
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

/* The partition directory's full path for a diagnostic (the name alone
 * if /proc cannot tell). */
static void part_path(struct partition *p, char *buf, size_t size)
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
static void pin(struct partition *p)
{
	pthread_mutex_lock(&p->retire_lock);
	p->pins++;
	pthread_mutex_unlock(&p->retire_lock);
}

static void unpin(struct partition *p)
{
	pthread_mutex_lock(&p->retire_lock);
	if (p->pins > 0 && --p->pins == 0)
		free_retired_locked(p);
	pthread_mutex_unlock(&p->retire_lock);
}

/* Close s (or fd) now, or at the last unpin if zero-copy readers hold
 * descriptors. */
static void retire(struct partition *p, struct segment *s, int fd)
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
static int segs_push(struct partition *p, struct segment *s)
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
static int state_write(struct partition *p, const struct layout_state *st)
{
	int ret = layout_state_store(p->dfd, st);

	if (ret == 0)
		p->state_rp = st->recovery_point;
	return ret;
}

static void state_now(struct partition *p, struct layout_state *st)
{
	st->start_offset = atomic_load(&p->start_offset);
	st->start_byte = atomic_load(&p->start_byte);
	st->first_base_byte = p->first_base_byte;
	st->recovery_point = atomic_load(&p->flushed_byte);
}

/* ------------------------------------------------------------------ */
/* Create, open, close                                                  */

static struct partition *partition_alloc(int dfd, const char *name,
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
	p->cfg = *cfg;
	p->dfd = dfd;
	atomic_store(&p->last_ts, -1);
	return p;
}

static void partition_free(struct partition *p)
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
	ret = segs_push(p, s);
	if (ret < 0) {
		segment_free(s);
		goto err_free;
	}
	ret = state_write(p, &st);
	if (ret == 0)
		ret = io_fsync_dir(dirfd);
	if (ret < 0)
		goto err_free;
	metrics_add(&p->m, segments_created, 1);
	p->last_flush_ms = now_ms;
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

/* One segment's files as found in the directory. */
struct found {
	uint64_t base;
	unsigned log : 1, idx : 1, blk : 1;
	enum compression comp;
};

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

static struct found *found_get(struct found **list, uint32_t *n, uint32_t *cap,
			       uint64_t base)
{
	struct found *grown;
	uint32_t i;

	for (i = 0; i < *n; i++)
		if ((*list)[i].base == base)
			return &(*list)[i];
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		grown = realloc(*list, *cap * sizeof(**list));
		if (!grown)
			return NULL;
		*list = grown;
	}
	memset(&(*list)[*n], 0, sizeof(**list));
	(*list)[*n].base = base;
	return &(*list)[(*n)++];
}

struct scan_ctx {
	struct partition *p;
	struct partition_recovery *rec;
	struct found *list;
	uint32_t n, cap;
};

/* One name of the directory: a .tmp is removed, segment files noted. */
static int scan_one(void *arg, const char *name, uint64_t base,
		    enum layout_file kind)
{
	struct scan_ctx *c = arg;
	struct found *f;

	if (kind == LAYOUT_FILE_TMP) {
		if (io_unlinkat(c->p->dfd, name, 0) == 0)
			c->rec->discarded_files++;
		return 0;
	}
	f = found_get(&c->list, &c->n, &c->cap, base);
	if (!f)
		return -ENOMEM;
	if (kind == LAYOUT_FILE_LOG)
		f->log = 1;
	else if (kind == LAYOUT_FILE_IDX)
		f->idx = 1;
	else if (kind == LAYOUT_FILE_BLK)
		f->blk = 1;
	else
		f->comp = (enum compression)layout_file_codec(kind);
	return 0;
}

/* List the directory: remove *.tmp, collect segment files. */
static int scan_dir(struct partition *p, struct found **list, uint32_t *n,
		    struct partition_recovery *rec)
{
	struct scan_ctx c = {p, rec, NULL, 0, 0};
	int ret = layout_scan(p->dfd, scan_one, &c);

	if (ret == 0 && c.n)
		qsort(c.list, c.n, sizeof(*c.list), found_cmp);
	*list = c.list;
	*n = c.n;
	return ret;
}

/* Unlink the compressed form of a segment whose raw .log still exists
 * (a compression that did not finish its swap). */
static void drop_compressed(struct partition *p, const struct found *f,
			    struct partition_recovery *rec)
{
	char name[LAYOUT_NAME_MAX];

	if (f->comp) {
		layout_seg_name(name, sizeof(name), f->base,
				layout_data_suffix(f->comp));
		io_unlinkat(p->dfd, name, 0);
	}
	if (f->blk) {
		layout_seg_name(name, sizeof(name), f->base,
				LAYOUT_BLK_SUFFIX);
		io_unlinkat(p->dfd, name, 0);
	}
	rec->discarded_files++;
}

/* Open the segments found in the directory, oldest first, and chain them.
 *
 * Damage is contained to the segment it is in: a sealed segment is never
 * cut below the recovery point (everything below it was synced, so what
 * is wrong there is damage, not a torn write), a segment that cannot be
 * opened, a missing .log, or a gap between two segments leaves a range
 * that reads EIO, and a segment file overlapping the one before it is
 * left on disk and skipped.  Recovery removes only what lies above the
 * recovery point -- bytes never acknowledged: the torn tail of the log
 * and, when a crash came right after a roll, the segments made after the
 * torn one -- and leftover files that are provably redundant.  Every
 * removal is made durable (directory fsync) before returning.
 * *head_lost is set when the first segment with data was skipped. */
static int open_segments(struct partition *p, const struct layout_state *st,
			 int have_state, struct partition_recovery *rec,
			 int *head_lost)
{
	struct found *list = NULL;
	struct seg_report rep;
	struct segment *s, *prev = NULL;
	uint64_t hint, verify_from, rp;
	uint32_t n = 0, i, j, unlinked;
	int ret, prev_rebuilt = 0, skipped = 0;
	char path[512];

	part_path(p, path, sizeof(path));
	rp = have_state ? st->recovery_point : UINT64_MAX;
	ret = scan_dir(p, &list, &n, rec);
	unlinked = rec->discarded_files;
	if (ret < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (list[i].log && (list[i].comp || list[i].blk)) {
			drop_compressed(p, &list[i], rec);
			list[i].comp = COMPRESSION_NONE;
			list[i].blk = 0;
			unlinked++;
		}
		if (!list[i].log && !list[i].comp) {
			if (prev || (have_state &&
				     !(i + 1 < n &&
				       list[i + 1].base <= st->start_offset))) {
				/* the data of a segment in the middle is
				 * gone: its range reads EIO; the .idx stays
				 * for whoever repairs it */
				diag_err("segment %020llu of '%s' has no data "
					 "file: left as it is, its range "
					 "reads fail with EIO",
					 (unsigned long long)list[i].base,
					 path);
				rec->damaged_segments++;
				*head_lost |= !prev;
				skipped = 1;
				continue;
			}
			/* an orphan .idx/.blk before any data, below the
			 * log start: left by retention, redundant */
			segment_unlink(p->dfd, list[i].base);
			rec->discarded_files++;
			unlinked++;
			continue;
		}
		/* Left behind by retention after the state moved on. */
		if (have_state && i + 1 < n &&
		    list[i + 1].base <= st->start_offset) {
			segment_unlink(p->dfd, list[i].base);
			unlinked++;
			continue;
		}
		if (prev && list[i].base < prev->next_offset) {
			/* names offsets the segment before holds: a stray
			 * copy, never opened (opening could repair it) */
			diag_err("segment %020llu of '%s' overlaps the one "
				 "before it: left on disk, skipped",
				 (unsigned long long)list[i].base, path);
			rec->damaged_segments++;
			continue;
		}
		memset(&rep, 0, sizeof(rep));
		hint = prev ? seg_end(prev) : st->first_base_byte;
		verify_from = have_state ? st->recovery_point : 0;
		ret = segment_open(p->dfd, list[i].base, hint, verify_from, rp,
				   i + 1 < n, list[i].comp, &s, &rep);
		if (ret < 0 && i + 1 < n && ret != -ENOMEM) {
			/* a sealed segment: its range reads EIO */
			diag_err("cannot open segment %020llu of '%s': %s: "
				 "skipped, its range reads fail with EIO",
				 (unsigned long long)list[i].base, path,
				 strerror(-ret));
			rec->damaged_segments++;
			*head_lost |= !prev;
			skipped = 1;
			continue;
		}
		if (ret < 0) {
			diag_err("cannot open segment %020llu of '%s': %s",
				 (unsigned long long)list[i].base, path,
				 strerror(-ret));
			goto out;
		}
		if (prev && prev_rebuilt && !skipped &&
		    s->base_byte == seg_end(prev) &&
		    s->base_offset > prev->next_offset) {
			/* A rebuilt index counts line ends, so a message
			 * that ended without a newline (a writer closed
			 * mid-line) merged with the next one.  The next
			 * segment says how many messages there were: the
			 * rebuilt segment's last entry takes the difference,
			 * rather than every later segment being cut. */
			uint64_t lost = s->base_offset - prev->next_offset;

			if (segment_add_messages(prev, lost) == 0)
				diag_err("segment %020llu of '%s': %llu "
					 "message(s) without a newline merged "
					 "in its rebuilt index; offsets inside "
					 "it may be off by that much",
					 (unsigned long long)prev->base_offset,
					 p->name, (unsigned long long)lost);
		}
		if (prev && s->base_byte < seg_end(prev)) {
			diag_err("segment %020llu of '%s' overlaps the bytes "
				 "before it: left on disk, skipped",
				 (unsigned long long)s->base_offset, path);
			segment_free(s);
			rec->damaged_segments++;
			continue;
		}
		if (prev && (s->base_offset != prev->next_offset ||
			     s->base_byte != seg_end(prev))) {
			if (seg_end(prev) >= rp) {
				/* the segment before lost its unflushed
				 * tail, and this one was made by a roll
				 * after it: never acknowledged */
				segment_free(s);
				rep.cut = 1;
				i--;
				goto cut;
			}
			diag_err("bytes %llu-%llu (offsets %llu-%llu) of '%s' "
				 "are missing: reads of them fail with EIO",
				 (unsigned long long)seg_end(prev),
				 (unsigned long long)s->base_byte,
				 (unsigned long long)prev->next_offset,
				 (unsigned long long)s->base_offset, path);
			if (!skipped) /* else counted with the lost one */
				rec->damaged_segments++;
		}
		skipped = 0;
		rec->truncated_bytes += rep.truncated_bytes;
		rec->dropped_entries += rep.dropped_entries;
		rec->rebuilt_indexes += rep.rebuilt;
		rec->bad_batches += rep.bad_entries;
		metrics_add(&p->m, lost_messages, s->lost_msgs);
		if (rep.ignored_bytes) {
			diag_err("segment %020llu of '%s' has %llu bytes past "
				 "its last batch: ignored, left on disk",
				 (unsigned long long)s->base_offset, path,
				 (unsigned long long)rep.ignored_bytes);
			rec->damaged_segments++;
		}
		if (rep.bad_entries) {
			metrics_add(&p->m, crc_failures, rep.bad_entries);
			if (rep.cut)
				diag_err("bad crc in '%s' at byte %llu, log cut "
					 "there",
					 path, (unsigned long long)seg_end(s));
			else
				diag_err("bad crc in %u batch(es) of segment "
					 "%020llu of '%s': kept, reads of them "
					 "fail with EIO",
					 rep.bad_entries,
					 (unsigned long long)s->base_offset,
					 path);
		}
		if (s->readonly && i + 1 == n)
			diag_warn("segment %020llu of '%s' cannot be opened "
				  "for writing: the partition is served "
				  "read-only, appends fail with EROFS",
				  (unsigned long long)s->base_offset, path);
		ret = segs_push(p, s);
		if (ret < 0) {
			segment_free(s);
			goto out;
		}
		prev = s;
		prev_rebuilt = rep.rebuilt > 0;
	cut:
		if (rep.cut) {
			/* Only bytes above the recovery point are cut, so
			 * every later segment holds nothing acknowledged. */
			for (j = i + 1; j < n; j++) {
				segment_unlink(p->dfd, list[j].base);
				rec->discarded_files++;
				unlinked++;
			}
			break;
		}
	}
	ret = 0;
	/* damage kept in place is counted as CRC failures are: an operator
	 * watching that counter sees it */
	metrics_add(&p->m, crc_failures, rec->damaged_segments);
out:
	/* the removals are durable before anything new depends on them */
	if (unlinked) {
		int r = io_fsync_dir(p->dfd);

		if (ret == 0)
			ret = r;
	}
	free(list);
	return ret;
}

static int byte_to_offset_locked(struct partition *p, uint64_t byte,
				 uint64_t *offset, uint64_t *msg_start);

/* Open dirfd/name and recover it. */
int partition_open(int dirfd, const char *name, const struct config *cfg,
		   int64_t now_ms, struct partition **out,
		   struct partition_recovery *rec)
{
	struct partition_recovery local;
	struct partition *p;
	struct segment *s, *last;
	struct layout_state st = {0, 0, 0, 0};
	int dfd, ret, have_state, head_lost = 0;
	uint64_t end, start_off, start_byte, msg_start;
	uint32_t i, n;

	if (!rec)
		rec = &local;
	memset(rec, 0, sizeof(*rec));
	dfd = io_opendirat(dirfd, name);
	if (dfd < 0)
		return dfd;
	p = partition_alloc(dfd, name, cfg);
	if (!p) {
		io_close(dfd);
		return -ENOMEM;
	}
	ret = layout_state_load(dfd, &st);
	have_state = ret == 0;
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		goto err;
	if (ret == -EINVAL)
		diag_warn("damaged '%s' in '%s', checking every segment",
			  LAYOUT_STATE_FILE, name);
	ret = open_segments(p, &st, have_state, rec, &head_lost);
	if (ret < 0)
		goto err;
	if (p->nsegs == 0) {
		ret = segment_create(dfd, st.start_offset, st.start_byte, &s);
		if (ret == 0)
			ret = segs_push(p, s);
		if (ret < 0)
			goto err;
		metrics_add(&p->m, segments_created, 1);
	}
	last = active_seg(p);
	ret = segment_map_grow(last, seg_n(last) + 1024,
			       seg_end(last) - last->base_byte + (1 << 20),
			       NULL);
	if (ret < 0)
		goto err;
	end = seg_end(last);
	start_off = p->segs[0]->base_offset;
	start_byte = p->segs[0]->base_byte;
	if (have_state && (st.start_offset > start_off ||
			   (head_lost && st.start_byte < start_byte))) {
		/* (a lost first segment is damage, not a retention hole:
		 * its range reads EIO, not zeros) */
		start_off = st.start_offset;
		start_byte = st.start_byte;
	}
	if (start_off > last->next_offset || start_byte > end) {
		start_off = last->next_offset;
		start_byte = end;
	}
	p->first_base_byte = head_lost && have_state ? st.first_base_byte
						     : p->segs[0]->base_byte;
	atomic_store(&p->start_offset, start_off);
	atomic_store(&p->start_byte, start_byte);
	atomic_store(&p->next_offset, last->next_offset);
	atomic_store(&p->end_byte, end);
	for (i = p->nsegs; i-- > 0;) {
		n = seg_n(p->segs[i]);
		if (n) {
			atomic_store(&p->last_ts,
				     segment_entry(p->segs[i], n - 1).ts);
			break;
		}
	}
	atomic_store(&p->flushed_byte, have_state && st.recovery_point < end
					       ? st.recovery_point
					       : (have_state ? end : 0));
	/* Named in a loss report, should the next flush fail. */
	p->flushed_offset = atomic_load(&p->flushed_byte) == end
				    ? last->next_offset
				    : atomic_load(&p->start_offset);
	if (atomic_load(&p->flushed_byte) > start_byte &&
	    atomic_load(&p->flushed_byte) < end)
		byte_to_offset_locked(p, atomic_load(&p->flushed_byte),
				      &p->flushed_offset, &msg_start);
	p->last_flush_ms = now_ms;
	p->state_rp = have_state ? st.recovery_point : 0;
	if (rec->truncated_bytes || rec->dropped_entries ||
	    rec->rebuilt_indexes || rec->discarded_files || rec->bad_batches ||
	    rec->damaged_segments) {
		char path[512];

		part_path(p, path, sizeof(path));
		metrics_add(&p->m, recoveries, 1);
		metrics_add(&p->m, truncated_bytes, rec->truncated_bytes);
		diag_info("recovered '%s': %llu bytes truncated, %u entries "
			  "dropped, %u indexes rebuilt, %u files discarded, "
			  "%u damaged segments kept",
			  path, (unsigned long long)rec->truncated_bytes,
			  rec->dropped_entries, rec->rebuilt_indexes,
			  rec->discarded_files, rec->damaged_segments);
	}
	if (!have_state || rec->truncated_bytes || rec->dropped_entries) {
		state_now(p, &st);
		ret = state_write(p, &st);
		if (ret < 0)
			goto err;
	}
	*out = p;
	return 0;
err:
	partition_free(p);
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

static int flush_locked(struct partition *p);

/* Flush, then free the partition. */
int partition_close(struct partition *p)
{
	int ret;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	ret = flush_locked(p);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	partition_free(p);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Append, roll, flush                                                  */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int roll_locked(struct partition *p)
{
	struct segment *old = active_seg(p), *s;
	int ret;

	ret = segment_create(p->dfd, old->next_offset, seg_end(old), &s);
	if (ret < 0)
		return ret;
	ret = io_fsync_dir(p->dfd);
	if (ret == 0)
		ret = segs_push(p, s);
	if (ret < 0) {
		segment_unlink(p->dfd, s->base_offset);
		segment_free(s);
		return ret;
	}
	metrics_add(&p->m, segments_created, 1);
	return 0;
}

static int roll_due(struct partition *p, size_t len, int64_t now_ms)
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
	if (roll_due(p, len, now_ms)) {
		ret = roll_locked(p);
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
	sync = p->cfg.flush_ms == 0;
	ret = segment_appendv(a, iov, iovcnt, len, p->plan, n, sync);
	if (ret < 0) {
		diag_err("cannot append to '%s': %s", p->name, strerror(-ret));
		goto out;
	}
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
	ret = state_write(p, &st);
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

/* One segment a flush syncs: its descriptors as they were when the flush
 * began (kept open by the pin), and whether it was sealed then. */
struct flush_item {
	struct segment *seg;
	int log_fd, idx_fd;
	int sealed;
};

/* What a flush is about: the end (bytes, messages) to make durable and,
 * when its sync fails, which file failed. */
struct flush_job {
	uint64_t end, end_offset;
	int failed_item; /* the item whose sync failed, or -1 */
	int data_failed; /* ... and it was its .log's (else its .idx's) */
	int lost;	 /* a loss was recorded (and logged) */
};

/* Begin a flush (caller holds p->lock): note the end to make durable and
 * the segments holding unsynced data, and pin them so that retention or a
 * compression swap cannot close their descriptors while the fdatasyncs run
 * without the lock.  Returns the number of items, 0 when nothing is
 * unsynced, or -errno (*items is then NULL). */
static int flush_begin(struct partition *p, struct flush_item **items,
		       struct flush_job *job)
{
	struct flush_item *it;
	struct segment *s;
	uint32_t i;
	int n = 0;

	*items = NULL;
	job->end = atomic_load(&p->end_byte);
	job->end_offset = atomic_load(&p->next_offset);
	job->failed_item = -1;
	job->data_failed = 0;
	job->lost = 0;
	if (atomic_load(&p->flushed_byte) == job->end &&
	    p->state_rp == job->end)
		return 0;
	it = malloc(p->nsegs * sizeof(*it));
	if (!it)
		return -ENOMEM;
	for (i = 0; i < p->nsegs; i++) {
		s = p->segs[i];
		if (s->synced && s != active_seg(p))
			continue;
		it[n].seg = s;
		it[n].log_fd = s->log_fd;
		it[n].idx_fd = s->idx_fd;
		it[n].sealed = s != active_seg(p);
		n++;
	}
	pin(p);
	*items = it;
	return n;
}

/* The disk wait of a flush; needs no lock.  Stops at the first failure
 * and notes in job which file it was. */
static int flush_sync(const struct flush_item *it, int n, struct flush_job *job)
{
	int i, ret = 0;

	for (i = 0; i < n; i++) {
		ret = io_fdatasync(it[i].log_fd);
		job->data_failed = ret < 0;
		if (ret == 0)
			ret = io_fdatasync(it[i].idx_fd);
		if (ret < 0) {
			job->failed_item = i;
			break;
		}
	}
	return ret;
}

/* Forget that the entries of segments holding bytes from on were
 * verified: their pages may have been dropped, so the next read checks
 * their CRCs again and fails with EIO rather than return what the disk
 * holds now.  Whole segments: the index itself is not read here, it may
 * be what failed (caller holds p->lock, which keeps vstate in place). */
static void unverify_from(struct partition *p, uint64_t from)
{
	struct segment *s;
	uint32_t i, k, n;

	for (k = 0; k < p->nsegs; k++) {
		s = p->segs[k];
		if (s->codec != COMPRESSION_NONE || seg_end(s) <= from)
			continue;
		n = seg_n(s);
		for (i = 0; i < n; i++)
			if (atomic_load_explicit(&s->vstate[i],
						 memory_order_relaxed) ==
			    SEG_V_GOOD)
				atomic_store_explicit(&s->vstate[i],
						      SEG_V_UNKNOWN,
						      memory_order_relaxed);
	}
}

/* A data sync failed (caller holds p->lock): whatever the flush covered
 * may be gone from the disk.  Record it, say it once, and account the
 * range as settled so that later flushes cover only newer appends.
 * Returns -EIO, or the sync's error when the flush covered no data
 * (only partition.state was behind): nothing to lose then. */
static int record_loss(struct partition *p, struct flush_job *job, int err)
{
	struct partition_loss l, *grown;
	char path[512];

	l.from_byte = atomic_load(&p->flushed_byte);
	l.to_byte = job->end;
	if (l.from_byte >= l.to_byte)
		return err;
	l.from_offset = p->flushed_offset;
	l.to_offset = job->end_offset;
	grown = realloc(p->losses, (p->nlisted + 1) * sizeof(*grown));
	if (grown) {
		p->losses = grown;
		p->losses[p->nlisted++] = l;
	} /* else counted and logged, not listed */
	p->nlosses++;
	metrics_add(&p->m, data_losses, 1);
	metrics_add(&p->m, lost_bytes, l.to_byte - l.from_byte);
	part_path(p, path, sizeof(path));
	diag_err("lost data of '%s': bytes %llu-%llu (offsets %llu-%llu) "
		 "may not be on stable storage: %s",
		 path, (unsigned long long)l.from_byte,
		 (unsigned long long)l.to_byte,
		 (unsigned long long)l.from_offset,
		 (unsigned long long)l.to_offset, strerror(-err));
	unverify_from(p, l.from_byte);
	atomic_store(&p->flushed_byte, job->end);
	p->flushed_offset = job->end_offset;
	job->lost = 1;
	return -EIO;
}

/* After the fdatasyncs (caller holds p->lock): mark what became durable
 * and unpin.  ret is flush_sync()'s result.  Returns ret if negative, else
 * 1 with *st filled when partition.state needs the new recovery point, or
 * 0 when it has it already. */
static int flush_mark(struct partition *p, struct flush_item *it, int n,
		      struct flush_job *job, int ret, struct layout_state *st)
{
	int i, r;

	/* A segment sealed before the flush began took no append since;
	 * the active one may have, so it is synced again next time. */
	for (i = 0; ret == 0 && i < n; i++)
		if (it[i].sealed)
			it[i].seg->synced = 1;
	if (ret < 0 && job->data_failed) {
		ret = record_loss(p, job, ret);
	} else if (ret < 0 && job->failed_item >= 0) {
		/* The .log is durable, the index is not: it is written
		 * again from memory and synced by the next flush.  If even
		 * that fails, the next flush's sync tries it again. */
		r = segment_rewrite_index(it[job->failed_item].seg);
		if (r < 0)
			diag_warn("cannot rewrite the index of '%s': %s",
				  p->name, strerror(-r));
	}
	if (ret == 0) {
		if (atomic_load(&p->flushed_byte) < job->end) {
			atomic_store(&p->flushed_byte, job->end);
			p->flushed_offset = job->end_offset;
		}
		state_now(p, st);
		ret = st->recovery_point > p->state_rp;
	}
	if (it)
		unpin(p);
	free(it);
	return ret;
}

/* The end of a flush (caller holds p->lock): ret is the result of the
 * fdatasyncs and the state write.  A failure is logged when the partition
 * starts failing and when it works again, not at every retry (a loss was
 * logged by record_loss). */
static int flush_done(struct partition *p, const struct flush_job *job, int ret,
		      int64_t t0)
{
	metrics_add(&p->m, flush_ns_total, (uint64_t)(now_ns() - t0));
	if (ret < 0) {
		if (!p->flush_err && !job->lost)
			diag_err("cannot flush '%s': %s (retrying)", p->name,
				 strerror(-ret));
		p->flush_err = ret;
		metrics_add(&p->m, flush_failures, 1);
		return ret;
	}
	if (p->flush_err)
		diag_info("'%s' flushes again", p->name);
	p->flush_err = 0;
	metrics_add(&p->m, flushes, 1);
	return 0;
}

/* Flush with p->lock held throughout (close). */
static int flush_locked(struct partition *p)
{
	int64_t t0 = now_ns();
	struct flush_item *it;
	struct flush_job job;
	int n;

	struct layout_state st;
	int ret;

	n = flush_begin(p, &it, &job);
	if (n < 0 || !it)
		return n;
	ret = flush_sync(it, n, &job);
	ret = flush_mark(p, it, n, &job, ret, &st);
	if (ret == 1)
		ret = state_write(p, &st);
	return flush_done(p, &job, ret, t0);
}

/* fsync data, index, state.  Neither the fdatasyncs nor
 * the state file's write and fsync run under p->lock: holding it stalled
 * every append for the whole disk write (a 1 GiB bulk append took 3.6 s
 * instead of 0.5 s behind a periodic flush).  state_lock keeps flushes
 * and state writes in order, so the recovery point only grows and no
 * other writer's state is overwritten by an older snapshot. */
int partition_flush(struct partition *p)
{
	int64_t t0 = now_ns();
	struct flush_item *it;
	struct flush_job job;
	struct layout_state st;
	int n, ret;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	n = flush_begin(p, &it, &job);
	pthread_mutex_unlock(&p->lock);
	if (n < 0 || !it) {
		pthread_mutex_unlock(&p->state_lock);
		return n;
	}
	ret = flush_sync(it, n, &job);
	pthread_mutex_lock(&p->lock);
	ret = flush_mark(p, it, n, &job, ret, &st);
	pthread_mutex_unlock(&p->lock);
	if (ret == 1)
		ret = layout_state_store(p->dfd, &st);
	pthread_mutex_lock(&p->lock);
	if (ret == 0 && st.recovery_point > p->state_rp)
		p->state_rp = st.recovery_point;
	ret = flush_done(p, &job, ret, t0);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

/* How many losses were recorded. */
uint64_t partition_losses(struct partition *p)
{
	return atomic_load(&p->nlosses);
}

/* The first loss overlapping [from, to). */
int partition_lost(struct partition *p, uint64_t from, uint64_t to,
		   struct partition_loss *out)
{
	uint64_t i;
	int ret = 0;

	if (!atomic_load(&p->nlosses))
		return 0; /* the common case: no lock */
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->nlisted && !ret; i++) {
		if (p->losses[i].from_byte < to &&
		    from < p->losses[i].to_byte) {
			*out = p->losses[i];
			ret = 1;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* Loss number i. */
int partition_get_loss(struct partition *p, uint64_t i,
		       struct partition_loss *out)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&p->lock);
	if (i < p->nlisted) {
		*out = p->losses[i];
		ret = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Retention and delete_before                                          */

/* Remove segs[0..k) (sealed) after the state names the new start. */
static int drop_head_locked(struct partition *p, uint32_t k, uint64_t start_off,
			    uint64_t start_byte)
{
	struct segment **gone;
	struct layout_state st;
	uint32_t i;
	int ret;

	state_now(p, &st);
	st.start_offset = start_off;
	st.start_byte = start_byte;
	st.first_base_byte = p->segs[k]->base_byte;
	ret = state_write(p, &st);
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
		retire(p, gone[i], -1);
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
	struct segment *s;
	uint32_t k = 0, n;
	int by_age, by_size;

	while (k + 1 < p->nsegs) {
		s = p->segs[k];
		if (s->busy)
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
		ret = byte_to_offset_locked(p, byte, &off, &start);
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
	int ret = 0, r, due;

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
		ret = partition_flush(p);
		rep->flushed = 1;
	}
	pthread_mutex_lock(&p->state_lock); /* retention writes the state */
	pthread_mutex_lock(&p->lock);
	if (p->cfg.segment_ms >= 0 && !active_seg(p)->readonly &&
	    roll_due(p, 0, now_ms)) {
		r = roll_locked(p);
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
/* Reads                                                                */

/* Copy [pos, pos+len) of compressed segment s through the block cache;
 * a block that does not decode is counted and logged by the reader that
 * finds it first. */
static int read_compressed(struct partition *p, struct segment *s, uint64_t pos,
			   void *buf, size_t len)
{
	uint64_t from = 0, to = 0;
	char path[512];
	int ret;

	ret = segment_read_compressed(s, &p->cache, pos, buf, len, &from, &to);
	if (to > from) {
		metrics_add(&p->m, crc_failures, 1);
		part_path(p, path, sizeof(path));
		diag_err("cannot decode the block at bytes %llu-%llu of '%s': "
			 "reads of it fail with EIO",
			 (unsigned long long)from, (unsigned long long)to,
			 path);
	}
	return ret;
}

static void report_bad(struct partition *p, struct segment *s, uint32_t i)
{
	struct seg_entry ent = segment_entry(s, i), *e = &ent;
	char path[512];

	metrics_add(&p->m, crc_failures, 1);
	part_path(p, path, sizeof(path));
	diag_err("bad crc in '%s' at byte %llu (offset %llu, %u bytes)", path,
		 (unsigned long long)e->pos, (unsigned long long)e->offset,
		 e->len);
}

/* Check the entries overlapping [pos, pos+len) of s; data holds those
 * bytes when non-NULL.  Returns how many bytes from pos are good (len if
 * all), or -errno. */
static ssize_t check_range(struct partition *p, struct segment *s, uint64_t pos,
			   size_t len, const unsigned char *data)
{
	uint32_t n = seg_n(s);
	long i = segment_find_byte(s, n, pos);
	struct seg_entry e;
	int st;

	if (i < 0)
		return -EIO;
	for (; (uint32_t)i < n; i++) {
		e = segment_entry(s, (uint32_t)i);
		if (e.pos >= pos + len)
			break;
		st = atomic_load_explicit(&s->vstate[i], memory_order_relaxed);
		if (st == SEG_V_UNKNOWN && s->codec == COMPRESSION_NONE) {
			st = segment_verify_entry(
				s, (uint32_t)i,
				data && e.pos >= pos && e.pos + e.len <= pos + len
					? data + (e.pos - pos)
					: NULL);
			if (st < 0)
				return st;
			if (st == SEG_V_NEWBAD)
				report_bad(p, s, (uint32_t)i);
		}
		if (st != SEG_V_GOOD)
			return e.pos > pos ? (ssize_t)(e.pos - pos) : -EIO;
	}
	return (ssize_t)len;
}

/* Read under seglock (shared).  check: verify CRCs and show the hole as
 * zeros; without it (lookups) the bytes below the start are read as they
 * are while their segment exists.  Returns bytes or -errno: -EIO when
 * any byte of the range is damaged (a bad batch, or a range no segment
 * holds), never a short count that a caller would take for the end. */
static ssize_t read_locked(struct partition *p, uint64_t pos, void *buf,
			   size_t len, int check)
{
	uint64_t end = atomic_load_explicit(&p->end_byte, memory_order_acquire);
	uint64_t start = check ? atomic_load(&p->start_byte) : 0, cur, send;
	struct segment *s;
	size_t done = 0, want, z;
	ssize_t n, good;

	if (pos >= end)
		return 0;
	if (len > end - pos)
		len = (size_t)(end - pos);
	if (pos < start) {
		z = start - pos < len ? (size_t)(start - pos) : len;
		memset(buf, 0, z);
		done = z;
	}
	while (done < len) {
		cur = pos + done;
		s = seg_by_byte(p, cur);
		if (!s || seg_end(s) <= cur)
			return -EIO; /* a segment lost to damage */
		send = seg_end(s);
		want = send - cur < len - done ? (size_t)(send - cur)
					       : len - done;
		if (s->codec != COMPRESSION_NONE) {
			n = read_compressed(p, s, cur, (char *)buf + done,
					    want);
			if (n < 0)
				return n;
			n = (ssize_t)want;
		} else {
			n = segment_pread(s, (char *)buf + done, want, cur);
			if (n < 0)
				return n;
			if (n < (ssize_t)want)
				return -EIO; /* the .log is shorter */
		}
		if (check) {
			good = check_range(p, s, cur, (size_t)n,
					   (unsigned char *)buf + done);
			if (good < n)
				return good < 0 ? good : -EIO;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Read bytes at pos; zeros for the hole. */
ssize_t partition_read(struct partition *p, uint64_t pos, void *buf, size_t len)
{
	ssize_t n;

	pthread_rwlock_rdlock(&p->seglock);
	n = read_locked(p, pos, buf, len, 1);
	pthread_rwlock_unlock(&p->seglock);
	if (n > 0) {
		metrics_add(&p->m, bytes_read, (uint64_t)n);
		metrics_add(&p->m, reads, 1);
	}
	return n;
}

/* Describe [pos, pos+len) as descriptor ranges (see partition.h). */
int partition_read_ranges(struct partition *p, uint64_t pos, size_t len,
			  struct partition_range *ranges, int max)
{
	uint64_t end, start, cur, send, stop;
	struct segment *s;
	ssize_t good;
	size_t want;
	int k = 0;

	pthread_rwlock_rdlock(&p->seglock);
	end = atomic_load_explicit(&p->end_byte, memory_order_acquire);
	start = atomic_load(&p->start_byte);
	stop = pos >= end ? pos : (len > end - pos ? end : pos + len);
	cur = pos;
	if (cur < start && cur < stop && k < max) {
		ranges[k].fd = -1;
		ranges[k].file_pos = 0;
		ranges[k].len = (size_t)((start < stop ? start : stop) - cur);
		cur += ranges[k++].len;
	}
	while (cur < stop && k < max) {
		s = seg_by_byte(p, cur);
		if (s && s->codec != COMPRESSION_NONE) {
			ranges[k].fd = PARTITION_RANGE_COPY;
			ranges[k].file_pos = 0;
			ranges[k++].len = (size_t)(stop - cur);
			break;
		}
		good = -EIO; /* no segment holds cur: lost to damage */
		send = s ? seg_end(s) : cur;
		want = send > cur ? (size_t)((send < stop ? send : stop) - cur)
				  : 0;
		if (want)
			good = check_range(p, s, cur, want, NULL);
		if (good < (ssize_t)want || !want) {
			/* any damaged byte fails the whole read */
			pthread_rwlock_unlock(&p->seglock);
			return good < 0 ? (int)good : -EIO;
		}
		ranges[k].fd = s->log_fd;
		ranges[k].file_pos = cur - s->base_byte;
		ranges[k].len = (size_t)good;
		cur += ranges[k++].len;
	}
	pin(p);
	pthread_rwlock_unlock(&p->seglock);
	metrics_add(&p->m, bytes_read, cur - pos);
	metrics_add(&p->m, reads, 1);
	return k;
}

/* Copy the rest of a zero-copy read. */
ssize_t partition_read_rest(struct partition *p, uint64_t pos, void *buf,
			    size_t len)
{
	ssize_t n;

	pthread_rwlock_rdlock(&p->seglock);
	n = read_locked(p, pos, buf, len, 1);
	pthread_rwlock_unlock(&p->seglock);
	if (n > 0)
		metrics_add(&p->m, bytes_read, (uint64_t)n);
	return n;
}

/* Unpin what partition_read_ranges() handed out. */
void partition_read_ranges_done(struct partition *p)
{
	unpin(p);
}

/* SEEK_DATA / SEEK_HOLE (see partition.h).  A segment that lost nothing
 * is data throughout, so only segments with dropped batches are walked. */
int partition_seek_hole(struct partition *p, uint64_t pos, int hole,
			uint64_t *out)
{
	struct seg_entry e;
	uint64_t end, cur;
	struct segment *s;
	uint32_t n, si;
	long i;
	int ret = -ENXIO;

	pthread_rwlock_rdlock(&p->seglock);
	end = atomic_load_explicit(&p->end_byte, memory_order_acquire);
	cur = atomic_load(&p->start_byte);
	if (pos >= end)
		goto out;
	if (pos < cur && hole) {
		*out = pos;
		ret = 0;
		goto out;
	}
	if (pos > cur)
		cur = pos;
	s = seg_by_byte(p, cur);
	for (si = 0; s && si < p->nsegs && p->segs[si] != s; si++)
		;
	for (; si < p->nsegs && cur < end; si++) {
		s = p->segs[si];
		n = seg_n(s);
		if (!s->lost_msgs || !n) {
			if (!hole) {
				*out = cur;
				ret = 0;
				goto out;
			}
			if (seg_end(s) > cur)
				cur = seg_end(s);
			continue;
		}
		i = segment_find_byte(s, n, cur);
		for (i = i < 0 ? 0 : i; (uint32_t)i < n; i++) {
			e = segment_entry(s, (uint32_t)i);
			if (e.pos + e.len <= cur || layout_entry_lost(&e) != hole)
				continue;
			*out = e.pos > cur ? e.pos : cur;
			ret = 0;
			goto out;
		}
		if (seg_end(s) > cur)
			cur = seg_end(s);
	}
	if (hole) {
		*out = end;
		ret = 0;
	}
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

/* The first len bytes of entry e of segment s: in place in the mapping,
 * else copied into buf (multi-message entries are <= SEG_CHUNK_BYTES). */
static const unsigned char *entry_bytes(struct partition *p, struct segment *s,
					const struct seg_entry *e,
					unsigned char *buf, size_t len,
					int *err)
{
	const void *in = segment_peek(s, e->pos, len);
	ssize_t n;

	if (in)
		return in;
	if (s->codec != COMPRESSION_NONE) {
		n = read_compressed(p, s, e->pos, buf, len);
		if (n == 0)
			n = (ssize_t)len;
	} else {
		n = segment_pread(s, buf, len, e->pos);
	}
	if (n == (ssize_t)len)
		return buf;
	*err = n < 0 ? (int)n : -EIO;
	return NULL;
}

/* Start of message k (0 < k < count) of a chunk of len bytes.  Its
 * start follows the k-th newline, which is the j-th from the end (the
 * final open line, if any, has none): one of the last two messages of
 * a chunk of long ones is found by one or two memrchr calls from the end
 * (measured: +5-25% for 1 KiB messages; more calls cost more than the
 * vectorised forward skip, which does the rest).  NULL if the chunk has fewer lines than its
 * entry says. */
static const unsigned char *msg_in_chunk(const unsigned char *data, size_t len,
					 uint32_t count, uint64_t k)
{
	uint64_t nl, j;
	const unsigned char *q = data + len;

	if (len == 0)
		return NULL; /* a damaged entry: no line in it */
	nl = count - (data[len - 1] != '\n');
	if (k > nl)
		return NULL;
	j = nl - k + 1;
	if (j >= k || j > 2)
		return segment_skip_nl(data, len, k);
	while (j-- > 0) {
		q = memrchr(data, '\n', (size_t)(q - data));
		if (!q)
			return NULL;
	}
	return q + 1;
}

/* The index entry holding message offset, and its segment; NULL when
 * the offset is not retained.  Caller holds seglock (shared). */
static const struct seg_entry *entry_of_offset(struct partition *p,
					       uint64_t offset,
					       struct segment **seg,
					       struct seg_entry *out)
{
	struct segment *s;
	long i;

	metrics_add(&p->m, index_lookups, 1);
	if (offset < atomic_load(&p->start_offset) ||
	    offset >=
		    atomic_load_explicit(&p->next_offset, memory_order_acquire))
		return NULL;
	s = seg_by_offset(p, offset);
	if (!s)
		return NULL;
	i = segment_find_offset(s, seg_n(s), offset);
	if (i < 0)
		return NULL;
	*seg = s;
	*out = segment_entry(s, (uint32_t)i);
	return out;
}

/* Message offset -> start byte. */
int partition_offset_to_byte(struct partition *p, uint64_t offset,
			     uint64_t *byte)
{
	unsigned char buf[SEG_CHUNK_BYTES];
	struct seg_entry ent;
	const struct seg_entry *e;
	const unsigned char *q, *data;
	struct segment *s;
	int ret = -ENOENT;

	pthread_rwlock_rdlock(&p->seglock);
	e = entry_of_offset(p, offset, &s, &ent);
	if (!e)
		goto out;
	ret = 0;
	if (e->offset == offset) {
		*byte = e->pos;
		goto out;
	}
	/* Inside a chunk: skip the messages before it, from whichever end
	 * of the chunk is nearer (fewer cold bytes to scan). */
	data = entry_bytes(p, s, e, buf, e->len, &ret);
	if (!data)
		goto out;
	q = msg_in_chunk(data, e->len, e->count, offset - e->offset);
	if (!q) {
		ret = -EIO;
		goto out;
	}
	*byte = e->pos + (uint64_t)(q - data);
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* Message offset -> the index entry at or below it: a pure index search,
 * no data read (Kafka's OffsetIndex.lookup). */
int partition_offset_to_chunk(struct partition *p, uint64_t offset,
			      uint64_t *chunk_offset, uint64_t *chunk_byte)
{
	struct seg_entry ent;
	const struct seg_entry *e;
	struct segment *s;
	int ret = -ENOENT;

	pthread_rwlock_rdlock(&p->seglock);
	e = entry_of_offset(p, offset, &s, &ent);
	if (!e)
		goto out;
	*chunk_offset = e->offset;
	*chunk_byte = e->pos;
	ret = 0;
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* Byte -> containing message (caller holds seglock shared). */
static int byte_to_offset_locked(struct partition *p, uint64_t byte,
				 uint64_t *offset, uint64_t *msg_start)
{
	unsigned char buf[SEG_CHUNK_BYTES];
	struct seg_entry ent;
	const struct seg_entry *e;
	const unsigned char *q, *lim, *data;
	struct segment *s;
	uint64_t off, at;
	size_t c;
	long i;
	int ret = 0;

	if (byte < atomic_load(&p->start_byte) ||
	    byte >= atomic_load_explicit(&p->end_byte, memory_order_acquire))
		return -ENOENT;
	s = seg_by_byte(p, byte);
	if (!s)
		return -ENOENT;
	i = segment_find_byte(s, seg_n(s), byte);
	if (i < 0)
		return -ENOENT;
	ent = segment_entry(s, (uint32_t)i);
	e = &ent;
	off = e->offset;
	at = e->pos;
	if (e->count > 1 && byte > e->pos) {
		data = entry_bytes(p, s, e, buf, (size_t)(byte - e->pos), &ret);
		if (!data)
			return ret;
		lim = data + (byte - e->pos);
		/* One count and one memrchr, not a call per message. */
		c = segment_count_nl(data, (size_t)(lim - data));
		if (c) {
			q = memrchr(data, '\n', (size_t)(lim - data));
			off += c;
			at = e->pos + (uint64_t)(q + 1 - data);
		}
	}
	*offset = off;
	*msg_start = at;
	return 0;
}

/* Byte -> the message containing it. */
int partition_byte_to_offset(struct partition *p, uint64_t byte,
			     uint64_t *offset, uint64_t *msg_start)
{
	int ret;

	metrics_add(&p->m, index_lookups, 1);
	pthread_rwlock_rdlock(&p->seglock);
	ret = byte_to_offset_locked(p, byte, offset, msg_start);
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* First message with timestamp >= ts_ms.  A batch's messages share its
 * timestamp, so the answer is always the first message of an entry. */
int partition_time_to_offset(struct partition *p, int64_t ts_ms,
			     uint64_t *offset, uint64_t *byte)
{
	struct seg_entry ent;
	const struct seg_entry *e;
	struct segment *s;
	uint32_t lo, hi, mid, n;
	uint64_t start_off;
	long i;
	int ret = -ENOENT;

	metrics_add(&p->m, index_lookups, 1);
	pthread_rwlock_rdlock(&p->seglock);
	/* The first segment whose newest entry is new enough. */
	lo = 0;
	hi = p->nsegs;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		s = p->segs[mid];
		n = seg_n(s);
		if (n == 0 || segment_entry(s, n - 1).ts < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* An empty segment can only be the last one. */
	if (lo >= p->nsegs)
		goto out;
	s = p->segs[lo];
	n = seg_n(s);
	i = segment_find_time(s, n, ts_ms);
	if ((uint32_t)i >= n)
		goto out;
	ent = segment_entry(s, (uint32_t)i);
	e = &ent;
	start_off = atomic_load(&p->start_offset);
	if (e->offset < start_off) {
		if (start_off >= atomic_load(&p->next_offset))
			goto out;
		*offset = start_off;
		*byte = atomic_load(&p->start_byte);
	} else {
		*offset = e->offset;
		*byte = e->pos;
	}
	ret = 0;
out:
	pthread_rwlock_unlock(&p->seglock);
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
				report_bad(p, s, i);
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
					report_bad(p, s, i);
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

/* Compress the oldest raw sealed segment, if configured. */
int partition_compress_one(struct partition *p)
{
	struct codec_block *blocks = NULL;
	enum compression c;
	struct segment *s = NULL;
	char name[LAYOUT_NAME_MAX], logname[LAYOUT_NAME_MAX];
	char tmp[LAYOUT_NAME_MAX + sizeof(LAYOUT_TMP_SUFFIX)];
	uint64_t raw_len;
	uint32_t nb = 0, i;
	int fd = -1, ret, old_fd, stage = 0;
	struct stat st;

retry:
	pthread_mutex_lock(&p->lock);
	c = p->cfg.compression;
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
	ret = io_fdatasync(s->idx_fd);
	if (ret < 0)
		goto out;
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
	ret = codec_compress(c, s->log_fd, raw_len, fd, &blocks, &nb);
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
	pthread_rwlock_unlock(&p->seglock);
	fd = -1;
	blocks = NULL;
	ret = io_unlinkat(p->dfd, logname, 0);
	if (ret == 0)
		ret = io_fsync_dir(p->dfd);
	s->busy = 0;
	pthread_mutex_unlock(&p->lock);
	retire(p, NULL, old_fd);
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
	free(blocks);
	pthread_mutex_lock(&p->lock);
	s->busy = 0;
	pthread_mutex_unlock(&p->lock);
	return ret < 0 ? ret : 0;
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
	for (i = 0; i < p->nsegs; i++) {
		s = p->segs[i];
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
