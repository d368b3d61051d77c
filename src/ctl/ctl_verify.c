/*
 * ctl_verify.c - fluxctl verify and fluxctl repair.
 *
 * verify is read-only (inspect.h) and may run beside a daemon.  repair
 * takes the data directory's lock first, so it never races a fluxfs, and
 * then applies this rule, partition by partition:
 *
 *  - A damaged segment at the head of the log (bad CRC, undecodable
 *    block, damaged index) that is not the active segment is moved, all
 *    its files, to the partition's quarantine/ directory, and
 *    partition.state is rewritten so the log starts at the next segment:
 *    exactly what retention would have done, so offsets and byte
 *    positions of everything kept are unchanged and readers see a hole.
 *    Repeated while the new head is damaged too.
 *  - Then the partition is opened with partition_open(), which runs the
 *    mount's recovery (torn tails of the active segment cut, missing
 *    indexes rebuilt, leftover files removed); its report is printed.
 *  - Damage anywhere else (a sealed segment in the middle, or data below
 *    the recovery point of the active segment) is reported and left in
 *    place: the daemon contains damage to its segment (reads of it fail
 *    with EIO, everything else stays readable), and moving it away would
 *    only turn readable neighbours into a gap.  If such a segment's
 *    index is damaged, repair runs no recovery for the partition: the
 *    next mount rebuilds that index from the log and logs what it found,
 *    which an operator should read rather than a batch tool.  Exit status
 *    1 says damage is left.
 *
 * With --drop-damaged, every batch whose bytes fail their CRC in a raw
 * segment is first copied to DATA_DIR/.quarantine/<topic>/<partition>/
 * (written atomically and synced) and then turned into a hole inside the
 * log by segment_mark_lost(): zeros on disk, the entry flagged lost.  The
 * rule above then applies to what is left (a damaged index, an
 * undecodable compressed block).  Without it each such batch is listed
 * and left in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "ctl.h"
#include "inspect.h"
#include "io.h"
#include "layout.h"
#include "partition.h"
#include "segment.h"

struct verify_ctx {
	int tty;                /* draw a progress bar on stderr */
	int quiet;              /* repair's own passes: no per-problem lines */
	const char *topic, *part;
	uint64_t base_done;     /* bytes of partitions already checked */
	uint64_t total;
	int64_t started_ms, drawn_ms;
	uint64_t partitions, bytes, damaged, problems;
	uint64_t lost_messages, lost_bytes; /* known losses (holes) */
	/* what repair needs from one partition's check */
	uint8_t *seg_bad;       /* per segment: 1 data, 2 index damage */
	uint32_t *seg_ndata;    /* per segment: data problems */
	uint32_t nsegs;
	int state_bad;
	/* entries whose bytes are damaged (seg << 32 | entry) */
	uint64_t *bad;
	uint32_t nbad, bad_cap;
};

/* ------------------------------------------------------------------ */
/* Progress and problem lines                                           */

