/*
 * registry_metrics.c - gathering .metrics: one series set per open
 * partition (its counters, end, size on disk and segment count) plus the
 * daemon-wide figures, rendered in the Prometheus text format by prom.c.
 *
 * The tree is walked under the registry's read lock, which keeps every
 * listed partition open while prom_render reads its counters.  A reader
 * sees only the partitions the kernel would let it read, by the same
 * permission rule the kernel's default_permissions applies.
 */
#include <errno.h>
#include <stdlib.h>

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
			if (!p->part)
				continue;
			open++;
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
			partition_get_info(p->part, &info);
			s[n].topic = t->name;
			s[n].partition = p->name;
			s[n].m = partition_metrics(p->part);
			s[n].end_byte = info.end_byte;
			s[n].disk_bytes = info.disk_bytes;
			s[n].segments = info.segments;
			n++;
		}
	}
	d->open_partitions = open; /* a global figure: all of them */
	ret = prom_render(out, s, n, d);
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
