#!/bin/bash
# tests/bench/run.sh - fluxfs beside a plain file and the reference FUSE
# filesystem, in one run, one table.  "make bench" calls it after
# engine_bench; by hand: top_builddir=BUILD bash tests/bench/run.sh
#
# It makes a temporary directory on the filesystem that holds the data
# ($BENCH_DIR, default /var/tmp), mounts tests/bench/ref_fuse and src/fluxfs
# (default options) there, and runs every workload of tests/bench/fsbench
# against the three targets, interleaving the targets within each
# repetition (and rotating who goes first) so machine noise hits all alike.
# It prints medians.  Whatever happens, the trap unmounts both mounts with
# fusermount3 -u and waits for both daemons.
#
# Environment (defaults; BENCH_QUICK=1 for a smoke run in brackets):
#   BENCH_DIR=/var/tmp   BENCH_REPS=5          BENCH_SIZE_MB=1024 [64]
#   BENCH_LINES=200000 [20000]   BENCH_APPENDS=20000 [2000]
#   BENCH_RAND_READS=200000 [20000]   BENCH_PARTITIONS=1000 [1000]
#   BENCH_REQ_APPENDS=2000 [500]  (appends traced to count FUSE requests)
#   BENCH_WRITERS=4
# Exit status: 0 if every run worked, 1 if any failed (its cell says so).

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
FSBENCH="$top_builddir/tests/bench/fsbench"
REF="$top_builddir/tests/bench/ref_fuse"
FLUXFS="${FLUXFS:-$top_builddir/src/fluxfs}"

if [ "${BENCH_QUICK:-0}" != 0 ]; then
	q=1
else
	q=0
fi
pick() { if [ $q = 1 ]; then echo "$2"; else echo "$1"; fi; }
SIZE_MB=${BENCH_SIZE_MB:-$(pick 1024 64)}
LINES=${BENCH_LINES:-$(pick 200000 20000)}
APPENDS=${BENCH_APPENDS:-$(pick 20000 2000)}
RAND_READS=${BENCH_RAND_READS:-$(pick 200000 20000)}
PARTITIONS=${BENCH_PARTITIONS:-1000}
REQ_APPENDS=${BENCH_REQ_APPENDS:-$(pick 2000 500)}
WRITERS=${BENCH_WRITERS:-4}
REPS=${BENCH_REPS:-5}

if [ ! -c /dev/fuse ]; then
	echo "bench: /dev/fuse is absent; nothing to measure" >&2
	exit 77
fi
for prog in "$FSBENCH" "$REF"; do
	[ -x "$prog" ] || { echo "bench: '$prog' is not built" >&2; exit 1; }
done
HAVE_FLUX=1
if [ ! -x "$FLUXFS" ]; then
	echo "bench: '$FLUXFS' is not built; fluxfs column left empty" >&2
	HAVE_FLUX=0
fi
CAN_DROP=0
[ -w /proc/sys/vm/drop_caches ] && CAN_DROP=1

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/fluxfs-bench.XXXXXX") || exit 1
RES="$WORK/res"
mkdir -p "$RES" "$WORK/plain" "$WORK/ref-back" "$WORK/ref-mnt" \
	"$WORK/flux-mnt"
REF_PID=""
FLUX_PID=""
FAILED=0

