/*
 * check_inspect.c - the read-only inspector against partitions written by
 * the storage engine: the same offsets, bytes and lookups as the engine,
 * a clean verify, damage found where it was made (data CRC, index entry,
 * torn index tail), and not one byte of the directory changed.
 */
#include <errno.h>
#include <sys/stat.h>

#include "testutil.h"
#include "crc32c.h"
#include "inspect.h"
#include "segment.h"
#include "partition.h"

#define NMSG 400
#define T0 1700000000000LL

/* Messages "msg NNNN ...\n" of varying length, one append each, the
 * clock advancing 10 ms per append; segments roll at 4 KiB. */
static void build(int dirfd, struct partition **keep)
{
	struct partition *p;
	struct config cfg;
	char line[128];
	int i, n;

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, CONFIG_SEGMENT_BYTES, "4k", 2), 0);
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, T0, &p), 0);
	for (i = 0; i < NMSG; i++) {
		n = snprintf(line, sizeof(line), "msg %04d %.*s\n", i, i % 37,
			     "abcdefghijklmnopqrstuvwxyz0123456789!");
		ck_assert_int_eq(partition_append(p, line, (size_t)n, 1,
						  T0 + 10 * i, PARTITION_ANY_END,
						  NULL, NULL), 0);
	}
	if (keep) {
		*keep = p;
		return;
	}
	ck_assert_int_eq(partition_close(p), 0);
}

struct collector {
	int n, data;
	int64_t entry;
};

static void collect(void *arg, const struct inspect_part *ipp,
		    const struct inspect_problem *pr)
{
	struct collector *acc = arg;

	if (acc->n++ == 0) {
		acc->data = pr->data;
		acc->entry = pr->entry;
	}
}

/* Run verify; returns the problem count, the first problem's kind. */
static int count_problems(const struct inspect_part *ip, int *data,
			  int64_t *entry)
{
	struct collector acc = { 0, 0, -2 };
	int ret;

	ret = inspect_verify(ip, collect, NULL, &acc);
	ck_assert_int_eq(ret, acc.n);
	if (data)
		*data = acc.data;
	if (entry)
		*entry = acc.entry;
	return ret;
}

/* Sum of CRCs of every file: proves the inspector wrote nothing. */
static uint32_t dir_digest(const char *path)
{
	char cmd[4200];
	FILE *f;
	char buf[4096];
	uint32_t crc = 0;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cd '%s' && find . -type f | sort | xargs cat; "
		 "cd '%s' && ls -la --time-style=+%%s%%N . | sort", path, path);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		crc = crc32c(crc, buf, n);
	pclose(f);
	return crc;
}

START_TEST(test_agrees_with_engine)
{
	char path[4096], ppath[4200];
	struct inspect_part *ip;
	struct partition *p;
	struct partition_info info;
	uint64_t a, b, off;
	uint32_t before;
	int64_t first, last;
	int fd = test_tmpdir(path), i;

	build(fd, &p);
	partition_flush(p);
	partition_get_info(p, &info);
	snprintf(ppath, sizeof(ppath), "%s/p", path);
	before = dir_digest(ppath);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_uint_ge(ip->nsegs, 3);
	ck_assert_uint_eq(ip->nsegs, info.segments);
	ck_assert_uint_eq(ip->start_offset, info.start_offset);
	ck_assert_uint_eq(ip->next_offset, NMSG);
	ck_assert_uint_eq(ip->end_byte, info.end_byte);
	for (i = 0; i < NMSG; i += 7) {
		ck_assert_int_eq(partition_offset_to_byte(p, i, &a), 0);
		ck_assert_int_eq(inspect_offset_to_byte(ip, i, &b), 0);
		ck_assert_uint_eq(a, b);
	}
	ck_assert_int_eq(inspect_offset_to_byte(ip, NMSG, &b), -ENOENT);
	ck_assert_int_eq(inspect_time_to_offset(ip, T0 + 10 * 123 - 5, &off, &b),
			 0);
	ck_assert_uint_eq(off, 123);
	ck_assert_int_eq(partition_offset_to_byte(p, 123, &a), 0);
	ck_assert_uint_eq(a, b);
	ck_assert_int_eq(inspect_time_to_offset(ip, T0 + 10 * NMSG, &off, &b),
			 -ENOENT);
	inspect_time_range(ip, &first, &last);
	ck_assert_int_eq(first, T0);
	ck_assert_int_eq(last, T0 + 10 * (NMSG - 1));
	ck_assert_int_eq(count_problems(ip, NULL, NULL), 0);
	inspect_close(ip);
	ck_assert_uint_eq(dir_digest(ppath), before);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(fd, path);
}
END_TEST

