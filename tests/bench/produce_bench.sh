#!/bin/bash
# produce_bench.sh - bulk keyed produce through MNT/.produce/<topic> (1 MiB
# write()s of 100-byte keyed lines, 1000 keys over 8 partitions) against
# bulk append of the same lines to one partition file, on one fluxfs
# mount; medians of BENCH_REPS runs (default 5) of BENCH_MB MiB (default
# 256), the two alternating, every file removed between runs.  Not a
# test: run it by hand (or through make bench) on a quiet machine, and
# quote the load average it prints.  Run it from the build directory, or
# set top_builddir.
set -u
: "${top_builddir:=$PWD}"
export top_builddir
TEST_TIMEOUT=3000
. "$(dirname "$0")/../mount/lib.sh"
FSBENCH="$top_builddir/tests/bench/fsbench"
MB=${BENCH_MB:-256}
REPS=${BENCH_REPS:-5}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

mount_start
for ((r = 0; r < REPS; r++)); do
	mkdir "$MNT/a" "$MNT/b" || fail "mkdir"
	setfattr -n user.fluxfs.partitions -v 8 "$MNT/b" || fail "partitions"
	"$FSBENCH" keyed "$MNT/a/0" "$MB" | field mbps >>"$WORK/one" ||
		fail "append to one partition"
	"$FSBENCH" keyed "$MNT/.produce/b" "$MB" | field mbps >>"$WORK/keyed" ||
		fail "keyed produce"
	sz=$(cat "$MNT"/b/* | wc -c)
	[ "$sz" -eq $((MB << 20)) ] || fail "keyed produce stored $sz bytes"
	rm -r "$MNT/a" "$MNT/b" || fail "rm"
	sync
done
one=$(median <"$WORK/one")
keyed=$(median <"$WORK/keyed")
echo "fluxfs keyed produce vs one partition: $MB MiB, 100-byte lines, medians of $REPS"
echo "machine: nproc $(nproc), Linux $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| workload | MB/s | runs |"
echo "|---|---|---|"
echo "| bulk append to one partition file, 1 MiB write()s | $one | $(tr '\n' ' ' <"$WORK/one")|"
echo "| bulk keyed produce to .produce/ over 8 partitions, 1 MiB write()s | $keyed | $(tr '\n' ' ' <"$WORK/keyed")|"
awk -v k="$keyed" -v o="$one" 'BEGIN { printf "keyed / one partition: %.2fx\n", k / o }'
