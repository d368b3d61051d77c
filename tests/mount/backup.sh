#!/bin/bash
# backup.sh - cp -a, rsync -a and tar of a mounted topic give its bytes,
# and copying those backups into a fresh mount (new data directory)
# recreates identical partitions: same size, same bytes, and for the
# partition whose head was deleted, the same start_byte (cp --sparse=always,
# rsync -S, tar -S keep the hole).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start -o segment_bytes=4096
T="$MNT/orders"
mkdir "$T" || fail "mkdir topic"
gen_lines 2000 zero >"$WORK/src0"
split -a 4 -l 13 "$WORK/src0" "$WORK/c0."
for f in "$WORK"/c0.*; do
	cat "$f" >>"$T/0" || fail "append $f"
done
printf 'one\ntwo\nthree\n' >>"$T/1" || fail "append to partition 1"
# Partition h: 32-byte lines, then its first 384 messages deleted, so the
# hole ends at byte 12288, a multiple of the 4 KiB blocks of the backup's
# filesystem (tools record holes in whole blocks).
awk 'BEGIN { for (i = 0; i < 1024; i++) printf "hole-line %021d\n", i }' >"$WORK/srch"
split -a 4 -l 50 "$WORK/srch" "$WORK/ch."
for f in "$WORK"/ch.*; do
	cat "$f" >>"$T/h" || fail "append $f"
done
fallocate -p -o 0 -l 12300 "$T/h" || fail "fallocate -p on partition h"
xassert "$T/h" start_byte 12288 "start_byte of h after punching"
SB=12288
PARTS="0 1 h"
mkdir "$WORK/ref"
for p in $PARTS; do
	cat "$T/$p" >"$WORK/ref/$p" || fail "cat $p"
done
same_file "$WORK/src0" "$WORK/ref/0" "partition 0"
zeros_only "$WORK/ref/h" 0 "$SB" || fail "head of h does not read as zeros"
same_file <(tail -c +$((SB + 1)) "$WORK/srch") <(tail -c +$((SB + 1)) "$WORK/ref/h") "tail of h"

# Backups of the mounted topic.
cp -a "$T" "$WORK/bk-cp" || fail "cp -a of a topic"
rsync -a "$T/" "$WORK/bk-rsync/" || fail "rsync -a of a topic"
tar -C "$MNT" -cSf "$WORK/bk.tar" orders || fail "tar -cS of a topic"
mkdir "$WORK/bk-tar"
tar -C "$WORK/bk-tar" -xSf "$WORK/bk.tar" || fail "tar -x of the backup"
for p in $PARTS; do
	same_file "$WORK/ref/$p" "$WORK/bk-cp/$p" "cp -a backup of $p"
	same_file "$WORK/ref/$p" "$WORK/bk-rsync/$p" "rsync -a backup of $p"
	same_file "$WORK/ref/$p" "$WORK/bk-tar/orders/$p" "tar backup of $p"
done
assert_eq "$(ls "$T")" "$(ls "$WORK/bk-cp")" "partitions in the cp backup"
log "cp -a backup of h occupies $(du -k "$WORK/bk-cp/h" | cut -f1) KiB"

# A fresh mount on a new data directory.
mount_stop || fail "daemon did not stop cleanly"
DATA="$WORK/data2"
mkdir "$DATA"
mount_launch
[ -z "$(ls "$MNT")" ] || fail "fresh mount is not empty: $(ls "$MNT")"

cp -a --sparse=always "$WORK/bk-cp" "$MNT/by_cp" || fail "cp -a --sparse=always into the mount"
rsync -a "$WORK/bk-rsync/" "$MNT/by_rsync/" || fail "rsync -a into the mount"
rsync -aS "$WORK/bk-rsync/" "$MNT/by_rsync_s/" || fail "rsync -aS into the mount"
tar -C "$MNT" -xSf "$WORK/bk.tar" || fail "tar -xS into the mount"

# check_restored TOPIC HOLE(1 if start_byte must match)
check_restored() {
	local t="$MNT/$1" p
	assert_eq "$(ls "$WORK/bk-cp")" "$(ls "$t")" "partitions restored by $1"
	for p in $PARTS; do
		assert_eq "$(fsize "$WORK/ref/$p")" "$(fsize "$t/$p")" "size of $1/$p"
		same_file "$WORK/ref/$p" "$t/$p" "bytes of $1/$p"
	done
	xassert "$t/0" next_offset 2000 "messages in $1/0"
	xassert "$t/1" next_offset 3 "messages in $1/1"
	if [ "$2" = 1 ]; then
		xassert "$t/h" start_byte "$SB" "start_byte of $1/h"
	fi
}
check_restored by_cp 1
check_restored by_rsync 0
check_restored by_rsync_s 1
check_restored orders 1

mount_restart
check_restored by_cp 1
check_restored orders 1
log "ok"
