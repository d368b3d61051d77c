/*
 * testutil.h - helpers shared by the Check unit tests: temporary
 * directories that clean themselves up, random bytes, a fake clock,
 * the log lines a call wrote to stderr.
 */
#ifndef FLUXFS_TESTUTIL_H
#define FLUXFS_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

/* Deterministic xorshift64*, so a failing seed can be replayed. */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline void test_fill_random(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed ? seed : 1, r = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if ((i & 7) == 0)
			r = test_rand(&s);
		p[i] = (unsigned char)(r >> ((i & 7) * 8));
	}
}

/* nmsg newline-terminated lines of random length in [min, max] (newline
 * included), letters a-z; malloc'd, length in *len. */
static inline char *test_make_lines(uint64_t seed, uint32_t nmsg, size_t min,
				    size_t max, size_t *len)
{
	uint64_t s = seed ? seed : 1;
	size_t total = 0, i, l, at = 0;
	size_t *lens = malloc(nmsg * sizeof(*lens));
	char *buf;

	for (i = 0; i < nmsg; i++) {
		lens[i] = min + test_rand(&s) % (max - min + 1);
		total += lens[i];
	}
	buf = malloc(total);
	for (i = 0; i < nmsg; i++) {
		for (l = 0; l + 1 < lens[i]; l++)
			buf[at++] = (char)('a' + test_rand(&s) % 26);
		buf[at++] = '\n';
	}
	free(lens);
	*len = total;
	return buf;
}

/* A fresh temporary directory; returns an O_DIRECTORY fd and writes its
 * path into path (PATH_MAX bytes). */
static inline int test_tmpdir(char *path)
{
	const char *base = getenv("TMPDIR");
	int fd;

	snprintf(path, 4096, "%s/fluxfs-test-XXXXXX", base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(path));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Whether fd is open on a file whose name ends with sfx (for injected
 * faults aimed at one kind of file). */
static inline int test_fd_is(int fd, const char *sfx)
{
	char link[64], name[4096];
	ssize_t n;
	size_t k = strlen(sfx);

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, name, sizeof(name) - 1);
	if (n < (ssize_t)k)
		return 0;
	name[n] = 0;
	return !strcmp(name + n - k, sfx);
}

static inline void test_rmtree(int fd, const char *path)
{
	char cmd[4200];

	close(fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write dfd/path whole (a file as a crash or a hand edit left it). */
static inline void test_write_file(int dfd, const char *path,
				   const char *data, size_t len)
{
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* An io_ops renameat that fails with EIO (a failed atomic replace). */
static inline int test_fail_renameat(int a, const char *b, int c,
				     const char *d)
{
	(void)a, (void)b, (void)c, (void)d;
	errno = EIO;
	return -1;
}

/* Send this process's stderr (the daemon's log lines) to the file at path
 * until test_log_end(); *saved keeps the real stderr meanwhile. */
static inline void test_log_begin(const char *path, int *saved)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	*saved = dup(STDERR_FILENO);
	ck_assert_int_ge(*saved, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Restore stderr; the lines logged since test_log_begin() into buf. */
static inline void test_log_end(const char *path, int *saved, char *buf,
				size_t size)
{
	ssize_t n;
	int fd;

	ck_assert_int_eq(dup2(*saved, STDERR_FILENO), STDERR_FILENO);
	close(*saved);
	*saved = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, size - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
}

#endif
