#!/bin/bash
# inodes.sh - the inode numbers stat and readdir show for topics and
# partitions are stored in the data directory: the same after an
# unmount and remount and after the daemon is killed (SIGKILL) and the
# directory mounted again; unique across the mount and apart from the
# root, .metrics, .follow and the follow views; a partition removed and
# created again under the same name gets a new number, as does one
# created after a crash (numbers reserved before it are skipped, never
# handed out twice); a partition or topic directory copied by hand
# (cp -a) inside the data directory: the original keeps its number
# whatever the copy's name, the copy gets a fresh one, the same on every
# mount; a data directory whose meta files have no numbers
# (written before they were stored) gets them on its first mount, one
# log line, and keeps them.
. "$(dirname "$0")/lib.sh"

# numbers: "path inode" for the root's entries and their children, by
# stat and by readdir (find's %i is d_ino when it can be).
numbers() {
	local f
	for f in "$MNT"/*/ "$MNT"/*/*; do
		f=${f%/}
		echo "${f#$MNT/} $(stat -c %i "$f")"
	done
}

# numbers_stable FILE WHAT: the numbers now into FILE, none shared, and
# the same after an unmount and remount.
numbers_stable() {
	local dups
	numbers >"$1"
	dups=$(awk '{print $2}' "$1" | sort | uniq -d)
	[ -z "$dups" ] || fail "$2: numbers shared inside the mount: $dups"
	mount_restart
	diff "$1" <(numbers) >&2 || fail "$2: numbers changed on the next mount"
}

mount_start
for t in alpha beta gamma; do
	mkdir "$MNT/$t" || fail "mkdir $t"
	for p in 0 1 2; do
		echo "$t $p" >>"$MNT/$t/$p" || fail "append $t/$p"
	done
done
numbers >"$WORK/first"
log "$(wc -l <"$WORK/first") nodes: $(tr '\n' ' ' <"$WORK/first")"
assert_eq 12 "$(wc -l <"$WORK/first")" "topics and partitions listed"
dups=$(awk '{print $2}' "$WORK/first" | sort | uniq -d)
[ -z "$dups" ] || fail "inode numbers shared inside the mount: $dups"
fixed="$(stat -c %i "$MNT") $(stat -c %i "$MNT/.metrics") $(stat -c %i "$MNT/.follow")"
follow="$(stat -c %i "$MNT/.follow/alpha") $(stat -c %i "$MNT/.follow/alpha/0")"
for i in $fixed $follow; do
	! awk '{print $2}' "$WORK/first" | grep -qx "$i" ||
		fail "virtual file's number $i is also a topic's or partition's"
done
[ "$(stat -c %i "$MNT/.follow/alpha/0")" != "$(stat -c %i "$MNT/.follow/alpha/1")" ] ||
	fail "two follow views share a number"
# readdir's d_ino agrees with stat (ls -i lists d_ino without stat when
# it can; find -printf %i likewise).
got=$(find "$MNT/alpha" -mindepth 1 -printf '%P %i\n' | sort)
want=$(grep '^alpha/' "$WORK/first" | sed 's,^alpha/,,' | sort)
assert_eq "$want" "$got" "readdir's numbers in alpha"
[ "$(find "$MNT" -maxdepth 0 -printf '%i')" = "$(stat -c %i "$MNT")" ] ||
	fail "the root's number differs between readdir and stat"

mount_restart
numbers >"$WORK/second"
diff "$WORK/first" "$WORK/second" >&2 ||
	fail "inode numbers changed across an unmount and remount"

# A crash: the daemon killed, the mount left dead, then mounted again.
kill -KILL "$FLUXFS_PID"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
mount_launch
numbers >"$WORK/third"
diff "$WORK/first" "$WORK/third" >&2 ||
	fail "inode numbers changed across SIGKILL of the daemon and a remount"

# Removed and created again: a new number, never one seen before.
old=$(stat -c %i "$MNT/beta/1")
rm "$MNT/beta/1" || fail "rm beta/1"
echo again >>"$MNT/beta/1" || fail "recreate beta/1"
new=$(stat -c %i "$MNT/beta/1")
[ "$new" != "$old" ] || fail "recreated partition kept number $old"
! awk '{print $2}' "$WORK/first" | grep -qx "$new" ||
	fail "recreated partition got number $new, already handed out"
