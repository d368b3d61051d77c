/*
 * partition_read.c - reading a partition: bytes at a position (copied,
 * or as descriptor ranges for a zero-copy reply), CRCs checked on first
 * read, the hole below the start and damaged ranges, SEEK_DATA/SEEK_HOLE,
 * and the index lookups from message offset, byte or time.  Everything
 * here runs under seglock shared, concurrently with appends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "diag.h"
#include "partition_int.h"

/* ------------------------------------------------------------------ */
/* Reads                                                                */

/* Copy [pos, pos+len) of compressed segment s through the block cache;
 * a block that does not decode is counted and logged by the reader that
 * finds it first. */
static int read_compressed(struct partition *p, struct segment *s, uint64_t pos,
			   void *buf, size_t len)
{
	uint64_t from = 0, to = 0;
	char path[512];
	int ret;

	ret = segment_read_compressed(s, &p->cache, pos, buf, len, &from, &to);
	if (to > from) {
		metrics_add(&p->m, crc_failures, 1);
		part_path(p, path, sizeof(path));
		diag_err("cannot decode the block at bytes %llu-%llu of '%s': "
			 "reads of it fail with EIO",
			 (unsigned long long)from, (unsigned long long)to,
			 path);
	}
	return ret;
}

void part_report_bad(struct partition *p, struct segment *s, uint32_t i)
{
	struct seg_entry ent = segment_entry(s, i), *e = &ent;
	char path[512];

	metrics_add(&p->m, crc_failures, 1);
	part_path(p, path, sizeof(path));
	diag_err("bad crc in '%s' at byte %llu (offset %llu, %u bytes)", path,
		 (unsigned long long)e->pos, (unsigned long long)e->offset,
		 e->len);
}

/* Check the entries overlapping [pos, pos+len) of s; data holds those
 * bytes when non-NULL.  Returns how many bytes from pos are good (len if
 * all), or -errno. */
static ssize_t check_range(struct partition *p, struct segment *s, uint64_t pos,
			   size_t len, const unsigned char *data)
{
	uint32_t n = seg_n(s);
	long i = segment_find_byte(s, n, pos);
	struct seg_entry e;
	int st;

	if (i < 0)
		return -EIO;
	for (; (uint32_t)i < n; i++) {
		e = segment_entry(s, (uint32_t)i);
		if (e.pos >= pos + len)
			break;
		st = atomic_load_explicit(&s->vstate[i], memory_order_relaxed);
		if (st == SEG_V_UNKNOWN && s->codec == COMPRESSION_NONE) {
			st = segment_verify_entry(
				s, (uint32_t)i,
				data && e.pos >= pos && e.pos + e.len <= pos + len
					? data + (e.pos - pos)
					: NULL);
			if (st < 0)
				return st;
			if (st == SEG_V_NEWBAD)
				part_report_bad(p, s, (uint32_t)i);
		}
		if (st != SEG_V_GOOD)
			return e.pos > pos ? (ssize_t)(e.pos - pos) : -EIO;
	}
	return (ssize_t)len;
}

/* Read under seglock (shared).  check: verify CRCs and show the hole as
 * zeros; without it (lookups) the bytes below the start are read as they
 * are while their segment exists.  Returns bytes or -errno: -EIO when
 * any byte of the range is damaged (a bad batch, or a range no segment
 * holds), never a short count that a caller would take for the end. */
