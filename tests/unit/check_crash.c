/*
 * check_crash.c - simulated power loss under the storage engine, in the
 * SQLite manner (test6.c): a child process appends random batches to a
 * partition with 4 KiB segments (so segments roll, and some are
 * compressed), calls partition_flush() at random, then crashes through
 * crashsim with one of its modes.  The parent reopens the partition
 * (recovery runs) and checks that every message a successful flush
 * acknowledged is there, that what is visible is a whole-message prefix of
 * what was appended, that message offsets are contiguous, and that the
 * partition takes and keeps new appends.
 *
 * The crash happens in a child so the crashed partition (still open, its
 * descriptors dead) is never closed: closing it would flush.  Messages are
 * a pure function of (seed, index), so the parent rebuilds the expected
 * stream from the seed and the two counts the child reports.
 *
 * CRASH_SEEDS (default 200) sets how many seeds run; CRASH_SEED_BASE
 * (default 1) the first, to replay a failure.  A failing seed leaves its
 * directory, $TMPDIR/fluxfs-crash-seedN-*, for inspection.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "testutil.h"
#include "crashsim.h"
#include "partition.h"

#define MAX_MSGS 4096
#define MAX_MSG_LEN 300

/* What the child reports before and after its crash. */
struct crash_report {
	uint64_t appended; /* messages appended successfully */
	uint64_t acked;	   /* messages covered by the last good flush */
	uint32_t flushes;
	uint32_t rolls_seen; /* segments at the crash */
	int error;	     /* first unexpected engine error, or 0 */
	int crash_ret;	     /* crashsim_crash() result */
	struct crashsim_stats stats;
};

static uint64_t base_seed(void)
{
	const char *s = getenv("CRASH_SEED_BASE");

	return s && *s ? strtoull(s, NULL, 10) : 1;
}

static int nseeds(void)
{
	const char *s = getenv("CRASH_SEEDS");
	int n = s && *s ? atoi(s) : 200;

	return n > 0 ? n : 1;
}

/* Message i of a seed: "<i> <seed> " then a payload of printable bytes
 * whose length and contents derive from (seed, i), then a newline. */
static size_t make_msg(uint64_t seed, uint64_t i, char *buf)
{
	uint64_t st = (seed * 0x9E3779B97F4A7C15ULL) ^
		      (i + 1) * 0xBF58476D1CE4E5B9ULL;
	size_t len, n, k;

	if (!st)
		st = 1;
	n = (size_t)snprintf(buf, 64, "%llu %llu ", (unsigned long long)i,
			     (unsigned long long)seed);
	len = test_rand(&st) % (MAX_MSG_LEN - n - 1);
	for (k = 0; k < len; k++)
		buf[n + k] = (char)('!' + test_rand(&st) % 94);
	buf[n + len] = '\n';
	return n + len + 1;
}

/* A temporary directory named for the seed: a failing seed's directory
 * is left behind for inspection, and is easy to find. */
