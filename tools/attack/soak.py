#!/usr/bin/env python3
"""soak.py - the long run of the attack suite (make bench): itrackerd on
loopback under legitimate load for --minutes while every attack of
tools/attack/*_attacks.py runs in turn, again and again; then the attacks
stop and the flood's torrents expire (--peer-expiry 60 here). Recorded
every second: RSS, /v1/status latency, torrents held; /metrics counters
(every *_total) are read every 2 s and must never go down. Writes
DIR/soak.csv, DIR/soak.png (gnuplot) and DIR/soak.json.

  tools/attack/soak.py --itrackerd build/itrackerd [--minutes 3] [--out DIR]
                      [--sanitize]

30 minutes: tools/attack/soak.py --minutes 30 (or make bench SOAK_MINUTES=30).
--sanitize is for an ASan/UBSan build (make build/asan/itrackerd, or make
bench SOAK_SANITIZE=1): every sanitizer report is fatal to the daemon and
written to DIR/sanitizer.*, and the soak fails on any such file or on a
non-zero exit status (LeakSanitizer reports at exit). ASan's quarantine
is capped (SOAK_ASAN_QUARANTINE_MB, default 16) so that RSS over time
still shows the daemon's own memory rather than the freed blocks ASan
holds back to catch use-after-free; RSS after the expiry against the
baseline is only reported then (ASan's allocator does not give memory
back as glibc does), while RSS flat over the cycles is still checked.
A legitimate announce without an answer is listed with the attack that
ran then and where the kernel lost packets meanwhile (the daemon's UDP
socket full, the TCP listen queue overflowing), so that a loss before the
daemon and one in it are told apart; the daemon's UDP socket drops are
also counted by attack. --legit-period 0.005 sends the legitimate load 4x
as often, to meet a rare loss in a short run.
Exit 1 when the daemon died, a counter went down, a legitimate client was
refused or not answered, a /v1/status probe failed, p99 of /v1/status or of a legitimate announce over the whole run
exceeded 100 ms, RSS after the expiry is above 2x the baseline, or RSS was
not flat: the highest RSS of the last full cycle of attacks above 1.25x
that of the second cycle (the first one warms up the caches).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lib import Daemon, Observer, percentile, udp_socket_drops  # noqa: E402
from run import LAST, load_attacks, run_niced  # noqa: E402


class CounterWatch(threading.Thread):
    """Reads /metrics every 2 s; a *_total series that goes down is noted."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop_flag = threading.Event()
        self.last = {}
        self.decreases = []
        self.torrents = []  # (t, torrents)
        self.t0 = time.monotonic()
        self.scrapes = 0

    def run(self):
        while not self.stop_flag.wait(2):
            try:
                m = self.d.metrics()
            except OSError:
                continue
            self.scrapes += 1
            self.torrents.append((time.monotonic() - self.t0,
                                  m.get("itracker_tracker_torrents", 0)))
            for name, v in m.items():
                if "_total" not in name.split("{")[0]:
                    continue
                if name in self.last and v < self.last[name]:
                    self.decreases.append((name, self.last[name], v))
                self.last[name] = v


