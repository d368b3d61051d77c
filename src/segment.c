/*
 * segment.c - one segment's files: the .log (or its compressed form), the
 * .idx entry table and the .blk block table; cutting batches into chunk
 * entries, appending, lookups by offset/byte/time, per-entry CRC checks,
 * and the repairs made when a segment is opened (torn tails, a missing or
 * damaged .idx rebuilt from the .log's lines).
 *
 * What the bytes of those files mean is layout.h's: entries are encoded
 * and decoded there, also straight from the mapped .idx.  Every file
 * syscall goes through io.h; only the read-only mapping of the .idx is
 * made directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "crc32c.h"
#include "diag.h"
#include "io.h"
#include "segment.h"

static atomic_uint_fast64_t segment_ids = 1;

/* Build a header naming the segment (no losses: a fresh or empty one). */
static void header_fill(unsigned char *h, uint64_t base_offset,
			uint64_t base_byte)
{
	struct layout_idx_header hd = {
		.base_offset = base_offset,
		.base_byte = base_byte,
	};

	layout_idx_header_encode(h, &hd);
}

/* 0 and *hd if the header is intact and names base_offset. */
static int header_parse(const unsigned char *h, uint64_t base_offset,
			struct layout_idx_header *hd)
{
	if (layout_idx_header_decode(h, hd) < 0 ||
	    hd->base_offset != base_offset)
		return -EINVAL;
	return 0;
}

/* Write n entries at byte off of the .idx, encoded, in one pwrite. */
static int write_entries(int fd, const struct seg_entry *ents, uint32_t n,
			 uint64_t off)
{
	unsigned char small[64 * LAYOUT_ENTRY_BYTES], *buf = small;
	size_t len = (size_t)n * LAYOUT_ENTRY_BYTES;
	uint32_t i;
	int ret;

	if (n == 0)
		return 0;
	if (len > sizeof(small)) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		layout_entry_encode(buf + (size_t)i * LAYOUT_ENTRY_BYTES,
				    &ents[i]);
	ret = io_pwrite_full(fd, buf, len, off);
	if (buf != small)
		free(buf);
	return ret;
}

/* Byte of the .idx where entry i starts. */
static uint64_t entry_at(uint64_t i)
{
	return LAYOUT_IDX_HEADER_BYTES + i * LAYOUT_ENTRY_BYTES;
}

/* ------------------------------------------------------------------ */
/* Cutting a batch into chunks                                          */

/* Accumulates whole messages into chunks of at most SEG_CHUNK_BYTES. */
struct chunker {
	struct seg_entry *ents; /* output */
	uint32_t n, alloc;	/* entries used, allocated (grow mode) */
	int grow;		/* realloc ents as needed (rebuild) */
	uint64_t base;		/* global byte of relative position 0 */
	uint64_t next_off;	/* offset of the chunk's first message */
	uint64_t start, last;	/* chunk start, end of its last message */
	uint32_t count;
	int64_t ts;
	int err;
};

static void chunk_emit(struct chunker *c)
{
	struct seg_entry *e, *grown;
	uint32_t ncap;

	if (!c->count)
		return;
	if (c->grow && c->n == c->alloc) {
		ncap = c->alloc ? c->alloc * 2 : 256;
		grown = realloc(c->ents, (size_t)ncap * sizeof(*grown));
		if (!grown) {
			c->err = -ENOMEM;
			return;
		}
		c->ents = grown;
		c->alloc = ncap;
	}
	e = &c->ents[c->n++];
	memset(e, 0, sizeof(*e));
	e->offset = c->next_off;
	e->pos = c->base + c->start;
	e->ts = c->ts;
	e->count = c->count;
	e->len = (uint32_t)(c->last - c->start);
	c->next_off += c->count;
	c->start = c->last;
	c->count = 0;
}

/* One message ends at relative position end. */
static void chunk_add(struct chunker *c, uint64_t end)
{
	if (c->count && end - c->start > SEG_CHUNK_BYTES)
		chunk_emit(c);
	c->count++;
	c->last = end;
}

/* Worst case entry count for a batch of len bytes: two neighbouring
 * chunks always hold more than SEG_CHUNK_BYTES between them. */
size_t segment_plan_max(size_t len)
{
	return len / (SEG_CHUNK_BYTES / 2) + 2;
}

/* Newlines in [q, q+len), eight bytes at a time: an exact zero-byte test
 * on w ^ "\n\n...", whose per-byte top bits are summed by a multiply. */
size_t segment_count_nl_portable(const void *buf, size_t len)
{
	const uint64_t ones = 0x0101010101010101ull,
		       low7 = 0x7f7f7f7f7f7f7f7full;
	const unsigned char *q = buf, *end = q + len;
	uint64_t w, x, hit;
	size_t n = 0;

	while (end - q >= 8) {
		memcpy(&w, q, 8);
		x = w ^ (ones * '\n');
		hit = ~(((x & low7) + low7) | x | low7);
		n += (size_t)(((hit >> 7) * ones) >> 56);
		q += 8;
	}
	for (; q < end; q++)
		n += *q == '\n';
	return n;
}

#if defined(__SSE2__)
/* 0xff in every byte of the 16 at q that is a newline, else 0. */
static inline __m128i nl_hits(const unsigned char *q)
{
	return _mm_cmpeq_epi8(_mm_loadu_si128((const void *)q),
			      _mm_set1_epi8('\n'));
}

/* One bit per newline among the 64 bytes at q. */
static inline uint64_t nl_mask64(const unsigned char *q)
{
	return (uint64_t)(uint16_t)_mm_movemask_epi8(nl_hits(q)) |
	       (uint64_t)(uint16_t)_mm_movemask_epi8(nl_hits(q + 16)) << 16 |
	       (uint64_t)(uint16_t)_mm_movemask_epi8(nl_hits(q + 32)) << 32 |
	       (uint64_t)(uint16_t)_mm_movemask_epi8(nl_hits(q + 48)) << 48;
}

#if defined(__x86_64__)
/* AVX-512BW: one compare gives a 64-bit mask per 64 bytes, and popcnt
 * counts it; four independent sums keep the adds off one dependency
 * chain.  The last < 64 bytes are a masked load (masked-off bytes are
 * never touched, so nothing past the buffer is read). */
__attribute__((target("avx512f,avx512bw,popcnt"))) static size_t
count_nl_avx512(const unsigned char *q, size_t len)
{
	const __m512i nl = _mm512_set1_epi8('\n');
	size_t n0 = 0, n1 = 0, n2 = 0, n3 = 0, i = 0;
	__mmask64 tail;

	for (; len - i >= 256; i += 256) {
		n0 += (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(
			_mm512_loadu_si512((const void *)(q + i)), nl));
		n1 += (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(
			_mm512_loadu_si512((const void *)(q + i + 64)), nl));
		n2 += (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(
			_mm512_loadu_si512((const void *)(q + i + 128)), nl));
		n3 += (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(
			_mm512_loadu_si512((const void *)(q + i + 192)), nl));
	}
	for (; len - i >= 64; i += 64)
		n0 += (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(
			_mm512_loadu_si512((const void *)(q + i)), nl));
	if (len - i) {
		tail = _cvtu64_mask64(~0ull >> (64 - (len - i)));
		n1 += (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(
			_mm512_maskz_loadu_epi8(tail, q + i), nl));
	}
	return n0 + n1 + n2 + n3;
}
#endif

