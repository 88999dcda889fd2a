#!/usr/bin/env bash
# demo_runtime_only.sh - `make demo` works with only the packages of
# `tools/deps.sh runtime`, and installs nothing more.
#
# In a scratch root (an overlay on this machine's root with a tmpfs on
# top, in a mount namespace of its own) every package that only the tests
# need is purged (`tools/deps.sh list-test-only`, less the essential
# ones), apt has no source (an install attempt would fail), and the tracked
# files plus this build are copied in. Then `make demo` must pass there.
E2E=itrdemoro$$
: "${ITRACKER_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
cd "$ITRACKER_ROOT"
[[ -x $BUILD/itrackerd ]] || e2e_fail "build first (make all)"

PURGE=()
for p in $(bash tools/deps.sh list-test-only); do
	[[ $(dpkg-query -W -f='${db:Status-Status} ${Essential}' "$p" 2>/dev/null) == "installed no" ]] &&
		PURGE+=("$p")
done
echo "purging in the scratch root: ${PURGE[*]}"
mkdir -p "$E2E_TMP/scratch" "$E2E_TMP/src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$E2E_TMP/src"
cp -a "$BUILD" "$E2E_TMP/src/build"

unshare -m --propagation private bash -euo pipefail -c '
	W=$1 SRC=$2
	shift 2
	fail() { echo "FAIL: $*" >&2; exit 1; }
	mount -t tmpfs tmpfs "$W"
	mkdir -p "$W/upper" "$W/work" "$W/root"
	mount -t overlay overlay -o lowerdir=/,upperdir="$W/upper",workdir="$W/work" "$W/root"
	R=$W/root
	mount -t proc proc "$R/proc"
	mount -t sysfs sysfs "$R/sys"
	mount --rbind /dev "$R/dev"
	mount -t tmpfs tmpfs "$R/run"
	mkdir -p "$R/srv"
	cp -a "$SRC" "$R/srv/itracker"
	rm -rf "$R/etc/apt/sources.list.d" "$R/etc/apt/sources.list"
	mkdir -p "$R/etc/apt/sources.list.d"
	chroot "$R" dpkg --purge --force-depends "$@" >/dev/null 2>&1 || fail "purging the test-only packages"
	for p in "$@"; do
		[[ $(chroot "$R" dpkg-query -W -f="\${db:Status-Status}" "$p" 2>/dev/null) != installed ]] ||
			fail "$p still installed"
	done
	chroot "$R" sh -c "cd /srv/itracker && make demo" >"$W/demo.log" 2>&1 || {
		tail -n 30 "$W/demo.log"
		fail "make demo with the runtime packages only"
	}
	grep -q "^deps: installing" "$W/demo.log" && fail "make demo installed packages: $(grep "^deps:" "$W/demo.log")"
	tail -n 3 "$W/demo.log"
' scratch "$E2E_TMP/scratch" "$E2E_TMP/src" "${PURGE[@]}" || e2e_fail "make demo with only the runtime packages"
echo "PASS: demo_runtime_only (${#PURGE[@]} test-only packages purged)"
