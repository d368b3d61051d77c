/*
 * registry_config.c - the configuration layers of topics and partitions.
 *
 * A partition's effective configuration is the mount's options over the
 * built-in defaults, then its topic's overrides (DATA_DIR/<topic>/
 * topic.conf), then its own (partition.conf inside its directory).  A
 * change through the xattrs is written atomically, then applied at once
 * to every open partition it reaches; a topic's change reaches all its
 * partitions.  A file that does not parse is reported and ignored, so
 * the mount still comes up.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "registry.h"
#include "registry_int.h"

/* Load a topic.conf / partition.conf into over; a bad file is reported
 * and ignored (the mount still comes up). */
void conf_read(struct config *over, int dirfd, const char *file,
	       const char *what)
{
	char buf[4096];
	int bad = 0, n;

	memset(over, 0, sizeof(*over));
	n = read_small(dirfd, file, buf, sizeof(buf));
	if (n < 0)
		return;
	if (config_parse_text(over, buf, (size_t)n, &bad) < 0) {
		diag_err("bad line %d in '%s/%s', ignoring the file", bad, what,
			 file);
		memset(over, 0, sizeof(*over));
	}
}

/* Read partition n's partition.conf if not yet done: the mount does
 * not, to stay one small read per partition.  Called with reg->lock
 * held (n's name and place are stable). */
static void over_load(struct registry *reg, struct node *n)
{
	char path[REGISTRY_NAME_MAX + sizeof("/" LAYOUT_PART_CONF)];
	int dfd;

	if (n->kind != NODE_PARTITION)
		return;
	pthread_mutex_lock(&n->meta_lock);
	if (!n->over_loaded) {
		n->over_loaded = 1;
		if (!n->removed || n->trash[0]) {
			dfd = n->removed ? reg->trashfd : n->parent->dirfd;
			snprintf(path, sizeof(path), "%s/" LAYOUT_PART_CONF,
				 n->removed ? n->trash : n->name);
			conf_read(&n->over, dfd, path,
				  n->removed ? LAYOUT_TRASH_DIR
					     : n->parent->name);
		}
	}
	pthread_mutex_unlock(&n->meta_lock);
}

static void overlay_own(struct registry *reg, struct node *n,
			struct config *cfg);

/* The mount's defaults, the topic's overrides, the partition's. */
void effective_config(struct registry *reg, struct node *n, struct config *cfg)
{
	struct node *t = n->kind == NODE_PARTITION ? n->parent : n;

	*cfg = reg->defaults;
	if (t && t->kind == NODE_TOPIC) {
		pthread_mutex_lock(&t->meta_lock);
		config_overlay(cfg, cfg, &t->over);
		pthread_mutex_unlock(&t->meta_lock);
	}
	if (n->kind == NODE_PARTITION)
		overlay_own(reg, n, cfg);
	cfg->set = (1u << CONFIG_NKEYS) - 1;
}

/* cfg with partition n's own overrides laid over it. */
static void overlay_own(struct registry *reg, struct node *n,
			struct config *cfg)
{
	over_load(reg, n);
	pthread_mutex_lock(&n->meta_lock);
	config_overlay(cfg, cfg, &n->over);
	pthread_mutex_unlock(&n->meta_lock);
}

/* A period or bound (-1: none) that makes maintenance act sooner. */
static int sooner(int64_t now, int64_t before)
{
	return now >= 0 && (before < 0 || now < before);
}

/* Whether maintenance of an idle partition could fall due sooner under
 * cfg than under old: a retention or time roll that is new or shorter,
 * or compression turned on.  Nothing else moves a closed partition's
 * due time: it has nothing unflushed (flush_ms), size rolls happen on
 * appends (segment_bytes), and a change of codec or level applies to
 * raw sealed segments, which were due already. */
static int maint_sooner(const struct config *cfg, const struct config *old)
{
	return sooner(cfg->retention_ms, old->retention_ms) ||
	       sooner(cfg->retention_bytes, old->retention_bytes) ||
	       sooner(cfg->segment_ms, old->segment_ms) ||
	       (cfg->compression != COMPRESSION_NONE &&
		old->compression == COMPRESSION_NONE);
}

/* Push the effective configuration into an open partition.  A closed
 * one learns it when it opens; when maintenance next has work in it
 * under the new settings (a shorter retention_ms, say) is not known
 * without its log, so the next maintenance pass opens it to tick it.
 * Its due time is kept when old (its effective configuration before
 * the change; NULL: not known) shows the change cannot make work fall
 * due sooner: that time is then no later than the new one, and a pass
 * that opens it early finds nothing to do and learns the new one. */
int apply_config(struct registry *reg, struct node *n,
		 const struct config *old)
{
	struct config cfg;

	if (!n->part) {
		if (old)
			effective_config(reg, n, &cfg);
		if (!old || maint_sooner(&cfg, old)) {
			pthread_mutex_lock(&n->meta_lock);
			n->idle_due = 0;
			idle_hint_lower(reg, 0);
			pthread_mutex_unlock(&n->meta_lock);
		}
		return 0;
	}
	effective_config(reg, n, &cfg);
	atomic_store(&n->max_message, cfg.max_message_bytes);
	return partition_set_config(n->part, &cfg);
}

