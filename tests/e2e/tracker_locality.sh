#!/usr/bin/env bash
# tracker_locality.sh - the tracker's answers, checked against the ranking
# rule documented in user/rank.c (re-implemented independently in
# lib/announce_check.py from the map file and BEP 40): a swarm over six
# PIDs of maps/example.netmap (one PID and one AS with a single peer) names
# its peers with ip= from loopback (--trusted-proxy 127.0.0.1). Every
# peer's list for numwant 5, 8 and 50 must be exactly the rule's list (own
# PID first, reserve, caps, top-up), twice in a row; a peer alone in its
# PID gets other PIDs, a peer alone in its AS a full enough list. Run for
# the default policy, one where every knob bites, and two with an external
# budget per AS (--gateways): every AS still reaches the others.
E2E=trloc$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap
ITRD=$ITRACKER_ROOT/$BUILD/itrackerd
[[ -x $ITRD ]] || e2e_fail "build itrackerd first"
NS=${E2E}n
e2e_netns "$NS" # its own loopback: no port clashes with anything else

run() { # policy: PID_PCT AS_PCT MIN_EXT MAX_EXT MIN_LIST GATEWAYS
	e2e_bg ip netns exec "$NS" "$ITRD" --map "$MAP" --no-dataplane --listen 127.0.0.1:6969 \
		--udp off --trusted-proxy 127.0.0.1 --accept-ip-param --own-pid-share "$1" --own-as-share "$2" \
		--min-external "$3" --max-external "$4" --min-list "$5" --gateways "$6" 2>>"$E2E_TMP/itrackerd.log"
	local pid=${E2E_PIDS[-1]}
	for _ in $(seq 100); do
		ip netns exec "$NS" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break
		sleep 0.1
	done
	ip netns exec "$NS" /usr/bin/python3 "$LIB/announce_check.py" locality \
		http://127.0.0.1:6969/announce "$MAP" "$@" || e2e_fail "policy $*"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

run 100 100 1 2 3 1  # itrackerd's defaults (rank.c): one gateway per AS
run 100 100 1 2 11 0 # the per-list budget: every list gets outsiders
run 50 75 2 3 6 0    # shares, a larger reserve and budget, a short top-up
run 75 100 1 1 6 2   # two gateways, a share and a top-up that bites
echo "PASS: tracker_locality"
