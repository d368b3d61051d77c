/*
 * check_partition.c - the partition log against a model kept in memory:
 * appends and reads, roll by size and by time, lookups at every boundary,
 * retention by size and age with an injected clock, delete_before,
 * set_start_byte, compression with both codecs, concurrent readers, and
 * what a tick reports.  After every operation the partition's info, its bytes and
 * its offset <-> byte mapping are compared with the model.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "testutil.h"
#include "codec.h"
#include "io.h"
#include "model.h"
#include "layout.h"
#include "partition.h"

/* ------------------------------------------------------------------ */
/* Helpers (the model itself is in model.c)                             */

/* 1 MiB segments by default; the tests about rolling and retention set
 * their own size. */
static void cfg_init(struct config *c)
{
	model_cfg_init(c, 1 << 20);
}

/* Append and mirror it in the model; notes new segments. */
static void do_append(struct partition *p, struct model *m, const char *buf,
		      size_t len, uint32_t count, int64_t now)
{
	struct partition_info before, after;
	uint64_t first = 0, pos = 0;

	partition_get_info(p, &before);
	ck_assert_int_eq(partition_append(p, buf, len, count, now,
					  PARTITION_ANY_END, &first, &pos),
			 0);
	ck_assert_uint_eq(first, m->nmsg);
	ck_assert_uint_eq(pos, m->end);
	partition_get_info(p, &after);
	if (after.segments > before.segments)
		m->seg[m->nseg++] = pos;
	model_append(m, buf, len);
}

static void append_lines(struct partition *p, struct model *m, uint64_t seed,
			 uint32_t nmsg, size_t min, size_t max, int64_t now)
{
	size_t len;
	char *b = test_make_lines(seed, nmsg, min, max, &len);

	do_append(p, m, b, len, nmsg, now);
	free(b);
}

/* Compare everything observable with the model. */
static void check_inv(struct partition *p, const struct model *m)
{
	struct partition_info info;
	uint64_t pos, o, step, got_off, got_start, b, x;
	unsigned char *buf;
	uint64_t seed = m->end + 1;
	size_t want, i;
	ssize_t n;

	model_check_info(p, m, &info);
	ck_assert_uint_ge(info.segments, 1);
	ck_assert_uint_le(info.flushed_byte, info.end_byte);

	buf = malloc(300000);
	for (pos = 0; pos < m->end; pos += (uint64_t)n) {
		want = 1 + test_rand(&seed) % 300000;
		n = partition_read(p, pos, buf, want);
		ck_assert_int_gt(n, 0);
		ck_assert_uint_le((size_t)n, want);
		/* one assertion per mismatch, not per byte (each ck_assert
		 * costs a write) */
		for (i = 0; i < (size_t)n; i++) {
			x = pos + i;
			if (buf[i] != (x < m->start_byte ? 0 : m->data[x]))
				ck_abort_msg("byte %llu: got %02x want %02x",
					     (unsigned long long)x, buf[i],
					     x < m->start_byte ? 0
							       : m->data[x]);
		}
	}
	ck_assert_int_eq(partition_read(p, m->end, buf, 10), 0);
	free(buf);

	step = (m->nmsg - m->start_off) / 500 + 1;
	for (o = m->start_off; o < m->nmsg; o += step) {
		ck_assert_int_eq(partition_offset_to_byte(p, o, &b), 0);
		ck_assert_uint_eq(b, m->msg[o]);
		ck_assert_int_eq(partition_byte_to_offset(p, m->msg[o],
							  &got_off, &got_start),
				 0);
		ck_assert_uint_eq(got_off, o);
		ck_assert_uint_eq(got_start, m->msg[o]);
		x = (o + 1 < m->nmsg ? m->msg[o + 1] : m->end) - 1;
		ck_assert_int_eq(
			partition_byte_to_offset(p, x, &got_off, &got_start),
			0);
		ck_assert_uint_eq(got_off, o);
		ck_assert_uint_eq(got_start, m->msg[o]);
	}
	/* the pure index search: the chunk at or below, within 4 KiB */
	for (o = m->start_off; o < m->nmsg; o += step) {
		uint64_t co, cb;

		ck_assert_int_eq(partition_offset_to_chunk(p, o, &co, &cb), 0);
		ck_assert_uint_le(co, o);
		ck_assert_uint_eq(cb, m->msg[co]);
		ck_assert(co == o || m->msg[o] - cb < 4096);
	}
	ck_assert_int_eq(partition_offset_to_chunk(p, m->nmsg, &b, &x),
			 -ENOENT);
	if (m->nmsg > m->start_off) {
		ck_assert_int_eq(partition_offset_to_byte(p, m->nmsg - 1, &b),
				 0);
		ck_assert_uint_eq(b, m->msg[m->nmsg - 1]);
	}
	ck_assert_int_eq(partition_offset_to_byte(p, m->nmsg, &b), -ENOENT);
	if (m->start_off > 0)
		ck_assert_int_eq(
			partition_offset_to_byte(p, m->start_off - 1, &b),
			-ENOENT);
	if (m->start_byte > 0)
		ck_assert_int_eq(partition_byte_to_offset(p, m->start_byte - 1,
							  &got_off, &got_start),
				 -ENOENT);
	ck_assert_int_eq(
		partition_byte_to_offset(p, m->end, &got_off, &got_start),
		-ENOENT);
}

