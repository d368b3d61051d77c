#!/bin/bash
# kafka_resume.sh - an export resumes from the Kafka partition's last
# record only on a confirmed answer.  The stored position is put behind
# what Kafka holds (as a crash between the acknowledgement and the store
# leaves it), then the cluster's first answer to the check of the last
# record is an error a recovering cluster gives: a Fetch answered
# OFFSET_OUT_OF_RANGE (a client that resets to the end then sees only
# "end of partition"), or a ListOffsets answered NOT_LEADER.  Kafka must
# still hold every message once: taking either answer for "no record"
# resumes from the stored position and sends 500 messages twice.
# test-limit: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin orders:1
kafka_mount

mkdir "$MNT/orders" || fail "mkdir orders"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"
n=0
# round SIGNAL: put mirror.pos 500 messages behind Kafka, have the mock
# answer the next check with SIGNAL's error, mount and export 10 more.
round() {
	seq $((n + 1)) $((n + 1000)) | sed 's/^/order /' >>"$MNT/orders/0" || fail "append"
	mirror_wait "$MNT/orders/0"
	mount_stop || fail "unmount"
	cp "$DATA/orders/0/mirror.pos" "$WORK/mirror.pos.old"
	mount_launch
	seq $((n + 1001)) $((n + 1500)) | sed 's/^/order /' >>"$MNT/orders/0" || fail "append"
	mirror_wait "$MNT/orders/0"
	mount_stop || fail "unmount"
	cp "$WORK/mirror.pos.old" "$DATA/orders/0/mirror.pos"
	kill -"$1" "$KAFKA_PID"
	sleep 0.2
	mount_launch
	seq $((n + 1501)) $((n + 1510)) | sed 's/^/order /' >>"$MNT/orders/0" || fail "append"
	mirror_wait "$MNT/orders/0"
	check_exported orders 0 "$MNT/orders/0"
	n=$((n + 1510))
}
round WINCH
grep -q "1 fetch error" "$WORK/kafka.log" || fail "the mock did not inject the fetch error"
round URG
grep -q "1 list-offsets error" "$WORK/kafka.log" || fail "the mock did not inject the list-offsets error"
log "ok"
