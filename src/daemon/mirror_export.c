/*
 * mirror_export.c - the exporter thread: every partition of an exported
 * topic read through the engine's read API and each message produced to
 * the same-numbered partition of the Kafka topic with the idempotent
 * producer (acks=all), its append time as the record's timestamp and its
 * local offset in the fluxfs-offset header; the acknowledged position
 * stored in mirror.pos.
 *
 * Exactly once across restarts: a position is stored only after the
 * cluster acknowledged everything below it, and on start (and after any
 * failed delivery) the exporter reads the Kafka partition's last record
 * and resumes after the local offset its header names
 * (mirror_export_resume()).  Within one run the idempotent producer keeps
 * retries from duplicating or reordering.  Outages: message timeouts are
 * infinite unless the user sets one, so librdkafka retries with backoff
 * forever while the local log keeps accepting appends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "layout.h"
#include "mirror_int.h"
#include "partition.h"

/* A delivery report, on the exporter thread (rd_kafka_poll). */
void mirror_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct mpart *mp = m->_private;
	rd_kafka_headers_t *hdrs = NULL;
	const void *val;
	size_t size;
	uint64_t off;

	atomic_fetch_sub(&mp->inflight, 1);
	if (m->err) {
		atomic_fetch_add(&mp->failures, 1);
		if (!atomic_exchange(&mp->failed, 1))
			mirror_set_state(mp, MS_RETRYING, rd_kafka_err2str(m->err));
		return;
	}
	if (rd_kafka_message_headers(m, &hdrs) ||
	    rd_kafka_header_get_last(hdrs, MIRROR_HEADER, &val, &size) ||
	    mirror_header_decode(val, size, &off))
		return;
	atomic_fetch_add(&mp->produced, 1);
	if (off + 1 > atomic_load(&mp->acked)) {
		atomic_store(&mp->acked, off + 1);
		if (m->offset >= 0)
			mp->acked_remote = (uint64_t)m->offset + 1;
	}
	atomic_store(&mirror.cluster_err, 0);
}


void mirror_export_stop_part(struct mpart *mp)
{
	if (!mp->qq)
		return;
	rd_kafka_consume_stop(mp->qrkt, mp->num);
	rd_kafka_queue_destroy(mp->qq);
	rd_kafka_topic_destroy(mp->qrkt);
	mp->qq = NULL;
	mp->qrkt = NULL;
}

/* Start reading the Kafka partition's last record (RD_KAFKA_OFFSET_TAIL:
 * the consumer finds the end itself) onto mp's own queue; nothing here
 * waits for the cluster, so a partition whose leader is unreachable does
 * not hold up the others.  0, or -EAGAIN (why in err). */
