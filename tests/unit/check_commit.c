/*
 * check_commit.c - group commit (commit.c) and the partition's fsync path
 * built on it (partition_sync): concurrent requests share flushes, a flush
 * answers only what it covered, a failing flush fails exactly the requests
 * it covered, and what partition_sync acknowledged survives a power cut
 * although partition.state's recovery point stayed behind.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit.h"
#include "config.h"
#include "crashsim.h"
#include "fault.h"
#include "io.h"
#include "layout.h"
#include "partition.h"
#include "testutil.h"

/* ---- the commit object alone ------------------------------------------ */

/* A model of a log: writers bump written, a flush makes what was written
 * when it began durable. */
struct model {
	struct commit c;
	atomic_ullong written, durable, covered;
	atomic_int flushes_running, overlap;
	useconds_t flush_us;
};

static int model_flush(void *arg, unsigned covered)
{
	struct model *m = arg;
	unsigned long long upto = atomic_load(&m->written);

	if (atomic_fetch_add(&m->flushes_running, 1) != 0)
		atomic_store(&m->overlap, 1);
	usleep(m->flush_us);
	atomic_fetch_sub(&m->flushes_running, 1);
	atomic_fetch_add(&m->covered, covered);
	if (upto > atomic_load(&m->durable))
		atomic_store(&m->durable, upto);
	return 0;
}

START_TEST(test_single_caller)
{
	struct model m = {.flush_us = 0};
	uint64_t flushes, requests;
	unsigned queued;

	ck_assert_int_eq(commit_init(&m.c), 0);
	atomic_store(&m.written, 5);
	ck_assert_int_eq(commit_sync(&m.c, model_flush, &m), 0);
	ck_assert_uint_eq(atomic_load(&m.durable), 5);
	ck_assert_int_eq(commit_sync(&m.c, model_flush, &m), 0);
	commit_stats(&m.c, &flushes, &requests, &queued);
	ck_assert_uint_eq(flushes, 2); /* nobody to share with */
	ck_assert_uint_eq(requests, 2);
	ck_assert_uint_eq(queued, 0);
	commit_destroy(&m.c);
}
END_TEST

#define WRITERS 32
#define ROUNDS 40

static atomic_int bad_acks;

static void *model_writer(void *arg)
{
	struct model *m = arg;
	unsigned long long mine;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		mine = atomic_fetch_add(&m->written, 1) + 1;
		if (commit_sync(&m->c, model_flush, m) != 0 ||
		    atomic_load(&m->durable) < mine)
			atomic_fetch_add(&bad_acks, 1);
	}
	return NULL;
}

/* Many concurrent requests: every one is answered only after a flush that
 * began after it (durable covers its write), flushes never overlap, and
 * they are shared: far fewer flushes than requests. */
START_TEST(test_concurrent_share)
{
	struct model m = {.flush_us = 2000};
	pthread_t t[WRITERS];
	uint64_t flushes, requests;
	int i;

	ck_assert_int_eq(commit_init(&m.c), 0);
	atomic_store(&bad_acks, 0);
	for (i = 0; i < WRITERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, model_writer, &m),
				 0);
	for (i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	commit_stats(&m.c, &flushes, &requests, NULL);
	ck_assert_int_eq(atomic_load(&bad_acks), 0);
	ck_assert_int_eq(atomic_load(&m.overlap), 0);
	ck_assert_uint_eq(requests, WRITERS * ROUNDS);
	ck_assert_uint_eq(atomic_load(&m.covered), requests);
	ck_assert_msg(flushes * 4 <= requests,
		      "%llu flushes for %llu requests: not shared",
		      (unsigned long long)flushes,
		      (unsigned long long)requests);
	commit_destroy(&m.c);
}
END_TEST

/* A flush failing half-way (the second of its two fdatasyncs) fails
 * every request it covered, and none before or after it.  Gates hold
 * each flush until the test has queued the requests the next one must
 * cover, so who is covered by which flush is known exactly:
 * flush 1 covers A; flush 2 (fails) covers B, C, D; flush 3 covers E, F. */
struct gated {
	struct commit c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int released;	     /* flushes allowed to finish */
	int started;	     /* flushes begun */
	unsigned covered[3]; /* what each flush was told it covers */
	int fd[2];
};

