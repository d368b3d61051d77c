#!/bin/bash
# at.sh - time-addressed views (MNT/.at/<when>/<topic>/<partition>) with
# real tools: three batches appended a second apart, their times
# recorded; views from a time, of a window (ISO with and without seconds
# and milliseconds, with an offset, epoch ms), relative ones, message
# offsets; grep over every partition of a topic, head, wc; listings;
# bad names (ENOENT and one log line) and writes refused; tail -f of an
# open-ended view catching up and then following; views of a partition
# whose sealed segments are compressed, and of one whose head retention
# deleted; fluxctl cat of the same windows offline.
# test-limit: 90
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start -o segment_bytes=16k
mkdir "$MNT/orders" || fail "mkdir topic"
P="$MNT/orders/0"
now_ms() { date +%s%3N; }
iso() { # ISO-8601 of epoch ms $1 with format $2 (UTC)
	date -u -d "@$(($1 / 1000)).$(printf %03d $(($1 % 1000)))" +"$2"
}

gen_lines 300 a >"$WORK/a"
gen_lines 200 b >"$WORK/b"
gen_lines 100 c >"$WORK/c"
cat "$WORK/a" >>"$P" || fail "append a"
echo "ERROR in one" >>"$MNT/orders/1"
sleep 1.2
T1=$(now_ms)
sleep 0.2
cat "$WORK/b" >>"$P" || fail "append b"
TB=$(now_ms)
echo "ERROR in one again" >>"$MNT/orders/1"
sleep 2.2
T2=$(now_ms)
sleep 0.2
TC=$(now_ms)
cat "$WORK/c" >>"$P" || fail "append c"
log "batches around $T1 and $T2"

# From a time, and windows, in every form of the grammar.
cat "$WORK/b" "$WORK/c" >"$WORK/bc"
cmp "$WORK/bc" "$MNT/.at/$T1/orders/0" || fail "view from epoch ms $T1"
cmp "$WORK/b" "$MNT/.at/$T1..$T2/orders/0" || fail "window $T1..$T2"
cmp "$WORK/c" "$MNT/.at/$T2/orders/0" || fail "view from $T2"
cmp "$WORK/b" "$MNT/.at/$(iso "$T1" %FT%T.%3NZ)..$(iso "$T2" %FT%T.%3NZ)/orders/0" ||
	fail "window in ISO with milliseconds"
H1=$(date -u -d "@$((T1 / 1000 - 3600))" +%FT%H:%M:%S).$(printf %03d $((T1 % 1000)))-01:00
cmp "$WORK/bc" "$MNT/.at/$H1/orders/0" || fail "ISO with offset -01:00 ($H1)"
cmp "$WORK/bc" "$MNT/.at/$(iso "$T1" %FT%T.%3N+0000)/orders/0" || fail "ISO with offset +0000"
# Minutes: from the start of an old minute is everything.
cat "$WORK/a" "$WORK/b" "$WORK/c" >"$WORK/abc"
cmp "$WORK/abc" "$MNT/.at/$(iso $((T1 - 120000)) %FT%H:%MZ)/orders/0" || fail "ISO to the minute"
cmp "$WORK/abc" "$MNT/.at/0/orders/0" || fail "view from epoch 0"
cmp "$WORK/abc" "$MNT/.at/-1h/orders/0" || fail "relative -1h"
cmp "$WORK/abc" "$MNT/.at/-7d/orders/0" || fail "relative -7d"
cmp "$WORK/abc" "$MNT/.at/-2h..-0s/orders/0" || fail "relative window -2h..-0s"
[ ! -s "$MNT/.at/-1h..-30m/orders/0" ] || fail "relative window in the past shows bytes"
assert_eq 0 "$(fsize "$MNT/.at/-1h..-30m/orders/0")" "size of an empty window"
# Relative views are measured at open: N seconds back from now, N chosen
# so that the point is within half a second of the middle of the quiet
# 2.4 s between b (ended at TB) and c (began after TC): 0.7 s to spare for
# the time between here and the daemon's open.
rel_c() {
	local n=$((($(now_ms) - (TB + TC) / 2 + 500) / 1000))
	cmp "$WORK/c" "$MNT/.at/-${n}s/orders/0" || fail "relative -${n}s (TB $TB TC $TC)"
}
rel_c
sleep 1
rel_c

