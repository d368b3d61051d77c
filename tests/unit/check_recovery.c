/*
 * check_recovery.c - what survives damage and failure: torn .log and .idx
 * tails, an .idx longer than its data, missing indexes, a corrupted sealed
 * batch, a crash in the middle of compression; ENOSPC and EIO injected at
 * every write step (through a private io_ops table); a failed flush
 * reported once, not sticky; a clean open that reads no data; and a crash
 * simulation in the SQLite manner that drops, keeps or garbles unsynced writes,
 * over many seeds, then checks that everything a successful flush acknowledged
 * is intact and nothing partial is visible.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>

#include "testutil.h"
#include "codec.h"
#include "model.h"
#include "partition.h"
#include "segment.h"

/* ------------------------------------------------------------------ */
/* Helpers (the model, with its batch ends, is in model.c)              */

/* test_rmtree without a shell: fork is slow under ASan and these loops
 * make hundreds of directories. */
static void rmtree_fast(int dfd, const char *path)
{
	close(dfd);
	ck_assert_int_eq(io_remove_tree(AT_FDCWD, path), 0);
}

/* 16 KiB segments: small, so that build() makes several and damage can
 * be put in sealed segments as well as the active one. */
static void cfg_init(struct config *c)
{
	model_cfg_init(c, 16 << 10);
}

/* Append nmsg lines; returns the partition's result and mirrors success. */
static int try_append(struct partition *p, struct model *m, uint64_t seed,
		      uint32_t nmsg, size_t min, size_t max, int64_t now)
{
	size_t len;
	char *b = test_make_lines(seed, nmsg, min, max, &len);
	int ret = partition_append(p, b, len, nmsg, now, PARTITION_ANY_END,
				   NULL, NULL);

	if (ret == 0)
		model_append(m, b, len);
	free(b);
	return ret;
}

static void check_inv(struct partition *p, const struct model *m)
{
	struct partition_info info;
	uint64_t o, b, step;
	unsigned char *buf;
	ssize_t n;
	uint64_t i;

	model_check_info(p, m, &info);
	buf = malloc(m->end + 1);
	n = m->end ? partition_read(p, 0, buf, m->end + 1) : 0;
	ck_assert_int_eq(n, (ssize_t)m->end);
	/* one assertion, not one per byte: each ck_assert costs a write */
	for (i = 0; i < m->start_byte && buf[i] == 0; i++)
		;
	ck_assert_uint_eq(i, m->start_byte);
	if (m->end > m->start_byte)
		ck_assert_mem_eq(buf + m->start_byte, m->data + m->start_byte,
				 m->end - m->start_byte);
	free(buf);
	step = (m->nmsg - m->start_off) / 200 + 1;
	for (o = m->start_off; o < m->nmsg; o += step) {
		ck_assert_int_eq(partition_offset_to_byte(p, o, &b), 0);
		ck_assert_uint_eq(b, m->msg[o]);
	}
	ck_assert_int_eq(partition_offset_to_byte(p, m->nmsg, &b), -ENOENT);
}

static void path_of(char *out, size_t size, const char *dir, uint64_t base,
		    const char *sfx)
{
	snprintf(out, size, "%s/p/%020llu%s", dir, (unsigned long long)base,
		 sfx);
}

static off_t file_size(const char *f)
{
	struct stat st;

	ck_assert_int_eq(stat(f, &st), 0);
	return st.st_size;
}

/* A partition with a few sealed segments and an active one, flushed and
 * closed.  seg_first[] gets each segment's first message offset. */
static void build(int dfd, struct model *m, struct config *cfg,
		  uint64_t *seg_first, uint32_t *nseg)
{
	struct partition_info info, before;
	struct partition *p;
	uint32_t i;

	ck_assert_int_eq(partition_create(dfd, "p", cfg, 0, &p), 0);
	*nseg = 1;
	seg_first[0] = 0;
	for (i = 0; i < 24; i++) {
		partition_get_info(p, &before);
		/* every fourth batch is large: several index chunks */
		ck_assert_int_eq(try_append(p, m, i + 1, i % 4 == 3 ? 40 : 5,
					    20, 300, 1000 + i),
				 0);
		partition_get_info(p, &info);
		if (info.segments > before.segments)
			seg_first[(*nseg)++] = before.next_offset;
	}
	ck_assert_uint_ge(*nseg, 3);
	ck_assert_int_eq(partition_close(p), 0);
}

/* What build() made, for the tests that start from it. */
struct built {
	char path[4096];
	int dfd;
	struct config cfg;
	struct model m;
	uint64_t first[64]; /* each segment's first message offset */
	uint32_t nseg;
};

static void built_make(struct built *b)
{
	b->dfd = test_tmpdir(b->path);
	cfg_init(&b->cfg);
	model_init(&b->m);
	build(b->dfd, &b->m, &b->cfg, b->first, &b->nseg);
}

static void built_free(struct built *b)
{
	model_release(&b->m);
	test_rmtree(b->dfd, b->path);
}

static void reopen_check(int dfd, const struct config *cfg,
			 const struct model *m, struct partition_recovery *rec)
{
	struct partition *p;

	ck_assert_int_eq(partition_open(dfd, "p", cfg, 5000, &p, rec), 0);
	check_inv(p, m);
	/* and it still takes appends */
	{
		struct model copy = *m;

		(void)copy;
		ck_assert_int_eq(partition_append(p, "x\n", 2, 1, 6000, m->end,
						  NULL, NULL),
				 0);
	}
	ck_assert_int_eq(partition_close(p), 0);
}

/* ------------------------------------------------------------------ */
/* Damage on disk                                                       */

