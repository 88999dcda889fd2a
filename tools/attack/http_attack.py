#!/usr/bin/env python3
"""http_attack.py - hostile HTTP clients against an itrackerd on loopback,
with the figures that say whether other clients were hurt.

    http_attack.py ATTACK --port P --pid PID [--seconds S] [options]

ATTACK is one of:
  slowloris        many sockets that send one header line every --interval s
                   (each the server ends must have had an answer: 408, 503)
  conn-limit       --sockets held connections from one address, and meanwhile
                   more requests from it: over the per-address limit each
                   must get 503 with Retry-After, not a silent close
  conn-churn       idle connections opened and closed at random, up to
                   --sockets at once; afterwards --sockets new idle ones
                   must all be held (none refused: the server lost no room)
  many-args        GETs with --args '&'-separated query arguments
  slow-readers     GETs of the full cost map that never read the answer
  constraint-bomb  filtered cost map POSTs with --constraints constraints
  endpoint-bomb    endpoint cost POSTs of about --kb kilobytes of addresses
  forwarded-admin  admin reloads that a reverse proxy forwarded
  announce-flood   --parallel announces at once (proxy mode with an upstream
                   that never answers: each holds a worker until the timeout)

While it runs, a legitimate client (from 127.0.0.1) asks GET /v1/status
every 20 ms and the daemon's RSS (from /proc/PID) is sampled; the attack
comes from --source (127.0.0.2 by default, so a per-address limit on the
attacker never touches the legitimate client). One JSON line goes to stdout:
p50/p99/max latency of /v1/status, its failures, RSS at the start and at its
highest, and the attack's answers by status ("none" = no answer). The exit
status is 1 when a target is missed: p99 over --p99-ms, RSS over --rss-factor
times the start, a failed /v1/status (a 503 counts as failed too, except
under conn-churn, which fills the whole connection limit on purpose), or
(for request attacks) a request without an answer or with a 2xx where an
error is due.

Loopback only, bounded in time (--seconds, at most 600) and in sockets
(--sockets, at most 5000).
"""
import argparse
import json
import multiprocessing
import os
import random
import select
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(port, source, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((HOST, port))
    return s


def read_status(s, deadline_s=10.0):
    """Status code of the answer on s (and drain it), None if none came."""
    s.settimeout(deadline_s)
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return None
            buf += chunk
        return int(buf.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def request(port, source, raw, deadline_s=10.0):
    try:
        s = connect(port, source)
    except OSError:
        return "refused"
    try:
        s.sendall(raw)
        return read_status(s, deadline_s)
    except OSError:
        return None
    finally:
        s.close()


def probe(port, seconds, out):
    """The legitimate client: GET /v1/status every 20 ms, one connection
    each. A process of its own: the attack's threads must not delay its
    clock (they share one interpreter lock)."""
    raw = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    lat, failures, busy = [], 0, 0
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)  # not the attacker's --nice
    except OSError:
        pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        st = request(port, "127.0.0.1", raw, 5.0)
        dt = (time.monotonic() - t0) * 1000
        if st == 503:
            busy += 1
        elif st != 200:
            failures += 1
            dt = max(dt, 5000.0)
        lat.append(dt)
        time.sleep(max(0.0, 0.02 - dt / 1000))
    out.send((lat, failures, busy))


class Sampler(threading.Thread):
    def __init__(self, pid, stop):
        super().__init__(daemon=True)
        self.pid, self.stop, self.peak = pid, stop, 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                pass
            time.sleep(0.1)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(p / 100.0 * len(v)))], 2)


# ---- the attacks: each runs until stop, fills answers{status: count} ----


SLOW_HEAD = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"  # a request never finished


