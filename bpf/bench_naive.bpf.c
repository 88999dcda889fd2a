/* bench_naive.bpf.c - the design itracker's data plane is measured against.
 *
 * A "naive" locality counter: same parser as locality.bpf.c, then two LPM
 * lookups (source and destination) on every packet, no flow cache, and a
 * per-CPU counter by class. tools/bench/bench_xdp.c loads it with the LPM
 * tries of the real program (map fds reused), so both see the same
 * prefixes. Never part of the product: built only for `make bench`.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "itracker_maps.h"
#include "parse.h"

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
