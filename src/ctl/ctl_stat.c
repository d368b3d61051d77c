/*
 * ctl_stat.c - fluxctl stat: one table (or JSON object) per partition.
 *
 * On a data directory the figures come from inspect.h and the effective
 * configuration from the built-in defaults overlaid with topic.conf and
 * partition.conf (mount options are not known offline).  On a mount they
 * come from the user.fluxfs.* xattrs, st_size and st_mtime (the time of
 * the last append); what a mount does not expose is shown as "-" / null.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "inspect.h"
#include "io.h"
#include "layout.h"

#define UNKNOWN UINT64_MAX

struct pstat {
	const char *topic, *part, *source;
	uint64_t start_offset, next_offset, start_byte, end_byte, segments;
	uint64_t compressed_segments, disk_bytes, raw_bytes;
	int64_t oldest_ts, newest_ts;
	char cfg[CONFIG_NKEYS][32]; /* effective values, "" if unknown */
	uint32_t quarantined;
};

struct stat_ctx {
	int json;
	int count;
};

static void load_conf(const char *dir, const char *file, struct config *cfg)
{
	char p[PATH_MAX + 32], text[4096];
	ssize_t n;
	int fd, bad;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	if (config_parse_text(cfg, text, (size_t)n, &bad) < 0)
		ctl_err("'%s' line %d is not valid; ignored", p, bad);
}

static int stat_data(const char *path, struct pstat *ps)
{
	struct config cfg, over;
	struct inspect_part *ip;
	char topic_dir[PATH_MAX];
	const char *slash;
	uint32_t i;
	int k, ret;

	ret = inspect_open(AT_FDCWD, path, &ip);
	if (ret < 0) {
		ctl_err("cannot read partition '%s': %s", path, strerror(-ret));
		return ret;
	}
	ps->source = "data";
	ps->start_offset = ip->start_offset;
	ps->next_offset = ip->next_offset;
	ps->start_byte = ip->start_byte;
	ps->end_byte = ip->end_byte;
	ps->segments = ip->nsegs;
	ps->quarantined = ip->quarantined;
	for (i = 0; i < ip->nsegs; i++) {
		if (ip->segs[i].codec)
			ps->compressed_segments++;
		ps->disk_bytes += ip->segs[i].data_bytes;
		ps->raw_bytes += ip->segs[i].raw_bytes;
	}
	inspect_time_range(ip, &ps->oldest_ts, &ps->newest_ts);
	inspect_close(ip);

	config_defaults(&cfg);
	slash = strrchr(path, '/');
	snprintf(topic_dir, sizeof(topic_dir), "%.*s",
		 (int)(slash ? slash - path : 1), slash ? path : ".");
	memset(&over, 0, sizeof(over));
	config_defaults(&over);
	over.set = 0;
	load_conf(topic_dir, LAYOUT_TOPIC_CONF, &over);
	config_overlay(&cfg, &cfg, &over);
	memset(&over, 0, sizeof(over));
	config_defaults(&over);
	over.set = 0;
	load_conf(path, LAYOUT_PART_CONF, &over);
	config_overlay(&cfg, &cfg, &over);
	for (k = 0; k < CONFIG_NKEYS; k++)
		if (config_format(&cfg, k, ps->cfg[k], sizeof(ps->cfg[k])) < 0)
			ps->cfg[k][0] = '\0';
	return 0;
}

static uint64_t xattr_u64(const char *path, const char *name)
{
	char full[128], buf[64];
	uint64_t v;
	ssize_t n;

	snprintf(full, sizeof(full), CTL_XATTR "%s", name);
	n = getxattr(path, full, buf, sizeof(buf) - 1);
	if (n <= 0)
		return UNKNOWN;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return config_parse_u64(buf, &v) == 0 ? v : UNKNOWN;
}

static int stat_mount(const char *path, struct pstat *ps)
{
	char full[128];
	struct stat st;
	ssize_t n;
	int k;

	if (stat(path, &st) < 0) {
		ctl_err("cannot stat '%s': %s", path, strerror(errno));
		return -errno;
	}
	ps->source = "mount";
	ps->start_offset = xattr_u64(path, "start_offset");
	ps->next_offset = xattr_u64(path, "next_offset");
	ps->start_byte = xattr_u64(path, "start_byte");
	ps->segments = xattr_u64(path, "segments");
	ps->end_byte = (uint64_t)st.st_size;
	ps->compressed_segments = ps->disk_bytes = ps->raw_bytes = UNKNOWN;
	ps->quarantined = 0;
	ps->oldest_ts = -1;
	ps->newest_ts = ps->next_offset && ps->next_offset != UNKNOWN ?
				(int64_t)st.st_mtim.tv_sec * 1000 +
					st.st_mtim.tv_nsec / 1000000 :
				-1;
	for (k = 0; k < CONFIG_NKEYS; k++) {
		snprintf(full, sizeof(full), CTL_XATTR "%s",
			 config_key_name(k));
		n = getxattr(path, full, ps->cfg[k], sizeof(ps->cfg[k]) - 1);
		ps->cfg[k][n > 0 ? n : 0] = '\0';
	}
	return 0;
}

static void print_u64(const char *label, uint64_t v)
{
	if (v == UNKNOWN)
		printf("  %-20s -\n", label);
	else
		printf("  %-20s %llu\n", label, (unsigned long long)v);
}

static void json_u64(const char *key, uint64_t v, int comma)
{
	if (v == UNKNOWN)
		printf("\"%s\":null%s", key, comma ? "," : "");
	else
		printf("\"%s\":%llu%s", key, (unsigned long long)v,
		       comma ? "," : "");
}

