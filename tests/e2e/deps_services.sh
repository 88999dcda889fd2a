#!/usr/bin/env bash
# deps_services.sh - tools/deps.sh stops the services of the daemon
# packages it installed itself, and never one that was there before.
#
# Runs deps.sh in a scratch root: an overlay on this machine's root with a
# tmpfs on top, in a mount namespace of its own, with /run empty (no
# systemd, as on CI's machine), an apt source holding only a local
# repository built here (no network), and two packages taken out first:
# opentracker (a daemon package) and jq. The repository offers stand-ins
# for both; opentracker's ships an init script that logs what it is asked.
# nginx stays installed and enabled, with its init script replaced by the
# same logger. After deps.sh: opentracker's script was asked to stop,
# nginx's was never called and nginx is still enabled.
E2E=itrdeps$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
for p in nginx-common opentracker jq; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' $p 2>/dev/null) == installed ]] ||
		e2e_fail "$p not installed (tools/deps.sh test)"
done

# The local repository: stand-ins for jq and opentracker, no dependencies.
REPO=$E2E_TMP/repo
mkdir -p "$REPO"
make_deb() { # name [init script name]
	local d=$E2E_TMP/pkg-$1
	mkdir -p "$d/DEBIAN"
	printf 'Package: %s\nVersion: 99\nArchitecture: all\nMaintainer: itracker tests <t@itracker.example>\nDescription: stand-in for the deps.sh test\n' \
		"$1" >"$d/DEBIAN/control"
	if [[ -n ${2:-} ]]; then
		mkdir -p "$d/etc/init.d" "$d/lib/systemd/system"
		printf '#!/bin/sh\necho "%s $1" >>/var/log/itr-deps-test.log\n' "$2" >"$d/etc/init.d/$2"
		chmod 755 "$d/etc/init.d/$2"
		printf '[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' \
			>"$d/lib/systemd/system/$2.service"
	fi
	dpkg-deb -Zgzip --build "$d" "$REPO/$1_99_all.deb" >/dev/null
}
make_deb jq
make_deb opentracker opentracker
(cd "$REPO" && dpkg-scanpackages . /dev/null >Packages 2>/dev/null)
mkdir -p "$E2E_TMP/scratch"

unshare -m --propagation private bash -euo pipefail -c '
	W=$1 REPO=$2 DEPS=$3
	fail() { echo "FAIL: $*" >&2; exit 1; }
	mount -t tmpfs tmpfs "$W"
	mkdir -p "$W/upper" "$W/work" "$W/root"
	mount -t overlay overlay -o lowerdir=/,upperdir="$W/upper",workdir="$W/work" "$W/root"
	R=$W/root
	mount -t proc proc "$R/proc"
	mount --rbind /dev "$R/dev"
	mount -t tmpfs tmpfs "$R/run" # no systemd as PID 1 in there
	mkdir -p "$R/srv/repo" "$R/srv/tools"
	cp "$REPO"/* "$R/srv/repo/"
	cp "$DEPS" "$R/srv/tools/deps.sh"
	rm -rf "$R/etc/apt/sources.list.d" "$R/var/lib/apt/lists"
	mkdir -p "$R/etc/apt/sources.list.d" "$R/var/lib/apt/lists/partial"
	echo "deb [trusted=yes] file:/srv/repo ./" >"$R/etc/apt/sources.list"

	chroot "$R" dpkg --purge --force-depends opentracker jq >/dev/null 2>&1 || fail "removing the two packages"
	out=$(chroot "$R" systemctl enable nginx.service 2>&1) || fail "enabling nginx in the scratch root: $out"
	# Keep the LSB header (update-rc.d reads it); log instead of acting.
	sed -i "/^### END INIT INFO/a echo \"nginx \$1\" >>/var/log/itr-deps-test.log; exit 0" "$R/etc/init.d/nginx"
	rm -f "$R/var/log/itr-deps-test.log"

	chroot "$R" bash /srv/tools/deps.sh test || fail "deps.sh"
	log=$(cat "$R/var/log/itr-deps-test.log" 2>/dev/null || true)
	echo "init scripts were asked: ${log:-nothing}"
	grep -qx "opentracker stop" <<<"$log" || fail "the opentracker deps.sh installed was not stopped"
	! grep -q "^nginx" <<<"$log" || fail "deps.sh called nginx, installed before it ran: $log"
	chroot "$R" systemctl is-enabled nginx.service >/dev/null 2>&1 ||
		fail "deps.sh disabled nginx, installed before it ran"
	[[ $(chroot "$R" dpkg-query -W -f="\${Version}" opentracker) == 99 ]] || fail "stand-in not installed"
' scratch "$E2E_TMP/scratch" "$REPO" "$ITRACKER_ROOT/tools/deps.sh" || e2e_fail "deps.sh and services"
echo "PASS: deps_services"
