/*
 * check_config.c - the configuration parser: every key, every suffix,
 * every rejection, canonical formatting that parses back, topic.conf text
 * and layering.
 */
#include <errno.h>

#include "testutil.h"
/* Not "config.h": automake's -I. finds autoconf's config.h in the build
 * directory first. */
#include "config.h"

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)
#define TiB (1024ULL * GiB)

static int set_str(struct config *cfg, enum config_key k, const char *v)
{
	return config_set(cfg, k, v, strlen(v));
}

/* Parse v for key k into a fresh config and return it in *out. */
static int parse_one(enum config_key k, const char *v, struct config *out)
{
	config_defaults(out);
	return set_str(out, k, v);
}

/* A rejected value must leave the whole struct untouched. */
static void assert_rejected(enum config_key k, const char *v)
{
	struct config before, cfg;
	int ret;

	config_defaults(&cfg);
	ck_assert_int_eq(set_str(&cfg, CONFIG_COMPRESSION, "lz4"), 0);
	before = cfg;
	ret = set_str(&cfg, k, v);
	ck_assert_msg(ret == -EINVAL, "%s='%s' accepted (ret %d)",
		      config_key_name(k), v, ret);
	ck_assert_msg(memcmp(&before, &cfg, sizeof(cfg)) == 0,
		      "%s='%s' changed cfg on failure", config_key_name(k), v);
}

START_TEST(test_defaults)
{
	struct config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	ck_assert_uint_eq(cfg.segment_bytes, 256 * MiB);
	ck_assert_int_eq(cfg.segment_ms, 7LL * 24 * 3600 * 1000);
	ck_assert_int_eq(cfg.retention_bytes, -1);
	ck_assert_int_eq(cfg.retention_ms, -1);
	ck_assert_int_eq(cfg.flush_ms, 1000);
	ck_assert_uint_eq(cfg.max_message_bytes, MiB);
	ck_assert_int_eq(cfg.compression, COMPRESSION_NONE);
	ck_assert_uint_eq(cfg.set, 0);
}
END_TEST

START_TEST(test_key_names)
{
	static const char *const names[CONFIG_NKEYS] = {
		"segment_bytes", "segment_ms", "retention_bytes",
		"retention_ms",	 "flush_ms",   "max_message_bytes",
		"compression",
	};
	int k;

	for (k = 0; k < CONFIG_NKEYS; k++) {
		ck_assert_str_eq(config_key_name((enum config_key)k), names[k]);
		ck_assert_int_eq(config_key_lookup(names[k], strlen(names[k])),
				 k);
	}
	ck_assert_ptr_null(config_key_name(CONFIG_NKEYS));
	ck_assert_int_eq(config_key_lookup("segment", 7), -EINVAL);
	ck_assert_int_eq(config_key_lookup("segment_bytesx", 14), -EINVAL);
	ck_assert_int_eq(config_key_lookup("Segment_bytes", 13), -EINVAL);
	ck_assert_int_eq(config_key_lookup("", 0), -EINVAL);
	/* Counted, not NUL-terminated: a prefix of a longer buffer. */
	ck_assert_int_eq(config_key_lookup("flush_ms=5", 8), CONFIG_FLUSH_MS);
}
END_TEST

