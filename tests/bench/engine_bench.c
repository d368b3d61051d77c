/*
 * engine_bench.c - the storage engine measured in-process through
 * partition.h, no FUSE, beside a plain file written with the same bytes in
 * the same run.
 *
 * It prints one table in the shape of the storage module's benchmark that
 * fluxfs descends from: sequential append of 1 KiB and 100 B messages in
 * ~1 MiB batches (one partition_append per batch of whole lines), sequential
 * read 1 MiB at a time, random read by message offset (offset_to_byte, then
 * a read of that one message), index searches (offset -> the entry at or
 * below it, and time -> offset: the index alone, as Kafka's index lookups)
 * and offset -> exact byte (a search plus a scan of one chunk), and the
 * planning of a 1 MiB batch (each chunk's CRC and newline count), each with
 * its target
 * and the old module's figure to beat.  Every operation's result is checked
 * (each message carries its own offset, so a lookup or read that lands on
 * the wrong bytes fails the run); a miss of a target is reported, not
 * failed, since figures depend on the machine.
 *
 * Environment: BENCH_DIR (where the temporary directory goes, default
 * /var/tmp), BENCH_ENGINE_MB or BENCH_SIZE_MB (bytes per append run,
 * default 1024; 64 with BENCH_QUICK=1), BENCH_REPS (default 3),
 * BENCH_LOOKUPS (default 4M; 500k quick), BENCH_RAND_READS (default 1M;
 * 200k quick).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "io.h"
#include "partition.h"
#include "segment.h"
#include "timesel.h"

#define BATCH_TARGET (1u << 20)
#define MAX_REPS 15
#define DIGITS 10

struct bench {
	int dirfd;
	char dir[4096];
	struct config cfg;
	uint64_t bytes; /* per append run */
	uint64_t lookups;
	uint64_t rand_reads;
	int reps;
	uint64_t seed;
};

/* One append run's figures. */
struct append_result {
	double part_s;	/* seconds inside partition_append */
	double plain_s; /* seconds inside write() */
	uint64_t msgs;
	uint64_t bytes;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1Dull;
}

__attribute__((noreturn)) static void fail(const char *what, int err)
{
	fprintf(stderr, "engine_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n == 0) {
		fprintf(stderr, "engine_bench: bad %s '%s'\n", name, v);
		exit(2);
	}
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Write n as DIGITS decimal digits at p. */
static void put_digits(char *p, uint64_t n)
{
	int i;

	for (i = DIGITS - 1; i >= 0; i--) {
		p[i] = (char)('0' + n % 10);
		n /= 10;
	}
}

static uint64_t get_digits(const char *p)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < DIGITS; i++)
		n = n * 10 + (uint64_t)(p[i] - '0');
	return n;
}

/* A batch of nmsgs messages of msg_bytes, "NNNNNNNNNN xxx...\n". */
static char *batch_alloc(size_t msg_bytes, uint32_t nmsgs)
{
	char *buf = malloc(msg_bytes * nmsgs);
	uint32_t i;

	if (!buf)
		fail("cannot allocate a batch", ENOMEM);
	for (i = 0; i < nmsgs; i++) {
		memset(buf + i * msg_bytes, 'x', msg_bytes - 1);
		buf[i * msg_bytes + DIGITS] = ' ';
		buf[(i + 1) * msg_bytes - 1] = '\n';
	}
	return buf;
}

/* Number the batch's messages from first (outside the timed calls). */
static void batch_number(char *buf, size_t msg_bytes, uint32_t nmsgs,
			 uint64_t first)
{
	uint32_t i;

	for (i = 0; i < nmsgs; i++)
		put_digits(buf + i * msg_bytes, first + i);
}

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

/* Write and delete b->bytes in the directory, untimed, right before a
 * timed append: on a VM with free page reporting, memory freed seconds
 * ago is back with the host and the first write into it is several times
 * slower; this way both contenders write into pages the guest holds. */
