/*
 * snapstore.c - the snapshots of a data directory: the .snap files'
 * format, loading them, writing a new one atomically and removing one
 * (snapstore.h).
 *
 * Each snapshot is held in memory whole (a few hundred bytes per
 * partition) and never changes; creating one writes its file with
 * io_write_atomic (write a .tmp, fsync, rename, fsync the directory), so
 * a crash leaves the file whole or absent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "io.h"
#include "layout.h"
#include "snapstore.h"

#define MAGIC_LINE "fluxfs-snapshot 1\n"
#define FILE_MAX (256u << 20)
/* One part line at most: the numbers and two names. */
#define LINE_MAX_LEN (4 * 21 + 2 * SNAPSTORE_PART_NAME_MAX + 16)

struct snap {
	char *name;
	int64_t created_ms;
	struct snap_part *parts;
	size_t nparts;
	struct snap *next;
};

struct snapstore {
	pthread_mutex_t lock;
	int dirfd;  /* DATA_DIR/.snapshots; -1 until the first snapshot */
	int rootfd; /* DATA_DIR, to make .snapshots (-1: read-only) */
	int readonly;
	struct snap *head;  /* protected by lock; creation order */
	struct snap **tail; /* protected by lock */
};

/* ---- the format ------------------------------------------------------ */

int snapstore_encode(int64_t created_ms, const struct snap_part *parts,
		     size_t nparts, char **out, size_t *len)
{
	size_t cap = 64 + nparts * LINE_MAX_LEN, at = 0, i;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	at += (size_t)snprintf(buf, cap, MAGIC_LINE "created_ms=%" PRId64 "\n",
			       created_ms);
	for (i = 0; i < nparts; i++)
		at += (size_t)snprintf(
			buf + at, cap - at,
			"part %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			" %s/%s\n",
			parts[i].ino, parts[i].start_byte,
			parts[i].start_offset, parts[i].end_byte,
			parts[i].topic, parts[i].part);
	*out = buf;
	*len = layout_text_crc_put(buf, at, cap);
	return 0;
}

/* "topic/partition" into p's names, each by the naming rule. */
static int parse_names(const char *s, struct snap_part *p)
{
	const char *slash = strchr(s, '/');
	size_t tl;

	if (!slash || (tl = (size_t)(slash - s)) > SNAPSTORE_PART_NAME_MAX ||
	    strlen(slash + 1) > SNAPSTORE_PART_NAME_MAX)
		return -1;
	memcpy(p->topic, s, tl);
	p->topic[tl] = '\0';
	strcpy(p->part, slash + 1);
	return layout_check_name(p->topic, SNAPSTORE_PART_NAME_MAX, 1) ||
		       layout_check_name(p->part, SNAPSTORE_PART_NAME_MAX, 0)
		       ? -1
		       : 0;
}

int snapstore_decode(const char *text, size_t len, int64_t *created_ms,
		     struct snap_part **out, size_t *nparts)
{
	struct snap_part *parts = NULL, *grown, p;
	size_t n = 0, cap = 0, body, at, ll;
	char line[LINE_MAX_LEN + 1], extra;
	int names, ret = -EBADMSG, have_time = 0;

	if (layout_text_crc_check(text, len, MAGIC_LINE, &body) < 0)
		return -EBADMSG;
	for (at = strlen(MAGIC_LINE); at < body; at += ll + 1) {
		const char *nl = memchr(text + at, '\n', body - at);

		if (!nl || (ll = (size_t)(nl - (text + at))) >= sizeof(line))
			goto out;
		memcpy(line, text + at, ll);
		line[ll] = '\0';
		if (!have_time) {
			if (sscanf(line, "created_ms=%" SCNd64 "%c", created_ms,
				   &extra) != 1)
				goto out;
			have_time = 1;
			continue;
		}
		memset(&p, 0, sizeof(p));
		names = 0;
		if (sscanf(line,
			   "part %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %n",
			   &p.ino, &p.start_byte, &p.start_offset, &p.end_byte,
			   &names) != 4 ||
		    !names || parse_names(line + names, &p) < 0 ||
		    p.start_byte > p.end_byte)
			goto out;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(parts, cap * sizeof(*parts));
			if (!grown) {
				ret = -ENOMEM;
				goto out;
			}
			parts = grown;
		}
		parts[n++] = p;
	}
	if (!have_time)
		goto out;
	*out = parts;
	*nparts = n;
	return 0;
