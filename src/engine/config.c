/*
 * config.c - the one parser and formatter of configuration values.
 *
 * Mount options, topic.conf lines and xattr values all come through
 * config_set(), so "256M" or "7d" means the same everywhere and a bad value
 * is refused the same way.  Numbers are parsed with a digit loop rather
 * than strtoull(): no locale, no leading blanks or '+', no silent
 * wrap-around, and the whole string must be consumed.  config_format()
 * writes the canonical form (largest exact unit), which parses back to the
 * same value.  See doc/config.md for the user-facing description.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)
#define TiB (1024ULL * GiB)

/* Floors a partition's owner cannot go below: each segment costs two
 * files, an index mapping and a directory entry, so the roll rate must
 * stay bounded.  segment_ms at 1 s caps time rolls at one a second per
 * partition (a segment per append at 1 ms filled a mount's descriptors
 * in seconds); segment_bytes at 4 KiB caps size rolls at one per 4 KiB
 * appended. */
#define SEGMENT_MS_MIN 1000
#define SEGMENT_BYTES_MIN (4 * KiB)
#define SEGMENT_BYTES_MAX TiB
#define MAX_MESSAGE_BYTES_MAX (64 * MiB)

/* What kind of value a key takes and which values are allowed. */
enum value_kind { KIND_BYTES, KIND_MS, KIND_COMPRESSION };

struct key_desc {
	const char *name;
	enum value_kind kind;
	int allow_unlimited; /* -1 ("unlimited"/"never") is accepted */
	int64_t min;	     /* smallest value other than -1 */
	uint64_t max;
};

static const struct key_desc keys[CONFIG_NKEYS] = {
	[CONFIG_SEGMENT_BYTES] = {"segment_bytes", KIND_BYTES, 0,
				  SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX},
	[CONFIG_SEGMENT_MS] = {"segment_ms", KIND_MS, 1, SEGMENT_MS_MIN,
			       INT64_MAX},
	[CONFIG_RETENTION_BYTES] = {"retention_bytes", KIND_BYTES, 1, 0,
				    INT64_MAX},
	[CONFIG_RETENTION_MS] = {"retention_ms", KIND_MS, 1, 0, INT64_MAX},
	[CONFIG_FLUSH_MS] = {"flush_ms", KIND_MS, 1, 0, INT64_MAX},
	[CONFIG_MAX_MESSAGE_BYTES] = {"max_message_bytes", KIND_BYTES, 0, 1,
				      MAX_MESSAGE_BYTES_MAX},
	[CONFIG_COMPRESSION] = {"compression", KIND_COMPRESSION, 0, 0, 0},
};

struct unit {
	const char *suffix;
	uint64_t mult;
};

/* Largest first: config_format() picks the first unit that divides. */
static const struct unit byte_units[] = {
	{"T", TiB},
	{"G", GiB},
	{"M", MiB},
	{"k", KiB},
};

static const struct unit ms_units[] = {
	{"d", 86400000ULL}, {"h", 3600000ULL}, {"m", 60000ULL},
	{"s", 1000ULL},	    {"ms", 1ULL},
};

static const char *const compression_names[] = {
	[COMPRESSION_NONE] = "none",
	[COMPRESSION_LZ4] = "lz4",
	[COMPRESSION_GZIP] = "gzip",
	[COMPRESSION_ZSTD] = "zstd",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Fill the built-in defaults; no key is marked set. */
void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->segment_bytes = 256 * MiB;
	cfg->segment_ms = 7LL * 86400000LL;
	cfg->retention_bytes = -1;
	cfg->retention_ms = -1;
	cfg->flush_ms = 1000;
	cfg->max_message_bytes = MiB;
	cfg->compression = COMPRESSION_NONE;
	cfg->set = 0;
}

/* Exact comparison of a counted string with a C string. */
static int str_eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* Key name to enum; -EINVAL if unknown. */
int config_key_lookup(const char *name, size_t len)
{
	int k;

	for (k = 0; k < CONFIG_NKEYS; k++)
		if (str_eq(name, len, keys[k].name))
			return k;
	return -EINVAL;
}

/* Enum to key name; NULL for a value out of range. */
const char *config_key_name(enum config_key key)
{
	if ((unsigned)key >= CONFIG_NKEYS)
		return NULL;
	return keys[key].name;
}

/*
 * Parse s[0..len) as decimal digits followed by an optional unit from
 * units (matched case-sensitively, but for byte units either case of the
 * single letter is accepted).  No sign, no blanks.  Overflow is -EINVAL.
 */
