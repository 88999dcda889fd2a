#!/usr/bin/env bash
# shape_budget.sh - a BitTorrent budget on a transit link, met by the rate
# the data plane measures (issue 9): itrackerd --shape enforces the budget.
#
#   H (AS 64500 hosts: aria2c seeder 10.10.1.2)
#     h0 --- g0  [HTB 24 Mbit/s access link on h0]
#   G (AS 64500's gateway: itrackerd, the tracker, -i gt --shape a-transit=gt;
#      iperf3 client)
#     gt --- bt  [HTB 24 Mbit/s access link on bt]
#   B (AS 64502: aria2c leecher 10.30.0.2, iperf3 server)
#
# The map declares AS 64500's uplink a-transit (capacity 24 Mbit/s, budget
# 6 Mbit/s). itrackerd installs an HTB class at the budget on gt, and its TC
# egress program steers inter-AS BitTorrent into it. Checks:
#   1. the class is on gt at the budget, installed by itrackerd (no tc);
#   2. the inter-AS rate the price controller measures from the data
#      plane's matrix (itrackerctl policy --json) is within 10 % of the
#      budget within 30 s of the leecher's start, and stays there;
#   3. the budget lowered to 3 Mbit/s in the map, SIGHUP: the class follows
#      and the measured rate settles within 10 % of it within 30 s;
#   4. iperf3 (not BitTorrent) over the same link meanwhile gets well
#      above the budget (at least 2x), and BitTorrent stays within 10 %;
#   5. on exit itrackerd removes its qdisc from gt;
#   6. a device whose root qdisc the operator set is refused, and left alone;
#      one of ours (a --keep-attached run's) is taken over at start, and
#      --purge removes it.
# Prints the settle times (from the leecher's start and from the reload).
E2E=itrsb$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
for tool in aria2c transmission-create iperf3 tc curl; do
	command -v "$tool" >/dev/null || e2e_fail "$tool is not installed (tools/deps.sh)"
done

H=${E2E}h
G=${E2E}g
B=${E2E}b
e2e_netns "$H"
e2e_netns "$G"
e2e_netns "$B"
e2e_veth "$H" h0 "$G" g0
e2e_veth "$G" gt "$B" bt
e2e_addr "$H" h0 10.10.1.2/24
e2e_addr "$G" g0 10.10.1.1/24
e2e_addr "$G" gt 10.30.0.1/24
e2e_addr "$B" bt 10.30.0.2/24
ip -n "$H" route add default via 10.10.1.1
ip -n "$B" route add default via 10.30.0.1
ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=1
# Access links: HTB, one class each (no netem in this kernel).
for hop in "$H h0" "$B bt"; do
	read -r ns dev <<<"$hop"
	ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: htb default 1
	ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:1 htb rate 24mbit ceil 24mbit quantum 60000
	ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 2: pfifo limit 100
done

MAP=$E2E_TMP/transit.netmap
cp "$ITRACKER_ROOT/maps/example.netmap" "$MAP"
cp "$MAP" "$E2E_TMP/base.netmap"
echo "link a-transit asn 64500 uplink capacity 24mbit budget 6mbit" >>"$MAP"
e2e_bpffs
# A previous run's qdisc (as --keep-attached leaves it): taken over, and
# rebuilt from the map's budget.
ip netns exec "$G" tc qdisc add dev gt root handle 4954: htb default 0
CTL="$ITRACKER_ROOT/$BUILD/itrackerctl --server http://127.0.0.1:6969"
ip netns exec "$G" "$ITRACKER_ROOT/$BUILD/itrackerd" -i gt --shape a-transit=gt \
	--map "$MAP" --pin-root "$E2E_PIN_ROOT" --listen 0.0.0.0:6969 --udp off \
	--admin-socket "$E2E_TMP/admin.sock" --price-period 1 2>>"$E2E_TMP/itrackerd.log" &
ITRD_PID=$!
E2E_PIDS+=($ITRD_PID)
for _ in $(seq 100); do
	ip netns exec "$G" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break
	kill -0 "$ITRD_PID" 2>/dev/null || { cat "$E2E_TMP/itrackerd.log" >&2; e2e_fail "itrackerd exited at start"; }
	sleep 0.1
done

