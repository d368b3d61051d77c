/*
 * partition_recovery.c - opening a partition from its directory, and the
 * recovery that goes with it: the directory scan, leftover and redundant
 * files removed, damage contained to the segment it is in, the torn tail
 * above the recovery point cut, and the start, end and recovery point the
 * reopened log serves from.  What it did is reported in struct
 * partition_recovery and logged once.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "io.h"
#include "partition_int.h"

/* One segment's files as found in the directory. */
struct found {
	uint64_t base;
	unsigned log : 1, idx : 1, blk : 1;
	enum compression comp;
};

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

static struct found *found_get(struct found **list, uint32_t *n, uint32_t *cap,
			       uint64_t base)
{
	struct found *grown;
	uint32_t i;

	for (i = 0; i < *n; i++)
		if ((*list)[i].base == base)
			return &(*list)[i];
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		grown = realloc(*list, *cap * sizeof(**list));
		if (!grown)
			return NULL;
		*list = grown;
	}
	memset(&(*list)[*n], 0, sizeof(**list));
	(*list)[*n].base = base;
	return &(*list)[(*n)++];
}

struct scan_ctx {
	struct partition *p;
	struct partition_recovery *rec;
	struct found *list;
	uint32_t n, cap;
};

/* One name of the directory: a .tmp is removed, segment files noted. */
static int scan_one(void *arg, const char *name, uint64_t base,
		    enum layout_file kind)
{
	struct scan_ctx *c = arg;
	struct found *f;

	if (kind == LAYOUT_FILE_TMP) {
		if (io_unlinkat(c->p->dfd, name, 0) == 0)
			c->rec->discarded_files++;
		return 0;
	}
	f = found_get(&c->list, &c->n, &c->cap, base);
	if (!f)
		return -ENOMEM;
	if (kind == LAYOUT_FILE_LOG)
		f->log = 1;
	else if (kind == LAYOUT_FILE_IDX)
		f->idx = 1;
	else if (kind == LAYOUT_FILE_BLK)
		f->blk = 1;
	else
		f->comp = (enum compression)layout_file_codec(kind);
	return 0;
}

/* List the directory: remove *.tmp, collect segment files. */
static int scan_dir(struct partition *p, struct found **list, uint32_t *n,
		    struct partition_recovery *rec)
{
	struct scan_ctx c = {p, rec, NULL, 0, 0};
	int ret = layout_scan(p->dfd, scan_one, &c);

	if (ret == 0 && c.n)
		qsort(c.list, c.n, sizeof(*c.list), found_cmp);
	*list = c.list;
	*n = c.n;
	return ret;
}

/* Unlink the compressed form of a segment whose raw .log still exists
 * (a compression that did not finish its swap). */
static void drop_compressed(struct partition *p, const struct found *f,
			    struct partition_recovery *rec)
{
	char name[LAYOUT_NAME_MAX];

	if (f->comp) {
		layout_seg_name(name, sizeof(name), f->base,
				layout_data_suffix(f->comp));
		io_unlinkat(p->dfd, name, 0);
	}
	if (f->blk) {
		layout_seg_name(name, sizeof(name), f->base,
				LAYOUT_BLK_SUFFIX);
		io_unlinkat(p->dfd, name, 0);
	}
	rec->discarded_files++;
}

/* Open the segments found in the directory, oldest first, and chain them.
 *
 * Damage is contained to the segment it is in: a sealed segment is never
 * cut below the recovery point (everything below it was synced, so what
 * is wrong there is damage, not a torn write), a segment that cannot be
 * opened, a missing .log, or a gap between two segments leaves a range
 * that reads EIO, and a segment file overlapping the one before it is
 * left on disk and skipped.  Recovery removes only what lies above the
 * recovery point -- bytes never acknowledged: the torn tail of the log
 * and, when a crash came right after a roll, the segments made after the
 * torn one -- and leftover files that are provably redundant.  Every
 * removal is made durable (directory fsync) before returning.
 * *head_lost is set when the first segment with data was skipped. */
