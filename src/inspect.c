/*
 * inspect.c - read-only inspection of a partition directory: list its
 * segments, load their index entries and block tables, read logical bytes
 * (decoding compressed blocks), verify everything, and answer offset and
 * time lookups without the storage engine.
 *
 * It parses the on-disk format itself rather than calling segment_open(),
 * because segment_open() repairs what it finds (truncates torn tails,
 * rebuilds indexes) and fluxctl must be able to look without touching.
 * Every file is opened read-only through io.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "inspect.h"
#include "io.h"
#include "partition.h"

#define ENTRY_CRC_BYTES offsetof(struct seg_entry, ecrc)
#define BLK_MAGIC "FLUXBLK1"
#define STATE_FILE "partition.state"
#define STATE_MAGIC "fluxfs-partition-state"
#define QUARANTINE_DIR "quarantine"
#define READ_CHUNK (1u << 20)

/* ------------------------------------------------------------------ */
/* Listing and loading                                                  */

static int read_whole(int dirfd, const char *name, unsigned char **buf,
		      size_t *len, size_t max)
{
	struct stat st;
	ssize_t n;
	int fd, ret;

	*buf = NULL;
	*len = 0;
	fd = io_openat(dirfd, name, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	ret = io_fstat(fd, &st);
	if (ret < 0)
		goto out;
	if ((uint64_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	*buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*buf) {
		ret = -ENOMEM;
		goto out;
	}
	n = io_pread_full(fd, *buf, (size_t)st.st_size, 0);
	if (n < 0) {
		ret = (int)n;
		free(*buf);
		*buf = NULL;
		goto out;
	}
	*len = (size_t)n;
out:
	io_close(fd);
	return ret;
}

static int entry_intact(const struct seg_entry *e)
{
	return e->ecrc == crc32c(0, e, ENTRY_CRC_BYTES) && e->len > 0 &&
	       e->count > 0;
}

/* Load NNN.idx: header and entries (a torn tail entry is left out and
 * shows up in verify as a length mismatch). */
static void load_idx(int dfd, struct inspect_seg *s)
{
	unsigned char *buf;
	uint32_t v, esz, crc;
	uint64_t bo;
	size_t len;
	char name[40];

	segment_name(name, sizeof(name), s->base_offset, ".idx");
	if (read_whole(dfd, name, &buf, &len, (size_t)1 << 32) < 0)
		return;
	s->idx_bytes = len;
	if (len < SEG_HEADER_BYTES)
		goto out;
	memcpy(&v, buf + 8, 4);
	memcpy(&esz, buf + 12, 4);
	memcpy(&bo, buf + 16, 8);
	memcpy(&crc, buf + SEG_HEADER_BYTES - 4, 4);
	if (memcmp(buf, SEG_IDX_MAGIC, 8) || v != SEG_IDX_VERSION ||
	    esz != sizeof(struct seg_entry) || bo != s->base_offset ||
	    crc != crc32c(0, buf, SEG_HEADER_BYTES - 4))
		goto out;
	memcpy(&s->base_byte, buf + 24, 8);
	memcpy(&s->hdr_lost_msgs, buf + SEG_HDR_LOST_MSGS, 8);
	memcpy(&s->hdr_lost_bytes, buf + SEG_HDR_LOST_BYTES, 8);
	s->idx_ok = 1;
	s->nents = (uint32_t)((len - SEG_HEADER_BYTES) /
			      sizeof(struct seg_entry));
	if (s->nents) {
		s->ents = malloc((size_t)s->nents * sizeof(*s->ents));
		if (!s->ents) {
			s->nents = 0;
			goto out;
		}
		memcpy(s->ents, buf + SEG_HEADER_BYTES,
		       (size_t)s->nents * sizeof(*s->ents));
	}
out:
	free(buf);
}

/* Load NNN.blk: magic, codec, count, raw length, 24-byte entries, CRC. */
static void load_blk(int dfd, struct inspect_seg *s)
{
	unsigned char *buf, *p;
	uint32_t codec, n, crc, i;
	size_t len;
	char name[40];

	segment_name(name, sizeof(name), s->base_offset, ".blk");
	if (read_whole(dfd, name, &buf, &len, (size_t)1 << 26) < 0)
		return;
	if (len < 28)
		goto out;
	memcpy(&codec, buf + 8, 4);
	memcpy(&n, buf + 12, 4);
	memcpy(&crc, buf + len - 4, 4);
	if (memcmp(buf, BLK_MAGIC, 8) || codec != (uint32_t)s->codec ||
	    len != 28 + (uint64_t)n * 24 || crc != crc32c(0, buf, len - 4))
		goto out;
	memcpy(&s->raw_bytes, buf + 16, 8);
	s->blocks = calloc(n ? n : 1, sizeof(*s->blocks));
	if (!s->blocks)
		goto out;
	for (i = 0, p = buf + 24; i < n; i++, p += 24) {
		memcpy(&s->blocks[i].raw_pos, p, 8);
		memcpy(&s->blocks[i].file_pos, p + 8, 8);
		memcpy(&s->blocks[i].raw_len, p + 16, 4);
		memcpy(&s->blocks[i].file_len, p + 20, 4);
	}
	s->nblocks = n;
	s->blk_ok = 1;
out:
	free(buf);
}

static void load_state(int dfd, struct inspect_state *st)
{
	unsigned long long v[4];
	unsigned char *buf;
	size_t len;
	int version;

	memset(st, 0, sizeof(*st));
	if (read_whole(dfd, STATE_FILE, &buf, &len, 4096) < 0)
		return;
	st->present = 1;
	/* buf is not NUL-terminated: copy into a bounded string. */
	{
		char text[4097];

		memcpy(text, buf, len);
		text[len] = '\0';
		if (sscanf(text,
			   STATE_MAGIC " %d\nstart_offset=%llu\nstart_byte=%llu"
				       "\nfirst_base_byte=%llu\nrecovery_point=%llu",
			   &version, &v[0], &v[1], &v[2], &v[3]) == 5 &&
		    version == 1) {
			st->ok = 1;
			st->start_offset = v[0];
			st->start_byte = v[1];
			st->first_base_byte = v[2];
			st->recovery_point = v[3];
		}
	}
	free(buf);
}

static struct inspect_seg *seg_get(struct inspect_part *ip, uint32_t *cap,
				   uint64_t base)
{
	struct inspect_seg *grown;
	uint32_t i;

	for (i = 0; i < ip->nsegs; i++)
		if (ip->segs[i].base_offset == base)
			return &ip->segs[i];
	if (ip->nsegs == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		grown = realloc(ip->segs, *cap * sizeof(*grown));
		if (!grown)
			return NULL;
		ip->segs = grown;
	}
	memset(&ip->segs[ip->nsegs], 0, sizeof(*ip->segs));
	ip->segs[ip->nsegs].base_offset = base;
	ip->segs[ip->nsegs].data_fd = -1;
	ip->segs[ip->nsegs].codec = (enum compression)-1;
	return &ip->segs[ip->nsegs++];
}

static int seg_cmp(const void *a, const void *b)
{
	const struct inspect_seg *x = a, *y = b;

	return x->base_offset < y->base_offset ? -1 :
						  x->base_offset > y->base_offset;
}

static uint32_t count_entries(int dfd, const char *name)
{
	struct dirent *de;
	uint32_t n = 0;
	DIR *dir;

	if (io_opendir_stream(dfd, name, &dir) < 0)
		return 0;
	while (io_readdir(dir, &de) > 0)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	io_closedir(dir);
	return n;
}

/* Collect segment files; a raw .log wins over a compressed twin, as in
 * recovery (the twin is a compression that never finished its swap). */
static int scan(struct inspect_part *ip)
{
	struct inspect_seg *s;
	struct dirent *de;
	uint32_t cap = 0;
	enum compression c;
	uint64_t base;
	char *end;
	size_t len;
	DIR *dir;
	int ret;

	ret = io_opendir_stream(ip->dfd, ".", &dir);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(dir, &de)) > 0) {
		len = strlen(de->d_name);
		if (len > 4 && !strcmp(de->d_name + len - 4, ".tmp")) {
			ip->tmp_files++;
			continue;
		}
		if (len < 21 || de->d_name[20] != '.')
			continue;
		base = strtoull(de->d_name, &end, 10);
		if (end != de->d_name + 20)
			continue;
		if (!strcmp(end, ".log"))
			c = COMPRESSION_NONE;
		else if (!strcmp(end, codec_suffix(COMPRESSION_LZ4)))
			c = COMPRESSION_LZ4;
		else if (!strcmp(end, codec_suffix(COMPRESSION_GZIP)))
			c = COMPRESSION_GZIP;
		else
			continue; /* .idx/.blk: loaded with their data file */
		s = seg_get(ip, &cap, base);
		if (!s) {
			ret = -ENOMEM;
			break;
		}
		if (s->codec == COMPRESSION_NONE)
			continue;
		s->codec = c;
	}
	io_closedir(dir);
	if (ret == 0 && ip->nsegs)
		qsort(ip->segs, ip->nsegs, sizeof(*ip->segs), seg_cmp);
	return ret;
}

