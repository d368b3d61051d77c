#!/bin/bash
# groups_perm.sh - with -o allow_other,default_permissions a group view
# lets read a partition exactly who may read the partition itself: a
# group file has the partition's read bits and owner, a group topic
# directory the topic's; other users cannot reset a position, create a
# group, or see the lag of a partition they cannot read in .metrics.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EACCES_MSG="Permission denied"
need_nobody

mount_start -o allow_other,default_permissions
chmod 755 "$WORK" || fail "chmod of the test directory"
mkdir "$MNT/t" || fail "mkdir topic"
chmod 755 "$MNT/t"
echo secret >>"$MNT/t/0" || fail "append"
mkdir "$MNT/.groups/g" || fail "mkdir group"
G="$MNT/.groups/g/t/0"

chmod 600 "$MNT/t/0"
assert_eq 600 "$(stat -c %a "$G")" "a group file's mode for a 0600 partition"
expect_err "$EACCES_MSG" as_nobody cat "$G"
xassert "$G" committed_offset 0 "position after a refused read"
cat "$G" >/dev/null # root reads; g has a position now
grep -q 'fluxfs_group_lag_messages{group="g"' "$MNT/.metrics" ||
	fail "root does not see g's lag"
as_nobody cat "$MNT/.metrics" | grep -q 'group="g"' &&
	fail "another user sees the lag of a partition it cannot read"

chmod 644 "$MNT/t/0"
echo public >>"$MNT/t/0"
assert_eq public "$(as_nobody cat "$G")" "another user reads a 0644 partition through a group"
expect_err "$EACCES_MSG" as_nobody setfattr -n user.fluxfs.reset -v earliest "$G"
expect_err "$EACCES_MSG" as_nobody mkdir "$MNT/.groups/mine"
expect_err "$EACCES_MSG" as_nobody setfattr -n user.fluxfs.follow -v 1 "$MNT/.groups/g"
chmod 700 "$MNT/t"
assert_eq 700 "$(stat -c %a "$MNT/.groups/g/t")" "a group topic directory's mode"
expect_err "$EACCES_MSG" as_nobody cat "$G"
log "ok"
