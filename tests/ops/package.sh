#!/bin/bash
# package.sh - the Debian package, built and used as an operator would:
# dpkg-buildpackage -us -uc -b on a clean copy of the source, lintian
# with no errors, the files in Debian's places; "apt-get install ./*.deb"
# in a throwaway root made by debootstrap (minbase: fuse3 and the
# libraries are absent there, so Depends must pull them in), where
# "mount -t fluxfs" and an append must work; the same on this machine,
# then the installed systemd unit: verified with
# systemd-analyze and its exact ExecStart=/ExecStop= lines run by hand
# (CI has no systemd), so a wrong path or option in the unit fails here.
# The package is removed (purged) at the end, also on failure.
#
# Skipped (77) in a sanitizer build: dpkg-buildpackage builds its own
# objects from source with Debian's flags, whatever this build tree was
# configured with, so a second run would test the very same package.
# test-limit: 900 (tests/timelimit.sh)
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"

if grep -q '^SAN_CFLAGS = .*-fsanitize' "$top_builddir/Makefile" 2>/dev/null; then
	echo "SKIP: sanitizer build; the .deb does not depend on this build's flags"
	exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "SKIP: installing a package needs root"; exit 77; }
# One at a time on a machine: this test installs and removes the package,
# and tests/mount/ctl_mount.sh puts its own /sbin/mount.fluxfs in place for
# a while; both hold this lock (released when the shell exits, after the
# purge), so two suites run at once wait for each other.
exec {HELPER_LOCK}>/run/lock/fluxfs-mount-helper.lock
flock -w 500 "$HELPER_LOCK" || fail "waited 500 s for the mount helper lock"
if dpkg-query -W -f='${Status}' fluxfs 2>/dev/null | grep -q 'ok installed'; then
	fail "a fluxfs package is installed already; this test would remove it"
fi
need_packages dpkg-dev debhelper fakeroot lintian pkgconf libfuse3-dev \
	liblz4-dev zlib1g-dev check fuse3 systemd debootstrap

T=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-package.XXXXXX")
SRC="$T/fluxfs"
INST=""
CONF=""
DAEMON=""
MP=""
ROOT=""
installed=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$WATCHDOG_PID" ] && pkill -P "$WATCHDOG_PID" sleep 2>/dev/null
	if [ -n "$MP" ] && is_mounted "$MP"; then
		fusermount3 -u "$MP" 2>/dev/null || fusermount3 -uz "$MP" 2>/dev/null
	fi
	if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
		sleep 1
		kill "$DAEMON" 2>/dev/null
	fi
	[ -n "$CONF" ] && rm -f "$CONF" && rmdir /etc/fluxfs 2>/dev/null
	if [ $installed -eq 1 ]; then
		dpkg --purge fluxfs >"$T/purge.log" 2>&1 ||
			{ cat "$T/purge.log" >&2; rc=1; }
	fi
	[ -n "$MP" ] && is_mounted "$MP" && rc=1
	if [ -n "$ROOT" ]; then
		is_mounted "$ROOT/srv/topics" && fusermount3 -u "$ROOT/srv/topics" 2>/dev/null
		is_mounted "$ROOT/proc" && umount "$ROOT/proc"
	fi
	# Never rm through a mount (the throwaway root's /proc above all).
	if grep -qs " $T/" /proc/mounts; then
		echo "FAIL [$TEST_NAME]: mounts left under $T; not removing it" >&2
		rc=1
	else
		rm -rf --one-file-system "$T"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'fail "timed out after ${TEST_TIMEOUT}s"' TERM
trap 'fail "interrupted"' INT
(sleep "$TEST_TIMEOUT" && kill -TERM $$ 2>/dev/null) >/dev/null 2>&1 &
WATCHDOG_PID=$!

