#!/bin/bash
# punch.sh - fallocate -p -o 0 -l N deletes every message that ends at or
# before byte N (Kafka's delete-records): start_byte moves to the first
# message ending after N, the head reads as zeros, the rest is intact and
# the size stays.  Other fallocate modes are EOPNOTSUPP.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EOPNOTSUPP_MSG="Operation not supported"
need_tool "$TOOL_FSOP"
mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
REF="$WORK/ref"
gen_lines 20 msg >"$REF"
while IFS= read -r line; do
	echo "$line" >>"$P" || fail "append"
done <"$REF"
same_file "$REF" "$P" "content before punching"
size=$(fsize "$P")

# expect_start N: "start_byte start_offset" after deleting up to byte N,
# computed from the reference (messages are its lines).
expect_start() {
	awk -v n="$1" '{ end += length($0) + 1; if (end <= n) { s = end; o = NR } }
		END { printf "%d %d\n", s, o }' "$2"
}
# msg_end I: byte where message I (0-based) ends.
msg_end() {
	head -n $(($1 + 1)) "$REF" | wc -c
}

# punch_check FILE REF N MSG
punch_check() {
	local f=$1 ref=$2 n=$3 want sb so
	fallocate -p -o 0 -l "$n" "$f" || fail "fallocate -p -o 0 -l $n '$f' ($4)"
	want=$(expect_start "$n" "$ref")
	xget sb "$f" start_byte
	xget so "$f" start_offset
	assert_eq "$want" "$sb $so" "start_byte start_offset after punching to $n ($4)"
	assert_eq "$(fsize "$ref")" "$(fsize "$f")" "size after punching to $n"
	zeros_only "$f" 0 "$sb" || fail "[0, $sb) is not zeros after punching to $n"
	same_file <(tail -c +$((sb + 1)) "$ref") <(tail -c +$((sb + 1)) "$f") "bytes from $sb after punching to $n"
}

# Exactly at the end of message 3: messages 0-3 go.
e3=$(msg_end 3)
punch_check "$P" "$REF" "$e3" "end of a message"
assert_eq "$e3 4" "$(expect_start "$e3" "$REF")" "reference computation"
# Two bytes into message 6: it ends after N, so it stays.
n=$(($(msg_end 5) + 2))
punch_check "$P" "$REF" "$n" "inside a message"
xget so "$P" start_offset
assert_eq 6 "$so" "start_offset inside message 6"
xassert "$P" next_offset 20 "next_offset after punching"
# Below the current start: nothing comes back, nothing more goes.
xget sb "$P" start_byte
fallocate -p -o 0 -l 5 "$P" 2>/dev/null
xassert "$P" start_byte "$sb" "start_byte after punching below it"
assert_eq "$sb" "$("$TOOL_FSOP" seek "$P" data 0)" "SEEK_DATA after punching"

# Other modes and ranges not starting at 0 change nothing.
snapshot=$(od -An -tx1 "$P" | md5sum)
expect_err "$EOPNOTSUPP_MSG" fallocate -l 4096 "$P"
# util-linux words EOPNOTSUPP for this mode itself.
expect_err "keep size mode is unsupported" fallocate -n -l 4096 "$P"
expect_err "$EOPNOTSUPP_MSG" fallocate -z -o 0 -l 10 "$P"
expect_err "$EOPNOTSUPP_MSG" fallocate -c -o 0 -l 4096 "$P"
fallocate -p -o $((size - 10)) -l 5 "$P" 2>/dev/null && fail "punching a hole in the middle of the data succeeded"
assert_eq "$snapshot" "$(od -An -tx1 "$P" | md5sum)" "content after refused fallocate calls"
assert_eq "$size" "$(fsize "$P")" "size after refused fallocate calls"
xassert "$P" start_byte "$sb" "start_byte after refused fallocate calls"

# Across many segments: whole segments go, du shrinks.
mkdir "$MNT/s" || fail "mkdir topic s"
setfattr -n user.fluxfs.segment_bytes -v 4096 "$MNT/s" || fail "setfattr segment_bytes on a topic"
Q="$MNT/s/0"
gen_lines 3000 seg >"$WORK/qref"
split -a 4 -l 10 "$WORK/qref" "$WORK/qchunk."
for f in "$WORK"/qchunk.*; do
	cat "$f" >>"$Q" || fail "append $f"
done
xget segs_before "$Q" segments
[ "$segs_before" -gt 10 ] || fail "only $segs_before segments in ~$(fsize "$Q") bytes with segment_bytes=4096"
du_before=$(stat -c %b "$Q")
punch_check "$Q" "$WORK/qref" 100000 "many segments"
xget segs_after "$Q" segments
[ "$segs_after" -lt "$segs_before" ] || fail "segments $segs_before -> $segs_after after punching 100000 bytes"
du_after=$(stat -c %b "$Q")
[ $((du_after * 512)) -le $((du_before * 512 - 80000)) ] || fail "st_blocks $du_before -> $du_after after punching 100000 bytes"

# Everything: every message ends at or before the size.
qsize=$(fsize "$Q")
punch_check "$Q" "$WORK/qref" "$qsize" "whole log"
xassert "$Q" start_offset 3000 "start_offset after deleting every message"
xassert "$Q" next_offset 3000 "next_offset after deleting every message"
echo after-all >>"$Q" || fail "append after deleting every message"
assert_eq after-all "$(tail -c +$((qsize + 1)) "$Q")" "append after deleting every message"
xassert "$Q" next_offset 3001 "next_offset after the new append"

# posix_fallocate: glibc falls back to writing a NUL byte into every
# block of the range when fallocate(2) refuses; none of them may land.
# On an empty partition that used to be taken for a restore that starts
# past 0 (a hole, then a one-byte NUL message).
# (util-linux's fallocate -x ignores what posix_fallocate returns: Python's
# os.posix_fallocate raises on it.)
posix_fallocate() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.posix_fallocate(fd, 0, int(sys.argv[2]))' "$@"
}
E="$MNT/t/empty"
: >>"$E" || fail "create an empty partition"
expect_err "not permitted" posix_fallocate "$E" 1808
assert_eq 0 "$(fsize "$E")" "size of an empty partition after posix_fallocate"
xassert "$E" next_offset 0 "messages in an empty partition after posix_fallocate"
xassert "$E" start_byte 0 "start_byte of an empty partition after posix_fallocate"
qs=$(fsize "$Q")
cp "$Q" "$WORK/q-before"
expect_err "not permitted" posix_fallocate "$Q" $((qs + 4096))
same_file "$WORK/q-before" "$Q" "a partition after posix_fallocate past its end"
echo first >>"$E" || fail "append after the refused posix_fallocate"
assert_eq first "$(cat "$E")" "an empty partition after posix_fallocate, then an append"

mount_restart
xassert "$P" start_byte "$sb" "start_byte of t/0 after remount"
same_file <(tail -c +$((sb + 1)) "$REF") <(tail -c +$((sb + 1)) "$P") "t/0 after remount"
zeros_only "$P" 0 "$sb" || fail "t/0 head is not zeros after remount"
xassert "$Q" start_byte "$qsize" "start_byte of s/0 after remount"
xassert "$Q" start_offset 3000 "start_offset of s/0 after remount"
log "ok"
