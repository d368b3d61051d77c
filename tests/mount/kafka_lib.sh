# tests/mount/kafka_lib.sh - the Kafka mirror's tests, on top of lib.sh
# and util.sh (source those first).  kafka_begin TOPIC:PARTITIONS...
# starts librdkafka's mock cluster (tool_kafka, 3 brokers) with those
# topics ($KAFKA_PID, bootstrap address $KAFKA), and arranges that on exit
# the daemon is unmounted first, then the mock stopped.  kcat, an
# independent client, checks what arrived.  Skips (77) only when
# librdkafka or kcat cannot be installed.

TOOL_KAFKA="$top_builddir/tests/mount/tool_kafka"
KAFKA_PID=""
KAFKA=""

kafka_exit() {
	local rc=$?
	if [ -n "$FLUXFS_PID" ]; then
		mount_stop || rc=1
	fi
	if [ -n "$KAFKA_PID" ]; then
		kill -TERM "$KAFKA_PID" 2>/dev/null
		wait "$KAFKA_PID" 2>/dev/null
		KAFKA_PID=""
	fi
	(exit $rc)
	harness_cleanup
}

kafka_begin() {
	local i
	if [ ! -x "$TOOL_KAFKA" ]; then
		echo "SKIP: built without Kafka support (no tool_kafka)"
		exit 77
	fi
	if ! command -v kcat >/dev/null; then
		FLUXFS_EXTRA_PACKAGES=kcat sh "$top_srcdir/contrib/deps.sh" \
			>/dev/null 2>&1
		command -v kcat >/dev/null || { echo "SKIP: kcat cannot be installed"; exit 77; }
	fi
	harness_begin
	trap kafka_exit EXIT
	"$TOOL_KAFKA" mock 3 "$@" >"$WORK/kafka.addr" 2>"$WORK/kafka.log" &
	KAFKA_PID=$!
	for i in $(seq 1 100); do
		[ -s "$WORK/kafka.addr" ] && break
		sleep 0.1
	done
	KAFKA=$(head -n 1 "$WORK/kafka.addr")
	[ -n "$KAFKA" ] || fail "the mock Kafka cluster did not start"
	log "mock Kafka cluster at $KAFKA (pid $KAFKA_PID)"
}

# kafka_brokers down|up: take every broker of the mock down (SIGUSR1) or
# bring them back (SIGUSR2), and wait until the mock says it is done (a
# going down first lets the answers it owes drain: see tool_kafka.c).
kafka_brokers() {
	local sig line n i
	case "$1" in
	down) sig=USR1 line="tool_kafka: brokers down" ;;
	up) sig=USR2 line="tool_kafka: brokers up" ;;
	*) fail "kafka_brokers: $1: not down or up" ;;
	esac
	n=$(grep -c "$line" "$WORK/kafka.log")
	kill -"$sig" "$KAFKA_PID" || fail "cannot signal the mock cluster"
	for i in $(seq 1 100); do
		[ "$(grep -c "$line" "$WORK/kafka.log")" -gt "$n" ] && return 0
		sleep 0.1
	done
	fail "the mock cluster did not take its brokers $1 within 10 s"
}

# kafka_opts [fluxfs args...]: the mount options pointing the mirror at
# the mock (its brokers' commas escaped for -o); kafka_mount: and mount.
kafka_opts() {
	FLUXFS_OPTS=(-o "kafka.bootstrap.servers=${KAFKA//,/\\,}" "$@")
}
kafka_mount() {
	kafka_opts "$@"
	mount_launch
	log "mounted $DATA on $MNT (pid $FLUXFS_PID)"
}

# kafka_need_crashsim: exit 77 unless the daemon was built with fault
# injection (crashsim, the simulated power cut).
kafka_need_crashsim() {
	if ! has_fault_injection; then
		echo "SKIP: fault injection not compiled in (configure --enable-fault-injection)"
		exit 77
	fi
}

# kafka_launch_crashsim SEED [MODE]: mount on crashsim (MODE drop by
# default: a cut loses everything not fsynced; prefix: each file keeps
# its unsynced writes up to a point); kafka_power_cut: cut (SIGUSR2: the
# daemon undoes what was not synced and exits) and drop the dead mount.
kafka_launch_crashsim() {
	export FLUXFS_CRASHSIM=1 FLUXFS_CRASHSIM_MODE=${2:-drop} FLUXFS_CRASHSIM_SEED=$1
	mount_launch
	unset FLUXFS_CRASHSIM FLUXFS_CRASHSIM_MODE FLUXFS_CRASHSIM_SEED
}
kafka_power_cut() {
	local status=0
	kill -USR2 "$FLUXFS_PID" || fail "cannot signal the daemon"
	wait "$FLUXFS_PID" 2>/dev/null || status=$?
	FLUXFS_PID=""
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	[ $status -eq 0 ] || fail "power cut: daemon exited with $status"
}

