#!/bin/bash
# ctl_fuse_data.sh - a data directory may live on a FUSE filesystem that
# is not fluxfs (here bindfs, from Debian): fluxctl verify, stat and
# repair accept it.  What fluxctl refuses is a directory a live fluxfs
# serves: the mount itself (verify wants the data directory) and, for
# repair, the data directory of a running daemon -- also seen through
# bindfs, which does not pass flock through.
. "$(dirname "$0")/lib.sh"

command -v bindfs >/dev/null || { echo "SKIP: bindfs needed (contrib/deps.sh installs it)"; exit 77; }
mount_start
BIND=""
# bindfs is ours to unmount too, before the harness checks the daemon.
trap 'rc=$?; [ -n "$BIND" ] && fusermount3 -u "$BIND" 2>/dev/null; (exit $rc); harness_cleanup' EXIT
mkdir "$MNT/orders"
for i in $(seq 0 99); do echo "message $i"; done >>"$MNT/orders/0"
mount_stop || fail "unmount"

BIND=$WORK/bind
mkdir "$BIND"
bindfs "$DATA" "$BIND" || fail "bindfs"
assert_eq fuseblk "$(stat -f -c %T "$BIND")" "bindfs is a FUSE filesystem"

rc=0; "$FLUXCTL" verify "$BIND" >"$WORK/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "verify of a data directory on bindfs: $(cat "$WORK/out")"
grep -q "^orders/0: ok" "$WORK/out" || fail "verify output: $(cat "$WORK/out")"
rc=0; "$FLUXCTL" stat "$BIND/orders/0" >"$WORK/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "stat of a partition on bindfs: $(cat "$WORK/out")"
rc=0; "$FLUXCTL" repair "$BIND" >"$WORK/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "repair of an offline data directory on bindfs: $(cat "$WORK/out")"

# A live daemon serves DATA: its mount is refused as a data directory,
# and repair through bindfs is refused, naming the daemon.
mount_launch
rc=0; "$FLUXCTL" verify "$MNT" >"$WORK/out" 2>&1 || rc=$?
assert_eq 2 "$rc" "verify of the fluxfs mount"
grep -q "is on a fluxfs mount" "$WORK/out" || fail "refusal: $(cat "$WORK/out")"
rc=0; "$FLUXCTL" repair "$BIND" >"$WORK/out" 2>&1 || rc=$?
assert_eq 2 "$rc" "repair through bindfs while served: $(cat "$WORK/out")"
grep -q "pid $FLUXFS_PID" "$WORK/out" || fail "refusal does not name pid $FLUXFS_PID: $(cat "$WORK/out")"
rc=0; "$FLUXCTL" repair "$DATA" >"$WORK/out" 2>&1 || rc=$?
assert_eq 2 "$rc" "repair of the served data directory"
exit 0
