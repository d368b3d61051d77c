/*
 * fs_io.c - open files: open and create, read, write, flush, release,
 * fsync, poll, lseek, fallocate, and the replies that carry their data;
 * and the bounds on snapshots readers hold open (.metrics renderings and
 * directory listings).
 *
 * A handle (struct handle, fs_int.h) pins its node.  Writers frame lines
 * per handle (framer.h) and append each write()'s complete lines as one
 * batch; the trailing partial line is held until the next write, a flush
 * or the close.  The write path takes no registry lock: the handle's
 * mutex orders its own writes (and its held partial line), and the
 * partition serialises appends.  After each append this file calls
 * fs_appended() (fs_coherence.c), which says whether the reply must wait
 * for a drop.  Reads are zero-copy where the bytes lie in uncompressed
 * segments (descriptor ranges spliced into the reply), copied where they
 * do not; the follow view's reads at the end park in fs_follow.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "fs.h"
#include "fs_int.h"
#include "mirror.h"
#include "notify.h"
#include "registry_metrics.h"

#define MAX_RANGES 16
#define MAX_BUFS 48
#define ZERO_BYTES (1u << 20)

/* The hole reads as zeros from here (untouched .bss: no memory cost). */
static const char zeros[ZERO_BYTES];

/* ---- handles --------------------------------------------------------- */

/* Snapshots readers hold open share a bound per kind.  A .metrics
 * rendering is about 1.5 KB a partition (23 series each): 147 MB for
 * 100,000 partitions; a directory listing about 32 bytes an entry:
 * 3.2 MB for a topic of 100,000 partitions.  Each is held until the
 * reader closes, and readers could hold enough of them open to take the
 * daemon's memory from everyone.  So a snapshot whose bytes would pass
 * its kind's bound while others are held is refused (ENOMEM, one log
 * line); a snapshot alone is always allowed, however large, so the file
 * or directory stays readable whatever the partition count.  .metrics
 * renderings also run one at a time (each is a transient peak of its
 * own size, 147 MB). */
struct held_snapshots {
	pthread_mutex_t lock;
	size_t held;	/* under lock */
	uint64_t limit; /* set before the mount */
	const char *what, *held_what, *option;
};

static struct held_snapshots metrics_snaps = {
	PTHREAD_MUTEX_INITIALIZER, 0, 256ULL << 20, "an open of .metrics",
	"snapshots", "metrics_mem"};
static struct held_snapshots listing_snaps = {
	PTHREAD_MUTEX_INITIALIZER, 0, 256ULL << 20, "a directory listing",
	"listings", "listing_mem"};

void fs_set_metrics_mem(uint64_t bytes)
{
	metrics_snaps.limit = bytes;
}

void fs_set_listing_mem(uint64_t bytes)
{
	listing_snaps.limit = bytes;
}

/* A snapshot of len bytes is gone. */
static void snaps_release(struct held_snapshots *b, size_t len)
{
	pthread_mutex_lock(&b->lock);
	b->held -= len <= b->held ? len : b->held;
	pthread_mutex_unlock(&b->lock);
}

/* A handle of kind on n (NULL for control files), listed for shutdown. */
struct handle *fs_handle_new(enum handle_kind kind, struct node *n)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->kind = kind;
	h->n = n;
	pthread_mutex_init(&h->lock, NULL);
	framer_init(&h->fr);
	pthread_mutex_lock(&fs.hlock);
	h->next = fs.handles;
	if (h->next)
		h->next->prev = h;
	fs.handles = h;
	pthread_mutex_unlock(&fs.hlock);
	return h;
}

/* Unlist and free h (no unpin: fs_release_handle does that). */
void fs_handle_free(struct handle *h)
{
	pthread_mutex_lock(&fs.hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs.handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs.hlock);
	/* a snapshot held no longer counts */
	if (h->kind == H_METRICS)
		snaps_release(&metrics_snaps, h->len);
	else if (h->kind == H_DIR)
		snaps_release(&listing_snaps, h->len);
	framer_release(&h->fr);
	pthread_mutex_destroy(&h->lock);
	free(h->buf);
	free(h);
}

/* ---- open and close -------------------------------------------------- */

/* The caller's supplementary groups into cred (malloc'ed groups, free
 * them).  Without them (the kernel's /proc entry is gone, no memory) the
 * caller counts as a member of its primary group only: it may see less,
 * never more. */
static void caller_groups(fuse_req_t req, struct registry_cred *cred)
{
	gid_t *list = NULL, *grown;
	int n = 32, got;

	cred->groups = NULL;
	cred->ngroups = 0;
	for (;;) {
		grown = realloc(list, (size_t)n * sizeof(*list));
		if (!grown)
			break;
		list = grown;
		got = fuse_req_getgroups(req, n, list);
		if (got < 0) {
			diag_warn("cannot get the groups of pid %d: %s",
				  (int)fuse_req_ctx(req)->pid, strerror(-got));
			break;
		}
		if (got <= n) {
			cred->groups = list;
			cred->ngroups = (size_t)got;
			return;
		}
		n = got;
	}
	free(list);
}

