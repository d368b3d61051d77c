/*
 * segment_recovery.c - opening an existing segment and making it whole:
 * the shape check of its .idx, rebuilding a missing or damaged .idx (or
 * .blk) from the data, cutting a torn tail, the per-entry CRC checks and
 * their verification states (at open, and lazily on a first read), and
 * marking a damaged batch lost for fluxctl repair --drop-damaged.
 *
 * A segment it opens is then used through segment.c, with which it
 * shares segment_int.h.  Every file syscall goes through io.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "diag.h"
#include "io.h"
#include "segment.h"
#include "segment_int.h"

/* 0 and *hd if the header is intact and names base_offset. */
static int header_parse(const unsigned char *h, uint64_t base_offset,
			struct layout_idx_header *hd)
{
	if (layout_idx_header_decode(h, hd) < 0 ||
	    hd->base_offset != base_offset)
		return -EINVAL;
	return 0;
}

/* CRC-32C of len bytes of fd at off, read in pieces. */
static int crc_range(int fd, uint64_t off, uint64_t len, uint32_t *out)
{
	unsigned char *buf;
	uint32_t crc = 0;
	size_t piece;
	ssize_t n;
	int ret = 0;

	buf = malloc(len < 65536 ? (len ? len : 1) : 65536);
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		piece = len < 65536 ? len : 65536;
		n = io_pread_full(fd, buf, piece, off);
		if (n < 0 || (size_t)n != piece) {
			ret = n < 0 ? (int)n : -EIO;
			break;
		}
		crc = crc32c(crc, buf, piece);
		off += piece;
		len -= piece;
	}
	free(buf);
	*out = crc;
	return ret;
}

/* ------------------------------------------------------------------ */
/* Rebuilding an index from the data                                    */

/* Accumulates whole messages into chunks of at most SEG_CHUNK_BYTES. */
struct chunker {
	struct seg_entry *ents; /* output */
	uint32_t n, alloc;	/* entries used, allocated (grow mode) */
	int grow;		/* realloc ents as needed (rebuild) */
	uint64_t base;		/* global byte of relative position 0 */
	uint64_t next_off;	/* offset of the chunk's first message */
	uint64_t start, last;	/* chunk start, end of its last message */
	uint32_t count;
	int64_t ts;
	int err;
};

static void chunk_emit(struct chunker *c)
{
	struct seg_entry *e, *grown;
	uint32_t ncap;

	if (!c->count)
		return;
	if (c->grow && c->n == c->alloc) {
		ncap = c->alloc ? c->alloc * 2 : 256;
		grown = realloc(c->ents, (size_t)ncap * sizeof(*grown));
		if (!grown) {
			c->err = -ENOMEM;
			return;
		}
		c->ents = grown;
		c->alloc = ncap;
	}
	e = &c->ents[c->n++];
	memset(e, 0, sizeof(*e));
	e->offset = c->next_off;
	e->pos = c->base + c->start;
	e->ts = c->ts;
	e->count = c->count;
	e->len = (uint32_t)(c->last - c->start);
	c->next_off += c->count;
	c->start = c->last;
	c->count = 0;
}

/* One message ends at relative position end. */
static void chunk_add(struct chunker *c, uint64_t end)
{
	if (c->count && end - c->start > SEG_CHUNK_BYTES)
		chunk_emit(c);
	c->count++;
	c->last = end;
}

/* Write NNN.idx from the lines of the .log (atomically, via .tmp).  Bytes
 * at or above trust_until were never flushed and nothing can vouch for
 * them without an index: they are cut off (*cut gets how many). */
