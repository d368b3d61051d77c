/*
 * fs_produce.c - keyed producing through MNT/.produce/: the directory
 * that lists the topics, and one write-only file per topic whose lines
 * go, each whole, to the partition their key picks (produce.h: Kafka's
 * murmur2 of the bytes before the topic's key separator).
 *
 * A produce file's inode is its topic node's address with PRODUCE_TAG in
 * the low bits; its handle (H_PRODUCE) pins the topic, and frames lines
 * as a partition writer does (framer.h, the same held partial line, the
 * same max_message_bytes check).  Each write()'s complete lines are
 * grouped by partition, in their order, and every group is appended as
 * one batch: a line is never split or interleaved, and each partition
 * gets its share of the write in order.  The groups are appended one
 * partition after another, so a crash (or a failed append) in between
 * leaves some partitions with their share and others without; a write
 * that fails after some groups were stored drops its held partial line
 * too, so that writing it again repeats lines rather than losing any.
 *
 * Unkeyed lines are sticky per write, as Kafka's producer has been since
 * KIP-480: all of one write's unkeyed lines go to one partition (one
 * batch), and the next write, from any handle, takes the next partition.
 *
 * The handle keeps every partition it appended to pinned, with the bytes
 * it appended there that no fsync has settled yet: fsync on the handle
 * flushes each of them, so everything it wrote is durable on every
 * partition it touched, and reports EIO if any of those bytes were in a
 * flush that failed.  Its appends count as a direct_io writer of each
 * partition (fs_coherence.c, "Page-cache coherence").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "diag.h"
#include "fs_int.h"
#include "registry_metrics.h"

/* One partition a produce handle holds pinned. */
struct produce_target {
	struct node *n;
	uint64_t from, to; /* appended, not yet settled by an fsync */
	char *buf;	   /* this write's lines for it */
	size_t len, cap;
};

struct produce_handle {
	struct produce_target *t; /* every partition pinned, old ones too */
	size_t nt, capt;
	size_t *slot; /* partition number -> index in t (this write) */
	size_t nslot;
	char *line; /* the first line, joined from the held bytes */
	size_t line_cap;
};

static const char *topic_name(struct node *t)
{
	return t->name ? t->name : "?";
}

/* Grow *buf to need bytes. */
static int grow(char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 4096;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* ---- names and attributes -------------------------------------------- */

int fs_produce_attr(fuse_ino_t ino, struct stat *st)
{
	struct node *t = produce_node(ino);
	int ret;

	if (!t)
		return fs_view_dir_attr(REGISTRY_INO_PRODUCE, st);
	ret = registry_stat(fs.reg, t, st);
	/* Who may create partitions in the topic may produce to it. */
	st->st_mode = S_IFREG | (st->st_mode & 0222);
	st->st_nlink = 1;
	st->st_size = 0;
	st->st_blocks = 0;
	st->st_blksize = 1 << 20; /* cat and tee size their writes by it */
	st->st_ino |= REGISTRY_INO_PRODUCE_VIEW;
	return ret;
}

/* Produce entries are not cached: a removed topic's name must stop
 * resolving at once. */
static void reply_produce_entry(fuse_req_t req, fuse_ino_t ino, struct node *t)
{
	struct stat st;

	fs_produce_attr(ino, &st);
	fs_reply_view_entry(req, ino, &st, t);
}

void fs_produce_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *t;
	int ret;

	if (parent != REGISTRY_INO_PRODUCE) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = registry_lookup(fs.reg, node_of(REGISTRY_INO_ROOT), name, &t);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_produce_entry(req, registry_ino(fs.reg, t) | PRODUCE_TAG, t);
}

void fs_produce_dir_entry(fuse_req_t req)
{
	reply_produce_entry(req, REGISTRY_INO_PRODUCE, NULL);
}

void fs_produce_setattr(fuse_req_t req, fuse_ino_t ino, int to_set)
{
	struct node *t = produce_node(ino);

	if (t && (to_set & FUSE_SET_ATTR_SIZE))
		diag_info("refused truncating '.produce/%s': a produce file "
			  "only appends",
			  topic_name(t));
	fuse_reply_err(req, EPERM);
}

/* ---- open and close -------------------------------------------------- */

int fs_produce_open(fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *t = produce_node(ino);
	struct handle *h;
	int ret;

	if (!t)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_WRONLY) {
		diag_info("refused opening '.produce/%s' for reading: it is "
			  "write-only",
			  topic_name(t));
		return -EACCES;
	}
	if (!(fi->flags & O_APPEND)) {
		diag_info("refused opening '.produce/%s' without O_APPEND: a "
			  "produce file only appends",
			  topic_name(t));
		return -EPERM;
	}
	ret = registry_pin(fs.reg, t);
	if (ret < 0)
		return ret;
	h = fs_handle_new(H_PRODUCE, t);
	if (h)
		h->produce = calloc(1, sizeof(*h->produce));
	if (!h || !h->produce) {
		if (h)
			fs_handle_free(h);
		registry_unpin(fs.reg, t);
		return -ENOMEM;
	}
	h->append = 1;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
}

