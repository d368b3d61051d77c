#!/bin/bash
# Run every libFuzzer target in a --enable-fuzzing build for a fixed time
# each, starting from the committed seed corpus.  New inputs go to a
# scratch corpus, so the committed one changes only when someone copies
# interesting finds into it.  Usage: run.sh BUILDDIR [SECONDS]
set -euo pipefail
build=$(cd "$1" && pwd)
secs=${2:-${FUZZ_SECONDS:-30}}
src=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
rc=0
for bin in "$build"/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	mkdir -p "$scratch/$name"
	seeds="$src/corpus/$name"
	[ -d "$seeds" ] || seeds=""
	echo "== fuzz $name for ${secs}s"
	if ! (cd "$scratch" && "$bin" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		"$scratch/$name" $seeds >"$scratch/$name.log" 2>&1); then
		echo "FAIL: $name found a crash"
		tail -n 60 "$scratch/$name.log"
		cp "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* . 2>/dev/null || true
		rc=1
		continue
	fi
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$scratch/$name.log" |
		sed "s/^/  $name: /"
done
exit $rc
