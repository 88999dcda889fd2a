#!/usr/bin/python3
"""announce_check.py - HTTP announces (compact=1) to a tracker from many
named addresses, and the ranking rule of user/rank.c re-implemented from
its documentation, to check each answer's composition and order.

  announce_check.py locality URL MAP [policy: PID_PCT AS_PCT MIN_EXT MAX_EXT MIN_LIST [GATEWAYS]]
      a swarm over the map's PIDs (one PID and one AS with a single peer)
      announces via ip= (the tracker must trust 127.0.0.1); every peer's
      answer for numwant 5, 8 and 50 must equal the rule's list, twice.
  announce_check.py proxy URL MAP DIRECT_URL CLIENT_IP...
      each CLIENT_IP announces through URL (itrackerd in proxy mode); the
      answer must be the rule's list over the peers DIRECT_URL (the
      upstream, asked directly) holds. Prints "ok N" lines.
Standard library only.
"""
import ipaddress
import os
import random
import socket
import struct
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tools"))
from bencode import bdecode  # noqa: E402

TIERS = {"same-pid": 1, "same-loc": 5, "same-as": 10, "other-as": 100}


class Map:
    def __init__(self, path):
        self.pids = {}  # name -> dict(asn, loc, nets)
        self.cost = {}
        self.tiers = dict(TIERS)
        for line in open(path):
            w = line.split("#")[0].split()
            if not w:
                continue
            if w[0] == "tier":
                self.tiers[w[1]] = int(w[2])
            elif w[0] == "pid":
                kv = dict(zip(w[2::2], w[3::2]))
                self.pids[w[1]] = {"asn": int(kv["asn"]), "loc": int(kv.get("loc", 0)), "nets": []}
            elif w[0] == "prefix":
                self.pids[w[1]]["nets"] += [ipaddress.ip_network(p) for p in w[2:]]
            elif w[0] == "cost":
                self.cost[(w[1], w[2])] = int(w[3])

    def pid(self, ip):
        a = ipaddress.ip_address(ip)
        best = None
        for name, p in self.pids.items():
            for n in p["nets"]:
                if a in n and (best is None or n.prefixlen > best[1]):
                    best = (name, n.prefixlen)
        return best[0] if best else None

    def p_distance(self, a, b):
        if (a, b) in self.cost:
            return self.cost[(a, b)]
        if a == b:
            return self.tiers["same-pid"]
        pa, pb = self.pids[a], self.pids[b]
        if pa["asn"] != pb["asn"]:
            return self.tiers["other-as"]
        if pa["loc"] == pb["loc"]:
            return self.tiers["same-loc"]
        return self.tiers["same-as"]


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def bep40(a, b):
    """BEP 40 canonical priority of two IPv4 (ip, port) peers."""
    x, y = socket.inet_aton(a[0]), socket.inet_aton(b[0])
    if x == y:
        return crc32c(b"".join(struct.pack(">H", p) for p in sorted((a[1], b[1]))))
    if x[:3] == y[:3]:
        mask = b"\xff\xff\xff\xff"
    elif x[:2] == y[:2]:
        mask = b"\xff\xff\xff\x55"
    else:
        mask = b"\xff\xff\x55\x55"
    mx = bytes(p & m for p, m in zip(x, mask))
    my = bytes(p & m for p, m in zip(y, mask))
    return crc32c(b"".join(sorted((mx, my))))


assert bep40(("123.213.32.10", 0), ("98.76.54.32", 0)) == 0xEC2D7224
assert bep40(("123.213.32.10", 0), ("123.213.32.234", 0)) == 0x99568189


def gateway_score(salt, peer):
    """rank.h: CRC32-C of salt (big-endian), address and port (big-endian)."""
    return crc32c(struct.pack(">I", salt) + socket.inet_aton(peer[0]) + struct.pack(">H", peer[1]))


def is_gateway(m, policy, client, cands, salt):
    """The client is one of the `gateways` best-scored peers of its AS."""
    gateways = policy[5] if len(policy) > 5 else 0
    cp = m.pid(client[0])
    if not gateways or cp is None:
        return True
    asn = m.pids[cp]["asn"]
    mates = [c for c in set(cands) if c != client and m.pid(c[0]) is not None
             and m.pids[m.pid(c[0])]["asn"] == asn]

    def key(c):
        return (-gateway_score(salt, c), socket.inet_aton(c[0]), c[1])
    return sum(key(c) < key(client) for c in mates) < gateways


