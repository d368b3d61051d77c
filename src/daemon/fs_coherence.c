/*
 * fs_coherence.c - what the kernel may cache of each node, and keeping it
 * right: attributes, the page cache beside appends, held partial lines.
 *
 * The FUSE layer keeps, per node (struct fs_node), what the kernel may
 * hold: attributes, pages, a partial last page, the size it was shown.
 * Every append comes here (fs_appended) from the thread that made it,
 * once the partition has returned; so do stat (fs_node_attr), reads that
 * may reach the end, and the registry's hooks for a node's life and for
 * data removed from a partition's head.  Drops of page ranges are never
 * sent from inside a request handler: a page-range invalidation there can
 * deadlock the kernel against the daemon, waiting for a page the request
 * itself keeps locked, so they go through the notifier thread (notify.h),
 * and a reply that must follow a drop is sent from there too.  The essay
 * below ("Page-cache coherence") is the reasoning; "Held bytes" the rest.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fs.h"
#include "fs_int.h"
#include "notify.h"

/* ---- page-cache coherence -------------------------------------------- */

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
 * end and cached nothing stale.  Under fs_tail_lock, an append that finds
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

pthread_mutex_t *fs_tail_lock(uint64_t ino)
{
	return &tail_locks[ino % TAIL_LOCKS];
}

/* The shown held bytes if the log ends at end (n->fs->held_lock held). */
size_t fs_held_at(struct node *n, uint64_t end)
{
	return n->fs->held_owner && atomic_load(&n->fs->held_handles) == 1 &&
			       n->fs->held_pos == end
		       ? n->fs->held_len
		       : 0;
}

void fs_mark_tail_read(struct node *n, uint64_t off, size_t size)
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

	/* Concurrent appends may get here out of order. */
	while (shown < end &&
	       !atomic_compare_exchange_weak(&n->fs->shown_end, &shown, end))
		;
}

