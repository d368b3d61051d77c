/*
 * syncpair.h - fdatasync two files at once.  A segment's .log and .idx
 * are synced together by every flush; one after the other they cost two
 * journal commits' waits, side by side about one (ext4 commits both in
 * the same transaction).  The second file's fdatasync runs on a helper
 * thread, the first on the caller's; helpers are started as needed and
 * stay, idle, for the next flush.
 */
#ifndef FLUXFS_SYNCPAIR_H
#define FLUXFS_SYNCPAIR_H

/* io_fdatasync(a) and io_fdatasync(b), at the same time; their results
 * (0 or -errno) in *ra and *rb.  When no helper thread can be had, one
 * after the other (b only if a succeeded, *rb then 0). */
void sync_pair(int a, int b, int *ra, int *rb);

#endif