out:
	free(parts);
	return ret;
}

int snapstore_read_file(int dirfd, const char *file, int64_t *created_ms,
			struct snap_part **parts, size_t *nparts)
{
	char *text = NULL;
	size_t len = 0;
	int ret = io_read_whole(dirfd, file, FILE_MAX, &text, &len);

	if (ret == 0)
		ret = snapstore_decode(text, len, created_ms, parts, nparts);
	free(text);
	return ret;
}

/* ---- the store ------------------------------------------------------- */

int snapstore_check_name(const char *name)
{
	return layout_check_name(name, SNAPSTORE_NAME_MAX, 1);
}

static void snap_free(struct snap *s)
{
	free(s->name);
	free(s->parts);
	free(s);
}

/* Called with ss->lock. */
static struct snap *find(struct snapstore *ss, const char *name)
{
	struct snap *s;

	for (s = ss->head; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static void file_name(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s" SNAPSTORE_SUFFIX, name);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && !strcmp(s + a - b, suffix);
}

static void append(struct snapstore *ss, struct snap *s)
{
	*ss->tail = s;
	ss->tail = &s->next;
}

/* Loading: keep the list in creation order, whatever readdir's. */
static void insert_by_time(struct snapstore *ss, struct snap *s)
{
	struct snap **pp = &ss->head;

	while (*pp && (*pp)->created_ms <= s->created_ms)
		pp = &(*pp)->next;
	s->next = *pp;
	*pp = s;
	if (!s->next)
		ss->tail = &s->next;
}

static int load_one(struct snapstore *ss, const char *fname)
{
	size_t flen = strlen(fname) - strlen(SNAPSTORE_SUFFIX);
	struct snap *s;
	int ret;

	if (flen > SNAPSTORE_NAME_MAX)
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strndup(fname, flen))) {
		free(s);
		return -ENOMEM;
	}
	ret = snapstore_check_name(s->name);
	if (ret == 0)
		ret = snapstore_read_file(ss->dirfd, fname, &s->created_ms,
					  &s->parts, &s->nparts);
	if (ret < 0) {
		snap_free(s);
		return ret;
	}
	insert_by_time(ss, s);
	return 0;
}

int snapstore_open(int rootfd, int readonly, struct snapstore **out)
{
	struct snapstore *ss = calloc(1, sizeof(*ss));
	struct dirent *de;
	DIR *dir;
	int ret;

	if (!ss)
		return -ENOMEM;
	pthread_mutex_init(&ss->lock, NULL);
	ss->tail = &ss->head;
	ss->readonly = readonly;
	ss->rootfd = -1;
	ss->dirfd = -1;
	if (!readonly) {
		ss->rootfd = io_opendirat(rootfd, ".");
		if (ss->rootfd < 0) {
			ret = ss->rootfd;
			ss->rootfd = -1;
			goto fail;
		}
	}
	ret = io_opendirat(rootfd, SNAPSTORE_DIR);
	if (ret == -ENOENT) { /* no snapshot was ever taken */
		*out = ss;
		return 0;
	}
	if (ret < 0)
		goto fail;
	ss->dirfd = ret;
	ret = io_opendir_stream(rootfd, SNAPSTORE_DIR, &dir);
	if (ret < 0)
		goto fail;
	while ((ret = io_readdir(dir, &de)) > 0) {
		if (ends_with(de->d_name, SNAPSTORE_SUFFIX ".tmp")) {
			/* A snapshot a crash cut short: it was never
			 * taken (mkdir had not returned). */
			if (!readonly)
				io_unlinkat(ss->dirfd, de->d_name, 0);
			continue;
		}
		if (!ends_with(de->d_name, SNAPSTORE_SUFFIX))
			continue;
		ret = load_one(ss, de->d_name);
		if (ret < 0)
			diag_err("snapshot file '" SNAPSTORE_DIR
				 "/%s' left out: %s",
				 de->d_name, strerror(-ret));
	}
	io_closedir(dir);
	if (ret < 0)
		goto fail;
	*out = ss;
	return 0;
fail:
	snapstore_close(ss);
	return ret;
}

