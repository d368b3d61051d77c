/*
 * check_codec.c - lz4, gzip and zstd block codecs: round trips at every
 * size boundary, the block table's invariants, random block reads, the
 * standard tools (lz4cat, zcat, zstdcat) and zstd's own streaming decoder
 * restoring the exact bytes, ranges read
 * through the block cache, and damaged input failing with -EIO rather
 * than crashing or returning wrong data.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zstd.h>

#include "testutil.h"
#include "codec.h"

#define BLK CODEC_BLOCK_BYTES

static char dir[4096];
static int dfd = -1;

static void setup(void)
{
	dfd = test_tmpdir(dir);
}

static void teardown(void)
{
	test_rmtree(dfd, dir);
}

/* Log-like data: runs of text lines, random bytes and zeros. */
static unsigned char *make_data(size_t len, uint64_t seed)
{
	unsigned char *p = malloc(len ? len : 1);
	uint64_t s = seed, r;
	size_t i = 0, run, j;

	ck_assert_ptr_nonnull(p);
	while (i < len) {
		r = test_rand(&s);
		run = 1 + (size_t)(r >> 8) % 20000;
		if (run > len - i)
			run = len - i;
		switch (r % 3) {
		case 0:
			for (j = 0; j < run; j++)
				p[i + j] =
					j % 61 == 60
						? '\n'
						: "order paid shipped "[j % 19];
			break;
		case 1:
			test_fill_random(p + i, run, r | 1);
			break;
		default:
			memset(p + i, 0, run);
			break;
		}
		i += run;
	}
	return p;
}

static int write_file(const char *name, const void *data, size_t len)
{
	int fd =
		openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(io_pwrite_full(fd, data, len, 0), 0);
	return fd;
}

static uint64_t file_size(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

/* The table covers raw[0..len) in order with full blocks but the last,
 * and the encodings sit back to back in the file. */
static void check_table(enum compression c, const struct codec_block *b,
			uint32_t n, uint64_t len, uint64_t fsize)
{
	uint64_t raw = 0, fpos;
	uint32_t i;

	ck_assert_uint_eq(n, (len + BLK - 1) / BLK);
	fpos = n ? b[0].file_pos : 0;
	if ((c == COMPRESSION_GZIP || c == COMPRESSION_ZSTD) && n)
		ck_assert_uint_eq(b[0].file_pos, 0);
	if (c == COMPRESSION_LZ4 && n)
		ck_assert_uint_eq(b[0].file_pos, 7); /* frame header */
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(b[i].raw_pos, raw);
		ck_assert_uint_eq(b[i].raw_len,
				  i + 1 < n ? BLK : len - (uint64_t)i * BLK);
		ck_assert_uint_eq(b[i].file_pos, fpos);
		ck_assert_uint_gt(b[i].file_len, 0);
		ck_assert_uint_le(b[i].file_len,
				  codec_block_bound(c, b[i].raw_len));
		raw += b[i].raw_len;
		fpos += b[i].file_len;
	}
	ck_assert_uint_eq(raw, len);
	/* Only the lz4 end mark (4 bytes) follows the last block. */
	if (n)
		ck_assert_uint_eq(fsize, fpos + (c == COMPRESSION_LZ4 ? 4 : 0));
}

/* Pipe the compressed file through the standard tool; its output must be
 * exactly raw.  Skipped when the tool is not installed. */
static void check_tool(enum compression c, const char *name,
		       const unsigned char *raw, size_t len)
{
	const char *tool = c == COMPRESSION_LZ4	   ? "lz4cat"
			   : c == COMPRESSION_ZSTD ? "zstdcat"
						   : "zcat";
	char cmd[8400], out[4200];
	unsigned char *got;
	int fd;

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) != 0) {
		fprintf(stderr, "check_codec: %s missing, skipping\n", tool);
		return;
	}
	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	snprintf(cmd, sizeof(cmd), "%s < '%s/%s' > '%s'", tool, dir, name, out);
	ck_assert_msg(system(cmd) == 0, "%s failed on %s", tool, name);
	fd = open(out, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(file_size(fd), len);
	got = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(io_pread_full(fd, got, len, 0), (ssize_t)len);
	ck_assert_msg(memcmp(got, raw, len) == 0, "%s output differs", tool);
	free(got);
	close(fd);
	unlink(out);
}

