/*
 * check_xattr.c - the user.fluxfs.* attributes without a mount: which
 * names are ours on a topic and on a partition, the listxattr answer and
 * its size rules, the text of every read-only value, and the seek
 * queries on a real partition, good and malformed, with their errno.
 */
#include <errno.h>
#include <limits.h>

#include "testutil.h"
#include "xattr.h"

static const char *const info_names[XATTR_NINFO] = {
	[XATTR_START_OFFSET] = "start_offset",
	[XATTR_NEXT_OFFSET] = "next_offset",
	[XATTR_START_BYTE] = "start_byte",
	[XATTR_SEGMENTS] = "segments",
	[XATTR_FIRST_TIMESTAMP] = "first_timestamp",
	[XATTR_LAST_TIMESTAMP] = "last_timestamp",
	[XATTR_DISK_BYTES] = "disk_bytes",
	[XATTR_LOST_MESSAGES] = "lost_messages",
	[XATTR_LOST_BYTES] = "lost_bytes",
	[XATTR_LOST] = "lost",
	[XATTR_SNAPSHOT_PINNED_BYTES] = "snapshot_pinned_bytes",
};

static int parse(const char *name, int is_partition, struct xattr_name *out)
{
	memset(out, 0xa5, sizeof(*out));
	return xattr_parse(name, is_partition, out);
}

START_TEST(test_parse_names)
{
	struct xattr_name x;
	char name[128];
	int i;

	for (i = 0; i < XATTR_NINFO; i++) {
		snprintf(name, sizeof(name), XATTR_PREFIX "%s", info_names[i]);
		ck_assert_int_eq(parse(name, 1, &x), 0);
		ck_assert_int_eq(x.is_config, 0);
		ck_assert_int_eq(x.key, i);
		/* Topics have no read-only info. */
		ck_assert_int_eq(parse(name, 0, &x), -ENODATA);
	}
	for (i = 0; i < CONFIG_NKEYS; i++) {
		snprintf(name, sizeof(name), XATTR_PREFIX "%s",
			 config_key_name(i));
		ck_assert_int_eq(parse(name, 1, &x), 0);
		ck_assert_int_eq(x.is_config, 1);
		ck_assert_int_eq(x.key, i);
		ck_assert_int_eq(parse(name, 0, &x), 0);
		ck_assert_int_eq(x.is_config, 1);
		ck_assert_int_eq(x.key, i);
	}
}
END_TEST

START_TEST(test_parse_refuses_other_names)
{
	static const char *const bad[] = {
		"",
		"user.fluxfs",
		"user.fluxfs.",
		"user.other.next_offset",
		"next_offset",
		"user.fluxfs.next_offsetx",
		"user.fluxfs.next_",
		"user.fluxfs.NEXT_OFFSET",
		"user.fluxfs.segment_bytes.",
		"user.fluxfs.seek.offset.3", /* a query, not a name */
		"trusted.fluxfs.next_offset",
		" user.fluxfs.next_offset",
	};
	struct xattr_name x;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i], 1, &x) == -ENODATA, "'%s'", bad[i]);
		ck_assert_msg(parse(bad[i], 0, &x) == -ENODATA, "'%s'", bad[i]);
	}
}
END_TEST

/* Every name in a listxattr answer of len bytes parses, none twice. */
static int check_list(const char *buf, int len, int is_partition)
{
	struct xattr_name x;
	int seen[2][CONFIG_NKEYS + XATTR_NINFO] = {{0}};
	int produce[PRODUCE_NSETTINGS] = {0};
	int at = 0, n = 0, k;

	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(buf[len - 1], '\0');
	while (at < len) {
		k = xattr_produce_parse(buf + at, is_partition);
		if (k >= 0)
			ck_assert_int_eq(produce[k]++, 0);
		else
			ck_assert_int_eq(parse(buf + at, is_partition, &x), 0);
		if (k < 0)
			ck_assert_int_eq(seen[x.is_config][x.key]++, 0);
		at += (int)strlen(buf + at) + 1;
		n++;
	}
	ck_assert_int_eq(at, len);
	return n;
}

