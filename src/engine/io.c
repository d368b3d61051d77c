/*
 * io.c - every file syscall the engine and the daemon make, through one
 * swappable table.
 *
 * The wrappers below add what every caller would otherwise repeat: retry
 * on EINTR and short transfers, O_NOFOLLOW|O_CLOEXEC on every open, and
 * -errno returns.  Tests install their own table with io_ops_set() to fail
 * chosen calls or to simulate a crash by dropping unsynced writes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io.h"

static int sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	return openat(dirfd, path, flags, mode);
}

static int sys_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return fstatat(dirfd, path, st, flags);
}

static int sys_renameat2(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath, unsigned int flags)
{
	return renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

static const struct io_ops default_ops = {
	.openat = sys_openat,
	.close = close,
	.pread = pread,
	.pwrite = pwrite,
	.pwritev = pwritev,
	.fsync = fsync,
	.fdatasync = fdatasync,
	.ftruncate = ftruncate,
	.fallocate = fallocate,
	.fstat = fstat,
	.fstatat = sys_fstatat,
	.renameat = renameat,
	.renameat2 = sys_renameat2,
	.unlinkat = unlinkat,
	.mkdirat = mkdirat,
	.mmap = mmap,
	.munmap = munmap,
	.flock = flock,
	.fstatvfs = fstatvfs,
	.fdopendir = fdopendir,
	.readdir = readdir,
	.closedir = closedir,
	.syncfs = syncfs,
	.statx = statx,
};

static _Atomic(const struct io_ops *) current_ops = &default_ops;

#define OPS (atomic_load_explicit(&current_ops, memory_order_acquire))

/* The syscall table now in force. */
const struct io_ops *io_ops_get(void)
{
	return OPS;
}

/* The table of real syscalls. */
const struct io_ops *io_ops_default(void)
{
	return &default_ops;
}

/* Install ops (NULL: the real syscalls). */
void io_ops_set(const struct io_ops *ops)
{
	atomic_store_explicit(&current_ops, ops ? ops : &default_ops,
			      memory_order_release);
}

/* Open path below dirfd without following a final symlink.  Everything
 * but a directory must be a regular file: a FIFO or device planted in the
 * data directory would otherwise block the open (O_RDONLY on a FIFO waits
 * for a writer) or take appends into a pipe.  O_NONBLOCK keeps the open
 * itself from blocking; it is cleared again for the regular file. */
int io_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int dir = (flags & O_DIRECTORY) != 0, fd, err;
	struct stat st;

	do
		fd = OPS->openat(dirfd, path,
				 flags | O_NOFOLLOW | O_CLOEXEC |
					 (dir ? 0 : O_NONBLOCK),
				 mode);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	if (dir)
		return fd;
	if (OPS->fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	else if (fcntl(fd, F_SETFL, flags & (O_APPEND | O_NOATIME)) < 0)
		err = -errno;
	else
		return fd;
	OPS->close(fd);
	return err;
}

/* Open a directory below dirfd. */
int io_opendirat(int dirfd, const char *path)
{
	return io_openat(dirfd, path, O_RDONLY | O_DIRECTORY, 0);
}

/* Close fd; errors from close are reported but the fd is gone anyway. */
int io_close(int fd)
{
	if (fd < 0)
		return 0;
	return OPS->close(fd) < 0 && errno != EINTR ? -errno : 0;
}

