/*
 * registry_int.h - the registry's private header: struct registry and the
 * node helpers its files share.
 *
 * The registry is four files: registry.c (names and lifetimes: nodes,
 * lookup, create, rename and removal, pins, mode, owner and times),
 * registry_config.c (the configuration layers), registry_open.c
 * (opening, locking and loading the data directory, and closing it) and
 * registry_metrics.c (gathering every partition's metrics for .metrics).
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
	struct groupstore *groups; /* consumer groups (its own lock) */
};

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
/* Push n's effective configuration into its partition, if open. */
int apply_config(struct registry *reg, struct node *n);
/* Read up to size - 1 bytes of dirfd/file into buf, NUL-terminated;
 * the length or -errno. */
int read_small(int dirfd, const char *file, char *buf, size_t size);
/* n's partition log was opened: note its counters, call the attach
 * hook. */
void attach_partition(struct registry *reg, struct node *n);

#endif
