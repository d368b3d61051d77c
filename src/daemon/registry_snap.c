/*
 * registry_snap.c - consistent snapshots of every partition: the cut
 * lock that every append of the daemon passes through, taking a
 * snapshot (the cut, made durable, stored in snapstore.h's files) and
 * releasing it, and the retention holds that keep what a snapshot shows
 * on disk (shared with the Kafka exporter's hold).
 *
 * The cut: an append is visible once partition_appendv returns, and the
 * daemon's appends run inside the shared side of reg->cut; a snapshot
 * reads every partition's start and end inside the exclusive side.  So
 * every append is wholly before or wholly after the cut, and one that
 * completed before another began is never missing from a snapshot that
 * has the other.  Idle partitions cannot be appended to without the
 * shared side either; their ends come from what the registry kept when
 * they closed (or from their log, opened then, after a crash).
 *
 * A partition deleted while a snapshot needs it stays readable in the
 * snapshot: its node is kept pinned (reg->held) and its directory stays
 * in .trash until the last snapshot needing it is released.  At mount,
 * before .trash is emptied, such directories are moved to
 * DATA_DIR/.snapshots/held/<ino> (durably), then served from .trash
 * again; a held directory no snapshot needs is deleted then, so a crash
 * between a release and the delete leaks nothing for good.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "registry_int.h"
#include "snapstore.h"

int registry_appendv(struct registry *reg, struct partition *p,
		     const struct iovec *iov, int iovcnt, uint32_t count,
		     int64_t now_ms, uint64_t expect_end,
		     uint64_t *first_offset, uint64_t *byte_pos)
{
	int ret;

	pthread_rwlock_rdlock(&reg->cut);
	ret = partition_appendv(p, iov, iovcnt, count, now_ms, expect_end,
				first_offset, byte_pos);
	pthread_rwlock_unlock(&reg->cut);
	return ret;
}

/* ---- retention holds ------------------------------------------------- */

uint64_t node_hold(struct node *n)
{
	uint64_t low = 0;
	size_t i;

	pthread_mutex_lock(&n->meta_lock);
	for (i = 0; i < sizeof(n->holds) / sizeof(n->holds[0]); i++)
		if (n->holds[i] && (!low || n->holds[i] < low))
			low = n->holds[i];
	pthread_mutex_unlock(&n->meta_lock);
	return low ? low - 1 : PARTITION_NO_HOLD;
}

void node_set_hold(struct node *n, enum registry_holder who, uint64_t offset)
{
	pthread_mutex_lock(&n->meta_lock);
	n->holds[who] = offset == PARTITION_NO_HOLD ? 0 : offset + 1;
	pthread_mutex_unlock(&n->meta_lock);
}

void registry_hold_retention(struct registry *reg, struct node *n,
			     enum registry_holder who, uint64_t offset)
{
	node_set_hold(n, who, offset);
	/* n->part is stable under reg->lock; a log that opens later gets
	 * the hold in part_open. */
	pthread_rwlock_rdlock(&reg->lock);
	if (n->part)
		partition_hold_retention(n->part, node_hold(n));
	pthread_rwlock_unlock(&reg->lock);
}

/* Hold n at what the snapshots still need of it (none: lifted). */
static void snap_rehold(struct registry *reg, struct node *n)
{
	uint64_t off, sb, eb;

	registry_hold_retention(reg, n, REGISTRY_HOLD_SNAPSHOT,
				snapstore_needs(reg->snaps,
						registry_st_ino(reg, n), &off,
						&sb, &eb)
					? off
					: PARTITION_NO_HOLD);
}

/* snap_rehold for every loaded partition. */
static void snap_rehold_all(struct registry *reg)
{
	struct node **all = NULL, **grown, *t, *p;
	size_t n = 0, cap = 0, i;

	pthread_rwlock_rdlock(&reg->lock);
	for (t = reg->root.children; t; t = t->next)
		for (p = t->children; p; p = p->next) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				grown = realloc(all, cap * sizeof(*all));
				if (!grown)
					break;
				all = grown;
			}
			if (registry_pin(reg, p) == 0)
				all[n++] = p;
		}
	pthread_rwlock_unlock(&reg->lock);
	for (i = 0; i < n; i++) {
		snap_rehold(reg, all[i]);
		registry_unpin(reg, all[i]);
	}
	free(all);
}

