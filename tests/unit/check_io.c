/*
 * check_io.c - the io.h wrappers (short writes, EINTR, -errno, atomic
 * replace, symlink safety, mappings, locks, directory streams, statfs),
 * fault injection (spec grammar, what it fails, counts) and the crash
 * simulator (synced data survives; unsynced changes are kept, dropped or
 * garbled as asked).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "testutil.h"
#include "crashsim.h"
#include "fault.h"

static char dir[4096];
static int dfd = -1;

static void setup(void)
{
	dfd = test_tmpdir(dir);
}

static void teardown(void)
{
	io_ops_set(NULL);
	test_rmtree(dfd, dir);
}

static int create(const char *name)
{
	int fd = io_openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static uint64_t size_of(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

/* Read the whole of dfd/name into a malloc'd buffer; *len gets its size.
 * NULL if the file does not exist. */
static unsigned char *slurp(const char *name, size_t *len)
{
	unsigned char *buf;
	struct stat st;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	ck_assert_int_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(io_pread_full(fd, buf, *len, 0), (ssize_t)*len);
	buf[*len] = 0;
	close(fd);
	return buf;
}

static void assert_content(const char *name, const void *want, size_t len)
{
	size_t got_len = 0;
	unsigned char *got = slurp(name, &got_len);

	ck_assert_msg(got != NULL, "'%s' missing", name);
	ck_assert_msg(got_len == len, "'%s': %zu bytes, want %zu", name,
		      got_len, len);
	ck_assert_msg(memcmp(got, want, len) == 0, "'%s': content differs",
		      name);
	free(got);
}

/* ------------------------------------------------------------------ */
/* A scripted io_ops table                                             */

static struct io_ops script;
static atomic_int pwrite_calls, pwritev_calls, eintr_left, fail_errno;
static atomic_int fail_rename, fail_fsync;
static atomic_int readdir_ok_left = -1, flock_eintr_left, flock_calls;

/* At most 3 bytes per call; EINTR first while eintr_left > 0. */
static ssize_t sc_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	atomic_fetch_add(&pwrite_calls, 1);
	if (atomic_load(&eintr_left) > 0) {
		atomic_fetch_sub(&eintr_left, 1);
		errno = EINTR;
		return -1;
	}
	if (atomic_load(&fail_errno) && atomic_load(&pwrite_calls) > 2) {
		errno = atomic_load(&fail_errno);
		return -1;
	}
	return pwrite(fd, buf, len < 3 ? len : 3, off);
}

static ssize_t sc_pwritev(int fd, const struct iovec *iov, int iovcnt,
			  off_t off)
{
	struct iovec v[8];
	size_t left = 3;
	int i, n = 0;

	atomic_fetch_add(&pwritev_calls, 1);
	if (atomic_load(&eintr_left) > 0) {
		atomic_fetch_sub(&eintr_left, 1);
		errno = EINTR;
		return -1;
	}
	for (i = 0; i < iovcnt && left && n < 8; i++) {
		v[n] = iov[i];
		if (v[n].iov_len > left)
			v[n].iov_len = left;
		left -= v[n].iov_len;
		n++;
	}
	return pwritev(fd, v, n, off);
}

static ssize_t sc_pread(int fd, void *buf, size_t len, off_t off)
{
	if (atomic_load(&eintr_left) > 0) {
		atomic_fetch_sub(&eintr_left, 1);
		errno = EINTR;
		return -1;
	}
	return pread(fd, buf, len < 5 ? len : 5, off);
}

static int sc_fsync(int fd)
{
	if (atomic_load(&eintr_left) > 0) {
		atomic_fetch_sub(&eintr_left, 1);
		errno = EINTR;
		return -1;
	}
	if (atomic_load(&fail_fsync)) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int sc_renameat(int a, const char *ap, int b, const char *bp)
{
	if (atomic_load(&fail_rename)) {
		errno = EXDEV;
		return -1;
	}
	return renameat(a, ap, b, bp);
}

/* EIO once readdir_ok_left entries were returned (-1: never). */
static struct dirent *sc_readdir(DIR *d)
{
	if (atomic_load(&readdir_ok_left) == 0) {
		errno = EIO;
		return NULL;
	}
	if (atomic_load(&readdir_ok_left) > 0)
		atomic_fetch_sub(&readdir_ok_left, 1);
	return readdir(d);
}

static int sc_flock(int fd, int op)
{
	atomic_fetch_add(&flock_calls, 1);
	if (atomic_load(&flock_eintr_left) > 0) {
		atomic_fetch_sub(&flock_eintr_left, 1);
		errno = EINTR;
		return -1;
	}
	return flock(fd, op);
}

static ssize_t zero_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return 0;
}

static void script_install(void)
{
	script = *io_ops_default();
	script.pwrite = sc_pwrite;
	script.pwritev = sc_pwritev;
	script.pread = sc_pread;
	script.fsync = sc_fsync;
	script.renameat = sc_renameat;
	script.readdir = sc_readdir;
	script.flock = sc_flock;
	atomic_store(&readdir_ok_left, -1);
	atomic_store(&flock_eintr_left, 0);
	atomic_store(&flock_calls, 0);
	atomic_store(&pwrite_calls, 0);
	atomic_store(&pwritev_calls, 0);
	atomic_store(&eintr_left, 0);
	atomic_store(&fail_errno, 0);
	atomic_store(&fail_rename, 0);
	atomic_store(&fail_fsync, 0);
	io_ops_set(&script);
}

START_TEST(test_short_writes_retried)
{
	unsigned char data[1000], back[1000];
	struct iovec iov[5];
	int fd;

	test_fill_random(data, sizeof(data), 1);
	fd = create("f");
	script_install();
	ck_assert_ptr_eq(io_ops_get(), &script);
	ck_assert_int_eq(io_pwrite_full(fd, data, sizeof(data), 10), 0);
	/* 3 bytes a call: the wrapper had to come back 334 times. */
	ck_assert_int_eq(atomic_load(&pwrite_calls), 334);
	ck_assert_uint_eq(size_of(fd), 1010);
	/* Reads come back 5 bytes at a time and are stitched too. */
	ck_assert_int_eq(io_pread_full(fd, back, sizeof(back), 10), 1000);
	ck_assert(memcmp(back, data, sizeof(data)) == 0);
	/* EOF stops a read early with the count. */
	ck_assert_int_eq(io_pread_full(fd, back, sizeof(back), 500), 510);

	/* pwritev, with empty vectors and a vector split mid-way. */
	iov[0].iov_base = data;
	iov[0].iov_len = 0;
	iov[1].iov_base = data;
	iov[1].iov_len = 7;
	iov[2].iov_base = data + 7;
	iov[2].iov_len = 0;
	iov[3].iov_base = data + 7;
	iov[3].iov_len = 400;
	iov[4].iov_base = data + 407;
	iov[4].iov_len = 593;
	ck_assert_int_eq(io_pwritev_full(fd, iov, 5, 2000), 0);
	ck_assert_int_ge(atomic_load(&pwritev_calls), 334);
	/* The caller's iovecs are not modified. */
	ck_assert_uint_eq(iov[3].iov_len, 400);
	ck_assert_ptr_eq(iov[3].iov_base, data + 7);
	io_ops_set(NULL);
	ck_assert_int_eq(io_pread_full(fd, back, sizeof(back), 2000), 1000);
	ck_assert(memcmp(back, data, sizeof(data)) == 0);
	close(fd);
}
END_TEST