# --- build -----------------------------------------------------------------
# A clean copy: the package builds in the source tree, which must not see
# this build directory (or any other configured tree).
mkdir -p "$SRC"
# git's list only when the source tree is a work tree's top: make
# distcheck unpacks its tarball inside the work tree, where git lists
# none of the tarball's files.
if [ "$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null)" = \
	"$(cd "$top_srcdir" && pwd -P)" ]; then
	(cd "$top_srcdir" && git ls-files -co --exclude-standard |
		grep -v -e '^build' | tar -cf - -T -) | tar -C "$SRC" -xf - ||
		fail "cannot copy the source tree"
else
	tar -C "$top_srcdir" --exclude='./build*' --exclude=./_build --exclude=autom4te.cache \
		-cf - . | tar -C "$SRC" -xf - || fail "cannot copy the source tree"
fi
[ -f "$SRC/debian/control" ] || fail "no debian/ in the source tree"
(cd "$SRC" && dpkg-checkbuilddeps) >"$T/deps.log" 2>&1 ||
	fail "build dependencies: $(cat "$T/deps.log")"
# The unit tests run in this suite already; nocheck keeps the build short.
log "dpkg-buildpackage -us -uc -b"
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
	dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1 ||
	{ tail -n 30 "$T/build.log" >&2; fail "dpkg-buildpackage failed"; }
ver=$(cd "$SRC" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
DEB="$T/fluxfs_${ver}_${arch}.deb"
[ -f "$DEB" ] || fail "no $DEB (got: $(ls "$T"))"

# --- contents --------------------------------------------------------------
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$T/contents"
for f in /usr/bin/fluxfs /usr/bin/fluxctl /sbin/mount.fluxfs \
	/usr/share/man/man8/fluxfs.8.gz /usr/share/man/man1/fluxctl.1.gz \
	/usr/share/man/man8/mount.fluxfs.8.gz /lib/systemd/system/fluxfs@.service \
	/usr/share/bash-completion/completions/fluxctl \
	/usr/share/doc/fluxfs/copyright; do
	grep -qx "$f" "$T/contents" || fail "not in the package: $f"
done
deps=$(dpkg-deb -f "$DEB" Depends)
for d in fuse3 libfuse3-3 liblz4-1 zlib1g; do
	case ", $deps" in
	*", $d "* | *", $d,"* | *", $d") ;;
	*) fail "Depends lacks $d: $deps" ;;
	esac
done

# --- lintian ---------------------------------------------------------------
lintian --no-tag-display-limit "$T"/fluxfs_*.changes >"$T/lintian.log" 2>&1
grep -E '^[WI]: ' "$T/lintian.log" | sed 's/^/lintian: /'
grep -E '^E: ' "$T/lintian.log" && fail "lintian reports errors"

# --- a throwaway root: apt-get install ./*.deb, mount -t fluxfs ------------
# debootstrap of the host's release from the host's mirror, kept as a
# tarball in FLUXFS_TEST_CACHE so a second run starts in seconds.
. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
	grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' \
	/etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
CACHE=${FLUXFS_TEST_CACHE:-/var/cache/fluxfs-tests}
BASE="$CACHE/$suite-minbase.tar"
ROOT="$T/root"
mkdir -p "$ROOT" "$CACHE"
if [ -s "$BASE" ]; then
	tar -C "$ROOT" -xf "$BASE" || fail "cannot unpack $BASE"
else
	log "debootstrap --variant=minbase $suite ($mirror)"
	debootstrap --variant=minbase "$suite" "$ROOT" "$mirror" >"$T/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$T/debootstrap.log" >&2; fail "debootstrap $suite from $mirror"; }
	tar -C "$ROOT" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
fi
for p in fuse3 libfuse3-3 fluxfs; do
	chroot "$ROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' &&
		fail "the throwaway root has $p already: the install proves nothing"
