#!/usr/bin/env bash
# routes_bird.sh - routes learned over BGP feed PIDs: two BIRD 2 instances
# in namespaces exchange routes; the receiving one exports them to its
# kernel, IPv4 with a route realm (krt_realm 7), IPv6 into table 100;
# itrackerd in that namespace follows them (--route peer=realm:7,
# --route peer6=table:100). Checked: a prefix present at start (dump) and one
# announced later (follow) both answer /v1/netinfo and `itrackerctl netinfo`
# with the right PID and sit in the pinned LPM tries (bpftool, from outside
# the namespace); the map file's own prefixes still answer; the precedence
# holds for a prefix both name; a reload of the map file (SIGHUP) keeps the
# routes merged in; a withdrawal (static protocol disabled on the
# announcing BIRD) removes the prefix from the tries and the answers, and
# the test prints how long that took.
E2E=itrrt$$
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

DAEMON=$ITRACKER_ROOT/$BUILD/itrackerd
CTL=$ITRACKER_ROOT/$BUILD/itrackerctl
[[ -x $DAEMON && -x $CTL ]] || e2e_fail "build itrackerd and itrackerctl first (make all)"
command -v bird >/dev/null && command -v birdc >/dev/null || e2e_fail "bird2 is not installed"

A=${E2E}a # announces (AS 64600)
B=${E2E}b # learns, installs into its kernel, runs itrackerd (AS 64601)
e2e_netns "$A"
e2e_netns "$B"
e2e_veth "$A" ra "$B" rb
e2e_addr "$A" ra 10.99.0.1/30 fd00:99::1/64
e2e_addr "$B" rb 10.99.0.2/30 fd00:99::2/64

cat >"$E2E_TMP/a.conf" <<'EOF'
router id 10.99.0.1;
protocol device { }
protocol static s4 { ipv4; route 10.20.128.0/17 blackhole; route 10.77.0.0/16 blackhole; }
protocol static later4 { disabled; ipv4; route 10.88.0.0/16 blackhole; }
protocol static s6 { ipv6; route fd00:77::/32 blackhole; }
protocol bgp b4 {
	local 10.99.0.1 as 64600; neighbor 10.99.0.2 as 64601;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import none; export all; };
}
protocol bgp b6 {
	local fd00:99::1 as 64600; neighbor fd00:99::2 as 64601;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	ipv6 { import none; export all; };
}
EOF
cat >"$E2E_TMP/b.conf" <<'EOF'
router id 10.99.0.2;
protocol device { }
protocol kernel k4 { ipv4 { import none; export filter { krt_realm = 7; accept; }; }; }
protocol kernel k6 { kernel table 100; ipv6 { import none; export all; }; }
protocol bgp b4 {
	local 10.99.0.2 as 64601; neighbor 10.99.0.1 as 64600;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import all; export none; };
}
protocol bgp b6 {
	local fd00:99::2 as 64601; neighbor fd00:99::1 as 64600;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	ipv6 { import all; export none; };
}
EOF
for n in a b; do
	ns=$([[ $n == a ]] && echo "$A" || echo "$B")
	e2e_bg ip netns exec "$ns" bird -c "$E2E_TMP/$n.conf" -s "$E2E_TMP/$n.ctl" \
		-P "$E2E_TMP/$n.pid" -f
done
birdc_a() { birdc -s "$E2E_TMP/a.ctl" "$@"; }

wait_until() { # seconds description command...
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	e2e_fail "$what (waited ${limit}s)"
}
kernel_has() { ip -n "$B" "$@" | grep -q .; }
SECONDS=0
wait_until 60 "BIRD B never installed 10.20.128.0/17 with realm 7" \
	kernel_has route show 10.20.128.0/17 realm 7
wait_until 60 "BIRD B never installed fd00:77::/32 in table 100" \
	kernel_has -6 route show table 100 fd00:77::/32

echo "BGP up and routes in B's kernel after ${SECONDS}s"

