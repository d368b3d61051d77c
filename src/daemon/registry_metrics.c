/*
 * registry_metrics.c - gathering .metrics: one series set per partition
 * (its counters, end, size on disk and segment count) plus the
 * daemon-wide figures, rendered in the Prometheus text format by prom.c.
 * A partition closed while idle shows zero counters (they count from its
 * opening) and the end, size and segments it had when it closed.
 *
 * The tree is walked under the registry's read lock, which keeps every
 * listed open partition open while prom_render reads its counters.  A reader
 * sees only the partitions the kernel would let it read, by the same
 * permission rule the kernel's default_permissions applies.
 */
#include <errno.h>
#include <stdlib.h>

#include <string.h>

#include "groupstore.h"
#include "snapstore.h"
#include "registry.h"
#include "registry_int.h"
#include "registry_metrics.h"

/* Render .metrics for every partition in the tree. */
int registry_metrics(struct registry *reg, struct prom_daemon *d,
		     struct prom_buf *out)
{
	return registry_metrics_for(reg, NULL, d, out);
}

/* Whether cred has every permission in mask (MAY_READ...) on n, by the
 * rule the kernel applies: the owner's bits for the owner, else the
 * group's for a member of the file's group, else the others'.  uid 0 may
 * read anything and search any directory (CAP_DAC_OVERRIDE). */
#define MAY_EXEC 1
#define MAY_READ 4
static int cred_may(const struct registry_cred *cred, struct node *n,
		    unsigned mask)
{
	struct node_meta m;
	unsigned bits;
	size_t i;

	if (!cred || cred->uid == 0)
		return 1;
	pthread_mutex_lock(&n->meta_lock);
	m = n->meta;
	pthread_mutex_unlock(&n->meta_lock);
	if (cred->uid == m.uid) {
		bits = (m.mode >> 6) & 7;
	} else {
		bits = m.mode & 7;
		if (cred->gid == m.gid)
			bits = (m.mode >> 3) & 7;
		for (i = 0; i < cred->ngroups; i++)
			if (cred->groups[i] == m.gid)
				bits = (m.mode >> 3) & 7;
	}
	return (bits & mask) == mask;
}

/* The counters of a partition closed while idle. */
static struct log_metrics idle_counters;
/* Gathering the consumer groups' series (under reg->lock, read). */
struct group_walk {
	struct registry *reg;
	const struct registry_cred *cred;
	struct prom_group *g;
	size_t n, gcap;
	const char *group; /* the group whose positions are walked */
};

static int add_position(void *arg, const struct group_pos *pos)
{
	struct group_walk *w = arg;
	struct partition_info info;
	struct prom_group *grown;
	struct node *t, *p;

	for (t = w->reg->root.children; t; t = t->next)
		for (p = t->children; p; p = p->next) {
			if (p->kind != NODE_PARTITION ||
			    registry_st_ino(w->reg, p) != pos->ino)
				continue;
			if (!cred_may(w->cred, t, MAY_EXEC) ||
			    !cred_may(w->cred, p, MAY_READ))
				return 0;
			if (w->n == w->gcap) {
				w->gcap = w->gcap ? w->gcap * 2 : 16;
				grown = realloc(w->g, w->gcap * sizeof(*grown));
				if (!grown)
					return -ENOMEM;
				w->g = grown;
			}
			/* An idle partition shows its offsets as they were
			 * when it closed; one not opened since the mount
			 * has no series (its offsets are not known). */
			if (p->part)
				partition_get_info(p->part, &info);
			else if (part_idle_info(p, &info) < 2)
				return 0;
			w->g[w->n].group = (char *)w->group;
			w->g[w->n].topic = t->name;
			w->g[w->n].partition = p->name;
			w->g[w->n].committed_offset = pos->offset;
			w->g[w->n].lag_messages =
				info.next_offset > pos->offset
					? info.next_offset - pos->offset
					: 0;
			w->n++;
			return 0;
		}
	return 0;
}

