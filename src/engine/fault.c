/*
 * fault.c - FLUXFS_FAULTS: fail chosen I/O calls on purpose (test builds).
 *
 * Owns one io_ops table whose entries ask decide() whether this call
 * fails, and otherwise pass through to the table that was in force when
 * injection was switched on.  The spec grammar is documented in fault.h.
 * Probabilities are kept as parts per billion so parsing needs no floating
 * point and no locale.  Compiled to nothing unless FLUXFS_FAULT_INJECTION.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "fault.h"
#include "io.h"

#ifdef FLUXFS_FAULT_INJECTION

#define PPB 1000000000u

enum fault_op {
	OP_OPENAT,
	OP_CLOSE,
	OP_PREAD,
	OP_PWRITE,
	OP_PWRITEV,
	OP_FSYNC,
	OP_FDATASYNC,
	OP_FTRUNCATE,
	OP_FALLOCATE,
	OP_FSTAT,
	OP_FSTATAT,
	OP_RENAMEAT,
	OP_UNLINKAT,
	OP_MKDIRAT,
	OP_MMAP,
	OP_MUNMAP,
	OP_FLOCK,
	OP_FSTATVFS,
	OP_FDOPENDIR,
	OP_READDIR,
	OP_CLOSEDIR,
	OP_SYNCFS,
	OP_STATX,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"openat",    "close",	  "pread",     "pwrite", "pwritev", "fsync",
	"fdatasync", "ftruncate", "fallocate", "fstat",	 "fstatat", "renameat",
	"unlinkat",  "mkdirat",	  "mmap",      "munmap", "flock",   "fstatvfs",
	"fdopendir", "readdir",	  "closedir",  "syncfs", "statx",
};

struct errno_name {
	const char *name;
	int value;
};

static const struct errno_name errno_names[] = {
	{"EIO", EIO},	    {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
	{"EINTR", EINTR},   {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM},
	{"EROFS", EROFS},   {"EFBIG", EFBIG},	{"EPERM", EPERM},
	{"EACCES", EACCES}, {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
	{"EBADF", EBADF},
};

#define MAX_ERRNOS 16
#define WRITE_OPS ((1u << OP_PWRITE) | (1u << OP_PWRITEV))

struct fault_spec {
	int active;
	uint64_t seed;
	uint32_t p_ppb;	    /* chance a call named in ops fails */
	uint32_t short_ppb; /* chance a write is cut short */
	uint32_t ops;	    /* bit per enum fault_op */
	int errnos[MAX_ERRNOS];
	int nerrnos;
	uint64_t after;
	uint64_t max; /* UINT64_MAX: unlimited */
	uint64_t delay_us; /* sleep before each write that goes through */
};

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_spec cur; /* protected by fault_lock */
static uint64_t rng_state;    /* protected by fault_lock */
static uint64_t candidates;   /* protected by fault_lock */
static uint64_t spec_faults;  /* protected by fault_lock */
static _Atomic(const struct io_ops *) under;
static atomic_uint_fast64_t total_faults;

/* xorshift64*: cheap, seedable, good enough to pick faults. */
static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int roll(uint32_t ppb)
{
	if (ppb == 0)
		return 0;
	return ppb >= PPB || (uint32_t)(rng_next() % PPB) < ppb;
}

/*
 * The verdict for one call: an errno to fail with, or 0 to pass.  For
 * writes of len bytes, *cut (if non-NULL) may be set to a shorter length.
 */
static int decide(enum fault_op op, size_t len, size_t *cut)
{
	int err = 0, listed;
	uint64_t delay = 0;

	pthread_mutex_lock(&fault_lock);
	if (!cur.active)
		goto out;
	if ((1u << op) & WRITE_OPS)
		delay = cur.delay_us;
	listed = !!(cur.ops & (1u << op));
	if (!listed && !(cur.short_ppb && ((1u << op) & WRITE_OPS)))
		goto out;
	if (++candidates <= cur.after || spec_faults >= cur.max)
		goto out;
	if (listed && roll(cur.p_ppb)) {
		err = cur.errnos[rng_next() % (uint64_t)cur.nerrnos];
		spec_faults++;
		atomic_fetch_add(&total_faults, 1);
		goto out;
	}
	if (cut && len > 1 && roll(cur.short_ppb)) {
		*cut = 1 + (size_t)(rng_next() % (uint64_t)(len - 1));
		spec_faults++;
		atomic_fetch_add(&total_faults, 1);
	}
out:
	pthread_mutex_unlock(&fault_lock);
	/* Outside the lock: other threads' calls must not queue behind it. */
	if (delay && !err)
		usleep((useconds_t)delay);
	return err;
}

