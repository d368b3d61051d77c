/*
 * fs_ops.c - the FUSE layer's operations table and lifecycle, and the
 * operations on names: lookup, attributes, the namespace, directories,
 * inode flags and extended attributes.
 *
 * Every handler resolves its inode to a registry node, calls the registry
 * and replies; only the FUSE layer (fs_*.c) and fluxfs.c include
 * fuse_lowlevel.h.  Files are handled in fs_io.c, the kernel's caches in
 * fs_coherence.c, the follow view's parked reads in fs_follow.c.  Reader
 * opens use the page cache with keep_cache, writer opens direct_io, except
 * that a page-cache reader and a direct_io writer are never open at once
 * (fs_coherence.c).  No writeback cache, no auto_inval_data: both break
 * appends (O_APPEND, message boundaries) or drop every cache on each size
 * change.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "fs.h"
#include "fs_int.h"
#include "maint.h"
#include "notify.h"
#include "mirror.h"
#include "xattr.h"

#define METRICS_NAME ".metrics"
#define FOLLOW_NAME ".follow"
#define PRODUCE_NAME ".produce"
#define GROUPS_NAME ".groups"
#define AT_NAME ".at"
#define SNAPSHOT_NAME ".snapshot"
#define DRAIN_SECONDS 2

/* The mount's one state struct. */
struct fs_state fs = {.hlock = PTHREAD_MUTEX_INITIALIZER};

/* ---- attributes ------------------------------------------------------ */

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

static void reply_entry(fuse_req_t req, struct node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	fs_node_attr(n, &e.attr);
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
	conn->max_read = FS_MAX_READ; /* as the mount option says (fs.h) */
	/* Keep the largest readahead the kernel offers (we cannot raise it). */
}

/* ---- the follow view ------------------------------------------------- */

/* Attributes of a follow-view inode: those of the node it mirrors (same
 * mode and owner, so default_permissions judges it alike); .follow itself
 * is a read-only copy of the root. */
static int follow_attr(fuse_ino_t ino, struct stat *st)
{
	struct node *n = follow_node(ino);
	int ret;

	if (!n) {
		ret = fs_view_dir_attr(REGISTRY_INO_FOLLOW, st);
	} else {
		ret = registry_stat(fs.reg, n, st);
		st->st_ino |= REGISTRY_INO_FOLLOW_VIEW;
	}
	return ret;
}

/* A view's directory (.follow, .produce): a read-only copy of the
 * root's attributes under inode ino. */
int fs_view_dir_attr(fuse_ino_t ino, struct stat *st)
{
	int ret = registry_stat(fs.reg, node_of(REGISTRY_INO_ROOT), st);

	st->st_mode = S_IFDIR | 0555;
	st->st_ino = ino;
	return ret;
}

/* Answer a lookup of view inode ino (attributes st) with nothing cached:
 * a name that goes must stop resolving at once.  If the reply fails, the
 * lookup count it took on n (NULL: none) is dropped. */
void fs_reply_view_entry(fuse_req_t req, fuse_ino_t ino, const struct stat *st,
			 struct node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr = *st;
	e.ino = ino;
	if (fuse_reply_entry(req, &e) < 0 && n)
		registry_forget(fs.reg, n, 1);
}

/* Follow entries are never cached, also because tail -f needs a fresh
 * st_size. */
