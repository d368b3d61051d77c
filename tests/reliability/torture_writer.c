/*
 * torture_writer.c - one writer of the reliability suite: appends tagged,
 * numbered lines to a partition through the mount and records, outside
 * the mount, how many of them a successful fsync acknowledged.
 *
 *   torture_writer FILE TAG EVERY ACKFILE [MAXLINES]
 *
 * Line n is "TAG n " followed by (n * 7) % 61 'x' and a newline; one to
 * four lines go in each write().  Every EVERY lines the writer fsyncs;
 * after each successful fsync it rewrites ACKFILE with the count and
 * fsyncs it, so ACKFILE never claims more than the mount acknowledged.
 *
 * It stops at MAXLINES (default unlimited), after $TORTURE_SECONDS
 * seconds if that is set (the stress test's fixed time), or at the first
 * error.  On a
 * failed fsync it calls fsync once more on the same descriptor and
 * reports how that went (a failure is reported once per handle, so the
 * second one may succeed).  Last line on stdout, always:
 *
 *   done WRITTEN ACKED OP ERRNO REFSYNC
 *
 * WRITTEN counts lines whose write() succeeded, OP is "none", "open",
 * "write", "fsync" or "close", ERRNO its symbolic errno (or 0), REFSYNC
 * "-", "failed" or "succeeded".  Exit status 0 at MAXLINES, 1 after an
 * error, 2 on bad usage or a failure to record the acknowledgement.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int e)
{
	switch (e) {
	case 0:
		return "0";
	case EIO:
		return "EIO";
	case ENOSPC:
		return "ENOSPC";
	case ENOTCONN:
		return "ENOTCONN";
	case ECONNABORTED:
		return "ECONNABORTED";
	case EDQUOT:
		return "EDQUOT";
	case EINTR:
		return "EINTR";
	case ENOENT:
		return "ENOENT";
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case EMSGSIZE:
		return "EMSGSIZE";
	default:
		return "other";
	}
}

/* Replace ackfile's contents with count and make that durable.  One
 * pwrite of a fixed width (right-aligned, so shells read the number
 * whatever the padding): a writer killed at any instant leaves the old
 * count or the new one, never an empty file, as a truncate followed by
 * a write would. */
static int record_ack(int fd, unsigned long long count)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%20llu\n", count);

	if (pwrite(fd, buf, (size_t)n, 0) != n || fsync(fd) < 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long written = 0, acked = 0, max = 0, every, since = 0;
	const char *op = "none", *refsync = "-";
	char buf[4 * 160];
	size_t len;
	ssize_t w;
	const char *secs = getenv("TORTURE_SECONDS");
	time_t deadline = secs && *secs ? time(NULL) + atoi(secs) : 0;
	int fd, ackfd, k, nlines, err = 0, ret = 0, i;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: %s FILE TAG EVERY ACKFILE [MAXLINES]\n",
			argv[0]);
		return 2;
	}
	every = strtoull(argv[3], NULL, 10);
	if (argc == 6)
		max = strtoull(argv[5], NULL, 10);
	if (every == 0)
		every = 1;
	ackfd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (ackfd < 0 || record_ack(ackfd, 0) < 0) {
		perror(argv[4]);
		return 2;
	}
	srand((unsigned)getpid());
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = errno;
		op = "open";
		ret = 1;
		goto out;
	}
	while ((!max || written < max) &&
	       (!deadline || time(NULL) < deadline)) {
		nlines = 1 + rand() % 4;
		if (max && written + (unsigned long long)nlines > max)
			nlines = (int)(max - written);
		len = 0;
		for (k = 0; k < nlines; k++) {
			unsigned long long n = written + (unsigned long long)k;

			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"%s %llu ", argv[2], n);
			for (i = 0; i < (int)(n * 7 % 61); i++)
				buf[len++] = 'x';
			buf[len++] = '\n';
		}
		w = write(fd, buf, len);
		if (w != (ssize_t)len) {
			/* A short write would split a message: an error too. */
			err = w < 0 ? errno : EIO;
			op = "write";
			ret = 1;
			goto out_close;
		}
		written += (unsigned long long)nlines;
		since += (unsigned long long)nlines;
		if (since >= every) {
			since = 0;
			if (fsync(fd) < 0) {
				err = errno;
				op = "fsync";
				refsync =
					fsync(fd) < 0 ? "failed" : "succeeded";
				ret = 1;
				goto out_close;
			}
			acked = written;
			if (record_ack(ackfd, acked) < 0) {
				perror(argv[4]);
				ret = 2;
				goto out_close;
			}
		}
	}
out_close:
	if (close(fd) < 0 && ret == 0) {
		err = errno;
		op = "close";
		ret = 1;
	}
out:
	close(ackfd);
	printf("done %llu %llu %s %s %s\n", written, acked, op, errno_name(err),
	       refsync);
	return ret;
}