START_TEST(test_byte_suffixes)
{
	static const struct {
		const char *text;
		uint64_t want;
	} cases[] = {
		{"4096", 4096},
		{"4k", 4 * KiB},
		{"4K", 4 * KiB},
		{"1M", MiB},
		{"1m", MiB},
		{"256M", 256 * MiB},
		{"3G", 3 * GiB},
		{"3g", 3 * GiB},
		{"1T", TiB},
		{"1t", TiB},
		{"0008k", 8 * KiB},
		{"1048576", MiB},
		{"1099511627776", TiB},
	};
	struct config cfg;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(parse_one(CONFIG_SEGMENT_BYTES, cases[i].text,
					&cfg) == 0,
			      "'%s' refused", cases[i].text);
		ck_assert_uint_eq(cfg.segment_bytes, cases[i].want);
		ck_assert_uint_eq(cfg.set, 1u << CONFIG_SEGMENT_BYTES);
	}
	ck_assert_int_eq(parse_one(CONFIG_RETENTION_BYTES, "5G", &cfg), 0);
	ck_assert_int_eq(cfg.retention_bytes, (int64_t)(5 * GiB));
	ck_assert_int_eq(parse_one(CONFIG_RETENTION_BYTES, "0", &cfg), 0);
	ck_assert_int_eq(cfg.retention_bytes, 0);
	ck_assert_int_eq(parse_one(CONFIG_MAX_MESSAGE_BYTES, "64M", &cfg), 0);
	ck_assert_uint_eq(cfg.max_message_bytes, 64 * MiB);
	ck_assert_int_eq(parse_one(CONFIG_MAX_MESSAGE_BYTES, "1", &cfg), 0);
	ck_assert_uint_eq(cfg.max_message_bytes, 1);
}
END_TEST

START_TEST(test_time_suffixes)
{
	static const struct {
		const char *text;
		int64_t want;
	} cases[] = {
		{"1", 1},	   {"250", 250},
		{"250ms", 250},	   {"5s", 5000},
		{"2m", 120000},	   {"3h", 10800000},
		{"7d", 604800000}, {"0s", 0},
		{"1000ms", 1000},  {"9223372036854775807", INT64_MAX},
	};
	static const enum config_key ms_keys[] = {
		CONFIG_SEGMENT_MS, CONFIG_RETENTION_MS, CONFIG_FLUSH_MS};
	struct config cfg;
	size_t i, k;
	int64_t got;

	for (k = 0; k < 3; k++) {
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (ms_keys[k] == CONFIG_SEGMENT_MS &&
			    cases[i].want < 1000)
				continue; /* segment_ms has a floor of 1 s */
			ck_assert_msg(
				parse_one(ms_keys[k], cases[i].text, &cfg) == 0,
				"%s='%s' refused", config_key_name(ms_keys[k]),
				cases[i].text);
			got = ms_keys[k] == CONFIG_SEGMENT_MS ? cfg.segment_ms
			      : ms_keys[k] == CONFIG_RETENTION_MS
				      ? cfg.retention_ms
				      : cfg.flush_ms;
			ck_assert_int_eq(got, cases[i].want);
			ck_assert_uint_eq(cfg.set, 1u << ms_keys[k]);
		}
	}
}
END_TEST

START_TEST(test_unlimited_words)
{
	struct config cfg;
	static const char *const words[] = {"-1", "unlimited", "never"};
	size_t i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(parse_one(CONFIG_SEGMENT_MS, words[i], &cfg),
				 0);
		ck_assert_int_eq(cfg.segment_ms, -1);
		ck_assert_int_eq(parse_one(CONFIG_RETENTION_MS, words[i], &cfg),
				 0);
		ck_assert_int_eq(cfg.retention_ms, -1);
		ck_assert_int_eq(
			parse_one(CONFIG_RETENTION_BYTES, words[i], &cfg), 0);
		ck_assert_int_eq(cfg.retention_bytes, -1);
		ck_assert_int_eq(parse_one(CONFIG_FLUSH_MS, words[i], &cfg), 0);
		ck_assert_int_eq(cfg.flush_ms, -1);
		/* Keys without an unlimited setting refuse all three. */
		assert_rejected(CONFIG_SEGMENT_BYTES, words[i]);
		assert_rejected(CONFIG_MAX_MESSAGE_BYTES, words[i]);
		assert_rejected(CONFIG_COMPRESSION, words[i]);
	}
	ck_assert_int_eq(parse_one(CONFIG_FLUSH_MS, "0", &cfg), 0);
	ck_assert_int_eq(cfg.flush_ms, 0);
}
END_TEST

