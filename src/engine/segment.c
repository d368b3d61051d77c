/*
 * segment.c - one segment in use: creating its files, the mappings of
 * its .idx and .log, appending batches and their entries, lookups by
 * offset/byte/time, reads, and freeing and unlinking it.
 *
 * Opening an existing segment, with the checks and repairs that makes,
 * is segment_recovery.c's; cutting a batch into chunk entries, and the
 * newline scanning, is segment_plan.c's.  What the bytes of the files
 * mean is layout.h's: entries are encoded and decoded there, also
 * straight from the mapped .idx.  Every file syscall, the mappings
 * included, goes through io.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "io.h"
#include "segment.h"
#include "segment_int.h"

static atomic_uint_fast64_t segment_ids = 1;

/* Build a header naming the segment (no losses: a fresh or empty one). */
void seg_header_fill(unsigned char *h, uint64_t base_offset, uint64_t base_byte)
{
	struct layout_idx_header hd = {
		.base_offset = base_offset,
		.base_byte = base_byte,
	};

	layout_idx_header_encode(h, &hd);
}

/* Write n entries at byte off of the .idx, encoded, in one pwrite. */
int seg_write_entries(int fd, const struct seg_entry *ents, uint32_t n,
		      uint64_t off)
{
	unsigned char small[64 * LAYOUT_ENTRY_BYTES], *buf = small;
	size_t len = (size_t)n * LAYOUT_ENTRY_BYTES;
	uint32_t i;
	int ret;

	if (n == 0)
		return 0;
	if (len > sizeof(small)) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		layout_entry_encode(buf + (size_t)i * LAYOUT_ENTRY_BYTES,
				    &ents[i]);
	ret = io_pwrite_full(fd, buf, len, off);
	if (buf != small)
		free(buf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Creating, mapping, freeing                                           */

/* Map the .idx to show cap entries, with a verification state each. */
int seg_map_entries(struct segment *s, uint32_t cap)
{
	size_t len = LAYOUT_IDX_HEADER_BYTES + (size_t)cap * LAYOUT_ENTRY_BYTES;
	void *m;
	int ret;

	ret = io_mmap(s->idx_fd, len, &m);
	if (ret < 0)
		return ret;
	s->vstate = calloc(cap, 1);
	if (!s->vstate) {
		io_munmap(m, len);
		return -ENOMEM;
	}
	s->map = m;
	s->map_len = len;
	s->map_cap = cap;
	return 0;
}

/* Undo seg_map_entries(). */
void seg_unmap_entries(struct segment *s)
{
	if (s->map)
		io_munmap(s->map, s->map_len);
	free((void *)s->vstate);
	s->map = NULL;
	s->map_len = 0;
	s->map_cap = 0;
	s->vstate = NULL;
}

/* Map the .log read-only (len bytes, may reach past EOF); NULL map if the
 * file cannot be mapped: reads then fall back to pread. */
void *seg_map_log(int fd, size_t len)
{
	void *m;

	if (!SEG_MAP_LOG || len == 0)
		return NULL;
	return io_mmap(fd, len, &m) < 0 ? NULL : m;
}

/* Grow the mappings to show at least need entries and log_bytes of data. */
int segment_map_grow(struct segment *s, uint32_t need, uint64_t log_bytes,
		     pthread_rwlock_t *lock)
{
	size_t len = 0, old_len = s->map_len, llen = 0, old_llen = s->lmap_len;
	void *m = NULL, *old_map = s->map, *lm = NULL, *old_lmap = s->lmap;
	_Atomic uint8_t *v = NULL, *old_v = s->vstate;
	uint32_t cap = s->map_cap, i;
	int ret;

	if (need > s->map_cap) {
		while (cap < need)
			cap = cap < 1024 ? 1024 : cap * 2;
		len = LAYOUT_IDX_HEADER_BYTES + (size_t)cap * LAYOUT_ENTRY_BYTES;
		ret = io_mmap(s->idx_fd, len, &m);
		if (ret < 0)
			return ret;
		v = calloc(cap, 1);
		if (!v) {
			io_munmap(m, len);
			return -ENOMEM;
		}
	}
	if (s->codec == COMPRESSION_NONE && log_bytes > s->lmap_len) {
		llen = s->lmap_len ? s->lmap_len : (1u << 20);
		while (llen < log_bytes)
			llen *= 2;
		lm = seg_map_log(s->log_fd, llen);
		if (!lm)
			llen = 0;
	}
	if (!m && !lm)
		return 0;
	if (lock)
		pthread_rwlock_wrlock(lock);
	if (m) {
		for (i = 0; i < s->map_cap; i++)
			v[i] = atomic_load_explicit(&old_v[i],
						    memory_order_relaxed);
		s->map = m;
		s->map_len = len;
		s->map_cap = cap;
		s->vstate = v;
	}
	if (lm) {
		s->lmap = lm;
		s->lmap_len = llen;
	}
	if (lock)
		pthread_rwlock_unlock(lock);
	if (m) {
		io_munmap(old_map, old_len);
		free((void *)old_v);
	}
	if (lm && old_lmap)
		io_munmap(old_lmap, old_llen);
	return 0;
}

/* Drop the .log mapping (the raw file is being replaced); the caller
 * holds the partition's segment lock for writing. */
void segment_unmap_log(struct segment *s)
{
	if (s->lmap)
		io_munmap(s->lmap, s->lmap_len);
	s->lmap = NULL;
	s->lmap_len = 0;
}

/* A segment for base_offset, with no files open yet. */
struct segment *seg_alloc(uint64_t base_offset)
{
	struct segment *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->id = atomic_fetch_add(&segment_ids, 1);
	s->base_offset = base_offset;
	s->log_fd = -1;
	s->idx_fd = -1;
	return s;
}

/* Create NNN.log and NNN.idx (header only). */
int segment_create(int dirfd, uint64_t base_offset, uint64_t base_byte,
		   struct segment **out)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES];
	char name[LAYOUT_NAME_MAX];
	struct segment *s = seg_alloc(base_offset);
	int ret;

	if (!s)
		return -ENOMEM;
	s->base_byte = base_byte;
	s->next_offset = base_offset;
	atomic_store(&s->end_byte, base_byte);
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_LOG_SUFFIX);
	s->log_fd = io_openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s->log_fd < 0) {
		ret = s->log_fd;
		goto err;
	}
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	s->idx_fd = io_openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s->idx_fd < 0) {
		ret = s->idx_fd;
		goto err_unlink;
	}
	seg_header_fill(hdr, base_offset, base_byte);
	ret = io_pwrite_full(s->idx_fd, hdr, sizeof(hdr), 0);
	if (ret < 0)
		goto err_unlink;
	ret = seg_map_entries(s, 1024);
	if (ret < 0)
		goto err_unlink;
	*out = s;
	return 0;
