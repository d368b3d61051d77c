/*
 * fs_groups.c - consumer groups as files: MNT/.groups/<group>/<topic>/
 * <partition>, read from the group's committed position, committed on
 * close, fsync and every commit_ms; the group view's inodes, its open
 * files and their ownership, and its extended attributes.
 *
 * The positions themselves live in the engine (groupstore.h, reached
 * through registry_groups()); this file maps names to them and turns
 * reads into commits.  The view's inodes are view objects (fs_vobj.c)
 * tagged GROUP_TAG, named by their group.
 *
 * What a close commits: a group file is read with direct_io, so every
 * read() of the consumer reaches us and the position is the end of the
 * last whole message the last read returned.  The kernel keeps the file
 * offset itself (lseek never reaches us), so a reader that reads ahead
 * and seeks back before closing (GNU head -n, bash's read builtin)
 * commits what it read, not what it printed.  Only the process that read
 * last commits at its close: a child that inherited the descriptor and
 * exits (a `sleep` in a shell loop reading the file) has consumed
 * nothing, and neither does a close after which the reader still holds
 * the file (a duplicate closed; /proc/<pid>/fdinfo tells).  A reader
 * killed by a signal commits nothing at its close (its last commit
 * stands, and the messages since are read again): the closing process's
 * exit status tells (/proc/<pid>/stat).  An open reader
 * commits on a read once commit_ms have passed since its last commit: the
 * offset that read asks for, i.e. what the reader consumed before asking for
 * more.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "diag.h"
#include "fs_int.h"
#include "groupstore.h"
#include "timesel.h"

#define XATTR_PREFIX "user.fluxfs."
/* How long an open waits for the release of a reader that has closed
 * (the kernel sends the release after close() has returned). */
#define RELEASE_WAIT_MS 500

enum gview_kind { GV_GROUP, GV_TOPIC, GV_PART };

/* An open group partition file. */
struct group_open {
	char *group;
	uint64_t st_ino; /* the partition's stored inode number */
	uint64_t view_ino; /* the group file's st_ino, as the kernel has it */
	struct view v;	 /* start: the position at open */
	int follow;	 /* reads wait at the end */
	uint32_t commit_ms;
	pthread_mutex_t lock;	 /* orders this reader's commits */
	uint64_t committed;	 /* byte committed last (lock) */
	int64_t last_commit_ms;	 /* lock */
	int flushed;		 /* closed once (gs_lock) */
	int killed;		 /* its process died of a signal (lock) */
	pid_t reader;		 /* the process that read last (lock) */
	struct group_open *next; /* readers; protected by gs_lock */
};

static pthread_mutex_t gs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gs_released = PTHREAD_COND_INITIALIZER;
static struct vobj_list gviews = {PTHREAD_MUTEX_INITIALIZER, NULL};
static struct group_open *readers; /* protected by gs_lock */
static atomic_uint_fast64_t retention_skips;

static struct groupstore *store(void)
{
	return registry_groups(fs.reg);
}

/* ---- inodes ---------------------------------------------------------- */

static struct vobj *gview_of(fuse_ino_t ino)
{
	return (struct vobj *)(uintptr_t)(ino & ~(fuse_ino_t)GROUP_TAG);
}

static fuse_ino_t ino_of(struct vobj *g)
{
	return (fuse_ino_t)(uintptr_t)g | GROUP_TAG;
}

void fs_groups_forget(fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != REGISTRY_INO_GROUPS)
		vobj_forget(&gviews, gview_of(ino), nlookup);
}

static uint64_t st_ino_of(struct vobj *g)
{
	return vobj_st_ino(g, REGISTRY_INO_GROUP_VIEW);
}

/* Where a partition's log starts and ends, as positions. */
static void log_bounds(struct node *n, struct group_pos *first,
		       struct group_pos *last)
{
	struct partition_info info;

	partition_get_info(n->part, &info);
	last->byte = info.end_byte;
	last->offset = info.next_offset;
	*first = *last;
	if (info.start_offset < info.next_offset &&
	    partition_offset_to_byte(n->part, info.start_offset,
				     &first->byte) == 0)
		first->offset = info.start_offset;
}

