#!/usr/bin/env bash
# classify_corpus.sh - precision on real non-BitTorrent traffic: every
# capture of tests/corpus/nonbt/ (made by tools/corpus/make_nonbt.sh with
# real programs: RTP/RTCP, a SIP call with RTP (baresip), STUN, TURN, DTLS, WireGuard, OpenVPN, QUIC, DNS,
# mDNS, NTP, SNMP, NetBIOS, syslog, TFTP, HTTP, HTTPS/HTTP2, SSH/SCP,
# game-like UDP) goes through `itrackerctl classify`; not one flow may come
# out as BitTorrent, every frame must run, and every capture must be listed
# in the MANIFEST. Also: classifying several files in one run gives each
# the result it gets alone. (Recall on real BitTorrent clients:
# classify_captures.sh.)
set -euo pipefail
E2E=clscorp$$
LIB=$(dirname "$0")/lib
# shellcheck source=lib/netns.sh
. "$LIB/netns.sh"
e2e_require_root
CTL=$BUILD/itrackerctl
CORPUS=tests/corpus/nonbt
[[ -x $CTL ]] || e2e_fail "$CTL not built"

caps=("$CORPUS"/*.pcap)
((${#caps[@]} >= 20)) || e2e_fail "only ${#caps[@]} captures in $CORPUS"
for cap in "${caps[@]}"; do
	grep -q "^$(basename "$cap"):" "$CORPUS/MANIFEST" || e2e_fail "$cap is not in $CORPUS/MANIFEST"
done
"$CTL" classify "${caps[@]}" --map maps/example.netmap --json >"$E2E_TMP/all.json" ||
	e2e_fail "classify failed"
[[ $(jq length "$E2E_TMP/all.json") == "${#caps[@]}" ]] || e2e_fail "not one result per capture"
jq -r '.[] | "\(.file): \(.flow_count) flows, \(.bittorrent_flows) BitTorrent"' "$E2E_TMP/all.json"
empty=$(jq '[.[] | select(.flow_count == 0 or .frames_not_run > 0)] | length' "$E2E_TMP/all.json")
((empty == 0)) || e2e_fail "$empty captures without flows or with frames that did not run"
flows=$(jq '[.[].flow_count] | add' "$E2E_TMP/all.json")
bad=$(jq '[.[].bittorrent_flows] | add' "$E2E_TMP/all.json")
echo "classify_corpus: ${#caps[@]} captures, $flows flows, $bad called BitTorrent"
if ((bad > 0)); then
	jq -c '.[] | .file as $f | .flows[] | select(.kind != "none") | {file: $f, proto, lo, hi, kind}' \
		"$E2E_TMP/all.json" >&2
	e2e_fail "$bad false positives"
fi

# One capture alone gives what it gave among the others (the data plane is
# emptied between files: nothing learned from one capture leaks into the next).
"$CTL" classify "$CORPUS/dns.pcap" --map maps/example.netmap --json >"$E2E_TMP/one.json"
alone=$(jq -c '[.flows, .counters_by_kind]' "$E2E_TMP/one.json")
among=$(jq -c --arg f "$CORPUS/dns.pcap" '.[] | select(.file == $f) | [.flows, .counters_by_kind]' \
	"$E2E_TMP/all.json")
[[ $alone == "$among" ]] || e2e_fail "dns.pcap classified differently among the others"
