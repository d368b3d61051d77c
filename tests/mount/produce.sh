#!/bin/bash
# produce.sh - keyed producing through MNT/.produce/<topic>: the
# partitions and key_separator topic attributes; keyed lines land where
# Kafka's partitioner puts their key (checked against a second murmur2
# written in Python, murmur2_partition.py, and against librdkafka's own
# partitioner when its headers are installed); 8 concurrent writers (tee
# and Python writes that split lines anywhere) never split or interleave
# a line and keep each writer's order per partition; unkeyed lines are
# sticky per write and rotate over the partitions; partial lines wait for
# their newline or the close; and bad input gets its errno.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
M2="$HERE/murmur2_partition.py"

mount_start
T="$MNT/t"
PF="$MNT/.produce/t"
mkdir "$T" || fail "mkdir topic"

# ---- the partitions attribute -------------------------------------------
# No partitions yet: a write has nowhere to go.
expect_err "No such device or address" sh_c 'printf "k\tv\n" >>"$1"' "$PF"
grep -q "cannot produce to 't'" "$WORK/daemon.log" ||
	fail "no log line for a produce to a topic without partitions"
expect_ok setfattr -n user.fluxfs.partitions -v 8 "$T"
assert_eq "0 1 2 3 4 5 6 7" "$(ls "$T" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
	"partitions= created 0..7"
xassert "$T" partitions 8 "partitions"
getfattr --absolute-names -d -m - "$T" | grep -q '^user.fluxfs.key_separator=' ||
	fail "key_separator not listed on the topic"
assert_eq "0x09" "$(getfattr --absolute-names -e hex -n user.fluxfs.key_separator "$T" |
	sed -n 's/^user.fluxfs.key_separator=//p')" "default separator is TAB"
expect_err "Invalid argument" setfattr -n user.fluxfs.partitions -v 4 "$T"
expect_err "Invalid argument" setfattr -n user.fluxfs.partitions -v 0 "$T"
expect_err "Invalid argument" setfattr -n user.fluxfs.partitions -v abc "$T"
expect_err "Invalid argument" setfattr -n user.fluxfs.partitions -v 10001 "$T"
grep -q "refused partitions=4 on 't'" "$WORK/daemon.log" ||
	fail "no log line for lowering partitions"
xassert "$T" partitions 8 "partitions after refusals"
# Not on partitions.
expect_err "Operation not supported" setfattr -n user.fluxfs.partitions -v 9 "$T/0"

# ---- the .produce directory ---------------------------------------------
ls -a "$MNT" | grep -qx .produce || fail ".produce not listed at the root"
mkdir "$MNT/u" || fail "mkdir u"
assert_eq "t u" "$(ls "$MNT/.produce" | tr '\n' ' ' | sed 's/ $//')" \
	"topics in .produce"
[ -f "$PF" ] || fail "produce file is not a regular file"
assert_eq "0" "$(stat -c %s "$PF")" "produce file size"
assert_eq "--w-------" "$(stat -c %A "$PF")" "produce file mode (the topic's write bits)"
python3 -c 'import os,sys; sys.exit(0 if os.stat(sys.argv[1]).st_ino >> 61 == 1 else 1)' \
	"$PF" || fail "produce file's st_ino does not carry bit 61"

# ---- one keyed line ----------------------------------------------------
printf 'order-17\t{"total": 12}\n' >>"$PF" || fail "keyed append"
want=$(printf 'order-17\n' | python3 "$M2" 8)
assert_eq "$(printf 'order-17\t{"total": 12}')" "$(cat "$T/$want")" \
	"order-17 stored whole in partition $want"
for p in $(seq 0 7); do
	[ "$p" = "$want" ] || [ ! -s "$T/$p" ] || fail "partition $p got data"
done
# Kafka's vector: "kafka" -> 0xd067cf64 -> partition 4 of 8.
printf 'kafka\tx\n' >>"$PF" || fail "append kafka"
tail -n1 "$T/4" | grep -qx "$(printf 'kafka\tx')" || fail "'kafka' not in partition 4"

# ---- 8 concurrent writers -----------------------------------------------
# Four pipe their lines through tee -a (one write per pipe read), four
# write with Python in random chunks that cut lines anywhere (held
# partial lines); all use the same 40 keys.
for w in 0 1 2 3; do
	awk -v w=$w 'BEGIN { for (i = 0; i < 3000; i++)
		printf "key%d\tw%d %d %s\n", (i * 7 + w) % 40, w, i, "payload" }' |
		tee -a "$PF" >/dev/null &
	pids="${pids:-} $!"
done
for w in 4 5 6 7; do
	python3 - "$PF" $w <<'EOF' &
import os, random, sys
path, w = sys.argv[1], int(sys.argv[2])
rnd = random.Random(w)
data = b"".join(b"key%d\tw%d %d %s\n" % ((i * 7 + w) % 40, w, i, b"x" * rnd.randrange(0, 90))
                for i in range(3000))
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
at = 0
while at < len(data):
    n = rnd.choice((1, 3, 17, 100, 999, 4096, 20000))
    at += os.write(fd, data[at:at + n])
