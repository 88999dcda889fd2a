/* bench_netmap.c - network map scale: parse and kernel-sync time for 1K,
 * 100K and 1M IPv4 prefixes, a 1 % change reload at 1M, the restart-path
 * sync (tries read back) at 1M, and userspace longest-prefix lookup time.
 *
 * Maps are generated as text in memory and go through the real parser and
 * itr_netmap_sync_bpf into real LPM tries (needs root). References, measured
 * in the same run: for parsing, inet_pton over the same prefix strings (the
 * least work any parser must do); for syncing, a plain loop of
 * bpf_map_update_elem over the same entries; for the reload, writing all
 * entries again; for userspace lookups, the kernel trie's own lookup through
 * the bpf syscall. Targets: load 1M <= 5 s, 1 % reload <= 0.2 s.
 *
 *   sudo make BUILD=build build/bench/bench_netmap && sudo build/bench/bench_netmap
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "benchjson.h"
#include "netmap.h"

#define NPIDS 1000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prefix i: /24s from 1.0.0.0 up; every 100th is a /28 inside that /24
 * instead, so the map has more than one length. */
static void prefix_text(size_t i, bool moved, char *buf, size_t len)
{
	uint32_t base = (uint32_t)(i + (1u << 16)) << 8;
	if (moved)
		base += 1u << 30; /* a new prefix elsewhere */
	unsigned plen = i % 100 == 0 ? 28 : 24;
	snprintf(buf, len, "%u.%u.%u.%u/%u", base >> 24, (base >> 16) & 255, (base >> 8) & 255,
	         base & 255, plen);
}

/* variant 0: the base map; variant 1: 1 % of it changed (0.5 % of the
 * prefixes move to another PID, 0.25 % are withdrawn and 0.25 % new ones
 * appear). */
static char *gen_map(size_t n, int variant, size_t *len_out)
{
	size_t cap = n * 48 + NPIDS * 64 + 256, off = 0;
	char *s = malloc(cap);
	char pfx[32];
	off += (size_t)snprintf(s + off, cap - off, "network-map bench\n");
	for (int p = 0; p < NPIDS; p++)
		off += (size_t)snprintf(s + off, cap - off, "pid p%d id %d asn %d loc %d\n", p,
		                        p + 1, 64500 + p / 100, p % 100 + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned pid = (unsigned)(i % NPIDS);
		bool moved = false;
		if (variant == 1) {
			size_t r = i % 400; /* 4 of every 400 = 1 % */
			if (r == 0 || r == 1)
				pid = (pid + 1) % NPIDS;
			else if (r == 2)
				moved = true; /* withdrawn here, new one elsewhere */
		}
		prefix_text(i, moved, pfx, sizeof(pfx));
		off += (size_t)snprintf(s + off, cap - off, "prefix p%u %s\n", pid, pfx);
	}
	*len_out = off;
	return s;
}

static struct itr_netmap *parse_timed(const char *text, size_t len, double *secs)
{
	struct itr_netmap_error err;
	double t0 = now_s();
	struct itr_netmap *m = itr_netmap_parse_text(text, len, "bench", &err);
	*secs = now_s() - t0;
	if (!m) {
		char buf[600];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "bench_netmap: %s\n", buf);
		exit(1);
	}
	return m;
}

static double inet_pton_ref(size_t n)
{
	char pfx[32];
	uint8_t a[4];
	volatile unsigned sink = 0;
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		prefix_text(i, false, pfx, sizeof(pfx));
		*strchr(pfx, '/') = '\0';
		sink += (unsigned)inet_pton(AF_INET, pfx, a) + a[3];
	}
	(void)sink;
	return now_s() - t0;
}

static int make_trie(int family)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(
	    BPF_MAP_TYPE_LPM_TRIE, family == 4 ? "bench_lpm_v4" : "bench_lpm_v6",
	    family == 4 ? sizeof(struct itr_lpm_v4_key) : sizeof(struct itr_lpm_v6_key),
	    sizeof(struct itr_pid_info), family == 4 ? ITR_LPM_V4_MAX : ITR_LPM_V6_MAX, &opts);
	if (fd < 0) {
		fprintf(stderr, "bench_netmap: bpf_map_create: %s (run as root)\n",
		        strerror(errno));
		exit(1);
	}
	return fd;
}

/* The reference writer: one bpf_map_update_elem per entry. */
static double plain_update_loop(const struct itr_netmap *m, int fd4)
{
	struct itr_netmap_kentry *e;
	size_t n;
	if (itr_netmap_kernel_entries(m, &e, &n))
		exit(1);
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		struct itr_lpm_v4_key k = {.prefixlen = e[i].prefix.len};
		memcpy(k.addr, e[i].prefix.addr, 4);
		if (bpf_map_update_elem(fd4, &k, &e[i].info, BPF_ANY)) {
			fprintf(stderr, "bench_netmap: update: %s\n", strerror(errno));
			exit(1);
		}
	}
	double t = now_s() - t0;
	free(e);
	return t;
}

