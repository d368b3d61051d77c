#!/bin/bash
# test-limit: 900 (tests/timelimit.sh)
# namespace_faults.sh - a namespace operation that fails part-way leaves
# nothing behind.
#
# For each operation (mkdir of a topic, create of a partition, rename of
# a topic and of a partition, rmdir, unlink) and each kind of failing
# call (openat failing with EMFILE as when descriptors run out, fsync,
# pwrite, renameat, unlinkat failing with EIO), the daemon is mounted with
# FLUXFS_FAULTS failing every such call from the Nth on, for N = the
# first call after the mount is live, the second, ... until the
# operation succeeds.  Every time the operation fails:
#   - the mount still shows the namespace as it was (no half-made topic
#     or partition, nothing half-renamed or half-removed), and a failed
#     mkdir or create logged one line;
#   - remounted without faults, the mount and the backing data directory
#     hold exactly the entries they held before the operation.
. "$(dirname "$0")/rel.sh"

TEST_TIMEOUT=600

mount_start
daemon_stop_any || fail "first clean unmount"
# A build without --enable-fault-injection ignores FLUXFS_FAULTS.
if FLUXFS_FAULTS=bogus=1 timeout 10 "$FLUXFS" -f "$DATA" "$MNT" >"$WORK/bad.log" 2>&1; then
	fusermount3 -u "$MNT" 2>/dev/null
	echo "SKIP: fault injection not compiled in"
	exit 77
fi

# launch_faulty SPEC: mount with FLUXFS_FAULTS=SPEC; 0 once live, 1 if
# the daemon gave up before mounting (the faults hit its start).
launch_faulty() {
	local i
	FLUXFS_FAULTS="$1" "$FLUXFS" -f "$DATA" "$MNT" >>"$WORK/daemon.log" 2>&1 &
	FLUXFS_PID=$!
	for i in $(seq 1 100); do
		is_mounted "$MNT" && return 0
		if ! kill -0 "$FLUXFS_PID" 2>/dev/null; then
			wait "$FLUXFS_PID" 2>/dev/null
			FLUXFS_PID=""
			return 1
		fi
		sleep 0.1
	done
	fail "mount not live after 10 s under '$1'"
}

# stop_faulty: unmount; the daemon may exit 1 (a flush failed), never
# by a signal.
stop_faulty() {
	local rc=0
	daemon_stop_any || rc=$?
	[ $rc -le 1 ] || fail "daemon exited $rc under faults"
}

# snapshot NAME: the mount's namespace and the data directory's entries
# (the lock file's content aside, names only).
snapshot() {
	(cd "$MNT" && find . -mindepth 1 -not -name '.*' | sort) >"$WORK/$1.mnt"
	(cd "$DATA" && find . -mindepth 1 | sort) >"$WORK/$1.data"
}

# same_as NAME WHAT: the current namespace equals snapshot NAME.
same_as() {
	local d
	(cd "$MNT" && find . -mindepth 1 -not -name '.*' | sort) >"$WORK/now.mnt"
	d=$(diff "$WORK/$1.mnt" "$WORK/now.mnt") ||
		fail "$2: the mount changed: $d"
	(cd "$DATA" && find . -mindepth 1 | sort) >"$WORK/now.data"
	d=$(diff "$WORK/$1.data" "$WORK/now.data") ||
		fail "$2: the data directory changed: $d"
}

# try_op NAME OPS ERRNO CMD...: run CMD (a namespace operation through
# the mount) under faults failing every call in OPS from the Nth on,
# N = 0, 1, ... until CMD succeeds; each failure must leave nothing.
# The namespace is set up by setup_NAME before each round (no faults).
try_op() {
	local name=$1 ops=$2 err=$3 n=0 failed=0 rc
	shift 3
	mount_launch
	"setup_$name"
	snapshot before
	mount_stop || fail "$name: clean unmount after the setup"
	while :; do
		[ $n -lt 300 ] || fail "$name: still failing after 300 fault points"
		if ! launch_faulty "ops=$ops,errno=$err,after=$n"; then
			n=$((n + 1))
			continue
		fi
		# Faults that hit the loading of the namespace (a topic
		# that could not be opened is left out) are not this test's.
		(cd "$MNT" && find . -mindepth 1 -not -name '.*' | sort) >"$WORK/now.mnt"
		if ! cmp -s "$WORK/before.mnt" "$WORK/now.mnt"; then
			stop_faulty
			n=$((n + 1))
			continue
		fi
		rc=0
		logged=$(grep -c "cannot create" "$WORK/daemon.log")
		"$@" 2>"$WORK/op.err" || rc=$?
		if [ $rc -eq 0 ]; then
			stop_faulty
			break
		fi
		failed=$((failed + 1))
		# A failed creation says so in the log, once.
		case $name in
		mkdir | create)
			assert_eq $((logged + 1)) "$(grep -c "cannot create" "$WORK/daemon.log")" \
				"$name ($ops=$err after $n): log lines about the failure"
			;;
		esac
		# What the failed operation left, seen through the mount.
		(cd "$MNT" && find . -mindepth 1 -not -name '.*' | sort) >"$WORK/now.mnt"
		diff "$WORK/before.mnt" "$WORK/now.mnt" >"$WORK/d" ||
			fail "$name ($ops=$err after $n): the mount shows a change after the failure '$(cat "$WORK/op.err")': $(cat "$WORK/d")"
		stop_faulty
		mount_launch
		same_as before "$name ($ops=$err after $n) after a remount"
		mount_stop || fail "$name: clean unmount after round $n"
		n=$((n + 1))
	done
	log "$name: $failed failure points under $ops=$err, none left anything"
	mount_launch
	"reset_$name"
	mount_stop || fail "$name: clean unmount after the reset"
}

setup_mkdir() { :; }
reset_mkdir() { rmdir "$MNT/newt" || fail "rmdir after mkdir"; }
setup_create() { mkdir -p "$MNT/t" || fail "setup of create"; }
reset_create() { rm -f "$MNT/t/0" || fail "rm after create"; }
setup_rename_topic() { mkdir -p "$MNT/a" || fail "setup of rename"; }
reset_rename_topic() { rmdir "$MNT/b" || fail "rmdir after rename"; }
setup_rename_part() {
	mkdir -p "$MNT/t" && echo x >>"$MNT/t/p" || fail "setup of rename"
}
reset_rename_part() { rm -f "$MNT/t/q" || fail "rm after rename"; }
setup_rmdir() { mkdir -p "$MNT/gone" || fail "setup of rmdir"; }
reset_rmdir() { :; }
setup_unlink() {
	mkdir -p "$MNT/t" && echo x >>"$MNT/t/u" || fail "setup of unlink"
}
reset_unlink() { :; }

for spec in "openat EMFILE" "fsync EIO" "pwrite+pwritev EIO" \
	"renameat EIO" "unlinkat EIO" "mkdirat EIO"; do
	set -- $spec
	try_op mkdir "$1" "$2" mkdir "$MNT/newt"
	try_op create "$1" "$2" sh -c ': >>"$1"' sh "$MNT/t/0"
	try_op rename_topic "$1" "$2" mv "$MNT/a" "$MNT/b"
	try_op rename_part "$1" "$2" mv "$MNT/t/p" "$MNT/t/q"
	try_op rmdir "$1" "$2" rmdir "$MNT/gone"
	try_op unlink "$1" "$2" rm "$MNT/t/u"
done
log "ok"
