"""tracker_attacks.py - attacks on the tracker and the map reload path
(issue 10), each from one client on loopback, bounded in time. Each takes
the Daemon and a duration and returns a list of checks (name, ok, detail);
run.py measures the legitimate clients around it.
"""
import os
import random
import select
import socket
import struct
import time
import urllib.parse

from lib import (ATTACKER, LEGIT_HASHES, udp_announce_packet, udp_connect, udp_socket,
                 udp_socket_drops)


# the daemon's defaults (--announce-rate, --announce-burst): the attack
# daemons of run.py and soak.py keep them
ANNOUNCE_RATE = 50
ANNOUNCE_BURST = 1000
RATE_REFUSAL = b"too many announces"


def _pump_udp(d, seconds, make_packet, window=64, source=ATTACKER):
    """Send announces from source as fast as they are answered (a window
    in flight), then wait for the last answers. Returns what became of
    them, as the attacker saw it and as the kernel counted it: sent,
    answered (ok: an announce reply; rate: refused for the announce rate;
    other: any other error), lost_here (answers the kernel dropped at this
    socket, full), lost_at_daemon (datagrams the kernel dropped at the
    daemon's sockets meanwhile, anyone's), unanswered, seconds (first send
    to last answer: the daemon handled every one of them in there)."""
    sock = udp_socket(source)
    # room for the answers while this thread is descheduled (capped at rmem_max)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    cid = udp_connect(sock, d.udp_port)
    my_port = sock.getsockname()[1]
    here0, daemon0 = udp_socket_drops(my_port), udp_socket_drops(d.udp_port)
    sock.setblocking(False)
    r = {"sent": 0, "ok": 0, "rate": 0, "other": 0}
    inflight = 0

    t_first = time.monotonic()
    t_last = t_first

    def take(data):
        nonlocal t_last
        t_last = time.monotonic()
        kind = "ok" if struct.unpack(">I", data[:4])[0] == 1 else \
            "rate" if RATE_REFUSAL in data else "other"
        r[kind] += 1

    end = t_first + seconds
    last_connect = t_first
    while time.monotonic() < end:
        if time.monotonic() - last_connect > 60:
            sock.setblocking(True)
            cid = udp_connect(sock, d.udp_port)
            sock.setblocking(False)
            last_connect = time.monotonic()
        while inflight < window:
            try:
                sock.sendto(make_packet(cid, r["sent"]), ("127.0.0.1", d.udp_port))
            except BlockingIOError:
                break
            r["sent"] += 1
            inflight += 1
        try:
            while True:
                take(sock.recv(4096))
                inflight -= 1
        except BlockingIOError:
            if inflight >= window:
                # The window is full: wait for an answer. Only a window
                # without any answer for 200 ms is taken for lost. (Taking
                # a slow answer for a lost one, as this did after 0.5 ms,
                # sent on regardless: under load that filled the daemon's
                # socket buffer and the kernel dropped legitimate clients'
                # datagrams with the flood's.)
                if not select.select([sock], [], [], 0.2)[0]:
                    inflight = 0
    # the answers still on their way are counted too, not left to chance
    sock.settimeout(0.5)
    try:
        while True:
            take(sock.recv(4096))
    except OSError:
        pass
    r["lost_here"] = udp_socket_drops(my_port) - here0
    r["lost_at_daemon"] = udp_socket_drops(d.udp_port) - daemon0
    sock.close()
    r["answered"] = r["ok"] + r["rate"] + r["other"]
    r["unanswered"] = r["sent"] - r["answered"] - r["lost_here"]
    r["seconds"] = t_last - t_first
    return r


