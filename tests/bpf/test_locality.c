/* test_locality.c - the kernel programs on crafted frames (BPF_PROG_TEST_RUN).
 *
 * Each test loads bpf/locality.bpf.o through its skeleton with the maps
 * pinned in a fresh directory under /sys/fs/bpf (a private bpffs in a mount
 * namespace of the test's own: tests/private_bpffs.h), fills the LPM tries with
 * the PIDs of maps/example.netmap, runs hand-built Ethernet frames through
 * the XDP and TC programs and checks where they were counted (per-CPU
 * counters summed over CPUs), what the flow and endpoint caches learned and
 * what the TC policy did to the packet. Needs root; under CI=true it fails
 * instead of skipping when it cannot run.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "itracker_maps.h"
#include "locality.skel.h"
#include "private_bpffs.h"

/* ---- fixture ------------------------------------------------------- */

struct fixture {
	struct locality *skel;
	char pin_dir[128];
	int ncpus;
	int xdp_fd;
	int tc_fd;
};

static int test_counter;

static void must_run_as_root(void)
{
	if (geteuid() == 0)
		return;
	const char *ci = getenv("CI");
	if (ci && strcmp(ci, "true") == 0)
		fail_msg("kernel tests need root (CI=true: failing, not skipping)");
	skip();
}

static void lpm4_add(struct fixture *f, const char *cidr_addr, unsigned plen, uint32_t pid,
                     uint32_t asn, uint32_t loc)
{
	struct itr_lpm_v4_key k = {.prefixlen = plen};
	struct itr_pid_info v = {.pid = pid, .asn = asn, .loc = loc};
	assert_int_equal(inet_pton(AF_INET, cidr_addr, k.addr), 1);
	assert_int_equal(
	    bpf_map__update_elem(f->skel->maps.lpm_v4, &k, sizeof(k), &v, sizeof(v), BPF_ANY), 0);
}

static void lpm6_add(struct fixture *f, const char *cidr_addr, unsigned plen, uint32_t pid,
                     uint32_t asn, uint32_t loc)
{
	struct itr_lpm_v6_key k = {.prefixlen = plen};
	struct itr_pid_info v = {.pid = pid, .asn = asn, .loc = loc};
	assert_int_equal(inet_pton(AF_INET6, cidr_addr, k.addr), 1);
	assert_int_equal(
	    bpf_map__update_elem(f->skel->maps.lpm_v6, &k, sizeof(k), &v, sizeof(v), BPF_ANY), 0);
}

/* The PIDs of maps/example.netmap, written directly. */
static void fill_example_netmap(struct fixture *f)
{
	lpm4_add(f, "10.10.1.0", 24, 1, 64500, 1);
	lpm4_add(f, "10.10.2.0", 24, 2, 64500, 2);
	lpm4_add(f, "10.10.3.0", 24, 3, 64500, 1);
	lpm4_add(f, "10.20.0.0", 16, 10, 64501, 10);
	lpm4_add(f, "10.20.128.0", 17, 11, 64501, 11);
	lpm4_add(f, "10.30.0.0", 16, 20, 64502, 20);
	lpm6_add(f, "fd00:10:1::", 48, 1, 64500, 1);
	lpm6_add(f, "fd00:10:2::", 48, 2, 64500, 2);
	lpm6_add(f, "fd00:10:3::", 48, 3, 64500, 1);
	lpm6_add(f, "fd00:20::", 32, 10, 64501, 10);
	lpm6_add(f, "fd00:20:8000::", 33, 11, 64501, 11);
	lpm6_add(f, "fd00:30::", 32, 20, 64502, 20);
}

static int setup(void **state)
{
	must_run_as_root();
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf/test_locality-%d-%d", getpid(),
	         test_counter++);
	assert_int_equal(mkdir(f->pin_dir, 0700), 0);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = f->pin_dir);
	f->skel = locality__open_opts(&opts);
	assert_non_null(f->skel);
	assert_int_equal(locality__load(f->skel), 0);
	f->ncpus = libbpf_num_possible_cpus();
	assert_true(f->ncpus > 0);
	f->xdp_fd = bpf_program__fd(f->skel->progs.itr_xdp_ingress);
	f->tc_fd = bpf_program__fd(f->skel->progs.itr_tc_egress);
	fill_example_netmap(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!f)
		return 0;
	struct bpf_map *map;
	bpf_object__for_each_map(map, f->skel->obj)
	{
		if (bpf_map__pin_path(map))
			bpf_map__unpin(map, NULL);
	}
	locality__destroy(f->skel);
	rmdir(f->pin_dir);
	free(f);
	return 0;
}

/* ---- frames -------------------------------------------------------- */

struct spec {
	int family; /* 4 or 6 */
	int vlans;  /* 0, 1 or 2 */
	const char *src;
	const char *dst;
	uint16_t sport;
	uint16_t dport;
	int proto; /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t tcp_flags;
	uint8_t tos;  /* IPv4 TOS or IPv6 traffic class */
	uint32_t seq; /* TCP; 0: TCP_SEQ_DEFAULT */
	uint32_t ack; /* TCP acknowledgement number */
	const void *payload;
	size_t len;
};

#define FRAME_MAX 2048
/* The sequence number of TCP segments whose spec names none. */
#define TCP_SEQ_DEFAULT 0x10000000u

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Builds the L4 header + payload at out; returns its length. */
static size_t build_l4(uint8_t *out, const struct spec *s)
{
	size_t hl = s->proto == IPPROTO_TCP ? 20 : 8;
	put16(out, s->sport);
	put16(out + 2, s->dport);
	if (s->proto == IPPROTO_TCP) {
		uint32_t seq = s->seq ? s->seq : TCP_SEQ_DEFAULT;
		memset(out + 4, 0, 16);
		put16(out + 4, (uint16_t)(seq >> 16));
		put16(out + 6, (uint16_t)seq);
		put16(out + 8, (uint16_t)(s->ack >> 16));
		put16(out + 10, (uint16_t)s->ack);
		out[12] = 5 << 4;
		out[13] = s->tcp_flags ? s->tcp_flags : 0x18; /* PSH|ACK */
		put16(out + 14, 65535);
	} else {
		put16(out + 4, (uint16_t)(8 + s->len));
		put16(out + 6, 0);
	}
	if (s->len)
		memcpy(out + hl, s->payload, s->len);
	return hl + s->len;
}

static size_t build_frame(uint8_t *out, const struct spec *s)
{
	size_t off = 12;
	memset(out, 0, FRAME_MAX);
	memcpy(out, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	for (int i = 0; i < s->vlans; i++) {
		put16(out + off, i == 0 && s->vlans == 2 ? ETH_P_8021AD : ETH_P_8021Q);
		put16(out + off + 2, (uint16_t)(100 + i));
		off += 4;
	}
	if (s->family == 4) {
		put16(out + off, ETH_P_IP);
		off += 2;
		uint8_t *ip = out + off;
		size_t l4 = build_l4(ip + 20, s);
		ip[0] = 0x45;
		ip[1] = s->tos;
		put16(ip + 2, (uint16_t)(20 + l4));
		put16(ip + 4, 0x1234);
		ip[8] = 64;
		ip[9] = (uint8_t)s->proto;
		assert_int_equal(inet_pton(AF_INET, s->src, ip + 12), 1);
		assert_int_equal(inet_pton(AF_INET, s->dst, ip + 16), 1);
		put16(ip + 10, csum16(ip, 20));
		off += 20 + l4;
	} else {
		put16(out + off, ETH_P_IPV6);
		off += 2;
		uint8_t *ip = out + off;
		size_t l4 = build_l4(ip + 40, s);
		ip[0] = 0x60 | s->tos >> 4;
		ip[1] = (uint8_t)(s->tos << 4);
		put16(ip + 4, (uint16_t)l4);
		ip[6] = (uint8_t)s->proto;
		ip[7] = 64;
		assert_int_equal(inet_pton(AF_INET6, s->src, ip + 8), 1);
		assert_int_equal(inet_pton(AF_INET6, s->dst, ip + 24), 1);
		off += 40 + l4;
	}
	return off < 60 ? 60 : off; /* Ethernet minimum frame, zero padded */
}

/* ---- running and counting ------------------------------------------ */

static int run_xdp(struct fixture *f, const uint8_t *frame, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
	            .repeat = 1);
	assert_int_equal(bpf_prog_test_run_opts(f->xdp_fd, &opts), 0);
	return (int)opts.retval;
}

struct tc_out {
	int retval;
	uint8_t data[FRAME_MAX];
	uint32_t len;
	struct __sk_buff ctx;
};

static void run_tc(struct fixture *f, const uint8_t *frame, size_t len, struct tc_out *out)
{
	struct __sk_buff ctx_in = {0};
	memset(out, 0, sizeof(*out));
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
	            .data_out = out->data, .data_size_out = sizeof(out->data), .ctx_in = &ctx_in,
	            .ctx_size_in = sizeof(ctx_in), .ctx_out = &out->ctx,
	            .ctx_size_out = sizeof(out->ctx), .repeat = 1);
	assert_int_equal(bpf_prog_test_run_opts(f->tc_fd, &opts), 0);
	out->retval = (int)opts.retval;
	out->len = opts.data_size_out;
}

struct snapshot {
	struct itr_counter slot[ITR_COUNTER_SLOTS];
};

static void snap(struct fixture *f, struct snapshot *s)
{
	struct itr_counter *per_cpu = calloc((size_t)f->ncpus, sizeof(*per_cpu));
	assert_non_null(per_cpu);
	for (uint32_t i = 0; i < ITR_COUNTER_SLOTS; i++) {
		assert_int_equal(bpf_map__lookup_elem(f->skel->maps.counters, &i, sizeof(i),
		                                      per_cpu, sizeof(*per_cpu) * f->ncpus, 0),
		                 0);
		s->slot[i].packets = s->slot[i].bytes = 0;
		for (int c = 0; c < f->ncpus; c++) {
			s->slot[i].packets += per_cpu[c].packets;
			s->slot[i].bytes += per_cpu[c].bytes;
		}
	}
	free(per_cpu);
}

static const char *const class_names[] = {"INTRA_PID", "INTRA_LOC", "INTRA_AS", "INTER_AS",
                                          "UNKNOWN"};
static const char *const kind_names[] = {"NONE",        "PEER_WIRE",    "UTP",     "DHT",
                                         "UDP_TRACKER", "HTTP_TRACKER", "ENDPOINT"};

/* Asserts that between the two snapshots exactly one packet of `bytes`
 * bytes was counted, in (dir, cls, kind). */
static void assert_counted_in(const struct snapshot *before, const struct snapshot *after,
                              uint32_t dir, uint32_t cls, uint32_t kind, uint64_t bytes,
                              const char *what)
{
	uint32_t want = itr_counter_index(dir, cls, kind);
	for (uint32_t i = 0; i < ITR_COUNTER_SLOTS; i++) {
		uint64_t dp = after->slot[i].packets - before->slot[i].packets;
		uint64_t db = after->slot[i].bytes - before->slot[i].bytes;
		if (i == want && (dp != 1 || db != bytes))
			fail_msg("%s: expected 1 packet/%llu bytes in dir %u %s/%s, got %llu/%llu",
			         what, (unsigned long long)bytes, dir, class_names[cls],
			         kind_names[kind], (unsigned long long)dp, (unsigned long long)db);
		if (i != want && dp != 0) {
			uint32_t k = i % ITR_KIND_MAX, c = (i / ITR_KIND_MAX) % ITR_CLASS_MAX;
			fail_msg("%s: expected %s/%s, counted in dir %u %s/%s", what,
			         class_names[cls], kind_names[kind],
			         i / ITR_KIND_MAX / ITR_CLASS_MAX, class_names[c], kind_names[k]);
		}
	}
}

static void assert_not_counted(const struct snapshot *before, const struct snapshot *after,
                               const char *what)
{
	for (uint32_t i = 0; i < ITR_COUNTER_SLOTS; i++)
		if (after->slot[i].packets != before->slot[i].packets)
			fail_msg("%s: counted in slot %u but should not be", what, i);
}

