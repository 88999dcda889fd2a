#!/usr/bin/python3
"""redis_swarm.py - HTTP announces from chosen loopback addresses to several
itrackerd instances that share a Redis Cluster store.

  redis_swarm.py visible URL_A URL_B N [TAG]
                                            N swarms (info_hashes from TAG): a peer
                                            announced to A must be in B's answer
                                            right after; prints the
                                            announce-to-visible times
  redis_swarm.py seed URL HASHHEX IP PORT   announce once (a leecher), print peers
  redis_swarm.py sees URL HASHHEX IP PORT WANT_IP:WANT_PORT
                                            exit 0 if the answer lists WANT
  redis_swarm.py outage URL HASHHEX IP PORT WANT_IP:WANT_PORT SECONDS
                                            announce every 50 ms for SECONDS; print
                                            the longest time without a successful
                                            answer (and its wall-clock start and
                                            end), and whether WANT was listed at
                                            the end
  redis_swarm.py quota URL HASHHEX IP PORT  with --max-peers-per-source 2 and
                                            --max-torrents-per-source 2: a third port
                                            in one torrent and a third torrent are
                                            not stored (a warning), the others are
  redis_swarm.py udp HOST:PORT TAG IP N     N UDP announces at once to N swarms,
                                            then N more: each answer of the second
                                            burst lists the peer of its own swarm
  redis_swarm.py down URL HASHHEX IP PORT   one announce must fail with a reason
                                            within 3 s; prints it and the time
Standard library only.
"""
import hashlib
import http.client
import os
import socket
import statistics
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../tools"))
from bencode import bdecode  # noqa: E402


def announce(url, info_hash, ip, port, left=1000, event=""):
    """-> (failure reason or None, [(ip, port)...], seconds)"""
    fail, peers, took, _ = announce_warned(url, info_hash, ip, port, left, event)
    return fail, peers, took


def announce_warned(url, info_hash, ip, port, left=1000, event=""):
    """-> (failure reason or None, [(ip, port)...], seconds, warning message or None)"""
    u = urllib.parse.urlparse(url)
    # %20 for a space byte, as BitTorrent clients send it: urlencode's default
    # "+" is no space to a tracker, and the swarm would be another one
    q = urllib.parse.urlencode({"info_hash": info_hash, "peer_id": b"-IT0001-" + bytes(12),
                                "port": port, "uploaded": 0, "downloaded": 0, "left": left,
                                "compact": 1, "numwant": 50, "event": event},
                               quote_via=urllib.parse.quote)
    start = time.monotonic()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10, source_address=(ip, 0))
    try:
        conn.request("GET", "/announce?" + q)
        body = conn.getresponse().read()
    finally:
        conn.close()
    took = time.monotonic() - start
    d, _ = bdecode(body)
    if b"failure reason" in d:
        return d[b"failure reason"].decode(errors="replace"), [], took, None
    raw = d.get(b"peers", b"")
    peers = [(socket.inet_ntoa(raw[k:k + 4]), int.from_bytes(raw[k + 4:k + 6], "big"))
             for k in range(0, len(raw), 6)]
    warning = d.get(b"warning message")
    return None, peers, took, warning.decode(errors="replace") if warning else None


