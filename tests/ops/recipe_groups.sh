#!/bin/bash
# recipe_groups.sh - doc/recipes.md "a batch job that resumes": the cron
# job of the recipe (jq on a consumer group file) and the shell loop, run
# again and again with appends in between, as cron would: together the
# runs see every message exactly once; a run that fails (its output
# cannot be written) rewinds, and the next run delivers what it lost;
# the position survives a remount.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"

need_packages jq
mount_start
mkdir "$MNT/events" "$MNT/.groups/etl" "$MNT/.groups/loop" || fail "mkdir"
P="$MNT/events/0"
OUT="$WORK/errors.jsonl"
ALL="$WORK/all.log"

# The job of doc/recipes.md, with the paths as arguments.
cat >"$WORK/etl-errors" <<'JOB'
#!/bin/sh
G=$1 OUT=$2
before=$(getfattr --only-values -n user.fluxfs.committed_offset "$G")
tmp=$(mktemp) || exit 1
if jq -c 'select(.level == "error")' "$G" >"$tmp" &&
   cat "$tmp" >>"$OUT"; then
    rm -f "$tmp"
else
    setfattr -n user.fluxfs.reset -v "offset:$before" "$G"
    rm -f "$tmp"
    exit 1
fi
JOB
chmod +x "$WORK/etl-errors"
loop() {
	while IFS= read -r line; do
		printf '%s\n' "$line"
	done <"$MNT/.groups/loop/events/0" >>"$ALL"
}

id=0
append() { # append N events, every third an error
	local i lvl
	for ((i = 0; i < $1; i++)); do
		id=$((id + 1))
		lvl=info
		[ $((id % 3)) -eq 0 ] && lvl=error
		printf '{"id":%d,"level":"%s"}\n' "$id" "$lvl" >>"$P" || fail "append $id"
	done
}
for run in 1 2 3 4 5; do
	append $((run * 7))
	"$WORK/etl-errors" "$MNT/.groups/etl/events/0" "$OUT" || fail "job run $run"
	loop || fail "loop run $run"
	[ $run = 3 ] && mount_restart
done
# A run whose output cannot be written fails and rewinds ...
append 9
rc=0
"$WORK/etl-errors" "$MNT/.groups/etl/events/0" /dev/full 2>/dev/null || rc=$?
[ $rc -ne 0 ] || fail "a job writing to /dev/full succeeded"
xassert "$MNT/.groups/etl/events/0" lag_messages 9 "lag after the failed run"
# ... and the next run delivers what it lost.
"$WORK/etl-errors" "$MNT/.groups/etl/events/0" "$OUT" || fail "job after the failure"
"$WORK/etl-errors" "$MNT/.groups/etl/events/0" "$OUT" || fail "job with nothing new"

jq -c 'select(.level == "error")' "$P" | cmp - "$OUT" ||
	fail "the jq runs did not deliver every error exactly once"
loop
cmp "$P" "$ALL" || fail "the loop runs did not deliver every message exactly once"
xassert "$MNT/.groups/etl/events/0" lag_messages 0 "lag at the end"
log "ok: $id events, $(wc -l <"$OUT") errors, each once"