/* Sends one packet through XDP and checks where it was counted. */
static void xdp_expect(struct fixture *f, const struct spec *s, uint32_t cls, uint32_t kind,
                       const char *what)
{
	uint8_t frame[FRAME_MAX];
	struct snapshot before, after;
	size_t len = build_frame(frame, s);
	snap(f, &before);
	assert_int_equal(run_xdp(f, frame, len), XDP_PASS);
	snap(f, &after);
	char label[160];
	snprintf(label, sizeof(label), "%s (IPv%d, %d VLAN)", what, s->family, s->vlans);
	assert_counted_in(&before, &after, ITR_DIR_INGRESS, cls, kind, len, label);
}

static void xdp_expect_uncounted(struct fixture *f, const uint8_t *frame, size_t len,
                                 const char *what)
{
	struct snapshot before, after;
	snap(f, &before);
	assert_int_equal(run_xdp(f, frame, len), XDP_PASS);
	snap(f, &after);
	assert_not_counted(&before, &after, what);
}

/* One matrix cell as it stands, without folding (packets, or bytes). */
static uint64_t matrix_cell(struct fixture *f, uint32_t src_pid, uint32_t dst_pid, int bytes)
{
	struct itr_matrix_key k = {.src_pid = src_pid, .dst_pid = dst_pid};
	struct itr_counter *per_cpu = calloc((size_t)f->ncpus, sizeof(*per_cpu));
	uint64_t sum = 0;
	assert_non_null(per_cpu);
	if (bpf_map__lookup_elem(f->skel->maps.matrix, &k, sizeof(k), per_cpu,
	                         sizeof(*per_cpu) * f->ncpus, 0) == 0)
		for (int c = 0; c < f->ncpus; c++)
			sum += bytes ? per_cpu[c].bytes : per_cpu[c].packets;
	free(per_cpu);
	return sum;
}

/* Runs the fold program, as itrackerd does every ITR_FOLD_PERIOD_MS. */
static void fold(struct fixture *f)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.itr_fold), &opts),
	                 0);
	assert_int_equal(opts.retval, 0);
}

/* A matrix cell once every flow's unfolded counts are in. */
static uint64_t matrix_packets(struct fixture *f, uint32_t src_pid, uint32_t dst_pid)
{
	fold(f);
	return matrix_cell(f, src_pid, dst_pid, 0);
}

/* Unfolded packets in every cached flow (both flow maps), by direction
 * within the flow (ITR_FLOW_LO_TO_HI / ITR_FLOW_HI_TO_LO). */
static uint64_t unfolded_packets(struct fixture *f, int dir)
{
	uint64_t sum = 0;
	struct itr_flow_verdict v;
	struct itr_flow_key_v4 k4, n4;
	const void *prev = NULL;
	int fd = bpf_map__fd(f->skel->maps.flows_v4);
	while (bpf_map_get_next_key(fd, prev, &n4) == 0) {
		k4 = n4;
		prev = &k4;
		if (bpf_map_lookup_elem(fd, &k4, &v) == 0)
			sum += itr_unfolded_packets(v.unfolded[dir]);
	}
	struct itr_flow_key k6, n6;
	prev = NULL;
	fd = bpf_map__fd(f->skel->maps.flows);
	while (bpf_map_get_next_key(fd, prev, &n6) == 0) {
		k6 = n6;
		prev = &k6;
		if (bpf_map_lookup_elem(fd, &k6, &v) == 0)
			sum += itr_unfolded_packets(v.unfolded[dir]);
	}
	return sum;
}

/* Kind the endpoint cache holds for addr:port, or -1 if it has none. */
static int endpoint_kind(struct fixture *f, int family, const char *addr, uint16_t port, int proto)
{
	struct itr_endpoint_key k = {
	    .port = htons(port), .proto = (uint8_t)proto, .family = (uint8_t)family};
	struct itr_endpoint_info info;
	assert_int_equal(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, k.addr), 1);
	if (bpf_map__lookup_elem(f->skel->maps.endpoints, &k, sizeof(k), &info, sizeof(info), 0))
		return -1;
	assert_true(info.last_seen_ns > 0);
	return info.kind;
}

/* Entries in the endpoint cache. */
static unsigned endpoint_count(struct fixture *f)
{
	struct itr_endpoint_key k, next;
	unsigned n = 0;
	int fd = bpf_map__fd(f->skel->maps.endpoints);
	void *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		n++;
		k = next;
		prev = &k;
	}
	return n;
}

/* The same flow, the other way. */
static struct spec reply_of(const struct spec *s)
{
	struct spec r = *s;
	r.src = s->dst;
	r.dst = s->src;
	r.sport = s->dport;
	r.dport = s->sport;
	return r;
}

/* Sends one packet through TC egress and checks where it was counted. */
static void tc_expect(struct fixture *f, const struct spec *s, uint32_t cls, uint32_t kind,
                      const char *what)
{
	uint8_t frame[FRAME_MAX];
	struct snapshot before, after;
	struct tc_out *out = malloc(sizeof(*out));
	assert_non_null(out);
	size_t len = build_frame(frame, s);
	snap(f, &before);
	run_tc(f, frame, len, out);
	snap(f, &after);
	assert_int_equal(out->retval, TC_ACT_OK);
	free(out);
	assert_counted_in(&before, &after, ITR_DIR_EGRESS, cls, kind, len, what);
}

/* ---- payloads ------------------------------------------------------ */

static size_t handshake(uint8_t *out)
{
	out[0] = 19;
	memcpy(out + 1, "BitTorrent protocol", 19);
	memset(out + 20, 0, 8);
	out[25] = 0x10; /* extension protocol bit */
	memset(out + 28, 0xab, 20);
	memcpy(out + 48, "-TR3000-abcdefghijkl", 20);
	return 68;
}

/* uTP header: type, timestamp difference, connection id, seq_nr, ack_nr;
 * no extension. */
static size_t utp_packet(uint8_t *out, int type, uint32_t ts_diff, uint16_t conn, uint16_t seq,
                         uint16_t ack)
{
	memset(out, 0, 20);
	out[0] = (uint8_t)(type << 4 | 1);
	put16(out + 2, conn);
	out[4] = 0x5a; /* timestamp */
	out[8] = (uint8_t)(ts_diff >> 24);
	out[11] = (uint8_t)ts_diff;
	out[14] = 0x10; /* window */
	put16(out + 16, seq);
	put16(out + 18, ack);
	return 20;
}

/* The connection of most uTP tests: the initiator's SYN has connection id
 * UTP_CONN and seq_nr 1; the answer acknowledges it with the same id. */
#define UTP_CONN 0x1234
static size_t utp_header(uint8_t *out, int type, uint32_t ts_diff)
{
	return type == 2 ? utp_packet(out, type, ts_diff, UTP_CONN, 0x7000, 1)
	                 : utp_packet(out, type, ts_diff, UTP_CONN, 1, 0);
}

static size_t udp_connect(uint8_t *out)
{
	memcpy(out, "\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00\xde\xad\xbe\xef", 16);
	return 16;
}

/* BEP 15 connect answer: action 0, transaction id, connection id. */
static size_t udp_connect_answer(uint8_t *out)
{
	memcpy(out, "\0\0\0\0\xde\xad\xbe\xef\x11\x22\x33\x44\x55\x66\x77\x88", 16);
	return 16;
}

static size_t udp_announce(uint8_t *out)
{
	memset(out, 0, 98);
	memcpy(out, "\x11\x22\x33\x44\x55\x66\x77\x88", 8); /* connection id */
	out[11] = 1;                                        /* action announce */
	memcpy(out + 12, "\xde\xad\xbe\xef", 4);            /* transaction id */
	memset(out + 16, 0xcd, 20);                         /* info_hash */
	memcpy(out + 36, "-lt0D80-abcdefghijkl", 20);
	out[83] = 2;    /* started */
	out[92] = 0xff; /* num_want -1 */
	out[93] = 0xff;
	out[94] = 0xff;
	out[95] = 0xff;
	put16(out + 96, 6881);
	return 98;
}

/* Bytes without structure, like an MSE handshake (a Diffie-Hellman value
 * and padding); seed picks the sequence. */
static void mse_like(uint8_t *out, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[i] = (uint8_t)x;
	}
}

/* Appends a compact peer entry (address, then port, big-endian). */
static size_t put_peer(uint8_t *out, int family, const char *addr, uint16_t port)
{
	size_t alen = family == 4 ? 4 : 16;
	assert_int_equal(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, out), 1);
	put16(out + alen, port);
	return alen + 2;
}

static size_t put_str(uint8_t *out, const char *str)
{
	size_t n = strlen(str);
	memcpy(out, str, n);
	return n;
}

/* ---- tests: BitTorrent kinds ------------------------------------------ */

static uint16_t next_port = 20000;

static uint16_t fresh_port(void)
{
	return next_port++;
}

struct addrs {
	const char *a, *b;
};

static const struct addrs v4_pair = {"10.10.1.5", "10.30.0.7"};     /* INTER_AS */
static const struct addrs v6_pair = {"fd00:10:1::5", "fd00:30::7"}; /* INTER_AS */