static void reply_follow_entry(fuse_req_t req, fuse_ino_t ino, struct node *n)
{
	struct stat st;

	follow_attr(ino, &st);
	fs_reply_view_entry(req, ino, &st, n);
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
	if (is_produce_ino(parent)) {
		fs_produce_lookup(req, parent, name);
		return;
	}
	if (parent == REGISTRY_INO_ROOT && !strcmp(name, PRODUCE_NAME)) {
		fs_produce_dir_entry(req);
		return;
	}
	if (is_group_ino(parent) ||
	    (parent == REGISTRY_INO_ROOT && !strcmp(name, GROUPS_NAME))) {
		fs_groups_lookup(req, parent, name);
		return;
	}
	if (is_at_ino(parent) ||
	    (parent == REGISTRY_INO_ROOT && !strcmp(name, AT_NAME))) {
		fs_at_lookup(req, parent, name);
		return;
	}
	if (is_snap_ino(parent) ||
	    (parent == REGISTRY_INO_ROOT && !strcmp(name, SNAPSHOT_NAME))) {
		fs_snap_lookup(req, parent, name);
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

/* A node's lookup count is shared by its inode, its follow inode and
 * its produce inode. */
static struct node *counted_node(fuse_ino_t ino)
{
	if (is_produce_ino(ino))
		return produce_node(ino);
	return is_follow_ino(ino) ? follow_node(ino) : node_of(ino);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = counted_node(ino);

	if (is_group_ino(ino))
		fs_groups_forget(ino, nlookup);
	else if (is_at_ino(ino))
		fs_at_forget(ino, nlookup);
	else if (is_snap_ino(ino))
		fs_snap_forget(ino, nlookup);
	else if (n)
		registry_forget(fs.reg, n, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct node *n;
	size_t i;

	for (i = 0; i < count; i++) {
		if (is_group_ino(forgets[i].ino)) {
			fs_groups_forget(forgets[i].ino, forgets[i].nlookup);
			continue;
		}
		if (is_at_ino(forgets[i].ino)) {
			fs_at_forget(forgets[i].ino, forgets[i].nlookup);
			continue;
		}
		if (is_snap_ino(forgets[i].ino)) {
			fs_snap_forget(forgets[i].ino, forgets[i].nlookup);
			continue;
		}
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
	if (is_produce_ino(ino)) {
		fs_produce_attr(ino, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (is_group_ino(ino)) {
		fs_groups_getattr(req, ino);
		return;
	}
	if (is_at_ino(ino)) {
		fs_at_getattr(req, ino, fi);
		return;
	}
	if (is_snap_ino(ino)) {
		fs_snap_getattr(req, ino);
		return;
	}
	if (!n) {
		metrics_stat(&st);
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
		return;
	}
	fs_node_attr(n, &st);
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
	if (is_produce_ino(ino)) {
		fs_produce_setattr(req, ino, to_set);
		return;
	}
	if (is_snap_ino(ino)) {
		fs_snap_refuse(req, ino, "setattr", NULL);
		return;
	}
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
	fs_node_attr(n, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* ---- namespace ------------------------------------------------------- */

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct node *dir = node_of(parent), *n;
	int ret;

	count_request();
	if (is_group_ino(parent)) {
		fs_groups_mkdir(req, parent, name);
		return;
	}
	if (is_at_ino(parent)) {
		fuse_reply_err(req, EROFS); /* time views are read-only */
		return;
	}
	if (is_snap_ino(parent)) {
		fs_snap_mkdir(req, parent, name);
		return;
	}
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
	if (is_snap_ino(parent)) {
		fs_snap_refuse(req, parent, "mknod", name);
		return;
	}
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
	if (is_group_ino(parent)) {
		fuse_reply_err(req, EPERM); /* positions go by reset or rmdir */
		return;
	}
	if (is_at_ino(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (is_snap_ino(parent)) {
		fs_snap_refuse(req, parent, "unlink", name);
		return;
	}
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
	if (is_group_ino(parent)) {
		fs_groups_rmdir(req, parent, name);
		return;
	}
	if (is_at_ino(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (is_snap_ino(parent)) {
		fs_snap_rmdir(req, parent, name);
		return;
	}
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
	if (is_snap_ino(parent)) {
		fs_snap_refuse(req, parent, "symlink", name);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	count_request();
	if (is_snap_ino(newparent)) {
		fs_snap_refuse(req, newparent, "link", newname);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct node *dir = node_of(parent);
	struct node *ndir = node_of(newparent);

	count_request();
	if (is_snap_ino(parent) || is_snap_ino(newparent)) {
		fs_snap_refuse(req, is_snap_ino(parent) ? parent : newparent,
			       "rename", name);
		return;
	}
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

/* ---- inode flags ----------------------------------------------------- */

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

/* ---- directories ----------------------------------------------------- */

int fs_dirbuf_add(void *arg, const char *name, uint64_t ino,
		  enum node_kind kind)
{
	struct dirbuf *d = arg;
	struct stat st;
	size_t need;
	char *nb;

	memset(&st, 0, sizeof(st));
	st.st_ino =
		(d->follow ? ino | REGISTRY_INO_FOLLOW_VIEW : ino) | d->ino_or;
	st.st_mode = kind == NODE_PARTITION || ino == REGISTRY_INO_METRICS
			     ? S_IFREG
			     : S_IFDIR;
	if (d->produce && kind == NODE_TOPIC) {
		st.st_ino = ino | REGISTRY_INO_PRODUCE_VIEW;
		st.st_mode = S_IFREG;
	}
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

void fs_dirbuf_open(fuse_req_t req, struct fuse_file_info *fi, struct dirbuf *d,
		    int ret)
{
	struct handle *h;

	if (ret == 0)
		ret = d->err;
	if (ret == 0)
		ret = fs_listing_hold(d->len);
	h = ret == 0 ? fs_handle_new(H_DIR, NULL) : NULL;
	if (!h) {
		if (ret == 0) /* held, but no handle */
			fs_listing_release(d->len);
		free(d->buf);
		fuse_reply_err(req, ret < 0 ? -ret : ENOMEM);
		return;
	}
	h->buf = d->buf;
	h->len = d->len;
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) < 0)
		fs_handle_free(h);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	struct dirbuf d = {req, NULL, 0, 0, 0, 0, 0, 0};

	int ret, follow = is_follow_ino(ino);

	count_request();
	/* the listings held open leave no room: refuse before building */
	if (!fs_listing_room()) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (is_group_ino(ino)) {
		fs_groups_opendir(req, ino, fi);
		return;
	}
	if (is_at_ino(ino)) {
		fs_at_opendir(req, ino, fi);
		return;
	}
	if (is_snap_ino(ino)) {
		fs_snap_opendir(req, ino, fi);
		return;
	}
	if (follow)
		n = ino == REGISTRY_INO_FOLLOW ? node_of(REGISTRY_INO_ROOT)
					       : follow_node(ino);
	if (ino == REGISTRY_INO_PRODUCE) {
		n = node_of(REGISTRY_INO_ROOT);
		d.produce = 1;
	}
	if (!n || n->kind == NODE_PARTITION) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* Snapshot the listing now, so offsets stay stable. */
	fs_dirbuf_add(&d, ".",
		      d.produce	  ? REGISTRY_INO_PRODUCE
		      : !follow	  ? registry_st_ino(fs.reg, n)
		      : ino == REGISTRY_INO_FOLLOW
			      ? REGISTRY_INO_FOLLOW
			      : registry_st_ino(fs.reg, n) |
					REGISTRY_INO_FOLLOW_VIEW,
		      NODE_TOPIC);
	fs_dirbuf_add(&d, "..",
		      follow && ino != REGISTRY_INO_FOLLOW ? REGISTRY_INO_FOLLOW
							   : REGISTRY_INO_ROOT,
		      NODE_ROOT);
	if (n->kind == NODE_ROOT && !follow && !d.produce) {
		fs_dirbuf_add(&d, METRICS_NAME, REGISTRY_INO_METRICS,
			      NODE_PARTITION);
		fs_dirbuf_add(&d, FOLLOW_NAME, REGISTRY_INO_FOLLOW, NODE_TOPIC);
		fs_dirbuf_add(&d, PRODUCE_NAME, REGISTRY_INO_PRODUCE,
			      NODE_TOPIC);
		fs_dirbuf_add(&d, GROUPS_NAME, REGISTRY_INO_GROUPS, NODE_TOPIC);
	}
	d.follow = follow;
	ret = registry_list(fs.reg, n, fs_dirbuf_add, &d);
	fs_dirbuf_open(req, fi, &d, ret);
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
		fs_reply_snapshot(req, h->buf + off,
				  h->len - off < size ? h->len - off : size);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	fs_handle_free(handle_of(fi));
	fuse_reply_err(req, 0);
}

/* ---- xattrs ---------------------------------------------------------- */

void fs_reply_value(fuse_req_t req, const char *buf, int len, size_t size)
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
	if (is_group_ino(ino)) {
		fs_groups_getxattr(req, ino, name, size);
		return;
	}
	if (is_snap_ino(ino)) {
		fs_snap_getxattr(req, ino, name, size);
		return;
	}
	if (!n || n->kind == NODE_ROOT) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	ret = xattr_produce_parse(name, n->kind == NODE_PARTITION);
	if (ret >= 0) {
		ret = registry_produce_get(fs.reg, n, ret, buf, sizeof(buf));
		fs_reply_value(req, buf, ret, size);
		return;
	}
	ret = mirror_xattr_get(fs.reg, n, name, buf, sizeof(buf));
	if (ret != -ENODATA)
		goto reply; /* the Kafka mirror's */
	ret = xattr_parse(name, n->kind == NODE_PARTITION, &x);
	if (ret == -ENODATA) {
		ret = registry_query(fs.reg, n, name, buf, sizeof(buf));
	} else if (ret == 0 && x.is_config) {
		ret = registry_config_get(fs.reg, n, x.key, buf, sizeof(buf));
	} else if (ret == 0 && x.key == XATTR_SNAPSHOT_PINNED_BYTES) {
		ret = snprintf(buf, sizeof(buf), "%llu",
			       (unsigned long long)registry_snap_pinned(fs.reg,
									n));
	} else if (ret == 0) {
		ret = registry_info(fs.reg, n, &info);
		if (ret == 0)
			ret = xattr_format_info(&info, x.key, buf, sizeof(buf));
	}
reply:
	fs_reply_value(req, buf, ret, size);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct node *n = node_of(ino);
	struct xattr_name x;
	int ret;

	count_request();
	if (is_group_ino(ino)) {
		fs_groups_setxattr(req, ino, name, value, size);
		return;
	}
	if (is_snap_ino(ino)) {
		fs_snap_refuse(req, ino, "setxattr", name);
		return;
	}
	if (!n || n->kind == NODE_ROOT) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	ret = xattr_produce_parse(name, n->kind == NODE_PARTITION);
	if (ret >= 0) {
		ret = registry_produce_set(fs.reg, n, ret, value, size,
					   fuse_req_ctx(req)->uid,
					   fuse_req_ctx(req)->gid);
		fuse_reply_err(req, -ret);
		return;
	}
	ret = mirror_xattr_set(fs.reg, n, name, value, size);
	if (ret != -ENODATA) {
		fuse_reply_err(req, -ret); /* the Kafka mirror's */
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
	if (is_group_ino(ino)) {
		fs_groups_listxattr(req, ino, size);
		return;
	}
	if (is_snap_ino(ino)) {
		fs_snap_listxattr(req, ino, size);
		return;
	}
	if (!n || n->kind == NODE_ROOT) {
		fs_reply_value(req, buf, 0, size);
		return;
	}
	len = xattr_list(n->kind == NODE_PARTITION, buf, sizeof(buf));
	if (len >= 0) {
		size_t all = mirror_xattr_list(n, buf, sizeof(buf), (size_t)len);

		len = all > sizeof(buf) ? -ERANGE : (int)all;
	}
	fs_reply_value(req, buf, len, size);
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
	ret = mirror_xattr_remove(fs.reg, n, name);
	if (ret != -ENOSYS) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = xattr_produce_parse(name, n->kind == NODE_PARTITION);
	if (ret >= 0) {
		fuse_reply_err(req, -registry_produce_unset(fs.reg, n, ret));
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
	fs.reg = reg;
	fs_coherence_init();
}

/* The follow view talks to the kernel through libfuse itself. */
static const struct follow_ops follow_fuse_ops = {
	.reply_data = fs_reply_data,
	.reply_buf = fuse_reply_buf,
	.reply_err = fuse_reply_err,
	.reply_poll = fuse_reply_poll,
	.req_interrupt_func = fuse_req_interrupt_func,
	.req_interrupted = fuse_req_interrupted,
	.notify_poll = fuse_lowlevel_notify_poll,
	.pollhandle_destroy = fuse_pollhandle_destroy,
};

/* Start the notifier and maintenance threads for session se. */
int fs_start(struct fuse_session *se)
{
	int ret;

	fs.se = se;
	ret = follow_new(&follow_fuse_ops, &fs.fw);
	if (ret < 0)
		return ret;
	ret = notifier_start(fs_send_inval, fs_send_delete, NULL, &fs.nt);
	if (ret < 0)
		return ret;
	return maint_start(fs.reg, &fs.maint);
}

static int follow_handles(void)
{
	struct handle *h;
	int count = 0;

	pthread_mutex_lock(&fs.hlock);
	for (h = fs.handles; h; h = h->next)
		count += h->kind == H_FOLLOW ||
			 (h->kind == H_GROUP && h->ff.view);
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
		    h->kind == H_FOLLOW || h->kind == H_PRODUCE ||
		    h->kind == H_GROUP || h->kind == H_AT)
			fs_release_handle(h);
		else
			fs_handle_free(h);
	}
	maint_stop(fs.maint);
	fs.maint = NULL;
	notifier_stop(fs.nt);
	fs.nt = NULL;
	follow_free(fs.fw);
	fs.fw = NULL;
	fs.se = NULL;
}
