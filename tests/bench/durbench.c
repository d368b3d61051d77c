/*
 * durbench.c - the durable workloads of "make bench": writes that wait for
 * stable storage, one line of "key=value" figures per run.
 * tests/bench/durable.sh runs each against a plain file and a fluxfs
 * partition (and Redis Streams where redis-server is installed) and prints
 * the table.  Every run checks its own calls (a failed write or fsync, or a
 * short write, exits non-zero), so a broken target cannot pass for a fast
 * one.
 *
 *     durbench lines PATH WRITERS SECS [multi] [nosync] [pair]
 *         WRITERS threads, each its own descriptor (O_APPEND), each loop:
 *         write() one 100-byte line, fdatasync(); latency of write+sync.
 *         multi: PATH is a directory, writer i appends to PATH/wI.
 *         nosync: no fdatasync (a flush_ms=0 partition syncs each write).
 *         pair: what a fluxfs partition asks of the disk, on plain files:
 *         after its line each writer also appends one index entry to a
 *         second file (PATH.idx, or PATH/wI.idx with multi), then both
 *         are made durable side by side, the data file's fdatasync on the
 *         writer's thread while its own helper thread fdatasyncs the
 *         entry file; latency of both writes and both syncs.
 *     durbench bulk PATH MIB       1 MiB write()s, fsync() after each
 *     durbench redis HOST PORT WRITERS SECS
 *         one connection per writer, each loop: XADD s * f <90 bytes>,
 *         waiting for the reply (the server fsyncs first under
 *         appendfsync always).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_BYTES 100
/* One fluxfs index entry per write (LAYOUT_ENTRY_BYTES in
 * src/engine/layout.h): that is what a partition appends to its .idx. */
#define ENTRY_BYTES 48
#define CHUNK_BYTES (1u << 20)
#define MAX_WRITERS 256
#define MAX_SAMPLES (1u << 22)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path, int err)
{
	fprintf(stderr, "durbench: %s '%s': %s\n", what, path, strerror(err));
	exit(1);
}

/* The shared latency record: every writer's write+sync times. */
static double *samples;
static size_t nsamples;
static pthread_mutex_t samples_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(const double *lat, size_t n)
{
	pthread_mutex_lock(&samples_lock);
	if (nsamples + n > MAX_SAMPLES)
		n = MAX_SAMPLES - nsamples;
	memcpy(samples + nsamples, lat, n * sizeof(*lat));
	nsamples += n;
	pthread_mutex_unlock(&samples_lock);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(double q)
{
	size_t i = (size_t)(q * (double)nsamples);

	if (!nsamples)
		return 0;
	if (i >= nsamples)
		i = nsamples - 1;
	return samples[i];
}

static void print_latency(uint64_t ops, double secs)
{
	qsort(samples, nsamples, sizeof(*samples), cmp_double);
	printf("ops=%llu secs=%.3f opsps=%.0f p50_ms=%.3f p99_ms=%.3f "
	       "p999_ms=%.3f\n",
	       (unsigned long long)ops, secs, (double)ops / secs,
	       quantile(0.5) * 1e3, quantile(0.99) * 1e3,
	       quantile(0.999) * 1e3);
}

/* A writer's second thread for pair: fdatasync of fd on request, as the
 * daemon's sync_pair() has the .idx synced beside the .log. */
struct pair_helper {
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;
	unsigned asked, done; /* requests made and served; protected by lock */
	int ret;	      /* errno of the last sync, or 0 */
	int quit;
};

struct worker {
	char path[4096];
	char idx_path[4200]; /* pair: the entry file */
	const char *host, *port;
	int id, sync, pair;
	int idx_fd;
	struct pair_helper helper;
	double secs;
	pthread_barrier_t *start;
	uint64_t ops;
	int err;
	char line[LINE_BYTES]; /* what a line writer appends */
	char entry[ENTRY_BYTES]; /* what a pair writer appends to idx_fd */
	char req[256];	       /* what a Redis writer sends */
	size_t req_len;
};

/* Once every writer is ready, run op on fd until w->secs pass, keeping
 * each call's latency; the first failure ends the run (w->err). */
static void timed_ops(struct worker *w, int (*op)(struct worker *, int), int fd)
{
	size_t cap = 1 << 16, n = 0;
	double *lat = malloc(cap * sizeof(*lat)), t, end;

	pthread_barrier_wait(w->start);
	if (!lat) {
		w->err = ENOMEM;
		return;
	}
	end = now_s() + w->secs;
	while ((t = now_s()) < end) {
		errno = 0;
		if (op(w, fd) < 0) {
			w->err = errno ? errno : EIO;
			break;
		}
		if (n == cap) {
			record(lat, n);
			n = 0;
		}
		lat[n++] = now_s() - t;
		w->ops++;
	}
	record(lat, n);
	free(lat);
}

static int line_op(struct worker *w, int fd)
{
	if (write(fd, w->line, LINE_BYTES) != LINE_BYTES)
		return -1;
	return w->sync ? fdatasync(fd) : 0;
}

static void *pair_helper_run(void *arg)
{
	struct pair_helper *h = arg;
	int ret;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (h->done == h->asked && !h->quit)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->done == h->asked)
			break;
		pthread_mutex_unlock(&h->lock);
		ret = fdatasync(h->fd) < 0 ? errno : 0;
		pthread_mutex_lock(&h->lock);
		h->ret = ret;
		h->done++;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static int pair_helper_start(struct pair_helper *h, int fd)
{
	int r;

	h->fd = fd;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	r = pthread_create(&h->tid, NULL, pair_helper_run, h);
	if (r) {
		pthread_cond_destroy(&h->cond);
		pthread_mutex_destroy(&h->lock);
	}
	return r;
}

static void pair_helper_stop(struct pair_helper *h)
{
	pthread_mutex_lock(&h->lock);
	h->quit = 1;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->tid, NULL);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
}