static void kinds_for(struct fixture *f, int family, int vlans)
{
	const struct addrs *ad = family == 4 ? &v4_pair : &v6_pair;
	const uint32_t cls = ITR_CLASS_INTER_AS;
	uint8_t pl[600];
	struct spec s = {.family = family, .vlans = vlans, .src = ad->a, .dst = ad->b};

	/* Peer wire: a SYN is not yet anything, the handshake is. */
	s.proto = IPPROTO_TCP;
	s.sport = fresh_port();
	s.dport = fresh_port();
	s.tcp_flags = 0x02;
	s.len = 0;
	xdp_expect(f, &s, cls, ITR_KIND_NONE, "peer-wire SYN");
	s.tcp_flags = 0;
	s.payload = pl;
	s.len = handshake(pl);
	xdp_expect(f, &s, cls, ITR_KIND_PEER_WIRE, "peer-wire handshake");
	uint16_t listener = s.dport;
	/* One handshake teaches nothing: it may be spoofed. */
	assert_int_equal(endpoint_kind(f, family, ad->b, listener, IPPROTO_TCP), -1);

	/* The reply direction hits the same flow; the answering handshake
	 * makes the listener known, the dialler stays unknown. */
	struct spec r = s;
	r.src = s.dst;
	r.dst = s.src;
	r.sport = s.dport;
	r.dport = s.sport;
	xdp_expect(f, &r, cls, ITR_KIND_PEER_WIRE, "peer-wire reply direction");
	assert_int_equal(endpoint_kind(f, family, ad->b, listener, IPPROTO_TCP),
	                 ITR_KIND_PEER_WIRE);
	assert_int_equal(endpoint_kind(f, family, ad->a, s.sport, IPPROTO_TCP), -1);

	/* Endpoint cache: a later SYN to the listener is ENDPOINT at once, and
	 * an "encrypted" (MSE) flow to it stays ENDPOINT. */
	struct spec e = {.family = family,
	                 .vlans = vlans,
	                 .src = ad->a,
	                 .dst = ad->b,
	                 .proto = IPPROTO_TCP,
	                 .sport = fresh_port(),
	                 .dport = listener,
	                 .tcp_flags = 0x02};
	xdp_expect(f, &e, cls, ITR_KIND_ENDPOINT, "SYN to known endpoint");
	e.tcp_flags = 0;
	for (size_t i = 0; i < 200; i++)
		pl[i] = (uint8_t)(i * 73 + 11);
	e.payload = pl;
	e.len = 200;
	for (int i = 0; i < ITR_MAX_INSPECT + 1; i++)
		xdp_expect(f, &e, cls, ITR_KIND_ENDPOINT, "encrypted flow to known endpoint");

	/* uTP: SYN then STATE back. */
	s = (struct spec){.family = family,
	                  .vlans = vlans,
	                  .src = ad->a,
	                  .dst = ad->b,
	                  .proto = IPPROTO_UDP,
	                  .sport = fresh_port(),
	                  .dport = fresh_port(),
	                  .payload = pl};
	s.len = utp_header(pl, 4, 0);
	xdp_expect(f, &s, cls, ITR_KIND_NONE, "uTP SYN alone");
	r = s;
	r.src = s.dst;
	r.dst = s.src;
	r.sport = s.dport;
	r.dport = s.sport;
	r.len = utp_header(pl, 2, 12345);
	xdp_expect(f, &r, cls, ITR_KIND_UTP, "uTP STATE after SYN");
	assert_int_equal(endpoint_kind(f, family, ad->a, s.sport, IPPROTO_UDP), ITR_KIND_UTP);
	assert_int_equal(endpoint_kind(f, family, ad->b, s.dport, IPPROTO_UDP), ITR_KIND_UTP);
	/* uTP DATA with a selective-ack extension, on the connection. */
	utp_packet(pl, 0, 777, UTP_CONN + 1, 2, 0x7000);
	pl[1] = 1;
	pl[20] = 0;
	pl[21] = 4;
	memset(pl + 22, 0xff, 4);
	memcpy(pl + 26, "some data", 9);
	s.len = 35;
	xdp_expect(f, &s, cls, ITR_KIND_UTP, "uTP DATA with a selective ACK");
	/* A new flow from the learned endpoint: known by endpoint. */
	s.sport = fresh_port();
	xdp_expect(f, &s, cls, ITR_KIND_ENDPOINT, "uTP DATA from a known uTP endpoint");

	/* DHT query, response, BEP 42 response, error. */
	static const char *const dht[] = {
	    "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
	    "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
	    ("d2:ip6:\x0a\x0a\x01\x05\x1a\xe1"
	     "1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"),
	    "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
	};
	for (int i = 0; i < 4; i++) {
		s = (struct spec){.family = family,
		                  .vlans = vlans,
		                  .src = ad->a,
		                  .dst = ad->b,
		                  .proto = IPPROTO_UDP,
		                  .sport = fresh_port(),
		                  .dport = fresh_port(),
		                  .payload = dht[i],
		                  .len = strlen(dht[i])};
		xdp_expect(f, &s, cls, ITR_KIND_DHT, "DHT KRPC");
		/* One message teaches nothing; an answer from the other end
		 * makes both ends known. */
		assert_int_equal(endpoint_kind(f, family, ad->a, s.sport, IPPROTO_UDP), -1);
		struct spec back = reply_of(&s);
		back.payload = dht[1];
		back.len = strlen(dht[1]);
		xdp_expect(f, &back, cls, ITR_KIND_DHT, "DHT KRPC answer");
		assert_int_equal(endpoint_kind(f, family, ad->a, s.sport, IPPROTO_UDP),
		                 ITR_KIND_DHT);
		assert_int_equal(endpoint_kind(f, family, ad->b, s.dport, IPPROTO_UDP),
		                 ITR_KIND_DHT);
	}

	/* UDP tracker: connect (a 58-byte frame padded to 60), then an announce
	 * from another client port to the now known tracker. */
	uint16_t tracker_port = fresh_port();
	s = (struct spec){.family = family,
	                  .vlans = vlans,
	                  .src = ad->a,
	                  .dst = ad->b,
	                  .proto = IPPROTO_UDP,
	                  .sport = fresh_port(),
	                  .dport = tracker_port,
	                  .payload = pl};
	s.len = udp_connect(pl);
	xdp_expect(f, &s, cls, ITR_KIND_UDP_TRACKER, "BEP 15 connect");
	/* The tracker is known once it answers. */
	assert_int_equal(endpoint_kind(f, family, ad->b, tracker_port, IPPROTO_UDP), -1);
	r = reply_of(&s);
	r.len = udp_connect_answer(pl);
	xdp_expect(f, &r, cls, ITR_KIND_UDP_TRACKER, "BEP 15 connect answer");
	assert_int_equal(endpoint_kind(f, family, ad->b, tracker_port, IPPROTO_UDP),
	                 ITR_KIND_UDP_TRACKER);
	assert_int_equal(endpoint_kind(f, family, ad->a, s.sport, IPPROTO_UDP), -1);
	s.sport = fresh_port();
	s.len = udp_announce(pl);
	xdp_expect(f, &s, cls, ITR_KIND_UDP_TRACKER, "BEP 15 announce to known tracker");

	/* HTTP tracker announce and scrape. */
	static const char announce[] =
	    "GET /announce?info_hash=%12%34V%78%9a%bc%de%f0%12%34V%78%9a%bc%de%f0%12%34V%78"
	    "&peer_id=-TR3000-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=0"
	    "&compact=1 HTTP/1.1\r\nHost: tracker\r\n\r\n";
	static const char scrape[] = "GET /tracker/scrape?info_hash=%aa%bb%cc%dd%ee%ff%00%11%22%33"
	                             "%44%55%66%77%88%99%aa%bb%cc%dd HTTP/1.0\r\n\r\n";
	s = (struct spec){.family = family,
	                  .vlans = vlans,
	                  .src = ad->a,
	                  .dst = ad->b,
	                  .proto = IPPROTO_TCP,
	                  .sport = fresh_port(),
	                  .dport = fresh_port(),
	                  .payload = announce,
	                  .len = sizeof(announce) - 1};
	xdp_expect(f, &s, cls, ITR_KIND_HTTP_TRACKER, "HTTP announce");
	s.sport = fresh_port();
	s.dport = fresh_port();
	s.payload = scrape;
	s.len = sizeof(scrape) - 1;
	xdp_expect(f, &s, cls, ITR_KIND_HTTP_TRACKER, "HTTP scrape");
}

static void test_kinds_ipv4(void **state)
{
	for (int vlans = 0; vlans <= 2; vlans++)
		kinds_for(*state, 4, vlans);
}

static void test_kinds_ipv6(void **state)
{
	for (int vlans = 0; vlans <= 2; vlans++)
		kinds_for(*state, 6, vlans);
}

/* ---- tests: endpoints learned from trackers ---------------------------- */

/* The announcing client, its tracker and the peers the tracker lists, all
 * in different ASes from the client (maps/example.netmap). */
struct swarm {
	int family;
	const char *client, *tracker;
	const char *peer_a, *peer_b; /* IPv4 */
	const char *peer6;           /* IPv6 */
};

static const struct swarm swarm_v4 = {4,           "10.10.1.5", "10.20.0.9",
                                      "10.30.0.7", "10.30.0.8", "fd00:30::7"};
static const struct swarm swarm_v6 = {6,           "fd00:10:1::5", "fd00:20::9",
                                      "10.30.0.7", "10.30.0.8",    "fd00:30::7"};

static const char http_announce_51000[] =
    "GET /announce?info_hash=%12%34V%78%9a%bc%de%f0%12%34V%78%9a%bc%de%f0%12%34V%78"
    "&peer_id=-aria2-0123456789ab&uploaded=0&downloaded=0&left=3145728&compact=1"
    "&port=51000&numwant=50&event=started HTTP/1.1\r\nHost: tracker\r\n\r\n";

/* Opens an HTTP tracker flow from the client to the tracker with an
 * announce naming port 51000; returns the answer direction's spec. */
static struct spec http_tracker_flow(struct fixture *f, const struct swarm *w)
{
	struct spec req = {.family = w->family,
	                   .src = w->client,
	                   .dst = w->tracker,
	                   .proto = IPPROTO_TCP,
	                   .sport = fresh_port(),
	                   .dport = 6969,
	                   .payload = http_announce_51000,
	                   .len = sizeof(http_announce_51000) - 1};
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "HTTP announce");
	/* The answer acknowledges the request's bytes. */
	struct spec ans = reply_of(&req);
	ans.seq = 0x20000000;
	ans.ack = TCP_SEQ_DEFAULT + (uint32_t)req.len;
	return ans;
}

static const char http_ok[] = "HTTP/1.1 200 OK\r\n\r\n";

/* The tracker's "HTTP/1.1 200" and body in one segment. */
static size_t http_answer(uint8_t *out, const char *body, size_t len)
{
	memcpy(out, http_ok, sizeof(http_ok) - 1);
	memcpy(out + sizeof(http_ok) - 1, body, len);
	return sizeof(http_ok) - 1 + len;
}

/* Sends one answer packet on a tracker flow and returns how many entries
 * the endpoint cache gained. */
static unsigned answer_teaches(struct fixture *f, struct spec *ans, const void *body, size_t len,
                               uint32_t kind, const char *what)
{
	unsigned before = endpoint_count(f);
	ans->payload = body;
	ans->len = len;
	xdp_expect(f, ans, ITR_CLASS_INTER_AS, kind, what);
	return endpoint_count(f) - before;
}

static void expect_learned(struct fixture *f, int family, const char *addr, uint16_t port)
{
	assert_int_equal(endpoint_kind(f, family, addr, port, IPPROTO_TCP), ITR_KIND_ENDPOINT);
	assert_int_equal(endpoint_kind(f, family, addr, port, IPPROTO_UDP), ITR_KIND_ENDPOINT);
}

/* New flows from the client to the listed peers, obfuscated from their
 * first payload byte: recognised by endpoint, TCP and uTP alike. */
static void dial_listed_peers(struct fixture *f, const struct swarm *w, uint16_t port_a,
                              uint16_t port_b, uint16_t port6)
{
	uint8_t pl[300];
	struct spec t = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = w->peer_a,
	                 .proto = IPPROTO_TCP,
	                 .sport = fresh_port(),
	                 .dport = port_a,
	                 .tcp_flags = 0x02};
	xdp_expect(f, &t, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT, "SYN to a listed peer");
	t.tcp_flags = 0;
	t.payload = pl;
	for (int i = 0; i < ITR_MAX_INSPECT + 1; i++) {
		mse_like(pl, sizeof(pl), (uint32_t)i);
		t.len = 96 + 40 * (size_t)i; /* DH value + padding */
		xdp_expect(f, &t, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT,
		           "MSE flow to a listed peer");
	}
	struct spec r = reply_of(&t);
	xdp_expect(f, &r, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT, "listed peer's MSE reply");

	/* uTP: a SYN to a listed peer is known by the endpoint. */
	struct spec u = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = w->peer_b,
	                 .proto = IPPROTO_UDP,
	                 .sport = fresh_port(),
	                 .dport = port_b,
	                 .payload = pl};
	u.len = utp_header(pl, 4, 0);
	xdp_expect(f, &u, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT, "uTP SYN to a listed peer");

	if (port6) {
		struct spec t6 = {.family = 6,
		                  .src = "fd00:10:1::5",
		                  .dst = w->peer6,
		                  .proto = IPPROTO_TCP,
		                  .sport = fresh_port(),
		                  .dport = port6,
		                  .payload = pl,
		                  .len = 200};
		mse_like(pl, 200, 7);
		xdp_expect(f, &t6, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT,
		           "MSE flow to a peers6 peer");
	}

	/* A peer dialling the announcing client's port: also recognised. */
	struct spec in = {.family = w->family,
	                  .src = w->family == 4 ? w->peer_a : w->peer6,
	                  .dst = w->client,
	                  .proto = IPPROTO_TCP,
	                  .sport = fresh_port(),
	                  .dport = 51000,
	                  .payload = pl,
	                  .len = 150};
	mse_like(pl, 150, 3);
	xdp_expect(f, &in, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT, "MSE flow to the announcer");
}

