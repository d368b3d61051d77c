/*
 * tool_epoll.c - what epoll, poll and select report on partition and
 * follow files.
 *
 *   tool_epoll PARTITION FOLLOW ROUNDS
 *
 * A partition file polls like a regular file: a reader (O_RDONLY, read to
 * its end) and a writer (O_WRONLY|O_APPEND) are reported ready at once by
 * epoll, poll and select, before and after appends, and the reader's
 * read at the end returns 0 (event-loop programs such as socat, nc and pv
 * wait for exactly this).  The follow view waits for data: opened
 * O_NONBLOCK and read to its end, each round epoll_wait for 300 ms must
 * report nothing, then a child process appends one line to PARTITION and
 * reports when its write() returned; the follow file must then be
 * reported readable within 1 s, not before the write began, and reading
 * it must give exactly that line (as must reading the partition reader).
 * Prints the wakeup delays; exit 0 when every round holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Read fd until end-of-file or EAGAIN; returns the bytes (into buf). */
static long drain(int fd, char *buf, size_t size)
{
	long total = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf + total, size - (size_t)total);
		if (n > 0) {
			total += n;
			continue;
		}
		if (n == 0 || errno == EAGAIN)
			return total;
		return -1;
	}
}

/* Append line to path from another process; returns when its write()
 * started and returned. */
static int child_append(const char *path, const char *line, double *t_start,
			double *t_done)
{
	double t[2];
	int p[2], status;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_APPEND);

		t[0] = now_ms();
		if (fd < 0 ||
		    write(fd, line, strlen(line)) != (ssize_t)strlen(line))
			_exit(1);
		t[1] = now_ms();
		if (write(p[1], t, sizeof(t)) != sizeof(t))
			_exit(1);
		close(fd);
		_exit(0);
	}
	close(p[1]);
	if (pid < 0 || read(p[0], t, sizeof(t)) != sizeof(t))
		return -1;
	close(p[0]);
	waitpid(pid, &status, 0);
	*t_start = t[0];
	*t_done = t[1];
	return 0;
}

/* fd must be ready for want (EPOLLIN or EPOLLOUT) at once, by epoll, poll
 * and select alike.  Returns 0, or -1 after saying which failed. */
static int ready_now(int fd, unsigned want, const char *what)
{
	struct epoll_event ev, out;
	struct pollfd pfd = {.fd = fd,
			     .events = want == EPOLLIN ? POLLIN : POLLOUT};
	struct timeval tv = {0, 0};
	fd_set set;
	int ep = epoll_create1(0), n;

	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("epoll_ctl");
		return -1;
	}
	n = epoll_wait(ep, &out, 1, 0);
	close(ep);
	if (n != 1 || !(out.events & want)) {
		fprintf(stderr, "%s: epoll does not report it ready\n", what);
		return -1;
	}
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & pfd.events)) {
		fprintf(stderr, "%s: poll does not report it ready\n", what);
		return -1;
	}
	FD_ZERO(&set);
	FD_SET(fd, &set);
	n = want == EPOLLIN ? select(fd + 1, &set, NULL, NULL, &tv)
			    : select(fd + 1, NULL, &set, NULL, &tv);
	if (n != 1) {
		fprintf(stderr, "%s: select does not report it ready\n", what);
		return -1;
	}
	return 0;
}

/* The partition reader at its end and a writer: both ready, and the
 * reader's read returns 0. */
static int partition_ready(int rfd, int wfd, const char *when)
{
	char what[96], c;

	snprintf(what, sizeof(what), "partition reader at its end, %s", when);
	if (ready_now(rfd, EPOLLIN, what) < 0)
		return -1;
	if (read(rfd, &c, 1) != 0) {
		fprintf(stderr, "%s: read did not return 0\n", what);
		return -1;
	}
	snprintf(what, sizeof(what), "partition writer, %s", when);
	return ready_now(wfd, EPOLLOUT, what);
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	struct epoll_event ev, out[4];
	double t_start, t_done, woke, deadline;
	char line[64], when[32];
	int rfd, wfd, ffd, ep, rounds, r, n;
	long got;

	if (argc != 4) {
		fprintf(stderr, "usage: tool_epoll PARTITION FOLLOW ROUNDS\n");
		return 2;
	}
	rounds = atoi(argv[3]);
	rfd = open(argv[1], O_RDONLY);
	wfd = open(argv[1], O_WRONLY | O_APPEND);
	ffd = open(argv[2], O_RDONLY | O_NONBLOCK);
	ep = epoll_create1(0);
	if (rfd < 0 || wfd < 0 || ffd < 0 || ep < 0) {
		perror("open");
		return 1;
	}
	if (drain(rfd, buf, sizeof(buf)) < 0 ||
	    drain(ffd, buf, sizeof(buf)) < 0) {
		perror("read");
		return 1;
	}
	if (partition_ready(rfd, wfd, "before any append") < 0)
		return 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ffd, &ev) < 0) {
		perror("epoll_ctl");
		return 1;
	}
	for (r = 0; r < rounds; r++) {
		n = epoll_wait(ep, out, 4, 300);
		if (n != 0) {
			fprintf(stderr,
				"round %d: epoll reported the follow file "
				"ready before any append\n",
				r);
			return 1;
		}
		snprintf(line, sizeof(line), "epoll round %d\n", r);
		if (child_append(argv[1], line, &t_start, &t_done) < 0) {
			fprintf(stderr, "round %d: append failed\n", r);
			return 1;
		}
		deadline = t_done + 1000;
		woke = 0;
		while (!woke && now_ms() < deadline) {
			n = epoll_wait(ep, out, 4,
				       (int)(deadline - now_ms()) + 1);
			if (n > 0)
				woke = now_ms();
		}
		if (!woke) {
			fprintf(stderr, "round %d: follow file not woken "
				"within 1 s\n", r);
			return 1;
		}
		if (woke < t_start) {
			fprintf(stderr, "round %d: woken before the append\n",
				r);
			return 1;
		}
		got = drain(ffd, buf, sizeof(buf));
		if (got != (long)strlen(line) ||
		    memcmp(buf, line, strlen(line)) != 0) {
			fprintf(stderr, "round %d: the follow file read %ld "
				"bytes, not the line\n", r, got);
			return 1;
		}
		got = drain(rfd, buf, sizeof(buf));
		if (got != (long)strlen(line) ||
		    memcmp(buf, line, strlen(line)) != 0) {
			fprintf(stderr, "round %d: the partition read %ld "
				"bytes, not the line\n", r, got);
			return 1;
		}
		snprintf(when, sizeof(when), "after round %d", r);
		if (partition_ready(rfd, wfd, when) < 0)
			return 1;
		printf("round %d: follow woke %.2f ms after write() "
		       "returned; partition reader and writer ready\n",
		       r, woke - t_done);
	}
	return 0;
}
