#!/bin/bash
# Build fluxfs and run the whole test suite: first a -Werror debug build,
# then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Exits non-zero if any build or test fails.  Usage: contrib/check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# The operator tests (tests/ops) drive the real programs: the package
# build, lintian and a debootstrap root, node_exporter and promtool,
# nginx, rsyslog, jq, logrotate; tests/mount/at_clock.sh runs the daemon
# under faketime.  Each test also installs what it lacks (need_packages).
FLUXFS_EXTRA_PACKAGES="${FLUXFS_EXTRA_PACKAGES:-} clang libclang-rt-14-dev valgrind socat pv netcat-openbsd \
dpkg-dev debhelper fakeroot lintian debootstrap prometheus-node-exporter prometheus curl \
nginx-light rsyslog jq logrotate faketime" \
	sh "$top/contrib/deps.sh"
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] ||
	./autogen.sh >/dev/null 2>&1

summary() {
	# Check prints its "N%: Checks: ..." line into each test's log.
	echo "== $1: unit test summaries"
	grep -h -E '^[0-9]+%: Checks:' "$2"/tests/unit/*.log 2>/dev/null || true
	grep -h -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR|XFAIL|XPASS):' "$2/test-suite.log" || true
}

run_suite() {
	local name=$1 dir=$2
	shift 2
	echo "== $name: configure $*"
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" >/dev/null)
	echo "== $name: build"
	make -C "$dir" -j"$jobs" >/dev/null
	echo "== $name: make check"
	# Each result is printed as its test ends (with the time since the
	# suite began), so a CI log shows how far a run got.
	local rc=0 t0=$SECONDS
	make -C "$dir" -j"$jobs" check 2>&1 | tee "$dir/check.out" |
		while IFS= read -r line; do
			case $line in
			PASS:* | FAIL:* | SKIP:* | ERROR:* | XFAIL:* | XPASS:*)
				printf '%4ds %s\n' $((SECONDS - t0)) "$line" ;;
			esac
		done || rc=$?
	summary "$name" "$dir"
	echo "== $name: make check took $((SECONDS - t0)) s"
	if [ $rc -ne 0 ]; then
		echo "== $name: FAILED; logs of failing tests follow"
		for f in $(grep -l -E '^:test-result: (FAIL|ERROR)' $(find "$dir/tests" -name '*.trs') 2>/dev/null); do
			echo "--- ${f%.trs}.log"
			tail -n 200 "${f%.trs}.log"
		done
		exit $rc
	fi
}

# libFuzzer targets, each for a fixed time (FUZZ_SECONDS, default 20).
run_fuzz() {
	local dir="$top/build-fuzz"
	echo "== fuzz build: configure CC=clang --enable-fuzzing"
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q CC=clang --enable-fuzzing >/dev/null)
	make -C "$dir" -j"$jobs" >/dev/null
	bash "$top/tests/fuzz/run.sh" "$dir" "${FUZZ_SECONDS:-20}"
}

run_suite "debug build" "$top/build-check" --enable-debug --enable-fault-injection
run_suite "asan+ubsan build" "$top/build-asan" --enable-debug --enable-asan --enable-fault-injection
run_fuzz
echo "== all suites passed"