static void http_tracker_peers_for(struct fixture *f, const struct swarm *w)
{
	uint8_t body[400];
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                           "Content-Length: 104\r\n\r\n";

	/* Before: MSE to a peer the data plane never saw is nothing. */
	struct spec cold = {.family = 4,
	                    .src = "10.10.1.5",
	                    .dst = w->peer_a,
	                    .proto = IPPROTO_TCP,
	                    .sport = fresh_port(),
	                    .dport = 6881,
	                    .payload = body,
	                    .len = 200};
	mse_like(body, 200, 1);
	xdp_expect(f, &cold, ITR_CLASS_INTER_AS, ITR_KIND_NONE, "MSE to an unknown peer");
	assert_int_equal(endpoint_kind(f, w->family, w->client, 51000, IPPROTO_TCP), -1);

	struct spec ans = http_tracker_flow(f, w);
	/* The announce names the client's listen port, learned once the
	 * tracker answers. */
	assert_int_equal(endpoint_kind(f, w->family, w->client, 51000, IPPROTO_TCP), -1);

	/* Headers and body in separate segments, as a server may send them.
	 * The headers confirm the exchange: the tracker and the client's port
	 * are learned. */
	assert_int_equal(answer_teaches(f, &ans, head, sizeof(head) - 1, ITR_KIND_HTTP_TRACKER,
	                                "answer headers"),
	                 3);
	expect_learned(f, w->family, w->client, 51000);
	assert_int_equal(endpoint_kind(f, w->family, w->tracker, 6969, IPPROTO_TCP),
	                 ITR_KIND_HTTP_TRACKER);
	size_t n = put_str(body, "d8:completei2e10:incompletei1e8:intervali1800e5:peers12:");
	n += put_peer(body + n, 4, w->peer_a, 6881);
	n += put_peer(body + n, 4, w->peer_b, 51413);
	n += put_str(body + n, "6:peers618:");
	n += put_peer(body + n, 6, w->peer6, 6882);
	n += put_str(body + n, "e");
	assert_int_equal(answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, "answer body"), 6);
	expect_learned(f, 4, w->peer_a, 6881);
	expect_learned(f, 4, w->peer_b, 51413);
	expect_learned(f, 6, w->peer6, 6882);

	/* New flows to the listed peers are endpoints, and so is the earlier
	 * flow, still within its inspection window. */
	dial_listed_peers(f, w, 6881, 51413, 6882);
	xdp_expect(f, &cold, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT, "earlier flow, now known");
}

static void test_http_tracker_peers_ipv4(void **state)
{
	http_tracker_peers_for(*state, &swarm_v4);
}

static void test_http_tracker_peers_ipv6(void **state)
{
	http_tracker_peers_for(*state, &swarm_v6);
}

/* BEP 15 announce answer header: action 1, transaction id, interval,
 * leechers, seeders. */
static size_t udp_announce_answer_head(uint8_t *out)
{
	memset(out, 0, 20);
	out[3] = 1;
	memcpy(out + 4, "\xde\xad\xbe\xef", 4);
	put16(out + 10, 1800);
	out[15] = 1;
	out[19] = 2;
	return 20;
}

static void udp_tracker_peers_for(struct fixture *f, const struct swarm *w)
{
	uint8_t pl[200];
	struct spec req = {.family = w->family,
	                   .src = w->client,
	                   .dst = w->tracker,
	                   .proto = IPPROTO_UDP,
	                   .sport = fresh_port(),
	                   .dport = 6969,
	                   .payload = pl};
	req.len = udp_connect(pl);
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect");
	struct spec ans = reply_of(&req);
	ans.len = udp_connect_answer(pl);
	ans.payload = pl;
	xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect answer");

	req.len = udp_announce(pl);
	put16(pl + 96, 51000);
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 announce");
	assert_int_equal(endpoint_kind(f, w->family, w->client, 51000, IPPROTO_TCP), -1);

	/* The answer's peers are in the flow's address family; this one goes
	 * through TC egress (the skb path). */
	size_t n = udp_announce_answer_head(pl);
	if (w->family == 4) {
		n += put_peer(pl + n, 4, w->peer_a, 6881);
		n += put_peer(pl + n, 4, w->peer_b, 51413);
		n += put_peer(pl + n, 4, "10.30.0.9", 6889);
	} else {
		n += put_peer(pl + n, 6, w->peer6, 6882);
		n += put_peer(pl + n, 6, "fd00:30::8", 6883);
	}
	ans.len = n;
	unsigned before = endpoint_count(f);
	tc_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 announce answer");
	/* The answer confirms the announce: its port is learned too. */
	expect_learned(f, w->family, w->client, 51000);
	if (w->family == 4) {
		assert_int_equal(endpoint_count(f) - before, 2 + 6);
		expect_learned(f, 4, w->peer_a, 6881);
		expect_learned(f, 4, w->peer_b, 51413);
		expect_learned(f, 4, "10.30.0.9", 6889);
		dial_listed_peers(f, w, 6881, 51413, 0);
	} else {
		assert_int_equal(endpoint_count(f) - before, 2 + 4);
		expect_learned(f, 6, w->peer6, 6882);
		expect_learned(f, 6, "fd00:30::8", 6883);
		struct spec t6 = {.family = 6,
		                  .src = w->client,
		                  .dst = "fd00:30::8",
		                  .proto = IPPROTO_UDP,
		                  .sport = fresh_port(),
		                  .dport = 6883,
		                  .payload = pl,
		                  .len = 100};
		mse_like(pl, 100, 5);
		xdp_expect(f, &t6, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT, "UDP to a listed peer");
	}
}

static void test_udp_tracker_peers_ipv4(void **state)
{
	udp_tracker_peers_for(*state, &swarm_v4);
}

static void test_udp_tracker_peers_ipv6(void **state)
{
	udp_tracker_peers_for(*state, &swarm_v6);
}

/* Torn, malformed and oversized peer lists: only whole entries inside the
 * packet are learned, at most 64 per list, nothing from the rest. */
static void test_tracker_garbage(void **state)
{
	struct fixture *f = *state;
	const struct swarm *w = &swarm_v4;
	uint8_t body[FRAME_MAX];
	size_t n;

	/* One exchange first, so that what the first answer of each flow
	 * teaches (the tracker, the client's port) is known already. */
	struct spec ans = http_tracker_flow(f, w);
	assert_int_equal(answer_teaches(f, &ans, http_ok, sizeof(http_ok) - 1,
	                                ITR_KIND_HTTP_TRACKER, "first answer"),
	                 3);

	/* A list cut off by the end of the segment: its two whole entries. */
	ans = http_tracker_flow(f, w);
	n = put_str(body, http_ok);
	n += put_str(body + n, "d8:intervali1800e5:peers600:");
	n += put_peer(body + n, 4, "10.30.1.1", 1001);
	n += put_peer(body + n, 4, "10.30.1.2", 1002);
	n += put_peer(body + n, 4, "10.30.1.3", 1003) - 2; /* torn third entry */
	assert_int_equal(answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, "torn list"), 4);
	expect_learned(f, 4, "10.30.1.1", 1001);
	expect_learned(f, 4, "10.30.1.2", 1002);
	assert_int_equal(endpoint_kind(f, 4, "10.30.1.3", 1003, IPPROTO_TCP), -1);

	/* Bytes the frame carries past the IP datagram are not the packet's. */
	ans = http_tracker_flow(f, w);
	n = put_str(body, http_ok);
	n += put_str(body + n, "d5:peers12:");
	n += put_peer(body + n, 4, "10.30.2.1", 2001);
	ans.payload = body;
	ans.len = n;
	uint8_t frame[FRAME_MAX];
	size_t flen = build_frame(frame, &ans);
	put_peer(frame + flen, 4, "10.30.2.2", 2002);
	unsigned count0 = endpoint_count(f);
	struct snapshot before, after;
	snap(f, &before);
	assert_int_equal(run_xdp(f, frame, flen + 6), XDP_PASS);
	snap(f, &after);
	assert_counted_in(&before, &after, ITR_DIR_INGRESS, ITR_CLASS_INTER_AS,
	                  ITR_KIND_HTTP_TRACKER, flen + 6, "list running past the datagram");
	assert_int_equal(endpoint_count(f) - count0, 2);
	expect_learned(f, 4, "10.30.2.1", 2001);
	assert_int_equal(endpoint_kind(f, 4, "10.30.2.2", 2002, IPPROTO_TCP), -1);

	/* Malformed lengths: none of these teach anything. */
	static const char *const bad[] = {
	    "d5:peers7:abcdefgh1:xe",                  /* not whole entries */
	    "d5:peers123456:abcdefabcdef",             /* six digits */
	    "d5:peers:abcdefabcdef",                   /* no length */
	    "d5:peers-6:abcdef",                       /* negative */
	    "d5:peers12abcdefabcdef",                  /* no colon */
	    "d5:peers12",                              /* ends in the length */
	    "d5:peers",                                /* ends after the key */
	    "d6:peers617:abcdefghijklmnopqrse",        /* not whole IPv6 entries */
	    "d5:peersld2:ip9:10.30.0.74:porti6881eee", /* non-compact form */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ans = http_tracker_flow(f, w);
		n = http_answer(body, bad[i], strlen(bad[i]));
		assert_int_equal(answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, bad[i]),
		                 0);
	}

	/* 100 peers in one packet: 64 learned. */
	ans = http_tracker_flow(f, w);
	n = put_str(body, http_ok);
	n += put_str(body + n, "d5:peers600:");
	for (int i = 0; i < 100; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "10.30.3.%d", i + 1);
		n += put_peer(body + n, 4, addr, (uint16_t)(3000 + i));
	}
	n += put_str(body + n, "e");
	assert_int_equal(answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, "100 peers"),
	                 2 * 64);
	expect_learned(f, 4, "10.30.3.64", 3063);
	assert_int_equal(endpoint_kind(f, 4, "10.30.3.65", 3064, IPPROTO_TCP), -1);

	/* Port 0 entries are skipped. */
	ans = http_tracker_flow(f, w);
	n = put_str(body, http_ok);
	n += put_str(body + n, "d5:peers12:");
	n += put_peer(body + n, 4, "10.30.4.1", 0);
	n += put_peer(body + n, 4, "10.30.4.2", 4002);
	n += put_str(body + n, "e");
	assert_int_equal(answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, "port 0"), 2);

	/* BEP 15: answers that are not whole entries, too short, or errors. */
	struct spec req = {.family = 4,
	                   .src = w->client,
	                   .dst = w->tracker,
	                   .proto = IPPROTO_UDP,
	                   .sport = fresh_port(),
	                   .dport = 6969,
	                   .payload = body};
	req.len = udp_connect(body);
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect");
	struct spec uans = reply_of(&req);
	uint8_t ca[16];
	assert_int_equal(answer_teaches(f, &uans, ca, udp_connect_answer(ca), ITR_KIND_UDP_TRACKER,
	                                "BEP 15 connect answer"),
	                 1); /* the tracker */
	n = udp_announce_answer_head(body);
	n += put_peer(body + n, 4, "10.30.5.1", 5001);
	uint8_t again[16];
	req.payload = again;
	req.len = udp_connect(again);
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect again");
	assert_int_equal(answer_teaches(f, &uans, body, n - 1, ITR_KIND_UDP_TRACKER,
	                                "BEP 15 answer with a torn entry"),
	                 0);
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect again");
	assert_int_equal(answer_teaches(f, &uans, body, 19, ITR_KIND_UDP_TRACKER,
	                                "BEP 15 answer shorter than its header"),
	                 0);
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect again");
	body[3] = 3; /* error */
	assert_int_equal(answer_teaches(f, &uans, body, n, ITR_KIND_UDP_TRACKER, "BEP 15 error"),
	                 0);
}

