/*
 * mirror_import.c - the importer thread: the partitions 0..N-1 of an
 * imported topic follow the N partitions of the Kafka topic.  Each is
 * fetched by explicit assignment (librdkafka's simple consumer, no
 * consumer group) from the offset its mirror.intent says, and each record
 * becomes one message (layout_value_escape()), appended with the record's
 * timestamp as its append time (kept non-decreasing, as the time index
 * needs), so .at views, time seeks and retention by age work on imported
 * data.  The FUSE layer is told of each append (followers wake) through
 * the callback main gave mirror_start().
 *
 * Exactly once across restarts: before each append the importer stores
 * its intent in mirror.intent (the local end and the Kafka offset before
 * and after it; one pwrite and fdatasync into alternate slots); on start, whichever of the two local ends the log has
 * says which Kafka offset resumes (mirror_import_resume()), also after a
 * power cut took the append but not the intent: each append is flushed
 * before the next intent, so only the last can be missing.  Records are grouped
 * into one append per run of the same partition and timestamp, and the
 * runs of one partition fetched in a row under one intent (struct
 * igroup), across consumed batches while more records are queued.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "mirror_int.h"
#include "partition.h"

/* At most this many records and bytes per append. */
#define IMPORT_RUN_RECORDS 10000
#define IMPORT_RUN_BYTES (4u << 20)
#define IMPORT_BATCH 10000
/* How often an imported topic's partition count is asked again, so that
 * partitions added in Kafka join the import. */
#define IMPORT_REFRESH_MS 10000

/* Test builds: while the file FLUXFS_MIRROR_HIDE_PARTITIONS names holds a
 * number N, Kafka topics are reported with at most N partitions; removing
 * it "adds" the rest.  librdkafka's mock cluster cannot add partitions to
 * a topic (no CreatePartitions), so this is how a test shows partitions
 * added in Kafka joining an import. */
static int fewer_partitions(int n)
{
#ifdef FLUXFS_FAULT_INJECTION
	const char *path = getenv("FLUXFS_MIRROR_HIDE_PARTITIONS");
	FILE *f = path ? fopen(path, "r") : NULL;
	int cap;

	if (f) {
		if (fscanf(f, "%d", &cap) == 1 && cap >= 0 && cap < n)
			n = cap;
		fclose(f);
	}
#endif
	return n;
}

int mirror_remote_partitions(rd_kafka_t *rk, const char *topic, char *err,
			     size_t esize)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e;
	int ret;

	if (!rkt)
		return -ENOMEM;
	e = rd_kafka_metadata(rk, 0, rkt, &md, MIRROR_QUERY_MS);
	if (!e && md->topic_cnt == 1)
		e = md->topics[0].err;
	if (e) {
		snprintf(err, esize, "%s", rd_kafka_err2str(e));
		ret = e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? -ENOENT
								   : -EAGAIN;
	} else {
		ret = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
		ret = fewer_partitions(ret);
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return ret;
}

/* Create the local partitions 0..nremote-1 that t lacks. */
static void create_parts(struct mtopic *t)
{
	struct node *n;
	char name[16];
	int32_t i;
	int ret;

	for (i = 0; i < t->nremote && i < MIRROR_MAX_PARTS; i++) {
		snprintf(name, sizeof(name), "%d", i);
		ret = registry_create(mirror.reg, t->node, name, 0444, 0, 0, &n);
		if (ret == 0)
			registry_forget(mirror.reg, n, 1);
		else if (ret != -EEXIST)
			diag_warn("mirror: cannot create %s/%s: %s",
				  t->node->name, name, strerror(-ret));
	}
	if (t->nremote > MIRROR_MAX_PARTS)
		diag_warn("mirror: kafka topic '%s' has %d partitions; only "
			  "the first %d are imported", t->remote, t->nremote,
			  MIRROR_MAX_PARTS);
}