/* key of cfg formats as want. */
static void assert_formats(const struct config *cfg, enum config_key key,
			   const char *want)
{
	char buf[64];

	ck_assert_int_gt(config_format(cfg, key, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}

START_TEST(test_compression)
{
	struct config cfg;

	ck_assert_int_eq(parse_one(CONFIG_COMPRESSION, "lz4", &cfg), 0);
	ck_assert_int_eq(cfg.compression, COMPRESSION_LZ4);
	ck_assert_int_eq(parse_one(CONFIG_COMPRESSION, "gzip", &cfg), 0);
	ck_assert_int_eq(cfg.compression, COMPRESSION_GZIP);
	ck_assert_int_eq(parse_one(CONFIG_COMPRESSION, "zstd", &cfg), 0);
	ck_assert_int_eq(cfg.compression, COMPRESSION_ZSTD);
	ck_assert_int_eq(set_str(&cfg, CONFIG_COMPRESSION, "none"), 0);
	ck_assert_int_eq(cfg.compression, COMPRESSION_NONE);
	ck_assert_uint_eq(cfg.set, 1u << CONFIG_COMPRESSION);
	assert_rejected(CONFIG_COMPRESSION, "LZ4");
	assert_rejected(CONFIG_COMPRESSION, "ZSTD");
	/* zstd takes a level, 1..19, written plainly; the others none. */
	ck_assert_int_eq(set_str(&cfg, CONFIG_COMPRESSION, "zstd:3"), 0);
	ck_assert_int_eq(cfg.compression, COMPRESSION_ZSTD);
	ck_assert_int_eq(cfg.compression_level, 3);
	ck_assert_int_eq(set_str(&cfg, CONFIG_COMPRESSION, "zstd:19"), 0);
	ck_assert_int_eq(cfg.compression_level, 19);
	assert_formats(&cfg, CONFIG_COMPRESSION, "zstd:19");
	ck_assert_int_eq(set_str(&cfg, CONFIG_COMPRESSION, "zstd:1"), 0);
	ck_assert_int_eq(cfg.compression_level, 1);
	/* Plain "zstd" goes back to the default level, and so does the
	 * text that formats from it. */
	ck_assert_int_eq(set_str(&cfg, CONFIG_COMPRESSION, "zstd"), 0);
	ck_assert_int_eq(cfg.compression_level, 0);
	assert_formats(&cfg, CONFIG_COMPRESSION, "zstd");
	assert_rejected(CONFIG_COMPRESSION, "zstd:0");
	assert_rejected(CONFIG_COMPRESSION, "zstd:20");
	assert_rejected(CONFIG_COMPRESSION, "zstd:03");
	assert_rejected(CONFIG_COMPRESSION, "zstd:");
	assert_rejected(CONFIG_COMPRESSION, "zstd:-1");
	assert_rejected(CONFIG_COMPRESSION, "zstd:3k");
	assert_rejected(CONFIG_COMPRESSION, "zstd: 3");
	assert_rejected(CONFIG_COMPRESSION, "gzip:6");
	assert_rejected(CONFIG_COMPRESSION, "lz4:1");
	assert_rejected(CONFIG_COMPRESSION, "none:1");
	assert_rejected(CONFIG_COMPRESSION, "gz");
	assert_rejected(CONFIG_COMPRESSION, "lz4 ");
	assert_rejected(CONFIG_COMPRESSION, " lz4");
	assert_rejected(CONFIG_COMPRESSION, "");
	assert_rejected(CONFIG_COMPRESSION, "0");
}
END_TEST

START_TEST(test_rejections)
{
	/* Junk, blanks, signs and bad suffixes, for every numeric key. */
	static const char *const junk[] = {
		"",	" ",   "1 ",  " 1",  "1\t",   "+1",    "1x",
		"0x10", "1.5", "1e3", "k",   "1kk",   "1kb",   "1KiB",
		"--1",	"-2",  "-0",  "-1 ", "1,000", "1_000", "abc",
		"12a3", "1\n", "-",   "-1k",
	};
	static const char *const bytes_junk[] = {"1s", "1ms", "1d",
						 "1h", "1P",  "1E"};
	static const char *const ms_junk[] = {"1k", "1M",  "1G",   "1S", "1D",
					      "1H", "1Ms", "1sec", "1w"};
	size_t i;
	int k;

	for (k = 0; k < CONFIG_NKEYS; k++) {
		if (k == CONFIG_COMPRESSION)
			continue;
		for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
			assert_rejected((enum config_key)k, junk[i]);
	}
	for (i = 0; i < sizeof(bytes_junk) / sizeof(bytes_junk[0]); i++) {
		assert_rejected(CONFIG_SEGMENT_BYTES, bytes_junk[i]);
		assert_rejected(CONFIG_RETENTION_BYTES, bytes_junk[i]);
		assert_rejected(CONFIG_MAX_MESSAGE_BYTES, bytes_junk[i]);
	}
	for (i = 0; i < sizeof(ms_junk) / sizeof(ms_junk[0]); i++) {
		assert_rejected(CONFIG_SEGMENT_MS, ms_junk[i]);
		assert_rejected(CONFIG_RETENTION_MS, ms_junk[i]);
		assert_rejected(CONFIG_FLUSH_MS, ms_junk[i]);
	}
	/* An embedded NUL is junk, not an end of string. */
	{
		struct config cfg;

		config_defaults(&cfg);
		ck_assert_int_eq(
			config_set(&cfg, CONFIG_SEGMENT_BYTES, "8192\0x", 6),
			-EINVAL);
		ck_assert_int_eq(
			config_set(&cfg, CONFIG_SEGMENT_BYTES, "8192\0x", 4),
			0);
		ck_assert_uint_eq(cfg.segment_bytes, 8192);
	}
}
END_TEST

START_TEST(test_ranges_and_overflow)
{
	struct config cfg;

	/* segment_bytes: 4 KiB .. 1 TiB. */
	assert_rejected(CONFIG_SEGMENT_BYTES, "4095");
	assert_rejected(CONFIG_SEGMENT_BYTES, "0");
	ck_assert_int_eq(parse_one(CONFIG_SEGMENT_BYTES, "4096", &cfg), 0);
	ck_assert_int_eq(parse_one(CONFIG_SEGMENT_BYTES, "1099511627776", &cfg),
			 0);
	assert_rejected(CONFIG_SEGMENT_BYTES, "1099511627777");
	assert_rejected(CONFIG_SEGMENT_BYTES, "1025G");
	/* max_message_bytes: 1 .. 64 MiB. */
	assert_rejected(CONFIG_MAX_MESSAGE_BYTES, "0");
	assert_rejected(CONFIG_MAX_MESSAGE_BYTES, "67108865");
	assert_rejected(CONFIG_MAX_MESSAGE_BYTES, "65M");
	ck_assert_int_eq(parse_one(CONFIG_MAX_MESSAGE_BYTES, "67108864", &cfg),
			 0);
	/* segment_ms has a floor of 1 s. */
	assert_rejected(CONFIG_SEGMENT_MS, "0");
	assert_rejected(CONFIG_SEGMENT_MS, "0d");
	assert_rejected(CONFIG_SEGMENT_MS, "1");
	assert_rejected(CONFIG_SEGMENT_MS, "999ms");
	ck_assert_int_eq(parse_one(CONFIG_SEGMENT_MS, "1000ms", &cfg), 0);
	ck_assert_int_eq(parse_one(CONFIG_SEGMENT_MS, "1s", &cfg), 0);
	ck_assert_int_eq(cfg.segment_ms, 1000);
	/* Overflow of the digits, and of digits times unit. */
	assert_rejected(CONFIG_RETENTION_BYTES, "18446744073709551616");
	assert_rejected(CONFIG_RETENTION_BYTES, "99999999999999999999999");
	assert_rejected(CONFIG_RETENTION_BYTES, "18446744073709551615");
	assert_rejected(CONFIG_RETENTION_BYTES, "9223372036854775808");
	ck_assert_int_eq(
		parse_one(CONFIG_RETENTION_BYTES, "9223372036854775807", &cfg),
		0);
	ck_assert_int_eq(cfg.retention_bytes, INT64_MAX);
	assert_rejected(CONFIG_RETENTION_BYTES, "8388608T");
	ck_assert_int_eq(parse_one(CONFIG_RETENTION_BYTES, "8388607T", &cfg),
			 0);
	ck_assert_int_eq(cfg.retention_bytes, (int64_t)(8388607 * TiB));
	assert_rejected(CONFIG_RETENTION_BYTES, "17179869184G");
	assert_rejected(CONFIG_RETENTION_MS, "106751991167301d");
	assert_rejected(CONFIG_RETENTION_MS, "213503982334602d");
	ck_assert_int_eq(parse_one(CONFIG_RETENTION_MS, "106751991167d", &cfg),
			 0);
	assert_rejected(CONFIG_FLUSH_MS, "9223372036854775808");
	assert_rejected(CONFIG_FLUSH_MS, "9223372036854776s");
}
END_TEST

/* format(parse(x)) parses back to the same value, and the canonical text
 * is what we expect. */
START_TEST(test_format_round_trip)
{
	static const struct {
		enum config_key key;
		const char *in;
		const char *canon;
	} cases[] = {
		{CONFIG_SEGMENT_BYTES, "268435456", "256M"},
		{CONFIG_SEGMENT_BYTES, "4096", "4k"},
		{CONFIG_SEGMENT_BYTES, "4097", "4097"},
		{CONFIG_SEGMENT_BYTES, "1024k", "1M"},
		{CONFIG_SEGMENT_BYTES, "1T", "1T"},
		{CONFIG_SEGMENT_BYTES, "1536M", "1536M"},
		{CONFIG_RETENTION_BYTES, "0", "0"},
		{CONFIG_RETENTION_BYTES, "unlimited", "-1"},
		{CONFIG_RETENTION_BYTES, "2048G", "2T"},
		{CONFIG_RETENTION_BYTES, "9223372036854775807",
		 "9223372036854775807"},
		{CONFIG_MAX_MESSAGE_BYTES, "1", "1"},
		{CONFIG_MAX_MESSAGE_BYTES, "65536", "64k"},
		{CONFIG_SEGMENT_MS, "604800000", "7d"},
		{CONFIG_SEGMENT_MS, "never", "-1"},
		{CONFIG_SEGMENT_MS, "1000", "1s"},
		{CONFIG_SEGMENT_MS, "1001", "1001"},
		{CONFIG_SEGMENT_MS, "90s", "90s"},
		{CONFIG_SEGMENT_MS, "120s", "2m"},
		{CONFIG_RETENTION_MS, "0", "0"},
		{CONFIG_RETENTION_MS, "48h", "2d"},
		{CONFIG_RETENTION_MS, "1500ms", "1500"},
		{CONFIG_FLUSH_MS, "1000", "1s"},
		{CONFIG_FLUSH_MS, "0", "0"},
		{CONFIG_FLUSH_MS, "-1", "-1"},
		{CONFIG_COMPRESSION, "gzip", "gzip"},
		{CONFIG_COMPRESSION, "zstd", "zstd"},
		{CONFIG_COMPRESSION, "zstd:7", "zstd:7"},
		{CONFIG_COMPRESSION, "none", "none"},
	};
	struct config a, b;
	char buf[64];
	size_t i;
	int n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse_one(cases[i].key, cases[i].in, &a), 0);
		n = config_format(&a, cases[i].key, buf, sizeof(buf));
		ck_assert_int_eq(n, (int)strlen(cases[i].canon));
		ck_assert_str_eq(buf, cases[i].canon);
		ck_assert_int_eq(parse_one(cases[i].key, buf, &b), 0);
		ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0,
			      "'%s' -> '%s' did not round-trip", cases[i].in,
			      buf);
	}
	/* Too small a buffer: -ERANGE, never a truncated value. */
	ck_assert_int_eq(parse_one(CONFIG_SEGMENT_BYTES, "256M", &a), 0);
	ck_assert_int_eq(config_format(&a, CONFIG_SEGMENT_BYTES, buf, 4),
			 -ERANGE);
	ck_assert_int_eq(config_format(&a, CONFIG_SEGMENT_BYTES, buf, 5), 4);
}
END_TEST

