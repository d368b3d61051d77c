# tests/ops/svc.sh - services a recipe test starts itself (CI starts
# nothing and has no systemd): each runs in the background, bound to
# 127.0.0.1, and is stopped by its PID when the test ends, also on
# failure, before the harness unmounts.  Source after lib.sh and util.sh,
# and call svc_trap after mount_start (which sets the harness's trap).

declare -A SVC_PID=()

# svc_start NAME CMD...: start CMD in the background, output to
# $WORK/NAME.log; its PID in SVC_PID[NAME].
svc_start() {
	local name=$1
	shift
	"$@" >>"$WORK/$name.log" 2>&1 &
	SVC_PID[$name]=$!
}

# svc_stop NAME: SIGTERM, then SIGKILL after 5 s; reaps it.
svc_stop() {
	local pid=${SVC_PID[$1]:-} i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "SVC_PID[$1]"
}

# svc_alive NAME: still running (else its log says why).
svc_alive() {
	local pid=${SVC_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# svc_log NAME: the last lines of its log, for a failure message.
svc_log() {
	tail -n 15 "$WORK/$1.log" 2>/dev/null
}

svc_cleanup() {
	local rc=$? name
	for name in "${!SVC_PID[@]}"; do
		svc_stop "$name"
	done
	(exit $rc)
	harness_cleanup
}

svc_trap() {
	trap svc_cleanup EXIT
}

# wait_listen SECONDS PORT NAME: NAME listens on PORT, else fail with its log.
wait_listen() {
	wait_for "$1" listening "$2" ||
		fail "$3 does not listen on port $2: $(svc_log "$3")"
}