/* .metrics shows each reader only what it may read, so its content
 * depends on who opens it: rendered at open into the handle, served with
 * direct_io (never through the page cache, where one reader's rendering
 * would be served to the next). */
/* The Kafka mirror's series follow the same rule as the partitions'. */
static int metrics_visible(void *arg, struct node *topic, struct node *n)
{
	return registry_may_read(arg, topic, n);
}

/* Whether a snapshot of len bytes may join those held; len 0: one not
 * made yet, which may if the held ones leave room (b->lock held). */
static int snaps_fit(struct held_snapshots *b, size_t len)
{
	if (b->held == 0 ||
	    (len ? b->held + len <= b->limit : b->held < b->limit))
		return 1;
	if (len)
		diag_warn("refused %s: %s held open take %zu bytes, this one "
			  "%zu more, over %s=%llu",
			  b->what, b->held_what, b->held, len, b->option,
			  (unsigned long long)b->limit);
	else
		diag_warn("refused %s: %s held open take %zu bytes, %s=%llu",
			  b->what, b->held_what, b->held, b->option,
			  (unsigned long long)b->limit);
	return 0;
}

/* A directory listing of len bytes is to be held by a new handle: 0, or
 * -ENOMEM (logged) when it would pass listing_mem. */
int fs_listing_hold(size_t len)
{
	int ret = 0;

	pthread_mutex_lock(&listing_snaps.lock);
	if (snaps_fit(&listing_snaps, len))
		listing_snaps.held += len;
	else
		ret = -ENOMEM;
	pthread_mutex_unlock(&listing_snaps.lock);
	return ret;
}

void fs_listing_release(size_t len)
{
	snaps_release(&listing_snaps, len);
}

/* Whether a directory listing may be made at all now (the held ones
 * leave room): checked before one is built. */
int fs_listing_room(void)
{
	int ret;

	pthread_mutex_lock(&listing_snaps.lock);
	ret = snaps_fit(&listing_snaps, 0);
	pthread_mutex_unlock(&listing_snaps.lock);
	return ret;
}

static int render_metrics(fuse_req_t req, struct fuse_file_info *fi);

static int open_metrics(fuse_req_t req, struct fuse_file_info *fi)
{
	int ret;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	pthread_mutex_lock(&metrics_snaps.lock);
	/* no room left: refuse before rendering */
	ret = snaps_fit(&metrics_snaps, 0) ? render_metrics(req, fi) : -ENOMEM;
	pthread_mutex_unlock(&metrics_snaps.lock);
	return ret;
}

