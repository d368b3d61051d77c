#!/bin/bash
# kafka_harness.sh - the Kafka tests' outages do not duplicate records by
# themselves.  librdkafka's mock does not deduplicate an idempotent
# producer's retried Produce requests (a real broker does), so an outage
# that drops answers it owes makes the producer send a batch again and
# the mock append it twice; tool_kafka drains those answers before it
# takes the brokers down.  Here, without fluxfs, an idempotent producer
# sends numbered records through 8 such outages (the mock's answers
# delayed 20 ms, so that every outage finds some queued), and every
# number must be read back exactly once.  With the drain removed
# (`tool_kafka outage-check 8 plain`), 800 to 1,200 records come back
# twice.
# test-limit: 200
. "$(dirname "$0")/lib.sh"

TOOL_KAFKA="$top_builddir/tests/mount/tool_kafka"
if [ ! -x "$TOOL_KAFKA" ]; then
	echo "SKIP: built without Kafka support (no tool_kafka)"
	exit 77
fi
out=$("$TOOL_KAFKA" outage-check 8 drain) || fail "records lost or twice across drained outages: $out"
echo "$out" | grep -q "twice 0, missing 0" || fail "unexpected outage-check report: $out"
log "$out"
log "ok"
