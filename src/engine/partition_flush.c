/*
 * partition_flush.c - making appends durable: the fdatasyncs of the
 * segments holding unsynced data, the recovery point written to
 * partition.state, and the losses recorded when a data sync fails (a
 * range that may not be on stable storage, kept for partition_lost()).
 * The disk waits run without p->lock, so appends never wait for them.
 * partition_sync() is the fsync path: concurrent callers share flushes
 * (commit.c).  It and the scheduled flush write partition.state only when
 * recovery needs the new recovery point (see lazy_state_ok()); the tick
 * catches the state up now and then.  Concurrent syncs of
 * different partitions on one filesystem share a syncfs (shared_sync()).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "commit.h"
#include "diag.h"
#include "io.h"
#include "partition_int.h"
#include "syncpair.h"

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

/* Whether a flush may leave partition.state's recovery point behind
 * (caller holds p->lock).  Recovery checks every index entry above the
 * recovery point against its data's CRC and keeps the entries that pass,
 * so bytes synced with their entries survive a power cut whether or not
 * the state names them.  What the state must not do is lag behind the
 * active segment's start: a bad entry above the recovery point is read
 * as a torn write and everything after it is cut, which in a sealed
 * segment (synced long ago) would throw away the acknowledged segments
 * after it.  So the recovery point is kept inside the active segment,
 * and only the active segment's tail is ever judged as a torn tail. */
static int lazy_state_ok(struct partition *p)
{
	return p->state_rp >= active_seg(p)->base_byte;
}

/* Begin a flush (caller holds p->lock): note the end to make durable and
 * the segments holding unsynced data, and pin them so that retention or a
 * compression swap cannot close their descriptors while the fdatasyncs run
 * without the lock.  Returns the number of items, 0 when nothing is
 * unsynced, or -errno (*items is then NULL). */
static int flush_begin(struct partition *p, struct flush_item **items,
		       struct flush_job *job, int lazy)
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
	    (p->state_rp == job->end || (lazy && lazy_state_ok(p))))
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
	part_pin(p);
	*items = it;
	return n;
}

/* The disk wait of a flush; needs no lock.  Stops at the first failure
 * and notes in job which file it was.  A segment's .log and .idx are
 * synced side by side: their order does not matter to recovery (an entry
 * on disk without its data fails its CRC and is cut, and was never
 * acknowledged), and together they wait for about one journal commit. */
static int flush_sync(const struct flush_item *it, int n, struct flush_job *job)
{
	int i, ret = 0, r;

	for (i = 0; i < n; i++) {
		sync_pair(it[i].log_fd, it[i].idx_fd, &ret, &r);
		job->data_failed = ret < 0;
		if (ret == 0)
			ret = r;
		if (ret < 0) {
			job->failed_item = i;
			break;
		}
	}
	return ret;
}

/* The syncs of partitions on one filesystem (one st_dev), in flight
 * together.  When one partition's sync finds others waiting behind it,
 * one syncfs writes back and commits all of their data at once: 64
 * files' fdatasyncs cost 5-23 ms in a row or in parallel here, one
 * syncfs 0.5-2.7 ms.
 *
 * Errors.  syncfs (Linux 5.8 on) reports a write-back error anywhere on
 * the filesystem once to each open file it is called through, without
 * saying whose data failed.  So the volume calls it through a file of its
 * own, and a failed syncfs bumps err_gen: every partition it covered, and
 * every other partition of the volume at its next sync, then runs its own
 * fdatasyncs, which report that file's own write-back error.  A partition
 * trusts a successful syncfs only when it has checked its files itself
 * since the last failure (vol_seen == err_gen). */
#define VOLUMES 16

struct volume {
	dev_t dev;
	int used;
	int fd; /* the volume's own open file, for syncfs; -1: none */
	_Atomic uint64_t err_gen;
	struct commit commit;
};

static struct volume volumes[VOLUMES] = {
	[0 ... VOLUMES - 1] = {0, 0, -1, 1, COMMIT_INITIALIZER},
};
static pthread_mutex_t volumes_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether syncfs reports write-back errors (Linux 5.8 and later). */
static int syncfs_reports_errors(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major > 5 || (major == 5 && minor >= 8);
}

/* The volume of the filesystem holding dfd; NULL when the table is full,
 * dfd cannot be stat'ed or the kernel's syncfs hides errors (the
 * partition then syncs alone). */
