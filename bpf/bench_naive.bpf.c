/* bench_naive.bpf.c - reference programs itracker's data plane is measured
 * against; built only for `make bench`, never part of the product.
 *
 * naive_xdp: a "naive" locality counter: same parser as locality.bpf.c,
 * then two LPM lookups (source and destination) on every packet, no flow
 * cache, and a per-CPU counter by class.
 * flow_lookup_xdp: the floor of itracker's design: the same parser, the
 * canonical flow key (16 bytes for IPv4) and one lookup in the flow cache,
 * nothing else.
 * tools/bench/bench_xdp.c loads them with the real program's LPM tries and
 * flow cache (map fds reused), so all see the same table contents.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "itracker_maps.h"
#include "parse.h"
#include "flow_key.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ITR_LPM_V4_MAX);
	__type(key, struct itr_lpm_v4_key);
	__type(value, struct itr_pid_info);
} lpm_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ITR_LPM_V6_MAX);
	__type(key, struct itr_lpm_v6_key);
	__type(value, struct itr_pid_info);
} lpm_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ITR_FLOWS_MAX);
	__type(key, struct itr_flow_key_v4);
	__type(value, struct itr_flow_verdict);
} flows_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ITR_FLOWS_MAX);
	__type(key, struct itr_flow_key);
	__type(value, struct itr_flow_verdict);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ITR_CLASS_MAX);
	__type(key, __u32);
	__type(value, struct itr_counter);
} naive_counters SEC(".maps");

static __always_inline struct itr_pid_info *naive_lookup(const struct itr_pkt *p, const __u32 *addr)
{
	if (p->family == 4) {
		struct itr_lpm_v4_key k4 = {.prefixlen = 32};
		__builtin_memcpy(k4.addr, addr, 4);
		return bpf_map_lookup_elem(&lpm_v4, &k4);
	}
	struct itr_lpm_v6_key k6 = {.prefixlen = 128};
	__builtin_memcpy(k6.addr, addr, 16);
	return bpf_map_lookup_elem(&lpm_v6, &k6);
}

SEC("xdp")
int naive_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct itr_pkt p;

	if (itr_parse(data, data_end, data_end - data, &p) < 0)
		return XDP_PASS;
	struct itr_pid_info *src = naive_lookup(&p, p.saddr);
	struct itr_pid_info *dst = naive_lookup(&p, p.daddr);
	__u32 cls;
	if (!src || !dst)
		cls = ITR_CLASS_UNKNOWN;
	else if (src->pid == dst->pid)
		cls = ITR_CLASS_INTRA_PID;
	else if (src->asn != dst->asn)
		cls = ITR_CLASS_INTER_AS;
	else if (src->loc == dst->loc && src->loc != ITR_LOC_NONE)
		cls = ITR_CLASS_INTRA_LOC;
	else
		cls = ITR_CLASS_INTRA_AS;
	struct itr_counter *c = bpf_map_lookup_elem(&naive_counters, &cls);
	if (c) {
		c->packets++;
		c->bytes += data_end - data;
	}
	return XDP_PASS;
}

SEC("xdp")
int flow_lookup_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct itr_flow_key key __attribute__((aligned(8)));
	struct itr_flow_key_v4 key4 __attribute__((aligned(8)));
	struct itr_flow_verdict *v;
	struct itr_pkt p;

	if (itr_parse(data, data_end, data_end - data, &p) < 0)
		return XDP_PASS;
	if (p.family == 4) {
		itr_flow_key_v4_fill(&key4, &p, itr_src_is_lo_v4(&p));
		v = bpf_map_lookup_elem(&flows_v4, &key4);
	} else {
		itr_flow_key_fill(&key, &p, itr_src_is_lo(&p));
		v = bpf_map_lookup_elem(&flows, &key);
	}
	/* Use the result, so the lookup cannot be optimised away. */
	return v && v->kind == ITR_KIND_MAX ? XDP_DROP : XDP_PASS;
}
