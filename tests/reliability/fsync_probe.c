/*
 * fsync_probe.c - the failed-fsync check of the fault suite: two handles
 * on one partition each append a line (so both hold unflushed data), as
 * does a third, C; then handle A fsyncs, handle B fsyncs, A fsyncs
 * again, B fsyncs again, C is closed, and a fourth handle D appends a
 * line and fsyncs.  Prints
 *
 *   a=RESULT b=RESULT a2=RESULT b2=RESULT c_close=RESULT d=RESULT
 *
 * where RESULT is "ok" or the errno number.  After an injected failure of
 * A's fsync (a data sync: the three lines may be lost), B's fsync and
 * C's close must fail too, their lines were in that flush; each handle
 * is told once, so the second fsyncs succeed, and D, whose line came
 * after, is not told: the partition is back in service.
 * Exit status 0 if the probe ran, 2 if the setup (open, write) failed.
 *
 *   fsync_probe FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *name, int fd)
{
	if (fsync(fd) == 0)
		printf("%s=ok", name);
	else
		printf("%s=%d", name, errno);
}

int main(int argc, char **argv)
{
	static const char line_a[] = "probe a\n", line_b[] = "probe b\n";
	static const char line_c[] = "probe c\n", line_d[] = "probe d\n";
	int a, b, c, d;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	a = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	b = open(argv[1], O_WRONLY | O_APPEND);
	c = open(argv[1], O_WRONLY | O_APPEND);
	if (a < 0 || b < 0 || c < 0) {
		perror(argv[1]);
		return 2;
	}
	if (write(a, line_a, strlen(line_a)) != (ssize_t)strlen(line_a) ||
	    write(b, line_b, strlen(line_b)) != (ssize_t)strlen(line_b) ||
	    write(c, line_c, strlen(line_c)) != (ssize_t)strlen(line_c)) {
		perror("write");
		return 2;
	}
	show("a", a);
	show(" b", b);
	show(" a2", a);
	show(" b2", b);
	if (close(c) == 0)
		printf(" c_close=ok");
	else
		printf(" c_close=%d", errno);
	d = open(argv[1], O_WRONLY | O_APPEND);
	if (d < 0 ||
	    write(d, line_d, strlen(line_d)) != (ssize_t)strlen(line_d)) {
		perror("d");
		return 2;
	}
	show(" d", d);
	close(d);
	printf("\n");
	close(a);
	close(b);
	return 0;
}