def udp_flood_new_torrents(d, seconds):
    """One connection id announcing new info_hashes as fast as it can (was:
    983k torrents in 10 s, then every real client got "tracker full").

    Held to its rate means: the announces the daemon let through are at
    most the bucket (--announce-burst) plus --announce-rate for every
    second of the flood. Let through = what reached the daemon (sent, less
    the datagrams the kernel dropped at the daemon's sockets) less what the
    daemon refused for the rate (its own counter, read once every answer is
    in) less the other errors it answered. The earlier count, sent less
    refused for the rate, took datagrams lost before the daemon or still
    queued, and other refusals, for let through, and once put a round over
    its bound. The attacker's own view (announce replies it got) is shown
    beside it: it misses the answers its socket dropped."""
    key = 'itracker_tracker_refused_total{reason="rate"}'
    before = d.metrics().get(key, 0)
    r = _pump_udp(d, seconds, lambda cid, i: udp_announce_packet(cid, os.urandom(20), 6881, i))
    m = d.metrics()
    torrents = m.get("itracker_tracker_torrents", 0)
    refused = m.get(key, 0) - before
    admitted = r["sent"] - r["lost_at_daemon"] - refused - r["other"]
    bound = ANNOUNCE_BURST + ANNOUNCE_RATE * (r["seconds"] + 0.1)
    return [
        ("flood sent", True,
         "%d announces in %.1f s; seen by the attacker: %d let through, %d refused for the "
         "rate, %d otherwise, %d answers lost at its socket; %d datagrams lost at the "
         "daemon's" % (r["sent"], r["seconds"], r["ok"], r["rate"], r["other"],
                       r["lost_here"], r["lost_at_daemon"])),
        ("torrents held within --max-torrents", torrents <= d.max_torrents,
         "%d torrents" % torrents),
        ("held to its announce rate", admitted <= bound,
         "%d let through (%d sent - %d lost before the daemon - %d refused for the rate - %d "
         "other errors) <= %d + %d/s x %.1f s = %d" % (
             admitted, r["sent"], r["lost_at_daemon"], refused, r["other"], ANNOUNCE_BURST,
             ANNOUNCE_RATE, r["seconds"] + 0.1, bound)),
    ]


def http_flood_new_torrents(d, seconds):
    """Keep-alive HTTP announces of new info_hashes from one address."""
    end = time.monotonic() + seconds
    sent = refused = 0
    s = None
    while time.monotonic() < end:
        if s is None:
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=2,
                                         source_address=("127.0.0.11", 0))
        q = urllib.parse.urlencode({"info_hash": os.urandom(20), "peer_id": "-AT0001-xxxxxxxxxxxx",
                                    "port": 6881, "left": 1})
        try:
            s.sendall(("GET /announce?%s HTTP/1.1\r\nHost: t\r\n\r\n" % q).encode())
            data = s.recv(65536)
            sent += 1
            if b"too many announces" in data:
                refused += 1
            if not data or b"Connection: close" in data:
                s.close()
                s = None
        except OSError:
            s.close()
            s = None
    if s:
        s.close()
    torrents = d.metrics().get("itracker_tracker_torrents", 0)
    return [
        ("flood sent", True, "%d announces, %d rate-refused" % (sent, refused)),
        ("torrents held within --max-torrents", torrents <= d.max_torrents,
         "%d torrents" % torrents),
    ]


def many_ports_one_address(d, seconds):
    """One address with 65k ports in a real swarm (was: it filled the swarm
    and a client asking for many peers got only the attacker's)."""
    ih = LEGIT_HASHES[0]
    ports = iter(range(1, 65536))
    attacker = "127.0.0.12"  # a bucket of its own: the quota, not the rate, must hold
    r = _pump_udp(d, seconds, lambda cid, i: udp_announce_packet(cid, ih, next(ports, 65535), i),
                  source=attacker)
    # a real client asks for 200 peers of that swarm
    sock = udp_socket("127.0.3.1")
    cid = udp_connect(sock, d.udp_port)
    sock.sendto(udp_announce_packet(cid, ih, 7000, 1, numwant=200), ("127.0.0.1", d.udp_port))
    data = sock.recv(8192)
    peers = [data[i:i + 6] for i in range(20, len(data), 6)]
    from_attacker = sum(1 for p in peers if p[:4] == socket.inet_aton(attacker))
    return [
        ("ports sent", True, "%d announces, %d errors" % (r["sent"], r["rate"] + r["other"])),
        ("attacker entries in the swarm <= 16", from_attacker <= 16,
         "%d of %d peers handed out" % (from_attacker, len(peers))),
        ("real peers handed out", len(peers) - from_attacker > 0,
         "%d" % (len(peers) - from_attacker)),
    ]


