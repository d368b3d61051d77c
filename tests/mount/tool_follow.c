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
 *                                   child's end; fails over MAX_MS (100)
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

#define MAX_MS 100.0

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

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "nonblock"))
		return nonblock(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "interrupt"))
		return interrupt(argv[2], argv[3]);
	fprintf(stderr, "usage: tool_follow nonblock FILE | "
			"interrupt FILE kill|eintr\n");
	return 2;
}
