#!/usr/bin/env bash
# run.sh - run every benchmark ($BUILD/bench/bench_*) and print one table.
#
# Each benchmark prints its own details and appends {name, value, unit,
# reference, ratio} records to $BUILD/bench.json (tools/bench/benchjson.h);
# this script starts that file afresh, runs them all, then prints the
# records. Benchmarks added later need no change here.
set -uo pipefail

BUILD=${BUILD:-build}
export BUILD
JSON=$BUILD/bench.json
rm -f "$JSON"

failed=0
ran=0
# compiled benchmarks, then the scripted ones (tools/bench/bench_*.sh:
# several processes, e.g. a Redis Cluster in a namespace)
for b in "$BUILD"/bench/bench_* tools/bench/bench_*.sh; do
	[[ -x $b && -f $b ]] || continue
	ran=$((ran + 1))
	echo "== $(basename "$b")"
	if ! "$b"; then
		echo "FAILED: $(basename "$b")" >&2
		failed=$((failed + 1))
	fi
	echo
done

# The attack suite's soak (issue 10): RSS and /v1/status latency over time
# under every attack in turn, counters monotonic, memory back after the
# flood expires; a plot in $BUILD/soak/soak.png. SOAK_MINUTES=30 for the
# long run, 0 to skip. SOAK_SANITIZE=1 soaks the ASan/UBSan build
# ($BUILD/asan/itrackerd): any sanitizer report fails it.
SOAK_MINUTES=${SOAK_MINUTES:-$([[ ${BENCH_QUICK:-} ]] && echo 1 || echo 3)}
if [[ $SOAK_MINUTES != 0 ]]; then
	ran=$((ran + 1))
	soak_bin=$BUILD/itrackerd soak_args=()
	if [[ ${SOAK_SANITIZE:-} ]]; then
		soak_bin=$BUILD/asan/itrackerd soak_args=(--sanitize)
	fi
	echo "== soak ($SOAK_MINUTES min, $soak_bin): tools/attack/soak.py"
	if ! python3 tools/attack/soak.py --itrackerd "$soak_bin" --minutes "$SOAK_MINUTES" \
		--out "$BUILD/soak" "${soak_args[@]}"; then
		echo "FAILED: soak" >&2
		failed=$((failed + 1))
	fi
	echo
fi

if ((ran == 0)); then
	echo "run.sh: no benchmarks in $BUILD/bench" >&2
	exit 1
fi
if [[ -f $JSON ]]; then
	echo "== $JSON"
	jq -r '["name","value","unit","reference","ratio"],
	       (.[] | [.name, (.value*100|round/100), .unit, (.reference*100|round/100),
	               (.ratio*1000|round/1000)])
	       | @tsv' "$JSON" |
		awk -F'\t' '{ printf "%-44s %12s %-10s %12s %9s\n", $1, $2, $3, $4, $5 }'
fi
echo "reproduce: sudo make BUILD=$BUILD bench"
((failed == 0))
