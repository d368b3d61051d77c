/*
 * fs_int.h - the FUSE layer's private header: the state its files share.
 *
 * The layer is five files: fs_ops.c (the operations table, lifecycle,
 * namespace, attributes, directories, xattrs), fs_io.c (open, read,
 * write, flush, poll, lseek, fallocate and their replies),
 * fs_coherence.c (what the kernel may cache of each node, and the drops
 * and held bytes that keep it right), fs_follow.c (parked follow-view
 * reads and poll handles), fs_produce.c (MNT/.produce: lines routed
 * to partitions by key), fs_groups.c (consumer groups as files,
 * MNT/.groups), fs_at.c (time-addressed views, MNT/.at) and fs_vobj.c
 * (the inode objects of those two views).  Only they include this
 * header; the rest of fluxfs sees fs.h.
 *
 * The registry knows nodes by name and lifetime only; what the kernel may
 * hold of a node, and who has it open how, is struct fs_node, reached
 * through node->fs and made and freed through the registry's hooks.
 */
#ifndef FLUXFS_FS_INT_H
#define FLUXFS_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "framer.h"
#include "fs_follow.h"
#include "registry.h"

#define ENTRY_TIMEOUT 1.0
#define ATTR_TIMEOUT 1.0
/* A node's follow-view inode: nodes are malloc'ed, so bit 0 is free. */
#define FOLLOW_BIT 1u
/* A topic's produce-file inode: its node's address with this value in
 * the low bits (nodes are 16-byte aligned). */
#define PRODUCE_TAG 4u
#define TAG_BITS 15u
/* Unsettled ranges a writer handle tracks exactly; past that the last
 * two merge, which can only report a loss too many, never one too few. */
#define WROTE_RANGES 4

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

/* A group view's FUSE inodes (fs_groups.c): malloc'ed objects tagged
 * with this value in TAG_BITS. */
#define GROUP_TAG 2u
/* A time-addressed view's FUSE inodes (fs_at.c): likewise, this tag. */
#define AT_TAG 8u
/* A snapshot's FUSE inodes (fs_snap.c): likewise, this tag. */
#define SNAP_TAG 12u

enum handle_kind {
	H_READER,
	H_WRITER,
	H_FOLLOW,
	H_METRICS,
	H_DIR,
	H_PRODUCE,
	H_GROUP,
	H_AT
};

struct produce_handle;

/* A view of a partition: the bytes [start, end) of its log shown from
 * file offset 0 (end VIEW_NO_END: up to the log's end, growing).  The
 * group view is one (start: the committed position); a view of the log
 * as of a time would be another. */
#define VIEW_NO_END UINT64_MAX
struct view {
	struct node *n;
	uint64_t start, end;
};
struct group_open;

struct handle {
	enum handle_kind kind;
	struct node *n;
	int append;	   /* O_APPEND: ignore the kernel's offset */
	int cached;	   /* partition handle through the page cache */
	int holding;	   /* counted in n->fs->held_handles (lock) */
	uint64_t held_pos; /* write-through: where the kernel put the
			    * held bytes (protected by lock) */
	/* Byte ranges this handle appended that no fsync has settled yet:
	 * a later-found loss in them is this handle's to report (lock). */
	struct {
		uint64_t from, to;
	} wrote[WROTE_RANGES];
	int nwrote;
	pthread_mutex_t lock; /* orders this handle's writes and flushes */
	struct framer fr;     /* protected by lock */
	char *buf;	      /* metrics / directory snapshot */
	size_t len;
	struct follow_file ff; /* partition and follow files: poll, parking */
	struct produce_handle *produce; /* H_PRODUCE: fs_produce.c (lock) */
	struct group_open *grp; /* H_GROUP: the group reader (fs_groups.c) */
	struct view at;	       /* H_AT: the bytes shown, fixed at open */
	struct handle *prev;   /* protected by fs.hlock */
	struct handle *next;   /* protected by fs.hlock */
};

/* The mount's one state struct. */
struct fs_state {
	struct registry *reg;
	struct fuse_session *se;
	struct notifier *nt;
	struct follow *fw; /* parked follow reads and poll handles */
	struct maint *maint; /* the maintenance thread (maint.h) */
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t writer_errors;
	atomic_uint_fast64_t open_handles;
	atomic_uint produce_next; /* where the next unkeyed write goes */
	pthread_mutex_t hlock;
	struct handle *handles; /* protected by hlock: released at shutdown */
};
extern struct fs_state fs;

