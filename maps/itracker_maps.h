/* itracker_maps.h - the contract between the kernel programs and userspace.
 *
 * Every BPF map's key and value layout, the locality classes, the BitTorrent
 * kinds, the policy record and the pin names live here and nowhere else.
 * bpf/locality.bpf.c and everything under user/ and tools/ include this file,
 * so a layout change is one edit and both sides see it at compile time.
 *
 * Rules: fixed-width types only, explicit padding, no pointers; all structs
 * are prefixed itr_ so they never clash with kernel or libc names.
 * Addresses are stored in network byte order (big-endian byte arrays).
 */
#ifndef ITRACKER_MAPS_H
#define ITRACKER_MAPS_H

#include <linux/types.h>

/* Bump when any struct below changes layout: userspace refuses to adopt
 * pinned maps whose config.abi_version differs (see user/loader.c), except
 * from ITR_ABI_VERSION_UPGRADABLE on, whose maps differ from this ABI's
 * only in the flow caches: the loader replaces those (they are caches) and
 * keeps the rest.
 * 2 -> 3: itr_flow_verdict gained the unfolded matrix counts (32 bytes);
 * 3 -> 4: packed into 16 (one atomic add a packet, a 64-byte verdict). */
#define ITR_ABI_VERSION            4
#define ITR_ABI_VERSION_UPGRADABLE 2

/* ---- locality classes ------------------------------------------------ */
enum itr_class {
	ITR_CLASS_INTRA_PID = 0, /* both ends in the same PID */
	ITR_CLASS_INTRA_LOC = 1, /* different PIDs, same AS and same LOC */
	ITR_CLASS_INTRA_AS = 2,  /* same AS, different LOC */
	ITR_CLASS_INTER_AS = 3,  /* different ASes */
	ITR_CLASS_UNKNOWN = 4,   /* at least one end matched no prefix */
	ITR_CLASS_MAX = 5,
};

/* ---- BitTorrent kinds ------------------------------------------------ */
enum itr_kind {
	ITR_KIND_NONE = 0,         /* not (or not yet) recognised as BitTorrent */
	ITR_KIND_PEER_WIRE = 1,    /* TCP handshake 0x13 "BitTorrent protocol" */
	ITR_KIND_UTP = 2,          /* BEP 29 micro transport protocol */
	ITR_KIND_DHT = 3,          /* BEP 5 KRPC over UDP */
	ITR_KIND_UDP_TRACKER = 4,  /* BEP 15 */
	ITR_KIND_HTTP_TRACKER = 5, /* GET /announce? or /scrape? with info_hash= */
	ITR_KIND_ENDPOINT = 6,     /* no signature, but an endpoint known to speak BT */
	ITR_KIND_MAX = 7,
};

enum itr_dir {
	ITR_DIR_INGRESS = 0, /* XDP */
	ITR_DIR_EGRESS = 1,  /* TC egress */
	ITR_DIR_MAX = 2,
};

/* PID id 0 means "no PID": an address no prefix covers. */
#define ITR_PID_NONE 0u
/* LOC 0 means "no LOC given": two PIDs with loc 0 are never INTRA_LOC. */
#define ITR_LOC_NONE 0u

/* ---- LPM tries: prefix -> PID ---------------------------------------- */
/* Layout required by BPF_MAP_TYPE_LPM_TRIE: prefix length, then the address
 * bytes most significant first. */
struct itr_lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct itr_lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct itr_pid_info {
	__u32 pid;   /* numeric PID id, never ITR_PID_NONE for a stored prefix */
	__u32 asn;   /* autonomous system number */
	__u32 loc;   /* location id, ITR_LOC_NONE if not given */
	__u32 flags; /* ITR_PID_F_* */
};

#define ITR_PID_F_DEFAULT (1u << 0) /* installed as the catch-all /0 */

/* ---- packet and byte counts (counters, matrix, flows' unfolded) ----- */
struct itr_counter {
	__u64 packets;
	__u64 bytes; /* L2 frame length as seen by the hook */
};