class_rate() { # the BitTorrent class's rate and ceiling on gt, as tc prints them
	# (this iproute2 prints no JSON for HTB classes)
	ip netns exec "$G" tc class show dev gt classid 4954:1 | sed -n 's/.* rate \([^ ]*\) ceil \([^ ]*\) .*/\1 \2/p'
}
root=$(ip netns exec "$G" tc -j qdisc show dev gt root |
	/usr/bin/python3 -c 'import json,sys; q = json.load(sys.stdin)[0]; print(q["kind"], q["handle"])')
[[ $root == "htb 4954:" ]] || e2e_fail "gt's root qdisc is '$root', not itrackerd's HTB"
[[ $(class_rate) == "6Mbit 6Mbit" ]] || e2e_fail "the BitTorrent class is at '$(class_rate)' (rate ceil), not 6 Mbit/s"
echo "ok itrackerd installed HTB 4954: on gt, class 4954:1 at 6 Mbit/s"

# A 48 MiB torrent: more than the test moves at the budgets, so the
# transfer runs throughout.
mkdir -p "$E2E_TMP/seed" "$E2E_TMP/leech"
head -c $((48 << 20)) /dev/urandom >"$E2E_TMP/seed/payload.bin"
transmission-create -t http://10.10.1.1:6969/announce -o "$E2E_TMP/payload.torrent" \
	"$E2E_TMP/seed/payload.bin" >/dev/null
ARIA=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
	--file-allocation=none --summary-interval=0 --show-console-readout=false
	--console-log-level=warn --bt-tracker-interval=600)
# The seeder announces first and alone (its next announce is 10 min away),
# so the leecher opens the connection: the tracker's answer to it leaves
# through gt, where the data plane learns the seeder's endpoint and then
# knows aria2c's MSE-obfuscated connection by it.
e2e_bg ip netns exec "$H" aria2c "${ARIA[@]}" -V --seed-ratio=0.0 --listen-port=6881 \
	-d "$E2E_TMP/seed" "$E2E_TMP/payload.torrent" >"$E2E_TMP/seeder.log" 2>&1
seeded=""
for _ in $(seq 100); do
	if ip netns exec "$G" $CTL policy --json | /usr/bin/python3 -c 'import json,sys
p = json.load(sys.stdin)
sys.exit(0 if any(a["asn"] == 64500 and a["seeds"] >= 1 for a in p["ases"]) else 1)' 2>/dev/null; then
		seeded=1
		break
	fi
	sleep 0.1
done
[[ -n $seeded ]] || { cat "$E2E_TMP/seeder.log" >&2; e2e_fail "the seeder did not announce"; }
e2e_bg ip netns exec "$B" aria2c "${ARIA[@]}" --seed-time=0 --listen-port=6882 \
	-d "$E2E_TMP/leech" "$E2E_TMP/payload.torrent" >"$E2E_TMP/leecher.log" 2>&1
T0=$(date +%s.%N)

rate() { # the smoothed inter-AS BitTorrent rate of a-transit, bits/s
	ip netns exec "$G" $CTL policy --json | /usr/bin/python3 -c 'import json,sys
p = json.load(sys.stdin)
print([l for l in p["links"] if l["name"] == "a-transit"][0]["rate_smoothed_bps"])'
}
within() { # rate budget: |rate - budget| <= 10 %
	/usr/bin/python3 -c "import sys; sys.exit(0 if abs($1 - $2) <= 0.1 * $2 else 1)"
}
mbit() { /usr/bin/python3 -c "print('%.2f' % ($1 / 1e6))"; }

err_pct() { /usr/bin/python3 -c "print('%+.1f' % (100.0 * ($1 - $2) / $2))"; }

# Settled: within 10 % for three samples in a row (3 s); the settle time is
# the first of them. Sets SETTLED (seconds since $1) and ERRS (the three
# samples' errors, %), or fails after 30 s.
settle() { # since budget label
	local since=$1 budget=$2 label=$3 first="" run=0 now r
	ERRS=""
	while :; do
		sleep 1
		now=$(date +%s.%N)
		r=$(rate)
		echo "$label t=$(/usr/bin/python3 -c "print('%.1f' % ($now - $since))")s measured $(mbit "$r") Mbit/s (budget $(mbit "$budget"))"
		if within "$r" "$budget"; then
			[[ -n $first ]] || first=$now
			run=$((run + 1))
			ERRS="$ERRS $(err_pct "$r" "$budget")"
			if ((run >= 3)); then
				SETTLED=$(/usr/bin/python3 -c "print('%.1f' % ($first - $since))")
				return 0
			fi
		else
			first=""
			run=0
			ERRS=""
		fi
		/usr/bin/python3 -c "import sys; sys.exit(0 if $now - $since <= 33 else 1)" ||
			e2e_fail "$label: the measured rate was not within 10 % of $(mbit "$budget") Mbit/s within 30 s"
	done
}

