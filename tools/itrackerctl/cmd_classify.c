/* cmd_classify.c - `itrackerctl classify FILE`: load a private copy of the
 * data plane (the locality skeleton, maps pinned only under a fresh temp
 * directory), optionally fill its tries from a network map, run every frame
 * of a capture through the XDP program with BPF_PROG_TEST_RUN, and report the
 * flows the program recorded: 5-tuple, BitTorrent kind, locality class, and
 * the packets and bytes of each flow in the capture.
 *
 * Nothing touches the live data plane: the pin root used for loading is a
 * new directory, so libbpf never reuses the pinned production maps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/bpf.h>

#include "ctl.h"
#include "itracker_maps.h"
#include "locality.skel.h"
#include "netmap.h"
#include "stats.h"

static const char classify_usage[] =
    "usage: itrackerctl classify FILE... [--map FILE] [--json]\n"
    "\n"
    "Run every frame of a pcap or pcapng capture through the XDP program\n"
    "(BPF_PROG_TEST_RUN on a private copy of the data plane; the live one is\n"
    "not touched) and list the flows it recorded with their BitTorrent kind,\n"
    "locality class, packets and bytes, then totals by kind. Several files\n"
    "are classified one after the other, each on an emptied data plane\n"
    "(with --json: an array of the per-file documents).\n"
    "Link types: Ethernet, Linux cooked (SLL, SLL2; tcpdump -i any), raw IP,\n"
    "BSD loopback (NULL, LOOP), Cisco HDLC, PPP.\n"
    "\n"
    "  --map FILE  fill the LPM tries from this network map (else every\n"
    "              address is unknown and every flow's class is \"unknown\")\n"
    "  --json      JSON\n";

/* The program takes multi-buffer frames (xdp.frags), so BPF_PROG_TEST_RUN
 * runs GRO'd super-frames whole; should a kernel refuse one, it is cut to
 * a page's worth (then to a classic MTU) and counted as truncated. */
#define CLASSIFY_MAX_FRAME 3520

/* Flow-cache and endpoint-cache entries of the private data plane. */
#define CLASSIFY_MAX_FLOWS 65536

struct flow_stats {
	struct itr_flow_key key; /* first: tsearch compares keys */
	uint64_t packets;
	uint64_t bytes;
	struct itr_flow_verdict verdict;
	bool in_kernel;
};

static int flow_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct itr_flow_key));
}

struct classify_run {
	void *flows_root; /* tsearch tree of struct flow_stats */
	struct flow_stats **list;
	size_t nflows, cap;
	uint64_t frames, bytes, truncated, not_run, not_ip;
	uint64_t verdicts[5]; /* XDP_ABORTED .. XDP_REDIRECT */
};

/* ---- frame handling ---------------------------------------------------- */

static struct flow_stats *flow_get(struct classify_run *run, const struct itr_flow_key *key)
{
	struct flow_stats probe;
	probe.key = *key;
	void *found = tfind(&probe, &run->flows_root, flow_cmp);
	if (found)
		return *(struct flow_stats **)found;
	if (run->nflows == run->cap) {
		size_t ncap = run->cap ? run->cap * 2 : 256;
		struct flow_stats **grown = realloc(run->list, ncap * sizeof(*grown));
		if (!grown)
			return NULL;
		run->list = grown;
		run->cap = ncap;
	}
	struct flow_stats *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return NULL;
	fs->key = *key;
	if (!tsearch(fs, &run->flows_root, flow_cmp)) {
		free(fs);
		return NULL;
	}
	run->list[run->nflows++] = fs;
	return fs;
}

static void noop_free(void *p)
{
	(void)p;
}

static void run_free(struct classify_run *run)
{
	tdestroy(run->flows_root, noop_free);
	for (size_t i = 0; i < run->nflows; i++)
		free(run->list[i]);
	free(run->list);
}

/* Runs one frame; -errno if the kernel refused it at every size tried. */
static int test_run(int prog_fd, const uint8_t *frame, size_t len, struct classify_run *run)
{
	const size_t sizes[] = {len, CLASSIFY_MAX_FRAME, 1518};
	int err = EINVAL;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (i > 0 && (err != EINVAL || sizes[i] >= len))
			continue;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame,
		            .data_size_in = (__u32)sizes[i], .repeat = 1);
		if (bpf_prog_test_run_opts(prog_fd, &opts) == 0) {
			if (opts.retval < sizeof(run->verdicts) / sizeof(run->verdicts[0]))
				run->verdicts[opts.retval]++;
			if (sizes[i] < len)
				run->truncated++;
			return 0;
		}
		err = errno;
	}
	return -err;
}