err_unlink:
	segment_unlink(dirfd, base_offset);
err:
	segment_free(s);
	return ret;
}

/* Map the compressed file whole. */
void segment_map_compressed(struct segment *s)
{
	if (s->cmap || s->codec == COMPRESSION_NONE || s->log_fd < 0)
		return;
	s->cmap = seg_map_log(s->log_fd, (size_t)s->disk_bytes);
	s->cmap_len = s->cmap ? (size_t)s->disk_bytes : 0;
}

/* Release a segment's descriptors, mapping and memory. */
void segment_free(struct segment *s)
{
	if (!s)
		return;
	if (s->map)
		io_munmap(s->map, s->map_len);
	if (s->cmap)
		io_munmap(s->cmap, s->cmap_len);
	segment_unmap_log(s);
	io_close(s->log_fd);
	io_close(s->idx_fd);
	free((void *)s->vstate);
	free(s->blocks);
	free(s);
}

/* Unlink every file of the segment; missing ones are fine. */
int segment_unlink(int dirfd, uint64_t base_offset)
{
	static const char *const sfx[] = {LAYOUT_LOG_SUFFIX, LAYOUT_LZ4_SUFFIX,
					  LAYOUT_GZ_SUFFIX,  LAYOUT_ZST_SUFFIX,
					  LAYOUT_BLK_SUFFIX, LAYOUT_IDX_SUFFIX};
	char name[LAYOUT_NAME_MAX];
	size_t i;
	int ret, first = 0;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		layout_seg_name(name, sizeof(name), base_offset, sfx[i]);
		ret = io_unlinkat(dirfd, name, 0);
		if (ret < 0 && ret != -ENOENT && !first)
			first = ret;
	}
	return first;
}