settle "$T0" 6000000 start
/usr/bin/python3 -c "import sys; sys.exit(0 if $SETTLED <= 30 else 1)" || e2e_fail "settled only after ${SETTLED}s"
echo "ok the measured inter-AS BitTorrent rate settled within 10 % of 6 Mbit/s ${SETTLED}s after the leecher started"
SETTLE_START=$SETTLED
ERRS_START=$ERRS

# The budget lowered in the map: the class follows the reload.
cp "$E2E_TMP/base.netmap" "$MAP.new"
echo "link a-transit asn 64500 uplink capacity 24mbit budget 3mbit" >>"$MAP.new"
mv "$MAP.new" "$MAP"
kill -HUP "$ITRD_PID"
T1=$(date +%s.%N)
for _ in $(seq 50); do
	[[ $(class_rate) == "3Mbit 3Mbit" ]] && break
	sleep 0.1
done
[[ $(class_rate) == "3Mbit 3Mbit" ]] || e2e_fail "after the reload the class is at '$(class_rate)' (rate ceil), not 3 Mbit/s"
echo "ok the reload moved the class to 3 Mbit/s"
settle "$T1" 3000000 reload
echo "ok the measured rate settled within 10 % of the new 3 Mbit/s budget ${SETTLED}s after the reload"
/usr/bin/python3 -c "import sys; sys.exit(0 if $SETTLED <= 30 else 1)" || e2e_fail "settled only after ${SETTLED}s"
SETTLE_RELOAD=$SETTLED
ERRS_RELOAD=$ERRS

# Not BitTorrent: iperf3 over the same link is not held to the budget,
# while BitTorrent stays within it (sampled every second meanwhile). The
# gateway itself is the iperf3 client, so that the two share only the
# shaped device gt, not an access link (a flow filling the access link
# would slow the BitTorrent flow before it reaches the shaper); iperf3
# paces itself to 12 Mbit/s (4x the budget) to leave the CPUs to the rest.
e2e_bg ip netns exec "$B" iperf3 -s -B 10.30.0.2 -p 5201 -1 >"$E2E_TMP/iperf-server.log" 2>&1
sleep 0.5
ip netns exec "$G" iperf3 -c 10.30.0.2 -p 5201 -t 5 -b 12M -J >"$E2E_TMP/iperf.json" &
IPERF=$!
E2E_PIDS+=($IPERF)
ERRS_IPERF=""
for _ in 1 2 3 4; do
	sleep 1
	r=$(rate)
	within "$r" 3000000 || e2e_fail "BitTorrent left the budget while iperf3 ran: $(mbit "$r") Mbit/s"
	ERRS_IPERF="$ERRS_IPERF $(err_pct "$r" 3000000)"
done
wait "$IPERF" || { cat "$E2E_TMP/iperf.json" >&2; e2e_fail "iperf3 failed"; }
iperf_bps=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"])' "$E2E_TMP/iperf.json")
echo "iperf3 over the shaped link: $(mbit "$iperf_bps") Mbit/s; BitTorrent meanwhile off its budget by$ERRS_IPERF %"
/usr/bin/python3 -c "import sys; sys.exit(0 if $iperf_bps >= 2 * 3e6 else 1)" ||
	e2e_fail "iperf3 got $(mbit "$iperf_bps") Mbit/s: non-BitTorrent traffic is held to the budget"
echo "ok non-BitTorrent traffic is not shaped, BitTorrent stays within 10 % of the budget"