static int seed_tmpdir(char *path, uint64_t seed)
{
	const char *base = getenv("TMPDIR");
	int fd;

	snprintf(path, 4096, "%s/fluxfs-crash-seed%llu-XXXXXX",
		 base ? base : "/tmp", (unsigned long long)seed);
	ck_assert_ptr_nonnull(mkdtemp(path));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static void test_config(uint64_t seed, struct config *cfg)
{
	config_defaults(cfg);
	cfg->segment_bytes = 4096;
	cfg->flush_ms = -1; /* only the test's explicit flushes sync */
	cfg->compression = seed % 4 == 0   ? COMPRESSION_LZ4
			   : seed % 4 == 1 ? COMPRESSION_GZIP
			   : seed % 4 == 2 ? COMPRESSION_ZSTD
					   : COMPRESSION_NONE;
}

static enum crashsim_mode seed_mode(uint64_t seed)
{
	static const enum crashsim_mode modes[] = {
		CRASHSIM_DROP, CRASHSIM_KEEP, CRASHSIM_GARBLE, CRASHSIM_PREFIX,
		CRASHSIM_RANDOM};

	return modes[seed % 5];
}

/* The child: create, append, flush at random, crash.  Never returns. */
static void child_run(int dirfd, uint64_t seed, int wfd)
{
	struct crash_report r;
	struct partition_info info;
	struct partition *p = NULL;
	struct config cfg;
	uint64_t st = seed * 7 + 3, now = 1000000;
	char *batch = malloc(20 * MAX_MSG_LEN);
	uint32_t ops, op, k, count;
	size_t len;
	int ret;

	memset(&r, 0, sizeof(r));
	test_config(seed, &cfg);
	crashsim_install();
	ret = partition_create(dirfd, "p", &cfg, (int64_t)now, &p);
	if (ret < 0 || !batch) {
		r.error = ret < 0 ? ret : -ENOMEM;
		goto report;
	}
	/* Creation is durable (it syncs); nothing is acknowledged yet. */
	ops = 1 + test_rand(&st) % 80;
	for (op = 0; op < ops && r.appended < MAX_MSGS - 20; op++) {
		count = 1 + test_rand(&st) % 20;
		len = 0;
		for (k = 0; k < count; k++)
			len += make_msg(seed, r.appended + k, batch + len);
		now += test_rand(&st) % 5;
		ret = partition_append(p, batch, len, count, (int64_t)now,
				       PARTITION_ANY_END, NULL, NULL);
		if (ret < 0) {
			r.error = ret;
			break;
		}
		r.appended += count;
		if (test_rand(&st) % 5 == 0) {
			ret = partition_flush(p);
			if (ret < 0) {
				r.error = ret;
				break;
			}
			r.acked = r.appended;
			r.flushes++;
		}
		if (test_rand(&st) % 4 == 0) {
			ret = partition_compress_one(p);
			if (ret < 0) {
				r.error = ret;
				break;
			}
		}
	}
	partition_get_info(p, &info);
	r.rolls_seen = info.segments;
report:
	free(batch); /* _exit below: valgrind counts what is still held */
	r.crash_ret = crashsim_crash(seed_mode(seed), seed, &r.stats);
	if (write(wfd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(3);
	_exit(0); /* the partition is dead: never close (flush) it */
}

/* Every message [0, n) reads back whole and in order, offsets map to
 * their bytes, and the log ends right after message n-1. */
static void check_stream(struct partition *p, uint64_t seed, uint64_t n,
			 uint64_t extra_from, uint64_t extra_seed)
{
	struct partition_info info;
	char want[MAX_MSG_LEN + 64], got[MAX_MSG_LEN + 64];
	uint64_t i, pos = 0, byte, off, msg_start;
	size_t len;
	ssize_t r;

	partition_get_info(p, &info);
	ck_assert_uint_eq(info.start_offset, 0);
	ck_assert_uint_eq(info.start_byte, 0);
	ck_assert_msg(
		info.next_offset == n, "seed %llu: next_offset %llu, want %llu",
		(unsigned long long)seed, (unsigned long long)info.next_offset,
		(unsigned long long)n);
	for (i = 0; i < n; i++) {
		len = i < extra_from ? make_msg(seed, i, want)
				     : make_msg(extra_seed, i, want);
		r = partition_read(p, pos, got, len);
		ck_assert_msg(r == (ssize_t)len && memcmp(got, want, len) == 0,
			      "seed %llu: message %llu at byte %llu differs "
			      "(read %zd of %zu)",
			      (unsigned long long)seed, (unsigned long long)i,
			      (unsigned long long)pos, r, len);
		ck_assert_int_eq(partition_offset_to_byte(p, i, &byte), 0);
		ck_assert_msg(byte == pos,
			      "seed %llu: offset %llu at byte "
			      "%llu, want %llu",
			      (unsigned long long)seed, (unsigned long long)i,
			      (unsigned long long)byte,
			      (unsigned long long)pos);
		ck_assert_int_eq(partition_byte_to_offset(p, pos + len - 1,
							  &off, &msg_start),
				 0);
		ck_assert_uint_eq(off, i);
		ck_assert_uint_eq(msg_start, pos);
		pos += len;
	}
	ck_assert_msg(info.end_byte == pos,
		      "seed %llu: end_byte %llu after %llu whole messages "
		      "ending at %llu (a partial message is visible)",
		      (unsigned long long)seed,
		      (unsigned long long)info.end_byte, (unsigned long long)n,
		      (unsigned long long)pos);
	ck_assert_int_eq(partition_read(p, pos, got, 1), 0);
	ck_assert_int_eq(partition_offset_to_byte(p, n, &byte), -ENOENT);
}

START_TEST(test_crash_recover)
{
	uint64_t seed = base_seed() + (uint64_t)_i;
	struct partition_recovery rec;
	struct crash_report r;
	struct partition *p;
	struct config cfg;
	char path[4096], batch[4 * (MAX_MSG_LEN + 64)];
	uint64_t survived, k;
	size_t len;
	int dirfd, fds[2], status;
	pid_t pid;

	dirfd = seed_tmpdir(path, seed);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		child_run(dirfd, seed, fds[1]);
	}
	close(fds[1]);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(read(fds[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_msg(r.error == 0,
		      "seed %llu: engine error %d before the "
		      "crash",
		      (unsigned long long)seed, r.error);
	ck_assert_msg(r.crash_ret == 0, "seed %llu: crashsim_crash %d",
		      (unsigned long long)seed, r.crash_ret);

	/* Recovery, with the engine's real syscalls. */
	test_config(seed, &cfg);
	memset(&rec, 0, sizeof(rec));
	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 2000000, &p, &rec),
			 0);
	{
		struct partition_info info;

		partition_get_info(p, &info);
		survived = info.next_offset;
	}
	ck_assert_msg(survived >= r.acked && survived <= r.appended,
		      "seed %llu mode %d: %llu messages survived; acknowledged "
		      "%llu, appended %llu",
		      (unsigned long long)seed, (int)seed_mode(seed),
		      (unsigned long long)survived, (unsigned long long)r.acked,
		      (unsigned long long)r.appended);
	if (seed_mode(seed) == CRASHSIM_KEEP)
		ck_assert_msg(survived == r.appended,
			      "seed %llu: KEEP lost "
			      "messages (%llu of %llu)",
			      (unsigned long long)seed,
			      (unsigned long long)survived,
			      (unsigned long long)r.appended);
	check_stream(p, seed, survived, UINT64_MAX, 0);

	/* Later appends continue the offsets and survive a clean reopen. */
	len = 0;
	for (k = 0; k < 3; k++)
		len += make_msg(seed + 1000000, survived + k, batch + len);
	ck_assert_int_eq(partition_append(p, batch, len, 3, 2000001,
					  PARTITION_ANY_END, &k, NULL),
			 0);
	ck_assert_uint_eq(k, survived);
	ck_assert_int_eq(partition_close(p), 0);
	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 2000002, &p, &rec),
			 0);
	ck_assert_uint_eq(rec.truncated_bytes, 0);
	ck_assert_uint_eq(rec.bad_batches, 0);
	check_stream(p, seed, survived + 3, survived, seed + 1000000);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dirfd, path);
}
END_TEST

