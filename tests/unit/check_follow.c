/*
 * check_follow.c - the follow view's parked reads without FUSE: the
 * module's calls into libfuse go to recorders (struct follow_ops), the
 * requests are fake pointers and the log is a real partition.  A parked
 * read is answered exactly once -- by the wake after an append, by an
 * interrupt (EINTR), by detach or shutdown (end-of-file) -- and a wakeup
 * racing a park is never lost.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "testutil.h"
#include "fs_int.h"

#define NREQ 4096

enum kind { R_NONE, R_DATA, R_EOF, R_ERR, R_POLL };

/* What the module answered to one fake request. */
struct answer {
	enum kind kind;
	int replies;	  /* how many times: must never pass one */
	int err;	  /* R_ERR */
	uint64_t off;	  /* R_DATA: where it read */
	size_t len;	  /* R_DATA: bytes sent */
	unsigned revents; /* R_POLL */
	/* The interrupt callback the module registered, and the flag
	 * fuse_req_interrupted would report. */
	fuse_interrupt_func_t ifunc;
	void *idata;
	int interrupted;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct answer a[NREQ];
	int notified;  /* poll handles notified */
	int destroyed; /* poll handles destroyed */
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The fake requests and poll handles: addresses nobody dereferences. */
static char reqs[NREQ];
static char phs[8];

static fuse_req_t req_of(int i)
{
	return (fuse_req_t)(void *)&reqs[i];
}

static int idx_of(fuse_req_t req)
{
	int i = (int)((char *)(void *)req - reqs);

	ck_assert(i >= 0 && i < NREQ);
	return i;
}

static void record(fuse_req_t req, enum kind kind, int err, uint64_t off,
		   size_t len)
{
	struct answer *a;

	pthread_mutex_lock(&rec.lock);
	a = &rec.a[idx_of(req)];
	a->kind = kind;
	a->err = err;
	a->off = off;
	a->len = len;
	a->replies++;
	pthread_cond_broadcast(&rec.cond);
	pthread_mutex_unlock(&rec.lock);
}

static long fake_reply_data(fuse_req_t req, struct node *n, uint64_t off,
			    size_t size, atomic_uint_fast64_t *pos)
{
	struct partition_info info;
	size_t len;

	partition_get_info(n->part, &info);
	ck_assert_uint_lt(off, info.end_byte);
	len = info.end_byte - off < size ? info.end_byte - off : size;
	atomic_store(pos, off + len);
	record(req, R_DATA, 0, off, len);
	return (long)len;
}

static int fake_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	(void)buf;
	ck_assert_uint_eq(size, 0); /* the module sends only end-of-file */
	record(req, R_EOF, 0, 0, 0);
	return 0;
}

static int fake_reply_err(fuse_req_t req, int err)
{
	record(req, R_ERR, err, 0, 0);
	return 0;
}

static int fake_reply_poll(fuse_req_t req, unsigned revents)
{
	pthread_mutex_lock(&rec.lock);
	rec.a[idx_of(req)].revents = revents;
	pthread_mutex_unlock(&rec.lock);
	record(req, R_POLL, 0, 0, 0);
	return 0;
}

static void fake_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func,
				void *data)
{
	pthread_mutex_lock(&rec.lock);
	rec.a[idx_of(req)].ifunc = func;
	rec.a[idx_of(req)].idata = data;
	pthread_mutex_unlock(&rec.lock);
}

static int fake_interrupted(fuse_req_t req)
{
	int ret;

	pthread_mutex_lock(&rec.lock);
	ret = rec.a[idx_of(req)].interrupted;
	pthread_mutex_unlock(&rec.lock);
	return ret;
}

static int fake_notify_poll(struct fuse_pollhandle *ph)
{
	(void)ph;
	pthread_mutex_lock(&rec.lock);
	rec.notified++;
	pthread_mutex_unlock(&rec.lock);
	return 0;
}

static void fake_pollhandle_destroy(struct fuse_pollhandle *ph)
{
	(void)ph;
	pthread_mutex_lock(&rec.lock);
	rec.destroyed++;
	pthread_mutex_unlock(&rec.lock);
}