START_TEST(test_eintr_retried)
{
	unsigned char data[10] = "0123456789", back[10];
	int fd;

	fd = create("f");
	script_install();
	atomic_store(&eintr_left, 5);
	ck_assert_int_eq(io_pwrite_full(fd, data, 10, 0), 0);
	ck_assert_int_eq(atomic_load(&eintr_left), 0);
	atomic_store(&eintr_left, 3);
	ck_assert_int_eq(io_pread_full(fd, back, 10, 0), 10);
	ck_assert(memcmp(back, data, 10) == 0);
	atomic_store(&eintr_left, 2);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(atomic_load(&eintr_left), 0);
	close(fd);
}
END_TEST

START_TEST(test_errors_are_negative_errno)
{
	unsigned char data[100];
	struct io_ops zero;
	int fd;

	memset(data, 'a', sizeof(data));
	fd = create("f");
	script_install();
	/* Two short writes land, then ENOSPC: the error is reported. */
	atomic_store(&fail_errno, ENOSPC);
	ck_assert_int_eq(io_pwrite_full(fd, data, sizeof(data), 0), -ENOSPC);
	ck_assert_uint_eq(size_of(fd), 6);
	atomic_store(&fail_fsync, 1);
	ck_assert_int_eq(io_fsync(fd), -EIO);
	ck_assert_int_eq(io_fsync_dir(dfd), -EIO);
	io_ops_set(NULL);

	/* A write that makes no progress is an error, not a hang. */
	zero = *io_ops_default();
	zero.pwrite = zero_pwrite;
	io_ops_set(&zero);
	ck_assert_int_eq(io_pwrite_full(fd, data, 1, 0), -EIO);
	io_ops_set(NULL);

	ck_assert_int_eq(io_openat(dfd, "missing", O_RDONLY, 0), -ENOENT);
	ck_assert_int_eq(io_unlinkat(dfd, "missing", 0), -ENOENT);
	ck_assert_int_eq(io_mkdirat(dfd, "f", 0755), -EEXIST);
	ck_assert_int_eq(io_pwrite_full(-1, data, 1, 0), -EBADF);
	ck_assert_int_eq(io_ftruncate(-1, 0), -EBADF);
	ck_assert_int_eq(io_renameat(dfd, "missing", dfd, "x"), -ENOENT);
	ck_assert_int_eq(io_pread_full(-1, data, 1, 0), -EBADF);
	close(fd);
}
END_TEST

START_TEST(test_write_atomic)
{
	size_t len;
	unsigned char *got;

	ck_assert_int_eq(io_write_atomic(dfd, "state", "old", 3), 0);
	assert_content("state", "old", 3);

	/* The rename fails: old content stays, no temporary is left. */
	script_install();
	atomic_store(&fail_rename, 1);
	ck_assert_int_eq(io_write_atomic(dfd, "state", "new-content", 11),
			 -EXDEV);
	io_ops_set(NULL);
	assert_content("state", "old", 3);
	ck_assert_ptr_null(slurp("state.tmp", &len));

	/* The fsync of the temporary fails: nothing is renamed. */
	script_install();
	atomic_store(&fail_fsync, 1);
	ck_assert_int_eq(io_write_atomic(dfd, "state", "new-content", 11),
			 -EIO);
	io_ops_set(NULL);
	assert_content("state", "old", 3);
	ck_assert_ptr_null(slurp("state.tmp", &len));

	/* Short writes on the way still give the whole new content; a
	 * shorter new value leaves no tail of the old one. */
	script_install();
	ck_assert_int_eq(io_write_atomic(dfd, "state", "new-content", 11), 0);
	ck_assert_int_eq(io_write_atomic(dfd, "state", "n2", 2), 0);
	io_ops_set(NULL);
	assert_content("state", "n2", 2);
	got = slurp("state.tmp", &len);
	ck_assert_ptr_null(got);
}
END_TEST