void snapstore_close(struct snapstore *ss)
{
	struct snap *s, *next;

	if (!ss)
		return;
	for (s = ss->head; s; s = next) {
		next = s->next;
		snap_free(s);
	}
	if (ss->dirfd >= 0)
		io_close(ss->dirfd);
	if (ss->rootfd >= 0)
		io_close(ss->rootfd);
	pthread_mutex_destroy(&ss->lock);
	free(ss);
}

/* Make DATA_DIR/.snapshots with the first snapshot, durably: a snapshot
 * file synced into a directory that a power cut then loses is lost. */
static int make_dir(struct snapstore *ss)
{
	int ret;

	if (ss->dirfd >= 0)
		return 0;
	ret = io_mkdir_durable(ss->rootfd, SNAPSTORE_DIR, 0755);
	if (ret < 0)
		return ret;
	ss->dirfd = ret;
	return 0;
}

static int part_cmp(const void *a, const void *b)
{
	const struct snap_part *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);

	return c ? c : strcmp(x->part, y->part);
}

int snapstore_create(struct snapstore *ss, const char *name,
		     int64_t created_ms, const struct snap_part *parts,
		     size_t nparts)
{
	char fname[SNAPSTORE_NAME_MAX + 16], *buf = NULL;
	struct snap *s = NULL;
	size_t len;
	int ret = snapstore_check_name(name);

	if (ret < 0)
		return ret;
	if (ss->readonly)
		return -EROFS;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(name)) ||
	    !(s->parts = malloc((nparts ? nparts : 1) * sizeof(*parts)))) {
		if (s)
			snap_free(s);
		return -ENOMEM;
	}
	if (nparts) /* parts may be NULL then */
		memcpy(s->parts, parts, nparts * sizeof(*parts));
	s->nparts = nparts;
	s->created_ms = created_ms;
	qsort(s->parts, nparts, sizeof(*parts), part_cmp);
	pthread_mutex_lock(&ss->lock);
	if (find(ss, name)) {
		ret = -EEXIST;
		goto out;
	}
	ret = snapstore_encode(created_ms, s->parts, nparts, &buf, &len);
	if (ret == 0)
		ret = make_dir(ss);
	file_name(name, fname, sizeof(fname));
	if (ret == 0)
		ret = io_write_atomic(ss->dirfd, fname, buf, len);
	if (ret == 0) {
		append(ss, s);
		s = NULL;
	} else if (ret != -EEXIST) {
		diag_err("cannot write snapshot '%s': %s", name,
			 strerror(-ret));
	}
out:
	pthread_mutex_unlock(&ss->lock);
	free(buf);
	if (s)
		snap_free(s);
	return ret;
}

int snapstore_remove(struct snapstore *ss, const char *name)
{
	char fname[SNAPSTORE_NAME_MAX + 16];
	struct snap **pp, *s;
	int ret = -ENOENT;

	pthread_mutex_lock(&ss->lock);
	for (pp = &ss->head; (s = *pp); pp = &s->next) {
		if (strcmp(s->name, name))
			continue;
		file_name(name, fname, sizeof(fname));
		ret = ss->readonly ? -EROFS : io_unlinkat(ss->dirfd, fname, 0);
		if (ret == 0 || ret == -ENOENT)
			ret = io_fsync_dir(ss->dirfd);
		if (ret < 0)
			break;
		*pp = s->next;
		if (ss->tail == &s->next)
			ss->tail = pp;
		snap_free(s);
		break;
	}
	pthread_mutex_unlock(&ss->lock);
	return ret;
}

