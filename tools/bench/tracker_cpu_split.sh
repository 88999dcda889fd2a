#!/usr/bin/env bash
# tracker_cpu_split.sh - user and system CPU time per announce of one
# tracker (itrackerd or Debian's opentracker) under one load shape, from
# the server's /proc/PID/stat ticks: what bench_tracker's per CPU second
# figure is made of. Not part of `make bench` (bench_tracker is the
# comparison); this is for finding where a shape's time goes.
#
#   sudo BUILD=build tools/bench/tracker_cpu_split.sh SERVER MODE SWARM NUMWANT SECONDS
#     SERVER: itrackerd | opentracker    MODE: udp | http
#
# Same setup as bench_tracker: the server on CPU 0, itr_loadgen on CPU 1,
# every peer announced once, then re-announces for SECONDS. Prints one
# line: the load generator's summary, the server's user and system ticks,
# announces per CPU second and microseconds per announce. A clock tick is
# 10 ms: run for several seconds, and repeat (alternating servers) on a
# shared machine. Run from the repository root, as root (opentracker
# refuses root and is started with -u nobody).
set -euo pipefail

BUILD=${BUILD:-build}
[[ $# -eq 5 ]] || {
	sed -n '8,9p' "$0" >&2
	exit 2
}
server=$1 mode=$2 swarm=$3 numwant=$4 seconds=$5
# outside the ephemeral range: a listener must not meet the TIME_WAIT
# connections of an earlier HTTP load on its port
port=$((61100 + RANDOM % 4000))
tmp=$(mktemp -d)
chmod 755 "$tmp"
server_pid=
cleanup() {
	set +e # the server exits 143 on SIGTERM: not a failure of this script
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

case $server in
itrackerd)
	taskset -c 0 "$BUILD/itrackerd" --map maps/example.netmap --no-dataplane \
		--listen "127.0.0.1:$port" --udp "$port" --udp-bind 127.0.0.1 \
		--trusted-proxy 127.0.0.1 --accept-ip-param --admin-socket off 2>"$tmp/server.log" &
	;;
opentracker)
	"$BUILD/itr_loadgen" --hashes 20000 >"$tmp/whitelist"
	taskset -c 0 opentracker -i 127.0.0.1 -p "$port" -P "$port" -u nobody -d "$tmp" \
		-w /whitelist 2>"$tmp/server.log" &
	;;
*)
	echo "tracker_cpu_split: SERVER is itrackerd or opentracker" >&2
	exit 2
	;;
esac
server_pid=$!
proto=t
[[ $mode == udp ]] && proto=u
for _ in $(seq 50); do
	ss -Hln$proto "sport = :$port" | grep -q . && break
	sleep 0.1
done
ss -Hln$proto "sport = :$port" | grep -q . || {
	cat "$tmp/server.log" >&2
	exit 1
}

peers=20000
((swarm >= 10000)) && peers=$((3 * swarm))
load=(taskset -c 1 "$BUILD/itr_loadgen" --mode "$mode" --target "127.0.0.1:$port"
	--peers "$peers" --torrents $((peers / swarm)) --numwant "$numwant")
if [[ $mode == udp ]]; then
	load+=(--window 128 --sockets 8)
else
	load+=(--window 32)
fi
"${load[@]}" --count "$peers" --seconds 60 >"$tmp/fill.out" || {
	echo "tracker_cpu_split: filling the swarms failed: $(cat "$tmp/fill.out")" >&2
	exit 1
}
ticks() { awk '{print $14, $15}' "/proc/$server_pid/stat"; }
read -r u0 s0 < <(ticks)
out=$("${load[@]}" --seconds "$seconds") || {
	echo "tracker_cpu_split: the load failed: $out" >&2
	exit 1
}
read -r u1 s1 < <(ticks)
n=$(sed -n 's/.*announces \([0-9]*\).*/\1/p' <<<"$out")
hz=$(getconf CLK_TCK)
awk -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v out="$out" -v who="$server" \
	'BEGIN { printf "%s: %s | user %d sys %d ticks | %.0f announces/cpu-s | user %.2f us, sys %.2f us an announce\n",
		who, out, u, s, (u + s) ? n * hz / (u + s) : 0, u * 1e6 / hz / n, s * 1e6 / hz / n }'
