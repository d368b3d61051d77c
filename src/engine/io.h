/*
 * io.h - the one module that makes file syscalls.
 *
 * Every open, read, write, sync, rename, unlink, fallocate, mapping,
 * lock, directory read and statfs that the storage engine and the daemon
 * make on the data directory goes through the table below, so tests can
 * swap it to inject EIO, ENOSPC, short writes, failed mappings and locks,
 * and crashes (the SQLite os_unix.c habit).  All paths are relative to a
 * directory descriptor and opened with O_NOFOLLOW, so a symlink planted in
 * the data directory is never followed.
 *
 * Every function returns 0 (or a byte count) on success and -errno on
 * failure; none of them touches the caller's errno contract beyond that.
 */
#ifndef FLUXFS_IO_H
#define FLUXFS_IO_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The raw syscall table.  Entries follow the libc signatures exactly
 * (return -1 and set errno); the io_*() wrappers turn that into -errno. */
struct io_ops {
	int (*openat)(int dirfd, const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int iovcnt, off_t off);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	int (*fstat)(int fd, struct stat *st);
	int (*fstatat)(int dirfd, const char *path, struct stat *st, int flags);
	int (*renameat)(int olddirfd, const char *oldpath, int newdirfd,
			const char *newpath);
	int (*renameat2)(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath, unsigned int flags);
	int (*unlinkat)(int dirfd, const char *path, int flags);
	int (*mkdirat)(int dirfd, const char *path, mode_t mode);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*flock)(int fd, int op);
	int (*fstatvfs)(int fd, struct statvfs *st);
	DIR *(*fdopendir)(int fd);
	/* NULL with errno unchanged at the end, NULL with errno set on an
	 * error, as readdir(3). */
	struct dirent *(*readdir)(DIR *dir);
	int (*closedir)(DIR *dir);
	int (*syncfs)(int fd);
	int (*statx)(int dirfd, const char *path, int flags, unsigned int mask,
		     struct statx *stx);
};

/* The table in force; io_ops_default() is the real syscalls. */
const struct io_ops *io_ops_get(void);
const struct io_ops *io_ops_default(void);
/* Install a table (tests, fault injection); NULL restores the default.
 * Not thread-safe against concurrent I/O: swap before starting work. */
void io_ops_set(const struct io_ops *ops);

/* Open path below dirfd: O_NOFOLLOW|O_CLOEXEC always; anything but a
 * directory (O_DIRECTORY) must be a regular file, else -EINVAL. */
int io_openat(int dirfd, const char *path, int flags, mode_t mode);
int io_close(int fd);
/* Read exactly len bytes unless EOF comes first; returns bytes read. */
ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Write all len bytes (retrying short writes); returns 0 or -errno.
 * A short write followed by an error reports the error. */
int io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int io_pwritev_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off);
int io_fsync(int fd);
int io_fdatasync(int fd);
/* Write back and commit the whole filesystem holding fd (syncfs(2)). */
int io_syncfs(int fd);
int io_ftruncate(int fd, uint64_t len);
int io_fallocate(int fd, int mode, uint64_t off, uint64_t len);
int io_fstat(int fd, struct stat *st);
int io_fstatat(int dirfd, const char *path, struct stat *st);
/* When path below dirfd was created (its birth time, statx's
 * STATX_BTIME; symlinks not followed): 0, -EOPNOTSUPP if its filesystem
 * does not keep it, or -errno. */
int io_birth(int dirfd, const char *path, struct timespec *out);
int io_renameat(int olddirfd, const char *oldpath, int newdirfd,
		const char *newpath);
/* renameat2(2): flags RENAME_EXCHANGE / RENAME_NOREPLACE.  -EINVAL when
 * the backing filesystem lacks the flag. */
int io_renameat2(int olddirfd, const char *oldpath, int newdirfd,
		 const char *newpath, unsigned int flags);
int io_unlinkat(int dirfd, const char *path, int flags);
/* mkdir below dirfd (AT_FDCWD and an absolute path for a data directory
 * that does not exist yet). */
int io_mkdirat(int dirfd, const char *path, mode_t mode);
/* Open a directory below dirfd (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC). */
int io_opendirat(int dirfd, const char *path);
/* Open dirfd/path as a directory stream for io_readdir (io_closedir
 * releases it).  Returns 0 or -errno. */
int io_opendir_stream(int dirfd, const char *path, DIR **out);
/* The next entry of dir, "." and ".." included: 1 with *de set (valid
 * until the next call), 0 at the end, or -errno.  A caller that stops at
 * an error instead of taking it for the end never mistakes half a
 * directory for all of it. */
int io_readdir(DIR *dir, struct dirent **de);
/* Release a stream and its descriptor (gone even when this fails). */
int io_closedir(DIR *dir);

/* Map len bytes of fd from offset 0, read-only and shared with the page
 * cache; 0 and *out, or -errno.  len may reach past the end of the file:
 * touching a page that lies wholly past it raises SIGBUS, so a caller
 * reads a mapping only up to a length it knows the file has. */
int io_mmap(int fd, size_t len, void **out);
/* A private, writable mapping of fd's first len bytes: writes change
 * the memory only (copy on write), and io_munmap gives every page back,
 * where a large malloc'ed buffer would leave glibc's heap grown. */
int io_mmap_private(int fd, size_t len, void **out);
/* Undo io_mmap.  Callers have no use for the range afterwards whatever
 * this returns; the error is reported for tests. */
int io_munmap(void *addr, size_t len);
/* flock(2) operation op on fd; EINTR is retried, a lock held elsewhere
 * with LOCK_NB is -EWOULDBLOCK. */
int io_flock(int fd, int op);
/* statvfs of the filesystem holding fd. */
int io_fstatvfs(int fd, struct statvfs *st);
/* fsync a directory descriptor (after a rename or unlink in it). */
int io_fsync_dir(int dirfd);

/* Atomically replace dirfd/name with data: write name.tmp, fsync it,
 * rename over name, fsync the directory. */
int io_write_atomic(int dirfd, const char *name, const void *data, size_t len);
/* Remove dirfd/name and everything below it (no symlinks followed). */
int io_remove_tree(int dirfd, const char *name);
/* All of the small file dirfd/name in a malloc'ed *buf (free it) of
 * *len bytes and a NUL after them, so text parses as a string: 0,
 * -EFBIG if it is larger than max, or the open's or read's error (*buf
 * NULL then). */
int io_read_whole(int dirfd, const char *name, size_t max, char **buf,
		  size_t *len);
/* Make directory dirfd/name if missing, durably (dirfd synced after a
 * mkdir, so files later synced into it outlive a power cut), and open
 * it: its descriptor, or -errno. */
int io_mkdir_durable(int dirfd, const char *name, mode_t mode);

#endif
