/*
 * check_layout.c - the on-disk format module: byte order, known-answer
 * bytes of a format 1 index (as today's files hold them), encode/decode
 * round trips, rejection of a bad magic, version, size or checksum,
 * segment name parsing, the directory scan (and a listing that fails),
 * and fluxfs.meta and the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "crc32c.h"
#include "layout.h"

/* The first 112 bytes of tests/fixtures/format-v1/plain/0/
 * 00000000000000000100.idx, written by the format 1 daemon on x86-64:
 * the header and the first entry. */
static const unsigned char v1_idx[112] = {
	0x46, 0x4c, 0x55, 0x58, 0x49, 0x44, 0x58, 0x31, 0x01, 0x00, 0x00, 0x00,
	0x30, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xf5, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0x7e, 0x6b, 0xae, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xf5, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x19, 0x88, 0x5b, 0x4a,
	0xa2, 0x01, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0xe9, 0x03, 0x00, 0x00,
	0x00, 0x24, 0x22, 0x9c, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x17, 0x39, 0x6f, 0xfe,
};

/* Set the header's version field and checksum again. */
static void header_set_version(unsigned char *h, uint32_t v)
{
	le32_put(h + 8, v);
	le32_put(h + LAYOUT_IDX_HEADER_BYTES - 4,
		 crc32c(0, h, LAYOUT_IDX_HEADER_BYTES - 4));
}

static struct seg_entry sample_entry(void)
{
	struct seg_entry e = {
		.offset = 0x0102030405060708ull,
		.pos = 0x1112131415161718ull,
		.ts = -2,
		.count = 7,
		.len = 0x21222324,
		.crc = 0xdeadbeef,
		.flags = SEG_F_CONT | SEG_F_LAST,
	};

	layout_entry_seal(&e);
	return e;
}

