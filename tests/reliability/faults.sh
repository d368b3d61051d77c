#!/bin/bash
# test-limit: 800 (tests/timelimit.sh)
# faults.sh - I/O faults injected under a workload through the mount.
#
# Rounds: the daemon starts with FLUXFS_FAULTS (EIO, ENOSPC, EDQUOT,
# short writes, failing fsync/fdatasync, and in some rounds any call at
# all; a different seed each round), four writers (two per partition)
# append and fsync every few lines until their first error or 1500
# lines.  Checked each round:
#   - every writer ends within 60 s (an error, never a hang);
#   - the daemon is still alive and serving when the writers are done,
#     and exits by itself on unmount (status 0, or 1 when its final
#     flush failed), never by a signal;
#   - remounted without faults: each partition is whole lines in order
#     per writer, every line whose write() succeeded is there (so also
#     every fsync-acknowledged one) and nothing else, next_offset equals
#     the line count, and fluxctl verify DATA exits 0.
# Then the failed-fsync probe: two handles with unflushed data on one
# partition, the first fsync fails (an injected fdatasync EIO): the other
# handle's fsync and a third one's close fail too (their lines were in
# that flush), each handle's second fsync succeeds (told once; the
# partition is back in service), a later writer's fsync succeeds,
# the loss is in user.fluxfs.lost and .metrics, and the daemon exits 0.
# Then mappings, the lock and mkdir, each on a fresh data directory:
#   - every mmap failing: creating a partition fails with ENOMEM;
#   - the index mapping failing to grow (the 1025th append to a new
#     partition): that write fails with ENOMEM, the 1024 before it stay;
#   - flock failing: the daemon refuses to start, exit status 1;
#   - mkdir failing: the daemon refuses to create a missing data
#     directory, and on a mount creating a topic fails with the errno.
# Each time exactly one log line names the failure, the daemon never
# dies by a signal, and a remount without faults shows nothing of the
# failed operation.
# FAULT_ROUNDS (default 8) for soak runs.  The faults injected are read
# from the daemon's exit line "fault injection: N faults injected".
. "$(dirname "$0")/rel.sh"

ROUNDS=${FAULT_ROUNDS:-8}
TEST_TIMEOUT=$((180 + ROUNDS * 45))
FSYNC_PROBE="$top_builddir/tests/reliability/fsync_probe"
need_tool "$TORTURE_WRITER"
need_tool "$FSYNC_PROBE"
[ -x "$FLUXCTL" ] || fail "fluxctl is not built"

# A build without --enable-fault-injection ignores FLUXFS_FAULTS: skip.
if ! has_fault_injection; then
	echo "SKIP: fault injection not compiled in (configure --enable-fault-injection)"
	exit 77
fi

mount_start -o segment_bytes=16k
daemon_stop_any || fail "first clean unmount"
# A bad spec must stop the daemon before it mounts.
if FLUXFS_FAULTS=bogus=1 timeout 10 "$FLUXFS" -f "$DATA" "$MNT" >"$WORK/bad.log" 2>&1; then
	fusermount3 -u "$MNT" 2>/dev/null
	fail "the daemon mounted and exited 0 with a bad FLUXFS_FAULTS spec"
fi
grep -q "bad fault spec" "$WORK/bad.log" || fail "bad spec: $(cat "$WORK/bad.log")"
is_mounted "$MNT" && fail "daemon mounted with a bad FLUXFS_FAULTS spec"

faults_total=0
# faults_of_last_run: the count the daemon logged at its last exit.
faults_of_last_run() {
	local n
	n=$(grep -o 'fault injection: [0-9]* faults injected' "$WORK/daemon.log" |
		tail -n 1 | awk '{ print $3 }')
	echo "${n:-0}"
}

