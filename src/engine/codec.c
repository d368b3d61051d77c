/*
 * codec.c - block compression of sealed segments (LZ4 frame, gzip members,
 * zstd frames).
 *
 * LZ4: one standard frame (lz4frame) with independent 256 KiB-max blocks
 * and per-block checksums; each CODEC_BLOCK_BYTES of input is flushed as
 * exactly one block.  To decode block i alone we rebuild a tiny frame in
 * memory -- the same frame header, that block, an end mark -- and hand it
 * to LZ4F_decompress, which also verifies the block checksum.  Without the
 * checksum a flipped literal byte would decode silently into wrong data.
 *
 * gzip: one complete gzip member per block.  gunzip/zcat concatenate
 * members, so the file is a standard .gz; each member carries its own
 * CRC-32 and length, and a header CRC, which inflate checks.  An empty input
 * still gets one empty member, because zcat refuses a zero-byte file.
 *
 * zstd: one complete zstd frame per block, with its content size and
 * content checksum (XXH64) in the frame, which the decoder checks.  The
 * zstd format defines concatenated frames as one stream, so zstdcat gives
 * back the whole file.  The level is the topic's (compression=zstd:LEVEL,
 * 1..19), or zstd's own default, its point between speed and size; the
 * decoder does not need it, so the block table does not record it.  An
 * empty input gets one
 * empty frame, as with gzip, so that the file is never zero bytes.
 *
 * All file access goes through io.h.
 */
#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "codec.h"
#include "io.h"

/* gzip header (10) + trailer (8) minus zlib's own 6 bytes of wrapper. */
#define GZIP_EXTRA 32

/* A codec codec_compress() can write. */
static int codec_known(enum compression c)
{
	return c == COMPRESSION_LZ4 || c == COMPRESSION_GZIP ||
	       c == COMPRESSION_ZSTD;
}

/* The preferences every lz4 frame is written with; decoding rebuilds the
 * same header from them. */
static void lz4_prefs(LZ4F_preferences_t *prefs)
{
	memset(prefs, 0, sizeof(*prefs));
	prefs->frameInfo.blockSizeID = LZ4F_max256KB;
	prefs->frameInfo.blockMode = LZ4F_blockIndependent;
	prefs->frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs->frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
	prefs->autoFlush = 1;
}

/* Upper bound of one block's encoding. */
size_t codec_block_bound(enum compression c, size_t raw_len)
{
	LZ4F_preferences_t prefs;

	switch (c) {
	case COMPRESSION_LZ4:
		lz4_prefs(&prefs);
		return LZ4F_compressBound(raw_len, &prefs);
	case COMPRESSION_GZIP:
		return compressBound(raw_len) + GZIP_EXTRA;
	case COMPRESSION_ZSTD:
		return ZSTD_compressBound(raw_len);
	default:
		return raw_len;
	}
}

/* The block holding raw_pos: binary search of the block table. */
long codec_find_block(const struct codec_block *b, uint32_t n,
		      uint64_t raw_pos)
{
	uint32_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (b[mid].raw_pos <= raw_pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || raw_pos >= b[lo - 1].raw_pos + b[lo - 1].raw_len)
		return -1;
	return (long)lo - 1;
}

/* Human name of a codec. */
const char *codec_name(enum compression c)
{
	switch (c) {
	case COMPRESSION_LZ4:
		return "lz4";
	case COMPRESSION_GZIP:
		return "gzip";
	case COMPRESSION_ZSTD:
		return "zstd";
	default:
		return "none";
	}
}

/* ------------------------------------------------------------------ */
/* Compression                                                         */

/* State shared by the encoders while compressing one file. */
struct encoder {
	enum compression c;
	LZ4F_cctx *cctx;
	ZSTD_CCtx *zcctx;
	z_stream zs;
	gz_header gzh; /* must outlive each deflate() call */
	int zs_live;
	unsigned char *out; /* one block's encoding */
	size_t out_cap;
};

