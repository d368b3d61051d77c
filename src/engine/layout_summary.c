/*
 * layout_summary.c - the mount summary's format (DATA_DIR/.fluxfs.summary,
 * described in layout.h): writing it at a clean unmount, loading and
 * checking it at mount, and the stamps (inode, size, links, mtime, ctime)
 * that tell whether what it says of a topic still holds.  It is a cache
 * of what the topic directories and partition.meta files say: the
 * registry decides, topic by topic, whether to use it; anything this file
 * cannot vouch for (a bad CRC, a line that does not parse, a summary the
 * clean mark does not name) makes it refuse the whole file, and the
 * mount reads the data directory instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "io.h"
#include "layout.h"

#define SUMMARY_MAGIC "fluxfs-summary 1\n"
#define SUMMARY_MAX_BYTES (1ULL << 31)

void layout_stamp_of(const struct stat *st, struct layout_stamp *s)
{
	s->ino = (uint64_t)st->st_ino;
	s->size = (uint64_t)st->st_size;
	s->nlink = (uint64_t)st->st_nlink;
	s->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
		      st->st_mtim.tv_nsec;
	s->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 +
		      st->st_ctim.tv_nsec;
}

int layout_stamp_same(const struct layout_stamp *a,
		      const struct layout_stamp *b)
{
	return a->ino == b->ino && a->size == b->size &&
	       a->nlink == b->nlink && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

/* ---- writing ------------------------------------------------------------ */

