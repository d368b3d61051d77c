#!/bin/bash
# recipe_imfile.sh - doc/recipes.md "Shipping a partition with rsyslog's
# imfile, across a fluxfs restart": rsyslog's imfile follows a partition
# file and forwards each line to a file outside the mount (omfile), in
# mode="inotify" and in mode="polling" (one rsyslogd each, each with its
# own work directory, state files and pid file).  Lines are appended
# before and after fluxfs is unmounted and mounted again on the same data
# directory; rsyslogd is stopped before the unmount (it holds the file
# open) and started again with its state files kept, so it resumes at the
# offset recorded for the file's inode number.  Every line must arrive
# exactly once: none missing, none twice.  With an inode number that
# changed across the remount imfile would take the file for a new one and
# send it again from the start.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/ops/svc.sh"

need_packages rsyslog
MODES=${IMFILE_MODES:-inotify polling}
mount_start
svc_trap
mkdir "$MNT/app" || fail "mkdir app"

# rsyslog's configuration for one mode: imfile on MNT/app/MODE, each line
# written as it came to $WORK/MODE/forwarded.
write_conf() {
	local mode=$1 R="$WORK/$1"
	mkdir -p "$R/work"
	cat >"$R/rsyslog.conf" <<CONF
global(workDirectory="$R/work")
module(load="imfile" mode="$mode" PollingInterval="1")
template(name="raw" type="string" string="%msg%\n")
input(type="imfile" file="$MNT/app/$mode" tag="app:" ruleset="ship"
      persistStateInterval="1")
ruleset(name="ship") {
	action(type="omfile" file="$R/forwarded" template="raw")
}
CONF
	rsyslogd -N1 -f "$R/rsyslog.conf" >"$R/N1.log" 2>&1 ||
		fail "rsyslogd -N1 ($mode): $(cat "$R/N1.log")"
}

start_all() {
	local mode
	for mode in $MODES; do
		svc_start "rsyslog-$mode" rsyslogd -n -f "$WORK/$mode/rsyslog.conf" \
			-i "$WORK/$mode/rsyslogd.pid"
	done
}

stop_all() {
	local mode
	for mode in $MODES; do
		svc_stop "rsyslog-$mode"
	done
}

# append FROM TO: lines FROM..TO to every mode's partition, one append
# each, as a program writing its log would.
append() {
	local i mode
	for mode in $MODES; do
		for i in $(seq "$1" "$2"); do
			echo "$mode line $i" >>"$MNT/app/$mode" || fail "append $mode line $i"
		done
	done
}

count() { [ "$(grep -c "line" "$1" 2>/dev/null)" -ge "$2" ]; }

# arrived N WHEN: every mode's forwarded file reaches N lines within 20 s,
# stays there through a few polling intervals, and holds lines 1..N once
# each, in order.
arrived() {
	local n=$1 when=$2 mode f
	for mode in $MODES; do
		f="$WORK/$mode/forwarded"
		wait_for 20 count "$f" "$n" ||
			fail "$mode: $(grep -c line "$f" 2>/dev/null) of $n lines forwarded $when: $(svc_log "rsyslog-$mode")"
	done
	sleep 3
	for mode in $MODES; do
		f="$WORK/$mode/forwarded"
		dups=$(sort "$f" | uniq -d | wc -l)
		[ "$dups" -eq 0 ] ||
			fail "$mode: $dups lines forwarded twice $when ($(wc -l <"$f") lines for $n; first: $(sort "$f" | uniq -d | head -n 1))"
		diff <(seq 1 "$n" | sed "s/^/$mode line /") "$f" >"$WORK/$mode.diff" ||
			fail "$mode: forwarded lines differ from the $n appended $when: $(head -n 5 "$WORK/$mode.diff")"
		log "$mode: $n lines, each once, $when"
	done
}

for mode in $MODES; do
	write_conf "$mode"
	: >>"$MNT/app/$mode" || fail "create app/$mode"
done
append 1 100
start_all
arrived 100 "(written before rsyslogd started)"
append 101 150
arrived 150 "(written while it ran)"
declare -A ino_before=()
for mode in $MODES; do
	ino_before[$mode]=$(stat -c %i "$MNT/app/$mode")
done

# The restart: rsyslogd stops (writing its state files), fluxfs is
# unmounted and mounted again, lines are appended while rsyslogd is down
# and after it started again on the same state files.
stop_all
mount_restart
for mode in $MODES; do
	log "$mode: inode $(stat -c %i "$MNT/app/$mode") after the remount (before: ${ino_before[$mode]}); state files: $(ls "$WORK/$mode/work" | tr '\n' ' ')"
done
append 151 200
start_all
append 201 250
arrived 250 "(across the fluxfs restart)"
stop_all
log "ok"
exit 0