static int rebuild_index(int dirfd, uint64_t base_offset, uint64_t base_byte,
			 int log_fd, uint64_t trust_until, uint64_t *cut)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES], *win = NULL;
	char name[LAYOUT_NAME_MAX], tmp[LAYOUT_NAME_MAX];
	struct chunker c;
	struct stat st;
	uint64_t size, at = 0, i;
	const unsigned char *nl;
	size_t wlen, k;
	ssize_t n;
	int fd = -1, ret;

	memset(&c, 0, sizeof(c));
	c.grow = 1;
	ret = io_fstat(log_fd, &st);
	if (ret < 0)
		return ret;
	size = (uint64_t)st.st_size;
	if (base_byte + size > trust_until) {
		*cut = base_byte + size -
		       (trust_until > base_byte ? trust_until : base_byte);
		size -= *cut;
		ret = io_ftruncate(log_fd, size);
		/* durable before an index is built on the shorter log */
		if (ret == 0)
			ret = io_fdatasync(log_fd);
		if (ret < 0)
			return ret;
	}
	c.base = base_byte;
	c.next_off = base_offset;
	c.ts = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	win = malloc(1 << 20);
	if (!win)
		return -ENOMEM;
	while (at < size) {
		n = io_pread_full(log_fd, win, 1 << 20, at);
		if (n <= 0) {
			ret = n < 0 ? (int)n : -EIO;
			goto out;
		}
		wlen = (size_t)n;
		k = 0;
		while (k < wlen) {
			nl = memchr(win + k, '\n', wlen - k);
			if (!nl)
				break;
			k = (size_t)(nl - win) + 1;
			chunk_add(&c, at + k);
		}
		at += wlen;
	}
	if (c.last < size || c.count) {
		if (c.last < size)
			chunk_add(&c, size); /* a last line without newline */
		chunk_emit(&c);
	}
	if (c.err) {
		ret = c.err;
		goto out;
	}
	for (i = 0; i < c.n; i++) {
		ret = crc_range(log_fd, c.ents[i].pos - base_byte,
				c.ents[i].len, &c.ents[i].crc);
		if (ret < 0)
			goto out;
		c.ents[i].flags = SEG_F_LAST;
		layout_entry_seal(&c.ents[i]);
	}
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	layout_seg_name(tmp, sizeof(tmp), base_offset,
			LAYOUT_IDX_SUFFIX LAYOUT_TMP_SUFFIX);
	fd = io_openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	seg_header_fill(hdr, base_offset, base_byte);
	ret = io_pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (ret == 0 && c.n)
		ret = seg_write_entries(fd, c.ents, c.n, entry_at(0));
	if (ret == 0)
		ret = io_fsync(fd);
	if (ret == 0)
		ret = io_renameat(dirfd, tmp, dirfd, name);
	if (ret == 0)
		ret = io_fsync_dir(dirfd);
	else
		io_unlinkat(dirfd, tmp, 0);
out:
	if (fd >= 0)
		io_close(fd);
	free(c.ents);
	free(win);
	return ret;
}

/* Rebuild a compressed segment's index: decode its blocks into a raw
 * scratch file beside it (NNN.raw.tmp; a crash leaves it for the next
 * open's *.tmp sweep) and index that.  Every byte is trusted: a segment is
 * compressed only after it was flushed whole. */
static int rebuild_compressed_index(int dirfd, struct segment *s,
				    uint64_t base_byte)
{
	unsigned char *buf = NULL;
	uint32_t i, max = 1;
	uint64_t cut = 0;
	char tmp[LAYOUT_NAME_MAX];
	int fd, ret = 0;

	uint64_t at = 0;

	/* The table is checked by its CRC only: hold it to the shape the
	 * compressor writes before sizing anything by it. */
	for (i = 0; i < s->nblocks; i++) {
		if (s->blocks[i].raw_pos != at ||
		    s->blocks[i].raw_len > CODEC_BLOCK_BYTES)
			return -EIO;
		at += s->blocks[i].raw_len;
		if (s->blocks[i].raw_len > max)
			max = s->blocks[i].raw_len;
	}
	buf = malloc(max);
	if (!buf)
		return -ENOMEM;
	layout_seg_name(tmp, sizeof(tmp), s->base_offset, ".raw" LAYOUT_TMP_SUFFIX);
	fd = io_openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	for (i = 0; ret == 0 && i < s->nblocks; i++) {
		ret = codec_read_block(s->codec, s->log_fd, &s->blocks[i], buf);
		if (ret == 0)
			ret = io_pwrite_full(fd, buf, s->blocks[i].raw_len,
					     s->blocks[i].raw_pos);
	}
	if (ret == 0)
		ret = rebuild_index(dirfd, s->base_offset, base_byte, fd,
				    UINT64_MAX, &cut);
	free(buf);
	io_close(fd);
	io_unlinkat(dirfd, tmp, 0);
	return ret;
}