static void prime(struct bench *b)
{
	char *buf = calloc(1, BATCH_TARGET);
	uint64_t done;
	int fd, err = 0;

	fd = openat(b->dirfd, "prime", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);
	if (!buf || fd < 0)
		fail("cannot prime", buf ? errno : ENOMEM);
	for (done = 0; done < b->bytes && !err; done += BATCH_TARGET)
		err = write_all(fd, buf, BATCH_TARGET);
	close(fd);
	free(buf);
	if (err || unlinkat(b->dirfd, "prime", 0) < 0)
		fail("cannot prime", err ? err : errno);
}

/* Append b->bytes of msg_bytes messages to a plain file name (kept). */
static double append_plain(struct bench *b, const char *name, size_t msg_bytes)
{
	uint32_t nmsgs = BATCH_TARGET / (uint32_t)msg_bytes;
	size_t len = msg_bytes * nmsgs;
	uint64_t nbatch = b->bytes / len, i;
	char *buf = batch_alloc(msg_bytes, nmsgs);
	double t, total = 0;
	int fd, err;

	prime(b);
	fd = openat(b->dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0644);
	if (fd < 0)
		fail("cannot create the plain file", errno);
	for (i = 0; i < nbatch; i++) {
		batch_number(buf, msg_bytes, nmsgs, i * nmsgs);
		t = now_s();
		err = write_all(fd, buf, len);
		total += now_s() - t;
		if (err)
			fail("cannot write the plain file", err);
	}
	close(fd);
	free(buf);
	return total;
}

/* Append b->bytes of msg_bytes messages to a new partition name; the
 * partition stays open in *out. */
static double append_partition(struct bench *b, const char *name,
			       size_t msg_bytes, struct partition **out)
{
	uint32_t nmsgs = BATCH_TARGET / (uint32_t)msg_bytes;
	size_t len = msg_bytes * nmsgs;
	uint64_t nbatch = b->bytes / len, i, first, pos;
	char *buf = batch_alloc(msg_bytes, nmsgs);
	struct partition_info info;
	struct partition *p;
	double t, total = 0;
	int ret;

	prime(b);
	ret = partition_create(b->dirfd, name, &b->cfg, now_ms(), &p);
	if (ret < 0)
		fail("cannot create the partition", -ret);
	for (i = 0; i < nbatch; i++) {
		batch_number(buf, msg_bytes, nmsgs, i * nmsgs);
		t = now_s();
		ret = partition_append(p, buf, len, nmsgs, now_ms(),
				       PARTITION_ANY_END, &first, &pos);
		total += now_s() - t;
		if (ret < 0)
			fail("cannot append", -ret);
		if (first != i * nmsgs || pos != i * len) {
			fprintf(stderr,
				"engine_bench: batch %llu landed at "
				"offset %llu byte %llu\n",
				(unsigned long long)i,
				(unsigned long long)first,
				(unsigned long long)pos);
			exit(1);
		}
	}
	partition_get_info(p, &info);
	if (info.next_offset != nbatch * nmsgs ||
	    info.end_byte != nbatch * len) {
		fprintf(stderr,
			"engine_bench: partition ends at offset %llu "
			"byte %llu\n",
			(unsigned long long)info.next_offset,
			(unsigned long long)info.end_byte);
		exit(1);
	}
	free(buf);
	*out = p;
	return total;
}

static void partition_drop(struct bench *b, struct partition *p,
			   const char *name)
{
	int ret = partition_close(p);

	if (ret < 0)
		fail("cannot close the partition", -ret);
	ret = io_remove_tree(b->dirfd, name);
	if (ret < 0)
		fail("cannot remove the partition", -ret);
}

/* Median append figures over b->reps runs; the last run's partition and
 * plain file are kept for the read benchmarks. */
