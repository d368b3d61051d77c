#!/bin/bash
# test-limit: 700 (tests/timelimit.sh)
# crash_torture.sh - kill -9 the daemon while writers append and fsync,
# remount, and check nothing acknowledged was lost and nothing torn is
# visible.
#
# Each iteration mounts the same data directory (small segments; lz4
# compression and flush_ms vary), starts writers (two on partition 0, one
# on partition 1, each fsyncing every EVERY lines and recording what fsync
# acknowledged outside the mount), SIGKILLs the daemon after a random
# 50-600 ms, drops the dead mount with fusermount3 -uz, remounts (recovery
# runs) and checks, for every writer of every iteration so far:
#   - each partition is whole lines "TAG N x..x", each tag's N 0,1,2,...
#     in order (no partial line, no gap, no reorder); reading it whole
#     also proves every CRC on the way is good (a bad one reads EIO);
#   - every acknowledged line is there (count >= acked);
#   - user.fluxfs.next_offset equals the number of lines (contiguous
#     message offsets);
# then unmounts cleanly and runs "fluxctl verify DATA" (must exit 0).
# Each mount gets a small descriptor budget (fd_budget): what the two
# written partitions hold plus room for 8 more, while a churn loop
# appends round-robin to 24 others, so partitions are closed and opened
# again all the time, and killed in the middle of it; every churn append
# that returned must be there after the remount.
# TORTURE_ITERATIONS (default 30) for soak runs.
. "$(dirname "$0")/rel.sh"

ITER=${TORTURE_ITERATIONS:-30}
TEST_TIMEOUT=$((60 + ITER * 10))
need_tool "$TORTURE_WRITER"
[ -x "$FLUXCTL" ] || fail "fluxctl is not built"

mount_start -o segment_bytes=16k
daemon_stop_any || fail "first clean unmount"
mkdir -p "$WORK/acks"
declare -A ACK_PART=()
acked_total=0
kills=0
idle_closes=0
for it in $(seq 1 "$ITER"); do
	# Descriptors the two written partitions hold: a directory, and a
	# .log and .idx per segment; then room for 8 more.
	segs=$(ls "$DATA/t/0" "$DATA/t/1" 2>/dev/null | grep -c '\.idx$')
	budget=$((2 + 2 * (segs + 2) + 8 * 3))
	opts="segment_bytes=16k,fd_budget=$budget"
	[ $((it % 3)) -eq 0 ] && opts="$opts,compression=lz4"
	[ $((it % 4)) -eq 1 ] && opts="$opts,flush_ms=0"
	FLUXFS_OPTS=(-o "$opts")
	mount_launch
	[ -d "$MNT/t" ] || mkdir "$MNT/t" || fail "mkdir topic"
	pids=()
	for w in 0 1 2; do
		tag="i${it}w$w"
		part=$((w / 2))
		ACK_PART[$tag]=$part
		every=$((1 + $(rand_below 20)))
		timeout -s KILL 30 "$TORTURE_WRITER" "$MNT/t/$part" "$tag" \
			"$every" "$WORK/acks/$tag" >"$WORK/acks/$tag.out" 2>&1 &
		pids+=($!)
	done
	[ -d "$MNT/c" ] || mkdir "$MNT/c" || fail "mkdir churn topic"
	(
		k=0
		while :; do
			p=$((k % 24))
			if echo "c$it $k" >>"$MNT/c/$p" 2>"$WORK/churn.err"; then
				echo "$p c$it $k" >>"$WORK/churn.acks"
			elif grep -q "Too many open files" "$WORK/churn.err"; then
				echo emfile >>"$WORK/churn.emfile"
			else
				break # the mount is gone
			fi
			k=$((k + 1))
		done
	) &
	churn=$!
	sleep "0.$(printf '%03d' $((50 + $(rand_below 550))))"
	closes=$(awk '$1 == "fluxfs_idle_closes_total" { print $2 }' "$MNT/.metrics")
	idle_closes=$((idle_closes + closes))
	daemon_kill
	wait "$churn"
	kills=$((kills + 1))
	for pid in "${pids[@]}"; do
		wait "$pid"
		rc=$?
		# 1: stopped by the dead mount; 137: timeout killed a hang.
		[ $rc -le 1 ] || fail "writer exited with $rc (hang?)"
	done

	mount_launch
	total=0
	for part in 0 1; do
		f="$MNT/t/$part"
		[ -e "$f" ] || continue
		cat "$f" >"$WORK/p$part.txt" ||
			fail "reading partition $part after recovery (iteration $it)"
		check_lines "$WORK/p$part.txt" "$WORK/p$part.counts"
		xassert "$f" next_offset "$LINES_TOTAL" \
			"offsets contiguous in partition $part (iteration $it)"
	done
	# Every churn append that returned survived the kill.
	for p in $(seq 0 23); do
		[ -e "$MNT/c/$p" ] || continue
		awk -v p=$p '$1 == p { print $2 " " $3 }' "$WORK/churn.acks" | sort >"$WORK/churn.want"
		sort "$MNT/c/$p" >"$WORK/churn.got" ||
			fail "reading churn partition $p (iteration $it)"
		missing=$(comm -23 "$WORK/churn.want" "$WORK/churn.got" | head -3)
		[ -z "$missing" ] ||
			fail "iteration $it: churn partition $p lost acknowledged lines: $missing"
	done
	for tag in "${!ACK_PART[@]}"; do
		part=${ACK_PART[$tag]}
		acked=$(cat "$WORK/acks/$tag")
		got=0
		[ -e "$WORK/p$part.counts" ] && got=$(count_of "$tag" "$WORK/p$part.counts")
		[ "$got" -ge "$acked" ] ||
			fail "iteration $it: $tag acknowledged $acked lines, $got survived"
		[ "$tag" = "${tag#i${it}w}" ] || acked_total=$((acked_total + acked))
	done
	daemon_stop_any || fail "clean unmount after recovery (iteration $it)"
	out=$("$FLUXCTL" verify "$DATA" 2>&1) ||
		fail "fluxctl verify after iteration $it: $out"
done
log "churn: $(wc -l <"$WORK/churn.acks") appends acknowledged over 24 partitions," \
	"$(cat "$WORK/churn.emfile" 2>/dev/null | wc -l) refused with EMFILE," \
	"$idle_closes idle partitions closed to make room"
# The budget did make partitions close and open again.
[ "$idle_closes" -gt 0 ] || fail "no partition was closed to make room"
log "iterations $ITER, kills $kills, lines acknowledged $acked_total" \
	"(p0 $(wc -l <"$WORK/p0.txt") lines, p1 $(wc -l <"$WORK/p1.txt" 2>/dev/null || echo 0))"
mount_launch
log "ok"