uint64_t registry_snap_pinned(struct registry *reg, struct node *n)
{
	uint64_t off, sb, eb;

	return snapstore_needs(reg->snaps, registry_st_ino(reg, n), &off, &sb,
			       &eb)
		       ? eb - sb
		       : 0;
}

int registry_snap_check_drop(struct registry *reg, struct node *n,
			     uint64_t byte)
{
	uint64_t off, sb, eb;

	if (!snapstore_needs(reg->snaps, registry_st_ino(reg, n), &off, &sb,
			     &eb) ||
	    byte <= sb)
		return 0;
	diag_info("refused dropping the head of '%s/%s' below byte %llu: a "
		  "snapshot needs it from byte %llu (EBUSY)",
		  n->parent ? n->parent->name : "?", n->name,
		  (unsigned long long)byte, (unsigned long long)sb);
	return -EBUSY;
}

/* ---- deleted partitions kept for snapshots --------------------------- */

#define HELD_DIR "held"

static int needed(struct registry *reg, uint64_t ino)
{
	uint64_t off, sb, eb;

	return ino && snapstore_needs(reg->snaps, ino, &off, &sb, &eb);
}

/* Add n (one pin of it ours) to the held partitions: 0 or -ENOMEM. */
static int held_add(struct registry *reg, struct node *n)
{
	struct node **grown;
	int kept = 0;

	pthread_rwlock_wrlock(&reg->lock);
	if (reg->nheld == reg->held_cap) {
		grown = realloc(reg->held,
				(reg->held_cap ? 2 * reg->held_cap : 8) *
					sizeof(*grown));
		if (grown) {
			reg->held = grown;
			reg->held_cap = reg->held_cap ? 2 * reg->held_cap : 8;
		}
	}
	if (reg->nheld < reg->held_cap) {
		reg->held[reg->nheld++] = n;
		kept = 1;
	}
	pthread_rwlock_unlock(&reg->lock);
	return kept ? 0 : -ENOMEM;
}

void snap_removed(struct registry *reg, struct node *n)
{
	if (n->kind != NODE_PARTITION ||
	    !needed(reg, registry_st_ino(reg, n)) || registry_pin(reg, n) < 0)
		return;
	if (held_add(reg, n) < 0) {
		registry_unpin(reg, n);
		diag_err("cannot keep deleted partition '%s' for its snapshots: "
			 "out of memory",
			 n->name);
		return;
	}
	diag_info("deleted partition '%s' kept until the snapshots that "
		  "show it are released",
		  n->name);
}

struct node *snap_held_find(struct registry *reg, uint64_t ino)
{
	size_t i;

	for (i = 0; i < reg->nheld; i++)
		if (registry_st_ino(reg, reg->held[i]) == ino)
			return reg->held[i];
	return NULL;
}

/* Let the held partitions no snapshot needs any more go: the last pin
 * deletes their directories from .trash. */
static void snap_release_held(struct registry *reg)
{
	struct node **gone;
	size_t i, k = 0, n = 0;

	pthread_rwlock_wrlock(&reg->lock);
	gone = reg->nheld ? malloc(reg->nheld * sizeof(*gone)) : NULL;
	for (i = 0; gone && i < reg->nheld; i++) {
		if (needed(reg, registry_st_ino(reg, reg->held[i])))
			reg->held[k++] = reg->held[i];
		else
			gone[n++] = reg->held[i];
	}
	if (gone)
		reg->nheld = k;
	pthread_rwlock_unlock(&reg->lock);
	for (i = 0; i < n; i++) {
		diag_info("deleted partition '%s' released with the last "
			  "snapshot showing it",
			  gone[i]->name);
		registry_unpin(reg, gone[i]);
	}
	free(gone);
}