static void load_seg(int dfd, struct inspect_seg *s)
{
	struct stat st;

	segment_name(s->data_name, sizeof(s->data_name), s->base_offset,
		     s->codec ? codec_suffix(s->codec) : ".log");
	s->data_fd = io_openat(dfd, s->data_name, O_RDONLY, 0);
	if (s->data_fd >= 0 && io_fstat(s->data_fd, &st) == 0)
		s->data_bytes = (uint64_t)st.st_size;
	if (s->codec == COMPRESSION_NONE)
		s->raw_bytes = s->data_bytes;
	else
		load_blk(dfd, s);
	load_idx(dfd, s);
}

/* The retained log as recovery would present it. */
static void derive(struct inspect_part *ip)
{
	const struct inspect_seg *first, *last;
	const struct seg_entry *e;

	uint32_t i, k;

	ip->start_offset = ip->next_offset = 0;
	ip->start_byte = ip->end_byte = 0;
	for (i = 0; i < ip->nsegs; i++) {
		for (k = 0; k < ip->segs[i].nents; k++) {
			e = &ip->segs[i].ents[k];
			if (!entry_intact(e) || !segment_entry_lost(e))
				continue;
			ip->lost_entries++;
			ip->lost_messages += e->count;
			ip->lost_bytes += e->len;
		}
	}
	if (!ip->nsegs) {
		if (ip->state.ok) {
			ip->start_offset = ip->next_offset =
				ip->state.start_offset;
			ip->start_byte = ip->end_byte = ip->state.start_byte;
		}
		return;
	}
	first = &ip->segs[0];
	last = &ip->segs[ip->nsegs - 1];
	ip->start_offset = first->base_offset;
	ip->start_byte = first->base_byte;
	if (last->nents) {
		e = &last->ents[last->nents - 1];
		ip->next_offset = e->offset + e->count;
		ip->end_byte = e->pos + e->len;
	} else {
		ip->next_offset = last->base_offset;
		ip->end_byte = last->base_byte;
	}
	if (ip->state.ok && ip->state.start_offset > ip->start_offset &&
	    ip->state.start_offset <= ip->next_offset) {
		ip->start_offset = ip->state.start_offset;
		ip->start_byte = ip->state.start_byte;
	}
}

