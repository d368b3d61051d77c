/*
 * mirror.c - the Kafka mirror (mirror.h): librdkafka's configuration from
 * the kafka.* mount options, the mirrored topics and their partitions,
 * the mirror attributes, and starting and stopping the exporter
 * (mirror_export.c) and importer (mirror_import.c) threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "mirror_int.h"
#include "partition.h"
#include "prom.h"

const char *const mirror_state_names[] = {"starting", "ok", "retrying",
					  "error"};

struct mirror_global mirror = {.lock = PTHREAD_MUTEX_INITIALIZER,
				.create_lock = PTHREAD_MUTEX_INITIALIZER};

int64_t mirror_backoff(int64_t *backoff)
{
	*backoff = *backoff ? *backoff * 2 : MIRROR_BACKOFF_MS;
	if (*backoff > MIRROR_BACKOFF_MAX_MS)
		*backoff = MIRROR_BACKOFF_MAX_MS;
	return registry_now_ms() + *backoff;
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

/* The importer's consumer settings fluxfs picks unless kafka.<key> is
 * given.  Its partitions' fetch queues all forward to one queue, whose
 * length librdkafka (2.0) compares with queued.min.messages and
 * queued.max.messages.kbytes for each partition: past either, every
 * partition stops fetching until its broker thread's next wakeup, up to
 * a second later, and the import idled for most of that second once the
 * queue was drained (100,000 messages, a fifth of a second's work).  The
 * limits are raised to about half a second of import, bounded by 32 MiB
 * of values (about 400 bytes of memory per queued 100-byte record).  A
 * fetch the broker holds while no record comes (fetch.wait.max.ms, 500
 * ms by default) delays every request behind it on that connection: the
 * offset lookup and metadata that start an import's new partitions. */
static const struct {
	const char *key, *val;
} import_defaults[] = {
	{"queued.min.messages", "500000"},
	{"queued.max.messages.kbytes", "32768"},
	{"fetch.wait.max.ms", "100"},
};
#define IMPORT_DEFAULTS (sizeof(import_defaults) / sizeof(*import_defaults))