static inline void count_request(void)
{
	atomic_fetch_add_explicit(&fs.requests, 1, memory_order_relaxed);
}

static inline struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static inline int is_follow_ino(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_FOLLOW || (ino >= 16 && (ino & FOLLOW_BIT));
}

static inline int is_produce_ino(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_PRODUCE ||
	       (ino >= 16 && (ino & TAG_BITS) == PRODUCE_TAG);
}

/* MNT/.groups and the group view's objects below it. */
static inline int is_group_ino(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_GROUPS ||
	       (ino >= 16 && (ino & TAG_BITS) == GROUP_TAG);
}

/* MNT/.at and the time-addressed views below it. */
static inline int is_at_ino(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_AT ||
	       (ino >= 16 && (ino & TAG_BITS) == AT_TAG);
}

/* MNT/.snapshot and the snapshots' inodes below it. */
static inline int is_snap_ino(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_SNAPSHOT ||
	       (ino >= 16 && (ino & TAG_BITS) == SNAP_TAG);
}

/* The node of a real inode; NULL for control files, the follow, group,
 * time and snapshot views and produce files (so that handlers which know
 * nothing of them refuse them). */
static inline struct node *node_of(fuse_ino_t ino)
{
	return is_follow_ino(ino) || is_produce_ino(ino) ||
			       is_group_ino(ino) || is_at_ino(ino) ||
			       is_snap_ino(ino)
		       ? NULL
		       : registry_node(fs.reg, ino);
}

/* The topic a produce-file inode stands for (NULL for .produce itself). */
static inline struct node *produce_node(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_PRODUCE
		       ? NULL
		       : registry_node(fs.reg, ino & ~(fuse_ino_t)TAG_BITS);
}

/* The node a follow-view inode mirrors (NULL for .follow itself). */
static inline struct node *follow_node(fuse_ino_t ino)
{
	return ino == REGISTRY_INO_FOLLOW
		       ? NULL
		       : registry_node(fs.reg, ino & ~(fuse_ino_t)FOLLOW_BIT);
}

/* ---- fs_ops.c -------------------------------------------------------- */

/* A view's directory (.follow, .produce): the root's attributes, read-only,
 * under inode ino. */
int fs_view_dir_attr(fuse_ino_t ino, struct stat *st);
/* Answer a lookup of a view inode, nothing cached; a failed reply drops
 * the lookup count taken on n (NULL: none). */
void fs_reply_view_entry(fuse_req_t req, fuse_ino_t ino, const struct stat *st,
			 struct node *n);

/* ---- fs_coherence.c -------------------------------------------------- */

/* Set up the tail locks (before the session starts). */
void fs_coherence_init(void);
/* The notifier's senders: drop pages of ino from byte from; drop a
 * directory entry. */
int fs_send_inval(void *arg, uint64_t ino, uint64_t from);
int fs_send_delete(void *arg, uint64_t parent, uint64_t child,
		   const char *name);
/* The lock that orders n's page-cache decisions: opens choosing how to
 * use the page cache, handle counts, drops queued (keyed by inode). */
pthread_mutex_t *fs_tail_lock(uint64_t ino);
/* n's attributes as the kernel may see them (size at most shown_end,
 * plus held bytes shown after the end), marking them cached. */
int fs_node_attr(struct node *n, struct stat *st);
/* A page-cache read of [off, off+size) may reach the end: mark it. */
void fs_mark_tail_read(struct node *n, uint64_t off, size_t size);
/* Drop the kernel's cached attributes of n if it may hold them. */
void fs_inval_attr(struct node *n, uint64_t ino);
/* Show n's new end now, or after a drop from the notifier; returns 1 if
 * the request being handled must be answered by fs_reply_write(late). */
int fs_publish_end(struct node *n, uint64_t ino, uint64_t end, uint64_t from);
/* The drop a direct_io append's reply must wait for (a byte, or none). */
uint64_t fs_direct_write_drop(struct node *n, uint64_t ino);
/* What every append wakes; returns 1 if the reply must wait (late). */
int fs_appended(struct node *n, uint64_t end, int through_cache);
/* Answer a WRITE (count bytes) or err (>= 0): after the drops, if late. */
void fs_reply_write(fuse_req_t req, size_t count, int err, int late);
/* Drop n's cached pages [0, to) from the notifier; where a removed
 * head's pages end. */
