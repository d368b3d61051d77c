/*
 * layout.h - what every byte on disk means: the names of the files and
 * directories in a data directory, the magics and versions, and the
 * encoding of the .idx header and entries, the .blk block table,
 * partition.state and fluxfs.meta.  The daemon (segment, partition,
 * registry) and fluxctl (inspect, ctl_*) both read and write the format
 * through this module only; doc/storage.md describes it for people.
 *
 * Byte order: every multi-byte integer on disk is little-endian, written
 * and read by the le*_put/le*_get helpers below, never by copying a host
 * struct.  In memory, struct seg_entry and the structs here are host
 * order; the encode/decode functions convert.
 *
 * Layering: this is the bottom of the engine.  It may use io.h, crc32c.h,
 * codec.h (enum compression, struct codec_block) and diag.h, and nothing
 * above them: no FUSE, no registry or partition state.  Functions return 0
 * or -errno; decoders return -EINVAL for bytes that do not hold what they
 * should (bad magic, checksum or size) and -EPROTONOSUPPORT for a version
 * this code does not read.
 */
#ifndef FLUXFS_LAYOUT_H
#define FLUXFS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"

/* ---- byte order ------------------------------------------------------- */

static inline void le32_put(void *p, uint32_t v)
{
	unsigned char *b = p;

	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
	b[2] = (unsigned char)(v >> 16);
	b[3] = (unsigned char)(v >> 24);
}

