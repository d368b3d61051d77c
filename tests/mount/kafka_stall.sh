#!/bin/bash
# kafka_stall.sh - partitions whose export cannot resume must not hold up
# the others: the four partitions of Kafka topic ghost are led by a broker
# that is down (the other two brokers, leading orders, are up), so their
# check of the Kafka partition's last record never gets an answer.  While
# they keep retrying, appends to the healthy exported topic orders reach
# Kafka within 3 s each time (a blocking check took up to 5 s per failing
# partition and attempt, stalling the exporter thread for every topic).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/util.sh"
. "$(dirname "$0")/kafka_lib.sh"

kafka_begin ghost:4 lead=ghost:1 orders:1 lead=orders:2 down=1
kafka_mount
mkdir "$MNT/ghost" "$MNT/orders" || fail "mkdir"
for i in 0 1 2 3; do
	echo "ghost $i" >"$MNT/ghost/$i" || fail "write ghost/$i"
done
echo "order 0" >"$MNT/orders/0" || fail "write orders/0"
expect_ok setfattr -n user.fluxfs.mirror_to -v ghost "$MNT/ghost"
expect_ok setfattr -n user.fluxfs.mirror_to -v orders "$MNT/orders"
mirror_wait "$MNT/orders/0"

# Rounds go on until the ghost partitions gave up their first check
# (5 s) and show retrying, and a few more past that (their next attempt).
ghosts_retrying() {
	local i
	for i in 0 1 2 3; do
		[ "$(xval "$MNT/ghost/$i" mirror_state)" = retrying ] || return 1
	done
}
round=0
after=0
while [ $after -lt 6 ]; do
	round=$((round + 1))
	[ $round -le 40 ] || fail "ghost partitions not retrying after $round rounds ($(xval "$MNT/ghost/0" mirror_state))"
	echo "order $round" >>"$MNT/orders/0" || fail "append"
	t0=$(date +%s%3N)
	mirror_wait "$MNT/orders/0"
	ms=$(($(date +%s%3N) - t0))
	log "round $round: acknowledged after $ms ms"
	[ "$ms" -lt 3000 ] || fail "round $round: the healthy topic waited $ms ms behind the failing one"
	ghosts_retrying && after=$((after + 1))
	sleep 0.5
done
check_exported orders 0 "$MNT/orders/0"
log "ghost/0: $(xval "$MNT/ghost/0" mirror_error)"
log "ok"
