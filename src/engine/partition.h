/*
 * partition.h - one partition's log: ordered segments, append, read at a
 * byte offset, lookups, roll, flush, retention, compression, recovery.
 *
 * No FUSE here, and no calls up: a partition knows nothing of the
 * registry or the FUSE layer and calls nobody back; each function returns
 * what happened (where an append landed or why it was refused, what a
 * tick did, where a read must be copied) and the caller acts on it.
 *
 * A partition lives in its own directory (DATA_DIR/topic/partition/)
 * holding NNNNNNNNNNNNNNNNNNNN.log/.idx segments and partition.state.  Its bytes, concatenated, are exactly what was
 * appended; byte offsets are partition-global and never move.  Bytes below
 * start_byte (retention, delete_before, or a restore that began past 0)
 * are a hole that reads as zeros.
 *
 * Threads: appends (and flush, roll, retention, config changes) are
 * serialised on the partition; reads and lookups run concurrently with
 * them and with each other, and never see a batch before its index entry
 * is written.  A partition is safe to use from any thread.
 *
 * Time: every function that needs "now" takes it as an argument
 * (milliseconds since the epoch), so tests inject a clock.
 *
 * Errors: functions return 0 (or a count) or -errno.  A flush that cannot
 * write the partition's own metadata (partition.state, index entries,
 * which the partition regenerates) fails with that error and the next
 * flush writes them again: nothing is lost.  A flush whose fdatasync of
 * a .log fails cannot know what reached the disk (the kernel may have
 * dropped the pages, and a later fdatasync would succeed without them):
 * the bytes and messages it covered are recorded as a loss
 * (partition_lost()), that flush returns -EIO, and later flushes cover
 * only what was appended after it.  No failure is sticky: the partition
 * keeps serving once the disk works again.
 */
#ifndef FLUXFS_PARTITION_H
#define FLUXFS_PARTITION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "metrics.h"

struct partition;

/* What recovery did when a partition was opened. */
struct partition_recovery {
	uint64_t truncated_bytes;   /* torn .log tail removed */
	uint32_t dropped_entries;   /* .idx entries past the data */
	uint32_t rebuilt_indexes;   /* .idx rebuilt from the .log */
	uint32_t discarded_files;   /* leftover .tmp / half-compressed files */
	uint32_t bad_batches;       /* CRC failures found in sealed segments */
	uint32_t damaged_segments;  /* kept but partly unreadable, or skipped */
};

/* A range whose data flush failed: bytes [from_byte, to_byte), messages
 * [from_offset, to_offset). */
struct partition_loss {
	uint64_t from_byte, to_byte;
	uint64_t from_offset, to_offset;
};

struct partition_info {
	uint64_t start_offset;  /* first retained message offset */
	uint64_t next_offset;   /* offset the next message will get */
	uint64_t start_byte;    /* first retained byte (hole below it) */
	uint64_t end_byte;      /* byte offset of the end of the log = st_size */
	uint64_t disk_bytes;    /* bytes the segments occupy on disk */
	uint32_t segments;
	uint32_t descriptors;   /* held now: the directory, and each
				 * segment's .log and .idx while open */
	int64_t first_ts;       /* append time of the first retained message; -1 if none */
	int64_t last_ts;        /* append time of the last message; -1 if none */
	uint64_t flushed_byte;  /* everything below is on stable storage */
	uint64_t lost_messages; /* in batches dropped as damaged (holes */
	uint64_t lost_bytes;    /* inside the log), in retained segments */
	uint64_t losses; /* data flushes that failed (see partition_lost) */
	struct partition_loss last_loss; /* the latest, if losses > 0 */
};

/* A piece of a read that the caller can send without copying: bytes
 * [file_pos, file_pos+len) of descriptor fd.  fd == -1 means len zero
 * bytes (the retention hole); fd == PARTITION_RANGE_COPY means the read
 * reached a compressed segment there, and the len bytes from where the
 * ranges before it end are to be copied with partition_read_rest().  See
 * partition_read_ranges(). */
