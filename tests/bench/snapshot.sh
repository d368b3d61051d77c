#!/bin/bash
# tests/bench/snapshot.sh - what a consistent snapshot costs: mkdir of
# MNT/.snapshot/<name> over BENCH_SNAP_PARTITIONS partitions (idle after
# a remount; open with appends not yet flushed, which the snapshot makes
# durable; open and flushed), rmdir, the bytes it adds to the data
# directory (no copy of data: one .snap file), and one write() per line
# appended with snapshots taken every 100 ms beside none (the cut lock's
# cost to appends under contention).  "make bench" runs it; by hand:
# top_builddir=BUILD bash tests/bench/snapshot.sh
#
# Environment: BENCH_DIR=/var/tmp BENCH_SNAP_PARTITIONS=1000
# BENCH_SNAP_REPS=11 [5] BENCH_LINES=200000 [50000] (BENCH_QUICK=1 for
# the bracketed sizes)
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
FSBENCH="$top_builddir/tests/bench/fsbench"
FLUXFS="${FLUXFS:-$top_builddir/src/fluxfs}"
q=${BENCH_QUICK:-0}
NPART=${BENCH_SNAP_PARTITIONS:-1000}
REPS=${BENCH_SNAP_REPS:-$([ "$q" != 0 ] && echo 5 || echo 11)}
LINES=${BENCH_LINES:-$([ "$q" != 0 ] && echo 50000 || echo 200000)}
[ -c /dev/fuse ] || { echo "bench: /dev/fuse is absent" >&2; exit 77; }
for p in "$FSBENCH" "$FLUXFS"; do
	[ -x "$p" ] || { echo "bench: '$p' is not built" >&2; exit 1; }
done
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/fluxfs-bench-snap.XXXXXX") || exit 1
MNT="$WORK/mnt"
DATA="$WORK/data"
mkdir -p "$MNT" "$DATA"
PID=""
start() {
	"$FLUXFS" -f "$DATA" "$MNT" >>"$WORK/flux.log" 2>&1 &
	PID=$!
	for i in $(seq 1 100); do grep -qs " $MNT " /proc/mounts && return 0; sleep 0.1; done
	echo "bench: mount not live" >&2
	exit 1
}
stop() {
	[ -n "$PID" ] || return 0
	fusermount3 -u "$MNT" 2>/dev/null
	wait "$PID"
	local rc=$?
	PID=""
	[ $rc = 0 ] || { echo "bench: fluxfs exited with $rc" >&2; cat "$WORK/flux.log" >&2; }
}
cleanup() {
	stop
	rm -rf "$WORK"
}
trap cleanup EXIT

# snap_times TAG [SETUP]: REPS mkdirs (each after running SETUP, untimed)
# and rmdirs; prints "mkdir_ms_median mkdir_ms_max rmdir_ms_median".
snap_times() {
	python3 - "$MNT" "$REPS" "$1" "${2:-}" <<'EOF'
import os, subprocess, sys, time
mnt, reps, tag, setup = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
mk, rm = [], []
for r in range(reps):
    if setup:
        subprocess.run(["bash", "-c", setup], check=True)
    d = os.path.join(mnt, ".snapshot", "%s%d" % (tag, r))
    t = time.perf_counter(); os.mkdir(d); mk.append(time.perf_counter() - t)
for r in range(reps):
    d = os.path.join(mnt, ".snapshot", "%s%d" % (tag, r))
    t = time.perf_counter(); os.rmdir(d); rm.append(time.perf_counter() - t)
mk.sort(); rm.sort()
print("%.2f %.2f %.2f" % (mk[len(mk) // 2] * 1e3, mk[-1] * 1e3, rm[len(rm) // 2] * 1e3))
EOF
}

start
"$FSBENCH" populate "$MNT" "$NPART" >/dev/null || exit 1
stop
start # every partition idle, as after a clean mount
read -r idle_med idle_max idle_rm < <(snap_times idle)
mkdir "$MNT/.snapshot/size" || exit 1
snap_bytes=$(stat -c %s "$DATA/.snapshots/size.snap")
data_bytes=$(du -sb "$DATA" --exclude=.snapshots | cut -f1)
rmdir "$MNT/.snapshot/size"
# One line appended to every partition before each snapshot: all open,
# each with an append the snapshot must make durable.
append_all='for d in "$0"/*/; do for p in "$d"*; do echo x >>"$p"; done; done'
read -r dirty_med dirty_max dirty_rm < <(snap_times dirty "${append_all/\$0/$MNT}")
sync
sleep 1.5 # flush_ms: every append flushed
read -r open_med open_max open_rm < <(snap_times open)

# One write() per line, with and without snapshots every 100 ms, twice
# each, alternating.
mkdir "$MNT/w"
lines_rate() {
	"$FSBENCH" lines "$MNT/w/$1" "$LINES" | sed -n 's/.*lps=\([0-9.]*\).*/\1/p'
}
: >"$WORK/none"; : >"$WORK/with"
for r in 1 2; do
	lines_rate "n$r" >>"$WORK/none"
	(i=0; while [ ! -e "$WORK/stopsnap" ]; do
		mkdir "$MNT/.snapshot/w$i" && rmdir "$MNT/.snapshot/w$i"
		i=$((i + 1)); sleep 0.1; done) &
	SP=$!
	lines_rate "s$r" >>"$WORK/with"
	touch "$WORK/stopsnap"; wait $SP; rm -f "$WORK/stopsnap"
done
none=$(sort -n "$WORK/none" | tail -1)
with=$(sort -n "$WORK/with" | tail -1)

echo
echo "snapshots over $NPART partitions (median of $REPS, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-52s %10s %10s %10s\n' "" "mkdir ms" "max ms" "rmdir ms"
printf '%-52s %10s %10s %10s\n' "idle partitions (after a clean mount)" "$idle_med" "$idle_max" "$idle_rm"
printf '%-52s %10s %10s %10s\n' "open, one unflushed append each" "$dirty_med" "$dirty_max" "$dirty_rm"
printf '%-52s %10s %10s %10s\n' "open, flushed" "$open_med" "$open_max" "$open_rm"
printf '%-52s %10s\n' "bytes a snapshot adds to the data directory" "$snap_bytes"
printf '%-52s %10s\n' "bytes of the partitions it shows (du -sb, no copy)" "$data_bytes"
printf '%-52s %10s\n' "one write() per line, msg/s, no snapshots" "$none"
printf '%-52s %10s\n' "one write() per line, msg/s, a snapshot every 100 ms" "$with"
