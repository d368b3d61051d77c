/*
 * check_crc32c.c - CRC-32C known answers, and the fast (carry-less fold or
 * crc32 streams, whichever this CPU runs) and portable paths agreeing on
 * random data of every length and alignment, whole or chained.
 */
#include "testutil.h"
#include "crc32c.h"

START_TEST(test_known_answer)
{
	ck_assert_uint_eq(crc32c_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	if (crc32c_hw_available())
		ck_assert_uint_eq(crc32c_hw(0, "123456789", 9), 0xE3069283u);
}
END_TEST

START_TEST(test_incremental)
{
	/* Extending a CRC piece by piece equals one pass. */
	ck_assert_uint_eq(crc32c(crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
	ck_assert_uint_eq(crc32c_sw(crc32c_sw(0, "1", 1), "23456789", 8),
			  0xE3069283u);
}
END_TEST

START_TEST(test_paths_agree)
{
	/* Lengths straddle every interleave stripe (3 x 64/256/1024/8192); offsets cover every
	 * alignment of the 8-byte loops. */
	static const size_t lens[] = { 0, 1, 7, 8, 9, 63, 191, 192, 193, 767,
				       768, 3072, 3073, 4096, 4095, 12287, 12288,
				       12289, 24576 + 13, 100000, 1 << 20 };
	size_t i, off, bufsize = (1 << 20) + 16;
	unsigned char *buf = malloc(bufsize);
	uint32_t a, b, split;

	ck_assert_ptr_nonnull(buf);
	test_fill_random(buf, bufsize, 42);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (off = 0; off < 8; off++) {
			a = crc32c_sw(0, buf + off, lens[i]);
			b = crc32c(0, buf + off, lens[i]);
			ck_assert_msg(a == b, "len %zu off %zu: sw %08x fast %08x",
				      lens[i], off, a, b);
			if (crc32c_hw_available())
				ck_assert_uint_eq(crc32c_hw(0, buf + off, lens[i]), a);
			split = crc32c(crc32c(0, buf + off, lens[i] / 3),
				       buf + off + lens[i] / 3,
				       lens[i] - lens[i] / 3);
			ck_assert_uint_eq(split, a);
		}
	}
	free(buf);
}
END_TEST

/* Every length up to past one 4 KiB chunk, at misalignments that put the
 * fold's 64-byte loads and the tail's 8/4/2/1-byte steps everywhere, with
 * a non-zero starting CRC; and chaining at every cut of one buffer. */
START_TEST(test_every_length)
{
	enum { MAXLEN = 4200 };
	static const size_t offs[] = { 0, 1, 3, 7, 8, 13, 31, 63 };
	unsigned char *buf = malloc(MAXLEN + 64);
	uint64_t rnd = 99 + (uint64_t)_i;
	size_t len, i, cut;
	uint32_t start, want, got;

	ck_assert_ptr_nonnull(buf);
	test_fill_random(buf, MAXLEN + 64, 1000 + (uint64_t)_i);
	for (len = 0; len <= MAXLEN; len++) {
		for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			start = (uint32_t)test_rand(&rnd);
			want = crc32c_sw(start, buf + offs[i], len);
			got = crc32c(start, buf + offs[i], len);
			ck_assert_msg(got == want,
				      "len %zu off %zu: sw %08x fast %08x", len,
				      offs[i], want, got);
		}
		if (crc32c_hw_available())
			ck_assert_uint_eq(crc32c_hw(0, buf + 5, len),
					  crc32c_sw(0, buf + 5, len));
	}
	/* crc32c(crc32c(0, a), b) == crc32c(0, a || b) at every cut. */
	want = crc32c_sw(0, buf + 1, MAXLEN);
	for (cut = 0; cut <= MAXLEN; cut++) {
		got = crc32c(crc32c(0, buf + 1, cut), buf + 1 + cut,
			     MAXLEN - cut);
		ck_assert_msg(got == want, "cut %zu: %08x != %08x", cut, got,
			      want);
	}
	free(buf);
}
END_TEST

/* crc32c_count: the CRC of crc32c() and the byte count of a plain loop,
 * at every length past one chunk and every misalignment of the fold's
 * loads and of its masked last load, for a byte that is frequent
 * (newlines every few bytes) and one that never occurs.  Says whether
 * the fused path ran, so a machine without it still checks the
 * fallback. */
START_TEST(test_count_fused)
{
	enum { MAXLEN = 4200 };
	static const size_t offs[] = { 0, 1, 7, 31, 63 };
	static const unsigned char bytes[] = { '\n', 0xA5 };
	unsigned char *buf = malloc(MAXLEN + 64);
	size_t len, i, k, j, n, want_n;
	uint32_t start, want;

	ck_assert_ptr_nonnull(buf);
	test_fill_random(buf, MAXLEN + 64, 4242);
	for (j = 0; j < MAXLEN + 64; j++) {
		if (buf[j] == 0xA5)
			buf[j] = 0x5A;
		if (buf[j] % 29 == 0)
			buf[j] = '\n';
	}
	if (!crc32c_count_fused())
		fprintf(stderr, "check_crc32c: no fused CRC and count on this "
				"CPU; checking the fallback\n");
	for (len = 0; len <= MAXLEN; len++) {
		for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			for (k = 0; k < sizeof(bytes); k++) {
				start = (uint32_t)(len * 2654435761u + i);
				want = crc32c_sw(start, buf + offs[i], len);
				want_n = 0;
				for (j = 0; j < len; j++)
					want_n += buf[offs[i] + j] == bytes[k];
				n = 3; /* added to, not overwritten */
				ck_assert_uint_eq(crc32c_count(start,
							       buf + offs[i],
							       len, bytes[k],
							       &n),
						  want);
				ck_assert_msg(n == 3 + want_n,
					      "len %zu off %zu byte %02x: "
					      "counted %zu, want %zu",
					      len, offs[i], bytes[k], n - 3,
					      want_n);
			}
		}
	}
	free(buf);
}
END_TEST

START_TEST(test_detects_flip)
{
	unsigned char buf[4096];
	uint32_t good;
	int bit;

	test_fill_random(buf, sizeof(buf), 7);
	good = crc32c(0, buf, sizeof(buf));
	for (bit = 0; bit < 64; bit++) {
		buf[bit * 61 % sizeof(buf)] ^= 1u << (bit & 7);
		ck_assert_uint_ne(crc32c(0, buf, sizeof(buf)), good);
		buf[bit * 61 % sizeof(buf)] ^= 1u << (bit & 7);
	}
	ck_assert_uint_eq(crc32c(0, buf, sizeof(buf)), good);
}
END_TEST

static Suite *crc32c_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_known_answer);
	tcase_add_test(tc, test_incremental);
	tcase_add_test(tc, test_paths_agree);
	tcase_add_loop_test(tc, test_every_length, 0, 2);
	tcase_add_test(tc, test_detects_flip);
	tcase_add_test(tc, test_count_fused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crc32c_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