static void draw(struct verify_ctx *c, uint64_t done, int final)
{
	int64_t now = ctl_now_ms(), el;
	double rate, mib = 1024.0 * 1024.0;
	uint64_t eta;
	int pct, i;
	char bar[21];

	if (!c->tty || (!final && now - c->drawn_ms < 100))
		return;
	c->drawn_ms = now;
	el = now - c->started_ms;
	rate = el > 0 ? (double)done * 1000.0 / (double)el : 0;
	pct = c->total ? (int)(done * 100 / c->total) : 100;
	for (i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = '\0';
	eta = rate > 0 && c->total > done ?
		      (uint64_t)((double)(c->total - done) / rate) : 0;
	fprintf(stderr, "\r[%s] %3d%% %.1f/%.1f MiB %.1f MiB/s ETA %u:%02u ",
		bar, pct, (double)done / mib, (double)c->total / mib,
		rate / mib, (unsigned)(eta / 60), (unsigned)(eta % 60));
	if (final)
		fputs("\r\033[K", stderr);
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct verify_ctx *c = arg;

	draw(c, c->base_done + done, 0);
}

static void on_problem(void *arg, const struct inspect_part *ip,
		       const struct inspect_problem *pr)
{
	struct verify_ctx *c = arg;

	c->problems++;
	if (pr->seg >= 0 && (uint32_t)pr->seg < c->nsegs) {
		c->seg_bad[pr->seg] |= pr->data ? 1 : 2;
		c->seg_ndata[pr->seg] += pr->data ? 1 : 0;
	}
	if (pr->seg < 0)
		c->state_bad = 1;
	if (pr->data && pr->seg >= 0 && pr->entry >= 0) {
		if (c->nbad == c->bad_cap) {
			uint32_t cap = c->bad_cap ? c->bad_cap * 2 : 16;
			uint64_t *grown = realloc(c->bad, cap * sizeof(*grown));

			if (grown) {
				c->bad = grown;
				c->bad_cap = cap;
			}
		}
		if (c->nbad < c->bad_cap)
			c->bad[c->nbad++] = (uint64_t)pr->seg << 32 |
					    (uint32_t)pr->entry;
	}
	if (c->quiet)
		return;
	if (c->tty)
		fputs("\r\033[K", stderr);
	printf("damaged: %s/%s", c->topic, c->part);
	if (pr->seg >= 0)
		printf(" segment %s", ip->segs[pr->seg].data_name);
	if (pr->entry >= 0)
		printf(" entry %lld offset %llu byte %llu length %u",
		       (long long)pr->entry, (unsigned long long)pr->offset,
		       (unsigned long long)pr->pos, pr->len);
	printf(": %s\n", pr->what);
	fflush(stdout);
}

/* Check one partition directory; returns problems or -errno. */
static int check_part(struct verify_ctx *c, const char *path,
		      struct inspect_part **keep)
{
	struct inspect_part *ip;
	int ret;

	ret = inspect_open(AT_FDCWD, path, &ip);
	if (ret < 0) {
		ctl_err("cannot read partition '%s': %s", path, strerror(-ret));
		return ret;
	}
	free(c->seg_bad);
	c->nsegs = ip->nsegs;
	c->seg_bad = calloc(ip->nsegs ? ip->nsegs : 1, 1);
	free(c->seg_ndata);
	c->seg_ndata = calloc(ip->nsegs ? ip->nsegs : 1,
			      sizeof(*c->seg_ndata));
	c->state_bad = 0;
	c->nbad = 0;
	if (!c->seg_bad || !c->seg_ndata) {
		inspect_close(ip);
		return -ENOMEM;
	}
	ret = inspect_verify(ip, on_problem, on_progress, c);
	if (ret < 0)
		ctl_err("cannot verify '%s': %s", path, strerror(-ret));
	c->base_done += inspect_verify_bytes(ip);
	c->bytes += inspect_verify_bytes(ip);
	if (keep && ret >= 0)
		*keep = ip;
	else
		inspect_close(ip);
	return ret;
}

/* ------------------------------------------------------------------ */
/* verify                                                               */

/* One line per batch dropped as damaged: a known loss, not damage. */
static void print_losses(struct verify_ctx *c, const struct inspect_part *ip)
{
	const struct seg_entry *e;
	uint32_t i, k;

	for (i = 0; i < ip->nsegs; i++) {
		for (k = 0; k < ip->segs[i].nents; k++) {
			e = &ip->segs[i].ents[k];
			if (!layout_entry_lost(e) || !layout_entry_intact(e))
				continue;
			if (c->tty)
				fputs("\r\033[K", stderr);
			printf("lost: %s/%s segment %s bytes %llu..%llu "
			       "offsets %llu..%llu (%u messages): dropped as "
			       "damaged by repair, reads as zeros\n",
			       c->topic, c->part, ip->segs[i].data_name,
			       (unsigned long long)e->pos,
			       (unsigned long long)(e->pos + e->len),
			       (unsigned long long)e->offset,
			       (unsigned long long)(e->offset + e->count - 1),
			       e->count);
		}
	}
}

static int sum_bytes(void *arg, const struct ctl_target *t, const char *topic,
		     const char *part, const char *path)
{
	struct inspect_part *ip;

	if (inspect_open(AT_FDCWD, path, &ip) == 0) {
		*(uint64_t *)arg += inspect_verify_bytes(ip);
		inspect_close(ip);
	}
	return 0;
}

static int verify_one(void *arg, const struct ctl_target *t,
		      const char *topic, const char *part, const char *path)
{
	struct verify_ctx *c = arg;
	uint64_t before = c->problems;
	int ret;

	struct inspect_part *ip = NULL;

	c->topic = topic;
	c->part = part;
	ret = check_part(c, path, &ip);
	if (ret < 0)
		return ret;
	print_losses(c, ip);
	c->lost_messages += ip->lost_messages;
	c->lost_bytes += ip->lost_bytes;
	inspect_close(ip);
	c->partitions++;
	if (c->problems > before)
		c->damaged++;
	if (!c->tty)
		printf("%s/%s: %s\n", topic, part,
		       c->problems > before ? "DAMAGED" : "ok");
	return 0;
}

static int need_data_path(const char *cmd, const struct ctl_target *t)
{
	if (ctl_is_mount(t->kind))
		return ctl_usage(cmd, "'%s' is on a fluxfs mount: give the "
				      "data directory (the mount's source, "
				      "see findmnt)", t->path);
	if (t->kind == CTL_DATA_SEGMENT)
		return ctl_usage(cmd, "'%s' is a segment file: give its "
				      "partition directory", t->path);
	return -1;
}

/* fluxctl verify PATH */
int ctl_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct verify_ctx c;
	struct ctl_target t;
	int opt, ret;

	memset(&c, 0, sizeof(c));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		ret = ctl_getopt_default(argv[0], opt, optopt,
					 argv[optind - 1]);
		if (ret >= 0)
			return ret;
	}
	ret = ctl_one_operand(argc, argv, "PATH", &t);
	if (ret >= 0)
		return ret;
	ret = need_data_path(argv[0], &t);
	if (ret >= 0)
		return ret;
	c.tty = isatty(STDERR_FILENO);
	c.started_ms = ctl_now_ms();
	if (c.tty)
		ctl_each_partition(&t, sum_bytes, &c.total);
	ret = ctl_each_partition(&t, verify_one, &c);
	draw(&c, c.base_done, 1);
	if (t.kind == CTL_DATA_ROOT)
		c.problems +=
			(uint64_t)ctl_verify_groups(t.root[0] ? t.root
							      : t.path) +
			(uint64_t)ctl_verify_snapshots(t.root[0] ? t.root
								 : t.path);
	free(c.seg_bad);
	free(c.seg_ndata);
	free(c.bad);
	if (ret < 0)
		return CTL_USAGE;
	printf("verified %llu partitions, %llu bytes: %llu damaged, %llu "
	       "problems\n", (unsigned long long)c.partitions,
	       (unsigned long long)c.bytes, (unsigned long long)c.damaged,
	       (unsigned long long)c.problems);
	if (c.lost_messages)
		printf("known loss: %llu messages in %llu bytes dropped as "
		       "damaged by an earlier repair (not damage)\n",
		       (unsigned long long)c.lost_messages,
		       (unsigned long long)c.lost_bytes);
	return c.problems ? CTL_FOUND : CTL_OK;
}

