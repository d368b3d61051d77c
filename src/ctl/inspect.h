/*
 * inspect.h - a read-only view of one partition directory on disk, for
 * fluxctl's offline commands (stat, dump, verify, seek, repair's plan).
 *
 * inspect_open() lists the segments of DATA_DIR/topic/partition and loads
 * each one's .idx entries, .blk block table and partition.state through
 * layout.h, the decoders the daemon uses.  It never repairs anything: files
 * are opened O_RDONLY, nothing is created, renamed or truncated, so it is
 * safe on a data directory a daemon is serving (the answer may then be a
 * little stale).  Damage is not an error here: it is recorded so that
 * inspect_verify() can report it.
 *
 * Memory: struct inspect_part owns everything below it; inspect_close()
 * frees it all.
 */
#ifndef FLUXFS_INSPECT_H
#define FLUXFS_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "layout.h"

/* One segment as found on disk. */
struct inspect_seg {
	uint64_t base_offset;   /* from the file name */
	uint64_t base_byte;     /* from the .idx header (0 if unreadable) */
	enum compression codec; /* COMPRESSION_NONE: a raw .log */
	char data_name[40];     /* NNN.log, NNN.lz4 or NNN.gz */
	int data_fd;            /* -1 if the data file is missing */
	uint64_t data_bytes;    /* size of the data file on disk */
	uint64_t raw_bytes;     /* bytes of log data (.blk raw length if
				 * compressed) */
	uint64_t idx_bytes;     /* size of the .idx (0 if missing) */
	int idx_ok;             /* .idx present with an intact header */
	int blk_ok;             /* compressed: .blk present and intact */
	struct seg_entry *ents; /* copy of the .idx entries */
	uint32_t nents;
	struct codec_block *blocks;
	uint32_t nblocks;
	/* the .idx header's count of SEG_F_LOST messages and bytes */
	uint64_t hdr_lost_msgs, hdr_lost_bytes;
};

/* partition.state as read from disk. */
struct inspect_state {
	int present;            /* the file exists */
	int ok;                 /* and parses */
	uint64_t start_offset, start_byte, first_base_byte, recovery_point;
};

struct inspect_part {
	int dfd;                /* the partition directory */
	struct inspect_seg *segs; /* oldest first */
	uint32_t nsegs;
	struct inspect_state state;
	uint32_t tmp_files;     /* leftover *.tmp a mount would discard */
	uint32_t quarantined;   /* files in quarantine/ (set aside by repair) */
	/* Derived: the retained log as a daemon would serve it. */
	uint64_t start_offset, next_offset, start_byte, end_byte;
	/* Known losses: intact entries flagged SEG_F_LOST (batches
	 * "fluxctl repair --drop-damaged" turned into holes).  Not damage. */
	uint64_t lost_entries, lost_messages, lost_bytes;
};

/* One problem found by inspect_verify(). */
struct inspect_problem {
	int32_t seg;            /* index into segs, -1 for the partition */
	int64_t entry;          /* entry index, -1 for the segment */
	uint64_t offset;        /* first message offset of the entry */
	uint64_t pos;           /* its byte position */
	uint32_t len;
	int data;               /* 1: the data is bad (CRC, decode), 0: a
				 * structural or index problem */
	char what[160];
};

/* Progress of inspect_verify(): bytes checked so far out of total. */
typedef void (*inspect_progress_fn)(void *arg, uint64_t done, uint64_t total);
/* Called for each problem found. */
typedef void (*inspect_problem_fn)(void *arg, const struct inspect_part *ip,
				   const struct inspect_problem *pr);

/* Is dirfd/name a partition directory (holds partition.state or segment
 * files)?  1, 0, or -errno. */
int inspect_is_partition(int dirfd, const char *name);
/* Read the partition directory dirfd/name.  -ENOENT if it is not one. */
int inspect_open(int dirfd, const char *name, struct inspect_part **out);
void inspect_close(struct inspect_part *ip);

/* Read len bytes of the partition at global byte pos from segment seg
 * (decoding compressed blocks).  Returns 0, -EIO on a decode failure or a
 * short file, or -errno. */
int inspect_read(const struct inspect_part *ip, uint32_t seg, uint64_t pos,
		 void *buf, size_t len);
/* Check everything: .idx headers and entry checksums, contiguity of
 * offsets and bytes inside and between segments, .idx against .log
 * length, every entry's CRC on its (decoded) bytes, every compressed
 * block, partition.state.  Returns the number of problems (0 clean) or
 * -errno if the check itself could not run. */
int inspect_verify(const struct inspect_part *ip, inspect_problem_fn report,
		   inspect_progress_fn progress, void *arg);
/* Total bytes inspect_verify() will read (for a progress bar). */
uint64_t inspect_verify_bytes(const struct inspect_part *ip);

/* Byte position where message offset starts: binary search of the
 * entries, then the newlines of the entry's bytes.  -ENOENT outside
 * [start_offset, next_offset). */
int inspect_offset_to_byte(const struct inspect_part *ip, uint64_t offset,
			   uint64_t *byte);
/* First message appended at or after ts_ms: its offset and byte.
 * -ENOENT if every message is older. */
int inspect_time_to_offset(const struct inspect_part *ip, int64_t ts_ms,
			   uint64_t *offset, uint64_t *byte);
/* Timestamps of the first retained and the last entry (-1 if none). */
void inspect_time_range(const struct inspect_part *ip, int64_t *first,
			int64_t *last);

#endif
