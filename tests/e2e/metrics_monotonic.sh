#!/usr/bin/env bash
# metrics_monotonic.sh - /metrics announce counters count each transport and
# outcome directly and never go down while HTTP and UDP tracker traffic of
# every kind is mixed (UDP connects and scrapes once made the HTTP count
# drop, 7 -> 5). itrackerd without a data plane on its own namespace's
# loopback.
E2E=metmono$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

NS=${E2E}a
e2e_netns "$NS"
ip -n "$NS" link set lo up
e2e_bg ip netns exec "$NS" "$ITRACKER_ROOT/$BUILD/itrackerd" --no-dataplane \
	--map "$ITRACKER_ROOT/maps/example.netmap" --listen 127.0.0.1:6969 --udp 6969 \
	--udp-bind 127.0.0.1 --loopback-peers yes
for _ in $(seq 100); do
	ip netns exec "$NS" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break
	sleep 0.1
done
ip netns exec "$NS" python3 "$ITRACKER_ROOT/tests/e2e/lib/metrics_monotonic.py" 127.0.0.1 6969 ||
	e2e_fail "announce counters"
echo "metrics_monotonic: ok"
