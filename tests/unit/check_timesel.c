/*
 * check_timesel.c - the "when" grammar of time-addressed views: every
 * form it accepts (ISO-8601 UTC and with offsets, to the minute, second
 * and millisecond; epoch ms; relative; ranges; offsets) and the forms it
 * refuses; resolving a selection on a partition, including appends whose
 * clock went backwards (the index's time column stays the maximum so
 * far, so lookups stay right) across segments and a reopen.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "testutil.h"
#include "model.h"
#include "partition.h"
#include "timesel.h"

static int64_t abs_ms(const char *s)
{
	struct timesel sel;

	ck_assert_msg(timesel_parse(s, &sel) == 0, "refused '%s'", s);
	ck_assert(!sel.by_offset && !sel.bounded);
	ck_assert_int_eq(sel.from.kind, TIMESEL_ABS);
	return sel.from.v;
}

/* 2026-12-06T10:00:00Z */
#define T10 1796551200000LL

START_TEST(test_iso_forms)
{
	ck_assert_int_eq(abs_ms("1970-01-01T00:00Z"), 0);
	ck_assert_int_eq(abs_ms("2026-12-06T10:00Z"), T10);
	ck_assert_int_eq(abs_ms("2026-12-06T10:00:00Z"), T10);
	ck_assert_int_eq(abs_ms("2026-12-06T10:00:30Z"), T10 + 30000);
	ck_assert_int_eq(abs_ms("2026-12-06T10:00:30.250Z"), T10 + 30250);
	ck_assert_int_eq(abs_ms("2026-12-06T10:00:30.5Z"), T10 + 30500);
	ck_assert_int_eq(abs_ms("2026-12-06T11:00+01:00"), T10);
	ck_assert_int_eq(abs_ms("2026-12-06T11:30+0130"), T10);
	ck_assert_int_eq(abs_ms("2026-12-06T05:00:00.000-05:00"), T10);
	ck_assert_int_eq(abs_ms("2024-02-29T00:00Z"), 1709164800000LL);
	ck_assert_int_eq(abs_ms("2000-03-01T00:00Z"), 951868800000LL);
	ck_assert_int_eq(abs_ms("1796551200000"), T10);
	ck_assert_int_eq(abs_ms("0"), 0);
	/* A date alone is its midnight; an offset of whole hours. */
	ck_assert_int_eq(abs_ms("2026-12-06Z"), T10 - 10 * 3600000LL);
	ck_assert_int_eq(abs_ms("2026-12-06T11:00+01"), T10);
}
END_TEST

/* The one grammar's other callers: fluxctl --time (a time without a zone
 * is local time) and a group reset (without a zone, UTC). */
START_TEST(test_zoneless_for_callers)
{
	int64_t ms;

	ck_assert_int_eq(timesel_parse_ms("2026-12-06T10:00", 0, 0, &ms),
			 -EINVAL);
	ck_assert_int_eq(timesel_parse_ms("2026-12-06T10:00:00",
					  TIMESEL_NOZONE_UTC, 0, &ms),
			 0);
	ck_assert_int_eq(ms, T10);
	setenv("TZ", "UTC+3", 1); /* POSIX: three hours west of UTC */
	tzset();
	ck_assert_int_eq(timesel_parse_ms("2026-12-06T07:00",
					  TIMESEL_NOZONE_LOCAL, 0, &ms),
			 0);
	ck_assert_int_eq(ms, T10);
	ck_assert_int_eq(timesel_parse_ms("2026-12-06", TIMESEL_NOZONE_LOCAL,
					  0, &ms),
			 0);
	ck_assert_int_eq(ms, T10 - 7 * 3600000LL);
	/* A zone given is the zone used, whatever the flags. */
	ck_assert_int_eq(timesel_parse_ms("2026-12-06T10:00Z",
					  TIMESEL_NOZONE_LOCAL, 0, &ms),
			 0);
	ck_assert_int_eq(ms, T10);
	unsetenv("TZ");
	tzset();
	/* Relative points, every unit, measured from now. */
	ck_assert_int_eq(timesel_parse_ms("-500ms", 0, 10000, &ms), 0);
	ck_assert_int_eq(ms, 9500);
	ck_assert_int_eq(timesel_parse_ms("-2w", 0, 0, &ms), 0);
	ck_assert_int_eq(ms, -2 * 604800000LL);
	ck_assert_int_eq(timesel_parse_ms("-90s", TIMESEL_NOZONE_UTC, 100000,
					  &ms),
			 0);
	ck_assert_int_eq(ms, 10000);
	ck_assert_int_eq(timesel_parse_ms("yesterday", TIMESEL_NOZONE_LOCAL,
					  0, &ms),
			 -EINVAL);
	ck_assert_int_eq(timesel_parse_ms(NULL, 0, 0, &ms), -EINVAL);
}
END_TEST