# kafka_import_start DIR KAFKA_TOPIC [PARTITION]: make topic DIR (unless
# it exists: a test may configure it first), import KAFKA_TOPIC into it,
# and wait (5 s at most) until its partition PARTITION (default 0) exists.
kafka_import_start() {
	local i
	[ -d "$1" ] || mkdir "$1" || fail "mkdir $1"
	expect_ok setfattr -n user.fluxfs.mirror_from -v "$2" "$1"
	for i in $(seq 1 100); do
		[ -e "$1/${3:-0}" ] && return 0
		sleep 0.05
	done
	fail "$1/${3:-0} did not appear"
}

# kafka_retention_export DIR KAFKA_TOPIC: make topic DIR with 4 KiB
# segments and retention_ms 300, exported to KAFKA_TOPIC.
kafka_retention_export() {
	mkdir "$1" || fail "mkdir $1"
	expect_ok setfattr -n user.fluxfs.segment_bytes -v 4k "$1"
	expect_ok setfattr -n user.fluxfs.retention_ms -v 300 "$1"
	expect_ok setfattr -n user.fluxfs.mirror_to -v "$2" "$1"
}

# kafka_kill_remount: SIGKILL the daemon, drop its dead mount, mount again.
kafka_kill_remount() {
	kill -KILL "$FLUXFS_PID"
	wait "$FLUXFS_PID" 2>/dev/null
	FLUXFS_PID=""
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	mount_launch
}

# kcat_dump TOPIC PARTITION FORMAT: every record of the Kafka partition.
kcat_dump() {
	timeout 60 kcat -C -b "$KAFKA" -t "$1" -p "$2" -o beginning -e -q \
		-f "$3"
}

# mirror_wait PATH: until everything appended so far is acknowledged.
mirror_wait() {
	local out
	out=$(getfattr --only-values -n user.fluxfs.mirror_wait "$1" 2>&1) ||
		fail "mirror_wait on $1: $out"
}

# xval PATH NAME: the value of user.fluxfs.NAME.
xval() {
	getfattr --only-values -n "user.fluxfs.$2" "$1" 2>/dev/null
}

# check_exported TOPIC PARTITION LOCALFILE: Kafka holds exactly the local
# partition's messages, once each, in order, each with its local offset
# in the fluxfs-offset header.
# kproduce TOPIC PARTITION [kcat args] < lines: one record per line
# (or per kcat -D delimiter), produced by kcat.
kproduce() {
	local topic=$1 part=$2
	shift 2
	timeout 60 kcat -P -b "$KAFKA" -t "$topic" -p "$part" "$@" ||
		fail "kcat could not produce to $topic[$part]"
}
# check_imported TOPIC PARTITION [WHEN]: the local partition MNT/TOPIC/
# PARTITION holds exactly the Kafka partition's values, once each, in
# order (values without newlines); WHEN says at which step, on failure.
check_imported() {
	kcat_dump "$1" "$2" '%s\n' >"$WORK/kafka.values" ||
		fail "kcat could not read $1[$2]"
	cmp "$WORK/kafka.values" "$MNT/$1/$2" >&2 ||
		fail "${3:+$3: }$1/$2 differs from Kafka ($(wc -l <"$MNT/$1/$2") lines, $(wc -l <"$WORK/kafka.values") records)"
}
check_exported() {
	kcat_dump "$1" "$2" '%s\n' >"$WORK/kafka.values" ||
		fail "kcat could not read $1[$2]"
	cmp "$WORK/kafka.values" "$3" >&2 ||
		fail "Kafka $1[$2] differs from $3 ($(wc -l <"$WORK/kafka.values") records, $(wc -l <"$3") lines)"
	kcat_dump "$1" "$2" '%h\n' >"$WORK/kafka.headers"
	seq 0 $(($(wc -l <"$3") - 1)) | sed 's/^/fluxfs-offset=/' >"$WORK/want.headers"
	cmp "$WORK/kafka.headers" "$WORK/want.headers" >&2 ||
		fail "Kafka $1[$2]: fluxfs-offset headers not 0..N-1 in order"
}
