#!/bin/bash
# allow_other.sh - -o allow_other alone enforces permissions (it implies
# default_permissions): another user cannot read, append to, remove or
# chmod a user's 0600 partition.  -o no_default_permissions opts out, and
# the daemon then warns once in its log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

A=60001
B=60002
# as UID CMD...: run CMD as UID (group UID, no supplementary groups).
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}
as $A true 2>/dev/null || { echo "SKIP: cannot switch users"; exit 77; }

mount_start -o allow_other
chmod 755 "$WORK" || fail "chmod of the test directory"
T="$MNT/t"
P="$T/0"
mkdir "$T" && chown $A:$A "$T" || fail "topic for user A"
as $A sh -c 'echo mine >>"$1" && chmod 600 "$1"' sh "$P" || fail "A creates its partition"
assert_eq "600 $A" "$(stat -c '%a %u' "$P")" "mode and owner of A's partition"

expect_err "Permission denied" as $B cat "$P"
expect_err "Permission denied" as $B sh -c 'echo x >>"$1"' sh "$P"
expect_err "Permission denied" as $B rm -f "$P"
expect_err "Operation not permitted" as $B chmod 666 "$P"
expect_err "Permission denied" as $B sh -c 'echo x >>"$1"' sh "$T/1"
[ -e "$P" ] || fail "A's partition removed by B"
assert_eq "600 $A" "$(stat -c '%a %u' "$P")" "mode after B's refused chmod"
assert_eq mine "$(as $A cat "$P")" "A's partition after B's refused appends"
grep -q "no_default_permissions" "$WORK/daemon.log" &&
	fail "a warning about no_default_permissions without the option"

# The opt-out: the daemon checks nothing and says so once.
mount_restart -o allow_other,no_default_permissions
# The warning follows the "serving" line, which the daemon writes once the
# mount is live: wait for it rather than read the log at once.
warned() { grep -q "allow_other.*no_default_permissions" "$WORK/daemon.log"; }
wait_for 5 warned || fail "no warning about allow_other without permission checks"
n=$(grep -c "allow_other.*no_default_permissions" "$WORK/daemon.log")
assert_eq 1 "$n" "warnings about allow_other without permission checks"
assert_eq mine "$(as $B cat "$P")" "B reads A's 0600 partition once checks are off"
log "ok"