static int kafka_last_start(struct mpart *mp, int64_t now, char *err,
			    size_t esize)
{
	mp->qrkt = rd_kafka_topic_new(mirror.query, mp->t->remote, NULL);
	mp->qq = mp->qrkt ? rd_kafka_queue_new(mirror.query) : NULL;
	if (!mp->qq) {
		if (mp->qrkt)
			rd_kafka_topic_destroy(mp->qrkt);
		mp->qrkt = NULL;
		snprintf(err, esize, "%s", strerror(ENOMEM));
		return -EAGAIN;
	}
	if (rd_kafka_consume_start_queue(mp->qrkt, mp->num,
					 mp->qend ? RD_KAFKA_OFFSET_END
						  : RD_KAFKA_OFFSET_TAIL(1),
					 mp->qq) < 0) {
		snprintf(err, esize, "%s",
			 rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_queue_destroy(mp->qq);
		rd_kafka_topic_destroy(mp->qrkt);
		mp->qq = NULL;
		mp->qrkt = NULL;
		return -EAGAIN;
	}
	mp->qdeadline = now + MIRROR_QUERY_MS;
	mp->qbest = -1;
	return 0;
}

/* What the check started above found, without waiting: 1 and the local
 * offset the last record's header names in *last; 0 when the partition
 * is confirmed to have no such record (mirror_eof_is_empty()); -EINPROGRESS
 * while no answer came and MIRROR_QUERY_MS has not passed; -EAGAIN (why
 * in err) otherwise, so the resume waits for a confirmed answer rather
 * than guessing.  *end gets Kafka's end offset the answer confirmed (-1
 * with a last record that has no header).  The check is ended unless
 * -EINPROGRESS.
 *
 * A partition whose every record Kafka's retention deleted has no last
 * record to read: the read one before its end is out of range.  The
 * next check then reads from the end (mp->qend), whose end-of-partition
 * event confirms an empty log when the log starts there; a log that
 * does not goes back to reading its last record.
 *
 * The consumer starts one record before the end it learned, but records
 * appended since come in the same fetch: the last record is the highest
 * offset received, and it is the partition's last only once the high
 * watermark the fetches reported is right after it.  Taking the first
 * record that arrived resent everything after it. */
static int kafka_last_poll(struct mpart *mp, int64_t now, uint64_t *last,
			   int64_t *end, char *err, size_t esize)
{
	int range = 0;
	rd_kafka_headers_t *hdrs;
	rd_kafka_message_t *m;
	int64_t lo = -1, hi = -1, eof = -1;
	const void *val;
	size_t size;
	uint64_t off;
	int ret;

	err[0] = '\0';
	while ((m = rd_kafka_consume_queue(mp->qq, 0))) {
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			eof = m->offset;
		} else if (m->err) {
			snprintf(err, esize, "reading the last record: %s",
				 rd_kafka_err2str(m->err));
			range = m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
				m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE;
		} else if (m->offset > mp->qbest) {
			mp->qbest = m->offset;
			mp->qbest_bad =
				rd_kafka_message_headers(m, &hdrs) ||
				rd_kafka_header_get_last(hdrs, MIRROR_HEADER,
							 &val, &size) ||
				mirror_header_decode(val, size, &off);
			if (!mp->qbest_bad)
				mp->qbest_hdr = off;
		}
		rd_kafka_message_destroy(m);
		if (err[0])
			break;
	}
	rd_kafka_get_watermark_offsets(mirror.query, mp->t->remote, mp->num,
				       &lo, &hi);
	*end = -1;
	if (err[0]) {
		ret = -EAGAIN;
	} else if (mp->qbest >= 0 && hi >= 0 && mp->qbest + 1 >= hi) {
		ret = 1; /* the last record, confirmed by the watermark */
		*end = mp->qbest + 1;
		if (mp->qbest_bad) {
			*end = -1;
			diag_warn("mirror %s/%d: the last record of kafka "
				  "%s[%d] has no %s header; resuming from "
				  "the stored position",
				  mp->t->node->name, mp->num, mp->t->remote,
				  mp->num, MIRROR_HEADER);
			ret = 0;
		}
		*last = mp->qbest_hdr;
	} else if (mp->qbest < 0 && eof >= 0 &&
		   mirror_eof_is_empty(eof, lo)) {
		ret = 0;
		*end = eof;
	} else if (mp->qend && mp->qbest < 0 && eof >= 0 && lo >= 0) {
		/* Records below the end: not emptied after all. */
		snprintf(err, esize,
			 "reading the last record: it was out of range, but "
			 "the log holds offsets %lld-%lld",
			 (long long)lo, (long long)eof - 1);
		ret = -EAGAIN;
	} else if (now < mp->qdeadline) {
		return -EINPROGRESS; /* records still coming */
	} else {
		if (mp->qbest >= 0)
			snprintf(err, esize,
				 "reading the last record: offset %lld seen, "
				 "the end is %lld",
				 (long long)mp->qbest, (long long)hi);
		else if (eof >= 0)
			snprintf(err, esize,
				 "reading the last record: the end of the "
				 "partition (offset %lld) without its last "
				 "record",
				 (long long)eof);
		else
			snprintf(err, esize,
				 "reading the last record: timed out");
		ret = -EAGAIN;
	}
	/* Out of range: the next check reads from the end; after that one,
	 * from the last record again. */
	mp->qend = !mp->qend && range;
	mirror_export_stop_part(mp);
	return ret;
}

void mirror_store_pos(struct mpart *mp, uint64_t pos)
{
	struct layout_mirror_pos m = {.local_before = pos,
				     .local_after = pos};
	int ret;

	if (mp->remote_known && pos == atomic_load(&mp->acked)) {
		m.seq = LAYOUT_MIRROR_POS_REMOTE;
		m.remote_before = m.remote_after = mp->acked_remote;
	}
	if (!mp->node->part ||
	    (pos == mp->stored && m.remote_after == mp->stored_remote))
		return;
	ret = layout_mirror_pos_store(partition_dirfd(mp->node->part), &m);
	if (ret < 0) {
		diag_warn("mirror %s/%d: storing the position: %s",
			  mp->t->node->name, mp->num, strerror(-ret));
	} else {
		mp->stored = pos;
		mp->stored_remote = m.remote_after;
	}
}

/* Resume mp against the Kafka partition, one step per pass (the check
 * of its last record is started, then polled): 0 when ready. */