static int open_segments(struct partition *p, const struct layout_state *st,
			 int have_state, struct partition_recovery *rec,
			 int *head_lost)
{
	struct found *list = NULL;
	struct seg_report rep;
	struct segment *s, *prev = NULL;
	uint64_t hint, verify_from, rp;
	uint32_t n = 0, i, j, unlinked;
	int ret, prev_rebuilt = 0, skipped = 0;
	char path[512];

	part_path(p, path, sizeof(path));
	rp = have_state ? st->recovery_point : UINT64_MAX;
	ret = scan_dir(p, &list, &n, rec);
	unlinked = rec->discarded_files;
	if (ret < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (list[i].log && (list[i].comp || list[i].blk)) {
			drop_compressed(p, &list[i], rec);
			list[i].comp = COMPRESSION_NONE;
			list[i].blk = 0;
			unlinked++;
		}
		if (!list[i].log && !list[i].comp) {
			if (prev || (have_state &&
				     !(i + 1 < n &&
				       list[i + 1].base <= st->start_offset))) {
				/* the data of a segment in the middle is
				 * gone: its range reads EIO; the .idx stays
				 * for whoever repairs it */
				diag_err("segment %020llu of '%s' has no data "
					 "file: left as it is, its range "
					 "reads fail with EIO",
					 (unsigned long long)list[i].base,
					 path);
				rec->damaged_segments++;
				*head_lost |= !prev;
				skipped = 1;
				continue;
			}
			/* an orphan .idx/.blk before any data, below the
			 * log start: left by retention, redundant */
			segment_unlink(p->dfd, list[i].base);
			rec->discarded_files++;
			unlinked++;
			continue;
		}
		/* Left behind by retention after the state moved on. */
		if (have_state && i + 1 < n &&
		    list[i + 1].base <= st->start_offset) {
			segment_unlink(p->dfd, list[i].base);
			unlinked++;
			continue;
		}
		if (prev && list[i].base < prev->next_offset) {
			/* names offsets the segment before holds: a stray
			 * copy, never opened (opening could repair it) */
			diag_err("segment %020llu of '%s' overlaps the one "
				 "before it: left on disk, skipped",
				 (unsigned long long)list[i].base, path);
			rec->damaged_segments++;
			continue;
		}
		memset(&rep, 0, sizeof(rep));
		hint = prev ? seg_end(prev) : st->first_base_byte;
		verify_from = have_state ? st->recovery_point : 0;
		ret = segment_open(p->dfd, list[i].base, hint, verify_from, rp,
				   i + 1 < n, list[i].comp, &s, &rep);
		if (ret < 0 && i + 1 < n && ret != -ENOMEM) {
			/* a sealed segment: its range reads EIO */
			diag_err("cannot open segment %020llu of '%s': %s: "
				 "skipped, its range reads fail with EIO",
				 (unsigned long long)list[i].base, path,
				 strerror(-ret));
			rec->damaged_segments++;
			*head_lost |= !prev;
			skipped = 1;
			continue;
		}
		if (ret < 0) {
			diag_err("cannot open segment %020llu of '%s': %s",
				 (unsigned long long)list[i].base, path,
				 strerror(-ret));
			goto out;
		}
		if (prev && prev_rebuilt && !skipped &&
		    s->base_byte == seg_end(prev) &&
		    s->base_offset > prev->next_offset) {
			/* A rebuilt index counts line ends, so a message
			 * that ended without a newline (a writer closed
			 * mid-line) merged with the next one.  The next
			 * segment says how many messages there were: the
			 * rebuilt segment's last entry takes the difference,
			 * rather than every later segment being cut. */
			uint64_t lost = s->base_offset - prev->next_offset;

			if (segment_add_messages(prev, lost) == 0)
				diag_err("segment %020llu of '%s': %llu "
					 "message(s) without a newline merged "
					 "in its rebuilt index; offsets inside "
					 "it may be off by that much",
					 (unsigned long long)prev->base_offset,
					 p->name, (unsigned long long)lost);
		}
		if (prev && s->base_byte < seg_end(prev)) {
			diag_err("segment %020llu of '%s' overlaps the bytes "
				 "before it: left on disk, skipped",
				 (unsigned long long)s->base_offset, path);
			segment_free(s);
			rec->damaged_segments++;
			continue;
		}
		if (prev && (s->base_offset != prev->next_offset ||
			     s->base_byte != seg_end(prev))) {
			if (seg_end(prev) >= rp) {
				/* the segment before lost its unflushed
				 * tail, and this one was made by a roll
				 * after it: never acknowledged */
				segment_free(s);
				rep.cut = 1;
				i--;
				goto cut;
			}
			diag_err("bytes %llu-%llu (offsets %llu-%llu) of '%s' "
				 "are missing: reads of them fail with EIO",
				 (unsigned long long)seg_end(prev),
				 (unsigned long long)s->base_byte,
				 (unsigned long long)prev->next_offset,
				 (unsigned long long)s->base_offset, path);
			if (!skipped) /* else counted with the lost one */
				rec->damaged_segments++;
		}
		skipped = 0;
		rec->truncated_bytes += rep.truncated_bytes;
		rec->dropped_entries += rep.dropped_entries;
		rec->rebuilt_indexes += rep.rebuilt;
		rec->bad_batches += rep.bad_entries;
		metrics_add(&p->m, lost_messages, s->lost_msgs);
		if (rep.ignored_bytes) {
			diag_err("segment %020llu of '%s' has %llu bytes past "
				 "its last batch: ignored, left on disk",
				 (unsigned long long)s->base_offset, path,
				 (unsigned long long)rep.ignored_bytes);
			rec->damaged_segments++;
		}
		if (rep.bad_entries) {
			metrics_add(&p->m, crc_failures, rep.bad_entries);
			if (rep.cut)
				diag_err("bad crc in '%s' at byte %llu, log cut "
					 "there",
					 path, (unsigned long long)seg_end(s));
			else
				diag_err("bad crc in %u batch(es) of segment "
					 "%020llu of '%s': kept, reads of them "
					 "fail with EIO",
					 rep.bad_entries,
					 (unsigned long long)s->base_offset,
					 path);
		}
		if (s->readonly && i + 1 == n)
			diag_warn("segment %020llu of '%s' cannot be opened "
				  "for writing: the partition is served "
				  "read-only, appends fail with EROFS",
				  (unsigned long long)s->base_offset, path);
		ret = part_segs_push(p, s);
		if (ret < 0) {
			segment_free(s);
			goto out;
		}
		prev = s;
		prev_rebuilt = rep.rebuilt > 0;
	cut:
		if (rep.cut) {
			/* Only bytes above the recovery point are cut, so
			 * every later segment holds nothing acknowledged. */
			for (j = i + 1; j < n; j++) {
				segment_unlink(p->dfd, list[j].base);
				rec->discarded_files++;
				unlinked++;
			}
			break;
		}
	}
	ret = 0;
	/* damage kept in place is counted as CRC failures are: an operator
	 * watching that counter sees it */
	metrics_add(&p->m, crc_failures, rec->damaged_segments);
out:
	/* the removals are durable before anything new depends on them */
	if (unlinked) {
		int r = io_fsync_dir(p->dfd);

		if (ret == 0)
			ret = r;
	}
	free(list);
	return ret;
}