/* SSE2 (every x86-64): compare 16 bytes at once; each match subtracts -1
 * from a byte counter, and psadbw folds the counters into two 64-bit sums
 * before any byte can wrap (63 rounds of 4 matches at most).  With
 * AVX-512BW the mask-and-popcnt form above is used instead. */
size_t segment_count_nl(const void *buf, size_t len)
{
	const unsigned char *q = buf;
	const __m128i zero = _mm_setzero_si128();
	__m128i acc, sum = zero;
	size_t i = 0, n;
	unsigned k;

#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx512bw"))
		return count_nl_avx512(q, len);
#endif
	while (len - i >= 64) {
		acc = zero;
		for (k = 0; k < 63 && len - i >= 64; k++, i += 64) {
			acc = _mm_sub_epi8(acc, nl_hits(q + i));
			acc = _mm_sub_epi8(acc, nl_hits(q + i + 16));
			acc = _mm_sub_epi8(acc, nl_hits(q + i + 32));
			acc = _mm_sub_epi8(acc, nl_hits(q + i + 48));
		}
		sum = _mm_add_epi64(sum, _mm_sad_epu8(acc, zero));
	}
	n = (size_t)_mm_cvtsi128_si64(sum) +
	    (size_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(sum, sum));
	return n + segment_count_nl_portable(q + i, len - i);
}
#else
/* No vector unit known here: the portable counter. */
size_t segment_count_nl(const void *buf, size_t len)
{
	return segment_count_nl_portable(buf, len);
}
#endif

/* Pointer just past the k-th newline (k >= 1) in [buf, buf+len), or NULL:
 * the portable form, eight bytes at a time. */
static const unsigned char *
skip_nl_portable(const unsigned char *q, const unsigned char *end, uint64_t k)
{
	size_t c;

	while (k > 0 && end - q >= 8) {
		c = segment_count_nl_portable(q, 8);
		if (c >= k)
			break;
		k -= c;
		q += 8;
	}
	for (; k > 0 && q < end; q++)
		if (*q == '\n')
			k--;
	return k ? NULL : q;
}

#if defined(__SSE2__)
/* The same, 64 bytes per step: four compares folded into one 64-bit mask
 * whose popcount says whether the k-th newline is inside; then the k-th
 * set bit is found by clearing the lowest k-1. */
static inline __attribute__((always_inline)) const void *
skip_nl_sse2(const unsigned char *q, const unsigned char *end, uint64_t k)
{
	uint64_t m;
	unsigned c;

	while (end - q >= 64) {
		m = nl_mask64(q);
		c = (unsigned)__builtin_popcountll(m);
		if (c >= k) {
			while (--k > 0)
				m &= m - 1;
			return q + __builtin_ctzll(m) + 1;
		}
		k -= c;
		q += 64;
	}
	return skip_nl_portable(q, end, k);
}

/* Built twice: without -mpopcnt the popcount is a call into libgcc (4.7%
 * of an offset lookup), so a popcnt build is used where the CPU has it.
 * (target_clones would do this, but clang 14 left the symbol undefined.) */
__attribute__((target("popcnt"))) static const void *
skip_nl_popcnt(const unsigned char *q, const unsigned char *end, uint64_t k)
{
	return skip_nl_sse2(q, end, k);
}

static const void *skip_nl_base(const unsigned char *q,
				const unsigned char *end, uint64_t k)
{
	return skip_nl_sse2(q, end, k);
}

const void *segment_skip_nl(const void *buf, size_t len, uint64_t k)
{
	static atomic_int has_popcnt = -1; /* -1: not asked yet */
	const unsigned char *q = buf;
	int p;

	if (k == 0)
		return buf;
	p = atomic_load_explicit(&has_popcnt, memory_order_relaxed);
	if (p < 0) {
		__builtin_cpu_init();
		p = __builtin_cpu_supports("popcnt") != 0;
		atomic_store_explicit(&has_popcnt, p, memory_order_relaxed);
	}
	return p ? skip_nl_popcnt(q, q + len, k) : skip_nl_base(q, q + len, k);
}
#else
/* No vector unit known here: the portable form. */
const void *segment_skip_nl(const void *buf, size_t len, uint64_t k)
{
	const unsigned char *q = buf;

	return k ? skip_nl_portable(q, q + len, k) : buf;
}
#endif

/* The portable form of segment_skip_nl(), for tests. */
const void *segment_skip_nl_portable(const void *buf, size_t len, uint64_t k)
{
	const unsigned char *q = buf;

	return k ? skip_nl_portable(q, q + len, k) : buf;
}

/* A batch given as pieces (a held partial line, then a write), addressed
 * by positions relative to the start of the first piece.  The helpers
 * visit the pieces overlapping [a, e); there are one or two of them. */
struct pieces {
	const struct iovec *iov;
	int n;
	size_t len;
};

/* Position of the last newline in [a, e), or SIZE_MAX. */
static size_t pieces_rchr(const struct pieces *b, size_t a, size_t e)
{
	size_t o = b->len, ps, pe, lo, hi;
	const char *base, *q;
	int i;

	for (i = b->n - 1; i >= 0 && o > a; i--) {
		pe = o;
		ps = o - b->iov[i].iov_len;
		o = ps;
		if (ps >= e || pe <= a)
			continue;
		base = b->iov[i].iov_base;
		lo = a > ps ? a - ps : 0;
		hi = (e < pe ? e : pe) - ps;
		q = memrchr(base + lo, '\n', hi - lo);
		if (q)
			return ps + (size_t)(q - base);
	}
	return SIZE_MAX;
}

/* Position of the first newline in [a, e), or SIZE_MAX. */
static size_t pieces_chr(const struct pieces *b, size_t a, size_t e)
{
	size_t o = 0, ps, pe, lo, hi;
	const char *base, *q;
	int i;

	for (i = 0; i < b->n && o < e; i++) {
		ps = o;
		pe = o + b->iov[i].iov_len;
		o = pe;
		if (pe <= a || ps >= e)
			continue;
		base = b->iov[i].iov_base;
		lo = a > ps ? a - ps : 0;
		hi = (e < pe ? e : pe) - ps;
		q = memchr(base + lo, '\n', hi - lo);
		if (q)
			return ps + (size_t)(q - base);
	}
	return SIZE_MAX;
}

/* Newline count and CRC-32C of [a, e), in one visit of the bytes while
 * they are in cache. */
static size_t pieces_scan(const struct pieces *b, size_t a, size_t e, int count,
			  uint32_t *crc)
{
	size_t o = 0, ps, pe, lo, hi, n = 0;
	const char *base;
	int i;

	*crc = 0;
	for (i = 0; i < b->n && o < e; i++) {
		ps = o;
		pe = o + b->iov[i].iov_len;
		o = pe;
		if (pe <= a || ps >= e)
			continue;
		base = b->iov[i].iov_base;
		lo = a > ps ? a - ps : 0;
		hi = (e < pe ? e : pe) - ps;
		if (count)
			n += segment_count_nl(base + lo, hi - lo);
		*crc = crc32c(*crc, base + lo, hi - lo);
	}
	return n;
}

