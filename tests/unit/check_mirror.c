/*
 * check_mirror.c - the Kafka mirror's pure parts: the fluxfs-offset
 * header, partition and topic names, the kafka.config file, mirror.pos
 * and mirror.conf on disk (damage refused), and where an export or an
 * import resumes after a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "layout.h"
#include "mirror_conf.h"

START_TEST(test_header)
{
	char buf[MIRROR_HEADER_MAX];
	uint64_t v;

	ck_assert_int_eq(mirror_header_encode(0, buf), 1);
	ck_assert_str_eq(buf, "0");
	ck_assert_int_eq(mirror_header_encode(UINT64_MAX, buf), 20);
	ck_assert_int_eq(mirror_header_decode(buf, 20, &v), 0);
	ck_assert(v == UINT64_MAX);
	ck_assert_str_eq(buf, "18446744073709551615");
	ck_assert_int_eq(mirror_header_encode(10, buf), 2);
	ck_assert_str_eq(buf, "10");
	ck_assert_int_eq(mirror_header_encode(1234567890, buf), 10);
	ck_assert_str_eq(buf, "1234567890");
	/* Every length from 1 to 20 digits, back through the decoder. */
	for (uint64_t x = 9, p = 1; p <= 19; p++, x = x * 10 + 9) {
		char want[MIRROR_HEADER_MAX];

		snprintf(want, sizeof(want), "%llu", (unsigned long long)x);
		ck_assert_int_eq(mirror_header_encode(x, buf), (int)strlen(want));
		ck_assert_str_eq(buf, want);
		ck_assert_int_eq(mirror_header_decode(buf, strlen(buf), &v), 0);
		ck_assert(v == x);
	}
	ck_assert_int_eq(mirror_header_decode("12345", 3, &v), 0);
	ck_assert(v == 123);
	/* Not ours: empty, signs, spaces, overflow, too long. */
	ck_assert_int_eq(mirror_header_decode("", 0, &v), -EINVAL);
	ck_assert_int_eq(mirror_header_decode(NULL, 0, &v), -EINVAL);
	ck_assert_int_eq(mirror_header_decode("-1", 2, &v), -EINVAL);
	ck_assert_int_eq(mirror_header_decode(" 1", 2, &v), -EINVAL);
	ck_assert_int_eq(mirror_header_decode("18446744073709551616", 20, &v),
			 -EINVAL);
	ck_assert_int_eq(mirror_header_decode("123456789012345678901", 21, &v),
			 -EINVAL);
}
END_TEST

