/*
 * registry_int.h - the registry's private header: struct registry and the
 * node helpers its files share.
 *
 * The registry is five files: registry.c (names and lifetimes: nodes,
 * lookup, create, rename and removal, pins, mode, owner and times),
 * registry_config.c (the configuration layers), registry_open.c
 * (opening, locking and loading the data directory, and closing it),
 * registry_metrics.c (gathering every partition's metrics for .metrics)
 * and registry_produce.c (a topic's keyed-producing settings and its
 * partitions by number).
 * The maintenance thread (maint.c) walks the tree too.  Only they include
 * this header; the rest of fluxfs sees registry.h.
 */
#ifndef FLUXFS_REGISTRY_INT_H
#define FLUXFS_REGISTRY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "registry.h"

#define REGISTRY_OPEN_LOCKS 256

struct registry {
	pthread_rwlock_t lock;
	pthread_mutex_t life;
	struct node root;	/* topics are its children */
	struct config defaults; /* mount options over the built-in defaults */
	struct registry_hooks hooks;
	char *path;
	int rootfd;
	int trashfd;
	int lockfd;
	atomic_uint trash_seq;
	pthread_mutex_t ino_lock;
	uint64_t ino_next;  /* next inode number; protected by ino_lock */
	uint64_t ino_bound; /* fluxfs.meta's ino_next; protected by ino_lock */
	struct fdbudget fdb; /* descriptors of open partitions */
	/* No closed partition has maintenance due before this time (ms;
	 * registry_now_ms) and none waits to have its due time learnt:
	 * maintenance walks the tree for idle work only from then on.
	 * Lowered by whoever sets a closed partition's due time (or marks
	 * it unknown); raised only by the walk (maint.c). */
	_Atomic int64_t idle_hint;
	/* Opening and closing a partition's log is serialised by one of
	 * these, picked by the node's address: a lock per node would cost
	 * 40 bytes for each of 100,000 partitions. */
	pthread_mutex_t open_locks[REGISTRY_OPEN_LOCKS];
	uid_t uid; /* the daemon's, for nodes without a meta file */
	gid_t gid;
	int was_clean; /* the last daemon stopped cleanly (LAYOUT_CLEAN_FILE) */
	int loaded;    /* registry_open finished: a clean stop may be marked */
	struct groupstore *groups; /* consumer groups (its own lock) */
	struct snapstore *snaps;   /* snapshots (its own lock) */
	/* Appends take it shared, a snapshot's cut exclusive (writers
	 * preferred, so a stream of appends cannot starve a snapshot). */
	pthread_rwlock_t cut;
	pthread_mutex_t snap_lock; /* one snapshot taken or released at once */
	/* Partitions deleted while a snapshot needs them, each pinned (their
	 * directories stay in .trash); protected by lock. */
	struct node **held;
	size_t nheld, held_cap;
};

/* A closed partition may have maintenance due at due (ms): lower the
 * hint to it. */
static inline void idle_hint_lower(struct registry *reg, int64_t due)
{
	int64_t cur = atomic_load(&reg->idle_hint);

	while (due < cur &&
	       !atomic_compare_exchange_weak(&reg->idle_hint, &cur, due))
		;
}

/* The budget when none is set: half the open-file limit, the rest left
 * to topics' directories, FUSE, clients' descriptors and tools. */
uint64_t registry_default_fd_budget(void);
/* Close partition n's open log now, whatever its pins, and forget it in
 * the budget: n is removed (discard, no flush) or the daemon stops.
 * Returns partition_close's result (0 when discarded or not open). */
int part_close_now(struct registry *reg, struct node *n, int discard);
/* Room in the budget for one more partition (closing idle ones), to
 * create (what) the partition name: 0, or -EMFILE, logged.  A created
 * partition then settles it with part_created (reg->lock held, n->part
 * set), or the caller gives it back with fdb_unreserve. */
int part_room(struct registry *reg, const char *what, const char *name,
	      pthread_mutex_t *held);
void part_created(struct registry *reg, struct node *n);
/* A new descriptor of partition n's directory (in its topic, or in
 * .trash once removed), or -errno.  Called with reg->lock held. */
