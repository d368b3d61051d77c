/*
 * check_notify.c - the notifier thread with a fake sender: invalidations
 * queued while it is busy coalesce to one per inode from the lowest byte,
 * an inode being sent still counts as pending, deletions and calls run
 * in the order they were queued, and stopping sends what is queued.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "testutil.h"
#include "notify.h"

#define MAXSENDS 4096

struct sent {
	uint64_t ino;
	uint64_t from;
};

/* What the fake sender saw, and a gate that holds it inside a send of
 * gate_ino (so that work piles up behind it). */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sent s[MAXSENDS];
	int nsent;
	uint64_t gate_ino; /* 0: no gate */
	int in_gate;	   /* the thread is inside the gated send */
	int open;
	char dels[64][16];
	uint64_t del_parent[64];
	int ndels;
	int calls[256];
	int ncalls;
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct notifier *nt;

static int fake_send(void *arg, uint64_t ino, uint64_t from)
{
	ck_assert_ptr_eq(arg, &fk);
	pthread_mutex_lock(&fk.lock);
	ck_assert_int_lt(fk.nsent, MAXSENDS);
	fk.s[fk.nsent].ino = ino;
	fk.s[fk.nsent].from = from;
	fk.nsent++;
	if (ino == fk.gate_ino) {
		fk.in_gate = 1;
		pthread_cond_broadcast(&fk.cond);
		while (!fk.open)
			pthread_cond_wait(&fk.cond, &fk.lock);
	}
	pthread_cond_broadcast(&fk.cond);
	pthread_mutex_unlock(&fk.lock);
	/* The mount is going away: expected, and not worth a log line. */
	return -ENOENT;
}

static int fake_delete(void *arg, uint64_t parent, uint64_t child,
		       const char *name)
{
	ck_assert_ptr_eq(arg, &fk);
	ck_assert_uint_eq(child, parent + 1000);
	pthread_mutex_lock(&fk.lock);
	ck_assert_int_lt(fk.ndels, 64);
	snprintf(fk.dels[fk.ndels], sizeof(fk.dels[0]), "%s", name);
	fk.del_parent[fk.ndels] = parent;
	fk.ndels++;
	pthread_mutex_unlock(&fk.lock);
	return 0;
}

static int call_ids[256];

static void fake_call(void *arg)
{
	pthread_mutex_lock(&fk.lock);
	fk.calls[fk.ncalls++] = *(int *)arg;
	pthread_cond_broadcast(&fk.cond);
	pthread_mutex_unlock(&fk.lock);
}

static void setup(void)
{
	pthread_mutex_lock(&fk.lock);
	fk.nsent = fk.ndels = fk.ncalls = 0;
	fk.gate_ino = 0;
	fk.in_gate = fk.open = 0;
	pthread_mutex_unlock(&fk.lock);
	ck_assert_int_eq(notifier_start(fake_send, fake_delete, &fk, &nt), 0);
}

static void teardown(void)
{
	notifier_stop(nt);
}

/* Hold the thread inside the send of ino until gate_open(). */
static void gate_hold(uint64_t ino)
{
	pthread_mutex_lock(&fk.lock);
	fk.gate_ino = ino;
	pthread_mutex_unlock(&fk.lock);
	ck_assert_int_eq(notifier_queue(nt, ino, 0), 0);
	pthread_mutex_lock(&fk.lock);
	while (!fk.in_gate)
		pthread_cond_wait(&fk.cond, &fk.lock);
	pthread_mutex_unlock(&fk.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&fk.lock);
	fk.open = 1;
	pthread_cond_broadcast(&fk.cond);
	pthread_mutex_unlock(&fk.lock);
}

