/*
 * registry.c - the namespace of topics and partitions over DATA_DIR.
 *
 * Every namespace change is a rename or removal of a directory below
 * DATA_DIR, made through io.h relative to directory descriptors, so a
 * symlink planted in the data directory is never followed.  A removed
 * partition (unlink, or replaced by a rename) is first renamed into
 * DATA_DIR/.trash, so handles still open on it keep working (Unix
 * semantics); it is closed and deleted when its last pin goes, and
 * whatever a crash left in .trash is deleted at the next mount.
 *
 * Mode, owner and times live in small files (topic.meta, partition.meta)
 * written with io_write_atomic, because the backing directories must stay
 * usable by the daemon whatever mode the user sets.  A partition's mtime
 * is the time set by utimens until the next append, then the time of the
 * last append (the engine's last_ts), so rsync -a keeps its times and
 * tail -f sees appends.
 *
 * Beside it (registry_int.h): registry_open.c opens and loads the data
 * directory, registry_config.c keeps the configuration layers and
 * registry_metrics.c gathers .metrics; the maintenance thread is maint.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "groupstore.h"
#include "io.h"
#include "layout.h"
#include "registry.h"
#include "registry_int.h"
#include "xattr.h"

/* ---- helpers ---------------------------------------------------------- */

/* Milliseconds since the epoch. */
int64_t registry_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec now_ts(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static int reserved_name(const char *name, int is_topic)
{
	static const char *const topic_files[] = {
		LAYOUT_TOPIC_CONF, LAYOUT_TOPIC_META,
		LAYOUT_TOPIC_CONF LAYOUT_TMP_SUFFIX,
		LAYOUT_TOPIC_META LAYOUT_TMP_SUFFIX, LAYOUT_TOPIC_PRODUCE,
		LAYOUT_TOPIC_PRODUCE LAYOUT_TMP_SUFFIX};
	size_t i;

	if (is_topic)
		return strcmp(name, LAYOUT_META_FILE) == 0 ||
		       strcmp(name, LAYOUT_META_FILE LAYOUT_TMP_SUFFIX) == 0;
	for (i = 0; i < sizeof(topic_files) / sizeof(topic_files[0]); i++)
		if (strcmp(name, topic_files[i]) == 0)
			return 1;
	return 0;
}

/* Check a topic (is_topic) or partition name against the naming rules
 * (fluxfs(8), SEMANTICS): 0, -ENAMETOOLONG past REGISTRY_NAME_MAX, or
 * -EINVAL. */
int registry_check_name(const char *name, int is_topic)
{
	/* statfs reports REGISTRY_NAME_MAX as NAME_MAX: past it a name is
	 * too long, as on every filesystem, not merely invalid. */
	int ret = layout_check_name(name, REGISTRY_NAME_MAX, is_topic);

	if (ret == 0 && reserved_name(name, is_topic))
		ret = -EINVAL;
	return ret;
}

/* Log a name refused through the mount: one line, the name made safe
 * to print (it may hold control bytes). */
static void log_refused_name(const char *what, const char *name, int err)
{
	char shown[DIAG_PRINTABLE_MAX];

	diag_info("refused %s name '%s': %s", what,
		  diag_printable(name, shown, sizeof(shown)), strerror(-err));
}

/* Inode number of a node. */
uint64_t registry_ino(struct registry *reg, const struct node *n)
{
	return n == &reg->root ? REGISTRY_INO_ROOT : (uint64_t)(uintptr_t)n;
}

/* The inode number stat shows. */
uint64_t registry_st_ino(struct registry *reg, struct node *n)
{
	uint64_t ino;

	if (n == &reg->root)
		return REGISTRY_INO_ROOT;
	pthread_mutex_lock(&n->meta_lock);
	ino = n->meta.ino;
	pthread_mutex_unlock(&n->meta_lock);
	return ino;
}

/* Numbers reserved by one write of fluxfs.meta: a crash skips at most
 * this many, and creating partitions rarely waits for that write. */
#define INO_RESERVE 1024

/* Hand out a fresh inode number. */
int registry_ino_alloc(struct registry *reg, uint64_t *ino)
{
	int ret = 0;

	pthread_mutex_lock(&reg->ino_lock);
	if (reg->ino_next >= LAYOUT_INO_LIMIT - INO_RESERVE) {
		ret = -ENOSPC;
		goto out;
	}
	if (reg->ino_next >= reg->ino_bound) {
		ret = layout_datadir_ino_store(reg->rootfd,
					       reg->ino_next + INO_RESERVE);
		if (ret < 0)
			goto out;
		reg->ino_bound = reg->ino_next + INO_RESERVE;
	}
	*ino = reg->ino_next++;
out:
	pthread_mutex_unlock(&reg->ino_lock);
	return ret;
}

/* Node of an inode number, NULL for the control files. */
struct node *registry_node(struct registry *reg, uint64_t ino)
{
	if (ino == REGISTRY_INO_ROOT)
		return &reg->root;
	if (ino < 16)
		return NULL;
	return (struct node *)(uintptr_t)ino;
}

struct node *node_new(struct registry *reg, enum node_kind kind,
		      const char *name)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->kind = kind;
	n->dirfd = -1;
	n->refs = 1;
	n->meta.mode = kind == NODE_PARTITION ? 0644 : 0755;
	n->meta.uid = reg->uid;
	n->meta.gid = reg->gid;
	n->meta.atime = n->meta.mtime = n->meta.ctime = now_ts();
	n->idle_due = INT64_MAX;
	n->due_unknown = kind == NODE_PARTITION; /* until it closes */
	if (kind == NODE_PARTITION)
		idle_hint_lower(reg, 0);
	pthread_mutex_init(&n->meta_lock, NULL);
	produce_conf_init(&n->produce);
	if (reg->hooks.node_init && reg->hooks.node_init(reg, n) < 0) {
		node_free(reg, n);
		return NULL;
	}
	return n;
}