/* ---- flow cache ------------------------------------------------------ */
/* Both directions of a flow map to one key: the (address, port) pair that
 * sorts lower (memcmp of address, then port) goes into the "lo" fields.
 * IPv6 flows live in ITR_MAP_FLOWS under this key. IPv4 flows live in
 * ITR_MAP_FLOWS_V4 under the 16-byte itr_flow_key_v4: hashing and comparing
 * 16 bytes instead of 40 is most of what an established flow's packet
 * costs beyond the parser. User space (itrackerctl classify) widens a v4
 * key to this form, IPv4 addresses in the first 4 bytes of addr_*, the
 * rest zero, family 4. */
struct itr_flow_key {
	__u8 addr_lo[16];
	__u8 addr_hi[16];
	__u16 port_lo; /* network byte order */
	__u16 port_hi; /* network byte order */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;   /* 4 or 6 */
	__u8 pad[2];
};

struct itr_flow_key_v4 {
	__u32 addr_lo; /* network byte order */
	__u32 addr_hi;
	__u16 port_lo; /* network byte order */
	__u16 port_hi;
	__u8 proto;
	__u8 pad[3];
};

enum itr_flow_state {
	ITR_FLOW_PENDING = 0, /* still inspecting payload */
	ITR_FLOW_FINAL = 1,   /* verdict settled (kind may be NONE) */
	ITR_FLOW_TRACKER = 2, /* tracker flow (kind settled): its next few payload
	                       * packets are read for announced ports and peer
	                       * lists, then it becomes FINAL */
	ITR_FLOW_SHARED = 3,  /* DHT flow (kind DHT, or UTP once uTP was proven on
	                       * it): one UDP socket carries both, so each packet
	                       * is counted by its own first byte */
};

struct itr_flow_verdict {
	__u64 generation; /* itr_config.generation when classified */
	__u32 pid_lo;     /* PID of the "lo" end, ITR_PID_NONE if unmatched */
	__u32 pid_hi;
	__u32 asn_lo;
	__u32 asn_hi;
	__u32 loc_lo;
	__u32 loc_hi;
	__u32 token;          /* the exchange being confirmed (ITR_SEEN_*): a tracker
	                       * request's end (TCP: seq + length) or transaction id
	                       * (BEP 15), or a uTP probe (connection id << 16 |
	                       * seq_nr) */
	__u16 announced_port; /* the port the client's announce named, network
	                       * byte order; taught once the tracker answers */
	__u16 taught;         /* endpoint-cache entries this flow has added */
	__u8 seen;            /* ITR_SEEN_* */
	__u8 kind;            /* enum itr_kind */
	__u8 state;           /* enum itr_flow_state */
	__u8 inspected;       /* payload-bearing packets examined so far */
	__u8 probe_end;       /* ITR_END_LO/HI: the end that sent the uTP probe */
	__u8 cls;             /* enum itr_class, derived from the fields above */
	__u8 follow_left;     /* ITR_FLOW_TRACKER: payload packets still to read */
	__u8 tracker_end;     /* ITR_FLOW_TRACKER: ITR_END_LO or ITR_END_HI */
	/* BitTorrent packets and bytes of this flow not yet added to the PID
	 * matrix, [ITR_FLOW_LO_TO_HI] and [ITR_FLOW_HI_TO_LO], packed (see
	 * itr_unfolded_pack). An established flow's packet adds here with one
	 * atomic add (the entry is already in cache) instead of looking up its
	 * matrix cell (a second random memory access, as costly as the flow
	 * lookup itself); the fold program (itr_fold, run by itrackerd every
	 * ITR_FOLD_PERIOD_MS and before each price sample) moves them into the
	 * matrix with atomic exchanges. */
	__u64 unfolded[2];
};

#define ITR_FLOW_LO_TO_HI 0
#define ITR_FLOW_HI_TO_LO 1

/* An unfolded count: packets in the top 24 bits, bytes in the low 40, so
 * one add counts both. A packet that leaves either field at half its room
 * (ITR_UNFOLDED_FULL: 2^23 packets or 2^39 bytes, far above what a flow
 * sends between two folds) folds the flow at once, so neither overflows:
 * a packet adds at most 2^20 bytes (a 64 KiB GSO packet, or BIG TCP's
 * 512 KiB). */
