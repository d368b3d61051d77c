/*
 * xattr.c - names and values of the user.fluxfs.* attributes.
 *
 * Configuration values are formatted and parsed by config.c, so an xattr,
 * a mount option and a topic.conf line mean the same thing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "xattr.h"

static const char *const info_names[XATTR_NINFO] = {
	[XATTR_START_OFFSET] = "start_offset",
	[XATTR_NEXT_OFFSET] = "next_offset",
	[XATTR_START_BYTE] = "start_byte",
	[XATTR_SEGMENTS] = "segments",
	[XATTR_FIRST_TIMESTAMP] = "first_timestamp",
	[XATTR_LAST_TIMESTAMP] = "last_timestamp",
	[XATTR_DISK_BYTES] = "disk_bytes",
	[XATTR_LOST_MESSAGES] = "lost_messages",
	[XATTR_LOST_BYTES] = "lost_bytes",
	[XATTR_LOST] = "lost",
	[XATTR_SNAPSHOT_PINNED_BYTES] = "snapshot_pinned_bytes",
};

#define SEEK_OFFSET XATTR_PREFIX "seek.offset."
#define SEEK_TIME XATTR_PREFIX "seek.time."

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

int xattr_produce_parse(const char *name, int is_partition)
{
	size_t plen = strlen(XATTR_PREFIX);
	int i;

	if (is_partition || strncmp(name, XATTR_PREFIX, plen) != 0)
		return -ENODATA;
	i = produce_setting_lookup(name + plen);
	return i < 0 ? -ENODATA : i;
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
	if (!is_partition)
		for (i = 0; i < PRODUCE_NSETTINGS; i++)
			len = add_name(buf, size, len, produce_setting_name(i));
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
	case XATTR_FIRST_TIMESTAMP:
		n = snprintf(buf, size, "%lld", (long long)info->first_ts);
		return n < 0 || (size_t)n >= size ? -ERANGE : n;
	case XATTR_LAST_TIMESTAMP:
		n = snprintf(buf, size, "%lld", (long long)info->last_ts);
		return n < 0 || (size_t)n >= size ? -ERANGE : n;
	case XATTR_DISK_BYTES:
		v = info->disk_bytes;
		break;
	case XATTR_LOST:
		/* The latest range whose flush failed, and how many did. */
		if (!info->losses)
			n = snprintf(buf, size, "none");
		else
			n = snprintf(
				buf, size,
				"count=%llu bytes=%llu-%llu "
				"offsets=%llu-%llu",
				(unsigned long long)info->losses,
				(unsigned long long)info->last_loss.from_byte,
				(unsigned long long)info->last_loss.to_byte,
				(unsigned long long)info->last_loss.from_offset,
				(unsigned long long)info->last_loss.to_offset);
		return n < 0 || (size_t)n >= size ? -ERANGE : n;
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
	case XATTR_LOST_MESSAGES:
		v = info->lost_messages;
		break;
	case XATTR_LOST_BYTES:
		v = info->lost_bytes;
		break;
	default:
		return -ENODATA;
	}
	n = snprintf(buf, size, "%llu", v);
	return n < 0 || (size_t)n >= size ? -ERANGE : n;
}

/* Answer user.fluxfs.seek.offset.N / user.fluxfs.seek.time.MS. */
int xattr_is_query(const char *name)
{
	return strncmp(name, SEEK_OFFSET, strlen(SEEK_OFFSET)) == 0 ||
	       strncmp(name, SEEK_TIME, strlen(SEEK_TIME)) == 0;
}

int xattr_query(struct partition *p, const char *name, char *buf,
		size_t size)
{
	uint64_t arg, offset = 0, byte = 0;
	int n, ret;

	if (strncmp(name, SEEK_OFFSET, strlen(SEEK_OFFSET)) == 0) {
		ret = config_parse_u64(name + strlen(SEEK_OFFSET), &arg);
		if (ret == 0)
			ret = partition_offset_to_byte(p, arg, &byte);
		if (ret < 0)
			return ret;
		n = snprintf(buf, size, "%llu", (unsigned long long)byte);
	} else if (strncmp(name, SEEK_TIME, strlen(SEEK_TIME)) == 0) {
		ret = config_parse_u64(name + strlen(SEEK_TIME), &arg);
		if (ret == 0 && arg > INT64_MAX)
			ret = -EINVAL;
		if (ret == 0)
			ret = partition_time_to_offset(p, (int64_t)arg, &offset,
						       &byte);
		if (ret < 0)
			return ret;
		n = snprintf(buf, size, "%llu %llu", (unsigned long long)offset,
			     (unsigned long long)byte);
	} else {
		return -ENODATA;
	}
	return n < 0 || (size_t)n >= size ? -ERANGE : n;
}