START_TEST(test_torn_log_tail)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path), fd;
	struct partition_recovery rec;
	uint64_t first[64];
	struct config cfg;
	struct model m;
	uint32_t nseg;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	/* bytes past the last entry: written, never indexed */
	path_of(f, sizeof(f), path, first[nseg - 1], ".log");
	fd = open(f, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "garbage\npartial", 15), 15);
	close(fd);
	reopen_check(dfd, &cfg, &m, &rec);
	ck_assert_uint_eq(rec.truncated_bytes, 15);
	ck_assert_uint_eq(rec.dropped_entries, 0);
	model_append(&m, "x\n", 2);
	/* the last batch cut in half: the whole batch goes */
	ck_assert_int_eq(truncate(f, file_size(f) - 3), 0);
	model_drop(&m, 1);
	model_drop(&m, 1);
	reopen_check(dfd, &cfg, &m, &rec);
	ck_assert_uint_gt(rec.truncated_bytes, 0);
	ck_assert_uint_ge(rec.dropped_entries, 1);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_torn_idx_tail)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path);
	struct partition_recovery rec;
	uint64_t first[64], keep_end;
	struct config cfg;
	struct model m;
	uint32_t nseg;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	/* a final large batch (several chunk entries), then half its last
	 * entry torn off: none of the batch may survive */
	{
		struct partition *p;

		ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL),
				 0);
		keep_end = m.end;
		ck_assert_int_eq(try_append(p, &m, 99, 60, 100, 200, 3000), 0);
		ck_assert_int_eq(partition_close(p), 0);
	}
	path_of(f, sizeof(f), path, first[nseg - 1], ".idx");
	ck_assert_int_eq(truncate(f, file_size(f) - 20), 0);
	model_drop(&m, 1);
	ck_assert_uint_eq(m.end, keep_end);
	reopen_check(dfd, &cfg, &m, &rec);
	ck_assert_uint_gt(rec.truncated_bytes, 60 * 100 - 1);
	ck_assert_uint_ge(rec.dropped_entries, 1);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_idx_longer_than_data)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path);
	struct partition_recovery rec;
	uint64_t first[64], seg_base;
	struct config cfg;
	struct model m;
	uint32_t nseg;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	/* the .log lost its last batch exactly: its entries point past the
	 * data */
	path_of(f, sizeof(f), path, first[nseg - 1], ".log");
	seg_base = m.msg[first[nseg - 1]];
	if (m.bend[m.nb - 2] < seg_base) {
		/* the last batch opened the segment: drop one more */
		ck_abort_msg("layout changed: last segment has one batch");
	}
	ck_assert_int_eq(truncate(f, (off_t)(m.bend[m.nb - 2] - seg_base)), 0);
	model_drop(&m, 1);
	reopen_check(dfd, &cfg, &m, &rec);
	ck_assert_uint_eq(rec.truncated_bytes, 0);
	ck_assert_uint_ge(rec.dropped_entries, 1);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_missing_idx)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path);
	struct partition_recovery rec;
	uint64_t first[64];
	struct config cfg;
	struct model m;
	uint32_t nseg;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	/* the first, a middle and the active segment lose their index; a
	 * fourth gets a damaged header */
	path_of(f, sizeof(f), path, first[0], ".idx");
	ck_assert_int_eq(unlink(f), 0);
	path_of(f, sizeof(f), path, first[1], ".idx");
	ck_assert_int_eq(unlink(f), 0);
	path_of(f, sizeof(f), path, first[nseg - 1], ".idx");
	ck_assert_int_eq(unlink(f), 0);
	path_of(f, sizeof(f), path, first[2], ".idx");
	{
		int fd = open(f, O_WRONLY);

		ck_assert_int_eq(pwrite(fd, "XXXX", 4, 0), 4);
		close(fd);
	}
	reopen_check(dfd, &cfg, &m, &rec);
	ck_assert_uint_eq(rec.rebuilt_indexes, nseg > 3 ? 4 : 3);
	ck_assert_uint_eq(rec.truncated_bytes, 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_corrupt_sealed_batch)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path), fd;
	struct partition_recovery rec;
	struct partition *p;
	uint64_t first[64], bad, b;
	unsigned char buf[64], *all;
	struct config cfg;
	struct model m;
	uint32_t nseg;
	ssize_t n;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	/* flip one byte of message 7 (in the first, sealed segment) */
	bad = m.msg[7] + 2;
	path_of(f, sizeof(f), path, 0, ".log");
	fd = open(f, O_RDWR);
	ck_assert_int_eq(pread(fd, buf, 1, (off_t)bad), 1);
	buf[0] ^= 0x20;
	ck_assert_int_eq(pwrite(fd, buf, 1, (off_t)bad), 1);
	close(fd);
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, &rec), 0);
	/* a clean open does not read data, so it cannot know yet */
	ck_assert_uint_eq(rec.bad_batches + rec.truncated_bytes, 0);
	ck_assert_int_eq(partition_read(p, bad, buf, 10), -EIO);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), crc_failures), 1);
	ck_assert_int_eq(partition_read(p, bad, buf, 10), -EIO);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), crc_failures), 1);
	/* a read running into it fails whole, never short; one that ends
	 * before it reads back */
	all = malloc(m.end);
	ck_assert_int_eq(partition_read(p, 0, all, bad + 1), -EIO);
	n = partition_read(p, 0, buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)sizeof(buf));
	ck_assert_mem_eq(buf, m.data, (size_t)n);
	free(all);
	/* everything after the batch stays readable */
	all = malloc(m.end);
	n = partition_read(p, m.bend[1], all, m.end - m.bend[1]);
	ck_assert_int_eq(n, (ssize_t)(m.end - m.bend[1]));
	ck_assert_mem_eq(all, m.data + m.bend[1], (size_t)n);
	free(all);
	ck_assert_int_eq(partition_offset_to_byte(p, first[1], &b), 0);
	ck_assert_uint_eq(b, m.msg[first[1]]);
	/* compression skips the damaged segment and does the others */
	cfg.compression = COMPRESSION_GZIP;
	ck_assert_int_eq(partition_set_config(p, &cfg), 0);
	ck_assert_int_eq(partition_compress_one(p), 1);
	ck_assert_int_eq(partition_read(p, bad, buf, 10), -EIO);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* A damaged partition.state makes recovery check every entry of every
 * segment: a bad CRC found in a sealed segment then must be kept and
 * reported, never cut with everything after it (damage is reported,
 * never silently dropped). */
START_TEST(test_full_verify_keeps_sealed_damage)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path), fd;
	struct partition_recovery rec;
	struct partition_info before, after;
	struct partition *p;
	uint64_t first[64], bad;
	unsigned char buf[64], *all;
	struct config cfg;
	struct model m;
	uint32_t nseg;
	ssize_t n;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	ck_assert_uint_ge(nseg, 3);
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL), 0);
	partition_get_info(p, &before);
	ck_assert_int_eq(partition_close(p), 0);
	bad = m.msg[7] + 2; /* in the first, sealed segment */
	path_of(f, sizeof(f), path, 0, ".log");
	fd = open(f, O_RDWR);
	ck_assert_int_eq(pread(fd, buf, 1, (off_t)bad), 1);
	buf[0] ^= 0x20;
	ck_assert_int_eq(pwrite(fd, buf, 1, (off_t)bad), 1);
	close(fd);
	snprintf(f, sizeof(f), "%s/p/partition.state", path);
	fd = open(f, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "garbage", 7), 7);
	close(fd);

	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, &rec), 0);
	partition_get_info(p, &after);
	ck_assert_uint_ge(rec.bad_batches, 1);
	ck_assert_uint_eq(rec.truncated_bytes, 0);
	ck_assert_uint_eq(after.segments, before.segments);
	ck_assert_uint_eq(after.next_offset, before.next_offset);
	ck_assert_uint_eq(after.end_byte, before.end_byte);
	ck_assert_uint_ge(metrics_get(partition_metrics(p), crc_failures), 1);
	ck_assert_int_eq(partition_read(p, bad, buf, 10), -EIO);
	/* everything after the damaged batch's segment still reads back */
	all = malloc(m.end);
	n = partition_read(p, m.bend[1], all, m.end - m.bend[1]);
	ck_assert_int_eq(n, (ssize_t)(m.end - m.bend[1]));
	ck_assert_mem_eq(all, m.data + m.bend[1], (size_t)n);
	free(all);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* Flip one bit of index entry k's position in segment base's .idx. */
