/*
 * check_registry_open.c - opening a data directory when the calls below
 * it fail: a lock that cannot be taken (held by another opener, or a
 * failing flock), a data directory that cannot be created, a listing
 * that fails part-way, a statfs that fails.  Each is refused with the
 * errno of the failure and a log line naming it, and leaves nothing
 * locked or half-formatted behind.  And the inode numbers a data
 * directory keeps: handed out from a bound kept in fluxfs.meta, never
 * twice, the same when opened again, given to a directory without them
 * on its first open.
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "testutil.h"
#include "layout.h"
#include "registry.h"
#include "registry_int.h"
#include "fdbudget.h"
#include "registry_fixture.h"

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* One io_ops table for every test: the calls named fail with EIO. */
static struct io_ops failing;

static int fail_flock(int fd, int op)
{
	(void)fd;
	(void)op;
	errno = EIO;
	return -1;
}

static int fail_mkdirat(int dirfd, const char *path, mode_t mode)
{
	(void)dirfd;
	(void)path;
	(void)mode;
	errno = EACCES;
	return -1;
}

static struct dirent *fail_readdir(DIR *d)
{
	(void)d;
	errno = EIO;
	return NULL;
}

/* readdir failing in directories named "t" only. */
static struct dirent *fail_readdir_in_t(DIR *d)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd(d));
	n = readlink(link, target, sizeof(target) - 1);
	if (n >= 2 && !memcmp(target + n - 2, "/t", 2)) {
		errno = EIO;
		return NULL;
	}
	return readdir(d);
}

static int fail_fstatvfs(int fd, struct statvfs *st)
{
	(void)fd;
	(void)st;
	errno = EIO;
	return -1;
}

static void fail_install(void)
{
	failing = *io_ops_default();
	io_ops_set(&failing);
}

static int open_quiet(struct registry **reg)
{
	char log[4096];
	int ret;

	test_log_begin(logpath, &saved_stderr);
	ret = registry_open(data, &defaults, &no_hooks, reg);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	return ret;
}

/* A failing flock refuses the open with its errno and one line; nothing
 * stays locked, so the next open works. */
START_TEST(test_flock_fails)
{
	struct registry *reg = NULL;
	char log[4096];

	fail_install();
	failing.flock = fail_flock;
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), -EIO);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_ptr_null(reg);
	ck_assert_int_eq(lines(log), 1);
	ck_assert_msg(strstr(log, "cannot lock '") &&
			      strstr(log, "Input/output error"),
		      "log: %s", log);
	io_ops_set(NULL);
	ck_assert_int_eq(open_quiet(&reg), 0);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

/* A second opener of a served data directory is told it is busy, with
 * one line naming the directory; the first one's close releases it. */
START_TEST(test_lock_held)
{
	struct registry *a = NULL, *b = NULL;
	char log[4096];

	ck_assert_int_eq(open_quiet(&a), 0);
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &b), -EBUSY);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_ptr_null(b);
	ck_assert_int_eq(lines(log), 1);
	ck_assert_msg(strstr(log, "is already served by fluxfs"), "log: %s",
		      log);
	ck_assert_int_eq(registry_close(a), 0);
	ck_assert_int_eq(open_quiet(&b), 0);
	ck_assert_int_eq(registry_close(b), 0);
}
END_TEST

/* A data directory that cannot be created: its errno and one line. */
START_TEST(test_mkdir_fails)
{
	struct registry *reg = NULL;
	struct stat st;
	char log[4096];

	fail_install();
	failing.mkdirat = fail_mkdirat;
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg),
			 -EACCES);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_ptr_null(reg);
	ck_assert_int_eq(lines(log), 1);
	ck_assert_msg(strstr(log, "cannot create '") &&
			      strstr(log, "Permission denied"),
		      "log: %s", log);
	ck_assert_int_eq(stat(data, &st), -1);
}
END_TEST

/* A listing that fails is an error, never a shorter directory: a
 * foreign directory is not taken for an empty one (and formatted), and
 * a data directory does not mount with topics missing. */