/* ---- output ------------------------------------------------------------ */

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

static void endpoint_text(const uint8_t *addr, uint16_t port_be, uint8_t family, char *buf,
                          size_t len)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, a, sizeof(a));
	if (family == 6)
		snprintf(buf, len, "[%s]:%u", a, ntohs(port_be));
	else
		snprintf(buf, len, "%s:%u", a, ntohs(port_be));
}

static int by_bytes(const void *a, const void *b)
{
	const struct flow_stats *x = *(const struct flow_stats *const *)a;
	const struct flow_stats *y = *(const struct flow_stats *const *)b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static const char *flow_class(const struct flow_stats *fs)
{
	return itr_class_name(fs->verdict.cls < ITR_CLASS_MAX ? fs->verdict.cls
	                                                      : ITR_CLASS_UNKNOWN);
}

static json_t *result_json(const char *file, const char *linktype, const struct classify_run *run,
                           const struct itr_counter_table *counters, const char *map_file)
{
	json_t *root = json_object();
	json_object_set_new(root, "file", json_string(file));
	json_object_set_new(root, "linktype", json_string(linktype));
	json_object_set_new(root, "map", map_file ? json_string(map_file) : json_null());
	json_object_set_new(root, "frames", json_integer((json_int_t)run->frames));
	json_object_set_new(root, "bytes", json_integer((json_int_t)run->bytes));
	json_object_set_new(root, "frames_truncated", json_integer((json_int_t)run->truncated));
	json_object_set_new(root, "frames_not_run", json_integer((json_int_t)run->not_run));
	json_object_set_new(root, "frames_not_tcp_udp", json_integer((json_int_t)run->not_ip));
	json_t *flows = json_array();
	json_t *by_kind = json_object();
	for (unsigned k = 0; k < ITR_KIND_MAX; k++)
		json_object_set_new(
		    by_kind, itr_kind_name(k),
		    json_pack("{s:i,s:i,s:i}", "flows", 0, "packets", 0, "bytes", 0));
	size_t bt_flows = 0;
	for (size_t i = 0; i < run->nflows; i++) {
		const struct flow_stats *fs = run->list[i];
		char lo[64], hi[64];
		endpoint_text(fs->key.addr_lo, fs->key.port_lo, fs->key.family, lo, sizeof(lo));
		endpoint_text(fs->key.addr_hi, fs->key.port_hi, fs->key.family, hi, sizeof(hi));
		unsigned kind = fs->verdict.kind < ITR_KIND_MAX ? fs->verdict.kind : ITR_KIND_NONE;
		json_array_append_new(
		    flows,
		    json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:b}", "proto",
		              proto_name(fs->key.proto), "family", fs->key.family, "lo", lo, "hi",
		              hi, "kind", itr_kind_name(kind), "class", flow_class(fs), "final",
		              fs->verdict.state != ITR_FLOW_PENDING, "pid_lo",
		              (json_int_t)fs->verdict.pid_lo, "pid_hi",
		              (json_int_t)fs->verdict.pid_hi, "packets", (json_int_t)fs->packets,
		              "bytes", (json_int_t)fs->bytes, "in_kernel", fs->in_kernel));
		json_t *k = json_object_get(by_kind, itr_kind_name(kind));
		json_object_set_new(
		    k, "flows", json_integer(json_integer_value(json_object_get(k, "flows")) + 1));
		json_object_set_new(k, "packets",
		                    json_integer(json_integer_value(json_object_get(k, "packets")) +
		                                 (json_int_t)fs->packets));
		json_object_set_new(k, "bytes",
		                    json_integer(json_integer_value(json_object_get(k, "bytes")) +
		                                 (json_int_t)fs->bytes));
		if (kind != ITR_KIND_NONE)
			bt_flows++;
	}
	json_object_set_new(root, "flows", flows);
	json_object_set_new(root, "flow_count", json_integer((json_int_t)run->nflows));
	json_object_set_new(root, "bittorrent_flows", json_integer((json_int_t)bt_flows));
	json_object_set_new(root, "by_kind", by_kind);
	/* What the program's own counters say, packet by packet (a flow's
	 * early packets count as "none" until its signature is seen). */
	json_t *ck = json_object();
	for (unsigned k = 0; k < ITR_KIND_MAX; k++) {
		struct itr_counter sum = {0, 0};
		for (unsigned c = 0; c < ITR_CLASS_MAX; c++) {
			sum.packets += counters->c[ITR_DIR_INGRESS][c][k].packets;
			sum.bytes += counters->c[ITR_DIR_INGRESS][c][k].bytes;
		}
		json_object_set_new(ck, itr_kind_name(k),
		                    json_pack("{s:I,s:I}", "packets", (json_int_t)sum.packets,
		                              "bytes", (json_int_t)sum.bytes));
	}
	json_object_set_new(root, "counters_by_kind", ck);
	return root;
}

