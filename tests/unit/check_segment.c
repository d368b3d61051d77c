/*
 * check_segment.c - one segment on its own: cutting batches into chunk
 * entries, appends, the three binary searches at every boundary, growth of
 * the index mapping, per-entry CRC checks, reopen and rebuild of a missing
 * .idx from the .log's lines, and what a failed mapping does (a .log is
 * read with pread instead, an .idx that cannot be mapped fails the open).
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "testutil.h"
#include "crc32c.h"
#include "segment.h"

/* Every property a plan must have. */
/* The first n entries of s, decoded from its mapped .idx (the buffer is
 * reused by the next call). */
static const struct seg_entry *entries_of(const struct segment *s, uint32_t n)
{
	static struct seg_entry *buf;
	static uint32_t cap;
	uint32_t i;

	if (n > cap) {
		free(buf);
		cap = n;
		buf = malloc((size_t)cap * sizeof(*buf));
		ck_assert_ptr_nonnull(buf);
	}
	for (i = 0; i < n; i++)
		buf[i] = segment_entry(s, i);
	return buf;
}

static void check_plan(const char *buf, size_t len, const struct seg_entry *e,
		       uint32_t n, uint32_t msgs, uint64_t off0, uint64_t pos0,
		       int cont)
{
	uint64_t pos = pos0, off = off0;
	uint32_t i, lines = 0, total = 0;
	size_t k;

	for (k = 0; k < len; k++)
		lines += buf[k] == '\n';
	if (len && buf[len - 1] != '\n')
		lines++;
	ck_assert_uint_eq(msgs, lines);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(e[i].pos, pos);
		ck_assert_uint_eq(e[i].offset, off);
		ck_assert_uint_gt(e[i].len, 0);
		ck_assert(e[i].count == 1 || e[i].len <= SEG_CHUNK_BYTES);
		/* cut at a message boundary */
		ck_assert(e[i].pos - pos0 + e[i].len == len ||
			  buf[e[i].pos - pos0 + e[i].len - 1] == '\n');
		ck_assert_uint_eq(e[i].crc,
				  crc32c(0, buf + (e[i].pos - pos0), e[i].len));
		ck_assert_uint_eq(e[i].flags,
				  cont ? (i ? SEG_F_CONT : 0) |
						  (i + 1 == n ? SEG_F_LAST : 0)
				       : SEG_F_LAST);
		ck_assert(layout_entry_intact(&e[i]));
		if (i + 1 < n) {
			/* greedy: the next chunk's first message did not fit */
			const char *nx = buf + (e[i + 1].pos - pos0);
			const char *nl =
				memchr(nx, '\n', len - (size_t)(nx - buf));
			size_t first = nl ? (size_t)(nl - nx) + 1
					  : len - (size_t)(nx - buf);

			ck_assert_uint_gt(e[i].len + first, SEG_CHUNK_BYTES);
		}
		/* its count is its newlines (+1 for a final open line) */
		{
			size_t nl = 0, j;
			const char *c = buf + (e[i].pos - pos0);

			for (j = 0; j < e[i].len; j++)
				nl += c[j] == '\n';
			if (c[e[i].len - 1] != '\n')
				nl++;
			ck_assert_uint_eq(e[i].count, nl);
		}
		pos += e[i].len;
		off += e[i].count;
		total += e[i].count;
	}
	ck_assert_uint_eq(pos, pos0 + len);
	ck_assert_uint_eq(total, msgs);
}

