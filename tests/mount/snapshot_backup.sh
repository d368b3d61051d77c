#!/bin/bash
# snapshot_backup.sh - the operator's recipe: mkdir .snapshot/nightly,
# rsync -a (and tar) of it while producers keep writing, rmdir.  The
# copies are the snapshot's bytes (a second rsync finds nothing changed),
# and restoring either into a fresh mount gives identical partitions:
# same names, sizes, bytes and message counts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

need_packages rsync tar
mount_start -o segment_bytes=8192
S="$MNT/.snapshot"
mkdir "$MNT/orders" "$MNT/audit" || fail "mkdir topics"
gen_lines 2000 o0 >"$MNT/orders/0"
gen_lines 300 o1 >"$MNT/orders/1"
: >"$MNT/orders/2"
gen_lines 500 a0 >"$MNT/audit/0"

# Producers on three partitions, all through the test.
produce() {
	local i=0
	while [ ! -e "$WORK/stop" ]; do
		echo "$1 $i" >>"$MNT/$1" || return 1
		i=$((i + 1))
	done
}
produce orders/0 &
P1=$!
produce orders/1 &
P2=$!
produce audit/0 &
P3=$!
sleep 0.5

mkdir "$S/nightly" || fail "mkdir .snapshot/nightly"
rsync -a "$S/nightly/" "$WORK/bk-rsync/" || fail "rsync -a of the snapshot"
tar -C "$S/nightly" -cf "$WORK/bk.tar" $(ls "$S/nightly") || fail "tar of the snapshot"
# Nothing changes in a snapshot: a second pass copies nothing.
again=$(rsync -ai "$S/nightly/" "$WORK/bk-rsync/") || fail "second rsync"
assert_eq "" "$again" "a second rsync -ai of the snapshot"
sleep 0.3
touch "$WORK/stop"
wait $P1 $P2 $P3 || fail "a producer failed"

PARTS="orders/0 orders/1 orders/2 audit/0"
mkdir -p "$WORK/ref/orders" "$WORK/ref/audit"
for p in $PARTS; do
	cat "$S/nightly/$p" >"$WORK/ref/$p" || fail "cat of $p"
	same_file "$WORK/ref/$p" "$WORK/bk-rsync/$p" "rsync -a copy of $p"
	cmp -s -n "$(fsize "$WORK/ref/$p")" "$WORK/ref/$p" "$MNT/$p" ||
		fail "snapshot of $p is not a prefix of the live partition"
done
[ "$(fsize "$WORK/ref/orders/0")" -lt "$(fsize "$MNT/orders/0")" ] ||
	fail "the producers wrote nothing after the snapshot"
rmdir "$S/nightly" || fail "rmdir .snapshot/nightly"

# check_restored HOW: the fresh mount holds exactly the snapshot.
check_restored() {
	local p
	assert_eq "audit orders" "$(ls "$MNT" | xargs)" "topics restored by $1"
	assert_eq "0 1 2" "$(ls "$MNT/orders" | xargs)" "partitions restored by $1"
	for p in $PARTS; do
		same_file "$WORK/ref/$p" "$MNT/$p" "$p restored by $1"
		xassert "$MNT/$p" next_offset "$(wc -l <"$WORK/ref/$p")" "messages of $p restored by $1"
	done
}
mount_stop || fail "daemon did not stop cleanly"
DATA="$WORK/data-rsync"
mkdir "$DATA"
mount_launch
# Topic by topic: the mount's root keeps its own times (EPERM).
rsync -a "$WORK"/bk-rsync/* "$MNT/" || fail "rsync -a into a fresh mount"
check_restored rsync
mount_stop || fail "daemon did not stop cleanly"
DATA="$WORK/data-tar"
mkdir "$DATA"
mount_launch
tar -C "$MNT" -xf "$WORK/bk.tar" || fail "tar -x into a fresh mount"
check_restored tar
log "ok"
