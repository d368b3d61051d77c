/*
 * registry_metrics.h - .metrics: every open partition's counters gathered
 * from the registry's tree and rendered by prom.h, filtered by what the
 * reader may see.
 */
#ifndef FLUXFS_REGISTRY_METRICS_H
#define FLUXFS_REGISTRY_METRICS_H

#include <stddef.h>
#include <sys/types.h>

#include "prom.h"
#include "registry.h"

/* A caller's credentials, for the one check the kernel cannot make for
 * us: which partitions' series a reader of .metrics may see. */
struct registry_cred {
	uid_t uid;
	gid_t gid;
	const gid_t *groups; /* supplementary groups */
	size_t ngroups;
};

/* Render .metrics: every partition's counters plus d (the registry fills
 * in topics and open partitions).  Only the tests call it; the daemon
 * renders for the caller with registry_metrics_for. */
int registry_metrics(struct registry *reg, struct prom_daemon *d,
		     struct prom_buf *out);
/* The same as cred sees it: only the partitions cred may read (read
 * permission on the partition and search permission on its topic, as the
 * kernel's default_permissions checks them; uid 0 reads everything),
 * with every global series.  cred NULL: every partition. */
int registry_metrics_for(struct registry *reg, const struct registry_cred *cred,
			 struct prom_daemon *d, struct prom_buf *out);
/* Whether cred may read partition p of topic (search the topic, read p) by the
 * rule registry_metrics_for applies; a NULL cred may. */
int registry_may_read(const struct registry_cred *cred, struct node *topic,
		      struct node *p);

#endif
