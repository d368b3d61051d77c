#!/bin/bash
# tests/bench/durable.sh - the durable table of "make bench": writes that
# wait for stable storage, on fluxfs beside a plain file doing the same
# system calls in the same run (and Redis Streams with appendfsync always
# where redis-server is installed).  The lines rows also run the two-file
# bound: what a fluxfs partition asks of the disk, without FUSE (each
# line and a 48-byte index entry appended to two plain files, the two
# fdatasyncs side by side, as the daemon syncs a segment's .log and .idx),
# so fluxfs's ratio can be read against what its design allows.  By hand:
# top_builddir=BUILD bash tests/bench/durable.sh
#
# Rows (tests/bench/durbench does the work and checks every call):
#   bulk: 1 MiB write()s, fsync() after each (MB/s)
#   lines: one 100-byte line + fdatasync() per write, 1, 8 and 64 writers
#     on one file/partition, 64 writers on 64 (lines/s, p50/p99/p999 of
#     write+fdatasync); Redis: XADD of 90 bytes per request, one connection
#     per writer, one stream (64 streams for the last row); two files:
#     durbench lines ... pair on the plain filesystem (PATH and PATH.idx,
#     or wI and wI.idx)
#   flush_ms=0: 64 writers on one partition of a flush_ms=0 topic, no
#     fsync calls (each write returns once durable); the plain file gets
#     the same write()s, which are not durable
# Each cell is the median of BENCH_DURABLE_REPS (3) runs of
# BENCH_DURABLE_SECS (3) seconds; targets take turns within a repetition.
# BENCH_QUICK=1: 1 repetition of 1 s, 16 MiB of bulk.
# The trap unmounts fluxfs and stops redis-server, whatever happens.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
DURBENCH="$top_builddir/tests/bench/durbench"
FLUXFS="${FLUXFS:-$top_builddir/src/fluxfs}"

if [ "${BENCH_QUICK:-0}" != 0 ]; then
	REPS=${BENCH_DURABLE_REPS:-1}
	SECS=${BENCH_DURABLE_SECS:-1}
	MB=${BENCH_DURABLE_MB:-16}
else
	REPS=${BENCH_DURABLE_REPS:-3}
	SECS=${BENCH_DURABLE_SECS:-3}
	MB=${BENCH_DURABLE_MB:-128}
fi

if [ ! -c /dev/fuse ]; then
	echo "durable bench: /dev/fuse is absent; nothing to measure" >&2
	exit 77
fi
for prog in "$DURBENCH" "$FLUXFS"; do
	[ -x "$prog" ] || { echo "durable bench: '$prog' is not built" >&2; exit 1; }
done

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/fluxfs-durable.XXXXXX") || exit 1
RES="$WORK/res"
MNT="$WORK/mnt"
mkdir -p "$RES" "$MNT" "$WORK/data" "$WORK/plain" "$WORK/pair" "$WORK/redis"
FLUX_PID=""
REDIS_PID=""
FAILED=0

