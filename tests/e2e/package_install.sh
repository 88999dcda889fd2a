#!/usr/bin/env bash
# package_install.sh - `make deb` builds a lintian-clean package that
# installs, runs and purges in a scratch root, and whose systemd unit
# passes `systemd-analyze verify` without systemd running.
#
# The scratch root is an overlay on this machine's root filesystem with a
# tmpfs on top, in a mount namespace of its own: `dpkg --root` installs
# the package there with its real dependencies and maintainer scripts
# (which run chrooted in it), and all of it disappears with the namespace;
# this machine's own root and dpkg database are never written. (debootstrap
# would need a mirror, which CI may not reach.) /run is hidden inside, so
# nothing can reach a running systemd even where PID 1 is systemd.
E2E=itrpkg$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
cd "$ITRACKER_ROOT"

make --no-print-directory BUILD="$BUILD" deb >"$E2E_TMP/deb.log" 2>&1 || {
	tail -n 40 "$E2E_TMP/deb.log"
	e2e_fail "make deb failed (lintian included)"
}
DEB=$(sed -n 's/^deb: //p' "$E2E_TMP/deb.log")
[[ -f $DEB ]] || e2e_fail "make deb named no package"
VERSION=$(dpkg-deb -f "$DEB" Version)
echo "built $DEB (lintian clean), PID 1 here is $(ps -p 1 -o comm=)"

HOST_HAD=$([[ -e /usr/sbin/itrackerd ]] && echo yes || echo no)
mkdir -p "$E2E_TMP/scratch"
unshare -m --propagation private bash -euo pipefail -c '
	W=$1 DEB=$2 VERSION=$3
	fail() { echo "FAIL: $*" >&2; exit 1; }
	mount -t tmpfs tmpfs "$W"
	mkdir -p "$W/upper" "$W/work" "$W/root"
	mount -t overlay overlay -o lowerdir=/,upperdir="$W/upper",workdir="$W/work" "$W/root"
	R=$W/root
	mount -t tmpfs tmpfs /run # no systemd, no D-Bus from here on

	dpkg --root="$R" -i "$DEB" || fail "dpkg -i into the scratch root"
	[[ $(chroot "$R" dpkg-query -W -f="\${Status}" itracker) == "install ok installed" ]] ||
		fail "itracker not configured in the scratch root"
	for f in /usr/sbin/itrackerd /usr/bin/itrackerctl /usr/lib/itracker/locality.bpf.o \
		/lib/systemd/system/itrackerd.service /etc/itracker/itrackerd.conf \
		/usr/share/man/man8/itrackerd.8.gz /usr/share/man/man8/itrackerctl.8.gz \
		/usr/share/itracker/example.netmap /usr/share/doc/itracker/README.md; do
		[[ -s $R$f ]] || fail "$f not installed"
	done
	chroot "$R" dpkg-query -W -f="\${Conffiles}" itracker | grep -q "/etc/itracker/itrackerd.conf" ||
		fail "the config is not a conffile"
	[[ $(chroot "$R" itrackerd --version) == "itrackerd $VERSION" ]] ||
		fail "itrackerd --version is not the package version $VERSION"
	chroot "$R" itrackerctl map check /usr/share/itracker/example.netmap >/dev/null ||
		fail "the installed itrackerctl rejects the installed example map"
	zcat "$R/usr/share/man/man8/itrackerd.8.gz" | grep -F -- "\\-\\-map" >/dev/null || fail "itrackerd(8) lacks the options"
	zcat "$R/usr/share/man/man8/itrackerctl.8.gz" | grep "map check" >/dev/null || fail "itrackerctl(8) lacks the commands"
	grep -q "^ExecStart=/usr/sbin/itrackerd " "$R/lib/systemd/system/itrackerd.service" ||
		fail "the unit does not start the installed itrackerd"
	user=$(sed -n "s/^User=//p" "$R/lib/systemd/system/itrackerd.service")
	if [[ -n $user ]]; then
		chroot "$R" getent passwd "$user" >/dev/null || fail "the unit runs as $user, whom the package did not create"
		echo "the unit runs as $user, created on install"
	fi
	[[ ! -e $R/etc/systemd/system/multi-user.target.wants/itrackerd.service ]] ||
		fail "the unit was enabled on install (the config needs editing first)"

	# Warnings (unknown keys, bad paths) count as failures too.
	out=$(systemd-analyze verify --root="$R" itrackerd.service 2>&1) || fail "systemd-analyze verify: $out"
	[[ -z $out ]] || fail "systemd-analyze verify complained: $out"
	echo "systemd-analyze verify: clean"

	dpkg --root="$R" --purge itracker >/dev/null || fail "purge"
	for f in /usr/sbin/itrackerd /etc/itracker/itrackerd.conf /lib/systemd/system/itrackerd.service; do
		[[ ! -e $R$f ]] || fail "$f left after purge"
	done
' scratch "$E2E_TMP/scratch" "$DEB" "$VERSION" || e2e_fail "the package in a scratch root"

[[ $([[ -e /usr/sbin/itrackerd ]] && echo yes || echo no) == "$HOST_HAD" ]] ||
	e2e_fail "the host's /usr/sbin changed"
echo "PASS: package_install ($DEB)"
