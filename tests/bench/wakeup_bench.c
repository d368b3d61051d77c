/*
 * wakeup_bench.c - how soon a tailing reader sees an append.
 *
 *   wakeup_bench MNT [COUNT]
 *
 * On a live fluxfs mount: creates topic MNT/wakeup_bench (partition 0),
 * then measures COUNT (default 10,000) appends twice over:
 *   follow  a follower process blocks in read() on the follow view
 *           (MNT/.follow/wakeup_bench/0); the read is parked and answered
 *           by the append;
 *   poll-follow  a waiter process blocks in poll() on the follow view
 *           opened O_NONBLOCK (woken by the append itself), then reads
 *           the line.
 * (The partition file itself polls like a regular file, always ready:
 * there is nothing to wait for on it.)
 * The producer (this process) appends one line with write(), waits until
 * the reader has seen it and is waiting again, then appends the next.
 * The latency of one append is from the moment the producer's write()
 * returns to the moment the reader's read() (or poll()) returns; both
 * stamps are CLOCK_MONOTONIC, shared through anonymous shared memory.
 * A parked read is answered on the appending thread before the write is
 * acknowledged, so the reader can wake before write() returns: those
 * samples count as 0.  The latency from write() being called is printed
 * too.  Prints p50, p99 and max per mode; exit status 0 unless something
 * failed.  The topic is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "wakeup_bench"
#define LINE 32

struct shared {
	atomic_long seen; /* lines the reader has seen */
	atomic_int ready; /* the reader has opened and caught up */
	int64_t woke[];	  /* per append: when the reader's call returned */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The reader: follow view (blocking read) or poll on the partition. */
static int reader(const char *path, int use_poll, struct shared *sh, long count)
{
	char buf[65536];
	struct pollfd pfd;
	struct stat st;
	long lines = 0;
	off_t have = 0;
	ssize_t n;
	int64_t t;
	int fd, i;

	fd = open(path, O_RDONLY | (use_poll == 2 ? O_NONBLOCK : 0));
	if (fd < 0 || fstat(fd, &st) < 0)
		return 1;
	while (have < st.st_size) { /* catch up (not measured) */
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return 1;
		have += n;
	}
	atomic_store(&sh->ready, 1);
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (lines < count) {
		if (use_poll) {
			if (poll(&pfd, 1, 10000) != 1) {
				fprintf(stderr, "poll timed out at line %ld\n",
					lines);
				return 1;
			}
			t = now_ns();
		}
		n = read(fd, buf, sizeof(buf));
		if (!use_poll)
			t = now_ns();
		if (n <= 0) {
			fstat(fd, &st);
			fprintf(stderr,
				"reader: read returned %zd at line "
				"%ld: %s (pos %lld size %lld)\n",
				n, lines, n ? strerror(errno) : "end of file",
				(long long)lseek(fd, 0, SEEK_CUR),
				(long long)st.st_size);
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n')
				continue;
			sh->woke[lines++] = t;
			atomic_store(&sh->seen, lines);
		}
	}
	close(fd);
	return 0;
}

static void report(const char *mode, int64_t *lat, long count)
{
	qsort(lat, (size_t)count, sizeof(*lat), cmp64);
	printf("%-29s n=%ld p50=%.3f ms p99=%.3f ms max=%.3f ms\n", mode, count,
	       lat[count / 2] / 1e6, lat[count * 99 / 100] / 1e6,
	       lat[count - 1] / 1e6);
}

static const char *const modes[] = {"follow", "poll", "poll-follow"};

static int run(const char *mnt, const char *part, int use_poll, long count)
{
	char what[64];
	char follow[4400], line[LINE];
	struct shared *sh;
	int64_t *ret_lat, *call_lat, t_call, t_ret, w;
	size_t shsize = sizeof(*sh) + (size_t)count * sizeof(int64_t);
	long i;
	pid_t pid;
	int fd, status, ret = 1;

	snprintf(follow, sizeof(follow), "%s/.follow/" TOPIC "/0", mnt);
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ret_lat = calloc((size_t)count, sizeof(*ret_lat));
	call_lat = calloc((size_t)count, sizeof(*call_lat));
	fd = open(part, O_WRONLY | O_APPEND);
	if (sh == MAP_FAILED || !ret_lat || !call_lat || fd < 0) {
		perror("setup");
		return 1;
	}
	pid = fork();
	if (pid == 0)
		_exit(reader(use_poll == 1 ? part : follow, use_poll, sh,
			     count));
	while (!atomic_load(&sh->ready))
		usleep(1000);
	for (i = 0; i < count; i++) {
		/* Let the reader get back into read()/poll() and park. */
		usleep(200);
		snprintf(line, sizeof(line), "wakeup %09ld\n", i);
		t_call = now_ns();
		if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
			perror("write");
			goto out;
		}
		t_ret = now_ns();
		while (atomic_load(&sh->seen) <= i) {
			/* Sleep, not spin: on two CPUs a spinning producer
			 * takes one from the daemon, the notifier and the
			 * reader, and its timeslices showed up as a 3.5 ms
			 * p99 in the poll modes.  The latency is stamped by
			 * the reader, so the sleep does not enter it. */
			usleep(20);
			if (waitpid(pid, &status, WNOHANG) == pid) {
				fprintf(stderr, "reader died\n");
				pid = -1;
				goto out;
			}
		}
		w = sh->woke[i];
		ret_lat[i] = w > t_ret ? w - t_ret : 0;
		call_lat[i] = w - t_call;
	}
	ret = 0;
	snprintf(what, sizeof(what), "%s, write() returned", modes[use_poll]);
	report(what, ret_lat, count);
	snprintf(what, sizeof(what), "%s, write() called", modes[use_poll]);
	report(what, call_lat, count);
out:
	if (pid > 0) {
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ret = 1;
	}
	close(fd);
	free(ret_lat);
	free(call_lat);
	munmap(sh, shsize);
	return ret;
}

int main(int argc, char **argv)
{
	char dir[4096], part[4200];
	long count = 10000;
	int ret;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: wakeup_bench MNT [COUNT]\n");
		return 2;
	}
	if (argc == 3)
		count = atol(argv[2]);
	if (count < 1)
		return 2;
	snprintf(dir, sizeof(dir), "%s/" TOPIC, argv[1]);
	snprintf(part, sizeof(part), "%s/0", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "cannot create '%s': %s\n", dir,
			strerror(errno));
		return 1;
	}
	ret = open(part, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (ret < 0) {
		fprintf(stderr, "cannot create '%s': %s\n", part,
			strerror(errno));
		return 1;
	}
	close(ret);
	ret = run(argv[1], part, 0, count);
	if (ret == 0)
		ret = run(argv[1], part, 2, count);
	unlink(part);
	rmdir(dir);
	return ret;
}
