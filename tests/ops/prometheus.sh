#!/bin/bash
# prometheus.sh - fluxfs's series reach Prometheus through Debian's
# node_exporter: its textfile collector reads a symlink to MNT/.metrics.
# That is safe because fluxfs renders .metrics whole at open(), into that
# open file handle: the collector's open-and-read-to-EOF always gets one
# complete snapshot, never a half-written file (the hazard of a writer
# rewriting a .prom file in place).  The exporter runs as its own Debian
# user (prometheus), so the mount is shared (allow_other) and it sees the
# partitions that user may read.  Also: a dead mount shows as
# node_textfile_scrape_error 1, and the shipped alert rules pass
# promtool check rules and promtool's own unit tests.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/ops/svc.sh"

need_packages prometheus-node-exporter prometheus curl util-linux
RULES="$top_srcdir/contrib/prometheus/fluxfs.rules.yml"

out=$(promtool check rules "$RULES" 2>&1) || fail "promtool check rules: $out"
out=$(cd "$(dirname "$RULES")" && promtool test rules fluxfs.rules.test.yml 2>&1) ||
	fail "promtool test rules: $out"

mount_start -o allow_other
svc_trap
# The exporter's user must reach the mount point and the textfile dir.
chmod 755 "$WORK"
TEXTFILE="$WORK/textfile"
mkdir -m 755 "$TEXTFILE"
ln -s "$MNT/.metrics" "$TEXTFILE/fluxfs.prom"

mkdir "$MNT/orders" "$MNT/private" || fail "mkdir topics"
printf 'o1\no2\no3\n' >>"$MNT/orders/0" || fail "append orders/0"
echo secret >>"$MNT/private/0" || fail "append private/0"
chmod 600 "$MNT/private/0"
chmod 700 "$MNT/private"

PORT=$(free_port) || fail "no free port"
svc_start exporter runuser -u prometheus -- prometheus-node-exporter \
	--web.listen-address="127.0.0.1:$PORT" \
	--collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$TEXTFILE"
wait_listen 15 "$PORT" exporter

scrape() {
	curl -fsS --max-time 10 "http://127.0.0.1:$PORT/metrics" >"$WORK/scrape" ||
		fail "curl node_exporter /metrics: $(svc_log exporter)"
}
# series NAME LABELS: the value of NAME{LABELS} in the last scrape.
series() {
	local s=$1
	[ -n "$2" ] && s="$1{$2}"
	awk -v s="$s" '$1 == s { print $2 }' "$WORK/scrape"
}

scrape
assert_eq 0 "$(series node_textfile_scrape_error '')" \
	"textfile collector read the symlinked .metrics ($(grep -i error "$WORK/exporter.log" | tail -1))"
assert_eq 9 "$(series fluxfs_bytes_appended_total 'partition="0",topic="orders"')" \
	"bytes appended to orders/0 as the exporter shows them"
assert_eq 3 "$(series fluxfs_messages_appended_total 'partition="0",topic="orders"')" \
	"messages appended to orders/0"
grep -q '^fluxfs_topics ' "$WORK/scrape" || fail "no fluxfs_topics series"
grep -q '^# TYPE fluxfs_crc_failures_total counter' "$WORK/scrape" ||
	fail "fluxfs_crc_failures_total lost its counter type"
grep -q 'topic="private"' "$WORK/scrape" &&
	fail "the prometheus user sees series of a partition it may not read"

# Fresh values on every scrape, and never a torn file while writers run:
# each of 20 scrapes during appends parses whole and counts up.
gen_lines 20000 w >"$WORK/lines"
(
	for i in $(seq 1 20); do
		head -n 1000 "$WORK/lines" >>"$MNT/orders/0" || exit 1
	done
) &
writer=$!
prev=0
for i in $(seq 1 20); do
	scrape
	assert_eq 0 "$(series node_textfile_scrape_error '')" "scrape $i during appends"
	v=$(series fluxfs_messages_appended_total 'partition="0",topic="orders"')
	[ -n "$v" ] && [ "$v" -ge "$prev" ] ||
		fail "scrape $i: messages went from $prev to '$v'"
	prev=$v
done
wait $writer || fail "writer during scrapes"
scrape
assert_eq 20003 "$(series fluxfs_messages_appended_total 'partition="0",topic="orders"')" \
	"messages after the writer finished"

# A dead mount is an error the alert rules see, not a silent gap.
mount_stop || fail "unmount"
scrape
assert_eq 1 "$(series node_textfile_scrape_error '')" \
	"scrape error once the mount is gone"
grep -q '^fluxfs_' "$WORK/scrape" && fail "fluxfs series still exported after unmount"
log "ok"
exit 0
