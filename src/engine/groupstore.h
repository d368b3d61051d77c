/*
 * groupstore.h - consumer groups' committed positions, kept in the data
 * directory: one file per group, replaced atomically on every commit.
 *
 * A group has options (where it starts without a position, whether its
 * reads wait at the end, how often an open reader commits) and, per
 * partition it has read, a committed position: a byte at a message
 * boundary and that message's offset.  Positions are keyed by the
 * partition's stored inode number (layout.h), which stays with the
 * partition across renames and is never handed out again, so a renamed
 * partition keeps its positions and a deleted one's are never found
 * again (groupstore_prune drops them from the files: the registry does
 * it when a partition is deleted, and at every mount).
 *
 * On disk (the format's one reader and writer, used by the daemon and
 * fluxctl alike):
 *   DATA_DIR/.groups/<group>.group     text, written by io_write_atomic:
 *     fluxfs-group 1
 *     auto_offset_reset=earliest|latest
 *     follow=0|1
 *     commit_ms=N
 *     pos <ino> <byte> <offset> <commit_ms>     one per partition
 *     crc32c=<8 hex digits>                     of every byte above
 * A crash mid-commit leaves the previous file whole (and a .tmp that the
 * next open removes); a file that fails its CRC or does not parse is
 * refused whole (-EBADMSG), never half-read.
 *
 * Thread-safe: one mutex orders every call, and a commit returns once
 * its file is durable.  No FUSE, no registry: the daemon maps names.
 */
#ifndef FLUXFS_GROUPSTORE_H
#define FLUXFS_GROUPSTORE_H

#include <stddef.h>
#include <stdint.h>

#define GROUPSTORE_DIR ".groups"
#define GROUPSTORE_SUFFIX ".group"
#define GROUPSTORE_NAME_MAX 200
#define GROUPSTORE_COMMIT_MS_DEFAULT 5000

struct groupstore;

struct group_opts {
	int latest;	    /* auto_offset_reset=latest (else earliest) */
	int follow;	    /* reads at the end wait */
	uint32_t commit_ms; /* an open reader commits this often */
};

struct group_pos {
	uint64_t ino;	   /* the partition's stored inode number */
	uint64_t byte;	   /* committed: the next read starts here */
	uint64_t offset;   /* the message offset at byte */
	int64_t commit_ms; /* when it was committed */
};

/* Open DATA_DIR/.groups below rootfd (created if missing), load every
 * group; a group file that fails its check is logged and left out.
 * readonly: to look only, beside a daemon that may be writing (nothing
 * created or removed; every change is -EROFS). */
int groupstore_open(int rootfd, int readonly, struct groupstore **out);
void groupstore_close(struct groupstore *gs);

/* 0 if name may name a group (the rules of topic names), else -EINVAL
 * or -ENAMETOOLONG. */
int groupstore_check_name(const char *name);

/* Create (durably) / remove a group: -EEXIST, -ENOENT, -EINVAL. */
int groupstore_create(struct groupstore *gs, const char *name);
int groupstore_remove(struct groupstore *gs, const char *name);
int groupstore_exists(struct groupstore *gs, const char *name);
/* Every group's name, in creation order; stops when cb returns non-zero. */
int groupstore_list(struct groupstore *gs,
		    int (*cb)(void *arg, const char *name), void *arg);

/* A malloc'ed copy of every group's name (*n of them), for a caller
 * that calls back into the store for each; free with
 * groupstore_names_free. */
int groupstore_names(struct groupstore *gs, char ***names, size_t *n);
void groupstore_names_free(char **names, size_t n);

int groupstore_get_opts(struct groupstore *gs, const char *name,
			struct group_opts *opts);
int groupstore_set_opts(struct groupstore *gs, const char *name,
			const struct group_opts *opts);

/* The position of name on partition ino: -ENODATA if it has none. */
int groupstore_get(struct groupstore *gs, const char *name, uint64_t ino,
		   struct group_pos *pos);
/* Set (pos) or clear (pos NULL: no position, auto_offset_reset applies)
 * the position of name on ino, durably. */
int groupstore_commit(struct groupstore *gs, const char *name, uint64_t ino,
		      const struct group_pos *pos);
/* Every position of name; stops when cb returns non-zero. */
int groupstore_positions(struct groupstore *gs, const char *name,
			 int (*cb)(void *arg, const struct group_pos *pos),
			 void *arg);
/* Drop the positions whose partition is gone (exists(arg, ino) == 0)
 * from every group; returns how many were dropped or -errno. */
int groupstore_prune(struct groupstore *gs,
		     int (*exists)(void *arg, uint64_t ino), void *arg);

/* The file format, for fluxctl and tests: parse a group file's text into
 * opts and a malloc'ed array of positions (-EBADMSG if it fails). */
int groupstore_decode(const char *text, size_t len, struct group_opts *opts,
		      struct group_pos **pos, size_t *npos);
/* Encode into a malloc'ed buffer. */
int groupstore_encode(const struct group_opts *opts,
		      const struct group_pos *pos, size_t npos, char **out,
		      size_t *len);

#endif
