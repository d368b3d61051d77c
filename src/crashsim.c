/*
 * crashsim.c - record unsynced writes and directory changes and replay a
 * power cut (test builds only: Check programs, and the daemon configured
 * with --enable-fault-injection).
 *
 * Every pwrite, pwritev and ftruncate goes through to the real file and
 * is also logged with enough to undo it (the bytes it replaced, the size
 * before) and to redo it (the bytes it wrote).  fsync forgets the part of
 * a file's log older than the sync.  Every create, mkdir, unlink and
 * rename is logged in one list, in order, with its parent directories and
 * what undoing it needs (a descriptor on an inode it unlinked or replaced);
 * an fsync of a directory forgets that directory's entries.
 * crashsim_crash() undoes each file's log newest first, which gives back
 * the last durable image exactly, then redoes the changes the mode keeps,
 * oldest first; then it undoes the directory changes the mode loses,
 * newest first.  The model and API are described in crashsim.h.
 *
 * Restores use real syscalls on crashsim's own descriptor for each file,
 * opened afresh through /proc/self/fd so it has its own file offset and
 * no O_APPEND (a dup() would share the flags of the test's descriptor),
 * and on crashsim's own O_PATH descriptor of each parent directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashsim.h"
#include "io.h"

struct change {
	uint64_t seq; /* order of all recorded calls */
	int is_trunc;
	uint64_t off;	    /* write: where; truncate: the new length */
	uint64_t len;	    /* write: bytes written */
	uint64_t old_size;  /* file size before the change */
	unsigned char *old; /* bytes the change destroyed, from old_pos */
	uint64_t old_pos;
	uint64_t old_len;
	unsigned char *data; /* write: the bytes written */
	struct change *next;
};

struct cfile {
	dev_t dev;
	ino_t ino;
	int fd; /* crashsim's own O_RDWR descriptor */
	struct change *head, *tail;
	uint32_t nchanges;
	struct cfile *next;
};

/* A directory some recorded change named, held open to undo it. */
struct cdir {
	dev_t dev;
	ino_t ino;
	int fd; /* O_PATH|O_DIRECTORY */
	struct cdir *next;
};

enum dop { D_CREATE, D_MKDIR, D_UNLINK, D_RMDIR, D_RENAME, D_EXCHANGE };

/* One unsynced directory change: name in dir (and name2 in dir2 for a
 * rename, the new name). */
struct dchange {
	uint64_t seq;
	enum dop op;
	struct cdir *dir, *dir2;
	char *name, *name2;
	dev_t dev;
	ino_t ino;  /* the inode created, unlinked or renamed */
	ino_t ino2; /* RENAME_EXCHANGE: the other inode */
	int old_fd; /* an unlinked or replaced regular file, to restore */
	mode_t old_mode;
	int old_kind; /* rename: 0 nothing replaced, 1 a file, 2 a dir */
	ino_t old_ino; /* the inode the change unlinked or replaced */
	struct dchange *next;
};

static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfile *files;	      /* protected by cs_lock */
static struct cdir *dirs;	      /* protected by cs_lock */
static struct dchange *dhead, *dtail; /* protected by cs_lock */
static uint32_t ndchanges;	      /* protected by cs_lock */
static uint64_t seq_now;	      /* protected by cs_lock */

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

/* ------------------------------------------------------------------ */
/* The crash                                                           */

static uint64_t cs_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

enum verdict { V_KEEP, V_DROP, V_GARBLE, V_TORN };