/* Open dirfd/name and recover it. */
int partition_open(int dirfd, const char *name, const struct config *cfg,
		   int64_t now_ms, struct partition **out,
		   struct partition_recovery *rec)
{
	struct partition_recovery local;
	struct partition *p;
	struct segment *s, *last;
	struct layout_state st = {0, 0, 0, 0};
	int dfd, ret, have_state, head_lost = 0;
	uint64_t end, start_off, start_byte, msg_start;
	uint32_t i, n;

	if (!rec)
		rec = &local;
	memset(rec, 0, sizeof(*rec));
	dfd = io_opendirat(dirfd, name);
	if (dfd < 0)
		return dfd;
	p = partition_alloc(dfd, name, cfg);
	if (!p) {
		io_close(dfd);
		return -ENOMEM;
	}
	ret = layout_state_load(dfd, &st);
	have_state = ret == 0;
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		goto err;
	if (ret == -EINVAL)
		diag_warn("damaged '%s' in '%s', checking every segment",
			  LAYOUT_STATE_FILE, name);
	ret = open_segments(p, &st, have_state, rec, &head_lost);
	if (ret < 0)
		goto err;
	if (p->nsegs == 0) {
		ret = segment_create(dfd, st.start_offset, st.start_byte, &s);
		if (ret == 0)
			ret = part_segs_push(p, s);
		if (ret < 0)
			goto err;
		metrics_add(&p->m, segments_created, 1);
	}
	last = active_seg(p);
	ret = segment_map_grow(last, seg_n(last) + 1024,
			       seg_end(last) - last->base_byte + (1 << 20),
			       NULL);
	if (ret < 0)
		goto err;
	end = seg_end(last);
	start_off = p->segs[0]->base_offset;
	start_byte = p->segs[0]->base_byte;
	if (have_state && (st.start_offset > start_off ||
			   (head_lost && st.start_byte < start_byte))) {
		/* (a lost first segment is damage, not a retention hole:
		 * its range reads EIO, not zeros) */
		start_off = st.start_offset;
		start_byte = st.start_byte;
	}
	if (start_off > last->next_offset || start_byte > end) {
		start_off = last->next_offset;
		start_byte = end;
	}
	p->first_base_byte = head_lost && have_state ? st.first_base_byte
						     : p->segs[0]->base_byte;
	atomic_store(&p->start_offset, start_off);
	atomic_store(&p->start_byte, start_byte);
	atomic_store(&p->next_offset, last->next_offset);
	atomic_store(&p->end_byte, end);
	for (i = p->nsegs; i-- > 0;) {
		n = seg_n(p->segs[i]);
		if (n) {
			atomic_store(&p->last_ts,
				     segment_entry(p->segs[i], n - 1).ts);
			break;
		}
	}
	atomic_store(&p->flushed_byte, have_state && st.recovery_point < end
					       ? st.recovery_point
					       : (have_state ? end : 0));
	/* Named in a loss report, should the next flush fail. */
	p->flushed_offset = atomic_load(&p->flushed_byte) == end
				    ? last->next_offset
				    : atomic_load(&p->start_offset);
	if (atomic_load(&p->flushed_byte) > start_byte &&
	    atomic_load(&p->flushed_byte) < end)
		part_byte_to_offset_locked(p, atomic_load(&p->flushed_byte),
					   &p->flushed_offset, &msg_start);
	p->last_flush_ms = now_ms;
	p->state_ms = now_ms;
	p->state_rp = have_state ? st.recovery_point : 0;
	if (rec->truncated_bytes || rec->dropped_entries ||
	    rec->rebuilt_indexes || rec->discarded_files || rec->bad_batches ||
	    rec->damaged_segments) {
		char path[512];

		part_path(p, path, sizeof(path));
		metrics_add(&p->m, recoveries, 1);
		metrics_add(&p->m, truncated_bytes, rec->truncated_bytes);
		diag_info("recovered '%s': %llu bytes truncated, %u entries "
			  "dropped, %u indexes rebuilt, %u files discarded, "
			  "%u damaged segments kept",
			  path, (unsigned long long)rec->truncated_bytes,
			  rec->dropped_entries, rec->rebuilt_indexes,
			  rec->discarded_files, rec->damaged_segments);
	}
	if (!have_state || rec->truncated_bytes || rec->dropped_entries) {
		part_state_now(p, &st);
		ret = part_state_write(p, &st);
		if (ret < 0)
			goto err;
	}
	for (i = 0; i + 1 < p->nsegs; i++) {
		p->segs[i]->sealed = 1; /* segments before the active one */
		part_seg_idle(p, p->segs[i]);
	}
	*out = p;
	return 0;
err:
	partition_free(p);
	return ret;
}