#define ITR_UNFOLDED_BYTES_BITS 40
#define ITR_UNFOLDED_FULL       ((1ull << 63) | (1ull << 39))

static inline __u64 itr_unfolded_pack(__u64 packets, __u64 bytes)
{
	return packets << ITR_UNFOLDED_BYTES_BITS | bytes;
}

static inline __u64 itr_unfolded_packets(__u64 unfolded)
{
	return unfolded >> ITR_UNFOLDED_BYTES_BITS;
}

static inline __u64 itr_unfolded_bytes(__u64 unfolded)
{
	return unfolded & ((1ull << ITR_UNFOLDED_BYTES_BITS) - 1);
}
/* How often itrackerd folds the flows' unfolded counts into the matrix:
 * the matrix lags the packets by at most this, and a flow the LRU evicts
 * within this time of its last packet takes what it had not folded with it. */
#define ITR_FOLD_PERIOD_MS 1000

/* What a flow has shown of a two-way exchange (itr_flow_verdict.seen).
 * Endpoints are learned only from exchanges both ends took part in. */
#define ITR_SEEN_HELLO_LO  (1u << 0) /* the lo end sent a handshake / KRPC */
#define ITR_SEEN_HELLO_HI  (1u << 1) /* the hi end did */
#define ITR_SEEN_REQUEST   (1u << 2) /* tracker: a request awaits its answer */
#define ITR_SEEN_ANSWER    (1u << 3) /* tracker: the answer matched the request */
#define ITR_SEEN_UTP_PROBE (1u << 4) /* uTP: token holds a probe packet */
#define ITR_SEEN_UTP_SYN   (1u << 5) /* ... and it was a SYN */
#define ITR_SEEN_LEARNED   (1u << 6) /* the flow's own ends were learned */

/* Which end of a flow key an ITR_FLOW_TRACKER verdict's tracker is. */
#define ITR_END_LO 1
#define ITR_END_HI 2

/* Payload-bearing packets examined before a flow is settled as NONE. */
#define ITR_MAX_INSPECT 4
/* ITR_FLOW_TRACKER: payload packets read after the one that classified the
 * flow, counted again from each announce request. */
#define ITR_TRACKER_FOLLOW 8

/* ---- endpoint cache: ip:port known to speak BitTorrent ------------- */
struct itr_endpoint_key {
	__u8 addr[16];
	__u16 port; /* network byte order */
	__u8 proto;
	__u8 family;
};

struct itr_endpoint_info {
	__u64 last_seen_ns; /* bpf_ktime_get_ns() of the last confirmation */
	__u8 kind;          /* kind that taught us this endpoint; ITR_KIND_ENDPOINT:
	                     * listed in a tracker's answer or announced by a client */
	__u8 pad[7];
};

/* Entries older than this are ignored and deleted when looked up: an
 * endpoint seen speaking BitTorrent itself, and one a tracker listed. */
#define ITR_ENDPOINT_TTL_SEEN_NS   (3600ull * 1000000000ull)
#define ITR_ENDPOINT_TTL_LISTED_NS (900ull * 1000000000ull)
/* Endpoints one flow may add (a peer counts twice: TCP and UDP), and one
 * source address within ITR_TEACH_WINDOW_NS: one sender cannot flush the
 * cache. */
#define ITR_TEACH_PER_FLOW   256
#define ITR_TEACH_PER_SOURCE 4096
#define ITR_TEACH_WINDOW_NS  (60ull * 1000000000ull)

/* ---- counters: per-CPU array by (direction, class, kind) ---------- */
/* value: struct itr_counter */
#define ITR_COUNTER_SLOTS (ITR_DIR_MAX * ITR_CLASS_MAX * ITR_KIND_MAX)

static inline __u32 itr_counter_index(__u32 dir, __u32 cls, __u32 kind)
{
	return (dir * ITR_CLASS_MAX + cls) * ITR_KIND_MAX + kind;
}

