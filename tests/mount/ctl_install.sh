#!/bin/bash
# ctl_install.sh - "make install DESTDIR=..." puts every file where Debian
# expects it (programs, mount helper, man pages, unit, completion), the
# unit names the installed daemon and passes systemd-analyze verify when
# that is available, and "make uninstall" removes what install put there.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
fail() { echo "FAIL [ctl_install]: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fluxfs-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
make -s -C "$top_builddir" install DESTDIR="$tmp/root" prefix=/usr \
	sbindir=/sbin SYSTEMD_UNIT_DIR=/lib/systemd/system >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; fail "make install"; }
(cd "$tmp/root" && find . -type f -o -type l | sed 's|^\.||' | sort) >"$tmp/files"
for f in /usr/bin/fluxfs /usr/bin/fluxctl /sbin/mount.fluxfs \
	/usr/share/man/man1/fluxctl.1 /usr/share/man/man8/fluxfs.8 \
	/lib/systemd/system/fluxfs@.service \
	/usr/share/bash-completion/completions/fluxctl; do
	grep -qx "$f" "$tmp/files" || fail "not installed: $f (got: $(tr '\n' ' ' <"$tmp/files"))"
done
[ -x "$tmp/root/sbin/mount.fluxfs" ] || fail "mount.fluxfs not executable"
grep -q '^ExecStart=/usr/bin/fluxfs -f ' "$tmp/root/lib/systemd/system/fluxfs@.service" ||
	fail "unit does not run /usr/bin/fluxfs"
"$tmp/root/usr/bin/fluxctl" --help | grep -q 'fluxctl stat' || fail "installed fluxctl runs"
bash -c ". '$tmp/root/usr/share/bash-completion/completions/fluxctl' && complete -p fluxctl" \
	>/dev/null 2>&1 || fail "completion does not load"
if command -v systemd-analyze >/dev/null 2>&1; then
	u="$tmp/unit/fluxfs@srv-topics.service"
	mkdir -p "$tmp/unit"
	# verify wants the binaries it names to exist: point them at ours.
	sed -e "s|/usr/bin/fluxfs|$tmp/root/usr/bin/fluxfs|" \
		-e "s|/bin/fusermount3|$(command -v fusermount3 || echo /bin/true)|" \
		"$tmp/root/lib/systemd/system/fluxfs@.service" >"$u"
	out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$u" 2>&1)
	echo "$out" | grep -v -e 'Failed to .*bus' -e 'ConditionPath' -e '^$' \
		-e 'Cannot add dependency job' -e 'multi-user.target' >"$tmp/warn" || true
	[ -s "$tmp/warn" ] && fail "systemd-analyze verify: $(cat "$tmp/warn")"
fi
make -s -C "$top_builddir" uninstall DESTDIR="$tmp/root" prefix=/usr \
	sbindir=/sbin SYSTEMD_UNIT_DIR=/lib/systemd/system >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; fail "make uninstall"; }
left=$(cd "$tmp/root" && find . -type f | sort)
[ -z "$left" ] || fail "left after uninstall: $left"
exit 0
