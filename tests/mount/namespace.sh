#!/bin/bash
# namespace.sh - topics and partitions as directories and files: mv,
# chmod, chown persist across a remount; rmdir of a non-empty topic is
# ENOTEMPTY; subdirectories, symlinks and hard links are EPERM; bad names
# are EINVAL (249 bytes is the longest good one); rm removes a partition;
# df reports the backing filesystem.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EPERM_MSG="Operation not permitted"
EINVAL_MSG="Invalid argument"
need_tool "$TOOL_FSOP"
mount_start
T="$MNT/t"
mkdir "$T" || fail "mkdir topic"
echo p0 >>"$T/0" || fail "append t/0"
echo p1 >>"$T/1" || fail "append t/1"
expect_err "File exists" mkdir "$T"

# Rename a partition, then a topic.
mv "$T/0" "$T/renamed" || fail "mv of a partition"
[ ! -e "$T/0" ] || fail "old partition name still exists after mv"
assert_eq p0 "$(cat "$T/renamed")" "content after mv of a partition"
echo more >>"$T/renamed" || fail "append after mv"
mv "$T" "$MNT/u" || fail "mv of a topic"
U="$MNT/u"
[ ! -e "$T" ] || fail "old topic name still exists after mv"
assert_eq "$(printf 'p0\nmore')" "$(cat "$U/renamed")" "content after mv of the topic"
assert_eq "1 renamed" "$(ls "$U" | tr '\n' ' ' | sed 's/ $//')" "partitions after mv of the topic"
# mv over an existing partition replaces it, as rename(2) does.
echo other >>"$U/2" || fail "append u/2"
mv "$U/2" "$U/1" || fail "mv over an existing partition"
assert_eq other "$(cat "$U/1")" "partition replaced by mv"
[ ! -e "$U/2" ] || fail "source of mv over a partition still exists"

# Modes and owners.
chmod 640 "$U/renamed" || fail "chmod partition"
chown 1234:5678 "$U/renamed" || fail "chown partition"
chmod 750 "$U" || fail "chmod topic"
chown 4321:8765 "$U" || fail "chown topic"
assert_eq "640 1234 5678" "$(stat -c '%a %u %g' "$U/renamed")" "partition mode and owner"
assert_eq "750 4321 8765" "$(stat -c '%a %u %g' "$U")" "topic mode and owner"
touch -m -d '2021-02-03 04:05:06 UTC' "$U/1" || fail "touch -d"
assert_eq 1612325106 "$(stat -c %Y "$U/1")" "mtime set by touch -d"
touch "$U/empty" || fail "touch of a new partition"
[ -f "$U/empty" ] || fail "touch did not make a regular file"
assert_eq 0 "$(fsize "$U/empty")" "size of a partition made by touch"

# Not allowed.
expect_err "Directory not empty" rmdir "$U"
expect_err "$EPERM_MSG" mkdir "$U/sub"
expect_err "$EPERM_MSG" ln -s renamed "$U/link"
expect_err "$EPERM_MSG" ln -s u "$MNT/link"
expect_err "$EPERM_MSG" ln "$U/renamed" "$U/hard"
[ ! -e "$U/sub" ] && [ ! -L "$U/link" ] && [ ! -e "$U/hard" ] || fail "a refused entry exists"

# Names: 1-249 bytes of [A-Za-z0-9._-], not starting with '.' for topics.
n249=$(head -c 249 /dev/zero | tr '\0' n)
n250=$(head -c 250 /dev/zero | tr '\0' n)
mkdir "$MNT/$n249" || fail "mkdir of a 249-byte topic name"
echo ok >>"$U/$n249" || fail "a 249-byte partition name"
# Longer than the NAME_MAX statfs reports (249): ENAMETOOLONG, as on
# every filesystem, for each way a name comes in.
TOOLONG_MSG="File name too long"
expect_err "$TOOLONG_MSG" mkdir "$MNT/$n250"
expect_err "$TOOLONG_MSG" sh_c 'echo x >>"$1"' "$U/$n250"
expect_err "$TOOLONG_MSG" "$TOOL_FSOP" rename "$U/1" "$U/$n250"
expect_err "$TOOLONG_MSG" "$TOOL_FSOP" rename "$U" "$MNT/$n250"
expect_err "$TOOLONG_MSG" stat "$U/$n250"
assert_eq 249 "$(stat -f -c %l "$MNT")" "NAME_MAX from statfs"
for bad in "a b" "a:b" "a@b" 'a\b' "é" "tab	x" "star*"; do
	expect_err "$EINVAL_MSG" mkdir "$MNT/$bad"
	expect_err "$EINVAL_MSG" sh_c 'echo x >>"$1"' "$U/$bad"