/* ------------------------------------------------------------------ */
/* repair                                                               */

struct repair_ctx {
	struct verify_ctx v;
	int dry_run;
	int drop;               /* --drop-damaged */
	const char *root;       /* the data directory */
	uint64_t left;          /* partitions with damage left */
	uint64_t dropped;       /* batches dropped */
};

/* A batch repair can drop: an intact entry of a raw segment whose bytes
 * are all in the .log (else it is index damage, handled by segment) and
 * were flushed.  Bytes recovery cuts as a torn write -- above the
 * recovery point, or in the active segment when there is no
 * partition.state -- are left to it: they never were durable. */
static int droppable(const struct inspect_part *ip, uint32_t si, uint32_t k)
{
	const struct inspect_seg *s = &ip->segs[si];
	const struct seg_entry *e = &s->ents[k];

	if (ip->state.ok ? e->pos + e->len > ip->state.recovery_point
			 : si + 1 == ip->nsegs)
		return 0;
	return s->codec == COMPRESSION_NONE && s->data_fd >= 0 &&
	       !layout_entry_lost(e) &&
	       e->pos >= s->base_byte &&
	       e->pos + e->len <= s->base_byte + s->raw_bytes;
}

/* mkdir dfd/name if missing; returns an fd on it or -errno. */
static int open_subdir(int dfd, const char *name)
{
	int ret = io_mkdirat(dfd, name, 0700);

	if (ret == 0)
		ret = io_fsync_dir(dfd);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	return io_opendirat(dfd, name);
}

