#!/usr/bin/env bash
# readme_commands.sh - the commands README.md shows work as shown. Each one
# is first looked up in the README (an edit that changes a command fails
# here until this test follows it), then run as written in a namespace
# whose interfaces are called eth0 and eth1, with only what keeps a test
# apart from a real gateway added: `make install` into a staging root, the
# map under a scratch /etc, a private pin root and admin socket. Where the
# README shows output, the output is compared.
#
# Not run here: `make demo` and `make test` (make test runs this; the demo
# is e2e/demo_runtime_only), and the multi-gateway command (e2e/map_follow
# and e2e/redis_cluster run --map-from and --store redis-cluster://).
E2E=readme$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
cd "$ITRACKER_ROOT"
README=$ITRACKER_ROOT/README.md
[[ -x $BUILD/itrackerd ]] || e2e_fail "build first (make all)"

readme_has() { # the exact line, as the README shows it
	grep -qxF -- "$1" "$README" || e2e_fail "README.md no longer shows: $1"
}
readme_has_prefix() { # a line that starts so (the rest is a comment)
	grep -q "^$(printf '%s' "$1" | sed 's/[][\.*^$/]/\\&/g')" "$README" ||
		e2e_fail "README.md no longer shows: $1"
}

# ---- make install -----------------------------------------------------------
readme_has_prefix 'make && make install                       # /usr/local/sbin/itrackerd, /usr/local/bin/itrackerctl'
STAGE=$E2E_TMP/root
env -u MAKEFLAGS -u MFLAGS make -s install BUILD="$BUILD" DESTDIR="$STAGE" >/dev/null
ITRACKERD=$STAGE/usr/local/sbin/itrackerd
ITRACKERCTL=$STAGE/usr/local/bin/itrackerctl
[[ -x $ITRACKERD && -x $ITRACKERCTL ]] || e2e_fail "make install: not in /usr/local/sbin, /usr/local/bin"

# ---- the map, and map check ----------------------------------------------------
readme_has 'mkdir -p /etc/itracker && cp /usr/local/share/itracker/example.netmap /etc/itracker/network.map'
ETC=$E2E_TMP/etc/itracker
mkdir -p "$ETC" && cp "$STAGE/usr/local/share/itracker/example.netmap" "$ETC/network.map"
readme_has_prefix 'itrackerctl map check /etc/itracker/network.map'
out=$("$ITRACKERCTL" map check "$ETC/network.map") || e2e_fail "map check of the example: $out"
[[ $out == *": valid: "*"(of at most 2000000)"*"(of at most 1000000)"* ]] ||
	e2e_fail "map check does not show the capacities as the README says: $out"

# the README's bad map, byte for byte, and its message
readme_has '$ cat bad2.netmap'
awk '/^\$ cat bad2.netmap$/{f=1; next} /^\$ /{f=0} f' "$README" >"$E2E_TMP/bad2.netmap"
[[ $(wc -l <"$E2E_TMP/bad2.netmap") -eq 4 ]] || e2e_fail "bad2.netmap: 4 lines expected in the README"
want=$(awk '/^\$ itrackerctl map check bad2.netmap$/{getline; print; exit}' "$README")
got=$(cd "$E2E_TMP" && "$ITRACKERCTL" map check bad2.netmap 2>&1) && e2e_fail "bad2.netmap passed map check"
[[ $got == "$want" ]] || e2e_fail "map check bad2.netmap: got '$got', README shows '$want'"

# ---- a gateway: eth0 and eth1 ----------------------------------------------------
GW=${E2E}gw
PEER=${E2E}peer
e2e_netns "$GW"
e2e_netns "$PEER"
e2e_veth "$GW" eth0 "$PEER" p0
e2e_veth "$GW" eth1 "$PEER" p1
e2e_addr "$GW" eth0 10.10.1.2/24
e2e_addr "$PEER" p0 10.10.1.3/24
e2e_bpffs
ROOT=$E2E_PIN_ROOT
ADMIN=$E2E_TMP/admin.sock
gw() { ip netns exec "$GW" "$@"; }
ctl() { gw "$ITRACKERCTL" --pin-root "$ROOT" --admin-socket "$ADMIN" "$@"; }

