/*
 * check_maint.c - the maintenance pass over a registry opened without a
 * mount: with a fake clock, one pass flushes by flush_ms, rolls by
 * segment_ms, deletes by retention_ms and compresses the sealed segments,
 * says so in its report, and tells the FUSE layer (its invalidate hook)
 * when retention made a hole.  A tick that fails is counted and logged
 * once, not every pass.  The thread itself runs passes on the real clock
 * until it is stopped.  Idle partitions: after a mount that could not
 * use the mount summary (a crash) their due times are learnt by a sweep
 * that opens and closes them a few at a time; a setting that cannot make
 * maintenance fall due sooner opens none of them.
 */
#include <errno.h>
#include <limits.h>
#include <time.h>

#include "testutil.h"
#include "maint.h"
#include "registry.h"

static struct registry *reg;
static struct node *topic, *pa, *pb;
static char dir[PATH_MAX], logpath[PATH_MAX + 8];
static int dirfd_;
static int saved_stderr = -1;
static int64_t fake_now;
static struct config cfg_;

/* What the invalidate hook saw. */
static unsigned invalidations;
static struct node *invalidated;
static uint64_t invalidated_from;

static void record_invalidate(struct registry *r, struct node *n, uint64_t from)
{
	(void)r;
	invalidations++;
	invalidated = n;
	invalidated_from = from;
}

static const struct registry_hooks hooks = {
	.invalidate = record_invalidate,
};

static int64_t clock_fake(void)
{
	return fake_now;
}

/* Topic t, partitions a and b; one second segments, retention 2.5 s,
 * a flush every second, LZ4 for sealed segments. */
static void setup(void)
{
	struct config cfg;

	dirfd_ = test_tmpdir(dir);
	memset(&cfg_, 0, sizeof(cfg_));
	snprintf(logpath, sizeof(logpath), "%s.log", dir);
	config_defaults(&cfg);
	cfg.set = 0;
	cfg.segment_ms = 1000;
	cfg.retention_ms = 2500;
	cfg.flush_ms = 1000;
	cfg.compression = COMPRESSION_LZ4;
	cfg_ = cfg;
	ck_assert_int_eq(registry_open(dir, &cfg, &hooks, &reg), 0);
	ck_assert_int_eq(registry_mkdir(reg,
					registry_node(reg, REGISTRY_INO_ROOT),
					"t", 0755, 0, 0, &topic),
			 0);
	ck_assert_int_eq(registry_create(reg, topic, "a", 0644, 0, 0, &pa), 0);
	ck_assert_int_eq(registry_create(reg, topic, "b", 0644, 0, 0, &pb), 0);
	/* The partitions were made (and last flushed) at about now. */
	fake_now = registry_now_ms();
	invalidations = 0;
	invalidated = NULL;
	invalidated_from = UINT64_MAX;
}

static void teardown(void)
{
	io_ops_set(NULL);
	ck_assert_int_eq(registry_close(reg), 0);
	reg = NULL;
	test_rmtree(dirfd_, dir);
	unlink(logpath);
}

