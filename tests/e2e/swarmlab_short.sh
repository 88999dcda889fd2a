#!/usr/bin/env bash
# swarmlab_short.sh - a short swarmlab run: two ISPs in network namespaces,
# one real aria2c swarm run with opentracker and then with itrackerd as the
# tracker. Every leecher must complete with a file whose sha1 matches the
# original, in both runs, and the bytes over the transit links must be fewer
# with itrackerd's locality-ranked lists than with opentracker's random ones.
#
# 2 ISPs x 2 PIDs x 5 hosts: 10 hosts per ISP, so under itrackerd's default
# policy a list holds every peer of the client's own ISP, plus the small
# external budget for the ISP's gateway peer (the --min-list top-up kicks
# in only for a client that announces before most of its ISP). 2M in 64K pieces
# gives the peers something to trade among themselves; 20mbit transit is not
# saturated, so the transit byte count follows who talks to whom rather than
# the link's rate times the run's length.
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
	rm -f "$OUT"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 "$LAB" --itrackerd "$ROOT/$BUILD/itrackerd" --runs opentracker,itrackerd \
	--isps 2 --pids 2 --hosts 5 --seeders 1 --file-size 2M --piece-size 64K --transit-rate 20mbit \
	--seeder-head-start 1 --run-timeout 60 --json >"$OUT" &
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

/usr/bin/python3 - "$OUT" <<'EOF'
import json, sys
res = json.load(open(sys.argv[1]))
runs = {r["run"]: r for r in res["runs"]}
fail = []
for name in ("opentracker", "itrackerd"):
    r = runs.get(name)
    if r is None:
        fail.append("run %s missing (%s)" % (name, "; ".join(res["notes"])))
        continue
    if r["completed"] != r["total"]:
        fail.append("%s: %d of %d leechers completed" % (name, r["completed"], r["total"]))
    if r["verified"] != r["total"]:
        fail.append("%s: files differ from the original: %s" % (name, r["unverified"]))
    print("%-12s completed %d/%d, verified %d, mean %.1fs, transit %d bytes"
          % (name, r["completed"], r["total"], r["verified"], r["time"]["mean"] or -1,
             r["transit_total"]))
if not fail:
    base, it = runs["opentracker"]["transit_total"], runs["itrackerd"]["transit_total"]
    if not it < base:
        fail.append("transit bytes with itrackerd (%d) not below opentracker's (%d)" % (it, base))
    else:
        print("transit with itrackerd: %.2fx opentracker's" % (it / base))
for f in fail:
    print("FAIL: " + f, file=sys.stderr)
sys.exit(1 if fail else 0)
EOF
((rc == 0)) || {
	echo "FAIL: swarmlab exit status $rc" >&2
	exit 1
}
echo "PASS swarmlab_short"