/* Only tracker flows teach, and only for a few packets. */
static void test_tracker_learning_scope(void **state)
{
	struct fixture *f = *state;
	const struct swarm *w = &swarm_v4;
	uint8_t body[300];
	size_t n = put_str(body, "HTTP/1.1 200 OK\r\n\r\nd5:peers12:");
	n += put_peer(body + n, 4, "10.30.6.1", 6001);
	n += put_peer(body + n, 4, "10.30.6.2", 6002);
	n += put_str(body + n, "e");

	/* A web page that happens to hold a bencoded peer list. */
	static const char get[] = "GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n";
	struct spec web = {.family = 4,
	                   .src = w->client,
	                   .dst = w->tracker,
	                   .proto = IPPROTO_TCP,
	                   .sport = fresh_port(),
	                   .dport = 80,
	                   .payload = get,
	                   .len = sizeof(get) - 1};
	xdp_expect(f, &web, ITR_CLASS_INTER_AS, ITR_KIND_NONE, "web request");
	struct spec page = reply_of(&web);
	assert_int_equal(answer_teaches(f, &page, body, n, ITR_KIND_NONE, "page with 5:peers"), 0);

	/* The same bytes on a UDP flow that is no tracker, and a BEP 15
	 * answer shape on one. */
	struct spec udp = {.family = 4,
	                   .src = w->tracker,
	                   .dst = w->client,
	                   .proto = IPPROTO_UDP,
	                   .sport = fresh_port(),
	                   .dport = fresh_port()};
	assert_int_equal(answer_teaches(f, &udp, body, n, ITR_KIND_NONE, "UDP with 5:peers"), 0);
	uint8_t ua[40];
	size_t un = udp_announce_answer_head(ua);
	un += put_peer(ua + un, 4, "10.30.6.3", 6003);
	udp.sport = fresh_port();
	assert_int_equal(answer_teaches(f, &udp, ua, un, ITR_KIND_NONE, "BEP 15 answer shape"), 0);

	/* A peer-wire flow: its messages are never read for peers. */
	uint8_t hs[68];
	struct spec pw = {.family = 4,
	                  .src = w->client,
	                  .dst = "10.30.0.7",
	                  .proto = IPPROTO_TCP,
	                  .sport = fresh_port(),
	                  .dport = fresh_port(),
	                  .payload = hs,
	                  .len = handshake(hs)};
	xdp_expect(f, &pw, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE, "peer wire");
	struct spec pwr = reply_of(&pw);
	assert_int_equal(
	    answer_teaches(f, &pwr, body, n, ITR_KIND_PEER_WIRE, "peer wire + 5:peers"), 0);

	/* The client's own packets on a tracker flow are not read for peers. */
	struct spec ans = http_tracker_flow(f, w);
	struct spec req = reply_of(&ans);
	req.seq = req.ack = 0;
	assert_int_equal(
	    answer_teaches(f, &req, body, n, ITR_KIND_HTTP_TRACKER, "5:peers from the client"), 0);

	/* Past ITR_TRACKER_FOLLOW packets without an announce, the flow is
	 * no longer read. */
	for (int i = 1; i < ITR_TRACKER_FOLLOW; i++)
		assert_int_equal(answer_teaches(f, &ans, "HTTP/1.1 100 Continue\r\n\r\n", 25,
		                                ITR_KIND_HTTP_TRACKER, "answer without peers"),
		                 0);
	assert_int_equal(
	    answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, "answer after the window"), 0);
	assert_int_equal(endpoint_kind(f, 4, "10.30.6.1", 6001, IPPROTO_TCP), -1);

	/* Whereas a new announce on a kept-alive connection is followed again. */
	ans = http_tracker_flow(f, w);
	req = reply_of(&ans);
	req.seq = req.ack = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(answer_teaches(f, &ans, "HTTP/1.1 100 Continue\r\n\r\n", 25,
		                                ITR_KIND_HTTP_TRACKER, "answer without peers"),
		                 0);
		assert_int_equal(answer_teaches(f, &req, http_announce_51000,
		                                sizeof(http_announce_51000) - 1,
		                                ITR_KIND_HTTP_TRACKER, "re-announce"),
		                 0);
	}
	for (int i = 1; i < ITR_TRACKER_FOLLOW; i++)
		answer_teaches(f, &ans, "HTTP/1.1 100 Continue\r\n\r\n", 25, ITR_KIND_HTTP_TRACKER,
		               "answer without peers");
	/* The first answer this test's tracker gives: the tracker and the
	 * client's port (3), and the two peers (4). */
	assert_int_equal(
	    answer_teaches(f, &ans, body, n, ITR_KIND_HTTP_TRACKER, "answer to a re-announce"),
	    3 + 4);
}

/* ---- tests: the endpoint cache cannot be poisoned ---------------------- */

/* An answer listing 64 IPv4 and 64 IPv6 peers: 256 cache entries if it
 * were believed (TCP and UDP for each). */
static size_t fake_answer(uint8_t *out, int with_status, int seed)
{
	size_t n = with_status ? put_str(out, http_ok) : 0;
	n += put_str(out + n, "d5:peers384:");
	for (int i = 0; i < 64; i++) {
		char addr[64];
		snprintf(addr, sizeof(addr), "10.30.%d.%d", 100 + seed, i + 1);
		n += put_peer(out + n, 4, addr, (uint16_t)(443 + i));
	}
	n += put_str(out + n, "6:peers61152:");
	for (int i = 0; i < 64; i++) {
		char addr[64];
		snprintf(addr, sizeof(addr), "fd00:30::%x:%x", 100 + seed, i + 1);
		n += put_peer(out + n, 6, addr, (uint16_t)(443 + i));
	}
	return n + put_str(out + n, "e");
}

static void test_poisoning(void **state)
{
	struct fixture *f = *state;
	const struct swarm *w = &swarm_v4;
	static uint8_t body[FRAME_MAX];
	const unsigned empty = endpoint_count(f);

	/* 1. One spoofed announce payload packet, no handshake, no answer:
	 * the flow is a tracker flow, but (source, P) is not learned. */
	struct spec req = {.family = 4,
	                   .src = "10.30.0.50", /* a third party's web server */
	                   .dst = w->tracker,
	                   .proto = IPPROTO_TCP,
	                   .sport = 443,
	                   .dport = 6969,
	                   .payload = http_announce_51000,
	                   .len = sizeof(http_announce_51000) - 1};
	xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "spoofed announce");
	assert_int_equal(endpoint_kind(f, 4, "10.30.0.50", 51000, IPPROTO_TCP), -1);
	assert_int_equal(endpoint_count(f), empty);

	/* 2. A fake tracker answer of 256 entries, on a flow that saw no
	 * request, with and without a status line. */
	struct spec ans = {.family = 4,
	                   .src = w->tracker,
	                   .dst = w->client,
	                   .proto = IPPROTO_TCP,
	                   .sport = 6969,
	                   .dport = fresh_port(),
	                   .payload = body};
	ans.len = fake_answer(body, 1, 0);
	xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_NONE, "answer without request");
	ans.len = fake_answer(body, 0, 0);
	xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_NONE, "bare peer list");
	assert_int_equal(endpoint_count(f), empty);

	/* 3. On the spoofed request's flow: an answer that does not
	 * acknowledge the request, one that is no "200", then the
	 * acknowledging one, which is still cut to what one flow may add. */
	ans = reply_of(&req);
	ans.payload = body;
	ans.seq = 0x20000000;
	ans.ack = 0x0bad0000;
	ans.len = fake_answer(body, 1, 1);
	xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "answer, wrong ack");
	assert_int_equal(endpoint_count(f), empty);
	ans.ack = TCP_SEQ_DEFAULT + (uint32_t)req.len;
	ans.len = fake_answer(body, 0, 1);
	memcpy(body, "HTTP/1.1 302 Moved\r\n", 20);
	xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "answer, not 200");
	assert_int_equal(endpoint_count(f), empty);

	/* 4. A spoofed BEP 15 exchange: the answer's transaction id differs. */
	uint8_t u[120];
	struct spec ureq = {.family = 4,
	                    .src = w->client,
	                    .dst = w->tracker,
	                    .proto = IPPROTO_UDP,
	                    .sport = fresh_port(),
	                    .dport = 6969,
	                    .payload = u};
	ureq.len = udp_connect(u);
	xdp_expect(f, &ureq, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 connect");
	struct spec uans = reply_of(&ureq);
	size_t un = udp_announce_answer_head(u);
	u[7] ^= 1;
	for (int i = 0; i < 10; i++)
		un += put_peer(u + un, 4, "10.30.9.9", (uint16_t)(1000 + i));
	uans.len = un;
	xdp_expect(f, &uans, ITR_CLASS_INTER_AS, ITR_KIND_UDP_TRACKER, "BEP 15 answer, wrong id");
	assert_int_equal(endpoint_count(f), empty);

	/* 5. One-way handshakes and KRPC messages teach nothing. */
	uint8_t hs[68];
	struct spec pw = {.family = 4,
	                  .src = w->client,
	                  .dst = "10.30.0.51",
	                  .proto = IPPROTO_TCP,
	                  .sport = fresh_port(),
	                  .dport = 443,
	                  .payload = hs,
	                  .len = handshake(hs)};
	for (int i = 0; i < ITR_MAX_INSPECT + 1; i++)
		xdp_expect(f, &pw, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE, "one-way handshake");
	static const char ping[] = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
	struct spec dht = {.family = 4,
	                   .src = w->client,
	                   .dst = "10.30.0.52",
	                   .proto = IPPROTO_UDP,
	                   .sport = fresh_port(),
	                   .dport = 53,
	                   .payload = ping,
	                   .len = sizeof(ping) - 1};
	for (int i = 0; i < 3; i++)
		xdp_expect(f, &dht, ITR_CLASS_INTER_AS, ITR_KIND_DHT, "one-way KRPC");
	assert_int_equal(endpoint_count(f), empty);

	/* 6. A confirmed exchange teaches, within one flow's budget: repeated
	 * request/answer pairs on one connection stop at ITR_TEACH_PER_FLOW. */
	ans.len = fake_answer(body, 1, 2);
	xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "acknowledging answer");
	unsigned taught = endpoint_count(f) - empty;
	/* The tracker, the client's port (2), 64 IPv4 peers (128), then what
	 * is left of 256 in whole peers: 62 IPv6 peers (124). */
	assert_int_equal(taught, 1 + 2 + 128 + 124);
	for (int round = 3; round < 6; round++) {
		xdp_expect(f, &req, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "re-announce");
		ans.len = fake_answer(body, 1, round);
		xdp_expect(f, &ans, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "answer again");
	}
	assert_true(endpoint_count(f) - empty <= ITR_TEACH_PER_FLOW);

	/* 7. ... and one source's budget: many flows from one "tracker". */
	unsigned before = endpoint_count(f);
	for (int flow = 0; flow < 2 * ITR_TEACH_PER_SOURCE / ITR_TEACH_PER_FLOW; flow++) {
		struct spec fr = req;
		fr.sport = fresh_port();
		xdp_expect(f, &fr, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "announce");
		struct spec fa = reply_of(&fr);
		fa.seq = 0x20000000;
		fa.ack = TCP_SEQ_DEFAULT + (uint32_t)fr.len;
		fa.payload = body;
		fa.len = fake_answer(body, 1, 10 + flow % 100);
		xdp_expect(f, &fa, ITR_CLASS_INTER_AS, ITR_KIND_HTTP_TRACKER, "answer");
	}
	assert_true(endpoint_count(f) - before <= ITR_TEACH_PER_SOURCE);
}

/* Entries age out when looked up. */
static void test_endpoint_aging(void **state)
{
	struct fixture *f = *state;
	struct timespec now;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &now), 0);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	static const struct {
		uint8_t kind;
		uint64_t age_ns;
		int known;
	} cases[] = {
	    {ITR_KIND_ENDPOINT, ITR_ENDPOINT_TTL_LISTED_NS - 60000000000ull, 1},
	    {ITR_KIND_ENDPOINT, ITR_ENDPOINT_TTL_LISTED_NS + 1000000000ull, 0},
	    {ITR_KIND_PEER_WIRE, ITR_ENDPOINT_TTL_LISTED_NS + 1000000000ull, 1},
	    {ITR_KIND_PEER_WIRE, ITR_ENDPOINT_TTL_SEEN_NS + 1000000000ull, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t port = fresh_port();
		struct itr_endpoint_key k = {
		    .port = htons(port), .proto = IPPROTO_TCP, .family = 4};
		assert_int_equal(inet_pton(AF_INET, "10.30.0.60", k.addr), 1);
		struct itr_endpoint_info info = {.last_seen_ns = now_ns - cases[i].age_ns,
		                                 .kind = cases[i].kind};
		assert_int_equal(bpf_map__update_elem(f->skel->maps.endpoints, &k, sizeof(k), &info,
		                                      sizeof(info), BPF_ANY),
		                 0);
		struct spec syn = {.family = 4,
		                   .src = "10.10.1.5",
		                   .dst = "10.30.0.60",
		                   .proto = IPPROTO_TCP,
		                   .sport = fresh_port(),
		                   .dport = port,
		                   .tcp_flags = 0x02};
		xdp_expect(f, &syn, ITR_CLASS_INTER_AS,
		           cases[i].known ? ITR_KIND_ENDPOINT : ITR_KIND_NONE, "SYN to aged entry");
		assert_int_equal(endpoint_kind(f, 4, "10.30.0.60", port, IPPROTO_TCP),
		                 cases[i].known ? cases[i].kind : -1);
	}
}

