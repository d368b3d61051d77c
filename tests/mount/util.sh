# tests/mount/util.sh - shell helpers the mount tests share, on top of
# lib.sh (source lib.sh first).  Every helper that checks something calls
# fail in the test's own shell, never inside a $(...) subshell, so a
# failed check always ends the test.

# The C helpers, built by make check.
TOOL_FSOP="$top_builddir/tests/mount/tool_fsop"
TOOL_WRITER="$top_builddir/tests/mount/tool_writer"

# need_tool PATH: fail unless the helper was built.
need_tool() {
	[ -x "$1" ] || fail "helper '$1' is not built (make check builds it)"
}

# expect_err WANT CMD...: CMD must fail and its stderr must contain WANT
# (a strerror text such as "Operation not permitted").
expect_err() {
	local want=$1 out rc=0
	shift
	out=$("$@" 2>&1 >/dev/null) || rc=$?
	[ $rc -ne 0 ] || fail "'$*' succeeded; wanted failure '$want'"
	case $out in
	*"$want"*) ;;
	*) fail "'$*': wanted error '$want', got '$out' (status $rc)" ;;
	esac
}

# expect_ok CMD...: CMD must succeed.
expect_ok() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ $rc -eq 0 ] || fail "'$*' failed (status $rc): $out"
}

# sh_c SCRIPT ARGS...: run a shell snippet (for redirections under
# expect_err/expect_ok); the snippet sees ARGS as $1...
sh_c() {
	local script=$1
	shift
	bash -c "$script" sh_c "$@"
}

# fsize FILE: st_size.
fsize() {
	stat -c %s "$1"
}

# xget VAR FILE KEY: VAR := value of user.fluxfs.KEY on FILE; fails the
# test if it cannot be read.
xget() {
	local v rc=0
	v=$(getfattr --absolute-names --only-values -n "user.fluxfs.$3" \
		"$2" 2>&1) || rc=$?
	[ $rc -eq 0 ] || fail "getfattr user.fluxfs.$3 on '$2': $v"
	printf -v "$1" '%s' "$v"
}

# xassert FILE KEY WANT MSG: user.fluxfs.KEY on FILE equals WANT.
xassert() {
	local got
	xget got "$1" "$2"
	assert_eq "$3" "$got" "$4 (user.fluxfs.$2 of '$1')"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; returns
# 1 on timeout (the caller decides whether that fails the test).
wait_for() {
	local deadline=$(($(date +%s%N) / 1000000 + $1 * 1000))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) / 1000000)) -lt $deadline ] || return 1
		sleep 0.1
	done
	return 0
}

# same_file A B MSG: byte-identical contents.
same_file() {
	cmp -s "$1" "$2" || fail "$3: '$1' and '$2' differ ($(cmp "$1" "$2" 2>&1 | head -1))"
}

# zeros_only FILE START LEN: bytes [START, START+LEN) of FILE are all NUL.
zeros_only() {
	local nz
	nz=$(tail -c +"$(($2 + 1))" "$1" | head -c "$3" | tr -d '\0' | wc -c)
	[ "$nz" -eq 0 ]
}

# gen_lines N PREFIX: N numbered lines of varying length on stdout.
gen_lines() {
	awk -v n="$1" -v p="$2" 'BEGIN {
		for (i = 0; i < n; i++) {
			s = sprintf("%s %07d ", p, i)
			for (j = 0; j < (i * 7) % 53; j++)
				s = s "x"
			print s
		}
	}'
}

# norm_value KEY VALUE: a config value in plain units (bytes or ms, -1 for
# unlimited/never), so a test need not know the daemon's canonical form.
norm_value() {
	awk -v k="$1" -v v="$2" 'BEGIN {
		if (v == "unlimited" || v == "never" || v == "-1") { print -1; exit }
		if (k !~ /_bytes$/ && k !~ /_ms$/) { print v; exit }
		n = v; sub(/[^0-9].*$/, "", n); u = substr(v, length(n) + 1)
		if (n == "") { print "bad:" v; exit }
		m = -1
		if (k ~ /_bytes$/) {
			if (u == "" || u == "B") m = 1
			else if (u == "k" || u == "K" || u == "KiB") m = 1024
			else if (u == "M" || u == "MiB") m = 1048576
			else if (u == "G" || u == "GiB") m = 1073741824
			else if (u == "T" || u == "TiB") m = 1099511627776
		} else {
			if (u == "" || u == "ms") m = 1
			else if (u == "s") m = 1000
			else if (u == "m" || u == "min") m = 60000
			else if (u == "h") m = 3600000
			else if (u == "d") m = 86400000
		}
		if (m < 0) { print "bad:" v; exit }
		printf "%.0f\n", n * m
	}'
}

