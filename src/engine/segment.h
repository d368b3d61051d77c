/*
 * segment.h - one segment: a .log of raw bytes and an .idx batch table.
 *
 * A segment is named by the offset of its first message (%020llu).  The
 * .log holds the partition's bytes exactly; once sealed it may be replaced
 * by a compressed file (.lz4 / .gz) plus a .blk block table.  The .idx is
 * a header and fixed-size entries (their encoding is layout.h's), each
 * entry written after its bytes.  A large
 * write is cut at message boundaries into chunks of at most
 * SEG_CHUNK_BYTES (one message may exceed it), each with its own entry and
 * CRC, so a lookup by message offset scans at most one chunk.  See
 * doc/storage.md for the layout.
 *
 * Only partition.c uses this module.  Concurrency: the entry table is
 * mmapped read-only; readers look only at the first `nentries` entries
 * (published with release order after the entry is on disk).  The mapping
 * is replaced (segment_map_grow) only under the partition's segment lock
 * held for writing.  Everything else that changes a segment is done by the
 * partition's appender under its append lock.
 */
#ifndef FLUXFS_SEGMENT_H
#define FLUXFS_SEGMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "codec.h"
#include "config.h"
#include "layout.h"

#define SEG_CHUNK_BYTES 4096
/* Read raw segments through a read-only mapping of the .log (lookups
 * scan a chunk and small reads copy without a syscall).  0: pread only.
 * Trade-off in doc/storage.md: a media error while copying from the
 * mapping raises SIGBUS instead of returning EIO. */
#ifndef SEG_MAP_LOG
#define SEG_MAP_LOG 1
#endif

/* Per-entry verification state (lazy CRC check on first read). */
enum { SEG_V_UNKNOWN = 0, SEG_V_GOOD = 1, SEG_V_BAD = 2 };
/* Returned (never stored) when a check has just found a bad CRC. */
#define SEG_V_NEWBAD 3

struct segment {
	uint64_t id; /* unique per process: keys the block cache */
	uint64_t base_offset;
	uint64_t base_byte;
	int log_fd; /* .log, or the compressed file */
	int idx_fd;
	enum compression codec;	    /* COMPRESSION_NONE for a raw .log */
	struct codec_block *blocks; /* block table when compressed */
	uint32_t nblocks;
	void *map;	 /* read-only mapping of the .idx */
	void *lmap;	 /* read-only mapping of a raw .log, or NULL */
	size_t lmap_len; /* may reach past EOF: only published bytes
			  * are ever touched */
	void *cmap;	 /* read-only mapping of a compressed file whole,
			  * or NULL (then blocks are pread from log_fd) */
	size_t cmap_len;
	size_t map_len;
	uint32_t map_cap;	   /* entries the mapping can show */
	_Atomic uint8_t *vstate;   /* map_cap SEG_V_* bytes */
	_Atomic uint32_t nentries; /* published entries */
	_Atomic uint64_t end_byte; /* partition-global end of published data */
	uint64_t next_offset;	   /* after the last published message */
	uint64_t disk_bytes; /* size of the data file (compressed or raw) */
	int sealed;	     /* no more appends */
	int synced;	     /* data and index known on stable storage */
	int busy;	     /* being compressed */
	int nocompress;	     /* compression refused (bad CRC found) */
	atomic_int log_short; /* the .log held less than its entries at open
			       * (damage kept below the recovery point):
			       * the mapping is not read, since touching a
			       * page past the file's end raises SIGBUS,
			       * until an append extends the file */
	int stale_tail;	     /* a failed append's bytes or entries may be
			      * left past the end: cutting them back failed
			      * (segment_cut_tail) */
	_Atomic uint64_t log_sync_lost; /* the .log's sync after a cut-back
					 * failed: unflushed appends below
					 * this byte may be lost (the next
					 * flush says so); 0: none */
	uint64_t lost_msgs;  /* in SEG_F_LOST entries (from the header) */
	uint64_t lost_bytes;
	int readonly;	     /* the raw .log could be opened read-only only
			      * (chattr +i, a read-only file): no appends */
};

/* What segment_open() repaired. */
struct seg_report {
	uint64_t truncated_bytes;
	uint32_t dropped_entries;
	uint32_t rebuilt;
	uint32_t bad_entries;
	uint64_t ignored_bytes; /* past the last entry of a sealed .log */
	int cut; /* the segment was cut short: drop later ones */
};

/* Entry i of the mapped .idx, decoded (the mapping holds the
 * little-endian encoding, see layout.h). */
