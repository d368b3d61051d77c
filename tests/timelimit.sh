#!/bin/bash
# tests/timelimit.sh - run one test under a hard time limit (the LOG_COMPILER
# of every test in `make check`).
#
# A test's own watchdog (lib.sh's TEST_TIMEOUT) only signals the test's
# shell, and bash runs a trap only once the command it waits for has
# returned: a `cat` stuck on a mount that no longer answers keeps the whole
# suite waiting, and CI then ends at its own limit with no word on which
# test hung.  So the test runs here in a process group of its own.  When
# the limit passes, this prints what every process of that group is doing
# (its kernel stack, and the threads of any fluxfs daemon through gdb when
# there is one), then sends SIGTERM to the whole group (the test's traps
# unmount and stop the daemon; a process waiting on FUSE dies of it), and
# SIGKILL 30 s later.  The test then counts as an ERROR (exit 99).
#
# The limit is FLUXFS_TEST_LIMIT seconds if set, else a script's
# "# test-limit: N" line, else 300.  The log ends with the test's time.
set -u
script=${*: -1}
limit=${FLUXFS_TEST_LIMIT:-}
if [ -z "$limit" ]; then
	case $script in
	*.sh) limit=$(sed -n 's/^# test-limit: *\([0-9][0-9]*\).*/\1/p' "$script" | head -n 1) ;;
	esac
fi
: "${limit:=300}"

start=$SECONDS
set -m
"$@" &
child=$!
set +m
trap 'kill -TERM -- -"$child" 2>/dev/null' TERM INT HUP
sleep "$limit" &
sleeper=$!
done_pid=""
while [ -z "$done_pid" ]; do
	wait -n -p done_pid "$child" "$sleeper"
	rc=$?
done

if [ "$done_pid" = "$child" ]; then
	kill "$sleeper" 2>/dev/null
	wait "$sleeper" 2>/dev/null
	left=""
	for p in $(pgrep -g "$child" 2>/dev/null); do
		# A zombie is a child its parent has not reaped yet: not left.
		[ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ] || left="$left$p "
	done
	if [ -n "$left" ]; then
		echo "timelimit: the test left processes behind: $left" >&2
		ps -o pid,stat,etime,args -p "$(echo $left | tr ' ' ,)" >&2
		kill -KILL -- -"$child" 2>/dev/null
	fi
	echo "timelimit: $script took $((SECONDS - start)) s (limit ${limit} s)"
	exit "$rc"
fi

# The limit passed: say where everything is, then stop it.
echo "TIMEOUT: $script still running after ${limit} s; its processes:" >&2
ps -o pid,ppid,stat,etime,wchan:32,args -p "$(pgrep -d, -g "$child")" >&2
for p in $(pgrep -g "$child"); do
	echo "--- pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
	cat "/proc/$p/stack" >&2 2>/dev/null
done
# Daemons may have left the group (a mount helper detaches them): show
# every fluxfs on the machine, with its threads.
for p in $(pgrep -x fluxfs; pgrep -x lt-fluxfs); do
	echo "--- fluxfs pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
	for t in /proc/"$p"/task/*; do
		echo "thread ${t##*/} $(cat "$t/comm" 2>/dev/null): $(head -n 3 "$t/stack" 2>/dev/null | tr '\n' ' ')" >&2
	done
	if command -v gdb >/dev/null 2>&1; then
		timeout 60 gdb -batch -p "$p" -ex 'thread apply all bt' 2>&1 |
			grep -E '^(Thread|#)' | head -n 150 >&2
	fi
done
echo "--- FUSE mounts and requests waiting" >&2
grep ' fuse' /proc/mounts >&2
for c in /sys/fs/fuse/connections/*; do
	[ -e "$c/waiting" ] && echo "connection ${c##*/}: $(cat "$c/waiting") waiting" >&2
done

kill -TERM -- -"$child" 2>/dev/null
for _ in $(seq 1 30); do
	kill -0 "$child" 2>/dev/null || break
	sleep 1
done
kill -KILL -- -"$child" 2>/dev/null
wait "$child" 2>/dev/null
echo "TIMEOUT: $script stopped after $((SECONDS - start)) s" >&2
exit 99