start() { # itrackerd arguments as the README writes them
	# ip netns exec execs the daemon: $! is the daemon, for its signals
	ip netns exec "$GW" "$ITRACKERD" "$@" --pin-root "$ROOT" --admin-socket "$ADMIN" \
		2>>"$E2E_TMP/itrackerd.log" &
	DAEMON=$!
	E2E_PIDS+=("$DAEMON")
	local i
	for i in $(seq 100); do
		gw curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null && return 0
		kill -0 "$DAEMON" 2>/dev/null || { cat "$E2E_TMP/itrackerd.log" >&2; e2e_fail "itrackerd $* exited"; }
		sleep 0.1
	done
	e2e_fail "itrackerd $* did not answer"
}
stop() {
	kill -TERM "$DAEMON"
	local rc=0
	wait "$DAEMON" || rc=$?
	((rc == 0)) || { cat "$E2E_TMP/itrackerd.log" >&2; e2e_fail "itrackerd exited $rc on SIGTERM"; }
}

readme_has 'itrackerd --map /etc/itracker/network.map -i eth0 -i eth1 --keep-attached'
start --map "$ETC/network.map" -i eth0 -i eth1 --keep-attached
status=$(ctl status) || e2e_fail "itrackerctl status: $status"
for ifc in eth0 eth1; do
	grep -q "$ifc" <<<"$status" || e2e_fail "status does not show $ifc attached: $status"
done

# the netinfo example (the README's vtag is cut short with …)
readme_has_prefix "\$ curl -s 'http://127.0.0.1:6969/v1/netinfo?ip=10.10.2.7'"
want=$(awk '/^\$ curl -s .http:\/\/127.0.0.1:6969\/v1\/netinfo\?ip=10.10.2.7.$/{getline; print; exit}' "$README")
got=$(gw curl -s 'http://127.0.0.1:6969/v1/netinfo?ip=10.10.2.7')
[[ $got == "${want%…*}"* ]] || e2e_fail "netinfo: got '$got', README shows '$want'"

# the README's ways of reading what the data plane counts
for m in counters matrix lpm_v4; do
	readme_has_prefix "bpftool map dump pinned /sys/fs/bpf/itracker/$m"
	dump=$(bpftool map dump pinned "$ROOT/$m") || e2e_fail "bpftool map dump $m"
	[[ -n $dump ]] || e2e_fail "bpftool map dump $m printed nothing"
done
grep -q '"prefixlen"\|prefixlen' <<<"$(bpftool map dump pinned "$ROOT/lpm_v4")" ||
	e2e_fail "lpm_v4 dump has no named fields (BTF)"
readme_has '$ itrackerctl stats'
want=$(awk '/^\$ itrackerctl stats$/{getline; print; exit}' "$README")
got=$(ctl stats --all | head -1)
[[ $got == "$want" ]] || e2e_fail "itrackerctl stats header: got '$got', README shows '$want'"
grep -q '^inter-AS share of BitTorrent bytes: ' <<<"$(ctl stats --all)" ||
	e2e_fail "itrackerctl stats: no inter-AS share line"

# --keep-attached: the data plane stays when the daemon goes
stop
status=$(ctl status) || true
grep -q eth0 <<<"$status" || e2e_fail "--keep-attached: eth0 not attached after the daemon stopped: $status"
gw "$ITRACKERD" --purge --pin-root "$ROOT" >/dev/null 2>&1 || e2e_fail "itrackerd --purge"

# ---- the policy example: tc classes, then itrackerd with two policies ------------
readme_has 'tc qdisc add dev eth0 root handle 1: htb default 10'
readme_has 'tc class add dev eth0 parent 1: classid 1:10 htb rate 10gbit'
readme_has 'tc class add dev eth0 parent 1: classid 1:30 htb rate 500mbit ceil 1gbit'
gw tc qdisc add dev eth0 root handle 1: htb default 10
gw tc class add dev eth0 parent 1: classid 1:10 htb rate 10gbit
gw tc class add dev eth0 parent 1: classid 1:30 htb rate 500mbit ceil 1gbit
readme_has 'itrackerd --map network.map -i eth0 --policy inter-as:priority=1:30 --policy intra-pid:dscp=10'
cp "$ETC/network.map" "$E2E_TMP/network.map"
pushd "$E2E_TMP" >/dev/null # the README's relative map path
start --map network.map -i eth0 --policy inter-as:priority=1:30 --policy intra-pid:dscp=10
popd >/dev/null
policy=$(bpftool map dump pinned "$ROOT/policy") || e2e_fail "bpftool map dump policy"
grep -q . <<<"$policy" || e2e_fail "policy map is empty"
stop
status=$(ctl status) || true
grep -q eth0 <<<"$status" && e2e_fail "without --keep-attached eth0 must be detached: $status"

echo "readme_commands: ok"