/* open_metrics, with metrics_snaps.lock held. */
static int render_metrics(fuse_req_t req, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct registry_cred cred = {ctx->uid, ctx->gid, NULL, 0};
	struct prom_daemon d;
	struct prom_buf out = {NULL, 0, 0};
	struct handle *h;
	int ret;

	if (cred.uid != 0)
		caller_groups(req, &cred);
	memset(&d, 0, sizeof(d));
	d.requests = atomic_load(&fs.requests);
	d.writer_errors = atomic_load(&fs.writer_errors);
	d.notifications = fs.nt ? notifier_sent(fs.nt) : 0;
	d.open_handles = atomic_load(&fs.open_handles);
	d.parked_followers = follow_parked(fs.fw);
	d.group_retention_skips = fs_groups_retention_skips();
	ret = registry_metrics_for(fs.reg, &cred, &d, &out);
	if (ret == 0)
		ret = mirror_metrics(&out, metrics_visible, &cred);
	free((void *)cred.groups);
	if (ret == 0 && !snaps_fit(&metrics_snaps, out.len))
		ret = -ENOMEM;
	if (ret < 0) {
		free(out.buf);
		return ret;
	}
	h = fs_handle_new(H_METRICS, NULL);
	if (!h) {
		free(out.buf);
		return -ENOMEM;
	}
	h->buf = out.buf;
	h->len = out.len;
	metrics_snaps.held += out.len;
	fi->fh = (uintptr_t)h;
	/* Size unknown to stat, snapshot taken now, and per reader. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

/* A handle pins its node, and its partition's log open (fs_int.h). */
int fs_pin_open(struct node *n)
{
	int ret = registry_pin(fs.reg, n);

	if (ret < 0)
		return ret;
	ret = registry_part_get(fs.reg, n);
	if (ret < 0)
		registry_unpin(fs.reg, n);
	return ret;
}

void fs_unpin_open(struct node *n)
{
	registry_part_put(fs.reg, n);
	registry_unpin(fs.reg, n);
}

/* Open a partition: writers with a framer; which handles use the page
 * cache: "Page-cache coherence". */
static int open_partition(struct node *n, struct fuse_file_info *fi)
{
	struct partition_info info;
	pthread_mutex_t *lock;
	struct handle *h;
	int acc = fi->flags & O_ACCMODE, ret;

	if (n->kind != NODE_PARTITION)
		return -EISDIR;
	if (acc != O_RDONLY && (ret = mirror_writable(n)) < 0)
		return ret; /* an imported topic */
	/* chattr +a, as on ext4: writers must open O_APPEND, never O_TRUNC. */
	if (acc != O_RDONLY && registry_append_only(n) &&
	    (!(fi->flags & O_APPEND) || (fi->flags & O_TRUNC)))
		return -EPERM;
	if (fi->flags & O_TRUNC) {
		ret = registry_info(fs.reg, n, &info);
		if (ret < 0)
			return ret;
		if (info.end_byte > 0)
			return -EPERM; /* a log is never truncated */
	}
	ret = fs_pin_open(n);
	if (ret < 0)
		return ret;
	h = fs_handle_new(acc == O_RDONLY ? H_READER : H_WRITER, n);
	if (!h) {
		fs_unpin_open(n);
		return -ENOMEM;
	}
	/* Never a page-cache reader beside a direct_io writer ("Page-cache
	 * coherence"). */
	lock = fs_tail_lock(registry_ino(fs.reg, n));
	pthread_mutex_lock(lock);
	if (h->kind == H_WRITER) {
		/* direct_io: no page-cache copy, and the kernel refuses
		 * shared writable mmap on direct_io files. */
		h->cached =
			acc == O_WRONLY && atomic_load(&n->fs->pc_readers) > 0;
		if (h->cached)
			atomic_fetch_add(&n->fs->wt_writers, 1);
		else
			n->fs->dio_writers++;
		h->append = !!(fi->flags & O_APPEND);
	} else {
		h->cached = n->fs->dio_writers == 0;
		if (h->cached)
			atomic_fetch_add(&n->fs->pc_readers, 1);
	}
	pthread_mutex_unlock(lock);
	follow_file_init(&h->ff, n, 0);
	fi->direct_io = !h->cached;
	if (h->cached) {
		atomic_store(&n->fs->page_cached, 1);
		/* Pages may be stale until a queued invalidation is sent:
		 * then this open drops them instead of keeping them. */
		fi->keep_cache =
			!notifier_pending(fs.nt, registry_ino(fs.reg, n)) &&
			!atomic_load(&n->fs->head_drops);
	} else {
		fi->keep_cache = 1; /* unused here; others' pages are fine */
	}
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
}

/* Open a follow-view file: read-only, direct_io (a read past the cached
 * size must reach us, to be parked). */
static int open_follow(fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = follow_node(ino);
	struct handle *h;
	int ret;

	if (!n || n->kind != NODE_PARTITION)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EACCES;
	ret = fs_pin_open(n);
	if (ret < 0)
		return ret;
	h = fs_handle_new(H_FOLLOW, n);
	if (!h) {
		fs_unpin_open(n);
		return -ENOMEM;
	}
	follow_file_init(&h->ff, n, 1);
	fi->direct_io = 1;
	fi->nonseekable = 0;
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
}

void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	int ret;

	count_request();
	if (is_group_ino(ino))
		ret = fs_groups_open(req, ino, fi);
	else if (is_at_ino(ino))
		ret = fs_at_open(ino, fi);
	else if (is_snap_ino(ino))
		ret = fs_snap_open(ino, fi);
	else if (is_follow_ino(ino))
		ret = open_follow(ino, fi);
	else if (is_produce_ino(ino))
		ret = fs_produce_open(ino, fi);
	else
		ret = n ? open_partition(n, fi) : open_metrics(req, fi);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (fuse_reply_open(req, fi) < 0)
		fs_release_handle(
			handle_of(fi)); /* interrupted: no release will come */
}

void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct node *dir = node_of(parent), *n;
	struct fuse_entry_param e;
	int ret;

	count_request();
	if (parent == REGISTRY_INO_PRODUCE) {
		/* As for a partition of a topic that does not exist. */
		diag_info("cannot produce to '%s': no such topic", name);
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (is_snap_ino(parent)) {
		fs_snap_refuse(req, parent, "create", name);
		return;
	}
	if (!dir) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = mirror_writable(dir); /* no new partition in an import */
	if (ret == 0)
		ret = registry_create(fs.reg, dir, name, mode, ctx->uid,
				      ctx->gid, &n);
	if (ret == -EEXIST && !(fi->flags & O_EXCL))
		ret = registry_lookup(fs.reg, dir, name, &n);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = open_partition(n, fi);
	if (ret < 0) {
		registry_forget(fs.reg, n, 1);
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&e, 0, sizeof(e));
	fs_node_attr(n, &e.attr);
	e.ino = registry_ino(fs.reg, n);
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	if (fuse_reply_create(req, &e, fi) < 0) {
		fs_release_handle(handle_of(fi));
		registry_forget(fs.reg, n, 1);
	}
}