START_TEST(test_plan_chunks)
{
	size_t len, i;
	char *buf = test_make_lines(11, 2000, 1, 3000, &len);
	struct seg_entry *e = malloc(segment_plan_max(len) * sizeof(*e));
	uint32_t n, msgs;

	n = segment_plan(buf, len, 77, 1000, 5, e, &msgs);
	ck_assert_uint_le(n, segment_plan_max(len));
	check_plan(buf, len, e, n, msgs, 77, 1000, 1);
	ck_assert_uint_eq(msgs, 2000);
	free(buf);
	free(e);

	/* 1 KiB lines: four to a chunk. */
	buf = test_make_lines(3, 1024, 1024, 1024, &len);
	e = malloc(segment_plan_max(len) * sizeof(*e));
	n = segment_plan(buf, len, 0, 0, 5, e, &msgs);
	check_plan(buf, len, e, n, msgs, 0, 0, 1);
	ck_assert_uint_eq(n, 256);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(e[i].count, 4);
	free(buf);
	free(e);
}
END_TEST

/* The vectorised newline counter, the portable one and a byte loop agree
 * on random data at every alignment and length, with sparse and dense
 * newlines and bytes that differ from '\n' in one bit. */
START_TEST(test_count_nl)
{
	enum { MAXLEN = 9000 };
	static unsigned char buf[MAXLEN + 64];
	static const unsigned char near[] = {'\n',     '\n' ^ 1, '\n' ^ 0x80,
					     '\n' ^ 8, 0,	 0xff};
	uint64_t rnd = 42 + (uint64_t)_i;
	size_t i, len, off, want;
	int round, density;

	for (round = 0; round < 3000; round++) {
		density = 1 + (int)(test_rand(&rnd) % 64);
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = test_rand(&rnd) % (uint64_t)density == 0
					 ? near[test_rand(&rnd) % 6]
					 : (unsigned char)test_rand(&rnd);
		off = test_rand(&rnd) % 64;
		len = round < 200 ? (size_t)round : test_rand(&rnd) % MAXLEN;
		want = 0;
		for (i = 0; i < len; i++)
			want += buf[off + i] == '\n';
		ck_assert_uint_eq(segment_count_nl_portable(buf + off, len),
				  want);
		ck_assert_uint_eq(segment_count_nl(buf + off, len), want);
	}
	/* Every short length at every misalignment: the vector loops' ends
	 * and the masked or portable tails. */
	for (off = 0; off < 64; off++) {
		for (len = 0; len <= 300; len++) {
			want = 0;
			for (i = 0; i < len; i++)
				want += buf[off + i] == '\n';
			ck_assert_uint_eq(segment_count_nl(buf + off, len),
					  want);
			ck_assert_uint_eq(
				segment_count_nl_portable(buf + off, len),
				want);
		}
	}
	/* All newlines: byte counters must not wrap. */
	memset(buf, '\n', sizeof(buf));
	ck_assert_uint_eq(segment_count_nl(buf, sizeof(buf)), sizeof(buf));
	ck_assert_uint_eq(segment_count_nl(buf + 5, sizeof(buf) - 70),
			  sizeof(buf) - 70);
	ck_assert_uint_eq(segment_count_nl_portable(buf + 3, 5000), 5000);
}
END_TEST

/* A batch cut into pieces plans exactly like the joined bytes: same
 * entries (cuts, counts, CRCs), whatever the split points. */
START_TEST(test_planv_pieces)
{
	uint64_t rnd = 7 + (uint64_t)_i;
	struct seg_entry *a, *b;
	struct iovec v[3];
	uint32_t na, nb, ma, mb;
	size_t len, c1, c2;
	char *buf;
	int round, k;

	for (round = 0; round < 300; round++) {
		buf = test_make_lines(round * 31 + _i, 1 + test_rand(&rnd) % 300, 1,
				 round % 3 ? 300 : 9000, &len);
		if (round % 2)
			len -= test_rand(&rnd) % (len < 50 ? len : 50);
		if (len == 0) {
			free(buf);
			continue;
		}
		a = malloc(segment_plan_max(len) * sizeof(*a));
		b = malloc(segment_plan_max(len) * sizeof(*b));
		na = segment_plan(buf, len, 5, 900, 3, a, &ma);
		check_plan(buf, len, a, na, ma, 5, 900, 1);
		c1 = test_rand(&rnd) % (len + 1);
		c2 = c1 + test_rand(&rnd) % (len - c1 + 1);
		v[0].iov_base = buf;
		v[0].iov_len = c1;
		v[1].iov_base = buf + c1;
		v[1].iov_len = c2 - c1;
		v[2].iov_base = buf + c2;
		v[2].iov_len = len - c2;
		for (k = 2; k <= 3; k++) {
			if (k == 2) {
				v[1].iov_len = len - c1;
			} else {
				v[1].iov_len = c2 - c1;
			}
			nb = segment_planv(v, k, len, 5, 900, 3, b, &mb);
			ck_assert_uint_eq(nb, na);
			ck_assert_uint_eq(mb, ma);
			ck_assert_int_eq(memcmp(a, b, na * sizeof(*a)), 0);
		}
		free(a);
		free(b);
		free(buf);
	}
}
END_TEST