static inline struct seg_entry segment_entry(const struct segment *s,
					     uint32_t i)
{
	struct seg_entry e;

	layout_entry_decode((const char *)s->map + LAYOUT_IDX_HEADER_BYTES +
				    (size_t)i * LAYOUT_ENTRY_BYTES,
			    &e);
	return e;
}

/* Create empty NNN.log and NNN.idx in dirfd. */
int segment_create(int dirfd, uint64_t base_offset, uint64_t base_byte,
		   struct segment **out);
/* Open an existing segment.  base_byte is the expected start (the end of
 * the segment before; used when the .idx must be rebuilt).  Entries whose
 * data ends above verify_from are checked (CRC, contiguity) and the
 * segment is cut after the last good one; below it only the last entry is
 * checked.  A missing or damaged .idx is rebuilt from the .log's lines,
 * keeping only bytes below trust_until (the flushed point; UINT64_MAX
 * when unknown).  Every cut is fdatasync'd before the call returns.
 *
 * sealed: a segment with later ones after it.  Below trust_until
 * (flushed, so what is wrong there is damage on the disk, not a torn
 * write) it is never cut: an entry with a bad CRC, or one past the end of
 * a .log that is too short, is marked bad (reads of it fail with EIO; the
 * count lands in rep->bad_entries), and bytes past the last entry are
 * ignored and left on disk (rep->ignored_bytes).  Bad bytes above
 * trust_until are a torn write and are cut, as is a structurally broken
 * index.
 *
 * compressed: open NNN<suffix> and NNN.blk instead; a damaged or missing
 * .blk is rebuilt from the frame (counted in rep->rebuilt).  A raw .log
 * that cannot be opened for writing (EPERM, EACCES, EROFS) is opened
 * read-only and s->readonly set; if it then needs a repair that writes,
 * the open fails. */
int segment_open(int dirfd, uint64_t base_offset, uint64_t base_byte,
		 uint64_t verify_from, uint64_t trust_until, int sealed,
		 enum compression compressed, struct segment **out,
		 struct seg_report *rep);
/* Close descriptors, unmap, free. */
void segment_free(struct segment *s);
/* Remove the segment's files from dirfd (any of them may be missing). */
int segment_unlink(int dirfd, uint64_t base_offset);

/* Cut a batch of messages into chunk entries (into ents, room for
 * segment_plan_max(len)); returns the number of entries and the message
 * count in *msgs.  segment_plan is the one-buffer form, for the tests;
 * partition.c plans with segment_planv. */
size_t segment_plan_max(size_t len);
uint32_t segment_plan(const void *buf, size_t len, uint64_t first_offset,
		      uint64_t pos, int64_t ts, struct seg_entry *ents,
		      uint32_t *msgs);
/* The same for a batch of len bytes given as iovcnt pieces (a held
 * partial line and the write that completes it), without joining them.
 * The message count is the batch's newlines, plus one if it does not end
 * with a newline.  Same cuts, counts and CRCs as segment_plan() of the
 * joined bytes. */
uint32_t segment_planv(const struct iovec *iov, int iovcnt, size_t len,
		       uint64_t first_offset, uint64_t pos, int64_t ts,
		       struct seg_entry *ents, uint32_t *msgs);
/* Newlines in buf[0..len): vectorised where the compiler targets SSE2,
 * else the portable counter; the portable one is exported so tests can
 * compare the two. */
size_t segment_count_nl(const void *buf, size_t len);
size_t segment_count_nl_portable(const void *buf, size_t len);
/* Pointer just past the k-th newline of buf[0..len) (buf itself when k is
 * 0), or NULL if there are fewer: vectorised, and the portable form (for
 * the tests, as above). */
const void *segment_skip_nl(const void *buf, size_t len, uint64_t k);
const void *segment_skip_nl_portable(const void *buf, size_t len, uint64_t k);
/* Make the mappings show at least need entries and log_bytes of the raw
 * .log; takes lock (if non-NULL) for writing around the swap. */
int segment_map_grow(struct segment *s, uint32_t need, uint64_t log_bytes,
		     pthread_rwlock_t *lock);
/* Unmap the raw .log (caller holds the segment lock for writing). */
void segment_unmap_log(struct segment *s);
/* Appending is three steps, so that a caller can make the batch durable
 * between writing and publishing it: segment_writev writes the batch's
 * len bytes (given as pieces: one pwritev), then its n entries (one
 * pwrite each), without publishing them (on failure both files are cut
 * back and nothing is published); then either segment_publish (with synced
 * set when both files were synced after the write) or segment_unwrite,
 * which cuts them back durably (0, or the error: the cut is then retried
 * by segment_cut_tail).  The caller holds the segment against other
 * appends from the write to the publish or unwrite. */
