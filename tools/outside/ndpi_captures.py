#!/usr/bin/env python3
"""ndpi_captures.py - classifier precision and recall on captures made outside
this project, against labels made outside it too.

The captures are nDPI's regression suite (tests/pcap, 250+ captures of
video calls, messengers, games, VPNs, QUIC, IoT, malware and BitTorrent),
taken from Debian's source package ndpi 4.2 (bookworm) and checked against
the SHA-256 that Debian's source index gives. The labels are nDPI's own
expected answers (tests/result/*.out): one line per flow with its 5-tuple
and the protocol nDPI names. nDPI is an independent classifier, so a flow
it names anything but BitTorrent and that itrackerctl calls BitTorrent is
a false positive; a flow it names BitTorrent that itrackerctl calls "none"
is a miss, listed with how nDPI knew (its "Confidence" field: "DPI" means
the payload says so, "Match by IP" means a list of known addresses did).

Nothing from the archive is committed or linked: it is data to measure on.

usage: ndpi_captures.py [--build DIR] [--cache DIR] [--json FILE]
(as root: classify loads the XDP program; `make outside-captures`)
"""
import argparse
import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request

ARCHIVE = "http://deb.debian.org/debian/pool/main/n/ndpi/ndpi_4.2.orig.tar.gz"
# From bookworm's main/source/Sources (Checksums-Sha256 of ndpi 4.2-2).
ARCHIVE_SHA256 = "e54ce8fe13adc5d747be7553513657fae78f796e0bd459e122c280cc06ce4daf"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")

