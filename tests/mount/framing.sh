#!/bin/bash
# framing.sh - line framing: a trailing partial line waits in its handle,
# invisible to readers, until its newline or close; a write without a final
# newline still ends as one message on close; concurrent writers interleave
# only at line boundaries and keep their own order.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

WRITERS=8
LINES=20000
need_tool "$TOOL_WRITER"
need_tool "$TOOL_FSOP"
mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"

# printf without a newline, then close: the last message has no newline.
printf 'a\nb' >>"$P" || fail "printf without newline"
assert_eq "610a62" "$(od -An -tx1 "$P" | tr -d ' \n')" "bytes after 'a\\nb'"
xassert "$P" next_offset 2 "two messages from 'a\\nb'"
printf 'c\n' >>"$P" || fail "append after the unterminated message"
assert_eq "610a62630a" "$(od -An -tx1 "$P" | tr -d ' \n')" "bytes after 'c\\n'"
xassert "$P" next_offset 3 "the unterminated 'b' stays its own message"

# A partial line is invisible until its newline arrives.  The holders
# keep one descriptor each, as a producer program would.
hold_start 1 "$P"
hold_write 1 'abc' || fail "write of 'abc': $HOLD_ACK"
assert_eq 5 "$(fsize "$P")" "size while 'abc' is pending"
assert_eq "$(printf 'a\nbc')" "$(cat "$P")" "cat while 'abc' is pending"
xassert "$P" next_offset 3 "no message while 'abc' is pending"
hold_write 1 'def\n' || fail "write of 'def\\n': $HOLD_ACK"
assert_eq "$(printf 'a\nbc\nabcdef')" "$(cat "$P")" "cat once the newline came"
assert_eq 12 "$(fsize "$P")" "size once the newline came"
xassert "$P" next_offset 4 "'abc' + 'def\\n' is one message"

# Partial lines are held per handle: another writer's complete lines go
# in first, and the held bytes stay together.
hold_start 2 "$P"
hold_write 1 'A1' || fail "write of 'A1': $HOLD_ACK"
hold_write 2 'B1\n' || fail "write of 'B1\\n': $HOLD_ACK"
echo B2 >>"$P" || fail "append of B2 by another process"
hold_write 2 'C1\nC2' || fail "write of 'C1\\nC2': $HOLD_ACK"
assert_eq "$(printf 'abcdef\nB1\nB2\nC1')" "$(tail -n 4 "$P")" "other handles' lines while one is pending"
hold_write 1 'A2\nA3' || fail "write of 'A2\\nA3': $HOLD_ACK"
assert_eq "A1A2" "$(tail -n 1 "$P")" "pending bytes joined with their own handle's newline"
xassert "$P" next_offset 8 "messages with two handles"

# Close with a partial line pending: it becomes one message, both of them.
hold_close 1 || fail "close of holder 1: $HOLD_ACK"
assert_eq "A3" "$(tail -c 2 "$P")" "pending bytes stored on close"
xassert "$P" next_offset 9 "close made one message"
hold_close 2 || fail "close of holder 2: $HOLD_ACK"
assert_eq "A3C2" "$(tail -c 4 "$P")" "second holder's pending bytes stored on close"
xassert "$P" next_offset 10 "second close made one message"
assert_eq "$(printf 'a\nbc\nabcdef\nB1\nB2\nC1\nA1A2\nA3C2')" "$(cat "$P")" "whole partition"

# Concurrent writers, every write() a random slice ignoring line ends.
C="$MNT/t/concurrent"
pids=()
start=$(date +%s%N)
for i in $(seq 0 $((WRITERS - 1))); do
	"$TOOL_WRITER" "$C" "$i" "$LINES" 7 &
	pids+=($!)
done
for pid in "${pids[@]}"; do
	wait "$pid" || fail "writer $pid failed"
done
ms=$((($(date +%s%N) - start) / 1000000))
bytes=$(fsize "$C")
log "$WRITERS writers x $LINES lines: $bytes bytes in $ms ms"

assert_eq $((WRITERS * LINES)) "$(wc -l <"$C")" "line count"
xassert "$C" next_offset $((WRITERS * LINES)) "message count equals line count"
bad=$(awk -v w="$WRITERS" '
	{
		ok = (NF == 4 && substr($1, 1, 1) == "w")
		id = substr($1, 2) + 0
		ok = ok && id >= 0 && id < w && $1 == "w" id
		ok = ok && length($2) == 6 && $2 + 0 == (id in seq ? seq[id] + 1 : 0)
		ok = ok && length($4) == $3 + 0
		p = $4
		gsub(sprintf("%c", 97 + id), "", p)
		ok = ok && p == ""
		if (!ok) { print NR ": " substr($0, 1, 80); exit }
		seq[id] = $2 + 0
	}
	END {
		if (!ok) exit
		for (i = 0; i < w; i++)
			if (seq[i] != '"$((LINES - 1))"') { print "writer " i " ended at " seq[i]; exit }
	}' "$C")
[ -z "$bad" ] || fail "torn, interleaved or reordered line: $bad"

# The same bytes after a remount.
sum=$(md5sum <"$C")
mount_restart
assert_eq "$sum" "$(md5sum <"$C")" "concurrent partition after remount"
log "ok"