START_TEST(test_plan_big_and_partial)
{
	/* A 10 KiB line is a chunk of its own; a last line without a newline
	 * is still a message. */
	size_t len = 100 + 10240 + 50 + 7, at = 0;
	char *buf = malloc(len);
	struct seg_entry e[16];
	uint32_t n, msgs;

	memset(buf, 'x', len);
	buf[99] = '\n';
	buf[100 + 10239] = '\n';
	buf[100 + 10240 + 49] = '\n';
	n = segment_plan(buf, len, 0, 0, 1, e, &msgs);
	check_plan(buf, len, e, n, msgs, 0, 0, 1);
	ck_assert_uint_eq(msgs, 4);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(e[1].len, 10240);
	ck_assert_uint_eq(e[2].count, 2);
	(void)at;
	free(buf);
}
END_TEST

static void append_batch(struct segment *s, const char *buf, size_t len,
			 int64_t ts)
{
	struct seg_entry *e = malloc(segment_plan_max(len) * sizeof(*e));
	uint32_t n, msgs;
	uint64_t end = atomic_load(&s->end_byte);

	n = segment_plan(buf, len, s->next_offset, end, ts, e, &msgs);
	ck_assert_int_eq(segment_map_grow(s, atomic_load(&s->nentries) + n,
					  end + len - s->base_byte, NULL),
			 0);
	ck_assert_int_eq(segment_append(s, buf, len, e, n), 0);
	ck_assert_uint_eq(atomic_load(&s->end_byte), end + len);
	free(e);
}