/* ------------------------------------------------------------------ */
/* Appending                                                            */

/* Cut both files back to log_len and idx_len, and make the cut durable:
 * until it is, a power cut can bring back the failed append's bytes and
 * entries (good CRCs: recovery keeps them), a write that failed with EIO
 * served as data.  Any failure is remembered (stale_tail) for
 * segment_cut_tail to retry.  The .log's sync also covers earlier
 * appends not yet flushed, and it reports a write-back error only once:
 * when it fails, log_sync_lost tells the partition's next flush that
 * those appends may be lost.  An .idx whose sync failed is written again
 * from the mapping (its pages may have been marked clean unwritten). */
static int cut_back(struct segment *s, uint64_t log_len, uint64_t idx_len)
{
	int ri = io_ftruncate(s->idx_fd, idx_len);
	int rl = io_ftruncate(s->log_fd, log_len);
	int sl = 0, si = 0;

	if (ri == 0 && rl == 0) {
		sl = io_fdatasync(s->log_fd);
		si = io_fdatasync(s->idx_fd);
		if (sl < 0)
			atomic_store(&s->log_sync_lost, s->base_byte + log_len);
		if (si < 0)
			segment_rewrite_index(s);
	}
	s->stale_tail = ri < 0 || rl < 0 || sl < 0 || si < 0;
	return ri < 0 ? ri : rl < 0 ? rl : sl < 0 ? sl : si;
}

int segment_cut_tail(struct segment *s)
{
	uint32_t n = atomic_load_explicit(&s->nentries, memory_order_relaxed);
	uint64_t end = atomic_load_explicit(&s->end_byte, memory_order_relaxed);

	if (!s->stale_tail)
		return 0;
	return cut_back(s, end - s->base_byte, entry_at(n));
}

/* Write a batch (given as pieces) and its entries, unpublished; cut back
 * on failure (see segment.h). */
int segment_writev(struct segment *s, const struct iovec *iov, int iovcnt,
		   size_t len, const struct seg_entry *ents, uint32_t n)
{
	uint32_t old_n =
		atomic_load_explicit(&s->nentries, memory_order_relaxed);
	uint64_t old_end =
		atomic_load_explicit(&s->end_byte, memory_order_relaxed);
	uint64_t log_len = old_end - s->base_byte;
	uint64_t idx_len = entry_at(old_n);
	int ret;

	ret = segment_cut_tail(s);
	if (ret < 0)
		return ret;
	ret = iovcnt == 1
		      ? io_pwrite_full(s->log_fd, iov[0].iov_base, len, log_len)
		      : io_pwritev_full(s->log_fd, iov, iovcnt, log_len);
	if (ret == 0)
		ret = seg_write_entries(s->idx_fd, ents, n, idx_len);
	if (ret < 0)
		cut_back(s, log_len, idx_len);
	return ret;
}

/* Take back a batch segment_writev wrote (see segment.h). */
int segment_unwrite(struct segment *s)
{
	s->stale_tail = 1;
	return segment_cut_tail(s);
}

/* Publish the batch segment_writev wrote (see segment.h). */
void segment_publish(struct segment *s, size_t len,
		     const struct seg_entry *ents, uint32_t n, int synced)
{
	uint32_t old_n =
		atomic_load_explicit(&s->nentries, memory_order_relaxed);
	uint64_t old_end =
		atomic_load_explicit(&s->end_byte, memory_order_relaxed);

	s->next_offset = ents[n - 1].offset + ents[n - 1].count;
	s->disk_bytes = old_end - s->base_byte + len;
	s->synced = synced;
	/* The file now reaches past every entry (a short .log's missing
	 * bytes became a hole of zeros, which reads as damage). */
	atomic_store_explicit(&s->log_short, 0, memory_order_release);
	atomic_store_explicit(&s->nentries, old_n + n, memory_order_release);
	atomic_store_explicit(&s->end_byte, old_end + len,
			      memory_order_release);
}