cleanup() {
	local rc=$? i status=0
	trap - EXIT INT TERM
	if [ -n "$REDIS_PID" ]; then
		kill -TERM "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
	fi
	if [ -n "$FLUX_PID" ]; then
		for i in $(seq 1 50); do
			mountpoint -q "$MNT" || break
			fusermount3 -u "$MNT" 2>/dev/null && break
			sleep 0.1
		done
		for i in $(seq 1 100); do
			kill -0 "$FLUX_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$FLUX_PID" 2>/dev/null; then
			echo "durable bench: fluxfs did not exit; killing it" >&2
			kill -KILL "$FLUX_PID" 2>/dev/null
			fusermount3 -uz "$MNT" 2>/dev/null
		fi
		wait "$FLUX_PID" 2>/dev/null || status=$?
		if [ $status -ne 0 ]; then
			echo "durable bench: fluxfs exited with $status:" >&2
			tail -n 30 "$WORK/flux.log" >&2
			FAILED=1
		fi
	fi
	[ $rc -eq 0 ] && rc=$FAILED
	if mountpoint -q "$MNT"; then
		echo "durable bench: $MNT is still mounted; left $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$FLUXFS" -f "$WORK/data" "$MNT" >>"$WORK/flux.log" 2>&1 &
FLUX_PID=$!
for i in $(seq 1 100); do
	mountpoint -q "$MNT" && break
	kill -0 "$FLUX_PID" 2>/dev/null || { cat "$WORK/flux.log" >&2; exit 1; }
	sleep 0.1
done
mountpoint -q "$MNT" || { echo "durable bench: no mount after 10 s" >&2; exit 1; }
mkdir "$MNT/one" "$MNT/many" "$MNT/sync0" || exit 1
setfattr -n user.fluxfs.flush_ms -v 0 "$MNT/sync0" || exit 1
mkdir "$WORK/plain/many" "$WORK/pair/many"

REDIS_NOTE="redis-server not installed"
REDIS_PORT=""
if command -v redis-server >/dev/null; then
	REDIS_PORT=$((20000 + $$ % 20000))
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" \
		--appendonly yes --appendfsync always --save '' \
		--daemonize no >"$WORK/redis.log" 2>&1 &
	REDIS_PID=$!
	for i in $(seq 1 50); do
		"$DURBENCH" redis 127.0.0.1 "$REDIS_PORT" 1 0.01 >/dev/null \
			2>&1 && break
		sleep 0.1
	done
	REDIS_NOTE="Redis $(redis-server --version | awk '{ print $3 }' |
		cut -d= -f2), appendonly yes, appendfsync always, data in $WORK"
fi

# run ROW TARGET durbench-args...: each key=value kept in
# $RES/ROW:KEY.TARGET; a failure in $RES/ROW.fail.TARGET.
run() {
	local row=$1 tgt=$2 out kv
	shift 2
	if ! out=$("$DURBENCH" "$@" 2>&1); then
		echo "durable bench: $row on $tgt failed: $out" >&2
		echo FAIL >>"$RES/$row.fail.$tgt"
		FAILED=1
		return 1
	fi
	for kv in $out; do
		echo "${kv#*=}" >>"$RES/$row:${kv%%=*}.$tgt"
	done
	echo "$row $tgt: $out" >>"$WORK/runs.log"
}

file_of() { # TARGET ROW
	case $1 in
	plain) echo "$WORK/plain/$2" ;;
	pair) echo "$WORK/pair/$2" ;;
	flux) echo "$MNT/one/$2" ;;
	esac
}

# both ROW PLAIN_PATH FLUX_PATH MODE [PAIR_PATH]: 64 writers on each, in
# $order; the two-file bound too when PAIR_PATH is given.
both() {
	local t
	for t in $order; do
		case $t in
		plain) run "$1" plain lines "$2" 64 "$SECS" "$4" ;;
		pair) [ -n "${5:-}" ] &&
			run "$1" pair lines "$5" 64 "$SECS" "$4" pair ;;
		flux) run "$1" flux lines "$3" 64 "$SECS" "$4" ;;
		esac
	done
}

echo "durable bench: $REPS reps of $SECS s, bulk $MB MiB, in $WORK" >&2
for ((r = 0; r < REPS; r++)); do
	if ((r % 2)); then order="flux pair plain redis"; else order="plain pair redis flux"; fi
	for t in $order; do
		case $t in redis | pair) continue ;; esac
		run bulk $t bulk "$(file_of $t bulk-$r)" "$MB"
		rm -f "$(file_of $t bulk-$r)"
	done
	for n in 1 8 64; do
		for t in $order; do
			if [ $t = redis ]; then
				[ -n "$REDIS_PORT" ] &&
					run lines$n redis redis 127.0.0.1 \
						"$REDIS_PORT" $n "$SECS"
				continue
			fi
			if [ $t = pair ]; then
				run lines$n pair lines "$(file_of pair lines$n-$r)" \
					$n "$SECS" pair
				continue
			fi
			run lines$n $t lines "$(file_of $t lines$n-$r)" $n "$SECS"
		done
	done
	both many "$WORK/plain/many" "$MNT/many" multi "$WORK/pair/many"
	both sync0 "$WORK/plain/sync0-$r" "$MNT/sync0/p$r" nosync
