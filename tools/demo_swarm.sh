#!/usr/bin/env bash
# demo_swarm.sh - step 6 of `make demo` (sourced by tools/demo.sh while its
# namespaces and itrackerd are up): a small swarm of real BitTorrent clients
# (libtorrent), each in its own namespace with one address of
# maps/example.netmap, whose only way to meet is itrackerd's tracker. ISP
# A's hosts hang off the demo's namespace A, ISP B's and C's off B, so the
# va/vb link is the inter-ISP link: the data plane on va counts every byte
# the two sides exchange. After every client has the file (each copy
# compared with the original), each client asks the tracker for peers the
# way it did when it joined, and the answer is shown with the PID of every
# peer and its cost from the client.
#
# Uses the demo's variables and helpers: ITRACKER_ROOT, A, B, BIN, MAP, ROOT,
# E2E_TMP, show, in_a, and tests/e2e/lib/netns.sh (e2e_netns, e2e_bg, ...).

SWARM_DIR=$E2E_TMP/swarm
SWARM_TRACKER=http://10.10.1.2:6969
SWARM_PORT=6881
# name  address       PID (maps/example.netmap)  behind
SWARM_HOSTS=(
	"itrdemo-h1 10.10.1.11 a-metro1 $A"
	"itrdemo-h2 10.10.1.12 a-metro1 $A"
	"itrdemo-h3 10.10.2.11 a-metro2 $A"
	"itrdemo-h4 10.20.0.11 b-core $B"
	"itrdemo-h5 10.20.200.11 b-edge $B"
	"itrdemo-h6 10.30.0.11 c-all $B"
	"itrdemo-h7 10.30.0.12 c-all $B"
)
SWARM_SEEDER=itrdemo-h6 # the content starts across the transit link
# gateway address each side's hosts use: an address the router already has
SWARM_GW_A=10.10.1.2
SWARM_GW_B=10.30.0.2

for h in "${SWARM_HOSTS[@]}"; do
	read -r name _ <<<"$h"
	ip netns del "$name" 2>/dev/null || true
done

echo "Seven hosts, one namespace each, routed through $A (ISP A) or $B (ISPs B and C):"
ip netns exec "$A" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$B" sysctl -qw net.ipv4.ip_forward=1
for i in "${!SWARM_HOSTS[@]}"; do
	read -r name addr pid router <<<"${SWARM_HOSTS[$i]}"
	if [[ $router == "$A" ]]; then gw=$SWARM_GW_A other=$B other_if=vb; else
		gw=$SWARM_GW_B other=$A other_if=va
	fi
	e2e_netns "$name"
	e2e_veth "$name" eth0 "$router" "sw$((i + 1))"
	e2e_addr "$name" eth0 "$addr/32"
	# the router answers ARP for its own gateway address on any interface
	ip -n "$name" route add default via "$gw" dev eth0 onlink
	ip -n "$router" route add "$addr/32" dev "sw$((i + 1))"
	# the other side reaches it through the router's address on the va/vb link
	ip -n "$other" route add "$addr/32" via "$gw" dev "$other_if"
	printf '  %-11s %-13s %-9s via %s\n' "$name" "$addr" "$pid" "$router"
done

show "ip netns exec itrdemo-h4 curl -s $SWARM_TRACKER/v1/netinfo"
ip netns exec itrdemo-h4 curl -fsS --max-time 5 "$SWARM_TRACKER/v1/netinfo"
echo
echo "(the tracker sees each client's own address: no NAT on the way)"

mkdir -p "$SWARM_DIR/seed"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$SWARM_DIR/seed/swarm.bin"
show "transmission-create -t $SWARM_TRACKER/announce -o swarm.torrent swarm.bin"
transmission-create -t "$SWARM_TRACKER/announce" -o "$SWARM_DIR/swarm.torrent" \
	"$SWARM_DIR/seed/swarm.bin" >/dev/null

# Clients: libtorrent (tools/demo_swarm_client.py), no DHT, LSD or PEX: the
# tracker is the only way they meet. Their own connections open with the
# plain peer-wire handshake, which the data plane recognizes (aria2c would
# encrypt every connection it opens). Each keeps seeding until the demo
# ends, so the swarm stays whole for the look at the tracker's answers; a
# client that has the whole file, hash-checked, leaves a marker.
swarm_client() { # host dir
	e2e_bg ip netns exec "$1" /usr/bin/python3 "$ITRACKER_ROOT/tools/demo_swarm_client.py" \
		"$SWARM_DIR/swarm.torrent" "$2" "$(swarm_addr "$1")" "$SWARM_PORT" "$SWARM_DIR/$1.done" \
		>"$SWARM_DIR/$1.log" 2>&1
}
swarm_addr() { # host
	local h name addr
	for h in "${SWARM_HOSTS[@]}"; do
		read -r name addr _ <<<"$h"
		[[ $name == "$1" ]] && echo "$addr"
	done
	return 0
}
swarm_pending() { # number of clients without the whole file
	local h name n=0
	for h in "${SWARM_HOSTS[@]}"; do
		read -r name _ <<<"$h"
		[[ -e $SWARM_DIR/$name.done ]] || n=$((n + 1))
	done
	echo "$n"
}
swarm_fail() {
	local h name
	for h in "${SWARM_HOSTS[@]}"; do
		read -r name _ <<<"$h"
		[[ -e $SWARM_DIR/$name.log ]] || continue
		echo "--- $name" >&2
		tail -n 5 "$SWARM_DIR/$name.log" >&2 || true
	done
	e2e_fail "$*"
}