START_TEST(test_byte_order)
{
	unsigned char b[8];

	le32_put(b, 0x01020304);
	ck_assert_mem_eq(b, "\x04\x03\x02\x01", 4);
	ck_assert_uint_eq(le32_get(b), 0x01020304);
	le64_put(b, 0x0102030405060708ull);
	ck_assert_mem_eq(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	ck_assert_uint_eq(le64_get(b), 0x0102030405060708ull);
	le64_put(b, UINT64_MAX);
	ck_assert_uint_eq(le64_get(b), UINT64_MAX);
}
END_TEST

/* Today's (format 1) bytes decode to what was written. */
START_TEST(test_v1_known_answer)
{
	struct layout_idx_header h;
	struct seg_entry e;

	ck_assert_int_eq(layout_idx_header_decode(v1_idx, &h), 0);
	ck_assert_uint_eq(h.version, 1);
	ck_assert_uint_eq(h.base_offset, 100);
	ck_assert_uint_eq(h.base_byte, 4085);
	ck_assert_uint_eq(h.lost_msgs, 0);
	ck_assert_uint_eq(h.lost_bytes, 0);
	layout_entry_decode(v1_idx + LAYOUT_IDX_HEADER_BYTES, &e);
	ck_assert(layout_entry_intact(&e));
	ck_assert_uint_eq(e.offset, 100);
	ck_assert_uint_eq(e.pos, 4085);
	ck_assert_int_eq(e.ts, 0x1a24a5b8819ll);
	ck_assert_uint_eq(e.count, 25);
	ck_assert_uint_eq(e.len, 1001);
	ck_assert_uint_eq(e.crc, 0x9c222400);
	ck_assert_uint_eq(e.flags, SEG_F_LAST);
	ck_assert_uint_eq(e.ecrc, 0xfe6f3917);
}
END_TEST

START_TEST(test_idx_header)
{
	unsigned char h[LAYOUT_IDX_HEADER_BYTES], bad[LAYOUT_IDX_HEADER_BYTES];
	struct layout_idx_header in = {
		.version = 99, /* ignored: encode writes the current one */
		.base_offset = 0x0a0b0c0d0e0f1011ull,
		.base_byte = 123456789,
		.lost_msgs = 3,
		.lost_bytes = 77,
	};
	struct layout_idx_header out;
	size_t i;

	layout_idx_header_encode(h, &in);
	ck_assert_mem_eq(h, LAYOUT_IDX_MAGIC, 8);
	ck_assert_uint_eq(le32_get(h + 8), LAYOUT_IDX_VERSION);
	ck_assert_uint_eq(le32_get(h + 12), LAYOUT_ENTRY_BYTES);
	ck_assert_mem_eq(h + 16, "\x11\x10\x0f\x0e\x0d\x0c\x0b\x0a", 8);
	for (i = 48; i < 60; i++)
		ck_assert_uint_eq(h[i], 0);
	ck_assert_int_eq(layout_idx_header_decode(h, &out), 0);
	ck_assert_uint_eq(out.version, LAYOUT_IDX_VERSION);
	ck_assert_uint_eq(out.base_offset, in.base_offset);
	ck_assert_uint_eq(out.base_byte, in.base_byte);
	ck_assert_uint_eq(out.lost_msgs, in.lost_msgs);
	ck_assert_uint_eq(out.lost_bytes, in.lost_bytes);

	/* every byte is covered: magic, fields, padding, the CRC itself */
	for (i = 0; i < sizeof(h); i++) {
		memcpy(bad, h, sizeof(h));
		bad[i] ^= 0x20;
		ck_assert_int_eq(layout_idx_header_decode(bad, &out), -EINVAL);
	}
	/* versions: both known ones read, others refused as such */
	memcpy(bad, h, sizeof(h));
	header_set_version(bad, 1);
	ck_assert_int_eq(layout_idx_header_decode(bad, &out), 0);
	ck_assert_uint_eq(out.version, 1);
	header_set_version(bad, 0);
	ck_assert_int_eq(layout_idx_header_decode(bad, &out), -EPROTONOSUPPORT);
	header_set_version(bad, LAYOUT_IDX_VERSION + 1);
	ck_assert_int_eq(layout_idx_header_decode(bad, &out), -EPROTONOSUPPORT);
	/* a wrong entry size, even with a good checksum */
	memcpy(bad, h, sizeof(h));
	le32_put(bad + 12, 40);
	le32_put(bad + 60, crc32c(0, bad, 60));
	ck_assert_int_eq(layout_idx_header_decode(bad, &out), -EINVAL);
	/* a wrong magic, even with a good checksum */
	memcpy(bad, h, sizeof(h));
	memcpy(bad, "FLUXIDX0", 8);
	le32_put(bad + 60, crc32c(0, bad, 60));
	ck_assert_int_eq(layout_idx_header_decode(bad, &out), -EINVAL);
}
END_TEST

START_TEST(test_entry)
{
	unsigned char b[LAYOUT_ENTRY_BYTES];
	struct seg_entry e = sample_entry(), d;
	size_t i;

	ck_assert(layout_entry_intact(&e));
	layout_entry_encode(b, &e);
	ck_assert_mem_eq(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	ck_assert_uint_eq(le32_get(b + LAYOUT_ENT_FLAGS), 3);
	ck_assert_uint_eq(le32_get(b + LAYOUT_ENT_ECRC),
			  crc32c(0, b, LAYOUT_ENTRY_CRC_BYTES));
	layout_entry_decode(b, &d);
	ck_assert_mem_eq(&d, &e, sizeof(d));
	ck_assert(!layout_entry_lost(&d));
	ck_assert(layout_entry_intact_raw(b));
	/* any flipped bit of the encoding is noticed, decoded or not */
	for (i = 0; i < sizeof(b); i++) {
		b[i] ^= 0x04;
		layout_entry_decode(b, &d);
		ck_assert(!layout_entry_intact(&d));
		ck_assert(!layout_entry_intact_raw(b));
		b[i] ^= 0x04;
	}
	/* an empty entry is never whole, sealed or not */
	d = e;
	d.len = 0;
	layout_entry_seal(&d);
	ck_assert(!layout_entry_intact(&d));
	layout_entry_encode(b, &d);
	ck_assert(!layout_entry_intact_raw(b));
	d = e;
	d.count = 0;
	layout_entry_seal(&d);
	ck_assert(!layout_entry_intact(&d));
	layout_entry_encode(b, &d);
	ck_assert(!layout_entry_intact_raw(b));
	/* a reserved word not zero: whole if sealed so (the checksum
	 * covers the bytes as they are) */
	d = e;
	d.reserved = 7;
	d.ecrc = 0;
	layout_entry_encode(b, &d);
	le32_put(b + LAYOUT_ENT_ECRC, crc32c(0, b, LAYOUT_ENTRY_CRC_BYTES));
	layout_entry_decode(b, &d);
	ck_assert(layout_entry_intact(&d));
	ck_assert(layout_entry_intact_raw(b));
	/* seal clears reserved */
	d = e;
	d.reserved = 5;
	d.flags |= SEG_F_LOST;
	layout_entry_seal(&d);
	ck_assert_uint_eq(d.reserved, 0);
	ck_assert(layout_entry_intact(&d));
	ck_assert(layout_entry_lost(&d));
}
END_TEST

START_TEST(test_blk)
{
	struct codec_block in[3] = {
		{0, 131072, 0, 4000},
		{131072, 131072, 4000, 3999},
		{262144, 17, 7999, 30},
	};
	struct codec_block *out = NULL;
	size_t size = layout_blk_size(3);
	unsigned char *b = malloc(size), *bad = malloc(size);
	uint64_t raw = 0;
	uint32_t n = 0, i;

	ck_assert_uint_eq(size, 24 + 3 * 24 + 4);
	layout_blk_encode(b, COMPRESSION_LZ4, 262161, in, 3);
	ck_assert_mem_eq(b, LAYOUT_BLK_MAGIC, 8);
	ck_assert_int_eq(
		layout_blk_decode(b, size, COMPRESSION_LZ4, &raw, &out, &n), 0);
	ck_assert_uint_eq(raw, 262161);
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(out[i].raw_pos, in[i].raw_pos);
		ck_assert_uint_eq(out[i].raw_len, in[i].raw_len);
		ck_assert_uint_eq(out[i].file_pos, in[i].file_pos);
		ck_assert_uint_eq(out[i].file_len, in[i].file_len);
	}
	free(out);
	/* another codec's table, a short or long buffer */
	ck_assert_int_eq(
		layout_blk_decode(b, size, COMPRESSION_GZIP, &raw, &out, &n),
		-EINVAL);
	ck_assert_int_eq(
		layout_blk_decode(b, size - 1, COMPRESSION_LZ4, &raw, &out, &n),
		-EINVAL);
	ck_assert_int_eq(
		layout_blk_decode(b, 10, COMPRESSION_LZ4, &raw, &out, &n),
		-EINVAL);
	for (i = 0; i < size; i++) {
		memcpy(bad, b, size);
		bad[i] ^= 0x80;
		ck_assert_int_eq(layout_blk_decode(bad, size, COMPRESSION_LZ4,
						   &raw, &out, &n),
				 -EINVAL);
	}
	/* an empty table */
	layout_blk_encode(b, COMPRESSION_GZIP, 0, NULL, 0);
	ck_assert_int_eq(layout_blk_decode(b, layout_blk_size(0),
					   COMPRESSION_GZIP, &raw, &out, &n),
			 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(out);
	free(out);
	free(b);
	free(bad);
}
END_TEST

START_TEST(test_state)
{
	struct layout_state in = {5, 4096, 1000, 9999}, out;
	char buf[256];
	int n = layout_state_encode(buf, sizeof(buf), &in);

	ck_assert_str_eq(buf, "fluxfs-partition-state 1\nstart_offset=5\n"
			      "start_byte=4096\nfirst_base_byte=1000\n"
			      "recovery_point=9999\n");
	ck_assert_int_eq(layout_state_decode(buf, (size_t)n, &out), 0);
	ck_assert_mem_eq(&out, &in, sizeof(in));
	ck_assert_int_eq(layout_state_decode(buf, (size_t)n - 25, &out),
			 -EINVAL);
	buf[0] = 'F';
	ck_assert_int_eq(layout_state_decode(buf, (size_t)n, &out), -EINVAL);
	buf[0] = 'f';
	buf[23] = '2';
	ck_assert_int_eq(layout_state_decode(buf, (size_t)n, &out),
			 -EPROTONOSUPPORT);
	ck_assert_int_eq(layout_state_decode("", 0, &out), -EINVAL);
}
END_TEST

START_TEST(test_names)
{
	static const struct {
		const char *name;
		int ok;
		uint64_t base;
		enum layout_file kind;
	} cases[] = {
		{"00000000000000000000.log", 1, 0, LAYOUT_FILE_LOG},
		{"00000000000000004711.idx", 1, 4711, LAYOUT_FILE_IDX},
		{"00000000000000004711.blk", 1, 4711, LAYOUT_FILE_BLK},
		{"00000000000000004711.lz4", 1, 4711, LAYOUT_FILE_LZ4},
		{"00000000000000004711.gz", 1, 4711, LAYOUT_FILE_GZ},
		{"00000000000000004711.zst", 1, 4711, LAYOUT_FILE_ZST},
		{"18446744073709551615.log", 1, UINT64_MAX, LAYOUT_FILE_LOG},
		{"00000000000000004711.lz4.tmp", 1, 0, LAYOUT_FILE_TMP},
		{"partition.state.tmp", 1, 0, LAYOUT_FILE_TMP},
		{"18446744073709551616.log", 0, 0, 0}, /* past 2^64 - 1 */
		{"99999999999999999999.idx", 0, 0, 0},
		{"0000000000000000001.log", 0, 0, 0},	/* 19 digits */
		{"000000000000000000001.log", 0, 0, 0}, /* 21 digits */
		{"+0000000000000000001.log", 0, 0, 0},
		{" 0000000000000000001.log", 0, 0, 0},
		{"00000000000000000000.lg", 0, 0, 0},
		{"00000000000000000000.log2", 0, 0, 0},
		{"00000000000000000000", 0, 0, 0},
		{"00000000000000000000.", 0, 0, 0},
		{"partition.state", 0, 0, 0},
		{"partition.meta", 0, 0, 0},
		{"quarantine", 0, 0, 0},
		{".tmp", 0, 0, 0},
		{"", 0, 0, 0},
	};
	enum layout_file kind;
	uint64_t base;
	char name[LAYOUT_NAME_MAX];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		base = 12345;
		kind = (enum layout_file) - 1;
		if (!cases[i].ok) {
			ck_assert_msg(layout_parse_name(cases[i].name, &base,
							&kind) == -EINVAL,
				      "'%s' parsed", cases[i].name);
			continue;
		}
		ck_assert_msg(layout_parse_name(cases[i].name, &base, &kind) ==
				      0,
			      "'%s' refused", cases[i].name);
		ck_assert_uint_eq(base, cases[i].base);
		ck_assert_int_eq(kind, cases[i].kind);
	}
	layout_seg_name(name, sizeof(name), 4711, LAYOUT_IDX_SUFFIX);
	ck_assert_str_eq(name, "00000000000000004711.idx");
	layout_seg_name(name, sizeof(name), UINT64_MAX,
			layout_data_suffix(COMPRESSION_GZIP));
	ck_assert_str_eq(name, "18446744073709551615.gz");
	ck_assert_str_eq(layout_data_suffix(COMPRESSION_NONE), ".log");
	ck_assert_str_eq(layout_data_suffix(COMPRESSION_LZ4), ".lz4");
	ck_assert_int_eq(layout_file_codec(LAYOUT_FILE_LZ4), COMPRESSION_LZ4);
	ck_assert_int_eq(layout_file_codec(LAYOUT_FILE_GZ), COMPRESSION_GZIP);
	ck_assert_str_eq(layout_data_suffix(COMPRESSION_ZSTD), ".zst");
	ck_assert_int_eq(layout_file_codec(LAYOUT_FILE_ZST), COMPRESSION_ZSTD);
	ck_assert_int_eq(layout_file_codec(LAYOUT_FILE_LOG), COMPRESSION_NONE);
	ck_assert_int_eq(layout_file_codec(LAYOUT_FILE_IDX), -1);
	layout_batch_name(name, sizeof(name), 7, 123, 45);
	ck_assert_str_eq(name, "00000000000000000007-123-45.batch");
}
END_TEST

static void touch(int dfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

struct seen {
	unsigned mask; /* bit per enum layout_file */
	int n;
	uint64_t sum;
};

static int note(void *arg, const char *name, uint64_t base,
		enum layout_file kind)
{
	struct seen *s = arg;

	(void)name;
	s->mask |= 1u << kind;
	s->n++;
	s->sum += base;
	return 0;
}

static int stop_at_idx(void *arg, const char *name, uint64_t base,
		       enum layout_file kind)
{
	(void)arg;
	(void)name;
	(void)base;
	return kind == LAYOUT_FILE_IDX ? 7 : 0;
}

/* An io_ops table whose readdir fails with EIO once readdir_ok_left
 * entries were returned. */
static struct io_ops listing_ops;
static int readdir_ok_left;

static struct dirent *cut_readdir(DIR *d)
{
	if (readdir_ok_left-- <= 0) {
		errno = EIO;
		return NULL;
	}
	return io_ops_default()->readdir(d);
}

static void listing_fails_after(int n)
{
	listing_ops = *io_ops_default();
	listing_ops.readdir = cut_readdir;
	readdir_ok_left = n;
	io_ops_set(&listing_ops);
}

START_TEST(test_scan)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct seen s = {0, 0, 0};

	touch(dfd, "00000000000000000010.log", "", 0);
	touch(dfd, "00000000000000000010.idx", "", 0);
	touch(dfd, "00000000000000000020.lz4", "", 0);
	touch(dfd, "00000000000000000020.blk", "", 0);
	touch(dfd, "00000000000000000020.lz4.tmp", "", 0);
	touch(dfd, "partition.state", "", 0);
	touch(dfd, "partition.meta", "", 0);
	touch(dfd, "0000000000000000002.log", "", 0);
	ck_assert_int_eq(mkdirat(dfd, "quarantine", 0755), 0);
	ck_assert_int_eq(layout_scan(dfd, note, &s), 0);
	ck_assert_int_eq(s.n, 5);
	ck_assert_uint_eq(s.sum, 10 + 10 + 20 + 20);
	ck_assert_uint_eq(
		s.mask, 1u << LAYOUT_FILE_LOG | 1u << LAYOUT_FILE_IDX |
				1u << LAYOUT_FILE_LZ4 | 1u << LAYOUT_FILE_BLK |
				1u << LAYOUT_FILE_TMP);
	ck_assert_int_eq(layout_scan(dfd, stop_at_idx, NULL), 7);
	/* A listing that fails part-way is its errno, never a shorter
	 * directory. */
	listing_fails_after(3);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(layout_scan(dfd, note, &s), -EIO);
	io_ops_set(NULL);
	test_rmtree(dfd, path);
}
END_TEST

/* The loaders read what the storers wrote, and say when it is damaged. */
START_TEST(test_files)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	unsigned char idx[LAYOUT_IDX_HEADER_BYTES + 2 * LAYOUT_ENTRY_BYTES + 5];
	struct layout_idx_header h = {0, 40, 5000, 0, 0}, hd;
	struct layout_state st = {1, 2, 3, 4}, sd;
	struct codec_block blk = {0, 100, 0, 60}, *bd = NULL;
	struct seg_entry e = sample_entry(), *ents = NULL;
	uint64_t size, raw;
	uint32_t n;

	ck_assert_int_eq(layout_state_load(dfd, &sd), -ENOENT);
	ck_assert_int_eq(layout_state_store(dfd, &st), 0);
	ck_assert_int_eq(layout_state_load(dfd, &sd), 0);
	ck_assert_mem_eq(&sd, &st, sizeof(st));
	touch(dfd, LAYOUT_STATE_FILE, "fluxfs-partition-state 1\nstart", 30);
	ck_assert_int_eq(layout_state_load(dfd, &sd), -EINVAL);

	ck_assert_int_eq(
		layout_blk_load(dfd, 40, COMPRESSION_LZ4, &raw, &bd, &n),
		-ENOENT);
	ck_assert_int_eq(
		layout_blk_store(dfd, 40, COMPRESSION_LZ4, 100, &blk, 1), 0);
	ck_assert_int_eq(
		layout_blk_load(dfd, 40, COMPRESSION_LZ4, &raw, &bd, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(raw, 100);
	ck_assert_uint_eq(bd[0].file_len, 60);
	free(bd);
	ck_assert_int_eq(
		layout_blk_load(dfd, 40, COMPRESSION_GZIP, &raw, &bd, &n),
		-EIO);

	/* a header, two entries and a torn third */
	memset(idx, 0xee, sizeof(idx));
	layout_idx_header_encode(idx, &h);
	layout_entry_encode(idx + LAYOUT_IDX_HEADER_BYTES, &e);
	e.offset++;
	layout_entry_seal(&e);
	layout_entry_encode(idx + LAYOUT_IDX_HEADER_BYTES + LAYOUT_ENTRY_BYTES,
			    &e);
	touch(dfd, "00000000000000000040.idx", idx, sizeof(idx));
	ck_assert_int_eq(layout_idx_load(dfd, 40, &hd, &ents, &n, &size), 0);
	ck_assert_uint_eq(size, sizeof(idx));
	ck_assert_uint_eq(hd.base_byte, 5000);
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(&ents[1], &e, sizeof(e));
	free(ents);
	/* the header must name the segment it belongs to */
	ck_assert_int_eq(renameat(dfd, "00000000000000000040.idx", dfd,
				  "00000000000000000041.idx"),
			 0);
	ck_assert_int_eq(layout_idx_load(dfd, 41, &hd, &ents, &n, &size),
			 -EINVAL);
	ck_assert_ptr_null(ents);
	ck_assert_int_eq(layout_idx_load(dfd, 40, &hd, &ents, &n, &size),
			 -ENOENT);
	test_rmtree(dfd, path);
}
END_TEST

static void read_meta(int dfd, char *buf, size_t size)
{
	int fd = openat(dfd, LAYOUT_META_FILE, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, size - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
}

START_TEST(test_datadir)
{
	char path[4096], buf[64];
	int dfd = test_tmpdir(path), format = 0, lock, lock2;

	/* empty: made a fluxfs directory of the current format */
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), 0);
	ck_assert_int_eq(format, LAYOUT_FORMAT);
	read_meta(dfd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "format=2\n");
	/* format 1: accepted as it is, marked 2 by the upgrade */
	touch(dfd, LAYOUT_META_FILE, "format=1\n", 9);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), 0);
	ck_assert_int_eq(format, 1);
	read_meta(dfd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "format=1\n");
	ck_assert_int_eq(layout_datadir_upgrade(dfd, path, format), 0);
	read_meta(dfd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "format=2\n");
	/* newer or damaged: refused, left alone */
	touch(dfd, LAYOUT_META_FILE, "format=3\n", 9);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format),
			 -EPROTONOSUPPORT);
	touch(dfd, LAYOUT_META_FILE, "formal=1\n", 9);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), -EINVAL);
	read_meta(dfd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "formal=1\n");
	/* not ours: refused, nothing written */
	ck_assert_int_eq(unlinkat(dfd, LAYOUT_META_FILE, 0), 0);
	touch(dfd, "notes.txt", "x", 1);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), -ENOTEMPTY);
	ck_assert_int_eq(faccessat(dfd, LAYOUT_META_FILE, F_OK, 0), -1);
	/* a listing that fails is not an empty directory: nothing written */
	ck_assert_int_eq(unlinkat(dfd, "notes.txt", 0), 0);
	listing_fails_after(0);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), -EIO);
	io_ops_set(NULL);
	ck_assert_int_eq(faccessat(dfd, LAYOUT_META_FILE, F_OK, 0), -1);
	/* one holder of the lock at a time */
	lock = layout_datadir_lock(dfd, path);
	ck_assert_int_ge(lock, 0);
	layout_datadir_note_pid(lock);
	lock2 = layout_datadir_lock(dfd, path);
	ck_assert_int_eq(lock2, -EBUSY);
	close(lock);
	lock2 = layout_datadir_lock(dfd, path);
	ck_assert_int_ge(lock2, 0);
	close(lock2);
	test_rmtree(dfd, path);
}
END_TEST