# after=N spares the first N calls the spec matches: the mount's own
# start (a failure there refuses the mount, as it should, and the round
# would test nothing).  With ops=all that is every call of the start: the
# data directory's files, the mount summary's checks, fluxfs.meta.
specs=(
	"p=0.005,ops=pwrite+pwritev+fsync+fdatasync,errno=EIO+ENOSPC,short=0.1,after=50"
	"p=0.01,ops=fsync+fdatasync,errno=EIO,after=50"
	"p=0.003,ops=pwrite+pwritev,errno=ENOSPC+EDQUOT,short=0.3,after=50"
	"p=0.001,ops=all,errno=EIO+ENOSPC,short=0.05,after=400"
)
declare -A WRITTEN=()
round_faults=0
for r in $(seq 1 "$ROUNDS"); do
	spec="seed=$((r * 7919 + RANDOM)),${specs[$(((r - 1) % ${#specs[@]}))]}"
	: >"$WORK/daemon.log.round"
	export FLUXFS_FAULTS="$spec"
	FLUXFS_OPTS=(-o segment_bytes=16k,flush_ms=$((r % 2 ? 0 : 200)))
	mount_launch
	unset FLUXFS_FAULTS
	mkdir -p "$MNT/t" 2>/dev/null
	pids=()
	for w in 0 1 2 3; do
		tag="r${r}w$w"
		timeout -s KILL 60 "$TORTURE_WRITER" "$MNT/t/$((w % 2))" "$tag" \
			$((1 + w * 3)) "$WORK/$tag.ack" 1500 >"$WORK/$tag.out" 2>&1 &
		pids+=($!)
	done
	for i in 0 1 2 3; do
		wait "${pids[$i]}"
		rc=$?
		[ $rc -le 1 ] || fail "round $r ($spec): writer $i exited $rc (hang or crash): $(cat "$WORK/r${r}w$i.out")"
	done
	kill -0 "$FLUXFS_PID" 2>/dev/null || fail "round $r ($spec): the daemon died"
	timeout 10 stat "$MNT/t" >/dev/null || fail "round $r ($spec): the mount stopped answering"
	for w in 0 1 2 3; do
		set -- $(tail -n 1 "$WORK/r${r}w$w.out")
		[ "$1" = done ] || fail "round $r: writer $w: $(cat "$WORK/r${r}w$w.out")"
		WRITTEN[r${r}w$w]=$2
		echo "round $r writer $w: written $2 acked $3 stopped by $4 $5" >>"$WORK/summary"
	done
	status=0
	daemon_stop_any || status=$?
	[ $status -le 1 ] || fail "round $r ($spec): daemon exit status $status"
	n=$(faults_of_last_run)
	faults_total=$((faults_total + n))

	mount_launch
	for part in 0 1; do
		f="$MNT/t/$part"
		[ -e "$f" ] || continue
		cat "$f" >"$WORK/p$part.txt" || fail "round $r: reading partition $part"
		check_lines "$WORK/p$part.txt" "$WORK/p$part.counts"
		xassert "$f" next_offset "$LINES_TOTAL" "round $r: offsets of partition $part"
	done
	for tag in "${!WRITTEN[@]}"; do
		got=$(count_of "$tag" "$WORK/p$((${tag##*w} % 2)).counts")
		[ "$got" -eq "${WRITTEN[$tag]}" ] ||
			fail "round $r: $tag: ${WRITTEN[$tag]} lines written successfully, $got present"
	done
	mount_stop || fail "round $r: clean unmount without faults"
	out=$("$FLUXCTL" verify "$DATA" 2>&1) || fail "round $r: fluxctl verify: $out"
	log "round $r: $n faults injected ($spec)"
done

# A failed data sync: the first fdatasync after mount (t/0's .log, in the
# probe's first fsync) fails, once.
rm -rf "$DATA"/t/1 2>/dev/null
export FLUXFS_FAULTS="ops=fdatasync,p=1,max=1,errno=EIO"
FLUXFS_OPTS=(-o flush_ms=-1)
log_from=$(($(wc -l <"$WORK/daemon.log") + 1))
mount_launch
unset FLUXFS_FAULTS
size0=$(stat -c %s "$MNT/t/0")
next0=$(getfattr --absolute-names --only-values -n user.fluxfs.next_offset "$MNT/t/0")
probe=$("$FSYNC_PROBE" "$MNT/t/0") || fail "fsync_probe: $probe"
log "failed fsync probe: $probe"
case $probe in
"a=5 b=5 a2=ok b2=ok c_close=5 d=ok") ;;
"a=ok"*) fail "the injected fsync failure did not reach the first fsync ($probe)" ;;
*) fail "wanted a=5 b=5 a2=ok b2=ok c_close=5 d=ok (each handle that wrote into the failed flush told once, then back in service), got: $probe" ;;
esac
# Exactly the three lines appended before the failed flush are reported
# lost: bytes and offsets.
xassert "$MNT/t/0" lost "count=1 bytes=$size0-$((size0 + 24)) offsets=$next0-$((next0 + 3))" "the loss the failed flush covered"
grep -q '^fluxfs_data_losses_total{.*} 1$' "$MNT/.metrics" ||
	fail "no data loss counted in .metrics: $(grep data_losses "$MNT/.metrics")"