/* The last byte of the batch (len > 0). */
static char pieces_last(const struct pieces *b)
{
	int i = b->n - 1;

	while (i > 0 && b->iov[i].iov_len == 0)
		i--;
	return ((const char *)b->iov[i].iov_base)[b->iov[i].iov_len - 1];
}

/* Cut a batch given as pieces into chunk entries (see segment.h).  One
 * pass per chunk: memrchr finds the last message end inside the next
 * SEG_CHUNK_BYTES (the greedy cut the rebuild makes message by message),
 * then the chunk's newlines are counted and its CRC taken while it is in
 * cache.  No call per message. */
uint32_t segment_planv(const struct iovec *iov, int iovcnt, size_t len,
		       uint64_t first_offset, uint64_t pos, int64_t ts,
		       struct seg_entry *ents, uint32_t *msgs)
{
	struct pieces b = {iov, iovcnt, len};
	struct seg_entry *e;
	uint64_t off = first_offset;
	size_t at = 0, end, nl, cnt;
	int open_tail = len && pieces_last(&b) != '\n';
	uint32_t n = 0, i;

	while (at < len) {
		if (len - at <= SEG_CHUNK_BYTES) {
			end = len;
		} else {
			nl = pieces_rchr(&b, at, at + SEG_CHUNK_BYTES);
			if (nl == SIZE_MAX)
				nl = pieces_chr(&b, at + SEG_CHUNK_BYTES, len);
			end = nl == SIZE_MAX ? len : nl + 1;
		}
		e = &ents[n++];
		memset(e, 0, sizeof(*e));
		cnt = pieces_scan(&b, at, end, 1, &e->crc);
		if (end == len && open_tail)
			cnt++; /* a last line without its newline */
		e->offset = off;
		e->pos = pos + at;
		e->ts = ts;
		e->count = (uint32_t)cnt;
		e->len = (uint32_t)(end - at);
		off += cnt;
		at = end;
	}
	for (i = 0; i < n; i++) {
		ents[i].flags =
			(i ? SEG_F_CONT : 0) | (i + 1 == n ? SEG_F_LAST : 0);
		layout_entry_seal(&ents[i]);
	}
	*msgs = (uint32_t)(off - first_offset);
	return n;
}

/* Cut buf into chunk entries at message boundaries (see segment.h). */
uint32_t segment_plan(const void *buf, size_t len, uint64_t first_offset,
		      uint64_t pos, int64_t ts, struct seg_entry *ents,
		      uint32_t *msgs)
{
	struct iovec v = {(void *)(uintptr_t)buf, len};

	return segment_planv(&v, 1, len, first_offset, pos, ts, ents, msgs);
}

/* ------------------------------------------------------------------ */
/* Opening, creating, repairing                                         */

/* CRC-32C of len bytes of fd at off, read in pieces. */
static int crc_range(int fd, uint64_t off, uint64_t len, uint32_t *out)
{
	unsigned char *buf;
	uint32_t crc = 0;
	size_t piece;
	ssize_t n;
	int ret = 0;

	buf = malloc(len < 65536 ? (len ? len : 1) : 65536);
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		piece = len < 65536 ? len : 65536;
		n = io_pread_full(fd, buf, piece, off);
		if (n < 0 || (size_t)n != piece) {
			ret = n < 0 ? (int)n : -EIO;
			break;
		}
		crc = crc32c(crc, buf, piece);
		off += piece;
		len -= piece;
	}
	free(buf);
	*out = crc;
	return ret;
}

/* Write NNN.idx from the lines of the .log (atomically, via .tmp).  Bytes
 * at or above trust_until were never flushed and nothing can vouch for
 * them without an index: they are cut off (*cut gets how many). */
static int rebuild_index(int dirfd, uint64_t base_offset, uint64_t base_byte,
			 int log_fd, uint64_t trust_until, uint64_t *cut)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES], *win = NULL;
	char name[LAYOUT_NAME_MAX], tmp[LAYOUT_NAME_MAX];
	struct chunker c;
	struct stat st;
	uint64_t size, at = 0, i;
	const unsigned char *nl;
	size_t wlen, k;
	ssize_t n;
	int fd = -1, ret;

	memset(&c, 0, sizeof(c));
	c.grow = 1;
	ret = io_fstat(log_fd, &st);
	if (ret < 0)
		return ret;
	size = (uint64_t)st.st_size;
	if (base_byte + size > trust_until) {
		*cut = base_byte + size -
		       (trust_until > base_byte ? trust_until : base_byte);
		size -= *cut;
		ret = io_ftruncate(log_fd, size);
		/* durable before an index is built on the shorter log */
		if (ret == 0)
			ret = io_fdatasync(log_fd);
		if (ret < 0)
			return ret;
	}
	c.base = base_byte;
	c.next_off = base_offset;
	c.ts = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	win = malloc(1 << 20);
	if (!win)
		return -ENOMEM;
	while (at < size) {
		n = io_pread_full(log_fd, win, 1 << 20, at);
		if (n <= 0) {
			ret = n < 0 ? (int)n : -EIO;
			goto out;
		}
		wlen = (size_t)n;
		k = 0;
		while (k < wlen) {
			nl = memchr(win + k, '\n', wlen - k);
			if (!nl)
				break;
			k = (size_t)(nl - win) + 1;
			chunk_add(&c, at + k);
		}
		at += wlen;
	}
	if (c.last < size || c.count) {
		if (c.last < size)
			chunk_add(&c, size); /* a last line without newline */
		chunk_emit(&c);
	}
	if (c.err) {
		ret = c.err;
		goto out;
	}
	for (i = 0; i < c.n; i++) {
		ret = crc_range(log_fd, c.ents[i].pos - base_byte,
				c.ents[i].len, &c.ents[i].crc);
		if (ret < 0)
			goto out;
		c.ents[i].flags = SEG_F_LAST;
		layout_entry_seal(&c.ents[i]);
	}
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	layout_seg_name(tmp, sizeof(tmp), base_offset,
			LAYOUT_IDX_SUFFIX LAYOUT_TMP_SUFFIX);
	fd = io_openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	header_fill(hdr, base_offset, base_byte);
	ret = io_pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (ret == 0 && c.n)
		ret = write_entries(fd, c.ents, c.n, entry_at(0));
	if (ret == 0)
		ret = io_fsync(fd);
	if (ret == 0)
		ret = io_renameat(dirfd, tmp, dirfd, name);
	if (ret == 0)
		ret = io_fsync_dir(dirfd);
	else
		io_unlinkat(dirfd, tmp, 0);
out:
	if (fd >= 0)
		io_close(fd);
	free(c.ents);
	free(win);
	return ret;
}

/* Rebuild a compressed segment's index: decode its blocks into a raw
 * scratch file beside it (NNN.raw.tmp; a crash leaves it for the next
 * open's *.tmp sweep) and index that.  Every byte is trusted: a segment is
 * compressed only after it was flushed whole. */