/* The harness itself must be able to fail: a crash that drops unsynced
 * data after a flush-free run must lose messages under DROP, or the
 * checks above prove nothing. */
START_TEST(test_drop_loses_unflushed)
{
	struct crashsim_stats stats;
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	char path[4096], msg[MAX_MSG_LEN + 64];
	size_t len;
	int dirfd, fds[2], status;
	pid_t pid;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = -1;
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		crashsim_install();
		if (partition_create(dirfd, "p", &cfg, 1, &p) < 0)
			_exit(2);
		len = make_msg(1, 0, msg);
		if (partition_append(p, msg, len, 1, 2, PARTITION_ANY_END, NULL,
				     NULL) < 0)
			_exit(2);
		if (crashsim_crash(CRASHSIM_DROP, 1, &stats) < 0)
			_exit(2);
		if (write(fds[1], &stats, sizeof(stats)) != sizeof(stats))
			_exit(3);
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &stats, sizeof(stats)),
			 (ssize_t)sizeof(stats));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_gt(stats.dropped, 0);
	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 3, &p, NULL), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.next_offset, 0);
	ck_assert_uint_eq(info.end_byte, 0);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dirfd, path);
}
END_TEST

/* The cut recovery makes of a torn tail must be on disk before the
 * segment is sealed by a roll: otherwise a second power loss brings the
 * torn bytes back inside a sealed segment, and every acknowledged message
 * written after the first recovery is at risk. */
START_TEST(test_recovery_cut_is_durable)
{
	struct partition_recovery rec;
	struct partition_info info;
	struct partition *p;
	struct config cfg;
	char path[4096], f[4200], line[500], *want, *got;
	size_t at = 0;
	int dirfd, fd, i;
	ssize_t n;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.segment_bytes = 16 << 10;
	cfg.flush_ms = -1;
	want = malloc(16000 + 20 * sizeof(line));
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, 1, &p), 0);
	for (i = 0; i < 32; i++) {
		memset(line, 'a' + i % 26, sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		memcpy(want + at, line, sizeof(line));
		at += sizeof(line);
		ck_assert_int_eq(partition_append(p, line, sizeof(line), 1, 2,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
	}
	ck_assert_int_eq(partition_close(p), 0);
	/* a torn write left garbage after the last batch, on the disk */
	snprintf(f, sizeof(f), "%s/p/%020d.log", path, 0);
	fd = open(f, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	memset(line, 'Z', 48);
	ck_assert_int_eq(write(fd, line, 48), 48);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);

	crashsim_install();
	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 3, &p, &rec), 0);
	ck_assert_uint_eq(rec.truncated_bytes, 48);
	for (i = 0; i < 20; i++) {
		memset(line, '0' + i % 10, sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		memcpy(want + at, line, sizeof(line));
		at += sizeof(line);
		ck_assert_int_eq(partition_append(p, line, sizeof(line), 1, 4,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
		ck_assert_int_eq(partition_flush(p), 0);
	}
	partition_get_info(p, &info);
	ck_assert_uint_ge(info.segments, 2);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, NULL), 0);
	partition_discard(p);
	crashsim_uninstall();

	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 5, &p, &rec), 0);
	partition_get_info(p, &info);
	ck_assert_msg(info.end_byte == at,
		      "end %llu, want %zu (%llu bytes truncated, %u files "
		      "discarded)",
		      (unsigned long long)info.end_byte, at,
		      (unsigned long long)rec.truncated_bytes,
		      rec.discarded_files);
	ck_assert_uint_eq(info.next_offset, 52);
	got = malloc(at);
	n = partition_read(p, 0, got, at);
	ck_assert_int_eq(n, (ssize_t)at);
	ck_assert_mem_eq(got, want, at);
	ck_assert_int_eq(partition_close(p), 0);
	free(got);
	free(want);
	test_rmtree(dirfd, path);
}
END_TEST

