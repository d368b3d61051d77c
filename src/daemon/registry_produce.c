/*
 * registry_produce.c - a topic's keyed-producing settings and its
 * partitions by number.
 *
 * The settings (produce.h) live in the topic's produce.conf, written
 * atomically, and in the topic node (node->produce, under its
 * meta_lock).  `partitions` makes partitions exist: setting it creates
 * the missing ones, 0..N-1, before the new count is stored, so a crash in
 * between leaves partitions that the count in use (those that exist)
 * already covers.  Lowering it would send keys to other partitions and
 * strand the data of the removed ones, as Kafka refuses to: -EINVAL.
 * Raising it moves keys too, which Kafka allows: a warning is logged when
 * the topic may hold keyed lines (a partition is not empty and the topic
 * has a key separator; the lines themselves are not scanned).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "registry.h"
#include "registry_int.h"

/* The partition number a name stands for: "0", or digits without a
 * leading zero below PRODUCE_MAX_PARTITIONS; -1 for any other name. */
static long partition_number(const char *name)
{
	long v = 0;
	size_t i;

	if (name[0] == '0')
		return name[1] ? -1 : 0;
	for (i = 0; name[i]; i++) {
		if (name[i] < '0' || name[i] > '9' || i >= 5)
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return i && v < PRODUCE_MAX_PARTITIONS ? v : -1;
}

void produce_read(struct node *t)
{
	char buf[256];
	int n;

	n = read_small(t->dirfd, LAYOUT_TOPIC_PRODUCE, buf, sizeof(buf));
	if (n < 0)
		return;
	if (produce_conf_parse(&t->produce, buf, (size_t)n) < 0) {
		diag_err("bad '%s/" LAYOUT_TOPIC_PRODUCE "', ignoring the file",
			 t->name);
		produce_conf_init(&t->produce);
	}
}

void registry_produce_conf(struct registry *reg, struct node *topic,
			   struct produce_conf *out, uint64_t *max_message)
{
	struct config cfg;

	effective_config(reg, topic, &cfg);
	*max_message = cfg.max_message_bytes;
	pthread_mutex_lock(&topic->meta_lock);
	*out = topic->produce;
	pthread_mutex_unlock(&topic->meta_lock);
}

/* How many partitions 0, 1, 2... exist without a gap (reg->lock held). */
static uint32_t contiguous(struct node *topic)
{
	unsigned char *seen;
	struct node *c;
	uint32_t n = 0;
	long i;

	seen = calloc(topic->nchildren + 1, 1);
	if (!seen)
		return 0;
	for (c = topic->children; c; c = c->next) {
		i = partition_number(c->name);
		if (i >= 0 && (unsigned long)i < topic->nchildren)
			seen[i] = 1;
	}
	while (seen[n])
		n++;
	free(seen);
	return n;
}

/* Create the missing partitions 0..n-1 of topic. */
static int create_partitions(struct registry *reg, struct node *topic,
			     uint32_t n, uid_t uid, gid_t gid)
{
	struct node *p;
	char name[16];
	uint32_t i;
	int ret;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%u", i);
		ret = registry_create(reg, topic, name, 0644, uid, gid, &p);
		if (ret == -EEXIST)
			continue;
		if (ret < 0) {
			diag_err("cannot create partition '%s/%s': %s",
				 topic->name, name, strerror(-ret));
			return ret;
		}
		registry_forget(reg, p, 1);
	}
	return 0;
}

int registry_produce_partitions(struct registry *reg, struct node *topic,
				uid_t uid, gid_t gid, struct node ***out,
				uint32_t *count)
{
	struct node **slot, *c;
	uint32_t n, i, found;
	int created = 0;
	long k;

again:
	found = 0;
	pthread_rwlock_rdlock(&reg->lock);
	if (topic->removed) {
		pthread_rwlock_unlock(&reg->lock);
		return -ENOENT;
	}
	pthread_mutex_lock(&topic->meta_lock);
	n = topic->produce.partitions;
	pthread_mutex_unlock(&topic->meta_lock);
	if (!n)
		n = contiguous(topic);
	slot = calloc(n ? n : 1, sizeof(*slot));
	if (!slot) {
		pthread_rwlock_unlock(&reg->lock);
		return -ENOMEM;
	}
	for (c = topic->children; c; c = c->next) {
		k = partition_number(c->name);
		if (k >= 0 && (uint32_t)k < n && registry_pin(reg, c) == 0) {
			slot[k] = c;
			found++;
		}
	}
	pthread_rwlock_unlock(&reg->lock);
	if (found < n && !created) {
		/* The setting says they exist: someone removed some. */
		for (i = 0; i < n; i++)
			if (slot[i])
				registry_unpin(reg, slot[i]);
		free(slot);
		if (create_partitions(reg, topic, n, uid, gid) < 0)
			return -ENXIO;
		created = 1;
		goto again;
	}
	*out = slot;
	*count = n;
	return 0;
}

/* The count in use: the setting, or the partitions that exist. */
static uint32_t partitions_in_use(struct registry *reg, struct node *topic)
{
	uint32_t n;

	pthread_rwlock_rdlock(&reg->lock);
	pthread_mutex_lock(&topic->meta_lock);
	n = topic->produce.partitions;
	pthread_mutex_unlock(&topic->meta_lock);
	if (!n)
		n = contiguous(topic);
	pthread_rwlock_unlock(&reg->lock);
	return n;
}

