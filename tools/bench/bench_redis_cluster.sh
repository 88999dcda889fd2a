#!/usr/bin/env bash
# bench_redis_cluster.sh - the Redis Cluster swarm store (--store
# redis-cluster://) against the in-memory store, in one run on this machine:
#   1. announces/s of one itrackerd instance on the cluster against one on
#      the in-memory store, over UDP (BEP 15) and HTTP (a connection per
#      announce), with tools/loadgen/itr_loadgen; runs alternate between the
#      two stores so that a change in the machine's load hits both; each
#      load also prints the CPU time per announce of itrackerd and of the
#      six redis-servers together (from /proc/PID/stat);
#   2. announce-to-visible latency: a peer announced to one instance, then
#      asked for at another until it is listed (tests/e2e/lib/redis_swarm.py);
#   3. the outage during a master's failover: a master is killed while one
#      client announces every 50 ms; the longest time without a successful
#      answer, for cluster-node-timeout 1000 and 500 ms, split into Redis's
#      failure detection, its election and our client's part.
# Everything runs in a network namespace of its own, on its loopback: six
# redis-server nodes (3 masters, 3 replicas, Debian's redis-server), the
# instances and the load. Figures are min/median/max over the runs and go
# to $BUILD/bench.json (throughput as a ratio to the in-memory store).
#
#   sudo BUILD=build tools/bench/bench_redis_cluster.sh     (make bench runs it)
#   BENCH_QUICK=1: one run of each, 2 s loads (for development)
#   BENCH_RUNS=N, BENCH_SECONDS=S: runs and load seconds (default 3 and 5)
#   BENCH_NODE_TIMEOUTS="1000 500": the cluster-node-timeouts of the failover runs
#   BENCH_ONLY=throughput,visible,failover: some sections only
set -euo pipefail
ITRACKER_ROOT=${ITRACKER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
export ITRACKER_ROOT
cd "$ITRACKER_ROOT"
E2E=itrbrc$$
source tests/e2e/lib/netns.sh
e2e_require_root

QUICK=${BENCH_QUICK:-0}
RUNS=${BENCH_RUNS:-3}
LOAD_S=${BENCH_SECONDS:-5}
VISIBLE_N=200
if [[ $QUICK == 1 ]]; then
	RUNS=1
	LOAD_S=2
	VISIBLE_N=50
fi
NS=${E2E}n
e2e_netns "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
ITRD=$ITRACKER_ROOT/$BUILD/itrackerd
LOADGEN=$ITRACKER_ROOT/$BUILD/itr_loadgen
SWARM="/usr/bin/python3 $ITRACKER_ROOT/tests/e2e/lib/redis_swarm.py"
JSON=$BUILD/bench.json
source tests/e2e/lib/redis_cluster.sh

ITRD_PID=
start_itrd() { # port [store]
	local port=$1 i
	ip netns exec "$NS" "$ITRD" --no-dataplane --map maps/example.netmap --listen "127.0.0.1:$port" \
		--udp "$port" --udp-bind 127.0.0.1 --trusted-proxy 127.0.0.1 --accept-ip-param \
		${2:+--store "$2"} --admin-socket "$E2E_TMP/admin$port.sock" 2>>"$E2E_TMP/itrackerd$port.log" &
	ITRD_PID=$!
	E2E_PIDS+=($!)
	for i in $(seq 100); do
		in_ns curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/status" 2>/dev/null && return 0
		sleep 0.05
	done
	e2e_fail "itrackerd on $port did not start"
}

stop_itrd() {
	kill "$ITRD_PID" 2>/dev/null || :
	wait "$ITRD_PID" 2>/dev/null || :
}

# 20,000 peers in swarms of 64, numwant 50: the in-memory reference shape
# of bench_tracker.
LOAD_ARGS=(--peers 20000 --torrents 312 --numwant 50)
loadgen() { # mode port extra... -> announces/s (0 if errors)
	local mode=$1 port=$2 out
	shift 2
	# HTTP: 16 in flight, because every request comes from one address and
	# the HTTP worker pool that runs the cluster store's announces lets one
	# address have half its 48 workers (more get 503); the same for both
	local window=(--window 16)
	[[ $mode == udp ]] && window=(--window 128 --sockets 8)
	out=$(in_ns "$LOADGEN" --mode "$mode" --target "127.0.0.1:$port" "${LOAD_ARGS[@]}" \
		"${window[@]}" "$@")
	echo "  $mode: $out" >&2
	read -r _ _ _ n _ _ _ rate _ errors _ lost <<<"$out"
	if ((errors * 100 > n || lost * 10 > n)); then
		echo 0
	else
		echo "$rate"
	fi
}

cpu_ticks() { # pids... -> user+system clock ticks, summed
	local pid sum=0
	for pid in "$@"; do
		sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$sum"
}

per_announce() { # ticks rate -> µs of CPU per announce over the load
	awk -v t="$1" -v r="$2" -v hz="$(getconf CLK_TCK)" -v s="$LOAD_S" \
		'BEGIN { printf "%.2f", (r > 0 ? t / hz * 1e6 / (r * s) : 0) }'
}

stats() { # numbers... -> "min median max"
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%g %g %g\n", v[1], m, v[NR] }'
}

record() { # name value unit reference
	local list='[]'
	[[ -s $JSON ]] && list=$(cat "$JSON")
	jq --arg n "$1" --argjson v "$2" --arg u "$3" --argjson r "$4" \
		'. + [{name: $n, value: $v, unit: $u, reference: $r,
		       ratio: (if $r != 0 then $v / $r else 0 end)}]' <<<"$list" >"$JSON.tmp"
	mv "$JSON.tmp" "$JSON"
}

