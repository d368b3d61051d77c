/*
 * mirror.c - the Kafka mirror (mirror.h): librdkafka's configuration from
 * the kafka.* mount options, the mirror attributes of topics and
 * partitions, and the exporter thread, which reads every partition of an
 * exported topic through the engine's read API and produces each message
 * to the same-numbered partition of the Kafka topic with an idempotent
 * producer (acks=all), storing the acknowledged position in mirror.pos.
 *
 * Exactly once across restarts: a position is stored only after the
 * cluster acknowledged everything below it, and on start (and after any
 * failed delivery) the exporter reads the Kafka partition's last record
 * and resumes after the local offset its fluxfs-offset header names
 * (mirror_export_resume()).  Within one run the idempotent producer
 * keeps retries from duplicating or reordering.  Outages: message
 * timeouts are infinite unless the user sets one, so librdkafka retries
 * with backoff forever while the local log keeps accepting appends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "mirror.h"
#include "mirror_conf.h"
#include "partition.h"
#include "registry.h"

#define MIRROR_MAX_PARTS 1024
/* How long a check of the Kafka partition's last record may take. */
#define MIRROR_QUERY_MS 5000
/* Positions are stored at most this often (each store is three syncs). */
#define MIRROR_STORE_MS 200
/* Retrying to resume a partition against the cluster: the first wait,
 * doubled up to the last. */
#define MIRROR_BACKOFF_MS 100
#define MIRROR_BACKOFF_MAX_MS 10000
/* What mirror_stop() waits for outstanding deliveries. */
#define MIRROR_STOP_FLUSH_MS 2000

enum mstate { MS_STARTING, MS_OK, MS_RETRYING, MS_ERROR };
static const char *const state_names[] = {"starting", "ok", "retrying",
					  "error"};

/* One exported partition.  The exporter thread owns everything but the
 * atomics, which the attribute readers load, and last_error (under
 * mirror.lock). */
struct mpart {
	struct mtopic *t;
	int32_t num;
	struct node *node;	      /* pinned */
	int ready;		      /* resumed against Kafka's last record */
	int64_t retry_at;	      /* no resume attempt before (ms) */
	int64_t backoff;	      /* the wait after the next failure */
	uint64_t sent;		      /* next local offset to produce */
	uint64_t stored;	      /* what mirror.pos holds */
	atomic_uint_fast64_t acked;   /* everything below is in Kafka */
	atomic_uint_fast64_t produced; /* records acknowledged */
	atomic_uint_fast64_t failures; /* deliveries that failed */
	atomic_uint_fast64_t skipped;  /* lost to retention before export */
	atomic_int inflight;
	atomic_int failed;	      /* rewind once inflight drains */
	atomic_int state;
	char last_error[100];
};

struct mtopic {
	struct mtopic *next;
	struct node *node; /* the local topic, pinned */
	char dir;	   /* 't': export */
	char remote[MIRROR_TOPIC_MAX + 1];
	rd_kafka_topic_t *rkt;
	struct mpart *parts[MIRROR_MAX_PARTS];
};

static struct {
	pthread_mutex_t lock; /* topics list, last_error texts */
	rd_kafka_conf_t *conf; /* as configured; copied for each handle */
	rd_kafka_t *producer;
	rd_kafka_t *query;     /* reads last records (legacy consumer) */
	struct registry *reg;
	struct mtopic *topics;
	pthread_t thread;
	int started;
	atomic_int stop;
	atomic_int cluster_err; /* the latest error_cb code, 0 after a success */
	char cluster_error[100];
	int user_timeout; /* kafka.message.timeout.ms was given */
	/* The options, kept until mirror_configure(). */
	char **opts;
	size_t nopts;
} mirror = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ms(void)
{
	return registry_now_ms();
}

/* ---- configuration ---------------------------------------------------- */

