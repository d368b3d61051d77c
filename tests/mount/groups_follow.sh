#!/bin/bash
# groups_follow.sh - follow-mode consumer groups (follow=1) wait at the
# end like the follow view: a blocking read waits and is woken by an
# append, O_NONBLOCK gives EAGAIN, poll(2) wakes on append and a signal
# ends a wait; what was read is committed at the close.  And 1,000 groups
# on one partition, each reading its own share, with their lag in
# .metrics.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
echo one >>"$P"
mkdir "$MNT/.groups/live"
setfattr -n user.fluxfs.follow -v 1 "$MNT/.groups/live" || fail "set follow"
xassert "$MNT/.groups/live" follow 1 "follow option"
G="$MNT/.groups/live/t/0"

# poll(2): nothing while at the end, POLLIN within a second of an append,
# EAGAIN for a non-blocking read at the end.
python3 - "$G" "$P" <<'PY' || fail "poll on a follow-mode group file"
import os, select, sys, time
g, p = sys.argv[1], sys.argv[2]
fd = os.open(g, os.O_RDONLY | os.O_NONBLOCK)
assert os.read(fd, 4096) == b"one\n"
try:
    os.read(fd, 4096)
    sys.exit("a non-blocking read at the end did not fail")
except BlockingIOError:
    pass
po = select.poll()
po.register(fd, select.POLLIN)
if po.poll(300):
    sys.exit("poll reported data at the end")
t0 = time.time()
with open(p, "a") as w:
    w.write("two\n")
ev = po.poll(1000)
if not ev:
    sys.exit("poll did not wake on an append")
assert os.read(fd, 4096) == b"two\n"
print("woken after %.1f ms" % ((time.time() - t0) * 1000))
os.close(fd)
PY
xassert "$G" committed_offset 2 "what the poller read"

# A blocking cat waits for more, gets it, and a signal ends it; killed
# by the signal, its close commits nothing, so the next reader gets what
# it read again (at-least-once).
cat "$G" >"$WORK/out" &
CAT=$!
sleep 0.3
kill -0 "$CAT" 2>/dev/null || fail "cat of a follow-mode group did not wait at the end"
echo three >>"$P"
wait_for 3 grep -qx three "$WORK/out" || { kill "$CAT"; fail "the waiting cat was not woken"; }
kill -TERM "$CAT"
wait "$CAT" 2>/dev/null
sleep 0.3 # the kernel's close of the killed reader's file reaches the daemon
xassert "$G" committed_offset 2 "after a cat killed by a signal"
echo four >>"$P"
# A reader that ends by itself (non-blocking, to EAGAIN) commits at close.
got=$(python3 - "$G" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
out = b""
try:
    while True:
        out += os.read(fd, 4096)
except BlockingIOError:
    pass
os.close(fd)
sys.stdout.write(out.decode())
PY
)
assert_eq "three
four" "$got" "the reader after the killed one"
xassert "$G" committed_offset 4 "after a reader closed normally"


# The daemon stopped with SIGTERM: a parked follow-mode reader gets end
# of file, closes, and what it read stays committed across the remount.
echo five >>"$P"
cat "$G" >"$WORK/out2" &
CAT=$!
wait_for 3 grep -qx five "$WORK/out2" || { kill "$CAT"; fail "cat did not read 'five'"; }
sleep 0.2
kill -TERM "$FLUXFS_PID"
rc=0
wait "$CAT" || rc=$?
assert_eq 0 "$rc" "a parked follow-mode reader's status when the daemon stops"
rc=0
wait "$FLUXFS_PID" || rc=$?
assert_eq 0 "$rc" "the daemon's status after SIGTERM"
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null
mount_launch
xassert "$G" committed_offset 5 "what the reader read before the daemon stopped"

# 1,000 groups on one partition: each reads everything once, then only
# what arrives since; .metrics shows every group's lag.
seq 1 500 | sed 's/^/m/' >>"$P"
for i in $(seq 1 1000); do mkdir "$MNT/.groups/g$i" || fail "mkdir g$i"; done
assert_eq 1001 "$(ls "$MNT/.groups" | wc -l)" "groups listed"
for i in $(seq 1 1000); do
	n=$(cat "$MNT/.groups/g$i/t/0" | wc -l)
	[ "$n" -eq 505 ] || fail "group g$i read $n messages"
done
echo last >>"$P"
for i in 1 500 1000; do
	assert_eq last "$(cat "$MNT/.groups/g$i/t/0")" "group g$i after one append"
done
grep -c '^fluxfs_group_lag_messages{group="g[0-9]*",topic="t",partition="0"} 1$' "$MNT/.metrics" >"$WORK/lag1"
assert_eq 997 "$(cat "$WORK/lag1")" "groups with lag 1 in .metrics"
grep -qx 'fluxfs_group_committed_offset{group="g500",topic="t",partition="0"} 506' "$MNT/.metrics" ||
	fail "g500's committed offset in .metrics: $(grep 'group="g500"' "$MNT/.metrics")"
ls "$DATA/.groups" | grep -c '\.group$' >"$WORK/files"
assert_eq 1001 "$(cat "$WORK/files")" "group files on disk"
log "ok"
