#!/bin/bash
# snapshot.sh - MNT/.snapshot: mkdir takes a snapshot of every partition,
# its files show exactly the bytes the live partitions had then (also
# compressed ones, also after the live one grew or was renamed), ls shows
# the creation time, every change inside is refused with the right errno
# and changes nothing, a snapshot survives a remount and a SIGKILL of the
# daemon, and rmdir releases it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start -o segment_bytes=4096
S="$MNT/.snapshot"
mkdir "$MNT/a" "$MNT/b" || fail "mkdir topics"
gen_lines 2000 a0 >"$MNT/a/0"
gen_lines 500 a1 >"$MNT/a/1"
: >"$MNT/b/empty"
gen_lines 3000 b0 >"$MNT/b/0"
# A compressed partition: sealed segments zstd'ed by maintenance.
setfattr -n user.fluxfs.compression -v zstd "$MNT/b/0" || fail "setfattr compression"
compressed() {
	local d
	d=$(getfattr --absolute-names --only-values -n user.fluxfs.disk_bytes "$MNT/b/0")
	[ "$d" -lt "$(fsize "$MNT/b/0")" ]
}
wait_for 10 compressed || fail "b/0 was not compressed within 10 s"
for f in a/0 a/1 b/0 b/empty; do cp "$MNT/$f" "$WORK/$(echo $f | tr / _)"; done

assert_eq "" "$(ls -A "$S")" "an empty .snapshot"
before=$(date +%s)
mkdir "$S/one" || fail "mkdir .snapshot/one"
after=$(date +%s)
assert_eq "one" "$(ls "$S")" "ls .snapshot"
mt=$(stat -c %Y "$S/one")
[ "$mt" -ge "$before" ] && [ "$mt" -le "$after" ] ||
	fail "snapshot mtime $mt outside [$before, $after]"
assert_eq "a b" "$(ls "$S/one" | xargs)" "topics of the snapshot"
assert_eq "0 1" "$(ls "$S/one/a" | xargs)" "partitions of a"
assert_eq "0 empty" "$(ls "$S/one/b" | xargs)" "partitions of b"

# The live partitions grow, one is renamed: the snapshot does not move.
gen_lines 700 later >>"$MNT/a/0"
gen_lines 700 later >>"$MNT/b/0"
mv "$MNT/a/1" "$MNT/a/renamed" || fail "rename a/1"
echo late >>"$MNT/a/renamed"
mv "$MNT/b" "$MNT/b2" || fail "rename topic b"
for f in a/0 a/1 b/0 b/empty; do
	same_file "$WORK/$(echo $f | tr / _)" "$S/one/$f" "snapshot of $f after appends"
	assert_eq "$(fsize "$WORK/$(echo $f | tr / _)")" "$(fsize "$S/one/$f")" "size of $f in the snapshot"
done
# SEEK_DATA/SEEK_HOLE (cp, tar --sparse) see the snapshot's bytes, not
# the live file's.
sz=$(fsize "$WORK/a_0")
assert_eq 0 "$("$TOOL_FSOP" seek "$S/one/a/0" data 0)" "SEEK_DATA in a snapshot"
assert_eq "$sz" "$("$TOOL_FSOP" seek "$S/one/a/0" hole 10)" "SEEK_HOLE in a snapshot: its end"
expect_err "No such device or address" "$TOOL_FSOP" seek "$S/one/a/0" data "$sz"

# Refused: every change below .snapshot, with the errno a read-only
# filesystem gives; bad names; a second mkdir of the same name.
RO="Read-only file system"
expect_err "$RO" sh_c 'echo x >>"$1"' "$S/one/a/0"
expect_err "$RO" sh_c 'echo x >"$1"' "$S/one/a/new"
expect_err "$RO" rm -f "$S/one/a/0"
expect_err "$RO" mv "$S/one/a/0" "$S/one/a/moved"
expect_err "$RO" mkdir "$S/one/c"
expect_err "$RO" rmdir "$S/one/a"
expect_err "$RO" setfattr -n user.fluxfs.retention_ms -v 1 "$S/one/a/0"
expect_err "$RO" truncate -s 0 "$S/one/a/0"
expect_err "$RO" touch "$S/one/a/0"
expect_err "File exists" mkdir "$S/one"
expect_err "Invalid argument" mkdir "$S/bad name"
expect_err "Invalid argument" mkdir "$S/.hidden"
expect_err "No such file or directory" ls "$S/none"
expect_err "No such file or directory" rmdir "$S/none"
expect_err "No such file or directory" cat "$S/one/a/9"
assert_eq "one" "$(ls "$S")" "snapshots after refused requests"
same_file "$WORK/a_0" "$S/one/a/0" "a/0 after refused requests"
[ "$(grep -c 'EROFS' "$WORK/daemon.log")" -ge 8 ] || fail "refusals were not logged"