static void reopen(int dfd, struct partition **p, const struct config *cfg,
		   int64_t now)
{
	struct partition_recovery rec;

	ck_assert_int_eq(partition_close(*p), 0);
	ck_assert_int_eq(partition_open(dfd, "p", cfg, now, p, &rec), 0);
	/* a clean close needs no repair */
	ck_assert_uint_eq(rec.truncated_bytes + rec.dropped_entries +
				  rec.rebuilt_indexes + rec.discarded_files +
				  rec.bad_batches,
			  0);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

START_TEST(test_append_read)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t first, at;
	int i;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), -EEXIST);
	check_inv(p, &m);
	for (i = 0; i < 40; i++) {
		append_lines(p, &m, i + 1, 1 + i * 7, 1, 600, 1000 + i);
		check_inv(p, &m);
	}
	/* refused appends change nothing; a wrong end is told the real one */
	at = 0;
	ck_assert_int_eq(
		partition_append(p, "a\n", 2, 1, 2000, m.end + 1, NULL, &at),
		-EPERM);
	ck_assert_uint_eq(at, m.end);
	ck_assert_int_eq(partition_append(p, "a\nb\n", 4, 1, 2000,
					  PARTITION_ANY_END, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(partition_append(p, "", 0, 1, 2000, PARTITION_ANY_END,
					  NULL, NULL),
			 -EINVAL);
	check_inv(p, &m);
	/* compare-and-append at the right end works */
	ck_assert_int_eq(
		partition_append(p, "tail", 4, 1, 2000, m.end, &first, NULL),
		0);
	ck_assert_uint_eq(first, m.nmsg);
	model_append(&m, "tail", 4);
	check_inv(p, &m);
	reopen(dfd, &p, &cfg, 3000);
	check_inv(p, &m);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), bytes_appended), 0);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_roll_by_size)
{
	char path[4096], dir[4200];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint32_t expect = 1, i;
	uint64_t active_size = 0;

	cfg_init(&cfg);
	cfg.segment_bytes = 64 << 10;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 30; i++) {
		/* 10 lines of 1 KiB: 10 KiB batches, 6 to a segment */
		if (active_size && active_size + 10240 > cfg.segment_bytes) {
			expect++;
			active_size = 0;
		}
		append_lines(p, &m, i + 1, 10, 1024, 1024, 1000);
		active_size += 10240;
		partition_get_info(p, &info);
		ck_assert_uint_eq(info.segments, expect);
		check_inv(p, &m);
	}
	ck_assert_uint_eq(expect, 5);
	snprintf(dir, sizeof(dir), "%s/p", path);
	ck_assert_int_eq(count_files(dir, ".log"), 5);
	ck_assert_int_eq(count_files(dir, ".idx"), 5);
	/* named by first offset: the second segment starts at message 60 */
	{
		char f[4300];
		struct stat st;

		snprintf(f, sizeof(f), "%s/00000000000000000060.log", dir);
		ck_assert_int_eq(stat(f, &st), 0);
		ck_assert_int_eq(st.st_size, 60 * 1024);
	}
	ck_assert_uint_eq(m.seg[1], 60 * 1024);
	reopen(dfd, &p, &cfg, 2000);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 5);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_roll_by_time)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	struct partition_tick_report rep;

	cfg_init(&cfg);
	cfg.segment_ms = 1000;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	/* an empty active segment never rolls */
	ck_assert_int_eq(partition_tick(p, 50000, &rep), 0);
	ck_assert_int_eq(rep.rolled, 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 1);
	append_lines(p, &m, 1, 5, 10, 20, 100000);
	append_lines(p, &m, 2, 5, 10, 20, 100999);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 1);
	/* the first message is 1000 ms old: the append rolls */
	append_lines(p, &m, 3, 5, 10, 20, 101000);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 2);
	ck_assert_uint_eq(m.seg[1], m.msg[10]);
	check_inv(p, &m);
	/* tick rolls an old active segment */
	ck_assert_int_eq(partition_tick(p, 101999, &rep), 0);
	ck_assert_int_eq(rep.rolled, 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 2);
	ck_assert_int_eq(partition_tick(p, 102000, &rep), 0);
	ck_assert_int_eq(rep.rolled, 1);
	ck_assert_uint_eq(rep.segments_deleted, 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 3);
	ck_assert_int_eq(partition_tick(p, 109000, NULL), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 3);
	append_lines(p, &m, 4, 5, 10, 20, 109000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_boundaries)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t off, start, b, batch_first[60];
	uint32_t i;

	cfg_init(&cfg);
	cfg.segment_bytes = 20000;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 60; i++) {
		batch_first[i] = m.nmsg;
		append_lines(p, &m, i + 7, 3 + i % 17, 5, 700, 1000 + 10 * i);
	}
	ck_assert_uint_gt(m.nseg, 5);
	check_inv(p, &m);
	for (i = 1; i < m.nseg; i++) {
		uint64_t first = model_msg_at(&m, m.seg[i]);

		/* first byte of a segment, last byte of the one before */
		ck_assert_uint_eq(m.msg[first], m.seg[i]);
		ck_assert_int_eq(
			partition_byte_to_offset(p, m.seg[i], &off, &start), 0);
		ck_assert_uint_eq(off, first);
		ck_assert_uint_eq(start, m.seg[i]);
		ck_assert_int_eq(
			partition_byte_to_offset(p, m.seg[i] - 1, &off, &start),
			0);
		ck_assert_uint_eq(off, first - 1);
		ck_assert_uint_eq(start, m.msg[first - 1]);
		/* first message of the segment and last of the one before */
		ck_assert_int_eq(partition_offset_to_byte(p, first, &b), 0);
		ck_assert_uint_eq(b, m.seg[i]);
		ck_assert_int_eq(partition_offset_to_byte(p, first - 1, &b), 0);
		ck_assert_uint_eq(b, m.msg[first - 1]);
	}
	/* time: before the first, every batch exactly and just after,
	 * after the last */
	ck_assert_int_eq(partition_time_to_offset(p, 0, &off, &b), 0);
	ck_assert_uint_eq(off, 0);
	ck_assert_uint_eq(b, 0);
	for (i = 0; i < 60; i++) {
		ck_assert_int_eq(
			partition_time_to_offset(p, 1000 + 10 * i, &off, &b),
			0);
		ck_assert_uint_eq(off, batch_first[i]);
		ck_assert_uint_eq(b, m.msg[batch_first[i]]);
		if (i + 1 < 60) {
			ck_assert_int_eq(
				partition_time_to_offset(p, 1000 + 10 * i + 1,
							 &off, &b),
				0);
			ck_assert_uint_eq(off, batch_first[i + 1]);
		}
	}
	ck_assert_int_eq(
		partition_time_to_offset(p, 1000 + 10 * 59 + 1, &off, &b),
		-ENOENT);
	/* a clock that goes back does not break the time order */
	append_lines(p, &m, 99, 2, 5, 10, 10);
	ck_assert_int_eq(
		partition_time_to_offset(p, 1000 + 10 * 59 + 1, &off, &b),
		-ENOENT);
	ck_assert_int_eq(partition_time_to_offset(p, 1000 + 10 * 59, &off, &b),
			 0);
	ck_assert_uint_eq(off, batch_first[59]);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_retention_bytes)
{
	char path[4096], dir[4200];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	struct partition_tick_report rep;
	uint32_t i, first = 0, k, was;

	cfg_init(&cfg);
	cfg.segment_bytes = 10 << 10;
	cfg.retention_bytes = 30 << 10;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 40; i++) {
		append_lines(p, &m, i + 1, 4, 200, 900, 1000);
		/* the engine deletes only on request/tick */
		ck_assert_int_eq(partition_tick(p, 1000, &rep), 0);
		/* expected (Kafka's rule): drop the oldest sealed segment
		 * while what remains still holds retention_bytes */
		was = first;
		while (first + 1 < m.nseg &&
		       m.end - m.seg[first + 1] >=
			       (uint64_t)cfg.retention_bytes)
			first++;
		/* the tick says what it deleted */
		ck_assert_uint_eq(rep.segments_deleted, first - was);
		ck_assert_int_eq(rep.rolled, 0);
		ck_assert_int_eq(rep.flushed, 0);
		if (first > 0 && m.start_byte < m.seg[first]) {
			m.start_byte = m.seg[first];
			m.start_off = model_msg_at(&m, m.seg[first]);
		}
		partition_get_info(p, &info);
		ck_assert_uint_eq(info.segments, m.nseg - first);
		ck_assert_uint_ge(info.end_byte - info.start_byte,
				  first ? (uint64_t)cfg.retention_bytes : 0);
		check_inv(p, &m);
	}
	ck_assert_uint_gt(first, 3);
	ck_assert_uint_gt(metrics_get(partition_metrics(p), segments_deleted),
			  3);
	snprintf(dir, sizeof(dir), "%s/p", path);
	k = (uint32_t)count_files(dir, ".log");
	ck_assert_uint_eq(k, m.nseg - first);
	reopen(dfd, &p, &cfg, 2000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A partition rolling a segment a second and keeping 2.5 s. */
static struct partition *aged_partition(int dfd, struct config *cfg,
					struct model *m)
{
	struct partition *p;

	cfg_init(cfg);
	cfg->segment_ms = 1000;
	cfg->retention_ms = 2500;
	model_init(m);
	ck_assert_int_eq(partition_create(dfd, "p", cfg, 0, &p), 0);
	return p;
}

/* partition_next_due says when a tick would next act on a partition left
 * alone: nothing before it, something at it (a time roll, retention by
 * age), and "now" while compression has a segment waiting. */
START_TEST(test_next_due)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_tick_report rep;
	struct partition *p;
	struct config cfg;
	struct model m;
	int64_t due;

	p = aged_partition(dfd, &cfg, &m);
	ck_assert_int_eq(partition_next_due(p), INT64_MAX); /* empty */
	append_lines(p, &m, 1, 3, 10, 50, 10000);
	ck_assert_int_eq(partition_next_due(p), 11000); /* its roll */
	append_lines(p, &m, 2, 3, 10, 50, 11000);	 /* rolled first */
	/* the new active segment rolls at 12000; the sealed one (newest
	 * message at 10000) expires after 12500 */
	ck_assert_int_eq(partition_next_due(p), 12000);
	ck_assert_int_eq(partition_tick(p, 11999, &rep), 0);
	ck_assert_int_eq(rep.rolled + (int)rep.segments_deleted, 0);
	ck_assert_int_eq(partition_tick(p, 12000, &rep), 0);
	ck_assert_int_eq(rep.rolled, 1);
	due = partition_next_due(p);
	ck_assert_int_eq(due, 12501);
	ck_assert_int_eq(partition_tick(p, due - 1, &rep), 0);
	ck_assert_uint_eq(rep.segments_deleted, 0);
	ck_assert_int_eq(partition_tick(p, due, &rep), 0);
	ck_assert_uint_eq(rep.segments_deleted, 1);
	ck_assert_int_eq(partition_next_due(p), 11000 + 2501);
	/* compression waiting: due now */
	cfg.compression = COMPRESSION_LZ4;
	ck_assert_int_eq(partition_set_config(p, &cfg), 0);
	ck_assert_int_eq(partition_next_due(p), 0);
	ck_assert_int_eq(partition_compress_one(p), 1);
	ck_assert_int_eq(partition_next_due(p), 11000 + 2501);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A retention hold (the Kafka exporter's position) keeps every segment
 * holding a message at or after it; lifting it lets retention go on. */
START_TEST(test_retention_hold)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition_chunk c;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint32_t i;

	p = aged_partition(dfd, &cfg, &m);
	for (i = 0; i < 6; i++)
		append_lines(p, &m, i + 1, 3, 10, 50, 10000 + i * 1000);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 6);
	/* Held at a message of segment 2: segments 0 and 1 may go. */
	ck_assert_int_eq(partition_chunk_of(p, 7, &c), 0);
	ck_assert_int_eq(c.ts, 12000); /* the chunk's append time */
	partition_hold_retention(p, 7);
	ck_assert_int_eq(partition_apply_retention(p, 1000000), 2);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 4);
	ck_assert_uint_eq(info.start_offset, 6);
	/* Held at the very start: nothing more goes. */
	partition_hold_retention(p, 6);
	ck_assert_int_eq(partition_apply_retention(p, 1000000), 0);
	partition_hold_retention(p, PARTITION_NO_HOLD);
	ck_assert_int_eq(partition_apply_retention(p, 1000000), 3);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_retention_age)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint32_t i;

	p = aged_partition(dfd, &cfg, &m);
	/* one segment per second: segment i holds messages of t=i*1000 and
	 * i*1000+500 */
	for (i = 0; i < 6; i++) {
		append_lines(p, &m, 2 * i + 1, 3, 10, 50, 10000 + i * 1000);
		append_lines(p, &m, 2 * i + 2, 3, 10, 50,
			     10000 + i * 1000 + 500);
	}
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 6);
	/* now 14000: newest of segment i is 10500 + 1000 i; older than
	 * 2500 ms means 10500 + 1000 i < 11500: only segment 0 */
	ck_assert_int_eq(partition_apply_retention(p, 14000), 1);
	m.start_byte = m.seg[1];
	m.start_off = model_msg_at(&m, m.seg[1]);
	check_inv(p, &m);
	ck_assert_int_eq(partition_apply_retention(p, 14000), 0);
	/* far future: every sealed segment goes, never the active one */
	ck_assert_int_eq(partition_apply_retention(p, 1000000), 4);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 1);
	m.start_byte = m.seg[5];
	m.start_off = model_msg_at(&m, m.seg[5]);
	check_inv(p, &m);
	ck_assert_int_eq(partition_time_to_offset(p, 0, &info.start_offset,
						  &info.start_byte),
			 0);
	ck_assert_uint_eq(info.start_offset, m.start_off);
	reopen(dfd, &p, &cfg, 1000000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_delete_before)
{
	char path[4096], dir[4200];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t mid, o;
	uint32_t i;

	cfg_init(&cfg);
	cfg.segment_bytes = 8000;
	model_init(&m);
	snprintf(dir, sizeof(dir), "%s/p", path);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 30; i++)
		append_lines(p, &m, i + 3, 6, 50, 400, 1000 + i);
	ck_assert_uint_ge(m.nseg, 6);
	/* below the start: nothing */
	ck_assert_int_eq(partition_delete_before(p, 0), 0);
	check_inv(p, &m);
	/* exactly at a segment boundary: the segment before goes */
	ck_assert_int_eq(partition_delete_before(p, m.seg[1]), 1);
	m.start_byte = m.seg[1];
	m.start_off = model_msg_at(&m, m.seg[1]);
	check_inv(p, &m);
	ck_assert_int_eq(count_files(dir, ".log"), (int)m.nseg - 1);
	/* inside a message of segment 2: start moves to that message, the
	 * segment stays (its later messages are kept) */
	o = model_msg_at(&m, m.seg[2]) + 3;
	mid = m.msg[o] + 2;
	ck_assert_int_eq(partition_delete_before(p, mid), 1);
	m.start_byte = m.msg[o];
	m.start_off = o;
	check_inv(p, &m);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, m.nseg - 2);
	/* at a message boundary: that message is the first kept */
	ck_assert_int_eq(partition_delete_before(p, m.msg[o + 1]), 0);
	m.start_byte = m.msg[o + 1];
	m.start_off = o + 1;
	check_inv(p, &m);
	reopen(dfd, &p, &cfg, 5000);
	check_inv(p, &m);
	/* past the end: everything but the active segment goes; the log
	 * is empty from the end on and appends carry on */
	ck_assert_int_eq(partition_delete_before(p, m.end + 100),
			 (int)m.nseg - 3);
	m.start_byte = m.end;
	m.start_off = m.nmsg;
	check_inv(p, &m);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, 1);
	ck_assert_int_eq(info.first_ts, -1);
	append_lines(p, &m, 77, 3, 5, 9, 9000);
	check_inv(p, &m);
	reopen(dfd, &p, &cfg, 9000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_set_start_byte)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition *p;
	struct config cfg;
	struct model m;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	ck_assert_int_eq(partition_set_start_byte(p, 5), 0);
	ck_assert_int_eq(partition_set_start_byte(p, 100000), 0);
	m.data = calloc(1, 100000);
	m.cap = 100000;
	m.end = 100000;
	m.start_byte = 100000;
	check_inv(p, &m);
	append_lines(p, &m, 1, 20, 10, 300, 1000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_set_start_byte(p, 0), -EPERM);
	reopen(dfd, &p, &cfg, 2000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	/* an empty reopened partition keeps its start too */
	ck_assert_int_eq(partition_create(dfd, "q", &cfg, 0, &p), 0);
	ck_assert_int_eq(partition_set_start_byte(p, 4096), 0);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(partition_open(dfd, "q", &cfg, 0, &p, NULL), 0);
	{
		struct partition_info info;

		partition_get_info(p, &info);
		ck_assert_uint_eq(info.start_byte, 4096);
		ck_assert_uint_eq(info.end_byte, 4096);
		ck_assert_uint_eq(info.next_offset, 0);
	}
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* Every range, read with pread, must give the model's bytes. */
static uint64_t check_ranges(const struct model *m, uint64_t pos,
			     const struct partition_range *r, int k)
{
	unsigned char *buf;
	int i;

	for (i = 0; i < k; i++) {
		buf = malloc(r[i].len + 1);
		if (r[i].fd < 0) {
			ck_assert_uint_le(pos + r[i].len, m->start_byte);
		} else {
			ck_assert_int_eq(pread(r[i].fd, buf, r[i].len,
					       (off_t)r[i].file_pos),
					 (ssize_t)r[i].len);
			ck_assert_mem_eq(buf, m->data + pos, r[i].len);
		}
		pos += r[i].len;
		free(buf);
	}
	return pos;
}

START_TEST(test_read_ranges)
{
	char path[4096];
	int dfd = test_tmpdir(path), k;
	struct partition_range r[64];
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t o, reads, bytes;
	unsigned char *copy;
	uint32_t i;

	cfg_init(&cfg);
	cfg.segment_bytes = 8000;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 30; i++)
		append_lines(p, &m, i + 3, 6, 50, 400, 1000 + i);
	ck_assert_uint_ge(m.nseg, 6);
	/* a hole up to a message inside segment 1 */
	o = model_msg_at(&m, m.seg[1]) + 2;
	ck_assert_int_eq(partition_delete_before(p, m.msg[o]), 1);
	m.start_byte = m.msg[o];
	m.start_off = o;
	k = partition_read_ranges(p, 0, m.end + 100, r, 64);
	ck_assert_int_eq(k, (int)m.nseg); /* hole + one per segment left */
	ck_assert_int_eq(r[0].fd, -1);
	ck_assert_uint_eq(r[0].len, m.start_byte);
	ck_assert_uint_eq(check_ranges(&m, 0, r, k), m.end);
	/* pinned: retention may remove the segments, the descriptors stay
	 * readable until done */
	ck_assert_int_eq(partition_delete_before(p, m.seg[4]), 3);
	ck_assert_uint_eq(check_ranges(&m, 0, r, k), m.end);
	partition_read_ranges_done(p);
	m.start_byte = m.seg[4];
	m.start_off = model_msg_at(&m, m.seg[4]);
	check_inv(p, &m);
	/* a range count limit and a start in the middle */
	k = partition_read_ranges(p, m.seg[4] + 5, 100, r, 1);
	ck_assert_int_eq(k, 1);
	ck_assert_uint_eq(r[0].len, 100);
	ck_assert_uint_eq(check_ranges(&m, m.seg[4] + 5, r, k), m.seg[4] + 105);
	partition_read_ranges_done(p);
	/* at the end: nothing */
	ck_assert_int_eq(partition_read_ranges(p, m.end, 10, r, 4), 0);
	partition_read_ranges_done(p);
	/* compressed segments cannot be ranges: stop before them */
	cfg.compression = COMPRESSION_LZ4;
	ck_assert_int_eq(partition_set_config(p, &cfg), 0);
	ck_assert_int_eq(partition_compress_one(p), 1);
	reads = metrics_get(partition_metrics(p), reads);
	bytes = metrics_get(partition_metrics(p), bytes_read);
	k = partition_read_ranges(p, 0, m.end, r, 64);
	ck_assert_int_eq(k, 2); /* the hole, then "copy the rest" */
	ck_assert_int_eq(r[0].fd, -1);
	ck_assert_uint_eq(r[0].len, m.start_byte);
	ck_assert_int_eq(r[1].fd, PARTITION_RANGE_COPY);
	ck_assert_uint_eq(r[1].len, m.end - m.start_byte);
	copy = malloc(r[1].len);
	ck_assert_int_eq(partition_read_rest(p, r[0].len, copy, r[1].len),
			 (ssize_t)r[1].len);
	ck_assert_mem_eq(copy, m.data + r[0].len, r[1].len);
	free(copy);
	/* one read, of every byte once */
	ck_assert_uint_eq(metrics_get(partition_metrics(p), reads), reads + 1);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), bytes_read),
			  bytes + m.end);
	partition_read_ranges_done(p);
	/* no room for the marker: the ranges just stop */
	k = partition_read_ranges(p, 0, m.end, r, 1);
	ck_assert_int_eq(k, 1);
	ck_assert_int_eq(r[0].fd, -1);
	partition_read_ranges_done(p);
	k = partition_read_ranges(p, m.seg[5], m.end - m.seg[5], r, 64);
	ck_assert_int_ge(k, 1);
	ck_assert_uint_eq(check_ranges(&m, m.seg[5], r, k), m.end);
	partition_read_ranges_done(p);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