/* The position group has (or would start from) on partition n: its
 * commit, raised to the log's start if retention passed it (*skipped
 * set), else where auto_offset_reset says; *end (unless NULL) gets the
 * log's end it was measured against.  -ENOENT: no such group. */
static int position_of(const char *group, struct node *n, struct group_pos *pos,
		       int *skipped, struct group_pos *end)
{
	struct group_pos first, last;
	struct group_opts opts;
	uint64_t ino = registry_st_ino(fs.reg, n);
	int ret;

	*skipped = 0;
	/* The partition may be idle (closed): its bounds need its log. */
	ret = registry_part_get(fs.reg, n);
	if (ret < 0)
		return ret;
	log_bounds(n, &first, &last);
	registry_part_put(fs.reg, n);
	if (end)
		*end = last;
	ret = groupstore_get(store(), group, ino, pos);
	if (ret == -ENODATA) {
		ret = groupstore_get_opts(store(), group, &opts);
		if (ret < 0)
			return ret;
		*pos = opts.latest ? last : first;
		pos->commit_ms = -1;
		return 1; /* no commit yet */
	}
	if (ret < 0)
		return ret;
	if (pos->byte < first.byte) {
		*skipped = 1;
		pos->byte = first.byte;
		pos->offset = first.offset;
	} else if (pos->byte > last.byte) {
		pos->byte = last.byte; /* the log lost its tail */
		pos->offset = last.offset;
	}
	return 0;
}

/* The registry directory a group or group topic directory lists. */
static struct node *listed_dir(struct vobj *dir)
{
	return dir->kind == GV_GROUP ? node_of(REGISTRY_INO_ROOT) : dir->n;
}

static void fill_stat(struct vobj *g, struct stat *st)
{
	struct group_pos pos;
	int skipped;

	if (g && g->n)
		registry_stat(fs.reg, g->n, st);
	else
		registry_stat(fs.reg, node_of(REGISTRY_INO_ROOT), st);
	st->st_ino = g ? st_ino_of(g) : REGISTRY_INO_GROUPS;
	if (g && g->kind == GV_PART) {
		/* The partition's read bits, so default_permissions lets
		 * read it through a group exactly who may read it; the
		 * owner's write bit for setting reset (writes are refused
		 * at open). */
		st->st_mode = S_IFREG | (st->st_mode & 0644);
		st->st_nlink = 1;
		/* What is left to read: the file's content. */
		st->st_size =
			position_of(g->name, g->n, &pos, &skipped, NULL) >= 0
				? (off_t)(atomic_load(&g->n->fs->shown_end) >
							  pos.byte
						  ? atomic_load(
							    &g->n->fs->shown_end) -
							    pos.byte
						  : 0)
				: 0;
		st->st_blocks = (st->st_size + 511) / 512;
	} else if (g && g->kind == GV_TOPIC) {
		st->st_mode = S_IFDIR | (st->st_mode & 0755);
		st->st_nlink = 2;
		st->st_size = 0;
	} else {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		st->st_size = 0;
	}
}

static void reply_gentry(fuse_req_t req, struct vobj *g, fuse_ino_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	fill_stat(g, &e.attr);
	e.ino = ino;
	/* Not cached: a group removed or a partition renamed must stop
	 * resolving at once, and the size (the lag) changes with every
	 * append and commit. */
	if (fuse_reply_entry(req, &e) < 0 && g)
		fs_groups_forget(ino, 1);
}

void fs_groups_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vobj *dir =
		parent == REGISTRY_INO_GROUPS ? NULL : gview_of(parent);
	struct vobj *g;
	int ret;

	if (parent == REGISTRY_INO_ROOT) { /* .groups itself */
		reply_gentry(req, NULL, REGISTRY_INO_GROUPS);
		return;
	}
	if (!dir) {
		if (groupstore_check_name(name) < 0 ||
		    !groupstore_exists(store(), name)) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		g = vobj_get(&gviews, GV_GROUP, name, NULL);
	} else if (dir->kind == GV_PART) {
		fuse_reply_err(req, ENOTDIR);
		return;
	} else {
		ret = vobj_child(&gviews, dir, listed_dir(dir), name,
				 dir->kind == GV_GROUP ? GV_TOPIC : GV_PART, &g);
		if (ret < 0) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	if (!g) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_gentry(req, g, ino_of(g));
}

