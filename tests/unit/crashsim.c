/*
 * crashsim.c - record unsynced writes and replay a power cut (tests only).
 *
 * Every pwrite, pwritev and ftruncate goes through to the real file and
 * is also logged with enough to undo it (the bytes it replaced, the size
 * before) and to redo it (the bytes it wrote).  fsync forgets a file's
 * log.  crashsim_crash() undoes each file's log newest first, which gives
 * back the last durable image exactly, then redoes the changes the mode
 * keeps, oldest first.  The model and API are described in crashsim.h.
 *
 * Restores use real syscalls on crashsim's own descriptor for each file,
 * opened afresh through /proc/self/fd so it has its own file offset and
 * no O_APPEND (a dup() would share the flags of the test's descriptor).
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
#include "io.h"

struct change {
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

static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfile *files; /* protected by cs_lock */

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

static void forget_all(void)
{
	struct cfile *f, *next;

	for (f = files; f; f = next) {
		next = f->next;
		cfile_free(f);
	}
	files = NULL;
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

/* Drop the record of the file behind fd (its changes became durable). */
static void cfile_forget(int fd)
{
	struct cfile **pp, *f;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return;
	for (pp = &files; (f = *pp) != NULL; pp = &f->next) {
		if (f->dev == st.st_dev && f->ino == st.st_ino) {
			*pp = f->next;
			cfile_free(f);
			return;
		}
	}
}

static void cfile_append(struct cfile *f, struct change *c)
{
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

static int cs_sync(int fd, int data_only)
{
	int ret;

	ret = data_only ? io_ops_default()->fdatasync(fd)
			: io_ops_default()->fsync(fd);
	if (ret < 0)
		return ret; /* nothing became durable */
	pthread_mutex_lock(&cs_lock);
	cfile_forget(fd);
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

static int cs_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd = io_ops_default()->openat(dirfd, path, flags, mode);

	/* O_TRUNC counts as durable at once (see crashsim.h): undoing older
	 * writes over the truncated file would make no sense. */
	if (fd >= 0 && (flags & O_TRUNC)) {
		pthread_mutex_lock(&cs_lock);
		cfile_forget(fd);
		pthread_mutex_unlock(&cs_lock);
	}
	return fd;
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

/* Unsynced changes recorded now. */
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

/* Simulate a power cut over every file with unsynced changes. */
int crashsim_crash(enum crashsim_mode mode, uint64_t seed,
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
	pthread_mutex_lock(&cs_lock);
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
	forget_all();
	pthread_mutex_unlock(&cs_lock);
	if (stats)
		*stats = st;
	return ret;
}
