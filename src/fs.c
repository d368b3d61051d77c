/*
 * fs.c - fluxfs's lowlevel FUSE operations.
 *
 * Every handler resolves its inode to a registry node, calls the registry
 * or the partition, and replies; nothing else in fluxfs includes
 * fuse_lowlevel.h.  Writers frame lines per handle (framer.h).  Reader
 * opens use the page cache with keep_cache, writer opens direct_io, except
 * that a page-cache reader and a direct_io writer are never open at once
 * ("Page-cache coherence": a writer beside a page-cache reader writes
 * through the page cache, a reader beside a direct_io writer reads
 * direct_io).  No writeback cache, no auto_inval_data, no page-range
 * notification inside a handler (FUSE-NOTES.md).
 *
 * The write path takes no registry lock: the handle pins its node, the
 * handle's mutex orders its own writes (and its held partial line), and
 * the partition serialises appends.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "fs_follow.h"
#include "framer.h"
#include "fs.h"
#include "fs_int.h"
#include "notify.h"
#include "xattr.h"

#define ENTRY_TIMEOUT 1.0
#define ATTR_TIMEOUT 1.0
#define MAX_RANGES 16
#define MAX_BUFS 48
#define ZERO_BYTES (1u << 20)
#define METRICS_NAME ".metrics"
#define FOLLOW_NAME ".follow"
#define DRAIN_SECONDS 2
/* A node's follow-view inode: nodes are malloc'ed, so bit 0 is free. */
#define FOLLOW_BIT 1u
/* Unsettled ranges a writer handle tracks exactly; past that the last
 * two merge, which can only report a loss too many, never one too few. */
#define WROTE_RANGES 4

enum handle_kind { H_READER, H_WRITER, H_FOLLOW, H_METRICS, H_DIR };

struct handle {
	enum handle_kind kind;
	struct node *n;
	int append;	      /* O_APPEND: ignore the kernel's offset */
	int cached;	      /* partition handle through the page cache */
	int holding;	      /* counted in n->fs->held_handles (lock) */
	uint64_t held_pos;    /* write-through: where the kernel put the
			       * held bytes (protected by lock) */
	/* Byte ranges this handle appended that no fsync has settled yet:
	 * a later-found loss in them is this handle's to report (lock). */
	struct {
		uint64_t from, to;
	} wrote[WROTE_RANGES];
	int nwrote;
	pthread_mutex_t lock; /* orders this handle's writes and flushes */
	struct framer fr;     /* protected by lock */
	char *buf;	      /* metrics / directory snapshot */
	size_t len;
	struct follow_file ff; /* partition and follow files: poll, parking */
	struct handle *prev;   /* protected by fs.hlock */
	struct handle *next;   /* protected by fs.hlock */
};

/* The mount's one state struct. */
static struct fs_state {
	struct registry *reg;
	struct fuse_session *se;
	struct notifier *nt;
	struct follow *fw; /* parked follow reads and poll handles */
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t writer_errors;
	atomic_uint_fast64_t open_handles;
	pthread_mutex_t hlock;
	struct handle *handles; /* protected by hlock: released at shutdown */
} fs = {.hlock = PTHREAD_MUTEX_INITIALIZER};

/* The hole reads as zeros from here (untouched .bss: no memory cost). */
static const char zeros[ZERO_BYTES];

