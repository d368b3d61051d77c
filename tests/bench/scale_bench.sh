#!/bin/bash
# tests/bench/scale_bench.sh - fluxfs with many partitions and a large one:
# the scale targets, measured ("make bench" runs it; by hand:
# top_builddir=BUILD bash tests/bench/scale_bench.sh).  A benchmark, not a
# test: it prints figures and fails only when something does not work.
#
#  1. SCALE_TOPICS x SCALE_PARTS partitions (default 1,000 x 100), one
#     message each, built offline by scale_mkdata.py from a partition a
#     real mount made: mount time after a clean unmount, daemon RSS idle
#     and after listing, ls -R and ls -lR; then SCALE_MOUNTS (default 5)
#     mounts, each timing the first read of 200 random partitions
#     (opened from idle), and how many mounts kept all 200 within 5 ms.
#  2. One partition of SCALE_BIG_MB (default 4096) in 256 MiB segments
#     written through the mount: mount time after a clean unmount, the
#     first stat and first read; then SCALE_TAIL_MB appended with
#     flush_ms=-1, SIGKILL, and the first read after the remount (the
#     recovery of the unflushed tail).
#  3. 8 writers appending 100-byte lines round-robin (open/write/close
#     each) over SCALE_RR_PARTS partitions (default 10,000) against the
#     same work on 8 partitions, after one untimed append to each
#     partition (the steady state; the open-file limit raised to 65,536
#     when allowed, so the default budget holds them all), and with
#     fd_budget=SCALE_RR_SMALL_BUDGET (default 3,000: a third of the
#     partitions fit) to show what thrashing costs.  SCALE_RR_ROUNDS
#     (default 1) rounds of [8, N] run interleaved and the ratio is of the
#     medians; SCALE_RR_THRASH_LINES=0 leaves the thrashing run out;
#     SCALE_RR_OPTS adds mount options (e.g. flush_ms=-1) to every run.
# SCALE_SECTIONS (default 1,2,3) picks the sections to run, e.g.
# SCALE_SECTIONS=3 for the round robin alone.
# Everything lives in a temporary directory under $BENCH_DIR (default
# /var/tmp), removed at the end; the trap unmounts and waits for the
# daemon whatever happens.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
FLUXFS="${FLUXFS:-$top_builddir/src/fluxfs}"
FSBENCH="$top_builddir/tests/bench/fsbench"
MKDATA="$top_srcdir/tests/bench/scale_mkdata.py"
TOPICS=${SCALE_TOPICS:-1000}
PARTS=${SCALE_PARTS:-100}
BIG_MB=${SCALE_BIG_MB:-4096}
TAIL_MB=${SCALE_TAIL_MB:-64}
RR_LINES=${SCALE_RR_LINES:-100000}
RR_SMALL=${SCALE_RR_SMALL_BUDGET:-3000}
RR_THRASH_LINES=${SCALE_RR_THRASH_LINES:-5000}
RR_ROUNDS=${SCALE_RR_ROUNDS:-1}
MOUNTS=${SCALE_MOUNTS:-5}
RR_OPTS=${SCALE_RR_OPTS:+-o $SCALE_RR_OPTS}
SECTIONS=${SCALE_SECTIONS:-1,2,3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}

W=$(mktemp -d "$BENCH_DIR/fluxfs-scale.XXXXXX") || exit 1
MNT="$W/mnt"
mkdir -p "$MNT"
PID=""

stop() {
	[ -n "$PID" ] || return 0
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	wait "$PID" 2>/dev/null
	PID=""
}
cleanup() {
	stop
	# Never remove through a live mount.
	mounted || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
want() { case ",$SECTIONS," in *",$1,"*) return 0 ;; esac; return 1; }

