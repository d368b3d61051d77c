/*
 * ctl_groups.c - fluxctl groups: the consumer groups of a data directory
 * with each position's committed offset and lag (like
 * kafka-consumer-groups --describe), an offline reset of one position
 * (--reset-offsets), and verify's check of the group files.
 *
 * Group files are read and written through the engine's groupstore (the
 * format's one reader); partitions are matched to positions by the inode
 * number stored in their partition.meta ("ino=N").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "groupstore.h"
#include "inspect.h"
#include "io.h"
#include "layout.h"
#include "timesel.h"

/* One partition of the data directory. */
struct part {
	char topic[256], name[256], path[PATH_MAX];
	uint64_t ino;
	uint64_t start_offset, next_offset, start_byte, end_byte;
};

struct parts {
	struct part *v;
	size_t n, cap;
};

/* The inode number in dir/partition.meta (0 if none). */
static uint64_t stored_ino(const char *dir)
{
	char p[PATH_MAX + 32], buf[512], *at;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/" LAYOUT_PART_META, dir);
	fd = io_openat(AT_FDCWD, p, O_RDONLY, 0);
	if (fd < 0)
		return 0;
	n = io_pread_full(fd, buf, sizeof(buf) - 1, 0);
	io_close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	at = strstr(buf, "\nino=");
	return at ? strtoull(at + 5, NULL, 10) : 0;
}

static int add_part(void *arg, const struct ctl_target *t, const char *topic,
		    const char *name, const char *path)
{
	struct parts *ps = arg;
	struct inspect_part *ip;
	struct part *p, *grown;

	(void)t;
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		grown = realloc(ps->v, ps->cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		ps->v = grown;
	}
	p = &ps->v[ps->n];
	memset(p, 0, sizeof(*p));
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->ino = stored_ino(path);
	if (inspect_open(AT_FDCWD, path, &ip) == 0) {
		p->start_offset = ip->start_offset;
		p->next_offset = ip->next_offset;
		p->start_byte = ip->start_byte;
		p->end_byte = ip->end_byte;
		inspect_close(ip);
	}
	ps->n++;
	return 0;
}

static const struct part *part_by_ino(const struct parts *ps, uint64_t ino)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (ps->v[i].ino == ino)
			return &ps->v[i];
	return NULL;
}

/* ---- describe -------------------------------------------------------- */

struct describe {
	const struct parts *ps;
	const char *group;
	int rows;
};

static int print_pos(void *arg, const struct group_pos *pos)
{
	struct describe *d = arg;
	const struct part *p = part_by_ino(d->ps, pos->ino);
	char when[64];

	if (!p)
		return 0; /* a deleted partition's: the next mount drops it */
	ctl_format_time(pos->commit_ms, when, sizeof(when));
	printf("%-16s %-16s %-10s %16" PRIu64 " %16" PRIu64 " %10" PRIu64
	       "  %s\n",
	       d->group, p->topic, p->name, pos->offset, p->next_offset,
	       p->next_offset > pos->offset ? p->next_offset - pos->offset : 0,
	       when);
	d->rows++;
	return 0;
}

static int describe(struct groupstore *gs, const struct parts *ps,
		    const char *only)
{
	struct describe d = {ps, NULL, 0};
	size_t i, n = 0;
	char **names = NULL;
	int ret;

	ret = groupstore_names(gs, &names, &n);
	if (ret == 0 && only && !groupstore_exists(gs, only)) {
		ctl_err("no consumer group '%s'", only);
		ret = -ENOENT;
	}
	if (ret == 0)
		printf("%-16s %-16s %-10s %16s %16s %10s  %s\n", "GROUP",
		       "TOPIC", "PARTITION", "COMMITTED-OFFSET",
		       "LOG-END-OFFSET", "LAG", "LAST-COMMIT");
	for (i = 0; ret == 0 && i < n; i++) {
		if (only && strcmp(only, names[i]))
			continue;
		d.group = names[i];
		d.rows = 0;
		ret = groupstore_positions(gs, names[i], print_pos, &d);
		if (ret == 0 && d.rows == 0)
			printf("%-16s (no committed positions)\n", names[i]);
	}
	groupstore_names_free(names, n);
	return ret;
}

/* ---- reset ----------------------------------------------------------- */

/* The position value names on partition p (read again with inspect). */
static int reset_pos(const struct part *p, const char *value,
		     struct group_pos *pos)
{
	struct inspect_part *ip;
	unsigned long long num = 0;
	int64_t ts;
	char *end;
	int ret;