/* Copy the damaged bytes of entry k of segment si to
 * ROOT/.quarantine/TOPIC/PART/SEGMENT-POS-LEN.batch, synced.  An earlier,
 * interrupted repair's copy is kept: the log may already hold zeros. */
static int save_batch(struct repair_ctx *c, const struct inspect_part *ip,
		      uint32_t si, uint32_t k, char *name, size_t nsize)
{
	const struct inspect_seg *s = &ip->segs[si];
	const struct seg_entry *e = &s->ents[k];
	const char *dirs[3] = { LAYOUT_BATCH_QUARANTINE, c->v.topic, c->v.part };
	unsigned char *buf = NULL;
	struct stat st;
	int fd, next, ret = 0;
	ssize_t got;
	size_t i;

	layout_batch_name(name, nsize, s->base_offset, e->pos, e->len);
	fd = io_opendirat(AT_FDCWD, c->root);
	if (fd < 0)
		return fd;
	for (i = 0; i < 3; i++) {
		next = open_subdir(fd, dirs[i]);
		io_close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	if (io_fstatat(fd, name, &st) == 0)
		goto out;
	buf = malloc(e->len ? e->len : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	got = io_pread_full(s->data_fd, buf, e->len, e->pos - s->base_byte);
	if (got != (ssize_t)e->len) {
		ret = got < 0 ? (int)got : -EIO;
		goto out;
	}
	ret = io_write_atomic(fd, name, buf, e->len);
out:
	free(buf);
	io_close(fd);
	return ret;
}

/* List (or, with --drop-damaged, drop) the damaged batches of segments
 * from..nsegs-1.  Returns the batches left in place, or -errno. */
static int handle_batches(struct repair_ctx *c, const struct inspect_part *ip,
			  uint32_t from, const char *path)
{
	const struct seg_entry *e;
	char name[96];
	uint32_t b, si, k;
	int ret, raw, left = 0;

	for (b = 0; b < c->v.nbad; b++) {
		si = (uint32_t)(c->v.bad[b] >> 32);
		k = (uint32_t)c->v.bad[b];
		if (si < from || si >= ip->nsegs || k >= ip->segs[si].nents)
			continue;
		e = &ip->segs[si].ents[k];
		raw = droppable(ip, si, k);
		if (!raw && (ip->segs[si].codec == COMPRESSION_NONE ||
			     layout_entry_lost(e)))
			continue; /* index damage: the segment rule's */
		printf("%s/%s: damaged batch in segment %s, bytes %llu..%llu, "
		       "offsets %llu..%llu: ", c->v.topic, c->v.part,
		       ip->segs[si].data_name, (unsigned long long)e->pos,
		       (unsigned long long)(e->pos + e->len),
		       (unsigned long long)e->offset,
		       (unsigned long long)(e->offset + e->count - 1));
		if (!c->drop) {
			printf("left in place (reads of it fail with EIO; "
			       "--drop-damaged drops it)\n");
			left++;
			continue;
		}
		if (!raw) {
			/* Its bytes are inside compressed blocks: zeroing
			 * them would mean rewriting the segment. */
			printf("left in place (the segment is compressed: "
			       "--drop-damaged drops batches of raw segments "
			       "only)\n");
			left++;
			continue;
		}
		if (c->dry_run) {
			printf("would copy to %s/ and drop (reads as zeros)\n",
			       LAYOUT_BATCH_QUARANTINE);
			/* the plan that follows sees the segment as it will
			 * be: clean once its last damaged batch is dropped */
			if (c->v.seg_ndata[si] && !--c->v.seg_ndata[si] &&
			    c->v.seg_bad[si] == 1)
				c->v.seg_bad[si] = 0;
			continue;
		}
		fflush(stdout);
		ret = save_batch(c, ip, si, k, name, sizeof(name));
		if (ret < 0) {
			printf("not dropped\n");
			ctl_err("cannot save the damaged bytes of '%s': %s",
				path, strerror(-ret));
			return ret;
		}
		ret = segment_mark_lost(ip->dfd, ip->segs[si].base_offset, k);
		if (ret < 0) {
			printf("not dropped\n");
			ctl_err("cannot drop the damaged batch of '%s' at byte "
				"%llu: %s", path, (unsigned long long)e->pos,
				strerror(-ret));
			return ret;
		}
		printf("copied to %s/%s/%s/%s, dropped (reads as zeros, %u "
		       "messages lost)\n", LAYOUT_BATCH_QUARANTINE, c->v.topic,
		       c->v.part, name, e->count);
		c->dropped++;
	}
	return left;
}

/* Move every file of segment base into dfd/quarantine/. */
static int quarantine_seg(int dfd, uint64_t base)
{
	static const char *const sfx[] = { LAYOUT_LOG_SUFFIX, LAYOUT_LZ4_SUFFIX,
					   LAYOUT_GZ_SUFFIX, LAYOUT_ZST_SUFFIX,
					   LAYOUT_BLK_SUFFIX, LAYOUT_IDX_SUFFIX };
	char name[LAYOUT_NAME_MAX];
	struct stat st;
	size_t i;
	int qfd, ret;

	ret = io_mkdirat(dfd, LAYOUT_SEG_QUARANTINE, 0755);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	qfd = io_opendirat(dfd, LAYOUT_SEG_QUARANTINE);
	if (qfd < 0)
		return qfd;
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		layout_seg_name(name, sizeof(name), base, sfx[i]);
		if (io_fstatat(dfd, name, &st) < 0)
			continue;
		if (io_fstatat(qfd, name, &st) == 0) {
			ret = -EEXIST; /* an earlier repair's: keep both */
			goto out;
		}
		ret = io_renameat(dfd, name, qfd, name);
		if (ret < 0)
			goto out;
	}
	ret = io_fsync_dir(qfd);
	if (ret == 0)
		ret = io_fsync_dir(dfd);
out:
	io_close(qfd);
	return ret;
}

/* Name the new head in partition.state. */
static int restart_state(int dfd, const struct inspect_part *ip, uint32_t k)
{
	const struct inspect_seg *s = &ip->segs[k];
	struct layout_state st = {
		.start_offset = s->base_offset,
		.start_byte = s->base_byte,
		.first_base_byte = s->base_byte,
		.recovery_point = s->base_byte,
	};

	if (ip->state.ok && ip->state.start_offset > st.start_offset &&
	    ip->state.start_byte >= st.start_byte) {
		st.start_offset = ip->state.start_offset;
		st.start_byte = ip->state.start_byte;
	}
	if (ip->state.ok && ip->state.recovery_point > st.recovery_point)
		st.recovery_point = ip->state.recovery_point;
	return layout_state_store(dfd, &st);
}

static int run_recovery(const char *path, const char *topic,
			const char *part)
{
	struct partition_recovery rec;
	struct partition *p;
	struct config cfg;
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int dirfd, ret;

	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	dirfd = io_opendirat(AT_FDCWD, dir);
	if (dirfd < 0)
		return dirfd;
	config_defaults(&cfg);
	ret = partition_open(dirfd, slash + 1, &cfg, ctl_now_ms(), &p, &rec);
	if (ret == 0)
		ret = partition_close(p);
	io_close(dirfd);
	if (ret < 0)
		return ret;
	printf("%s/%s: recovery: %llu bytes truncated, %u index entries "
	       "dropped, %u indexes rebuilt, %u leftover files discarded, "
	       "%u bad batches reported\n", topic, part,
	       (unsigned long long)rec.truncated_bytes, rec.dropped_entries,
	       rec.rebuilt_indexes, rec.discarded_files, rec.bad_batches);
	return 0;
}

static int repair_one(void *arg, const struct ctl_target *t,
		      const char *topic, const char *part, const char *path)
{
	struct repair_ctx *c = arg;
	struct inspect_part *ip = NULL;
	uint32_t k = 0, i, last;
	int ret, problems, unsafe = 0, left = 0;

	c->v.topic = topic;
	c->v.part = part;
	problems = check_part(&c->v, path, &ip);
	if (problems < 0)
		return problems;
	c->v.partitions++;
	if (c->drop && c->v.nbad) {
		ret = handle_batches(c, ip, 0, path);
		if (ret < 0) {
			inspect_close(ip);
			return ret;
		}
		if (!c->dry_run) {
			/* what is left, afresh */
			inspect_close(ip);
			ip = NULL;
			problems = check_part(&c->v, path, &ip);
			if (problems < 0)
				return problems;
		}
	}
	last = ip->nsegs ? ip->nsegs - 1 : 0;
	/* the damaged head, never the active segment */
	while (k < last && c->v.seg_bad[k])
		k++;
	for (i = k; i < last; i++) {
		if (!c->v.seg_bad[i])
			continue;
		left = 1;
		if (c->v.seg_bad[i] & 2)
			unsafe = 1;
		printf("%s/%s: %s segment %s: damaged in the middle of the "
		       "log; left in place (the rest stays readable)\n",
		       topic, part, c->dry_run ? "would leave" : "leaving",
		       ip->segs[i].data_name);
	}
	if (!c->drop) {
		ret = handle_batches(c, ip, k, path);
		if (ret < 0) {
			inspect_close(ip);
			return ret;
		}
	}
	for (i = 0; i < k; i++)
		printf("%s/%s: %s segment %s to quarantine/ (the log will "
		       "start at offset %llu)\n", topic, part,
		       c->dry_run ? "would move" : "moving",
		       ip->segs[i].data_name,
		       (unsigned long long)ip->segs[k].base_offset);
	if (unsafe)
		printf("%s/%s: %s recovery: a damaged index in the middle "
		       "(the next mount rebuilds it from the log and logs "
		       "what it finds)\n", topic,
		       part, c->dry_run ? "would skip" : "skipping");
	if (c->dry_run) {
		if (!unsafe)
			printf("%s/%s: would run recovery (cut torn tails of "
			       "the active segment, rebuild missing indexes, "
			       "remove leftover files)\n", topic, part);
		if (problems)
			c->left++;
		inspect_close(ip);
		return 0;
	}
	for (i = 0; i < k; i++) {
		ret = quarantine_seg(ip->dfd, ip->segs[i].base_offset);
		if (ret < 0) {
			ctl_err("cannot move segment %s of '%s' to "
				"quarantine: %s", ip->segs[i].data_name, path,
				strerror(-ret));
			inspect_close(ip);
			return ret;
		}
	}
	if (k) {
		ret = restart_state(ip->dfd, ip, k);
		if (ret < 0) {
			ctl_err("cannot write '%s/partition.state': %s", path,
				strerror(-ret));
			inspect_close(ip);
			return ret;
		}
	}
	inspect_close(ip);
	ip = NULL;
	if (!unsafe) {
		ret = run_recovery(path, topic, part);
		if (ret < 0) {
			ctl_err("cannot recover '%s': %s", path, strerror(-ret));
			return ret;
		}
	}
	/* What is left, checked afresh. */
	c->v.quiet = 0;
	problems = check_part(&c->v, path, NULL);
	c->v.quiet = 1;
	if (problems < 0)
		return problems;
	if (problems || left)
		c->left++;
	printf("%s/%s: %s\n", topic, part,
	       problems ? "damage left (listed above)" : "clean");
	return 0;
}

/* fluxctl repair PATH [--dry-run] */
int ctl_repair(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "drop-damaged", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct repair_ctx c;
	struct ctl_target t;
	int opt, ret, lockfd = -1;

	memset(&c, 0, sizeof(c));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":nh", longopts, NULL)) != -1) {
		if (opt == 'n') {
			c.dry_run = 1;
			continue;
		}
		if (opt == 'D') {
			c.drop = 1;
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
	ret = need_data_path(argv[0], &t);
	if (ret >= 0)
		return ret;
	/* Held for the whole repair, so no daemon starts halfway. */
	ret = ctl_lock_offline(&t, &lockfd);
	if (ret >= 0)
		return ret;
	c.root = t.root;
	c.v.quiet = 1;
	if (c.dry_run)
		c.v.quiet = 0;
	ret = ctl_each_partition(&t, repair_one, &c);
	free(c.v.seg_bad);
	free(c.v.seg_ndata);
	free(c.v.bad);
	if (lockfd >= 0)
		io_close(lockfd);
	if (ret < 0)
		return CTL_USAGE;
	printf("%s %llu partitions: %llu with damage %s\n",
	       c.dry_run ? "checked" : "repaired",
	       (unsigned long long)c.v.partitions,
	       (unsigned long long)c.left, c.dry_run ? "found" : "left");
	if (c.dropped)
		printf("dropped %llu damaged batches (copies in %s/%s/)\n",
		       (unsigned long long)c.dropped, t.root,
		       LAYOUT_BATCH_QUARANTINE);
	return c.left ? CTL_FOUND : CTL_OK;
}