START_TEST(test_append_lookups)
{
	char path[4096], name[40];
	int dfd = test_tmpdir(path);
	struct segment *s;
	const struct seg_entry *e;
	struct stat st;
	size_t len[3];
	char *b[3];
	uint32_t n, i;
	long k;

	ck_assert_int_eq(segment_create(dfd, 100, 5000, &s), 0);
	layout_seg_name(name, sizeof(name), 100, ".log");
	ck_assert_str_eq(name, "00000000000000000100.log");
	ck_assert_int_eq(fstatat(dfd, name, &st, 0), 0);
	layout_seg_name(name, sizeof(name), 100, ".idx");
	ck_assert_int_eq(fstatat(dfd, name, &st, 0), 0);
	ck_assert_int_eq(st.st_size, LAYOUT_IDX_HEADER_BYTES);
	for (i = 0; i < 3; i++) {
		b[i] = test_make_lines(i + 1, 50, 10, 400, &len[i]);
		append_batch(s, b[i], len[i], 1000 * (i + 1));
	}
	n = atomic_load(&s->nentries);
	e = entries_of(s, n);
	ck_assert_uint_eq(s->next_offset, 250);
	ck_assert_uint_eq(atomic_load(&s->end_byte),
			  5000 + len[0] + len[1] + len[2]);
	/* every entry: first and last message, first and last byte */
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(segment_find_offset(s, n, e[i].offset), i);
		ck_assert_int_eq(
			segment_find_offset(s, n, e[i].offset + e[i].count - 1),
			i);
		ck_assert_int_eq(segment_find_byte(s, n, e[i].pos), i);
		ck_assert_int_eq(
			segment_find_byte(s, n, e[i].pos + e[i].len - 1), i);
	}
	ck_assert_int_eq(segment_find_offset(s, n, 99), -1);
	ck_assert_int_eq(segment_find_offset(s, n, 250), -1);
	ck_assert_int_eq(segment_find_byte(s, n, 4999), -1);
	ck_assert_int_eq(segment_find_byte(s, n, atomic_load(&s->end_byte)),
			 -1);
	/* time: before the first, exact, between, after the last */
	ck_assert_int_eq(segment_find_time(s, n, 0), 0);
	ck_assert_int_eq(segment_find_time(s, n, 1000), 0);
	k = segment_find_time(s, n, 1500);
	ck_assert_int_eq(e[k].ts, 2000);
	ck_assert_uint_eq(e[k].offset, 150);
	ck_assert_int_eq(segment_find_time(s, n, 3001), n);
	/* the .log holds the bytes exactly */
	{
		char *back = malloc(len[0] + len[1] + len[2]);

		ck_assert_int_eq(
			segment_pread(s, back, len[0] + len[1] + len[2], 5000),
			(ssize_t)(len[0] + len[1] + len[2]));
		ck_assert_mem_eq(back, b[0], len[0]);
		ck_assert_mem_eq(back + len[0], b[1], len[1]);
		ck_assert_mem_eq(back + len[0] + len[1], b[2], len[2]);
		free(back);
	}
	segment_free(s);
	for (i = 0; i < 3; i++)
		free(b[i]);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_map_grows)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct segment *s;
	char line[8];
	uint32_t i, n;

	ck_assert_int_eq(segment_create(dfd, 0, 0, &s), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(line, sizeof(line), "%05u\n", i);
		append_batch(s, line, 6, i);
	}
	n = atomic_load(&s->nentries);
	ck_assert_uint_eq(n, 5000);
	ck_assert_uint_ge(s->map_cap, 5000);
	for (i = 0; i < 5000; i += 7) {
		ck_assert_int_eq(segment_find_offset(s, n, i), i);
		ck_assert_int_eq(segment_find_byte(s, n, i * 6 + 5), i);
		ck_assert_int_eq(segment_find_time(s, n, i), i);
	}
	segment_free(s);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_reopen_and_rebuild)
{
	char path[4096], name[40];
	int dfd = test_tmpdir(path);
	struct seg_report rep;
	struct segment *s;
	const struct seg_entry *e;
	struct stat st;
	size_t len;
	char *b = test_make_lines(9, 300, 20, 900, &len);
	uint32_t n, i, msgs = 0;
	int64_t mtime;

	ck_assert_int_eq(segment_create(dfd, 42, 1000, &s), 0);
	append_batch(s, b, len, 123);
	n = atomic_load(&s->nentries);
	segment_free(s);

	/* Clean reopen: same entries, no repair. */
	memset(&rep, 0, sizeof(rep));
	ck_assert_int_eq(segment_open(dfd, 42, 1000, UINT64_MAX, UINT64_MAX, 0,
				      COMPRESSION_NONE, &s, &rep),
			 0);
	ck_assert_uint_eq(atomic_load(&s->nentries), n);
	ck_assert_uint_eq(rep.rebuilt + rep.truncated_bytes +
				  rep.dropped_entries + (uint32_t)rep.cut,
			  0);
	ck_assert_uint_eq(s->next_offset, 342);
	segment_free(s);

	/* Missing .idx: rebuilt from lines, timestamps from the mtime. */
	layout_seg_name(name, sizeof(name), 42, ".idx");
	ck_assert_int_eq(unlinkat(dfd, name, 0), 0);
	layout_seg_name(name, sizeof(name), 42, ".log");
	ck_assert_int_eq(fstatat(dfd, name, &st, 0), 0);
	mtime = (int64_t)st.st_mtim.tv_sec * 1000 +
		st.st_mtim.tv_nsec / 1000000;
	memset(&rep, 0, sizeof(rep));
	ck_assert_int_eq(segment_open(dfd, 42, 1000, 0, UINT64_MAX, 0,
				      COMPRESSION_NONE, &s, &rep),
			 0);
	ck_assert_uint_eq(rep.rebuilt, 1);
	ck_assert_uint_eq(rep.truncated_bytes, 0);
	n = atomic_load(&s->nentries);
	e = entries_of(s, n);
	check_plan(b, len, e, n, 300, 42, 1000, 0);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(e[i].ts, mtime);
		ck_assert_uint_eq(e[i].crc,
				  crc32c(0, b + (e[i].pos - 1000), e[i].len));
		msgs += e[i].count;
	}
	ck_assert_uint_eq(msgs, 300);
	ck_assert_uint_eq(s->next_offset, 342);
	ck_assert_uint_eq(atomic_load(&s->end_byte), 1000 + len);
	segment_free(s);
	free(b);
	test_rmtree(dfd, path);
}
END_TEST

