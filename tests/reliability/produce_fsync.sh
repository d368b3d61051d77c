#!/bin/bash
# produce_fsync.sh - fsync(2) on a MNT/.produce/<topic> handle makes
# everything the handle wrote durable on every partition it touched.
#
# The daemon runs on crashsim (fault-injection builds only; exit 77
# otherwise) in drop mode with flush_ms=-1, so nothing is synced unless
# asked: one handle writes 600 keyed lines over 6 partitions, fsyncs,
# writes 300 more and closes; the power is cut (SIGUSR2).  After a plain
# remount every fsynced line must be in its key's partition, and none of
# the later ones may be (they were never synced: that shows the cut
# really dropped what no fsync covered).
. "$(dirname "$0")/rel.sh"
HERE=$(cd "$(dirname "$0")/../mount" && pwd)

mount_start -o flush_ms=-1
mkdir "$MNT/t" || fail "mkdir"
setfattr -n user.fluxfs.partitions -v 6 "$MNT/t" || fail "partitions"
daemon_stop_any || fail "clean unmount"

need_crashsim

export FLUXFS_CRASHSIM=1 FLUXFS_CRASHSIM_MODE=drop FLUXFS_CRASHSIM_SEED=1
mount_launch
unset FLUXFS_CRASHSIM FLUXFS_CRASHSIM_MODE FLUXFS_CRASHSIM_SEED
python3 - "$MNT/.produce/t" <<'EOF' || fail "writer"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"".join(b"key%d\tsynced %d\n" % (i % 50, i) for i in range(600)))
os.fsync(fd)
os.write(fd, b"".join(b"key%d\tunsynced %d\n" % (i % 50, i) for i in range(300)))
os.close(fd)
EOF
kill -USR2 "$FLUXFS_PID" || fail "cannot signal the daemon"
for i in $(seq 1 100); do
	kill -0 "$FLUXFS_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$FLUXFS_PID" 2>/dev/null && fail "daemon still running 10 s after the cut"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -uz "$MNT" 2>/dev/null
mount_launch
python3 - "$MNT/t" "$HERE" <<'EOF' || fail "fsynced lines lost, or unsynced ones kept"
import os, sys
sys.path.insert(0, sys.argv[2])
from murmur2_partition import partition
synced, unsynced, touched = set(), 0, 0
for p in range(6):
    data = open(os.path.join(sys.argv[1], str(p)), "rb").read()
    touched += bool(data)
    for line in data.split(b"\n"):
        key, _, val = line.partition(b"\t")
        if val.startswith(b"synced"):
            assert partition(key, 6) == p, "%r in %d" % (line, p)
            synced.add(int(val.split()[1]))
        elif val.startswith(b"unsynced"):
            unsynced += 1
assert touched == 6, "only %d partitions hold data" % touched
assert synced == set(range(600)), "%d fsynced lines lost" % (600 - len(synced))
assert unsynced == 0, "%d unsynced lines survived the cut" % unsynced
EOF
log "ok"
