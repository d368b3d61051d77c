#!/bin/bash
# snapshot_retention.sh - a snapshot pins what it shows: retention by
# size does not delete a segment it needs, also after the partition was
# closed as idle and opened again (fd_budget=64 and a hundred other
# partitions push it out); fallocate -p below its start is refused
# (EBUSY) and changes nothing; rmdir of the last snapshot needing the
# segments lets retention delete them at the next tick; a partition no
# snapshot needs keeps its retention all along.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start -o segment_bytes=4096,fd_budget=64
S="$MNT/.snapshot"
mkdir "$MNT/t" "$MNT/other" || fail "mkdir topics"
P="$MNT/t/0"
gen_lines 3000 old >"$WORK/ref"
cp "$WORK/ref" "$P" || fail "write t/0"
size=$(fsize "$P")
mkdir "$S/keep" || fail "mkdir .snapshot/keep"
xassert "$S/keep" pinned_bytes "$size" "pinned bytes of keep"
xassert "$P" snapshot_pinned_bytes "$size" "pinned bytes of t/0"

# Retention by size, and enough new segments that it would delete most.
setfattr -n user.fluxfs.retention_bytes -v 8192 "$P" || fail "setfattr retention_bytes"
gen_lines 1000 new >>"$P"
# Push t/0 out of the descriptor budget (least recently used of 102
# partitions under fd_budget=64) and open it again, kept open so that
# maintenance ticks it: the hold must outlive the idle close.
for i in $(seq 1 100); do echo x >"$MNT/other/$i"; done
cat "$MNT"/other/* >/dev/null
closes=$(sed -n 's/^fluxfs_idle_closes_total \([0-9]*\)$/\1/p' "$MNT/.metrics")
[ "${closes:-0}" -gt 0 ] || fail "no partition was closed as idle (fluxfs_idle_closes_total ${closes:-none})"
exec 5<"$P"
sleep 2.5 # two maintenance ticks
xassert "$P" start_byte 0 "start_byte of a partition a snapshot pins"
same_file "$WORK/ref" "$S/keep/t/0" "the snapshot after retention ran"

# A partition no snapshot needs: retention works as ever.
gen_lines 3000 free >"$MNT/t/free"
exec 6<"$MNT/t/free" # open: maintenance ticks only open partitions
mkdir "$S/later" || fail "mkdir .snapshot/later"
rmdir "$S/later" || fail "rmdir .snapshot/later"
setfattr -n user.fluxfs.retention_bytes -v 8192 "$MNT/t/free" || fail "setfattr on t/free"
started() {
	local b
	b=$(getfattr --absolute-names --only-values -n user.fluxfs.start_byte "$1" 2>/dev/null)
	[ -n "$b" ] && [ "$b" -gt 0 ]
}
wait_for 5 started "$MNT/t/free" || fail "retention of an unpinned partition did not run"

# fallocate -p into what the snapshot shows: EBUSY, nothing deleted.
expect_err "Device or resource busy" fallocate -p -o 0 -l 100 "$P"
xassert "$P" start_byte 0 "start_byte after a refused fallocate -p"
grep -q "refused dropping the head of 't/0'" "$WORK/daemon.log" ||
	fail "the refused fallocate -p was not logged"

# Released: the next tick deletes the old segments.
xget segs_before "$P" segments
rmdir "$S/keep" || fail "rmdir .snapshot/keep"
xassert "$P" snapshot_pinned_bytes 0 "pinned bytes once released"
wait_for 5 started "$P" || fail "retention did not run within 5 s of rmdir"
sleep 1.5
xget segs "$P" segments
[ "$segs" -lt "$segs_before" ] || fail "segments did not go: $segs_before -> $segs"
xget sb "$P" start_byte
[ $(($(fsize "$P") - sb)) -le $((8192 + 3 * 4096)) ] ||
	fail "retention kept $(($(fsize "$P") - sb)) bytes after the release"
fallocate -p -o 0 -l "$((sb + 10))" "$P" || fail "fallocate -p with no snapshot"
exec 5<&- 6<&-
log "held $segs_before segments, $segs after the release"
log "ok"
