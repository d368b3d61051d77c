/*
 * codec_bench.c - the compression codecs of sealed segments (lz4, gzip,
 * zstd) measured in-process through codec.h on one corpus file: the
 * compression ratio, compression speed, sequential read speed (every
 * block decoded in order, as a reader going through a compressed segment
 * does) and the cost of a random 4 KiB read (one block decoded through
 * the block cache, which such reads nearly always miss).  Times are CPU
 * time (user + system) of the process, not wall time.
 *
 * The corpus is a file argument: make bench passes the JSON access log
 * that tests/bench/logcorpus.py generates, since the ratio and speeds
 * depend on the data and repeated text would flatter every codec.  Every
 * decoded byte is compared with the corpus, so a codec that returns
 * wrong data fails the run rather than reporting a speed.
 *
 * Usage: codec_bench CORPUS.  Environment: BENCH_DIR (where the
 * compressed copy goes, default /var/tmp), BENCH_RAND_READS (random reads
 * per codec, default 5000), BENCH_REPS (sequential read passes, best one
 * counts, default 3).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "io.h"

#define RAND_LEN 4096

/* CPU time of this process: the codecs run on one thread, and on a
 * shared machine wall time measures the neighbours as much as the codec. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 10) : dflt;
}

/* xorshift64*: the same offsets for every codec. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "codec_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Compress, read back and time one codec; print its row. */
static void bench_codec(enum compression c, int in_fd, const unsigned char *raw,
			uint64_t len, const char *dir)
{
	char path[4200];
	struct codec_block *b = NULL;
	struct codec_cache cache;
	unsigned char *buf;
	uint64_t reads = env_u64("BENCH_RAND_READS", 5000), seed = 42, pos;
	uint64_t reps = env_u64("BENCH_REPS", 3), r;
	double t, comp_s, seq_s = 0, rand_s;
	struct stat st;
	uint32_t n, i;
	int out, ret;

	snprintf(path, sizeof(path), "%s/codec_bench.XXXXXX", dir);
	out = mkstemp(path);
	if (out < 0)
		die(path, errno);
	unlink(path);
	t = now();
	ret = codec_compress(c, in_fd, len, out, &b, &n);
	comp_s = now() - t;
	if (ret < 0)
		die("codec_compress", -ret);
	if (fstat(out, &st) < 0)
		die("fstat", errno);
	buf = malloc(CODEC_BLOCK_BYTES > RAND_LEN ? CODEC_BLOCK_BYTES
						  : RAND_LEN);
	if (!buf)
		die("malloc", ENOMEM);
	for (r = 0; r < (reps ? reps : 1); r++) {
		t = now();
		for (i = 0; i < n; i++) {
			ret = codec_read_block(c, out, &b[i], buf);
			if (ret < 0)
				die("codec_read_block", -ret);
			if (memcmp(buf, raw + b[i].raw_pos, b[i].raw_len)) {
				fprintf(stderr, "codec_bench: %s block %u "
					"decodes to wrong bytes\n",
					codec_name(c), i);
				exit(1);
			}
		}
		t = now() - t;
		if (r == 0 || t < seq_s)
			seq_s = t;
	}
	codec_cache_init(&cache);
	t = now();
	for (r = 0; r < reads; r++) {
		pos = next_rand(&seed) % (len - RAND_LEN);
		ret = codec_read_range(c, out, b, n, &cache, 1, pos, buf,
				       RAND_LEN, NULL);
		if (ret < 0)
			die("codec_read_range", -ret);
		if (memcmp(buf, raw + pos, RAND_LEN)) {
			fprintf(stderr, "codec_bench: %s read at %llu wrong\n",
				codec_name(c), (unsigned long long)pos);
			exit(1);
		}
	}
	rand_s = now() - t;
	codec_cache_release(&cache);
	printf("%-6s %7.2f %12llu %12.0f %12.0f %14.1f\n", codec_name(c),
	       (double)len / (double)st.st_size,
	       (unsigned long long)st.st_size, (double)len / comp_s / 1e6,
	       (double)len / seq_s / 1e6,
	       reads ? rand_s / (double)reads * 1e6 : 0.0);
	free(buf);
	free(b);
	close(out);
}

int main(int argc, char **argv)
{
	static const enum compression codecs[] = {
		COMPRESSION_LZ4, COMPRESSION_GZIP, COMPRESSION_ZSTD};
	const char *dir = getenv("BENCH_DIR");
	unsigned char *raw;
	struct stat st;
	uint64_t len;
	size_t i;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: codec_bench CORPUS\n");
		return 2;
	}
	if (!dir || !*dir)
		dir = "/var/tmp";
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die(argv[1], errno);
	len = (uint64_t)st.st_size;
	if (len <= RAND_LEN) {
		fprintf(stderr, "codec_bench: '%s' is too short\n", argv[1]);
		return 2;
	}
	raw = malloc(len);
	if (!raw || io_pread_full(fd, raw, len, 0) != (ssize_t)len)
		die(argv[1], EIO);
	printf("codecs on %s: %.1f MiB, %u KiB blocks\n", argv[1],
	       (double)len / (1 << 20), CODEC_BLOCK_BYTES / 1024);
	printf("%-6s %7s %12s %12s %12s %14s\n", "codec", "ratio", "bytes",
	       "comp MB/s", "read MB/s", "4K rand µs");
	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		bench_codec(codecs[i], fd, raw, len, dir);
	free(raw);
	close(fd);
	return 0;
}