/* A damaged or missing NNN.blk: the table is rebuilt from the compressed
 * frame itself (every block decoded on the way) and written back
 * atomically; damage to an index of the data is not a reason to lose the
 * data.  -EIO if the frame is damaged too. */
static int rebuild_blocks(int dirfd, struct segment *s, uint64_t *raw_len)
{
	struct codec_block *b = NULL;
	uint32_t n = 0;
	int ret;

	free(s->blocks);
	s->blocks = NULL;
	s->nblocks = 0;
	ret = codec_scan_blocks(s->codec, s->log_fd, s->disk_bytes, &b, &n,
				raw_len);
	if (ret == 0)
		ret = layout_blk_store(dirfd, s->base_offset, s->codec,
				       *raw_len, b, n);
	if (ret < 0) {
		diag_err("segment %020llu: the block table is damaged and the "
			 "%s frame cannot be walked: %s",
			 (unsigned long long)s->base_offset,
			 codec_name(s->codec), strerror(-ret));
		free(b);
		return ret;
	}
	diag_err("segment %020llu: damaged block table rebuilt from the %s "
		 "frame (%u blocks)",
		 (unsigned long long)s->base_offset, codec_name(s->codec), n);
	s->blocks = b;
	s->nblocks = n;
	return 0;
}

/* Read NNN.blk into s->blocks; 0 or -errno (-EIO if damaged). */
static int read_blocks(int dirfd, struct segment *s, uint64_t *raw_len)
{
	return layout_blk_load(dirfd, s->base_offset, s->codec, raw_len,
			       &s->blocks, &s->nblocks);
}

/* ------------------------------------------------------------------ */
/* Opening: the index checked, a torn tail cut                          */

/* Whether the encoded entry at b has the shape every search relies on:
 * whole (its own checksum), at want_pos and want_off (following on from
 * the entry before), its time not before prev_ts. */
static inline int entry_shaped(const unsigned char *b, uint64_t want_pos,
			       uint64_t want_off, int64_t prev_ts)
{
	return le64_get(b + LAYOUT_ENT_POS) == want_pos &&
	       le64_get(b + LAYOUT_ENT_OFFSET) == want_off &&
	       (int64_t)le64_get(b + LAYOUT_ENT_TS) >= prev_ts &&
	       layout_entry_intact_raw(b);
}

/* Check entries from index k on; returns the first bad index (or n).
 * *crc_bad is set when the stop was a data CRC mismatch. */
static uint32_t validate_from(struct segment *s, uint32_t k, uint32_t n,
			      uint64_t data_end, int check_data,
			      uint64_t keep_below, uint32_t *crc_bad)
{
	struct seg_entry prev = {0}, e;
	uint64_t want_pos, want_off;
	uint32_t i, crc;

	*crc_bad = 0;
	if (k)
		prev = segment_entry(s, k - 1);
	for (i = k; i < n; i++, prev = e) {
		e = segment_entry(s, i);
		want_pos = i ? prev.pos + prev.len : s->base_byte;
		want_off = i ? prev.offset + prev.count : s->base_offset;
		if (!entry_shaped((const unsigned char *)s->map + entry_at(i),
				  want_pos, want_off, i ? prev.ts : INT64_MIN))
			return i;
		if (e.pos + e.len > data_end) {
			if (e.pos + e.len > keep_below)
				return i; /* unflushed: a lost write, cut */
			/* Flushed bytes of a sealed segment are gone (the
			 * .log was cut short on the disk): keep the entry,
			 * reads of it fail with EIO. */
			(*crc_bad)++;
			s->vstate[i] = SEG_V_BAD;
			continue;
		}
		if (!check_data)
			continue;
		if (layout_entry_lost(&e)) {
			/* dropped by repair: zeros, nothing to check */
			s->vstate[i] = SEG_V_GOOD;
			continue;
		}
		if (crc_range(s->log_fd, e.pos - s->base_byte, e.len, &crc) <
			    0 ||
		    crc != e.crc) {
			(*crc_bad)++;
			if (e.pos + e.len > keep_below)
				return i; /* unflushed: a torn write, cut */
			/* Flushed bytes of a sealed segment went bad on the
			 * disk: keep the batch (reads of it fail with EIO)
			 * and everything after it. */
			s->vstate[i] = SEG_V_BAD;
			continue;
		}
		s->vstate[i] = SEG_V_GOOD;
	}
	return n;
}

