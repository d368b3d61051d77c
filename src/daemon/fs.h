/*
 * fs.h - the FUSE layer: the lowlevel operations, the only code (with
 * main) that speaks FUSE.
 *
 * The layer (fs_*.c, private header fs_int.h) maps requests onto the
 * registry (names, inodes, attributes, xattrs) and the partitions
 * (append, read, flush), turns -errno returns into replies, and keeps the
 * kernel's caches honest: attributes are invalidated on every append from
 * the appending thread, page ranges from the notifier thread (notify.h).
 * It also serves the follow view (MNT/.follow/<topic>/<partition>: inode
 * = node address | 1, opened direct_io, reads at the end parked by
 * fs_follow.h) and the poll operation; what each append must wake, the
 * layer wakes itself once the partition has returned.  It may call the
 * registry, the partitions, the notifier and the follow module; none of
 * them calls it except through the registry's hooks.
 *
 * Lifecycle: fs_setup() before fuse_session_new(); registry_open() with
 * fs_hooks() (the registry makes the layer's per-node state through
 * them); fs_start() once mounted and daemonized (starts the notifier and
 * maintenance threads); fs_stop() after the session loop returns; then
 * registry_close().
 */
#ifndef FLUXFS_FS_H
#define FLUXFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "registry.h"

/* The largest read request: one page under 1 MiB, so that a reply's
 * header and data fit the 1 MiB pipe libfuse splices them through (a
 * larger reply is copied instead, measured 5-8x slower on the direct
 * I/O files: the follow and group views).  libfuse wants it both as the
 * mount option and in init(). */
#define FS_MAX_READ 983040
#define FS_MAX_READ_OPT "-omax_read=983040"

/* The operations table for fuse_session_new(). */
const struct fuse_lowlevel_ops *fs_ops(void);
/* The hooks the registry calls on appends and on data removed from the
 * head of a partition; pass them to registry_open(). */
const struct registry_hooks *fs_hooks(void);
/* Bind the mount's state (registry and session); userdata for
 * fuse_session_new() is not used. */
void fs_setup(struct registry *reg);
/* The bytes .metrics snapshots held open may take together (default
 * 256 MiB); an open past it fails with ENOMEM.  Before fs_start(). */
void fs_set_metrics_mem(uint64_t bytes);
/* The bytes directory listings held open may take together (default
 * 256 MiB); an opendir past it fails with ENOMEM.  Before fs_start(). */
void fs_set_listing_mem(uint64_t bytes);
int fs_start(struct fuse_session *se);
void fs_stop(void);
/* Someone other than a FUSE request (the Kafka importer) appended to
 * partition n, which now ends at end: show it and wake followers. */
void fs_appended_elsewhere(struct node *n, uint64_t end);

#endif