/* Read up to len bytes at off, stopping only at EOF or an error. */
ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = OPS->pread(fd, (char *)buf + done, len - done,
			       (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

/* Write all of buf at off. */
int io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = OPS->pwrite(fd, (const char *)buf + done, len - done,
				(off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* a zero-byte write would loop forever */
		done += n;
	}
	return 0;
}

/* Write every iovec at off, resuming after short writes. */
int io_pwritev_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct iovec local[64];
	struct iovec *v = local;
	ssize_t n;
	int cnt = iovcnt, ret = 0;

	if (iovcnt > 64) {
		v = malloc(sizeof(*v) * iovcnt);
		if (!v)
			return -ENOMEM;
	}
	memcpy(v, iov, sizeof(*v) * iovcnt);
	while (cnt > 0) {
		if (v->iov_len == 0) {
			v++;
			cnt--;
			continue;
		}
		n = OPS->pwritev(fd, v, cnt, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0) {
			ret = -EIO;
			break;
		}
		off += n;
		while (cnt > 0 && (size_t)n >= v->iov_len) {
			n -= v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
		}
	}
	if (iovcnt > 64)
		free(v - (iovcnt - cnt));
	return ret;
}

#define RETRY_EINTR(call)                                 \
	do {                                              \
		int r_;                                   \
		do                                        \
			r_ = (call);                      \
		while (r_ < 0 && errno == EINTR);         \
		return r_ < 0 ? -errno : 0;               \
	} while (0)

/* fsync fd. */
int io_fsync(int fd)
{
	RETRY_EINTR(OPS->fsync(fd));
}

/* fdatasync fd. */
int io_fdatasync(int fd)
{
	RETRY_EINTR(OPS->fdatasync(fd));
}

int io_syncfs(int fd)
{
	RETRY_EINTR(OPS->syncfs(fd));
}

/* Set fd's length. */
int io_ftruncate(int fd, uint64_t len)
{
	RETRY_EINTR(OPS->ftruncate(fd, (off_t)len));
}

/* fallocate on fd. */
int io_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	RETRY_EINTR(OPS->fallocate(fd, mode, (off_t)off, (off_t)len));
}

/* fstat fd. */
int io_fstat(int fd, struct stat *st)
{
	return OPS->fstat(fd, st) < 0 ? -errno : 0;
}