/* Write the index again from the mapping (see segment.h).  Through a
 * private copy: a write whose source is a mapping of the very pages it
 * writes would fault on the page it holds. */
int segment_rewrite_index(struct segment *s)
{
	uint32_t n = atomic_load_explicit(&s->nentries, memory_order_relaxed);
	size_t len = (size_t)entry_at(n);
	void *copy;
	int ret;

	if (s->codec != COMPRESSION_NONE)
		return 0; /* written once, whole, before it was used */
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s->map, len);
	ret = io_pwrite_full(s->idx_fd, copy, len, 0);
	free(copy);
	return ret;
}

/* Give the last entry k more messages, on disk and in memory (see
 * segment.h). */
int segment_add_messages(struct segment *s, uint64_t k)
{
	uint32_t n = atomic_load_explicit(&s->nentries, memory_order_relaxed);
	struct seg_entry e;
	int ret;

	if (n == 0 || k == 0)
		return -EINVAL;
	e = segment_entry(s, n - 1);
	if (k > UINT32_MAX - e.count)
		return -EINVAL;
	e.count += (uint32_t)k;
	layout_entry_seal(&e);
	ret = seg_write_entries(s->idx_fd, &e, 1, entry_at(n - 1));
	if (ret == 0)
		ret = io_fdatasync(s->idx_fd);
	if (ret == 0)
		s->next_offset += k;
	return ret;
}

/* Write one contiguous batch and its entries, then publish them (see
 * segment.h). */
int segment_append(struct segment *s, const void *buf, size_t len,
		   const struct seg_entry *ents, uint32_t n)
{
	struct iovec v = {(void *)(uintptr_t)buf, len};
	int ret = segment_writev(s, &v, 1, len, ents, n);

	if (ret == 0)
		segment_publish(s, len, ents, n, 0);
	return ret;
}