static void bench_append(struct bench *b, size_t msg_bytes,
			 struct append_result *res, struct partition **keep,
			 const char *pname, const char *fname)
{
	double part[MAX_REPS], plain[MAX_REPS];
	uint32_t nmsgs = BATCH_TARGET / (uint32_t)msg_bytes;
	struct partition *p = NULL;
	int r;

	for (r = 0; r < b->reps; r++) {
		/* Alternate who goes first so machine noise hits both. */
		if (r % 2)
			plain[r] = append_plain(b, fname, msg_bytes);
		part[r] = append_partition(b, pname, msg_bytes, &p);
		if (!(r % 2))
			plain[r] = append_plain(b, fname, msg_bytes);
		if (r + 1 < b->reps) {
			partition_drop(b, p, pname);
			if (unlinkat(b->dirfd, fname, 0) < 0)
				fail("cannot remove the plain file", errno);
		}
	}
	res->part_s = median(part, b->reps);
	res->plain_s = median(plain, b->reps);
	res->msgs = b->bytes / (msg_bytes * nmsgs) * nmsgs;
	res->bytes = res->msgs * msg_bytes;
	*keep = p;
}

/* Read the whole partition 1 MiB at a time; seconds per pass (median). */
static double bench_seqread(struct bench *b, struct partition *p,
			    size_t msg_bytes, uint64_t end)
{
	double t[MAX_REPS], t0;
	char *buf = malloc(BATCH_TARGET);
	uint64_t pos;
	ssize_t n;
	int r;

	if (!buf)
		fail("cannot allocate", ENOMEM);
	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (pos = 0; pos < end; pos += (uint64_t)n) {
			n = partition_read(p, pos, buf, BATCH_TARGET);
			if (n <= 0)
				fail("short sequential read",
				     n < 0 ? (int)-n : EIO);
			/* 1 MiB is a whole number of 1 KiB messages. */
			if (pos % msg_bytes == 0 &&
			    get_digits(buf) != pos / msg_bytes) {
				fprintf(stderr,
					"engine_bench: wrong bytes at "
					"%llu\n",
					(unsigned long long)pos);
				exit(1);
			}
		}
		t[r] = now_s() - t0;
	}
	free(buf);
	return median(t, b->reps);
}

static double bench_seqread_plain(struct bench *b, const char *name,
				  uint64_t end)
{
	double t[MAX_REPS], t0;
	char *buf = malloc(BATCH_TARGET);
	uint64_t pos;
	ssize_t n;
	int r, fd;

	fd = openat(b->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0)
		fail("cannot open the plain file", buf ? errno : ENOMEM);
	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (pos = 0; pos < end; pos += (uint64_t)n) {
			n = pread(fd, buf, BATCH_TARGET, (off_t)pos);
			if (n <= 0)
				fail("short plain read", n < 0 ? errno : EIO);
		}
		t[r] = now_s() - t0;
	}
	close(fd);
	free(buf);
	return median(t, b->reps);
}

/* Random messages by offset: lookup, then read the message; median
 * seconds for b->rand_reads of them. */
static double bench_randread(struct bench *b, struct partition *p,
			     size_t msg_bytes, uint64_t nmsgs)
{
	double t[MAX_REPS], t0;
	char msg[1024];
	uint64_t x = b->seed, i, off, byte;
	ssize_t n;
	int r, ret;

	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (i = 0; i < b->rand_reads; i++) {
			off = next_rand(&x) % nmsgs;
			ret = partition_offset_to_byte(p, off, &byte);
			if (ret < 0)
				fail("offset lookup failed", -ret);
			n = partition_read(p, byte, msg, msg_bytes);
			if (n != (ssize_t)msg_bytes || get_digits(msg) != off ||
			    msg[msg_bytes - 1] != '\n') {
				fprintf(stderr,
					"engine_bench: message %llu "
					"read wrong at byte %llu\n",
					(unsigned long long)off,
					(unsigned long long)byte);
				exit(1);
			}
		}
		t[r] = now_s() - t0;
	}
	return median(t, b->reps);
}

/* The same reads on the plain file, where the position is arithmetic. */
static double bench_randread_plain(struct bench *b, const char *name,
				   size_t msg_bytes, uint64_t nmsgs)
{
	double t[MAX_REPS], t0;
	char msg[1024];
	uint64_t x = b->seed, i, off;
	int r, fd;

	fd = openat(b->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("cannot open the plain file", errno);
	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (i = 0; i < b->rand_reads; i++) {
			off = next_rand(&x) % nmsgs;
			if (pread(fd, msg, msg_bytes,
				  (off_t)(off * msg_bytes)) !=
				    (ssize_t)msg_bytes ||
			    get_digits(msg) != off)
				fail("plain random read", EIO);
		}
		t[r] = now_s() - t0;
	}
	close(fd);
	return median(t, b->reps);
}