done
expect_err "$EINVAL_MSG" mkdir "$MNT/.hidden"
expect_err "$EINVAL_MSG" "$TOOL_FSOP" rename "$U/1" "$U/bad name"
expect_err "$EINVAL_MSG" "$TOOL_FSOP" rename "$U" "$MNT/.u"
assert_eq other "$(cat "$U/1")" "partition after a refused rename"
mkdir "$MNT/Ok.name_1-2" || fail "mkdir with every allowed character class"
echo x >>"$U/.tmp-part" || fail "a partition name starting with '.'"
mv "$U/.tmp-part" "$U/from-dot" || fail "mv of a dot partition into place"

# rm and rmdir.
rm "$U/$n249" || fail "rm of a partition"
[ ! -e "$U/$n249" ] || fail "partition still exists after rm"
rmdir "$MNT/$n249" || fail "rmdir of an empty topic"
[ ! -e "$MNT/$n249" ] || fail "topic still exists after rmdir"

# df reports the backing filesystem's space.
df "$MNT" >/dev/null || fail "df on the mount"
assert_eq "$(stat -f -c '%b %S' "$DATA" | awk '{ print $1 * $2 }')" \
	"$(stat -f -c '%b %S' "$MNT" | awk '{ print $1 * $2 }')" "total bytes of the mount vs the data directory"

# Directory times move when entries come and go (a tool that watches a
# directory's mtime finds new partitions), and persist.
# moved WHAT DIR CMD...: DIR's mtime and ctime grow across CMD.
moved() {
	local what=$1 dir=$2 m0 c0
	shift 2
	m0=$(stat -c %.9Y "$dir") c0=$(stat -c %.9Z "$dir")
	sleep 0.01
	"$@" || fail "$what"
	[ "$(stat -c %.9Y "$dir")" != "$m0" ] || fail "$what left the mtime of '$dir' at $m0"
	[ "$(stat -c %.9Z "$dir")" != "$c0" ] || fail "$what left the ctime of '$dir' at $c0"
}
moved "a new partition" "$U" sh_c ': >>"$1"' "$U/timed"
moved "a renamed partition" "$U" mv "$U/timed" "$U/timed2"
mkdir "$MNT/other" || fail "mkdir other"
moved "a partition moved out" "$U" mv "$U/timed2" "$MNT/other/timed"
moved "a partition moved in" "$MNT/other" mv "$MNT/other/timed" "$MNT/other/t2"
moved "a removed partition" "$MNT/other" rm "$MNT/other/t2"
moved "a new topic" "$MNT" mkdir "$MNT/timed"
moved "a renamed topic" "$MNT" mv "$MNT/timed" "$MNT/timed2"
moved "a removed topic" "$MNT" rmdir "$MNT/timed2" "$MNT/other"
echo x >>"$U/timed3" || fail "append to a new partition"
TIMES="$(stat -c '%.9Y %.9Z' "$U")"

LIST="$(ls -A "$MNT" | grep -v '^\.' ; echo; ls -A "$U")"
mount_restart
assert_eq "$TIMES" "$(stat -c '%.9Y %.9Z' "$U")" "topic mtime and ctime after remount"
assert_eq "$LIST" "$(ls -A "$MNT" | grep -v '^\.' ; echo; ls -A "$U")" "names after remount"
assert_eq "640 1234 5678" "$(stat -c '%a %u %g' "$U/renamed")" "partition mode and owner after remount"
assert_eq "750 4321 8765" "$(stat -c '%a %u %g' "$U")" "topic mode and owner after remount"
assert_eq "$(printf 'p0\nmore')" "$(cat "$U/renamed")" "renamed partition after remount"
assert_eq other "$(cat "$U/1")" "replaced partition after remount"
[ ! -e "$MNT/t" ] && [ ! -e "$U/2" ] && [ ! -e "$U/$n249" ] || fail "a removed or renamed-away name came back after remount"

# Removing everything leaves an empty root (control files are dot-names).
rm -f "$U"/* || fail "rm of the remaining partitions"
rmdir "$U" "$MNT/Ok.name_1-2" || fail "rmdir of emptied topics"
assert_eq "" "$(ls "$MNT")" "ls of the root after removing everything"
log "ok"
