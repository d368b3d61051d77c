#!/bin/bash
# damage.sh - damage on disk stays where it is.  A data directory is
# damaged while unmounted: a flipped byte in a sealed segment (raw and
# lz4-compressed), a damaged .blk block table (rebuilt from the frame), a
# sealed .log cut short and one zero-extended.  After
# the mount every partition is there; cat of a damaged one fails with an
# I/O error (never a short read taken for the end of the file), dd of the
# ranges before and after the damage gives the original bytes, st_size
# never drops, .metrics counts each damaged batch once, nothing is
# deleted, and fluxctl verify still flags the damage.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

PAGE=4096

# seg_files TOPIC EXT: the partition's segment files with that suffix,
# oldest first.
seg_files() {
	ls "$DATA/$1/0/" | grep -E "^[0-9]{20}\.$2\$" | sed "s|^|$DATA/$1/0/|"
}

# crc_failures TOPIC: the partition's crc_failures counter.
crc_failures() {
	awk -v t="topic=\"$1\"" '$1 ~ /^fluxfs_crc_failures_total/ &&
		index($1, t) { n += $2 } END { print n + 0 }' "$MNT/.metrics"
}

# same_range TOPIC FROM TO: bytes [FROM, TO) of the mounted partition
# equal the reference.
same_range() {
	local want got
	want=$(tail -c +$(($2 + 1)) "$WORK/ref-$1" | head -c $(($3 - $2)) | md5sum)
	got=$(dd if="$MNT/$1/0" bs=64k iflag=skip_bytes,count_bytes \
		skip="$2" count=$(($3 - $2)) 2>/dev/null | md5sum)
	assert_eq "$want" "$got" "$1: bytes $2-$3 read back"
}

# eio_range TOPIC FROM LEN: dd of LEN bytes at FROM fails with EIO.
eio_range() {
	local err
	if err=$(dd if="$MNT/$1/0" of=/dev/null bs=64k \
		iflag=skip_bytes,count_bytes skip="$2" count="$3" 2>&1); then
		fail "$1: dd of $3 bytes at $2 (damaged) succeeded"
	fi
	case $err in
	*"Input/output error"*) ;;
	*) fail "$1: dd of the damaged range: $err" ;;
	esac
}

# cat_fails TOPIC: cat of the whole partition fails with EIO and st_size
# stays what it was.
cat_fails() {
	local size err
	size=$(stat -c %s "$MNT/$1/0")
	assert_eq "$(fsize "$WORK/ref-$1")" "$size" "$1: st_size after mount"
	if err=$(cat "$MNT/$1/0" 2>&1 >"$WORK/out-$1"); then
		fail "$1: cat of a damaged partition exited 0 with $(fsize "$WORK/out-$1") bytes"
	fi
	case $err in
	*"Input/output error"*) ;;
	*) fail "$1: cat: $err" ;;
	esac
	assert_eq "$size" "$(stat -c %s "$MNT/$1/0")" "$1: st_size after cat"
	sleep 1.2 # past the attribute timeout: the kernel asks again
	assert_eq "$size" "$(stat -c %s "$MNT/$1/0")" "$1: st_size a second later"
	if cat "$MNT/$1/0" >/dev/null 2>&1; then
		fail "$1: second cat succeeded"
	fi
}

mount_start -o segment_bytes=16k
for t in flip lz4 short ext; do
	mkdir "$MNT/$t" || fail "mkdir $t"
	[ $t = lz4 ] && { setfattr -n user.fluxfs.compression -v lz4 "$MNT/$t" ||
		fail "setfattr compression"; }
	gen_lines 2000 "$t" >"$WORK/ref-$t"
	split -a 4 -l 100 "$WORK/ref-$t" "$WORK/c-$t."
	for f in "$WORK/c-$t."*; do
		cat "$f" >>"$MNT/$t/0" || fail "append $f"
	done
done
xget segs "$MNT/lz4/0" segments
sealed_lz4() { [ "$(seg_files lz4 lz4 | wc -l)" -ge $((segs - 1)) ]; }
wait_for 10 sealed_lz4 || fail "lz4: sealed segments not compressed: $(ls "$DATA/lz4/0")"
mount_stop || fail "unmount"

