#!/bin/bash
# Install what is missing, build fluxfs, and mount a demo filesystem in the
# background.  Safe to run again: an existing build is reused and a live
# mount is left as it is.
#   data directory: $FLUXFS_DATA, else ${XDG_DATA_HOME:-~/.local/share}/fluxfs
#   mount point:    $FLUXFS_MNT, else ~/fluxfs
# Run as root, it mounts with allow_other,default_permissions, so that a
# service that drops privileges (nginx's workers as www-data, rsyslog)
# can write into the mount, with permissions checked as on any
# filesystem; a user's own mount stays private to that user (FUSE's
# default; allow_other needs user_allow_other in /etc/fuse.conf there).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
data="${FLUXFS_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/fluxfs}"
mnt="${FLUXFS_MNT:-$HOME/fluxfs}"
build="$top/build"

sh "$top/contrib/deps.sh"
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
if [ ! -f "$build/Makefile" ]; then
	mkdir -p "$build"
	(cd "$build" && "$top/configure" -q)
fi
make -C "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

mkdir -p "$data" "$mnt"
if mountpoint -q "$mnt"; then
	echo "fluxfs is already mounted on $mnt"
else
	opts=()
	[ "$(id -u)" -eq 0 ] && opts=(-o allow_other,default_permissions)
	"$build/src/fluxfs" "${opts[@]}" "$data" "$mnt"
	for _ in $(seq 1 50); do
		mountpoint -q "$mnt" && break
		sleep 0.1
	done
	mountpoint -q "$mnt" || { echo "quickstart: mount on '$mnt' did not come up" >&2; exit 1; }
	echo "fluxfs mounted on $mnt (data in $data)"
fi
[ -d "$mnt/demo" ] || mkdir "$mnt/demo"

cat <<TXT

Try it:
  echo "hello, log" >> $mnt/demo/0          # produce one message
  cat $mnt/demo/0                            # consume from the start
  tail -f $mnt/.follow/demo/0 &              # follow: new messages appear at once
  getfattr -d -m - $mnt/demo/0               # offsets, segments, configuration

Unmount with:
  fusermount3 -u $mnt
TXT
