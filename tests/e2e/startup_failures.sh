#!/usr/bin/env bash
# startup_failures.sh - itrackerd refused at start leaves nothing behind.
#
# Bad options (checked only after attaching, once) must be refused before
# the data plane is touched; failures after attaching (an HTTP port in use)
# must detach what was attached; a map larger than the kernel tries must be
# named as such by `itrackerctl map check` and at start, write nothing into
# the pinned tries, and leave the next start (with the example map) working.
E2E=itrsf$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

MAP=$ITRACKER_ROOT/maps/example.netmap
CTL=$ITRACKER_ROOT/$BUILD/itrackerctl
e2e_pair
e2e_bpffs
ROOT=$E2E_PIN_ROOT

itrd() { # expected-exit-status args... ; runs itrackerd in namespace a on va
	local want=$1 rc=0
	shift
	ip netns exec "$NS_A" "$ITRACKER_ROOT/$BUILD/itrackerd" -i va --pin-root "$ROOT" "$@" \
		>"$E2E_TMP/out.log" 2>&1 || rc=$?
	if [[ $rc != "$want" ]]; then
		cat "$E2E_TMP/out.log" >&2
		e2e_fail "itrackerd $* exited $rc, expected $want"
	fi
}

nothing_attached() { # what
	if ip -n "$NS_A" link show va | grep -q xdp; then
		e2e_fail "$1: XDP left attached on va"
	fi
	if [[ -n $(ip netns exec "$NS_A" tc filter show dev va egress 2>/dev/null) ]]; then
		e2e_fail "$1: TC egress filter left on va"
	fi
	if [[ -n $(ip netns exec "$NS_A" tc filter show dev va ingress 2>/dev/null) ]]; then
		e2e_fail "$1: TC ingress filter left on va"
	fi
	if compgen -G "$ROOT/link_*" >/dev/null || compgen -G "$ROOT/links/*" >/dev/null; then
		e2e_fail "$1: a pinned link was left under $ROOT"
	fi
	echo "ok: $1: nothing attached"
}

# 1. Options that are wrong whatever the kernel does: exit 2, nothing touched.
for bad in "--listen bogus" "--udp bogus" "--udp 70000" "--listen 127.0.0.1:99999"; do
	# shellcheck disable=SC2086
	itrd 2 --map "$MAP" $bad
	grep -q "Try 'itrackerd --help'" "$E2E_TMP/out.log" || e2e_fail "$bad: no usage hint"
	nothing_attached "$bad"
done
itrd 2 --map "$MAP" --listen 127.0.0.1:0 --udp off --upstream "ftp://example.invalid/"
nothing_attached "--upstream ftp://"

# 2. A failure after attaching (the HTTP port is taken): exit 1, detached.
ip netns exec "$NS_A" python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 6970)); s.listen(); print("ready", flush=True); time.sleep(60)' \
	>"$E2E_TMP/holder.log" &
E2E_PIDS+=($!)
e2e_wait_file "$E2E_TMP/holder.log"
for i in $(seq 50); do grep -q ready "$E2E_TMP/holder.log" && break; sleep 0.1; done
itrd 1 --map "$MAP" --listen 127.0.0.1:6970 --udp off
nothing_attached "HTTP port in use"

# 3. A map larger than the IPv4 trie (2,000,000 prefixes): 2,000,001 /32s.
BIG=$E2E_TMP/big.netmap
python3 - "$BIG" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("pid big id 1 asn 64500\n")
    n, per_line = 2000001, 1000
    for start in range(0, n, per_line):
        ips = (f"11.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32"
               for i in range(start, min(n, start + per_line)))
        f.write("prefix big " + " ".join(ips) + "\n")
PY
rc=0
"$CTL" map check "$BIG" >"$E2E_TMP/check.out" 2>&1 || rc=$?
cat "$E2E_TMP/check.out"
[[ $rc == 1 ]] || e2e_fail "map check of an oversized map exited $rc, expected 1"
grep -q "2000001 IPv4 prefixes" "$E2E_TMP/check.out" || e2e_fail "map check does not count them"
grep -q "at most 2000000" "$E2E_TMP/check.out" || e2e_fail "map check does not name the capacity"
"$CTL" map check "$MAP" | grep -q "of at most 2000000" || e2e_fail "map check hides the capacities"

