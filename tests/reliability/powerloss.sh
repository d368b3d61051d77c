#!/bin/bash
# test-limit: 900 (tests/timelimit.sh)
# powerloss.sh - cut the power under the daemon while writers append and
# fsync, remount, and check nothing acknowledged was lost.
#
# Unlike crash_torture.sh (SIGKILL: the kernel keeps every write), the
# daemon runs on crashsim (FLUXFS_CRASHSIM=1, fault-injection builds only;
# exit 77 otherwise): SIGUSR2 undoes what a power cut would lose of
# everything not fsynced -- file data, and directory changes whose
# directory was not fsynced -- and the daemon exits on the spot.
#
# Topic t (partitions 0 and 1) and topic r (partition 0, retention_bytes
# 48k), both made under crashsim; segments 16k, lz4 on every other round,
# flush_ms=0 on every third.  Each round mounts with crashsim (mode
# prefix, random, drop or garble, a new seed), checks everything
# acknowledged so far (recovery, and its repairs, run under crashsim
# too), writes and fsyncs a scratch partition, renames it to t/mN and
# removes the one of two rounds before, makes a new topic kN with an
# fsynced partition (names must stay as the calls left them), starts
# four writers (torture_writer: "TAG N x..x" lines,
# fsync every 1-20 lines, the count fsync acknowledged kept outside the
# mount), cuts the power after 20-600 ms, drops the dead mount.  Every
# fourth round cuts 0-40 ms after the mount instead, as the writers' opens
# run recovery.  Every fifth round is a plain mount that checks and then
# unmounts cleanly, and "fluxctl verify DATA" must exit 0.  The check: each
# partition is whole lines, each tag's numbers consecutive and in order
# (none lost, none twice; in r from its first retained line), every
# acknowledged line present, next_offset = lines (t).
#
# Then the two-crash sequence: a cut that leaves a torn (garbled) tail; a
# remount whose recovery cuts it; new acknowledged appends that roll into
# a new segment; a second cut dropping everything unsynced; a remount:
# every acknowledged line must be there.
#
# POWERLOSS_SECONDS (default 60) bounds the rounds; POWERLOSS_SOAK_SECONDS
# overrides it for soak runs.  Each check logs the round and the cut
# before it (mode, seed: FLUXFS_CRASHSIM_SEED replays a cut, not the
# writers' timing); POWERLOSS_KEEP=DIR keeps the data directory and the
# partitions as read of a failed run there.
. "$(dirname "$0")/rel.sh"

