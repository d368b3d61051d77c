/*
 * prom.h - render the contents of MNT/.metrics in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * The caller hands over one series per partition (its labels and the
 * engine's counters) and the daemon-wide figures; the output groups every
 * sample of a metric under one HELP and TYPE line, as the format asks.
 * No FUSE and no registry here: the caller holds whatever lock keeps the
 * names stable while this runs.
 */
#ifndef FLUXFS_PROM_H
#define FLUXFS_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct prom_series {
	const char *topic;
	const char *partition;
	const struct log_metrics *m;
	uint64_t end_byte;   /* st_size */
	uint64_t disk_bytes; /* retained bytes on disk */
	uint64_t segments;
};

struct prom_daemon {
	uint64_t topics;
	uint64_t open_partitions;
	uint64_t open_handles;
	uint64_t requests;	   /* FUSE requests served */
	uint64_t writer_errors;	   /* errors returned to writers */
	uint64_t notifications;	   /* kernel cache invalidations sent */
	uint64_t parked_followers; /* follow-view reads parked now */
	uint64_t fd_budget;	   /* descriptors open partitions may hold */
	uint64_t fd_used;	   /* ... and hold (or are reserved) now */
	uint64_t idle_closes;	   /* idle partitions closed to make room */
	uint64_t budget_refusals;  /* opens refused: budget held by pins */
	uint64_t group_retention_skips; /* group positions retention passed */
};

/* A consumer group's position on one partition. */
struct prom_group {
	char *group; /* owned by the caller */
	const char *topic, *partition;
	uint64_t committed_offset;
	uint64_t lag_messages;
};

/* A growable text buffer; free(buf) when done. */
struct prom_buf {
	char *buf;
	size_t len;
	size_t cap;
};

/* Render the consumer groups' series into out (appending): positions and
 * lag per group and partition, and the daemon-wide retention skips. */
int prom_render_groups(struct prom_buf *out, const struct prom_group *g,
		       size_t n, uint64_t retention_skips);
/* One partition mirrored to or from Kafka (mirror.h). */
struct prom_mirror_series {
	const char *topic, *partition;
	const char *direction; /* "export" or "import" */
	int state;	       /* 0 starting, 1 ok, 2 retrying, 3 error */
	uint64_t position, lag, records, failures, skipped;
};

/* Render everything into out (appending).  Returns 0 or -ENOMEM. */
int prom_render(struct prom_buf *out, const struct prom_series *s, size_t n,
		const struct prom_daemon *d);
/* Render one snapshot's series (appending; first: with the family's
 * header): the bytes it keeps from retention.  0 or -ENOMEM. */
int prom_render_snapshot(struct prom_buf *out, const char *name,
			 uint64_t pinned_bytes, int first);
/* Render the Kafka mirror's series (appending).  0 or -ENOMEM. */
int prom_render_mirror(struct prom_buf *out,
		       const struct prom_mirror_series *s, size_t n);

#endif
