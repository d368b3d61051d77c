/*
 * crc32c.h - CRC-32C (Castagnoli), as used on every batch.
 *
 * crc32c() picks, once: a 512-bit carry-less fold (AVX-512 with
 * VPCLMULQDQ) for buffers of 64 bytes and more, else the SSE4.2 crc32
 * instruction with several streams interleaved, else a slicing-by-8
 * table.  The crc32 and table paths are exposed so tests can check that
 * all three agree.
 * Known answer: crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef FLUXFS_CRC32C_H
#define FLUXFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over buf[0..len). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The two implementations crc32c() picks from, exported so the tests
 * compare them.  crc32c_hw only when crc32c_hw_available() says so. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
int crc32c_hw_available(void);

/* CRC-32C of buf extending crc, as crc32c(), and the number of bytes in
 * buf equal to byte added to *count.  Where crc32c_count_fused() says so
 * (AVX-512BW with VPCLMULQDQ) both come from one load of each 64 bytes,
 * the CRC's fold; elsewhere a byte loop after crc32c(), slower than a
 * vectorised count: callers with a count of their own use theirs then. */
uint32_t crc32c_count(uint32_t crc, const void *buf, size_t len,
		      unsigned char byte, size_t *count);
int crc32c_count_fused(void);

#endif