/* The Kafka topic has n partitions: create and mirror those t lacks. */
static void set_nremote(struct mtopic *t, int n)
{
	t->nremote = n;
	pthread_mutex_lock(&mirror.create_lock);
	create_parts(t);
	mirror_find_parts(t);
	pthread_mutex_unlock(&mirror.create_lock);
}

/* Start fetching mp where its mirror.intent says. */
static int start_part(struct mpart *mp)
{
	struct layout_mirror_pos m;
	struct partition_info info;
	int dfd = partition_dirfd(mp->node->part);
	uint64_t remote;
	int ret;

	partition_get_info(mp->node->part, &info);
	ret = layout_mirror_intent_load(dfd, &m);
	if (ret == -ENOENT && info.next_offset == 0) {
		mp->remote = RD_KAFKA_OFFSET_BEGINNING;
		mp->iseq = 0;
	} else if (ret < 0 ||
		   mirror_import_resume(&m, info.next_offset, &remote) < 0) {
		mirror_set_state(mp, MS_ERROR,
				 ret < 0 ? "local messages but no mirror.intent"
					 : "the log does not end where "
					   "mirror.intent says");
		return -ESTALE;
	} else {
		mp->remote = (int64_t)remote;
		mp->iseq = m.seq;
		if (info.next_offset != m.local_before &&
		    info.next_offset != m.local_after)
			diag_info("mirror %s/%d: %llu of the last %llu imported "
				  "messages were kept; resuming at kafka "
				  "offset %llu", mp->t->node->name, mp->num,
				  (unsigned long long)(info.next_offset -
						       m.local_before),
				  (unsigned long long)(m.local_after -
						       m.local_before),
				  (unsigned long long)remote);
	}
	ret = layout_mirror_intent_open(dfd, &mp->ifd);
	if (ret < 0) {
		mirror_set_state(mp, MS_ERROR, strerror(-ret));
		return ret;
	}
	mp->last_ts = info.last_ts;
	if (rd_kafka_consume_start_queue(mp->t->rkt, mp->num, mp->remote,
					 mirror.iq) < 0) {
		io_close(mp->ifd);
		mp->retry_at = mirror_backoff(&mp->backoff);
		mirror_set_state(mp, MS_RETRYING,
				 rd_kafka_err2str(rd_kafka_last_error()));
		return -EAGAIN;
	}
	mp->fetching = 1;
	mp->ready = 1;
	mirror_set_state(mp, MS_OK, NULL);
	return 0;
}

static void stop_part(struct mpart *mp)
{
	if (mp->fetching) {
		rd_kafka_consume_stop(mp->t->rkt, mp->num);
		io_close(mp->ifd);
	}
	mp->fetching = 0;
	mp->ready = 0;
}

/* One pass over the imported topics: partitions found, created, started. */
static void import_pass(void)
{
	struct mtopic *t, *next;
	struct mpart *mp;
	char err[200];
	int i, n;

	for (t = mirror_next_topic(NULL, 'f'); t; t = next) {
		next = mirror_next_topic(t, 'f');
		if (mirror_topic_retire(t, stop_part))
			continue;
		if (t->nremote > 0 && registry_now_ms() >= t->refresh_at) {
			t->refresh_at = registry_now_ms() + IMPORT_REFRESH_MS;
			n = mirror_remote_partitions(mirror.importer, t->remote,
						     err, sizeof(err));
			if (n > t->nremote) {
				diag_info("mirror: kafka topic '%s' now has %d "
					  "partitions (was %d)", t->remote, n,
					  t->nremote);
				set_nremote(t, n);
			}
		}
		if (t->nremote == 0 && registry_now_ms() >= t->retry_at) {
			n = mirror_remote_partitions(mirror.importer, t->remote,
						     err, sizeof(err));
			if (n > 0) {
				t->refresh_at = registry_now_ms() +
						IMPORT_REFRESH_MS;
				t->backoff = 0;
				set_nremote(t, n);
			} else {
				t->retry_at = mirror_backoff(&t->backoff);
			}
		}
		pthread_mutex_lock(&mirror.create_lock);
		mirror_find_parts(t);
		pthread_mutex_unlock(&mirror.create_lock);
		for (i = 0; i < MIRROR_MAX_PARTS; i++) {
			mp = mirror_part_live(t, i, stop_part);
			if (!mp)
				continue;
			if (t->nremote && i >= t->nremote) {
				if (atomic_load(&mp->state) != MS_ERROR)
					mirror_set_state(
						mp, MS_ERROR,
						"no such partition in Kafka");
				continue;
			}
			if (!mp->ready && t->nremote &&
			    atomic_load(&mp->state) != MS_ERROR &&
			    registry_now_ms() >= mp->retry_at)
				start_part(mp);
		}
	}
}

