/*
 * layout.c - the on-disk format in one place: segment file names and
 * their parsing, the partition directory scan, the .idx header and entry
 * codecs, the .blk block table, partition.state, and the data directory's
 * fluxfs.meta (its format and inode-number bound) and lock file.  Every integer is little-endian on disk
 * whatever the host (le*_put/le*_get); the daemon and fluxctl read and
 * write through here, so the format has one reader.  See layout.h and
 * doc/storage.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "diag.h"
#include "io.h"
#include "layout.h"

/* Field positions of the .idx header. */
#define HDR_VERSION 8
#define HDR_ENTRY_BYTES 12
#define HDR_BASE_OFFSET 16
#define HDR_BASE_BYTE 24
#define HDR_LOST_MSGS 32
#define HDR_LOST_BYTES 40
#define HDR_CRC (LAYOUT_IDX_HEADER_BYTES - 4)

/* The .blk table: a 24-byte head, 24-byte entries, a 4-byte CRC. */
#define BLK_CODEC 8
#define BLK_COUNT 12
#define BLK_RAW_LEN 16
#define BLK_HEAD 24
#define BLK_ENTRY 24
#define BLK_MAX_BYTES (1 << 26)

/* The codec numbers in .blk are the enum's values: pin them. */
_Static_assert(COMPRESSION_NONE == 0 && COMPRESSION_LZ4 == 1 &&
		       COMPRESSION_GZIP == 2 && COMPRESSION_ZSTD == 3,
	       "codec numbers are part of the .blk format");
_Static_assert(LAYOUT_ENT_ECRC == LAYOUT_ENTRY_CRC_BYTES &&
		       LAYOUT_ENT_ECRC + 4 == LAYOUT_ENTRY_BYTES,
	       "entry layout");

/* ------------------------------------------------------------------ */
/* Names                                                                */

/* Build a segment file name: 20-digit base offset and suffix. */
void layout_seg_name(char *buf, size_t size, uint64_t base_offset,
		     const char *suffix)
{
	snprintf(buf, size, "%020" PRIu64 "%s", base_offset, suffix);
}

/* Name of a dropped batch's copy. */
void layout_batch_name(char *buf, size_t size, uint64_t base_offset,
		       uint64_t pos, uint32_t len)
{
	snprintf(buf, size, "%020" PRIu64 "-%" PRIu64 "-%" PRIu32 ".batch",
		 base_offset, pos, len);
}

/* Suffix of a segment's data file. */
const char *layout_data_suffix(enum compression c)
{
	switch (c) {
	case COMPRESSION_LZ4:
		return LAYOUT_LZ4_SUFFIX;
	case COMPRESSION_GZIP:
		return LAYOUT_GZ_SUFFIX;
	case COMPRESSION_ZSTD:
		return LAYOUT_ZST_SUFFIX;
	default:
		return LAYOUT_LOG_SUFFIX;
	}
}

/* Codec of a data file kind, -1 if it is not a data file. */
int layout_file_codec(enum layout_file kind)
{
	switch (kind) {
	case LAYOUT_FILE_LOG:
		return COMPRESSION_NONE;
	case LAYOUT_FILE_LZ4:
		return COMPRESSION_LZ4;
	case LAYOUT_FILE_GZ:
		return COMPRESSION_GZIP;
	case LAYOUT_FILE_ZST:
		return COMPRESSION_ZSTD;
	default:
		return -1;
	}
}

static const struct {
	const char *suffix;
	enum layout_file kind;
} seg_suffixes[] = {
	{LAYOUT_LOG_SUFFIX, LAYOUT_FILE_LOG},
	{LAYOUT_IDX_SUFFIX, LAYOUT_FILE_IDX},
	{LAYOUT_BLK_SUFFIX, LAYOUT_FILE_BLK},
	{LAYOUT_LZ4_SUFFIX, LAYOUT_FILE_LZ4},
	{LAYOUT_GZ_SUFFIX, LAYOUT_FILE_GZ},
	{LAYOUT_ZST_SUFFIX, LAYOUT_FILE_ZST},
};

