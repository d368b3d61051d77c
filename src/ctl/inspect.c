/*
 * inspect.c - read-only inspection of a partition directory: list its
 * segments, load their index entries and block tables, read logical bytes
 * (decoding compressed blocks), verify everything, and answer offset and
 * time lookups without the storage engine.
 *
 * It reads the files through layout.h, the daemon's own decoders, rather
 * than calling segment_open(), because segment_open() repairs what it
 * finds (truncates torn tails, rebuilds indexes) and fluxctl must be able
 * to look without touching.  Every file is opened read-only through io.h.
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
#include "layout.h"
#include "partition.h"
#include "segment.h"

/* ------------------------------------------------------------------ */
/* Listing and loading                                                  */

/* Load NNN.idx: header and entries (a torn tail entry is left out and
 * shows up in verify as a length mismatch). */
static void load_idx(int dfd, struct inspect_seg *s)
{
	struct layout_idx_header h;

	if (layout_idx_load(dfd, s->base_offset, &h, &s->ents, &s->nents,
			    &s->idx_bytes) < 0)
		return;
	s->base_byte = h.base_byte;
	s->hdr_lost_msgs = h.lost_msgs;
	s->hdr_lost_bytes = h.lost_bytes;
	s->idx_ok = 1;
}

/* Load NNN.blk (the raw length comes from it). */
static void load_blk(int dfd, struct inspect_seg *s)
{
	if (layout_blk_load(dfd, s->base_offset, s->codec, &s->raw_bytes,
			    &s->blocks, &s->nblocks) == 0)
		s->blk_ok = 1;
}

static void load_state(int dfd, struct inspect_state *st)
{
	struct layout_state ls;
	int ret = layout_state_load(dfd, &ls);

	memset(st, 0, sizeof(*st));
	st->present = ret != -ENOENT;
	if (ret < 0)
		return;
	st->ok = 1;
	st->start_offset = ls.start_offset;
	st->start_byte = ls.start_byte;
	st->first_base_byte = ls.first_base_byte;
	st->recovery_point = ls.recovery_point;
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

struct scan_ctx {
	struct inspect_part *ip;
	uint32_t cap;
};

/* One name: a .tmp is counted, a data file makes a segment; .idx and .blk
 * are loaded with their data file.  A raw .log wins over a compressed
 * twin, as in recovery (the twin is a compression that never finished
 * its swap). */
static int scan_one(void *arg, const char *name, uint64_t base,
		    enum layout_file kind)
{
	struct scan_ctx *c = arg;
	struct inspect_seg *s;
	int codec = layout_file_codec(kind);

	(void)name;
	if (kind == LAYOUT_FILE_TMP) {
		c->ip->tmp_files++;
		return 0;
	}
	if (codec < 0)
		return 0;
	s = seg_get(c->ip, &c->cap, base);
	if (!s)
		return -ENOMEM;
	if (s->codec != COMPRESSION_NONE)
		s->codec = (enum compression)codec;
	return 0;
}

static int scan(struct inspect_part *ip)
{
	struct scan_ctx c = {ip, 0};
	int ret = layout_scan(ip->dfd, scan_one, &c);

	if (ret == 0 && ip->nsegs)
		qsort(ip->segs, ip->nsegs, sizeof(*ip->segs), seg_cmp);
	return ret;
}

static void load_seg(int dfd, struct inspect_seg *s)
{
	struct stat st;

	layout_seg_name(s->data_name, sizeof(s->data_name), s->base_offset,
			layout_data_suffix(s->codec));
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
			if (!layout_entry_intact(e) || !layout_entry_lost(e))
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

static int find_log(void *arg, const char *name, uint64_t base,
		    enum layout_file kind)
{
	(void)arg;
	(void)name;
	(void)base;
	return kind == LAYOUT_FILE_LOG;
}

/* Is dirfd/name a partition directory? */
int inspect_is_partition(int dirfd, const char *name)
{
	struct stat st;
	int fd, ret;

	fd = io_opendirat(dirfd, name);
	if (fd < 0)
		return fd;
	if (io_fstatat(fd, LAYOUT_STATE_FILE, &st) == 0)
		ret = 1;
	else
		ret = layout_scan(fd, find_log, NULL);
	io_close(fd);
	return ret;
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
	ip->quarantined = count_entries(ip->dfd, LAYOUT_SEG_QUARANTINE);
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
	struct codec_cache cache;
	ssize_t got;
	int ret;

	if (s->data_fd < 0)
		return -ENOENT;
	if (pos < s->base_byte || pos - s->base_byte + len > s->raw_bytes)
		return -EIO;
	if (s->codec == COMPRESSION_NONE) {
		got = io_pread_full(s->data_fd, buf, len, pos - s->base_byte);
		if (got < 0)
			return (int)got;
		return (size_t)got == len ? 0 : -EIO;
	}
	if (!s->blk_ok)
		return -EIO;
	codec_cache_init(&cache);
	ret = codec_read_range(s->codec, s->data_fd, s->blocks, s->nblocks,
			       &cache, 1, pos - s->base_byte, buf, len, NULL);
	codec_cache_release(&cache);
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
	if ((s->idx_bytes - LAYOUT_IDX_HEADER_BYTES) % LAYOUT_ENTRY_BYTES)
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
		if (!layout_entry_intact(e)) {
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
		else if (layout_entry_lost(e) && !all_zero(buf, e->len))
			problem(v, (int32_t)si, i, e, 1,
				"batch dropped as damaged, but its bytes are "
				"not zeros");
		else if ((crc = crc32c(0, buf, e->len)) != e->crc)
			problem(v, (int32_t)si, i, e, 1,
				"crc mismatch: stored %08x, computed %08x",
				e->crc, crc);
		if (layout_entry_lost(e)) {
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
	const unsigned char *msg;
	unsigned char *buf;
	uint32_t lo, hi, mid;
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
	msg = segment_skip_nl(buf, e->len, offset - e->offset);
	if (!msg) {
		ret = -EIO;
		goto out;
	}
	*byte = e->pos + (uint64_t)(msg - buf);
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