# xassert_cfg FILE KEY WANT MSG: config key KEY on FILE means WANT.
xassert_cfg() {
	local got
	xget got "$1" "$2"
	assert_eq "$(norm_value "$2" "$3")" "$(norm_value "$2" "$got")" \
		"$4 (user.fluxfs.$2 of '$1' is '$got')"
}

# lib.sh's fail, plus letting go of the mount first: descriptors 3-9 the
# test holds into it and the holders below would make the harness's
# unmount fail with EBUSY.
fail() {
	local id
	for id in "${!HOLD_PID[@]}"; do
		kill "${HOLD_PID[$id]}" 2>/dev/null
		wait "${HOLD_PID[$id]}" 2>/dev/null
	done
	exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
	echo "FAIL [$TEST_NAME]: $*" >&2
	HARNESS_FAILED=1
	exit 1
}

# Holders: one append descriptor kept open across many writes (tool_fsop
# hold), driven through two FIFOs.  A shell redirection cannot do this:
# "printf abc >&3" closes a dup of fd 3 afterwards, and every close sends
# FUSE a flush, which turns a pending partial line into a message.
declare -A HOLD_PID=() HOLD_IN=() HOLD_OUT=()
HOLD_ACK=""

# hold_start ID FILE: open FILE for appending in holder ID; returns once
# the holder says the descriptor is open (a step that depends on another
# process's state waits for its acknowledgement, never for time).
hold_start() {
	local in="$WORK/hold-$1.in" out="$WORK/hold-$1.out" fdi fdo fd
	mkfifo "$in" "$out" || fail "mkfifo for holder $1"
	(
		# Other holders' FIFO ends must not leak in: a holder ends at
		# EOF, which never comes while someone else keeps its write end.
		for fd in "${HOLD_IN[@]}" "${HOLD_OUT[@]}"; do
			eval "exec $fd>&-"
		done
		exec "$TOOL_FSOP" hold "$2" <"$in" >"$out"
	) &
	HOLD_PID[$1]=$!
	exec {fdi}>"$in" {fdo}<"$out"
	HOLD_IN[$1]=$fdi
	HOLD_OUT[$1]=$fdo
	HOLD_ACK=""
	read -r -t 10 HOLD_ACK <&"$fdo" ||
		fail "holder $1 did not answer its open of '$2'"
	[ "$HOLD_ACK" = opened ] || fail "holder $1 could not open '$2': $HOLD_ACK"
}

# hold_write ID TEXT: one write() of TEXT (escape \n for a newline) on
# holder ID; HOLD_ACK gets "ok N" or "err <strerror>"; returns 0 on ok.
hold_write() {
	printf '%s\n' "$2" >&"${HOLD_IN[$1]}"
	HOLD_ACK=""
	read -r -t 10 HOLD_ACK <&"${HOLD_OUT[$1]}" ||
		fail "holder $1 did not answer a write"
	[ "${HOLD_ACK%% *}" = ok ]
}

# hold_close ID: close holder ID's descriptor; HOLD_ACK gets "closed" or
# "err <strerror>"; returns 0 if close succeeded.
hold_close() {
	local fdi=${HOLD_IN[$1]} fdo=${HOLD_OUT[$1]} rc=0
	exec {fdi}>&-
	HOLD_ACK=""
	read -r -t 10 HOLD_ACK <&"$fdo" || rc=1
	exec {fdo}<&-
	[ $rc -eq 0 ] || kill "${HOLD_PID[$1]}" 2>/dev/null
	wait "${HOLD_PID[$1]}" 2>/dev/null
	unset "HOLD_PID[$1]" "HOLD_IN[$1]" "HOLD_OUT[$1]"
	[ $rc -eq 0 ] || fail "holder $1 did not answer the close"
	[ "$HOLD_ACK" = closed ]
}

# need_packages PKG...: install the Debian packages a test drives (through
# contrib/deps.sh, like the rest of the project); skip (77) only when
# one of them cannot exist here (no installation candidate).
need_packages() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if ! FLUXFS_EXTRA_PACKAGES="$missing" sh "$top_srcdir/contrib/deps.sh" >&2; then
		for p in $missing; do
			if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
				echo "SKIP: package $p cannot be installed here"
				exit 77
			fi
		done
		fail "cannot install$missing"
	fi
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	local port
	for port in $(shuf -i 20000-60000 -n 50); do
		ss -Htln "sport = :$port" | grep -q . || { echo "$port"; return 0; }
	done
	return 1
}

# listening PORT: something listens on 127.0.0.1:PORT (or any address).
listening() {
	ss -Htln "sport = :$1" | grep -q .
}

# as_nobody CMD...: run CMD as uid/gid 65534 (no supplementary groups).
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# need_nobody: skip (77) where this machine cannot switch to uid 65534.
need_nobody() {
	as_nobody true 2>/dev/null || { echo "SKIP: cannot switch to uid 65534"; exit 77; }
}
