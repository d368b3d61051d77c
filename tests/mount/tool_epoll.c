/*
 * tool_epoll.c - epoll wakes on append, for partition and follow files.
 *
 *   tool_epoll PARTITION FOLLOW ROUNDS
 *
 * Opens PARTITION (a partition file, page-cache reader) and FOLLOW (its
 * follow-view file, O_NONBLOCK), reads both to their end and watches both
 * with one epoll set.  Each round: epoll_wait for 300 ms must report
 * nothing (no data arrived: not woken before), then a child process
 * appends one line to PARTITION and reports when its write() returned;
 * both descriptors must then be reported readable within 1 s, not before
 * the write began, and reading them must give exactly that line.  Prints
 * the wakeup delays; exit 0 when every round holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	struct epoll_event ev, out[4];
	double t_start, t_done, woke[2], deadline;
	char line[64];
	int fds[2], ep, rounds, r, i, k, n, seen;

	if (argc != 4) {
		fprintf(stderr, "usage: tool_epoll PARTITION FOLLOW ROUNDS\n");
		return 2;
	}
	rounds = atoi(argv[3]);
	fds[0] = open(argv[1], O_RDONLY);
	fds[1] = open(argv[2], O_RDONLY | O_NONBLOCK);
	ep = epoll_create1(0);
	if (fds[0] < 0 || fds[1] < 0 || ep < 0) {
		perror("open");
		return 1;
	}
	for (i = 0; i < 2; i++) {
		if (drain(fds[i], buf, sizeof(buf)) < 0) {
			perror("read");
			return 1;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			perror("epoll_ctl");
			return 1;
		}
	}
	for (r = 0; r < rounds; r++) {
		n = epoll_wait(ep, out, 4, 300);
		if (n != 0) {
			fprintf(stderr,
				"round %d: epoll reported %d ready "
				"before any append\n",
				r, n);
			return 1;
		}
		snprintf(line, sizeof(line), "epoll round %d\n", r);
		if (child_append(argv[1], line, &t_start, &t_done) < 0) {
			fprintf(stderr, "round %d: append failed\n", r);
			return 1;
		}
		seen = 0;
		deadline = t_done + 1000;
		while (seen != 3 && now_ms() < deadline) {
			n = epoll_wait(ep, out, 4,
				       (int)(deadline - now_ms()) + 1);
			for (k = 0; k < n; k++) {
				i = (int)out[k].data.u32;
				if (seen & (1 << i))
					continue;
				woke[i] = now_ms();
				seen |= 1 << i;
			}
		}
		if (seen != 3) {
			fprintf(stderr,
				"round %d: not woken within 1 s "
				"(partition %d, follow %d)\n",
				r, !!(seen & 1), !!(seen & 2));
			return 1;
		}
		for (i = 0; i < 2; i++) {
			long got = drain(fds[i], buf, sizeof(buf));

			if (woke[i] < t_start) {
				fprintf(stderr,
					"round %d: woken before the "
					"append\n",
					r);
				return 1;
			}
			if (got != (long)strlen(line) ||
			    memcmp(buf, line, strlen(line)) != 0) {
				fprintf(stderr,
					"round %d: fd %d read %ld "
					"bytes, not the line\n",
					r, i, got);
				return 1;
			}
		}
		printf("round %d: partition woke %.2f ms, follow %.2f ms "
		       "after write() returned\n",
		       r, woke[0] - t_done, woke[1] - t_done);
	}
	return 0;
}