# Offsets: the first message of b is offset 300.
cmp "$WORK/bc" "$MNT/.at/offset:300/orders/0" || fail "offset:300"
cmp "$WORK/b" "$MNT/.at/offset:300..500/orders/0" || fail "offset:300..500"
head -n 5 "$WORK/b" | cmp - "$MNT/.at/offset:300..305/orders/0" || fail "offset:300..305"
assert_eq 5 "$(wc -l <"$MNT/.at/offset:300..305/orders/0")" "wc -l of five messages"
[ ! -s "$MNT/.at/offset:600/orders/0" ] || fail "offset past the end shows bytes"
cmp "$WORK/abc" "$MNT/.at/offset:0..100000/orders/0" || fail "offset window past the end"
# Sizes are exact: a bounded view ends at its last message.
assert_eq "$(fsize "$WORK/b")" "$(fsize "$MNT/.at/$T1..$T2/orders/0")" "st_size of a window"
assert_eq "$(fsize "$WORK/bc")" "$(fsize "$MNT/.at/$T1/orders/0")" "st_size of an open view"
# SEEK_DATA/SEEK_HOLE count from the view's start and end at its end.
w="$MNT/.at/$T1..$T2/orders/0"
assert_eq 7 "$("$TOOL_FSOP" seek "$w" data 7)" "SEEK_DATA in a window"
assert_eq "$(fsize "$WORK/b")" "$("$TOOL_FSOP" seek "$w" hole 0)" "SEEK_HOLE in a window: its end"
expect_err "No such device or address" "$TOOL_FSOP" seek "$w" data "$(fsize "$WORK/b")"
assert_eq "$(head -n 3 "$WORK/b")" "$(head -n 3 "$MNT/.at/$T1/orders/0")" "head -n 3"

# grep over every partition of a topic; listings.
assert_eq 2 "$(cat "$MNT/.at/0/orders/"* | grep -c ERROR)" "ERRORs in all partitions"
assert_eq "$MNT/.at/$T1/orders/1:ERROR in one again" \
	"$(grep -H ERROR "$MNT/.at/$T1/orders/"*)" "grep of a time view"
assert_eq "orders" "$(ls "$MNT/.at/$T1")" "a time lists the topics"
assert_eq "$(printf '0\n1')" "$(ls "$MNT/.at/$T1/orders")" "a time's topic lists the partitions"
assert_eq "" "$(ls "$MNT/.at")" ".at itself lists nothing"

# Bad names: ENOENT, one log line each; nothing is made.
for bad in yesterday 2026-12-06 2026-12-06T10:00 "2026-12-06T10:00Z junk" \
	-5x -5 offset:x offset:9..5 2..1 1..2..3 2026-02-30T00:00Z; do
	expect_err "No such file or directory" cat "$MNT/.at/$bad/orders/0"
	grep -qF "'.at/$bad': not a time" "$WORK/daemon.log" ||
		fail "no log line for the bad name '$bad'"
done
# A name with a newline is logged escaped, on one line.
expect_err "No such file or directory" cat "$MNT/.at/$(printf '1\n2')/orders/0"
grep -qF "'.at/1\x0a2': not a time" "$WORK/daemon.log" ||
	fail "a bad name with a newline is not logged escaped"
expect_err "No such file or directory" cat "$MNT/.at/0/nosuch/0"
expect_err "No such file or directory" cat "$MNT/.at/0/orders/7"
expect_err "Not a directory" ls "$MNT/.at/0/orders/0/x"
# Read-only: writes refused, the partition unchanged.
size=$(fsize "$P")
expect_err "denied" sh_c 'echo x >>"$1"' "$MNT/.at/0/orders/0"
expect_err "denied" sh_c 'echo x >"$1"' "$MNT/.at/0/orders/0"
expect_err "Read-only file system" mkdir "$MNT/.at/0/new"
expect_err "Read-only file system" rm "$MNT/.at/0/orders/0"
expect_err "Read-only file system" rmdir "$MNT/.at/0/orders"
expect_err "Operation not permitted" touch "$MNT/.at/0/orders/new"
expect_err "Operation not permitted" mv "$MNT/.at/0/orders/0" "$MNT/.at/0/orders/9"
assert_eq "$(printf '0\n1')" "$(ls "$MNT/orders")" "the topic after refused changes"
assert_eq "$size" "$(fsize "$P")" "the partition after refused writes"