static int gated_flush(void *arg, unsigned covered)
{
	struct gated *g = arg;
	int me, ret;

	pthread_mutex_lock(&g->lock);
	me = ++g->started;
	g->covered[me - 1] = covered;
	pthread_cond_broadcast(&g->cond);
	while (g->released < me)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	ret = io_fdatasync(g->fd[0]);
	if (ret == 0)
		ret = io_fdatasync(g->fd[1]);
	return ret;
}

struct gated_req {
	struct gated *g;
	pthread_t t;
	int ret;
};

static void *gated_caller(void *arg)
{
	struct gated_req *r = arg;

	r->ret = commit_sync(&r->g->c, gated_flush, r->g);
	return NULL;
}

static void wait_started(struct gated *g, int n)
{
	pthread_mutex_lock(&g->lock);
	while (g->started < n)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void wait_queued(struct gated *g, unsigned n)
{
	unsigned q = 0;

	for (;;) {
		commit_stats(&g->c, NULL, NULL, &q);
		if (q >= n)
			return;
		usleep(1000);
	}
}

static void release(struct gated *g, int n)
{
	pthread_mutex_lock(&g->lock);
	g->released = n;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void start(struct gated_req *r, struct gated *g)
{
	r->g = g;
	r->ret = 1;
	ck_assert_int_eq(pthread_create(&r->t, NULL, gated_caller, r), 0);
}

START_TEST(test_failure_fails_exactly_covered)
{
	struct gated g = {.released = 0, .started = 0};
	struct gated_req r[6];
	char path[4096];
	uint64_t flushes;
	int dirfd, i;

	dirfd = test_tmpdir(path);
	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	ck_assert_int_eq(commit_init(&g.c), 0);
	g.fd[0] = openat(dirfd, "a", O_RDWR | O_CREAT, 0600);
	g.fd[1] = openat(dirfd, "b", O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(g.fd[0], 0);
	ck_assert_int_ge(g.fd[1], 0);
#ifdef FLUXFS_FAULT_INJECTION
	/* flush 1's two syncs and flush 2's first pass; flush 2's second
	 * fails, and nothing after it */
	ck_assert_int_eq(fault_set("ops=fdatasync,errno=EIO,after=3,max=1"), 0);
#else
	fault_set("off");
	return; /* a build without fault injection cannot fail a sync */
#endif
	start(&r[0], &g); /* A leads flush 1 */
	wait_started(&g, 1);
	for (i = 1; i <= 3; i++) /* B, C, D wait for flush 2 */
		start(&r[i], &g);
	wait_queued(&g, 3);
	release(&g, 1);
	wait_started(&g, 2);
	for (i = 4; i <= 5; i++) /* E, F wait for flush 3 */
		start(&r[i], &g);
	wait_queued(&g, 2);
	release(&g, 2);
	wait_started(&g, 3);
	release(&g, 3);
	for (i = 0; i < 6; i++)
		pthread_join(r[i].t, NULL);
	fault_set("off");
	commit_stats(&g.c, &flushes, NULL, NULL);
	ck_assert_uint_eq(flushes, 3);
	ck_assert_uint_eq(g.covered[0], 1);
	ck_assert_uint_eq(g.covered[1], 3);
	ck_assert_uint_eq(g.covered[2], 2);
	ck_assert_int_eq(r[0].ret, 0);
	for (i = 1; i <= 3; i++)
		ck_assert_msg(r[i].ret == -EIO, "request %d got %d", i,
			      r[i].ret);
	ck_assert_int_eq(r[4].ret, 0);
	ck_assert_int_eq(r[5].ret, 0);
	close(g.fd[0]);
	close(g.fd[1]);
	commit_destroy(&g.c);
	test_rmtree(dirfd, path);
}
END_TEST

/* ---- partition_sync --------------------------------------------------- */

#define SYNC_WRITERS 8
#define SYNC_LINES 60
#define LINE_LEN 64

struct sync_writer {
	struct partition *p;
	int id;
	int sync; /* call partition_sync after each append */
	int failures;
	/* what was acknowledged (appended and, where asked, synced) */
	uint64_t acked_pos[SYNC_LINES];
	int nacked;
};

static void make_line(char *buf, int id, int i)
{
	memset(buf, 'a' + id, LINE_LEN);
	snprintf(buf, LINE_LEN, "w%02d l%04d ", id, i);
	buf[strlen(buf)] = '.';
	buf[LINE_LEN - 1] = '\n';
}

static void *sync_writer_run(void *arg)
{
	struct sync_writer *w = arg;
	char line[LINE_LEN];
	uint64_t pos;
	int i;

	for (i = 0; i < SYNC_LINES; i++) {
		make_line(line, w->id, i);
		if (partition_append(w->p, line, LINE_LEN, 1, 2,
				     PARTITION_ANY_END, NULL, &pos) < 0 ||
		    (w->sync && partition_sync(w->p) < 0)) {
			w->failures++;
			continue;
		}
		w->acked_pos[w->nacked++] = pos;
	}
	return NULL;
}

/* Run SYNC_WRITERS writers on one partition under crashsim, cut the
 * power (DROP: everything unsynced is gone), reopen: every acknowledged
 * line is there, at its position.  flush_ms: -1 with an explicit
 * partition_sync per line, or 0 (every append synced by itself). */
static void sync_powercut(int flush_ms)
{
	struct sync_writer w[SYNC_WRITERS];
	pthread_t t[SYNC_WRITERS];
	struct layout_state st;
	struct partition *p;
	struct config cfg;
	char path[4096], line[LINE_LEN], got[LINE_LEN];
	int dirfd, pfd, i, k;
	uint64_t flushes;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = flush_ms;
	crashsim_install();
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, 1, &p), 0);
	for (i = 0; i < SYNC_WRITERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].p = p;
		w[i].id = i;
		w[i].sync = flush_ms != 0;
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, sync_writer_run, &w[i]), 0);
	}
	for (i = 0; i < SYNC_WRITERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
		ck_assert_int_eq(w[i].nacked, SYNC_LINES);
	}
	/* the fsync path left partition.state behind: one segment, so
	 * recovery needs no newer recovery point */
	pfd = openat(dirfd, "p", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(pfd, 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	ck_assert_uint_eq(st.recovery_point, 0);
	close(pfd);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 7, NULL), 0);
	partition_discard(p);
	crashsim_uninstall();

	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, 3, &p, NULL), 0);
	for (i = 0; i < SYNC_WRITERS; i++)
		for (k = 0; k < w[i].nacked; k++) {
			make_line(line, i, k);
			ck_assert_int_eq(partition_read(p, w[i].acked_pos[k],
							got, LINE_LEN),
					 LINE_LEN);
			ck_assert_msg(!memcmp(got, line, LINE_LEN),
				      "writer %d line %d lost", i, k);
		}
	ck_assert_int_eq(partition_close(p), 0);
	(void)flushes;
	test_rmtree(dirfd, path);
}