/* ---- partitions ------------------------------------------------------ */

/* The index in ph->t of partition node n (pinned by the caller: the pin
 * is kept for a new target, with its log pinned open, and dropped for a
 * known one); -ENOMEM, or -EMFILE when the descriptor budget is held by
 * partitions in use. */
static long target_of(struct produce_handle *ph, struct node *n)
{
	struct produce_target *t;
	pthread_mutex_t *lock;
	size_t i;
	int ret;

	for (i = 0; i < ph->nt; i++)
		if (ph->t[i].n == n) {
			registry_unpin(fs.reg, n);
			return (long)i;
		}
	if (ph->nt == ph->capt) {
		size_t cap = ph->capt ? ph->capt * 2 : 8;

		t = realloc(ph->t, cap * sizeof(*t));
		if (!t) {
			registry_unpin(fs.reg, n);
			return -ENOMEM;
		}
		ph->t = t;
		ph->capt = cap;
	}
	/* The target's log stays open while the handle is: an fsync must
	 * find a failed flush of what the handle appended, and an idle
	 * close would take that failure with it. */
	ret = registry_part_get(fs.reg, n);
	if (ret < 0) {
		registry_unpin(fs.reg, n);
		return ret;
	}
	t = &ph->t[ph->nt];
	memset(t, 0, sizeof(*t));
	t->n = n;
	/* A direct_io writer of n while the handle is open. */
	lock = fs_tail_lock(registry_ino(fs.reg, n));
	pthread_mutex_lock(lock);
	n->fs->dio_writers++;
	pthread_mutex_unlock(lock);
	return (long)ph->nt++;
}

/* Map the topic's partitions by number to targets (ph->slot, ph->nslot):
 * -ENXIO (logged) if it has none. */
static int resolve(struct handle *h, uid_t uid, gid_t gid)
{
	struct produce_handle *ph = h->produce;
	struct node **slots;
	uint32_t count, i;
	size_t *s, known = ph->nslot;
	long k;
	int ret;

	ret = registry_produce_partitions(fs.reg, h->n, uid, gid, &slots,
					  &count);
	if (ret < 0)
		return ret;
	ret = 0;
	for (i = 0; i < count && slots[i]; i++)
		;
	if (count == 0 || i < count) {
		diag_info("cannot produce to '%s': %s", topic_name(h->n),
			  count ? "partitions are missing"
				: "it has no partitions (set "
				  "user.fluxfs.partitions, or create "
				  "partition 0)");
		ret = -ENXIO;
	} else if (count > ph->nslot) {
		s = realloc(ph->slot, count * sizeof(*s));
		if (!s)
			ret = -ENOMEM;
		else
			ph->slot = s;
	}
	for (i = 0; i < count; i++) {
		if (!slots[i])
			continue;
		if (ret < 0 ||
		    (i < known && ph->t[ph->slot[i]].n == slots[i])) {
			/* The same partition as last write: pinned already. */
			registry_unpin(fs.reg, slots[i]);
			continue;
		}
		k = target_of(ph, slots[i]);
		if (k < 0)
			ret = (int)k;
		else
			ph->slot[i] = (size_t)k;
	}
	free(slots);
	if (ret == 0)
		ph->nslot = count;
	return ret;
}

/* ---- routing --------------------------------------------------------- */

struct route {
	struct produce_handle *ph;
	int separator;
	uint32_t count;
	uint32_t sticky; /* this write's unkeyed partition, or UINT32_MAX */
};

/* Add line[0..len) (its newline included, if any) to its partition's
 * group. */
static int route_line(struct route *r, const char *line, size_t len)
{
	struct produce_target *t;
	uint32_t p;
	size_t body = len && line[len - 1] == '\n' ? len - 1 : len;

	p = produce_route(line, body, r->separator, r->count);
	if (p == PRODUCE_UNKEYED) {
		if (r->sticky == UINT32_MAX)
			r->sticky = atomic_fetch_add(&fs.produce_next, 1) %
				    r->count;
		p = r->sticky;
	}
	t = &r->ph->t[r->ph->slot[p]];
	if (atomic_load(&t->n->max_message) &&
	    len > atomic_load(&t->n->max_message))
		return -EMSGSIZE; /* the partition's own limit is lower */
	if (grow(&t->buf, &t->cap, t->len + len) < 0)
		return -ENOMEM;
	memcpy(t->buf + t->len, line, len);
	t->len += len;
	return 0;
}

