#!/bin/bash
# limits.sh - max_message_bytes (newline included): a longer line fails
# its write with EMSGSIZE and stores nothing of that write, also when a
# partial line would grow past the limit (the bytes earlier writes
# accepted stay held and are stored); later lines are fine; setfattr
# raises the limit without a remount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

MSG="Message too long"
need_tool "$TOOL_FSOP"
mount_start -o max_message_bytes=1024
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
REF="$WORK/ref"
xs() { head -c "$1" /dev/zero | tr '\0' "${2:-x}"; }

echo first >>"$P" || fail "first append"
echo first >"$REF"
xassert_cfg "$P" max_message_bytes 1024 "mount option applied"

# unchanged MSG: the partition holds exactly $REF and $1 messages.
unchanged() {
	same_file "$REF" "$P" "content after $2"
	xassert "$P" next_offset "$1" "messages after $2"
}

# Exactly at the limit (1023 bytes + newline) is accepted.
xs 1023 a >"$WORK/at"
echo >>"$WORK/at"
cat "$WORK/at" >>"$P" || fail "a 1024-byte message was refused"
cat "$WORK/at" >>"$REF"
unchanged 2 "a message of exactly max_message_bytes"

# One byte over, in one write.
xs 1024 b >"$WORK/over"
echo >>"$WORK/over"
expect_err "$MSG" sh_c 'dd if="$1" of="$2" bs=1M oflag=append conv=notrunc status=none' "$WORK/over" "$P"
unchanged 2 "a 1025-byte message"
# Much longer.
expect_err "$MSG" sh_c 'printf "%s\n" "$(head -c 5000 /dev/zero | tr "\0" c)" >>"$1"' "$P"
unchanged 2 "a 5001-byte message"

echo later >>"$P" || fail "append after EMSGSIZE"
echo later >>"$REF"
unchanged 3 "an append after EMSGSIZE"

# A partial line that would grow past the limit over several writes on
# one descriptor (a holder: shell redirections would flush it each time).
# The write that would overflow fails with EMSGSIZE and changes nothing:
# the bytes the first write accepted stay held, and a later write that
# ends the line within the limit completes them.
hold_start 1 "$P"
hold_write 1 "$(xs 600 d)" || fail "first 600 bytes of a partial line: $HOLD_ACK"
hold_write 1 "$(xs 600 d)" && fail "a partial line grown to 1200 bytes was accepted"
assert_eq "err $MSG" "$HOLD_ACK" "partial line grown past the limit"
unchanged 3 "a partial line that grew past the limit"
hold_write 1 "$(xs 10 e)\n" || fail "a write ending the held line within the limit: $HOLD_ACK"
printf '%s%s\n' "$(xs 600 d)" "$(xs 10 e)" >>"$REF"
unchanged 4 "the held bytes completed after EMSGSIZE"
hold_close 1 || fail "close after a completed line: $HOLD_ACK"
echo fine >>"$P" || fail "append after the oversized partial line"
echo fine >>"$REF"
unchanged 5 "an append after the oversized partial line"

# Bytes a write() accepted are stored or a later call fails: with
# max_message_bytes=100, write(60) returns 60, a second write(60) fails
# with EMSGSIZE, and close stores the 60 held bytes as one message and
# returns 0.
S="$MNT/t/small"
REF2="$WORK/ref2"
: >>"$S" || fail "create t/small"
setfattr -n user.fluxfs.max_message_bytes -v 100 "$S" || fail "setfattr max_message_bytes=100"
hold_start 2 "$S"
hold_write 2 "$(xs 60 g)" || fail "write of 60 bytes under a 100-byte limit: $HOLD_ACK"
assert_eq "ok 60" "$HOLD_ACK" "first write's count"
hold_write 2 "$(xs 60 h)" && fail "a partial line grown to 120 bytes was accepted"
assert_eq "err $MSG" "$HOLD_ACK" "second 60-byte write"
hold_close 2 || fail "close after EMSGSIZE: $HOLD_ACK (the 60 accepted bytes were dropped?)"
xs 60 g >"$REF2"
same_file "$REF2" "$S" "the 60 accepted bytes after close"
xassert "$S" next_offset 1 "messages in t/small"

# Raising the limit on the partition applies at once.
setfattr -n user.fluxfs.max_message_bytes -v 8192 "$P" || fail "setfattr max_message_bytes"
xassert_cfg "$P" max_message_bytes 8192 "raised limit"
cat "$WORK/over" >>"$P" || fail "1025-byte message refused after raising the limit"
cat "$WORK/over" >>"$REF"
unchanged 6 "a 1025-byte message under the raised limit"
log "ok"