static int rebuild_compressed_index(int dirfd, struct segment *s,
				    uint64_t base_byte)
{
	unsigned char *buf = NULL;
	uint32_t i, max = 1;
	uint64_t cut = 0;
	char tmp[LAYOUT_NAME_MAX];
	int fd, ret = 0;

	uint64_t at = 0;

	/* The table is checked by its CRC only: hold it to the shape the
	 * compressor writes before sizing anything by it. */
	for (i = 0; i < s->nblocks; i++) {
		if (s->blocks[i].raw_pos != at ||
		    s->blocks[i].raw_len > CODEC_BLOCK_BYTES)
			return -EIO;
		at += s->blocks[i].raw_len;
		if (s->blocks[i].raw_len > max)
			max = s->blocks[i].raw_len;
	}
	buf = malloc(max);
	if (!buf)
		return -ENOMEM;
	layout_seg_name(tmp, sizeof(tmp), s->base_offset, ".raw" LAYOUT_TMP_SUFFIX);
	fd = io_openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	for (i = 0; ret == 0 && i < s->nblocks; i++) {
		ret = codec_read_block(s->codec, s->log_fd, &s->blocks[i], buf);
		if (ret == 0)
			ret = io_pwrite_full(fd, buf, s->blocks[i].raw_len,
					     s->blocks[i].raw_pos);
	}
	if (ret == 0)
		ret = rebuild_index(dirfd, s->base_offset, base_byte, fd,
				    UINT64_MAX, &cut);
	free(buf);
	io_close(fd);
	io_unlinkat(dirfd, tmp, 0);
	return ret;
}

/* A damaged or missing NNN.blk: the table is rebuilt from the compressed
 * frame itself (every block decoded on the way) and written back
 * atomically; damage to an index of the data is not a reason to lose the
 * data.  -EIO if the frame is damaged too. */
static int rebuild_blocks(int dirfd, struct segment *s, uint64_t *raw_len)
{
	struct codec_block *b = NULL;
	uint32_t n = 0;
	int ret;

	free(s->blocks);
	s->blocks = NULL;
	s->nblocks = 0;
	ret = codec_scan_blocks(s->codec, s->log_fd, s->disk_bytes, &b, &n,
				raw_len);
	if (ret == 0)
		ret = layout_blk_store(dirfd, s->base_offset, s->codec,
				       *raw_len, b, n);
	if (ret < 0) {
		diag_err("segment %020llu: the block table is damaged and the "
			 "%s frame cannot be walked: %s",
			 (unsigned long long)s->base_offset,
			 codec_name(s->codec), strerror(-ret));
		free(b);
		return ret;
	}
	diag_err("segment %020llu: damaged block table rebuilt from the %s "
		 "frame (%u blocks)",
		 (unsigned long long)s->base_offset, codec_name(s->codec), n);
	s->blocks = b;
	s->nblocks = n;
	return 0;
}

/* Read NNN.blk into s->blocks; 0 or -errno (-EIO if damaged). */
static int read_blocks(int dirfd, struct segment *s, uint64_t *raw_len)
{
	return layout_blk_load(dirfd, s->base_offset, s->codec, raw_len,
			       &s->blocks, &s->nblocks);
}

static int map_entries(struct segment *s, uint32_t cap)
{
	size_t len = LAYOUT_IDX_HEADER_BYTES + (size_t)cap * LAYOUT_ENTRY_BYTES;
	void *m;
	int ret;

	ret = io_mmap(s->idx_fd, len, &m);
	if (ret < 0)
		return ret;
	s->vstate = calloc(cap, 1);
	if (!s->vstate) {
		io_munmap(m, len);
		return -ENOMEM;
	}
	s->map = m;
	s->map_len = len;
	s->map_cap = cap;
	return 0;
}

/* Undo map_entries(). */
static void unmap_entries(struct segment *s)
{
	if (s->map)
		io_munmap(s->map, s->map_len);
	free((void *)s->vstate);
	s->map = NULL;
	s->map_len = 0;
	s->map_cap = 0;
	s->vstate = NULL;
}

/* Map the .log read-only (len bytes, may reach past EOF); NULL map if the
 * file cannot be mapped: reads then fall back to pread. */
static void *map_log(int fd, size_t len)
{
	void *m;

	if (!SEG_MAP_LOG || len == 0)
		return NULL;
	return io_mmap(fd, len, &m) < 0 ? NULL : m;
}

/* Grow the mappings to show at least need entries and log_bytes of data. */
int segment_map_grow(struct segment *s, uint32_t need, uint64_t log_bytes,
		     pthread_rwlock_t *lock)
{
	size_t len = 0, old_len = s->map_len, llen = 0, old_llen = s->lmap_len;
	void *m = NULL, *old_map = s->map, *lm = NULL, *old_lmap = s->lmap;
	_Atomic uint8_t *v = NULL, *old_v = s->vstate;
	uint32_t cap = s->map_cap, i;
	int ret;

	if (need > s->map_cap) {
		while (cap < need)
			cap = cap < 1024 ? 1024 : cap * 2;
		len = LAYOUT_IDX_HEADER_BYTES + (size_t)cap * LAYOUT_ENTRY_BYTES;
		ret = io_mmap(s->idx_fd, len, &m);
		if (ret < 0)
			return ret;
		v = calloc(cap, 1);
		if (!v) {
			io_munmap(m, len);
			return -ENOMEM;
		}
	}
	if (s->codec == COMPRESSION_NONE && log_bytes > s->lmap_len) {
		llen = s->lmap_len ? s->lmap_len : (1u << 20);
		while (llen < log_bytes)
			llen *= 2;
		lm = map_log(s->log_fd, llen);
		if (!lm)
			llen = 0;
	}
	if (!m && !lm)
		return 0;
	if (lock)
		pthread_rwlock_wrlock(lock);
	if (m) {
		for (i = 0; i < s->map_cap; i++)
			v[i] = atomic_load_explicit(&old_v[i],
						    memory_order_relaxed);
		s->map = m;
		s->map_len = len;
		s->map_cap = cap;
		s->vstate = v;
	}
	if (lm) {
		s->lmap = lm;
		s->lmap_len = llen;
	}
	if (lock)
		pthread_rwlock_unlock(lock);
	if (m) {
		io_munmap(old_map, old_len);
		free((void *)old_v);
	}
	if (lm && old_lmap)
		io_munmap(old_lmap, old_llen);
	return 0;
}

/* Drop the .log mapping (the raw file is being replaced); the caller
 * holds the partition's segment lock for writing. */
void segment_unmap_log(struct segment *s)
{
	if (s->lmap)
		io_munmap(s->lmap, s->lmap_len);
	s->lmap = NULL;
	s->lmap_len = 0;
}

static struct segment *segment_alloc(uint64_t base_offset)
{
	struct segment *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->id = atomic_fetch_add(&segment_ids, 1);
	s->base_offset = base_offset;
	s->log_fd = -1;
	s->idx_fd = -1;
	return s;
}