static const enum compression codecs[] = {COMPRESSION_LZ4, COMPRESSION_GZIP,
					  COMPRESSION_ZSTD};

START_TEST(test_compression)
{
	char path[4096], dir[4200], cmd[9000], f[4300];
	int dfd = test_tmpdir(path);
	enum compression c = codecs[_i];
	struct partition_info info;
	const char *tool;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t seed = 5, pos, b;
	unsigned char buf[1000];
	uint32_t i, k, done = 0;
	int ret;

	cfg_init(&cfg);
	cfg.segment_bytes = 600 << 10;
	cfg.compression = c;
	model_init(&m);
	snprintf(dir, sizeof(dir), "%s/p", path);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 40; i++)
		append_lines(p, &m, i + 1, 200, 20, 300, 1000 + i);
	ck_assert_uint_ge(m.nseg, 3);
	while ((ret = partition_compress_one(p)) == 1) {
		done++;
		check_inv(p, &m);
	}
	ck_assert_int_eq(ret, 0);
	ck_assert_uint_eq(done, m.nseg - 1);
	ck_assert_int_eq(count_files(dir, ".log"), 1);
	ck_assert_int_eq(count_files(dir, layout_data_suffix(c)), (int)m.nseg - 1);
	ck_assert_int_eq(count_files(dir, ".blk"), (int)m.nseg - 1);
	partition_get_info(p, &info);
	/* random letters: entropy coding (zlib's, zstd's) shrinks them, lz4
	 * need not */
	if (c != COMPRESSION_LZ4)
		ck_assert_uint_lt(info.disk_bytes, m.end);
	/* random reads straddling block boundaries */
	for (k = 0; k < 300; k++) {
		uint32_t s = 1 + (uint32_t)(test_rand(&seed) % (m.nseg - 2));
		uint64_t blk = CODEC_BLOCK_BYTES * (1 + test_rand(&seed) % 4);

		pos = m.seg[s - 1] + blk - 500 + test_rand(&seed) % 400;
		if (pos + sizeof(buf) > m.end)
			continue;
		ck_assert_int_eq(partition_read(p, pos, buf, sizeof(buf)),
				 (ssize_t)sizeof(buf));
		ck_assert_mem_eq(buf, m.data + pos, sizeof(buf));
		ck_assert_int_eq(partition_byte_to_offset(p, pos, &b, &b), 0);
	}
	/* the compressed file is a standard stream */
	snprintf(f, sizeof(f), "%s/00000000000000000000%s", dir,
		 layout_data_suffix(c));
	tool = c == COMPRESSION_LZ4 ? "lz4cat"
	       : c == COMPRESSION_ZSTD ? "zstdcat"
				       : "zcat";
	snprintf(cmd, sizeof(cmd),
		 "%s < '%s' 2>/dev/null | cmp -s - '%s/seg0.raw'", tool, f,
		 path);
	{
		char raw[4300];
		FILE *out;

		snprintf(raw, sizeof(raw), "%s/seg0.raw", path);
		out = fopen(raw, "w");
		ck_assert_ptr_nonnull(out);
		fwrite(m.data, 1, m.seg[1], out);
		fclose(out);
	}
	snprintf(f, sizeof(f), "command -v %s >/dev/null", tool);
	if (system(f) == 0)
		ck_assert_int_eq(system(cmd), 0);
	reopen(dfd, &p, &cfg, 5000);
	check_inv(p, &m);
	/* retention removes compressed segments like raw ones */
	ck_assert_int_eq(partition_delete_before(p, m.seg[1]), 1);
	m.start_byte = m.seg[1];
	m.start_off = model_msg_at(&m, m.seg[1]);
	check_inv(p, &m);
	ck_assert_int_eq(count_files(dir, ".blk"), (int)m.nseg - 2);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Concurrency                                                          */

