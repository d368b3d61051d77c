/*
 * check_framer.c - line framing of writes: batches end at a newline,
 * held partial lines join the next write, limits refuse a message whole,
 * and a plan that is not committed changes nothing.
 */
#include <errno.h>

#include "testutil.h"
#include "framer.h"

/* The plan's batch joined into one static buffer (tests only: the
 * framer itself never joins), and its newline count. */
static const char *batch_of(const struct framer_plan *pl, size_t *nl)
{
	static char joined[1 << 20];
	size_t at = 0, i;
	int k;

	ck_assert_int_le(pl->iovcnt, 2);
	for (k = 0; k < pl->iovcnt; k++) {
		ck_assert_uint_le(at + pl->iov[k].iov_len, sizeof(joined));
		memcpy(joined + at, pl->iov[k].iov_base, pl->iov[k].iov_len);
		at += pl->iov[k].iov_len;
	}
	ck_assert_uint_eq(at, pl->batch_len);
	*nl = 0;
	for (i = 0; i < at; i++)
		*nl += joined[i] == '\n';
	return joined;
}

/* Messages in the plan's batch: the count the engine will find. */
static size_t plan_count(const struct framer_plan *pl)
{
	size_t nl;

	batch_of(pl, &nl);
	return nl;
}

/* Invariants of a plan that succeeded. */
static void check_plan(const struct framer_plan *pl, const char *buf,
		       size_t len)
{
	const char *b;
	size_t nl;

	b = batch_of(pl, &nl);
	if (pl->batch_len) {
		/* A batch ends with a newline: its count is its newlines. */
		ck_assert_int_eq(b[pl->batch_len - 1], '\n');
		ck_assert_uint_ge(nl, 1);
		/* The write's part is the caller's buffer, not a copy. */
		ck_assert_ptr_eq(pl->iov[pl->iovcnt - 1].iov_base, buf);
	} else {
		ck_assert_int_eq(pl->iovcnt, 0);
	}
	/* The tail is the end of the write and holds no newline. */
	ck_assert_uint_le(pl->tail_len, len);
	if (pl->tail_len) {
		ck_assert_ptr_eq(pl->tail, buf + len - pl->tail_len);
		ck_assert_ptr_null(memchr(pl->tail, '\n', pl->tail_len));
	}
}

START_TEST(test_complete_lines_zero_copy)
{
	struct framer f;
	struct framer_plan pl;
	const char *w = "a\nbb\nccc\n";

	framer_init(&f);
	ck_assert_int_eq(framer_plan(&f, w, strlen(w), 0, &pl), 0);
	check_plan(&pl, w, strlen(w));
	/* Nothing held: the batch is the caller's buffer, not a copy. */
	ck_assert_int_eq(pl.iovcnt, 1);
	ck_assert_ptr_eq(pl.iov[0].iov_base, w);
	ck_assert_uint_eq(pl.batch_len, strlen(w));
	ck_assert_uint_eq(plan_count(&pl), 3);
	ck_assert_uint_eq(pl.tail_len, 0);
	framer_commit(&f, &pl);
	ck_assert_uint_eq(f.pending_len, 0);
	framer_release(&f);
}
END_TEST

