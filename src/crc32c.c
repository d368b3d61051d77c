/*
 * crc32c.c - CRC-32C (Castagnoli polynomial 0x82F63B78, reflected).
 *
 * The hardware path runs the SSE4.2 crc32 instruction on three independent
 * streams at once: the instruction has a 3-cycle latency but issues every
 * cycle, so one stream leaves two thirds of the unit idle.  The three
 * partial CRCs are merged by shifting with precomputed GF(2) operators
 * (crc32c_shift), which costs a few dozen instructions per 3 blocks.  The
 * portable path is slicing-by-8.  The choice is made once, by cpuid.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

#define POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

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

/* x^(8*n) mod POLY in reflected form: the operator that appends n zero
 * bytes to a CRC register value. */
static uint32_t zeros_operator(size_t n)
{
	uint32_t result = 0x80000000u; /* x^0 */
	uint32_t square = 0x00800000u; /* x^8: one zero byte */

	while (n) {
		if (n & 1)
			result = gf2_multiply(result, square);
		square = gf2_multiply(square, square);
		n >>= 1;
	}
	return result;
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
#include <nmmintrin.h>

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
#else
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
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
		return crc32c_hw(crc, buf, len);
	return crc32c_sw(crc, buf, len);
}