static void writer_error(struct node *n, const char *what, int err)
{
	atomic_fetch_add_explicit(&fs.writer_errors, 1, memory_order_relaxed);
	diag(err == -ENOSPC || err == -EIO ? LOG_ERR : LOG_INFO,
	     "%s to '%s/%s' failed: %s", what,
	     n->parent ? n->parent->name : "?", n->name, strerror(-err));
}

/* ---- losses ---------------------------------------------------------- */

/* h appended [pos, pos+len) (h->lock held). */
static void note_written(struct handle *h, uint64_t pos, size_t len)
{
	int k = h->nwrote;

	if (k && h->wrote[k - 1].to == pos) {
		h->wrote[k - 1].to = pos + len;
		return;
	}
	if (k == WROTE_RANGES) {
		h->wrote[k - 2].to = h->wrote[k - 1].to;
		k = --h->nwrote;
	}
	h->wrote[k].from = pos;
	h->wrote[k].to = pos + len;
	h->nwrote++;
}

/* Where h's appends end so far (h->lock held). */
static uint64_t written_end(const struct handle *h)
{
	return h->nwrote ? h->wrote[h->nwrote - 1].to : 0;
}

/* Report, once, that bytes h appended were in a flush that failed (h->lock
 * held): -EIO and a log line naming them, else 0.  settled: a flush that
 * began when h's appends ended at mark has returned 0, so everything
 * below mark is durable or recorded as lost.  Either way what lies below
 * mark is done with; appends h made since (a concurrent write on the same
 * open file) are kept for the next check. */
static int take_loss(struct handle *h, int settled, uint64_t mark)
{
	struct partition_loss l;
	int i, k, lost = 0;

	for (i = 0; i < h->nwrote && !lost; i++)
		lost = partition_lost(h->n->part, h->wrote[i].from,
				      h->wrote[i].to, &l);
	if (lost) {
		atomic_fetch_add_explicit(&fs.writer_errors, 1,
					  memory_order_relaxed);
		diag_err("messages %llu-%llu (bytes %llu-%llu) of '%s/%s' "
			 "were in a flush that failed: reporting EIO",
			 (unsigned long long)l.from_offset,
			 (unsigned long long)l.to_offset,
			 (unsigned long long)l.from_byte,
			 (unsigned long long)l.to_byte,
			 h->n->parent ? h->n->parent->name : "?", h->n->name);
	}
	if (!lost && !settled)
		return 0;
	for (i = k = 0; i < h->nwrote; i++) {
		if (h->wrote[i].to <= mark)
			continue;
		h->wrote[k].from =
			h->wrote[i].from > mark ? h->wrote[i].from : mark;
		h->wrote[k++].to = h->wrote[i].to;
	}
	h->nwrote = k;
	return lost ? -EIO : 0;
}

/* ---- appends --------------------------------------------------------- */

/* Append h's batch of count messages (PARTITION_ANY_COUNT) at the end,
 * which must be expect (PARTITION_ANY_END: anywhere).  A write-through
 * handle's batch should land at at, where the kernel put it; if the log's
 * end moved under the kernel, it lands at the end all the same
 * ("Page-cache coherence").  A refused append leaves the log's end in
 * *end_out (if non-NULL).  Sets *late if the request's reply must wait
 * for a drop (fs_appended()).  Called with h->lock. */
static int append_batch(struct handle *h, const struct iovec *iov, int iovcnt,
			uint32_t count, uint64_t expect, uint64_t at, int *late,
			uint64_t *end_out)
{
	struct partition *p = h->n->part;
	uint64_t pos, end;
	size_t len = 0;
	int ret, i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (!h->cached) {
		ret = registry_appendv(fs.reg, p, iov, iovcnt, count,
					registry_now_ms(), expect, NULL, &pos);
		goto out;
	}
	/* With at unknown, expect pins the batch where the kernel put it. */
	ret = registry_appendv(fs.reg, p, iov, iovcnt, count, registry_now_ms(),
				at == PARTITION_ANY_END ? expect : at, NULL,
				&pos);
	if (ret == -EPERM && at != PARTITION_ANY_END) {
		end = pos; /* where the log ended instead */
		ret = registry_appendv(fs.reg, p, iov, iovcnt, count,
					registry_now_ms(), PARTITION_ANY_END,
					NULL, &pos);
		if (ret >= 0)
			fs_drop_misplaced(h->n, at, end);
	}
out:
	if (ret == -EPERM && end_out)
		*end_out = pos;
	if (ret < 0)
		return ret;
	note_written(h, pos, len);
	if (fs_appended(h->n, pos + len, h->cached))
		*late = 1;
	return ret;
}

