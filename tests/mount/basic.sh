#!/bin/bash
# basic.sh - the end-to-end path: mkdir a topic, append with echo, read
# with cat, list, stat, and read the same bytes again after a remount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
T="$MNT/orders"
P="$T/0"
REF="$WORK/ref"

mkdir "$T" || fail "mkdir of a topic failed"
[ -d "$T" ] || fail "topic is not a directory"
[ ! -e "$P" ] || fail "partition exists before the first append"

echo hello >>"$P" || fail "first append failed"
echo world >>"$P" || fail "second append failed"
printf 'hello\nworld\n' >"$REF"
same_file "$REF" "$P" "cat after two appends"
assert_eq "regular file" "$(stat -c %F "$P")" "partition type"
assert_eq 12 "$(fsize "$P")" "size after two appends"
assert_eq 1048576 "$(stat -c %o "$P")" "st_blksize"
assert_eq orders "$(ls "$MNT")" "ls of the root"
assert_eq 0 "$(ls "$T")" "ls of the topic"

# A reader that opens or stats after an append returns sees it: the cached
# size and the old last page are invalidated on every append.
for i in $(seq 1 40); do
	line="line $i $(head -c $((i * 37 % 300)) /dev/zero | tr '\0' y)"
	echo "$line" >>"$P" || fail "append $i failed"
	echo "$line" >>"$REF"
	assert_eq "$(fsize "$REF")" "$(fsize "$P")" "size after append $i"
	same_file "$REF" "$P" "cat after append $i"
done

# An open reader keeps reading what is appended after it opened.
exec 3<"$P"
cat <&3 >/dev/null
echo "seen by an open reader" >>"$P"
echo "seen by an open reader" >>"$REF"
assert_eq "seen by an open reader" "$(cat <&3)" "read on a descriptor opened before the append"
exec 3<&-

# A large append (many lines in 1 MiB writes) and reads at odd offsets.
gen_lines 60000 big >"$WORK/big"
cat "$WORK/big" >>"$P" || fail "large append failed"
cat "$WORK/big" >>"$REF"
same_file "$REF" "$P" "cat after a large append"
# fsync and fdatasync on a partition succeed (durability itself needs a
# crash to show; tests/reliability does that).
sync "$P" || fail "fsync of a partition"
sync -d "$P" || fail "fdatasync of a partition"
echo synced | dd of="$P" oflag=append conv=notrunc,fsync status=none || fail "dd conv=fsync"
echo synced >>"$REF"
same_file "$REF" "$P" "cat after fsync"
for off in 1 4095 4096 65537 1048575 1048577 $(($(fsize "$REF") - 3)); do
	want=$(tail -c +$((off + 1)) "$REF" | head -c 1000 | od -An -tx1)
	got=$(dd if="$P" bs=1000 skip="$off" iflag=skip_bytes count=1 2>/dev/null | od -An -tx1)
	assert_eq "$want" "$got" "1000 bytes read at offset $off"
done

size=$(fsize "$P")
mount_restart
assert_eq orders "$(ls "$MNT")" "ls of the root after remount"
assert_eq 0 "$(ls "$T")" "ls of the topic after remount"
assert_eq "$size" "$(fsize "$P")" "size after remount"
same_file "$REF" "$P" "cat after remount"

# Appends continue where the log ended.
echo after-remount >>"$P" || fail "append after remount failed"
echo after-remount >>"$REF"
same_file "$REF" "$P" "cat after an append following remount"
log "ok"
