/*
 * mirror_int.h - what the Kafka mirror's files share (mirror.c: options,
 * topics, attributes, start and stop; mirror_export.c: the exporter
 * thread; mirror_import.c: the importer thread): the per-topic and
 * per-partition state and the helpers both threads use.
 */
#ifndef FLUXFS_MIRROR_INT_H
#define FLUXFS_MIRROR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "mirror.h"
#include "mirror_conf.h"
#include "registry.h"

#define MIRROR_MAX_PARTS 1024
/* How long a check of the Kafka partition's last record may take. */
#define MIRROR_QUERY_MS 5000
/* How long the exporter waits for delivery reports between its passes
 * over the exported partitions, and while a check is under way. */
#define MIRROR_POLL_MS 10
#define MIRROR_QUERY_POLL_MS 1
/* How long after an exported topic is added its partitions' first
 * checks wait for the query consumer to learn the topic's leaders. */
#define MIRROR_METADATA_MS 20
/* Positions are stored at most this often (each store is three syncs). */
#define MIRROR_STORE_MS 200
/* Retrying to resume a partition against the cluster: the first wait,
 * doubled up to the last. */
#define MIRROR_BACKOFF_MS 100
#define MIRROR_BACKOFF_MAX_MS 10000
/* What mirror_stop() waits for outstanding deliveries. */
#define MIRROR_STOP_FLUSH_MS 2000

enum mstate { MS_STARTING, MS_OK, MS_RETRYING, MS_ERROR };
extern const char *const mirror_state_names[];

/* One mirrored partition.  Its topic's thread (exporter or importer)
 * owns everything but the atomics, which the attribute readers load, and
 * last_error (under mirror.lock). */
struct mpart {
	struct mtopic *t;
	int32_t num;
	struct node *node;	      /* pinned */
	int ready;		      /* resumed against Kafka's last record */
	int64_t retry_at;	      /* no resume attempt before (ms) */
	int64_t backoff;	      /* the wait after the next failure */
	uint64_t sent;		      /* next local offset to produce */
	uint64_t stored;	      /* what mirror.pos holds */
	atomic_uint_fast64_t acked;   /* export: everything below is in Kafka */
	/* Export, on the exporter thread: the Kafka offset the record of
	 * local offset acked gets (or got), once a resume or a delivery
	 * report said (remote_known), and what mirror.pos holds of it. */
	uint64_t acked_remote, stored_remote;
	int remote_known;
	atomic_uint_fast64_t produced; /* records acknowledged / imported */
	atomic_uint_fast64_t failures; /* deliveries that failed */
	atomic_uint_fast64_t skipped;  /* lost to retention before export */
	atomic_int inflight;
	atomic_int users;	      /* attribute readers holding it */
	atomic_int failed;	      /* rewind once inflight drains */
	atomic_int state;
	char last_error[100];
	/* Export: the check of the Kafka partition's last record under way
	 * (a fetch of it onto its own queue, polled without blocking), and
	 * when it gives up. */
	rd_kafka_topic_t *qrkt;
	rd_kafka_queue_t *qq;
	int64_t qdeadline;
	int64_t qbest;	   /* the highest record offset the check saw, or -1 */
	uint64_t qbest_hdr; /* its fluxfs-offset header */
	int qbest_bad;	   /* it had no (valid) header */
	/* The next check reads from Kafka's end, not its last record: the
	 * last one was out of range (retention may have deleted every
	 * record); the end's fetch tells whether the log starts there. */
	int qend;
	/* Import: the Kafka offset to consume next (or a logical offset
	 * such as RD_KAFKA_OFFSET_BEGINNING before the first record),
	 * whether its fetch runs, the newest timestamp appended (times are
	 * kept non-decreasing), the Kafka partition's high watermark. */
	int64_t remote;
	int fetching;
	int ifd;		      /* mirror.intent, while fetching */
	uint64_t iseq;		      /* the last intent's sequence */
	int64_t last_ts;
	atomic_int_fast64_t high;
};