	ret = inspect_open(AT_FDCWD, p->path, &ip);
	if (ret < 0)
		return ret;
	pos->offset = ip->next_offset;
	pos->byte = ip->end_byte;
	if (!strcmp(value, "latest")) {
		ret = 0;
	} else if (!strcmp(value, "earliest") ||
		   (!strncmp(value, "offset:", 7) &&
		    (errno = 0, num = strtoull(value + 7, &end, 10),
		     !errno && end != value + 7 && !*end && value[7] != '-'))) {
		if (value[0] == 'e' || num <= ip->start_offset)
			num = ip->start_offset;
		if (num > ip->next_offset) {
			ctl_err("offset %llu is past the end of '%s/%s' "
				"(%" PRIu64 ")",
				num, p->topic, p->name, ip->next_offset);
			ret = -ERANGE;
		} else if (num < ip->next_offset) {
			pos->offset = num;
			ret = inspect_offset_to_byte(ip, num, &pos->byte);
		} else {
			ret = 0;
		}
	} else if (!strncmp(value, "time:", 5) &&
		   timesel_parse_ms(value + 5, TIMESEL_NOZONE_UTC, ctl_now_ms(),
				    &ts) == 0) {
		ret = inspect_time_to_offset(ip, ts, &pos->offset, &pos->byte);
		if (ret == -ENOENT)
			ret = 0; /* every message is older: the end */
	} else {
		ctl_err("unknown reset '%s': earliest, latest, offset:N or "
			"time:T",
			value);
		ret = -EINVAL;
	}
	inspect_close(ip);
	pos->commit_ms = ctl_now_ms();
	return ret;
}

static int reset(struct groupstore *gs, const struct parts *ps,
		 const char *group, const char *which, const char *value)
{
	const struct part *p = NULL;
	struct group_pos pos;
	size_t i;
	int ret;

	for (i = 0; i < ps->n && !p; i++) {
		char name[520];

		snprintf(name, sizeof(name), "%s/%s", ps->v[i].topic,
			 ps->v[i].name);
		if (!strcmp(name, which))
			p = &ps->v[i];
	}
	if (!p || !p->ino) {
		ctl_err("no partition '%s' (TOPIC/PARTITION) with a stored "
			"inode number",
			which);
		return -ENOENT;
	}
	if (!groupstore_exists(gs, group)) {
		ctl_err("no consumer group '%s'", group);
		return -ENOENT;
	}
	ret = reset_pos(p, value, &pos);
	if (ret == 0)
		ret = groupstore_commit(gs, group, p->ino, &pos);
	if (ret == 0)
		printf("%s %s: reset to message %" PRIu64 " (byte %" PRIu64
		       ")\n",
		       group, which, pos.offset, pos.byte);
	return ret;
}

/* fluxctl groups DATA_DIR [GROUP] [--reset VALUE --partition T/P] */
int ctl_groups(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"reset", required_argument, NULL, 'r'},
		{"partition", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *value = NULL, *which = NULL, *group = NULL;
	struct parts ps = {NULL, 0, 0};
	struct groupstore *gs = NULL;
	struct ctl_target t;
	int opt, ret, lockfd = -1, rootfd;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":r:p:h", longopts, NULL)) !=
	       -1) {
		if (opt == 'r') {
			value = optarg;
			continue;
		}
		if (opt == 'p') {
			which = optarg;
			continue;
		}
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	if (optind < argc - 2 || optind >= argc)
		return ctl_usage(argv[0], "give DATA_DIR and at most a GROUP");
	if (optind == argc - 2)
		group = argv[argc - 1];
	if ((value || which) && !(value && which && group))
		return ctl_usage(argv[0], "--reset needs GROUP, VALUE and "
					  "--partition TOPIC/PARTITION");
	ret = ctl_resolve(argv[optind], &t);
	if (ret < 0)
		return CTL_USAGE;
	if (t.kind != CTL_DATA_ROOT)
		return ctl_usage(argv[0],
				 "'%s' is not a data directory "
				 "(give the mount's source, unmounted "
				 "for --reset)",
				 t.path);
	if (value) {
		ret = ctl_lock_offline(&t, &lockfd);
		if (ret >= 0)
			return ret;
	}
	rootfd = io_opendirat(AT_FDCWD, t.root[0] ? t.root : t.path);
	ret = rootfd < 0 ? rootfd : groupstore_open(rootfd, !value, &gs);
	if (ret < 0)
		ctl_err("cannot open the consumer groups of '%s': %s", t.path,
			strerror(-ret));
	if (ret == 0)
		ret = ctl_each_partition(&t, add_part, &ps);
	if (ret == 0)
		ret = value ? reset(gs, &ps, group, which, value)
			    : describe(gs, &ps, group);
	groupstore_close(gs);
	if (rootfd >= 0)
		io_close(rootfd);
	if (lockfd >= 0)
		io_close(lockfd);
	free(ps.v);
	return ret < 0 ? CTL_USAGE : CTL_OK;
}

/* ---- verify ---------------------------------------------------------- */

/* One group file must parse and pass its CRC. */
static int check_group_file(int dirfd, const char *name)
{
	struct group_opts opts;
	struct group_pos *pos;
	size_t npos, len;
	char *text;
	int ret = io_read_whole(dirfd, name, 1 << 26, &text, &len);

	if (ret == 0)
		ret = groupstore_decode(text, len, &opts, &pos, &npos);
	if (ret == 0)
		free(pos);
	free(text);
	return ret;
}

/* Each DATA_DIR/.groups/ *.group file must parse and pass its CRC. */
int ctl_verify_groups(const char *root)
{
	return ctl_verify_files(root, GROUPSTORE_DIR, GROUPSTORE_SUFFIX,
				check_group_file);
}
