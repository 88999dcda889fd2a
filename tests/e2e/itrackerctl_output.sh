#!/usr/bin/env bash
# itrackerctl_output.sh - itrackerctl against a real data plane: itrackerd
# attached to a veth in a namespace, real peer-wire exchanges through it.
# `stats --json` and `matrix --json` must equal what bpftool reads from the
# same pinned maps (summed over CPUs here with jq), the tables must show the
# same figures, `status` must see the attachments and the daemon, and after
# the daemon stops `status` must say so while `stats` still reads the pins.
E2E=ctlout$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap
CTL=$ITRACKER_ROOT/$BUILD/itrackerctl
A=${E2E}a
B=${E2E}b
[[ -x $CTL && -x $ITRACKER_ROOT/$BUILD/itrackerd ]] || e2e_fail "build itrackerd and itrackerctl first"

e2e_netns "$A"
e2e_netns "$B"
e2e_veth "$A" va "$B" vb
e2e_addr "$A" va 10.10.1.2/32
e2e_addr "$B" vb 10.30.0.2/32 10.10.1.3/32
ip -n "$A" route add 10.0.0.0/8 dev va
ip -n "$B" route add 10.0.0.0/8 dev vb

e2e_bpffs
ROOT=$E2E_PIN_ROOT
ctl() { ip netns exec "$A" "$CTL" --pin-root "$ROOT" --server http://127.0.0.1:6969 "$@"; }

e2e_bg ip netns exec "$A" "$ITRACKER_ROOT/$BUILD/itrackerd" --map "$MAP" -i va \
	--pin-root "$ROOT" --listen 127.0.0.1:6969
for _ in $(seq 100); do
	ip netns exec "$A" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && break
	sleep 0.1
done
DAEMON=${E2E_PIDS[-1]}

e2e_bg ip netns exec "$B" /usr/bin/python3 -u "$LIB/btpeers.py" serve 7000 10.30.0.2 10.10.1.3
sleep 1
# inter-AS (a-metro1 -> c-all) and intra-PID (a-metro1 -> a-metro1) exchanges.
ip netns exec "$A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.30.0.2 7000 200000 ||
	e2e_fail "inter-AS fetch"
ip netns exec "$A" /usr/bin/python3 "$LIB/btpeers.py" fetch 10.10.1.2 10.10.1.3 7000 50000 ||
	e2e_fail "intra-PID fetch"

# ---- status with the daemon up ----------------------------------------------
ctl status --json >"$E2E_TMP/status.json" || e2e_fail "status failed"
jq -e '.daemon.running == true and .daemon.http_status == 200' "$E2E_TMP/status.json" >/dev/null ||
	e2e_fail "status does not see the daemon"
# va is a veth: auto classifies its ingress on TC, not XDP
jq -e '.interfaces[] | select(.name == "va") | .tc_ingress.prog_name == "itr_tc_ingress" and
	.xdp == null and .virtual == true and .tc_egress.prog_name == "itr_tc_egress"' \
	"$E2E_TMP/status.json" >/dev/null ||
	{ cat "$E2E_TMP/status.json" >&2; e2e_fail "status does not show TC ingress and egress on va"; }
jq -e '[.maps[] | select(.pinned)] | length == 9' "$E2E_TMP/status.json" >/dev/null ||
	e2e_fail "not all 9 maps reported pinned"
# The fetches were IPv4: their flows are in the IPv4 flow cache, none in the IPv6 one.
jq -e '(.maps[] | select(.name == "flows_v4") | .entries >= 2) and
	(.maps[] | select(.name == "flows") | .entries == 0)' "$E2E_TMP/status.json" >/dev/null ||
	{ jq '.maps' "$E2E_TMP/status.json" >&2; e2e_fail "IPv4 flows not in flows_v4"; }
# example.netmap has 6 v4 prefixes: lpm_v4 must hold exactly those.
jq -e '.maps[] | select(.name == "lpm_v4") | .entries == 6' "$E2E_TMP/status.json" >/dev/null ||
	e2e_fail "lpm_v4 entry count"
VTAG=$("$CTL" map check "$MAP" --json | jq -r .vtag)
jq -e --arg v "$VTAG" '.netmap.vtag == $v and .netmap.generation >= 1' "$E2E_TMP/status.json" >/dev/null ||
	e2e_fail "status vtag/generation does not match the map"
ctl status | grep -q "daemon: http://127.0.0.1:6969 running" || e2e_fail "status table: daemon"

# ---- stats: itrackerctl vs bpftool on the same pins ---------------------------
# Let in-flight counting settle: the fetches are done, nothing else runs.
ctl stats --json >"$E2E_TMP/stats.json" || e2e_fail "stats failed"
bpftool -j map dump pinned "$ROOT/counters" >"$E2E_TMP/counters.bpftool.json"
classes='["intra_pid","intra_loc","intra_as","inter_as","unknown"]'
kinds='["none","peer_wire","utp","dht","udp_tracker","http_tracker","endpoint"]'
jq -n --slurpfile d "$E2E_TMP/counters.bpftool.json" --argjson C "$classes" --argjson K "$kinds" '
	[$d[0][] | .formatted | {i: .key, p: ([.values[].value.packets] | add), b: ([.values[].value.bytes] | add)}]
	| map({dir: (if .i < 35 then "ingress" else "egress" end),
	       cls: $C[(.i % 35 / 7 | floor)], kind: $K[.i % 7], p, b})' >"$E2E_TMP/expected.json"
mismatch=$(jq --slurpfile s "$E2E_TMP/stats.json" '
	[.[] | select($s[0][.dir][.cls][.kind].packets != .p or $s[0][.dir][.cls][.kind].bytes != .b)] | length' \
	"$E2E_TMP/expected.json")
((mismatch == 0)) || e2e_fail "$mismatch counter slots differ between itrackerctl and bpftool"
pw=$(jq '.ingress.inter_as.peer_wire.packets + .egress.inter_as.peer_wire.packets' "$E2E_TMP/stats.json")
ip_=$(jq '.ingress.intra_pid.peer_wire.packets + .egress.intra_pid.peer_wire.packets' "$E2E_TMP/stats.json")
((pw > 0 && ip_ > 0)) || e2e_fail "no peer wire traffic counted (inter_as $pw, intra_pid $ip_)"
total=$(jq '.total.packets' "$E2E_TMP/stats.json")
sum=$(jq '[.[] | .p] | add' "$E2E_TMP/expected.json")
((total == sum)) || e2e_fail "stats total $total != bpftool sum $sum"
# The table shows the same inter-AS peer-wire packet count in its total column.
row=$(ctl stats | awk '$1 == "inter_as" && $2 == "peer_wire"')
[[ -n $row ]] || e2e_fail "table has no inter_as/peer_wire row"
ctl stats | head -1 | grep -q "IN PKTS" || e2e_fail "table header"
ctl stats | grep -q "^total " || e2e_fail "table has no total row"

# ---- matrix -------------------------------------------------------------------
# The fetches' packets after each flow's first wait in their flow entries
# until a fold; `itrackerctl matrix` runs the pinned fold program first, so
# the pairs are there now, not up to a second later.
[[ -e $ROOT/prog_fold ]] || e2e_fail "the fold program is not pinned"
# The daemon folds by itself every second: within a few seconds of the
# fetches, no flow entry holds unfolded counts (nothing here folds but it).
unfolded() { bpftool -j map dump pinned "$ROOT/flows_v4" | jq '[.[].formatted.value.unfolded[] | select(. != 0)] | length'; }
for _ in $(seq 30); do (($(unfolded) == 0)) && break; sleep 0.1; done
(($(unfolded) == 0)) || e2e_fail "the daemon left unfolded counts in $(unfolded) flow directions"
ctl matrix --map "$MAP" --json >"$E2E_TMP/matrix.json" || e2e_fail "matrix failed"
bpftool -j map dump pinned "$ROOT/matrix" |
	jq '[.[] | .formatted | {s: .key.src_pid, d: .key.dst_pid, b: ([.values[].value.bytes] | add)}]' >"$E2E_TMP/mexp.json"
mm=$(jq --slurpfile m "$E2E_TMP/matrix.json" '
	[.[] as $e | select(([$m[0].pairs[] | select(.src_pid == $e.s and .dst_pid == $e.d) | .bytes] | first) != $e.b)] | length' \
	"$E2E_TMP/mexp.json")
((mm == 0)) || e2e_fail "$mm matrix pairs differ from bpftool"
jq -e '.pairs[] | select(.src_name == "a-metro1" and .dst_name == "c-all" and .scope == "inter_as")' \
	"$E2E_TMP/matrix.json" >/dev/null || e2e_fail "matrix lacks a-metro1 -> c-all (inter_as)"
jq -e '.inter_as_ratio > 0 and .inter_as_ratio < 1' "$E2E_TMP/matrix.json" >/dev/null ||
	e2e_fail "inter-AS ratio not strictly between 0 and 1"
ctl matrix --map "$MAP" | grep -q "a-metro1 .*c-all .*inter_as" || e2e_fail "matrix table"

# ---- netinfo / rank through the daemon --------------------------------------
ctl netinfo 10.30.0.9 --json | jq -e '.pid == "c-all" and .asid == 64502' >/dev/null ||
	e2e_fail "netinfo"
ctl rank 10.10.1.2 10.30.0.2:6881 10.10.1.3:6881 --json |
	jq -e '.peers[0].pid == "a-metro1"' >/dev/null || e2e_fail "rank: own PID first"

# ---- daemon down --------------------------------------------------------------
kill "$DAEMON"
wait "$DAEMON" 2>/dev/null || true
ctl status --json >"$E2E_TMP/status2.json" || e2e_fail "status without daemon must exit 0"
jq -e '.daemon.running == false' "$E2E_TMP/status2.json" >/dev/null || e2e_fail "daemon still reported"
ctl status | grep -q "not running" || e2e_fail "status table: not running"
rc=0
ctl netinfo 10.30.0.9 >/dev/null 2>&1 || rc=$?
((rc == 3)) || e2e_fail "netinfo with the daemon down: exit $rc, want 3"
# a daemon port that accepts and never answers: --timeout bounds the wait
e2e_bg ip netns exec "$A" /usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 6970)); s.listen(8); time.sleep(60)'
sleep 0.3
rc=0
start=$(date +%s%N)
ip netns exec "$A" "$CTL" --server http://127.0.0.1:6970 --timeout 1 netinfo 10.30.0.9 \
	>/dev/null 2>"$E2E_TMP/silent.err" || rc=$?
took_ms=$((($(date +%s%N) - start) / 1000000))
((rc == 1)) || e2e_fail "netinfo against a silent daemon: exit $rc, want 1"
((took_ms >= 900 && took_ms < 3000)) || e2e_fail "--timeout 1 took $took_ms ms"
grep -q "no answer from 127.0.0.1 port 6970 within 1 s" "$E2E_TMP/silent.err" ||
	e2e_fail "silent daemon: $(cat "$E2E_TMP/silent.err")"
rc=0
ctl stats --bogus >/dev/null 2>&1 || rc=$?
((rc == 2)) || e2e_fail "usage error: exit $rc, want 2"
if [[ -e $ROOT/counters ]]; then
	ctl stats --json | jq -e '.total.packets >= '"$total" >/dev/null || e2e_fail "stats after daemon exit"
fi
for sub in status stats matrix netinfo rank map classify metrics; do
	"$CTL" "$sub" --help | grep -q "usage: itrackerctl $sub" || e2e_fail "$sub --help"
done
echo "itrackerctl_output: ok"
