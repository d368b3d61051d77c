# tests/mount/lib.sh - harness for tests that mount a real fluxfs.
#
# Source it, then call mount_start [fluxfs options...].  It makes a
# temporary data directory ($DATA) and mount point ($MNT), starts
# src/fluxfs in the foreground as a background job ($FLUXFS_PID), waits
# until the mount is live, and arranges that on any exit -- success,
# failure, a signal or the watchdog ($TEST_TIMEOUT seconds, default 120) --
# the mount is unmounted with fusermount3 -u and the daemon must exit with
# status 0 within a few seconds, else the test fails.  Skips (exit 77) only
# when /dev/fuse is absent.
#
# Helpers: fail MSG, assert_eq WANT GOT MSG, mount_stop (unmount and check
# a clean exit, e.g. before a remount), mount_restart.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
: "${TEST_TIMEOUT:=120}"
FLUXFS="${FLUXFS:-$top_builddir/src/fluxfs}"
FLUXCTL="${FLUXCTL:-$top_builddir/src/fluxctl}"
TEST_NAME=$(basename "$0" .sh)
WORK=""
DATA=""
MNT=""
FLUXFS_PID=""
FLUXFS_OPTS=()
# Environment given to the daemon alone (NAME=VALUE words), e.g. a
# preloaded clock.
FLUXFS_ENV=()
WATCHDOG_PID=""
HARNESS_FAILED=0
TMPFS_MOUNTED=0

if [ ! -c /dev/fuse ]; then
	echo "SKIP: /dev/fuse is absent"
	exit 77
fi

log() { echo "[$TEST_NAME] $*"; }

# True while anything is mounted on $1, also a mount whose daemon died
# (mountpoint(1) calls that "not a mount point": its stat fails).
# has_fault_injection: whether the daemon was built with
# --enable-fault-injection (FLUXFS_FAULTS, crashsim); without it they are
# ignored, so a test of what they cause must skip.
has_fault_injection() {
	grep -q '^#define FLUXFS_FAULT_INJECTION 1' "$top_builddir/autoconfig.h"
}

is_mounted() {
	grep -qs "^[^ ]* $1 " /proc/mounts
}

fail() {
	echo "FAIL [$TEST_NAME]: $*" >&2
	HARNESS_FAILED=1
	exit 1
}

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: wanted '$1', got '$2'"
}

# Show the daemon's log when something went wrong.
dump_daemon_log() {
	if [ -n "$WORK" ] && [ -s "$WORK/daemon.log" ]; then
		echo "--- daemon log (last 40 lines)" >&2
		tail -n 40 "$WORK/daemon.log" >&2
	fi
}

# Unmount and wait for the daemon; returns non-zero if it did not exit
# cleanly.
mount_stop() {
	local i rc=0 status
	[ -n "$FLUXFS_PID" ] || return 0
	if is_mounted "$MNT"; then
		for i in $(seq 1 50); do
			fusermount3 -u "$MNT" 2>/dev/null && break
			sleep 0.1
		done
		if is_mounted "$MNT"; then
			echo "FAIL [$TEST_NAME]: fusermount3 -u kept failing; lazy unmount" >&2
			fusermount3 -uz "$MNT" 2>/dev/null || true
			rc=1
		fi
	fi
	for i in $(seq 1 50); do
		kill -0 "$FLUXFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$FLUXFS_PID" 2>/dev/null; then
		echo "FAIL [$TEST_NAME]: daemon $FLUXFS_PID still running 5 s after unmount" >&2
		kill -KILL "$FLUXFS_PID" 2>/dev/null || true
		rc=1
	fi
	status=0
	wait "$FLUXFS_PID" 2>/dev/null || status=$?
	if [ "$status" -ne 0 ]; then
		echo "FAIL [$TEST_NAME]: daemon exited with status $status" >&2
		rc=1
	fi
	FLUXFS_PID=""
	[ $rc -eq 0 ] || dump_daemon_log
	return $rc
}

