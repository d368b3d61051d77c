/*
 * fs_snap.c - consistent snapshots as directories:
 * MNT/.snapshot/<name>/<topic>/<partition>, each partition file the live
 * partition's bytes up to the end recorded when the snapshot was taken,
 * read-only.  mkdir in .snapshot takes one (registry_snap_create), rmdir
 * releases it; nothing else changes anything below it (EROFS, logged).
 *
 * The inodes below .snapshot are view objects (fs_vobj.c) tagged
 * SNAP_TAG, named "<snapshot>", "<snapshot>/<topic>" and
 * "<snapshot>/<topic>/<partition>"; a partition's object holds a lookup
 * on the live partition, found by the stored inode number the snapshot
 * recorded, so a rename of the live partition changes nothing here (nor
 * its deletion: the registry keeps a deleted partition a snapshot
 * shows).
 * Names and sizes come from the snapshot's file (snapstore.h), times are
 * the snapshot's creation time, so rsync -a sees stable files.  A file
 * is read through the live log, so compressed segments read the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "diag.h"
#include "fs_int.h"
#include "snapstore.h"
#include "xattr.h"

enum sview_kind { SV_SNAP, SV_TOPIC, SV_PART };

static struct vobj_list sviews = {PTHREAD_MUTEX_INITIALIZER, NULL};

static struct vobj *sview_of(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_SNAPSHOT
		       ? NULL
		       : (struct vobj *)(uintptr_t)(ino & ~(fuse_ino_t)SNAP_TAG);
}

static fuse_ino_t ino_of(struct vobj *o)
{
	return (fuse_ino_t)(uintptr_t)o | SNAP_TAG;
}

static struct snapstore *store(void)
{
	return registry_snaps(fs.reg);
}

void fs_snap_forget(fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != REGISTRY_INO_SNAPSHOT)
		vobj_forget(&sviews, sview_of(ino), nlookup);
}

/* A view object's name split at '/': snapshot, topic, partition (the
 * names never hold a '/'). */
struct spath {
	char buf[SNAPSTORE_NAME_MAX + 2 * SNAPSTORE_PART_NAME_MAX + 3];
	const char *snap, *topic, *part;
};

static void spath_of(const struct vobj *o, struct spath *p)
{
	char *slash;

	snprintf(p->buf, sizeof(p->buf), "%s", o->name);
	p->snap = p->buf;
	p->topic = p->part = NULL;
	if ((slash = strchr(p->buf, '/'))) {
		*slash = '\0';
		p->topic = slash + 1;
		if ((slash = strchr(slash + 1, '/'))) {
			*slash = '\0';
			p->part = slash + 1;
		}
	}
}

/* The stat number of an entry: the view's bit, the path's hash, and the
 * live partition's own number (0 for directories). */
static uint64_t sview_st_ino(const char *path, uint64_t ino)
{
	uint64_t h = crc32c(0, path, strlen(path));

	return REGISTRY_INO_SNAP_VIEW |
	       (((h << 28) ^ ino) & (REGISTRY_INO_SNAP_VIEW - 1));
}

/* A topic of snapshot name: whether it has one, and listing them. */
struct topics {
	const char *want; /* set: stop at it */
	char last[SNAPSTORE_PART_NAME_MAX + 1];
	struct dirbuf *d;
	const char *snap;
};

static int topic_cb(void *arg, const struct snap_part *p)
{
	struct topics *t = arg;
	char path[sizeof(((struct spath *)0)->buf)];

	if (t->want)
		return !strcmp(p->topic, t->want);
	if (!strcmp(p->topic, t->last))
		return 0; /* sorted: each topic once */
	snprintf(t->last, sizeof(t->last), "%s", p->topic);
	snprintf(path, sizeof(path), "%s/%s", t->snap, p->topic);
	return fs_dirbuf_add(t->d, p->topic, sview_st_ino(path, 0) &
						     ~REGISTRY_INO_SNAP_VIEW,
			     NODE_TOPIC);
}