/* Classify a name in a partition directory. */
int layout_parse_name(const char *name, uint64_t *base, enum layout_file *kind)
{
	size_t len = strlen(name), i;
	uint64_t v = 0;
	unsigned d;

	if (len > strlen(LAYOUT_TMP_SUFFIX) &&
	    !strcmp(name + len - strlen(LAYOUT_TMP_SUFFIX),
		    LAYOUT_TMP_SUFFIX)) {
		*base = 0;
		*kind = LAYOUT_FILE_TMP;
		return 0;
	}
	if (len <= LAYOUT_NAME_DIGITS)
		return -EINVAL;
	for (i = 0; i < LAYOUT_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -EINVAL;
		d = (unsigned)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL; /* 20 digits past 2^64 - 1 */
		v = v * 10 + d;
	}
	for (i = 0; i < sizeof(seg_suffixes) / sizeof(seg_suffixes[0]); i++) {
		if (!strcmp(name + LAYOUT_NAME_DIGITS,
			    seg_suffixes[i].suffix)) {
			*base = v;
			*kind = seg_suffixes[i].kind;
			return 0;
		}
	}
	return -EINVAL;
}

/* Call fn for each segment file and .tmp leftover in dfd. */
int layout_scan(int dfd, layout_scan_fn fn, void *arg)
{
	enum layout_file kind;
	struct dirent *de;
	uint64_t base;
	DIR *dir;
	int ret;

	ret = io_opendir_stream(dfd, ".", &dir);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(dir, &de)) > 0) {
		if (layout_parse_name(de->d_name, &base, &kind) < 0)
			continue;
		ret = fn(arg, de->d_name, base, kind);
		if (ret)
			break;
	}
	io_closedir(dir);
	return ret;
}

/* ------------------------------------------------------------------ */
/* .idx header and entries                                              */

/* Encode a header, current version, with its checksum. */
void layout_idx_header_encode(void *buf, const struct layout_idx_header *h)
{
	unsigned char *b = buf;

	memset(b, 0, LAYOUT_IDX_HEADER_BYTES);
	memcpy(b, LAYOUT_IDX_MAGIC, 8);
	le32_put(b + HDR_VERSION, LAYOUT_IDX_VERSION);
	le32_put(b + HDR_ENTRY_BYTES, LAYOUT_ENTRY_BYTES);
	le64_put(b + HDR_BASE_OFFSET, h->base_offset);
	le64_put(b + HDR_BASE_BYTE, h->base_byte);
	le64_put(b + HDR_LOST_MSGS, h->lost_msgs);
	le64_put(b + HDR_LOST_BYTES, h->lost_bytes);
	le32_put(b + HDR_CRC, crc32c(0, b, HDR_CRC));
}

/* Decode and check a header. */
int layout_idx_header_decode(const void *buf, struct layout_idx_header *h)
{
	const unsigned char *b = buf;

	if (memcmp(b, LAYOUT_IDX_MAGIC, 8) ||
	    le32_get(b + HDR_CRC) != crc32c(0, b, HDR_CRC) ||
	    le32_get(b + HDR_ENTRY_BYTES) != LAYOUT_ENTRY_BYTES)
		return -EINVAL;
	h->version = le32_get(b + HDR_VERSION);
	if (h->version < LAYOUT_IDX_VERSION_MIN ||
	    h->version > LAYOUT_IDX_VERSION)
		return -EPROTONOSUPPORT;
	h->base_offset = le64_get(b + HDR_BASE_OFFSET);
	h->base_byte = le64_get(b + HDR_BASE_BYTE);
	h->lost_msgs = le64_get(b + HDR_LOST_MSGS);
	h->lost_bytes = le64_get(b + HDR_LOST_BYTES);
	return 0;
}

static uint32_t entry_checksum(const struct seg_entry *e)
{
	unsigned char b[LAYOUT_ENTRY_BYTES];

	layout_entry_encode(b, e);
	return crc32c(0, b, LAYOUT_ENTRY_CRC_BYTES);
}

/* Seal an entry: its checksum over the encoded fields. */
void layout_entry_seal(struct seg_entry *e)
{
	e->reserved = 0;
	e->ecrc = entry_checksum(e);
}

/* Is the entry whole?  Its encoding is, decoding loses nothing. */
int layout_entry_intact(const struct seg_entry *e)
{
	unsigned char b[LAYOUT_ENTRY_BYTES];

	layout_entry_encode(b, e);
	return layout_entry_intact_raw(b);
}