echo "machine: $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs $RUNS, load $LOAD_S s each; command: BENCH_QUICK=$QUICK BENCH_RUNS=$RUNS" \
	"BENCH_SECONDS=$LOAD_S BUILD=$BUILD $0"

ONLY=${BENCH_ONLY:-throughput,visible,failover} # development: some sections only
# ---- 1. throughput -------------------------------------------------------
start_cluster 1000
if [[ $ONLY == *throughput* ]]; then
declare -A RATES
for run in $(seq "$RUNS"); do
	for store in memory cluster; do
		port=$((7100 + run))
		[[ $store == cluster ]] && port=$((7200 + run))
		start_itrd "$port" "$([[ $store == cluster ]] && echo "$STORE")"
		for mode in udp http; do
			# fill the swarms, then measure, with the CPU time that
			# itrackerd and the six servers spent on it
			loadgen "$mode" "$port" --count 20000 --seconds 60 >/dev/null
			t0=$(cpu_ticks "$ITRD_PID")
			s0=$(cpu_ticks "${REDIS_PID[@]}")
			r=$(loadgen "$mode" "$port" --seconds "$LOAD_S")
			t1=$(cpu_ticks "$ITRD_PID")
			s1=$(cpu_ticks "${REDIS_PID[@]}")
			RATES[$store.$mode]+="$r "
			echo "run $run $store $mode: $r announces/s, CPU per announce:" \
				"itrackerd $(per_announce $((t1 - t0)) "$r") µs," \
				"redis-servers $(per_announce $((s1 - s0)) "$r") µs"
		done
		stop_itrd
	done
done
for mode in udp http; do
	read -r mmin mmed mmax <<<"$(stats ${RATES[memory.$mode]})"
	read -r cmin cmed cmax <<<"$(stats ${RATES[cluster.$mode]})"
	ratios=()
	m=(${RATES[memory.$mode]})
	c=(${RATES[cluster.$mode]})
	for i in "${!m[@]}"; do ratios+=("$(awk -v c="${c[$i]}" -v m="${m[$i]}" 'BEGIN { printf "%.3f", m ? c / m : 0 }')"); done
	read -r rmin rmed rmax <<<"$(stats "${ratios[@]}")"
	echo "$mode announces/s: in-memory min/median/max $mmin/$mmed/$mmax," \
		"redis cluster $cmin/$cmed/$cmax; cluster/memory per run $rmin/$rmed/$rmax (target >= 0.5)"
	record "redis_cluster_${mode}_announces_per_s" "$cmed" "ann/s" "$mmed"
done
fi