static void damage_entry_pos(const char *path, uint64_t base, uint32_t k)
{
	char f[4300];
	off_t at = LAYOUT_IDX_HEADER_BYTES + (off_t)k * LAYOUT_ENTRY_BYTES +
		   LAYOUT_ENT_POS + 5;
	unsigned char b;
	int fd;

	path_of(f, sizeof(f), path, base, ".idx");
	fd = open(f, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

/* A damaged index entry below the recovery point (bit rot in a flushed
 * .idx, in a sealed and in the active segment) is not a torn write: the
 * index is rebuilt from the log and nothing is cut.  Accepted as it was,
 * the entry broke the searches: reads missed, and a new append, flushed,
 * did not read back after a reopen (found by fuzz_recovery). */
START_TEST(test_damaged_entry_rebuilds_index)
{
	struct partition_recovery rec;
	struct partition_info info;
	struct partition *p;
	unsigned char buf[16];
	uint64_t at = 0;
	struct built b;

	built_make(&b);
	damage_entry_pos(b.path, b.first[0], 1);
	damage_entry_pos(b.path, b.first[b.nseg - 1], 1);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.rebuilt_indexes, 2);
	ck_assert_uint_eq(rec.truncated_bytes, 0);
	ck_assert_uint_eq(rec.dropped_entries, 0);
	ck_assert_uint_eq(rec.discarded_files, 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.segments, b.nseg);
	check_inv(p, &b.m);
	ck_assert_int_eq(partition_append(p, "after\n", 6, 1, 6000,
					  PARTITION_ANY_END, NULL, &at),
			 0);
	ck_assert_uint_eq(at, b.m.end);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 7000, &p, &rec), 0);
	ck_assert_int_eq(partition_read(p, at, buf, 6), 6);
	ck_assert_mem_eq(buf, "after\n", 6);
	ck_assert_int_eq(partition_close(p), 0);
	built_free(&b);
}
END_TEST

/* A torn index write at the recovery point: the first entry past it is
 * garbage (here: zero position and length, the "last of its write" flag
 * set, its checksum broken), the entries after it are whole.  The search
 * for the first entry above the recovery point must not run over the
 * garbage: it steered the search past itself, the walk then kept it, and
 * the log was cut at the garbage's "end" (found by powerloss.sh, a crash
 * in random mode). */
START_TEST(test_torn_entry_at_recovery_point)
{
	char f[4300], st[4300], saved[4300];
	struct partition_recovery rec;
	struct partition_info info;
	struct partition *p;
	unsigned char raw[LAYOUT_ENTRY_BYTES];
	struct seg_entry e;
	uint64_t rp_end, k;
	struct built b;
	off_t at;
	int fd;

	built_make(&b);
	rp_end = b.m.end;
	snprintf(st, sizeof(st), "%s/p/partition.state", b.path);
	snprintf(saved, sizeof(saved), "%s/state.saved", b.path);
	ck_assert_int_eq(link(st, saved), 0);
	path_of(f, sizeof(f), b.path, b.first[b.nseg - 1], ".idx");
	k = (uint64_t)(file_size(f) - LAYOUT_IDX_HEADER_BYTES) /
	    LAYOUT_ENTRY_BYTES;
	/* Three more writes reach the disk, partition.state does not. */
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, NULL), 0);
	ck_assert_int_eq(try_append(p, &b.m, 71, 3, 20, 100, 6000), 0);
	ck_assert_int_eq(try_append(p, &b.m, 72, 3, 20, 100, 6001), 0);
	ck_assert_int_eq(try_append(p, &b.m, 73, 3, 20, 100, 6002), 0);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(rename(saved, st), 0);
	at = LAYOUT_IDX_HEADER_BYTES + (off_t)(k * LAYOUT_ENTRY_BYTES);
	fd = open(f, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, raw, sizeof(raw), at), (ssize_t)sizeof(raw));
	layout_entry_decode(raw, &e);
	e.pos = 0;
	e.len = 0;
	e.flags |= SEG_F_LAST;
	layout_entry_encode(raw, &e);
	ck_assert_int_eq(pwrite(fd, raw, sizeof(raw), at), (ssize_t)sizeof(raw));
	close(fd);
	model_drop(&b.m, 3);
	ck_assert_uint_eq(b.m.end, rp_end);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 7000, &p, &rec), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.end_byte, rp_end);
	ck_assert_uint_eq(info.segments, b.nseg);
	check_inv(p, &b.m);
	ck_assert_int_eq(partition_close(p), 0);
	built_free(&b);
}
END_TEST

/* A sealed segment holding a message without a newline (a writer that
 * closed mid-line) loses its index.  The rebuild from line ends merges
 * that message with the next one; the next segment's first offset tells
 * how many there were, so nothing after it is cut and every later offset
 * still maps to its message.  Used to discard every later segment. */
START_TEST(test_rebuild_keeps_unterminated_message)
{
	char path[4096], f[4300];
	int dfd = test_tmpdir(path);
	struct partition_recovery rec;
	struct partition_info before, after;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t o, b, seg1 = 0;
	unsigned char *buf;
	uint32_t i;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	ck_assert_int_eq(try_append(p, &m, 1, 10, 20, 100, 1000), 0);
	ck_assert_int_eq(partition_append(p, "no newline", 10, 1, 1001,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
	model_append(&m, "no newline", 10);
	for (i = 0; i < 40; i++) {
		partition_get_info(p, &before);
		ck_assert_int_eq(try_append(p, &m, 2 + i, 10, 20, 300,
					    1002 + i),
				 0);
		partition_get_info(p, &after);
		if (after.segments == 2 && before.segments == 1)
			seg1 = before.next_offset;
	}
	ck_assert_uint_ge(after.segments, 3);
	ck_assert_uint_gt(seg1, 0);
	ck_assert_int_eq(partition_close(p), 0);
	path_of(f, sizeof(f), path, 0, ".idx");
	ck_assert_int_eq(unlink(f), 0);

	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.rebuilt_indexes, 1);
	ck_assert_uint_eq(rec.discarded_files, 0);
	partition_get_info(p, &before);
	ck_assert_uint_eq(before.segments, after.segments);
	ck_assert_uint_eq(before.end_byte, m.end);
	ck_assert_uint_eq(before.next_offset, m.nmsg);
	buf = malloc(m.end);
	ck_assert_int_eq(partition_read(p, 0, buf, m.end), (ssize_t)m.end);
	ck_assert_mem_eq(buf, m.data, m.end);
	free(buf);
	/* offsets before the merge and in every later segment are exact */
	for (o = 0; o < 10; o++) {
		ck_assert_int_eq(partition_offset_to_byte(p, o, &b), 0);
		ck_assert_uint_eq(b, m.msg[o]);
	}
	for (o = seg1; o < m.nmsg; o++) {
		ck_assert_int_eq(partition_offset_to_byte(p, o, &b), 0);
		ck_assert_uint_eq(b, m.msg[o]);
	}
	ck_assert_int_eq(partition_close(p), 0);
	/* the repair is on disk: a second open needs none */
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 6000, &p, &rec), 0);
	ck_assert_uint_eq(rec.rebuilt_indexes + rec.discarded_files, 0);
	partition_get_info(p, &before);
	ck_assert_uint_eq(before.next_offset, m.nmsg);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* The same damage in a compressed segment's index, and an index that
 * is gone: the index is rebuilt from the decoded blocks (a scratch file
 * that does not stay), the partition opens whole and reads back.  The
 * partition used to refuse to open ("has a damaged index"). */