/* offset -> exact byte (index search + scan of the chunk for the
 * message's start); median seconds for b->lookups. */
static double bench_lookup(struct bench *b, struct partition *p,
			   size_t msg_bytes, uint64_t nmsgs)
{
	double t[MAX_REPS], t0;
	uint64_t x = b->seed ^ msg_bytes, i, off, byte;
	int r, ret;

	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (i = 0; i < b->lookups; i++) {
			off = next_rand(&x) % nmsgs;
			ret = partition_offset_to_byte(p, off, &byte);
			if (ret < 0 || byte != off * msg_bytes) {
				fprintf(stderr,
					"engine_bench: offset %llu "
					"looked up as byte %llu (%d)\n",
					(unsigned long long)off,
					(unsigned long long)byte, ret);
				exit(1);
			}
		}
		t[r] = now_s() - t0;
	}
	return median(t, b->reps);
}

/* Index search alone: offset -> the entry (chunk) at or below it, no data
 * read.  Checked: the chunk starts at a message boundary, at or before the
 * target, and within one chunk of it.  Median seconds for b->lookups. */
static double bench_search(struct bench *b, struct partition *p,
			   size_t msg_bytes, uint64_t nmsgs)
{
	double t[MAX_REPS], t0;
	uint64_t x = b->seed ^ (msg_bytes * 3), i, off, coff, cbyte;
	int r, ret;

	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (i = 0; i < b->lookups; i++) {
			off = next_rand(&x) % nmsgs;
			ret = partition_offset_to_chunk(p, off, &coff, &cbyte);
			if (ret < 0 || coff > off ||
			    cbyte != coff * msg_bytes ||
			    (off - coff) * msg_bytes >= 4096 + msg_bytes) {
				fprintf(stderr,
					"engine_bench: offset %llu "
					"searched as chunk %llu at byte %llu "
					"(%d)\n",
					(unsigned long long)off,
					(unsigned long long)coff,
					(unsigned long long)cbyte, ret);
				exit(1);
			}
		}
		t[r] = now_s() - t0;
	}
	return median(t, b->reps);
}

/* time -> offset: random times between the first and last append (pure
 * index: every message of a chunk shares its timestamp).  Checked: found,
 * and the byte is that offset's.  Median seconds for b->lookups. */
static double bench_time(struct bench *b, struct partition *p, size_t msg_bytes)
{
	struct partition_info info;
	double t[MAX_REPS], t0;
	uint64_t x = b->seed ^ (msg_bytes * 7), i, off, byte, span;
	int64_t ts;
	int r, ret;

	partition_get_info(p, &info);
	span = (uint64_t)(info.last_ts - info.first_ts) + 1;
	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (i = 0; i < b->lookups; i++) {
			ts = info.first_ts + (int64_t)(next_rand(&x) % span);
			ret = partition_time_to_offset(p, ts, &off, &byte);
			if (ret < 0 || byte != off * msg_bytes ||
			    off >= info.next_offset) {
				fprintf(stderr,
					"engine_bench: time %lld looked up as "
					"offset %llu byte %llu (%d)\n",
					(long long)ts, (unsigned long long)off,
					(unsigned long long)byte, ret);
				exit(1);
			}
		}
		t[r] = now_s() - t0;
	}
	return median(t, b->reps);
}

/* Opening a time view (MNT/.at/A..B): a window's two ends resolved to
 * bytes, A random, B a hundredth of the partition's time span later.
 * Checked: on message boundaries, in order.  Median seconds for
 * b->lookups resolves. */