#define PARTITION_RANGE_COPY (-2)
struct partition_range {
	int fd;
	uint64_t file_pos;
	size_t len;
};

/* Create the directory dirfd/name and an empty partition in it. -EEXIST if
 * it exists. */
int partition_create(int dirfd, const char *name, const struct config *cfg,
		     int64_t now_ms, struct partition **out);
/* Open dirfd/name, running recovery (report in *rec if non-NULL).  A clean
 * partition opens without scanning its data.  Recovery removes only what
 * lies above the recovery point (never acknowledged) and redundant
 * leftovers; damage below it is kept, reported and read as EIO, confined
 * to its segment (doc/storage.md, "Recovery on open").  Every repair is
 * on stable storage before this returns. */
int partition_open(int dirfd, const char *name, const struct config *cfg,
		   int64_t now_ms, struct partition **out,
		   struct partition_recovery *rec);
/* Flush and release everything.  Returns the flush result; the partition
 * is freed either way. */
int partition_close(struct partition *p);
/* Release everything without flushing: the partition is being deleted,
 * and syncing data about to be unlinked would only delay the delete (a
 * 1 GiB partition: 0.5 s of fdatasync before the rm returned). */
void partition_discard(struct partition *p);

/* Append one batch of complete messages (count of them, the caller split
 * lines; the last may lack a newline when a writer closed mid-line).
 * count must equal the batch's lines, else -EINVAL (len 0 or count 0 too).
 * If expect_end != PARTITION_ANY_END the append fails with -EPERM unless
 * the log currently ends exactly there (compare-and-append); *byte_pos
 * (if non-NULL) then gets where the log does end, so a caller can decide
 * what to do without asking again.  On success *first_offset (if
 * non-NULL) gets the batch's first message offset and *byte_pos (if
 * non-NULL) the byte offset where it landed: the log now ends at
 * *byte_pos plus the batch's length.  The partition calls nobody back:
 * whoever appended wakes what must learn of it.
 * -EMSGSIZE if len exceeds what one batch may hold (see
 * PARTITION_MAX_BATCH); -ENOSPC / -EIO from the disk leave the log as it
 * was before the call (with flush_ms=0 a failed sync too).  -EROFS if
 * the active segment's .log could only be opened read-only (chattr +i):
 * the partition is served read-only.
 * Only the tests and engine_bench call this form; the daemon appends
 * with partition_appendv. */
#define PARTITION_ANY_END UINT64_MAX
#define PARTITION_MAX_BATCH (64u << 20)
int partition_append(struct partition *p, const void *buf, size_t len,
		     uint32_t count, int64_t now_ms, uint64_t expect_end,
		     uint64_t *first_offset, uint64_t *byte_pos);
/* The same for a batch given as iovcnt pieces (a handle's held partial
 * line and the write that completes it): the pieces go to disk with one
 * pwritev, never joined in memory.  count may be PARTITION_ANY_COUNT:
 * the engine then counts the batch's lines itself (newlines, plus one if
 * the batch does not end with one) in the scan it makes anyway, and the
 * caller need not scan for them.  -EMSGSIZE / -EINVAL as above. */
#define PARTITION_ANY_COUNT UINT32_MAX
int partition_appendv(struct partition *p, const struct iovec *iov, int iovcnt,
		      uint32_t count, int64_t now_ms, uint64_t expect_end,
		      uint64_t *first_offset, uint64_t *byte_pos);
/* Only on a log with no bytes and no messages yet: make it begin at
 * start_byte (a restore of a file whose head was a retention hole).
 * -EPERM otherwise. */
int partition_set_start_byte(struct partition *p, uint64_t start_byte);

