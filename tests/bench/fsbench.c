/*
 * fsbench.c - one benchmark workload against one path, one line of figures.
 *
 * tests/bench/run.sh calls this for every workload, target (plain file,
 * ref_fuse, fluxfs) and repetition, and turns the "key=value" lines it
 * prints into the comparison table.  Each run checks what it did (bytes
 * written and read back, whole reads, no short writes) and exits non-zero
 * on any failure, so a broken target cannot pass for a fast one.
 *
 * Messages are 100-byte lines (99 bytes and a newline).  Nothing is
 * fsynced: fluxfs flushes on its flush_ms schedule, the plain file when the
 * kernel likes, and the table says so.
 *
 *     fsbench bulk FILE MIB          1 MiB write()s, O_APPEND
 *     fsbench keyed FILE MIB         the same of keyed lines ("keyNNNN\t...",
 *                                    1000 keys), for MNT/.produce/<topic>
 *     fsbench copy SRC FILE          read() SRC 1 MiB at a time, append
 *                                    each piece (dd bs=1M oflag=append)
 *     fsbench lines FILE N           one write() per line, one descriptor
 *     fsbench opens FILE N           open(O_APPEND)/write/close per line
 *     fsbench shell FILE N           bash: echo LINE >> FILE, N times
 *     fsbench parallel MIB F1 F2 ... one thread per file, MIB in total
 *     fsbench seqread FILE           read() 1 MiB at a time to EOF
 *     fsbench randread FILE N        N pread()s of 4 KiB at random bytes
 *     fsbench populate DIR N [flat]  N topics DIR/bench-NNNN/0 (or N flat
 *                                    files DIR/bench-NNNN) of one line
 *     fsbench prime DIR MIB          write and delete MIB in DIR, untimed
 *     fsbench rr DIR T P W N         W threads append N lines in all,
 *                                    round-robin over the T*P partitions
 *                                    DIR/rrTTTT/P (writer w takes every
 *                                    W-th), open(O_APPEND)/write/close
 *                                    per line
 *
 * prime exists for VMs with free page reporting (virtio-balloon, as on
 * Firecracker): memory the guest freed a few seconds ago has been handed
 * back to the host, and the first write into it runs at a fraction of the
 * speed (~0.4 against ~5 GB/s here).  run.sh primes right before each
 * timed bulk append, so whichever target runs gets pages the guest still
 * holds, rather than whichever ran after a drop_caches paying for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_BYTES 100
#define CHUNK_BYTES (1u << 20)
#define RAND_READ_BYTES 4096
#define MAX_WRITERS 16

/* One writer of the parallel workload. */
struct writer {
	const char *path;
	uint64_t bytes;
	const char *chunk;
	pthread_barrier_t *start;
	int ret;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noreturn)) static void die(const char *what, const char *path,
					  int err)
{
	fprintf(stderr, "fsbench: %s '%s': %s\n", what, path, strerror(err));
	exit(1);
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0) {
		fprintf(stderr, "fsbench: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

/* Fill buf with whole 100-byte lines ("msg NNNNNNNNNN xxx...\n") starting
 * at line number first; a length that is not a multiple of 100 ends with
 * part of a line, as a 1 MiB dd or cat buffer would. */
static void fill_lines(char *buf, size_t len, uint64_t first)
{
	char line[LINE_BYTES + 1];
	size_t off, n;

	for (off = 0; off < len; off += LINE_BYTES, first++) {
		snprintf(line, sizeof(line), "msg %010llu ",
			 (unsigned long long)first);
		memset(line + 15, 'x', LINE_BYTES - 16);
		line[LINE_BYTES - 1] = '\n';
		n = len - off < LINE_BYTES ? len - off : LINE_BYTES;
		memcpy(buf + off, line, n);
	}
}

/* Write all of buf to fd (an O_APPEND descriptor); 0 or errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Append bytes (whole chunks, the last one cut short) to path. */
static int append_bulk(const char *path, const char *chunk, uint64_t bytes)
{
	uint64_t done = 0;
	size_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	while (done < bytes && !err) {
		n = bytes - done < CHUNK_BYTES ? (size_t)(bytes - done)
					       : CHUNK_BYTES;
		err = write_all(fd, chunk, n);
		done += n;
	}
	if (close(fd) < 0 && !err)
		err = errno;
	return err;
}

static char *chunk_alloc(void)
{
	char *chunk = malloc(CHUNK_BYTES);

	if (!chunk)
		die("cannot allocate", "chunk", ENOMEM);
	fill_lines(chunk, CHUNK_BYTES, 0);
	return chunk;
}

/* The figures of a run that appended bytes in dt seconds. */
static void print_rate(uint64_t bytes, double dt)
{
	printf("mbps=%.1f msgps=%.0f bytes=%llu secs=%.3f\n",
	       (double)bytes / 1e6 / dt, (double)bytes / LINE_BYTES / dt,
	       (unsigned long long)bytes, dt);
}

/* A chunk of the same 100-byte lines, each starting with a key and a
 * TAB ("key0042\t"), over 1000 keys. */
static char *keyed_chunk_alloc(void)
{
	char *chunk = chunk_alloc();
	char key[9];
	size_t off, i = 0;

	for (off = 0; off + 8 <= CHUNK_BYTES; off += LINE_BYTES, i++) {
		snprintf(key, sizeof(key), "key%04zu", i % 1000);
		memcpy(chunk + off, key, 7);
		chunk[off + 7] = '\t';
	}
	return chunk;
}

static int cmd_bulk(const char *path, uint64_t mib, int keyed)
{
	char *chunk = keyed ? keyed_chunk_alloc() : chunk_alloc();
	uint64_t bytes = mib << 20;
	double t0, dt;
	int err;

	t0 = now_s();
	err = append_bulk(path, chunk, bytes);
	dt = now_s() - t0;
	free(chunk);
	if (err)
		die("cannot append to", path, err);
	print_rate(bytes, dt);
	return 0;
}

/* A producer that reads its input from a file, as dd and cat do: the
 * reads compete with the daemon for the CPUs. */
static int cmd_copy(const char *src, const char *path)
{
	char *buf = malloc(CHUNK_BYTES);
	uint64_t bytes = 0;
	double t0, dt;
	ssize_t n;
	int in, out, err = 0;

	if (!buf)
		die("cannot allocate", "buffer", ENOMEM);
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		die("cannot open", src, errno);
	out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out < 0)
		die("cannot open", path, errno);
	t0 = now_s();
	while (!err && (n = read(in, buf, CHUNK_BYTES)) > 0) {
		err = write_all(out, buf, (size_t)n);
		bytes += (uint64_t)n;
	}
	if (n < 0)
		die("cannot read", src, errno);
	if (close(out) < 0 && !err)
		err = errno;
	dt = now_s() - t0;
	close(in);
	free(buf);
	if (err)
		die("cannot append to", path, err);
	print_rate(bytes, dt);
	return 0;
}

static int cmd_lines(const char *path, uint64_t n)
{
	char line[LINE_BYTES];
	double t0, dt;
	uint64_t i;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot open", path, errno);
	t0 = now_s();
	for (i = 0; i < n && !err; i++) {
		fill_lines(line, sizeof(line), i);
		err = write_all(fd, line, sizeof(line));
	}
	if (close(fd) < 0 && !err)
		err = errno;
	dt = now_s() - t0;
	if (err)
		die("cannot append to", path, err);
	printf("lps=%.0f mbps=%.2f secs=%.3f\n", (double)n / dt,
	       (double)n * LINE_BYTES / 1e6 / dt, dt);
	return 0;
}

/* What `echo LINE >> FILE` makes the shell do, without the shell. */
static int cmd_opens(const char *path, uint64_t n)
{
	char line[LINE_BYTES];
	double t0, dt;
	uint64_t i;
	int fd, err = 0;

	fill_lines(line, sizeof(line), 0);
	t0 = now_s();
	for (i = 0; i < n && !err; i++) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
		if (fd < 0) {
			err = errno;
			break;
		}
		err = write_all(fd, line, sizeof(line));
		if (close(fd) < 0 && !err)
			err = errno;
	}
	dt = now_s() - t0;
	if (err)
		die("cannot append to", path, err);
	printf("aps=%.0f secs=%.3f\n", (double)n / dt, dt);
	return 0;
}