int mirror_option(const char *opt)
{
	char **n;

	if (strncmp(opt, MIRROR_OPT_PREFIX, strlen(MIRROR_OPT_PREFIX)) != 0)
		return 0;
	n = realloc(mirror.opts, (mirror.nopts + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	mirror.opts = n;
	n[mirror.nopts] = strdup(opt + strlen(MIRROR_OPT_PREFIX));
	if (!n[mirror.nopts])
		return -ENOMEM;
	mirror.nopts++;
	return 1;
}

static int conf_set(void *arg, const char *key, const char *val)
{
	char err[256];

	/* The user's own message timeout replaces retrying forever. */
	if (!strcmp(key, "message.timeout.ms") ||
	    !strcmp(key, "delivery.timeout.ms"))
		mirror.user_timeout = 1;

	if (rd_kafka_conf_set(mirror.conf, key, val, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "fluxfs: kafka.%s: %s\n", key, err);
		return -EINVAL;
	}
	return 0;
}

static int conf_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	unsigned bad = 0;
	FILE *f = fopen(path, "re");
	int ret;

	if (!f) {
		fprintf(stderr, "fluxfs: kafka.config=%s: %s\n", path,
			strerror(errno));
		return -EINVAL;
	}
	buf = malloc(1 << 16);
	if (buf)
		len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	if (!buf)
		return -ENOMEM;
	ret = mirror_conf_file_parse(buf, len, conf_set, NULL, &bad);
	if (ret == -EINVAL && bad)
		fprintf(stderr, "fluxfs: kafka.config=%s: line %u is not "
				"key=value\n", path, bad);
	free(buf);
	return ret;
}

int mirror_configure(void)
{
	char err[256];
	size_t i;
	int ret = 0;

	if (mirror.nopts == 0)
		return 0; /* no mirror */
	mirror.conf = rd_kafka_conf_new();
	rd_kafka_conf_set(mirror.conf, "client.id", "fluxfs", err, sizeof(err));
	for (i = 0; i < mirror.nopts && ret == 0; i++) {
		char *eq = strchr(mirror.opts[i], '=');

		if (!eq) {
			fprintf(stderr, "fluxfs: kafka.%s: no value\n",
				mirror.opts[i]);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		if (strcmp(mirror.opts[i], "config") == 0)
			ret = conf_file(eq + 1);
		else
			ret = conf_set(NULL, mirror.opts[i], eq + 1);
	}
	for (i = 0; i < mirror.nopts; i++)
		free(mirror.opts[i]);
	free(mirror.opts);
	mirror.opts = NULL;
	mirror.nopts = 0;
	if (ret < 0) {
		rd_kafka_conf_destroy(mirror.conf);
		mirror.conf = NULL;
	}
	return ret;
}

/* ---- state ------------------------------------------------------------ */

static void set_state(struct mpart *mp, enum mstate st, const char *why)
{
	int old = atomic_exchange(&mp->state, (int)st);

	pthread_mutex_lock(&mirror.lock);
	if (why)
		snprintf(mp->last_error, sizeof(mp->last_error), "%s", why);
	pthread_mutex_unlock(&mirror.lock);
	/* Once per change of state, never per retry. */
	if (old != (int)st)
		diag_info("mirror %s/%d -> kafka %s: %s%s%s", mp->t->node->name,
			  mp->num, mp->t->remote, state_names[st],
			  why ? ": " : "", why ? why : "");
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
		     void *opaque)
{
	pthread_mutex_lock(&mirror.lock);
	snprintf(mirror.cluster_error, sizeof(mirror.cluster_error), "%s",
		 reason);
	pthread_mutex_unlock(&mirror.lock);
	atomic_store(&mirror.cluster_err, err ? err : -1);
}

/* librdkafka's own log: it logs every failed connection attempt, which
 * during an outage is a line per retry.  The mirror logs each change of
 * state itself (with the error, from error_cb or the delivery reports),
 * so only configuration warnings and critical conditions pass. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	if (level <= 2 || !strcmp(fac, "CONFWARN"))
		diag(level < 3 ? LOG_ERR : LOG_WARNING, "mirror: kafka: %s",
		     buf);
}

/* The query consumer warns of every producer property it ignores. */
static void query_log_cb(const rd_kafka_t *rk, int level, const char *fac,
			 const char *buf)
{
	if (level <= 2)
		diag(LOG_ERR, "mirror: kafka: %s", buf);
}

/* A delivery report, on the exporter thread (rd_kafka_poll). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
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
			set_state(mp, MS_RETRYING, rd_kafka_err2str(m->err));
		return;
	}
	if (rd_kafka_message_headers(m, &hdrs) ||
	    rd_kafka_header_get_last(hdrs, MIRROR_HEADER, &val, &size) ||
	    mirror_header_decode(val, size, &off))
		return;
	atomic_fetch_add(&mp->produced, 1);
	if (off + 1 > atomic_load(&mp->acked))
		atomic_store(&mp->acked, off + 1);
	atomic_store(&mirror.cluster_err, 0);
}

/* ---- the exporter ------------------------------------------------------ */

/* What the Kafka partition holds: 1 and the local offset its last
 * record's header names in *last, 0 when it has no such record,
 * -errno (why in err) when the cluster cannot be asked. */
static int kafka_last(struct mpart *mp, uint64_t *last, char *err,
		      size_t esize)
{
	int64_t lo = 0, hi = 0;
	rd_kafka_topic_t *rkt;
	rd_kafka_message_t *m;
	rd_kafka_headers_t *hdrs;
	rd_kafka_resp_err_t e;
	const void *val;
	size_t size;
	uint64_t off;
	int ret = 0;

	e = rd_kafka_query_watermark_offsets(mirror.query, mp->t->remote,
					     mp->num, &lo, &hi,
					     MIRROR_QUERY_MS);
	if (e) {
		snprintf(err, esize, "%s", rd_kafka_err2str(e));
		return -EAGAIN;
	}
	if (hi <= lo)
		return 0;
	rkt = rd_kafka_topic_new(mirror.query, mp->t->remote, NULL);
	if (!rkt)
		return -ENOMEM;
	if (rd_kafka_consume_start(rkt, mp->num, hi - 1) < 0) {
		snprintf(err, esize, "%s", rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_topic_destroy(rkt);
		return -EAGAIN;
	}
	m = rd_kafka_consume(rkt, mp->num, MIRROR_QUERY_MS);
	if (!m || m->err) {
		snprintf(err, esize, "reading the last record: %s",
			 m ? rd_kafka_err2str(m->err) : "timed out");
		ret = -EAGAIN;
	} else if (rd_kafka_message_headers(m, &hdrs) == 0 &&
		   rd_kafka_header_get_last(hdrs, MIRROR_HEADER, &val, &size) ==
			   0 &&
		   mirror_header_decode(val, size, &off) == 0) {
		*last = off;
		ret = 1;
	} else {
		diag_warn("mirror %s/%d: the last record of kafka %s[%d] has "
			  "no %s header; resuming from the stored position",
			  mp->t->node->name, mp->num, mp->t->remote, mp->num,
			  MIRROR_HEADER);
	}
	if (m)
		rd_kafka_message_destroy(m);
	rd_kafka_consume_stop(rkt, mp->num);
	rd_kafka_topic_destroy(rkt);
	return ret;
}

static void store_pos(struct mpart *mp, uint64_t pos)
{
	struct layout_mirror_pos m = {pos, pos, 0, 0};
	int ret;

	if (!mp->node->part || pos == mp->stored)
		return;
	ret = layout_mirror_pos_store(partition_dirfd(mp->node->part), &m);
	if (ret < 0)
		diag_warn("mirror %s/%d: storing the position: %s",
			  mp->t->node->name, mp->num, strerror(-ret));
	else
		mp->stored = pos;
}

/* Resume mp against the Kafka partition: 0 when ready. */
static int resume(struct mpart *mp)
{
	struct layout_mirror_pos m;
	uint64_t stored = 0, last = 0;
	char err[200] = "";
	int ret;

	if (layout_mirror_pos_load(partition_dirfd(mp->node->part), &m) == 0)
		stored = m.local_after;
	ret = kafka_last(mp, &last, err, sizeof(err));
	if (ret < 0) {
		/* Ask the cluster again later, less often each time. */
		mp->backoff = mp->backoff ? mp->backoff * 2 : MIRROR_BACKOFF_MS;
		if (mp->backoff > MIRROR_BACKOFF_MAX_MS)
			mp->backoff = MIRROR_BACKOFF_MAX_MS;
		mp->retry_at = now_ms() + mp->backoff;
		set_state(mp, MS_RETRYING, err);
		return ret;
	}
	mp->backoff = 0;
	mp->sent = mirror_export_resume(stored, ret, last);
	mp->stored = stored;
	atomic_store(&mp->acked, mp->sent);
	atomic_store(&mp->failed, 0);
	mp->ready = 1;
	store_pos(mp, mp->sent);
	set_state(mp, MS_OK, NULL);
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
	int n = 0;

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
	while (mp->sent < info.next_offset && n < 100000) {
		if (partition_chunk_of(p, mp->sent, &c) < 0)
			break;
		if (c.len > *cap) {
			char *nb = realloc(*buf, c.len);

			if (!nb)
				break;
			*buf = nb;
			*cap = c.len;
		}
		got = partition_read(p, c.byte, *buf, c.len);
		if (got != (ssize_t)c.len) {
			set_state(mp, MS_ERROR,
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
				nl = end;
			if (off >= mp->sent) {
				mirror_header_encode(off, hdr);
				e = rd_kafka_producev(
					mirror.producer,
					RD_KAFKA_V_RKT(mp->t->rkt),
					RD_KAFKA_V_PARTITION(mp->num),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_VALUE((void *)q,
							 (size_t)(nl - q)),
					RD_KAFKA_V_TIMESTAMP(c.ts),
					RD_KAFKA_V_HEADER(MIRROR_HEADER, hdr,
							  (ssize_t)strlen(hdr)),
					RD_KAFKA_V_OPAQUE(mp), RD_KAFKA_V_END);
				if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
					return;
				if (e) {
					set_state(mp, MS_ERROR,
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

/* Names a registry_list() found, looked up after it returned (a lookup
 * inside its callback would take the registry's lock twice). */
struct names {
	struct mtopic *t; /* partitions not yet mirrored of t; else topics */
	char (*v)[REGISTRY_NAME_MAX + 1];
	size_t n, cap;
};

static int names_cb(void *arg, const char *name, uint64_t ino,
		    enum node_kind kind)
{
	struct names *l = arg;
	void *nv;
	int32_t num;

	if (l->t && (kind != NODE_PARTITION ||
		     mirror_partition_number(name, &num) < 0 ||
		     num >= MIRROR_MAX_PARTS || l->t->parts[num]))
		return 0;
	if (!l->t && kind != NODE_TOPIC)
		return 0;
	if (l->n == l->cap) {
		nv = realloc(l->v, (l->cap * 2 + 8) * sizeof(*l->v));
		if (!nv)
			return 0;
		l->v = nv;
		l->cap = l->cap * 2 + 8;
	}
	snprintf(l->v[l->n++], sizeof(*l->v), "%s", name);
	return 0;
}

/* Node name of dir, pinned (the caller unpins), or NULL. */
static struct node *lookup_pinned(struct node *dir, const char *name)
{
	struct node *n;

	if (registry_lookup(mirror.reg, dir, name, &n) < 0)
		return NULL;
	if (registry_pin(mirror.reg, n) < 0) {
		registry_forget(mirror.reg, n, 1);
		return NULL;
	}
	registry_forget(mirror.reg, n, 1);
	return n;
}

/* The partitions of t, found by name each pass (new ones join). */
static void find_parts(struct mtopic *t)
{
	struct names l = {.t = t};
	struct mpart *mp;
	struct node *n;
	int32_t num;
	size_t i;

	registry_list(mirror.reg, t->node, names_cb, &l);
	for (i = 0; i < l.n; i++) {
		if (mirror_partition_number(l.v[i], &num) < 0 || t->parts[num])
			continue;
		n = lookup_pinned(t->node, l.v[i]);
		if (!n)
			continue;
		mp = calloc(1, sizeof(*mp));
		if (!mp) {
			registry_unpin(mirror.reg, n);
			continue;
		}
		mp->t = t;
		mp->num = num;
		mp->node = n;
		atomic_store(&mp->state, MS_STARTING);
		pthread_mutex_lock(&mirror.lock);
		t->parts[num] = mp;
		pthread_mutex_unlock(&mirror.lock);
	}
	free(l.v);
}

static void drop_part(struct mtopic *t, int i)
{
	struct mpart *mp = t->parts[i];

	/* Deliveries still refer to mp: keep it until none is in flight. */
	if (atomic_load(&mp->inflight) > 0)
		return;
	pthread_mutex_lock(&mirror.lock);
	t->parts[i] = NULL;
	pthread_mutex_unlock(&mirror.lock);
	registry_unpin(mirror.reg, mp->node);
	free(mp);
}

static void export_pass(struct mtopic *t, char **buf, size_t *cap,
			int64_t now, int64_t *last_store)
{
	struct mpart *mp;
	int i, store = now - *last_store >= MIRROR_STORE_MS;

	find_parts(t);
	for (i = 0; i < MIRROR_MAX_PARTS; i++) {
		mp = t->parts[i];
		if (!mp)
			continue;
		if (!mp->node->part || mp->node->removed) {
			drop_part(t, i);
			continue;
		}
		if (atomic_load(&mp->failed)) {
			/* Resume against Kafka once every delivery of the
			 * failed run has reported. */
			if (atomic_load(&mp->inflight) == 0)
				mp->ready = 0;
			else
				continue;
		}
		if (!mp->ready && (now < mp->retry_at || resume(mp) < 0))
			continue;
		if (atomic_load(&mp->state) == MS_ERROR)
			continue;
		export_some(mp, buf, cap);
		if (store)
			store_pos(mp, atomic_load(&mp->acked));
		if (atomic_load(&mp->state) == MS_RETRYING &&
		    !atomic_load(&mp->failed) && !atomic_load(&mirror.cluster_err))
			set_state(mp, MS_OK, NULL);
		else if (atomic_load(&mp->state) == MS_OK &&
			 atomic_load(&mirror.cluster_err) &&
			 atomic_load(&mp->inflight) > 0)
			set_state(mp, MS_RETRYING, mirror.cluster_error);
	}
	if (store)
		*last_store = now;
}

static void *exporter(void *arg)
{
	char *buf = NULL;
	size_t cap = 0;
	int64_t last_store = 0;
	struct mtopic *t;

	while (!atomic_load(&mirror.stop)) {
		pthread_mutex_lock(&mirror.lock);
		t = mirror.topics;
		pthread_mutex_unlock(&mirror.lock);
		/* Topics are only ever prepended: the list from t on is
		 * stable. */
		for (; t; t = t->next)
			if (t->dir == 't')
				export_pass(t, &buf, &cap, now_ms(),
					    &last_store);
		rd_kafka_poll(mirror.producer, 10);
	}
	free(buf);
	return NULL;
}

/* ---- topics ------------------------------------------------------------ */

static struct mtopic *topic_of(struct node *n)
{
	struct mtopic *t;

	pthread_mutex_lock(&mirror.lock);
	for (t = mirror.topics; t && t->node != n; t = t->next)
		;
	pthread_mutex_unlock(&mirror.lock);
	return t;
}

static struct mpart *part_of(struct node *n)
{
	struct mtopic *t;
	int i;

	pthread_mutex_lock(&mirror.lock);
	for (t = mirror.topics; t; t = t->next)
		for (i = 0; i < MIRROR_MAX_PARTS; i++)
			if (t->parts[i] && t->parts[i]->node == n) {
				pthread_mutex_unlock(&mirror.lock);
				return t->parts[i];
			}
	pthread_mutex_unlock(&mirror.lock);
	return NULL;
}

/* Begin mirroring topic node n (pinned here) in direction dir. */
static int topic_add(struct node *n, char dir, const char *remote)
{
	struct mtopic *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (registry_pin(mirror.reg, n) < 0) {
		free(t);
		return -ENOENT;
	}
	t->node = n;
	t->dir = dir;
	snprintf(t->remote, sizeof(t->remote), "%s", remote);
	t->rkt = rd_kafka_topic_new(mirror.producer, remote, NULL);
	if (!t->rkt) {
		registry_unpin(mirror.reg, n);
		free(t);
		return -ENOMEM;
	}
	/* Its partitions now, so their attributes answer at once; later ones
	 * join at the exporter's next pass. */
	find_parts(t);
	pthread_mutex_lock(&mirror.lock);
	t->next = mirror.topics;
	mirror.topics = t;
	pthread_mutex_unlock(&mirror.lock);
	diag_info("mirror: topic '%s' %s kafka topic '%s'", n->name,
		  dir == 't' ? "exported to" : "imported from", remote);
	return 0;
}

/* Every partition of an exported topic must have a numeric name. */
static int numeric_cb(void *arg, const char *name, uint64_t ino,
		      enum node_kind kind)
{
	int32_t num;

	if (kind == NODE_PARTITION && mirror_partition_number(name, &num) < 0) {
		*(const char **)arg = name;
		return 1;
	}
	return 0;
}

/* Every topic with a mirror.conf, at start. */
static int load_topics(void)
{
	struct names l = {0};
	struct node *root = registry_node(mirror.reg, REGISTRY_INO_ROOT), *n;
	char dir, remote[MIRROR_TOPIC_MAX + 1];
	size_t i;
	int ret, count = 0;

	registry_list(mirror.reg, root, names_cb, &l);
	for (i = 0; i < l.n; i++) {
		n = lookup_pinned(root, l.v[i]);
		if (!n)
			continue;
		ret = layout_mirror_conf_load(n->dirfd, &dir, remote,
					      sizeof(remote));
		if (ret == 0 && dir == 't')
			count += topic_add(n, dir, remote) == 0;
		else if (ret != -ENOENT)
			diag_warn("mirror: topic '%s': %s %s ignored", l.v[i],
				  LAYOUT_MIRROR_CONF_FILE,
				  ret < 0 ? "is damaged and" : "(import) is");
		registry_unpin(mirror.reg, n);
	}
	free(l.v);
	return count;
}

int mirror_start(struct registry *reg)
{
	rd_kafka_conf_t *pc, *qc;
	char err[512];

	mirror.reg = reg;
	if (!mirror.conf)
		return 0;
	pc = rd_kafka_conf_dup(mirror.conf);
	qc = rd_kafka_conf_dup(mirror.conf);
	/* What exactly-once export needs, whatever the user set: no
	 * duplicates or reordering on retry, every replica has it. */
	if (rd_kafka_conf_set(pc, "enable.idempotence", "true", err,
			      sizeof(err)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(pc, "acks", "all", err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK ||
	    (!mirror.user_timeout &&
	     rd_kafka_conf_set(pc, "message.timeout.ms", "0", err,
			       sizeof(err)) != RD_KAFKA_CONF_OK)) {
		diag_err("mirror: %s", err);
		rd_kafka_conf_destroy(pc);
		rd_kafka_conf_destroy(qc);
		return -EINVAL;
	}
	rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
	rd_kafka_conf_set_log_cb(pc, log_cb);
	rd_kafka_conf_set_log_cb(qc, query_log_cb);
	rd_kafka_conf_set_error_cb(pc, error_cb);
	rd_kafka_conf_set_error_cb(qc, error_cb);
	mirror.producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
	if (!mirror.producer) {
		diag_err("mirror: cannot make the Kafka producer: %s", err);
		rd_kafka_conf_destroy(pc);
		rd_kafka_conf_destroy(qc);
		return -EINVAL;
	}
	mirror.query = rd_kafka_new(RD_KAFKA_CONSUMER, qc, err, sizeof(err));
	if (!mirror.query) {
		diag_err("mirror: cannot make the Kafka consumer: %s", err);
		rd_kafka_conf_destroy(qc);
		return -EINVAL;
	}
	load_topics();
	if (pthread_create(&mirror.thread, NULL, exporter, NULL) != 0)
		return -EAGAIN;
	mirror.started = 1;
	return 0;
}

void mirror_stop(void)
{
	struct mtopic *t, *next;
	int i;

	if (!mirror.started)
		goto out;
	atomic_store(&mirror.stop, 1);
	pthread_join(mirror.thread, NULL);
	mirror.started = 0;
	rd_kafka_flush(mirror.producer, MIRROR_STOP_FLUSH_MS);
	for (t = mirror.topics; t; t = next) {
		next = t->next;
		for (i = 0; i < MIRROR_MAX_PARTS; i++) {
			if (!t->parts[i])
				continue;
			store_pos(t->parts[i], atomic_load(&t->parts[i]->acked));
			if (atomic_load(&t->parts[i]->inflight) > 0)
				diag_warn("mirror %s/%d: %d records not yet "
					  "acknowledged; they are sent again "
					  "at the next mount",
					  t->node->name, i,
					  atomic_load(&t->parts[i]->inflight));
			atomic_store(&t->parts[i]->inflight, 0);
			drop_part(t, i);
		}
		rd_kafka_topic_destroy(t->rkt);
		registry_unpin(mirror.reg, t->node);
		free(t);
	}
	mirror.topics = NULL;
out:
	if (mirror.producer)
		rd_kafka_destroy(mirror.producer);
	if (mirror.query)
		rd_kafka_destroy(mirror.query);
	if (mirror.conf)
		rd_kafka_conf_destroy(mirror.conf);
	mirror.producer = mirror.query = NULL;
	mirror.conf = NULL;
}

/* ---- attributes -------------------------------------------------------- */

#define XA_TO "user.fluxfs.mirror_to"
#define XA_STATE "user.fluxfs.mirror_state"
#define XA_POSITION "user.fluxfs.mirror_position"
#define XA_LAG "user.fluxfs.mirror_lag"
#define XA_LAG_BYTES "user.fluxfs.mirror_lag_bytes"
#define XA_ERROR "user.fluxfs.mirror_error"
#define XA_PRODUCED "user.fluxfs.mirror_produced"
#define XA_FAILURES "user.fluxfs.mirror_failures"
#define XA_SKIPPED "user.fluxfs.mirror_skipped"
#define XA_WAIT "user.fluxfs.mirror_wait"

static const char *const part_names[] = {
	XA_STATE, XA_POSITION, XA_LAG, XA_LAG_BYTES,
	XA_ERROR, XA_PRODUCED, XA_FAILURES, XA_SKIPPED};

static int fmt(char *buf, size_t size, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, size, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ERANGE : n;
}

/* Wait until everything appended to mp so far is acknowledged. */
static int wait_acked(struct mpart *mp, char *buf, size_t size)
{
	struct partition_info info;
	int64_t deadline = now_ms() + 30000;
	struct timespec ts = {0, 10 * 1000 * 1000};

	partition_get_info(mp->node->part, &info);
	while (atomic_load(&mp->acked) < info.next_offset) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
	return fmt(buf, size, "%llu", (unsigned long long)info.next_offset);
}

int mirror_xattr_get(struct registry *reg, struct node *n, const char *name,
		     char *buf, size_t size)
{
	struct partition_info info;
	struct mtopic *t;
	struct mpart *mp;
	uint64_t acked, byte = 0;

	if (strncmp(name, "user.fluxfs.mirror_", 19) != 0)
		return -ENODATA;
	if (n->kind == NODE_TOPIC) {
		t = topic_of(n);
		if (!t || strcmp(name, XA_TO) || t->dir != 't')
			return -ENODATA;
		return fmt(buf, size, "%s", t->remote);
	}
	mp = part_of(n);
	if (!mp || !n->part)
		return -ENODATA;
	acked = atomic_load(&mp->acked);
	partition_get_info(n->part, &info);
	if (!strcmp(name, XA_STATE))
		return fmt(buf, size, "%s", state_names[atomic_load(&mp->state)]);
	if (!strcmp(name, XA_POSITION))
		return fmt(buf, size, "%llu", (unsigned long long)acked);
	if (!strcmp(name, XA_LAG))
		return fmt(buf, size, "%llu",
			   (unsigned long long)(info.next_offset > acked
							? info.next_offset - acked
							: 0));
	if (!strcmp(name, XA_LAG_BYTES)) {
		if (acked < info.next_offset &&
		    partition_offset_to_byte(n->part, acked, &byte) == 0)
			return fmt(buf, size, "%llu",
				   (unsigned long long)(info.end_byte - byte));
		return fmt(buf, size, "0");
	}
	if (!strcmp(name, XA_ERROR)) {
		int r;

		pthread_mutex_lock(&mirror.lock);
		r = fmt(buf, size, "%s",
			mp->last_error[0] ? mp->last_error : "none");
		pthread_mutex_unlock(&mirror.lock);
		return r;
	}
	if (!strcmp(name, XA_PRODUCED))
		return fmt(buf, size, "%llu",
			   (unsigned long long)atomic_load(&mp->produced));
	if (!strcmp(name, XA_FAILURES))
		return fmt(buf, size, "%llu",
			   (unsigned long long)atomic_load(&mp->failures));
	if (!strcmp(name, XA_SKIPPED))
		return fmt(buf, size, "%llu",
			   (unsigned long long)atomic_load(&mp->skipped));
	if (!strcmp(name, XA_WAIT))
		return wait_acked(mp, buf, size);
	return -ENODATA;
}

int mirror_xattr_set(struct registry *reg, struct node *n, const char *name,
		     const char *value, size_t size)
{
	char remote[MIRROR_TOPIC_MAX + 1], shown[DIAG_PRINTABLE_MAX];
	const char *bad = NULL;
	struct mtopic *t;
	int ret;

	if (strncmp(name, "user.fluxfs.mirror_", 19) != 0)
		return -ENODATA;
	if (strcmp(name, XA_TO) || n->kind != NODE_TOPIC) {
		diag_info("refused attribute '%s' on '%s': not settable",
			  diag_printable(name, shown, sizeof(shown)), n->name);
		return -EPERM;
	}
	if (!mirror.producer) {
		diag_info("refused %s on '%s': no kafka.bootstrap.servers "
			  "was given at mount", XA_TO, n->name);
		return -ENOTCONN;
	}
	if (mirror_topic_name_ok(value, size) < 0) {
		snprintf(remote, sizeof(remote), "%.*s",
			 (int)(size < MIRROR_TOPIC_MAX ? size : MIRROR_TOPIC_MAX),
			 value);
		diag_info("refused %s on '%s': '%s' is not a Kafka topic name",
			  XA_TO, n->name,
			  diag_printable(remote, shown, sizeof(shown)));
		return -EINVAL;
	}
	memcpy(remote, value, size);
	remote[size] = '\0';
	t = topic_of(n);
	if (t) {
		if (!strcmp(t->remote, remote) && t->dir == 't')
			return 0;
		diag_info("refused %s on '%s': already mirrored with kafka "
			  "topic '%s'", XA_TO, n->name, t->remote);
		return -EBUSY;
	}
	registry_list(reg, n, numeric_cb, &bad);
	if (bad) {
		diag_info("refused %s on '%s': partition '%s' is not a "
			  "Kafka partition number", XA_TO, n->name, bad);
		return -EINVAL;
	}
	ret = layout_mirror_conf_store(n->dirfd, 't', remote);
	if (ret == 0)
		ret = topic_add(n, 't', remote);
	return ret;
}

size_t mirror_xattr_list(struct node *n, char *buf, size_t size, size_t len)
{
	const char *names[16];
	size_t i, k = 0, need;

	if (n->kind == NODE_TOPIC && topic_of(n))
		names[k++] = XA_TO;
	else if (n->kind == NODE_PARTITION && part_of(n))
		for (i = 0; i < sizeof(part_names) / sizeof(*part_names); i++)
			names[k++] = part_names[i];
	for (i = 0; i < k; i++) {
		need = strlen(names[i]) + 1;
		if (size && len + need <= size)
			memcpy(buf + len, names[i], need);
		len += need;
	}
	return len;
}

int mirror_writable(struct node *n)
{
	return 0;
}