START_TEST(test_names)
{
	int32_t n;

	ck_assert_int_eq(mirror_partition_number("0", &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(mirror_partition_number("2147483647", &n), 0);
	ck_assert_int_eq(n, INT32_MAX);
	ck_assert_int_eq(mirror_partition_number("2147483648", &n), -EINVAL);
	ck_assert_int_eq(mirror_partition_number("01", &n), -EINVAL);
	ck_assert_int_eq(mirror_partition_number("", &n), -EINVAL);
	ck_assert_int_eq(mirror_partition_number("x", &n), -EINVAL);
	ck_assert_int_eq(mirror_partition_number("1a", &n), -EINVAL);
	ck_assert_int_eq(mirror_topic_name_ok("orders.eu-1_a", 13), 0);
	ck_assert_int_eq(mirror_topic_name_ok("", 0), -EINVAL);
	ck_assert_int_eq(mirror_topic_name_ok(".", 1), -EINVAL);
	ck_assert_int_eq(mirror_topic_name_ok("..", 2), -EINVAL);
	ck_assert_int_eq(mirror_topic_name_ok("a b", 3), -EINVAL);
	ck_assert_int_eq(mirror_topic_name_ok("a/b", 3), -EINVAL);
	ck_assert_int_eq(mirror_topic_name_ok("a\nb", 3), -EINVAL);
}
END_TEST

struct seen {
	char text[512];
};

static int record(void *arg, const char *key, const char *val)
{
	struct seen *s = arg;
	size_t len = strlen(s->text);

	snprintf(s->text + len, sizeof(s->text) - len, "[%s|%s]", key, val);
	return strcmp(key, "stop") == 0 ? 7 : 0;
}

START_TEST(test_conf_file)
{
	const char *ok = "# secrets\n\n  sasl.username = alice \n"
			 "sasl.password=p=w d\r\n\t# indented comment\n"
			 "security.protocol=SASL_SSL";
	struct seen s = {""};
	unsigned bad = 0;

	ck_assert_int_eq(mirror_conf_file_parse(ok, strlen(ok), record, &s,
						&bad), 0);
	ck_assert_str_eq(s.text, "[sasl.username|alice][sasl.password|p=w d]"
				 "[security.protocol|SASL_SSL]");
	s.text[0] = '\0';
	ck_assert_int_eq(mirror_conf_file_parse("a=1\nnot a pair\nb=2\n", 19,
						record, &s, &bad),
			 -EINVAL);
	ck_assert_uint_eq(bad, 2);
	ck_assert_str_eq(s.text, "[a|1]");
	ck_assert_int_eq(mirror_conf_file_parse("=v\n", 3, record, &s, &bad),
			 -EINVAL);
	ck_assert_uint_eq(bad, 1);
	/* The callback's refusal stops the parse and is returned. */
	ck_assert_int_eq(mirror_conf_file_parse("stop=1\nx=2\n", 11, record,
						&s, &bad),
			 7);
}
END_TEST

START_TEST(test_pos_file)
{
	struct layout_mirror_pos m = {7, 5, 9, 100, 140}, r;
	char dir[4096], buf[160], name[32];
	int dfd = test_tmpdir(dir), fd, n;

	ck_assert_int_eq(layout_mirror_pos_load(dfd, &r), -ENOENT);
	ck_assert_int_eq(layout_mirror_pos_store(dfd, &m), 0);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(layout_mirror_pos_load(dfd, &r), 0);
	ck_assert(r.seq == 7 && r.local_before == 5 && r.local_after == 9 &&
		  r.remote_before == 100 && r.remote_after == 140);
	/* Every single-byte change is refused (checksum or shape). */
	n = layout_mirror_pos_encode(buf, sizeof(buf), &m);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++) {
		char bad[160];

		memcpy(bad, buf, (size_t)n);
		bad[i] ^= 0x01;
		ck_assert_msg(layout_mirror_pos_decode(bad, (size_t)n, &r) ==
				      -EINVAL,
			      "byte %d flipped accepted", i);
	}
	ck_assert_int_eq(layout_mirror_pos_decode(buf, (size_t)n - 1, &r),
			 -EINVAL);
	fd = openat(dfd, LAYOUT_MIRROR_POS_FILE, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "garbage\n", 8), 8);
	close(fd);
	ck_assert_int_eq(layout_mirror_pos_load(dfd, &r), -EINVAL);

	/* mirror.intent: the valid slot with the higher sequence wins; a
	 * torn (damaged) latest slot leaves the one before. */
	{
		struct layout_mirror_pos a = {1, 0, 3, 0, 30};
		struct layout_mirror_pos b = {2, 3, 5, 30, 52};
		int ifd;

		ck_assert_int_eq(layout_mirror_intent_load(dfd, &r), -ENOENT);
		ck_assert_int_eq(layout_mirror_intent_open(dfd, &ifd), 0);
		ck_assert_int_eq(layout_mirror_intent_load(dfd, &r), -ENOENT);
		ck_assert_int_eq(layout_mirror_intent_store(ifd, &a), 0);
		ck_assert_int_eq(layout_mirror_intent_store(ifd, &b), 0);
		ck_assert_int_eq(layout_mirror_intent_load(dfd, &r), 0);
		ck_assert(r.seq == 2 && r.local_after == 5 &&
			  r.remote_after == 52);
		close(ifd);
		ck_assert_int_eq(layout_mirror_intent_open(dfd, &ifd), 0);
		ck_assert_int_eq(pwrite(ifd, "x", 1, 30), 1); /* slot 0: b */
		ck_assert_int_eq(layout_mirror_intent_load(dfd, &r), 0);
		ck_assert(r.seq == 1 && r.local_after == 3 &&
			  r.remote_after == 30);
		close(ifd);
	}

	/* mirror.conf: both directions read back, damage refused. */
	{
		char d;
		int force = -1;

		ck_assert_int_eq(layout_mirror_conf_load(dfd, &d, name,
							 sizeof(name), &force),
				 -ENOENT);
		ck_assert_int_eq(layout_mirror_conf_store(dfd, 't', "orders", 0),
				 0);
		ck_assert_int_eq(layout_mirror_conf_load(dfd, &d, name,
							 sizeof(name), &force),
				 0);
		ck_assert_int_eq(d, 't');
		ck_assert_int_eq(force, 0);
		ck_assert_str_eq(name, "orders");
		ck_assert_int_eq(layout_mirror_conf_store(dfd, 'f', "pay", 1), 0);
		ck_assert_int_eq(layout_mirror_conf_load(dfd, &d, name,
							 sizeof(name), &force),
				 0);
		ck_assert_int_eq(d, 'f');
		ck_assert_int_eq(force, 1);
		ck_assert_str_eq(name, "pay");
		fd = openat(dfd, LAYOUT_MIRROR_CONF_FILE, O_WRONLY | O_TRUNC);
		ck_assert_int_eq(write(fd, "to=\n", 4), 4);
		close(fd);
		ck_assert_int_eq(layout_mirror_conf_load(dfd, &d, name,
							 sizeof(name), &force),
				 -EINVAL);
		fd = openat(dfd, LAYOUT_MIRROR_CONF_FILE, O_WRONLY | O_TRUNC);
		ck_assert_int_eq(write(fd, "to=a\nretention=maybe\n", 22), 22);
		close(fd);
		ck_assert_int_eq(layout_mirror_conf_load(dfd, &d, name,
							 sizeof(name), &force),
				 -EINVAL);
	}
	test_rmtree(dfd, dir);
}
END_TEST