/* Route every line of buf[0..len), which ends with a newline. */
static int route_lines(struct route *r, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;
	int ret;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		ret = route_line(r, p, (size_t)(nl - p) + 1);
		if (ret < 0)
			return ret;
		p = nl + 1;
	}
	return 0;
}

/* Append each partition's group; *stored counts the groups stored. */
static int append_groups(struct handle *h, int *late, int *stored)
{
	struct produce_handle *ph = h->produce;
	struct produce_target *t;
	struct iovec iov;
	uint64_t pos;
	size_t i;
	int ret = 0;

	for (i = 0; i < ph->nt; i++) {
		t = &ph->t[i];
		if (!t->len)
			continue;
		if (ret == 0) {
			iov.iov_base = t->buf;
			iov.iov_len = t->len;
			ret = t->n->part
				      ? registry_appendv(fs.reg, t->n->part,
							 &iov, 1,
							  PARTITION_ANY_COUNT,
							  registry_now_ms(),
							  PARTITION_ANY_END,
							  NULL, &pos)
				      : -ENOENT;
			if (ret >= 0) {
				ret = 0;
				(*stored)++;
				if (t->from == t->to)
					t->from = pos;
				t->to = pos + t->len;
				if (fs_appended(t->n, pos + t->len, 0))
					*late = 1;
			} else {
				diag_info("produce to '%s/%s' failed: %s",
					  topic_name(h->n), t->n->name,
					  strerror(-ret));
			}
		}
		t->len = 0;
	}
	return ret;
}

/* Forget every group of a write that stores nothing. */
static void clear_groups(struct produce_handle *ph)
{
	size_t i;

	for (i = 0; i < ph->nt; i++)
		ph->t[i].len = 0;
}

/* Route and append lines: first[0..first_len) (a whole line, newline
 * optional) then rest[0..rest_len) (whole lines).  Called with h->lock. */
static int produce_lines(struct handle *h, const char *first, size_t first_len,
			 const char *rest, size_t rest_len, int *late,
			 int *stored)
{
	struct produce_handle *ph = h->produce;
	struct produce_conf c;
	struct route r;
	uint64_t max;
	int ret = 0;

	registry_produce_conf(fs.reg, h->n, &c, &max);
	r.ph = ph;
	r.separator = c.separator;
	r.count = (uint32_t)ph->nslot;
	r.sticky = UINT32_MAX;
	if (first_len)
		ret = route_line(&r, first, first_len);
	if (ret == 0 && rest_len)
		ret = route_lines(&r, rest, rest_len);
	if (ret < 0) {
		clear_groups(ph);
		return ret;
	}
	return append_groups(h, late, stored);
}

/* One write(): held bytes and complete lines routed, the rest held. */
static int produce_write(struct handle *h, const char *buf, size_t size,
			 uid_t uid, gid_t gid, int *late)
{
	struct produce_handle *ph = h->produce;
	struct framer_plan plan;
	struct produce_conf c;
	const char *rest = buf, *first = NULL;
	size_t first_len = 0, rest_len, held;
	uint64_t max;
	int ret, stored = 0;

	ret = resolve(h, uid, gid);
	if (ret < 0)
		return ret;
	registry_produce_conf(fs.reg, h->n, &c, &max);
	ret = framer_plan(&h->fr, buf, size, max, &plan);
	if (ret < 0)
		return ret;
	if (!plan.batch_len) {
		framer_commit(&h->fr, &plan);
		return 0;
	}
	rest_len = plan.batch_len;
	if (plan.iovcnt == 2) {
		/* The held bytes and the write's first line are one line. */
		const char *nl = memchr(buf, '\n', size);

		held = plan.iov[0].iov_len;
		first_len = held + (size_t)(nl - buf) + 1;
		if (grow(&ph->line, &ph->line_cap, first_len) < 0)
			return -ENOMEM;
		memcpy(ph->line, plan.iov[0].iov_base, held);
		memcpy(ph->line + held, buf, first_len - held);
		first = ph->line;
		rest = nl + 1;
		rest_len = plan.batch_len - first_len;
	}
	ret = produce_lines(h, first, first_len, rest, rest_len, late, &stored);
	if (ret < 0 && stored) {
		/* Some partitions have their lines: a retry must repeat
		 * lines, never lose the partial one held from before. */
		diag_err("a write to '.produce/%s' stored its lines in %d "
			 "partitions before failing: %s",
			 topic_name(h->n), stored, strerror(-ret));
		framer_commit(&h->fr, &plan);
		framer_clear(&h->fr);
	}
	if (ret == 0)
		framer_commit(&h->fr, &plan);
	return ret;
}

