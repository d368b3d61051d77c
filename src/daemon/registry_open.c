/*
 * registry_open.c - opening the data directory, and closing it.
 *
 * registry_open makes DATA_DIR if it is missing, lets layout.h check its
 * format (a foreign directory is refused untouched), take the lock and
 * upgrade an older format, empties .trash of what a crash left there,
 * then loads every topic and partition name, with their configuration
 * overrides and mode, owner and times (no partition's log is opened:
 * that waits for its first use, and so does recovery after a crash),
 * and gives any without a stored inode number (or sharing one) a number
 * of its own.  After a clean unmount a topic's partitions come from the
 * mount summary (layout.h) when its directory and every partition.meta
 * are as the summary recorded them; otherwise the topic is listed and
 * each partition.meta read.  A topic or partition that cannot be opened
 * is reported and left out: the rest of the data directory still
 * mounts.  registry_close flushes and closes every open partition and,
 * when every flush worked, writes the summary and then the clean mark
 * naming it (layout.h), which lets the next mount load from the summary
 * and serve stat from partition.state; then it frees the tree.  The
 * caller stops the maintenance thread (maint.h) first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "groupstore.h"
#include "snapstore.h"
#include "io.h"
#include "layout.h"
#include "registry.h"
#include "registry_int.h"

/* A partition's node: its mode, owner, times and inode number.  Its
 * log stays closed until first used (registry_part.c). */
static int open_groups(struct registry *reg);
static int load_partition(struct registry *reg, struct node *t,
			  const char *name)
{
	char meta[REGISTRY_NAME_MAX + sizeof("/" LAYOUT_PART_META)];
	struct node *n;

	n = node_new(reg, NODE_PARTITION, name);
	if (!n)
		return -ENOMEM;
	n->parent = t;
	/* Through the topic's descriptor: name was listed as a directory
	 * (not a symlink), and the file is opened O_NOFOLLOW.  One small
	 * read per partition and no directory descriptor: the mount's cost
	 * with 100,000 partitions.  Its overrides (partition.conf) are read
	 * when first needed (registry_config.c), and max_message is set
	 * when its log opens. */
	snprintf(meta, sizeof(meta), "%s/" LAYOUT_PART_META, name);
	meta_read(n, t->dirfd, meta);
	child_add(t, n);
	t->refs++; /* the partition pins its topic */
	return 0;
}

/* Call fn for every entry of directory fd (but . and ..). */
static int scan_dir(int fd, int (*fn)(void *arg, const char *name, int isdir),
		    void *arg)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int ret, isdir;

	ret = io_opendir_stream(fd, ".", &dir);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(dir, &de)) > 0) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/* d_type where the filesystem gives it: no stat per entry. */
		if (de->d_type != DT_UNKNOWN)
			isdir = de->d_type == DT_DIR;
		else
			isdir = io_fstatat(fd, de->d_name, &st) == 0 &&
				S_ISDIR(st.st_mode);
		ret = fn(arg, de->d_name, isdir);
		if (ret)
			break;
	}
	io_closedir(dir);
	return ret;
}

struct load_ctx {
	struct registry *reg;
	struct node *topic;
	struct layout_summary *summary; /* NULL: none to trust */
	size_t summarized;		 /* topics loaded from it */
	size_t listed;			 /* topics listed and read */
};

/* ---- the mount summary (layout.h) --------------------------------------- */

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

/* partition.meta's fields of a node, as the summary keeps them; and
 * back. */
static void meta_to_summary(const struct node_meta *m,
			    struct layout_node_meta *out)
{
	out->mode = m->mode & 07777;
	out->uid = m->uid;
	out->gid = m->gid;
	out->atime_ns = ts_ns(&m->atime);
	out->mtime_ns = ts_ns(&m->mtime);
	out->ctime_ns = ts_ns(&m->ctime);
	out->mtime_end = m->mtime_end;
	out->append_only = m->append_only;
	out->ino = m->ino;
}

static void meta_from_summary(const struct layout_node_meta *m,
			      struct node_meta *out)
{
	out->mode = m->mode & 07777;
	out->uid = m->uid;
	out->gid = m->gid;
	out->atime = ns_ts(m->atime_ns);
	out->mtime = ns_ts(m->mtime_ns);
	out->ctime = ns_ts(m->ctime_ns);
	out->mtime_end = m->mtime_end;
	out->append_only = m->append_only;
	out->ino = m->ino < LAYOUT_INO_LIMIT ? m->ino : 0;
}

