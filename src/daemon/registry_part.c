/*
 * registry_part.c - opening a partition's log on first use and closing it
 * when idle, within the mount's descriptor budget.
 *
 * A partition's node lives from mount to removal; its log (struct
 * partition: the directory, the segments' descriptors and mappings) is
 * open only while something uses it or until the budget needs the room.
 * registry_part_get opens it (running recovery when the last stop was
 * not clean: a crash costs the partitions used afterwards, not the
 * mount) and pins it; registry_part_put unpins it.  When the budget
 * (fdbudget.h) has no room for another, the least recently used idle
 * partition is flushed and closed, and what stat and the info xattrs
 * need is kept in the node (idle_info) so listing and stat of an idle
 * partition open nothing.  If every open partition is pinned, the
 * request that needed another fails with EMFILE; nothing else notices.
 *
 * Locks, in this order: a node's open lock (opening or closing its log;
 * another node's is only ever tried, never waited for), reg->lock, the
 * budget's own lock.  n->part changes only under its open lock plus
 * reg->lock held for writing, so stat under reg->lock sees the log or
 * idle_info, never neither.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "registry.h"
#include "registry_int.h"

/* Descriptors an open partition holds: its directory, and the .log and
 * .idx of its active segment and of sealed ones not yet synced (a
 * sealed segment on stable storage is read through its mappings). */
static unsigned part_cost(struct partition *p)
{
	struct partition_info info;

	partition_get_info(p, &info);
	return info.descriptors > 3 ? info.descriptors : 3;
}

static struct node *node_of_entry(struct fdb_entry *e)
{
	return (struct node *)((char *)e - offsetof(struct node, fdb));
}

/* The lock that serialises opening and closing n's log (shared by
 * nodes whose addresses hash alike). */
static pthread_mutex_t *open_lock(struct registry *reg, struct node *n)
{
	uintptr_t h = (uintptr_t)n >> 4;

	return &reg->open_locks[(h ^ (h >> 8)) % REGISTRY_OPEN_LOCKS];
}

/* What part_room's claims need: the registry, and the open lock its
 * caller holds (NULL: none). */
struct room {
	struct registry *reg;
	pthread_mutex_t *held;
};

/* A victim may be closed if nobody is opening or closing it (or a node
 * sharing its lock) now.  A victim whose lock the caller holds (the node
 * it opens hashes alike) is the caller's to close: a trylock of a lock
 * one holds fails, and that left a lone idle victim unclaimable, so the
 * open failed with EMFILE. */
static int claim_victim(struct fdb_entry *e, void *arg)
{
	struct room *r = arg;
	pthread_mutex_t *l = open_lock(r->reg, node_of_entry(e));

	return l == r->held || pthread_mutex_trylock(l) == 0;
}

/* The partition's directory: where it is now (its topic, or .trash once
 * removed).  Called with reg->lock held. */
static void part_where(struct registry *reg, struct node *n, int *dfd,
		       const char **name)
{
	if (n->removed) {
		*dfd = reg->trashfd;
		*name = n->trash;
	} else {
		*dfd = n->parent->dirfd;
		*name = n->name;
	}
}

/* Persist the time of the last append as the partition's mtime before
 * closing it, so that stat of the closed partition (and after a remount)
 * shows what it showed open.  Called with reg->lock held. */
static void keep_mtime(struct registry *reg, struct node *n,
		       const struct partition_info *info)
{
	struct timespec last;
	int changed = 0;

	if (info->last_ts < 0)
		return;
	last.tv_sec = info->last_ts / 1000;
	last.tv_nsec = (info->last_ts % 1000) * 1000000;
	pthread_mutex_lock(&n->meta_lock);
	if (n->meta.mtime_end != info->end_byte) {
		n->meta.mtime = last;
		if (last.tv_sec > n->meta.ctime.tv_sec)
			n->meta.ctime = last;
		n->meta.mtime_end = info->end_byte;
		changed = 1;
	}
	pthread_mutex_unlock(&n->meta_lock);
	if (changed && node_meta_save(reg, n) < 0)
		diag_warn("cannot store the mtime of '%s' before closing it",
			  n->name);
}

/* Keep info as what a closed n shows, known to level have (registry.h),
 * unless more is known already.  Without memory for it, stat opens the
 * partition next time instead. */