def rss_trend(rss, t_from, t_to):
    """Least-squares slope of RSS (kB per minute) between two times."""
    pts = [(t, r) for t, r in rss if t_from <= t <= t_to]
    if len(pts) < 2:
        return 0.0
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mr = sum(r for _, r in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    return 60 * sum((t - mt) * (r - mr) for t, r in pts) / var if var else 0.0


def sanitizer_env(out):
    """Environment for an ASan/UBSan daemon: any report is fatal and logged
    under out (sanitizer.PID), leaks are checked at exit."""
    for f in os.listdir(out):
        if f.startswith("sanitizer."):
            os.unlink(os.path.join(out, f))
    log = os.path.join(out, "sanitizer")
    quarantine = os.environ.get("SOAK_ASAN_QUARANTINE_MB", "16")
    os.environ["ASAN_OPTIONS"] = ":".join([
        "halt_on_error=1", "detect_leaks=1", "log_path=" + log,
        "quarantine_size_mb=" + quarantine, "allocator_release_to_os_interval_ms=1000",
        "detect_stack_use_after_return=0"])
    os.environ["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:log_path=" + log
    os.environ["LSAN_OPTIONS"] = "log_path=" + log
    return log


def sanitizer_reports(out):
    return sorted(os.path.join(out, f) for f in os.listdir(out) if f.startswith("sanitizer."))


def plot(csv, png, title):
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot not found (apt-get install gnuplot-nox)"
    script = """
set terminal pngcairo size 1000,700
set output '%s'
set datafile separator ','
set multiplot layout 2,1 title '%s'
set ylabel 'RSS (MiB)'
set y2label 'torrents'
set y2tics
set ytics nomirror
plot '%s' using 1:($2/1024) skip 1 with lines title 'RSS', \\
     '' using 1:4 skip 1 axes x1y2 with lines title 'torrents'
set xlabel 'seconds'
set ylabel '/v1/status (ms)'
unset y2label
unset y2tics
set logscale y
plot '%s' using 1:3 skip 1 with points pt 7 ps 0.3 title '/v1/status latency'
unset multiplot
""" % (png, title, csv, csv)
    p = subprocess.run([gp], input=script.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return p.stdout.decode().strip() if p.returncode else None


def final_rss_of(obs, settled):
    return sorted(settled)[len(settled) // 2] if settled else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--itrackerd", default=os.path.join(HERE, "..", "..", "build", "itrackerd"))
    ap.add_argument("--map", default=os.path.join(HERE, "..", "..", "maps", "example.netmap"))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=10.0, help="per attack (default 10)")
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--legit-period", type=float, default=0.02,
                    help="seconds between legitimate announces, and between /v1/status "
                    "probes (default 0.02); smaller finds rare losses in a shorter run")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "build", "soak"))
    ap.add_argument("--sanitize", action="store_true",
                    help="the daemon is an ASan/UBSan build: reports are fatal and checked")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.sanitize:
        sanitizer_env(a.out)

    attacks = load_attacks()
    order = [n for n in attacks if n not in LAST] + [n for n in LAST if n in attacks]
    d = Daemon(a.itrackerd, a.map, ["--trusted-proxy", "127.0.0.1", "--max-torrents", "20000",
                                    "--peer-expiry", "60"])
    watch = CounterWatch(d)
    failures = []
    runs = {}
    with Observer(d, period=a.legit_period) as obs:
        watch.start()
        time.sleep(5)
        base_rss = sorted(r for _, r in obs.rss)[len(obs.rss) // 2]
        end = time.monotonic() + a.minutes * 60
        i = 0
        cycle_starts = []  # seconds since obs.t0 at which each full round of attacks began
        loadavg = [(0.0, os.getloadavg())]
        while time.monotonic() < end and d.alive():
            name = order[i % len(order)]
            if i % len(order) == 0:
                cycle_starts.append(time.monotonic() - obs.t0)
                loadavg.append((time.monotonic() - obs.t0, os.getloadavg()))
            i += 1
            obs.label = name
            drops0 = udp_socket_drops(d.udp_port)
            checks = run_niced(attacks[name], d, min(a.seconds, max(1, end - time.monotonic())),
                               a.nice)
            bad = ["%s (%s)" % (c, det) for c, ok, det in checks if not ok]
            runs.setdefault(name, {"runs": 0, "failed": 0, "daemon_udp_socket_drops": 0})
            runs[name]["runs"] += 1
            # datagrams the kernel dropped at the daemon's full UDP socket
            runs[name]["daemon_udp_socket_drops"] += udp_socket_drops(d.udp_port) - drops0
            if bad:
                runs[name]["failed"] += 1
                failures.append("%s: %s" % (name, "; ".join(bad)))
        obs.label = "after the attacks"
        attack_end = time.monotonic() - obs.t0
        cycle_starts.append(attack_end)
        loadavg.append((attack_end, os.getloadavg()))
        # the flood's torrents expire: peer expiry 60 s, janitor every 30 s
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and d.alive():
            if watch.torrents and watch.torrents[-1][1] <= 40 and \
                    watch.torrents[-1][0] > attack_end + 60:
                break
            time.sleep(2)
        time.sleep(3)
        settled = [r for t, r in obs.rss[-20:]]
        watch.stop_flag.set()
    alive = d.alive()
    stop_s = d.stop()
    exit_code = d.proc.returncode
    reports = sanitizer_reports(a.out) if a.sanitize else []
    s = obs.summary()
    # RSS over time: start, end, highest, slope; flat = the last full cycle of
    # attacks peaks no higher than 1.25x the second (the first warms caches)
    attack_rss = [r for t, r in obs.rss if t <= attack_end]
    cycle_peaks = []
    for c0, c1 in zip(cycle_starts, cycle_starts[1:]):
        peak = max((r for t, r in obs.rss if c0 <= t < c1), default=0)
        cycle_peaks.append(peak)
    # the last round is whole only when the deadline fell after it ended
    whole = cycle_peaks[:-1] if len(cycle_peaks) > 2 else cycle_peaks
    flat_ref = whole[1] if len(whole) > 1 else (whole[0] if whole else 0)
    flat_last = whole[-1] if whole else 0
    rss_stats = {
        "start_kb": base_rss, "end_kb": final_rss_of(obs, settled),
        "max_kb": max(attack_rss, default=0),
        "slope_kb_per_min": round(rss_trend(obs.rss, 0, attack_end), 1),
        "slope_after_first_cycle_kb_per_min": round(
            rss_trend(obs.rss, cycle_starts[1] if len(cycle_starts) > 2 else 0, attack_end), 1),
        "cycle_peaks_kb": cycle_peaks,
    }
    final_rss = final_rss_of(obs, settled)
    # one row a second: RSS, the slowest /v1/status of that second, torrents
    rows = {}
    for t, r in obs.rss:
        rows.setdefault(int(t), [r, 0.0, 0])[0] = r
    for t, ms in obs.status_series:
        row = rows.setdefault(int(t), [0, 0.0, 0])
        row[1] = max(row[1], ms)
    for t, n in watch.torrents:
        rows.setdefault(int(t), [0, 0.0, 0])[2] = n
    csv = os.path.join(a.out, "soak.csv")
    with open(csv, "w") as f:
        f.write("t_s,rss_kb,status_max_ms,torrents\n")
        last = [0, 0.0, 0]
        for t in sorted(rows):
            r = rows[t]
            r = [r[0] or last[0], r[1], r[2] or last[2]]
            last = r
            f.write("%d,%d,%.2f,%d\n" % (t, r[0], r[1], r[2]))
    png = os.path.join(a.out, "soak.png")
    plot_err = plot(csv, png, "itrackerd soak: %.0f min of attacks, then expiry" % a.minutes)
    checks = [
        ("daemon alive to the end", alive, ""),
        ("SIGTERM stops it", stop_s is not None and stop_s < 5, "%s s" % stop_s),
        ("exit status 0", exit_code == 0, "%s" % exit_code),
        ("counters never decrease", not watch.decreases,
         "%d scrapes, %s" % (watch.scrapes, watch.decreases[:3] or "none down")),
        ("no legit client refused", s["legit_refused"] == 0, str(s["refusals"])),
        ("every /v1/status probe answered", s["status_failed"] == 0,
         "%d of %d without a 200 in 2 s" % (s["status_failed"], s["status_n"])),
        ("status p99 <= 100 ms", s["status_p99_ms"] <= 100,
         "%.1f ms over %d probes" % (s["status_p99_ms"], s["status_n"])),
        ("legit announce p99 <= 100 ms", s["announce_p99_ms"] <= 100,
         "%.1f ms over %d" % (s["announce_p99_ms"], s["announce_n"])),
        # ASan's allocator keeps freed size-class regions (and a quarantine)
        # where glibc gives memory back: under --sanitize this is reported,
        # the normal build's soak is the one that holds it
        ("RSS after expiry <= 2x baseline" + (" (info under ASan)" if a.sanitize else ""),
         final_rss <= 2 * base_rss or a.sanitize,
         "%d kB after, %d kB baseline, %d kB at most (%.2fx, %.2fx)" % (
             final_rss, base_rss, s["rss_max_kb"], final_rss / base_rss,
             s["rss_max_kb"] / base_rss)),
        ("RSS flat over the cycles", flat_last <= 1.25 * flat_ref,
         "peak of cycle 2 %d kB, of the last whole cycle (%d) %d kB; slope %.0f kB/min "
         "(%.0f after cycle 1)" % (flat_ref, len(whole), flat_last,
                                   rss_stats["slope_kb_per_min"],
                                   rss_stats["slope_after_first_cycle_kb_per_min"])),
        ("attacks' own checks", not failures, "; ".join(failures[:3]) or "all held"),
        ("plot written", plot_err is None, plot_err or png),
    ]
    if a.sanitize:
        checks.append(("0 sanitizer reports", not reports, ", ".join(reports) or "none"))
    for c, ok, det in checks:
        print("  %-4s %-36s %s" % ("ok" if ok else "FAIL", c, det))
    for to in s["timeouts"]:
        print("  legit %s announce (%s) without an answer at %.0f s during %s: %s [%s]" % (
            to["kind"], to["phase"], to["t_s"], to["attack"] or "-", to["cause"], to["error"]))
    print("  attacks run: %s" % ", ".join("%s x%d" % (n, r["runs"]) for n, r in runs.items()))
    print("  datagrams the kernel dropped at the daemon's UDP socket (buffer full), by attack: "
          "%s" % (", ".join("%s %d" % (n, r["daemon_udp_socket_drops"]) for n, r in runs.items()
                           if r["daemon_udp_socket_drops"]) or "none"))
    print("  p50 /v1/status %.2f ms; csv %s" % (percentile(obs.status_ms, 50), csv))
    print("  RSS start %d kB, end %d kB, max %d kB; load average (1 min) %s" % (
        rss_stats["start_kb"], rss_stats["end_kb"], rss_stats["max_kb"],
        " ".join("%.1f" % la[0] for _, la in loadavg)))
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump({"minutes": a.minutes, "baseline_rss_kb": base_rss, "final_rss_kb": final_rss,
                   "summary": s, "runs": runs, "counter_decreases": watch.decreases,
                   "sanitize": a.sanitize, "sanitizer_reports": reports,
                   "exit_code": exit_code, "rss": rss_stats,
                   "cycles": len(cycle_starts) - 1, "loadavg": loadavg,
                   "counter_series": len(watch.last), "scrapes": watch.scrapes,
                   "checks": checks}, f, indent=1)
    if all(ok for _, ok, _ in checks):
        shutil.rmtree(d.dir, ignore_errors=True)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
