# netns.sh - shared helpers for e2e tests: namespaces, veth pairs, a private
# bpffs, itrackerd start/stop, and cleanup on any exit. Source it.
#
# Every test gets its own name prefix ($E2E), so parallel or leftover runs
# never collide, and everything it creates is removed by e2e_cleanup.

set -euo pipefail

: "${BUILD:=build}"
E2E=${E2E:-itr$$}
E2E_TMP=$(mktemp -d "/tmp/${E2E}.XXXXXX")
E2E_NETNS=()
E2E_PIDS=()
E2E_BPFFS=""

e2e_require_root() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "e2e: must run as root (network namespaces, BPF)" >&2
		exit 1 # never skip: CI runs as root, a skip would hide a failure
	fi
}

e2e_cleanup() {
	local rc=$?
	set +e
	for pid in "${E2E_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	sleep 0.2
	for pid in "${E2E_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ns in "${E2E_NETNS[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	if [[ -n $E2E_BPFFS ]]; then
		umount "$E2E_BPFFS" 2>/dev/null || umount -l "$E2E_BPFFS" 2>/dev/null
	fi
	# A failed test shows what its daemons said: CI keeps nothing else.
	if ((rc != 0)); then
		local log
		for log in "$E2E_TMP"/itrackerd*.log; do
			[[ -s $log ]] || continue
			echo "--- last lines of ${log##*/}:" >&2
			tail -n 15 "$log" >&2
		done
	fi
	if ((rc != 0)) && [[ -n ${E2E_KEEP_TMP:-} ]]; then
		echo "e2e: kept $E2E_TMP" >&2
	else
		rm -rf "$E2E_TMP"
	fi
	exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

e2e_netns() { # name
	# A run killed before its cleanup (a CI timeout, a reboot of the runner
	# mid-test) leaves its namespace behind; names carry the run's PID, so
	# one of the same name is such a leftover and never a live run's.
	if [[ -e /run/netns/$1 ]]; then
		ip netns pids "$1" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$1" 2>/dev/null || true
	fi
	ip netns add "$1"
	E2E_NETNS+=("$1")
	ip -n "$1" link set lo up
}

# veth between two namespaces, offloads off so every frame is MTU-sized and
# the data plane, tcpdump and the test see the same frames.
e2e_veth() { # ns1 if1 ns2 if2
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	local ns ifc
	for pair in "$1:$2" "$3:$4"; do
		ns=${pair%%:*}
		ifc=${pair#*:}
		ip netns exec "$ns" ethtool -K "$ifc" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
		ip -n "$ns" link set "$ifc" up
	done
}

e2e_addr() { # ns if addr/len...
	local ns=$1 ifc=$2
	shift 2
	for a in "$@"; do
		ip -n "$ns" addr add "$a" dev "$ifc" nodad 2>/dev/null || ip -n "$ns" addr add "$a" dev "$ifc"
	done
}

# A bpffs outside any namespace: `ip netns exec` remounts /sys, so pins
# under /sys/fs/bpf made inside would vanish with the command.
# Sets E2E_PIN_ROOT (call it directly, not in $(...): the mount must be
# remembered by this shell for cleanup).
e2e_bpffs() {
	E2E_BPFFS=$E2E_TMP/bpffs
	mkdir -p "$E2E_BPFFS"
	mount -t bpf bpf "$E2E_BPFFS"
	E2E_PIN_ROOT=$E2E_BPFFS/itracker
}

e2e_bg() { # run a command in the background, remember it for cleanup
	"$@" &
	E2E_PIDS+=($!)
}

e2e_wait_http() { # url [seconds]
	e2e_wait_http_in "" "$@"
}

e2e_wait_http_in() { # netns ('': this one) url [seconds]
	local ns=$1 url=$2 limit=${3:-10} i
	local -a in_ns=()
	[[ -n $ns ]] && in_ns=(ip netns exec "$ns")
	for ((i = 0; i < limit * 10; i++)); do
		if "${in_ns[@]}" curl -fsS -o /dev/null "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "e2e: $url did not answer within ${limit}s" >&2
	return 1
}

e2e_wait_file() { # path [seconds]
	local f=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		[[ -e $f ]] && return 0
		sleep 0.1
	done
	echo "e2e: $f did not appear within ${limit}s" >&2
	return 1
}

e2e_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# The standard pair: namespaces ${E2E}a / ${E2E}b joined by va/vb, with
# addresses in several PIDs of maps/example.netmap on each side:
#   a: 10.10.1.2 (a-metro1) 10.10.2.2 (a-metro2) 10.99.0.2 (no PID) fd00:10:1::2
#   b: 10.30.0.2 (c-all) 10.10.1.3 (a-metro1) 10.10.3.3 (a-metro1-dc) fd00:30::2
e2e_pair() {
	NS_A=${E2E}a
	NS_B=${E2E}b
	e2e_netns "$NS_A"
	e2e_netns "$NS_B"
	e2e_veth "$NS_A" va "$NS_B" vb
	e2e_addr "$NS_A" va 10.10.1.2/32 10.10.2.2/32 10.99.0.2/32 fd00:10:1::2/128
	e2e_addr "$NS_B" vb 10.30.0.2/32 10.10.1.3/32 10.10.3.3/32 fd00:30::2/128
	ip -n "$NS_A" route add 10.0.0.0/8 dev va
	ip -n "$NS_B" route add 10.0.0.0/8 dev vb
	ip -n "$NS_A" -6 route add fd00::/8 dev va
	ip -n "$NS_B" -6 route add fd00::/8 dev vb
	MAC_A=$(ip -n "$NS_A" -j link show va | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
}

# Start itrackerd in namespace a, attached to va; waits for its status page.
# Sets ITRD_PID. Extra arguments go to itrackerd.
# The admin API's socket: one per test, not the system's default path.
E2E_ADMIN_SOCK=$E2E_TMP/admin.sock

e2e_itrackerd() {
	ip netns exec "$NS_A" "$ITRACKER_ROOT/$BUILD/itrackerd" -i va --pin-root "$E2E_PIN_ROOT" \
		--listen 127.0.0.1:6969 --udp off --admin-socket "$E2E_ADMIN_SOCK" "$@" \
		2>>"$E2E_TMP/itrackerd.log" &
	ITRD_PID=$!
	E2E_PIDS+=($ITRD_PID)
	local i
	for i in $(seq 100); do
		if ip netns exec "$NS_A" curl -fsS -o /dev/null http://127.0.0.1:6969/v1/status 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$ITRD_PID" 2>/dev/null; then
			cat "$E2E_TMP/itrackerd.log" >&2
			e2e_fail "itrackerd exited at start"
		fi
		sleep 0.1
	done
	cat "$E2E_TMP/itrackerd.log" >&2
	e2e_fail "itrackerd did not answer"
}

# tcpdump on va in namespace a; e2e_capture_stop checks nothing was dropped.
# --immediate-mode: libpcap then hands each packet over as it arrives
# (TPACKET_V2) instead of in blocks retired after a timeout (TPACKET_V3),
# whose last block a stop loses: a straggler that arrived in the last
# second before the stop (a FIN retransmitted after the peer had gone)
# was counted as received and never captured (CI, 2026-12-02).
e2e_capture_start() {
	ip netns exec "$NS_A" tcpdump --immediate-mode -B 65536 -i va -s 0 -U -w "$E2E_TMP/cap.pcap" 'tcp or udp' 2>"$E2E_TMP/tcpdump.err" &
	CAPTURE_PID=$!
	E2E_PIDS+=($CAPTURE_PID)
	local i
	for i in $(seq 50); do grep -q listening "$E2E_TMP/tcpdump.err" && return 0; sleep 0.1; done
	e2e_fail "tcpdump did not start"
}

# Stop every process in the given namespaces and wait (up to 10 s) until
# none is left: a peer still closing its connections (a loaded machine)
# could otherwise send after the capture stops, so that the data plane
# counts a packet tcpdump received but never handed over.
e2e_quiesce() { # ns...
	local ns i left
	for ns in "$@"; do ip netns pids "$ns" | xargs -r kill 2>/dev/null || :; done
	for i in $(seq 100); do
		left=
		for ns in "$@"; do [[ -z $(ip netns pids "$ns") ]] || left=1; done
		[[ -n $left ]] || return 0
		sleep 0.1
	done
	for ns in "$@"; do ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || :; done
}

# Wait (up to 15 s) until the data plane's counters under a pin root stay
# the same for half a second: the traffic is over, as the data plane sees it.
e2e_wait_counters_still() { # pin root
	local prev= cur i
	for i in $(seq 30); do
		cur=$(bpftool -j map dump pinned "$1/counters" | md5sum)
		[[ $cur == "$prev" ]] && return 0
		prev=$cur
		sleep 0.5
	done
}

# How many packets tcpdump has written, once that equals how many its filter
# received: SIGUSR1 makes it print both counts on one line and go on.
e2e_capture_caught_up() {
	local i j reports counts report='^tcpdump: .* packets dropped by kernel'
	for i in $(seq 50); do
		reports=$(grep -c "$report" "$E2E_TMP/tcpdump.err")
		kill -USR1 "$CAPTURE_PID"
		for j in $(seq 40); do
			(($(grep -c "$report" "$E2E_TMP/tcpdump.err") > reports)) && break
			sleep 0.05
		done
		counts=($(sed -n 's/^tcpdump: \([0-9]*\) packets captured, \([0-9]*\) packets received by filter, .*/\1 \2/p' \
			"$E2E_TMP/tcpdump.err" | tail -n 1))
		[[ -n ${counts[0]:-} && ${counts[0]} == "${counts[1]}" ]] && { echo "${counts[0]}"; return 0; }
		sleep 0.1
	done
	return 1
}

# Ends the capture and takes the counters ($E2E_TMP/counters.json) at one
# moment: tcpdump has written every packet it received both just before and
# just after the dump, with the same count, so the first that many packets
# of the capture are exactly what the data plane had counted. Anything that
# arrives later (a FIN retransmitted after its peer has gone) is in neither;
# cap.pcap keeps only those packets.
e2e_capture_stop() {
	e2e_wait_counters_still "$E2E_PIN_ROOT"
	local try before after=
	for try in $(seq 5); do
		before=$(e2e_capture_caught_up) || break
		bpftool -j map dump pinned "$E2E_PIN_ROOT/counters" >"$E2E_TMP/counters.json"
		after=$(e2e_capture_caught_up) || break
		[[ $before == "$after" ]] && break
		after=
		sleep 0.5
	done
	kill -INT "$CAPTURE_PID"
	wait "$CAPTURE_PID" 2>/dev/null || true
	if [[ -z $after ]] || grep -Eq '(^|, )[1-9][0-9]* packets dropped by kernel' "$E2E_TMP/tcpdump.err"; then
		cat "$E2E_TMP/tcpdump.err" >&2
		e2e_fail "tcpdump fell behind or lost packets: the comparison would be meaningless"
	fi
	mv "$E2E_TMP/cap.pcap" "$E2E_TMP/cap.all.pcap"
	tcpdump -r "$E2E_TMP/cap.all.pcap" -c "$after" -w "$E2E_TMP/cap.pcap" 2>/dev/null ||
		e2e_fail "could not cut the capture to its first $after packets"
	echo "capture: $after packets when the counters were read"
}

# Counters (bpftool dump) must equal what the capture says, slot by slot.
e2e_counters_match_capture() { # netmap
	/usr/bin/python3 "$ITRACKER_ROOT/tests/e2e/lib/pcap_expect.py" "$E2E_TMP/cap.pcap" "$MAC_A" \
		"$1" "$E2E_TMP/counters.json"
}