/* ---- tests: DHT and uTP on one socket ---------------------------------- */

static void test_dht_utp_shared(void **state)
{
	struct fixture *f = *state;
	const uint32_t cls = ITR_CLASS_INTER_AS;
	uint8_t pl[100];
	static const char ping[] = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
	static const char pong[] = "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
	struct spec a = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.30.0.7",
	                 .proto = IPPROTO_UDP,
	                 .sport = 6881,
	                 .dport = 6882};
	struct spec b = reply_of(&a);

	a.payload = ping;
	a.len = sizeof(ping) - 1;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "DHT ping");
	b.payload = pong;
	b.len = sizeof(pong) - 1;
	xdp_expect(f, &b, cls, ITR_KIND_DHT, "DHT pong");

	/* A uTP SYN, twice (a retry): not yet proof, counted with the flow. */
	a.payload = pl;
	a.len = utp_header(pl, 4, 0);
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "uTP SYN on the DHT flow");
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "uTP SYN retried");
	/* The STATE answer proves uTP: counted as uTP from this packet on. */
	b.payload = pl;
	b.len = utp_header(pl, 2, 4242);
	xdp_expect(f, &b, cls, ITR_KIND_UTP, "uTP STATE on the DHT flow");
	a.len = utp_header(pl, 0, 777);
	memset(pl + 20, 0x5a, 60);
	a.len = 80;
	xdp_expect(f, &a, cls, ITR_KIND_UTP, "uTP DATA");
	/* DHT keeps flowing on the same socket pair and is counted as DHT. */
	a.payload = ping;
	a.len = sizeof(ping) - 1;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "DHT ping amid uTP");
	b.payload = pl;
	b.len = utp_header(pl, 2, 999);
	tc_expect(f, &b, cls, ITR_KIND_UTP, "uTP STATE through TC");
	b.payload = pong;
	b.len = sizeof(pong) - 1;
	tc_expect(f, &b, cls, ITR_KIND_DHT, "DHT pong through TC");

	/* Another DHT flow: a 20-byte DNS-like packet that passes the uTP SYN
	 * check, sent twice, proves nothing (both ends being known DHT nodes
	 * does not count here). */
	static const uint8_t dns20[] = {0x41, 0x00, 0x00, 0x00, 0, 1, 0, 0, 0, 0,
	                                0,    0,    1,    'a',  0, 0, 0, 1, 0, 1};
	a.sport = fresh_port();
	a.payload = ping;
	a.len = sizeof(ping) - 1;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "DHT ping");
	a.payload = dns20;
	a.len = sizeof(dns20);
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "SYN-like packet on a DHT flow");
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "SYN-like packet again");

	/* A third, caught in mid-connection: DATA from one end is not proof,
	 * however many; the other end's packet with the neighbouring
	 * connection id acknowledging that DATA is. */
	a.sport = fresh_port();
	b = reply_of(&a);
	a.payload = ping;
	a.len = sizeof(ping) - 1;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "DHT ping");
	a.payload = pl;
	utp_packet(pl, 0, 5, UTP_CONN + 1, 300, 77);
	memset(pl + 20, 0x33, 30);
	a.len = 50;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "one uTP DATA on a DHT flow");
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "second uTP DATA");
	uint8_t st[20];
	b.payload = st;
	b.len = utp_packet(st, 2, 9, UTP_CONN + 7, 77, 300);
	xdp_expect(f, &b, cls, ITR_KIND_DHT, "STATE with an unrelated connection id");
	b.len = utp_packet(st, 2, 9, UTP_CONN, 77, 1300);
	xdp_expect(f, &b, cls, ITR_KIND_DHT, "STATE acknowledging something else");
	b.len = utp_packet(st, 2, 9, UTP_CONN, 77, 300);
	xdp_expect(f, &b, cls, ITR_KIND_UTP, "STATE acknowledging the DATA");
	xdp_expect(f, &a, cls, ITR_KIND_UTP, "uTP DATA, proven");
	/* Something neither KRPC nor uTP on a DHT flow stays DHT. */
	a.sport = fresh_port();
	a.payload = ping;
	a.len = sizeof(ping) - 1;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "DHT ping");
	mse_like(pl, 64, 11);
	pl[0] = 0xff;
	a.payload = pl;
	a.len = 64;
	xdp_expect(f, &a, cls, ITR_KIND_DHT, "junk on a DHT flow");
}

/* ---- tests: locality classes ----------------------------------------- */

static void test_classes(void **state)
{
	struct fixture *f = *state;
	uint8_t pl[80];
	size_t len = handshake(pl);
	static const struct {
		int family;
		const char *a, *b;
		uint32_t cls;
		uint32_t pid_a, pid_b;
		const char *what;
	} cases[] = {
	    {4, "10.10.1.5", "10.10.1.6", ITR_CLASS_INTRA_PID, 1, 1, "same PID"},
	    {4, "10.10.1.5", "10.10.3.9", ITR_CLASS_INTRA_LOC, 1, 3, "same AS and LOC"},
	    {4, "10.10.1.5", "10.10.2.9", ITR_CLASS_INTRA_AS, 1, 2, "same AS"},
	    {4, "10.20.1.1", "10.20.200.1", ITR_CLASS_INTRA_AS, 10, 11, "b-edge inside b-core"},
	    {4, "10.20.200.1", "10.20.201.1", ITR_CLASS_INTRA_PID, 11, 11, "both b-edge"},
	    {4, "10.10.1.5", "10.30.0.9", ITR_CLASS_INTER_AS, 1, 20, "other AS"},
	    {4, "10.10.1.5", "192.0.2.1", ITR_CLASS_UNKNOWN, 1, 0, "unmatched end"},
	    {6, "fd00:10:1::5", "fd00:10:1::6", ITR_CLASS_INTRA_PID, 1, 1, "same PID"},
	    {6, "fd00:10:1::5", "fd00:10:3::9", ITR_CLASS_INTRA_LOC, 1, 3, "same AS and LOC"},
	    {6, "fd00:20:1::1", "fd00:20:8001::1", ITR_CLASS_INTRA_AS, 10, 11,
	     "b-edge inside b-core"},
	    {6, "fd00:10:1::5", "fd00:30::9", ITR_CLASS_INTER_AS, 1, 20, "other AS"},
	    {6, "2001:db8::1", "fd00:30::9", ITR_CLASS_UNKNOWN, 0, 20, "unmatched end"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spec s = {.family = cases[i].family,
		                 .src = cases[i].a,
		                 .dst = cases[i].b,
		                 .proto = IPPROTO_TCP,
		                 .sport = fresh_port(),
		                 .dport = 6881,
		                 .payload = pl,
		                 .len = len};
		uint64_t m_before = matrix_packets(f, cases[i].pid_a, cases[i].pid_b);
		xdp_expect(f, &s, cases[i].cls, ITR_KIND_PEER_WIRE, cases[i].what);
		assert_int_equal(matrix_packets(f, cases[i].pid_a, cases[i].pid_b), m_before + 1);
	}
}

/* ---- tests: look-alikes stay NONE ------------------------------------- */

static void send_n_expect_none(struct fixture *f, struct spec *s, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		xdp_expect(f, s, ITR_CLASS_INTER_AS, ITR_KIND_NONE, what);
}

static void test_lookalikes(void **state)
{
	struct fixture *f = *state;
	uint8_t pl[1300];
	struct spec s = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.30.0.7",
	                 .proto = IPPROTO_UDP,
	                 .payload = pl};

	/* DNS query for example.com. */
	static const uint8_t dns[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0,   0,
	                              0,    0,    7,    'e',  'x', 'a', 'm', 'p', 'l', 'e',
	                              3,    'c',  'o',  'm',  0,   0,   1,   0,   1};
	memcpy(pl, dns, sizeof(dns));
	s.len = sizeof(dns);
	s.sport = fresh_port();
	s.dport = 53;
	send_n_expect_none(f, &s, ITR_MAX_INSPECT + 1, "DNS query");

	/* A 20-byte DNS query with ID 0x4100 passes a naive uTP SYN check; its
	 * retry (same flow) must not make it uTP either. */
	static const uint8_t dns20[] = {0x41, 0x00, 0x00, 0x00, 0, 1, 0, 0, 0, 0,
	                                0,    0,    1,    'a',  0, 0, 0, 1, 0, 1};
	memcpy(pl, dns20, sizeof(dns20));
	s.len = sizeof(dns20);
	s.sport = fresh_port();
	send_n_expect_none(f, &s, 3, "20-byte DNS query looking like a uTP SYN");

	/* QUIC initial (long header) and short header packets. */
	memset(pl, 0, 1200);
	pl[0] = 0xc3;
	memcpy(pl + 1, "\x00\x00\x00\x01\x08\x83\x94\xc8\xf0\x3e\x51\x57\x08", 13);
	for (int i = 14; i < 1200; i++)
		pl[i] = (uint8_t)(i * 31 + 7);
	s.len = 1200;
	s.sport = fresh_port();
	s.dport = 443;
	send_n_expect_none(f, &s, 2, "QUIC initial");
	pl[0] = 0x41; /* short header; first byte looks like uTP SYN v1 */
	for (int i = 1; i < 60; i++)
		pl[i] = (uint8_t)(i * 57 + 3);
	s.len = 60;
	s.sport = fresh_port();
	send_n_expect_none(f, &s, ITR_MAX_INSPECT + 1, "QUIC short header");

	/* Bencoded or 'd'-led payloads that are no KRPC message. */
	static const char *const not_krpc[] = {
	    "d8:intervali1800e5:peers0:e",                                /* tracker answer */
	    "d1:md11:ut_metadatai1ee1:pi6881ee",                          /* extension handshake */
	    "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa",          /* cut short */
	    "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qexx", /* trailing bytes */
	    "d1:rd2:id20:mnopqrstuvwxyz123456e1:y1:re",                   /* no "t" */
	    "d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe",            /* query without "q" */
	    "d1:t2:aa1:y1:re",                                            /* response without "r" */
	    "data: some text protocol line\r\n",
	};
	s.dport = 6881;
	for (size_t i = 0; i < sizeof(not_krpc) / sizeof(not_krpc[0]); i++) {
		s.payload = not_krpc[i];
		s.len = strlen(not_krpc[i]);
		s.sport = fresh_port();
		send_n_expect_none(f, &s, ITR_MAX_INSPECT + 1, not_krpc[i]);
	}
	s.payload = pl;

	/* WireGuard handshake initiation (first byte 1: uTP DATA, version 1,
	 * no extension) and its response (first byte 2: version 2). */
	memset(pl, 0, 148);
	pl[0] = 1;
	for (int i = 4; i < 148; i++)
		pl[i] = (uint8_t)(i * 29 + 1);
	s.len = 148;
	s.sport = fresh_port();
	s.dport = 51820;
	xdp_expect(f, &s, ITR_CLASS_INTER_AS, ITR_KIND_NONE, "WireGuard initiation");
	struct spec wr = reply_of(&s);
	uint8_t resp[92];
	memset(resp, 0, sizeof(resp));
	resp[0] = 2;
	for (int i = 4; i < 92; i++)
		resp[i] = (uint8_t)(i * 13 + 5);
	wr.payload = resp;
	wr.len = sizeof(resp);
	xdp_expect(f, &wr, ITR_CLASS_INTER_AS, ITR_KIND_NONE, "WireGuard response");
	send_n_expect_none(f, &s, ITR_MAX_INSPECT, "WireGuard initiation again");

	/* A plain 20-byte UDP packet. */
	for (int i = 0; i < 20; i++)
		pl[i] = (uint8_t)(0x30 + i);
	s.len = 20;
	s.sport = fresh_port();
	s.dport = 9999;
	send_n_expect_none(f, &s, 2, "20-byte UDP");

	/* A BEP 15 announce shape to a port never seen as a tracker. */
	s.len = udp_announce(pl);
	s.sport = fresh_port();
	s.dport = fresh_port();
	send_n_expect_none(f, &s, 1, "announce-shaped UDP to unknown endpoint");

	/* HTTP GET that is not an announce, and one with info_hash but no
	 * announce path. */
	static const char get[] = "GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n";
	static const char get2[] = "GET /search?info_hash=abc HTTP/1.1\r\n\r\n";
	s.proto = IPPROTO_TCP;
	s.payload = get;
	s.len = sizeof(get) - 1;
	s.sport = fresh_port();
	s.dport = 80;
	send_n_expect_none(f, &s, 1, "HTTP GET");
	s.payload = get2;
	s.len = sizeof(get2) - 1;
	s.sport = fresh_port();
	send_n_expect_none(f, &s, 1, "HTTP GET with info_hash outside /announce");

	/* TLS ClientHello. */
	static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00,
	                                0x3c, 0x03, 0x03, 0x13, 0x13, 0x13, 0x13};
	memset(pl, 0x42, 0x45);
	memcpy(pl, hello, sizeof(hello));
	s.payload = pl;
	s.len = 0x45;
	s.sport = fresh_port();
	s.dport = 443;
	send_n_expect_none(f, &s, ITR_MAX_INSPECT + 1, "TLS ClientHello");

	/* After the inspection window a flow is settled: a handshake-looking
	 * payload later does not turn it into BitTorrent. */
	s.len = handshake(pl);
	send_n_expect_none(f, &s, 1, "signature after the inspection window");
}

