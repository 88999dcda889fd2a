/* locality.bpf.c - itracker's data plane: XDP ingress and TC egress.
 *
 * Both programs run one classifier: parse the packet, find its flow in the
 * flow cache (one entry for both directions), classify new flows by the
 * locality of their two ends (two LPM lookups) and recognise BitTorrent in
 * their first payload-bearing packets, then count the packet by
 * (direction, class, kind) and, for BitTorrent, for the PID x PID matrix.
 * TC egress also applies the per-class policy to BitTorrent packets.
 *
 * The established-flow path is deliberately short: parse, one flow-cache
 * lookup (an IPv4 flow's key is 16 bytes), the config generation check,
 * the counter, and (BitTorrent only) one atomic add to the flow entry's
 * unfolded matrix counts, which the fold program (itr_fold) moves into
 * the PID x PID matrix later (docs/stats.md). Everything else happens
 * once per flow, with two exceptions that only concern flows in their own
 * states: tracker flows have their next few payload packets read for the
 * peers the tracker hands out (ITR_FLOW_TRACKER), so that later flows to
 * those peers are recognised by endpoint even when obfuscated (MSE); and
 * DHT flows look at each packet's first byte, because libtorrent runs uTP
 * on the DHT socket (ITR_FLOW_SHARED).
 *
 * Map layouts, enums and pin names: maps/itracker_maps.h.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "itracker_maps.h"
#include "parse.h"
#include "bt_signatures.h"
#include "tracker_peers.h"
#include "flow_key.h"

/* libbpf 1.1's helper list predates these helpers (kernel 5.18). */
static long (*const itr_xdp_load_bytes)(struct xdp_md *ctx, __u32 offset, void *buf,
                                        __u32 len) = (void *)BPF_FUNC_xdp_load_bytes;
static __u64 (*const itr_xdp_get_buff_len)(struct xdp_md *ctx) = (void *)BPF_FUNC_xdp_get_buff_len;

char LICENSE[] SEC("license") = "GPL";

/* How much of a TC packet to pull into the linear part when its headers
 * are not all there: Ethernet, two VLAN tags, IPv6 with a short extension
 * chain and a TCP header fit. */
#define ITR_TC_PULL_BYTES 128

/* Which build of the programs this is: 1 unless the object is compiled with
 * -DITR_BUILD_ID=N (tests/e2e/restart_upgrade.sh builds a second object
 * with N=2 and checks that it is the one running after the upgrade). Both
 * programs read it, so this .rodata map is bound to them and
 * `bpftool prog show` lists it; `bpftool map dump` on it tells the build. */
#ifndef ITR_BUILD_ID
#define ITR_BUILD_ID 1
#endif
const volatile __u32 itr_build_id = ITR_BUILD_ID;

/* One load of itr_build_id that the compiler cannot drop, and nothing else. */
static __always_inline void itr_bind_build_id(void)
{
	__u32 id = itr_build_id;
	asm volatile("" : : "r"(id));
}

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ITR_LPM_V4_MAX);
	__type(key, struct itr_lpm_v4_key);
	__type(value, struct itr_pid_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lpm_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ITR_LPM_V6_MAX);
	__type(key, struct itr_lpm_v6_key);
	__type(value, struct itr_pid_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lpm_v6 SEC(".maps");

/* The flow cache: IPv4 flows under a 16-byte key, IPv6 ones under the
 * 40-byte one (maps/itracker_maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ITR_FLOWS_MAX);
	__type(key, struct itr_flow_key_v4);
	__type(value, struct itr_flow_verdict);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ITR_FLOWS_MAX);
	__type(key, struct itr_flow_key);
	__type(value, struct itr_flow_verdict);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ITR_ENDPOINTS_MAX);
	__type(key, struct itr_endpoint_key);
	__type(value, struct itr_endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ITR_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, struct itr_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, ITR_MATRIX_MAX);
	__type(key, struct itr_matrix_key);
	__type(value, struct itr_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} matrix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ITR_CLASS_MAX);
	__type(key, __u32);
	__type(value, struct itr_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct itr_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

/* ITR_TRACKER_FOLLOW (maps/itracker_maps.h): payload packets of a tracker
 * flow read after the one that classified it, counted again from each
 * announce request, so a kept-alive HTTP connection or a reused UDP socket
 * is followed announce by announce. An answer is normally the next one or
 * two packets from the tracker. */

/* Per-CPU copy of the payload under inspection; internal, not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct itr_scratch);
} scratch SEC(".maps");

/* Per-CPU room for the verdict of a flow being set up, before it is
 * written to the flow cache; internal, not pinned. Off the stack: the
 * program and the global functions it calls share 512 bytes of it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct itr_flow_verdict);
} new_verdict SEC(".maps");

/* What the classifier tells its caller about a counted packet. */
struct itr_result {
	__u8 cls;
	__u8 kind;
};

/* Per-source teaching budget (ITR_TEACH_PER_SOURCE per ITR_TEACH_WINDOW_NS);
 * internal, not pinned. Keyed by address and family (port, proto zero). */
struct itr_teach_budget {
	__u64 window_start_ns;
	__u32 used;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct itr_endpoint_key);
	__type(value, struct itr_teach_budget);
} teach_budget SEC(".maps");

/* Runs every signature check that applies to the transport; s->buf holds
 * len bytes of a payload of payload_len. *uh receives the uTP header
 * fields when ITR_SIG_UTP is set. A global (non-inlined) function: the
 * verifier checks its loops once, not once per path through the parser. */
__attribute__((noinline)) int itr_scan_signatures(const struct itr_scratch *s, __u32 len,
                                                  __u32 proto, __u32 payload_len,
                                                  struct itr_utp_hdr *uh)
{
	__u32 sigs = 0;
	__u32 head = len < ITR_SCRATCH_BYTES ? len : ITR_SCRATCH_BYTES;