/* emptied STORED KNOWN STORED_REMOTE END START NEXT WANT: where an export
 * resumes on a partition Kafka emptied, WANT, or -1 for -ESTALE (and
 * nothing written). */
static void emptied(uint64_t stored, int known, uint64_t stored_remote,
		    uint64_t end, uint64_t start, uint64_t next, int64_t want)
{
	uint64_t r = 7;
	int ret = mirror_export_resume_emptied(stored, known, stored_remote,
					       end, start, next, &r);

	if (want < 0) {
		ck_assert_int_eq(ret, -ESTALE);
		ck_assert(r == 7);
	} else {
		ck_assert_int_eq(ret, 0);
		ck_assert(r == (uint64_t)want);
	}
}

START_TEST(test_resume)
{
	struct layout_mirror_pos m = {0, 10, 14, 200, 207};
	uint64_t r = 0;

	/* Export: Kafka's last header wins over the stored position, both
	 * when the store lagged (crash after the ack) and when Kafka lost
	 * acknowledged records; with no header, the stored position. */
	ck_assert(mirror_export_resume(100, 1, 149) == 150);
	ck_assert(mirror_export_resume(100, 1, 49) == 50);
	ck_assert(mirror_export_resume(100, 0, 0) == 100);
	ck_assert(mirror_export_resume(0, 1, 0) == 1);
	/* The end of a partition proves it empty only at 0 or at the log's
	 * start; elsewhere (a read reset to the end while the cluster
	 * recovered) it proves nothing and the resume waits. */
	ck_assert(mirror_eof_is_empty(0, -1));
	ck_assert(mirror_eof_is_empty(0, 0));
	ck_assert(mirror_eof_is_empty(1500, 1500));
	ck_assert(!mirror_eof_is_empty(1500, -1));
	ck_assert(!mirror_eof_is_empty(1500, 0));
	ck_assert(!mirror_eof_is_empty(1500, 1000));
	/* Export to a partition Kafka's retention emptied (no record, its
	 * offsets start at the end): the stored position, where Kafka's end
	 * is what it stored beside it; */
	emptied(100, 1, 100, 100, 0, 150, 100);
	/* the local offsets in step with Kafka's (their first ones are
	 * never in Kafka: retention, or an export started late); */
	emptied(1000, 1, 400, 400, 900, 1000, 1000);
	/* records acknowledged after the last store (a crash before it):
	 * not sent again; */
	emptied(100, 1, 100, 130, 50, 150, 130);
	emptied(100, 1, 100, 150, 100, 150, 150);
	/* acknowledged records Kafka lost: sent again; */
	emptied(100, 1, 100, 90, 50, 150, 90);
	/* never with Kafka's offsets unknown (a position stored before they
	 * were), more records than the log has, fewer than it ever sent,
	 * or local messages deleted in between (they may have been skipped
	 * rather than sent, so the offsets no longer match). */
	emptied(100, 0, 0, 100, 0, 150, -1);
	emptied(100, 1, 100, 151, 0, 150, -1);
	emptied(100, 1, 300, 100, 0, 150, -1);
	emptied(100, 1, 100, 130, 101, 150, -1);
	emptied(100, 1, 100, 90, 95, 150, -1);
	/* Import: the append announced landed, did not, or the log moved. */
	ck_assert_int_eq(mirror_import_resume(&m, 14, &r), 0);
	ck_assert(r == 207);
	ck_assert_int_eq(mirror_import_resume(&m, 10, &r), 0);
	ck_assert(r == 200);
	/* 4 messages for 7 Kafka offsets (gaps): a prefix cannot be mapped. */
	ck_assert_int_eq(mirror_import_resume(&m, 12, &r), -ESTALE);
	ck_assert_int_eq(mirror_import_resume(&m, 15, &r), -ESTALE);
	/* One message per record, no gap: a prefix of the appends that
	 * landed maps to the same prefix of records. */
	{
		struct layout_mirror_pos g = {0, 10, 14, 200, 204};

		ck_assert_int_eq(mirror_import_resume(&g, 12, &r), 0);
		ck_assert(r == 202);
		ck_assert_int_eq(mirror_import_resume(&g, 11, &r), 0);
		ck_assert(r == 201);
		ck_assert_int_eq(mirror_import_resume(&g, 15, &r), -ESTALE);
		ck_assert_int_eq(mirror_import_resume(&g, 9, &r), -ESTALE);
	}
}
END_TEST

