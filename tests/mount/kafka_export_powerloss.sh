#!/bin/bash
# kafka_export_powerloss.sh - export exactly once across power cuts: the
# daemon runs on crashsim (FLUXFS_CRASHSIM=1, fault-injection builds;
# skips otherwise) while a writer appends to an exported partition with
# the default flush_ms, and SIGUSR2 undoes everything not fsynced (the
# unflushed tail of the log, mirror.pos stores) and ends the daemon.
# After each cut, mirror.pos must not claim more than Kafka holds; after a
# remount and more appends, Kafka must hold exactly the local partition:
# each message once, in order, its offset in the header (none sent that
# the local log lost, none skipped).  Three rounds, each cut at a
# different point.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_need_crashsim
kafka_begin orders:1
kafka_opts
# The topic and its export, set up on a plain mount (so they are durable).
mount_launch
mkdir "$MNT/orders" || fail "mkdir"
echo "first" >"$MNT/orders/0" || fail "write"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"
mirror_wait "$MNT/orders/0"
mount_stop || fail "unmount"

# appender ROUND: appends 100-line writes to orders/0 until the mount
# goes away, 15,000 lines at most: librdkafka's mock keeps about 5 MiB of
# a partition and then deletes its oldest records, which the byte-for-byte
# comparison with kcat (and the count below) would take for a loss (a
# fast run once reached 115,000 messages in three rounds).
appender() {
	local n=0
	while [ $n -lt 15000 ]; do
		seq $n $((n + 99)) | sed "s/^/round $1 order /" \
			>>"$MNT/orders/0" 2>/dev/null || exit 0
		n=$((n + 100))
	done
}

for round in 1 2 3; do
	kafka_launch_crashsim $round
	start=$(xval "$MNT/orders/0" mirror_position)
	appender $round &
	apid=$!
	# Cut once the export is under way, at a different point each round.
	for i in $(seq 1 400); do
		pos=$(xval "$MNT/orders/0" mirror_position)
		[ -n "$pos" ] && [ "$pos" -gt $((start + 500)) ] && break
		sleep 0.005
	done
	sleep "0.$((round * 2))"
	pos=$(xval "$MNT/orders/0" mirror_position)
	log "round $round: power cut at local offset $pos"
	kafka_power_cut
	wait "$apid"

	# The stored position never runs ahead of the cluster.
	stored=$(awk '{ print $4 }' "$DATA/orders/0/mirror.pos")
	# The end offset, not a count: what the cluster acknowledged.
	have=$(kcat_dump orders 0 '%o\n' | tail -n 1)
	have=$((${have:--1} + 1))
	log "round $round: mirror.pos $stored, Kafka holds $have records"
	[ -n "$stored" ] && [ "$stored" -le "$have" ] ||
		fail "round $round: mirror.pos claims $stored, Kafka holds $have"

	# New appends after the cut take the offsets of what the cut lost:
	# Kafka must not already hold other messages there.
	mount_launch
	seq 1 50 | sed "s/^/after cut $round /" >>"$MNT/orders/0" || fail "append after the cut"
	mirror_wait "$MNT/orders/0"
	assert_eq ok "$(xval "$MNT/orders/0" mirror_state)" "state after the cut ($(xval "$MNT/orders/0" mirror_error))"
	check_exported orders 0 "$MNT/orders/0"
	log "round $round: $(wc -l <"$MNT/orders/0") messages, Kafka the same"
	mount_stop || fail "unmount"
done
log "ok"
