#!/bin/bash
# ctl_offline.sh - fluxctl on a real data directory written through a
# mount: stat --json, dump counts, seek by offset and by time, verify on a
# clean log, repair refused while mounted, a flipped byte in a sealed
# segment found by verify, quarantined by repair, verify clean again, and
# the repaired directory mounts and serves the rest.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
mount_start -o segment_bytes=4k
P=$MNT/orders/0
mkdir "$MNT/orders"

# 300 messages of 31 bytes in three bursts with known times between them.
for i in $(seq 0 99); do printf 'message number %03d padding pad\n' $i; done >>"$P"
sleep 1.1
T1=$(date +%s%3N)
sleep 0.1
for i in $(seq 100 199); do printf 'message number %03d padding pad\n' $i; done >>"$P"
sleep 1.1
T2=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
for i in $(seq 200 299); do printf 'message number %03d padding pad\n' $i; done >>"$P"
assert_eq 9300 "$(stat -c %s "$P")" "size after 300 appends"

# Online stat reads the xattrs.
"$FLUXCTL" stat "$MNT" --json >"$WORK/online.json" || fail "stat on the mount"
python3 - "$WORK/online.json" <<'PY' || fail "online stat json"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["partitions"]
assert len(p) == 1 and p[0]["source"] == "mount", p
assert p[0]["next_offset"] == 300 and p[0]["end_byte"] == 9300, p
assert p[0]["segments"] >= 3, p
PY

# repair refuses while the daemon holds the lock, naming its pid.
rc=0; "$FLUXCTL" repair "$DATA" >"$WORK/out" 2>&1 || rc=$?
assert_eq 2 "$rc" "repair while mounted"
grep -q "pid $FLUXFS_PID" "$WORK/out" || fail "repair refusal does not name pid $FLUXFS_PID: $(cat "$WORK/out")"

mount_stop || fail "unmount"
D=$DATA/orders/0

"$FLUXCTL" stat "$DATA" --json >"$WORK/offline.json" || fail "offline stat"
python3 - "$WORK/offline.json" <<'PY' || fail "offline stat json"
import json, sys
p = json.load(open(sys.argv[1]))["partitions"]
assert len(p) == 1 and p[0]["source"] == "data", p
q = p[0]
assert (q["start_offset"], q["next_offset"]) == (0, 300), q
assert (q["start_byte"], q["end_byte"], q["bytes"]) == (0, 9300, 9300), q
assert q["segments"] >= 3 and q["ratio"] == 1.0, q
assert q["oldest_ts"] <= q["newest_ts"], q
PY
"$FLUXCTL" stat "$D" | grep -q "next offset *300" || fail "stat table"

# dump: one entry line per entry, one message line per message.
"$FLUXCTL" dump "$D" --messages >"$WORK/dump" || fail "dump"
assert_eq 300 "$(grep -c '^| offset:' "$WORK/dump")" "messages dumped"
grep -q '^| offset: 299 position: 9269 length: 31 payload: message number 299 padding pad$' "$WORK/dump" \
	|| fail "last message line"