/* Records of one partition fetched in a row, to be appended under one
 * intent: one or more runs, each of one timestamp (one append each).
 * Several runs only when the group maps records to messages one to one
 * (no Kafka offset gap, nothing skipped), so that after a power cut
 * that kept a prefix of its appends the intent still says where to
 * resume (mirror_import_resume()); two fdatasyncs per group instead of
 * per timestamp. */
struct irun {
	size_t off, len;
	uint32_t count;
	int64_t ts;
};
struct igroup {
	struct mpart *mp;	/* NULL: no group */
	struct irun *runs;	/* IMPORT_RUN_RECORDS of them */
	size_t nruns, len;
	uint32_t count;
	int64_t next;		/* the Kafka offset after its last record */
};

/* The importer thread's one group's runs. */
static struct irun group_runs[IMPORT_RUN_RECORDS];

/* Whether g, as it is, maps its records to messages one to one. */
static int group_linear(const struct igroup *g)
{
	return g->next - g->mp->remote == (int64_t)g->count;
}

/* Append g's runs to its partition: the intent first, then each run. */
static int append_group(struct igroup *g, const char *buf)
{
	struct mpart *mp = g->mp;
	struct partition *p = mp->node->part;
	struct partition_info info;
	struct layout_mirror_pos m;
	struct iovec iov;
	uint64_t first, byte = 0;
	size_t i;
	int ret;

	if (!g->count) {
		mp->remote = g->next; /* only skipped records */
		return 0;
	}
	partition_get_info(p, &info);
	/* The appends before must be durable before this intent replaces
	 * their own: after a power cut only this group's may be gone, the
	 * case the intent answers for.  partition_sync, what fsync(2)
	 * does: data and index, and partition.state only when recovery
	 * needs it (partition_flush wrote it each time, a file created,
	 * synced and renamed per append). */
	if (info.flushed_byte < info.end_byte) {
		ret = partition_sync(p);
		if (ret < 0) {
			mirror_set_state(mp, MS_ERROR, strerror(-ret));
			stop_part(mp);
			return ret;
		}
	}
	m.seq = mp->iseq + 1;
	m.local_before = info.next_offset;
	m.local_after = info.next_offset + g->count;
	m.remote_before = (uint64_t)mp->remote;
	m.remote_after = (uint64_t)g->next;
	ret = layout_mirror_intent_store(mp->ifd, &m);
	if (ret == 0)
		mp->iseq = m.seq;
	for (i = 0; ret == 0 && i < g->nruns; i++) {
		iov.iov_base = (void *)(buf + g->runs[i].off);
		iov.iov_len = g->runs[i].len;
		ret = registry_appendv(mirror.reg, p, &iov, 1,
				       g->runs[i].count, g->runs[i].ts,
				       PARTITION_ANY_END, &first, &byte);
		if (ret == 0) {
			byte += g->runs[i].len;
			mp->last_ts = g->runs[i].ts;
		}
	}
	if (ret < 0) {
		/* Stopped: what the log and mirror.intent say at the next mount. */
		mirror_set_state(mp, MS_ERROR, strerror(-ret));
		stop_part(mp);
		return ret;
	}
	mp->remote = g->next;
	atomic_fetch_add(&mp->produced, g->count);
	if (mirror.appended)
		mirror.appended(mp->node, byte);
	return 0;
}