# Unmount MNT if mounted and wait for PID; kill it only if it hangs.  A
# daemon that does not exit with status 0 fails the run, and its log
# (LOGNAME.log) is shown.
stop_daemon() {
	local mnt=$1 pid=$2 log=$3 i status=0
	[ -n "$pid" ] || return 0
	if mountpoint -q "$mnt" 2>/dev/null; then
		for i in $(seq 1 50); do
			fusermount3 -u "$mnt" 2>/dev/null && break
			sleep 0.1
		done
	fi
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: daemon $pid did not exit after unmount; killing it" >&2
		kill -TERM "$pid" 2>/dev/null
		sleep 1
		kill -KILL "$pid" 2>/dev/null
		mountpoint -q "$mnt" 2>/dev/null && fusermount3 -uz "$mnt"
	fi
	wait "$pid" 2>/dev/null || status=$?
	if [ $status -ne 0 ]; then
		echo "bench: $log daemon exited with status $status; its log:" >&2
		tail -n 30 "$WORK/$log.log" >&2
		FAILED=1
	fi
	return 0
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "${STRACE_PID:-}" ] && kill -INT "$STRACE_PID" 2>/dev/null &&
		wait "$STRACE_PID" 2>/dev/null
	stop_daemon "$WORK/ref-mnt" "$REF_PID" ref
	stop_daemon "$WORK/flux-mnt" "$FLUX_PID" flux
	[ $rc -eq 0 ] && rc=$FAILED
	if ! mountpoint -q "$WORK/ref-mnt" && ! mountpoint -q "$WORK/flux-mnt"; then
		rm -rf "$WORK"
	else
		echo "bench: a mount is still live; left $WORK" >&2
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_mount MNT PID NAME: until MNT is live, or fail if PID died.
wait_mount() {
	local i
	for i in $(seq 1 100); do
		mountpoint -q "$1" && return 0
		if ! kill -0 "$2" 2>/dev/null; then
			echo "bench: $3 exited before mounting; its log:" >&2
			cat "$WORK/$3.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "bench: $3 not mounted after 10 s" >&2
	return 1
}

start_ref() {
	"$REF" -f "$WORK/ref-back" "$WORK/ref-mnt" >>"$WORK/ref.log" 2>&1 &
	REF_PID=$!
	wait_mount "$WORK/ref-mnt" "$REF_PID" ref || exit 1
}

# start_flux DATA_DIR: fluxfs with default options, topic "bench" made.
start_flux() {
	mkdir -p "$1"
	"$FLUXFS" -f "$1" "$WORK/flux-mnt" >>"$WORK/flux.log" 2>&1 &
	FLUX_PID=$!
	wait_mount "$WORK/flux-mnt" "$FLUX_PID" flux || exit 1
	mkdir "$WORK/flux-mnt/bench" || exit 1
}

start_ref
TARGETS="plain ref"
if [ $HAVE_FLUX = 1 ]; then
	start_flux "$WORK/flux-data"
	TARGETS="plain ref flux"
fi

dir_of() {
	case $1 in
	plain) echo "$WORK/plain" ;;
	ref) echo "$WORK/ref-mnt" ;;
	flux) echo "$WORK/flux-mnt/bench" ;;
	esac
}
pid_of() {
	case $1 in
	ref) echo "$REF_PID" ;;
	flux) echo "$FLUX_PID" ;;
	esac
}

