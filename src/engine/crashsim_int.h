/*
 * crashsim_int.h - what crashsim.c (recording the changes not yet made
 * durable) and crashsim_replay.c (the power cut played over them) share:
 * the records themselves.  Only those two files include it.
 */
#ifndef FLUXFS_CRASHSIM_INT_H
#define FLUXFS_CRASHSIM_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "crashsim.h"

struct change {
	uint64_t seq; /* order of all recorded calls */
	int is_trunc;
	uint64_t off;	    /* write: where; truncate: the new length */
	uint64_t len;	    /* write: bytes written */
	uint64_t old_size;  /* file size before the change */
	unsigned char *old; /* bytes the change destroyed, from old_pos */
	uint64_t old_pos;
	uint64_t old_len;
	unsigned char *data; /* write: the bytes written */
	struct change *next;
};

struct cfile {
	dev_t dev;
	ino_t ino;
	int fd; /* crashsim's own O_RDWR descriptor */
	struct change *head, *tail;
	uint32_t nchanges;
	struct cfile *next;
};

/* A directory some recorded change named, held open to undo it. */
struct cdir {
	dev_t dev;
	ino_t ino;
	int fd; /* O_PATH|O_DIRECTORY */
	struct cdir *next;
};

enum dop { D_CREATE, D_MKDIR, D_UNLINK, D_RMDIR, D_RENAME, D_EXCHANGE };

/* One unsynced directory change: name in dir (and name2 in dir2 for a
 * rename, the new name). */
struct dchange {
	uint64_t seq;
	enum dop op;
	struct cdir *dir, *dir2;
	char *name, *name2;
	dev_t dev;
	ino_t ino;  /* the inode created, unlinked or renamed */
	ino_t ino2; /* RENAME_EXCHANGE: the other inode */
	int old_fd; /* an unlinked or replaced regular file, to restore */
	mode_t old_mode;
	int old_kind; /* rename: 0 nothing replaced, 1 a file, 2 a dir */
	ino_t old_ino; /* the inode the change unlinked or replaced */
	struct dchange *next;
};

/* Everything recorded and not yet durable, as the crash sees it; the
 * recorder's lock is held while it is in use. */
struct crashsim_log {
	struct cfile *files;   /* per file, changes oldest first */
	struct cdir *dirs;     /* every directory a change named */
	struct dchange *dhead; /* directory changes, oldest first */
	uint32_t ndchanges;
};

/* Play the power cut over log as mode says (choices drawn from seed) and
 * fill *stats if not NULL; the records are left for the caller to forget. */
int crashsim_replay(const struct crashsim_log *log, enum crashsim_mode mode,
		    uint64_t seed, struct crashsim_stats *stats);

#endif