#define UNDER (atomic_load(&under))

/* Fail with errno e (the libc convention the table follows). */
#define FAIL_IF(op)                           \
	do {                                  \
		int e_ = decide(op, 0, NULL); \
		if (e_) {                     \
			errno = e_;           \
			return -1;            \
		}                             \
	} while (0)

static int f_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	FAIL_IF(OP_OPENAT);
	return UNDER->openat(dirfd, path, flags, mode);
}

static int f_close(int fd)
{
	int e = decide(OP_CLOSE, 0, NULL);

	/* Like a real close error, the descriptor is gone anyway. */
	UNDER->close(fd);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

static ssize_t f_pread(int fd, void *buf, size_t len, off_t off)
{
	FAIL_IF(OP_PREAD);
	return UNDER->pread(fd, buf, len, off);
}

static ssize_t f_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	size_t cut = len;
	int e = decide(OP_PWRITE, len, &cut);

	if (e) {
		errno = e;
		return -1;
	}
	return UNDER->pwrite(fd, buf, cut, off);
}

static ssize_t f_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	size_t len = 0, cut;
	int i, e;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	cut = len;
	e = decide(OP_PWRITEV, len, &cut);
	if (e) {
		errno = e;
		return -1;
	}
	if (cut == len)
		return UNDER->pwritev(fd, iov, iovcnt, off);
	/* A short write is a prefix: write part of the first non-empty
	 * vector only. */
	for (i = 0; i < iovcnt && iov[i].iov_len == 0; i++)
		;
	if (cut > iov[i].iov_len)
		cut = iov[i].iov_len;
	return UNDER->pwrite(fd, iov[i].iov_base, cut, off);
}

static int f_fsync(int fd)
{
	FAIL_IF(OP_FSYNC);
	return UNDER->fsync(fd);
}

static int f_fdatasync(int fd)
{
	FAIL_IF(OP_FDATASYNC);
	return UNDER->fdatasync(fd);
}

static int f_syncfs(int fd)
{
	FAIL_IF(OP_SYNCFS);
	return UNDER->syncfs(fd);
}

static int f_ftruncate(int fd, off_t len)
{
	FAIL_IF(OP_FTRUNCATE);
	return UNDER->ftruncate(fd, len);
}

static int f_fallocate(int fd, int mode, off_t off, off_t len)
{
	FAIL_IF(OP_FALLOCATE);
	return UNDER->fallocate(fd, mode, off, len);
}

static int f_fstat(int fd, struct stat *st)
{
	FAIL_IF(OP_FSTAT);
	return UNDER->fstat(fd, st);
}

static int f_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	FAIL_IF(OP_FSTATAT);
	return UNDER->fstatat(dirfd, path, st, flags);
}

static int f_statx(int dirfd, const char *path, int flags, unsigned int mask,
		   struct statx *stx)
{
	FAIL_IF(OP_STATX);
	return UNDER->statx(dirfd, path, flags, mask, stx);
}

static int f_renameat(int olddirfd, const char *oldpath, int newdirfd,
		      const char *newpath)
{
	FAIL_IF(OP_RENAMEAT);
	return UNDER->renameat(olddirfd, oldpath, newdirfd, newpath);
}

static int f_unlinkat(int dirfd, const char *path, int flags)
{
	FAIL_IF(OP_UNLINKAT);
	return UNDER->unlinkat(dirfd, path, flags);
}

