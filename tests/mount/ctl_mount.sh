#!/bin/bash
# ctl_mount.sh - the fstab path and fluxctl through a mount: "mount -t
# fluxfs -o allow_other,default_permissions DATA MNT" through
# contrib/mount.fluxfs (installed in /sbin for the test if absent, and
# removed again), then fluxctl stat and seek on the mounted partition
# without the data directory, and a clean unmount with the daemon gone.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: mount -t needs root"; exit 77; }
command -v mount >/dev/null || { echo "SKIP: no mount(8)"; exit 77; }
HELPER=/sbin/mount.fluxfs
INSTALLED=0
# tests/ops/package.sh installs (and purges) the packaged helper at the
# same path: one at a time.
exec {HELPER_LOCK}>/run/lock/fluxfs-mount-helper.lock
flock -w 300 "$HELPER_LOCK" || { echo "FAIL: waited 300 s for the mount helper lock" >&2; exit 1; }
DAEMON=""

ctl_cleanup() {
	local rc=$? i
	trap - EXIT
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null || true
	fi
	if [ -n "$DAEMON" ]; then
		for i in $(seq 1 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$DAEMON" 2>/dev/null; then
			echo "FAIL [$TEST_NAME]: daemon $DAEMON still running after unmount" >&2
			kill -KILL "$DAEMON" 2>/dev/null || true
			rc=1
		fi
	fi
	[ $INSTALLED -eq 1 ] && rm -f "$HELPER"
	[ -n "$WORK" ] && ! is_mounted "$MNT" && rm -rf "$WORK"
	exit $rc
}

if [ -e "$HELPER" ]; then
	if ! cmp -s "$HELPER" "$top_srcdir/contrib/mount.fluxfs"; then
		echo "SKIP: another $HELPER is installed; not replacing it"
		exit 77
	fi
else
	cp "$top_srcdir/contrib/mount.fluxfs" "$HELPER" 2>/dev/null ||
		{ echo "SKIP: cannot write $HELPER"; exit 77; }
	chmod 755 "$HELPER"
	INSTALLED=1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-$TEST_NAME.XXXXXX")
DATA=$WORK/data
MNT=$WORK/mnt
mkdir -p "$DATA" "$MNT"
trap ctl_cleanup EXIT

# The helper drops what is meant for mount(8) (defaults, nofail, x-*).
FLUXFS_BIN=$FLUXFS mount -t fluxfs -o allow_other,default_permissions,defaults,nofail,x-systemd.automount,segment_bytes=4k \
	"$DATA" "$MNT" || fail "mount -t fluxfs failed"
is_mounted "$MNT" || fail "not mounted after mount -t fluxfs"
DAEMON=$(cat "$DATA/.fluxfs.lock" 2>/dev/null || true)
[ -n "$DAEMON" ] && kill -0 "$DAEMON" || fail "no daemon pid in the lock file"
line=$(grep " $MNT " /proc/self/mounts) || fail "no mount entry"
case $line in
"$DATA $MNT fuse.fluxfs "*) ;;
*) fail "mount entry: $line" ;;
esac
case $line in *allow_other*) ;; *) fail "allow_other not passed: $line" ;; esac
mount | grep -q "on $MNT type fuse.fluxfs" || fail "mount(8) does not list it"
# fake mode and a bad argument
FLUXFS_BIN=$FLUXFS "$HELPER" "$DATA" "$WORK/x" -f -o rw || fail "-f (fake) must do nothing"
rc=0; "$HELPER" "$DATA" 2>/dev/null || rc=$?
[ $rc -ne 0 ] || fail "helper accepted a missing mount point"

mkdir "$MNT/logs"
P=$MNT/logs/0
for i in $(seq 0 199); do printf 'line %03d xxxxxxxxxxxxxxxxxxxxxxxx\n' $i; done >>"$P"
sleep 1.1
T=$(date +%s%3N)
sleep 0.1
for i in $(seq 200 209); do printf 'line %03d xxxxxxxxxxxxxxxxxxxxxxxx\n' $i; done >>"$P"
L=34

# stat through the mount: every target kind.
for path in "$MNT" "$MNT/logs" "$P"; do
	"$FLUXCTL" stat "$path" --json >"$WORK/s.json" || fail "stat $path"
	python3 -c 'import json,sys
p = json.load(open(sys.argv[1]))["partitions"]
assert len(p) == 1 and p[0]["next_offset"] == 210 and p[0]["end_byte"] == 210 * 34, p
assert p[0]["segments"] >= 2 and p[0]["source"] == "mount", p' "$WORK/s.json" || fail "stat json for $path"
done
"$FLUXCTL" stat "$MNT" | grep -q "segments" || fail "stat table on the mount"

# dump/verify/repair want the data directory.
for cmd in dump verify repair; do
	rc=0; "$FLUXCTL" $cmd "$P" 2>/dev/null || rc=$?
	assert_eq 2 "$rc" "fluxctl $cmd on a mounted partition"
done

# seek through the mount (the daemon answers getxattr queries).
rc=0; out=$("$FLUXCTL" seek "$P" --offset 150 2>"$WORK/err") || rc=$?
assert_eq 0 "$rc" "seek --offset through the mount: $(cat "$WORK/err")"
assert_eq $((150 * L)) "$out" "seek --offset through the mount"
assert_eq "line 150 xxxxxxxxxxxxxxxxxxxxxxxx" "$(tail -c +$((out + 1)) "$P" | head -1)" "tail from seek"
assert_eq $((200 * L)) "$("$FLUXCTL" seek "$P" --time "$T")" "seek --time through the mount"
rc=0; "$FLUXCTL" seek "$P" --offset 210 2>/dev/null || rc=$?
assert_eq 1 "$rc" "seek past the end through the mount"
# the raw query names answer as xattr.h documents; junk is EINVAL.
assert_eq "$((150 * L))" "$(getfattr --only-values -n user.fluxfs.seek.offset.150 "$P")" "seek.offset xattr"
getfattr -n user.fluxfs.seek.offset.12x "$P" 2>&1 | grep -q "Invalid argument" ||
	fail "a malformed seek query must be EINVAL"

fusermount3 -u "$MNT" || fail "unmount"
for i in $(seq 1 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DAEMON" 2>/dev/null && fail "daemon still running after unmount"
DAEMON=""
# offline seek agrees with what the mount said.
assert_eq $((150 * L)) "$("$FLUXCTL" seek "$DATA/logs/0" --offset 150)" "offline seek"
"$FLUXCTL" verify "$DATA" >/dev/null || fail "verify after helper mount"
exit 0
