#!/bin/bash
# hostile.sh - hostile names, xattr values and data-directory contents,
# and permissions beyond tests/mount/permissions.sh.  namespace.sh already
# covers mkdir/append/rename with bad names and 249/250 bytes; here:
#   A. names through the other entry points (create, mknod, link, lookup,
#      setxattr names), kernel-limit lengths (255, 256 bytes) and control
#      bytes: the right errno, and the daemon stays up;
#   B. hostile configuration values through setfattr: EINVAL, unchanged;
#   C. a data directory planted while unmounted with symlinks (a segment
#      .log/.idx, partition.state, topic.conf, a partition directory and
#      a topic directory, each pointing outside), a FIFO in place of a
#      segment, and a directory with a bad name: the mount still comes up
#      (no hang), nothing outside is ever read or written (checksums and
#      mtimes unchanged, contents never served), the daemon logs;
#   D. with allow_other,default_permissions, uid 65534 cannot set a root
#      partition's configuration, chmod/chown/truncate/punch it, write
#      .metrics, remove or rename root's topic, nor read a 0600
#      partition's follow view (when the mount has one).
. "$(dirname "$0")/rel.sh"

EINVAL_MSG="Invalid argument"
EPERM_MSG="Operation not permitted"
EACCES_MSG="Permission denied"
EPERM_MSG="Operation not permitted"
need_tool "$TOOL_FSOP"
alive() {
	kill -0 "$FLUXFS_PID" 2>/dev/null || fail "daemon died: $1"
	timeout 10 stat "$MNT" >/dev/null || fail "mount stopped answering: $1"
}

mount_start -o allow_other,default_permissions
chmod 755 "$WORK"
mkdir "$MNT/t" && echo hello >>"$MNT/t/0" || fail "setup"

# --- A. names ---------------------------------------------------------
n255=$(head -c 255 /dev/zero | tr '\0' n)
n256=$(head -c 256 /dev/zero | tr '\0' n)
# Past the NAME_MAX statfs reports (249), up to the kernel's own limit.
expect_err "File name too long" touch "$MNT/t/$n255"
expect_err "File name too long" mkdir "$MNT/$n255"
expect_err "File name too long" touch "$MNT/t/$n256"
expect_err "File name too long" mkdir "$MNT/$n256"
for bad in $'a\x01b' $'tab\there' $'del\x7f' $'nl\nx' 'sp ace' 'ü' '*' ':' '\'; do
	expect_err "$EINVAL_MSG" touch "$MNT/t/$bad"
	expect_err "$EPERM_MSG" mknod "$MNT/t/$bad" p # no FIFOs, whatever the name
	expect_err "No such file or directory" stat "$MNT/t/$bad"
	expect_err "No such file or directory" cat "$MNT/$bad/0"
done
expect_err "No such file or directory" sh_c 'echo x >>"$1"' "$MNT/nosuch/0"
expect_err "Not a directory" sh_c 'echo x >>"$1"' "$MNT/t/0/sub"
expect_err "File exists" mkdir "$MNT/t/.."
# Partition names may start with '.', topic names may not.
echo x >>"$MNT/t/.tmp-rsync" || fail "a partition name starting with '.'"
expect_err "$EINVAL_MSG" mkdir "$MNT/.t2"
setfattr -n "user.fluxfs.$(head -c 300 /dev/zero | tr '\0' k)" -v 1 "$MNT/t/0" 2>/dev/null &&
	fail "setxattr of a 300-byte unknown name succeeded"
setfattr -n $'user.fluxfs.retention_bytes\x01' -v 1 "$MNT/t/0" 2>/dev/null &&
	fail "setxattr of a name with a control byte succeeded"
alive "after hostile names"
assert_eq "hello" "$(cat "$MNT/t/0")" "content after hostile names"

# --- B. configuration values -------------------------------------------
xget before "$MNT/t/0" retention_bytes
for v in -5 1e9 99999999999999999999999 $'1\x01' '' ' 1' '1 ' 0x10 1KB 18446744073709551616 -1-1; do
	setfattr -n user.fluxfs.retention_bytes -v "$v" "$MNT/t/0" 2>/dev/null &&
		fail "retention_bytes='$v' accepted"
