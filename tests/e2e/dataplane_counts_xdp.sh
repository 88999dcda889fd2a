#!/usr/bin/env bash
# dataplane_counts_xdp.sh - dataplane_counts.sh with ingress on XDP (the
# hook of physical NICs) instead of auto's TC on a veth: the counters must
# equal the capture slot by slot on either hook.
ITR_INGRESS_HOOK=xdp exec bash "$(dirname "$0")/dataplane_counts.sh"
