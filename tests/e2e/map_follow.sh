#!/usr/bin/env bash
# map_follow.sh - a follower takes its network map from a primary over the
# ALTO update stream (RFC 8895): `itrackerd --map-from URL`, with a data
# plane attached. Every change of the primary's map reaches the follower's
# kernel tries (checked with bpftool) and its services; the follower keeps
# its map while the primary is down, and catches up when it returns.
set -euo pipefail
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
e2e_pair
e2e_bpffs

BIN=$ITRACKER_ROOT/$BUILD/itrackerd
MAP=$E2E_TMP/primary.netmap
cp "$ITRACKER_ROOT/maps/example.netmap" "$MAP"
in_a() { ip netns exec "$NS_A" "$@"; }

# The primary: no data plane, port 7001 on the namespace's loopback.
# (ip netns exec execs the daemon: $! is the daemon itself, for its signals)
ip netns exec "$NS_A" "$BIN" --no-dataplane --map "$MAP" --listen 127.0.0.1:7001 --udp off --admin-socket "$E2E_TMP/primary.sock" \
	2>>"$E2E_TMP/primary.log" &
PRIMARY=$!
E2E_PIDS+=($PRIMARY)
for i in $(seq 50); do in_a curl -fsS -o /dev/null http://127.0.0.1:7001/v1/status && break; sleep 0.1; done

# The follower: no map file, a data plane on va.
e2e_itrackerd --map-from http://127.0.0.1:7001/alto
grep -q 'map-from' "$E2E_TMP/itrackerd.log" || { cat "$E2E_TMP/itrackerd.log"; e2e_fail "follower did not say where its map comes from"; }

vtag() { in_a curl -fsS "http://127.0.0.1:$1/v1/netinfo?ip=10.10.1.1" | jq -r .vtag; }
[[ $(vtag 7001) == $(vtag 6969) ]] || e2e_fail "follower serves another map than the primary"

# 20 changes, each timed until the follower serves it.
in_a /usr/bin/python3 "$ITRACKER_ROOT/tests/e2e/lib/follow_latency.py" "$MAP" "$PRIMARY" \
	http://127.0.0.1:6969 20 || { cat "$E2E_TMP/itrackerd.log"; e2e_fail "changes did not arrive"; }

# The kernel tries hold what the follower serves: the last prefix added.
bpftool -j map dump pinned "$E2E_PIN_ROOT/lpm_v4" >"$E2E_TMP/lpm.json"
jq -e '[.[] | .formatted | select(.key.prefixlen == 24 and .key.addr == [10,77,19,0] and .value.pid == 2)] | length == 1' \
	"$E2E_TMP/lpm.json" >/dev/null || e2e_fail "10.77.19.0/24 -> a-metro2 (id 2) not in the follower's lpm_v4"

# A deletion travels too (a merge patch that shrinks a PID's prefix list):
# the primary drops 10.77.19.0/24 (one prefix of 32: well inside the
# --max-map-shrink guard that both daemons apply to every new map).
before=$(vtag 7001)
{ cat "$ITRACKER_ROOT/maps/example.netmap"
  printf 'prefix a-metro2'; for i in $(seq 0 18); do printf ' 10.77.%d.0/24' "$i"; done; echo; } >"$MAP"
kill -HUP "$PRIMARY"
for i in $(seq 50); do
	[[ $(vtag 7001) != "$before" && $(vtag 6969) == $(vtag 7001) ]] && break
	sleep 0.1
done
[[ $(vtag 7001) != "$before" ]] || { cat "$E2E_TMP/primary.log"; e2e_fail "the primary refused the deletion"; }
[[ $(vtag 6969) == $(vtag 7001) ]] || e2e_fail "the deletion did not reach the follower"
bpftool -j map dump pinned "$E2E_PIN_ROOT/lpm_v4" >"$E2E_TMP/lpm.json"
jq -e '[.[] | .formatted | select(.key.addr == [10,77,19,0])] | length == 0' "$E2E_TMP/lpm.json" \
	>/dev/null || e2e_fail "10.77.19.0/24 still in the follower's tries after the primary dropped it"
jq -e '[.[] | .formatted | select(.key.addr == [10,77,18,0])] | length == 1' "$E2E_TMP/lpm.json" \
	>/dev/null || e2e_fail "10.77.18.0/24 left the follower's tries although the primary kept it"

# The primary goes away: the follower keeps serving its map.
kept=$(vtag 6969)
kill "$PRIMARY"
wait "$PRIMARY" 2>/dev/null || true
sleep 1
[[ $(vtag 6969) == "$kept" ]] || e2e_fail "the follower lost its map when the primary stopped"

# It comes back with a changed map: the follower reconnects and catches up.
echo "prefix c-all 10.88.0.0/16" >>"$MAP"
ip netns exec "$NS_A" "$BIN" --no-dataplane --map "$MAP" --listen 127.0.0.1:7001 --udp off --admin-socket "$E2E_TMP/primary.sock" \
	2>>"$E2E_TMP/primary.log" &
E2E_PIDS+=($!)
for i in $(seq 100); do
	[[ $(in_a curl -fsS 'http://127.0.0.1:6969/v1/netinfo?ip=10.88.1.1' | jq -r .pid) == c-all ]] && break
	sleep 0.1
done
[[ $(in_a curl -fsS 'http://127.0.0.1:6969/v1/netinfo?ip=10.88.1.1' | jq -r .pid) == c-all ]] ||
	{ cat "$E2E_TMP/itrackerd.log"; e2e_fail "the follower did not catch up with the restarted primary"; }
echo "map_follow: ok"