START_TEST(test_sync_survives_powercut)
{
	sync_powercut(-1);
}
END_TEST

START_TEST(test_flush_ms0_survives_powercut)
{
	sync_powercut(0);
}
END_TEST

/* Create the SYNC_WRITERS partitions p0.. into p. */
static void create_partitions(int dirfd, const struct config *cfg,
			      struct partition **p)
{
	char name[16];
	int i;

	for (i = 0; i < SYNC_WRITERS; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert_int_eq(partition_create(dirfd, name, cfg, 1, &p[i]),
				 0);
	}
}

/* Cut the power under the SYNC_WRITERS partitions p0.. (DROP), and open
 * them again (recovery runs) into p. */
static void powercut_reopen(int dirfd, const struct config *cfg,
			    struct partition **p, uint64_t seed)
{
	char name[16];
	int i;

	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, seed, NULL), 0);
	for (i = 0; i < SYNC_WRITERS; i++)
		partition_discard(p[i]);
	crashsim_uninstall();
	for (i = 0; i < SYNC_WRITERS; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert_int_eq(
			partition_open(dirfd, name, cfg, 3, &p[i], NULL), 0);
	}
}

/* SYNC_WRITERS writers, one on each of p0.., each line synced: every
 * line acknowledged. */
static void run_sync_writers(struct partition **p, struct sync_writer *w)
{
	pthread_t t[SYNC_WRITERS];
	int i;

	for (i = 0; i < SYNC_WRITERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].p = p[i];
		w[i].id = i;
		w[i].sync = 1;
	}
	for (i = 0; i < SYNC_WRITERS; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, sync_writer_run, &w[i]), 0);
	for (i = 0; i < SYNC_WRITERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
}