struct race {
	struct partition *p;
	const unsigned char *want; /* every byte the writer will append */
	uint64_t total;
	atomic_int stop;
	atomic_ulong reads;
	atomic_int bad;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	unsigned char *buf = malloc(1 << 20);
	struct partition_info info;
	uint64_t pos = 0, seed = (uint64_t)(uintptr_t)&pos, b, o, s;
	ssize_t n;

	while (!atomic_load(&r->stop)) {
		partition_get_info(r->p, &info);
		/* half the time read from a random place, else at the
		 * last known end with a large buffer */
		pos = test_rand(&seed) & 1
			      ? info.end_byte
			      : (info.end_byte
					 ? test_rand(&seed) % info.end_byte
					 : 0);
		n = partition_read(r->p, pos, buf, 1 << 20);
		/* only published bytes, exactly as written ... */
		if (n < 0 || (uint64_t)n + pos > r->total ||
		    memcmp(buf, r->want + pos, (size_t)n)) {
			atomic_store(&r->bad, 1);
			break;
		}
		/* ... and a short read stops at a batch boundary */
		if (n > 0 && n < (1 << 20) &&
		    r->want[pos + (uint64_t)n - 1] != '\n') {
			atomic_store(&r->bad, 2);
			break;
		}
		if (info.next_offset > 0) {
			o = test_rand(&seed) % info.next_offset;
			if (partition_offset_to_byte(r->p, o, &b) < 0 ||
			    (b > 0 && r->want[b - 1] != '\n') ||
			    partition_byte_to_offset(r->p, b, &o, &s) < 0 ||
			    s != b) {
				atomic_store(&r->bad, 3);
				break;
			}
		}
		atomic_fetch_add(&r->reads, 1);
	}
	free(buf);
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct config cfg;
	struct race r;
	pthread_t th[3];
	size_t len, at = 0, bl;
	uint64_t seed = 3;
	unsigned appends = 0;
	char *all;
	int i;