/* The shape check at open: validate_from(s, 0, n, UINT64_MAX, 0, 0)
 * (each entry whole, its position and offset following on from the one
 * before, its time not going back), over the mapped bytes with nothing
 * decoded: it runs over every entry of every segment a partition opens.
 * Returns the first misshapen entry, or n. */
static uint32_t shape_check(const struct segment *s, uint32_t n)
{
	const unsigned char *b = (const unsigned char *)s->map + entry_at(0);
	uint64_t want_pos = s->base_byte, want_off = s->base_offset;
	int64_t prev_ts = INT64_MIN;
	uint32_t i;

	for (i = 0; i < n; i++, b += LAYOUT_ENTRY_BYTES) {
		if (!entry_shaped(b, want_pos, want_off, prev_ts))
			return i;
		want_pos += le32_get(b + LAYOUT_ENT_LEN);
		want_off += le32_get(b + LAYOUT_ENT_COUNT);
		prev_ts = (int64_t)le64_get(b + LAYOUT_ENT_TS);
	}
	return n;
}

/* End byte of the first k entries (the base byte when k is 0). */
static uint64_t entries_end(const struct segment *s, uint32_t k)
{
	struct seg_entry e;

	if (!k)
		return s->base_byte;
	e = segment_entry(s, k - 1);
	return e.pos + e.len;
}

/* Open and repair a segment (see segment.h). */
int segment_open(int dirfd, uint64_t base_offset, uint64_t base_byte,
		 uint64_t verify_from, uint64_t trust_until, int sealed,
		 enum compression compressed, struct segment **out,
		 struct seg_report *rep)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES];
	char name[LAYOUT_NAME_MAX];
	struct segment *s = seg_alloc(base_offset);
	struct layout_idx_header hd;
	struct seg_entry last;
	struct stat st;
	uint64_t data_len, data_end, idx_size, good_end, cut = 0;
	uint32_t n, good, k, shaped, crc_bad = 0;
	int ret, rebuilt = 0;
	ssize_t got;

	if (!s)
		return -ENOMEM;
	s->codec = compressed;
	layout_seg_name(name, sizeof(name), base_offset,
		     layout_data_suffix(compressed));
	s->log_fd = io_openat(dirfd, name, compressed ? O_RDONLY : O_RDWR, 0);
	if (s->log_fd == -EPERM || s->log_fd == -EACCES ||
	    s->log_fd == -EROFS) {
		/* immutable or read-only: still served, never written */
		s->log_fd = io_openat(dirfd, name, O_RDONLY, 0);
		s->readonly = s->log_fd >= 0;
	}
	if (s->log_fd < 0) {
		ret = s->log_fd;
		goto err;
	}
	ret = io_fstat(s->log_fd, &st);
	if (ret < 0)
		goto err;
	s->disk_bytes = (uint64_t)st.st_size;
	data_len = (uint64_t)st.st_size;
	if (compressed) {
		ret = read_blocks(dirfd, s, &data_len);
		if (ret == -EIO || ret == -ENOENT) {
			ret = rebuild_blocks(dirfd, s, &data_len);
			if (ret == 0)
				rep->rebuilt++;
		}
		if (ret < 0)
			goto err;
	}