/* Append the held partial line as one message (*late: as for
 * append_batch).  Called with h->lock. */
static int flush_pending(struct handle *h, int *late)
{
	struct iovec iov;
	const char *p;
	size_t len;
	int ret;

	p = framer_pending(&h->fr, &len);
	if (!len)
		return 0;
	iov.iov_base = (void *)p;
	iov.iov_len = len;
	ret = append_batch(h, &iov, 1, 1, PARTITION_ANY_END,
			   h->cached ? h->held_pos : PARTITION_ANY_END, late,
			   NULL);
	if (ret < 0)
		return ret;
	framer_clear(&h->fr);
	return 0;
}

/* Flush h's held line, forget it and free it.  Returns whether a reply
 * to the request closing it must wait for a drop (append_batch). */
int fs_release_handle(struct handle *h)
{
	int ret, late = 0;

	if (h->kind == H_PRODUCE)
		return fs_produce_release(h);
	if (h->kind == H_WRITER) {
		pthread_mutex_lock(&h->lock);
		fs_held_lock(h);
		ret = flush_pending(h, &late);
		if (ret < 0) /* the line is lost: show it no longer */
			framer_clear(&h->fr);
		fs_held_unlock(h);
		pthread_mutex_unlock(&h->lock);
		if (ret < 0)
			writer_error(h->n, "final partial line", ret);
	}
	if (h->kind == H_GROUP)
		fs_groups_release(h);
	if (h->n && (h->kind == H_READER || h->kind == H_WRITER)) {
		pthread_mutex_t *lock =
			fs_tail_lock(registry_ino(fs.reg, h->n));

		pthread_mutex_lock(lock);
		if (h->kind == H_READER && h->cached)
			atomic_fetch_sub(&h->n->fs->pc_readers, 1);
		else if (h->cached)
			atomic_fetch_sub(&h->n->fs->wt_writers, 1);
		else if (h->kind == H_WRITER)
			h->n->fs->dio_writers--;
		pthread_mutex_unlock(lock);
	}
	if (h->n) {
		if (fs.fw)
			follow_file_release(fs.fw, &h->ff);
		atomic_fetch_sub(&fs.open_handles, 1);
		fs_unpin_open(h->n);
	}
	fs_handle_free(h);
	return late;
}

void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int ret = 0, late = 0;

	count_request();
	if (h->kind == H_PRODUCE)
		ret = fs_produce_flush(req, h, &late);
	if (h->kind == H_WRITER) {
		pthread_mutex_lock(&h->lock);
		fs_held_lock(h);
		ret = flush_pending(h, &late);
		fs_held_unlock(h);
		if (ret < 0)
			writer_error(h->n, "flush of a partial line", ret);
		else /* a loss already found (only fsync waits for disks) */
			ret = take_loss(h, 0, UINT64_MAX);
		pthread_mutex_unlock(&h->lock);
	} else if (h->kind == H_GROUP) {
		ret = fs_groups_flush(req, h);
	}
	fs_reply_write(req, 0, -ret, late);
}

void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	count_request();
	fs_reply_write(req, 0, 0, fs_release_handle(handle_of(fi)));
}

void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	uint64_t mark = 0;
	int ret = 0, r;

	count_request();
	if (h->kind == H_PRODUCE) {
		fuse_reply_err(req, -fs_produce_fsync(h));
		return;
	}
	if (h->kind == H_GROUP) {
		ret = fs_groups_fsync(h); /* an explicit commit */
	} else if (h->n && h->n->part && h->kind != H_AT) {
		if (h->kind == H_WRITER) {
			pthread_mutex_lock(&h->lock);
			mark = written_end(h);
			pthread_mutex_unlock(&h->lock);
		}
		ret = partition_sync(h->n->part);
		if (h->kind == H_WRITER) {
			pthread_mutex_lock(&h->lock);
			r = take_loss(h, ret == 0, mark);
			pthread_mutex_unlock(&h->lock);
			if (r < 0)
				ret = r;
		}
		if (ret < 0)
			writer_error(h->n, "fsync", ret);
	}
	fuse_reply_err(req, -ret);
}

/* ---- data ------------------------------------------------------------ */

/* One write(): its complete lines (after the held bytes) become one
 * batch, appended at once; the trailing partial line is held. */
/* Whether buf holds a byte other than NUL.  A copy tool restoring a file
 * whose head was a hole writes data after the hole (it skipped the
 * zeros); glibc's posix_fallocate, when fallocate(2) refuses, writes a
 * single NUL byte into each block of the range instead.  Only the first
 * may start a log past 0, or a refused fallocate leaves a hole and a NUL
 * message behind. */
