#!/usr/bin/env bash
# redis_cluster.sh - three itrackerd instances share swarms through a real
# Redis Cluster (3 masters, 3 replicas, Debian's redis-server), all inside
# one network namespace on its loopback:
#   - a peer announced to one instance is listed by another at once;
#   - a master is killed: its replica takes over, announces come back, and
#     the peer stored before is still there;
#   - an instance is killed: another serves the same swarm;
#   - the whole cluster is down: an announce gets a failure reason, fast;
#   - UDP announces taken in batches: each answer is its own swarm's;
#   - the per-source quotas (peers per torrent, torrents) hold on this store
#     too, and the refusals are counted in /metrics by reason;
#   - two more instances, each with its own PID matrix (a pinned map fed at
#     a known rate, as the data plane would), price a link from the sum of
#     both rates; once one is killed, its rate leaves the other's sum.
set -euo pipefail
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
NS=${E2E}r
e2e_netns "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
BIN=$ITRACKER_ROOT/$BUILD/itrackerd
SWARM="/usr/bin/python3 $ITRACKER_ROOT/tests/e2e/lib/redis_swarm.py"

source "$ITRACKER_ROOT/tests/e2e/lib/redis_cluster.sh"
start_cluster "${NODE_TIMEOUT_MS:-500}"

declare -A ITR_PID
for n in 1 2 3; do
	ip netns exec "$NS" "$BIN" --no-dataplane --map "$ITRACKER_ROOT/maps/example.netmap" --store "$STORE" \
		--listen 127.0.0.1:698$n --udp off --admin-socket "$E2E_TMP/admin$n.sock" 2>>"$E2E_TMP/itrackerd$n.log" &
	ITR_PID[$n]=$!
	E2E_PIDS+=($!)
done
for n in 1 2 3; do
	for i in $(seq 50); do in_ns curl -fsS -o /dev/null http://127.0.0.1:698$n/v1/status && break; sleep 0.1; done
done

# 1. One swarm, three front doors.
in_ns $SWARM visible http://127.0.0.1:6981 http://127.0.0.1:6982 50 || e2e_fail "visibility"

# 1a. UDP: a worker hands its batch of datagrams to the store at once
# (one pipeline per master); every answer must still be its own swarm's.
ip netns exec "$NS" "$BIN" --no-dataplane --map "$ITRACKER_ROOT/maps/example.netmap" --store "$STORE" \
	--listen 127.0.0.1:6987 --udp 6987 --udp-bind 127.0.0.1 --admin-socket "$E2E_TMP/admin7.sock" 2>>"$E2E_TMP/itrackerd7.log" &
ITR_PID[7]=$!
E2E_PIDS+=($!)
for i in $(seq 50); do in_ns curl -fsS -o /dev/null http://127.0.0.1:6987/v1/status && break; sleep 0.1; done
in_ns $SWARM udp 127.0.0.1:6987 udp-batch 127.0.0.41 64 || e2e_fail "UDP batches"
kill "${ITR_PID[7]}"

# 1b. Per-source quotas on the shared store: one address, 2 ports per
# torrent and 2 torrents at most.
ip netns exec "$NS" "$BIN" --no-dataplane --map "$ITRACKER_ROOT/maps/example.netmap" --store "$STORE" \
	--listen 127.0.0.1:6986 --udp off --admin-socket "$E2E_TMP/admin6.sock" --max-peers-per-source 2 --max-torrents-per-source 2 \
	2>>"$E2E_TMP/itrackerd6.log" &
ITR_PID[6]=$!
E2E_PIDS+=($!)
for i in $(seq 50); do in_ns curl -fsS -o /dev/null http://127.0.0.1:6986/v1/status && break; sleep 0.1; done
in_ns $SWARM quota http://127.0.0.1:6986 "$(printf quota | sha1sum | cut -c1-40)" 127.0.0.31 7001 ||
	e2e_fail "per-source quotas on the Redis store"
for reason in source_peers source_torrents; do
	in_ns curl -fsS http://127.0.0.1:6986/metrics | grep "^itracker_tracker_refused_total{reason=\"$reason\"} 1$" >/dev/null ||
		e2e_fail "/metrics: one $reason refusal expected"
done
kill "${ITR_PID[6]}"

