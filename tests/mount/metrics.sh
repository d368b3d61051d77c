#!/bin/bash
# metrics.sh - MNT/.metrics: hidden from ls without -a, read-only, valid
# Prometheus text format, its per-partition counters follow appends, the
# snapshots held open stay within metrics_mem, and each reader sees only
# the partitions it may read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
M="$MNT/.metrics"
mkdir "$MNT/t" || fail "mkdir topic"
printf 'a\nb\nc\n' >>"$MNT/t/0" || fail "append"

assert_eq t "$(ls "$MNT")" "ls of the root without -a"
ls -a "$MNT" | grep -qx .metrics || fail ".metrics not listed by ls -a: $(ls -a "$MNT")"
cat "$M" >"$WORK/m1" || fail "cat .metrics"
[ -s "$WORK/m1" ] || fail ".metrics is empty"
grep -q '^# TYPE ' "$WORK/m1" || fail ".metrics has no '# TYPE' line"
# Every sample line: name, optional labels, one number.
bad=$(grep -v '^#' "$WORK/m1" | grep -v '^$' |
	grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9][0-9.e+-]*$' | head -3)
[ -z "$bad" ] || fail "malformed sample lines in .metrics: $bad"
grep -q '"t"' "$WORK/m1" || fail ".metrics has no series for topic t"

# A counter of messages for t/0 reads 3, and 5 after two more appends.
msgs() {
	grep -v '^#' "$1" | grep 'messages' | grep '"t"' | grep '"0"' | awk '{ print $NF }' | head -1
}
assert_eq 3 "$(msgs "$WORK/m1")" "messages counter of t/0"
printf 'd\ne\n' >>"$MNT/t/0" || fail "second append"
cat "$M" >"$WORK/m2" || fail "cat .metrics again"
assert_eq 5 "$(msgs "$WORK/m2")" "messages counter of t/0 after two more"
# The per-partition gauges: size is st_size, one segment so far.
gauge() {
	grep "^$1{topic=\"t\",partition=\"0\"} " "$WORK/m2" | awk '{ print $NF }'
}
assert_eq "$(stat -c %s "$MNT/t/0")" "$(gauge fluxfs_partition_size_bytes)" "size gauge of t/0"
assert_eq 1 "$(gauge fluxfs_partition_segments)" "segments gauge of t/0"
[ "$(gauge fluxfs_partition_disk_bytes)" -ge 10 ] || fail "disk bytes gauge of t/0: '$(gauge fluxfs_partition_disk_bytes)'"

# Read-only and not a topic.
expect_err "" sh_c 'echo x >>"$1"' "$M"
expect_err "" mkdir "$MNT/.metrics/x"
expect_err "" rm "$M"
[ -e "$M" ] || fail ".metrics gone after a refused rm"

# The snapshots held open share metrics_mem: with 30 partitions one
# snapshot is larger than 16 KiB, so it is served alone, and a second
# open while the first is held fails with ENOMEM and one log line; once
# the first is closed (the kernel's release comes after close returns,
# hence the wait) opens work again.
"$FLUXFS" -f -o metrics_mem=0 "$WORK" "$WORK" >"$WORK/bad.out" 2>&1 &&
	fail "metrics_mem=0 accepted"
grep -q "bad value in option 'metrics_mem=0'" "$WORK/bad.out" ||
	fail "no error for metrics_mem=0: $(cat "$WORK/bad.out")"
mount_restart -o metrics_mem=16k
mkdir "$MNT/m" || fail "mkdir m"
for i in $(seq 1 30); do echo x >>"$MNT/m/p$i" || fail "append to m/p$i"; done
exec {held}<"$M" || fail "open of .metrics"
expect_err "Cannot allocate memory" cat "$M"
grep -q "refused an open of .metrics" "$WORK/daemon.log" ||
	fail "no log line for the refused open"