static const struct follow_ops recorders = {
	.reply_data = fake_reply_data,
	.reply_buf = fake_reply_buf,
	.reply_err = fake_reply_err,
	.reply_poll = fake_reply_poll,
	.req_interrupt_func = fake_interrupt_func,
	.req_interrupted = fake_interrupted,
	.notify_poll = fake_notify_poll,
	.pollhandle_destroy = fake_pollhandle_destroy,
};

/* Two partitions, each behind a node as the registry would make it. */
static char dir[PATH_MAX];
static int dirfd_;
static struct node nodes[2];
static struct fs_node fsn[2];
static struct follow *fw;

static void setup(void)
{
	struct config cfg;
	int i;

	memset(&rec.a, 0, sizeof(rec.a));
	rec.notified = rec.destroyed = 0;
	dirfd_ = test_tmpdir(dir);
	config_defaults(&cfg);
	for (i = 0; i < 2; i++) {
		memset(&nodes[i], 0, sizeof(nodes[i]));
		memset(&fsn[i], 0, sizeof(fsn[i]));
		nodes[i].kind = NODE_PARTITION;
		nodes[i].name = (char *)(i ? "1" : "0");
		nodes[i].fs = &fsn[i];
		ck_assert_int_eq(partition_create(dirfd_, nodes[i].name, &cfg,
						  1000, &nodes[i].part),
				 0);
	}
	ck_assert_int_eq(follow_new(&recorders, &fw), 0);
}

static void teardown(void)
{
	int i;

	follow_shutdown(fw);
	follow_free(fw);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(partition_close(nodes[i].part), 0);
	test_rmtree(dirfd_, dir);
}

/* Append one line to node i; returns the new end. */
static uint64_t append(int i, const char *line)
{
	uint64_t at;

	ck_assert_int_eq(partition_append(nodes[i].part, line, strlen(line), 1,
					  2000, PARTITION_ANY_END, NULL, &at),
			 0);
	return at + strlen(line);
}

static struct answer answer(int r)
{
	struct answer a;

	pthread_mutex_lock(&rec.lock);
	a = rec.a[r];
	pthread_mutex_unlock(&rec.lock);
	return a;
}

static int total_replies(void)
{
	int i, n = 0;

	pthread_mutex_lock(&rec.lock);
	for (i = 0; i < NREQ; i++)
		n += rec.a[i].replies;
	pthread_mutex_unlock(&rec.lock);
	return n;
}

/* The module's invariant: what it counts parked is what it will answer. */
static void check_parked(uint64_t want)
{
	ck_assert_uint_eq(follow_parked(fw), want);
}

static void interrupt(int r)
{
	struct answer a = answer(r);

	ck_assert_ptr_nonnull(a.ifunc);
	a.ifunc(req_of(r), a.idata);
}

START_TEST(test_read_with_data_is_answered_at_once)
{
	struct follow_file ff;
	uint64_t end = append(0, "hello\n");

	follow_file_init(&ff, &nodes[0], 1);
	follow_read(fw, req_of(0), &ff, 0, 100, 0);
	ck_assert_int_eq(answer(0).kind, R_DATA);
	ck_assert_uint_eq(answer(0).len, end);
	ck_assert_uint_eq(atomic_load(&ff.pos), end);
	check_parked(0);
	/* At the end: nonblocking gets EAGAIN, size 0 gets end-of-file. */
	follow_read(fw, req_of(1), &ff, end, 100, 1);
	ck_assert_int_eq(answer(1).kind, R_ERR);
	ck_assert_int_eq(answer(1).err, EAGAIN);
	follow_read(fw, req_of(2), &ff, end, 0, 0);
	ck_assert_int_eq(answer(2).kind, R_EOF);
	check_parked(0);
	ck_assert_int_eq(total_replies(), 3);
	follow_file_release(fw, &ff);
}
END_TEST

