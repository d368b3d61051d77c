/*
 * crashsim.c - record unsynced writes and directory changes, for the
 * simulated power cut (test builds only: Check programs, and the daemon
 * configured with --enable-fault-injection).
 *
 * Every pwrite, pwritev and ftruncate goes through to the real file and
 * is also logged with enough to undo it (the bytes it replaced, the size
 * before) and to redo it (the bytes it wrote).  fsync forgets the part of
 * a file's log older than the sync.  Every create, mkdir, unlink and
 * rename is logged in one list, in order, with its parent directories and
 * what undoing it needs (a descriptor on an inode it unlinked or replaced);
 * an fsync of a directory forgets that directory's entries.  The power
 * cut played over these records is crashsim_replay.c's; the model and API
 * are described in crashsim.h.
 *
 * Restores use real syscalls on crashsim's own descriptor for each file,
 * opened afresh through /proc/self/fd so it has its own file offset and
 * no O_APPEND (a dup() would share the flags of the test's descriptor),
 * and on crashsim's own O_PATH descriptor of each parent directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashsim.h"
#include "crashsim_int.h"
#include "io.h"

static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfile *files;	      /* protected by cs_lock */
static struct cdir *dirs;	      /* protected by cs_lock */
static struct dchange *dhead, *dtail; /* protected by cs_lock */
static uint32_t ndchanges;	      /* protected by cs_lock */
static uint64_t seq_now;	      /* protected by cs_lock */
/* Per filesystem, what its last syncfs covered, not durable until the
 * next flush (see cs_syncfs); protected by cs_lock. */
#define SYNCFS_PENDING 8
static struct {
	dev_t dev;
	uint64_t upto; /* 0: none */
} syncfs_pending[SYNCFS_PENDING];

