#!/bin/bash
# tests/bench/groups.sh - consumer groups: reading a partition through a
# group view (MNT/.groups/G/T/P, direct I/O from the committed position)
# beside reading the partition file itself, and what a commit costs (a
# close that commits, an fsync).  "make bench" runs it after run.sh; by
# hand: top_builddir=BUILD bash tests/bench/groups.sh
#
# Environment: BENCH_DIR=/var/tmp BENCH_REPS=5 BENCH_SIZE_MB=1024 [256]
# BENCH_COMMITS=500 [200]  (BENCH_QUICK=1 for the bracketed sizes)
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
FSBENCH="$top_builddir/tests/bench/fsbench"
FLUXFS="${FLUXFS:-$top_builddir/src/fluxfs}"
q=${BENCH_QUICK:-0}
SIZE_MB=${BENCH_SIZE_MB:-$([ "$q" != 0 ] && echo 256 || echo 1024)}
COMMITS=${BENCH_COMMITS:-$([ "$q" != 0 ] && echo 200 || echo 500)}
REPS=${BENCH_REPS:-5}
[ -c /dev/fuse ] || { echo "bench: /dev/fuse is absent" >&2; exit 77; }
for p in "$FSBENCH" "$FLUXFS"; do
	[ -x "$p" ] || { echo "bench: '$p' is not built" >&2; exit 1; }
done
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/fluxfs-bench-groups.XXXXXX") || exit 1
MNT="$WORK/mnt"
mkdir -p "$MNT" "$WORK/data"
"$FLUXFS" -f "$WORK/data" "$MNT" >>"$WORK/flux.log" 2>&1 &
PID=$!
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null
	wait "$PID"
	local rc=$?
	[ $rc = 0 ] || { echo "bench: fluxfs exited with $rc" >&2; cat "$WORK/flux.log" >&2; }
	rm -rf "$WORK"
}
trap cleanup EXIT
for i in $(seq 1 100); do grep -qs " $MNT " /proc/mounts && break; sleep 0.1; done
mkdir "$MNT/t" "$MNT/.groups/bench" || exit 1
CAN_DROP=0
[ -w /proc/sys/vm/drop_caches ] && CAN_DROP=1
drop() { [ $CAN_DROP = 1 ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }; }
mbps() { "$FSBENCH" seqread "$1" | sed -n 's/^mbps=\([0-9.]*\) .*/\1/p'; }
: >"$WORK/pf"; : >"$WORK/gf"; : >"$WORK/pw"; : >"$WORK/pc"; : >"$WORK/gc"
for ((r = 0; r < REPS; r++)); do
	P="$MNT/t/$r"
	G="$MNT/.groups/bench/t/$r"
	"$FSBENCH" bulk "$P" "$SIZE_MB" >/dev/null || exit 1
	# Right after the append: the segments are in the page cache, the
	# partition file's own FUSE pages are not (appends went direct).
	# Alternate which goes first.
	if [ $((r % 2)) = 0 ]; then
		mbps "$P" >>"$WORK/pf"
		mbps "$G" >>"$WORK/gf"
	else
		mbps "$G" >>"$WORK/gf"
		mbps "$P" >>"$WORK/pf"
	fi
	mbps "$P" >>"$WORK/pw" # now the partition file's pages are cached too
	drop
	mbps "$P" >>"$WORK/pc"
	setfattr -n user.fluxfs.reset -v earliest "$G"
	drop
	mbps "$G" >>"$WORK/gc"
	rm "$P"
done
P="$MNT/t/c"
G="$MNT/.groups/bench/t/c"
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Commit cost: one message appended, then (a) open, read it, close on the
# partition file (no commit) and on the group file (the close commits);
# (b) on a group file held open, read it and fsync (an explicit commit).
touch "$P"
python3 - "$P" "$G" "$COMMITS" >"$WORK/commit" <<'PY'
import os, sys, time
p, g, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = os.open(p, os.O_WRONLY | os.O_APPEND)
def cycle(path):
    os.write(w, b"m\n")
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    if path == p:
        os.lseek(fd, -2, os.SEEK_END)
    os.read(fd, 65536)
    os.close(fd)
    return time.perf_counter() - t0
os.setxattr(g, "user.fluxfs.reset", b"latest")
part = sorted(cycle(p) for _ in range(n))[n // 2]
grp = sorted(cycle(g) for _ in range(n))[n // 2]
fd = os.open(g, os.O_RDONLY)
fs = []
for _ in range(n):
    os.write(w, b"m\n")
    os.read(fd, 65536)
    t0 = time.perf_counter()
    os.fsync(fd)
    fs.append(time.perf_counter() - t0)
os.close(fd)
fs.sort()
print("%.1f %.1f %.1f" % (part * 1e6, grp * 1e6, fs[n // 2] * 1e6))
PY
read -r c_part c_grp c_fsync <"$WORK/commit"
pf=$(median "$WORK/pf"); gf=$(median "$WORK/gf"); pw=$(median "$WORK/pw")
pc=$(median "$WORK/pc"); gc=$(median "$WORK/gc")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
fstype=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
echo
echo "consumer groups: $SIZE_MB MiB of 100-byte lines, medians of $REPS runs;" \
	"nproc $(nproc), Linux $(uname -r), data on $fstype," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "| %-58s | %12s | %12s | %8s |\n" workload "partition" "group view" "group/part"
echo "|------------------------------------------------------------|--------------|--------------|----------|"
printf "| %-58s | %12s | %12s | %8s |\n" "first read after the append, 1 MiB read()s (MB/s)" "$pf" "$gf" "$(ratio "$gf" "$pf")"
printf "| %-58s | %12s | %12s | %8s |\n" "read again: partition pages cached, group view direct (MB/s)" "$pw" "$gf" "$(ratio "$gf" "$pw")"
if [ $CAN_DROP = 1 ]; then
	printf "| %-58s | %12s | %12s | %8s |\n" "sequential read, caches dropped first (MB/s)" "$pc" "$gc" "$(ratio "$gc" "$pc")"
fi
printf "| %-58s | %12s | %12s | %8s |\n" "open, read 1 new message, close (us; group: close commits)" "$c_part" "$c_grp" "$(ratio "$c_grp" "$c_part")"
printf "| %-58s | %12s | %12s | %8s |\n" "fsync of an open group file after 1 message (us)" "-" "$c_fsync" "-"