START_TEST(test_finds_damage)
{
	char path[4096], name[4200];
	struct inspect_part *ip;
	int fd = test_tmpdir(path), lfd, data;
	int64_t entry;
	struct stat st;

	build(fd, NULL);
	/* flip one byte of the 4th message of the first segment */
	snprintf(name, sizeof(name), "%s/p/00000000000000000000.log", path);
	lfd = open(name, O_RDWR);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_int_eq(pwrite(lfd, "#", 1, (off_t)ip->segs[0].ents[3].pos + 2),
			 1);
	close(lfd);
	ck_assert_int_eq(count_problems(ip, &data, &entry), 1);
	ck_assert_int_eq(data, 1);
	ck_assert_int_eq(entry, 3);
	inspect_close(ip);

	/* a torn tail entry in the last segment's index */
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	snprintf(name, sizeof(name), "%s/p/%020llu.idx", path,
		 (unsigned long long)ip->segs[ip->nsegs - 1].base_offset);
	inspect_close(ip);
	ck_assert_int_eq(stat(name, &st), 0);
	ck_assert_int_eq(truncate(name, st.st_size - 20), 0);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_int_ge(count_problems(ip, NULL, NULL), 3);
	inspect_close(ip);

	/* a damaged entry checksum in the second segment */
	snprintf(name, sizeof(name), "%s/p", path);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	snprintf(name, sizeof(name), "%s/p/%020llu.idx", path,
		 (unsigned long long)ip->segs[1].base_offset);
	inspect_close(ip);
	lfd = open(name, O_RDWR);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(pwrite(lfd, "\xff", 1, LAYOUT_IDX_HEADER_BYTES + 48 + 20), 1);
	close(lfd);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_int_ge(count_problems(ip, NULL, NULL), 4);
	inspect_close(ip);
	test_rmtree(fd, path);
}
END_TEST

/* A first segment gone with partition.state still naming it is a gap
 * below the recovery point: damage.  Segments retention removed (the
 * state moved first) are not. */
START_TEST(test_missing_first_segment)
{
	char path[4096], name[4200];
	struct inspect_part *ip;
	struct partition *p;
	struct config cfg;
	uint64_t base1, byte1;
	int fd = test_tmpdir(path);

	build(fd, NULL);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_uint_ge(ip->nsegs, 3);
	base1 = ip->segs[1].base_offset;
	byte1 = ip->segs[1].base_byte;
	ck_assert_int_eq(count_problems(ip, NULL, NULL), 0);
	inspect_close(ip);

	/* retention of the first segment: clean */
	config_defaults(&cfg);
	ck_assert_int_eq(partition_open(fd, "p", &cfg, T0, &p, NULL), 0);
	ck_assert_int_eq(partition_delete_before(p, byte1), 1);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_uint_eq(ip->segs[0].base_offset, base1);
	ck_assert_int_eq(count_problems(ip, NULL, NULL), 0);
	inspect_close(ip);

	/* the (new) first segment lost behind the state's back */
	snprintf(name, sizeof(name), "%s/p/%020llu.log", path,
		 (unsigned long long)base1);
	ck_assert_int_eq(unlink(name), 0);
	snprintf(name, sizeof(name), "%s/p/%020llu.idx", path,
		 (unsigned long long)base1);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_uint_gt(ip->segs[0].base_offset, base1);
	ck_assert_int_ge(count_problems(ip, NULL, NULL), 1);
	inspect_close(ip);
	test_rmtree(fd, path);
}
END_TEST

/* segment_mark_lost() turns a damaged batch into a hole inside the log:
 * zeros on disk, an intact entry flagged lost with the header counting
 * it.  inspect then sees a known loss, not damage; the engine reads zeros
 * without EIO, counts the loss, treats it as a hole for SEEK_DATA and
 * SEEK_HOLE, keeps every offset, and a recovery from scratch keeps it. */
