/*
 * stress_follower.c - the follower and the checker of the concurrency
 * stress test.
 *
 *   stress_follower follow SRC OUT STOPFILE [DELAY_MS]
 *
 * Reads SRC (a follow view, where reads park until data arrives, or a
 * partition file, polled at its end like tail -f) from byte 0 and copies
 * every byte to OUT, so OUT's byte i is what the follower saw at byte i.
 * An interval timer interrupts parked reads every 200 ms (no SA_RESTART:
 * this also exercises interrupting them); whenever a read returns EINTR or
 * 0, the follower stops if STOPFILE holds a byte count it has reached.
 * DELAY_MS sleeps after each read: a slow follower that falls behind
 * retention.  Exit 0 when stopped at exactly the count, 1 otherwise.
 *
 *   stress_follower check SEEN FINAL START_BYTE
 *
 * SEEN is a follower's copy, FINAL the partition read after the writers
 * stopped, START_BYTE its first retained byte (the hole is below).
 * Checks: SEEN is as long as FINAL; from START_BYTE on they are
 * identical; below it every byte SEEN holds is NUL (read after retention
 * removed it) or the byte the writers appended there -- the latter
 * checked as whole, well-formed lines wherever SEEN has a line with no
 * NUL in it, in per-tag order.  Prints "TAG NEXT" for each tag of
 * FINAL's retained lines (NEXT = last number + 1), for the caller to
 * compare with what the writers wrote; exit 1 on any mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_TAGS 64

struct tag_seq {
	char tag[32];
	long long next; /* -1: not seen yet */
};

static void on_alarm(int sig)
{
	(void)sig;
}

static long long read_stop(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int follow(const char *src, const char *out, const char *stop,
		  int delay_ms)
{
	static char buf[1 << 16];
	struct sigaction sa;
	struct itimerval it;
	long long total = 0, target;
	ssize_t n;
	int fd, ofd;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART */
	memset(&it, 0, sizeof(it));
	it.it_interval.tv_usec = 200000;
	it.it_value.tv_usec = 200000;
	fd = open(src, O_RDONLY);
	ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ofd < 0) {
		perror("open");
		return 1;
	}
	setitimer(ITIMER_REAL, &it, NULL);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			if (write(ofd, buf, (size_t)n) != n) {
				perror(out);
				return 1;
			}
			total += n;
			if (delay_ms)
				usleep((useconds_t)delay_ms * 1000);
			continue;
		}
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "follower: read at %lld: %s\n", total,
				strerror(errno));
			return 1;
		}
		target = read_stop(stop);
		if (target >= 0 && total >= target)
			break;
		if (n == 0)
			usleep(2000); /* a plain file at its end: poll */
	}
	if (total != target) {
		fprintf(stderr, "follower: read %lld bytes, the log has %lld\n",
			total, target);
		return 1;
	}
	return 0;
}

/* The whole of path, NUL-terminated, or NULL. */
static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto out;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto out;
	if (read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[st.st_size] = 0;
	*len = (size_t)st.st_size;
out:
	close(fd);
	return buf;
}

static struct tag_seq *find_tag(struct tag_seq *t, int *nt, const char *tag,
				size_t len)
{
	int i;

	if (len == 0 || len >= sizeof(t[0].tag))
		return NULL;
	for (i = 0; i < *nt; i++)
		if (strlen(t[i].tag) == len && !memcmp(t[i].tag, tag, len))
			return &t[i];
	if (*nt == MAX_TAGS)
		return NULL;
	memcpy(t[*nt].tag, tag, len);
	t[*nt].tag[len] = 0;
	t[*nt].next = -1;
	return &t[(*nt)++];
}

/* Is line [p, p+len) (newline excluded) "TAG N x..x" with (N*7)%61 x's?
 * If so, set *tag, *tlen and *num. */
static int parse_line(const char *p, size_t len, const char **tag, size_t *tlen,
		      long long *num)
{
	size_t i = 0, x;
	long long n = 0;

	while (i < len && p[i] != ' ')
		i++;
	if (i == 0 || i == len)
		return 0;
	*tag = p;
	*tlen = i++;
	if (i == len || p[i] < '0' || p[i] > '9')
		return 0;
	while (i < len && p[i] >= '0' && p[i] <= '9')
		n = n * 10 + (p[i++] - '0');
	if (i == len || p[i++] != ' ')
		return 0;
	for (x = i; x < len; x++)
		if (p[x] != 'x')
			return 0;
	if ((long long)(len - i) != n * 7 % 61)
		return 0;
	*num = n;
	return 1;
}

