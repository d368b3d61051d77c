/*
 * ctl_cat.c - fluxctl cat: a partition's messages between two times (or
 * from a message offset) printed from a data directory, offline; what
 * MNT/.at/<since>..<until>/TOPIC/PARTITION shows on a mount.
 *
 * Times are the grammar of one point of a time-addressed view
 * (timesel.h: ISO-8601, epoch ms, -90s/-15m/-2h/-7d), a time without a
 * zone read as local time (ctl_parse_time); the
 * lookups are inspect.h's, read-only, so it is safe beside a daemon
 * serving the directory (the answer may then be a little stale).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "inspect.h"
#include "timesel.h"

#define CAT_CHUNK (256u << 10)

/* Where the first message at or after ts_ms starts (the end if none). */
static uint64_t byte_of_time(const struct inspect_part *ip, int64_t ts_ms)
{
	uint64_t off, byte;

	return inspect_time_to_offset(ip, ts_ms, &off, &byte) < 0 ? ip->end_byte
								   : byte;
}

/* Where message off starts: clamped to the retained messages. */
static uint64_t byte_of_offset(const struct inspect_part *ip, uint64_t off)
{
	uint64_t byte;

	if (off < ip->start_offset)
		off = ip->start_offset;
	if (off >= ip->next_offset || inspect_offset_to_byte(ip, off, &byte))
		return ip->end_byte;
	return byte;
}

/* Copy bytes [from, to) of the partition to stdout, segment by segment. */
static int copy_out(const struct inspect_part *ip, uint64_t from, uint64_t to)
{
	uint64_t seg_end, n;
	char *buf = malloc(CAT_CHUNK);
	uint32_t i;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < ip->nsegs && from < to && ret == 0; i++) {
		seg_end = i + 1 < ip->nsegs ? ip->segs[i + 1].base_byte
					    : ip->end_byte;
		while (from < to && from < seg_end && ret == 0) {
			if (from < ip->segs[i].base_byte) {
				from = ip->segs[i].base_byte;
				continue;
			}
			n = (to < seg_end ? to : seg_end) - from;
			if (n > CAT_CHUNK)
				n = CAT_CHUNK;
			ret = inspect_read(ip, i, from, buf, (size_t)n);
			if (ret == 0 && fwrite(buf, 1, (size_t)n, stdout) != n)
				ret = -EIO;
			from += n;
		}
	}
	free(buf);
	if (ret == 0 && fflush(stdout) != 0)
		ret = -EIO;
	return ret;
}

/* fluxctl cat [--since T] [--until T] [--offset N] TOPIC/PARTITION */
int ctl_cat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "offset", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t since = 0, until = 0;
	int have_since = 0, have_until = 0, have_off = 0, opt, ret;
	int64_t now = ctl_now_ms();
	struct inspect_part *ip;
	uint64_t offset = 0, from, to, b;
	struct ctl_target t;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":s:u:o:h", longopts, NULL)) !=
	       -1) {
		if (opt == 's' || opt == 'u') {
			if (ctl_parse_time(optarg, now,
					   opt == 's' ? &since : &until) < 0)
				return ctl_usage(argv[0], "bad time '%s': want "
							  "ISO 8601, epoch ms "
							  "or -90s/-15m/-2h/-7d",
						 optarg);
			*(opt == 's' ? &have_since : &have_until) = 1;
			continue;
		}
		if (opt == 'o') {
			if (config_parse_u64(optarg, &offset) < 0)
				return ctl_usage(argv[0], "bad offset '%s': "
							  "want a message "
							  "number", optarg);
			have_off = 1;
			continue;
		}
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	ret = ctl_one_operand(argc, argv, "PARTITION", &t);
	if (ret >= 0)
		return ret;
	if (t.kind == CTL_MOUNT_PARTITION)
		return ctl_usage(argv[0], "'%s' is on a mount: read "
					  "MNT/.at/SINCE..UNTIL/TOPIC/PARTITION "
					  "there", t.path);
	if (t.kind != CTL_DATA_PARTITION)
		return ctl_usage(argv[0], "'%s' is not a partition", t.path);
	ret = inspect_open(AT_FDCWD, t.path, &ip);
	if (ret < 0) {
		ctl_err("cannot read '%s': %s", t.path, strerror(-ret));
		return CTL_USAGE;
	}
	/* The later of --since and --offset; up to --until or the end. */
	from = ip->start_byte;
	if (have_since)
		from = byte_of_time(ip, since);
	if (have_off && (b = byte_of_offset(ip, offset)) > from)
		from = b;
	to = have_until ? byte_of_time(ip, until)
			: ip->end_byte;
	ret = from < to ? copy_out(ip, from, to) : 0;
	inspect_close(ip);
	if (ret < 0) {
		ctl_err("cannot read '%s': %s", t.path, strerror(-ret));
		return CTL_USAGE;
	}
	return CTL_OK;
}