START_TEST(test_readdir_fails)
{
	struct registry *reg = NULL;
	struct node *t, *p;
	struct stat st;
	char log[4096], path[PATH_MAX + 32], junk[PATH_MAX + 32];

	/* A foreign, non-empty directory. */
	ck_assert_int_eq(mkdir(data, 0755), 0);
	snprintf(junk, sizeof(junk), "%s/junk", data);
	ck_assert_int_eq(mkdir(junk, 0755), 0);
	fail_install();
	failing.readdir = fail_readdir;
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), -EIO);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_ptr_null(reg);
	ck_assert_msg(strstr(log, "cannot read '"), "log: %s", log);
	snprintf(path, sizeof(path), "%s/fluxfs.meta", data);
	ck_assert_int_eq(stat(path, &st), -1);
	io_ops_set(NULL);
	ck_assert_int_eq(rmdir(junk), 0);

	/* A data directory with a topic and a partition. */
	ck_assert_int_eq(open_quiet(&reg), 0);
	ck_assert_int_eq(
		registry_mkdir(reg, registry_node(reg, 1), "t", 0755, 0, 0, &t),
		0);
	ck_assert_int_eq(registry_create(reg, t, "0", 0644, 0, 0, &p), 0);
	ck_assert_int_eq(registry_close(reg), 0);
	reg = NULL;
	fail_install();
	failing.readdir = fail_readdir;
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), -EIO);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_ptr_null(reg);
	ck_assert_msg(strstr(log, "cannot load '") &&
			      strstr(log, "Input/output error"),
		      "log: %s", log);
	io_ops_set(NULL);

	/* Only the topic's listing fails: as for a partition that cannot be
	 * opened, the topic is reported and the rest mounts. */
	fail_install();
	failing.readdir = fail_readdir_in_t;
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), 0);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_int_eq(lines(log), 1);
	ck_assert_msg(strstr(log, "cannot list topic 't': Input/output error"),
		      "log: %s", log);
	ck_assert_int_eq(registry_close(reg), 0);
	io_ops_set(NULL);
	ck_assert_int_eq(open_quiet(&reg), 0);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