/* Is dirfd/name a partition directory? */
int inspect_is_partition(int dirfd, const char *name)
{
	struct stat st;
	struct dirent *de;
	DIR *dir;
	int fd, ret, found = 0;

	fd = io_opendirat(dirfd, name);
	if (fd < 0)
		return fd;
	if (io_fstatat(fd, STATE_FILE, &st) == 0) {
		io_close(fd);
		return 1;
	}
	ret = io_opendir_stream(fd, ".", &dir);
	io_close(fd);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(dir, &de)) > 0)
		if (strlen(de->d_name) == 24 &&
		    !strcmp(de->d_name + 20, ".log")) {
			found = 1;
			break;
		}
	io_closedir(dir);
	return ret < 0 ? ret : found;
}

/* Read a partition directory without changing it. */
int inspect_open(int dirfd, const char *name, struct inspect_part **out)
{
	struct inspect_part *ip;
	uint32_t i;
	int ret;

	ret = inspect_is_partition(dirfd, name);
	if (ret <= 0)
		return ret ? ret : -ENOENT;
	ip = calloc(1, sizeof(*ip));
	if (!ip)
		return -ENOMEM;
	ip->dfd = io_opendirat(dirfd, name);
	if (ip->dfd < 0) {
		ret = ip->dfd;
		free(ip);
		return ret;
	}
	ret = scan(ip);
	if (ret < 0)
		goto err;
	for (i = 0; i < ip->nsegs; i++)
		load_seg(ip->dfd, &ip->segs[i]);
	load_state(ip->dfd, &ip->state);
	ip->quarantined = count_entries(ip->dfd, QUARANTINE_DIR);
	derive(ip);
	*out = ip;
	return 0;
err:
	inspect_close(ip);
	return ret;
}