def forged_ip(d, seconds):
    """ip= and X-Forwarded-For naming a victim or an address no peer can
    have (was: stored as given and handed to other peers). The daemon runs
    with --trusted-proxy 127.0.0.1 and without --accept-ip-param."""
    # ip= names anything, a victim too: ignored without --accept-ip-param.
    # X-Forwarded-For from the trusted proxy is believed, but never an
    # address no peer can have.
    victim = "6.6.6.6"
    bogus = ["0.0.0.0", "255.255.255.255", "224.0.0.1", "ff02::1", "169.254.1.1",
             "192.0.2.1", "2001:db8::1"]
    ih = LEGIT_HASHES[1]
    end = time.monotonic() + seconds
    answers = []
    while time.monotonic() < end:
        for ip in [victim] + bogus:
            q = urllib.parse.urlencode({"info_hash": ih, "peer_id": "-AT0001-xxxxxxxxxxxx",
                                        "port": 6881, "left": 1, "ip": ip})
            code, body, _ = d.http("GET", "/announce?" + q, ATTACKER)
            answers.append(body)
            if ip == victim:
                continue
            # the proxy (127.0.0.1 is trusted) forwarding a bogus client
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=2,
                                         source_address=(ATTACKER, 0))
            s.sendall(("GET /announce?%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                       "X-Forwarded-For: %s\r\n\r\n" % (q, ip)).encode())
            s.recv(4096)
            s.close()
    # what a real client of that swarm is handed
    q = urllib.parse.urlencode({"info_hash": ih, "peer_id": "-AT0001-yyyyyyyyyyyy",
                                "port": 7001, "left": 1, "compact": 0, "numwant": 200})
    _, body, _ = d.http("GET", "/announce?" + q, "127.0.3.2")
    handed = body.decode(errors="replace")
    leaked = [ip for ip in [victim] + bogus if "%d:%s" % (len(ip), ip) in handed]
    return [
        ("forged announces sent", True, "%d" % (2 * len(answers))),
        ("no forged address handed out", not leaked, ",".join(leaked) or "none"),
    ]


def _reload(d, force=False):
    code, body = d.admin("POST", "/v1/admin/reload" + ("?force=1" if force else ""))
    return code, body.decode(errors="replace")


def empty_map_reload(d, seconds):
    """A map truncated to 0 bytes, or left with only a comment, then SIGHUP
    and the admin reload (was: accepted, 0 PIDs, every lookup lost)."""
    pids = d.status()["pids"]
    before = d.status()["reloads"]["rejected"]
    checks = []
    with open(d.map_src) as f:
        good = f.read()
    for content in ("", "# nothing but a comment\n"):
        with open(d.map, "w") as f:
            f.write(content)
        os.kill(d.proc.pid, 1)
        time.sleep(min(0.5, seconds / 4))
        code, body = _reload(d)
        checks.append(("admin reload of %r refused" % content[:8], code == 422, body[:100]))
    st = d.status()
    checks.append(("PIDs kept", st["pids"] == pids, "%d -> %d" % (pids, st["pids"])))
    checks.append(("counted as rejected", st["reloads"]["rejected"] - before == 4,
                   "%d" % (st["reloads"]["rejected"] - before)))
    checks.append(("reason logged", "no prefixes" in d.read_log(), ""))
    with open(d.map, "w") as f:
        f.write(good)
    code, body = _reload(d)
    checks.append(("good map reloads again", code == 200, body[:80]))
    return checks


def fifo_map(d, seconds):
    """A FIFO as the map path, then SIGHUP (was: the main thread blocked in
    open() and SIGTERM was no longer handled)."""
    os.unlink(d.map)
    os.mkfifo(d.map)
    os.kill(d.proc.pid, 1)
    time.sleep(min(1.0, seconds / 2))
    code, body = _reload(d)
    ok_status = d.status()["pids"] > 0
    os.unlink(d.map)
    with open(d.map_src) as src, open(d.map, "w") as dst:
        dst.write(src.read())
    ok_before = d.status()["reloads"]["ok"]
    os.kill(d.proc.pid, 1)  # the main thread must still take signals
    deadline = time.time() + 5
    log_ok = False
    while time.time() < deadline and not log_ok:
        log_ok = d.status()["reloads"]["ok"] > ok_before
        time.sleep(0.05)
    return [
        ("admin reload of a FIFO refused", code == 422 and "regular file" in body, body[:100]),
        ("map still served", ok_status, ""),
        ("SIGHUP handled after the FIFO", log_ok, ""),
    ]


def store_fill_many_sources(d, seconds):
    """Many sources, each under its quotas, together filling the store to
    --max-torrents (was: every real client then got "tracker full"). Runs
    last: afterwards real clients announce new torrents."""
    end = time.monotonic() + seconds
    socks = []
    for i in range(40):
        s = udp_socket("127.0.4.%d" % (i + 1))
        socks.append((s, udp_connect(s, d.udp_port)))
    for s, _ in socks:
        s.setblocking(False)
    # as fast as it is answered: a few announces in flight per source; a
    # source whose answers stopped for 200 ms takes them for lost (taking
    # every slow answer for lost sent on regardless, past what the daemon's
    # socket holds)
    sent = 0
    inflight = [0] * len(socks)
    answered_at = [time.monotonic()] * len(socks)
    while time.monotonic() < end:
        for k, (s, cid) in enumerate(socks):
            try:
                while True:
                    s.recv(4096)
                    inflight[k] -= 1
                    answered_at[k] = time.monotonic()
            except (BlockingIOError, OSError):
                pass
            if inflight[k] > 4:
                if time.monotonic() - answered_at[k] < 0.2:
                    continue
                inflight[k] = 0
                answered_at[k] = time.monotonic()
            try:
                s.sendto(udp_announce_packet(cid, os.urandom(20), 6881, sent),
                         ("127.0.0.1", d.udp_port))
                sent += 1
                inflight[k] += 1
            except (BlockingIOError, OSError):
                pass
    for s, _ in socks:
        s.close()
    m = d.metrics()
    full = m.get("itracker_tracker_torrents", 0)
    # real clients with new torrents now
    refused = 0
    for i in range(20):
        sock = udp_socket("127.0.5.%d" % (i + 1))
        cid = udp_connect(sock, d.udp_port)
        ih = bytes([0xBB, i]) + bytes(18)
        sock.sendto(udp_announce_packet(cid, ih, 6881, 1), ("127.0.0.1", d.udp_port))
        sock.recv(4096)
        sock.sendto(udp_announce_packet(cid, ih, 6881, 2), ("127.0.0.1", d.udp_port))
        data = sock.recv(4096)
        leechers, seeders = struct.unpack(">II", data[12:20]) if len(data) >= 20 else (0, 0)
        refused += leechers < 1
        sock.close()
    m = d.metrics()
    return [
        ("store filled", True, "%d announces from 40 sources, %d torrents held" % (sent, full)),
        ("real clients' new torrents stored", refused == 0, "%d of 20 not stored" % refused),
        ("evictions counted", m.get("itracker_tracker_evicted_torrents_total", 0) > 0,
         "%d" % m.get("itracker_tracker_evicted_torrents_total", 0)),
    ]


ATTACKS = {
    "udp_flood": udp_flood_new_torrents,
    "http_flood": http_flood_new_torrents,
    "many_ports": many_ports_one_address,
    "forged_ip": forged_ip,
    "empty_map": empty_map_reload,
    "fifo_map": fifo_map,
    "store_fill": store_fill_many_sources,
}
