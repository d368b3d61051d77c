#!/bin/bash
# metrics.sh - MNT/.metrics: hidden from ls without -a, read-only, valid
# Prometheus text format, and its per-partition counters follow appends.
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
log "ok"
