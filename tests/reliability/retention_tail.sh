#!/bin/bash
# retention_tail.sh - page-cache readers at the end of partitions while
# retention removes segments under them.
#
# On each of two partitions (4 KiB segments, 8 KiB retention, so the
# maintenance thread removes a segment every few writes), four
# torture_writers append whole lines through the page cache (a
# page-cache reader is open first, so they write through it) and one
# stress_follower reads the file from byte 0 at its end like tail -f.
# Checked: from the first retained byte on, each follower saw exactly the
# partition's bytes, and the partition read afterwards is whole lines --
# no NULs where a line was appended while retention dropped the readers'
# cached pages of the removed head.
. "$(dirname "$0")/rel.sh"

SECS=${RETENTION_TAIL_SECONDS:-5}
FOLLOWER="$top_builddir/tests/reliability/stress_follower"
need_tool "$TORTURE_WRITER"
need_tool "$FOLLOWER"

# In a build with fault injection, every data write of the daemon sleeps
# first: the window between the kernel's copy of a WRITE into its pages
# and the append grows from microseconds to milliseconds, so a drop that
# reaches the tail page lands in it often enough to be seen.
if grep -q '^#define FLUXFS_FAULT_INJECTION 1' "$top_builddir/autoconfig.h"; then
	export FLUXFS_FAULTS=p=0,delay_us=${RETENTION_TAIL_DELAY_US:-3000}
else
	log "no fault injection compiled in: no delay, the race is rarely hit"
fi
mount_start -o segment_bytes=4k,retention_bytes=8k
mkdir "$MNT/t" || fail "mkdir topic"
fpids=()
for part in 0 1; do
	: >>"$MNT/t/$part" || fail "create partition $part"
	"$FOLLOWER" follow "$MNT/t/$part" "$WORK/seen-$part" \
		"$WORK/stop-$part" 0 2>"$WORK/follower-$part.err" &
	fpids+=($!)
	# The writers must open beside the reader, to write through it.
	wait_for 5 sh_c "ls -l /proc/$!/fd 2>/dev/null | grep -q '$MNT/t/$part'" ||
		fail "follower $part did not open its partition"
done
wpids=()
for w in $(seq 0 7); do
	TORTURE_SECONDS=$SECS timeout -s KILL $((SECS + 30)) "$TORTURE_WRITER" \
		"$MNT/t/$((w % 2))" "w$w" 64 "$WORK/w$w.ack" >"$WORK/w$w.out" 2>&1 &
	wpids+=($!)
done
for w in $(seq 0 7); do
	wait "${wpids[$w]}" || fail "writer $w: $(cat "$WORK/w$w.out")"
done
for part in 0 1; do
	fsize "$MNT/t/$part" >"$WORK/stop-$part"
	wait "${fpids[$part]}" ||
		fail "follower $part: $(cat "$WORK/follower-$part.err")"
done
for part in 0 1; do
	f="$MNT/t/$part"
	for try in $(seq 1 20); do
		xget start "$f" start_byte
		# Retention moves the start before it queues the drop of
		# the pages below it: give that drop a moment, or cat may
		# read the removed bytes from the followers' cached pages.
		sleep 0.3
		cat "$f" >"$WORK/final-$part" || fail "reading partition $part"
		xget again "$f" start_byte
		[ "$start" != "$again" ] || break
		sleep 0.5
	done
	[ "$start" = "$again" ] ||
		fail "partition $part: start_byte kept moving after the writers stopped"
	[ "$start" -gt 0 ] ||
		fail "partition $part: retention removed nothing (start_byte 0)"
	out=$("$FOLLOWER" check "$WORK/seen-$part" "$WORK/final-$part" \
		"$start" 2>&1 >/dev/null) || fail "follower of partition $part: $out"
	log "partition $part: $(fsize "$WORK/final-$part") bytes, retained from byte $start"
done
log "ok"
