/*
 * ctl.h - fluxctl's commands and the helpers they share: what a PATH
 * argument names (a data directory, topic, partition or segment file, or
 * the same on a fluxfs mount), walking the partitions below it, time
 * parsing and printing, argument errors, and the data directory's lock.
 *
 * Exit codes, for every command: CTL_OK; CTL_FOUND (verify/repair: damage
 * found or left; seek: no such message); CTL_USAGE for a bad argument or
 * an I/O error that stopped the command.
 */
#ifndef FLUXFS_CTL_H
#define FLUXFS_CTL_H

#include <limits.h>
#include <stdint.h>

#define CTL_OK 0
#define CTL_FOUND 1
#define CTL_USAGE 2
/* Not an exit code: a command returns it when --help was asked, and
 * main() prints that command's help and exits CTL_OK.  So the commands
 * and their helpers never call back up into main()'s command table. */
#define CTL_HELP 3

#define CTL_FUSE_MAGIC 0x65735546L
#define CTL_XATTR "user.fluxfs."

enum ctl_kind {
	CTL_DATA_ROOT,
	CTL_DATA_TOPIC,
	CTL_DATA_PARTITION,
	CTL_DATA_SEGMENT,
	CTL_MOUNT_ROOT,
	CTL_MOUNT_TOPIC,
	CTL_MOUNT_PARTITION,
};

/* A resolved PATH argument. */
struct ctl_target {
	enum ctl_kind kind;
	char path[PATH_MAX];    /* absolute, symlinks resolved */
	char root[PATH_MAX];    /* data directory (empty if unknown) */
	char topic[256];        /* for topics, partitions and segments */
	char part[256];         /* for partitions and segments */
	uint64_t seg_base;      /* for segments: the base offset */
};

/* One command: fluxctl NAME ARGS... runs run(argc, argv) with argv[0] the
 * command's name. */
struct ctl_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
	const char *help;
};

int ctl_stat(int argc, char **argv);
int ctl_dump(int argc, char **argv);
int ctl_verify(int argc, char **argv);
int ctl_repair(int argc, char **argv);
int ctl_seek(int argc, char **argv);
int ctl_cat(int argc, char **argv);
int ctl_groups(int argc, char **argv);
/* verify's check of DATA_DIR/.groups: each group file parses and passes
 * its CRC.  Prints each problem; returns how many. */
int ctl_verify_groups(const char *root);
int ctl_snapshots(int argc, char **argv);
/* verify's check of the small files DATA_DIR/dir/ *suffix: check(dirfd,
 * name) returns 0 or -errno for each; prints each failure as "damaged:
 * dir/name: why" and returns how many failed. */
int ctl_verify_files(const char *root, const char *dir, const char *suffix,
		     int (*check)(int dirfd, const char *name));
/* fluxctl verify's check of the snapshots' files: the damaged ones
 * listed, their count returned. */
int ctl_verify_snapshots(const char *root);
int ctl_unescape(int argc, char **argv);
int ctl_mirror_wait(int argc, char **argv);

/* "fluxctl: <msg>" and a hint to --help on stderr; returns CTL_USAGE. */
int ctl_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "fluxctl: <msg>" on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Handle --help / unknown options common to every command's getopt loop;
 * returns -1 to go on, else an exit code or CTL_HELP. */
int ctl_getopt_default(const char *cmd, int opt, int optopt_val,
		       const char *arg);

/* Resolve PATH; prints the error itself and returns -errno. */
int ctl_resolve(const char *arg, struct ctl_target *t);
/* After getopt: exactly one operand must remain (what names it in the
 * error, e.g. "PATH"); resolve it into t.  Returns -1 to go on, else an
 * exit code. */
int ctl_one_operand(int argc, char **argv, const char *what,
		    struct ctl_target *t);
int ctl_is_mount(enum ctl_kind kind);

/* fn for every partition below t (sorted by topic, then partition).
 * path is the partition's directory (data side) or file (mount side).
 * A non-zero return from fn stops the walk and is returned. */
typedef int (*ctl_part_fn)(void *arg, const struct ctl_target *t,
			   const char *topic, const char *part,
			   const char *path);
int ctl_each_partition(const struct ctl_target *t, ctl_part_fn fn, void *arg);

/* Milliseconds since the epoch, now. */
int64_t ctl_now_ms(void);
/* One point of the time-views grammar (timesel.h): ISO 8601 (no zone =
 * local time), epoch milliseconds, or relative to now ("-1h", "-30m",
 * "-10s", "-2d", "-500ms").  0 or -EINVAL. */
int ctl_parse_time(const char *s, int64_t now_ms, int64_t *out);
/* 2026-11-24T10:00:00.123Z, or "-" for a negative time. */
void ctl_format_time(int64_t ms, char *buf, size_t size);

/* Take the data directory's lock (shared with a serving fluxfs) without
 * waiting: 0 and *fd (-1 when there is no lock file, so no fluxfs ever
 * served it) to release with io_close(), -EBUSY with *pid set
 * (0 if unknown) when a fluxfs holds it, or -errno. */
int ctl_lock_data_dir(const char *root, int *fd, long *pid);
/* The same for a command that changes t's data directory offline: -1
 * and *fd (release with io_close() if >= 0) to go on, else an exit code
 * (the reason printed). */
int ctl_lock_offline(const struct ctl_target *t, int *fd);

#endif
