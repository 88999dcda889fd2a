/* flow_key.h - the canonical flow-cache key of a parsed packet.
 *
 * Both directions of a flow must find one itr_flow_key (see
 * maps/itracker_maps.h): the (address, port) end that sorts lower goes into
 * the "lo" fields. Shared by locality.bpf.c and the benchmark's reference
 * programs so both build keys the same way.
 */
#ifndef ITR_FLOW_KEY_H
#define ITR_FLOW_KEY_H

#include "parse.h"

/* memcmp order of (address, port) with the port compared as a number. */
static __always_inline int itr_src_is_lo(const struct itr_pkt *p)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 s = bpf_ntohl(p->saddr[i]), d = bpf_ntohl(p->daddr[i]);
		if (s != d)
			return s < d;
	}
	return bpf_ntohs(p->sport) <= bpf_ntohs(p->dport);
}

static __always_inline void itr_flow_key_fill(struct itr_flow_key *k, const struct itr_pkt *p,
                                              int src_lo)
{
	if (src_lo) {
		__builtin_memcpy(k->addr_lo, p->saddr, 16);
		__builtin_memcpy(k->addr_hi, p->daddr, 16);
		k->port_lo = p->sport;
		k->port_hi = p->dport;
	} else {
		__builtin_memcpy(k->addr_lo, p->daddr, 16);
		__builtin_memcpy(k->addr_hi, p->saddr, 16);
		k->port_lo = p->dport;
		k->port_hi = p->sport;
	}
	k->proto = p->proto;
	k->family = p->family;
	k->pad[0] = k->pad[1] = 0;
}

#endif /* ITR_FLOW_KEY_H */