done
mount -t proc proc "$ROOT/proc" || fail "mount /proc in the throwaway root"
[ -e "$ROOT/dev/fuse" ] || mknod -m 666 "$ROOT/dev/fuse" c 10 229 || fail "mknod /dev/fuse"
cp "$DEB" "$ROOT/tmp/" || fail "copy the package into the throwaway root"
log "throwaway root: apt-get install ./$(basename "$DEB")"
chroot "$ROOT" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q ./tmp/$(basename "$DEB")" >"$T/root-install.log" 2>&1 ||
	{ tail -n 20 "$T/root-install.log" >&2; fail "apt-get install in the throwaway root"; }
out=$(chroot "$ROOT" sh -c 'set -e
	mkdir -p /srv/topics /var/lib/fluxfs
	mount -t fluxfs /var/lib/fluxfs /srv/topics
	mkdir /srv/topics/t
	echo "fresh root appends" >> /srv/topics/t/0
	cat /srv/topics/t/0
	fluxctl stat /srv/topics >/dev/null
	fusermount3 -u /srv/topics' 2>&1) || fail "mount -t fluxfs in the throwaway root: $out"
assert_eq "fresh root appends" "$out" "read back in the throwaway root"
wait_for 10 bash -c "! pgrep -f '^/usr/bin/fluxfs .*/var/lib/fluxfs /srv/topics' >/dev/null" ||
	fail "the throwaway root's daemon did not exit after unmount"
assert_eq "fresh root appends" "$(cat "$ROOT"/var/lib/fluxfs/t/0/*.log)" \
	"the line is in the throwaway root's data directory"
umount "$ROOT/proc" || fail "umount the throwaway root's /proc"

# --- install on this machine, mount -t fluxfs, append ----------------------
log "apt-get install ./$(basename "$DEB")"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	-o DPkg::Lock::Timeout=120 "$DEB" >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log" >&2; fail "apt-get install of the package"; }
[ -x /usr/bin/fluxfs ] && [ -x /sbin/mount.fluxfs ] ||
	fail "installed package lacks /usr/bin/fluxfs or /sbin/mount.fluxfs"
man -w mount.fluxfs >/dev/null 2>&1 || fail "man mount.fluxfs finds no page"

mkdir -p "$T/data" "$T/mnt"
MP="$T/mnt"
# mount(8) finds /sbin/mount.fluxfs by the type; the helper finds
# /usr/bin/fluxfs, which detaches once the mount is live.
env -u FLUXFS_BIN mount -t fluxfs -o noauto,flush_ms=100 "$T/data" "$MP" \
	>"$T/mount.log" 2>&1 || fail "mount -t fluxfs: $(cat "$T/mount.log")"
is_mounted "$MP" || fail "mount -t fluxfs returned but nothing is mounted"
grep -q "^[^ ]* $MP fuse" /proc/mounts || fail "not a FUSE mount: $(grep " $MP " /proc/mounts)"
DAEMON=$(head -n 1 "$T/data/.fluxfs.lock" 2>/dev/null | tr -dc 0-9)
[ -n "$DAEMON" ] || DAEMON=$(pgrep -n -f "^/usr/bin/fluxfs .*$MP" || true)
[ -n "$DAEMON" ] || fail "cannot find the daemon mount -t fluxfs started"
[ "$(readlink "/proc/$DAEMON/exe")" = /usr/bin/fluxfs ] ||
	fail "daemon $DAEMON is not the installed /usr/bin/fluxfs"
mkdir "$MP/events" || fail "mkdir a topic"
echo "installed package appends" >>"$MP/events/0" || fail "append"
assert_eq "installed package appends" "$(cat "$MP/events/0")" "read back"
fusermount3 -u "$MP" || fail "fusermount3 -u"
wait_for 10 bash -c "! kill -0 $DAEMON" || fail "daemon did not exit after unmount"
DAEMON=""
MP=""
assert_eq "installed package appends" "$(cat "$T"/data/events/0/*.log)" \
	"the line is in the data directory after unmount"

# --- the installed systemd unit --------------------------------------------
UNIT=/lib/systemd/system/fluxfs@.service
[ -f "$UNIT" ] || fail "no $UNIT"
mkdir -p "$T/unit-mnt" "$T/unit-data"
INST=$(systemd-escape --path "$T/unit-mnt")
# %f as systemd computes it from the instance name.
F=$(systemd-escape --unescape --path "$INST")
assert_eq "$T/unit-mnt" "$F" "%f of instance $INST"
mkdir -p "$T/verify"
cp "$UNIT" "$T/verify/fluxfs@$INST.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
	"$T/verify/fluxfs@$INST.service" 2>&1)
