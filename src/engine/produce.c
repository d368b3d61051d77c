/*
 * produce.c - the rules of keyed producing (produce.h): the settings'
 * values and file text, and a line's partition by its key.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "murmur2.h"
#include "produce.h"

static const char *const setting_names[PRODUCE_NSETTINGS] = {
	[PRODUCE_PARTITIONS] = "partitions",
	[PRODUCE_KEY_SEPARATOR] = "key_separator",
};

const char *produce_setting_name(int setting)
{
	return setting >= 0 && setting < PRODUCE_NSETTINGS
		       ? setting_names[setting]
		       : NULL;
}

int produce_setting_lookup(const char *name)
{
	int i;

	for (i = 0; i < PRODUCE_NSETTINGS; i++)
		if (!strcmp(name, setting_names[i]))
			return i;
	return -EINVAL;
}

void produce_conf_init(struct produce_conf *c)
{
	c->partitions = 0;
	c->separator = PRODUCE_DEFAULT_SEPARATOR;
}

/* A plain decimal in [min, max], maybe ending in one newline. */
static int parse_number(const char *val, size_t len, uint64_t min, uint64_t max,
			uint64_t *out)
{
	char buf[24];
	uint64_t v;

	if (len && val[len - 1] == '\n')
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, val, len);
	buf[len] = '\0';
	if (config_parse_u64(buf, &v) < 0 || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int produce_parse_partitions(const char *val, size_t len, uint32_t *out)
{
	uint64_t v;

	if (parse_number(val, len, 1, PRODUCE_MAX_PARTITIONS, &v) < 0)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int produce_parse_separator(const char *val, size_t len, int *out)
{
	if (len == 0) {
		*out = PRODUCE_NO_SEPARATOR;
		return 0;
	}
	/* A newline ends the line, so it can never end a key. */
	if (len != 1 || val[0] == '\n' || val[0] == '\0')
		return -EINVAL;
	*out = (unsigned char)val[0];
	return 0;
}

size_t produce_format_separator(int separator, char *buf)
{
	if (separator == PRODUCE_NO_SEPARATOR)
		return 0;
	buf[0] = (char)separator;
	return 1;
}

/* One "key=value" line of produce.conf into c. */
static int parse_line(struct produce_conf *c, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);
	size_t klen, vlen;
	uint64_t v;

	if (!eq)
		return -EINVAL;
	klen = (size_t)(eq - line);
	vlen = len - klen - 1;
	if (klen == 10 && !memcmp(line, "partitions", 10))
		return produce_parse_partitions(eq + 1, vlen, &c->partitions);
	if (klen != 13 || memcmp(line, "key_separator", 13))
		return -EINVAL;
	if (vlen == 4 && !memcmp(eq + 1, "none", 4)) {
		c->separator = PRODUCE_NO_SEPARATOR;
		return 0;
	}
	if (parse_number(eq + 1, vlen, 1, 255, &v) < 0 || v == '\n')
		return -EINVAL;
	c->separator = (int)v;
	return 0;
}

int produce_conf_parse(struct produce_conf *c, const char *text, size_t len)
{
	struct produce_conf tmp = *c;
	const char *p = text, *end = text + len, *nl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl > p && *p != '#' &&
		    parse_line(&tmp, p, (size_t)(nl - p)))
			return -EINVAL;
		p = nl + 1;
	}
	*c = tmp;
	return 0;
}

int produce_conf_render(const struct produce_conf *c, char *buf, size_t size)
{
	int n = 0, m;

	if (size)
		buf[0] = '\0';
	if (c->partitions) {
		n = snprintf(buf, size, "partitions=%u\n", c->partitions);
		if (n < 0 || (size_t)n >= size)
			return -ERANGE;
	}
	if (c->separator == PRODUCE_DEFAULT_SEPARATOR)
		return n;
	if (c->separator == PRODUCE_NO_SEPARATOR)
		m = snprintf(buf + n, size - (size_t)n, "key_separator=none\n");
	else
		m = snprintf(buf + n, size - (size_t)n, "key_separator=%d\n",
			     c->separator);
	if (m < 0 || (size_t)m >= size - (size_t)n)
		return -ERANGE;
	return n + m;
}

uint32_t produce_route(const char *line, size_t len, int separator,
		       uint32_t partitions)
{
	const char *sep;

	if (separator == PRODUCE_NO_SEPARATOR)
		return PRODUCE_UNKEYED;
	sep = memchr(line, separator, len);
	if (!sep)
		return PRODUCE_UNKEYED;
	return murmur2_partition(line, (size_t)(sep - line), partitions);
}
