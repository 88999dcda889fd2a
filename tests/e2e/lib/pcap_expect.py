#!/usr/bin/python3
"""pcap_expect.py - what the data plane's counters must read, worked out
independently from a capture of the same interface.

  pcap_expect.py CAPTURE.pcap OWN_MAC NETMAP COUNTERS.json

CAPTURE is tcpdump's capture on the attached interface (both directions),
OWN_MAC that interface's address (frames from it are egress: TC; the rest
ingress: XDP), NETMAP the text map loaded into itrackerd, COUNTERS.json the
output of `bpftool -j map dump pinned <root>/counters`.

The expectation mirrors the documented data-plane rules for TCP flows: a
flow is "none" until its first payload-bearing packet; a payload starting
with the BEP 3 handshake makes it peer wire from that packet on, an HTTP
announce or scrape makes it an HTTP tracker flow; a flow to an endpoint
already known to speak BitTorrent is "endpoint" from its first packet (or
from the first payload packet inspected after the endpoint became known)
until a signature upgrades it. Known endpoints: peer-wire listeners, HTTP
trackers, the port= of an announce at its source address, and the compact
"peers"/"peers6" entries of the tracker's answers in the ITR_TRACKER_FOLLOW
payload packets after an announce (bpf/tracker_peers.h). Prints both tables
and exits 1 on any difference.
"""
import ipaddress
import json
import struct
import sys

CLASSES = ["intra-pid", "intra-loc", "intra-as", "inter-as", "unknown"]
KINDS = ["none", "peer-wire", "utp", "dht", "udp-tracker", "http-tracker", "endpoint"]
DIRS = ["ingress", "egress"]
PSTR = b"\x13BitTorrent protocol"
MAX_INSPECT = 4       # ITR_MAX_INSPECT
TRACKER_FOLLOW = 8    # ITR_TRACKER_FOLLOW
SCRATCH_BYTES = 512   # ITR_SCRATCH_BYTES: what signatures look at
TRACKER_SCAN = 2048   # ITR_TRACKER_SCAN_BYTES: what answers are read to
PEERS_PER_LIST = 64   # ITR_PEERS_PER_LIST


def load_netmap(path):
    pids, prefixes = {}, []
    for line in open(path):
        w = line.split("#", 1)[0].split()
        if not w:
            continue
        if w[0] == "pid":
            attrs = dict(zip(w[2::2], w[3::2]))
            pids[w[1]] = (int(attrs["id"]), int(attrs["asn"]), int(attrs.get("loc", 0)))
        elif w[0] == "prefix":
            for p in w[2:]:
                prefixes.append((ipaddress.ip_network(p), w[1]))
    return pids, prefixes


def lookup(pids, prefixes, addr):
    best = None
    for net, name in prefixes:
        if addr.version == net.version and addr in net:
            if best is None or net.prefixlen > best[0].prefixlen:
                best = (net, name)
    return pids[best[1]] if best else None


def klass(a, b):
    if a is None or b is None:
        return 4
    if a[0] == b[0]:
        return 0
    if a[1] == b[1] and a[2] != 0 and a[2] == b[2]:
        return 1
    if a[1] == b[1]:
        return 2
    return 3


def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit("capture link type %d, want Ethernet (1)" % linktype)
    off = 24
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl], orig
        off += 16 + incl


def parse(frame):
    eth_type = struct.unpack("!H", frame[12:14])[0]
    off = 14
    if eth_type == 0x0800:
        ihl = (frame[off] & 0xF) * 4
        proto = frame[off + 9]
        frag = struct.unpack("!H", frame[off + 6:off + 8])[0] & 0x1FFF
        if frag:
            return None
        src = ipaddress.ip_address(frame[off + 12:off + 16])
        dst = ipaddress.ip_address(frame[off + 16:off + 20])
        total = struct.unpack("!H", frame[off + 2:off + 4])[0]
        l4, end = off + ihl, off + total
    elif eth_type == 0x86DD:
        proto = frame[off + 6]
        plen = struct.unpack("!H", frame[off + 4:off + 6])[0]
        src = ipaddress.ip_address(frame[off + 8:off + 24])
        dst = ipaddress.ip_address(frame[off + 24:off + 40])
        l4, end = off + 40, off + 40 + plen
    else:
        return None
    if proto == 6:
        sport, dport = struct.unpack("!HH", frame[l4:l4 + 4])
        doff = (frame[l4 + 12] >> 4) * 4
        payload = frame[l4 + doff:end]
    elif proto == 17:
        sport, dport = struct.unpack("!HH", frame[l4:l4 + 4])
        payload = frame[l4 + 8:end]
    else:
        return None
    return proto, src, sport, dst, dport, payload


def decimal_at(buf, off):
    """bt_signatures.h itr_decimal_at: (value, end) or (-1, None)."""
    value = 0
    for k in range(6):
        at = off + k
        if at >= len(buf):
            return -1, None
        c = buf[at]
        if not 0x30 <= c <= 0x39:
            return (value, at) if k else (-1, None)
        value = value * 10 + c - 0x30
    return -1, None


def http_request(payload):
    """(is an announce/scrape, port= value or 0), per itr_http_scan_step."""
    buf = payload[:SCRATCH_BYTES]
    if not buf.startswith(b"GET "):
        return False, 0
    path_ok = hash_ok = False
    port = 0
    for i in range(4, len(buf)):
        c = buf[i:i + 1]
        if c in (b" ", b"\r", b"\n"):
            break
        if c == b"/" and (buf.startswith(b"/announce?", i) or buf.startswith(b"/scrape?", i)):
            path_ok = True
        elif c == b"i" and buf[i - 1:i] in (b"?", b"&") and buf.startswith(b"info_hash=", i):
            hash_ok = True
        elif c == b"p" and buf[i - 1:i] in (b"?", b"&") and buf.startswith(b"port=", i):
            v, _ = decimal_at(buf, i + 5)
            port = v if 0 < v <= 0xFFFF else 0
    return path_ok and hash_ok, port


