/*
 * syncpair.c - fdatasync two files at once (see syncpair.h): a queue of
 * jobs, each on its caller's stack, served by helper threads that are
 * started when every helper is busy (up to SYNCPAIR_MAX_HELPERS) and
 * then stay.  A fork leaves the child with no helper threads, so the
 * child forgets them.
 */
#include <pthread.h>

#include "fault.h"
#include "io.h"
#include "syncpair.h"

#define SYNCPAIR_MAX_HELPERS 64

struct sync_job {
	struct sync_job *next;
	int fd;
	int ret;
	int done;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct sync_job *queue; /* all protected by lock */
static unsigned helpers, idle, nqueued;

static void *helper_run(void *arg)
{
	struct sync_job *j;
	int ret;

	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!queue) {
			idle++;
			pthread_cond_wait(&work, &lock);
			idle--;
		}
		j = queue;
		queue = j->next;
		nqueued--;
		pthread_mutex_unlock(&lock);
		ret = io_fdatasync(j->fd);
		pthread_mutex_lock(&lock);
		j->ret = ret;
		j->done = 1;
		pthread_cond_broadcast(&finished);
	}
	return NULL;
}

static void forget_helpers(void)
{
	pthread_mutex_init(&lock, NULL);
	pthread_cond_init(&work, NULL);
	pthread_cond_init(&finished, NULL);
	queue = NULL;
	helpers = idle = nqueued = 0;
}

static void at_first_use(void)
{
	pthread_atfork(NULL, NULL, forget_helpers);
}

/* A helper for one more job (lock held): 0, or -1 when none can be had. */
static int helper_ready(void)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (nqueued < idle)
		return 0; /* an idle helper for every queued job and this one */
	if (helpers >= SYNCPAIR_MAX_HELPERS)
		return 0; /* the job waits for a busy one */
	if (pthread_attr_init(&attr))
		return helpers ? 0 : -1;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	r = pthread_create(&t, &attr, helper_run, NULL);
	pthread_attr_destroy(&attr);
	if (r)
		return helpers ? 0 : -1;
	helpers++;
	return 0;
}

/* One after the other, b only if a succeeded. */
static void sync_in_turn(int a, int b, int *ra, int *rb)
{
	*ra = io_fdatasync(a);
	*rb = *ra == 0 ? io_fdatasync(b) : 0;
}

void sync_pair(int a, int b, int *ra, int *rb)
{
	struct sync_job j = {NULL, b, 0, 0};
	int have;

	/* While faults are injected, one after the other (a first): a seed
	 * then replays the same faults, and a test can aim at a's sync. */
	if (fault_active()) {
		sync_in_turn(a, b, ra, rb);
		return;
	}
	pthread_once(&once, at_first_use);
	pthread_mutex_lock(&lock);
	have = helper_ready() == 0;
	if (have) {
		j.next = queue;
		queue = &j;
		nqueued++;
		pthread_cond_signal(&work);
	}
	pthread_mutex_unlock(&lock);
	if (!have) {
		sync_in_turn(a, b, ra, rb);
		return;
	}
	*ra = io_fdatasync(a);
	pthread_mutex_lock(&lock);
	while (!j.done)
		pthread_cond_wait(&finished, &lock);
	pthread_mutex_unlock(&lock);
	*rb = j.ret;
}