/* Create NNN.log and NNN.idx (header only). */
int segment_create(int dirfd, uint64_t base_offset, uint64_t base_byte,
		   struct segment **out)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES];
	char name[LAYOUT_NAME_MAX];
	struct segment *s = segment_alloc(base_offset);
	int ret;

	if (!s)
		return -ENOMEM;
	s->base_byte = base_byte;
	s->next_offset = base_offset;
	atomic_store(&s->end_byte, base_byte);
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_LOG_SUFFIX);
	s->log_fd = io_openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s->log_fd < 0) {
		ret = s->log_fd;
		goto err;
	}
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	s->idx_fd = io_openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s->idx_fd < 0) {
		ret = s->idx_fd;
		goto err_unlink;
	}
	header_fill(hdr, base_offset, base_byte);
	ret = io_pwrite_full(s->idx_fd, hdr, sizeof(hdr), 0);
	if (ret < 0)
		goto err_unlink;
	ret = map_entries(s, 1024);
	if (ret < 0)
		goto err_unlink;
	*out = s;
	return 0;
err_unlink:
	segment_unlink(dirfd, base_offset);
err:
	segment_free(s);
	return ret;
}

/* Check entries from index k on; returns the first bad index (or n).
 * *crc_bad is set when the stop was a data CRC mismatch. */
static uint32_t validate_from(struct segment *s, uint32_t k, uint32_t n,
			      uint64_t data_end, int check_data,
			      uint64_t keep_below, uint32_t *crc_bad)
{
	struct seg_entry prev = {0}, e;
	uint64_t want_pos, want_off;
	uint32_t i, crc;

	*crc_bad = 0;
	if (k)
		prev = segment_entry(s, k - 1);
	for (i = k; i < n; i++, prev = e) {
		e = segment_entry(s, i);
		want_pos = i ? prev.pos + prev.len : s->base_byte;
		want_off = i ? prev.offset + prev.count : s->base_offset;
		if (!layout_entry_intact(&e) || e.pos != want_pos ||
		    e.offset != want_off || (i && e.ts < prev.ts))
			return i;
		if (e.pos + e.len > data_end) {
			if (e.pos + e.len > keep_below)
				return i; /* unflushed: a lost write, cut */
			/* Flushed bytes of a sealed segment are gone (the
			 * .log was cut short on the disk): keep the entry,
			 * reads of it fail with EIO. */
			(*crc_bad)++;
			s->vstate[i] = SEG_V_BAD;
			continue;
		}
		if (!check_data)
			continue;
		if (layout_entry_lost(&e)) {
			/* dropped by repair: zeros, nothing to check */
			s->vstate[i] = SEG_V_GOOD;
			continue;
		}
		if (crc_range(s->log_fd, e.pos - s->base_byte, e.len, &crc) <
			    0 ||
		    crc != e.crc) {
			(*crc_bad)++;
			if (e.pos + e.len > keep_below)
				return i; /* unflushed: a torn write, cut */
			/* Flushed bytes of a sealed segment went bad on the
			 * disk: keep the batch (reads of it fail with EIO)
			 * and everything after it. */
			s->vstate[i] = SEG_V_BAD;
			continue;
		}
		s->vstate[i] = SEG_V_GOOD;
	}
	return n;
}

/* End byte of the first k entries (the base byte when k is 0). */
static uint64_t entries_end(const struct segment *s, uint32_t k)
{
	struct seg_entry e;

	if (!k)
		return s->base_byte;
	e = segment_entry(s, k - 1);
	return e.pos + e.len;
}

/* Open and repair a segment (see segment.h). */
int segment_open(int dirfd, uint64_t base_offset, uint64_t base_byte,
		 uint64_t verify_from, uint64_t trust_until, int sealed,
		 enum compression compressed, struct segment **out,
		 struct seg_report *rep)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES];
	char name[LAYOUT_NAME_MAX];
	struct segment *s = segment_alloc(base_offset);
	struct layout_idx_header hd;
	struct seg_entry last;
	struct stat st;
	uint64_t data_len, data_end, idx_size, good_end, cut = 0;
	uint32_t n, good, k, shaped, crc_bad = 0;
	int ret, rebuilt = 0;
	ssize_t got;

	if (!s)
		return -ENOMEM;
	s->codec = compressed;
	layout_seg_name(name, sizeof(name), base_offset,
		     layout_data_suffix(compressed));
	s->log_fd = io_openat(dirfd, name, compressed ? O_RDONLY : O_RDWR, 0);
	if (s->log_fd == -EPERM || s->log_fd == -EACCES ||
	    s->log_fd == -EROFS) {
		/* immutable or read-only: still served, never written */
		s->log_fd = io_openat(dirfd, name, O_RDONLY, 0);
		s->readonly = s->log_fd >= 0;
	}
	if (s->log_fd < 0) {
		ret = s->log_fd;
		goto err;
	}
	ret = io_fstat(s->log_fd, &st);
	if (ret < 0)
		goto err;
	s->disk_bytes = (uint64_t)st.st_size;
	data_len = (uint64_t)st.st_size;
	if (compressed) {
		ret = read_blocks(dirfd, s, &data_len);
		if (ret == -EIO || ret == -ENOENT) {
			ret = rebuild_blocks(dirfd, s, &data_len);
			if (ret == 0)
				rep->rebuilt++;
		}
		if (ret < 0)
			goto err;
	}