# ---- 2. announce-to-visible latency --------------------------------------
if [[ $ONLY == *visible* ]]; then
start_itrd 7301 "$STORE"
A_PID=$ITRD_PID
start_itrd 7302 "$STORE"
B_PID=$ITRD_PID
P99S=()
for run in $(seq "$RUNS"); do
	out=$(in_ns $SWARM visible http://127.0.0.1:7301 http://127.0.0.1:7302 "$VISIBLE_N" "visible-$run") ||
		e2e_fail "visibility: $out"
	echo "run $run: $out" | tail -1
	P99S+=("$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$out")")
done
read -r vmin vmed vmax <<<"$(stats "${P99S[@]}")"
echo "announce-to-visible p99 over $VISIBLE_N swarms: min/median/max $vmin/$vmed/$vmax ms (target <= 1000)"
record redis_cluster_visible_p99_ms "$vmed" ms 1000
ITRD_PID=$A_PID stop_itrd
ITRD_PID=$B_PID stop_itrd
fi
stop_cluster

# ---- 3. failover outage --------------------------------------------------
# the port of the master that holds a swarm (its info_hash in hex)
master_of() {
	local slot
	slot=$(in_ns redis-cli -p 7000 cluster keyslot "itr:{$1}:l")
	in_ns redis-cli -p 7000 cluster nodes | awk -v s="$slot" '$3 ~ /master/ && $3 !~ /fail/ {
		for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (s + 0 >= r[1] + 0 && s + 0 <= (n == 2 ? r[2] : r[1]) + 0) print $2 } }' |
		head -1 | sed 's/.*:\([0-9]*\)@.*/\1/'
}
# a Redis log line's time ("PID:R 30 Nov 2026 12:31:02.345 * ...") as Unix time
log_time() {
	[[ -n $1 ]] || { echo 0; return; }
	date -d "$(awk '{ print $2, $3, $4, $5 }' <<<"$1")" +%s.%N
}
for timeout in ${BENCH_NODE_TIMEOUTS:-1000 500}; do
	[[ $ONLY == *failover* ]] || break
	OUT=()
	CLIENT=()
	OTHER_OUT=()
	for run in $(seq "$RUNS"); do
		start_cluster "$timeout"
		start_itrd 7400 "$STORE"
		HASH=$(printf 'failover-%s-%s' "$timeout" "$run" | sha1sum | cut -c1-40)
		in_ns $SWARM seed http://127.0.0.1:7400 "$HASH" 127.0.0.21 6881 >/dev/null ||
			e2e_fail "seed announce"
		MASTER=$(master_of "$HASH")
		# a second swarm on a master that stays up: with
		# cluster-require-full-coverage no it never stops
		for k in $(seq 100); do
			OTHER=$(printf 'other-%s-%s-%s' "$timeout" "$run" "$k" | sha1sum | cut -c1-40)
			[[ $(master_of "$OTHER") != "$MASTER" ]] && break
		done
		in_ns $SWARM seed http://127.0.0.1:7400 "$OTHER" 127.0.0.23 6883 >/dev/null ||
			e2e_fail "seed announce"
		# the clients announce from t=0; the master dies at t=1 s
		in_ns $SWARM outage http://127.0.0.1:7400 "$HASH" 127.0.0.22 6882 127.0.0.21:6881 \
			$((timeout >= 1000 ? 8 : 6)) >"$E2E_TMP/outage" &
		client=$!
		in_ns $SWARM outage http://127.0.0.1:7400 "$OTHER" 127.0.0.24 6884 127.0.0.23:6883 \
			$((timeout >= 1000 ? 8 : 6)) >"$E2E_TMP/outage-other" &
		other=$!
		sleep 1
		killed_at=$(date +%s.%N)
		kill -9 "${REDIS_PID[$MASTER]}"
		wait "$client" || { cat "$E2E_TMP/outage"; e2e_fail "failover: peer lost or no recovery"; }
		wait "$other" || { cat "$E2E_TMP/outage-other"; e2e_fail "a live master's swarm failed"; }
		o=$(sed -n 's/.*successful answer: \([0-9.]*\) s.*/\1/p' "$E2E_TMP/outage-other")
		OTHER_OUT+=("$o")
		s=$(sed -n 's/.*successful answer: \([0-9.]*\) s.*/\1/p' "$E2E_TMP/outage")
		read -r fail_from fail_to < <(sed -n 's/.*no answer from \([0-9.]*\) to \([0-9.]*\).*/\1 \2/p' "$E2E_TMP/outage")
		# where the time went: Redis's failure detection (the kill until a
		# node marks the master failing), its election (until the replica
		# has won), and our client (until the first announce succeeded)
		failing_at=$(log_time "$(grep -h -E 'as failing \(quorum reached\)|FAIL message received' "$E2E_TMP"/r*/log | sort -k4,4 | head -1)")
		won_at=$(log_time "$(grep -h 'Failover election won' "$E2E_TMP"/r*/log | head -1)")
		echo "node timeout $timeout ms, run $run: longest time without an answer $s s (a live master's swarm: $o s);" \
			"$(awk -v k="$killed_at" -v f="$failing_at" -v w="$won_at" -v a="$fail_from" -v b="$fail_to" 'BEGIN {
				printf "detection %.2f s, election %.2f s, client %.2f s (last answer %.2f s before the kill)", f - k, w - f, b - w, k - a }');" \
			"$(sed -n 's/.*(\([0-9]* failed announces\)).*/\1/p' "$E2E_TMP/outage")"
		OUT+=("$s")
		CLIENT+=("$(awk -v w="$won_at" -v b="$fail_to" 'BEGIN { printf "%.3f", b - w }')")
		stop_itrd
		stop_cluster
	done
	read -r omin omed omax <<<"$(stats "${OUT[@]}")"
	read -r cmin cmed cmax <<<"$(stats "${CLIENT[@]}")"
	read -r xmin xmed xmax <<<"$(stats "${OTHER_OUT[@]}")"
	echo "a swarm on a master that stays up, cluster-node-timeout $timeout ms: longest time without an answer min/median/max $xmin/$xmed/$xmax s"
	echo "failover outage, cluster-node-timeout $timeout ms: min/median/max $omin/$omed/$omax s (target <= 2);" \
		"of which the client's (election won -> first answer): $cmin/$cmed/$cmax s"
	record "redis_cluster_failover_outage_s_node_timeout_$timeout" "$omed" s 2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
