#!/usr/bin/env python3
"""costmap_rss.py - what large filtered cost maps cost in RSS (issue 10: the
first 18 MB one took RSS to 2.4x the baseline until it was cached; different
ones asked for in turn took it to 5x). For each run: a fresh itrackerd
--no-dataplane on loopback with a PIDS-PID map (tools/attack/gen_map.py),
its RSS once started (the baseline), then:

  1. PARALLEL clients POST the same filtered cost map (64 constraints, every
     cost passes: the whole map, numerical) at once and read the answers
     (200, or 503 past one address's share of the workers; one 200 at least);
  2. --distinct different filtered maps of that size, one after the other
     (each must be answered 200);
  3. --distinct different ones at once, whose answers are not read for a
     second (slow readers: 200 or 503, one 200 at least).

Peak RSS is the kernel's high-water mark (VmHWM, restarted after the
start-up), so no sample can miss it. Prints one line a run and
min/median/max of peak/baseline; exit 1 when a run's peak is above
--max-ratio (2) times its baseline or an answer was not as above.

  tools/attack/costmap_rss.py --itrackerd build/itrackerd [--runs 3]
                              [--pids 1300] [--parallel 4] [--distinct 5] [--warm]

--warm: GET the full numerical cost map once before the baseline (the
live state of a daemon that serves it, as in docs/security.md), so the
baseline holds that cached answer.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lib import Daemon  # noqa: E402


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError("no %s" % field)


def send_filtered(port, variant):
    """POST a filtered cost map with 64 constraints that every cost of the
    generated map (1 or more) passes; each variant is a different request
    body with the same answer size."""
    cons = ",".join('"ge %d"' % (i % 2) for i in range(63)) + ',"le %d"' % (1000000 + variant)
    body = ('{"cost-type":{"cost-mode":"numerical","cost-metric":"routingcost"},'
            '"constraints":[%s]}' % cons).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.sendall(b"POST /alto/costmap/filtered HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Content-Type: application/alto-costmapfilter+json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return s


def read_answer(s, out):
    """Read to the close; out gets (status line start, bytes)."""
    n = 0
    head = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        if not head:
            head = chunk[:12]
        n += len(chunk)
    s.close()
    out.append((head, n))


def post_filtered(port, variant, out):
    read_answer(send_filtered(port, variant), out)


def statuses(answers):
    return [h[9:12].decode(errors="replace") for h, _ in answers]


def one_run(a, map_path):
    d = Daemon(a.itrackerd, map_path)
    problems = []
    try:
        if a.warm:
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=120)
            s.sendall(b"GET /alto/costmap/num-routingcost HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            while s.recv(1 << 20):
                pass
            s.close()
        # the high-water mark starts again here (Linux 4.0+): the start-up
        # and the warm-up are not what is measured
        with open("/proc/%d/clear_refs" % d.proc.pid, "w") as f:
            f.write("5")
        base = status_kb(d.proc.pid, "VmRSS")
        same = []
        threads = [threading.Thread(target=post_filtered, args=(d.http_port, 0, same))
                   for _ in range(a.parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        st = statuses(same)
        if len(st) != a.parallel or set(st) - {"200", "503"} or "200" not in st:
            problems.append("same map at once: %s" % st)
        size = max((n for _, n in same), default=0)
        seq = []
        for k in range(a.distinct):
            post_filtered(d.http_port, 1 + k, seq)
        st = statuses(seq)
        if set(st) - {"200"}:
            problems.append("different maps in turn: %s" % st)
        held = [send_filtered(d.http_port, 100 + k) for k in range(a.distinct)]
        time.sleep(1)
        slow = []
        for s in held:
            read_answer(s, slow)
        st = statuses(slow)
        if a.distinct and (set(st) - {"200", "503"} or "200" not in st):
            problems.append("different maps at once, read late: %s" % st)
        peak = status_kb(d.proc.pid, "VmHWM")
        after = status_kb(d.proc.pid, "VmRSS")
    finally:
        d.stop()
    return base, peak, after, size, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--itrackerd", default=os.path.join(HERE, "..", "..", "build", "itrackerd"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pids", type=int, default=1300)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--distinct", type=int, default=5,
                    help="different filtered maps asked for in turn, then at once (0: none)")
    ap.add_argument("--max-ratio", type=float, default=2.0)
    ap.add_argument("--warm", action="store_true",
                    help="the full cost map served (cached) before the baseline")
    a = ap.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".netmap", delete=False) as f:
        f.write(subprocess.run([sys.executable, os.path.join(HERE, "gen_map.py"), str(a.pids)],
                               check=True, stdout=subprocess.PIPE).stdout.decode())
    ratios, failed = [], False
    try:
        for i in range(a.runs):
            base, peak, after, size, problems = one_run(a, f.name)
            ratios.append(peak / base)
            if peak > a.max_ratio * base:
                problems.append("peak above %.1fx" % a.max_ratio)
            failed |= bool(problems)
            print("run %d: baseline %d kB, peak %d kB (%.2fx), after %d kB (%.2fx), "
                  "answer %.1f MB%s" % (i + 1, base, peak, peak / base, after, after / base,
                                        size / 1e6,
                                        "; FAIL: " + "; ".join(problems) if problems else ""))
    finally:
        os.unlink(f.name)
    r = sorted(ratios)
    print("peak/baseline over %d runs: min %.2f median %.2f max %.2f (limit %.1f)" % (
        len(r), r[0], r[len(r) // 2], r[-1], a.max_ratio))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