/* The shell itself: bash's echo is a builtin, so this is one process doing
 * open/write/close per line plus the interpreter's own work. */
static int cmd_shell(const char *path, uint64_t n)
{
	char line[LINE_BYTES], nbuf[32];
	double t0, dt;
	pid_t pid;
	int status;

	fill_lines(line, sizeof(line), 0);
	line[LINE_BYTES - 1] = '\0'; /* echo adds the newline */
	snprintf(nbuf, sizeof(nbuf), "%llu", (unsigned long long)n);
	t0 = now_s();
	pid = fork();
	if (pid < 0)
		die("cannot fork for", path, errno);
	if (pid == 0) {
		execlp("bash", "bash", "-c",
		       "for ((i = 0; i < $1; i++)); do echo \"$2\" >> \"$3\"; "
		       "done",
		       "bash", nbuf, line, path, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("cannot wait for bash on", path, errno);
	dt = now_s() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "fsbench: bash loop on '%s' failed\n", path);
		return 1;
	}
	printf("aps=%.0f secs=%.3f\n", (double)n / dt, dt);
	return 0;
}

static void *writer_run(void *arg)
{
	struct writer *w = arg;

	pthread_barrier_wait(w->start);
	w->ret = append_bulk(w->path, w->chunk, w->bytes);
	return NULL;
}