	if (!s || !uh || len > ITR_TRACKER_SCAN_BYTES)
		return 0;
	if (proto == IPPROTO_TCP) {
		if (itr_sig_peer_wire(s->buf, head))
			sigs |= ITR_SIG_PEER_WIRE;
		else if (itr_sig_http_tracker(s->buf, head))
			sigs |= ITR_SIG_HTTP_TRACKER;
		return sigs;
	}
	if (itr_sig_udp_connect(s->buf, head))
		sigs |= ITR_SIG_UDP_CONNECT;
	if (itr_sig_udp_announce(s->buf, head))
		sigs |= ITR_SIG_UDP_ANNOUNCE;
	if (itr_sig_dht(s->buf, len, payload_len))
		sigs |= ITR_SIG_DHT;
	sigs |= itr_sig_utp(s->buf, head, uh);
	return sigs;
}

static __always_inline struct itr_pid_info *itr_lpm_lookup(const struct itr_pkt *p,
                                                           const __u32 *addr)
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

static __always_inline __u8 itr_class_of(const struct itr_flow_verdict *v)
{
	if (v->pid_lo == ITR_PID_NONE || v->pid_hi == ITR_PID_NONE)
		return ITR_CLASS_UNKNOWN;
	if (v->pid_lo == v->pid_hi)
		return ITR_CLASS_INTRA_PID;
	if (v->asn_lo != v->asn_hi)
		return ITR_CLASS_INTER_AS;
	if (v->loc_lo == v->loc_hi && v->loc_lo != ITR_LOC_NONE)
		return ITR_CLASS_INTRA_LOC;
	return ITR_CLASS_INTRA_AS;
}

/* (Re)computes the locality half of a verdict; kind and state stay. */
static __always_inline void itr_locate(struct itr_flow_verdict *v, const struct itr_pkt *p,
                                       int src_lo, __u64 generation)
{
	struct itr_pid_info *src = itr_lpm_lookup(p, p->saddr);
	struct itr_pid_info *dst = itr_lpm_lookup(p, p->daddr);
	struct itr_pid_info *lo = src_lo ? src : dst;
	struct itr_pid_info *hi = src_lo ? dst : src;

	v->pid_lo = lo ? lo->pid : ITR_PID_NONE;
	v->asn_lo = lo ? lo->asn : 0;
	v->loc_lo = lo ? lo->loc : ITR_LOC_NONE;
	v->pid_hi = hi ? hi->pid : ITR_PID_NONE;
	v->asn_hi = hi ? hi->asn : 0;
	v->loc_hi = hi ? hi->loc : ITR_LOC_NONE;
	v->cls = itr_class_of(v);
	v->generation = generation;
}

static __always_inline void itr_endpoint_key_fill(struct itr_endpoint_key *k,
                                                  const struct itr_pkt *p, int dst_side)
{
	__builtin_memcpy(k->addr, dst_side ? p->daddr : p->saddr, 16);
	k->port = dst_side ? p->dport : p->sport;
	k->proto = p->proto;
	k->family = p->family;
}

static __always_inline int itr_endpoint_stale(const struct itr_endpoint_info *info, __u64 now)
{
	__u64 ttl =
	    info->kind == ITR_KIND_ENDPOINT ? ITR_ENDPOINT_TTL_LISTED_NS : ITR_ENDPOINT_TTL_SEEN_NS;
	return now - info->last_seen_ns > ttl;
}

/* The entry for one end of the packet, if it is fresh; a stale one is
 * deleted here (aging on lookup: the LRU alone would keep an entry as
 * long as lookups keep touching it). */
static __always_inline struct itr_endpoint_info *itr_endpoint_find(const struct itr_pkt *p,
                                                                   int dst_side)
{
	struct itr_endpoint_key k __attribute__((aligned(8)));
	itr_endpoint_key_fill(&k, p, dst_side);
	struct itr_endpoint_info *info = bpf_map_lookup_elem(&endpoints, &k);
	if (info && itr_endpoint_stale(info, bpf_ktime_get_ns())) {
		bpf_map_delete_elem(&endpoints, &k);
		return NULL;
	}
	return info;
}

/* Takes up to `want` endpoint-cache writes from the flow's budget
 * (ITR_TEACH_PER_FLOW) and from the budget of the source address that
 * teaches them (ITR_TEACH_PER_SOURCE per window); returns how many were
 * granted. */
static __always_inline __u32 itr_budget_take(struct itr_flow_verdict *v, const __u32 *src,
                                             __u8 family, __u32 want, __u64 now)
{
	struct itr_endpoint_key k __attribute__((aligned(8)));
	__u32 left = v->taught < ITR_TEACH_PER_FLOW ? ITR_TEACH_PER_FLOW - v->taught : 0;

	if (want > left)
		want = left;
	if (!want)
		return 0;
	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memcpy(k.addr, src, 16);
	k.family = family;
	struct itr_teach_budget *b = bpf_map_lookup_elem(&teach_budget, &k);
	if (!b) {
		struct itr_teach_budget fresh = {.window_start_ns = now};
		bpf_map_update_elem(&teach_budget, &k, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&teach_budget, &k);
		if (!b)
			return 0;
	}
	if (now - b->window_start_ns > ITR_TEACH_WINDOW_NS) {
		b->window_start_ns = now;
		b->used = 0;
	}
	left = b->used < ITR_TEACH_PER_SOURCE ? ITR_TEACH_PER_SOURCE - b->used : 0;
	if (want > left)
		want = left;
	b->used += want;
	v->taught += want;
	return want;
}

/* Learns one end of the packet (dst_side) as seen speaking `kind`, within
 * the flow's and the packet source's budgets. */