/* After the power cut: every line the writers acknowledged is in its
 * partition, at its position; then close them. */
static void check_acked_and_close(struct partition **p,
				  const struct sync_writer *w)
{
	char line[LINE_LEN], got[LINE_LEN];
	int i, k;

	for (i = 0; i < SYNC_WRITERS; i++) {
		for (k = 0; k < w[i].nacked; k++) {
			make_line(line, i, k);
			ck_assert_msg(partition_read(p[i], w[i].acked_pos[k],
						     got, LINE_LEN) == LINE_LEN &&
					      !memcmp(got, line, LINE_LEN),
				      "partition %d line %d lost", i, k);
		}
		ck_assert_int_eq(partition_close(p[i]), 0);
	}
}

/* Partitions of one filesystem syncing together share a syncfs; when it
 * fails, each falls back to its own fdatasyncs, and what they acknowledged
 * survives a power cut all the same.  Every syncfs fails here (where
 * fault injection is built), so acknowledgements rest on the fallback. */
START_TEST(test_partitions_share_syncfs)
{
	struct sync_writer w[SYNC_WRITERS];
	struct partition *p[SYNC_WRITERS];
	struct config cfg;
	char path[4096];
	int dirfd;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = -1;
	crashsim_install();
#ifdef FLUXFS_FAULT_INJECTION
	ck_assert_int_eq(fault_set("ops=syncfs,errno=EIO"), 0);
#endif
	create_partitions(dirfd, &cfg, p);
	run_sync_writers(p, w);
#ifdef FLUXFS_FAULT_INJECTION
	/* the syncs did meet: some syncfs was tried (and failed) */
	ck_assert_uint_gt(fault_count(), 0);
	fault_set("off");
#endif
	powercut_reopen(dirfd, &cfg, p, 9);
	check_acked_and_close(p, w);
	test_rmtree(dirfd, path);
}
END_TEST

/* Counting syncfs calls over the table in force (crashsim's). */
static const struct io_ops *counted_under;
static atomic_int syncfs_calls;

static atomic_int slow_file_syncs; /* microseconds */

static int counted_syncfs(int fd)
{
	atomic_fetch_add(&syncfs_calls, 1);
	return counted_under->syncfs(fd);
}

static int slowed_fdatasync(int fd)
{
	struct stat st;

	if (atomic_load(&slow_file_syncs) && fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode))
		usleep((useconds_t)atomic_load(&slow_file_syncs));
	return counted_under->fdatasync(fd);
}

struct last_sync {
	struct partition *p;
	pthread_barrier_t *go;
	int ret;
};

static void *last_sync_run(void *arg)
{
	struct last_sync *l = arg;

	pthread_barrier_wait(l->go);
	l->ret = partition_sync(l->p);
	return NULL;
}

/* Partitions syncing together share a syncfs, and trust it: what they
 * acknowledged survives a power cut although no file of theirs was
 * fdatasynced for it.  crashsim holds what a syncfs wrote back until the
 * filesystem's next cache flush, as ext4 without a journal does (its
 * last metadata writes come after its flush): without the volume's
 * fdatasync after the syncfs, acknowledged lines are lost here. */