static void json_str(const char *key, const char *v, int comma)
{
	const char *c;

	printf("\"%s\":", key);
	if (!v || !*v) {
		printf("null%s", comma ? "," : "");
		return;
	}
	putchar('"');
	for (c = v; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if ((unsigned char)*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	printf("\"%s", comma ? "," : "");
}

static void print_one(const struct stat_ctx *c, const struct pstat *ps)
{
	char t0[40], t1[40], ratio[32];
	uint64_t bytes = ps->end_byte - ps->start_byte;

	if (ps->start_byte == UNKNOWN || ps->end_byte < ps->start_byte)
		bytes = UNKNOWN;
	ctl_format_time(ps->oldest_ts, t0, sizeof(t0));
	ctl_format_time(ps->newest_ts, t1, sizeof(t1));
	if (ps->disk_bytes != UNKNOWN && ps->disk_bytes)
		snprintf(ratio, sizeof(ratio), "%.2f",
			 (double)ps->raw_bytes / (double)ps->disk_bytes);
	else
		snprintf(ratio, sizeof(ratio), "-");
	if (c->json) {
		printf("%s{", c->count ? "," : "");
		json_str("topic", ps->topic, 1);
		json_str("partition", ps->part, 1);
		json_str("source", ps->source, 1);
		json_u64("start_offset", ps->start_offset, 1);
		json_u64("next_offset", ps->next_offset, 1);
		json_u64("start_byte", ps->start_byte, 1);
		json_u64("end_byte", ps->end_byte, 1);
		json_u64("bytes", bytes, 1);
		json_u64("segments", ps->segments, 1);
		json_u64("compressed_segments", ps->compressed_segments, 1);
		json_u64("disk_bytes", ps->disk_bytes, 1);
		json_u64("raw_bytes", ps->raw_bytes, 1);
		if (ratio[0] == '-')
			printf("\"ratio\":null,");
		else
			printf("\"ratio\":%s,", ratio);
		json_str("compression", ps->cfg[CONFIG_COMPRESSION], 1);
		json_str("retention_bytes", ps->cfg[CONFIG_RETENTION_BYTES], 1);
		json_str("retention_ms", ps->cfg[CONFIG_RETENTION_MS], 1);
		json_str("segment_bytes", ps->cfg[CONFIG_SEGMENT_BYTES], 1);
		json_str("segment_ms", ps->cfg[CONFIG_SEGMENT_MS], 1);
		json_u64("oldest_ts", ps->oldest_ts < 0 ? UNKNOWN :
					      (uint64_t)ps->oldest_ts, 1);
		json_u64("newest_ts", ps->newest_ts < 0 ? UNKNOWN :
					      (uint64_t)ps->newest_ts, 1);
		json_u64("quarantined_files", ps->quarantined, 0);
		printf("}");
		return;
	}
	printf("%s%s/%s (%s)\n", c->count ? "\n" : "", ps->topic, ps->part,
	       ps->source);
	print_u64("first offset", ps->start_offset);
	print_u64("next offset", ps->next_offset);
	print_u64("first byte", ps->start_byte);
	print_u64("end byte", ps->end_byte);
	print_u64("bytes", bytes);
	print_u64("segments", ps->segments);
	if (ps->compressed_segments != UNKNOWN)
		printf("  %-20s %s (%llu of %llu segments compressed, "
		       "ratio %s)\n", "compression",
		       ps->cfg[CONFIG_COMPRESSION][0] ?
			       ps->cfg[CONFIG_COMPRESSION] : "-",
		       (unsigned long long)ps->compressed_segments,
		       (unsigned long long)ps->segments, ratio);
	else
		printf("  %-20s %s\n", "compression",
		       ps->cfg[CONFIG_COMPRESSION][0] ?
			       ps->cfg[CONFIG_COMPRESSION] : "-");
	printf("  %-20s bytes %s, age %s\n", "retention",
	       ps->cfg[CONFIG_RETENTION_BYTES][0] ?
		       ps->cfg[CONFIG_RETENTION_BYTES] : "-",
	       ps->cfg[CONFIG_RETENTION_MS][0] ? ps->cfg[CONFIG_RETENTION_MS] :
						 "-");
	printf("  %-20s %s\n", "oldest message", t0);
	printf("  %-20s %s\n", "newest message", t1);
	if (ps->quarantined)
		printf("  %-20s %u files (see quarantine/)\n", "quarantined",
		       ps->quarantined);
}

static int stat_one(void *arg, const struct ctl_target *t, const char *topic,
		    const char *part, const char *path)
{
	struct stat_ctx *c = arg;
	struct pstat ps;
	int ret;

	memset(&ps, 0, sizeof(ps));
	ps.topic = topic;
	ps.part = part;
	ret = ctl_is_mount(t->kind) ? stat_mount(path, &ps) :
				      stat_data(path, &ps);
	if (ret < 0)
		return ret;
	print_one(c, &ps);
	c->count++;
	return 0;
}

/* fluxctl stat PATH [--json] */
int ctl_stat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_target t;
	struct stat_ctx c;
	int opt, ret;

	memset(&c, 0, sizeof(c));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		if (opt == 'j') {
			c.json = 1;
			continue;
		}
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	ret = ctl_one_operand(argc, argv, "PATH", &t);
	if (ret >= 0)
		return ret;
	if (t.kind == CTL_DATA_SEGMENT)
		return ctl_usage(argv[0], "'%s' is a segment file: give its "
					  "partition directory", t.path);
	if (c.json)
		printf("{\"partitions\":[");
	ret = ctl_each_partition(&t, stat_one, &c);
	if (c.json)
		printf("]}\n");
	if (ret < 0)
		return CTL_USAGE;
	if (!c.count && !c.json)
		printf("no partitions below '%s'\n", t.path);
	return CTL_OK;
}