static int cmd_parallel(uint64_t mib, char **paths, int n)
{
	struct writer w[MAX_WRITERS];
	pthread_t tid[MAX_WRITERS];
	pthread_barrier_t start;
	char *chunk = chunk_alloc();
	uint64_t total = 0;
	double t0, dt;
	int i, ret = 0;

	if (n < 1 || n > MAX_WRITERS) {
		fprintf(stderr, "fsbench: 1 to %d writers\n", MAX_WRITERS);
		exit(2);
	}
	pthread_barrier_init(&start, NULL, (unsigned)n + 1);
	for (i = 0; i < n; i++) {
		w[i].path = paths[i];
		w[i].bytes = (mib << 20) / (uint64_t)n;
		w[i].chunk = chunk;
		w[i].start = &start;
		w[i].ret = 0;
		total += w[i].bytes;
		if (pthread_create(&tid[i], NULL, writer_run, &w[i]) != 0)
			die("cannot start a writer for", paths[i], EAGAIN);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	dt = now_s() - t0;
	pthread_barrier_destroy(&start);
	free(chunk);
	for (i = 0; i < n; i++) {
		if (w[i].ret) {
			fprintf(stderr, "fsbench: cannot append to '%s': %s\n",
				w[i].path, strerror(w[i].ret));
			ret = 1;
		}
	}
	if (ret)
		return ret;
	printf("mbps=%.1f msgps=%.0f bytes=%llu secs=%.3f\n",
	       (double)total / 1e6 / dt, (double)total / LINE_BYTES / dt,
	       (unsigned long long)total, dt);
	return 0;
}

static int cmd_seqread(const char *path)
{
	char *buf = malloc(CHUNK_BYTES);
	uint64_t total = 0;
	struct stat st;
	double t0, dt;
	ssize_t n;
	int fd;

	if (!buf)
		die("cannot allocate", "buffer", ENOMEM);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot open", path, errno);
	t0 = now_s();
	for (;;) {
		n = read(fd, buf, CHUNK_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("cannot read", path, errno);
		if (n == 0)
			break;
		total += (uint64_t)n;
	}
	dt = now_s() - t0;
	close(fd);
	free(buf);
	/* The file only grows, and nothing appends while we read. */
	if (total != (uint64_t)st.st_size) {
		fprintf(stderr, "fsbench: read %llu bytes of '%s', size %lld\n",
			(unsigned long long)total, path, (long long)st.st_size);
		return 1;
	}
	printf("mbps=%.1f bytes=%llu secs=%.3f\n", (double)total / 1e6 / dt,
	       (unsigned long long)total, dt);
	return 0;
}

/* Reads at unaligned byte offsets: what a consumer seeking to a message
 * does.  The offsets come from a fixed-seed xorshift so every target reads
 * the same places. */
static int cmd_randread(const char *path, uint64_t n)
{
	char buf[RAND_READ_BYTES];
	uint64_t x = 0x9E3779B97F4A7C15ull, i, span, off;
	struct stat st;
	double t0, dt;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot open", path, errno);
	if (st.st_size <= RAND_READ_BYTES) {
		fprintf(stderr, "fsbench: '%s' is too small\n", path);
		return 1;
	}
	span = (uint64_t)st.st_size - RAND_READ_BYTES;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		off = (x * 0x2545F4914F6CDD1Dull) % span;
		got = pread(fd, buf, sizeof(buf), (off_t)off);
		if (got != (ssize_t)sizeof(buf))
			die("short read of", path, got < 0 ? errno : EIO);
	}
	dt = now_s() - t0;
	close(fd);
	printf("rps=%.0f mbps=%.1f secs=%.3f\n", (double)n / dt,
	       (double)n * RAND_READ_BYTES / 1e6 / dt, dt);
	return 0;
}

static int cmd_populate(const char *dir, uint64_t n, int flat)
{
	char path[4096], line[LINE_BYTES];
	double t0, dt;
	uint64_t i;
	int fd, err = 0;

	fill_lines(line, sizeof(line), 0);
	t0 = now_s();
	for (i = 0; i < n && !err; i++) {
		snprintf(path, sizeof(path), "%s/bench-%04llu", dir,
			 (unsigned long long)i);
		if (!flat) {
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				die("cannot create", path, errno);
			strcat(path, "/0");
		}
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
		if (fd < 0)
			die("cannot open", path, errno);
		err = write_all(fd, line, sizeof(line));
		if (close(fd) < 0 && !err)
			err = errno;
		if (err)
			die("cannot append to", path, err);
	}
	dt = now_s() - t0;
	printf("files=%llu secs=%.3f\n", (unsigned long long)n, dt);
	return 0;
}

/* One writer of the round-robin workload. */
struct rr_writer {
	const char *dir;
	uint64_t parts, nparts, first, step, lines;
	pthread_barrier_t *start;
	int ret;
};

static void *rr_run(void *arg)
{
	struct rr_writer *w = arg;
	char path[4096], line[LINE_BYTES];
	uint64_t i, k = w->first;
	int fd;

	fill_lines(line, sizeof(line), w->first);
	pthread_barrier_wait(w->start);
	for (i = 0; i < w->lines && !w->ret; i++) {
		snprintf(path, sizeof(path), "%s/rr%04llu/%llu", w->dir,
			 (unsigned long long)(k / w->parts),
			 (unsigned long long)(k % w->parts));
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
		if (fd < 0) {
			w->ret = errno;
			break;
		}
		w->ret = write_all(fd, line, sizeof(line));
		if (close(fd) < 0 && !w->ret)
			w->ret = errno;
		k += w->step;
		if (k >= w->nparts)
			k = w->first;
	}
	return NULL;
}

static int cmd_rr(const char *dir, uint64_t topics, uint64_t parts,
		  uint64_t nw, uint64_t lines)
{
	struct rr_writer w[MAX_WRITERS];
	pthread_t tid[MAX_WRITERS];
	pthread_barrier_t start;
	char path[4096];
	double t0, dt;
	uint64_t i;
	int ret = 0;

	if (nw > MAX_WRITERS || nw > topics * parts) {
		fprintf(stderr, "fsbench: 1 to %d writers, no more than "
				"partitions\n",
			MAX_WRITERS);
		exit(2);
	}
	for (i = 0; i < topics; i++) {
		snprintf(path, sizeof(path), "%s/rr%04llu", dir,
			 (unsigned long long)i);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			die("cannot create", path, errno);
	}
	pthread_barrier_init(&start, NULL, (unsigned)nw + 1);
	for (i = 0; i < nw; i++) {
		w[i].dir = dir;
		w[i].parts = parts;
		w[i].nparts = topics * parts;
		w[i].first = i;
		w[i].step = nw;
		w[i].lines = lines / nw;
		w[i].start = &start;
		w[i].ret = 0;
		if (pthread_create(&tid[i], NULL, rr_run, &w[i]) != 0)
			die("cannot start a writer in", dir, EAGAIN);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	for (i = 0; i < nw; i++)
		pthread_join(tid[i], NULL);
	dt = now_s() - t0;
	pthread_barrier_destroy(&start);
	for (i = 0; i < nw; i++) {
		if (w[i].ret) {
			fprintf(stderr, "fsbench: writer %llu: %s\n",
				(unsigned long long)i, strerror(w[i].ret));
			ret = 1;
		}
	}
	if (ret)
		return ret;
	printf("aps=%.0f lines=%llu secs=%.3f\n",
	       (double)(lines / nw * nw) / dt,
	       (unsigned long long)(lines / nw * nw), dt);
	return 0;
}

static int cmd_prime(const char *dir, uint64_t mib)
{
	char path[4096];
	char *chunk = chunk_alloc();
	int err;

	snprintf(path, sizeof(path), "%s/.fsbench-prime", dir);
	err = append_bulk(path, chunk, mib << 20);
	free(chunk);
	if (unlink(path) < 0 && !err)
		err = errno;
	if (err)
		die("cannot prime", path, err);
	return 0;
}

__attribute__((noreturn)) static void usage(void)
{
	fprintf(stderr,
		"usage: fsbench bulk FILE MIB | keyed FILE MIB | copy SRC FILE |\n"
		"       lines FILE N | opens FILE N |\n"
		"       shell FILE N | parallel MIB FILE... | seqread FILE |\n"
		"       randread FILE N | populate DIR N [flat] | prime DIR "
		"MIB |\n"
		"       rr DIR TOPICS PARTITIONS WRITERS LINES\n");
	exit(2);
}

int main(int argc, char *argv[])
{
	const char *cmd;
	int ret;

	if (argc < 3)
		usage();
	cmd = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "bulk") && argc == 4)
		ret = cmd_bulk(argv[2], parse_u64(argv[3]), 0);
	else if (!strcmp(cmd, "keyed") && argc == 4)
		ret = cmd_bulk(argv[2], parse_u64(argv[3]), 1);
	else if (!strcmp(cmd, "copy") && argc == 4)
		ret = cmd_copy(argv[2], argv[3]);
	else if (!strcmp(cmd, "lines") && argc == 4)
		ret = cmd_lines(argv[2], parse_u64(argv[3]));
	else if (!strcmp(cmd, "opens") && argc == 4)
		ret = cmd_opens(argv[2], parse_u64(argv[3]));
	else if (!strcmp(cmd, "shell") && argc == 4)
		ret = cmd_shell(argv[2], parse_u64(argv[3]));
	else if (!strcmp(cmd, "parallel") && argc >= 4)
		ret = cmd_parallel(parse_u64(argv[2]), argv + 3, argc - 3);
	else if (!strcmp(cmd, "seqread") && argc == 3)
		ret = cmd_seqread(argv[2]);
	else if (!strcmp(cmd, "randread") && argc == 4)
		ret = cmd_randread(argv[2], parse_u64(argv[3]));
	else if (!strcmp(cmd, "populate") && (argc == 4 || argc == 5))
		ret = cmd_populate(argv[2], parse_u64(argv[3]),
				   argc == 5 && !strcmp(argv[4], "flat"));
	else if (!strcmp(cmd, "prime") && argc == 4)
		ret = cmd_prime(argv[2], parse_u64(argv[3]));
	else if (!strcmp(cmd, "rr") && argc == 7)
		ret = cmd_rr(argv[2], parse_u64(argv[3]), parse_u64(argv[4]),
			     parse_u64(argv[5]), parse_u64(argv[6]));
	else
		usage();
	return ret;
}