/* An io_ops table whose mmap fails (ENOMEM) for files named *suffix
 * and counts every mapping asked for, per kind of file. */
static struct io_ops map_ops;
static const char *map_fail_suffix;
static int log_maps, idx_maps;

static int fd_named(int fd, const char *suffix)
{
	char link[64], target[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < (ssize_t)strlen(suffix))
		return 0;
	target[n] = '\0';
	return !strcmp(target + n - strlen(suffix), suffix);
}

static void *picky_mmap(void *addr, size_t len, int prot, int flags, int fd,
			off_t off)
{
	if (fd_named(fd, ".log"))
		log_maps++;
	else if (fd_named(fd, ".idx"))
		idx_maps++;
	if (map_fail_suffix && fd_named(fd, map_fail_suffix)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return io_ops_default()->mmap(addr, len, prot, flags, fd, off);
}

static void maps_fail(const char *suffix)
{
	map_ops = *io_ops_default();
	map_ops.mmap = picky_mmap;
	map_fail_suffix = suffix;
	log_maps = idx_maps = 0;
	io_ops_set(&map_ops);
}

/* The bytes of a raw segment read back, whichever way segment_pread
 * takes. */
static void assert_reads(struct segment *s, const char *want, size_t len,
			 uint64_t pos)
{
	char *back = malloc(len);

	ck_assert_int_eq(segment_pread(s, back, len, pos), (ssize_t)len);
	ck_assert_mem_eq(back, want, len);
	free(back);
}

START_TEST(test_map_failures)
{
	char path[4096], name[40];
	int dfd = test_tmpdir(path);
	struct seg_report rep;
	struct segment *s;
	struct stat st;
	char *b, *more, line[8];
	size_t len, more_len;
	uint32_t i, cap, n;

	b = test_make_lines(4, 200, 10, 300, &len);
	ck_assert_int_eq(segment_create(dfd, 0, 0, &s), 0);
	append_batch(s, b, len, 1);
	segment_free(s);

	/* The .log cannot be mapped: the open succeeds, reads take pread
	 * and return the same bytes, appends go on. */
	maps_fail(".log");
	memset(&rep, 0, sizeof(rep));
	ck_assert_int_eq(segment_open(dfd, 0, 0, UINT64_MAX, UINT64_MAX, 0,
				      COMPRESSION_NONE, &s, &rep),
			 0);
	if (SEG_MAP_LOG)
		ck_assert_int_gt(log_maps, 0);
	ck_assert_int_gt(idx_maps, 0);
	ck_assert_ptr_null(s->lmap);
	ck_assert_ptr_null(segment_peek(s, 0, len));
	assert_reads(s, b, len, 0);
	more = test_make_lines(5, 50, 10, 100, &more_len);
	append_batch(s, more, more_len, 2);
	assert_reads(s, more, more_len, len);
	ck_assert_ptr_null(s->lmap);
	segment_free(s);
	free(more);

	/* The .idx cannot be mapped: the open fails with the errno, and a
	 * segment that cannot be created leaves no file behind. */
	maps_fail(".idx");
	ck_assert_int_eq(segment_open(dfd, 0, 0, UINT64_MAX, UINT64_MAX, 0,
				      COMPRESSION_NONE, &s, &rep),
			 -ENOMEM);
	ck_assert_int_eq(segment_create(dfd, 7000, 900000, &s), -ENOMEM);
	ck_assert_int_gt(idx_maps, 0);
	layout_seg_name(name, sizeof(name), 7000, ".log");
	ck_assert_int_eq(fstatat(dfd, name, &st, 0), -1);
	layout_seg_name(name, sizeof(name), 7000, ".idx");
	ck_assert_int_eq(fstatat(dfd, name, &st, 0), -1);

	/* Growing the index mapping fails: the old mapping stays in
	 * service, and the next growth works. */
	io_ops_set(NULL);
	ck_assert_int_eq(segment_open(dfd, 0, 0, UINT64_MAX, UINT64_MAX, 0,
				      COMPRESSION_NONE, &s, &rep),
			 0);
	cap = s->map_cap;
	n = atomic_load(&s->nentries);
	maps_fail(".idx");
	ck_assert_int_eq(segment_map_grow(s, cap + 1, 0, NULL), -ENOMEM);
	ck_assert_uint_eq(s->map_cap, cap);
	ck_assert_int_eq(segment_find_offset(s, n, 0), 0);
	ck_assert_int_eq(segment_find_offset(s, n, 249), n - 1);
	assert_reads(s, b, len, 0);
	io_ops_set(NULL);
	for (i = 0; i < cap + 1; i++) {
		snprintf(line, sizeof(line), "%05u\n", i % 100000);
		append_batch(s, line, 6, 3);
	}
	ck_assert_uint_gt(s->map_cap, cap);
	segment_free(s);
	free(b);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_verify_entry)
{
	char path[4096], name[40];
	int dfd = test_tmpdir(path), fd;
	struct segment *s;
	const struct seg_entry *e;
	size_t len;
	char *b = test_make_lines(5, 100, 100, 200, &len);
	uint32_t n, i;

	ck_assert_int_eq(segment_create(dfd, 0, 0, &s), 0);
	append_batch(s, b, len, 1);
	n = atomic_load(&s->nentries);
	ck_assert_uint_gt(n, 3);
	e = entries_of(s, n);
	layout_seg_name(name, sizeof(name), 0, ".log");
	fd = openat(dfd, name, O_WRONLY);
	ck_assert_int_eq(pwrite(fd, "#", 1, (off_t)e[2].pos + 3), 1);
	close(fd);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(segment_verify_entry(s, i, NULL),
				 i == 2 ? SEG_V_NEWBAD : SEG_V_GOOD);
	/* the verdict is cached */
	ck_assert_int_eq(segment_verify_entry(s, 2, NULL), SEG_V_BAD);
	ck_assert_int_eq(segment_verify_entry(s, 3, NULL), SEG_V_GOOD);
	segment_free(s);
	free(b);
	test_rmtree(dfd, path);
}
END_TEST

/* Index of the entry holding key by a linear scan: the reference for the
 * interpolating searches. */
static long linear_find(const struct seg_entry *e, uint32_t n, uint64_t key,
			int by_byte)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (by_byte ? key >= e[i].pos && key < e[i].pos + e[i].len
			    : key >= e[i].offset &&
				      key < e[i].offset + e[i].count)
			return (long)i;
	}
	return -1;
}

