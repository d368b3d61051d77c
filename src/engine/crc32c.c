/*
 * crc32c.c - CRC-32C (Castagnoli polynomial 0x82F63B78, reflected).
 *
 * Three paths, chosen once by cpuid.  With AVX-512 and VPCLMULQDQ the
 * buffer is folded 256 bytes at a time by carry-less multiplication in
 * four 512-bit accumulators: on the Zen 4 this was measured on that is
 * ~2.3x the crc32 instruction's rate on 4 KiB chunks (the 128- and 256-bit
 * folds were not faster than crc32, see doc/performance.md).  Running the
 * crc32 unit on three streams beside the fold, in the same loop, was
 * tried too and gained nothing over the fold alone, so it is not here.
 * Otherwise the SSE4.2 crc32 instruction runs on three independent
 * streams at once: it has a 3-cycle latency but issues every cycle, so one
 * stream leaves two thirds of the unit idle.  The three partial CRCs are
 * merged by shifting with precomputed GF(2) operators (crc32c_shift), which
 * costs a few dozen instructions per 3 blocks.  The portable path is
 * slicing-by-8.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

#define POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;
static int crc_vec;

/* Multiply a and b as polynomials modulo POLY (bit-reflected). */
static uint32_t gf2_multiply(uint32_t a, uint32_t b)
{
	uint32_t product = 0;
	int i;

	for (i = 0; i < 32; i++) {
		if (a & 0x80000000u)
			product ^= b;
		b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
		a <<= 1;
	}
	return product;
}

/* x^n mod POLY in reflected form. */
static uint32_t xpow_mod(uint64_t n)
{
	uint32_t result = 0x80000000u; /* x^0 */
	uint32_t square = 0x40000000u; /* x^1 */

	while (n) {
		if (n & 1)
			result = gf2_multiply(result, square);
		square = gf2_multiply(square, square);
		n >>= 1;
	}
	return result;
}

/* x^(8*n) mod POLY: the operator that appends n zero bytes to a CRC
 * register value. */
static uint32_t zeros_operator(size_t n)
{
	return xpow_mod(8 * (uint64_t)n);
}

static void crc_init(void)
{
	uint32_t c;
	int n, k;

	for (n = 0; n < 256; n++) {
		c = n;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		crc_table[0][n] = c;
	}
	for (n = 0; n < 256; n++) {
		c = crc_table[0][n];
		for (k = 1; k < 8; k++) {
			c = crc_table[0][c & 0xff] ^ (c >> 8);
			crc_table[k][n] = c;
		}
	}
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
	/* The fold's tail and finish use crc32 and 128-bit PCLMULQDQ. */
	crc_vec = crc_hw && __builtin_cpu_supports("pclmul") &&
		  __builtin_cpu_supports("avx512f") &&
		  __builtin_cpu_supports("avx512vl") &&
		  __builtin_cpu_supports("vpclmulqdq") &&
		  __builtin_cpu_supports("avx512bw") &&
		  __builtin_cpu_supports("popcnt");
#endif
}

/* Portable slicing-by-8. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t word;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		memcpy(&word, p, 8);
		word ^= crc;
		crc = crc_table[7][word & 0xff] ^
		      crc_table[6][(word >> 8) & 0xff] ^
		      crc_table[5][(word >> 16) & 0xff] ^
		      crc_table[4][(word >> 24) & 0xff] ^
		      crc_table[3][(word >> 32) & 0xff] ^
		      crc_table[2][(word >> 40) & 0xff] ^
		      crc_table[1][(word >> 48) & 0xff] ^
		      crc_table[0][word >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* Stripe sizes for the interleaved loop, largest first: a buffer is eaten
 * by as many rounds of 3 x STRIPE as fit, then the next size down, so a
 * 4 KiB chunk (the engine's index granularity) still runs mostly three
 * streams wide.  Each size has its precomputed merge operator. */
