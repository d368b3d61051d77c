/*
 * registry.h - topics and partitions by name and inode, their lifetimes,
 * locking, configuration layers, and the on-disk namespace.
 *
 * The registry owns DATA_DIR: through layout.h it checks and writes
 * fluxfs.meta and holds the lock that keeps a second daemon off; it loads
 * every topic and partition name at mount, opens a partition's log on
 * first use and closes it when idle within a descriptor budget
 * (fdbudget.h), and maps namespace operations (mkdir, create,
 * rename, unlink...) onto renames and removals below DATA_DIR through
 * io.h.  No FUSE here; the FUSE layer (fs_*.c) calls in.
 *
 * On disk:
 *   DATA_DIR/fluxfs.meta                "format=2" (LAYOUT_FORMAT)
 *   DATA_DIR/.fluxfs.lock               flock()ed while served; holds the pid
 *   DATA_DIR/.trash/                    removed partitions still open
 *   DATA_DIR/<topic>/topic.conf         the topic's configuration overrides
 *   DATA_DIR/<topic>/topic.meta         mode, owner, times of the topic
 *   DATA_DIR/<topic>/<partition>/       the engine's files, plus
 *       partition.conf, partition.meta  the partition's overrides and
 *                                       mode, owner, times
 *
 * Inode numbers are node addresses (as in libfuse's passthrough_ll), the
 * root is FUSE's 1, and 2..15 are reserved for control files (.metrics,
 * .follow); the FUSE layer gives a node's follow-view twin its address with bit 0
 * set (nodes are malloc'ed, so that bit is free).  A node lives while it
 * is in the namespace, while the kernel holds a lookup count on it, or
 * while something pins it (open handles, the maintenance thread).
 *
 * Locking: reg->lock (rwlock) protects the tree: names, parent links,
 * child lists, the removed flag.  Namespace changes take it for writing;
 * lookups, stat, xattrs and readdir for reading.  The write and read
 * paths on an open handle take no registry lock at all: the handle pins
 * its node, and the partition serialises its own appends.  Lookup counts
 * and pins are protected by reg->life.  A node's mode, owner, times and
 * configuration overrides are protected by node->meta_lock.
 */
#ifndef FLUXFS_REGISTRY_H
#define FLUXFS_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "fdbudget.h"
#include "partition.h"
#include "produce.h"

#define REGISTRY_INO_ROOT 1
#define REGISTRY_INO_METRICS 2
#define REGISTRY_INO_FOLLOW 3 /* MNT/.follow (fs_ops.c, fs_follow.h) */
#define REGISTRY_INO_GROUPS 4 /* MNT/.groups (fs_groups.c) */
#define REGISTRY_INO_PRODUCE 5 /* MNT/.produce (fs_produce.c) */
#define REGISTRY_INO_AT 6 /* MNT/.at (fs_at.c) */
#define REGISTRY_INO_SNAPSHOT 7 /* MNT/.snapshot (fs_snap.c) */
#define REGISTRY_NAME_MAX 249

enum node_kind { NODE_ROOT, NODE_TOPIC, NODE_PARTITION };

struct node_meta {
	mode_t mode; /* permission bits only */
	uid_t uid;
	gid_t gid;
	struct timespec atime;
	struct timespec mtime;
	struct timespec ctime;
	uint64_t mtime_end; /* end of log when mtime was set; later appends win
			     */
	int append_only;    /* chattr +a: no unlink, rename or truncation */
	uint64_t ino; /* the inode number stat shows (0: none yet); set once */
};

struct fs_node;

struct node {
	enum node_kind kind;
	/* (ints beside each other: 100,000 nodes, no holes) */
	/* What stat and the info xattrs show while it is closed: 0 nothing
	 * known yet, 1 start and end from partition.state (after a clean
	 * unmount), 2 all of it (as it was when it closed).  Protected by
	 * meta_lock. */
	int idle_have;
	char *name;		/* protected by reg->lock */
	struct node *parent;	/* protected by reg->lock; pinned (refs) */
	struct node *next;	/* sibling; protected by reg->lock */
	struct node *children;	/* protected by reg->lock */
	unsigned nchildren;	/* protected by reg->lock */
	int removed;		/* protected by reg->lock */
	int dirfd;		/* topic: its directory (owned) */
	int over_loaded; /* partition: partition.conf read (on first need) */
	/* partition: the log while open, else NULL (idle, or removed).
	 * Set and cleared under its open lock (registry_part.c) and
	 * reg->lock held for writing; read under reg->lock, or while
	 * holding a partition pin (registry_part_get). */
	struct partition *part;
	struct fdb_entry fdb; /* its descriptors in the mount's budget */
	struct partition_info *idle_info; /* malloc'ed when first known */
	/* When maintenance next has work in it while it is closed
	 * (partition_next_due, kept when it closed or from the mount
	 * summary; INT64_MAX: nothing, or not known).  Protected by
	 * meta_lock. */
	int64_t idle_due;
	/* idle_due is not known: loaded at a mount that could not use the
	 * mount summary (after a crash), not opened since.  meta_lock. */
	int due_unknown;
	char trash[12];		/* name under .trash once removed */

