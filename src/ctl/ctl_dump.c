/*
 * ctl_dump.c - fluxctl dump: every index entry of a segment or partition
 * on disk, in the manner of kafka-dump-log, optionally with its messages.
 *
 * Entry lines start with "offset:", message lines with "| offset:", so
 * scripts can count them.  Each entry's CRC is checked on its bytes
 * (decoded, for compressed segments).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "config.h"
#include "ctl.h"
#include "inspect.h"
#include "layout.h"
#include "partition.h"

struct dump_ctx {
	uint64_t from;
	int messages;
	int only_seg;           /* dump one segment */
	uint64_t seg_base;
	uint64_t entries, msgs, bad;
};

/* A message's bytes, escaped so one message stays on one line. */
static void print_payload(const unsigned char *b, size_t len)
{
	size_t i;

	if (len && b[len - 1] == '\n')
		len--;
	for (i = 0; i < len; i++) {
		if (b[i] == '\\')
			fputs("\\\\", stdout);
		else if (b[i] < 0x20 || b[i] == 0x7f)
			printf("\\x%02x", b[i]);
		else
			putchar(b[i]);
	}
	putchar('\n');
}

static void dump_messages(struct dump_ctx *c, const struct seg_entry *e,
			  const unsigned char *buf)
{
	const unsigned char *nl;
	uint64_t off = e->offset;
	size_t at = 0, end;

	while (at < e->len) {
		nl = memchr(buf + at, '\n', e->len - at);
		end = nl ? (size_t)(nl - buf) + 1 : e->len;
		if (off >= c->from) {
			printf("| offset: %llu position: %llu length: %zu "
			       "payload: ", (unsigned long long)off,
			       (unsigned long long)(e->pos + at), end - at);
			print_payload(buf + at, end - at);
			c->msgs++;
		}
		off++;
		at = end;
	}
}

static int dump_seg(struct dump_ctx *c, const struct inspect_part *ip,
		    uint32_t si, const char *topic, const char *part)
{
	const struct inspect_seg *s = &ip->segs[si];
	const struct seg_entry *e;
	unsigned char *buf = NULL;
	char ts[40];
	uint32_t i, crc;
	int ret;

	printf("segment %s of %s/%s: %s, base offset %llu, base byte %llu, "
	       "%llu bytes (%llu on disk), %u entries%s\n",
	       s->data_name, topic, part, codec_name(s->codec),
	       (unsigned long long)s->base_offset,
	       (unsigned long long)s->base_byte,
	       (unsigned long long)s->raw_bytes,
	       (unsigned long long)s->data_bytes, s->nents,
	       s->idx_ok ? "" : " (index missing or damaged)");
	for (i = 0; i < s->nents; i++) {
		e = &s->ents[i];
		if (e->offset + e->count <= c->from)
			continue;
		free(buf);
		buf = malloc(e->len ? e->len : 1);
		if (!buf)
			return -ENOMEM;
		ctl_format_time(e->ts, ts, sizeof(ts));
		ret = e->len <= PARTITION_MAX_BATCH ?
			      inspect_read(ip, si, e->pos, buf, e->len) :
			      -EIO;
		crc = ret == 0 ? crc32c(0, buf, e->len) : 0;
		printf("offset: %llu count: %u position: %llu length: %u "
		       "timestamp: %s (%lld) crc: %08x ",
		       (unsigned long long)e->offset, e->count,
		       (unsigned long long)e->pos, e->len, ts, (long long)e->ts,
		       e->crc);
		if (ret < 0) {
			printf("UNREADABLE (%s)", strerror(-ret));
			c->bad++;
		} else if (crc != e->crc) {
			printf("INVALID (computed %08x)", crc);
			c->bad++;
		} else {
			printf("valid");
		}
		printf(" flags: %s%s%s\n", e->flags & SEG_F_CONT ? "cont," : "",
		       e->flags & SEG_F_LAST ? "last" : "-",
		       layout_entry_lost(e) ? ",lost" : "");
		c->entries++;
		if (c->messages && ret == 0)
			dump_messages(c, e, buf);
	}
	free(buf);
	return 0;
}

static int dump_part(void *arg, const struct ctl_target *t, const char *topic,
		     const char *part, const char *path)
{
	struct dump_ctx *c = arg;
	struct inspect_part *ip;
	uint32_t i;
	int ret = 0, found = 0;

	ret = inspect_open(AT_FDCWD, path, &ip);
	if (ret < 0) {
		ctl_err("cannot read partition '%s': %s", path, strerror(-ret));
		return ret;
	}
	for (i = 0; i < ip->nsegs && ret == 0; i++) {
		if (c->only_seg && ip->segs[i].base_offset != c->seg_base)
			continue;
		found = 1;
		ret = dump_seg(c, ip, i, topic, part);
	}
	inspect_close(ip);
	if (c->only_seg && !found) {
		ctl_err("segment %020llu has no data file in '%s'",
			(unsigned long long)c->seg_base, path);
		return -ENOENT;
	}
	return ret;
}

/* fluxctl dump SEGMENT|PARTITION [--from OFFSET] [--messages] */
int ctl_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "messages", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_target t;
	struct dump_ctx c;
	char dir[PATH_MAX];
	char *slash;
	int opt, ret;

	memset(&c, 0, sizeof(c));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:mh", longopts, NULL)) != -1) {
		if (opt == 'f') {
			if (config_parse_u64(optarg, &c.from) < 0)
				return ctl_usage(argv[0], "bad offset '%s' for "
							  "--from", optarg);
			continue;
		}
		if (opt == 'm') {
			c.messages = 1;
			continue;
		}
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	ret = ctl_one_operand(argc, argv, "SEGMENT or PARTITION", &t);
	if (ret >= 0)
		return ret;
	if (t.kind == CTL_DATA_SEGMENT) {
		c.only_seg = 1;
		c.seg_base = t.seg_base;
		snprintf(dir, sizeof(dir), "%s", t.path);
		slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		ret = dump_part(&c, &t, t.topic, t.part, dir);
	} else if (t.kind == CTL_DATA_PARTITION) {
		ret = dump_part(&c, &t, t.topic, t.part, t.path);
	} else if (ctl_is_mount(t.kind)) {
		return ctl_usage(argv[0], "'%s' is on a fluxfs mount: dump "
					  "reads a partition in the data "
					  "directory", t.path);
	} else {
		return ctl_usage(argv[0], "'%s' is not a segment file or a "
					  "partition directory", t.path);
	}
	if (ret < 0)
		return CTL_USAGE;
	printf("%llu entries, %llu messages shown, %llu with a bad crc\n",
	       (unsigned long long)c.entries, (unsigned long long)c.msgs,
	       (unsigned long long)c.bad);
	return CTL_OK;
}