static int has_data(const char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (buf[i])
			return 1;
	return 0;
}

static int do_write(struct handle *h, const char *buf, size_t size, off_t off,
		    int *late)
{
	struct node *n = h->n;
	struct partition_info info;
	struct framer_plan plan;
	uint64_t expect = PARTITION_ANY_END, at = PARTITION_ANY_END;
	uint64_t end = PARTITION_ANY_END;
	size_t held = h->fr.pending_len;
	int ret;

	if (off < 0)
		return -EPERM;
	if (!h->append) {
		/* The kernel's position already counts the held bytes. */
		if ((uint64_t)off < held)
			return -EPERM;
		expect = (uint64_t)off - held;
	} else if (h->cached) {
		/* Write-through: the kernel copied the held bytes just
		 * before off. */
		at = (uint64_t)off >= held ? (uint64_t)off - held : 0;
	}
	/* A write that fails changes nothing, the held bytes included:
	 * the write() that gave them returned their count, so they are
	 * stored at the flush or close like any partial line (dropping
	 * them here lost bytes already acknowledged). */
	ret = framer_plan(&h->fr, buf, size, atomic_load(&n->max_message),
			  &plan);
	if (ret < 0)
		return ret;
	if (plan.batch_len) {
		ret = append_batch(h, plan.iov, plan.iovcnt,
				   PARTITION_ANY_COUNT, expect, at, late, &end);
		if (ret != -EPERM || held || expect == 0 ||
		    expect == PARTITION_ANY_END)
			goto out;
		/* Refused: only a log that is still empty can take it. */
		if (end != 0)
			return -EPERM;
	}
	if (expect != PARTITION_ANY_END) {
		partition_get_info(n->part, &info);
		if (info.end_byte == 0 && info.next_offset == 0 && !held &&
		    expect > 0 && has_data(buf, size)) {
			/* First write into an empty partition past 0: a
			 * restore of a file whose head was a hole. */
			ret = partition_set_start_byte(n->part, expect);
			if (ret < 0)
				return ret;
		} else if (info.end_byte != expect) {
			return -EPERM;
		}
	}
	if (!plan.batch_len && at != PARTITION_ANY_END) {
		/* Only held: the kernel's copy is right if the log ends
		 * where it put the held bytes. */
		partition_get_info(n->part, &info);
		if (info.end_byte != at)
			fs_drop_misplaced(n, at, info.end_byte);
	}
	ret = 0;
	if (plan.batch_len)
		ret = append_batch(h, plan.iov, plan.iovcnt,
				   PARTITION_ANY_COUNT, expect, at, late, NULL);
out:
	if (ret < 0)
		return ret;
	framer_commit(&h->fr, &plan);
	h->held_pos = (uint64_t)off + size - h->fr.pending_len;
	return 0;
}

void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct node *n;
	size_t held;
	int ret, late = 0;

	count_request();
	if (h->kind == H_PRODUCE) {
		fs_produce_write(req, h, buf, size);
		return;
	}
	if (h->kind != H_WRITER) {
		fuse_reply_err(req, EBADF);
		return;
	}
	n = h->n;
	/* On a direct_io WRITE the kernel leaves clearing setuid/setgid to
	 * us (its flag for it is not passed on by libfuse 3.14); a
	 * write-through one it clears itself first.  uid 0 stands for
	 * CAP_FSETID. */
	if (fuse_req_ctx(req)->uid != 0 && registry_drop_setid(fs.reg, n) > 0)
		fs_inval_attr(n, ino);
	pthread_mutex_lock(&h->lock);
	fs_held_lock(h);
	ret = do_write(h, buf, size, off, &late);
	fs_held_unlock(h);
	held = h->fr.pending_len;
	pthread_mutex_unlock(&h->lock);
	if (ret < 0)
		writer_error(n, "write", ret);
	/* A direct_io writer's held bytes: the kernel counts them in its
	 * size, and with nothing appended fs_appended() did not run. */
	else if (held && !h->cached && !late &&
		 atomic_load(&n->fs->page_cached))
		late = fs_publish_end(
			n, registry_ino(fs.reg, n),
			atomic_load(&n->fs->shown_end),
			fs_direct_write_drop(n, registry_ino(fs.reg, n)));
	fs_reply_write(req, size, ret < 0 ? -ret : -1, late);
}

/* Reply with a private copy of a handle's snapshot: once the kernel has
 * the reply, the reader may close and a RELEASE on another thread free
 * the snapshot while this writev is still returning (ASan's writev
 * interceptor reads the iovec after the syscall and flagged exactly
 * that). */
