#!/bin/bash
# coherence.sh - the page cache agrees with the log while readers and
# writers share a partition.  A writer that opens beside a page-cache
# reader writes through the page cache, and its held partial line shows
# in stat and reads at once, also once the cache is dropped; two writers'
# partial lines that land in another order than the kernel put them are
# corrected; a reader that opens beside a direct_io writer reads
# direct_io (a shared mmap is refused then, and works again after).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

TOOL_FSOP="$top_builddir/tests/mount/tool_fsop"
need_tool "$TOOL_FSOP"

mount_start
mkdir "$MNT/t" || fail "mkdir topic"
P="$MNT/t/0"
printf 'one\n' >"$P" || fail "create"

no_handles() { grep -qx 'fluxfs_open_handles 0' "$MNT/.metrics"; }
# The content as a fresh reader sees it equals the file $1.
reads_as() { cat "$P" >"$WORK/got" && cmp -s "$1" "$WORK/got"; }
# Drop the kernel's cached pages of the partition (posix_fadvise).
drop_cache() { dd if="$P" iflag=nocache count=0 status=none; }

# Releases are asynchronous: wait until the creating writer is gone, or
# the reader below would open beside a direct_io writer.
wait_for 5 no_handles || fail "the creating writer was not released"

# 1. Reader first: the writer writes through the page cache.  (Writes go
# through tool_fsop hold: a shell redirection would close a dup after
# each command, and that close flushes the partial line.)
exec 3<"$P" || fail "open reader"
cat <&3 >/dev/null
hold_start 1 "$P"
hold_write 1 "ab" || fail "write a partial line: $HOLD_ACK"
assert_eq 6 "$(stat -c %s "$P")" "size with a held partial line"
printf 'one\nab' >"$WORK/want"
reads_as "$WORK/want" || fail "a held partial line does not read back: $(od -c "$WORK/got" | head -3)"
drop_cache
reads_as "$WORK/want" || fail "a held partial line does not read back from the daemon: $(od -c "$WORK/got" | head -3)"
hold_write 1 'c\n' || fail "complete the line: $HOLD_ACK"
printf 'one\nabc\n' >"$WORK/want"
reads_as "$WORK/want" || fail "the completed line: $(od -c "$WORK/got" | head -3)"
log "a write-through writer's partial line shows in stat and reads"

# 2. Two writers' partial lines: the second writer's whole line lands
# before the first one's held bytes, where the kernel put those.
hold_start 2 "$P"
hold_write 1 "xy" || fail "partial line of writer 1: $HOLD_ACK"
hold_write 2 'zz\n' || fail "line of writer 2: $HOLD_ACK"
hold_write 1 'w\n' || fail "rest of writer 1's line: $HOLD_ACK"
printf 'one\nabc\nzz\nxyw\n' >"$WORK/want"
wait_for 3 reads_as "$WORK/want" ||
	fail "the page cache did not come back to the log: $(od -c "$WORK/got" | head -4)"
log "interleaved partial lines: the page cache was corrected"
hold_close 1 || fail "close writer 1: $HOLD_ACK"
hold_close 2 || fail "close writer 2: $HOLD_ACK"
exec 3<&-

# 3. Writer first: a reader beside a direct_io writer reads direct_io.
wait_for 5 no_handles || fail "handles of step 2 were not released"
hold_start 3 "$P"
expect_err "No such device" "$TOOL_FSOP" mmap-read "$P"
hold_write 3 'v\n' || fail "append beside a direct_io reader: $HOLD_ACK"
printf 'one\nabc\nzz\nxyw\nv\n' >"$WORK/want"
reads_as "$WORK/want" || fail "a direct_io reader: $(od -c "$WORK/got" | head -4)"
hold_close 3 || fail "close writer 3: $HOLD_ACK"
wait_for 5 no_handles || fail "the writer was not released"
"$TOOL_FSOP" mmap-read "$P" >"$WORK/mapped" || fail "shared mmap with no writer open"
same_file "$WORK/want" "$WORK/mapped" "bytes read through a shared mmap"
log "a reader beside a direct_io writer reads direct_io"

# 4. The log itself has what the page cache showed.
mount_restart
reads_as "$WORK/want" || fail "after a remount: $(od -c "$WORK/got" | head -4)"
log "ok"
