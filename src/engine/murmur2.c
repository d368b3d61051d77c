/*
 * murmur2.c - Kafka's MurmurHash2 (see murmur2.h): written from the
 * algorithm's description, checked against the vectors of Kafka's and
 * librdkafka's own tests (tests/unit/check_murmur2.c).
 */
#include "murmur2.h"

#define MURMUR2_SEED 0x9747b28cu
#define MURMUR2_M 0x5bd1e995u
#define MURMUR2_R 24

uint32_t murmur2(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint32_t h = MURMUR2_SEED ^ (uint32_t)len, k;
	size_t words = len / 4, i;

	for (i = 0; i < words; i++, p += 4) {
		/* Little-endian on every host, as Java assembles it. */
		k = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		k *= MURMUR2_M;
		k ^= k >> MURMUR2_R;
		k *= MURMUR2_M;
		h *= MURMUR2_M;
		h ^= k;
	}
	switch (len & 3) {
	case 3:
		h ^= (uint32_t)p[2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)p[1] << 8;
		/* fall through */
	case 1:
		h ^= (uint32_t)p[0];
		h *= MURMUR2_M;
	}
	h ^= h >> 13;
	h *= MURMUR2_M;
	h ^= h >> 15;
	return h;
}