static struct volume *volume_of(int dfd)
{
	static int usable = -1;
	struct volume *v = NULL;
	struct stat st;
	int i, fd;

	if (io_fstat(dfd, &st) < 0)
		return NULL;
	pthread_mutex_lock(&volumes_lock);
	if (usable < 0)
		usable = syncfs_reports_errors();
	for (i = 0; usable && i < VOLUMES && !v; i++) {
		if (volumes[i].used && volumes[i].dev == st.st_dev) {
			v = &volumes[i];
		} else if (!volumes[i].used) {
			fd = io_openat(dfd, ".", O_RDONLY | O_DIRECTORY, 0);
			if (fd < 0)
				break;
			volumes[i].used = 1;
			volumes[i].dev = st.st_dev;
			volumes[i].fd = fd;
			v = &volumes[i];
		}
	}
	pthread_mutex_unlock(&volumes_lock);
	return v;
}

/* Write back and commit v's filesystem: syncfs, then an fdatasync of the
 * volume's directory (clean), so that the disk's write cache is flushed
 * once more after everything syncfs wrote.  On ext4 without a journal,
 * syncfs flushes the cache before its last wait for metadata: the
 * kernel's sync_filesystem() calls sync_fs(sb, 1) (the flush), then
 * sync_blockdev(), which writes the block device's dirty buffers (the
 * inode tables with the files' new sizes, the bitmaps of blocks the data
 * write-back just allocated) and waits for them, with no flush after.
 * Until the next flush those sit in the disk's volatile cache, and a
 * power cut could lose an appended file's new size.  The fdatasync's
 * flush comes after they are written. */
static int volume_syncfs(struct volume *v)
{
	int ret = io_syncfs(v->fd);

	if (ret == 0)
		ret = io_fdatasync(v->fd);
	if (ret < 0)
		atomic_fetch_add(&v->err_gen, 1);
	return ret;
}

/* One partition's sync as a request of its volume's commit. */
struct shared_req {
	const struct flush_item *it;
	int n;
	struct flush_job *job;
	struct volume *v;
	int alone; /* the volume's flush was our own fdatasyncs */
};

static int volume_flush(void *arg, unsigned covered)
{
	struct shared_req *r = arg;

	if (covered == 1) {
		r->alone = 1;
		return flush_sync(r->it, r->n, r->job);
	}
	return volume_syncfs(r->v);
}

/* The fdatasyncs of a flush, shared with the other partitions of the
 * filesystem syncing at the same time (see struct volume).  Called with
 * p->state_lock (a flush) or p->lock (a flush_ms=0 append) held; both
 * may run at once, hence the atomics (volume_of() gives every caller
 * the same volume). */
static int shared_sync(struct partition *p, const struct flush_item *it, int n,
		       struct flush_job *job)
{
	struct shared_req r = {it, n, job, NULL, 0};
	uint64_t gen;
	int ret;

	r.v = atomic_load(&p->volume);
	if (!r.v) {
		r.v = volume_of(p->dfd);
		atomic_store(&p->volume, r.v);
	}
	if (!r.v)
		return flush_sync(it, n, job);
	gen = atomic_load(&r.v->err_gen);
	ret = commit_sync(&r.v->commit, volume_flush, &r);
	if (!r.alone) {
		gen = atomic_load(&r.v->err_gen);
		if (ret == 0 && atomic_load(&p->vol_seen) == gen)
			return 0; /* the syncfs covered us, and no error since
				   */
		ret = flush_sync(it, n, job);
	}
	/* our files' own errors were checked */
	atomic_store(&p->vol_seen, gen);
	return ret;
}

