#!/usr/bin/env python3
"""metrics_monotonic.py HOST PORT - drive HTTP and UDP tracker traffic of
every kind (UDP connect, scrape, announce, bad connection id; HTTP announce,
scrape, a refused announce) at an itrackerd and check after each step that
itracker_tracker_announces_total counts exactly the announces of each
transport and outcome, that itracker_udp_datagrams_total counts every
datagram, and that no counter in /metrics ever went down.
Exit status 0 on success, 1 with a message otherwise."""
import os
import re
import socket
import struct
import sys
import urllib.error
import urllib.request

HOST, PORT = sys.argv[1], int(sys.argv[2])
BASE = "http://%s:%d" % (HOST, PORT)
LINE = re.compile(r'^(itracker_[a-z_]*_total)(\{[^}]*\})? ([0-9.e+]+)$')
last = {}


def fail(msg):
    print("metrics_monotonic: " + msg, file=sys.stderr)
    sys.exit(1)


def metrics():
    text = urllib.request.urlopen(BASE + "/metrics", timeout=5).read().decode()
    now = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            now[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    for key, value in last.items():
        if now.get(key, 0) < value:
            fail("%s went down: %g -> %g" % (key, value, now.get(key, 0)))
    last.clear()
    last.update(now)
    return now


def expect(step, **want):
    now = metrics()
    for label, value in want.items():
        proto, outcome = label.split("_")
        key = 'itracker_tracker_announces_total{protocol="%s",outcome="%s"}' % (proto, outcome)
        if now.get(key) != value:
            fail("after %s: %s is %s, expected %d" % (step, key, now.get(key), value))


def http_get(path):
    try:
        return urllib.request.urlopen(BASE + path, timeout=5).read()
    except urllib.error.HTTPError as e:
        return e.read()


def http_announce(n):
    info_hash = "%" + "%".join("%02x" % b for b in os.urandom(20))
    peer_id = "-XX0001-" + "%012d" % n
    return http_get("/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0"
                    "&left=100&compact=1" % (info_hash, peer_id, 6881 + n))


udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(5)


def udp_call(packet):
    udp.sendto(packet, (HOST, PORT))
    return udp.recv(4096)


def udp_connect():
    reply = udp_call(struct.pack(">QII", 0x41727101980, 0, 7))
    action, tid, cid = struct.unpack(">IIQ", reply[:16])
    if action != 0 or tid != 7:
        fail("UDP connect answered %r" % reply[:16])
    return cid


def udp_announce(cid, n):
    pkt = struct.pack(">QII20s20sQQQIIIiH", cid, 1, 9, os.urandom(20), os.urandom(20), 0, 100, 0,
                      0, 0, n, -1, 6881 + n)
    return struct.unpack(">I", udp_call(pkt)[:4])[0]


def udp_scrape(cid):
    return struct.unpack(">I", udp_call(struct.pack(">QII20s", cid, 2, 11, os.urandom(20)))[:4])[0]


expect("start", http_ok=0, udp_ok=0, http_rejected=0, udp_rejected=0)
for i in range(3):
    if b"interval" not in http_announce(i):
        fail("HTTP announce %d not answered" % i)
expect("3 HTTP announces", http_ok=3, udp_ok=0)
cid = udp_connect()
if udp_scrape(cid) != 2:
    fail("UDP scrape not answered")
udp_connect()
# the old figures counted every UDP reply as a UDP announce and took HTTP
# as the difference: connects and scrapes made HTTP's count go down
expect("UDP connects and a scrape", http_ok=3, udp_ok=0)
for i in range(4):
    if udp_announce(cid, i) != 1:
        fail("UDP announce %d not answered" % i)
expect("4 UDP announces", http_ok=3, udp_ok=4, udp_rejected=0)
if udp_announce(cid ^ 1, 99) != 3:
    fail("a bad connection id was not refused")
http_get("/announce?info_hash=short")
http_get("/scrape?info_hash=short")
expect("refusals", http_ok=3, udp_ok=4, http_rejected=1, udp_rejected=1)
for i in range(2):
    http_announce(10 + i)
    udp_announce(cid, 10 + i)
    udp_scrape(cid)
expect("mixed", http_ok=5, udp_ok=6, http_rejected=1, udp_rejected=1)
# 2 connects, 3 scrapes, 7 announces (one with a bad connection id): 12
# datagrams, each read and answered, none lost in the socket
now = metrics()
for outcome, want in (("received", 12), ("answered", 12), ("dropped", 0)):
    key = 'itracker_udp_datagrams_total{outcome="%s"}' % outcome
    if now.get(key) != want:
        fail("%s is %s, expected %d" % (key, now.get(key), want))
if now.get("itracker_udp_socket_drops_total") != 0:
    fail("itracker_udp_socket_drops_total is %s, expected 0" % now.get("itracker_udp_socket_drops_total"))
print("metrics_monotonic: ok")