# 1c. The measured inter-AS rate summed over the cluster. Two instances,
# each reading its own matrix (key: src PID 2 -> dst PID 1, i.e. traffic
# into AS 64500 over its uplink), fed at 8 and 24 Mbit/s.
cat >"$E2E_TMP/links.netmap" <<'MAP'
pid a id 1 asn 64500
prefix a 10.10.0.0/16
pid b id 2 asn 64501
prefix b 10.11.0.0/16
link a-up asn 64500 uplink capacity 100mbit budget 50mbit
MAP
e2e_bpffs
NCPU=$(awk -F, '{ n = 0; for (i = 1; i <= NF; i++) { c = split($i, r, "-"); n += c == 2 ? r[2] - r[1] + 1 : 1 } print n }' \
	/sys/devices/system/cpu/possible)
le64() { # value -> 8 bytes, little endian, as bpftool's decimal arguments
	local v=$1 out="" i
	for i in 0 1 2 3 4 5 6 7; do
		out+=" $((v & 255))"
		v=$((v >> 8))
	done
	echo "$out"
}
# Counters grow by rate_bps from the start, spread over the CPUs (bpftool
# writes the value into every CPU's slot; the reader sums them).
feed_matrix() { # dir rate_bps
	local pin=$1/matrix rate=$2 t0=${EPOCHREALTIME/./} us bytes
	while :; do
		us=$((${EPOCHREALTIME/./} - t0))
		bytes=$((rate / 8 * us / 1000000 / NCPU))
		bpftool map update pinned "$pin" key 2 0 0 0 1 0 0 0 value $(le64 1) $(le64 "$bytes") ||
			return 1
		sleep 0.1
	done
}
declare -A FEED_PID
declare -A RATE=([4]=8000000 [5]=24000000)
for n in 4 5; do
	mkdir -p "$E2E_BPFFS/gw$n"
	bpftool map create "$E2E_BPFFS/gw$n/matrix" type percpu_hash key 8 value 16 entries 64 name matrix
	feed_matrix "$E2E_BPFFS/gw$n" "${RATE[$n]}" &
	E2E_PIDS+=($!)
	FEED_PID[$n]=$!
	ip netns exec "$NS" "$BIN" --no-dataplane --map "$E2E_TMP/links.netmap" --store "$STORE" \
		--listen 127.0.0.1:698$n --udp off --admin-socket "$E2E_TMP/admin$n.sock" --price-period 1 --price-matrix "$E2E_BPFFS/gw$n" \
		2>>"$E2E_TMP/itrackerd$n.log" &
	ITR_PID[$n]=$!
	E2E_PIDS+=($!)
done
link_status() { # instance -> "local cluster instances" of a-up
	in_ns curl -fsS "http://127.0.0.1:698$1/v1/status" |
		jq -r '.policy.links[] | select(.name == "a-up") |
		       "\(.local_rate_bps // -1 | floor) \(.cluster_rate_bps // -1 | floor) \(.cluster_instances)"'
}
near() { # value want: within 20 % (the feeders and the samplers are not in step)
	awk -v v="$1" -v w="$2" 'BEGIN { exit !(v > 0.8 * w && v < 1.2 * w) }'
}
summed_ok() { # instance want_local want_cluster want_instances
	local st
	st=$(link_status "$1") || return 1
	read -r loc clu cnt <<<"$st"
	echo "instance $1: a-up local $loc bit/s, cluster $clu bit/s from $cnt instance(s)"
	near "$loc" "$2" && near "$clu" "$3" && [[ $cnt == "$4" ]]
}
ok=0
for i in $(seq 40); do
	sleep 0.25
	summed_ok 4 8000000 32000000 2 >/dev/null && summed_ok 5 24000000 32000000 2 >/dev/null && { ok=1; break; }
done
summed_ok 4 8000000 32000000 2 || :
summed_ok 5 24000000 32000000 2 || :
((ok)) || { tail -3 "$E2E_TMP/itrackerd4.log"; e2e_fail "each instance should price a-up from 8 + 24 Mbit/s"; }
in_ns curl -fsS http://127.0.0.1:6984/metrics | grep '^itracker_link_cluster_instances{link="a-up",asn="64500",peer_asn="uplink"} 2$' >/dev/null ||
	e2e_fail "/metrics: itracker_link_cluster_instances of a-up is not 2"
# Instance 5 dies: its record ages out (3 periods) and leaves 4's sum.
kill -9 "${ITR_PID[5]}" "${FEED_PID[5]}"
ok=0
for i in $(seq 40); do
	sleep 0.25
	summed_ok 4 8000000 8000000 1 >/dev/null && { ok=1; echo "aged out after $(( (i + 1) / 4 )) s"; break; }
done
summed_ok 4 8000000 8000000 1 || :
((ok)) || e2e_fail "a dead instance's rate still counts after 10 s"
kill "${ITR_PID[4]}" "${FEED_PID[4]}"

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
