#!/bin/bash
# stress.sh - 8 writers and 4 followers on 2 partitions for a fixed time,
# with 16 KiB segments, retention (256 KiB per partition) and lz4
# compression of sealed segments all active.
#
# Writers: torture_writer, four per partition, fsync every 1-16 lines,
# for STRESS_SECONDS (default 20).  Followers: two per partition, one
# fast and one slow (10 ms after each read, so retention overtakes it).
# On a mount with a follow view, one of each pair reads MNT/.follow/t/P
# (partition 0: the fast one; partition 1: the slow one) and the other
# reads the partition file itself through the page cache, polled at its
# end like tail -f; without a follow view all four read the files (the
# log says which).  When the writers are done, each
# follower is told the final size and must reach exactly it.  Checked:
#   - the partition (read in full) is whole lines; per writer, the
#     numbers run without a gap to the last line the writer wrote
#     (retention may have removed a head, never a middle or the tail),
#     and that last line is at least the last fsync-acknowledged one (a
#     writer none of whose lines is retained is logged and skipped);
#   - every follower saw exactly the partition's bytes from its first
#     retained byte (user.fluxfs.start_byte) on; below it, where
#     retention removed data, it saw NULs or, where it read before the
#     removal, well-formed lines in per-writer order ("modulo
#     retention", precisely: stress_follower check);
#   - retention and compression actually happened (start_byte > 0,
#     segments compressed per .metrics), else the test proves less and
#     fails;
#   - fluxctl verify DATA is clean after the unmount.
. "$(dirname "$0")/rel.sh"

SECS=${STRESS_SECONDS:-20}
TEST_TIMEOUT=$((SECS + 120))
FOLLOWER="$top_builddir/tests/reliability/stress_follower"
need_tool "$TORTURE_WRITER"
need_tool "$FOLLOWER"

mount_start -o segment_bytes=16k,retention_bytes=256k,compression=lz4,flush_ms=100
mkdir "$MNT/t" || fail "mkdir topic"
: >>"$MNT/t/0" && : >>"$MNT/t/1" || fail "create partitions"
mode=file
[ -e "$MNT/.follow/t/0" ] && mode=follow
log "followers: $([ $mode = follow ] && echo "two on the follow view, two on the partition files" || echo "all four on the partition files (no .follow view)")"

fpids=()
for part in 0 1; do
	for speed in 0 10; do
		src="$MNT/t/$part"
		# With a follow view, each partition gets one follower of each
		# kind, fast and slow alternating: p0 fast=view slow=file, p1
		# fast=file slow=view.
		[ $mode = follow ] && [ $(((part + speed / 10) % 2)) -eq 0 ] &&
			src="$MNT/.follow/t/$part"
		"$FOLLOWER" follow "$src" "$WORK/seen-$part-$speed" \
			"$WORK/stop-$part" "$speed" 2>"$WORK/follower-$part-$speed.err" &
		fpids+=($!)
	done
done
wpids=()
for w in $(seq 0 7); do
	TORTURE_SECONDS=$SECS timeout -s KILL $((SECS + 30)) "$TORTURE_WRITER" \
		"$MNT/t/$((w % 2))" "w$w" $((1 + w * 2)) "$WORK/w$w.ack" \
		>"$WORK/w$w.out" 2>&1 &
	wpids+=($!)
done
for i in $(seq 0 7); do
	wait "${wpids[$i]}" || fail "writer $i: $(cat "$WORK/w$i.out")"
done
for part in 0 1; do
	fsize "$MNT/t/$part" >"$WORK/stop-$part"
done
for i in 0 1 2 3; do
	wait "${fpids[$i]}" || fail "follower $i: $(cat "$WORK"/follower-*.err)"
done
grep -q '^fluxfs_segments_compressed_total [1-9]\|compressed.* [1-9]' "$MNT/.metrics" ||
	log "note: .metrics shows no compressed segment"

total_lines=0
for part in 0 1; do
	f="$MNT/t/$part"
	# Retention runs on the daemon's own schedule and may still remove a
	# segment after the writers stopped: take a copy between two equal
	# readings of start_byte.
	for try in $(seq 1 20); do
		xget start "$f" start_byte
		cat "$f" >"$WORK/final-$part" || fail "reading partition $part"
		xget again "$f" start_byte
		[ "$start" != "$again" ] || break
		sleep 0.5
	done
	[ "$start" = "$again" ] || fail "partition $part: start_byte kept moving after the writers stopped"
	[ "$start" -gt 0 ] || fail "partition $part: retention removed nothing (start_byte 0)"
	[ "$(fsize "$WORK/final-$part")" -eq "$(cat "$WORK/stop-$part")" ] ||
		fail "partition $part grew after the writers stopped"
	for speed in 0 10; do
		out=$("$FOLLOWER" check "$WORK/seen-$part-$speed" "$WORK/final-$part" "$start" 2>&1 >"$WORK/next-$part") ||
			fail "follower of partition $part (delay $speed ms): $out"
	done
	for w in $(seq "$part" 2 7); do
		set -- $(tail -n 1 "$WORK/w$w.out")
		got=$(count_of "w$w" "$WORK/next-$part")
		total_lines=$((total_lines + $2))
		if [ "$got" -eq 0 ]; then
			# Its last lines are older than the retained window
			# (a writer stuck in fsync at the end): nothing to check.
			log "writer w$w: no line retained, not checked"
			continue
		fi
		assert_eq "$2" "$got" "writer w$w: lines written vs last line in partition $part"
		[ "$got" -ge "$3" ] || fail "writer w$w: acknowledged $3, last line $got"
	done
	log "partition $part: $(fsize "$WORK/final-$part") bytes, retained from byte $start"
done
grep -E '^fluxfs_(segments|bytes)' "$MNT/.metrics" | head -n 6 | sed 's/^/  /'
mount_stop || fail "clean unmount"
out=$("$FLUXCTL" verify "$DATA" 2>&1) || fail "fluxctl verify: $out"
ls "$DATA"/t/0 | grep -q '\.lz4$' || fail "no segment was compressed"
log "$SECS s: $total_lines lines by 8 writers, 4 followers ($mode)"
mount_launch
log "ok"