START_TEST(test_partitions_share_good_syncfs)
{
	struct sync_writer w[SYNC_WRITERS];
	pthread_t t[SYNC_WRITERS];
	struct partition *p[SYNC_WRITERS];
	struct last_sync last[SYNC_WRITERS];
	uint64_t last_pos[SYNC_WRITERS];
	pthread_barrier_t go;
	struct io_ops counting;
	struct config cfg;
	char path[4096], line[LINE_LEN], got[LINE_LEN];
	int dirfd, i, calls;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = -1;
	crashsim_install();
	counted_under = io_ops_get();
	counting = *counted_under;
	counting.syncfs = counted_syncfs;
	counting.fdatasync = slowed_fdatasync;
	io_ops_set(&counting);
	create_partitions(dirfd, &cfg, p);
	run_sync_writers(p, w);
	/* the syncs did meet */
	ck_assert_int_gt(atomic_load(&syncfs_calls), 0);
	/* A last round whose final flush is a shared syncfs: a line more in
	 * each partition, then all sync at once; the first one's own
	 * fdatasyncs are slowed so that the other seven queue behind it and
	 * share the next flush, and nothing syncs after it. */
	for (i = 0; i < SYNC_WRITERS; i++) {
		make_line(line, i, SYNC_LINES);
		ck_assert_int_eq(partition_append(p[i], line, LINE_LEN, 1, 2,
						  PARTITION_ANY_END, NULL,
						  &last_pos[i]),
				 0);
		last[i].p = p[i];
		last[i].go = &go;
	}
	ck_assert_int_eq(pthread_barrier_init(&go, NULL, SYNC_WRITERS), 0);
	calls = atomic_load(&syncfs_calls);
	atomic_store(&slow_file_syncs, 20000);
	for (i = 0; i < SYNC_WRITERS; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, last_sync_run, &last[i]), 0);
	for (i = 0; i < SYNC_WRITERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(last[i].ret, 0);
	}
	pthread_barrier_destroy(&go);
	ck_assert_int_gt(atomic_load(&syncfs_calls), calls);
	io_ops_set(counted_under);
	powercut_reopen(dirfd, &cfg, p, 13);
	for (i = 0; i < SYNC_WRITERS; i++) {
		make_line(line, i, SYNC_LINES);
		ck_assert_msg(partition_read(p[i], last_pos[i], got,
					     LINE_LEN) == LINE_LEN &&
				      !memcmp(got, line, LINE_LEN),
			      "partition %d: the last line, synced by the "
			      "shared syncfs, lost",
			      i);
	}
	check_acked_and_close(p, w);
	test_rmtree(dirfd, path);
}
END_TEST

/* After a roll the recovery point must move into the new active segment
 * (else a bad entry in the sealed one would be taken for a torn tail and
 * cut with everything after it): partition_sync writes the state then. */