static int encoder_init(struct encoder *e, enum compression c, int level)
{
	memset(e, 0, sizeof(*e));
	e->c = c;
	e->out_cap = codec_block_bound(c, CODEC_BLOCK_BYTES);
	if (e->out_cap < LZ4F_HEADER_SIZE_MAX + 16)
		e->out_cap = LZ4F_HEADER_SIZE_MAX + 16;
	e->out = malloc(e->out_cap);
	if (!e->out)
		return -ENOMEM;
	if (c == COMPRESSION_LZ4) {
		if (LZ4F_isError(LZ4F_createCompressionContext(&e->cctx,
							       LZ4F_VERSION)))
			return -ENOMEM;
	} else if (c == COMPRESSION_ZSTD) {
		e->zcctx = ZSTD_createCCtx();
		if (!e->zcctx)
			return -ENOMEM;
		if (ZSTD_isError(ZSTD_CCtx_setParameter(
			    e->zcctx, ZSTD_c_compressionLevel,
			    level ? level : ZSTD_CLEVEL_DEFAULT)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(
			    e->zcctx, ZSTD_c_checksumFlag, 1)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(
			    e->zcctx, ZSTD_c_contentSizeFlag, 1)))
			return -EIO;
	} else {
		if (deflateInit2(&e->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		e->zs_live = 1;
	}
	return 0;
}

static void encoder_release(struct encoder *e)
{
	if (e->cctx)
		LZ4F_freeCompressionContext(e->cctx);
	if (e->zcctx)
		ZSTD_freeCCtx(e->zcctx);
	if (e->zs_live)
		deflateEnd(&e->zs);
	free(e->out);
}

/* Encode in[0..len) as one gzip member into e->out; returns its length or
 * -EIO. */
static ssize_t gzip_member(struct encoder *e, const void *in, size_t len)
{
	if (deflateReset(&e->zs) != Z_OK)
		return -EIO;
	/* A header CRC (FHCRC) so a flipped mtime or OS byte is caught too;
	 * gzip and zlib both check it. */
	memset(&e->gzh, 0, sizeof(e->gzh));
	e->gzh.os = 3; /* Unix */
	e->gzh.hcrc = 1;
	if (deflateSetHeader(&e->zs, &e->gzh) != Z_OK)
		return -EIO;
	e->zs.next_in = (Bytef *)in;
	e->zs.avail_in = (uInt)len;
	e->zs.next_out = e->out;
	e->zs.avail_out = (uInt)e->out_cap;
	if (deflate(&e->zs, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	return (ssize_t)(e->out_cap - e->zs.avail_out);
}

/* Encode in[0..len) as one zstd frame into e->out; returns its length or
 * -EIO.  ZSTD_compress2 knows the input's size, so the frame records it. */
static ssize_t zstd_frame(struct encoder *e, const void *in, size_t len)
{
	size_t n = ZSTD_compress2(e->zcctx, e->out, e->out_cap, in, len);

	return ZSTD_isError(n) ? -EIO : (ssize_t)n;
}

/* One block of input as gzip member or zstd frame into e->out. */
static ssize_t encode_whole(struct encoder *e, const void *in, size_t len)
{
	return e->c == COMPRESSION_ZSTD ? zstd_frame(e, in, len)
					: gzip_member(e, in, len);
}

/* Compress in_fd[0..len) into out_fd, one block per CODEC_BLOCK_BYTES. */
int codec_compress(enum compression c, int in_fd, uint64_t len, int out_fd,
		   struct codec_block **blocks, uint32_t *nblocks)
{
	return codec_compress_level(c, 0, in_fd, len, out_fd, blocks, nblocks);
}

int codec_compress_level(enum compression c, int level, int in_fd,
			 uint64_t len, int out_fd, struct codec_block **blocks,
			 uint32_t *nblocks)
{
	LZ4F_preferences_t prefs;
	struct codec_block *tab = NULL;
	struct encoder enc;
	unsigned char *in = NULL;
	uint64_t pos = 0, fpos = 0, n64;
	uint32_t i, count;
	ssize_t got;
	size_t n, chunk;
	int ret;

	*blocks = NULL;
	*nblocks = 0;
	if (!codec_known(c))
		return -EINVAL;
	n64 = (len + CODEC_BLOCK_BYTES - 1) / CODEC_BLOCK_BYTES;
	if (n64 > UINT32_MAX)
		return -EFBIG;
	count = (uint32_t)n64;
	if (level && (c != COMPRESSION_ZSTD || level < CONFIG_ZSTD_LEVEL_MIN ||
		      level > CONFIG_ZSTD_LEVEL_MAX))
		return -EINVAL;
	ret = encoder_init(&enc, c, level);
	if (ret < 0)
		goto out;
	in = malloc(CODEC_BLOCK_BYTES);
	tab = calloc(count ? count : 1, sizeof(*tab));
	if (!in || !tab) {
		ret = -ENOMEM;
		goto out;
	}
	if (c == COMPRESSION_LZ4) {
		lz4_prefs(&prefs);
		n = LZ4F_compressBegin(enc.cctx, enc.out, enc.out_cap, &prefs);
		if (LZ4F_isError(n)) {
			ret = -EIO;
			goto out;
		}
		ret = io_pwrite_full(out_fd, enc.out, n, fpos);
		if (ret < 0)
			goto out;
		fpos += n;
	}
	for (i = 0; i < count; i++) {
		chunk = len - pos < CODEC_BLOCK_BYTES ? (size_t)(len - pos)
						      : CODEC_BLOCK_BYTES;
		got = io_pread_full(in_fd, in, chunk, pos);
		if (got < 0) {
			ret = (int)got;
			goto out;
		}
		if ((size_t)got != chunk) {
			ret = -EIO; /* the input shrank under us */
			goto out;
		}
		if (c == COMPRESSION_LZ4) {
			/* autoFlush with input below the 256 KiB block size:
			 * exactly one block per call. */
			n = LZ4F_compressUpdate(enc.cctx, enc.out, enc.out_cap,
						in, chunk, NULL);
			if (LZ4F_isError(n)) {
				ret = -EIO;
				goto out;
			}
		} else {
			got = encode_whole(&enc, in, chunk);
			if (got < 0) {
				ret = (int)got;
				goto out;
			}
			n = (size_t)got;
		}
		ret = io_pwrite_full(out_fd, enc.out, n, fpos);
		if (ret < 0)
			goto out;
		tab[i].raw_pos = pos;
		tab[i].raw_len = (uint32_t)chunk;
		tab[i].file_pos = fpos;
		tab[i].file_len = (uint32_t)n;
		pos += chunk;
		fpos += n;
	}
	if (c == COMPRESSION_LZ4) {
		n = LZ4F_compressEnd(enc.cctx, enc.out, enc.out_cap, NULL);
		if (LZ4F_isError(n)) {
			ret = -EIO;
			goto out;
		}
	} else if (count == 0) {
		got = encode_whole(&enc, in, 0);
		if (got < 0) {
			ret = (int)got;
			goto out;
		}
		n = (size_t)got;
	} else {
		n = 0;
	}
	ret = io_pwrite_full(out_fd, enc.out, n, fpos);
	if (ret < 0)
		goto out;
	fpos += n;
	/* out_fd may have held a longer file: drop any stale tail. */
	ret = io_ftruncate(out_fd, fpos);
	if (ret < 0)
		goto out;
	*blocks = tab;
	*nblocks = count;
	tab = NULL;
out:
	free(tab);
	free(in);
	encoder_release(&enc);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Decompression of one block                                          */

/* The frame header codec_compress() writes, built once: creating a
 * compression context per read would allocate its 256 KiB buffers. */
static unsigned char lz4_header[LZ4F_HEADER_SIZE_MAX];
static size_t lz4_header_len;
static pthread_once_t lz4_header_once = PTHREAD_ONCE_INIT;

static void lz4_header_init(void)
{
	LZ4F_preferences_t prefs;
	LZ4F_cctx *cctx;
	size_t n;

	lz4_prefs(&prefs);
	if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)))
		return;
	n = LZ4F_compressBegin(cctx, lz4_header, sizeof(lz4_header), &prefs);
	if (!LZ4F_isError(n))
		lz4_header_len = n;
	LZ4F_freeCompressionContext(cctx);
}

/* Decode an lz4 block (size word, data, checksum) as a one-block frame
 * into out (room for cap bytes); *raw_len gets how many it produced. */
static int lz4_decode_any(const unsigned char *enc, size_t enc_len, void *out,
			  size_t cap, size_t *raw_len)
{
	LZ4F_dctx *dctx = NULL;
	unsigned char *frame = NULL;
	size_t hdr, src_len, dst_len, r;
	int ret = -EIO;

	pthread_once(&lz4_header_once, lz4_header_init);
	hdr = lz4_header_len;
	if (hdr == 0)
		return -ENOMEM;
	frame = malloc(hdr + enc_len + 4);
	if (!frame)
		return -ENOMEM;
	if (LZ4F_isError(
		    LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(frame, lz4_header, hdr);
	memcpy(frame + hdr, enc, enc_len);
	memset(frame + hdr + enc_len, 0, 4); /* end mark */
	src_len = hdr + enc_len + 4;
	dst_len = cap;
	r = LZ4F_decompress(dctx, out, &dst_len, frame, &src_len, NULL);
	/* r == 0: the frame ended; it must have used every byte (dst_len is
	 * what it wrote). */
	if (LZ4F_isError(r) || r != 0 || src_len != hdr + enc_len + 4)
		goto out;
	*raw_len = dst_len;
	ret = 0;
out:
	if (dctx)
		LZ4F_freeDecompressionContext(dctx);
	free(frame);
	return ret;
}

/* The same, producing exactly raw_len bytes. */
static int lz4_decode(const unsigned char *enc, size_t enc_len, void *out,
		      size_t raw_len)
{
	size_t got;
	int ret = lz4_decode_any(enc, enc_len, out, raw_len, &got);

	return ret == 0 && got != raw_len ? -EIO : ret;
}

/* Decode one gzip member; it must end exactly at enc_len. */
static int gzip_decode(const unsigned char *enc, size_t enc_len, void *out,
		       size_t raw_len)
{
	z_stream zs;
	int zr, ret = -EIO;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)enc;
	zs.avail_in = (uInt)enc_len;
	zs.next_out = out;
	zs.avail_out = (uInt)raw_len;
	zr = inflate(&zs, Z_FINISH);
	if (zr == Z_STREAM_END && zs.avail_in == 0 && zs.total_out == raw_len)
		ret = 0;
	inflateEnd(&zs);
	return ret;
}

/* Decode one zstd frame; it must fill enc_len exactly and decode to
 * raw_len bytes (the frame's checksum is checked by the decoder). */
static int zstd_decode(const unsigned char *enc, size_t enc_len, void *out,
		       size_t raw_len)
{
	size_t r;

	if (ZSTD_findFrameCompressedSize(enc, enc_len) != enc_len)
		return -EIO;
	r = ZSTD_decompress(out, raw_len, enc, enc_len);
	return !ZSTD_isError(r) && r == raw_len ? 0 : -EIO;
}

/* A damaged block table must not make us allocate or read wildly. */
static int block_sane(enum compression c, const struct codec_block *blk)
{
	if (!codec_known(c))
		return -EINVAL;
	if (blk->raw_len > CODEC_BLOCK_BYTES || blk->file_len == 0 ||
	    blk->file_len > codec_block_bound(c, CODEC_BLOCK_BYTES))
		return -EIO;
	return 0;
}

/* Decode one block's encoding (enc, blk->file_len bytes) into out. */
static int decode_block(enum compression c, const unsigned char *enc,
			const struct codec_block *blk, void *out)
{
	if (c == COMPRESSION_LZ4)
		return lz4_decode(enc, blk->file_len, out, blk->raw_len);
	if (c == COMPRESSION_ZSTD)
		return zstd_decode(enc, blk->file_len, out, blk->raw_len);
	return gzip_decode(enc, blk->file_len, out, blk->raw_len);
}

/* Read and decode one block from fd into out. */
int codec_read_block(enum compression c, int fd, const struct codec_block *blk,
		     void *out)
{
	unsigned char *enc;
	ssize_t got;
	int ret;

	ret = block_sane(c, blk);
	if (ret < 0)
		return ret;
	enc = malloc(blk->file_len);
	if (!enc)
		return -ENOMEM;
	got = io_pread_full(fd, enc, blk->file_len, blk->file_pos);
	if (got < 0) {
		ret = (int)got;
		goto out;
	}
	if ((size_t)got != blk->file_len) {
		ret = -EIO; /* truncated file */
		goto out;
	}
	ret = decode_block(c, enc, blk, out);
out:
	free(enc);
	return ret;
}

/* Decode one block from a mapping of the whole file (map_len bytes):
 * no descriptor, no copy of the encoding. */
static int map_read_block(enum compression c, const void *map, size_t map_len,
			  const struct codec_block *blk, void *out)
{
	int ret = block_sane(c, blk);

	if (ret < 0)
		return ret;
	if (blk->file_pos > map_len || map_len - blk->file_pos < blk->file_len)
		return -EIO; /* truncated file */
	return decode_block(c, (const unsigned char *)map + blk->file_pos, blk,
			    out);
}

/* Set up an empty block cache. */
void codec_cache_init(struct codec_cache *cache)
{
	memset(cache, 0, sizeof(*cache));
	pthread_mutex_init(&cache->lock, NULL);
}

/* Free the cache's buffer. */
void codec_cache_release(struct codec_cache *cache)
{
	free(cache->buf);
	cache->buf = NULL;
	cache->size = 0;
	cache->key = 0;
	pthread_mutex_destroy(&cache->lock);
}

/* Copy a decoded range through the block cache. */
int codec_read_range(enum compression c, int fd, const struct codec_block *b,
		     uint32_t n, struct codec_cache *cache, uint64_t key,
		     uint64_t raw_pos, void *buf, size_t len,
		     const struct codec_block **bad)
{
	const struct codec_file f = { .fd = fd };

	return codec_read_range_file(c, &f, b, n, cache, key, raw_pos, buf,
				     len, bad);
}

/* The same from a descriptor or a mapping. */
int codec_read_range_file(enum compression c, const struct codec_file *f,
			  const struct codec_block *b, uint32_t n,
			  struct codec_cache *cache, uint64_t key,
			  uint64_t raw_pos, void *buf, size_t len,
			  const struct codec_block **bad)
{
	const struct codec_block *blk;
	unsigned char *grown;
	uint64_t in;
	size_t take;
	long k;
	int ret = 0;

	pthread_mutex_lock(&cache->lock);
	while (len > 0) {
		k = codec_find_block(b, n, raw_pos);
		if (k < 0) {
			ret = -EIO;
			break;
		}
		blk = &b[k];
		if (cache->key != key || cache->blk != (uint32_t)k) {
			if (blk->raw_len > cache->size) {
				grown = realloc(cache->buf, blk->raw_len);
				if (!grown) {
					ret = -ENOMEM;
					break;
				}
				cache->buf = grown;
				cache->size = blk->raw_len;
			}
			cache->key = 0;
			ret = f->map ? map_read_block(c, f->map, f->map_len,
						      blk, cache->buf)
				     : codec_read_block(c, f->fd, blk,
							cache->buf);
			if (ret < 0) {
				if (ret == -EIO && bad)
					*bad = blk;
				break;
			}
			cache->key = key;
			cache->blk = (uint32_t)k;
		}
		in = raw_pos - blk->raw_pos;
		if (in >= blk->raw_len) {
			ret = -EIO;
			break;
		}
		take = blk->raw_len - in < len ? blk->raw_len - in : len;
		memcpy(buf, cache->buf + in, take);
		buf = (char *)buf + take;
		raw_pos += take;
		len -= take;
	}
	pthread_mutex_unlock(&cache->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Rebuilding the block table from the file                            */

/* Append one entry to a growing table. */
static int table_add(struct codec_block **tab, uint32_t *n, uint32_t *cap,
		     uint64_t raw_pos, uint32_t raw_len, uint64_t file_pos,
		     uint32_t file_len)
{
	struct codec_block *grown;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		grown = realloc(*tab, *cap * sizeof(**tab));
		if (!grown)
			return -ENOMEM;
		*tab = grown;
	}
	(*tab)[*n].raw_pos = raw_pos;
	(*tab)[*n].raw_len = raw_len;
	(*tab)[*n].file_pos = file_pos;
	(*tab)[*n].file_len = file_len;
	(*n)++;
	return 0;
}

/* Walk the frame (lz4), the members (gzip) or the frames (zstd) of fd,
 * decoding every block (see codec.h). */
int codec_scan_blocks(enum compression c, int fd, uint64_t file_size,
		      struct codec_block **blocks, uint32_t *nblocks,
		      uint64_t *raw_total)
{
	size_t bound = codec_block_bound(c, CODEC_BLOCK_BYTES), enc_len,
	       got_raw, r;
	unsigned char *enc = NULL, *raw = NULL, word[4];
	struct codec_block *tab = NULL;
	uint64_t fpos = 0, rpos = 0;
	uint32_t n = 0, cap = 0, size;
	int ret = -EIO, last = 0;
	ssize_t got;
	z_stream zs;

	*blocks = NULL;
	*nblocks = 0;
	if (!codec_known(c))
		return -EINVAL;
	enc = malloc(bound);
	raw = malloc(CODEC_BLOCK_BYTES);
	if (!enc || !raw) {
		ret = -ENOMEM;
		goto out;
	}
	if (c == COMPRESSION_LZ4) {
		pthread_once(&lz4_header_once, lz4_header_init);
		if (lz4_header_len == 0 || file_size < lz4_header_len) {
			ret = lz4_header_len ? -EIO : -ENOMEM;
			goto out;
		}
		got = io_pread_full(fd, enc, lz4_header_len, 0);
		if (got != (ssize_t)lz4_header_len ||
		    memcmp(enc, lz4_header, lz4_header_len))
			goto out; /* not a frame fluxfs wrote */
		fpos = lz4_header_len;
	}
	while (fpos < file_size) {
		if (c == COMPRESSION_LZ4) {
			got = io_pread_full(fd, word, 4, fpos);
			if (got != 4)
				goto out;
			size = (uint32_t)word[0] | (uint32_t)word[1] << 8 |
			       (uint32_t)word[2] << 16 |
			       (uint32_t)word[3] << 24;
			if (size == 0) { /* end mark: the frame is whole */
				if (fpos + 4 != file_size)
					goto out;
				break;
			}
			enc_len = 4 + (size & 0x7fffffffu) + 4;
			if (enc_len > bound || fpos + enc_len > file_size)
				goto out;
			got = io_pread_full(fd, enc, enc_len, fpos);
			if (got != (ssize_t)enc_len)
				goto out;
			ret = lz4_decode_any(enc, enc_len, raw,
					     CODEC_BLOCK_BYTES, &got_raw);
			if (ret < 0)
				goto out;
			ret = -EIO;
		} else if (c == COMPRESSION_ZSTD) {
			enc_len = file_size - fpos < bound
					  ? (size_t)(file_size - fpos)
					  : bound;
			got = io_pread_full(fd, enc, enc_len, fpos);
			if (got != (ssize_t)enc_len)
				goto out;
			r = ZSTD_findFrameCompressedSize(enc, enc_len);
			if (ZSTD_isError(r))
				goto out;
			enc_len = r;
			r = ZSTD_decompress(raw, CODEC_BLOCK_BYTES, enc,
					    enc_len);
			if (ZSTD_isError(r))
				goto out;
			got_raw = r;
			if (got_raw == 0 && fpos == 0 &&
			    fpos + enc_len == file_size)
				break; /* the one empty frame of no data */
		} else {
			enc_len = file_size - fpos < bound
					  ? (size_t)(file_size - fpos)
					  : bound;
			got = io_pread_full(fd, enc, enc_len, fpos);
			if (got != (ssize_t)enc_len)
				goto out;
			memset(&zs, 0, sizeof(zs));
			if (inflateInit2(&zs, 15 + 16) != Z_OK) {
				ret = -ENOMEM;
				goto out;
			}
			zs.next_in = enc;
			zs.avail_in = (uInt)enc_len;
			zs.next_out = raw;
			zs.avail_out = CODEC_BLOCK_BYTES;
			if (inflate(&zs, Z_FINISH) != Z_STREAM_END) {
				inflateEnd(&zs);
				goto out;
			}
			enc_len = zs.total_in;
			got_raw = zs.total_out;
			inflateEnd(&zs);
			if (got_raw == 0 && fpos == 0 &&
			    fpos + enc_len == file_size)
				break; /* the one empty member of no data */
		}
		if (got_raw == 0 || last)
			goto out; /* only the last block may be short */
		last = got_raw < CODEC_BLOCK_BYTES;
		ret = table_add(&tab, &n, &cap, rpos, (uint32_t)got_raw, fpos,
				(uint32_t)enc_len);
		if (ret < 0)
			goto out;
		ret = -EIO;
		rpos += got_raw;
		fpos += enc_len;
	}
	if (c == COMPRESSION_LZ4 && fpos >= file_size)
		goto out; /* no end mark */
	*blocks = tab;
	*nblocks = n;
	*raw_total = rpos;
	tab = NULL;
	ret = 0;
out:
	free(tab);
	free(enc);
	free(raw);
	return ret;
}
