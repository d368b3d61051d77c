#!/bin/bash
# remount.sh - a data directory written by one mount reads identically
# after a remount (several topics and partitions, many segments); its
# .log files hold exactly the partition's bytes; the daemon refuses a data
# directory already served by another fluxfs, a non-empty directory that
# is not fluxfs's, and a missing mount point, with a message and a non-zero
# status; --help and --version exit 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"

# try_mount DATA MNT: run a second daemon that must refuse; sets $out.
try_mount() {
	local pid i rc=0
	"$FLUXFS" -f "$1" "$2" >"$WORK/try.out" 2>&1 &
	pid=$!
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		mountpoint -q "$2" && fusermount3 -u "$2"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		fail "fluxfs '$1' '$2' is still running after 5 s; wanted a refusal"
	fi
	wait "$pid" || rc=$?
	out=$(cat "$WORK/try.out")
	if mountpoint -q "$2"; then
		fusermount3 -u "$2"
		fail "fluxfs '$1' '$2' mounted; wanted a refusal"
	fi
	[ $rc -ne 0 ] || fail "fluxfs '$1' '$2' exited 0; wanted a refusal (output: $out)"
	[ -n "$out" ] || fail "fluxfs '$1' '$2' refused without a message"
	log "refused (status $rc): $out"
}

mount_start -o segment_bytes=4096
[ -e "$DATA/fluxfs.meta" ] || fail "no fluxfs.meta in a mounted data directory"
for t in alpha beta gamma; do
	mkdir "$MNT/$t" || fail "mkdir $t"
	for p in 0 1 2; do
		gen_lines 1500 "$t-$p" >"$WORK/ref-$t-$p"
		split -a 4 -l 40 "$WORK/ref-$t-$p" "$WORK/c-$t-$p."
		for f in "$WORK/c-$t-$p."*; do
			cat "$f" >>"$MNT/$t/$p" || fail "append $f"
		done
		same_file "$WORK/ref-$t-$p" "$MNT/$t/$p" "$t/$p as written"
	done
done
xget segs "$MNT/alpha/0" segments
[ "$segs" -gt 5 ] || fail "only $segs segments with segment_bytes=4096"
# The on-disk layout (doc/storage.md): uncompressed .log files
# concatenate to the partition's bytes.
nlogs=$(ls "$DATA/alpha/0/"*.log | wc -l)
assert_eq "$segs" "$nlogs" ".log files vs user.fluxfs.segments"
same_file "$WORK/ref-alpha-0" <(cat "$DATA/alpha/0/"*.log) "concatenated .log files"
[ -e "$DATA/alpha/0/00000000000000000000.log" ] || fail "first segment is not named 00000000000000000000.log"

listing() {
	local t p
	for t in alpha beta gamma; do
		for p in 0 1 2; do
			printf '%s/%s %s %s ' "$t" "$p" "$(fsize "$MNT/$t/$p")" "$(stat -c %a "$MNT/$t/$p")"
			getfattr --absolute-names --only-values -n user.fluxfs.next_offset "$MNT/$t/$p"
			echo
		done
	done
	ls -A "$MNT" | grep -v '^\.'
}
before=$(listing)

# A second daemon on the same data directory is refused.
mkdir "$WORK/mnt2"
try_mount "$DATA" "$WORK/mnt2"
same_file "$WORK/ref-beta-1" "$MNT/beta/1" "first mount after a refused second one"

# A non-empty directory that is not fluxfs's is refused and left alone.
mkdir "$WORK/junk"
echo "precious" >"$WORK/junk/notes.txt"
try_mount "$WORK/junk" "$WORK/mnt2"
assert_eq "notes.txt" "$(ls -A "$WORK/junk")" "foreign directory untouched"
assert_eq precious "$(cat "$WORK/junk/notes.txt")" "foreign file untouched"

# A data directory of a newer format is refused and left alone.
mkdir "$WORK/newer"
echo "format=999" >"$WORK/newer/fluxfs.meta"
try_mount "$WORK/newer" "$WORK/mnt2"
assert_eq "format=999" "$(cat "$WORK/newer/fluxfs.meta")" "newer fluxfs.meta untouched"

# A missing mount point.
mkdir "$WORK/data3"
try_mount "$WORK/data3" "$WORK/no-such-dir"

# --help and --version.
"$FLUXFS" --help >"$WORK/help" 2>&1 || fail "--help exited non-zero"
[ -s "$WORK/help" ] || fail "--help printed nothing"
"$FLUXFS" --version >"$WORK/version" 2>&1 || fail "--version exited non-zero"
version=$(sed -n 's/^AC_INIT(\[fluxfs\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
grep -qF "$version" "$WORK/version" || fail "--version does not print $version: $(cat "$WORK/version")"

mount_restart
assert_eq "$before" "$(listing)" "sizes, modes, offsets and names after remount"
for t in alpha beta gamma; do
	for p in 0 1 2; do
		same_file "$WORK/ref-$t-$p" "$MNT/$t/$p" "$t/$p after remount"
	done
done
# Appends go on where they stopped, offsets continue.
echo next >>"$MNT/gamma/2" || fail "append after remount"
xassert "$MNT/gamma/2" next_offset 1501 "next_offset after an append following remount"
mount_restart
assert_eq next "$(tail -n 1 "$MNT/gamma/2")" "last line after a second remount"
log "ok"