static void print_result_table(const json_t *r)
{
	size_t i;
	json_t *f;
	printf("%-5s %-45s %-45s %-12s %-9s %8s %12s\n", "PROTO", "ENDPOINT A", "ENDPOINT B",
	       "KIND", "CLASS", "PKTS", "BYTES");
	json_array_foreach(json_object_get(r, "flows"), i, f)
	{
		char b[32];
		printf("%-5s %-45s %-45s %-12s %-9s %8lld %12s%s\n",
		       json_string_value(json_object_get(f, "proto")),
		       json_string_value(json_object_get(f, "lo")),
		       json_string_value(json_object_get(f, "hi")),
		       json_string_value(json_object_get(f, "kind")),
		       json_string_value(json_object_get(f, "class")),
		       json_integer_value(json_object_get(f, "packets")),
		       itr_format_bytes((uint64_t)json_integer_value(json_object_get(f, "bytes")),
		                        b, sizeof(b)),
		       json_is_true(json_object_get(f, "in_kernel")) ? "" : "  (no kernel entry)");
	}
	printf("\n%-13s %8s %10s %12s\n", "KIND", "FLOWS", "PKTS", "BYTES");
	const char *name;
	json_t *k;
	json_object_foreach(json_object_get(r, "by_kind"), name, k)
	{
		if (json_integer_value(json_object_get(k, "flows")) == 0)
			continue;
		char b[32];
		printf("%-13s %8lld %10lld %12s\n", name,
		       json_integer_value(json_object_get(k, "flows")),
		       json_integer_value(json_object_get(k, "packets")),
		       itr_format_bytes((uint64_t)json_integer_value(json_object_get(k, "bytes")),
		                        b, sizeof(b)));
	}
	char b[32];
	printf("\n%lld frames (%s) from %s, %lld flows, %lld BitTorrent",
	       json_integer_value(json_object_get(r, "frames")),
	       itr_format_bytes((uint64_t)json_integer_value(json_object_get(r, "bytes")), b,
	                        sizeof(b)),
	       json_string_value(json_object_get(r, "file")),
	       json_integer_value(json_object_get(r, "flow_count")),
	       json_integer_value(json_object_get(r, "bittorrent_flows")));
	if (json_integer_value(json_object_get(r, "frames_truncated")))
		printf(", %lld cut to %d bytes",
		       json_integer_value(json_object_get(r, "frames_truncated")),
		       CLASSIFY_MAX_FRAME);
	if (json_integer_value(json_object_get(r, "frames_not_run")))
		printf(", %lld not runnable",
		       json_integer_value(json_object_get(r, "frames_not_run")));
	printf("\n");
}

/* ---- the run ----------------------------------------------------------- */

struct private_dataplane {
	struct locality *skel;
	char pin_dir[64];
	bool pinned_dir;
};

static void dataplane_destroy(struct private_dataplane *dp)
{
	if (dp->skel) {
		struct bpf_map *m;
		bpf_object__for_each_map(m, dp->skel->obj)
		{
			if (bpf_map__pin_path(m))
				bpf_map__unpin(m, NULL);
		}
		locality__destroy(dp->skel);
		dp->skel = NULL;
	}
	if (dp->pinned_dir)
		rmdir(dp->pin_dir);
}

