/*
 * fs_at.c - time-addressed views: MNT/.at/<when>/<topic>/<partition>, a
 * partition's bytes from the first message at or after a time (or a
 * message offset), up to a second one or to the log's end; read-only.
 *
 * <when> is the grammar of timesel.h (fluxfs(8)); a name outside it is
 * ENOENT with one log line.  The view's inodes are view objects
 * (fs_vobj.c) tagged AT_TAG and named by their <when>, parsed again
 * wherever it is used (a few dozen bytes).  An open fixes the bytes the
 * file shows (a relative time is measured then) and pins the partition's
 * log open until the release; a stat without an open file resolves them
 * anew.  An open-ended view's size follows the log's end, so tail -f
 * catches up and then follows; a bounded one ends exactly at the end of
 * the last message before its second point.  Files are read with
 * direct_io: the bytes of one name change with time, so no page of them
 * may be cached.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "diag.h"
#include "fs_int.h"
#include "timesel.h"

enum aview_kind { AV_WHEN, AV_TOPIC, AV_PART };

static struct vobj_list aviews = {PTHREAD_MUTEX_INITIALIZER, NULL};

static struct vobj *aview_of(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_AT
		       ? NULL
		       : (struct vobj *)(uintptr_t)(ino & ~(fuse_ino_t)AT_TAG);
}

static fuse_ino_t ino_of(struct vobj *a)
{
	return (fuse_ino_t)(uintptr_t)a | AT_TAG;
}

void fs_at_forget(fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != REGISTRY_INO_AT)
		vobj_forget(&aviews, aview_of(ino), nlookup);
}

/* The bytes view a shows of its partition now: the log pinned open for
 * the lookups.  Its end is the log's end when open-ended. */
static int resolve(struct vobj *a, struct view *v)
{
	struct timesel sel;
	int ret;

	if (timesel_parse(a->name, &sel) < 0)
		return -ENOENT; /* checked at lookup: cannot happen */
	ret = registry_part_get(fs.reg, a->n);
	if (ret < 0)
		return ret;
	v->n = a->n;
	timesel_resolve(a->n->part, &sel, registry_now_ms(), &v->start,
			&v->end);
	registry_part_put(fs.reg, a->n);
	return 0;
}

/* A view file's size: what it shows of the log the kernel may see. */
static off_t view_size(const struct view *v)
{
	uint64_t end = atomic_load(&v->n->fs->shown_end);

	if (v->end != VIEW_NO_END && v->end < end)
		end = v->end;
	return end > v->start ? (off_t)(end - v->start) : 0;
}

/* Attributes of a (NULL: .at itself); v: the open file's view, if any. */
static void fill_stat(struct vobj *a, const struct view *v, struct stat *st)
{
	struct view now;

	if (!a) {
		fs_view_dir_attr(REGISTRY_INO_AT, st);
		return;
	}
	registry_stat(fs.reg, a->n ? a->n : node_of(REGISTRY_INO_ROOT), st);
	st->st_ino = vobj_st_ino(a, REGISTRY_INO_AT_VIEW);
	if (a->kind != AV_PART) {
		st->st_mode = S_IFDIR | (a->n ? st->st_mode & 0555 : 0555);
		st->st_nlink = 2;
		st->st_size = 0;
		return;
	}
	/* The partition's read bits: who may read it may read its past. */
	st->st_mode = S_IFREG | (st->st_mode & 0444);
	st->st_nlink = 1;
	if (!v && resolve(a, &now) == 0)
		v = &now;
	st->st_size = v ? view_size(v) : 0;
	st->st_blocks = (st->st_size + 511) / 512;
}