grep -q 'INVALID' "$WORK/dump" && fail "clean dump shows a bad crc"
n=$("$FLUXCTL" dump "$D" --from 250 --messages | grep -c '^| offset:')
assert_eq 50 "$n" "messages from 250"
first=$(ls "$D"/*.log | head -1)
entries=$(( ($(stat -c %s "${first%.log}.idx") - 64) / 48 ))
assert_eq "$entries" "$("$FLUXCTL" dump "$first" | grep -c '^offset:')" "entries of one segment"

# seek by offset and time; tail -c +pos+1 starts at the message.
assert_eq 0 "$("$FLUXCTL" seek "$D" --offset 0)" "seek offset 0"
pos=$("$FLUXCTL" seek "$D" --offset 137) || fail "seek offset 137"
assert_eq $((137 * 31)) "$pos" "seek offset 137"
assert_eq "message number 137 padding pad" "$(cat "$D"/*.log | tail -c +$((pos + 1)) | head -1)" "bytes at seek"
assert_eq 3100 "$("$FLUXCTL" seek "$D" --time "$T1")" "seek epoch ms"
assert_eq 6200 "$("$FLUXCTL" seek "$D" --time "$T2")" "seek iso 8601"
assert_eq 0 "$("$FLUXCTL" seek "$D" --time -1h)" "seek relative"
rc=0; "$FLUXCTL" seek "$D" --offset 300 2>/dev/null || rc=$?
assert_eq 1 "$rc" "seek past the end"
rc=0; "$FLUXCTL" seek "$D" --time 2030-01-01T00:00:00Z 2>/dev/null || rc=$?
assert_eq 1 "$rc" "seek to the future"

# bad arguments: exit 2, one line and a hint.
for args in "seek $D" "seek $D --offset x" "seek $D --time yesterday" \
	"seek $D --offset 1 --time -1h" "dump $D --from" "stat" "verify $D --bogus" \
	"nosuch" "stat $WORK/nonexistent"; do
	rc=0; "$FLUXCTL" $args >/dev/null 2>"$WORK/err" || rc=$?
	assert_eq 2 "$rc" "fluxctl $args"
	grep -q '^fluxctl: ' "$WORK/err" || fail "no error line for: $args"
done
"$FLUXCTL" seek --help | grep -q -- '--time' || fail "seek --help"
"$FLUXCTL" help repair | grep -q 'quarantine' || fail "help repair"

# clean log verifies.
"$FLUXCTL" verify "$DATA" >"$WORK/out" || fail "verify clean: $(cat "$WORK/out")"

# Flip a byte of message 5 in the first (sealed) segment.
seg0=$D/00000000000000000000.log
printf 'X' | dd of="$seg0" bs=1 seek=$((5 * 31 + 3)) conv=notrunc 2>/dev/null
rc=0; "$FLUXCTL" verify "$DATA" >"$WORK/out" || rc=$?
assert_eq 1 "$rc" "verify with a flipped byte"
grep -q "^damaged: orders/0 segment 00000000000000000000.log entry 5 offset 5 byte 155 length 31: crc mismatch" \
	"$WORK/out" || fail "verify does not name the batch: $(cat "$WORK/out")"
"$FLUXCTL" dump "$seg0" | grep -q "^offset: 5 .* INVALID" || fail "dump marks the bad entry"

rc=0; "$FLUXCTL" repair --dry-run "$DATA" >"$WORK/out" || rc=$?
assert_eq 1 "$rc" "dry run reports damage"
grep -q "would move segment 00000000000000000000.log to quarantine" "$WORK/out" || fail "dry-run plan"
[ -f "$seg0" ] || fail "dry run changed the data directory"

"$FLUXCTL" repair "$DATA" >"$WORK/out" || fail "repair: $(cat "$WORK/out")"
grep -q "moving segment 00000000000000000000.log to quarantine" "$WORK/out" || fail "repair report"
[ -f "$D/quarantine/00000000000000000000.log" ] || fail "segment not quarantined"
[ ! -e "$seg0" ] || fail "damaged segment still in place"
"$FLUXCTL" verify "$DATA" >"$WORK/out" || fail "verify after repair: $(cat "$WORK/out")"
second=$(ls "$D"/*.log | head -1)
second=${second##*/}
second=${second%.log}
want_start=$((10#$second))

# The repaired partition mounts; the log starts after the quarantined
# segment, offsets and bytes unchanged.
mount_launch
assert_eq "$want_start" "$(getfattr --only-values -n user.fluxfs.start_offset "$P")" "start offset after repair"
assert_eq 9300 "$(stat -c %s "$P")" "size after repair"
assert_eq "message number 299 padding pad" "$(tail -n 1 "$P")" "last message after repair"
exit 0
