#!/bin/bash
# follow_unmount.sh - stopping the daemon with 100 parked followers: every
# parked read is answered first (end-of-file), so the readers exit with
# what they read, the mount goes and the daemon exits 0.  Two ways:
#   - SIGTERM to the daemon (what Ctrl-C on "fluxfs -f" or a service
#     manager does): it answers the parked reads, unmounts, exits;
#   - "fusermount3 -u -z" (a plain "fusermount3 -u" is EBUSY while any
#     file is open, parked or not, as on every filesystem): the mount is
#     detached at once; the readers stay parked until they are killed,
#     which interrupts their reads; then the daemon exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
N=100

metric() { awk -v k="$1" '$1 == k { print $2 }' "$MNT/.metrics"; }
wait_ms() {
	local deadline=$(($(date +%s%N) / 1000000 + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) / 1000000)) -lt $deadline ] || return 1
		sleep 0.02
	done
}
parked_is() { [ "$(metric fluxfs_parked_followers)" = "$1" ]; }
none_alive() {
	local p
	for p in "$@"; do
		! kill -0 "$p" 2>/dev/null || return 1
	done
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
CATS=()
stop_cats() {
	[ ${#CATS[@]} -gt 0 ] || return 0
	kill -KILL "${CATS[@]}" 2>/dev/null
	wait "${CATS[@]}" 2>/dev/null
	CATS=()
}
start_followers() {
	local i
	CATS=()
	for i in $(seq 1 $N); do
		cat "$MNT/.follow/t/0" >"$WORK/o.$i" &
		CATS+=($!)
	done
	wait_ms 20000 parked_is $N || fail "$(metric fluxfs_parked_followers) of $N followers parked"
}
# wait_daemon MS: the daemon must exit with status 0 within MS.
wait_daemon() {
	local status=0
	wait_ms "$1" none_alive "$FLUXFS_PID" || fail "daemon still running $1 ms later"
	wait "$FLUXFS_PID" || status=$?
	FLUXFS_PID=""
	assert_eq 0 "$status" "daemon exit status"
	is_mounted "$MNT" && fail "still mounted"
}

mount_start
trap 'stop_cats; harness_cleanup' EXIT
mkdir "$MNT/t" || fail "mkdir topic"
printf 'a\nb\n' >>"$MNT/t/0" || fail "append"

# 1. SIGTERM with 100 parked readers.
start_followers
t0=$(date +%s%N)
kill -TERM "$FLUXFS_PID"
wait_daemon 5000
log "daemon exited 0 in $(ms_since $t0) ms with $N parked readers"
wait_ms 5000 none_alive "${CATS[@]}" || fail "followers still running after the daemon stopped"
for i in $(seq 1 $N); do
	rc=0
	wait "${CATS[$((i - 1))]}" || rc=$?
	assert_eq 0 "$rc" "follower $i exit status (end-of-file)"
	assert_eq "$(printf 'a\nb')" "$(cat "$WORK/o.$i")" "follower $i read"
done
CATS=()
log "all $N followers got end-of-file and exited 0"

# 2. Lazy unmount, then the readers are killed.
mount_launch
start_followers
t0=$(date +%s%N)
fusermount3 -u -z "$MNT" || fail "fusermount3 -u -z failed"
log "fusermount3 -u -z returned in $(ms_since $t0) ms"
is_mounted "$MNT" && fail "still mounted after fusermount3 -u -z"
kill -0 "$FLUXFS_PID" 2>/dev/null || fail "daemon gone while files are open"
t0=$(date +%s%N)
kill -TERM "${CATS[@]}"
wait_ms 2000 none_alive "${CATS[@]}" || fail "killed followers did not exit"
log "$N killed followers exited in $(ms_since $t0) ms"
CATS=()
wait_daemon 5000
log "ok"
