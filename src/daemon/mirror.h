/*
 * mirror.h - the Kafka mirror: topics exported to a Kafka cluster
 * (user.fluxfs.mirror_to) and imported from one (user.fluxfs.mirror_from),
 * on the mirror's own threads, through librdkafka.  The engine knows
 * nothing of it: the mirror reads and appends partitions through the
 * engine's API and keeps its positions in mirror.pos (layout.h).
 *
 * The daemon calls in at a few places: mirror_option() for each kafka.*
 * mount option, mirror_configure() before mounting (a bad property fails
 * the mount with librdkafka's message), mirror_start() once serving and
 * mirror_stop() before the registry closes; the FUSE layer asks
 * mirror_xattr_*() first for every user.fluxfs.* attribute and
 * mirror_writable() before a write.  Built without librdkafka
 * (./configure --without-kafka) the same calls refuse kafka.* options and
 * the mirror attributes (ENOTSUP) and do nothing else.
 */
#ifndef FLUXFS_MIRROR_H
#define FLUXFS_MIRROR_H

#include <stddef.h>
#include <stdint.h>

struct registry;
struct node;
struct prom_buf;

/* A -o option: 1 if it was a kafka.* option (taken), 0 if not ours,
 * -EINVAL (message on stderr) if it cannot be used. */
int mirror_option(const char *opt);
/* Build librdkafka's configuration from the options; -EINVAL (message on
 * stderr) for a property librdkafka refuses or an unreadable
 * kafka.config. */
int mirror_configure(void);
/* Start the mirror threads for every topic with a mirror.conf.  The
 * importer calls appended(n, end) after each append it makes, so the
 * FUSE layer shows the new end and wakes followers. */
int mirror_start(struct registry *reg,
		 void (*appended)(struct node *n, uint64_t end));
/* Deliver what can be delivered in a few seconds, store positions, stop. */
void mirror_stop(void);

/* user.fluxfs.mirror_* of node n.  -ENODATA when name is not a mirror
 * attribute (the caller goes on with its own). */
int mirror_xattr_get(struct registry *reg, struct node *n, const char *name,
		     char *buf, size_t size);
int mirror_xattr_set(struct registry *reg, struct node *n, const char *name,
		     const char *value, size_t size);
/* removexattr of user.fluxfs.mirror_to or mirror_from on topic n: the
 * topic is no longer mirrored (its mirror.conf removed; its thread stops
 * it at its next pass).  0, -ENODATA when n has no such mirror, -errno;
 * -ENOSYS when name is neither (the caller goes on with its own). */
int mirror_xattr_remove(struct registry *reg, struct node *n,
			const char *name);
/* Append the mirror attribute names n has to a listxattr answer of len
 * bytes in buf (size 0: only count); returns the new length. */
size_t mirror_xattr_list(struct node *n, char *buf, size_t size, size_t len);
/* Append the mirror's .metrics series for the partitions visible(arg,
 * topic, n)
 * allows; 0 or -ENOMEM. */
int mirror_metrics(struct prom_buf *out,
		   int (*visible)(void *arg, struct node *topic,
				  struct node *n),
		   void *arg);
/* 0, or -EROFS for an imported topic or one of its partitions (no
 * writes, no new partitions through the mount). */
int mirror_writable(struct node *n);

#endif
