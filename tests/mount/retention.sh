#!/bin/bash
# retention.sh - retention by size and by age removes whole old segments:
# du shrinks while the size stays, the head reads as zeros and is a hole
# for SEEK_DATA/SEEK_HOLE, the tail still matches what was written, and
# start_byte/start_offset sit on a message boundary.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

need_tool "$TOOL_FSOP"
mount_start -o segment_bytes=4096
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
REF="$WORK/ref"

# About 300 KiB in writes of a few lines each, so segments roll often.
gen_lines 6000 retained >"$REF"
split -a 4 -l 7 "$REF" "$WORK/chunk."
for f in "$WORK"/chunk.*; do
	cat "$f" >>"$P" || fail "append of $f"
done
size=$(fsize "$REF")
lines=$(wc -l <"$REF")
same_file "$REF" "$P" "content before retention"
xget segs "$P" segments
[ "$segs" -gt 20 ] || fail "only $segs segments with segment_bytes=4096 and $size bytes"
du_before=$(($(stat -c %b "$P") * 512))
[ "$du_before" -ge $((size / 2)) ] || fail "st_blocks counts $du_before bytes of $size before retention"
xassert "$P" start_byte 0 "start_byte before retention"

# Retention by size: keep about 16 KiB.
setfattr -n user.fluxfs.retention_bytes -v 16384 "$P" || fail "setfattr retention_bytes"
started() {
	local b
	b=$(getfattr --absolute-names --only-values -n user.fluxfs.start_byte "$P" 2>/dev/null)
	[ -n "$b" ] && [ "$b" -gt 0 ]
}
wait_for 5 started || fail "retention did not run within 5 s (start_byte still 0)"
sleep 1.5 # let the tick finish deleting, then take a stable reading
xget sb "$P" start_byte
xget so "$P" start_offset
xget segs "$P" segments
log "retention kept $((size - sb)) of $size bytes in $segs segments (start_offset $so)"

assert_eq "$size" "$(fsize "$P")" "ls -l size after retention"
[ $((size - sb)) -le $((16384 + 2 * 4096 + 8192)) ] || fail "retention_bytes=16384 kept $((size - sb)) bytes"
[ $((size - sb)) -ge 4096 ] || fail "retention kept only $((size - sb)) bytes"
du_after=$(($(stat -c %b "$P") * 512))
[ "$du_after" -lt $((du_before / 4)) ] || fail "du did not shrink: $du_before -> $du_after bytes"
[ "$(du -k "$P" | cut -f1)" -lt $((size / 1024 / 4)) ] || fail "du -k did not shrink: $(du -k "$P")"

# start_byte is a message boundary and start_offset counts the messages
# before it.
assert_eq "$(head -c "$sb" "$REF" | tail -c 1 | od -An -c | tr -d ' ')" '\n' "byte before start_byte is a newline"
assert_eq "$(head -c "$sb" "$REF" | wc -l)" "$so" "start_offset = lines before start_byte"
xassert "$P" next_offset "$lines" "next_offset after retention"

# Reads: zeros below start_byte, the written bytes from it on.
same_file <(tail -c +$((sb + 1)) "$REF") <(tail -c +$((sb + 1)) "$P") "tail from start_byte"
same_file <(tail -c 5000 "$REF") <(tail -c 5000 "$P") "tail -c 5000"
zeros_only "$P" 0 "$sb" || fail "the retained hole [0, $sb) does not read as zeros"
assert_eq "$size" "$(cat "$P" | wc -c)" "cat reads the whole size"
assert_eq "$sb" "$("$TOOL_FSOP" seek "$P" data 0)" "SEEK_DATA from 0"
assert_eq 0 "$("$TOOL_FSOP" seek "$P" hole 0)" "SEEK_HOLE from 0"
assert_eq "$size" "$("$TOOL_FSOP" seek "$P" hole "$sb")" "SEEK_HOLE from start_byte"

# Appends continue at the end.
echo after-retention >>"$P" || fail "append after retention"
echo after-retention >>"$REF"
assert_eq after-retention "$(tail -n 1 "$P")" "last line after retention"

mount_restart
xassert "$P" start_byte "$sb" "start_byte after remount"
assert_eq "$(fsize "$REF")" "$(fsize "$P")" "size after remount"
same_file <(tail -c +$((sb + 1)) "$REF") <(tail -c +$((sb + 1)) "$P") "tail after remount"

# Retention by age: with retention_ms=1 every sealed segment goes, only
# the active one stays.
Q="$MNT/t/1"
for f in $(ls "$WORK"/chunk.* | head -n 200); do
	cat "$f" >>"$Q" || fail "append of $f to $Q"
done
qsize=$(fsize "$Q")
setfattr -n user.fluxfs.retention_ms -v 1 "$Q" || fail "setfattr retention_ms"
started2() {
	local b
	b=$(getfattr --absolute-names --only-values -n user.fluxfs.start_byte "$Q" 2>/dev/null)
	[ -n "$b" ] && [ "$b" -gt $((qsize - 4096 - 1024)) ]
}
wait_for 5 started2 || fail "retention_ms=1 left start_byte at $(getfattr --only-values -n user.fluxfs.start_byte "$Q" 2>&1) of $qsize"
xassert "$Q" segments 1 "only the active segment after retention_ms=1"
assert_eq "$qsize" "$(fsize "$Q")" "size after age retention"
log "ok"