START_TEST(test_damaged_compressed_index_rebuilt)
{
	char f[4300], dir[4200];
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	int round;

	built_make(&b);
	snprintf(dir, sizeof(dir), "%s/p", b.path);
	b.cfg.compression = COMPRESSION_LZ4;
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 0, &p, NULL), 0);
	ck_assert_int_eq(partition_compress_one(p), 1);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(count_files(dir, ".lz4"), 1);
	for (round = 0; round < 2; round++) {
		if (round == 0) {
			damage_entry_pos(b.path, b.first[0], 1);
		} else {
			path_of(f, sizeof(f), b.path, b.first[0], ".idx");
			ck_assert_int_eq(unlink(f), 0);
		}
		ck_assert_int_eq(
			partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
		ck_assert_uint_eq(rec.rebuilt_indexes, 1);
		ck_assert_uint_eq(rec.truncated_bytes, 0);
		ck_assert_uint_eq(rec.discarded_files, 0);
		check_inv(p, &b.m);
		ck_assert_int_eq(partition_close(p), 0);
		ck_assert_int_eq(count_files(dir, ".lz4"), 1);
		ck_assert_int_eq(count_files(dir, ".tmp"), 0);
	}
	built_free(&b);
}
END_TEST

START_TEST(test_crash_mid_compression)
{
	char path[4096], f[4300], g[4300], dir[4200];
	int dfd = test_tmpdir(path), fd;
	struct partition_recovery rec;
	struct partition *p;
	uint64_t first[64];
	struct config cfg;
	struct model m;
	uint32_t nseg;

	cfg_init(&cfg);
	model_init(&m);
	build(dfd, &m, &cfg, first, &nseg);
	snprintf(dir, sizeof(dir), "%s/p", path);
	/* 1: a half-written compressed file left as .tmp */
	path_of(f, sizeof(f), path, 0, ".lz4.tmp");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_eq(write(fd, "\x04\x22\x4d\x18junk", 8), 8);
	close(fd);
	cfg.compression = COMPRESSION_LZ4;
	reopen_check(dfd, &cfg, &m, &rec);
	model_append(&m, "x\n", 2);
	ck_assert_uint_eq(rec.discarded_files, 1);
	ck_assert_int_eq(count_files(dir, ".tmp"), 0);
	/* 2: renamed into place but the raw .log not yet removed: the .log
	 * wins, the compressed copy is discarded */
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL), 0);
	path_of(f, sizeof(f), path, 0, ".log");
	path_of(g, sizeof(g), path, 0, ".keep");
	ck_assert_int_eq(link(f, g), 0);
	ck_assert_int_eq(partition_compress_one(p), 1);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(rename(g, f), 0);
	/* and its block table damaged for good measure */
	path_of(g, sizeof(g), path, 0, ".blk");
	ck_assert_int_eq(truncate(g, 10), 0);
	reopen_check(dfd, &cfg, &m, &rec);
	model_append(&m, "x\n", 2);
	ck_assert_uint_eq(rec.discarded_files, 1);
	ck_assert_int_eq(count_files(dir, ".lz4"), 0);
	ck_assert_int_eq(count_files(dir, ".blk"), 0);
	/* 3: a clean compressed segment reopens as compressed */
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL), 0);
	ck_assert_int_eq(partition_compress_one(p), 1);
	ck_assert_int_eq(partition_close(p), 0);
	reopen_check(dfd, &cfg, &m, &rec);
	ck_assert_uint_eq(rec.discarded_files, 0);
	ck_assert_int_eq(count_files(dir, ".lz4"), 1);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fault injection                                                      */

static struct {
	int fake_sync; /* fsync succeeds without reaching the disk */
	/* write steps seen (atomic: a flush syncs on two threads) */
	_Atomic long calls;
	long fail_at;  /* step that fails, -1 none */
	int persist;   /* every later step fails too (a full disk) */
	int err;
	uint64_t read_bytes;
	int dead; /* crash layer: the process is gone */
} fi;

static int fault(void)
{
	long k = fi.calls++;

	if (fi.dead || (fi.fail_at >= 0 &&
			(k == fi.fail_at || (fi.persist && k > fi.fail_at)))) {
		errno = fi.dead ? EIO : fi.err;
		return 1;
	}
	return 0;
}

static int f_openat(int d, const char *p, int fl, mode_t mo)
{
	if ((fl & O_CREAT) && fault())
		return -1;
	return io_ops_default()->openat(d, p, fl, mo);
}

static ssize_t f_pread(int fd, void *b, size_t l, off_t o)
{
	ssize_t n = io_ops_default()->pread(fd, b, l, o);

	if (n > 0)
		fi.read_bytes += (uint64_t)n;
	return n;
}

static ssize_t f_pwrite(int fd, const void *b, size_t l, off_t o)
{
	return fault() ? -1 : io_ops_default()->pwrite(fd, b, l, o);
}

static ssize_t f_pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	return fault() ? -1 : io_ops_default()->pwritev(fd, v, c, o);
}

static int f_fsync(int fd)
{
	if (fault())
		return -1;
	return fi.fake_sync ? 0 : io_ops_default()->fsync(fd);
}

static int f_fdatasync(int fd)
{
	if (fault())
		return -1;
	return fi.fake_sync ? 0 : io_ops_default()->fdatasync(fd);
}

static int f_ftruncate(int fd, off_t l)
{
	return fault() ? -1 : io_ops_default()->ftruncate(fd, l);
}

static int f_renameat(int a, const char *b, int c, const char *d)
{
	return fault() ? -1 : io_ops_default()->renameat(a, b, c, d);
}

static int f_unlinkat(int a, const char *b, int c)
{
	return fault() ? -1 : io_ops_default()->unlinkat(a, b, c);
}

static int f_mkdirat(int a, const char *b, mode_t c)
{
	return fault() ? -1 : io_ops_default()->mkdirat(a, b, c);
}

static struct io_ops fault_ops;

static void fault_install(long fail_at, int persist, int err)
{
	fault_ops = *io_ops_default();
	fault_ops.openat = f_openat;
	fault_ops.pread = f_pread;
	fault_ops.pwrite = f_pwrite;
	fault_ops.pwritev = f_pwritev;
	fault_ops.fsync = f_fsync;
	fault_ops.fdatasync = f_fdatasync;
	fault_ops.ftruncate = f_ftruncate;
	fault_ops.renameat = f_renameat;
	fault_ops.unlinkat = f_unlinkat;
	fault_ops.mkdirat = f_mkdirat;
	fi.calls = 0;
	fi.fail_at = fail_at;
	fi.persist = persist;
	fi.err = err;
	fi.read_bytes = 0;
	fi.dead = 0;
	fi.fake_sync = 0;
	io_ops_set(&fault_ops);
}

