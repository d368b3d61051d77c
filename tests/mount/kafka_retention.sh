#!/bin/bash
# kafka_retention.sh - retention waits for the export: with the brokers
# down, segments past retention_ms that were not exported yet stay (the
# local log is the outage buffer), and are deleted once the cluster has
# them; with user.fluxfs.mirror_retention=force retention goes on as
# configured, and what it deleted unexported is counted in mirror_skipped
# and logged, never lost silently.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin orders:1
kafka_mount
kafka_retention_export "$MNT/orders" orders
assert_eq keep "$(xval "$MNT/orders" mirror_retention)" "mirror_retention by default"

# append_batches TAG: 10 appends 150 ms apart, each larger than a
# segment (so a segment each: segment_ms cannot go below 1 s).
append_batches() {
	local i
	for i in $(seq 1 10); do
		seq 1 500 | sed "s/^/$1 $i /" >>"$MNT/orders/0" || fail "append"
		sleep 0.15
	done
}

kafka_brokers down # brokers down
append_batches held
sleep 3 # several maintenance passes, every segment far past 300 ms
assert_eq 0 "$(xval "$MNT/orders/0" start_offset)" "start offset while unexported"
[ "$(xval "$MNT/orders/0" segments)" -gt 5 ] || fail "the segments did not roll"
cp "$MNT/orders/0" "$WORK/all"
kafka_brokers up
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$WORK/all"
# Exported: now retention deletes them.
for i in $(seq 1 100); do
	[ "$(xval "$MNT/orders/0" start_offset)" -gt 0 ] && break
	sleep 0.1
done
[ "$(xval "$MNT/orders/0" start_offset)" -gt 0 ] || fail "retention did not go on after the export"

# force: retention deletes unexported segments; counted and logged.
expect_ok setfattr -n user.fluxfs.mirror_retention -v force "$MNT/orders"
expect_err "Invalid argument" setfattr -n user.fluxfs.mirror_retention -v sometimes "$MNT/orders"
# Remounted with the brokers down: the exporter cannot resume, so the
# new messages stay unread (read ones would wait in librdkafka's queue).
kafka_brokers down
mount_stop || fail "unmount"
mount_launch
start=$(xval "$MNT/orders/0" next_offset)
append_batches forced
sleep 3
[ "$(xval "$MNT/orders/0" start_offset)" -gt "$start" ] || fail "force: retention held anyway"
kafka_brokers up
for i in $(seq 1 200); do
	[ "$(xval "$MNT/orders/0" mirror_lag)" = 0 ] && break
	sleep 0.1
done
skipped=$(xval "$MNT/orders/0" mirror_skipped)
[ "$skipped" -gt 0 ] || fail "force: nothing counted in mirror_skipped"
grep -q "were deleted before they were mirrored" "$WORK/daemon.log" || fail "force: the loss was not logged"
log "force: $skipped messages deleted unexported, counted and logged"
# mirror_retention survives a remount.
mount_stop || fail "unmount"
mount_launch
assert_eq force "$(xval "$MNT/orders" mirror_retention)" "mirror_retention after a remount"
log "ok"
