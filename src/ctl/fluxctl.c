/*
 * fluxctl.c - main(): the operator's tool beside the daemon.  Dispatches
 * "fluxctl COMMAND ARGS" to the ctl_*.c commands and owns the help texts,
 * so "fluxctl help CMD", "fluxctl CMD --help" and fluxctl(1) agree.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const struct ctl_cmd commands[] = {
	{ "stat", ctl_stat, "stat PATH [--json]",
	  "Show each partition below PATH: first and next message offset,\n"
	  "first retained byte, bytes, segments, compression and ratio,\n"
	  "retention settings, oldest and newest timestamp.  PATH is a data\n"
	  "directory, topic or partition, or the same on a fluxfs mount\n"
	  "(read through its xattrs).\n"
	  "\n"
	  "  --json       one JSON document for scripts\n" },
	{ "dump", ctl_dump, "dump SEGMENT|PARTITION [--from OFFSET] [--messages]",
	  "Print every index entry of a segment file or of a partition\n"
	  "directory in a data directory: offsets, byte position, length,\n"
	  "timestamp, CRC status.\n"
	  "\n"
	  "  --from OFFSET  start at the entry holding message OFFSET\n"
	  "  --messages     print each message too\n" },
	{ "verify", ctl_verify, "verify PATH",
	  "Check every entry's CRC, the index (entry checksums, contiguity\n"
	  "of offsets and bytes, .idx against .log length), every block of\n"
	  "compressed segments and partition.state, for each partition\n"
	  "below a data directory PATH.  Shows progress on a terminal.\n"
	  "Batches dropped by repair --drop-damaged are listed as known\n"
	  "losses (\"lost: ...\"), not as damage.\n"
	  "Exit status: 0 clean, 1 damage found (listed), 2 usage or I/O\n"
	  "error.\n" },
	{ "repair", ctl_repair, "repair PATH [--drop-damaged] [--dry-run]",
	  "Offline only: refuses while a fluxfs serves the data directory.\n"
	  "Moves a damaged segment at the head of a partition to its\n"
	  "quarantine/ directory (the log then starts after it, as after\n"
	  "retention), runs the recovery a mount runs (torn tails cut,\n"
	  "missing indexes rebuilt, leftovers removed), and reports what it\n"
	  "did.  Damage elsewhere is reported and left in place; each\n"
	  "damaged batch on one line (segment, bytes, offsets).\n"
	  "Exit status: 0 clean afterwards, 1 damage left, 2 usage/I/O.\n"
	  "\n"
	  "  --drop-damaged  copy each damaged batch of a raw segment to\n"
	  "                  DATA_DIR/.quarantine/TOPIC/PARTITION/ and turn\n"
	  "                  it into a hole inside the log: reads of it give\n"
	  "                  zeros, its messages count as lost, every offset\n"
	  "                  stays\n"
	  "  -n, --dry-run   say what would be done, change nothing\n" },
	{ "groups", ctl_groups,
	  "groups DATA_DIR [GROUP] [--reset VALUE --partition TOPIC/PARTITION]",
	  "List the consumer groups (MNT/.groups) of a data directory: per\n"
	  "partition the committed offset, the log's end offset, the lag and\n"
	  "the time of the last commit, like kafka-consumer-groups\n"
	  "--describe.  With --reset, offline only (refused while a fluxfs\n"
	  "serves the data directory), move GROUP's position on one\n"
	  "partition, like --reset-offsets.\n"
	  "\n"
	  "  -r, --reset VALUE       earliest, latest, offset:N or time:T\n"
	  "                          (T as for seek)\n"
	  "  -p, --partition T/P     the partition, as TOPIC/PARTITION\n" },
	{ "snapshots", ctl_snapshots, "snapshots DATA_DIR",
	  "List the consistent snapshots (MNT/.snapshot) of a data\n"
	  "directory: name, creation time, partitions and the bytes each\n"
	  "keeps from retention.  Safe beside a running daemon (read-only);\n"
	  "a damaged .snap file is reported and left out (fluxctl verify\n"
	  "counts it as a problem).\n" },
	{ "seek", ctl_seek, "seek PARTITION --offset N | --time T",
	  "Print the byte position of message N, or of the first message\n"
	  "appended at or after T, so that tail -c +$((pos+1)) FILE starts\n"
	  "there.  T is ISO 8601 (2026-11-24T10:00:00Z, with or without\n"
	  "milliseconds and zone; no zone means local time), epoch\n"
	  "milliseconds, or relative to now: -10s, -30m, -1h, -2d.\n"
	  "PARTITION is a partition file on a mount or a partition directory.\n"
	  "Exit status: 1 if there is no such message.\n"
	  "\n"
	  "  -o, --offset N  message offset\n"
	  "  -t, --time T    time\n" },
	{ "cat", ctl_cat,
	  "cat [--since T] [--until T] [--offset N] PARTITION",
	  "Print a partition's messages appended at or after --since and\n"
	  "before --until (the first message whose time is at or after\n"
	  "it, as Kafka's offsetsForTimes), or from message --offset N (the\n"
	  "later of the two starts), from a partition directory of a data\n"
	  "directory, offline and read-only: what MNT/.at/SINCE..UNTIL/\n"
	  "TOPIC/PARTITION shows on a mount.  T is ISO 8601 with a zone\n"
	  "(2026-12-06T10:00Z, 2026-12-06T11:00:30.250+01:00), epoch\n"
	  "milliseconds, or relative to now: -90s, -15m, -2h, -7d.\n"
	  "\n"
	  "  -s, --since T   from the first message at or after T\n"
	  "  -u, --until T   up to the first message at or after T\n"
	  "  -o, --offset N  from message N\n" },
	{ "unescape", ctl_unescape, "unescape [FILE...]",
	  "Copy FILEs (or standard input) to standard output with the\n"
	  "values of records imported from Kafka as they were: a record\n"
	  "whose value held a newline is stored as one line marked by a\n"
	  "leading record separator byte (0x1e), with backslashes doubled\n"
	  "and newlines as backslash-n; other lines pass unchanged.\n"
	  "Example: fluxctl unescape MNT/payments/0\n" },
	{ "mirror-wait", ctl_mirror_wait, "mirror-wait PATH",
	  "On a fluxfs mount: wait until every partition below PATH that is\n"
	  "mirrored to Kafka has everything appended so far acknowledged by\n"
	  "the cluster (or, imported, has what the cluster held), printing\n"
	  "each partition and its position.  Each waits at most 30 s.\n"
	  "Exit status: 1 if one timed out or nothing below PATH is\n"
	  "mirrored.\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The command named name, or NULL. */