/* The work under test: appends that roll, a flush, a compression, a
 * retention pass and a delete_before.  Returns the start byte a failed
 * delete_before may or may not have set (it fails after its rename only
 * if the directory fsync fails). */
static void scenario(struct partition *p, struct model *m, uint64_t *maybe)
{
	uint64_t b, o;
	int i, ret;

	for (i = 0; i < 6; i++)
		try_append(p, m, 500 + i, i == 3 ? 80 : 6, 50, 400, 4000 + i);
	partition_flush(p);
	partition_compress_one(p);
	try_append(p, m, 600, 3, 5, 50, 4100);
	partition_apply_retention(p, 4200);
	/* delete everything before the message at ~ a third of the log */
	b = m->end / 3;
	ret = partition_delete_before(p, b);
	if (b > m->start_byte) {
		o = 0;
		while (o + 1 < m->nmsg && m->msg[o + 1] <= b)
			o++;
		if (ret >= 0) {
			m->start_byte = m->msg[o];
			m->start_off = o;
		} else {
			*maybe = m->msg[o];
		}
	}
}

static void fault_round(int err, int persist)
{
	char path[4096];
	uint64_t first[64], maybe;
	struct partition *p;
	struct config cfg;
	struct model m, base;
	long k, steps = -1;
	uint32_t nseg;

	for (k = -1; steps < 0 || k < steps; k++) {
		int dfd = test_tmpdir(path);
		struct partition_info info;

		cfg_init(&cfg);
		cfg.compression = COMPRESSION_LZ4;
		cfg.retention_bytes = 40 << 10;
		model_init(&base);
		/* durability is not under test here: skip the real fsyncs */
		fault_install(-1, 0, 0);
		fi.fake_sync = 1;
		build(dfd, &base, &cfg, first, &nseg);
		m = base;
		m.data = malloc(base.cap);
		memcpy(m.data, base.data, base.end);
		m.msg = malloc(base.msgcap * sizeof(*m.msg));
		memcpy(m.msg, base.msg, base.nmsg * sizeof(*m.msg));
		ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL),
				 0);
		fi.calls = 0;
		fi.fail_at = k;
		fi.persist = persist;
		fi.err = err;
		maybe = UINT64_MAX;
		scenario(p, &m, &maybe);
		if (k < 0)
			steps = fi.calls; /* the dry run counts the steps */
		fi.fail_at = -1;
		/* in memory: consistent, readable; retention may have moved
		 * the start, which the model follows from info */
		partition_get_info(p, &info);
		ck_assert_uint_ge(info.start_byte, m.start_byte);
		if (info.start_byte != m.start_byte) {
			m.start_byte = info.start_byte;
			m.start_off = info.start_offset;
		}
		check_inv(p, &m);
		partition_close(p); /* may fail: the fault may still be armed */
		ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL),
				 0);
		partition_get_info(p, &info);
		if (info.start_byte != m.start_byte) {
			/* only a delete_before whose dir fsync failed */
			ck_assert_uint_eq(info.start_byte, maybe);
			m.start_byte = info.start_byte;
			m.start_off = info.start_offset;
		}
		check_inv(p, &m);
		ck_assert_int_eq(try_append(p, &m, 7, 3, 5, 9, 9000), 0);
		check_inv(p, &m);
		ck_assert_int_eq(partition_close(p), 0);
		io_ops_set(NULL);
		model_release(&m);
		model_release(&base);
		rmtree_fast(dfd, path);
	}
	ck_assert_int_gt(steps, 20);
}

START_TEST(test_faults)
{
	static const int errs[] = {ENOSPC, EIO};

	fault_round(errs[_i / 2], _i % 2);
}
END_TEST

/* A failed data flush is reported once (the range it covered is recorded
 * as lost), not sticky: the next flush covers only later appends, and the
 * partition closes cleanly. */
START_TEST(test_sticky_flush)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_loss loss;
	struct partition *p;
	struct config cfg;
	struct model m;
	uint64_t first_end;

	cfg_init(&cfg);
	model_init(&m);
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	ck_assert_int_eq(try_append(p, &m, 1, 5, 5, 50, 100), 0);
	first_end = m.end;
	/* Every sync of this flush fails: the .log's and the .idx's run at
	 * once, in either order, so "the first" could be the index's (it was
	 * under valgrind), whose failure loses no data. */
	fault_install(0, 1, EIO);
	ck_assert_int_eq(partition_flush(p), -EIO);
	io_ops_set(NULL);
	ck_assert_int_eq(partition_lost(p, 0, UINT64_MAX, &loss), 1);
	ck_assert_uint_eq(loss.from_byte, 0);
	ck_assert_uint_eq(loss.to_byte, first_end);
	ck_assert_int_eq(try_append(p, &m, 2, 5, 5, 50, 100), 0);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), flush_failures), 1);
	ck_assert_uint_eq(partition_losses(p), 1);
	ck_assert_int_eq(partition_lost(p, first_end, m.end, &loss), 0);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, NULL), 0);
	check_inv(p, &m);
	ck_assert_int_eq(partition_flush(p), 0);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

START_TEST(test_clean_open_reads_no_data)
{
	char path[4096];
	int dfd = test_tmpdir(path);
	struct partition_recovery rec;
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	int i;

	cfg_init(&cfg);
	cfg.segment_bytes = 256 << 10;
	/* also with every append synced: the state must still record it */
	cfg.flush_ms = _i ? 0 : -1;
	model_init(&m);
	fault_install(-1, 0, 0);
	fi.fake_sync = 1;
	ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
	for (i = 0; i < 40; i++)
		ck_assert_int_eq(
			try_append(p, &m, i + 1, 400, 20, 300, 100 + i), 0);
	ck_assert_int_eq(partition_close(p), 0);
	io_ops_set(NULL);
	ck_assert_uint_gt(m.end, 2 << 20);
	fault_install(-1, 0, 0);
	ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, &rec), 0);
	io_ops_set(NULL);
	partition_get_info(p, &info);
	ck_assert_uint_gt(info.segments, 10);
	/* headers and the state file only */
	ck_assert_uint_lt(fi.read_bytes, 64 * info.segments + 512);
	check_inv(p, &m);
	ck_assert_int_eq(partition_close(p), 0);
	model_release(&m);
	test_rmtree(dfd, path);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Crash simulation                                                     */

struct pending {
	int fd; /* dup of the written descriptor */
	dev_t dev;
	ino_t ino;
	off_t off, old_size;
	size_t len, oldlen;
	unsigned char *old;
};

/* The record of unsynced writes; a flush syncs a segment's two files on
 * two threads, hence the lock. */