void fs_drop_head(struct registry *reg, struct node *n, uint64_t to);
uint64_t fs_head_pages_end(struct node *n);
/* Held bytes: lock around a write-through handle's write, publish and
 * unlock; the bytes shown if the log ends at end (held_lock held). */
void fs_held_lock(struct handle *h);
void fs_held_unlock(struct handle *h);
size_t fs_held_at(struct node *n, uint64_t end);
/* A write-through append landed at end, not at where the kernel put it. */
void fs_drop_misplaced(struct node *n, uint64_t at, uint64_t end);

/* ---- fs_ops.c: directory listings ------------------------------------ */

/* A directory listing being snapshotted at opendir. */
struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t len, cap;
	int err;
	int follow;	 /* listing a follow-view directory */
	uint64_t ino_or; /* ORed into every entry's inode number */
	int produce;	 /* listing .produce: topics, as files */
};
/* Add an entry (a registry_list callback). */
int fs_dirbuf_add(void *arg, const char *name, uint64_t ino,
		  enum node_kind kind);
/* Hand d's snapshot to a directory handle and reply to the opendir (or
 * reply with d's error, or ENOMEM when listing_mem has no room for it). */
void fs_dirbuf_open(fuse_req_t req, struct fuse_file_info *fi, struct dirbuf *d,
		    int ret);
/* Directory listings held open share -o listing_mem (fs_io.c): hold len
 * bytes for a new handle (0, or -ENOMEM, logged, past the bound while
 * others are held), give them back, and whether the held ones leave room
 * for another at all (checked before one is built). */
int fs_listing_hold(size_t len);
void fs_listing_release(size_t len);
int fs_listing_room(void);

/* Reply to a getxattr/listxattr with len bytes of buf (len < 0: that
 * error), or the size alone when size is 0. */
void fs_reply_value(fuse_req_t req, const char *buf, int len, size_t size);

/* ---- fs_vobj.c ------------------------------------------------------- */

/* One inode object of a view below a special directory (.groups, .at):
 * its FUSE inode is its address | the view's tag. */
struct vobj {
	int kind;	   /* the view's own: group, topic, partition... */
	char *name;	   /* the group, the time selection */
	struct node *n;	   /* topic or partition; one registry lookup */
	uint64_t nlookup;  /* protected by the list's lock */
	struct vobj *next; /* the live list; protected by its lock */
} __attribute__((aligned(16)));
struct vobj_list {
	pthread_mutex_t lock;
	struct vobj *live;
};
/* The object for (kind, name, n), found or made, with one more lookup;
 * takes over the caller's registry lookup count on n (dropped if the
 * object already held one).  NULL if out of memory. */
struct vobj *vobj_get(struct vobj_list *l, int kind, const char *name,
		      struct node *n);
/* Drop nlookup lookups of o; the last frees it and its registry count. */
void vobj_forget(struct vobj_list *l, struct vobj *o, uint64_t nlookup);
/* The object of kind for name in registry directory dirn, below view
 * directory dir (named as dir); 0, or -errno of the lookup, -ENOMEM. */
int vobj_child(struct vobj_list *l, struct vobj *dir, struct node *dirn,
	       const char *name, int kind, struct vobj **out);
/* Stat numbers: the node's own with the view's bit, mixed with the
 * object's name so two groups' (or times') copies of a topic differ. */
uint64_t vobj_st_ino(const struct vobj *o, uint64_t view_bits);

/* ---- fs_groups.c ----------------------------------------------------- */

/* The operations on MNT/.groups and below (is_group_ino(ino), or a
 * parent that is). */
void fs_groups_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_groups_forget(fuse_ino_t ino, uint64_t nlookup);
void fs_groups_getattr(fuse_req_t req, fuse_ino_t ino);
void fs_groups_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_groups_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_groups_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi);
void fs_groups_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size);
void fs_groups_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size);
void fs_groups_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
/* Open a group partition file (a handle of kind H_GROUP). */
int fs_groups_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* A read, a flush (close), an fsync on an H_GROUP handle. */
void fs_groups_read(fuse_req_t req, struct handle *h, size_t size, off_t off,
		    struct fuse_file_info *fi);
int fs_groups_flush(fuse_req_t req, struct handle *h);
int fs_groups_fsync(struct handle *h);
/* The handle goes: commit (unless its process was killed), give the
 * partition up to the next reader. */
