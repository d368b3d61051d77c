#!/bin/bash
# busy.sh - unmounting with a reader: fusermount3 -u fails with EBUSY while
# a partition is open (normal Unix behaviour) and the mount keeps serving;
# once the reader closes, the unmount succeeds and the daemon exits 0.
# SIGTERM and SIGINT with readers and a writer open make the daemon unmount
# and exit 0, and every complete line is there after a remount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

need_tool "$TOOL_FSOP"
mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
echo before >>"$P" || fail "append"

exec 3<"$P"
rc=0
out=$(fusermount3 -u "$MNT" 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "fusermount3 -u succeeded with a partition open"
case $out in
*"busy"*) ;;
*) fail "fusermount3 -u with an open reader: wanted 'Device or resource busy', got '$out'" ;;
esac
is_mounted "$MNT" || fail "mount gone after a refused unmount"
echo while-busy >>"$P" || fail "append after a refused unmount"
assert_eq "$(printf 'before\nwhile-busy')" "$(cat <&3)" "reader after a refused unmount"
exec 3<&-

# A busy directory (a shell's cwd inside the mount) likewise.
(cd "$MNT/t" && exec sleep 60) &
cwd_pid=$!
in_mount() { [ "$(readlink "/proc/$cwd_pid/cwd")" = "$MNT/t" ]; }
wait_for 10 in_mount || fail "the shell did not enter the mount"
fusermount3 -u "$MNT" 2>/dev/null && fail "fusermount3 -u succeeded with a cwd inside the mount"
kill "$cwd_pid"
wait "$cwd_pid" 2>/dev/null
mount_stop || fail "unmount after the reader closed did not end the daemon cleanly"
is_mounted "$MNT" && fail "still mounted after mount_stop"

# signal_stop SIG: deliver SIG with descriptors open, expect unmount and
# exit status 0 within 5 s.
signal_stop() {
	local sig=$1 i status=0 f="$MNT/t/$1" got
	exec 3<"$P"
	hold_start "$sig" "$f"
	hold_write "$sig" "complete-$sig\n" || fail "append on the open writer: $HOLD_ACK"
	hold_write "$sig" "partial-$sig" || fail "partial line on the open writer: $HOLD_ACK"
	kill -"$sig" "$FLUXFS_PID" || fail "kill -$sig"
	for i in $(seq 1 50); do
		kill -0 "$FLUXFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$FLUXFS_PID" 2>/dev/null && fail "daemon still running 5 s after SIG$sig with open files"
	wait "$FLUXFS_PID" || status=$?
	FLUXFS_PID=""
	assert_eq 0 "$status" "daemon exit status after SIG$sig"
	exec 3<&-
	hold_close "$sig" || log "close on the writer after SIG$sig: $HOLD_ACK"
	is_mounted "$MNT" && fail "still mounted after SIG$sig"
	mount_launch
	# The complete line must be there; the held partial line may or may
	# not have been stored, but never torn.
	got=$(od -An -c "$f" | tr -d ' \n')
	case $got in
	"complete-$sig\\n" | "complete-$sig\\npartial-$sig") ;;
	*) fail "partition written before SIG$sig holds '$got'" ;;
	esac
	log "after SIG$sig the partition holds: $got"
}
# A background job of a non-interactive shell starts with SIGINT ignored,
# and a daemon rightly keeps an inherited SIG_IGN; restore the default as
# a terminal would have it.
printf '#!/bin/sh\nexec env --default-signal=INT "%s" "$@"\n' "$FLUXFS" >"$WORK/fluxfs-sigint"
chmod +x "$WORK/fluxfs-sigint"
FLUXFS="$WORK/fluxfs-sigint"
mount_launch
signal_stop TERM
signal_stop INT
assert_eq "$(printf 'before\nwhile-busy')" "$(cat "$P")" "first partition after two signal stops"
log "ok"