# "\t12\tUDP [fe80::1]:546 -> [ff02::1:2]:547 [proto: 103/DHCPV6]...[Confidence: DPI]"
FLOW_LINE = re.compile(
    r"^\t\d+\t(TCP|UDP) (\S+) (?:<->|->) (\S+) \[proto: [0-9.]+/([^\]]+)\]"
    r"(?:.*?\[Confidence: ([^\]]+)\])?")


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, os.path.basename(ARCHIVE))
    if not os.path.exists(tarball):
        print(f"fetching {ARCHIVE}", file=sys.stderr)
        urllib.request.urlretrieve(ARCHIVE, tarball + ".part")
        os.rename(tarball + ".part", tarball)
    digest = hashlib.sha256()
    with open(tarball, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != ARCHIVE_SHA256:
        os.unlink(tarball)
        sys.exit(f"{tarball}: SHA-256 {digest.hexdigest()}, Debian's index says "
                 f"{ARCHIVE_SHA256}; removed, run again")
    tree = os.path.join(cache, "ndpi-4.2")
    if not os.path.isdir(os.path.join(tree, "tests", "result")):
        with tarfile.open(tarball) as tar:
            members = [m for m in tar.getmembers()
                       if re.match(r"[^/]+/tests/(pcap|result)/[^/]+$", m.name)
                       and m.isfile()]
            for m in members:
                m.name = "ndpi-4.2/" + m.name.split("/", 1)[1]
            tar.extractall(cache, members=members)
    return os.path.join(tree, "tests", "pcap"), os.path.join(tree, "tests", "result")


def endpoint(text):
    """'1.2.3.4:80' or '[::1]:80' -> (address, port) as classify prints them."""
    addr, _, port = text.rpartition(":")
    return addr.strip("[]"), int(port)


def flow_key(proto, a, b):
    return (proto.lower(), frozenset((endpoint(a), endpoint(b))))


def ndpi_labels(result_file):
    labels = {}
    with open(result_file, errors="replace") as f:
        for line in f:
            m = FLOW_LINE.match(line)
            if m:
                proto, a, b, name, confidence = m.groups()
                labels[flow_key(proto, a, b)] = (name, confidence or "?")
    return labels


def classify(ctl, captures):
    """One itrackerctl run over every capture it can read (the program is
    loaded once); a capture it cannot read is named in the error, set aside
    with the reason, and the rest run again."""
    unread = {}
    todo = list(captures)
    while todo:
        run = subprocess.run([ctl, "classify", "--json", *todo], capture_output=True,
                             text=True)
        if run.returncode == 0:
            docs = json.loads(run.stdout)
            return (docs if isinstance(docs, list) else [docs]), unread
        bad = next((c for c in todo if f"itrackerctl: {c}: " in run.stderr), None)
        if bad is None:
            sys.exit(f"itrackerctl classify failed: {run.stderr.strip()}")
        unread[bad] = run.stderr.strip().split(f"{bad}: ", 1)[1]
        todo.remove(bad)
    return [], unread


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--cache", default="build/outside")
    ap.add_argument("--json", help="write the per-flow findings here")
    args = ap.parse_args()

    pcap_dir, result_dir = fetch(args.cache)
    captures = sorted(os.path.join(pcap_dir, n) for n in os.listdir(pcap_dir)
                      if n.endswith(CAPTURE_SUFFIXES))
    docs, unread = classify(os.path.join(args.build, "itrackerctl"), captures)

    not_bt = collections.Counter()   # nDPI protocol -> flows
    false_pos, found, missed, unlabelled_bt = [], [], [], []
    flows = 0
    no_answers = []
    for doc in docs:
        name = os.path.basename(doc["file"])
        result = os.path.join(result_dir, name + ".out")
        labels = {}
        if os.path.exists(result):
            labels = ndpi_labels(result)
        else:
            # nDPI keeps a capture without answers for other tools; it
            # can still show a false positive, but not be scored.
            no_answers.append(name)
        seen = set()
        for fl in doc["flows"]:
            if fl["proto"] not in ("tcp", "udp"):
                continue
            flows += 1
            key = flow_key(fl["proto"], fl["lo"], fl["hi"])
            seen.add(key)
            label, confidence = labels.get(key, (None, None))
            ours = fl["kind"]
            row = {"capture": name, "proto": fl["proto"], "lo": fl["lo"], "hi": fl["hi"],
                   "ours": ours, "ndpi": label, "confidence": confidence}
            if label is None:
                if ours != "none":
                    unlabelled_bt.append(row)
                continue
            if "BitTorrent" in label:
                (found if ours != "none" else missed).append(row)
            else:
                not_bt[label] += 1
                if ours != "none":
                    false_pos.append(row)
        # nDPI flows that never reached the program (not TCP/UDP over IP
        # as classify reads it) still count against recall.
        for key, (label, confidence) in labels.items():
            if key not in seen and "BitTorrent" in label:
                missed.append({"capture": name, "proto": key[0],
                               "endpoints": sorted(f"{a}:{p}" for a, p in key[1]),
                               "ours": "not seen", "ndpi": label, "confidence": confidence})

    labelled_not_bt = sum(not_bt.values())
    fp_unknown = sum(1 for r in false_pos if r["ndpi"] == "Unknown")
    print(f"captures: {len(captures)} ({len(docs)} read, {len(unread)} unreadable)")
    for c, why in sorted(unread.items()):
        print(f"  unreadable: {os.path.basename(c)}: {why}")
    if no_answers:
        print(f"  without nDPI answers (flows counted as not listed): {', '.join(no_answers)}")
    print(f"flows: {flows} TCP/UDP flows, {labelled_not_bt} of them labelled by nDPI "
          f"as something other than BitTorrent, in {len(not_bt)} protocols")
    print("  most common: " + ", ".join(f"{p} {n}" for p, n in not_bt.most_common(25)))
    print(f"false positives: {len(false_pos)} of {labelled_not_bt} non-BitTorrent flows "
          f"({len(false_pos) - fp_unknown} of {labelled_not_bt - not_bt['Unknown']} that "
          f"nDPI names, {fp_unknown} of {not_bt['Unknown']} it calls Unknown)")
    for r in false_pos:
        print(f"  {r['capture']}: {r['proto']} {r['lo']} {r['hi']}: ours {r['ours']}, "
              f"nDPI {r['ndpi']}")
    total_bt = len(found) + len(missed)
    print(f"BitTorrent flows found: {len(found)} of {total_bt} that nDPI names BitTorrent")
    for (capture, kind), n in sorted(collections.Counter(
            (r["capture"], r["ours"]) for r in found).items()):
        print(f"  found {capture}: {n} as {kind}")
    for r in missed:
        where = f"{r['lo']} {r['hi']}" if "lo" in r else " ".join(r["endpoints"])
        print(f"  missed {r['capture']}: {r['proto']} {where}: ours {r['ours']} "
              f"(nDPI {r['ndpi']}, {r['confidence']})")
    print(f"flows nDPI does not list that itrackerctl calls BitTorrent: {len(unlabelled_bt)}")
    for r in unlabelled_bt:
        print(f"  {r['capture']}: {r['proto']} {r['lo']} {r['hi']}: ours {r['ours']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"false_positives": false_pos, "found": found, "missed": missed,
                       "unlabelled_bittorrent": unlabelled_bt,
                       "not_bittorrent_by_protocol": dict(not_bt),
                       "unreadable": {os.path.basename(c): w for c, w in unread.items()}},
                      f, indent=1)
    return 1 if false_pos or unlabelled_bt else 0


if __name__ == "__main__":
    sys.exit(main())