/* DATA_DIR/.snapshots/held, made if make. */
static int held_dir(struct registry *reg, int make)
{
	int sfd = io_opendirat(reg->rootfd, SNAPSTORE_DIR), fd;

	if (sfd < 0)
		return sfd;
	fd = make ? io_mkdir_durable(sfd, HELD_DIR, 0700)
		  : io_opendirat(sfd, HELD_DIR);
	io_close(sfd);
	return fd;
}

/* The stored inode number of the partition directory dfd/name (0 if it
 * has none: a topic's directory). */
static uint64_t dir_ino(int dfd, const char *name)
{
	struct node tmp;
	int fd = io_opendirat(dfd, name);

	memset(&tmp, 0, sizeof(tmp));
	if (fd < 0)
		return 0;
	meta_read(&tmp, fd, LAYOUT_PART_META);
	io_close(fd);
	return tmp.meta.ino;
}

/* Move what a snapshot needs out of .trash into .snapshots/held/<ino>,
 * durably, before .trash is emptied. */
static void rescue_trash(struct registry *reg)
{
	char to[32];
	struct dirent *de;
	int tfd, hfd = -1;
	uint64_t ino;
	DIR *dir;

	tfd = io_opendirat(reg->rootfd, LAYOUT_TRASH_DIR);
	if (tfd < 0)
		return;
	if (io_opendir_stream(reg->rootfd, LAYOUT_TRASH_DIR, &dir) < 0) {
		io_close(tfd);
		return;
	}
	while (io_readdir(dir, &de) > 0) {
		if (de->d_name[0] == '.' ||
		    !needed(reg, ino = dir_ino(tfd, de->d_name)))
			continue;
		if (hfd < 0 && (hfd = held_dir(reg, 1)) < 0)
			break;
		snprintf(to, sizeof(to), "%" PRIu64, ino);
		if (io_renameat(tfd, de->d_name, hfd, to) == 0) {
			io_fsync_dir(hfd);
			io_fsync_dir(tfd);
		} else {
			diag_err("cannot keep deleted partition %" PRIu64
				 " for its snapshots: it is lost",
				 ino);
		}
	}
	io_closedir(dir);
	if (hfd >= 0)
		io_close(hfd);
	io_close(tfd);
}

/* Serve held/<name> again from .trash as a held partition. */
static int load_held(struct registry *reg, int hfd, const char *name)
{
	struct node *n;
	int fd;

	n = node_new(reg, NODE_PARTITION, name);
	if (!n)
		return -ENOMEM;
	n->dirfd = -1;
	n->removed = 1;
	snprintf(n->trash, sizeof(n->trash), "h%u",
		 atomic_fetch_add(&reg->trash_seq, 1));
	if (io_renameat(hfd, name, reg->trashfd, n->trash) < 0) {
		node_free(reg, n);
		return -EIO;
	}
	io_fsync_dir(reg->trashfd);
	io_fsync_dir(hfd);
	fd = io_opendirat(reg->trashfd, n->trash);
	if (fd >= 0) {
		meta_read(n, fd, LAYOUT_PART_META);
		io_close(fd);
	}
	/* Its one reference is the held pin. */
	if (held_add(reg, n) < 0) {
		node_free(reg, n);
		return -ENOMEM;
	}
	return 0;
}

/* ---- taking and releasing -------------------------------------------- */

/* The partitions of a cut, pinned, and what it recorded of each. */
struct cut {
	struct node **nodes;
	struct snap_part *parts;
	size_t n, cap;
};

static int cut_add(struct registry *reg, struct cut *c, struct node *n)
{
	void *grown;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		grown = realloc(c->nodes, c->cap * sizeof(*c->nodes));
		if (!grown)
			return -ENOMEM;
		c->nodes = grown;
		grown = realloc(c->parts, c->cap * sizeof(*c->parts));
		if (!grown)
			return -ENOMEM;
		c->parts = grown;
	}
	if (registry_pin(reg, n) == 0)
		c->nodes[c->n++] = n;
	return 0;
}

/* Record c's partition i as it is now (appends stopped by the cut), and
 * hold its retention there at once: maintenance may run before the
 * snapshot is stored. */