reopen_idx:
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	s->idx_fd = io_openat(dirfd, name, O_RDWR, 0);
	if (s->idx_fd >= 0) {
		got = io_pread_full(s->idx_fd, hdr, sizeof(hdr), 0);
		ret = got == (ssize_t)sizeof(hdr)
			      ? header_parse(hdr, base_offset, &hd)
			      : -EINVAL;
	} else {
		ret = s->idx_fd;
	}
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		goto err;
	if (ret < 0) {
		if (rebuilt) {
			ret = -EIO;
			goto err;
		}
	rebuild:
		io_close(s->idx_fd);
		s->idx_fd = -1;
		if (compressed)
			ret = rebuild_compressed_index(
				dirfd, s,
				base_byte == UINT64_MAX ? 0 : base_byte);
		else
			ret = rebuild_index(dirfd, base_offset,
					    base_byte == UINT64_MAX ? 0
								    : base_byte,
					    s->log_fd, trust_until, &cut);
		if (ret < 0)
			goto err;
		rep->rebuilt++;
		if (cut) {
			rep->truncated_bytes += cut;
			rep->cut = 1;
			data_len -= cut;
			s->disk_bytes = data_len;
		}
		rebuilt = 1;
		verify_from = UINT64_MAX; /* the CRCs were just computed */
		goto reopen_idx;
	}
	s->base_byte = hd.base_byte;
	s->lost_msgs = hd.lost_msgs;
	s->lost_bytes = hd.lost_bytes;
	ret = io_fstat(s->idx_fd, &st);
	if (ret < 0)
		goto err;
	idx_size = (uint64_t)st.st_size;
	n = (uint32_t)((idx_size - LAYOUT_IDX_HEADER_BYTES) /
		       LAYOUT_ENTRY_BYTES);
	ret = seg_map_entries(s, n + 64);
	if (ret < 0)
		goto err;
	data_end = s->base_byte + data_len;

	/* Every search relies on the entries' shape (each one's own
	 * checksum, positions and offsets following on), so it is checked
	 * in full: one pass over the .idx, no data read.  A misshapen entry
	 * below the recovery point is damage to the index, not a torn
	 * write: rebuild the index from the log instead of accepting it
	 * (searches then miss, and even a new append read back as EIO) or
	 * cutting the flushed log there. */
	shaped = n; /* a rebuilt index is well-formed throughout */
	if (!rebuilt) {
		/* shape only: a log shorter than its entries is a torn
		 * or lost write, which the walk below cuts as before.  A
		 * compressed segment was flushed whole before it was
		 * compressed: any misshapen entry is damage. */
		k = shape_check(s, n);
		shaped = k;
		if (k < n && (compressed || entries_end(s, k) < verify_from)) {
			diag_err("damaged index entry %u in segment %020llu: "
				 "rebuilding the index from the log",
				 k, (unsigned long long)base_offset);
			seg_unmap_entries(s);
			base_byte = s->base_byte;
			goto rebuild;
		}
	}

	/* A clean segment is judged by its last entry alone. */
	good = n;
	if (n > 0)
		last = segment_entry(s, n - 1);
	if (verify_from >= data_end && n > 0 && layout_entry_intact(&last) &&
	    (last.flags & SEG_F_LAST) && last.pos + last.len == data_end &&
	    last.offset >= base_offset)
		goto accept;
	if (verify_from >= data_end && n == 0 && data_len == 0)
		goto accept;
	/* Walk from the first entry that ends above the recovery point (or
	 * from the start if the clean check failed). */
	k = 0;
	if (verify_from < data_end && verify_from > s->base_byte) {
		/* Only over the well-formed entries: a garbled one (a torn
		 * index write at the recovery point) could steer the search
		 * past itself, and the walk would then keep it. */
		uint32_t lo = 0, hi = shaped, mid;

		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (entries_end(s, mid + 1) <= verify_from)
				lo = mid + 1;
			else
				hi = mid;
		}
		k = lo;
	}
	good = validate_from(s, k, n, data_end, !compressed,
			     sealed ? trust_until : 0, &crc_bad);
	rep->bad_entries += crc_bad;
	/* Keep whole writes only: back up to the end of the last one. */
	while (good > 0 && !(segment_entry(s, good - 1).flags & SEG_F_LAST))
		good--;
	good_end = entries_end(s, good);
	if (compressed && (good < n || good_end != data_end)) {
		diag_err("compressed segment '%020llu' has a damaged index%s",
			 (unsigned long long)base_offset,
			 rebuilt ? "" : ": rebuilding it from the data");
		ret = -EIO;
		if (rebuilt)
			goto err;
		seg_unmap_entries(s);
		base_byte = s->base_byte;
		goto rebuild;
	}
	if (good_end < data_end && sealed && good == n &&
	    good_end < trust_until) {
		/* Bytes past the last entry of a sealed segment, below the
		 * recovery point: not a torn write (everything below it was
		 * synced with its entries), so damage such as a
		 * zero-extended file.  Nothing refers to them: ignore them,
		 * never cut the flushed log. */
		rep->ignored_bytes += data_end - good_end;
	} else if (good_end < data_end) {
		/* The cut is synced at once: the segment is marked synced
		 * below, so no flush would ever sync it again, and after a
		 * roll a second power loss would bring the torn bytes back
		 * inside a sealed segment. */
		ret = io_ftruncate(s->log_fd, good_end - s->base_byte);
		if (ret == 0)
			ret = io_fdatasync(s->log_fd);
		if (ret < 0)
			goto err;
		rep->truncated_bytes += data_end - good_end;
		s->disk_bytes = good_end - s->base_byte;
		rep->cut = 1;
	}
	if (good < n) {
		rep->dropped_entries += n - good;
		rep->cut = 1;
	}
