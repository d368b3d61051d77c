/*
 * check_snapstore.c - the snapshot store: create, list, find, reopen and
 * remove; names; what the snapshots need of a partition; a failed write
 * stores nothing (memory and disk agree); a crash while a snapshot is
 * written (a torn .tmp) leaves it absent, never half there; a torn or
 * damaged .snap file is refused whole; a power cut after create or
 * remove returned keeps what it did.
 */
#include <errno.h>
#include <sys/stat.h>

#include "testutil.h"
#include "crashsim.h"
#include "snapstore.h"

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

static struct snapstore *open_store(void)
{
	struct snapstore *ss;

	ck_assert_int_eq(snapstore_open(dfd, 0, &ss), 0);
	return ss;
}

static struct snap_part mkpart(const char *topic, const char *part,
			       uint64_t ino, uint64_t start, uint64_t end)
{
	struct snap_part p;

	memset(&p, 0, sizeof(p));
	p.ino = ino;
	p.start_byte = start;
	p.start_offset = start / 10;
	p.end_byte = end;
	snprintf(p.topic, sizeof(p.topic), "%s", topic);
	snprintf(p.part, sizeof(p.part), "%s", part);
	return p;
}

static int count_cb(void *arg, const char *name, int64_t created_ms,
		    size_t nparts, uint64_t bytes)
{
	(void)name, (void)created_ms, (void)nparts, (void)bytes;
	(*(int *)arg)++;
	return 0;
}

static int nsnaps(struct snapstore *ss)
{
	int n = 0;

	ck_assert_int_eq(snapstore_list(ss, count_cb, &n), 0);
	return n;
}

/* The invariants of snapshot "s" as made by make_s(): everything the
 * store answers agrees with what was stored. */
static void check_s(struct snapstore *ss)
{
	struct snap_part got;
	int64_t created;
	size_t n;

	ck_assert_int_eq(snapstore_info(ss, "s", &created, &n), 0);
	ck_assert_int_eq(created, 1700000000123LL);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(snapstore_find(ss, "s", "orders", "1", &got), 0);
	ck_assert_uint_eq(got.ino, 12);
	ck_assert_uint_eq(got.start_byte, 100);
	ck_assert_uint_eq(got.end_byte, 5000);
	ck_assert_int_eq(snapstore_find(ss, "s", "orders", "9", &got), -ENOENT);
	ck_assert_int_eq(snapstore_find(ss, "x", "orders", "1", &got), -ENOENT);
	ck_assert_uint_eq(snapstore_bytes(ss, "s"), 4900 + 70 + 0);
}

static int make_s(struct snapstore *ss)
{
	struct snap_part p[3] = {mkpart("orders", "1", 12, 100, 5000),
				 mkpart("audit", "0", 30, 0, 70),
				 mkpart("orders", "0", 11, 0, 0)};

	return snapstore_create(ss, "s", 1700000000123LL, p, 3);
}

struct walk {
	char seen[8][2 * SNAPSTORE_PART_NAME_MAX + 2];
	int n;
};

static int walk_cb(void *arg, const struct snap_part *p)
{
	struct walk *w = arg;

	snprintf(w->seen[w->n++], sizeof(w->seen[0]), "%s/%s", p->topic,
		 p->part);
	return 0;
}

START_TEST(test_create_reopen_remove)
{
	struct snapstore *ss = open_store();
	struct snap_part q = mkpart("orders", "1", 12, 2000, 9000);
	struct walk w = {.n = 0};
	uint64_t off, sb, eb;

	ck_assert_int_eq(nsnaps(ss), 0);
	ck_assert_int_eq(make_s(ss), 0);
	check_s(ss);
	ck_assert_int_eq(make_s(ss), -EEXIST);
	/* Sorted by topic, then partition. */
	ck_assert_int_eq(snapstore_parts(ss, "s", walk_cb, &w), 0);
	ck_assert_int_eq(w.n, 3);
	ck_assert_str_eq(w.seen[0], "audit/0");
	ck_assert_str_eq(w.seen[1], "orders/0");
	ck_assert_str_eq(w.seen[2], "orders/1");
	snapstore_close(ss);
	ss = open_store();
	ck_assert_int_eq(nsnaps(ss), 1);
	check_s(ss);
	/* A second snapshot of partition 12 from further on: the lowest
	 * start and the highest end are needed. */
	ck_assert_int_eq(snapstore_create(ss, "later", 1, &q, 1), 0);
	ck_assert_int_eq(snapstore_needs(ss, 12, &off, &sb, &eb), 1);
	ck_assert_uint_eq(sb, 100);
	ck_assert_uint_eq(off, 10);
	ck_assert_uint_eq(eb, 9000);
	/* An empty partition needs nothing kept. */
	ck_assert_int_eq(snapstore_needs(ss, 11, &off, &sb, &eb), 0);
	ck_assert_int_eq(snapstore_remove(ss, "s"), 0);
	ck_assert_int_eq(snapstore_remove(ss, "s"), -ENOENT);
	ck_assert_int_eq(snapstore_needs(ss, 12, &off, &sb, &eb), 1);
	ck_assert_uint_eq(sb, 2000);
	ck_assert_int_eq(snapstore_needs(ss, 30, &off, &sb, &eb), 0);
	ck_assert_int_eq(faccessat(dfd, SNAPSTORE_DIR "/s.snap", F_OK, 0), -1);
	snapstore_close(ss);
	ss = open_store();
	ck_assert_int_eq(nsnaps(ss), 1);
	ck_assert_int_eq(snapstore_info(ss, "s", &(int64_t){0}, &(size_t){0}),
			 -ENOENT);
	snapstore_close(ss);
}
END_TEST