def udp_burst(host, port, src_ip, jobs):
    """BEP 15 from src_ip: one connect, then every (info_hash, peer port) of jobs
    announced at once (one datagram each, before any answer is read).
    -> [[(ip, port)...] listed in each answer, in jobs' order]"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src_ip, 0))
    sock.settimeout(5)
    sock.sendto(struct.pack(">QII", 0x41727101980, 0, 7), (host, port))
    action, tid, conn_id = struct.unpack(">IIQ", sock.recv(64)[:16])
    assert action == 0 and tid == 7, "connect failed"
    for k, (ih, peer_port) in enumerate(jobs):
        sock.sendto(struct.pack(">QII20s20sQQQIIIiH", conn_id, 1, 1000 + k, ih,
                                b"-IT0001-" + bytes(12), 0, 1000, 0, 2, 0, k, 50, peer_port),
                    (host, port))
    answers = {}
    while len(answers) < len(jobs):
        data = sock.recv(2048)
        action, tid = struct.unpack(">II", data[:8])
        if action != 1:
            raise RuntimeError("announce %d: %r" % (tid - 1000, data[8:]))
        raw = data[20:]
        answers[tid - 1000] = [(socket.inet_ntoa(raw[i:i + 4]),
                                int.from_bytes(raw[i + 4:i + 6], "big"))
                               for i in range(0, len(raw), 6)]
    sock.close()
    return [answers[k] for k in range(len(jobs))]


def want_of(text):
    ip, port = text.rsplit(":", 1)
    return ip, int(port)


def main(argv):
    cmd = argv[1]
    if cmd == "visible":
        a, b, n = argv[2], argv[3], int(argv[4])
        tag = argv[5].encode() if len(argv) > 5 else b"visible"
        times, slow = [], []
        for k in range(n):
            ih = hashlib.sha1(b"%s-%d" % (tag, k)).digest()
            fail, _, took_a = announce(a, ih, "127.0.0.11", 7000 + k, event="started")
            slow.append(took_a)
            if fail:
                print("announce to A failed: %s" % fail)
                return 1
            start = time.monotonic()
            while True:
                fail, peers, _ = announce(b, ih, "127.0.0.12", 7000 + k)
                if not fail and ("127.0.0.11", 7000 + k) in peers:
                    break
                if time.monotonic() - start > 1.0:
                    print("swarm %d: the peer announced to A was not listed by B within 1 s" % k)
                    return 1
            times.append((time.monotonic() - start) * 1000)
        times.sort()
        slow.sort()
        print("announce to A: median %.2f ms max %.2f ms" % (statistics.median(slow) * 1000, slow[-1] * 1000))
        print("announced to A -> listed by B: n=%d median %.2f ms p99 %.2f ms max %.2f ms" %
              (n, statistics.median(times), times[int(0.99 * (n - 1))], times[-1]))
        return 0
    if cmd == "udp":
        host, port = want_of(argv[2])
        ip, n = argv[4], int(argv[5])
        hashes = [hashlib.sha1(b"%s-%d" % (argv[3].encode(), k)).digest() for k in range(n)]
        udp_burst(host, port, ip, [(h, 10000 + k) for k, h in enumerate(hashes)])
        lists = udp_burst(host, port, ip, [(h, 20000 + k) for k, h in enumerate(hashes)])
        wrong = [k for k, peers in enumerate(lists) if peers != [(ip, 10000 + k)]]
        if wrong:
            print("UDP answers listing other swarms' peers: %s" %
                  ["%d: %s" % (k, lists[k]) for k in wrong[:5]])
            return 1
        print("udp: %d answers, each with its own swarm's peer" % n)
        return 0
    url, ih = argv[2], bytes.fromhex(argv[3])
    ip, port = argv[4], int(argv[5])
    if cmd == "seed":
        fail, peers, _ = announce(url, ih, ip, port, event="started")
        print(fail or "ok %d peers" % len(peers))
        return 1 if fail else 0
    if cmd == "sees":
        fail, peers, _ = announce(url, ih, ip, port)
        ok = not fail and want_of(argv[6]) in peers
        print("listed" if ok else "not listed (%s; %s)" % (fail, peers))
        return 0 if ok else 1
    if cmd == "outage":
        # The outage is what a client sees: the longest time between two
        # successful answers, less the probe's own 50 ms pause. (A run of
        # failed answers alone misses an announce that was in flight when
        # the master died and took long to succeed.)
        want, seconds = want_of(argv[6]), float(argv[7])
        end = time.monotonic() + seconds
        failing = False
        failures = 0
        # (monotonic, wall) of the last successful answer; the start counts as
        # one, so a probe that starts during the outage measures from there
        last_ok = (time.monotonic() - 0.05, time.time() - 0.05)
        longest = 0.0
        longest_at = (0.0, 0.0)  # wall clock: the answers around the longest gap
        listed = False
        while time.monotonic() < end:
            try:
                fail, peers, _ = announce(url, ih, ip, port)
            except OSError as e:
                fail, peers = str(e), []
            t, wall = time.monotonic(), time.time()
            if fail:
                failing = True
                failures += 1
            else:
                if last_ok and t - last_ok[0] - 0.05 > longest:
                    longest = t - last_ok[0] - 0.05
                    longest_at = (last_ok[1], wall)
                last_ok = (t, wall)
                failing = False
                listed = want in peers
            time.sleep(0.05)
        if failing:
            print("announces still failing at the end")
            return 1
        print("longest time without a successful answer: %.2f s (%d failed announces); "
              "peer listed at the end: %s; no answer from %.3f to %.3f (Unix time)" %
              (longest, failures, listed, *longest_at))
        return 0 if listed else 1
    if cmd == "quota":
        other = hashlib.sha1(ih + b"2").digest()
        third = hashlib.sha1(ih + b"3").digest()
        steps = [(ih, port, None), (ih, port + 1, None), (ih, port + 2, "too many peers"),
                 (other, port, None), (third, port, "too many torrents")]
        for h, p, want in steps:
            fail, _, _, warning = announce_warned(url, h, ip, p, event="started")
            if fail or (want is None) != (warning is None) or (want and want not in warning):
                print("announce %s port %d: failure %r, warning %r (wanted %r)" %
                      (h.hex()[:8], p, fail, warning, want))
                return 1
        # another client lists the two stored ports only, and no one is in the third
        # torrent (after the instance's candidate cache, 250 ms, has let go)
        time.sleep(0.3)
        _, peers, _, _ = announce_warned(url, ih, "127.0.0.99", 6999)
        mine = sorted(q for i, q in peers if i == ip)
        _, peers3, _, _ = announce_warned(url, third, "127.0.0.99", 6999)
        if mine != [port, port + 1] or any(i == ip for i, _ in peers3):
            print("stored from %s: %s in the torrent, %s in the third" % (ip, mine, peers3))
            return 1
        print("quota: third port and third torrent not stored")
        return 0
    if cmd == "down":
        fail, _, took = announce(url, ih, ip, port)
        print("answer in %.2f s: %s" % (took, fail or "peers (no failure)"))
        return 0 if fail and took < 3 else 1
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