void node_free(struct registry *reg, struct node *n)
{
	if (reg->hooks.node_release)
		reg->hooks.node_release(reg, n);
	if (n->dirfd >= 0)
		io_close(n->dirfd);
	pthread_mutex_destroy(&n->meta_lock);
	free(n->idle_info);
	free(n->name);
	free(n);
}

static struct node *child_find(struct node *dir, const char *name)
{
	struct node *c;

	for (c = dir->children; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

void child_add(struct node *dir, struct node *c)
{
	c->next = dir->children;
	dir->children = c;
	c->parent = dir;
	dir->nchildren++;
}

static void child_remove(struct node *dir, struct node *c)
{
	struct node **pp;

	for (pp = &dir->children; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			dir->nchildren--;
			c->next = NULL;
			return;
		}
	}
}

/* Directory descriptor holding node n's backing directory. */
static int node_parent_fd(struct registry *reg, struct node *n)
{
	return n->kind == NODE_TOPIC ? reg->rootfd : n->parent->dirfd;
}

/* ---- mode, owner and times --------------------------------------------- */

static int meta_write(struct node *n, int dirfd, const char *file)
{
	struct node_meta m;
	char buf[512];
	int len;

	pthread_mutex_lock(&n->meta_lock);
	m = n->meta;
	pthread_mutex_unlock(&n->meta_lock);
	len = snprintf(buf, sizeof(buf),
		       "mode=%04o\nuid=%u\ngid=%u\natime=%lld.%09ld\n"
		       "mtime=%lld.%09ld\nctime=%lld.%09ld\nmtime_end=%llu\n"
		       "append_only=%d\nino=%llu\n",
		       (unsigned)m.mode & 07777, (unsigned)m.uid,
		       (unsigned)m.gid, (long long)m.atime.tv_sec,
		       m.atime.tv_nsec, (long long)m.mtime.tv_sec,
		       m.mtime.tv_nsec, (long long)m.ctime.tv_sec,
		       m.ctime.tv_nsec, (unsigned long long)m.mtime_end,
		       m.append_only, (unsigned long long)m.ino);
	return io_write_atomic(dirfd, file, buf, (size_t)len);
}

/* Read a small file whole (see registry_int.h). */
int read_small(int dirfd, const char *file, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = io_openat(dirfd, file, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	n = io_pread_full(fd, buf, size - 1, 0);
	io_close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return (int)n;
}

static void parse_ts(const char *v, struct timespec *ts)
{
	long long s;
	long ns;

	if (sscanf(v, "%lld.%ld", &s, &ns) == 2) {
		ts->tv_sec = s;
		ts->tv_nsec = ns;
	}
}

/* Load mode/owner/times; a missing file keeps the defaults. */
void meta_read(struct node *n, int dirfd, const char *file)
{
	char buf[512], *line, *save = NULL, *eq;
	unsigned long long u;

	if (read_small(dirfd, file, buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq++ = '\0';
		u = strtoull(eq, NULL, !strcmp(line, "mode") ? 8 : 10);
		if (!strcmp(line, "mode"))
			n->meta.mode = (mode_t)(u & 07777);
		else if (!strcmp(line, "uid"))
			n->meta.uid = (uid_t)u;
		else if (!strcmp(line, "gid"))
			n->meta.gid = (gid_t)u;
		else if (!strcmp(line, "atime"))
			parse_ts(eq, &n->meta.atime);
		else if (!strcmp(line, "mtime"))
			parse_ts(eq, &n->meta.mtime);
		else if (!strcmp(line, "ctime"))
			parse_ts(eq, &n->meta.ctime);
		else if (!strcmp(line, "mtime_end"))
			n->meta.mtime_end = u;
		else if (!strcmp(line, "append_only"))
			n->meta.append_only = u != 0;
		else if (!strcmp(line, "ino"))
			n->meta.ino = u < LAYOUT_INO_LIMIT ? u : 0;
	}
}

int node_meta_save(struct registry *reg, struct node *n)
{
	int fd, ret;

	if (n->kind == NODE_TOPIC)
		return meta_write(n, n->dirfd, LAYOUT_TOPIC_META);
	if (n->kind != NODE_PARTITION)
		return -EPERM;
	if (n->part)
		return meta_write(n, partition_dirfd(n->part), LAYOUT_PART_META);
	fd = part_dir_open(reg, n); /* closed while idle */
	if (fd < 0)
		return fd;
	ret = meta_write(n, fd, LAYOUT_PART_META);
	io_close(fd);
	return ret;
}

/* Store n's changed metadata; if that fails, put back what it was
 * (saved), so memory never shows what the disk does not hold. */
static int meta_save_or_undo(struct registry *reg, struct node *n,
			     const struct node_meta *saved)
{
	int ret = node_meta_save(reg, n);

	if (ret < 0) {
		pthread_mutex_lock(&n->meta_lock);
		n->meta = *saved;
		pthread_mutex_unlock(&n->meta_lock);
	}
	return ret;
}

/* A partition's log is open (at load or create): note what it has
 * counted so far, and tell the FUSE layer. */
void attach_partition(struct registry *reg, struct node *n)
{
	struct log_metrics *m;

	m = partition_metrics(n->part);
	n->seen_crc_failures = metrics_get(m, crc_failures);
	if (reg->hooks.attach)
		reg->hooks.attach(reg, n);
}

/* ---- lifetimes ------------------------------------------------------- */

/* The last pin of a removed node went: close its partition and delete
 * its backing directory from .trash.  The node is kept alive by a
 * temporary pin meanwhile (n->dying refuses new pins). */
static void node_last_pin(struct registry *reg, struct node *n)
{
	char trash[sizeof(n->trash)];
	int ret;

	if (n->kind == NODE_PARTITION)
		part_close_now(reg, n, 1);
	pthread_rwlock_wrlock(&reg->lock);
	memcpy(trash, n->trash, sizeof(trash));
	n->trash[0] = '\0'; /* gone: nothing may open it again */
	pthread_rwlock_unlock(&reg->lock);
	if (trash[0]) {
		ret = io_remove_tree(reg->trashfd, trash);
		if (ret < 0 && ret != -ENOENT)
			diag_warn("cannot delete '%s/" LAYOUT_TRASH_DIR "/%s': %s",
				  reg->path, trash, strerror(-ret));
	}
}

static void node_put(struct registry *reg, struct node *n)
{
	struct node *parent = n->kind == NODE_PARTITION ? n->parent : NULL;
	int last = 0, free_it;

	pthread_mutex_lock(&reg->life);
	if (n->refs == 1 && !n->dying) {
		n->dying = 1; /* keep the pin while closing */
		last = 1;
	} else {
		n->refs--;
	}
	pthread_mutex_unlock(&reg->life);
	if (!last)
		return;
	node_last_pin(reg, n);
	pthread_mutex_lock(&reg->life);
	n->refs--;
	free_it = n->nlookup == 0;
	pthread_mutex_unlock(&reg->life);
	if (free_it) {
		node_free(reg, n);
		if (parent)
			node_put(reg, parent);
	}
}

/* Pin n (an open handle); -ENOENT once it is being torn down. */
int registry_pin(struct registry *reg, struct node *n)
{
	int ret = 0;

	if (n == &reg->root)
		return 0;
	pthread_mutex_lock(&reg->life);
	if (n->dying || n->refs == 0)
		ret = -ENOENT;
	else
		n->refs++;
	pthread_mutex_unlock(&reg->life);
	return ret;
}

/* Drop a pin. */
void registry_unpin(struct registry *reg, struct node *n)
{
	if (n != &reg->root)
		node_put(reg, n);
}

/* The kernel forgot nlookup references to n. */
void registry_forget(struct registry *reg, struct node *n, uint64_t nlookup)
{
	struct node *parent = n->kind == NODE_PARTITION ? n->parent : NULL;
	int free_it;

	if (n == &reg->root)
		return;
	pthread_mutex_lock(&reg->life);
	n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	free_it = n->nlookup == 0 && n->refs == 0 && n->dying;
	pthread_mutex_unlock(&reg->life);
	if (free_it) {
		node_free(reg, n);
		if (parent)
			node_put(reg, parent);
	}
}

static void node_lookup_ref(struct registry *reg, struct node *n)
{
	pthread_mutex_lock(&reg->life);
	n->nlookup++;
	pthread_mutex_unlock(&reg->life);
}

/* ---- namespace -------------------------------------------------------- */

/* Look up name in dir. */
int registry_lookup(struct registry *reg, struct node *dir, const char *name,
		    struct node **out)
{
	struct node *n;

	/* As ext4's lookup answers past its NAME_MAX; logged like every
	 * refused name. */
	if (strlen(name) > REGISTRY_NAME_MAX && dir->kind != NODE_PARTITION) {
		log_refused_name(dir->kind == NODE_ROOT ? "topic" : "partition",
				 name, -ENAMETOOLONG);
		return -ENAMETOOLONG;
	}
	pthread_rwlock_rdlock(&reg->lock);
	n = dir->kind == NODE_PARTITION || dir->removed ? NULL
							: child_find(dir, name);
	if (n)
		node_lookup_ref(reg, n);
	pthread_rwlock_unlock(&reg->lock);
	if (!n)
		return dir->kind == NODE_PARTITION ? -ENOTDIR : -ENOENT;
	*out = n;
	return 0;
}

/* The partition whose stored inode number is ino, with one lookup
 * count (a snapshot finds its partition by it after a rename, or after
 * it was deleted while the snapshot needed it). */
int registry_lookup_ino(struct registry *reg, uint64_t ino, struct node **out)
{
	struct node *t, *p = NULL;

	pthread_rwlock_rdlock(&reg->lock);
	for (t = reg->root.children; t && !p; t = t->next)
		for (p = t->children; p; p = p->next)
			if (registry_st_ino(reg, p) == ino)
				break;
	if (!p) /* deleted since, kept for a snapshot */
		p = snap_held_find(reg, ino);
	if (p)
		node_lookup_ref(reg, p);
	pthread_rwlock_unlock(&reg->lock);
	if (!p)
		return -ENOENT;
	*out = p;
	return 0;
}

/* Whether n is chattr +a. */
int registry_append_only(struct node *n)
{
	int on;

	pthread_mutex_lock(&n->meta_lock);
	on = n->meta.append_only;
	pthread_mutex_unlock(&n->meta_lock);
	return on;
}

/* Entry n of dir may not be removed or renamed: it is append-only, or dir
 * is (ext4's rule for FS_APPEND_FL). */
static int sealed_entry(struct node *dir, struct node *n)
{
	return registry_append_only(n) ||
	       (dir->kind == NODE_TOPIC && registry_append_only(dir));
}

/* Set or clear chattr +a, persisted with the node's mode and times. */
int registry_set_append_only(struct registry *reg, struct node *n, int on)
{
	struct node_meta saved;
	int ret;

	if (n->kind == NODE_ROOT)
		return -EPERM;
	pthread_rwlock_rdlock(&reg->lock);
	pthread_mutex_lock(&n->meta_lock);
	saved = n->meta;
	n->meta.append_only = !!on;
	n->meta.ctime = now_ts();
	pthread_mutex_unlock(&n->meta_lock);
	ret = meta_save_or_undo(reg, n, &saved);
	pthread_rwlock_unlock(&reg->lock);
	return ret;
}

/* An entry of dir came or went: its mtime and ctime move, as on any
 * filesystem (tools that watch a directory's mtime find new partitions
 * that way).  A topic's times persist in its topic.meta; the root's are
 * the data directory's own, which the same change moved on disk.  Called
 * with reg->lock held for writing, after the change succeeded: a failure
 * to store the times is logged, never a failure of the change. */
static void dir_changed(struct node *dir)
{
	struct timespec now = now_ts();
	int ret;

	pthread_mutex_lock(&dir->meta_lock);
	dir->meta.mtime = now;
	dir->meta.ctime = now;
	pthread_mutex_unlock(&dir->meta_lock);
	if (dir->kind != NODE_TOPIC)
		return;
	ret = meta_write(dir, dir->dirfd, LAYOUT_TOPIC_META);
	if (ret < 0)
		diag_warn("cannot store the times of topic '%s': %s",
			  dir->name, strerror(-ret));
}

/* A new topic or partition directory is built under .trash with a
 * temporary name and renamed into place only once it is complete, so a
 * step that fails (descriptors exhausted, a failed write or fsync) or a
 * crash never leaves a half-made topic or partition in the namespace:
 * .trash is emptied at every mount. */
static void new_dir_name(struct registry *reg, char *buf, size_t size)
{
	snprintf(buf, size, "n%u", atomic_fetch_add(&reg->trash_seq, 1));
}

/* Rename the finished trashfd/tmp to dirfd/name, durably.  A name that
 * exists on disk but not in the registry is not replaced (-EEXIST). */
static int new_dir_publish(struct registry *reg, const char *tmp, int dirfd,
			   const char *name)
{
	int ret;

	ret = io_renameat2(reg->trashfd, tmp, dirfd, name, RENAME_NOREPLACE);
	if (ret == -EINVAL || ret == -ENOSYS)
		ret = io_renameat(reg->trashfd, tmp, dirfd, name);
	if (ret < 0)
		return ret;
	ret = io_fsync_dir(dirfd);
	if (ret < 0 && io_renameat(dirfd, name, reg->trashfd, tmp) < 0)
		diag_err("cannot take back '%s' after a failed fsync of its "
			 "directory",
			 name);
	return ret;
}

/* Undo a failed creation: remove what was built of trashfd/tmp.  What
 * cannot be removed now stays in .trash until the next mount. */
static void new_dir_undo(struct registry *reg, const char *tmp,
			 const char *what, const char *name, int err)
{
	int ret = io_remove_tree(reg->trashfd, tmp);

	if (ret < 0 && ret != -ENOENT)
		diag_err("cannot create %s '%s': %s; its remains stay in "
			 "'%s/%s' until the next mount (%s)",
			 what, name, strerror(-err), LAYOUT_TRASH_DIR, tmp,
			 strerror(-ret));
	else
		diag_err("cannot create %s '%s': %s", what, name,
			 strerror(-err));
}

/* Create a topic. */
int registry_mkdir(struct registry *reg, struct node *dir, const char *name,
		   mode_t mode, uid_t uid, gid_t gid, struct node **out)
{
	struct node *t = NULL;
	char tmp[32];
	int ret;

	if (dir->kind != NODE_ROOT)
		return -EPERM; /* no subdirectories inside a topic */
	ret = registry_check_name(name, 1);
	if (ret < 0) {
		log_refused_name("topic", name, ret);
		return ret;
	}
	pthread_rwlock_wrlock(&reg->lock);
	if (child_find(dir, name)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	t = node_new(reg, NODE_TOPIC, name);
	if (!t) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	t->meta.mode = mode & 07777;
	t->meta.uid = uid;
	t->meta.gid = gid;
	ret = registry_ino_alloc(reg, &t->meta.ino);
	if (ret < 0) {
		diag_err("cannot create topic '%s': %s (raising the inode "
			 "number bound in " LAYOUT_META_FILE ")",
			 name, strerror(-ret));
		node_free(reg, t);
		goto out_unlock;
	}
	new_dir_name(reg, tmp, sizeof(tmp));
	ret = io_mkdirat(reg->trashfd, tmp, 0755);
	if (ret < 0)
		goto out_undo;
	t->dirfd = io_opendirat(reg->trashfd, tmp);
	if (t->dirfd < 0) {
		ret = t->dirfd;
		goto out_undo;
	}
	ret = meta_write(t, t->dirfd, LAYOUT_TOPIC_META);
	if (ret < 0)
		goto out_undo;
	ret = new_dir_publish(reg, tmp, reg->rootfd, name);
	if (ret < 0)
		goto out_undo;
	child_add(dir, t);
	t->nlookup = 1;
	dir_changed(dir);
	pthread_rwlock_unlock(&reg->lock);
	diag_info("created topic '%s'", name);
	*out = t;
	return 0;

out_undo:
	/* Close first: the descriptor may be the one the removal needs. */
	io_close(t->dirfd);
	t->dirfd = -1;
	new_dir_undo(reg, tmp, "topic", name, ret);
	node_free(reg, t);
out_unlock:
	pthread_rwlock_unlock(&reg->lock);
	return ret;
}

/* Create a partition. */
int registry_create(struct registry *reg, struct node *dir, const char *name,
		    mode_t mode, uid_t uid, gid_t gid, struct node **out)
{
	struct config cfg;
	struct node *n = NULL;
	char tmp[32];
	int ret;

	if (dir->kind != NODE_TOPIC)
		return -EPERM; /* the root holds topics only */
	ret = registry_check_name(name, 0);
	if (ret < 0) {
		log_refused_name("partition", name, ret);
		return ret;
	}
	ret = part_room(reg, "create", name, NULL);
	if (ret < 0)
		return ret;
	pthread_rwlock_wrlock(&reg->lock);
	if (dir->removed) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (child_find(dir, name)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	n = node_new(reg, NODE_PARTITION, name);
	if (!n) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	n->parent = dir;
	n->over_loaded = 1; /* new: no partition.conf */
	n->meta.mode = mode & 07777;
	n->meta.uid = uid;
	n->meta.gid = gid;
	ret = registry_ino_alloc(reg, &n->meta.ino);
	if (ret < 0) {
		diag_err("cannot create partition '%s': %s (raising the inode "
			 "number bound in " LAYOUT_META_FILE ")",
			 name, strerror(-ret));
		node_free(reg, n);
		goto out_unlock;
	}
	effective_config(reg, n, &cfg);
	new_dir_name(reg, tmp, sizeof(tmp));
	ret = partition_create(reg->trashfd, tmp, &cfg, registry_now_ms(),
			       &n->part);
	if (ret < 0)
		goto out_undo;
	ret = meta_write(n, partition_dirfd(n->part), LAYOUT_PART_META);
	if (ret < 0)
		goto out_undo;
	ret = new_dir_publish(reg, tmp, dir->dirfd, name);
	if (ret < 0)
		goto out_undo;
	partition_renamed(n->part, dir->dirfd, name);
	atomic_store(&n->max_message, cfg.max_message_bytes);
	attach_partition(reg, n);
	part_created(reg, n);
	child_add(dir, n);
	dir->refs++;
	n->nlookup = 1;
	dir_changed(dir);
	pthread_rwlock_unlock(&reg->lock);
	*out = n;
	return 0;

out_undo:
	/* Discard first: it closes the descriptor the removal may need. */
	if (n->part)
		partition_discard(n->part);
	n->part = NULL;
	new_dir_undo(reg, tmp, "partition", name, ret);
	node_free(reg, n);
out_unlock:
	pthread_rwlock_unlock(&reg->lock);
	fdb_unreserve(&reg->fdb, FDB_OPEN_COST);
	return ret;
}

/* Move n's backing directory, now at pfd/name, into .trash and take n out
 * of the tree.  Called with reg->lock held for writing; the caller drops
 * the tree pin (node_put) after unlocking. */
static int node_to_trash_from(struct registry *reg, struct node *n, int pfd,
			      const char *name)
{
	int ret;

	snprintf(n->trash, sizeof(n->trash), "%c%u",
		 n->kind == NODE_TOPIC ? 't' : 'p',
		 atomic_fetch_add(&reg->trash_seq, 1));
	ret = io_renameat(pfd, name, reg->trashfd, n->trash);
	if (ret < 0) {
		n->trash[0] = '\0';
		return ret;
	}
	io_fsync_dir(pfd);
	if (n->part)
		partition_renamed(n->part, reg->trashfd, n->trash);
	child_remove(n->parent, n);
	n->removed = 1;
	return 0;
}

/* Move n's backing directory into .trash (see node_to_trash_from). */
static int node_to_trash(struct registry *reg, struct node *n)
{
	return node_to_trash_from(reg, n, node_parent_fd(reg, n), n->name);
}

/* Replace victim (at dstfd/newname) with the node at srcfd/name.  The two
 * directories are swapped in one step first, so a crash leaves newname
 * holding the new data and the old data under the source's name -- never
 * a missing target -- and only then does the old data go to .trash.
 * Falls back to trash-then-rename where the filesystem cannot exchange. */
static int replace_victim(struct registry *reg, struct node *victim,
			  int srcfd, const char *name, int dstfd,
			  const char *newname)
{
	int ret;

	ret = io_renameat2(srcfd, name, dstfd, newname, RENAME_EXCHANGE);
	if (ret == -EINVAL || ret == -ENOSYS) {
		ret = node_to_trash(reg, victim);
		if (ret == 0)
			ret = io_renameat(srcfd, name, dstfd, newname);
		return ret;
	}
	if (ret < 0)
		return ret;
	ret = node_to_trash_from(reg, victim, srcfd, name);
	if (ret < 0) /* undo the swap; the rename fails as a whole */
		io_renameat2(srcfd, name, dstfd, newname, RENAME_EXCHANGE);
	return ret;
}

/* Remove an empty topic. */
int registry_rmdir(struct registry *reg, struct node *dir, const char *name)
{
	struct node *t;
	int ret;

	if (dir->kind != NODE_ROOT)
		return -ENOTDIR;
	pthread_rwlock_wrlock(&reg->lock);
	t = child_find(dir, name);
	if (!t) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (t->nchildren) {
		ret = -ENOTEMPTY;
		goto out_unlock;
	}
	if (registry_append_only(t)) {
		ret = -EPERM;
		goto out_unlock;
	}
	ret = node_to_trash(reg, t);
	if (ret == 0)
		dir_changed(dir);
	pthread_rwlock_unlock(&reg->lock);
	if (ret == 0) {
		diag_info("removed topic '%s'", name);
		if (reg->hooks.detach)
			reg->hooks.detach(reg, t);
		node_put(reg, t);
	}
	return ret;

out_unlock:
	pthread_rwlock_unlock(&reg->lock);
	return ret;
}

/* Remove a partition; open handles keep it until they close. */
static int other_ino(void *arg, uint64_t ino)
{
	return ino != *(const uint64_t *)arg;
}

/* A deleted partition's consumer group positions go with it. */
static void groups_drop(struct registry *reg, struct node *n)
{
	uint64_t ino = registry_st_ino(reg, n);

	if (reg->groups && ino &&
	    groupstore_prune(reg->groups, other_ino, &ino) < 0)
		diag_warn("cannot drop the consumer group positions of '%s'",
			  n->name);
}

int registry_unlink(struct registry *reg, struct node *dir, const char *name)
{
	struct node *n;
	int ret;

	if (dir->kind != NODE_TOPIC)
		return dir->kind == NODE_ROOT ? -EISDIR : -ENOTDIR;
	pthread_rwlock_wrlock(&reg->lock);
	n = child_find(dir, name);
	ret = !n ? -ENOENT : sealed_entry(dir, n) ? -EPERM : node_to_trash(reg, n);
	if (ret == 0)
		dir_changed(dir);
	pthread_rwlock_unlock(&reg->lock);
	if (ret == 0) {
		diag_info("removed partition '%s/%s'", dir->name, name);
		groups_drop(reg, n);
		if (reg->hooks.detach)
			reg->hooks.detach(reg, n);
		snap_removed(reg, n);
		node_put(reg, n);
	}
	return ret;
}

/* Rename a topic or a partition; a partition renamed over another one
 * replaces it (the old one goes to .trash first). */
int registry_rename(struct registry *reg, struct node *dir, const char *name,
		    struct node *newdir, const char *newname,
		    unsigned int flags)
{
	struct node *n, *victim = NULL, **kids = NULL, *k;
	char *dup = NULL;
	int ret, is_topic = dir->kind == NODE_ROOT, moved = 0;
	unsigned nkids = 0, i;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	if (dir->kind == NODE_PARTITION || newdir->kind == NODE_PARTITION)
		return -ENOTDIR;
	if (dir->kind != newdir->kind)
		return -EPERM; /* topics stay topics, partitions partitions */
	ret = registry_check_name(newname, is_topic);
	if (ret < 0) {
		log_refused_name(is_topic ? "topic" : "partition", newname,
				 ret);
		return ret;
	}
	dup = strdup(newname);
	if (!dup)
		return -ENOMEM;
	pthread_rwlock_wrlock(&reg->lock);
	n = child_find(dir, name);
	if (!n) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (newdir->removed) {
		ret = -ENOENT;
		goto out_unlock;
	}
	victim = child_find(newdir, newname);
	if (sealed_entry(dir, n) ||
	    (victim && victim != n && sealed_entry(newdir, victim))) {
		ret = -EPERM;
		victim = NULL;
		goto out_unlock;
	}
	if (victim == n) {
		ret = 0;
		victim = NULL;
		goto out_unlock;
	}
	if (victim && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
		victim = NULL;
		goto out_unlock;
	}
	if (victim && is_topic && victim->nchildren) {
		ret = -ENOTEMPTY;
		victim = NULL;
		goto out_unlock;
	}
	if (victim) {
		ret = replace_victim(reg, victim,
				     is_topic ? reg->rootfd : dir->dirfd, name,
				     is_topic ? reg->rootfd : newdir->dirfd,
				     newname);
		if (ret < 0 && !victim->removed)
			victim = NULL;
	} else {
		ret = io_renameat(is_topic ? reg->rootfd : dir->dirfd, name,
				  is_topic ? reg->rootfd : newdir->dirfd,
				  newname);
	}
	if (ret < 0)
		goto out_unlock;
	io_fsync_dir(is_topic ? reg->rootfd : newdir->dirfd);
	if (!is_topic && dir != newdir)
		io_fsync_dir(dir->dirfd);
	free(n->name);
	n->name = dup;
	dup = NULL;
	dir_changed(dir);
	if (newdir != dir)
		dir_changed(newdir);
	moved = !is_topic; /* the follow view of its old name ends */
	if (!is_topic) {
		if (n->part)
			partition_renamed(n->part, newdir->dirfd, newname);
		if (dir != newdir) {
			child_remove(dir, n);
			child_add(newdir, n);
			/* the partition's pin moves to its new topic */
			pthread_mutex_lock(&reg->life);
			newdir->refs++;
			pthread_mutex_unlock(&reg->life);
			pthread_rwlock_unlock(&reg->lock);
			node_put(reg, dir);
			apply_config(reg, n, NULL);
			goto out_victim;
		}
	}
	if (is_topic && n->nchildren) {
		/* The follow views of its partitions' old names end too:
		 * pin them to detach them after the lock. */
		kids = malloc(n->nchildren * sizeof(*kids));
		pthread_mutex_lock(&reg->life);
		for (k = n->children; kids && k; k = k->next) {
			k->refs++;
			kids[nkids++] = k;
		}
		pthread_mutex_unlock(&reg->life);
	}
	pthread_mutex_lock(&n->meta_lock);
	n->meta.ctime = now_ts();
	pthread_mutex_unlock(&n->meta_lock);
out_unlock:
	pthread_rwlock_unlock(&reg->lock);
out_victim:
	free(dup);
	if (ret == 0 && moved && reg->hooks.detach)
		reg->hooks.detach(reg, n);
	for (i = 0; i < nkids; i++) {
		if (reg->hooks.detach)
			reg->hooks.detach(reg, kids[i]);
		node_put(reg, kids[i]);
	}
	free(kids);
	if (victim && victim->kind == NODE_PARTITION) {
		groups_drop(reg, victim);
		snap_removed(reg, victim);
	}
	if (victim && reg->hooks.detach)
		reg->hooks.detach(reg, victim);
	if (victim)
		node_put(reg, victim);
	return ret;
}

/* ---- attributes ------------------------------------------------------- */

/* Fill st for n. */
int registry_stat(struct registry *reg, struct node *n, struct stat *st)
{
	struct partition_info info;
	struct node_meta m;
	struct timespec last;
	uint64_t retained;
	int ret;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&n->meta_lock);
	m = n->meta;
	pthread_mutex_unlock(&n->meta_lock);
	st->st_ino = n == &reg->root ? REGISTRY_INO_ROOT : m.ino;
	st->st_uid = m.uid;
	st->st_gid = m.gid;
	st->st_atim = m.atime;
	st->st_mtim = m.mtime;
	st->st_ctim = m.ctime;
	st->st_blksize = 1 << 20;
	switch (n->kind) {
	case NODE_ROOT:
		pthread_rwlock_rdlock(&reg->lock);
		st->st_nlink = 2 + n->nchildren;
		pthread_rwlock_unlock(&reg->lock);
		st->st_mode = S_IFDIR | m.mode;
		break;
	case NODE_TOPIC:
		st->st_mode = S_IFDIR | m.mode;
		st->st_nlink = 2;
		break;
	case NODE_PARTITION:
		st->st_mode = S_IFREG | m.mode;
		pthread_rwlock_rdlock(&reg->lock);
		st->st_nlink = n->removed ? 0 : 1;
		pthread_rwlock_unlock(&reg->lock);
		ret = part_info(reg, n, &info, 1);
		if (ret == -ENOENT)
			break; /* removed and closed: nothing left */
		if (ret < 0)
			return ret;
		st->st_size = (off_t)info.end_byte;
		/* Retained data only: a head deleted inside a segment
		 * still occupies disk until the segment goes. */
		retained = info.end_byte - info.start_byte;
		if (info.disk_bytes < retained)
			retained = info.disk_bytes;
		st->st_blocks = (blkcnt_t)((retained + 511) / 512);
		if (info.last_ts >= 0 && info.end_byte != m.mtime_end) {
			last.tv_sec = info.last_ts / 1000;
			last.tv_nsec = (info.last_ts % 1000) * 1000000;
			st->st_mtim = last;
			if (last.tv_sec > st->st_ctim.tv_sec)
				st->st_ctim = last;
		}
		break;
	}
	return 0;
}

/* Change and persist mode, owner and times. */
int registry_setattr(struct registry *reg, struct node *n, const mode_t *mode,
		     const uid_t *uid, const gid_t *gid,
		     const struct timespec *atime, const struct timespec *mtime)
{
	struct partition_info info;
	struct node_meta saved;
	struct timespec now = now_ts();
	int ret, have_end;

	if (n->kind == NODE_ROOT)
		return -EPERM;
	/* The end the new mtime is set at (later appends win over it). */
	have_end = mtime && n->kind == NODE_PARTITION &&
		   part_info(reg, n, &info, 1) == 0;
	pthread_rwlock_rdlock(&reg->lock);
	pthread_mutex_lock(&n->meta_lock);
	saved = n->meta;
	if (mode)
		n->meta.mode = *mode & 07777;
	if (uid)
		n->meta.uid = *uid;
	if (gid)
		n->meta.gid = *gid;
	if (atime)
		n->meta.atime = atime->tv_nsec == UTIME_NOW ? now : *atime;
	if (mtime) {
		n->meta.mtime = mtime->tv_nsec == UTIME_NOW ? now : *mtime;
		if (have_end)
			n->meta.mtime_end = info.end_byte;
	}
	n->meta.ctime = now;
	pthread_mutex_unlock(&n->meta_lock);
	ret = meta_save_or_undo(reg, n, &saved);
	pthread_rwlock_unlock(&reg->lock);
	return ret;
}

/* Clear setuid/setgid after an unprivileged write.  A chmod racing the
 * write may be undone, as with the kernel's own read-then-setattr. */
int registry_drop_setid(struct registry *reg, struct node *n)
{
	mode_t old, mode;
	int ret;

	pthread_mutex_lock(&n->meta_lock);
	old = n->meta.mode;
	pthread_mutex_unlock(&n->meta_lock);
	mode = old & ~(mode_t)S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		mode &= ~(mode_t)S_ISGID;
	if (mode == old)
		return 0; /* the common case: nothing to clear */
	ret = registry_setattr(reg, n, &mode, NULL, NULL, NULL, NULL);
	return ret < 0 ? ret : 1;
}

/* The partition's info, read under the lock that keeps it open. */
int registry_info(struct registry *reg, struct node *n,
		  struct partition_info *info)
{
	if (n->kind != NODE_PARTITION)
		return -ENOENT;
	return part_info(reg, n, info, 2);
}

/* Space of the backing filesystem. */
int registry_statfs(struct registry *reg, struct statvfs *st)
{
	int ret = io_fstatvfs(reg->rootfd, st);

	if (ret < 0)
		return ret;
	st->f_namemax = REGISTRY_NAME_MAX;
	return 0;
}

/* List dir's children. */
int registry_list(struct registry *reg, struct node *dir,
		  int (*cb)(void *arg, const char *name, uint64_t ino,
			    enum node_kind kind),
		  void *arg)
{
	struct node *c;
	int ret = 0;

	if (dir->kind == NODE_PARTITION)
		return -ENOTDIR;
	pthread_rwlock_rdlock(&reg->lock);
	for (c = dir->children; c && !ret; c = c->next)
		ret = cb(arg, c->name, registry_st_ino(reg, c), c->kind);
	pthread_rwlock_unlock(&reg->lock);
	return ret < 0 ? ret : 0;
}

/* Answer a seek query xattr (xattr_query) on partition n. */
int registry_query(struct registry *reg, struct node *n, const char *name,
		   char *buf, size_t size)
{
	int ret;

	if (n->kind != NODE_PARTITION || !xattr_is_query(name))
		return -ENODATA; /* ls -l asks for ACLs: nothing to open */
	ret = registry_part_get(reg, n);
	if (ret < 0)
		return ret == -ENOENT ? -ENODATA : ret;
	ret = xattr_query(n->part, name, buf, size);
	registry_part_put(reg, n);
	return ret;
}
