#!/usr/bin/python3
"""bench_hooks - real traffic through the data plane, per hook.

iperf3 pushes one TCP stream, then 64-byte UDP datagrams as fast as it can,
from namespace S to namespace R, over two topologies made here:

  veth     S --veth-- R                     hooks on R's veth (its ingress)
  bridge   S --veth-- [br0 in B] --veth-- R hooks on B's port that faces S

Each is measured with: no program; an empty program in each hook (XDP
native, XDP generic, TC ingress: bpf/bench_empty.bpf.c); and itrackerd in
each hook (--ingress-hook xdp --xdp-mode native|generic, --ingress-hook tc),
plus itrackerd with its default (auto). The empty XDP reference is declared
able to take multi-buffer frames (xdp.frags) as itrackerd's program is: the
flag changes the path a packet takes to the program (generic XDP
linearises a GRO super-packet for a program without it, a veth copies
frames differently), so without it the reference would measure another
path; the empty program without the flag is measured too ("-nofrags").
Offloads stay as the kernel sets
them (GRO/TSO on), as on a real virtual gateway. Variants run in a rotated
order in every round. Prints min/median/max over the rounds, the ratio of
each to "none" and to the empty program in the same hook, and appends the
medians to $BUILD/bench.json.

  sudo BUILD=build tools/bench/bench_hooks.py [--rounds N] [--seconds S] [--quick]
      [--topologies veth,bridge] [--variants none,empty-xdp-native,...]

--topologies and --variants measure a part (an itrackerd variant's ratio
to its empty program needs that empty program in the list too).

Only addresses inside the namespaces it makes are traffic targets.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD", "build")
ROOT = os.environ.get("ITRACKER_ROOT", os.getcwd())
PREFIX = "itrbh%d" % os.getpid()
S, R, B = PREFIX + "s", PREFIX + "r", PREFIX + "b"
EMPTY = os.path.join(ROOT, BUILD, "bench_empty.bpf.o")
ITRACKERD = os.path.join(ROOT, BUILD, "itrackerd")
MAP = os.path.join(ROOT, "maps", "example.netmap")

VARIANTS = ["none", "empty-xdp-native", "empty-xdp-generic", "empty-tc",
            "empty-xdp-native-nofrags", "empty-xdp-generic-nofrags",
            "itracker-xdp-native", "itracker-xdp-generic", "itracker-tc", "itracker-auto"]
HOOK_OF = {"empty-xdp-native": "xdp-native", "empty-xdp-generic": "xdp-generic",
           "empty-tc": "tc", "itracker-xdp-native": "xdp-native",
           "itracker-xdp-generic": "xdp-generic", "itracker-tc": "tc"}


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def ns(name, *args, **kw):
    return sh("ip", "netns", "exec", name, *args, **kw)


def setup(topology):
    for n in (S, R, B):
        sh("ip", "netns", "del", n, check=False)
    sh("ip", "netns", "add", S)
    sh("ip", "netns", "add", R)
    if topology == "veth":
        sh("ip", "link", "add", "s0", "netns", S, "type", "veth", "peer", "name", "r0", "netns", R)
        hook_ns, hook_if = R, "r0"
    else:
        sh("ip", "netns", "add", B)
        sh("ip", "link", "add", "s0", "netns", S, "type", "veth", "peer", "name", "b0", "netns", B)
        sh("ip", "link", "add", "r0", "netns", R, "type", "veth", "peer", "name", "b1", "netns", B)
        sh("ip", "-n", B, "link", "add", "br0", "type", "bridge")
        for port in ("b0", "b1"):
            sh("ip", "-n", B, "link", "set", port, "master", "br0")
            sh("ip", "-n", B, "link", "set", port, "up")
        sh("ip", "-n", B, "link", "set", "br0", "up")
        hook_ns, hook_if = B, "b0"
    # S in PID a-metro1, R in c-all (example.netmap): an inter-AS flow
    for n, ifc, addr in ((S, "s0", "10.10.1.2/8"), (R, "r0", "10.30.0.2/8")):
        sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "-n", n, "addr", "add", addr, "dev", ifc)
        sh("ip", "-n", n, "link", "set", ifc, "up")
    return hook_ns, hook_if


def teardown():
    for n in (S, R, B):
        ns(n, "sh", "-c", "kill $(ip netns pids %s) 2>/dev/null" % n, check=False)
        sh("ip", "netns", "del", n, check=False)


class Hook:
    """Attaches one variant to (hook_ns, hook_if) and removes it again."""

    def __init__(self, variant, hook_ns, hook_if, bpffs):
        self.v, self.ns, self.ifc, self.bpffs, self.proc = variant, hook_ns, hook_if, bpffs, None

    def __enter__(self):
        v = self.v
        if v.startswith("empty-xdp"):
            mode = "xdpgeneric" if "generic" in v else "xdpdrv"
            sec = "xdp" if v.endswith("nofrags") else "xdp.frags"
            sh("ip", "-n", self.ns, "link", "set", "dev", self.ifc, mode, "obj", EMPTY, "sec", sec)
        elif v == "empty-tc":
            ns(self.ns, "tc", "qdisc", "replace", "dev", self.ifc, "clsact")
            ns(self.ns, "tc", "filter", "add", "dev", self.ifc, "ingress", "bpf", "da", "obj",
               EMPTY, "sec", "tc")
        elif v.startswith("itracker"):
            args = [ITRACKERD, "--map", MAP, "-i", self.ifc, "--pin-root",
                    os.path.join(self.bpffs, "itr"), "--listen", "off", "--udp", "off"]
            if v == "itracker-tc":
                args += ["--ingress-hook", "tc"]
            elif v != "itracker-auto":
                args += ["--ingress-hook", "xdp", "--xdp-mode",
                         "native" if v.endswith("native") else "generic"]
            self.log = tempfile.TemporaryFile(mode="w+")
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + args,
                                         stdout=self.log, stderr=self.log)
            text = ""
            for _ in range(600):  # loading and verifying can take long on a busy machine
                self.log.seek(0)
                text = self.log.read()
                if "TC egress" in text:
                    break
                if self.proc.poll() is not None:
                    raise RuntimeError("itrackerd exited: " + text)
                time.sleep(0.1)
            else:
                raise RuntimeError("itrackerd did not attach within 60 s: " + text)
            self.hook_line = [l for l in text.splitlines() if self.ifc + ":" in l]
        return self

    def __exit__(self, *exc):
        v = self.v
        if v.startswith("empty-xdp"):
            sh("ip", "-n", self.ns, "link", "set", "dev", self.ifc,
               "xdpgeneric" if "generic" in v else "xdpdrv", "off", check=False)
        elif v == "empty-tc":
            ns(self.ns, "tc", "qdisc", "del", "dev", self.ifc, "clsact", check=False)
        elif self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        # itrackerd leaves its clsact qdisc (filters gone): start every variant clean
        ns(self.ns, "tc", "qdisc", "del", "dev", self.ifc, "clsact", check=False)
        return False


def iperf(seconds, udp):
    server = subprocess.Popen(["ip", "netns", "exec", R, "iperf3", "-s", "-1", "-B", "10.30.0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    args = ["iperf3", "-c", "10.30.0.2", "-t", str(seconds), "-J"]
    if udp:
        args += ["-u", "-l", "64", "-b", "0"]
    out = ns(S, *args, check=False).stdout
    server.wait(timeout=10)
    j = json.loads(out)
    if "error" in j:
        raise RuntimeError("iperf3: " + j["error"])
    end = j["end"]
    if udp:
        s = end["sum"]
        return (s["packets"] - s["lost_packets"]) / s["seconds"] / 1000.0  # kpps received
    return end["sum_received"]["bits_per_second"] / 1e9  # Gbit/s


def stats(xs):
    return min(xs), statistics.median(xs), max(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="one round of 2 s")
    ap.add_argument("--topologies", default="veth,bridge",
                    help="comma-separated subset of veth,bridge")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated subset of: " + ", ".join(VARIANTS))
    a = ap.parse_args()
    topologies = [t for t in a.topologies.split(",") if t]
    variants = [v for v in a.variants.split(",") if v]
    if any(t not in ("veth", "bridge") for t in topologies) or any(
            v not in VARIANTS for v in variants) or not topologies or not variants:
        ap.error("unknown topology or variant")
    if a.quick:
        a.rounds, a.seconds = 1, 2
    if os.geteuid() != 0:
        print("bench_hooks: needs root (namespaces, XDP, TC)", file=sys.stderr)
        return 1
    bpffs = tempfile.mkdtemp(prefix=PREFIX)
    sh("mount", "-t", "bpf", "bpf", bpffs)
    results = {}
    auto_hook = {}
    try:
        for topo in topologies:
            hook_ns, hook_if = setup(topo)
            for rnd in range(a.rounds):
                order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                for v in order:
                    with Hook(v, hook_ns, hook_if, bpffs) as h:
                        if v == "itracker-auto":
                            auto_hook[topo] = " ".join(h.hook_line).split(": ", 1)[-1]
                        tcp = iperf(a.seconds, False)
                        udp = iperf(a.seconds, True)
                    results.setdefault((topo, v), {"tcp": [], "udp": []})
                    results[(topo, v)]["tcp"].append(tcp)
                    results[(topo, v)]["udp"].append(udp)
            teardown()
    finally:
        teardown()
        sh("umount", bpffs, check=False)
        os.rmdir(bpffs)

    load = os.getloadavg()[0]
    print("real traffic per hook: iperf3, %d round(s) of %d s, rotated order; load average %.1f"
          % (a.rounds, a.seconds, load))
    records = []
    for topo in topologies:
        print("\n%s (itrackerd's default here: %s)" % (topo, auto_hook.get(topo, "?")))
        print("%-26s %-26s %8s %8s   %-24s %8s %8s" % ("variant", "TCP Gbit/s min/med/max",
                                                      "/none", "/empty", "UDP 64 B kpps", "/none",
                                                      "/empty"))
        have_none = (topo, "none") in results
        none_t = statistics.median(results[(topo, "none")]["tcp"]) if have_none else None
        none_u = statistics.median(results[(topo, "none")]["udp"]) if have_none else None
        for v in variants:
            r = results[(topo, v)]
            t, u = stats(r["tcp"]), stats(r["udp"])
            ref = None
            if v.startswith("itracker") and v != "itracker-auto":
                ref = results.get((topo, "empty-" + v.split("-", 1)[1]))
            rt = t[1] / statistics.median(ref["tcp"]) if ref else None
            ru = u[1] / statistics.median(ref["udp"]) if ref else None
            print("%-26s %6.2f/%6.2f/%6.2f %11s %8s   %6.1f/%6.1f/%6.1f %11s %8s" % (
                v, *t, "%.2f" % (t[1] / none_t) if have_none else "-",
                "%.2f" % rt if rt else "-", *u, "%.2f" % (u[1] / none_u) if have_none else "-",
                "%.2f" % ru if ru else "-"))
            if v != "none" and have_none:
                records.append({"name": "hooks %s %s TCP" % (topo, v), "value": t[1],
                                "unit": "Gbit/s", "reference": none_t, "ratio": t[1] / none_t})
                records.append({"name": "hooks %s %s UDP64" % (topo, v), "value": u[1],
                                "unit": "kpps", "reference": none_u, "ratio": u[1] / none_u})
    path = os.path.join(BUILD, "bench.json")
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = []
    with open(path, "w") as f:
        json.dump(old + records, f, indent=1)
    part = ""
    if a.topologies != "veth,bridge" or a.variants != ",".join(VARIANTS):
        part = " --topologies %s --variants %s" % (a.topologies, a.variants)
    print("\nreproduce: sudo BUILD=%s %s --rounds %d --seconds %d%s" % (BUILD, sys.argv[0],
                                                                      a.rounds, a.seconds, part))
    return 0


if __name__ == "__main__":
    sys.exit(main())
