#!/usr/bin/env bash
# run-tests.sh - run one suite (unit, asan, bpf, e2e, fuzz) or all of them
# and finish with one "N passed, N failed" line.
#
# Each test is a program or script; its exit status is its verdict. Output
# of a failing test is shown in full; a passing one prints a single line.
set -uo pipefail

BUILD=${BUILD:-build}
SUITE=${1:-all}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
LOG_DIR=$BUILD/test-logs
mkdir -p "$LOG_DIR"
export BUILD ITRACKER_ROOT=$PWD

passed=0
failed=0
failed_names=()

run_one() { # name timeout cmd...
	local name=$1 limit=$2
	shift 2
	local log=$LOG_DIR/${name//\//_}.log start end rc
	start=$(date +%s%N)
	timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
	rc=$?
	end=$(date +%s%N)
	local secs=$(((end - start) / 100000000))
	secs="$((secs / 10)).$((secs % 10))"
	if ((rc == 0)); then
		passed=$((passed + 1))
		printf 'PASS  %-44s %6ss\n' "$name" "$secs"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		printf 'FAIL  %-44s %6ss (exit %d)\n' "$name" "$secs" "$rc"
		sed 's/^/    | /' "$log" | tail -n 80
	fi
}

suite_unit() {
	local t
	for t in "$BUILD"/tests/unit/test_*; do
		[[ -x $t ]] || continue
		run_one "unit/$(basename "$t")" 120 "$t"
	done
}

suite_asan() {
	local t
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	for t in "$BUILD"/asan/tests/unit/test_*; do
		[[ -x $t ]] || continue
		run_one "asan/$(basename "$t")" 300 "$t"
	done
}

suite_bpf() {
	local t
	for t in "$BUILD"/tests/bpf/test_*; do
		[[ -x $t ]] || continue
		run_one "bpf/$(basename "$t")" 300 "$t"
	done
}

# Each e2e test runs in a mount namespace of its own with an empty
# /run/itrackerd: its daemons' default admin socket is then the test's, so
# a test never meets (nor is refused by) the admin socket of an itrackerd
# the host runs, and its netns and bpffs mounts go when it ends.
suite_e2e() {
	local t
	mkdir -p /run/itrackerd
	for t in tests/e2e/*.sh; do
		[[ -f $t ]] || continue
		run_one "e2e/$(basename "$t" .sh)" 900 unshare -m --propagation private \
			bash -c 'mount -t tmpfs -o mode=0755,size=1m itr-test /run/itrackerd && exec bash "$0"' "$t"
	done
}

suite_fuzz() {
	local f corpus
	for f in "$BUILD"/fuzz/fuzz_*; do
		[[ -x $f ]] || continue
		corpus=tests/fuzz/corpus/$(basename "$f")
		local work=$BUILD/fuzz-corpus/$(basename "$f")
		mkdir -p "$work"
		[[ -d $corpus ]] && cp -n "$corpus"/* "$work"/ 2>/dev/null
		run_one "fuzz/$(basename "$f")" $((FUZZ_SECONDS + 120)) \
			"$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix="$BUILD/fuzz/$(basename "$f")-" "$work"
	done
}

suite_style() {
	run_one "style/clang-format" 120 bash -c 'clang-format --dry-run -Werror $(git ls-files "*.c" "*.h")'
}

case $SUITE in
unit) suite_unit; suite_asan ;;
asan) suite_asan ;;
bpf) suite_bpf ;;
e2e) suite_e2e ;;
fuzz) suite_fuzz ;;
all)
	suite_unit
	suite_asan
	suite_bpf
	suite_e2e
	FUZZ_SECONDS=${FUZZ_SECONDS_IN_TEST:-5} suite_fuzz
	suite_style
	;;
*)
	echo "run-tests: unknown suite '$SUITE' (unit, asan, bpf, e2e, fuzz, all)" >&2
	exit 2
	;;
esac

if ((failed > 0)); then
	echo "failed: ${failed_names[*]}"
fi
echo "itracker tests: $passed passed, $failed failed"
((failed == 0))