static void idle_keep(struct node *n, const struct partition_info *info,
		      int have)
{
	pthread_mutex_lock(&n->meta_lock);
	if (!n->idle_info)
		n->idle_info = malloc(sizeof(*n->idle_info));
	if (n->idle_info && have >= n->idle_have) {
		*n->idle_info = *info;
		n->idle_have = have;
	}
	pthread_mutex_unlock(&n->meta_lock);
}

int part_idle_info(struct node *n, struct partition_info *info)
{
	int have;

	pthread_mutex_lock(&n->meta_lock);
	have = n->idle_info ? n->idle_have : 0;
	if (have)
		*info = *n->idle_info;
	else
		memset(info, 0, sizeof(*info));
	pthread_mutex_unlock(&n->meta_lock);
	return have;
}

/* Detach n's log under reg->lock, keeping what stat shows; the caller
 * holds n's open lock and closes the returned log. */
static struct partition *part_detach(struct registry *reg, struct node *n)
{
	struct partition_info info;
	struct partition *p;
	int64_t due = INT64_MAX;

	/* n's open lock keeps n->part; nothing appends to it now (it is
	 * unpinned, or the daemon stops). */
	if (n->part) {
		due = partition_next_due(n->part);
		pthread_mutex_lock(&n->meta_lock);
		n->idle_due = due;
		n->due_unknown = 0;
		pthread_mutex_unlock(&n->meta_lock);
	}
	pthread_rwlock_wrlock(&reg->lock);
	p = n->part;
	if (p) {
		partition_get_info(p, &info);
		if (!n->removed)
			keep_mtime(reg, n, &info);
		idle_keep(n, &info, 2);
		n->part = NULL;
	}
	pthread_rwlock_unlock(&reg->lock);
	/* After n->part is gone: a maintenance walk that started before
	 * this (and skipped n as open) raised the hint first, so this
	 * lowers it again for the next pass. */
	idle_hint_lower(reg, due);
	return p;
}

/* Close victim's idle log (its open lock was claimed, and taken off the
 * budget's list) and release the lock unless it is held, the caller's
 * own: 0, or the flush's error (logged). */
static int close_victim(struct registry *reg, struct node *v,
			pthread_mutex_t *held)
{
	struct partition *p = part_detach(reg, v);
	int ret = 0;

	if (p)
		ret = partition_close(p);
	fdb_closed(&reg->fdb, &v->fdb);
	if (ret < 0)
		diag_err("closing idle partition '%s': flush failed: %s",
			 v->name, strerror(-ret));
	if (open_lock(reg, v) != held)
		pthread_mutex_unlock(open_lock(reg, v));
	return ret;
}

int part_close_now(struct registry *reg, struct node *n, int discard)
{
	struct partition *p;
	int ret = 0;

	pthread_mutex_lock(open_lock(reg, n));
	fdb_take(&reg->fdb, &n->fdb);
	if (discard) {
		pthread_rwlock_wrlock(&reg->lock);
		p = n->part;
		n->part = NULL;
		pthread_rwlock_unlock(&reg->lock);
		if (p)
			partition_discard(p);
	} else {
		p = part_detach(reg, n);
		if (p)
			ret = partition_close(p);
	}
	fdb_closed(&reg->fdb, &n->fdb);
	pthread_mutex_unlock(open_lock(reg, n));
	return ret;
}

static void log_recovery(struct node *n, const struct partition_recovery *rec)
{
	if (rec->truncated_bytes || rec->dropped_entries ||
	    rec->rebuilt_indexes || rec->discarded_files)
		diag_warn("recovered '%s': truncated %llu torn bytes, "
			  "dropped %u index entries, rebuilt %u indexes, "
			  "discarded %u leftover files",
			  n->name, (unsigned long long)rec->truncated_bytes,
			  rec->dropped_entries, rec->rebuilt_indexes,
			  rec->discarded_files);
	if (rec->bad_batches)
		diag_err("'%s' has %u batches with a bad crc in sealed "
			 "segments; the rest stays readable",
			 n->name, rec->bad_batches);
}

/* A partition of a topic exported to Kafka (its mirror.conf says "to",
 * retention not forced) holds retention at its stored export position
 * from the moment its log opens: before the maintenance thread can tick
 * it, before the mirror finds it, and on a mount with no Kafka
 * configured at all, so no unexported segment is ever deleted.  The
 * mirror moves the hold on as the cluster acknowledges. */
