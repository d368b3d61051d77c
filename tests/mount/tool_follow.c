/*
 * tool_follow.c - checks on the follow view that shell tools cannot make.
 *
 *   tool_follow nonblock FILE       read an O_NONBLOCK follow file to its
 *                                   end: the data must be st_size bytes,
 *                                   then read() must fail with EAGAIN
 *   tool_follow interrupt FILE MODE a child reads FILE to its end and
 *                                   parks; after 300 ms it gets SIGINT.
 *                                   MODE kill: default action, the child
 *                                   must die of SIGINT; MODE eintr: a
 *                                   handler without SA_RESTART, read()
 *                                   must fail with EINTR.  Prints the
 *                                   milliseconds from kill() to the
 *                                   child's end; fails over MAX_MS (1000)
 *   tool_follow tailrace FILE SECS [split] [writer-first]
 *                                   a child appends numbered lines of
 *                                   varying length, one write() each, for
 *                                   SECS; the parent reads FILE at its
 *                                   end with no delay, by read() and by
 *                                   fstat() plus pread() in turn.  What it
 *                                   read must be exactly the lines
 *                                   written, in order: a NUL (a stale
 *                                   cached page) fails.  The reader opens
 *                                   first (it reads through the page
 *                                   cache, the writer writes through it);
 *                                   writer-first: the writer opens first
 *                                   (both direct_io).  split: each line in
 *                                   two write()s (the daemon holds the
 *                                   first)
 *
 * Exit status 0 when the check holds, 1 (with a message) when not.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MS 1000.0

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int nonblock(const char *path)
{
	char buf[65536];
	struct stat st;
	long long total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NONBLOCK);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cannot open '%s': %s\n", path,
			strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n == 0) {
		fprintf(stderr, "read at the end returned end-of-file\n");
		return 1;
	}
	if (errno != EAGAIN) {
		fprintf(stderr, "read at the end: %s (wanted EAGAIN)\n",
			strerror(errno));
		return 1;
	}
	if (total != (long long)st.st_size) {
		fprintf(stderr, "read %lld bytes before EAGAIN, size %lld\n",
			total, (long long)st.st_size);
		return 1;
	}
	close(fd);
	printf("EAGAIN after %lld bytes\n", total);
	return 0;
}

static void on_sigint(int sig)
{
	(void)sig;
}

/* The child: read to the end, tell the parent, park. */
static int child_read(const char *path, int handler, int ready)
{
	struct sigaction sa;
	char buf[65536];
	struct stat st;
	long long total = 0;
	ssize_t n;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler ? on_sigint : SIG_DFL; /* no SA_RESTART */
	sigaction(SIGINT, &sa, NULL);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return 2;
	while (total < (long long)st.st_size) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return 2;
		total += n;
	}
	if (write(ready, "r", 1) != 1)
		return 2;
	n = read(fd, buf, sizeof(buf)); /* parks */
	if (n < 0 && errno == EINTR)
		return 0;
	return 3;
}

static int interrupt(const char *path, const char *mode)
{
	int p[2], status, handler = !strcmp(mode, "eintr");
	double t0, ms;
	pid_t pid;
	char c;

	if (pipe(p) < 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(p[0]);
		_exit(child_read(path, handler, p[1]));
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "the child did not reach the end\n");
		return 1;
	}
	usleep(300000); /* let the read park */
	t0 = now_ms();
	kill(pid, SIGINT);
	if (waitpid(pid, &status, 0) < 0)
		return 1;
	ms = now_ms() - t0;
	printf("child ended %.2f ms after SIGINT\n", ms);
	if (handler && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		fprintf(stderr,
			"parked read did not fail with EINTR "
			"(status %#x)\n",
			status);
		return 1;
	}
	if (!handler && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)) {
		fprintf(stderr,
			"the child did not die of SIGINT (status %#x)\n",
			status);
		return 1;
	}
	if (ms > MAX_MS) {
		fprintf(stderr, "took %.2f ms (limit %.0f)\n", ms, MAX_MS);
		return 1;
	}
	return 0;
}

/* The line tailrace's writer writes as its i-th append. */
static int race_line(char *buf, size_t cap, long i)
{
	static const char pad[] = "abcdefghijklmnopqrstuvwxyz0123456789"
				  "abcdefghijklmnopqrstuvwxyz0123456789"
				  "abcdefghijklmnopqrstuvwxyz0123456789";

	return snprintf(buf, cap, "line %ld %.*s\n", i, (int)(i % 97), pad);
}

