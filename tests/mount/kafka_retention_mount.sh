#!/bin/bash
# kafka_retention_mount.sh - retention waits for the export from the
# moment an exported partition's log opens, not from when the mirror
# thread finds it: the hold comes from the topic's mirror.conf and the
# partition's mirror.pos as the log opens, before any maintenance pass.
# Shown with a mount that has no Kafka options at all (the mirror never
# runs): segments far past retention_ms that were never exported stay,
# and the next mount with the cluster exports every message.
# test-limit: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin orders:1
kafka_mount
kafka_retention_export "$MNT/orders" orders
seq 1 500 | sed 's/^/exported /' | tee "$WORK/all" >"$MNT/orders/0" || fail "write"
mirror_wait "$MNT/orders/0"
kafka_brokers down # brokers down: what follows is not exported
for i in $(seq 1 10); do
	seq 1 500 | sed "s/^/held $i /" | tee -a "$WORK/all" >>"$MNT/orders/0" || fail "append"
	sleep 0.15
done
# What the cluster acknowledged before it went down: retention may go
# that far, no further.
acked=$(xval "$MNT/orders/0" mirror_position)
mount_stop || fail "unmount"

# No kafka.* option: the mirror is not configured and never starts.
FLUXFS_OPTS=()
mount_launch
cat "$MNT/orders/0" >/dev/null || fail "read orders/0"
segs=$(xval "$MNT/orders/0" segments)
[ "$segs" -gt 5 ] || fail "the segments did not roll ($segs segments, start $(xval "$MNT/orders/0" start_offset), next $(xval "$MNT/orders/0" next_offset))"
sleep 3 # several maintenance passes, every segment far past 300 ms
start=$(xval "$MNT/orders/0" start_offset)
[ "$start" -le "$acked" ] || fail "retention deleted up to offset $start, past the exported $acked, on a mount without Kafka"
[ "$acked" -lt 5000 ] || fail "the brokers took everything before they went down; the test proves nothing"
mount_stop || fail "unmount"

kafka_brokers up
kafka_mount
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$WORK/all"
log "ok"