/* Check the lines of buf[from, to): each must parse, and numbers per tag
 * must increase by one from the first seen (strict) or just increase
 * (loose: lines below the hole may be missing where NULs replaced them). */
static int check_lines(const char *buf, size_t from, size_t to,
		       struct tag_seq *t, int *nt, int strict, const char *what)
{
	size_t at = from, e;
	const char *tag;
	size_t tlen;
	long long num;
	struct tag_seq *ts;

	while (at < to) {
		e = at;
		while (e < to && buf[e] != '\n')
			e++;
		if (e == to) {
			fprintf(stderr, "%s: partial line at byte %zu\n", what,
				at);
			return 1;
		}
		if (!parse_line(buf + at, e - at, &tag, &tlen, &num) ||
		    !(ts = find_tag(t, nt, tag, tlen))) {
			fprintf(stderr, "%s: bad line at byte %zu: '%.60s'\n",
				what, at, buf + at);
			return 1;
		}
		if (ts->next >= 0 &&
		    (strict ? num != ts->next : num < ts->next)) {
			fprintf(stderr, "%s: byte %zu: %s %lld after %lld\n",
				what, at, ts->tag, num, ts->next - 1);
			return 1;
		}
		ts->next = num + 1;
		at = e + 1;
	}
	return 0;
}

static int check(const char *seen_path, const char *final_path,
		 const char *start_s)
{
	struct tag_seq hole[MAX_TAGS], kept[MAX_TAGS];
	size_t slen, flen, start = strtoull(start_s, NULL, 10), i, a, b;
	char *seen = slurp(seen_path, &slen), *fin = slurp(final_path, &flen);
	int nh = 0, nk = 0, k, ret = 1;

	if (!seen || !fin) {
		fprintf(stderr, "check: cannot read inputs\n");
		goto out;
	}
	if (slen != flen || start > flen) {
		fprintf(stderr,
			"check: follower saw %zu bytes, log has %zu "
			"(start %zu)\n",
			slen, flen, start);
		goto out;
	}
	if (memcmp(seen + start, fin + start, flen - start) != 0) {
		for (i = start; seen[i] == fin[i]; i++)
			;
		for (a = i; a < flen && seen[a] != fin[a]; a++)
			;
		fprintf(stderr,
			"check: follower differs from the log at "
			"bytes %zu-%zu (retained part; %s): saw '%.*s', log "
			"'%.*s'\n",
			i, a - 1, seen[i] == 0 ? "NULs" : "other bytes",
			(int)(a - i > 40 ? 40 : a - i), seen + i,
			(int)(a - i > 40 ? 40 : a - i), fin + i);
		goto out;
	}
	for (i = 0; i < start; i++) {
		if (fin[i] != 0) {
			fprintf(stderr, "check: hole byte %zu is not zero\n",
				i);
			goto out;
		}
	}
	/* Below the hole: runs without NUL, trimmed to whole lines. */
	for (i = 0; i < start;) {
		while (i < start && seen[i] == 0)
			i++;
		a = i;
		while (i < start && seen[i] != 0)
			i++;
		b = i;
		if (a > 0) {
			/* After NULs the first line may be cut: skip it. */
			while (a < b && seen[a] != '\n')
				a++;
			a++;
		}
		while (b > a && seen[b - 1] != '\n')
			b--; /* a line cut by the NULs after it */
		if (a < b && check_lines(seen, a, b, hole, &nh, 0, "hole"))
			goto out;
	}
	if (check_lines(fin, start, flen, kept, &nk, 1, "log"))
		goto out;
	for (k = 0; k < nk; k++)
		printf("%s %lld\n", kept[k].tag, kept[k].next);
	ret = 0;
out:
	free(seen);
	free(fin);
	return ret;
}

int main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "follow"))
		return follow(argv[2], argv[3], argv[4],
			      argc == 6 ? atoi(argv[5]) : 0);
	if (argc == 5 && !strcmp(argv[1], "check"))
		return check(argv[2], argv[3], argv[4]);
	fprintf(stderr,
		"usage: %s follow SRC OUT STOPFILE [DELAY_MS]\n"
		"       %s check SEEN FINAL START_BYTE\n",
		argv[0], argv[0]);
	return 2;
}