START_TEST(test_relative_and_ranges)
{
	struct timesel sel;

	ck_assert_int_eq(timesel_parse("-90s", &sel), 0);
	ck_assert_int_eq(sel.from.kind, TIMESEL_REL);
	ck_assert_int_eq(timesel_ms(&sel.from, 100000), 10000);
	ck_assert_int_eq(timesel_parse("-15m", &sel), 0);
	ck_assert_int_eq(sel.from.v, 15 * 60000);
	ck_assert_int_eq(timesel_parse("-2h", &sel), 0);
	ck_assert_int_eq(sel.from.v, 2 * 3600000);
	ck_assert_int_eq(timesel_parse("-7d", &sel), 0);
	ck_assert_int_eq(sel.from.v, 7LL * 86400000);

	ck_assert_int_eq(timesel_parse("2026-12-06T10:00Z..2026-12-06T10:05Z",
				       &sel),
			 0);
	ck_assert(sel.bounded && !sel.by_offset);
	ck_assert_int_eq(sel.from.v, T10);
	ck_assert_int_eq(sel.to.v, T10 + 300000);
	ck_assert_int_eq(timesel_parse("-1h..-30m", &sel), 0);
	ck_assert_int_eq(timesel_ms(&sel.to, 3600000), 1800000);
	ck_assert_int_eq(timesel_parse("1000..2026-12-06T10:00:00.001Z", &sel),
			 0);
	ck_assert_int_eq(sel.to.v, T10 + 1);

	ck_assert_int_eq(timesel_parse("offset:1234", &sel), 0);
	ck_assert(sel.by_offset && !sel.bounded);
	ck_assert_uint_eq(sel.off_from, 1234);
	ck_assert_int_eq(timesel_parse("offset:5..9", &sel), 0);
	ck_assert(sel.by_offset && sel.bounded);
	ck_assert_uint_eq(sel.off_from, 5);
	ck_assert_uint_eq(sel.off_to, 9);
}
END_TEST

START_TEST(test_refused)
{
	static const char *const bad[] = {
		"", "now", "yesterday", "-", "-5", "-5x", "-m", "--5m",
		"-5m5", "+5m", "2026-12-06", "2026-12-06T10Z", "-ms", "-5mss",
		"-5sm", "2026-12-06T10:00:00,5Z", "2026-12-06T10:00+1",
		"2026-12-06T10:00", /* no zone */
		"2026-12-06 10:00Z", "2026-12-06t10:00z", "2026-13-06T10:00Z",
		"2026-02-29T10:00Z", "2026-12-32T10:00Z", "2026-12-06T24:00Z",
		"2026-12-06T10:60Z", "2026-12-06T10:00:60Z",
		"2026-12-06T10:00:00.Z", "2026-12-06T10:00:00.1234Z",
		"2026-12-06T10:00+1:00", "2026-12-06T10:00+01:0",
		"2026-12-06T10:00Zjunk", "12a", "99999999999999999999999",
		"..", "1..", "..1", "1..2..3", "2..1", "offset:", "offset:x",
		"offset:-1", "offset:5..", "offset:9..5", "offset:1..offset:2",
		"OFFSET:1", "-99999999999999999d", "1...2"};
	struct timesel sel;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(timesel_parse(bad[i], &sel) == -EINVAL,
			      "accepted '%s'", bad[i]);
}
END_TEST

static void resolve(struct partition *p, const char *when, int64_t now,
		    uint64_t *start, uint64_t *end)
{
	struct timesel sel;

	ck_assert_msg(timesel_parse(when, &sel) == 0, "refused '%s'", when);
	timesel_resolve(p, &sel, now, start, end);
}

/* Each line "mN\n" is 3 bytes: message N starts at byte 3N. */
static void append_at(struct partition *p, int i, int64_t ts)
{
	char line[16];

	snprintf(line, sizeof(line), "m%d\n", i % 10);
	ck_assert_int_eq(partition_append(p, line, 3, 1, ts, PARTITION_ANY_END,
					  NULL, NULL),
			 0);
}