/* zstd's streaming decoder, given the whole file as one stream, must
 * return exactly raw: the frames concatenate into a standard stream. */
static void check_zstd_stream(int fd, const unsigned char *raw, size_t len)
{
	size_t size = (size_t)file_size(fd), r = 1;
	unsigned char *enc = malloc(size ? size : 1), *got = malloc(len + 1);
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer zin;
	ZSTD_outBuffer zout;

	ck_assert_ptr_nonnull(enc);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(ds);
	ck_assert_int_eq(io_pread_full(fd, enc, size, 0), (ssize_t)size);
	ZSTD_initDStream(ds);
	zin.src = enc;
	zin.size = size;
	zin.pos = 0;
	zout.dst = got;
	zout.size = len + 1; /* room for one byte too many */
	zout.pos = 0;
	while (zin.pos < zin.size) {
		r = ZSTD_decompressStream(ds, &zout, &zin);
		ck_assert_msg(!ZSTD_isError(r), "zstd stream: %s",
			      ZSTD_getErrorName(r));
	}
	ck_assert_uint_eq(r, 0); /* the last frame ended */
	ck_assert_uint_eq(zout.pos, len);
	ck_assert(memcmp(got, raw, len) == 0);
	ZSTD_freeDStream(ds);
	free(got);
	free(enc);
}

/* Walking the stream rebuilds exactly the table the compressor made, and
 * a stream cut short is refused. */
static void scan_same(enum compression c, int fd, const struct codec_block *b,
		      uint32_t n, uint64_t len)
{
	struct codec_block *t = NULL;
	uint64_t size = file_size(fd), total = 0;
	uint32_t m = 99, i;

	ck_assert_int_eq(codec_scan_blocks(c, fd, size, &t, &m, &total), 0);
	ck_assert_uint_eq(m, n);
	ck_assert_uint_eq(total, len);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(t[i].raw_pos, b[i].raw_pos);
		ck_assert_uint_eq(t[i].raw_len, b[i].raw_len);
		ck_assert_uint_eq(t[i].file_pos, b[i].file_pos);
		ck_assert_uint_eq(t[i].file_len, b[i].file_len);
	}
	free(t);
	t = NULL;
	ck_assert_int_eq(codec_scan_blocks(c, fd, size - 1, &t, &m, &total),
			 -EIO);
	ck_assert_ptr_null(t);
}

static void round_trip(enum compression c, size_t len, uint64_t seed)
{
	struct codec_block *b = NULL;
	unsigned char *raw = make_data(len, seed), *got;
	uint32_t n = 99, i, k;
	uint64_t s = seed;
	int in, out;

	in = write_file("raw", raw, len);
	out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(out, 0);
	ck_assert_int_eq(codec_compress(c, in, len, out, &b, &n), 0);
	ck_assert_ptr_nonnull(b);
	check_table(c, b, n, len, file_size(out));
	scan_same(c, out, b, n, len);
	got = malloc(BLK);
	ck_assert_ptr_nonnull(got);
	for (i = 0; i < n; i++) {
		memset(got, 0xee, BLK);
		ck_assert_int_eq(codec_read_block(c, out, &b[i], got), 0);
		ck_assert_msg(memcmp(got, raw + b[i].raw_pos, b[i].raw_len) ==
				      0,
			      "%s block %u of %zu bytes differs", codec_name(c),
			      i, len);
	}
	/* Random access in any order. */
	for (i = 0; n && i < 2 * n; i++) {
		k = (uint32_t)(test_rand(&s) % n);
		ck_assert_int_eq(codec_read_block(c, out, &b[k], got), 0);
		ck_assert(memcmp(got, raw + b[k].raw_pos, b[k].raw_len) == 0);
	}
	check_tool(c, "enc", raw, len);
	if (c == COMPRESSION_ZSTD)
		check_zstd_stream(out, raw, len);
	free(got);
	free(b);
	free(raw);
	close(in);
	close(out);
}

static const size_t sizes[] = {
	0,	 1,	  100,	       BLK - 1, BLK,
	BLK + 1, 3 * BLK, 4 * BLK - 7, 5 << 20, (5 << 20) + 12345};

START_TEST(test_lz4_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(COMPRESSION_LZ4, sizes[i], 100 + i);
}
END_TEST

START_TEST(test_gzip_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(COMPRESSION_GZIP, sizes[i], 200 + i);
}
END_TEST

