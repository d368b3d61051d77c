/*
 * check_groupstore.c - consumer groups' position store: create, commit,
 * reopen; a failed write changes nothing (memory and disk agree); a
 * crash mid-commit (a torn .tmp) keeps the previous commit; a torn or
 * damaged group file is refused whole; names; pruning gone partitions.
 */
#include <errno.h>
#include <sys/stat.h>

#include "testutil.h"
#include "crashsim.h"
#include "groupstore.h"

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

static struct groupstore *open_store(void)
{
	struct groupstore *gs;

	ck_assert_int_eq(groupstore_open(dfd, 0, &gs), 0);
	return gs;
}

static struct group_pos mkpos(uint64_t byte, uint64_t offset)
{
	struct group_pos p = {0, byte, offset, 1700000000000LL + (int64_t)byte};

	return p;
}

/* The group file on disk decodes to exactly what the store answers. */
static void check_disk(struct groupstore *gs, const char *name)
{
	char path[300], text[4096];
	struct group_opts o1, o2;
	struct group_pos *pos, got;
	size_t npos, i;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), GROUPSTORE_DIR "/%s" GROUPSTORE_SUFFIX,
		 name);
	fd = openat(dfd, path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	len = read(fd, text, sizeof(text));
	close(fd);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(groupstore_decode(text, (size_t)len, &o1, &pos, &npos),
			 0);
	ck_assert_int_eq(groupstore_get_opts(gs, name, &o2), 0);
	ck_assert_int_eq(o1.latest, o2.latest);
	ck_assert_int_eq(o1.follow, o2.follow);
	ck_assert_uint_eq(o1.commit_ms, o2.commit_ms);
	for (i = 0; i < npos; i++) {
		ck_assert_int_eq(groupstore_get(gs, name, pos[i].ino, &got), 0);
		ck_assert_uint_eq(got.byte, pos[i].byte);
		ck_assert_uint_eq(got.offset, pos[i].offset);
		ck_assert_int_eq(got.commit_ms, pos[i].commit_ms);
	}
	free(pos);
}

START_TEST(test_commit_reopen)
{
	struct groupstore *gs = open_store();
	struct group_opts o = {1, 1, 250};
	struct group_pos p = mkpos(100, 7), got;

	ck_assert_int_eq(groupstore_create(gs, "billing"), 0);
	ck_assert_int_eq(groupstore_create(gs, "billing"), -EEXIST);
	ck_assert_int_eq(groupstore_get(gs, "billing", 42, &got), -ENODATA);
	ck_assert_int_eq(groupstore_get(gs, "nope", 42, &got), -ENOENT);
	ck_assert_int_eq(groupstore_commit(gs, "billing", 42, &p), 0);
	check_disk(gs, "billing");
	p = mkpos(300, 20);
	ck_assert_int_eq(groupstore_commit(gs, "billing", 42, &p), 0);
	p = mkpos(5, 1);
	ck_assert_int_eq(groupstore_commit(gs, "billing", 43, &p), 0);
	ck_assert_int_eq(groupstore_set_opts(gs, "billing", &o), 0);
	check_disk(gs, "billing");
	groupstore_close(gs);

	gs = open_store();
	ck_assert_int_eq(groupstore_get(gs, "billing", 42, &got), 0);
	ck_assert_uint_eq(got.byte, 300);
	ck_assert_uint_eq(got.offset, 20);
	ck_assert_int_eq(groupstore_get(gs, "billing", 43, &got), 0);
	ck_assert_uint_eq(got.byte, 5);
	ck_assert_int_eq(groupstore_get_opts(gs, "billing", &o), 0);
	ck_assert_int_eq(o.latest, 1);
	ck_assert_int_eq(o.follow, 1);
	ck_assert_uint_eq(o.commit_ms, 250);
	/* Clearing a position: auto_offset_reset applies again. */
	ck_assert_int_eq(groupstore_commit(gs, "billing", 42, NULL), 0);
	ck_assert_int_eq(groupstore_get(gs, "billing", 42, &got), -ENODATA);
	ck_assert_int_eq(groupstore_get(gs, "billing", 43, &got), 0);
	check_disk(gs, "billing");
	ck_assert_int_eq(groupstore_remove(gs, "billing"), 0);
	ck_assert_int_eq(groupstore_remove(gs, "billing"), -ENOENT);
	ck_assert_int_eq(
		faccessat(dfd, GROUPSTORE_DIR "/billing.group", F_OK, 0), -1);
	groupstore_close(gs);
	gs = open_store();
	ck_assert_int_eq(groupstore_exists(gs, "billing"), 0);
	groupstore_close(gs);
}
END_TEST

