#!/bin/bash
# recipe_logrotate.sh - doc/recipes.md "log rotation": what to use
# instead of logrotate's copytruncate.  A partition only grows, so
# copytruncate's truncate fails with EPERM (logrotate says so and exits
# non-zero) and leaves the partition as it was, with nothing lost but a
# useless copy.  Retention (retention_bytes/retention_ms, set with
# setfattr) bounds the disk instead, with byte offsets unchanged; and
# logrotate's default rename mode (plus the writer's own reopen) works on
# a partition like on any file.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"

need_packages logrotate attr
mount_start -o segment_bytes=16384
mkdir "$MNT/app" || fail "mkdir topic"
P="$MNT/app/0"
gen_lines 4000 app >"$WORK/ref"
# In 4 KiB writes, as a logger does: a segment rolls between batches.
dd if="$WORK/ref" of="$P" bs=4096 oflag=append conv=notrunc status=none ||
	fail "append"
size=$(fsize "$P")

# 1. copytruncate: refused, nothing lost.
cat >"$WORK/copytruncate.conf" <<CONF
$P {
	copytruncate
	rotate 1
	nocompress
	missingok
}
CONF
rc=0
logrotate -f -s "$WORK/state1" "$WORK/copytruncate.conf" >"$WORK/lr1.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "logrotate copytruncate succeeded on a partition"
grep -q 'Operation not permitted' "$WORK/lr1.log" ||
	fail "logrotate's error is not EPERM: $(cat "$WORK/lr1.log")"
same_file "$WORK/ref" "$P" "the partition after a refused copytruncate"
assert_eq "$size" "$(fsize "$P")" "st_size after copytruncate"
rm -f "$MNT/app/0.1"

# 2. The recipe: retention on the topic bounds the disk, offsets stay.
setfattr -n user.fluxfs.retention_bytes -v 32K "$MNT/app" || fail "setfattr retention_bytes"
trimmed() {
	local b
	b=$(getfattr --absolute-names --only-values -n user.fluxfs.start_byte "$P" 2>/dev/null)
	[ -n "$b" ] && [ "$b" -gt 0 ]
}
wait_for 10 trimmed || fail "retention did not trim the partition within 10 s"
assert_eq "$size" "$(fsize "$P")" "st_size after retention (offsets never move)"
xget disk "$P" start_byte
[ $((size - disk)) -le $((32768 + 2 * 16384)) ] ||
	fail "retention kept $((size - disk)) bytes with retention_bytes=32K"
tail -c 1000 "$P" | cmp -s - <(tail -c 1000 "$WORK/ref") || fail "the tail changed"

# 3. logrotate's rename mode works; the writer reopens (not tested here:
# see the nginx and Python recipes) and a new partition starts.
cat >"$WORK/rename.conf" <<CONF
$P {
	rotate 2
	nocompress
	create 0644 root root
	missingok
}
CONF
logrotate -f -s "$WORK/state2" "$WORK/rename.conf" >"$WORK/lr2.log" 2>&1 ||
	fail "logrotate rename mode: $(cat "$WORK/lr2.log")"
[ -e "$MNT/app/0.1" ] || fail "logrotate did not rename 0 to 0.1"
assert_eq 0 "$(fsize "$P")" "the new partition logrotate created"
assert_eq "$size" "$(fsize "$MNT/app/0.1")" "the rotated partition keeps its size"
echo "after rotation" >>"$P" || fail "append after rotation"
assert_eq "after rotation" "$(cat "$P")" "the new partition"
log "ok"
exit 0