static int dataplane_load(struct private_dataplane *dp)
{
	memset(dp, 0, sizeof(*dp));
	strcpy(dp->pin_dir, "/sys/fs/bpf/itrackerctl-classify-XXXXXX");
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	if (mkdtemp(dp->pin_dir)) {
		dp->pinned_dir = true;
		opts.pin_root_path = dp->pin_dir;
	}
	dp->skel = locality__open_opts(&opts);
	if (!dp->skel) {
		ctl_error("opening the BPF skeleton: %s", strerror(errno));
		dataplane_destroy(dp);
		return -1;
	}
	/* Only the XDP program runs the frames: the TC ones need not be
	 * verified (seconds). */
	bpf_program__set_autoload(dp->skel->progs.itr_tc_egress, false);
	bpf_program__set_autoload(dp->skel->progs.itr_tc_ingress, false);
	/* The LRU maps are preallocated at their production sizes, which
	 * costs seconds per load; a capture needs far fewer entries. */
	bpf_map__set_max_entries(dp->skel->maps.flows_v4, CLASSIFY_MAX_FLOWS);
	bpf_map__set_max_entries(dp->skel->maps.flows, CLASSIFY_MAX_FLOWS);
	bpf_map__set_max_entries(dp->skel->maps.endpoints, CLASSIFY_MAX_FLOWS);
	bpf_map__set_max_entries(dp->skel->maps.matrix, 4096);
	if (!dp->pinned_dir) {
		/* No usable bpffs at /sys/fs/bpf (e.g. inside `ip netns exec`):
		 * keep the maps unpinned, which is just as private. */
		struct bpf_map *m;
		bpf_object__for_each_map(m, dp->skel->obj) bpf_map__set_pin_path(m, NULL);
	}
	int err = locality__load(dp->skel);
	if (err) {
		ctl_error("loading the BPF programs: %s (root or CAP_BPF needed)", strerror(-err));
		dataplane_destroy(dp);
		return -1;
	}
	return 0;
}

static int map_fd(struct private_dataplane *dp, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(dp->skel->obj, name);
	return m ? bpf_map__fd(m) : -1;
}

static int fill_tries(struct private_dataplane *dp, const char *map_file)
{
	struct itr_netmap_error nerr;
	struct itr_netmap *map = itr_netmap_load_file(map_file, &nerr);
	if (!map) {
		char msg[700];
		itr_netmap_error_format(&nerr, msg, sizeof(msg));
		fprintf(stderr, "%s\n", msg);
		return -1;
	}
	struct itr_netmap_sync_stats st;
	int err = itr_netmap_sync_bpf(NULL, map, map_fd(dp, ITR_MAP_LPM_V4),
	                              map_fd(dp, ITR_MAP_LPM_V6), &st);
	if (!err) {
		struct itr_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.generation = 1;
		cfg.abi_version = ITR_ABI_VERSION;
		cfg.updated_ns = (uint64_t)time(NULL) * 1000000000ull;
		snprintf(cfg.vtag, sizeof(cfg.vtag), "%s", itr_netmap_vtag(map));
		__u32 zero = 0;
		if (bpf_map_update_elem(map_fd(dp, ITR_MAP_CONFIG), &zero, &cfg, BPF_ANY) != 0)
			err = -errno;
	}
	itr_netmap_unref(map);
	if (err) {
		ctl_error("filling the LPM tries: %s", strerror(-err));
		return -1;
	}
	return 0;
}

static int run_capture(struct ctl_capture *cap, const char *file, int prog_fd,
                       struct classify_run *run)
{
	const uint8_t *frame;
	size_t len;
	uint64_t wire;
	int rc;
	while ((rc = ctl_capture_next(cap, &frame, &len, &wire)) == 1) {
		run->frames++;
		if (len == 0) {
			run->not_run++;
			continue;
		}
		run->bytes += wire;
		if (test_run(prog_fd, frame, len, run) != 0) {
			run->not_run++;
			continue;
		}
		struct itr_flow_key key;
		if (ctl_frame_flow_key(frame, len, &key) != 0) {
			run->not_ip++;
			continue;
		}
		struct flow_stats *fs = flow_get(run, &key);
		if (!fs)
			return -1;
		fs->packets++;
		fs->bytes += wire;
	}
	if (rc < 0) {
		ctl_error("%s: reading the capture: %s", file, ctl_capture_error(cap));
		return -1;
	}
	return 0;
}

static int attach_verdict(struct classify_run *run, const struct itr_flow_key *key,
                          const struct itr_flow_verdict *v)
{
	struct flow_stats *fs = flow_get(run, key);
	if (!fs)
		return -1;
	fs->verdict = *v;
	fs->in_kernel = true;
	return 0;
}

/* Attach the program's verdicts (IPv4 flows from their own map, keys
 * widened to the common form); flows only the kernel knows are added too. */
static int collect_verdicts(int flows_v4_fd, int flows_fd, struct classify_run *run)
{
	struct itr_flow_verdict v;
	struct itr_flow_key_v4 key4, next4;
	const void *prev = NULL;
	while (bpf_map_get_next_key(flows_v4_fd, prev, &next4) == 0) {
		key4 = next4;
		prev = &key4;
		if (bpf_map_lookup_elem(flows_v4_fd, &key4, &v) != 0)
			continue;
		struct itr_flow_key key;
		ctl_flow_key_widen_v4(&key, &key4);
		if (attach_verdict(run, &key, &v) != 0)
			return -1;
	}
	struct itr_flow_key key, next;
	prev = NULL;
	while (bpf_map_get_next_key(flows_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(flows_fd, &key, &v) != 0)
			continue;
		if (attach_verdict(run, &key, &v) != 0)
			return -1;
	}
	qsort(run->list, run->nflows, sizeof(*run->list), by_bytes);
	return 0;
}