/* Append g (if any) and empty it. */
static void group_end(struct igroup *g, const char *buf)
{
	if (g->mp && g->mp->ready)
		append_group(g, buf);
	g->mp = NULL;
	g->nruns = g->len = g->count = 0;
}

/* The partition a fetched record belongs to, if it is still wanted. */
/* The imported topic a fetched record belongs to, found by its Kafka
 * topic's name among those still imported (never through the topic's
 * opaque: librdkafka keeps one topic object per name for the handle's
 * life, so its opaque would name an entry retired since).  *last_rkt and
 * *last_t cache the last answer within one batch: only this thread
 * frees an imported topic, and not while a batch is handled. */
static struct mpart *part_of_msg(const rd_kafka_message_t *m,
				 const rd_kafka_topic_t **last_rkt,
				 struct mtopic **last_t)
{
	const char *name;
	struct mtopic *t;

	if (m->partition < 0 || m->partition >= MIRROR_MAX_PARTS)
		return NULL;
	if (m->rkt != *last_rkt) {
		name = rd_kafka_topic_name(m->rkt);
		pthread_mutex_lock(&mirror.lock);
		for (t = mirror.topics;
		     t && (t->dir != 'f' || strcmp(t->remote, name) ||
			   atomic_load(&t->gone));
		     t = t->next)
			;
		pthread_mutex_unlock(&mirror.lock);
		*last_rkt = m->rkt;
		*last_t = t;
	}
	return *last_t ? (*last_t)->parts[m->partition] : NULL;
}

/* Import a fetched batch: groups of one partition (see struct igroup),
 * runs of one timestamp within them.  The last group stays open: the
 * next batch may continue it (the caller ends it). */
static void import_batch(rd_kafka_message_t **msgs, ssize_t n,
			 struct igroup *g, char **buf, size_t *cap)
{
	const rd_kafka_topic_t *last_rkt = NULL;
	struct mtopic *last_t = NULL;
	struct irun *run;
	struct mpart *mp;
	size_t need;
	int64_t ts, off;
	uint64_t maxmsg;
	ssize_t i;

