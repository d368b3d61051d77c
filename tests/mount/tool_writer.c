/*
 * tool_writer.c - one producer for the concurrent-append test.
 *
 * tool_writer FILE ID LINES SEED appends LINES lines to FILE through one
 * O_APPEND descriptor.  Line n reads "wID NNNNNN LLL ppp...\n": the writer,
 * its sequence number, the payload length (1-200, random) and a payload of
 * that many copies of the letter 'a'+ID, so a checker can tell a torn or
 * interleaved line from a whole one.  The bytes go out in write() calls of
 * random size that ignore line boundaries, so the daemon's per-handle
 * holding of partial lines is exercised while other writers append.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_BYTES (256 * 1024)

static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send buf[0, len) in randomly sized write() calls. */
static int write_chunks(int fd, const char *buf, size_t len, uint64_t *rs)
{
	size_t off = 0, chunk;
	int ret;

	while (off < len) {
		if (next_rand(rs) & 1)
			chunk = 1 + next_rand(rs) % 300;
		else
			chunk = 1 + next_rand(rs) % 16384;
		if (chunk > len - off)
			chunk = len - off;
		ret = write_all(fd, buf + off, chunk);
		if (ret)
			return ret;
		off += chunk;
	}
	return 0;
}

/* Entry point: see the file comment for the arguments. */
int main(int argc, char **argv)
{
	unsigned long id, lines, seq, plen;
	uint64_t rs;
	size_t used = 0;
	char *buf;
	int fd, ret = 0, n;

	if (argc != 5) {
		fprintf(stderr, "usage: tool_writer FILE ID LINES SEED\n");
		return 2;
	}
	id = strtoul(argv[2], NULL, 10);
	lines = strtoul(argv[3], NULL, 10);
	rs = strtoull(argv[4], NULL, 10) * 2654435761u + id + 1;
	if (id > 25) {
		fprintf(stderr, "tool_writer: id must be 0-25\n");
		return 2;
	}
	buf = malloc(BUF_BYTES);
	if (!buf) {
		fprintf(stderr, "tool_writer: out of memory\n");
		return 1;
	}
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "tool_writer: cannot open '%s': %s\n", argv[1],
			strerror(errno));
		free(buf);
		return 1;
	}
	for (seq = 0; seq < lines && !ret; seq++) {
		plen = 1 + next_rand(&rs) % 200;
		n = snprintf(buf + used, BUF_BYTES - used, "w%lu %06lu %03lu ",
			     id, seq, plen);
		used += (size_t)n;
		memset(buf + used, 'a' + (int)id, plen);
		used += plen;
		buf[used++] = '\n';
		if (used > BUF_BYTES - 512 || seq + 1 == lines) {
			ret = write_chunks(fd, buf, used, &rs);
			used = 0;
		}
	}
	if (ret)
		fprintf(stderr, "tool_writer: write to '%s': %s\n", argv[1],
			strerror(-ret));
	if (close(fd) && !ret) {
		ret = -errno;
		fprintf(stderr, "tool_writer: close '%s': %s\n", argv[1],
			strerror(-ret));
	}
	free(buf);
	return ret ? 1 : 0;
}