void fs_groups_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;

	fill_stat(ino == REGISTRY_INO_GROUPS ? NULL : gview_of(ino), &st);
	fuse_reply_attr(req, &st, 0);
}

/* ---- groups: mkdir, rmdir, listings ---------------------------------- */

static void log_refused(const char *what, const char *name, int err)
{
	char shown[DIAG_PRINTABLE_MAX];

	diag_info("refused %s '%s': %s", what,
		  diag_printable(name, shown, sizeof(shown)), strerror(-err));
}

void fs_groups_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vobj *g;
	int ret;

	if (parent != REGISTRY_INO_GROUPS) {
		fuse_reply_err(req, EPERM); /* topics come from the mount */
		return;
	}
	ret = groupstore_create(store(), name);
	if (ret < 0) {
		if (ret != -EEXIST)
			log_refused("consumer group name", name, ret);
		fuse_reply_err(req, -ret);
		return;
	}
	diag_info("consumer group '%s' created", name);
	g = vobj_get(&gviews, GV_GROUP, name, NULL);
	if (!g) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_gentry(req, g, ino_of(g));
}

void fs_groups_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct group_open *r;
	int ret = 0;

	if (parent != REGISTRY_INO_GROUPS) {
		fuse_reply_err(req, EPERM);
		return;
	}
	pthread_mutex_lock(&gs_lock);
	for (r = readers; r; r = r->next)
		if (!strcmp(r->group, name))
			ret = -EBUSY; /* a reader would commit into nothing */
	if (ret == 0)
		ret = groupstore_remove(store(), name);
	pthread_mutex_unlock(&gs_lock);
	if (ret == 0)
		diag_info("consumer group '%s' removed", name);
	else if (ret != -ENOENT)
		log_refused("removal of consumer group", name, ret);
	fuse_reply_err(req, -ret);
}

static int list_group(void *arg, const char *name)
{
	struct dirbuf *d = arg;

	return fs_dirbuf_add(d, name, crc32c(0, name, strlen(name)) + 16,
			     NODE_TOPIC);
}

void fs_groups_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dirbuf d = {req, NULL, 0, 0, 0, 0, 0, 0};
	struct vobj *g = ino == REGISTRY_INO_GROUPS ? NULL : gview_of(ino);
	int ret;

	if (g && g->kind == GV_PART) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fs_dirbuf_add(&d, ".", g ? st_ino_of(g) : REGISTRY_INO_GROUPS,
		      NODE_TOPIC);
	fs_dirbuf_add(&d, "..", REGISTRY_INO_ROOT, NODE_ROOT);
	d.ino_or = REGISTRY_INO_GROUP_VIEW;
	if (!g) {
		ret = groupstore_list(store(), list_group, &d);
	} else if (!groupstore_exists(store(), g->name)) {
		ret = -ENOENT;
	} else {
		ret = registry_list(fs.reg, listed_dir(g), fs_dirbuf_add, &d);
	}
	fs_dirbuf_open(req, fi, &d, ret);
}

/* ---- commits --------------------------------------------------------- */

/* Commit r's position at partition byte upto (rounded down to a message
 * boundary; never backwards), durably.  force: even if unchanged. */
