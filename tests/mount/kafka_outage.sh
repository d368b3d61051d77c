#!/bin/bash
# kafka_outage.sh - the local log is the outage buffer: with every broker
# down the mount keeps accepting appends, the exported partition shows
# mirror_state "retrying" with the error and a growing lag, the daemon
# logs the change of state once (not once per retry); once the brokers
# are back everything arrives once, in order.  Then injected produce
# errors (retriable) are retried without duplicates.  Also a mount whose
# cluster is unreachable from the start, and one unmounted in the middle
# of an outage.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin orders:1
kafka_mount

mkdir "$MNT/orders" || fail "mkdir orders"
seq 1 1000 | sed 's/^/before /' >"$MNT/orders/0" || fail "write"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"
mirror_wait "$MNT/orders/0"

# wait_state PATH STATE: until the partition shows STATE (20 s at most).
wait_state() {
	local i
	for i in $(seq 1 200); do
		[ "$(xval "$1" mirror_state)" = "$2" ] && return 0
		sleep 0.1
	done
	fail "$1 never showed mirror_state $2 (shows '$(xval "$1" mirror_state)', error '$(xval "$1" mirror_error)')"
}

kafka_brokers down # every broker down
for i in $(seq 1 20); do
	seq 1 500 | sed "s/^/outage $i /" >>"$MNT/orders/0" || fail "append during the outage"
	sleep 0.1
done
wait_state "$MNT/orders/0" retrying
lag=$(xval "$MNT/orders/0" mirror_lag)
[ "$lag" -gt 0 ] || fail "no lag shown during the outage"
err=$(xval "$MNT/orders/0" mirror_error)
[ "$err" != none ] || fail "no error shown during the outage"
log "outage: lag $lag, error '$err'"
sleep 2 # librdkafka retries meanwhile; the log must not grow per retry
changes=$(grep -c 'mirror orders/0 -> kafka orders: retrying' "$WORK/daemon.log")
assert_eq 1 "$changes" "log lines for the change to retrying"

kafka_brokers up # brokers back
mirror_wait "$MNT/orders/0"
wait_state "$MNT/orders/0" ok
check_exported orders 0 "$MNT/orders/0"

# Injected retriable produce errors: retried, nothing twice.
kill -HUP "$KAFKA_PID"
sleep 0.2
seq 1 3000 | sed 's/^/errors /' >>"$MNT/orders/0" || fail "append"
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$MNT/orders/0"
grep -q "20 produce errors" "$WORK/kafka.log" || fail "the mock did not inject the errors"

# Unreachable from the start: the mount works, the mirror retries.
mount_stop || fail "unmount"
kafka_brokers down
mount_launch
seq 1 10 | sed 's/^/offline /' >>"$MNT/orders/0" || fail "append while unreachable"
wait_state "$MNT/orders/0" retrying
kafka_brokers up
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$MNT/orders/0"

# Unmounted in the middle of an outage, with records undelivered: the
# daemon still exits promptly and cleanly, and the next mount sends them.
kafka_brokers down
seq 1 2000 | sed 's/^/unsent /' >>"$MNT/orders/0" || fail "append"
wait_state "$MNT/orders/0" retrying
mount_stop || fail "unmount during an outage"
kafka_brokers up
mount_launch
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$MNT/orders/0"
log "ok"