START_TEST(test_zstd_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(COMPRESSION_ZSTD, sizes[i], 300 + i);
}
END_TEST

/* Log-like text: words and numbers, compressible but not trivially. */
static unsigned char *make_log_text(size_t len, uint64_t seed)
{
	static const char *const words[] = {"GET", "POST", "/api/v1/items",
					    "/login", "200", "404", "user=",
					    "latency_ms=", "host=web", " "};
	unsigned char *raw = malloc(len);
	size_t i = 0;
	int n;

	ck_assert_ptr_nonnull(raw);
	while (i < len) {
		const char *w = words[test_rand(&seed) % 10];
		char num[24];

		n = snprintf(num, sizeof(num), "%s%llu%c", w,
			     (unsigned long long)(test_rand(&seed) % 100000),
			     test_rand(&seed) % 8 ? ' ' : '\n');
		if ((size_t)n > len - i)
			n = (int)(len - i);
		memcpy(raw + i, num, (size_t)n);
		i += (size_t)n;
	}
	return raw;
}

/* zstd at a chosen level: a higher level writes fewer bytes of the same
 * input, both decode to it, and a level zstd lacks (or a level for
 * another codec) is refused. */
START_TEST(test_zstd_level)
{
	size_t len = 3 * BLK + 1000, sizes_at[2];
	static const int levels[2] = {1, 19};
	unsigned char *raw = make_log_text(len, 77), *got;
	struct codec_block *b = NULL;
	uint32_t n, i, k;
	int in, out;

	in = write_file("raw", raw, len);
	got = malloc(BLK);
	ck_assert_ptr_nonnull(got);
	for (k = 0; k < 2; k++) {
		out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0644);
		ck_assert_int_ge(out, 0);
		ck_assert_int_eq(codec_compress_level(COMPRESSION_ZSTD,
						      levels[k], in, len, out,
						      &b, &n),
				 0);
		sizes_at[k] = (size_t)file_size(out);
		for (i = 0; i < n; i++) {
			ck_assert_int_eq(
				codec_read_block(COMPRESSION_ZSTD, out, &b[i],
						 got),
				0);
			ck_assert(memcmp(got, raw + b[i].raw_pos,
					 b[i].raw_len) == 0);
		}
		check_zstd_stream(out, raw, len);
		free(b);
		b = NULL;
		close(out);
	}
	ck_assert_msg(sizes_at[1] < sizes_at[0],
		      "zstd level 19 wrote %zu bytes, level 1 %zu",
		      sizes_at[1], sizes_at[0]);
	out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(out, 0);
	ck_assert_int_eq(codec_compress_level(COMPRESSION_ZSTD, 20, in, len,
					      out, &b, &n),
			 -EINVAL);
	ck_assert_int_eq(codec_compress_level(COMPRESSION_GZIP, 6, in, len,
					      out, &b, &n),
			 -EINVAL);
	ck_assert_ptr_null(b);
	close(out);
	close(in);
	free(got);
	free(raw);
}
END_TEST

/* Compressible data must actually shrink, incompressible must not blow
 * up beyond the bound. */
START_TEST(test_ratio)
{
	static const enum compression cs[] = {COMPRESSION_LZ4, COMPRESSION_GZIP,
					      COMPRESSION_ZSTD};
	struct codec_block *b;
	unsigned char *raw;
	size_t len = 1 << 20, i, j;
	uint32_t n;
	int in, out;

	raw = malloc(len);
	ck_assert_ptr_nonnull(raw);
	for (j = 0; j < 2; j++) {
		for (i = 0; i < len; i++)
			raw[i] = j ? 0 : "hello world\n"[i % 12];
		if (j)
			test_fill_random(raw, len, 5);
		in = write_file("raw", raw, len);
		for (i = 0; i < 3; i++) {
			out = openat(dfd, "enc",
				     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644);
			ck_assert_int_ge(out, 0);
			ck_assert_int_eq(
				codec_compress(cs[i], in, len, out, &b, &n), 0);
			if (j == 0)
				ck_assert_uint_lt(file_size(out), len / 20);
			else
				ck_assert_uint_le(file_size(out),
						  len + n * 64 + 64);
			free(b);
			close(out);
		}
		close(in);
	}
	free(raw);
}
END_TEST