int part_sync_append(struct partition *p, struct segment *a)
{
	struct flush_item it = {a, a->log_fd, a->idx_fd, 0};
	struct flush_job job = {0, 0, -1, 0, 0};

	return shared_sync(p, &it, 1, &job);
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
 * 0 when it has it already (or, lazy, does not need it yet). */
static int flush_mark(struct partition *p, struct flush_item *it, int n,
		      struct flush_job *job, int ret, struct layout_state *st,
		      int lazy)
{
	int i, r;

	/* A cut-back's sync of a .log failed since the last flush: what was
	 * unflushed then may be lost, and this flush's own sync cannot tell
	 * (the error was reported once, to the cut-back). */
	for (i = 0; ret == 0 && i < n; i++)
		if (atomic_exchange(&it[i].seg->log_sync_lost, 0) >
		    atomic_load(&p->flushed_byte)) {
			ret = -EIO;
			job->failed_item = i;
			job->data_failed = 1;
		}
	/* A segment sealed before the flush began took no append since;
	 * the active one may have, so it is synced again next time. */
	for (i = 0; ret == 0 && i < n; i++)
		if (it[i].sealed) {
			it[i].seg->synced = 1;
			part_seg_idle(p, it[i].seg);
		}
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
		part_state_now(p, st);
		ret = st->recovery_point > p->state_rp &&
		      !(lazy && lazy_state_ok(p));
	}
	if (it)
		part_unpin(p);
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
int part_flush_locked(struct partition *p)
{
	int64_t t0 = now_ns();
	struct flush_item *it;
	struct flush_job job;
	int n;

	struct layout_state st;
	int ret;

	n = flush_begin(p, &it, &job, 0);
	if (n < 0 || !it)
		return n;
	ret = flush_sync(it, n, &job);
	ret = flush_mark(p, it, n, &job, ret, &st, 0);
	if (ret == 1)
		ret = part_state_write(p, &st);
	return flush_done(p, &job, ret, t0);
}

/* How flush_run() flushes: partition.state only when recovery needs the
 * new recovery point (see lazy_state_ok()), and the disk wait shared with
 * other partitions of the filesystem syncing at the same time. */
enum {
	FLUSH_LAZY_STATE = 1,
	FLUSH_SHARED = 2,
};

/* fsync data, index and (unless lazy and not needed) state.  Neither the
 * fdatasyncs nor the state file's write and fsync run under p->lock:
 * holding it stalled every append for the whole disk write (a 1 GiB bulk
 * append took 3.6 s instead of 0.5 s behind a periodic flush).
 * state_lock keeps flushes and state writes in order, so the recovery
 * point only grows and no other writer's state is overwritten by an older
 * snapshot. */
static int flush_run(struct partition *p, int flags)
{
	int lazy = flags & FLUSH_LAZY_STATE;
	int64_t t0 = now_ns();
	struct flush_item *it;
	struct flush_job job;
	struct layout_state st;
	int n, ret, store;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	n = flush_begin(p, &it, &job, lazy);
	pthread_mutex_unlock(&p->lock);
	if (n < 0 || !it) {
		pthread_mutex_unlock(&p->state_lock);
		return n;
	}
	ret = flags & FLUSH_SHARED ? shared_sync(p, it, n, &job)
				   : flush_sync(it, n, &job);
	pthread_mutex_lock(&p->lock);
	ret = flush_mark(p, it, n, &job, ret, &st, lazy);
	pthread_mutex_unlock(&p->lock);
	store = ret == 1;
	if (store)
		ret = layout_state_store(p->dfd, &st);
	pthread_mutex_lock(&p->lock);
	if (store && ret == 0 && st.recovery_point > p->state_rp)
		p->state_rp = st.recovery_point;
	ret = flush_done(p, &job, ret, t0);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

int part_state_catch_up(struct partition *p)
{
	struct layout_state st;
	int ret = 0, behind;

	pthread_mutex_lock(&p->state_lock);
	pthread_mutex_lock(&p->lock);
	part_state_now(p, &st);
	behind = st.recovery_point > p->state_rp;
	pthread_mutex_unlock(&p->lock);
	if (behind)
		ret = layout_state_store(p->dfd, &st);
	pthread_mutex_lock(&p->lock);
	if (behind && ret == 0 && st.recovery_point > p->state_rp)
		p->state_rp = st.recovery_point;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->state_lock);
	return ret;
}

/* An explicit flush: the state too. */
int partition_flush(struct partition *p)
{
	return flush_run(p, 0);
}

/* The scheduled flush: the state only when recovery needs it; the tick
 * moves it up now and then (part_state_catch_up).  With many partitions
 * a state write per flush was a file written, fsynced and renamed and a
 * directory fsynced per partition and second. */
int part_flush_scheduled(struct partition *p)
{
	return flush_run(p, FLUSH_LAZY_STATE);
}

static int sync_flush(void *p, unsigned covered)
{
	(void)covered; /* all of them are p's */
	return flush_run(p, FLUSH_LAZY_STATE | FLUSH_SHARED);
}

/* The fsync path: one flush shared by every caller waiting when it
 * begins; partition.state only when the recovery point must move. */
int partition_sync(struct partition *p)
{
	metrics_add(&p->m, sync_requests, 1);
	return commit_sync(&p->commit, sync_flush, p);
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
