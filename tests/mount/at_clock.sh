#!/bin/bash
# at_clock.sh - time views when the daemon's wall clock goes backwards.
# The daemon runs under libfaketime (Debian's faketime), whose offset is
# read from a file on every clock call, so the test can turn the clock
# back an hour between two batches.  A message's time is the newest time
# so far (never earlier than its predecessor's), so the index's time
# column stays sorted and a view's binary search stays right: the batch
# written an hour "back" carries the time of the batch before it, no
# window an hour ago holds anything, and the batches after it are found
# exactly.  The newest time survives a remount (the clock is still an
# hour back when the log is reopened).
# test-limit: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

need_packages faketime
FAKETIME_LIB=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$' | head -n 1)
[ -n "$FAKETIME_LIB" ] && [ -e "$FAKETIME_LIB" ] || fail "libfaketime.so.1 not found"
harness_begin
CLOCK_FILE="$WORK/clock"
echo "+0" >"$CLOCK_FILE"
# Only the wall clock moves: timeouts run on the monotonic clock.  An
# ASan build must accept a library preloaded before its runtime.
FLUXFS_ENV=(LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$CLOCK_FILE"
	FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
set_clock() { echo "$1" >"$CLOCK_FILE.tmp" && mv "$CLOCK_FILE.tmp" "$CLOCK_FILE"; }
now_ms() { date +%s%3N; }

# Small segments, so lookups cross many index entries and sealed
# segments.
FLUXFS_OPTS=(-o segment_bytes=16k)
mount_launch
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
gen_lines 2000 a >"$WORK/a"
gen_lines 2000 b >"$WORK/b"
gen_lines 1000 c >"$WORK/c"
gen_lines 500 d >"$WORK/d"

T0=$(now_ms)
sleep 0.2
cat "$WORK/a" >>"$P" || fail "append a"
sleep 1.2
TGAP=$(now_ms)
set_clock "-1h"
# The daemon must see the hour back: a new topic's mtime is its clock.
mkdir "$MNT/probe" || fail "mkdir probe"
mt=$(stat -c %Y "$MNT/probe")
[ "$mt" -lt $((TGAP / 1000 - 3000)) ] || fail "the daemon's clock did not go back (probe mtime $mt)"
cat "$WORK/b" >>"$P" || fail "append b an hour back"
set_clock "+0"
sleep 1.2
TMID=$(now_ms)
sleep 0.2
cat "$WORK/c" >>"$P" || fail "append c"
log "a from $T0, clock back at $TGAP, c after $TMID"

# Every batch's time is at least its predecessor's.
check_sorted() {
	"$FLUXCTL" dump "$DATA/t/0" >"$WORK/dump" 2>&1 || fail "fluxctl dump: $(tail -n 3 "$WORK/dump")"
	awk '/^offset: .* timestamp: / {
		t = $0; sub(/.*\(/, "", t); sub(/\).*/, "", t); t += 0
		if (n++ && t < last) { printf "offset %s at %.0f after %.0f\n", $2, t, last; bad = 1 }
		last = t
	} END { if (n < 10) { print "only " n " batches"; bad = 1 } exit bad }' "$WORK/dump" >"$WORK/sorted" ||
		fail "$1: timestamps go backwards: $(head -n 3 "$WORK/sorted")"
}
check_sorted "after the clock went back"

cat "$WORK/a" "$WORK/b" "$WORK/c" >"$WORK/abc"
cat "$WORK/a" "$WORK/b" >"$WORK/ab"
cmp "$WORK/abc" "$MNT/.at/0/t/0" || fail "view from epoch 0"
cmp "$WORK/abc" "$MNT/.at/$T0/t/0" || fail "view from before a"
# b carries a's last time, so it is before the gap, not an hour ago.
cmp "$WORK/c" "$MNT/.at/$TGAP/t/0" || fail "view from the gap after a (b belongs to a's time)"
cmp "$WORK/c" "$MNT/.at/$TMID/t/0" || fail "view from before c"
cmp "$WORK/ab" "$MNT/.at/$T0..$TMID/t/0" || fail "window a..c"
[ ! -s "$MNT/.at/-2h..-30m/t/0" ] || fail "a window an hour ago holds messages"
[ ! -s "$MNT/.at/$((T0 - 7200000))..$((T0 - 1800000))/t/0" ] ||
	fail "the window around the hour-back time holds messages"

# Reopened with the clock still an hour back, the log keeps its newest time.
set_clock "-1h"
mount_restart
cat "$WORK/d" >>"$P" || fail "append d after the remount"
set_clock "+0"
check_sorted "after a remount an hour back"
cat "$WORK/c" "$WORK/d" >"$WORK/cd"
cmp "$WORK/cd" "$MNT/.at/$TMID/t/0" || fail "view from before c after the remount"
[ ! -s "$MNT/.at/-2h..-30m/t/0" ] || fail "a window an hour ago holds messages after the remount"
mount_stop