/* Wait (up to 10 s) until no inode in [1, max] is pending. */
static void wait_idle(uint64_t max)
{
	struct timespec ts = {0, 1000000};
	uint64_t ino;
	int tries;

	for (tries = 0; tries < 10000; tries++) {
		for (ino = 1; ino <= max; ino++)
			if (notifier_pending(nt, ino))
				break;
		if (ino > max)
			return;
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("inode %llu still pending", (unsigned long long)ino);
}

static int sends_of(uint64_t ino, uint64_t *from)
{
	int i, n = 0;

	pthread_mutex_lock(&fk.lock);
	for (i = 0; i < fk.nsent; i++) {
		if (fk.s[i].ino != ino)
			continue;
		n++;
		*from = fk.s[i].from;
	}
	pthread_mutex_unlock(&fk.lock);
	return n;
}

START_TEST(test_queued_pairs_coalesce_to_lowest_byte)
{
	enum { NINO = 300, GATE = 100000 };
	static uint64_t lowest[NINO + 1];
	uint64_t state = 42, ino, from, got;
	int i;

	gate_hold(GATE);
	for (ino = 1; ino <= NINO; ino++)
		lowest[ino] = UINT64_MAX;
	/* Many pairs for a few hundred inodes (the table grows under
	 * them), queued while the thread is busy elsewhere. */
	for (i = 0; i < 20000; i++) {
		ino = 1 + test_rand(&state) % NINO;
		from = test_rand(&state) % 1000000;
		if (from < lowest[ino])
			lowest[ino] = from;
		ck_assert_int_eq(notifier_queue(nt, ino, from), 0);
		ck_assert(notifier_pending(nt, ino));
	}
	pthread_mutex_lock(&fk.lock);
	ck_assert_int_eq(fk.nsent, 1); /* only the gated send so far */
	pthread_mutex_unlock(&fk.lock);
	gate_open();
	wait_idle(NINO);
	for (ino = 1; ino <= NINO; ino++) {
		if (lowest[ino] == UINT64_MAX) {
			ck_assert_int_eq(sends_of(ino, &got), 0);
			continue;
		}
		ck_assert_int_eq(sends_of(ino, &got), 1);
		ck_assert_uint_eq(got, lowest[ino]);
	}
	ck_assert_uint_eq(notifier_sent(nt), (uint64_t)fk.nsent);
}
END_TEST

START_TEST(test_in_flight_inode_is_pending)
{
	uint64_t from;

	ck_assert(!notifier_pending(nt, 7));
	gate_hold(7);
	/* Taken off the queue and being sent: still pending, so a reader
	 * opening now drops its cache. */
	ck_assert(notifier_pending(nt, 7));
	ck_assert(!notifier_pending(nt, 8));
	/* Queued again while in flight: a second send, from the new byte. */
	ck_assert_int_eq(notifier_queue(nt, 7, 55), 0);
	ck_assert_int_eq(notifier_queue(nt, 7, 77), 0);
	ck_assert(notifier_pending(nt, 7));
	gate_open();
	wait_idle(8);
	ck_assert_int_eq(sends_of(7, &from), 2);
	ck_assert_uint_eq(from, 55);
	ck_assert(!notifier_pending(nt, 7));
	ck_assert_uint_eq(notifier_sent(nt), 2);
}
END_TEST

/* A thread that waits for inode 9's send (notifier_wait). */
static void *wait_for_9(void *arg)
{
	*(int *)arg = notifier_wait(nt, 9, 10000);
	return NULL;
}

START_TEST(test_wait_returns_once_sent)
{
	struct timespec t0, t1;
	pthread_t t;
	int ret = 1;

	/* Nothing pending: at once. */
	ck_assert_int_eq(notifier_wait(nt, 9, 0), 0);
	gate_hold(9);
	/* Being sent and held there: the wait times out. */
	ck_assert_int_eq(notifier_wait(nt, 9, 50), -ETIMEDOUT);
	/* Queued again behind the held send: a waiter waits for both. */
	ck_assert_int_eq(notifier_queue(nt, 9, 3), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(pthread_create(&t, NULL, wait_for_9, &ret), 0);
	/* Let it block first, so that only the end of the sends can wake
	 * it (a waiter that came late would find nothing pending). */
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	gate_open();
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(ret, 0);
	/* Woken by the sends' end, not by its 10 s deadline. */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	ck_assert(!notifier_pending(nt, 9));
	ck_assert_int_eq(sends_of(9, &(uint64_t){0}), 2);
}
END_TEST

START_TEST(test_deletes_and_calls_run_in_order)
{
	char name[16];
	int i;

	/* Queued behind a busy thread, so they are taken as one batch. */
	gate_hold(1);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ck_assert_int_eq(notifier_queue_delete(nt, (uint64_t)i,
						       (uint64_t)i + 1000,
						       name),
				 0);
	}
	for (i = 0; i < 200; i++) {
		call_ids[i] = i;
		ck_assert_int_eq(
			notifier_queue_call(nt, fake_call, &call_ids[i]), 0);
	}
	gate_open();
	pthread_mutex_lock(&fk.lock);
	while (fk.ncalls < 200)
		pthread_cond_wait(&fk.cond, &fk.lock);
	pthread_mutex_unlock(&fk.lock);
	/* More calls after the first batch ran keep the order too. */
	for (i = 200; i < 256; i++) {
		call_ids[i] = i;
		ck_assert_int_eq(
			notifier_queue_call(nt, fake_call, &call_ids[i]), 0);
	}
	notifier_stop(nt); /* runs what is queued */
	nt = NULL;
	ck_assert_int_eq(fk.ncalls, 256);
	for (i = 0; i < 256; i++)
		ck_assert_int_eq(fk.calls[i], i);
	ck_assert_int_eq(fk.ndels, 40);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ck_assert_str_eq(fk.dels[i], name);
		ck_assert_uint_eq(fk.del_parent[i], (uint64_t)i);
	}
}
END_TEST

START_TEST(test_stop_sends_what_is_queued)
{
	uint64_t ino, from;

	gate_hold(1);
	for (ino = 2; ino <= 50; ino++)
		ck_assert_int_eq(notifier_queue(nt, ino, ino * 10), 0);
	gate_open();
	notifier_stop(nt);
	nt = NULL;
	for (ino = 2; ino <= 50; ino++) {
		ck_assert_int_eq(sends_of(ino, &from), 1);
		ck_assert_uint_eq(from, ino * 10);
	}
	ck_assert_int_eq(fk.nsent, 50);
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("queue");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_queued_pairs_coalesce_to_lowest_byte);
	tcase_add_test(tc, test_in_flight_inode_is_pending);
	tcase_add_test(tc, test_wait_returns_once_sent);
	tcase_add_test(tc, test_deletes_and_calls_run_in_order);
	tcase_add_test(tc, test_stop_sends_what_is_queued);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(notify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