START_TEST(test_wake_answers_parked_read_once)
{
	struct follow_file ff;
	uint64_t end;

	follow_file_init(&ff, &nodes[0], 1);
	follow_read(fw, req_of(0), &ff, 0, 100, 0);
	ck_assert_int_eq(answer(0).replies, 0);
	check_parked(1);
	end = append(0, "one\n");
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(answer(0).kind, R_DATA);
	ck_assert_uint_eq(answer(0).off, 0);
	ck_assert_uint_eq(answer(0).len, end);
	ck_assert_uint_eq(atomic_load(&ff.pos), end);
	check_parked(0);
	/* A second append wakes nobody: the request was answered. */
	end = append(0, "two\n");
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(total_replies(), 1);
	follow_file_release(fw, &ff);
}
END_TEST

START_TEST(test_wake_below_the_read_keeps_it_parked)
{
	struct follow_file ff;
	uint64_t end;

	/* A read parked past the end stays parked until the log reaches
	 * it; one on the other partition is not woken at all. */
	follow_file_init(&ff, &nodes[0], 1);
	follow_read(fw, req_of(0), &ff, 8, 100, 0);
	check_parked(1);
	end = append(0, "abc\n");
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(answer(0).replies, 0);
	check_parked(1);
	end = append(1, "other partition\n");
	follow_wake(fw, &nodes[1], end);
	ck_assert_int_eq(answer(0).replies, 0);
	check_parked(1);
	end = append(0, "defgh\n");
	ck_assert_uint_gt(end, 8);
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_uint_eq(answer(0).off, 8);
	ck_assert_uint_eq(answer(0).len, end - 8);
	check_parked(0);
	follow_file_release(fw, &ff);
}
END_TEST

/* A file that starts mid-log (a consumer group's view, base = its
 * committed byte): file offset 0 is partition byte base, a read at the
 * file's end parks until the log passes base + off, and the reply and
 * ff->pos are partition bytes. */
START_TEST(test_base_shifts_reads)
{
	struct follow_file ff;
	uint64_t base = append(0, "consumed\n"), end;

	follow_file_init(&ff, &nodes[0], 1);
	ff.base = base;
	follow_read(fw, req_of(0), &ff, 0, 100, 1);
	ck_assert_int_eq(answer(0).kind, R_ERR); /* at the view's end */
	ck_assert_int_eq(answer(0).err, EAGAIN);
	follow_read(fw, req_of(1), &ff, 0, 100, 0);
	check_parked(1);
	end = append(0, "new\n");
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(answer(1).kind, R_DATA);
	ck_assert_uint_eq(answer(1).off, base);
	ck_assert_uint_eq(answer(1).len, end - base);
	ck_assert_uint_eq(atomic_load(&ff.pos), end);
	check_parked(0);
	follow_file_release(fw, &ff);
}
END_TEST

START_TEST(test_wake_with_nothing_parked_is_a_noop)
{
	struct follow_file ff;
	uint64_t end = append(0, "x\n");

	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(total_replies(), 0);
	check_parked(0);
	/* Nor does a wake of one node touch another's parked read. */
	follow_file_init(&ff, &nodes[1], 1);
	follow_read(fw, req_of(0), &ff, 0, 10, 0);
	follow_wake(fw, &nodes[0], append(0, "y\n"));
	ck_assert_int_eq(total_replies(), 0);
	check_parked(1);
	ck_assert_int_eq(rec.notified, 0);
	/* Parked reads point into their handle: end them before it goes. */
	ck_assert_int_eq(follow_shutdown(fw), 1);
	follow_file_release(fw, &ff);
}
END_TEST

START_TEST(test_interrupt_answers_eintr_once)
{
	struct follow_file ff;
	uint64_t end;

	follow_file_init(&ff, &nodes[0], 1);
	follow_read(fw, req_of(0), &ff, 0, 100, 0);
	follow_read(fw, req_of(1), &ff, 0, 100, 0);
	check_parked(2);
	interrupt(0);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(answer(0).kind, R_ERR);
	ck_assert_int_eq(answer(0).err, EINTR);
	check_parked(1);
	/* A second signal, and the append after it, answer nothing more;
	 * the other parked read is still answered by the wake. */
	interrupt(0);
	end = append(0, "after\n");
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(answer(1).replies, 1);
	ck_assert_int_eq(answer(1).kind, R_DATA);
	check_parked(0);
	/* An interrupt after the wake answered it is not a second reply. */
	interrupt(1);
	ck_assert_int_eq(answer(1).replies, 1);
	ck_assert_int_eq(total_replies(), 2);
	follow_file_release(fw, &ff);
}
END_TEST