	pthread_mutex_t meta_lock;
	struct config over; /* this level's overrides; protected by meta_lock */
	struct produce_conf produce; /* topic: keyed producing; meta_lock */
	struct node_meta meta; /* protected by meta_lock */

	uint64_t nlookup; /* protected by reg->life */
	unsigned refs;	  /* protected by reg->life: 1 in tree + pins */
	int dying;	  /* protected by reg->life: last pin going */

	atomic_uint_fast64_t max_message; /* effective max_message_bytes */
	uint64_t seen_crc_failures;	  /* maintenance thread only */
	int maint_err;	  /* last tick's error, logged on change; ditto */
	int compress_err; /* last compression error, the same way */
	/* Retention holds on a partition, one per holder (enum
	 * registry_holder): a message offset + 1, 0 none; the lowest is the
	 * log's (registry_hold_retention).  Protected by meta_lock. */
	uint64_t holds[2];

	/* The FUSE layer's state of this node, opaque here: made and
	 * released through registry_hooks. */
	struct fs_node *fs;
};

struct registry;

/* The FUSE layer's callbacks (each may be NULL).  Appends call nobody:
 * the FUSE layer makes them and acts on them itself. */
struct registry_hooks {
	/* A node was made (a partition's log not yet open): set up n->fs;
	 * -errno fails what made it. */
	int (*node_init)(struct registry *reg, struct node *n);
	/* n's partition log is open (at load or create). */
	void (*attach)(struct registry *reg, struct node *n);
	/* n is being freed: release n->fs. */
	void (*node_release)(struct registry *reg, struct node *n);
	/* Bytes of n below from changed (retention made them a hole). */
	void (*invalidate)(struct registry *reg, struct node *n, uint64_t from);
	/* A partition left its name (unlinked, renamed, replaced) or a
	 * topic was removed; called outside reg->lock while n is still
	 * pinned.  May be NULL. */
	void (*detach)(struct registry *reg, struct node *n);
};

/* Open (creating if needed) and lock data_dir, load every topic and open
 * every partition.  Problems are reported with diag() before returning:
 * -EBUSY served by another fluxfs, -ENOTEMPTY not a fluxfs directory,
 * -EPROTONOSUPPORT a newer format. */
int registry_open(const char *data_dir, const struct config *defaults,
		  const struct registry_hooks *hooks, struct registry **out);
/* Write the daemon's pid into the lock file (after daemonizing). */
void registry_note_pid(struct registry *reg);
/* Flush and close every partition, unlock (stop the maintenance thread,
 * maint.h, first).  Returns 0 or the first flush error. */
int registry_close(struct registry *reg);

/* Inode number -> node (NULL for control-file inodes).  These are the
 * FUSE node ids, valid while the kernel holds the node; the number stat
 * and readdir show is registry_st_ino(), stored in the data directory. */
struct node *registry_node(struct registry *reg, uint64_t ino);
uint64_t registry_ino(struct registry *reg, const struct node *n);
/* The inode number n shows in stat and readdir: REGISTRY_INO_ROOT for
 * the root, else the number stored with the topic or partition, the
 * same across remounts and never handed out twice (layout.h). */
uint64_t registry_st_ino(struct registry *reg, struct node *n);
/* A partition's or topic's follow view shows its st_ino with this bit:
 * stored numbers stay below LAYOUT_INO_LIMIT, far under it. */
#define REGISTRY_INO_FOLLOW_VIEW (1ULL << 63)
/* A topic's produce file (MNT/.produce/<topic>) shows this bit. */
#define REGISTRY_INO_PRODUCE_VIEW (1ULL << 61)

/* Namespace operations.  Those returning a node add one lookup count.
 * registry_lookup: -ENAMETOOLONG (logged) for a name past
 * REGISTRY_NAME_MAX, -ENOENT if there is none. */
int registry_lookup(struct registry *reg, struct node *dir, const char *name,
		    struct node **out);
void registry_forget(struct registry *reg, struct node *n, uint64_t nlookup);
int registry_mkdir(struct registry *reg, struct node *dir, const char *name,
		   mode_t mode, uid_t uid, gid_t gid, struct node **out);