void layout_summary_writer_init(struct layout_summary_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void layout_summary_writer_release(struct layout_summary_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Room for one more line of at most need bytes. */
static int writer_room(struct layout_summary_writer *w, size_t need)
{
	size_t cap;
	char *buf;

	if (w->err)
		return -1;
	if (w->len + need <= w->cap)
		return 0;
	cap = w->cap ? w->cap * 2 : 65536;
	while (cap < w->len + need)
		cap *= 2;
	buf = realloc(w->buf, cap);
	if (!buf) {
		w->err = -ENOMEM;
		return -1;
	}
	w->buf = buf;
	w->cap = cap;
	return 0;
}

static void writer_printf_stamp(struct layout_summary_writer *w,
				const char *kind, const char *name,
				const struct layout_stamp *st)
{
	w->len += (size_t)snprintf(w->buf + w->len, w->cap - w->len,
				   "%s %s %" PRIu64 " %" PRIu64 " %" PRIu64
				   " %" PRId64 " %" PRId64,
				   kind, name, st->ino, st->size, st->nlink,
				   st->mtime_ns, st->ctime_ns);
}

/* Longest line: the keyword, a name (at most 255 bytes) and 17 numbers
 * of at most 20 digits and a sign each, with their spaces. */
#define LINE_MAX_BYTES (8 + 256 + 17 * 23)

void layout_summary_add_topic(struct layout_summary_writer *w,
			      const char *name, const struct layout_stamp *dir,
			      uint32_t nparts)
{
	if (w->len == 0 && writer_room(w, sizeof(SUMMARY_MAGIC)) == 0) {
		memcpy(w->buf, SUMMARY_MAGIC, sizeof(SUMMARY_MAGIC) - 1);
		w->len = sizeof(SUMMARY_MAGIC) - 1;
	}
	if (strlen(name) > 255 || writer_room(w, LINE_MAX_BYTES) < 0) {
		w->err = w->err ? w->err : -ENAMETOOLONG;
		return;
	}
	writer_printf_stamp(w, "topic", name, dir);
	w->len += (size_t)snprintf(w->buf + w->len, w->cap - w->len,
				   " %" PRIu32 "\n", nparts);
}

void layout_summary_add_part(struct layout_summary_writer *w,
			     const char *name, const struct layout_stamp *meta,
			     const struct layout_node_meta *m, int64_t due_ms)
{
	if (w->len == 0 || strlen(name) > 255 ||
	    writer_room(w, LINE_MAX_BYTES) < 0) {
		w->err = w->err ? w->err : -EINVAL;
		return;
	}
	writer_printf_stamp(w, "part", name, meta);
	w->len += (size_t)snprintf(
		w->buf + w->len, w->cap - w->len,
		" %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRId64 " %" PRId64
		" %" PRId64 " %" PRIu64 " %d %" PRIu64 " %" PRId64 "\n",
		m->mode, m->uid, m->gid, m->atime_ns, m->mtime_ns, m->ctime_ns,
		m->mtime_end, m->append_only ? 1 : 0, m->ino,
		due_ms == INT64_MAX ? -1 : due_ms);
}

int layout_summary_write(int rootfd, struct layout_summary_writer *w,
			 uint32_t *crc)
{
	int ret;

	if (w->len == 0 && writer_room(w, sizeof(SUMMARY_MAGIC)) == 0) {
		memcpy(w->buf, SUMMARY_MAGIC, sizeof(SUMMARY_MAGIC) - 1);
		w->len = sizeof(SUMMARY_MAGIC) - 1;
	}
	if (writer_room(w, 32) < 0) {
		ret = w->err;
		goto out;
	}
	*crc = crc32c(0, w->buf, w->len);
	if (*crc == 0) /* 0 means "no summary" in the clean mark */
		*crc = 1;
	w->len += (size_t)snprintf(w->buf + w->len, w->cap - w->len,
				   "crc32c=%08" PRIx32 "\n",
				   crc32c(0, w->buf, w->len));
	ret = io_write_atomic(rootfd, LAYOUT_SUMMARY_FILE, w->buf, w->len);
out:
	layout_summary_writer_release(w);
	return ret;
}

/* ---- loading ------------------------------------------------------------ */

/* Parse the next decimal field of *p, preceded by one space: 0, or -1
 * if there is none. */
static int field_u64(char **p, uint64_t *v)
{
	char *end;

	if (**p != ' ' || (*p)[1] < '0' || (*p)[1] > '9')
		return -1;
	errno = 0;
	*v = strtoull(*p + 1, &end, 10);
	if (errno)
		return -1;
	*p = end;
	return 0;
}

static int field_i64(char **p, int64_t *v)
{
	char *q = *p, *end;
	long long x;

	if (*q != ' ' || !(q[1] == '-' || (q[1] >= '0' && q[1] <= '9')))
		return -1;
	errno = 0;
	x = strtoll(q + 1, &end, 10);
	if (errno || end == q + 1)
		return -1;
	*v = x;
	*p = end;
	return 0;
}

static int field_u32(char **p, uint32_t *v)
{
	uint64_t u;

	if (field_u64(p, &u) < 0 || u > UINT32_MAX)
		return -1;
	*v = (uint32_t)u;
	return 0;
}

static int parse_stamp(char **p, struct layout_stamp *st)
{
	return field_u64(p, &st->ino) | field_u64(p, &st->size) |
	       field_u64(p, &st->nlink) | field_i64(p, &st->mtime_ns) |
	       field_i64(p, &st->ctime_ns);
}

/* Parse line (NUL-terminated, its name ended by a NUL in place of the
 * space after it) as a part line. */
static int parse_part(char *line, struct layout_summary_part *out)
{
	struct layout_node_meta *m = &out->meta;
	uint64_t ao;
	char *p;

	if (strncmp(line, "part ", 5))
		return -1;
	out->name = line + 5;
	p = line + 5 + strlen(line + 5);
	*p = ' ';
	if (parse_stamp(&p, &out->meta_file) | field_u32(&p, &m->mode) |
	    field_u32(&p, &m->uid) | field_u32(&p, &m->gid) |
	    field_i64(&p, &m->atime_ns) | field_i64(&p, &m->mtime_ns) |
	    field_i64(&p, &m->ctime_ns) | field_u64(&p, &m->mtime_end) |
	    field_u64(&p, &ao) | field_u64(&p, &m->ino) |
	    field_i64(&p, &out->due_ms)) {
		*(line + 5 + strcspn(line + 5, " ")) = '\0';
		return -1;
	}
	m->append_only = ao != 0;
	if (out->due_ms < 0)
		out->due_ms = INT64_MAX;
	*(line + 5 + strcspn(line + 5, " ")) = '\0';
	return *p ? -1 : 0;
}

static int parse_topic(char *line, struct layout_summary_topic *t)
{
	char *p;
	int bad;

	t->name = line + 6;
	p = line + 6 + strlen(line + 6);
	*p = ' ';
	bad = parse_stamp(&p, &t->dir) | field_u32(&p, &t->nparts);
	*(line + 6 + strcspn(line + 6, " ")) = '\0';
	return bad || *p ? -1 : 0;
}

static int topic_cmp(const void *a, const void *b)
{
	return strcmp(((const struct layout_summary_topic *)a)->name,
		      ((const struct layout_summary_topic *)b)->name);
}

/* Split text's lines in place and check every one. */
static int summary_index(struct layout_summary *s)
{
	struct layout_summary_topic *t = NULL;
	struct layout_summary_part part;
	size_t pos = sizeof(SUMMARY_MAGIC) - 1, cap = 0, next;
	uint32_t left = 0;
	char *line, *nl, *sp;

	while (pos < s->len) {
		line = s->text + pos;
		nl = memchr(line, '\n', s->len - pos);
		if (!nl)
			return -EINVAL;
		*nl = '\0';
		next = (size_t)(nl - s->text) + 1;
		/* Split the name off: "topic NAME ..." / "part NAME ...". */
		sp = strchr(line, ' ');
		if (!sp || !(sp = strchr(sp + 1, ' ')))
			return -EINVAL;
		*sp = '\0';
		if (!strncmp(line, "topic ", 6)) {
			if (left)
				return -EINVAL;
			if (s->ntopics == cap) {
				cap = cap ? cap * 2 : 64;
				t = realloc(s->topics, cap * sizeof(*t));
				if (!t)
					return -ENOMEM;
				s->topics = t;
			}
			t = &s->topics[s->ntopics];
			if (parse_topic(line, t) < 0)
				return -EINVAL;
			t->first = next;
			left = t->nparts;
			s->ntopics++;
		} else {
			if (!left || parse_part(line, &part) < 0)
				return -EINVAL;
			left--;
			s->nparts++;
		}
		pos = next;
	}
	if (left)
		return -EINVAL;
	if (s->ntopics) /* (no array at all when there are none) */
		qsort(s->topics, s->ntopics, sizeof(*s->topics), topic_cmp);
	return 0;
}

int layout_summary_load(int rootfd, uint32_t want, struct layout_summary *s)
{
	struct stat st;
	uint32_t crc, stored;
	char hex[9];
	size_t body;
	void *map;
	int fd, ret;

	memset(s, 0, sizeof(*s));
	fd = io_openat(rootfd, LAYOUT_SUMMARY_FILE, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	ret = io_fstat(fd, &st);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SUMMARY_MAX_BYTES ||
	    st.st_size < (off_t)sizeof(SUMMARY_MAGIC) - 1 + 16)
		goto out;
	/* Mapped, not read into the heap: ~140 bytes a partition, given
	 * back whole when released.  Its lines are split in place. */
	ret = io_mmap_private(fd, (size_t)st.st_size, &map);
	if (ret < 0)
		goto out;
	s->text = map;
	s->map_len = s->len = (size_t)st.st_size;
	s->written_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			st.st_mtim.tv_nsec;
	ret = -EINVAL;
	/* The last line: "crc32c=XXXXXXXX\n", of every byte before it
	 * (copied out to be parsed: the mapping has no NUL after it). */
	body = s->len - 16;
	memcpy(hex, s->text + body + 7, 8);
	hex[8] = '\0';
	if (memcmp(s->text, SUMMARY_MAGIC, sizeof(SUMMARY_MAGIC) - 1) ||
	    memcmp(s->text + body, "crc32c=", 7) ||
	    s->text[s->len - 1] != '\n' || strspn(hex, "0123456789abcdef") != 8)
		goto out;
	stored = (uint32_t)strtoul(hex, NULL, 16);
	crc = crc32c(0, s->text, body);
	if (crc != stored)
		goto out;
	if ((crc ? crc : 1) != want) {
		ret = -ESTALE;
		goto out;
	}
	s->len = body;
	s->text[body] = '\0';
	ret = summary_index(s);
out:
	io_close(fd);
	if (ret < 0)
		layout_summary_release(s);
	return ret;
}

const struct layout_summary_topic *
layout_summary_find(const struct layout_summary *s, const char *name)
{
	struct layout_summary_topic key = {.name = name};

	if (!s->ntopics)
		return NULL;
	return bsearch(&key, s->topics, s->ntopics, sizeof(key), topic_cmp);
}

void layout_summary_part_next(const struct layout_summary *s, size_t *pos,
			      struct layout_summary_part *out)
{
	char *line = s->text + *pos;
	size_t name_len = strlen(line + 5), rest;

	rest = strlen(line + 5 + name_len + 1);
	parse_part(line, out);
	*pos += 5 + name_len + 1 + rest + 1;
}

int layout_summary_stamp_older(const struct layout_summary *s,
			       const struct layout_stamp *st)
{
	return st->mtime_ns < s->written_ns && st->ctime_ns < s->written_ns;
}

void layout_summary_release(struct layout_summary *s)
{
	if (s->text)
		io_munmap(s->text, s->map_len);
	free(s->topics);
	memset(s, 0, sizeof(*s));
}