static int cut_record(struct registry *reg, struct cut *c, size_t i)
{
	struct snap_part *sp = &c->parts[i];
	struct node *n = c->nodes[i];
	struct partition_info info;
	uint64_t held;
	int ret = part_info(reg, n, &info, 1);

	if (ret < 0)
		return ret;
	memset(sp, 0, sizeof(*sp));
	sp->ino = registry_st_ino(reg, n);
	sp->start_byte = info.start_byte;
	sp->start_offset = info.start_offset;
	sp->end_byte = info.end_byte;
	pthread_rwlock_rdlock(&reg->lock); /* names */
	snprintf(sp->topic, sizeof(sp->topic), "%s", n->parent->name);
	snprintf(sp->part, sizeof(sp->part), "%s", n->name);
	pthread_rwlock_unlock(&reg->lock);
	if (sp->end_byte == sp->start_byte)
		return 0; /* nothing to keep */
	pthread_mutex_lock(&n->meta_lock);
	held = n->holds[REGISTRY_HOLD_SNAPSHOT];
	pthread_mutex_unlock(&n->meta_lock);
	if (!held || held > sp->start_offset + 1)
		registry_hold_retention(reg, n, REGISTRY_HOLD_SNAPSHOT,
					sp->start_offset);
	return 0;
}

/* Making a cut durable: threads taking c's partitions in turn. */
struct cut_flush {
	struct registry *reg;
	struct cut *c;
	atomic_size_t next;
	atomic_int err;
};

static void *cut_flush_one(void *arg)
{
	struct cut_flush *f = arg;
	struct partition_info info;
	struct node *n;
	size_t i;
	int ret;

	while ((i = atomic_fetch_add(&f->next, 1)) < f->c->n &&
	       !atomic_load(&f->err)) {
		n = f->c->nodes[i];
		if (registry_part_peek(f->reg, n) < 0)
			continue; /* idle: flushed when it closed */
		partition_get_info(n->part, &info);
		ret = info.flushed_byte < f->c->parts[i].end_byte
			      ? partition_sync(n->part)
			      : 0;
		registry_part_put(f->reg, n);
		if (ret < 0)
			atomic_store(&f->err, ret);
	}
	return NULL;
}

/* Make c's partitions durable up to the cut: the open logs with appends
 * not yet flushed.  One syncfs of the data directory's filesystem first
 * writes back and commits them all at once; each partition's own sync
 * then finds little or nothing left to wait for, and reports its own
 * files' write-back errors (a syncfs reports an error only to the file
 * it was called through, and not whose it was).  Syncs in flight
 * together share a syncfs too (partition_sync), so a few threads run
 * them. */
#define CUT_FLUSH_THREADS 8
static int cut_flush(struct registry *reg, struct cut *c)
{
	struct cut_flush f = {reg, c, 0, 0};
	pthread_t th[CUT_FLUSH_THREADS];
	int i, started = 0;

	if (c->n > 1)
		io_syncfs(reg->rootfd); /* errors: the syncs below report */
	for (i = 0; i < CUT_FLUSH_THREADS && (size_t)i < c->n / 4; i++)
		if (pthread_create(&th[started], NULL, cut_flush_one, &f) == 0)
			started++;
	cut_flush_one(&f);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&f.err);
}

