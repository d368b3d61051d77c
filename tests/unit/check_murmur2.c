/*
 * check_murmur2.c - Kafka's key hash against the vectors of Kafka's own
 * tests (UtilsTest.testMurmur2) and librdkafka's (rdmurmur2.c's unit
 * test, whose keys also start at every alignment), the partition choice,
 * and the keyed-producing rules of produce.h: a line's key, the settings'
 * values and produce.conf's text.
 */
#include <errno.h>
#include <string.h>

#include "testutil.h"
#include "murmur2.h"
#include "produce.h"

START_TEST(test_kafka_vectors)
{
	/* Kafka's Utils.murmur2 returns a Java int: compare as signed. */
	static const struct {
		const char *key;
		int32_t hash;
	} v[] = {
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ck_assert_msg((int32_t)murmur2(v[i].key, strlen(v[i].key)) ==
				      v[i].hash,
			      "murmur2(\"%s\") = %d, Kafka says %d", v[i].key,
			      (int32_t)murmur2(v[i].key, strlen(v[i].key)),
			      v[i].hash);
}
END_TEST

START_TEST(test_librdkafka_vectors)
{
	/* The same strings at offsets 0..3 of one buffer: every alignment
	 * of the word loop, and every tail length. */
	static const char short_key[] = "1234";
	static const char long_key[] = "PreAmbleWillBeRemoved,ThePrePartThatIs";
	static const struct {
		const char *key;
		uint32_t hash;
	} v[] = {
		{"kafka", 0xd067cf64u},
		{"giberish123456789", 0x8f552b0cu},
		{short_key, 0x9fc97b14u},
		{short_key + 1, 0xe7c009cau},
		{short_key + 2, 0x873930dau},
		{short_key + 3, 0x5a4b5ca1u},
		{long_key, 0x78424f1cu},
		{long_key + 1, 0x4a62b377u},
		{long_key + 2, 0xe0e4e09eu},
		{long_key + 3, 0x62b8b43fu},
		{"", 0x106e08d9u},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ck_assert_msg(
			murmur2(v[i].key, strlen(v[i].key)) == v[i].hash,
			"murmur2(\"%s\") = 0x%08x, librdkafka says 0x%08x",
			v[i].key, murmur2(v[i].key, strlen(v[i].key)),
			v[i].hash);
	/* NULL with length 0 is the empty key. */
	ck_assert_uint_eq(murmur2(NULL, 0), 0x106e08d9u);
}
END_TEST

START_TEST(test_partition)
{
	/* toPositive() clears the sign bit before the modulo: "kafka"'s
	 * hash has it set (0xd067cf64 -> 1348980580), "abc"'s has not. */
	ck_assert_uint_eq(murmur2_partition("kafka", 5, 8), 1348980580u % 8);
	ck_assert_uint_eq(murmur2_partition("kafka", 5, 8), 4);
	ck_assert_uint_eq(murmur2_partition("kafka", 5, 7), 1348980580u % 7);
	ck_assert_uint_eq(murmur2_partition("abc", 3, 10), 479470107u % 10);
	/* -973932308 & 0x7fffffff */
	ck_assert_uint_eq(murmur2_partition("21", 2, 3), 1173551340u % 3);
	ck_assert_uint_eq(murmur2_partition("21", 2, 1), 0);
}
END_TEST

START_TEST(test_route)
{
	const char *l = "order-17\t{\"total\": 12}";
	uint32_t p;

	p = produce_route(l, strlen(l), '\t', 8);
	ck_assert_uint_eq(p, murmur2_partition("order-17", 8, 8));
	ck_assert_uint_lt(p, 8);
	/* The first separator ends the key. */
	ck_assert_uint_eq(produce_route("a\tb\tc", 5, '\t', 1000),
			  murmur2_partition("a", 1, 1000));
	/* No separator: no key; an empty separator: never a key. */
	ck_assert_uint_eq(produce_route("no key here", 11, '\t', 8),
			  PRODUCE_UNKEYED);
	ck_assert_uint_eq(produce_route(l, strlen(l), PRODUCE_NO_SEPARATOR, 8),
			  PRODUCE_UNKEYED);
	/* A separator first: the empty key, which Kafka hashes too. */
	ck_assert_uint_eq(produce_route("\tv", 2, '\t', 1000),
			  (0x106e08d9u & 0x7fffffffu) % 1000);
	/* Another separator byte; bytes past len are not looked at. */
	ck_assert_uint_eq(produce_route("kafka,x", 7, ',', 8), 4);
	ck_assert_uint_eq(produce_route("kafka,x", 5, ',', 8), PRODUCE_UNKEYED);
	/* A byte above 127 as separator (memchr compares unsigned). */
	ck_assert_uint_eq(produce_route("kafka\xffx", 7, 0xff, 8), 4);
}
END_TEST

START_TEST(test_values)
{
	uint32_t n = 77;
	int sep = 0;
	char b[2];

	ck_assert_int_eq(produce_parse_partitions("8", 1, &n), 0);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(produce_parse_partitions("12\n", 3, &n), 0);
	ck_assert_uint_eq(n, 12);
	ck_assert_int_eq(produce_parse_partitions("10000", 5, &n), 0);
	ck_assert_int_eq(produce_parse_partitions("0", 1, &n), -EINVAL);
	ck_assert_int_eq(produce_parse_partitions("10001", 5, &n), -EINVAL);
	ck_assert_int_eq(produce_parse_partitions("-1", 2, &n), -EINVAL);
	ck_assert_int_eq(produce_parse_partitions(" 8", 2, &n), -EINVAL);
	ck_assert_int_eq(produce_parse_partitions("8x", 2, &n), -EINVAL);
	ck_assert_int_eq(produce_parse_partitions("", 0, &n), -EINVAL);
	ck_assert_int_eq(
		produce_parse_partitions("99999999999999999999999", 23, &n),
		-EINVAL);
	ck_assert_uint_eq(n, 10000); /* unchanged by the refusals */

	ck_assert_int_eq(produce_parse_separator(",", 1, &sep), 0);
	ck_assert_int_eq(sep, ',');
	ck_assert_int_eq(produce_parse_separator("", 0, &sep), 0);
	ck_assert_int_eq(sep, PRODUCE_NO_SEPARATOR);
	ck_assert_int_eq(produce_parse_separator("\n", 1, &sep), -EINVAL);
	ck_assert_int_eq(produce_parse_separator("\0", 1, &sep), -EINVAL);
	ck_assert_int_eq(produce_parse_separator("::", 2, &sep), -EINVAL);
	ck_assert_int_eq(sep, PRODUCE_NO_SEPARATOR);
	ck_assert_uint_eq(produce_format_separator('\t', b), 1);
	ck_assert_int_eq(b[0], '\t');
	ck_assert_uint_eq(produce_format_separator(PRODUCE_NO_SEPARATOR, b), 0);
}
END_TEST

START_TEST(test_conf_text)
{
	struct produce_conf c, d;
	char buf[128];
	int len;

	produce_conf_init(&c);
	ck_assert_uint_eq(c.partitions, 0);
	ck_assert_int_eq(c.separator, '\t');
	/* Defaults render as nothing. */
	ck_assert_int_eq(produce_conf_render(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	c.partitions = 8;
	c.separator = PRODUCE_NO_SEPARATOR;
	len = produce_conf_render(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "partitions=8\nkey_separator=none\n");
	produce_conf_init(&d);
	ck_assert_int_eq(produce_conf_parse(&d, buf, (size_t)len), 0);
	ck_assert_uint_eq(d.partitions, 8);
	ck_assert_int_eq(d.separator, PRODUCE_NO_SEPARATOR);
	c.separator = ',';
	len = produce_conf_render(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "partitions=8\nkey_separator=44\n");
	ck_assert_int_eq(produce_conf_parse(&d, buf, (size_t)len), 0);
	ck_assert_int_eq(d.separator, ',');
	ck_assert_int_eq(produce_conf_render(&c, buf, 10), -ERANGE);
	/* A bad line refuses the whole text and changes nothing. */
	ck_assert_int_eq(
		produce_conf_parse(&d, "partitions=3\nkey_separator=10\n", 30),
		-EINVAL);
	ck_assert_int_eq(produce_conf_parse(&d, "partitions=3\nbogus=1\n", 21),
			 -EINVAL);
	ck_assert_int_eq(produce_conf_parse(&d, "partitions=0\n", 13), -EINVAL);
	ck_assert_uint_eq(d.partitions, 8);
	ck_assert_int_eq(d.separator, ',');
	/* Comments and blank lines are fine; a missing newline too. */
	ck_assert_int_eq(produce_conf_parse(&d, "# x\n\npartitions=3", 17), 0);
	ck_assert_uint_eq(d.partitions, 3);
}
END_TEST

static Suite *murmur2_suite(void)
{
	Suite *s = suite_create("murmur2");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_kafka_vectors);
	tcase_add_test(tc, test_librdkafka_vectors);
	tcase_add_test(tc, test_partition);
	tcase_add_test(tc, test_route);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_conf_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(murmur2_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