static int write_all(int fd, const unsigned char *p, uint64_t len, uint64_t off)
{
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Undo every change of f, newest first: the last durable image. */
static int undo_all(struct cfile *f, struct change **v)
{
	uint32_t i;
	struct change *c;
	int ret;

	for (i = f->nchanges; i-- > 0;) {
		c = v[i];
		if (ftruncate(f->fd, (off_t)c->old_size) < 0)
			return -errno;
		ret = write_all(f->fd, c->old, c->old_len, c->old_pos);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Redo change c as verdict says. */
static int redo(struct cfile *f, struct change *c, enum verdict vd,
		uint64_t *seed)
{
	unsigned char *junk;
	uint64_t i, keep;
	int ret;

	if (vd == V_DROP)
		return 0;
	if (c->is_trunc)
		return ftruncate(f->fd, (off_t)c->off) < 0 ? -errno : 0;
	if (vd == V_KEEP)
		return write_all(f->fd, c->data, c->len, c->off);
	if (vd == V_TORN) {
		keep = cs_rand(seed) % c->len; /* 0 .. len-1 bytes survive */
		return write_all(f->fd, c->data, keep, c->off);
	}
	junk = malloc(c->len);
	if (!junk)
		return -ENOMEM;
	for (i = 0; i < c->len; i++)
		junk[i] = (unsigned char)cs_rand(seed);
	ret = write_all(f->fd, junk, c->len, c->off);
	free(junk);
	return ret;
}

/* The verdict for change i of n in f. */
static enum verdict choose(enum crashsim_mode mode, struct change *c,
			   uint32_t i, uint32_t cut, uint64_t *seed)
{
	switch (mode) {
	case CRASHSIM_KEEP:
		return V_KEEP;
	case CRASHSIM_DROP:
		return V_DROP;
	case CRASHSIM_GARBLE:
		return c->is_trunc ? V_DROP : V_GARBLE;
	case CRASHSIM_RANDOM:
		if (c->is_trunc)
			return cs_rand(seed) & 1 ? V_KEEP : V_DROP;
		return (enum verdict)(cs_rand(seed) % 3);
	case CRASHSIM_PREFIX:
		if (i < cut)
			return V_KEEP;
		if (i == cut && !c->is_trunc)
			return V_TORN;
		return V_DROP;
	}
	return V_DROP;
}

static void count(struct crashsim_stats *st, enum verdict vd)
{
	switch (vd) {
	case V_KEEP:
		st->kept++;
		break;
	case V_DROP:
		st->dropped++;
		break;
	case V_GARBLE:
		st->garbled++;
		break;
	case V_TORN:
		st->torn++;
		break;
	}
}

/* An inode an undo brought back as a new one (a restored unlinked file,
 * a recreated directory): older changes name it by its old number. */
struct reborn {
	dev_t dev;
	ino_t old_ino, new_ino;
	struct reborn *next;
};

static struct reborn *reborns; /* protected by cs_lock, during a crash */

static void reborn_add(dev_t dev, ino_t old_ino, int dirfd, const char *name)
{
	struct reborn *r;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	r = malloc(sizeof(*r));
	if (!r)
		return; /* later undos of it count as conflicts */
	r->dev = dev;
	r->old_ino = old_ino;
	r->new_ino = st.st_ino;
	r->next = reborns;
	reborns = r;
}

static void reborn_clear(void)
{
	struct reborn *r, *next;

	for (r = reborns; r; r = next) {
		next = r->next;
		free(r);
	}
	reborns = NULL;
}

/* dirfd/name is inode (dev, ino), or what an undo made of it. */
static int same_inode(int dirfd, const char *name, dev_t dev, ino_t ino)
{
	struct reborn *r;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != dev)
		return 0;
	if (st.st_ino == ino)
		return 1;
	for (r = reborns; r; r = r->next)
		if (r->dev == dev && r->old_ino == ino && r->new_ino == st.st_ino)
			return 1;
	return 0;
}

static int absent(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	       errno == ENOENT;
}

/* Remove dirfd/name and what is below it, with the real syscalls. */
static int rm_tree(int dfd, const char *name)
{
	struct dirent *de;
	struct stat st;
	DIR *dp;
	int fd, ret = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return -errno;
	}
	while (ret == 0 && (de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			ret = rm_tree(dirfd(dp), de->d_name);
	}
	closedir(dp);
	if (ret < 0)
		return ret;
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Bring back dirfd/name as a copy of the (unlinked) inode behind src,
 * whose data the crash has already put back to its durable image. */
static int restore_copy(int dirfd, const char *name, int src, mode_t mode)
{
	unsigned char buf[65536];
	uint64_t off = 0;
	ssize_t n;
	int out, ret = 0;

	out = openat(dirfd, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0)
		return -errno;
	while ((n = pread(src, buf, sizeof(buf), (off_t)off)) > 0) {
		ret = write_all(out, buf, (uint64_t)n, off);
		if (ret < 0)
			break;
		off += (uint64_t)n;
	}
	if (n < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && fchmod(out, mode) < 0)
		ret = -errno;
	close(out);
	return ret;
}

/* A removed directory (dev, ino) came back as dirfd/name: older changes
 * recorded in it now apply to the new one. */
static void cdir_reborn(dev_t dev, ino_t ino, int dirfd, const char *name)
{
	struct cdir *c;
	int fd;

	for (c = dirs; c; c = c->next) {
		if (c->dev != dev || c->ino != ino)
			continue;
		fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			close(c->fd);
			c->fd = fd;
		}
		return;
	}
}

static int undo_dir_names(struct dchange *d)
{
	int dfd = d->dir->fd, dfd2 = d->dir2 ? d->dir2->fd : -1, ret;

	switch (d->op) {
	case D_CREATE:
	case D_MKDIR:
		if (!same_inode(dfd, d->name, d->dev, d->ino))
			return 0;
		ret = rm_tree(dfd, d->name);
		return ret < 0 ? ret : 1;
	case D_UNLINK:
		if (!absent(dfd, d->name))
			return 0;
		ret = restore_copy(dfd, d->name, d->old_fd, d->old_mode);
		if (ret < 0)
			return ret;
		reborn_add(d->dev, d->ino, dfd, d->name);
		return 1;
	case D_RMDIR:
		if (!absent(dfd, d->name))
			return 0;
		if (mkdirat(dfd, d->name, d->old_mode) < 0)
			return -errno;
		cdir_reborn(d->dev, d->ino, dfd, d->name);
		reborn_add(d->dev, d->ino, dfd, d->name);
		return 1;
	case D_RENAME:
		if (!same_inode(dfd2, d->name2, d->dev, d->ino) ||
		    !absent(dfd, d->name))
			return 0;
		if (renameat(dfd2, d->name2, dfd, d->name) < 0)
			return -errno;
		ret = 0;
		if (d->old_kind == 1) {
			ret = restore_copy(dfd2, d->name2, d->old_fd,
					   d->old_mode);
		} else if (d->old_kind == 2) {
			if (mkdirat(dfd2, d->name2, d->old_mode) < 0)
				ret = -errno;
			else
				cdir_reborn(d->dev, d->old_ino, dfd2, d->name2);
		}
		if (ret == 0 && d->old_kind)
			reborn_add(d->dev, d->old_ino, dfd2, d->name2);
		return ret < 0 ? ret : 1;
	case D_EXCHANGE:
		if (!same_inode(dfd2, d->name2, d->dev, d->ino))
			return 0;
		if (renameat2(dfd, d->name, dfd2, d->name2, RENAME_EXCHANGE) < 0)
			return -errno;
		return 1;
	}
	return 0;
}

/* Undo directory change d.  1 if done, 0 if the names had moved on (a
 * conflict: also when the directory it was made in is gone for good),
 * -errno on failure. */
static int undo_dir(struct dchange *d)
{
	int ret = undo_dir_names(d);

	return ret == -ENOENT ? 0 : ret;
}

/* The directory half of the crash: keep the oldest changes up to the
 * mode's cut, undo the rest newest first. */
static int crash_dirs(enum crashsim_mode mode, uint64_t *s,
		      struct crashsim_stats *st)
{
	struct dchange **v, *d;
	uint32_t n = 0, i, cut;
	int ret = 0, r;

	if (!ndchanges)
		return 0;
	v = malloc(sizeof(*v) * ndchanges);
	if (!v)
		return -ENOMEM;
	for (d = dhead; d; d = d->next)
		v[n++] = d;
	switch (mode) {
	case CRASHSIM_KEEP:
		cut = n;
		break;
	case CRASHSIM_DROP:
	case CRASHSIM_GARBLE:
		cut = 0;
		break;
	default:
		cut = (uint32_t)(cs_rand(s) % (n + 1u));
		break;
	}
	st->dir_kept = cut;
	for (i = n; i-- > cut && ret == 0;) {
		r = undo_dir(v[i]);
		if (r < 0)
			ret = r;
		else if (r == 0)
			st->dir_conflicts++;
		else
			st->dir_undone++;
	}
	reborn_clear();
	free(v);
	return ret;
}

/* The crash itself; cs_lock held. */
static int crash_locked(enum crashsim_mode mode, uint64_t seed,
			struct crashsim_stats *stats)
{
	struct crashsim_stats st;
	struct change **v = NULL, *c;
	struct cfile *f;
	enum verdict vd;
	uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
	uint32_t i, cut;
	int ret = 0;

	memset(&st, 0, sizeof(st));
	for (f = files; f && ret == 0; f = f->next) {
		st.files++;
		free(v);
		v = malloc(sizeof(*v) * (f->nchanges ? f->nchanges : 1));
		if (!v) {
			ret = -ENOMEM;
			break;
		}
		for (i = 0, c = f->head; c; c = c->next)
			v[i++] = c;
		if (mode != CRASHSIM_KEEP)
			ret = undo_all(f, v);
		cut = (uint32_t)(cs_rand(&s) % (f->nchanges + 1u));
		for (i = 0; i < f->nchanges && ret == 0; i++) {
			vd = choose(mode, v[i], i, cut, &s);
			count(&st, vd);
			if (mode != CRASHSIM_KEEP)
				ret = redo(f, v[i], vd, &s);
		}
	}
	free(v);
	/* After the data: a restored name copies its inode's durable image. */
	if (ret == 0)
		ret = crash_dirs(mode, &s, &st);
	forget_all();
	if (stats)
		*stats = st;
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

/* A mode by name. */
int crashsim_mode_parse(const char *name, enum crashsim_mode *mode)
{
	static const char *const names[] = {"keep", "drop", "garble",
					    "random", "prefix"};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*mode = (enum crashsim_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}
