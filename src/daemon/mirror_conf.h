/*
 * mirror_conf.h - the pure parts of the Kafka mirror, kept apart from
 * librdkafka so that they build (and are tested) without it: the
 * kafka.config file's key=value lines, the fluxfs-offset record header,
 * the Kafka partition a local partition name stands for, and the two
 * decisions that make mirroring exactly once across restarts (where an
 * export resumes, where an import resumes).
 */
#ifndef FLUXFS_MIRROR_CONF_H
#define FLUXFS_MIRROR_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* The header every exported record carries: the message's local offset,
 * in decimal ASCII (readable with kcat -f '%h'). */
#define MIRROR_HEADER "fluxfs-offset"
#define MIRROR_HEADER_MAX 21

/* The mount option prefix handed to librdkafka, and the option naming a
 * file of further properties (secrets stay out of ps). */
#define MIRROR_OPT_PREFIX "kafka."
#define MIRROR_OPT_CONFIG "kafka.config"

/* The longest Kafka topic name (Kafka's own limit). */
#define MIRROR_TOPIC_MAX 249

/* Encode offset into buf (MIRROR_HEADER_MAX bytes); returns the length. */
int mirror_header_encode(uint64_t offset, char *buf);
/* Decode a header value: 0, or -EINVAL when it is not a decimal number. */
int mirror_header_decode(const void *val, size_t len, uint64_t *offset);

/* A partition name as a Kafka partition number: "0".."2147483647" without
 * leading zeros; -EINVAL otherwise. */
int mirror_partition_number(const char *name, int32_t *out);
/* A Kafka topic name: 1..249 of [a-zA-Z0-9._-], not "." or "..";
 * -EINVAL otherwise. */
int mirror_topic_name_ok(const char *name, size_t len);

/* Parse librdkafka's configuration file format: one key=value per line,
 * blank lines and lines starting with '#' ignored, spaces around the key
 * and value trimmed.  cb gets each pair (NUL-terminated); its non-zero
 * return stops the parse and is returned.  A line without '=' returns
 * -EINVAL with its number (1-based) in *bad_line. */
int mirror_conf_file_parse(const char *text, size_t len,
			   int (*cb)(void *arg, const char *key,
				     const char *val),
			   void *arg, unsigned *bad_line);

/* Where an export resumes: the stored position (0 without one), and what
 * the Kafka partition holds: has_last 1 when its last record carries a
 * fluxfs-offset header (last_header), 0 when it is empty or the record
 * has none.  Kafka wins when it says: a crash after the cluster
 * acknowledged a record but before the position was stored must not
 * send it again, and a cluster that lost acknowledged records (an
 * unclean leader election) gets them again rather than a gap. */
uint64_t mirror_export_resume(uint64_t stored, int has_last,
			      uint64_t last_header);
/* Whether the query consumer's end-of-partition event at offset end
 * confirms that the Kafka partition holds no record: only when end is 0
 * or the log's start (log_start, -1 when unknown; every record deleted
 * by Kafka's retention).  The check starts one record before the end, so
 * on a partition with records the record comes first; an end event alone
 * at an end above the start means the read did not start where it was
 * asked (a reset while the cluster recovered) and proves nothing. */
int mirror_eof_is_empty(int64_t end, int64_t log_start);
/* Where an export resumes when the Kafka partition holds no record but
 * its offsets start at end > 0: Kafka's own retention deleted every
 * record.  No header says how far the export got, so the stored
 * position answers: stored (the next local offset) is what Kafka's
 * offset stored_remote carries (known when remote_known: a mirror.pos
 * written before this was kept says nothing of Kafka's offsets).  The
 * records Kafka counted past it (end - stored_remote) were local
 * messages stored, stored + 1, ..., sent after the position was stored
 * (a crash before the next store); fewer (end below stored_remote) means
 * Kafka lost acknowledged records, sent again.  0 and *next = stored +
 * (end - stored_remote) when that holds one local message per Kafka
 * offset: no message between it and stored was deleted locally before
 * it was sent (local_start at or below both; retention moves the start
 * only forward) and the log has it (at most local_next).  -ESTALE
 * otherwise: the export cannot resume exactly once from what is known. */
int mirror_export_resume_emptied(uint64_t stored, int remote_known,
				 uint64_t stored_remote, uint64_t end,
				 uint64_t local_start, uint64_t local_next,
				 uint64_t *next);
/* Where an import resumes, from the stored intent m and the local log's
 * next offset: m's remote_after if the appends it announced landed,
 * remote_before if none did, and for a prefix of them the same prefix of
 * records when the intent maps records to messages one to one (as many
 * Kafka offsets as local ones: no gap, nothing skipped); -ESTALE when the
 * log ends elsewhere (it was changed behind the mirror's back). */
int mirror_import_resume(const struct layout_mirror_pos *m,
			 uint64_t local_next, uint64_t *remote);

#endif