/* statfs of the mount: the backing filesystem's, or its errno. */
START_TEST(test_statfs_fails)
{
	struct registry *reg = NULL;
	struct statvfs st;

	ck_assert_int_eq(open_quiet(&reg), 0);
	ck_assert_int_eq(registry_statfs(reg, &st), 0);
	ck_assert_uint_gt(st.f_bsize, 0);
	fail_install();
	failing.fstatvfs = fail_fstatvfs;
	ck_assert_int_eq(registry_statfs(reg, &st), -EIO);
	io_ops_set(NULL);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every node's inode number into nums, sorted: unique, at or above
 * LAYOUT_INO_FIRST and below the bound stored in fluxfs.meta. */
static void check_numbers(struct registry *reg, uint64_t *nums, int want)
{
	struct node *root = registry_node(reg, REGISTRY_INO_ROOT), *t, *p;
	char path[PATH_MAX + 32];
	uint64_t bound = 0;
	int n = 0, i, j, fd;

	snprintf(path, sizeof(path), "%s", data);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(layout_datadir_ino_load(fd, &bound), 0);
	close(fd);
	ck_assert_uint_eq(registry_st_ino(reg, root), REGISTRY_INO_ROOT);
	for (t = root->children; t; t = t->next) {
		nums[n++] = registry_st_ino(reg, t);
		for (p = t->children; p; p = p->next)
			nums[n++] = registry_st_ino(reg, p);
	}
	ck_assert_int_eq(n, want);
	qsort(nums, (size_t)n, sizeof(*nums), u64_cmp);
	for (i = 0; i < n; i++) {
		ck_assert_uint_ge(nums[i], LAYOUT_INO_FIRST);
		ck_assert_uint_lt(nums[i], bound);
		for (j = 0; j < i; j++)
			ck_assert_uint_ne(nums[i], nums[j]);
	}
}

static uint64_t max_of(const uint64_t *nums, int n)
{
	uint64_t m = 0;
	int i;

	for (i = 0; i < n; i++)
		if (nums[i] > m)
			m = nums[i];
	return m;
}

/* Open a fresh data directory holding topics t and u of parts
 * partitions each, named 0, 1, ... */
static struct registry *open_two_topics(int parts)
{
	struct registry *reg = NULL;
	struct node *t, *u, *p;
	int i;

	ck_assert_int_eq(open_quiet(&reg), 0);
	ck_assert_int_eq(
		registry_mkdir(reg, registry_node(reg, 1), "t", 0755, 0, 0, &t),
		0);
	ck_assert_int_eq(
		registry_mkdir(reg, registry_node(reg, 1), "u", 0755, 0, 0, &u),
		0);
	for (i = 0; i < parts; i++) {
		char name[2] = {(char)('0' + i), 0};

		ck_assert_int_eq(registry_create(reg, t, name, 0644, 0, 0, &p),
				 0);
		ck_assert_int_eq(registry_create(reg, u, name, 0644, 0, 0, &p),
				 0);
	}
	return reg;
}

/* The stripe of registry_part.c's open locks a node uses: nodes whose
 * addresses hash alike share one (as open_lock computes it). */
static unsigned open_stripe(const struct node *n)
{
	uintptr_t h = (uintptr_t)n >> 4;

	return (unsigned)((h ^ (h >> 8)) % REGISTRY_OPEN_LOCKS);
}

/* Room for one partition.  Opening b must close the idle a even when a
 * shares the open lock b's opener holds: a trylock of it failed, and the
 * open was refused with EMFILE although nothing was in use. */
START_TEST(test_victim_sharing_the_openers_lock)
{
	struct node *t, *p[600], *a = NULL, *b = NULL;
	struct registry *reg;
	char name[16];
	int i, j;

	ck_assert_int_eq(open_quiet(&reg), 0);
	registry_set_fd_budget(reg, FDB_OPEN_COST);
	ck_assert_int_eq(registry_mkdir(reg, registry_node(reg, 1), "t", 0755,
					0, 0, &t),
			 0);
	for (i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "%d", i);
		ck_assert_int_eq(registry_create(reg, t, name, 0644, 0, 0,
						 &p[i]),
				 0);
	}
	/* 600 nodes over 256 stripes: two share one. */
	for (i = 0; i < 600 && !a; i++)
		for (j = i + 1; j < 600 && !a; j++)
			if (open_stripe(p[i]) == open_stripe(p[j])) {
				a = p[i];
				b = p[j];
			}
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(registry_part_get(reg, a), 0);
	registry_part_put(reg, a);
	ck_assert_int_eq(registry_part_is_open(reg, a), 1);
	ck_assert_int_eq(registry_part_get(reg, b), 0);
	ck_assert_int_eq(registry_part_is_open(reg, a), 0);
	registry_part_put(reg, b);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

START_TEST(test_inode_numbers)
{
	struct registry *reg = NULL;
	struct node *t, *p;
	uint64_t a[16], b[16], c[16];
	char cmd[3 * PATH_MAX], log[4096], *line;
	int i;

	reg = open_two_topics(3);
	check_numbers(reg, a, 8);
	ck_assert_int_eq(registry_close(reg), 0);

	/* The same numbers when opened again. */
	ck_assert_int_eq(open_quiet(&reg), 0);
	check_numbers(reg, b, 8);
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(a[i], b[i]);
	/* A fresh partition: above all of them. */
	t = registry_node(reg, 1)->children;
	ck_assert_int_eq(registry_create(reg, t, "9", 0644, 0, 0, &p), 0);
	ck_assert_uint_gt(registry_st_ino(reg, p), max_of(a, 8));
	ck_assert_int_eq(registry_close(reg), 0);

	/* A directory from before stored numbers: every meta file loses its
	 * number and fluxfs.meta its bound; the open stores new ones, with
	 * one log line, and the next open keeps them. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && sed -i '/^ino=/d' */topic.meta */*/partition.meta"
		 " && printf 'format=2\\n' >fluxfs.meta",
		 data);
	ck_assert_int_eq(system(cmd), 0);
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), 0);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	line = strstr(log, "stored inode numbers for 9 topics and partitions");
	ck_assert_msg(line, "log: %s", log);
	/* and the summary's line: every meta file changed, nothing of it
	 * was used */
	ck_assert_msg(strstr(log, "0 topics loaded from the mount summary, "
				  "2 listed"),
		      "log: %s", log);
	ck_assert_int_eq(lines(log), 2);
	check_numbers(reg, c, 9);
	ck_assert_int_eq(registry_close(reg), 0);
	ck_assert_int_eq(open_quiet(&reg), 0);
	check_numbers(reg, b, 9);
	for (i = 0; i < 9; i++)
		ck_assert_uint_eq(b[i], c[i]);
	ck_assert_int_eq(registry_close(reg), 0);

	/* Two partitions sharing a number (a partition directory copied
	 * inside the data directory): one keeps it, the other gets a new
	 * one. */
	snprintf(cmd, sizeof(cmd), "cp -a '%s/t/0' '%s/t/copy'", data, data);
	ck_assert_int_eq(system(cmd), 0);
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), 0);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	ck_assert_msg(strstr(log, "stored inode numbers for 1 topics"),
		      "log: %s", log);
	check_numbers(reg, c, 10);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

