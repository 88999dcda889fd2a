#!/usr/bin/env bash
# ingress_hooks.sh - where ingress is classified: auto picks TC on a veth
# (a virtual device) and says so; --ingress-hook xdp / tc force one; a
# restart with the other choice (programs kept attached in between) moves
# ingress to the new hook and leaves exactly one; --purge removes both.
set -euo pipefail
source "$(dirname "$0")/lib/netns.sh"
e2e_require_root
e2e_pair
e2e_bpffs
MAP=$ITRACKER_ROOT/maps/example.netmap

hooks_on_va() { # prints "xdp" and/or "tc" for what carries itracker's ingress program
	ip -n "$NS_A" link show va | grep -q 'prog/xdp' && echo xdp
	ip netns exec "$NS_A" tc filter show dev va ingress | grep -q itr_tc_ingress && echo tc
	return 0
}
expect_hooks() { # want what
	local got
	got=$(hooks_on_va | tr '\n' ' ')
	[[ $got == "$1 " ]] || e2e_fail "$2: ingress on '$got', want '$1'"
	echo "ok: $2: ingress on $1"
}
run() { # extra args...: start, wait, stop (programs stay attached)
	e2e_itrackerd --map "$MAP" --keep-attached "$@"
	kill "$ITRD_PID"
	wait "$ITRD_PID" || true
	E2E_PIDS=()
}

run
grep -q 'va: TC ingress (virtual device)' "$E2E_TMP/itrackerd.log" ||
	{ cat "$E2E_TMP/itrackerd.log"; e2e_fail "auto on a veth did not say TC ingress"; }
expect_hooks tc "auto on a veth"
run --ingress-hook xdp
expect_hooks xdp "then --ingress-hook xdp"
run --ingress-hook tc
expect_hooks tc "then --ingress-hook tc"
ip netns exec "$NS_A" "$ITRACKER_ROOT/$BUILD/itrackerd" --purge --pin-root "$E2E_PIN_ROOT" >/dev/null
[[ -z $(hooks_on_va) ]] || e2e_fail "--purge left an ingress hook on va"
[[ -z $(ip netns exec "$NS_A" tc filter show dev va egress) ]] || e2e_fail "--purge left TC egress"
echo "ingress_hooks: ok"