/* How many times needle occurs in hay. */
static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Append one line to n's partition, stamped at ts. */
static void append_line(struct node *n, const char *line, int64_t ts)
{
	ck_assert_int_eq(partition_append(n->part, line, strlen(line), 1, ts,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
}

static struct partition_info info_of(struct node *n)
{
	struct partition_info info;

	ck_assert_int_eq(registry_info(reg, n, &info), 0);
	return info;
}

/* One pass at base + ms; the report is checked against the expected
 * figures, field by field so a failure names the field. */
static void pass_at(int64_t base, int64_t ms, unsigned flushed, unsigned rolled,
		    uint64_t deleted, unsigned compressed)
{
	struct maint_report rep;

	memset(&rep, 0xff, sizeof(rep));
	fake_now = base + ms;
	maint_pass(reg, clock_fake, &rep);
	ck_assert_uint_eq(rep.partitions, 2);
	ck_assert_uint_eq(rep.flushed, flushed);
	ck_assert_uint_eq(rep.rolled, rolled);
	ck_assert_uint_eq(rep.segments_deleted, deleted);
	ck_assert_uint_eq(rep.compressed, compressed);
	ck_assert_uint_eq(rep.failed, 0);
}

START_TEST(test_pass_rolls_deletes_compresses)
{
	int64_t base = fake_now;
	struct partition_info ia;

	append_line(pa, "one\n", base);
	/* Half a second on: nothing is due. */
	pass_at(base, 500, 0, 0, 0, 0);
	ck_assert_uint_eq(info_of(pa).segments, 1);
	ck_assert_uint_eq(info_of(pa).flushed_byte, 0);
	/* A second on: both flush, a's segment is a second old and rolls,
	 * and the segment it sealed is compressed in the same pass.  b is
	 * empty: an empty segment never rolls. */
	pass_at(base, 1000, 2, 1, 0, 1);
	ia = info_of(pa);
	ck_assert_uint_eq(ia.segments, 2);
	ck_assert_uint_eq(ia.flushed_byte, 4);
	ck_assert_uint_eq(ia.end_byte, 4);
	ck_assert_uint_eq(info_of(pb).segments, 1);
	ck_assert_uint_eq(
		metrics_get(partition_metrics(pa->part), segments_compressed),
		1);
	ck_assert_uint_eq(invalidations, 0);

	append_line(pa, "two\n", base + 1000);
	pass_at(base, 2000, 2, 1, 0, 1);
	ck_assert_uint_eq(info_of(pa).segments, 3);
	/* Not a second since the last flush, nothing old enough. */
	pass_at(base, 2400, 0, 0, 0, 0);
	/* The first segment's newest line is now 3 s old, past 2.5 s of
	 * retention; the second's is 2 s old and stays.  The FUSE layer
	 * hears of the hole once. */
	pass_at(base, 3000, 2, 0, 1, 0);
	ia = info_of(pa);
	ck_assert_uint_eq(ia.segments, 2);
	ck_assert_uint_eq(ia.start_byte, 4);
	ck_assert_uint_eq(ia.start_offset, 1);
	ck_assert_uint_eq(ia.end_byte, 8);
	ck_assert_uint_eq(invalidations, 1);
	ck_assert_ptr_eq(invalidated, pa);
	ck_assert_uint_eq(invalidated_from, 0);
	ck_assert_uint_eq(info_of(pb).start_byte, 0);
}
END_TEST

/* A removed partition is out of the tree: the pass no longer visits it,
 * also while an open handle (a pin) keeps it open, nor once the last pin
 * closed it. */
START_TEST(test_pass_skips_removed)
{
	struct maint_report rep;
	int64_t base = fake_now;

	append_line(pb, "x\n", base);
	ck_assert_int_eq(registry_pin(reg, pb), 0);
	ck_assert_int_eq(registry_unlink(reg, topic, "b"), 0);
	fake_now = base + 1000;
	maint_pass(reg, clock_fake, &rep);
	/* Only a is visited: b's line is a second old but not rolled. */
	ck_assert_uint_eq(rep.partitions, 1);
	ck_assert_uint_eq(rep.flushed, 1);
	ck_assert_uint_eq(rep.rolled, 0);
	ck_assert_uint_eq(info_of(pb).segments, 1);
	registry_unpin(reg, pb);
	maint_pass(reg, clock_fake, &rep);
	ck_assert_uint_eq(rep.partitions, 1);
}
END_TEST

/* One io_ops table: fdatasync fails with EIO. */
static struct io_ops failing;

static int fail_fdatasync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

START_TEST(test_failed_tick_logged_once)
{
	struct maint_report rep;
	int64_t base = fake_now;
	char log[4096];

	append_line(pa, "one\n", base);
	failing = *io_ops_default();
	failing.fdatasync = fail_fdatasync;
	io_ops_set(&failing);
	test_log_begin(logpath, &saved_stderr);
	fake_now = base + 1000;
	maint_pass(reg, clock_fake, &rep);
	ck_assert_uint_ge(rep.failed, 1);
	fake_now = base + 2000;
	maint_pass(reg, clock_fake, &rep);
	ck_assert_uint_ge(rep.failed, 1);
	io_ops_set(NULL);
	fake_now = base + 3000;
	maint_pass(reg, clock_fake, &rep);
	ck_assert_uint_eq(rep.failed, 0);
	ck_assert_uint_eq(rep.flushed, 2);
	test_log_end(logpath, &saved_stderr, log, sizeof(log));
	/* Said when it started and when it ended, not on every pass. */
	ck_assert_uint_eq(count_of(log, "maintenance of partition 'a': "), 1);
	ck_assert_uint_eq(count_of(log, "maintenance of partition 'a' works "
					"again"),
			  1);
}
END_TEST

/* The thread runs passes on the real clock until it is stopped: a line
 * five seconds old is rolled away and deleted by retention. */
START_TEST(test_thread_ticks_until_stopped)
{
	struct timespec pause = {0, 10 * 1000000L};
	struct maint *mt = NULL;
	int i;

	append_line(pa, "old\n", registry_now_ms() - 5000);
	ck_assert_int_eq(maint_start(reg, &mt), 0);
	ck_assert_ptr_nonnull(mt);
	for (i = 0; i < 1000 && info_of(pa).start_byte != 4; i++)
		nanosleep(&pause, NULL);
	maint_stop(mt);
	ck_assert_uint_eq(info_of(pa).start_byte, 4);
	ck_assert_uint_eq(info_of(pa).segments, 1);
	ck_assert_uint_eq(invalidations, 1);
	/* Stopped: no pass runs any more. */
	append_line(pa, "old\n", registry_now_ms() - 5000);
	nanosleep(&(struct timespec){0, 3 * MAINT_PERIOD_MS * 1000000L}, NULL);
	ck_assert_uint_eq(info_of(pa).start_byte, 4);
	ck_assert_uint_eq(info_of(pa).segments, 1);
	maint_stop(NULL);
}
END_TEST

/* Partition name of topic t, or NULL. */
static struct node *find_part(const char *name)
{
	struct node *t, *p;

	for (t = registry_node(reg, REGISTRY_INO_ROOT)->children; t;
	     t = t->next)
		for (p = t->children; p; p = p->next)
			if (!strcmp(p->name, name))
				return p;
	return NULL;
}

/* One pass at fake time at; the report in *rep. */
static void pass_report(int64_t at, struct maint_report *rep)
{
	fake_now = at;
	memset(rep, 0xff, sizeof(*rep));
	maint_pass(reg, clock_fake, rep);
}

/* After a mount without the mount summary (a crash: no clean mark) no
 * idle partition's due time is known.  The sweep opens those whose
 * settings give maintenance work while idle (a: retention and
 * compression), ticks them (a's expired segment goes, though nothing
 * uses a) and closes them again; b, with neither retention nor
 * compression, is left for its next use.  Once known, nothing is
 * opened for nothing. */
START_TEST(test_sweep_after_crash)
{
	struct maint_report rep;
	int64_t base = fake_now;
	struct node *a, *b;

	ck_assert_int_eq(registry_config_set(reg, pb, CONFIG_RETENTION_MS,
					     "-1", 2),
			 0);
	ck_assert_int_eq(registry_config_set(reg, pb, CONFIG_COMPRESSION,
					     "none", 4),
			 0);
	append_line(pa, "one\n", base);
	pass_at(base, 1000, 2, 1, 0, 1); /* a rolled, its old segment compressed */
	ck_assert_uint_eq(info_of(pa).segments, 2);
	ck_assert_int_eq(registry_close(reg), 0);
	ck_assert_int_eq(unlinkat(dirfd_, ".fluxfs.clean", 0), 0);
	ck_assert_int_eq(registry_open(dir, &cfg_, &hooks, &reg), 0);
	a = find_part("a");
	b = find_part("b");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert(!registry_part_is_open(reg, a));

	pass_report(base + 10000, &rep);
	ck_assert_uint_eq(rep.idle_swept, 1);
	ck_assert_uint_eq(rep.idle_opened, 0);
	ck_assert_uint_eq(rep.segments_deleted, 1);
	ck_assert(!registry_part_is_open(reg, a));
	ck_assert(!registry_part_is_open(reg, b));
	pass_report(base + 20000, &rep);
	ck_assert_uint_eq(rep.idle_swept, 0);
	ck_assert_uint_eq(rep.idle_opened, 0);
	ck_assert_uint_eq(rep.partitions, 0);
	ck_assert_uint_eq(info_of(a).segments, 1);
	ck_assert_uint_eq(info_of(a).start_offset, 1);
}
END_TEST

/* Counts over every partition: how many read their partition.conf, and
 * how many still wait to have their due time learnt. */
static void count_sweep(unsigned *loaded, unsigned *unknown)
{
	struct node *t, *p;

	*loaded = *unknown = 0;
	for (t = registry_node(reg, REGISTRY_INO_ROOT)->children; t;
	     t = t->next)
		for (p = t->children; p; p = p->next) {
			*loaded += p->over_loaded != 0;
			*unknown += p->due_unknown != 0;
		}
}

/* The walk that finds the sweep's partitions holds the registry's lock,
 * which every open waits for: after a crash it reads a few
 * partition.conf files per pass (64), not every partition's at once,
 * and later passes learn the rest.  300 partitions of a topic with
 * neither retention nor compression: none is opened. */
START_TEST(test_sweep_reads_a_few_confs_per_pass)
{
	struct maint_report rep;
	struct node *many, *p;
	unsigned i, loaded, unknown, passes = 0;
	char name[16];

	ck_assert_int_eq(registry_mkdir(reg,
					registry_node(reg, REGISTRY_INO_ROOT),
					"many", 0755, 0, 0, &many),
			 0);
	ck_assert_int_eq(registry_config_set(reg, many, CONFIG_RETENTION_MS,
					     "-1", 2),
			 0);
	ck_assert_int_eq(registry_config_set(reg, many, CONFIG_COMPRESSION,
					     "none", 4),
			 0);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "%u", i);
		ck_assert_int_eq(registry_create(reg, many, name, 0644, 0, 0,
						 &p),
				 0);
	}
	ck_assert_int_eq(registry_close(reg), 0);
	ck_assert_int_eq(unlinkat(dirfd_, ".fluxfs.clean", 0), 0);
	ck_assert_int_eq(registry_open(dir, &cfg_, &hooks, &reg), 0);
	count_sweep(&loaded, &unknown);
	ck_assert_uint_eq(loaded, 0);
	ck_assert_uint_eq(unknown, 302);

	pass_report(fake_now + 100, &rep);
	count_sweep(&loaded, &unknown);
	ck_assert_uint_le(loaded, 64);
	ck_assert_uint_ge(unknown, 302 - 64);
	while (unknown > 2 && passes++ < 10) {
		pass_report(fake_now + 100, &rep);
		ck_assert_uint_eq(rep.idle_opened, 0);
		count_sweep(&loaded, &unknown);
	}
	/* t's a and b (retention and lz4 by default) are swept, once */
	ck_assert_uint_le(unknown, 2);
	ck_assert_uint_le(passes, 5);
	ck_assert_uint_ge(loaded, 300);
}
END_TEST

