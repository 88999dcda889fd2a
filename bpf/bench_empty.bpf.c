/* bench_empty.bpf.c - the reference for real-traffic benchmarks
 * (tools/bench/bench_hooks.py): programs that do nothing in each hook, so
 * that what a hook costs by itself (for XDP on a veth: the stack's GRO)
 * is measured apart from what itracker's classification costs in it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int bench_empty_xdp(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

SEC("tc")
int bench_empty_tc(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

/* The same, declared able to take multi-buffer frames (xdp.frags) as
 * itracker's XDP program is: the flag changes the path packets take to the
 * program (generic XDP linearises a GRO super-packet for a program
 * without it), so it belongs to the reference. */
SEC("xdp.frags")
int bench_empty_xdp_frags(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