static int tailrace(const char *path, int secs, int split, int wfirst)
{
	char line[256], buf[65536], want[256];
	long next = 0, pending = 0, got = 0;
	int fd, status = 0, wlen = 0, stat_turn = 0, done = 0, ready[2];
	off_t pos = 0;
	struct stat st;
	pid_t child;
	ssize_t n;

	/* Created read-only: a writer's close would release it only
	 * later, and until then the reader would open as beside a writer. */
	fd = open(path, O_RDONLY | O_CREAT, 0644);
	if (fd < 0 || close(fd) < 0)
		return fprintf(stderr, "tailrace: create %s: %s\n", path,
			       strerror(errno)),
		       1;
	fd = wfirst ? -1 : open(path, O_RDONLY);
	if ((!wfirst && fd < 0) || pipe(ready) < 0)
		return fprintf(stderr, "tailrace: open %s: %s\n", path,
			       strerror(errno)),
		       1;
	child = fork();
	if (child < 0)
		return perror("fork"), 1;
	if (child == 0) {
		double end = now_ms() + secs * 1000.0;
		long i = 0;
		int len;

		fd = open(path, O_WRONLY | O_APPEND);
		if (fd < 0 || write(ready[1], "", 1) != 1)
			_exit(2);
		while (now_ms() < end) {
			int cut;

			len = race_line(line, sizeof(line), i);
			/* Split lines: the daemon holds the first piece. */
			cut = split ? (int)(i % (len - 1)) + 1 : len;
			i++;
			if (write(fd, line, (size_t)cut) != cut ||
			    (cut < len &&
			     write(fd, line + cut, (size_t)(len - cut)) !=
				     len - cut))
				_exit(3);
		}
		_exit(0);
	}
	if (read(ready[0], line, 1) != 1)
		return fprintf(stderr, "tailrace: the writer did not open\n"),
		       1;
	if (wfirst)
		fd = open(path, O_RDONLY);
	if (fd < 0)
		return fprintf(stderr, "tailrace: open %s: %s\n", path,
			       strerror(errno)),
		       1;
	for (;;) {
		if (stat_turn ^= 1) {
			/* tail -f's way: the size first, then up to it. */
			if (fstat(fd, &st) < 0)
				return perror("fstat"), 1;
			n = st.st_size <= pos
				    ? 0
				    : pread(fd, buf,
					    (size_t)(st.st_size - pos) <
							    sizeof(buf)
						    ? (size_t)(st.st_size - pos)
						    : sizeof(buf),
					    pos);
		} else {
			n = pread(fd, buf, sizeof(buf), pos);
		}
		if (n < 0)
			return perror("read"), 1;
		if (n == 0) {
			/* Done only when a read after the writer's exit
			 * (not a size check) finds nothing more. */
			if (done && !stat_turn)
				break;
			if (!done && waitpid(child, &status, WNOHANG) == child)
				done = 1;
			continue;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (pending == 0) {
				wlen = race_line(want, sizeof(want), next);
				pending = wlen;
			}
			if (buf[i] != want[wlen - pending]) {
				fprintf(stderr,
					"tailrace: byte %lld is 0x%02x, want "
					"0x%02x (line %ld)\n",
					(long long)(pos + i),
					(unsigned char)buf[i],
					(unsigned char)want[wlen - pending],
					next);
				kill(child, SIGKILL);
				waitpid(child, &status, 0);
				return 1;
			}
			if (--pending == 0)
				next++;
		}
		pos += n;
		got += n;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fprintf(stderr, "tailrace: writer failed (%d)\n",
			       status),
		       1;
	/* The writer is done: the last read reached the end of the file. */
	if (pending != 0 || fstat(fd, &st) < 0 || st.st_size != pos)
		return fprintf(stderr,
			       "tailrace: read %lld bytes, file has %lld\n",
			       (long long)pos, (long long)st.st_size),
		       1;
	printf("%ld lines, %ld bytes\n", next, got);
	return next > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "nonblock"))
		return nonblock(argv[2]);
	if (argc >= 4 && argc <= 6 && !strcmp(argv[1], "tailrace")) {
		int split = 0, wfirst = 0;

		for (int i = 4; i < argc; i++) {
			if (!strcmp(argv[i], "split"))
				split = 1;
			else if (!strcmp(argv[i], "writer-first"))
				wfirst = 1;
			else
				return fprintf(stderr,
					       "tailrace: what is "
					       "'%s'?\n",
					       argv[i]),
				       2;
		}
		return tailrace(argv[2], atoi(argv[3]), split, wfirst);
	}
	if (argc == 4 && !strcmp(argv[1], "interrupt"))
		return interrupt(argv[2], argv[3]);
	fprintf(stderr, "usage: tool_follow nonblock FILE | "
			"interrupt FILE kill|eintr | "
			"tailrace FILE SECS [split] [writer-first]\n");
	return 2;
}
