#!/bin/bash
# snapshot_cut.sh - a snapshot is one instant across partitions: while
# writers append, each alternating between two partitions with increasing
# sequence numbers (a_i, then b_i, then a_i+1...), no snapshot may hold
# b_i without a_i (written before it) nor a_i+1 without b_i; every
# snapshot partition is a byte prefix of the live one.  Two hundred idle
# partitions between the pairs make the cut's walk long enough that a
# snapshot reading the ends one by one, without the cut lock, is caught.
# test-limit: 300
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

TEST_TIMEOUT=280
mount_start
S="$MNT/.snapshot"
mkdir "$MNT/t" "$MNT/u" || fail "mkdir topics"
# Each pair's partitions are made far apart, so that the cut's walk
# (in the order they were made) reads them far apart too.
: >"$MNT/t/a"
for i in $(seq 1 100); do : >"$MNT/t/idle$i"; done
: >"$MNT/t/m"
for i in $(seq 101 200); do : >"$MNT/t/idle$i"; done
: >"$MNT/t/zz"
for i in $(seq 1 100); do echo "x" >"$MNT/u/busy$i"; done

# writer A B SECONDS: alternate one line to A, one to B, for SECONDS.
writer() {
	python3 - "$@" <<'EOF'
import os, sys, time
a = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
b = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
end = time.time() + float(sys.argv[3])
i = 0
while time.time() < end:
    os.write(a, b"%d\n" % i)
    os.write(b, b"%d\n" % i)
    i += 1
EOF
}

writer "$MNT/t/a" "$MNT/t/zz" 12 &
W1=$!
writer "$MNT/u/busy1" "$MNT/t/m" 12 &
W2=$!
sleep 1
n=0
while kill -0 $W1 2>/dev/null && [ $n -lt 40 ]; do
	mkdir "$S/s$n" || fail "mkdir .snapshot/s$n"
	n=$((n + 1))
	sleep 0.1
done
wait $W1 || fail "writer 1"
wait $W2 || fail "writer 2"
[ $n -ge 10 ] || fail "only $n snapshots taken while the writers ran"

last() { tail -n 1 "$1" 2>/dev/null || true; }
# check_pair SNAP A B: A's last sequence number is B's or one more.
check_pair() {
	local la lb
	la=$(last "$S/$1/$2")
	lb=$(last "$S/$1/$3")
	# A pair's "x" first line (busy1) counts as before every number.
	[ "$la" = "x" ] && la=-1
	[ -z "$la" ] && la=-1
	[ -z "$lb" ] && lb=-1
	[ "$la" -eq "$lb" ] || [ "$la" -eq $((lb + 1)) ] ||
		fail "snapshot $1 is not one instant: $2 ends at $la, $3 at $lb"
}
for i in $(seq 0 $((n - 1))); do
	check_pair "s$i" t/a t/zz
	check_pair "s$i" u/busy1 t/m
	for f in t/a t/zz t/m u/busy1; do
		sz=$(fsize "$S/s$i/$f")
		cmp -s -n "$sz" "$S/s$i/$f" "$MNT/$f" ||
			fail "snapshot s$i of $f is not a prefix of the live partition"
	done
done
log "$n snapshots, each one instant across 304 partitions; last: $(last "$S/s$((n - 1))/t/a")"
for i in $(seq 0 $((n - 1))); do rmdir "$S/s$i" || fail "rmdir s$i"; done
log "ok"
