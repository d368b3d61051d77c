#!/bin/bash
# enospc.sh - a full disk: appends fail with ENOSPC, and everything
# acknowledged before reads back intact, in the same mount and after a
# remount; once space is freed, appends work again.  The data directory is
# a 4 MiB tmpfs, mounted here and unmounted after the daemon stopped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

mount_start_tmpfs 4m -o segment_bytes=1M

# 64-byte lines, so every 64 KiB write ends on a newline: what dd reports
# as written is exactly what must be stored.
awk 'BEGIN { for (i = 0; i < 131072; i++) printf "line %08d %049d\n", i, i }' >"$WORK/big"
assert_eq 8388608 "$(fsize "$WORK/big")" "generated input size"

mkdir "$MNT/filler" "$MNT/t" || fail "mkdir topics"
head -c 1048576 "$WORK/big" >>"$MNT/filler/0" || fail "1 MiB filler append"
P="$MNT/t/0"

rc=0
dd if="$WORK/big" of="$P" bs=64k oflag=append conv=notrunc 2>"$WORK/dd.err" || rc=$?
[ $rc -ne 0 ] || fail "8 MiB fitted on a 4 MiB tmpfs: no ENOSPC"
grep -q "No space left on device" "$WORK/dd.err" ||
	fail "wanted 'No space left on device', got: $(cat "$WORK/dd.err")"
acked=$(sed -n 's/^\([0-9][0-9]*\) bytes.*copied.*/\1/p' "$WORK/dd.err")
[ -n "$acked" ] || fail "cannot parse dd's byte count: $(cat "$WORK/dd.err")"
log "ENOSPC after $acked acknowledged bytes"
[ "$acked" -gt 0 ] || fail "nothing was stored before ENOSPC"
head -c "$acked" "$WORK/big" >"$WORK/ref"

assert_eq "$acked" "$(fsize "$P")" "size after ENOSPC"
same_file "$WORK/ref" "$P" "content after ENOSPC"
same_file <(head -c 1048576 "$WORK/big") "$MNT/filler/0" "filler after ENOSPC"

# Another append still fails (or succeeds whole); either way nothing torn.
echo extra >>"$P" 2>/dev/null && echo extra >>"$WORK/ref"
same_file "$WORK/ref" "$P" "content after a second append on a full disk"

mount_restart
same_file "$WORK/ref" "$P" "content after remount on a full disk"
same_file <(head -c 1048576 "$WORK/big") "$MNT/filler/0" "filler after remount"

# Free space: appends work again and land after the intact data.
rm "$MNT/filler/0" || fail "rm of the filler partition"
echo after-free >>"$P" || fail "append after freeing space"
echo after-free >>"$WORK/ref"
same_file "$WORK/ref" "$P" "content after freeing space"
mount_restart
same_file "$WORK/ref" "$P" "content after the last remount"
log "ok"
