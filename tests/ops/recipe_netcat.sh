#!/bin/bash
# recipe_netcat.sh - doc/recipes.md "lines from the network": a socat
# listener that forks one child per connection, each appending to the
# partition through its own O_APPEND descriptor, so lines of concurrent
# clients never interleave even when TCP splits them mid-line (a partial
# line waits in its writer's handle until its newline); and nc -l for a
# single sender.  Both bound to 127.0.0.1.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/ops/svc.sh"

need_packages socat netcat-openbsd
mount_start
svc_trap
mkdir "$MNT/net" || fail "mkdir topic"

# socat: many clients at once.
PORT=$(free_port) || fail "no free port"
svc_start socat socat -u \
	"TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" \
	"OPEN:$MNT/net/socat,creat,append"
wait_listen 10 "$PORT" socat
pids=()
for c in 1 2 3 4 5 6; do
	gen_lines 3000 "client$c" >"$WORK/in.$c"
	socat -u "OPEN:$WORK/in.$c" "TCP:127.0.0.1:$PORT" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "socat client $p"
done
# Each connection's child appends and exits at the client's EOF.
complete() { [ "$(wc -l <"$MNT/net/socat")" -eq 18000 ]; }
wait_for 20 complete || fail "partition has $(wc -l <"$MNT/net/socat") of 18000 lines"
svc_stop socat
for c in 1 2 3 4 5 6; do
	grep "^client$c " "$MNT/net/socat" >"$WORK/out.$c"
	same_file "$WORK/in.$c" "$WORK/out.$c" "lines of client $c, in order and whole"
done
xassert "$MNT/net/socat" next_offset 18000 "one message per line"

# nc: one sender; the listener appends until the sender closes.
PORT=$(free_port) || fail "no free port"
gen_lines 5000 nc >"$WORK/in.nc"
svc_start nc sh -c "exec nc -l 127.0.0.1 $PORT >>'$MNT/net/nc'"
wait_listen 10 "$PORT" nc
nc -N 127.0.0.1 "$PORT" <"$WORK/in.nc" || fail "nc sender"
wait_for 20 bash -c "! kill -0 ${SVC_PID[nc]}" || fail "nc -l did not end at the sender's EOF"
svc_stop nc
same_file "$WORK/in.nc" "$MNT/net/nc" "what nc -l appended"
log "ok"
exit 0