/* The keyed-producing settings: topics only, and not configuration. */
START_TEST(test_produce_names)
{
	struct xattr_name x;

	ck_assert_int_eq(xattr_produce_parse("user.fluxfs.partitions", 0),
			 PRODUCE_PARTITIONS);
	ck_assert_int_eq(xattr_produce_parse("user.fluxfs.key_separator", 0),
			 PRODUCE_KEY_SEPARATOR);
	ck_assert_int_eq(xattr_produce_parse("user.fluxfs.partitions", 1),
			 -ENODATA);
	ck_assert_int_eq(xattr_produce_parse("user.fluxfs.partition", 0),
			 -ENODATA);
	ck_assert_int_eq(xattr_produce_parse("user.partitions", 0), -ENODATA);
	ck_assert_int_eq(parse("user.fluxfs.partitions", 0, &x), -ENODATA);
}
END_TEST

START_TEST(test_list_sizes)
{
	char buf[4096];
	int part, topic;

	part = xattr_list(1, NULL, 0);
	topic = xattr_list(0, NULL, 0);
	ck_assert_int_gt(part, topic);
	ck_assert_int_lt(part, (int)sizeof(buf));
	/* Exactly the length fits; one byte less is ERANGE. */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(xattr_list(1, buf, (size_t)part), part);
	ck_assert_int_eq(buf[part], 'x');
	ck_assert_int_eq(check_list(buf, part, 1), XATTR_NINFO + CONFIG_NKEYS);
	ck_assert_int_eq(xattr_list(1, buf, (size_t)part - 1), -ERANGE);
	ck_assert_int_eq(xattr_list(0, buf, (size_t)topic), topic);
	ck_assert_int_eq(check_list(buf, topic, 0),
			 CONFIG_NKEYS + PRODUCE_NSETTINGS);
	ck_assert_int_eq(xattr_list(0, buf, 1), -ERANGE);
}
END_TEST

/* Format key of info; the value as text, checking the size rule: it
 * needs its length plus the NUL, and one byte less is ERANGE. */
static const char *format(const struct partition_info *info,
			  enum xattr_info key)
{
	static char buf[256];
	int n = xattr_format_info(info, key, buf, sizeof(buf));

	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(buf), (size_t)n);
	ck_assert_int_eq(xattr_format_info(info, key, buf, (size_t)n), -ERANGE);
	ck_assert_int_eq(xattr_format_info(info, key, buf, (size_t)n + 1), n);
	return buf;
}

START_TEST(test_format_info)
{
	struct partition_info info;
	char buf[8];

	memset(&info, 0, sizeof(info));
	info.start_offset = 5;
	info.next_offset = 18446744073709551615ULL;
	info.start_byte = 4096;
	info.segments = 3;
	info.first_ts = -1;
	info.last_ts = 1700000000123LL;
	info.disk_bytes = 123456789;
	info.lost_messages = 2;
	info.lost_bytes = 77;
	ck_assert_str_eq(format(&info, XATTR_START_OFFSET), "5");
	ck_assert_str_eq(format(&info, XATTR_NEXT_OFFSET),
			 "18446744073709551615");
	ck_assert_str_eq(format(&info, XATTR_START_BYTE), "4096");
	ck_assert_str_eq(format(&info, XATTR_SEGMENTS), "3");
	ck_assert_str_eq(format(&info, XATTR_FIRST_TIMESTAMP), "-1");
	ck_assert_str_eq(format(&info, XATTR_LAST_TIMESTAMP), "1700000000123");
	ck_assert_str_eq(format(&info, XATTR_DISK_BYTES), "123456789");
	ck_assert_str_eq(format(&info, XATTR_LOST_MESSAGES), "2");
	ck_assert_str_eq(format(&info, XATTR_LOST_BYTES), "77");
	ck_assert_str_eq(format(&info, XATTR_LOST), "none");
	info.losses = 2;
	info.last_loss.from_byte = 10;
	info.last_loss.to_byte = 20;
	info.last_loss.from_offset = 3;
	info.last_loss.to_offset = 4;
	ck_assert_str_eq(format(&info, XATTR_LOST),
			 "count=2 bytes=10-20 offsets=3-4");
	ck_assert_int_eq(
		xattr_format_info(&info, XATTR_NINFO, buf, sizeof(buf)),
		-ENODATA);
	ck_assert_int_eq(xattr_format_info(&info, XATTR_START_OFFSET, buf, 0),
			 -ERANGE);
}
END_TEST

/* ---- seek queries on a real partition --------------------------------- */

static char dir[PATH_MAX];
static int dirfd_;
static struct partition *part;