int layout_entry_intact_raw(const void *buf)
{
	const unsigned char *b = buf;

	return le32_get(b + LAYOUT_ENT_ECRC) ==
		       crc32c(0, b, LAYOUT_ENTRY_CRC_BYTES) &&
	       le32_get(b + LAYOUT_ENT_LEN) > 0 &&
	       le32_get(b + LAYOUT_ENT_COUNT) > 0;
}

/* ------------------------------------------------------------------ */
/* .blk block table                                                     */

size_t layout_blk_size(uint32_t n)
{
	return BLK_HEAD + (size_t)n * BLK_ENTRY + 4;
}

/* Encode a block table. */
void layout_blk_encode(void *buf, enum compression c, uint64_t raw_len,
		       const struct codec_block *b, uint32_t n)
{
	unsigned char *p = buf, *q;
	size_t size = layout_blk_size(n);
	uint32_t i;

	memcpy(p, LAYOUT_BLK_MAGIC, 8);
	le32_put(p + BLK_CODEC, (uint32_t)c);
	le32_put(p + BLK_COUNT, n);
	le64_put(p + BLK_RAW_LEN, raw_len);
	for (i = 0, q = p + BLK_HEAD; i < n; i++, q += BLK_ENTRY) {
		le64_put(q, b[i].raw_pos);
		le64_put(q + 8, b[i].file_pos);
		le32_put(q + 16, b[i].raw_len);
		le32_put(q + 20, b[i].file_len);
	}
	le32_put(p + size - 4, crc32c(0, p, size - 4));
}

/* Decode and check a block table for codec c. */
int layout_blk_decode(const void *buf, size_t len, enum compression c,
		      uint64_t *raw_len, struct codec_block **out, uint32_t *n)
{
	const unsigned char *p = buf, *q;
	struct codec_block *b;
	uint32_t count, i;

	if (len < layout_blk_size(0) || memcmp(p, LAYOUT_BLK_MAGIC, 8))
		return -EINVAL;
	count = le32_get(p + BLK_COUNT);
	if (le32_get(p + BLK_CODEC) != (uint32_t)c ||
	    (uint64_t)len != BLK_HEAD + (uint64_t)count * BLK_ENTRY + 4 ||
	    le32_get(p + len - 4) != crc32c(0, p, len - 4))
		return -EINVAL;
	b = calloc(count ? count : 1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (i = 0, q = p + BLK_HEAD; i < count; i++, q += BLK_ENTRY) {
		b[i].raw_pos = le64_get(q);
		b[i].file_pos = le64_get(q + 8);
		b[i].raw_len = le32_get(q + 16);
		b[i].file_len = le32_get(q + 20);
	}
	*raw_len = le64_get(p + BLK_RAW_LEN);
	*out = b;
	*n = count;
	return 0;
}

/* Read all of a file (see layout.h). */
int layout_read_file(int dfd, const char *name, unsigned char **buf,
		     size_t *len, size_t max)
{
	return io_read_whole(dfd, name, max, (char **)buf, len);
}

/* Read and decode NNN.blk. */
int layout_blk_load(int dfd, uint64_t base_offset, enum compression c,
		    uint64_t *raw_len, struct codec_block **out, uint32_t *n)
{
	char name[LAYOUT_NAME_MAX];
	unsigned char *buf;
	size_t len;
	int ret;

	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_BLK_SUFFIX);
	ret = layout_read_file(dfd, name, &buf, &len, BLK_MAX_BYTES);
	if (ret == -EFBIG)
		return -EIO;
	if (ret < 0)
		return ret;
	ret = layout_blk_decode(buf, len, c, raw_len, out, n);
	free(buf);
	return ret == -EINVAL ? -EIO : ret;
}

/* Write NNN.blk atomically. */
int layout_blk_store(int dfd, uint64_t base_offset, enum compression c,
		     uint64_t raw_len, const struct codec_block *b, uint32_t n)
{
	size_t size = layout_blk_size(n);
	unsigned char *buf = malloc(size);
	char name[LAYOUT_NAME_MAX];
	int ret;

	if (!buf)
		return -ENOMEM;
	layout_blk_encode(buf, c, raw_len, b, n);
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_BLK_SUFFIX);
	ret = io_write_atomic(dfd, name, buf, size);
	free(buf);
	return ret;
}