/* Attributes of o (NULL: .snapshot itself). */
static int fill_stat(struct vobj *o, struct stat *st)
{
	struct snap_part sp;
	struct spath p;
	int64_t created;
	size_t nparts;
	int ret;

	fs_view_dir_attr(REGISTRY_INO_SNAPSHOT, st);
	if (!o) {
		/* The root's permissions: who may make topics may take and
		 * release snapshots (default_permissions checks them). */
		registry_stat(fs.reg, node_of(REGISTRY_INO_ROOT), st);
		st->st_mode = S_IFDIR | (st->st_mode & 0777);
		st->st_ino = REGISTRY_INO_SNAPSHOT;
		return 0;
	}
	spath_of(o, &p);
	ret = snapstore_info(store(), p.snap, &created, &nparts);
	if (ret < 0)
		return ret; /* released under the kernel's feet */
	if (o->kind == SV_PART) {
		ret = snapstore_find(store(), p.snap, p.topic, p.part, &sp);
		if (ret < 0)
			return ret;
		if (o->n)
			registry_stat(fs.reg, o->n, st);
		/* Who may read the partition may read its past. */
		st->st_mode = S_IFREG | (st->st_mode & 0444);
		st->st_nlink = 1;
		st->st_size = (off_t)sp.end_byte;
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_ino = sview_st_ino(o->name, sp.ino);
	} else {
		st->st_nlink = 2;
		st->st_size = 0;
		st->st_ino = sview_st_ino(o->name, 0);
	}
	st->st_mtim.tv_sec = created / 1000;
	st->st_mtim.tv_nsec = (created % 1000) * 1000000;
	st->st_ctim = st->st_atim = st->st_mtim;
	return 0;
}

static void reply_entry(fuse_req_t req, struct vobj *o)
{
	struct fuse_entry_param e;
	int ret;

	memset(&e, 0, sizeof(e));
	if (!o) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = fill_stat(o, &e.attr);
	e.ino = ino_of(o);
	if (ret < 0 || fuse_reply_entry(req, &e) < 0) {
		if (ret < 0)
			fuse_reply_err(req, -ret);
		fs_snap_forget(e.ino, 1);
	}
}

/* The object for name below dir (a snapshot or a topic of one). */
static int child(struct vobj *dir, const char *name, struct vobj **out)
{
	char path[sizeof(((struct spath *)0)->buf)];
	struct topics t = {name, "", NULL, NULL};
	struct snap_part sp;
	struct node *n = NULL;
	struct spath p;
	int ret;

	spath_of(dir, &p);
	if (strchr(name, '/') ||
	    snprintf(path, sizeof(path), "%s/%s", dir->name, name) >=
		    (int)sizeof(path))
		return -ENOENT;
	if (dir->kind == SV_SNAP) {
		t.snap = p.snap;
		ret = snapstore_parts(store(), p.snap, topic_cb, &t);
		if (ret <= 0)
			return ret < 0 ? ret : -ENOENT;
		*out = vobj_get(&sviews, SV_TOPIC, path, NULL);
		return *out ? 0 : -ENOMEM;
	}
	ret = snapstore_find(store(), p.snap, p.topic, name, &sp);
	if (ret < 0)
		return ret;
	/* The live partition by its stored number (a rename keeps it). */
	ret = registry_lookup_ino(fs.reg, sp.ino, &n);
	if (ret < 0) {
		diag_err("snapshot '%s': partition '%s/%s' is gone (ENOENT)",
			 p.snap, p.topic, name);
		return ret;
	}
	*out = vobj_get(&sviews, SV_PART, path, n);
	return *out ? 0 : -ENOMEM;
}

void fs_snap_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vobj *dir = sview_of(parent), *o = NULL;
	int64_t created;
	size_t nparts;
	struct stat st;
	int ret;

	if (parent == REGISTRY_INO_ROOT) { /* .snapshot itself */
		fill_stat(NULL, &st);
		fs_reply_view_entry(req, REGISTRY_INO_SNAPSHOT, &st, NULL);
		return;
	}
	if (!dir) {
		if (strchr(name, '/') ||
		    snapstore_info(store(), name, &created, &nparts) < 0) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		o = vobj_get(&sviews, SV_SNAP, name, NULL);
	} else if (dir->kind == SV_PART) {
		fuse_reply_err(req, ENOTDIR);
		return;
	} else if ((ret = child(dir, name, &o)) < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, o);
}

void fs_snap_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;
	int ret = fill_stat(sview_of(ino), &st);

	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, 0);
}

static int list_snap_cb(void *arg, const char *name, int64_t created_ms,
			size_t nparts, uint64_t bytes)
{
	(void)created_ms;
	(void)nparts;
	(void)bytes;
	return fs_dirbuf_add(arg, name,
			     sview_st_ino(name, 0) & ~REGISTRY_INO_SNAP_VIEW,
			     NODE_TOPIC);
}

struct parts {
	struct dirbuf *d;
	const char *snap, *topic;
};

static int list_part_cb(void *arg, const struct snap_part *sp)
{
	char path[sizeof(((struct spath *)0)->buf)];
	struct parts *l = arg;

	if (strcmp(sp->topic, l->topic))
		return 0;
	snprintf(path, sizeof(path), "%s/%s/%s", l->snap, l->topic, sp->part);
	return fs_dirbuf_add(l->d, sp->part,
			     sview_st_ino(path, sp->ino) &
				     ~REGISTRY_INO_SNAP_VIEW,
			     NODE_PARTITION);
}