static __always_inline void itr_endpoint_learn(const struct itr_pkt *p, struct itr_flow_verdict *v,
                                               int dst_side, __u8 kind)
{
	struct itr_endpoint_key k __attribute__((aligned(8)));
	__u64 now = bpf_ktime_get_ns();
	struct itr_endpoint_info info = {.last_seen_ns = now, .kind = kind};

	if (!itr_budget_take(v, p->saddr, p->family, 1, now))
		return;
	itr_endpoint_key_fill(&k, p, dst_side);
	bpf_map_update_elem(&endpoints, &k, &info, BPF_ANY);
}

/* Writes an endpoint a tracker exchange taught (a listed peer, a client's
 * announced port) for TCP and for UDP: a client's listen port takes
 * peer-wire connections and uTP alike. What an endpoint was itself seen
 * doing (a UDP tracker, say) outranks being listed, unless that is stale.
 * The caller has taken two budget units. */
static __always_inline void itr_endpoint_teach(struct itr_endpoint_key *k, __u64 now)
{
	struct itr_endpoint_info info = {.last_seen_ns = now, .kind = ITR_KIND_ENDPOINT};

	if (!k->port)
		return;
	k->proto = IPPROTO_TCP;
	struct itr_endpoint_info *old = bpf_map_lookup_elem(&endpoints, k);
	if (!old || old->kind == ITR_KIND_ENDPOINT || itr_endpoint_stale(old, now))
		bpf_map_update_elem(&endpoints, k, &info, BPF_ANY);
	k->proto = IPPROTO_UDP;
	old = bpf_map_lookup_elem(&endpoints, k);
	if (!old || old->kind == ITR_KIND_ENDPOINT || itr_endpoint_stale(old, now))
		bpf_map_update_elem(&endpoints, k, &info, BPF_ANY);
}

/* A compact peer list in the scratch buffer, one bpf_loop step per entry. */
struct itr_peer_teach {
	const __u8 *buf;
	__u64 now;
	__u32 off;
};

static long itr_teach_peer4_step(__u64 index, void *ctx)
{
	struct itr_peer_teach *t = ctx;
	__u64 pos = t->off + index * ITR_PEER4_BYTES;
	struct itr_endpoint_key k __attribute__((aligned(8)));

	asm volatile("" : "+r"(pos)); /* test and index one register */
	if (pos > ITR_TRACKER_SCAN_BYTES - ITR_PEER4_BYTES)
		return 1;
	/* Field by field: an initialiser would become a .rodata template,
	 * which the loader does not expect. */
	__builtin_memset(&k, 0, sizeof(k));
	k.family = 4;
	__builtin_memcpy(k.addr, t->buf + pos, 4);
	__builtin_memcpy(&k.port, t->buf + pos + 4, 2);
	itr_endpoint_teach(&k, t->now);
	return 0;
}

static long itr_teach_peer6_step(__u64 index, void *ctx)
{
	struct itr_peer_teach *t = ctx;
	__u64 pos = t->off + index * ITR_PEER6_BYTES;
	struct itr_endpoint_key k __attribute__((aligned(8)));

	asm volatile("" : "+r"(pos));
	if (pos > ITR_TRACKER_SCAN_BYTES - ITR_PEER6_BYTES)
		return 1;
	__builtin_memset(&k, 0, sizeof(k));
	k.family = 6;
	__builtin_memcpy(k.addr, t->buf + pos, 16);
	__builtin_memcpy(&k.port, t->buf + pos + 16, 2);
	itr_endpoint_teach(&k, t->now);
	return 0;
}

/* Teaches a peer list within the budgets: two cache writes per peer. */
static __always_inline void itr_teach_list(struct itr_flow_verdict *v, const struct itr_pkt *p,
                                           struct itr_peer_teach *t,
                                           const struct itr_peer_list *list, int v6)
{
	__u32 peers = itr_budget_take(v, p->saddr, p->family, list->count * 2, t->now) / 2;

	t->off = list->off;
	if (v6)
		bpf_loop(peers, itr_teach_peer6_step, t, 0);
	else
		bpf_loop(peers, itr_teach_peer4_step, t, 0);
}

/* A request from the client on a tracker flow (s->buf[0..len)): remembers
 * what its answer must match (TCP: the request's end in sequence space;
 * BEP 15: the transaction id) and the port an announce names. Nothing is
 * learned from a request alone: its source may be spoofed and nobody may
 * be listening. Returns 1 if the packet was a request. A global function:
 * the verifier checks its loops once. */
__attribute__((noinline)) int itr_tracker_request(const struct itr_scratch *s, __u32 len,
                                                  const struct itr_pkt *p,
                                                  struct itr_flow_verdict *v)
{
	__u16 port = 0;

	if (!s || !p || !v || len > ITR_TRACKER_SCAN_BYTES)
		return 0;
	if (v->kind == ITR_KIND_HTTP_TRACKER) {
		struct itr_http_scan st;
		__u32 head = len < ITR_SCRATCH_BYTES ? len : ITR_SCRATCH_BYTES;
		if (!itr_http_scan_request(s->buf, head, &st) || !st.path_ok || !st.hash_ok)
			return 0;
		port = bpf_htons(st.port);
		v->token = p->tcp_seq + p->payload_len;
	} else {
		if (itr_sig_udp_announce(s->buf, len))
			port = itr_udp_announce_port(s->buf, len);
		else if (!itr_sig_udp_connect(s->buf, len))
			return 0;
		__builtin_memcpy(&v->token, s->buf + 12, 4);
	}
	v->announced_port = port;
	v->seen = (v->seen | ITR_SEEN_REQUEST) & ~ITR_SEEN_ANSWER;
	return 1;
}

