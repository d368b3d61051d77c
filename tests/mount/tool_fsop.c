/*
 * tool_fsop.c - the file operations the mount tests need and shell tools
 * cannot make: pwrite at a chosen offset, lseek SEEK_DATA/SEEK_HOLE, and
 * shared mmap for reading and (to see it refused) for writing, a bare
 * rename(2), and an append handle held open across many writes.
 *
 * Each subcommand prints its result on stdout and exits 0, or prints
 * "tool_fsop: OP: <strerror>" on stderr and exits 1, so a test can check
 * the errno by its message as it does for coreutils.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int report(const char *op, int err)
{
	fprintf(stderr, "tool_fsop: %s: %s\n", op, strerror(err));
	return 1;
}

static int parse_off(const char *s, off_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -EINVAL;
	*out = (off_t)v;
	return 0;
}

/* pwrite FILE OFFSET STRING: one pwrite() of STRING on an O_WRONLY fd. */
static int do_pwrite(const char *path, const char *offs, const char *data)
{
	size_t len = strlen(data);
	off_t off;
	ssize_t n;
	int fd, err;

	if (parse_off(offs, &off))
		return report("offset", EINVAL);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return report("open", errno);
	n = pwrite(fd, data, len, off);
	if (n < 0) {
		err = errno;
		close(fd);
		return report("pwrite", err);
	}
	if (close(fd))
		return report("close", errno);
	printf("%zd\n", n);
	return (size_t)n == len ? 0 : report("pwrite", EIO);
}

/* seek FILE data|hole OFFSET: print what lseek returns. */
static int do_seek(const char *path, const char *whence, const char *offs)
{
	off_t off, r;
	int fd, how, err;

	if (parse_off(offs, &off))
		return report("offset", EINVAL);
	if (!strcmp(whence, "data"))
		how = SEEK_DATA;
	else if (!strcmp(whence, "hole"))
		how = SEEK_HOLE;
	else
		return report("whence", EINVAL);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return report("open", errno);
	r = lseek(fd, off, how);
	err = errno;
	close(fd);
	if (r < 0)
		return report("lseek", err);
	printf("%lld\n", (long long)r);
	return 0;
}

/* mmap-write FILE: try a writable shared mapping (fluxfs must refuse). */
static int do_mmap_write(const char *path)
{
	struct stat st;
	void *p;
	int fd, err;

	fd = open(path, O_RDWR);
	if (fd < 0)
		return report("open", errno);
	if (fstat(fd, &st)) {
		err = errno;
		close(fd);
		return report("fstat", err);
	}
	p = mmap(NULL, st.st_size ? (size_t)st.st_size : 4096,
		 PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		close(fd);
		return report("mmap", err);
	}
	/* Never store through it: the point is only whether it was allowed. */
	munmap(p, st.st_size ? (size_t)st.st_size : 4096);
	close(fd);
	printf("mapped\n");
	return 0;
}

/* mmap-read FILE: copy the file to stdout through a read-only mapping. */
static int do_mmap_read(const char *path)
{
	struct stat st;
	size_t done = 0;
	ssize_t n;
	char *p;
	int fd, err;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return report("open", errno);
	if (fstat(fd, &st)) {
		err = errno;
		close(fd);
		return report("fstat", err);
	}
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		close(fd);
		return report("mmap", err);
	}
	while (done < (size_t)st.st_size) {
		n = write(STDOUT_FILENO, p + done, (size_t)st.st_size - done);
		if (n < 0) {
			err = errno;
			munmap(p, (size_t)st.st_size);
			close(fd);
			return report("write", err);
		}
		done += (size_t)n;
	}
	munmap(p, (size_t)st.st_size);
	close(fd);
	return 0;
}

/* rename OLD NEW: rename(2) itself; mv words some errnos its own way
 * (EINVAL becomes "cannot move to a subdirectory of itself"). */
static int do_rename(const char *from, const char *to)
{
	if (rename(from, to))
		return report("rename", errno);
	return 0;
}

/* Decode the escapes \n and \\ of s in place; returns the new length. */
static size_t unescape(char *s)
{
	size_t i, o = 0;

	for (i = 0; s[i]; i++) {
		if (s[i] == '\\' && s[i + 1] == 'n') {
			s[o++] = '\n';
			i++;
		} else if (s[i] == '\\' && s[i + 1] == '\\') {
			s[o++] = '\\';
			i++;
		} else {
			s[o++] = s[i];
		}
	}
	return o;
}

/*
 * hold FILE: open FILE for appending and keep that one descriptor while
 * stdin lasts.  The first answer on stdout is "opened" (or "err
 * <strerror>" and exit), so the caller knows the descriptor exists before
 * it goes on.  Each stdin line (escapes \n, \\) is sent in one write();
 * the answer is "ok N" or "err <strerror>".  At EOF the
 * descriptor is closed and the answer is "closed" or "err <strerror>".
 * A shell redirection (printf >&3) cannot do this: the dup it makes is
 * closed after every command, and each close sends FUSE a flush, which
 * ends the pending partial line.
 */
static int do_hold(const char *path)
{
	char *line = NULL;
	size_t cap = 0, len;
	ssize_t n;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) {
		printf("err %s\n", strerror(errno));
		return 1;
	}
	printf("opened\n");
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		len = unescape(line);
		n = write(fd, line, len);
		if (n < 0)
			printf("err %s\n", strerror(errno));
		else
			printf("ok %zd\n", n);
	}
	free(line);
	if (close(fd)) {
		printf("err %s\n", strerror(errno));
		return 1;
	}
	printf("closed\n");
	return 0;
}

/* Entry point: dispatch on the subcommand. */
int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "pwrite"))
		return do_pwrite(argv[2], argv[3], argv[4]);
	if (argc == 5 && !strcmp(argv[1], "seek"))
		return do_seek(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "mmap-write"))
		return do_mmap_write(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "mmap-read"))
		return do_mmap_read(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "rename"))
		return do_rename(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return do_hold(argv[2]);
	fprintf(stderr,
		"usage: tool_fsop pwrite FILE OFFSET STRING\n"
		"       tool_fsop seek FILE data|hole OFFSET\n"
		"       tool_fsop mmap-write FILE\n"
		"       tool_fsop mmap-read FILE\n"
		"       tool_fsop rename OLD NEW\n"
		"       tool_fsop hold FILE  (stdin: lines to write)\n");
	return 2;
}
