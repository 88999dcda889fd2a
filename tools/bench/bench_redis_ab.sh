#!/usr/bin/env bash
# bench_redis_ab.sh - two itrackerd builds on the Redis Cluster store, in
# turn, each run on a fresh cluster: announces/s of one instance under the
# load of bench_redis_cluster.sh (20,000 peers in swarms of 64, numwant 50;
# UDP window 128 over 8 sockets, HTTP a connection per announce, window 16).
# For a change to the store or its front ends, where the machine's speed
# drifts between runs more than the change moves the figure: the two
# builds alternate, and a fresh cluster keeps one run's keys and
# replication state out of the next.
#
#   sudo tools/bench/bench_redis_ab.sh OLD_ITRACKERD NEW_ITRACKERD [RUNS] [MODES]
#   RUNS: passes (default 4); MODES: "udp http" (default)
# Prints one line per run and min / median / max per build and mode.
set -euo pipefail
ITRACKER_ROOT=${ITRACKER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
export ITRACKER_ROOT
cd "$ITRACKER_ROOT"
BUILD=${BUILD:-build}
[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
OLD=$(realpath "$1")
NEW=$(realpath "$2")
RUNS=${3:-4}
MODES=${4:-udp http}
E2E=itrbab$$
source tests/e2e/lib/netns.sh
e2e_require_root
LOADGEN=$ITRACKER_ROOT/$BUILD/itr_loadgen
LOAD=(--peers 20000 --torrents 312 --numwant 50)
NS=
in_ns() { ip netns exec "$NS" "$@"; }
source tests/e2e/lib/redis_cluster.sh

RATE=
NRUN=0
one_run() { # itrackerd mode -> RATE: announces/s (0 on errors)
	local itrd=$1 mode=$2 pid i out window=(--window 16)
	[[ $mode == udp ]] && window=(--window 128 --sockets 8)
	NRUN=$((NRUN + 1))
	NS=${E2E}n$NRUN
	e2e_netns "$NS"
	start_cluster 1000
	ip netns exec "$NS" "$itrd" --no-dataplane --map maps/example.netmap --listen 127.0.0.1:7201 \
		--udp 7201 --udp-bind 127.0.0.1 --trusted-proxy 127.0.0.1 --accept-ip-param \
		--store "$STORE" --admin-socket "$E2E_TMP/admin$NS.sock" 2>>"$E2E_TMP/itrd.log" &
	pid=$!
	E2E_PIDS+=($pid)
	for i in $(seq 100); do
		in_ns curl -fsS -o /dev/null http://127.0.0.1:7201/v1/status 2>/dev/null && break
		sleep 0.05
	done
	in_ns "$LOADGEN" --mode "$mode" --target 127.0.0.1:7201 "${LOAD[@]}" "${window[@]}" \
		--count 20000 --seconds 60 >/dev/null
	out=$(in_ns "$LOADGEN" --mode "$mode" --target 127.0.0.1:7201 "${LOAD[@]}" \
		"${window[@]}" --seconds 5)
	kill "$pid"
	wait "$pid" 2>/dev/null || :
	stop_cluster
	ip netns del "$NS"
	read -r _ _ _ n _ _ _ rate _ errors _ lost <<<"$out"
	RATE=$rate
	((errors * 100 > n || lost * 10 > n)) && RATE=0
	return 0
}

stats() { # numbers... -> "min median max"
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%g / %g / %g\n", v[1], m, v[NR] }'
}

echo "machine: $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: sudo $0 $1 $2 $RUNS \"$MODES\""
declare -A RATES
for run in $(seq "$RUNS"); do
	for mode in $MODES; do
		for build in old new; do
			itrd=$OLD
			[[ $build == new ]] && itrd=$NEW
			one_run "$itrd" "$mode"
			RATES[$build.$mode]+="$RATE "
			echo "run $run $mode $build: $RATE announces/s"
		done
	done
done
for mode in $MODES; do
	for build in old new; do
		echo "$mode $build announces/s min / median / max: $(stats ${RATES[$build.$mode]})"
	done
done
