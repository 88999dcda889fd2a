#!/usr/bin/env bash
# reload_under_traffic.sh - the network map is reloaded again and again
# (SIGHUP and the admin endpoint on its Unix socket, alternating between two maps that move,
# split and renumber the PIDs of the addresses in use) while BitTorrent
# traffic flows. Every address involved has a PID in both maps, so not one
# packet may be counted as "unknown", and every packet must be counted.
E2E=itrrl$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
LIB=$ITRACKER_ROOT/tests/e2e/lib

e2e_pair
e2e_bpffs

MAP=$E2E_TMP/network.map
MAP_A=$ITRACKER_ROOT/maps/example.netmap
MAP_B=$E2E_TMP/variant.netmap
# The variant: a-metro1 split in two PIDs with new ids, c-all renumbered and
# split into two prefixes, b-edge removed, costs changed.
sed -e 's/^prefix a-metro1 10.10.1.0\/24/prefix a-metro1 10.10.1.128\/25/' \
	-e 's/^pid c-all id 20/pid c-all id 21/' \
	-e 's/^prefix c-all 10.30.0.0\/16/prefix c-all 10.30.0.0\/17 10.30.128.0\/17/' \
	-e '/b-edge/d' -e 's/^cost a-metro1 a-metro2 7/cost a-metro1 a-metro2 9/' "$MAP_A" >"$MAP_B"
cat >>"$MAP_B" <<'MAPEOF'
pid a-metro1-low id 4 asn 64500 loc 1
prefix a-metro1-low 10.10.1.0/25
MAPEOF
cp "$MAP_A" "$MAP"

e2e_capture_start
e2e_itrackerd --map "$MAP"
e2e_bg ip netns exec "$NS_B" /usr/bin/python3 "$LIB/btpeers.py" serve 7000 10.30.0.2 10.10.1.3
sleep 1
ip netns exec "$NS_A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.30.0.2 7000 2500000 --rate 500000 &
T1=$!
ip netns exec "$NS_A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.2.2 10.10.1.3 7000 2500000 --rate 500000 &
T2=$!

gen() { ip netns exec "$NS_A" curl -fsS http://127.0.0.1:6969/v1/status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
GEN0=$(gen)
RELOADS=0
for i in $(seq 40); do
	if ((i % 2)); then cp "$MAP_B" "$MAP"; else cp "$MAP_A" "$MAP"; fi
	if ((i % 4 < 2)); then
		kill -HUP "$ITRD_PID"
	else
		curl -fsS --unix-socket "$E2E_ADMIN_SOCK" -X POST http://localhost/v1/admin/reload >/dev/null ||
			e2e_fail "admin reload $i failed"
	fi
	RELOADS=$((RELOADS + 1))
	sleep 0.1
done
sleep 0.5
GEN1=$(gen)
(( GEN1 - GEN0 >= RELOADS - 2 )) || e2e_fail "generation moved $GEN0 -> $GEN1 for $RELOADS reloads"

# An invalid map is refused and the running one stays.
echo "prefix nosuch 10.0.0.0/8" >>"$MAP"
CODE=$(curl -s --unix-socket "$E2E_ADMIN_SOCK" -o "$E2E_TMP/reject.json" -w '%{http_code}' -X POST http://localhost/v1/admin/reload)
[[ $CODE == 422 ]] || e2e_fail "invalid map answered $CODE"
grep -q 'network.map:[0-9]*' "$E2E_TMP/reject.json" || e2e_fail "rejection without file:line: $(cat "$E2E_TMP/reject.json")"
[[ $(gen) == "$GEN1" ]] || e2e_fail "a rejected map moved the generation"

wait $T1 || e2e_fail "traffic 1 broke"
wait $T2 || e2e_fail "traffic 2 broke"
sleep 0.3
e2e_quiesce "$NS_B" # the peer, so nothing is sent after the capture
e2e_capture_stop # and the counters, in counters.json
/usr/bin/python3 - "$E2E_TMP/cap.pcap" "$E2E_TMP/counters.json" "$LIB" <<'PYEOF' || e2e_fail "counts wrong under reload"
import sys
sys.path.insert(0, sys.argv[3])
import pcap_expect as pe
got = pe.measured(sys.argv[2])
frames = [(f, n) for f, n in pe.frames(sys.argv[1]) if pe.parse(f) is not None]
unknown = sum(p for (d, c, k), (p, b) in got.items() if c == 4)
total_counted = sum(p for (p, b) in got.values())
total_bytes = sum(b for (p, b) in got.values())
print("packets captured %d, counted %d; bytes captured %d, counted %d; unknown %d" % (
    len(frames), total_counted, sum(n for _, n in frames), total_bytes, unknown))
ok = unknown == 0 and total_counted == len(frames) and total_bytes == sum(n for _, n in frames)
sys.exit(0 if ok else 1)
PYEOF
echo "PASS reload_under_traffic ($RELOADS reloads, generation $GEN0 -> $GEN1)"