int segment_writev(struct segment *s, const struct iovec *iov, int iovcnt,
		   size_t len, const struct seg_entry *ents, uint32_t n);
void segment_publish(struct segment *s, size_t len,
		     const struct seg_entry *ents, uint32_t n, int synced);
int segment_unwrite(struct segment *s);
/* segment_writev of one contiguous batch, then segment_publish (not
 * synced): for the tests. */
int segment_append(struct segment *s, const void *buf, size_t len,
		   const struct seg_entry *ents, uint32_t n);
/* Cut the files back to what the segment publishes, if a failed
 * append could not (stale_tail): 0, or the error, and the append, roll
 * or flush that needed it fails.  Otherwise a shorter append would leave
 * the failed one's later index entries (whole, with good CRCs) past its
 * own, and once sealed the segment would claim offsets the next one
 * holds. */
int segment_cut_tail(struct segment *s);
/* Write the .idx's header and published entries again from the mapping:
 * after a failed fdatasync of the .idx the kernel may have marked its
 * pages clean without writing them, so a later fdatasync alone would not
 * store them.  The caller serialises it with appends. */
int segment_rewrite_index(struct segment *s);
/* Give the last entry k more messages (written and synced): a rebuilt
 * index merged k messages that ended without a newline, and the next
 * segment's first offset says so.  -EINVAL if there is no entry. */
int segment_add_messages(struct segment *s, uint64_t k);
/* Rewrite the header of an empty segment with a new base byte. */
int segment_set_base_byte(struct segment *s, uint64_t base_byte);

/* Lookups over the first n entries (interpolation, then binary
 * searches; time: binary search).  Return the index
 * of the entry containing offset / byte, or -1; time: the first entry
 * with ts >= ts_ms, or n. */
long segment_find_offset(const struct segment *s, uint32_t n, uint64_t off);
long segment_find_byte(const struct segment *s, uint32_t n, uint64_t pos);
long segment_find_time(const struct segment *s, uint32_t n, int64_t ts_ms);

/* Offline only (no daemon may hold the segment open): turn entry i of
 * the raw segment base_offset in dirfd into a hole inside the log.  The
 * entry's bytes are zeroed (hole punched, else zeros written) and synced,
 * then the entry gets SEG_F_LOST, the CRC of the zeros and a fresh entry
 * checksum, and the header's lost counters are recounted from the
 * entries; the .idx is synced before returning.  Idempotent.  -EINVAL if
 * i is not an intact entry, -EOPNOTSUPP for a compressed segment. */
int segment_mark_lost(int dirfd, uint64_t base_offset, uint32_t i);

/* Map the compressed file of s whole from s->log_fd (its file never
 * changes once written), so its blocks decode without the descriptor;
 * left unmapped (reads pread) if it cannot be.  The caller holds the
 * segment lock for writing, or owns s alone. */
void segment_map_compressed(struct segment *s);
/* Read raw bytes of a raw segment at partition-global pos. */
ssize_t segment_pread(const struct segment *s, void *buf, size_t len,
		      uint64_t pos);
/* Copy partition-global bytes [pos, pos+len) of compressed segment s,
 * decoding through cache.  Returns 0 or -errno.  A block that does not
 * decode is damage, like a bad CRC: -EIO, and its entries are marked bad
 * so later reads fail at once; if this call marked the first of them,
 * *bad_from and *bad_to get the block's bytes (for the caller to count
 * and report once), else they are left alone. */
int segment_read_compressed(struct segment *s, struct codec_cache *cache,
			    uint64_t pos, void *buf, size_t len,
			    uint64_t *bad_from, uint64_t *bad_to);
/* Published bytes [pos, pos+len) in place, or NULL if not mapped. */
const void *segment_peek(const struct segment *s, uint64_t pos, size_t len);
/* CRC-check entry i (reads its bytes from a raw segment); caches the
 * result.  Returns SEG_V_GOOD, SEG_V_BAD, SEG_V_NEWBAD (bad, found by
 * this call) or -errno.  Compressed segments were checked before being
 * compressed and always report SEG_V_GOOD. */
int segment_verify_entry(struct segment *s, uint32_t i, const void *data);
#endif