START_TEST(test_remove_tree_no_follow)
{
	struct stat st;
	int fd;

	/* outside/keep must survive; tree/ holds files, a subdirectory and
	 * symlinks to outside (relative and absolute). */
	ck_assert_int_eq(mkdirat(dfd, "outside", 0755), 0);
	fd = openat(dfd, "outside/keep", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	ck_assert_int_eq(mkdirat(dfd, "tree", 0755), 0);
	ck_assert_int_eq(mkdirat(dfd, "tree/sub", 0755), 0);
	ck_assert_int_eq(mkdirat(dfd, "tree/sub/deeper", 0755), 0);
	fd = openat(dfd, "tree/sub/deeper/f", O_WRONLY | O_CREAT | O_CLOEXEC,
		    0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(symlinkat("../../outside", dfd, "tree/sub/link"), 0);
	{
		char abs[4200];

		snprintf(abs, sizeof(abs), "%s/outside", dir);
		ck_assert_int_eq(symlinkat(abs, dfd, "tree/abslink"), 0);
		ck_assert_int_eq(symlinkat(abs, dfd, "toplink"), 0);
	}
	ck_assert_int_eq(io_remove_tree(dfd, "tree"), 0);
	ck_assert_int_eq(fstatat(dfd, "tree", &st, AT_SYMLINK_NOFOLLOW), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(fstatat(dfd, "outside/keep", &st, 0), 0);
	ck_assert_int_eq(st.st_size, 1);

	/* A symlink given as the tree itself: the link goes, not its
	 * target. */
	ck_assert_int_eq(io_remove_tree(dfd, "toplink"), 0);
	ck_assert_int_eq(fstatat(dfd, "toplink", &st, AT_SYMLINK_NOFOLLOW), -1);
	ck_assert_int_eq(fstatat(dfd, "outside/keep", &st, 0), 0);
	ck_assert_int_eq(io_remove_tree(dfd, "missing"), -ENOENT);
}
END_TEST

/* The names io_readdir returns for dfd/name, "." and ".." left out,
 * joined by spaces in readdir order; the io_readdir result at the end. */
static int list_dir(const char *name, char *out, size_t size)
{
	struct dirent *de;
	DIR *d;
	int ret;

	out[0] = '\0';
	ret = io_opendir_stream(dfd, name, &d);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(d, &de)) > 0)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			snprintf(out + strlen(out), size - strlen(out), "%s ",
				 de->d_name);
	ck_assert_int_eq(io_closedir(d), 0);
	return ret;
}

/* Directory streams: every entry then 0 at the end; a failing readdir
 * is -errno, never the end, and stops io_remove_tree with the tree
 * left in place. */
START_TEST(test_readdir_end_and_error)
{
	char names[256];
	struct stat st;
	int fd;

	ck_assert_int_eq(io_mkdirat(dfd, "d", 0755), 0);
	fd = create("d/a");
	close(fd);
	fd = create("d/b");
	close(fd);
	ck_assert_int_eq(list_dir("d", names, sizeof(names)), 0);
	ck_assert_uint_eq(strlen(names), 4); /* "a b " in any order */
	ck_assert_ptr_nonnull(strstr(names, "a "));
	ck_assert_ptr_nonnull(strstr(names, "b "));
	ck_assert_int_eq(list_dir("missing", names, sizeof(names)), -ENOENT);

	script_install();
	atomic_store(&readdir_ok_left, 1);
	ck_assert_int_eq(list_dir("d", names, sizeof(names)), -EIO);
	atomic_store(&readdir_ok_left, 0);
	ck_assert_int_eq(io_remove_tree(dfd, "d"), -EIO);
	io_ops_set(NULL);
	ck_assert_int_eq(fstatat(dfd, "d/a", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(fstatat(dfd, "d/b", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(io_remove_tree(dfd, "d"), 0);
	ck_assert_int_eq(fstatat(dfd, "d", &st, AT_SYMLINK_NOFOLLOW), -1);
}
END_TEST

/* Whether addr lies in one of the process's mappings (/proc/self/maps;
 * probing the address itself would be an error under valgrind). */
static int is_mapped(const void *addr)
{
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)addr;
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo &&
		    a < hi)
			found = 1;
	fclose(f);
	return found;
}

/* io_mmap shows the file's bytes read-only; io_munmap takes it away. */
START_TEST(test_mmap_wrappers)
{
	unsigned char data[8192];
	void *m = NULL;
	int fd = create("f");

	test_fill_random(data, sizeof(data), 5);
	ck_assert_int_eq(io_pwrite_full(fd, data, sizeof(data), 0), 0);
	ck_assert_int_eq(io_mmap(fd, sizeof(data), &m), 0);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(is_mapped(m), 1);
	ck_assert(memcmp(m, data, sizeof(data)) == 0);
	/* Shared with the page cache: a later write shows through. */
	ck_assert_int_eq(io_pwrite_full(fd, "XY", 2, 100), 0);
	ck_assert(memcmp((char *)m + 100, "XY", 2) == 0);
	ck_assert_int_eq(io_munmap(m, sizeof(data)), 0);
	ck_assert_int_eq(is_mapped(m), 0);
	ck_assert_int_eq(io_mmap(-1, 4096, &m), -EBADF);
	close(fd);
}
END_TEST

/* io_flock: a lock held through another open file is -EWOULDBLOCK with
 * LOCK_NB; EINTR is retried; released on close. */
START_TEST(test_flock_wrapper)
{
	int a = create("lock"), b = io_openat(dfd, "lock", O_RDONLY, 0);

	ck_assert_int_ge(b, 0);
	ck_assert_int_eq(io_flock(a, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(io_flock(b, LOCK_EX | LOCK_NB), -EWOULDBLOCK);
	script_install();
	atomic_store(&flock_eintr_left, 2);
	ck_assert_int_eq(io_flock(b, LOCK_SH | LOCK_NB), -EWOULDBLOCK);
	ck_assert_int_eq(atomic_load(&flock_calls), 3);
	io_ops_set(NULL);
	ck_assert_int_eq(io_close(a), 0);
	ck_assert_int_eq(io_flock(b, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(io_close(b), 0);
}
END_TEST

/* io_fstatvfs describes the filesystem of the descriptor. */
START_TEST(test_fstatvfs_wrapper)
{
	struct statvfs st, want;

	ck_assert_int_eq(io_fstatvfs(dfd, &st), 0);
	ck_assert_int_eq(fstatvfs(dfd, &want), 0);
	ck_assert_uint_eq(st.f_fsid, want.f_fsid);
	ck_assert_uint_eq(st.f_bsize, want.f_bsize);
	ck_assert_int_eq(io_fstatvfs(-1, &st), -EBADF);
}
END_TEST

START_TEST(test_openat_refuses_symlink)
{
	struct stat st;
	int fd;

	fd = create("real");
	close(fd);
	ck_assert_int_eq(mkdirat(dfd, "realdir", 0755), 0);
	ck_assert_int_eq(symlinkat("real", dfd, "link"), 0);
	ck_assert_int_eq(symlinkat("realdir", dfd, "dirlink"), 0);
	ck_assert_int_eq(io_openat(dfd, "link", O_RDONLY, 0), -ELOOP);
	ck_assert_int_eq(io_openat(dfd, "link", O_WRONLY | O_CREAT, 0644),
			 -ELOOP);
	ck_assert_int_lt(io_opendirat(dfd, "dirlink"), 0);
	/* io_fstatat reports the link itself. */
	ck_assert_int_eq(io_fstatat(dfd, "link", &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	fd = io_opendirat(dfd, "realdir");
	ck_assert_int_ge(fd, 0);
	/* Descriptors are close-on-exec. */
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(io_close(fd), 0);
}
END_TEST

/* A FIFO (or anything not a regular file) in place of a data file is
 * refused, and opening it read-only does not wait for a writer; a
 * regular file opens blocking as asked. */
START_TEST(test_openat_refuses_fifo)
{
	int fd;

	ck_assert_int_eq(mkfifoat(dfd, "fifo", 0644), 0);
	alarm(5); /* a blocking open would hang here: fail instead */
	ck_assert_int_eq(io_openat(dfd, "fifo", O_RDONLY, 0), -EINVAL);
	ck_assert_int_eq(io_openat(dfd, "fifo", O_RDWR, 0), -EINVAL);
	ck_assert_int_eq(io_openat(dfd, "fifo", O_RDWR | O_CREAT, 0644),
			 -EINVAL);
	alarm(0);
	fd = io_openat(dfd, "plain", O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(io_close(fd), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fault injection                                                     */

#ifdef FLUXFS_FAULT_INJECTION
START_TEST(test_fault_spec_grammar)
{
	static const char *const good[] = {
		"",
		"off",
		"p=1",
		"p=0",
		"p=0.5",
		"p=.25",
		"p=1.000",
		"seed=7,p=0.01,ops=pwrite+fsync,errno=ENOSPC+EIO,short=0.2,"
		"after=1000",
		"ops=all",
		"ops=openat+close+pread+pwrite+pwritev+fsync+fdatasync",
		"ops=ftruncate+fallocate+fstat+fstatat+renameat+unlinkat+"
		"mkdirat",
		"ops=mmap+munmap+flock+fstatvfs+fdopendir+readdir+closedir",
		"errno=5",
		"errno=EDQUOT+EINTR+EAGAIN+ENOMEM+EROFS+EFBIG+EPERM+EACCES",
		"max=3,after=0",
	};
	static const char *const bad[] = {
		"p=2",
		"p=1.5",
		"p=0.5x",
		"p=-0.1",
		"p=",
		"p",
		"p=.",
		"ops=bogus",
		"ops=",
		"ops=pwrite+",
		"errno=EWHAT",
		"errno=0",
		"errno=",
		"errno=99999",
		"seed=-1",
		"seed=1x",
		"after=",
		"max=x",
		"foo=1",
		"short=3",
		"seed=99999999999999999999",
		"p=1,",
		",p=1",
		"p=1,,seed=2",
		"ops=pwrite++fsync",
		"errno=EIO+",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(fault_set(good[i]) == 0, "'%s' refused", good[i]);
	ck_assert_int_eq(fault_set("off"), 0);
	ck_assert_ptr_eq(io_ops_get(), io_ops_default());
	/* A bad spec leaves the previous one in force. */
	ck_assert_int_eq(fault_set("ops=fsync,errno=ENOSPC"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(fault_set(bad[i]) == -EINVAL, "'%s' accepted",
			      bad[i]);
	ck_assert_int_eq(io_fsync(dfd), -ENOSPC);
	ck_assert_int_eq(fault_set(NULL), 0);
	ck_assert_ptr_eq(io_ops_get(), io_ops_default());
	ck_assert_int_eq(io_fsync(dfd), 0);
}
END_TEST

START_TEST(test_fault_injection)
{
	unsigned char data[4096], back[4096];
	uint64_t before;
	int fd, i, n, enospc = 0, eio = 0;

	test_fill_random(data, sizeof(data), 3);
	fd = create("f");

	/* Every fsync fails with the errno asked for; nothing else does. */
	before = fault_count();
	ck_assert_int_eq(fault_set("ops=fsync,errno=ENOSPC"), 0);
	ck_assert_int_eq(io_fsync(fd), -ENOSPC);
	ck_assert_int_eq(io_fsync(fd), -ENOSPC);
	ck_assert_int_eq(io_fdatasync(fd), 0);
	ck_assert_int_eq(io_pwrite_full(fd, data, 10, 0), 0);
	ck_assert_uint_eq(fault_count() - before, 2);

	/* p=0 never fails. */
	ck_assert_int_eq(fault_set("ops=all,p=0"), 0);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_uint_eq(fault_count() - before, 2);

	/* after=3: three calls pass, then failures; max=2 caps them. */
	ck_assert_int_eq(fault_set("ops=fsync,after=3,max=2"), 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(io_fsync(fd), -EIO);
	ck_assert_int_eq(io_fsync(fd), -EIO);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_uint_eq(fault_count() - before, 4);

	/* Both errnos of a list are used; about half the calls fail. */
	ck_assert_int_eq(fault_set("seed=11,p=0.5,ops=pwrite,errno=ENOSPC+EIO"),
			 0);
	for (i = 0; i < 400; i++) {
		n = io_pwrite_full(fd, data, 1, 0);
		enospc += n == -ENOSPC;
		eio += n == -EIO;
		ck_assert(n == 0 || n == -ENOSPC || n == -EIO);
	}
	ck_assert_int_gt(enospc, 50);
	ck_assert_int_gt(eio, 50);
	ck_assert_int_lt(enospc + eio, 300);
	ck_assert_uint_eq(fault_count() - before, 4 + (unsigned)(enospc + eio));

	/* Short writes: io_pwrite_full still writes everything, but it took
	 * more than one call, and each cut counted. */
	before = fault_count();
	ck_assert_int_eq(fault_set("short=1,ops=fsync,p=0"), 0);
	ck_assert_int_eq(io_pwrite_full(fd, data, sizeof(data), 0), 0);
	ck_assert_uint_gt(fault_count() - before, 0);
	ck_assert_int_eq(fault_set("off"), 0);
	ck_assert_int_eq(io_pread_full(fd, back, sizeof(back), 0),
			 (ssize_t)sizeof(back));
	ck_assert(memcmp(back, data, sizeof(data)) == 0);

	/* EINTR is retried by the wrappers: with max it terminates. */
	before = fault_count();
	ck_assert_int_eq(fault_set("ops=fsync+pwrite,errno=EINTR,max=5"), 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_uint_eq(fault_count() - before, 5);
	ck_assert_int_eq(fault_set("off"), 0);
	close(fd);
}
END_TEST

/* Is fd an open descriptor? */
static int fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* The calls added to the table can be named and fail with the errno
 * asked for; munmap and closedir release their object anyway. */
START_TEST(test_fault_new_ops)
{
	struct statvfs vfs;
	struct dirent *de;
	void *m = NULL;
	DIR *d;
	int fd = create("f"), g, n;
	uint64_t before = fault_count();

	ck_assert_int_eq(io_pwrite_full(fd, "hello", 5, 0), 0);

	ck_assert_int_eq(fault_set("ops=mmap,errno=ENOMEM"), 0);
	ck_assert_int_eq(io_mmap(fd, 4096, &m), -ENOMEM);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(io_fsync(fd), 0);

	ck_assert_int_eq(fault_set("ops=munmap"), 0);
	ck_assert_int_eq(io_mmap(fd, 4096, &m), 0);
	ck_assert_int_eq(io_munmap(m, 4096), -EIO);
	ck_assert_int_eq(is_mapped(m), 0); /* gone anyway */

	ck_assert_int_eq(fault_set("ops=flock,errno=EAGAIN"), 0);
	ck_assert_int_eq(io_flock(fd, LOCK_EX | LOCK_NB), -EWOULDBLOCK);
	ck_assert_int_eq(fault_set("ops=flock"), 0);
	ck_assert_int_eq(io_flock(fd, LOCK_EX | LOCK_NB), -EIO);

	ck_assert_int_eq(fault_set("ops=fstatvfs,errno=EACCES"), 0);
	ck_assert_int_eq(io_fstatvfs(dfd, &vfs), -EACCES);

	ck_assert_int_eq(fault_set("ops=mkdirat,errno=EROFS"), 0);
	ck_assert_int_eq(io_mkdirat(AT_FDCWD, dir, 0755), -EROFS);

	/* fdopendir: the descriptor io_opendir_stream opened is closed. */
	ck_assert_int_eq(fault_set("ops=fdopendir"), 0);
	g = dup(0);
	close(g); /* the lowest free descriptor, which the stream gets */
	ck_assert_int_eq(io_opendir_stream(dfd, ".", &d), -EIO);
	ck_assert_int_eq(fd_open(g), 0);

	/* readdir: the first entry comes, then the error. */
	ck_assert_int_eq(fault_set("ops=readdir,after=1"), 0);
	ck_assert_int_eq(io_opendir_stream(dfd, ".", &d), 0);
	ck_assert_int_eq(io_readdir(d, &de), 1);
	ck_assert_int_eq(io_readdir(d, &de), -EIO);
	g = dirfd(d);

	ck_assert_int_eq(fault_set("ops=closedir"), 0);
	ck_assert_int_eq(io_closedir(d), -EIO);
	ck_assert_int_eq(fd_open(g), 0);

	n = (int)(fault_count() - before);
	ck_assert_int_eq(n, 9);
	ck_assert_int_eq(fault_set("off"), 0);
	close(fd);
}
END_TEST

/* The same seed gives the same faults. */
static uint64_t fault_pattern(const char *spec)
{
	uint64_t bits = 0;
	int i, fd = create("g");

	ck_assert_int_eq(fault_set(spec), 0);
	for (i = 0; i < 64; i++)
		if (io_fsync(fd) < 0)
			bits |= 1ULL << i;
	ck_assert_int_eq(fault_set("off"), 0);
	close(fd);
	return bits;
}

START_TEST(test_fault_seeded)
{
	uint64_t a = fault_pattern("seed=42,p=0.5,ops=fsync");
	uint64_t b = fault_pattern("seed=42,p=0.5,ops=fsync");
	uint64_t c = fault_pattern("seed=43,p=0.5,ops=fsync");

	ck_assert_uint_eq(a, b);
	ck_assert_uint_ne(a, c);
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_ne(a, UINT64_MAX);
}
END_TEST

START_TEST(test_fault_env)
{
	int fd = create("f");
	uint64_t before = fault_count();

	ck_assert_int_eq(
		setenv("FLUXFS_FAULTS", "ops=fdatasync,errno=EROFS", 1), 0);
	ck_assert_int_eq(fault_init_from_env(), 0);
	ck_assert_int_eq(io_fdatasync(fd), -EROFS);
	ck_assert_uint_eq(fault_count() - before, 1);
	ck_assert_int_eq(setenv("FLUXFS_FAULTS", "ops=nonsense", 1), 0);
	ck_assert_int_eq(fault_init_from_env(), -EINVAL);
	ck_assert_int_eq(fault_set("off"), 0);
	ck_assert_int_eq(unsetenv("FLUXFS_FAULTS"), 0);
	ck_assert_int_eq(fault_init_from_env(), 0);
	ck_assert_ptr_eq(io_ops_get(), io_ops_default());
	close(fd);
}
END_TEST

struct hammer {
	int fd;
	int failures;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < 2000; i++)
		if (io_fdatasync(h->fd) < 0)
			h->failures++;
	return NULL;
}

/* Concurrent callers: every injected fault is seen by exactly one call. */
START_TEST(test_fault_threads)
{
	struct hammer h[4];
	pthread_t t[4];
	uint64_t before = fault_count();
	int i, total = 0, fd = create("f");

	ck_assert_int_eq(fault_set("seed=5,p=0.3,ops=fdatasync"), 0);
	for (i = 0; i < 4; i++) {
		h[i].fd = fd;
		h[i].failures = 0;
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += h[i].failures;
	}
	ck_assert_int_eq(fault_set("off"), 0);
	ck_assert_uint_eq(fault_count() - before, (uint64_t)total);
	ck_assert_int_gt(total, 8000 / 5);
	ck_assert_int_lt(total, 8000 * 2 / 5);
	close(fd);
}
END_TEST
#else
START_TEST(test_fault_disabled)
{
	/* A release build ignores FLUXFS_FAULTS entirely. */
	ck_assert_int_eq(setenv("FLUXFS_FAULTS", "ops=all", 1), 0);
	ck_assert_int_eq(fault_init_from_env(), 0);
	ck_assert_ptr_eq(io_ops_get(), io_ops_default());
	ck_assert_int_eq(fault_set("ops=all"), -ENOTSUP);
	ck_assert_uint_eq(fault_count(), 0);
}
END_TEST
#endif

/* ------------------------------------------------------------------ */
/* Crash simulation                                                    */

/* Write s at off through io.h. */
static void put(int fd, const char *s, uint64_t off)
{
	ck_assert_int_eq(io_pwrite_full(fd, s, strlen(s), off), 0);
}

/* Create name and make its directory entry durable, so a crash can only
 * undo the file's data: what the data-model tests below look at. */
static int create_synced(const char *name)
{
	int fd = create(name);

	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	return fd;
}

static int exists(const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

START_TEST(test_crash_drop_keep)
{
	struct crashsim_stats st;
	int fd, g;

	crashsim_install();
	fd = create_synced("f");
	put(fd, "AAAA", 0);
	ck_assert_uint_eq(crashsim_pending(), 1);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_uint_eq(crashsim_pending(), 0);
	put(fd, "BBBB", 4); /* extends: unsynced */
	put(fd, "xx", 1);   /* overwrites synced bytes: unsynced */
	ck_assert_uint_eq(crashsim_pending(), 2);
	/* The test sees its writes before the crash. */
	assert_content("f", "AxxABBBB", 8);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, &st), 0);
	ck_assert_uint_eq(st.files, 1);
	ck_assert_uint_eq(st.dropped, 2);
	ck_assert_uint_eq(st.kept, 0);
	assert_content("f", "AAAA", 4);
	ck_assert_uint_eq(crashsim_pending(), 0);

	/* KEEP leaves everything; fdatasync counts as a sync. */
	put(fd, "CC", 4);
	ck_assert_int_eq(io_fdatasync(fd), 0);
	put(fd, "DD", 6);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_KEEP, 1, &st), 0);
	ck_assert_uint_eq(st.kept, 1);
	assert_content("f", "AAAACCDD", 8);

	/* Another file's sync does not make this one's data durable. */
	g = create_synced("g");
	put(fd, "EE", 8);
	put(g, "other", 0);
	ck_assert_int_eq(io_fsync(g), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, &st), 0);
	assert_content("f", "AAAACCDD", 8);
	assert_content("g", "other", 5);
	crashsim_uninstall();
	close(fd);
	close(g);
}
END_TEST

START_TEST(test_crash_truncate_and_append)
{
	char p1[] = "P", p2[] = "QR";
	struct iovec iov[2];
	int fd, afd;

	crashsim_install();
	fd = create_synced("f");
	put(fd, "0123456789", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	/* An unsynced shrink is undone, bytes and all. */
	ck_assert_int_eq(io_ftruncate(fd, 3), 0);
	ck_assert_uint_eq(size_of(fd), 3);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 2, NULL), 0);
	assert_content("f", "0123456789", 10);
	/* Kept, it stays. */
	ck_assert_int_eq(io_ftruncate(fd, 3), 0);
	put(fd, "abc", 3);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_KEEP, 2, NULL), 0);
	assert_content("f", "012abc", 6);
	ck_assert_int_eq(io_fsync(fd), 0);

	/* O_APPEND: the write is recorded where the kernel put it (the end),
	 * not at the offset passed. */
	afd = io_openat(dfd, "f", O_WRONLY | O_APPEND, 0);
	ck_assert_int_ge(afd, 0);
	put(afd, "ZZ", 0);
	assert_content("f", "012abcZZ", 8);
	/* pwritev is recorded too. */
	iov[0].iov_base = p1;
	iov[0].iov_len = 1;
	iov[1].iov_base = p2;
	iov[1].iov_len = 2;
	ck_assert_int_eq(io_pwritev_full(fd, iov, 2, 8), 0);
	assert_content("f", "012abcZZPQR", 11);
	ck_assert_uint_eq(crashsim_pending(), 2);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 2, NULL), 0);
	assert_content("f", "012abc", 6);
	crashsim_uninstall();
	close(afd);
	close(fd);
}
END_TEST

START_TEST(test_crash_garble)
{
	struct crashsim_stats st;
	unsigned char *got;
	size_t len;
	int fd;

	crashsim_install();
	fd = create_synced("f");
	put(fd, "synced--", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	put(fd, "unsynced-data-that-will-be-garbled", 8);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_GARBLE, 3, &st), 0);
	ck_assert_uint_eq(st.garbled, 1);
	got = slurp("f", &len);
	ck_assert_uint_eq(len, 8 + 34);
	ck_assert(memcmp(got, "synced--", 8) == 0);
	ck_assert(memcmp(got + 8, "unsynced-data-that-will-be-garbled", 34) !=
		  0);
	free(got);
	crashsim_uninstall();
	close(fd);
}
END_TEST

/* Appends of 16-byte records: records [0, synced) are fsynced. */
#define NREC 100
static void write_records(int fd, int synced)
{
	char rec[17];
	int i;

	for (i = 0; i < NREC; i++) {
		snprintf(rec, sizeof(rec), "record-%08d\n", i);
		put(fd, rec, (uint64_t)i * 16);
		if (i + 1 == synced)
			ck_assert_int_eq(io_fsync(fd), 0);
	}
}

START_TEST(test_crash_random)
{
	struct crashsim_stats st;
	unsigned char *got, *again = NULL;
	char rec[17];
	size_t len, len2 = 0;
	uint32_t intact;
	int fd, i, r;

	for (r = 0; r < 2; r++) {
		crashsim_install();
		fd = create_synced("f");
		write_records(fd, 10);
		ck_assert_uint_eq(crashsim_pending(), NREC - 10);
		ck_assert_int_eq(crashsim_crash(CRASHSIM_RANDOM, 99, &st), 0);
		ck_assert_uint_eq(st.kept + st.dropped + st.garbled, NREC - 10);
		ck_assert_uint_gt(st.kept, 10);
		ck_assert_uint_gt(st.dropped, 10);
		ck_assert_uint_gt(st.garbled, 10);
		got = slurp("f", &len);
		ck_assert_uint_ge(len, 160);
		ck_assert_uint_eq(len % 16, 0);
		/* The synced records are intact; of the rest, exactly the
		 * kept ones are. */
		intact = 0;
		for (i = 0; i < NREC && (size_t)i * 16 < len; i++) {
			snprintf(rec, sizeof(rec), "record-%08d\n", i);
			if (i < 10)
				ck_assert(memcmp(got + i * 16, rec, 16) == 0);
			else if (memcmp(got + i * 16, rec, 16) == 0)
				intact++;
		}
		ck_assert_uint_eq(intact, st.kept);
		if (r == 0) {
			again = got;
			len2 = len;
		} else {
			/* Same seed, same crash. */
			ck_assert_uint_eq(len, len2);
			ck_assert(memcmp(got, again, len) == 0);
			free(again);
			free(got);
		}
		crashsim_uninstall();
		close(fd);
	}
}
END_TEST

START_TEST(test_crash_prefix)
{
	struct crashsim_stats st;
	unsigned char *got, *full;
	char rec[17];
	uint64_t seed;
	size_t len;
	int fd, i;

	full = malloc(NREC * 16);
	ck_assert_ptr_nonnull(full);
	for (i = 0; i < NREC; i++) {
		snprintf(rec, sizeof(rec), "record-%08d\n", i);
		memcpy(full + i * 16, rec, 16);
	}
	for (seed = 1; seed <= 20; seed++) {
		crashsim_install();
		fd = create_synced("f");
		write_records(fd, 10);
		ck_assert_int_eq(crashsim_crash(CRASHSIM_PREFIX, seed, &st), 0);
		ck_assert_uint_eq(st.kept + st.torn + st.dropped, NREC - 10);
		ck_assert_uint_le(st.torn, 1);
		got = slurp("f", &len);
		/* What survives is a prefix of what was written, at least
		 * the synced part, ending in the torn record. */
		ck_assert_uint_ge(len, 160);
		ck_assert_uint_le(len, NREC * 16);
		ck_assert(memcmp(got, full, len) == 0);
		ck_assert_uint_ge(len, (10 + st.kept) * 16);
		ck_assert_uint_lt(len, (10 + st.kept + st.torn) * 16 + 1);
		free(got);
		crashsim_uninstall();
		close(fd);
	}
	free(full);
}
END_TEST

/* io_write_atomic survives any crash: its tmp file is synced, renamed,
 * and the directory synced. */
START_TEST(test_crash_write_atomic)
{
	crashsim_install();
	ck_assert_int_eq(io_write_atomic(dfd, "meta", "version=1\n", 10), 0);
	ck_assert_uint_eq(crashsim_pending_dirs(), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 5, NULL), 0);
	assert_content("meta", "version=1\n", 10);
	ck_assert(!exists("meta.tmp"));
	/* Replacing it again: the old contents never come back. */
	ck_assert_int_eq(io_write_atomic(dfd, "meta", "version=2\n", 10), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 5, NULL), 0);
	assert_content("meta", "version=2\n", 10);
	crashsim_uninstall();
	ck_assert_ptr_eq(io_ops_get(), io_ops_default());
}
END_TEST

/* A created file whose directory was never fsynced vanishes, even with
 * its data fsynced; once the directory is synced it stays. */
START_TEST(test_crash_dir_create)
{
	struct crashsim_stats st;
	int fd;

	crashsim_install();
	fd = create("new");
	put(fd, "data", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_uint_eq(crashsim_pending(), 0);
	ck_assert_uint_eq(crashsim_pending_dirs(), 1);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, &st), 0);
	ck_assert_uint_eq(st.dir_undone, 1);
	ck_assert_msg(!exists("new"), "an unsynced create survived the crash");
	close(fd);

	/* KEEP keeps it. */
	fd = create("kept");
	ck_assert_int_eq(crashsim_crash(CRASHSIM_KEEP, 1, &st), 0);
	ck_assert_uint_eq(st.dir_kept, 1);
	ck_assert(exists("kept"));
	close(fd);

	/* Synced directory: durable.  Reopening an existing name with
	 * O_CREAT records nothing. */
	fd = create("new");
	put(fd, "data", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	ck_assert_uint_eq(crashsim_pending_dirs(), 0);
	close(fd);
	fd = io_openat(dfd, "new", O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(crashsim_pending_dirs(), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, NULL), 0);
	assert_content("new", "data", 4);
	close(fd);

	/* A file's fsync is not its directory's. */
	fd = create("other");
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, NULL), 0);
	ck_assert(!exists("other"));
	close(fd);
	crashsim_uninstall();
}
END_TEST

/* A rename not followed by a directory fsync is undone: the old name
 * comes back, and the new name gets its old contents back. */
START_TEST(test_crash_dir_rename)
{
	struct crashsim_stats st;
	int fd;

	crashsim_install();
	fd = create_synced("name");
	put(fd, "old", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	close(fd);
	fd = create_synced("name.tmp");
	put(fd, "new!", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	close(fd);
	ck_assert_int_eq(io_renameat(dfd, "name.tmp", dfd, "name"), 0);
	assert_content("name", "new!", 4);
	ck_assert_uint_eq(crashsim_pending_dirs(), 1);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 2, &st), 0);
	ck_assert_uint_eq(st.dir_undone, 1);
	assert_content("name", "old", 3);
	assert_content("name.tmp", "new!", 4);

	/* Synced, it stays. */
	ck_assert_int_eq(io_renameat(dfd, "name.tmp", dfd, "name"), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 2, NULL), 0);
	assert_content("name", "new!", 4);
	ck_assert(!exists("name.tmp"));

	/* The careless pattern: an unsynced tmp renamed into place without
	 * any sync; both the create and the rename are undone. */
	fd = create("careless.tmp");
	put(fd, "data", 0);
	close(fd);
	ck_assert_int_eq(io_renameat(dfd, "careless.tmp", dfd, "careless"), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 5, NULL), 0);
	ck_assert(!exists("careless"));
	ck_assert(!exists("careless.tmp"));

	/* Syncing the directory after the rename makes the create durable
	 * too (the rename could not survive without it); the data was never
	 * synced, so the file is empty. */
	fd = create("careless.tmp");
	put(fd, "data", 0);
	close(fd);
	ck_assert_int_eq(io_renameat(dfd, "careless.tmp", dfd, "careless"), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	ck_assert_uint_eq(crashsim_pending_dirs(), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 5, NULL), 0);
	assert_content("careless", "", 0);

	/* RENAME_EXCHANGE is undone by exchanging back. */
	fd = create_synced("a");
	put(fd, "A", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	close(fd);
	fd = create_synced("b");
	put(fd, "B", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	close(fd);
	if (io_renameat2(dfd, "a", dfd, "b", RENAME_EXCHANGE) == 0) {
		assert_content("a", "B", 1);
		ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 5, NULL), 0);
		assert_content("a", "A", 1);
		assert_content("b", "B", 1);
	}
	crashsim_uninstall();
}
END_TEST

