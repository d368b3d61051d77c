#!/bin/bash
# tail.sh - tail -f on a partition shows new lines promptly: GNU tail polls
# on FUSE, so the size the kernel caches must grow on every append.  And a
# reader at the end of a growing partition never reads the zeros of a
# stale cached page (tool_follow tailrace), whichever opened first and
# whether lines arrive whole or in pieces.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
echo first >>"$P" || fail "append"
tail -n +1 -s 0.1 -f "$P" >"$WORK/out" 2>"$WORK/tail.err" &
TAIL_PID=$!
has() { grep -qx "$1" "$WORK/out"; }
stop_tail() { kill "$TAIL_PID" 2>/dev/null; wait "$TAIL_PID" 2>/dev/null; }
wait_for 3 has first || { stop_tail; fail "tail -f did not show the existing line"; }
for i in 1 2 3 4 5; do
	echo "line $i" >>"$P" || { stop_tail; fail "append $i"; }
	wait_for 3 has "line $i" || { stop_tail; fail "tail -f did not show 'line $i' within 3 s: $(cat "$WORK/out")"; }
done
# A burst in one write, and a line written by another open handle.
printf 'b1\nb2\nb3\n' >>"$P"
wait_for 3 has b3 || { stop_tail; fail "tail -f missed a burst: $(cat "$WORK/out")"; }
stop_tail
assert_eq "$(cat "$P")" "$(cat "$WORK/out")" "everything tail -f printed"

TOOL_FOLLOW="$top_builddir/tests/mount/tool_follow"
need_tool "$TOOL_FOLLOW"
# The reader opens first (page cache on both sides) or the writer does
# (direct_io on both); whole lines, or each line in two write()s.
i=0
for mode in "" "" writer-first split split "split writer-first"; do
	i=$((i + 1))
	# shellcheck disable=SC2086 # mode is zero to two words
	out=$("$TOOL_FOLLOW" tailrace "$MNT/t/race$i" 3 $mode 2>&1) ||
		fail "a reader at the end of a growing partition ($mode): $out"
	log "tailrace $i ($mode): $out"
done
log "ok"