	cfg_init(&cfg);
	cfg.segment_bytes = 256 << 10;
	all = test_make_lines(21, 40000, 10, 200, &len);
	memset(&r, 0, sizeof(r));
	r.want = (unsigned char *)all;
	r.total = len;
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &r.p), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &r), 0);
	while (at < len && !atomic_load(&r.bad)) {
		const char *nl;
		uint32_t cnt = 0;

		bl = 1 + test_rand(&seed) % 20000;
		if (at + bl > len)
			bl = len - at;
		/* cut at a line end */
		nl = memchr(all + at + bl - 1, '\n', len - at - bl + 1);
		bl = (size_t)(nl - (all + at)) + 1;
		for (nl = all + at; nl < all + at + bl; nl++)
			cnt += *nl == '\n';
		ck_assert_int_eq(partition_append(r.p, all + at, bl, cnt, 1000,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
		at += bl;
		if (test_rand(&seed) % 50 == 0)
			ck_assert_int_eq(partition_apply_retention(r.p, 1000),
					 0);
		/* On a loaded machine (or under valgrind) the writer can
		 * finish before a reader ever runs, and the race is not
		 * tested: every 16 appends, wait for a read to complete. */
		if (++appends % 16 == 0) {
			unsigned long seen = atomic_load(&r.reads);
			int waited = 0;

			while (atomic_load(&r.reads) == seen &&
			       !atomic_load(&r.bad) && waited++ < 10000)
				usleep(1000);
			ck_assert_uint_ne(atomic_load(&r.reads), seen);
		}
	}
	atomic_store(&r.stop, 1);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&r.bad), 0);
	ck_assert_uint_gt(atomic_load(&r.reads), 10);
	ck_assert_int_eq(partition_close(r.p), 0);
	free(all);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_flush_and_tick)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	struct partition_tick_report rep;

	cfg_init(&cfg);
	cfg.flush_ms = 1000;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	append_lines(p, &m, 1, 10, 10, 100, 100);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, 0);
	ck_assert_int_eq(partition_tick(p, 500, &rep), 0);
	ck_assert_int_eq(rep.flushed, 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, 0);
	ck_assert_int_eq(partition_tick(p, 1000, &rep), 0);
	ck_assert_int_eq(rep.flushed, 1);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), flushes), 1);
	append_lines(p, &m, 2, 10, 10, 100, 1100);
	ck_assert_int_eq(partition_flush(p), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	/* flush_ms = 0: every append is durable before it returns */
	cfg.flush_ms = 0;
	ck_assert_int_eq(partition_set_config(p, &cfg), 0);
	append_lines(p, &m, 3, 10, 10, 100, 1200);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A slow disk: an armed sync call stalls until the test releases it.
 * A test that stalls a flush and then waits for it would wait forever;
 * after 10 s the stall gives up and says so (sync_timed_out), so "the
 * appends went on while the flush stalled" is checked by the order of
 * events, not by a time that a loaded machine can exceed. */
static atomic_int sync_armed, sync_entered, sync_calls;
static atomic_int sync_release, sync_timed_out;

static void stall(void)
{
	int waited;

	atomic_store(&sync_entered, 1);
	for (waited = 0; !atomic_load(&sync_release); waited++) {
		if (waited == 10000) {
			atomic_store(&sync_timed_out, 1);
			break;
		}
		usleep(1000);
	}
}

static int slow_fdatasync(int fd)
{
	atomic_fetch_add(&sync_calls, 1);
	if (atomic_exchange(&sync_armed, 0))
		stall();
	return io_ops_default()->fdatasync(fd);
}

/* The state file's fsync (data goes through fdatasync). */
static int slow_fsync(int fd)
{
	if (atomic_exchange(&sync_armed, 0))
		stall();
	return io_ops_default()->fsync(fd);
}

static void *flush_thread(void *arg)
{
	return (void *)(intptr_t)partition_flush(arg);
}

/* Install ops, arm its slow sync and start a flush on another thread;
 * return once the flush is inside the slow call. */
static void start_stalled_flush(struct partition *p, const struct io_ops *ops,
				pthread_t *th)
{
	io_ops_set(ops);
	atomic_store(&sync_release, 0);
	atomic_store(&sync_timed_out, 0);
	atomic_store(&sync_armed, 1);
	atomic_store(&sync_entered, 0);
	ck_assert_int_eq(pthread_create(th, NULL, flush_thread, p), 0);
	while (!atomic_load(&sync_entered))
		usleep(1000);
}

/* A flush waits for the disk without the partition's lock: appends (and
 * rolls) go on meanwhile.  The flush makes durable what was there when it
 * began, no more; the segment that was active then is synced again by the
 * next flush, as are the segments rolled during the first. */
START_TEST(test_flush_does_not_block_appends)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct io_ops ops = *io_ops_default();
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t flushed_at;
	pthread_t th;
	void *res;
	int i;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	append_lines(p, &m, 1, 1000, 50, 150, 100);
	flushed_at = m.end;
	ops.fdatasync = slow_fdatasync;
	start_stalled_flush(p, &ops, &th);
	/* 2 MiB in 1 MiB segments: rolls while the flush waits */
	for (i = 0; i < 20; i++)
		append_lines(p, &m, 10 + (uint64_t)i, 1000, 50, 150, 200);
	ck_assert_msg(!atomic_load(&sync_timed_out),
		      "appends waited for a stalled flush");
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, 0); /* still waiting */
	ck_assert_uint_ge(info.segments, 3);
	atomic_store(&sync_release, 1);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_int_eq((int)(intptr_t)res, 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, flushed_at);
	/* every segment is unsynced now, the formerly active one too */
	atomic_store(&sync_calls, 0);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_int_eq(atomic_load(&sync_calls), 2 * (int)info.segments);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	atomic_store(&sync_calls, 0);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_int_eq(atomic_load(&sync_calls), 0); /* nothing new */
	/* The state file's write and fsync do not hold appends either. */
	append_lines(p, &m, 40, 1000, 50, 150, 250);
	ops.fdatasync = io_ops_default()->fdatasync;
	ops.fsync = slow_fsync;
	start_stalled_flush(p, &ops, &th);
	append_lines(p, &m, 41, 1000, 50, 150, 260);
	ck_assert_msg(!atomic_load(&sync_timed_out),
		      "an append waited for the state file's stalled fsync");
	atomic_store(&sync_release, 1);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_int_eq((int)(intptr_t)res, 0);
	io_ops_set(NULL);
	reopen(dfd, &p, &cfg, 300);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* Every fdatasync but the test thread's own stalls while armed: a flush
 * on another thread is held in both of a segment's syncs (the .idx's
 * runs on the sync helper) while the test goes on. */
