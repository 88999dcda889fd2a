#!/usr/bin/env bash
# tc_paged_headers.sh - the TC ingress program parses headers where they
# lie and pulls a packet into its linear part only when the headers reach
# past it. Frames whose IP and TCP headers sit in page fragments (AF_PACKET
# with a virtio-net header, hdr_len 14) must still be counted, packet for
# packet and byte for byte; a program that gave up on them, or parsed only
# the linear part, would count none.
set -euo pipefail
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
e2e_pair
e2e_bpffs
MAP=$ITRACKER_ROOT/maps/example.netmap
LIB=$ITRACKER_ROOT/tests/e2e/lib

# Frames longer than a page, so that AF_PACKET builds them paged.
ip -n "$NS_A" link set va mtu 9000
ip -n "$NS_B" link set vb mtu 9000
e2e_itrackerd --map "$MAP" --ingress-hook tc
ip netns exec "$NS_A" tc filter show dev va ingress | grep -q itr_tc_ingress ||
	e2e_fail "no TC ingress program on va"

# The ingress, inter-as, kind-none slot, read as dataplane_counts reads
# every slot (pcap_expect.measured).
slot_of_inter_as_none() {
	bpftool -j map dump pinned "$E2E_PIN_ROOT/counters" >"$E2E_TMP/counters.json"
	/usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
from pcap_expect import CLASSES, KINDS, measured
print(*measured(sys.argv[2]).get((0, CLASSES.index("inter-as"), KINDS.index("none")), (0, 0)))' \
		"$LIB" "$E2E_TMP/counters.json"
}

read -r before_pk before_by < <(slot_of_inter_as_none)
COUNT=8
LEN=$(ip netns exec "$NS_B" /usr/bin/python3 "$LIB/paged_frames.py" vb "$MAC_A" 10.30.0.2 10.10.1.2 \
	"$COUNT" 6000) || e2e_fail "could not send paged frames"
e2e_wait_counters_still "$E2E_PIN_ROOT"
read -r after_pk after_by < <(slot_of_inter_as_none)
got_pk=$((after_pk - before_pk))
got_by=$((after_by - before_by))
echo "sent $COUNT frames of $LEN bytes with paged headers; counted $got_pk packets, $got_by bytes"
((got_pk == COUNT)) || e2e_fail "counted $got_pk of $COUNT paged-header frames"
((got_by == COUNT * LEN)) || e2e_fail "counted $got_by bytes, want $((COUNT * LEN))"
echo "PASS tc_paged_headers"
