#!/usr/bin/env bash
# deps.sh - install the Debian packages itracker needs, only those missing.
#
# Called by `make test` and `make demo`. Idempotent: when everything is
# present it runs one dpkg-query and exits. Prints every package it installs.
set -euo pipefail

PACKAGES=(
	# build
	make gcc clang llvm pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
	libnl-3-dev libnl-route-3-dev libmicrohttpd-dev libjansson-dev
	libsodium-dev libpcap-dev libcmocka-dev libclang-rt-14-dev clang-format
	# kernel tests, e2e and tools
	iproute2 tcpdump jq curl python3 ethtool openssl util-linux procps
	# real peers and references
	aria2 transmission-cli python3-libtorrent opentracker bird2 wrk
	nginx-light prometheus
)

missing=()
while read -r status pkg; do
	[[ "$status" == "installed" ]] || missing+=("$pkg")
done < <(for p in "${PACKAGES[@]}"; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages of these daemons start a system instance on install;
# the tests run their own, on their own ports, inside namespaces.
# Without systemd as PID 1 the packages' init scripts may have started them.
for svc in nginx bird opentracker prometheus prometheus-node-exporter; do
	systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
done
echo "deps: installed ${#missing[@]} package(s)"
