#!/bin/bash
# groups.sh - consumer groups as files (MNT/.groups) with real tools:
# listings; two consecutive cats give disjoint, consecutive ranges that
# cover everything; a `while read -r` loop; `head -n 10` then cat (what an
# early close commits); one reader per group partition (EBUSY); resets;
# lag xattrs; bad input; positions that survive a remount and follow a
# rename; rmdir.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start
mkdir "$MNT/orders" || fail "mkdir topic"
P="$MNT/orders/0"
gen_lines 100 a >"$WORK/a"
cat "$WORK/a" >>"$P" || fail "append"

# Listings.
mkdir "$MNT/.groups/billing" || fail "mkdir a group"
assert_eq "billing" "$(ls "$MNT/.groups")" "groups listed"
assert_eq "orders" "$(ls "$MNT/.groups/billing")" "a group lists the topics"
assert_eq "0" "$(ls "$MNT/.groups/billing/orders")" "a group topic lists the partitions"
ls -a "$MNT" | grep -qx .groups || fail ".groups not in the root listing"
G="$MNT/.groups/billing/orders/0"
xassert "$G" lag_messages 100 "lag before any read"

# Two cats: disjoint, consecutive, everything.
cat "$G" >"$WORK/c1" || fail "first cat"
cmp "$WORK/a" "$WORK/c1" || fail "first cat is not the whole partition"
cat "$G" >"$WORK/c2" || fail "second cat"
[ ! -s "$WORK/c2" ] || fail "second cat with nothing new read $(wc -l <"$WORK/c2") lines"
gen_lines 50 b >"$WORK/b"
cat "$WORK/b" >>"$P"
cat "$G" >"$WORK/c3" || fail "third cat"
cmp "$WORK/b" "$WORK/c3" || fail "third cat is not exactly what arrived since"
cat "$WORK/c1" "$WORK/c2" "$WORK/c3" | cmp - "$P" || fail "the cats do not cover the partition"
xassert "$G" committed_offset 150 "committed offset after reading everything"
xassert "$G" committed_byte "$(fsize "$P")" "committed byte"
xassert "$G" lag_messages 0 "lag after reading everything"
xassert "$G" lag_bytes 0 "lag bytes"

# A while-read loop, then another that finds nothing new.
mkdir "$MNT/.groups/loop"
L="$MNT/.groups/loop/orders/0"
n=0
while IFS= read -r line; do
	n=$((n + 1))
	echo "$line"
done <"$L" >"$WORK/l1"
assert_eq 150 "$n" "lines a while-read loop saw"
cmp "$WORK/l1" "$P" || fail "the while-read loop's lines"
n=0
while IFS= read -r line; do n=$((n + 1)); done <"$L"
assert_eq 0 "$n" "a second while-read loop"

# head -n 10, then cat: head reads a block and prints 10 lines; the group
# commits every whole message head read (the kernel keeps head's seek
# back to line 10 to itself), and cat goes on from there.  A partition
# longer than head's block shows it.
mkdir "$MNT/big"
gen_lines 20000 big >"$MNT/big/0"
mkdir "$MNT/.groups/h"
H="$MNT/.groups/h/big/0"
head -n 10 "$H" >"$WORK/h1"
head -n 10 "$MNT/big/0" | cmp - "$WORK/h1" || fail "head -n 10 of the group file"
xget k "$H" committed_offset
[ "$k" -ge 10 ] && [ "$k" -lt 20000 ] || fail "head committed $k messages"
cat "$H" >"$WORK/h2"
tail -n +"$((k + 1))" "$MNT/big/0" | cmp - "$WORK/h2" || fail "cat after head does not continue at message $k"
log "head -n 10 read (and committed) $k messages"

# One reader per group partition: a second open gets EBUSY; another group
# is independent; after the close the partition is free again.
exec 3<"$G"
expect_err "Device or resource busy" cat "$G"
expect_ok cat "$MNT/.groups/loop/orders/0"
exec 3<&-
expect_ok cat "$G"

# Read-only: writing opens are refused; a group file cannot be removed.
expect_err "Permission denied" sh_c 'echo x >>"$1"' "$G"
expect_err "Operation not permitted" rm -f "$G"

# Bad input: names, options, reset values; each changes nothing.
expect_err "Invalid argument" mkdir "$MNT/.groups/bad name"
expect_err "Invalid argument" mkdir "$MNT/.groups/.hidden"
expect_err "File exists" mkdir "$MNT/.groups/billing"
expect_err "Invalid argument" setfattr -n user.fluxfs.auto_offset_reset -v middle "$MNT/.groups/billing"
expect_err "Invalid argument" setfattr -n user.fluxfs.reset -v yesterday "$G"
expect_err "Numerical result out of range" setfattr -n user.fluxfs.reset -v offset:151 "$G"
expect_err "Operation not permitted" setfattr -n user.fluxfs.committed_offset -v 3 "$G"
xassert "$G" committed_offset 150 "position after refused input"
grep -q "refused attribute 'user.fluxfs.reset' = 'yesterday'" "$WORK/daemon.log" ||
	fail "a refused reset was not logged"