int part_dir_open(struct registry *reg, struct node *n);
/* What closed partition n shows, into info: returns what is known
 * (0 nothing, 1 start and end, 2 all; info zeroed when 0). */
int part_idle_info(struct node *n, struct partition_info *info);
/* n's info, from its open log, or what was kept when it closed; need 1:
 * start and end suffice (partition.state after a clean stop serves),
 * 2: all of it.  Opens the log when that is not known (after a crash,
 * recovery first).  Called without reg->lock. */
int part_info(struct registry *reg, struct node *n,
	      struct partition_info *info, int need);

/* Hand out a fresh inode number into *ino, raising fluxfs.meta's bound
 * first when it is reached: 0 or -errno (then nothing was handed out;
 * the caller logs it). */
int registry_ino_alloc(struct registry *reg, uint64_t *ino);
/* Store n's mode, owner, times and inode number in its meta file. */
int node_meta_save(struct registry *reg, struct node *n);

/* A new node of kind named name, one reference, default mode, owner and
 * times, set up by the node_init hook; NULL if out of memory or the hook
 * failed. */
struct node *node_new(struct registry *reg, enum node_kind kind,
		      const char *name);
/* Release n through the node_release hook, close its directory, free it. */
void node_free(struct registry *reg, struct node *n);
/* Link c into dir's children (under reg->lock, or before anyone sees
 * the tree). */
void child_add(struct node *dir, struct node *c);
/* 0 if name may be a topic (is_topic) or partition name, else -errno. */
int registry_check_name(const char *name, int is_topic);
/* Load n's mode, owner and times from dirfd/file; a missing file keeps
 * the defaults. */
void meta_read(struct node *n, int dirfd, const char *file);
/* Load a topic.conf / partition.conf into over; a bad file is reported
 * and ignored.  what names the node in the report. */
void conf_read(struct config *over, int dirfd, const char *file,
	       const char *what);
/* n's configuration: the mount's defaults, its topic's overrides, its
 * own. */
void effective_config(struct registry *reg, struct node *n, struct config *cfg);
/* Push n's effective configuration into its partition, if open; if
 * closed, make it due for maintenance unless old (what applied before
 * the change; NULL: not known) shows nothing can fall due sooner. */
int apply_config(struct registry *reg, struct node *n,
		 const struct config *old);
/* Read up to size - 1 bytes of dirfd/file into buf, NUL-terminated;
 * the length or -errno. */
int read_small(int dirfd, const char *file, char *buf, size_t size);
/* Load topic t's produce.conf (registry_produce.c); a bad file is
 * reported and the defaults kept. */
void produce_read(struct node *t);
/* The lowest of n's retention holds, as partition_hold_retention takes
 * it (PARTITION_NO_HOLD: none). */
uint64_t node_hold(struct node *n);
/* Record holder who's retention hold on n (PARTITION_NO_HOLD: none)
 * without applying it to an open log (part_open applies node_hold). */
void node_set_hold(struct node *n, enum registry_holder who, uint64_t offset);
/* The cut lock (at the start of registry_open).  snap_open: open the
 * snapshots and move the directories of deleted partitions they need out
 * of .trash (before it is emptied) into DATA_DIR/.snapshots/held/;
 * snap_load (once the tree is loaded and .trash made again): serve those
 * as held partitions (back in .trash, pinned), delete the held ones no
 * snapshot needs, and hold retention for the snapshots.  snap_close:
 * free the held partitions' nodes (their directories stay). */
void snap_init(struct registry *reg);
int snap_open(struct registry *reg);
int snap_load(struct registry *reg);
void snap_close(struct registry *reg);
/* Partition n was deleted (in .trash, out of the tree, still pinned by
 * the caller): keep it, pinned, if a snapshot needs it. */
void snap_removed(struct registry *reg, struct node *n);
/* The held partition with stored inode number ino, or NULL (reg->lock
 * held). */
struct node *snap_held_find(struct registry *reg, uint64_t ino);
/* n's partition log was opened: note its counters, call the attach
 * hook. */
void attach_partition(struct registry *reg, struct node *n);

#endif
