#!/bin/bash
# kafka_bench.sh - the Kafka mirror's throughput against librdkafka's mock
# cluster (tool_kafka, in process, 3 brokers): export of PARTS partitions
# of N 100-byte messages each (appended first, then mirror_to set, timed
# until every partition is acknowledged), and import of the same from a
# Kafka topic filled by kcat (mirror_from set, timed until every
# partition caught up).  The mock keeps ~5 MiB per partition: sizes stay
# below it.  Prints one line per direction, messages per second.  Then the
# export's lag while one writer appends BENCH_KAFKA_BULK (default 2M)
# 100-byte messages as fast as it can (the mock drops what is past its
# 5 MiB, which does not slow the producer): the largest lag seen (sampled
# every 0.2 s) and how long the export took to catch up after the writer.
# Run from the build directory: top_builddir=. tests/bench/kafka_bench.sh
# (BENCH_KAFKA_N, BENCH_KAFKA_PARTS; BENCH_KAFKA_OPTS="-o kafka.X=Y" adds
# mount options).
set -u
: "${top_builddir:=.}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
N=${BENCH_KAFKA_N:-40000}
PARTS=${BENCH_KAFKA_PARTS:-8}
export TEST_TIMEOUT=600
TEST_NAME=kafka_bench
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/mount/kafka_lib.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
kafka_begin out:$PARTS in:$PARTS bulk:1
kafka_mount ${BENCH_KAFKA_OPTS:-}
# 100 bytes with the newline.
line() { printf '%s %0*d\n' "$1" $((98 - ${#1})) 0; }
mkdir "$MNT/out" || fail "mkdir"
base=$(line m)
for p in $(seq 0 $((PARTS - 1))); do
	yes "$base" | head -n "$N" >"$MNT/out/$p" || fail "append"
done
t0=$(now_ms)
setfattr -n user.fluxfs.mirror_to -v out "$MNT/out" || fail "mirror_to"
"$FLUXCTL" mirror-wait "$MNT/out" >/dev/null || fail "export did not finish"
t1=$(now_ms)
total=$((N * PARTS))
echo "export: $total messages of 100 B in $((t1 - t0)) ms: $((total * 1000 / (t1 - t0))) msg/s"

for p in $(seq 0 $((PARTS - 1))); do
	yes "$base" | head -n "$N" | timeout 300 kcat -P -b "$KAFKA" -t in -p "$p" -X linger.ms=50 ||
		fail "kcat produce"
done
mkdir "$MNT/in" || fail "mkdir"
t0=$(now_ms)
setfattr -n user.fluxfs.mirror_from -v in "$MNT/in" || fail "mirror_from"
for i in $(seq 1 100); do
	[ -e "$MNT/in/$((PARTS - 1))" ] && break
	sleep 0.05
done
"$FLUXCTL" mirror-wait "$MNT/in" >/dev/null || fail "import did not finish"
t1=$(now_ms)
got=$(cat "$MNT"/in/* | wc -l)
assert_eq "$total" "$got" "imported messages"
echo "import: $total messages of 100 B in $((t1 - t0)) ms: $((total * 1000 / (t1 - t0))) msg/s"

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
echo "bulk: $BULK messages appended in $((t1 - t0)) ms ($((BULK * 1000 / (t1 - t0 + 1))) msg/s); export lag at most $max messages; caught up $((t2 - t1)) ms after the writer"