static int conf_set(void *arg, const char *key, const char *val)
{
	char err[256];
	size_t i;

	/* The user's own message timeout replaces retrying forever. */
	if (!strcmp(key, "message.timeout.ms") ||
	    !strcmp(key, "delivery.timeout.ms"))
		mirror.user_timeout = 1;
	for (i = 0; i < IMPORT_DEFAULTS; i++)
		if (!strcmp(key, import_defaults[i].key))
			mirror.import_given |= 1u << i;

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

void mirror_set_state(struct mpart *mp, enum mstate st, const char *why)
{
	int old = atomic_exchange(&mp->state, (int)st);

	pthread_mutex_lock(&mirror.lock);
	if (why)
		snprintf(mp->last_error, sizeof(mp->last_error), "%s", why);
	pthread_mutex_unlock(&mirror.lock);
	/* Once per change of state, never per retry. */
	if (old != (int)st)
		diag_info("mirror %s/%d %s kafka %s: %s%s%s", mp->t->node->name,
			  mp->num, mp->t->dir == 't' ? "->" : "<-",
			  mp->t->remote, mirror_state_names[st],
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
void mirror_find_parts(struct mtopic *t)
{
	struct names l = {.t = t};
	struct mpart *mp;
	struct node *n;
	int32_t num;
	size_t i;

	if (mirror_topic_gone(t))
		return;
	registry_list(mirror.reg, t->node, names_cb, &l);
	for (i = 0; i < l.n; i++) {
		if (mirror_partition_number(l.v[i], &num) < 0 || t->parts[num])
			continue;
		n = lookup_pinned(t->node, l.v[i]);
		if (!n)
			continue;
		/* A mirrored partition is in use for as long as it is
		 * mirrored: its log stays open (mirror_drop_part lets it
		 * go), so the descriptor budget never closes it under the
		 * exporter or importer.  With the budget full, the next
		 * pass tries again. */
		if (registry_part_get(mirror.reg, n) < 0) {
			registry_unpin(mirror.reg, n);
			continue;
		}
		mp = calloc(1, sizeof(*mp));
		if (!mp) {
			registry_part_put(mirror.reg, n);
			registry_unpin(mirror.reg, n);
			continue;
		}
		mp->t = t;
		mp->num = num;
		mp->node = n;
		atomic_store(&mp->state, MS_STARTING);
		/* Retention waits for the export from the start. */
		if (t->dir == 't' && !atomic_load(&t->force) && n->part) {
			struct layout_mirror_pos m = {0};

			layout_mirror_pos_load(partition_dirfd(n->part), &m);
			registry_hold_retention(mirror.reg, n,
						REGISTRY_HOLD_EXPORT,
						m.local_after);
		}
		pthread_mutex_lock(&mirror.lock);
		t->parts[num] = mp;
		pthread_mutex_unlock(&mirror.lock);
	}
	free(l.v);
}

struct mpart *mirror_part_live(struct mtopic *t, int i,
			       void (*stop)(struct mpart *mp))
{
	struct mpart *mp = t->parts[i];

	if (!mp || (mp->node->part && !mp->node->removed))
		return mp;
	if (stop)
		stop(mp);
	mirror_drop_part(t, i);
	return NULL;
}

void mirror_drop_part(struct mtopic *t, int i)
{
	struct mpart *mp = t->parts[i];

	/* Deliveries and attribute readers still refer to mp: keep it
	 * until none is in flight.  Unlinked under both locks, so a reader
	 * holding either never sees it freed. */
	pthread_mutex_lock(&mirror.create_lock);
	if (atomic_load(&mp->inflight) > 0 || atomic_load(&mp->users) > 0) {
		pthread_mutex_unlock(&mirror.create_lock);
		return;
	}
	pthread_mutex_lock(&mirror.lock);
	t->parts[i] = NULL;
	pthread_mutex_unlock(&mirror.lock);
	pthread_mutex_unlock(&mirror.create_lock);
	/* Retention is let go only when the topic is no longer exported.
	 * At unmount the hold stays until the log closes: the maintenance
	 * thread still runs after the mirror stopped, and would delete
	 * what the cluster does not have yet. */
	if (mirror_topic_gone(t))
		registry_hold_retention(mirror.reg, mp->node,
					REGISTRY_HOLD_EXPORT, PARTITION_NO_HOLD);
	registry_part_put(mirror.reg, mp->node);
	registry_unpin(mirror.reg, mp->node);
	free(mp);
}

/* ---- topics ------------------------------------------------------------ */

int mirror_topic_gone(struct mtopic *t)
{
	return atomic_load(&t->gone) || t->node->removed;
}

/* The entry mirroring topic n (none while it is being retired); the
 * caller holds mirror.lock for as long as it uses it. */
static struct mtopic *topic_find(struct node *n)
{
	struct mtopic *t;

	for (t = mirror.topics; t && (t->node != n || atomic_load(&t->gone));
	     t = t->next)
		;
	return t;
}

/* The entry mirroring partition n, under mirror.lock as topic_find. */
static struct mpart *part_find(struct node *n)
{
	struct mtopic *t;
	int i;

	for (t = mirror.topics; t; t = t->next)
		for (i = 0; i < MIRROR_MAX_PARTS && !atomic_load(&t->gone); i++)
			if (t->parts[i] && t->parts[i]->node == n)
				return t->parts[i];
	return NULL;
}

struct mtopic *mirror_next_topic(struct mtopic *after, char dir)
{
	struct mtopic *t;

	pthread_mutex_lock(&mirror.lock);
	for (t = after ? after->next : mirror.topics; t && t->dir != dir;
	     t = t->next)
		;
	pthread_mutex_unlock(&mirror.lock);
	return t;
}

static void topic_free(struct mtopic *t)
{
	rd_kafka_topic_destroy(t->rkt);
	if (t->qrkt)
		rd_kafka_topic_destroy(t->qrkt);
	registry_unpin(mirror.reg, t->node);
	free(t);
}

int mirror_topic_retire(struct mtopic *t, void (*stop)(struct mpart *mp))
{
	struct mtopic **pp;
	int i, left = 0;

	if (!mirror_topic_gone(t))
		return 0;
	for (i = 0; i < MIRROR_MAX_PARTS; i++) {
		if (!t->parts[i])
			continue;
		stop(t->parts[i]);
		mirror_drop_part(t, i);
		left += t->parts[i] != NULL;
	}
	if (left)
		return 1; /* deliveries or readers still out: next pass */
	pthread_mutex_lock(&mirror.create_lock);
	pthread_mutex_lock(&mirror.lock);
	for (pp = &mirror.topics; *pp != t; pp = &(*pp)->next)
		;
	*pp = t->next;
	if (t->dir == 'f')
		atomic_fetch_sub(&mirror.imports, 1);
	pthread_mutex_unlock(&mirror.lock);
	pthread_mutex_unlock(&mirror.create_lock);
	diag_info("mirror: topic '%s' no longer mirrored (kafka topic '%s')",
		  t->node->name, t->remote);
	topic_free(t);
	return 1;
}

/* Begin mirroring topic node n (pinned here) in direction dir. */
/* Whether another local topic mirrors Kafka topic remote in direction
 * dir (mirror.lock held): -EBUSY, or -EAGAIN while that one is stopping;
 * its name in other.  librdkafka has one topic object per name and
 * client, and an imported record finds its local topic by that name, so
 * two imports of one Kafka topic would feed one of them; two exports
 * would interleave in one Kafka partition and confuse each other's
 * resume (the last record's fluxfs-offset). */
static int remote_taken(const struct node *n, char dir, const char *remote,
			char *other, size_t size)
{
	struct mtopic *t;

	for (t = mirror.topics; t; t = t->next)
		if (t->node != n && t->dir == dir &&
		    !strcmp(t->remote, remote)) {
			snprintf(other, size, "%s", t->node->name);
			return atomic_load(&t->gone) ? -EAGAIN : -EBUSY;
		}
	return 0;
}

/* remote_taken, logged as a refusal of setting xa on n. */
static int refuse_taken(const struct node *n, char dir, const char *remote,
			const char *xa)
{
	char other[256];
	int ret;

	pthread_mutex_lock(&mirror.lock);
	ret = remote_taken(n, dir, remote, other, sizeof(other));
	pthread_mutex_unlock(&mirror.lock);
	if (ret)
		diag_info("refused %s on '%s': kafka topic '%s' is already "
			  "%s by topic '%s'%s",
			  xa, n->name, remote,
			  dir == 't' ? "exported" : "imported", other,
			  ret == -EAGAIN ? ", which is still stopping" : "");
	return ret;
}

static int topic_add(struct node *n, char dir, const char *remote, int force)
{
	struct mtopic *t = calloc(1, sizeof(*t));
	rd_kafka_topic_conf_t *tc;
	char err[256];
	int ret;

	if (!t)
		return -ENOMEM;
	/* Checked, and the topic added, under the creation lock, so two
	 * topics set at once cannot both take the same Kafka topic. */
	pthread_mutex_lock(&mirror.create_lock);
	ret = refuse_taken(n, dir, remote,
			   dir == 't' ? "mirror_to" : "mirror_from");
	if (ret == 0 && registry_pin(mirror.reg, n) < 0)
		ret = -ENOENT;
	if (ret) {
		pthread_mutex_unlock(&mirror.create_lock);
		free(t);
		return ret;
	}
	t->node = n;
	t->dir = dir;
	atomic_store(&t->force, force);
	snprintf(t->remote, sizeof(t->remote), "%s", remote);
	tc = rd_kafka_topic_conf_new();
	/* An import whose next record Kafka already deleted goes on from
	 * the oldest one left. */
	if (dir == 'f')
		rd_kafka_topic_conf_set(tc, "auto.offset.reset", "earliest",
					err, sizeof(err));
	t->rkt = rd_kafka_topic_new(dir == 't' ? mirror.producer
					       : mirror.importer,
				    remote, tc);
	if (!t->rkt) {
		pthread_mutex_unlock(&mirror.create_lock);
		rd_kafka_topic_conf_destroy(tc);
		registry_unpin(mirror.reg, n);
		free(t);
		return -ENOMEM;
	}
	/* The query consumer looks the last record of a partition up only
	 * once it knows the partition's leader, and a check started before
	 * it does is looked up again only 500 ms later (librdkafka's fixed
	 * retry), although the metadata comes within milliseconds.  Asking
	 * for the topic's metadata now, while the exporter has not yet
	 * reached the topic, and starting no check before MIRROR_METADATA_MS
	 * has passed (the exporter's next pass may be at once), has it
	 * there for the first check. */
	if (dir == 't') {
		t->qrkt = rd_kafka_topic_new(mirror.query, remote, NULL);
		t->check_after = registry_now_ms() + MIRROR_METADATA_MS;
	}
	/* Its partitions now, so their attributes answer at once; later ones
	 * join at the next pass. */
	mirror_find_parts(t);
	pthread_mutex_lock(&mirror.lock);
	t->next = mirror.topics;
	mirror.topics = t;
	if (dir == 'f')
		atomic_fetch_add(&mirror.imports, 1);
	pthread_mutex_unlock(&mirror.lock);
	pthread_mutex_unlock(&mirror.create_lock);
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
	int ret, count = 0, force;

	registry_list(mirror.reg, root, names_cb, &l);
	for (i = 0; i < l.n; i++) {
		n = lookup_pinned(root, l.v[i]);
		if (!n)
			continue;
		ret = layout_mirror_conf_load(n->dirfd, &dir, remote,
					      sizeof(remote), &force);
		if (ret == 0)
			count += topic_add(n, dir, remote, force) == 0;
		else if (ret != -ENOENT)
			diag_warn("mirror: topic '%s': %s is damaged and "
				  "ignored", l.v[i], LAYOUT_MIRROR_CONF_FILE);
		registry_unpin(mirror.reg, n);
	}
	free(l.v);
	return count;
}

int mirror_start(struct registry *reg,
		 void (*appended)(struct node *n, uint64_t end))
{
	rd_kafka_conf_t *pc, *qc, *ic;
	char err[512];
	size_t i;

	mirror.reg = reg;
	mirror.appended = appended;
	if (!mirror.conf)
		return 0;
	pc = rd_kafka_conf_dup(mirror.conf);
	qc = rd_kafka_conf_dup(mirror.conf);
	/* What exactly-once export needs, whatever the user set: no
	 * duplicates or reordering on retry, every replica has it. */
	if (rd_kafka_conf_set(pc, "enable.idempotence", "true", err,
			      sizeof(err)) != RD_KAFKA_CONF_OK ||
	    /* The check of a partition's last record learns that it is
	     * empty from the end-of-partition event, which comes after the
	     * broker held the empty fetch fetch.wait.max.ms (500 ms by
	     * default), and librdkafka takes two such fetches: 1 ms keeps
	     * the first check of an empty partition within milliseconds.
	     * The query consumer fetches only while a check runs. */
	    rd_kafka_conf_set(qc, "enable.partition.eof", "true", err,
			      sizeof(err)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(qc, "fetch.wait.max.ms", "1", err,
			      sizeof(err)) != RD_KAFKA_CONF_OK ||
	    /* A check whose offset the cluster refuses (a lookup that
	     * failed, a fetch out of range while it recovers) must report
	     * an error, not jump to the end and see "end of partition",
	     * which would read as "no record" and resend what Kafka has. */
	    rd_kafka_conf_set(qc, "auto.offset.reset", "error", err,
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
	rd_kafka_conf_set_dr_msg_cb(pc, mirror_dr_cb);
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
	ic = rd_kafka_conf_dup(mirror.conf);
	for (i = 0; i < IMPORT_DEFAULTS; i++)
		if (!(mirror.import_given & (1u << i)))
			rd_kafka_conf_set(ic, import_defaults[i].key,
					  import_defaults[i].val, err,
					  sizeof(err));
	rd_kafka_conf_set_log_cb(ic, query_log_cb);
	rd_kafka_conf_set_error_cb(ic, error_cb);
	mirror.importer = rd_kafka_new(RD_KAFKA_CONSUMER, ic, err, sizeof(err));
	if (!mirror.importer) {
		diag_err("mirror: cannot make the Kafka consumer: %s", err);
		rd_kafka_conf_destroy(ic);
		return -EINVAL;
	}
	mirror.iq = rd_kafka_queue_new(mirror.importer);
	load_topics();
	if (pthread_create(&mirror.thread, NULL, mirror_exporter, NULL) != 0)
		return -EAGAIN;
	mirror.started = 1;
	return mirror_import_start();
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
	mirror_import_stop();
	rd_kafka_flush(mirror.producer, MIRROR_STOP_FLUSH_MS);
	/* Off the list before they are freed: a late open's
	 * mirror_writable() finds none. */
	pthread_mutex_lock(&mirror.lock);
	t = mirror.topics;
	mirror.topics = NULL;
	atomic_store(&mirror.imports, 0);
	pthread_mutex_unlock(&mirror.lock);
	for (; t; t = next) {
		next = t->next;
		for (i = 0; i < MIRROR_MAX_PARTS; i++) {
			if (!t->parts[i])
				continue;
			if (t->dir == 't') {
				mirror_export_stop_part(t->parts[i]);
				mirror_store_pos(t->parts[i],
						 atomic_load(&t->parts[i]->acked));
			}
			if (atomic_load(&t->parts[i]->inflight) > 0)
				diag_warn("mirror %s/%d: %d records not yet "
					  "acknowledged; they are sent again "
					  "at the next mount",
					  t->node->name, i,
					  atomic_load(&t->parts[i]->inflight));
			atomic_store(&t->parts[i]->inflight, 0);
			atomic_store(&t->parts[i]->users, 0);
			mirror_drop_part(t, i);
		}
		topic_free(t);
	}
out:
	if (mirror.iq)
		rd_kafka_queue_destroy(mirror.iq);
	if (mirror.importer)
		rd_kafka_destroy(mirror.importer);
	if (mirror.producer)
		rd_kafka_destroy(mirror.producer);
	if (mirror.query)
		rd_kafka_destroy(mirror.query);
	mirror.iq = NULL;
	mirror.importer = NULL;
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
#define XA_FROM "user.fluxfs.mirror_from"
#define XA_RETENTION "user.fluxfs.mirror_retention"
#define XA_RECORDS "user.fluxfs.mirror_records"
#define XA_FAILURES "user.fluxfs.mirror_failures"
#define XA_SKIPPED "user.fluxfs.mirror_skipped"
#define XA_WAIT "user.fluxfs.mirror_wait"

static const char *const part_names[] = {
	XA_STATE, XA_POSITION, XA_LAG, XA_LAG_BYTES,
	XA_ERROR, XA_RECORDS, XA_FAILURES, XA_SKIPPED};

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

/* The end of mp's Kafka partition now, asked of its leader (the
 * importer's own watermark is the one its last fetch saw, which may be
 * long ago: no fetch runs while librdkafka's queue is past its limits).
 * 0 and *high, or -ETIMEDOUT once deadline passed without an answer. */
static int kafka_end_now(struct mpart *mp, int64_t deadline, int64_t *high)
{
	struct timespec ts = {0, 100 * 1000 * 1000};
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	int64_t lo, now;

	while ((now = registry_now_ms()) < deadline) {
		err = rd_kafka_query_watermark_offsets(
		    mirror.importer, mp->t->remote, mp->num, &lo, high,
		    (int)(deadline - now < 5000 ? deadline - now : 5000));
		if (!err)
			return 0;
		nanosleep(&ts, NULL);
	}
	diag_info("mirror %s/%d: mirror_wait: cannot learn the end of kafka "
		  "%s[%d]: %s",
		  mp->t->node->name, mp->num, mp->t->remote, mp->num,
		  rd_kafka_err2str(err));
	return -ETIMEDOUT;
}

/* Wait until everything appended to mp so far is acknowledged (export),
 * or everything in the Kafka partition when asked is imported. */
static int wait_caught_up(struct mpart *mp, char *buf, size_t size)
{
	struct partition_info info;
	int64_t deadline = registry_now_ms() + 30000, high = 0;
	struct timespec ts = {0, 10 * 1000 * 1000};
	int imp = mp->t->dir == 'f';
	int ret;

	partition_get_info(mp->node->part, &info);
	if (imp && (ret = kafka_end_now(mp, deadline, &high)) < 0)
		return ret;
	while (imp ? mp->remote < high
		   : atomic_load(&mp->acked) < info.next_offset) {
		if (atomic_load(&mp->t->gone))
			return -ENODATA; /* no longer mirrored */
		if (registry_now_ms() > deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
	if (imp)
		return fmt(buf, size, "%lld", (long long)high);
	return fmt(buf, size, "%llu", (unsigned long long)info.next_offset);
}

/* Position and lag: local offsets for an export, Kafka offsets for an
 * import. */
static void position_lag(struct mpart *mp, const struct partition_info *info,
			 uint64_t *pos, uint64_t *lag)
{
	int64_t remote = mp->remote, high = atomic_load(&mp->high);

	if (mp->t->dir == 't') {
		*pos = atomic_load(&mp->acked);
		*lag = info->next_offset > *pos ? info->next_offset - *pos : 0;
		return;
	}
	*pos = remote > 0 ? (uint64_t)remote : 0;
	*lag = high > remote && remote >= 0 ? (uint64_t)(high - remote)
	       : remote < 0 && high > 0	   ? (uint64_t)high
					   : 0;
}

/* A topic's mirror attribute. */
static int topic_attr(struct node *n, const char *name, char *buf,
		      size_t size)
{
	struct mtopic *t;
	int ret = -ENODATA;

	pthread_mutex_lock(&mirror.lock);
	t = topic_find(n);
	if (t && t->dir == 't' && !strcmp(name, XA_RETENTION))
		ret = fmt(buf, size, "%s",
			  atomic_load(&t->force) ? "force" : "keep");
	else if (t && !strcmp(name, t->dir == 't' ? XA_TO : XA_FROM))
		ret = fmt(buf, size, "%s", t->remote);
	pthread_mutex_unlock(&mirror.lock);
	return ret;
}

/* Partition n's entry, held (mp->users) until part_release. */
static struct mpart *part_hold(struct node *n)
{
	struct mtopic *t;
	struct mpart *mp;

	pthread_mutex_lock(&mirror.create_lock);
	pthread_mutex_lock(&mirror.lock);
	mp = part_find(n);
	t = mirror.topics;
	pthread_mutex_unlock(&mirror.lock);
	if (!mp) {
		/* A partition made since its topic's thread last looked
		 * (an echo into a new file, then mirror_wait at once) is
		 * mirrored from now, not from the thread's next pass.  No
		 * topic is freed while create_lock is held. */
		for (; t; t = t->next)
			mirror_find_parts(t);
		pthread_mutex_lock(&mirror.lock);
		mp = part_find(n);
		pthread_mutex_unlock(&mirror.lock);
	}
	if (mp)
		atomic_fetch_add(&mp->users, 1);
	pthread_mutex_unlock(&mirror.create_lock);
	return mp;
}

static void part_release(struct mpart *mp)
{
	atomic_fetch_sub(&mp->users, 1);
}

static int part_attr(struct mpart *mp, struct node *n, const char *name,
		     char *buf, size_t size);

int mirror_xattr_get(struct registry *reg, struct node *n, const char *name,
		     char *buf, size_t size)
{
	struct mpart *mp;
	int ret;

	if (strncmp(name, "user.fluxfs.mirror_", 19) != 0)
		return -ENODATA;
	if (n->kind == NODE_TOPIC)
		return topic_attr(n, name, buf, size);
	mp = part_hold(n);
	if (!mp)
		return -ENODATA;
	ret = n->part ? part_attr(mp, n, name, buf, size) : -ENODATA;
	part_release(mp);
	return ret;
}

static int part_attr(struct mpart *mp, struct node *n, const char *name,
		     char *buf, size_t size)
{
	struct partition_info info;
	uint64_t pos, lag, byte = 0;

	partition_get_info(n->part, &info);
	position_lag(mp, &info, &pos, &lag);
	if (!strcmp(name, XA_STATE))
		return fmt(buf, size, "%s",
			   mirror_state_names[atomic_load(&mp->state)]);
	if (!strcmp(name, XA_POSITION))
		return fmt(buf, size, "%llu", (unsigned long long)pos);
	if (!strcmp(name, XA_LAG))
		return fmt(buf, size, "%llu", (unsigned long long)lag);
	if (!strcmp(name, XA_LAG_BYTES) && mp->t->dir == 't') {
		if (lag && partition_offset_to_byte(n->part, pos, &byte) == 0)
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
	if (!strcmp(name, XA_RECORDS))
		return fmt(buf, size, "%llu",
			   (unsigned long long)atomic_load(&mp->produced));
	if (!strcmp(name, XA_FAILURES))
		return fmt(buf, size, "%llu",
			   (unsigned long long)atomic_load(&mp->failures));
	if (!strcmp(name, XA_SKIPPED))
		return fmt(buf, size, "%llu",
			   (unsigned long long)atomic_load(&mp->skipped));
	if (!strcmp(name, XA_WAIT))
		return wait_caught_up(mp, buf, size);
	return -ENODATA;
}

/* mirror_retention on an exported topic: "keep" (retention waits for
 * the export) or "force" (retention as configured; what it deletes
 * unexported is counted in mirror_skipped and logged). */
static int set_retention(struct node *n, const char *value, size_t size)
{
	struct mtopic *t;
	int force, ret;

	if (size == 5 && !memcmp(value, "force", 5))
		force = 1;
	else if (size == 4 && !memcmp(value, "keep", 4))
		force = 0;
	else {
		diag_info("refused %s on '%s': not keep or force",
			  XA_RETENTION, n->name);
		return -EINVAL;
	}
	pthread_mutex_lock(&mirror.lock);
	t = topic_find(n);
	if (!t || t->dir != 't') {
		pthread_mutex_unlock(&mirror.lock);
		diag_info("refused %s on '%s': not an exported topic",
			  XA_RETENTION, n->name);
		return -EINVAL;
	}
	ret = layout_mirror_conf_store(n->dirfd, 't', t->remote, force);
	if (ret == 0)
		atomic_store(&t->force, force);
	pthread_mutex_unlock(&mirror.lock);
	return ret;
}

int mirror_xattr_set(struct registry *reg, struct node *n, const char *name,
		     const char *value, size_t size)
{
	char remote[MIRROR_TOPIC_MAX + 1], shown[DIAG_PRINTABLE_MAX],
		err[200];
	const char *bad = NULL, *xa;
	struct mtopic *t;
	char dir;
	int ret;

	if (strncmp(name, "user.fluxfs.mirror_", 19) != 0)
		return -ENODATA;
	if (!strcmp(name, XA_RETENTION) && n->kind == NODE_TOPIC)
		return set_retention(n, value, size);
	dir = !strcmp(name, XA_TO) ? 't' : !strcmp(name, XA_FROM) ? 'f' : 0;
	if (!dir || n->kind != NODE_TOPIC) {
		diag_info("refused attribute '%s' on '%s': not settable",
			  diag_printable(name, shown, sizeof(shown)), n->name);
		return -EPERM;
	}
	xa = dir == 't' ? XA_TO : XA_FROM;
	if (!mirror.producer) {
		diag_info("refused %s on '%s': no kafka.bootstrap.servers "
			  "was given at mount", xa, n->name);
		return -ENOTCONN;
	}
	if (mirror_topic_name_ok(value, size) < 0) {
		snprintf(remote, sizeof(remote), "%.*s",
			 (int)(size < MIRROR_TOPIC_MAX ? size : MIRROR_TOPIC_MAX),
			 value);
		diag_info("refused %s on '%s': '%s' is not a Kafka topic name",
			  xa, n->name,
			  diag_printable(remote, shown, sizeof(shown)));
		return -EINVAL;
	}
	memcpy(remote, value, size);
	remote[size] = '\0';
	pthread_mutex_lock(&mirror.lock);
	for (t = mirror.topics; t && t->node != n; t = t->next)
		;
	ret = !t ? 0
	      : atomic_load(&t->gone) ? -EAGAIN
	      : !strcmp(t->remote, remote) && t->dir == dir ? 1
							    : -EBUSY;
	if (ret == -EBUSY)
		diag_info("refused %s on '%s': already mirrored with kafka "
			  "topic '%s'", xa, n->name, t->remote);
	pthread_mutex_unlock(&mirror.lock);
	if (ret == -EAGAIN)
		/* Its deliveries or readers from before are still out:
		 * a new mirror must not resume beside them. */
		diag_info("refused %s on '%s': the previous mirror of it is "
			  "still stopping", xa, n->name);
	if (ret)
		return ret < 0 ? ret : 0;
	registry_list(reg, n, numeric_cb, &bad);
	if (bad) {
		diag_info("refused %s on '%s': partition '%s' is not a "
			  "Kafka partition number", xa, n->name, bad);
		return -EINVAL;
	}
	/* An import needs the topic to exist; an unreachable cluster is
	 * asked again later. */
	if (dir == 'f' &&
	    mirror_remote_partitions(mirror.query, remote, err, sizeof(err)) ==
		    -ENOENT) {
		diag_info("refused %s on '%s': kafka topic '%s': %s", xa,
			  n->name, remote, err);
		return -ENOENT;
	}
	ret = refuse_taken(n, dir, remote, xa);
	if (ret)
		return ret;
	ret = layout_mirror_conf_store(n->dirfd, dir, remote, 0);
	if (ret == 0)
		ret = topic_add(n, dir, remote, 0);
	if (ret == -EBUSY || ret == -EAGAIN)
		layout_mirror_conf_remove(n->dirfd); /* taken meanwhile */
	return ret;
}

int mirror_xattr_remove(struct registry *reg, struct node *n,
			const char *name)
{
	struct mtopic *t;
	int ret;

	if (strcmp(name, XA_TO) && strcmp(name, XA_FROM))
		return -ENOSYS;
	if (n->kind != NODE_TOPIC)
		return -ENODATA;
	pthread_mutex_lock(&mirror.lock);
	t = topic_find(n);
	if (!t || strcmp(name, t->dir == 't' ? XA_TO : XA_FROM)) {
		pthread_mutex_unlock(&mirror.lock);
		return -ENODATA;
	}
	/* Durably first: a crash after this must not mirror it again. */
	ret = layout_mirror_conf_remove(n->dirfd);
	if (ret == 0 || ret == -ENOENT) {
		/* Its thread stops and frees it at its next pass. */
		atomic_store(&t->gone, 1);
		ret = 0;
	}
	pthread_mutex_unlock(&mirror.lock);
	if (ret < 0)
		diag_warn("mirror: topic '%s': removing %s: %s", n->name,
			  LAYOUT_MIRROR_CONF_FILE, strerror(-ret));
	return ret;
}

size_t mirror_xattr_list(struct node *n, char *buf, size_t size, size_t len)
{
	const char *names[16];
	struct mtopic *t;
	struct mpart *mp;
	size_t i, k = 0, need;

	pthread_mutex_lock(&mirror.lock);
	if (n->kind == NODE_TOPIC && (t = topic_find(n))) {
		names[k++] = t->dir == 't' ? XA_TO : XA_FROM;
		if (t->dir == 't')
			names[k++] = XA_RETENTION;
	}
	else if (n->kind == NODE_PARTITION && (mp = part_find(n)))
		for (i = 0; i < sizeof(part_names) / sizeof(*part_names); i++)
			if (mp->t->dir == 't' || strcmp(part_names[i], XA_LAG_BYTES))
				names[k++] = part_names[i];
	pthread_mutex_unlock(&mirror.lock);
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
	struct mtopic *t;
	struct mpart *mp;
	int ret;

	/* The common case without the lock: no import at all.  An import
	 * added meanwhile is ordered after this open, as with the lock. */
	if (!atomic_load(&mirror.imports))
		return 0;
	pthread_mutex_lock(&mirror.lock);
	if (n->kind == NODE_TOPIC)
		t = topic_find(n);
	else
		t = (mp = part_find(n)) ? mp->t : NULL;
	ret = t && t->dir == 'f' ? -EROFS : 0;
	pthread_mutex_unlock(&mirror.lock);
	return ret;
}

int mirror_metrics(struct prom_buf *out,
		   int (*visible)(void *arg, struct node *topic,
				  struct node *n),
		   void *arg)
{
	struct prom_mirror_series *s = NULL, *ns;
	struct partition_info info;
	size_t n = 0, cap = 0;
	struct mtopic *t;
	struct mpart *mp;
	int i, ret;

	/* Under the lock: no partition is dropped meanwhile. */
	pthread_mutex_lock(&mirror.lock);
	for (t = mirror.topics; t; t = t->next) {
		for (i = 0; i < MIRROR_MAX_PARTS; i++) {
			mp = t->parts[i];
			if (!mp || !mp->node->part || !visible(arg, t->node, mp->node))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				ns = realloc(s, cap * sizeof(*s));
				if (!ns) {
					pthread_mutex_unlock(&mirror.lock);
					free(s);
					return -ENOMEM;
				}
				s = ns;
			}
			partition_get_info(mp->node->part, &info);
			s[n].topic = t->node->name;
			s[n].partition = mp->node->name;
			s[n].direction = t->dir == 't' ? "export" : "import";
			s[n].state = atomic_load(&mp->state);
			position_lag(mp, &info, &s[n].position, &s[n].lag);
			s[n].records = atomic_load(&mp->produced);
			s[n].failures = atomic_load(&mp->failures);
			s[n].skipped = atomic_load(&mp->skipped);
			n++;
		}
	}
	ret = prom_render_mirror(out, s, n);
	pthread_mutex_unlock(&mirror.lock);
	free(s);
	return ret;
}
