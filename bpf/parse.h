/* parse.h - packet header parsing for the itracker kernel programs.
 *
 * itr_parse() walks Ethernet, up to two VLAN tags, IPv4 (options) or IPv6
 * (a bounded chain of extension headers) and TCP or UDP with direct packet
 * access, and fills a struct itr_pkt: addresses, ports and where the L4
 * payload starts and how long it is. Anything it cannot fully parse, and
 * non-first fragments, make it return -1: the caller then passes the packet
 * untouched and does not count it.
 *
 * Included by locality.bpf.c only (needs linux/bpf.h and bpf_endian.h).
 */
#ifndef ITR_PARSE_H
#define ITR_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

/* IPv6 extension headers we step over before giving up. */
#define ITR_IPV6_MAX_EXT 6

struct itr_vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct itr_pkt {
	__u32 saddr[4]; /* network byte order; IPv4 uses word 0 only */
	__u32 daddr[4];
	__u32 l3_off;      /* offset of the IP header from the frame start */
	__u32 payload_off; /* offset of the L4 payload from the frame start */
	__u32 payload_len; /* L4 payload bytes per the headers, clipped to the frame */
	__u32 tcp_seq;     /* host byte order; TCP only */
	__u32 tcp_ack;     /* host byte order; TCP only, valid with ITR_TCP_ACK */
	__u16 sport;       /* network byte order */
	__u16 dport;
	__u8 family;    /* 4 or 6 */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 tcp_flags; /* TCP only: FIN SYN RST PSH ACK ... (byte 13) */
	__u8 pad;
};

#define ITR_TCP_SYN 0x02
#define ITR_TCP_ACK 0x10

static __always_inline __u32 itr_min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/* Returns the offset just past the IPv6 extension-header chain and stores
 * the upper-layer protocol in *nexthdr_out, or -1 for a chain that runs off
 * the frame, is longer than ITR_IPV6_MAX_EXT, carries a non-first fragment
 * or ends in a header we cannot step over (ESP, no-next-header, ...). */
static __always_inline int itr_skip_ipv6_ext(void *data, void *data_end, __u32 off, __u8 nexthdr,
                                             __u8 *nexthdr_out)
{
#pragma unroll
	for (int i = 0; i < ITR_IPV6_MAX_EXT; i++) {
		if (nexthdr == IPPROTO_TCP || nexthdr == IPPROTO_UDP) {
			*nexthdr_out = nexthdr;
			return off;
		}
		if (off > 0x3fff)
			return -1;
		__u8 *hdr = data + off;
		if ((void *)(hdr + 8) > data_end)
			return -1;
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			off += ((__u32)hdr[1] + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			/* Fragment offset: top 13 bits of bytes 2-3. */
			if ((((__u32)hdr[2] << 8 | hdr[3]) & 0xfff8) != 0)
				return -1;
			off += 8;
			break;
		case IPPROTO_AH:
			off += ((__u32)hdr[1] + 2) * 4;
			break;
		default:
			return -1;
		}
		nexthdr = hdr[0];
	}
	if (nexthdr == IPPROTO_TCP || nexthdr == IPPROTO_UDP) {
		*nexthdr_out = nexthdr;
		return off;
	}
	return -1;
}

/* frame_len: the whole frame's length (skb->len for TC, where the payload
 * may lie beyond the linear part); headers must be in [data, data_end). */
static __always_inline int itr_parse(void *data, void *data_end, __u32 frame_len, struct itr_pkt *p)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u32 l4_end; /* end of the L4 segment according to the IP header */

	if ((void *)(eth + 1) > data_end)
		return -1;
	__be16 ethertype = eth->h_proto;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (ethertype != bpf_htons(ETH_P_8021Q) && ethertype != bpf_htons(ETH_P_8021AD))
			break;
		struct itr_vlan_hdr *vh = data + off;
		if ((void *)(vh + 1) > data_end)
			return -1;
		ethertype = vh->encapsulated_proto;
		off += sizeof(*vh);
	}

	p->l3_off = off;
	if (ethertype == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		asm volatile("" : "+r"(ip)); /* one pointer, tested and used */
		if ((void *)(ip + 1) > data_end)
			return -1;
		__u32 ihl = ip->ihl * 4;
		if (ip->version != 4 || ihl < sizeof(*ip))
			return -1;
		if (ip->frag_off & bpf_htons(0x1fff))
			return -1; /* non-first fragment: no L4 header */
		__u32 tot = bpf_ntohs(ip->tot_len);
		if (tot < ihl)
			return -1;
		p->family = 4;
		p->proto = ip->protocol;
		p->saddr[0] = ip->saddr;
		p->saddr[1] = p->saddr[2] = p->saddr[3] = 0;
		p->daddr[0] = ip->daddr;
		p->daddr[1] = p->daddr[2] = p->daddr[3] = 0;
		l4_end = off + tot;
		off += ihl;
	} else if (ethertype == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		if (ip6->version != 6)
			return -1;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		l4_end = off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		int l4 =
		    itr_skip_ipv6_ext(data, data_end, off + sizeof(*ip6), ip6->nexthdr, &p->proto);
		if (l4 < 0)
			return -1;
		off = l4;
	} else {
		return -1;
	}

	if (off > 0x7fff)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;
		asm volatile("" : "+r"(th)); /* one pointer, tested and used */
		if ((void *)(th + 1) > data_end)
			return -1;
		__u32 doff = th->doff * 4;
		if (doff < sizeof(*th))
			return -1;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_seq = bpf_ntohl(th->seq);
		p->tcp_ack = bpf_ntohl(th->ack_seq);
		p->tcp_flags = ((__u8 *)th)[13];
		off += doff;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = data + off;
		asm volatile("" : "+r"(uh)); /* one pointer, tested and used */
		if ((void *)(uh + 1) > data_end)
			return -1;
		__u32 ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh))
			return -1;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->tcp_seq = p->tcp_ack = 0;
		p->tcp_flags = 0;
		l4_end = itr_min_u32(l4_end, off + ulen);
		off += sizeof(*uh);
	} else {
		return -1;
	}

	if (off > frame_len || off > l4_end)
		return -1; /* L4 header (options) cut short */
	p->payload_off = off;
	/* Ethernet pads short frames: trust the IP/UDP lengths, not the frame. */
	p->payload_len = itr_min_u32(l4_end, frame_len) - off;
	return 0;
}

#endif /* ITR_PARSE_H */
