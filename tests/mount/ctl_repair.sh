#!/bin/bash
# ctl_repair.sh - a damaged batch in the middle of the log: verify finds
# it; repair lists it and leaves it (exit 1); repair --drop-damaged copies
# its bytes to DATA/.quarantine and turns it into a hole inside the log;
# verify then reports a known loss and exits 0; the mount serves every
# other byte unchanged, zeros for the hole, SEEK_DATA/SEEK_HOLE around it,
# the loss in xattrs and .metrics, and offsets as before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

need_tool "$TOOL_FSOP"
mount_start -o segment_bytes=4k
P=$MNT/orders/0
mkdir "$MNT/orders"
# 300 messages of 31 bytes, one write (one batch) each.
for i in $(seq 0 299); do printf 'message number %03d padding pad\n' $i; done >>"$P"
assert_eq 9300 "$(stat -c %s "$P")" "size after 300 appends"
cat "$P" >"$WORK/orig"
mount_stop || fail "unmount"
D=$DATA/orders/0

# A bad last batch above the recovery point is a torn write, not damage
# on the disk: --drop-damaged leaves it to recovery, which cuts it (on a
# copy).
cp -a "$DATA" "$WORK/torn"
T=$WORK/torn/orders/0
sed -i 's/^recovery_point=.*/recovery_point=9269/' "$T/partition.state"
last=$(ls "$T"/*.log | tail -1)
printf 'X' | dd of="$last" bs=1 seek=$(( $(stat -c %s "$last") - 5 )) conv=notrunc 2>/dev/null
rc=0; "$FLUXCTL" repair --drop-damaged "$WORK/torn" >"$WORK/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "repair --drop-damaged of a torn tail: $(cat "$WORK/out")"
grep -q "recovery: 31 bytes truncated" "$WORK/out" || fail "torn tail not cut by recovery: $(cat "$WORK/out")"
[ ! -e "$WORK/torn/.quarantine" ] || fail "a torn write was dropped as damage: $(cat "$WORK/out")"

# A damaged batch in the first segment: --drop-damaged drops the batch
# and keeps the segment (without it, repair moves the whole segment to
# quarantine/; on a copy).
cp -a "$DATA" "$WORK/head"
H=$WORK/head/orders/0
printf 'X' | dd of="$H/00000000000000000000.log" bs=1 seek=$((5 * 31 + 3)) conv=notrunc 2>/dev/null
rc=0; "$FLUXCTL" repair --drop-damaged "$WORK/head" >"$WORK/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "repair --drop-damaged in the first segment: $(cat "$WORK/out")"
! grep -q "quarantine/ (the log will start" "$WORK/out" || fail "the first segment was moved: $(cat "$WORK/out")"
[ -f "$H/00000000000000000000.log" ] || fail "the first segment is gone"
[ -f "$WORK/head/.quarantine/orders/0/00000000000000000000-155-31.batch" ] || fail "batch of the first segment not saved"
"$FLUXCTL" verify "$WORK/head" >"$WORK/out" || fail "verify after dropping in the first segment: $(cat "$WORK/out")"

# Message 150 lies in a sealed segment that is neither the first nor the
# active one.
segs=$(ls "$D"/*.log | wc -l)
[ "$segs" -ge 3 ] || fail "want 3 segments, have $segs"
seg=""
for f in "$D"/*.log; do
	b=${f##*/}; b=$((10#${b%.log}))
	[ "$b" -le 150 ] && seg=$f && base=$b
done
[ "$seg" != "$(ls "$D"/*.log | head -1)" ] || fail "message 150 is in the first segment"
[ "$seg" != "$(ls "$D"/*.log | tail -1)" ] || fail "message 150 is in the active segment"
segname=${seg##*/}
rel=$(( (150 - base) * 31 ))
printf 'X' | dd of="$seg" bs=1 seek=$((rel + 3)) conv=notrunc 2>/dev/null
dd if="$seg" of="$WORK/damaged" bs=1 skip=$rel count=31 2>/dev/null

rc=0; "$FLUXCTL" verify "$DATA" >"$WORK/out" || rc=$?
assert_eq 1 "$rc" "verify with a flipped byte"

# Default repair: names the batch, leaves it, exits 1.
rc=0; "$FLUXCTL" repair "$DATA" >"$WORK/out" 2>&1 || rc=$?
assert_eq 1 "$rc" "repair without --drop-damaged: $(cat "$WORK/out")"
grep -q "^orders/0: damaged batch in segment $segname, bytes 4650..4681, offsets 150..150: left in place" \
	"$WORK/out" || fail "repair does not name the batch: $(cat "$WORK/out")"
dd if="$seg" bs=1 skip=$rel count=31 2>/dev/null | cmp -s - "$WORK/damaged" \
	|| fail "default repair changed the damaged bytes"
[ ! -e "$DATA/.quarantine" ] || fail "default repair quarantined something"

# --drop-damaged --dry-run changes nothing.
rc=0; "$FLUXCTL" repair --drop-damaged --dry-run "$DATA" >"$WORK/out" 2>&1 || rc=$?
grep -q "bytes 4650..4681, offsets 150..150: would copy" "$WORK/out" \
	|| fail "dry-run plan: $(cat "$WORK/out")"
! grep -q "would leave segment" "$WORK/out" || fail "dry-run plan leaves the segment the drop cleans: $(cat "$WORK/out")"
[ ! -e "$DATA/.quarantine" ] || fail "dry run quarantined something"

# --drop-damaged: quarantined (the damaged bytes exactly), then a hole.
rc=0; "$FLUXCTL" repair --drop-damaged "$DATA" >"$WORK/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "repair --drop-damaged: $(cat "$WORK/out")"
q=$DATA/.quarantine/orders/0/${segname%.log}-4650-31.batch
[ -f "$q" ] || fail "no quarantined batch $q: $(ls -R "$DATA/.quarantine" 2>&1)"
cmp -s "$q" "$WORK/damaged" || fail "quarantined bytes differ from the damaged ones"
dd if="$seg" bs=1 skip=$rel count=31 2>/dev/null | cmp -s - <(head -c 31 /dev/zero) \
	|| fail "the dropped batch is not zeros on disk"
assert_eq 9300 "$(cat "$D"/*.log | wc -c)" "log length after the drop"

rc=0; "$FLUXCTL" verify "$DATA" >"$WORK/out" || rc=$?
assert_eq 0 "$rc" "verify after the drop: $(cat "$WORK/out")"
grep -q "^lost: orders/0 segment $segname bytes 4650..4681 offsets 150..150" "$WORK/out" \
	|| fail "verify does not report the known loss: $(cat "$WORK/out")"
grep -q "^known loss: 1 messages in 31 bytes" "$WORK/out" || fail "verify summary: $(cat "$WORK/out")"
"$FLUXCTL" dump "$seg" | grep -q "^offset: 150 .* valid flags: last,lost$" \
	|| fail "dump does not mark the entry lost: $("$FLUXCTL" dump "$seg" | grep '^offset: 150 ')"
# A second repair finds nothing to do.
"$FLUXCTL" repair --drop-damaged "$DATA" >"$WORK/out" 2>&1 || fail "repair again: $(cat "$WORK/out")"

# Through the mount: whole file readable, hole is zeros, the rest as
# written, offsets unchanged.
mount_launch
cat "$P" >"$WORK/now" || fail "cat of the repaired partition"
assert_eq 9300 "$(stat -c %s "$WORK/now")" "bytes read"
{ head -c 4650 "$WORK/orig"; head -c 31 /dev/zero; tail -c +4682 "$WORK/orig"; } >"$WORK/want"
cmp "$WORK/want" "$WORK/now" || fail "content after the drop differs from the original outside the hole"
assert_eq 300 "$(getfattr --only-values -n user.fluxfs.next_offset "$P")" "next_offset"
assert_eq 1 "$(getfattr --only-values -n user.fluxfs.lost_messages "$P")" "lost_messages"
assert_eq 31 "$(getfattr --only-values -n user.fluxfs.lost_bytes "$P")" "lost_bytes"
assert_eq $((151 * 31)) "$("$FLUXCTL" seek "$P" --offset 151)" "seek offset 151"
assert_eq $((149 * 31)) "$("$FLUXCTL" seek "$P" --offset 149)" "seek offset 149"
assert_eq 4681 "$("$TOOL_FSOP" seek "$P" data 4650)" "SEEK_DATA over the hole"
assert_eq 4660 "$("$TOOL_FSOP" seek "$P" hole 4660)" "SEEK_HOLE inside the hole"
assert_eq 4650 "$("$TOOL_FSOP" seek "$P" hole 0)" "SEEK_HOLE finds the hole"
assert_eq 0 "$("$TOOL_FSOP" seek "$P" data 0)" "SEEK_DATA from 0"
assert_eq 9300 "$("$TOOL_FSOP" seek "$P" hole 4681)" "SEEK_HOLE after the hole"
grep -q '^fluxfs_lost_messages_total{topic="orders",partition="0"} 1$' "$MNT/.metrics" \
	|| fail "metrics: $(grep lost "$MNT/.metrics")"

# The segment with the hole compresses like any other (its zeros with
# it); reads, the loss and offsets are the same afterwards and after a
# remount.
setfattr -n user.fluxfs.compression -v lz4 "$MNT/orders" || fail "setfattr compression"
wait_for 20 test -f "${seg%.log}.lz4" || fail "the segment with the hole was not compressed"
cmp "$WORK/want" <(head -c 9300 "$P") || fail "content after compression"
mount_restart
cmp "$WORK/want" <(head -c 9300 "$P") || fail "content after compression and remount"
assert_eq 1 "$(getfattr --only-values -n user.fluxfs.lost_messages "$P")" "lost_messages when compressed"
assert_eq 4681 "$("$TOOL_FSOP" seek "$P" data 4650)" "SEEK_DATA over the hole when compressed"
mount_stop || fail "unmount"
rc=0; "$FLUXCTL" verify "$DATA" >"$WORK/out" || rc=$?
assert_eq 0 "$rc" "verify of the compressed segment with the hole: $(cat "$WORK/out")"
grep -q "^lost: orders/0 segment ${segname%.log}.lz4 bytes 4650..4681" "$WORK/out" \
	|| fail "verify of the compressed hole: $(cat "$WORK/out")"
# Damage inside a compressed segment is listed and left: its bytes are
# inside compressed blocks (on a copy, so the mount below is unaffected).
cp -a "$DATA" "$WORK/copy"
lz=$WORK/copy/orders/0/${segname%.log}.lz4
printf 'XXXXXXXX' | dd of="$lz" bs=1 seek=$(( $(stat -c %s "$lz") / 2 )) conv=notrunc 2>/dev/null
rc=0; "$FLUXCTL" repair --drop-damaged "$WORK/copy" >"$WORK/out" 2>&1 || rc=$?
assert_eq 1 "$rc" "repair --drop-damaged of a damaged compressed segment: $(cat "$WORK/out")"
grep -q "left in place (the segment is compressed" "$WORK/out" \
	|| fail "no word on the compressed segment: $(cat "$WORK/out")"

mount_launch
echo after >>"$P" || fail "append after the drop"
assert_eq after "$(tail -n 1 "$P")" "last line after append"
exit 0
