#!/bin/bash
# valgrind.sh - the engine's Check programs under valgrind memcheck: no
# invalid access, no use of uninitialised memory, no leak.  CK_FORK=no
# keeps every test in the process valgrind watches.  check_crash runs
# fewer seeds here (CRASH_SEEDS, default 20 under valgrind): the full
# count runs natively and under ASan.  Skips (77) without valgrind, and
# in an ASan build (the two cannot share a process).
# test-limit: 1200 (tests/timelimit.sh)
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
command -v valgrind >/dev/null || { echo "SKIP: valgrind is not installed"; exit 77; }
if grep -q -- '-fsanitize=address' "$top_builddir/Makefile" 2>/dev/null; then
	echo "SKIP: ASan build (valgrind runs in the plain build)"
	exit 77
fi
progs="check_crc32c check_io check_config check_codec check_segment
	check_partition check_recovery check_crash check_registry_open
	check_murmur2 check_registry_produce"
logs=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-valgrind.XXXXXX")
trap 'rm -rf "$logs"' EXIT
rc=0
ran=0
for p in $progs; do
	bin="$top_builddir/tests/unit/$p"
	if [ ! -x "$bin" ]; then
		echo "FAIL: $p is not built (make check builds it)"
		rc=1
		continue
	fi
	log="$logs/$p.log"
	start=$(date +%s)
	status=0
	# --fair-sched: valgrind runs one thread at a time, and by default a
	# thread that drops its lock can take it straight back: the reader
	# threads of check_partition's concurrency test then starved its
	# appender for over 35 minutes in a loaded run (50 s when fair).
	CK_FORK=no CRASH_SEEDS=${CRASH_SEEDS:-20} CK_DEFAULT_TIMEOUT=600 \
		valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect \
		"$bin" >"$log" 2>&1 || status=$?
	took=$(($(date +%s) - start))
	case $status in
	0) echo "ok: $p ($took s)" ;;
	99) echo "FAIL: $p: memcheck errors ($took s):" ;;
	*) echo "FAIL: $p: its tests failed under valgrind, status $status ($took s):" ;;
	esac
	if [ $status -ne 0 ]; then
		grep -E '^==[0-9]+==|:[FE]:' "$log" | head -n 60
		rc=1
	fi
	ran=$((ran + 1))
done
echo "valgrind: $ran programs"
exit $rc
