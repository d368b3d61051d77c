/*
 * crashsim.h - simulated power loss for unit tests (the SQLite test6.c
 * idea), linked into test programs only.
 *
 * crashsim_install() puts an io_ops table in force that passes every call
 * through to the real syscalls, so the code under test reads back what it
 * wrote, while remembering, per file (by device and inode), every change
 * not yet made durable:
 *
 *   - pwrite / pwritev: the range written, the bytes it replaced and the
 *     file size before it (on an O_APPEND descriptor, the write is
 *     recorded at the end of the file, where the kernel put it);
 *   - ftruncate: the old size and the bytes a shrink removed.
 *
 * fsync or fdatasync of any descriptor of a file makes all of that file's
 * recorded changes durable (they are forgotten).  Durability model, kept
 * simple on purpose:
 *   - directory operations (openat with O_CREAT, renameat, unlinkat,
 *     mkdirat) are durable at once, as if every directory were fsynced
 *     after each change; so a crash never undoes a rename, and a missing
 *     fsync of a *directory* is not detected;
 *   - openat with O_TRUNC and fallocate are durable at once (not undone);
 *   - a file is identified by inode, so unsynced data written before a
 *     rename is still undone after it.
 *
 * crashsim_crash(mode, seed) then simulates the power cut: for every file
 * with unsynced changes it first undoes them all (restoring the last
 * durable image), then replays each change in order as the mode says:
 *
 *   CRASHSIM_KEEP    every change survives (the process died, the kernel
 *                    did not); files are left as they are now
 *   CRASHSIM_DROP    every change is lost: files return to their last
 *                    durable contents and sizes
 *   CRASHSIM_GARBLE  every write leaves random bytes over its range (the
 *                    size grows as the write made it); truncates are lost
 *   CRASHSIM_RANDOM  each change independently kept, dropped or (writes
 *                    only) garbled, with equal odds
 *   CRASHSIM_PREFIX  per file, the changes up to a random point survive in
 *                    order; the write at that point is torn (a random
 *                    prefix of it survives); later changes are lost --
 *                    the "disk wrote in order until the power went" model
 *
 * The choices come from a PRNG seeded with seed, so a failing seed
 * replays.  Files are restored through crashsim's own duplicate
 * descriptors; the test's descriptors stay open but the test should treat
 * them as dead and reopen, as a restarted daemon would.  After the crash
 * all records are cleared and recording continues (the table stays
 * installed).  An unlinked file's changes are replayed into the unlinked
 * inode: harmless.
 *
 * Not for concurrent I/O on the same file from several threads beyond
 * what a mutex around each recorded call gives: each write is recorded
 * and performed under one lock, so records match the file.
 */
#ifndef FLUXFS_CRASHSIM_H
#define FLUXFS_CRASHSIM_H

#include <stdint.h>

enum crashsim_mode {
	CRASHSIM_KEEP,
	CRASHSIM_DROP,
	CRASHSIM_GARBLE,
	CRASHSIM_RANDOM,
	CRASHSIM_PREFIX,
};

/* What the last crashsim_crash() did, counted per recorded change. */
struct crashsim_stats {
	uint32_t files;	  /* files that had unsynced changes */
	uint32_t kept;	  /* changes replayed intact */
	uint32_t dropped; /* changes lost */
	uint32_t garbled; /* writes replaced by random bytes */
	uint32_t torn;	  /* writes cut to a prefix (CRASHSIM_PREFIX) */
};

/* Start recording: install the crashsim io_ops table over the real
 * syscalls (io_ops_default()); clears any old records. */
void crashsim_install(void);
/* Stop recording, forget every record and restore the default table. */
void crashsim_uninstall(void);
/* Number of unsynced changes recorded now, over all files. */
uint32_t crashsim_pending(void);
/* Simulate a power cut as described above; fills *stats if non-NULL.
 * Returns 0, or -errno if restoring a file failed (the test should then
 * fail: the file's contents are unspecified). */
int crashsim_crash(enum crashsim_mode mode, uint64_t seed,
		   struct crashsim_stats *stats);

#endif
