/*
 * prom.c - Prometheus text format for the engine's and daemon's counters.
 *
 * A table maps each struct log_metrics field to its metric name, type and
 * help text, so adding a counter to metrics.h is one line here.  Label
 * values are escaped (backslash, quote, newline) even though fluxfs names
 * cannot hold those characters: the format is cheap to honour.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

struct prom_field {
	const char *name;
	const char *type;
	const char *help;
	size_t offset; /* into struct log_metrics; SIZE_MAX: from the series */
	int scale_ns;  /* nanoseconds shown as seconds */
};

#define LM(f) offsetof(struct log_metrics, f)

static const struct prom_field fields[] = {
	{"fluxfs_bytes_appended_total", "counter", "Bytes appended.",
	 LM(bytes_appended), 0},
	{"fluxfs_messages_appended_total", "counter", "Messages appended.",
	 LM(messages_appended), 0},
	{"fluxfs_batches_appended_total", "counter",
	 "Batches appended (one per write).", LM(batches_appended), 0},
	{"fluxfs_bytes_read_total", "counter", "Bytes read.", LM(bytes_read),
	 0},
	{"fluxfs_reads_total", "counter", "Read calls.", LM(reads), 0},
	{"fluxfs_segments_created_total", "counter", "Segments created.",
	 LM(segments_created), 0},
	{"fluxfs_segments_deleted_total", "counter",
	 "Segments deleted by retention or delete-records.",
	 LM(segments_deleted), 0},
	{"fluxfs_segments_compressed_total", "counter",
	 "Sealed segments compressed.", LM(segments_compressed), 0},
	{"fluxfs_index_lookups_total", "counter", "Index lookups.",
	 LM(index_lookups), 0},
	{"fluxfs_crc_failures_total", "counter", "Batches whose CRC failed.",
	 LM(crc_failures), 0},
	{"fluxfs_lost_messages_total", "counter",
	 "Messages in batches that fluxctl repair dropped as damaged, "
	 "counted as their segments are opened.",
	 LM(lost_messages), 0},
	{"fluxfs_recoveries_total", "counter",
	 "Recovery actions taken when the partition was opened.",
	 LM(recoveries), 0},
	{"fluxfs_truncated_bytes_total", "counter",
	 "Torn bytes removed by recovery.", LM(truncated_bytes), 0},
	{"fluxfs_flushes_total", "counter", "Flushes to stable storage.",
	 LM(flushes), 0},
	{"fluxfs_flush_failures_total", "counter", "Failed flushes.",
	 LM(flush_failures), 0},
	{"fluxfs_sync_requests_total", "counter",
	 "fsync requests and flush_ms=0 appends; a flush covers one or more.",
	 LM(sync_requests), 0},
	{"fluxfs_data_losses_total", "counter",
	 "Flushes whose data sync failed: what they covered may be lost.",
	 LM(data_losses), 0},
	{"fluxfs_lost_bytes_total", "counter",
	 "Bytes covered by flushes whose data sync failed.", LM(lost_bytes), 0},
	{"fluxfs_append_seconds_total", "counter", "Time spent appending.",
	 LM(append_ns_total), 1},
	{"fluxfs_flush_seconds_total", "counter", "Time spent in fsync.",
	 LM(flush_ns_total), 1},
};

static int reserve(struct prom_buf *b, size_t more)
{
	size_t n;
	char *p;

	if (b->len + more < b->cap)
		return 0;
	n = b->cap ? b->cap : 4096;
	while (n <= b->len + more)
		n *= 2;
	p = realloc(b->buf, n);
	if (!p)
		return -ENOMEM;
	b->buf = p;
	b->cap = n;
	return 0;
}

static int put(struct prom_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int put(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n + 1) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += n;
	return 0;
}

/* Append a label value with \\, \" and \n escaped. */
static int put_label(struct prom_buf *b, const char *v)
{
	if (reserve(b, strlen(v) * 2 + 1) < 0)
		return -ENOMEM;
	for (; *v; v++) {
		if (*v == '\\' || *v == '"') {
			b->buf[b->len++] = '\\';
			b->buf[b->len++] = *v;
		} else if (*v == '\n') {
			b->buf[b->len++] = '\\';
			b->buf[b->len++] = 'n';
		} else {
			b->buf[b->len++] = *v;
		}
	}
	b->buf[b->len] = '\0';
	return 0;
}