/* A packet from the tracker on a tracker flow: if it answers the pending
 * request (HTTP: it acknowledges the request's bytes and, first, says
 * "HTTP/1.x 200"; BEP 15: same transaction id, action connect or
 * announce), the exchange is confirmed and teaches the tracker itself, the
 * port the client announced, and the peers listed, within the budgets.
 * Anything else teaches nothing. The scans are bpf_loop steps bounded by
 * the bytes held (at most ITR_TRACKER_SCAN_BYTES), and run only on a flow
 * with a request pending, for at most ITR_TRACKER_FOLLOW packets after it. */
__attribute__((noinline)) int itr_tracker_answer(const struct itr_scratch *s, __u32 len,
                                                 const struct itr_pkt *p,
                                                 struct itr_flow_verdict *v)
{
	struct itr_peer_teach t = {.off = 0};
	struct itr_endpoint_key k __attribute__((aligned(8))) = {};
	int first = 0;

	if (!s || !p || !v || len > ITR_TRACKER_SCAN_BYTES)
		return 0;
	if (!(v->seen & ITR_SEEN_REQUEST))
		return 0;
	t.buf = s->buf;
	t.now = bpf_ktime_get_ns();
	if (v->kind == ITR_KIND_HTTP_TRACKER) {
		if (!(p->tcp_flags & ITR_TCP_ACK) || p->tcp_ack - v->token > 0xffff)
			return 0;
		if (!(v->seen & ITR_SEEN_ANSWER)) {
			if (!itr_http_answer_ok(s->buf, len))
				return 0;
			first = 1;
		}
	} else {
		__u32 tid;
		if (len < 8)
			return 0;
		__builtin_memcpy(&tid, s->buf + 4, 4);
		if (tid != v->token || s->buf[0] | s->buf[1] | s->buf[2] || s->buf[3] > 1)
			return 0;
		first = 1;
		v->seen &= ~ITR_SEEN_REQUEST; /* one datagram answers */
	}
	v->seen |= ITR_SEEN_ANSWER;
	if (first) {
		/* The tracker (this packet's source) and the client's port. */
		itr_endpoint_learn(p, v, 0, v->kind);
		if (v->announced_port && itr_budget_take(v, p->saddr, p->family, 2, t.now) == 2) {
			__builtin_memcpy(k.addr, p->daddr, 16);
			k.family = p->family;
			k.port = v->announced_port;
			itr_endpoint_teach(&k, t.now);
		}
		v->announced_port = 0;
	}
	if (v->kind == ITR_KIND_HTTP_TRACKER) {
		struct itr_peers_scan st;
		itr_http_peer_lists(s->buf, len, &st);
		itr_teach_list(v, p, &t, &st.v4, 0);
		itr_teach_list(v, p, &t, &st.v6, 1);
		return 1;
	}
	struct itr_peer_list list;
	if (s->buf[3] == 1 &&
	    itr_udp_peer_list(s->buf, len, p->payload_len,
	                      p->family == 4 ? ITR_PEER4_BYTES : ITR_PEER6_BYTES, &list))
		itr_teach_list(v, p, &t, &list, p->family == 6);
	return 1;
}

static __always_inline void itr_settle(struct itr_flow_verdict *v, __u8 kind)
{
	v->kind = kind;
	v->state = ITR_FLOW_FINAL;
}

/* A tracker flow classified by this packet, a request to the destination:
 * follow its next packets for the answer. */
static __always_inline void itr_settle_tracker(struct itr_flow_verdict *v, __u8 kind, int src_lo)
{
	v->kind = kind;
	v->state = ITR_FLOW_TRACKER;
	v->follow_left = ITR_TRACKER_FOLLOW;
	v->tracker_end = src_lo ? ITR_END_HI : ITR_END_LO;
}

/* Copies up to `cap` (a power of two) bytes of the payload into the scratch
 * buffer; returns how many, 0 on failure. */
static __always_inline __u32 itr_load_payload(void *ctx, const int is_xdp, const struct itr_pkt *p,
                                              struct itr_scratch *s, const __u32 cap)
{
	__u32 len = p->payload_len;
	long err;

	if (len > cap)
		len = cap;
	if (len < 1)
		return 0;
	/* Show the verifier 1 <= len <= cap; the barrier keeps clang from
	 * dropping the (for it redundant) mask. */
	len -= 1;
	asm volatile("" : "+r"(len));
	len = (len & (cap - 1)) + 1;
	if (is_xdp)
		err = itr_xdp_load_bytes(ctx, p->payload_off, s->buf, len);
	else
		err = bpf_skb_load_bytes(ctx, p->payload_off, s->buf, len);
	return err ? 0 : len;
}

/* Whether a packet that passed the uTP header check completes a uTP
 * connection with the flow's probe (the first passing packet, kept in
 * v->token): from the other end, either the answer to a SYN (ST_STATE
 * with the SYN's connection id, acknowledging the SYN's seq_nr, BEP 29
 * connection setup) or, in a connection caught after its start, a packet
 * whose connection id is the probe's plus or minus one (the two
 * directions' ids differ by one) and whose ack_nr lies within 256 of the
 * probe's seq_nr. Look-alikes that pass one header (a 20-byte DNS query,
 * a STUN answer, a WireGuard initiation) do not pair up like this: the
 * chance that random fields do is about 2^-23 per packet. Otherwise the
 * packet becomes the probe if there is none yet (or it is a SYN). */