/* Node path/name below the root ("t" or "t/0"), or NULL. */
static struct node *find(struct registry *reg, const char *topic,
			 const char *part)
{
	struct node *t, *p;

	for (t = registry_node(reg, 1)->children; t; t = t->next) {
		if (strcmp(t->name, topic))
			continue;
		if (!part)
			return t;
		for (p = t->children; p; p = p->next)
			if (!strcmp(p->name, part))
				return p;
	}
	return NULL;
}

/* Open, capturing the log into log. */
static void open_logged(struct registry **reg, char *log, size_t size)
{
	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, reg), 0);
	test_log_end(logpath, &saved_stderr, log, size);
}

/* Run a shell command made from printf arguments; it must succeed. */
#define SH(...)                                                    \
	do {                                                       \
		char cmd_[3 * PATH_MAX];                           \
		snprintf(cmd_, sizeof(cmd_), __VA_ARGS__);         \
		ck_assert_int_eq(system(cmd_), 0);                 \
	} while (0)

/* After a clean close the next open reads the summary, not each topic;
 * a topic changed while closed (a partition added, removed, its
 * partition.meta edited), a damaged summary, or no clean mark (a crash)
 * is read from the directory instead: nothing stale is served. */
START_TEST(test_summary_mount)
{
	struct registry *reg = NULL;
	uint64_t a[8], ino_t0;
	char log[4096];
	struct stat st;

	reg = open_two_topics(2);
	check_numbers(reg, a, 6);
	ino_t0 = registry_st_ino(reg, find(reg, "t", "0"));
	usleep(20000); /* what the summary records is older than it */
	ck_assert_int_eq(registry_close(reg), 0);

	/* Clean: both topics from the summary, the same numbers. */
	open_logged(&reg, log, sizeof(log));
	ck_assert_msg(strstr(log, "2 topics loaded from the mount summary, "
				  "0 listed"),
		      "log: %s", log);
	check_numbers(reg, a, 6);
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "0")), ino_t0);
	ck_assert_int_eq(registry_close(reg), 0);

	/* A partition copied in by hand, one removed, a partition.meta
	 * edited in place: those topics are listed; the copy gets a number
	 * of its own, the removed one is gone, the edit shows. */
	SH("cp -a '%s/t/0' '%s/t/copy'", data, data);
	SH("rm -rf '%s/u/1'", data);
	SH("printf 'mode=0600\\n' >>'%s/u/0/partition.meta'", data);
	open_logged(&reg, log, sizeof(log));
	ck_assert_msg(strstr(log, "0 topics loaded from the mount summary, "
				  "2 listed"),
		      "log: %s", log);
	ck_assert_ptr_nonnull(find(reg, "t", "copy"));
	ck_assert_ptr_null(find(reg, "u", "1"));
	ck_assert_int_eq(registry_stat(reg, find(reg, "u", "0"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	check_numbers(reg, a, 6);
	/* the original, created first, keeps the shared number */
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "0")), ino_t0);
	usleep(20000);
	ck_assert_int_eq(registry_close(reg), 0);

	/* A damaged summary: refused with one line, every topic listed. */
	SH("cd '%s' && printf 'X' | dd of=.fluxfs.summary bs=1 seek=30 "
	   "conv=notrunc status=none",
	   data);
	open_logged(&reg, log, sizeof(log));
	ck_assert_msg(strstr(log, "is damaged: listing every topic"), "log: %s",
		      log);
	ck_assert_msg(strstr(log, "0 topics loaded") == NULL, "log: %s", log);
	check_numbers(reg, a, 6);
	usleep(20000);
	ck_assert_int_eq(registry_close(reg), 0);

	/* No clean mark (a crash): the summary is not read, and a partition
	 * removed meanwhile is not served. */
	SH("rm '%s/.fluxfs.clean' && rm -rf '%s/t/1'", data, data);
	open_logged(&reg, log, sizeof(log));
	ck_assert_msg(strstr(log, "mount summary") == NULL, "log: %s", log);
	ck_assert_ptr_null(find(reg, "t", "1"));
	check_numbers(reg, a, 5);
	ck_assert_int_eq(faccessat(dirfd_, "data/" LAYOUT_SUMMARY_FILE, F_OK, 0),
			 -1);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