grep -q '^fluxfs_lost_bytes_total{.*} 24$' "$MNT/.metrics" ||
	fail "lost bytes in .metrics: $(grep lost_bytes "$MNT/.metrics")"
echo after-probe >>"$MNT/t/0" || fail "append after the failed flush"
sync "$MNT/t/0" || fail "fsync after the failed flush (no remount)"
n=$(tail -n +"$log_from" "$WORK/daemon.log" | grep -c "lost data of")
assert_eq 1 "$n" "log lines reporting the loss"
mount_stop || fail "the daemon did not exit 0 once everything after the loss was durable"
faults_total=$((faults_total + $(faults_of_last_run)))
mount_launch
cat "$MNT/t/0" >/dev/null || fail "partition unreadable after the failed fsync probe"
out=$(awk '/^probe [ab]$/' "$MNT/t/0" | sort | tr '\n' ' ')
assert_eq "probe a probe b " "$out" "probe lines present after remount"
log "rounds $ROUNDS, faults injected $faults_total"
cat "$WORK/summary"
mount_stop || fail "clean unmount after the fsync probe"

# fresh_data NAME: point DATA at a new, empty data directory.
fresh_data() {
	DATA="$WORK/$1"
	mkdir -p "$DATA"
}

# launch_with_faults SPEC: mount with FLUXFS_FAULTS=SPEC; the daemon log
# lines from here on are read by new_log_lines.
launch_with_faults() {
	log_from=$(($(wc -l <"$WORK/daemon.log") + 1))
	export FLUXFS_FAULTS="$1"
	mount_launch
	unset FLUXFS_FAULTS
}

# new_log_lines PATTERN: how many daemon log lines since the last launch
# match PATTERN.
new_log_lines() {
	tail -n +"$log_from" "$WORK/daemon.log" | grep -c -e "$1"
}

# start_refused SPEC OUT: run the daemon with FLUXFS_FAULTS=SPEC, which
# must make it exit before mounting, not by a signal; its output in OUT.
start_refused() {
	local rc=0
	FLUXFS_FAULTS="$1" timeout 10 "$FLUXFS" -f "$DATA" "$MNT" >"$2" 2>&1 || rc=$?
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT"
		fail "the daemon mounted with FLUXFS_FAULTS=$1"
	fi
	[ $rc -eq 1 ] || fail "FLUXFS_FAULTS=$1: daemon exit status $rc, wanted 1: $(cat "$2")"
}

FLUXFS_OPTS=()
# Every mmap fails: a topic can be made (no mapping), a partition cannot
# (its index is mapped when it is created).
fresh_data data-maps
launch_with_faults "ops=mmap,errno=ENOMEM"
mkdir "$MNT/m" || fail "mkdir of a topic with mmap failing"
if out=$(: 2>&1 >"$MNT/m/1"); then
	fail "a partition was created although its index cannot be mapped"
fi
case $out in
*"Cannot allocate memory"*) ;;
*) fail "creating a partition with mmap failing: '$out', wanted ENOMEM" ;;
esac
assert_eq 1 "$(new_log_lines "cannot create partition '1': Cannot allocate memory")" \
	"log lines about the partition that could not be created"
assert_eq 1 "$(new_log_lines "cannot")" "error lines for one failed create"
[ -e "$MNT/m/1" ] && fail "m/1 exists after its create failed"
kill -0 "$FLUXFS_PID" 2>/dev/null || fail "the daemon died on a failed mmap"
mount_stop || fail "the daemon did not exit 0 after a failed create"