/* Read up to len bytes at byte offset pos into buf.  Returns bytes read
 * (0 at or past the end), zeros for the hole.  -EIO if any byte of the
 * range is damaged (a batch whose CRC failed -- sealed segments are
 * checked when read --, a compressed block that does not decode, a range
 * lost with its segment): never a short count, which a caller would take
 * for the end of the log. */
ssize_t partition_read(struct partition *p, uint64_t pos, void *buf,
		       size_t len);
/* Zero-copy form: fill up to max ranges covering [pos, pos+len) (stopping
 * early at the end of the log or when ranges run out).  Compressed
 * segments, and sealed segments read through their mappings (which hold
 * no descriptor), cannot be described this way: the function stops
 * before them and says so with a last range of fd PARTITION_RANGE_COPY
 * (if there is room for it) covering the rest of the read; the caller copies what the
 * ranges left out with partition_read_rest().  Counted in the metrics as
 * one read, of the bytes the ranges cover.  Returns the number of ranges
 * (the copy marker included); the descriptors stay valid until
 * partition_read_ranges_done() is called (they pin the segments): call it
 * once after every non-negative return, even 0.  Entries not yet
 * CRC-checked are checked (read) first; any damaged byte in what the
 * ranges would cover fails the call with -EIO (and needs no _done). */
int partition_read_ranges(struct partition *p, uint64_t pos, size_t len,
			  struct partition_range *ranges, int max);
void partition_read_ranges_done(struct partition *p);
/* The rest of a read that partition_read_ranges() began, as
 * partition_read() reads it, counted as part of that read (its bytes, not
 * another read). */
ssize_t partition_read_rest(struct partition *p, uint64_t pos, void *buf,
			    size_t len);
/* lseek(SEEK_DATA) (hole 0) or SEEK_HOLE (hole 1) from pos: the
 * retention hole at the head and batches dropped as damaged (SEG_F_LOST)
 * are holes, the end of the log is the final hole.  0 and *out, or
 * -ENXIO when pos is at or past the end, or no data follows it. */
int partition_seek_hole(struct partition *p, uint64_t pos, int hole,
			uint64_t *out);

/* Message offset -> byte offset where that message starts (an index
 * search, then a scan of at most one chunk for the message's start).
 * -ENOENT if the offset is below start_offset or at/after next_offset. */
int partition_offset_to_byte(struct partition *p, uint64_t offset,
			     uint64_t *byte);
/* Message offset -> the index entry (chunk) holding it: the chunk's first
 * message offset and start byte, found by binary searches of the index
 * alone, no data read (Kafka's OffsetIndex.lookup returns the entry at or
 * below the target).  The message itself is at most SEG_CHUNK_BYTES
 * further (or starts the chunk).  -ENOENT as partition_offset_to_byte.
 * Only the tests and engine_bench call it. */
int partition_offset_to_chunk(struct partition *p, uint64_t offset,
			      uint64_t *chunk_offset, uint64_t *chunk_byte);
/* The index entry (chunk) holding message offset, whole: its first
 * message offset, start byte, append time (every message of a chunk was
 * appended at that time), message count and length.  A reader that
 * walks the log message by message with their times (the Kafka mirror)
 * reads [byte, byte+len) and splits it at newlines.  -ENOENT as
 * partition_offset_to_byte. */
struct partition_chunk {
	uint64_t offset;
	uint64_t byte;
	int64_t ts;
	uint32_t count;
	uint32_t len;
};
int partition_chunk_of(struct partition *p, uint64_t offset,
		       struct partition_chunk *out);
/* Byte offset -> the message containing it (its offset and start byte).
 * Only the tests and the recovery fuzzer call it. */
int partition_byte_to_offset(struct partition *p, uint64_t byte,
			     uint64_t *offset, uint64_t *msg_start);
/* First message with timestamp >= ts_ms: its offset and byte.  -ENOENT if
 * every message is older. */
int partition_time_to_offset(struct partition *p, int64_t ts_ms,
			     uint64_t *offset, uint64_t *byte);