def hold_open(a, stop, answers, count, blocking=True):
    """count connections from --source that each sent SLOW_HEAD; a
    connection refused is counted in answers."""
    socks = []
    for _ in range(count):
        if stop.is_set():
            break
        try:
            s = connect(a.port, a.source, 2.0)
            s.sendall(SLOW_HEAD)
            if not blocking:
                s.setblocking(False)
            socks.append(s)
        except OSError:
            answers["refused"] = answers.get("refused", 0) + 1
    return socks


def slowloris(a, stop, answers):
    socks = hold_open(a, stop, answers, a.sockets, blocking=False)
    answers["opened"] = len(socks)
    closed = 0

    def ended(s):
        """The server's last word on s (it closed it): every such request
        must have had an answer (408 for the deadline, 503 over the
        per-address limit)."""
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        key = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "none"
        answers[key] = answers.get(key, 0) + 1
        if key == "none":
            answers["bad"] = answers.get("bad", 0) + 1
        s.close()

    while not stop.wait(a.interval):
        alive = []
        # poll, not select: more than FD_SETSIZE (1,024) sockets
        poller = select.poll()
        for s in socks:
            poller.register(s, select.POLLIN)
        readable = {fd for fd, _ in poller.poll(0)}
        for s in socks:
            if s.fileno() in readable:
                closed += 1
                ended(s)
                continue
            try:
                s.sendall(b"X-Slow: 1\r\n")
                alive.append(s)
            except (BlockingIOError, InterruptedError):
                alive.append(s)
            except OSError:
                closed += 1
                ended(s)
        socks = alive
        # keep the pressure: reopen what the server closed
        socks += hold_open(a, stop, answers, a.sockets - len(socks), blocking=False)
    answers["closed_by_server"] = closed
    for s in socks:
        s.close()


def conn_limit(a, stop, answers):
    """--sockets connections held open from --source (more than the
    per-address limit), and meanwhile one more request after the other
    from the same address: each must be answered, 503 with Retry-After
    while the address holds its limit, never closed without a word."""
    held = hold_open(a, stop, answers, a.sockets)
    answers["held"] = len(held)
    raw = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        try:
            s = connect(a.port, a.source, 2.0)
        except OSError:
            answers["bad"] = answers.get("bad", 0) + 1
            answers["refused"] = answers.get("refused", 0) + 1
            continue
        try:
            s.sendall(raw)
        except OSError:
            pass  # answered and shut already: the answer is still there to read
        s.settimeout(5.0)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        st = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else None
        key = str(st) if st is not None else "none"
        answers[key] = answers.get(key, 0) + 1
        if st not in (200, 503) or (st == 503 and b"\r\nRetry-After: " not in data):
            answers["bad"] = answers.get("bad", 0) + 1
        time.sleep(0.01)
    for s in held:
        s.close()


def conn_churn(a, stop, answers):
    """Rounds of idle connections from --source: open a few, close a
    random share of what is held (at most --sockets at once). When the
    attack ends every one is closed, and --sockets new idle connections
    must then all be held open by the server: a 503 or a close means it
    still counts connections that are gone (room lost for good)."""
    rng = random.Random(7)
    held = []
    rounds = 0
    while not stop.is_set():
        room = a.sockets - len(held)
        if room > 0:
            held += hold_open(a, stop, answers, rng.randint(1, room))
        rng.shuffle(held)
        k = rng.randint(0, len(held))
        for s in held[:k]:
            # abortive (RST): thousands of closes a second would otherwise
            # run the source address out of ports in TIME_WAIT
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        held = held[k:]
        rounds += 1
    for s in held:
        s.close()
    answers["rounds"] = rounds
    time.sleep(1.0)  # the server sees every close
    after = hold_open(a, threading.Event(), answers, a.sockets)
    time.sleep(0.5)
    for s in after:
        s.settimeout(0.2)
        try:
            data = s.recv(4096)
            key = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "closed"
        except socket.timeout:
            key = "held"
        except OSError:
            key = "closed"
        answers["after_" + key] = answers.get("after_" + key, 0) + 1
        if key != "held":
            answers["bad"] = answers.get("bad", 0) + 1
        s.close()
    missing = a.sockets - len(after)  # refused at connect
    if missing:
        answers["bad"] = answers.get("bad", 0) + missing