/* ---- PID x PID matrix: per-CPU hash, BitTorrent traffic only ------- */
struct itr_matrix_key {
	__u32 src_pid; /* PID of the packet's source, ITR_PID_NONE if unmatched */
	__u32 dst_pid;
};

/* value: struct itr_counter */

/* ---- policy: array indexed by enum itr_class ------------------------ */
/* Applied by the TC egress program to BitTorrent packets only; traffic that
 * is not BitTorrent is never touched. Each field has its own "set" flag so
 * that zero stays a settable value. The default (all flags clear) counts
 * and changes nothing. */
#define ITR_POLICY_SET_DSCP     (1u << 0)
#define ITR_POLICY_SET_PRIORITY (1u << 1)
#define ITR_POLICY_SET_MARK     (1u << 2)
#define ITR_POLICY_DROP         (1u << 3)
/* Also apply to flows recognised only by an endpoint match (kind
 * ENDPOINT: no signature of their own, e.g. MSE); off by default, since an
 * endpoint is a weaker proof than a signature. */
#define ITR_POLICY_ENDPOINT (1u << 4)

struct itr_policy {
	__u32 flags;    /* ITR_POLICY_* */
	__u32 priority; /* skb->priority, e.g. an HTB classid major:minor */
	__u32 mark;     /* skb->mark */
	__u8 dscp;      /* 0..63 */
	__u8 pad[3];
};

/* ---- config: array with one element --------------------------------- */
struct itr_config {
	__u64 generation;  /* bumped by userspace after every map change */
	__u32 abi_version; /* ITR_ABI_VERSION of the writer */
	__u32 flags;       /* reserved, zero */
	__u64 updated_ns;  /* CLOCK_REALTIME ns of the last map change */
	char vtag[72];     /* network map vtag, NUL-terminated, for tools */
};

/* ---- sizes ----------------------------------------------------------- */
#define ITR_LPM_V4_MAX    2000000
#define ITR_LPM_V6_MAX    1000000
#define ITR_FLOWS_MAX     262144
#define ITR_ENDPOINTS_MAX 65536
#define ITR_MATRIX_MAX    65536

/* ---- pin names (under the pin root, default /sys/fs/bpf/itracker) --- */
#define ITR_PIN_ROOT_DEFAULT "/sys/fs/bpf/itracker"
#define ITR_MAP_LPM_V4       "lpm_v4"
#define ITR_MAP_LPM_V6       "lpm_v6"
#define ITR_MAP_FLOWS        "flows" /* IPv6 flows */
#define ITR_MAP_FLOWS_V4     "flows_v4"
#define ITR_MAP_ENDPOINTS    "endpoints"
#define ITR_MAP_COUNTERS     "counters"
#define ITR_MAP_MATRIX       "matrix"
#define ITR_MAP_POLICY       "policy"
#define ITR_MAP_CONFIG       "config"
/* Links: "<prefix><ifname>", e.g. link_xdp_eth0. TC attachments (classic
 * clsact on libbpf 1.1) are not links; they live in the interface's qdisc
 * and are found again with bpf_tc_query. */
#define ITR_PIN_LINK_XDP_PREFIX "link_xdp_"
/* The fold program (ITR_PROG_FOLD), pinned so that readers of the pins
 * (itrackerctl matrix, /metrics) fold before they read the matrix. */
#define ITR_PIN_PROG_FOLD "prog_fold"

/* Program names in the object (also the names bpftool prints). */
#define ITR_PROG_XDP "itr_xdp_ingress"
#define ITR_PROG_TC  "itr_tc_egress"
/* The ingress classifier as a TC program: the hook on virtual devices
 * (veth, bridges), where native XDP costs the stack its GRO aggregation. */
#define ITR_PROG_TC_INGRESS "itr_tc_ingress"
/* Folds every flow's unfolded counts into the matrix (a syscall program,
 * run through BPF_PROG_TEST_RUN; never attached). */
#define ITR_PROG_FOLD "itr_fold"
/* TC filter handle and priority used for the egress attachment. */
#define ITR_TC_HANDLE   0x17a
#define ITR_TC_PRIORITY 0x17a

#endif /* ITRACKER_MAPS_H */