accept:
	if (idx_size != entry_at(good)) {
		ret = io_ftruncate(s->idx_fd, entry_at(good));
		if (ret == 0)
			ret = io_fdatasync(s->idx_fd);
		if (ret < 0)
			goto err;
	}
	atomic_store(&s->nentries, good);
	atomic_store(&s->end_byte, entries_end(s, good));
	if (good)
		last = segment_entry(s, good - 1);
	s->next_offset = good ? last.offset + last.count : base_offset;
	if (compressed) {
		s->sealed = 1;
		for (k = 0; k < good; k++)
			s->vstate[k] =
				SEG_V_GOOD; /* checked before compressing */
	}
	s->synced = 1;
	if (compressed)
		segment_map_compressed(s);
	if (!compressed) {
		atomic_store(&s->log_short,
			     s->disk_bytes < atomic_load(&s->end_byte) -
						     s->base_byte);
		/* never map past the end of a .log cut short on the disk:
		 * touching such a page would raise SIGBUS */
		s->lmap_len =
			(size_t)(atomic_load(&s->end_byte) - s->base_byte);
		if (s->lmap_len > s->disk_bytes)
			s->lmap_len = (size_t)s->disk_bytes;
		s->lmap = seg_map_log(s->log_fd, s->lmap_len);
		if (!s->lmap)
			s->lmap_len = 0;
	}
	*out = s;
	return 0;
err:
	segment_free(s);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Checking an entry on its first read                                  */

/* Check entry i's CRC once; data (the entry's bytes) may be NULL. */
int segment_verify_entry(struct segment *s, uint32_t i, const void *data)
{
	struct seg_entry ent = segment_entry(s, i), *e = &ent;
	int st = atomic_load_explicit(&s->vstate[i], memory_order_relaxed);
	uint32_t crc;
	int ret;

	if (st != SEG_V_UNKNOWN || s->codec != COMPRESSION_NONE)
		return st != SEG_V_UNKNOWN ? st : SEG_V_GOOD;
	if (layout_entry_lost(e)) {
		atomic_store_explicit(&s->vstate[i], SEG_V_GOOD,
				      memory_order_relaxed);
		return SEG_V_GOOD;
	}
	/* A sealed segment read through its mappings holds no descriptor:
	 * the mapping serves whenever it shows the entry. */
	if (!data)
		data = segment_peek(s, e->pos, e->len);
	if (data) {
		crc = crc32c(0, data, e->len);
	} else {
		ret = crc_range(s->log_fd, e->pos - s->base_byte, e->len, &crc);
		if (ret < 0)
			return ret;
	}
	st = crc == e->crc ? SEG_V_GOOD : SEG_V_BAD;
	atomic_store_explicit(&s->vstate[i], (uint8_t)st, memory_order_relaxed);
	return st == SEG_V_BAD ? SEG_V_NEWBAD : st;
}

/* ------------------------------------------------------------------ */
/* Dropping a damaged batch (fluxctl repair --drop-damaged)             */

/* Zero [off, off+len) of fd: punch a hole, else write zeros. */
static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const unsigned char zeros[65536];
	uint64_t n;
	int ret;

	ret = io_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			   len);
	if (ret == 0 || (ret != -EOPNOTSUPP && ret != -ENOSYS))
		return ret;
	while (len > 0) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		ret = io_pwrite_full(fd, zeros, (size_t)n, off);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* CRC-32C of len zero bytes. */