static void hold_for_export(struct node *n, int topic_dfd,
			    struct partition *p)
{
	struct layout_mirror_pos m = {0};
	char dir, remote[256];
	int force;

	if (layout_mirror_conf_load(topic_dfd, &dir, remote, sizeof(remote),
				    &force) < 0 ||
	    dir != 't' || force)
		return;
	layout_mirror_pos_load(partition_dirfd(p), &m);
	/* Kept with the node's other holds (a snapshot's): the open
	 * applies the lowest of them. */
	node_set_hold(n, REGISTRY_HOLD_EXPORT, m.local_after);
}

/* Open n's log (n's open lock held, budget room reserved). */
static int part_open(struct registry *reg, struct node *n, unsigned reserved)
{
	struct partition_recovery rec;
	struct partition *p = NULL;
	struct config cfg;
	const char *name;
	int dfd, ret;

	memset(&rec, 0, sizeof(rec));
	pthread_rwlock_rdlock(&reg->lock);
	if (n->removed && !n->trash[0]) {
		pthread_rwlock_unlock(&reg->lock);
		return -ENOENT;
	}
	part_where(reg, n, &dfd, &name);
	effective_config(reg, n, &cfg);
	ret = partition_open(dfd, name, &cfg, registry_now_ms(), &p, &rec);
	if (ret < 0)
		diag_err("cannot open partition '%s/%s': %s",
			 n->removed ? LAYOUT_TRASH_DIR : n->parent->name,
			 n->name, strerror(-ret));
	else if (!n->removed)
		hold_for_export(n, dfd, p);
	pthread_rwlock_unlock(&reg->lock);
	if (ret < 0)
		return ret;
	log_recovery(n, &rec);
	pthread_rwlock_wrlock(&reg->lock);
	n->part = p;
	/* Retention holds outlive an idle close (a snapshot's); set under
	 * reg->lock, as registry_hold_retention reads n->part. */
	partition_hold_retention(p, node_hold(n));
	/* A rename or a configuration change made while it opened
	 * reaches it now. */
	part_where(reg, n, &dfd, &name);
	partition_renamed(p, dfd, name);
	ret = apply_config(reg, n, NULL);
	pthread_rwlock_unlock(&reg->lock);
	if (ret < 0)
		diag_warn("cannot apply configuration to '%s': %s", n->name,
			  strerror(-ret));
	attach_partition(reg, n);
	fdb_opened(&reg->fdb, &n->fdb, reserved, part_cost(p));
	return 0;
}

int part_room(struct registry *reg, const char *what, const char *name,
	      pthread_mutex_t *held)
{
	struct room r = {reg, held};
	struct fdb_entry *victim;
	int ret, busy = 0;

	/* An idle partition another thread is opening or closing this
	 * moment is asked for again for up to a second before the open is
	 * refused: only partitions in use refuse it. */
	while ((ret = fdb_make_room(&reg->fdb, FDB_OPEN_COST, claim_victim,
				    &r, &victim)) == 1 ||
	       (ret == -EAGAIN && busy++ < 1000)) {
		if (ret == 1)
			close_victim(reg, node_of_entry(victim), held);
		else
			usleep(1000);
	}
	if (ret == -EAGAIN)
		ret = -EMFILE;
	if (ret < 0)
		diag_err("cannot %s partition '%s': the descriptor budget "
			 "(%llu) is held by partitions in use (EMFILE)",
			 what, name, (unsigned long long)reg->fdb.budget);
	return ret;
}

void part_created(struct registry *reg, struct node *n)
{
	fdb_opened(&reg->fdb, &n->fdb, FDB_OPEN_COST, part_cost(n->part));
	fdb_unpin(&reg->fdb, &n->fdb, n->fdb.cost);
}

int part_dir_open(struct registry *reg, struct node *n)
{
	const char *name;
	int dfd;

	if (n->removed && !n->trash[0])
		return -ENOENT;
	part_where(reg, n, &dfd, &name);
	return io_opendirat(dfd, name);
}

/* What stat needs of a closed partition that was not opened since the
 * mount: after a clean stop, partition.state's recovery point is the
 * end of its log.  Called with reg->lock held. */