os.close(fd)
EOF
	pids="$pids $!"
done
# (not a bare wait: that would wait for lib.sh's watchdog too)
for pid in $pids; do
	wait "$pid" || fail "a writer failed"
done
python3 - "$T" 8 "$HERE" <<'EOF' || fail "keyed lines misplaced, split or out of order"
import os, sys
sys.path.insert(0, sys.argv[3])
from murmur2_partition import partition
top, n = sys.argv[1], int(sys.argv[2])
seen = {}
for p in range(n):
    last = {}
    data = open(os.path.join(top, str(p)), "rb").read()
    assert data.endswith(b"\n"), "partition %d does not end with a newline" % p
    for line in data.split(b"\n")[:-1]:
        key, _, val = line.partition(b"\t")
        if not key.startswith(b"key") or not val.startswith(b"w"):
            continue  # the lines of the earlier checks
        assert partition(key, n) == p, "%r in partition %d" % (line, p)
        w, i, pay = val.split(b" ")
        w, i = int(w[1:]), int(i)
        assert int(key[3:]) == (i * 7 + w) % 40, "line mixed up: %r" % line
        assert i > last.get(w, -1), "writer %d out of order in %d" % (w, p)
        last[w] = i
        assert (w, i) not in seen, "line twice: %r" % line
        seen[(w, i)] = p
missing = 8 * 3000 - len(seen)
assert missing == 0, "%d lines missing" % missing
EOF

# ---- librdkafka's partitioner agrees ------------------------------------
# Installed through contrib/deps.sh like every dependency; only where the
# package cannot be installed is this part left out (and logged).
pkg-config --exists rdkafka 2>/dev/null ||
	FLUXFS_EXTRA_PACKAGES="librdkafka-dev" sh "$top_srcdir/contrib/deps.sh" >&2 ||
	log "cannot install librdkafka-dev"
if pkg-config --exists rdkafka 2>/dev/null && command -v cc >/dev/null; then
	cc -o "$WORK/rdk" "$HERE/tool_rdkafka_partition.c" \
		$(pkg-config --cflags --libs rdkafka) || fail "cannot build the librdkafka tool"
	seq 0 499 | sed 's/^/user-/' >"$WORK/keys"
	printf '\n1234\n234\n34\n4\nkafka\n' >>"$WORK/keys"
	for n in 8 13; do
		"$WORK/rdk" $n <"$WORK/keys" >"$WORK/rdk.$n" || fail "librdkafka tool"
		python3 "$M2" $n <"$WORK/keys" >"$WORK/py.$n"
		cmp -s "$WORK/rdk.$n" "$WORK/py.$n" ||
			fail "librdkafka and murmur2_partition.py disagree ($n partitions)"
	done
	# And fluxfs put each key where librdkafka says.
	mkdir "$MNT/k" && setfattr -n user.fluxfs.partitions -v 13 "$MNT/k" ||
		fail "topic k"
	awk '{ printf "%s\tv\n", $0 }' "$WORK/keys" >>"$MNT/.produce/k" ||
		fail "produce to k"
	python3 - "$WORK/keys" "$WORK/rdk.13" "$MNT/k" <<'EOF' ||
import os, sys
keys = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
parts = [int(x) for x in open(sys.argv[2]).read().split()]
got = {}
for p in range(13):
    for line in open(os.path.join(sys.argv[3], str(p)), "rb").read().split(b"\n")[:-1]:
        got[line[:-2]] = p
bad = [k for k, p in zip(keys, parts) if got.get(k) != p]
assert len(keys) == 506 and not bad, "misplaced: %r" % bad[:3]
EOF
		fail "not where librdkafka puts them"
	log "placement agrees with librdkafka's murmur2_random for 506 keys"
else
	log "librdkafka's headers are not installed: cross-check skipped"
fi

# ---- unkeyed lines: sticky per write, rotating --------------------------
mkdir "$MNT/n" && setfattr -n user.fluxfs.partitions -v 4 "$MNT/n" || fail "topic n"
for i in $(seq 1 40); do
	printf 'no key %d\n' $i >>"$MNT/.produce/n" || fail "unkeyed append"
done
for p in 0 1 2 3; do
	assert_eq 10 "$(wc -l <"$MNT/n/$p")" "unkeyed writes in partition $p"
done
# One write of many unkeyed lines: one partition.
seq 1 500 | sed 's/^/many /' >"$WORK/many"
dd if="$WORK/many" of="$MNT/.produce/n" bs=1M oflag=append conv=notrunc \
	status=none || fail "dd unkeyed"