/* An unlink not synced comes back, with the file's last durable data. */
START_TEST(test_crash_dir_unlink)
{
	int fd;

	crashsim_install();
	fd = create_synced("u");
	put(fd, "durable", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	put(fd, "-lost", 7);
	ck_assert_int_eq(io_unlinkat(dfd, "u", 0), 0);
	ck_assert(!exists("u"));
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 3, NULL), 0);
	assert_content("u", "durable", 7);
	close(fd);

	/* KEEP: the unlink stays. */
	ck_assert_int_eq(io_unlinkat(dfd, "u", 0), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_KEEP, 3, NULL), 0);
	ck_assert(!exists("u"));

	/* Synced: gone for good. */
	fd = create_synced("v");
	close(fd);
	ck_assert_int_eq(io_unlinkat(dfd, "v", 0), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 3, NULL), 0);
	ck_assert(!exists("v"));
	crashsim_uninstall();
}
END_TEST

/* mkdir and rmdir, and a directory change is its own parent's business:
 * syncing the new directory does not make its name durable. */
START_TEST(test_crash_dir_mkdir)
{
	struct stat st;
	int sub, fd;

	crashsim_install();
	ck_assert_int_eq(io_mkdirat(dfd, "d", 0755), 0);
	sub = io_opendirat(dfd, "d");
	ck_assert_int_ge(sub, 0);
	fd = io_openat(sub, "f", O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	put(fd, "x", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(io_fsync_dir(sub), 0);
	ck_assert_uint_eq(crashsim_pending_dirs(), 1);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 4, NULL), 0);
	ck_assert_msg(!exists("d"), "an unsynced mkdir survived the crash");
	close(fd);
	io_close(sub);

	/* Synced, then removed without a sync: it comes back, empty. */
	ck_assert_int_eq(io_mkdirat(dfd, "e", 0700), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	ck_assert_int_eq(io_unlinkat(dfd, "e", AT_REMOVEDIR), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 4, NULL), 0);
	ck_assert_int_eq(fstatat(dfd, "e", &st, 0), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0700);

	/* A rename between directories is durable once either is synced. */
	fd = create_synced("m");
	close(fd);
	sub = io_opendirat(dfd, "e");
	ck_assert_int_ge(sub, 0);
	ck_assert_int_eq(io_renameat(dfd, "m", sub, "m"), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 4, NULL), 0);
	ck_assert(exists("m"));
	ck_assert_int_eq(io_renameat(dfd, "m", sub, "m"), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 4, NULL), 0);
	ck_assert(!exists("m"));
	ck_assert(exists("e/m"));
	io_close(sub);
	crashsim_uninstall();
}
END_TEST