/* A longer, older file at out_fd is replaced, not left as a tail. */
START_TEST(test_overwrites_stale_tail)
{
	unsigned char *raw = make_data(1000, 9), junk[4096];
	struct codec_block *b;
	uint32_t n;
	int in, out;

	memset(junk, 'x', sizeof(junk));
	in = write_file("raw", raw, 1000);
	out = write_file("enc", junk, sizeof(junk));
	ck_assert_int_eq(
		codec_compress(COMPRESSION_GZIP, in, 1000, out, &b, &n), 0);
	ck_assert_uint_eq(file_size(out), b[0].file_len);
	check_tool(COMPRESSION_GZIP, "enc", raw, 1000);
	free(b);
	close(in);
	close(out);
	free(raw);
}
END_TEST

/* Asking for more input than the file holds is an error, not garbage. */
START_TEST(test_short_input)
{
	unsigned char *raw = make_data(1000, 3);
	struct codec_block *b = (void *)1;
	uint32_t n = 7;
	int in, out;

	in = write_file("raw", raw, 1000);
	out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(codec_compress(COMPRESSION_LZ4, in, 5000, out, &b, &n),
			 -EIO);
	ck_assert_ptr_null(b);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(
		codec_compress(COMPRESSION_NONE, in, 1000, out, &b, &n),
		-EINVAL);
	close(in);
	close(out);
	free(raw);
}
END_TEST

/* Damaged bytes in a block: -EIO, never a crash or wrong data. */
static void corrupt(enum compression c)
{
	size_t len = 3 * BLK + 500;
	unsigned char *raw = make_data(len, 77), *got, orig, *enc;
	struct codec_block *b, bad;
	uint32_t n, i, k;
	uint64_t pos, s = 1;
	int in, out, ret, eio = 0, flips = 0;

	in = write_file("raw", raw, len);
	out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(codec_compress(c, in, len, out, &b, &n), 0);
	got = malloc(BLK);
	ck_assert_ptr_nonnull(got);
	for (i = 0; i < n; i++) {
		/* The block's first 16 and last 16 bytes (headers, sizes,
		 * checksums, trailers) and 100 random positions inside. */
		for (k = 0; k < 132; k++) {
			if (k < 16)
				pos = k;
			else if (k < 32)
				pos = b[i].file_len - 1 - (k - 16);
			else
				pos = test_rand(&s) % b[i].file_len;
			pos += b[i].file_pos;
			ck_assert_int_eq(pread(out, &orig, 1, (off_t)pos), 1);
			orig ^= (unsigned char)(1u << (k & 7));
			ck_assert_int_eq(pwrite(out, &orig, 1, (off_t)pos), 1);
			memset(got, 0xee, BLK);
			ret = codec_read_block(c, out, &b[i], got);
			/* A flip the format makes harmless (say, in the code
			 * length of a symbol deflate never uses) may decode,
			 * but only to the right bytes: the checksums say so. */
			ck_assert_msg(
				ret == -EIO || (ret == 0 &&
						memcmp(got, raw + b[i].raw_pos,
						       b[i].raw_len) == 0),
				"%s: flip at %llu of block %u: ret %d",
				codec_name(c), (unsigned long long)pos, i, ret);
			eio += ret == -EIO;
			flips++;
			orig ^= (unsigned char)(1u << (k & 7));
			ck_assert_int_eq(pwrite(out, &orig, 1, (off_t)pos), 1);
		}
		ck_assert_int_eq(codec_read_block(c, out, &b[i], got), 0);
		ck_assert(memcmp(got, raw + b[i].raw_pos, b[i].raw_len) == 0);
	}
	/* Nearly every flip must be caught. */
	ck_assert_msg(eio * 100 >= flips * 95, "%s: only %d of %d flips caught",
		      codec_name(c), eio, flips);

	/* A block table entry that lies: wrong raw length, a length past
	 * the block, a zero or absurd file length, a shifted position. */
	bad = b[1];
	bad.raw_len--;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad = b[n - 1];
	bad.raw_len++;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad = b[1];
	bad.raw_len = BLK + 1;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad = b[1];
	bad.file_len = 0;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad.file_len = UINT32_MAX;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad = b[1];
	bad.file_pos++;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad = b[1];
	bad.file_len--;
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);
	bad = b[1];
	bad.file_pos = 1ULL << 40; /* past the end of the file */
	ck_assert_int_eq(codec_read_block(c, out, &bad, got), -EIO);

	/* Truncation: the last block loses its tail, earlier ones still
	 * decode. */
	ck_assert_int_eq(ftruncate(out, (off_t)(b[n - 1].file_pos +
						b[n - 1].file_len / 2)),
			 0);
	ck_assert_int_eq(codec_read_block(c, out, &b[n - 1], got), -EIO);
	ck_assert_int_eq(codec_read_block(c, out, &b[0], got), 0);
	ck_assert(memcmp(got, raw, BLK) == 0);

	/* A whole block of garbage. */
	enc = malloc(b[1].file_len);
	ck_assert_ptr_nonnull(enc);
	test_fill_random(enc, b[1].file_len, 4242);
	ck_assert_int_eq(io_pwrite_full(out, enc, b[1].file_len, b[1].file_pos),
			 0);
	ck_assert_int_eq(codec_read_block(c, out, &b[1], got), -EIO);
	free(enc);
	free(got);
	free(b);
	free(raw);
	close(in);
	close(out);
}