/* The kernel may cache n's attributes with an older size: drop them. */
void fs_inval_attr(struct node *n, uint64_t ino)
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
	lock = fs_tail_lock(j->ino);
	if (j->from != DROP_NONE && fs.se) {
		/* Only queued jobs show an end while drops are queued. */
		ret = fuse_lowlevel_notify_inval_inode(
			fs.se, j->ino,
			(off_t)(j->from == DROP_TAIL
					? PAGE_OF(atomic_load(
						  &n->fs->shown_end))
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
	fs_inval_attr(n, j->ino);
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
void fs_reply_write(fuse_req_t req, size_t count, int err, int late)
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
int fs_publish_end(struct node *n, uint64_t ino, uint64_t end, uint64_t from)
{
	pthread_mutex_t *lock = fs_tail_lock(ino);
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
uint64_t fs_direct_write_drop(struct node *n, uint64_t ino)
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
		notifier_queue(fs.nt, ino,
			       PAGE_OF(atomic_load(&n->fs->shown_end)));
	return DROP_NONE;
}

/* After every append (by through_cache: a write-through handle, whose
 * bytes the kernel copied into its pages itself), from the appending
 * thread once partition_appendv has returned: the one place appends wake
 * anything (the kernel's caches, parked followers, poll handles).
 * Returns whether the request being handled must be answered from the
 * notifier, after the drop queued here. */
int fs_appended(struct node *n, uint64_t end, int through_cache)
{
	uint64_t ino = registry_ino(fs.reg, n);
	int cached;

	/* Pairs with a reader's open and mark_tail_read: the new end is
	 * published before page_cached is read. */
	atomic_thread_fence(memory_order_seq_cst);
	cached = atomic_load(&n->fs->page_cached);
	if (cached &&
	    fs_publish_end(n, ino, end,
			   through_cache ? DROP_NONE
					 : fs_direct_write_drop(n, ino))) {
		/* The notifier shows the end. */
		if (fs.fw)
			follow_wake(fs.fw, n, end);
		return 1;
	}
	if (!cached)
		show_end(n, end);
	fs_inval_attr(n, ino);
	if (fs.fw)
		follow_wake(fs.fw, n, end);
	return 0;
}

void fs_appended_elsewhere(struct node *n, uint64_t end)
{
	/* No request waits for a reply here, so wait for the notifier
	 * itself: once the appender goes on (and says the append is
	 * there, as mirror_wait does), a reader must see the new end.  A
	 * loaded machine took over a second; past 30 s something is
	 * stuck, and the appender goes on rather than stop with it. */
	if (!fs_appended(n, end, 0) || !fs.nt)
		return;
	if (notifier_wait(fs.nt, registry_ino(fs.reg, n), 30000) < 0)
		diag_warn("'%s': the kernel was not told of an append within "
			  "30 s; readers may see the old end",
			  n->name);
}

/* ---- notifications and the registry's hooks -------------------------- */

/* The notifier's senders (notify.h). */
int fs_send_inval(void *arg, uint64_t ino, uint64_t from)
{
	if (!fs.se)
		return 0;
	return fuse_lowlevel_notify_inval_inode(fs.se, ino, (off_t)from, 0);
}

int fs_send_delete(void *arg, uint64_t parent, uint64_t child, const char *name)
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
void fs_drop_head(struct registry *reg, struct node *n, uint64_t to)
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
uint64_t fs_head_pages_end(struct node *n)
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
	fs_drop_head(reg, n, fs_head_pages_end(n));
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

/* ---- attributes ------------------------------------------------------ */

int fs_node_attr(struct node *n, struct stat *st)
{
	/* Set before reading: a concurrent append then invalidates, and the
	 * kernel drops this reply as older (attr_version). */
	uint64_t shown;
	size_t held = 0;
	int ret, locked;

	atomic_store(&n->fs->attr_cached, 1);
	atomic_thread_fence(memory_order_seq_cst);
	locked = n->kind == NODE_PARTITION &&
		 atomic_load(&n->fs->held_handles) > 0;
	if (locked)
		pthread_mutex_lock(&n->fs->held_lock);
	shown = atomic_load(&n->fs->shown_end);
	ret = registry_stat(fs.reg, n, st);
	if (ret == 0 && n->kind == NODE_PARTITION &&
	    (uint64_t)st->st_size > shown) {
		/* A closed log takes no appends: its end is what the kernel
		 * may see, as when it is opened (fs_node_attach, which
		 * registry_stat may have just run).  shown_end only grows,
		 * and only past pages already dropped, so reading it again
		 * is as safe as the first time. */
		if (!registry_part_is_open(fs.reg, n))
			show_end(n, (uint64_t)st->st_size);
		shown = atomic_load(&n->fs->shown_end);
	}
	if (ret == 0 && n->kind == NODE_PARTITION) {
		/* Not past a last page that may still be cached stale. */
		if ((uint64_t)st->st_size > shown)
			st->st_size = (off_t)shown;
		else if (locked)
			held = fs_held_at(n, (uint64_t)st->st_size);
		st->st_size += (off_t)held;
	}
	if (locked)
		pthread_mutex_unlock(&n->fs->held_lock);
	return ret;
}

/* ---- held bytes ------------------------------------------------------ */

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
void fs_held_lock(struct handle *h)
{
	if (h->cached)
		pthread_mutex_lock(&h->n->fs->held_lock);
}

/* Publish h's held bytes (h->lock and n->fs->held_lock held) and unlock. */
void fs_held_unlock(struct handle *h)
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
void fs_drop_misplaced(struct node *n, uint64_t at, uint64_t end)
{
	uint64_t from = at < end ? at : end;

	diag_info("'%s': a write landed elsewhere than the page cache "
		  "put it (another writer's partial line went first); "
		  "dropping its pages",
		  n->name);
	if (fs.nt)
		notifier_queue(fs.nt, registry_ino(fs.reg, n), PAGE_OF(from));
}

/* Set up the tail locks. */
void fs_coherence_init(void)
{
	int i;

	for (i = 0; i < TAIL_LOCKS; i++)
		pthread_mutex_init(&tail_locks[i], NULL);
}