void fs_snap_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf d = {req, NULL, 0, 0, 0, 0, 0, 0};
	struct vobj *o = sview_of(ino);
	struct topics t = {NULL, "", &d, NULL};
	struct parts l = {&d, NULL, NULL};
	struct spath p;
	int ret;

	if (o && o->kind == SV_PART) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fs_dirbuf_add(&d, ".",
		      o ? sview_st_ino(o->name, 0) : REGISTRY_INO_SNAPSHOT,
		      NODE_TOPIC);
	fs_dirbuf_add(&d, "..", REGISTRY_INO_ROOT, NODE_ROOT);
	d.ino_or = REGISTRY_INO_SNAP_VIEW;
	if (!o) {
		ret = snapstore_list(store(), list_snap_cb, &d);
	} else {
		spath_of(o, &p);
		t.snap = l.snap = p.snap;
		l.topic = p.topic;
		ret = snapstore_parts(store(), p.snap,
				      o->kind == SV_SNAP ? topic_cb
							 : list_part_cb,
				      o->kind == SV_SNAP ? (void *)&t
							 : (void *)&l);
	}
	fs_dirbuf_open(req, fi, &d, ret < 0 ? ret : 0);
}

int fs_snap_open(fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vobj *o = sview_of(ino);
	struct handle *h = NULL;
	struct snap_part sp;
	struct spath p;
	int ret;

	if (!o || o->kind != SV_PART)
		return -EISDIR;
	spath_of(o, &p);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		diag_info("refused writing open of '.snapshot/%s': "
			  "read-only (EROFS)",
			  o->name);
		return -EROFS;
	}
	ret = snapstore_find(store(), p.snap, p.topic, p.part, &sp);
	if (ret < 0)
		return ret;
	ret = fs_pin_open(o->n);
	if (ret < 0)
		return ret;
	h = fs_handle_new(H_AT, o->n);
	if (!h) {
		fs_unpin_open(o->n);
		return -ENOMEM;
	}
	/* The file's offsets are the partition's: the same hole below
	 * the start, the same bytes up to the cut. */
	h->at.n = o->n;
	h->at.start = 0;
	h->at.end = sp.end_byte;
	follow_file_init(&h->ff, o->n, 0);
	/* Its own inode: no page of the live file is shared, and none of
	 * an older snapshot of the same name may be kept. */
	fi->direct_io = 0;
	fi->keep_cache = 0;
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
}

/* ---- the namespace: mkdir and rmdir in .snapshot, nothing else ------- */

void fs_snap_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int ret;

	if (parent != REGISTRY_INO_SNAPSHOT) {
		fs_snap_refuse(req, parent, "mkdir", name);
		return;
	}
	ret = registry_snap_create(fs.reg, name);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, vobj_get(&sviews, SV_SNAP, name, NULL));
}

void fs_snap_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != REGISTRY_INO_SNAPSHOT) {
		fs_snap_refuse(req, parent, "rmdir", name);
		return;
	}
	fuse_reply_err(req, -registry_snap_remove(fs.reg, name));
}

void fs_snap_refuse(fuse_req_t req, fuse_ino_t ino, const char *what,
		    const char *name)
{
	char shown[DIAG_PRINTABLE_MAX];
	struct vobj *o = sview_of(ino);

	diag_info("refused %s of '.snapshot%s%s/%s': snapshots are read-only "
		  "(EROFS)",
		  what, o ? "/" : "", o ? o->name : "",
		  name ? diag_printable(name, shown, sizeof(shown)) : "");
	fuse_reply_err(req, EROFS);
}

/* ---- attributes ------------------------------------------------------ */

static const char *const snap_attrs[] = {"pinned_bytes", "created_ms",
					 "partitions"};

void fs_snap_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		      size_t size)
{
	struct vobj *o = sview_of(ino);
	int64_t created;
	size_t nparts, i;
	char buf[64];
	int ret = -ENODATA;

	if (o && o->kind == SV_SNAP &&
	    !strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) &&
	    snapstore_info(store(), o->name, &created, &nparts) == 0)
		for (i = 0; i < 3; i++) {
			if (strcmp(name + strlen(XATTR_PREFIX), snap_attrs[i]))
				continue;
			ret = snprintf(buf, sizeof(buf), "%" PRIu64,
				       i == 0	? snapstore_bytes(store(), o->name)
				       : i == 1 ? (uint64_t)created
						: (uint64_t)nparts);
		}
	fs_reply_value(req, buf, ret, size);
}

void fs_snap_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct vobj *o = sview_of(ino);
	char buf[128];
	int len = 0;
	size_t i;

	for (i = 0; o && o->kind == SV_SNAP && i < 3; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len,
				XATTR_PREFIX "%s", snap_attrs[i]) +
		       1;
	fs_reply_value(req, buf, len, size);
}