eval "rel_$(declare -f fail)"
fail() {
	if [ -n "${POWERLOSS_KEEP:-}" ] && [ -n "${DATA:-}" ]; then
		mkdir -p "$POWERLOSS_KEEP"
		cp -a "$DATA" "$WORK"/*.txt "$POWERLOSS_KEEP"/ 2>/dev/null
		cp "$WORK/daemon.log" "$POWERLOSS_KEEP"/ 2>/dev/null
	fi
	rel_fail "$@"
}

BUDGET=${POWERLOSS_SOAK_SECONDS:-${POWERLOSS_SECONDS:-60}}
TEST_TIMEOUT=$((BUDGET + 300))
FSYNC_PROBE="$top_builddir/tests/reliability/fsync_probe"
need_tool "$TORTURE_WRITER"
need_tool "$FSYNC_PROBE"
[ -x "$FLUXCTL" ] || fail "fluxctl is not built"

mount_start -o segment_bytes=16k
daemon_stop_any || fail "first clean unmount"

need_crashsim

mkdir -p "$WORK/acks"
declare -A ACK_PART=()
ROUND=0
CUTS=0
MODE=""
SEED=""

# pl_mount MODE SEED OPTS: mount on crashsim (MODE "" mounts plainly).
pl_mount() {
	FLUXFS_OPTS=(-o "$3")
	MODE=$1
	SEED=$2
	if [ -n "$1" ]; then
		export FLUXFS_CRASHSIM=1 FLUXFS_CRASHSIM_MODE=$1 \
			FLUXFS_CRASHSIM_SEED=$2
	fi
	mount_launch
	unset FLUXFS_CRASHSIM FLUXFS_CRASHSIM_MODE FLUXFS_CRASHSIM_SEED
}

# pl_cut: the power cut; the daemon must exit 0 at once.
pl_cut() {
	local status=0 i
	kill -USR2 "$FLUXFS_PID" || fail "cannot signal the daemon"
	for i in $(seq 1 100); do
		kill -0 "$FLUXFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$FLUXFS_PID" 2>/dev/null &&
		fail "round $ROUND: daemon still running 10 s after the cut"
	wait "$FLUXFS_PID" 2>/dev/null || status=$?
	FLUXFS_PID=""
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	is_mounted "$MNT" && fail "dead mount still present"
	[ $status -eq 0 ] || fail "round $ROUND: power cut exited with $status"
	CUTS=$((CUTS + 1))
}

# start_writer PART TAG EVERY: a writer in the background ($WPIDS).
start_writer() {
	ACK_PART[$2]=$1
	timeout -s KILL 30 "$TORTURE_WRITER" "$MNT/$1" "$2" "$3" \
		"$WORK/acks/$2" >"$WORK/acks/$2.out" 2>&1 &
	WPIDS+=($!)
}

wait_writers() {
	local pid rc
	for pid in "${WPIDS[@]}"; do
		rc=0
		wait "$pid" || rc=$?
		# 1: stopped by the dead mount; 137: timeout killed a hang.
		[ $rc -le 1 ] || fail "round $ROUND: writer exited with $rc (hang?)"
	done
	WPIDS=()
}

# check_retained FILE COUNTS: like check_lines, but a tag may start at
# any number (retention removed its head); consecutive from there.
# COUNTS gets "TAG NEXT" (one past its last number).
check_retained() {
	local out
	out=$(awk -v counts="$2" '
	{
		n = split($0, f, / /)
		if (n != 3 || f[2] !~ /^[0-9]+$/ || f[3] !~ /^x*$/ ||
		    length(f[3]) != (f[2] * 7) % 61) {
			printf "line %d is not a whole message: \"%s\"\n", NR, substr($0, 1, 80)
			exit 1
		}
		if ((f[1] in next_n) && f[2] + 0 != next_n[f[1]]) {
			printf "line %d: %s %s follows %s %d (lost, repeated or reordered)\n", NR, f[1], f[2], f[1], next_n[f[1]] - 1
			exit 1
		}
		next_n[f[1]] = f[2] + 1
	}
	END {
		for (t in next_n)
			print t, next_n[t] > counts
		close(counts)
	}' "$1" 2>&1) || fail "$1: $out"
	[ -e "$2" ] || : >"$2"
}

# make_topics: topics t and r (created under crashsim, so their creation
# must be durable by the time mkdir returns).
make_topics() {
	[ -d "$MNT/t" ] || mkdir "$MNT/t" || fail "round $ROUND: mkdir t"
	if [ ! -d "$MNT/r" ]; then
		mkdir "$MNT/r" || fail "round $ROUND: mkdir r"
		setfattr -n user.fluxfs.retention_bytes -v 49152 "$MNT/r" ||
			fail "setfattr retention_bytes"
	fi
}

# rename_step: a partition written and fsynced (fsync_probe: four lines),
# renamed to t/mROUND; the one of two rounds ago removed.  Once rename
# and unlink return, fluxfs has synced the directories: a cut must keep
# the new name and not bring a removed partition back.
declare -A RENAMED=() REMOVED=() TOPICS=()
rename_step() {
	local out
	out=$("$FSYNC_PROBE" "$MNT/t/s" 2>&1) || fail "round $ROUND: fsync_probe: $out"
	[ "$out" = "a=ok b=ok a2=ok b2=ok c_close=ok d=ok" ] ||
		fail "round $ROUND: fsync_probe: $out"
	mv "$MNT/t/s" "$MNT/t/m$ROUND" || fail "round $ROUND: mv"
	RENAMED[m$ROUND]=1
	# A new topic per round: its mkdir must be durable when it returns.
	mkdir "$MNT/k$ROUND" || fail "round $ROUND: mkdir k$ROUND"
	out=$("$FSYNC_PROBE" "$MNT/k$ROUND/0" 2>&1) ||
		fail "round $ROUND: fsync_probe k$ROUND: $out"
	TOPICS[k$ROUND]=1
	if [ -n "${RENAMED[m$((ROUND - 2))]:-}" ]; then
		rm "$MNT/t/m$((ROUND - 2))" || fail "round $ROUND: rm"
		unset "RENAMED[m$((ROUND - 2))]"
		REMOVED[m$((ROUND - 2))]=1
	fi
}

check_renamed() {
	local m
	for m in "${!RENAMED[@]}"; do
		[ -e "$MNT/t/$m" ] ||
			fail "$1: renamed partition t/$m lost (previous cut: $PREV)"
		[ "$(cat "$MNT/t/$m")" = "$(printf 'probe a\nprobe b\nprobe c\nprobe d')" ] ||
			fail "$1: t/$m: wrong contents (previous cut: $PREV)"
	done
	for m in "${!REMOVED[@]}"; do
		[ ! -e "$MNT/t/$m" ] ||
			fail "$1: removed partition t/$m came back (previous cut: $PREV)"
	done
	[ ! -e "$MNT/t/s" ] ||
		fail "$1: t/s, renamed away, came back (previous cut: $PREV)"
	for m in "${!TOPICS[@]}"; do
		[ "$(cat "$MNT/$m/0" 2>/dev/null)" = "$(printf 'probe a\nprobe b\nprobe c\nprobe d')" ] ||
			fail "$1: topic $m lost its fsynced partition (previous cut: $PREV)"
	done
}

# check_all WHAT: every acknowledged line of every round so far.
check_all() {
	local part f tag acked got sb safe
	log "$1: checking (previous cut: $PREV)"
	check_renamed "$1"
	for part in t/0 t/1; do
		safe=${part/\//_}
		f="$MNT/$part"
		rm -f "$WORK/$safe.txt" "$WORK/$safe.counts"
		[ -e "$f" ] || continue
		cat "$f" >"$WORK/$safe.txt" ||
			fail "$1: reading $part after recovery (mode $MODE seed $SEED)"
		check_lines "$WORK/$safe.txt" "$WORK/$safe.counts"
		xassert "$f" next_offset "$LINES_TOTAL" \
			"$1: offsets contiguous in $part"
	done
	rm -f "$WORK/r_0.txt" "$WORK/r_0.read" "$WORK/r_0.counts"
	f="$MNT/r/0"
	if [ -e "$f" ]; then
		xget sb "$f" start_byte
		tail -c +$((sb + 1)) "$f" >"$WORK/r_0.read" ||
			fail "$1: reading r/0 after recovery"
		# Retention may move the start while tail reads (the
		# maintenance thread deletes a segment after the mount):
		# what tail read below the new start came back as the
		# hole's zeros.  Keep what lies above the new start.
		xget sb2 "$f" start_byte
		tail -c +$((sb2 - sb + 1)) "$WORK/r_0.read" >"$WORK/r_0.txt"
		check_retained "$WORK/r_0.txt" "$WORK/r_0.counts"
	fi
	for tag in "${!ACK_PART[@]}"; do
		part=${ACK_PART[$tag]}
		safe=${part/\//_}
		acked=$(cat "$WORK/acks/$tag" 2>/dev/null || echo 0)
		got=0
		[ -e "$WORK/$safe.counts" ] &&
			got=$(count_of "$tag" "$WORK/$safe.counts")
		if [ "$part" = r/0 ] && [ "$got" -eq 0 ]; then
			# Retention may have taken all of an old writer's lines;
			# the last round's are in the active segment.
			[ "$tag" = "${tag#i$((ROUND - 1))w}" ] || [ "$acked" -eq 0 ] ||
				fail "$1: $tag acknowledged $acked lines in r/0, none survived"
			continue
		fi
		[ "$got" -ge "$acked" ] || {
			grep -E "power cut|recovered|bad crc" "$WORK/daemon.log" | tail -4
			fail "$1: $tag acknowledged $acked lines in $part, $got survived (previous cut: $PREV)"
		}
	done
}

MODES=(prefix random drop garble)
START=$(date +%s)
PREV="none"
while [ $(($(date +%s) - START)) -lt "$BUDGET" ]; do
	ROUND=$((ROUND + 1))
	opts="segment_bytes=16k"
	[ $((ROUND % 2)) -eq 0 ] && opts="$opts,compression=lz4"
	[ $((ROUND % 3)) -eq 1 ] && opts="$opts,flush_ms=0"
	if [ $((ROUND % 5)) -eq 0 ]; then
		pl_mount "" "" "$opts"
		check_all "round $ROUND (plain remount)"
		daemon_stop_any || fail "round $ROUND: clean unmount"
		out=$("$FLUXCTL" verify "$DATA" 2>&1) ||
			fail "fluxctl verify after round $ROUND: $out"
		continue
	fi
	mode=${MODES[$((ROUND % 4))]}
	seed=$((RANDOM * 32768 + RANDOM + 1))
	pl_mount "$mode" "$seed" "$opts"
	recovery_cut=$((ROUND % 4 == 3))
	if [ $recovery_cut -eq 0 ]; then
		check_all "round $ROUND"
		make_topics
		rename_step
	fi
	WPIDS=()
	start_writer t/0 "i${ROUND}w0" $((1 + $(rand_below 20)))
	start_writer t/0 "i${ROUND}w1" $((1 + $(rand_below 20)))
	start_writer t/1 "i${ROUND}w2" $((1 + $(rand_below 20)))
	start_writer r/0 "i${ROUND}w3" $((1 + $(rand_below 20)))
	if [ $recovery_cut -eq 1 ]; then
		sleep "0.0$(printf '%02d' $(rand_below 40))"
	else
		sleep "0.$(printf '%03d' $((20 + $(rand_below 580))))"
	fi
	pl_cut
	PREV="round $ROUND mode $mode seed $seed $(grep 'power cut' "$WORK/daemon.log" | tail -1 | sed 's/.*: 0; //')"
	wait_writers
done
log "$ROUND rounds, $CUTS power cuts in ${BUDGET}s"

# The two-crash sequence, with flush_ms=-1 so only fsync syncs.  Cut 1
# garbles every unsynced write: a writer acknowledged by fsync, then 200
# lines nobody fsyncs, make a torn tail certain.
TWO="segment_bytes=16k,flush_ms=-1"
ROUND=$((ROUND + 1))
pl_mount "" "" "$TWO"
check_all "before the two-crash sequence"
xget segs0 "$MNT/t/0" segments
daemon_stop_any || fail "clean unmount before the two-crash sequence"
log "two-crash: cut 1 (garble) over an unsynced tail"
pl_mount garble 11 "$TWO"
WPIDS=()
start_writer t/0 "i${ROUND}w0" 5
wait_for 10 test -s "$WORK/acks/i${ROUND}w0" || fail "two-crash: no acknowledgement"
kill "${WPIDS[0]}"
wait "${WPIDS[0]}"
WPIDS=()
ACK_PART[i${ROUND}w1]=t/0
"$TORTURE_WRITER" "$MNT/t/0" "i${ROUND}w1" 100000 "$WORK/acks/i${ROUND}w1" 200 \
	>"$WORK/acks/i${ROUND}w1.out" 2>&1 || fail "two-crash: unsynced writer failed"
pl_cut
PREV="two-crash cut 1 $(grep 'power cut' "$WORK/daemon.log" | tail -1 | sed 's/.*: 0; //')"
# Remount: recovery cuts the garbled tail (under crashsim: its repair is
# itself subject to the next cut).
ROUND=$((ROUND + 1))
before=$(grep -c "recovered\|bad crc" "$WORK/daemon.log")
# segment_ms=1s, and the repaired segment's first message is older than
# that: the first append rolls, before anything syncs the repaired one.
sleep 1.1
log "two-crash: recovery, appends that roll, cut 2 (drop)"
pl_mount drop 12 "$TWO,segment_ms=1s"
check_all "two-crash: after cut 1"
after=$(grep -c "recovered\|bad crc" "$WORK/daemon.log")
[ "$after" -gt "$before" ] || fail "two-crash: recovery repaired nothing (no torn tail?)"
xget segs1 "$MNT/t/0" segments
WPIDS=()
start_writer t/0 "i${ROUND}w0" 600
wait_for 20 sh -c "[ \$(cat '$WORK/acks/i${ROUND}w0' 2>/dev/null || echo 0) -ge 1200 ]" ||
	fail "two-crash: no acknowledgement after recovery"
xget segs2 "$MNT/t/0" segments
[ "$segs2" -gt "$segs1" ] || fail "two-crash: no segment roll after recovery"
pl_cut
PREV="two-crash cut 2 $(grep 'power cut' "$WORK/daemon.log" | tail -1 | sed 's/.*: 0; //')"
wait_writers
ROUND=$((ROUND + 1))
log "two-crash: remount after cut 2 (segments $segs0 -> $segs1 -> $segs2)"
pl_mount "" "" "$TWO"
check_all "two-crash: after cut 2"
daemon_stop_any || fail "clean unmount after the two-crash sequence"
out=$("$FLUXCTL" verify "$DATA" 2>&1) ||
	fail "fluxctl verify after the two-crash sequence: $out"
log "two-crash sequence: ok (segments $segs0 -> $segs1 -> $segs2)"
mount_launch
log "ok"