static void setup(void)
{
	struct config cfg;
	static const char *const lines[] = {"zero\n", "one\n", "two\n"};
	int i;

	dirfd_ = test_tmpdir(dir);
	config_defaults(&cfg);
	ck_assert_int_eq(partition_create(dirfd_, "p", &cfg, 1000, &part), 0);
	/* Messages 0, 1, 2 at bytes 0, 5, 9, appended at 1000, 2000, 3000. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(
			partition_append(part, lines[i], strlen(lines[i]), 1,
					 1000 * (i + 1), PARTITION_ANY_END,
					 NULL, NULL),
			0);
}

static void teardown(void)
{
	ck_assert_int_eq(partition_close(part), 0);
	test_rmtree(dirfd_, dir);
}

static int query(const char *name, char *buf, size_t size)
{
	memset(buf, 'x', size);
	return xattr_query(part, name, buf, size);
}

START_TEST(test_query_answers)
{
	char buf[64];

	ck_assert_int_eq(query(XATTR_PREFIX "seek.offset.0", buf, sizeof(buf)),
			 1);
	ck_assert_str_eq(buf, "0");
	ck_assert_int_eq(query(XATTR_PREFIX "seek.offset.2", buf, sizeof(buf)),
			 1);
	ck_assert_str_eq(buf, "9");
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.0", buf, sizeof(buf)),
			 3);
	ck_assert_str_eq(buf, "0 0");
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.1500", buf, sizeof(buf)),
			 3);
	ck_assert_str_eq(buf, "1 5");
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.3000", buf, sizeof(buf)),
			 3);
	ck_assert_str_eq(buf, "2 9");
	/* The answer needs its NUL too. */
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.3000", buf, 3), -ERANGE);
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.3000", buf, 4), 3);
	ck_assert_int_eq(query(XATTR_PREFIX "seek.offset.1", buf, 1), -ERANGE);
}
END_TEST

START_TEST(test_query_errors)
{
	static const char *const malformed[] = {
		"seek.offset.",
		"seek.offset.x",
		"seek.offset.-1",
		"seek.offset.+1",
		"seek.offset. 1",
		"seek.offset.1 ",
		"seek.offset.0x1",
		"seek.offset.1k",
		"seek.time.",
		"seek.time.-5",
		"seek.time.1.5",
		"seek.offset.99999999999999999999", /* over 2^64 */
		"seek.time.9223372036854775808",    /* over INT64_MAX */
	};
	static const char *const not_queries[] = {
		"seek.offset", "seek.time",   "seek.offsets.1",
		"seek.1",      "next_offset", "SEEK.offset.1",
	};
	char name[128], buf[64];
	size_t i;

	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		snprintf(name, sizeof(name), XATTR_PREFIX "%s", malformed[i]);
		ck_assert_msg(query(name, buf, sizeof(buf)) == -EINVAL, "'%s'",
			      name);
	}
	for (i = 0; i < sizeof(not_queries) / sizeof(not_queries[0]); i++) {
		snprintf(name, sizeof(name), XATTR_PREFIX "%s", not_queries[i]);
		ck_assert_msg(query(name, buf, sizeof(buf)) == -ENODATA, "'%s'",
			      name);
	}
	ck_assert_int_eq(query("user.other.seek.offset.1", buf, sizeof(buf)),
			 -ENODATA);
	/* Well-formed, but no such message. */
	ck_assert_int_eq(query(XATTR_PREFIX "seek.offset.3", buf, sizeof(buf)),
			 -ENOENT);
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.3001", buf, sizeof(buf)),
			 -ENOENT);
	ck_assert_int_eq(query(XATTR_PREFIX "seek.time.9223372036854775807",
			       buf, sizeof(buf)),
			 -ENOENT);
}
END_TEST

static Suite *xattr_suite(void)
{
	Suite *s = suite_create("xattr");
	TCase *tc = tcase_create("names");
	TCase *tq = tcase_create("queries");

	tcase_add_test(tc, test_parse_names);
	tcase_add_test(tc, test_parse_refuses_other_names);
	tcase_add_test(tc, test_list_sizes);
	tcase_add_test(tc, test_produce_names);
	tcase_add_test(tc, test_format_info);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tq, setup, teardown);
	tcase_add_test(tq, test_query_answers);
	tcase_add_test(tq, test_query_errors);
	suite_add_tcase(s, tq);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(xattr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