START_TEST(test_interrupt_before_parking_answers_eintr)
{
	struct follow_file ff;

	/* The signal came before the read reached the lock. */
	rec.a[0].interrupted = 1;
	follow_file_init(&ff, &nodes[0], 1);
	follow_read(fw, req_of(0), &ff, 0, 100, 0);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(answer(0).kind, R_ERR);
	ck_assert_int_eq(answer(0).err, EINTR);
	check_parked(0);
	follow_wake(fw, &nodes[0], append(0, "z\n"));
	ck_assert_int_eq(total_replies(), 1);
	follow_file_release(fw, &ff);
}
END_TEST

START_TEST(test_detach_answers_eof)
{
	struct follow_file ff, other;

	follow_file_init(&ff, &nodes[0], 1);
	follow_file_init(&other, &nodes[1], 1);
	follow_read(fw, req_of(0), &ff, 0, 100, 0);
	follow_read(fw, req_of(1), &ff, 0, 100, 0);
	follow_read(fw, req_of(2), &other, 0, 100, 0);
	check_parked(3);
	follow_detach(fw, &nodes[0]);
	ck_assert_int_eq(answer(0).kind, R_EOF);
	ck_assert_int_eq(answer(1).kind, R_EOF);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(answer(1).replies, 1);
	ck_assert_int_eq(answer(2).replies, 0);
	check_parked(1);
	/* Every later read of the detached file ends, even with data. */
	append(0, "late\n");
	follow_read(fw, req_of(3), &ff, 0, 100, 0);
	ck_assert_int_eq(answer(3).kind, R_EOF);
	/* A file opened after the detach follows the node afresh. */
	follow_file_init(&ff, &nodes[0], 1);
	follow_read(fw, req_of(4), &ff, 0, 100, 0);
	ck_assert_int_eq(answer(4).kind, R_DATA);
	/* Interrupting an already-ended read answers nothing more. */
	interrupt(0);
	ck_assert_int_eq(answer(0).replies, 1);
	ck_assert_int_eq(total_replies(), 4);
	ck_assert_int_eq(follow_shutdown(fw), 1);
	ck_assert_int_eq(answer(2).kind, R_EOF);
	follow_file_release(fw, &ff);
	follow_file_release(fw, &other);
}
END_TEST

START_TEST(test_shutdown_answers_all)
{
	struct follow_file a, b;
	int i;

	follow_file_init(&a, &nodes[0], 1);
	follow_file_init(&b, &nodes[1], 1);
	for (i = 0; i < 10; i++)
		follow_read(fw, req_of(i), i % 2 ? &b : &a, 0, 100, 0);
	check_parked(10);
	ck_assert_int_eq(follow_shutdown(fw), 10);
	check_parked(0);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(answer(i).replies, 1);
		ck_assert_int_eq(answer(i).kind, R_EOF);
	}
	/* Once closing, a read at the end ends instead of parking, and a
	 * second shutdown has nothing left to answer. */
	follow_read(fw, req_of(10), &a, 0, 100, 0);
	ck_assert_int_eq(answer(10).kind, R_EOF);
	check_parked(0);
	ck_assert_int_eq(follow_shutdown(fw), 0);
	follow_wake(fw, &nodes[0], append(0, "w\n"));
	ck_assert_int_eq(total_replies(), 11);
	follow_file_release(fw, &a);
	follow_file_release(fw, &b);
}
END_TEST