/* fluxfs removes a partition by renaming its directory into a trash
 * directory, then deleting it there: undone newest first, the directory
 * comes back (a new inode) with its files, and the rename is undone out
 * of the new one. */
START_TEST(test_crash_dir_trash)
{
	int sub, trash, fd;

	crashsim_install();
	ck_assert_int_eq(io_mkdirat(dfd, "p", 0755), 0);
	ck_assert_int_eq(io_mkdirat(dfd, "trash", 0700), 0);
	ck_assert_int_eq(io_fsync_dir(dfd), 0);
	sub = io_opendirat(dfd, "p");
	ck_assert_int_ge(sub, 0);
	fd = io_openat(sub, "f", O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	put(fd, "kept", 0);
	ck_assert_int_eq(io_fsync(fd), 0);
	ck_assert_int_eq(io_fsync_dir(sub), 0);
	close(fd);
	io_close(sub);
	trash = io_opendirat(dfd, "trash");
	ck_assert_int_ge(trash, 0);
	ck_assert_int_eq(io_renameat(dfd, "p", trash, "p1"), 0);
	ck_assert_int_eq(io_remove_tree(trash, "p1"), 0);
	ck_assert(!exists("p"));
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 6, NULL), 0);
	assert_content("p/f", "kept", 4);
	ck_assert(!exists("trash/p1"));
	io_close(trash);
	crashsim_uninstall();
}
END_TEST

