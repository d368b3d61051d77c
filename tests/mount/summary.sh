#!/bin/bash
# summary.sh - the mount summary: after a clean unmount the next mount
# reads DATA/.fluxfs.summary (named by the clean mark) instead of listing
# every topic and reading every partition.meta, and serves the same inode
# numbers, modes, sizes and bytes.  A data directory changed while
# unmounted (a partition copied in with cp -a, one removed, a
# partition.meta edited in place, a topic renamed), a damaged summary,
# and a SIGKILL (no clean mark; an old summary and mark put back by hand)
# each make the mount read those topics from their directories instead:
# nothing stale is served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

# What a user sees of every topic and partition: name, inode, mode,
# size, and the bytes' checksum.
view() {
	local f
	for f in "$MNT"/* "$MNT"/*/*; do
		echo "${f#$MNT/} $(stat -c '%i %a %s' "$f") $([ -f "$f" ] && md5sum <"$f" | cut -c1-8)"
	done
}
# last_load: the daemon's last line about the summary.
last_load() { grep -E "mount summary|fluxfs.summary' is" "$WORK/daemon.log" | tail -1; }
expect_load() {
	last_load | grep -q "$1" || fail "$2: wanted '$1', the log says: $(last_load)"
}

mount_start
for t in a b c; do
	mkdir "$MNT/$t" || fail "mkdir $t"
	for p in 0 1 2 3 4; do
		gen_lines 20 "$t/$p" >>"$MNT/$t/$p" || fail "append $t/$p"
	done
done
chmod 0600 "$MNT/b/1" || fail "chmod"
view >"$WORK/v1"

# Twice: the first unmount closes partitions written to, which rewrites
# their partition.meta in the same instant as the summary (such a topic
# is read from its directory); the second records only older stamps.
mount_restart
mount_restart
expect_load "3 topics loaded from the mount summary, 0 listed" "clean remount"
view >"$WORK/v2"
diff "$WORK/v1" "$WORK/v2" >&2 || fail "the mount summary changed what is shown"
ls -R "$MNT" >/dev/null || fail "ls -R"

# Changed while unmounted: each changed topic is listed.
mount_stop || fail "stop"
grep -q "^summary=" "$DATA/.fluxfs.clean" || fail "the clean mark names no summary"
[ -s "$DATA/.fluxfs.summary" ] || fail "no summary after a clean unmount"
cp -a "$DATA/a/0" "$DATA/a/9" || fail "cp -a"
rm -rf "$DATA/b/2"
printf 'mode=0640\n' >>"$DATA/c/3/partition.meta"
mount_launch
expect_load "0 topics loaded from the mount summary, 3 listed" "after edits"
[ ! -e "$MNT/b/2" ] || fail "b/2, removed while unmounted, is served"
assert_eq 640 "$(stat -c %a "$MNT/c/3")" "mode of c/3 edited while unmounted"
cmp -s "$MNT/a/0" "$MNT/a/9" || fail "a/9 (a copy of a/0) does not read as a/0"
[ "$(stat -c %i "$MNT/a/0")" != "$(stat -c %i "$MNT/a/9")" ] ||
	fail "a/0 and its copy a/9 share an inode number"
# Every other partition as before.
view | grep -v -e '^a/[09] ' -e '^a ' -e '^c/3 ' -e '^b ' >"$WORK/v3"
grep -v -e '^a/0 ' -e '^a ' -e '^b/2 ' -e '^c/3 ' -e '^b ' "$WORK/v1" >"$WORK/v1b"
diff "$WORK/v1b" "$WORK/v3" >&2 || fail "partitions not edited changed"

# A topic renamed by hand keeps its partitions' numbers; the old name
# is gone.
mount_restart
mount_stop || fail "stop"
ino=$(grep '^c/1 ' "$WORK/v1" | cut -d' ' -f2)
mv "$DATA/c" "$DATA/d"
mount_launch
expect_load "2 topics loaded from the mount summary, 1 listed" "after a rename"
[ ! -e "$MNT/c" ] || fail "c, renamed while unmounted, is served"
assert_eq "$ino" "$(stat -c %i "$MNT/d/1")" "inode of d/1 (c/1 renamed)"
view >"$WORK/v4"

# A damaged summary: one log line, every topic listed, the same view.
mount_restart
mount_stop || fail "stop"
printf 'X' | dd of="$DATA/.fluxfs.summary" bs=1 seek=40 conv=notrunc status=none
mount_launch
expect_load "fluxfs.summary' is damaged: listing every topic" "damaged summary"
view >"$WORK/v5"
diff "$WORK/v4" "$WORK/v5" >&2 || fail "view after a damaged summary"

# SIGKILL: no clean mark, no summary read.  Then the old mark and
# summary put back by hand after a partition was created and one
# removed through the mount: both topics changed, so both are listed.
mount_restart
mount_stop || fail "stop"
cp -p "$DATA/.fluxfs.summary" "$DATA/.fluxfs.clean" "$WORK/" || fail "save"
mount_launch
echo new >"$MNT/a/7" || fail "create a/7"
rm "$MNT/b/3" || fail "rm b/3"
kill -KILL "$FLUXFS_PID"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
[ ! -e "$DATA/.fluxfs.clean" ] || fail "the clean mark survived a SIGKILL"
n=$(grep -c "mount summary" "$WORK/daemon.log")
mount_launch
assert_eq "$n" "$(grep -c "mount summary" "$WORK/daemon.log")" "summary lines after a SIGKILL"
assert_eq "new" "$(cat "$MNT/a/7")" "a/7 after SIGKILL"
[ ! -e "$MNT/b/3" ] || fail "b/3 removed before SIGKILL is served"
mount_stop || fail "stop"
cp -p "$WORK/.fluxfs.summary" "$WORK/.fluxfs.clean" "$DATA/" || fail "restore"
mount_launch
expect_load "1 topics loaded from the mount summary, 2 listed" "old summary put back"
assert_eq "new" "$(cat "$MNT/a/7")" "a/7 with an old summary"
[ ! -e "$MNT/b/3" ] || fail "b/3 is served from an old summary"
log "ok"
