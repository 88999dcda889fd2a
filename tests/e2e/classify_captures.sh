#!/usr/bin/env bash
# classify_captures.sh - `itrackerctl classify` on captures of real traffic
# between two namespaces:
#   1. aria2c seeder + aria2c leecher with opentracker (TCP peer wire; the
#      libtorrent leecher announces over HTTP, the aria2c leecher over UDP,
#      BEP 15), captured on the veth (Ethernet) and on "any" (Linux SLL2);
#   2. libtorrent over uTP with DHT enabled (uTP, DHT KRPC);
#   3. DNS, HTTP and TLS exchanges, which must yield no BitTorrent flow.
# With maps/example.netmap the two namespaces sit in different ASes, so every
# BitTorrent flow must come out inter_as.
set -euo pipefail
E2E=clscap$$
LIB=$(dirname "$0")/lib
# shellcheck source=lib/netns.sh
. "$LIB/netns.sh"
e2e_require_root

CTL=$BUILD/itrackerctl
MAP=maps/example.netmap
[[ -x $CTL ]] || e2e_fail "$CTL not built"
for tool in aria2c opentracker transmission-create tcpdump openssl curl jq; do
	command -v "$tool" >/dev/null || e2e_fail "$tool missing (tools/deps.sh installs it)"
done
/usr/bin/python3 -c 'import libtorrent' || e2e_fail "python3-libtorrent missing"

A=${E2E}a
B=${E2E}b
IP_A=10.10.1.2  # a-metro1, AS 64500
IP_B=10.20.200.2 # b-edge, AS 64501
e2e_netns "$A"
e2e_netns "$B"
e2e_veth "$A" va "$B" vb
e2e_addr "$A" va "$IP_A/24"
e2e_addr "$B" vb "$IP_B/24"
ip -n "$A" route add "$IP_B/32" dev va
ip -n "$B" route add "$IP_A/32" dev vb

capture_start() { # name iface -> sets CAP_PID
	ip netns exec "$A" tcpdump -B 65536 -i "$2" -s 0 -U -w "$E2E_TMP/$1.pcap" 'tcp or udp' \
		2>"$E2E_TMP/$1.tcpdump.err" &
	CAP_PID=$!
	E2E_PIDS+=("$CAP_PID")
	e2e_wait_file "$E2E_TMP/$1.pcap"
	# tcpdump creates the file before the socket is live; wait for its banner.
	for _ in $(seq 50); do
		grep -q "listening on" "$E2E_TMP/$1.tcpdump.err" && return 0
		sleep 0.1
	done
	e2e_fail "tcpdump on $2 did not start"
}

capture_stop() { # pid
	# tcpdump hands packets over in blocks retired after 1 s; stopping
	# earlier loses the last block.
	sleep 2
	kill -INT "$1"
	wait "$1" || true
}

classify() { # pcap -> json on stdout
	"$CTL" classify "$1" --map "$MAP" --json
}

# ---- 1. aria2c over TCP with an HTTP tracker -------------------------------
mkdir -p "$E2E_TMP/seed" "$E2E_TMP/leech" "$E2E_TMP/ot"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$E2E_TMP/seed/payload.bin"
transmission-create -t "http://$IP_B:6969/announce" -o "$E2E_TMP/payload.torrent" \
	"$E2E_TMP/seed/payload.bin" >/dev/null
# Debian's opentracker serves whitelisted torrents only; the list is read
# after the chroot into $E2E_TMP/ot.
/usr/bin/python3 -c 'import libtorrent as lt, sys; print(lt.torrent_info(sys.argv[1]).info_hash())' \
	"$E2E_TMP/payload.torrent" >"$E2E_TMP/ot/whitelist"
e2e_bg ip netns exec "$B" opentracker -i "$IP_B" -p 6969 -P 6969 -d "$E2E_TMP/ot" -u nobody -w /whitelist \
	>"$E2E_TMP/opentracker.log" 2>&1
for _ in $(seq 50); do
	ip netns exec "$B" ss -ltn | grep -q ":6969" && break
	sleep 0.1
done
ip netns exec "$B" ss -ltn | grep -q ":6969" || e2e_fail "opentracker did not start"

ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
	--bt-require-crypto=false --bt-min-crypto-level=plain --file-allocation=none
	--summary-interval=0 --show-console-readout=false --console-log-level=warn --check-certificate=false)
