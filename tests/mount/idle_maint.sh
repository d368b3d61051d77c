#!/bin/bash
# idle_maint.sh - maintenance reaches idle partitions: a partition closed
# idle under a small descriptor budget (other partitions took its place)
# still loses its expired segments by retention_ms, without being read
# or listed: the maintenance pass knows when its retention falls due
# (kept when it closed) and opens it then.  The same after a clean
# remount (the due time carried by the mount summary), and a partition
# with nothing due is left closed, also when a setting that cannot make
# work fall due sooner (flush_ms) changes on its topic.  After SIGKILL no
# due time is known: a sweep opens the idle partitions with retention,
# a few at a time, and the expired segments still go.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

BUDGET=16 # 3 descriptors per open partition: 5 fit
# Descriptors the daemon holds of partition t/$1.
pfds() { ls -l "/proc/$FLUXFS_PID/fd" | grep -c " $DATA/t/$1\(/\|\$\)"; }
logs() { ls "$DATA/t/$1" | grep -c '\.log$'; }
# fill P: ~10 segments of 4 KiB into t/P, then wait for the flush that
# syncs them (until then each holds two descriptors of the budget, and
# the next partition's open could find it pinned by that flush: EMFILE).
fill() {
	gen_lines 1000 "t/$1" >"$WORK/ref$1"
	dd if="$WORK/ref$1" of="$MNT/t/$1" bs=4096 oflag=append conv=notrunc status=none ||
		fail "append to t/$1"
	wait_for 10 sh_c '[ "$(ls -l /proc/$1/fd | grep -c " $2/t/$3/")" -le 2 ]' "$FLUXFS_PID" "$DATA" "$1" ||
		fail "the segments of t/$1 still hold descriptors"
}
# evict: once the flush synced the new segments (until then each holds
# two descriptors), use six other partitions, so the least recently used
# close.
evict() {
	local p
	wait_for 10 sh_c '[ "$(ls -l /proc/$1/fd | grep -c " $2/t/[01]\(/\|\$\)")" -le 6 ]' "$FLUXFS_PID" "$DATA" ||
		fail "the segments of t/0 and t/1 still hold descriptors"
	for p in 11 12 13 14 15 16; do
		echo "x" >>"$MNT/t/$p" || fail "append to t/$p"
	done
}

mount_start -o fd_budget=$BUDGET
mkdir "$MNT/t" || fail "mkdir"
setfattr -n user.fluxfs.segment_bytes -v 4096 "$MNT/t" || fail "segment_bytes"
touch "$MNT/t/0" "$MNT/t/1" || fail "create"
# t/1 keeps its segments for an hour: it must stay closed.
setfattr -n user.fluxfs.retention_ms -v 1h "$MNT/t/1" || fail "retention_ms on t/1"
setfattr -n user.fluxfs.retention_ms -v 6s "$MNT/t/0" || fail "retention_ms on t/0"
fill 0
fill 1
n0=$(logs 0)
[ "$n0" -ge 10 ] || fail "only $n0 segments in t/0"
evict
wait_for 10 sh_c '[ "$(ls -l /proc/$1/fd | grep -c " $2/t/[01]\(/\|\$\)")" -eq 0 ]' "$FLUXFS_PID" "$DATA" ||
	fail "t/0 and t/1 not closed by the budget ($(pfds 0), $(pfds 1) descriptors)"
log "t/0 idle with $n0 segments"
# Segments deleted from t/0, as the daemon logged them.
deleted() {
	sed -n "s/.*retention deleted \([0-9]*\) segments of 't\/0'.*/\1/p" "$WORK/daemon.log" |
		awk '{ n += $1 } END { print n + 0 }'
}
[ "$(deleted)" -eq 0 ] || fail "retention ran while t/0 was open: the test ran too slowly to show anything"

# Retention of the idle t/0: its sealed segments go within a few
# seconds of falling due, and nobody reads it.
wait_for 15 sh_c '[ "$(ls "$1" | grep -c "\.log$")" -eq 1 ]' "$DATA/t/0" ||
	fail "t/0 still has $(logs 0) segments 10 s after they expired"
assert_eq $((n0 - 1)) "$(deleted)" "segments of t/0 deleted, as logged"
[ "$(logs 1)" -ge 10 ] || fail "t/1 (retention 1 h) lost segments"
[ "$(pfds 1)" -eq 0 ] || fail "t/1, with nothing due, was opened"
# What is left reads as the tail of what was written (the start moved).
size=$(stat -c %s "$MNT/t/0")
assert_eq "$(fsize "$WORK/ref0")" "$size" "size of t/0 after retention"

# After a clean remount: the due time comes from the mount summary.
# (t/0 is closed idle first: its close rewrites its partition.meta,
# which in the instant of the unmount's summary would make the mount
# list its topic.)
fill 0
n0=$(logs 0)
evict
wait_for 10 sh_c '[ "$(ls -l /proc/$1/fd | grep -c " $2/t/0\(/\|\$\)")" -eq 0 ]' "$FLUXFS_PID" "$DATA" ||
	fail "t/0 not closed by the budget"
mount_restart -o fd_budget=$BUDGET
grep -q "1 topics loaded from the mount summary" "$WORK/daemon.log" ||
	fail "the summary was not used"
wait_for 15 sh_c '[ "$(ls "$1" | grep -c "\.log$")" -eq 1 ]' "$DATA/t/0" ||
	fail "t/0 still has $(logs 0) of $n0 segments after a remount"
[ "$(pfds 1)" -eq 0 ] || fail "t/1, with nothing due, was opened after the remount"

# flush_ms changed on the topic: nothing is due sooner, no idle
# partition of it opens (t/1 and t/11..t/16 are closed).
setfattr -n user.fluxfs.flush_ms -v 2s "$MNT/t" || fail "flush_ms on t"
sleep 1.5 # fifteen maintenance passes
n=$(ls -l "/proc/$FLUXFS_PID/fd" | grep -c " $DATA/t/1")
[ "$n" -eq 0 ] || fail "a flush_ms change opened idle partitions ($n descriptors of t/1*)"
setfattr -x user.fluxfs.flush_ms "$MNT/t" || fail "flush_ms removed from t"

# A shorter retention set on t/1 while it is closed reaches it too.
n1=$(logs 1)
setfattr -n user.fluxfs.retention_ms -v 1s "$MNT/t/1" || fail "retention_ms on the idle t/1"
wait_for 15 sh_c '[ "$(ls "$1" | grep -c "\.log$")" -eq 1 ]' "$DATA/t/1" ||
	fail "t/1 still has $(logs 1) of $n1 segments after its retention_ms was set to 1s"

# SIGKILL: the next mount has no clean mark and no summary, so no idle
# partition's due time is known; nobody uses t/0, yet its segments go.
fill 0
n0=$(logs 0)
kill -KILL "$FLUXFS_PID"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
[ ! -e "$DATA/.fluxfs.clean" ] || fail "the clean mark survived a SIGKILL"
mount_launch
! grep -q "loaded from the mount summary" <(tail -n 5 "$WORK/daemon.log") ||
	fail "the summary was used after a SIGKILL"
wait_for 20 sh_c '[ "$(ls "$1" | grep -c "\.log$")" -eq 1 ]' "$DATA/t/0" ||
	fail "t/0 still has $(logs 0) of $n0 segments 20 s after a SIGKILL and remount"
log "ok"
