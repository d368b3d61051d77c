#!/bin/bash
# follow_many.sh - 1,000 concurrent followers (cat of the follow view) all
# park, all wake on one append, and the daemon's thread count stays
# bounded: a parked read holds no thread.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
N=${FOLLOWERS:-1000}
# main + notifier + maintenance + libfuse's workers (at most 10 idle,
# a few more while busy): far below one thread per follower.
MAX_THREADS=26

metric() { awk -v k="$1" '$1 == k { print $2 }' "$MNT/.metrics"; }
wait_ms() {
	local deadline=$(($(date +%s%N) / 1000000 + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) / 1000000)) -lt $deadline ] || return 1
		sleep 0.05
	done
}
parked_is() { [ "$(metric fluxfs_parked_followers)" = "$1" ]; }
threads() { awk '$1 == "Threads:" { print $2 }' "/proc/$FLUXFS_PID/status"; }
# all_have LINE: every follower's output has LINE.
all_have() { [ "$(cat "$WORK"/o.* | grep -cx "$1")" -eq $N ]; }
stop_cats() {
	[ ${#CATS[@]} -gt 0 ] || return 0
	kill "${CATS[@]}" 2>/dev/null
	wait "${CATS[@]}" 2>/dev/null
	CATS=()
}

mount_start
trap 'stop_cats; harness_cleanup' EXIT
mkdir "$MNT/t" || fail "mkdir topic"
echo first >>"$MNT/t/0" || fail "append"
CATS=()
for i in $(seq 1 $N); do
	cat "$MNT/.follow/t/0" >"$WORK/o.$i" &
	CATS+=($!)
done
wait_ms 30000 parked_is $N || fail "$(metric fluxfs_parked_followers) of $N followers parked"
th=$(threads)
log "$N followers parked; daemon threads: $th"
[ "$th" -le $MAX_THREADS ] || fail "daemon has $th threads with $N parked readers (limit $MAX_THREADS)"

t0=$(date +%s%N)
echo wake >>"$MNT/t/0" || fail "append"
wait_ms 10000 all_have wake || fail "$(cat "$WORK"/o.* | grep -cx wake) of $N followers woke"
t1=$(date +%s%N)
log "all $N followers woke within $(((t1 - t0) / 1000000)) ms"
wait_ms 10000 parked_is $N || fail "followers did not park again ($(metric fluxfs_parked_followers))"
th=$(threads)
[ "$th" -le $MAX_THREADS ] || fail "daemon has $th threads after the wakeup (limit $MAX_THREADS)"
for i in 1 $((N / 2)) $N; do
	assert_eq "$(printf 'first\nwake')" "$(cat "$WORK/o.$i")" "follower $i"
done
stop_cats
wait_ms 10000 parked_is 0 || fail "$(metric fluxfs_parked_followers) reads still parked after the followers were killed"
log "ok"