/* PREFIX and RANDOM keep the oldest directory changes up to a point, as
 * a journal replays in order: never a later change without the earlier
 * ones.  Names c0..c7 created in order; what survives is c0..c(k-1). */
START_TEST(test_crash_dir_prefix)
{
	struct crashsim_stats st;
	char name[8];
	uint64_t seed;
	int fd, i, k, partial = 0;

	for (seed = 1; seed <= 20; seed++) {
		crashsim_install();
		for (i = 0; i < 8; i++) {
			snprintf(name, sizeof(name), "c%d", i);
			fd = create(name);
			close(fd);
		}
		ck_assert_int_eq(crashsim_crash(seed & 1 ? CRASHSIM_PREFIX
							 : CRASHSIM_RANDOM,
						seed, &st),
				 0);
		ck_assert_uint_eq(st.dir_kept + st.dir_undone, 8);
		ck_assert_uint_eq(st.dir_conflicts, 0);
		for (k = 0; k < 8; k++) {
			snprintf(name, sizeof(name), "c%d", k);
			if (!exists(name))
				break;
		}
		ck_assert_uint_eq((uint32_t)k, st.dir_kept);
		for (i = k; i < 8; i++) {
			snprintf(name, sizeof(name), "c%d", i);
			ck_assert_msg(!exists(name), "seed %llu: c%d without c%d",
				      (unsigned long long)seed, i, k);
		}
		if (k > 0 && k < 8)
			partial++;
		for (i = 0; i < k; i++) {
			snprintf(name, sizeof(name), "c%d", i);
			ck_assert_int_eq(unlinkat(dfd, name, 0), 0);
		}
		crashsim_uninstall();
	}
	ck_assert_int_gt(partial, 0);
}
END_TEST