reopen_idx:
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	s->idx_fd = io_openat(dirfd, name, O_RDWR, 0);
	if (s->idx_fd >= 0) {
		got = io_pread_full(s->idx_fd, hdr, sizeof(hdr), 0);
		ret = got == (ssize_t)sizeof(hdr)
			      ? header_parse(hdr, base_offset, &hd)
			      : -EINVAL;
	} else {
		ret = s->idx_fd;
	}
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		goto err;
	if (ret < 0) {
		if (rebuilt) {
			ret = -EIO;
			goto err;
		}
	rebuild:
		io_close(s->idx_fd);
		s->idx_fd = -1;
		if (compressed)
			ret = rebuild_compressed_index(
				dirfd, s,
				base_byte == UINT64_MAX ? 0 : base_byte);
		else
			ret = rebuild_index(dirfd, base_offset,
					    base_byte == UINT64_MAX ? 0
								    : base_byte,
					    s->log_fd, trust_until, &cut);
		if (ret < 0)
			goto err;
		rep->rebuilt++;
		if (cut) {
			rep->truncated_bytes += cut;
			rep->cut = 1;
			data_len -= cut;
			s->disk_bytes = data_len;
		}
		rebuilt = 1;
		verify_from = UINT64_MAX; /* the CRCs were just computed */
		goto reopen_idx;
	}
	s->base_byte = hd.base_byte;
	s->lost_msgs = hd.lost_msgs;
	s->lost_bytes = hd.lost_bytes;
	ret = io_fstat(s->idx_fd, &st);
	if (ret < 0)
		goto err;
	idx_size = (uint64_t)st.st_size;
	n = (uint32_t)((idx_size - LAYOUT_IDX_HEADER_BYTES) /
		       LAYOUT_ENTRY_BYTES);
	ret = map_entries(s, n + 64);
	if (ret < 0)
		goto err;
	data_end = s->base_byte + data_len;

	/* Every search relies on the entries' shape (each one's own
	 * checksum, positions and offsets following on), so it is checked
	 * in full: one pass over the .idx, no data read.  A misshapen entry
	 * below the recovery point is damage to the index, not a torn
	 * write: rebuild the index from the log instead of accepting it
	 * (searches then miss, and even a new append read back as EIO) or
	 * cutting the flushed log there. */
	shaped = n; /* a rebuilt index is well-formed throughout */
	if (!rebuilt) {
		/* shape only: a log shorter than its entries is a torn
		 * or lost write, which the walk below cuts as before.  A
		 * compressed segment was flushed whole before it was
		 * compressed: any misshapen entry is damage. */
		k = validate_from(s, 0, n, UINT64_MAX, 0, 0, &crc_bad);
		shaped = k;
		if (k < n && (compressed || entries_end(s, k) < verify_from)) {
			diag_err("damaged index entry %u in segment %020llu: "
				 "rebuilding the index from the log",
				 k, (unsigned long long)base_offset);
			unmap_entries(s);
			base_byte = s->base_byte;
			goto rebuild;
		}
	}

	/* A clean segment is judged by its last entry alone. */
	good = n;
	if (n > 0)
		last = segment_entry(s, n - 1);
	if (verify_from >= data_end && n > 0 && layout_entry_intact(&last) &&
	    (last.flags & SEG_F_LAST) && last.pos + last.len == data_end &&
	    last.offset >= base_offset)
		goto accept;
	if (verify_from >= data_end && n == 0 && data_len == 0)
		goto accept;
	/* Walk from the first entry that ends above the recovery point (or
	 * from the start if the clean check failed). */
	k = 0;
	if (verify_from < data_end && verify_from > s->base_byte) {
		/* Only over the well-formed entries: a garbled one (a torn
		 * index write at the recovery point) could steer the search
		 * past itself, and the walk would then keep it. */
		uint32_t lo = 0, hi = shaped, mid;

		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (entries_end(s, mid + 1) <= verify_from)
				lo = mid + 1;
			else
				hi = mid;
		}
		k = lo;
	}
	good = validate_from(s, k, n, data_end, !compressed,
			     sealed ? trust_until : 0, &crc_bad);
	rep->bad_entries += crc_bad;
	/* Keep whole writes only: back up to the end of the last one. */
	while (good > 0 && !(segment_entry(s, good - 1).flags & SEG_F_LAST))
		good--;
	good_end = entries_end(s, good);
	if (compressed && (good < n || good_end != data_end)) {
		diag_err("compressed segment '%020llu' has a damaged index%s",
			 (unsigned long long)base_offset,
			 rebuilt ? "" : ": rebuilding it from the data");
		ret = -EIO;
		if (rebuilt)
			goto err;
		unmap_entries(s);
		base_byte = s->base_byte;
		goto rebuild;
	}
	if (good_end < data_end && sealed && good == n &&
	    good_end < trust_until) {
		/* Bytes past the last entry of a sealed segment, below the
		 * recovery point: not a torn write (everything below it was
		 * synced with its entries), so damage such as a
		 * zero-extended file.  Nothing refers to them: ignore them,
		 * never cut the flushed log. */
		rep->ignored_bytes += data_end - good_end;
	} else if (good_end < data_end) {
		/* The cut is synced at once: the segment is marked synced
		 * below, so no flush would ever sync it again, and after a
		 * roll a second power loss would bring the torn bytes back
		 * inside a sealed segment. */
		ret = io_ftruncate(s->log_fd, good_end - s->base_byte);
		if (ret == 0)
			ret = io_fdatasync(s->log_fd);
		if (ret < 0)
			goto err;
		rep->truncated_bytes += data_end - good_end;
		s->disk_bytes = good_end - s->base_byte;
		rep->cut = 1;
	}
	if (good < n) {
		rep->dropped_entries += n - good;
		rep->cut = 1;
	}
accept:
	if (idx_size != entry_at(good)) {
		ret = io_ftruncate(s->idx_fd, entry_at(good));
		if (ret == 0)
			ret = io_fdatasync(s->idx_fd);
		if (ret < 0)
			goto err;
	}
	atomic_store(&s->nentries, good);
	atomic_store(&s->end_byte, entries_end(s, good));
	if (good)
		last = segment_entry(s, good - 1);
	s->next_offset = good ? last.offset + last.count : base_offset;
	if (compressed) {
		s->sealed = 1;
		for (k = 0; k < good; k++)
			s->vstate[k] =
				SEG_V_GOOD; /* checked before compressing */
	}
	s->synced = 1;
	if (!compressed) {
		atomic_store(&s->log_short,
			     s->disk_bytes < atomic_load(&s->end_byte) -
						     s->base_byte);
		/* never map past the end of a .log cut short on the disk:
		 * touching such a page would raise SIGBUS */
		s->lmap_len =
			(size_t)(atomic_load(&s->end_byte) - s->base_byte);
		if (s->lmap_len > s->disk_bytes)
			s->lmap_len = (size_t)s->disk_bytes;
		s->lmap = map_log(s->log_fd, s->lmap_len);
		if (!s->lmap)
			s->lmap_len = 0;
	}
	*out = s;
	return 0;
err:
	segment_free(s);
	return ret;
}

/* Release a segment's descriptors, mapping and memory. */
void segment_free(struct segment *s)
{
	if (!s)
		return;
	if (s->map)
		io_munmap(s->map, s->map_len);
	segment_unmap_log(s);
	io_close(s->log_fd);
	io_close(s->idx_fd);
	free((void *)s->vstate);
	free(s->blocks);
	free(s);
}

/* Unlink every file of the segment; missing ones are fine. */
int segment_unlink(int dirfd, uint64_t base_offset)
{
	static const char *const sfx[] = {LAYOUT_LOG_SUFFIX, LAYOUT_LZ4_SUFFIX,
					  LAYOUT_GZ_SUFFIX, LAYOUT_BLK_SUFFIX,
					  LAYOUT_IDX_SUFFIX};
	char name[LAYOUT_NAME_MAX];
	size_t i;
	int ret, first = 0;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		layout_seg_name(name, sizeof(name), base_offset, sfx[i]);
		ret = io_unlinkat(dirfd, name, 0);
		if (ret < 0 && ret != -ENOENT && !first)
			first = ret;
	}
	return first;
}

/* ------------------------------------------------------------------ */
/* Appending                                                            */

/* Write a batch (given as pieces) and its entries; cut back on failure
 * (see segment.h). */
int segment_appendv(struct segment *s, const struct iovec *iov, int iovcnt,
		    size_t len, const struct seg_entry *ents, uint32_t n,
		    int sync)
{
	uint32_t old_n =
		atomic_load_explicit(&s->nentries, memory_order_relaxed);
	uint64_t old_end =
		atomic_load_explicit(&s->end_byte, memory_order_relaxed);
	uint64_t log_len = old_end - s->base_byte;
	uint64_t idx_len = entry_at(old_n);
	int ret;

	ret = iovcnt == 1
		      ? io_pwrite_full(s->log_fd, iov[0].iov_base, len, log_len)
		      : io_pwritev_full(s->log_fd, iov, iovcnt, log_len);
	if (ret < 0)
		goto err_log;
	ret = write_entries(s->idx_fd, ents, n, idx_len);
	if (ret < 0)
		goto err_idx;
	if (sync) {
		ret = io_fdatasync(s->log_fd);
		if (ret == 0)
			ret = io_fdatasync(s->idx_fd);
		if (ret < 0)
			goto err_idx;
	}
	s->next_offset = ents[n - 1].offset + ents[n - 1].count;
	s->disk_bytes = log_len + len;
	s->synced = sync;
	/* The file now reaches past every entry (a short .log's missing
	 * bytes became a hole of zeros, which reads as damage). */
	atomic_store_explicit(&s->log_short, 0, memory_order_release);
	atomic_store_explicit(&s->nentries, old_n + n, memory_order_release);
	atomic_store_explicit(&s->end_byte, old_end + len,
			      memory_order_release);
	return 0;
err_idx:
	io_ftruncate(s->idx_fd, idx_len);
err_log:
	io_ftruncate(s->log_fd, log_len);
	return ret;
}