# flip: one byte in the middle of the second segment (sealed, raw).
set -- $(seg_files flip log)
[ $# -ge 4 ] || fail "flip: only $# segments"
s0=$(fsize "$1")
s1=$(fsize "$2")
bad=$((s0 + s1 / 2))
printf '\x07' | dd of="$2" bs=1 seek=$((s1 / 2)) conv=notrunc 2>/dev/null
# An index entry covers at most 4 KiB plus one line: the damaged batch
# lies inside [bad - 8 KiB, bad + 8 KiB); reads go through the page
# cache, so the good ranges are page-aligned.
flip_lo=$(((bad - 8192) / PAGE * PAGE))
flip_hi=$(((bad + 8192 + PAGE - 1) / PAGE * PAGE))

# lz4: one byte in the middle of the second compressed segment, whose
# one block holds the whole segment.
set -- $(seg_files lz4 lz4)
l0=$(lz4cat "$1" | wc -c)
l1=$(lz4cat "$2" | wc -c)
z=$(fsize "$2")
printf '\xff' | dd of="$2" bs=1 seek=$((z / 2)) conv=notrunc 2>/dev/null
# and the block table of the third: rebuilt from the frame, all readable
set -- $(seg_files lz4 blk)
[ $# -ge 3 ] || fail "lz4: only $# block tables"
printf '\x5a' | dd of="$3" bs=1 seek=30 conv=notrunc 2>/dev/null
lz4_lo=$((l0 / PAGE * PAGE))
lz4_hi=$(((l0 + l1 + PAGE - 1) / PAGE * PAGE))

# short: the second segment's .log cut by 1000 bytes; ext: the second
# segment's .log zero-extended by 4 KiB.
set -- $(seg_files short log)
h0=$(fsize "$1")
h1=$(fsize "$2")
truncate -s -1000 "$2"
short_log=$2
short_lo=$(((h0 + h1 - 1000 - 8192) / PAGE * PAGE))
short_hi=$(((h0 + h1 + PAGE - 1) / PAGE * PAGE))
set -- $(seg_files ext log)
e1=$(fsize "$2")
truncate -s +4096 "$2"
ext_log=$2
# segments_on_disk TOPIC: the base offsets of its segment files.
segments_on_disk() {
	ls "$DATA/$1/0" | grep -E '^[0-9]{20}\.' | cut -c1-20 | sort -u
}
for t in flip lz4 short ext; do
	segments_on_disk $t >"$WORK/files-$t"
done

"$FLUXCTL" verify "$DATA" >"$WORK/verify" 2>&1 &&
	fail "fluxctl verify passed a damaged data directory: $(cat "$WORK/verify")"
for t in flip lz4 short ext; do
	grep -q "$t/0" "$WORK/verify" || fail "fluxctl verify did not flag $t: $(cat "$WORK/verify")"
done

mount_launch
end=$(fsize "$WORK/ref-flip")
cat_fails flip
same_range flip 0 $flip_lo
same_range flip $flip_hi $end
eio_range flip $((bad - 100)) 200
assert_eq 1 "$(crc_failures flip)" "flip: crc_failures"

end=$(fsize "$WORK/ref-lz4")
cat_fails lz4
same_range lz4 0 $lz4_lo
same_range lz4 $lz4_hi $end
eio_range lz4 $((l0 + 10)) 100
assert_eq 1 "$(crc_failures lz4)" "lz4: crc_failures"
grep -q "damaged block table rebuilt" "$WORK/daemon.log" ||
	fail "lz4: the damaged block table was not rebuilt"

end=$(fsize "$WORK/ref-short")
cat_fails short
same_range short 0 $short_lo
same_range short $short_hi $end
eio_range short $((h0 + h1 - 500)) 100

# zero-extended: nothing refers to the extra bytes; all reads back
same_file "$WORK/ref-ext" "$MNT/ext/0" "ext: partition with a zero-extended sealed segment"

# the damaged files are left as they were
assert_eq $((h1 - 1000)) "$(fsize "$short_log")" "short: size of the damaged .log"
assert_eq $((e1 + 4096)) "$(fsize "$ext_log")" "ext: size of the extended .log"
# nothing was deleted, and the log still takes appends
for t in flip lz4 short ext; do
	segments_on_disk $t >"$WORK/now-$t"
	diff "$WORK/files-$t" "$WORK/now-$t" >/dev/null ||
		fail "$t: segments deleted: $(diff "$WORK/files-$t" "$WORK/now-$t")"
	echo tail >>"$MNT/$t/0" || fail "$t: append after damage"
	assert_eq $(($(fsize "$WORK/ref-$t") + 5)) "$(stat -c %s "$MNT/$t/0")" "$t: size after append"
done
log "ok"
