#!/usr/bin/env bash
# tc_prog_cost.sh - what itrackerd's TC programs cost per run under a real
# TCP stream: one iperf3 stream through a veth pair between two namespaces
# made here, itrackerd in TC on the receiving end, and the kernel's BPF
# run-time statistics (kernel.bpf_stats_enabled) read with bpftool.
# Prints each TC program's runs and mean ns per run (the statistics add
# the cost of two clock reads to each run).
#
#   sudo tools/bench/tc_prog_cost.sh [ITRACKERD] [SECONDS]
#
# ITRACKERD defaults to $BUILD/itrackerd (the programs are the ones built
# into that binary), SECONDS to 5. Only addresses inside the namespaces it
# makes are traffic targets.
set -euo pipefail
ROOT=${ITRACKER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${1:-$ROOT/${BUILD:-build}/itrackerd}
SECS=${2:-5}
S=itrtcs$$
R=itrtcr$$
TMP=$(mktemp -d /tmp/tc_prog_cost.XXXXXX)
cleanup() {
	set +e
	[[ -n ${DPID:-} ]] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	sysctl -q kernel.bpf_stats_enabled=0
	ip netns del "$S" 2>/dev/null
	ip netns del "$R" 2>/dev/null
	umount "$TMP/bpffs" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$S"
ip netns add "$R"
ip link add s0 netns "$S" type veth peer name r0 netns "$R"
# S in PID a-metro1, R in c-all (maps/example.netmap): an inter-AS flow
ip -n "$S" addr add 10.10.1.2/8 dev s0
ip -n "$R" addr add 10.30.0.2/8 dev r0
for n in "$S" "$R"; do ip -n "$n" link set lo up; done
ip -n "$S" link set s0 up
ip -n "$R" link set r0 up
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs"
ip netns exec "$R" "$BIN" --map "$ROOT/maps/example.netmap" -i r0 --pin-root "$TMP/bpffs/itr" \
	--listen off --udp off --ingress-hook tc 2>"$TMP/itrackerd.log" &
DPID=$!
for _ in $(seq 120); do
	grep -q "TC egress" "$TMP/itrackerd.log" && break
	kill -0 "$DPID" 2>/dev/null || { cat "$TMP/itrackerd.log" >&2; exit 1; }
	sleep 0.5
done
grep -q "TC egress" "$TMP/itrackerd.log" || { cat "$TMP/itrackerd.log" >&2; exit 1; }
ip netns exec "$R" iperf3 -s -1 -D >/dev/null
sleep 0.5
sysctl -q kernel.bpf_stats_enabled=1
ip netns exec "$S" iperf3 -c 10.30.0.2 -t "$SECS" -f g | grep receiver
sysctl -q kernel.bpf_stats_enabled=0
bpftool -j prog show | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p.get("name") in ("itr_tc_ingress", "itr_tc_egress") and p.get("run_cnt"):
        print("%-15s %9d runs %7.1f ns/run" % (p["name"], p["run_cnt"], p["run_time_ns"] / p["run_cnt"]))'
echo "reproduce: sudo tools/bench/tc_prog_cost.sh $BIN $SECS"