void fs_produce_write(fuse_req_t req, struct handle *h, const char *buf,
		      size_t size)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int ret, late = 0;

	pthread_mutex_lock(&h->lock);
	ret = produce_write(h, buf, size, ctx->uid, ctx->gid, &late);
	pthread_mutex_unlock(&h->lock);
	if (ret < 0)
		atomic_fetch_add_explicit(&fs.writer_errors, 1,
					  memory_order_relaxed);
	if (ret == -EMSGSIZE)
		diag_info("write to '.produce/%s' refused: a line is longer "
			  "than max_message_bytes",
			  topic_name(h->n));
	fs_reply_write(req, size, ret < 0 ? -ret : -1, late);
}

/* Store the held partial line as one message (h->lock held). */
static int flush_held(struct handle *h, uid_t uid, gid_t gid, int *late)
{
	const char *p;
	size_t len;
	int ret, stored = 0;

	p = framer_pending(&h->fr, &len);
	if (!len)
		return 0;
	ret = resolve(h, uid, gid);
	if (ret == 0)
		ret = produce_lines(h, p, len, NULL, 0, late, &stored);
	if (ret == 0)
		framer_clear(&h->fr);
	return ret;
}

int fs_produce_flush(fuse_req_t req, struct handle *h, int *late)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int ret;

	pthread_mutex_lock(&h->lock);
	ret = flush_held(h, ctx->uid, ctx->gid, late);
	pthread_mutex_unlock(&h->lock);
	if (ret < 0)
		diag_info("flush of a partial line to '.produce/%s' failed: %s",
			  topic_name(h->n), strerror(-ret));
	return ret;
}

/* fsync: every partition this handle appended to, flushed as fsync(2) of
 * the partition's file does (sharing flushes with concurrent callers,
 * partition.state only when recovery needs it); -EIO if any bytes it
 * appended were in a flush that failed. */
int fs_produce_fsync(struct handle *h)
{
	struct produce_handle *ph = h->produce;
	struct partition_loss l;
	struct node *n;
	uint64_t from, to;
	size_t i, nt;
	int ret = 0, r;

	pthread_mutex_lock(&h->lock);
	nt = ph->nt;
	pthread_mutex_unlock(&h->lock);
	for (i = 0; i < nt; i++) {
		pthread_mutex_lock(&h->lock);
		n = ph->t[i].n;
		from = ph->t[i].from;
		to = ph->t[i].to;
		pthread_mutex_unlock(&h->lock);
		if (from == to || !n->part)
			continue;
		r = partition_sync(n->part);
		if (r == 0 && partition_lost(n->part, from, to, &l))
			r = -EIO;
		if (r < 0) {
			diag_err("fsync of '.produce/%s' failed on partition "
				 "'%s': %s",
				 topic_name(h->n), n->name, strerror(-r));
			if (ret == 0)
				ret = r;
			continue;
		}
		/* Settled up to where it stood when the flush began. */
		pthread_mutex_lock(&h->lock);
		if (ph->t[i].from == from)
			ph->t[i].from = to > ph->t[i].to ? ph->t[i].to : to;
		pthread_mutex_unlock(&h->lock);
	}
	return ret;
}

/* Store the held line, unpin everything, free h. */
int fs_produce_release(struct handle *h)
{
	struct produce_handle *ph = h->produce;
	pthread_mutex_t *lock;
	struct node *n;
	int late = 0, ret;
	uid_t uid;
	gid_t gid;
	size_t i;

	pthread_mutex_lock(&h->lock);
	/* The closing process may be gone: the topic owner creates any
	 * missing partition. */
	pthread_mutex_lock(&h->n->meta_lock);
	uid = h->n->meta.uid;
	gid = h->n->meta.gid;
	pthread_mutex_unlock(&h->n->meta_lock);
	ret = flush_held(h, uid, gid, &late);
	pthread_mutex_unlock(&h->lock);
	if (ret < 0)
		diag_err("the final partial line to '.produce/%s' is lost: %s",
			 topic_name(h->n), strerror(-ret));
	for (i = 0; i < ph->nt; i++) {
		n = ph->t[i].n;
		lock = fs_tail_lock(registry_ino(fs.reg, n));
		pthread_mutex_lock(lock);
		n->fs->dio_writers--;
		pthread_mutex_unlock(lock);
		free(ph->t[i].buf);
		registry_part_put(fs.reg, n);
		registry_unpin(fs.reg, n);
	}
	free(ph->t);
	free(ph->slot);
	free(ph->line);
	free(ph);
	h->produce = NULL;
	atomic_fetch_sub(&fs.open_handles, 1);
	registry_unpin(fs.reg, h->n);
	fs_handle_free(h);
	return late;
}