cat <&$held >"$WORK/m3" || fail "read of the held .metrics"
[ "$(stat -c %s "$WORK/m3")" -gt 16384 ] || fail "held snapshot not over 16k: $(stat -c %s "$WORK/m3") bytes"
grep -q '^fluxfs_partition_size_bytes{topic="m",partition="p30"} 2$' "$WORK/m3" ||
	fail "the held snapshot is not whole"
exec {held}<&-
wait_for 10 cat "$M" || fail ".metrics still refused after the held one closed"
cat "$M" >/dev/null && cat "$M" >/dev/null || fail "opens one after the other"
rm -r "$MNT/m" || fail "rm -r of topic m"

# Who sees what: with allow_other,default_permissions a reader sees only
# the series of partitions it could read itself (read permission on the
# partition, search permission on its topic), and every global series.
A=60001
B=60002
C=60003 # a member of group 60100, which may read topic "grp"
as() {
	local u=$1 g=$2
	shift 2
	setpriv --reuid="$u" --regid="$u" --groups="$g" "$@"
}
if ! as $A $A true 2>/dev/null; then
	log "cannot switch users: per-user .metrics not tested"
	log "ok"
	exit 0
fi
mount_restart -o allow_other,default_permissions
chmod 755 "$WORK" || fail "chmod of the test directory"
mkdir "$MNT/priv" "$MNT/pub" "$MNT/grp" || fail "mkdir topics"
chown $A:$A "$MNT/priv" && chmod 700 "$MNT/priv" || fail "A's private topic"
chown $B:$B "$MNT/pub" || fail "B's topic"
chown $A:60100 "$MNT/grp" && chmod 750 "$MNT/grp" || fail "group topic"
as $A $A sh -c 'echo a >>"$1"' sh "$MNT/priv/0" || fail "A appends"
echo a >>"$MNT/t/secret" && chown $A:$A "$MNT/t/secret" &&
	chmod 600 "$MNT/t/secret" || fail "A's 0600 partition in a shared topic"
as $B $B sh -c 'echo b >>"$1"' sh "$MNT/pub/0" || fail "B appends"
echo g >>"$MNT/grp/0" && chgrp 60100 "$MNT/grp/0" && chmod 640 "$MNT/grp/0" ||
	fail "group partition"
# series WHO...: the topic/partition pairs of WHO's .metrics, one line each.
series() {
	"$@" cat "$M" >"$WORK/mview" || fail "$* cannot read .metrics"
	grep -q '^fluxfs_topics 4$' "$WORK/mview" ||
		fail "global series missing from $*'s .metrics: $(grep -v '{' "$WORK/mview" | grep -v '^#' | head)"
	grep '^fluxfs_partition_size_bytes{' "$WORK/mview" |
		sed 's/.*topic="\([^"]*\)",partition="\([^"]*\)".*/\1\/\2/' | sort | tr '\n' ' '
}
# readable WHO...: the partitions WHO can actually read through the
# mount (the kernel's own verdict), in the same form.
readable() {
	local p out=""
	for p in grp/0 priv/0 pub/0 t/0 t/secret; do
		"$@" cat "$MNT/$p" >/dev/null 2>&1 && out="$out$p "
	done
	echo "$out"
}
# Root's view is held open while the others read theirs: one reader's
# rendering must never be served to another.
exec 3<"$M"
assert_eq "grp/0 priv/0 pub/0 t/0 t/secret " "$(series env)" "root's series"
assert_eq "priv/0 pub/0 t/0 t/secret " "$(series as $A $A)" "A's series"
assert_eq "pub/0 t/0 " "$(series as $B $B)" "B's series"
assert_eq "grp/0 pub/0 t/0 " "$(series as $C 60100)" "C's series (group 60100)"
for who in "$A $A" "$B $B" "$C 60100"; do
	assert_eq "$(readable as $who)" "$(series as $who)" "series of $who against what the kernel lets it read"
done
grep -q 'topic="priv"' <&3 || fail "root's open .metrics lost A's topic"
exec 3<&-
log "ok"
