#!/bin/bash
# kafka_powerloss_prefix.sh - an import resumes exactly once after a
# power cut kept only a prefix of the appends one intent announced.  The
# records of a Kafka partition fetched in a row go under one intent as
# several appends when their timestamps differ; with no scheduled flush
# (flush_ms -1) the appends after the intent's own sync are all
# unsynced when the power is cut (crashsim, prefix mode: the disk wrote
# each file in order up to a random point), so the log comes back
# ending between the intent's two ends.  The remount must resume after
# exactly the records kept ("N of the last M imported messages were
# kept"): the local partition then equals Kafka's records, read by
# kcat.  Rounds with new seeds until two cuts kept a strict prefix.
# test-limit: 240
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_need_crashsim
kafka_begin payments:1
# Eight producers in turn: records with several timestamps, fetched
# together (one group of appends after the first, which stands alone).
for i in $(seq 1 8); do
	seq $(((i - 1) * 300 + 1)) $((i * 300)) | sed 's/^/payment /' |
		kproduce payments 0
	sleep 0.02
done
kcat_dump payments 0 '%s\n' >"$WORK/kafka.values"
assert_eq 2400 "$(wc -l <"$WORK/kafka.values")" "records in Kafka"
kafka_opts

kept=0
for round in $(seq 1 12); do
	rm -rf "${DATA:?}/payments"
	kafka_launch_crashsim $round prefix
	mkdir "$MNT/payments" || fail "mkdir"
	expect_ok setfattr -n user.fluxfs.flush_ms -v -1 "$MNT/payments"
	kafka_import_start "$MNT/payments" payments
	mirror_wait "$MNT/payments/0"
	assert_eq 2400 "$(wc -l <"$MNT/payments/0")" "round $round: imported before the cut"
	kafka_power_cut
	before=$(grep -c 'imported messages were kept' "$WORK/daemon.log")
	mount_launch
	mirror_wait "$MNT/payments/0"
	assert_eq ok "$(xval "$MNT/payments/0" mirror_state)" "round $round: state after the cut ($(xval "$MNT/payments/0" mirror_error))"
	cmp "$WORK/kafka.values" "$MNT/payments/0" >&2 ||
		fail "round $round: payments/0 differs from Kafka ($(wc -l <"$MNT/payments/0") lines for 2400 records)"
	if [ "$(grep -c 'imported messages were kept' "$WORK/daemon.log")" -gt "$before" ]; then
		kept=$((kept + 1))
		log "round $round: $(grep 'imported messages were kept' "$WORK/daemon.log" | tail -n 1 | sed 's/.*: //')"
	fi
	mount_stop || fail "unmount"
	[ $kept -ge 2 ] && break
done
[ $kept -ge 2 ] || fail "only $kept of $round cuts kept a strict prefix of an intent's appends; the test proves too little"
log "ok"
