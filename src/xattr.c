/*
 * xattr.c - names and values of the user.fluxfs.* attributes.
 *
 * Configuration values are formatted and parsed by config.c, so an xattr,
 * a mount option and a topic.conf line mean the same thing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xattr.h"

static const char *const info_names[XATTR_NINFO] = {
	[XATTR_START_OFFSET] = "start_offset",
	[XATTR_NEXT_OFFSET] = "next_offset",
	[XATTR_START_BYTE] = "start_byte",
	[XATTR_SEGMENTS] = "segments",
};

/* Classify an attribute name. */
int xattr_parse(const char *name, int is_partition, struct xattr_name *out)
{
	size_t plen = strlen(XATTR_PREFIX);
	const char *k;
	int i;

	if (strncmp(name, XATTR_PREFIX, plen) != 0)
		return -ENODATA;
	k = name + plen;
	i = config_key_lookup(k, strlen(k));
	if (i >= 0) {
		out->is_config = 1;
		out->key = i;
		return 0;
	}
	if (!is_partition)
		return -ENODATA;
	for (i = 0; i < XATTR_NINFO; i++) {
		if (strcmp(k, info_names[i]) == 0) {
			out->is_config = 0;
			out->key = i;
			return 0;
		}
	}
	return -ENODATA;
}

static size_t add_name(char *buf, size_t size, size_t len, const char *n)
{
	size_t need = strlen(XATTR_PREFIX) + strlen(n) + 1;

	if (size && len + need <= size)
		snprintf(buf + len, need, "%s%s", XATTR_PREFIX, n);
	return len + need;
}

/* Build the listxattr answer. */
int xattr_list(int is_partition, char *buf, size_t size)
{
	size_t len = 0;
	int i;

	if (is_partition)
		for (i = 0; i < XATTR_NINFO; i++)
			len = add_name(buf, size, len, info_names[i]);
	for (i = 0; i < CONFIG_NKEYS; i++)
		len = add_name(buf, size, len, config_key_name(i));
	if (size && len > size)
		return -ERANGE;
	return (int)len;
}

/* Format one read-only attribute. */
int xattr_format_info(const struct partition_info *info, enum xattr_info key,
		      char *buf, size_t size)
{
	unsigned long long v;
	int n;

	switch (key) {
	case XATTR_START_OFFSET:
		v = info->start_offset;
		break;
	case XATTR_NEXT_OFFSET:
		v = info->next_offset;
		break;
	case XATTR_START_BYTE:
		v = info->start_byte;
		break;
	case XATTR_SEGMENTS:
		v = info->segments;
		break;
	default:
		return -ENODATA;
	}
	n = snprintf(buf, size, "%llu", v);
	return n < 0 || (size_t)n >= size ? -ERANGE : n;
}
