#!/bin/bash
# permissions.sh - with -o allow_other,default_permissions the modes and
# owners set with chmod/chown are enforced for other users, and still are
# after a remount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EACCES_MSG="Permission denied"
need_nobody

mount_start -o allow_other,default_permissions
chmod 755 "$WORK" || fail "chmod of the test directory"
as_nobody ls "$MNT" >/dev/null || fail "other users cannot list the root (mode $(stat -c %a "$MNT"))"
T="$MNT/t"
P="$T/0"
mkdir "$T" || fail "mkdir topic"
chmod 755 "$T" || fail "chmod topic"
echo secret >>"$P" || fail "append"

check_denied() {
	chmod 600 "$P" || fail "chmod 600"
	expect_err "$EACCES_MSG" as_nobody cat "$P"
	expect_err "$EACCES_MSG" as_nobody sh -c 'echo x >>"$1"' sh "$P"
	chmod 644 "$P" || fail "chmod 644"
	assert_eq secret "$(as_nobody cat "$P")" "other user reads a 0644 partition"
	expect_err "$EACCES_MSG" as_nobody sh -c 'echo x >>"$1"' sh "$P"
	expect_err "$EACCES_MSG" as_nobody mkdir "$MNT/theirs"
	expect_err "$EACCES_MSG" as_nobody sh -c 'echo x >>"$1"' sh "$T/theirs"
}
check_denied
assert_eq secret "$(cat "$P")" "content after refused appends"

# Give the partition and a topic to the other user.
chown 65534:65534 "$P" || fail "chown partition"
as_nobody sh -c 'echo from-nobody >>"$1"' sh "$P" || fail "owner's append after chown"
mkdir "$MNT/mine" && chown 65534:65534 "$MNT/mine" || fail "topic for the other user"
as_nobody sh -c 'echo x >>"$1"' sh "$MNT/mine/0" || fail "owner creates a partition in its topic"
assert_eq "65534 65534" "$(stat -c '%u %g' "$MNT/mine/0")" "owner of a partition created by the other user"

mount_restart
assert_eq "$(printf 'secret\nfrom-nobody')" "$(cat "$P")" "content after remount"
assert_eq "644 65534 65534" "$(stat -c '%a %u %g' "$P")" "mode and owner after remount"
as_nobody sh -c 'echo again >>"$1"' sh "$P" || fail "owner's append after remount"
chown 0:0 "$P" || fail "chown back to root"
expect_err "$EACCES_MSG" as_nobody sh -c 'echo x >>"$1"' sh "$P"
expect_err "$EACCES_MSG" as_nobody rm "$P"
[ -e "$P" ] || fail "partition removed by a user without write permission on the topic"

# A write by someone other than the owner clears setuid and setgid, as
# POSIX says and every local filesystem does; the owner's keeps them.
S="$T/suid"
echo first >>"$S" || fail "create the setuid partition"
chown 0:65534 "$S" && chmod 6777 "$S" || fail "chmod 6777"
assert_eq 6777 "$(stat -c %a "$S")" "mode before any write"
echo by-owner >>"$S" || fail "owner's append"
assert_eq 6777 "$(stat -c %a "$S")" "mode after the owner's append"
as_nobody sh -c 'echo by-other >>"$1"' sh "$S" || fail "other user's append"
assert_eq 777 "$(stat -c %a "$S")" "mode after another user's append"
assert_eq "$(printf 'first\nby-owner\nby-other')" "$(cat "$S")" "setuid partition content"
# The same with a reader open, which makes the writer write through the
# page cache (the kernel then clears the bits itself, if we let it).
chmod 6777 "$S" || fail "chmod 6777 again"
exec 3<"$S"
as_nobody sh -c 'echo cached >>"$1"' sh "$S" || fail "other user's write-through append"
exec 3<&-
assert_eq 777 "$(stat -c %a "$S")" "mode after another user's write-through append"
mount_restart
assert_eq 777 "$(stat -c %a "$S")" "mode after a remount"
# chown clears them too, even root's (as ext4 does).
chmod 6755 "$S" && chown 65534 "$S" || fail "chmod 6755, chown"
assert_eq 755 "$(stat -c %a "$S")" "mode after chown"
log "ok"