done
for v in 0 1 4095 2T x ''; do
	setfattr -n user.fluxfs.segment_bytes -v "$v" "$MNT/t" 2>/dev/null &&
		fail "segment_bytes='$v' accepted on the topic"
done
setfattr -n user.fluxfs.compression -v "$(head -c 5000 /dev/zero | tr '\0' z)" "$MNT/t" 2>/dev/null &&
	fail "a 5000-byte compression value accepted"
xassert "$MNT/t/0" retention_bytes "$before" "retention_bytes after refused values"
alive "after hostile values"
# Every refusal above is one log line, names escaped: no control byte
# reaches the log.
count_log() { grep -c -F "$1" "$WORK/daemon.log"; }
[ "$(count_log "refused partition name")" -ge 10 ] ||
	fail "refused partition names not logged ($(count_log "refused partition name"))"
[ "$(count_log "refused topic name")" -ge 2 ] ||
	fail "refused topic names not logged"
[ "$(count_log "refused attribute 'user.fluxfs.retention_bytes\\x01'")" -ge 1 ] ||
	fail "refused attribute names not logged"
# A refused value is logged with the value escaped: "refused KEY=VALUE on 'NAME'".
count_refused() { grep -c "refused $1=.* on '$2'" "$WORK/daemon.log"; }
[ "$(count_refused retention_bytes 0)" -ge 11 ] ||
	fail "refused retention_bytes values not logged ($(count_refused retention_bytes 0))"
[ "$(count_refused segment_bytes t)" -ge 6 ] ||
	fail "refused segment_bytes values not logged"
grep -q -F "refused partition name 'a\\x01b'" "$WORK/daemon.log" ||
	fail "a control byte in a refused name is not escaped in the log"
! LC_ALL=C grep -q "$(printf '[\001\177]')" "$WORK/daemon.log" ||
	fail "a control byte reached the daemon log"

# --- D. permissions (before C: C remounts) -------------------------------
if as_nobody true 2>/dev/null; then
	P="$MNT/t/0"
	chmod 755 "$MNT/t" && chmod 644 "$P" || fail "chmod"
	expect_err "$EACCES_MSG" as_nobody setfattr -n user.fluxfs.retention_bytes -v 1 "$P"
	expect_err "$EACCES_MSG" as_nobody setfattr -n user.fluxfs.retention_bytes -v 1 "$MNT/t"
	expect_err "$EPERM_MSG" as_nobody chmod 666 "$P"
	expect_err "$EPERM_MSG" as_nobody chown 65534 "$P"
	expect_err "$EACCES_MSG" as_nobody truncate -s 6 "$P"
	expect_err "$EACCES_MSG" as_nobody fallocate -p -o 0 -l 6 "$P"
	expect_err "$EACCES_MSG" as_nobody touch "$P"
	expect_err "$EACCES_MSG" as_nobody sh -c 'echo x >"$1"' sh "$MNT/.metrics"
	expect_err "$EACCES_MSG" as_nobody rmdir "$MNT/t"
	expect_err "$EACCES_MSG" as_nobody mv "$MNT/t" "$MNT/u"
	expect_err "$EACCES_MSG" as_nobody mv "$P" "$MNT/t/1"
	expect_err "$EACCES_MSG" as_nobody rm "$P"
	as_nobody cat "$MNT/.metrics" >/dev/null || fail "other users cannot read .metrics (mode $(stat -c %a "$MNT/.metrics"))"
	assert_eq "hello" "$(as_nobody cat "$P")" "other user reads a 0644 partition"
	chmod 600 "$P" || fail "chmod 600"
	expect_err "$EACCES_MSG" as_nobody cat "$P"
	expect_err "$EACCES_MSG" as_nobody getfattr -n user.fluxfs.next_offset "$P"
	if [ -e "$MNT/.follow/t/0" ]; then
		expect_err "$EACCES_MSG" as_nobody timeout 5 cat "$MNT/.follow/t/0"
		log "follow view: permissions checked"
	else
		log "no follow view on this mount: its permissions not checked"
	fi
	chmod 644 "$P"
	assert_eq "hello" "$(cat "$P")" "content after refused operations"
	alive "after permission checks"
else
	log "cannot switch to uid 65534: permission part skipped"
