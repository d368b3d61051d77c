/*
 * groupstore.c - consumer groups' committed positions in the data
 * directory: the group files' format, loading them, and replacing one
 * atomically on every change (groupstore.h).
 *
 * Each group is held in memory whole (options and positions) and every
 * change rewrites its file with io_write_atomic (write a .tmp, fsync,
 * rename, fsync the directory), under the store's one mutex, so files
 * reach the disk in the order the changes were made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diag.h"
#include "groupstore.h"
#include "io.h"
#include "layout.h"

#define MAGIC_LINE "fluxfs-group 1\n"
#define FILE_MAX (64u << 20)

struct group {
	char *name;
	struct group_opts opts;
	struct group_pos *pos;
	size_t npos, cap;
	struct group *next;
};

struct groupstore {
	pthread_mutex_t lock;
	int dirfd;  /* DATA_DIR/.groups; -1 until the first group */
	int rootfd; /* DATA_DIR, to make .groups (-1: read-only) */
	int readonly;
	struct group *head;  /* protected by lock; creation order */
	struct group **tail; /* protected by lock */
};

static const struct group_opts default_opts = {0, 0,
					       GROUPSTORE_COMMIT_MS_DEFAULT};

/* ---- the format ------------------------------------------------------ */

/* Encode opts and positions as a group file. */
int groupstore_encode(const struct group_opts *opts,
		      const struct group_pos *pos, size_t npos, char **out,
		      size_t *len)
{
	size_t cap = 160 + npos * 90, at = 0, i;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	at += (size_t)snprintf(buf + at, cap - at,
			       MAGIC_LINE "auto_offset_reset=%s\nfollow=%d\n"
					  "commit_ms=%" PRIu32 "\n",
			       opts->latest ? "latest" : "earliest",
			       opts->follow ? 1 : 0, opts->commit_ms);
	for (i = 0; i < npos; i++)
		at += (size_t)snprintf(buf + at, cap - at,
				       "pos %" PRIu64 " %" PRIu64 " %" PRIu64
				       " %" PRId64 "\n",
				       pos[i].ino, pos[i].byte, pos[i].offset,
				       pos[i].commit_ms);
	*out = buf;
	*len = layout_text_crc_put(buf, at, cap);
	return 0;
}

/* One "key=value" line's value, or NULL. */
static const char *value_of(const char *line, const char *key)
{
	size_t k = strlen(key);

	return !strncmp(line, key, k) && line[k] == '=' ? line + k + 1 : NULL;
}

/* Parse a group file (text of len bytes). */
int groupstore_decode(const char *text, size_t len, struct group_opts *opts,
		      struct group_pos **out, size_t *npos)
{
	struct group_pos *pos = NULL, *grown, p;
	size_t n = 0, cap = 0, body, at;
	char line[256], *nl, extra;
	const char *v;
	int ret = -EBADMSG;

	*opts = default_opts;
	if (layout_text_crc_check(text, len, MAGIC_LINE, &body) < 0)
		return -EBADMSG;
	for (at = strlen(MAGIC_LINE); at < body; at += strlen(line) + 1) {
		nl = memchr(text + at, '\n', body - at);
		if (!nl || (size_t)(nl - (text + at)) >= sizeof(line))
			goto out;
		memcpy(line, text + at, (size_t)(nl - (text + at)));
		line[nl - (text + at)] = '\0';
		if ((v = value_of(line, "auto_offset_reset"))) {
			if (strcmp(v, "earliest") && strcmp(v, "latest"))
				goto out;
			opts->latest = !strcmp(v, "latest");
		} else if ((v = value_of(line, "follow"))) {
			if (strcmp(v, "0") && strcmp(v, "1"))
				goto out;
			opts->follow = *v == '1';
		} else if ((v = value_of(line, "commit_ms"))) {
			if (sscanf(v, "%" SCNu32 "%c", &opts->commit_ms,
				   &extra) != 1)
				goto out;
		} else if (sscanf(line,
				  "pos %" SCNu64 " %" SCNu64 " %" SCNu64
				  " %" SCNd64 "%c",
				  &p.ino, &p.byte, &p.offset, &p.commit_ms,
				  &extra) == 4) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				grown = realloc(pos, cap * sizeof(*pos));
				if (!grown) {
					ret = -ENOMEM;
					goto out;
				}
				pos = grown;
			}
			pos[n++] = p;
		} else {
			goto out;
		}
	}
	*out = pos;
	*npos = n;
	return 0;