static inline void le64_put(void *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put((unsigned char *)p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t le32_get(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static inline uint64_t le64_get(const void *p)
{
	return (uint64_t)le32_get(p) |
	       (uint64_t)le32_get((const unsigned char *)p + 4) << 32;
}

/* ---- names ------------------------------------------------------------ */

/* In the data directory. */
#define LAYOUT_META_FILE "fluxfs.meta"	/* "format=N" */
#define LAYOUT_LOCK_FILE ".fluxfs.lock" /* flock'd by the serving daemon */
#define LAYOUT_TRASH_DIR ".trash"	/* partitions removed while open */
/* Present only between a clean unmount and the next mount: every
 * partition was flushed and closed, so each partition.state's recovery
 * point is its log's end. */
#define LAYOUT_CLEAN_FILE ".fluxfs.clean"
/* Batches dropped by "fluxctl repair --drop-damaged", under
 * .quarantine/TOPIC/PARTITION/: a dot-name, since a plain directory at
 * the root would be a topic. */
#define LAYOUT_BATCH_QUARANTINE ".quarantine"
/* In a topic directory. */
#define LAYOUT_TOPIC_CONF "topic.conf"
#define LAYOUT_TOPIC_META "topic.meta"
#define LAYOUT_TOPIC_PRODUCE "produce.conf" /* keyed producing (produce.h) */
/* In a partition directory. */
#define LAYOUT_PART_CONF "partition.conf"
#define LAYOUT_PART_META "partition.meta"
#define LAYOUT_STATE_FILE "partition.state"
/* Whole segments "fluxctl repair" moved out of the log. */
#define LAYOUT_SEG_QUARANTINE "quarantine"
/* Written then renamed: a leftover one is deleted on open. */
#define LAYOUT_TMP_SUFFIX ".tmp"

/* Segment files: the base offset in 20 digits, then a suffix. */
#define LAYOUT_NAME_DIGITS 20
#define LAYOUT_LOG_SUFFIX ".log"
#define LAYOUT_IDX_SUFFIX ".idx"
#define LAYOUT_BLK_SUFFIX ".blk"
#define LAYOUT_LZ4_SUFFIX ".lz4"
#define LAYOUT_GZ_SUFFIX ".gz"
#define LAYOUT_ZST_SUFFIX ".zst"
/* Room for any segment file name, with a ".tmp" or two. */
#define LAYOUT_NAME_MAX 48

enum layout_file {
	LAYOUT_FILE_LOG,
	LAYOUT_FILE_IDX,
	LAYOUT_FILE_BLK,
	LAYOUT_FILE_LZ4,
	LAYOUT_FILE_GZ,
	LAYOUT_FILE_ZST,
	LAYOUT_FILE_TMP, /* any name ending in .tmp */
};

/* "%020llu" + suffix into buf (LAYOUT_NAME_MAX bytes is enough). */
void layout_seg_name(char *buf, size_t size, uint64_t base_offset,
		     const char *suffix);
/* Suffix of a segment's data file: ".log", ".lz4", ".gz" or
 * ".zst". */
const char *layout_data_suffix(enum compression c);
/* The codec a data file suffix names, or -1 for .idx/.blk/.tmp. */
int layout_file_codec(enum layout_file kind);
/* Parse a name in a partition directory: a segment file (exactly 20
 * digits that fit in 64 bits, then one of the suffixes above; *base set)
 * or a .tmp leftover.  0, or -EINVAL for any other name. */
int layout_parse_name(const char *name, uint64_t *base, enum layout_file *kind);
/* Called by layout_scan() for each segment file and .tmp leftover (base
 * is 0 for those); a non-zero return stops the scan and is returned. */
typedef int (*layout_scan_fn)(void *arg, const char *name, uint64_t base,
			      enum layout_file kind);
/* Name of a dropped batch's copy under .quarantine/TOPIC/PARTITION/:
 * segment base offset, partition-global byte position, length. */
void layout_batch_name(char *buf, size_t size, uint64_t base_offset,
		       uint64_t pos, uint32_t len);
/* Walk the partition directory dfd; other names are skipped.  0, fn's
 * non-zero return, or -errno when the listing fails (never taken for
 * its end, so half a directory does not pass for all of it). */
int layout_scan(int dfd, layout_scan_fn fn, void *arg);

/* ---- .idx: header and entries ------------------------------------------ */

#define LAYOUT_IDX_MAGIC "FLUXIDX1"
/* 1: host byte order (little-endian hosts only); 2: little-endian on
 * every host.  The bytes are the same on a little-endian host, so both
 * are read alike. */
#define LAYOUT_IDX_VERSION 2
#define LAYOUT_IDX_VERSION_MIN 1
#define LAYOUT_IDX_HEADER_BYTES 64
#define LAYOUT_ENTRY_BYTES 48
/* The entry's bytes the entry checksum covers. */
#define LAYOUT_ENTRY_CRC_BYTES 44

/* The entry continues the same write() as the entry before it. */
#define SEG_F_CONT 0x1u
/* The entry ends its write(): recovery never keeps half a write. */
#define SEG_F_LAST 0x2u
/* The entry's bytes were damaged and dropped by "fluxctl repair
 * --drop-damaged": they are zeros on disk (a hole inside the log), crc is
 * the CRC-32C of those zeros, and its messages count as lost.  Readers
 * get the zeros without a CRC check; offsets and positions stay. */
#define SEG_F_LOST 0x4u

/* The .idx header, decoded. */
struct layout_idx_header {
	uint32_t version;     /* as read; encode always writes the current */
	uint64_t base_offset; /* first message offset of the segment */
	uint64_t base_byte;   /* partition-global byte of its first byte */
	/* messages and bytes of the SEG_F_LOST entries (zero in segments
	 * that never lost anything) */
	uint64_t lost_msgs, lost_bytes;
};

/* One .idx entry, decoded (host order).  On disk: these fields in this
 * order, little-endian, 48 bytes. */
struct seg_entry {
	uint64_t offset; /* first message offset */
	uint64_t pos;	 /* partition-global byte position */
	int64_t ts;	 /* append time, ms since the epoch */
	uint32_t count;	 /* messages in the entry */
	uint32_t len;	 /* bytes */
	uint32_t crc;	 /* CRC-32C of the entry's bytes */
	uint32_t flags;	 /* SEG_F_* */
	uint32_t reserved;
	uint32_t ecrc; /* CRC-32C of the 44 bytes above: a torn entry shows */
};

/* Write the header into buf (LAYOUT_IDX_HEADER_BYTES), current version,
 * with its checksum. */
void layout_idx_header_encode(void *buf, const struct layout_idx_header *h);
/* Read and check a header: magic, version, entry size, checksum. */
int layout_idx_header_decode(const void *buf, struct layout_idx_header *h);

/* Set reserved to 0 and ecrc to the checksum of the encoded entry. */
void layout_entry_seal(struct seg_entry *e);
/* Field positions of an entry; the codec below is inline because
 * lookups decode entries straight from the mapped .idx. */
#define LAYOUT_ENT_OFFSET 0
#define LAYOUT_ENT_POS 8
#define LAYOUT_ENT_TS 16
#define LAYOUT_ENT_COUNT 24
#define LAYOUT_ENT_LEN 28
#define LAYOUT_ENT_CRC 32
#define LAYOUT_ENT_FLAGS 36
#define LAYOUT_ENT_RESERVED 40
#define LAYOUT_ENT_ECRC 44

/* Encode e (as it is, ecrc included) into buf (LAYOUT_ENTRY_BYTES). */
static inline void layout_entry_encode(void *buf, const struct seg_entry *e)
{
	unsigned char *b = buf;

	le64_put(b + LAYOUT_ENT_OFFSET, e->offset);
	le64_put(b + LAYOUT_ENT_POS, e->pos);
	le64_put(b + LAYOUT_ENT_TS, (uint64_t)e->ts);
	le32_put(b + LAYOUT_ENT_COUNT, e->count);
	le32_put(b + LAYOUT_ENT_LEN, e->len);
	le32_put(b + LAYOUT_ENT_CRC, e->crc);
	le32_put(b + LAYOUT_ENT_FLAGS, e->flags);
	le32_put(b + LAYOUT_ENT_RESERVED, e->reserved);
	le32_put(b + LAYOUT_ENT_ECRC, e->ecrc);
}

/* Decode buf into e; nothing is checked (see layout_entry_intact). */
static inline void layout_entry_decode(const void *buf, struct seg_entry *e)
{
	const unsigned char *b = buf;

	e->offset = le64_get(b + LAYOUT_ENT_OFFSET);
	e->pos = le64_get(b + LAYOUT_ENT_POS);
	e->ts = (int64_t)le64_get(b + LAYOUT_ENT_TS);
	e->count = le32_get(b + LAYOUT_ENT_COUNT);
	e->len = le32_get(b + LAYOUT_ENT_LEN);
	e->crc = le32_get(b + LAYOUT_ENT_CRC);
	e->flags = le32_get(b + LAYOUT_ENT_FLAGS);
	e->reserved = le32_get(b + LAYOUT_ENT_RESERVED);
	e->ecrc = le32_get(b + LAYOUT_ENT_ECRC);
}

/* Is e whole: ecrc matches its encoding, len and count are not zero? */
int layout_entry_intact(const struct seg_entry *e);
/* The same for an entry still encoded (LAYOUT_ENTRY_BYTES at buf):
 * decoding loses nothing, so the checksum is taken over buf itself,
 * without decoding and encoding again (the index check at open runs it
 * over every entry). */
int layout_entry_intact_raw(const void *buf);
/* Is e a batch dropped as damaged (SEG_F_LOST)? */
static inline int layout_entry_lost(const struct seg_entry *e)
{
	return (e->flags & SEG_F_LOST) != 0;
}

/* Read NNN.idx from dfd whole: *size gets its length (0 if missing).
 * 0 with the header and the *n whole entries decoded into *ents
 * (malloc'd, NULL when none; a torn last entry is left out); -EINVAL if
 * the header is damaged or names another base offset; or -errno. */
int layout_idx_load(int dfd, uint64_t base_offset, struct layout_idx_header *h,
		    struct seg_entry **ents, uint32_t *n, uint64_t *size);

/* ---- .blk: the block table of a compressed segment ---------------------- */

#define LAYOUT_BLK_MAGIC "FLUXBLK1"
/* Bytes of a table of n blocks. */
size_t layout_blk_size(uint32_t n);
/* Encode into buf (layout_blk_size(n) bytes): magic, codec, count, raw
 * length, 24-byte entries, CRC-32C of all before it. */
void layout_blk_encode(void *buf, enum compression c, uint64_t raw_len,
		       const struct codec_block *b, uint32_t n);
/* Decode and check len bytes for codec c; *out is malloc'd (at least one
 * element even when *n is 0). */
int layout_blk_decode(const void *buf, size_t len, enum compression c,
		      uint64_t *raw_len, struct codec_block **out, uint32_t *n);
/* Read NNN.blk from dfd and decode it: 0, -EIO if damaged, or -errno. */
int layout_blk_load(int dfd, uint64_t base_offset, enum compression c,
		    uint64_t *raw_len, struct codec_block **out, uint32_t *n);
/* Write NNN.blk atomically (tmp, fsync, rename, fsync dir). */
int layout_blk_store(int dfd, uint64_t base_offset, enum compression c,
		     uint64_t raw_len, const struct codec_block *b, uint32_t n);

/* ---- partition.state ---------------------------------------------------- */

#define LAYOUT_STATE_MAGIC "fluxfs-partition-state"
#define LAYOUT_STATE_VERSION 1
/* Text, so byte order does not arise. */
struct layout_state {
	uint64_t start_offset;	  /* first retained message */
	uint64_t start_byte;	  /* first retained byte */
	uint64_t first_base_byte; /* base byte of the first segment */
	uint64_t recovery_point;  /* every byte below is flushed */
};

/* Text of st into buf; its length (size 256 is always enough). */
int layout_state_encode(char *buf, size_t size, const struct layout_state *st);
int layout_state_decode(const char *buf, size_t len, struct layout_state *st);
/* Read partition.state from dfd: 0, -ENOENT, -EINVAL if damaged. */
int layout_state_load(int dfd, struct layout_state *st);
/* Write it atomically (tmp, fsync, rename, fsync dir). */
int layout_state_store(int dfd, const struct layout_state *st);

/* ---- mirror.pos and mirror.conf (the daemon's Kafka mirror) ------------ */

/* A partition mirrored to or from Kafka keeps its position in its
 * directory.  An export: mirror.pos, one text line
 *   "fluxfs-mirror-pos 1 SEQ LB LA RB RA CRC\n"
 * with CRC the CRC-32C of the line before " CRC", the next local message
 * offset to produce in LA (LB = LA), written atomically (rename), and
 * with SEQ 1 (LAYOUT_MIRROR_POS_REMOTE) the Kafka offset the message at
 * LA gets in RA (RB = RA): Kafka's end when everything below LA was
 * acknowledged (SEQ, RB and RA 0 when unknown, and in files written
 * before they were stored).  An import: mirror.intent, two 256-byte slots each holding
 * such a line (zero-padded), written in turn (slot SEQ % 2) with one
 * pwrite and fdatasync before each append: the local next offset and the
 * Kafka offset to consume next both before the append (LB, RB) and after
 * it (LA, RA).  The valid slot with the higher SEQ is the intent; a torn
 * write leaves the other one, whose append then did not happen either.
 * On restart, whichever local end the log has tells which Kafka offset
 * resumes, so a crash between the append and the next intent neither
 * duplicates nor skips a record.  A topic mirrored keeps
 * DATA_DIR/<topic>/mirror.conf, one line "to=<kafka topic>\n" (export)
 * or "from=<kafka topic>\n" (import), then "retention=force\n" when
 * retention may delete what was not exported yet. */
#define LAYOUT_MIRROR_POS_FILE "mirror.pos"
#define LAYOUT_MIRROR_CONF_FILE "mirror.conf"
#define LAYOUT_MIRROR_INTENT_FILE "mirror.intent"
#define LAYOUT_MIRROR_SLOT_BYTES 256
#define LAYOUT_MIRROR_POS_REMOTE 1
struct layout_mirror_pos {
	uint64_t seq;
	uint64_t local_before, local_after;
	uint64_t remote_before, remote_after;
};
/* Text of m into buf; its length (size 160 is always enough). */
int layout_mirror_pos_encode(char *buf, size_t size,
			     const struct layout_mirror_pos *m);
int layout_mirror_pos_decode(const char *buf, size_t len,
			     struct layout_mirror_pos *m);
/* Read dfd's mirror.pos: 0, -ENOENT, -EINVAL if damaged. */
int layout_mirror_pos_load(int dfd, struct layout_mirror_pos *m);
/* Write it atomically (tmp, fsync, rename, fsync dir). */
int layout_mirror_pos_store(int dfd, const struct layout_mirror_pos *m);
/* Open (creating, durably) dfd's mirror.intent for
 * layout_mirror_intent_store; the caller closes it. */
int layout_mirror_intent_open(int dfd, int *fd);
/* The intent in dfd's mirror.intent: 0, -ENOENT (no file, or no valid
 * slot in it). */
int layout_mirror_intent_load(int dfd, struct layout_mirror_pos *m);
/* Write m into slot m->seq % 2 of fd and fdatasync it. */
int layout_mirror_intent_store(int fd, const struct layout_mirror_pos *m);
/* A topic's mirror.conf: *dir gets 't' (to) or 'f' (from), name the Kafka
 * topic (size bytes), *force 1 with "retention=force".  -ENOENT without
 * one, -EINVAL if damaged. */
int layout_mirror_conf_load(int dfd, char *dir, char *name, size_t size,
			    int *force);
int layout_mirror_conf_store(int dfd, char dir, const char *name, int force);
/* Remove dfd's mirror.conf durably (the topic is no longer mirrored):
 * 0, -ENOENT without one, or the unlink's or directory sync's -errno. */
int layout_mirror_conf_remove(int dfd);

/* ---- imported record values --------------------------------------------- */

/* A record imported from Kafka, stored as one message.  A value without a
 * newline is stored as it is (JSON, backslashes and all), unless it
 * begins with LAYOUT_VALUE_ESCAPED; any other is stored as
 * LAYOUT_VALUE_ESCAPED followed by the value with every backslash doubled
 * and every newline written as backslash-n, so that it stays one line and
 * fluxctl unescape gives the bytes back.  out holds 2 * len + 1 bytes;
 * returns the length written. */
#define LAYOUT_VALUE_ESCAPED '\x1e' /* ASCII record separator */
size_t layout_value_escape(const char *in, size_t len, char *out);
/* The reverse for one message (without its newline), in place: a message
 * not beginning with LAYOUT_VALUE_ESCAPED is left as it is.  Returns the
 * new length. */
size_t layout_value_unescape(char *buf, size_t len);

/* ---- the data directory ------------------------------------------------- */

/* fluxfs.meta's format: 1 wrote host byte order (and was only supported
 * on little-endian hosts), 2 writes little-endian explicitly.  A format 1
 * directory is read as it is and its fluxfs.meta rewritten to 2 on its
 * first mount, so that an older daemon no longer takes it. */
#define LAYOUT_FORMAT 2
/* Check fluxfs.meta in rootfd (path for messages) and return its format
 * (>= 1) in *format.  An empty directory gets a fresh fluxfs.meta.
 * -ENOTEMPTY: not a fluxfs data directory; -EPROTONOSUPPORT: a newer
 * format; -EINVAL: a damaged fluxfs.meta; -errno if it cannot be read or
 * listed (a listing cut short is not an empty directory).  Every refusal
 * is logged and leaves the directory untouched. */
int layout_datadir_check(int rootfd, const char *path, int *format);
/* Rewrite fluxfs.meta of an older format as LAYOUT_FORMAT (one log
 * line); call it holding the lock. */
int layout_datadir_upgrade(int rootfd, const char *path, int format);
/* Open and flock the lock file; the descriptor, or -EBUSY if another
 * process serves the directory (logged with its pid), or -errno. */
int layout_datadir_lock(int rootfd, const char *path);
/* Record the serving pid in the lock file. */
void layout_datadir_note_pid(int lockfd);
/* At mount, holding the lock: 1 if the last daemon stopped cleanly (the
 * clean mark was there; it is now removed, durably, since from here on
 * partitions change), 0 if not, or -errno if it cannot be removed.
 * *summary_crc gets the CRC of the mount summary the mark vouches for
 * (0: none; an older daemon's mark names none). */
int layout_datadir_clean_take(int rootfd, uint32_t *summary_crc);
/* At a clean unmount, after every partition was flushed and closed:
 * leave the clean mark (written atomically), vouching for the summary
 * written just before with CRC summary_crc (0: none). */
int layout_datadir_clean_mark(int rootfd, uint32_t summary_crc);

/* Read all of dfd/name, at most max bytes (else -EFBIG), into *buf
 * (malloc'ed, with a NUL after its *len bytes): io_read_whole. */
int layout_read_file(int dfd, const char *name, unsigned char **buf,
		     size_t *len, size_t max);

/* ---- the mount summary (layout_summary.c) -------------------------------
 *
 * DATA_DIR/.fluxfs.summary, written at a clean unmount just before the
 * clean mark, lists every topic and partition with what the registry
 * loads at mount (a partition's partition.meta fields), so a clean
 * mount reads one file instead of listing every topic and reading every
 * partition.meta.  It is trusted only together with a clean mark that
 * names its CRC, and then only topic by topic: a topic's directory and
 * each of its partition.meta files must still have the identity (inode,
 * size, link count, mtime, ctime) recorded, older than the summary
 * itself; a topic that fails any of it is listed and read as without a
 * summary.  Text, one line each:
 *
 *   fluxfs-summary 1
 *   topic NAME INO SIZE NLINK MTIME_NS CTIME_NS NPARTS     (its directory)
 *   part NAME INO SIZE NLINK MTIME_NS CTIME_NS             (partition.meta)
 *        MODE UID GID ATIME_NS MTIME_NS CTIME_NS MTIME_END APPEND_ONLY NODE_INO
 *        DUE_MS       (when maintenance next has work in it; -1: never)
 *   crc32c=XXXXXXXX                                        (of all before)
 *
 * (a part line is one line; NPARTS part lines follow their topic line).
 */
#define LAYOUT_SUMMARY_FILE ".fluxfs.summary"

/* The identity of a file or directory as stat shows it: any change to
 * its name entries (a directory) or its content (a file) moves mtime or
 * ctime, a replacement changes the inode. */
struct layout_stamp {
	uint64_t ino;
	uint64_t size;
	uint64_t nlink;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

void layout_stamp_of(const struct stat *st, struct layout_stamp *s);
int layout_stamp_same(const struct layout_stamp *a,
		      const struct layout_stamp *b);

/* A partition's partition.meta fields, as the summary keeps them. */
struct layout_node_meta {
	uint32_t mode; /* permission bits */
	uint32_t uid;
	uint32_t gid;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t mtime_end;
	int append_only;
	uint64_t ino; /* the stored inode number */
};

/* A summary being written: lines appended to a growing buffer; an
 * allocation failure is remembered and fails layout_summary_write. */
struct layout_summary_writer {
	char *buf;
	size_t len;
	size_t cap;
	int err;
};

void layout_summary_writer_init(struct layout_summary_writer *w);
void layout_summary_add_topic(struct layout_summary_writer *w,
			      const char *name, const struct layout_stamp *dir,
			      uint32_t nparts);
void layout_summary_add_part(struct layout_summary_writer *w,
			     const char *name, const struct layout_stamp *meta,
			     const struct layout_node_meta *m, int64_t due_ms);
/* Append the CRC line and replace the summary atomically and durably;
 * *crc gets its CRC for the clean mark.  Releases w.  0 or -errno. */
int layout_summary_write(int rootfd, struct layout_summary_writer *w,
			 uint32_t *crc);
void layout_summary_writer_release(struct layout_summary_writer *w);

struct layout_summary_topic {
	const char *name;
	struct layout_stamp dir;
	uint32_t nparts;
	size_t first; /* where its first part line starts in text */
};

struct layout_summary_part {
	const char *name;
	struct layout_stamp meta_file;
	struct layout_node_meta meta;
	int64_t due_ms; /* partition_next_due when it closed; -1: never */
};

/* A loaded summary: its lines split in place, its topics by name. */
struct layout_summary {
	char *text;	/* a private mapping of the file */
	size_t map_len;
	size_t len;
	struct layout_summary_topic *topics; /* sorted by name */
	size_t ntopics;
	size_t nparts;
	int64_t written_ns; /* the summary file's mtime */
};

/* Load the summary whose CRC is want (from the clean mark): 0, -ENOENT
 * (none), -ESTALE (not the one the mark names), -EINVAL (damaged: bad
 * CRC or a line that does not parse), or -errno.  Nothing is logged. */
int layout_summary_load(int rootfd, uint32_t want,
			struct layout_summary *s);
/* The topic named name, or NULL. */
const struct layout_summary_topic *
layout_summary_find(const struct layout_summary *s, const char *name);
/* The partition whose line starts at *pos into *out (its line parsed
 * again: it parsed at load), and *pos moved to the next line.  Start at
 * a topic's first and call it nparts times. */
void layout_summary_part_next(const struct layout_summary *s, size_t *pos,
			      struct layout_summary_part *out);
/* Whether a stamp recorded in s may be trusted to show a later change:
 * a change in the same clock tick as the summary's write leaves mtime
 * and ctime where they were, so a stamp that is not older than the
 * summary proves nothing (git's "racy clean" rule). */
int layout_summary_stamp_older(const struct layout_summary *s,
			       const struct layout_stamp *st);
void layout_summary_release(struct layout_summary *s);

/* Inode numbers.  Each topic and partition keeps the number it was
 * given in its topic.meta / partition.meta ("ino=N"); fluxfs.meta keeps
 * ino_next, a bound below which every number handed out so far lies.
 * The daemon raises the bound durably before it hands out a number at
 * or past it, so a number is never handed out twice, even across a
 * crash (numbers reserved but unused at a crash are skipped).  Below
 * LAYOUT_INO_FIRST are the mount's fixed numbers (the root, .metrics,
 * .follow); at LAYOUT_INO_LIMIT and above, derived ones (a partition's
 * follow view). */
#define LAYOUT_INO_FIRST 16
#define LAYOUT_INO_LIMIT (1ULL << 62)
/* Room for fluxfs.meta's text. */
#define LAYOUT_META_TEXT_MAX 96
/* fluxfs.meta's text for format and ino_next (0: none yet) into buf;
 * its length. */
int layout_datadir_meta_encode(char *buf, size_t size, int format,
			       uint64_t ino_next);
/* Parse fluxfs.meta's text (NUL-terminated): 0, or -EINVAL if damaged.
 * *ino_next is 0 if the text has none. */
int layout_datadir_meta_decode(const char *text, int *format,
			       uint64_t *ino_next);
/* Read ino_next from fluxfs.meta (0 if none): 0 or -errno. */
int layout_datadir_ino_load(int rootfd, uint64_t *ino_next);
/* Rewrite fluxfs.meta with the current format and ino_next, atomically
 * and durably (tmp, fsync, rename, fsync dir); call it holding the
 * lock. */
int layout_datadir_ino_store(int rootfd, uint64_t ino_next);

/* The small text files (consumer groups, snapshots) open with a magic
 * line and end with "crc32c=<8 hex digits>\n", the CRC-32C of every byte
 * before that line.  Check one: 0 and the length of what the CRC covers
 * in *body, or -EBADMSG.  Append the line to buf (at bytes used, cap
 * bytes in all, room for 17 more): the new length. */
int layout_text_crc_check(const char *text, size_t len, const char *magic,
			  size_t *body);
size_t layout_text_crc_put(char *buf, size_t at, size_t cap);

/* The naming rule of topics, partitions and consumer groups: 1 to max
 * bytes of letters, digits, '.', '_' and '-', never "." or "..", and
 * no leading '.' when no_leading_dot (a topic's or group's: dot-names at
 * the top belong to fluxfs).  0, -ENAMETOOLONG or -EINVAL. */
int layout_check_name(const char *name, size_t max, int no_leading_dot);
/* Whether name's len bytes are all of the characters that rule allows
 * (the set Kafka allows in topic names too). */
int layout_name_chars_ok(const char *name, size_t len);

#endif