int registry_snap_create(struct registry *reg, const char *name)
{
	struct cut c = {NULL, NULL, 0, 0};
	char shown[DIAG_PRINTABLE_MAX];
	int64_t created, took;
	struct node *t, *p;
	size_t i;
	size_t nparts;
	int ret = snapstore_check_name(name);

	if (ret < 0) {
		/* A user's name: control bytes must not reach the log. */
		diag_info("refused snapshot name '%s': %s",
			  diag_printable(name, shown, sizeof(shown)),
			  strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&reg->snap_lock);
	if (snapstore_info(reg->snaps, name, &created, &nparts) == 0) {
		diag_info("snapshot '%s' exists (EEXIST)", name);
		ret = -EEXIST;
		goto out;
	}
	took = registry_now_ms();
	pthread_rwlock_wrlock(&reg->cut);
	created = registry_now_ms();
	pthread_rwlock_rdlock(&reg->lock);
	for (t = reg->root.children; t && ret == 0; t = t->next)
		for (p = t->children; p && ret == 0; p = p->next)
			if (!p->removed)
				ret = cut_add(reg, &c, p);
	pthread_rwlock_unlock(&reg->lock);
	for (i = 0; i < c.n && ret == 0; i++)
		ret = cut_record(reg, &c, i);
	pthread_rwlock_unlock(&reg->cut);
	if (ret == 0)
		ret = cut_flush(reg, &c);
	if (ret == 0)
		ret = snapstore_create(reg->snaps, name, created, c.parts, c.n);
	if (ret == 0)
		diag_info("snapshot '%s' taken: %zu partitions in %lld ms",
			  name, c.n, (long long)(registry_now_ms() - took));
	else
		diag_err("cannot take snapshot '%s': %s", name,
			 strerror(-ret));
	for (i = 0; i < c.n; i++) {
		if (ret < 0)
			snap_rehold(reg, c.nodes[i]); /* the holds it took */
		registry_unpin(reg, c.nodes[i]);
	}
out:
	pthread_mutex_unlock(&reg->snap_lock);
	free(c.nodes);
	free(c.parts);
	return ret;
}

int registry_snap_remove(struct registry *reg, const char *name)
{
	char shown[DIAG_PRINTABLE_MAX];
	int ret;

	pthread_mutex_lock(&reg->snap_lock);
	ret = snapstore_remove(reg->snaps, name);
	pthread_mutex_unlock(&reg->snap_lock);
	if (ret == -ENOENT) {
		diag_info("no snapshot '%s' to release (ENOENT)",
			  diag_printable(name, shown, sizeof(shown)));
		return ret;
	}
	if (ret < 0) {
		diag_err("cannot release snapshot '%s': %s", name,
			 strerror(-ret));
		return ret;
	}
	diag_info("snapshot '%s' released", name);
	snap_rehold_all(reg);
	snap_release_held(reg);
	return 0;
}

struct snapstore *registry_snaps(struct registry *reg)
{
	return reg->snaps;
}

void snap_init(struct registry *reg)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&reg->cut, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&reg->snap_lock, NULL);
}

int snap_open(struct registry *reg)
{
	int ret = snapstore_open(reg->rootfd, 0, &reg->snaps);

	if (ret < 0) {
		diag_err("cannot open '%s/" SNAPSTORE_DIR "': %s", reg->path,
			 strerror(-ret));
		return ret;
	}
	rescue_trash(reg);
	return 0;
}

int snap_load(struct registry *reg)
{
	struct dirent *de;
	int hfd, ret = 0;
	uint64_t ino;
	char *end;
	DIR *dir;

	hfd = held_dir(reg, 0);
	if (hfd >= 0 && io_opendir_stream(hfd, ".", &dir) == 0) {
		while (ret != -ENOMEM && io_readdir(dir, &de) > 0) {
			if (de->d_name[0] == '.')
				continue;
			ino = strtoull(de->d_name, &end, 10);
			if (*end == '\0' && needed(reg, ino)) {
				ret = load_held(reg, hfd, de->d_name);
				continue;
			}
			/* Released while no daemon could delete it. */
			if (io_remove_tree(hfd, de->d_name) == 0)
				diag_info("deleted partition %s held for "
					  "snapshots removed",
					  de->d_name);
		}
		io_closedir(dir);
	}
	if (hfd >= 0)
		io_close(hfd);
	snap_rehold_all(reg);
	return ret == -ENOMEM ? ret : 0;
}

void snap_close(struct registry *reg)
{
	struct node *parent;
	size_t i;

	/* Their directories stay in .trash: the next mount keeps them.  A
	 * partition deleted in this mount pins its topic (a deleted topic
	 * then goes with that pin). */
	for (i = 0; i < reg->nheld; i++) {
		parent = reg->held[i]->parent;
		part_close_now(reg, reg->held[i], 1);
		node_free(reg, reg->held[i]);
		if (parent)
			registry_unpin(reg, parent);
	}
	free(reg->held);
	reg->held = NULL;
	reg->nheld = 0;
}
