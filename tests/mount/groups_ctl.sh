#!/bin/bash
# groups_ctl.sh - fluxctl groups describes consumer groups (committed
# offset, log end, lag) of a data directory, served or not; resets a
# position offline only; fluxctl verify checks the group files and a
# damaged one is reported (and left out by the daemon, logged).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
mkdir "$MNT/orders" || fail "mkdir topic"
seq 1 10 >>"$MNT/orders/0"
mkdir "$MNT/.groups/billing" "$MNT/.groups/idle"
cat "$MNT/.groups/billing/orders/0" >/dev/null
setfattr -n user.fluxfs.reset -v offset:4 "$MNT/.groups/billing/orders/0" || fail "reset"

out=$("$FLUXCTL" groups "$DATA") || fail "fluxctl groups on a served data directory: $out"
echo "$out"
echo "$out" | grep -Eq '^billing +orders +0 +4 +10 +6 ' || fail "billing's row: $out"
echo "$out" | grep -q '^idle .*no committed positions' || fail "idle's row: $out"
expect_err "served by fluxfs" "$FLUXCTL" groups "$DATA" billing --reset offset:7 --partition orders/0
expect_err "" "$FLUXCTL" groups "$DATA" nosuch

mount_stop || fail "unmount"
expect_err "unknown reset" "$FLUXCTL" groups "$DATA" billing --reset sideways --partition orders/0
expect_err "past the end" "$FLUXCTL" groups "$DATA" billing --reset offset:11 --partition orders/0
expect_err "no partition" "$FLUXCTL" groups "$DATA" billing --reset earliest --partition orders/9
out=$("$FLUXCTL" groups "$DATA" billing --reset offset:7 --partition orders/0) ||
	fail "offline reset: $out"
"$FLUXCTL" groups "$DATA" billing | grep -Eq '^billing +orders +0 +7 +10 +3 ' ||
	fail "billing after the offline reset: $("$FLUXCTL" groups "$DATA" billing)"
out=$("$FLUXCTL" verify "$DATA") || fail "verify of a clean data directory: $out"

mount_launch
assert_eq "8
9
10" "$(cat "$MNT/.groups/billing/orders/0")" "read after the offline reset"

# A partition deleted while no daemon ran (or by a crash between the
# deletion and the group file's rewrite): the next mount drops its
# positions, says so once, and the rest stay.
mkdir "$MNT/gone" && echo x >>"$MNT/gone/0" && cat "$MNT/.groups/billing/gone/0" >/dev/null
mount_stop || fail "unmount"
assert_eq 2 "$(grep -c '^pos ' "$DATA/.groups/billing.group")" "billing's positions on disk"
rm -r "$DATA/gone"
mount_launch
grep -q "dropped 1 consumer group position of deleted partitions" "$WORK/daemon.log" ||
	fail "the mount did not drop the deleted partition's position"
assert_eq 1 "$(grep -c '^pos ' "$DATA/.groups/billing.group")" "billing's positions after the mount"
mount_stop || fail "unmount"

# A damaged group file: verify says so (status 1); the daemon leaves the
# group out and logs it.
sed -i 's/^pos \([0-9]*\) /pos 9\1 /' "$DATA/.groups/billing.group"
rc=0
out=$("$FLUXCTL" verify "$DATA") || rc=$?
assert_eq 1 "$rc" "verify's status with a damaged group file"
echo "$out" | grep -q "damaged: .groups/billing.group" || fail "verify's report: $out"
mount_launch
[ ! -e "$MNT/.groups/billing" ] || fail "a damaged group was loaded"
grep -q "consumer group file '.groups/billing.group' left out" "$WORK/daemon.log" ||
	fail "the damaged group file was not logged"
log "ok"