static pthread_t test_thread;

static int stall_others_fdatasync(int fd)
{
	if (atomic_load(&sync_armed) &&
	    !pthread_equal(pthread_self(), test_thread))
		stall();
	return io_ops_default()->fdatasync(fd);
}

/* Compression may finish a segment that a flush is syncing without the
 * partition's lock: the segment's descriptors, its .idx's too, stay
 * open until the flush is done with them, and the flush succeeds (it
 * failed with EBADF when the .idx was closed at once). */
START_TEST(test_compress_during_flush)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct io_ops ops = *io_ops_default();
	struct partition *p;
	struct config cfg;
	struct model m;
	pthread_t th;
	void *res;

	cfg_init(&cfg);
	cfg.segment_bytes = 64 << 10;
	cfg.compression = COMPRESSION_LZ4;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	append_lines(p, &m, 1, 1000, 50, 150, 100);
	append_lines(p, &m, 2, 1000, 50, 150, 110);
	ck_assert_uint_ge(m.nseg, 2);
	ops.fdatasync = stall_others_fdatasync;
	test_thread = pthread_self();
	start_stalled_flush(p, &ops, &th);
	ck_assert_int_eq(partition_compress_one(p), 1);
	atomic_store(&sync_release, 1);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	atomic_store(&sync_armed, 0);
	io_ops_set(NULL);
	ck_assert_msg(!atomic_load(&sync_timed_out), "the flush never stalled");
	ck_assert_int_eq((int)(intptr_t)res, 0);
	check_inv(p, &m);
	ck_assert_int_eq(partition_flush(p), 0);
	reopen(dfd, &p, &cfg, 300);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A partition being deleted is released without syncing its data (rm of
 * a 1 GiB partition waited 0.5 s for an fdatasync); one being closed is
 * synced. */
START_TEST(test_discard_does_not_sync)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct io_ops ops = *io_ops_default();
	struct partition *p;
	struct config cfg;
	struct model m;

	cfg_init(&cfg);
	model_init(&m);
	ops.fdatasync = slow_fdatasync; /* counts; not armed: not slow */
	io_ops_set(&ops);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	append_lines(p, &m, 1, 1000, 50, 150, 100);
	atomic_store(&sync_calls, 0);
	partition_discard(p);
	ck_assert_int_eq(atomic_load(&sync_calls), 0);
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 200, &p, NULL), 0);
	append_lines(p, &m, 2, 10, 50, 150, 300);
	atomic_store(&sync_calls, 0);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_gt(atomic_load(&sync_calls), 0);
	io_ops_set(NULL);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A batch in pieces (a held partial line, then the write completing it)
 * is stored exactly like the joined bytes; with PARTITION_ANY_COUNT the
 * engine counts the lines; an explicit count must still match. */