/* ---- tests: malformed frames pass uncounted --------------------------- */

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[FRAME_MAX], pl[64];
	memset(pl, 0x55, sizeof(pl));
	struct spec s = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.30.0.7",
	                 .proto = IPPROTO_UDP,
	                 .sport = 1000,
	                 .dport = 2000,
	                 .payload = pl,
	                 .len = sizeof(pl)};
	size_t len;

	/* Cut Ethernet: a VLAN tag announced but missing. */
	s.vlans = 1;
	build_frame(frame, &s);
	xdp_expect_uncounted(f, frame, 16, "cut VLAN tag");
	s.vlans = 0;

	/* Cut IP header. */
	build_frame(frame, &s);
	xdp_expect_uncounted(f, frame, 14 + 12, "cut IPv4 header");

	/* Bad IHL. */
	len = build_frame(frame, &s);
	frame[14] = 0x44;
	xdp_expect_uncounted(f, frame, len, "IPv4 IHL 4");

	/* Non-first IPv4 fragment. */
	len = build_frame(frame, &s);
	put16(frame + 14 + 6, 0x2000 | 185); /* MF, offset 1480 */
	xdp_expect_uncounted(f, frame, len, "non-first IPv4 fragment");

	/* Cut TCP header. */
	s.proto = IPPROTO_TCP;
	s.len = 0;
	len = build_frame(frame, &s);
	xdp_expect_uncounted(f, frame, 14 + 20 + 10, "cut TCP header");
	s.len = sizeof(pl);
	s.proto = IPPROTO_UDP;

	/* Not IP at all (ARP). */
	len = build_frame(frame, &s);
	put16(frame + 12, 0x0806);
	xdp_expect_uncounted(f, frame, len, "ARP");

	/* ICMP. */
	len = build_frame(frame, &s);
	frame[14 + 9] = IPPROTO_ICMP;
	xdp_expect_uncounted(f, frame, len, "ICMP");

	/* IPv6: an extension chain running off the end of the frame. */
	s.family = 6;
	s.src = "fd00:10:1::5";
	s.dst = "fd00:30::7";
	len = build_frame(frame, &s);
	frame[14 + 6] = 0; /* hop-by-hop */
	frame[14 + 40] = IPPROTO_DSTOPTS;
	frame[14 + 41] = 200; /* 1608 bytes: far beyond the frame */
	xdp_expect_uncounted(f, frame, len, "IPv6 ext chain off the end");

	/* IPv6 ESP: cannot be parsed further. */
	len = build_frame(frame, &s);
	frame[14 + 6] = 50;
	xdp_expect_uncounted(f, frame, len, "IPv6 ESP");

	/* IPv6 non-first fragment. */
	uint8_t frag[FRAME_MAX];
	len = build_frame(frame, &s);
	memcpy(frag, frame, 14 + 40);
	frag[14 + 6] = IPPROTO_FRAGMENT;
	memset(frag + 54, 0, 8);
	frag[54] = IPPROTO_UDP;
	put16(frag + 56, 1480); /* offset 185*8, M=0 */
	memcpy(frag + 62, frame + 54, len - 54);
	put16(frag + 14 + 4, (uint16_t)(len - 54 + 8));
	xdp_expect_uncounted(f, frag, len + 8, "non-first IPv6 fragment");

	/* ...whereas the first fragment behind hop-by-hop and a fragment header
	 * is parsed and counted. */
	uint8_t first[FRAME_MAX];
	memcpy(first, frame, 14 + 40);
	first[14 + 6] = 0; /* hop-by-hop, 8 bytes */
	memset(first + 54, 0, 8);
	first[54] = IPPROTO_FRAGMENT;
	memset(first + 62, 0, 8);
	first[62] = IPPROTO_UDP;
	put16(first + 64, 1); /* offset 0, more fragments */
	memcpy(first + 70, frame + 54, len - 54);
	put16(first + 14 + 4, (uint16_t)(len - 54 + 16));
	struct snapshot before, after;
	snap(f, &before);
	assert_int_equal(run_xdp(f, first, len + 16), XDP_PASS);
	snap(f, &after);
	assert_counted_in(&before, &after, ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_NONE,
	                  len + 16, "first IPv6 fragment behind extension headers");
}

/* ---- tests: TC egress policy ------------------------------------------ */

static uint16_t ipv4_header_checksum_ok(const uint8_t *ip)
{
	return csum16(ip, (ip[0] & 0x0f) * 4) == 0;
}

static void set_policy(struct fixture *f, uint32_t cls, uint32_t flags, uint8_t dscp, uint32_t prio,
                       uint32_t mark)
{
	struct itr_policy p = {.flags = flags, .dscp = dscp, .priority = prio, .mark = mark};
	assert_int_equal(
	    bpf_map__update_elem(f->skel->maps.policy, &cls, sizeof(cls), &p, sizeof(p), BPF_ANY),
	    0);
}

static void test_tc_policy(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[FRAME_MAX], pl[80];
	struct tc_out *out = malloc(sizeof(*out));
	struct snapshot before, after;
	assert_non_null(out);

	/* Default policy: a BitTorrent packet is counted, bytes untouched. */
	struct spec s = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.10.1.6",
	                 .proto = IPPROTO_TCP,
	                 .sport = fresh_port(),
	                 .dport = fresh_port(),
	                 .tos = 0x01,
	                 .payload = pl,
	                 .len = handshake(pl)};
	size_t len = build_frame(frame, &s);
	snap(f, &before);
	run_tc(f, frame, len, out);
	snap(f, &after);
	assert_int_equal(out->retval, TC_ACT_OK);
	assert_counted_in(&before, &after, ITR_DIR_EGRESS, ITR_CLASS_INTRA_PID, ITR_KIND_PEER_WIRE,
	                  len, "TC default policy");
	assert_int_equal(out->len, len);
	assert_memory_equal(out->data, frame, len);
	assert_int_equal(out->ctx.priority, 0);
	assert_int_equal(out->ctx.mark, 0);

	/* Policy on INTRA_PID: DSCP 46 (EF), priority 1:10, mark 0x42. */
	set_policy(f, ITR_CLASS_INTRA_PID,
	           ITR_POLICY_SET_DSCP | ITR_POLICY_SET_PRIORITY | ITR_POLICY_SET_MARK, 46, 0x10010,
	           0x42);
	run_tc(f, frame, len, out);
	assert_int_equal(out->retval, TC_ACT_OK);
	assert_int_equal(out->ctx.priority, 0x10010);
	assert_int_equal(out->ctx.mark, 0x42);
	assert_int_equal(out->data[14 + 1], 46 << 2 | 0x01); /* ECN kept */
	assert_true(ipv4_header_checksum_ok(out->data + 14));
	assert_memory_not_equal(out->data + 14 + 10, frame + 14 + 10, 2);
	assert_memory_equal(out->data + 14 + 12, frame + 14 + 12, len - 26); /* rest intact */

	/* Same with a VLAN tag. */
	s.vlans = 1;
	len = build_frame(frame, &s);
	run_tc(f, frame, len, out);
	assert_int_equal(out->data[18 + 1], 46 << 2 | 0x01);
	assert_true(ipv4_header_checksum_ok(out->data + 18));
	s.vlans = 0;

	/* IPv4 with options (IHL 6): the checksum still covers the whole
	 * header and stays right. */
	uint8_t opt[FRAME_MAX];
	len = build_frame(frame, &s);
	memcpy(opt, frame, 14 + 20);
	memcpy(opt + 14 + 20, "\x01\x01\x01\x00", 4); /* NOP NOP NOP EOL */
	memcpy(opt + 14 + 24, frame + 14 + 20, len - 34);
	opt[14] = 0x46;
	put16(opt + 14 + 2, (uint16_t)(len - 14 + 4));
	opt[14 + 10] = opt[14 + 11] = 0;
	put16(opt + 14 + 10, csum16(opt + 14, 24));
	assert_true(ipv4_header_checksum_ok(opt + 14));
	run_tc(f, opt, len + 4, out);
	assert_int_equal(out->retval, TC_ACT_OK);
	assert_int_equal(out->data[14 + 1], 46 << 2 | 0x01);
	assert_true(ipv4_header_checksum_ok(out->data + 14));
	assert_int_equal(out->ctx.mark, 0x42);

	/* Non-BitTorrent traffic in the same class is never touched. */
	static const char get[] = "GET /index.html HTTP/1.1\r\n\r\n";
	struct spec plain = s;
	plain.sport = fresh_port();
	plain.dport = fresh_port(); /* s.dport is now a known peer-wire endpoint */
	plain.payload = get;
	plain.len = sizeof(get) - 1;
	len = build_frame(frame, &plain);
	run_tc(f, frame, len, out);
	assert_int_equal(out->retval, TC_ACT_OK);
	assert_memory_equal(out->data, frame, len);
	assert_int_equal(out->ctx.priority, 0);
	assert_int_equal(out->ctx.mark, 0);

	/* IPv6: traffic class rewritten, ECN kept, flow label intact. */
	struct spec s6 = {.family = 6,
	                  .src = "fd00:10:1::5",
	                  .dst = "fd00:10:1::6",
	                  .proto = IPPROTO_TCP,
	                  .sport = fresh_port(),
	                  .dport = fresh_port(),
	                  .tos = 0x02,
	                  .payload = pl,
	                  .len = handshake(pl)};
	len = build_frame(frame, &s6);
	frame[14 + 1] |= 0x0a; /* flow label bits */
	run_tc(f, frame, len, out);
	uint8_t tc = (uint8_t)(out->data[14] << 4 | out->data[15] >> 4);
	assert_int_equal(tc, 46 << 2 | 0x02);
	assert_int_equal(out->data[14] >> 4, 6);
	assert_int_equal(out->data[15] & 0x0f, 0x0a);
	assert_memory_equal(out->data + 16, frame + 16, len - 16);
	assert_int_equal(out->ctx.mark, 0x42);

	/* Drop policy for INTER_AS BitTorrent. */
	set_policy(f, ITR_CLASS_INTER_AS, ITR_POLICY_DROP, 0, 0, 0);
	struct spec d = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.30.0.6",
	                 .proto = IPPROTO_TCP,
	                 .sport = fresh_port(),
	                 .dport = fresh_port(),
	                 .payload = pl,
	                 .len = handshake(pl)};
	len = build_frame(frame, &d);
	run_tc(f, frame, len, out);
	assert_int_equal(out->retval, TC_ACT_SHOT);

	/* A flow known only by its endpoint (an MSE flow to a learned peer)
	 * is counted but left alone, unless the policy opts in. */
	struct itr_endpoint_key k = {.port = htons(6881), .proto = IPPROTO_TCP, .family = 4};
	assert_int_equal(inet_pton(AF_INET, "10.30.0.6", k.addr), 1);
	struct timespec now;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &now), 0);
	struct itr_endpoint_info info = {.last_seen_ns = (uint64_t)now.tv_sec * 1000000000ull +
	                                                 (uint64_t)now.tv_nsec,
	                                 .kind = ITR_KIND_ENDPOINT};
	assert_int_equal(bpf_map__update_elem(f->skel->maps.endpoints, &k, sizeof(k), &info,
	                                      sizeof(info), BPF_ANY),
	                 0);
	d.sport = fresh_port();
	d.dport = 6881;
	mse_like(pl, 80, 9);
	d.len = 80;
	len = build_frame(frame, &d);
	snap(f, &before);
	run_tc(f, frame, len, out);
	snap(f, &after);
	assert_int_equal(out->retval, TC_ACT_OK);
	assert_counted_in(&before, &after, ITR_DIR_EGRESS, ITR_CLASS_INTER_AS, ITR_KIND_ENDPOINT,
	                  len, "endpoint-only flow, default policy");
	set_policy(f, ITR_CLASS_INTER_AS, ITR_POLICY_DROP | ITR_POLICY_ENDPOINT, 0, 0, 0);
	run_tc(f, frame, len, out);
	assert_int_equal(out->retval, TC_ACT_SHOT);
	free(out);
}