int snapstore_info(struct snapstore *ss, const char *name, int64_t *created_ms,
		   size_t *nparts)
{
	struct snap *s;

	pthread_mutex_lock(&ss->lock);
	s = find(ss, name);
	if (s) {
		*created_ms = s->created_ms;
		*nparts = s->nparts;
	}
	pthread_mutex_unlock(&ss->lock);
	return s ? 0 : -ENOENT;
}

static uint64_t snap_bytes(const struct snap *s)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < s->nparts; i++)
		sum += s->parts[i].end_byte - s->parts[i].start_byte;
	return sum;
}

int snapstore_list(struct snapstore *ss,
		   int (*cb)(void *arg, const char *name, int64_t created_ms,
			     size_t nparts, uint64_t bytes),
		   void *arg)
{
	struct snap *s;
	int ret = 0;

	pthread_mutex_lock(&ss->lock);
	for (s = ss->head; s && !ret; s = s->next)
		ret = cb(arg, s->name, s->created_ms, s->nparts,
			 snap_bytes(s));
	pthread_mutex_unlock(&ss->lock);
	return ret;
}

uint64_t snapstore_bytes(struct snapstore *ss, const char *name)
{
	struct snap *s;
	uint64_t sum;

	pthread_mutex_lock(&ss->lock);
	s = find(ss, name);
	sum = s ? snap_bytes(s) : 0;
	pthread_mutex_unlock(&ss->lock);
	return sum;
}

int snapstore_parts(struct snapstore *ss, const char *name,
		    int (*cb)(void *arg, const struct snap_part *p), void *arg)
{
	struct snap *s;
	size_t i;
	int ret = -ENOENT;

	pthread_mutex_lock(&ss->lock);
	s = find(ss, name);
	if (s)
		for (ret = 0, i = 0; i < s->nparts && !ret; i++)
			ret = cb(arg, &s->parts[i]);
	pthread_mutex_unlock(&ss->lock);
	return ret;
}

int snapstore_find(struct snapstore *ss, const char *name, const char *topic,
		   const char *part, struct snap_part *out)
{
	struct snap_part key, *p = NULL;
	struct snap *s;

	if (strlen(topic) > SNAPSTORE_PART_NAME_MAX ||
	    strlen(part) > SNAPSTORE_PART_NAME_MAX)
		return -ENOENT;
	strcpy(key.topic, topic);
	strcpy(key.part, part);
	pthread_mutex_lock(&ss->lock);
	s = find(ss, name);
	if (s)
		p = bsearch(&key, s->parts, s->nparts, sizeof(key), part_cmp);
	if (p)
		*out = *p;
	pthread_mutex_unlock(&ss->lock);
	return p ? 0 : -ENOENT;
}

int snapstore_needs(struct snapstore *ss, uint64_t ino, uint64_t *start_offset,
		    uint64_t *start_byte, uint64_t *end_byte)
{
	struct snap *s;
	size_t i;
	int found = 0;

	pthread_mutex_lock(&ss->lock);
	for (s = ss->head; s; s = s->next)
		for (i = 0; i < s->nparts; i++) {
			const struct snap_part *p = &s->parts[i];

			/* An empty one needs nothing kept. */
			if (p->ino != ino || p->end_byte == p->start_byte)
				continue;
			if (!found || p->start_offset < *start_offset)
				*start_offset = p->start_offset;
			if (!found || p->start_byte < *start_byte)
				*start_byte = p->start_byte;
			if (!found || p->end_byte > *end_byte)
				*end_byte = p->end_byte;
			found = 1;
		}
	pthread_mutex_unlock(&ss->lock);
	return found;
}