START_TEST(test_poll_notified_once_by_append)
{
	struct follow_file ff;
	uint64_t end;

	follow_file_init(&ff, &nodes[0], 1);
	follow_poll(fw, req_of(0), &ff, (struct fuse_pollhandle *)&phs[0]);
	ck_assert_int_eq(answer(0).kind, R_POLL);
	ck_assert_uint_eq(answer(0).revents, 0);
	end = append(0, "p\n");
	follow_wake(fw, &nodes[0], end);
	ck_assert_int_eq(rec.notified, 1);
	ck_assert_int_eq(rec.destroyed, 1);
	follow_wake(fw, &nodes[0], append(0, "q\n"));
	ck_assert_int_eq(rec.notified, 1);
	/* Data past the last read: the next poll is ready at once. */
	follow_poll(fw, req_of(1), &ff, NULL);
	ck_assert_uint_eq(answer(1).revents, POLLIN | POLLRDNORM);
	follow_file_release(fw, &ff);
	ck_assert_int_eq(rec.destroyed, 1);
}
END_TEST

/* ---- racing an append against a park ---------------------------------- */

#define RACE_ROUNDS 2000
#define RACE_LINE "race\n"

static pthread_barrier_t round_start, round_sent;

/* One append and its wake per round, started together with the read. */
static void *writer_main(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < RACE_ROUNDS; i++) {
		pthread_barrier_wait(&round_start);
		follow_wake(fw, &nodes[0], append(0, RACE_LINE));
		pthread_barrier_wait(&round_sent);
	}
	return NULL;
}

/* Wait up to 5 s for request r to be answered; 0 if it never was. */
static int wait_answered(int r)
{
	struct timespec until;
	int ok = 1;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&rec.lock);
	while (!rec.a[r].replies && ok)
		ok = pthread_cond_timedwait(&rec.cond, &rec.lock, &until) == 0;
	ok = rec.a[r].replies != 0;
	pthread_mutex_unlock(&rec.lock);
	return ok;
}

START_TEST(test_no_lost_wakeup_when_append_races_park)
{
	struct follow_file ff;
	pthread_t writer;
	uint64_t pos = 0;
	int r;

	/* Each round the reader asks at the end while the writer appends
	 * one line, then nothing more is appended until the read is
	 * answered: a read that parks after the append's wake looked for
	 * it would wait forever. */
	pthread_barrier_init(&round_start, NULL, 2);
	pthread_barrier_init(&round_sent, NULL, 2);
	follow_file_init(&ff, &nodes[0], 1);
	ck_assert_int_eq(pthread_create(&writer, NULL, writer_main, NULL), 0);
	for (r = 0; r < RACE_ROUNDS; r++) {
		pthread_barrier_wait(&round_start);
		follow_read(fw, req_of(r), &ff, pos, 64, 0);
		pthread_barrier_wait(&round_sent);
		ck_assert_msg(wait_answered(r),
			      "read %d at %llu never answered", r,
			      (unsigned long long)pos);
		ck_assert_int_eq(answer(r).replies, 1);
		ck_assert_int_eq(answer(r).kind, R_DATA);
		ck_assert_uint_eq(answer(r).off, pos);
		ck_assert_uint_eq(answer(r).len, strlen(RACE_LINE));
		pos += answer(r).len;
		ck_assert_uint_eq(atomic_load(&ff.pos), pos);
		check_parked(0);
	}
	pthread_join(writer, NULL);
	pthread_barrier_destroy(&round_start);
	pthread_barrier_destroy(&round_sent);
	follow_file_release(fw, &ff);
}
END_TEST

static Suite *follow_suite(void)
{
	Suite *s = suite_create("follow");
	TCase *tc = tcase_create("parked");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_read_with_data_is_answered_at_once);
	tcase_add_test(tc, test_wake_answers_parked_read_once);
	tcase_add_test(tc, test_wake_below_the_read_keeps_it_parked);
	tcase_add_test(tc, test_base_shifts_reads);
	tcase_add_test(tc, test_wake_with_nothing_parked_is_a_noop);
	tcase_add_test(tc, test_interrupt_answers_eintr_once);
	tcase_add_test(tc, test_interrupt_before_parking_answers_eintr);
	tcase_add_test(tc, test_detach_answers_eof);
	tcase_add_test(tc, test_shutdown_answers_all);
	tcase_add_test(tc, test_poll_notified_once_by_append);
	tcase_add_test(tc, test_no_lost_wakeup_when_append_races_park);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(follow_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
