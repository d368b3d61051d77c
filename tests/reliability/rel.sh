# tests/reliability/rel.sh - helpers the reliability scripts share, on top
# of tests/mount/lib.sh and util.sh (this file sources both).  lib.sh owns
# the mount, the watchdog and the cleanup that never leaves a mount or a
# daemon behind; the helpers below add what lib.sh does not do: kill the
# daemon on purpose and check the tagged line streams torture_writer
# writes.

. "$(dirname "$0")/../mount/lib.sh"
. "$(dirname "$0")/../mount/util.sh"

TORTURE_WRITER="$top_builddir/tests/reliability/torture_writer"

# daemon_kill: SIGKILL the daemon lib.sh started, then drop its dead
# mount with a lazy unmount, as an operator would after a crash.
daemon_kill() {
	[ -n "$FLUXFS_PID" ] || return 0
	kill -KILL "$FLUXFS_PID" 2>/dev/null
	wait "$FLUXFS_PID" 2>/dev/null
	FLUXFS_PID=""
	fusermount3 -uz "$MNT" 2>/dev/null
	is_mounted "$MNT" && fail "mount still present after fusermount3 -uz"
	return 0
}

# daemon_stop_any: unmount and wait for the daemon like mount_stop, but
# return the daemon's exit status instead of failing on a non-zero one
# (a daemon whose disk failed under fault injection may exit 1).
# Fails the test if the unmount or the exit does not happen.
daemon_stop_any() {
	local i status=0
	[ -n "$FLUXFS_PID" ] || return 0
	for i in $(seq 1 50); do
		is_mounted "$MNT" || break
		fusermount3 -u "$MNT" 2>/dev/null && break
		sleep 0.1
	done
	is_mounted "$MNT" && fail "fusermount3 -u kept failing"
	for i in $(seq 1 100); do
		kill -0 "$FLUXFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$FLUXFS_PID" 2>/dev/null; then
		kill -KILL "$FLUXFS_PID"
		wait "$FLUXFS_PID" 2>/dev/null
		FLUXFS_PID=""
		fail "daemon still running 10 s after unmount (hang)"
	fi
	wait "$FLUXFS_PID" 2>/dev/null || status=$?
	FLUXFS_PID=""
	return $status
}

# need_crashsim: exit 77 unless the daemon has crashsim (a fault-injection
# build refuses a bad FLUXFS_CRASHSIM_MODE; another build ignores it and
# mounts, which timeout then stops).  Needs $DATA and $MNT, unmounted.
need_crashsim() {
	FLUXFS_CRASHSIM=1 FLUXFS_CRASHSIM_MODE=bogus timeout 10 "$FLUXFS" -f \
		"$DATA" "$MNT" >"$WORK/probe.log" 2>&1 || true
	if ! grep -q "bad FLUXFS_CRASHSIM_MODE" "$WORK/probe.log"; then
		is_mounted "$MNT" && fusermount3 -u "$MNT"
		echo "SKIP: crashsim not compiled in (configure --enable-fault-injection)"
		exit 77
	fi
}

# check_lines FILE COUNTS: every line of FILE must be "TAG N x...x" with
# (N*7)%61 x's, and each tag's numbers must run 0, 1, 2, ... in order (no
# gap, no repeat, no partial line).  Writes "TAG COUNT" lines to COUNTS.
# Fails the test on the first bad line.
check_lines() {
	local out
	if [ -s "$1" ] && [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" != '\n' ]; then
		fail "$1 ends in a partial line"
	fi
	out=$(awk -v counts="$2" '
	{
		n = split($0, f, / /)
		if (n != 3 || f[2] !~ /^[0-9]+$/ || f[3] !~ /^x*$/ ||
		    f[1] !~ /^[A-Za-z0-9]+$/ ||
		    length(f[3]) != (f[2] * 7) % 61) {
			printf "line %d is not a whole message: \"%s\"\n", NR, substr($0, 1, 80)
			bad = 1
			exit 1
		}
		if (f[2] + 0 != next_n[f[1]] + 0) {
			printf "line %d: %s %s follows %s %d (lost or reordered)\n", NR, f[1], f[2], f[1], next_n[f[1]] - 1
			bad = 1
			exit 1
		}
		next_n[f[1]]++
	}
	END {
		if (bad)
			exit 1
		for (t in next_n)
			print t, next_n[t] > counts
		close(counts)
		print NR
	}' "$1" 2>&1) || fail "$1: $out"
	LINES_TOTAL=${out##*$'\n'}
	[ -e "$2" ] || : >"$2"
}

# count_of TAG COUNTS: lines of TAG found by check_lines (0 if none).
count_of() {
	awk -v t="$1" '$1 == t { print $2; found = 1 } END { if (!found) print 0 }' "$2"
}

# rand_below N: a pseudo-random integer in [0, N).
rand_below() {
	echo $((RANDOM % $1))
}