static __always_inline int itr_utp_pair(struct itr_flow_verdict *v, const struct itr_utp_hdr *h,
                                        __u32 sigs, __u8 src_end)
{
	if ((v->seen & ITR_SEEN_UTP_PROBE) && v->probe_end != src_end) {
		__u16 conn = (__u16)(v->token >> 16), seq = (__u16)v->token;
		if (v->seen & ITR_SEEN_UTP_SYN)
			return h->type == ITR_UTP_STATE && h->conn_id == conn && h->ack_nr == seq;
		__u16 d = (__u16)(h->conn_id - conn);
		__s16 lag = (__s16)(h->ack_nr - seq);
		return (d == 1 || d == 0xffff) && lag > -256 && lag < 256;
	}
	if (!(v->seen & ITR_SEEN_UTP_PROBE) || (sigs & ITR_SIG_UTP_SYN)) {
		v->token = (__u32)h->conn_id << 16 | h->seq_nr;
		v->probe_end = src_end;
		v->seen |= ITR_SEEN_UTP_PROBE;
		if (sigs & ITR_SIG_UTP_SYN)
			v->seen |= ITR_SEEN_UTP_SYN;
	}
	return 0;
}

/* Both ends of a uTP or DHT flow, learned once both have spoken it. */
static __always_inline void itr_learn_both(const struct itr_pkt *p, struct itr_flow_verdict *v,
                                           __u8 kind)
{
	if (v->seen & ITR_SEEN_LEARNED)
		return;
	v->seen |= ITR_SEEN_LEARNED;
	itr_endpoint_learn(p, v, 0, kind);
	itr_endpoint_learn(p, v, 1, kind);
}

/* One payload-bearing packet of a flow still being inspected. */
static __always_inline void itr_inspect(void *ctx, const int is_xdp, const struct itr_pkt *p,
                                        int src_lo, struct itr_flow_verdict *v)
{
	__u32 zero = 0;
	struct itr_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct itr_endpoint_info *src_ep = itr_endpoint_find(p, 0);
	struct itr_endpoint_info *dst_ep = itr_endpoint_find(p, 1);
	/* Not "src_ep || dst_ep": clang would OR the two pointers, which the
	 * verifier rejects. */
	__u32 src_known = src_ep ? 1 : 0;
	asm volatile("" : "+r"(src_known));
	__u32 dst_known = dst_ep ? 1 : 0;
	asm volatile("" : "+r"(dst_known));
	int endpoint_known = src_known | dst_known;
	__u8 hello = src_lo ? ITR_SEEN_HELLO_LO : ITR_SEEN_HELLO_HI;
	struct itr_utp_hdr uh = {};
	__u32 len;
	__u32 sigs = 0;

	if (endpoint_known && v->kind == ITR_KIND_NONE)
		v->kind = ITR_KIND_ENDPOINT;
	v->inspected++;
	if (!s)
		return;
	/* UDP: a whole KRPC message (up to ITR_TRACKER_SCAN_BYTES) is walked. */
	len =
	    itr_load_payload(ctx, is_xdp, p, s,
	                     p->proto == IPPROTO_UDP ? ITR_TRACKER_SCAN_BYTES : ITR_SCRATCH_BYTES);
	if (len)
		sigs = itr_scan_signatures(s, len, p->proto, p->payload_len, &uh);

	if (v->kind == ITR_KIND_PEER_WIRE) {
		/* The answer to a handshake: the answering end is the listener,
		 * and a two-way handshake proves it. */
		if ((sigs & ITR_SIG_PEER_WIRE) && !(v->seen & hello)) {
			v->seen |= hello;
			itr_endpoint_learn(p, v, 0, ITR_KIND_PEER_WIRE);
			v->state = ITR_FLOW_FINAL;
		}
	} else if (sigs & ITR_SIG_PEER_WIRE) {
		v->kind = ITR_KIND_PEER_WIRE;
		v->seen |= hello;
	} else if (sigs & ITR_SIG_HTTP_TRACKER) {
		itr_settle_tracker(v, ITR_KIND_HTTP_TRACKER, src_lo);
		itr_tracker_request(s, len, p, v);
	} else if ((sigs & ITR_SIG_UDP_CONNECT) || ((sigs & ITR_SIG_UDP_ANNOUNCE) && dst_ep &&
	                                            dst_ep->kind == ITR_KIND_UDP_TRACKER)) {
		itr_settle_tracker(v, ITR_KIND_UDP_TRACKER, src_lo);
		itr_tracker_request(s, len, p, v);
	} else if (sigs & ITR_SIG_DHT) {
		itr_settle(v, ITR_KIND_DHT);
		v->state = ITR_FLOW_SHARED;
		v->seen |= hello;
	} else if (sigs & ITR_SIG_UTP) {
		if (itr_utp_pair(v, &uh, sigs, src_lo ? ITR_END_LO : ITR_END_HI)) {
			itr_settle(v, ITR_KIND_UTP);
			itr_learn_both(p, v, ITR_KIND_UTP);
		}
	}
	if (v->state == ITR_FLOW_PENDING && v->inspected >= ITR_MAX_INSPECT)
		v->state = ITR_FLOW_FINAL;
}

/* One payload packet of a tracker flow being followed (ITR_FLOW_TRACKER). */
static __always_inline void itr_follow_tracker(void *ctx, const int is_xdp, const struct itr_pkt *p,
                                               int src_lo, struct itr_flow_verdict *v)
{
	__u32 zero = 0;
	struct itr_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	__u32 from_tracker = v->tracker_end == (src_lo ? ITR_END_LO : ITR_END_HI);
	__u32 len;

	if (!s)
		return;
	len = itr_load_payload(ctx, is_xdp, p, s, ITR_TRACKER_SCAN_BYTES);
	if (len && !from_tracker && itr_tracker_request(s, len, p, v)) {
		v->follow_left = ITR_TRACKER_FOLLOW;
	} else {
		if (len && from_tracker)
			itr_tracker_answer(s, len, p, v);
		if (v->follow_left > 0)
			v->follow_left--;
	}
	if (v->follow_left == 0)
		v->state = ITR_FLOW_FINAL;
}

