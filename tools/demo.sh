#!/usr/bin/env bash
# demo.sh - `make demo`: itrackerd on a demo namespace pair, counting a real
# BitTorrent transfer by locality, answering P4P and ALTO questions, and
# serving as the tracker of a small swarm. Every command it runs against the
# daemon is printed so it can be repeated by hand. Set DEMO_KEEP=1 to leave
# the namespaces and the daemon running at the end (Ctrl-C then cleans up).
E2E=itrdemo
export ITRACKER_ROOT=${ITRACKER_ROOT:-$PWD}
source "$ITRACKER_ROOT/tests/e2e/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap
BIN=$ITRACKER_ROOT/$BUILD
A=itrdemo-a
B=itrdemo-b
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[36m$ %s\033[0m\n' "$*"; }
in_a() { ip netns exec "$A" "$@"; }

for ns in "$A" "$B"; do ip netns del "$ns" 2>/dev/null || true; done

step "1. Two namespaces joined by a veth pair"
e2e_netns "$A"
e2e_netns "$B"
e2e_veth "$A" va "$B" vb
e2e_addr "$A" va 10.10.1.2/32 10.10.2.2/32 fd00:10:1::2/128
e2e_addr "$B" vb 10.30.0.2/32 10.10.1.3/32 fd00:30::2/128
ip -n "$A" route add 10.0.0.0/8 dev va
ip -n "$B" route add 10.0.0.0/8 dev vb
ip -n "$A" -6 route add fd00::/8 dev va
ip -n "$B" -6 route add fd00::/8 dev vb
echo "$A: va 10.10.1.2 (PID a-metro1, AS 64500), 10.10.2.2 (a-metro2), fd00:10:1::2"
echo "$B: vb 10.30.0.2 (PID c-all, AS 64502), 10.10.1.3 (a-metro1), fd00:30::2"

step "2. itrackerd with the example network map, attached to va"
e2e_bpffs
ROOT=$E2E_PIN_ROOT
# its own admin socket: a gateway's own itrackerd may hold the default one
show "ip netns exec $A $BIN/itrackerd --map $MAP -i va --pin-root $ROOT --listen [::]:6969 --admin-socket $E2E_ADMIN_SOCK"
e2e_bg ip netns exec "$A" "$BIN/itrackerd" --map "$MAP" -i va --pin-root "$ROOT" --listen '[::]:6969' \
	--admin-socket "$E2E_ADMIN_SOCK"
for i in $(seq 100); do in_a curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break; sleep 0.1; done
show "ip netns exec $A curl -s http://127.0.0.1:6969/v1/status"
in_a curl -s http://127.0.0.1:6969/v1/status | python3 -m json.tool

step "3. A real BitTorrent transfer (libtorrent) across ASes, and a transfer inside one PID"
head -c 4000000 /dev/urandom >"$E2E_TMP/demo.bin"
/usr/bin/python3 "$LIB/lt_transfer.py" make "$E2E_TMP/demo.bin" "$E2E_TMP/demo.torrent"
mkdir -p "$E2E_TMP/leech"
e2e_bg ip netns exec "$B" /usr/bin/python3 "$LIB/lt_transfer.py" seed "$E2E_TMP/demo.torrent" "$E2E_TMP" 10.30.0.2 6881
e2e_bg ip netns exec "$B" /usr/bin/python3 "$LIB/btpeers.py" serve 7000 10.10.1.3
sleep 2
in_a /usr/bin/python3 "$LIB/lt_transfer.py" leech "$E2E_TMP/demo.torrent" "$E2E_TMP/leech" 10.10.1.2 10.30.0.2 6881 --timeout 60
in_a /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.10.1.3 7000 1000000 && echo "intra-PID exchange: 1000000 bytes"

step "4. What the data plane counted (operators: bpftool on the pinned maps)"
show "bpftool map dump pinned $ROOT/counters"
bpftool map dump pinned "$ROOT/counters" >"$E2E_TMP/counters.txt"
head -n 24 "$E2E_TMP/counters.txt"
echo "   ... (70 slots: direction x class x kind; per-CPU values)"
if [[ -x $BIN/itrackerctl ]]; then
	show "itrackerctl --pin-root $ROOT stats"
	"$BIN/itrackerctl" --pin-root "$ROOT" stats || true
	show "itrackerctl --pin-root $ROOT matrix --map $MAP"
	"$BIN/itrackerctl" --pin-root "$ROOT" matrix --map "$MAP" || true
fi

step "5. The iTracker: network position, ranking, ALTO"
show "ip netns exec $A curl -s 'http://127.0.0.1:6969/v1/netinfo?ip=10.10.2.7'"
in_a curl -s 'http://127.0.0.1:6969/v1/netinfo?ip=10.10.2.7'; echo
RANK='{"client":"10.10.1.9","peers":["10.30.4.4:6881","10.10.2.5:6881","10.20.200.1:6881","10.10.1.77:6881","10.10.3.3:6881"],"numwant":5}'
show "ip netns exec $A curl -s -X POST -H 'Content-Type: application/json' -d '$RANK' http://127.0.0.1:6969/v1/rank"
in_a curl -s -X POST -H 'Content-Type: application/json' -d "$RANK" http://127.0.0.1:6969/v1/rank; echo
ECS='{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:10.10.1.9"],"dsts":["ipv4:10.30.4.4","ipv4:10.10.2.5","ipv4:10.20.200.1","ipv4:10.10.1.77"]}}'
show "ip netns exec $A curl -s -X POST -H 'Content-Type: application/alto-endpointcostparams+json' -H 'Accept: application/alto-endpointcost+json,application/alto-error+json' -d '$ECS' http://127.0.0.1:6969/alto/endpointcost"
in_a curl -s -X POST -H 'Content-Type: application/alto-endpointcostparams+json' \
	-H 'Accept: application/alto-endpointcost+json,application/alto-error+json' \
	-d "$ECS" http://127.0.0.1:6969/alto/endpointcost; echo

if [[ -x $ITRACKER_ROOT/tools/demo_swarm.sh ]]; then
	step "6. itrackerd as the tracker of a small swarm of real clients"
	source "$ITRACKER_ROOT/tools/demo_swarm.sh"
fi

step "Done"
echo "The demo pins under a private bpffs ($ROOT) because 'ip netns exec' remounts /sys;"
echo "on a gateway the same maps are at /sys/fs/bpf/itracker. Inspect them with, e.g.:"
echo "  bpftool map dump pinned $ROOT/counters"
echo "  bpftool map dump pinned $ROOT/matrix"
echo "  bpftool map dump pinned $ROOT/lpm_v4"
echo "(Everything above is removed when the demo exits; DEMO_KEEP=1 make demo keeps it up.)"
if [[ -n ${DEMO_KEEP:-} ]]; then
	echo "DEMO_KEEP set: daemon and namespaces stay up; press Ctrl-C to clean up."
	while sleep 3600; do :; done
fi
