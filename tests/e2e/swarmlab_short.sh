#!/usr/bin/env bash
# swarmlab_short.sh - the swarm lab's short matrix (swarmlab --matrix short):
# two small configurations of ISPs in network namespaces, each one real
# aria2c swarm run with itrackerd and then with opentracker as the tracker
# (--order reversed; itrackerd's price controller fed by the gateways' data
# planes; the figures still list opentracker, the baseline, first). In both, every
# leecher must complete with a file whose sha1 matches the original, in both
# runs, and the bytes over the transit links must be fewer with itrackerd's
# locality-ranked lists than with opentracker's random ones.
#
# short-2isp: 2 ISPs x 2 PIDs x 5 hosts, one seeder, 2M in 64K pieces,
# 20mbit transit (not saturated: the byte count follows who talks to whom).
# short-3isp-8: ISPs of 6, 4 and 2 hosts, the seeder in the smallest, 8
# connections per client, 8mbit transit. About 80 s on 2 cores.
set -euo pipefail

: "${BUILD:=build}"
ROOT=${ITRACKER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB=$ROOT/tools/swarmlab/swarmlab

if [[ $(id -u) -ne 0 ]]; then
	echo "swarmlab_short: must run as root (network namespaces, BPF)" >&2
	exit 1 # never skip: CI runs as root, a skip would hide a failure
fi
[[ -x $ROOT/$BUILD/itrackerd ]] || {
	echo "FAIL: $ROOT/$BUILD/itrackerd not built" >&2
	exit 1
}

OUT=$(mktemp /tmp/swarmlab_short.XXXXXX)
LAB_PID=""
cleanup() {
	local rc=$?
	set +e
	if [[ -n $LAB_PID ]] && kill -0 "$LAB_PID" 2>/dev/null; then
		# The lab removes its namespaces, processes and mounts on SIGTERM.
		kill -TERM "$LAB_PID"
		wait "$LAB_PID"
	fi
	# Anything a lab killed without a chance to clean up left behind.
	/usr/bin/python3 "$LAB" --cleanup 2>/dev/null
	rm -f "$OUT" "$OUT.matrix.json" "$OUT.matrix.svg" "$OUT.merged.json" "$OUT.merged.svg" \
		"$OUT.merged.txt"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 "$LAB" --itrackerd "$ROOT/$BUILD/itrackerd" --matrix short --matrix-runs 1 \
	--order reversed --matrix-out "$OUT.matrix" >"$OUT" &
LAB_PID=$!
set +e
wait "$LAB_PID"
rc=$?
set -e
LAB_PID=""
cat "$OUT"
[[ -s $OUT ]] || {
	echo "FAIL: swarmlab exited with $rc and printed no figures" >&2
	exit 1
}

/usr/bin/python3 - "$OUT.matrix.json" <<'EOF'
import json, sys
res = json.load(open(sys.argv[1]))
fail = []
if len(res["results"]) != 2:
    fail.append("%d configurations ran, not 2" % len(res["results"]))
for cfg in res["results"]:
    if not cfg["rounds"]:
        fail.append("%s: no run (%s)" % (cfg["name"], "; ".join(cfg["notes"])))
        continue
    runs = {r["run"]: r for r in cfg["rounds"][0]}
    if [r["run"] for r in cfg["rounds"][0]][:1] != ["opentracker"]:
        fail.append("%s: the baseline is not listed first" % cfg["name"])
    for name, position in (("itrackerd", 0), ("opentracker", 1)):
        if name in runs and runs[name].get("position") != position:
            fail.append("%s: %s ran at position %s, not %d (--order reversed)"
                        % (cfg["name"], name, runs[name].get("position"), position))
    for name in ("opentracker", "itrackerd"):
        r = runs.get(name)
        if r is None:
            fail.append("%s: run %s missing (%s)" % (cfg["name"], name, "; ".join(cfg["notes"])))
            continue
        if r["completed"] != r["total"]:
            fail.append("%s %s: %d of %d leechers completed"
                        % (cfg["name"], name, r["completed"], r["total"]))
        if r["verified"] != r["total"]:
            fail.append("%s %s: files differ from the original: %s"
                        % (cfg["name"], name, r["unverified"]))
        # aria2c opens every connection with MSE: the data plane knows
        # them only through endpoints learned from tracker exchanges.
        anyb = r.get("dataplane_inter_as_any_total") or 0
        btb = r.get("dataplane_inter_as_total") or 0
        if anyb and btb < 0.95 * anyb:
            fail.append("%s %s: the data plane recognised %.0f%% of the inter-AS bytes as "
                        "BitTorrent (want >= 95%%)" % (cfg["name"], name, 100.0 * btb / anyb))
        print("%-13s %-12s completed %d/%d, verified %d, mean %.1fs, transit %d bytes"
              % (cfg["name"], name, r["completed"], r["total"], r["verified"],
                 r["time"]["mean"] or -1, r["transit_total"]))
        if anyb:
            print("%-13s %-12s data plane: %.1f%% of %d inter-AS bytes recognised"
                  % (cfg["name"], name, 100.0 * btb / anyb, anyb))
    if "opentracker" in runs and "itrackerd" in runs:
        base, it = runs["opentracker"]["transit_total"], runs["itrackerd"]["transit_total"]
        if not it < base:
            fail.append("%s: transit bytes with itrackerd (%d) not below opentracker's (%d)"
                        % (cfg["name"], it, base))
        else:
            print("%-13s transit with itrackerd: %.2fx opentracker's" % (cfg["name"], it / base))
        if (runs["itrackerd"].get("policy") or {}).get("mode") != "dataplane":
            fail.append("%s: itrackerd's price controller did not read the gateways' matrices"
                        % cfg["name"])
for f in fail:
    print("FAIL: " + f, file=sys.stderr)
sys.exit(1 if fail else 0)
EOF
((rc == 0)) || {
	echo "FAIL: swarmlab exit status $rc" >&2
	exit 1
}

# --matrix-merge: the pass merged with itself is one summary of 2 runs a
# configuration, with the same figures.
/usr/bin/python3 "$LAB" --matrix-merge "$OUT.matrix.json" "$OUT.matrix.json" \
	--matrix-out "$OUT.merged" >"$OUT.merged.txt"
/usr/bin/python3 - "$OUT.matrix.json" "$OUT.merged.json" <<'EOF'
import json, sys
one, two = (json.load(open(p))["results"] for p in sys.argv[1:])
assert [r["name"] for r in one] == [r["name"] for r in two], "merged configurations differ"
for a, b in zip(one, two):
    assert b["summary"]["runs"] == 2 * a["summary"]["runs"], "%s: runs not pooled" % a["name"]
    assert len(b["rounds"]) == 2 * len(a["rounds"])
    assert abs(a["summary"]["transit"]["median"] - b["summary"]["transit"]["median"]) < 1e-9
print("matrix-merge: %d configurations, runs pooled" % len(two))
EOF
grep -q "every leecher completes" "$OUT.merged.txt" || {
	echo "FAIL: --matrix-merge printed no targets" >&2
	exit 1
}
[[ -s $OUT.merged.svg ]] || {
	echo "FAIL: --matrix-merge wrote no picture" >&2
	exit 1
}
echo "PASS swarmlab_short"
