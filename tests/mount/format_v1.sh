#!/bin/bash
# format_v1.sh - a data directory of format 1 (host byte order, made by
# the daemon of that time: tests/fixtures/format-v1) is still served: a
# copy of it mounts, every byte of its partitions (raw, lz4 and gzip
# segments) reads back as written, fluxfs.meta is marked format 2 with one
# log line, appends go on in the new format, and fluxctl verify accepts
# the directory before the mount (all format 1) and after it (both).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

FIXTURE="$top_srcdir/tests/fixtures/format-v1"
TOPICS="plain lz4 gzip"

# idx_version FILE: the version field of an .idx header (bytes 8..11,
# little-endian).
idx_version() {
	od -An -tu1 -j8 -N4 "$1" | awk '{ print $1 + 256 * ($2 + 256 * ($3 + 256 * $4)) }'
}

harness_begin
cp -a "$FIXTURE/." "$DATA/" || fail "cannot copy the fixture"
assert_eq "format=1" "$(cat "$DATA/fluxfs.meta")" "fixture's fluxfs.meta"
for t in $TOPICS; do
	for f in "$DATA/$t/0/"*.idx; do
		assert_eq 1 "$(idx_version "$f")" "fixture index version of $f"
	done
	gen_lines 200 "$t" >"$WORK/ref-$t"
done
ls "$DATA/lz4/0/" | grep -q '\.lz4$' || fail "fixture has no lz4 segment"
ls "$DATA/gzip/0/" | grep -q '\.gz$' || fail "fixture has no gzip segment"
[ "$(ls "$DATA/plain/0/" | grep -c '\.log$')" -ge 2 ] || fail "fixture's plain partition has fewer than 2 segments"

# fluxctl reads format 1 as it is.
"$FLUXCTL" verify "$DATA" >"$WORK/verify1" 2>&1 || fail "fluxctl verify of the format 1 fixture: $(cat "$WORK/verify1")"

# The fixture was made with segment_bytes=4k: the same again, so that
# the appends below roll into new segments.
FLUXFS_OPTS=(-o segment_bytes=4k)
mount_launch
log "mounted a copy of the format 1 fixture (pid $FLUXFS_PID)"
for t in $TOPICS; do
	same_file "$WORK/ref-$t" "$MNT/$t/0" "$t/0 of the format 1 fixture"
	xassert "$MNT/$t/0" next_offset 200 "$t/0 messages"
	for off in 1 4000 4096 5000 $(($(fsize "$WORK/ref-$t") - 10)); do
		assert_eq "$(tail -c +$((off + 1)) "$WORK/ref-$t" | head -c 2000 | md5sum)" \
			"$(dd if="$MNT/$t/0" bs=2000 skip="$off" iflag=skip_bytes count=1 2>/dev/null | md5sum)" \
			"$t: 2000 bytes at offset $off"
	done
done
# The fixture predates stored inode numbers: the first mount also gives
# its topics and partitions numbers and records the counter's bound.
assert_eq "format=2" "$(head -n 1 "$DATA/fluxfs.meta")" "fluxfs.meta after the first mount"
grep -q '^ino_next=[0-9]*$' "$DATA/fluxfs.meta" ||
	fail "fluxfs.meta after the first mount has no ino_next: $(cat "$DATA/fluxfs.meta")"
assert_eq 1 "$(grep -c 'data directory format 1 read as is and marked format 2' "$WORK/daemon.log")" \
	"log lines about the format"

# Appends go on in format 2, beside the format 1 segments.
gen_lines 150 more >"$WORK/more"
cat "$WORK/more" >>"$MNT/plain/0" || fail "append to plain/0"
cat "$WORK/ref-plain" "$WORK/more" >"$WORK/ref-plain2"
same_file "$WORK/ref-plain2" "$MNT/plain/0" "plain/0 after an append"
mount_restart
same_file "$WORK/ref-plain2" "$MNT/plain/0" "plain/0 after a remount"
for t in lz4 gzip; do
	same_file "$WORK/ref-$t" "$MNT/$t/0" "$t/0 after a remount"
done
mount_stop || fail "daemon did not stop cleanly"
assert_eq 1 "$(grep -c 'read as is and marked format 2' "$WORK/daemon.log")" \
	"log lines about the format after a second mount"
versions=$(for f in "$DATA/plain/0/"*.idx; do idx_version "$f"; done | sort -u | tr '\n' ' ')
assert_eq "1 2 " "$versions" "index versions in plain/0 (old segments and new)"
"$FLUXCTL" verify "$DATA" >"$WORK/verify2" 2>&1 || fail "fluxctl verify of both formats: $(cat "$WORK/verify2")"
log "ok"
