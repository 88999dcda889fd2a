#!/usr/bin/env bash
# metrics_promtool.sh - the Prometheus exposition passes `promtool check
# metrics` (lint findings count as failures): itrackerd's own GET /metrics
# after real traffic, and `itrackerctl metrics` both printed from the pins
# and served with --listen.
E2E=promchk$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap
CTL=$ITRACKER_ROOT/$BUILD/itrackerctl
command -v promtool >/dev/null || e2e_fail "promtool missing (package prometheus)"
A=${E2E}a
B=${E2E}b

e2e_netns "$A"
e2e_netns "$B"
e2e_veth "$A" va "$B" vb
e2e_addr "$A" va 10.10.1.2/32
e2e_addr "$B" vb 10.30.0.2/32
ip -n "$A" route add 10.0.0.0/8 dev va
ip -n "$B" route add 10.0.0.0/8 dev vb
e2e_bpffs
ROOT=$E2E_PIN_ROOT

e2e_bg ip netns exec "$A" "$ITRACKER_ROOT/$BUILD/itrackerd" --map "$MAP" -i va \
	--pin-root "$ROOT" --listen 127.0.0.1:6969
for _ in $(seq 100); do
	ip netns exec "$A" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break
	sleep 0.1
done
e2e_bg ip netns exec "$B" /usr/bin/python3 -u "$LIB/btpeers.py" serve 7000 10.30.0.2
sleep 1
ip netns exec "$A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.30.0.2 7000 100000 ||
	e2e_fail "fetch"

check() { # file what
	local out
	if ! out=$(promtool check metrics <"$1" 2>&1); then
		echo "$out" >&2
		e2e_fail "$2: promtool check metrics failed"
	fi
	[[ -z $out ]] || { echo "$out" >&2; e2e_fail "$2: promtool findings"; }
}

ip netns exec "$A" curl -fsS -D "$E2E_TMP/headers" http://127.0.0.1:6969/metrics >"$E2E_TMP/daemon.prom" ||
	e2e_fail "GET /metrics on itrackerd"
grep -qi '^content-type: text/plain; version=0.0.4' "$E2E_TMP/headers" || e2e_fail "content type"
check "$E2E_TMP/daemon.prom" itrackerd
for family in itracker_packets_total itracker_bytes_total itracker_matrix_bytes_total \
	itracker_inter_as_bytes_ratio itracker_netmap_generation itracker_netmap_info \
	process_resident_memory_bytes process_cpu_seconds_total process_start_time_seconds \
	process_open_fds; do
	grep -q "^# TYPE $family " "$E2E_TMP/daemon.prom" || e2e_fail "itrackerd /metrics lacks $family"
done
grep -q '^itracker_dataplane_up 1$' "$E2E_TMP/daemon.prom" || e2e_fail "data plane not up"
grep -Eq '^itracker_packets_total\{direction="(ingress|egress)",class="inter_as",kind="peer_wire"\} [1-9]' \
	"$E2E_TMP/daemon.prom" || e2e_fail "no inter-AS peer-wire packets in /metrics"

ip netns exec "$A" "$CTL" --pin-root "$ROOT" metrics >"$E2E_TMP/ctl.prom" || e2e_fail "itrackerctl metrics"
check "$E2E_TMP/ctl.prom" "itrackerctl metrics"
grep -q '^itracker_dataplane_up 1$' "$E2E_TMP/ctl.prom" || e2e_fail "ctl: data plane not up"

ip netns exec "$A" "$CTL" --pin-root "$ROOT" metrics --listen 127.0.0.1:0 >"$E2E_TMP/listen.out" &
E2E_PIDS+=($!)
e2e_wait_file "$E2E_TMP/listen.out"
for _ in $(seq 50); do grep -q serving "$E2E_TMP/listen.out" && break; sleep 0.1; done
URL=$(awk '/^serving/ {print $2}' "$E2E_TMP/listen.out")
[[ -n $URL ]] || e2e_fail "itrackerctl metrics --listen did not start"
ip netns exec "$A" curl -fsS "$URL" >"$E2E_TMP/served.prom" || e2e_fail "GET $URL"
check "$E2E_TMP/served.prom" "itrackerctl metrics --listen"

# With no data plane at all the exposition is still valid.
"$CTL" --pin-root "$E2E_TMP/nothing-here" metrics >"$E2E_TMP/down.prom"
check "$E2E_TMP/down.prom" "data plane down"
grep -q '^itracker_dataplane_up 0$' "$E2E_TMP/down.prom" || e2e_fail "down not reported"
echo "metrics_promtool: ok"