void fs_reply_snapshot(fuse_req_t req, const char *buf, size_t len)
{
	char *copy = len ? malloc(len) : NULL;

	if (len && !copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (len)
		memcpy(copy, buf, len);
	fuse_reply_buf(req, copy, len);
	free(copy);
}

/* Reply to req with up to size bytes of n's log at off, the log taken to
 * end at log_end, then extra_len bytes of extra (the held bytes shown
 * there; only when the read reaches log_end).  Zero-copy where the bytes
 * lie in uncompressed segments, the hole as zeros; what the descriptor
 * ranges leave out (compressed segments, or more pieces than a reply
 * holds) is copied.  *end gets where the read ends before the reply goes
 * out: the reader may poll at once, and must not be told "readable" for
 * what it just got.  Returns the bytes sent or -errno (replied). */
static long reply_range(fuse_req_t req, struct node *n, uint64_t off,
			size_t size, uint64_t log_end, const char *extra,
			size_t extra_len, atomic_uint_fast64_t *end)
{
	struct partition_range r[MAX_RANGES];
	union {
		struct fuse_bufvec v;
		char space[sizeof(struct fuse_bufvec) +
			   (MAX_BUFS + 1) * sizeof(struct fuse_buf)];
	} bv;
	struct fuse_buf *bufs = bv.v.buf; /* room for MAX_BUFS + 2 */
	struct partition *p = n->part;
	uint64_t want = 0, sent = 0, pos;
	char *copy = NULL;
	size_t nb = 0, chunk;
	ssize_t got;
	int cnt = 0, i, err;

	if (off < log_end) {
		want = log_end - off;
		if (want > size)
			want = size;
	}
	if (want == 0 && extra_len == 0) {
		atomic_store(end, off);
		fuse_reply_buf(req, NULL, 0);
		return 0;
	}
	if (want) {
		cnt = partition_read_ranges(p, off, (size_t)want, r,
					    MAX_RANGES);
		if (cnt < 0) {
			fuse_reply_err(req, -cnt);
			return cnt;
		}
	}
	memset(&bv, 0, sizeof(bv));
	for (i = 0; i < cnt && r[i].fd != PARTITION_RANGE_COPY; i++) {
		pos = 0;
		while (pos < r[i].len && nb < MAX_BUFS) {
			struct fuse_buf *b = bufs + nb++;

			chunk = r[i].len - pos;
			if (r[i].fd < 0) {
				if (chunk > ZERO_BYTES)
					chunk = ZERO_BYTES;
				b->mem = (void *)zeros;
			} else {
				b->fd = r[i].fd;
				b->pos = (off_t)(r[i].file_pos + pos);
				b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK |
					   FUSE_BUF_FD_RETRY;
			}
			b->size = chunk;
			pos += chunk;
		}
		sent += pos;
		if (pos < r[i].len)
			break;
	}
	if (sent < want) {
		/* Compressed segments (or too many pieces): copy the rest. */
		copy = malloc((size_t)(want - sent));
		got = copy ? partition_read_rest(p, off + sent, copy,
						 (size_t)(want - sent))
			   : -ENOMEM;
		if (got < 0) {
			err = (int)-got;
			partition_read_ranges_done(p);
			free(copy);
			fuse_reply_err(req, err);
			return got;
		}
		if ((uint64_t)got < want - sent) {
			want = sent + (uint64_t)got;
			extra_len = 0; /* not at log_end after all */
		}
		bufs[nb].mem = copy;
		bufs[nb++].size = (size_t)got;
	}
	if (extra_len) {
		bufs[nb].mem = (void *)extra;
		bufs[nb++].size = extra_len;
	}
	atomic_store(end, off + want + extra_len);
	bv.v.count = nb;
	fuse_reply_data(req, &bv.v, 0);
	if (want)
		partition_read_ranges_done(p);
	free(copy);
	return (long)(want + extra_len);
}

/* The log alone (follow views and parked reads). */
long fs_reply_data(fuse_req_t req, struct node *n, uint64_t off, size_t size,
		   atomic_uint_fast64_t *end)
{
	struct partition_info info;

	partition_get_info(n->part, &info);
	return reply_range(req, n, off, size, info.end_byte, NULL, 0, end);
}

/* A read of a partition file: the log, then the held bytes shown after
 * it (fs_held_lock). */
static long reply_partition(fuse_req_t req, struct node *n, uint64_t off,
			    size_t size, atomic_uint_fast64_t *end)
{
	struct partition_info info;
	char *extra = NULL;
	uint64_t from;
	size_t len;
	long ret;

	if (!atomic_load(&n->fs->held_handles))
		return fs_reply_data(req, n, off, size, end);
	pthread_mutex_lock(&n->fs->held_lock);
	partition_get_info(n->part, &info);
	len = fs_held_at(n, info.end_byte);
	from = off > info.end_byte ? off - info.end_byte : 0;
	if (len <= from || off + size <= info.end_byte) {
		len = 0;
	} else {
		len -= from;
		if (len > off + size - info.end_byte - from)
			len = off + size - info.end_byte - from;
		extra = malloc(len);
		if (extra)
			memcpy(extra, n->fs->held + from, len);
		else
			len = 0;
	}
	pthread_mutex_unlock(&n->fs->held_lock);
	ret = reply_range(req, n, off, size, info.end_byte, extra, len, end);
	free(extra);
	return ret;
}

void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct node *n;
	int pinned;

	count_request();
	if (h->kind == H_METRICS) {
		if ((size_t)off >= h->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fs_reply_snapshot(req, h->buf + off,
					  h->len - off < size ? h->len - off
							      : size);
		return;
	}
	if (h->kind == H_PRODUCE) {
		fuse_reply_err(req, EBADF); /* write-only */
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (h->kind == H_GROUP) {
		fs_groups_read(req, h, size, off, fi);
		return;
	}
	if (h->kind == H_AT) {
		fs_at_read(req, h, size, off, fi);
		return;
	}
	if (h->kind == H_FOLLOW) {
		/* fcntl(F_SETFL) may change O_NONBLOCK after open (GNU tail
		 * does): the read's own flags tell. */
		follow_read(fs.fw, req, &h->ff, (uint64_t)off, size,
			    !!(fi->flags & O_NONBLOCK));
		return;
	}
	/* Once replied, a RELEASE on another thread may free h: take the
	 * node, and a pin on it, first. */
	n = h->n;
	pinned = h->kind == H_READER && registry_pin(fs.reg, n) == 0;
	if (h->kind == H_READER && h->cached)
		fs_mark_tail_read(n, (uint64_t)off, size);
	reply_partition(req, n, (uint64_t)off, size, &h->ff.pos);
	if (pinned)
		registry_unpin(fs.reg, n);
}

/* A partition file (and a control file) polls like a regular file: always
 * readable (a read returns data, or 0 at the end) and always writable.
 * Event-loop programs (socat, nc, pv) select on their output before they
 * write, and on their input before they read: a file that never reports
 * ready hangs them.  Only the follow view waits for data. */
void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph)
{
	struct handle *h = handle_of(fi);

	count_request();
	if (!h->n || !fs.fw || !h->ff.view) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req,
				POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
		return;
	}
	follow_poll(fs.fw, req, &h->ff, ph);
}

