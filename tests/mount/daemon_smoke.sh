#!/bin/bash
# daemon_smoke.sh - a quick end-to-end pass over the daemon's own
# decisions: held partial lines, compare-and-append offsets, unlink and
# rename-over with open handles, .trash cleanup, mode/owner/mtime and
# configuration surviving a remount, the data-directory checks
# (foreign directory, second daemon, newer format) and a clean exit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
T="$MNT/t"
P="$T/0"

mkdir "$T" || fail "mkdir"
printf 'a\nb' >>"$P" || fail "append with a partial line"
assert_eq "$(printf 'a\nb')" "$(cat "$P")" "partial line flushed at close"
echo c >>"$P" || fail "append after a partial"
assert_eq 3 "$(getfattr --only-values -n user.fluxfs.next_offset "$P")" \
	"three messages"

# Held bytes count in the writer's position: a non-append writer can go on.
exec 5<>"$P"
tail_off=$(stat -c %s "$P")
python3 - "$P" "$tail_off" <<'PY' || fail "pwrite at the end plus held bytes"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
end = int(sys.argv[2])
os.pwrite(fd, b"pa", end)            # held
os.pwrite(fd, b"rt\n", end + 2)      # completes it
try:
    os.pwrite(fd, b"x\n", 1)         # not at the end
    sys.exit(1)
except PermissionError:
    pass
os.close(fd)
PY
exec 5>&-
assert_eq "$(printf 'a\nbc\npart')" "$(cat "$P")" "compare-and-append"

# Unlink with handles open: they keep working; the data goes at close.
exec 6<"$P"
exec 7>>"$P"
rm "$P" || fail "unlink"
[ ! -e "$P" ] || fail "partition still listed after unlink"
echo more >&7 || fail "append to an unlinked open partition"
assert_eq "$(printf 'a\nbc\npart\nmore')" "$(cat <&6)" "read after unlink"
exec 6<&- 7>&-
# Releases are asynchronous: the last one may come after close returns.
trash_empty() { [ -z "$(ls "$DATA/.trash")" ]; }
wait_for 5 trash_empty || fail ".trash not emptied at last close: $(ls "$DATA/.trash")"

# rsync's pattern: write a hidden temporary, rename it over the target.
echo old >"$T/p"
exec 6<"$T/p"
echo new >"$T/.p.tmp1" || fail "create a hidden partition"
mv "$T/.p.tmp1" "$T/p" || fail "rename over an existing partition"
assert_eq new "$(cat "$T/p")" "renamed contents"
assert_eq old "$(cat <&6)" "old partition still open"
exec 6<&-

chmod 640 "$T/p" && chown 123:456 "$T/p" && touch -d @1000000000 "$T/p" ||
	fail "chmod/chown/touch"
setfattr -n user.fluxfs.retention_ms -v 2d "$T" || fail "setfattr on topic"
if setfattr -n user.fluxfs.retention_ms -v soon "$T" 2>/dev/null; then
	fail "a bad value was accepted"
fi
mv "$T" "$MNT/u" || fail "rename a topic"

mount_restart
U="$MNT/u"
assert_eq "640 123 456 1000000000" "$(stat -c '%a %u %g %Y' "$U/p")" \
	"mode, owner, mtime after remount"
assert_eq 2d "$(getfattr --only-values -n user.fluxfs.retention_ms "$U/p")" \
	"inherited retention_ms after remount"
assert_eq new "$(cat "$U/p")" "contents after remount"
[ ! -e "$MNT/t" ] || fail "old topic name back after remount"

# A second daemon on the same data directory is refused, naming the pid.
mkdir -p "$WORK/mnt2"
out=$("$FLUXFS" -f "$DATA" "$WORK/mnt2" 2>&1) && fail "second daemon started"
case "$out" in
*"pid $FLUXFS_PID"*) ;;
*) fail "second daemon's message does not name the pid: $out" ;;
esac

mount_stop || fail "daemon did not stop cleanly"

# A foreign directory and a newer format are refused.
mkdir -p "$WORK/foreign" && touch "$WORK/foreign/x"
"$FLUXFS" -f "$WORK/foreign" "$WORK/mnt2" 2>/dev/null &&
	fail "foreign data directory accepted"
echo format=99 >"$DATA/fluxfs.meta"
"$FLUXFS" -f "$DATA" "$WORK/mnt2" 2>/dev/null && fail "newer format accepted"
"$FLUXFS" -f 2>/dev/null && fail "no mount point accepted"
"$FLUXFS" -f "$DATA" "$WORK/nowhere" 2>/dev/null &&
	fail "missing mount point accepted"
"$FLUXFS" --version | grep -q fluxfs || fail "--version"
log "ok"