static const struct ctl_cmd *find_command(const char *name)
{
	size_t i;

	for (i = 0; name && i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* Print one command's help to stdout. */
static void print_help(const struct ctl_cmd *c)
{
	printf("usage: fluxctl %s\n\n%s", c->synopsis, c->help);
}

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: fluxctl COMMAND [ARGS]\n\n"
		     "Inspect, check and repair fluxfs data directories and "
		     "mounts.\n\nCommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  fluxctl %s\n", commands[i].synopsis);
	fprintf(out, "\n'fluxctl help COMMAND' or 'fluxctl COMMAND --help' "
		     "describes one; see fluxctl(1).\n");
}

int main(int argc, char **argv)
{
	const struct ctl_cmd *c;
	int ret;

	if (argc < 2)
		return ctl_usage(NULL, "missing command");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return CTL_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("fluxctl %s\n", PACKAGE_VERSION);
		return CTL_OK;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			usage(stdout);
			return CTL_OK;
		}
		c = find_command(argv[2]);
		if (!c)
			return ctl_usage(NULL, "unknown command '%s'", argv[2]);
		print_help(c);
		return CTL_OK;
	}
	c = find_command(argv[1]);
	if (!c)
		return ctl_usage(NULL, "unknown command '%s'", argv[1]);
	ret = c->run(argc - 1, argv + 1);
	if (ret == CTL_HELP) {
		print_help(c);
		ret = CTL_OK;
	}
	return ret;
}
