#!/bin/sh
# Install the Debian packages fluxfs needs to build, test and run, if any
# are missing.  apt-get as root, through sudo otherwise.  Sourced or run by
# quickstart.sh and check.sh.
set -e
# FLUXFS_BENCH=1: also what make bench compares with (redis-server for
# the durable table's Redis Streams column; 2 MB).
FLUXFS_BENCH_PACKAGES="redis-server"
FLUXFS_PACKAGES="build-essential autoconf automake libtool pkg-config \
libfuse3-dev fuse3 liblz4-dev zlib1g-dev libzstd-dev librdkafka-dev kcat check lz4 gzip zstd attr e2fsprogs rsync tar \
psmisc procps util-linux coreutils python3 bindfs \
${FLUXFS_EXTRA_PACKAGES:-} ${FLUXFS_BENCH:+$FLUXFS_BENCH_PACKAGES}"

missing=""
for p in $FLUXFS_PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing \
		>/dev/null
fi