static struct {
	struct pending *w;
	size_t n, cap;
} crash;
static pthread_mutex_t crash_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t c_pwrite_locked(int fd, const void *b, size_t l, off_t o)
{
	struct pending *w;
	struct stat st;

	if (fi.dead) {
		errno = EIO;
		return -1;
	}
	if (fstat(fd, &st) == 0) {
		if (crash.n == crash.cap) {
			crash.cap = crash.cap ? crash.cap * 2 : 256;
			crash.w =
				realloc(crash.w, crash.cap * sizeof(*crash.w));
		}
		w = &crash.w[crash.n++];
		w->fd = dup(fd);
		w->dev = st.st_dev;
		w->ino = st.st_ino;
		w->off = o;
		w->len = l;
		w->old_size = st.st_size;
		w->oldlen = o < st.st_size ? ((size_t)(st.st_size - o) < l
						      ? (size_t)(st.st_size - o)
						      : l)
					   : 0;
		w->old = malloc(w->oldlen + 1);
		if (w->oldlen)
			ck_assert_int_eq(pread(fd, w->old, w->oldlen, o),
					 (ssize_t)w->oldlen);
	}
	return pwrite(fd, b, l, o);
}

static ssize_t c_pwrite(int fd, const void *b, size_t l, off_t o)
{
	ssize_t r;

	pthread_mutex_lock(&crash_lock);
	r = c_pwrite_locked(fd, b, l, o);
	pthread_mutex_unlock(&crash_lock);
	return r;
}

static void crash_forget(struct pending *w)
{
	close(w->fd);
	free(w->old);
	w->fd = -1;
}

static int c_sync(int fd)
{
	struct stat st;
	size_t i, j = 0;

	if (fi.dead) {
		errno = EIO;
		return -1;
	}
	if (fstat(fd, &st) == 0) {
		pthread_mutex_lock(&crash_lock);
		for (i = 0; i < crash.n; i++) {
			if (crash.w[i].dev == st.st_dev &&
			    crash.w[i].ino == st.st_ino)
				crash_forget(&crash.w[i]);
			else
				crash.w[j++] = crash.w[i];
		}
		crash.n = j;
		pthread_mutex_unlock(&crash_lock);
	}
	return 0; /* the layer itself decides what a crash keeps */
}

static int c_dead_int(void)
{
	errno = EIO;
	return -1;
}

static int c_ftruncate(int fd, off_t l)
{
	return fi.dead ? c_dead_int() : ftruncate(fd, l);
}

static int c_renameat(int a, const char *b, int c, const char *d)
{
	return fi.dead ? c_dead_int() : renameat(a, b, c, d);
}

static int c_unlinkat(int a, const char *b, int c)
{
	return fi.dead ? c_dead_int() : unlinkat(a, b, c);
}

static int c_openat(int d, const char *p, int fl, mode_t mo)
{
	if (fi.dead && (fl & (O_CREAT | O_WRONLY | O_RDWR)))
		return c_dead_int();
	return openat(d, p, fl, mo);
}

/* Drop, keep or garble each unsynced write, newest first. */
static void crash_now(uint64_t *seed)
{
	struct pending *w;
	unsigned char junk[64];
	size_t i, k, at, l;

	for (i = crash.n; i-- > 0;) {
		w = &crash.w[i];
		switch (test_rand(seed) % 3) {
		case 0: /* reached the disk */
			break;
		case 1: /* never reached it */
			if (w->oldlen)
				ck_assert_int_eq(pwrite(w->fd, w->old,
							w->oldlen, w->off),
						 (ssize_t)w->oldlen);
			if (w->old_size < w->off + (off_t)w->len)
				ck_assert_int_eq(ftruncate(w->fd, w->old_size),
						 0);
			break;
		default: /* torn: part of it is noise */
			at = (size_t)(test_rand(seed) % w->len);
			l = 1 + (size_t)(test_rand(seed) % sizeof(junk));
			if (l > w->len - at)
				l = w->len - at;
			for (k = 0; k < l; k++)
				junk[k] = (unsigned char)test_rand(seed);
			ck_assert_int_eq(
				pwrite(w->fd, junk, l, w->off + (off_t)at),
				(ssize_t)l);
			break;
		}
		crash_forget(w);
	}
	crash.n = 0;
	fi.dead = 1;
}

static struct io_ops crash_ops;