START_TEST(test_resolve_clock_backwards)
{
	/* Append times of messages 0..9: the clock jumps back at 4 and 7. */
	static const int64_t ts[] = {1000, 2000, 3000, 4000, 1500,
				     5000, 6000, 2500, 7000, 8000};
	struct config cfg;
	struct partition *p;
	uint64_t s, e;
	char dir[4096];
	int dfd = test_tmpdir(dir), i, round;

	model_cfg_init(&cfg, 9); /* three 3-byte messages per segment */
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 10; i++)
		append_at(p, i, ts[i]);
	for (round = 0; round < 2; round++) {
		/* A message appended with an older clock is stamped with
		 * the newest time so far, so it is found with the messages
		 * before it, never ahead of them. */
		resolve(p, "1500", 0, &s, &e);
		ck_assert_uint_eq(s, 3 * 1);
		ck_assert_uint_eq(e, UINT64_MAX);
		resolve(p, "4001", 0, &s, &e);
		ck_assert_uint_eq(s, 3 * 5);
		resolve(p, "2500..6001", 0, &s, &e);
		ck_assert_uint_eq(s, 3 * 2);
		ck_assert_uint_eq(e, 3 * 8);
		resolve(p, "6000..7000", 0, &s, &e);
		ck_assert_uint_eq(s, 3 * 6);
		ck_assert_uint_eq(e, 3 * 8);
		resolve(p, "9000", 0, &s, &e); /* after the newest: the end */
		ck_assert_uint_eq(s, 30);
		resolve(p, "-7s", 9000, &s, &e); /* 2000 */
		ck_assert_uint_eq(s, 3 * 1);
		resolve(p, "0..1000", 0, &s, &e); /* nothing before 1000 */
		ck_assert_uint_eq(s, 0);
		ck_assert_uint_eq(e, 0);
		resolve(p, "offset:3..7", 0, &s, &e);
		ck_assert_uint_eq(s, 9);
		ck_assert_uint_eq(e, 21);
		resolve(p, "offset:8..100", 0, &s, &e);
		ck_assert_uint_eq(s, 24);
		ck_assert_uint_eq(e, 30);
		resolve(p, "offset:12", 0, &s, &e);
		ck_assert_uint_eq(s, 30);
		/* The same after a reopen: the newest time is recovered, and
		 * an append with an older clock still goes last. */
		ck_assert_int_eq(partition_close(p), 0);
		ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL),
				 0);
	}
	append_at(p, 0, 100); /* message 10 */
	resolve(p, "8000", 0, &s, &e);
	ck_assert_uint_eq(s, 3 * 9);
	resolve(p, "8001", 0, &s, &e);
	ck_assert_uint_eq(s, 33);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dfd, dir);
}
END_TEST

START_TEST(test_resolve_retention)
{
	struct config cfg;
	struct partition *p;
	uint64_t s, e;
	char dir[4096];
	int dfd = test_tmpdir(dir), i;

	model_cfg_init(&cfg, 9);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 9; i++)
		append_at(p, i, 1000 * (i + 1));
	ck_assert_int_ge(partition_delete_before(p, 9), 0);
	/* Below the retained start: the start. */
	resolve(p, "0", 0, &s, &e);
	ck_assert_uint_eq(s, 9);
	resolve(p, "offset:0..4", 0, &s, &e);
	ck_assert_uint_eq(s, 9);
	ck_assert_uint_eq(e, 12);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dfd, dir);
}
END_TEST

/* A time roll leaves an empty active segment after the sealed ones: a
 * lookup must not take it for one older than every time. */
START_TEST(test_resolve_empty_active)
{
	struct partition_tick_report rep;
	struct config cfg;
	struct partition *p;
	uint64_t s, e;
	char dir[4096];
	int dfd = test_tmpdir(dir), i;

	model_cfg_init(&cfg, 1 << 20);
	cfg.segment_ms = 1000;
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 3; i++) /* one segment: within segment_ms */
		append_at(p, i, 1000 + 400 * i);
	ck_assert_int_eq(partition_tick(p, 10000, &rep), 0);
	ck_assert(rep.rolled);
	resolve(p, "0", 0, &s, &e);
	ck_assert_uint_eq(s, 0);
	resolve(p, "1400..1800", 0, &s, &e);
	ck_assert_uint_eq(s, 3);
	ck_assert_uint_eq(e, 6);
	resolve(p, "1801", 0, &s, &e);
	ck_assert_uint_eq(s, 9);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dfd, dir);
}
END_TEST

static Suite *timesel_suite(void)
{
	Suite *s = suite_create("timesel");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_iso_forms);
	tcase_add_test(tc, test_relative_and_ranges);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_zoneless_for_callers);
	tcase_add_test(tc, test_resolve_clock_backwards);
	tcase_add_test(tc, test_resolve_retention);
	tcase_add_test(tc, test_resolve_empty_active);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(timesel_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