static double bench_resolve(struct bench *b, struct partition *p,
			    size_t msg_bytes)
{
	struct partition_info info;
	struct timesel sel;
	double t[MAX_REPS], t0;
	uint64_t x = b->seed ^ 0x5E1, i, span, start, end;
	int r;

	partition_get_info(p, &info);
	span = (uint64_t)(info.last_ts - info.first_ts) + 1;
	memset(&sel, 0, sizeof(sel));
	sel.bounded = 1;
	for (r = 0; r < b->reps; r++) {
		t0 = now_s();
		for (i = 0; i < b->lookups; i++) {
			sel.from.v = info.first_ts +
				     (int64_t)(next_rand(&x) % span);
			sel.to.v = sel.from.v + (int64_t)(span / 100);
			timesel_resolve(p, &sel, 0, &start, &end);
			if (start % msg_bytes || end % msg_bytes ||
			    end < start || end > info.end_byte) {
				fprintf(stderr,
					"engine_bench: window resolved to "
					"[%llu, %llu)\n",
					(unsigned long long)start,
					(unsigned long long)end);
				exit(1);
			}
		}
		t[r] = now_s() - t0;
	}
	return median(t, b->reps);
}

/* The same windows once every sealed segment is lz4-compressed: a lookup
 * that lands in a compressed segment decodes one block to find the exact
 * byte of its message. */
static double bench_resolve_compressed(struct bench *b, struct partition *p,
				       int *segments)
{
	struct config cfg = b->cfg;
	int ret;

	cfg.compression = COMPRESSION_LZ4;
	ret = partition_set_config(p, &cfg);
	if (ret < 0)
		fail("cannot set lz4 compression", -ret);
	*segments = 0;
	while ((ret = partition_compress_one(p)) > 0)
		(*segments)++;
	if (ret < 0)
		fail("cannot compress a sealed segment", -ret);
	return bench_resolve(b, p, 1024);
}

/* Planning one ~1 MiB batch of 100-byte lines, the per-byte work of an
 * append before its pwritev: each 4 KiB chunk's CRC-32C and newline
 * count (one fused pass where crc32c_count_fused()).  Seconds for
 * PLAN_ROUNDS batches, the median of b->reps; the counts are checked. */
#define PLAN_ROUNDS 512
static double bench_plan(struct bench *b, size_t *bytes)
{
	const uint32_t nmsgs = (1u << 20) / 100;
	char *buf = batch_alloc(100, nmsgs);
	size_t len = (size_t)nmsgs * 100;
	struct seg_entry *ents = malloc(segment_plan_max(len) * sizeof(*ents));
	double t[16], t0;
	uint32_t msgs, k;
	int r, reps = b->reps < 16 ? b->reps : 16;

	if (!ents)
		fail("out of memory", ENOMEM);
	batch_number(buf, 100, nmsgs, 0);
	for (r = 0; r < reps; r++) {
		t0 = now_s();
		for (k = 0; k < PLAN_ROUNDS; k++) {
			segment_plan(buf, len, 0, 0, 0, ents, &msgs);
			if (msgs != nmsgs)
				fail("planning counted the wrong lines", EIO);
		}
		t[r] = now_s() - t0;
	}
	free(ents);
	free(buf);
	*bytes = len * PLAN_ROUNDS;
	return median(t, reps);
}

static const char *verdict(int ok)
{
	return ok ? "meets" : "BELOW";
}

static void print_row(const char *name, double msgps, double mbps,
		      const char *plain, const char *target, const char *beat,
		      const char *v)
{
	char m[32], mb[32];

	snprintf(m, sizeof(m), "%.0f", msgps);
	if (mbps > 0)
		snprintf(mb, sizeof(mb), "%.0f", mbps);
	else
		snprintf(mb, sizeof(mb), "-");
	printf("| %-40s | %11s | %7s | %-15s | %-27s | %-14s | %-5s |\n", name,
	       m, mb, plain, target, beat, v);
}

static void setup(struct bench *b)
{
	const char *base = getenv("BENCH_DIR");
	int quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0");

	memset(b, 0, sizeof(*b));
	b->bytes = env_u64("BENCH_ENGINE_MB",
			   env_u64("BENCH_SIZE_MB", quick ? 64 : 1024))
		   << 20;
	b->reps = (int)env_u64("BENCH_REPS", 3);
	if (b->reps > MAX_REPS)
		b->reps = MAX_REPS;
	b->lookups = env_u64("BENCH_LOOKUPS", quick ? 500000 : 4000000);
	b->rand_reads = env_u64("BENCH_RAND_READS", quick ? 200000 : 1000000);
	b->seed = 0x9E3779B97F4A7C15ull;
	snprintf(b->dir, sizeof(b->dir), "%s/fluxfs-engine-bench.XXXXXX",
		 base && *base ? base : "/var/tmp");
	if (!mkdtemp(b->dir))
		fail("cannot create the temporary directory", errno);
	b->dirfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0)
		fail("cannot open the temporary directory", errno);
	config_defaults(&b->cfg);
	b->cfg.compression = COMPRESSION_NONE;
}