int registry_create(struct registry *reg, struct node *dir, const char *name,
		    mode_t mode, uid_t uid, gid_t gid, struct node **out);
int registry_rmdir(struct registry *reg, struct node *dir, const char *name);
int registry_unlink(struct registry *reg, struct node *dir, const char *name);
int registry_rename(struct registry *reg, struct node *dir, const char *name,
		    struct node *newdir, const char *newname,
		    unsigned int flags);

/* Open partition n's log if it is idle (recovering it if the last stop
 * was not clean), making room in the descriptor budget by closing the
 * least recently used idle partition, and pin it open: n->part stays
 * valid until registry_part_put.  -EMFILE (one log line) when every
 * open partition is pinned and the budget has no room; only this
 * request fails.  -ENOENT once n was removed and closed. */
int registry_part_get(struct registry *reg, struct node *n);
void registry_part_put(struct registry *reg, struct node *n);
/* Pin n's log only if it is open already, without making it recent
 * (maintenance): 0, or -ENOENT if it is idle. */
int registry_part_peek(struct registry *reg, struct node *n);
/* Whether n's log is open now (it may open or close right after). */
int registry_part_is_open(struct registry *reg, struct node *n);
/* Close n's log now if it is open and nothing pins it (maintenance
 * opened it to learn its due time); 0, or the flush's error. */
int registry_part_close_idle(struct registry *reg, struct node *n);
/* Whether idle partition n waits to have its due time learnt: it is not
 * known (due_unknown) and its settings have work maintenance does to
 * idle partitions (retention or compression).  One with none is marked
 * known (never due) here.  Learning its settings may read its
 * partition.conf from disk: *loads is how many such reads the caller
 * still allows (decremented for each); with none left such a partition
 * answers 0 and is asked again later.  Called with reg->lock held. */
int registry_due_unknown(struct registry *reg, struct node *n,
			 unsigned *loads);
/* Close idle partitions while the budget is exceeded (costs grow as
 * segments roll); called by maintenance. */
void registry_part_trim(struct registry *reg);
/* The descriptor budget for open partitions: set before serving. */
void registry_set_fd_budget(struct registry *reg, uint64_t budget);
uint64_t registry_fd_budget(struct registry *reg);

/* Pin a node (open handle); registry_unpin may close a removed partition. */
int registry_pin(struct registry *reg, struct node *n);
void registry_unpin(struct registry *reg, struct node *n);

int registry_stat(struct registry *reg, struct node *n, struct stat *st);
/* Change and persist mode/owner/times: each pointer NULL to keep. For
 * times, tv_nsec UTIME_NOW means now. */
int registry_setattr(struct registry *reg, struct node *n, const mode_t *mode,
		     const uid_t *uid, const gid_t *gid,
		     const struct timespec *atime,
		     const struct timespec *mtime);
/* A write by a process without CAP_FSETID: clear setuid, and setgid if
 * group-executable, as every local filesystem does (persisted).  Returns
 * 1 if the mode changed, 0 if there was nothing to clear, or -errno. */
int registry_drop_setid(struct registry *reg, struct node *n);
/* chattr +a / -a on a topic or partition (persisted).  An append-only
 * partition, and a partition in an append-only topic, cannot be removed,
 * renamed or replaced, and an append-only topic cannot be removed or
 * renamed, as ext4 treats FS_APPEND_FL: registry_unlink, registry_rmdir
 * and registry_rename return -EPERM then. */
int registry_set_append_only(struct registry *reg, struct node *n, int on);
int registry_append_only(struct node *n);
int registry_statfs(struct registry *reg, struct statvfs *st);
/* A partition's info; -ENOENT once it was closed (removed). */
int registry_info(struct registry *reg, struct node *n,
		  struct partition_info *info);

/* Children of dir, under the read lock: cb is called for each with its
 * name, inode and kind; stops when cb returns non-zero. */
int registry_list(struct registry *reg, struct node *dir,
		  int (*cb)(void *arg, const char *name, uint64_t ino,
			    enum node_kind kind),
		  void *arg);

/* Configuration: the effective value of key for n (topic or partition),
 * formatted; set and unset n's own override (persisted, applied to open
 * partitions at once).  -EINVAL for a bad value. */
int registry_config_get(struct registry *reg, struct node *n, int key,
			char *buf, size_t size);
int registry_config_set(struct registry *reg, struct node *n, int key,
			const char *val, size_t len);
int registry_config_unset(struct registry *reg, struct node *n, int key);

/* Keyed producing (registry_produce.c): a topic's settings (key: enum
 * produce_setting), and its partitions by number. */