static int parse_scaled(const char *s, size_t len, const struct unit *units,
			size_t nunits, int fold_case, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	size_t i = 0, j, rest;
	int d;

	while (i < len && s[i] >= '0' && s[i] <= '9') {
		d = s[i] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		i++;
	}
	if (i == 0)
		return -EINVAL;
	rest = len - i;
	if (rest) {
		for (j = 0; j < nunits; j++) {
			if (strlen(units[j].suffix) != rest)
				continue;
			if (memcmp(s + i, units[j].suffix, rest) == 0)
				break;
			if (fold_case && rest == 1 &&
			    (s[i] | 0x20) == (units[j].suffix[0] | 0x20))
				break;
		}
		if (j == nunits)
			return -EINVAL;
		mult = units[j].mult;
	}
	if (mult > 1 && v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* A plain unsigned decimal. */
int config_parse_u64(const char *s, uint64_t *out)
{
	if (!s)
		return -EINVAL;
	return parse_scaled(s, strlen(s), NULL, 0, 0, out);
}

/* An unsigned decimal with an optional size letter (k, M, G, T, either
 * case), as the *_bytes keys take. */
int config_parse_bytes(const char *s, uint64_t *out)
{
	if (!s)
		return -EINVAL;
	return parse_scaled(s, strlen(s), byte_units, ARRAY_SIZE(byte_units),
			    1, out);
}

/* zstd's level after "zstd:": digits, no leading zero, in range. */
static int parse_level(const char *s, size_t len, int *out)
{
	uint64_t v;

	if (len == 0 || s[0] == '0' ||
	    parse_scaled(s, len, NULL, 0, 0, &v) < 0 ||
	    v < CONFIG_ZSTD_LEVEL_MIN || v > CONFIG_ZSTD_LEVEL_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Parse one value for key into cfg and mark it set. */
int config_set(struct config *cfg, enum config_key key, const char *val,
	       size_t len)
{
	const struct key_desc *kd;
	uint64_t v;
	int64_t sv;
	int ret, c;

	if ((unsigned)key >= CONFIG_NKEYS || !val || len == 0)
		return -EINVAL;
	kd = &keys[key];
	if (kd->kind == KIND_COMPRESSION) {
		const char *colon = memchr(val, ':', len);
		size_t nlen = colon ? (size_t)(colon - val) : len;
		int level = 0;

		for (c = 0; c < (int)ARRAY_SIZE(compression_names); c++)
			if (str_eq(val, nlen, compression_names[c]))
				break;
		if (c == (int)ARRAY_SIZE(compression_names))
			return -EINVAL;
		if (colon) {
			ret = parse_level(colon + 1, len - nlen - 1, &level);
			if (ret < 0 || c != COMPRESSION_ZSTD)
				return -EINVAL;
		}
		cfg->compression = (enum compression)c;
		cfg->compression_level = level;
		cfg->set |= 1u << key;
		return 0;
	}
	if (kd->allow_unlimited &&
	    (str_eq(val, len, "-1") || str_eq(val, len, "unlimited") ||
	     str_eq(val, len, "never"))) {
		sv = -1;
	} else {
		if (kd->kind == KIND_BYTES)
			ret = parse_scaled(val, len, byte_units,
					   ARRAY_SIZE(byte_units), 1, &v);
		else
			ret = parse_scaled(val, len, ms_units,
					   ARRAY_SIZE(ms_units), 0, &v);
		if (ret < 0)
			return ret;
		if (v < (uint64_t)kd->min || v > kd->max)
			return -EINVAL;
		if (key == CONFIG_SEGMENT_BYTES) {
			cfg->segment_bytes = v;
			cfg->set |= 1u << key;
			return 0;
		}
		if (key == CONFIG_MAX_MESSAGE_BYTES) {
			cfg->max_message_bytes = v;
			cfg->set |= 1u << key;
			return 0;
		}
		sv = (int64_t)v; /* kd->max <= INT64_MAX for signed keys */
	}
	switch (key) {
	case CONFIG_SEGMENT_MS:
		cfg->segment_ms = sv;
		break;
	case CONFIG_RETENTION_BYTES:
		cfg->retention_bytes = sv;
		break;
	case CONFIG_RETENTION_MS:
		cfg->retention_ms = sv;
		break;
	case CONFIG_FLUSH_MS:
		cfg->flush_ms = sv;
		break;
	default:
		return -EINVAL; /* unsigned keys never allow -1 */
	}
	cfg->set |= 1u << key;
	return 0;
}

/* Parse "key=value": the first '=' splits; no blanks anywhere. */
int config_set_pair(struct config *cfg, const char *pair, size_t len)
{
	const char *eq = memchr(pair, '=', len);
	int key;

	if (!eq)
		return -EINVAL;
	key = config_key_lookup(pair, eq - pair);
	if (key < 0)
		return key;
	return config_set(cfg, (enum config_key)key, eq + 1,
			  len - (eq - pair) - 1);
}

/* Canonical text of v in the largest unit that divides it exactly. */
static int format_scaled(uint64_t v, const struct unit *units, size_t nunits,
			 char *buf, size_t size)
{
	size_t i;
	int n;

	for (i = 0; v != 0 && i < nunits; i++) {
		if (units[i].mult > 1 && v % units[i].mult == 0)
			break;
	}
	if (v == 0 || i == nunits || units[i].mult == 1)
		n = snprintf(buf, size, "%llu", (unsigned long long)v);
	else
		n = snprintf(buf, size, "%llu%s",
			     (unsigned long long)(v / units[i].mult),
			     units[i].suffix);
	if (n < 0 || (size_t)n >= size)
		return -ERANGE;
	return n;
}

/* Format key's value canonically into buf (NUL-terminated). */
int config_format(const struct config *cfg, enum config_key key, char *buf,
		  size_t size)
{
	int64_t sv;
	int n;

	switch (key) {
	case CONFIG_SEGMENT_BYTES:
		return format_scaled(cfg->segment_bytes, byte_units,
				     ARRAY_SIZE(byte_units), buf, size);
	case CONFIG_MAX_MESSAGE_BYTES:
		return format_scaled(cfg->max_message_bytes, byte_units,
				     ARRAY_SIZE(byte_units), buf, size);
	case CONFIG_COMPRESSION:
		if ((unsigned)cfg->compression >= ARRAY_SIZE(compression_names))
			return -EINVAL;
		if (cfg->compression_level)
			n = snprintf(buf, size, "%s:%d",
				     compression_names[cfg->compression],
				     cfg->compression_level);
		else
			n = snprintf(buf, size, "%s",
				     compression_names[cfg->compression]);
		return n < 0 || (size_t)n >= size ? -ERANGE : n;
	case CONFIG_SEGMENT_MS:
		sv = cfg->segment_ms;
		break;
	case CONFIG_RETENTION_BYTES:
		sv = cfg->retention_bytes;
		break;
	case CONFIG_RETENTION_MS:
		sv = cfg->retention_ms;
		break;
	case CONFIG_FLUSH_MS:
		sv = cfg->flush_ms;
		break;
	default:
		return -EINVAL;
	}
	if (sv < 0) {
		n = snprintf(buf, size, "-1");
		return n < 0 || (size_t)n >= size ? -ERANGE : n;
	}
	if (key == CONFIG_RETENTION_BYTES)
		return format_scaled((uint64_t)sv, byte_units,
				     ARRAY_SIZE(byte_units), buf, size);
	return format_scaled((uint64_t)sv, ms_units, ARRAY_SIZE(ms_units), buf,
			     size);
}

/* A line holding only blanks, or a comment after optional blanks. */
static int line_is_blank_or_comment(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == len || s[i] == '#';
}

/* Parse a whole topic.conf; cfg is changed only if every line is good. */
int config_parse_text(struct config *cfg, const char *text, size_t len,
		      int *bad_line)
{
	struct config tmp = *cfg;
	const char *p = text, *end = text + len, *nl;
	size_t n;
	int line = 0, ret;

	while (p < end) {
		line++;
		nl = memchr(p, '\n', end - p);
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!line_is_blank_or_comment(p, n)) {
			ret = config_set_pair(&tmp, p, n);
			if (ret < 0) {
				if (bad_line)
					*bad_line = line;
				return ret;
			}
		}
		p += n + (nl ? 1 : 0);
	}
	*cfg = tmp;
	return 0;
}

/* Render the keys set in cfg as "key=value\n" lines, NUL-terminated. */
int config_render_text(const struct config *cfg, char *buf, size_t size)
{
	size_t used = 0;
	int k, n, v;

	if (size == 0)
		return -ERANGE;
	buf[0] = '\0';
	for (k = 0; k < CONFIG_NKEYS; k++) {
		if (!(cfg->set & (1u << k)))
			continue;
		n = snprintf(buf + used, size - used, "%s=", keys[k].name);
		if (n < 0 || (size_t)n >= size - used)
			return -ERANGE;
		used += n;
		v = config_format(cfg, (enum config_key)k, buf + used,
				  size - used);
		if (v < 0)
			return v;
		used += v;
		if (size - used < 2)
			return -ERANGE;
		buf[used++] = '\n';
		buf[used] = '\0';
	}
	return (int)used;
}

/* out = base overlaid with every key set in over (any may alias). */
void config_overlay(struct config *out, const struct config *base,
		    const struct config *over)
{
	struct config r = *base, o = *over;

	if (o.set & (1u << CONFIG_SEGMENT_BYTES))
		r.segment_bytes = o.segment_bytes;
	if (o.set & (1u << CONFIG_SEGMENT_MS))
		r.segment_ms = o.segment_ms;
	if (o.set & (1u << CONFIG_RETENTION_BYTES))
		r.retention_bytes = o.retention_bytes;
	if (o.set & (1u << CONFIG_RETENTION_MS))
		r.retention_ms = o.retention_ms;
	if (o.set & (1u << CONFIG_FLUSH_MS))
		r.flush_ms = o.flush_ms;
	if (o.set & (1u << CONFIG_MAX_MESSAGE_BYTES))
		r.max_message_bytes = o.max_message_bytes;
	if (o.set & (1u << CONFIG_COMPRESSION)) {
		r.compression = o.compression;
		r.compression_level = o.compression_level;
	}
	r.set |= o.set;
	*out = r;
}