static int put_sample(struct prom_buf *b, const char *name,
		      const struct prom_series *s, const char *value)
{
	if (put(b, "%s{topic=\"", name) < 0 || put_label(b, s->topic) < 0 ||
	    put(b, "\",partition=\"") < 0 || put_label(b, s->partition) < 0 ||
	    put(b, "\"} %s\n", value) < 0)
		return -ENOMEM;
	return 0;
}

static int put_family(struct prom_buf *b, const char *name, const char *type,
		      const char *help)
{
	return put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Per-partition gauges taken from struct prom_series itself. */
static const struct {
	const char *name, *help;
	size_t offset;
} gauges[] = {
	{ "fluxfs_partition_size_bytes", "End of the log (st_size).",
	  offsetof(struct prom_series, end_byte) },
	{ "fluxfs_partition_disk_bytes", "Retained bytes on disk.",
	  offsetof(struct prom_series, disk_bytes) },
	{ "fluxfs_partition_segments", "Segments in the partition.",
	  offsetof(struct prom_series, segments) },
};

/* The daemon-wide figures, one sample each. */
static const struct {
	const char *name, *type, *help;
	size_t offset;
} daemon_figures[] = {
	{ "fluxfs_topics", "gauge", "Topics.",
	  offsetof(struct prom_daemon, topics) },
	{ "fluxfs_open_partitions", "gauge", "Partitions open in the daemon.",
	  offsetof(struct prom_daemon, open_partitions) },
	{ "fluxfs_open_handles", "gauge", "Open file handles on partitions.",
	  offsetof(struct prom_daemon, open_handles) },
	{ "fluxfs_requests_total", "counter", "FUSE requests served.",
	  offsetof(struct prom_daemon, requests) },
	{ "fluxfs_writer_errors_total", "counter",
	  "Errors returned to writers.",
	  offsetof(struct prom_daemon, writer_errors) },
	{ "fluxfs_notifications_total", "counter",
	  "Kernel cache invalidations sent.",
	  offsetof(struct prom_daemon, notifications) },
	{ "fluxfs_parked_followers", "gauge", "Reads parked waiting for data.",
	  offsetof(struct prom_daemon, parked_followers) },
	{ "fluxfs_fd_budget", "gauge", "Descriptors open partitions may hold.",
	  offsetof(struct prom_daemon, fd_budget) },
	{ "fluxfs_fd_budget_used", "gauge",
	  "Descriptors open partitions hold.",
	  offsetof(struct prom_daemon, fd_used) },
	{ "fluxfs_idle_closes_total", "counter",
	  "Idle partitions closed to make room.",
	  offsetof(struct prom_daemon, idle_closes) },
	{ "fluxfs_fd_budget_refusals_total", "counter",
	  "Opens refused with EMFILE: the budget was held by partitions in "
	  "use.",
	  offsetof(struct prom_daemon, budget_refusals) },
};

/* Render every series and the daemon-wide figures into out. */
int prom_render(struct prom_buf *out, const struct prom_series *s, size_t n,
		const struct prom_daemon *d)
{
	const struct prom_field *f;
	char val[64];
	uint64_t v;
	size_t i, k;

	for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
		f = &fields[k];
		if (put_family(out, f->name, f->type, f->help) < 0)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			v = atomic_load_explicit(
				(const atomic_uint_fast64_t
					 *)((const char *)s[i].m + f->offset),
				memory_order_relaxed);
			if (f->scale_ns)
				snprintf(val, sizeof(val), "%llu.%09llu",
					 (unsigned long long)(v / 1000000000u),
					 (unsigned long long)(v % 1000000000u));
			else
				snprintf(val, sizeof(val), "%llu",
					 (unsigned long long)v);
			if (put_sample(out, f->name, &s[i], val) < 0)
				return -ENOMEM;
		}
	}
	for (k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
		if (put_family(out, gauges[k].name, "gauge", gauges[k].help) <
		    0)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			v = *(const uint64_t *)(const void *)((const char *)&s[i] +
							      gauges[k].offset);
			snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
			if (put_sample(out, gauges[k].name, &s[i], val) < 0)
				return -ENOMEM;
		}
	}
	for (k = 0; k < sizeof(daemon_figures) / sizeof(daemon_figures[0]);
	     k++) {
		v = *(const uint64_t *)(const void *)((const char *)d +
						      daemon_figures[k].offset);
		if (put_family(out, daemon_figures[k].name,
			       daemon_figures[k].type,
			       daemon_figures[k].help) < 0 ||
		    put(out, "%s %llu\n", daemon_figures[k].name,
			(unsigned long long)v) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int put_group_sample(struct prom_buf *b, const char *name,
			    const struct prom_group *g, uint64_t v)
{
	struct prom_series s = {g->topic, g->partition, NULL, 0, 0, 0};

	if (put(b, "%s{group=\"", name) < 0 || put_label(b, g->group) < 0 ||
	    put(b, "\",") < 0)
		return -ENOMEM;
	/* put_sample's labels, after the group's. */
	if (put(b, "topic=\"") < 0 || put_label(b, s.topic) < 0 ||
	    put(b, "\",partition=\"") < 0 || put_label(b, s.partition) < 0 ||
	    put(b, "\"} %llu\n", (unsigned long long)v) < 0)
		return -ENOMEM;
	return 0;
}

/* Render the consumer groups' series. */
int prom_render_groups(struct prom_buf *out, const struct prom_group *g,
		       size_t n, uint64_t retention_skips)
{
	size_t i;

	if (put_family(out, "fluxfs_group_committed_offset", "gauge",
		       "Next message offset a consumer group will read.") < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (put_group_sample(out, "fluxfs_group_committed_offset",
				     &g[i], g[i].committed_offset) < 0)
			return -ENOMEM;
	if (put_family(out, "fluxfs_group_lag_messages", "gauge",
		       "Messages a consumer group has not committed yet.") < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (put_group_sample(out, "fluxfs_group_lag_messages", &g[i],
				     g[i].lag_messages) < 0)
			return -ENOMEM;
	if (put_family(out, "fluxfs_group_retention_skips_total", "counter",
		       "Consumer group positions that retention passed "
		       "(reading went on at the log's start).") < 0 ||
	    put(out, "fluxfs_group_retention_skips_total %llu\n",
		(unsigned long long)retention_skips) < 0)
		return -ENOMEM;
	return 0;
}

int prom_render_snapshot(struct prom_buf *out, const char *name,
			 uint64_t pinned_bytes, int first)
{
	/* Snapshot names are [A-Za-z0-9._-]: no label escaping. */
	if ((first && put_family(out, "fluxfs_snapshot_pinned_bytes", "gauge",
				 "Bytes a snapshot shows, which retention "
				 "keeps while it exists.") < 0) ||
	    put(out, "fluxfs_snapshot_pinned_bytes{snapshot=\"%s\"} %llu\n",
		name, (unsigned long long)pinned_bytes) < 0)
		return -ENOMEM;
	return 0;
}

/* The Kafka mirror's families: each a value taken from the series. */
static const struct {
	const char *name, *type, *help;
	size_t offset; /* a uint64_t of struct prom_mirror_series, or -1 */
} mirror_families[] = {
	{"fluxfs_mirror_state", "gauge",
	 "Mirror state: 0 starting, 1 ok, 2 retrying, 3 error.", (size_t)-1},
	{"fluxfs_mirror_position", "gauge",
	 "Export: local offset acknowledged below; import: Kafka offset next.",
	 offsetof(struct prom_mirror_series, position)},
	{"fluxfs_mirror_lag_messages", "gauge",
	 "Messages not yet exported, or records not yet imported.",
	 offsetof(struct prom_mirror_series, lag)},
	{"fluxfs_mirror_records_total", "counter",
	 "Records acknowledged by the cluster or imported, since mount.",
	 offsetof(struct prom_mirror_series, records)},
	{"fluxfs_mirror_failures_total", "counter",
	 "Deliveries that failed and were retried.",
	 offsetof(struct prom_mirror_series, failures)},
	{"fluxfs_mirror_skipped_total", "counter",
	 "Messages deleted before export, or records over max_message_bytes.",
	 offsetof(struct prom_mirror_series, skipped)},
};

int prom_render_mirror(struct prom_buf *out,
		       const struct prom_mirror_series *s, size_t n)
{
	uint64_t v;
	size_t f, i;

	if (n == 0)
		return 0;
	for (f = 0; f < sizeof(mirror_families) / sizeof(*mirror_families);
	     f++) {
		if (put_family(out, mirror_families[f].name,
			       mirror_families[f].type,
			       mirror_families[f].help) < 0)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			v = mirror_families[f].offset == (size_t)-1
				    ? (uint64_t)s[i].state
				    : *(const uint64_t *)((const char *)&s[i] +
							  mirror_families[f]
								  .offset);
			if (put(out, "%s{topic=\"", mirror_families[f].name) <
				    0 ||
			    put_label(out, s[i].topic) < 0 ||
			    put(out, "\",partition=\"") < 0 ||
			    put_label(out, s[i].partition) < 0 ||
			    put(out, "\",direction=\"%s\"} %llu\n",
				s[i].direction, (unsigned long long)v) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}
