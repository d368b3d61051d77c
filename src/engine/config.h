/*
 * config.h - per-topic and per-partition configuration, and its text form.
 *
 * One parser serves mount options (-o segment_bytes=...), topic.conf lines
 * and xattr values, so a value means the same thing everywhere and a bad
 * one is refused the same way (-EINVAL).  Layering: mount defaults, then
 * the topic's topic.conf, then the partition's own overrides.
 */
#ifndef FLUXFS_CONFIG_H
#define FLUXFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum compression {
	COMPRESSION_NONE = 0,
	COMPRESSION_LZ4,
	COMPRESSION_GZIP,
	COMPRESSION_ZSTD,
};

/* Which keys a layer sets (bit per key, see enum config_key). */
enum config_key {
	CONFIG_SEGMENT_BYTES = 0,
	CONFIG_SEGMENT_MS,
	CONFIG_RETENTION_BYTES,
	CONFIG_RETENTION_MS,
	CONFIG_FLUSH_MS,
	CONFIG_MAX_MESSAGE_BYTES,
	CONFIG_COMPRESSION,
	CONFIG_NKEYS
};

struct config {
	uint64_t segment_bytes; /* roll when the active .log reaches it */
	int64_t segment_ms; /* roll when the active segment is older; -1 never
			     */
	int64_t retention_bytes; /* total retained bytes; -1 unlimited */
	int64_t retention_ms; /* age of a segment's newest message; -1 forever
			       */
	int64_t flush_ms; /* scheduled fsync period; 0 = every append, -1 never
			   */
	uint64_t max_message_bytes;   /* longest message, newline included */
	enum compression compression; /* for sealed segments */
	int compression_level; /* zstd's level, "zstd:LEVEL"; 0 = default */
	uint32_t set; /* bit (1 << key) for each key this layer sets */
};

/* The built-in defaults (segment_bytes 256 MiB, segment_ms 7 days,
 * retention unlimited, flush_ms 1000, max_message_bytes 1 MiB, none).
 * cfg->set is 0: defaults are the bottom layer, not settings. */
void config_defaults(struct config *cfg);
/* Key name ("segment_bytes") to enum; -EINVAL if unknown. */
int config_key_lookup(const char *name, size_t len);
const char *config_key_name(enum config_key key);
/* Parse one value for key into cfg and mark it set.  Accepts plain
 * integers, size suffixes (k, M, G, T: powers of 1024, either case) for
 * *_bytes, and ms/s/m/h/d suffixes for *_ms (a bare number is ms); "-1"
 * (or "unlimited"/"never") where the key allows it.  Rejects anything
 * else (blanks, signs, junk), overflow and out-of-range values with
 * -EINVAL and leaves cfg unchanged.  Ranges: segment_bytes 4k..1T,
 * segment_ms >= 1000 (1 s) or -1, retention_* >= 0 or -1, flush_ms >= 0 or -1,
 * max_message_bytes 1..64M, compression none|lz4|gzip|zstd|zstd:LEVEL
 * (LEVEL CONFIG_ZSTD_LEVEL_MIN..MAX, written without leading zeros). */
#define CONFIG_ZSTD_LEVEL_MIN 1
#define CONFIG_ZSTD_LEVEL_MAX 19
int config_set(struct config *cfg, enum config_key key, const char *val,
	       size_t len);
/* The one strict unsigned decimal parser: digits only (no sign, blanks,
 * base prefix or unit), no overflow, the whole string; 0 or -EINVAL.
 * Everything that reads a plain number (fault specs, xattr queries,
 * fluxctl's arguments, environment) uses it. */
int config_parse_u64(const char *s, uint64_t *out);
/* The same with an optional size letter (k, M, G, T: powers of 1024,
 * either case), as the *_bytes keys take ("256M"). */
int config_parse_bytes(const char *s, uint64_t *out);
/* Parse "key=value" (one line, no newline): config_parse_text's line
 * parser, exported for the tests and the config fuzzer. */
int config_set_pair(struct config *cfg, const char *pair, size_t len);
/* Format key's value in canonical form (largest unit that divides it
 * exactly: "256M", "7d", "1500"; "-1" for unlimited/never) into buf,
 * NUL-terminated; returns length or -ERANGE.  The output parses back to
 * the same value with config_set(). */
int config_format(const struct config *cfg, enum config_key key, char *buf,
		  size_t size);
/* Parse a whole topic.conf ("key=value\n" lines, '#' comments, blank
 * lines); -EINVAL on the first bad line, with *bad_line set (1-based),
 * and then cfg is unchanged.  A key given twice: the last one wins. */
int config_parse_text(struct config *cfg, const char *text, size_t len,
		      int *bad_line);
/* Render the keys set in cfg as topic.conf text (in enum order,
 * NUL-terminated); returns length or -ERANGE. */
int config_render_text(const struct config *cfg, char *buf, size_t size);
/* out = base overlaid with every key set in over (out may alias base). */
void config_overlay(struct config *out, const struct config *base,
		    const struct config *over);

#endif