out:
	free(pos);
	return ret;
}

/* ---- names and groups ------------------------------------------------ */

/* The rules of topic names (layout.h). */
int groupstore_check_name(const char *name)
{
	return layout_check_name(name, GROUPSTORE_NAME_MAX, 1);
}

static void group_free(struct group *g)
{
	free(g->name);
	free(g->pos);
	free(g);
}

/* Called with gs->lock. */
static struct group *find(struct groupstore *gs, const char *name)
{
	struct group *g;

	for (g = gs->head; g; g = g->next)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

static void file_name(const char *group, char *buf, size_t size)
{
	snprintf(buf, size, "%s" GROUPSTORE_SUFFIX, group);
}

/* Write g's file, durably (gs->lock held). */
/* Make DATA_DIR/.groups when the first group is stored (a data directory
 * without groups has none).  A new .groups must outlive a power cut, or
 * every group file later written (and synced) in it would vanish with
 * it: the data directory is synced after it is made. */
static int make_dir(struct groupstore *gs)
{
	int ret;

	if (gs->dirfd >= 0)
		return 0;
	ret = io_mkdir_durable(gs->rootfd, GROUPSTORE_DIR, 0755);
	if (ret < 0)
		return ret;
	gs->dirfd = ret;
	return 0;
}

static int store(struct groupstore *gs, struct group *g)
{
	char fname[GROUPSTORE_NAME_MAX + 16], *buf;
	size_t len;
	int ret;

	if (gs->readonly)
		return -EROFS;
	ret = groupstore_encode(&g->opts, g->pos, g->npos, &buf, &len);
	if (ret < 0)
		return ret;
	file_name(g->name, fname, sizeof(fname));
	ret = make_dir(gs);
	if (ret == 0)
		ret = io_write_atomic(gs->dirfd, fname, buf, len);
	free(buf);
	if (ret < 0)
		diag_err("cannot write consumer group '%s': %s", g->name,
			 strerror(-ret));
	return ret;
}

static struct group *group_new(const char *name)
{
	struct group *g = calloc(1, sizeof(*g));

	if (!g || !(g->name = strdup(name))) {
		free(g);
		return NULL;
	}
	g->opts = default_opts;
	return g;
}

static void append(struct groupstore *gs, struct group *g)
{
	*gs->tail = g;
	gs->tail = &g->next;
}

/* Load one group file (name ends in the suffix). */
static int load_one(struct groupstore *gs, const char *fname)
{
	char gname[GROUPSTORE_NAME_MAX + 16], *text = NULL;
	size_t flen = strlen(fname) - strlen(GROUPSTORE_SUFFIX);
	struct group *g = NULL;
	size_t len = 0;
	int ret;

	if (flen >= sizeof(gname))
		return -ENAMETOOLONG;
	memcpy(gname, fname, flen);
	gname[flen] = '\0';
	if (groupstore_check_name(gname) < 0)
		return -EINVAL;
	ret = io_read_whole(gs->dirfd, fname, FILE_MAX, &text, &len);
	if (ret == 0 && !(g = group_new(gname)))
		ret = -ENOMEM;
	if (ret == 0)
		ret = groupstore_decode(text, len, &g->opts, &g->pos,
					&g->npos);
	free(text);
	if (ret < 0 || !g) {
		if (g)
			group_free(g);
		return ret < 0 ? ret : -ENOMEM;
	}
	g->cap = g->npos;
	append(gs, g);
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && !strcmp(s + a - b, suffix);
}

/* Open the store below rootfd. */
int groupstore_open(int rootfd, int readonly, struct groupstore **out)
{
	struct groupstore *gs = calloc(1, sizeof(*gs));
	struct dirent *de;
	DIR *dir;
	int ret;

	if (!gs)
		return -ENOMEM;
	pthread_mutex_init(&gs->lock, NULL);
	gs->tail = &gs->head;
	gs->readonly = readonly;
	gs->rootfd = -1;
	if (!readonly) {
		gs->rootfd = io_opendirat(rootfd, ".");
		if (gs->rootfd < 0) {
			ret = gs->rootfd;
			gs->rootfd = -1;
			goto fail;
		}
	}
	gs->dirfd = io_opendirat(rootfd, GROUPSTORE_DIR);
	if (gs->dirfd == -ENOENT) {
		gs->dirfd = -1; /* no group was ever made: make_dir */
		*out = gs;
		return 0;
	}
	if (gs->dirfd < 0) {
		ret = gs->dirfd;
		goto fail;
	}
	ret = io_opendir_stream(rootfd, GROUPSTORE_DIR, &dir);
	if (ret < 0)
		goto fail_fd;
	while ((ret = io_readdir(dir, &de)) > 0) {
		if (ends_with(de->d_name, GROUPSTORE_SUFFIX ".tmp")) {
			/* A commit that a crash cut short: the file it
			 * was to replace is whole. */
			if (!readonly)
				io_unlinkat(gs->dirfd, de->d_name, 0);
			continue;
		}
		if (!ends_with(de->d_name, GROUPSTORE_SUFFIX))
			continue;
		ret = load_one(gs, de->d_name);
		if (ret < 0)
			diag_err("consumer group file '" GROUPSTORE_DIR
				 "/%s' left out: %s",
				 de->d_name, strerror(-ret));
	}
	io_closedir(dir);
	if (ret < 0)
		goto fail_fd;
	*out = gs;
	return 0;
fail_fd:
	io_close(gs->dirfd);
fail:
	gs->dirfd = -1;
	groupstore_close(gs);
	return ret;
}

/* Close the store (everything is already on disk). */
void groupstore_close(struct groupstore *gs)
{
	struct group *g, *next;

	if (!gs)
		return;
	for (g = gs->head; g; g = next) {
		next = g->next;
		group_free(g);
	}
	if (gs->dirfd >= 0)
		io_close(gs->dirfd);
	if (gs->rootfd >= 0)
		io_close(gs->rootfd);
	pthread_mutex_destroy(&gs->lock);
	free(gs);
}

/* Create a group (durable once it returns). */
int groupstore_create(struct groupstore *gs, const char *name)
{
	struct group *g;
	int ret = groupstore_check_name(name);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&gs->lock);
	if (find(gs, name)) {
		ret = -EEXIST;
		goto out;
	}
	g = group_new(name);
	if (!g) {
		ret = -ENOMEM;
		goto out;
	}
	ret = store(gs, g);
	if (ret < 0)
		group_free(g);
	else
		append(gs, g);
out:
	pthread_mutex_unlock(&gs->lock);
	return ret;
}