static void sync_or_die(const struct itr_netmap *old, const struct itr_netmap *new_map, int fd4,
                        int fd6, struct itr_netmap_sync_stats *st)
{
	int rc = itr_netmap_sync_bpf(old, new_map, fd4, fd6, st);
	if (rc) {
		fprintf(stderr, "bench_netmap: sync: %s\n", strerror(-rc));
		exit(1);
	}
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void record(const char *name, double value, const char *unit, double ref,
                   const char *ref_what)
{
	printf("%-34s %12.3f %-6s  ref %12.3f %-6s (%s)  ratio %.3f\n", name, value, unit, ref,
	       unit, ref_what, ref != 0 ? value / ref : 0.0);
	benchjson_append(name, value, unit, ref);
}

int main(void)
{
	static const size_t sizes[] = {1000, 100000, 1000000};
	char name[96];
	printf("bench_netmap: IPv4 maps of N prefixes over %d PIDs (99 %% /24, 1 %% /28)\n", NPIDS);
	printf("reproduce: sudo make BUILD=build build/bench/bench_netmap && sudo "
	       "build/bench/bench_netmap\n\n");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s], len;
		char *text = gen_map(n, 0, &len);
		double parse_s;
		struct itr_netmap *m = parse_timed(text, len, &parse_s);
		free(text);
		double ref_parse = inet_pton_ref(n);

		int fd4 = make_trie(4), fd6 = make_trie(6);
		struct itr_netmap_sync_stats st;
		double t0 = now_s();
		sync_or_die(NULL, m, fd4, fd6, &st);
		double sync_s = now_s() - t0;
		if (st.added != n) {
			fprintf(stderr, "bench_netmap: added %zu of %zu\n", st.added, n);
			return 1;
		}
		int ref4 = make_trie(4);
		double ref_sync = plain_update_loop(m, ref4);
		close(ref4);

		snprintf(name, sizeof(name), "netmap_parse_%zu", n);
		record(name, parse_s * 1e3, "ms", ref_parse * 1e3, "inet_pton only");
		snprintf(name, sizeof(name), "netmap_load_%zu", n);
		record(name, sync_s * 1e3, "ms", ref_sync * 1e3, "update_elem loop");

		if (n == 1000000) {
			char *t2 = gen_map(n, 1, &len);
			double parse2_s;
			struct itr_netmap *m2 = parse_timed(t2, len, &parse2_s);
			free(t2);
			t0 = now_s();
			sync_or_die(m, m2, fd4, fd6, &st);
			double reload_s = now_s() - t0;
			printf("  1%% reload: %zu added, %zu changed, %zu deleted\n", st.added,
			       st.changed, st.deleted);
			record("netmap_reload_1pct_1000000", reload_s * 1e3, "ms", sync_s * 1e3,
			       "full load");
			/* Restart path: no old map, the tries are read back. */
			t0 = now_s();
			sync_or_die(NULL, m, fd4, fd6, &st);
			double restart_s = now_s() - t0;
			printf("  restart-path reload: %zu added, %zu changed, %zu deleted\n",
			       st.added, st.changed, st.deleted);
			record("netmap_reload_1pct_readback_1000000", restart_s * 1e3, "ms",
			       sync_s * 1e3, "full load");

			/* Lookups: userspace map vs the kernel trie via syscall. */
			uint64_t seed = 0x9e3779b97f4a7c15ull;
			const size_t nl = 5000000;
			volatile uint32_t sink = 0;
			t0 = now_s();
			for (size_t i = 0; i < nl; i++) {
				uint32_t a =
				    (uint32_t)(((xorshift(&seed) % (n + n / 10)) + (1u << 16))
				               << 8) |
				    (uint32_t)(xorshift(&seed) & 255);
				uint8_t b[4] = {a >> 24, a >> 16, a >> 8, a};
				const struct itr_pid *p = itr_netmap_lookup(m, 4, b);
				sink += p ? p->id : 0;
			}
			double user_ns = (now_s() - t0) * 1e9 / (double)nl;
			const size_t nk = 500000;
			t0 = now_s();
			for (size_t i = 0; i < nk; i++) {
				uint32_t a =
				    (uint32_t)(((xorshift(&seed) % (n + n / 10)) + (1u << 16))
				               << 8) |
				    (uint32_t)(xorshift(&seed) & 255);
				struct itr_lpm_v4_key k = {.prefixlen = 32,
				                           .addr = {a >> 24, a >> 16, a >> 8, a}};
				struct itr_pid_info info;
				if (bpf_map_lookup_elem(fd4, &k, &info) == 0)
					sink += info.pid;
			}
			double kern_ns = (now_s() - t0) * 1e9 / (double)nk;
			(void)sink;
			record("netmap_lookup_1000000", user_ns, "ns", kern_ns,
			       "kernel trie via syscall");
			itr_netmap_unref(m2);
		}
		close(fd4);
		close(fd6);
		itr_netmap_unref(m);
	}
	printf("\ntargets: netmap_load_1000000 <= 5000 ms, netmap_reload_1pct_1000000 <= 200 ms\n");
	return 0;
}