/* Hundreds of entries of very uneven sizes (1 B lines beside 9 KiB ones):
 * the interpolation guess is far off, and the searches must still agree
 * with a linear scan for every message offset and byte around every
 * boundary, and miss outside the segment. */
START_TEST(test_search_uneven)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct segment *s;
	const struct seg_entry *e;
	uint64_t rnd = 99, off, end, pos;
	size_t len;
	char *b;
	uint32_t n, i;
	int k, d;

	ck_assert_int_eq(segment_create(dfd, 1000, 77, &s), 0);
	for (k = 0; k < 40; k++) {
		b = test_make_lines(k + 1, 1 + test_rand(&rnd) % 200, 1,
			       k % 4 == 0 ? 9000 : (k % 4 == 1 ? 3 : 120),
			       &len);
		append_batch(s, b, len, 10 + k);
		free(b);
	}
	n = atomic_load(&s->nentries);
	e = entries_of(s, n);
	ck_assert_uint_gt(n, 100);
	end = atomic_load(&s->end_byte);
	for (off = 990; off < s->next_offset + 10; off++)
		ck_assert_int_eq(segment_find_offset(s, n, off),
				 linear_find(e, n, off, 0));
	for (i = 0; i < n; i++) {
		for (d = -2; d <= 2; d++) {
			pos = e[i].pos + (uint64_t)(int64_t)d;
			ck_assert_int_eq(segment_find_byte(s, n, pos),
					 linear_find(e, n, pos, 1));
		}
	}
	for (pos = 0; pos < end + 100; pos += 1 + test_rand(&rnd) % 5000)
		ck_assert_int_eq(segment_find_byte(s, n, pos),
				 linear_find(e, n, pos, 1));
	/* every prefix of the table, as readers see it while it grows */
	for (i = 0; i <= n; i += 7)
		for (off = 1000; off < s->next_offset; off += 13)
			ck_assert_int_eq(segment_find_offset(s, i, off),
					 linear_find(e, i, off, 0));
	segment_free(s);
	test_rmtree(dfd, path);
}
END_TEST