/* Packets of a DHT flow checked for KRPC (both ends confirming) and for a
 * uTP connection before the flow stops looking. */
#define ITR_SHARED_CHECKS 32

/* Kind of one packet of a DHT flow (ITR_FLOW_SHARED).
 *
 * libtorrent sends DHT and uTP from one UDP socket, so between two
 * DHT-enabled peers a transfer shares the DHT flow's 5-tuple. Upgrading
 * the whole flow to uTP would count the DHT messages that keep flowing on
 * it as uTP (and every packet before the upgrade as DHT); counting each
 * packet by what it is costs one byte read per packet and only on DHT
 * flows: a KRPC message is a bencoded dictionary and starts with 'd',
 * which no uTP header can (version 1 in the low nibble). Until uTP is
 * proven on the flow (a uTP connection's two directions pair up, see
 * itr_utp_pair), non-'d' packets go through the uTP checks; once proven,
 * the flow's kind becomes UTP and non-'d' packets are uTP. The flow's ends
 * are learned as DHT nodes once both have sent a whole KRPC message.
 * Both checks stop after ITR_SHARED_CHECKS packets. (A flow that starts
 * as uTP and later carries DHT keeps counting it as uTP: those are a few
 * small packets, not worth a byte read on every uTP packet.) */
static __always_inline __u8 itr_shared_packet_kind(void *ctx, const int is_xdp,
                                                   const struct itr_pkt *p, int src_lo,
                                                   struct itr_flow_verdict *v)
{
	__u8 first = 0;
	long err;

	if (is_xdp)
		err = itr_xdp_load_bytes(ctx, p->payload_off, &first, 1);
	else
		err = bpf_skb_load_bytes(ctx, p->payload_off, &first, 1);
	if (err)
		return v->kind;
	int learned = (v->seen & ITR_SEEN_LEARNED) != 0;
	if ((first == 'd' && learned) || (first != 'd' && v->kind == ITR_KIND_UTP))
		return first == 'd' ? ITR_KIND_DHT : ITR_KIND_UTP;
	if (v->inspected >= ITR_SHARED_CHECKS)
		return first == 'd' ? ITR_KIND_DHT : v->kind;
	v->inspected++;

	__u32 zero = 0;
	struct itr_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return v->kind;
	struct itr_utp_hdr uh = {};
	__u32 len = itr_load_payload(ctx, is_xdp, p, s,
	                             first == 'd' ? ITR_TRACKER_SCAN_BYTES : ITR_SCRATCH_BYTES);
	__u32 sigs = len ? itr_scan_signatures(s, len, IPPROTO_UDP, p->payload_len, &uh) : 0;
	if (first == 'd') {
		if (sigs & ITR_SIG_DHT) {
			v->seen |= src_lo ? ITR_SEEN_HELLO_LO : ITR_SEEN_HELLO_HI;
			if ((v->seen & ITR_SEEN_HELLO_LO) && (v->seen & ITR_SEEN_HELLO_HI))
				itr_learn_both(p, v, ITR_KIND_DHT);
		}
		return ITR_KIND_DHT;
	}
	if (!(sigs & ITR_SIG_UTP) || !itr_utp_pair(v, &uh, sigs, src_lo ? ITR_END_LO : ITR_END_HI))
		return v->kind;
	v->kind = ITR_KIND_UTP;
	return ITR_KIND_UTP;
}

/* A payload packet of a flow that is not FINAL; returns the kind to count
 * the packet under. */
static __always_inline __u8 itr_follow(void *ctx, const int is_xdp, const struct itr_pkt *p,
                                       int src_lo, struct itr_flow_verdict *v)
{
	if (v->state == ITR_FLOW_PENDING)
		itr_inspect(ctx, is_xdp, p, src_lo, v);
	else if (v->state == ITR_FLOW_TRACKER)
		itr_follow_tracker(ctx, is_xdp, p, src_lo, v);
	else if (v->state == ITR_FLOW_SHARED)
		return itr_shared_packet_kind(ctx, is_xdp, p, src_lo, v);
	return v->kind;
}

static __always_inline void itr_count(__u32 dir, __u8 cls, __u8 kind, __u32 packets, __u32 bytes)
{
	__u32 idx = itr_counter_index(dir, cls, kind);
	struct itr_counter *c = bpf_map_lookup_elem(&counters, &idx);
	if (c) {
		c->packets += packets;
		c->bytes += bytes;
	}
}

/* Adds to one matrix cell. Atomic adds, although the cell is this CPU's:
 * the fold program runs in process context, where a packet's program may
 * interrupt it on the same CPU. */
static __always_inline void itr_matrix_add(__u32 src_pid, __u32 dst_pid, __u64 packets, __u64 bytes)
{
	struct itr_matrix_key mk = {.src_pid = src_pid, .dst_pid = dst_pid};
	struct itr_counter *m = bpf_map_lookup_elem(&matrix, &mk);
	if (!m) {
		struct itr_counter first = {.packets = packets, .bytes = bytes};
		if (bpf_map_update_elem(&matrix, &mk, &first, BPF_NOEXIST) == 0)
			return;
		m = bpf_map_lookup_elem(&matrix, &mk); /* another CPU created it meanwhile */
		if (!m)
			return;
	}
	__sync_fetch_and_add(&m->packets, packets);
	__sync_fetch_and_add(&m->bytes, bytes);
}

/* Moves a flow's unfolded counts into the matrix under the PIDs the flow
 * has now. The exchanges take each count whole: a packet's add that comes
 * in between stays for the next fold, and two folders (the fold program
 * and a packet that re-locates the flow) never take the same count. */
