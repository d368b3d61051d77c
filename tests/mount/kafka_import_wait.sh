#!/bin/bash
# kafka_import_wait.sh - user.fluxfs.mirror_wait (fluxctl mirror-wait) on
# an imported partition returns only once everything the Kafka partition
# held when it was asked is imported, also when the importer has not
# fetched since those records arrived (here: every broker answers 300 ms
# late, so the end the importer last saw is old when the wait is asked).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin payments:1
seq 1 100 | sed 's/^/first /' | kproduce payments 0
kafka_mount -o kafka.queued.min.messages=100
kafka_import_start "$MNT/payments" payments
mirror_wait "$MNT/payments/0"
check_imported payments 0 "after the first wait"
for round in 1 2 3; do
	seq 1 3000 | sed "s/^/round $round /" | kproduce payments 0
	"$FLUXCTL" mirror-wait "$MNT/payments/0" >/dev/null || fail "fluxctl mirror-wait, round $round"
	check_imported payments 0 "round $round, once mirror-wait returned"
done
log "ok"