# The file: PIDs with ASID and LOC; 10.20.0.0/16 (home) covers the realm's
# /17; 10.77.0.0/16 is named by the file and by a route (the file wins by
# default).
cat >"$E2E_TMP/net.map" <<'EOF'
network-map routes-e2e
pid home id 1 asn 64601 loc 1
prefix home 10.20.0.0/16 10.77.0.0/16 10.99.0.0/30 fd00:99::/64
pid peer id 7 asn 64600 loc 7
pid peer6 id 8 asn 64600 loc 8
EOF

e2e_bpffs
PORT=6979
e2e_bg ip netns exec "$B" "$DAEMON" --map "$E2E_TMP/net.map" --pin-root "$E2E_PIN_ROOT" \
	--listen 127.0.0.1:$PORT --udp off --route peer=realm:7 --route peer6=table:100
URL=http://127.0.0.1:$PORT
wait_until 20 "itrackerd did not answer" ip netns exec "$B" curl -fsS -o /dev/null "$URL/v1/status"

netinfo_pid() { # addr -> PID name or null
	ip netns exec "$B" curl -fsS "$URL/v1/netinfo?ip=$1" | jq -r .pid
}
ctl_netinfo() { # addr -> itrackerctl's answer (JSON)
	ip netns exec "$B" "$CTL" --server "$URL" --json netinfo "$1"
}
# The trie's answer for an address, read with bpftool from outside the
# namespace: an LPM lookup with a full-length key finds the longest prefix.
trie_pid() { # addr -> pid id or "none"
	local map key
	if [[ $1 == *:* ]]; then
		map=lpm_v6
		key="80 00 00 00 $(/usr/bin/python3 -c 'import ipaddress,sys; print(" ".join("%02x" % b for b in ipaddress.IPv6Address(sys.argv[1]).packed))' "$1")"
	else
		map=lpm_v4
		key="20 00 00 00 $(printf '%02x ' ${1//./ })"
	fi
	local out
	# shellcheck disable=SC2086
	if ! out=$(bpftool -j map lookup pinned "$E2E_PIN_ROOT/$map" key hex $key 2>/dev/null); then
		echo none # bpftool prints null and fails on a miss
		return
	fi
	jq -r '.formatted.value.pid' <<<"$out"
}
expect() { # what got want
	[[ $2 == "$3" ]] || e2e_fail "$1: got '$2', want '$3'"
	echo "ok: $1 = $3"
}
is() { [[ $("$1" "$2") == "$3" ]]; }

# 1. routes present when itrackerd started (the dump)
expect "netinfo 10.20.130.5 (realm 7 route)" "$(netinfo_pid 10.20.130.5)" peer
expect "netinfo 10.20.5.5 (file prefix)" "$(netinfo_pid 10.20.5.5)" home
expect "netinfo 10.77.1.1 (both; file wins)" "$(netinfo_pid 10.77.1.1)" home
expect "netinfo fd00:77::5 (table 100 route)" "$(netinfo_pid fd00:77::5)" peer6
expect "trie 10.20.130.5" "$(trie_pid 10.20.130.5)" 7
expect "trie 10.20.5.5" "$(trie_pid 10.20.5.5)" 1
expect "trie fd00:77::5" "$(trie_pid fd00:77::5)" 8
ctl=$(ctl_netinfo 10.20.130.5) || e2e_fail "itrackerctl netinfo failed"
expect "itrackerctl netinfo 10.20.130.5" "$(jq -r '.pid' <<<"$ctl")" peer
expect "itrackerctl netinfo asid" "$(jq -r '.asid' <<<"$ctl")" 64600
expect "itrackerctl netinfo loc" "$(jq -r '.loc' <<<"$ctl")" 7
vtag0=$(ip netns exec "$B" curl -fsS "$URL/v1/status" | jq -r .vtag)