echo "$out" | grep -v -e 'Failed to .*bus' -e '^$' \
	-e 'Cannot add dependency job' -e 'multi-user.target' >"$T/verify.log" || true
[ -s "$T/verify.log" ] && fail "systemd-analyze verify: $(cat "$T/verify.log")"

# The unit's EnvironmentFile for this instance points it at our data.
CONF=/etc/fluxfs/$INST.conf
mkdir -p /etc/fluxfs
printf 'FLUXFS_DATA=%s\n' "$T/unit-data" >"$CONF"

# unit_line KEY: the unit's KEY= line as argv in UNIT_ARGV, expanded as
# systemd does for this unit: specifiers %f/%i, Environment= then the
# EnvironmentFile= values, "$VAR" split on whitespace, "${VAR}" one word.
unit_line() {
	local line v
	local -A env=()
	while IFS= read -r v; do
		v=${v#Environment=}
		v=${v#\"}
		v=${v%\"}
		env[${v%%=*}]=${v#*=}
	done < <(grep '^Environment=' "$UNIT")
	while IFS= read -r v; do
		[ -n "$v" ] && env[${v%%=*}]=${v#*=}
	done < <(grep -E '^[A-Z_]+=' "$CONF")
	line=$(grep "^$1=" "$UNIT") || fail "unit has no $1="
	line=${line#"$1="}
	line=${line//%f/$F}
	line=${line//%i/$INST}
	for v in "${!env[@]}"; do
		line=${line//"\${$v}"/"'${env[$v]}'"}
		line=${line//"\$$v"/${env[$v]}}
	done
	case $line in *'$'*) fail "unit $1= uses an unknown variable: $line" ;; esac
	eval "UNIT_ARGV=($line)"
}

grep -q '^ConditionPathIsDirectory=%f$' "$UNIT" && [ -d "$F" ] ||
	fail "the unit's condition does not hold for a directory mount point"
unit_line ExecStart
log "ExecStart: ${UNIT_ARGV[*]}"
[ -x "${UNIT_ARGV[0]}" ] || fail "ExecStart names '${UNIT_ARGV[0]}', not an installed program"
MP=$F
"${UNIT_ARGV[@]}" >"$T/unit.log" 2>&1 &
DAEMON=$!
wait_for 10 is_mounted "$MP" ||
	fail "ExecStart did not mount $MP: $(cat "$T/unit.log")"
mkdir "$MP/svc" && echo "from the unit" >>"$MP/svc/0" || fail "append under the unit"
unit_line ExecStop
log "ExecStop: ${UNIT_ARGV[*]}"
[ -x "${UNIT_ARGV[0]}" ] || fail "ExecStop names '${UNIT_ARGV[0]}', not an installed program"
"${UNIT_ARGV[@]}" || fail "ExecStop failed"
wait_for 10 bash -c "! kill -0 $DAEMON" || fail "daemon still runs after ExecStop"
st=0
wait "$DAEMON" || st=$?
DAEMON=""
assert_eq 0 "$st" "the unit's daemon exit status after ExecStop"
MP=""
assert_eq "from the unit" "$(cat "$T"/unit-data/svc/0/*.log)" \
	"the unit's data directory came from its EnvironmentFile"
log "ok"
exit 0
