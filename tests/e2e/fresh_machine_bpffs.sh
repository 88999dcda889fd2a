#!/usr/bin/env bash
# fresh_machine_bpffs.sh - the kernel tests (and the unit tests that use
# BPF maps) pass on a machine where nothing is mounted at /sys/fs/bpf, and
# leave nothing mounted behind.
#
# Runs them in a mount namespace of its own (unshare -m) after taking every
# bpffs off /sys/fs/bpf there, as on a fresh Debian VM whose PID 1 is not
# systemd. Each test must pass, and afterwards /sys/fs/bpf must still be
# empty in that namespace (a test that mounted it and kept it would hide
# the next test's missing setup) and unchanged outside.
E2E=itrfresh$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
cd "$ITRACKER_ROOT"
export ITRACKER_ROOT BUILD

# Every kernel test, and every unit test that uses libbpf (plain and
# ASan): a new one that needs a bpffs is covered without an edit here.
TESTS=("$BUILD"/tests/bpf/test_*)
for src in $(grep -l 'bpf/bpf.h\|bpf/libbpf.h\|/sys/fs/bpf' tests/unit/test_*.c); do
	name=$(basename "$src" .c)
	TESTS+=("$BUILD/tests/unit/$name" "$BUILD/asan/tests/unit/$name")
done
for t in "${TESTS[@]}" "$BUILD/tests/bpf/test_loader" "$BUILD/tests/unit/test_stats"; do
	[[ -x $t ]] || e2e_fail "$t missing (make test-bins)"
done

host_bpffs() { awk '$5 == "/sys/fs/bpf"' /proc/self/mountinfo | wc -l; }
BEFORE=$(host_bpffs)

# stdout is this script's log; each test's output goes there too.
unshare -m --propagation private bash -euo pipefail -c '
	empty() { ! awk '\''$5 == "/sys/fs/bpf" {found = 1} END {exit !found}'\'' /proc/self/mountinfo; }
	while ! empty; do umount -l /sys/fs/bpf; done
	empty || { echo "FAIL: /sys/fs/bpf still mounted in the private namespace" >&2; exit 1; }
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1
	for t in "$@"; do
		echo "== $t (nothing at /sys/fs/bpf)"
		if ! "$t"; then
			echo "FAIL: $t failed without a bpffs mounted beforehand" >&2
			exit 1
		fi
		empty || { echo "FAIL: $t left a mount at /sys/fs/bpf" >&2; exit 1; }
	done
' fresh "${TESTS[@]}" || e2e_fail "a kernel test needs a bpffs it did not mount, or leaks one"

[[ $(host_bpffs) == "$BEFORE" ]] || e2e_fail "the mounts at /sys/fs/bpf outside changed ($BEFORE -> $(host_bpffs))"
echo "PASS: fresh_machine_bpffs (${#TESTS[@]} tests, no bpffs beforehand, none left)"