/* SEEK_DATA/SEEK_HOLE in view v of a partition (a partition file is the
 * view of it whole; a time view or a snapshot file shows a part; an open
 * pins the partition): the partition's holes (retention's at the head,
 * batches dropped inside the log) within the bytes the view shows, file
 * offsets counted from its start, its end the final hole. */
static void view_lseek(fuse_req_t req, const struct view *v, off_t off,
		       int whence)
{
	struct partition_info info;
	uint64_t end = v->end, o;
	int ret;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!v->n || !v->n->part) {
		fuse_reply_err(req, EIO);
		return;
	}
	partition_get_info(v->n->part, &info);
	if (end == VIEW_NO_END || end > info.end_byte)
		end = info.end_byte;
	if (off < 0 || v->start + (uint64_t)off >= end) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = partition_seek_hole(v->n->part, v->start + (uint64_t)off,
				  whence == SEEK_HOLE, &o);
	if (ret == 0 && whence == SEEK_DATA && o >= end)
		ret = -ENXIO; /* the data found lies past the view */
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	fuse_reply_lseek(req, (off_t)((o > end ? end : o) - v->start));
}

void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct view whole;

	count_request();
	if (h->kind == H_AT) {
		view_lseek(req, &h->at, off, whence);
		return;
	}
	if (!h->n || !h->n->part || h->kind == H_GROUP) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	whole = (struct view){h->n, 0, VIEW_NO_END};
	view_lseek(req, &whole, off, whence);
}

void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		  off_t length, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	uint64_t to;
	int ret;

	count_request();
	/* Only "punch the head": Kafka's delete-records. */
	if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) ||
	    offset != 0 || !h->n || !h->n->part) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	/* A snapshot's bytes stay until it is released. */
	ret = registry_snap_check_drop(fs.reg, h->n, (uint64_t)length);
	if (ret == 0)
		ret = partition_delete_before(h->n->part, (uint64_t)length);
	if (ret >= 0) {
		diag_info("deleted records before byte %lld of '%s'",
			  (long long)length, h->n->name);
		/* The kernel zeroes [0, length) in the pages it holds,
		 * also in the page where a kept message begins: that page
		 * goes too, even if appends write into it. */
		to = fs_head_pages_end(h->n);
		if (to < ((uint64_t)length + 4095) / 4096 * 4096)
			to = ((uint64_t)length + 4095) / 4096 * 4096;
		fs_drop_head(fs.reg, h->n, to);
		atomic_store(&h->n->fs->attr_cached, 0);
	}
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}