show "ip netns exec $SWARM_SEEDER /usr/bin/python3 tools/demo_swarm_client.py swarm.torrent seed $(swarm_addr $SWARM_SEEDER) $SWARM_PORT $SWARM_SEEDER.done"
swarm_client "$SWARM_SEEDER" "$SWARM_DIR/seed"
SWARM_SCRAPE="$SWARM_TRACKER/scrape?"$(/usr/bin/python3 "$ITRACKER_ROOT/tools/demo_swarm_peers.py" \
	scrape-query "$SWARM_DIR/swarm.torrent")
for _ in $(seq 200); do # the seeder checks the file, announces, then writes its marker
	[[ -e $SWARM_DIR/$SWARM_SEEDER.done ]] &&
		ip netns exec "$SWARM_SEEDER" curl -fsS --max-time 5 "$SWARM_SCRAPE" 2>/dev/null |
		grep -aq '8:completei1e' && break
	sleep 0.1
done
show "ip netns exec $SWARM_SEEDER curl -s '$SWARM_SCRAPE'   # the tracker knows one seeder"
ip netns exec "$SWARM_SEEDER" curl -fsS --max-time 5 "$SWARM_SCRAPE" | tr -c '[:print:]' '?'
echo
[[ -e $SWARM_DIR/$SWARM_SEEDER.done ]] || swarm_fail "the seeder did not start seeding"

swarm_start=$(date +%s%N)
show "ip netns exec itrdemo-hN /usr/bin/python3 tools/demo_swarm_client.py swarm.torrent itrdemo-hN ADDR $SWARM_PORT itrdemo-hN.done   # every other host"
for h in "${SWARM_HOSTS[@]}"; do
	read -r name _ <<<"$h"
	[[ $name == "$SWARM_SEEDER" ]] && continue
	mkdir -p "$SWARM_DIR/$name"
	swarm_client "$name" "$SWARM_DIR/$name"
done
for _ in $(seq 600); do
	[[ $(swarm_pending) == 0 ]] && break
	sleep 0.1
done
[[ $(swarm_pending) == 0 ]] || swarm_fail "the swarm did not finish within 60 s"
for h in "${SWARM_HOSTS[@]}"; do
	read -r name _ <<<"$h"
	[[ $name == "$SWARM_SEEDER" ]] && continue
	cmp -s "$SWARM_DIR/$name/swarm.bin" "$SWARM_DIR/seed/swarm.bin" ||
		swarm_fail "$name: its copy differs from the original"
done
swarm_ms=$((($(date +%s%N) - swarm_start) / 1000000))
printf 'All 6 leechers have the 4 MiB file, each copy equal to the original (%d.%d s).\n' \
	$((swarm_ms / 1000)) $((swarm_ms % 1000 / 100))

echo
echo "Each client asks the tracker for peers as it did when it joined (its address and port,"
echo "a leecher: left = the file's size; numwant=8; compact=0 for a readable list). PIDs and"
echo "costs are itrackerd's own (POST /v1/rank with that list); the order is the answer's."
SWARM_QUERY=$(/usr/bin/python3 "$ITRACKER_ROOT/tools/demo_swarm_peers.py" announce-query \
	"$SWARM_DIR/swarm.torrent" "$SWARM_PORT" 8)
for i in "${!SWARM_HOSTS[@]}"; do
	read -r name addr _ <<<"${SWARM_HOSTS[$i]}"
	if ((i == 0)); then
		show "ip netns exec $name curl -s '$SWARM_TRACKER/announce?$SWARM_QUERY'"
	fi
	ip netns exec "$name" curl -fsS --max-time 5 "$SWARM_TRACKER/announce?$SWARM_QUERY" >"$SWARM_DIR/$name.answer"
	if ((i == 0)); then
		tr -c '[:print:]' '?' <"$SWARM_DIR/$name.answer"
		echo
	fi
	in_a /usr/bin/python3 "$ITRACKER_ROOT/tools/demo_swarm_peers.py" explain "$addr" \
		http://127.0.0.1:6969/v1/rank http://127.0.0.1:6969/v1/netinfo <"$SWARM_DIR/$name.answer"
done
echo "Cheapest first by the map's costs (ties in BEP 40 order, per client pair). Every list"
echo "holds the client's own-AS peers; outside peers go to one gateway per AS and swarm"
echo "(--gateways 1), which gets up to --max-external (2), the other ASes' gateways first;"
echo "a list shorter than --min-list (3) is topped up with the cheapest outsiders, and a"
echo "peer alone in its AS is its gateway, so no AS is ever cut off from the swarm."

echo
echo "What crossed va, the link between ISP A's side and the rest (all steps so far):"
show "itrackerctl --pin-root $ROOT stats"
"$BIN/itrackerctl" --pin-root "$ROOT" stats
show "itrackerctl --pin-root $ROOT matrix --map $MAP"
"$BIN/itrackerctl" --pin-root "$ROOT" matrix --map "$MAP"