/* A failed append's cut-back is made durable.  The failure: the .idx's
 * fdatasync of a flush_ms=0 append reports EIO although the disk took
 * the bytes (the .log's sync had succeeded), so the failed batch, whole
 * with good CRCs, sits on the disk.  Its cut-back (ftruncate of both
 * files) must reach the disk before anything else is acknowledged, or
 * the power cut below brings the batch back: a write that failed with
 * EIO served as data after the reopen.  With log_cut_fails the .log's
 * first ftruncate fails too, so the cut is made later, by the time roll
 * that seals the segment (there it would also claim an offset the next
 * segment holds). */
static const struct io_ops *below; /* crashsim's table */
static atomic_int idx_sync_fails, log_cut_fails;

static int synced_but_failing_fdatasync(int fd)
{
	int r = below->fdatasync(fd);

	if (r == 0 && test_fd_is(fd, ".idx") &&
	    atomic_exchange(&idx_sync_fails, 0)) {
		errno = EIO;
		return -1;
	}
	return r;
}

static int failing_log_ftruncate(int fd, off_t len)
{
	if (test_fd_is(fd, ".log") && atomic_exchange(&log_cut_fails, 0)) {
		errno = EIO;
		return -1;
	}
	return below->ftruncate(fd, len);
}

static void failed_append_then_powercut(int cut_fails)
{
	struct partition_info info;
	struct partition *p;
	struct io_ops ops;
	struct config cfg;
	char path[4096], msg[MAX_MSG_LEN + 64];
	uint64_t end = 0;
	size_t len;
	int dirfd, i;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = 0; /* each append synced in the append */
	cfg.segment_ms = 1000;
	crashsim_install();
	below = io_ops_get();
	ops = *below;
	ops.fdatasync = synced_but_failing_fdatasync;
	ops.ftruncate = failing_log_ftruncate;
	io_ops_set(&ops);
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, 1, &p), 0);
	for (i = 0; i < 20; i++) {
		len = make_msg(3, i, msg);
		ck_assert_int_eq(partition_append(p, msg, len, 1, 2,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
		end += len;
	}
	atomic_store(&idx_sync_fails, 1);
	atomic_store(&log_cut_fails, cut_fails);
	len = make_msg(3, 20, msg);
	ck_assert_int_eq(partition_append(p, msg, len, 1, 2, PARTITION_ANY_END,
					  NULL, NULL),
			 -EIO);
	ck_assert_int_eq(atomic_load(&idx_sync_fails), 0);
	ck_assert_int_eq(atomic_load(&log_cut_fails), 0);
	/* the cut the failed append could not make, before a time roll
	 * seals the segment */
	if (cut_fails) {
		ck_assert_int_eq(partition_tick(p, 60000, NULL), 0);
		partition_get_info(p, &info);
		ck_assert_uint_eq(info.segments, 2);
	}
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 1, NULL), 0);
	partition_discard(p);
	crashsim_uninstall();

	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 3, &p, NULL), 0);
	partition_get_info(p, &info);
	ck_assert_msg(info.end_byte == end && info.next_offset == 20,
		      "the failed append came back: end %llu (want %llu), "
		      "%llu messages (want 20)",
		      (unsigned long long)info.end_byte,
		      (unsigned long long)end,
		      (unsigned long long)info.next_offset);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dirfd, path);
}

START_TEST(test_failed_append_cut_is_durable)
{
	failed_append_then_powercut(0);
}
END_TEST

START_TEST(test_failed_cut_back_retried_durably)
{
	failed_append_then_powercut(1);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crashsim");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_drop_loses_unflushed);
	tcase_add_test(tc, test_recovery_cut_is_durable);
	tcase_add_test(tc, test_failed_append_cut_is_durable);
	tcase_add_test(tc, test_failed_cut_back_retried_durably);
	tcase_add_loop_test(tc, test_crash_recover, 0, nseeds());
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crash_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
