#!/usr/bin/env bash
# restart_upgrade.sh - the data plane never loses a packet's count across a
# crash, a restart or an upgrade.
#
# 1. Restart: traffic runs; itrackerd is killed with SIGKILL (no chance to
#    clean up); traffic continues; a new itrackerd adopts the pinned maps
#    and links (no second attachment).
# 2. Upgrade: a different build of the BPF object (ITR_BUILD_ID=2, which
#    the programs read from .rodata) replaces the running program through
#    the pinned XDP link (atomic) while traffic runs; the program running
#    on the link and on TC afterwards must be that build.
# At the end the counters equal, slot by slot, what a capture of the whole
# run says was sent: nothing lost, nothing counted twice, no packet
# unclassified.
E2E=itrru$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap

e2e_pair
e2e_bpffs

# A second, different build of the program for the upgrade.
clang -g -O2 -target bpf -Wall -Wextra -Werror -D__TARGET_ARCH_x86 -DITR_BUILD_ID=2 \
	-I/usr/include/$(gcc -print-multiarch) -I"$ITRACKER_ROOT/maps" -I"$ITRACKER_ROOT/bpf" \
	-c "$ITRACKER_ROOT/bpf/locality.bpf.c" -o "$E2E_TMP/locality-v2.bpf.o"

e2e_capture_start
e2e_itrackerd --map "$MAP" --ingress-hook xdp # the pinned XDP link is what this test upgrades
prog_id() { bpftool -j link show pinned "$E2E_PIN_ROOT/link_xdp_va" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])'; }
# The itr_build_id in the .rodata map bound to a running program.
build_id() { # prog_id
	local map
	for map in $(bpftool -j prog show id "$1" | /usr/bin/python3 -c 'import json,sys; print(*json.load(sys.stdin).get("map_ids", []))'); do
		bpftool -j map dump id "$map" | /usr/bin/python3 -c '
import json, sys
def find(v):
    if isinstance(v, dict):
        if "itr_build_id" in v:
            return v["itr_build_id"]
        v = list(v.values())
    if isinstance(v, list):
        for x in v:
            r = find(x)
            if r is not None:
                return r
    return None
r = find(json.load(sys.stdin))
if r is not None:
    print(r)'
	done
}
tc_prog_id() { ip netns exec "$NS_A" bpftool -j net show dev va | /usr/bin/python3 -c '
import json, sys
for dev in json.load(sys.stdin):
    for f in dev.get("tc", []):
        if f.get("kind") == "clsact/egress":
            print(f["id"])'; }
PROG1=$(prog_id)
[[ $(build_id "$PROG1") == 1 ]] || e2e_fail "the first program is not build 1 (got '$(build_id "$PROG1")')"

e2e_bg ip netns exec "$NS_B" /usr/bin/python3 "$LIB/btpeers.py" serve 7000 10.30.0.2 10.10.1.3
sleep 1
# ~6 s of paced BitTorrent traffic in both families of flows.
ip netns exec "$NS_A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.30.0.2 7000 3000000 --rate 500000 &
T1=$!
ip netns exec "$NS_A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.2.2 10.10.1.3 7000 3000000 --rate 500000 &
T2=$!

sleep 1.5
kill -KILL "$ITRD_PID"
wait "$ITRD_PID" 2>/dev/null || true
ip -n "$NS_A" link show va | grep -q xdp || e2e_fail "XDP gone after SIGKILL"
sleep 1
e2e_itrackerd --map "$MAP" --ingress-hook xdp --keep-attached
grep -q 'XDP native (adopted)\|XDP generic (adopted)' "$E2E_TMP/itrackerd.log" || {
	cat "$E2E_TMP/itrackerd.log"
	e2e_fail "restarted itrackerd did not adopt the pinned link"
}
[[ $(prog_id) != "$PROG1" ]] || e2e_fail "restart did not load its own program"
[[ $(ip netns exec "$NS_A" tc filter show dev va egress | grep -c 'handle') -eq 1 ]] ||
	e2e_fail "TC filter attached twice"

sleep 1
# Upgrade while traffic runs: the old daemon leaves the data plane attached.
kill -TERM "$ITRD_PID"
wait "$ITRD_PID" 2>/dev/null || true
PROG2=$(prog_id)
# (checked now: once replaced, the old program is freed)
[[ $(build_id "$PROG2") == 1 ]] || e2e_fail "before the upgrade the program was not build 1"
e2e_itrackerd --map "$MAP" --ingress-hook xdp --bpf-object "$E2E_TMP/locality-v2.bpf.o" --keep-attached
PROG3=$(prog_id)
[[ $PROG3 != "$PROG2" ]] || e2e_fail "upgrade did not replace the program"
[[ $(build_id "$PROG3") == 2 ]] || e2e_fail "XDP after the upgrade runs build '$(build_id "$PROG3")', not 2"
TC3=$(tc_prog_id)
[[ -n $TC3 && $(build_id "$TC3") == 2 ]] || e2e_fail "TC after the upgrade runs build '$(build_id "$TC3")', not 2"

wait $T1 || e2e_fail "traffic 1 broke"
wait $T2 || e2e_fail "traffic 2 broke"
sleep 0.5
e2e_quiesce "$NS_B" # the peer, so nothing is sent after the capture
e2e_capture_stop
e2e_counters_match_capture "$MAP" || e2e_fail "counters differ from the capture"
echo "PASS restart_upgrade (programs $PROG1 -> $PROG2 -> $PROG3)"
