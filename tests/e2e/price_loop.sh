#!/usr/bin/env bash
# price_loop.sh - the price controller's loop end to end: an inter-AS link
# declared in the map (AS 64500's uplink, capacity 8 Mbit/s, BitTorrent
# budget 2 Mbit/s), real peer-wire traffic from AS 64502 into AS 64500
# through a link shaped to 4 Mbit/s (TBF), and itrackerd's data plane on it.
#
# Within 15 s the rate the controller measured from the data plane's PID
# matrix must be within 10 % of the shaper's 4 Mbit/s and the price must
# pass 0.5 (the rate is twice the budget); /v1/rank must then serve the
# dynamic p-distance (an other-AS cost above the tier) under a new vtag, and
# itrackerctl policy (table and --json) and /metrics must show the link.
# When the traffic stops, the price must fall again.
E2E=itrpl$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$E2E_TMP/links.netmap
cp "$ITRACKER_ROOT/maps/example.netmap" "$MAP"
echo "link a-up asn 64500 uplink capacity 8mbit budget 2mbit host-upload 1mbit" >>"$MAP"

e2e_pair
e2e_bpffs
e2e_itrackerd --map "$MAP" --price-period 1 --trusted-proxy 127.0.0.1 --accept-ip-param
A=$NS_A
B=$NS_B
status() { ip netns exec "$A" curl -fsS http://127.0.0.1:6969/v1/status; }
field() { # python expression over the a-up link as l
	status | /usr/bin/python3 -c "import json,sys
p = json.load(sys.stdin)['policy']
l = [x for x in p['links'] if x['name'] == 'a-up'][0]
print($1)"
}
[[ $(status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"]["mode"])') == dataplane ]] ||
	e2e_fail "the price controller does not read the data plane"
# The map file's own vtag; a priced link publishes a derived map with another.
VTAG0=$("$ITRACKER_ROOT/$BUILD/itrackerctl" --json map check "$MAP" |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["vtag"])')

# The shaped link: everything AS 64502 sends towards AS 64500 leaves vb.
ip netns exec "$B" tc qdisc add dev vb root tbf rate 4mbit burst 16kb latency 100ms
e2e_bg ip netns exec "$B" /usr/bin/python3 -u "$LIB/btpeers.py" serve 7000 10.30.0.2
sleep 1
# 8 MB at 4 Mbit/s: about 16 s of BitTorrent piece traffic.
ip netns exec "$A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.30.0.2 7000 8000000 \
	>"$E2E_TMP/fetch.log" 2>&1 &
FETCH=$!
E2E_PIDS+=($FETCH)

met=""
for t in $(seq 15); do
	sleep 1
	read -r rate price < <(field "l['rate_smoothed_bps'], l['price']")
	echo "t=${t}s measured $(/usr/bin/python3 -c "print('%.2f' % ($rate / 1e6))") Mbit/s, price $price"
	if /usr/bin/python3 -c "import sys; sys.exit(0 if abs($rate - 4e6) <= 0.4e6 and $price > 0.5 else 1)"; then
		met=$t
		break
	fi
done
[[ -n $met ]] || e2e_fail "within 15 s the measured rate was not within 10 % of 4 Mbit/s with a price above 0.5"
echo "ok measured rate within 10 % of the shaped 4 Mbit/s and price above 0.5 after ${met}s"

# P4P's dynamic p-distance: a-metro1 -> c-all costs more than the other-as
# tier (100) now, under a vtag that is not the file's.
RANK=$(ip netns exec "$A" curl -fsS -X POST -H 'Content-Type: application/json' \
	-d '{"client":"10.10.1.9","peers":["10.30.4.4:6881","10.10.2.5:6881"],"numwant":2}' \
	http://127.0.0.1:6969/v1/rank)
/usr/bin/python3 - "$RANK" "$VTAG0" <<'EOF' || e2e_fail "dynamic p-distance: $RANK"
import json, sys
r = json.loads(sys.argv[1])
cost = {p["pid"]: p["cost"] for p in r["peers"]}
assert cost["c-all"] > 100, cost
assert cost["a-metro2"] == 7, cost
assert r["vtag"] != sys.argv[2], "vtag unchanged"
print("ok /v1/rank: c-all costs %d (tier 100), vtag %s... (was %s...)"
      % (cost["c-all"], r["vtag"][:12], sys.argv[2][:12]))
EOF

# Swarm state: a leecher and a seed of AS 64500 announce (named with ip=).
for peer in "10.10.1.2 6881 1000" "10.10.2.2 6882 0"; do
	read -r ip port left <<<"$peer"
	ip netns exec "$A" curl -fsS -o /dev/null "http://127.0.0.1:6969/announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-E2E000-$port-xxxxxxx&port=$port&uploaded=0&downloaded=0&left=$left&compact=1&ip=$ip" ||
		e2e_fail "announce $ip"
done
sleep 2.5 # one controller period and a half

# Operators see the loop.
CTL="$ITRACKER_ROOT/$BUILD/itrackerctl --server http://127.0.0.1:6969"
ip netns exec "$A" $CTL policy >"$E2E_TMP/policy.txt" || e2e_fail "itrackerctl policy"
cat "$E2E_TMP/policy.txt"
grep -Eq '^a-up +64500 +uplink +8\.00 +2\.00 +[0-9.]+ +[0-9]+% +0\.[5-9]' "$E2E_TMP/policy.txt" ||
	e2e_fail "itrackerctl policy: no a-up row with capacity, budget, rate and price"
grep -Eq '^64500 +1 +2 +1 +[1-9][0-9]* +[1-9]' "$E2E_TMP/policy.txt" ||
	e2e_fail "itrackerctl policy: no AS 64500 row with 1 swarm, 2 peers, 1 seed, its gateways"
# over its budget (price above 0) the AS is capped: open in no swarm, for no reason
grep -Eq '^64500 +.* 0 -$' "$E2E_TMP/policy.txt" ||
	e2e_fail "itrackerctl policy: AS 64500 not shown capped (OPEN 0, WHY OPEN -)"
ip netns exec "$A" $CTL policy --json | /usr/bin/python3 -c 'import json,sys
p = json.load(sys.stdin)
assert p["mode"] == "dataplane" and p["links"][0]["name"] == "a-up", p' ||
	e2e_fail "itrackerctl policy --json"
ip netns exec "$A" curl -fsS http://127.0.0.1:6969/metrics >"$E2E_TMP/metrics.txt"
for m in itracker_link_price itracker_link_rate_bits_per_second itracker_link_budget_bits_per_second \
	itracker_link_capacity_bits_per_second; do
	grep -q "^$m{link=\"a-up\",asn=\"64500\",peer_asn=\"uplink\"} " "$E2E_TMP/metrics.txt" ||
		e2e_fail "/metrics: no $m for a-up"
done
grep -q '^itracker_as_peers{asn="64500"} 2$' "$E2E_TMP/metrics.txt" || e2e_fail "/metrics: itracker_as_peers"
grep -q '^itracker_as_seeds{asn="64500"} 1$' "$E2E_TMP/metrics.txt" || e2e_fail "/metrics: itracker_as_seeds"
for reason in no_seed slow_seeds; do
	grep -q "^itracker_as_open_swarms_by_reason{asn=\"64500\",reason=\"$reason\"} 0$" \
		"$E2E_TMP/metrics.txt" || e2e_fail "/metrics: itracker_as_open_swarms_by_reason $reason"
done
grep -E '^itracker_(link|as)_' "$E2E_TMP/metrics.txt"
echo "ok itrackerctl policy (table, --json) and /metrics show the link"

wait "$FETCH" || {
	cat "$E2E_TMP/fetch.log"
	e2e_fail "the peer-wire fetch failed"
}
high=$(field "l['price']")
for t in $(seq 10); do
	sleep 1
	now=$(field "l['price']")
	if /usr/bin/python3 -c "import sys; sys.exit(0 if $now < $high - 0.1 else 1)"; then
		echo "ok the traffic stopped: price $high -> $now after ${t}s"
		echo "PASS: price_loop"
		exit 0
	fi
done
e2e_fail "the price did not fall after the traffic stopped (still $now, was $high)"
