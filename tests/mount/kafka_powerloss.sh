#!/bin/bash
# kafka_powerloss.sh - import exactly once across power cuts: the daemon
# runs on crashsim (FLUXFS_CRASHSIM=1, fault-injection builds; skips
# otherwise), and SIGUSR2 in the middle of an import undoes everything not
# fsynced (appends within flush_ms, intents) and ends the daemon; after a
# remount the local partition holds every Kafka record once, in order.
# Three rounds, each cut at a different point.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_need_crashsim
kafka_begin rtt=20 payments:1
# Records with distinct times, so that an import is many appends.
for i in $(seq 1 30); do
	seq $(((i - 1) * 2000 + 1)) $((i * 2000)) | sed 's/^/payment /' |
		kproduce payments 0
	sleep 0.01
done
# new_import: a fresh import of the Kafka topic, set up on a plain mount.
new_import() {
	mount_launch
	kafka_import_start "$MNT/payments" payments
	mount_stop || fail "unmount"
}
# Small fetches from slow brokers: the import takes seconds, so the cuts
# land in the middle of it.
kafka_opts -o kafka.fetch.message.max.bytes=2000
new_import

for round in 1 2 3; do
	kafka_launch_crashsim $round
	# Cut once the import is under way (or when it is done).
	for i in $(seq 1 400); do
		pos=$(xval "$MNT/payments/0" mirror_position)
		[ -n "$pos" ] && [ "$pos" -gt $((round * 15000)) ] && break
		sleep 0.005
	done
	[ "$pos" -lt 60000 ] || fail "round $round: the import finished before the cut; the test proves nothing"
	log "round $round: power cut at Kafka offset $pos of 60000"
	kafka_power_cut
	mount_launch
	mirror_wait "$MNT/payments/0"
	assert_eq ok "$(xval "$MNT/payments/0" mirror_state)" "state after the cut ($(xval "$MNT/payments/0" mirror_error))"
	check_imported payments 0 "round $round"
	mount_stop || fail "unmount"
	# Next round: the import starts again from nothing.
	rm -rf "$DATA/payments" || fail "rm"
	new_import
done
# How many cuts kept only a prefix of an intent's appends (several
# timestamps under one intent; a scheduled flush in the middle).
log "resumed after a kept prefix: $(grep -c 'imported messages were kept' "$WORK/daemon.log") times"
log "ok"