trie_v4_entries() {
	bpftool -j map dump pinned "$ROOT/lpm_v4" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
# The failed start above left the example map's prefixes, as any stop does.
before=$(trie_v4_entries)
itrd 2 --map "$BIG" --listen 127.0.0.1:0 --udp off
cat "$E2E_TMP/out.log"
grep -q "at most 2000000" "$E2E_TMP/out.log" || e2e_fail "start does not name the capacity"
if grep -q "previous map" "$E2E_TMP/out.log"; then
	e2e_fail "start speaks of a previous map where there was none"
fi
nothing_attached "oversized map"
after=$(trie_v4_entries)
[[ $after == "$before" ]] || e2e_fail "the oversized map changed the IPv4 trie ($before -> $after entries)"

# 4. A binary file and an empty map: said plainly, no raw bytes.
head -c 256 "$ITRACKER_ROOT/$BUILD/itrackerd" >"$E2E_TMP/binary.map"
rc=0
"$CTL" map check "$E2E_TMP/binary.map" >"$E2E_TMP/check.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || e2e_fail "map check of a binary file exited $rc"
grep -q "looks like a binary file" "$E2E_TMP/check.out" || e2e_fail "binary file not named as such"
if LC_ALL=C grep -q '[^[:print:][:space:]]' "$E2E_TMP/check.out"; then
	e2e_fail "map check printed raw bytes of a binary file"
fi
printf '# nothing yet\n' >"$E2E_TMP/empty.map"
"$CTL" map check "$E2E_TMP/empty.map" >"$E2E_TMP/check.out" 2>&1 ||
	e2e_fail "an empty map is valid (with a warning)"
grep -q "warning: the map is empty" "$E2E_TMP/check.out" || e2e_fail "no warning for an empty map"
echo "ok: binary and empty maps reported"

# The next start, with the example map, works; its --policy is in the
# policy map, and a start without --policy clears what it left.
policy_of() { # class index -> "dscp mark"
	bpftool -j map dump pinned "$ROOT/policy" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    e = e.get("formatted", e)
    if int(e["key"]) == int(sys.argv[1]):
        print(e["value"]["dscp"], e["value"]["mark"])' "$1"
}
e2e_itrackerd --map "$MAP" --policy inter-as:dscp=8,mark=0x10
ip netns exec "$NS_A" curl -fsS http://127.0.0.1:6969/v1/status | grep '"tc_egress":true' >/dev/null ||
	e2e_fail "itrackerd with the example map did not attach after the failed start"
[[ $(policy_of 3) == "8 16" ]] || e2e_fail "inter-as policy is '$(policy_of 3)', expected '8 16'"
kill "$ITRD_PID"
wait "$ITRD_PID" 2>/dev/null || true
e2e_itrackerd --map "$MAP"
[[ $(policy_of 3) == "0 0" ]] || e2e_fail "a start without --policy kept '$(policy_of 3)'"
echo "ok: --policy written at start, cleared by the next start"
# libbpf's expected "no" answers (no clsact qdisc yet, no filter, the qdisc
# exists already) are probes, not warnings: none reach the operator.
if grep -iE "libbpf|qdisc|filter chain|exclusivity" "$E2E_TMP/itrackerd.log" "$E2E_TMP/out.log"; then
	e2e_fail "libbpf noise on a normal start"
fi
kill "$ITRD_PID"
wait "$ITRD_PID" 2>/dev/null || true
ip netns exec "$NS_A" "$ITRACKER_ROOT/$BUILD/itrackerd" --purge --pin-root "$ROOT" >"$E2E_TMP/out.log" 2>&1 ||
	e2e_fail "--purge failed"
if grep -iE "libbpf|qdisc|filter chain|exclusivity" "$E2E_TMP/out.log"; then
	e2e_fail "libbpf noise on --purge"
fi
echo "startup_failures: all checks passed"
