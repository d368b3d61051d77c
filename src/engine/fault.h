/*
 * fault.h - run-time I/O fault injection, for test builds only.
 *
 * Built only with configure --enable-fault-injection (config.h defines
 * FLUXFS_FAULT_INJECTION).  In any other build the functions below are
 * inline no-ops: FLUXFS_FAULTS is ignored and fault_set() refuses
 * (-ENOTSUP), so a release daemon can never be made to fail on purpose.
 *
 * When active, fault injection installs its own io_ops table (io_ops_set)
 * over the table that was in force (normally io_ops_default(); a test may
 * stack it on crashsim) and fails chosen calls.
 *
 * Spec grammar: comma-separated key=value items, in any order; empty or
 * "off" turns injection off.
 *
 *   seed=N       PRNG seed (decimal, default 1); same seed, same faults
 *                for the same single-threaded call sequence
 *   p=F          probability that a matching call fails (0..1, decimal
 *                like 0.01 or 1; default 1)
 *   ops=A+B...   which calls may fail: openat close pread pwrite pwritev
 *                fsync fdatasync ftruncate fallocate fstat fstatat
 *                renameat (renameat2 too) unlinkat mkdirat (every mkdir)
 *                mmap munmap flock fstatvfs fdopendir readdir closedir
 *                syncfs,
 *                or "all" (default pwrite+pwritev+fsync+fdatasync).
 *                close, munmap and closedir release their object even
 *                when they report a fault, as the real calls do.
 *   errno=E+F... errnos to fail with, one picked at random per fault:
 *                EIO ENOSPC EDQUOT EINTR EAGAIN ENOMEM EROFS EFBIG EPERM
 *                EACCES EMFILE ENFILE EBADF, or a decimal number
 *                (default EIO)
 *   short=F      probability that a pwrite/pwritev that was not failed
 *                writes only a random part (at least 1 byte) of its data
 *                (default 0); applies whether or not ops lists them
 *   after=N      the first N candidate calls (calls named by ops, plus
 *                pwrite/pwritev when short > 0) pass untouched (default 0)
 *   max=N        stop after N injected faults (default: no limit)
 *   delay_us=N   sleep N microseconds (below 1000000) before every
 *                pwrite/pwritev that is not failed, to widen the windows
 *                between the kernel's copy of a WRITE and the append
 *                (default 0); with p=0 nothing fails
 *
 * Example: FLUXFS_FAULTS="seed=7,p=0.01,ops=pwrite+fsync,errno=ENOSPC+EIO,
 * short=0.2,after=1000" (one line).  Beware errno=EINTR with p=1 and no
 * max: the io.h wrappers retry EINTR forever.
 *
 * Thread-safe: the active spec, the call counter and the PRNG are under
 * one mutex; fault_count() is an atomic read.
 */
#ifndef FLUXFS_FAULT_H
#define FLUXFS_FAULT_H

#include <errno.h>
#include <stdint.h>

#ifdef FLUXFS_FAULT_INJECTION
/* Apply $FLUXFS_FAULTS if set: 0 if unset or applied, -EINVAL (logged)
 * if the spec is bad. */
int fault_init_from_env(void);
/* Replace the active spec (NULL, "" or "off" turns injection off and
 * restores the table that was in force before).  -EINVAL on a bad spec,
 * leaving the previous one active.  Resets the call counter, not the
 * fault count.  The daemon sets the spec once (fault_init_from_env);
 * the tests change it with this. */
int fault_set(const char *spec);
/* Faults injected since start (failed calls plus short writes). */
uint64_t fault_count(void);
/* Whether injection is on (its table is in force). */
int fault_active(void);
#else
static inline int fault_init_from_env(void)
{
	return 0;
}

static inline int fault_set(const char *spec)
{
	(void)spec;
	return -ENOTSUP;
}

static inline uint64_t fault_count(void)
{
	return 0;
}

static inline int fault_active(void)
{
	return 0;
}
#endif

#endif