def request_loop(a, stop, answers, make_request, good):
    """Send requests one after the other from --parallel threads."""

    def worker():
        while not stop.is_set():
            st = request(a.port, a.source, make_request(), 30.0)
            key = str(st) if st is not None else "none"
            with lock:
                answers[key] = answers.get(key, 0) + 1
                if st is None or st == "refused" or (isinstance(st, int) and not good(st)):
                    answers["bad"] = answers.get("bad", 0) + 1

    lock = threading.Lock()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def many_args(a, stop, answers):
    q = "&".join("a=1" for _ in range(a.args))
    raw = ("GET /announce?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % q).encode()
    # answered at all, with a status of its own (the tracker's failure
    # reason is a 200 in BEP 3; a 4xx from the server is fine too)
    request_loop(a, stop, answers, lambda: raw, lambda st: st < 500)


def slow_readers(a, stop, answers):
    socks = []
    raw = b"GET /alto/costmap/num-routingcost HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(a.sockets):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind((a.source, 0))
            s.settimeout(2.0)
            s.connect((HOST, a.port))
            s.sendall(raw)
            socks.append(s)
        except OSError:
            answers["refused"] = answers.get("refused", 0) + 1
    answers["opened"] = len(socks)
    stop.wait()
    for s in socks:
        s.close()


def constraint_bomb(a, stop, answers):
    cons = ",".join('"ge %d"' % (i % 1000) for i in range(a.constraints))
    body = ('{"cost-type":{"cost-mode":"numerical","cost-metric":"routingcost"},'
            '"constraints":[%s]}' % cons).encode()
    raw = (b"POST /alto/costmap/filtered HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/alto-costmapfilter+json\r\nContent-Length: %d\r\n\r\n" %
           len(body)) + body
    answers["request_bytes"] = len(raw)
    request_loop(a, stop, answers, lambda: raw, lambda st: 400 <= st < 500 or st == 503)


def endpoint_bomb(a, stop, answers):
    eps, n, size = [], 0, 0
    while size < a.kb * 1024:
        eps.append("ipv4:10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255))
        size += len(eps[-1]) + 3
        n += 1
    body = ('{"cost-type":{"cost-mode":"numerical","cost-metric":"routingcost"},'
            '"endpoints":{"srcs":["ipv4:10.10.1.1"],"dsts":[%s]}}' %
            ",".join('"%s"' % e for e in eps)).encode()
    raw = (b"POST /alto/endpointcost HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/alto-endpointcostparams+json\r\nContent-Length: %d\r\n\r\n"
           % len(body)) + body
    answers["request_bytes"] = len(raw)
    # an answer either way, in bounded time: 200 for what fits the bounds
    request_loop(a, stop, answers, lambda: raw, lambda st: st < 500 or st == 503)


def forwarded_admin(a, stop, answers):
    reqs = [
        b"POST /v1/admin/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"X-Forwarded-For: 203.0.113.7\r\nContent-Length: 0\r\n\r\n",
        b"POST /v1/admin/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Forwarded: for=203.0.113.7\r\nContent-Length: 0\r\n\r\n",
    ]
    i = [0]

    def pick():
        i[0] += 1
        return reqs[i[0] % 2]

    a.parallel = 1
    # from the proxy's own address (loopback): only a refusal is right
    a.source = "127.0.0.1"
    request_loop(a, stop, answers, pick, lambda st: st in (401, 403))


def announce_flood(a, stop, answers):
    n = [0]

    def make():
        n[0] += 1
        return ("GET /announce?info_hash=%%%02x%s&peer_id=-XX0001-%012d&port=6881&uploaded=0"
                "&downloaded=0&left=1&compact=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                % (n[0] & 255, "a" * 19, n[0])).encode()

    # every announce gets an answer: the tracker's failure reason (200)
    # once the upstream timed out, or 503 when the workers are taken
    request_loop(a, stop, answers, make, lambda st: st in (200, 503))


# Attacks that fill the server's connection limit on purpose (no limit per
# address in their test): there the legitimate client's 503s are the limit
# at work, and only a request left without an answer is a failure.
FILLS_THE_LIMIT = {"conn-churn"}

ATTACKS = {
    "announce-flood": announce_flood,
    "slowloris": slowloris,
    "conn-limit": conn_limit,
    "conn-churn": conn_churn,
    "many-args": many_args,
    "slow-readers": slow_readers,
    "constraint-bomb": constraint_bomb,
    "endpoint-bomb": endpoint_bomb,
    "forwarded-admin": forwarded_admin,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("attack", choices=sorted(ATTACKS))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="itrackerd's pid (RSS)")
    ap.add_argument("--source", default="127.0.0.2")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--args", type=int, default=1500)
    ap.add_argument("--constraints", type=int, default=3000)
    ap.add_argument("--kb", type=int, default=210)
    ap.add_argument("--p99-ms", type=float, default=100)
    ap.add_argument("--rss-factor", type=float, default=2.0)
    ap.add_argument("--nice", type=int, default=0,
                    help="the attack's niceness: on one machine it competes with the "
                    "daemon for CPU, which a remote attacker does not")
    ap.add_argument("--warm", action="append", default=[],
                    help="GET this path once before the baseline (caches built)")
    a = ap.parse_args()
    a.seconds = min(a.seconds, 600)
    a.sockets = min(a.sockets, 5000)
    if not a.source.startswith("127."):
        sys.exit("http_attack: loopback only")

    for path in a.warm:
        s = connect(a.port, "127.0.0.1", 60)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        while s.recv(1 << 20):
            pass
        s.close()
    time.sleep(0.3)
    base = rss_kb(a.pid)
    if a.nice:
        os.nice(a.nice)
    stop = threading.Event()
    sampler = Sampler(a.pid, stop)
    answers = {}
    def run_attack():
        try:
            ATTACKS[a.attack](a, stop, answers)
        except Exception as e:  # an attack that breaks is not one that held
            answers["crashed"] = repr(e)

    attack = threading.Thread(target=run_attack, daemon=True)
    sampler.start()
    attack.start()
    time.sleep(min(1.0, a.seconds / 4))  # the attack is in place first
    recv, send = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.Process(target=probe, args=(a.port, a.seconds, send), daemon=True)
    prober.start()
    lat, failures, busy = recv.recv()
    prober.join(10)
    stop.set()
    attack.join(60)
    sampler.join(2)
    out = {
        "attack": a.attack,
        "seconds": a.seconds,
        "status_requests": len(lat),
        "status_p50_ms": pct(lat, 50),
        "status_p99_ms": pct(lat, 99),
        "status_max_ms": pct(lat, 100),
        "status_failures": failures,
        "status_busy": busy,
        "rss_start_kb": base,
        "rss_peak_kb": sampler.peak,
        "answers": answers,
    }
    problems = []
    if out["status_p99_ms"] is None or out["status_p99_ms"] > a.p99_ms:
        problems.append("status p99 %s ms" % out["status_p99_ms"])
    if failures:
        problems.append("%d status failures" % failures)
    if busy and a.attack not in FILLS_THE_LIMIT:
        problems.append("%d status requests answered 503" % busy)
    if sampler.peak > a.rss_factor * base:
        problems.append("RSS %d kB > %.1f x %d kB" % (sampler.peak, a.rss_factor, base))
    if answers.get("crashed"):
        problems.append("the attack itself failed: %s" % answers["crashed"])
    if answers.get("bad"):
        problems.append("%d attack requests unanswered or wrongly answered" % answers["bad"])
    out["ok"] = not problems
    out["problems"] = problems
    print(json.dumps(out, sort_keys=True))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