/* Free everything inspect_open() made. */
void inspect_close(struct inspect_part *ip)
{
	uint32_t i;

	if (!ip)
		return;
	for (i = 0; i < ip->nsegs; i++) {
		io_close(ip->segs[i].data_fd);
		free(ip->segs[i].ents);
		free(ip->segs[i].blocks);
	}
	free(ip->segs);
	io_close(ip->dfd);
	free(ip);
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* Logical bytes [pos, pos+len) of segment seg. */
int inspect_read(const struct inspect_part *ip, uint32_t seg, uint64_t pos,
		 void *buf, size_t len)
{
	const struct inspect_seg *s = &ip->segs[seg];
	unsigned char *blk = NULL, *out = buf;
	uint64_t rel, at, n;
	ssize_t got;
	long k;
	int ret = 0;

	if (s->data_fd < 0)
		return -ENOENT;
	if (pos < s->base_byte || pos - s->base_byte + len > s->raw_bytes)
		return -EIO;
	rel = pos - s->base_byte;
	if (s->codec == COMPRESSION_NONE) {
		got = io_pread_full(s->data_fd, buf, len, rel);
		if (got < 0)
			return (int)got;
		return (size_t)got == len ? 0 : -EIO;
	}
	if (!s->blk_ok)
		return -EIO;
	blk = malloc(CODEC_BLOCK_BYTES);
	if (!blk)
		return -ENOMEM;
	while (len > 0) {
		k = codec_find_block(s->blocks, s->nblocks, rel);
		if (k < 0 || s->blocks[k].raw_len > CODEC_BLOCK_BYTES) {
			ret = -EIO;
			break;
		}
		ret = codec_read_block(s->codec, s->data_fd, &s->blocks[k],
				       blk);
		if (ret < 0)
			break;
		at = rel - s->blocks[k].raw_pos;
		n = s->blocks[k].raw_len - at;
		if (n > len)
			n = len;
		memcpy(out, blk + at, (size_t)n);
		out += n;
		rel += n;
		len -= (size_t)n;
	}
	free(blk);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Verification                                                         */

struct vctx {
	const struct inspect_part *ip;
	inspect_problem_fn report;
	inspect_progress_fn progress;
	void *arg;
	uint64_t done, total;
	int problems;
};

static void problem(struct vctx *v, int32_t seg, int64_t entry,
		    const struct seg_entry *e, int data, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void problem(struct vctx *v, int32_t seg, int64_t entry,
		    const struct seg_entry *e, int data, const char *fmt, ...)
{
	struct inspect_problem pr;
	va_list ap;

	memset(&pr, 0, sizeof(pr));
	pr.seg = seg;
	pr.entry = entry;
	pr.data = data;
	if (e) {
		pr.offset = e->offset;
		pr.pos = e->pos;
		pr.len = e->len;
	}
	va_start(ap, fmt);
	vsnprintf(pr.what, sizeof(pr.what), fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->report)
		v->report(v->arg, v->ip, &pr);
}

static void advance(struct vctx *v, uint64_t n)
{
	v->done += n;
	if (v->progress)
		v->progress(v->arg, v->done, v->total);
}

/* Every compressed block must decode to its raw length. */
static void verify_blocks(struct vctx *v, uint32_t si, unsigned char *buf)
{
	const struct inspect_seg *s = &v->ip->segs[si];
	uint64_t raw = 0;
	uint32_t b;

	for (b = 0; b < s->nblocks; b++) {
		const struct codec_block *k = &s->blocks[b];

		if (k->raw_pos != raw || k->raw_len > CODEC_BLOCK_BYTES ||
		    k->file_pos + k->file_len > s->data_bytes) {
			problem(v, (int32_t)si, -1, NULL, 1,
				"block %u: table entry out of place", b);
			return;
		}
		if (codec_read_block(s->codec, s->data_fd, k, buf) < 0)
			problem(v, (int32_t)si, -1, NULL, 1,
				"block %u (raw bytes %llu..%llu) does not decode",
				b, (unsigned long long)(s->base_byte + k->raw_pos),
				(unsigned long long)(s->base_byte + k->raw_pos +
						     k->raw_len));
		raw += k->raw_len;
	}
	if (raw != s->raw_bytes)
		problem(v, (int32_t)si, -1, NULL, 1,
			"block table covers %llu of %llu raw bytes",
			(unsigned long long)raw,
			(unsigned long long)s->raw_bytes);
}

static int all_zero(const unsigned char *b, size_t len)
{
	return len == 0 || (b[0] == 0 && !memcmp(b, b + 1, len - 1));
}

static int verify_seg(struct vctx *v, uint32_t si, unsigned char *buf)
{
	const struct inspect_part *ip = v->ip;
	const struct inspect_seg *s = &ip->segs[si], *prev;
	const struct seg_entry *e;
	uint64_t want_pos, want_off, data_end, tail;
	uint64_t lost_msgs = 0, lost_bytes = 0;
	uint32_t i, crc;
	int ret, last = si + 1 == ip->nsegs;

	if (s->data_fd < 0) {
		problem(v, (int32_t)si, -1, NULL, 1, "cannot open '%s'",
			s->data_name);
		return 0;
	}
	if (s->codec && !s->blk_ok) {
		problem(v, (int32_t)si, -1, NULL, 1,
			"block table %020llu.blk is missing or damaged",
			(unsigned long long)s->base_offset);
		return 0;
	}
	if (!s->idx_ok) {
		problem(v, (int32_t)si, -1, NULL, 0,
			"index %020llu.idx is missing or has a damaged header",
			(unsigned long long)s->base_offset);
		advance(v, s->raw_bytes);
		return 0;
	}
	if ((s->idx_bytes - SEG_HEADER_BYTES) % sizeof(struct seg_entry))
		problem(v, (int32_t)si, -1, NULL, 0,
			"index has a torn entry at its end (%llu bytes)",
			(unsigned long long)s->idx_bytes);
	if (si > 0) {
		prev = &ip->segs[si - 1];
		want_off = prev->nents ? prev->ents[prev->nents - 1].offset +
						 prev->ents[prev->nents - 1].count :
					 prev->base_offset;
		want_pos = prev->base_byte + prev->raw_bytes;
		if (s->base_offset != want_off || s->base_byte != want_pos)
			problem(v, (int32_t)si, -1, NULL, 0,
				"does not follow on: starts at offset %llu byte "
				"%llu, the segment before ends at offset %llu "
				"byte %llu",
				(unsigned long long)s->base_offset,
				(unsigned long long)s->base_byte,
				(unsigned long long)want_off,
				(unsigned long long)want_pos);
	}
	if (s->codec)
		verify_blocks(v, si, buf);
	data_end = s->base_byte + s->raw_bytes;
	want_pos = s->base_byte;
	want_off = s->base_offset;
	for (i = 0; i < s->nents; i++) {
		e = &s->ents[i];
		if (!entry_intact(e)) {
			problem(v, (int32_t)si, i, e, 0,
				"entry checksum does not match (torn or damaged "
				"index entry)");
			return 0; /* nothing after it can be placed */
		}
		if (e->pos != want_pos || e->offset != want_off) {
			problem(v, (int32_t)si, i, e, 0,
				"entry out of sequence: wanted offset %llu byte "
				"%llu", (unsigned long long)want_off,
				(unsigned long long)want_pos);
			return 0;
		}
		if (i && e->ts < s->ents[i - 1].ts)
			problem(v, (int32_t)si, i, e, 0,
				"timestamp goes backwards");
		if (e->pos + e->len > data_end) {
			problem(v, (int32_t)si, i, e, 1,
				"entry runs past the end of the data (%llu)",
				(unsigned long long)data_end);
			return 0;
		}
		ret = inspect_read(ip, si, e->pos, buf, e->len);
		if (ret < 0 && ret != -EIO)
			return ret;
		if (ret == -EIO)
			problem(v, (int32_t)si, i, e, 1, "cannot read the bytes");
		else if (segment_entry_lost(e) && !all_zero(buf, e->len))
			problem(v, (int32_t)si, i, e, 1,
				"batch dropped as damaged, but its bytes are "
				"not zeros");
		else if ((crc = crc32c(0, buf, e->len)) != e->crc)
			problem(v, (int32_t)si, i, e, 1,
				"crc mismatch: stored %08x, computed %08x",
				e->crc, crc);
		if (segment_entry_lost(e)) {
			lost_msgs += e->count;
			lost_bytes += e->len;
		}
		advance(v, e->len);
		want_pos += e->len;
		want_off += e->count;
	}
	if (lost_msgs != s->hdr_lost_msgs || lost_bytes != s->hdr_lost_bytes)
		problem(v, (int32_t)si, -1, NULL, 0,
			"index header counts %llu lost messages in %llu bytes, "
			"its entries %llu in %llu (rerun fluxctl repair "
			"--drop-damaged)",
			(unsigned long long)s->hdr_lost_msgs,
			(unsigned long long)s->hdr_lost_bytes,
			(unsigned long long)lost_msgs,
			(unsigned long long)lost_bytes);
	if (s->nents && !(s->ents[s->nents - 1].flags & SEG_F_LAST))
		problem(v, (int32_t)si, s->nents - 1, &s->ents[s->nents - 1],
			0, "last entry does not end its write (torn write)");
	tail = data_end - want_pos;
	if (tail)
		problem(v, (int32_t)si, -1, NULL, 0,
			"%llu bytes of %s past the last index entry%s",
			(unsigned long long)tail, s->data_name,
			last ? " (torn tail)" : "");
	advance(v, tail);
	return 0;
}

static void verify_state(struct vctx *v)
{
	const struct inspect_part *ip = v->ip;
	const struct inspect_state *st = &ip->state;

	if (!st->present) {
		problem(v, -1, -1, NULL, 0, "partition.state is missing");
		return;
	}
	if (!st->ok) {
		problem(v, -1, -1, NULL, 0, "partition.state is damaged");
		return;
	}
	if (st->start_offset > ip->next_offset || st->start_byte > ip->end_byte)
		problem(v, -1, -1, NULL, 0,
			"partition.state starts at offset %llu byte %llu, past "
			"the end of the log (offset %llu byte %llu)",
			(unsigned long long)st->start_offset,
			(unsigned long long)st->start_byte,
			(unsigned long long)ip->next_offset,
			(unsigned long long)ip->end_byte);
	/* Retention moves the state before it deletes, so a first segment
	 * that starts after the state's start is a gap nothing made. */
	if (ip->nsegs && (ip->segs[0].base_offset > st->start_offset ||
			  (ip->segs[0].idx_ok &&
			   ip->segs[0].base_byte > st->first_base_byte)))
		problem(v, -1, -1, NULL, 0,
			"log starts at offset %llu byte %llu, but "
			"partition.state starts it at offset %llu byte %llu: "
			"the segment(s) before are missing",
			(unsigned long long)ip->segs[0].base_offset,
			(unsigned long long)ip->segs[0].base_byte,
			(unsigned long long)st->start_offset,
			(unsigned long long)st->first_base_byte);
	if (st->recovery_point > ip->end_byte)
		problem(v, -1, -1, NULL, 0,
			"partition.state recovery point %llu is past the end "
			"of the log (%llu): flushed data is missing",
			(unsigned long long)st->recovery_point,
			(unsigned long long)ip->end_byte);
}

/* Bytes verify reads. */
uint64_t inspect_verify_bytes(const struct inspect_part *ip)
{
	uint64_t total = 0;
	uint32_t i;

	for (i = 0; i < ip->nsegs; i++)
		total += ip->segs[i].raw_bytes;
	return total;
}

/* Check the whole partition; see inspect.h. */
int inspect_verify(const struct inspect_part *ip, inspect_problem_fn report,
		   inspect_progress_fn progress, void *arg)
{
	struct vctx v;
	unsigned char *buf;
	uint32_t i;
	int ret = 0;

	memset(&v, 0, sizeof(v));
	v.ip = ip;
	v.report = report;
	v.progress = progress;
	v.arg = arg;
	v.total = inspect_verify_bytes(ip);
	/* One entry holds at most a chunk, or one longer message: size the
	 * buffer for the largest entry and a decoded block. */
	{
		size_t cap = CODEC_BLOCK_BYTES;
		uint32_t k;

		for (i = 0; i < ip->nsegs; i++)
			for (k = 0; k < ip->segs[i].nents; k++)
				if (ip->segs[i].ents[k].len > cap &&
				    ip->segs[i].ents[k].len <= PARTITION_MAX_BATCH)
					cap = ip->segs[i].ents[k].len;
		buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
	}
	for (i = 0; i < ip->nsegs && ret == 0; i++)
		ret = verify_seg(&v, i, buf);
	if (ret == 0)
		verify_state(&v);
	free(buf);
	return ret < 0 ? ret : v.problems;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

/* The segment holding message offset, or -1. */
static long seg_for_offset(const struct inspect_part *ip, uint64_t offset)
{
	uint32_t lo = 0, hi = ip->nsegs, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ip->segs[mid].base_offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

/* Message offset -> byte. */
int inspect_offset_to_byte(const struct inspect_part *ip, uint64_t offset,
			   uint64_t *byte)
{
	const struct inspect_seg *s;
	const struct seg_entry *e;
	unsigned char *buf, *nl;
	uint32_t lo, hi, mid, k;
	uint64_t at;
	long si;
	int ret;

	if (offset < ip->start_offset || offset >= ip->next_offset)
		return -ENOENT;
	si = seg_for_offset(ip, offset);
	if (si < 0)
		return -ENOENT;
	s = &ip->segs[si];
	lo = 0;
	hi = s->nents;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->ents[mid].offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	e = &s->ents[lo - 1];
	if (offset >= e->offset + e->count)
		return -ENOENT;
	if (offset == e->offset) {
		*byte = e->pos;
		return 0;
	}
	buf = malloc(e->len);
	if (!buf)
		return -ENOMEM;
	ret = inspect_read(ip, (uint32_t)si, e->pos, buf, e->len);
	if (ret < 0)
		goto out;
	/* the message starts after the (offset - e->offset)th newline */
	at = 0;
	for (k = 0; k < offset - e->offset; k++) {
		nl = memchr(buf + at, '\n', e->len - at);
		if (!nl) {
			ret = -EIO;
			goto out;
		}
		at = (uint64_t)(nl - buf) + 1;
	}
	*byte = e->pos + at;
out:
	free(buf);
	return ret;
}

/* First message at or after ts_ms. */
int inspect_time_to_offset(const struct inspect_part *ip, int64_t ts_ms,
			   uint64_t *offset, uint64_t *byte)
{
	const struct inspect_seg *s;
	const struct seg_entry *e;
	uint32_t i, lo, hi, mid;

	/* Timestamps only grow along the log, so the first segment whose
	 * last entry is new enough holds the answer. */
	for (i = 0; i < ip->nsegs; i++) {
		s = &ip->segs[i];
		if (!s->nents || s->ents[s->nents - 1].ts < ts_ms)
			continue;
		lo = 0;
		hi = s->nents;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (s->ents[mid].ts < ts_ms)
				lo = mid + 1;
			else
				hi = mid;
		}
		e = &s->ents[lo];
		if (e->offset + e->count <= ip->start_offset)
			continue; /* below the retained start */
		if (e->offset < ip->start_offset) {
			*offset = ip->start_offset;
			*byte = ip->start_byte;
			return 0;
		}
		*offset = e->offset;
		*byte = e->pos;
		return 0;
	}
	return -ENOENT;
}

/* Timestamps of the first retained and the last entry. */
void inspect_time_range(const struct inspect_part *ip, int64_t *first,
			int64_t *last)
{
	const struct inspect_seg *s;
	uint32_t i, k;

	*first = *last = -1;
	for (i = 0; i < ip->nsegs && *first < 0; i++) {
		s = &ip->segs[i];
		for (k = 0; k < s->nents; k++) {
			if (s->ents[k].offset + s->ents[k].count >
			    ip->start_offset) {
				*first = s->ents[k].ts;
				break;
			}
		}
	}
	for (i = ip->nsegs; i-- > 0;) {
		s = &ip->segs[i];
		if (s->nents) {
			*last = s->ents[s->nents - 1].ts;
			break;
		}
	}
}
