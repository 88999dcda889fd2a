#!/usr/bin/env bash
# classify_linktypes.sh - `itrackerctl classify` reads every link type it
# claims (Ethernet, Linux SLL and SLL2, raw IP, LINKTYPE_IPV4/IPV6, BSD
# loopback NULL in both byte orders and LOOP, Cisco HDLC, PPP) to the same
# flows and kinds, names the link type it cannot read, and attributes
# frames to flows with the data plane's own parser: an IPv6 packet with
# more extension headers than the kernel walks is no flow in classify
# either (classify's old private parser walked 8, the kernel 6).
set -euo pipefail
E2E=clslt$$
LIB=$(dirname "$0")/lib
# shellcheck source=lib/netns.sh
. "$LIB/netns.sh"
e2e_require_root
CTL=$BUILD/itrackerctl
[[ -x $CTL ]] || e2e_fail "$CTL not built"

/usr/bin/python3 - "$E2E_TMP" <<'PY'
"""Writes one capture per link type, all of the same packets: a peer-wire
handshake each way on one TCP connection, a DNS query, and an IPv6 TCP
packet behind 7 destination-options headers."""
import socket, struct, sys
out = sys.argv[1]

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ip4(src, dst, proto, l4):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + l4

def tcp(sport, dport, seq, ack, payload):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x18, 65535, 0, 0) + payload

hs = b"\x13BitTorrent protocol" + bytes(8) + b"\xab" * 20 + b"-TR3000-abcdefghijkl"
pkts = [
    ip4("10.10.1.2", "10.30.0.2", 6, tcp(40000, 6881, 1000, 0, hs)),
    ip4("10.30.0.2", "10.10.1.2", 6, tcp(6881, 40000, 5000, 1068, hs)),
    ip4("10.10.1.2", "10.30.0.2", 17,
        struct.pack("!HHHH", 5353, 53, 8 + 17, 0) + b"\x12\x34\x01\x00\0\1\0\0\0\0\0\0\0\0\1\0\1"),
]
# IPv6 + 7 destination-options headers (8 bytes each) + TCP.
ext = b"".join(bytes([60 if i < 6 else 6, 0]) + bytes(6) for i in range(7))
l4 = tcp(40001, 6881, 1, 0, hs)
pkts.append(struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(l4), 60, 64,
                        socket.inet_pton(socket.AF_INET6, "fd00:10:1::2"),
                        socket.inet_pton(socket.AF_INET6, "fd00:30::2")) + ext + l4)

def ethertype(p):
    return 0x86DD if p[0] >> 4 == 6 else 0x0800

def write(name, linktype, frame):
    with open("%s/%s.pcap" % (out, name), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype))
        for i, p in enumerate(pkts):
            b = frame(p)
            f.write(struct.pack("<IIII", 1700000000, i, len(b), len(b)) + b)

macs = bytes.fromhex("020000000002020000000001")
write("en10mb", 1, lambda p: macs + struct.pack("!H", ethertype(p)) + p)
write("sll", 113, lambda p: struct.pack("!HHH8sH", 0, 1, 6, macs[:8], ethertype(p)) + p)
write("sll2", 276, lambda p: struct.pack("!HHIHBB8s", ethertype(p), 0, 2, 1, 0, 6, macs[:8]) + p)
write("raw", 101, lambda p: p)
write("ipv4v6", 228, lambda p: p)  # LINKTYPE_IPV4 (IPv6 packets too, as raw)
write("null_le", 0, lambda p: struct.pack("<I", 30 if p[0] >> 4 == 6 else 2) + p)
write("null_be", 0, lambda p: struct.pack(">I", 24 if p[0] >> 4 == 6 else 2) + p)
write("loop", 108, lambda p: struct.pack(">I", 28 if p[0] >> 4 == 6 else 2) + p)
write("c_hdlc", 104, lambda p: struct.pack("!BBH", 0x0f, 0, ethertype(p)) + p)
write("ppp", 9, lambda p: b"\xff\x03" + struct.pack("!H", 0x57 if p[0] >> 4 == 6 else 0x21) + p)
write("ieee802_11", 105, lambda p: bytes(24) + p)
PY

for cap in en10mb sll sll2 raw ipv4v6 null_le null_be loop c_hdlc ppp; do
	"$CTL" classify "$E2E_TMP/$cap.pcap" --map maps/example.netmap --json >"$E2E_TMP/$cap.json" ||
		e2e_fail "classify $cap failed"
	got=$(jq -c '{frames, run: (.frames - .frames_not_run), flows: [.flows[] | [.proto, .lo, .hi, .kind, .class, .packets, .in_kernel]] | sort}' \
		"$E2E_TMP/$cap.json")
	want='{"frames":4,"run":4,"flows":[["tcp","10.10.1.2:40000","10.30.0.2:6881","peer_wire","inter_as",2,true],["udp","10.10.1.2:5353","10.30.0.2:53","none","inter_as",1,true]]}'
	[[ $got == "$want" ]] || e2e_fail "$cap: got $got, want $want"
	# The IPv6 packet the kernel leaves alone is not a flow here either.
	[[ $(jq .frames_not_tcp_udp "$E2E_TMP/$cap.json") == 1 ]] || e2e_fail "$cap: IPv6 with 7 extension headers"
done

if "$CTL" classify "$E2E_TMP/ieee802_11.pcap" 2>"$E2E_TMP/err.txt" >/dev/null; then
	e2e_fail "an 802.11 capture was accepted"
fi
grep -q "link type 105 (IEEE802_11" "$E2E_TMP/err.txt" || {
	cat "$E2E_TMP/err.txt" >&2
	e2e_fail "the error does not name the link type"
}
# A file that is not a capture, and a capture cut short: the error names
# the file (with several files on the command line, the reader must know
# which one).
printf 'not a capture\n' >"$E2E_TMP/notes.txt"
head -c 26 "$E2E_TMP/ieee802_11.pcap" >"$E2E_TMP/cut.pcap"
for bad in notes.txt cut.pcap; do
	if "$CTL" classify "$E2E_TMP/$bad" 2>"$E2E_TMP/err.txt" >/dev/null; then
		e2e_fail "$bad was accepted"
	fi
	grep -q "^itrackerctl: $E2E_TMP/$bad: " "$E2E_TMP/err.txt" || {
		cat "$E2E_TMP/err.txt" >&2
		e2e_fail "the error for $bad does not name the file"
	}
done
echo "classify_linktypes: ok"