static uint32_t crc_zeros(uint64_t len)
{
	static const unsigned char zeros[4096];
	uint32_t crc = 0;
	uint64_t n;

	while (len > 0) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		crc = crc32c(crc, zeros, (size_t)n);
		len -= n;
	}
	return crc;
}

/* Mark entry i of an offline raw segment lost (see segment.h). */
int segment_mark_lost(int dirfd, uint64_t base_offset, uint32_t i)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES], *raw = NULL;
	struct layout_idx_header hd;
	struct seg_entry e, *all = NULL;
	uint64_t idx_size;
	uint32_t n, k, zcrc;
	struct stat st;
	char name[LAYOUT_NAME_MAX];
	int log_fd = -1, idx_fd = -1, ret;
	ssize_t got;

	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_LOG_SUFFIX);
	log_fd = io_openat(dirfd, name, O_RDWR, 0);
	if (log_fd < 0) {
		ret = log_fd == -ENOENT ? -EOPNOTSUPP : log_fd;
		goto out;
	}
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	idx_fd = io_openat(dirfd, name, O_RDWR, 0);
	if (idx_fd < 0) {
		ret = idx_fd;
		goto out;
	}
	got = io_pread_full(idx_fd, hdr, sizeof(hdr), 0);
	ret = got == (ssize_t)sizeof(hdr)
		      ? header_parse(hdr, base_offset, &hd)
		      : (got < 0 ? (int)got : -EINVAL);
	if (ret < 0)
		goto out;
	ret = io_fstat(idx_fd, &st);
	if (ret < 0)
		goto out;
	idx_size = (uint64_t)st.st_size;
	n = (uint32_t)((idx_size - LAYOUT_IDX_HEADER_BYTES) /
		       LAYOUT_ENTRY_BYTES);
	if (i >= n) {
		ret = -EINVAL;
		goto out;
	}
	all = malloc((size_t)n * sizeof(*all));
	raw = malloc((size_t)n * LAYOUT_ENTRY_BYTES);
	if (!all || !raw) {
		ret = -ENOMEM;
		goto out;
	}
	got = io_pread_full(idx_fd, raw, (size_t)n * LAYOUT_ENTRY_BYTES,
			    entry_at(0));
	if (got != (ssize_t)((size_t)n * LAYOUT_ENTRY_BYTES)) {
		ret = got < 0 ? (int)got : -EIO;
		goto out;
	}
	for (k = 0; k < n; k++)
		layout_entry_decode(raw + (size_t)k * LAYOUT_ENTRY_BYTES,
				    &all[k]);
	e = all[i];
	if (!layout_entry_intact(&e) || e.pos < hd.base_byte) {
		ret = -EINVAL;
		goto out;
	}
	/* The bytes first: an entry marked lost over bytes that are not
	 * zeros would hand readers garbage without a check. */
	ret = zero_range(log_fd, e.pos - hd.base_byte, e.len);
	if (ret == 0)
		ret = io_fdatasync(log_fd);
	if (ret < 0)
		goto out;
	zcrc = crc_zeros(e.len);
	if (!layout_entry_lost(&e) || e.crc != zcrc) {
		e.flags |= SEG_F_LOST;
		e.crc = zcrc;
		layout_entry_seal(&e);
		all[i] = e;
		ret = seg_write_entries(idx_fd, &e, 1, entry_at(i));
		if (ret < 0)
			goto out;
	}
	/* Recounted from the entries, so a repair interrupted between the
	 * entry and the header is made whole by running it again. */
	hd.lost_msgs = hd.lost_bytes = 0;
	for (k = 0; k < n; k++) {
		if (layout_entry_intact(&all[k]) && layout_entry_lost(&all[k])) {
			hd.lost_msgs += all[k].count;
			hd.lost_bytes += all[k].len;
		}
	}
	layout_idx_header_encode(hdr, &hd);
	ret = io_pwrite_full(idx_fd, hdr, sizeof(hdr), 0);
	if (ret == 0)
		ret = io_fsync(idx_fd);
out:
	free(raw);
	free(all);
	if (idx_fd >= 0)
		io_close(idx_fd);
	if (log_fd >= 0)
		io_close(log_fd);
	return ret;
}