e2e_bg ip netns exec "$B" aria2c "${ARIA_COMMON[@]}" -V --seed-ratio=0.0 --listen-port=6881 \
	-d "$E2E_TMP/seed" "$E2E_TMP/payload.torrent" >"$E2E_TMP/seeder.log" 2>&1
for _ in $(seq 100); do
	ip netns exec "$B" ss -ltn | grep -q ":6881" && break
	sleep 0.1
done

capture_start tcp va
TCP_PID=$CAP_PID
capture_start tcp_any any
ANY_PID=$CAP_PID
# aria2c always opens peer connections with the MSE (obfuscation) handshake,
# which has no plaintext marker. A libtorrent leecher with a plaintext
# handshake talks to the same seeder first, so the data plane learns the
# seeder's endpoint and must then recognise aria2c's encrypted flow by it.
mkdir -p "$E2E_TMP/ltleech"
timeout 60 ip netns exec "$A" /usr/bin/python3 "$LIB/lt_transfer.py" leech "$E2E_TMP/payload.torrent" \
	"$E2E_TMP/ltleech" "$IP_A" "$IP_B" 6881 --timeout 50 >/dev/null || e2e_fail "plaintext leech failed"
# The aria2c leecher finds the seeder through opentracker's UDP side
# (aria2c speaks BEP 15 on its DHT socket, so DHT is on, with no node to
# bootstrap from).
timeout 60 ip netns exec "$A" aria2c "${ARIA_COMMON[@]}" --seed-time=0 --listen-port=6882 \
	--enable-dht=true --dht-listen-port=6883 --dht-file-path="$E2E_TMP/dht.dat" \
	--bt-exclude-tracker='*' --bt-tracker="udp://$IP_B:6969/announce" \
	-d "$E2E_TMP/leech" "$E2E_TMP/payload.torrent" >"$E2E_TMP/leecher.log" 2>&1 ||
	{ cat "$E2E_TMP/leecher.log" >&2; e2e_fail "aria2c leecher did not finish"; }
cmp "$E2E_TMP/seed/payload.bin" "$E2E_TMP/leech/payload.bin" || e2e_fail "payload differs"
capture_stop "$TCP_PID"
capture_stop "$ANY_PID"

