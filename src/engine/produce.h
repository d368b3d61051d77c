/*
 * produce.h - keyed producing: a topic's produce settings (how many
 * partitions, which byte ends a line's key), their text form in the
 * topic's produce.conf, and the choice of a line's partition.
 *
 * A line's key is the bytes before the first key separator; a line
 * without one, or any line of a topic whose separator is empty, has no
 * key.  A keyed line goes where Kafka's default partitioner sends its key
 * (murmur2.h); an unkeyed one wherever the caller spreads them.  The line
 * is stored whole either way.  Pure: no I/O, no locking, so the rules can
 * be unit tested on their own; the daemon's registry keeps the settings
 * and its FUSE layer routes the writes.
 *
 * produce.conf is "key=value" lines: "partitions=N" (1..PRODUCE_MAX_PARTITIONS)
 * and "key_separator=B" (the separator's byte value in decimal, or
 * "none" for an empty separator).  A key missing from the file keeps its
 * default: partitions unset (the topic's numeric partitions that exist),
 * the separator TAB.
 */
#ifndef FLUXFS_PRODUCE_H
#define FLUXFS_PRODUCE_H

#include <stddef.h>
#include <stdint.h>

#define PRODUCE_MAX_PARTITIONS 10000
#define PRODUCE_DEFAULT_SEPARATOR '\t'
#define PRODUCE_NO_SEPARATOR (-1)
/* A line with no key (produce_route()). */
#define PRODUCE_UNKEYED UINT32_MAX

/* The settings, as attributes of a topic (user.fluxfs.<name>). */
enum produce_setting {
	PRODUCE_PARTITIONS = 0,
	PRODUCE_KEY_SEPARATOR,
	PRODUCE_NSETTINGS
};
/* "partitions", "key_separator"; NULL past the last. */
const char *produce_setting_name(int setting);
/* The setting called name; -EINVAL if none is. */
int produce_setting_lookup(const char *name);

struct produce_conf {
	uint32_t partitions; /* 0: not set */
	int separator;	     /* a byte, or PRODUCE_NO_SEPARATOR */
};

/* The defaults: partitions unset, separator TAB. */
void produce_conf_init(struct produce_conf *c);
/* Parse an xattr value: partitions as a plain decimal 1..
 * PRODUCE_MAX_PARTITIONS (one trailing newline allowed, as echo leaves
 * it); the separator as 0 bytes (none) or one byte that is neither a
 * newline nor NUL.  0 or -EINVAL (out unchanged). */
int produce_parse_partitions(const char *val, size_t len, uint32_t *out);
int produce_parse_separator(const char *val, size_t len, int *out);
/* The separator as an xattr value: 0 or 1 byte into buf; the length. */
size_t produce_format_separator(int separator, char *buf);
/* produce.conf's text: parse (-EINVAL on a bad line, c unchanged) and
 * render (NUL-terminated; length or -ERANGE). */
int produce_conf_parse(struct produce_conf *c, const char *text, size_t len);
int produce_conf_render(const struct produce_conf *c, char *buf, size_t size);

/* The partition of one line (line[0..len), newline excluded) among
 * partitions (> 0): murmur2 of its key, or PRODUCE_UNKEYED. */
uint32_t produce_route(const char *line, size_t len, int separator,
		       uint32_t partitions);

#endif
