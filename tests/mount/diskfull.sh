#!/bin/bash
# diskfull.sh - a full disk does not wedge a partition.  The data
# directory is a 4 MiB tmpfs filled through the mount until even
# partition.state.tmp cannot be written, so the maintenance that moves the
# recovery point up (every 10 s, then at every tick until it works) fails
# (there, with ENOSPC: the data itself reached the disk).  While the disk
# is full, an fsync succeeds (the data and index are on disk; it needs no
# state write), and the failing maintenance is logged once, with ENOSPC,
# not every round.  Once space is freed, without a remount: fsync succeeds,
# appends and their fsyncs work, the log says the maintenance works again,
# nothing is reported lost, and the daemon exits 0 at unmount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

# flush_ms=-1 for the filler; topic t flushes every 100 ms, so the
# maintenance thread retries (and fails) its flush while the disk is full.
mount_start_tmpfs 4m -o segment_bytes=1M,flush_ms=-1

mkdir "$MNT/filler" "$MNT/t" || fail "mkdir topics"
setfattr -n user.fluxfs.flush_ms -v 100 "$MNT/t" || fail "setfattr flush_ms on topic t"
P="$MNT/t/p"
F="$MNT/filler/f"
REF="$WORK/ref"
# 100 lines of 64 bytes: t/p's last page keeps 1792 bytes free, so an
# append still fits there once the disk is full.
awk 'BEGIN { for (i = 0; i < 100; i++) printf "line %058d\n", i }' >"$REF"
cat "$REF" >>"$P" || fail "first append"
sync "$P" || fail "fsync with room on the disk"

# Fill the disk through the mount until an append fails, then take the
# last free pages with a ballast file beside the topics (a failed append
# is cut back and may free a page; the ballast leaves none).
awk 'BEGIN { for (i = 0; i < 16384; i++) printf "z %061d\n", i }' >"$WORK/zs"
rc=0
for i in $(seq 1 20); do
	cat "$WORK/zs" >>"$F" 2>/dev/null || { rc=1; break; }
done
[ $rc -eq 1 ] || fail "a 4 MiB tmpfs took 20 appends of 1 MiB"
dd if=/dev/zero of="$DATA/ballast" bs=4k 2>/dev/null && fail "the ballast filled no disk"
# Data that fits in pages t/p has; its flush then cannot write the state.
echo unflushed >>"$P" || fail "an append into t/p's last page on a full disk"
echo unflushed >>"$REF"
same_file "$REF" "$P" "content on a full disk"

# While the disk is full, fsync of t/p succeeds: its data and index
# entries reached the disk, and an fsync needs no new recovery point in
# partition.state while the active segment is the one it was (recovery
# checks the entries above the recovery point and keeps the good ones).
for try in 1 2; do
	sync "$P" || fail "fsync $try on a full disk failed, though the data is on disk"
done
# The tick moves the recovery point up within 10 s of the partition's
# creation, and cannot: ENOSPC, not EIO (no data was lost).  It retries
# at every tick (100 ms here, the flush_ms): over 1.5 s after the first
# failure that is ~15 failures, which must be logged once.
wait_for 15 grep -q "maintenance of partition 'p'.*No space left on device\|cannot flush 'p'.*No space left on device" "$WORK/daemon.log" ||
	fail "the failing state write was not logged with ENOSPC: $(grep "'p'" "$WORK/daemon.log" | head -3)"
sleep 1.5
n=$(grep -c "maintenance of partition 'p'" "$WORK/daemon.log")
[ "$n" -le 1 ] || fail "the log repeats the failing maintenance $n times: $(grep "maintenance of partition 'p'" "$WORK/daemon.log" | head -3)"
n=$(grep -c "cannot flush 'p'" "$WORK/daemon.log")
[ "$n" -le 1 ] || fail "the log repeats the failing flush $n times"
n=$(grep -c "maintenance of partition 'p'\|cannot flush 'p'" "$WORK/daemon.log")
[ "$n" -ge 1 ] || fail "the failing flush was not logged at all"

# Free space, without remounting: every flush works again.
rm "$F" || fail "rm of the filler partition"
rm "$DATA/ballast" || fail "rm of the ballast"
sync "$P" || fail "fsync of t/p after freeing space"
echo after-free >>"$P" || fail "append after freeing space"
echo after-free >>"$REF"
sync "$P" || fail "fsync of a new append after freeing space"
echo refill >>"$MNT/filler/g" || fail "append to the filler topic after freeing space"
sync "$MNT/filler/g" || fail "fsync of the filler topic after freeing space"
same_file "$REF" "$P" "content after freeing space"
xassert "$P" lost none "nothing reported lost"
grep -q "fluxfs_data_losses_total{.*} [1-9]" "$MNT/.metrics" &&
	fail "a metadata failure was counted as a data loss: $(grep data_losses "$MNT/.metrics")"
# A flush that failed says when it works again; here only the state
# write failed, in the maintenance, which says so.
if grep -q "cannot flush 'p'" "$WORK/daemon.log"; then
	wait_for 5 grep -q "'p' flushes again" "$WORK/daemon.log" ||
		fail "the log never said the partition flushes again"
fi
wait_for 5 grep -q "maintenance of partition 'p' works again" "$WORK/daemon.log" ||
	fail "the log never said the maintenance of the partition works again"
grep -q "Input/output error" "$WORK/daemon.log" &&
	fail "EIO logged for a full disk: $(grep -m3 'Input/output error' "$WORK/daemon.log")"

# Unmount: everything is durable now, so the daemon exits 0 (checked by
# mount_stop); the data is intact after the remount.
mount_restart
same_file "$REF" "$P" "content after remount"
log "ok"
