/* bench_xdp.c - per-packet cost of itracker's XDP program.
 *
 * Measures, with BPF_PROG_TEST_RUN, the ns per packet of
 *   - an empty XDP program (two instructions: r0 = XDP_PASS; exit),
 *   - a naive locality counter (bpf/bench_naive.bpf.c: parse, two LPM
 *     lookups per packet, count), sharing itracker's LPM tries,
 *   - the floor of a flow-cache design (same file: parse, canonical key,
 *     one lookup in itracker's flow cache, nothing else),
 *   - itr_xdp_ingress on (a) a non-BitTorrent packet of an established flow
 *     and (b) a packet of an established peer-wire flow,
 * with 1K, 100K and 1M random IPv4 prefixes (/16../32) loaded.
 *
 * and the cost of a flow's first packet (flow setup: two LPM lookups, the
 * endpoint cache, the signature checks, the flow-cache insert), for a
 * non-BitTorrent UDP packet and a peer-wire handshake, each on a flow the
 * cache has never seen.
 *
 * Method: FRAMES distinct frames (addresses drawn at random from the whole
 * loaded prefix set, distinct ports, so distinct flows), each run by its
 * own BPF_PROG_TEST_RUN call with repeat = BENCH_REPEAT (default 1), so no
 * variant gets to replay one cache-hot frame; the kernel times each call
 * and reports ns per run. A round runs each variant over all frames in
 * turn, starting with a different variant each round (rotating order, so
 * none always runs right after the naive program's trie walks); a
 * variant's figure is the median over ROUNDS rounds of its mean (min and
 * max printed beside it). First-packet rows use new frames in every
 * round: their flows are really not in the flow cache.
 * Every variant is measured the same way on the same frames, so the
 * per-call timer overhead (in the empty figure too) is the same for all;
 * "net" figures subtract the empty program.
 *
 * Records go to $BUILD/bench.json through benchjson.h. Needs root.
 * Reproduce: sudo make BUILD=build bench   (or: BUILD=build build/bench/bench_xdp)
 */
#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "itracker_maps.h"
#include "locality.skel.h"
#include "benchjson.h"
#include "benchproc.h"

#define FRAMES       4096
#define ROUNDS       5
#define FRAME_LEN    128
#define MAX_PREFIXES 1000000

struct prefix {
	uint32_t addr; /* host byte order, host bits zero */
	uint8_t plen;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	return bench_rng(&rng_state);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_xdp: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

/* Ethernet + IPv4 + TCP or UDP, FRAME_LEN bytes in all. */
static void build_frame(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                        int proto, const uint8_t *payload, size_t payload_len)
{
	size_t l4_hdr = proto == IPPROTO_TCP ? 20 : 8;
	memset(f, 0, FRAME_LEN);
	memcpy(f, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(FRAME_LEN - 14));
	ip[8] = 64;
	ip[9] = (uint8_t)proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	uint8_t *l4 = ip + 20;
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (proto == IPPROTO_TCP) {
		l4[12] = 5 << 4;
		l4[13] = 0x18;
	} else {
		put16(l4 + 4, (uint16_t)(FRAME_LEN - 14 - 20));
	}
	size_t room = FRAME_LEN - 14 - 20 - l4_hdr;
	memcpy(l4 + l4_hdr, payload, payload_len < room ? payload_len : room);
}

static uint32_t addr_in(const struct prefix *p)
{
	uint32_t host = p->plen == 32 ? 0 : (uint32_t)rng() & (0xffffffffu >> p->plen);
	return p->addr | host;
}

static uint32_t run_once(int prog_fd, const uint8_t *frame, uint32_t repeat)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = FRAME_LEN,
	            .repeat = repeat);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
		die("BPF_PROG_TEST_RUN", errno);
	if (opts.retval != XDP_PASS) {
		fprintf(stderr, "bench_xdp: program returned %u, not XDP_PASS\n", opts.retval);
		exit(1);
	}
	return opts.duration;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define VARIANTS 5 /* empty, flow lookup only, itracker non-BT, itracker BT, naive */