static const size_t stripes[] = { 8192, 1024, 256, 64 };
#define NSTRIPES (sizeof(stripes) / sizeof(stripes[0]))
/* shift_table[k][j][b] = (b << 8j) * x^(8 * stripes[k]) mod POLY: the
 * operator is linear, so shifting a CRC is four lookups, not a 32-step
 * polynomial multiply (which would cost more than a 4 KiB chunk's CRC). */
static uint32_t shift_table[NSTRIPES][4][256];
static pthread_once_t stripe_once = PTHREAD_ONCE_INIT;

/* Fold distances of the carry-less path, in bytes.  Folding a 128-bit lane
 * X (first 8 bytes lo, then hi) onto the lane D bytes further on adds
 * X * x^(8D), i.e. lo * x^(8D+64) + hi * x^(8D).  PCLMULQDQ of a 64-bit
 * reflected operand by a 32-bit reflected constant yields the product
 * times x^33 in the lane's own reflected form, hence the constants
 * x^(8D+31) (for lo) and x^(8D-33) (for hi) mod POLY.  Only equality mod
 * POLY matters: the lane is finally fed to the crc32 instruction. */
enum { FOLD16, FOLD32, FOLD64, FOLD128, FOLD256, NFOLDS };
static const unsigned fold_bytes[NFOLDS] = { 16, 32, 64, 128, 256 };
static uint32_t fold_k[NFOLDS][2];

static void stripe_init(void)
{
	uint32_t op;
	size_t k, j, b;

	for (k = 0; k < NSTRIPES; k++) {
		op = zeros_operator(stripes[k]);
		for (j = 0; j < 4; j++)
			for (b = 0; b < 256; b++)
				shift_table[k][j][b] =
					gf2_multiply((uint32_t)(b << (8 * j)), op);
	}
	for (k = 0; k < NFOLDS; k++) {
		fold_k[k][0] = xpow_mod(8 * fold_bytes[k] + 31);
		fold_k[k][1] = xpow_mod(8 * fold_bytes[k] - 33);
	}
}

static inline uint32_t shift_crc(size_t k, uint32_t crc)
{
	return shift_table[k][0][crc & 0xff] ^
	       shift_table[k][1][(crc >> 8) & 0xff] ^
	       shift_table[k][2][(crc >> 16) & 0xff] ^
	       shift_table[k][3][crc >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw_serial(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc, word;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		memcpy(&word, p, 8);
		c = _mm_crc32_u64(c, word);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}

/* Hardware CRC, three streams interleaved. */
__attribute__((target("sse4.2"))) uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c0, c1, c2, w0, w1, w2;
	size_t i, k, stripe;

	/* Too short for the smallest stripe: one stream, and none of the
	 * stripes' setup (an index entry, 44 bytes, is checked for every
	 * entry of every segment a partition opens). */
	if (len < 3 * stripes[NSTRIPES - 1])
		return ~crc_hw_serial(~crc, p, len);
	pthread_once(&stripe_once, stripe_init);
	c0 = ~crc;
	for (k = 0; k < NSTRIPES; k++) {
		stripe = stripes[k];
		while (len >= 3 * stripe) {
			c1 = 0;
			c2 = 0;
			for (i = 0; i < stripe; i += 8) {
				memcpy(&w0, p + i, 8);
				memcpy(&w1, p + stripe + i, 8);
				memcpy(&w2, p + 2 * stripe + i, 8);
				c0 = _mm_crc32_u64(c0, w0);
				c1 = _mm_crc32_u64(c1, w1);
				c2 = _mm_crc32_u64(c2, w2);
			}
			/* crc(A|B) = shift(crc(A), |B|) ^ crc0(B), with
			 * crc0 started from zero: merge in order. */
			c0 = shift_crc(k, (uint32_t)c0) ^ c1;
			c0 = shift_crc(k, (uint32_t)c0) ^ c2;
			p += 3 * stripe;
			len -= 3 * stripe;
		}
	}
	return ~crc_hw_serial((uint32_t)c0, p, len);
}

/* Below this the fold's fixed cost (load, reduce, finish) is not paid
 * back; measured. */
#define VEC_MIN 64
#define TARGET_VEC \
	__attribute__((target("sse4.2,pclmul,avx512f,avx512vl,vpclmulqdq")))

/* The constants for one fold distance, in every 128-bit lane. */
TARGET_VEC static inline __m512i fold_const512(int d)
{
	return _mm512_broadcast_i32x4(
		_mm_setr_epi32((int)fold_k[d][0], 0, (int)fold_k[d][1], 0));
}

/* Each lane of x carried over d bytes, xored into next (one vpternlog). */
TARGET_VEC static inline __m512i fold512(__m512i x, __m512i k, __m512i next)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
					 _mm512_clmulepi64_epi128(x, k, 0x11),
					 next, 0x96);
}