/* Closed idle partitions with nothing due: a setting that cannot make
 * maintenance fall due sooner (flush_ms, segment_bytes,
 * max_message_bytes, a longer retention, another codec) opens none of
 * them, on the topic or on a partition; a shorter retention opens
 * each once. */
START_TEST(test_setting_opens_only_when_sooner)
{
	static const struct {
		int key;
		const char *val;
	} unrelated[] = {
		{CONFIG_FLUSH_MS, "500"},
		{CONFIG_SEGMENT_BYTES, "8k"},
		{CONFIG_MAX_MESSAGE_BYTES, "2k"},
		{CONFIG_RETENTION_MS, "1h"},
		{CONFIG_SEGMENT_MS, "2h"},
		{CONFIG_COMPRESSION, "zstd:3"},
	};
	struct maint_report rep;
	int64_t at = fake_now;
	size_t i;

	ck_assert_int_eq(registry_part_close_idle(reg, pa), 0);
	ck_assert_int_eq(registry_part_close_idle(reg, pb), 0);
	ck_assert(!registry_part_is_open(reg, pa));
	ck_assert(!registry_part_is_open(reg, pb));
	for (i = 0; i < sizeof(unrelated) / sizeof(unrelated[0]); i++) {
		ck_assert_int_eq(registry_config_set(reg, topic,
						     unrelated[i].key,
						     unrelated[i].val,
						     strlen(unrelated[i].val)),
				 0);
		ck_assert_int_eq(registry_config_set(reg, pb,
						     unrelated[i].key,
						     unrelated[i].val,
						     strlen(unrelated[i].val)),
				 0);
		pass_report(at += 100, &rep);
		ck_assert_msg(rep.idle_opened == 0 && rep.partitions == 0,
			      "setting %s opened %u partitions",
			      config_key_name(unrelated[i].key),
			      rep.idle_opened);
		/* Nothing due: after the first pass (the partitions were
		 * new, their due times unknown), the tree is not walked. */
		ck_assert_msg(i == 0 || rep.walked == 0,
			      "setting %s: the pass walked the tree",
			      config_key_name(unrelated[i].key));
	}
	ck_assert(!registry_part_is_open(reg, pa));
	/* Shorter than the hour the topic has now: a is due once. */
	ck_assert_int_eq(registry_config_set(reg, topic, CONFIG_RETENTION_MS,
					     "1s", 2),
			 0);
	pass_report(at += 100, &rep);
	ck_assert_uint_eq(rep.walked, 1);
	ck_assert_uint_eq(rep.idle_opened, 1); /* b keeps its own hour */
	ck_assert(registry_part_is_open(reg, pa));
	ck_assert(!registry_part_is_open(reg, pb));
}
END_TEST

static Suite *maint_suite(void)
{
	Suite *s = suite_create("maint");
	TCase *tc = tcase_create("pass");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pass_rolls_deletes_compresses);
	tcase_add_test(tc, test_pass_skips_removed);
	tcase_add_test(tc, test_failed_tick_logged_once);
	tcase_add_test(tc, test_thread_ticks_until_stopped);
	tcase_add_test(tc, test_sweep_after_crash);
	tcase_add_test(tc, test_sweep_reads_a_few_confs_per_pass);
	tcase_add_test(tc, test_setting_opens_only_when_sooner);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(maint_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