static ssize_t read_locked(struct partition *p, uint64_t pos, void *buf,
			   size_t len, int check)
{
	uint64_t end = atomic_load_explicit(&p->end_byte, memory_order_acquire);
	uint64_t start = check ? atomic_load(&p->start_byte) : 0, cur, send;
	struct segment *s;
	size_t done = 0, want, z;
	ssize_t n, good;

	if (pos >= end)
		return 0;
	if (len > end - pos)
		len = (size_t)(end - pos);
	if (pos < start) {
		z = start - pos < len ? (size_t)(start - pos) : len;
		memset(buf, 0, z);
		done = z;
	}
	while (done < len) {
		cur = pos + done;
		s = seg_by_byte(p, cur);
		if (!s || seg_end(s) <= cur)
			return -EIO; /* a segment lost to damage */
		send = seg_end(s);
		want = send - cur < len - done ? (size_t)(send - cur)
					       : len - done;
		if (s->codec != COMPRESSION_NONE) {
			n = read_compressed(p, s, cur, (char *)buf + done,
					    want);
			if (n < 0)
				return n;
			n = (ssize_t)want;
		} else {
			n = segment_pread(s, (char *)buf + done, want, cur);
			if (n < 0)
				return n;
			if (n < (ssize_t)want)
				return -EIO; /* the .log is shorter */
		}
		if (check) {
			good = check_range(p, s, cur, (size_t)n,
					   (unsigned char *)buf + done);
			if (good < n)
				return good < 0 ? good : -EIO;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Read bytes at pos; zeros for the hole. */
ssize_t partition_read(struct partition *p, uint64_t pos, void *buf, size_t len)
{
	ssize_t n;

	pthread_rwlock_rdlock(&p->seglock);
	n = read_locked(p, pos, buf, len, 1);
	pthread_rwlock_unlock(&p->seglock);
	if (n > 0) {
		metrics_add(&p->m, bytes_read, (uint64_t)n);
		metrics_add(&p->m, reads, 1);
	}
	return n;
}

/* Describe [pos, pos+len) as descriptor ranges (see partition.h). */
int partition_read_ranges(struct partition *p, uint64_t pos, size_t len,
			  struct partition_range *ranges, int max)
{
	uint64_t end, start, cur, send, stop, copy_from = UINT64_MAX;
	struct segment *s;
	ssize_t good;
	size_t want;
	int k = 0;

	pthread_rwlock_rdlock(&p->seglock);
	end = atomic_load_explicit(&p->end_byte, memory_order_acquire);
	start = atomic_load(&p->start_byte);
	stop = pos >= end ? pos : (len > end - pos ? end : pos + len);
	cur = pos;
	if (cur < start && cur < stop && k < max) {
		ranges[k].fd = -1;
		ranges[k].file_pos = 0;
		ranges[k].len = (size_t)((start < stop ? start : stop) - cur);
		cur += ranges[k++].len;
	}
	while (cur < stop && k < max) {
		s = seg_by_byte(p, cur);
		if (s && s->codec != COMPRESSION_NONE) {
			if (copy_from == UINT64_MAX)
				copy_from = cur;
			cur = stop;
			break;
		}
		good = -EIO; /* no segment holds cur: lost to damage */
		send = s ? seg_end(s) : cur;
		want = send > cur ? (size_t)((send < stop ? send : stop) - cur)
				  : 0;
		if (want)
			good = check_range(p, s, cur, want, NULL);
		if (good < (ssize_t)want || !want) {
			/* any damaged byte fails the whole read */
			pthread_rwlock_unlock(&p->seglock);
			return good < 0 ? (int)good : -EIO;
		}
		/* A sealed segment read through its mappings holds no
		 * descriptor: from there on the read is copied, once every
		 * byte of it was checked (a damaged one fails it whole). */
		if (s->log_fd < 0 && copy_from == UINT64_MAX)
			copy_from = cur;
		if (copy_from == UINT64_MAX) {
			ranges[k].fd = s->log_fd;
			ranges[k].file_pos = cur - s->base_byte;
			ranges[k++].len = (size_t)good;
		}
		cur += (size_t)good;
	}
	if (copy_from != UINT64_MAX) {
		ranges[k].fd = PARTITION_RANGE_COPY;
		ranges[k].file_pos = 0;
		ranges[k++].len = (size_t)(cur - copy_from);
		cur = copy_from; /* partition_read_rest counts the rest */
	}
	part_pin(p);
	pthread_rwlock_unlock(&p->seglock);
	metrics_add(&p->m, bytes_read, cur - pos);
	metrics_add(&p->m, reads, 1);
	return k;
}

/* Copy the rest of a zero-copy read. */
ssize_t partition_read_rest(struct partition *p, uint64_t pos, void *buf,
			    size_t len)
{
	ssize_t n;

	pthread_rwlock_rdlock(&p->seglock);
	n = read_locked(p, pos, buf, len, 1);
	pthread_rwlock_unlock(&p->seglock);
	if (n > 0)
		metrics_add(&p->m, bytes_read, (uint64_t)n);
	return n;
}

/* Unpin what partition_read_ranges() handed out. */
void partition_read_ranges_done(struct partition *p)
{
	part_unpin(p);
}

/* SEEK_DATA / SEEK_HOLE (see partition.h).  A segment that lost nothing
 * is data throughout, so only segments with dropped batches are walked. */
int partition_seek_hole(struct partition *p, uint64_t pos, int hole,
			uint64_t *out)
{
	struct seg_entry e;
	uint64_t end, cur;
	struct segment *s;
	uint32_t n, si;
	long i;
	int ret = -ENXIO;

	pthread_rwlock_rdlock(&p->seglock);
	end = atomic_load_explicit(&p->end_byte, memory_order_acquire);
	cur = atomic_load(&p->start_byte);
	if (pos >= end)
		goto out;
	if (pos < cur && hole) {
		*out = pos;
		ret = 0;
		goto out;
	}
	if (pos > cur)
		cur = pos;
	s = seg_by_byte(p, cur);
	for (si = 0; s && si < p->nsegs && p->segs[si] != s; si++)
		;
	for (; si < p->nsegs && cur < end; si++) {
		s = p->segs[si];
		n = seg_n(s);
		if (!s->lost_msgs || !n) {
			if (!hole) {
				*out = cur;
				ret = 0;
				goto out;
			}
			if (seg_end(s) > cur)
				cur = seg_end(s);
			continue;
		}
		i = segment_find_byte(s, n, cur);
		for (i = i < 0 ? 0 : i; (uint32_t)i < n; i++) {
			e = segment_entry(s, (uint32_t)i);
			if (e.pos + e.len <= cur || layout_entry_lost(&e) != hole)
				continue;
			*out = e.pos > cur ? e.pos : cur;
			ret = 0;
			goto out;
		}
		if (seg_end(s) > cur)
			cur = seg_end(s);
	}
	if (hole) {
		*out = end;
		ret = 0;
	}
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

/* The first len bytes of entry e of segment s: in place in the mapping,
 * else copied into buf (multi-message entries are <= SEG_CHUNK_BYTES). */
static const unsigned char *entry_bytes(struct partition *p, struct segment *s,
					const struct seg_entry *e,
					unsigned char *buf, size_t len,
					int *err)
{
	const void *in = segment_peek(s, e->pos, len);
	ssize_t n;

	if (in)
		return in;
	if (s->codec != COMPRESSION_NONE) {
		n = read_compressed(p, s, e->pos, buf, len);
		if (n == 0)
			n = (ssize_t)len;
	} else {
		n = segment_pread(s, buf, len, e->pos);
	}
	if (n == (ssize_t)len)
		return buf;
	*err = n < 0 ? (int)n : -EIO;
	return NULL;
}

/* Start of message k (0 < k < count) of a chunk of len bytes.  Its
 * start follows the k-th newline, which is the j-th from the end (the
 * final open line, if any, has none): one of the last two messages of
 * a chunk of long ones is found by one or two memrchr calls from the end
 * (measured: +5-25% for 1 KiB messages; more calls cost more than the
 * vectorised forward skip, which does the rest).  NULL if the chunk has fewer lines than its
 * entry says. */
static const unsigned char *msg_in_chunk(const unsigned char *data, size_t len,
					 uint32_t count, uint64_t k)
{
	uint64_t nl, j;
	const unsigned char *q = data + len;

	if (len == 0)
		return NULL; /* a damaged entry: no line in it */
	nl = count - (data[len - 1] != '\n');
	if (k > nl)
		return NULL;
	j = nl - k + 1;
	if (j >= k || j > 2)
		return segment_skip_nl(data, len, k);
	while (j-- > 0) {
		q = memrchr(data, '\n', (size_t)(q - data));
		if (!q)
			return NULL;
	}
	return q + 1;
}

/* The index entry holding message offset, and its segment; NULL when
 * the offset is not retained.  Caller holds seglock (shared). */
static const struct seg_entry *entry_of_offset(struct partition *p,
					       uint64_t offset,
					       struct segment **seg,
					       struct seg_entry *out)
{
	struct segment *s;
	long i;

	metrics_add(&p->m, index_lookups, 1);
	if (offset < atomic_load(&p->start_offset) ||
	    offset >=
		    atomic_load_explicit(&p->next_offset, memory_order_acquire))
		return NULL;
	s = seg_by_offset(p, offset);
	if (!s)
		return NULL;
	i = segment_find_offset(s, seg_n(s), offset);
	if (i < 0)
		return NULL;
	*seg = s;
	*out = segment_entry(s, (uint32_t)i);
	return out;
}

/* Message offset -> start byte. */
int partition_offset_to_byte(struct partition *p, uint64_t offset,
			     uint64_t *byte)
{
	unsigned char buf[SEG_CHUNK_BYTES];
	struct seg_entry ent;
	const struct seg_entry *e;
	const unsigned char *q, *data;
	struct segment *s;
	int ret = -ENOENT;

	pthread_rwlock_rdlock(&p->seglock);
	e = entry_of_offset(p, offset, &s, &ent);
	if (!e)
		goto out;
	ret = 0;
	if (e->offset == offset) {
		*byte = e->pos;
		goto out;
	}
	/* Inside a chunk: skip the messages before it, from whichever end
	 * of the chunk is nearer (fewer cold bytes to scan). */
	data = entry_bytes(p, s, e, buf, e->len, &ret);
	if (!data)
		goto out;
	q = msg_in_chunk(data, e->len, e->count, offset - e->offset);
	if (!q) {
		ret = -EIO;
		goto out;
	}
	*byte = e->pos + (uint64_t)(q - data);
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* Message offset -> the index entry at or below it: a pure index search,
 * no data read (Kafka's OffsetIndex.lookup). */
int partition_offset_to_chunk(struct partition *p, uint64_t offset,
			      uint64_t *chunk_offset, uint64_t *chunk_byte)
{
	struct partition_chunk c;
	int ret = partition_chunk_of(p, offset, &c);

	if (ret == 0) {
		*chunk_offset = c.offset;
		*chunk_byte = c.byte;
	}
	return ret;
}

int partition_chunk_of(struct partition *p, uint64_t offset,
		       struct partition_chunk *out)
{
	struct seg_entry ent;
	const struct seg_entry *e;
	struct segment *s;
	int ret = -ENOENT;

	pthread_rwlock_rdlock(&p->seglock);
	e = entry_of_offset(p, offset, &s, &ent);
	if (!e)
		goto out;
	out->offset = e->offset;
	out->byte = e->pos;
	out->ts = e->ts;
	out->count = e->count;
	out->len = e->len;
	ret = 0;
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* Byte -> containing message (caller holds seglock shared). */
int part_byte_to_offset_locked(struct partition *p, uint64_t byte,
			       uint64_t *offset, uint64_t *msg_start)
{
	unsigned char buf[SEG_CHUNK_BYTES];
	struct seg_entry ent;
	const struct seg_entry *e;
	const unsigned char *q, *lim, *data;
	struct segment *s;
	uint64_t off, at;
	size_t c;
	long i;
	int ret = 0;

	if (byte < atomic_load(&p->start_byte) ||
	    byte >= atomic_load_explicit(&p->end_byte, memory_order_acquire))
		return -ENOENT;
	s = seg_by_byte(p, byte);
	if (!s)
		return -ENOENT;
	i = segment_find_byte(s, seg_n(s), byte);
	if (i < 0)
		return -ENOENT;
	ent = segment_entry(s, (uint32_t)i);
	e = &ent;
	off = e->offset;
	at = e->pos;
	if (e->count > 1 && byte > e->pos) {
		data = entry_bytes(p, s, e, buf, (size_t)(byte - e->pos), &ret);
		if (!data)
			return ret;
		lim = data + (byte - e->pos);
		/* One count and one memrchr, not a call per message. */
		c = segment_count_nl(data, (size_t)(lim - data));
		if (c) {
			q = memrchr(data, '\n', (size_t)(lim - data));
			off += c;
			at = e->pos + (uint64_t)(q + 1 - data);
		}
	}
	*offset = off;
	*msg_start = at;
	return 0;
}

/* Byte -> the message containing it. */
int partition_byte_to_offset(struct partition *p, uint64_t byte,
			     uint64_t *offset, uint64_t *msg_start)
{
	int ret;

	metrics_add(&p->m, index_lookups, 1);
	pthread_rwlock_rdlock(&p->seglock);
	ret = part_byte_to_offset_locked(p, byte, offset, msg_start);
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}

/* First message with timestamp >= ts_ms.  A batch's messages share its
 * timestamp, so the answer is always the first message of an entry. */
int partition_time_to_offset(struct partition *p, int64_t ts_ms,
			     uint64_t *offset, uint64_t *byte)
{
	struct seg_entry ent;
	const struct seg_entry *e;
	struct segment *s;
	uint32_t lo, hi, mid, n;
	uint64_t start_off;
	long i;
	int ret = -ENOENT;

	metrics_add(&p->m, index_lookups, 1);
	pthread_rwlock_rdlock(&p->seglock);
	/* The first segment whose newest entry is new enough.  An empty
	 * segment can only be the last one (the active segment after a
	 * roll): it counts as new enough, or a search that probes it first
	 * would skip every sealed segment before it. */
	lo = 0;
	hi = p->nsegs;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		s = p->segs[mid];
		n = seg_n(s);
		if (n != 0 && segment_entry(s, n - 1).ts < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= p->nsegs)
		goto out;
	s = p->segs[lo];
	n = seg_n(s);
	i = segment_find_time(s, n, ts_ms);
	if ((uint32_t)i >= n)
		goto out;
	ent = segment_entry(s, (uint32_t)i);
	e = &ent;
	start_off = atomic_load(&p->start_offset);
	if (e->offset < start_off) {
		if (start_off >= atomic_load(&p->next_offset))
			goto out;
		*offset = start_off;
		*byte = atomic_load(&p->start_byte);
	} else {
		*offset = e->offset;
		*byte = e->pos;
	}
	ret = 0;
out:
	pthread_rwlock_unlock(&p->seglock);
	return ret;
}