TARGET_VEC static inline __m256i fold256(__m256i x, int d, __m256i next)
{
	__m256i k = _mm256_broadcastsi128_si256(
		_mm_setr_epi32((int)fold_k[d][0], 0, (int)fold_k[d][1], 0));

	return _mm256_ternarylogic_epi64(_mm256_clmulepi64_epi128(x, k, 0x00),
					 _mm256_clmulepi64_epi128(x, k, 0x11),
					 next, 0x96);
}

TARGET_VEC static inline __m128i fold128(__m128i x, __m128i next)
{
	__m128i k = _mm_setr_epi32((int)fold_k[FOLD16][0], 0,
				   (int)fold_k[FOLD16][1], 0);

	return _mm_ternarylogic_epi64(_mm_clmulepi64_si128(x, k, 0x00),
				      _mm_clmulepi64_si128(x, k, 0x11), next,
				      0x96);
}

#define TARGET_VEC_BW \
	__attribute__((target("sse4.2,pclmul,avx512f,avx512vl,avx512bw," \
			      "vpclmulqdq,popcnt")))

/* Occurrences of b in the 64 bytes of v (AVX-512BW). */
TARGET_VEC_BW static inline size_t count64(__m512i v, __m512i b)
{
	return (size_t)_mm_popcnt_u64(_mm512_cmpeq_epi8_mask(v, b));
}

/* A 64-byte load, counted first when the fold also counts a byte:
 * every byte is loaded once, for both. */
#define LOAD64(q)                                                     \
	(tmp = _mm512_loadu_si512((const void *)(q)),                 \
	 count ? (void)(*n += count64(tmp, b)) : (void)0, tmp)

/* Carry-less folding, len >= VEC_MIN.  Four 512-bit accumulators keep the
 * multiplier busy across its latency; the starting CRC is xored into the
 * first four bytes, which is what the crc32 instruction does with its
 * register.  What is left is one 16-byte lane whose CRC from zero is the
 * CRC of everything folded, finished by crc32 with the last < 16 bytes.
 * With count (a constant: the compiler makes two functions of this one),
 * the occurrences of byte are added to *n from the same loads, and the
 * last < 64 bytes by one masked load. */
