/* flow_key.h - the canonical flow-cache key of a parsed packet.
 *
 * Both directions of a flow must find one key (itr_flow_key for IPv6,
 * itr_flow_key_v4 for IPv4, see maps/itracker_maps.h): the (address, port)
 * end that sorts lower goes into the "lo" fields. Shared by locality.bpf.c,
 * the benchmark's reference programs and itrackerctl classify, so all build
 * keys the same way.
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

/* The IPv4 key (ITR_MAP_FLOWS_V4): the same "lo" end as itr_src_is_lo
 * picks, found with one comparison instead of four. */
static __always_inline int itr_src_is_lo_v4(const struct itr_pkt *p)
{
	__u32 s = bpf_ntohl(p->saddr[0]), d = bpf_ntohl(p->daddr[0]);
	if (s != d)
		return s < d;
	return bpf_ntohs(p->sport) <= bpf_ntohs(p->dport);
}

static __always_inline void itr_flow_key_v4_fill(struct itr_flow_key_v4 *k, const struct itr_pkt *p,
                                                 int src_lo)
{
	k->addr_lo = src_lo ? p->saddr[0] : p->daddr[0];
	k->addr_hi = src_lo ? p->daddr[0] : p->saddr[0];
	k->port_lo = src_lo ? p->sport : p->dport;
	k->port_hi = src_lo ? p->dport : p->sport;
	k->proto = p->proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* A v4 key in the family-independent form (user space lists both maps'
 * flows as one list). */
static __always_inline void itr_flow_key_widen_v4(struct itr_flow_key *k,
                                                  const struct itr_flow_key_v4 *k4)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->addr_lo, &k4->addr_lo, 4);
	__builtin_memcpy(k->addr_hi, &k4->addr_hi, 4);
	k->port_lo = k4->port_lo;
	k->port_hi = k4->port_hi;
	k->proto = k4->proto;
	k->family = 4;
}

#endif /* ITR_FLOW_KEY_H */
