#!/bin/bash
# immutable.sh - a partition whose active segment cannot be written on
# disk (chattr +i on its backing .log) is served read-only: the mount
# comes up, the partition reads back whole, an append fails with EROFS
# ("Read-only file system") and changes nothing; once the attribute is
# gone and the data directory is mounted again, appends work.  Skips
# (77) if the backing filesystem does not support chattr +i.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

command -v chattr >/dev/null || fail "chattr (e2fsprogs) is not installed"
mount_start
mkdir "$MNT/t" || fail "mkdir"
gen_lines 300 ro >"$WORK/ref"
cat "$WORK/ref" >>"$MNT/t/0" || fail "append"
mount_stop || fail "unmount"

LOG="$DATA/t/0/$(ls "$DATA/t/0" | grep -E '^[0-9]{20}\.log$' | tail -n 1)"
if ! err=$(chattr +i "$LOG" 2>&1); then
	case $err in
	*"not supported"* | *"Inappropriate ioctl"*)
		echo "SKIP: chattr +i not supported here: $err"
		exit 77 ;;
	esac
	fail "chattr +i: $err"
fi
# the harness removes $WORK: the attribute must go first, whatever happens
trap 'rc=$?; chattr -i "$LOG" 2>/dev/null; (exit $rc); harness_cleanup' EXIT

mount_launch
same_file "$WORK/ref" "$MNT/t/0" "read of the read-only partition"
expect_err "Read-only file system" sh_c "echo more >>'$MNT/t/0'"
assert_eq "$(fsize "$WORK/ref")" "$(stat -c %s "$MNT/t/0")" "size after the refused append"
same_file "$WORK/ref" "$MNT/t/0" "read after the refused append"
# other partitions are not affected
echo other >>"$MNT/t/1" || fail "append to another partition"
grep -q "served read-only" "$WORK/daemon.log" || fail "no log line for the read-only partition"

chattr -i "$LOG" || fail "chattr -i"
mount_restart
echo more >>"$MNT/t/0" || fail "append once writable again"
assert_eq $(($(fsize "$WORK/ref") + 5)) "$(stat -c %s "$MNT/t/0")" "size after append"
log "ok"