/* The groups' series of the partitions cred may read. */
static int render_groups(struct registry *reg, const struct registry_cred *cred,
			 const struct prom_daemon *d, struct prom_buf *out)
{
	struct group_walk w = {reg, cred, NULL, 0, 0, NULL};
	size_t i, nnames = 0;
	char **names = NULL;
	int ret;

	ret = groupstore_names(reg->groups, &names, &nnames);
	for (i = 0; ret == 0 && i < nnames; i++) {
		w.group = names[i];
		ret = groupstore_positions(reg->groups, names[i], add_position,
					   &w);
		if (ret == -ENOENT) /* removed meanwhile */
			ret = 0;
	}
	if (ret == 0)
		ret = prom_render_groups(out, w.g, w.n,
					 d->group_retention_skips);
	groupstore_names_free(names, nnames);
	free(w.g);
	return ret;
}

struct snap_walk {
	struct registry *reg;
	struct prom_buf *out;
	int first;
};

static int add_snapshot(void *arg, const char *name, int64_t created_ms,
			size_t nparts, uint64_t bytes)
{
	struct snap_walk *w = arg;
	int ret;

	(void)created_ms;
	(void)nparts;
	ret = prom_render_snapshot(w->out, name, bytes, w->first);
	w->first = 0;
	return ret;
}

/* The snapshots' series: what each keeps, so a forgotten one shows. */
static int render_snapshots(struct registry *reg, struct prom_buf *out)
{
	struct snap_walk w = {reg, out, 1};

	return snapstore_list(reg->snaps, add_snapshot, &w);
}

/* Render .metrics as cred sees it. */
int registry_metrics_for(struct registry *reg, const struct registry_cred *cred,
			 struct prom_daemon *d, struct prom_buf *out)
{
	struct prom_series *s = NULL, *ns;
	struct partition_info info;
	struct node *t, *p;
	size_t n = 0, cap = 0, open = 0;
	int ret;

	pthread_rwlock_rdlock(&reg->lock);
	d->topics = reg->root.nchildren;
	for (t = reg->root.children; t; t = t->next) {
		int searchable = cred_may(cred, t, MAY_EXEC);

		for (p = t->children; p; p = p->next) {
			open += p->part != NULL;
			if (!searchable || !cred_may(cred, p, MAY_READ))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				ns = realloc(s, cap * sizeof(*s));
				if (!ns) {
					ret = -ENOMEM;
					goto out;
				}
				s = ns;
			}
			s[n].topic = t->name;
			s[n].partition = p->name;
			if (p->part) {
				partition_get_info(p->part, &info);
				s[n].m = partition_metrics(p->part);
			} else {
				/* Closed while idle: what it showed when it
				 * closed, no counts since. */
				part_idle_info(p, &info);
				s[n].m = &idle_counters;
			}
			s[n].end_byte = info.end_byte;
			s[n].disk_bytes = info.disk_bytes;
			s[n].segments = info.segments;
			n++;
		}
	}
	d->open_partitions = open; /* a global figure: logs open now */
	pthread_mutex_lock(&reg->fdb.lock);
	d->fd_budget = reg->fdb.budget;
	d->fd_used = reg->fdb.used;
	d->idle_closes = reg->fdb.evictions;
	d->budget_refusals = reg->fdb.refusals;
	pthread_mutex_unlock(&reg->fdb.lock);
	ret = prom_render(out, s, n, d);
	if (ret == 0 && reg->groups)
		ret = render_groups(reg, cred, d, out);
	if (ret == 0 && reg->snaps)
		ret = render_snapshots(reg, out);
out:
	pthread_rwlock_unlock(&reg->lock);
	free(s);
	return ret;
}

int registry_may_read(const struct registry_cred *cred, struct node *topic,
		      struct node *p)
{
	return cred_may(cred, topic, MAY_EXEC) &&
	       cred_may(cred, p, MAY_READ);
}