int main(void)
{
	struct append_result a1k, a100;
	struct partition *p1k, *p100;
	struct partition_info info;
	struct statfs sfs;
	struct bench b;
	double seq, seq_plain, rnd, rnd_plain, lk1k, lk100, sr1k, sr100, tm1k;
	double tw1k, tw1k_lz4, plan_s;
	int lz4_segments;
	size_t plan_bytes;
	char name[64];
	double msgps, mbps, plain_mbps, ratio;
	uint64_t n1k, n100;
	char plain[64], tgt[64];
	int ret;

	setup(&b);
	fstatfs(b.dirfd, &sfs);
	bench_append(&b, 1024, &a1k, &p1k, "p1k", "plain1k");
	bench_append(&b, 100, &a100, &p100, "p100", "plain100");
	n1k = a1k.msgs;
	n100 = a100.msgs;
	partition_get_info(p1k, &info);
	seq = bench_seqread(&b, p1k, 1024, info.end_byte);
	seq_plain = bench_seqread_plain(&b, "plain1k", info.end_byte);
	rnd = bench_randread(&b, p1k, 1024, n1k);
	rnd_plain = bench_randread_plain(&b, "plain1k", 1024, n1k);
	lk1k = bench_lookup(&b, p1k, 1024, n1k);
	lk100 = bench_lookup(&b, p100, 100, n100);
	sr1k = bench_search(&b, p1k, 1024, n1k);
	sr100 = bench_search(&b, p100, 100, n100);
	tm1k = bench_time(&b, p1k, 1024);
	tw1k = bench_resolve(&b, p1k, 1024);
	plan_s = bench_plan(&b, &plan_bytes);
	/* Last: it compresses p1k's sealed segments. */
	tw1k_lz4 = bench_resolve_compressed(&b, p1k, &lz4_segments);

	printf("fluxfs engine benchmark: partition.h in-process, no FUSE; "
	       "%llu MiB per append run, medians of %d runs\n",
	       (unsigned long long)(b.bytes >> 20), b.reps);
	printf("data in %s (statfs type 0x%lx); segment_bytes %llu MiB, "
	       "compression none, flush_ms %lld: no fsync in the timed "
	       "loops, the plain file likewise; reads are warm\n",
	       b.dir, (unsigned long)sfs.f_type,
	       (unsigned long long)(b.cfg.segment_bytes >> 20),
	       (long long)b.cfg.flush_ms);
	printf("| %-40s | %11s | %7s | %-15s | %-27s | %-14s | %-5s |\n",
	       "benchmark", "msg/s", "MB/s", "plain file", "target",
	       "figure to beat", "");
	printf("|%s|%s|%s|%s|%s|%s|%s|\n",
	       "------------------------------------------", "-------------",
	       "---------", "-----------------",
	       "-----------------------------", "----------------", "-------");

	msgps = (double)a1k.msgs / a1k.part_s;
	mbps = (double)a1k.bytes / 1e6 / a1k.part_s;
	plain_mbps = (double)a1k.bytes / 1e6 / a1k.plain_s;
	ratio = mbps / plain_mbps;
	snprintf(plain, sizeof(plain), "%.0f MB/s %.2fx", plain_mbps, ratio);
	print_row("append 1 KiB msgs, ~1 MiB batches", msgps, mbps, plain,
		  ">= 2M msg/s, >= 0.5x plain", "601k msg/s",
		  verdict(msgps >= 2e6 && ratio >= 0.5));

	msgps = (double)a100.msgs / a100.part_s;
	mbps = (double)a100.bytes / 1e6 / a100.part_s;
	plain_mbps = (double)a100.bytes / 1e6 / a100.plain_s;
	snprintf(plain, sizeof(plain), "%.0f MB/s %.2fx", plain_mbps,
		 mbps / plain_mbps);
	print_row("append 100 B msgs, ~1 MiB batches", msgps, mbps, plain, "-",
		  "601k msg/s", "");

	mbps = (double)info.end_byte / 1e6 / seq;
	snprintf(plain, sizeof(plain), "%.0f MB/s",
		 (double)info.end_byte / 1e6 / seq_plain);
	print_row("sequential read, 1 MiB reads (1 KiB)", (double)n1k / seq,
		  mbps, plain, ">= 2 GB/s", "500k msg/s",
		  verdict(mbps >= 2000));

	snprintf(plain, sizeof(plain), "%.0f msg/s",
		 (double)b.rand_reads / rnd_plain);
	snprintf(tgt, sizeof(tgt), ">= 1M msg/s");
	print_row("random read by offset (1 KiB msgs)",
		  (double)b.rand_reads / rnd,
		  (double)b.rand_reads * 1024 / 1e6 / rnd, plain, tgt,
		  "100k msg/s", verdict((double)b.rand_reads / rnd >= 1e6));

	/* Index lookups as Kafka means them: a search of the index, no
	 * data read.  The exact byte of a message inside a chunk needs a
	 * scan of the chunk too: reported on its own rows, no target. */
	print_row("index search offset->chunk (1 KiB)",
		  (double)b.lookups / sr1k, 0, "-", ">= 10M/s", "1M ops/s",
		  verdict((double)b.lookups / sr1k >= 1e7));
	print_row("index search offset->chunk (100 B)",
		  (double)b.lookups / sr100, 0, "-", ">= 10M/s", "1M ops/s",
		  verdict((double)b.lookups / sr100 >= 1e7));
	print_row("index search time->offset (1 KiB)", (double)b.lookups / tm1k,
		  0, "-", ">= 10M/s", "-",
		  verdict((double)b.lookups / tm1k >= 1e7));
	/* What opening MNT/.at/A..B costs beside the FUSE round trips:
	 * its two lookups (the goal: well under 1 ms). */
	snprintf(name, sizeof(name), "time view A..B resolved (1 KiB): %.2f us",
		 tw1k / (double)b.lookups * 1e6);
	print_row(name, (double)b.lookups / tw1k, 0, "-", "< 1 ms each", "-",
		  verdict(tw1k / (double)b.lookups < 1e-3));
	snprintf(name, sizeof(name), "time view, %d lz4 segments: %.2f us",
		 lz4_segments, tw1k_lz4 / (double)b.lookups * 1e6);
	print_row(name, (double)b.lookups / tw1k_lz4, 0, "-", "< 1 ms each",
		  "-", verdict(tw1k_lz4 / (double)b.lookups < 1e-3));
	/* The per-byte work of an append without its copy and syscall. */
	snprintf(name, sizeof(name), "plan 1 MiB of 100 B lines (%s)",
		 crc32c_count_fused() ? "fused" : "unfused");
	print_row(name, (double)plan_bytes / 100 / plan_s,
		  (double)plan_bytes / 1e6 / plan_s, "-", "-", "-", "");
	print_row("offset->exact byte, search+scan (1 KiB)",
		  (double)b.lookups / lk1k, 0, "-", "-", "-", "");
	print_row("offset->exact byte, search+scan (100 B)",
		  (double)b.lookups / lk100, 0, "-", "-", "-", "");
	printf("(msg/s for lookups is lookups/s; random reads: %llu per run, "
	       "lookups: %llu per run)\n",
	       (unsigned long long)b.rand_reads, (unsigned long long)b.lookups);

	ret = partition_close(p1k);
	if (ret == 0)
		ret = partition_close(p100);
	else
		partition_close(p100);
	if (ret < 0)
		fail("cannot close a partition", -ret);
	close(b.dirfd);
	ret = io_remove_tree(AT_FDCWD, b.dir);
	if (ret < 0)
		fail("cannot remove the temporary directory", -ret);
	return 0;
}