	for (i = 0; i < n; i++) {
		mp = part_of_msg(msgs[i], &last_rkt, &last_t);
		if (mp && msgs[i]->err) {
			if (msgs[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				mirror_set_state(mp, MS_RETRYING,
						 rd_kafka_err2str(msgs[i]->err));
			continue;
		}
		if (!mp || !mp->ready || msgs[i]->offset < mp->remote)
			continue; /* stopped, or fetched before a restart */
		off = msgs[i]->offset;
		ts = rd_kafka_message_timestamp(msgs[i], NULL);
		if (ts < 0)
			ts = registry_now_ms();
		if (ts < mp->last_ts)
			ts = mp->last_ts;
		if (g->mp && g->mp == mp && g->nruns &&
		    ts < g->runs[g->nruns - 1].ts)
			ts = g->runs[g->nruns - 1].ts;
		maxmsg = atomic_load(&mp->node->max_message);
		/* The group ends at another partition or when full; and
		 * before a gap, a skip or a new timestamp unless it stays
		 * one message per record (a single run may hold gaps). */
		if (g->mp && (g->mp != mp || g->count >= IMPORT_RUN_RECORDS ||
			      g->len >= IMPORT_RUN_BYTES ||
			      ((off != g->next ||
				(maxmsg && msgs[i]->len + 1 > maxmsg)) &&
			       g->nruns > 1) ||
			      (g->nruns &&
			       ts != g->runs[g->nruns - 1].ts &&
			       (off != g->next || !group_linear(g)))))
			group_end(g, *buf);
		if (!mp->ready)
			continue;
		if (!g->mp) {
			g->mp = mp;
			g->next = mp->remote;
		}
		g->next = off + 1;
		if (maxmsg && msgs[i]->len + 1 > maxmsg) {
			/* Refused by the local limit: counted and logged,
			 * never a stall of the whole partition. */
			atomic_fetch_add(&mp->skipped, 1);
			diag_warn("mirror %s/%d: kafka %s[%d] offset %lld "
				  "(%zu bytes) is over max_message_bytes; "
				  "skipped", mp->t->node->name, mp->num,
				  mp->t->remote, mp->num,
				  (long long)off, msgs[i]->len);
			continue;
		}
		need = g->len + 2 * msgs[i]->len + 2;
		if (need > *cap) {
			char *nb = realloc(*buf, need * 2);

			if (!nb) {
				mirror_set_state(mp, MS_ERROR, "out of memory");
				stop_part(mp);
				g->mp = NULL;
				g->nruns = g->len = g->count = 0;
				continue;
			}
			*buf = nb;
			*cap = need * 2;
		}
		if (!g->nruns || ts != g->runs[g->nruns - 1].ts) {
			run = &g->runs[g->nruns++];
			run->off = g->len;
			run->len = 0;
			run->count = 0;
			run->ts = ts;
		}
		run = &g->runs[g->nruns - 1];
		need = layout_value_escape(msgs[i]->payload, msgs[i]->len,
					   *buf + g->len);
		(*buf)[g->len + need++] = '\n';
		g->len += need;
		run->len += need;
		run->count++;
		g->count++;
	}
}

/* Note each partition's high watermark, for the lag. */
static void note_high(void)
{
	struct mtopic *t;
	int64_t lo, hi;
	int i;

	/* Only the imported topics: the exporter may free its own. */
	for (t = mirror_next_topic(NULL, 'f'); t; t = mirror_next_topic(t, 'f'))
		for (i = 0; i < MIRROR_MAX_PARTS; i++)
			if (t->parts[i] && t->parts[i]->fetching &&
			    !rd_kafka_get_watermark_offsets(mirror.importer,
							    t->remote, i, &lo,
							    &hi))
				atomic_store(&t->parts[i]->high, hi);
}

static void *importer(void *arg)
{
	rd_kafka_message_t *msgs[IMPORT_BATCH];
	struct igroup g = {.runs = group_runs};
	char *buf = NULL;
	size_t cap = 0;
	int64_t last_pass = 0;
	ssize_t n, i;

	while (!atomic_load(&mirror.stop)) {
		if (registry_now_ms() - last_pass >= 100) {
			group_end(&g, buf); /* a pass may stop its partition */
			import_pass();
			note_high();
			last_pass = registry_now_ms();
		}
		/* Records already queued may continue the open group (one
		 * intent and sync for a partition's fetch rather than one per
		 * batch); with none queued it is appended before the wait. */
		if (rd_kafka_queue_length(mirror.iq) == 0)
			group_end(&g, buf);
		n = rd_kafka_consume_batch_queue(mirror.iq, 100, msgs,
						 IMPORT_BATCH);
		if (n <= 0)
			continue;
		import_batch(msgs, n, &g, &buf, &cap);
		for (i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
	}
	group_end(&g, buf);
	free(buf);
	return NULL;
}

int mirror_import_start(void)
{
	if (pthread_create(&mirror.ithread, NULL, importer, NULL) != 0)
		return -EAGAIN;
	mirror.istarted = 1;
	return 0;
}

void mirror_import_stop(void)
{
	struct mtopic *t;
	int i;

	if (!mirror.istarted)
		return;
	atomic_store(&mirror.stop, 1);
	pthread_join(mirror.ithread, NULL);
	mirror.istarted = 0;
	for (t = mirror.topics; t; t = t->next)
		for (i = 0; t->dir == 'f' && i < MIRROR_MAX_PARTS; i++)
			if (t->parts[i])
				stop_part(t->parts[i]);
}