/* fsync data, then index, then partition.state.  0, -EIO when data may
 * be lost (recorded, see above), or the error that kept metadata from
 * the disk (retried by the next flush). */
int partition_flush(struct partition *p);

/* What fsync does: make every append that returned before the call
 * durable, sharing one flush with every concurrent caller (group commit:
 * callers that arrive while a flush runs are covered by the next one).
 * Writes partition.state only when recovery needs the new recovery point
 * (after a roll).  Returns the result of the flush that covered the call,
 * as partition_flush. */
int partition_sync(struct partition *p);

/* How many losses were recorded since the partition was opened.  Only
 * the tests call it and partition_get_loss below; the daemon asks
 * partition_lost. */
uint64_t partition_losses(struct partition *p);
/* 1 and the first recorded loss overlapping bytes [from, to) in *out, or
 * 0 if none does. */
int partition_lost(struct partition *p, uint64_t from, uint64_t to,
		   struct partition_loss *out);
/* Loss number i (0 = first) in *out; -ENOENT past the last. */
int partition_get_loss(struct partition *p, uint64_t i,
		       struct partition_loss *out);
/* What one partition_tick() did, for the caller to log and act on. */
struct partition_tick_report {
	int flushed;		   /* flush_ms elapsed: a flush ran */
	int rolled;		   /* segment_ms rolled the active segment */
	uint32_t segments_deleted; /* by retention: the start moved */
};
/* Periodic work: flush if flush_ms elapsed, roll by segment_ms, apply
 * retention; what it did goes into *rep (if non-NULL), also when it
 * fails part way.  Cheap when there is nothing to do. */
int partition_tick(struct partition *p, int64_t now_ms,
		   struct partition_tick_report *rep);
/* Compress one sealed segment if the configuration asks for it and one is
 * waiting.  Runs the codec without blocking appends or reads; the swap is
 * atomic and crash-safe.  Returns 1 if it did work, 0 if none, -errno. */
int partition_compress_one(struct partition *p);
/* When partition_tick or partition_compress_one would next find work in
 * p if nothing is appended meanwhile (ms since the epoch; INT64_MAX:
 * never): the time roll of a non-empty active segment, retention by age
 * of the oldest sealed segment, and now-or-earlier (0) when retention by
 * size or compression has work already.  What a closed partition's owner
 * keeps to open it again only when there is something to do. */
int64_t partition_next_due(struct partition *p);

/* Delete whole sealed segments by retention_ms / retention_bytes. Returns
 * the number of segments removed.  Only the tests call it; partition_tick
 * applies retention itself. */
int partition_apply_retention(struct partition *p, int64_t now_ms);
/* Keep retention (by age and by size, in partition_tick and
 * partition_apply_retention) from deleting any segment holding message
 * offset or a later one: a reader that must see every message (the
 * Kafka exporter) holds its position.  PARTITION_NO_HOLD lifts the hold.
 * partition_delete_before, an explicit request, is not held. */
#define PARTITION_NO_HOLD UINT64_MAX
void partition_hold_retention(struct partition *p, uint64_t offset);
/* Advance the log start to the first message that ends after byte (Kafka's
 * delete-records); persisted atomically in partition.state. */
int partition_delete_before(struct partition *p, uint64_t byte);

void partition_get_info(struct partition *p, struct partition_info *info);
/* Replace the partition's effective configuration (validated by caller). */
int partition_set_config(struct partition *p, const struct config *cfg);
struct log_metrics *partition_metrics(struct partition *p);
/* Re-point the partition at a new directory name after its parent
 * renamed it (the partition holds a descriptor, so only names change). */
void partition_renamed(struct partition *p, int dirfd, const char *name);
/* The partition's directory descriptor (owned by the partition), for the
 * caller's own files beside the segments (partition.conf). */
int partition_dirfd(struct partition *p);

#endif
