# redis_cluster.sh - a Redis Cluster of 3 masters and 3 replicas (Debian's
# redis-server, ports 7000-7005) on the loopback of namespace $NS, for the
# e2e test and the benchmark of the shared swarm store. Source it after
# netns.sh, with NS set and in_ns() defined. The servers are started
# directly (not through a shell function), so REDIS_PID[port] is the server
# itself, for kill -9.

PORTS=(7000 7001 7002 7003 7004 7005)
STORE=redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
declare -A REDIS_PID

start_cluster() { # node-timeout-ms
	local port i
	for port in "${PORTS[@]}"; do
		rm -rf "$E2E_TMP/r$port"
		mkdir -p "$E2E_TMP/r$port"
		# the settings docs/multi-gateway.md recommends: node timeout as
		# given, and the slots of live masters served while one fails over
		ip netns exec "$NS" redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
			--cluster-config-file "$E2E_TMP/r$port/nodes.conf" --cluster-node-timeout "$1" \
			--cluster-require-full-coverage no \
			--save '' --appendonly no --dir "$E2E_TMP/r$port" --daemonize no \
			>"$E2E_TMP/r$port/log" 2>&1 &
		REDIS_PID[$port]=$!
		E2E_PIDS+=($!)
	done
	for port in "${PORTS[@]}"; do
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
	# every replica in sync with its master (a replica that has not synced
	# yet cannot take over, and WAIT 1 would wait for it)
	local up
	for i in $(seq 100); do
		up=0
		for port in "${PORTS[@]}"; do
			in_ns redis-cli -p "$port" info replication | grep -q 'master_link_status:up' && up=$((up + 1))
		done
		((up == 3)) && return 0
		sleep 0.1
	done
	e2e_fail "replicas not in sync"
}

stop_cluster() {
	local port
	for port in "${PORTS[@]}"; do
		kill -9 "${REDIS_PID[$port]}" 2>/dev/null || :
		wait "${REDIS_PID[$port]}" 2>/dev/null || :
	done
}
