/*
 * segment_int.h - what segment.c (a segment in use) and
 * segment_recovery.c (opening an existing one and repairing it) share:
 * allocating a struct segment, writing the .idx header and entries, and
 * mapping the .idx and .log.  Only those two files include it; the rest
 * of fluxfs sees segment.h.
 */
#ifndef FLUXFS_SEGMENT_INT_H
#define FLUXFS_SEGMENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "segment.h"

/* Byte of the .idx where entry i starts. */
static inline uint64_t entry_at(uint64_t i)
{
	return LAYOUT_IDX_HEADER_BYTES + i * LAYOUT_ENTRY_BYTES;
}

/* A segment for base_offset, with no files open yet. */
struct segment *seg_alloc(uint64_t base_offset);

/* Build a header naming the segment (no losses: a fresh or empty one). */
void seg_header_fill(unsigned char *h, uint64_t base_offset,
		     uint64_t base_byte);

/* Write n entries at byte off of the .idx, encoded, in one pwrite. */
int seg_write_entries(int fd, const struct seg_entry *ents, uint32_t n,
		      uint64_t off);

/* Map the .idx to show cap entries, with a verification state each. */
int seg_map_entries(struct segment *s, uint32_t cap);

/* Undo seg_map_entries(). */
void seg_unmap_entries(struct segment *s);

/* Map the .log read-only (len bytes, may reach past EOF); NULL if the
 * file cannot be mapped: reads then fall back to pread. */
void *seg_map_log(int fd, size_t len);

#endif
