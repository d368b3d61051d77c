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

if ! grep -q '^#define FLUXFS_FAULT_INJECTION 1' "$top_builddir/autoconfig.h"; then
	echo "SKIP: fault injection not compiled in (configure --enable-fault-injection)"
	exit 77
fi
kafka_begin payments:1
# Records with distinct times, so that an import is many appends.
for i in $(seq 1 30); do
	seq $(((i - 1) * 2000 + 1)) $((i * 2000)) | sed 's/^/payment /' |
		timeout 60 kcat -P -b "$KAFKA" -t payments -p 0 || fail "kcat"
	sleep 0.01
done
# new_import: a fresh import of the Kafka topic, set up on a plain mount.
new_import() {
	local i
	mount_launch
	mkdir "$MNT/payments" || fail "mkdir"
	expect_ok setfattr -n user.fluxfs.mirror_from -v payments "$MNT/payments"
	for i in $(seq 1 100); do
		[ -e "$MNT/payments/0" ] && break
		sleep 0.05
	done
	mount_stop || fail "unmount"
}
kafka_opts
new_import

for round in 1 2 3; do
	export FLUXFS_CRASHSIM=1 FLUXFS_CRASHSIM_MODE=drop FLUXFS_CRASHSIM_SEED=$round
	mount_launch
	unset FLUXFS_CRASHSIM FLUXFS_CRASHSIM_MODE FLUXFS_CRASHSIM_SEED
	# Cut once the import is under way (or when it is done).
	for i in $(seq 1 400); do
		pos=$(xval "$MNT/payments/0" mirror_position)
		[ -n "$pos" ] && [ "$pos" -gt $((round * 15000)) ] && break
		sleep 0.005
	done
	log "round $round: power cut at Kafka offset $pos of 60000"
	kill -USR2 "$FLUXFS_PID" || fail "cannot signal the daemon"
	status=0
	wait "$FLUXFS_PID" 2>/dev/null || status=$?
	FLUXFS_PID=""
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	[ $status -eq 0 ] || fail "power cut: daemon exited with $status"
	mount_launch
	mirror_wait "$MNT/payments/0"
	assert_eq ok "$(xval "$MNT/payments/0" mirror_state)" "state after the cut ($(xval "$MNT/payments/0" mirror_error))"
	kcat_dump payments 0 '%s\n' >"$WORK/kafka.values"
	cmp "$WORK/kafka.values" "$MNT/payments/0" >&2 ||
		fail "round $round: payments/0 differs from Kafka ($(wc -l <"$MNT/payments/0") lines)"
	mount_stop || fail "unmount"
	# Next round: the import starts again from nothing.
	rm -rf "$DATA/payments" || fail "rm"
	new_import
done
log "ok"
