"""lib.py - what every attack of tools/attack/ shares: an itrackerd started
on loopback with its own ports and map copy, legitimate clients that keep
announcing and reading /v1/status while an attack runs (their latency and
whether they were refused), and the daemon's RSS over time.

Attackers send from 127.0.0.1; legitimate clients from 127.0.1.0/24 and
127.0.2.0/24 (each its own source address, as real subscribers are), the
status prober from 127.0.0.3. Everything stays on loopback and stops by
itself (bounded in time).
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

ATTACKER = "127.0.0.1"
PROBER = "127.0.0.3"
LEGIT_HASHES = [bytes([0xAA, i]) + bytes(18) for i in range(20)]


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]



def udp_socket_drops(port):
    """Datagrams the kernel dropped at the sockets bound to local UDP port
    (a full receive buffer): the drops column of /proc/net/udp and udp6."""
    total = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port:
                        total += int(cols[-1])
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    return total


def kernel_counters():
    """System-wide counters of this network namespace that say where a
    request can be lost before a server sees it: UDP receive-buffer drops,
    TCP listen-queue overflows and drops, TCP retransmitted segments."""
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for head, vals in zip(lines[::2], lines[1::2]):
            proto, names = head.split(":", 1)
            _, values = vals.split(":", 1)
            for n, v in zip(names.split(), values.split()):
                out["%s.%s" % (proto, n)] = int(v)
    keep = ("Udp.RcvbufErrors", "TcpExt.ListenOverflows", "TcpExt.ListenDrops",
            "Tcp.RetransSegs", "TcpExt.TCPTimeouts")
    return {k: out.get(k, 0) for k in keep}


def _exchange(s, method, target, host):
    """One request without a body on connected socket s, read to the close
    (the socket is closed): (status, body)."""
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                   "Content-Length: 0\r\n\r\n" % (method, target, host)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    code = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return code, body

class Daemon:
    """itrackerd --no-dataplane on 127.0.0.1 with a private copy of the map."""

    def __init__(self, binary, map_src, extra=(), workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="itr-attack-")
        self.map = os.path.join(self.dir, "network.map")
        shutil.copy(map_src, self.map)
        self.map_src = map_src
        self.http_port = free_port(socket.SOCK_STREAM)
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.log = open(os.path.join(self.dir, "itrackerd.log"), "w")
        self.admin_sock = os.path.join(self.dir, "admin.sock")
        extra = list(extra)
        self.max_torrents = int(extra[extra.index("--max-torrents") + 1]) \
            if "--max-torrents" in extra else 1000000
        # ITR_ATTACK_LEGACY=1: a daemon from before the admin socket (to
        # measure an old build); the admin API is then on the listener
        self.legacy = os.environ.get("ITR_ATTACK_LEGACY") == "1"
        cmd = [binary, "--map", self.map, "--no-dataplane",
               "--listen", "127.0.0.1:%d" % self.http_port,
               "--udp", str(self.udp_port), "--udp-bind", "127.0.0.1"] + (
                   [] if self.legacy else ["--admin-socket", self.admin_sock]) + list(extra)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("itrackerd exited at start: " + self.read_log())
            try:
                self.status()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("itrackerd did not answer /v1/status")

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def http(self, method, target, source=PROBER, timeout=2.0):
        """One request on a fresh connection: (status, body, seconds)."""
        t0 = time.monotonic()
        # which step failed goes into the error: a connect that times out
        # (the listen queue) and an answer that does not come differ
        try:
            s = socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout,
                                         source_address=(source, 0))
        except OSError as e:
            raise OSError("connect: %s after %.0f ms" % (e, (time.monotonic() - t0) * 1000))
        try:
            code, body = _exchange(s, method, target, "t")
        except OSError as e:
            raise OSError("request: %s after %.0f ms" % (e, (time.monotonic() - t0) * 1000))
        return code, body, time.monotonic() - t0

    def admin(self, method, target, timeout=5.0):
        """One request to the admin API's Unix socket: (status, body)."""
        if self.legacy:
            code, body, _ = self.http(method, target, "127.0.0.1")
            return code, body
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.admin_sock)
        except OSError:
            s.close()
            raise
        return _exchange(s, method, target, "admin")

    def status(self):
        code, body, _ = self.http("GET", "/v1/status")
        if code != 200:
            raise OSError("status %d" % code)
        return json.loads(body)

    def metrics(self):
        code, body, _ = self.http("GET", "/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM; seconds until it exited (None if it had to be killed)."""
        if not self.alive():
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            return time.monotonic() - t0
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


# ---- BEP 15 -------------------------------------------------------------

def udp_socket(source):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    return s


def udp_connect(sock, port, timeout=2.0):
    sock.settimeout(timeout)
    tid = random.getrandbits(32)
    sock.sendto(struct.pack(">QII", 0x41727101980, 0, tid), ("127.0.0.1", port))
    data = sock.recv(64)
    action, rtid, cid = struct.unpack(">IIQ", data[:16])
    assert action == 0 and rtid == tid
    return cid


def udp_announce_packet(cid, info_hash, port, tid, left=1, numwant=50, event=0, ip=0):
    return struct.pack(">QII20s20sQQQIIIiH", cid, 1, tid, info_hash,
                       b"-AT0001-" + os.urandom(6).hex()[:12].encode(), 0, left, 0,
                       event, ip, random.getrandbits(32), numwant, port)


# ---- legitimate load and measurement -------------------------------------

def timeout_cause(kind, t, label, phase, error, before, after):
    """A legitimate announce without an answer, and where it was most
    likely lost, from what the kernel counted while it waited: the daemon's
    UDP socket dropping datagrams (its receive buffer full), the TCP listen
    queue overflowing. System-wide counters include other programs' traffic
    on the machine; the daemon's socket drops are its own."""
    drops = after[0] - before[0]
    k = {n: after[1][n] - before[1][n] for n in after[1]}
    if kind == "udp" and drops > 0:
        cause = "kernel: the daemon's UDP socket dropped %d datagrams meanwhile " \
                "(receive buffer full)" % drops
    elif kind == "udp" and k["Udp.RcvbufErrors"] > 0:
        cause = "kernel: %d UDP datagrams dropped at full receive buffers meanwhile, " \
                "not at the daemon's socket (the client's?)" % k["Udp.RcvbufErrors"]
    elif kind == "http" and (k["TcpExt.ListenOverflows"] or k["TcpExt.ListenDrops"]):
        cause = "kernel: TCP listen queue overflowed %d times (%d drops) meanwhile" % (
            k["TcpExt.ListenOverflows"], k["TcpExt.ListenDrops"])
    else:
        cause = "no drop counted by the kernel: the daemon got it and did not answer in time"
    return {"kind": kind, "t_s": round(t, 1), "attack": label, "phase": phase, "error": error,
            "daemon_udp_socket_drops": drops, "kernel": k, "cause": cause}


class Observer:
    """While running: legit announces (UDP and HTTP, each from its own
    address, into LEGIT_HASHES), /v1/status probes, RSS samples."""

    def __init__(self, daemon, period=0.02):
        self.d = daemon
        self.period = period
        self.stop_flag = threading.Event()
        self.t0 = time.monotonic()
        self.status_ms = []
        self.status_series = []  # (t, ms)
        self.status_fail = 0
        self.announce_ms = []
        self.refused = []  # (kind, reason)
        self.rss = []  # (t, kB)
        self.threads = []
        self.n = 0
        self.label = ""  # what runs meanwhile (the soak names the attack)
        # each legitimate announce that got no answer, with what the kernel
        # counted meanwhile (see timeout_cause)
        self.timeouts = []

    def __enter__(self):
        for fn in (self._status_loop, self._announce_loop, self._rss_loop):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(5)

    def _status_loop(self):
        while not self.stop_flag.is_set():
            try:
                code, _, secs = self.d.http("GET", "/v1/status", PROBER)
                self.status_ms.append(secs * 1000)
                self.status_series.append((time.monotonic() - self.t0, secs * 1000))
                if code != 200:
                    self.status_fail += 1
            except OSError:
                self.status_ms.append(2000.0)
                self.status_fail += 1
            time.sleep(self.period)

    def _announce_loop(self):
        cids = {}
        while not self.stop_flag.is_set():
            self.n += 1
            k = self.n % 200
            ih = LEGIT_HASHES[self.n % len(LEGIT_HASHES)]
            kind = "udp" if self.n % 2 else "http"
            before = (udp_socket_drops(self.d.udp_port), kernel_counters())
            sent_at = time.monotonic() - self.t0
            label = self.label
            phase = ["announce"]
            try:
                if kind == "udp":
                    self._udp_once("127.0.1.%d" % (k + 10), ih, cids, phase)
                else:
                    self._http_once("127.0.2.%d" % (k + 10), ih)
            except OSError as e:
                self.announce_ms.append(2000.0)
                # which kind and when: a UDP datagram lost on a full socket
                # buffer and an HTTP stall are different findings
                self.refused.append(("%s timeout at %.0f s" % (kind, sent_at), str(e)))
                after = (udp_socket_drops(self.d.udp_port), kernel_counters())
                self.timeouts.append(timeout_cause(kind, sent_at, label, phase[0], str(e),
                                                   before, after))
                stale = cids.pop("127.0.1.%d" % (k + 10), None) if kind == "udp" else None
                if stale:
                    stale[0].close()  # a late answer must not pass for the next one
            time.sleep(self.period)

    def _udp_once(self, source, ih, cids, phase):
        t0 = time.monotonic()
        entry = cids.get(source)
        if entry is None or time.monotonic() - entry[1] > 60:
            if entry is not None:
                entry[0].close()
            phase[0] = "connect"
            sock = udp_socket(source)
            entry = (sock, time.monotonic(), udp_connect(sock, self.d.udp_port))
            cids[source] = entry
            phase[0] = "announce"
        sock, _, cid = entry
        tid = random.getrandbits(32)
        sock.sendto(udp_announce_packet(cid, ih, 6881, tid), ("127.0.0.1", self.d.udp_port))
        data = sock.recv(4096)
        self.announce_ms.append((time.monotonic() - t0) * 1000)
        action = struct.unpack(">I", data[:4])[0]
        if action != 1:
            self.refused.append(("udp", data[8:].decode(errors="replace")))

    def _http_once(self, source, ih):
        q = urllib.parse.urlencode({"info_hash": ih, "peer_id": "-AT0001-000000000000",
                                    "port": 6881, "left": 1, "compact": 1})
        code, body, secs = self.d.http("GET", "/announce?" + q, source)
        self.announce_ms.append(secs * 1000)
        if code != 200 or b"failure reason" in body or b"warning message" in body:
            self.refused.append(("http", body[:120].decode(errors="replace")))

    def _rss_loop(self):
        while not self.stop_flag.is_set():
            try:
                self.rss.append((time.monotonic() - self.t0, self.d.rss_kb()))
            except OSError:
                pass
            time.sleep(0.1)

    def summary(self):
        return {
            "status_p50_ms": round(percentile(self.status_ms, 50), 2),
            "status_p99_ms": round(percentile(self.status_ms, 99), 2),
            "status_n": len(self.status_ms),
            "status_failed": self.status_fail,
            "announce_p99_ms": round(percentile(self.announce_ms, 99), 2),
            "announce_n": len(self.announce_ms),
            "legit_refused": len(self.refused),
            "refusals": self.refused[:3],
            "timeouts": self.timeouts,
            "rss_max_kb": max((r for _, r in self.rss), default=0),
        }
