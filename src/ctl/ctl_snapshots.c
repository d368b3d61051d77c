/*
 * ctl_snapshots.c - fluxctl snapshots: the consistent snapshots
 * (MNT/.snapshot) of a data directory, listed offline from their .snap
 * files, and the check fluxctl verify makes of those files.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "io.h"
#include "snapstore.h"

static int print_one(void *arg, const char *name, int64_t created_ms,
		     size_t nparts, uint64_t bytes)
{
	char when[64];

	(void)arg;
	ctl_format_time(created_ms, when, sizeof(when));
	printf("%-24s %-26s %10zu %16" PRIu64 "\n", name, when, nparts, bytes);
	return 0;
}

int ctl_snapshots(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct snapstore *ss = NULL;
	struct ctl_target t;
	int opt, ret, rootfd;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	ret = ctl_one_operand(argc, argv, "DATA_DIR", &t);
	if (ret >= 0)
		return ret;
	if (t.kind != CTL_DATA_ROOT)
		return ctl_usage(argv[0],
				 "'%s' is not a data directory (on a mount, "
				 "ls MNT/.snapshot)",
				 t.path);
	rootfd = io_opendirat(AT_FDCWD, t.root[0] ? t.root : t.path);
	ret = rootfd < 0 ? rootfd : snapstore_open(rootfd, 1, &ss);
	if (ret < 0) {
		ctl_err("cannot open the snapshots of '%s': %s", t.path,
			strerror(-ret));
	} else {
		printf("%-24s %-26s %10s %16s\n", "SNAPSHOT", "CREATED",
		       "PARTITIONS", "PINNED_BYTES");
		snapstore_list(ss, print_one, NULL);
	}
	snapstore_close(ss);
	if (rootfd >= 0)
		io_close(rootfd);
	return ret < 0 ? CTL_USAGE : CTL_OK;
}

static int check_snap_file(int dirfd, const char *name)
{
	struct snap_part *parts;
	int64_t created;
	size_t nparts;
	int ret = snapstore_read_file(dirfd, name, &created, &parts, &nparts);

	if (ret == 0)
		free(parts);
	return ret;
}

/* Each DATA_DIR/.snapshots/ *.snap file must parse and pass its CRC. */
int ctl_verify_snapshots(const char *root)
{
	return ctl_verify_files(root, SNAPSTORE_DIR, SNAPSTORE_SUFFIX,
				check_snap_file);
}
