#!/bin/bash
# recipe_jq.sh - doc/recipes.md "consuming JSON with jq": jq reads the
# follow view MNT/.follow/<topic>/<partition> directly, prints what is
# there, then waits inside the daemon and filters each new message the
# moment it is appended (--unbuffered so every result is written at
# once).  A signal ends it.  Consumer groups (a position kept for you)
# have their own recipe and test, recipe_groups.sh.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/ops/svc.sh"

need_packages jq
mount_start
svc_trap
mkdir "$MNT/events" || fail "mkdir topic"
P="$MNT/events/0"
for i in 1 2 3 4 5 6; do
	lvl=info
	[ $((i % 3)) -eq 0 ] && lvl=error
	printf '{"id":%d,"level":"%s","msg":"m%d"}\n' "$i" "$lvl" "$i" >>"$P" ||
		fail "append $i"
done

svc_start jq jq -c --unbuffered 'select(.level == "error") | {id, msg}' \
	"$MNT/.follow/events/0"
has() { [ "$(grep -c . "$WORK/jq.log")" -eq "$1" ]; }
wait_for 10 has 2 || fail "jq printed $(cat "$WORK/jq.log") for the backlog"
assert_eq '{"id":3,"msg":"m3"}
{"id":6,"msg":"m6"}' "$(cat "$WORK/jq.log")" "jq on the backlog"

# New messages: jq is parked in a read of the follow view.
svc_alive jq || fail "jq ended at the end of the data: $(svc_log jq)"
echo '{"id":7,"level":"error","msg":"late"}' >>"$P" || fail "append 7"
wait_for 5 has 3 || fail "jq did not see a message appended while it waited"
assert_eq '{"id":7,"msg":"late"}' "$(tail -n 1 "$WORK/jq.log")" "jq on a new message"
echo '{"id":8,"level":"info","msg":"quiet"}' >>"$P" || fail "append 8"
echo '{"id":9,"level":"error","msg":"split' | tr -d '\n' >>"$P" || fail "append 9a"
echo '"}' >>"$P" || fail "append 9b"
wait_for 5 has 4 || fail "jq did not see the last message: $(cat "$WORK/jq.log")"
assert_eq '{"id":9,"msg":"split"}' "$(tail -n 1 "$WORK/jq.log")" "jq on a message written in two appends"
svc_stop jq
log "ok"
exit 0