/* Write the index again from the mapping (see segment.h).  Through a
 * private copy: a write whose source is a mapping of the very pages it
 * writes would fault on the page it holds. */
int segment_rewrite_index(struct segment *s)
{
	uint32_t n = atomic_load_explicit(&s->nentries, memory_order_relaxed);
	size_t len = (size_t)entry_at(n);
	void *copy;
	int ret;

	if (s->codec != COMPRESSION_NONE)
		return 0; /* written once, whole, before it was used */
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s->map, len);
	ret = io_pwrite_full(s->idx_fd, copy, len, 0);
	free(copy);
	return ret;
}

/* Give the last entry k more messages, on disk and in memory (see
 * segment.h). */
int segment_add_messages(struct segment *s, uint64_t k)
{
	uint32_t n = atomic_load_explicit(&s->nentries, memory_order_relaxed);
	struct seg_entry e;
	int ret;

	if (n == 0 || k == 0)
		return -EINVAL;
	e = segment_entry(s, n - 1);
	if (k > UINT32_MAX - e.count)
		return -EINVAL;
	e.count += (uint32_t)k;
	layout_entry_seal(&e);
	ret = write_entries(s->idx_fd, &e, 1, entry_at(n - 1));
	if (ret == 0)
		ret = io_fdatasync(s->idx_fd);
	if (ret == 0)
		s->next_offset += k;
	return ret;
}

/* Write one contiguous batch and its entries (see segment.h). */
int segment_append(struct segment *s, const void *buf, size_t len,
		   const struct seg_entry *ents, uint32_t n, int sync)
{
	struct iovec v = {(void *)(uintptr_t)buf, len};

	return segment_appendv(s, &v, 1, len, ents, n, sync);
}

/* Rewrite an empty segment's header with a new base byte. */
int segment_set_base_byte(struct segment *s, uint64_t base_byte)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES];
	int ret;

	header_fill(hdr, s->base_offset, base_byte);
	ret = io_pwrite_full(s->idx_fd, hdr, sizeof(hdr), 0);
	if (ret < 0)
		return ret;
	s->base_byte = base_byte;
	atomic_store(&s->end_byte, base_byte);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lookups and reads                                                    */

/* The u64 field at byte offset field (LAYOUT_ENT_OFFSET or
 * LAYOUT_ENT_POS) of entry i, read from the mapping without decoding the
 * rest of the entry. */
static inline uint64_t entry_key(const struct segment *s, uint32_t i,
				 size_t field)
{
	return le64_get((const char *)s->map + entry_at(i) + field);
}

/* The first entry whose key (offset or pos, both increasing and roughly
 * linear in the entry index) is above key.  An interpolation guess, then
 * a gallop from it and a binary search of what is left: on a large
 * active segment this touches a few cache lines near the answer instead
 * of ~16 probes spread over megabytes of index. */
