#!/bin/bash
# appendonly_attr.sh - chattr +a, Linux's append-only attribute, on a
# partition and on a topic: lsattr shows it, it persists, and it refuses
# what ext4 refuses for an append-only file or directory (unlink, rename,
# rename-over, truncation, a writer without O_APPEND) with EPERM, while
# appends go on.  The tool that rewrites a file through a temporary and a
# rename (sed -i) is refused instead of silently replacing the log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EPERM_MSG="Operation not permitted"
need_tool "$TOOL_FSOP"
mount_start -o allow_other,default_permissions
chmod 755 "$WORK"
mkdir "$MNT/t" "$MNT/u" || fail "mkdir topics"
P="$MNT/t/0"
printf 'one\ntwo\n' >>"$P" || fail "append"
echo other >>"$MNT/t/1" || fail "append to t/1"

# flags FILE: the lsattr flags column.
flags() { lsattr -d "$1" 2>&1 | awk '{ print $1 }'; }

chattr +a "$P" || fail "chattr +a on a partition"
case $(flags "$P") in *a*) ;; *) fail "lsattr does not show +a: $(flags "$P")" ;; esac
echo three >>"$P" || fail "append to an append-only partition"
expect_err "$EPERM_MSG" rm "$P"
expect_err "$EPERM_MSG" "$TOOL_FSOP" rename "$P" "$MNT/t/moved"
expect_err "$EPERM_MSG" "$TOOL_FSOP" rename "$MNT/t/1" "$P"
expect_err "$EPERM_MSG" truncate -s 0 "$P"
expect_err "$EPERM_MSG" truncate -s "$(fsize "$P")" "$P"
expect_err "$EPERM_MSG" sh_c 'echo x >"$1"' "$P"
expect_err "$EPERM_MSG" sed -i 's/one/ONE/' "$P"
assert_eq "$(printf 'one\ntwo\nthree')" "$(cat "$P")" "an append-only partition after refused changes"
[ -e "$MNT/t/1" ] || fail "the rename over an append-only partition removed its source"
# Only a privileged process changes the flag (the kernel asks for
# CAP_LINUX_IMMUTABLE, as for ext4), even the owner cannot.
chown 65534 "$P" || fail "chown"
expect_err "$EPERM_MSG" as_nobody chattr -a "$P"
case $(flags "$P") in *a*) ;; *) fail "+a gone after a refused chattr -a" ;; esac

# A topic: its partitions cannot be removed or renamed, new ones come.
chattr +a "$MNT/u" || fail "chattr +a on a topic"
case $(flags "$MNT/u") in *a*) ;; *) fail "lsattr -d of the topic: $(flags "$MNT/u")" ;; esac
echo a >>"$MNT/u/0" || fail "a new partition in an append-only topic"
expect_err "$EPERM_MSG" rm "$MNT/u/0"
expect_err "$EPERM_MSG" mv "$MNT/u/0" "$MNT/u/1"
expect_err "$EPERM_MSG" mv "$MNT/u/0" "$MNT/t/moved"
expect_err "$EPERM_MSG" sh_c 'rm "$1"/* && rmdir "$1"' "$MNT/u"
echo b >>"$MNT/u/0" || fail "append in an append-only topic"

# It persists, and chattr -a lifts it.
mount_restart
case $(flags "$P") in *a*) ;; *) fail "+a on the partition lost at remount" ;; esac
case $(flags "$MNT/u") in *a*) ;; *) fail "+a on the topic lost at remount" ;; esac
expect_err "$EPERM_MSG" rm "$P"
chattr -a "$P" "$MNT/u" || fail "chattr -a"
case $(flags "$P") in *a*) fail "+a still shown after chattr -a" ;; esac
rm "$P" "$MNT/u/0" || fail "rm after chattr -a"
rmdir "$MNT/u" || fail "rmdir after chattr -a"
# Flags fluxfs does not keep are refused.
expect_err "not supported" chattr +i "$MNT/t/1"
log "ok"