/* The line and its entry written, then the entry file's fdatasync on the
 * helper while this thread syncs the data file; returns once both are
 * done, -1 with errno when either failed (the data file's error first). */
static int pair_op(struct worker *w, int fd)
{
	struct pair_helper *h = &w->helper;
	int data_err, idx_err;

	if (write(fd, w->line, LINE_BYTES) != LINE_BYTES ||
	    write(w->idx_fd, w->entry, ENTRY_BYTES) != ENTRY_BYTES)
		return -1;
	pthread_mutex_lock(&h->lock);
	h->asked++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	data_err = fdatasync(fd) < 0 ? errno : 0;
	pthread_mutex_lock(&h->lock);
	while (h->done != h->asked)
		pthread_cond_wait(&h->cond, &h->lock);
	idx_err = h->ret;
	pthread_mutex_unlock(&h->lock);
	errno = data_err ? data_err : idx_err;
	return errno ? -1 : 0;
}

static int open_append(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void *line_writer(void *arg)
{
	struct worker *w = arg;
	int fd, r;

	memset(w->line, 'a' + w->id % 26, LINE_BYTES - 1);
	w->line[LINE_BYTES - 1] = '\n';
	memset(w->entry, w->id, ENTRY_BYTES);
	w->idx_fd = -1;
	fd = open_append(w->path);
	if (fd < 0) {
		w->err = errno;
		pthread_barrier_wait(w->start);
		return NULL;
	}
	if (w->pair) {
		w->idx_fd = open_append(w->idx_path);
		if (w->idx_fd < 0) {
			w->err = errno;
		} else if ((r = pair_helper_start(&w->helper, w->idx_fd))) {
			w->err = r;
			close(w->idx_fd);
			w->idx_fd = -1;
		}
		if (w->err) {
			close(fd);
			pthread_barrier_wait(w->start);
			return NULL;
		}
	}
	timed_ops(w, w->pair ? pair_op : line_op, fd);
	if (w->pair) {
		pair_helper_stop(&w->helper);
		if (close(w->idx_fd) < 0 && !w->err)
			w->err = errno;
	}
	if (close(fd) < 0 && !w->err)
		w->err = errno;
	return NULL;
}

/* One XADD, its reply read whole: a bulk string ($N) or a status (+...);
 * an error reply (-...) fails. */
static int xadd_op(struct worker *w, int s)
{
	char buf[256];
	size_t have = 0;
	ssize_t r;
	long want = -1;
	char *nl;

	if (write(s, w->req, w->req_len) != (ssize_t)w->req_len)
		return -1;
	for (;;) {
		r = read(s, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = 0;
		nl = strstr(buf, "\r\n");
		if (!nl)
			continue;
		if (buf[0] != '$')
			return buf[0] == '+' ? 0 : -1;
		if (want < 0)
			want = strtol(buf + 1, NULL, 10);
		if ((long)have >= (nl - buf) + 2 + want + 2)
			return 0;
	}
}

static void *redis_writer(void *arg)
{
	struct worker *w = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char val[91];
	int s = -1;

	memset(val, 'a' + w->id % 26, 90);
	val[90] = 0;
	w->req_len = (size_t)snprintf(w->req, sizeof(w->req),
				      "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n"
				      "$1\r\n*\r\n$1\r\nf\r\n$90\r\n%s\r\n",
				      val);
	if (getaddrinfo(w->host, w->port, &hints, &ai) == 0) {
		s = socket(ai->ai_family, SOCK_STREAM, 0);
		if (s >= 0 && connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(s);
			s = -1;
		}
		freeaddrinfo(ai);
	}
	if (s < 0) {
		w->err = ECONNREFUSED;
		pthread_barrier_wait(w->start);
		return NULL;
	}
	timed_ops(w, xadd_op, s);
	close(s);
	return NULL;
}

static int run_workers(struct worker *w, int n, void *(*fn)(void *))
{
	pthread_t tid[MAX_WRITERS];
	pthread_barrier_t start;
	uint64_t ops = 0;
	double t0, dt;
	int i, ret = 0;

	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (!samples)
		die("cannot allocate", "samples", ENOMEM);
	pthread_barrier_init(&start, NULL, (unsigned)n + 1);
	for (i = 0; i < n; i++) {
		w[i].start = &start;
		if (pthread_create(&tid[i], NULL, fn, &w[i]) != 0)
			die("cannot start a writer for", w[i].path, EAGAIN);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	dt = now_s() - t0;
	pthread_barrier_destroy(&start);
	for (i = 0; i < n; i++) {
		ops += w[i].ops;
		if (w[i].err) {
			fprintf(stderr, "durbench: writer %d on '%s': %s\n", i,
				w[i].path, strerror(w[i].err));
			ret = 1;
		}
	}
	if (!ret)
		print_latency(ops, dt);
	free(samples);
	return ret;
}

static struct worker *workers(int n, double secs)
{
	struct worker *w;

	if (n < 1 || n > MAX_WRITERS) {
		fprintf(stderr, "durbench: 1 to %d writers\n", MAX_WRITERS);
		exit(2);
	}
	w = calloc((size_t)n, sizeof(*w));
	if (!w)
		die("cannot allocate", "workers", ENOMEM);
	for (int i = 0; i < n; i++) {
		w[i].id = i;
		w[i].secs = secs;
		w[i].sync = 1;
	}
	return w;
}

static int cmd_lines(const char *path, int n, double secs, int multi, int sync,
		     int pair)
{
	struct worker *w = workers(n, secs);
	int i, ret;

	for (i = 0; i < n; i++) {
		w[i].sync = sync;
		w[i].pair = pair;
		if (multi)
			snprintf(w[i].path, sizeof(w[i].path), "%s/w%d", path,
				 i);
		else
			snprintf(w[i].path, sizeof(w[i].path), "%s", path);
		snprintf(w[i].idx_path, sizeof(w[i].idx_path), "%s.idx",
			 w[i].path);
	}
	ret = run_workers(w, n, line_writer);
	free(w);
	return ret;
}

static int cmd_redis(const char *host, const char *port, int n, double secs)
{
	struct worker *w = workers(n, secs);
	int i, ret;

	for (i = 0; i < n; i++) {
		w[i].host = host;
		w[i].port = port;
		snprintf(w[i].path, sizeof(w[i].path), "redis:%s", port);
	}
	ret = run_workers(w, n, redis_writer);
	free(w);
	return ret;
}

static char *chunk_of_lines(void)
{
	char *c = malloc(CHUNK_BYTES);
	size_t i;

	if (!c)
		die("cannot allocate", "chunk", ENOMEM);
	for (i = 0; i < CHUNK_BYTES; i++)
		c[i] = i % LINE_BYTES == LINE_BYTES - 1 ? '\n' : 'a' + i % 23;
	return c;
}

static int cmd_bulk(const char *path, uint64_t mib)
{
	char *chunk = chunk_of_lines();
	double t0, dt;
	uint64_t i;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot open", path, errno);
	t0 = now_s();
	for (i = 0; i < mib; i++)
		if (write(fd, chunk, CHUNK_BYTES) != CHUNK_BYTES ||
		    fsync(fd) < 0)
			die("cannot append and fsync", path,
			    errno ? errno : EIO);
	dt = now_s() - t0;
	if (close(fd) < 0)
		die("cannot close", path, errno);
	free(chunk);
	printf("mbps=%.1f bytes=%llu secs=%.3f\n",
	       (double)(mib << 20) / 1e6 / dt, (unsigned long long)(mib << 20),
	       dt);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: durbench lines PATH WRITERS SECS [multi] [nosync] "
		"[pair] |\n"
		"       bulk PATH MIB |\n"
		"       redis HOST PORT WRITERS SECS\n");
	exit(2);
}

int main(int argc, char *argv[])
{
	int multi = 0, sync = 1, pair = 0, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && !strcmp(argv[1], "lines")) {
		for (i = 5; i < argc; i++) {
			if (!strcmp(argv[i], "multi"))
				multi = 1;
			else if (!strcmp(argv[i], "nosync"))
				sync = 0;
			else if (!strcmp(argv[i], "pair"))
				pair = 1;
			else
				usage();
		}
		/* The entry file's sync is the point of pair. */
		if (pair && !sync)
			usage();
		return cmd_lines(argv[2], atoi(argv[3]), atof(argv[4]), multi,
				 sync, pair);
	}
	if (argc == 4 && !strcmp(argv[1], "bulk"))
		return cmd_bulk(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 6 && !strcmp(argv[1], "redis"))
		return cmd_redis(argv[2], argv[3], atoi(argv[4]),
				 atof(argv[5]));
	usage();
	return 2;
}