/* esc_round VALUE LEN WANT: escaped as WANT, unescaped back to VALUE. */
static void esc_round(const char *v, size_t len, const char *want)
{
	char out[64];
	size_t n = layout_value_escape(v, len, out);

	ck_assert_uint_eq(n, strlen(want));
	ck_assert(memcmp(out, want, n) == 0);
	ck_assert(!memchr(out, '\n', n));
	n = layout_value_unescape(out, n);
	ck_assert_uint_eq(n, len);
	ck_assert(memcmp(out, v, len) == 0);
}

START_TEST(test_escape)
{
	/* Stored as they are: no newline, no leading record separator. */
	esc_round("plain", 5, "plain");
	esc_round("{\"a\":\"x\\\"y\"}", 12, "{\"a\":\"x\\\"y\"}");
	esc_round("", 0, "");
	esc_round("a\x1e", 2, "a\x1e");
	/* Escaped: a newline anywhere, or a leading separator. */
	esc_round("a\nb", 3, "\x1e" "a\\nb");
	esc_round("\\n\n", 3, "\x1e" "\\\\n\\n");
	esc_round("\x1e", 1, "\x1e\x1e");
	esc_round("\n", 1, "\x1e\\n");
	/* A lone trailing backslash in an escaped form stays. */
	{
		char b[8] = "\x1e" "x\\";

		ck_assert_uint_eq(layout_value_unescape(b, 3), 2);
		ck_assert(memcmp(b, "x\\", 2) == 0);
	}
}
END_TEST

static Suite *mirror_suite(void)
{
	Suite *s = suite_create("mirror");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_conf_file);
	tcase_add_test(tc, test_pos_file);
	tcase_add_test(tc, test_resume);
	tcase_add_test(tc, test_escape);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mirror_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