# The index mapping cannot grow: a new partition's index is mapped for
# 1024 entries when it is created and its log on the first append (two
# mmaps pass); each one-line write is one entry, so the 1025th write is
# the first that needs a larger mapping, and that mmap fails.
launch_with_faults "ops=mmap,errno=ENOMEM,after=2"
exec 5>>"$MNT/m/0" || fail "open m/0 with after=2"
for i in $(seq 1 1024); do
	echo "line $i" >&5 || fail "write $i of 1024 before the mapping must grow"
done
if out=$({ echo "line 1025" >&5; } 2>&1); then
	fail "the write that needed a larger index mapping succeeded"
fi
case $out in
*"Cannot allocate memory"*) ;;
*) fail "a write whose index mapping cannot grow: '$out', wanted ENOMEM" ;;
esac
exec 5>&-
assert_eq 1 "$(new_log_lines "cannot map the index of '0': Cannot allocate memory")" \
	"log lines about the index mapping that could not grow"
assert_eq 1 "$(new_log_lines "cannot")" "error lines for one failed write"
kill -0 "$FLUXFS_PID" 2>/dev/null || fail "the daemon died on a failed mmap"
mount_stop || fail "the daemon did not exit 0 after a failed mapping"
mount_launch
assert_eq 1024 "$(wc -l <"$MNT/m/0")" "lines in m/0 after a refused write"
xassert "$MNT/m/0" next_offset 1024 "offsets of m/0 after a refused write"
[ "$(tail -n 1 "$MNT/m/0")" = "line 1024" ] || fail "last line of m/0: $(tail -n 1 "$MNT/m/0")"
mount_stop || fail "clean unmount after the mapping faults"
out=$("$FLUXCTL" verify "$DATA" 2>&1) || fail "fluxctl verify after the mapping faults: $out"
log "mmap faults: create refused, the 1025th write refused, 1024 lines kept"

# The lock cannot be taken: the daemon says so once and exits 1.
start_refused "ops=flock,errno=EIO" "$WORK/flock.log"
n=$(grep -c "cannot lock '$DATA': Input/output error" "$WORK/flock.log")
assert_eq 1 "$n" "log lines about the lock (log: $(cat "$WORK/flock.log"))"
assert_eq 1 "$(grep -vc "fault injection active" "$WORK/flock.log")" \
	"lines besides the fault-injection notice (log: $(cat "$WORK/flock.log"))"
log "flock fault: refused to start ($(grep -v "fault injection active" "$WORK/flock.log"))"

# mkdir fails: a data directory that does not exist is not created ...
DATA="$WORK/data-mkdir"
start_refused "ops=mkdirat,errno=EACCES" "$WORK/mkdir.log"
n=$(grep -c "cannot create '$DATA': Permission denied" "$WORK/mkdir.log")
assert_eq 1 "$n" "log lines about the data directory (log: $(cat "$WORK/mkdir.log"))"
assert_eq 1 "$(grep -vc "fault injection active" "$WORK/mkdir.log")" \
	"lines besides the fault-injection notice (log: $(cat "$WORK/mkdir.log"))"
[ -e "$DATA" ] && fail "$DATA was created although mkdir failed"
# ... and on a mount, a topic is not: the mkdirs of the data directory's
# path (one per component, all EEXIST) and of .trash pass.
mkdir -p "$DATA"
launch_with_faults "ops=mkdirat,errno=ENOSPC,after=$(($(printf %s "$DATA" | tr -cd / | wc -c) + 1))"
if out=$(mkdir "$MNT/nt" 2>&1); then
	fail "a topic was created although mkdir failed"
fi
case $out in
*"No space left on device"*) ;;
*) fail "creating a topic with mkdir failing: '$out', wanted ENOSPC" ;;
esac
assert_eq 1 "$(new_log_lines "cannot create topic 'nt': No space left on device")" \
	"log lines about the topic that could not be created"
assert_eq 1 "$(new_log_lines "cannot")" "error lines for one failed mkdir"
kill -0 "$FLUXFS_PID" 2>/dev/null || fail "the daemon died on a failed mkdir"
mount_stop || fail "the daemon did not exit 0 after a failed mkdir"
mount_launch
[ -e "$MNT/nt" ] && fail "topic nt exists after its mkdir failed"
mount_stop || fail "clean unmount after the mkdir faults"
log "mkdir faults: data directory and topic creation refused"
log "ok"