static void count_request(void)
{
	atomic_fetch_add_explicit(&fs.requests, 1, memory_order_relaxed);
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static int is_follow_ino(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_FOLLOW || (ino >= 16 && (ino & FOLLOW_BIT));
}

/* The node of a real inode; NULL for control files and the follow view
 * (so that handlers which know nothing of it refuse it). */
static struct node *node_of(fuse_ino_t ino)
{
	return is_follow_ino(ino) ? NULL : registry_node(fs.reg, ino);
}

/* The node a follow-view inode mirrors (NULL for .follow itself). */
static struct node *follow_node(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_FOLLOW
		       ? NULL
		       : registry_node(fs.reg, ino & ~(fuse_ino_t)FOLLOW_BIT);
}

/* ---- cache invalidation ------------------------------------------------ */

static int send_inval(void *arg, uint64_t ino, uint64_t from)
{
	if (!fs.se)
		return 0;
	return fuse_lowlevel_notify_inval_inode(fs.se, ino, (off_t)from, 0);
}

/* Page-cache coherence.  A page-cache read that ends mid-page at the end
 * of the log leaves the kernel holding that page zero-filled past the
 * end, and the kernel grows the file's size by itself on every WRITE
 * reply.  Once the size passes the zeros a reader reads them as data.
 * Dropping the page before answering the WRITE does not close that: a
 * reader that looked the page up just before the drop copies from it
 * after reading the new size (filemap_read reads the size after its page
 * lookup), so it pairs the stale page with the larger size.  The window
 * is a few instructions wide, and a loaded CI machine still hit it.
 *
 * So a page-cache reader and a direct_io writer are never open at once:
 *  - an O_WRONLY writer that opens while a page-cache reader is open
 *    writes through the page cache: the kernel copies the bytes into the
 *    cached pages under their locks before it sends the WRITE, as for a
 *    local file, and no page ever looks stale;
 *  - a reader that opens while a direct_io writer is open reads direct_io.
 * Both decisions are taken under the tail lock.  O_RDWR writers stay
 * direct_io (a shared writable mmap stays refused); opened beside
 * page-cache readers, their appends drop the reader's last page before the
 * WRITE is answered (below), which leaves that narrow race open.
 *
 * A direct_io append with no page-cache reader open may leave stale
 * pages of readers gone: it queues a drop on the notifier and is answered
 * at once, and a reader that opens before the drop is sent drops the whole
 * cache instead of keeping it (keep_cache off).
 *
 * A write-through append lands where the kernel copied it as long as the
 * log ends where the kernel thinks; held partial lines are shown after
 * the end for that ("Held bytes" below).  If the end moved under the
 * kernel anyway (another handle's partial line went first), the kernel's
 * pages from there on are wrong and are dropped, after the reply: a drop
 * before it would wait for the page the WRITE itself keeps locked.
 * Readers may read the wrong bytes meanwhile; concurrent writers of
 * partial lines get no promise about how their pieces interleave either.
 *
 * A partition file polls like a regular file (always ready), so no
 * poll state depends on what a page-cache reader has read.
 *
 * Drops the reply waits for are sent by the notifier thread, which then
 * publishes shown_end and answers the request, in order.  The drop waits
 * for any READ in flight on the page, which needs a free worker; a worker
 * waiting for it could starve that READ (it did, with 16 writers and 16
 * readers against libfuse's 10 workers), so workers never wait on the
 * kernel.  GETATTR reports shown_end, which passes a page only after its
 * drop.  A read that may reach the end sets tail_cached before it looks at
 * the end; the append clears it after the new end is published (fences on
 * both sides): either the append sees the mark, or the read saw the new
 * end and cached nothing stale.  Under tail_lock, an append that finds
 * drops still queued queues behind them, so no later end is shown before
 * an earlier drop is done. */
#define TAIL_LOCKS 64
static pthread_mutex_t tail_locks[TAIL_LOCKS];

#define PAGE_OF(b) ((b) & ~(uint64_t)4095)
/* A drop's start: none, or the page of shown_end when it is sent (if a
 * tail read was marked), or a byte. */
#define DROP_NONE UINT64_MAX
#define DROP_TAIL (UINT64_MAX - 1)

struct tail_job {
	struct node *n; /* pinned; NULL for a reply */
	uint64_t ino;
	uint64_t end;
	uint64_t from;	/* DROP_NONE, DROP_TAIL or the byte to drop from */
	fuse_req_t req; /* reply: a WRITE of count bytes, or err (>= 0) */
	size_t count;
	int err;
};

static pthread_mutex_t *tail_lock(uint64_t ino)
{
	return &tail_locks[ino % TAIL_LOCKS];
}

/* The shown held bytes if the log ends at end (n->fs->held_lock held). */
static size_t held_at(struct node *n, uint64_t end)
{
	return n->fs->held_owner && atomic_load(&n->fs->held_handles) == 1 &&
			       n->fs->held_pos == end
		       ? n->fs->held_len
		       : 0;
}

static void mark_tail_read(struct node *n, uint64_t off, size_t size)
{
	/* shown_end never passes the log's end, which only grows: a read
	 * ending below it ends below the end.  (No partition lock here:
	 * reply_data takes the end itself.) */
	if (off + size < atomic_load(&n->fs->shown_end))
		return;
	atomic_store(&n->fs->tail_cached, 1);
	atomic_thread_fence(memory_order_seq_cst);
}

static void show_end(struct node *n, uint64_t end)
{
	uint64_t shown = atomic_load(&n->fs->shown_end);

	/* Hooks of concurrent appends may run out of order. */
	while (shown < end &&
	       !atomic_compare_exchange_weak(&n->fs->shown_end, &shown, end))
		;
}

/* The kernel may cache n's attributes with an older size: drop them. */
static void inval_attr(struct node *n, uint64_t ino)
{
	int ret;

	/* Pairs with node_attr: it marks, then reads shown_end. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Attribute-only invalidation is safe inside a handler. */
	if (fs.se && atomic_exchange(&n->fs->attr_cached, 0)) {
		ret = fuse_lowlevel_notify_inval_inode(fs.se, ino, -1, 0);
		if (ret < 0 && ret != -ENOENT && ret != -ENODEV)
			diag_warn("cannot invalidate attributes of '%s': %s",
				  n->name, strerror(-ret));
	}
}

/* On the notifier thread: drop, show the end, or answer a request. */
static void tail_job_run(void *arg)
{
	struct tail_job *j = arg;
	struct node *n = j->n;
	pthread_mutex_t *lock;
	int ret;

	if (!n) {
		if (j->err >= 0)
			fuse_reply_err(j->req, j->err);
		else
			fuse_reply_write(j->req, j->count);
		free(j);
		return;
	}
	lock = tail_lock(j->ino);
	if (j->from != DROP_NONE && fs.se) {
		/* Only queued jobs show an end while drops are queued. */
		ret = fuse_lowlevel_notify_inval_inode(
			fs.se, j->ino,
			(off_t)(j->from == DROP_TAIL
					? PAGE_OF(atomic_load(&n->fs->shown_end))
					: j->from),
			0);
		if (ret < 0 && ret != -ENOENT && ret != -ENODEV)
			diag_warn("cannot invalidate the last page of '%s': %s",
				  n->name, strerror(-ret));
	}
	pthread_mutex_lock(lock);
	show_end(n, j->end);
	n->fs->tail_drops--;
	pthread_mutex_unlock(lock);
	inval_attr(n, j->ino);
	registry_unpin(fs.reg, n);
	free(j);
}

static int queue_tail_job(struct tail_job *j)
{
	int ret = -ENOMEM;

	if (j && fs.nt)
		ret = notifier_queue_call(fs.nt, tail_job_run, j);
	if (ret < 0)
		free(j);
	return ret;
}

/* Answer a WRITE of count bytes, or err (>= 0): from the notifier after
 * the drops its appends queued if late, else now. */
static void reply_write_or_err(fuse_req_t req, size_t count, int err, int late)
{
	struct tail_job *j;

	if (late) {
		j = calloc(1, sizeof(*j));
		if (j) {
			j->req = req;
			j->count = count;
			j->err = err;
		}
		if (queue_tail_job(j) == 0)
			return;
		/* No memory: answer now; a reader may see the stale page
		 * for as long as the drop takes. */
	}
	if (err >= 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, count);
}

/* Show n's new end now, or, if a drop is asked for (from) or still
 * queued, from the notifier after it.  DROP_TAIL drops only if a tail
 * read was marked.  Returns whether it was queued: the request being
 * handled must then be answered from the notifier too. */
static int publish_end(struct node *n, uint64_t ino, uint64_t end,
		       uint64_t from)
{
	pthread_mutex_t *lock = tail_lock(ino);
	struct tail_job *j;

	pthread_mutex_lock(lock);
	if (from == DROP_TAIL && !atomic_exchange(&n->fs->tail_cached, 0))
		from = DROP_NONE;
	if (from == DROP_NONE && !n->fs->tail_drops) {
		show_end(n, end);
		pthread_mutex_unlock(lock);
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (j && registry_pin(fs.reg, n) == 0) {
		j->n = n;
		j->ino = ino;
		j->end = end;
		j->from = from;
		n->fs->tail_drops++;
		if (queue_tail_job(j) == 0) {
			pthread_mutex_unlock(lock);
			return 1;
		}
		n->fs->tail_drops--;
		registry_unpin(fs.reg, n);
	} else {
		free(j);
	}
	/* No memory to hold the reply back.  Never drop from this worker
	 * (the starvation above): the coalescing queue drops the pages soon
	 * after the reply, and a reader may see them stale meanwhile. */
	diag_warn("no memory to hold a write to '%s' until its reader's "
		  "stale pages are dropped",
		  n->name);
	if (from != DROP_NONE && fs.nt)
		notifier_queue(fs.nt, ino,
			       from == DROP_TAIL
				       ? PAGE_OF(atomic_load(&n->fs->shown_end))
				       : from);
	show_end(n, end);
	pthread_mutex_unlock(lock);
	return 0;
}

/* A direct_io writer grew what the kernel's size covers: the drop its
 * reply must wait for (see "Page-cache coherence"). */
static uint64_t direct_write_drop(struct node *n, uint64_t ino)
{
	/* Only an O_RDWR writer can be open beside page-cache readers, and
	 * no page-cache reader opens while it is: a zero read here stays
	 * zero. */
	if (atomic_load(&n->fs->pc_readers) > 0)
		return DROP_TAIL;
	/* Nobody reads through the page cache until the drop is sent.  A
	 * write-through writer's held bytes may sit in the kernel's pages
	 * where this append lands. */
	if ((atomic_exchange(&n->fs->tail_cached, 0) ||
	     atomic_load(&n->fs->wt_writers) > 0) &&
	    fs.nt)
		notifier_queue(fs.nt, ino, PAGE_OF(atomic_load(&n->fs->shown_end)));
	return DROP_NONE;
}

/* After every append (by through_cache: a write-through handle, whose
 * bytes the kernel copied into its pages itself), from the appending
 * thread once partition_appendv has returned: the one place appends wake
 * anything (the kernel's caches, parked followers, poll handles).
 * Returns whether the request being handled must be answered from the
 * notifier, after the drop queued here. */
static int appended(struct node *n, uint64_t end, int through_cache)
{
	uint64_t ino = registry_ino(fs.reg, n);
	int cached;

	/* Pairs with a reader's open and mark_tail_read: the new end is
	 * published before page_cached is read. */
	atomic_thread_fence(memory_order_seq_cst);
	cached = atomic_load(&n->fs->page_cached);
	if (cached &&
	    publish_end(n, ino, end,
			through_cache ? DROP_NONE
				      : direct_write_drop(n, ino))) {
		/* The notifier shows the end. */
		if (fs.fw)
			follow_wake(fs.fw, n, end);
		return 1;
	}
	if (!cached)
		show_end(n, end);
	inval_attr(n, ino);
	if (fs.fw)
		follow_wake(fs.fw, n, end);
	return 0;
}

static int send_delete(void *arg, uint64_t parent, uint64_t child,
		       const char *name)
{
	if (!fs.se)
		return 0;
	return fuse_lowlevel_notify_delete(fs.se, parent, child, name,
					   strlen(name));
}

/* A partition left its name: end its followers.  If it was removed, the
 * kernel must also drop its follow-view entry (the kernel's unlink only
 * dropped the partition's own), else that inode keeps a lookup on the
 * node until unmount.  Not from inside the handler: the notifier sends
 * it. */
static void fs_detach_hook(struct registry *reg, struct node *n)
{
	if (fs.fw)
		follow_detach(fs.fw, n);
	if (!fs.nt || !n->removed || !n->parent)
		return;
	notifier_queue_delete(fs.nt,
			      n->kind == NODE_TOPIC
				      ? REGISTRY_INO_FOLLOW
				      : registry_ino(reg, n->parent) |
						FOLLOW_BIT,
			      registry_ino(reg, n) | FOLLOW_BIT, n->name);
}

struct head_drop {
	struct node *n; /* pinned */
	uint64_t ino;
	uint64_t len; /* drop [0, len) */
};

/* On the notifier thread: drop the pages of a removed head. */
static void head_drop_run(void *arg)
{
	struct head_drop *d = arg;
	int ret;

	if (fs.se) {
		ret = fuse_lowlevel_notify_inval_inode(fs.se, d->ino, 0,
						       (off_t)d->len);
		if (ret < 0 && ret != -ENOENT && ret != -ENODEV)
			diag_warn("cannot drop the removed head's pages of "
				  "'%s': %s",
				  d->n->name, strerror(-ret));
	}
	atomic_fetch_sub(&d->n->fs->head_drops, 1);
	registry_unpin(fs.reg, d->n);
	free(d);
}

/* Drop n's cached pages [0, to) from the notifier. */
static void drop_head(struct registry *reg, struct node *n, uint64_t to)
{
	struct head_drop *d;

	if (!fs.nt || to == 0 || !atomic_load(&n->fs->page_cached))
		return;
	d = malloc(sizeof(*d));
	if (!d) {
		diag_warn("no memory to drop the removed head's pages of '%s'",
			  n->name);
		return;
	}
	if (registry_pin(reg, n) < 0) { /* going: nothing left to drop */
		free(d);
		return;
	}
	d->n = n;
	d->ino = registry_ino(reg, n);
	d->len = to;
	/* Until it is sent, a reader that opens drops its cache instead
	 * (open_partition), as for any queued drop. */
	atomic_fetch_add(&n->fs->head_drops, 1);
	if (notifier_queue_call(fs.nt, head_drop_run, d) < 0) {
		atomic_fetch_sub(&n->fs->head_drops, 1);
		registry_unpin(reg, n);
		free(d);
		diag_warn("no memory to drop the removed head's pages of '%s'",
			  n->name);
	}
}

/* Where the pages of n's removed head end: below its start, and below
 * the page holding the log's end.  That page is never dropped for a
 * removed head: a write-through WRITE in flight has its bytes only in
 * the kernel's copy of it until the append, and a reader that read the
 * page again from us meanwhile would cache zeros there, which the
 * WRITE's reply then puts under the file's size.  The end only grows,
 * so the page it was in now is safe to drop when the drop is sent.  A
 * partial page below the start that also holds the end keeps its old
 * bytes. */
static uint64_t head_pages_end(struct node *n)
{
	struct partition_info info;

	if (!n->part)
		return 0;
	partition_get_info(n->part, &info);
	return info.start_byte < PAGE_OF(info.end_byte)
		       ? info.start_byte
		       : PAGE_OF(info.end_byte);
}

/* Retention removed segments of n: drop the cached pages below the new
 * start, so that page-cache readers read the hole as zeros. */
static void fs_invalidate_hook(struct registry *reg, struct node *n,
			       uint64_t from)
{
	(void)from;
	drop_head(reg, n, head_pages_end(n));
}

/* A node was made: its FUSE-side state. */
static int fs_node_init(struct registry *reg, struct node *n)
{
	(void)reg;
	n->fs = calloc(1, sizeof(*n->fs));
	if (!n->fs)
		return -ENOMEM;
	pthread_mutex_init(&n->fs->held_lock, NULL);
	return 0;
}

/* A partition's log is open: the kernel sees its end from here. */
static void fs_node_attach(struct registry *reg, struct node *n)
{
	struct partition_info info;

	(void)reg;
	partition_get_info(n->part, &info);
	atomic_store(&n->fs->shown_end, info.end_byte);
}

static void fs_node_release(struct registry *reg, struct node *n)
{
	(void)reg;
	if (!n->fs)
		return;
	pthread_mutex_destroy(&n->fs->held_lock);
	free(n->fs->held);
	free(n->fs);
	n->fs = NULL;
}

static const struct registry_hooks hooks = {
	.node_init = fs_node_init,
	.attach = fs_node_attach,
	.node_release = fs_node_release,
	.invalidate = fs_invalidate_hook,
	.detach = fs_detach_hook,
};

/* The registry's hooks. */
const struct registry_hooks *fs_hooks(void)
{
	return &hooks;
}

/* ---- attributes -------------------------------------------------------- */

static void metrics_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = REGISTRY_INO_METRICS;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 1 << 20;
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_atim = st->st_ctim = st->st_mtim;
}

static int node_attr(struct node *n, struct stat *st)
{
	/* Set before reading: a concurrent append then invalidates, and the
	 * kernel drops this reply as older (attr_version). */
	uint64_t shown;
	size_t held = 0;
	int ret, locked;

	atomic_store(&n->fs->attr_cached, 1);
	atomic_thread_fence(memory_order_seq_cst);
	locked = n->kind == NODE_PARTITION && atomic_load(&n->fs->held_handles) > 0;
	if (locked)
		pthread_mutex_lock(&n->fs->held_lock);
	shown = atomic_load(&n->fs->shown_end);
	ret = registry_stat(fs.reg, n, st);
	if (ret == 0 && n->kind == NODE_PARTITION) {
		/* Not past a last page that may still be cached stale. */
		if ((uint64_t)st->st_size > shown)
			st->st_size = (off_t)shown;
		else if (locked)
			held = held_at(n, (uint64_t)st->st_size);
		st->st_size += (off_t)held;
	}
	if (locked)
		pthread_mutex_unlock(&n->fs->held_lock);
	return ret;
}

static void reply_entry(fuse_req_t req, struct node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	node_attr(n, &e.attr);
	e.ino = registry_ino(fs.reg, n);
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	if (fuse_reply_entry(req, &e) < 0)
		registry_forget(fs.reg, n, 1);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Writeback cache breaks O_APPEND and message boundaries. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* auto_inval_data drops the whole cache on every size change. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* lsattr/chattr on a topic send their ioctl on the directory. */
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
		conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Keep the largest readahead the kernel offers (we cannot raise it). */
}

/* ---- the follow view --------------------------------------------------- */

/* Attributes of a follow-view inode: those of the node it mirrors (same
 * mode and owner, so default_permissions judges it alike); .follow itself
 * is a read-only copy of the root. */
static int follow_attr(fuse_ino_t ino, struct stat *st)
{
	struct node *n = follow_node(ino);
	int ret;

	if (!n) {
		ret = registry_stat(fs.reg, node_of(REGISTRY_INO_ROOT), st);
		st->st_mode = S_IFDIR | 0555;
	} else {
		ret = registry_stat(fs.reg, n, st);
	}
	st->st_ino = ino;
	return ret;
}

/* Follow entries are never cached: a renamed partition's old name must
 * stop resolving at once, and tail -f needs a fresh st_size. */
static void reply_follow_entry(fuse_req_t req, fuse_ino_t ino, struct node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	follow_attr(ino, &e.attr);
	e.ino = ino;
	if (fuse_reply_entry(req, &e) < 0 && n)
		registry_forget(fs.reg, n, 1);
}

static void follow_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir = follow_node(parent), *n;
	int ret;

	if (!dir)
		dir = node_of(REGISTRY_INO_ROOT);
	else if (dir->kind != NODE_TOPIC) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = registry_lookup(fs.reg, dir, name, &n);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_follow_entry(req, registry_ino(fs.reg, n) | FOLLOW_BIT, n);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir = node_of(parent), *n;
	struct fuse_entry_param e;
	int ret;

	count_request();
	if (is_follow_ino(parent)) {
		follow_lookup(req, parent, name);
		return;
	}
	if (parent == REGISTRY_INO_ROOT && !strcmp(name, FOLLOW_NAME)) {
		reply_follow_entry(req, REGISTRY_INO_FOLLOW, NULL);
		return;
	}
	if (parent == REGISTRY_INO_ROOT && !strcmp(name, METRICS_NAME)) {
		memset(&e, 0, sizeof(e));
		metrics_stat(&e.attr);
		e.ino = REGISTRY_INO_METRICS;
		e.entry_timeout = ENTRY_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (!dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = registry_lookup(fs.reg, dir, name, &n);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, n);
}

/* A node's lookup count is shared by its inode and its follow inode. */
static struct node *counted_node(fuse_ino_t ino)
{
	return is_follow_ino(ino) ? follow_node(ino) : node_of(ino);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = counted_node(ino);

	if (n)
		registry_forget(fs.reg, n, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct node *n;
	size_t i;

	for (i = 0; i < count; i++) {
		n = counted_node(forgets[i].ino);
		if (n)
			registry_forget(fs.reg, n, forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	struct stat st;

	count_request();
	if (is_follow_ino(ino)) {
		follow_attr(ino, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (!n) {
		metrics_stat(&st);
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
		return;
	}
	node_attr(n, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	struct partition_info info;
	struct timespec at, mt;
	struct stat st;
	int ret = 0;

	count_request();
	if (!n || n->kind == NODE_ROOT) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		/* Truncation to exactly st_size is a no-op; anything else
		 * would rewrite history. */
		if (n->kind != NODE_PARTITION) {
			ret = -EISDIR;
			goto out;
		}
		if (registry_append_only(n)) {
			ret = -EPERM; /* chattr +a: no truncate at all */
			goto out;
		}
		ret = registry_info(fs.reg, n, &info);
		if (ret == 0 && (uint64_t)attr->st_size != info.end_byte)
			ret = -EPERM;
		if (ret < 0)
			goto out;
	}
	at.tv_sec = attr->st_atim.tv_sec;
	at.tv_nsec = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? UTIME_NOW
							: attr->st_atim.tv_nsec;
	mt.tv_sec = attr->st_mtim.tv_sec;
	mt.tv_nsec = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? UTIME_NOW
							: attr->st_mtim.tv_nsec;
	if (to_set &
	    (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
	     FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))
		ret = registry_setattr(
			fs.reg, n,
			(to_set & FUSE_SET_ATTR_MODE) ? &attr->st_mode : NULL,
			(to_set & FUSE_SET_ATTR_UID) ? &attr->st_uid : NULL,
			(to_set & FUSE_SET_ATTR_GID) ? &attr->st_gid : NULL,
			(to_set & FUSE_SET_ATTR_ATIME) ? &at : NULL,
			(to_set & FUSE_SET_ATTR_MTIME) ? &mt : NULL);
out:
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	node_attr(n, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* ---- namespace --------------------------------------------------------- */

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct node *dir = node_of(parent), *n;
	int ret;

	count_request();
	if (!dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = registry_mkdir(fs.reg, dir, name, mode, ctx->uid, ctx->gid, &n);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, n);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct node *dir = node_of(parent), *n;
	int ret;

	count_request();
	if (!dir || !S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = registry_create(fs.reg, dir, name, mode, ctx->uid, ctx->gid, &n);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, n);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir = node_of(parent);

	count_request();
	if (!dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (parent == REGISTRY_INO_ROOT && !strcmp(name, METRICS_NAME)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -registry_unlink(fs.reg, dir, name));
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir = node_of(parent);

	count_request();
	if (!dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_err(req, -registry_rmdir(fs.reg, dir, name));
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	count_request();
	fuse_reply_err(req, EPERM);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	count_request();
	fuse_reply_err(req, EPERM);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct node *dir = node_of(parent);
	struct node *ndir = node_of(newparent);

	count_request();
	if (!dir || !ndir ||
	    (parent == REGISTRY_INO_ROOT &&
	     (!strcmp(name, METRICS_NAME) || !strcmp(newname, METRICS_NAME)))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(
		req, -registry_rename(fs.reg, dir, name, ndir, newname, flags));
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret;

	count_request();
	ret = registry_statfs(fs.reg, &st);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_statfs(req, &st);
}

/* ---- open and close ---------------------------------------------------- */

static struct handle *handle_new(enum handle_kind kind, struct node *n)
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

static void handle_free(struct handle *h)
{
	pthread_mutex_lock(&fs.hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs.handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs.hlock);
	framer_release(&h->fr);
	pthread_mutex_destroy(&h->lock);
	free(h->buf);
	free(h);
}

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
static int open_metrics(fuse_req_t req, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct registry_cred cred = {ctx->uid, ctx->gid, NULL, 0};
	struct prom_daemon d;
	struct prom_buf out = {NULL, 0, 0};
	struct handle *h;
	int ret;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	if (cred.uid != 0)
		caller_groups(req, &cred);
	memset(&d, 0, sizeof(d));
	d.requests = atomic_load(&fs.requests);
	d.writer_errors = atomic_load(&fs.writer_errors);
	d.notifications = fs.nt ? notifier_sent(fs.nt) : 0;
	d.open_handles = atomic_load(&fs.open_handles);
	d.parked_followers = follow_parked(fs.fw);
	ret = registry_metrics_for(fs.reg, &cred, &d, &out);
	free((void *)cred.groups);
	if (ret < 0) {
		free(out.buf);
		return ret;
	}
	h = handle_new(H_METRICS, NULL);
	if (!h) {
		free(out.buf);
		return -ENOMEM;
	}
	h->buf = out.buf;
	h->len = out.len;
	fi->fh = (uintptr_t)h;
	/* Size unknown to stat, snapshot taken now, and per reader. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
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
	ret = registry_pin(fs.reg, n);
	if (ret < 0)
		return ret;
	h = handle_new(acc == O_RDONLY ? H_READER : H_WRITER, n);
	if (!h) {
		registry_unpin(fs.reg, n);
		return -ENOMEM;
	}
	/* Never a page-cache reader beside a direct_io writer ("Page-cache
	 * coherence"). */
	lock = tail_lock(registry_ino(fs.reg, n));
	pthread_mutex_lock(lock);
	if (h->kind == H_WRITER) {
		/* direct_io: no page-cache copy, and the kernel refuses
		 * shared writable mmap on direct_io files. */
		h->cached = acc == O_WRONLY && atomic_load(&n->fs->pc_readers) > 0;
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
	ret = registry_pin(fs.reg, n);
	if (ret < 0)
		return ret;
	h = handle_new(H_FOLLOW, n);
	if (!h) {
		registry_unpin(fs.reg, n);
		return -ENOMEM;
	}
	follow_file_init(&h->ff, n, 1);
	fi->direct_io = 1;
	fi->nonseekable = 0;
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
}

static int release_handle(struct handle *h);

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	int ret;

	count_request();
	if (is_follow_ino(ino))
		ret = open_follow(ino, fi);
	else
		ret = n ? open_partition(n, fi) : open_metrics(req, fi);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (fuse_reply_open(req, fi) < 0)
		release_handle(handle_of(fi)); /* interrupted: no release will come */
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct node *dir = node_of(parent), *n;
	struct fuse_entry_param e;
	int ret;

	count_request();
	if (!dir) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = registry_create(fs.reg, dir, name, mode, ctx->uid, ctx->gid, &n);
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
	node_attr(n, &e.attr);
	e.ino = registry_ino(fs.reg, n);
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	if (fuse_reply_create(req, &e, fi) < 0) {
		release_handle(handle_of(fi));
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

/* Held bytes of write-through writers.  The kernel counted them in the
 * file's size when their WRITE returned and put them in its pages at
 * held_pos; a read or stat that left them out would make it zero-fill a
 * page there or shrink the size under them.  (The kernel also splits a
 * write at a page it does not hold in full, so whole lines arrive as two
 * WRITEs there.)  So while exactly one such writer holds a partial line
 * and the log ends where it began, reads and stat show it after the end.
 * Two holders cannot both be right: then neither is shown, and what the
 * kernel holds is corrected when it diverges (append_batch).
 *
 * n->fs->held_lock is taken around a write-through handle's write, from before
 * it appends until its held bytes are published, and by a read or stat
 * before it looks at the end: each sees the end and the held bytes of
 * the same moment.  Lock order: h->lock, n->fs->held_lock, the partition's. */
static void held_lock(struct handle *h)
{
	if (h->cached)
		pthread_mutex_lock(&h->n->fs->held_lock);
}

/* Publish h's held bytes (h->lock and n->fs->held_lock held) and unlock. */
static void held_unlock(struct handle *h)
{
	struct node *n = h->n;
	const char *p;
	size_t len;
	char *grown;
	int holding;

	if (!h->cached)
		return;
	p = framer_pending(&h->fr, &len);
	holding = len > 0;
	if (holding != h->holding)
		atomic_fetch_add(&n->fs->held_handles, holding ? 1 : -1);
	h->holding = holding;
	if (n->fs->held_owner == h)
		n->fs->held_owner = NULL;
	if (holding && atomic_load(&n->fs->held_handles) == 1) {
		if (len > n->fs->held_cap) {
			grown = realloc(n->fs->held, len);
			if (grown) {
				n->fs->held = grown;
				n->fs->held_cap = len;
			}
		}
		/* No memory: not shown, as with two holders. */
		if (len <= n->fs->held_cap) {
			memcpy(n->fs->held, p, len);
			n->fs->held_len = len;
			n->fs->held_pos = h->held_pos;
			n->fs->held_owner = h;
		}
	}
	pthread_mutex_unlock(&n->fs->held_lock);
}

/* The kernel put a write-through handle's bytes at at, but the log ended
 * at end: its pages from the lower of the two on are wrong.  Not dropped
 * before the reply: that drop would wait for the page this very WRITE
 * keeps locked.  Readers may read them until the notifier drops them. */
static void drop_misplaced(struct node *n, uint64_t at, uint64_t end)
{
	uint64_t from = at < end ? at : end;

	diag_info("'%s': a write landed elsewhere than the page cache "
		  "put it (another writer's partial line went first); "
		  "dropping its pages",
		  n->name);
	if (fs.nt)
		notifier_queue(fs.nt, registry_ino(fs.reg, n), PAGE_OF(from));
}

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

/* Append h's batch of count messages (PARTITION_ANY_COUNT) at the end,
 * which must be expect (PARTITION_ANY_END: anywhere).  A write-through
 * handle's batch should land at at, where the kernel put it; if the log's
 * end moved under the kernel, it lands at the end all the same
 * ("Page-cache coherence").  A refused append leaves the log's end in
 * *end_out (if non-NULL).  Sets *late if the request's reply must wait
 * for a drop (appended()).  Called with h->lock. */
static int append_batch(struct handle *h, const struct iovec *iov, int iovcnt,
			uint32_t count, uint64_t expect, uint64_t at,
			int *late, uint64_t *end_out)
{
	struct partition *p = h->n->part;
	uint64_t pos, end;
	size_t len = 0;
	int ret, i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (!h->cached) {
		ret = partition_appendv(p, iov, iovcnt, count,
					registry_now_ms(), expect, NULL, &pos);
		goto out;
	}
	/* With at unknown, expect pins the batch where the kernel put it. */
	ret = partition_appendv(p, iov, iovcnt, count, registry_now_ms(),
				at == PARTITION_ANY_END ? expect : at, NULL,
				&pos);
	if (ret == -EPERM && at != PARTITION_ANY_END) {
		end = pos; /* where the log ended instead */
		ret = partition_appendv(p, iov, iovcnt, count,
					registry_now_ms(), PARTITION_ANY_END,
					NULL, &pos);
		if (ret >= 0)
			drop_misplaced(h->n, at, end);
	}
out:
	if (ret == -EPERM && end_out)
		*end_out = pos;
	if (ret < 0)
		return ret;
	note_written(h, pos, len);
	if (appended(h->n, pos + len, h->cached))
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
static int release_handle(struct handle *h)
{
	int ret, late = 0;

	if (h->kind == H_WRITER) {
		pthread_mutex_lock(&h->lock);
		held_lock(h);
		ret = flush_pending(h, &late);
		if (ret < 0) /* the line is lost: show it no longer */
			framer_clear(&h->fr);
		held_unlock(h);
		pthread_mutex_unlock(&h->lock);
		if (ret < 0)
			writer_error(h->n, "final partial line", ret);
	}
	if (h->n && (h->kind == H_READER || h->kind == H_WRITER)) {
		pthread_mutex_t *lock = tail_lock(registry_ino(fs.reg, h->n));

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
		registry_unpin(fs.reg, h->n);
	}
	handle_free(h);
	return late;
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int ret = 0, late = 0;

	count_request();
	if (h->kind == H_WRITER) {
		pthread_mutex_lock(&h->lock);
		held_lock(h);
		ret = flush_pending(h, &late);
		held_unlock(h);
		if (ret < 0)
			writer_error(h->n, "flush of a partial line", ret);
		else /* a loss already found (only fsync waits for disks) */
			ret = take_loss(h, 0, UINT64_MAX);
		pthread_mutex_unlock(&h->lock);
	}
	reply_write_or_err(req, 0, -ret, late);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	count_request();
	reply_write_or_err(req, 0, 0, release_handle(handle_of(fi)));
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	uint64_t mark = 0;
	int ret = 0, r;

	count_request();
	if (h->n && h->n->part) {
		if (h->kind == H_WRITER) {
			pthread_mutex_lock(&h->lock);
			mark = written_end(h);
			pthread_mutex_unlock(&h->lock);
		}
		ret = partition_flush(h->n->part);
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

/* ---- data --------------------------------------------------------------- */

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
				   PARTITION_ANY_COUNT, expect, at, late,
				   &end);
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
			drop_misplaced(n, at, info.end_byte);
	}
	ret = 0;
	if (plan.batch_len)
		ret = append_batch(h, plan.iov, plan.iovcnt,
				   PARTITION_ANY_COUNT, expect, at, late,
				   NULL);
out:
	if (ret < 0)
		return ret;
	framer_commit(&h->fr, &plan);
	h->held_pos = (uint64_t)off + size - h->fr.pending_len;
	return 0;
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct node *n;
	size_t held;
	int ret, late = 0;

	count_request();
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
		inval_attr(n, ino);
	pthread_mutex_lock(&h->lock);
	held_lock(h);
	ret = do_write(h, buf, size, off, &late);
	held_unlock(h);
	held = h->fr.pending_len;
	pthread_mutex_unlock(&h->lock);
	if (ret < 0)
		writer_error(n, "write", ret);
	/* A direct_io writer's held bytes: the kernel counts them in its
	 * size, and with nothing appended appended() did not run. */
	else if (held && !h->cached && !late &&
		 atomic_load(&n->fs->page_cached))
		late = publish_end(n, registry_ino(fs.reg, n),
				   atomic_load(&n->fs->shown_end),
				   direct_write_drop(n, registry_ino(fs.reg, n)));
	reply_write_or_err(req, size, ret < 0 ? -ret : -1, late);
}

/* Reply with a private copy of a handle's snapshot: once the kernel has
 * the reply, the reader may close and a RELEASE on another thread free
 * the snapshot while this writev is still returning (ASan's writev
 * interceptor reads the iovec after the syscall and flagged exactly
 * that). */
static void reply_snapshot(fuse_req_t req, const char *buf, size_t len)
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
static long reply_data(fuse_req_t req, struct node *n, uint64_t off,
		       size_t size, atomic_uint_fast64_t *end)
{
	struct partition_info info;

	partition_get_info(n->part, &info);
	return reply_range(req, n, off, size, info.end_byte, NULL, 0, end);
}

/* A read of a partition file: the log, then the held bytes shown after
 * it (held_lock). */
static long reply_partition(fuse_req_t req, struct node *n, uint64_t off,
			    size_t size, atomic_uint_fast64_t *end)
{
	struct partition_info info;
	char *extra = NULL;
	uint64_t from;
	size_t len;
	long ret;

	if (!atomic_load(&n->fs->held_handles))
		return reply_data(req, n, off, size, end);
	pthread_mutex_lock(&n->fs->held_lock);
	partition_get_info(n->part, &info);
	len = held_at(n, info.end_byte);
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

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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
			reply_snapshot(req, h->buf + off,
				       h->len - off < size ? h->len - off
							   : size);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
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
		mark_tail_read(n, (uint64_t)off, size);
	reply_partition(req, n, (uint64_t)off, size, &h->ff.pos);
	if (pinned)
		registry_unpin(fs.reg, n);
}

/* chattr +a / -a by the owner or root, persisted; replies. */
static void set_append_only(fuse_req_t req, struct node *n, int on)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;
	int ret;

	registry_stat(fs.reg, n, &st);
	if (ctx->uid != 0 && ctx->uid != st.st_uid) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = registry_set_append_only(fs.reg, n, on);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	diag_info("'%s' is %s", n->name,
		  on ? "append-only (chattr +a)" : "no longer append-only");
	fuse_reply_ioctl(req, 0, NULL, 0);
}

/* Inode flags (lsattr/chattr: FS_IOC_GETFLAGS / FS_IOC_SETFLAGS, and the
 * FS_IOC_FSGETXATTR the kernel reads the old flags with): the one flag
 * fluxfs keeps is FS_APPEND_FL (chattr +a), on topics and partitions.
 * The kernel lets only a process with CAP_LINUX_IMMUTABLE change it, as
 * on ext4; the owner check here is for a kernel that would not.  Any
 * other flag is EOPNOTSUPP, as ext4 answers for flags it does not know. */
static void fs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct node *n = node_of(ino);
	struct fsxattr fsx;
	unsigned int attr;

	(void)arg;
	(void)fi;
	count_request();
	if ((flags & FUSE_IOCTL_COMPAT) || !n || n->kind == NODE_ROOT ||
	    is_follow_ino(ino)) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	switch (cmd) {
	case FS_IOC_GETFLAGS:
	case FS_IOC32_GETFLAGS:
		if (out_bufsz < sizeof(attr)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		attr = registry_append_only(n) ? FS_APPEND_FL : 0;
		fuse_reply_ioctl(req, 0, &attr, sizeof(attr));
		return;
	case FS_IOC_SETFLAGS:
	case FS_IOC32_SETFLAGS:
		if (in_bufsz < sizeof(attr)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(&attr, in_buf, sizeof(attr));
		if (attr & ~(unsigned int)FS_APPEND_FL) {
			diag_warn("'%s': only the append-only flag (chattr +a) "
				  "can be set, not 0x%x",
				  n->name, attr & ~(unsigned int)FS_APPEND_FL);
			fuse_reply_err(req, EOPNOTSUPP);
			return;
		}
		set_append_only(req, n, attr != 0);
		return;
	case FS_IOC_FSGETXATTR:
		/* The kernel reads the old flags this way before it sets
		 * new ones with FS_IOC_SETFLAGS. */
		if (out_bufsz < sizeof(fsx)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memset(&fsx, 0, sizeof(fsx));
		if (registry_append_only(n))
			fsx.fsx_xflags = FS_XFLAG_APPEND;
		fuse_reply_ioctl(req, 0, &fsx, sizeof(fsx));
		return;
	case FS_IOC_FSSETXATTR:
		if (in_bufsz < sizeof(fsx)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(&fsx, in_buf, sizeof(fsx));
		if (fsx.fsx_xflags & ~(unsigned int)FS_XFLAG_APPEND) {
			fuse_reply_err(req, EOPNOTSUPP);
			return;
		}
		set_append_only(req, n, fsx.fsx_xflags != 0);
		return;
	default:
		fuse_reply_err(req, ENOTTY);
	}
}

/* A partition file (and a control file) polls like a regular file: always
 * readable (a read returns data, or 0 at the end) and always writable.
 * Event-loop programs (socat, nc, pv) select on their output before they
 * write, and on their input before they read: a file that never reports
 * ready hangs them.  Only the follow view waits for data. */
static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
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

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct partition_info info;
	uint64_t o = off < 0 ? 0 : (uint64_t)off;
	int ret;

	count_request();
	if (!h->n || !h->n->part) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	partition_get_info(h->n->part, &info);
	if (off < 0 || o >= info.end_byte) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* holes: retention's at the head, dropped batches inside the log */
	ret = partition_seek_hole(h->n->part, o, whence == SEEK_HOLE, &o);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_lseek(req, (off_t)o);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
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
	ret = partition_delete_before(h->n->part, (uint64_t)length);
	if (ret >= 0) {
		diag_info("deleted records before byte %lld of '%s'",
			  (long long)length, h->n->name);
		/* The kernel zeroes [0, length) in the pages it holds,
		 * also in the page where a kept message begins: that page
		 * goes too, even if appends write into it. */
		to = head_pages_end(h->n);
		if (to < ((uint64_t)length + 4095) / 4096 * 4096)
			to = ((uint64_t)length + 4095) / 4096 * 4096;
		drop_head(fs.reg, h->n, to);
		atomic_store(&h->n->fs->attr_cached, 0);
	}
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

/* ---- directories -------------------------------------------------------- */

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t len, cap;
	int err;
	int follow; /* listing a follow-view directory */
};

static int dirbuf_add(void *arg, const char *name, uint64_t ino,
		      enum node_kind kind)
{
	struct dirbuf *d = arg;
	struct stat st;
	size_t need;
	char *nb;

	memset(&st, 0, sizeof(st));
	st.st_ino = d->follow ? ino | FOLLOW_BIT : ino;
	st.st_mode = kind == NODE_PARTITION || ino == REGISTRY_INO_METRICS
			     ? S_IFREG
			     : S_IFDIR;
	need = fuse_add_direntry(d->req, NULL, 0, name, NULL, 0);
	if (d->len + need > d->cap) {
		d->cap = (d->len + need) * 2;
		nb = realloc(d->buf, d->cap);
		if (!nb) {
			d->err = -ENOMEM;
			return -ENOMEM;
		}
		d->buf = nb;
	}
	fuse_add_direntry(d->req, d->buf + d->len, d->cap - d->len, name, &st,
			  (off_t)(d->len + need));
	d->len += need;
	return 0;
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	struct dirbuf d = {req, NULL, 0, 0, 0, 0};
	struct handle *h;
	int ret, follow = is_follow_ino(ino);

	count_request();
	if (follow)
		n = ino == REGISTRY_INO_FOLLOW ? node_of(REGISTRY_INO_ROOT)
					       : follow_node(ino);
	if (!n || n->kind == NODE_PARTITION) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* Snapshot the listing now, so offsets stay stable. */
	dirbuf_add(&d, ".", ino, NODE_TOPIC);
	dirbuf_add(&d, "..",
		   follow && ino != REGISTRY_INO_FOLLOW ? REGISTRY_INO_FOLLOW
							: REGISTRY_INO_ROOT,
		   NODE_ROOT);
	if (n->kind == NODE_ROOT && !follow) {
		dirbuf_add(&d, METRICS_NAME, REGISTRY_INO_METRICS,
			   NODE_PARTITION);
		dirbuf_add(&d, FOLLOW_NAME, REGISTRY_INO_FOLLOW, NODE_TOPIC);
	}
	d.follow = follow;
	ret = registry_list(fs.reg, n, dirbuf_add, &d);
	if (ret == 0)
		ret = d.err;
	h = ret == 0 ? handle_new(H_DIR, NULL) : NULL;
	if (!h) {
		free(d.buf);
		fuse_reply_err(req, ret < 0 ? -ret : ENOMEM);
		return;
	}
	h->buf = d.buf;
	h->len = d.len;
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) < 0)
		handle_free(h);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	count_request();
	/* The kernel ignores a trailing entry cut short and resumes at
	 * the last whole entry's offset. */
	if ((size_t)off >= h->len)
		fuse_reply_buf(req, NULL, 0);
	else
		reply_snapshot(req, h->buf + off,
			       h->len - off < size ? h->len - off : size);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	handle_free(handle_of(fi));
	fuse_reply_err(req, 0);
}

/* ---- xattrs ------------------------------------------------------------ */

static void reply_value(fuse_req_t req, const char *buf, int len, size_t size)
{
	if (len < 0)
		fuse_reply_err(req, -len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if ((size_t)len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct node *n = node_of(ino);
	struct partition_info info;
	struct xattr_name x;
	char buf[128];
	int ret;

	count_request();
	if (!n || n->kind == NODE_ROOT) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	ret = xattr_parse(name, n->kind == NODE_PARTITION, &x);
	if (ret == -ENODATA) {
		ret = registry_query(fs.reg, n, name, buf, sizeof(buf));
	} else if (ret == 0 && x.is_config) {
		ret = registry_config_get(fs.reg, n, x.key, buf, sizeof(buf));
	} else if (ret == 0) {
		ret = registry_info(fs.reg, n, &info);
		if (ret == 0)
			ret = xattr_format_info(&info, x.key, buf, sizeof(buf));
	}
	reply_value(req, buf, ret, size);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct node *n = node_of(ino);
	struct xattr_name x;
	int ret;

	count_request();
	if (!n || n->kind == NODE_ROOT) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	ret = xattr_parse(name, n->kind == NODE_PARTITION, &x);
	if (ret < 0)
		ret = -ENOTSUP;
	else if (!x.is_config)
		ret = -EPERM; /* read-only figures */
	else
		ret = registry_config_set(fs.reg, n, x.key, value, size);
	/* Ours only: cp -a offers every attribute a file has. */
	if ((ret == -ENOTSUP || ret == -EPERM) &&
	    !strncmp(name, "user.fluxfs.", 12)) {
		char shown[DIAG_PRINTABLE_MAX];

		diag_info("refused attribute '%s' on '%s': %s",
			  diag_printable(name, shown, sizeof(shown)), n->name,
			  strerror(-ret));
	}
	fuse_reply_err(req, -ret);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct node *n = node_of(ino);
	char buf[1024];
	int len;

	count_request();
	if (!n || n->kind == NODE_ROOT) {
		reply_value(req, buf, 0, size);
		return;
	}
	len = xattr_list(n->kind == NODE_PARTITION, buf, sizeof(buf));
	reply_value(req, buf, len, size);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct node *n = node_of(ino);
	struct xattr_name x;
	int ret;

	count_request();
	if (!n || n->kind == NODE_ROOT) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	ret = xattr_parse(name, n->kind == NODE_PARTITION, &x);
	if (ret == 0)
		ret = x.is_config ? registry_config_unset(fs.reg, n, x.key)
				  : -EPERM;
	fuse_reply_err(req, -ret);
}

static const struct fuse_lowlevel_ops ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.link = fs_link,
	.rename = fs_rename,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
	.poll = fs_poll,
	.ioctl = fs_ioctl,
};

/* The lowlevel operations. */
const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &ops;
}

/* Bind the registry. */
void fs_setup(struct registry *reg)
{
	int i;

	fs.reg = reg;
	for (i = 0; i < TAIL_LOCKS; i++)
		pthread_mutex_init(&tail_locks[i], NULL);
}

/* Start the notifier and maintenance threads for session se. */
int fs_start(struct fuse_session *se)
{
	int ret;

	fs.se = se;
	ret = follow_new(reply_data, &fs.fw);
	if (ret < 0)
		return ret;
	ret = notifier_start(send_inval, send_delete, NULL, &fs.nt);
	if (ret < 0)
		return ret;
	return registry_maint_start(fs.reg);
}

static int follow_handles(void)
{
	struct handle *h;
	int count = 0;

	pthread_mutex_lock(&fs.hlock);
	for (h = fs.handles; h; h = h->next)
		count += h->kind == H_FOLLOW;
	pthread_mutex_unlock(&fs.hlock);
	return count;
}

/* The session loop has ended (a signal) but followers just got their
 * end-of-file: serve their close (FLUSH, RELEASE) on this thread for a
 * moment, or their close() would fail when the channel goes. */
static void drain_followers(void)
{
	struct fuse_buf fbuf = {.mem = NULL};
	struct pollfd pfd = {.fd = fuse_session_fd(fs.se), .events = POLLIN};
	struct timespec now, end;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += DRAIN_SECONDS;
	/* A second signal sets the flag again and ends the drain. */
	fuse_session_reset(fs.se);
	while (follow_handles() > 0 && !fuse_session_exited(fs.se)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		ret = poll(&pfd, 1, 100);
		if (ret < 0 && errno != EINTR)
			break;
		if (ret <= 0)
			continue;
		ret = fuse_session_receive_buf(fs.se, &fbuf);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret <= 0)
			break;
		fuse_session_process_buf(fs.se, &fbuf);
	}
	free(fbuf.mem);
	fuse_session_exit(fs.se);
}

/* Stop the threads (the session loop has returned). */
void fs_stop(void)
{
	struct handle *h;

	/* Parked reads first: their readers get end-of-file and can go,
	 * so the unmount that follows is not held up by them. */
	if (follow_shutdown(fs.fw) > 0 && fs.se)
		drain_followers();
	/* The kernel sends no release for files still open when the
	 * session ends (SIGTERM): flush their held lines and unpin. */
	for (;;) {
		pthread_mutex_lock(&fs.hlock);
		h = fs.handles;
		pthread_mutex_unlock(&fs.hlock);
		if (!h)
			break;
		if (h->kind == H_READER || h->kind == H_WRITER ||
		    h->kind == H_FOLLOW)
			release_handle(h);
		else
			handle_free(h);
	}
	registry_maint_stop(fs.reg);
	notifier_stop(fs.nt);
	fs.nt = NULL;
	follow_free(fs.fw);
	fs.fw = NULL;
	fs.se = NULL;
}