static int resume(struct mpart *mp, int64_t now)
{
	struct layout_mirror_pos m = {0};
	struct partition_info info;
	uint64_t stored = 0, last = 0;
	int64_t end = -1;
	char err[200] = "";
	const char *why;
	int ret;

	if (!mp->qq) {
		ret = kafka_last_start(mp, now, err, sizeof(err));
		if (ret == 0)
			return -EINPROGRESS;
	} else {
		ret = kafka_last_poll(mp, now, &last, &end, err, sizeof(err));
		if (ret == -EINPROGRESS)
			return ret;
	}
	if (ret < 0) {
		/* Ask the cluster again later, less often each time. */
		mp->retry_at = mirror_backoff(&mp->backoff);
		mirror_set_state(mp, MS_RETRYING, err);
		return ret;
	}
	if (layout_mirror_pos_load(partition_dirfd(mp->node->part), &m) == 0)
		stored = m.local_after;
	why = ret ? "after Kafka's last record" : "the stored position";
	if (ret == 0 && end > 0) {
		/* Emptied by Kafka's retention: the stored position says
		 * where, if its Kafka offset is known and in step. */
		partition_get_info(mp->node->part, &info);
		if (mirror_export_resume_emptied(
			    stored, m.seq == LAYOUT_MIRROR_POS_REMOTE,
			    m.remote_after, (uint64_t)end, info.start_offset,
			    info.next_offset, &mp->sent) < 0) {
			snprintf(err, sizeof(err),
				 "kafka's retention deleted every record "
				 "below offset %lld, and the stored position "
				 "(local %llu, kafka %llu%s) does not say "
				 "which local message that is",
				 (long long)end, (unsigned long long)stored,
				 (unsigned long long)m.remote_after,
				 m.seq == LAYOUT_MIRROR_POS_REMOTE ? ""
								   : " unknown");
			mp->retry_at = mirror_backoff(&mp->backoff);
			mirror_set_state(mp, MS_ERROR, err);
			return -ESTALE;
		}
		why = "Kafka's retention emptied the partition; its end is "
		      "the stored position's";
	} else {
		mp->sent = mirror_export_resume(stored, ret, last);
	}
	mp->backoff = 0;
	/* One line per resume (at start, after a failed delivery): what an
	 * operator needs to follow exactly-once after an outage. */
	diag_info("mirror %s/%d -> kafka %s[%d]: resuming at local offset "
		  "%llu (%s)",
		  mp->t->node->name, mp->num, mp->t->remote, mp->num,
		  (unsigned long long)mp->sent, why);
	mp->stored = stored;
	mp->stored_remote = m.remote_after;
	mp->remote_known = end >= 0;
	mp->acked_remote = end >= 0 ? (uint64_t)end : 0;
	atomic_store(&mp->acked, mp->sent);
	atomic_store(&mp->failed, 0);
	mp->ready = 1;
	mirror_store_pos(mp, mp->sent);
	mirror_set_state(mp, MS_OK, NULL);
	return 0;
}

/* Produce what mp has beyond mp->sent, up to the producer's queue limit. */
static void export_some(struct mpart *mp, char **buf, size_t *cap)
{
	struct partition *p = mp->node->part;
	struct partition_info info;
	struct partition_chunk c;
	char hdr[MIRROR_HEADER_MAX];
	const char *q, *end, *nl;
	uint64_t off;
	rd_kafka_resp_err_t e;
	ssize_t got;
	int n = 0, hlen;

	partition_get_info(p, &info);
	if (mp->sent < info.start_offset) {
		/* Retention deleted messages not yet mirrored. */
		diag_warn("mirror %s/%d: messages %llu-%llu were deleted "
			  "before they were mirrored",
			  mp->t->node->name, mp->num,
			  (unsigned long long)mp->sent,
			  (unsigned long long)info.start_offset - 1);
		atomic_fetch_add(&mp->skipped, info.start_offset - mp->sent);
		mp->sent = info.start_offset;
		if (atomic_load(&mp->inflight) == 0)
			atomic_store(&mp->acked, mp->sent);
	}
	/* Only what the local log keeps across a power cut is produced:
	 * otherwise a cut could leave the cluster holding messages the log
	 * lost, and new appends would reuse their offsets.  Unflushed
	 * appends are made durable first (group commit with fsync callers). */
	if (mp->sent < info.next_offset && info.flushed_byte < info.end_byte) {
		if (partition_sync(p) < 0)
			return;
		partition_get_info(p, &info);
	}
	while (mp->sent < info.next_offset && n < 100000) {
		if (partition_chunk_of(p, mp->sent, &c) < 0 ||
		    c.byte >= info.flushed_byte)
			break;
		if (c.byte + c.len > info.flushed_byte)
			c.len = (uint32_t)(info.flushed_byte - c.byte);
		if (c.len > *cap) {
			char *nb = realloc(*buf, c.len);

			if (!nb)
				break;
			*buf = nb;
			*cap = c.len;
		}
		got = partition_read(p, c.byte, *buf, c.len);
		if (got != (ssize_t)c.len) {
			mirror_set_state(mp, MS_ERROR,
				  got < 0 ? strerror((int)-got)
					  : "short read of the local log");
			return;
		}
		q = *buf;
		end = *buf + c.len;
		for (off = c.offset; off < c.offset + c.count && q < end;
		     off++) {
			nl = memchr(q, '\n', (size_t)(end - q));
			if (!nl)
				break; /* beyond what is flushed */
			if (off >= mp->sent) {
				hlen = mirror_header_encode(off, hdr);
				e = rd_kafka_producev(
					mirror.producer,
					RD_KAFKA_V_RKT(mp->t->rkt),
					RD_KAFKA_V_PARTITION(mp->num),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_VALUE((void *)q,
							 (size_t)(nl - q)),
					RD_KAFKA_V_TIMESTAMP(c.ts),
					RD_KAFKA_V_HEADER(MIRROR_HEADER, hdr,
							  hlen),
					RD_KAFKA_V_OPAQUE(mp), RD_KAFKA_V_END);
				if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
					return;
				if (e) {
					mirror_set_state(mp, MS_ERROR,
						  rd_kafka_err2str(e));
					return;
				}
				atomic_fetch_add(&mp->inflight, 1);
				mp->sent = off + 1;
				n++;
			}
			q = nl + 1;
		}
	}
}