START_TEST(test_sync_moves_state_after_roll)
{
	struct partition_info info;
	struct layout_state st;
	struct partition *p;
	struct config cfg;
	char path[4096], line[LINE_LEN];
	int dirfd, pfd, i;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = -1;
	cfg.segment_bytes = 4096;
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, 1, &p), 0);
	for (i = 0; i < 100; i++) {
		make_line(line, 0, i);
		ck_assert_int_eq(partition_append(p, line, LINE_LEN, 1, 2,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
		ck_assert_int_eq(partition_sync(p), 0);
	}
	partition_get_info(p, &info);
	ck_assert_uint_gt(info.segments, 1);
	pfd = openat(dirfd, "p", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	close(pfd);
	/* inside the active segment: at most one segment's bytes behind */
	ck_assert_uint_gt(st.recovery_point, 0);
	ck_assert_uint_ge(st.recovery_point + cfg.segment_bytes, info.end_byte);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dirfd, path);
}
END_TEST

/* Without a scheduled flush the tick moves the recovery point up to what
 * the syncs made durable, once a second, and syncs nothing itself. */
START_TEST(test_tick_catches_state_up)
{
	struct partition_info info;
	struct layout_state st;
	struct partition *p;
	struct config cfg;
	char path[4096], line[LINE_LEN];
	int dirfd, pfd;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = -1;
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, 1000, &p), 0);
	make_line(line, 0, 0);
	ck_assert_int_eq(partition_append(p, line, LINE_LEN, 1, 1000,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
	ck_assert_int_eq(partition_sync(p), 0);
	make_line(line, 0, 1);
	ck_assert_int_eq(partition_append(p, line, LINE_LEN, 1, 1000,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
	pfd = openat(dirfd, "p", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(pfd, 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	ck_assert_uint_eq(st.recovery_point, 0);
	ck_assert_int_eq(partition_tick(p, 1500, NULL), 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	ck_assert_uint_eq(st.recovery_point, 0);
	ck_assert_int_eq(partition_tick(p, 10999, NULL), 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	ck_assert_uint_eq(st.recovery_point, 0); /* not 10 s yet */
	ck_assert_int_eq(partition_tick(p, 11000, NULL), 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	/* the synced line, not the unsynced one after it */
	ck_assert_uint_eq(st.recovery_point, LINE_LEN);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.flushed_byte, LINE_LEN);
	close(pfd);
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dirfd, path);
}
END_TEST

/* The scheduled flush (flush_ms > 0) writes partition.state only when
 * recovery needs it: after a roll, and when the tick catches it up every
 * PART_STATE_CATCH_UP_MS.  Its data is durable all the same: a power cut
 * after the flush keeps every line the flush covered. */
START_TEST(test_scheduled_flush_state_lazy)
{
	struct partition_tick_report rep;
	struct partition_info info;
	struct layout_state st;
	struct partition *p;
	struct config cfg;
	char path[4096], line[LINE_LEN], got[LINE_LEN];
	int dirfd, pfd, i, k;
	int64_t now = 1000;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = 1000;
	cfg.segment_bytes = 4096;
	crashsim_install();
	ck_assert_int_eq(partition_create(dirfd, "p", &cfg, now, &p), 0);
	pfd = openat(dirfd, "p", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(pfd, 0);
	/* 8 scheduled flushes inside the first segment: no state write */
	for (i = 0; i < 8; i++) {
		make_line(line, 0, i);
		ck_assert_int_eq(partition_append(p, line, LINE_LEN, 1, now,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
		now += 1000;
		ck_assert_int_eq(partition_tick(p, now, &rep), 0);
		ck_assert_int_eq(rep.flushed, 1);
		partition_get_info(p, &info);
		ck_assert_uint_eq(info.flushed_byte,
				  (uint64_t)(i + 1) * LINE_LEN);
		ck_assert_int_eq(layout_state_load(pfd, &st), 0);
		ck_assert_uint_eq(st.recovery_point, 0);
	}
	/* the catch-up, 10 s after the partition's start */
	now += 2000;
	ck_assert_int_eq(partition_tick(p, now, NULL), 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	ck_assert_uint_eq(st.recovery_point, 8 * LINE_LEN);
	/* past a roll, the first scheduled flush moves it into the new
	 * active segment at once */
	for (i = 8; i < 8 + 4096 / LINE_LEN + 1; i++) {
		make_line(line, 0, i);
		ck_assert_int_eq(partition_append(p, line, LINE_LEN, 1, now,
						  PARTITION_ANY_END, NULL,
						  NULL),
				 0);
	}
	partition_get_info(p, &info);
	ck_assert_uint_ge(info.segments, 2);
	now += 1000;
	ck_assert_int_eq(partition_tick(p, now, NULL), 0);
	ck_assert_int_eq(layout_state_load(pfd, &st), 0);
	ck_assert_uint_eq(st.recovery_point, (uint64_t)i * LINE_LEN);
	close(pfd);
	ck_assert_int_eq(crashsim_crash(CRASHSIM_DROP, 5, NULL), 0);
	partition_discard(p);
	crashsim_uninstall();
	ck_assert_int_eq(partition_open(dirfd, "p", &cfg, now, &p, NULL), 0);
	partition_get_info(p, &info);
	ck_assert_uint_eq(info.end_byte, (uint64_t)i * LINE_LEN);
	for (k = 0; k < i; k++) {
		make_line(line, 0, k);
		ck_assert_int_eq(partition_read(p, (uint64_t)k * LINE_LEN, got,
						LINE_LEN),
				 LINE_LEN);
		ck_assert_msg(!memcmp(got, line, LINE_LEN), "line %d lost", k);
	}
	ck_assert_int_eq(partition_close(p), 0);
	test_rmtree(dirfd, path);
}
END_TEST

/* flush_ms=0 appends on partitions of one filesystem share their syncs
 * (a syncfs when several wait at once), and a failed sync fails exactly
 * the appends it covered: each failed append is cut back, the next one
 * takes its place.  After a power cut every partition holds exactly the
 * lines whose append succeeded, in order: none lost, no failed one
 * served.  Where fault injection is built, variant 0 fails every syncfs
 * (so each acknowledgement rests on the partition's own fdatasyncs, and
 * a syncfs was tried: the appends did meet), variant 1 fails syncs at
 * random. */
struct acked_writer {
	struct partition *p;
	int id, nacked, failures;
	int acked[SYNC_LINES]; /* line numbers whose append succeeded */
};

static void *acked_writer_run(void *arg)
{
	struct acked_writer *w = arg;
	char line[LINE_LEN];
	int i;

	for (i = 0; i < SYNC_LINES; i++) {
		make_line(line, w->id, i);
		if (partition_append(w->p, line, LINE_LEN, 1, 2,
				     PARTITION_ANY_END, NULL, NULL) < 0)
			w->failures++;
		else
			w->acked[w->nacked++] = i;
	}
	return NULL;
}

START_TEST(test_flush_ms0_partitions_share_and_fail_exactly)
{
	static const char *const spec[] = {
		"ops=syncfs,errno=EIO",
		"seed=11,p=0.1,ops=fdatasync+syncfs,errno=EIO",
	};
	struct acked_writer w[SYNC_WRITERS];
	pthread_t t[SYNC_WRITERS];
	struct partition *p[SYNC_WRITERS];
	struct partition_info info;
	struct config cfg;
	char path[4096], line[LINE_LEN], got[LINE_LEN];
	int dirfd, i, k, failures = 0;
	uint64_t faults = 0;

	dirfd = test_tmpdir(path);
	config_defaults(&cfg);
	cfg.flush_ms = 0;
	crashsim_install();
	create_partitions(dirfd, &cfg, p);
	for (i = 0; i < SYNC_WRITERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].p = p[i];
		w[i].id = i;
	}
#ifdef FLUXFS_FAULT_INJECTION
	faults = fault_count();
	ck_assert_int_eq(fault_set(spec[_i]), 0);
#else
	(void)spec;
	(void)faults;
#endif
	for (i = 0; i < SYNC_WRITERS; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, acked_writer_run, &w[i]),
			0);
	for (i = 0; i < SYNC_WRITERS; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
#ifdef FLUXFS_FAULT_INJECTION
	fault_set("off");
	ck_assert_uint_gt(fault_count(), faults);
	if (_i == 0)
		ck_assert_int_eq(failures, 0); /* the fallback took over */
	else
		ck_assert_int_gt(failures, 0);
#endif
	powercut_reopen(dirfd, &cfg, p, 13);
	for (i = 0; i < SYNC_WRITERS; i++) {
		partition_get_info(p[i], &info);
		ck_assert_msg(info.end_byte == (uint64_t)w[i].nacked * LINE_LEN,
			      "partition %d holds %llu bytes for %d lines", i,
			      (unsigned long long)info.end_byte, w[i].nacked);
		for (k = 0; k < w[i].nacked; k++) {
			make_line(line, i, w[i].acked[k]);
			ck_assert_int_eq(partition_read(p[i],
							(uint64_t)k * LINE_LEN,
							got, LINE_LEN),
					 LINE_LEN);
			ck_assert_msg(!memcmp(got, line, LINE_LEN),
				      "partition %d: line %d is not the "
				      "acknowledged line %d",
				      i, k, w[i].acked[k]);
		}
		ck_assert_int_eq(partition_close(p[i]), 0);
	}
	test_rmtree(dirfd, path);
}
END_TEST

static Suite *commit_suite(void)
{
	Suite *s = suite_create("commit");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_single_caller);
	tcase_add_test(tc, test_concurrent_share);
	tcase_add_test(tc, test_failure_fails_exactly_covered);
	tcase_add_test(tc, test_sync_survives_powercut);
	tcase_add_test(tc, test_flush_ms0_survives_powercut);
	tcase_add_test(tc, test_sync_moves_state_after_roll);
	tcase_add_test(tc, test_tick_catches_state_up);
	tcase_add_test(tc, test_scheduled_flush_state_lazy);
	tcase_add_test(tc, test_partitions_share_syncfs);
	tcase_add_test(tc, test_partitions_share_good_syncfs);
	tcase_add_loop_test(
		tc, test_flush_ms0_partitions_share_and_fail_exactly, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(commit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
