#!/bin/bash
# kafka_crash.sh - export exactly once across crashes: the daemon is
# SIGKILLed in the middle of a 100,000-message export (records in flight, the stored
# position behind what Kafka acknowledged), twice, and the directory
# mounted again each time; Kafka then holds every message once, in order,
# no duplicate and no gap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

N=95000
# Slow brokers and small batches: the export takes seconds, so the kills
# land in the middle of it.
kafka_begin rtt=20 orders:2
kafka_mount -o kafka.batch.num.messages=200

mkdir "$MNT/orders" || fail "mkdir orders"
seq 1 $N | sed 's/^/order number /' >"$MNT/orders/0" || fail "write orders/0"
seq 1 100 >"$MNT/orders/1" || fail "write orders/1"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"

# kill_mid_export: SIGKILL once the export is under way but not done.
kill_mid_export() {
	local i pos=0
	for i in $(seq 1 2000); do
		pos=$(xval "$MNT/orders/0" mirror_position)
		[ -n "$pos" ] && [ "$pos" -gt "$1" ] && break
		sleep 0.005
	done
	[ "$pos" -lt $N ] || fail "the export finished before the kill (position $pos); the test proves nothing"
	log "SIGKILL at position $pos of $N"
	kafka_kill_remount
}

kill_mid_export 1000
# More appended while the previous run's records may still be in flight.
seq $((N + 1)) $((N + 5000)) | sed 's/^/order number /' >>"$MNT/orders/0" ||
	fail "append after the crash"
N=$((N + 5000))
kill_mid_export "$(($(xval "$MNT/orders/0" mirror_position) + 1000))"
mirror_wait "$MNT/orders/0"
mirror_wait "$MNT/orders/1"
check_exported orders 0 "$MNT/orders/0"
check_exported orders 1 "$MNT/orders/1"
log "ok"
