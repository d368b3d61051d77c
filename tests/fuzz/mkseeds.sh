#!/bin/bash
# mkseeds.sh - regenerate the committed seed corpora in tests/fuzz/corpus/
# from real data: partitions written through a fluxfs mount (raw, lz4 and
# gzip segments, a torn tail, a rebuilt index) packed into fuzz_recovery's
# archive format, topic.conf texts for fuzz_config, and line streams for
# fuzz_framer.  Needs a built tree, /dev/fuse and python3.
#   Usage: tests/fuzz/mkseeds.sh BUILDDIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
corpus="$src/corpus"
work=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-seeds.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		fusermount3 -u "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/data" "$work/mnt" "$corpus"/fuzz_recovery \
	"$corpus"/fuzz_config "$corpus"/fuzz_framer

"$build/src/fluxfs" -f -o segment_bytes=4k "$work/data" "$work/mnt" \
	>"$work/daemon.log" 2>&1 &
pid=$!
for i in $(seq 1 100); do
	grep -qs " $work/mnt " /proc/mounts && break
	sleep 0.1
done
# 400-byte lines: the first 4 KiB segment holds exactly ten messages, so
# the second is 00000000000000000010, a name fuzz_recovery knows.
line=$(printf '%399s' '' | tr ' ' x)
for c in none lz4 gzip; do
	mkdir "$work/mnt/$c"
	setfattr -n user.fluxfs.compression -v "$c" "$work/mnt/$c"
	for i in $(seq 1 14); do echo "$line" >>"$work/mnt/$c/0"; done
	printf 'short\nlines\nin one write\n' >>"$work/mnt/$c/0"
	printf 'one\n' >>"$work/mnt/$c/small"
done
sleep 2 # let the compressor seal and compress the first segments
fusermount3 -u "$work/mnt"
wait "$pid"
pid=""

python3 - "$work/data" "$corpus/fuzz_recovery" <<'PY'
import os, struct, sys
names = ["00000000000000000000.log", "00000000000000000000.idx",
         "partition.state", "00000000000000000010.log",
         "00000000000000000010.idx", "00000000000000000010.lz4.tmp",
         "partition.state.tmp", "00000000000000000000.lz4",
         "00000000000000000000.blk", "00000000000000000000.gz",
         "00000000000000000010.gz", "00000000000000000010.blk"]
data, out = sys.argv[1], sys.argv[2]
def pack(files):
    b = b""
    for n, body in files:
        body = body[:65535]
        b += bytes([names.index(n)]) + struct.pack("<H", len(body)) + body
    return b
for topic in sorted(os.listdir(data)):
    for part in sorted(os.listdir(os.path.join(data, topic)) if os.path.isdir(os.path.join(data, topic)) else []):
        d = os.path.join(data, topic, part)
        if not os.path.isdir(d):
            continue
        files = [(n, open(os.path.join(d, n), "rb").read())
                 for n in sorted(os.listdir(d)) if n in names]
        base = "%s-%s" % (topic, part)
        open(os.path.join(out, base), "wb").write(pack(files))
        # Crash shapes: torn .log tail, missing .idx, idx cut mid-entry.
        torn = [(n, b[:-7] if n.endswith(".log") and n.startswith("0000000000000000001") else b) for n, b in files]
        open(os.path.join(out, base + "-torn"), "wb").write(pack(torn))
        noidx = [(n, b) for n, b in files if not n.endswith(".idx")]
        open(os.path.join(out, base + "-noidx"), "wb").write(pack(noidx))
        cut = [(n, b[:-20] if n.endswith(".idx") else b) for n, b in files]
        open(os.path.join(out, base + "-idxcut"), "wb").write(pack(cut))
PY

printf 'segment_bytes=16M\nretention_ms=7d\ncompression=lz4\n' >"$corpus/fuzz_config/topic.conf"
printf '# comment\n\nflush_ms=0\nmax_message_bytes=1k\nretention_bytes=unlimited\n' >"$corpus/fuzz_config/comments"
printf 'segment_ms=1h\nsegment_ms=30m\ncompression=gzip\n' >"$corpus/fuzz_config/twice"
printf '256M' >"$corpus/fuzz_config/value-size"
printf 'retention_bytes=-1' >"$corpus/fuzz_config/pair"
printf 'bad key=1\n' >"$corpus/fuzz_config/bad"

printf '\x07\x10hello\nworld\npartial' >"$corpus/fuzz_framer/lines"
printf '\x2a\x05\n\n\nab\ncdefghij\nk' >"$corpus/fuzz_framer/limit"
{ printf '\x11\x40'; for i in $(seq 1 40); do printf 'message %d with some text\n' "$i"; done; } >"$corpus/fuzz_framer/many"
printf '\x03\x01no newline at all in this stream' >"$corpus/fuzz_framer/nonl"
echo "seeds written to $corpus"