static int f_renameat2(int olddirfd, const char *oldpath, int newdirfd,
		       const char *newpath, unsigned int flags)
{
	FAIL_IF(OP_RENAMEAT);
	return UNDER->renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

static int f_mkdirat(int dirfd, const char *path, mode_t mode)
{
	FAIL_IF(OP_MKDIRAT);
	return UNDER->mkdirat(dirfd, path, mode);
}

static void *f_mmap(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off)
{
	int e = decide(OP_MMAP, 0, NULL);

	if (e) {
		errno = e;
		return MAP_FAILED;
	}
	return UNDER->mmap(addr, len, prot, flags, fd, off);
}

static int f_munmap(void *addr, size_t len)
{
	int e = decide(OP_MUNMAP, 0, NULL);

	/* Like close: the caller is done with the range either way, and
	 * keeping it mapped would only leak it. */
	UNDER->munmap(addr, len);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

static int f_flock(int fd, int op)
{
	FAIL_IF(OP_FLOCK);
	return UNDER->flock(fd, op);
}

static int f_fstatvfs(int fd, struct statvfs *st)
{
	FAIL_IF(OP_FSTATVFS);
	return UNDER->fstatvfs(fd, st);
}

static DIR *f_fdopendir(int fd)
{
	int e = decide(OP_FDOPENDIR, 0, NULL);

	if (e) {
		errno = e;
		return NULL;
	}
	return UNDER->fdopendir(fd);
}

static struct dirent *f_readdir(DIR *dir)
{
	int e = decide(OP_READDIR, 0, NULL);

	if (e) {
		errno = e;
		return NULL;
	}
	return UNDER->readdir(dir);
}

static int f_closedir(DIR *dir)
{
	int e = decide(OP_CLOSEDIR, 0, NULL);

	UNDER->closedir(dir); /* as close: the stream is gone anyway */
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

static const struct io_ops fault_ops = {
	.openat = f_openat,
	.close = f_close,
	.pread = f_pread,
	.pwrite = f_pwrite,
	.pwritev = f_pwritev,
	.fsync = f_fsync,
	.fdatasync = f_fdatasync,
	.ftruncate = f_ftruncate,
	.fallocate = f_fallocate,
	.fstat = f_fstat,
	.fstatat = f_fstatat,
	.renameat = f_renameat,
	.renameat2 = f_renameat2,
	.unlinkat = f_unlinkat,
	.mkdirat = f_mkdirat,
	.mmap = f_mmap,
	.munmap = f_munmap,
	.flock = f_flock,
	.fstatvfs = f_fstatvfs,
	.fdopendir = f_fdopendir,
	.readdir = f_readdir,
	.closedir = f_closedir,
	.syncfs = f_syncfs,
	.statx = f_statx,
};

/* ------------------------------------------------------------------ */
/* Spec parsing                                                        */

/* "0", "1", "0.25", ".5", "1.0": a probability in parts per billion.
 * Digits past the ninth decimal are accepted and ignored. */
static int parse_prob(const char *s, uint32_t *ppb)
{
	uint64_t ip = 0, frac = 0, scale = PPB / 10;
	int digits = 0;

	while (*s >= '0' && *s <= '9') {
		ip = ip * 10 + (uint64_t)(*s - '0');
		if (ip > 1)
			return -EINVAL;
		s++;
		digits++;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			frac += (uint64_t)(*s - '0') * scale;
			scale /= 10;
			s++;
			digits++;
		}
	}
	if (*s || digits == 0 || (ip == 1 && frac != 0))
		return -EINVAL;
	*ppb = ip ? PPB : (uint32_t)frac;
	return 0;
}

/* Split off the next sep-separated token of *s (modified in place);
 * NULL at the end.  An empty token is returned as "" so callers refuse
 * "a++b", "a+" and ",,": strtok_r would skip them silently. */
static char *next_token(char **s, char sep)
{
	char *tok = *s, *end;

	if (!tok)
		return NULL;
	end = strchr(tok, sep);
	if (end) {
		*end = '\0';
		*s = end + 1;
	} else {
		*s = NULL;
	}
	return tok;
}

static int parse_ops(char *s, uint32_t *mask)
{
	char *tok;
	uint32_t m = 0;
	int i;

	while ((tok = next_token(&s, '+')) != NULL) {
		if (!strcmp(tok, "all")) {
			m |= (1u << OP_COUNT) - 1;
			continue;
		}
		for (i = 0; i < OP_COUNT; i++)
			if (!strcmp(tok, op_names[i]))
				break;
		if (i == OP_COUNT)
			return -EINVAL;
		m |= 1u << i;
	}
	if (!m)
		return -EINVAL;
	*mask = m;
	return 0;
}

static int parse_errnos(char *s, struct fault_spec *sp)
{
	char *tok;
	uint64_t v;
	size_t i;

	sp->nerrnos = 0;
	while ((tok = next_token(&s, '+')) != NULL) {
		if (sp->nerrnos == MAX_ERRNOS)
			return -EINVAL;
		for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]);
		     i++)
			if (!strcmp(tok, errno_names[i].name))
				break;
		if (i < sizeof(errno_names) / sizeof(errno_names[0])) {
			sp->errnos[sp->nerrnos++] = errno_names[i].value;
			continue;
		}
		if (config_parse_u64(tok, &v) < 0 || v == 0 || v > 4095)
			return -EINVAL;
		sp->errnos[sp->nerrnos++] = (int)v;
	}
	return sp->nerrnos ? 0 : -EINVAL;
}