START_TEST(test_appendv)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition *p;
	struct config cfg;
	struct model m;
	struct iovec v[3];
	uint64_t rnd = 3, first, pos;
	size_t len, c1, c2, i, nl;
	char *b;
	int k;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (k = 0; k < 30; k++) {
		b = test_make_lines(k + 7, 1 + k * 9, 1, k % 3 ? 500 : 6000, &len);
		c1 = test_rand(&rnd) % (len + 1);
		c2 = c1 + test_rand(&rnd) % (len - c1 + 1);
		v[0].iov_base = b;
		v[0].iov_len = c1;
		v[1].iov_base = b + c1;
		v[1].iov_len = c2 - c1;
		v[2].iov_base = b + c2;
		v[2].iov_len = len - c2;
		for (i = 0, nl = 0; i < len; i++)
			nl += b[i] == '\n';
		/* a wrong explicit count is refused and stores nothing */
		ck_assert_int_eq(partition_appendv(p, v, 3, (uint32_t)nl + 1,
						   100, PARTITION_ANY_END, NULL,
						   NULL),
				 -EINVAL);
		check_inv(p, &m);
		if (k % 2 == 0)
			v[1].iov_len = len - c1; /* two pieces, counted */
		ck_assert_int_eq(partition_appendv(p, v, k % 2 ? 3 : 2,
						   k % 2 ? PARTITION_ANY_COUNT
							 : (uint32_t)nl,
						   100, PARTITION_ANY_END,
						   &first, &pos),
				 0);
		ck_assert_uint_eq(first, m.nmsg);
		ck_assert_uint_eq(pos, m.end);
		model_append(&m, b, len);
		check_inv(p, &m);
		free(b);
	}
	/* a batch without a final newline counts its open line */
	b = strdup("x\nyz");
	v[0].iov_base = b;
	v[0].iov_len = 3;
	v[1].iov_base = b + 3;
	v[1].iov_len = 1;
	ck_assert_int_eq(partition_appendv(p, v, 2, PARTITION_ANY_COUNT, 100,
					   PARTITION_ANY_END, &first, NULL),
			 0);
	model_append(&m, "x\nyz", 4);
	free(b);
	check_inv(p, &m);
	/* the contiguous form keeps its promise that the caller counted */
	ck_assert_int_eq(partition_append(p, "a\n", 2, PARTITION_ANY_COUNT, 100,
					  PARTITION_ANY_END, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(partition_appendv(p, v, 0, PARTITION_ANY_COUNT, 100,
					   PARTITION_ANY_END, NULL, NULL),
			 -EINVAL);
	reopen(dfd, &p, &cfg, 3000);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* Injected disk failures: the next armed call of a kind fails once with
 * the chosen errno, the rest pass through. */
static atomic_int fail_pwrite, fail_fdatasync_at;
static int fail_errno;

static ssize_t failing_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (atomic_exchange(&fail_pwrite, 0)) {
		errno = fail_errno;
		return -1;
	}
	return io_ops_default()->pwrite(fd, buf, len, off);
}

/* Fails the next fdatasync of a .log (fail_fdatasync_at 1) or of an .idx
 * (2) from when it was armed: a flush syncs a segment's two files side
 * by side, so which comes first is not known. */
static int failing_fdatasync(int fd)
{
	int at = atomic_load(&fail_fdatasync_at);

	if (at && test_fd_is(fd, at == 1 ? ".log" : ".idx") &&
	    atomic_compare_exchange_strong(&fail_fdatasync_at, &at, 0)) {
		errno = fail_errno;
		return -1;
	}
	return io_ops_default()->fdatasync(fd);
}

static void faults_on(struct io_ops *ops)
{
	*ops = *io_ops_default();
	ops->pwrite = failing_pwrite;
	ops->fdatasync = failing_fdatasync;
	atomic_store(&fail_pwrite, 0);
	atomic_store(&fail_fdatasync_at, 0);
	io_ops_set(ops);
}

/* The next this many ftruncates fail (EIO). */
static atomic_int fail_ftruncate;

static int failing_ftruncate(int fd, off_t len)
{
	if (atomic_load(&fail_ftruncate) > 0) {
		atomic_fetch_sub(&fail_ftruncate, 1);
		errno = EIO;
		return -1;
	}
	return io_ops_default()->ftruncate(fd, len);
}

/* A failed append whose cut-back fails too leaves its bytes and index
 * entries (good CRCs) past the end.  They are cut before the next append:
 * a shorter one would otherwise leave the failed one's later entries
 * after its own, and once a roll sealed the segment it claimed offsets
 * the next segment holds (a fault test's remount found it "overlapping
 * the one before it" and skipped it). */
/* On a flush_ms=0 partition with faults on (ftruncate too): 50 lines,
 * then ~45 KiB in several index entries whose .log sync fails and whose
 * two cut-backs fail as well.  The model has the 50 lines only. */
static void append_then_fail_cut_back(struct partition *p, struct model *m,
				      struct io_ops *ops)
{
	size_t len;
	char *b;

	faults_on(ops);
	ops->ftruncate = failing_ftruncate;
	io_ops_set(ops);
	append_lines(p, m, 1, 50, 10, 100, 100);
	b = test_make_lines(2, 600, 50, 100, &len);
	fail_errno = EIO;
	atomic_store(&fail_fdatasync_at, 1);
	atomic_store(&fail_ftruncate, 2);
	ck_assert_int_lt(partition_append(p, b, len, 600, 200,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
	free(b);
	ck_assert_int_eq(atomic_load(&fail_ftruncate), 0);
}

START_TEST(test_failed_cut_back_is_cut_before_more)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	struct model m;

	cfg_init(&cfg);
	cfg.flush_ms = 0; /* each append synced, in the append */
	cfg.segment_bytes = 64 << 10;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	append_then_fail_cut_back(p, &m, &ops);
	/* one short line, then enough to roll the segment */
	append_lines(p, &m, 3, 1, 10, 20, 300);
	append_lines(p, &m, 4, 800, 60, 100, 400);
	check_inv(p, &m);
	io_ops_set(NULL);
	reopen(dfd, &p, &cfg, 500);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* The same double failure, then a close at once: the failed batch (whole,
 * synced but for its .log's sync) is not served after the reopen. */
START_TEST(test_failed_cut_back_then_close)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_recovery rec;
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	struct model m;

	cfg_init(&cfg);
	cfg.flush_ms = 0;
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	append_then_fail_cut_back(p, &m, &ops);
	io_ops_set(NULL);
	partition_close(p);
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 300, &p, &rec), 0);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A full disk while partition.state.tmp is written (ext4's delayed
 * allocation makes that the first write to fail) is not a data loss: the
 * data was synced; the flush fails with ENOSPC, the next one writes the
 * state again and succeeds, and nothing is reported lost. */
START_TEST(test_state_enospc_retried)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_loss loss;
	struct partition_info info;
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	struct model m;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	faults_on(&ops);
	append_lines(p, &m, 1, 100, 10, 100, 100);
	fail_errno = ENOSPC;
	atomic_store(&fail_pwrite, 1);
	ck_assert_int_eq(partition_flush(p), -ENOSPC);
	ck_assert_int_eq(atomic_load(&fail_pwrite), 0); /* it was the state */
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end); /* the data is synced */
	/* space is back: the state is written again, nothing was lost */
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_uint_eq(partition_losses(p), 0);
	ck_assert_int_eq(partition_lost(p, 0, UINT64_MAX, &loss), 0);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), lost_bytes), 0);
	/* and the partition keeps serving: appends, ticks, flushes */
	append_lines(p, &m, 2, 100, 10, 100, 200);
	ck_assert_int_eq(partition_tick(p, 5000, NULL), 0);
	ck_assert_int_eq(partition_flush(p), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	check_inv(p, &m);
	io_ops_set(NULL);
	reopen(dfd, &p, &cfg, 300);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* Faults armed (none yet): A flushed (ending at *a_end, message
 * *a_msgs), then B appended and not flushed. */
static void flushed_then_more(int dfd, struct config *cfg,
			      struct partition **p, struct model *m,
			      struct io_ops *ops, uint64_t *a_end,
			      uint64_t *a_msgs)
{
	cfg_init(cfg);
	model_init(m);
	ck_assert_int_eq(partition_create(dfd, "p", cfg, 0, p), 0);
	faults_on(ops);
	append_lines(*p, m, 1, 100, 10, 100, 100);
	ck_assert_int_eq(partition_flush(*p), 0);
	*a_end = m->end;
	*a_msgs = m->nmsg;
	append_lines(*p, m, 2, 50, 10, 100, 110);
}

/* A failed fdatasync of a .log: the kernel may have dropped the pages, so
 * the range that flush covered is reported lost, exactly that range, once;
 * that flush fails with EIO, and the partition is back in service at the
 * next flush (no reopen), later appends made durable as usual. */
START_TEST(test_data_eio_reported_once)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_loss loss;
	struct partition_info info;
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	struct model m;
	uint64_t a_end, b_end, a_msgs, b_msgs;

	flushed_then_more(dfd, &cfg, &p, &m, &ops, &a_end, &a_msgs);
	append_lines(p, &m, 3, 50, 10, 100, 120);
	b_end = m.end;
	b_msgs = m.nmsg;
	fail_errno = EIO;
	atomic_store(&fail_fdatasync_at, 1);
	ck_assert_int_eq(partition_flush(p), -EIO);
	ck_assert_uint_eq(partition_losses(p), 1);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), data_losses), 1);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), lost_bytes),
			  b_end - a_end);
	/* exactly what the failed flush covered */
	ck_assert_int_eq(partition_lost(p, 0, UINT64_MAX, &loss), 1);
	ck_assert_uint_eq(loss.from_byte, a_end);
	ck_assert_uint_eq(loss.to_byte, b_end);
	ck_assert_uint_eq(loss.from_offset, a_msgs);
	ck_assert_uint_eq(loss.to_offset, b_msgs);
	ck_assert_int_eq(partition_lost(p, 0, a_end, &loss), 0);
	ck_assert_int_eq(partition_lost(p, a_end, a_end + 1, &loss), 1);
	ck_assert_int_eq(partition_lost(p, b_end - 1, b_end, &loss), 1);
	ck_assert_int_eq(partition_lost(p, b_end, UINT64_MAX, &loss), 0);
	/* reported once: the next flush succeeds, so do later ones */
	ck_assert_int_eq(partition_flush(p), 0);
	append_lines(p, &m, 4, 50, 10, 100, 130); /* C: after the loss */
	ck_assert_int_eq(partition_tick(p, 5000, NULL), 0);
	ck_assert_int_eq(partition_flush(p), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	ck_assert_uint_eq(partition_losses(p), 1);
	ck_assert_int_eq(partition_lost(p, b_end, m.end, &loss), 0);
	ck_assert_int_eq(partition_get_loss(p, 0, &loss), 0);
	ck_assert_uint_eq(loss.from_byte, a_end);
	ck_assert_int_eq(partition_get_loss(p, 1, &loss), -ENOENT);
	check_inv(p, &m);
	io_ops_set(NULL);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A failed append's cut-back syncs the .log (so the cut is durable), and
 * that sync also covers appends not flushed yet.  When it fails, the
 * write-back error is reported to it alone, so the next flush, whose own
 * fdatasync succeeds, must still report those appends lost. */
START_TEST(test_cut_back_sync_failure_is_a_loss)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_loss loss;
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	struct model m;
	uint64_t a_end, a_msgs;
	size_t len;
	char *b;

	flushed_then_more(dfd, &cfg, &p, &m, &ops, &a_end, &a_msgs);
	b = test_make_lines(3, 20, 10, 100, &len);
	fail_errno = EIO;
	atomic_store(&fail_pwrite, 1);	      /* C's write fails, */
	atomic_store(&fail_fdatasync_at, 1); /* and its cut-back's sync */
	ck_assert_int_lt(partition_append(p, b, len, 20, 120,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
	free(b);
	ck_assert_int_eq(atomic_load(&fail_fdatasync_at), 0);
	ck_assert_int_eq(partition_flush(p), -EIO);
	ck_assert_uint_eq(partition_losses(p), 1);
	ck_assert_int_eq(partition_lost(p, 0, UINT64_MAX, &loss), 1);
	ck_assert_uint_eq(loss.from_byte, a_end);
	ck_assert_uint_eq(loss.to_byte, m.end);
	ck_assert_uint_eq(loss.from_offset, a_msgs);
	ck_assert_uint_eq(loss.to_offset, m.nmsg);
	/* the cut is retried and made durable by the next append */
	append_lines(p, &m, 4, 20, 10, 100, 130);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_uint_eq(partition_losses(p), 1);
	io_ops_set(NULL);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A failed fdatasync of an .idx (the .log's went through): the entries are
 * regenerated, not lost; the flush fails, the next one succeeds. */
START_TEST(test_index_sync_failure_retried)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_loss loss;
	struct partition_info info;
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	struct model m;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	faults_on(&ops);
	append_lines(p, &m, 1, 100, 10, 100, 100);
	fail_errno = EIO;
	atomic_store(&fail_fdatasync_at, 2);
	ck_assert_int_lt(partition_flush(p), 0);
	ck_assert_int_eq(atomic_load(&fail_fdatasync_at), 0);
	ck_assert_uint_eq(partition_losses(p), 0);
	ck_assert_int_eq(partition_flush(p), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, m.end);
	ck_assert_uint_eq(partition_losses(p), 0);
	ck_assert_int_eq(partition_lost(p, 0, UINT64_MAX, &loss), 0);
	io_ops_set(NULL);
	reopen(dfd, &p, &cfg, 300);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

static Suite *partition_suite(void)
{
	Suite *s = suite_create("partition");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_append_read);
	tcase_add_test(tc, test_appendv);
	tcase_add_test(tc, test_roll_by_size);
	tcase_add_test(tc, test_roll_by_time);
	tcase_add_test(tc, test_boundaries);
	tcase_add_test(tc, test_retention_bytes);
	tcase_add_test(tc, test_retention_age);
	tcase_add_test(tc, test_retention_hold);
	tcase_add_test(tc, test_next_due);
	tcase_add_test(tc, test_delete_before);
	tcase_add_test(tc, test_set_start_byte);
	tcase_add_test(tc, test_read_ranges);
	tcase_add_loop_test(tc, test_compression, 0, 3);
	tcase_add_test(tc, test_concurrent_readers);
	tcase_add_test(tc, test_flush_and_tick);
	tcase_add_test(tc, test_flush_does_not_block_appends);
	tcase_add_test(tc, test_compress_during_flush);
	tcase_add_test(tc, test_discard_does_not_sync);
	tcase_add_test(tc, test_state_enospc_retried);
	tcase_add_test(tc, test_failed_cut_back_is_cut_before_more);
	tcase_add_test(tc, test_failed_cut_back_then_close);
	tcase_add_test(tc, test_cut_back_sync_failure_is_a_loss);
	tcase_add_test(tc, test_data_eio_reported_once);
	tcase_add_test(tc, test_index_sync_failure_retried);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(partition_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