/* fluxfs.meta's inode-number bound: encoded after the format, read back
 * exactly, absent in older text (0), refused when damaged; stored and
 * loaded through the data directory, and kept by a format upgrade. */
START_TEST(test_ino_next)
{
	char path[4096], buf[LAYOUT_META_TEXT_MAX];
	uint64_t next = 7, big = LAYOUT_INO_LIMIT - 1;
	int dfd = test_tmpdir(path), format = 0, len;

	len = layout_datadir_meta_encode(buf, sizeof(buf), 2, 0);
	ck_assert_str_eq(buf, "format=2\n");
	ck_assert_int_eq(len, 9);
	ck_assert_int_eq(layout_datadir_meta_decode(buf, &format, &next), 0);
	ck_assert_int_eq(format, 2);
	ck_assert_uint_eq(next, 0);
	len = layout_datadir_meta_encode(buf, sizeof(buf), 2, 1040);
	ck_assert_str_eq(buf, "format=2\nino_next=1040\n");
	ck_assert_int_eq(len, (int)strlen(buf));
	ck_assert_int_eq(layout_datadir_meta_decode(buf, &format, &next), 0);
	ck_assert_uint_eq(next, 1040);
	layout_datadir_meta_encode(buf, sizeof(buf), 2, big);
	ck_assert_int_eq(layout_datadir_meta_decode(buf, &format, &next), 0);
	ck_assert_uint_eq(next, big);
	ck_assert_int_eq(layout_datadir_meta_decode("format=2\nino_next=12x\n",
						    &format, &next),
			 -EINVAL);
	ck_assert_int_eq(layout_datadir_meta_decode("format=2\nino_next=\n",
						    &format, &next),
			 -EINVAL);
	ck_assert_int_eq(
		layout_datadir_meta_decode("format=2\nino_next=4611686018427387904\n",
					   &format, &next),
		-EINVAL);
	ck_assert_int_eq(layout_datadir_meta_decode("ino_next=5\n", &format,
						    &next),
			 -EINVAL);

	/* through the directory */
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), 0);
	ck_assert_int_eq(layout_datadir_ino_load(dfd, &next), 0);
	ck_assert_uint_eq(next, 0);
	ck_assert_int_eq(layout_datadir_ino_store(dfd, 2064), 0);
	ck_assert_int_eq(layout_datadir_ino_load(dfd, &next), 0);
	ck_assert_uint_eq(next, 2064);
	read_meta(dfd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "format=2\nino_next=2064\n");
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), 0);
	ck_assert_int_eq(format, 2);
	/* a damaged bound refuses the directory, like a damaged format */
	touch(dfd, LAYOUT_META_FILE, "format=2\nino_next=z\n", 20);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), -EINVAL);
	/* an upgrade keeps the bound */
	touch(dfd, LAYOUT_META_FILE, "format=1\nino_next=99\n", 21);
	ck_assert_int_eq(layout_datadir_check(dfd, path, &format), 0);
	ck_assert_int_eq(format, 1);
	ck_assert_int_eq(layout_datadir_upgrade(dfd, path, format), 0);
	read_meta(dfd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "format=2\nino_next=99\n");
	test_rmtree(dfd, path);
}
END_TEST

