/* bench_rank.c - cost of itr_rank per call for 50, 1,000 and 10,000
 * candidates (numwant 50, default policy, example network map).
 *
 * Reference, measured in the same run on the same candidates: the least a
 * ranker can do - look up each candidate's PID, take its cost, and sort by
 * cost with libc qsort (no BEP 40 tie-break, no policy). The ratio says what
 * the deterministic order and the policy passes cost on top. Target: 1,000
 * candidates in at most 50 us.
 *
 * Method: candidates are random addresses in the map's prefixes (a quarter
 * outside every prefix) with random ports, fixed seed. Each round times
 * enough calls for about 50 ms of thread CPU time; the figure is the median
 * of 7 rounds.
 * Reproduce: make BUILD=build bench  (or BUILD=build build/bench/bench_rank)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netmap.h"
#include "rank.h"
#include "benchjson.h"
#include "benchproc.h"

#define ROUNDS 7
#define WANT   50

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
	return bench_rng(&rng_state);
}

/* CPU time of this thread, not wall time: the figure is the work one call
 * does, and stays meaningful on a machine shared with other jobs (the
 * build and test machines run several at once). */
static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ---- the reference ranker ---------------------------------------------- */

struct ref_entry {
	uint32_t cost;
	uint32_t idx;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct ref_entry *x = a, *y = b;
	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static size_t ref_rank(const struct itr_netmap *map, const struct itr_peer_addr *client,
                       const struct itr_peer_addr *c, size_t n, size_t want,
                       struct ref_entry *scratch, struct itr_ranked_peer *out)
{
	const struct itr_pid *cpid = itr_netmap_lookup(map, client->family, client->addr);
	for (size_t i = 0; i < n; i++) {
		const struct itr_pid *pid = itr_netmap_lookup(map, c[i].family, c[i].addr);
		scratch[i].cost = itr_netmap_cost(map, cpid, pid);
		scratch[i].idx = (uint32_t)i;
	}
	qsort(scratch, n, sizeof(*scratch), ref_cmp);
	size_t k = n < want ? n : want;
	for (size_t i = 0; i < k; i++) {
		out[i].peer = c[scratch[i].idx];
		out[i].cost = scratch[i].cost;
	}
	return k;
}

/* ---- timing ------------------------------------------------------------- */

struct run {
	const struct itr_netmap *map;
	const struct itr_rank_policy *policy;
	const struct itr_peer_addr *client, *cands;
	size_t n;
	struct ref_entry *scratch;
	struct itr_ranked_peer *out;
};

static volatile size_t sink;

static double time_calls(const struct run *r, int reference, long iters)
{
	double t0 = now_us();
	for (long i = 0; i < iters; i++) {
		if (reference)
			sink +=
			    ref_rank(r->map, r->client, r->cands, r->n, WANT, r->scratch, r->out);
		else
			sink +=
			    itr_rank(r->map, r->policy, r->client, r->cands, r->n, WANT, r->out);
	}
	return (now_us() - t0) / (double)iters;
}

static double median_us(const struct run *r, int reference)
{
	/* Calibrate to about 50 ms per round. */
	long iters = 1;
	while (time_calls(r, reference, iters) * (double)iters < 5000.0)
		iters *= 2;
	iters *= 10;
	double t[ROUNDS];
	for (int i = 0; i < ROUNDS; i++)
		t[i] = time_calls(r, reference, iters);
	qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
	return t[ROUNDS / 2];
}

static void random_candidate(struct itr_peer_addr *p)
{
	/* Prefixes of maps/example.netmap, and one outside all of them. */
	static const uint8_t nets[][2] = {{10, 10}, {10, 10}, {10, 10}, {10, 20},
	                                  {10, 20}, {10, 30}, {192, 0}, {198, 51}};
	memset(p, 0, sizeof(*p));
	uint64_t r = rng();
	size_t which = r % (sizeof(nets) / sizeof(nets[0]));
	p->family = 4;
	p->addr[0] = nets[which][0];
	p->addr[1] = nets[which][1];
	p->addr[2] = nets[which][0] == 10 && nets[which][1] == 10 ? (uint8_t)(1 + (r >> 8) % 3)
	                                                          : (uint8_t)(r >> 8);
	p->addr[3] = (uint8_t)(r >> 16);
	p->port = (uint16_t)(1024 + (r >> 24) % 60000);
}

int main(void)
{
	struct itr_netmap_error err;
	const char *root = getenv("ITRACKER_ROOT");
	char path[4096];
	snprintf(path, sizeof(path), "%s/maps/example.netmap", root && *root ? root : ".");
	struct itr_netmap *map = itr_netmap_load_file(path, &err);
	if (!map) {
		char buf[512];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "bench_rank: %s\n", buf);
		return 1;
	}
	struct itr_rank_policy policy;
	itr_rank_policy_default(&policy);
	struct itr_peer_addr client = {.family = 4, .addr = {10, 10, 1, 5}, .port = 6881};

	static const size_t sizes[] = {50, 1000, 10000};
	int failed = 0;
	printf("%-12s %14s %14s %8s\n", "candidates", "itr_rank us", "qsort-by-cost", "ratio");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		struct itr_peer_addr *c = malloc(n * sizeof(*c));
		struct ref_entry *scratch = malloc(n * sizeof(*scratch));
		struct itr_ranked_peer *out = malloc(WANT * sizeof(*out));
		for (size_t i = 0; i < n; i++)
			random_candidate(&c[i]);
		struct run r = {map, &policy, &client, c, n, scratch, out};
		double mine = median_us(&r, 0);
		double ref = median_us(&r, 1);
		printf("%-12zu %14.2f %14.2f %8.2f\n", n, mine, ref, mine / ref);
		char name[64];
		snprintf(name, sizeof(name), "rank_%zu_candidates", n);
		if (benchjson_append(name, mine, "us/call", ref) < 0)
			failed = 1;
		if (n == 1000)
			printf("target: 1,000 candidates <= 50 us: %s (%.2f us)\n",
			       mine <= 50.0 ? "met" : "MISSED", mine);
		free(c);
		free(scratch);
		free(out);
	}
	itr_netmap_unref(map);
	return failed;
}