die() {
	echo "scale_bench: $*" >&2
	[ -f "$W/daemon.log" ] && tail -5 "$W/daemon.log" >&2
	exit 1
}
ms() { echo $(($(date +%s%N) / 1000000)); }
mounted() { grep -qs " $MNT fuse" /proc/mounts; }
# start DATA [options]: mount, and set MOUNT_MS to the time from launch
# until the mount is live.
start() {
	local data=$1 t0 i
	shift
	t0=$(date +%s%N)
	"$FLUXFS" -f "$@" "$data" "$MNT" >>"$W/daemon.log" 2>&1 &
	PID=$!
	for i in $(seq 1 20000); do
		mounted && break
		kill -0 "$PID" 2>/dev/null || die "daemon exited at mount"
	done
	mounted || die "mount not live"
	MOUNT_MS=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
}
rss() { awk '/^VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status"; }
timed() { # timed CMD...: seconds CMD took, to 3 places
	local t0=$(date +%s%N)
	"$@" >/dev/null || die "'$*' failed"
	awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

echo "== machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== disk: $(df -h "$BENCH_DIR" | awk 'NR == 2 { print $4 " free of " $2 " on " $6 }')"
# 10,000 open partitions hold 30,000 descriptors: the default budget
# (half the limit) must have room for them.  Root may raise the hard
# limit; otherwise the round-robin run shows the budget's thrashing.
ulimit -Hn 65536 2>/dev/null && ulimit -Sn 65536 2>/dev/null
echo "== open-file limit: soft $(ulimit -Sn), hard $(ulimit -Hn)"
# Partitions the default budget (half the limit) holds open at once, at
# 3 descriptors each: the round-robin run uses 10,000 if they fit, else
# 90% of what fits, and shows 10,000 thrashing as well.
FIT=$(($(ulimit -Sn) / 2 / 3))
if [ "$FIT" -ge 10000 ]; then
	RR_PARTS=${SCALE_RR_PARTS:-10000}
else
	RR_PARTS=${SCALE_RR_PARTS:-$((FIT * 9 / 10 / 100 * 100))}
fi

# ---- 1. many small partitions ----------------------------------------
if want 1; then
	mkdir "$W/tmpl"
	start "$W/tmpl"
	mkdir "$MNT/t" && echo '{"msg":"one message"}' >"$MNT/t/0" || die "template"
	stop
	t=$(timed python3 "$MKDATA" "$W/tmpl" "$W/many" "$TOPICS" "$PARTS") || exit 1
	echo "== $((TOPICS * PARTS)) partitions in $TOPICS topics built offline in $t s"
	start "$W/many" # the first mount reads the directories into the cache
	stop
	start "$W/many"
	echo "mount after a clean unmount: $MOUNT_MS ms; RSS idle $(rss)"
	n=$(ls -R "$MNT" | grep -c '^[0-9]')
	[ "$n" -eq $((TOPICS * PARTS)) ] || die "ls -R listed $n partitions"
	echo "ls -R: $(timed ls -R "$MNT") s (again: $(timed ls -R "$MNT") s); RSS $(rss)"
	echo "ls -lR: $(timed ls -lR "$MNT") s; RSS $(rss)"
	echo "open partitions after listing: $(awk '$1 == "fluxfs_open_partitions" { print $2 }' "$MNT/.metrics")"
	stop
	# The first reads: SCALE_MOUNTS mounts, each reading 200 random
	# partitions (another seed each mount) opened from idle, nothing
	# listed or read before in that mount.
	maxes=""
	for m in $(seq 1 "$MOUNTS"); do
		start "$W/many"
		r=$(python3 - "$MNT" "$TOPICS" "$PARTS" "$m" <<'EOF'
import os, random, sys, time
mnt, topics, parts, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
random.seed(seed)
ts = []
for _ in range(200):
    p = "%s/topic%04d/%d" % (mnt, random.randrange(topics), random.randrange(parts))
    t0 = time.perf_counter()
    with open(p, "rb") as f:
        data = f.read()
    ts.append((time.perf_counter() - t0) * 1000)
    assert data == b'{"msg":"one message"}\n', (p, data)
ts.sort()
print("median %.2f ms, p99 %.2f ms, max %.2f ms" % (ts[100], ts[197], ts[-1]))
EOF
		) || die "first reads"
		echo "first read of a partition, mount $m (200 random): $r; load $(cut -d' ' -f1 /proc/loadavg)"
		maxes="$maxes ${r##*max }"
		[ "$m" -eq "$MOUNTS" ] && echo "RSS after 200 reads: $(rss)"
		stop
	done
	echo "$maxes" | tr ' ' '\n' | grep '[0-9]' | sort -n | awk '
		{ v[NR] = $1 + 0; if ($1 + 0 <= 5) ok++ }
		END { printf "first read: the slowest of 200 within 5 ms in %d of %d mounts (median of the maxima %.2f ms)\n", ok, NR, v[int((NR + 1) / 2)] }'
fi

# ---- 2. one large partition -----------------------------------------
if want 2; then
	# endread FILE WHAT: time the first stat, and the open and read of the
	# last 100 bytes, in-process.
	endread() {
		python3 - "$1" "$2" <<'EOF'
import os, sys, time
path, what = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
size = os.stat(path).st_size
t1 = time.perf_counter()
with open(path, "rb") as f:
    f.seek(size - 100)
    assert len(f.read()) == 100
t2 = time.perf_counter()
print("%s stat: %.2f ms (size %d); open and read of the end: %.2f ms"
      % (what, (t1 - t0) * 1000, size, (t2 - t1) * 1000))
EOF
	}
	mkdir "$W/big"
	start "$W/big" -o segment_bytes=256M
	mkdir "$MNT/big" || die "mkdir big"
	r=$("$FSBENCH" bulk "$MNT/big/0" "$BIG_MB") || die "bulk write"
	echo "== one partition of $BIG_MB MiB in 256 MiB segments written ($r)"
	stop
	start "$W/big"
	echo "mount after a clean unmount: $MOUNT_MS ms"
	endread "$MNT/big/0" "first" || die "first stat and read"
	stop
	start "$W/big" -o flush_ms=-1
	"$FSBENCH" bulk "$MNT/big/0" "$TAIL_MB" >/dev/null || die "tail write"
	kill -KILL "$PID"
	wait "$PID" 2>/dev/null
	PID=""
	fusermount3 -uz "$MNT"
	start "$W/big"
	echo "after SIGKILL with $TAIL_MB MiB unflushed: mount $MOUNT_MS ms"
	endread "$MNT/big/0" "after SIGKILL, first (recovering the tail)" || die "read after kill"
	stop
	rm -rf "$W/big"
fi

# ---- 3. round-robin appends -----------------------------------------
want 3 || exit 0
rr() { # rr DATA NAME PARTITIONS LINES [options]: APS of the measured run
	local data=$1 name=$2 np=$3 lines=$4 topics parts r
	shift 4
	if [ "$np" -ge 100 ]; then
		topics=$((np / 100)) parts=100
	else
		topics=1 parts=$np
	fi
	start "$data" $RR_OPTS "$@"
	# Create every partition first (creation fsyncs), untimed.
	[ -d "$MNT/rr0000" ] || "$FSBENCH" rr "$MNT" $topics $parts 8 $np >/dev/null || die "rr create"
	# One append to each partition, untimed: the measured run is the
	# steady state a long-running producer sees, every partition opened
	# once since the mount (the first opens are section 1's subject).
	"$FSBENCH" rr "$MNT" $topics $parts 8 $np >/dev/null || die "rr warm-up"
	r=$("$FSBENCH" rr "$MNT" $topics $parts 8 "$lines") || die "rr $name"
	echo "$name: $r; $(awk '$1 == "fluxfs_idle_closes_total" { print "idle closes " $2 }' "$MNT/.metrics"), load $(cut -d' ' -f1 /proc/loadavg)"
	stop
	APS=$(echo "$r" | sed 's/aps=\([0-9]*\).*/\1/')
}
# Rounds of [8, N] interleaved: the 8-partition run lasts about a second
# and its rate swings by half from one run to the next on a shared
# machine, so the ratio is taken of the medians.
mkdir "$W/rr8" "$W/rrN"
echo "== $RR_LINES appends (open/write/close) by 8 writers, $RR_ROUNDS round(s), load $(cut -d' ' -f1 /proc/loadavg)"
a8s="" aNs=""
for round in $(seq 1 "$RR_ROUNDS"); do
	rr "$W/rr8" "8 partitions" 8 "$RR_LINES"
	a8s="$a8s $APS"
	rr "$W/rrN" "$RR_PARTS partitions" "$RR_PARTS" "$RR_LINES"
	aNs="$aNs $APS"
done
median() { echo "$@" | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
a8=$(median $a8s)
aN=$(median $aNs)
awk -v a="$a8" -v b="$aN" -v n="$RR_PARTS" -v r="$RR_ROUNDS" 'BEGIN {
	printf "round robin: %d partitions %.2fx of 8 partitions (medians of %d: %d and %d appends/s)\n", n, b / a, r, b, a }'
# Past the budget every append closes an idle partition, and a close
# flushes: fewer lines, or this runs for minutes.
if [ "$RR_THRASH_LINES" -gt 0 ]; then
	if [ "$RR_PARTS" -lt 10000 ]; then
		mkdir "$W/rr10k"
		rr "$W/rr10k" "10000 partitions (more than the default budget holds)" 10000 "$RR_THRASH_LINES"
		what="10000 partitions past the budget"
	else
		rr "$W/rrN" "$RR_PARTS partitions, fd_budget=$RR_SMALL" "$RR_PARTS" "$RR_THRASH_LINES" -o fd_budget=$RR_SMALL
		what="fd_budget=$RR_SMALL"
	fi
	awk -v a="$a8" -v c="$APS" -v w="$what" 'BEGIN { printf "round robin: %s %.3fx of 8 partitions\n", w, c / a }'
fi
echo "== load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
