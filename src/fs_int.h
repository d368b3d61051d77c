/*
 * fs_int.h - the FUSE layer's shared state, private to its fs_*.c files.
 */
#ifndef FLUXFS_FS_INT_H
#define FLUXFS_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fs_follow.h"
#include "registry.h"

/* The FUSE layer's state of a registry node (node->fs): what the kernel
 * may hold of it and who has it open how.  Lock-free fields are read
 * without a lock where only "zero stays zero" matters. */
struct fs_node {
	atomic_int attr_cached; /* the kernel may hold attributes */
	atomic_int page_cached; /* a reader may hold pages */
	atomic_int tail_cached; /* ... maybe a partial last page */
	int tail_drops;		/* drops queued; the tail lock */
	atomic_int head_drops;	/* removed head's drops not yet sent */
	/* Open handles by how they use the page cache (the tail lock). */
	atomic_int pc_readers; /* readers through the page cache */
	atomic_int wt_writers; /* writers through the page cache */
	int dio_writers;       /* direct_io writers */
	/* The partial line of the one write-through writer holding one:
	 * the kernel counts it in the file at held_pos, so reads and stat
	 * show it there ("Held bytes"). */
	pthread_mutex_t held_lock;
	atomic_int held_handles;   /* write-through handles holding bytes */
	const void *held_owner;	   /* whose bytes held is (NULL: none) */
	char *held;		   /* held_lock */
	size_t held_len, held_cap; /* held_lock */
	uint64_t held_pos;	   /* held_lock */
	atomic_uint_fast64_t shown_end; /* largest size the kernel may see */
	/* Tailing (fs_follow.c): parked reads and stored poll handles, and
	 * a count bumped when the partition leaves its name. */
	struct follow_wait *follow_waiters; /* protected by the follow lock */
	struct follow_file *follow_polls;   /* protected by the follow lock */
	atomic_uint follow_gen;
};

#endif
