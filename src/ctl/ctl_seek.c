/*
 * ctl_seek.c - fluxctl seek: the byte position of a message, by offset or
 * by time.
 *
 * On a data directory: inspect.h's binary searches.  On a mount, with no
 * access to the data directory, the daemon answers getxattr queries:
 *   user.fluxfs.seek.offset.<N>        -> "<byte>"
 *   user.fluxfs.seek.time.<epoch_ms>   -> "<offset> <byte>"
 * (ENOENT: no such message; EINVAL: bad number; ENODATA: a daemon that
 * does not know the query).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "config.h"
#include "ctl.h"
#include "inspect.h"

static int seek_mount(const char *path, int by_time, uint64_t offset,
		      int64_t ts, uint64_t *byte)
{
	char name[96], buf[96];
	unsigned long long a, b;
	ssize_t n;

	if (by_time)
		snprintf(name, sizeof(name), CTL_XATTR "seek.time.%" PRId64, ts);
	else
		snprintf(name, sizeof(name), CTL_XATTR "seek.offset.%" PRIu64,
			 offset);
	n = getxattr(path, name, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (by_time) {
		if (sscanf(buf, "%llu %llu", &a, &b) != 2)
			return -EPROTO;
		*byte = b;
	} else {
		if (sscanf(buf, "%llu", &a) != 1)
			return -EPROTO;
		*byte = a;
	}
	return 0;
}

static int seek_data(const char *path, int by_time, uint64_t offset,
		     int64_t ts, uint64_t *byte)
{
	struct inspect_part *ip;
	uint64_t off;
	int ret;

	ret = inspect_open(AT_FDCWD, path, &ip);
	if (ret < 0)
		return ret == -ENOENT ? -ENOTDIR : ret;
	if (by_time)
		ret = inspect_time_to_offset(ip, ts, &off, byte);
	else
		ret = inspect_offset_to_byte(ip, offset, byte);
	inspect_close(ip);
	return ret;
}

/* fluxctl seek PARTITION --offset N | --time T */
int ctl_seek(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "offset", required_argument, NULL, 'o' },
		{ "time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *time_arg = NULL;
	struct ctl_target t;
	uint64_t offset = 0, byte;
	int64_t ts = 0;
	int opt, ret, have_off = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":o:t:h", longopts, NULL)) !=
	       -1) {
		if (opt == 'o') {
			if (config_parse_u64(optarg, &offset) < 0)
				return ctl_usage(argv[0], "bad offset '%s': "
							  "want a message "
							  "number", optarg);
			have_off = 1;
			continue;
		}
		if (opt == 't') {
			if (ctl_parse_time(optarg, ctl_now_ms(), &ts) < 0)
				return ctl_usage(argv[0], "bad time '%s': want "
							  "ISO 8601, epoch ms "
							  "or -1h/-30m/-10s",
						 optarg);
			time_arg = optarg;
			continue;
		}
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	if (have_off == !!time_arg)
		return ctl_usage(argv[0], "give exactly one of --offset and "
					  "--time");
	ret = ctl_one_operand(argc, argv, "PARTITION", &t);
	if (ret >= 0)
		return ret;
	if (t.kind != CTL_DATA_PARTITION && t.kind != CTL_MOUNT_PARTITION)
		return ctl_usage(argv[0], "'%s' is not a partition", t.path);
	if (t.kind == CTL_MOUNT_PARTITION)
		ret = seek_mount(t.path, !!time_arg, offset, ts, &byte);
	else
		ret = seek_data(t.path, !!time_arg, offset, ts, &byte);
	if (ret == -ENOENT) {
		if (time_arg)
			ctl_err("no message in '%s' at or after %s", t.path,
				time_arg);
		else
			ctl_err("no message with offset %llu in '%s'",
				(unsigned long long)offset, t.path);
		return CTL_FOUND;
	}
	if (ret == -ENODATA || ret == -ENOTSUP) {
		ctl_err("the fluxfs serving '%s' does not answer seek queries",
			t.path);
		return CTL_USAGE;
	}
	if (ret < 0) {
		ctl_err("cannot seek in '%s': %s", t.path, strerror(-ret));
		return CTL_USAGE;
	}
	printf("%llu\n", (unsigned long long)byte);
	return CTL_OK;
}