/* The topic's settings, and its effective max_message_bytes. */
void registry_produce_conf(struct registry *reg, struct node *topic,
			   struct produce_conf *out, uint64_t *max_message);
/* The setting's value as an xattr: partitions in decimal (the count in
 * use when unset), the separator as its byte (empty: none). */
int registry_produce_get(struct registry *reg, struct node *topic, int key,
			 char *buf, size_t size);
/* Set (persisted) a setting from an xattr value.  partitions creates the
 * missing partitions 0..N-1 (mode 0644, owned by uid:gid); lowering it
 * below the count in use is -EINVAL; raising it on a topic with keyed
 * data logs a warning, since keys move.  -EINVAL for a bad value. */
int registry_produce_set(struct registry *reg, struct node *topic, int key,
			 const char *val, size_t len, uid_t uid, gid_t gid);
/* Back to the default (partitions: those that exist; separator TAB). */
int registry_produce_unset(struct registry *reg, struct node *topic, int key);
/* The topic's partitions by number: *out (malloc'ed, *count entries,
 * free it) gets the partition named i, pinned, or NULL where there is
 * none.  *count is the partitions setting (missing ones are created
 * first, owned by uid:gid), or when unset the count of partitions 0, 1,
 * 2... that exist without a gap. */
int registry_produce_partitions(struct registry *reg, struct node *topic,
				uid_t uid, gid_t gid, struct node ***out,
				uint32_t *count);
/* The consumer groups' committed positions, keyed by the partitions'
 * stored inode numbers (groupstore.h); opened with the registry, with
 * the positions of partitions deleted since the last mount dropped. */
struct groupstore *registry_groups(struct registry *reg);
/* A group view shows stat numbers with this bit (beside
 * REGISTRY_INO_FOLLOW_VIEW). */
#define REGISTRY_INO_GROUP_VIEW (1ULL << 62)
/* A time-addressed view (MNT/.at) shows stat numbers with this bit. */
#define REGISTRY_INO_AT_VIEW (1ULL << 60)

/* A snapshot's view (MNT/.snapshot) shows stat numbers with this bit. */
#define REGISTRY_INO_SNAP_VIEW (1ULL << 59)

/* The partition with stored inode number ino (registry_st_ino), with one
 * lookup count: in the tree, or deleted but kept for a snapshot;
 * -ENOENT if none. */
int registry_lookup_ino(struct registry *reg, uint64_t ino, struct node **out);

/* Who holds a partition's retention (partition_hold_retention): the
 * Kafka exporter at its acknowledged position, snapshots at the lowest
 * start they recorded.  The log gets the lowest hold, set again when it
 * opens after an idle close. */
enum registry_holder { REGISTRY_HOLD_EXPORT, REGISTRY_HOLD_SNAPSHOT };
void registry_hold_retention(struct registry *reg, struct node *n,
			     enum registry_holder who, uint64_t offset);

/* Snapshots (registry_snap.c, snapstore.h).  Every append the daemon
 * makes goes through registry_appendv: partition_appendv inside the
 * shared side of the registry's cut lock, whose exclusive side a
 * snapshot takes to read every partition's end at one instant. */
int registry_appendv(struct registry *reg, struct partition *p,
		     const struct iovec *iov, int iovcnt, uint32_t count,
		     int64_t now_ms, uint64_t expect_end,
		     uint64_t *first_offset, uint64_t *byte_pos);
/* Take snapshot name of every partition: -EEXIST, -EINVAL,
 * -ENAMETOOLONG (logged), or the disk's error (nothing stored then).
 * Durable when it returns: the partitions up to the cut and the
 * snapshot's file. */
int registry_snap_create(struct registry *reg, const char *name);
/* Release snapshot name (-ENOENT); the segments only it held go at the
 * next maintenance pass. */
int registry_snap_remove(struct registry *reg, const char *name);
struct snapstore *registry_snaps(struct registry *reg);
/* Bytes of partition n that snapshots keep from retention (0: none). */
uint64_t registry_snap_pinned(struct registry *reg, struct node *n);
/* Whether dropping n's head below byte (fallocate -p) would delete what
 * a snapshot needs: -EBUSY (logged) then, else 0. */
int registry_snap_check_drop(struct registry *reg, struct node *n,
			     uint64_t byte);

/* Milliseconds since the epoch. */
int64_t registry_now_ms(void);
/* Answer a seek query name (see xattr.h) on a partition; -ENODATA if name
 * is not a query. */
int registry_query(struct registry *reg, struct node *n, const char *name,
		   char *buf, size_t size);

#endif