int registry_produce_get(struct registry *reg, struct node *topic, int key,
			 char *buf, size_t size)
{
	struct produce_conf c;
	uint64_t max;
	char sep[1];
	size_t len;
	int n;

	if (topic->kind != NODE_TOPIC)
		return -ENODATA;
	if (key == PRODUCE_PARTITIONS) {
		n = snprintf(buf, size, "%u", partitions_in_use(reg, topic));
		return n < 0 || (size_t)n >= size ? -ERANGE : n;
	}
	registry_produce_conf(reg, topic, &c, &max);
	len = produce_format_separator(c.separator, sep);
	if (len > size)
		return -ERANGE;
	memcpy(buf, sep, len);
	return (int)len;
}

/* Whether the topic may hold keyed lines (see the top of this file). */
static int may_hold_keys(struct registry *reg, struct node *topic, int sep)
{
	struct partition_info info;
	struct node *c;
	int found = 0;

	if (sep == PRODUCE_NO_SEPARATOR)
		return 0;
	pthread_rwlock_rdlock(&reg->lock);
	for (c = topic->children; c && !found; c = c->next) {
		/* An idle partition shows what it held when it closed; one
		 * not opened since a crash may hold anything. */
		if (c->part)
			partition_get_info(c->part, &info);
		else if (!part_idle_info(c, &info))
			info.end_byte = info.start_byte + 1;
		found = info.end_byte > info.start_byte;
	}
	pthread_rwlock_unlock(&reg->lock);
	return found;
}

/* Write the topic's settings c and make them the ones in use. */
static int produce_store(struct registry *reg, struct node *topic,
			 const struct produce_conf *c)
{
	char text[256];
	int len, ret;

	len = produce_conf_render(c, text, sizeof(text));
	if (len < 0)
		return len;
	pthread_rwlock_wrlock(&reg->lock);
	ret = topic->removed
		      ? -ENOENT
		      : io_write_atomic(topic->dirfd, LAYOUT_TOPIC_PRODUCE,
					text, (size_t)len);
	if (ret == 0) {
		pthread_mutex_lock(&topic->meta_lock);
		topic->produce = *c;
		pthread_mutex_unlock(&topic->meta_lock);
	}
	pthread_rwlock_unlock(&reg->lock);
	return ret;
}

static int set_partitions(struct registry *reg, struct node *topic,
			  const char *val, size_t len, uid_t uid, gid_t gid)
{
	struct produce_conf c;
	uint32_t n, used;
	uint64_t max;
	int ret;

	ret = produce_parse_partitions(val, len, &n);
	if (ret < 0) {
		diag_info("refused partitions=%.*s on '%s': not a number "
			  "from 1 to %d",
			  (int)(len < 32 ? len : 32), val, topic->name,
			  PRODUCE_MAX_PARTITIONS);
		return ret;
	}
	used = partitions_in_use(reg, topic);
	if (n < used) {
		diag_info("refused partitions=%u on '%s': it has %u, and "
			  "lowering the count would move keys and strand the "
			  "data of the partitions left out",
			  n, topic->name, used);
		return -EINVAL;
	}
	registry_produce_conf(reg, topic, &c, &max);
	if (n > used && used > 0 && may_hold_keys(reg, topic, c.separator))
		diag_warn("partitions of '%s' raised from %u to %u: keyed "
			  "lines written from now on may go to another "
			  "partition than the same keys before",
			  topic->name, used, n);
	ret = create_partitions(reg, topic, n, uid, gid);
	if (ret < 0)
		return ret;
	c.partitions = n;
	ret = produce_store(reg, topic, &c);
	if (ret == 0)
		diag_info("set partitions=%u on '%s'", n, topic->name);
	return ret;
}

int registry_produce_set(struct registry *reg, struct node *topic, int key,
			 const char *val, size_t len, uid_t uid, gid_t gid)
{
	struct produce_conf c;
	uint64_t max;
	int sep, ret;

	if (topic->kind != NODE_TOPIC)
		return -ENOTSUP;
	if (key == PRODUCE_PARTITIONS)
		return set_partitions(reg, topic, val, len, uid, gid);
	ret = produce_parse_separator(val, len, &sep);
	if (ret < 0) {
		diag_info("refused key_separator on '%s': one byte other than "
			  "a newline or NUL, or empty for none",
			  topic->name);
		return ret;
	}
	registry_produce_conf(reg, topic, &c, &max);
	c.separator = sep;
	ret = produce_store(reg, topic, &c);
	if (ret == 0)
		diag_info("set key_separator on '%s' to %s", topic->name,
			  sep == PRODUCE_NO_SEPARATOR ? "none (no keys)"
						      : "one byte");
	return ret;
}

int registry_produce_unset(struct registry *reg, struct node *topic, int key)
{
	struct produce_conf c, d;
	uint64_t max;

	if (topic->kind != NODE_TOPIC)
		return -ENODATA;
	registry_produce_conf(reg, topic, &c, &max);
	produce_conf_init(&d);
	if (key == PRODUCE_PARTITIONS) {
		if (!c.partitions)
			return -ENODATA;
		c.partitions = 0;
	} else {
		if (c.separator == d.separator)
			return -ENODATA;
		c.separator = d.separator;
	}
	return produce_store(reg, topic, &c);
}
