#!/bin/bash
# kafka_bench.sh - the Kafka mirror's throughput against librdkafka's mock
# cluster (tool_kafka, in process, 3 brokers), PARTS partitions of N
# 100-byte messages each, RUNS runs (a fresh local and Kafka topic each),
# medians printed with every run's figure and the load average:
# - export, resume: one message in each partition, then mirror_to set,
#   timed until every partition is acknowledged (`fluxctl mirror-wait`):
#   the first check of the Kafka partitions' last records, and one
#   record's round trip.
# - export, steady state: on that topic, mirrored and resumed, N messages
#   appended to each partition (from a file, in large writes: tens of
#   milliseconds), timed from the first append until every partition is
#   acknowledged.
# - export from mirror_to: N messages in each partition appended first,
#   then mirror_to set, timed until acknowledged (the resume included).
# - import: a Kafka topic filled by kcat, mirror_from set, timed until
#   every partition caught up.
# The mock keeps ~5 MiB per partition: sizes stay below it.  Then the
# export's lag while one writer appends BENCH_KAFKA_BULK (default 2M)
# 100-byte messages as fast as it can (the mock drops what is past its
# 5 MiB, which does not slow the producer): the largest lag seen (sampled
# every 0.2 s) and how long the export took to catch up after the writer.
# Run from the build directory: top_builddir=. tests/bench/kafka_bench.sh
# (BENCH_KAFKA_N, BENCH_KAFKA_PARTS, BENCH_KAFKA_RUNS; BENCH_KAFKA_OPTS="-o
# kafka.X=Y" adds mount options).
set -u
: "${top_builddir:=.}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
N=${BENCH_KAFKA_N:-40000}
PARTS=${BENCH_KAFKA_PARTS:-8}
RUNS=${BENCH_KAFKA_RUNS:-5}
export TEST_TIMEOUT=900
TEST_NAME=kafka_bench
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/mount/kafka_lib.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# median of the arguments (integers)
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# row NAME UNIT FIGURES...: the median, then every run's figure
row() {
	local name=$1 unit=$2
	shift 2
	echo "$name: median $(median "$@") $unit (runs: $*)"
}

topics=(bulk:1)
for r in $(seq 1 "$RUNS"); do
	topics+=(hot$r:$PARTS cold$r:$PARTS in$r:$PARTS)
done
kafka_begin "${topics[@]}"
kafka_mount ${BENCH_KAFKA_OPTS:-}
echo "load average at start: $(load)"
# 100 bytes with the newline.
line() { printf '%s %0*d\n' "$1" $((98 - ${#1})) 0; }
base=$(line m)
yes "$base" | head -n "$N" >"$WORK/msgs" || fail "messages"
total=$((N * PARTS))
resume=() steady=() cold=() import=()

# export_new TOPIC FILE: make TOPIC with FILE in each partition, export
# it to the Kafka topic of that name, print the ms from mirror_to until
# every partition is acknowledged.
export_new() {
	local p t0 t1
	mkdir "$MNT/$1" || fail "mkdir"
	for p in $(seq 0 $((PARTS - 1))); do
		cat "$2" >"$MNT/$1/$p" || fail "append"
	done
	t0=$(now_ms)
	setfattr -n user.fluxfs.mirror_to -v "$1" "$MNT/$1" || fail "mirror_to"
	"$FLUXCTL" mirror-wait "$MNT/$1" >/dev/null || fail "export did not finish"
	t1=$(now_ms)
	echo $((t1 - t0))
}

for r in $(seq 1 "$RUNS"); do
	# The resume, and the steady state on the same topic.
	echo "$base" >"$WORK/one"
	resume+=($(export_new "hot$r" "$WORK/one"))
	t1=$(now_ms)
	for p in $(seq 0 $((PARTS - 1))); do
		cat "$WORK/msgs" >>"$MNT/hot$r/$p" || fail "append"
	done
	t2=$(now_ms)
	"$FLUXCTL" mirror-wait "$MNT/hot$r" >/dev/null || fail "export did not finish"
	t3=$(now_ms)
	steady+=($((total * 1000 / (t3 - t1 > 0 ? t3 - t1 : 1))))
	appends=$((t2 - t1))

	# Appended first, then mirrored: the resume included.
	ms=$(export_new "cold$r" "$WORK/msgs")
	cold+=($((total * 1000 / (ms > 0 ? ms : 1))))

	for p in $(seq 0 $((PARTS - 1))); do
		timeout 300 kcat -P -b "$KAFKA" -t "in$r" -p "$p" -X linger.ms=50 <"$WORK/msgs" ||
			fail "kcat produce"
	done
	mkdir "$MNT/in$r" || fail "mkdir"
	t0=$(now_ms)
	setfattr -n user.fluxfs.mirror_from -v "in$r" "$MNT/in$r" || fail "mirror_from"
	for i in $(seq 1 100); do
		[ -e "$MNT/in$r/$((PARTS - 1))" ] && break
		sleep 0.05
	done
	"$FLUXCTL" mirror-wait "$MNT/in$r" >/dev/null || fail "import did not finish"
	t1=$(now_ms)
	got=$(cat "$MNT/in$r"/* | wc -l)
	assert_eq "$total" "$got" "imported messages"
	import+=($((total * 1000 / (t1 - t0))))
	echo "run $r (load $(load)): resume ${resume[-1]} ms, steady ${steady[-1]} msg/s (appends ${appends} ms of it), from mirror_to ${cold[-1]} msg/s, import ${import[-1]} msg/s"
done
echo "$PARTS partitions, $N messages of 100 B each; load average now $(load)"
row "export, first records acknowledged after mirror_to (the resume)" ms "${resume[@]}"
row "export, steady state ($total messages appended to a resumed mirror)" msg/s "${steady[@]}"
row "export from mirror_to ($total messages appended first; the resume included)" msg/s "${cold[@]}"
row "import from mirror_from ($total records)" msg/s "${import[@]}"

BULK=${BENCH_KAFKA_BULK:-2000000}
mkdir "$MNT/bulk" || fail "mkdir"
echo x >"$MNT/bulk/0" || fail "append"
# A Kafka topic of its own: one Kafka topic is exported by one local
# topic only (EBUSY otherwise).
setfattr -n user.fluxfs.mirror_to -v bulk "$MNT/bulk" || fail "mirror_to"
"$FLUXCTL" mirror-wait "$MNT/bulk" >/dev/null || fail "first export"
t0=$(now_ms)
yes "$base" | head -n "$BULK" >>"$MNT/bulk/0" &
W=$!
max=0
while kill -0 $W 2>/dev/null; do
	lag=$(getfattr --only-values -n user.fluxfs.mirror_lag "$MNT/bulk/0" 2>/dev/null)
	[ -n "$lag" ] && [ "$lag" -gt $max ] && max=$lag
	sleep 0.2
done
wait $W || fail "bulk append"
t1=$(now_ms)
"$FLUXCTL" mirror-wait "$MNT/bulk" >/dev/null || fail "export did not catch up"
t2=$(now_ms)
echo "bulk (load $(load)): $BULK messages appended in $((t1 - t0)) ms ($((BULK * 1000 / (t1 - t0 + 1))) msg/s); export lag at most $max messages; caught up $((t2 - t1)) ms after the writer"