static uint32_t upper_bound(const struct segment *s, uint32_t n, uint64_t key,
			    size_t field)
{
	uint32_t lo = 0, hi = n, mid, g, step;
	uint64_t first, last;

	if (n > 32) {
		first = entry_key(s, 0, field);
		last = entry_key(s, n - 1, field);
		if (key < first)
			return 0;
		if (key >= last)
			return n;
		g = (uint32_t)((double)(key - first) / (double)(last - first) *
			       (n - 1));
		if (g >= n)
			g = n - 1;
		step = 1;
		if (entry_key(s, g, field) <= key) {
			lo = g + 1;
			while (lo + step < hi &&
			       entry_key(s, lo + step, field) <= key) {
				lo += step + 1;
				step *= 2;
			}
			if (lo + step < hi)
				hi = lo + step;
		} else {
			hi = g;
			while (hi > lo + step &&
			       entry_key(s, hi - step - 1, field) > key) {
				hi -= step + 1;
				step *= 2;
			}
			if (hi > lo + step)
				lo = hi - step;
		}
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (entry_key(s, mid, field) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the entry whose range by field (LAYOUT_ENT_OFFSET: messages,
 * LAYOUT_ENT_POS: bytes) holds key, or -1. */
static long find_holding(const struct segment *s, uint32_t n, uint64_t key,
			 size_t field)
{
	uint32_t lo = upper_bound(s, n, key, field);
	struct seg_entry e;
	uint64_t end;

	if (lo == 0)
		return -1;
	e = segment_entry(s, lo - 1);
	end = field == LAYOUT_ENT_POS ? e.pos + e.len : e.offset + e.count;
	return key < end ? (long)lo - 1 : -1;
}

/* Index of the entry holding message offset off, or -1. */
long segment_find_offset(const struct segment *s, uint32_t n, uint64_t off)
{
	return find_holding(s, n, off, LAYOUT_ENT_OFFSET);
}

/* Index of the entry holding global byte pos, or -1. */
long segment_find_byte(const struct segment *s, uint32_t n, uint64_t pos)
{
	return find_holding(s, n, pos, LAYOUT_ENT_POS);
}

/* Index of the first entry with ts >= ts_ms, or n. */
long segment_find_time(const struct segment *s, uint32_t n, int64_t ts_ms)
{
	uint32_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((int64_t)le64_get((const char *)s->map + entry_at(mid) +
				      LAYOUT_ENT_TS) < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Mark the entries of s overlapping [from, to) bad; 1 if one of them was
 * good until now. */
static int mark_bad_range(struct segment *s, uint64_t from, uint64_t to)
{
	uint32_t n = atomic_load(&s->nentries), i;
	long k = segment_find_byte(s, n, from);
	struct seg_entry e;
	uint8_t want;
	int first = 0;

	for (i = k < 0 ? 0 : (uint32_t)k; i < n; i++) {
		e = segment_entry(s, i);
		if (e.pos >= to)
			break;
		if (e.pos + e.len <= from)
			continue;
		want = SEG_V_GOOD;
		if (atomic_compare_exchange_strong(&s->vstate[i], &want,
						   SEG_V_BAD))
			first = 1;
	}
	return first;
}

/* Copy bytes of a compressed segment through the block cache. */
int segment_read_compressed(struct segment *s, struct codec_cache *cache,
			    uint64_t pos, void *buf, size_t len,
			    uint64_t *bad_from, uint64_t *bad_to)
{
	const struct codec_block *bad = NULL;
	uint64_t from, to;
	int ret;

	ret = codec_read_range(s->codec, s->log_fd, s->blocks, s->nblocks,
			       cache, s->id, pos - s->base_byte, buf, len,
			       &bad);
	if (ret == -EIO && bad) {
		from = s->base_byte + bad->raw_pos;
		to = from + bad->raw_len;
		if (mark_bad_range(s, from, to)) {
			*bad_from = from;
			*bad_to = to;
		}
	}
	return ret;
}

/* Read from a raw segment at global byte pos: from the mapping when the
 * range is mapped, else pread. */
ssize_t segment_pread(const struct segment *s, void *buf, size_t len,
		      uint64_t pos)
{
	uint64_t rel = pos - s->base_byte;

	if (s->lmap && rel + len <= s->lmap_len &&
	    pos + len <=
		    atomic_load_explicit(&s->end_byte, memory_order_acquire) &&
	    !atomic_load_explicit(&s->log_short, memory_order_acquire)) {
		memcpy(buf, (const char *)s->lmap + rel, len);
		return (ssize_t)len;
	}
	return io_pread_full(s->log_fd, buf, len, rel);
}

/* Pointer to published bytes [pos, pos+len) in the .log mapping, or NULL
 * when they are not mapped (the caller then copies with segment_pread). */
const void *segment_peek(const struct segment *s, uint64_t pos, size_t len)
{
	uint64_t rel = pos - s->base_byte;

	if (!s->lmap || rel + len > s->lmap_len ||
	    pos + len >
		    atomic_load_explicit(&s->end_byte, memory_order_acquire) ||
	    atomic_load_explicit(&s->log_short, memory_order_acquire))
		return NULL;
	return (const char *)s->lmap + rel;
}

/* Check entry i's CRC once; data (the entry's bytes) may be NULL. */
int segment_verify_entry(struct segment *s, uint32_t i, const void *data)
{
	struct seg_entry ent = segment_entry(s, i), *e = &ent;
	int st = atomic_load_explicit(&s->vstate[i], memory_order_relaxed);
	uint32_t crc;
	int ret;

	if (st != SEG_V_UNKNOWN || s->codec != COMPRESSION_NONE)
		return st != SEG_V_UNKNOWN ? st : SEG_V_GOOD;
	if (layout_entry_lost(e)) {
		atomic_store_explicit(&s->vstate[i], SEG_V_GOOD,
				      memory_order_relaxed);
		return SEG_V_GOOD;
	}
	if (data) {
		crc = crc32c(0, data, e->len);
	} else {
		ret = crc_range(s->log_fd, e->pos - s->base_byte, e->len, &crc);
		if (ret < 0)
			return ret;
	}
	st = crc == e->crc ? SEG_V_GOOD : SEG_V_BAD;
	atomic_store_explicit(&s->vstate[i], (uint8_t)st, memory_order_relaxed);
	return st == SEG_V_BAD ? SEG_V_NEWBAD : st;
}

/* ------------------------------------------------------------------ */
/* Dropping a damaged batch (fluxctl repair --drop-damaged)             */

/* Zero [off, off+len) of fd: punch a hole, else write zeros. */
static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const unsigned char zeros[65536];
	uint64_t n;
	int ret;

	ret = io_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			   len);
	if (ret == 0 || (ret != -EOPNOTSUPP && ret != -ENOSYS))
		return ret;
	while (len > 0) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		ret = io_pwrite_full(fd, zeros, (size_t)n, off);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* CRC-32C of len zero bytes. */
static uint32_t crc_zeros(uint64_t len)
{
	static const unsigned char zeros[4096];
	uint32_t crc = 0;
	uint64_t n;

	while (len > 0) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		crc = crc32c(crc, zeros, (size_t)n);
		len -= n;
	}
	return crc;
}

/* Mark entry i of an offline raw segment lost (see segment.h). */
int segment_mark_lost(int dirfd, uint64_t base_offset, uint32_t i)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES], *raw = NULL;
	struct layout_idx_header hd;
	struct seg_entry e, *all = NULL;
	uint64_t idx_size;
	uint32_t n, k, zcrc;
	struct stat st;
	char name[LAYOUT_NAME_MAX];
	int log_fd = -1, idx_fd = -1, ret;
	ssize_t got;

	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_LOG_SUFFIX);
	log_fd = io_openat(dirfd, name, O_RDWR, 0);
	if (log_fd < 0) {
		ret = log_fd == -ENOENT ? -EOPNOTSUPP : log_fd;
		goto out;
	}
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	idx_fd = io_openat(dirfd, name, O_RDWR, 0);
	if (idx_fd < 0) {
		ret = idx_fd;
		goto out;
	}
	got = io_pread_full(idx_fd, hdr, sizeof(hdr), 0);
	ret = got == (ssize_t)sizeof(hdr)
		      ? header_parse(hdr, base_offset, &hd)
		      : (got < 0 ? (int)got : -EINVAL);
	if (ret < 0)
		goto out;
	ret = io_fstat(idx_fd, &st);
	if (ret < 0)
		goto out;
	idx_size = (uint64_t)st.st_size;
	n = (uint32_t)((idx_size - LAYOUT_IDX_HEADER_BYTES) /
		       LAYOUT_ENTRY_BYTES);
	if (i >= n) {
		ret = -EINVAL;
		goto out;
	}
	all = malloc((size_t)n * sizeof(*all));
	raw = malloc((size_t)n * LAYOUT_ENTRY_BYTES);
	if (!all || !raw) {
		ret = -ENOMEM;
		goto out;
	}
	got = io_pread_full(idx_fd, raw, (size_t)n * LAYOUT_ENTRY_BYTES,
			    entry_at(0));
	if (got != (ssize_t)((size_t)n * LAYOUT_ENTRY_BYTES)) {
		ret = got < 0 ? (int)got : -EIO;
		goto out;
	}
	for (k = 0; k < n; k++)
		layout_entry_decode(raw + (size_t)k * LAYOUT_ENTRY_BYTES,
				    &all[k]);
	e = all[i];
	if (!layout_entry_intact(&e) || e.pos < hd.base_byte) {
		ret = -EINVAL;
		goto out;
	}
	/* The bytes first: an entry marked lost over bytes that are not
	 * zeros would hand readers garbage without a check. */
	ret = zero_range(log_fd, e.pos - hd.base_byte, e.len);
	if (ret == 0)
		ret = io_fdatasync(log_fd);
	if (ret < 0)
		goto out;
	zcrc = crc_zeros(e.len);
	if (!layout_entry_lost(&e) || e.crc != zcrc) {
		e.flags |= SEG_F_LOST;
		e.crc = zcrc;
		layout_entry_seal(&e);
		all[i] = e;
		ret = write_entries(idx_fd, &e, 1, entry_at(i));
		if (ret < 0)
			goto out;
	}
	/* Recounted from the entries, so a repair interrupted between the
	 * entry and the header is made whole by running it again. */
	hd.lost_msgs = hd.lost_bytes = 0;
	for (k = 0; k < n; k++) {
		if (layout_entry_intact(&all[k]) && layout_entry_lost(&all[k])) {
			hd.lost_msgs += all[k].count;
			hd.lost_bytes += all[k].len;
		}
	}
	layout_idx_header_encode(hdr, &hd);
	ret = io_pwrite_full(idx_fd, hdr, sizeof(hdr), 0);
	if (ret == 0)
		ret = io_fsync(idx_fd);
out:
	free(raw);
	free(all);
	if (idx_fd >= 0)
		io_close(idx_fd);
	if (log_fd >= 0)
		io_close(log_fd);
	return ret;
}
