#!/usr/bin/env python3
"""run.py - the attack suite: start itrackerd on loopback, measure the
legitimate clients alone (baseline), then run each attack for --seconds
while the legitimate clients go on, and check the targets of issue 10 for
every attack:

  p99 of /v1/status and of a legitimate announce <= --max-p99-ms (100),
  RSS <= 2x the baseline, no legitimate client refused, no request left
  unanswered, the attack's own checks, and at the end a clean SIGTERM.

The daemon holds at most 1000 torrents (--max-torrents), so that the
floods that fill the store cannot grow the live state past what the RSS
target compares against; they must evict, not refuse.

Attacks come from every tools/attack/*_attacks.py module (a dict ATTACKS
of name -> function(daemon, seconds) returning [(check, ok, detail)]), so
the HTTP server's attacks sit beside the tracker's.

  tools/attack/run.py --itrackerd build/itrackerd [--seconds 3]
                      [--attacks a,b] [--json FILE]

Exit 0 when every target is met, 1 otherwise.
"""
import argparse
import glob
import importlib
import json
import os
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lib import Daemon, Observer  # noqa: E402

# Attacks that leave the daemon changed for the next ones run last, in this order.
LAST = ["store_fill", "fifo_map"]


def run_niced(attack, d, seconds, nice):
    """The attack in a thread of its own at lower priority: on one machine
    the attacker would otherwise take the CPU the daemon needs, which an
    attacker elsewhere cannot (the legitimate clients keep theirs)."""
    out = {}

    def body():
        if nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        try:
            out["checks"] = attack(d, seconds)
        except Exception as e:  # an attack that breaks is a failed check
            out["checks"] = [("attack ran", False, repr(e))]

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out["checks"]


# checks that a busy machine can miss (http_attack.py reports its p99 too)
LATENCY = ("status p99", "legit announce p99", "http_attack.py")


def measure(d, attack, a, base_rss):
    """One run of an attack with the legitimate clients around it: its own
    checks and the targets."""
    with Observer(d) as obs:
        checks = run_niced(attack, d, a.seconds, a.nice)
        time.sleep(0.2)
    s = obs.summary()
    return checks + [
        ("status p99 <= %g ms" % a.max_p99_ms, s["status_p99_ms"] <= a.max_p99_ms,
         "%.1f ms (p50 %.1f, n=%d)" % (s["status_p99_ms"], s["status_p50_ms"], s["status_n"])),
        ("legit announce p99 <= %g ms" % a.max_p99_ms, s["announce_p99_ms"] <= a.max_p99_ms,
         "%.1f ms (n=%d)" % (s["announce_p99_ms"], s["announce_n"])),
        ("no legit client refused", s["legit_refused"] == 0,
         "%d %s" % (s["legit_refused"], s["refusals"])),
        ("no request unanswered", s["status_failed"] == 0, "%d" % s["status_failed"]),
        ("RSS <= 2x baseline", s["rss_max_kb"] <= 2 * base_rss,
         "%d kB (%.2fx)" % (s["rss_max_kb"], s["rss_max_kb"] / base_rss)),
        ("daemon alive", d.alive(), ""),
    ]


def load_attacks():
    attacks = {}
    for path in sorted(glob.glob(os.path.join(HERE, "*_attacks.py"))):
        mod = importlib.import_module(os.path.basename(path)[:-3])
        attacks.update(mod.ATTACKS)
    return attacks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--itrackerd", default=os.path.join(HERE, "..", "..", "build", "itrackerd"))
    ap.add_argument("--map", default=os.path.join(HERE, "..", "..", "maps", "example.netmap"))
    ap.add_argument("--seconds", type=float, default=3.0, help="per attack (default 3)")
    ap.add_argument("--attacks", default="", help="comma list (default: all)")
    ap.add_argument("--max-p99-ms", type=float, default=100.0)
    ap.add_argument("--nice", type=int, default=10,
                    help="niceness of the attacking thread (default 10; 0: none)")
    ap.add_argument("--retries", type=int, default=0,
                    help="measure an attack again when only its latency missed (default 0)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="extra itrackerd option (repeat)")
    a = ap.parse_args()

    attacks = load_attacks()
    names = [n for n in attacks if n not in LAST] + [n for n in LAST if n in attacks]
    if a.attacks:
        wanted = a.attacks.split(",")
        unknown = [n for n in wanted if n not in attacks]
        if unknown:
            sys.exit("unknown attack(s): %s (have: %s)" % (",".join(unknown), ",".join(names)))
        names = [n for n in names if n in wanted]

    d = Daemon(a.itrackerd, a.map,
               ["--trusted-proxy", "127.0.0.1", "--max-torrents", "1000"] + a.daemon_arg)
    results = {"daemon_pid": d.proc.pid, "attacks": {}}
    failed = []
    try:
        with Observer(d) as base:
            time.sleep(max(1.0, a.seconds / 2))
        baseline = base.summary()
        base_rss = sorted(r for _, r in base.rss)[len(base.rss) // 2]
        baseline["rss_median_kb"] = base_rss
        results["baseline"] = baseline
        print("baseline: status p99 %.1f ms, announce p99 %.1f ms, RSS %d kB, refused %d"
              % (baseline["status_p99_ms"], baseline["announce_p99_ms"], base_rss,
                 baseline["legit_refused"]))
        for name in names:
            for attempt in range(1 + a.retries):
                checks = measure(d, attacks[name], a, base_rss)
                latency_only = all(ok or check.startswith(LATENCY) for check, ok, _ in checks)
                if all(ok for _, ok, _ in checks) or not latency_only or attempt == a.retries:
                    break
                # the functional checks held; a latency miss on a machine
                # shared with other work is measured once more, and said so
                print("== %s: latency missed (%s), measuring again" % (name, "; ".join(
                    "%s %s" % (c, det) for c, ok, det in checks if not ok)))
                results.setdefault("retried", []).append(name)
            results["attacks"][name] = {"checks": checks}
            print("== %s" % name)
            for check, ok, detail in checks:
                print("  %-4s %-44s %s" % ("ok" if ok else "FAIL", check, detail))
                if not ok:
                    failed.append("%s: %s" % (name, check))
            if not d.alive():
                break
    finally:
        stop_s = d.stop()
        code = d.proc.returncode
        results["stop_seconds"] = stop_s
        results["exit_code"] = code
        ok = stop_s is not None and stop_s < 5 and code == 0
        print("  %-4s %-44s %s" % ("ok" if ok else "FAIL", "SIGTERM stops it (< 5 s, exit 0)",
                                   "%s s, exit %s" % (stop_s, code)))
        if not ok:
            failed.append("SIGTERM")
        if failed:
            print("--- itrackerd log (tail) ---")
            print("\n".join(d.read_log().splitlines()[-30:]))
        else:
            shutil.rmtree(d.dir, ignore_errors=True)
    results["failed"] = failed
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    print("attack suite: %d attacks, %d failed checks" % (len(results["attacks"]), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
