/*
 * maint.h - the maintenance thread: every MAINT_PERIOD_MS it ticks every
 * partition (flush by flush_ms, roll by segment_ms, retention), compresses
 * one waiting segment per partition, and reports what the engine did on
 * its own (retention deletions, CRC failures found by reads) in the log.
 *
 * It walks the registry's tree and pins each partition while working on
 * it, so a partition removed meanwhile stays open until it is done.  It
 * may call the registry and the partitions; nothing below calls it.  When
 * retention moves a partition's start it calls the registry's invalidate
 * hook, so the FUSE layer drops what the kernel cached of the hole.
 */
#ifndef FLUXFS_MAINT_H
#define FLUXFS_MAINT_H

#include <stdint.h>

#include "registry.h"

#define MAINT_PERIOD_MS 100

/* What one pass did, summed over the partitions it visited. */
struct maint_report {
	unsigned partitions;	   /* open partitions ticked */
	unsigned flushed;	   /* ticks that flushed (flush_ms) */
	unsigned rolled;	   /* active segments rolled (segment_ms) */
	uint64_t segments_deleted; /* by retention */
	unsigned compressed;	   /* segments compressed */
	unsigned failed;	   /* ticks or compressions that failed */
	unsigned idle_opened; /* idle partitions opened: work was due */
	unsigned idle_swept;  /* opened to learn when work is due */
	unsigned walked;      /* the tree was walked for idle work */
};

/* One pass over every open partition, and the idle ones with work due,
 * at the time now() returns (read once per partition, as the ticks
 * happen).  What it did goes into *rep if non-NULL.
 * The thread calls it with registry_now_ms; tests call it directly with a
 * clock of their own. */
void maint_pass(struct registry *reg, int64_t (*now)(void),
		struct maint_report *rep);

struct maint;
/* Start the thread over reg; 0 or -errno. */
int maint_start(struct registry *reg, struct maint **out);
/* Stop the thread, wait for it and free m (NULL: nothing to do).  Call
 * before registry_close. */
void maint_stop(struct maint *m);

#endif
