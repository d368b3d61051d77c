/*
 * crashsim_replay.c - the simulated power cut, played over what
 * crashsim.c recorded (test builds only, like it).
 *
 * Each file's log is undone newest first, which gives back the last
 * durable image exactly; then the changes the mode keeps are redone,
 * oldest first, whole, torn or garbled as it says.  Then the directory
 * changes the mode loses are undone, newest first.  Everything here uses
 * the real syscalls, on crashsim's own descriptors; the model and API are
 * described in crashsim.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashsim.h"
#include "crashsim_int.h"

static uint64_t cs_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

enum verdict { V_KEEP, V_DROP, V_GARBLE, V_TORN };

static int write_all(int fd, const unsigned char *p, uint64_t len, uint64_t off)
{
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Undo every change of f, newest first: the last durable image. */
static int undo_all(struct cfile *f, struct change **v)
{
	uint32_t i;
	struct change *c;
	int ret;

	for (i = f->nchanges; i-- > 0;) {
		c = v[i];
		if (ftruncate(f->fd, (off_t)c->old_size) < 0)
			return -errno;
		ret = write_all(f->fd, c->old, c->old_len, c->old_pos);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Redo change c as verdict says. */
static int redo(struct cfile *f, struct change *c, enum verdict vd,
		uint64_t *seed)
{
	unsigned char *junk;
	uint64_t i, keep;
	int ret;

	if (vd == V_DROP)
		return 0;
	if (c->is_trunc)
		return ftruncate(f->fd, (off_t)c->off) < 0 ? -errno : 0;
	if (vd == V_KEEP)
		return write_all(f->fd, c->data, c->len, c->off);
	if (vd == V_TORN) {
		keep = cs_rand(seed) % c->len; /* 0 .. len-1 bytes survive */
		return write_all(f->fd, c->data, keep, c->off);
	}
	junk = malloc(c->len);
	if (!junk)
		return -ENOMEM;
	for (i = 0; i < c->len; i++)
		junk[i] = (unsigned char)cs_rand(seed);
	ret = write_all(f->fd, junk, c->len, c->off);
	free(junk);
	return ret;
}

/* The verdict for change i of n in f. */
static enum verdict choose(enum crashsim_mode mode, struct change *c,
			   uint32_t i, uint32_t cut, uint64_t *seed)
{
	switch (mode) {
	case CRASHSIM_KEEP:
		return V_KEEP;
	case CRASHSIM_DROP:
		return V_DROP;
	case CRASHSIM_GARBLE:
		return c->is_trunc ? V_DROP : V_GARBLE;
	case CRASHSIM_RANDOM:
		if (c->is_trunc)
			return cs_rand(seed) & 1 ? V_KEEP : V_DROP;
		return (enum verdict)(cs_rand(seed) % 3);
	case CRASHSIM_PREFIX:
		if (i < cut)
			return V_KEEP;
		if (i == cut && !c->is_trunc)
			return V_TORN;
		return V_DROP;
	}
	return V_DROP;
}

static void count(struct crashsim_stats *st, enum verdict vd)
{
	switch (vd) {
	case V_KEEP:
		st->kept++;
		break;
	case V_DROP:
		st->dropped++;
		break;
	case V_GARBLE:
		st->garbled++;
		break;
	case V_TORN:
		st->torn++;
		break;
	}
}

/* An inode an undo brought back as a new one (a restored unlinked file,
 * a recreated directory): older changes name it by its old number. */
struct reborn {
	dev_t dev;
	ino_t old_ino, new_ino;
	struct reborn *next;
};

static struct reborn *reborns; /* protected by cs_lock, during a crash */

static void reborn_add(dev_t dev, ino_t old_ino, int dirfd, const char *name)
{
	struct reborn *r;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	r = malloc(sizeof(*r));
	if (!r)
		return; /* later undos of it count as conflicts */
	r->dev = dev;
	r->old_ino = old_ino;
	r->new_ino = st.st_ino;
	r->next = reborns;
	reborns = r;
}

static void reborn_clear(void)
{
	struct reborn *r, *next;

	for (r = reborns; r; r = next) {
		next = r->next;
		free(r);
	}
	reborns = NULL;
}

/* dirfd/name is inode (dev, ino), or what an undo made of it. */
static int same_inode(int dirfd, const char *name, dev_t dev, ino_t ino)
{
	struct reborn *r;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != dev)
		return 0;
	if (st.st_ino == ino)
		return 1;
	for (r = reborns; r; r = r->next)
		if (r->dev == dev && r->old_ino == ino && r->new_ino == st.st_ino)
			return 1;
	return 0;
}

static int absent(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	       errno == ENOENT;
}

/* Remove dirfd/name and what is below it, with the real syscalls. */
static int rm_tree(int dfd, const char *name)
{
	struct dirent *de;
	struct stat st;
	DIR *dp;
	int fd, ret = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return -errno;
	}
	while (ret == 0 && (de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			ret = rm_tree(dirfd(dp), de->d_name);
	}
	closedir(dp);
	if (ret < 0)
		return ret;
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Bring back dirfd/name as a copy of the (unlinked) inode behind src,
 * whose data the crash has already put back to its durable image. */
static int restore_copy(int dirfd, const char *name, int src, mode_t mode)
{
	unsigned char buf[65536];
	uint64_t off = 0;
	ssize_t n;
	int out, ret = 0;

	out = openat(dirfd, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0)
		return -errno;
	while ((n = pread(src, buf, sizeof(buf), (off_t)off)) > 0) {
		ret = write_all(out, buf, (uint64_t)n, off);
		if (ret < 0)
			break;
		off += (uint64_t)n;
	}
	if (n < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && fchmod(out, mode) < 0)
		ret = -errno;
	close(out);
	return ret;
}

/* A removed directory (dev, ino) came back as dirfd/name: older changes
 * recorded in it now apply to the new one. */
static void cdir_reborn(struct cdir *dirs, dev_t dev, ino_t ino, int dirfd,
			const char *name)
{
	struct cdir *c;
	int fd;

	for (c = dirs; c; c = c->next) {
		if (c->dev != dev || c->ino != ino)
			continue;
		fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			close(c->fd);
			c->fd = fd;
		}
		return;
	}
}

static int undo_dir_names(struct dchange *d, struct cdir *dirs)
{
	int dfd = d->dir->fd, dfd2 = d->dir2 ? d->dir2->fd : -1, ret;

	switch (d->op) {
	case D_CREATE:
	case D_MKDIR:
		if (!same_inode(dfd, d->name, d->dev, d->ino))
			return 0;
		ret = rm_tree(dfd, d->name);
		return ret < 0 ? ret : 1;
	case D_UNLINK:
		if (!absent(dfd, d->name))
			return 0;
		ret = restore_copy(dfd, d->name, d->old_fd, d->old_mode);
		if (ret < 0)
			return ret;
		reborn_add(d->dev, d->ino, dfd, d->name);
		return 1;
	case D_RMDIR:
		if (!absent(dfd, d->name))
			return 0;
		if (mkdirat(dfd, d->name, d->old_mode) < 0)
			return -errno;
		cdir_reborn(dirs, d->dev, d->ino, dfd, d->name);
		reborn_add(d->dev, d->ino, dfd, d->name);
		return 1;
	case D_RENAME:
		if (!same_inode(dfd2, d->name2, d->dev, d->ino) ||
		    !absent(dfd, d->name))
			return 0;
		if (renameat(dfd2, d->name2, dfd, d->name) < 0)
			return -errno;
		ret = 0;
		if (d->old_kind == 1) {
			ret = restore_copy(dfd2, d->name2, d->old_fd,
					   d->old_mode);
		} else if (d->old_kind == 2) {
			if (mkdirat(dfd2, d->name2, d->old_mode) < 0)
				ret = -errno;
			else
				cdir_reborn(dirs, d->dev, d->old_ino, dfd2,
					    d->name2);
		}
		if (ret == 0 && d->old_kind)
			reborn_add(d->dev, d->old_ino, dfd2, d->name2);
		return ret < 0 ? ret : 1;
	case D_EXCHANGE:
		if (!same_inode(dfd2, d->name2, d->dev, d->ino))
			return 0;
		if (renameat2(dfd, d->name, dfd2, d->name2, RENAME_EXCHANGE) < 0)
			return -errno;
		return 1;
	}
	return 0;
}

/* Undo directory change d.  1 if done, 0 if the names had moved on (a
 * conflict: also when the directory it was made in is gone for good),
 * -errno on failure. */
static int undo_dir(struct dchange *d, struct cdir *dirs)
{
	int ret = undo_dir_names(d, dirs);

	return ret == -ENOENT ? 0 : ret;
}

/* The directory half of the crash: keep the oldest changes up to the
 * mode's cut, undo the rest newest first. */
static int crash_dirs(const struct crashsim_log *log, enum crashsim_mode mode,
		      uint64_t *s, struct crashsim_stats *st)
{
	struct dchange **v, *d;
	uint32_t n = 0, i, cut;
	int ret = 0, r;

	if (!log->ndchanges)
		return 0;
	v = malloc(sizeof(*v) * log->ndchanges);
	if (!v)
		return -ENOMEM;
	for (d = log->dhead; d; d = d->next)
		v[n++] = d;
	switch (mode) {
	case CRASHSIM_KEEP:
		cut = n;
		break;
	case CRASHSIM_DROP:
	case CRASHSIM_GARBLE:
		cut = 0;
		break;
	default:
		cut = (uint32_t)(cs_rand(s) % (n + 1u));
		break;
	}
	st->dir_kept = cut;
	for (i = n; i-- > cut && ret == 0;) {
		r = undo_dir(v[i], log->dirs);
		if (r < 0)
			ret = r;
		else if (r == 0)
			st->dir_conflicts++;
		else
			st->dir_undone++;
	}
	reborn_clear();
	free(v);
	return ret;
}

/* Play the power cut over log (see crashsim_int.h). */
int crashsim_replay(const struct crashsim_log *log, enum crashsim_mode mode,
		    uint64_t seed, struct crashsim_stats *stats)
{
	struct crashsim_stats st;
	struct change **v = NULL, *c;
	struct cfile *f;
	enum verdict vd;
	uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
	uint32_t i, cut;
	int ret = 0;

	memset(&st, 0, sizeof(st));
	for (f = log->files; f && ret == 0; f = f->next) {
		st.files++;
		free(v);
		v = malloc(sizeof(*v) * (f->nchanges ? f->nchanges : 1));
		if (!v) {
			ret = -ENOMEM;
			break;
		}
		for (i = 0, c = f->head; c; c = c->next)
			v[i++] = c;
		if (mode != CRASHSIM_KEEP)
			ret = undo_all(f, v);
		cut = (uint32_t)(cs_rand(&s) % (f->nchanges + 1u));
		for (i = 0; i < f->nchanges && ret == 0; i++) {
			vd = choose(mode, v[i], i, cut, &s);
			count(&st, vd);
			if (mode != CRASHSIM_KEEP)
				ret = redo(f, v[i], vd, &s);
		}
	}
	free(v);
	/* After the data: a restored name copies its inode's durable image. */
	if (ret == 0)
		ret = crash_dirs(log, mode, &s, &st);
	if (stats)
		*stats = st;
	return ret;
}

/* A mode by name. */
int crashsim_mode_parse(const char *name, enum crashsim_mode *mode)
{
	static const char *const names[] = {"keep", "drop", "garble",
					    "random", "prefix"};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*mode = (enum crashsim_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}