START_TEST(test_crash_simulation)
{
	char path[4096];
	uint64_t seed, acked_end, acked_msgs;
	struct partition_recovery rec;
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	struct model m;
	unsigned char *buf;
	uint32_t b;
	int op, ok, s;

	crash_ops = *io_ops_default();
	crash_ops.pwrite = c_pwrite;
	crash_ops.fsync = c_sync;
	crash_ops.fdatasync = c_sync;
	crash_ops.ftruncate = c_ftruncate;
	crash_ops.renameat = c_renameat;
	crash_ops.unlinkat = c_unlinkat;
	crash_ops.openat = c_openat;
	for (s = 1; s <= 400; s++) {
		int dfd = test_tmpdir(path);

		seed = (uint64_t)s * 7919;
		cfg_init(&cfg);
		cfg.segment_bytes = 4096 + test_rand(&seed) % 16384;
		cfg.flush_ms = test_rand(&seed) % 4 == 0 ? 0 : -1;
		model_init(&m);
		acked_end = 0;
		acked_msgs = 0;
		fi.dead = 0;
		io_ops_set(&crash_ops);
		ck_assert_int_eq(partition_create(dfd, "p", &cfg, 0, &p), 0);
		for (op = 0; op < 25; op++) {
			if (test_rand(&seed) % 5 == 0) {
				if (partition_flush(p) == 0) {
					acked_end = m.end;
					acked_msgs = m.nmsg;
				}
				continue;
			}
			ok = try_append(p, &m, seed + op,
					1 + (uint32_t)(test_rand(&seed) % 30),
					5, 300, 1000 + op);
			ck_assert_int_eq(ok, 0);
			if (cfg.flush_ms == 0) {
				acked_end = m.end;
				acked_msgs = m.nmsg;
			}
		}
		crash_now(&seed);
		partition_close(p); /* the dead disk refuses the flush */
		io_ops_set(NULL);
		fi.dead = 0;
		ck_assert_int_eq(partition_open(dfd, "p", &cfg, 0, &p, &rec),
				 0);
		partition_get_info(p, &info);
		/* everything acknowledged is there ... */
		ck_assert_msg(info.end_byte >= acked_end,
			      "seed %d: end %llu < acked %llu", s,
			      (unsigned long long)info.end_byte,
			      (unsigned long long)acked_end);
		ck_assert_uint_ge(info.next_offset, acked_msgs);
		/* ... nothing beyond what was written, and only whole
		 * batches */
		ck_assert_uint_le(info.end_byte, m.end);
		for (b = 0; b < m.nb && m.bend[b] < info.end_byte; b++)
			;
		ck_assert_msg(info.end_byte == 0 || m.bend[b] == info.end_byte,
			      "seed %d: end %llu inside a batch", s,
			      (unsigned long long)info.end_byte);
		ck_assert_msg(
			info.next_offset == (info.end_byte ? m.bmsg[b] : 0),
			"seed %d: next offset %llu, want %llu (rebuilt "
			"%u, truncated %llu)",
			s, (unsigned long long)info.next_offset,
			(unsigned long long)(info.end_byte ? m.bmsg[b] : 0),
			rec.rebuilt_indexes,
			(unsigned long long)rec.truncated_bytes);
		buf = malloc(info.end_byte + 1);
		ck_assert_int_eq(partition_read(p, 0, buf, info.end_byte + 1),
				 (ssize_t)info.end_byte);
		ck_assert_msg(!memcmp(buf, m.data, info.end_byte),
			      "seed %d: bytes differ", s);
		free(buf);
		ck_assert_int_eq(partition_close(p), 0);
		model_release(&m);
		rmtree_fast(dfd, path);
	}
	free(crash.w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Damage is contained to the segment it is in                          */

/* Bytes [from, to) read back exactly. */
static void read_same(struct partition *p, const struct model *m, uint64_t from,
		      uint64_t to)
{
	unsigned char *buf = malloc(to - from + 1);

	ck_assert_int_eq(partition_read(p, from, buf, to - from),
			 (ssize_t)(to - from));
	ck_assert_mem_eq(buf, m->data + from, to - from);
	free(buf);
}

/* Reading len bytes at pos fails with EIO, never a short count; the
 * zero-copy form too, unless it stops before a compressed segment
 * (compressed: it may hand back only "copy the rest", and copying the
 * rest then fails). */
static void read_eio_c(struct partition *p, uint64_t pos, size_t len,
		       int compressed)
{
	unsigned char *buf = malloc(len);
	struct partition_range r[8];
	int k;

	ck_assert_int_eq(partition_read(p, pos, buf, len), -EIO);
	k = partition_read_ranges(p, pos, len, r, 8);
	if (compressed && k == 1) {
		ck_assert_int_eq(r[0].fd, PARTITION_RANGE_COPY);
		ck_assert_uint_eq(r[0].len, len);
		ck_assert_int_eq(partition_read_rest(p, pos, buf, len), -EIO);
	} else {
		ck_assert_int_eq(k, -EIO);
	}
	if (k >= 0)
		partition_read_ranges_done(p);
	free(buf);
}

static void read_eio(struct partition *p, uint64_t pos, size_t len)
{
	read_eio_c(p, pos, len, 0);
}

/* Every segment file is still there and every segment after segment k
 * reads back; offsets map to the same bytes. */
static void later_intact(struct partition *p, const struct built *b, uint32_t k)
{
	struct partition_info info;
	uint64_t o, byte;

	partition_get_info(p, &info);
	ck_assert_uint_eq(info.end_byte, b->m.end);
	ck_assert_uint_eq(info.next_offset, b->m.nmsg);
	read_same(p, &b->m, b->m.msg[b->first[k + 1]], b->m.end);
	for (o = b->first[k + 1]; o < b->m.nmsg; o += 7) {
		ck_assert_int_eq(partition_offset_to_byte(p, o, &byte), 0);
		ck_assert_uint_eq(byte, b->m.msg[o]);
	}
	if (k > 0)
		read_same(p, &b->m, 0, b->m.msg[b->first[k]]);
}

START_TEST(test_zero_extended_sealed_log_kept)
{
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	char f[4300];
	off_t size;

	built_make(&b);
	path_of(f, sizeof(f), b.path, b.first[1], ".log");
	size = file_size(f);
	ck_assert_int_eq(truncate(f, size + 4096), 0);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.discarded_files, 0);
	ck_assert_uint_eq(rec.truncated_bytes, 0);
	ck_assert_uint_eq(rec.damaged_segments, 1);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), crc_failures), 1);
	check_inv(p, &b.m);
	ck_assert_int_eq(partition_close(p), 0);
	/* left on disk as it was */
	ck_assert_int_eq(file_size(f), size + 4096);
	built_free(&b);
}
END_TEST

START_TEST(test_short_sealed_log_kept)
{
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	uint64_t seg_end;
	char f[4300];
	off_t size;

	built_make(&b);
	path_of(f, sizeof(f), b.path, b.first[1], ".log");
	size = file_size(f);
	ck_assert_int_gt(size, 1000);
	ck_assert_int_eq(truncate(f, size - 1000), 0);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.discarded_files, 0);
	ck_assert_uint_gt(rec.bad_batches, 0);
	later_intact(p, &b, 1);
	seg_end = b.m.msg[b.first[2]];
	read_same(p, &b.m, b.m.msg[b.first[1]], b.m.msg[b.first[1]] + 100);
	read_eio(p, seg_end - 10, 5);
	read_eio(p, 0, (size_t)b.m.end);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(file_size(f), size - 1000);
	built_free(&b);
}
END_TEST

START_TEST(test_missing_middle_log_kept)
{
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	char f[4300];

	built_make(&b);
	path_of(f, sizeof(f), b.path, b.first[1], ".log");
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.discarded_files, 0);
	ck_assert_uint_ge(rec.damaged_segments, 1);
	later_intact(p, &b, 1);
	read_same(p, &b.m, 0, b.m.msg[b.first[1]]);
	read_eio(p, b.m.msg[b.first[1]], 10);
	read_eio(p, b.m.msg[b.first[2]] - 10, 20);
	/* the index of the lost segment is left for a repair */
	path_of(f, sizeof(f), b.path, b.first[1], ".idx");
	ck_assert_int_gt(file_size(f), 0);
	/* and the log still takes appends */
	ck_assert_int_eq(
		partition_append(p, "x\n", 2, 1, 6000, b.m.end, NULL, NULL), 0);
	ck_assert_int_eq(partition_close(p), 0);
	built_free(&b);
}
END_TEST

START_TEST(test_missing_first_log_reads_eio)
{
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	char f[4300];

	built_make(&b);
	path_of(f, sizeof(f), b.path, b.first[0], ".log");
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.discarded_files, 0);
	later_intact(p, &b, 0);
	/* damage, not a retention hole: EIO, not zeros */
	read_eio(p, 0, 10);
	ck_assert_int_eq(partition_close(p), 0);
	built_free(&b);
}
END_TEST

START_TEST(test_stray_overlapping_segment_skipped)
{
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	char f[4300], g[4300], cmd[9000];
	const char *sfx[] = {".log", ".idx"};
	int i;

	built_make(&b);
	/* a copy of segment 1 under a name inside segment 0 */
	for (i = 0; i < 2; i++) {
		path_of(f, sizeof(f), b.path, b.first[1], sfx[i]);
		path_of(g, sizeof(g), b.path, b.first[0] + 3, sfx[i]);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f, g);
		ck_assert_int_eq(system(cmd), 0);
	}
	path_of(f, sizeof(f), b.path, b.first[1], ".log");
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
	ck_assert_uint_eq(rec.discarded_files, 0);
	ck_assert_uint_eq(rec.damaged_segments, 1);
	check_inv(p, &b.m);
	ck_assert_int_eq(partition_close(p), 0);
	/* left untouched */
	for (i = 0; i < 2; i++) {
		path_of(f, sizeof(f), b.path, b.first[1], sfx[i]);
		path_of(g, sizeof(g), b.path, b.first[0] + 3, sfx[i]);
		ck_assert_int_eq(file_size(g), file_size(f));
	}
	built_free(&b);
}
END_TEST

