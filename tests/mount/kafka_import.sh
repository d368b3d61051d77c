#!/bin/bash
# kafka_import.sh - import from Kafka (user.fluxfs.mirror_from): the
# local topic gets partitions 0..N-1 for the Kafka topic's N; each record
# becomes one message (its value and a newline; a value holding newlines
# is escaped to stay one line, and fluxctl unescape gives it back), with
# the record's timestamp; cat reads them and tail -f on .follow sees new
# records arrive; the topic is read-only through the mount (EROFS); a
# clean remount and a SIGKILL in the middle of a 100,000-record import both resume
# exactly (no record twice, none missing); a Kafka topic that does not
# exist is refused (ENOENT); a record over max_message_bytes is skipped,
# counted and logged.  kcat, an independent client, produces.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin missing=ghost payments:3 big:1

seq 1 2000 | sed 's/^/payment /' | kproduce payments 0
echo first | kproduce payments 2
printf 'two\nlines|back\\slash|\x1estarts with RS|plain' | kproduce payments 1 -D '|'
kafka_mount

mkdir "$MNT/payments" || fail "mkdir payments"
expect_err "No such file or directory" setfattr -n user.fluxfs.mirror_from -v ghost "$MNT/payments"
expect_ok setfattr -n user.fluxfs.mirror_from -v payments "$MNT/payments"
assert_eq payments "$(xval "$MNT/payments" mirror_from)" "mirror_from reads back"
for i in $(seq 1 100); do
	[ -e "$MNT/payments/2" ] && break
	sleep 0.1
done
assert_eq "0 1 2" "$(ls "$MNT/payments" | sort -n | xargs)" "local partitions for 3 Kafka partitions"
mirror_wait "$MNT/payments/0"
mirror_wait "$MNT/payments/1"

check_imported payments 0
grep -qx 'fluxfs_mirror_position{topic="payments",partition="0",direction="import"} 2000' "$MNT/.metrics" ||
	fail ".metrics: no import position 2000: $(grep mirror_position "$MNT/.metrics")"
assert_eq "$(kcat_dump payments 0 '%T\n' | tail -n 1)" "$(xval "$MNT/payments/0" last_timestamp)" \
	"the last message's time is the record's timestamp"
assert_eq 4 "$(xval "$MNT/payments/1" next_offset)" "one message per record, newlines or not"
printf '\x1etwo\\nlines\nback\\slash\n\x1e\x1estarts with RS\nplain\n' >"$WORK/want1"
cmp "$WORK/want1" "$MNT/payments/1" >&2 || fail "the escaped values are not as documented"
"$FLUXCTL" unescape <"$MNT/payments/1" >"$WORK/unescaped" || fail "fluxctl unescape"
printf 'two\nlines\nback\\slash\n\x1estarts with RS\nplain\n' >"$WORK/want1raw"
cmp "$WORK/want1raw" "$WORK/unescaped" >&2 || fail "fluxctl unescape did not give the values back"

# A record over the partition's max_message_bytes: skipped, counted and
# logged; the records around it are imported.
{ echo small1; head -c 3000 /dev/zero | tr '\0' x; echo; echo small2; } |
	kproduce big 0
mkdir "$MNT/big" || fail "mkdir big"
expect_ok setfattr -n user.fluxfs.max_message_bytes -v 1k "$MNT/big"
kafka_import_start "$MNT/big" big
mirror_wait "$MNT/big/0"
assert_eq "small1 small2" "$(xargs <"$MNT/big/0")" "records around the long one"
assert_eq 1 "$(xval "$MNT/big/0" mirror_skipped)" "records skipped"
grep -q "kafka big\[0\] offset 1 (3000 bytes) is over max_message_bytes; skipped" "$WORK/daemon.log" ||
	fail "no log line for the long record"

# Read-only through the mount.
expect_err "Read-only file system" sh_c 'echo x >>"$1"' "$MNT/payments/0"
expect_err "Read-only file system" touch "$MNT/payments/7"

# tail -f on the follow view sees records as they arrive.
mirror_wait "$MNT/payments/2"
tail -n 1 -s 0.1 -f "$MNT/.follow/payments/2" >"$WORK/tail.out" 2>&1 &
TAIL=$!
for i in $(seq 1 100); do
	grep -qx first "$WORK/tail.out" && break
	sleep 0.05
done
seq 1 5 | sed 's/^/live /' | kproduce payments 2
for i in $(seq 1 100); do
	[ "$(wc -l <"$WORK/tail.out")" -ge 6 ] && break
	sleep 0.1
done
kill "$TAIL"
wait "$TAIL" 2>/dev/null
{ echo first; seq 1 5 | sed 's/^/live /'; } >"$WORK/want2"
cmp "$WORK/want2" "$WORK/tail.out" >&2 || fail "tail -f on .follow/payments/2 did not show the records"

# A clean remount resumes exactly.
mount_stop || fail "unmount"
seq 2001 2500 | sed 's/^/payment /' | kproduce payments 0
mount_launch
mirror_wait "$MNT/payments/0"
check_imported payments 0

# SIGKILL in the middle of an import, then a remount: exactly once.
seq 2501 100000 | sed 's/^/payment /' | kproduce payments 0
for i in $(seq 1 400); do
	pos=$(xval "$MNT/payments/0" mirror_position)
	[ -n "$pos" ] && [ "$pos" -gt 2600 ] && break
	sleep 0.005
done
log "SIGKILL at Kafka offset $pos of 100000"
[ "$pos" -lt 100000 ] || log "the import finished before the kill (the restart is checked all the same)"
kafka_kill_remount
mirror_wait "$MNT/payments/0"
check_imported payments 0
check_imported payments 2
log "ok"