START_TEST(test_names)
{
	struct snapstore *ss = open_store();
	char longname[SNAPSTORE_NAME_MAX + 2];

	ck_assert_int_eq(snapstore_create(ss, "bad name", 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(snapstore_create(ss, ".hidden", 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(snapstore_create(ss, "a/b", 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(snapstore_create(ss, "", 1, NULL, 0), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(snapstore_create(ss, longname, 1, NULL, 0),
			 -ENAMETOOLONG);
	ck_assert_int_eq(nsnaps(ss), 0);
	/* No partition at all is a snapshot too. */
	ck_assert_int_eq(snapstore_create(ss, "empty.1_x-y", 1, NULL, 0), 0);
	snapstore_close(ss);
	ss = open_store();
	ck_assert_int_eq(nsnaps(ss), 1);
	snapstore_close(ss);
}
END_TEST

/* A snapshot whose write fails is not there, in memory or on disk. */
START_TEST(test_failed_write_stores_nothing)
{
	struct snapstore *ss = open_store();
	struct io_ops ops = *io_ops_default();

	ops.renameat = test_fail_renameat;
	io_ops_set(&ops);
	ck_assert_int_eq(make_s(ss), -EIO);
	io_ops_set(NULL);
	ck_assert_int_eq(nsnaps(ss), 0);
	ck_assert_int_eq(faccessat(dfd, SNAPSTORE_DIR "/s.snap", F_OK, 0), -1);
	ck_assert_int_eq(faccessat(dfd, SNAPSTORE_DIR "/s.snap.tmp", F_OK, 0),
			 -1);
	ck_assert_int_eq(make_s(ss), 0);
	check_s(ss);
	snapstore_close(ss);
}
END_TEST

/* A crash while a snapshot is written leaves a torn .tmp: the snapshot
 * was never taken (mkdir had not returned); reopening drops the .tmp. */
START_TEST(test_torn_tmp_is_absent)
{
	struct snapstore *ss = open_store();
	struct snap_part p = mkpart("t", "0", 5, 0, 10);
	char *buf;
	size_t len;

	ck_assert_int_eq(make_s(ss), 0);
	snapstore_close(ss);
	ck_assert_int_eq(snapstore_encode(5, &p, 1, &buf, &len), 0);
	test_write_file(dfd, SNAPSTORE_DIR "/torn.snap.tmp", buf, len / 2);
	free(buf);
	ss = open_store();
	ck_assert_int_eq(nsnaps(ss), 1);
	check_s(ss);
	ck_assert_int_eq(
		faccessat(dfd, SNAPSTORE_DIR "/torn.snap.tmp", F_OK, 0), -1);
	snapstore_close(ss);
}
END_TEST

/* A .snap file torn or changed (a disk fault, a hand edit) is refused
 * whole, logged, and the others load. */
START_TEST(test_damaged_file_refused)
{
	struct snapstore *ss = open_store();
	struct snap_part p = mkpart("t", "0", 5, 0, 10), got;
	char path[] = SNAPSTORE_DIR "/bad.snap", text[1024];
	ssize_t len;
	int fd;

	ck_assert_int_eq(snapstore_create(ss, "bad", 1, &p, 1), 0);
	ck_assert_int_eq(make_s(ss), 0);
	snapstore_close(ss);
	fd = openat(dfd, path, O_RDONLY);
	len = read(fd, text, sizeof(text));
	close(fd);
	ck_assert_int_gt(len, 20);
	*strstr(text, "part 5 0 0 10") = 'P';
	test_write_file(dfd, path, text, (size_t)len);
	ss = open_store();
	ck_assert_int_eq(snapstore_find(ss, "bad", "t", "0", &got), -ENOENT);
	check_s(ss);
	snapstore_close(ss);
	/* Torn: every length short of the whole file is refused. */
	*strchr(text, 'P') = 'p';
	for (fd = 1; fd < len; fd++) {
		test_write_file(dfd, path, text, (size_t)fd);
		ss = open_store();
		ck_assert_int_eq(nsnaps(ss), 1);
		snapstore_close(ss);
	}
	test_write_file(dfd, path, text, (size_t)len);
	ss = open_store();
	ck_assert_int_eq(snapstore_find(ss, "bad", "t", "0", &got), 0);
	snapstore_close(ss);
}
END_TEST

START_TEST(test_decode_rejects)
{
	struct snap_part p = mkpart("t", "0", 5, 0, 10), *out;
	int64_t created;
	size_t n, len;
	char *buf;

	ck_assert_int_eq(snapstore_decode("", 0, &created, &out, &n), -EBADMSG);
	ck_assert_int_eq(snapstore_encode(9, &p, 1, &buf, &len), 0);
	ck_assert_int_eq(snapstore_decode(buf, len, &created, &out, &n), 0);
	ck_assert_int_eq(created, 9);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(out[0].topic, "t");
	ck_assert_uint_eq(out[0].end_byte, 10);
	free(out);
	free(buf);
	/* A start past the end, a bad name: refused even with a good CRC. */
	p.start_byte = 11;
	ck_assert_int_eq(snapstore_encode(9, &p, 1, &buf, &len), 0);
	ck_assert_int_eq(snapstore_decode(buf, len, &created, &out, &n),
			 -EBADMSG);
	free(buf);
	p = mkpart(".t", "0", 5, 0, 10);
	ck_assert_int_eq(snapstore_encode(9, &p, 1, &buf, &len), 0);
	ck_assert_int_eq(snapstore_decode(buf, len, &created, &out, &n),
			 -EBADMSG);
	free(buf);
}
END_TEST

/* A power cut at any moment after create or remove returned keeps what
 * it did, whatever the disk kept of what was not synced. */
START_TEST(test_power_cut)
{
	static const enum crashsim_mode modes[] = {
		CRASHSIM_DROP, CRASHSIM_GARBLE, CRASHSIM_RANDOM, CRASHSIM_PREFIX};
	struct snapstore *ss;
	struct snap_part p;
	char name[16];
	uint64_t i;

	crashsim_install();
	for (i = 1; i <= 8; i++) {
		ss = open_store();
		snprintf(name, sizeof(name), "s%llu", (unsigned long long)i);
		p = mkpart("t", "0", i, 0, i * 10);
		ck_assert_int_eq(snapstore_create(ss, name, (int64_t)i, &p, 1),
				 0);
		if (i % 3 == 0) {
			snprintf(name, sizeof(name), "s%llu",
				 (unsigned long long)(i - 1));
			ck_assert_int_eq(snapstore_remove(ss, name), 0);
		}
		snapstore_close(ss);
		ck_assert_int_eq(crashsim_crash(modes[i % 4], i, NULL), 0);
		ss = open_store();
		/* s1..si less every s(3k-1) removed so far. */
		ck_assert_int_eq(nsnaps(ss), (int)(i - i / 3));
		snprintf(name, sizeof(name), "s%llu", (unsigned long long)i);
		ck_assert_uint_eq(snapstore_bytes(ss, name), i * 10);
		snapstore_close(ss);
	}
	crashsim_uninstall();
}
END_TEST

START_TEST(test_readonly)
{
	struct snapstore *ss = open_store();

	ck_assert_int_eq(make_s(ss), 0);
	snapstore_close(ss);
	ck_assert_int_eq(snapstore_open(dfd, 1, &ss), 0);
	check_s(ss);
	ck_assert_int_eq(snapstore_remove(ss, "s"), -EROFS);
	ck_assert_int_eq(snapstore_create(ss, "t", 1, NULL, 0), -EROFS);
	snapstore_close(ss);
}
END_TEST

static Suite *snapstore_suite(void)
{
	Suite *s = suite_create("snapstore");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_reopen_remove);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_failed_write_stores_nothing);
	tcase_add_test(tc, test_torn_tmp_is_absent);
	tcase_add_test(tc, test_damaged_file_refused);
	tcase_add_test(tc, test_decode_rejects);
	tcase_add_test(tc, test_power_cut);
	tcase_add_test(tc, test_readonly);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(snapstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
