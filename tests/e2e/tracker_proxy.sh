#!/usr/bin/env bash
# tracker_proxy.sh - itrackerd in proxy mode (pTracker) in front of a real
# opentracker (Debian's), over HTTP and over UDP. Peers in several PIDs of
# maps/example.netmap announce to opentracker directly (curl bound to their
# addresses, so opentracker stores their real addresses); clients announce
# through itrackerd (naming themselves with ip= / the BEP 15 IP field from
# trusted loopback). Checked: opentracker sees the proxied announces (its
# scrape counts them), and each client's list is exactly user/rank.c's
# rule applied to the peers opentracker holds (lib/announce_check.py).
#
# Debian's opentracker ignores ip= and the UDP IP field (built without
# WANT_IP_FROM_QUERY_STRING): it files proxied clients under the proxy's
# address; the proxy drops those entries, and the ranked peers are the ones
# that announced to opentracker directly.
E2E=trprx$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root

LIB=$ITRACKER_ROOT/tests/e2e/lib
MAP=$ITRACKER_ROOT/maps/example.netmap
ITRD=$ITRACKER_ROOT/$BUILD/itrackerd
[[ -x $ITRD ]] || e2e_fail "build itrackerd first"
command -v opentracker >/dev/null || e2e_fail "opentracker missing (tools/deps.sh)"
NS=${E2E}n
e2e_netns "$NS"
PEERS=(10.10.1.10 10.10.1.11 10.10.1.12 10.10.2.10 10.10.2.11 10.10.3.10 10.20.0.10 10.20.128.10 10.30.0.10 10.30.0.11)
e2e_addr "$NS" lo 10.30.0.2/32 "${PEERS[@]/%//32}"
in_ns() { ip netns exec "$NS" "$@"; }

IH_HEX=1f0e0d0c0b0a09080706050403020100ffeeddcc
IH_URL=$(sed 's/../%&/g' <<<"$IH_HEX")
mkdir -p "$E2E_TMP/ot"
echo "$IH_HEX" >"$E2E_TMP/ot/whitelist"
chmod -R a+rX "$E2E_TMP"
e2e_bg in_ns opentracker -i 10.30.0.2 -p 6969 -P 6969 -u nobody -d "$E2E_TMP/ot" -w /whitelist
e2e_bg in_ns "$ITRD" --map "$MAP" --no-dataplane --listen 127.0.0.1:7969 --udp off \
	--trusted-proxy 127.0.0.1 --accept-ip-param --upstream http://10.30.0.2:6969/announce --admin-socket "$E2E_TMP/admin_http.sock" 2>>"$E2E_TMP/itrd_http.log"
e2e_bg in_ns "$ITRD" --map "$MAP" --no-dataplane --listen 127.0.0.1:8969 --udp 8969 \
	--udp-bind 127.0.0.1 --trusted-proxy 127.0.0.1 --accept-ip-param --upstream udp://10.30.0.2:6969 \
	--upstream-timeout 2000 --admin-socket "$E2E_TMP/admin_udp.sock" 2>>"$E2E_TMP/itrd_udp.log"
for _ in $(seq 100); do
	in_ns curl -fsS -o /dev/null http://127.0.0.1:7969/v1/status 2>/dev/null &&
		in_ns curl -fsS -o /dev/null http://127.0.0.1:8969/v1/status 2>/dev/null &&
		in_ns ss -Hltn 'sport = :6969' | grep -q . && break
	sleep 0.1
done

scrape() { # -> incomplete count at opentracker
	in_ns curl -fsS "http://10.30.0.2:6969/scrape?info_hash=$IH_URL" |
		/usr/bin/python3 -c 'import sys,re; print(re.search(rb"10:incompletei(\d+)e", sys.stdin.buffer.read()).group(1).decode())'
}

# the swarm: each peer announces to opentracker itself, from its address
for ip in "${PEERS[@]}"; do
	pid12=$(printf '%-12s' "${ip//./}" | tr ' ' x)
	in_ns curl -fsS --interface "$ip" -o /dev/null \
		"http://10.30.0.2:6969/announce?info_hash=$IH_URL&peer_id=-CU0001-$pid12&port=6881&uploaded=0&downloaded=0&left=1000&compact=1&numwant=0&event=started" ||
		e2e_fail "direct announce from $ip"
done
[[ $(scrape) == "${#PEERS[@]}" ]] || e2e_fail "opentracker holds $(scrape) peers, want ${#PEERS[@]}"

# proxied clients, over HTTP, then over UDP
in_ns /usr/bin/python3 "$LIB/announce_check.py" proxy http://127.0.0.1:7969/announce "$MAP" \
	http://10.30.0.2:6969/announce 10.10.1.50 10.20.0.50 10.30.0.50 || e2e_fail "HTTP proxy"
after_http=$(scrape)
# +3 proxied clients, +1 the checker's own direct announce
((after_http == ${#PEERS[@]} + 4)) || e2e_fail "opentracker saw $after_http peers after the HTTP clients"
in_ns /usr/bin/python3 "$LIB/announce_check.py" proxy udp://127.0.0.1:8969 "$MAP" \
	http://10.30.0.2:6969/announce 10.10.2.60 10.20.128.60 || e2e_fail "UDP proxy"
after_udp=$(scrape)
((after_udp == after_http + 2)) || e2e_fail "opentracker saw $after_udp peers after the UDP clients"

# /metrics counts proxied announces under the transport the client used
announces() { # port protocol outcome -> count
	in_ns curl -fsS "http://127.0.0.1:$1/metrics" |
		sed -n "s/^itracker_tracker_announces_total{protocol=\"$2\",outcome=\"$3\"} //p"
}
udp_ok=$(announces 8969 udp ok) http_ok=$(announces 8969 http ok)
((udp_ok >= 2 && http_ok == 0)) ||
	e2e_fail "UDP proxy instance counted udp ok=$udp_ok http ok=$http_ok"
udp_ok=$(announces 7969 udp ok) http_ok=$(announces 7969 http ok)
((http_ok >= 3 && udp_ok == 0)) ||
	e2e_fail "HTTP proxy instance counted http ok=$http_ok udp ok=$udp_ok"

# the upstream's failure reason reaches the client: a hash opentracker
# does not whitelist
out=$(in_ns curl -fsS "http://127.0.0.1:7969/announce?info_hash=%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14&peer_id=-CU0001-xxxxxxxxxxxx&port=7100&left=1")
grep -q "failure reason" <<<"$out" || e2e_fail "no failure reason passed through: $out"
echo "opentracker on a non-whitelisted hash, through the proxy: $out"
echo "PASS: tracker_proxy"