int registry_due_unknown(struct registry *reg, struct node *n,
			 unsigned *loads)
{
	struct config cfg;
	int unknown, loaded;

	pthread_mutex_lock(&n->meta_lock);
	unknown = n->due_unknown;
	loaded = n->over_loaded;
	pthread_mutex_unlock(&n->meta_lock);
	if (!unknown)
		return 0;
	if (!loaded) {
		if (*loads == 0)
			return 0;
		(*loads)--;
	}
	effective_config(reg, n, &cfg);
	/* A time roll alone is left for the partition's next use: it seals
	 * a segment that nothing would then delete or compress. */
	if (cfg.retention_ms >= 0 || cfg.retention_bytes >= 0 ||
	    cfg.compression != COMPRESSION_NONE)
		return 1;
	pthread_mutex_lock(&n->meta_lock);
	n->due_unknown = 0;
	pthread_mutex_unlock(&n->meta_lock);
	return 0;
}

/* The effective value of key for n, formatted. */
int registry_config_get(struct registry *reg, struct node *n, int key,
			char *buf, size_t size)
{
	struct config cfg;
	int ret;

	if (n->kind == NODE_ROOT)
		return -ENODATA;
	pthread_rwlock_rdlock(&reg->lock);
	effective_config(reg, n, &cfg);
	pthread_rwlock_unlock(&reg->lock);
	ret = config_format(&cfg, (enum config_key)key, buf, size);
	return ret;
}

/* Write n's overrides and apply them to the partitions they reach.
 * Called with reg->lock held. */
static int config_store(struct registry *reg, struct node *n,
			const struct config *over)
{
	struct config before, old, after;
	struct node *c;
	char text[4096];
	int len, ret, fd, sooner;

	len = config_render_text(over, text, sizeof(text));
	if (len < 0)
		return len;
	if (n->kind == NODE_TOPIC)
		ret = io_write_atomic(n->dirfd, LAYOUT_TOPIC_CONF, text,
				      (size_t)len);
	else if (n->part)
		ret = io_write_atomic(partition_dirfd(n->part),
				      LAYOUT_PART_CONF, text, (size_t)len);
	else if ((fd = part_dir_open(reg, n)) >= 0) { /* closed while idle */
		ret = io_write_atomic(fd, LAYOUT_PART_CONF, text, (size_t)len);
		io_close(fd);
	} else {
		ret = fd;
	}
	if (ret < 0)
		return ret;
	/* What applied before the change: a partition's effective
	 * configuration, or its topic's layers (each partition's own go
	 * over them below). */
	effective_config(reg, n, &before);
	pthread_mutex_lock(&n->meta_lock);
	n->over = *over;
	pthread_mutex_unlock(&n->meta_lock);
	if (n->kind == NODE_PARTITION)
		return apply_config(reg, n, &before);
	/* A partition's own override hides the topic's value, so a change
	 * no sooner for the topic is no sooner for any of its partitions:
	 * the closed ones are left alone, their partition.conf unread. */
	effective_config(reg, n, &after);
	sooner = maint_sooner(&after, &before);
	for (c = n->children; c; c = c->next) {
		if (!c->part && !sooner)
			continue;
		old = before;
		overlay_own(reg, c, &old);
		ret = apply_config(reg, c, &old);
		if (ret < 0)
			diag_warn("cannot apply configuration to '%s/%s': %s",
				  n->name, c->name, strerror(-ret));
	}
	return 0;
}

/* One log line for a set of key to the len bytes of val: the value
 * escaped (it comes from a user: a control byte or newline in it must
 * not reach the log), cut as diag_printable cuts. */
static void log_set(int key, const char *val, size_t len, const char *name,
		    int ret)
{
	char raw[DIAG_PRINTABLE_MAX], shown[DIAG_PRINTABLE_MAX];
	size_t keep = len < sizeof(raw) - 1 ? len : sizeof(raw) - 1;

	memcpy(raw, val, keep);
	raw[keep] = '\0';
	diag_printable(raw, shown, sizeof(shown));
	if (ret == 0)
		diag_info("set %s=%s on '%s'", config_key_name(key), shown,
			  name);
	else
		diag_info("refused %s=%s on '%s': %s", config_key_name(key),
			  shown, name, strerror(-ret));
}

/* Set n's own override of key. */
int registry_config_set(struct registry *reg, struct node *n, int key,
			const char *val, size_t len)
{
	struct config over;
	int ret;

	if (n->kind == NODE_ROOT)
		return -ENOTSUP;
	while (len && (val[len - 1] == '\n' || val[len - 1] == '\0'))
		len--;
	pthread_rwlock_wrlock(&reg->lock);
	over_load(reg, n);
	pthread_mutex_lock(&n->meta_lock);
	over = n->over;
	pthread_mutex_unlock(&n->meta_lock);
	ret = config_set(&over, (enum config_key)key, val, len);
	if (ret == 0)
		ret = config_store(reg, n, &over);
	pthread_rwlock_unlock(&reg->lock);
	log_set(key, val, len, n->name, ret);
	return ret;
}

/* Drop n's override of key: the inherited value applies again. */
int registry_config_unset(struct registry *reg, struct node *n, int key)
{
	struct config over;
	int ret;

	if (n->kind == NODE_ROOT)
		return -ENOTSUP;
	pthread_rwlock_wrlock(&reg->lock);
	over_load(reg, n);
	pthread_mutex_lock(&n->meta_lock);
	over = n->over;
	pthread_mutex_unlock(&n->meta_lock);
	if (!(over.set & (1u << key))) {
		ret = -ENODATA;
		goto out;
	}
	over.set &= ~(1u << key);
	ret = config_store(reg, n, &over);
out:
	pthread_rwlock_unlock(&reg->lock);
	return ret;
}