static int commit_at(struct group_open *r, uint64_t upto, int force)
{
	struct partition *p = r->v.n->part;
	struct group_pos pos;
	uint64_t off, start;
	struct partition_info info;
	int ret;

	/* A deleted partition's positions were dropped: keep them so.
	 * (removed is read without reg->lock: a stale 0 can only leave a
	 * position that the next mount prunes.) */
	if (!p || r->v.n->removed)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (upto <= r->committed && !force) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	partition_get_info(p, &info);
	if (upto >= info.end_byte) {
		pos.byte = info.end_byte;
		pos.offset = info.next_offset;
	} else if (partition_byte_to_offset(p, upto, &off, &start) == 0) {
		pos.byte = start;
		pos.offset = off;
	} else {
		pthread_mutex_unlock(&r->lock);
		return 0; /* below the log (retention): nothing read there */
	}
	if (pos.byte < r->committed) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	pos.commit_ms = registry_now_ms();
	ret = groupstore_commit(store(), r->group, r->st_ino, &pos);
	if (ret == 0) {
		r->committed = pos.byte;
		r->last_commit_ms = pos.commit_ms;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* Whether process pid is exiting after being killed by a signal: its
 * files are being closed by the kernel on its way out (PF_EXITING) and
 * its exit status is a signal's. */
static int killed_by_signal(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long flags = 0;
	int exit_code = 0, field, fd;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything */
	if (!p)
		return 0;
	/* Fields from 3 (state) on: 9 is flags, 52 the exit code. */
	for (field = 2; p && *p; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			break;
		if (field + 1 == 9)
			flags = strtoul(p + 1, NULL, 10);
		if (field + 1 == 52)
			exit_code = atoi(p + 1);
	}
	return (flags & 0x4 /* PF_EXITING */) && (exit_code & 0x7f) != 0;
}

/* Whether process pid still holds a descriptor on the file whose inode
 * number is ino (the "ino:" lines of /proc/<pid>/fdinfo/N).  The kernel
 * sends a FLUSH for every close of a descriptor, and in the name of the
 * process that closes it; the reader's close is its last only if it
 * holds none after it.  It is not when the reader closes a duplicate
 * (a shell restoring its stdin after `read <&3`), nor when the reader's
 * fork fails on a pending SIGKILL and the kernel closes the half-made
 * child's copies in the parent's name, before the parent dies. */
static int still_holds(pid_t pid, uint64_t ino)
{
	char path[64], buf[512], *at;
	struct dirent *e;
	int dfd, fd, held = 0, scanned = 0;
	ssize_t len;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	/* Bounded: a process with more descriptors than this is taken to
	 * hold the file (no commit now: the next one covers it). */
	while (!held && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (++scanned > 65536) {
			held = 1;
			break;
		}
		fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		at = strstr(buf, "\nino:");
		held = at && strtoull(at + 5, NULL, 10) == ino;
	}
	closedir(d);
	return held;
}

/* A close (flush): commit what the reader read, unless its process is
 * dying of a signal (then its last commit stands) or still holds the
 * file (then this close is not its last). */
int fs_groups_flush(fuse_req_t req, struct handle *h)
{
	struct group_open *r = h->grp;
	pid_t pid = fuse_req_ctx(req)->pid;
	int ret;

	pthread_mutex_lock(&gs_lock);
	r->flushed = 1;
	pthread_mutex_unlock(&gs_lock);
	pthread_mutex_lock(&r->lock);
	ret = r->reader && r->reader != pid;
	pthread_mutex_unlock(&r->lock);
	if (ret)
		return 0; /* a process that shared the file but read nothing */
	if (killed_by_signal(pid)) {
		pthread_mutex_lock(&r->lock);
		if (!r->killed)
			diag_info("consumer group '%s': reader of '%s' killed "
				  "by a signal; its last commit stands",
				  r->group, r->v.n->name);
		r->killed = 1;
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	ret = r->killed;
	pthread_mutex_unlock(&r->lock);
	if (ret || still_holds(pid, r->view_ino))
		return 0;
	/* close() returns the commit's error: what it read is not safe. */
	return commit_at(r, atomic_load(&h->ff.pos), 0);
}

int fs_groups_fsync(struct handle *h)
{
	return commit_at(h->grp, atomic_load(&h->ff.pos), 0);
}

void fs_groups_release(struct handle *h)
{
	struct group_open *r = h->grp, **pp;

	if (!r)
		return;
	if (!r->killed)
		commit_at(r, atomic_load(&h->ff.pos), 0);
	pthread_mutex_lock(&gs_lock);
	for (pp = &readers; *pp && *pp != r; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = r->next;
	pthread_cond_broadcast(&gs_released);
	pthread_mutex_unlock(&gs_lock);
	h->grp = NULL;
	pthread_mutex_destroy(&r->lock);
	free(r->group);
	free(r);
}

/* ---- open and read --------------------------------------------------- */

/* Take group's partition n for a new reader r: -EBUSY while another
 * reader has it (one that has closed gets a moment to be released). */
static int take(struct group_open *r, struct node *n)
{
	struct group_open *o;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += RELEASE_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&gs_lock);
	for (;;) {
		for (o = readers; o; o = o->next)
			if (o->v.n == n && !strcmp(o->group, r->group))
				break;
		if (!o || !o->flushed ||
		    pthread_cond_timedwait(&gs_released, &gs_lock, &until))
			break;
	}
	if (!o) {
		r->next = readers;
		readers = r;
	}
	pthread_mutex_unlock(&gs_lock);
	return o ? -EBUSY : 0;
}

int fs_groups_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vobj *g = ino == REGISTRY_INO_GROUPS ? NULL : gview_of(ino);
	struct group_opts opts;
	struct group_open *r;
	struct group_pos pos;
	struct handle *h;
	int ret, skipped;

	(void)req;
	if (!g || g->kind != GV_PART)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		diag_info("refused writing open of consumer group file "
			  "'%s/%s/%s': read-only",
			  g->name, g->n->parent ? g->n->parent->name : "?",
			  g->n->name);
		return -EACCES;
	}
	ret = groupstore_get_opts(store(), g->name, &opts);
	if (ret < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->group = strdup(g->name))) {
		free(r);
		return -ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->st_ino = registry_st_ino(fs.reg, g->n);
	r->view_ino = st_ino_of(g);
	r->v.n = g->n;
	r->follow = opts.follow;
	r->commit_ms = opts.commit_ms;
	ret = take(r, g->n);
	if (ret == 0)
		ret = fs_pin_open(g->n);
	if (ret < 0) {
		if (ret != -EBUSY)
			goto fail;
		diag_info("consumer group '%s': '%s' is being read by another "
			  "reader",
			  r->group, g->n->name);
		pthread_mutex_destroy(&r->lock);
		free(r->group);
		free(r);
		return ret;
	}
	ret = position_of(g->name, g->n, &pos, &skipped, NULL);
	if (ret < 0)
		goto fail_unpin;
	r->v.start = pos.byte;
	r->v.end = VIEW_NO_END;
	r->committed = pos.byte;
	r->last_commit_ms = registry_now_ms();
	if (skipped) {
		atomic_fetch_add(&retention_skips, 1);
		diag_warn("consumer group '%s': retention deleted messages "
			  "of '%s/%s' it had not read; it starts at message "
			  "%" PRIu64,
			  r->group, g->n->parent ? g->n->parent->name : "?",
			  g->n->name, pos.offset);
		commit_at(r, pos.byte, 1); /* counted and logged once */
	} else if (ret == 1) {
		/* auto_offset_reset chose: that is the group's position
		 * from now on (latest would move on with every append). */
		commit_at(r, pos.byte, 1);
	}
	h = fs_handle_new(H_GROUP, g->n);
	if (!h) {
		ret = -ENOMEM;
		goto fail_unpin;
	}
	h->grp = r;
	follow_file_init(&h->ff, g->n, r->follow);
	h->ff.base = r->v.start;
	atomic_store(&h->ff.pos, r->v.start);
	fi->direct_io = 1; /* every read() reaches us: see the top */
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
fail_unpin:
	fs_unpin_open(g->n);
fail : {
	struct handle tmp = {.grp = r};

	r->killed = 1; /* no commit */
	fs_groups_release(&tmp);
}
	return ret;
}

/* A read of view v at file offset off. */
void fs_view_read(fuse_req_t req, const struct view *v, struct follow_file *ff,
		  uint64_t off, size_t size, int follow, int nonblock)
{
	uint64_t at = v->start + off;

	if (v->end != VIEW_NO_END)
		size = at >= v->end	    ? 0
		       : v->end - at < size ? (size_t)(v->end - at)
					    : size;
	if (follow) {
		follow_read(fs.fw, req, ff, off, size, nonblock);
		return;
	}
	if (size == 0) {
		atomic_store(&ff->pos, at);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	fs_reply_data(req, v->n, at, size, &ff->pos);
}

void fs_groups_read(fuse_req_t req, struct handle *h, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct group_open *r = h->grp;
	struct node *n = h->n;
	int due;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Auto-commit: what the reader consumed before asking for more. */
	pthread_mutex_lock(&r->lock);
	due = registry_now_ms() - r->last_commit_ms >= (int64_t)r->commit_ms;
	r->reader = fuse_req_ctx(req)->pid;
	pthread_mutex_unlock(&r->lock);
	if (due)
		commit_at(r, r->v.start + (uint64_t)off, 0);
	/* A RELEASE on another thread may free h once replied. */
	if (registry_pin(fs.reg, n) < 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	fs_view_read(req, &r->v, &h->ff, (uint64_t)off, size, r->follow,
		     !!(fi->flags & O_NONBLOCK));
	registry_unpin(fs.reg, n);
}

/* ---- extended attributes --------------------------------------------- */

static const char *const dir_attrs[] = {"auto_offset_reset", "follow",
					"commit_ms"};
static const char *const part_attrs[] = {"committed_offset", "committed_byte",
					 "lag_messages", "lag_bytes",
					 "last_commit_ms"};

static int attr_index(const char *name, const char *const *list, int count)
{
	int i;

	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)))
		return -1;
	name += strlen(XATTR_PREFIX);
	for (i = 0; i < count; i++)
		if (!strcmp(name, list[i]))
			return i;
	return -1;
}