static void idle_from_state(struct registry *reg, struct node *n)
{
	struct layout_state st;
	struct partition_info info;
	int fd, ret;

	fd = part_dir_open(reg, n);
	if (fd < 0)
		return;
	ret = layout_state_load(fd, &st);
	io_close(fd);
	if (ret < 0)
		return;
	memset(&info, 0, sizeof(info));
	info.start_offset = st.start_offset;
	info.start_byte = st.start_byte;
	info.end_byte = st.recovery_point;
	info.flushed_byte = st.recovery_point;
	info.disk_bytes = st.recovery_point - st.start_byte;
	info.first_ts = info.last_ts = -1;
	idle_keep(n, &info, 1);
}

int part_info(struct registry *reg, struct node *n,
	      struct partition_info *info, int need)
{
	int have, ret;

	pthread_rwlock_rdlock(&reg->lock);
	if (n->part) {
		partition_get_info(n->part, info);
		pthread_rwlock_unlock(&reg->lock);
		return 0;
	}
	if (n->removed) {
		pthread_rwlock_unlock(&reg->lock);
		return -ENOENT; /* open only while pinned, then deleted */
	}
	pthread_mutex_lock(&n->meta_lock);
	have = n->idle_have;
	pthread_mutex_unlock(&n->meta_lock);
	if (!have && reg->was_clean)
		idle_from_state(reg, n);
	have = part_idle_info(n, info);
	pthread_rwlock_unlock(&reg->lock);
	if (have >= need)
		return 0;
	/* Not known without the log (after a crash it must be recovered
	 * first): open it, which keeps what stat needs when it closes. */
	ret = registry_part_get(reg, n);
	if (ret < 0)
		return ret;
	partition_get_info(n->part, info);
	registry_part_put(reg, n);
	return 0;
}

int registry_part_get(struct registry *reg, struct node *n)
{
	int ret;

	if (n->kind != NODE_PARTITION)
		return -EISDIR;
	if (fdb_pin(&reg->fdb, &n->fdb, 1) == 0)
		return 0;
	pthread_mutex_lock(open_lock(reg, n));
	if (fdb_pin(&reg->fdb, &n->fdb, 1) == 0) {
		pthread_mutex_unlock(open_lock(reg, n));
		return 0;
	}
	ret = part_room(reg, "open", n->name, open_lock(reg, n));
	if (ret < 0) {
		pthread_mutex_unlock(open_lock(reg, n));
		return ret;
	}
	ret = part_open(reg, n, FDB_OPEN_COST);
	if (ret < 0)
		fdb_unreserve(&reg->fdb, FDB_OPEN_COST);
	pthread_mutex_unlock(open_lock(reg, n));
	return ret;
}

void registry_part_put(struct registry *reg, struct node *n)
{
	struct partition *p = n->part;

	/* The pin keeps p open here: its cost is read before the unpin. */
	fdb_unpin(&reg->fdb, &n->fdb, p ? part_cost(p) : n->fdb.cost);
}

int registry_part_peek(struct registry *reg, struct node *n)
{
	return fdb_pin(&reg->fdb, &n->fdb, 0);
}

int registry_part_is_open(struct registry *reg, struct node *n)
{
	int open;

	pthread_rwlock_rdlock(&reg->lock);
	open = n->part != NULL;
	pthread_rwlock_unlock(&reg->lock);
	return open;
}

int registry_part_close_idle(struct registry *reg, struct node *n)
{
	pthread_mutex_t *lock = open_lock(reg, n);
	int ret = 0;

	pthread_mutex_lock(lock);
	if (fdb_take_idle(&reg->fdb, &n->fdb))
		ret = close_victim(reg, n, lock);
	pthread_mutex_unlock(lock);
	return ret;
}

void registry_part_trim(struct registry *reg)
{
	struct room r = {reg, NULL};
	struct fdb_entry *victim;

	while (fdb_over(&reg->fdb, claim_victim, &r, &victim))
		close_victim(reg, node_of_entry(victim), NULL);
}

uint64_t registry_default_fd_budget(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 512;
	return rl.rlim_cur / 2 > 64 ? rl.rlim_cur / 2 : 64;
}

void registry_set_fd_budget(struct registry *reg, uint64_t budget)
{
	pthread_mutex_lock(&reg->fdb.lock);
	reg->fdb.budget = budget;
	pthread_mutex_unlock(&reg->fdb.lock);
}

uint64_t registry_fd_budget(struct registry *reg)
{
	return reg->fdb.budget;
}