/* Spread over the rounds of one figure. */
struct spread {
	double min, median, max;
};

/* Each round runs every variant over all frames, one variant after the
 * other, so load from other processes during the run hits all variants
 * alike while no variant runs on caches another one just trashed (the
 * naive program's trie walks would evict itracker's flow table if the
 * two alternated frame by frame). out[v] = median over ROUNDS of the mean
 * ns/packet over all frames. */
static void measure(const int prog_fd[VARIANTS], uint8_t (*const frames[VARIANTS])[FRAME_LEN],
                    uint32_t repeat, double out[VARIANTS], struct spread spread[VARIANTS])
{
	double rounds[VARIANTS][ROUNDS];
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < VARIANTS; k++) {
			int v = (k + r) % VARIANTS; /* rotating order */
			uint64_t total = 0;
			for (int i = 0; i < FRAMES; i++)
				total += run_once(prog_fd[v], frames[v][i], repeat);
			rounds[v][r] = (double)total / FRAMES;
		}
	for (int v = 0; v < VARIANTS; v++) {
		qsort(rounds[v], ROUNDS, sizeof(rounds[v][0]), cmp_double);
		out[v] = rounds[v][ROUNDS / 2];
		spread[v] =
		    (struct spread){rounds[v][0], rounds[v][ROUNDS / 2], rounds[v][ROUNDS - 1]};
	}
}

/* Fills frames with new flows: addresses from the whole loaded prefix set,
 * ports from a counter no earlier frame used. */
static uint32_t next_flow_port = 1;

static void new_flows(uint8_t (*frames)[FRAME_LEN], const struct prefix *pfx, size_t loaded,
                      int proto, const uint8_t *payload, size_t len);

/* First-packet cost: each round, FRAMES flows the program has never seen,
 * one packet each (repeat 1: a repeat would hit the entry the first run
 * made). out: median over ROUNDS, spread beside it. */
static void measure_first(int prog_fd, uint8_t (*frames)[FRAME_LEN], const struct prefix *pfx,
                          size_t loaded, int proto, const uint8_t *payload, size_t len,
                          struct spread *out)
{
	double rounds[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		new_flows(frames, pfx, loaded, proto, payload, len);
		uint64_t total = 0;
		for (int i = 0; i < FRAMES; i++)
			total += run_once(prog_fd, frames[i], 1);
		rounds[r] = (double)total / FRAMES;
	}
	qsort(rounds, ROUNDS, sizeof(rounds[0]), cmp_double);
	*out = (struct spread){rounds[0], rounds[ROUNDS / 2], rounds[ROUNDS - 1]};
}

/* BitTorrent packets in the ingress counters, all classes and kinds. */
static uint64_t bt_counted(struct locality *skel)
{
	int ncpu = libbpf_num_possible_cpus();
	struct itr_counter *pc = calloc((size_t)ncpu, sizeof(*pc));
	uint64_t sum = 0;
	if (!pc)
		die("calloc", ENOMEM);
	for (uint32_t k = ITR_KIND_NONE + 1; k < ITR_KIND_MAX; k++)
		for (uint32_t c = 0; c < ITR_CLASS_MAX; c++) {
			uint32_t idx = itr_counter_index(ITR_DIR_INGRESS, c, k);
			if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &idx, pc) == 0)
				for (int cpu = 0; cpu < ncpu; cpu++)
					sum += pc[cpu].packets;
		}
	free(pc);
	return sum;
}

static double now_s(void);

/* Wall time of the last itr_fold run (matrix_folded), seconds. */
static double last_fold_s;

/* Packets in the PID matrix once itr_fold has moved the flows' unfolded
 * counts into it. */
