/*
 * crashsim.h - simulated power loss (the SQLite test6.c idea).  It exists
 * only in test builds: the Check programs compile it in, and the daemon
 * does so only when configured with --enable-fault-injection
 * (FLUXFS_CRASHSIM=1, see fluxfs(8)); a release build never contains it.
 *
 * crashsim_install() puts an io_ops table in force that passes every call
 * through to the real syscalls, so the code under test reads back what it
 * wrote, while remembering every change not yet made durable.
 *
 * File data, per file (by device and inode):
 *   - pwrite / pwritev: the range written, the bytes it replaced and the
 *     file size before it (on an O_APPEND descriptor, the write is
 *     recorded at the end of the file, where the kernel put it);
 *   - ftruncate: the old size and the bytes a shrink removed.
 * fsync or fdatasync of any descriptor of a file makes that file's changes
 * recorded before the sync began durable (they are forgotten).  syncfs
 * covers every file and directory of the filesystem, but, as on ext4
 * without a journal (its last metadata writes come after its cache
 * flush), what it covered becomes durable only at the filesystem's next
 * fsync, fdatasync or syncfs.  openat
 * with O_TRUNC and fallocate are durable at once (not undone).  A file is
 * identified by inode, so unsynced data written before a rename is still
 * undone after it.
 *
 * Directory entries, per parent directory, as on a POSIX filesystem that
 * promises nothing more (ext4 without its journal's accidents):
 *   - openat with O_CREAT that creates the file, mkdirat: undone by a
 *     crash (the name vanishes, with whatever is below a new directory),
 *     even if the file's own data was fsynced;
 *   - unlinkat of a regular file or an empty directory: undone (the name
 *     comes back; crashsim keeps a descriptor on the unlinked inode and
 *     restores a copy of its last durable contents under that name; a
 *     directory comes back empty);
 *   - renameat / renameat2: undone (the old name comes back, and a target
 *     the rename replaced gets its old inode's contents back, as above);
 *     RENAME_EXCHANGE is undone by exchanging again.
 * Such a change becomes durable when its parent directory (for a rename,
 * either of the two, since one journal transaction carries both entries)
 * is fsynced after it.  A change made durable also makes the older
 * unsynced changes of the same inode durable (a rename of a new file
 * cannot outlive the file's creation).  Unlinks of symlinks and other
 * special files are not recorded.
 *
 * crashsim_crash(mode, seed) then simulates the power cut.  File data
 * first: for every file with unsynced changes it undoes them all
 * (restoring the last durable image), then replays each change in order
 * as the mode says:
 *
 *   CRASHSIM_KEEP    every change survives (the process died, the kernel
 *                    did not); files and directories stay as they are
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
 * Then directory entries, which a filesystem journals in order: KEEP keeps
 * every unsynced change, DROP and GARBLE undo them all, RANDOM and PREFIX
 * keep the oldest ones up to a random point and undo the rest.  Undoing
 * runs newest first; a change whose names no longer look as it left them
 * is skipped and counted in crashsim_stats.dir_conflicts.
 *
 * The choices come from a PRNG seeded with seed, so a failing seed
 * replays.  Files are restored through crashsim's own descriptors; the
 * caller's descriptors stay open but should be treated as dead and
 * reopened, as a restarted daemon would.  After the crash all records are
 * cleared and recording continues (the table stays installed), unless
 * crashsim_powercut() was used.
 *
 * Threads: each recorded call is performed and recorded under one mutex,
 * so records match the files; crashsim_powercut() keeps that mutex, so no
 * recorded change can reach the disk after the simulated cut.
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
	uint32_t dir_kept;	/* directory changes that survived */
	uint32_t dir_undone;	/* directory changes undone */
	uint32_t dir_conflicts; /* undos skipped: names had moved on */
};

/* Start recording: install the crashsim io_ops table over the real
 * syscalls (io_ops_default()); clears any old records. */
void crashsim_install(void);
/* Stop recording, forget every record and restore the default table. */
void crashsim_uninstall(void);
/* Number of unsynced changes of file data recorded now, over all files. */
uint32_t crashsim_pending(void);
/* Number of unsynced directory changes recorded now. */
uint32_t crashsim_pending_dirs(void);
/* Simulate a power cut as described above; fills *stats if non-NULL.
 * Returns 0, or -errno if restoring a file failed (the test should then
 * fail: the file's contents are unspecified). */
int crashsim_crash(enum crashsim_mode mode, uint64_t seed,
		   struct crashsim_stats *stats);
/* crashsim_crash() for a process about to _exit(): the lock stays held
 * afterwards, so any other thread's recorded call blocks instead of
 * writing past the cut. */
int crashsim_powercut(enum crashsim_mode mode, uint64_t seed,
		      struct crashsim_stats *stats);
/* Parse a mode name (keep, drop, garble, random, prefix); -EINVAL if
 * unknown. */
int crashsim_mode_parse(const char *name, enum crashsim_mode *mode);

#endif
