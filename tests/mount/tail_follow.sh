#!/bin/bash
# tail_follow.sh - how soon GNU tail -f shows a line another process
# appended: on a partition file within one of tail's polling intervals
# (tail polls st_size on FUSE, so the daemon invalidates the kernel's
# cached size on every append), and on the follow view as well (tail sets
# O_NONBLOCK there and polls likewise; cat of the follow view instead
# wakes at once).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
TAILS=()
stop_tails() {
	[ ${#TAILS[@]} -gt 0 ] || return 0
	kill "${TAILS[@]}" 2>/dev/null
	wait "${TAILS[@]}" 2>/dev/null
	TAILS=()
}
# shown_within MS FILE LINE: LINE appears in FILE within MS; prints the
# milliseconds it took.
shown_within() {
	local t0 deadline
	t0=$(now_ms)
	deadline=$((t0 + $1))
	until grep -qx "$3" "$2"; do
		[ "$(now_ms)" -lt $deadline ] || return 1
		sleep 0.01
	done
	echo $(($(now_ms) - t0))
}
# check_tail LIMIT_MS OUT FILE WHAT: 5 appends to FILE, each must show in
# OUT within LIMIT_MS.
check_tail() {
	local limit=$1 out=$2 file=$3 what=$4 i ms max=0
	for i in 1 2 3 4 5; do
		echo "$what $i" >>"$file" || fail "append"
		ms=$(shown_within "$limit" "$out" "$what $i") ||
			fail "$what: line $i not shown within $limit ms: $(tail -n 3 "$out")"
		[ "$ms" -gt $max ] && max=$ms
		sleep 0.$((RANDOM % 5))
	done
	log "$what: every line shown, slowest after $max ms"
}

mount_start
trap 'stop_tails; harness_cleanup' EXIT
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
F="$MNT/.follow/t/0"
seq 1 20 >>"$P" || fail "append"

# started OUT: tail printed the partition's last line, so it has opened
# the file and taken its size (an acknowledgement, not a guess of time).
started() {
	shown_within 5000 "$1" "$(tail -n 1 "$P")" >/dev/null ||
		fail "tail printed nothing into $1 within 5 s"
}
# Partition file, -s 0.1: within a second (typically ~0.1 s).
tail -n 1 -s 0.1 -f "$P" >"$WORK/a" 2>&1 &
TAILS+=($!)
started "$WORK/a"
check_tail 1000 "$WORK/a" "$P" "tail -s 0.1 -f partition"
# Partition file, default 1 s interval: within one interval plus slack.
tail -n 1 -f "$P" >"$WORK/b" 2>&1 &
TAILS+=($!)
started "$WORK/b"
check_tail 1800 "$WORK/b" "$P" "tail -f partition"
# Follow view: tail -n 5 -f prints the last 5 lines, then follows.
want=$(tail -n 5 "$P")
tail -n 5 -s 0.1 -f "$F" >"$WORK/c" 2>&1 &
TAILS+=($!)
shown_within 2000 "$WORK/c" "$(tail -n 1 "$P")" >/dev/null || fail "tail -n 5 -f of the follow view printed nothing"
assert_eq "$want" "$(head -n 5 "$WORK/c")" "tail -n 5 -f of the follow view"
check_tail 1000 "$WORK/c" "$P" "tail -s 0.1 -f follow view"
# cat of the follow view: at once (a parked read answered by the append).
cat "$F" >"$WORK/d" &
TAILS+=($!)
shown_within 2000 "$WORK/d" "tail -s 0.1 -f follow view 5" >/dev/null || fail "cat of the follow view"
check_tail 300 "$WORK/d" "$P" "cat follow view"
stop_tails
cmp -s "$P" "$WORK/d" || fail "cat of the follow view differs from the partition"
log "ok"