harness_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$WATCHDOG_PID" ] && pkill -P "$WATCHDOG_PID" sleep 2>/dev/null
	# Descriptors a failed test still holds into the mount would make the
	# unmount fail with EBUSY: 3-9, and any other (exec {var}<FILE) that
	# names a file under the mount.
	exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
	local fd target
	for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		target=$(readlink "/proc/$$/fd/$fd" 2>/dev/null) || continue
		case $target in
		"$MNT"/*) eval "exec $fd>&-" ;;
		esac
	done
	if [ -n "$FLUXFS_PID" ]; then
		mount_stop || rc=1
	fi
	# A tmpfs data directory (mount_start_tmpfs) goes after the daemon.
	if [ "$TMPFS_MOUNTED" = 1 ]; then
		umount "$DATA" 2>/dev/null || umount -l "$DATA" || rc=1
		TMPFS_MOUNTED=0
	fi
	[ $rc -ne 0 ] && [ $HARNESS_FAILED -eq 1 ] && dump_daemon_log
	if [ -n "$WORK" ]; then
		# The mount point is empty once unmounted; never rm through a mount.
		is_mounted "$MNT" || rm -rf "$WORK"
	fi
	exit $rc
}

harness_timeout() {
	echo "FAIL [$TEST_NAME]: timed out after ${TEST_TIMEOUT}s" >&2
	HARNESS_FAILED=1
	exit 1
}

# Start the daemon with FLUXFS_OPTS plus "$@" on $DATA and $MNT.
mount_launch() {
	local i
	# A background job starts with SIGINT ignored; give the daemon the
	# default disposition so tests can send it SIGINT like a terminal would.
	env --default-signal=INT "${FLUXFS_ENV[@]}" "$FLUXFS" -f "${FLUXFS_OPTS[@]}" "$@" "$DATA" "$MNT" \
		>>"$WORK/daemon.log" 2>&1 &
	FLUXFS_PID=$!
	for i in $(seq 1 100); do
		if is_mounted "$MNT"; then
			return 0
		fi
		if ! kill -0 "$FLUXFS_PID" 2>/dev/null; then
			wait "$FLUXFS_PID" 2>/dev/null
			FLUXFS_PID=""
			dump_daemon_log
			fail "daemon exited before the mount went live"
		fi
		sleep 0.1
	done
	fail "mount not live after 10 s"
}

# harness_begin: fresh $WORK, data directory and mount point; the traps
# and the watchdog that end every test cleanly.
harness_begin() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-$TEST_NAME.XXXXXX")
	DATA="$WORK/data"
	MNT="$WORK/mnt"
	mkdir -p "$DATA" "$MNT"
	trap harness_cleanup EXIT
	trap harness_timeout TERM
	trap 'fail "interrupted"' INT
	(sleep "$TEST_TIMEOUT" && kill -TERM $$ 2>/dev/null) >/dev/null 2>&1 &
	WATCHDOG_PID=$!
}

# mount_start [fluxfs args...]: fresh data directory and mount point.
mount_start() {
	harness_begin
	FLUXFS_OPTS=("$@")
	mount_launch
	log "mounted $DATA on $MNT (pid $FLUXFS_PID)"
}

# mount_start_tmpfs SIZE [fluxfs args...]: mount_start with the data
# directory on a tmpfs of SIZE (a full disk, made cheaply); harness_cleanup
# unmounts it after the daemon stopped, before it removes $WORK.  Skips
# (77) when a tmpfs cannot be mounted.
mount_start_tmpfs() {
	local size=$1
	shift
	harness_begin
	if ! mount -t tmpfs -o "size=$size,mode=0755" "fluxfs-$TEST_NAME" "$DATA" \
		2>"$WORK/mount.err"; then
		echo "SKIP: cannot mount a tmpfs: $(cat "$WORK/mount.err")"
		exit 77
	fi
	TMPFS_MOUNTED=1
	FLUXFS_OPTS=("$@")
	mount_launch
	log "mounted $DATA ($size tmpfs) on $MNT (pid $FLUXFS_PID)"
}

# Unmount cleanly, then mount the same data directory again, optionally
# with other arguments.
mount_restart() {
	mount_stop || fail "daemon did not stop cleanly before remount"
	[ $# -gt 0 ] && FLUXFS_OPTS=("$@")
	mount_launch
}