for cap in tcp tcp_any; do
	classify "$E2E_TMP/$cap.pcap" >"$E2E_TMP/$cap.json" || e2e_fail "classify $cap failed"
	pw=$(jq '[.flows[] | select(.proto == "tcp" and .kind == "peer_wire")] | length' "$E2E_TMP/$cap.json")
	((pw >= 1)) || { cat "$E2E_TMP/$cap.json" >&2; e2e_fail "$cap: no peer_wire flow"; }
	ht=$(jq '[.flows[] | select(.kind == "http_tracker")] | length' "$E2E_TMP/$cap.json")
	((ht >= 1)) || { cat "$E2E_TMP/$cap.json" >&2; e2e_fail "$cap: no http_tracker flow"; }
	ut=$(jq '[.flows[] | select(.proto == "udp" and .kind == "udp_tracker" and (.hi | endswith(":6969")))] | length' \
		"$E2E_TMP/$cap.json")
	((ut >= 1)) || { cat "$E2E_TMP/$cap.json" >&2; e2e_fail "$cap: no udp_tracker flow"; }
	# Both transfers carried the whole file: the plaintext one as peer wire,
	# aria2c's encrypted one recognised by the seeder's endpoint.
	big=$(jq '[.flows[] | select(.kind == "peer_wire") | .bytes] | max' "$E2E_TMP/$cap.json")
	((big >= 3 * 1024 * 1024)) || e2e_fail "$cap: peer wire flow has only $big bytes"
	big=$(jq '[.flows[] | select(.kind == "endpoint" and (.hi | endswith(":6881"))) | .bytes] | max // 0' \
		"$E2E_TMP/$cap.json")
	((big >= 3 * 1024 * 1024)) || { cat "$E2E_TMP/$cap.json" >&2; e2e_fail "$cap: aria2c's MSE flow not recognised by endpoint ($big bytes)"; }
	# Between the namespaces: inter-AS. (On "any", the clients' connections
	# to themselves show up too: those are intra_pid.)
	cls=$(jq -r --arg b "$IP_B:" '[.flows[] | select(.kind != "none" and (.hi | startswith($b))) | .class]
		| unique | join(",")' "$E2E_TMP/$cap.json")
	[[ $cls == inter_as ]] || e2e_fail "$cap: BitTorrent flows A-B classed '$cls', want inter_as"
	cls=$(jq -r '[.flows[] | select(.kind != "none" and (.lo | split(":")[0]) == (.hi | split(":")[0])) | .class]
		| unique | join(",")' "$E2E_TMP/$cap.json")
	[[ -z $cls || $cls == intra_pid ]] || e2e_fail "$cap: flows inside A classed '$cls'"
	# The program's own per-packet counters agree with the flow totals.
	frames=$(jq '.frames' "$E2E_TMP/$cap.json")
	counted=$(jq '[.counters_by_kind[] | .packets] | add' "$E2E_TMP/$cap.json")
	((frames == counted)) || e2e_fail "$cap: $frames frames but the counters saw $counted"
done
[[ $(jq -r .linktype "$E2E_TMP/tcp.json") == EN10MB ]] || e2e_fail "veth capture is not Ethernet"
[[ $(jq -r .linktype "$E2E_TMP/tcp_any.json") == LINUX_SLL* ]] || e2e_fail "any capture is not SLL"
# Table output names the kinds too.
"$CTL" classify "$E2E_TMP/tcp.pcap" --map "$MAP" | grep "peer_wire" >/dev/null || e2e_fail "table lacks peer_wire"

# ---- 2. libtorrent over uTP with DHT ---------------------------------------
# libtorrent runs DHT and uTP on one UDP socket, so DHT between the two
# transfer peers would share the uTP flow's 5-tuple, and a flow has one kind
# (whichever signature came first). The transfer therefore runs with DHT off,
# and a DHT-enabled session in A meets a DHT node on a second address of B.
cat >"$E2E_TMP/utp_dht.py" <<'EOF'
"""libtorrent sessions for the uTP/DHT capture. argv: role torrent save_dir
my_ip my_port peer_ip peer_port. Roles: seed and leech (uTP only, DHT off),
dht (a DHT node until killed), dhtclient (DHT on, bootstraps from the peer,
exits once it holds a node)."""
import sys, time
import libtorrent as lt
role, torrent, save, ip, port, peer_ip, peer_port = sys.argv[1:8]
peer = (peer_ip, int(peer_port))
dht = role in ("dht", "dhtclient")
ses = lt.session({
    "listen_interfaces": "%s:%s" % (ip, port), "outgoing_interfaces": ip,
    "enable_dht": dht, "enable_lsd": False, "enable_upnp": False,
    "enable_natpmp": False, "enable_outgoing_tcp": False, "enable_incoming_tcp": False,
    "enable_outgoing_utp": True, "enable_incoming_utp": True,
    "dht_bootstrap_nodes": "", "allow_multiple_connections_per_ip": True,
    "out_enc_policy": 2, "in_enc_policy": 1, "alert_mask": 0,
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
})
if role == "dht":
    while True:
        time.sleep(1)
deadline, last = time.time() + 60, 0
if role == "dhtclient":
    while time.time() < deadline:
        if ses.status().dht_nodes > 0:
            # A lookup, so the capture holds get_peers queries too.
            ses.dht_get_peers(lt.torrent_info(torrent).info_hash())
            time.sleep(1)
            print("dht nodes", ses.status().dht_nodes, flush=True)
            sys.exit(0)
        if time.time() - last > 1:
            ses.add_dht_node(peer)
            last = time.time()
        time.sleep(0.1)
    sys.exit(1)
h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
if role == "seed":
    h.force_recheck()
    # Say when the pieces are checked: a leecher started earlier may find
    # nothing to download and give up under a loaded machine.
    while not h.status().is_seeding:
        time.sleep(0.1)
    print("seeding", flush=True)
    while True:
        time.sleep(1)
while time.time() < deadline:
    st = h.status()
    if st.is_seeding:
        print("complete", flush=True)
        sys.exit(0)
    if time.time() - last > 2 and st.num_peers == 0:
        h.connect_peer(peer)
        last = time.time()
    time.sleep(0.1)
print("timeout: progress %.3f" % h.status().progress, file=sys.stderr)
sys.exit(1)
EOF
IP_B_DHT=10.20.200.3
e2e_addr "$B" vb "$IP_B_DHT/24"
ip -n "$A" route add "$IP_B_DHT/32" dev va
mkdir -p "$E2E_TMP/lseed" "$E2E_TMP/lleech"
cp "$E2E_TMP/seed/payload.bin" "$E2E_TMP/lseed/"
/usr/bin/python3 "$LIB/lt_transfer.py" make "$E2E_TMP/lseed/payload.bin" "$E2E_TMP/lt.torrent"
e2e_bg ip netns exec "$B" /usr/bin/python3 -W ignore::DeprecationWarning "$E2E_TMP/utp_dht.py" seed "$E2E_TMP/lt.torrent" \
	"$E2E_TMP/lseed" "$IP_B" 6891 "$IP_A" 6892 >"$E2E_TMP/utp_seed.out"
e2e_bg ip netns exec "$B" /usr/bin/python3 -W ignore::DeprecationWarning "$E2E_TMP/utp_dht.py" dht "$E2E_TMP/lt.torrent" \
	"$E2E_TMP/lseed" "$IP_B_DHT" 6893 "$IP_A" 6892
DHT_NODE_PID=${E2E_PIDS[-1]}
for _ in $(seq 300); do grep -q seeding "$E2E_TMP/utp_seed.out" && break; sleep 0.1; done
grep -q seeding "$E2E_TMP/utp_seed.out" || e2e_fail "uTP seeder did not finish checking its pieces"
capture_start utp va
UTP_PID=$CAP_PID
timeout 90 ip netns exec "$A" /usr/bin/python3 -W ignore::DeprecationWarning "$E2E_TMP/utp_dht.py" leech "$E2E_TMP/lt.torrent" \
	"$E2E_TMP/lleech" "$IP_A" 6892 "$IP_B" 6891 || e2e_fail "uTP transfer did not finish"
timeout 90 ip netns exec "$A" /usr/bin/python3 -W ignore::DeprecationWarning "$E2E_TMP/utp_dht.py" dhtclient "$E2E_TMP/lt.torrent" \
	"$E2E_TMP/lleech" "$IP_A" 6894 "$IP_B_DHT" 6893 || e2e_fail "DHT client found no node"
capture_stop "$UTP_PID"
cmp "$E2E_TMP/seed/payload.bin" "$E2E_TMP/lleech/payload.bin" || e2e_fail "uTP payload differs"
classify "$E2E_TMP/utp.pcap" >"$E2E_TMP/utp.json" || e2e_fail "classify utp failed"
utp=$(jq '[.flows[] | select(.proto == "udp" and .kind == "utp")] | length' "$E2E_TMP/utp.json")
dht=$(jq '[.flows[] | select(.proto == "udp" and .kind == "dht")] | length' "$E2E_TMP/utp.json")
tcpbt=$(jq '[.flows[] | select(.proto == "tcp" and .kind != "none")] | length' "$E2E_TMP/utp.json")
((utp >= 1)) || { cat "$E2E_TMP/utp.json" >&2; e2e_fail "no utp flow"; }
((dht >= 1)) || { cat "$E2E_TMP/utp.json" >&2; e2e_fail "no dht flow"; }
dhtb=$(jq -r --arg s "$IP_B_DHT:6893" '[.flows[] | select(.hi == $s) | .kind] | unique | join(",")' "$E2E_TMP/utp.json")
[[ $dhtb == dht ]] || e2e_fail "flow to the DHT node is '$dhtb', want dht"
((tcpbt == 0)) || e2e_fail "TCP disabled, yet $tcpbt BitTorrent TCP flows"
big=$(jq --arg s "$IP_B:6891" '[.flows[] | select(.kind == "utp" and .hi == $s) | .bytes] | max // 0' \
	"$E2E_TMP/utp.json")
((big >= 3 * 1024 * 1024)) || e2e_fail "uTP flow has only $big bytes"

# Recall: every flow between the two namespaces in these captures is
# BitTorrent (the clients talk to nothing else): all must be found.
recall() { # capture -> "found total"
	jq -r --arg a "$IP_A:" '[.flows[] | select((.lo | startswith($a)) or (.hi | startswith($a)))]
		| "\([.[] | select(.kind != "none")] | length) \(length)"' "$E2E_TMP/$1.json"
}
found=0
total=0
for cap in tcp utp; do
	read -r f t < <(recall "$cap")
	echo "recall $cap: $f of $t flows"
	found=$((found + f))
	total=$((total + t))
done
echo "classify_captures: BitTorrent flows found $found of $total"
((total >= 4 && found == total)) || {
	jq -c '.flows[] | select(.kind == "none")' "$E2E_TMP/tcp.json" "$E2E_TMP/utp.json" >&2
	e2e_fail "BitTorrent flows not found"
}

# ---- 3. DNS, HTTP, TLS: nothing BitTorrent ---------------------------------
# The DHT node keeps querying the nodes it met: stop it, or a late KRPC
# packet (rightly classed dht) lands in this capture.
kill "$DHT_NODE_PID" 2>/dev/null || true
wait "$DHT_NODE_PID" 2>/dev/null || true
cat >"$E2E_TMP/dns.py" <<'EOF'
"""A DNS responder (serve IP) or one query (ask IP): enough real DNS."""
import socket, struct, sys
mode, ip = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mode == "serve":
    s.bind((ip, 53))
    while True:
        q, peer = s.recvfrom(512)
        qid, = struct.unpack("!H", q[:2])
        question = q[12:]
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("10.20.200.2")
        s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer, peer)
else:
    s.settimeout(5)
    qname = b"".join(bytes([len(p)]) + p for p in b"tracker.example.net".split(b".")) + b"\0"
    s.sendto(struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1),
             (ip, 53))
    reply, _ = s.recvfrom(512)
    assert reply[:2] == b"\x12\x34" and struct.unpack("!H", reply[6:8])[0] == 1
    print("resolved")