done

# ---- the table ------------------------------------------------------
median() { # ROW:KEY TARGET
	[ -e "$RES/${1%%:*}.fail.$2" ] && { echo fail; return; }
	[ -s "$RES/$1.$2" ] || { echo -; return; }
	sort -g "$RES/$1.$2" | awk '{ v[NR] = $1 }
		END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() {
	case "$1$2" in
	*-* | *fail*) echo - ;;
	*) awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }' ;;
	esac
}
cell() { # ROW TARGET: "rate (p50/p99/p999 ms)"
	local v
	v=$(median "$1:opsps" "$2")
	case $v in
	- | fail) echo "$v"; return ;;
	esac
	printf "%.0f (%s/%s/%s)" "$v" "$(median "$1:p50_ms" "$2")" \
		"$(median "$1:p99_ms" "$2")" "$(median "$1:p999_ms" "$2")"
}
line() { # LABEL ROW [redis]
	local rd="-" p t f
	[ -n "${3:-}" ] && rd=$(if [ -n "$REDIS_PORT" ]; then cell "$2" redis; else echo "not installed"; fi)
	p=$(median "$2:opsps" plain)
	t=$(median "$2:opsps" pair)
	f=$(median "$2:opsps" flux)
	printf "| %-44s | %-30s | %-41s | %-30s | %10s | %9s | %8s | %-30s | %10s |\n" \
		"$1" "$(cell "$2" plain)" "$(cell "$2" pair)" "$(cell "$2" flux)" \
		"$(ratio "$f" "$p")" "$(ratio "$t" "$p")" "$(ratio "$f" "$t")" \
		"$rd" "$(ratio "$f" "$(median "$2:opsps" redis)")"
}

model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
fstype=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
echo
echo "durable: fluxfs vs a plain file, same system calls, same run" \
	"(medians of $REPS runs of $SECS s)"
echo "machine: nproc $(nproc), $model, Linux $(uname -r); data on" \
	"$fstype; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$REDIS_NOTE"
echo
printf "| %-44s | %9s | %9s | %8s |\n" "bulk, 1 MiB write() + fsync() each" \
	plain fluxfs ratio
echo "|----------------------------------------------|-----------|-----------|----------|"
p=$(median bulk:mbps plain)
f=$(median bulk:mbps flux)
printf "| %-44s | %9s | %9s | %8s |\n" "MB/s ($MB MiB)" "$p" "$f" "$(ratio "$f" "$p")"
echo
echo "lines/s (p50/p99/p999 ms of write+fdatasync; Redis: of XADD)"
echo "two files: what fluxfs's design allows on this disk, no FUSE: each" \
	"write also appends a 48-byte entry to a second plain file, the two" \
	"fdatasyncs side by side (two/plain is the bound on flux/plain)"
printf "| %-44s | %-30s | %-41s | %-30s | %10s | %9s | %8s | %-30s | %10s |\n" \
	workload "plain file" "two files (fluxfs's .log + .idx, no FUSE)" \
	fluxfs flux/plain two/plain flux/two "Redis XADD" flux/redis
echo "|----------------------------------------------|--------------------------------|-------------------------------------------|--------------------------------|------------|-----------|----------|--------------------------------|------------|"
line "1 writer, line + fdatasync" lines1 redis
line "8 writers, one file/partition" lines8 redis
line "64 writers, one file/partition" lines64 redis
line "64 writers, 64 files/partitions" many
line "flush_ms=0, 64 writers, no fsync (plain: no sync)" sync0
exit $FAILED
