/*
 * ctl_util.c - what fluxctl's commands share: resolving a PATH argument to
 * a data directory, topic, partition or segment (or the same through a
 * mount), walking partitions in a stable order, time parsing and
 * printing, error lines, and the data directory's lock.
 *
 * A mount is told from a data directory by statfs (FUSE's magic) and
 * fluxfs's own xattrs, a data directory by its fluxfs.meta (on any
 * filesystem, FUSE ones included).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "inspect.h"
#include "io.h"
#include "layout.h"
#include "timesel.h"

/* ------------------------------------------------------------------ */
/* Messages                                                             */

/* Print "fluxctl: msg" to stderr. */
void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("fluxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A bad argument: one line, a hint, exit code 2. */
int ctl_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("fluxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nTry 'fluxctl %s --help'.\n", cmd);
	else
		fputs("\nTry 'fluxctl --help'.\n", stderr);
	return CTL_USAGE;
}

/* The cases every command's getopt loop shares. */
int ctl_getopt_default(const char *cmd, int opt, int optopt_val,
		       const char *arg)
{
	switch (opt) {
	case 'h':
		return CTL_HELP;
	case ':':
		return ctl_usage(cmd, "option '%s' needs a value", arg);
	case '?':
		if (optopt_val)
			return ctl_usage(cmd, "unknown option '-%c'",
					 optopt_val);
		return ctl_usage(cmd, "unknown option '%s'", arg);
	default:
		return -1;
	}
}

