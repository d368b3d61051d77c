#!/bin/bash
# xattr.sh - user.fluxfs.* attributes: the read-only log position ones on
# partitions, the configuration on topics and partitions; setfattr round
# trips, layering (topic value seen by its partitions unless overridden),
# bad values refused with EINVAL, and persistence across a remount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

EINVAL_MSG="Invalid argument"
CONFIG_KEYS="segment_bytes segment_ms retention_bytes retention_ms flush_ms max_message_bytes compression"
mount_start -o retention_ms=7d
T="$MNT/t"
P="$T/0"
mkdir "$T" || fail "mkdir topic"
printf 'a\nbb\nccc\n' >>"$P" || fail "append"

# getfattr -d -m - lists every attribute with its value.
getfattr --absolute-names -d -m - "$P" >"$WORK/dump" 2>&1 || fail "getfattr -d on a partition: $(cat "$WORK/dump")"
for k in start_offset next_offset start_byte segments $CONFIG_KEYS; do
	grep -q "^user\.fluxfs\.$k=" "$WORK/dump" || fail "getfattr -d of a partition lacks user.fluxfs.$k: $(cat "$WORK/dump")"
done
grep -qx 'user.fluxfs.start_offset="0"' "$WORK/dump" || fail "start_offset in dump: $(cat "$WORK/dump")"
grep -qx 'user.fluxfs.next_offset="3"' "$WORK/dump" || fail "next_offset in dump: $(cat "$WORK/dump")"
grep -qx 'user.fluxfs.start_byte="0"' "$WORK/dump" || fail "start_byte in dump: $(cat "$WORK/dump")"
grep -qx 'user.fluxfs.segments="1"' "$WORK/dump" || fail "segments in dump: $(cat "$WORK/dump")"
xassert_cfg "$P" retention_ms 604800000 "mount option default"
xassert_cfg "$P" compression none "default compression"
xassert_cfg "$P" max_message_bytes 1048576 "default max_message_bytes"

getfattr --absolute-names -d -m - "$T" >"$WORK/tdump" 2>&1 || fail "getfattr -d on a topic: $(cat "$WORK/tdump")"
for k in $CONFIG_KEYS; do
	grep -q "^user\.fluxfs\.$k=" "$WORK/tdump" || fail "getfattr -d of a topic lacks user.fluxfs.$k: $(cat "$WORK/tdump")"
done
grep -q "next_offset" "$WORK/tdump" && fail "a topic shows partition-only attributes: $(cat "$WORK/tdump")"

# Read-only attributes cannot be set.
out=$(setfattr -n user.fluxfs.next_offset -v 99 "$P" 2>&1) && fail "setfattr of read-only next_offset succeeded"
xassert "$P" next_offset 3 "read-only next_offset after a refused set"

# Round trips on the partition.
setv() {
	setfattr -n "user.fluxfs.$2" -v "$3" "$1" || fail "setfattr $2=$3 on '$1'"
}
setv "$P" retention_ms 3600000
xassert_cfg "$P" retention_ms 3600000 "partition retention_ms"
setv "$P" retention_bytes 10M
xassert_cfg "$P" retention_bytes 10485760 "partition retention_bytes"
setv "$P" compression lz4
xassert_cfg "$P" compression lz4 "partition compression"
setv "$P" flush_ms 250
xassert_cfg "$P" flush_ms 250 "partition flush_ms"
setv "$P" segment_ms 2h
xassert_cfg "$P" segment_ms 7200000 "partition segment_ms"

# Round trips on the topic; partitions without an override follow it, the
# partition's own overrides win.
setv "$T" segment_bytes 1048576
xassert_cfg "$T" segment_bytes 1048576 "topic segment_bytes"
xassert_cfg "$P" segment_bytes 1048576 "existing partition follows the topic"
setv "$T" compression gzip
xassert_cfg "$T" compression gzip "topic compression"
xassert_cfg "$P" compression lz4 "partition override beats the topic"
echo x >>"$T/1" || fail "append to a new partition"
xassert_cfg "$T/1" segment_bytes 1048576 "new partition inherits the topic"
xassert_cfg "$T/1" compression gzip "new partition inherits topic compression"
xassert_cfg "$T/1" retention_ms 604800000 "new partition keeps the mount default"

# Bad values: EINVAL, value unchanged.
bad() {
	expect_err "$EINVAL_MSG" setfattr -n "user.fluxfs.$2" -v "$3" "$1"
}
bad "$P" segment_bytes abc
bad "$P" segment_bytes 12q
bad "$P" segment_bytes 100
bad "$P" retention_ms 5x
bad "$P" compression brotli
bad "$P" max_message_bytes 0
bad "$T" compression bogus
bad "$T" segment_bytes -7
xassert_cfg "$P" segment_bytes 1048576 "segment_bytes after refused values"
xassert_cfg "$P" compression lz4 "compression after refused values"
xassert_cfg "$T" compression gzip "topic compression after a refused value"

mount_restart
xassert_cfg "$P" retention_ms 3600000 "partition retention_ms after remount"
xassert_cfg "$P" retention_bytes 10485760 "partition retention_bytes after remount"
xassert_cfg "$P" compression lz4 "partition compression after remount"
xassert_cfg "$P" flush_ms 250 "partition flush_ms after remount"
xassert_cfg "$P" segment_ms 7200000 "partition segment_ms after remount"
xassert_cfg "$T" segment_bytes 1048576 "topic segment_bytes after remount"
xassert_cfg "$T" compression gzip "topic compression after remount"
xassert_cfg "$T/1" compression gzip "inherited compression after remount"
xassert_cfg "$T/1" retention_ms 604800000 "mount default after remount"
xassert "$P" next_offset 3 "next_offset after remount"
assert_eq "$(printf 'a\nbb\nccc')" "$(cat "$P")" "content after remount"
log "ok"