/* Parse spec into *sp; sp->active is 0 for "" / "off". */
static int parse_spec(const char *spec, struct fault_spec *sp)
{
	char *copy, *rest, *item, *eq;
	int ret = 0;

	memset(sp, 0, sizeof(*sp));
	sp->seed = 1;
	sp->p_ppb = PPB;
	sp->ops = (1u << OP_PWRITE) | (1u << OP_PWRITEV) | (1u << OP_FSYNC) |
		  (1u << OP_FDATASYNC);
	sp->errnos[0] = EIO;
	sp->nerrnos = 1;
	sp->max = UINT64_MAX;
	if (!spec || !*spec || !strcmp(spec, "off"))
		return 0;
	copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	rest = copy;
	while (ret == 0 && (item = next_token(&rest, ',')) != NULL) {
		eq = strchr(item, '=');
		if (!eq) {
			ret = -EINVAL;
			break;
		}
		*eq++ = '\0';
		if (!strcmp(item, "seed"))
			ret = config_parse_u64(eq, &sp->seed);
		else if (!strcmp(item, "p"))
			ret = parse_prob(eq, &sp->p_ppb);
		else if (!strcmp(item, "short"))
			ret = parse_prob(eq, &sp->short_ppb);
		else if (!strcmp(item, "ops"))
			ret = parse_ops(eq, &sp->ops);
		else if (!strcmp(item, "errno"))
			ret = parse_errnos(eq, sp);
		else if (!strcmp(item, "after"))
			ret = config_parse_u64(eq, &sp->after);
		else if (!strcmp(item, "max"))
			ret = config_parse_u64(eq, &sp->max);
		else if (!strcmp(item, "delay_us")) {
			ret = config_parse_u64(eq, &sp->delay_us);
			if (ret == 0 && sp->delay_us >= 1000000)
				ret = -EINVAL;
		} else
			ret = -EINVAL;
	}
	free(copy);
	if (ret == 0)
		sp->active = 1;
	return ret;
}

/* Replace the active fault spec. */
int fault_set(const char *spec)
{
	struct fault_spec sp;
	const struct io_ops *now;
	int ret;

	ret = parse_spec(spec, &sp);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&fault_lock);
	now = io_ops_get();
	if (sp.active && now != &fault_ops) {
		atomic_store(&under, now);
		io_ops_set(&fault_ops);
	} else if (!sp.active && now == &fault_ops) {
		now = atomic_load(&under);
		io_ops_set(now == io_ops_default() ? NULL : now);
	}
	cur = sp;
	rng_state = sp.seed ? sp.seed : 1; /* xorshift must not start at 0 */
	candidates = 0;
	spec_faults = 0;
	pthread_mutex_unlock(&fault_lock);
	return 0;
}

/* Apply $FLUXFS_FAULTS if it is set. */
int fault_init_from_env(void)
{
	const char *spec = getenv("FLUXFS_FAULTS");
	int ret;

	if (!spec)
		return 0;
	ret = fault_set(spec);
	if (ret < 0)
		diag_err("bad fault spec '%s'", spec);
	else if (*spec)
		diag_warn("fault injection active: '%s'", spec);
	return ret;
}

/* Faults injected so far. */
uint64_t fault_count(void)
{
	return atomic_load(&total_faults);
}

int fault_active(void)
{
	return io_ops_get() == &fault_ops;
}

#else
/* Release build: nothing here (fault.h has the inline no-ops).  ISO C
 * wants at least one declaration in a translation unit. */
typedef int fault_unused;
#endif
