/*
 * fuzz_recovery.c - libFuzzer target for partition recovery: arbitrary
 * .log, .idx and partition.state bytes on disk, then open.
 *
 * The input is a tiny archive of (selector, 16-bit little-endian length,
 * bytes) records; selector % 12 names one file of a partition directory
 * (file_names below; tests/fuzz/mkseeds.sh packs real partitions this
 * way).  Whatever the
 * bytes, partition_open() must either refuse cleanly or give a partition
 * whose every byte reads (or fails with EIO for a damaged batch), that
 * accepts an append, and that reopens with the appended message intact.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "io.h"
#include "partition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The files a partition directory may hold (doc/storage.md): two
 * segments, raw or compressed with their block tables, the state, and
 * the leftovers a crash can leave (.tmp files). */
static const char *const file_names[] = {
	"00000000000000000000.log", "00000000000000000000.idx",
	"partition.state",	    "00000000000000000010.log",
	"00000000000000000010.idx", "00000000000000000010.lz4.tmp",
	"partition.state.tmp",	    "00000000000000000000.lz4",
	"00000000000000000000.blk", "00000000000000000000.gz",
	"00000000000000000010.gz",  "00000000000000000010.blk",
};
#define NFILES (sizeof(file_names) / sizeof(file_names[0]))

static char root[256];
static struct io_ops fast_ops;

/* Durability is not under test here and fsync would cap the fuzzer at a
 * few hundred runs a second: the table the engine sees skips syncs. */
static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

static int root_fd = -1;

static void clear_dir(int dirfd)
{
	io_remove_tree(dirfd, "p");
}

/* libFuzzer ends with exit(): leave no scratch directory behind. */
static void remove_root(void)
{
	if (root_fd >= 0) {
		io_remove_tree(root_fd, "p");
		close(root_fd);
		rmdir(root);
	}
}

static void write_file(int dirfd, const char *name, const uint8_t *buf,
		       size_t len)
{
	int fd = io_openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		abort();
	if (io_pwrite_full(fd, buf, len, 0) < 0)
		abort();
	io_close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[1 << 16];
	struct partition_info info, after;
	struct partition *p;
	struct config cfg;
	uint64_t pos, off, byte, appended_at;
	size_t i = 0, len;
	ssize_t n;
	int pdir;

	if (root_fd < 0) {
		diag_set_level(LOG_CRIT); /* recovery logs every repair */
		fast_ops = *io_ops_default();
		fast_ops.fsync = no_sync;
		fast_ops.fdatasync = no_sync;
		io_ops_set(&fast_ops);
		snprintf(root, sizeof(root), "/tmp/fluxfs-fuzz-%d", getpid());
		mkdir(root, 0755);
		root_fd = open(root, O_RDONLY | O_DIRECTORY);
		if (root_fd < 0)
			abort();
		atexit(remove_root);
	}
	clear_dir(root_fd);
	if (io_mkdirat(root_fd, "p", 0755) < 0)
		abort();
	pdir = io_opendirat(root_fd, "p");
	while (i + 3 <= size) {
		unsigned sel = data[i] % NFILES;

		len = data[i + 1] | (size_t)data[i + 2] << 8;
		i += 3;
		if (len > size - i)
			len = size - i;
		write_file(pdir, file_names[sel], data + i, len);
		i += len;
	}
	io_close(pdir);

	config_defaults(&cfg);
	cfg.segment_bytes = 4096;
	if (partition_open(root_fd, "p", &cfg, 1000, &p, NULL) < 0)
		return 0;
	partition_get_info(p, &info);
	if (info.start_byte > info.end_byte ||
	    info.start_offset > info.next_offset)
		abort();
	for (pos = info.start_byte; pos<info.end_byte; pos += n> 0 ? n : 1) {
		n = partition_read(p, pos, buf, sizeof(buf));
		if (n < 0 && n != -EIO)
			abort();
		if (n == 0)
			abort(); /* a short log: end_byte lied */
	}
	for (off = info.start_offset;
	     off < info.next_offset && off < info.start_offset + 64; off++)
		partition_offset_to_byte(p, off, &byte);
	partition_time_to_offset(p, 0, &off, &byte);
	partition_time_to_offset(p, INT64_MAX, &off, &byte);
	partition_byte_to_offset(p, info.start_byte, &off, &byte);

	if (partition_append(p, "fuzz\n", 5, 1, 2000, PARTITION_ANY_END, NULL,
			     &appended_at) == 0) {
		if (partition_flush(p) != 0)
			abort();
		partition_close(p);
		if (partition_open(root_fd, "p", &cfg, 3000, &p, NULL) < 0)
			abort(); /* what we wrote and flushed must reopen */
		partition_get_info(p, &after);
		if (after.end_byte < appended_at + 5)
			abort();
		if (partition_read(p, appended_at, buf, 5) != 5 ||
		    memcmp(buf, "fuzz\n", 5) != 0)
			abort();
	}
	partition_close(p);
	return 0;
}