void fs_groups_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct vobj *g = ino == REGISTRY_INO_GROUPS ? NULL : gview_of(ino);
	struct group_pos pos, last;
	struct group_opts opts;
	uint64_t v[5];
	char buf[64];
	int i, ret = -ENODATA, skipped;

	if (g && g->kind == GV_GROUP &&
	    (i = attr_index(name, dir_attrs, 3)) >= 0) {
		ret = groupstore_get_opts(store(), g->name, &opts);
		if (ret == 0)
			ret = snprintf(
				buf, sizeof(buf), "%s",
				i == 0	 ? (opts.latest ? "latest" : "earliest")
				: i == 1 ? (opts.follow ? "1" : "0")
					 : "");
		if (ret >= 0 && i == 2)
			ret = snprintf(buf, sizeof(buf), "%" PRIu32,
				       opts.commit_ms);
	} else if (g && g->kind == GV_PART &&
		   (i = attr_index(name, part_attrs, 5)) >= 0) {
		ret = position_of(g->name, g->n, &pos, &skipped, &last);
		if (ret >= 0) {
			v[0] = pos.offset;
			v[1] = pos.byte;
			v[2] = last.offset - pos.offset;
			v[3] = last.byte - pos.byte;
			v[4] = (uint64_t)pos.commit_ms;

			ret = i == 4 && ret == 1
				      ? snprintf(buf, sizeof(buf), "-1")
				      : snprintf(buf, sizeof(buf), "%" PRIu64,
						 v[i]);
		}
	}
	fs_reply_value(req, buf, ret, size);
}