static Suite *io_suite(void)
{
	Suite *s = suite_create("io");
	TCase *tc = tcase_create("wrappers");
	TCase *tf = tcase_create("faults");
	TCase *tcs = tcase_create("crashsim");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_short_writes_retried);
	tcase_add_test(tc, test_eintr_retried);
	tcase_add_test(tc, test_errors_are_negative_errno);
	tcase_add_test(tc, test_write_atomic);
	tcase_add_test(tc, test_remove_tree_no_follow);
	tcase_add_test(tc, test_readdir_end_and_error);
	tcase_add_test(tc, test_mmap_wrappers);
	tcase_add_test(tc, test_flock_wrapper);
	tcase_add_test(tc, test_fstatvfs_wrapper);
	tcase_add_test(tc, test_openat_refuses_symlink);
	tcase_add_test(tc, test_openat_refuses_fifo);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tf, setup, teardown);
#ifdef FLUXFS_FAULT_INJECTION
	tcase_add_test(tf, test_fault_spec_grammar);
	tcase_add_test(tf, test_fault_injection);
	tcase_add_test(tf, test_fault_new_ops);
	tcase_add_test(tf, test_fault_seeded);
	tcase_add_test(tf, test_fault_env);
	tcase_add_test(tf, test_fault_threads);
#else
	tcase_add_test(tf, test_fault_disabled);
#endif
	suite_add_tcase(s, tf);

	tcase_add_checked_fixture(tcs, setup, teardown);
	tcase_add_test(tcs, test_crash_drop_keep);
	tcase_add_test(tcs, test_crash_truncate_and_append);
	tcase_add_test(tcs, test_crash_garble);
	tcase_add_test(tcs, test_crash_random);
	tcase_add_test(tcs, test_crash_prefix);
	tcase_add_test(tcs, test_crash_write_atomic);
	tcase_add_test(tcs, test_crash_dir_create);
	tcase_add_test(tcs, test_crash_dir_rename);
	tcase_add_test(tcs, test_crash_dir_unlink);
	tcase_add_test(tcs, test_crash_dir_mkdir);
	tcase_add_test(tcs, test_crash_dir_trash);
	tcase_add_test(tcs, test_crash_dir_prefix);
	suite_add_tcase(s, tcs);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(io_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