/* A numeric key's value as a signed number (unsigned ones fit). */
static int64_t field(const struct config *cfg, enum config_key k)
{
	switch (k) {
	case CONFIG_SEGMENT_BYTES:
		return (int64_t)cfg->segment_bytes;
	case CONFIG_SEGMENT_MS:
		return cfg->segment_ms;
	case CONFIG_RETENTION_BYTES:
		return cfg->retention_bytes;
	case CONFIG_RETENTION_MS:
		return cfg->retention_ms;
	case CONFIG_FLUSH_MS:
		return cfg->flush_ms;
	case CONFIG_MAX_MESSAGE_BYTES:
		return (int64_t)cfg->max_message_bytes;
	default:
		return cfg->compression;
	}
}

/* Random in-range values of every numeric key survive format -> parse. */
START_TEST(test_format_round_trip_random)
{
	uint64_t s = 12345, v;
	struct config a, b;
	char buf[64];
	int i, k;

	for (i = 0; i < 20000; i++) {
		/* Shifts make many values multiples of k/M/G/T, s/m/h/d. */
		v = test_rand(&s) >> (test_rand(&s) % 64);
		v <<= test_rand(&s) % 32;
		config_defaults(&a);
		a.segment_bytes = 4096 + v % (TiB - 4096 + 1);
		a.segment_ms = 1000 + (int64_t)(v % (INT64_MAX - 999));
		a.retention_bytes = (int64_t)(v >> 1);
		a.retention_ms = (int64_t)(v >> 2);
		a.flush_ms = (int64_t)(v % 100000) - 1;
		a.max_message_bytes = 1 + v % (64 * MiB);
		for (k = 0; k < CONFIG_COMPRESSION; k++) {
			ck_assert_int_gt(config_format(&a, (enum config_key)k,
						       buf, sizeof(buf)),
					 0);
			config_defaults(&b);
			ck_assert_msg(set_str(&b, (enum config_key)k, buf) == 0,
				      "key %d: '%s' does not parse", k, buf);
			ck_assert_msg(field(&b, (enum config_key)k) ==
					      field(&a, (enum config_key)k),
				      "key %d: '%s' changed the value", k, buf);
		}
	}
}
END_TEST