/* Remove a group and its file. */
int groupstore_remove(struct groupstore *gs, const char *name)
{
	char fname[GROUPSTORE_NAME_MAX + 16];
	struct group **pp, *g;
	int ret = -ENOENT;

	pthread_mutex_lock(&gs->lock);
	for (pp = &gs->head; (g = *pp); pp = &g->next) {
		if (strcmp(g->name, name))
			continue;
		file_name(name, fname, sizeof(fname));
		ret = gs->readonly ? -EROFS : io_unlinkat(gs->dirfd, fname, 0);
		if (ret == 0 || ret == -ENOENT)
			ret = io_fsync_dir(gs->dirfd);
		if (ret < 0)
			break;
		*pp = g->next;
		if (gs->tail == &g->next)
			gs->tail = pp;
		group_free(g);
		break;
	}
	pthread_mutex_unlock(&gs->lock);
	return ret;
}

int groupstore_exists(struct groupstore *gs, const char *name)
{
	int ret;

	pthread_mutex_lock(&gs->lock);
	ret = find(gs, name) != NULL;
	pthread_mutex_unlock(&gs->lock);
	return ret;
}

/* Every group's name (under the lock: cb must not call back in). */
int groupstore_list(struct groupstore *gs,
		    int (*cb)(void *arg, const char *name), void *arg)
{
	struct group *g;
	int ret = 0;

	pthread_mutex_lock(&gs->lock);
	for (g = gs->head; g && ret == 0; g = g->next)
		ret = cb(arg, g->name);
	pthread_mutex_unlock(&gs->lock);
	return ret < 0 ? ret : 0;
}

/* A copy of every group's name. */
int groupstore_names(struct groupstore *gs, char ***out, size_t *n)
{
	struct group *g;
	char **names;
	size_t count = 0, i = 0;

	pthread_mutex_lock(&gs->lock);
	for (g = gs->head; g; g = g->next)
		count++;
	names = calloc(count + 1, sizeof(*names));
	for (g = gs->head; names && g; g = g->next)
		if (!(names[i++] = strdup(g->name))) {
			groupstore_names_free(names, i);
			names = NULL;
		}
	pthread_mutex_unlock(&gs->lock);
	if (!names)
		return -ENOMEM;
	*out = names;
	*n = count;
	return 0;
}

void groupstore_names_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int groupstore_get_opts(struct groupstore *gs, const char *name,
			struct group_opts *opts)
{
	struct group *g;