fi
mount_stop || fail "clean unmount before planting"

# --- C. planted data directory -------------------------------------------
O="$WORK/outside"
mkdir -p "$O/topic" "$O/part"
printf 'OUTSIDE-SECRET\n' >"$O/secret.log"
printf 'compression=gzip\nretention_bytes=1\n' >"$O/topic.conf"
printf 'fluxfs-partition-state 1\nstart_offset=0\nstart_byte=999\n' >"$O/state"
cp -a "$DATA/t/0/." "$O/part/"
cp -a "$DATA/t" "$O/topic/"
snapshot() {
	(cd "$O" && find . -type f -printf '%p %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort)
}
snapshot >"$WORK/outside.before"
mk_part() { # mk_part TOPIC PART: a real partition with one line
	mkdir -p "$MNT/$1"
	echo "line of $1/$2" >>"$MNT/$1/$2" || fail "setup $1/$2"
}
mount_launch
for t in s1 s2 s3 s4 s5 s6 s8; do mk_part "$t" 0; done
mk_part s7 0
mk_part s7 1
mount_stop || fail "clean unmount before planting"
seg=00000000000000000000
ln -sf "$O/secret.log" "$DATA/s1/0/$seg.log"
ln -sf "$O/secret.log" "$DATA/s2/0/$seg.idx"
ln -sf "$O/state" "$DATA/s3/0/partition.state"
rm -f "$DATA/s4/topic.conf"
ln -s "$O/topic.conf" "$DATA/s4/topic.conf"
rm -rf "$DATA/s5/0" && ln -s "$O/part" "$DATA/s5/0"
rm -rf "$DATA/s6" && ln -s "$O/topic/t" "$DATA/s6"
rm -f "$DATA/s7/1/$seg.log" && mkfifo "$DATA/s7/1/$seg.log"
mkdir "$DATA/bad name" "$DATA/s8/$(printf 'x\001y')"
: >"$WORK/daemon.log"
# The mount must come up (mount_launch fails after 10 s): a FIFO must not
# block recovery.
mount_launch
alive "after mounting the planted data directory"
found=$(grep -rl --binary-files=text OUTSIDE-SECRET "$MNT" 2>/dev/null | head -3)
[ -z "$found" ] || fail "outside file content served through the mount: $found"
for f in s1/0 s2/0 s3/0 s5/0 s6/0 s7/1; do
	# Appends go to fluxfs's own files or fail; never through the link.
	timeout 10 sh -c 'echo appended >>"$1"' sh "$MNT/$f" 2>/dev/null
	rc=$?
	[ "$f" = s7/1 ] && fifo_append_rc=$rc
	[ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "append to planted $f hung"
	timeout 10 cat "$MNT/$f" >/dev/null 2>&1
	[ $? -lt 124 ] || fail "read of planted $f hung"
done
[ -e "$MNT/s4" ] && {
	xget c "$MNT/s4" compression
	[ "$c" != gzip ] || fail "topic.conf read through a symlink (compression=$c)"
}
[ -e "$MNT/bad name" ] && fail "a directory with a bad name is served"
alive "after using the planted partitions"
status=0
daemon_stop_any || status=$?
[ $status -le 1 ] || fail "daemon exit status $status"
snapshot >"$WORK/outside.after"
cmp -s "$WORK/outside.before" "$WORK/outside.after" ||
	fail "a file outside the data directory changed: $(diff "$WORK/outside.before" "$WORK/outside.after" | head -5)"
log "daemon lines about the planted entries:"
grep -E -i "symlink|not a regular|ignor|skip|refus|cannot|bad" "$WORK/daemon.log" | sed 's/^/  /' | head -20
grep -q -E -i "s1|s2|s3|s5|s6|s7" "$WORK/daemon.log" ||
	fail "the daemon logged nothing about the planted entries"
# The FIFO in place of s7/1's segment is refused, not written into (an
# append taken into a pipe would be acknowledged and lost).
grep -q "cannot open partition 's7/1'" "$WORK/daemon.log" ||
	fail "the partition whose segment is a FIFO was not refused"
[ "$fifo_append_rc" != 0 ] ||
	fail "an append to the partition whose segment is a FIFO succeeded"
mount_launch
log "ok"