# Pinned bytes: on the snapshot, on the live partition, in .metrics.
want=$(($(fsize "$WORK/a_0") + $(fsize "$WORK/a_1") + $(fsize "$WORK/b_0")))
xassert "$S/one" pinned_bytes "$want" "pinned bytes of the snapshot"
xassert "$MNT/a/0" snapshot_pinned_bytes "$(fsize "$WORK/a_0")" "pinned bytes of a/0"
grep -q "^fluxfs_snapshot_pinned_bytes{snapshot=\"one\"} $want\$" "$MNT/.metrics" ||
	fail ".metrics has no pinned bytes for 'one': $(grep snapshot "$MNT/.metrics")"

# Persistence: a remount, then a SIGKILL right after a second snapshot.
mount_restart
same_file "$WORK/a_0" "$S/one/a/0" "a/0 of the snapshot after a remount"
same_file "$WORK/b_0" "$S/one/b/0" "b/0 of the snapshot after a remount"
cp "$MNT/b2/0" "$WORK/b_0.two"
mkdir "$S/two" || fail "mkdir .snapshot/two"
kill -KILL "$FLUXFS_PID"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
mount_launch
assert_eq "one two" "$(ls "$S" | xargs)" "snapshots after SIGKILL"
same_file "$WORK/b_0.two" "$S/two/b2/0" "b2/0 of a snapshot taken just before SIGKILL"
same_file "$WORK/a_1" "$S/one/a/1" "a/1 (renamed since) after SIGKILL"

# fluxctl lists them offline (beside the daemon, read-only).
"$FLUXCTL" snapshots "$DATA" >"$WORK/ctl.out" || fail "fluxctl snapshots"
assert_eq "one two" "$(awk 'NR > 1 { print $1 }' "$WORK/ctl.out" | xargs)" "fluxctl snapshots"
grep -q "^one .* 4 *$want\$" "$WORK/ctl.out" || fail "fluxctl snapshots: $(cat "$WORK/ctl.out")"

# rmdir releases: gone from the listing, the data directory and .metrics.
rmdir "$S/one" || fail "rmdir .snapshot/one"
assert_eq "two" "$(ls "$S")" "snapshots after rmdir"
[ ! -e "$DATA/.snapshots/one.snap" ] || fail "one.snap left in the data directory"
grep -q 'snapshot="one"' "$MNT/.metrics" && fail ".metrics still shows 'one'"
rmdir "$S/two" || fail "rmdir .snapshot/two"
assert_eq "" "$(ls -A "$S")" "no snapshots left"

# A damaged .snap file: fluxctl verify reports it, the mount leaves it
# out (logged) and serves the rest.
mkdir "$S/three" "$S/four" || fail "mkdir three, four"
mount_stop || fail "daemon did not stop cleanly"
"$FLUXCTL" verify "$DATA" >"$WORK/verify.out" || fail "fluxctl verify of good snapshots: $(cat "$WORK/verify.out")"
sed -i 's/^part /Part /' "$DATA/.snapshots/three.snap"
rc=0
"$FLUXCTL" verify "$DATA" >"$WORK/verify.out" || rc=$?
assert_eq 1 "$rc" "fluxctl verify's status with a damaged snapshot"
grep -q "damaged: .snapshots/three.snap" "$WORK/verify.out" || fail "verify: $(cat "$WORK/verify.out")"
mount_launch
assert_eq "four" "$(ls "$S")" "snapshots after one was damaged"
grep -q "snapshot file '.snapshots/three.snap' left out" "$WORK/daemon.log" ||
	fail "the damaged snapshot was not logged"
same_file "$WORK/a_1" <(head -c "$(fsize "$WORK/a_1")" "$S/four/a/renamed") "a/renamed of four"
log "ok"