void fs_at_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vobj *dir = aview_of(parent), *a;
	char shown[DIAG_PRINTABLE_MAX];
	struct fuse_entry_param e;
	struct timesel sel;
	int ret;

	memset(&e, 0, sizeof(e));
	if (parent == REGISTRY_INO_ROOT) { /* .at itself */
		fill_stat(NULL, NULL, &e.attr);
		fs_reply_view_entry(req, REGISTRY_INO_AT, &e.attr, NULL);
		return;
	}
	if (!dir) {
		if (timesel_parse(name, &sel) < 0) {
			/* A user's name: control bytes must not reach the
			 * log. */
			diag_printable(name, shown, sizeof(shown));
			diag_info("'.at/%s': not a time, time range or "
				  "offset (see fluxfs(8))",
				  shown);
			fuse_reply_err(req, ENOENT);
			return;
		}
		a = vobj_get(&aviews, AV_WHEN, name, NULL);
	} else if (dir->kind == AV_PART) {
		fuse_reply_err(req, ENOTDIR);
		return;
	} else {
		ret = vobj_child(&aviews, dir,
				 dir->n ? dir->n : node_of(REGISTRY_INO_ROOT),
				 name, dir->kind == AV_WHEN ? AV_TOPIC : AV_PART,
				 &a);
		if (ret < 0) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	if (!a) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Nothing cached: a relative view's size changes by itself.  A
	 * reply that fails (interrupted) takes no lookup. */
	fill_stat(a, NULL, &e.attr);
	e.ino = ino_of(a);
	if (fuse_reply_entry(req, &e) < 0)
		fs_at_forget(e.ino, 1);
}

void fs_at_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = fi ? handle_of(fi) : NULL;
	struct stat st;

	/* fstat of an open view: the bytes fixed at its open. */
	fill_stat(aview_of(ino), h && h->kind == H_AT ? &h->at : NULL, &st);
	fuse_reply_attr(req, &st, 0);
}

void fs_at_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf d = {req, NULL, 0, 0, 0, 0, 0, 0};
	struct vobj *a = aview_of(ino);
	int ret = 0;

	if (a && a->kind == AV_PART) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fs_dirbuf_add(&d, ".",
		      a ? vobj_st_ino(a, REGISTRY_INO_AT_VIEW)
			: REGISTRY_INO_AT,
		      NODE_TOPIC);
	fs_dirbuf_add(&d, "..", a ? REGISTRY_INO_AT : REGISTRY_INO_ROOT,
		      NODE_ROOT);
	/* .at itself lists nothing: its names are made up by the asking. */
	d.ino_or = REGISTRY_INO_AT_VIEW;
	if (a)
		ret = registry_list(fs.reg,
				    a->n ? a->n : node_of(REGISTRY_INO_ROOT),
				    fs_dirbuf_add, &d);
	fs_dirbuf_open(req, fi, &d, ret);
}

int fs_at_open(fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vobj *a = aview_of(ino);
	struct handle *h = NULL;
	struct view v;
	int ret;

	if (!a || a->kind != AV_PART)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		diag_info("refused writing open of time view '.at/%s/%s/%s': "
			  "read-only",
			  a->name, a->n->parent ? a->n->parent->name : "?",
			  a->n->name);
		return -EACCES;
	}
	ret = fs_pin_open(a->n);
	if (ret < 0)
		return ret;
	ret = resolve(a, &v);
	if (ret == 0)
		h = fs_handle_new(H_AT, a->n);
	if (!h) {
		fs_unpin_open(a->n);
		return ret < 0 ? ret : -ENOMEM;
	}
	h->at = v;
	follow_file_init(&h->ff, a->n, 0);
	h->ff.base = v.start;
	atomic_store(&h->ff.pos, v.start);
	fi->direct_io = 1; /* see the top */
	atomic_fetch_add(&fs.open_handles, 1);
	fi->fh = (uintptr_t)h;
	return 0;
}

void fs_at_read(fuse_req_t req, struct handle *h, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct node *n = h->n;

	/* A RELEASE on another thread may free h once replied. */
	if (registry_pin(fs.reg, n) < 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	fs_view_read(req, &h->at, &h->ff, (uint64_t)off, size, 0,
		     !!(fi->flags & O_NONBLOCK));
	registry_unpin(fs.reg, n);
}