/* Deletes every entry of a hash map. */
static int map_clear(int fd)
{
	uint8_t key[64];
	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		if (bpf_map_delete_elem(fd, key) != 0)
			return -errno;
	return 0;
}

/* Empties what the program learned and counted (flows, endpoints, teaching
 * budgets, matrix, counters); the tries and the config stay. */
static int dataplane_reset(struct private_dataplane *dp)
{
	struct bpf_map *hashes[] = {dp->skel->maps.flows_v4, dp->skel->maps.flows,
	                            dp->skel->maps.endpoints, dp->skel->maps.teach_budget,
	                            dp->skel->maps.matrix};
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		if (bpf_map__key_size(hashes[i]) > 64 || map_clear(bpf_map__fd(hashes[i]))) {
			ctl_error("emptying map %s failed", bpf_map__name(hashes[i]));
			return -1;
		}
	}
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus < 1)
		return -1;
	struct itr_counter *zero = calloc((size_t)ncpus, sizeof(*zero));
	if (!zero)
		return -1;
	int err = 0;
	for (__u32 k = 0; k < ITR_COUNTER_SLOTS && !err; k++)
		err = bpf_map_update_elem(map_fd(dp, ITR_MAP_COUNTERS), &k, zero, BPF_ANY);
	free(zero);
	if (err)
		ctl_error("emptying the counters failed: %s", strerror(errno));
	return err ? -1 : 0;
}

int ctl_cmd_classify(const struct ctl_global *g, int argc, char **argv)
{
	const char *map_file = NULL;
	bool json = g->json;
	const struct ctl_opt opts[] = {
	    {"map", CTL_OPT_TEXT, &map_file, 0},
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, classify_usage, opts, &first, &status))
		return status;
	if (first == argc)
		return ctl_usage_error(classify_usage, "classify takes a capture file");

	struct private_dataplane dp;
	if (dataplane_load(&dp) != 0)
		return CTL_EXIT_RUNTIME;
	struct bpf_program *prog = bpf_object__find_program_by_name(dp.skel->obj, ITR_PROG_XDP);
	if (!prog) {
		ctl_error("the BPF object has no program %s", ITR_PROG_XDP);
		dataplane_destroy(&dp);
		return CTL_EXIT_RUNTIME;
	}
	if (map_file && fill_tries(&dp, map_file) != 0) {
		dataplane_destroy(&dp);
		return CTL_EXIT_RUNTIME;
	}
	/* Several files: one JSON array, each capture on a fresh data plane
	 * (the program is loaded once, its maps emptied between captures). */
	int nfiles = argc - first;
	json_t *all = nfiles > 1 && json ? json_array() : NULL;
	int rc = CTL_EXIT_OK;
	for (int i = first; i < argc && rc == CTL_EXIT_OK; i++) {
		const char *file = argv[i];
		char errbuf[512];
		struct ctl_capture *cap = ctl_capture_open(file, errbuf, sizeof(errbuf));
		if (!cap) {
			ctl_error("%s", errbuf);
			rc = CTL_EXIT_RUNTIME;
			break;
		}
		struct classify_run run;
		memset(&run, 0, sizeof(run));
		struct itr_counter_table counters;
		rc = CTL_EXIT_RUNTIME;
		if ((i == first || dataplane_reset(&dp) == 0) &&
		    run_capture(cap, file, bpf_program__fd(prog), &run) == 0 &&
		    collect_verdicts(map_fd(&dp, ITR_MAP_FLOWS_V4), map_fd(&dp, ITR_MAP_FLOWS),
		                     &run) == 0 &&
		    itr_stats_read_counters(map_fd(&dp, ITR_MAP_COUNTERS), &counters) == 0) {
			json_t *r =
			    result_json(file, ctl_capture_linktype(cap), &run, &counters, map_file);
			if (all)
				json_array_append(all, r);
			else if (json)
				ctl_print_json(r);
			else
				print_result_table(r);
			if (!json && i + 1 < argc)
				printf("\n");
			json_decref(r);
			rc = CTL_EXIT_OK;
		}
		run_free(&run);
		ctl_capture_close(cap);
	}
	if (all) {
		if (rc == CTL_EXIT_OK)
			ctl_print_json(all);
		json_decref(all);
	}
	dataplane_destroy(&dp);
	return rc;
}