/* Every string of bad is refused with -EINVAL by parse, which leaves its
 * output alone. */
static void refuse_all(int (*parse)(const char *, uint64_t *),
		       const char *const *bad, size_t n)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < n; i++) {
		v = 42;
		ck_assert_msg(parse(bad[i], &v) == -EINVAL, "'%s' accepted",
			      bad[i]);
		ck_assert_uint_eq(v, 42);
	}
	ck_assert_int_eq(parse(NULL, &v), -EINVAL);
}

/* The plain-number parser every other module uses: the whole string,
 * digits only, no overflow; *out untouched on a refusal. */
START_TEST(test_parse_u64)
{
	static const char *const bad[] = {
		"",
		"-1",
		"+1",
		" 1",
		"1 ",
		"1\n",
		"0x10",
		"1k",
		"1.0",
		"18446744073709551616",
		"99999999999999999999",
		"1e3",
	};
	uint64_t v;

	ck_assert_int_eq(config_parse_u64("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(config_parse_u64("007", &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(config_parse_u64("18446744073709551615", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	refuse_all(config_parse_u64, bad, sizeof(bad) / sizeof(bad[0]));
}
END_TEST

/* config_parse_bytes: the *_bytes keys' size letters, nothing else. */
START_TEST(test_parse_bytes)
{
	static const char *const bad[] = {
		"", "k", "-1", "1 k", "1kb", "1K ", "1x", "1.5M", "0x10",
		"16777216T", "18446744073709551616",
	};
	uint64_t v;

	ck_assert_int_eq(config_parse_bytes("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(config_parse_bytes("64k", &v), 0);
	ck_assert_uint_eq(v, 65536);
	ck_assert_int_eq(config_parse_bytes("64K", &v), 0);
	ck_assert_uint_eq(v, 65536);
	ck_assert_int_eq(config_parse_bytes("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(config_parse_bytes("2g", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(config_parse_bytes("1T", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 40);
	refuse_all(config_parse_bytes, bad, sizeof(bad) / sizeof(bad[0]));
}
END_TEST

START_TEST(test_set_pair)
{
	struct config cfg;

	config_defaults(&cfg);
	ck_assert_int_eq(config_set_pair(&cfg, "retention_ms=3d", 15), 0);
	ck_assert_int_eq(cfg.retention_ms, 3 * 86400000LL);
	ck_assert_uint_eq(cfg.set, 1u << CONFIG_RETENTION_MS);
	ck_assert_int_eq(config_set_pair(&cfg, "compression=lz4", 15), 0);
	ck_assert_int_eq(cfg.compression, COMPRESSION_LZ4);
	/* Counted length: the tail after len is not part of the pair. */
	ck_assert_int_eq(config_set_pair(&cfg, "flush_ms=5junk", 10), 0);
	ck_assert_int_eq(cfg.flush_ms, 5);
	ck_assert_int_eq(config_set_pair(&cfg, "flush_ms", 8), -EINVAL);
	ck_assert_int_eq(config_set_pair(&cfg, "flush_ms=", 9), -EINVAL);
	ck_assert_int_eq(config_set_pair(&cfg, "flush_ms =5", 11), -EINVAL);
	ck_assert_int_eq(config_set_pair(&cfg, "flush_ms= 5", 11), -EINVAL);
	ck_assert_int_eq(config_set_pair(&cfg, "bogus=5", 7), -EINVAL);
	ck_assert_int_eq(config_set_pair(&cfg, "=5", 2), -EINVAL);
	ck_assert_int_eq(config_set_pair(&cfg, "flush_ms=5=6", 12), -EINVAL);
	ck_assert_int_eq(cfg.flush_ms, 5);
}
END_TEST

START_TEST(test_text_parse_render)
{
	static const char text[] = "# topic orders\n"
				   "\n"
				   "segment_bytes=64M\n"
				   "   # indented comment\n"
				   "retention_ms=7d\n"
				   " \t\n"
				   "compression=gzip\n"
				   "flush_ms=never"; /* no final newline */
	struct config cfg, again;
	char buf[512];
	int bad = -1, n;

	config_defaults(&cfg);
	ck_assert_int_eq(config_parse_text(&cfg, text, strlen(text), &bad), 0);
	ck_assert_uint_eq(cfg.segment_bytes, 64 * MiB);
	ck_assert_int_eq(cfg.retention_ms, 7 * 86400000LL);
	ck_assert_int_eq(cfg.compression, COMPRESSION_GZIP);
	ck_assert_int_eq(cfg.flush_ms, -1);
	ck_assert_uint_eq(cfg.set, (1u << CONFIG_SEGMENT_BYTES) |
					   (1u << CONFIG_RETENTION_MS) |
					   (1u << CONFIG_COMPRESSION) |
					   (1u << CONFIG_FLUSH_MS));
	/* Unset keys keep their defaults. */
	ck_assert_uint_eq(cfg.max_message_bytes, MiB);

	n = config_render_text(&cfg, buf, sizeof(buf));
	ck_assert_str_eq(buf, "segment_bytes=64M\n"
			      "retention_ms=7d\n"
			      "flush_ms=-1\n"
			      "compression=gzip\n");
	ck_assert_int_eq(n, (int)strlen(buf));
	config_defaults(&again);
	ck_assert_int_eq(config_parse_text(&again, buf, n, &bad), 0);
	ck_assert_mem_eq(&again, &cfg, sizeof(cfg));

	/* Exactly enough room (with the NUL), one byte less: -ERANGE. */
	ck_assert_int_eq(config_render_text(&cfg, buf, n + 1), n);
	ck_assert_int_eq(config_render_text(&cfg, buf, n), -ERANGE);
	config_defaults(&again);
	ck_assert_int_eq(config_render_text(&again, buf, 1), 0);
	ck_assert_str_eq(buf, "");

	/* The last one of a repeated key wins. */
	config_defaults(&again);
	ck_assert_int_eq(
		config_parse_text(&again, "flush_ms=1\nflush_ms=2\n", 22, &bad),
		0);
	ck_assert_int_eq(again.flush_ms, 2);
}
END_TEST

START_TEST(test_text_bad_line)
{
	static const char *const texts[] = {
		"segment_bytes=64M\nretention_ms=7x\n",
		"segment_bytes=64M\n\n# c\nbogus=1\n",
		"segment_bytes=64M\r\n",
		"segment_bytes=64M \n",
		"\n\n\nflush_ms\n",
	};
	static const int lines[] = {2, 4, 1, 1, 4};
	struct config cfg, before;
	size_t i;
	int bad;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		config_defaults(&cfg);
		before = cfg;
		bad = 0;
		ck_assert_int_eq(config_parse_text(&cfg, texts[i],
						   strlen(texts[i]), &bad),
				 -EINVAL);
		ck_assert_int_eq(bad, lines[i]);
		/* All or nothing: the good first line was not applied. */
		ck_assert_mem_eq(&cfg, &before, sizeof(cfg));
	}
	config_defaults(&cfg);
	ck_assert_int_eq(config_parse_text(&cfg, "", 0, &bad), 0);
	ck_assert_uint_eq(cfg.set, 0);
}
END_TEST

START_TEST(test_overlay)
{
	struct config mount, topic, part, eff;

	config_defaults(&mount);
	ck_assert_int_eq(set_str(&mount, CONFIG_SEGMENT_BYTES, "1M"), 0);
	ck_assert_int_eq(set_str(&mount, CONFIG_FLUSH_MS, "0"), 0);
	config_defaults(&topic);
	topic.set = 0;
	ck_assert_int_eq(set_str(&topic, CONFIG_SEGMENT_BYTES, "8M"), 0);
	ck_assert_int_eq(set_str(&topic, CONFIG_COMPRESSION, "lz4"), 0);
	config_defaults(&part);
	ck_assert_int_eq(set_str(&part, CONFIG_RETENTION_BYTES, "1G"), 0);

	config_overlay(&eff, &mount, &topic);
	ck_assert_uint_eq(eff.segment_bytes, 8 * MiB); /* topic wins */
	ck_assert_int_eq(eff.flush_ms, 0);	       /* from mount */
	ck_assert_int_eq(eff.compression, COMPRESSION_LZ4);
	ck_assert_int_eq(eff.retention_bytes, -1); /* default */
	ck_assert_uint_eq(eff.set, (1u << CONFIG_SEGMENT_BYTES) |
					   (1u << CONFIG_FLUSH_MS) |
					   (1u << CONFIG_COMPRESSION));
	/* out aliasing base. */
	config_overlay(&eff, &eff, &part);
	ck_assert_int_eq(eff.retention_bytes, (int64_t)GiB);
	ck_assert_uint_eq(eff.segment_bytes, 8 * MiB);
	ck_assert(eff.set & (1u << CONFIG_RETENTION_BYTES));
	/* A layer that sets nothing changes nothing (its values are
	 * ignored even though they differ). */
	config_defaults(&part);
	part.segment_bytes = 4096;
	config_overlay(&eff, &eff, &part);
	ck_assert_uint_eq(eff.segment_bytes, 8 * MiB);
	/* out aliasing over. */
	config_overlay(&topic, &mount, &topic);
	ck_assert_uint_eq(topic.segment_bytes, 8 * MiB);
	ck_assert_int_eq(topic.flush_ms, 0);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_key_names);
	tcase_add_test(tc, test_byte_suffixes);
	tcase_add_test(tc, test_time_suffixes);
	tcase_add_test(tc, test_unlimited_words);
	tcase_add_test(tc, test_compression);
	tcase_add_test(tc, test_rejections);
	tcase_add_test(tc, test_ranges_and_overflow);
	tcase_add_test(tc, test_format_round_trip);
	tcase_add_test(tc, test_format_round_trip_random);
	tcase_add_test(tc, test_parse_u64);
	tcase_add_test(tc, test_parse_bytes);
	tcase_add_test(tc, test_set_pair);
	tcase_add_test(tc, test_text_parse_render);
	tcase_add_test(tc, test_text_bad_line);
	tcase_add_test(tc, test_overlay);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
