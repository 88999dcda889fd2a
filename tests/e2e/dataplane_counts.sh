#!/usr/bin/env bash
# dataplane_counts.sh - real traffic between two namespaces through a veth
# pair with itrackerd attached on one end; the counters read with
# `bpftool map dump` must equal what a packet capture of the same interface
# says was sent, slot by slot (direction x class x kind).
#
# Traffic: two real libtorrent transfers (IPv4 and IPv6, inter-AS), scripted
# peer-wire exchanges covering the intra-pid, intra-loc, intra-as and
# unknown classes, and a TCP exchange that is not BitTorrent.
E2E=itrdp$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap
e2e_pair
A=$NS_A
B=$NS_B
e2e_bpffs
ROOT=$E2E_PIN_ROOT
# ITR_INGRESS_HOOK: auto (TC on a veth), or xdp (dataplane_counts_xdp.sh)
HOOK=${ITR_INGRESS_HOOK:-auto}
e2e_bg ip netns exec "$A" "$ITRACKER_ROOT/$BUILD/itrackerd" --map "$MAP" -i va \
	--pin-root "$ROOT" --listen 127.0.0.1:6969 --ingress-hook "$HOOK"
for i in $(seq 100); do
	ip netns exec "$A" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break
	sleep 0.1
done
ip netns exec "$A" curl -fsS http://127.0.0.1:6969/v1/status | grep '"tc_egress":true' >/dev/null ||
	e2e_fail "itrackerd did not attach"
if [[ $HOOK == xdp ]]; then
	ip -n "$A" link show va | grep -q xdp || e2e_fail "no XDP program on va"
else
	ip netns exec "$A" tc filter show dev va ingress | grep -q itr_tc_ingress ||
		e2e_fail "no TC ingress program on va (auto on a veth)"
	ip -n "$A" link show va | grep -q xdp && e2e_fail "XDP on va although ingress is TC"
fi

# Content for the real transfers.
head -c 3000000 /dev/urandom >"$E2E_TMP/payload.bin"
/usr/bin/python3 "$LIB/lt_transfer.py" make "$E2E_TMP/payload.bin" "$E2E_TMP/payload.torrent"
mkdir -p "$E2E_TMP/leech4" "$E2E_TMP/leech6"

MAC=$MAC_A
e2e_capture_start

e2e_bg ip netns exec "$B" /usr/bin/python3 "$LIB/lt_transfer.py" seed "$E2E_TMP/payload.torrent" "$E2E_TMP" 10.30.0.2 6881
e2e_bg ip netns exec "$B" /usr/bin/python3 "$LIB/lt_transfer.py" seed "$E2E_TMP/payload.torrent" "$E2E_TMP" fd00:30::2 6882
e2e_bg ip netns exec "$B" /usr/bin/python3 -u "$LIB/btpeers.py" serve 7000 10.10.1.3 10.10.3.3 10.30.0.2
e2e_bg ip netns exec "$B" /usr/bin/python3 -u "$LIB/btpeers.py" serve 7001 10.30.0.2
sleep 2

ip netns exec "$A" /usr/bin/python3 "$LIB/lt_transfer.py" leech "$E2E_TMP/payload.torrent" \
	"$E2E_TMP/leech4" 10.10.1.2 10.30.0.2 6881 --timeout 60 || e2e_fail "IPv4 transfer"
ip netns exec "$A" /usr/bin/python3 "$LIB/lt_transfer.py" leech "$E2E_TMP/payload.torrent" \
	"$E2E_TMP/leech6" fd00:10:1::2 fd00:30::2 6882 --timeout 60 || e2e_fail "IPv6 transfer"
cmp "$E2E_TMP/payload.bin" "$E2E_TMP/leech4/payload.bin" || e2e_fail "IPv4 download differs"
cmp "$E2E_TMP/payload.bin" "$E2E_TMP/leech6/payload.bin" || e2e_fail "IPv6 download differs"

fetch() { ip netns exec "$A" /usr/bin/python3 "$LIB/btpeers.py" fetch "$@" || e2e_fail "fetch $*"; }
fetch 10.10.1.2 10.10.1.3 7000 200000          # intra-pid
fetch 10.10.1.2 10.10.3.3 7000 200000          # intra-loc (a-metro1 / a-metro1-dc)
fetch 10.10.2.2 10.10.3.3 7000 200000          # intra-as (loc 2 / loc 1)
fetch 10.99.0.2 10.30.0.2 7000 100000          # unknown (no PID)
fetch 10.10.1.2 10.30.0.2 7001 300000 --plain  # inter-as, not BitTorrent

# Stop the peers (all of them in B) while the capture still runs: their
# last packets (FIN, RST) are then both captured and counted.
e2e_quiesce "$B"
e2e_capture_stop

# e2e_capture_stop took the counters (counters.json) when the capture ended
echo "operator command: bpftool map dump pinned $ROOT/counters"
bpftool map dump pinned "$ROOT/counters" >"$E2E_TMP/counters.txt"
head -n 20 "$E2E_TMP/counters.txt"
/usr/bin/python3 "$LIB/pcap_expect.py" "$E2E_TMP/cap.pcap" "$MAC" "$MAP" "$E2E_TMP/counters.json" ||
	e2e_fail "counters differ from the capture"

# A clean stop detaches (maps stay pinned for the next start).
kill -TERM "${E2E_PIDS[0]}"
wait "${E2E_PIDS[0]}" || e2e_fail "itrackerd exit status $?"
ip -n "$A" link show va | grep -q xdp && e2e_fail "XDP still attached after stop"
[[ -z $(ip netns exec "$A" tc filter show dev va egress) ]] || e2e_fail "TC filter left after stop"
[[ -z $(ip netns exec "$A" tc filter show dev va ingress) ]] || e2e_fail "TC ingress filter left after stop"
[[ -e $ROOT/counters ]] || e2e_fail "counters map not kept pinned"
echo "PASS dataplane_counts"