void fs_groups_release(struct handle *h);
/* For .metrics: group positions that retention passed so far. */
uint64_t fs_groups_retention_skips(void);
/* Reply to a read of view v at file offset off (ff->pos gets the
 * partition byte where it ended): parked at the end if follow. */
void fs_view_read(fuse_req_t req, const struct view *v, struct follow_file *ff,
		  uint64_t off, size_t size, int follow, int nonblock);

/* ---- fs_at.c --------------------------------------------------------- */

/* The operations on MNT/.at and below (is_at_ino(ino), or a parent that
 * is); a lookup of ".at" in the root too. */
void fs_at_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_at_forget(fuse_ino_t ino, uint64_t nlookup);
void fs_at_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_at_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Open a view file (a handle of kind H_AT), read-only. */
int fs_at_open(fuse_ino_t ino, struct fuse_file_info *fi);
void fs_at_read(fuse_req_t req, struct handle *h, size_t size, off_t off,
		struct fuse_file_info *fi);

/* ---- fs_snap.c ------------------------------------------------------- */

/* The operations on MNT/.snapshot and below (is_snap_ino(ino), or a
 * parent that is); a lookup of ".snapshot" in the root too. */
void fs_snap_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_snap_forget(fuse_ino_t ino, uint64_t nlookup);
void fs_snap_getattr(fuse_req_t req, fuse_ino_t ino);
void fs_snap_opendir(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi);
/* mkdir in .snapshot takes a snapshot, rmdir releases one; below it,
 * both are refused as every other change (fs_snap_refuse). */
void fs_snap_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_snap_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
/* Refuse the change what (of name, may be NULL) below a snapshot inode:
 * EROFS and one log line. */
void fs_snap_refuse(fuse_req_t req, fuse_ino_t ino, const char *what,
		    const char *name);
/* Open a snapshot's partition file (a handle of kind H_AT: a view of
 * the live log up to the cut), read-only. */
int fs_snap_open(fuse_ino_t ino, struct fuse_file_info *fi);
void fs_snap_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		      size_t size);
void fs_snap_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

/* ---- fs_io.c --------------------------------------------------------- */

/* What an open handle holds of its partition: the node pinned and its
 * log pinned open (opened if idle: -EMFILE when the descriptor budget is
 * held by partitions in use); fs_unpin_open lets both go. */
int fs_pin_open(struct node *n);
void fs_unpin_open(struct node *n);
struct handle *fs_handle_new(enum handle_kind kind, struct node *n);
void fs_handle_free(struct handle *h);
/* Flush a writer's held line, unpin, free; 1 if a reply must wait. */
int fs_release_handle(struct handle *h);
/* Reply with a private copy of len bytes of a handle's snapshot. */
void fs_reply_snapshot(fuse_req_t req, const char *buf, size_t len);
/* Reply with up to size bytes of n's log at off (follow views, parked
 * reads: the follow_reply_fn); *pos gets where the read ends. */
long fs_reply_data(fuse_req_t req, struct node *n, uint64_t off, size_t size,
		   atomic_uint_fast64_t *pos);
void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph);
void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi);
void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		  off_t length, struct fuse_file_info *fi);

/* ---- fs_produce.c ---------------------------------------------------- */

/* Attributes of .produce (a read-only copy of the root) or of a topic's
 * produce file (write-only, size 0). */
int fs_produce_attr(fuse_ino_t ino, struct stat *st);
/* Lookups: of a name in .produce, and of .produce in the root. */
void fs_produce_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_produce_dir_entry(fuse_req_t req);
/* A setattr on a produce inode: refused (EPERM), truncation logged. */
void fs_produce_setattr(fuse_req_t req, fuse_ino_t ino, int to_set);
/* Open a produce file: write-only, O_APPEND. */
int fs_produce_open(fuse_ino_t ino, struct fuse_file_info *fi);
/* A write on an H_PRODUCE handle (replies). */
void fs_produce_write(fuse_req_t req, struct handle *h, const char *buf,
		      size_t size);
/* Store the held partial line; *late as for fs_appended(). */
int fs_produce_flush(fuse_req_t req, struct handle *h, int *late);
/* Flush every partition the handle appended to. */
int fs_produce_fsync(struct handle *h);
/* Store the held line, unpin, free h; whether the reply must wait. */
int fs_produce_release(struct handle *h);

#endif