/* Rewrite an empty segment's header with a new base byte. */
int segment_set_base_byte(struct segment *s, uint64_t base_byte)
{
	unsigned char hdr[LAYOUT_IDX_HEADER_BYTES];
	int ret;

	seg_header_fill(hdr, s->base_offset, base_byte);
	ret = io_pwrite_full(s->idx_fd, hdr, sizeof(hdr), 0);
	if (ret < 0)
		return ret;
	s->base_byte = base_byte;
	atomic_store(&s->end_byte, base_byte);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lookups and reads                                                    */

/* The u64 field at byte offset field (LAYOUT_ENT_OFFSET or
 * LAYOUT_ENT_POS) of entry i, read from the mapping without decoding the
 * rest of the entry. */
static inline uint64_t entry_key(const struct segment *s, uint32_t i,
				 size_t field)
{
	return le64_get((const char *)s->map + entry_at(i) + field);
}

/* The first entry whose key (offset or pos, both increasing and roughly
 * linear in the entry index) is above key.  An interpolation guess, then
 * a gallop from it and a binary search of what is left: on a large
 * active segment this touches a few cache lines near the answer instead
 * of ~16 probes spread over megabytes of index. */
static uint32_t upper_bound(const struct segment *s, uint32_t n, uint64_t key,
			    size_t field)
{
	uint32_t lo = 0, hi = n, mid, g, step;
	uint64_t first, last;

	if (n > 32) {
		first = entry_key(s, 0, field);
		last = entry_key(s, n - 1, field);
		if (key < first)
			return 0;
		if (key >= last)
			return n;
		g = (uint32_t)((double)(key - first) / (double)(last - first) *
			       (n - 1));
		if (g >= n)
			g = n - 1;
		step = 1;
		if (entry_key(s, g, field) <= key) {
			lo = g + 1;
			while (lo + step < hi &&
			       entry_key(s, lo + step, field) <= key) {
				lo += step + 1;
				step *= 2;
			}
			if (lo + step < hi)
				hi = lo + step;
		} else {
			hi = g;
			while (hi > lo + step &&
			       entry_key(s, hi - step - 1, field) > key) {
				hi -= step + 1;
				step *= 2;
			}
			if (hi > lo + step)
				lo = hi - step;
		}
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (entry_key(s, mid, field) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the entry whose range by field (LAYOUT_ENT_OFFSET: messages,
 * LAYOUT_ENT_POS: bytes) holds key, or -1. */
static long find_holding(const struct segment *s, uint32_t n, uint64_t key,
			 size_t field)
{
	uint32_t lo = upper_bound(s, n, key, field);
	struct seg_entry e;
	uint64_t end;

	if (lo == 0)
		return -1;
	e = segment_entry(s, lo - 1);
	end = field == LAYOUT_ENT_POS ? e.pos + e.len : e.offset + e.count;
	return key < end ? (long)lo - 1 : -1;
}

/* Index of the entry holding message offset off, or -1. */
long segment_find_offset(const struct segment *s, uint32_t n, uint64_t off)
{
	return find_holding(s, n, off, LAYOUT_ENT_OFFSET);
}

/* Index of the entry holding global byte pos, or -1. */
long segment_find_byte(const struct segment *s, uint32_t n, uint64_t pos)
{
	return find_holding(s, n, pos, LAYOUT_ENT_POS);
}

/* Index of the first entry with ts >= ts_ms, or n. */
long segment_find_time(const struct segment *s, uint32_t n, int64_t ts_ms)
{
	uint32_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((int64_t)le64_get((const char *)s->map + entry_at(mid) +
				      LAYOUT_ENT_TS) < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Mark the entries of s overlapping [from, to) bad; 1 if one of them was
 * good until now. */
static int mark_bad_range(struct segment *s, uint64_t from, uint64_t to)
{
	uint32_t n = atomic_load(&s->nentries), i;
	long k = segment_find_byte(s, n, from);
	struct seg_entry e;
	uint8_t want;
	int first = 0;

	for (i = k < 0 ? 0 : (uint32_t)k; i < n; i++) {
		e = segment_entry(s, i);
		if (e.pos >= to)
			break;
		if (e.pos + e.len <= from)
			continue;
		want = SEG_V_GOOD;
		if (atomic_compare_exchange_strong(&s->vstate[i], &want,
						   SEG_V_BAD))
			first = 1;
	}
	return first;
}

/* Copy bytes of a compressed segment through the block cache. */
int segment_read_compressed(struct segment *s, struct codec_cache *cache,
			    uint64_t pos, void *buf, size_t len,
			    uint64_t *bad_from, uint64_t *bad_to)
{
	const struct codec_file f = { .fd = s->log_fd,
				      .map = s->cmap,
				      .map_len = s->cmap_len };
	const struct codec_block *bad = NULL;
	uint64_t from, to;
	int ret;

	ret = codec_read_range_file(s->codec, &f, s->blocks, s->nblocks, cache,
				    s->id, pos - s->base_byte, buf, len, &bad);
	if (ret == -EIO && bad) {
		from = s->base_byte + bad->raw_pos;
		to = from + bad->raw_len;
		if (mark_bad_range(s, from, to)) {
			*bad_from = from;
			*bad_to = to;
		}
	}
	return ret;
}

/* Read from a raw segment at global byte pos: from the mapping when the
 * range is mapped, else pread. */
ssize_t segment_pread(const struct segment *s, void *buf, size_t len,
		      uint64_t pos)
{
	uint64_t rel = pos - s->base_byte;

	if (s->lmap && rel + len <= s->lmap_len &&
	    pos + len <=
		    atomic_load_explicit(&s->end_byte, memory_order_acquire) &&
	    !atomic_load_explicit(&s->log_short, memory_order_acquire)) {
		memcpy(buf, (const char *)s->lmap + rel, len);
		return (ssize_t)len;
	}
	return io_pread_full(s->log_fd, buf, len, rel);
}

/* Pointer to published bytes [pos, pos+len) in the .log mapping, or NULL
 * when they are not mapped (the caller then copies with segment_pread). */
const void *segment_peek(const struct segment *s, uint64_t pos, size_t len)
{
	uint64_t rel = pos - s->base_byte;

	if (!s->lmap || rel + len > s->lmap_len ||
	    pos + len >
		    atomic_load_explicit(&s->end_byte, memory_order_acquire) ||
	    atomic_load_explicit(&s->log_short, memory_order_acquire))
		return NULL;
	return (const char *)s->lmap + rel;
}