/* The stamp of partition.meta of partition name in topic directory
 * dirfd: 0 or -errno. */
static int part_meta_stamp(int dirfd, const char *name, struct layout_stamp *st)
{
	char path[REGISTRY_NAME_MAX + sizeof("/" LAYOUT_PART_META)];
	struct stat sb;
	int ret;

	if (snprintf(path, sizeof(path), "%s/" LAYOUT_PART_META, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	ret = io_fstatat(dirfd, path, &sb);
	if (ret == 0)
		layout_stamp_of(&sb, st);
	return ret;
}

/* Whether what the summary says of stamp still holds: the file or
 * directory is unchanged, and was unchanged already a clock tick before
 * the summary was written. */
static int stamp_holds(const struct layout_summary *sum,
		       const struct layout_stamp *recorded,
		       const struct layout_stamp *now)
{
	return layout_stamp_same(recorded, now) &&
	       layout_summary_stamp_older(sum, recorded);
}

/* Load topic t's partitions from the summary, if it says what listing
 * the topic would find: its directory (every partition added, removed
 * or renamed changes it) and each partition.meta as recorded.  1 if
 * loaded, 0 if t must be listed instead, -ENOMEM. */
static int topic_from_summary(struct load_ctx *ctx, struct node *t)
{
	const struct layout_summary_topic *st;
	struct layout_summary_part sp;
	struct layout_stamp now;
	struct stat sb;
	struct node *n;
	size_t pos;
	uint32_t i;

	st = layout_summary_find(ctx->summary, t->name);
	if (!st || io_fstat(t->dirfd, &sb) < 0)
		return 0;
	layout_stamp_of(&sb, &now);
	if (!stamp_holds(ctx->summary, &st->dir, &now))
		return 0;
	for (pos = st->first, i = 0; i < st->nparts; i++) {
		layout_summary_part_next(ctx->summary, &pos, &sp);
		if (registry_check_name(sp.name, 0) < 0 ||
		    part_meta_stamp(t->dirfd, sp.name, &now) < 0 ||
		    !stamp_holds(ctx->summary, &sp.meta_file, &now))
			return 0;
	}
	for (pos = st->first, i = 0; i < st->nparts; i++) {
		layout_summary_part_next(ctx->summary, &pos, &sp);
		n = node_new(ctx->reg, NODE_PARTITION, sp.name);
		if (!n)
			return -ENOMEM;
		n->parent = t;
		meta_from_summary(&sp.meta, &n->meta);
		n->idle_due = sp.due_ms;
		idle_hint_lower(ctx->reg, sp.due_ms);
		n->due_unknown = 0;
		child_add(t, n);
		t->refs++; /* the partition pins its topic */
	}
	return 1;
}

/* Load the summary the clean mark vouches for (crc).  NULL when there
 * is none to trust (a refusal is logged). */
static struct layout_summary *summary_take(struct registry *reg, uint32_t crc)
{
	struct layout_summary *sum;
	int ret;

	if (!crc)
		return NULL;
	sum = malloc(sizeof(*sum));
	if (!sum)
		return NULL;
	ret = layout_summary_load(reg->rootfd, crc, sum);
	if (ret == 0)
		return sum;
	free(sum);
	if (ret == -EINVAL || ret == -ESTALE || ret == -ENOENT)
		diag_warn("'%s/" LAYOUT_SUMMARY_FILE "' is %s: listing every "
			  "topic",
			  reg->path,
			  ret == -EINVAL	? "damaged"
			  : ret == -ESTALE ? "not the one the clean mark names"
					   : "missing");
	else
		diag_warn("cannot read '%s/" LAYOUT_SUMMARY_FILE "': %s: "
			  "listing every topic",
			  reg->path, strerror(-ret));
	return NULL;
}

/* Write the summary of every topic and partition (after every partition
 * closed): the CRC the clean mark names, or 0 if it could not be
 * written (logged; the next mount lists every topic).  A topic whose
 * directory or a partition.meta cannot be stat'ed is left out: the next
 * mount lists it. */
static uint32_t summary_write(struct registry *reg)
{
	struct layout_summary_writer w;
	struct layout_node_meta lm;
	struct layout_stamp dir, *metas = NULL, *grown;
	struct node *t, *p;
	struct stat sb;
	size_t cap = 0, i;
	uint32_t crc = 0;
	int ret;

	layout_summary_writer_init(&w);
	for (t = reg->root.children; t; t = t->next) {
		if (io_fstat(t->dirfd, &sb) < 0)
			continue;
		layout_stamp_of(&sb, &dir);
		if (t->nchildren > cap) {
			grown = realloc(metas, t->nchildren * sizeof(*metas));
			if (!grown) {
				w.err = -ENOMEM;
				break;
			}
			metas = grown;
			cap = t->nchildren;
		}
		for (p = t->children, i = 0; p; p = p->next, i++)
			if (p->removed ||
			    part_meta_stamp(t->dirfd, p->name, &metas[i]) < 0)
				break;
		if (p)
			continue;
		layout_summary_add_topic(&w, t->name, &dir, t->nchildren);
		for (p = t->children, i = 0; p; p = p->next, i++) {
			meta_to_summary(&p->meta, &lm);
			layout_summary_add_part(&w, p->name, &metas[i], &lm,
						p->idle_due);
		}
	}
	free(metas);
	ret = layout_summary_write(reg->rootfd, &w, &crc);
	if (ret < 0) {
		diag_warn("cannot write '%s/" LAYOUT_SUMMARY_FILE "': %s (the "
			  "next mount lists every topic)",
			  reg->path, strerror(-ret));
		return 0;
	}
	return crc;
}

static int load_partition_entry(void *arg, const char *name, int isdir)
{
	struct load_ctx *ctx = arg;

	if (!isdir || registry_check_name(name, 0) < 0)
		return 0;
	/* A partition that cannot be opened is reported and left out: the
	 * rest of the data directory still mounts. */
	if (load_partition(ctx->reg, ctx->topic, name) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

static int load_topic_entry(void *arg, const char *name, int isdir)
{
	struct load_ctx *ctx = arg;
	struct registry *reg = ctx->reg;
	struct node *t;
	int ret;

	if (!isdir || registry_check_name(name, 1) < 0)
		return 0;
	t = node_new(reg, NODE_TOPIC, name);
	if (!t)
		return -ENOMEM;
	t->dirfd = io_opendirat(reg->rootfd, name);
	if (t->dirfd < 0) {
		diag_err("cannot open topic '%s': %s", name,
			 strerror(-t->dirfd));
		node_free(reg, t);
		return 0;
	}
	conf_read(&t->over, t->dirfd, LAYOUT_TOPIC_CONF, name);
	meta_read(t, t->dirfd, LAYOUT_TOPIC_META);
	produce_read(t);
	child_add(&reg->root, t);
	ctx->topic = t;
	ret = ctx->summary ? topic_from_summary(ctx, t) : 0;
	if (ret) {
		ctx->summarized += ret > 0;
		return ret < 0 ? ret : 0;
	}
	ctx->listed++;
	ret = scan_dir(t->dirfd, load_partition_entry, ctx);
	if (ret < 0 && ret != -ENOMEM) {
		/* As for a partition that cannot be opened: reported, and
		 * the rest of the data directory still mounts. */
		diag_err("cannot list topic '%s': %s: partitions not listed "
			 "yet are not served",
			 name, strerror(-ret));
		ret = 0;
	}
	return ret;
}

static int ino_cmp(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;

	return x->meta.ino < y->meta.ino ? -1 : x->meta.ino > y->meta.ino;
}

/* One of the nodes sharing a stored inode number, with what decides
 * which keeps it. */
struct ino_claim {
	struct node *n;
	struct timespec birth; /* of its directory; unknown: the latest */
};

/* The order of claims on one number: the directory created first (a
 * copy is always made after its original, and keeps no birth time of
 * the original's, whatever cp -a or rsync -a preserve), then by topic
 * and name in byte order (a filesystem without birth times, or two
 * directories born in the same instant). */
static int claim_cmp(const void *a, const void *b)
{
	const struct ino_claim *x = a, *y = b;
	const char *xt, *yt;
	int c;

	if (x->birth.tv_sec != y->birth.tv_sec)
		return x->birth.tv_sec < y->birth.tv_sec ? -1 : 1;
	if (x->birth.tv_nsec != y->birth.tv_nsec)
		return x->birth.tv_nsec < y->birth.tv_nsec ? -1 : 1;
	xt = x->n->kind == NODE_PARTITION ? x->n->parent->name : "";
	yt = y->n->kind == NODE_PARTITION ? y->n->parent->name : "";
	c = strcmp(xt, yt);
	return c ? c : strcmp(x->n->name, y->n->name);
}

/* Order the k nodes of all[] that share one stored number by
 * claim_cmp, so the first keeps it and the others are renumbered in a
 * stable order.  Left as they are without memory for it. */
static void ino_claims_order(struct registry *reg, struct node **all,
			     size_t k)
{
	struct ino_claim *c = calloc(k, sizeof(*c));
	size_t i;
	int dfd;

	if (!c)
		return;
	for (i = 0; i < k; i++) {
		c[i].n = all[i];
		dfd = all[i]->kind == NODE_PARTITION ? all[i]->parent->dirfd
						     : reg->rootfd;
		if (io_birth(dfd, all[i]->name, &c[i].birth) < 0) {
			c[i].birth.tv_sec = INT64_MAX;
			c[i].birth.tv_nsec = 0;
		}
	}
	qsort(c, k, sizeof(*c), claim_cmp);
	for (i = 0; i < k; i++)
		all[i] = c[i].n;
	free(c);
}

/* Give every loaded topic and partition an inode number of its own:
 * the counter resumes above both fluxfs.meta's bound and the highest
 * stored number, and a node without one (a data directory from before
 * stored numbers) or sharing one (a partition directory copied inside
 * the data directory by hand) gets a fresh one, stored at once.  Of
 * nodes sharing a number, the one whose directory was created first
 * keeps it (claim_cmp). */
static int ino_assign(struct registry *reg)
{
	struct node **all, *t, *p;
	size_t count = 0, i, k, fixed = 0;
	uint64_t bound, max = 0, stored, prev = 0;
	int ret;

	ret = layout_datadir_ino_load(reg->rootfd, &bound);
	if (ret < 0) {
		diag_err("cannot read '%s/" LAYOUT_META_FILE "': %s", reg->path,
			 strerror(-ret));
		return ret;
	}
	for (t = reg->root.children; t; t = t->next)
		count += 1 + t->nchildren;
	all = calloc(count ? count : 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	count = 0;
	for (t = reg->root.children; t; t = t->next) {
		all[count++] = t;
		for (p = t->children; p; p = p->next)
			all[count++] = p;
	}
	qsort(all, count, sizeof(*all), ino_cmp);
	for (i = 0; i < count; i++)
		if (all[i]->meta.ino > max)
			max = all[i]->meta.ino;
	for (i = 0; i + 1 < count; i += k) {
		for (k = 1; i + k < count &&
			    all[i + k]->meta.ino == all[i]->meta.ino;
		     k++)
			;
		if (k > 1 && all[i]->meta.ino >= LAYOUT_INO_FIRST)
			ino_claims_order(reg, all + i, k);
	}
	reg->ino_bound = bound;
	reg->ino_next = bound > max ? bound : max + 1;
	if (reg->ino_next < LAYOUT_INO_FIRST)
		reg->ino_next = LAYOUT_INO_FIRST;
	for (i = 0; i < count; i++) {
		stored = all[i]->meta.ino;
		if (stored >= LAYOUT_INO_FIRST && stored != prev) {
			prev = stored; /* the first of a shared number keeps it */
			continue;
		}
		ret = registry_ino_alloc(reg, &all[i]->meta.ino);
		if (ret == 0)
			ret = node_meta_save(reg, all[i]);
		if (ret < 0) {
			diag_err("cannot store an inode number for '%s': %s",
				 all[i]->name, strerror(-ret));
			goto out;
		}
		fixed++;
	}
	if (fixed)
		diag_info("'%s': stored inode numbers for %zu topics and "
			  "partitions",
			  reg->path, fixed);
out:
	free(all);
	return ret;
}

/* Record the serving pid in the lock file. */
void registry_note_pid(struct registry *reg)
{
	layout_datadir_note_pid(reg->lockfd);
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX], *p;
	int ret;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ret = io_mkdirat(AT_FDCWD, buf, 0755);
		if (ret < 0 && ret != -EEXIST)
			return ret;
		*p = '/';
	}
	ret = io_mkdirat(AT_FDCWD, buf, 0700);
	return ret == -EEXIST ? 0 : ret;
}

/* Open, check, lock and load the data directory. */
int registry_open(const char *data_dir, const struct config *defaults,
		  const struct registry_hooks *hooks, struct registry **out)
{
	struct registry *reg;
	struct load_ctx ctx;
	char real[PATH_MAX];
	uint32_t summary_crc;
	int i;
	struct stat st;
	int ret, format;

	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return -ENOMEM;
	pthread_rwlock_init(&reg->lock, NULL);
	pthread_mutex_init(&reg->life, NULL);
	pthread_mutex_init(&reg->ino_lock, NULL);
	snap_init(reg);
	reg->rootfd = reg->trashfd = reg->lockfd = -1;
	reg->root.kind = NODE_ROOT;
	reg->root.dirfd = -1;
	reg->root.refs = 1;
	pthread_mutex_init(&reg->root.meta_lock, NULL);
	reg->defaults = *defaults;
	reg->hooks = *hooks;
	fdb_init(&reg->fdb, registry_default_fd_budget());
	for (i = 0; i < REGISTRY_OPEN_LOCKS; i++)
		pthread_mutex_init(&reg->open_locks[i], NULL);
	reg->uid = getuid();
	reg->gid = getgid();
	if (hooks->node_init) {
		ret = hooks->node_init(reg, &reg->root);
		if (ret < 0) {
			reg->hooks.node_release = NULL;
			goto out_free;
		}
	}

	ret = mkdir_p(data_dir);
	if (ret < 0) {
		diag_err("cannot create '%s': %s", data_dir, strerror(-ret));
		goto out_free;
	}
	if (!realpath(data_dir, real)) {
		ret = -errno;
		diag_err("cannot resolve '%s': %s", data_dir, strerror(-ret));
		goto out_free;
	}
	reg->path = strdup(real);
	reg->rootfd = io_opendirat(AT_FDCWD, real);
	if (!reg->path || reg->rootfd < 0) {
		ret = reg->path ? reg->rootfd : -ENOMEM;
		diag_err("cannot open '%s': %s", real, strerror(-ret));
		goto out_free;
	}
	if (io_fstat(reg->rootfd, &st) == 0) {
		reg->root.meta.mode = st.st_mode & 07777;
		reg->root.meta.uid = st.st_uid;
		reg->root.meta.gid = st.st_gid;
		reg->root.meta.atime = st.st_atim;
		reg->root.meta.mtime = st.st_mtim;
		reg->root.meta.ctime = st.st_ctim;
	}
	/* Format first: a foreign directory is refused untouched. */
	ret = layout_datadir_check(reg->rootfd, reg->path, &format);
	if (ret < 0)
		goto out_free;
	reg->lockfd = layout_datadir_lock(reg->rootfd, reg->path);
	if (reg->lockfd < 0) {
		ret = reg->lockfd;
		goto out_free;
	}
	ret = layout_datadir_upgrade(reg->rootfd, reg->path, format);
	if (ret < 0)
		goto out_free;
	ret = layout_datadir_clean_take(reg->rootfd, &summary_crc);
	if (ret < 0) {
		diag_err("cannot remove '%s/" LAYOUT_CLEAN_FILE "': %s", real,
			 strerror(-ret));
		goto out_free;
	}
	reg->was_clean = ret;
	/* The snapshots first: they keep deleted partitions they need. */
	ret = snap_open(reg);
	if (ret < 0)
		goto out_free;
	/* Partitions removed while open when the last daemon stopped. */
	ret = io_remove_tree(reg->rootfd, LAYOUT_TRASH_DIR);
	if (ret < 0 && ret != -ENOENT)
		diag_warn("cannot empty '%s/" LAYOUT_TRASH_DIR "': %s", real,
			  strerror(-ret));
	ret = io_mkdirat(reg->rootfd, LAYOUT_TRASH_DIR, 0700);
	if (ret == 0 || ret == -EEXIST)
		reg->trashfd = io_opendirat(reg->rootfd, LAYOUT_TRASH_DIR);
	if (reg->trashfd < 0) {
		ret = reg->trashfd;
		diag_err("cannot create '%s/" LAYOUT_TRASH_DIR "': %s", real,
			 strerror(-ret));
		goto out_free;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.reg = reg;
	ctx.summary = reg->was_clean ? summary_take(reg, summary_crc) : NULL;
	/* It describes the data directory only until this mount changes
	 * it (and only the clean mark naming it makes it trusted). */
	io_unlinkat(reg->rootfd, LAYOUT_SUMMARY_FILE, 0);
	ret = scan_dir(reg->rootfd, load_topic_entry, &ctx);
	if (ctx.summary) {
		diag_info("'%s': %zu topics loaded from the mount summary, %zu "
			  "listed",
			  real, ctx.summarized, ctx.listed);
		layout_summary_release(ctx.summary);
		free(ctx.summary);
	}
	if (ret < 0) {
		diag_err("cannot load '%s': %s", real, strerror(-ret));
		goto out_free;
	}
	ret = ino_assign(reg);
	if (ret < 0)
		goto out_free;
	ret = open_groups(reg);
	if (ret == 0)
		ret = snap_load(reg);
	if (ret < 0)
		goto out_free;
	reg->loaded = 1;
	*out = reg;
	return 0;

out_free:
	registry_close(reg);
	return ret;
}

/* Whether a partition with stored inode number ino is loaded (at open,
 * before anyone else sees the tree). */
static int partition_loaded(void *arg, uint64_t ino)
{
	struct registry *reg = arg;
	struct node *t, *p;

	for (t = reg->root.children; t; t = t->next)
		for (p = t->children; p; p = p->next)
			if (p->meta.ino == ino)
				return 1;
	return 0;
}

/* Load the consumer groups and drop the positions of partitions that
 * were deleted (their inode numbers are never handed out again). */
static int open_groups(struct registry *reg)
{
	int ret = groupstore_open(reg->rootfd, 0, &reg->groups);

	if (ret < 0) {
		diag_err("cannot open '%s/" GROUPSTORE_DIR "': %s", reg->path,
			 strerror(-ret));
		return ret;
	}
	ret = groupstore_prune(reg->groups, partition_loaded, reg);
	if (ret > 0)
		diag_info("dropped %d consumer group position%s of deleted "
			  "partitions",
			  ret, ret == 1 ? "" : "s");
	return 0;
}

/* The consumer groups' positions (groupstore.h). */
struct groupstore *registry_groups(struct registry *reg)
{
	return reg->groups;
}

/* Flush and close every partition: 0 or the first flush error. */
static int close_partitions(struct registry *reg)
{
	struct node *t, *p;
	int ret = 0, r;

	for (t = reg->root.children; t; t = t->next)
		for (p = t->children; p; p = p->next) {
			r = part_close_now(reg, p, 0);
			if (r < 0) {
				diag_err("cannot flush '%s/%s': %s", t->name,
					 p->name, strerror(-r));
				if (!ret)
					ret = r;
			}
		}
	return ret;
}

/* Flush and close everything; free the registry. */
int registry_close(struct registry *reg)
{
	struct node *t, *tn, *p, *pn;
	uint32_t summary_crc = 0;
	int ret, r, i;

	snap_close(reg); /* before the tree: they pin their topics */
	ret = close_partitions(reg);
	/* Removed nodes still looked up by the kernel are leaked on
	 * purpose: the process is about to exit.  Their logs are in .trash,
	 * emptied at the next mount, so the mark may still be left. */
	groupstore_close(reg->groups);
	snapstore_close(reg->snaps);
	if (reg->loaded && ret == 0) {
		summary_crc = summary_write(reg);
		r = layout_datadir_clean_mark(reg->rootfd, summary_crc);
		if (r < 0)
			diag_warn("cannot write '%s/" LAYOUT_CLEAN_FILE "': %s "
				  "(the next mount opens partitions to stat "
				  "them)",
				  reg->path, strerror(-r));
	}
	for (t = reg->root.children; t; t = tn) {
		tn = t->next;
		for (p = t->children; p; p = pn) {
			pn = p->next;
			node_free(reg, p);
		}
		node_free(reg, t);
	}
	if (reg->trashfd >= 0)
		io_close(reg->trashfd);
	if (reg->lockfd >= 0)
		io_close(reg->lockfd); /* releases the flock */
	if (reg->rootfd >= 0)
		io_close(reg->rootfd);
	if (reg->hooks.node_release)
		reg->hooks.node_release(reg, &reg->root);
	pthread_mutex_destroy(&reg->root.meta_lock);
	pthread_mutex_destroy(&reg->life);
	pthread_mutex_destroy(&reg->ino_lock);
	fdb_destroy(&reg->fdb);
	for (i = 0; i < REGISTRY_OPEN_LOCKS; i++)
		pthread_mutex_destroy(&reg->open_locks[i]);
	pthread_rwlock_destroy(&reg->lock);
	free(reg->path);
	free(reg);
	return ret;
}