struct mtopic {
	struct mtopic *next;
	struct node *node; /* the local topic, pinned */
	char dir;	   /* 't': export, 'f': import */
	char remote[MIRROR_TOPIC_MAX + 1];
	rd_kafka_topic_t *rkt; /* on the producer (export) or importer */
	rd_kafka_topic_t *qrkt; /* export: on the query consumer (below) */
	int64_t check_after;	/* export: no check of a last record before */
	atomic_int force;      /* export: retention may delete unexported */
	atomic_int gone;       /* mirror_to/from removed: being retired */
	int32_t nremote;       /* import: the Kafka topic's partitions */
	int64_t retry_at, backoff; /* import: asking for them again */
	int64_t refresh_at;	   /* import: asking whether Kafka added some */
	struct mpart *parts[MIRROR_MAX_PARTS];
};

struct mirror_global {
	pthread_mutex_t lock; /* topics list, last_error texts */
	/* Held by the importer from creating partitions until they are
	 * mirrored, and by attribute readers, so none sees one between;
	 * and around every mirror_find_parts(), which the topics' threads
	 * and attribute readers (a partition made since the last pass)
	 * all call. */
	pthread_mutex_t create_lock;
	rd_kafka_conf_t *conf; /* as configured; copied for each handle */
	rd_kafka_t *producer;
	rd_kafka_t *query;     /* reads last records (legacy consumer) */
	rd_kafka_t *importer;  /* fetches imported partitions (legacy) */
	rd_kafka_queue_t *iq;  /* where their records arrive */
	pthread_t ithread;
	int istarted;
	/* Tell the FUSE layer of an append the importer made. */
	void (*appended)(struct node *n, uint64_t end);
	struct registry *reg;
	struct mtopic *topics; /* under lock */
	/* How many imported topics the list holds, changed under lock with
	 * it: mirror_writable()'s check without the lock for every open
	 * and create on a mount with no import. */
	atomic_int imports;
	pthread_t thread;
	int started;
	atomic_int stop;
	atomic_int cluster_err; /* the latest error_cb code, 0 after a success */
	char cluster_error[100];
	int user_timeout; /* kafka.message.timeout.ms was given */
	unsigned import_given; /* the importer's defaults given (mirror.c) */
	/* The options, kept until mirror_configure(). */
	char **opts;
	size_t nopts;
};
extern struct mirror_global mirror;

/* Set mp's state (and its last error, if why); logs a change of state. */
void mirror_set_state(struct mpart *mp, enum mstate st, const char *why);
/* Add t's partitions not yet mirrored (numeric names below
 * MIRROR_MAX_PARTS), pinned. */
void mirror_find_parts(struct mtopic *t);
/* t's partition i, or NULL: none, or it left the namespace (then it is
 * stopped with stop, if given, and dropped). */
struct mpart *mirror_part_live(struct mtopic *t, int i,
			       void (*stop)(struct mpart *mp));
/* Whether t is no longer mirrored: its attribute removed, or the topic
 * removed (rmdir). */
int mirror_topic_gone(struct mtopic *t);
/* The first topic in direction dir after after (NULL: from the start).
 * Only dir's own thread frees a topic, so after stays valid for it. */
struct mtopic *mirror_next_topic(struct mtopic *after, char dir);
/* On t's own thread: if t is gone, stop its partitions (stop), drop them
 * and, once none is left, take t off the list and free it.  1 when t is
 * gone (the caller skips it and never touches it again), 0 otherwise. */
int mirror_topic_retire(struct mtopic *t, void (*stop)(struct mpart *mp));
/* Forget t's partition i (unpinned, freed) unless deliveries are out. */
void mirror_drop_part(struct mtopic *t, int i);
/* Next backoff after a failure: *backoff doubled (from MIRROR_BACKOFF_MS
 * up to MIRROR_BACKOFF_MAX_MS); returns when to try again. */
int64_t mirror_backoff(int64_t *backoff);

/* mirror_export.c */
void mirror_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
void *mirror_exporter(void *arg);
/* End mp's check of its Kafka partition's last record, if one runs. */
void mirror_export_stop_part(struct mpart *mp);
/* Store an export position in mp's mirror.pos (if it moved), with the
 * Kafka offset it maps to when pos is mp->acked and that is known. */
void mirror_store_pos(struct mpart *mp, uint64_t pos);

/* mirror_import.c */
int mirror_import_start(void);
void mirror_import_stop(void);
/* The Kafka topic's partition count, or -errno (why in err). */
int mirror_remote_partitions(rd_kafka_t *rk, const char *topic, char *err,
			     size_t esize);

#endif
