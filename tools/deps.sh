#!/usr/bin/env bash
# deps.sh - install the Debian packages itracker needs, only those missing.
#
#   tools/deps.sh runtime   build and run itrackerd (`make demo`)
#   tools/deps.sh deb       runtime, plus what `make deb` needs
#   tools/deps.sh test      deb, plus what the tests and the benchmarks
#                           need (`make test`, `make bench`)
#
# Idempotent: when everything is present it runs one dpkg-query and exits.
# Prints every package it installs. Waits for the dpkg lock (another apt
# run may hold it) instead of failing.
#
# Services: some packages the tests need (nginx, bird, opentracker,
# prometheus) start a system daemon on install. The tests run their own,
# inside namespaces, so the ones this run installed are stopped and
# disabled again, also where PID 1 is not systemd (the packages' init
# scripts start them there). A service that was installed before this run
# is never touched.
set -euo pipefail

GROUP=${1:-test}

RUNTIME=(
	# build
	make gcc clang llvm pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
	libnl-3-dev libnl-route-3-dev libmicrohttpd-dev libjansson-dev
	libsodium-dev libpcap-dev libhiredis-dev libcap-dev
	# the demo: namespaces, veths (offloads off), its HTTP client, the real
	# BitTorrent transfer it shows (libtorrent), and its swarm of real
	# clients (transmission-create makes the torrent, aria2c seeds it)
	iproute2 ethtool curl python3 python3-libtorrent procps transmission-cli aria2
)
TEST=(
	# unit tests, sanitizers, fuzzing, style
	libcmocka-dev libclang-rt-14-dev clang-format
	# kernel tests, e2e and tools
	tcpdump jq openssl util-linux gnuplot-nox
	# real traffic through each hook (make bench: bench_hooks)
	iperf3
	# real peers and references
	opentracker bird2 wrk
	nginx-light prometheus
	# bench_httplib measures h2o's event-loop library against libmicrohttpd
	libh2o-evloop-dev libssl-dev
	# the shared swarm store's e2e: a real Redis Cluster
	redis-server redis-tools
	# the package's test: systemd-analyze verify (it runs without systemd
	# as PID 1)
	systemd
)
DEB=(
	# the package build, lintian, and help2man (the man pages are made
	# from the programs' --help); dpkg-buildpackage refuses to start
	# without build-essential, which a minimal Debian does not have
	build-essential dpkg-dev debhelper fakeroot lintian help2man
)

case $GROUP in
list-test-only) # what `make test` adds to `make demo`'s set (its test uses it)
	printf '%s\n' "${DEB[@]}" "${TEST[@]}"
	exit 0
	;;
runtime) PACKAGES=("${RUNTIME[@]}") ;;
deb) PACKAGES=("${RUNTIME[@]}" "${DEB[@]}") ;;
test) PACKAGES=("${RUNTIME[@]}" "${DEB[@]}" "${TEST[@]}") ;;
*)
	echo "usage: deps.sh runtime|deb|test" >&2
	exit 2
	;;
esac

installed_packages() {
	dpkg-query -W -f='${db:Status-Status} ${Package}\n' 2>/dev/null | awk '$1 == "installed" {print $2}' | sort
}

missing=()
while read -r status pkg; do
	[[ "$status" == "installed" ]] || missing+=("$pkg")
done < <(for p in "${PACKAGES[@]}"; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || s=absent
	echo "${s:-absent} $p"
done)

if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
BEFORE=$(mktemp)
trap 'rm -f "$BEFORE"' EXIT
installed_packages >"$BEFORE"
"${APT[@]}" update -qq
"${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The packages whose daemons the tests run themselves: if this run
# installed one of them (directly or as a dependency), the services it
# ships are stopped and disabled. Nothing else is touched.
DAEMON_PACKAGES=(nginx-common bird2 opentracker prometheus prometheus-node-exporter redis-server)
mapfile -t NEW < <(installed_packages | comm -13 "$BEFORE" -)

stop_service() { # unit (name.service)
	local unit=$1 name=${1%.*}
	if [[ -d /run/systemd/system ]]; then
		systemctl disable --now "$unit" >/dev/null 2>&1 ||
			echo "deps: could not stop $unit" >&2
		return
	fi
	# No systemd as PID 1: the package's init script started it, if any.
	if [[ -x /etc/init.d/$name ]]; then
		/etc/init.d/"$name" stop >/dev/null 2>&1 || echo "deps: could not stop $name" >&2
		update-rc.d "$name" disable >/dev/null 2>&1 || true # no rc links: nothing to disable
	fi
	# Keep the unit from starting if this machine boots with systemd later
	# (systemctl edits the links offline; absent without package systemd).
	if command -v systemctl >/dev/null; then
		systemctl disable "$unit" >/dev/null 2>&1 || true # a unit without [Install]
	fi
}

stopped=()
for pkg in "${NEW[@]}"; do
	[[ " ${DAEMON_PACKAGES[*]} " == *" $pkg "* ]] || continue
	while read -r path; do
		case $path in
		*@.service) continue ;; # templates: never started by an install
		/lib/systemd/system/*.service | /usr/lib/systemd/system/*.service) unit=${path##*/} ;;
		/etc/init.d/*) unit=${path##*/}.service ;;
		*) continue ;;
		esac
		[[ " ${stopped[*]} " == *" $unit "* ]] && continue
		stop_service "$unit"
		stopped+=("$unit")
	done < <(dpkg-query -L "$pkg" 2>/dev/null)
done
((${#stopped[@]} == 0)) || echo "deps: stopped the services this run installed: ${stopped[*]}"
echo "deps: installed ${#missing[@]} package(s)"