def rank(m, policy, client, cands, want, salt=0):
    """user/rank.c's documented rule: order, then reserve, caps, top-up;
    with gateways, only an AS's gateway peers get the external budget."""
    pid_pct, as_pct, min_ext, max_ext, min_list = policy[:5]
    gateways = policy[5] if len(policy) > 5 else 0
    if not is_gateway(m, policy, client, cands, salt):
        min_ext = max_ext = 0
    cands = sorted(set(c for c in cands if c != client))
    cp = m.pid(client[0])

    def addr_key(c):
        return (socket.inet_aton(c[0]), c[1])

    if cp is None:
        order = sorted(cands, key=lambda c: (-bep40(client, c), addr_key(c)))
        return order[:want]
    order = sorted(cands, key=lambda c: (m.p_distance(cp, m.pid(c[0])) if m.pid(c[0]) else 1 << 31,
                                         -bep40(client, c), addr_key(c)))
    L = min(want, len(order))

    def internal(c):
        p = m.pid(c[0])
        return p is not None and m.pids[p]["asn"] == m.pids[cp]["asn"]

    externals = [c for c in order if not internal(c)]
    # a gateway's budget goes to other ASes' gateways first (a peer no PID
    # covers counts as one)
    ext_gw = set()
    if gateways and (min_ext or max_ext):
        by_as = {}
        for c in externals:
            p = m.pid(c[0])
            if p is None:
                ext_gw.add(c)
            else:
                by_as.setdefault(m.pids[p]["asn"], []).append(c)
        for peers in by_as.values():
            peers.sort(key=lambda c: (-gateway_score(salt, c), socket.inet_aton(c[0]), c[1]))
            ext_gw.update(peers[:gateways])
    externals = [c for c in externals if c in ext_gw] + [c for c in externals if c not in ext_gw]
    taken = set(externals[:min(min_ext, len(externals), L)])
    n_ext = len(taken)
    ext_cap = max(max_ext, n_ext)
    as_cap, pid_cap = as_pct * L // 100, pid_pct * L // 100
    n_as = n_pid = 0
    for c in order:
        if len(taken) >= L:
            break
        if c in taken:
            continue
        if internal(c):
            own = m.pid(c[0]) == cp
            if n_as < as_cap and (not own or n_pid < pid_cap):
                taken.add(c)
                n_as += 1
                n_pid += own
        elif n_ext < ext_cap and (c in ext_gw or not (ext_gw - taken)):
            taken.add(c)
            n_ext += 1
    for c in order:
        if len(taken) >= min(L, min_list):
            break
        taken.add(c)
    return [c for c in order if c in taken]


INFO_HASH = bytes.fromhex("1f0e0d0c0b0a09080706050403020100ffeeddcc")


def udp_announce(url, ip, port, numwant, event="", info_hash=INFO_HASH):
    """BEP 15 announce naming the client in the IPv4 field."""
    host, uport = url[len("udp://"):].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.connect((host, int(uport)))
    tid = random.getrandbits(32)
    s.send(struct.pack(">QII", 0x41727101980, 0, tid))
    d = s.recv(2048)
    cid = d[8:16]
    ev = {"": 0, "completed": 1, "started": 2, "stopped": 3}[event]
    s.send(cid + struct.pack(">II", 1, tid + 1) + info_hash + ("-AC0001-%012d" % port).encode()
           + struct.pack(">QQQI", 0, 1000, 0, ev) + socket.inet_aton(ip)
           + struct.pack(">IiH", 0, numwant, port))
    d = s.recv(2048)
    if struct.unpack(">I", d[:4])[0] == 3:
        raise SystemExit("FAIL: %s:%d: UDP error %r" % (ip, port, d[8:]))
    return [(socket.inet_ntoa(d[i:i + 4]), struct.unpack(">H", d[i + 4:i + 6])[0])
            for i in range(20, len(d), 6)], {}


def announce(url, ip, port, numwant, event="", info_hash=INFO_HASH):
    if url.startswith("udp://"):
        return udp_announce(url, ip, port, numwant, event, info_hash)
    q = {"info_hash": info_hash, "peer_id": ("-AC0001-%012d" % port).encode(), "port": port,
         "uploaded": 0, "downloaded": 0, "left": 1000, "compact": 1, "numwant": numwant}
    if ip:
        q["ip"] = ip
    if event:
        q["event"] = event
    with urllib.request.urlopen(url + "?" + urllib.parse.urlencode(q), timeout=10) as r:
        d, _ = bdecode(r.read())
    if b"failure reason" in d:
        raise SystemExit("FAIL: %s:%d: failure reason %r" % (ip, port, d[b"failure reason"]))
    peers = d.get(b"peers", b"")
    return [(socket.inet_ntoa(peers[i:i + 4]), struct.unpack(">H", peers[i + 4:i + 6])[0])
            for i in range(0, len(peers), 6)], d