# Resets, like kafka-consumer-groups --reset-offsets.
setfattr -n user.fluxfs.reset -v offset:140 "$G" || fail "reset to offset 140"
cat "$G" | cmp - <(tail -n 10 "$P") || fail "read after reset to offset 140"
setfattr -n user.fluxfs.reset -v earliest "$G" || fail "reset to earliest"
xassert "$G" lag_messages 150 "lag after reset to earliest"
cat "$G" | cmp - "$P" || fail "read after reset to earliest"
setfattr -n user.fluxfs.reset -v earliest "$G"
setfattr -n user.fluxfs.reset -v latest "$G" || fail "reset to latest"
xassert "$G" lag_messages 0 "lag after reset to latest"
setfattr -n user.fluxfs.reset -v time:2000-01-01T00:00:00Z "$G" || fail "reset to a time"
xassert "$G" committed_offset 0 "reset to a time before every message"
setfattr -n user.fluxfs.reset -v time:2999-01-01T00:00:00 "$G" || fail "reset to a future time"
xassert "$G" committed_offset 150 "reset to a time after every message"
# The views' grammar: relative and epoch-ms times too (Kafka's
# --by-duration and --to-datetime).
setfattr -n user.fluxfs.reset -v time:-1h "$G" || fail "reset to an hour ago"
xassert "$G" committed_offset 0 "reset to an hour ago"
setfattr -n user.fluxfs.reset -v "time:$(($(date +%s%3N) + 60000))" "$G" ||
	fail "reset to an epoch ms in a minute"
xassert "$G" committed_offset 150 "reset to an epoch ms in a minute"
expect_err "Invalid argument" setfattr -n user.fluxfs.reset -v time:2026-13-01T00:00Z "$G"
# A reset while the partition is being read is refused.
exec 3<"$G"
expect_err "Device or resource busy" setfattr -n user.fluxfs.reset -v earliest "$G"
exec 3<&-

# auto_offset_reset=latest: a new group starts at the end.
mkdir "$MNT/.groups/late"
setfattr -n user.fluxfs.auto_offset_reset -v latest "$MNT/.groups/late" || fail "set auto_offset_reset"
xassert "$MNT/.groups/late" auto_offset_reset latest "auto_offset_reset"
: "$(cat "$MNT/.groups/late/orders/0")"
echo "after late" >>"$P"
assert_eq "after late" "$(cat "$MNT/.groups/late/orders/0")" "a latest group reads only new messages"
xassert "$MNT/.groups/late" commit_ms 5000 "commit_ms default"
getfattr -d -m - "$G" | grep -q "user.fluxfs.lag_messages" || fail "getfattr -d does not list lag_messages"

# Positions survive a remount and follow a rename of the partition and
# of the topic; the file on disk passes its check.
echo "after remount" >>"$P"
mount_restart
assert_eq "billing h late loop" "$(ls "$MNT/.groups" | sort | tr '\n' ' ' | sed 's/ $//')" "groups after remount"
mv "$MNT/orders/0" "$MNT/orders/7" || fail "rename partition"
mv "$MNT/orders" "$MNT/sales" || fail "rename topic"
rm -r "$MNT/big"
assert_eq "after late
after remount" "$(cat "$MNT/.groups/billing/sales/7")" "billing after remount and renames"
assert_eq "after remount" "$(cat "$MNT/.groups/late/sales/7")" "late after remount and renames"
assert_eq "after late
after remount" "$(cat "$MNT/.groups/loop/sales/7")" "loop after remount and renames"

# rmdir: refused while read, then the group is gone, also on disk.
exec 3<"$MNT/.groups/h/sales/7"
expect_err "Device or resource busy" rmdir "$MNT/.groups/h"
exec 3<&-
rmdir "$MNT/.groups/h" || fail "rmdir a group"
[ ! -e "$MNT/.groups/h" ] || fail "removed group still there"
[ ! -e "$DATA/.groups/h.group" ] || fail "removed group's file still there"
mkdir "$MNT/.groups/h"
xassert "$MNT/.groups/h/sales/7" committed_offset 0 "a group made again starts afresh"

# Deleting a partition drops its positions (also from the files); one
# made again under its name is a new partition, read from its start.
grep -q "^pos $(stat -c %i "$MNT/sales/7") " "$DATA/.groups/billing.group" ||
	fail "billing has no position on sales/7 on disk"
exec 3<"$MNT/.groups/loop/sales/7" # a reader open across the deletion
echo more >>"$MNT/sales/7"
rm "$MNT/sales/7" || fail "rm a partition"
! grep -q "^pos " "$DATA/.groups/billing.group" ||
	fail "a deleted partition's position is still in billing's file"
assert_eq more "$(cat <&3)" "a group reader open across the deletion"
exec 3<&-
sleep 0.2 # the release
! grep -q "^pos " "$DATA/.groups/loop.group" ||
	fail "a reader's close brought back a deleted partition's position"
echo fresh >>"$MNT/sales/7"
assert_eq fresh "$(cat "$MNT/.groups/billing/sales/7")" "billing on a partition made again"
log "ok"
