#!/usr/bin/env bash
# least_privilege.sh - itrackerd --user: after loading and attaching the
# data plane it runs as that user with only CAP_NET_ADMIN (to detach on
# exit) in its effective, permitted and bounding sets; and everything it
# still does works without the rest: a map reload (SIGHUP and the admin
# endpoint) writes the kernel tries through the map fds it holds, /metrics
# opens the pinned maps, and SIGTERM detaches XDP and TC. Then the way
# tools/systemd/itrackerd.service starts it: as the user already, with
# CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN as ambient capabilities (setpriv
# plays systemd's User= and AmbientCapabilities=): after the load only
# CAP_NET_ADMIN is left.
E2E=itrpriv$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

e2e_pair
e2e_bpffs
MAP=$E2E_TMP/network.map
cp "$ITRACKER_ROOT/maps/example.netmap" "$MAP"
# the map must stay readable for the user (as /etc/itracker is for itracker)
chmod 755 "$E2E_TMP"
chmod 644 "$MAP"
# the admin socket's directory does not exist yet: the daemon makes it
# and gives it to the user before it drops root
E2E_ADMIN_SOCK=$E2E_TMP/run/admin.sock
e2e_itrackerd --map "$MAP" --user nobody

st=/proc/$ITRD_PID/status
grep -E '^(Uid|Gid|Cap)' "$st"
uid=$(awk '/^Uid:/ {print $2 $3 $4 $5}' "$st")
[[ $uid == 65534655346553465534 ]] || e2e_fail "uids are $uid, not nobody's"
# CAP_NET_ADMIN is bit 12
for set in CapEff CapPrm CapBnd; do
	v=$(awk -v s="$set:" '$1 == s {print $2}' "$st")
	[[ $v == 0000000000001000 ]] || e2e_fail "$set is $v, want only CAP_NET_ADMIN"
done
[[ $(awk '$1 == "CapAmb:" {print $2}' "$st") == 0000000000000000 ]] || e2e_fail "ambient caps left"
grep -q "running as nobody" "$E2E_TMP/itrackerd.log" || e2e_fail "no log line about the user"

in_a() { ip netns exec "$NS_A" "$@"; }
trie_has() { # dotted prefix start, e.g. "10 77"
	bpftool -j map dump pinned "$E2E_PIN_ROOT/lpm_v4" |
		python3 -c 'import json,sys; want=[int(x) for x in sys.argv[1:]]
d=json.load(sys.stdin)
print(any([int(b,0) for b in e["key"][4:4+len(want)]]==want for e in d))' "$@"
}
ls "$E2E_PIN_ROOT" >/dev/null
[[ $(trie_has 10 77) == False ]] || e2e_fail "10.77/16 in the trie before the reload"

# 1. SIGHUP with a new prefix: the trie gets it without CAP_BPF
echo "prefix a-metro1 10.77.0.0/16" >>"$MAP"
kill -HUP "$ITRD_PID"
for _ in $(seq 50); do
	[[ $(trie_has 10 77) == True ]] && break
	sleep 0.1
done
[[ $(trie_has 10 77) == True ]] || e2e_fail "SIGHUP reload did not reach the trie: $(tail -3 "$E2E_TMP/itrackerd.log")"
[[ $(in_a curl -fsS "http://127.0.0.1:6969/v1/netinfo?ip=10.77.1.1" | jq -r .pid) == a-metro1 ]] ||
	e2e_fail "netinfo does not know 10.77.1.1"
# 2. the admin reload, another prefix
echo "prefix a-metro2 10.78.0.0/16" >>"$MAP"
"$ITRACKER_ROOT/$BUILD/itrackerctl" --admin-socket "$E2E_ADMIN_SOCK" map reload >/dev/null ||
	e2e_fail "admin reload over $E2E_ADMIN_SOCK"
[[ $(trie_has 10 78) == True ]] || e2e_fail "admin reload did not reach the trie"
# 3. /metrics reads the pinned maps
in_a curl -fsS http://127.0.0.1:6969/metrics | grep '^itracker_dataplane_up 1' >/dev/null ||
	e2e_fail "/metrics cannot read the data plane as nobody"
# 4. SIGTERM detaches
kill -TERM "$ITRD_PID"
for _ in $(seq 50); do kill -0 "$ITRD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$ITRD_PID" 2>/dev/null && e2e_fail "itrackerd did not stop"
wait "$ITRD_PID" 2>/dev/null
rc=$?
((rc == 0)) || e2e_fail "exit status $rc: $(tail -3 "$E2E_TMP/itrackerd.log")"
in_a ip link show va | grep -q xdp && e2e_fail "XDP still attached after exit"
[[ -z $(in_a tc filter show dev va egress) ]] || e2e_fail "tc filter still attached after exit"

# 5. as systemd starts it: already nobody, with ambient capabilities
ip netns exec "$NS_A" "$ITRACKER_ROOT/$BUILD/itrackerd" --purge --pin-root "$E2E_PIN_ROOT" >/dev/null
install -d -o nobody -g 65534 -m 0700 "$E2E_PIN_ROOT" "$E2E_TMP/run2"
: >"$E2E_TMP/itrackerd.log"
chmod 666 "$E2E_TMP/itrackerd.log"
ip netns exec "$NS_A" setpriv --reuid=65534 --regid=65534 --clear-groups \
	--bounding-set=-all,+bpf,+perfmon,+net_admin --inh-caps=-all,+bpf,+perfmon,+net_admin \
	--ambient-caps=+bpf,+perfmon,+net_admin -- \
	"$ITRACKER_ROOT/$BUILD/itrackerd" -i va --pin-root "$E2E_PIN_ROOT" --listen 127.0.0.1:6969 \
	--udp off --map "$MAP" --user nobody --admin-socket "$E2E_TMP/run2/admin.sock" \
	2>>"$E2E_TMP/itrackerd.log" &
ITRD_PID=$!
E2E_PIDS+=($ITRD_PID)
e2e_wait_http_in "$NS_A" http://127.0.0.1:6969/v1/status || e2e_fail "not up as nobody: $(cat "$E2E_TMP/itrackerd.log")"
st=/proc/$ITRD_PID/status
grep -E '^(Uid|Cap)' "$st"
[[ $(awk '$1 == "CapEff:" {print $2}' "$st") == 0000000000001000 ]] ||
	e2e_fail "systemd-style start: CapEff $(awk '$1 == "CapEff:" {print $2}' "$st")"
[[ $(awk '$1 == "CapAmb:" {print $2}' "$st") == 0000000000000000 ]] || e2e_fail "ambient caps left"
echo "prefix a-metro2 10.79.0.0/16" >>"$MAP"
kill -HUP "$ITRD_PID"
for _ in $(seq 50); do [[ $(trie_has 10 79) == True ]] && break; sleep 0.1; done
[[ $(trie_has 10 79) == True ]] || e2e_fail "reload as the systemd-started user: $(tail -2 "$E2E_TMP/itrackerd.log")"
kill -TERM "$ITRD_PID"
wait "$ITRD_PID" 2>/dev/null
rc=$?
((rc == 0)) || e2e_fail "exit status $rc (systemd-style start)"
in_a ip link show va | grep -q xdp && e2e_fail "XDP still attached after exit (systemd-style)"
echo "least_privilege: ok"