START_TEST(test_drop_damaged)
{
	char path[4096], name[4200];
	struct partition_recovery rec;
	struct partition_range r[8];
	struct partition_info info;
	struct inspect_part *ip;
	struct partition *p;
	struct seg_entry e;
	struct config cfg;
	unsigned char *orig, *now;
	uint64_t base, end, o, b, sum;
	int fd = test_tmpdir(path), lfd, pass, k, i;
	ssize_t n;

	config_defaults(&cfg);
	build(fd, NULL);
	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_uint_ge(ip->nsegs, 3);
	e = ip->segs[1].ents[3];
	base = ip->segs[1].base_offset;
	end = ip->end_byte;
	orig = malloc(end);
	now = malloc(end);
	ck_assert_ptr_nonnull(orig);
	ck_assert_ptr_nonnull(now);
	for (b = 0, i = 0; i < (int)ip->nsegs; i++) {
		ck_assert_int_eq(inspect_read(ip, (uint32_t)i,
					      ip->segs[i].base_byte, orig + b,
					      ip->segs[i].raw_bytes), 0);
		b += ip->segs[i].raw_bytes;
	}
	ck_assert_uint_eq(b, end);
	snprintf(name, sizeof(name), "%s/p/%020llu.log", path,
		 (unsigned long long)base);
	lfd = open(name, O_RDWR);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(pwrite(lfd, "#", 1,
				(off_t)(e.pos - ip->segs[1].base_byte + 1)),
			 1);
	close(lfd);
	ck_assert_int_eq(count_problems(ip, NULL, NULL), 1);
	ck_assert_int_eq(segment_mark_lost(ip->dfd, base, ip->segs[1].nents),
			 -EINVAL);
	ck_assert_int_eq(segment_mark_lost(ip->dfd, base, 3), 0);
	ck_assert_int_eq(segment_mark_lost(ip->dfd, base, 3), 0); /* again */
	inspect_close(ip);
	memset(orig + e.pos, 0, e.len); /* what a reader must now get */

	ck_assert_int_eq(inspect_open(fd, "p", &ip), 0);
	ck_assert_int_eq(count_problems(ip, NULL, NULL), 0);
	ck_assert_uint_eq(ip->lost_entries, 1);
	ck_assert_uint_eq(ip->lost_messages, e.count);
	ck_assert_uint_eq(ip->lost_bytes, e.len);
	ck_assert_uint_eq(ip->segs[1].hdr_lost_msgs, e.count);
	ck_assert_uint_eq(ip->segs[1].hdr_lost_bytes, e.len);
	ck_assert(layout_entry_lost(&ip->segs[1].ents[3]));
	ck_assert_uint_eq(ip->segs[1].ents[3].pos, e.pos);
	ck_assert_uint_eq(ip->segs[1].ents[3].offset, e.offset);
	ck_assert_uint_eq(ip->segs[1].ents[3].count, e.count);
	ck_assert_uint_eq(ip->end_byte, end);
	ck_assert_uint_eq(ip->next_offset, NMSG);
	inspect_close(ip);

	/* pass 0: recovery from the state; pass 1: from scratch */
	for (pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(partition_open(fd, "p", &cfg, T0, &p, &rec), 0);
		ck_assert_uint_eq(rec.bad_batches, 0);
		ck_assert_uint_eq(rec.truncated_bytes, 0);
		ck_assert_uint_eq(rec.dropped_entries, 0);
		partition_get_info(p, &info);
		ck_assert_uint_eq(info.end_byte, end);
		ck_assert_uint_eq(info.next_offset, NMSG);
		ck_assert_uint_eq(info.lost_messages, e.count);
		ck_assert_uint_eq(info.lost_bytes, e.len);
		memset(now, 0xee, end);
		n = partition_read(p, 0, now, end);
		ck_assert_int_eq(n, (ssize_t)end);
		ck_assert_int_eq(memcmp(now, orig, end), 0);
		k = partition_read_ranges(p, e.pos - 10, e.len + 20, r, 8);
		ck_assert_int_ge(k, 1);
		for (sum = 0, i = 0; i < k; i++)
			sum += r[i].len;
		partition_read_ranges_done(p);
		ck_assert_uint_eq(sum, e.len + 20);
		ck_assert_int_eq(partition_seek_hole(p, 0, 0, &o), 0);
		ck_assert_uint_eq(o, 0);
		ck_assert_int_eq(partition_seek_hole(p, 0, 1, &o), 0);
		ck_assert_uint_eq(o, e.pos);
		ck_assert_int_eq(partition_seek_hole(p, e.pos, 0, &o), 0);
		ck_assert_uint_eq(o, e.pos + e.len);
		ck_assert_int_eq(partition_seek_hole(p, e.pos + 1, 1, &o), 0);
		ck_assert_uint_eq(o, e.pos + 1);
		ck_assert_int_eq(partition_seek_hole(p, e.pos + e.len, 1, &o),
				 0);
		ck_assert_uint_eq(o, end);
		ck_assert_int_eq(partition_seek_hole(p, end, 0, &o), -ENXIO);
		ck_assert_int_eq(partition_offset_to_byte(p, e.offset + e.count,
							  &b), 0);
		ck_assert_uint_eq(b, e.pos + e.len);
		ck_assert_int_eq(partition_close(p), 0);
		snprintf(name, sizeof(name), "%s/p/partition.state", path);
		ck_assert_int_eq(unlink(name), 0);
	}
	free(orig);
	free(now);
	test_rmtree(fd, path);
}
END_TEST

START_TEST(test_not_a_partition)
{
	char path[4096];
	struct inspect_part *ip;
	int fd = test_tmpdir(path);

	ck_assert_int_eq(mkdirat(fd, "empty", 0755), 0);
	ck_assert_int_eq(inspect_open(fd, "empty", &ip), -ENOENT);
	ck_assert_int_lt(inspect_open(fd, "missing", &ip), 0);
	test_rmtree(fd, path);
}
END_TEST

static Suite *inspect_suite(void)
{
	Suite *s = suite_create("inspect");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_agrees_with_engine);
	tcase_add_test(tc, test_finds_damage);
	tcase_add_test(tc, test_not_a_partition);
	tcase_add_test(tc, test_missing_first_segment);
	tcase_add_test(tc, test_drop_damaged);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(inspect_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