# 2. a route announced while itrackerd runs (the follower)
expect "netinfo 10.88.1.1 before the announcement" "$(netinfo_pid 10.88.1.1)" null
birdc_a enable later4 >/dev/null
wait_until 30 "10.88.0.0/16 never reached the trie" is trie_pid 10.88.1.1 7
wait_until 10 "10.88.0.0/16 never reached netinfo" is netinfo_pid 10.88.1.1 peer
echo "ok: announced 10.88.0.0/16 reached the trie and netinfo"
vtag1=$(ip netns exec "$B" curl -fsS "$URL/v1/status" | jq -r .vtag)
[[ $vtag1 != "$vtag0" ]] || e2e_fail "the vtag did not change with the map"

# 3. withdrawal: disable the static protocol on the announcing BIRD
t0=$(date +%s%N)
birdc_a disable s4 >/dev/null
wait_until 30 "10.20.128.0/17 never left the trie" is trie_pid 10.20.130.5 1
t1=$(date +%s%N)
wait_until 10 "10.20.128.0/17 never left netinfo" is netinfo_pid 10.20.130.5 home
echo "ok: withdrawn 10.20.128.0/17: trie back to the file's 10.20.0.0/16 after $(((t1 - t0) / 1000000)) ms"
expect "netinfo 10.77.1.1 after withdrawal" "$(netinfo_pid 10.77.1.1)" home
expect "netinfo fd00:77::5 unaffected" "$(netinfo_pid fd00:77::5)" peer6
ip -n "$B" route show 10.20.128.0/17 | grep -q . && e2e_fail "kernel still has the withdrawn route"

# 4. IPv6 withdrawal
birdc_a disable s6 >/dev/null
wait_until 30 "fd00:77::/32 never left the trie" is trie_pid fd00:77::5 none
wait_until 10 "fd00:77::/32 never left netinfo" is netinfo_pid fd00:77::5 null
echo "ok: withdrawn fd00:77::/32 left the trie and netinfo"

# 5. the map file reloaded (SIGHUP): the routes stay merged in
echo "prefix home 10.66.0.0/16" >>"$E2E_TMP/net.map"
kill -HUP "${E2E_PIDS[-1]}"
wait_until 10 "the reloaded file's 10.66.0.0/16 never reached netinfo" is netinfo_pid 10.66.1.1 home
expect "trie 10.66.1.1 (file, after reload)" "$(trie_pid 10.66.1.1)" 1
wait_until 10 "route 10.88.0.0/16 not back in netinfo after the reload" is netinfo_pid 10.88.1.1 peer
expect "trie 10.88.1.1 (route, after reload)" "$(trie_pid 10.88.1.1)" 7

# 6. precedence routes: the route's PID wins a prefix both name
birdc_a enable s4 >/dev/null
wait_until 30 "BIRD B never re-installed 10.77.0.0/16" kernel_has route show 10.77.0.0/16 realm 7
kill "${E2E_PIDS[-1]}"
wait "${E2E_PIDS[-1]}" 2>/dev/null || true
unset 'E2E_PIDS[-1]'
e2e_bg ip netns exec "$B" "$DAEMON" --map "$E2E_TMP/net.map" --pin-root "$E2E_PIN_ROOT" \
	--listen 127.0.0.1:$PORT --udp off --route peer=realm:7 --route-precedence routes
wait_until 20 "itrackerd (precedence routes) did not answer" \
	ip netns exec "$B" curl -fsS -o /dev/null "$URL/v1/status"
expect "netinfo 10.77.1.1 (both; routes win)" "$(netinfo_pid 10.77.1.1)" peer
expect "trie 10.77.1.1 (both; routes win)" "$(trie_pid 10.77.1.1)" 7
expect "netinfo 10.20.5.5 (file only)" "$(netinfo_pid 10.20.5.5)" home

kill "${E2E_PIDS[-1]}"
wait "${E2E_PIDS[-1]}" 2>/dev/null
rc=$?
unset 'E2E_PIDS[-1]'
((rc == 0)) || e2e_fail "itrackerd exit status $rc"
echo "routes_bird: all checks passed"