/* A commit whose write fails leaves memory and disk at the old commit. */
START_TEST(test_failed_write_changes_nothing)
{
	struct groupstore *gs = open_store();
	struct group_pos p = mkpos(100, 7), got;
	struct io_ops ops = *io_ops_default();

	ck_assert_int_eq(groupstore_create(gs, "g"), 0);
	ck_assert_int_eq(groupstore_commit(gs, "g", 1, &p), 0);
	ops.renameat = test_fail_renameat;
	io_ops_set(&ops);
	p = mkpos(200, 9);
	ck_assert_int_eq(groupstore_commit(gs, "g", 1, &p), -EIO);
	ck_assert_int_eq(groupstore_commit(gs, "g", 2, &p), -EIO);
	ck_assert_int_eq(groupstore_commit(gs, "g", 1, NULL), -EIO);
	io_ops_set(NULL);
	ck_assert_int_eq(groupstore_get(gs, "g", 1, &got), 0);
	ck_assert_uint_eq(got.byte, 100);
	ck_assert_int_eq(groupstore_get(gs, "g", 2, &got), -ENODATA);
	check_disk(gs, "g");
	/* No .tmp is left behind by the failed writes. */
	ck_assert_int_eq(faccessat(dfd, GROUPSTORE_DIR "/g.group.tmp", F_OK, 0),
			 -1);
	groupstore_close(gs);
}
END_TEST

/* A crash in the middle of a commit leaves a torn .tmp beside the last
 * whole file: reopening keeps the last commit and removes the .tmp. */
START_TEST(test_torn_tmp_keeps_commit)
{
	struct groupstore *gs = open_store();
	struct group_pos p = mkpos(4096, 64), got;
	char *buf;
	size_t len;

	ck_assert_int_eq(groupstore_create(gs, "etl"), 0);
	ck_assert_int_eq(groupstore_commit(gs, "etl", 9, &p), 0);
	groupstore_close(gs);
	p = mkpos(8192, 128);
	ck_assert_int_eq(groupstore_encode(&(struct group_opts){0, 0, 5000}, &p,
					   1, &buf, &len),
			 0);
	test_write_file(dfd, GROUPSTORE_DIR "/etl.group.tmp", buf, len / 2);
	free(buf);
	gs = open_store();
	ck_assert_int_eq(groupstore_get(gs, "etl", 9, &got), 0);
	ck_assert_uint_eq(got.byte, 4096);
	ck_assert_uint_eq(got.offset, 64);
	ck_assert_int_eq(
		faccessat(dfd, GROUPSTORE_DIR "/etl.group.tmp", F_OK, 0), -1);
	groupstore_close(gs);
}
END_TEST

/* A group file cut short or changed (not by us: a disk fault, a hand
 * edit) is refused whole, logged, and the other groups load. */
START_TEST(test_damaged_file_refused)
{
	struct groupstore *gs = open_store();
	struct group_pos p = mkpos(10, 2), got;
	char path[] = GROUPSTORE_DIR "/bad.group", text[1024];
	ssize_t len;
	int fd;

	ck_assert_int_eq(groupstore_create(gs, "bad"), 0);
	ck_assert_int_eq(groupstore_create(gs, "good"), 0);
	ck_assert_int_eq(groupstore_commit(gs, "bad", 1, &p), 0);
	ck_assert_int_eq(groupstore_commit(gs, "good", 1, &p), 0);
	groupstore_close(gs);
	fd = openat(dfd, path, O_RDONLY);
	len = read(fd, text, sizeof(text));
	close(fd);
	ck_assert_int_gt(len, 20);
	/* One digit changed: the CRC catches it. */
	*strstr(text, "pos 1 10") = 'P';
	test_write_file(dfd, path, text, (size_t)len);
	gs = open_store();
	ck_assert_int_eq(groupstore_exists(gs, "bad"), 0);
	ck_assert_int_eq(groupstore_get(gs, "good", 1, &got), 0);
	groupstore_close(gs);
	/* Cut short. */
	test_write_file(dfd, path, text, (size_t)len - 5);
	gs = open_store();
	ck_assert_int_eq(groupstore_exists(gs, "bad"), 0);
	groupstore_close(gs);
}
END_TEST