START_TEST(test_lz4_corrupt)
{
	corrupt(COMPRESSION_LZ4);
}
END_TEST

START_TEST(test_gzip_corrupt)
{
	corrupt(COMPRESSION_GZIP);
}
END_TEST

START_TEST(test_zstd_corrupt)
{
	corrupt(COMPRESSION_ZSTD);
}
END_TEST

/* Ranges across block boundaries come back exact through the cache,
 * which then holds the last block the range touched; a range no block
 * holds and a block that does not decode fail with -EIO, only the
 * second naming the block. */
static void read_ranges(enum compression c)
{
	size_t len = 3 * BLK + 100, at, want;
	unsigned char *raw = make_data(len, 77), *got, *junk;
	const struct codec_block *bad;
	struct codec_cache cache;
	struct codec_block *b = NULL;
	uint64_t s = 5;
	uint32_t n = 0;
	int in, out, i;

	in = write_file("raw", raw, len);
	out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(out, 0);
	ck_assert_int_eq(codec_compress(c, in, len, out, &b, &n), 0);
	ck_assert_uint_eq(n, 4);
	got = malloc(len);
	ck_assert_ptr_nonnull(got);
	codec_cache_init(&cache);
	ck_assert_uint_eq(cache.key, 0);
	for (i = 0; i < 40; i++) {
		at = (size_t)(test_rand(&s) % len);
		want = (size_t)(test_rand(&s) % (len - at)) + 1;
		bad = NULL;
		ck_assert_int_eq(codec_read_range(c, out, b, n, &cache, 9, at,
						  got, want, &bad),
				 0);
		ck_assert_ptr_null(bad);
		ck_assert_mem_eq(got, raw + at, want);
		ck_assert_uint_eq(cache.key, 9);
		ck_assert_uint_eq(cache.blk, (uint32_t)codec_find_block(
						     b, n, at + want - 1));
	}
	/* the whole stream at once */
	ck_assert_int_eq(
		codec_read_range(c, out, b, n, &cache, 9, 0, got, len, NULL),
		0);
	ck_assert_mem_eq(got, raw, len);
	/* past the end: no block holds it */
	bad = NULL;
	ck_assert_int_eq(codec_read_range(c, out, b, n, &cache, 9, len - 1, got,
					  2, &bad),
			 -EIO);
	ck_assert_ptr_null(bad);
	/* block 1 turned to garbage: a range into it names it */
	junk = malloc(b[1].file_len);
	ck_assert_ptr_nonnull(junk);
	test_fill_random(junk, b[1].file_len, 31);
	ck_assert_int_eq(
		io_pwrite_full(out, junk, b[1].file_len, b[1].file_pos), 0);
	ck_assert_int_eq(codec_read_range(c, out, b, n, &cache, 10, BLK - 10,
					  got, 20, &bad),
			 -EIO);
	ck_assert_ptr_eq(bad, &b[1]);
	ck_assert_uint_eq(cache.key, 0); /* nothing half-decoded kept */
	/* the blocks around it still read */
	ck_assert_int_eq(
		codec_read_range(c, out, b, n, &cache, 10, 0, got, BLK, NULL),
		0);
	ck_assert_mem_eq(got, raw, BLK);
	ck_assert_int_eq(codec_read_range(c, out, b, n, &cache, 10, 2 * BLK,
					  got, BLK + 100, NULL),
			 0);
	ck_assert_mem_eq(got, raw + 2 * BLK, BLK + 100);
	codec_cache_release(&cache);
	free(junk);
	free(got);
	free(b);
	free(raw);
	close(in);
	close(out);
}