/* The one operand after the options, resolved. */
int ctl_one_operand(int argc, char **argv, const char *what,
		    struct ctl_target *t)
{
	if (optind >= argc)
		return ctl_usage(argv[0], "missing %s", what);
	if (optind + 1 < argc)
		return ctl_usage(argv[0], "unexpected argument '%s'",
				 argv[optind + 1]);
	if (ctl_resolve(argv[optind], t) < 0)
		return CTL_USAGE;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Resolving paths                                                      */

static int has_file(const char *dir, const char *name)
{
	char p[PATH_MAX + 64];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static void split(const char *path, char *dir, size_t dsize, char *base,
		  size_t bsize)
{
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path) {
		snprintf(dir, dsize, "/");
		snprintf(base, bsize, "%s", slash ? slash + 1 : path);
		return;
	}
	snprintf(dir, dsize, "%.*s", (int)(slash - path), path);
	snprintf(base, bsize, "%s", slash + 1);
}

static int resolve_mount(const struct stat *st, struct ctl_target *t)
{
	char parent[PATH_MAX], base[256], buf[64];
	struct stat pst;

	split(t->path, parent, sizeof(parent), base, sizeof(base));
	if (S_ISREG(st->st_mode)) {
		if (getxattr(t->path, CTL_XATTR "next_offset", buf,
			     sizeof(buf)) < 0) {
			ctl_err("'%s' is on a fluxfs mount but is not a "
				"partition", t->path);
			return -EINVAL;
		}
		t->kind = CTL_MOUNT_PARTITION;
		snprintf(t->part, sizeof(t->part), "%s", base);
		split(parent, buf, sizeof(buf), t->topic, sizeof(t->topic));
		return 0;
	}
	if (!S_ISDIR(st->st_mode)) {
		ctl_err("'%s' is not a topic or a partition", t->path);
		return -EINVAL;
	}
	/* The mount root is the directory whose parent is elsewhere. */
	if (stat(parent, &pst) < 0 || pst.st_dev != st->st_dev ||
	    !strcmp(t->path, "/")) {
		t->kind = CTL_MOUNT_ROOT;
		return 0;
	}
	t->kind = CTL_MOUNT_TOPIC;
	snprintf(t->topic, sizeof(t->topic), "%s", base);
	return 0;
}

static int resolve_data(const struct stat *st, struct ctl_target *t)
{
	char parent[PATH_MAX], gparent[PATH_MAX], ggparent[PATH_MAX];
	char base[256], pbase[256];
	enum layout_file kind;
	int ret;

	split(t->path, parent, sizeof(parent), base, sizeof(base));
	split(parent, gparent, sizeof(gparent), pbase, sizeof(pbase));
	if (S_ISREG(st->st_mode)) {
		/* A segment file: NNN(20 digits).log/.idx/.lz4/.gz/.zst/.blk */
		if (layout_parse_name(base, &t->seg_base, &kind) < 0 ||
		    kind == LAYOUT_FILE_TMP ||
		    inspect_is_partition(AT_FDCWD, parent) != 1) {
			ctl_err("'%s' is not a segment file", t->path);
			return -EINVAL;
		}
		t->kind = CTL_DATA_SEGMENT;
		snprintf(t->part, sizeof(t->part), "%s", pbase);
		split(gparent, ggparent, sizeof(ggparent), t->topic,
		      sizeof(t->topic));
		if (has_file(ggparent, LAYOUT_META_FILE))
			snprintf(t->root, sizeof(t->root), "%s", ggparent);
		return 0;
	}
	if (!S_ISDIR(st->st_mode)) {
		ctl_err("'%s' is not a directory or a segment file", t->path);
		return -EINVAL;
	}
	if (has_file(t->path, LAYOUT_META_FILE)) {
		t->kind = CTL_DATA_ROOT;
		snprintf(t->root, sizeof(t->root), "%s", t->path);
		return 0;
	}
	if (has_file(parent, LAYOUT_META_FILE) && base[0] != '.') {
		t->kind = CTL_DATA_TOPIC;
		snprintf(t->topic, sizeof(t->topic), "%s", base);
		snprintf(t->root, sizeof(t->root), "%s", parent);
		return 0;
	}
	ret = inspect_is_partition(AT_FDCWD, t->path);
	if (ret == 1) {
		t->kind = CTL_DATA_PARTITION;
		snprintf(t->part, sizeof(t->part), "%s", base);
		snprintf(t->topic, sizeof(t->topic), "%s", pbase);
		if (has_file(gparent, LAYOUT_META_FILE))
			snprintf(t->root, sizeof(t->root), "%s", gparent);
		return 0;
	}
	ctl_err("'%s' is not a fluxfs data directory, topic, partition or "
		"mount", t->path);
	return -EINVAL;
}

/* What a PATH argument names. */
int ctl_resolve(const char *arg, struct ctl_target *t)
{
	struct statfs sfs;
	struct stat st;
	int ret;

	memset(t, 0, sizeof(*t));
	if (!realpath(arg, t->path) || stat(t->path, &st) < 0) {
		ret = -errno;
		ctl_err("cannot access '%s': %s", arg, strerror(-ret));
		return ret;
	}
	if (statfs(t->path, &sfs) == 0 && (long)sfs.f_type == CTL_FUSE_MAGIC) {
		char buf[64];

		/* A fluxfs mount answers our xattrs; another FUSE filesystem
		 * (sshfs, bindfs, LazyFS...) may well hold a data directory,
		 * which is then looked at like one on any other disk. */
		if (getxattr(t->path, CTL_XATTR "segment_bytes", buf,
			     sizeof(buf)) >= 0 ||
		    getxattr(t->path, CTL_XATTR "next_offset", buf,
			     sizeof(buf)) >= 0 ||
		    has_file(t->path, ".metrics"))
			return resolve_mount(&st, t);
	}
	return resolve_data(&st, t);
}

/* Is kind on the mount side? */
int ctl_is_mount(enum ctl_kind kind)
{
	return kind >= CTL_MOUNT_ROOT;
}

/* ------------------------------------------------------------------ */
/* Walking partitions                                                   */

static int name_ok(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

static int walk_topic(const struct ctl_target *t, const char *topic_path,
		      const char *topic, ctl_part_fn fn, void *arg)
{
	struct dirent **list = NULL;
	char p[PATH_MAX + 256];
	struct stat st;
	int n, i, ret = 0, mount = ctl_is_mount(t->kind);

	n = scandir(topic_path, &list, NULL, alphasort);
	if (n < 0) {
		ret = -errno;
		ctl_err("cannot read '%s': %s", topic_path, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		if (ret == 0 && strcmp(list[i]->d_name, ".") &&
		    strcmp(list[i]->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", topic_path,
				 list[i]->d_name);
			if (mount ? (stat(p, &st) == 0 && S_ISREG(st.st_mode)) :
				    inspect_is_partition(AT_FDCWD, p) == 1)
				ret = fn(arg, t, topic, list[i]->d_name, p);
		}
		free(list[i]);
	}
	free(list);
	return ret;
}

/* Every partition below t. */
int ctl_each_partition(const struct ctl_target *t, ctl_part_fn fn, void *arg)
{
	struct dirent **list = NULL;
	char p[PATH_MAX + 256];
	struct stat st;
	int n, i, ret = 0;

	switch (t->kind) {
	case CTL_DATA_PARTITION:
	case CTL_MOUNT_PARTITION:
		return fn(arg, t, t->topic, t->part, t->path);
	case CTL_DATA_TOPIC:
	case CTL_MOUNT_TOPIC:
		return walk_topic(t, t->path, t->topic, fn, arg);
	case CTL_DATA_SEGMENT:
		return -EINVAL;
	default:
		break;
	}
	n = scandir(t->path, &list, name_ok, alphasort);
	if (n < 0) {
		ret = -errno;
		ctl_err("cannot read '%s': %s", t->path, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s", t->path, list[i]->d_name);
		if (ret == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			ret = walk_topic(t, p, list[i]->d_name, fn, arg);
		free(list[i]);
	}
	free(list);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Numbers and times                                                    */

/* Milliseconds since the epoch. */
int64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The views' grammar (timesel.h); a time without a zone is local. */
int ctl_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
	return timesel_parse_ms(s, TIMESEL_NOZONE_LOCAL, now_ms, out);
}

/* UTC, millisecond precision. */
void ctl_format_time(int64_t ms, char *buf, size_t size)
{
	struct tm tm;
	time_t t;

	if (ms < 0) {
		snprintf(buf, size, "-");
		return;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ------------------------------------------------------------------ */
/* The lock                                                             */

/* Does process pid hold a descriptor on a file named LAYOUT_LOCK_FILE with
 * inode ino?  A FUSE filesystem that does not pass flock through (bindfs
 * does not) grants our flock even while a daemon holds it on the file
 * below; the pid the daemon wrote in the file and its descriptor table
 * still tell.  A FUSE filesystem that neither passes flock nor inode
 * numbers through cannot be told apart this way. */
static int pid_holds_lock(long pid, ino_t ino)
{
	char p[64], fp[320], link[PATH_MAX];
	struct dirent *de;
	const char *base;
	struct stat st;
	ssize_t n;
	int found = 0;
	DIR *d;

	snprintf(p, sizeof(p), "/proc/%ld/fd", pid);
	d = opendir(p);
	if (!d)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		snprintf(fp, sizeof(fp), "%s/%s", p, de->d_name);
		n = readlink(fp, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		base = strrchr(link, '/');
		if (base && !strcmp(base + 1, LAYOUT_LOCK_FILE) &&
		    stat(fp, &st) == 0 && st.st_ino == ino)
			found = 1;
	}
	closedir(d);
	return found;
}

/* flock the data directory's lock file, as the daemon does. */
int ctl_lock_data_dir(const char *root, int *fd, long *pid)
{
	char p[PATH_MAX + 32], buf[32];
	struct stat st;
	long holder;
	ssize_t n;
	int ret;

	*pid = 0;
	*fd = -1;
	snprintf(p, sizeof(p), "%s/" LAYOUT_LOCK_FILE, root);
	/* Never created here: no lock file means no fluxfs ever served it. */
	ret = io_openat(AT_FDCWD, p, O_RDONLY, 0);
	if (ret < 0)
		return ret == -ENOENT ? 0 : ret;
	*fd = ret;
	ret = io_flock(*fd, LOCK_EX | LOCK_NB);
	if (ret == 0) {
		n = io_pread_full(*fd, buf, sizeof(buf) - 1, 0);
		holder = 0;
		if (n > 0) {
			buf[n] = '\0';
			holder = strtol(buf, NULL, 10);
		}
		if (holder <= 0 || holder == (long)getpid() ||
		    io_fstat(*fd, &st) < 0 ||
		    !pid_holds_lock(holder, st.st_ino))
			return 0;
		*pid = holder;
		io_close(*fd);
		*fd = -1;
		return -EBUSY;
	}
	if (ret == -EWOULDBLOCK)
		ret = -EBUSY;
	n = io_pread_full(*fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = '\0';
		*pid = strtol(buf, NULL, 10);
	}
	io_close(*fd);
	*fd = -1;
	return ret;
}

/* Lock t's data directory for an offline change, or say why not. */
int ctl_lock_offline(const struct ctl_target *t, int *fd)
{
	long pid;
	int ret;

	if (!t->root[0]) {
		ctl_err("cannot find the data directory (with fluxfs.meta) "
			"above '%s', so cannot check that no fluxfs serves it",
			t->path);
		return CTL_USAGE;
	}
	ret = ctl_lock_data_dir(t->root, fd, &pid);
	if (ret == -EBUSY) {
		if (pid > 0)
			ctl_err("'%s' is served by fluxfs (pid %ld): unmount "
				"it first", t->root, pid);
		else
			ctl_err("'%s' is served by a fluxfs: unmount it first",
				t->root);
		return CTL_USAGE;
	}
	if (ret < 0) {
		ctl_err("cannot lock '%s': %s", t->root, strerror(-ret));
		return CTL_USAGE;
	}
	return -1;
}

/* Check each DATA_DIR/dir/ *suffix file with check. */
int ctl_verify_files(const char *root, const char *dir, const char *suffix,
		     int (*check)(int dirfd, const char *name))
{
	char path[PATH_MAX + 16];
	struct dirent *de;
	size_t len;
	int problems = 0, ret;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		len = strlen(de->d_name);
		if (len <= strlen(suffix) ||
		    strcmp(de->d_name + len - strlen(suffix), suffix))
			continue;
		ret = check(dirfd(d), de->d_name);
		if (ret < 0) {
			printf("damaged: %s/%s: %s\n", dir, de->d_name,
			       strerror(-ret));
			problems++;
		}
	}
	closedir(d);
	return problems;
}
