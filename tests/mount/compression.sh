#!/bin/bash
# compression.sh - sealed segments compressed (compression=lz4|gzip|zstd
# on a topic) still read back exactly through the mount, at any offset and
# after a remount, and on disk are standard streams that lz4cat, zcat and
# zstdcat turn back into the partition's bytes; fluxctl verify finds them
# clean.  A read of compressed data counts as one read in .metrics, of the
# bytes it returned.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

CODECS="lz4 gzip zstd"
# ext CODEC: the suffix of its compressed segments.
ext() {
	case $1 in lz4) echo lz4 ;; gzip) echo gz ;; zstd) echo zst ;; esac
}

mount_start -o segment_bytes=16k
for c in $CODECS; do
	mkdir "$MNT/$c" || fail "mkdir topic $c"
	setfattr -n user.fluxfs.compression -v "$c" "$MNT/$c" || fail "setfattr compression=$c"
	gen_lines 4000 "$c" >"$WORK/ref-$c"
	split -a 4 -l 100 "$WORK/ref-$c" "$WORK/c-$c."
	for f in "$WORK/c-$c."*; do
		cat "$f" >>"$MNT/$c/0" || fail "append $f"
	done
done

# compressed_count TOPIC: sealed segments compressed on disk so far.
compressed_count() {
	ls "$DATA/$1/0/" | grep -c "\.$(ext "$1")\$"
}
for c in $CODECS; do
	xget segs "$MNT/$c/0" segments
	[ "$segs" -gt 4 ] || fail "only $segs segments in topic $c"
	has_all() { [ "$(compressed_count "$1")" -ge $(($2 - 1)) ]; }
	wait_for 10 has_all "$c" "$segs" ||
		fail "$c: $(compressed_count "$c") of $((segs - 1)) sealed segments compressed after 10 s: $(ls "$DATA/$c/0")"
	packed=$(cat "$DATA/$c/0/"*."$(ext "$c")" | wc -c)
	raw=$(($(fsize "$WORK/ref-$c") - $(cat "$DATA/$c/0/"*.log | wc -c)))
	log "$c: $(compressed_count "$c") sealed segments, $raw bytes stored in $packed"
	[ "$packed" -lt "$raw" ] || fail "$c: $raw bytes of repetitive text took $packed bytes compressed"
	same_file "$WORK/ref-$c" "$MNT/$c/0" "$c partition read through compressed segments"
	size=$(fsize "$WORK/ref-$c")
	for off in 1 16383 16384 40000 $((size - 10)) \
		$(((RANDOM * 32768 + RANDOM) % size)) \
		$(((RANDOM * 32768 + RANDOM) % size)) \
		$(((RANDOM * 32768 + RANDOM) % size)); do
		assert_eq "$(tail -c +$((off + 1)) "$WORK/ref-$c" | head -c 3000 | md5sum)" \
			"$(dd if="$MNT/$c/0" bs=3000 skip="$off" iflag=skip_bytes count=1 2>/dev/null | md5sum)" \
			"$c: 3000 bytes at offset $off"
	done
done

# counter NAME TOPIC: the value of NAME for TOPIC/0 in .metrics.
counter() {
	grep "^$1{topic=\"$2\",partition=\"0\"} " "$MNT/.metrics" | awk '{ print $NF }'
}
# One read(2) of the follow view (direct_io) is one READ request: it must
# count once, whether the bytes are copied out of compressed blocks or not.
for c in $CODECS; do
	for off in 1 16383; do
		reads=$(counter fluxfs_reads_total "$c")
		bytes=$(counter fluxfs_bytes_read_total "$c")
		[ -n "$reads" ] && [ -n "$bytes" ] || fail "$c: no read counters in .metrics"
		assert_eq "$(tail -c +$((off + 1)) "$WORK/ref-$c" | head -c 3000 | md5sum)" \
			"$(dd if="$MNT/.follow/$c/0" bs=3000 skip="$off" iflag=skip_bytes count=1 2>/dev/null | md5sum)" \
			"$c: 3000 bytes at offset $off of the follow view"
		assert_eq $((reads + 1)) "$(counter fluxfs_reads_total "$c")" \
			"$c: reads counted for one read of compressed bytes at $off"
		assert_eq $((bytes + 3000)) "$(counter fluxfs_bytes_read_total "$c")" \
			"$c: bytes counted for one read of compressed bytes at $off"
	done
done

