#!/usr/bin/env bash
# tracker_interop.sh - real clients from Debian complete downloads through
# itrackerd as their only tracker, over HTTP and over UDP: aria2c and
# transmission-cli leechers fetch a 3 MiB file from an aria2c seeder (no
# DHT, LSD or PEX: the tracker is the only way they meet). Every
# downloaded file must equal the original. All in one namespace, peers on
# their own addresses of maps/example.netmap PIDs; each run bounded.
E2E=trint$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

MAP=$ITRACKER_ROOT/maps/example.netmap
ITRD=$ITRACKER_ROOT/$BUILD/itrackerd
[[ -x $ITRD ]] || e2e_fail "build itrackerd first"
for tool in aria2c transmission-cli transmission-create curl; do
	command -v "$tool" >/dev/null || e2e_fail "$tool missing (tools/deps.sh)"
done
NS=${E2E}n
e2e_netns "$NS"
e2e_addr "$NS" lo 10.10.1.2/32 10.30.0.10/32 10.10.2.20/32 10.20.0.30/32
in_ns() { ip netns exec "$NS" "$@"; }

e2e_bg in_ns "$ITRD" --map "$MAP" --no-dataplane --listen 10.10.1.2:6969 --udp 6969 \
	--udp-bind 10.10.1.2 --interval 5 --min-interval 1 2>>"$E2E_TMP/itrackerd.log"
for _ in $(seq 100); do
	in_ns curl -fsS -o /dev/null http://10.10.1.2:6969/v1/status 2>/dev/null && break
	sleep 0.1
done

mkdir -p "$E2E_TMP/seed"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$E2E_TMP/seed/payload.bin"
transmission-create -t http://10.10.1.2:6969/announce -o "$E2E_TMP/http.torrent" \
	"$E2E_TMP/seed/payload.bin" >/dev/null
transmission-create -t udp://10.10.1.2:6969 -o "$E2E_TMP/udp.torrent" \
	"$E2E_TMP/seed/payload.bin" >/dev/null

ARIA=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
	--file-allocation=none --summary-interval=0 --show-console-readout=false
	--console-log-level=warn --bt-tracker-interval=5)
# one seeder per torrent, on its own address
e2e_bg in_ns aria2c "${ARIA[@]}" -V --seed-ratio=0.0 --listen-port=6881 --interface=10.30.0.10 \
	-d "$E2E_TMP/seed" "$E2E_TMP/http.torrent" >"$E2E_TMP/seed-http.log" 2>&1
# aria2c speaks UDP tracker only through its DHT socket: DHT on (no
# bootstrap node exists in the namespace, so it finds nobody)
e2e_bg in_ns aria2c "${ARIA[@]}" --enable-dht=true --dht-listen-port=6883 -V --seed-ratio=0.0 \
	--listen-port=6882 --interface=10.30.0.10 \
	-d "$E2E_TMP/seed" "$E2E_TMP/udp.torrent" >"$E2E_TMP/seed-udp.log" 2>&1
for _ in $(seq 100); do
	in_ns ss -ltn | grep -q ":6882 " && in_ns ss -ltn | grep -q ":6881 " && break
	sleep 0.1
done
sleep 1 # the seeders' first announces

verify() { # dir label
	cmp -s "$1/payload.bin" "$E2E_TMP/seed/payload.bin" || e2e_fail "$2: file differs or is missing"
	echo "ok $2"
}

for kind in http udp; do
	dir=$E2E_TMP/aria-$kind
	dht=()
	[[ $kind == udp ]] && dht=(--enable-dht=true --dht-listen-port=6893)
	timeout 60 ip netns exec "$NS" aria2c "${ARIA[@]}" "${dht[@]}" --seed-time=0 --listen-port=6891 \
		--interface=10.10.2.20 -d "$dir" "$E2E_TMP/$kind.torrent" >"$E2E_TMP/aria-$kind.log" 2>&1 ||
		{ cat "$E2E_TMP/aria-$kind.log" >&2; e2e_fail "aria2c over $kind did not finish"; }
	verify "$dir" "aria2c, $kind tracker"

	# transmission-cli does not exit by itself: its finish script stops it
	dir=$E2E_TMP/tr-$kind
	mkdir -p "$dir" "$E2E_TMP/trcfg-$kind"
	printf '#!/bin/sh\nkill %s\n' '$PPID' >"$E2E_TMP/tr-done.sh"
	chmod +x "$E2E_TMP/tr-done.sh"
	cat >"$E2E_TMP/trcfg-$kind/settings.json" <<JSON
{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
 "bind-address-ipv4": "10.20.0.30", "port-forwarding-enabled": false, "peer-port": 6892,
 "encryption": 1}
JSON
	# (so its exit status is that of a killed process; only timeout's 124
	# means it never finished)
	rc=0
	HOME=$E2E_TMP/trcfg-$kind timeout 60 ip netns exec "$NS" transmission-cli -g "$E2E_TMP/trcfg-$kind" \
		-w "$dir" -f "$E2E_TMP/tr-done.sh" "$E2E_TMP/$kind.torrent" >"$E2E_TMP/tr-$kind.log" 2>&1 || rc=$?
	if ((rc == 124)) || [[ ! -f $dir/payload.bin ]]; then
		tail -5 "$E2E_TMP/tr-$kind.log" >&2
		e2e_fail "transmission-cli over $kind did not finish (exit $rc)"
	fi
	verify "$dir" "transmission-cli, $kind tracker"
done
# The tracker saw them: accepted announces over both protocols (seeders and
# leechers announce at least once each: 2 per torrent and client).
in_ns curl -fsS http://10.10.1.2:6969/metrics >"$E2E_TMP/metrics.txt" || e2e_fail "no /metrics"
for proto in http udp; do
	n=$(awk -v want="itracker_tracker_announces_total{protocol=\"$proto\",outcome=\"ok\"}" \
		'$1 == want {print $2}' "$E2E_TMP/metrics.txt")
	[[ -n $n ]] || { cat "$E2E_TMP/metrics.txt" >&2; e2e_fail "no $proto announce counter in /metrics"; }
	((n >= 3)) || e2e_fail "only $n accepted $proto announces (a seeder and two leechers announced)"
	echo "ok $n accepted $proto announces"
done
echo "PASS: tracker_interop"