static __always_inline void itr_fold_flow(struct itr_flow_verdict *v)
{
	/* Read before the exchange: most entries hold nothing to fold, and
	 * an exchange would write (dirty) every one of them each fold. */
	__u64 lo_hi = v->unfolded[ITR_FLOW_LO_TO_HI];
	__u64 hi_lo = v->unfolded[ITR_FLOW_HI_TO_LO];
	if (lo_hi)
		lo_hi = __sync_lock_test_and_set(&v->unfolded[ITR_FLOW_LO_TO_HI], 0);
	if (hi_lo)
		hi_lo = __sync_lock_test_and_set(&v->unfolded[ITR_FLOW_HI_TO_LO], 0);

	if (lo_hi)
		itr_matrix_add(v->pid_lo, v->pid_hi, itr_unfolded_packets(lo_hi),
		               itr_unfolded_bytes(lo_hi));
	if (hi_lo)
		itr_matrix_add(v->pid_hi, v->pid_lo, itr_unfolded_packets(hi_lo),
		               itr_unfolded_bytes(hi_lo));
}

/* Fills *res for a parsed packet (p) and returns 0.
 * frame_len: the whole frame (all fragments of a multi-buffer XDP frame, a
 * GSO super-packet); segs: the packets on the wire it stands for (a GSO
 * super-packet's segments, each with its own copy of the headers). */
static __always_inline int itr_classify(void *ctx, const int is_xdp, __u32 frame_len, __u32 segs,
                                        __u32 dir, const struct itr_pkt *p, struct itr_result *res)
{
	/* One of the two, sharing the stack. */
	union {
		struct itr_flow_key v6;
		struct itr_flow_key_v4 v4;
	} key __attribute__((aligned(8)));
	struct itr_flow_verdict *v;
	__u32 zero = 0;
	int src_lo;

	if (p->family == 4) {
		src_lo = itr_src_is_lo_v4(p);
		itr_flow_key_v4_fill(&key.v4, p, src_lo);
		v = bpf_map_lookup_elem(&flows_v4, &key.v4);
		/* Keeps clang from merging the two lookups into one call on a
		 * map chosen at run time: the verifier inlines a lookup only
		 * where one map reaches the call. */
		asm volatile("" : "+r"(v));
	} else {
		src_lo = itr_src_is_lo(p);
		itr_flow_key_fill(&key.v6, p, src_lo);
		v = bpf_map_lookup_elem(&flows, &key.v6);
	}

	struct itr_config *cfg = bpf_map_lookup_elem(&config, &zero);
	__u64 generation = cfg ? cfg->generation : 0;

	__u8 kind;
	int fresh = !v;
	if (!v) {
		v = bpf_map_lookup_elem(&new_verdict, &zero);
		if (!v)
			return -1;
		__builtin_memset(v, 0, sizeof(*v));
		itr_locate(v, p, src_lo, generation);
		if (itr_endpoint_find(p, 0) || itr_endpoint_find(p, 1))
			v->kind = ITR_KIND_ENDPOINT;
		if (p->payload_len > 0)
			itr_inspect(ctx, is_xdp, p, src_lo, v);
		if (p->family == 4) {
			long err = bpf_map_update_elem(&flows_v4, &key.v4, v, BPF_ANY);
			asm volatile("" : "+r"(err)); /* one map per call, as above */
		} else {
			bpf_map_update_elem(&flows, &key.v6, v, BPF_ANY);
		}
		kind = v->kind;
	} else {
		if (v->generation != generation) {
			/* What the flow counted so far belongs to the PIDs of the
			 * map it was counted under. */
			itr_fold_flow(v);
			itr_locate(v, p, src_lo, generation);
		}
		kind = v->kind;
		if (v->state != ITR_FLOW_FINAL && p->payload_len > 0)
			kind = itr_follow(ctx, is_xdp, p, src_lo, v);
	}

	__u8 cls = v->cls < ITR_CLASS_MAX ? v->cls : ITR_CLASS_UNKNOWN;
	kind = kind < ITR_KIND_MAX ? kind : ITR_KIND_NONE;
	/* Wire bytes: every segment after the first repeats the headers. */
	__u32 bytes = frame_len;
	if (segs > 1 && segs <= 0xffff && p->payload_off <= 0x7fff)
		bytes += (segs - 1) * p->payload_off;
	else
		segs = 1;
	itr_count(dir, cls, kind, segs, bytes);
	if (kind != ITR_KIND_NONE) {
		if (fresh) {
			/* v is the per-CPU copy already written to the cache: a
			 * flow's first packet goes to the matrix directly. */
			itr_matrix_add(src_lo ? v->pid_lo : v->pid_hi,
			               src_lo ? v->pid_hi : v->pid_lo, segs, bytes);
		} else {
			__u64 *u = &v->unfolded[src_lo ? ITR_FLOW_LO_TO_HI : ITR_FLOW_HI_TO_LO];
			__sync_fetch_and_add(u, itr_unfolded_pack(segs, bytes));
			if (*u & ITR_UNFOLDED_FULL)
				itr_fold_flow(v);
		}
	}
	res->cls = cls;
	res->kind = kind;
	return 0;
}

/* xdp.frags: the program takes multi-buffer frames (jumbo MTU, LRO/GRO
 * on drivers that build them); headers sit in the first buffer, payload
 * reads go through bpf_xdp_load_bytes, and the frame is counted whole. */
SEC("xdp.frags")
int itr_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct itr_pkt p;
	struct itr_result res;

	__u32 frame_len = (__u32)itr_xdp_get_buff_len(ctx);

	itr_bind_build_id();
	if (itr_parse(data, data_end, frame_len, &p) == 0)
		itr_classify(ctx, 1, frame_len, 1, ITR_DIR_INGRESS, &p, &res);
	return XDP_PASS;
}

