#!/bin/bash
# appendonly.sh - writes only at the end: dd at a wrong offset, a '>'
# redirect, truncate below the size are EPERM and change nothing; truncate
# to the size is a no-op; pwrite at exactly the end appends; a writable
# shared mmap is refused while a read-only one reads the bytes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EPERM_MSG="Operation not permitted"
need_tool "$TOOL_FSOP"
mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
REF="$WORK/ref"
printf 'one\ntwo\nthree\n' >"$REF"
cat "$REF" >>"$P" || fail "initial append"
same_file "$REF" "$P" "initial content"

# unchanged MSG: the partition still holds exactly $REF.
unchanged() {
	assert_eq "$(fsize "$REF")" "$(fsize "$P")" "size after $1"
	same_file "$REF" "$P" "content after $1"
}

# dd into the middle, and past the end, of the log.
expect_err "$EPERM_MSG" sh_c 'printf "XY\n" | dd of="$1" bs=4096 seek=4 oflag=seek_bytes conv=notrunc status=none' "$P"
unchanged "dd at offset 4"
expect_err "$EPERM_MSG" sh_c 'printf "XY\n" | dd of="$1" bs=4096 seek=100 oflag=seek_bytes conv=notrunc status=none' "$P"
unchanged "dd past the end"
# dd without conv=notrunc truncates to its seek offset first.
expect_err "$EPERM_MSG" sh_c 'printf "XY\n" | dd of="$1" bs=4096 seek=4 oflag=seek_bytes status=none' "$P"
unchanged "dd with truncation"
# dd exactly at the end is a compare-and-append.
size=$(fsize "$P")
expect_ok sh_c 'printf "four\n" | dd of="$1" bs=4096 seek="$2" oflag=seek_bytes conv=notrunc status=none' "$P" "$size"
printf 'four\n' >>"$REF"
unchanged "dd at the end"

# '>' on a non-empty partition is O_TRUNC.
expect_err "$EPERM_MSG" sh_c 'echo new >"$1"' "$P"
unchanged "'>' redirect"
expect_err "$EPERM_MSG" sh_c 'echo new 1<>"$1"' "$P"
unchanged "'<>' write at offset 0"

# truncate below the size refused, at the size a no-op.
expect_err "$EPERM_MSG" truncate -s 0 "$P"
unchanged "truncate -s 0"
expect_err "$EPERM_MSG" truncate -s $(($(fsize "$P") - 1)) "$P"
unchanged "truncate -s size-1"
expect_ok truncate -s "$(fsize "$P")" "$P"
unchanged "truncate -s size"

# '>' on a new (empty) partition truncates nothing: allowed.
echo fresh >"$MNT/t/1" || fail "'>' creating a new partition"
assert_eq fresh "$(cat "$MNT/t/1")" "content of a partition made with '>'"

# pwrite: only at exactly the current end.
size=$(fsize "$P")
expect_err "$EPERM_MSG" "$TOOL_FSOP" pwrite "$P" $((size - 1)) $'Z\n'
unchanged "pwrite at size-1"
expect_err "$EPERM_MSG" "$TOOL_FSOP" pwrite "$P" $((size + 1)) $'Z\n'
unchanged "pwrite at size+1"
expect_err "$EPERM_MSG" "$TOOL_FSOP" pwrite "$P" 0 $'Z\n'
unchanged "pwrite at 0"
expect_ok "$TOOL_FSOP" pwrite "$P" "$size" $'five\n'
printf 'five\n' >>"$REF"
unchanged "pwrite at the end"
# The same offset again is no longer the end: the compare fails.
expect_err "$EPERM_MSG" "$TOOL_FSOP" pwrite "$P" "$size" $'dup\n'
unchanged "a second pwrite at the old end"

# mmap: read-only works, writable shared refused.
"$TOOL_FSOP" mmap-read "$P" >"$WORK/mapped" || fail "read-only mmap failed"
same_file "$REF" "$WORK/mapped" "bytes read through a read-only mmap"
out=$("$TOOL_FSOP" mmap-write "$P" 2>&1) && fail "writable shared mmap was allowed ($out)"
log "writable shared mmap refused: $out"
unchanged "a refused writable mmap"

mount_restart
unchanged "remount"
log "ok"