/* Parse a reset value into the position it names on n. */
static int parse_reset(struct node *n, const char *val, struct group_pos *pos,
		       struct group_opts *opts)
{
	struct group_pos first, last;
	unsigned long long num;
	char *end;
	int64_t ms;
	int ret;

	log_bounds(n, &first, &last);
	if (!strcmp(val, "earliest")) {
		*pos = first;
	} else if (!strcmp(val, "latest")) {
		*pos = last;
	} else if (!strncmp(val, "offset:", 7)) {
		errno = 0;
		num = strtoull(val + 7, &end, 10);
		if (errno || end == val + 7 || *end || val[7] == '-')
			return -EINVAL;
		if (num > last.offset)
			return -ERANGE; /* past the end */
		if (num <= first.offset) {
			*pos = first; /* retention took it: Kafka's earliest */
		} else if (num == last.offset) {
			*pos = last;
		} else {
			pos->offset = num;
			ret = partition_offset_to_byte(n->part, num,
						       &pos->byte);
			if (ret < 0)
				return ret;
		}
	} else if (!strncmp(val, "time:", 5)) {
		if (timesel_parse_ms(val + 5, TIMESEL_NOZONE_UTC,
				     registry_now_ms(), &ms) < 0)
			return -EINVAL;
		ret = partition_time_to_offset(n->part, ms, &pos->offset,
					       &pos->byte);
		if (ret == -ENOENT)
			*pos = last; /* every message is older */
		else if (ret < 0)
			return ret;
	} else {
		return -EINVAL;
	}
	(void)opts;
	return 0;
}

