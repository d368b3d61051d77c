#!/bin/bash
# recipe_python.sh - doc/recipes.md "Python logging": FileHandler appends
# one record per write (mode "a" is O_APPEND), so each record is one
# message and concurrent processes never interleave inside a record;
# WatchedFileHandler notices a rename of the partition (new inode) and
# opens the name again, which creates a fresh partition.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"

need_packages python3
mount_start
mkdir "$MNT/app" || fail "mkdir topic"

# The recipe: four processes log through FileHandler into one partition.
cat >"$WORK/filehandler.py" <<'PY'
import logging, sys
path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = logging.getLogger(name)
h = logging.FileHandler(path)          # mode "a": O_APPEND
h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
log.addHandler(h)
log.setLevel(logging.INFO)
for i in range(n):
    log.info("record %d %s", i, "x" * (i % 200))
PY
pids=()
for w in 1 2 3 4; do
	python3 "$WORK/filehandler.py" "$MNT/app/0" "worker$w" 500 &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "python FileHandler writer $p"
done
xassert "$MNT/app/0" next_offset 2000 "one message per log record"
bad=$(grep -cvE '^[0-9-]+ [0-9:,]+ worker[1-4] INFO record [0-9]+ x*$' "$MNT/app/0")
assert_eq 0 "$bad" "records that are not whole lines"
for w in 1 2 3 4; do
	assert_eq 500 "$(grep -c " worker$w INFO record " "$MNT/app/0")" "records of worker$w"
done

# WatchedFileHandler across a rename of the partition.
cat >"$WORK/watched.py" <<'PY'
import logging, logging.handlers, os, sys
path = sys.argv[1]
log = logging.getLogger("svc")
log.addHandler(logging.handlers.WatchedFileHandler(path))
log.setLevel(logging.INFO)
for line in sys.stdin:                 # one command per line from the test
    cmd = line.strip()
    if cmd == "quit":
        break
    log.info(cmd)
    print("logged", flush=True)
PY
mkfifo "$WORK/py.in" "$WORK/py.out"
python3 "$WORK/watched.py" "$MNT/app/svc" <"$WORK/py.in" >"$WORK/py.out" &
py=$!
exec 5>"$WORK/py.in" 6<"$WORK/py.out"
say() {
	echo "$1" >&5
	read -r -t 10 ack <&6 || fail "python did not answer '$1'"
}
say "before rotation 1"
say "before rotation 2"
mv "$MNT/app/svc" "$MNT/app/svc.1" || fail "rename the partition"
say "after rotation 1"
echo quit >&5
exec 5>&- 6<&-
wait $py || fail "WatchedFileHandler script"
assert_eq "before rotation 1
before rotation 2" "$(cat "$MNT/app/svc.1")" "the renamed partition"
assert_eq "after rotation 1" "$(cat "$MNT/app/svc")" \
	"WatchedFileHandler reopened the name after the rename"
log "ok"
exit 0