static uint64_t matrix_folded(struct locality *skel)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);
	double t0 = now_s();
	if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.itr_fold), &run))
		die("running itr_fold", errno);
	last_fold_s = now_s() - t0;
	int ncpu = libbpf_num_possible_cpus();
	struct itr_counter *pc = calloc((size_t)ncpu, sizeof(*pc));
	if (!pc)
		die("calloc", ENOMEM);
	int fd = bpf_map__fd(skel->maps.matrix);
	struct itr_matrix_key k, next;
	const void *prev = NULL;
	uint64_t sum = 0;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, pc) == 0)
			for (int cpu = 0; cpu < ncpu; cpu++)
				sum += pc[cpu].packets;
	}
	free(pc);
	return sum;
}

static int load_empty_xdp(void)
{
	struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "empty_xdp", "GPL", insns, 2, NULL);
	if (fd < 0)
		die("loading the empty XDP program", errno);
	return fd;
}

static struct bpf_object *load_naive(const char *self, struct locality *skel, int *naive_fd,
                                     int *lookup_fd)
{
	char buf[4096], path[4200];
	snprintf(buf, sizeof(buf), "%s", self);
	snprintf(path, sizeof(path), "%s/../bench_naive.bpf.o", dirname(buf));
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj)
		die(path, errno);
	int err = bpf_map__reuse_fd(bpf_object__find_map_by_name(obj, "lpm_v4"),
	                            bpf_map__fd(skel->maps.lpm_v4));
	err = err
	          ?: bpf_map__reuse_fd(bpf_object__find_map_by_name(obj, "lpm_v6"),
	                               bpf_map__fd(skel->maps.lpm_v6));
	err = err
	          ?: bpf_map__reuse_fd(bpf_object__find_map_by_name(obj, "flows"),
	                               bpf_map__fd(skel->maps.flows));
	err = err
	          ?: bpf_map__reuse_fd(bpf_object__find_map_by_name(obj, "flows_v4"),
	                               bpf_map__fd(skel->maps.flows_v4));
	err = err ?: bpf_object__load(obj);
	if (err)
		die("loading bench_naive.bpf.o", err);
	*naive_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "naive_xdp"));
	*lookup_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "flow_lookup_xdp"));
	return obj;
}

static void new_flows(uint8_t (*frames)[FRAME_LEN], const struct prefix *pfx, size_t loaded,
                      int proto, const uint8_t *payload, size_t len)
{
	for (int i = 0; i < FRAMES; i++) {
		uint32_t a = addr_in(&pfx[rng() % loaded]);
		uint32_t b = addr_in(&pfx[rng() % loaded]);
		uint32_t n = next_flow_port++;
		build_frame(frames[i], a, b, (uint16_t)(1024 + n % 60000),
		            (uint16_t)(1024 + (n / 60000) % 60000), proto, payload, len);
	}
}