/* A group directory option. */
static int set_dir_attr(struct vobj *g, int i, const char *val)
{
	struct group_opts opts;
	unsigned long num;
	char *end;
	int ret = groupstore_get_opts(store(), g->name, &opts);

	if (ret < 0)
		return ret;
	if (i == 0 && (!strcmp(val, "earliest") || !strcmp(val, "latest")))
		opts.latest = !strcmp(val, "latest");
	else if (i == 1 && (!strcmp(val, "0") || !strcmp(val, "1")))
		opts.follow = *val == '1';
	else if (i == 2 && *val >= '0' && *val <= '9' &&
		 (errno = 0, num = strtoul(val, &end, 10),
		  !errno && !*end && num <= 86400000UL))
		opts.commit_ms = (uint32_t)num;
	else
		return -EINVAL;
	return groupstore_set_opts(store(), g->name, &opts);
}

/* A reset of one partition's position: refused while it is being read
 * (the reader would commit over it). */
static int reset(struct vobj *g, const char *val)
{
	struct group_open *o;
	struct group_pos pos;
	int ret;

	ret = registry_part_get(fs.reg, g->n);
	if (ret < 0)
		return ret;
	ret = parse_reset(g->n, val, &pos, NULL);
	registry_part_put(fs.reg, g->n);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&gs_lock);
	for (o = readers; o; o = o->next)
		if (o->v.n == g->n && !strcmp(o->group, g->name))
			break;
	pos.commit_ms = registry_now_ms();
	ret = o ? -EBUSY
		: groupstore_commit(store(), g->name,
				    registry_st_ino(fs.reg, g->n), &pos);
	pthread_mutex_unlock(&gs_lock);
	if (ret == 0)
		diag_info("consumer group '%s': '%s/%s' reset to %s (message "
			  "%" PRIu64 ")",
			  g->name, g->n->parent ? g->n->parent->name : "?",
			  g->n->name, val, pos.offset);
	return ret;
}

void fs_groups_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size)
{
	struct vobj *g = ino == REGISTRY_INO_GROUPS ? NULL : gview_of(ino);
	char val[128], shown[DIAG_PRINTABLE_MAX];
	int i, ret = -ENOTSUP;

	if (size >= sizeof(val)) {
		ret = -EINVAL;
		goto out;
	}
	memcpy(val, value, size);
	val[size] = '\0';
	while (size && val[size - 1] == '\n')
		val[--size] = '\0';
	if (g && g->kind == GV_GROUP &&
	    (i = attr_index(name, dir_attrs, 3)) >= 0)
		ret = set_dir_attr(g, i, val);
	else if (g && g->kind == GV_PART && !strcmp(name, XATTR_PREFIX "reset"))
		ret = reset(g, val);
	else if (g && g->kind == GV_PART &&
		 attr_index(name, part_attrs, 5) >= 0)
		ret = -EPERM; /* figures: set a position with reset */
out:
	if (ret < 0 && !strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)))
		diag_info("refused attribute '%s' = '%s' on consumer group "
			  "'%s': %s",
			  name, diag_printable(val, shown, sizeof(shown)),
			  g ? g->name : GROUPSTORE_DIR, strerror(-ret));
	fuse_reply_err(req, -ret);
}

void fs_groups_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct vobj *g = ino == REGISTRY_INO_GROUPS ? NULL : gview_of(ino);
	const char *const *list = NULL;
	char buf[512];
	int i, count = 0, len = 0;

	if (g && g->kind == GV_GROUP)
		list = dir_attrs, count = 3;
	else if (g && g->kind == GV_PART)
		list = part_attrs, count = 5;
	for (i = 0; i < count; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len,
				XATTR_PREFIX "%s", list[i]) +
		       1;
	fs_reply_value(req, buf, len, size);
}

/* Group positions that retention passed so far. */
uint64_t fs_groups_retention_skips(void)
{
	return atomic_load(&retention_skips);
}