/* One pass over t's partitions; returns how many have a check of their
 * Kafka partition's last record under way or about to start. */
static int export_pass(struct mtopic *t, char **buf, size_t *cap,
		       int64_t now, int64_t *last_store)
{
	struct mpart *mp;
	int i, checking = 0, store = now - *last_store >= MIRROR_STORE_MS;

	pthread_mutex_lock(&mirror.create_lock);
	mirror_find_parts(t);
	pthread_mutex_unlock(&mirror.create_lock);
	for (i = 0; i < MIRROR_MAX_PARTS; i++) {
		mp = mirror_part_live(t, i, mirror_export_stop_part);
		if (!mp)
			continue;
		if (atomic_load(&mp->failed)) {
			/* Resume against Kafka once every delivery of the
			 * failed run has reported. */
			if (atomic_load(&mp->inflight) == 0)
				mp->ready = 0;
			else
				continue;
		}
		if (!mp->ready && now < t->check_after) {
			checking++;
			continue;
		}
		if (!mp->ready && (now < mp->retry_at || resume(mp, now) < 0)) {
			checking += mp->qq != NULL;
			continue;
		}
		if (atomic_load(&mp->state) == MS_ERROR)
			continue;
		export_some(mp, buf, cap);
		registry_hold_retention(mirror.reg, mp->node,
					REGISTRY_HOLD_EXPORT,
					atomic_load(&t->force)
						? PARTITION_NO_HOLD
						: atomic_load(&mp->acked));
		if (store)
			mirror_store_pos(mp, atomic_load(&mp->acked));
		if (atomic_load(&mp->state) == MS_RETRYING &&
		    !atomic_load(&mp->failed) && !atomic_load(&mirror.cluster_err))
			mirror_set_state(mp, MS_OK, NULL);
		else if (atomic_load(&mp->state) == MS_OK &&
			 atomic_load(&mirror.cluster_err) &&
			 atomic_load(&mp->inflight) > 0)
			mirror_set_state(mp, MS_RETRYING, mirror.cluster_error);
	}
	if (store)
		*last_store = now;
	return checking;
}

/* A partition of a topic no longer exported: no check under way, its
 * acknowledged position stored. */
static void retire_part(struct mpart *mp)
{
	mirror_export_stop_part(mp);
	mirror_store_pos(mp, atomic_load(&mp->acked));
}

void *mirror_exporter(void *arg)
{
	char *buf = NULL;
	size_t cap = 0;
	int64_t last_store = 0;
	struct mtopic *t, *next;
	int checking;

	while (!atomic_load(&mirror.stop)) {
		checking = 0;
		for (t = mirror_next_topic(NULL, 't'); t; t = next) {
			next = mirror_next_topic(t, 't');
			if (!mirror_topic_retire(t, retire_part))
				checking += export_pass(t, &buf, &cap,
							registry_now_ms(),
							&last_store);
		}
		/* A check's answers come on its own queue, not the
		 * producer's: while one is under way, look at it again
		 * within a millisecond rather than ten. */
		rd_kafka_poll(mirror.producer,
			      checking ? MIRROR_QUERY_POLL_MS : MIRROR_POLL_MS);
	}
	free(buf);
	return NULL;
}