static void cfile_free(struct cfile *f)
{
	struct change *c, *next;

	for (c = f->head; c; c = next) {
		next = c->next;
		free(c->old);
		free(c->data);
		free(c);
	}
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

static void dchange_free(struct dchange *d)
{
	if (d->old_fd >= 0)
		close(d->old_fd);
	free(d->name);
	free(d->name2);
	free(d);
}

static void forget_all(void)
{
	struct cfile *f, *next;
	struct dchange *d, *dnext;
	struct cdir *c, *cnext;

	for (f = files; f; f = next) {
		next = f->next;
		cfile_free(f);
	}
	files = NULL;
	for (d = dhead; d; d = dnext) {
		dnext = d->next;
		dchange_free(d);
	}
	dhead = dtail = NULL;
	ndchanges = 0;
	for (c = dirs; c; c = cnext) {
		cnext = c->next;
		close(c->fd);
		free(c);
	}
	dirs = NULL;
	memset(syncfs_pending, 0, sizeof(syncfs_pending));
}

/* The record of the file behind fd, created if create is set.  Called
 * with cs_lock held; NULL with errno set on failure or when absent. */
static struct cfile *cfile_get(int fd, int create)
{
	char path[64];
	struct cfile *f;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	for (f = files; f; f = f->next)
		if (f->dev == st.st_dev && f->ino == st.st_ino)
			return f;
	if (!create || !S_ISREG(st.st_mode)) {
		errno = ENOENT;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	f->fd = open(path, O_RDWR | O_CLOEXEC);
	if (f->fd < 0) {
		free(f);
		return NULL;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->next = files;
	files = f;
	return f;
}

/* Forget the changes of the file (dev, ino) recorded up to seq upto:
 * they became durable.  The record goes when nothing is left. */
static void cfile_forget(dev_t dev, ino_t ino, uint64_t upto)
{
	struct cfile **pp, *f;
	struct change *c;

	for (pp = &files; (f = *pp) != NULL; pp = &f->next) {
		if (f->dev != dev || f->ino != ino)
			continue;
		while ((c = f->head) != NULL && c->seq <= upto) {
			f->head = c->next;
			f->nchanges--;
			free(c->old);
			free(c->data);
			free(c);
		}
		if (!f->head)
			f->tail = NULL;
		if (f->nchanges == 0) {
			*pp = f->next;
			cfile_free(f);
		}
		return;
	}
}

static void cfile_append(struct cfile *f, struct change *c)
{
	c->seq = ++seq_now;
	if (f->tail)
		f->tail->next = c;
	else
		f->head = c;
	f->tail = c;
	f->nchanges++;
}

/* Save bytes [pos, pos+len) of f into c->old (clipped to the file). */
static int save_old(struct cfile *f, struct change *c, uint64_t pos,
		    uint64_t len)
{
	ssize_t n;

	c->old_pos = pos;
	c->old_len = 0;
	if (pos >= c->old_size || len == 0)
		return 0;
	if (len > c->old_size - pos)
		len = c->old_size - pos;
	c->old = malloc(len);
	if (!c->old)
		return -1;
	n = pread(f->fd, c->old, len, (off_t)pos);
	if (n < 0)
		return -1;
	c->old_len = (uint64_t)n;
	return 0;
}

/*
 * A write of buf[0..len) at off on fd, recorded.  The real write uses
 * iov when given (pwritev), else buf.
 */
static ssize_t recorded_write(int fd, const void *buf, size_t len, off_t off,
			      const struct iovec *iov, int iovcnt)
{
	struct change *c = NULL;
	struct cfile *f;
	struct stat st;
	ssize_t n = -1;
	int flags, saved;

	pthread_mutex_lock(&cs_lock);
	f = cfile_get(fd, 1);
	flags = fcntl(fd, F_GETFL);
	if (!f || flags < 0 || fstat(fd, &st) < 0)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->old_size = (uint64_t)st.st_size;
	/* O_APPEND: Linux pwrite ignores off and writes at the end. */
	c->off = (flags & O_APPEND) ? c->old_size : (uint64_t)off;
	if (save_old(f, c, c->off, len) < 0)
		goto out;
	if (iov)
		n = io_ops_default()->pwritev(fd, iov, iovcnt, off);
	else
		n = io_ops_default()->pwrite(fd, buf, len, off);
	if (n <= 0)
		goto out;
	c->len = (uint64_t)n;
	c->data = malloc((size_t)n);
	if (!c->data) {
		/* Written but not recorded: the crash model would be wrong. */
		abort();
	}
	memcpy(c->data, buf, (size_t)n);
	if (c->old_len > c->len)
		c->old_len = c->len;
	cfile_append(f, c);
	c = NULL;
out:
	saved = errno;
	if (c) {
		free(c->old);
		free(c);
	}
	pthread_mutex_unlock(&cs_lock);
	errno = saved;
	return n;
}

static ssize_t cs_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return recorded_write(fd, buf, len, off, NULL, 0);
}

static ssize_t cs_pwritev(int fd, const struct iovec *iov, int iovcnt,
			  off_t off)
{
	unsigned char *flat;
	size_t len = 0, pos = 0;
	ssize_t n;
	int i, saved;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	flat = malloc(len ? len : 1);
	if (!flat) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < iovcnt; i++) {
		memcpy(flat + pos, iov[i].iov_base, iov[i].iov_len);
		pos += iov[i].iov_len;
	}
	n = recorded_write(fd, flat, len, off, iov, iovcnt);
	saved = errno;
	free(flat);
	errno = saved;
	return n;
}

static int cs_ftruncate(int fd, off_t len)
{
	struct change *c = NULL;
	struct cfile *f;
	struct stat st;
	int ret = -1, saved;

	pthread_mutex_lock(&cs_lock);
	f = cfile_get(fd, 1);
	if (!f || fstat(fd, &st) < 0)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->is_trunc = 1;
	c->off = (uint64_t)len;
	c->old_size = (uint64_t)st.st_size;
	if (save_old(f, c, (uint64_t)len, c->old_size) < 0)
		goto out;
	ret = io_ops_default()->ftruncate(fd, len);
	if (ret < 0)
		goto out;
	cfile_append(f, c);
	c = NULL;
out:
	saved = errno;
	if (c) {
		free(c->old);
		free(c);
	}
	pthread_mutex_unlock(&cs_lock);
	errno = saved;
	return ret;
}

static void dirs_synced(dev_t dev, ino_t ino, uint64_t upto);
static void syncfs_flushed(dev_t dev);

/* Only what was recorded before the sync began is durable after it: a
 * change another thread makes meanwhile may have missed the flush. */
static int cs_sync(int fd, int data_only)
{
	struct stat st;
	uint64_t upto;
	int ret;

	pthread_mutex_lock(&cs_lock);
	upto = seq_now;
	pthread_mutex_unlock(&cs_lock);
	ret = data_only ? io_ops_default()->fdatasync(fd)
			: io_ops_default()->fsync(fd);
	if (ret < 0)
		return ret; /* nothing became durable */
	if (fstat(fd, &st) < 0)
		return 0;
	pthread_mutex_lock(&cs_lock);
	/* its cache flush also covers what an earlier syncfs wrote */
	syncfs_flushed(st.st_dev);
	if (S_ISDIR(st.st_mode))
		dirs_synced(st.st_dev, st.st_ino, upto);
	else
		cfile_forget(st.st_dev, st.st_ino, upto);
	pthread_mutex_unlock(&cs_lock);
	return 0;
}

static int cs_fsync(int fd)
{
	return cs_sync(fd, 0);
}

static int cs_fdatasync(int fd)
{
	return cs_sync(fd, 1);
}

/* ------------------------------------------------------------------ */
/* Directory entries                                                   */

/* The record of directory (dirfd, "."), opened O_PATH; created if new.
 * Called with cs_lock held; NULL on failure. */
static struct cdir *cdir_get(int dirfd, const char *sub)
{
	struct cdir *c;
	struct stat st;
	int fd;

	fd = openat(dirfd, sub, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	for (c = dirs; c; c = c->next) {
		if (c->dev == st.st_dev && c->ino == st.st_ino) {
			close(fd);
			return c;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->fd = fd;
	c->next = dirs;
	dirs = c;
	return c;
}

/* The parent directory of dirfd/path and the last component's name:
 * "a/b/c" names c in a/b. */
static struct cdir *parent_of(int dirfd, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	char sub[4096];
	size_t n;

	if (!slash) {
		*base = path;
		return cdir_get(dirfd, ".");
	}
	*base = slash + 1;
	n = (size_t)(slash - path);
	if (n == 0)
		return cdir_get(dirfd, "/");
	if (n >= sizeof(sub))
		return NULL;
	memcpy(sub, path, n);
	sub[n] = '\0';
	return cdir_get(dirfd, sub);
}

/* Queue a directory change; on failure to record, the model would be
 * wrong, and a simulation that lies is worse than none. */
static struct dchange *dchange_add(enum dop op, struct cdir *dir,
				   const char *name, struct cdir *dir2,
				   const char *name2)
{
	struct dchange *d = calloc(1, sizeof(*d));

	if (!d || !dir || (op == D_RENAME || op == D_EXCHANGE ? !dir2 : 0))
		abort();
	d->op = op;
	d->dir = dir;
	d->dir2 = dir2;
	d->name = strdup(name);
	d->name2 = name2 ? strdup(name2) : NULL;
	d->old_fd = -1;
	if (!d->name || (name2 && !d->name2))
		abort();
	d->seq = ++seq_now;
	if (dtail)
		dtail->next = d;
	else
		dhead = d;
	dtail = d;
	ndchanges++;
	return d;
}

static int dchange_touches(const struct dchange *d, dev_t dev, ino_t ino)
{
	return (d->dir->dev == dev && d->dir->ino == ino) ||
	       (d->dir2 && d->dir2->dev == dev && d->dir2->ino == ino);
}

/* Directory (dev, ino) was fsynced: its changes up to upto are durable,
 * and so are older changes of the inodes those changes moved. */
static void dirs_synced(dev_t dev, ino_t ino, uint64_t upto)
{
	struct dchange **v, *d;
	ino_t *pinned;
	uint32_t n = 0, i, j, npinned = 0;
	int durable;

	if (!ndchanges)
		return;
	v = malloc(sizeof(*v) * ndchanges);
	pinned = malloc(sizeof(*pinned) * 2 * ndchanges);
	if (!v || !pinned)
		abort();
	for (d = dhead; d; d = d->next)
		v[n++] = d;
	for (i = n; i-- > 0;) {
		d = v[i];
		if (d->seq > upto)
			continue;
		durable = dchange_touches(d, dev, ino);
		for (j = 0; j < npinned && !durable; j++)
			if (pinned[j] == d->ino ||
			    (d->ino2 && pinned[j] == d->ino2))
				durable = 1;
		if (!durable)
			continue;
		pinned[npinned++] = d->ino;
		if (d->ino2)
			pinned[npinned++] = d->ino2;
		dchange_free(d);
		v[i] = NULL;
	}
	/* Relink what is left, in order. */
	dhead = dtail = NULL;
	ndchanges = 0;
	for (i = 0; i < n; i++) {
		if (!v[i])
			continue;
		v[i]->next = NULL;
		if (dtail)
			dtail->next = v[i];
		else
			dhead = v[i];
		dtail = v[i];
		ndchanges++;
	}
	free(pinned);
	free(v);
}

/* A cache flush of dev's disk came (cs_lock held): what the last syncfs
 * of dev covered is durable now. */
static void syncfs_flushed(dev_t dev)
{
	struct cfile *f, *next;
	struct cdir *dir;
	uint64_t upto;
	int i;

	for (i = 0; i < SYNCFS_PENDING; i++) {
		if (!syncfs_pending[i].upto || syncfs_pending[i].dev != dev)
			continue;
		upto = syncfs_pending[i].upto;
		syncfs_pending[i].upto = 0;
		for (f = files; f; f = next) {
			next = f->next; /* cfile_forget may free f */
			if (f->dev == dev)
				cfile_forget(f->dev, f->ino, upto);
		}
		for (dir = dirs; dir; dir = dir->next)
			if (dir->dev == dev)
				dirs_synced(dir->dev, dir->ino, upto);
	}
}

/* syncfs writes back the whole filesystem, but on ext4 without a journal
 * its last writes (the block device's buffers: inode sizes, allocation
 * bitmaps) come after its cache flush, so they are durable only at the
 * next flush: the next fsync or fdatasync of any file of the filesystem,
 * or the next syncfs.  Modelled whole: what a syncfs covered (every
 * change recorded before it began, on fd's filesystem, files and
 * directories alike) stays undoable until then.  One such point per
 * filesystem (syncfs_pending): a later syncfs's flush makes the earlier
 * one's durable. */
static int cs_syncfs(int fd)
{
	struct stat st;
	uint64_t upto;
	int ret, i, slot = -1;

	if (fstat(fd, &st) < 0)
		return -1;
	pthread_mutex_lock(&cs_lock);
	upto = seq_now;
	pthread_mutex_unlock(&cs_lock);
	ret = io_ops_default()->syncfs(fd);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&cs_lock);
	syncfs_flushed(st.st_dev); /* its own flush, for the one before */
	for (i = 0; i < SYNCFS_PENDING && slot < 0; i++)
		if (!syncfs_pending[i].upto)
			slot = i;
	if (slot < 0)
		abort(); /* more filesystems than a test uses */
	syncfs_pending[slot].dev = st.st_dev;
	syncfs_pending[slot].upto = upto;
	pthread_mutex_unlock(&cs_lock);
	return 0;
}

static int cs_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	struct dchange *d;
	struct cdir *dir;
	const char *base;
	struct stat st;
	int fd, existed, saved;

	if (!(flags & O_CREAT)) {
		fd = io_ops_default()->openat(dirfd, path, flags, mode);
		goto trunc;
	}
	pthread_mutex_lock(&cs_lock);
	existed = fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
	fd = io_ops_default()->openat(dirfd, path, flags, mode);
	saved = errno;
	if (fd >= 0 && !existed && fstat(fd, &st) == 0) {
		dir = parent_of(dirfd, path, &base);
		d = dchange_add(D_CREATE, dir, base, NULL, NULL);
		d->dev = st.st_dev;
		d->ino = st.st_ino;
	}
	pthread_mutex_unlock(&cs_lock);
	errno = saved;
trunc:
	/* O_TRUNC counts as durable at once (see crashsim.h): undoing older
	 * writes over the truncated file would make no sense. */
	if (fd >= 0 && (flags & O_TRUNC) && fstat(fd, &st) == 0) {
		pthread_mutex_lock(&cs_lock);
		cfile_forget(st.st_dev, st.st_ino, UINT64_MAX);
		pthread_mutex_unlock(&cs_lock);
	}
	return fd;
}

static int cs_mkdirat(int dirfd, const char *path, mode_t mode)
{
	struct dchange *d;
	struct cdir *dir;
	const char *base;
	struct stat st;
	int ret, saved;

	pthread_mutex_lock(&cs_lock);
	ret = io_ops_default()->mkdirat(dirfd, path, mode);
	saved = errno;
	if (ret == 0 && fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		dir = parent_of(dirfd, path, &base);
		d = dchange_add(D_MKDIR, dir, base, NULL, NULL);
		d->dev = st.st_dev;
		d->ino = st.st_ino;
	}
	pthread_mutex_unlock(&cs_lock);
	errno = saved;
	return ret;
}

/* What undoing the loss of dirfd/path needs: a descriptor on a regular
 * file (*kind 1), the mode of a directory (*kind 2), or nothing (0). */
static int keep_old(int dirfd, const char *path, const struct stat *st,
		    int *kind)
{
	*kind = 0;
	if (S_ISDIR(st->st_mode)) {
		*kind = 2;
		return -1;
	}
	if (!S_ISREG(st->st_mode))
		return -1;
	*kind = 1;
	return openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static int cs_unlinkat(int dirfd, const char *path, int flags)
{
	struct dchange *d;
	struct cdir *dir;
	const char *base;
	struct stat st;
	int ret, saved, kind = 0, keep = -1, have;

	pthread_mutex_lock(&cs_lock);
	have = fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (have)
		keep = keep_old(dirfd, path, &st, &kind);
	ret = io_ops_default()->unlinkat(dirfd, path, flags);
	saved = errno;
	if (ret == 0 && have && kind != 0 && (kind == 2 || keep >= 0)) {
		dir = parent_of(dirfd, path, &base);
		d = dchange_add(kind == 2 ? D_RMDIR : D_UNLINK, dir, base, NULL,
				NULL);
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		d->old_mode = st.st_mode & 07777;
		d->old_fd = keep;
		keep = -1;
	}
	if (keep >= 0)
		close(keep);
	pthread_mutex_unlock(&cs_lock);
	errno = saved;
	return ret;
}

static int cs_renameat2(int olddirfd, const char *oldpath, int newdirfd,
			const char *newpath, unsigned int flags)
{
	struct stat st_old, st_new;
	struct dchange *d;
	struct cdir *dir, *dir2;
	const char *base, *base2;
	int ret, saved, kind = 0, keep = -1, have_new;

	pthread_mutex_lock(&cs_lock);
	if (fstatat(olddirfd, oldpath, &st_old, AT_SYMLINK_NOFOLLOW) < 0) {
		/* The rename will fail the same way: let it say so. */
		ret = flags ? io_ops_default()->renameat2(olddirfd, oldpath,
							  newdirfd, newpath,
							  flags)
			    : io_ops_default()->renameat(olddirfd, oldpath,
							 newdirfd, newpath);
		saved = errno;
		goto out;
	}
	have_new = fstatat(newdirfd, newpath, &st_new, AT_SYMLINK_NOFOLLOW) == 0;
	if (have_new && !(flags & RENAME_EXCHANGE) &&
	    st_new.st_ino != st_old.st_ino)
		keep = keep_old(newdirfd, newpath, &st_new, &kind);
	ret = flags ? io_ops_default()->renameat2(olddirfd, oldpath, newdirfd,
						  newpath, flags)
		    : io_ops_default()->renameat(olddirfd, oldpath, newdirfd,
						 newpath);
	saved = errno;
	if (ret == 0 && !(have_new && st_new.st_ino == st_old.st_ino)) {
		dir = parent_of(olddirfd, oldpath, &base);
		dir2 = parent_of(newdirfd, newpath, &base2);
		d = dchange_add(flags & RENAME_EXCHANGE ? D_EXCHANGE : D_RENAME,
				dir, base, dir2, base2);
		d->dev = st_old.st_dev;
		d->ino = st_old.st_ino;
		if (flags & RENAME_EXCHANGE)
			d->ino2 = st_new.st_ino;
		d->old_kind = kind;
		d->old_ino = have_new ? st_new.st_ino : 0;
		d->old_mode = have_new ? st_new.st_mode & 07777 : 0;
		d->old_fd = keep;
		keep = -1;
	}
out:
	if (keep >= 0)
		close(keep);
	pthread_mutex_unlock(&cs_lock);
	errno = saved;
	return ret;
}

static int cs_renameat(int olddirfd, const char *oldpath, int newdirfd,
		       const char *newpath)
{
	return cs_renameat2(olddirfd, oldpath, newdirfd, newpath, 0);
}

static struct io_ops cs_ops; /* filled by crashsim_install() */

/* Start recording unsynced changes. */
void crashsim_install(void)
{
	pthread_mutex_lock(&cs_lock);
	forget_all();
	cs_ops = *io_ops_default();
	cs_ops.openat = cs_openat;
	cs_ops.pwrite = cs_pwrite;
	cs_ops.pwritev = cs_pwritev;
	cs_ops.ftruncate = cs_ftruncate;
	cs_ops.fsync = cs_fsync;
	cs_ops.fdatasync = cs_fdatasync;
	cs_ops.mkdirat = cs_mkdirat;
	cs_ops.unlinkat = cs_unlinkat;
	cs_ops.renameat = cs_renameat;
	cs_ops.renameat2 = cs_renameat2;
	cs_ops.syncfs = cs_syncfs;
	pthread_mutex_unlock(&cs_lock);
	io_ops_set(&cs_ops);
}

/* Stop recording and restore the real syscalls. */
void crashsim_uninstall(void)
{
	io_ops_set(NULL);
	pthread_mutex_lock(&cs_lock);
	forget_all();
	pthread_mutex_unlock(&cs_lock);
}

/* Unsynced changes of file data recorded now. */
uint32_t crashsim_pending(void)
{
	struct cfile *f;
	uint32_t n = 0;

	pthread_mutex_lock(&cs_lock);
	for (f = files; f; f = f->next)
		n += f->nchanges;
	pthread_mutex_unlock(&cs_lock);
	return n;
}

/* Unsynced directory changes recorded now. */
uint32_t crashsim_pending_dirs(void)
{
	uint32_t n;

	pthread_mutex_lock(&cs_lock);
	n = ndchanges;
	pthread_mutex_unlock(&cs_lock);
	return n;
}

/* The crash itself; cs_lock held.  The records go with it. */
static int crash_locked(enum crashsim_mode mode, uint64_t seed,
			struct crashsim_stats *stats)
{
	struct crashsim_log log = {files, dirs, dhead, ndchanges};
	int ret;

	ret = crashsim_replay(&log, mode, seed, stats);
	forget_all();
	return ret;
}

/* Simulate a power cut over every unsynced change. */
int crashsim_crash(enum crashsim_mode mode, uint64_t seed,
		   struct crashsim_stats *stats)
{
	int ret;

	pthread_mutex_lock(&cs_lock);
	ret = crash_locked(mode, seed, stats);
	pthread_mutex_unlock(&cs_lock);
	return ret;
}

/* The power cut of a process that exits next: cs_lock is never released,
 * so no other thread's recorded change lands after the cut. */
int crashsim_powercut(enum crashsim_mode mode, uint64_t seed,
		      struct crashsim_stats *stats)
{
	pthread_mutex_lock(&cs_lock);
	return crash_locked(mode, seed, stats);
}