START_TEST(test_lz4_read_ranges)
{
	read_ranges(COMPRESSION_LZ4);
}
END_TEST

START_TEST(test_gzip_read_ranges)
{
	read_ranges(COMPRESSION_GZIP);
}
END_TEST

START_TEST(test_zstd_read_ranges)
{
	read_ranges(COMPRESSION_ZSTD);
}
END_TEST

/* A file read through a mapping of it, its descriptor closed: the same
 * bytes as through the descriptor; a mapping shorter than the file (a
 * truncated file) fails the last block with -EIO, naming it. */
static void mapped_ranges(enum compression c)
{
	size_t len = 3 * BLK + 100, at, want, map_len;
	unsigned char *raw = make_data(len, 78), *got;
	const struct codec_block *bad;
	struct codec_cache cache;
	struct codec_block *b = NULL;
	struct codec_file f = { .fd = -1 };
	uint64_t s = 6;
	uint32_t n = 0;
	void *map;
	int in, out, i;

	in = write_file("raw", raw, len);
	out = openat(dfd, "enc", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(out, 0);
	ck_assert_int_eq(codec_compress(c, in, len, out, &b, &n), 0);
	map_len = (size_t)(b[n - 1].file_pos + b[n - 1].file_len);
	map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, out, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	close(out); /* the mapping is all the reader has */
	f.map = map;
	f.map_len = map_len;
	got = malloc(len);
	ck_assert_ptr_nonnull(got);
	codec_cache_init(&cache);
	for (i = 0; i < 40; i++) {
		at = (size_t)(test_rand(&s) % len);
		want = (size_t)(test_rand(&s) % (len - at)) + 1;
		ck_assert_int_eq(codec_read_range_file(c, &f, b, n, &cache, 3,
						       at, got, want, NULL),
				 0);
		ck_assert_mem_eq(got, raw + at, want);
	}
	f.map_len = map_len - 1;
	bad = NULL;
	ck_assert_int_eq(codec_read_range_file(c, &f, b, n, &cache, 4, len - 1,
					       got, 1, &bad),
			 -EIO);
	ck_assert_ptr_eq(bad, &b[n - 1]);
	ck_assert_int_eq(codec_read_range_file(c, &f, b, n, &cache, 4, 0, got,
					       BLK, NULL),
			 0);
	ck_assert_mem_eq(got, raw, BLK);
	codec_cache_release(&cache);
	munmap(map, map_len);
	free(got);
	free(b);
	free(raw);
	close(in);
}

START_TEST(test_mapped_ranges)
{
	mapped_ranges(COMPRESSION_LZ4);
	mapped_ranges(COMPRESSION_GZIP);
	mapped_ranges(COMPRESSION_ZSTD);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(codec_name(COMPRESSION_LZ4), "lz4");
	ck_assert_str_eq(codec_name(COMPRESSION_GZIP), "gzip");
	ck_assert_str_eq(codec_name(COMPRESSION_ZSTD), "zstd");
	ck_assert_str_eq(codec_name(COMPRESSION_NONE), "none");
	ck_assert_uint_ge(codec_block_bound(COMPRESSION_LZ4, BLK), BLK);
	ck_assert_uint_ge(codec_block_bound(COMPRESSION_GZIP, BLK), BLK);
	ck_assert_uint_ge(codec_block_bound(COMPRESSION_ZSTD, BLK), BLK);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lz4_round_trip);
	tcase_add_test(tc, test_gzip_round_trip);
	tcase_add_test(tc, test_zstd_round_trip);
	tcase_add_test(tc, test_ratio);
	tcase_add_test(tc, test_zstd_level);
	tcase_add_test(tc, test_overwrites_stale_tail);
	tcase_add_test(tc, test_short_input);
	tcase_add_test(tc, test_lz4_corrupt);
	tcase_add_test(tc, test_gzip_corrupt);
	tcase_add_test(tc, test_zstd_corrupt);
	tcase_add_test(tc, test_lz4_read_ranges);
	tcase_add_test(tc, test_gzip_read_ranges);
	tcase_add_test(tc, test_zstd_read_ranges);
	tcase_add_test(tc, test_mapped_ranges);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