/* A read running into a bad batch fails as a whole: a short count would
 * be taken for the end of the file. */
START_TEST(test_read_into_bad_batch_fails)
{
	struct partition *p;
	struct built b;
	unsigned char c;
	uint64_t bad;
	char f[4300];
	int fd;

	built_make(&b);
	bad = b.m.msg[b.first[1] + 3] + 1;
	path_of(f, sizeof(f), b.path, b.first[1], ".log");
	fd = open(f, O_RDWR);
	ck_assert_int_eq(pread(fd, &c, 1, (off_t)(bad - b.m.msg[b.first[1]])),
			 1);
	c ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)(bad - b.m.msg[b.first[1]])),
			 1);
	close(fd);
	ck_assert_int_eq(partition_open(b.dfd, "p", &b.cfg, 5000, &p, NULL), 0);
	read_eio(p, 0, (size_t)b.m.end);
	read_eio(p, bad - 1, 2);
	ck_assert_uint_eq(metrics_get(partition_metrics(p), crc_failures), 1);
	read_same(p, &b.m, 0, b.m.msg[b.first[1]]);
	read_same(p, &b.m, b.m.msg[b.first[2]], b.m.end);
	ck_assert_int_eq(partition_close(p), 0);
	built_free(&b);
}
END_TEST

/* A compressed block that does not decode is damage: EIO, counted
 * once, the rest readable. */
START_TEST(test_undecodable_block_is_damage)
{
	struct partition *p;
	struct built b;
	unsigned char c;
	char f[4300];
	off_t size;
	int fd, round;

	for (round = 0; round < 2; round++) {
		built_make(&b);
		b.cfg.compression = round ? COMPRESSION_GZIP : COMPRESSION_LZ4;
		ck_assert_int_eq(
			partition_open(b.dfd, "p", &b.cfg, 0, &p, NULL), 0);
		ck_assert_int_eq(partition_compress_one(p), 1);
		ck_assert_int_eq(partition_close(p), 0);
		path_of(f, sizeof(f), b.path, b.first[0],
			round ? ".gz" : ".lz4");
		size = file_size(f);
		fd = open(f, O_RDWR);
		ck_assert_int_eq(pread(fd, &c, 1, size / 2), 1);
		c ^= 0xff;
		ck_assert_int_eq(pwrite(fd, &c, 1, size / 2), 1);
		close(fd);
		ck_assert_int_eq(
			partition_open(b.dfd, "p", &b.cfg, 5000, &p, NULL), 0);
		read_eio_c(p, 0, (size_t)b.m.end, 1);
		read_eio_c(p, 100, 10, 1);
		ck_assert_uint_eq(
			metrics_get(partition_metrics(p), crc_failures), 1);
		read_same(p, &b.m, b.m.msg[b.first[1]], b.m.end);
		ck_assert_int_eq(partition_close(p), 0);
		built_free(&b);
	}
}
END_TEST

/* A damaged or missing .blk block table is rebuilt from the compressed
 * frame: everything reads back, and the rebuilt table is whole. */
START_TEST(test_damaged_block_table_rebuilt)
{
	struct partition_recovery rec;
	struct partition *p;
	struct built b;
	unsigned char c;
	char f[4300], dir[4200];
	int fd, round;

	for (round = 0; round < 4; round++) {
		built_make(&b);
		snprintf(dir, sizeof(dir), "%s/p", b.path);
		b.cfg.compression =
			round & 1 ? COMPRESSION_GZIP : COMPRESSION_LZ4;
		ck_assert_int_eq(
			partition_open(b.dfd, "p", &b.cfg, 0, &p, NULL), 0);
		ck_assert_int_eq(partition_compress_one(p), 1);
		ck_assert_int_eq(partition_compress_one(p), 1);
		ck_assert_int_eq(partition_close(p), 0);
		path_of(f, sizeof(f), b.path, b.first[1], ".blk");
		if (round < 2) {
			fd = open(f, O_RDWR);
			ck_assert_int_eq(pread(fd, &c, 1, 30), 1);
			c ^= 0x10;
			ck_assert_int_eq(pwrite(fd, &c, 1, 30), 1);
			close(fd);
		} else {
			ck_assert_int_eq(unlink(f), 0);
		}
		ck_assert_int_eq(
			partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
		ck_assert_uint_eq(rec.rebuilt_indexes, 1);
		ck_assert_uint_eq(rec.discarded_files, 0);
		ck_assert_uint_eq(rec.damaged_segments, 0);
		check_inv(p, &b.m);
		ck_assert_uint_eq(
			metrics_get(partition_metrics(p), crc_failures), 0);
		ck_assert_int_eq(partition_close(p), 0);
		/* the table on disk is whole again */
		ck_assert_int_eq(
			partition_open(b.dfd, "p", &b.cfg, 5000, &p, &rec), 0);
		ck_assert_uint_eq(rec.rebuilt_indexes, 0);
		check_inv(p, &b.m);
		ck_assert_int_eq(partition_close(p), 0);
		ck_assert_int_eq(
			count_files(dir, b.cfg.compression == COMPRESSION_LZ4
						 ? ".lz4"
						 : ".gz"),
			2);
		built_free(&b);
	}
}
END_TEST

static Suite *recovery_suite(void)
{
	Suite *s = suite_create("recovery");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_torn_log_tail);
	tcase_add_test(tc, test_zero_extended_sealed_log_kept);
	tcase_add_test(tc, test_short_sealed_log_kept);
	tcase_add_test(tc, test_missing_middle_log_kept);
	tcase_add_test(tc, test_missing_first_log_reads_eio);
	tcase_add_test(tc, test_stray_overlapping_segment_skipped);
	tcase_add_test(tc, test_read_into_bad_batch_fails);
	tcase_add_test(tc, test_undecodable_block_is_damage);
	tcase_add_test(tc, test_damaged_block_table_rebuilt);
	tcase_add_test(tc, test_torn_idx_tail);
	tcase_add_test(tc, test_idx_longer_than_data);
	tcase_add_test(tc, test_missing_idx);
	tcase_add_test(tc, test_corrupt_sealed_batch);
	tcase_add_test(tc, test_full_verify_keeps_sealed_damage);
	tcase_add_test(tc, test_damaged_entry_rebuilds_index);
	tcase_add_test(tc, test_torn_entry_at_recovery_point);
	tcase_add_test(tc, test_damaged_compressed_index_rebuilt);
	tcase_add_test(tc, test_rebuild_keeps_unterminated_message);
	tcase_add_test(tc, test_crash_mid_compression);
	tcase_add_loop_test(tc, test_faults, 0, 4);
	tcase_add_test(tc, test_sticky_flush);
	tcase_add_loop_test(tc, test_clean_open_reads_no_data, 0, 2);
	tcase_add_test(tc, test_crash_simulation);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(recovery_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
