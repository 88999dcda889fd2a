#!/usr/bin/env bash
# redis_cluster.sh - three itrackerd instances share swarms through a real
# Redis Cluster (3 masters, 3 replicas, Debian's redis-server), all inside
# one network namespace on its loopback:
#   - a peer announced to one instance is listed by another at once;
#   - a master is killed: its replica takes over, announces come back, and
#     the peer stored before is still there;
#   - an instance is killed: another serves the same swarm;
#   - the whole cluster is down: an announce gets a failure reason, fast.
set -euo pipefail
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
NS=${E2E}r
e2e_netns "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
BIN=$ITRACKER_ROOT/$BUILD/itrackerd
SWARM="/usr/bin/python3 $ITRACKER_ROOT/tests/e2e/lib/redis_swarm.py"

declare -A REDIS_PID
for port in 7000 7001 7002 7003 7004 7005; do
	mkdir -p "$E2E_TMP/r$port"
	# (not through a shell function: $! must be the server, for kill -9)
	ip netns exec "$NS" redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
		--cluster-config-file "$E2E_TMP/r$port/nodes.conf" --cluster-node-timeout "${NODE_TIMEOUT_MS:-1000}" \
		--save '' --appendonly no --dir "$E2E_TMP/r$port" --daemonize no \
		>"$E2E_TMP/r$port/log" 2>&1 &
	REDIS_PID[$port]=$!
	E2E_PIDS+=($!)
done
for port in 7000 7001 7002 7003 7004 7005; do
	for i in $(seq 50); do in_ns redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
in_ns redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 \
	127.0.0.1:7003 127.0.0.1:7004 127.0.0.1:7005 --cluster-replicas 1 --cluster-yes \
	>"$E2E_TMP/create.log" 2>&1 || { cat "$E2E_TMP/create.log"; e2e_fail "cluster create"; }
for i in $(seq 100); do
	in_ns redis-cli -p 7000 cluster info | grep -q 'cluster_state:ok' && break
	sleep 0.1
done
in_ns redis-cli -p 7000 cluster info | grep -q 'cluster_state:ok' || e2e_fail "cluster not ok"

STORE=redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
declare -A ITR_PID
for n in 1 2 3; do
	ip netns exec "$NS" "$BIN" --no-dataplane --map "$ITRACKER_ROOT/maps/example.netmap" --store "$STORE" \
		--listen 127.0.0.1:698$n --udp off 2>>"$E2E_TMP/itrackerd$n.log" &
	ITR_PID[$n]=$!
	E2E_PIDS+=($!)
done
for n in 1 2 3; do
	for i in $(seq 50); do in_ns curl -fsS -o /dev/null http://127.0.0.1:698$n/v1/status && break; sleep 0.1; done
done

# 1. One swarm, three front doors.
in_ns $SWARM visible http://127.0.0.1:6981 http://127.0.0.1:6982 50 || e2e_fail "visibility"

# 2. Kill the master that holds one swarm; its replica takes over.
HASH=$(printf 'failover' | sha1sum | cut -c1-40)
in_ns $SWARM seed http://127.0.0.1:6981 "$HASH" 127.0.0.21 6881 || e2e_fail "seed announce"
SLOT=$(in_ns redis-cli -p 7000 cluster keyslot "itr:{$HASH}:l")
MASTER=$(in_ns redis-cli -p 7000 cluster nodes | awk -v s="$SLOT" '$3 ~ /master/ {
	for (i = 9; i <= NF; i++) { split($i, r, "-"); if (s >= r[1] && s <= (r[2] == "" ? r[1] : r[2])) print $2 } }' |
	head -1 | sed 's/.*:\([0-9]*\)@.*/\1/')
[[ -n $MASTER ]] || e2e_fail "no master for slot $SLOT"
echo "slot $SLOT is on the master at port $MASTER: killing it"
kill -9 "${REDIS_PID[$MASTER]}"
in_ns $SWARM outage http://127.0.0.1:6982 "$HASH" 127.0.0.22 6882 127.0.0.21:6881 8 ||
	{ tail -5 "$E2E_TMP/itrackerd2.log"; e2e_fail "failover: peer lost or announces did not recover"; }

# 3. Kill an instance: another serves the same swarm.
kill "${ITR_PID[1]}"
in_ns $SWARM sees http://127.0.0.1:6983 "$HASH" 127.0.0.23 6883 127.0.0.21:6881 ||
	e2e_fail "instance 3 does not list a peer announced to instance 1"

# 4. The cluster is gone: a reason, not a hang.
for port in "${!REDIS_PID[@]}"; do
	kill -9 "${REDIS_PID[$port]}" 2>/dev/null || : # the failed-over master is gone already
done
sleep 0.2
in_ns $SWARM down http://127.0.0.1:6983 "$HASH" 127.0.0.24 6884 || e2e_fail "no prompt failure without Redis"
echo "redis_cluster: ok"
