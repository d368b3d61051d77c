#!/bin/bash
# snapshot_deleted.sh - a partition or topic deleted after a snapshot
# stays readable in it (held under .trash while served, under
# .snapshots/held between mounts) across a remount and a SIGKILL of the
# daemon, and goes when the last snapshot showing it is released; a
# held directory that no snapshot needs any more at mount (released
# while no daemon could delete it) is deleted then, never left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start -o segment_bytes=4096
S="$MNT/.snapshot"
mkdir "$MNT/t" "$MNT/u" || fail "mkdir topics"
gen_lines 800 t0 >"$MNT/t/0"
gen_lines 600 t1 >"$MNT/t/1"
gen_lines 400 u0 >"$MNT/u/0"
for f in t/0 t/1 u/0; do cp "$MNT/$f" "$WORK/$(echo $f | tr / _)"; done
mkdir "$S/s" || fail "mkdir .snapshot/s"
mkdir "$S/s2" || fail "mkdir .snapshot/s2"

# Deleted while served: t/1 alone, then all of topic u.
rm "$MNT/t/1" || fail "rm t/1"
rm "$MNT/u/0" && rmdir "$MNT/u" || fail "rm topic u"
check_all() {
	local f
	for f in t/0 t/1 u/0; do
		same_file "$WORK/$(echo $f | tr / _)" "$S/$2/$f" "$f of snapshot $2 $1"
	done
}
check_all "after the deletes" s
check_all "after the deletes" s2
assert_eq "t" "$(ls "$MNT" | xargs)" "live topics"
assert_eq "0" "$(ls "$MNT/t" | xargs)" "live partitions of t"
grep -q "deleted partition '1' kept until" "$WORK/daemon.log" || fail "keeping t/1 was not logged"

mount_restart
check_all "after a remount" s
kill -KILL "$FLUXFS_PID"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
mount_launch
check_all "after SIGKILL" s2

# Released by one snapshot: still shown by the other.  Released by both:
# the directories go.
rmdir "$S/s" || fail "rmdir s"
check_all "after s was released" s2
rmdir "$S/s2" || fail "rmdir s2"
assert_eq "" "$(ls -A "$DATA/.trash")" ".trash after the last snapshot was released"
mount_restart
assert_eq "" "$(ls -A "$DATA/.trash")" ".trash after a remount"
assert_eq "" "$(ls -A "$DATA/.snapshots/held" 2>/dev/null)" ".snapshots/held after a remount"

# A snapshot released while no daemon ran to delete what it held (its
# file removed, the held directory left): the next mount deletes it.
gen_lines 100 v >"$MNT/t/2"
mkdir "$S/s3" || fail "mkdir s3"
rm "$MNT/t/2" || fail "rm t/2"
mount_stop || fail "daemon did not stop cleanly"
rm "$DATA/.snapshots/s3.snap"
mount_launch
assert_eq "" "$(ls -A "$DATA/.trash")" ".trash after a mount with s3.snap gone"
assert_eq "" "$(ls -A "$DATA/.snapshots/held" 2>/dev/null)" ".snapshots/held after a mount with s3.snap gone"
same_file "$WORK/t_0" "$MNT/t/0" "live t/0 at the end"
log "ok"
