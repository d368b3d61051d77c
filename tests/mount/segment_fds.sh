#!/bin/bash
# segment_fds.sh - sealed segments hold no descriptor: a partition with
# segment_bytes at its 4 KiB floor, held open by a writer under a tiny
# descriptor budget, rolls hundreds of segments while the daemon's
# descriptors stay at its directory and the active segment's two; other
# partitions still open beside it (its cost fits the budget); every old
# segment still reads back whole, through read(2), mmap-free cat, and
# tail from the middle; and after a remount it opens holding as few.
# The same for compressed sealed segments (lz4, gzip, zstd): their blocks
# decode from a mapping of the compressed file, with no descriptor.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

BUDGET=16
fds() { ls "/proc/$FLUXFS_PID/fd" | wc -l; }
# Descriptors the daemon holds of partition t/0 (its directory and
# segment files), and of any partition.
t0_fds() { part_fds t/0; }
part_fds() { ls -l "/proc/$FLUXFS_PID/fd" | grep -c " $DATA/$1\(/\|\$\)"; }

mount_start -o fd_budget=$BUDGET
mkdir "$MNT/t" || fail "mkdir"
setfattr -n user.fluxfs.segment_bytes -v 4096 "$MNT/t" || fail "segment_bytes"
for p in 1 2 3 4; do
	echo "other $p" >"$MNT/t/$p" || fail "create t/$p"
done
touch "$MNT/t/0" || fail "create t/0"
sleep 1.5 # the flush of what creating them wrote
BASE=$(fds)

# One writer holds t/0 open (pinned) and appends ~1 MiB in 4 KiB writes
# (dd): about 250 segments.
exec 3>>"$MNT/t/0"
gen_lines 25000 "line" >"$WORK/ref"
dd if="$WORK/ref" bs=4096 status=none >&3 || fail "dd"
segs=$(getfattr --only-values -n user.fluxfs.segments "$MNT/t/0")
[ "$segs" -ge 200 ] || fail "only $segs segments: the test needs hundreds"
# The scheduled flush (flush_ms 1 s) syncs the sealed segments; from
# then on they hold no descriptor.
wait_for 10 sh_c '[ "$(ls -l /proc/$1/fd | grep -c " $2/t/0\(/\|\$\)")" -le 3 ]' "$FLUXFS_PID" "$DATA" ||
	fail "$(t0_fds) descriptors of t/0 with $segs segments held open"
[ "$(fds)" -le $((BASE + 3)) ] || fail "$(fds) descriptors in all ($BASE before t/0 was written)"
log "$segs segments, $(t0_fds) descriptors of t/0, $(fds) in all ($BASE before t/0 was written)"

# The other partitions still open (a pinned partition costing one
# descriptor per segment would hold the whole budget: EMFILE).
for p in 1 2 3 4; do
	assert_eq "other $p" "$(cat "$MNT/t/$p")" "t/$p beside a pinned t/0"
done
# Old segments read back, whole and from the middle.
cmp "$WORK/ref" "$MNT/t/0" || fail "t/0 does not read back"
assert_eq "$(sed -n 12345p "$WORK/ref")" "$(sed -n 12345p "$MNT/t/0")" "line 12345"
assert_eq "$(tail -c 100000 "$WORK/ref" | md5sum)" "$(tail -c 100000 "$MNT/t/0" | md5sum)" "the last 100,000 bytes"
echo "after" >&3
echo "after" >>"$WORK/ref"
exec 3>&-
cmp "$WORK/ref" "$MNT/t/0" || fail "t/0 after one more append"

# Compressed topics rolled every 4 KiB, each partition held open by a
# writer: maintenance compresses every sealed segment (one per partition
# per pass), and the compressed ones hold no descriptor.
CODECS="lz4 gzip zstd"
declare -A SUFFIX=([lz4]=lz4 [gzip]=gz [zstd]=zst) WFD
gen_lines 6000 "zline" >"$WORK/zref"
for c in $CODECS; do
	mkdir "$MNT/$c" || fail "mkdir $c"
	setfattr -n user.fluxfs.segment_bytes -v 4096 "$MNT/$c" || fail "segment_bytes $c"
	setfattr -n user.fluxfs.compression -v "$c" "$MNT/$c" || fail "compression $c"
	exec {fd}>>"$MNT/$c/0" || fail "open $c/0"
	WFD[$c]=$fd
done
# (opened first: a partition rolling faster than its flush holds the
# descriptors of its unsynced sealed segments for up to a second)
for c in $CODECS; do
	dd if="$WORK/zref" bs=4096 status=none >&${WFD[$c]} || fail "dd $c"
done
for c in $CODECS; do
	segs=$(getfattr --only-values -n user.fluxfs.segments "$MNT/$c/0")
	[ "$segs" -ge 40 ] || fail "$c: only $segs segments"
	# every sealed segment compressed: one raw .log left, the active one
	wait_for 60 sh_c '[ "$(ls "$1" | grep -c "\.log$")" -eq 1 ]' "$DATA/$c/0" ||
		fail "$c: $(ls "$DATA/$c/0" | grep -c '\.log$') raw segments left"
	z=$(ls "$DATA/$c/0" | grep -c "\.${SUFFIX[$c]}\$")
	[ "$z" -ge 39 ] || fail "$c: only $z compressed segments"
	wait_for 10 sh_c '[ "$(ls -l /proc/$1/fd | grep -c " $2\(/\|\$\)")" -le 3 ]' "$FLUXFS_PID" "$DATA/$c/0" ||
		fail "$c: $(part_fds "$c/0") descriptors of $c/0 with $z compressed segments held open"
	cmp "$WORK/zref" "$MNT/$c/0" || fail "$c/0 does not read back"
	assert_eq "$(sed -n 2345p "$WORK/zref")" "$(sed -n 2345p "$MNT/$c/0")" "$c: line 2345"
	log "$c: $z compressed segments, $(part_fds "$c/0") descriptors of $c/0"
done
[ "$(fds)" -le $((BASE + 3 + 3 * 3 + 3)) ] || fail "$(fds) descriptors in all ($BASE before)"
for c in $CODECS; do
	exec {WFD[$c]}>&-
done

# Opened again after a remount: as few descriptors while it is read.
mount_restart -o fd_budget=$BUDGET
exec 3<"$MNT/t/0"
head -c 10 <&3 >/dev/null
n=$(t0_fds)
exec 3<&-
[ "$n" -le 3 ] || fail "$n descriptors of t/0 open after a remount"
cmp "$WORK/ref" "$MNT/t/0" || fail "t/0 after a remount"
for c in $CODECS; do
	exec 3<"$MNT/$c/0"
	head -c 10 <&3 >/dev/null
	n=$(part_fds "$c/0")
	exec 3<&-
	[ "$n" -le 3 ] || fail "$n descriptors of $c/0 open after a remount"
	cmp "$WORK/zref" "$MNT/$c/0" || fail "$c/0 after a remount"
done
log "ok"