/* The mount summary: what is written loads back the same, topic by
 * name; the clean mark names it; a summary that is damaged anywhere, or
 * not the one the mark names, is refused whole. */
START_TEST(test_summary)
{
	char path[4096], buf[256];
	int dfd = test_tmpdir(path), fd;
	struct layout_summary_writer w;
	struct layout_summary s;
	struct layout_summary_part part;
	const struct layout_summary_topic *t;
	struct layout_stamp a = {11, 4096, 4, 1000, -2000}, b = a;
	struct layout_node_meta m = {0640, 7, 8, -5, 6, 7, 99, 1, 1234};
	uint32_t crc = 0, crc2 = 0;
	size_t pos;
	struct stat st;

	ck_assert(layout_stamp_same(&a, &b));
	b.ctime_ns++;
	ck_assert(!layout_stamp_same(&a, &b));
	ck_assert_int_eq(layout_summary_load(dfd, 1, &s), -ENOENT);

	layout_summary_writer_init(&w);
	layout_summary_add_topic(&w, "zeta", &a, 2);
	layout_summary_add_part(&w, "0", &b, &m, 5000);
	m.ino++;
	layout_summary_add_part(&w, "p.1", &a, &m, INT64_MAX);
	layout_summary_add_topic(&w, "alpha", &b, 0);
	ck_assert_int_eq(layout_summary_write(dfd, &w, &crc), 0);
	ck_assert_uint_ne(crc, 0);
	ck_assert_int_eq(layout_summary_load(dfd, crc + 1, &s), -ESTALE);
	ck_assert_int_eq(layout_summary_load(dfd, crc, &s), 0);
	ck_assert_uint_eq(s.ntopics, 2);
	ck_assert_uint_eq(s.nparts, 2);
	ck_assert_ptr_null(layout_summary_find(&s, "beta"));
	t = layout_summary_find(&s, "alpha");
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->nparts, 0);
	ck_assert(layout_stamp_same(&t->dir, &b));
	t = layout_summary_find(&s, "zeta");
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->nparts, 2);
	ck_assert(layout_stamp_same(&t->dir, &a));
	pos = t->first;
	layout_summary_part_next(&s, &pos, &part);
	ck_assert_str_eq(part.name, "0");
	ck_assert(layout_stamp_same(&part.meta_file, &b));
	ck_assert_uint_eq(part.meta.mode, 0640);
	ck_assert_uint_eq(part.meta.uid, 7);
	ck_assert_uint_eq(part.meta.gid, 8);
	ck_assert_int_eq(part.meta.atime_ns, -5);
	ck_assert_int_eq(part.meta.mtime_ns, 6);
	ck_assert_int_eq(part.meta.ctime_ns, 7);
	ck_assert_uint_eq(part.meta.mtime_end, 99);
	ck_assert_int_eq(part.meta.append_only, 1);
	ck_assert_uint_eq(part.meta.ino, 1234);
	ck_assert_int_eq(part.due_ms, 5000);
	layout_summary_part_next(&s, &pos, &part);
	ck_assert_str_eq(part.name, "p.1");
	ck_assert_uint_eq(part.meta.ino, 1235);
	ck_assert_int_eq(part.due_ms, INT64_MAX);
	/* parsed twice, the same */
	pos = t->first;
	layout_summary_part_next(&s, &pos, &part);
	ck_assert_str_eq(part.name, "0");
	ck_assert_uint_eq(part.meta.ino, 1234);
	/* stamps written before the summary are older than it; one of now
	 * or later is not (a change in the same tick would not show) */
	ck_assert(layout_summary_stamp_older(&s, &a));
	ck_assert_int_eq(fstatat(dfd, LAYOUT_SUMMARY_FILE, &st, 0), 0);
	layout_stamp_of(&st, &b);
	ck_assert(!layout_summary_stamp_older(&s, &b));
	layout_summary_release(&s);

	/* one byte changed anywhere: refused */
	fd = openat(dfd, LAYOUT_SUMMARY_FILE, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, 1, 40), 1);
	buf[0] ^= 1;
	ck_assert_int_eq(pwrite(fd, buf, 1, 40), 1);
	ck_assert_int_eq(layout_summary_load(dfd, crc, &s), -EINVAL);
	buf[0] ^= 1;
	ck_assert_int_eq(pwrite(fd, buf, 1, 40), 1);
	ck_assert_int_eq(layout_summary_load(dfd, crc, &s), 0);
	layout_summary_release(&s);
	/* cut short: refused */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(ftruncate(fd, st.st_size - 3), 0);
	ck_assert_int_eq(layout_summary_load(dfd, crc, &s), -EINVAL);
	close(fd);
	/* a topic announcing more partitions than follow, with a valid CRC:
	 * refused */
	layout_summary_writer_init(&w);
	layout_summary_add_topic(&w, "t", &a, 2);
	layout_summary_add_part(&w, "0", &a, &m, 0);
	ck_assert_int_eq(layout_summary_write(dfd, &w, &crc2), 0);
	ck_assert_int_eq(layout_summary_load(dfd, crc2, &s), -EINVAL);

	/* a data directory without topics: an empty summary loads */
	layout_summary_writer_init(&w);
	ck_assert_int_eq(layout_summary_write(dfd, &w, &crc2), 0);
	ck_assert_int_eq(layout_summary_load(dfd, crc2, &s), 0);
	ck_assert_uint_eq(s.ntopics, 0);
	ck_assert_ptr_null(layout_summary_find(&s, "t"));
	layout_summary_release(&s);

	/* the clean mark names the summary; an older mark names none */
	ck_assert_int_eq(layout_datadir_clean_mark(dfd, crc), 0);
	ck_assert_int_eq(layout_datadir_clean_take(dfd, &crc2), 1);
	ck_assert_uint_eq(crc2, crc);
	ck_assert_int_eq(layout_datadir_clean_take(dfd, &crc2), 0);
	ck_assert_uint_eq(crc2, 0);
	ck_assert_int_eq(layout_datadir_clean_mark(dfd, 0), 0);
	ck_assert_int_eq(layout_datadir_clean_take(dfd, &crc2), 1);
	ck_assert_uint_eq(crc2, 0);
	test_rmtree(dfd, path);
}
END_TEST

static Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_byte_order);
	tcase_add_test(tc, test_v1_known_answer);
	tcase_add_test(tc, test_idx_header);
	tcase_add_test(tc, test_entry);
	tcase_add_test(tc, test_blk);
	tcase_add_test(tc, test_state);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_scan);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_datadir);
	tcase_add_test(tc, test_ino_next);
	tcase_add_test(tc, test_summary);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(layout_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