def locality(url, mapfile, policy):
    m = Map(mapfile)
    swarm = []
    layout = {"10.10.1.": 6, "10.10.2.": 4, "10.10.3.": 1, "10.20.0.": 4, "10.20.128.": 3,
              "10.30.0.": 1}
    for prefix, n in layout.items():
        for k in range(n):
            swarm.append((prefix + str(10 + k), 6000 + len(swarm)))
    for ip, port in swarm:
        announce(url, ip, port, 0, "started")
    checked = 0
    first = {}
    salt = crc32c(INFO_HASH)  # tracker.c: itr_rank_swarm_salt
    outside = set()  # ASes some of whose peers were handed an outside peer
    for rnd in range(2):
        for client in swarm:
            for want in (5, 8, 50):
                got, _ = announce(url, client[0], client[1], want)
                expect = rank(m, policy, client, swarm, want, salt)
                if got != expect:
                    raise SystemExit("FAIL: %s:%d numwant %d (PID %s)\n  got    %s\n  expect %s" % (
                        client[0], client[1], want, m.pid(client[0]), got, expect))
                if rnd == 0:
                    first[(client, want)] = got
                elif first[(client, want)] != got:
                    raise SystemExit("FAIL: %s: a repeated announce changed the list" % (client,))
                others = {m.pid(p[0]) for p in got} - {m.pid(client[0])}
                gateway = is_gateway(m, policy, client, swarm, salt)
                if not others and len(swarm) > 1 and gateway:
                    raise SystemExit("FAIL: %s got peers from its own PID only" % (client,))
                asn = m.pids[m.pid(client[0])]["asn"]
                if any(m.pids[m.pid(p[0])]["asn"] != asn for p in got):
                    outside.add(asn)
                checked += 1
    # no AS cut off: each one's gateways (all its peers without gateways)
    # were handed at least one peer of another AS
    ases = {m.pids[m.pid(c[0])]["asn"] for c in swarm}
    if outside != ases:
        raise SystemExit("FAIL: no peer of AS %s got an outside peer" % sorted(ases - outside))
    # the lone peers, spelled out
    alone_pid = [c for c in swarm if c[0].startswith("10.10.3.")][0]
    alone_as = [c for c in swarm if c[0].startswith("10.30.0.")][0]
    got, _ = announce(url, alone_as[0], alone_as[1], 50)
    need = min(50, policy[4], len(swarm) - 1)
    if len(got) < need:
        raise SystemExit("FAIL: peer alone in its AS got %d peers, want >= %d" % (len(got), need))
    got, _ = announce(url, alone_pid[0], alone_pid[1], 50)
    if not got:
        raise SystemExit("FAIL: peer alone in its PID got no peers")
    print("ok %d answers match the rule (policy %s)" % (checked, policy))


def proxy(url, mapfile, direct_url, clients, policy):
    m = Map(mapfile)
    # proxy.c keeps the clients that announced through it, under their real
    # addresses, as candidates too (the upstream files them under ours).
    behind = []
    for ip in clients:
        port = 7000 + sum(socket.inet_aton(ip)) % 100  # distinct across the test's clients
        got, d = announce(url, ip, port, 8, "started")
        # what the upstream holds, asked directly by an outsider
        held, _ = announce(direct_url, None, 65000, 200)
        held = [p for p in held if p[1] != 65000]
        proxy_addrs = {p[0] for p in held if p[1] >= 7000 and p[1] < 7100}
        cands = [p for p in held if p[0] not in proxy_addrs]
        cands += [p for p in behind if p not in cands]
        behind.append((ip, port))
        expect = rank(m, policy, (ip, port), cands, 8, crc32c(INFO_HASH))  # proxy.c salts per swarm
        if got != expect:
            raise SystemExit("FAIL: proxied %s\n  got    %s\n  expect %s\n  upstream %s" % (
                ip, got, expect, held))
        print("ok %s: %d peers from %d upstream, PIDs %s" % (
            ip, len(got), len(cands), [m.pid(p[0]) for p in got]))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "locality":
        pol = tuple(int(x) for x in sys.argv[4:10]) if len(sys.argv) > 4 else (100, 100, 1, 2, 3, 1)
        locality(sys.argv[2], sys.argv[3], pol)
    elif what == "proxy":
        proxy(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:], (100, 100, 1, 2, 3, 1))
    else:
        raise SystemExit(__doc__)