# tail -f of an open-ended view: catches up, then follows.
tail -n +1 -s 0.2 -f "$MNT/.at/$T2/orders/0" >"$WORK/tail" 2>"$WORK/tail.err" &
TAIL=$!
has_lines() { [ "$(wc -l <"$WORK/tail")" -ge "$1" ]; }
wait_for 10 has_lines 100 || fail "tail -f did not catch up: $(wc -l <"$WORK/tail") lines"
gen_lines 40 d >"$WORK/d"
cat "$WORK/d" >>"$P"
wait_for 10 has_lines 140 || fail "tail -f did not follow: $(wc -l <"$WORK/tail") lines"
kill "$TAIL"
wait "$TAIL" 2>/dev/null
cat "$WORK/c" "$WORK/d" | cmp - "$WORK/tail" || fail "tail -f's lines"
# A bounded view does not grow; an open one opened earlier ends at EOF.
cmp "$WORK/b" "$MNT/.at/$T1..$T2/orders/0" || fail "window after more appends"

# Compressed sealed segments: the same answers.
mkdir "$MNT/z" || fail "mkdir z"
setfattr -n user.fluxfs.compression -v lz4 "$MNT/z" || fail "compression=lz4"
gen_lines 3000 z1 >"$WORK/z1"
cat "$WORK/z1" >>"$MNT/z/0"
sleep 1.2
Z=$(now_ms)
sleep 0.2
gen_lines 3000 z2 >"$WORK/z2"
cat "$WORK/z2" >>"$MNT/z/0"
packed() { ls "$DATA/z/0/" | grep -q '\.lz4$'; }
wait_for 10 packed || fail "no segment compressed: $(ls "$DATA/z/0")"
cmp "$WORK/z2" "$MNT/.at/$Z/z/0" || fail "view of compressed segments"
cmp "$WORK/z1" "$MNT/.at/0..$Z/z/0" || fail "window over compressed segments"
cmp "$WORK/z2" "$MNT/.at/offset:3000/z/0" || fail "offset over compressed segments"

# Retention deleted the head: a view from before it starts at the start.
setfattr -n user.fluxfs.retention_bytes -v 40000 "$MNT/z" || fail "retention_bytes"
gone() { [ "$(xget_q "$MNT/z/0" start_offset)" -gt 0 ]; }
xget_q() { getfattr --only-values -n "user.fluxfs.$2" "$1" 2>/dev/null; }
wait_for 10 gone || fail "retention deleted nothing"
start=$(xget_q "$MNT/z/0" start_offset)
cmp "$MNT/.at/0/z/0" "$MNT/.at/offset:$start/z/0" || fail "a view from before retention's start"
assert_eq "$(fsize "$MNT/.at/offset:$start/z/0")" \
	"$(($(fsize "$MNT/z/0") - $(xget_q "$MNT/z/0" start_byte)))" "size of a retained view"
cat "$WORK/z1" "$WORK/z2" | tail -c "$(fsize "$MNT/.at/0/z/0")" | cmp - "$MNT/.at/0/z/0" ||
	fail "a view from before the start is the retained tail"
cat "$MNT/.at/0/z/0" >"$WORK/z0"

# fluxctl cat: the same windows offline, from the data directory.
mount_stop
"$FLUXCTL" cat --since "$T1" --until "$T2" "$DATA/orders/0" | cmp "$WORK/b" - ||
	fail "fluxctl cat --since --until"
"$FLUXCTL" cat --since "$(iso "$T1" %FT%T.%3NZ)" "$DATA/orders/0" |
	cmp <(cat "$WORK/b" "$WORK/c" "$WORK/d") - || fail "fluxctl cat --since ISO"
"$FLUXCTL" cat --offset 300 --until "$T2" "$DATA/orders/0" | cmp "$WORK/b" - ||
	fail "fluxctl cat --offset --until"
"$FLUXCTL" cat --since "$T1" --offset 400 --until "$T2" "$DATA/orders/0" |
	cmp <(tail -n 100 "$WORK/b") - || fail "fluxctl cat: the later of --since and --offset"
"$FLUXCTL" cat --since "$Z" "$DATA/z/0" | cmp "$WORK/z0" - || fail "fluxctl cat of retained, compressed segments"
"$FLUXCTL" cat "$DATA/z/0" | cmp "$WORK/z0" - || fail "fluxctl cat of a retained partition"
expect_err "bad time" "$FLUXCTL" cat --since yesterday "$DATA/orders/0"
expect_err "bad time" "$FLUXCTL" cat --until 2026-12-06T10:00+24:00 "$DATA/orders/0"
# Offline, a time without a zone is local time (TZ): T1 in UTC+3's terms.
TZ=UTC-3 "$FLUXCTL" cat --since "$(iso $((T1 + 3 * 3600000)) %FT%T.%3N)" \
	--until "$T2" "$DATA/orders/0" | cmp "$WORK/b" - ||
	fail "fluxctl cat --since a local time without a zone"
log "ok"