static void fill_prefixes(int map_fd, const struct prefix *pfx, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		struct itr_lpm_v4_key k = {.prefixlen = pfx[i].plen};
		uint32_t be = htonl(pfx[i].addr);
		memcpy(k.addr, &be, 4);
		uint32_t pid = (uint32_t)(i % 1000) + 1;
		struct itr_pid_info v = {.pid = pid, .asn = 64500 + pid / 100, .loc = pid / 10};
		if (bpf_map_update_elem(map_fd, &k, &v, BPF_ANY))
			die("filling lpm_v4", errno);
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void record(const char *name, double value, const char *unit, double reference)
{
	if (benchjson_append(name, value, unit, reference) != 0)
		exit(1);
}

int main(int argc, char **argv)
{
	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows up when piped */
	if (geteuid() != 0) {
		fprintf(stderr, "bench_xdp: needs root (BPF_PROG_TEST_RUN)\n");
		return 1;
	}
	const char *rep_env = getenv("BENCH_REPEAT");
	uint32_t repeat = rep_env ? (uint32_t)strtoul(rep_env, NULL, 10) : 1;
	if (repeat == 0)
		repeat = 1;
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);

	struct locality *skel = locality__open();
	if (!skel)
		die("opening the locality skeleton", errno);
	struct bpf_map *map;
	bpf_object__for_each_map(map, skel->obj) bpf_map__set_pin_path(map, NULL); /* no pins */
	int err = locality__load(skel);
	if (err)
		die("loading locality.bpf.o", err);
	int itr_fd = bpf_program__fd(skel->progs.itr_xdp_ingress);
	int naive_fd, lookup_fd;
	struct bpf_object *naive = load_naive(argv[0], skel, &naive_fd, &lookup_fd);
	int empty_fd = load_empty_xdp();

	struct prefix *pfx = calloc(MAX_PREFIXES, sizeof(*pfx));
	uint8_t(*plain)[FRAME_LEN] = calloc(FRAMES, FRAME_LEN);
	uint8_t(*hello)[FRAME_LEN] = calloc(FRAMES, FRAME_LEN);
	uint8_t(*piece)[FRAME_LEN] = calloc(FRAMES, FRAME_LEN);
	uint8_t(*hello_back)[FRAME_LEN] = calloc(FRAMES, FRAME_LEN);
	if (!pfx || !plain || !hello || !piece || !hello_back)
		die("calloc", ENOMEM);
	for (size_t i = 0; i < MAX_PREFIXES; i++) {
		pfx[i].plen = (uint8_t)(16 + rng() % 17);
		uint32_t mask = pfx[i].plen == 0 ? 0 : 0xffffffffu << (32 - pfx[i].plen);
		pfx[i].addr = (uint32_t)rng() & mask;
	}

	uint8_t handshake[68] = {19};
	memcpy(handshake + 1, "BitTorrent protocol", 19);
	memset(handshake + 28, 0xab, 20);
	memcpy(handshake + 48, "-TR3000-benchbenchbe", 20);
	uint8_t piece_msg[64] = {0, 0, 0x40, 0x09, 7, 0, 0, 0, 1, 0, 0, 0, 0};
	uint8_t opaque[64];
	memset(opaque, 0xaa, sizeof(opaque)); /* no signature: type nibble 10 is not uTP */

	static const size_t sizes[] = {1000, 100000, 1000000};
	static const char *const labels[] = {"1K", "100K", "1M"};
	/* BENCH_QUICK=1: 1K prefixes only, nothing recorded (for development). */
	const int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) == 1;
	double empty_ns[3], naive_ns[3], nonbt_ns[3], bt_ns[3], lookup_ns[3];
	struct spread spreads[3][VARIANTS], first_nonbt[3], first_bt[3];
	uint8_t(*fresh)[FRAME_LEN] = calloc(FRAMES, FRAME_LEN);
	if (!fresh)
		die("calloc", ENOMEM);
	size_t loaded = 0;
	int lpm_fd = bpf_map__fd(skel->maps.lpm_v4);

	printf("bench_xdp: BPF_PROG_TEST_RUN, %d distinct frames of %d bytes, repeat=%u per frame "
	       "(one timed run per frame when 1), median of %d rounds\n",
	       FRAMES, FRAME_LEN, repeat, ROUNDS);
	for (int s = 0; s < 3; s++) {
		if (quick && s > 0) {
			printf(
			    "  quick: 1K only\n  itr-nonBT %.1f ns, itr-BT %.1f ns, empty %.1f ns, "
			    "naive %.1f ns, flow lookup only %.1f ns\n",
			    nonbt_ns[0], bt_ns[0], empty_ns[0], naive_ns[0], lookup_ns[0]);
			return 0;
		}
		double t0 = now_s();
		fill_prefixes(lpm_fd, pfx, loaded, sizes[s]);
		printf("  loaded %zu prefixes (+%zu in %.2f s)\n", sizes[s], sizes[s] - loaded,
		       now_s() - t0);
		loaded = sizes[s];

		for (int i = 0; i < FRAMES; i++) {
			uint32_t a = addr_in(&pfx[rng() % loaded]);
			uint32_t b = addr_in(&pfx[rng() % loaded]);
			uint16_t sp = (uint16_t)(1024 + rng() % 60000);
			uint16_t dp = (uint16_t)(1024 + rng() % 60000);
			build_frame(plain[i], a, b, sp, dp, IPPROTO_UDP, opaque, sizeof(opaque));
			build_frame(hello[i], a, b, (uint16_t)(sp ^ 1), dp, IPPROTO_TCP, handshake,
			            sizeof(handshake));
			build_frame(hello_back[i], b, a, dp, (uint16_t)(sp ^ 1), IPPROTO_TCP,
			            handshake, sizeof(handshake));
			build_frame(piece[i], a, b, (uint16_t)(sp ^ 1), dp, IPPROTO_TCP, piece_msg,
			            sizeof(piece_msg));
		}
		/* Establish the flows: non-BitTorrent ones settle after the
		 * inspection window, peer-wire ones on the handshake and its
		 * answer. */
		for (int i = 0; i < FRAMES; i++) {
			for (int k = 0; k <= ITR_MAX_INSPECT; k++)
				run_once(itr_fd, plain[i], 1);
			run_once(itr_fd, hello[i], 1);
			run_once(itr_fd, hello_back[i], 1);
		}

		const int fds[VARIANTS] = {empty_fd, lookup_fd, itr_fd, itr_fd, naive_fd};
		uint8_t(*const frames[VARIANTS])[FRAME_LEN] = {plain, plain, plain, piece, plain};
		double ns[VARIANTS];
		uint64_t matrix_before = matrix_folded(skel), counted_before = bt_counted(skel);
		measure(fds, frames, repeat, ns, spreads[s]);
		/* The measured BitTorrent packets left their counts in their flow
		 * entries: after a fold the matrix holds every one of them (their
		 * pairs exist since the handshakes, until the matrix fills up: with
		 * 1,000 PIDs, the first-packet rows fill its ITR_MATRIX_MAX pairs
		 * by the 1M size, so the check is made at 1K). */
		uint64_t counted = bt_counted(skel) - counted_before;
		uint64_t in_matrix = matrix_folded(skel) - matrix_before;
		if (s == 0 &&
		    (counted != (uint64_t)ROUNDS * FRAMES * repeat || in_matrix != counted)) {
			fprintf(stderr,
			        "bench_xdp: %llu BitTorrent packets measured, %llu counted, %llu "
			        "in the "
			        "matrix after the fold\n",
			        (unsigned long long)ROUNDS * FRAMES * repeat,
			        (unsigned long long)counted, (unsigned long long)in_matrix);
			return 1;
		}
		if (s == 0)
			printf("  %s: the %llu BitTorrent packets measured are all in the matrix "
			       "after "
			       "the fold\n",
			       labels[s], (unsigned long long)in_matrix);
		measure_first(itr_fd, fresh, pfx, loaded, IPPROTO_UDP, opaque, sizeof(opaque),
		              &first_nonbt[s]);
		measure_first(itr_fd, fresh, pfx, loaded, IPPROTO_TCP, handshake, sizeof(handshake),
		              &first_bt[s]);
		empty_ns[s] = ns[0];
		lookup_ns[s] = ns[1];
		nonbt_ns[s] = ns[2];
		bt_ns[s] = ns[3];
		naive_ns[s] = ns[4];
	}

	/* What a flood of new flows costs the matrix: the established
	 * BitTorrent flows each send one packet (left unfolded in their
	 * entries), then more new flows than the flow cache holds push them
	 * out before any fold, the worst case (itrackerd folds every
	 * ITR_FOLD_PERIOD_MS: a flow evicted later than that after its last
	 * packet takes nothing with it). */
	uint64_t evict_m0 = matrix_folded(skel), evict_c0 = bt_counted(skel);
	for (int i = 0; i < FRAMES; i++)
		run_once(itr_fd, piece[i], 1);
	const int flood_batches = (ITR_FLOWS_MAX + ITR_FLOWS_MAX / 4) / FRAMES;
	for (int b = 0; b < flood_batches; b++) {
		new_flows(fresh, pfx, loaded, IPPROTO_UDP, opaque, sizeof(opaque));
		for (int i = 0; i < FRAMES; i++)
			run_once(itr_fd, fresh[i], 1);
	}
	uint64_t evict_counted = bt_counted(skel) - evict_c0;
	uint64_t evict_folded = matrix_folded(skel) - evict_m0;
	double fold_full_ms = last_fold_s * 1e3; /* over a full flow cache */
	matrix_folded(skel);
	double fold_idle_ms = last_fold_s * 1e3; /* the same, nothing to fold */

	/* The measured packets must have been counted as intended. */
	uint32_t none_idx = itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_NONE);
	uint32_t bt_idx =
	    itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE);
	int ncpu = libbpf_num_possible_cpus();
	struct itr_counter *pc = calloc((size_t)ncpu, sizeof(*pc));
	uint64_t none_pk = 0, bt_pk = 0;
	bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &none_idx, pc);
	for (int c = 0; c < ncpu; c++)
		none_pk += pc[c].packets;
	bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &bt_idx, pc);
	for (int c = 0; c < ncpu; c++)
		bt_pk += pc[c].packets;
	if (none_pk == 0 || bt_pk == 0) {
		fprintf(stderr, "bench_xdp: packets were not counted as expected\n");
		return 1;
	}
	free(pc);

	printf("\n  %-9s %9s %9s %11s %9s | %10s %8s | %12s %9s\n", "prefixes", "empty", "naive",
	       "itr-nonBT", "itr-BT", "nonBT/empt", "BT/empty", "naive/nonBT", "naive/BT");
	for (int s = 0; s < 3; s++)
		printf("  %-9s %8.1fns %8.1fns %10.1fns %8.1fns | %9.2fx %7.2fx | %11.2fx %8.2fx\n",
		       labels[s], empty_ns[s], naive_ns[s], nonbt_ns[s], bt_ns[s],
		       nonbt_ns[s] / empty_ns[s], bt_ns[s] / empty_ns[s], naive_ns[s] / nonbt_ns[s],
		       naive_ns[s] / bt_ns[s]);
	printf("  net of the empty program (timer and test-run overhead removed):\n");
	for (int s = 0; s < 3; s++)
		printf("  %-9s %9s %8.1fns %10.1fns %8.1fns | %24s | %11.2fx %8.2fx\n", labels[s],
		       "-", naive_ns[s] - empty_ns[s], nonbt_ns[s] - empty_ns[s],
		       bt_ns[s] - empty_ns[s], "",
		       (naive_ns[s] - empty_ns[s]) / (nonbt_ns[s] - empty_ns[s]),
		       (naive_ns[s] - empty_ns[s]) / (bt_ns[s] - empty_ns[s]));
	printf("  the flow-cache floor (parse + key + one LRU lookup, nothing else):\n");
	for (int s = 0; s < 3; s++)
		printf("  %-9s %8.1fns = %.2fx empty; itracker nonBT %.2fx of it, BT %.2fx\n",
		       labels[s], lookup_ns[s], lookup_ns[s] / empty_ns[s],
		       nonbt_ns[s] / lookup_ns[s], bt_ns[s] / lookup_ns[s]);
	printf("  spread over %d rounds, min / median / max ns:\n", ROUNDS);
	static const char *const vnames[VARIANTS] = {"empty", "flow-lookup", "itr-nonBT", "itr-BT",
	                                             "naive"};
	for (int s = 0; s < 3; s++)
		for (int v = 0; v < VARIANTS; v++)
			printf("  %-9s %-12s %8.1f %8.1f %8.1f\n", labels[s], vnames[v],
			       spreads[s][v].min, spreads[s][v].median, spreads[s][v].max);
	printf("  first packet of a flow the cache has never seen (flow setup), min / median / "
	       "max ns, and median vs naive:\n");
	for (int s = 0; s < 3; s++) {
		printf("  %-9s %-12s %8.1f %8.1f %8.1f  %.2fx naive\n", labels[s], "first-nonBT",
		       first_nonbt[s].min, first_nonbt[s].median, first_nonbt[s].max,
		       first_nonbt[s].median / naive_ns[s]);
		printf("  %-9s %-12s %8.1f %8.1f %8.1f  %.2fx naive\n", labels[s], "first-BT",
		       first_bt[s].min, first_bt[s].median, first_bt[s].max,
		       first_bt[s].median / naive_ns[s]);
	}
	printf("  flood of %d new flows (flow cache: %d) right after one packet on each of %d "
	       "BitTorrent flows, no fold between: %llu of %llu packets reached the matrix\n",
	       flood_batches * FRAMES, ITR_FLOWS_MAX, FRAMES, (unsigned long long)evict_folded,
	       (unsigned long long)evict_counted);
	printf("  itr_fold over the full flow cache (%d entries): %.1f ms with %llu packets to "
	       "fold, %.1f ms with none\n",
	       ITR_FLOWS_MAX, fold_full_ms, (unsigned long long)evict_counted, fold_idle_ms);
	printf("  scaling 1M vs 1K prefixes: nonBT %.2fx, BT %.2fx, naive %.2fx\n",
	       nonbt_ns[2] / nonbt_ns[0], bt_ns[2] / bt_ns[0], naive_ns[2] / naive_ns[0]);
	printf("  reproduce: sudo make BUILD=build bench  (or BENCH_REPEAT=%u BUILD=build "
	       "build/bench/bench_xdp)\n",
	       repeat);

	char name[128];
	const char *unit = "ns/packet";
	record("xdp.empty", empty_ns[2], unit, empty_ns[2]);
	for (int s = 0; s < 3; s++) {
		snprintf(name, sizeof(name), "xdp.naive.%s.vs_empty", labels[s]);
		record(name, naive_ns[s], unit, empty_ns[s]);
		snprintf(name, sizeof(name), "xdp.itracker.nonbt.%s.vs_empty", labels[s]);
		record(name, nonbt_ns[s], unit, empty_ns[s]);
		snprintf(name, sizeof(name), "xdp.itracker.bt.%s.vs_empty", labels[s]);
		record(name, bt_ns[s], unit, empty_ns[s]);
		snprintf(name, sizeof(name), "xdp.itracker.nonbt.%s.vs_naive", labels[s]);
		record(name, nonbt_ns[s], unit, naive_ns[s]);
		snprintf(name, sizeof(name), "xdp.itracker.bt.%s.vs_naive", labels[s]);
		record(name, bt_ns[s], unit, naive_ns[s]);
	}
	for (int s = 0; s < 3; s++) {
		snprintf(name, sizeof(name), "xdp.itracker.first_packet.nonbt.%s.vs_naive",
		         labels[s]);
		record(name, first_nonbt[s].median, unit, naive_ns[s]);
		snprintf(name, sizeof(name), "xdp.itracker.first_packet.bt.%s.vs_naive", labels[s]);
		record(name, first_bt[s].median, unit, naive_ns[s]);
	}
	record("xdp.flow_lookup_only.1M.vs_empty", lookup_ns[2], unit, empty_ns[2]);
	record("xdp.itracker.nonbt.1M.vs_flow_lookup_only", nonbt_ns[2], unit, lookup_ns[2]);
	record("xdp.itracker.bt.1M.vs_flow_lookup_only", bt_ns[2], unit, lookup_ns[2]);
	record("xdp.itracker.nonbt.1M.vs_1K", nonbt_ns[2], unit, nonbt_ns[0]);
	record("xdp.itracker.bt.1M.vs_1K", bt_ns[2], unit, bt_ns[0]);

	bpf_object__close(naive);
	close(empty_fd);
	locality__destroy(skel);
	free(pfx);
	free(plain);
	free(hello);
	free(piece);
	free(fresh);
	free(hello_back);
	return 0;
}