def peer_string(buf, off, entry):
    """itr_peer_string_at: the whole entries inside buf, or None."""
    n, end = decimal_at(buf, off)
    if n < 0 or n % entry or end >= len(buf) or buf[end] != 0x3A:
        return None
    start = end + 1
    count = min(n // entry, (len(buf) - start) // entry, PEERS_PER_LIST)
    return [buf[start + i * entry:start + (i + 1) * entry] for i in range(count)]


def http_peers(payload):
    """Endpoints (packed address, port) in one answer packet (itr_http_peer_lists)."""
    buf = payload[:TRACKER_SCAN]
    lists = {6: None, 18: None}
    for i in range(len(buf)):
        if buf[i] == 0x35 and lists[6] is None and buf.startswith(b"5:peers", i):
            lists[6] = peer_string(buf, i + 7, 6)
        elif buf[i] == 0x36 and lists[18] is None and buf.startswith(b"6:peers6", i):
            lists[18] = peer_string(buf, i + 8, 18)
        if lists[6] is not None and lists[18] is not None:
            break
    found = []
    for entry, items in lists.items():
        for e in items or []:
            port = struct.unpack("!H", e[entry - 2:])[0]
            if port:
                found.append((e[:entry - 2], port))
    return found


def expected(capture, own_mac, netmap):
    pids, prefixes = load_netmap(netmap)
    own = bytes.fromhex(own_mac.replace(":", ""))
    table = {}
    flows = {}
    endpoints = set()
    for frame, length in frames(capture):
        p = parse(frame)
        if p is None:
            continue
        proto, src, sport, dst, dport, payload = p
        direction = 1 if frame[6:12] == own else 0
        a, b = (src.packed, sport), (dst.packed, dport)
        key = (proto,) + (a + b if a <= b else b + a)
        f = flows.get(key)
        known = (dst.packed, dport) in endpoints or (src.packed, sport) in endpoints
        if f is None:
            f = flows[key] = {"kind": 6 if proto == 6 and known else 0, "state": "pending",
                              "inspected": 0, "tracker": None, "follow": 0,
                              "class": klass(lookup(pids, prefixes, src), lookup(pids, prefixes, dst))}
        if f["state"] == "pending" and payload and proto == 6:
            if known and f["kind"] == 0:
                f["kind"] = 6
            f["inspected"] += 1
            is_tracker, port = http_request(payload)
            if payload.startswith(PSTR):
                f["kind"], f["state"] = 1, "final"
                endpoints.add((dst.packed, dport))
            elif is_tracker:
                f["kind"], f["state"] = 5, "tracker"
                f["tracker"], f["follow"] = (dst.packed, dport), TRACKER_FOLLOW
                endpoints.add((dst.packed, dport))
                if port:
                    endpoints.add((src.packed, port))
            elif f["inspected"] >= MAX_INSPECT:
                f["state"] = "final"
        elif f["state"] == "tracker" and payload:
            announce = False
            if (src.packed, sport) == f["tracker"]:
                endpoints.update(http_peers(payload))
            else:
                announce, port = http_request(payload)
                if announce and port:
                    endpoints.add((src.packed, port))
            f["follow"] = TRACKER_FOLLOW if announce else f["follow"] - 1
            if f["follow"] <= 0:
                f["state"] = "final"
        slot = (direction, f["class"], f["kind"])
        pk, by = table.get(slot, (0, 0))
        table[slot] = (pk + 1, by + length)
    return table


def measured(path):
    dump = json.load(open(path))
    table = {}
    for entry in dump:
        fmt = entry.get("formatted", entry)
        key = fmt["key"]
        if isinstance(key, list):
            key = int.from_bytes(bytes(int(x, 16) for x in key), "little")
        pk = by = 0
        for v in fmt["values"]:
            val = v["value"]
            if isinstance(val, list):
                raw = bytes(int(x, 16) for x in val)
                p, b = struct.unpack("<QQ", raw[:16])
            else:
                p, b = val["packets"], val["bytes"]
            pk += p
            by += b
        if pk or by:
            d, rest = divmod(key, len(CLASSES) * len(KINDS))
            c, k = divmod(rest, len(KINDS))
            table[(d, c, k)] = (pk, by)
    return table


def show(title, table):
    print(title)
    for (d, c, k), (p, b) in sorted(table.items()):
        print("  %-8s %-10s %-12s %8d pkts %10d bytes" % (DIRS[d], CLASSES[c], KINDS[k], p, b))


def main(argv):
    exp = expected(argv[1], argv[2], argv[3])
    got = measured(argv[4])
    show("expected (from the capture):", exp)
    show("counted (bpftool map dump):", got)
    if exp != got:
        for slot in sorted(set(exp) | set(got)):
            if exp.get(slot) != got.get(slot):
                print("MISMATCH %s/%s/%s: expected %s counted %s" % (
                    DIRS[slot[0]], CLASSES[slot[1]], KINDS[slot[2]], exp.get(slot), got.get(slot)))
        return 1
    kinds = {k for (_, _, k) in exp}
    if 1 not in kinds:
        print("no peer-wire traffic was seen at all")
        return 1
    print("counters match the capture exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
