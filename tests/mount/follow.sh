#!/bin/bash
# follow.sh - the follow view MNT/.follow/<topic>/<partition>: cat of it
# gets every append in order and waits at the end (parked, no thread);
# O_NONBLOCK gives EAGAIN at the end; a signal ends a parked read at
# once; epoll wakes on append; same permissions as the partition,
# read-only; the retention hole reads as zeros; deleting or renaming the
# partition ends its followers with end-of-file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
TOOL_FOLLOW="$top_builddir/tests/mount/tool_follow"
TOOL_EPOLL="$top_builddir/tests/mount/tool_epoll"
need_tool "$TOOL_FOLLOW"
need_tool "$TOOL_EPOLL"

# metric NAME: the daemon-wide figure NAME from .metrics.
metric() { awk -v k="$1" '$1 == k { print $2 }' "$MNT/.metrics"; }
# wait_ms MS CMD...: poll CMD every 10 ms for up to MS milliseconds.
wait_ms() {
	local deadline=$(($(date +%s%N) / 1000000 + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) / 1000000)) -lt $deadline ] || return 1
		sleep 0.01
	done
}
parked_is() { [ "$(metric fluxfs_parked_followers)" = "$1" ]; }
lines_are() { [ "$(wc -l <"$1")" -eq "$2" ]; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
F="$MNT/.follow/t/0"
echo "msg 0" >>"$P" || fail "append"

# The view mirrors the namespace, hidden at the root.
ls -a "$MNT" | grep -qx .follow || fail ".follow not listed at the root"
assert_eq "t" "$(ls "$MNT/.follow")" "topics in .follow"
assert_eq "0" "$(ls "$MNT/.follow/t")" "partitions in .follow/t"
[ -f "$F" ] || fail "follow file is not a regular file"
[ -e "$MNT/.follow/t/nope" ] && fail "follow view invents partitions"

# 1. cat of the follow view gets each of 1,000 appends, in order.
cat "$F" >"$WORK/cat.out" &
CAT=$!
wait_ms 3000 parked_is 1 || fail "cat did not park at the end (parked $(metric fluxfs_parked_followers))"
for i in $(seq 1 1000); do
	echo "msg $i" >>"$P" || fail "append $i"
done
wait_ms 5000 lines_are "$WORK/cat.out" 1001 ||
	fail "follower has $(wc -l <"$WORK/cat.out") of 1001 lines"
seq 0 1000 | sed 's/^/msg /' >"$WORK/want"
same_file "$WORK/want" "$WORK/cat.out" "what the follower read"
kill -0 $CAT 2>/dev/null || fail "cat of the follow view ended"
wait_ms 2000 parked_is 1 || fail "follower not parked again"
log "1000 appends followed in order"

# 2. Deleting the partition ends the follower with end-of-file (cat
# exits 0 having printed everything), and the old name is gone.
mv "$P" "$MNT/t/moved" || fail "rename"
wait_ms 1000 pid_gone $CAT || fail "rename did not end the follower"
wait $CAT || fail "cat of a renamed partition exited with status $?"
same_file "$WORK/want" "$WORK/cat.out" "follower after rename"
[ -e "$F" ] && fail "follow view still shows the old name"
P="$MNT/t/moved"
F="$MNT/.follow/t/moved"
cmp -s "$P" <(head -c "$(fsize "$P")" "$F") || fail "follow view of the new name"
cat "$F" >"$WORK/cat2.out" &
CAT=$!
exec 3<"$F"
wait_ms 3000 parked_is 1 || fail "second follower did not park"
rm "$P" || fail "rm"
wait_ms 1000 pid_gone $CAT || fail "rm did not end the follower"
wait $CAT || fail "cat of a removed partition exited with status $?"
same_file "$WORK/want" "$WORK/cat2.out" "follower after rm"
# A later read on a descriptor opened before the removal: end-of-file.
assert_eq 0 "$(head -c 100 <&3 | wc -c)" "read after removal"
exec 3<&-
parked_is 0 || fail "parked count after the followers ended"
# A removed topic leaves the view too (and the daemon must not keep it:
# the ASan build checks that nothing leaks at unmount).
mkdir "$MNT/gone" && echo x >>"$MNT/gone/p" || fail "second topic"
assert_eq x "$(head -n 1 "$MNT/.follow/gone/p")" "follow view of a new topic"
rm "$MNT/gone/p" && rmdir "$MNT/gone" || fail "remove the second topic"
[ -e "$MNT/.follow/gone" ] && fail "removed topic still in the follow view"
# Renaming a topic ends the followers of its partitions' old names.
mkdir "$MNT/old" && echo y >>"$MNT/old/p" || fail "third topic"
cat "$MNT/.follow/old/p" >"$WORK/cat3.out" &
CAT=$!
wait_ms 3000 parked_is 1 || fail "follower of the third topic did not park"
mv "$MNT/old" "$MNT/new" || fail "topic rename"
wait_ms 1000 pid_gone $CAT || fail "topic rename did not end the follower"
wait $CAT || fail "cat of a renamed topic's partition exited with status $?"
assert_eq y "$(cat "$WORK/cat3.out")" "follower after topic rename"
[ -e "$MNT/.follow/old" ] && fail "follow view still shows the old topic"
assert_eq y "$(head -n 1 "$MNT/.follow/new/p")" "follow view of the new topic"
rm "$MNT/new/p" && rmdir "$MNT/new" || fail "remove the third topic"
log "rename and rm end followers with EOF"

# 3. O_NONBLOCK at the end: EAGAIN.
P="$MNT/t/1"
F="$MNT/.follow/t/1"
printf 'one\ntwo\n' >>"$P" || fail "append"
expect_ok "$TOOL_FOLLOW" nonblock "$F"

# 4. SIGINT on a parked reader ends it within 1 s, killed or EINTR.  An
# interrupt that waited for data would never end it; the bound is loose
# because a loaded 2-CPU machine took up to 215 ms to schedule the end.
out=$("$TOOL_FOLLOW" interrupt "$F" kill) || fail "SIGINT to a parked read: $out"
log "$out (killed)"
out=$("$TOOL_FOLLOW" interrupt "$F" eintr) || fail "SIGINT to a parked read: $out"
log "$out (EINTR)"
parked_is 0 || fail "interrupted reads still counted as parked"
# And a real cat (a background job starts with SIGINT ignored: restore it).
env --default-signal=INT cat "$F" >/dev/null &
CAT=$!
wait_ms 3000 parked_is 1 || fail "cat did not park"
t0=$(date +%s%N)
kill -INT $CAT
rc=0
wait $CAT || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 130 "$rc" "status of a parked cat after SIGINT"
[ $ms -le 1000 ] || fail "parked cat took $ms ms to end after SIGINT"
log "parked cat ended $ms ms after SIGINT"

# 4b. An append the daemon makes itself, not inside a write(): the held
# partial line of a writer becomes a message when the writer closes
# (in the FLUSH handler).  The follower wakes the same way.
cat "$F" >"$WORK/held.out" &
CAT=$!
wait_ms 3000 parked_is 1 || fail "follower did not park"
need_tool "$TOOL_FSOP"
hold_start w "$P"
hold_write w 'held' || fail "held write: $HOLD_ACK"
sleep 0.3
grep -q held "$WORK/held.out" && fail "follower saw a partial line"
hold_close w || fail "close of the holder: $HOLD_ACK"
wait_ms 1000 grep -qx held "$WORK/held.out" || fail "close of a writer did not wake the follower"
kill $CAT
wait $CAT 2>/dev/null
log "an append made by the daemon (flush of a held line) wakes followers"

# 5. The partition file polls like a regular file (epoll, poll, select:
# a reader at its end and a writer are ready at once); the follow file
# wakes on append.
out=$("$TOOL_EPOLL" "$P" "$F" 3) || fail "epoll: $out"
log "$out"

# 6. Read-only, same permissions as the partition.
expect_err "Permission denied" sh_c 'echo x >>"$1"' "$F"
chmod 640 "$P" || fail "chmod"
assert_eq "$(stat -c '%a %u %g' "$P")" "$(stat -c '%a %u %g' "$F")" "follow mode and owner"
assert_eq "$(fsize "$P")" "$(fsize "$F")" "follow st_size"

# 7. The retention hole reads as zeros, as in the partition file.
gen_lines 200 hole >>"$P" || fail "append lines"
fallocate -p -o 0 -l 1000 "$P" || fail "delete records"
size=$(fsize "$P")
# (head, not tail: tail -c +N reads to an end the follow view never has)
assert_eq 0 "$(head -c 900 "$F" | tr -d '\0' | wc -c)" "non-zero bytes in the hole"
cmp -s <(head -c "$size" "$P") <(head -c "$size" "$F") || fail "follow view differs from the partition"
log "ok"