	pthread_mutex_lock(&gs->lock);
	g = find(gs, name);
	if (g)
		*opts = g->opts;
	pthread_mutex_unlock(&gs->lock);
	return g ? 0 : -ENOENT;
}

/* Change a group's options, durably (unchanged if the write fails). */
int groupstore_set_opts(struct groupstore *gs, const char *name,
			const struct group_opts *opts)
{
	struct group_opts old;
	struct group *g;
	int ret = -ENOENT;

	pthread_mutex_lock(&gs->lock);
	g = find(gs, name);
	if (g) {
		old = g->opts;
		g->opts = *opts;
		ret = store(gs, g);
		if (ret < 0)
			g->opts = old;
	}
	pthread_mutex_unlock(&gs->lock);
	return ret;
}

/* Called with gs->lock: g's entry for ino, or NULL. */
static struct group_pos *pos_of(struct group *g, uint64_t ino)
{
	size_t i;

	for (i = 0; i < g->npos; i++)
		if (g->pos[i].ino == ino)
			return &g->pos[i];
	return NULL;
}

int groupstore_get(struct groupstore *gs, const char *name, uint64_t ino,
		   struct group_pos *pos)
{
	struct group_pos *p = NULL;
	struct group *g;

	pthread_mutex_lock(&gs->lock);
	g = find(gs, name);
	if (g && (p = pos_of(g, ino)))
		*pos = *p;
	pthread_mutex_unlock(&gs->lock);
	return !g ? -ENOENT : p ? 0 : -ENODATA;
}

/* Set or clear one position, durably; on a failed write the group keeps
 * what it had (memory and disk agree). */
int groupstore_commit(struct groupstore *gs, const char *name, uint64_t ino,
		      const struct group_pos *pos)
{
	struct group_pos *p, old, *grown;
	struct group *g;
	size_t idx;
	int ret = -ENOENT, had;

	pthread_mutex_lock(&gs->lock);
	g = find(gs, name);
	if (!g)
		goto out;
	p = pos_of(g, ino);
	had = p != NULL;
	if (!pos && !had) {
		ret = 0;
		goto out;
	}
	if (!had) {
		if (g->npos == g->cap) {
			g->cap = g->cap ? g->cap * 2 : 4;
			grown = realloc(g->pos, g->cap * sizeof(*grown));
			if (!grown) {
				ret = -ENOMEM;
				goto out;
			}
			g->pos = grown;
		}
		p = &g->pos[g->npos++];
		memset(&old, 0, sizeof(old));
	} else {
		old = *p;
	}
	idx = (size_t)(p - g->pos);
	if (pos) {
		*p = *pos;
		p->ino = ino;
	} else {
		g->pos[idx] = g->pos[--g->npos];
	}
	ret = store(gs, g);
	if (ret < 0) {
		if (!had) {
			g->npos--;
		} else if (pos) {
			*p = old;
		} else {
			g->pos[g->npos] = g->pos[idx];
			g->pos[idx] = old;
			g->npos++;
		}
	}
out:
	pthread_mutex_unlock(&gs->lock);
	return ret;
}

int groupstore_positions(struct groupstore *gs, const char *name,
			 int (*cb)(void *arg, const struct group_pos *pos),
			 void *arg)
{
	struct group *g;
	size_t i;
	int ret = -ENOENT;

	pthread_mutex_lock(&gs->lock);
	g = find(gs, name);
	if (g)
		for (i = 0, ret = 0; i < g->npos && ret == 0; i++)
			ret = cb(arg, &g->pos[i]);
	pthread_mutex_unlock(&gs->lock);
	return ret < 0 ? ret : 0;
}

/* Drop positions of partitions that are gone. */
int groupstore_prune(struct groupstore *gs,
		     int (*exists)(void *arg, uint64_t ino), void *arg)
{
	struct group *g;
	size_t i, k, dropped = 0, before;
	int ret = 0, r;

	pthread_mutex_lock(&gs->lock);
	for (g = gs->head; g; g = g->next) {
		before = g->npos;
		for (i = k = 0; i < g->npos; i++)
			if (exists(arg, g->pos[i].ino))
				g->pos[k++] = g->pos[i];
		if (k == before)
			continue;
		g->npos = k;
		dropped += before - k;
		r = store(gs, g);
		if (r < 0 && ret == 0)
			ret = r;
	}
	pthread_mutex_unlock(&gs->lock);
	return ret < 0 ? ret : (int)dropped;
}