# The targets in rep $1's order: rotated so none always goes first.
order() {
	local -a t=($TARGETS)
	local n=${#t[@]} i
	for ((i = 0; i < n; i++)); do
		echo -n "${t[$(((i + $1) % n))]} "
	done
}

# record WORKLOAD TARGET fsbench-args...: run once; each key=value it
# prints is kept in $RES/WORKLOAD:KEY.TARGET, a failure in
# $RES/WORKLOAD.fail.TARGET.
record() {
	local wl=$1 tgt=$2
	shift 2
	run_fsbench "$wl" "$tgt" "$@" && keep "$wl" "$tgt"
}

# run_fsbench WORKLOAD TARGET fsbench-args...: its output in $OUT.
run_fsbench() {
	local wl=$1 tgt=$2
	shift 2
	if ! OUT=$("$FSBENCH" "$@" 2>&1); then
		echo "bench: $wl on $tgt failed: $OUT" >&2
		echo FAIL >>"$RES/$wl.fail.$tgt"
		FAILED=1
		return 1
	fi
}

keep() {
	local kv
	for kv in $OUT; do
		echo "${kv#*=}" >>"$RES/$1:${kv%%=*}.$2"
	done
	echo "$1 $2: $OUT" >>"$WORK/runs.log"
}

# Free page reporting (virtio-balloon, as on Firecracker) hands memory
# the guest freed back to the host.  A reporting pass that lands inside a
# timed bulk run takes the pages prime just freed, and the rest of the
# run faults each new page-cache page in from the host: 3-5x slower
# (perf: copy_folio_from_iter_atomic from 10% to 40% of samples),
# whichever target it hits.  Such a run is repeated, primed again, up to
# twice, for every target alike; the table says how many were.  Kernels
# without this counter repeat nothing.
PASSES=/sys/module/page_reporting/parameters/passes
passes() {
	cat "$PASSES" 2>/dev/null || echo 0
}

# record_quiet WORKLOAD TARGET N FILE1..FILEN fsbench-args...: prime and
# record; the N files the run writes are removed before a repeat.
record_quiet() {
	local wl=$1 tgt=$2 n=$3 try p0
	local -a files=("${@:4:$n}")
	shift $((3 + n))
	for try in 1 2 3; do
		"$FSBENCH" prime "$WORK/plain" "$SIZE_MB"
		p0=$(passes)
		run_fsbench "$wl" "$tgt" "$@" || return 1
		if [ "$(passes)" = "$p0" ] || [ $try = 3 ]; then
			keep "$wl" "$tgt"
			return 0
		fi
		echo "bench: $wl on $tgt: the VM reported free pages during" \
			"the run, repeating it" >&2
		echo "$wl $tgt" >>"$RES/repeats"
		rm -f "${files[@]}"
	done
}

status_kb() {
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

echo "bench: $SIZE_MB MiB, $LINES lines, $APPENDS appends, $REPS reps" \
	"in $WORK" >&2
# The input of the dd-like producer: a plain file of the same lines.
"$FSBENCH" bulk "$WORK/copy-src" "$SIZE_MB" >/dev/null || exit 1
for ((r = 0; r < REPS; r++)); do
	echo "bench: repetition $((r + 1)) of $REPS" >&2
	for t in $(order $r); do
		d=$(dir_of $t)
		pid=$(pid_of $t)
		# Reset the daemon's high-water mark, so VmHWM is this append's.
		[ -n "$pid" ] && echo 5 >"/proc/$pid/clear_refs"
		record_quiet bulk $t 1 "$d/bulk-$r" bulk "$d/bulk-$r" "$SIZE_MB"
		[ -n "$pid" ] && status_kb "$pid" VmHWM >>"$RES/rss:peak.$t"
	done
	for t in $(order $r); do
		d=$(dir_of $t)
		record_quiet copy $t 1 "$d/copy-$r" copy "$WORK/copy-src" \
			"$d/copy-$r"
		rm -f "$d/copy-$r"
	done
	if [ $CAN_DROP = 1 ]; then
		for t in $(order $r); do
			drop_caches
			record read_cold $t seqread "$(dir_of $t)/bulk-$r"
		done
	fi
	for t in $(order $r); do
		# Warm: read once untimed first (the cold pass's later
		# drop_caches emptied the earlier targets' caches again).
		"$FSBENCH" seqread "$(dir_of $t)/bulk-$r" >/dev/null
		record read_warm $t seqread "$(dir_of $t)/bulk-$r"
	done
	for t in $(order $r); do
		record rand_read $t randread "$(dir_of $t)/bulk-$r" \
			"$RAND_READS"
	done
	for t in $(order $r); do
		rm -f "$(dir_of $t)/bulk-$r" ||
			echo "bench: cannot remove bulk-$r on $t" >&2
	done
	for t in $(order $r); do
		record lines $t lines "$(dir_of $t)/lines-$r" "$LINES"
	done
	for t in $(order $r); do
		record shell $t shell "$(dir_of $t)/shell-$r" "$APPENDS"
	done
	for t in $(order $r); do
		record opens $t opens "$(dir_of $t)/opens-$r" "$APPENDS"
	done
	for t in $(order $r); do
		files=()
		for ((w = 0; w < WRITERS; w++)); do
			files+=("$(dir_of $t)/par-$r-$w")
		done
		record_quiet parallel $t $WRITERS "${files[@]}" \
			parallel "$SIZE_MB" "${files[@]}"
		rm -f "${files[@]}"
	done
done

# ---- FUSE requests per append ---------------------------------------
# strace -f on the daemon, dumping what each thread reads from /dev/fuse:
# every request is one read, and the opcode is bytes 4..7 of its header.
# The same method on both daemons; fluxfs's own fluxfs_requests_total
# (.metrics) is the cross-check.
fuse_fd() {
	ls -l "/proc/$1/fd" | awk '$NF == "/dev/fuse" { print $(NF - 2); exit }'
}

metrics_requests() {
	awk '$1 == "fluxfs_requests_total" { print $2 }' \
		"$WORK/flux-mnt/.metrics" 2>/dev/null
}

count_requests() {
	local t=$1 pid fd f
	pid=$(pid_of $t)
	f="$(dir_of $t)/req"
	fd=$(fuse_fd "$pid")
	[ -n "$fd" ] || return 1
	"$FSBENCH" opens "$f" 1 >/dev/null || return 1
	strace -f -qq -p "$pid" -e trace=read -e read="$fd" \
		-o "$WORK/strace.$t" 2>/dev/null &
	STRACE_PID=$!
	sleep 1
	"$FSBENCH" opens "$f" "$REQ_APPENDS" >/dev/null
	sleep 0.5
	kill -INT "$STRACE_PID" 2>/dev/null
	wait "$STRACE_PID" 2>/dev/null
	STRACE_PID=""
	awk -v n="$REQ_APPENDS" '
	BEGIN {
		split("LOOKUP FORGET GETATTR SETATTR READLINK SYMLINK - MKNOD " \
		      "MKDIR UNLINK RMDIR RENAME LINK OPEN READ WRITE STATFS " \
		      "RELEASE - FSYNC SETXATTR GETXATTR LISTXATTR REMOVEXATTR " \
		      "FLUSH INIT OPENDIR READDIR RELEASEDIR FSYNCDIR GETLK " \
		      "SETLK SETLKW ACCESS CREATE INTERRUPT BMAP DESTROY IOCTL " \
		      "POLL NOTIFY_REPLY BATCH_FORGET FALLOCATE READDIRPLUS " \
		      "RENAME2 LSEEK COPY_FILE_RANGE", name, " ")
	}
	function hex(s,    i, v) {
		for (i = 1; i <= length(s); i++)
			v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
	$1 == "|" && $2 == "00000" {
		op = hex($8 $7)
		c[op]++
		total++
	}
	END {
		printf "%.2f", total / n
		for (op in c)
			printf " %s=%.2f", (op in name) ? name[op] : op, c[op] / n
		printf "\n"
	}' "$WORK/strace.$t"
}

REQ_NOTE=""
if command -v strace >/dev/null; then
	for t in $TARGETS; do
		[ $t = plain ] && continue
		line=$(count_requests $t) || continue
		echo "${line%% *}" >"$RES/req:n.$t"
		REQ_NOTE="$REQ_NOTE
  $t: ${line#* }"
	done
fi
if [ $HAVE_FLUX = 1 ]; then
	m0=$(metrics_requests)
	m1=$(metrics_requests)
	"$FSBENCH" opens "$(dir_of flux)/req2" "$REQ_APPENDS" >/dev/null
	m2=$(metrics_requests)
	if [ -n "$m0" ] && [ -n "$m2" ]; then
		REQ_NOTE="$REQ_NOTE
  fluxfs .metrics fluxfs_requests_total: $(awk -v a="$m0" -v b="$m1" \
		-v c="$m2" -v n="$REQ_APPENDS" \
		'BEGIN { printf "%.2f", (c - b - (b - a)) / n }') per append"
	fi
fi

# ---- RSS with idle partitions ---------------------------------------
# A fresh fluxfs (and ref_fuse) so earlier workloads do not count: VmRSS
# empty, then after creating $PARTITIONS topics of one partition of one
# line each (flat files on ref_fuse, which has no directories).
stop_daemon "$WORK/ref-mnt" "$REF_PID" ref
REF_PID=""
rm -rf "$WORK/ref-back"/*
start_ref
status_kb "$REF_PID" VmRSS >"$RES/rss:empty.ref"
"$FSBENCH" populate "$WORK/ref-mnt" "$PARTITIONS" flat >/dev/null || FAILED=1
sleep 1
status_kb "$REF_PID" VmRSS >"$RES/rss:idle.ref"
if [ $HAVE_FLUX = 1 ]; then
	stop_daemon "$WORK/flux-mnt" "$FLUX_PID" flux
	FLUX_PID=""
	start_flux "$WORK/flux-data2"
	status_kb "$FLUX_PID" VmRSS >"$RES/rss:empty.flux"
	"$FSBENCH" populate "$WORK/flux-mnt" "$PARTITIONS" >/dev/null ||
		FAILED=1
	sleep 1
	status_kb "$FLUX_PID" VmRSS >"$RES/rss:idle.flux"
fi

# ---- the table ------------------------------------------------------
# median WORKLOAD:KEY TARGET: the median of the values kept, "fail" if
# any run of the workload failed, "-" if there are none.
median() {
	[ -e "$RES/${1%%:*}.fail.$2" ] && { echo "fail"; return; }
	[ -s "$RES/$1.$2" ] || { echo "-"; return; }
	sort -g "$RES/$1.$2" | awk '{ v[NR] = $1 }
		END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# fmt VALUE SCALE DECIMALS
fmt() {
	case $1 in
	- | fail) echo "$1" ;;
	*) awk -v v="$1" -v s="$2" -v d="$3" 'BEGIN { printf "%.*f", d, v / s }' ;;
	esac
}

ratio() {
	case "$1$2" in
	*-* | *fail*) echo "-" ;;
	*) awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }' ;;
	esac
}

# row LABEL KEY SCALE DECIMALS [lower_is_better]
row() {
	local p r f
	p=$(median "$2" plain)
	r=$(median "$2" ref)
	f=$(median "$2" flux)
	printf "| %-52s | %9s | %9s | %9s | %10s | %12s |\n" "$1" \
		"$(fmt "$p" "$3" "$4")" "$(fmt "$r" "$3" "$4")" \
		"$(fmt "$f" "$3" "$4")" "$(ratio "$f" "$r")" "$(ratio "$f" "$p")"
}

model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
fstype=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
echo
echo "fluxfs vs plain file vs reference FUSE ($SIZE_MB MiB, 100-byte lines)"
echo "figures are medians of $REPS runs; machine: nproc $(nproc), $model," \
	"Linux $(uname -r); data on $fstype ($WORK)"
echo "fluxfs with default options (flush_ms default), no fsync anywhere" \
	"(the plain file is not fsynced either)"
if [ -s "$RES/repeats" ]; then
	echo "bulk runs repeated because the VM reported free pages to the" \
		"host during them: $(sort "$RES/repeats" | uniq -c |
			awk '{ printf "%s%s on %s %d", (NR > 1 ? ", " : ""), $2, $3, $1 }')"
else
	echo "no bulk run was repeated for free page reporting"
fi
echo
printf "| %-52s | %9s | %9s | %9s | %10s | %12s |\n" workload plain \
	"ref FUSE" fluxfs fluxfs/ref fluxfs/plain
echo "|------------------------------------------------------|-----------|-----------|-----------|------------|--------------|"
row "bulk append, 1 MiB write()s (MB/s)" bulk:mbps 1 0
row "bulk append, 1 MiB write()s (msg/s)" bulk:msgps 1 0
row "bulk append read from a file, dd-like (MB/s)" copy:mbps 1 0
row "one write() per line, $LINES lines (lines/s)" lines:lps 1 0
row "bash echo line >> file, $APPENDS x (appends/s)" shell:aps 1 0
row "open(O_APPEND)/write/close in C (appends/s)" opens:aps 1 0
row "FUSE requests per append (open/write/close)" req:n 1 2
row "$WRITERS writers on $WRITERS files, bulk (aggregate MB/s)" parallel:mbps 1 0
if [ $CAN_DROP = 1 ]; then
	row "sequential read, cold (MB/s)" read_cold:mbps 1 0
else
	echo "| sequential read, cold: not root, cannot drop caches |"
fi
row "sequential read, warm (MB/s)" read_warm:mbps 1 0
row "random 4 KiB reads at byte offsets, warm (reads/s)" rand_read:rps 1 0
row "daemon peak RSS during bulk append (MiB)" rss:peak 1024 1
row "daemon RSS, fresh mount, empty (MiB)" rss:empty 1024 1
row "daemon RSS, $PARTITIONS idle partitions (MiB)" rss:idle 1024 1
echo
echo "FUSE requests per append (strace of the daemon's /dev/fuse reads," \
	"$REQ_APPENDS appends):$REQ_NOTE"
for t in $TARGETS; do
	[ -s "$RES/bulk:mbps.$t" ] &&
		echo "bulk append runs on $t (MB/s): $(cut -d. -f1 "$RES/bulk:mbps.$t" | tr '\n' ' ')"
done
echo "cold reads: sync and drop_caches before each run (drops the FUSE" \
	"page cache and the backing files' alike); warm: the run right after"
echo "ref FUSE RSS rows: $PARTITIONS flat files (it has no directories)"
exit $FAILED
