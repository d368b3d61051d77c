#!/bin/bash
# kafka_errors.sh - bad input to the Kafka mirror gets the right errno and
# one log line, never a crash: an unknown kafka.* property fails the mount
# with librdkafka's message, as does an unreadable or malformed
# kafka.config; the properties of a kafka.config file are used; on
# user.fluxfs.mirror_to: a partition name that is not a number (EINVAL),
# a bad Kafka topic name (EINVAL), a partition instead of a topic (EPERM),
# a second, different mirror (EBUSY), a Kafka topic another local topic
# already exports or imports (EBUSY), no cluster configured (ENOTCONN);
# a Kafka topic that does not exist and a local partition the Kafka topic
# lacks show the error in mirror_state/mirror_error and the rest of the
# topic goes on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin missing=nosuchtopic orders:2

# mount_refused WANT ARGS...: fluxfs must refuse to mount, saying WANT.
mount_refused() {
	local want=$1 out rc=0
	shift
	out=$(timeout 20 "$FLUXFS" -f "$@" "$DATA" "$MNT" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "fluxfs $* mounted"
	is_mounted "$MNT" && fail "fluxfs $* left a mount"
	case $out in
	*"$want"*) ;;
	*) fail "fluxfs $*: wanted '$want', got '$out'" ;;
	esac
}
mount_refused "No such configuration property" -o kafka.no.such.property=1
mount_refused "Invalid value" -o kafka.acks=maybe
mount_refused "No such file or directory" -o kafka.config=/nonexistent/kafka.conf
printf 'bootstrap.servers=%s\nthis line has no pair\n' "$KAFKA" >"$WORK/bad.conf"
mount_refused "line 2 is not key=value" -o "kafka.config=$WORK/bad.conf"

# Properties from a file (the way secrets are given): the mirror works.
printf '# the cluster\nbootstrap.servers = %s\nclient.id=from-file\n' "$KAFKA" >"$WORK/kafka.conf"
FLUXFS_OPTS=(-o "kafka.config=$WORK/kafka.conf")
mount_launch
mkdir "$MNT/orders" "$MNT/named" "$MNT/missing" || fail "mkdir"
echo one >"$MNT/orders/0" || fail "write"
echo extra >"$MNT/orders/5" || fail "write orders/5" # Kafka has 0 and 1
echo x >"$MNT/named/abc" || fail "write"
echo y >"$MNT/missing/0" || fail "write"

expect_err "Invalid argument" setfattr -n user.fluxfs.mirror_to -v named "$MNT/named"
grep -q "partition 'abc' is not a Kafka partition number" "$WORK/daemon.log" ||
	fail "no log line for a non-numeric partition"
expect_err "Invalid argument" setfattr -n user.fluxfs.mirror_to -v "a b" "$MNT/orders"
expect_err "Invalid argument" setfattr -n user.fluxfs.mirror_to -v "a/b" "$MNT/orders"
expect_err "Operation not permitted" setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders/0"
expect_err "Operation not permitted" setfattr -n user.fluxfs.mirror_lag -v 1 "$MNT/orders/0"
expect_err "No such attribute" getfattr -n user.fluxfs.mirror_to "$MNT/named"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders" # the same again
expect_err "Device or resource busy" setfattr -n user.fluxfs.mirror_to -v other "$MNT/orders"
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$MNT/orders/0"
assert_eq 1 "$(grep -c "refused user.fluxfs.mirror_to on 'orders': already mirrored" "$WORK/daemon.log")" \
	"log lines for the second mirror"
# One Kafka topic, one local topic per direction: a second export would
# interleave in the Kafka partitions, a second import would feed the
# first topic.  Refused, nothing stored, and the first goes on.
mkdir "$MNT/orders2" "$MNT/imp1" "$MNT/imp2" || fail "mkdir"
echo three >"$MNT/orders2/0" || fail "write orders2/0"
expect_err "Device or resource busy" setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders2"
grep -q "refused user.fluxfs.mirror_to on 'orders2': kafka topic 'orders' is already exported by topic 'orders'" \
	"$WORK/daemon.log" || fail "no log line for a second export of one Kafka topic"
expect_err "No such attribute" getfattr -n user.fluxfs.mirror_to "$MNT/orders2"
[ ! -e "$DATA/orders2/mirror.conf" ] || fail "a refused export left orders2/mirror.conf"
expect_ok setfattr -n user.fluxfs.mirror_from -v orders "$MNT/imp1"
expect_err "Device or resource busy" setfattr -n user.fluxfs.mirror_from -v orders "$MNT/imp2"
grep -q "refused user.fluxfs.mirror_from on 'imp2': kafka topic 'orders' is already imported by topic 'imp1'" \
	"$WORK/daemon.log" || fail "no log line for a second import of one Kafka topic"
[ ! -e "$DATA/imp2/mirror.conf" ] || fail "a refused import left imp2/mirror.conf"

# A local partition the Kafka topic lacks, and a Kafka topic that does
# not exist: the error shows, the daemon goes on.
expect_ok setfattr -n user.fluxfs.mirror_to -v nosuchtopic "$MNT/missing"
for i in $(seq 1 150); do
	s5=$(xval "$MNT/orders/5" mirror_state)
	sm=$(xval "$MNT/missing/0" mirror_state)
	[ "$s5" != starting ] && [ "$s5" != ok ] && [ "$sm" != starting ] && [ "$sm" != ok ] &&
		[ -n "$s5" ] && [ -n "$sm" ] && break
	sleep 0.1
done
case $s5 in retrying | error) ;; *) fail "orders/5 (no Kafka partition 5) shows '$s5'" ;; esac
case $sm in retrying | error) ;; *) fail "missing/0 (no Kafka topic) shows '$sm'" ;; esac
log "orders/5: $s5: $(xval "$MNT/orders/5" mirror_error)"
log "missing/0: $sm: $(xval "$MNT/missing/0" mirror_error)"
[ "$(xval "$MNT/orders/5" mirror_error)" != none ] || fail "no error text for orders/5"
echo two >>"$MNT/orders/0" || fail "append"
mirror_wait "$MNT/orders/0"
check_exported orders 0 "$MNT/orders/0"
mount_stop || fail "unmount"

# No cluster configured: the mirror cannot be set.
FLUXFS_OPTS=()
mount_launch
expect_err "Transport endpoint is not connected" setfattr -n user.fluxfs.mirror_to -v x "$MNT/named"
log "ok"