/* Read and decode a whole .idx. */
int layout_idx_load(int dfd, uint64_t base_offset, struct layout_idx_header *h,
		    struct seg_entry **ents, uint32_t *n, uint64_t *size)
{
	char name[LAYOUT_NAME_MAX];
	unsigned char *buf;
	uint32_t i;
	size_t len;
	int ret;

	*ents = NULL;
	*n = 0;
	*size = 0;
	layout_seg_name(name, sizeof(name), base_offset, LAYOUT_IDX_SUFFIX);
	ret = layout_read_file(dfd, name, &buf, &len, (size_t)1 << 32);
	if (ret < 0)
		return ret;
	*size = len;
	ret = -EINVAL;
	if (len < LAYOUT_IDX_HEADER_BYTES ||
	    layout_idx_header_decode(buf, h) < 0 ||
	    h->base_offset != base_offset)
		goto out;
	ret = 0;
	*n = (uint32_t)((len - LAYOUT_IDX_HEADER_BYTES) / LAYOUT_ENTRY_BYTES);
	if (!*n)
		goto out;
	*ents = malloc((size_t)*n * sizeof(**ents));
	if (!*ents) {
		*n = 0;
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < *n; i++)
		layout_entry_decode(buf + LAYOUT_IDX_HEADER_BYTES +
					    (size_t)i * LAYOUT_ENTRY_BYTES,
				    &(*ents)[i]);
out:
	free(buf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* partition.state                                                      */

/* The text of a state. */
int layout_state_encode(char *buf, size_t size, const struct layout_state *st)
{
	return snprintf(
		buf, size,
		"%s %d\nstart_offset=%" PRIu64 "\nstart_byte=%" PRIu64
		"\nfirst_base_byte=%" PRIu64 "\nrecovery_point=%" PRIu64 "\n",
		LAYOUT_STATE_MAGIC, LAYOUT_STATE_VERSION, st->start_offset,
		st->start_byte, st->first_base_byte, st->recovery_point);
}

/* Parse the text of a state (len bytes, not NUL-terminated). */
int layout_state_decode(const char *buf, size_t len, struct layout_state *st)
{
	unsigned long long v[4];
	char text[512];
	int version;

	if (len >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = '\0';
	if (sscanf(text,
		   LAYOUT_STATE_MAGIC
		   " %d\nstart_offset=%llu\nstart_byte=%llu\n"
		   "first_base_byte=%llu\nrecovery_point=%llu",
		   &version, &v[0], &v[1], &v[2], &v[3]) != 5)
		return -EINVAL;
	if (version != LAYOUT_STATE_VERSION)
		return -EPROTONOSUPPORT;
	st->start_offset = v[0];
	st->start_byte = v[1];
	st->first_base_byte = v[2];
	st->recovery_point = v[3];
	return 0;
}

/* Read partition.state. */
int layout_state_load(int dfd, struct layout_state *st)
{
	unsigned char *buf;
	size_t len;
	int ret;

	ret = layout_read_file(dfd, LAYOUT_STATE_FILE, &buf, &len, 4096);
	if (ret == -EFBIG)
		return -EINVAL;
	if (ret < 0)
		return ret;
	ret = layout_state_decode((const char *)buf, len, st);
	free(buf);
	return ret < 0 ? -EINVAL : 0;
}

/* Write partition.state atomically. */
int layout_state_store(int dfd, const struct layout_state *st)
{
	char buf[256];
	int n = layout_state_encode(buf, sizeof(buf), st);

	return io_write_atomic(dfd, LAYOUT_STATE_FILE, buf, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* mirror.pos and mirror.conf                                           */

#define MIRROR_POS_MAGIC "fluxfs-mirror-pos 1"

int layout_mirror_pos_encode(char *buf, size_t size,
			     const struct layout_mirror_pos *m)
{
	int n = snprintf(buf, size, MIRROR_POS_MAGIC " %llu %llu %llu %llu %llu",
			 (unsigned long long)m->seq,
			 (unsigned long long)m->local_before,
			 (unsigned long long)m->local_after,
			 (unsigned long long)m->remote_before,
			 (unsigned long long)m->remote_after);
	uint32_t crc;

	if (n < 0 || (size_t)n >= size)
		return -ERANGE;
	crc = crc32c(0, buf, (size_t)n);
	n += snprintf(buf + n, size - (size_t)n, " %08x\n", crc);
	return (size_t)n >= size ? -ERANGE : n;
}

int layout_mirror_pos_decode(const char *buf, size_t len,
			     struct layout_mirror_pos *m)
{
	char text[160], *sp;
	unsigned long long sq, lb, la, rb, ra;
	unsigned crc;
	char end;

	if (len == 0 || len >= sizeof(text) || buf[len - 1] != '\n')
		return -EINVAL;
	memcpy(text, buf, len - 1);
	text[len - 1] = '\0';
	sp = strrchr(text, ' ');
	if (!sp || sscanf(sp + 1, "%8x%c", &crc, &end) != 1 ||
	    crc32c(0, text, (size_t)(sp - text)) != crc)
		return -EINVAL;
	*sp = '\0';
	if (strncmp(text, MIRROR_POS_MAGIC " ", strlen(MIRROR_POS_MAGIC) + 1) ||
	    sscanf(text + strlen(MIRROR_POS_MAGIC), " %llu %llu %llu %llu %llu%c",
		   &sq, &lb, &la, &rb, &ra, &end) != 5)
		return -EINVAL;
	m->seq = sq;
	m->local_before = lb;
	m->local_after = la;
	m->remote_before = rb;
	m->remote_after = ra;
	return 0;
}

int layout_mirror_pos_load(int dfd, struct layout_mirror_pos *m)
{
	unsigned char *buf;
	size_t len;
	int ret;

	ret = layout_read_file(dfd, LAYOUT_MIRROR_POS_FILE, &buf, &len, 4096);
	if (ret == -EFBIG)
		return -EINVAL;
	if (ret < 0)
		return ret;
	ret = layout_mirror_pos_decode((const char *)buf, len, m);
	free(buf);
	return ret;
}

int layout_mirror_pos_store(int dfd, const struct layout_mirror_pos *m)
{
	char buf[160];
	int n = layout_mirror_pos_encode(buf, sizeof(buf), m);

	if (n < 0)
		return n;
	return io_write_atomic(dfd, LAYOUT_MIRROR_POS_FILE, buf, (size_t)n);
}

#define MIRROR_FORCE_LINE "retention=force\n"

int layout_mirror_intent_open(int dfd, int *fd)
{
	int ret = io_openat(dfd, LAYOUT_MIRROR_INTENT_FILE,
			    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (ret >= 0) {
		/* New: its name must be durable before an intent in it. */
		if (io_ftruncate(ret, 2 * LAYOUT_MIRROR_SLOT_BYTES) < 0 ||
		    io_fsync(ret) < 0 || io_fsync_dir(dfd) < 0) {
			io_close(ret);
			return -EIO;
		}
	} else if (ret == -EEXIST) {
		ret = io_openat(dfd, LAYOUT_MIRROR_INTENT_FILE,
				O_RDWR | O_CLOEXEC, 0);
	}
	if (ret < 0)
		return ret;
	*fd = ret;
	return 0;
}

int layout_mirror_intent_load(int dfd, struct layout_mirror_pos *m)
{
	unsigned char *buf;
	struct layout_mirror_pos slot;
	const unsigned char *nl;
	size_t len, i;
	int ret, found = 0;

	ret = layout_read_file(dfd, LAYOUT_MIRROR_INTENT_FILE, &buf, &len,
			      4 * LAYOUT_MIRROR_SLOT_BYTES);
	if (ret < 0)
		return ret == -ENOENT ? -ENOENT : -EINVAL;
	for (i = 0; i + LAYOUT_MIRROR_SLOT_BYTES <= len;
	     i += LAYOUT_MIRROR_SLOT_BYTES) {
		nl = memchr(buf + i, '\n', LAYOUT_MIRROR_SLOT_BYTES);
		if (!nl || layout_mirror_pos_decode((const char *)buf + i,
						    (size_t)(nl + 1 - (buf + i)),
						    &slot) < 0)
			continue;
		if (!found || slot.seq > m->seq)
			*m = slot;
		found = 1;
	}
	free(buf);
	return found ? 0 : -ENOENT;
}

int layout_mirror_intent_store(int fd, const struct layout_mirror_pos *m)
{
	char buf[LAYOUT_MIRROR_SLOT_BYTES];
	int n;

	memset(buf, 0, sizeof(buf));
	n = layout_mirror_pos_encode(buf, sizeof(buf), m);
	if (n < 0)
		return n;
	n = io_pwrite_full(fd, buf, sizeof(buf),
			   (m->seq & 1) * LAYOUT_MIRROR_SLOT_BYTES);
	return n < 0 ? n : io_fdatasync(fd);
}

int layout_mirror_conf_load(int dfd, char *dir, char *name, size_t size,
			    int *force)
{
	unsigned char *buf;
	const char *v, *nl;
	size_t len, vlen, rest;
	int ret;

	ret = layout_read_file(dfd, LAYOUT_MIRROR_CONF_FILE, &buf, &len, 4096);
	if (ret == -EFBIG)
		return -EINVAL;
	if (ret < 0)
		return ret;
	ret = -EINVAL;
	nl = memchr(buf, '\n', len);
	if (nl && len > 4 &&
	    (!memcmp(buf, "to=", 3) || !memcmp(buf, "from=", 5))) {
		*dir = (char)buf[0];
		v = (const char *)buf + (buf[0] == 't' ? 3 : 5);
		vlen = (size_t)(nl - v);
		rest = len - (size_t)(nl + 1 - (const char *)buf);
		*force = rest == strlen(MIRROR_FORCE_LINE) &&
			 !memcmp(nl + 1, MIRROR_FORCE_LINE, rest);
		if (vlen > 0 && vlen < size && (rest == 0 || *force)) {
			memcpy(name, v, vlen);
			name[vlen] = '\0';
			ret = 0;
		}
	}
	free(buf);
	return ret;
}

int layout_mirror_conf_store(int dfd, char dir, const char *name, int force)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s=%s\n%s",
			 dir == 't' ? "to" : "from", name,
			 force ? MIRROR_FORCE_LINE : "");

	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	return io_write_atomic(dfd, LAYOUT_MIRROR_CONF_FILE, buf, (size_t)n);
}

int layout_mirror_conf_remove(int dfd)
{
	int ret = io_unlinkat(dfd, LAYOUT_MIRROR_CONF_FILE, 0);

	if (ret < 0)
		return ret;
	return io_fsync_dir(dfd);
}

/* ------------------------------------------------------------------ */
/* Imported record values                                               */

size_t layout_value_escape(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	if (!memchr(in, '\n', len) && (len == 0 || in[0] != LAYOUT_VALUE_ESCAPED)) {
		memcpy(out, in, len);
		return len;
	}
	out[o++] = LAYOUT_VALUE_ESCAPED;
	for (i = 0; i < len; i++) {
		if (in[i] == '\\' || in[i] == '\n') {
			out[o++] = '\\';
			out[o++] = in[i] == '\n' ? 'n' : '\\';
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}

size_t layout_value_unescape(char *buf, size_t len)
{
	size_t i, o = 0;

	if (len == 0 || buf[0] != LAYOUT_VALUE_ESCAPED)
		return len;
	for (i = 1; i < len; i++) {
		if (buf[i] == '\\' && i + 1 < len &&
		    (buf[i + 1] == 'n' || buf[i + 1] == '\\')) {
			buf[o++] = buf[i + 1] == 'n' ? '\n' : '\\';
			i++;
		} else {
			buf[o++] = buf[i];
		}
	}
	return o;
}

/* ------------------------------------------------------------------ */
/* The data directory                                                   */

/* Entries of rootfd other than the lock file, ".", "..", or -errno: a
 * listing cut short must not pass for an empty directory. */
static int count_foreign(int rootfd)
{
	struct dirent *de;
	DIR *dir;
	int n = 0, ret;

	ret = io_opendir_stream(rootfd, ".", &dir);
	if (ret < 0)
		return ret;
	while ((ret = io_readdir(dir, &de)) > 0)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, LAYOUT_LOCK_FILE))
			n++;
	io_closedir(dir);
	return ret < 0 ? ret : n;
}

/* fluxfs.meta's text: "format=N\n", then "ino_next=N\n" once inode
 * numbers were handed out.  A daemon that knows only the format reads
 * the first line and ignores the rest. */
int layout_datadir_meta_encode(char *buf, size_t size, int format,
			       uint64_t ino_next)
{
	if (ino_next)
		return snprintf(buf, size, "format=%d\nino_next=%llu\n",
				format, (unsigned long long)ino_next);
	return snprintf(buf, size, "format=%d\n", format);
}

int layout_datadir_meta_decode(const char *text, int *format,
			       uint64_t *ino_next)
{
	const char *line;
	unsigned long long u;
	char *end;

	if (sscanf(text, "format=%d", format) != 1 || *format < 1)
		return -EINVAL;
	*ino_next = 0;
	line = strstr(text, "\nino_next=");
	if (!line)
		return 0;
	errno = 0;
	line += strlen("\nino_next=");
	u = strtoull(line, &end, 10);
	if (errno || end == line || (*end != '\n' && *end != '\0') ||
	    u >= LAYOUT_INO_LIMIT)
		return -EINVAL;
	*ino_next = u;
	return 0;
}

static int meta_write(int rootfd, int format, uint64_t ino_next)
{
	char buf[LAYOUT_META_TEXT_MAX];
	int n = layout_datadir_meta_encode(buf, sizeof(buf), format, ino_next);

	return io_write_atomic(rootfd, LAYOUT_META_FILE, buf, (size_t)n);
}

/* fluxfs.meta's text into text (size bytes with its NUL). */
static int meta_read(int rootfd, char *text, size_t size)
{
	unsigned char *buf;
	size_t len;
	int ret;

	ret = layout_read_file(rootfd, LAYOUT_META_FILE, &buf, &len, 4096);
	if (ret == -EFBIG)
		ret = -EINVAL;
	if (ret < 0)
		return ret;
	if (len >= size)
		len = size - 1;
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	return 0;
}

/* Read ino_next from fluxfs.meta. */
int layout_datadir_ino_load(int rootfd, uint64_t *ino_next)
{
	char text[LAYOUT_META_TEXT_MAX];
	int ret, format;

	ret = meta_read(rootfd, text, sizeof(text));
	if (ret < 0)
		return ret;
	return layout_datadir_meta_decode(text, &format, ino_next);
}

/* Store ino_next in fluxfs.meta, atomically and durably. */
int layout_datadir_ino_store(int rootfd, uint64_t ino_next)
{
	return meta_write(rootfd, LAYOUT_FORMAT, ino_next);
}

/* Check (or write, in an empty directory) fluxfs.meta. */
int layout_datadir_check(int rootfd, const char *path, int *format)
{
	unsigned char *buf;
	char text[LAYOUT_META_TEXT_MAX];
	uint64_t ino_next;
	size_t len;
	int ret, version = 0;

	ret = layout_read_file(rootfd, LAYOUT_META_FILE, &buf, &len, 4096);
	if (ret == -ENOENT) {
		ret = count_foreign(rootfd);
		if (ret < 0) {
			diag_err("cannot read '%s': %s", path, strerror(-ret));
			return ret;
		}
		if (ret) {
			diag_err(
				"'%s' is not empty and has no " LAYOUT_META_FILE
				": not a fluxfs data directory",
				path);
			return -ENOTEMPTY;
		}
		ret = meta_write(rootfd, LAYOUT_FORMAT, 0);
		if (ret < 0) {
			diag_err("cannot write '%s/" LAYOUT_META_FILE "': %s",
				 path, strerror(-ret));
			return ret;
		}
		*format = LAYOUT_FORMAT;
		return 0;
	}
	if (ret == -EFBIG)
		ret = -EINVAL;
	if (ret < 0) {
		diag_err("cannot read '%s/" LAYOUT_META_FILE "': %s", path,
			 strerror(-ret));
		return ret;
	}
	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	if (layout_datadir_meta_decode(text, &version, &ino_next) < 0) {
		diag_err("'%s/" LAYOUT_META_FILE "' is damaged", path);
		return -EINVAL;
	}
	if (version > LAYOUT_FORMAT) {
		diag_err("'%s' has format version %d; this fluxfs reads up to "
			 "%d",
			 path, version, LAYOUT_FORMAT);
		return -EPROTONOSUPPORT;
	}
	*format = version;
	return 0;
}

/* Mark an older data directory as the current format. */
int layout_datadir_upgrade(int rootfd, const char *path, int format)
{
	uint64_t ino_next = 0;
	int ret;

	if (format >= LAYOUT_FORMAT)
		return 0;
	/* Format 1 was host byte order on little-endian hosts only, so its
	 * files already are little-endian: nothing but the marker changes. */
	ret = layout_datadir_ino_load(rootfd, &ino_next);
	if (ret < 0)
		return ret;
	ret = meta_write(rootfd, LAYOUT_FORMAT, ino_next);
	if (ret < 0) {
		diag_err("cannot write '%s/" LAYOUT_META_FILE "': %s", path,
			 strerror(-ret));
		return ret;
	}
	diag_info("'%s': data directory format %d read as is and marked "
		  "format %d (little-endian)",
		  path, format, LAYOUT_FORMAT);
	return 0;
}

/* Open and flock the lock file. */
int layout_datadir_lock(int rootfd, const char *path)
{
	char buf[32];
	ssize_t n;
	int fd, ret;

	fd = io_openat(rootfd, LAYOUT_LOCK_FILE, O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		diag_err("cannot open '%s/" LAYOUT_LOCK_FILE "': %s", path,
			 strerror(-fd));
		return fd;
	}
	ret = io_flock(fd, LOCK_EX | LOCK_NB);
	if (ret == 0)
		return fd;
	if (ret == -EWOULDBLOCK)
		ret = -EBUSY;
	n = io_pread_full(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (ret == -EBUSY)
		diag_err("'%s' is already served by fluxfs (pid %s)", path,
			 buf[0] ? buf : "unknown");
	else
		diag_err("cannot lock '%s': %s", path, strerror(-ret));
	io_close(fd);
	return ret;
}

/* Take the clean mark: was the last stop clean, and which summary does
 * it vouch for ("clean\nsummary=XXXXXXXX\n"; an older mark is just
 * "clean\n")? */
int layout_datadir_clean_take(int rootfd, uint32_t *summary_crc)
{
	char buf[64];
	ssize_t n;
	int fd, ret;

	*summary_crc = 0;
	fd = io_openat(rootfd, LAYOUT_CLEAN_FILE, O_RDONLY, 0);
	if (fd >= 0) {
		n = io_pread_full(fd, buf, sizeof(buf) - 1, 0);
		io_close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (sscanf(buf, "clean\nsummary=%8" SCNx32 "\n", summary_crc) !=
		    1)
			*summary_crc = 0;
	}
	ret = io_unlinkat(rootfd, LAYOUT_CLEAN_FILE, 0);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = io_fsync_dir(rootfd);
	return ret < 0 ? ret : 1;
}

/* Leave the clean mark. */
int layout_datadir_clean_mark(int rootfd, uint32_t summary_crc)
{
	char buf[64];
	int n;

	if (!summary_crc)
		return io_write_atomic(rootfd, LAYOUT_CLEAN_FILE, "clean\n", 6);
	n = snprintf(buf, sizeof(buf), "clean\nsummary=%08" PRIx32 "\n",
		     summary_crc);
	return io_write_atomic(rootfd, LAYOUT_CLEAN_FILE, buf, (size_t)n);
}

/* Record the serving pid in the lock file. */
void layout_datadir_note_pid(int lockfd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (io_ftruncate(lockfd, 0) == 0)
		io_pwrite_full(lockfd, buf, (size_t)n, 0);
}

/* The naming rule of the namespace. */
int layout_name_chars_ok(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int layout_text_crc_check(const char *text, size_t len, const char *magic,
			  size_t *body)
{
	unsigned int crc;
	size_t b;
	char extra;

	if (len <= strlen(magic) || text[len - 1] != '\n')
		return -EBADMSG;
	for (b = len - 1; b > 0 && text[b - 1] != '\n'; b--)
		;
	if (sscanf(text + b, "crc32c=%8x%c", &crc, &extra) != 2 ||
	    extra != '\n' || crc != crc32c(0, text, b) ||
	    strncmp(text, magic, strlen(magic)))
		return -EBADMSG;
	*body = b;
	return 0;
}

size_t layout_text_crc_put(char *buf, size_t at, size_t cap)
{
	return at + (size_t)snprintf(buf + at, cap - at, "crc32c=%08x\n",
				     crc32c(0, buf, at));
}

int layout_check_name(const char *name, size_t max, int no_leading_dot)
{
	size_t len = strlen(name);

	if (len > max)
		return -ENAMETOOLONG;
	if (len == 0 || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (no_leading_dot && name[0] == '.')
		return -EINVAL;
	return layout_name_chars_ok(name, len) ? 0 : -EINVAL;
}
