#!/usr/bin/env bash
# alto_conformance.sh - start itrackerd on loopback with RFC 7285's example
# network (maps/rfc7285-example.netmap, no data plane) and replay the RFC's
# ALTO examples against it with tests/e2e/alto_conformance.py. Exits 0 only
# if every check passed. Needs $BUILD/itrackerd (make all).
set -euo pipefail

ROOT=${ITRACKER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DAEMON=$BUILD/itrackerd
MAP=$ROOT/maps/rfc7285-example.netmap

if [[ ! -x $DAEMON ]]; then
	echo "alto_conformance: $DAEMON not built (make BUILD=... all)" >&2
	exit 1
fi

WORK=$(mktemp -d /tmp/alto_conformance.XXXXXX)
PID=
cleanup() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Port 0: the daemon picks a free port and logs it.
"$DAEMON" --no-dataplane --map "$MAP" --listen 127.0.0.1:0 --udp off >"$WORK/daemon.log" 2>&1 &
PID=$!

port=
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*HTTP on 127\.0\.0\.1 port \([0-9][0-9]*\).*/\1/p' "$WORK/daemon.log")
	[[ -n $port ]] && break
	if ! kill -0 "$PID" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
if [[ -z $port ]]; then
	echo "alto_conformance: itrackerd did not start:" >&2
	cat "$WORK/daemon.log" >&2
	exit 1
fi

python3 "$ROOT/tests/e2e/alto_conformance.py" "http://127.0.0.1:$port/alto"