rmdir "$MNT/gamma" 2>/dev/null || { rm "$MNT/gamma/"* && rmdir "$MNT/gamma"; } ||
	fail "rmdir gamma"
mkdir "$MNT/gamma" || fail "mkdir gamma again"
g=$(stat -c %i "$MNT/gamma")
! awk '{print $2}' "$WORK/first" | grep -qx "$g" ||
	fail "recreated topic got number $g, already handed out"
# A rename keeps the number: it is the same file.
mv "$MNT/alpha/2" "$MNT/alpha/two" || fail "rename alpha/2"
assert_eq "$(grep '^alpha/2 ' "$WORK/first" | cut -d' ' -f2)" \
	"$(stat -c %i "$MNT/alpha/two")" "number after a rename"
numbers >"$WORK/fourth"

# After a crash, a partition created next gets a number above any handed
# out before it.
kill -KILL "$FLUXFS_PID"
wait "$FLUXFS_PID" 2>/dev/null
FLUXFS_PID=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
mount_launch
diff "$WORK/fourth" <(numbers) >&2 || fail "numbers changed across the second crash"
echo x >>"$MNT/alpha/fresh" || fail "create alpha/fresh"
fresh=$(stat -c %i "$MNT/alpha/fresh")
for i in $(awk '{print $2}' "$WORK/first" "$WORK/fourth") $old $new; do
	[ "$fresh" -gt "$i" ] || fail "number $fresh after a crash is not above $i"
done

# Copies made by hand while unmounted, named to sort before and after
# their originals: the directory created first (the original) keeps
# the number, each copy gets one of its own, and the next mount agrees.
mount_stop || fail "unmount before copying"
sleep 0.05 # the copies are born visibly later
cp -a "$DATA/alpha/1" "$DATA/alpha/0copy" || fail "cp -a alpha/1"
cp -a "$DATA/alpha/1" "$DATA/alpha/zcopy" || fail "cp -a alpha/1 again"
cp -a "$DATA/beta" "$DATA/abeta" || fail "cp -a beta"
mount_launch
a1=$(grep '^alpha/1 ' "$WORK/first" | cut -d' ' -f2)
assert_eq "$a1" "$(stat -c %i "$MNT/alpha/1")" "alpha/1's number beside its copies"
assert_eq "$(grep '^beta ' "$WORK/first" | cut -d' ' -f2)" "$(stat -c %i "$MNT/beta")" "beta's number beside its copy"
assert_eq "$(grep '^beta/0 ' "$WORK/first" | cut -d' ' -f2)" "$(stat -c %i "$MNT/beta/0")" "beta/0's number beside its copy"
numbers_stable "$WORK/copies" "after copies"
rm -rf "$MNT/alpha/0copy" "$MNT/alpha/zcopy" || fail "rm the copies of alpha/1"
rm -f "$MNT/abeta/"* && rmdir "$MNT/abeta" || fail "rm the copy of beta"

# A data directory from before stored numbers: take them out of every
# meta file; the first mount stores new ones (one log line) and the next
# keeps them.
total=$(numbers | wc -l)
mount_stop || fail "unmount before stripping the numbers"
sed -i '/^ino=/d' "$DATA"/*/topic.meta "$DATA"/*/*/partition.meta
sed -i '/^ino_next=/d' "$DATA/fluxfs.meta"
: >"$WORK/daemon.log"
mount_launch
n=$(grep -c "stored inode numbers for" "$WORK/daemon.log")
assert_eq 1 "$n" "log lines about stored inode numbers"
grep -q "stored inode numbers for $total topics and partitions" "$WORK/daemon.log" ||
	fail "log line: $(grep 'inode numbers' "$WORK/daemon.log")"
numbers_stable "$WORK/fifth" "assigned"
grep -q "^ino=" "$DATA/alpha/0/partition.meta" || fail "partition.meta has no ino"
log "ok"
