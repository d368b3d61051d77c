/*
 * codec.h - block compression of sealed segments: an LZ4 frame, a
 * sequence of gzip members or a sequence of zstd frames, each block
 * compressed independently.
 *
 * The compressed file is a standard stream: lz4cat, zcat or zstdcat give
 * back the exact bytes.  Each block holds CODEC_BLOCK_BYTES of input (the
 * last may be shorter) and is decodable on its own, so a random read decompresses
 * one block; the caller keeps the block table (input position -> file
 * position and length) that codec_compress() hands back.
 */
#ifndef FLUXFS_CODEC_H
#define FLUXFS_CODEC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CODEC_BLOCK_BYTES (128 * 1024)

struct codec_block {
	uint64_t raw_pos;   /* offset of the block's first byte in the raw data */
	uint32_t raw_len;   /* bytes of raw data in the block */
	uint64_t file_pos;  /* where the block's encoding starts in the file */
	uint32_t file_len;  /* bytes of encoding (headers included) */
};

/* Compress raw (len bytes, read with io_pread_full from in_fd) into out_fd
 * from offset 0.  On success *blocks is a malloc'd table of *nblocks
 * entries.  Returns 0 or -errno (-EIO on a codec failure). */
int codec_compress(enum compression c, int in_fd, uint64_t len, int out_fd,
		   struct codec_block **blocks, uint32_t *nblocks);
/* The same at a chosen level: 0 is the codec's default; only zstd takes
 * another (CONFIG_ZSTD_LEVEL_MIN..MAX), anything else is -EINVAL. */
int codec_compress_level(enum compression c, int level, int in_fd,
			 uint64_t len, int out_fd, struct codec_block **blocks,
			 uint32_t *nblocks);
/* Index of the block in table b (n entries, sorted by raw_pos) that
 * holds raw byte raw_pos, or -1 if none does. */
long codec_find_block(const struct codec_block *b, uint32_t n,
		      uint64_t raw_pos);
/* Decode one block read from fd into out (capacity >= blk->raw_len).
 * Returns 0, or -EIO if the block does not decode to raw_len bytes. */
int codec_read_block(enum compression c, int fd, const struct codec_block *blk,
		     void *out);
/* The last block decoded, shared by the reads of one log: a reader going
 * through a block in several reads decodes it once. */
struct codec_cache {
	pthread_mutex_t lock;
	uint64_t key; /* which file; 0: nothing cached; protected by lock */
	uint32_t blk; /* which block of it; lock */
	unsigned char *buf;
	size_t size;
};
void codec_cache_init(struct codec_cache *cache);
void codec_cache_release(struct codec_cache *cache);
/* Copy decoded bytes [raw_pos, raw_pos+len) of compressed file fd (block
 * table b of n blocks) into buf, decoding through cache; key names the
 * file in the cache (never 0).  Returns 0, -ENOMEM, or -EIO: no block
 * holds a byte of the range, or a block does not decode (then *bad, if
 * non-NULL, points at that block; else it is left alone). */
int codec_read_range(enum compression c, int fd, const struct codec_block *b,
		     uint32_t n, struct codec_cache *cache, uint64_t key,
		     uint64_t raw_pos, void *buf, size_t len,
		     const struct codec_block **bad);
/* A compressed file to decode from: a read-only mapping of it whole
 * (map, map_len bytes) when map is set, else its descriptor fd. */
struct codec_file {
	int fd;
	const void *map;
	size_t map_len;
};
/* codec_read_range() from a descriptor or a mapping: a file read through
 * its mapping needs no descriptor (a block reaching past map_len is
 * -EIO, as a truncated file). */
int codec_read_range_file(enum compression c, const struct codec_file *f,
			  const struct codec_block *b, uint32_t n,
			  struct codec_cache *cache, uint64_t key,
			  uint64_t raw_pos, void *buf, size_t len,
			  const struct codec_block **bad);
/* Rebuild the block table of a compressed file of file_size bytes
 * (the one codec_compress() handed back) by walking its lz4 frame, its
 * gzip members or its zstd frames and decoding every block.  On success *blocks is a
 * malloc'd table of *nblocks entries and *raw_total the decoded length.
 * -EIO if the file is not a whole stream as codec_compress() writes it,
 * or a block does not decode. */
int codec_scan_blocks(enum compression c, int fd, uint64_t file_size,
		      struct codec_block **blocks, uint32_t *nblocks,
		      uint64_t *raw_total);
/* Upper bound of one block's encoding, for sizing buffers (exported for
 * the tests; codec.c sizes its own with it). */
size_t codec_block_bound(enum compression c, size_t raw_len);
const char *codec_name(enum compression c);

#endif
