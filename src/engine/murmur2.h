/*
 * murmur2.h - Kafka's key hash: the 32-bit MurmurHash2 variant that the
 * Java client's DefaultPartitioner (Utils.murmur2) and librdkafka's
 * murmur2 partitioners use, and the partition it picks for a key.
 *
 * Bit for bit the Java one: seed 0x9747b28c, the 4-byte words read
 * little-endian whatever the host, the tail bytes taken as unsigned.
 * The partition is (murmur2(key) & 0x7fffffff) % partitions, Kafka's
 * Utils.toPositive() then the modulo, so a key lands where a Java or
 * librdkafka producer would put it.  Pure: no I/O, no state.
 */
#ifndef FLUXFS_MURMUR2_H
#define FLUXFS_MURMUR2_H

#include <stddef.h>
#include <stdint.h>

/* The hash of key[0..len) (an empty key hashes too: 0x106e08d9). */
uint32_t murmur2(const void *key, size_t len);
/* The partition of key among partitions (> 0) partitions. */
static inline uint32_t murmur2_partition(const void *key, size_t len,
					 uint32_t partitions)
{
	return (murmur2(key, len) & 0x7fffffffu) % partitions;
}

#endif
