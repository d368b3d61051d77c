#!/bin/bash
# kafka_import_grow.sh - partitions added to an imported Kafka topic join
# the import: the daemon re-asks the topic's partition count every 10 s
# and creates and imports the partitions it lacks.  librdkafka's mock
# cluster cannot add partitions to a topic, so the daemon (a test build)
# is made to see 1 of the topic's 3 partitions while the file
# FLUXFS_MIRROR_HIDE_PARTITIONS names says 1; removing it is the "add".
# Everything from the metadata answer on is the real path.
# test-limit: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

if ! has_fault_injection; then
	echo "SKIP: fault injection not compiled in (configure --enable-fault-injection)"
	exit 77
fi
kafka_begin pay:3
for p in 0 1 2; do
	seq 1 300 | sed "s/^/pay $p /" |
		kproduce pay $p
done
echo 1 >"$WORK/hide"
export FLUXFS_MIRROR_HIDE_PARTITIONS="$WORK/hide"
kafka_mount
unset FLUXFS_MIRROR_HIDE_PARTITIONS

kafka_import_start "$MNT/pay" pay
mirror_wait "$MNT/pay/0"
sleep 1
assert_eq "0" "$(ls "$MNT/pay" | xargs)" "local partitions while Kafka shows 1"

rm "$WORK/hide" # Kafka now "has" 3
for i in $(seq 1 250); do
	[ -e "$MNT/pay/2" ] && break
	sleep 0.1
done
assert_eq "0 1 2" "$(ls "$MNT/pay" | sort -n | xargs)" "local partitions after Kafka grew to 3"
grep -q "kafka topic 'pay' now has 3 partitions (was 1)" "$WORK/daemon.log" ||
	fail "no log line for the added partitions"
for p in 0 1 2; do
	mirror_wait "$MNT/pay/$p"
	kcat_dump pay $p '%s\n' >"$WORK/kafka.values" || fail "kcat could not read pay[$p]"
	cmp "$WORK/kafka.values" "$MNT/pay/$p" >&2 ||
		fail "pay/$p differs from Kafka ($(wc -l <"$MNT/pay/$p") lines, $(wc -l <"$WORK/kafka.values") records)"
done
log "ok"
