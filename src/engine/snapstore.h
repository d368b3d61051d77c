/*
 * snapstore.h - consistent snapshots of a data directory's partitions,
 * kept in the data directory: one small file per snapshot, written once
 * atomically and removed when the snapshot is released.
 *
 * A snapshot is a name, its creation time and, for every partition that
 * existed when it was taken, the partition's start and end (bytes and
 * message offsets) at one instant: a "cut" (the daemon takes it, see
 * registry_snap.c).  A partition is named by its topic and partition
 * names as they were, and identified by its stored inode number
 * (layout.h), which stays with the partition across renames and is never
 * handed out again, so the snapshot finds its partition after a rename.
 * Nothing of the data is copied: the snapshot's bytes are the live
 * partition's bytes below the recorded end, which retention keeps while
 * a snapshot needs them.
 *
 * On disk (the format's one reader and writer, used by the daemon and
 * fluxctl alike):
 *   DATA_DIR/.snapshots/<name>.snap    text, written by io_write_atomic:
 *     fluxfs-snapshot 1
 *     created_ms=<epoch ms>
 *     part <ino> <start_byte> <start_offset> <end_byte> <topic>/<partition>
 *     ...                                       one per partition
 *     crc32c=<8 hex digits>                     of every byte above
 * A crash while one is written leaves no file or the whole file (and a
 * .tmp that the next open removes); a file that fails its CRC or does
 * not parse is refused whole (-EBADMSG), never half-read.
 *
 * Thread-safe: one mutex orders every call; a snapshot never changes
 * once created.  No FUSE, no registry: the daemon maps names.
 */
#ifndef FLUXFS_SNAPSTORE_H
#define FLUXFS_SNAPSTORE_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSTORE_DIR ".snapshots"
#define SNAPSTORE_SUFFIX ".snap"
#define SNAPSTORE_NAME_MAX 200
#define SNAPSTORE_PART_NAME_MAX 255

struct snapstore;

struct snap_part {
	uint64_t ino; /* the partition's stored inode number */
	uint64_t start_byte, start_offset; /* its log's start at the cut */
	uint64_t end_byte;		   /* and its end */
	char topic[SNAPSTORE_PART_NAME_MAX + 1];
	char part[SNAPSTORE_PART_NAME_MAX + 1];
};

/* Open DATA_DIR/.snapshots below rootfd (made with the first snapshot),
 * load every snapshot; a file that fails its check is logged and left
 * out.  readonly: to look only (every change is -EROFS). */
int snapstore_open(int rootfd, int readonly, struct snapstore **out);
void snapstore_close(struct snapstore *ss);

/* 0 if name may name a snapshot (the rules of topic names), else
 * -EINVAL or -ENAMETOOLONG. */
int snapstore_check_name(const char *name);

/* Store a snapshot of nparts partitions, durably (file and directory
 * synced before it returns): -EEXIST, -EINVAL, -EROFS, or the disk's
 * error (nothing stored then). */
int snapstore_create(struct snapstore *ss, const char *name,
		     int64_t created_ms, const struct snap_part *parts,
		     size_t nparts);
/* Remove a snapshot and its file, durably: -ENOENT. */
int snapstore_remove(struct snapstore *ss, const char *name);
/* 0 and its creation time and partition count, or -ENOENT. */
int snapstore_info(struct snapstore *ss, const char *name, int64_t *created_ms,
		   size_t *nparts);
/* Every snapshot's name, time, partition count and bytes
 * (snapstore_bytes), in creation order; stops when cb returns non-zero
 * (which is returned).  cb must not call back into the store. */
int snapstore_list(struct snapstore *ss,
		   int (*cb)(void *arg, const char *name, int64_t created_ms,
			     size_t nparts, uint64_t bytes),
		   void *arg);
/* Every partition of snapshot name (sorted by topic, then partition);
 * stops when cb returns non-zero.  -ENOENT if there is no such one. */
int snapstore_parts(struct snapstore *ss, const char *name,
		    int (*cb)(void *arg, const struct snap_part *p), void *arg);
/* The partition topic/part of snapshot name: 0, or -ENOENT. */
int snapstore_find(struct snapstore *ss, const char *name, const char *topic,
		   const char *part, struct snap_part *out);
/* What every snapshot together needs of partition ino: 1 and the lowest
 * start (offset and byte) and highest end any of them recorded, or 0 if
 * none needs it (an empty one needs nothing). */
int snapstore_needs(struct snapstore *ss, uint64_t ino, uint64_t *start_offset,
		    uint64_t *start_byte, uint64_t *end_byte);

/* The bytes snapshot name shows (its partitions' ends less their starts),
 * which retention keeps while it exists; 0 if there is none. */
uint64_t snapstore_bytes(struct snapstore *ss, const char *name);

/* The file format, for fluxctl and tests: encode into a malloc'ed buffer;
 * decode a file's text into a malloc'ed array (-EBADMSG if it fails). */
int snapstore_encode(int64_t created_ms, const struct snap_part *parts,
		     size_t nparts, char **out, size_t *len);
int snapstore_decode(const char *text, size_t len, int64_t *created_ms,
		     struct snap_part **parts, size_t *nparts);
/* Read and decode DATA_DIR/.snapshots/<file> below dirfd (the
 * .snapshots directory); the loader's one read, fluxctl verify's too. */
int snapstore_read_file(int dirfd, const char *file, int64_t *created_ms,
			struct snap_part **parts, size_t *nparts);

#endif