START_TEST(test_decode_rejects)
{
	struct group_opts o;
	struct group_pos *pos;
	size_t n;
	char *buf;
	size_t len;
	struct group_pos p = mkpos(1, 1);

	ck_assert_int_eq(groupstore_decode("", 0, &o, &pos, &n), -EBADMSG);
	ck_assert_int_eq(groupstore_decode("fluxfs-group 1\ncrc32c=0\n", 24, &o,
					   &pos, &n),
			 -EBADMSG);
	ck_assert_int_eq(groupstore_encode(&(struct group_opts){1, 0, 7}, &p, 1,
					   &buf, &len),
			 0);
	ck_assert_int_eq(groupstore_decode(buf, len, &o, &pos, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(o.latest, 1);
	ck_assert_uint_eq(o.commit_ms, 7);
	free(pos);
	ck_assert_int_eq(groupstore_decode(buf, len - 1, &o, &pos, &n),
			 -EBADMSG);
	free(buf);
}
END_TEST

START_TEST(test_names)
{
	struct groupstore *gs = open_store();
	char longname[300];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(groupstore_create(gs, ".hidden"), -EINVAL);
	ck_assert_int_eq(groupstore_create(gs, "a/b"), -EINVAL);
	ck_assert_int_eq(groupstore_create(gs, ""), -EINVAL);
	ck_assert_int_eq(groupstore_create(gs, "sp ace"), -EINVAL);
	ck_assert_int_eq(groupstore_create(gs, longname), -ENAMETOOLONG);
	ck_assert_int_eq(groupstore_create(gs, "a.tmp"), 0);
	groupstore_close(gs);
	gs = open_store();
	ck_assert_int_eq(groupstore_exists(gs, "a.tmp"), 1);
	groupstore_close(gs);
}
END_TEST

/* A read-only store (fluxctl beside a serving daemon) changes nothing,
 * not even a leftover .tmp that may be the daemon's commit in flight. */
START_TEST(test_readonly)
{
	struct groupstore *gs = open_store(), *ro;
	struct group_pos p = mkpos(8, 1), got;

	ck_assert_int_eq(groupstore_create(gs, "g"), 0);
	ck_assert_int_eq(groupstore_commit(gs, "g", 1, &p), 0);
	groupstore_close(gs);
	test_write_file(dfd, GROUPSTORE_DIR "/g.group.tmp", "partial", 7);
	ck_assert_int_eq(groupstore_open(dfd, 1, &ro), 0);
	ck_assert_int_eq(groupstore_get(ro, "g", 1, &got), 0);
	ck_assert_uint_eq(got.byte, 8);
	ck_assert_int_eq(groupstore_commit(ro, "g", 1, &p), -EROFS);
	ck_assert_int_eq(groupstore_create(ro, "h"), -EROFS);
	ck_assert_int_eq(groupstore_remove(ro, "g"), -EROFS);
	ck_assert_int_eq(faccessat(dfd, GROUPSTORE_DIR "/g.group.tmp", F_OK, 0),
			 0);
	groupstore_close(ro);
}
END_TEST

/* A power cut at any moment after a call returned keeps exactly what it
 * did: the group, its last commit and its options, whatever the disk
 * kept of what was not synced (every crash mode, several seeds). */
START_TEST(test_power_cut_keeps_commits)
{
	static const enum crashsim_mode modes[] = {
		CRASHSIM_DROP, CRASHSIM_GARBLE, CRASHSIM_RANDOM, CRASHSIM_PREFIX};
	const struct group_opts set = {1, 0, 100};
	struct group_opts o;
	struct group_pos p, got;
	struct groupstore *gs;
	uint64_t i;

	crashsim_install();
	gs = open_store();
	ck_assert_int_eq(groupstore_create(gs, "g"), 0);
	groupstore_close(gs);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, NULL), 0);
	gs = open_store();
	ck_assert_int_eq(groupstore_exists(gs, "g"), 1);
	for (i = 1; i <= 16; i++) {
		p = mkpos(i * 100, i);
		ck_assert_int_eq(groupstore_commit(gs, "g", 7, &p), 0);
		if (i == 8)
			ck_assert_int_eq(groupstore_set_opts(gs, "g", &set), 0);
		groupstore_close(gs);
		ck_assert_int_eq(crashsim_crash(modes[i % 4], i, NULL), 0);
		gs = open_store();
		ck_assert_int_eq(groupstore_get(gs, "g", 7, &got), 0);
		ck_assert_uint_eq(got.byte, i * 100);
		ck_assert_uint_eq(got.offset, i);
		ck_assert_int_eq(groupstore_get_opts(gs, "g", &o), 0);
		ck_assert_int_eq(o.latest, i >= 8);
	}
	groupstore_close(gs);
	crashsim_uninstall();
}
END_TEST

static int odd_exists(void *arg, uint64_t ino)
{
	(void)arg;
	return ino % 2;
}

START_TEST(test_prune)
{
	struct groupstore *gs = open_store();
	struct group_pos p = mkpos(1, 1), got;
	uint64_t i;

	ck_assert_int_eq(groupstore_create(gs, "g"), 0);
	for (i = 1; i <= 6; i++)
		ck_assert_int_eq(groupstore_commit(gs, "g", i, &p), 0);
	ck_assert_int_eq(groupstore_prune(gs, odd_exists, NULL), 3);
	ck_assert_int_eq(groupstore_get(gs, "g", 2, &got), -ENODATA);
	ck_assert_int_eq(groupstore_get(gs, "g", 3, &got), 0);
	check_disk(gs, "g");
	groupstore_close(gs);
}
END_TEST

static Suite *groupstore_suite(void)
{
	Suite *s = suite_create("groupstore");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_commit_reopen);
	tcase_add_test(tc, test_failed_write_changes_nothing);
	tcase_add_test(tc, test_torn_tmp_keeps_commit);
	tcase_add_test(tc, test_damaged_file_refused);
	tcase_add_test(tc, test_decode_rejects);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_power_cut_keeps_commits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(groupstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
