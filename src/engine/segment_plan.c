/*
 * segment_plan.c - where messages end: counting and skipping newlines
 * (vectorised where the CPU allows it, with portable forms), and cutting
 * a batch into chunk entries of at most SEG_CHUNK_BYTES at message
 * boundaries, each with its CRC.  Computation over memory only: no file
 * and no struct segment is touched here.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "crc32c.h"
#include "segment.h"

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
 * they are in cache: one pass where the CPU can fuse the two (each 64
 * bytes loaded once for the CRC's fold and the newline compare), else
 * the count then the CRC over the same chunk. */
static size_t pieces_scan(const struct pieces *b, size_t a, size_t e, int count,
			  uint32_t *crc)
{
	size_t o = 0, ps, pe, lo, hi, n = 0;
	const char *base;
	int i, fused = count && crc32c_count_fused();

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
		if (fused) {
			*crc = crc32c_count(*crc, base + lo, hi - lo, '\n', &n);
			continue;
		}
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