TARGET_VEC_BW static inline __attribute__((always_inline)) uint32_t
fold_body(uint32_t crc, const unsigned char *p, size_t len, int count,
	  unsigned char byte, size_t *n)
{
	const __m512i b = _mm512_set1_epi8((char)byte);
	__m512i x0, x1, x2, x3, k, tmp;
	__m256i y;
	__m128i z;
	uint64_t c, w;
	uint32_t w32;
	uint16_t w16;

	x0 = _mm512_xor_si512(
		LOAD64(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
	p += 64;
	len -= 64;
	if (len >= 192) {
		x1 = LOAD64(p);
		x2 = LOAD64(p + 64);
		x3 = LOAD64(p + 128);
		p += 192;
		len -= 192;
		k = fold_const512(FOLD256);
		while (len >= 256) {
			x0 = fold512(x0, k, LOAD64(p));
			x1 = fold512(x1, k, LOAD64(p + 64));
			x2 = fold512(x2, k, LOAD64(p + 128));
			x3 = fold512(x3, k, LOAD64(p + 192));
			p += 256;
			len -= 256;
		}
		k = fold_const512(FOLD128);
		x0 = fold512(x0, k, x2);
		x1 = fold512(x1, k, x3);
		x0 = fold512(x0, fold_const512(FOLD64), x1);
	}
	k = fold_const512(FOLD64);
	while (len >= 64) {
		x0 = fold512(x0, k, LOAD64(p));
		p += 64;
		len -= 64;
	}
	if (count && len)
		*n += count64(_mm512_maskz_loadu_epi8(
				      _cvtu64_mask64(~0ull >> (64 - len)), p),
			      b);
	/* 512 -> 256 -> 128 bits, then whole 16-byte lanes of the tail. */
	y = fold256(_mm512_castsi512_si256(x0), FOLD32,
		    _mm512_extracti64x4_epi64(x0, 1));
	z = fold128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
	while (len >= 16) {
		z = fold128(z, _mm_loadu_si128((const void *)p));
		p += 16;
		len -= 16;
	}
	c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(z));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(z, 1));
	/* At most four steps for the last 0..15 bytes, not a byte loop:
	 * every step adds its 3-cycle latency. */
	if (len & 8) {
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
	}
	if (len & 4) {
		memcpy(&w32, p, 4);
		c = _mm_crc32_u32((uint32_t)c, w32);
		p += 4;
	}
	if (len & 2) {
		memcpy(&w16, p, 2);
		c = _mm_crc32_u16((uint32_t)c, w16);
		p += 2;
	}
	if (len & 1)
		c = _mm_crc32_u8((uint32_t)c, *p);
	return ~(uint32_t)c;
}
#undef LOAD64

TARGET_VEC_BW static uint32_t crc_vec_fold(uint32_t crc, const unsigned char *p,
					   size_t len)
{
	return fold_body(crc, p, len, 0, 0, NULL);
}

TARGET_VEC_BW static uint32_t crc_vec_fold_count(uint32_t crc,
						 const unsigned char *p,
						 size_t len, unsigned char byte,
						 size_t *n)
{
	return fold_body(crc, p, len, 1, byte, n);
}

/* The fold when the CPU has it and the buffer is long enough, else the
 * three crc32 streams. */
static uint32_t crc32c_fast(uint32_t crc, const void *buf, size_t len)
{
	if (crc_vec && len >= VEC_MIN) {
		pthread_once(&stripe_once, stripe_init);
		return crc_vec_fold(crc, buf, len);
	}
	return crc32c_hw(crc, buf, len);
}

/* The fused fold, when the CPU has it and the buffer is long enough;
 * else 0 and nothing done. */
static int crc32c_count_vec(uint32_t *crc, const void *buf, size_t len,
			    unsigned char byte, size_t *count)
{
	if (!crc_vec || len < VEC_MIN)
		return 0;
	pthread_once(&stripe_once, stripe_init);
	*crc = crc_vec_fold_count(*crc, buf, len, byte, count);
	return 1;
}
#else
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
}

static uint32_t crc32c_fast(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_hw(crc, buf, len);
}

static int crc32c_count_vec(uint32_t *crc, const void *buf, size_t len,
			    unsigned char byte, size_t *count)
{
	(void)crc, (void)buf, (void)len, (void)byte, (void)count;
	return 0;
}
#endif

/* Non-zero when the CPU has the crc32 instruction. */
int crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_hw;
}

/* CRC-32C of buf, extending crc, on the fastest path this CPU has. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc32c_hw_available())
		return crc32c_fast(crc, buf, len);
	return crc32c_sw(crc, buf, len);
}

/* Non-zero when crc32c_count() makes one pass (see crc32c.h). */
int crc32c_count_fused(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_vec;
}

/* CRC-32C of buf extending crc, and the bytes equal to byte added to
 * *count. */
uint32_t crc32c_count(uint32_t crc, const void *buf, size_t len,
		      unsigned char byte, size_t *count)
{
	const unsigned char *p = buf;
	size_t i, n = 0;

	if (crc32c_count_fused() && crc32c_count_vec(&crc, buf, len, byte, count))
		return crc;
	for (i = 0; i < len; i++)
		n += p[i] == byte;
	*count += n;
	return crc32c(crc, buf, len);
}