assert_eq 1 "$(grep -l '^many 1$' "$MNT"/n/* | wc -l)" "one write, one partition"
assert_eq 500 "$(grep -h '^many ' "$MNT"/n/* | wc -l)" "unkeyed lines of one write"
grep -h '^many ' "$MNT"/n/* | cmp -s - "$WORK/many" || fail "one write's unkeyed lines out of order"

# ---- key_separator ------------------------------------------------------
expect_ok setfattr -n user.fluxfs.key_separator -v , "$T"
assert_eq "," "$(getfattr --absolute-names --only-values -n user.fluxfs.key_separator "$T")" \
	"separator ,"
printf 'kafka,comma\n' >>"$PF" || fail "comma-keyed append"
tail -n1 "$T/4" | grep -qx 'kafka,comma' || fail "',' separator not used"
expect_err "Invalid argument" setfattr -n user.fluxfs.key_separator -v ab "$T"
# Empty: every line unkeyed, TAB or not (one write: one partition).
expect_ok setfattr -n user.fluxfs.key_separator -v "" "$T"
# (cat: bash's printf writes each line on its own)
printf 'kafka\tsep-none-1\nkey0\tsep-none-2\nkey1\tsep-none-3\n' >"$WORK/three"
cat "$WORK/three" >>"$PF" || fail "append"
assert_eq 1 "$(grep -l 'sep-none-' "$T"/* | wc -l)" "empty separator: no keys"
expect_ok setfattr -x user.fluxfs.key_separator "$T"
assert_eq "0x09" "$(getfattr --absolute-names -e hex -n user.fluxfs.key_separator "$T" |
	sed -n 's/^user.fluxfs.key_separator=//p')" "separator back to TAB"
# The settings survive a remount.
expect_ok setfattr -n user.fluxfs.key_separator -v : "$MNT/u"
mount_restart
xassert "$T" partitions 8 "partitions after remount"
assert_eq ":" "$(getfattr --absolute-names --only-values -n user.fluxfs.key_separator "$MNT/u")" \
	"separator after remount"

# ---- partial lines ------------------------------------------------------
python3 - "$PF" "$T/4" <<'EOF' || fail "partial lines"
import os, sys, time
pf, p4 = sys.argv[1], sys.argv[2]
before = open(p4, "rb").read()
fd = os.open(pf, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"kaf")
os.write(fd, b"ka\tpart")
assert open(p4, "rb").read() == before, "a partial line was stored early"
os.write(fd, b"ial\nkafka\ttail without newline")
assert open(p4, "rb").read() == before + b"kafka\tpartial\n", "joined line"
os.close(fd)
assert open(p4, "rb").read() == before + b"kafka\tpartial\nkafka\ttail without newline", \
    "held line not stored at close"
EOF
# fsync on the handle answers (durability: tests/reliability/produce_fsync.sh).
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_APPEND); os.write(fd, b"key1\tsynced\n"); os.fsync(fd); os.close(fd)' \
	"$PF" || fail "fsync on a produce handle"

# ---- raising partitions on keyed data: allowed, with a warning ----------
expect_ok setfattr -n user.fluxfs.partitions -v 12 "$T"
[ -e "$T/11" ] || fail "partition 11 not created"
grep -q "partitions of 't' raised from 8 to 12" "$WORK/daemon.log" ||
	fail "no warning when raising partitions on keyed data"
printf 'kafka\tafter raise\n' >>"$PF" || fail "append after raise"
want=$(printf 'kafka\n' | python3 "$M2" 12)
tail -n1 "$T/$want" | grep -qx "$(printf 'kafka\tafter raise')" || fail "key not routed over 12"
# A removed partition comes back when the setting says it exists.
rm "$T/5" || fail "rm partition 5"
printf 'key0\tafter rm\n' >>"$PF" || fail "append after rm"
[ -e "$T/5" ] || fail "partition 5 not re-created"

# ---- bad input ----------------------------------------------------------
expect_err "Permission denied" cat "$PF"
grep -q "refused opening '.produce/t' for reading" "$WORK/daemon.log" ||
	fail "no log line for a read open"
expect_err "Operation not permitted" sh_c 'printf "k\tv\n" >"$1"' "$PF"
grep -q "refused opening '.produce/t' without O_APPEND" "$WORK/daemon.log" ||
	fail "no log line for a write that does not append"
expect_err "No such file or directory" sh_c 'printf "k\tv\n" >>"$1"' "$MNT/.produce/nosuch"
expect_err "Operation not permitted" truncate -s 0 "$PF"
python3 -c 'import os,sys; os.truncate(sys.argv[1], 0)' "$PF" 2>/dev/null &&
	fail "truncate(2) of a produce file succeeded"
grep -q "refused truncating '.produce/t'" "$WORK/daemon.log" ||
	fail "no log line for a truncation"
expect_ok setfattr -n user.fluxfs.max_message_bytes -v 100 "$T"
expect_err "Message too long" sh_c 'printf "key1\t%0200d\n" 0 >>"$1"' "$PF"
# A partition's own lower limit counts too.
expect_ok setfattr -n user.fluxfs.max_message_bytes -v 20 "$T/4"
expect_err "Message too long" sh_c 'printf "kafka\t%050d\n" 0 >>"$1"' "$PF"
expect_err "Not a directory" mkdir "$MNT/.produce/x" # as in .follow
expect_err "Not a directory" ls "$PF/"
log "ok"