EOF
mkdir -p "$E2E_TMP/www"
echo "plain web page, not a tracker" >"$E2E_TMP/www/index.html"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=itracker-e2e -days 1 \
	-keyout "$E2E_TMP/key.pem" -out "$E2E_TMP/cert.pem" 2>/dev/null
e2e_bg ip netns exec "$B" /usr/bin/python3 "$E2E_TMP/dns.py" serve "$IP_B"
e2e_bg ip netns exec "$B" /usr/bin/python3 -m http.server -b "$IP_B" -d "$E2E_TMP/www" 8080
e2e_bg ip netns exec "$B" openssl s_server -quiet -accept 8443 -cert "$E2E_TMP/cert.pem" \
	-key "$E2E_TMP/key.pem" -www
for port in 8080 8443; do
	for _ in $(seq 50); do
		ip netns exec "$B" ss -ltn | grep -q ":$port" && break
		sleep 0.1
	done
done
capture_start plain va
PLAIN_PID=$CAP_PID
ip netns exec "$A" /usr/bin/python3 "$E2E_TMP/dns.py" ask "$IP_B" >/dev/null || e2e_fail "DNS query failed"
ip netns exec "$A" curl -fsS "http://$IP_B:8080/index.html" >/dev/null || e2e_fail "HTTP fetch failed"
ip netns exec "$A" curl -fsSk "https://$IP_B:8443/" >/dev/null || e2e_fail "TLS fetch failed"
capture_stop "$PLAIN_PID"
classify "$E2E_TMP/plain.pcap" >"$E2E_TMP/plain.json" || e2e_fail "classify plain failed"
flows=$(jq '.flow_count' "$E2E_TMP/plain.json")
bt=$(jq '.bittorrent_flows' "$E2E_TMP/plain.json")
((flows >= 3)) || { cat "$E2E_TMP/plain.json" >&2; e2e_fail "only $flows flows in the plain capture"; }
((bt == 0)) || { cat "$E2E_TMP/plain.json" >&2; e2e_fail "$bt BitTorrent flows in DNS/HTTP/TLS"; }
for port in 53 8080 8443; do
	n=$(jq --arg p ":$port" '[.flows[] | select((.lo | endswith($p)) or (.hi | endswith($p)))] | length' \
		"$E2E_TMP/plain.json")
	((n >= 1)) || e2e_fail "no flow on port $port in the plain capture"
done
echo "classify_captures: ok"