/* segment_skip_nl, vectorised and portable, against a byte loop: every
 * k from 0 to past the last newline, at odd alignments and lengths. */
START_TEST(test_skip_nl)
{
	static unsigned char buf[5000 + 64];
	uint64_t rnd = 5, k, seen;
	const unsigned char *want;
	size_t len, off, i;
	int round;

	for (round = 0; round < 200; round++) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = test_rand(&rnd) % (1 + round % 90) == 0
					 ? '\n'
					 : (unsigned char)test_rand(&rnd);
		off = test_rand(&rnd) % 64;
		len = test_rand(&rnd) % 5000;
		seen = 0;
		for (i = 0; i < len; i++)
			seen += buf[off + i] == '\n';
		for (k = 0; k <= seen + 1; k += 1 + (k > 50 ? k / 7 : 0)) {
			/* byte loop reference */
			{
				uint64_t c = 0;

				want = k ? NULL : buf + off;
				for (i = 0; k && i < len; i++) {
					if (buf[off + i] == '\n' && ++c == k) {
						want = buf + off + i + 1;
						break;
					}
				}
			}
			ck_assert_ptr_eq(segment_skip_nl(buf + off, len, k),
					 want);
			ck_assert_ptr_eq(
				segment_skip_nl_portable(buf + off, len, k),
				want);
		}
	}
}
END_TEST

static Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_plan_chunks);
	tcase_add_test(tc, test_plan_big_and_partial);
	tcase_add_loop_test(tc, test_count_nl, 0, 2);
	tcase_add_test(tc, test_skip_nl);
	tcase_add_test(tc, test_search_uneven);
	tcase_add_loop_test(tc, test_planv_pieces, 0, 2);
	tcase_add_test(tc, test_append_lookups);
	tcase_add_test(tc, test_map_grows);
	tcase_add_test(tc, test_map_failures);
	tcase_add_test(tc, test_reopen_and_rebuild);
	tcase_add_test(tc, test_verify_entry);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(segment_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
