#!/bin/bash
# recipe_rsyslog.sh - doc/recipes.md "rsyslog": omfile writes syslog
# messages received on UDP into a partition (one line, one message), and
# imfile reads a partition other programs append to and forwards each
# line.  rsyslogd runs in the foreground with its own configuration,
# work directory and pid file, bound to 127.0.0.1.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/ops/svc.sh"

need_packages rsyslog bsdutils
mount_start
svc_trap
mkdir "$MNT/syslog" "$MNT/app" || fail "mkdir topics"
: >>"$MNT/app/0" || fail "create app/0"
PORT=$(free_port) || fail "no free port"
R="$WORK/rsyslog"
mkdir -p "$R/work"
cat >"$R/rsyslog.conf" <<CONF
global(workDirectory="$R/work")
module(load="imudp")
module(load="imfile")
input(type="imudp" address="127.0.0.1" port="$PORT" ruleset="toflux")

# Writing: omfile appends each message as one line.
template(name="line" type="string" string="%timegenerated:::date-rfc3339% %hostname% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n")
ruleset(name="toflux") {
	local0.* action(type="omfile" file="$MNT/syslog/messages" template="line")
}

# Reading: imfile follows a partition; its state file is keyed on the
# inode, which fluxfs keeps stable across remounts.
input(type="imfile" file="$MNT/app/0" tag="app:" ruleset="fromflux")
ruleset(name="fromflux") {
	action(type="omfile" file="$R/forwarded" template="RSYSLOG_FileFormat")
}
CONF
rsyslogd -N1 -f "$R/rsyslog.conf" >"$WORK/rsyslog-N1.log" 2>&1 ||
	fail "rsyslogd -N1: $(cat "$WORK/rsyslog-N1.log")"
svc_start rsyslog rsyslogd -n -f "$R/rsyslog.conf" -i "$R/rsyslogd.pid"
wait_for 10 bash -c "ss -Hunl 'sport = :$PORT' | grep -q ." ||
	fail "rsyslogd does not listen on udp $PORT: $(svc_log rsyslog)"

# omfile: 200 messages through logger over UDP, after one the selector
# must drop (sent first: rsyslog handles one sender's datagrams in order).
logger -d -n 127.0.0.1 -P "$PORT" -p user.info -t other "not for fluxfs" || fail "logger"
for i in $(seq 1 200); do
	echo "event $i of 200"
done | logger -d -n 127.0.0.1 -P "$PORT" -p local0.info -t recipe || fail "logger"
count() { [ "$(grep -c "$2" "$1" 2>/dev/null)" -eq "$3" ]; }
wait_for 10 count "$MNT/syslog/messages" ' recipe[^ ]* event [0-9]* of 200$' 200 ||
	fail "omfile wrote $(grep -c "event" "$MNT/syslog/messages" 2>/dev/null) of 200 messages: $(head -n 2 "$MNT/syslog/messages" | cat -A) $(svc_log rsyslog)"
xassert "$MNT/syslog/messages" next_offset 200 "one message per syslog line"
grep -q "not for fluxfs" "$MNT/syslog/messages" && fail "the local0.* selector let a user.info message through"

# imfile: lines appended by another program reach rsyslog.
for i in $(seq 1 30); do
	echo "app line $i" >>"$MNT/app/0" || fail "append app line $i"
done
wait_for 15 count "$R/forwarded" 'app: app line [0-9]*$' 30 ||
	fail "imfile forwarded $(grep -c 'app line' "$R/forwarded" 2>/dev/null) of 30 lines: $(svc_log rsyslog)"
grep -q 'app: app line 30$' "$R/forwarded" || fail "last line not forwarded"
svc_stop rsyslog
log "ok"
exit 0