# Operators see it: /v1/status, itrackerctl policy and /metrics.
ip netns exec "$G" curl -fsS http://127.0.0.1:6969/v1/status | /usr/bin/python3 -c 'import json,sys
s = json.load(sys.stdin)["shaper"][0]
assert s["link"] == "a-transit" and s["dev"] == "gt" and s["rate_bps"] == 3000000, s
assert s["sent_bytes"] > 5 << 20, s
print("ok /v1/status shaper:", s)' || e2e_fail "/v1/status has no shaper"
ip netns exec "$G" $CTL policy >"$E2E_TMP/policy.txt" || e2e_fail "itrackerctl policy"
grep -Eq '^a-transit +gt +3\.00 +[0-9]+\.[0-9]+ +[0-9]+$' "$E2E_TMP/policy.txt" ||
	{ cat "$E2E_TMP/policy.txt" >&2; e2e_fail "itrackerctl policy: no shaped link row"; }
ip netns exec "$G" $CTL policy --json | /usr/bin/python3 -c 'import json,sys
s = json.load(sys.stdin)["shaper"][0]
assert s["dev"] == "gt" and s["rate_bps"] == 3000000, s' || e2e_fail "itrackerctl policy --json: no shaper"
ip netns exec "$G" curl -fsS http://127.0.0.1:6969/metrics |
	grep -q '^itracker_shaper_rate_bits_per_second{link="a-transit",dev="gt"} 3000000$' ||
	e2e_fail "/metrics: no itracker_shaper_rate_bits_per_second"

kill -TERM "$ITRD_PID"
wait "$ITRD_PID" || e2e_fail "itrackerd exited with $?"
kind=$(ip netns exec "$G" tc -j qdisc show dev gt root |
	/usr/bin/python3 -c 'import json,sys; q = json.load(sys.stdin); print(q[0]["kind"] if q else "none")')
[[ $kind != htb ]] || e2e_fail "itrackerd left its HTB on gt"
echo "ok on exit itrackerd removed its qdisc (gt's root is $kind again)"
# An operator's own root qdisc is never replaced: itrackerd refuses to start.
ip netns exec "$G" tc qdisc add dev gt root handle 7: tbf rate 50mbit burst 32kb latency 50ms
if ip netns exec "$G" "$ITRACKER_ROOT/$BUILD/itrackerd" -i gt --shape a-transit=gt --map "$MAP" \
	--pin-root "$E2E_PIN_ROOT" --listen 127.0.0.1:6970 --udp off \
	--admin-socket "$E2E_TMP/admin2.sock" 2>"$E2E_TMP/refused.log"; then
	e2e_fail "itrackerd started over the operator's tbf"
fi
grep -q "gt already has a root qdisc (tbf, handle 7:) that itrackerd did not install" "$E2E_TMP/refused.log" ||
	{ cat "$E2E_TMP/refused.log" >&2; e2e_fail "no message about the operator's qdisc"; }
[[ $(ip netns exec "$G" tc -j qdisc show dev gt root | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["kind"])') == tbf ]] ||
	e2e_fail "the operator's tbf is gone"
echo "ok an operator's root qdisc is refused and left alone"

# --purge removes a qdisc of ours that a --keep-attached run left (here on
# g0), and nothing else.
ip netns exec "$G" tc qdisc add dev g0 root handle 4954: htb default 0
ip netns exec "$G" "$ITRACKER_ROOT/$BUILD/itrackerd" --purge --pin-root "$E2E_PIN_ROOT" >"$E2E_TMP/purge.log" 2>&1 ||
	{ cat "$E2E_TMP/purge.log" >&2; e2e_fail "itrackerd --purge failed"; }
grep -q "qdisc removed from 1 device" "$E2E_TMP/purge.log" || { cat "$E2E_TMP/purge.log" >&2; e2e_fail "--purge: no word of the qdisc"; }
roots=$(for d in g0 gt; do ip netns exec "$G" tc -j qdisc show dev $d root | /usr/bin/python3 -c 'import json,sys; q = json.load(sys.stdin)[0]; print(q["kind"] + ":" + q["handle"])'; done | tr '\n' ' ')
[[ $roots == "noqueue:0: tbf:7: " ]] || e2e_fail "after --purge the roots of g0 and gt are '$roots'"
echo "ok --purge removed the qdisc of ours and left the operator's"
echo "settle: start ${SETTLE_START}s, reload ${SETTLE_RELOAD}s"
echo "steady-state error (%): 6 Mbit/s:$ERRS_START; 3 Mbit/s:$ERRS_RELOAD; 3 Mbit/s with iperf3:$ERRS_IPERF"
echo "PASS: shape_budget"