/* Classification from TC, either direction, with a GSO/GRO super-packet
 * counted as the gso_segs packets it stands for (it leaves, or arrived, as
 * that many). Headers are parsed where they lie; only a packet whose
 * headers reach past the linear part is pulled. Pulling every packet cost
 * a TCP stream on a veth about a tenth of its throughput: a received TCP
 * segment's linear part ends with its headers, and the pull of a cloned
 * skb copies its head. Returns 0 and fills *res for a counted packet, -1
 * for one left alone. */
static __always_inline int itr_tc_classify(struct __sk_buff *skb, __u8 dir, struct itr_pkt *p,
                                           struct itr_result *res)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 linear = skb->data_end - skb->data;

	itr_bind_build_id();
	if (itr_parse(data, data_end, skb->len, p) < 0) {
		if (linear >= ITR_TC_PULL_BYTES || skb->len <= linear)
			return -1;
		bpf_skb_pull_data(skb, skb->len < ITR_TC_PULL_BYTES ? skb->len : ITR_TC_PULL_BYTES);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		if (itr_parse(data, data_end, skb->len, p) < 0)
			return -1;
	}
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	return itr_classify(skb, 0, skb->len, segs, dir, p, res);
}

/* The same ingress classification from TC (cls_bpf pushes the MAC header
 * back for the program, so data starts at the Ethernet header as in XDP).
 * The loader picks it over XDP where XDP costs more than it saves: on a
 * virtual device native XDP makes the stack lose GRO aggregation (a veth
 * carried a fifth of its TCP throughput with an empty native XDP program),
 * while a TC program runs after GRO on whole super-packets. */
SEC("tc")
int itr_tc_ingress(struct __sk_buff *skb)
{
	struct itr_pkt p;
	struct itr_result res;

	itr_tc_classify(skb, ITR_DIR_INGRESS, &p, &res);
	return TC_ACT_OK;
}

/* Rewrites the DSCP bits of the IP header and keeps ECN. */
static __always_inline void itr_set_dscp(struct __sk_buff *skb, const struct itr_pkt *p, __u8 dscp)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 off = p->l3_off;

	if (off > 64)
		return;
	if (p->family == 4) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > data_end)
			return;
		__u8 old_tos = ip->tos;
		__u8 new_tos = (__u8)(dscp << 2) | (old_tos & 3);
		if (new_tos == old_tos)
			return;
		/* The checksum covers 16-bit words: (version/IHL, TOS). */
		__u16 first = *(__u16 *)ip;
		__u16 old_word = first;
		((__u8 *)&first)[1] = new_tos;
		bpf_l3_csum_replace(skb, off + offsetof(struct iphdr, check), old_word, first, 2);
		bpf_skb_store_bytes(skb, off + offsetof(struct iphdr, tos), &new_tos, 1, 0);
	} else {
		__u8 *h = data + off;
		if ((void *)(h + 2) > data_end)
			return;
		/* Traffic class straddles bytes 0 and 1: vvvv TTTT | TTTT ffff. */
		__u8 tc = (__u8)(h[0] << 4 | h[1] >> 4);
		__u8 new_tc = (__u8)(dscp << 2) | (tc & 3);
		__u8 bytes[2] = {(__u8)((h[0] & 0xf0) | (new_tc >> 4)),
		                 (__u8)((new_tc << 4) | (h[1] & 0x0f))};
		bpf_skb_store_bytes(skb, off, bytes, 2, 0);
	}
}

SEC("tc")
int itr_tc_egress(struct __sk_buff *skb)
{
	struct itr_pkt p;
	struct itr_result res;

	if (itr_tc_classify(skb, ITR_DIR_EGRESS, &p, &res) < 0)
		return TC_ACT_OK;
	if (res.kind == ITR_KIND_NONE)
		return TC_ACT_OK;

	__u32 cls = res.cls;
	struct itr_policy *pol = bpf_map_lookup_elem(&policy, &cls);
	if (!pol || !pol->flags)
		return TC_ACT_OK;
	/* A flow known only by an endpoint match carries no signature of its
	 * own: policy touches it only where the operator opted in. */
	if (res.kind == ITR_KIND_ENDPOINT && !(pol->flags & ITR_POLICY_ENDPOINT))
		return TC_ACT_OK;
	if (pol->flags & ITR_POLICY_DROP)
		return TC_ACT_SHOT;
	if (pol->flags & ITR_POLICY_SET_PRIORITY)
		skb->priority = pol->priority;
	if (pol->flags & ITR_POLICY_SET_MARK)
		skb->mark = pol->mark;
	if (pol->flags & ITR_POLICY_SET_DSCP)
		itr_set_dscp(skb, &p, pol->dscp & 0x3f);
	return TC_ACT_OK;
}

struct bpf_map;

static long itr_fold_v4(struct bpf_map *map, const struct itr_flow_key_v4 *key,
                        struct itr_flow_verdict *v, void *ctx)
{
	(void)map, (void)key, (void)ctx;
	itr_fold_flow(v);
	return 0;
}

static long itr_fold_v6(struct bpf_map *map, const struct itr_flow_key *key,
                        struct itr_flow_verdict *v, void *ctx)
{
	(void)map, (void)key, (void)ctx;
	itr_fold_flow(v);
	return 0;
}

/* Folds every cached flow's unfolded counts into the matrix. Never
 * attached: user space runs it (BPF_PROG_TEST_RUN) every ITR_FOLD_PERIOD_MS
 * and before it reads the matrix for a price sample, so the matrix stays
 * within one period of the packets, whether or not a flow sends again. */
SEC("syscall")
int itr_fold(void *ctx)
{
	(void)ctx;
	bpf_for_each_map_elem(&flows_v4, itr_fold_v4, NULL, 0);
	bpf_for_each_map_elem(&flows, itr_fold_v6, NULL, 0);
	return 0;
}