/* lstat path below dirfd (symlinks are reported, never followed). */
int io_fstatat(int dirfd, const char *path, struct stat *st)
{
	return OPS->fstatat(dirfd, path, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int io_birth(int dirfd, const char *path, struct timespec *out)
{
	struct statx stx;

	if (OPS->statx(dirfd, path, AT_SYMLINK_NOFOLLOW, STATX_BTIME, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_BTIME))
		return -EOPNOTSUPP;
	out->tv_sec = stx.stx_btime.tv_sec;
	out->tv_nsec = stx.stx_btime.tv_nsec;
	return 0;
}

/* rename below directory descriptors. */
int io_renameat(int olddirfd, const char *oldpath, int newdirfd,
		const char *newpath)
{
	return OPS->renameat(olddirfd, oldpath, newdirfd, newpath) < 0 ? -errno : 0;
}

/* rename with renameat2 flags below directory descriptors. */
int io_renameat2(int olddirfd, const char *oldpath, int newdirfd,
		 const char *newpath, unsigned int flags)
{
	return OPS->renameat2(olddirfd, oldpath, newdirfd, newpath, flags) < 0
		       ? -errno
		       : 0;
}

/* unlink (or rmdir with AT_REMOVEDIR) below dirfd. */
int io_unlinkat(int dirfd, const char *path, int flags)
{
	return OPS->unlinkat(dirfd, path, flags) < 0 ? -errno : 0;
}

/* mkdir below dirfd. */
int io_mkdirat(int dirfd, const char *path, mode_t mode)
{
	return OPS->mkdirat(dirfd, path, mode) < 0 ? -errno : 0;
}

/* A readdir stream over dirfd/path. */
int io_opendir_stream(int dirfd, const char *path, DIR **out)
{
	int fd, ret;

	fd = io_opendirat(dirfd, path);
	if (fd < 0)
		return fd;
	*out = OPS->fdopendir(fd);
	if (!*out) {
		ret = -errno;
		io_close(fd);
		return ret;
	}
	return 0;
}

/* The next directory entry, telling the end from an error. */
int io_readdir(DIR *dir, struct dirent **de)
{
	errno = 0;
	*de = OPS->readdir(dir);
	if (*de)
		return 1;
	return errno ? -errno : 0;
}

/* Close a directory stream. */
int io_closedir(DIR *dir)
{
	if (!dir)
		return 0;
	return OPS->closedir(dir) < 0 && errno != EINTR ? -errno : 0;
}

/* A read-only shared mapping of fd's first len bytes. */
int io_mmap(int fd, size_t len, void **out)
{
	void *m = OPS->mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		return -errno;
	*out = m;
	return 0;
}

int io_mmap_private(int fd, size_t len, void **out)
{
	void *m = OPS->mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			    fd, 0);

	if (m == MAP_FAILED)
		return -errno;
	*out = m;
	return 0;
}

/* Unmap what io_mmap mapped. */
int io_munmap(void *addr, size_t len)
{
	return OPS->munmap(addr, len) < 0 ? -errno : 0;
}

/* flock fd. */
int io_flock(int fd, int op)
{
	RETRY_EINTR(OPS->flock(fd, op));
}

/* statvfs of fd's filesystem. */
int io_fstatvfs(int fd, struct statvfs *st)
{
	return OPS->fstatvfs(fd, st) < 0 ? -errno : 0;
}

/* Make a directory's entries (renames, unlinks) durable. */
int io_fsync_dir(int dirfd)
{
	return io_fsync(dirfd);
}

/* Replace dirfd/name atomically and durably. */
int io_write_atomic(int dirfd, const char *name, const void *data, size_t len)
{
	char tmp[300];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = io_openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fd;
	ret = io_pwrite_full(fd, data, len, 0);
	if (ret == 0)
		ret = io_fsync(fd);
	io_close(fd);
	if (ret == 0)
		ret = io_renameat(dirfd, tmp, dirfd, name);
	if (ret == 0)
		ret = io_fsync_dir(dirfd);
	else
		io_unlinkat(dirfd, tmp, 0);
	return ret;
}

/* Read all of a small file (at most max bytes). */
int io_read_whole(int dirfd, const char *name, size_t max, char **buf,
		  size_t *len)
{
	struct stat st;
	ssize_t got;
	int fd, ret;

	*buf = NULL;
	*len = 0;
	fd = io_openat(dirfd, name, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	ret = io_fstat(fd, &st);
	if (ret < 0)
		goto out;
	ret = -EFBIG;
	if ((uint64_t)st.st_size > max)
		goto out;
	ret = -ENOMEM;
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf)
		goto out;
	got = io_pread_full(fd, *buf, (size_t)st.st_size, 0);
	if (got < 0) {
		ret = (int)got;
		free(*buf);
		*buf = NULL;
		goto out;
	}
	(*buf)[got] = '\0'; /* text files parse as strings */
	*len = (size_t)got;
	ret = 0;
out:
	io_close(fd);
	return ret;
}

/* Make (durably) and open a directory. */
int io_mkdir_durable(int dirfd, const char *name, mode_t mode)
{
	int ret = io_mkdirat(dirfd, name, mode);

	if (ret == 0)
		ret = io_fsync_dir(dirfd);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	return io_opendirat(dirfd, name);
}

/* Remove dirfd/name recursively; symlinks are removed, not followed. */
int io_remove_tree(int parent, const char *name)
{
	struct stat st;
	struct dirent *de;
	DIR *dir;
	int ret;

	ret = io_fstatat(parent, name, &st);
	if (ret < 0)
		return ret;
	if (!S_ISDIR(st.st_mode))
		return io_unlinkat(parent, name, 0);
	ret = io_opendir_stream(parent, name, &dir);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(dir, &de)) > 0) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ret = io_remove_tree(dirfd(dir), de->d_name);
		if (ret < 0 && ret != -ENOENT)
			break;
	}
	io_closedir(dir);
	if (ret < 0)
		return ret;
	return io_unlinkat(parent, name, AT_REMOVEDIR);
}
