#!/bin/bash
# kafka_export.sh - export to Kafka (user.fluxfs.mirror_to): every message
# of local partition N arrives in Kafka partition N once, in order, as
# its line without the newline, with its append time as the record's
# timestamp and its local offset in the fluxfs-offset header; appends
# after the export began follow; a clean remount sends nothing twice;
# getfattr -d and .metrics show the mirror's state; fluxctl mirror-wait
# waits for it.  An independent client (kcat)
# reads what arrived.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin orders:4
kafka_mount

mkdir "$MNT/orders" || fail "mkdir orders"
t0=$(date +%s%3N)
seq 1 3000 | sed 's/^/order /' >"$MNT/orders/0" || fail "write orders/0"
printf 'a\nbb\n\nccc\n' >"$MNT/orders/2" || fail "write orders/2"
t1=$(date +%s%3N)
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"
assert_eq orders "$(xval "$MNT/orders" mirror_to)" "mirror_to reads back"
mirror_wait "$MNT/orders/0"
mirror_wait "$MNT/orders/2"
check_exported orders 0 "$MNT/orders/0"
check_exported orders 2 "$MNT/orders/2"

# Partition numbers match, and the timestamps are the append times.
kcat_dump orders 0 '%p %T\n' >"$WORK/ts"
bad=$(awk -v a="$t0" -v b="$t1" '$1 != 0 || $2 < a || $2 > b' "$WORK/ts" | head -n 3)
[ -z "$bad" ] || fail "records outside partition 0 or the append window [$t0,$t1]: $bad"
assert_eq 3000 "$(wc -l <"$WORK/ts")" "records in Kafka orders[0]"
assert_eq "$(xval "$MNT/orders/2" last_timestamp)" \
	"$(kcat_dump orders 2 '%T\n' | tail -n 1)" "timestamp of the last record of orders[2]"

# Live: appends after the export began, and a partition created later.
seq 3001 3500 | sed 's/^/order /' >>"$MNT/orders/0" || fail "append"
echo late >"$MNT/orders/1" || fail "create orders/1"
mirror_wait "$MNT/orders/0"
for i in $(seq 1 100); do
	[ "$(xval "$MNT/orders/1" mirror_lag)" = 0 ] && break
	sleep 0.1
done
check_exported orders 0 "$MNT/orders/0"
check_exported orders 1 "$MNT/orders/1"

# The state, through getfattr -d as a user would look.
getfattr -d -m - "$MNT/orders/0" >"$WORK/attrs" 2>/dev/null
grep -q '^user.fluxfs.mirror_state="ok"$' "$WORK/attrs" || fail "state not ok: $(cat "$WORK/attrs")"
grep -q '^user.fluxfs.mirror_lag="0"$' "$WORK/attrs" || fail "lag not 0"
grep -q '^user.fluxfs.mirror_position="3500"$' "$WORK/attrs" || fail "position not 3500"
grep -q '^user.fluxfs.mirror_error="none"$' "$WORK/attrs" || fail "an error shown"
grep -q '^user.fluxfs.mirror_to="orders"$' <(getfattr -d -m - "$MNT/orders" 2>/dev/null) ||
	fail "the topic does not list mirror_to"

# .metrics carries the same figures.
grep -qx 'fluxfs_mirror_position{topic="orders",partition="0",direction="export"} 3500' "$MNT/.metrics" ||
	fail ".metrics: no mirror position 3500: $(grep mirror_position "$MNT/.metrics")"
grep -qx 'fluxfs_mirror_state{topic="orders",partition="0",direction="export"} 1' "$MNT/.metrics" ||
	fail ".metrics: mirror state not ok"
grep -qx 'fluxfs_mirror_lag_messages{topic="orders",partition="0",direction="export"} 0' "$MNT/.metrics" ||
	fail ".metrics: mirror lag not 0"

# A clean remount resumes where it stopped: nothing twice.  fluxctl
# mirror-wait waits for every mirrored partition below a path.
mount_stop || fail "unmount"
mount_launch
seq 3501 3600 | sed 's/^/order /' >>"$MNT/orders/0" || fail "append after remount"
out=$("$FLUXCTL" mirror-wait "$MNT/orders") || fail "fluxctl mirror-wait: $out"
echo "$out" | grep -qx 'orders/0 3600' || fail "fluxctl mirror-wait printed '$out'"
mkdir "$MNT/plain" && echo x >"$MNT/plain/0" || fail "plain topic"
expect_err "no mirrored partition" "$FLUXCTL" mirror-wait "$MNT/plain"
check_exported orders 0 "$MNT/orders/0"
check_exported orders 2 "$MNT/orders/2"
log "ok"