static int statx_unsupported(int dirfd, const char *path, int flags,
			     unsigned int mask, struct statx *stx)
{
	(void)dirfd;
	(void)path;
	(void)flags;
	(void)mask;
	(void)stx;
	errno = ENOSYS;
	return -1;
}

/* Copies of a partition directory share its stored number: the
 * directory born first keeps it, whatever the names; where birth times
 * are not known the first by name (byte order) does.  The others get
 * fresh numbers, the same on every open. */
START_TEST(test_copy_keeps_number_by_birth)
{
	struct registry *reg = NULL;
	uint64_t a[12], orig, c1, c2;

	reg = open_two_topics(2);
	orig = registry_st_ino(reg, find(reg, "t", "1"));
	ck_assert_int_eq(registry_close(reg), 0);
	usleep(20000);
	SH("cp -a '%s/t/1' '%s/t/0a'", data, data);
	SH("cp -a '%s/t/1' '%s/t/9'", data, data);
	ck_assert_int_eq(open_quiet(&reg), 0);
	check_numbers(reg, a, 8);
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "1")), orig);
	c1 = registry_st_ino(reg, find(reg, "t", "0a"));
	c2 = registry_st_ino(reg, find(reg, "t", "9"));
	ck_assert_int_eq(registry_close(reg), 0);
	ck_assert_int_eq(open_quiet(&reg), 0);
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "1")), orig);
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "0a")), c1);
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "9")), c2);
	ck_assert_int_eq(registry_close(reg), 0);

	/* No birth times: by name, "0b" before "1". */
	SH("cp -a '%s/t/1' '%s/t/0b'", data, data);
	fail_install();
	failing.statx = statx_unsupported;
	ck_assert_int_eq(open_quiet(&reg), 0);
	io_ops_set(NULL);
	ck_assert_uint_eq(registry_st_ino(reg, find(reg, "t", "0b")), orig);
	ck_assert_uint_ne(registry_st_ino(reg, find(reg, "t", "1")), orig);
	check_numbers(reg, a, 9);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

static Suite *registry_open_suite(void)
{
	Suite *s = suite_create("registry_open");
	TCase *tc = tcase_create("failures");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_flock_fails);
	tcase_add_test(tc, test_lock_held);
	tcase_add_test(tc, test_mkdir_fails);
	tcase_add_test(tc, test_readdir_fails);
	tcase_add_test(tc, test_statfs_fails);
	tcase_add_test(tc, test_victim_sharing_the_openers_lock);
	tcase_add_test(tc, test_inode_numbers);
	tcase_add_test(tc, test_summary_mount);
	tcase_add_test(tc, test_copy_keeps_number_by_birth);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(registry_open_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
