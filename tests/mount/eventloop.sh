#!/bin/bash
# eventloop.sh - event-loop programs from Debian's packages, which select
# or poll on a file before they read or write it: socat and nc receiving
# lines from the network into a partition, pv copying into and out of
# one.  A partition file must poll like a regular file (always writable,
# and readable: a read returns data or 0 at the end), or these programs
# hang and deliver nothing.  Every transfer must deliver every line,
# in order, and every program must exit by itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

need_packages socat pv netcat-openbsd
mount_start
mkdir "$MNT/t" || fail "mkdir topic"
seq -f 'line %06g of the event-loop test' 1 10000 >"$WORK/in"

# wait_gone SECONDS PID NAME: PID exits by itself within SECONDS.
wait_gone() {
	local pid=$2
	gone() { ! kill -0 "$pid" 2>/dev/null; }
	if ! wait_for "$1" gone; then
		kill "$pid" 2>/dev/null
		fail "$3 did not finish within $1 s"
	fi
	wait "$pid" || fail "$3 exited with status $?"
}

# 1. socat: TCP listener appending to a partition.
P="$MNT/t/socat"
port=$(free_port) || fail "no free port"
socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$P,append,creat" &
srv=$!
wait_for 10 listening "$port" || fail "socat is not listening on $port"
socat -u "OPEN:$WORK/in" "TCP:127.0.0.1:$port" || fail "socat client"
wait_gone 20 "$srv" "socat TCP-LISTEN -> partition"
same_file "$WORK/in" "$P" "what socat appended"
log "socat delivered $(wc -l <"$P") lines into a partition"

# 2. nc -l >> partition.
P="$MNT/t/nc"
port=$(free_port) || fail "no free port"
nc -l 127.0.0.1 "$port" >>"$P" &
srv=$!
wait_for 10 listening "$port" || fail "nc is not listening on $port"
nc -N 127.0.0.1 "$port" <"$WORK/in" || fail "nc client"
wait_gone 20 "$srv" "nc -l >> partition"
same_file "$WORK/in" "$P" "what nc appended"
log "nc delivered $(wc -l <"$P") lines into a partition"

# 3. pv FILE >> partition, then pv partition > file (it must see the end).
P="$MNT/t/pv"
timeout 20 pv -q "$WORK/in" >>"$P" || fail "pv into a partition (status $?)"
same_file "$WORK/in" "$P" "what pv appended"
timeout 20 pv -q "$P" >"$WORK/pv.out" || fail "pv out of a partition did not finish (status $?)"
same_file "$WORK/in" "$WORK/pv.out" "what pv read"
log "pv copied $(wc -l <"$P") lines in and out"
log "ok"