# On disk: standard streams, in segment order, then the active .log.
(cd "$DATA/lz4/0" && for f in $(ls | grep -E '^[0-9]{20}\.(log|lz4)$'); do
	case $f in *.lz4) lz4cat "$f" ;; *) cat "$f" ;; esac
done) >"$WORK/disk-lz4"
same_file "$WORK/ref-lz4" "$WORK/disk-lz4" "lz4cat of the segments"
(cd "$DATA/gzip/0" && for f in $(ls | grep -E '^[0-9]{20}\.(log|gz)$'); do
	case $f in *.gz) zcat "$f" ;; *) cat "$f" ;; esac
done) >"$WORK/disk-gzip"
same_file "$WORK/ref-gzip" "$WORK/disk-gzip" "zcat of the segments"
(cd "$DATA/zstd/0" && for f in $(ls | grep -E '^[0-9]{20}\.(log|zst)$'); do
	case $f in *.zst) zstdcat "$f" ;; *) cat "$f" ;; esac
done) >"$WORK/disk-zstd"
same_file "$WORK/ref-zstd" "$WORK/disk-zstd" "zstdcat of the segments"

# zstd at a chosen level: the same appends as topic zstd (so the same
# segments) at level 19 take fewer bytes than at the default level, and
# still read back and zstdcat back.  A level zstd lacks, and a level for
# another codec, are EINVAL.
mkdir "$MNT/zlevel" || fail "mkdir topic zlevel"
setfattr -n user.fluxfs.compression -v zstd:19 "$MNT/zlevel" || fail "setfattr compression=zstd:19"
assert_eq "zstd:19" "$(getfattr --only-values -n user.fluxfs.compression "$MNT/zlevel")" "compression shown with its level"
for f in "$WORK/c-zstd."*; do
	cat "$f" >>"$MNT/zlevel/0" || fail "append $f to zlevel"
done
xget segs "$MNT/zlevel/0" segments
zl_all() { [ "$(ls "$DATA/zlevel/0/" | grep -c '\.zst$')" -ge $((segs - 1)) ]; }
wait_for 10 zl_all || fail "zstd:19: sealed segments not compressed after 10 s: $(ls "$DATA/zlevel/0")"
same_file "$WORK/ref-zstd" "$MNT/zlevel/0" "zstd:19 partition read back"
(cd "$DATA/zlevel/0" && for f in $(ls | grep -E '^[0-9]{20}\.(log|zst)$'); do
	case $f in *.zst) zstdcat "$f" ;; *) cat "$f" ;; esac
done) >"$WORK/disk-zlevel"
same_file "$WORK/ref-zstd" "$WORK/disk-zlevel" "zstdcat of the zstd:19 segments"
n3=$(cat "$DATA/zstd/0/"*.zst | wc -c)
n19=$(cat "$DATA/zlevel/0/"*.zst | wc -c)
log "the same segments: $n3 bytes at zstd's default level, $n19 at 19"
[ "$n19" -lt "$n3" ] || fail "zstd:19 took $n19 bytes, the default level $n3"
for bad in zstd:0 zstd:20 zstd:03 gzip:6 lz4:1; do
	if setfattr -n user.fluxfs.compression -v "$bad" "$MNT/zlevel" 2>"$WORK/err"; then
		fail "compression=$bad accepted"
	fi
	grep -q "Invalid argument" "$WORK/err" || fail "compression=$bad: $(cat "$WORK/err")"
done
assert_eq "zstd:19" "$(getfattr --only-values -n user.fluxfs.compression "$MNT/zlevel")" "level kept after refusals"

mount_restart
for c in $CODECS; do
	same_file "$WORK/ref-$c" "$MNT/$c/0" "$c partition after remount"
done
assert_eq "zstd:19" "$(getfattr --only-values -n user.fluxfs.compression "$MNT/zlevel")" "zstd level after remount"

# fluxctl reads the compressed segments offline: verify decodes every
# block and checks every CRC, dump --messages gives back every line.
mount_stop || fail "clean unmount"
out=$("$FLUXCTL" verify "$DATA" 2>&1) || fail "fluxctl verify: $out"
for c in $CODECS; do
	echo "$out" | grep -q "^$c/0: ok" || fail "verify of $c/0: $out"
done
n=$("$FLUXCTL" dump --messages "$DATA/zstd/0" | grep -c '^| offset:')
assert_eq 4000 "$n" "messages fluxctl dump decodes from zstd segments"
log "ok"