START_TEST(test_partial_joins_next_write)
{
	struct framer f;
	struct framer_plan pl;
	const char *p, *w;
	size_t n;

	framer_init(&f);
	ck_assert_int_eq(framer_plan(&f, "one\ntw", 6, 0, &pl), 0);
	check_plan(&pl, "one\ntw", 6);
	ck_assert_uint_eq(plan_count(&pl), 1);
	ck_assert_uint_eq(pl.batch_len, 4);
	ck_assert_uint_eq(pl.tail_len, 2);
	framer_commit(&f, &pl);
	p = framer_pending(&f, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(memcmp(p, "tw", 2), 0);

	/* No newline: the held line grows, nothing to append. */
	ck_assert_int_eq(framer_plan(&f, "o-", 2, 0, &pl), 0);
	ck_assert_uint_eq(pl.batch_len, 0);
	ck_assert_int_eq(pl.iovcnt, 0);
	framer_commit(&f, &pl);
	p = framer_pending(&f, &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(memcmp(p, "tw", 2), 0);
	ck_assert_int_eq(memcmp(p, "two-", 4), 0);

	/* The newline completes it: held bytes lead the batch. */
	w = "x\nthree\nfo";
	ck_assert_int_eq(framer_plan(&f, w, 10, 0, &pl), 0);
	check_plan(&pl, w, 10);
	ck_assert_uint_eq(plan_count(&pl), 2);
	ck_assert_uint_eq(pl.batch_len, 12);
	ck_assert_int_eq(memcmp(batch_of(&pl, &n), "two-x\nthree\n", 12), 0);
	/* Two pieces, no join: the held bytes, then the write itself. */
	ck_assert_int_eq(pl.iovcnt, 2);
	ck_assert_ptr_eq(pl.iov[0].iov_base, f.pending);
	ck_assert_uint_eq(pl.iov[0].iov_len, 4);
	ck_assert_ptr_eq(pl.iov[1].iov_base, w);
	ck_assert_uint_eq(pl.iov[1].iov_len, 8);
	framer_commit(&f, &pl);
	p = framer_pending(&f, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(memcmp(p, "fo", 2), 0);

	framer_clear(&f);
	framer_pending(&f, &n);
	ck_assert_uint_eq(n, 0);
	framer_release(&f);
}
END_TEST

START_TEST(test_uncommitted_plan_changes_nothing)
{
	struct framer f;
	struct framer_plan pl;
	const char *p;
	size_t n;

	framer_init(&f);
	ck_assert_int_eq(framer_plan(&f, "held", 4, 0, &pl), 0);
	framer_commit(&f, &pl);
	/* An append that fails (ENOSPC) is followed by no commit. */
	ck_assert_int_eq(framer_plan(&f, "!\nmore", 6, 0, &pl), 0);
	ck_assert_int_eq(framer_plan(&f, "zz", 2, 0, &pl), 0);
	p = framer_pending(&f, &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(memcmp(p, "held", 4), 0);
	framer_release(&f);
}
END_TEST

START_TEST(test_limits)
{
	struct framer f;
	struct framer_plan pl;
	size_t n;

	framer_init(&f);
	/* Exactly the limit, newline included, passes; one more fails. */
	ck_assert_int_eq(framer_plan(&f, "abcd\n", 5, 5, &pl), 0);
	ck_assert_uint_eq(plan_count(&pl), 1);
	ck_assert_int_eq(framer_plan(&f, "abcde\n", 6, 5, &pl), -EMSGSIZE);
	ck_assert_int_eq(pl.drop_pending, 0);
	/* A long line after a good one refuses the whole write. */
	ck_assert_int_eq(framer_plan(&f, "ok\ntoolong\n", 11, 5, &pl),
			 -EMSGSIZE);
	/* A partial line alone over the limit fails. */
	ck_assert_int_eq(framer_plan(&f, "abcdef", 6, 5, &pl), -EMSGSIZE);
	ck_assert_int_eq(pl.drop_pending, 0);
	/* A held line growing past the limit fails and names the held bytes. */
	ck_assert_int_eq(framer_plan(&f, "abc", 3, 5, &pl), 0);
	framer_commit(&f, &pl);
	ck_assert_int_eq(framer_plan(&f, "def", 3, 5, &pl), -EMSGSIZE);
	ck_assert_int_eq(pl.drop_pending, 1);
	ck_assert_int_eq(framer_plan(&f, "de\n", 3, 5, &pl), -EMSGSIZE);
	ck_assert_int_eq(pl.drop_pending, 1);
	/* ...but not when a later message is the long one. */
	ck_assert_int_eq(framer_plan(&f, "d\nxxxxxx\n", 9, 5, &pl), -EMSGSIZE);
	ck_assert_int_eq(pl.drop_pending, 0);
	/* The held bytes are still there after every refusal. */
	framer_pending(&f, &n);
	ck_assert_uint_eq(n, 3);
	/* A trailing partial over the limit after good lines fails too. */
	ck_assert_int_eq(framer_plan(&f, "\nabcdefg", 8, 5, &pl), -EMSGSIZE);
	/* The same write with the limit off goes through. */
	ck_assert_int_eq(framer_plan(&f, "\nabcdefg", 8, 0, &pl), 0);
	ck_assert_uint_eq(plan_count(&pl), 1);
	ck_assert_uint_eq(pl.tail_len, 7);
	framer_release(&f);
}
END_TEST

START_TEST(test_empty_write)
{
	struct framer f;
	struct framer_plan pl;

	framer_init(&f);
	ck_assert_int_eq(framer_plan(&f, "", 0, 10, &pl), 0);
	ck_assert_uint_eq(pl.batch_len, 0);
	ck_assert_uint_eq(pl.tail_len, 0);
	framer_commit(&f, &pl);
	ck_assert_uint_eq(f.pending_len, 0);
	framer_release(&f);
}
END_TEST

/* Random text cut into random writes: the batches plus the final flush
 * give back the text, every message is one line, and the count matches. */
START_TEST(test_random_chunking)
{
	enum { LEN = 200000 };
	char *text = malloc(LEN), *out = malloc(LEN);
	struct framer f;
	struct framer_plan pl;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL + (uint64_t)_i;
	size_t pos = 0, outlen = 0, lines = 0, msgs = 0, n, i, chunk;
	const char *p;

	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(out);
	for (i = 0; i < LEN; i++) {
		text[i] = (test_rand(&rnd) % 23 == 0) ? '\n' : 'a' + i % 26;
		lines += text[i] == '\n';
	}
	framer_init(&f);
	while (pos < LEN) {
		chunk = test_rand(&rnd) % 300;
		if (test_rand(&rnd) % 50 == 0)
			chunk = test_rand(&rnd) % 20000;
		if (chunk > LEN - pos)
			chunk = LEN - pos;
		ck_assert_int_eq(framer_plan(&f, text + pos, chunk, 0, &pl), 0);
		check_plan(&pl, text + pos, chunk);
		if (pl.batch_len)
			memcpy(out + outlen, batch_of(&pl, &n), pl.batch_len);
		outlen += pl.batch_len;
		msgs += plan_count(&pl);
		framer_commit(&f, &pl);
		/* Stored plus held is exactly what was written so far. */
		p = framer_pending(&f, &n);
		ck_assert_uint_eq(outlen + n, pos + chunk);
		ck_assert_int_eq(memcmp(p, text + outlen, n), 0);
		pos += chunk;
	}
	p = framer_pending(&f, &n);
	if (n)
		memcpy(out + outlen, p, n);
	outlen += n;
	if (n)
		msgs++;
	ck_assert_uint_eq(outlen, LEN);
	ck_assert_int_eq(memcmp(out, text, LEN), 0);
	ck_assert_uint_eq(msgs, lines + (text[LEN - 1] != '\n'));
	framer_release(&f);
	free(text);
	free(out);
}
END_TEST

/* The windowed length check against a line-by-line reference: random
 * lines around the limit, with and without held bytes. */
START_TEST(test_limits_random)
{
	enum { LEN = 6000 };
	static char text[LEN];
	uint64_t rnd = 0x5bd1e995u + (uint64_t)_i;
	struct framer f;
	struct framer_plan pl;
	size_t i, held, len, start, longest_first, line, max, last_nl;
	int round, want, want_drop, bad_later;

	for (round = 0; round < 2000; round++) {
		max = 1 + test_rand(&rnd) % 64;
		len = 1 + test_rand(&rnd) % LEN;
		for (i = 0; i < len; i++)
			text[i] = test_rand(&rnd) % (max + 2) == 0 ? '\n' : 'x';
		held = test_rand(&rnd) % 3 == 0 ? test_rand(&rnd) % (max + 1)
						: 0;
		framer_init(&f);
		if (held) {
			memset(text + LEN - held, 'h', held);
			ck_assert_int_eq(framer_plan(&f, text + LEN - held,
						     held, max, &pl),
					 0);
			framer_commit(&f, &pl);
		}
		/* Reference: walk every line. */
		last_nl = SIZE_MAX;
		for (i = 0; i < len; i++)
			if (text[i] == '\n')
				last_nl = i;
		want = 0;
		want_drop = 0;
		if (last_nl == SIZE_MAX) {
			if (held + len > max) {
				want = -EMSGSIZE;
				want_drop = held > 0;
			}
		} else {
			start = 0;
			longest_first = 0;
			bad_later = 0;
			for (i = 0; i <= last_nl; i++) {
				if (text[i] != '\n')
					continue;
				line = i - start + 1;
				if (start == 0)
					longest_first = line + held;
				else if (line > max)
					bad_later = 1;
				start = i + 1;
			}
			if (longest_first > max) {
				want = -EMSGSIZE;
				want_drop = held > 0;
			} else if (bad_later || len - last_nl - 1 > max) {
				want = -EMSGSIZE;
			}
		}
		ck_assert_int_eq(framer_plan(&f, text, len, max, &pl), want);
		if (want)
			ck_assert_int_eq(pl.drop_pending, want_drop);
		else
			check_plan(&pl, text, len);
		framer_release(&f);
	}
}
END_TEST

static Suite *framer_suite(void)
{
	Suite *s = suite_create("framer");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_complete_lines_zero_copy);
	tcase_add_test(tc, test_partial_joins_next_write);
	tcase_add_test(tc, test_uncommitted_plan_changes_nothing);
	tcase_add_test(tc, test_limits);
	tcase_add_loop_test(tc, test_limits_random, 0, 4);
	tcase_add_test(tc, test_empty_write);
	tcase_add_loop_test(tc, test_random_chunking, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(framer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