/* ---- tests: what a packet counts for ------------------------------------ */

/* An IPv4 TCP frame of `len` bytes (a peer-wire handshake first in its
 * payload, zeros after), for frames larger than build_frame's. */
static size_t big_tcp_frame(uint8_t *out, size_t len, uint16_t sport)
{
	memset(out, 0, len);
	memcpy(out, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(out + 12, ETH_P_IP);
	uint8_t *ip = out + 14;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(len - 14));
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	assert_int_equal(inet_pton(AF_INET, "10.10.1.5", ip + 12), 1);
	assert_int_equal(inet_pton(AF_INET, "10.30.0.7", ip + 16), 1);
	put16(ip + 10, csum16(ip, 20));
	uint8_t *th = ip + 20;
	put16(th, sport);
	put16(th + 2, 6881);
	th[12] = 5 << 4;
	th[13] = 0x18;
	handshake(th + 20);
	return len;
}

static uint64_t slot_sum(const struct snapshot *a, const struct snapshot *b, uint32_t idx,
                         int bytes)
{
	return bytes ? b->slot[idx].bytes - a->slot[idx].bytes
	             : b->slot[idx].packets - a->slot[idx].packets;
}

/* An XDP multi-buffer frame is counted with all its bytes; a GSO
 * super-packet through TC as its segments, with the headers each repeats. */
static void test_counting_big_packets(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[9000];
	struct snapshot before, after;
	const uint32_t idx =
	    itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE);

	/* 9000 bytes (a jumbo frame): BPF_PROG_TEST_RUN puts what does not fit
	 * a page into fragments, as a multi-buffer driver would. */
	size_t len = big_tcp_frame(frame, sizeof(frame), fresh_port());
	snap(f, &before);
	assert_int_equal(run_xdp(f, frame, len), XDP_PASS);
	snap(f, &after);
	assert_int_equal(slot_sum(&before, &after, idx, 0), 1);
	assert_int_equal(slot_sum(&before, &after, idx, 1), len);

	/* GSO: 2 segments of 1400 payload bytes in one skb. */
	len = big_tcp_frame(frame, 14 + 20 + 20 + 2 * 1400, fresh_port());
	struct __sk_buff ctx_in = {.gso_segs = 2, .gso_size = 1400};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
	            .ctx_in = &ctx_in, .ctx_size_in = sizeof(ctx_in), .repeat = 1);
	const uint32_t eidx =
	    itr_counter_index(ITR_DIR_EGRESS, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE);
	snap(f, &before);
	assert_int_equal(bpf_prog_test_run_opts(f->tc_fd, &opts), 0);
	snap(f, &after);
	assert_int_equal(opts.retval, TC_ACT_OK);
	assert_int_equal(slot_sum(&before, &after, eidx, 0), 2);
	assert_int_equal(slot_sum(&before, &after, eidx, 1), len + 14 + 20 + 20);
}

/* ---- tests: network map reload ---------------------------------------- */

static void test_generation_bump(void **state)
{
	struct fixture *f = *state;
	uint8_t pl[80];
	struct spec s = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.10.2.9",
	                 .proto = IPPROTO_TCP,
	                 .sport = fresh_port(),
	                 .dport = fresh_port(),
	                 .payload = pl,
	                 .len = handshake(pl)};
	xdp_expect(f, &s, ITR_CLASS_INTRA_AS, ITR_KIND_PEER_WIRE, "before reload");

	/* 10.10.2.0/24 moves into a-metro1 (PID 1); without a generation bump
	 * the cached verdict stays. */
	lpm4_add(f, "10.10.2.0", 24, 1, 64500, 1);
	xdp_expect(f, &s, ITR_CLASS_INTRA_AS, ITR_KIND_PEER_WIRE, "map changed, same generation");

	uint32_t zero = 0;
	struct itr_config cfg = {0};
	assert_int_equal(
	    bpf_map__lookup_elem(f->skel->maps.config, &zero, sizeof(zero), &cfg, sizeof(cfg), 0),
	    0);
	cfg.generation++;
	assert_int_equal(bpf_map__update_elem(f->skel->maps.config, &zero, sizeof(zero), &cfg,
	                                      sizeof(cfg), BPF_ANY),
	                 0);
	xdp_expect(f, &s, ITR_CLASS_INTRA_PID, ITR_KIND_PEER_WIRE, "after generation bump");
	/* The two packets counted under the old map stay with its PIDs (the
	 * second was still unfolded when the flow was located again), the
	 * one after the bump goes to the new ones. */
	assert_int_equal(matrix_cell(f, 1, 2, 0), 2);
	assert_int_equal(matrix_packets(f, 1, 1), 1);
	assert_int_equal(matrix_cell(f, 1, 2, 0), 2);
}

/* ---- tests: the matrix through the flows' unfolded counts -------------- */

/* A flow's first BitTorrent packet goes to the matrix at once; later ones
 * wait in the flow entry, by direction, until a fold moves them, whole
 * and once (a second fold adds nothing), for IPv4 and IPv6 flows alike. */
static void test_matrix_fold(void **state)
{
	struct fixture *f = *state;
	uint8_t pl[80], data[64] = {0, 0, 0, 40, 7};
	static const struct {
		int family;
		const char *a, *b;
		uint32_t pid_a, pid_b;
	} flows[] = {{4, "10.10.1.5", "10.30.0.9", 1, 20},
	             {6, "fd00:10:1::5", "fd00:30::9", 1, 20}};
	for (size_t i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
		struct spec fwd = {.family = flows[i].family,
		                   .src = flows[i].a,
		                   .dst = flows[i].b,
		                   .proto = IPPROTO_TCP,
		                   .sport = fresh_port(),
		                   .dport = 6881,
		                   .payload = pl,
		                   .len = handshake(pl)};
		struct spec back = fwd;
		back.src = fwd.dst;
		back.dst = fwd.src;
		back.sport = fwd.dport;
		back.dport = fwd.sport;
		uint8_t frame[FRAME_MAX];
		fold(f);
		uint64_t ab = matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 0);
		uint64_t ba = matrix_cell(f, flows[i].pid_b, flows[i].pid_a, 0);
		uint64_t ab_bytes = matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 1);

		xdp_expect(f, &fwd, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE, "handshake");
		assert_int_equal(matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 0), ab + 1);
		xdp_expect(f, &back, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE, "answer");
		fwd.payload = back.payload = data;
		fwd.len = back.len = sizeof(data);
		for (int k = 0; k < 3; k++)
			xdp_expect(f, &fwd, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE, "piece");
		/* Not in the matrix yet: waiting in the flow entry. */
		assert_int_equal(matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 0), ab + 1);
		assert_int_equal(matrix_cell(f, flows[i].pid_b, flows[i].pid_a, 0), ba);
		/* 10.10.1.5 / fd00:10:1::5 sorts lower: it is the "lo" end. */
		assert_int_equal(unfolded_packets(f, ITR_FLOW_LO_TO_HI), 3);
		assert_int_equal(unfolded_packets(f, ITR_FLOW_HI_TO_LO), 1);

		fold(f);
		assert_int_equal(unfolded_packets(f, ITR_FLOW_LO_TO_HI), 0);
		assert_int_equal(unfolded_packets(f, ITR_FLOW_HI_TO_LO), 0);
		assert_int_equal(matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 0), ab + 4);
		assert_int_equal(matrix_cell(f, flows[i].pid_b, flows[i].pid_a, 0), ba + 1);
		size_t hs_len = build_frame(frame, &(struct spec){.family = fwd.family,
		                                                  .src = fwd.src,
		                                                  .dst = fwd.dst,
		                                                  .proto = IPPROTO_TCP,
		                                                  .payload = pl,
		                                                  .len = handshake(pl)});
		size_t piece_len = build_frame(frame, &fwd);
		assert_int_equal(matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 1),
		                 ab_bytes + hs_len + 3 * piece_len);
		fold(f);
		assert_int_equal(matrix_cell(f, flows[i].pid_a, flows[i].pid_b, 0), ab + 4);
		assert_int_equal(matrix_cell(f, flows[i].pid_b, flows[i].pid_a, 0), ba + 1);
	}
}

/* A packet that leaves a flow's unfolded bytes at half their room folds
 * the flow at once (so the packed fields never overflow into each other). */
static void test_matrix_fold_when_full(void **state)
{
	struct fixture *f = *state;
	uint8_t pl[80], frame[FRAME_MAX];
	struct spec s = {.family = 4,
	                 .src = "10.10.1.5",
	                 .dst = "10.30.0.9",
	                 .proto = IPPROTO_TCP,
	                 .sport = fresh_port(),
	                 .dport = 6881,
	                 .payload = pl,
	                 .len = handshake(pl)};
	xdp_expect(f, &s, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE, "handshake");
	assert_int_equal(matrix_cell(f, 1, 20, 0), 1);

	/* The flow's entry as if it had counted 5 packets and nearly 2^39
	 * bytes since the last fold. */
	struct itr_flow_key_v4 k;
	struct itr_flow_verdict v;
	int fd = bpf_map__fd(f->skel->maps.flows_v4);
	assert_int_equal(bpf_map_get_next_key(fd, NULL, &k), 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &v), 0);
	const uint64_t near_full = (1ull << 39) - 100;
	v.unfolded[ITR_FLOW_LO_TO_HI] = itr_unfolded_pack(5, near_full);
	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_EXIST), 0);

	size_t len = build_frame(frame, &s);
	assert_int_equal(run_xdp(f, frame, len), XDP_PASS);
	/* Folded by the packet itself: no fold program ran. */
	assert_int_equal(matrix_cell(f, 1, 20, 0), 1 + 5 + 1);
	assert_int_equal(unfolded_packets(f, ITR_FLOW_LO_TO_HI), 0);
	assert_true(matrix_cell(f, 1, 20, 1) > near_full + len);
}

/* ---- tests: maps are pinned where asked, with BTF ------------------- */

static void test_pins(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {ITR_MAP_LPM_V4, ITR_MAP_LPM_V6,    ITR_MAP_FLOWS_V4,
	                                    ITR_MAP_FLOWS,  ITR_MAP_ENDPOINTS, ITR_MAP_COUNTERS,
	                                    ITR_MAP_MATRIX, ITR_MAP_POLICY,    ITR_MAP_CONFIG};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", f->pin_dir, names[i]);
		int fd = bpf_obj_get(path);
		assert_true(fd >= 0);
		struct bpf_map_info info = {0};
		uint32_t len = sizeof(info);
		assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
		assert_true(info.btf_id != 0);
		assert_true(info.btf_value_type_id != 0);
		close(fd);
	}
}

int main(void)
{
	/* Without root every test skips (or fails under CI=true) in setup. */
	if (geteuid() == 0 && itr_test_private_bpffs() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kinds_ipv4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kinds_ipv6, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_classes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_tracker_peers_ipv4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_tracker_peers_ipv6, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_tracker_peers_ipv4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_tracker_peers_ipv6, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tracker_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tracker_learning_scope, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dht_utp_shared, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poisoning, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_endpoint_aging, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counting_big_packets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookalikes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tc_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_generation_bump, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_matrix_fold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_matrix_fold_when_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
