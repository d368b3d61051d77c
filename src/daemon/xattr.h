/*
 * xattr.h - the user.fluxfs.* extended attributes of topics and
 * partitions: their names, which are writable, and the text of the
 * read-only ones.
 *
 * Partitions carry read-only start_offset, next_offset, start_byte,
 * segments, first_timestamp, last_timestamp (ms since the epoch, -1 when
 * empty), disk_bytes and lost ("none", or "count=N bytes=A-B
 * offsets=X-Y": the latest range whose data sync failed) and
 * snapshot_pinned_bytes (what snapshots keep of it), plus one
 * attribute per configuration key (the
 * effective value; writable, stored as the partition's override).  Topics
 * carry the configuration keys only.  Values are plain text without a
 * newline.
 *
 * Partitions also answer unlisted query names, so tools can look up a
 * position through the mount alone (fluxctl seek):
 *   user.fluxfs.seek.offset.<N>   -> "<byte>" where message N starts
 *   user.fluxfs.seek.time.<MS>    -> "<offset> <byte>" of the first message
 *                                    appended at or after MS
 * -ENOENT when there is no such message, -EINVAL for a malformed number.
 * No FUSE and no registry here: the FUSE layer (fs_ops.c) wires the
 * answers to requests.
 */
#ifndef FLUXFS_XATTR_H
#define FLUXFS_XATTR_H

#include <stddef.h>

#include "config.h"
#include "partition.h"
#include "produce.h"

#define XATTR_PREFIX "user.fluxfs."

enum xattr_info {
	XATTR_START_OFFSET = 0,
	XATTR_NEXT_OFFSET,
	XATTR_START_BYTE,
	XATTR_SEGMENTS,
	XATTR_FIRST_TIMESTAMP,
	XATTR_LAST_TIMESTAMP,
	XATTR_DISK_BYTES,
	XATTR_LOST_MESSAGES,
	XATTR_LOST_BYTES,
	XATTR_LOST,
	/* Bytes snapshots keep from retention: the caller answers it
	 * (registry_snap_pinned), not xattr_format_info. */
	XATTR_SNAPSHOT_PINNED_BYTES,
	XATTR_NINFO
};

struct xattr_name {
	int is_config; /* 1: a configuration key, 0: read-only info */
	int key;       /* enum config_key or enum xattr_info */
};

/* Classify name for a topic (is_partition 0) or partition.  -ENODATA if
 * it is not one of ours. */
int xattr_parse(const char *name, int is_partition, struct xattr_name *out);
/* A topic's keyed-producing setting (produce.h): user.fluxfs.partitions
 * and user.fluxfs.key_separator, on topics only; its enum
 * produce_setting, or -ENODATA. */
int xattr_produce_parse(const char *name, int is_partition);
/* The NUL-separated name list for listxattr into buf (size 0: just the
 * length).  Returns the length, or -ERANGE if size is too small. */
int xattr_list(int is_partition, char *buf, size_t size);
/* Format a read-only value from info into buf; returns length or -ERANGE. */
int xattr_format_info(const struct partition_info *info, enum xattr_info key,
		      char *buf, size_t size);

/* Whether name is a seek query (answered by xattr_query): asked before
 * a closed partition is opened to answer it. */
int xattr_is_query(const char *name);
/* Answer a seek query name on partition p into buf; -ENODATA if name is
 * not a query. */
int xattr_query(struct partition *p, const char *name, char *buf,
		size_t size);

#endif
