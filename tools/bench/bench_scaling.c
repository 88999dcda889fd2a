/* bench_scaling.c - does the announce path scale from one core to two?
 *
 * The tracker's target (two workers on two cores at 1.8x one core) cannot
 * be read with bench_tracker on a 2-core machine: the load generator needs
 * a core of its own. This benchmark takes the network out instead: threads
 * call itr_tracker_announce (store, select, rank: everything a UDP worker
 * does between recvmmsg and sendmmsg) on one tracker with the example map,
 * each thread pinned to its own CPU and announcing its own share of the
 * peers into the same swarms. Announces per second with two threads
 * against one, in the same run; the order of the two flips every run.
 * The kernel's UDP path is not in it: what it shows is whether the store
 * and the ranking serialise the workers (one lock, a shared cache line).
 *
 * The map is the example map with an uplink declared per AS. One shape
 * adds a price controller (ticked once after the fill), as itrackerd
 * runs by default: every announce then also reads its AS's uplink price
 * and the swarm's per-AS view.
 *
 * The reference is the machine itself: two threads on two trackers that
 * share nothing (each filled alike, each thread on its own). What they
 * reach over one thread is the most two vCPUs give this code here (a
 * host's SMT siblings, shared caches and its other guests set it); the
 * shared tracker's ratio divided by it is what the code loses.
 *
 *   bench_scaling [--runs N] [--seconds S] [--peers N] [--only TEXT]
 *
 * --peers sets the stored peers (20,000 by default): the working set, and
 * with it how much of the machine's shared cache and memory the two
 * threads compete for.
 * Needs two CPUs; run from the repository root (maps/example.netmap).
 */
#include "benchjson.h"
#include "netmap.h"
#include "price.h"
#include "tracker.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS      15
#define DEFAULT_PEERS 20000
#define MAX_PEERS     1000000
#define MAX_WANT      200
static unsigned stored_peers = DEFAULT_PEERS;

#define TIME_STEP 256 /* announces between clock reads */

struct shape {
	const char *name;
	unsigned swarm, numwant;
	bool price; /* with a price controller, as itrackerd runs by default */
};

static const struct shape shapes[] = {
    {"swarm 64", 64, 50, false},
    {"swarm 1000", 1000, 50, false},
    {"swarm 1000 numwant 200", 1000, 200, false},
    {"swarm 1000 controller", 1000, 50, true},
    {"swarm 64 controller", 64, 50, true}, /* most swarms: under the view cache's size */
};

/* Each AS's uplink, so that the controller's shape prices one per
 * announce, as a gateway's map with links does. */
static const char BENCH_LINKS[] = "link a-up asn 64500 uplink capacity 1gbit budget 50%\n"
                                  "link b-up asn 64501 uplink capacity 1gbit budget 50%\n"
                                  "link c-up asn 64502 uplink capacity 1gbit budget 50%\n";
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Peer i: spread over the example map's PIDs as itr_loadgen spreads them,
 * each with its own port; a quarter of them seeds. */
static void make_announce(const struct shape *sh, unsigned i, bool first, struct itr_announce *ann)
{
	static const uint8_t bases[7][3] = {{10, 10, 1},   {10, 10, 2}, {10, 10, 3}, {10, 20, 0},
	                                    {10, 20, 128}, {10, 30, 0}, {10, 99, 0}};
	unsigned pid = i % 7, n = i / 7;
	memset(ann, 0, sizeof(*ann));
	ann->peer.family = 4;
	ann->peer.addr[0] = bases[pid][0];
	ann->peer.addr[1] = bases[pid][1];
	ann->peer.addr[2] = (uint8_t)(pid < 3 ? bases[pid][2] : bases[pid][2] + (n / 250) % 64);
	ann->peer.addr[3] = (uint8_t)(1 + n % 250);
	ann->peer.port = (uint16_t)(1024 + i % 64000);
	unsigned torrent = i % (stored_peers / sh->swarm);
	/* spread over every byte, as SHA-1 hashes are: hashes that differed
	 * only in their first two bytes once all took one view cache slot
	 * per AS (when the slot came from bytes 4-11) */
	uint64_t x = 0x9e3779b97f4a7c15ull * (torrent + 1);
	for (int b = 0; b < 20; b++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		ann->info_hash[b] = (uint8_t)(x >> 32);
	}
	ann->left = i % 4 == 0 ? 0 : 1000;
	ann->event = first ? ITR_EVENT_STARTED : ITR_EVENT_NONE;
	ann->numwant = sh->numwant;
}

struct worker {
	pthread_t thread;
	struct itr_tracker *tr;
	const struct shape *sh;
	int cpu;
	unsigned index, nthreads;
	double seconds;
	uint64_t done, failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	struct itr_ranked_peer peers[MAX_WANT];
	struct itr_announce ann;
	struct itr_announce_reply reply;
	double until = now_s() + w->seconds;
	/* thread t announces peers t, t + n, t + 2n, ...: its own share */
	for (unsigned k = 0;; k++) {
		if (k % TIME_STEP == 0 && now_s() >= until)
			break;
		unsigned i = (w->index + k * w->nthreads) % stored_peers;
		make_announce(w->sh, i, false, &ann);
		if (itr_tracker_announce(w->tr, &ann, &reply, peers, MAX_WANT) < 0 ||
		    reply.refused != ITR_REFUSED_NONE)
			w->failed++;
		else
			w->done++;
	}
	return NULL;
}

/* Announces per second with n threads on CPUs 0 .. n-1, thread t on
 * trackers[t]; -1 on failure. */
static double measure(struct itr_tracker *const *trackers, const struct shape *sh, unsigned n,
                      double seconds)
{
	struct worker w[2];
	double t0 = now_s();
	for (unsigned t = 0; t < n; t++) {
		w[t] = (struct worker){.tr = trackers[t],
		                       .sh = sh,
		                       .cpu = (int)t,
		                       .index = t,
		                       .nthreads = n,
		                       .seconds = seconds};
		if (pthread_create(&w[t].thread, NULL, work, &w[t]) != 0)
			return -1;
	}
	uint64_t done = 0, failed = 0;
	for (unsigned t = 0; t < n; t++) {
		pthread_join(w[t].thread, NULL);
		done += w[t].done;
		failed += w[t].failed;
	}
	double elapsed = now_s() - t0;
	if (failed * 100 > done) {
		fprintf(stderr, "bench_scaling: %llu of %llu announces failed\n",
		        (unsigned long long)failed, (unsigned long long)(done + failed));
		return -1;
	}
	return (double)done / elapsed;
}

/* A tracker with every swarm of the shape full, and for a shape with a
 * price controller, the controller (*price) after one tick over them;
 * NULL on failure. */
static struct itr_tracker *filled_tracker(const struct shape *sh, const struct itr_netmap *map,
                                          struct itr_price **price)
{
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.announce_rate = 0; /* each peer announces many times a second */
	*price = NULL;
	if (sh->price) {
		struct itr_price_config pcfg;
		itr_price_config_default(&pcfg);
		pcfg.publish_costs = false; /* the map stays the bench's own */
		if (!(*price = itr_price_new(&pcfg))) {
			fprintf(stderr, "bench_scaling: price controller: out of memory\n");
			return NULL;
		}
		cfg.price = *price;
	}
	char e[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, e, sizeof(e));
	if (!tr) {
		fprintf(stderr, "bench_scaling: %s\n", e);
		itr_price_free(*price);
		return NULL;
	}
	struct itr_ranked_peer peers[MAX_WANT];
	struct itr_announce ann;
	struct itr_announce_reply reply;
	for (unsigned i = 0; i < stored_peers; i++) {
		make_announce(sh, i, true, &ann);
		itr_tracker_announce(tr, &ann, &reply, peers, MAX_WANT);
	}
	if (*price)
		itr_price_tick(*price, map, now_s());
	return tr;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int runs = 3;
	double seconds = 2;
	const char *only = NULL; /* shapes whose name holds it */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--peers") == 0 && i + 1 < argc)
			stored_peers = (unsigned)strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: bench_scaling [--runs N] [--seconds S] [--peers N] "
			                "[--only TEXT]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS || seconds <= 0 || stored_peers < 1000 ||
	    stored_peers > MAX_PEERS) {
		/* at least one swarm of the largest shape */
		fprintf(stderr, "bench_scaling: --runs 1..%d, --seconds > 0, --peers 1000..%d\n",
		        MAX_RUNS, MAX_PEERS);
		return 2;
	}
	if (getenv("BENCH_QUICK") && *getenv("BENCH_QUICK") == '1') {
		runs = 1;
		seconds = 0.5;
	}
	cpu_set_t mine;
	if (sched_getaffinity(0, sizeof(mine), &mine) != 0 || !CPU_ISSET(0, &mine) ||
	    !CPU_ISSET(1, &mine)) {
		fprintf(stderr, "bench_scaling: needs CPUs 0 and 1\n");
		return 1;
	}
	/* the example map with an uplink per AS */
	char text[16384];
	FILE *f = fopen("maps/example.netmap", "r");
	size_t len = f ? fread(text, 1, sizeof(text) - sizeof(BENCH_LINKS), f) : 0;
	if (!f || ferror(f) || !feof(f)) {
		fprintf(stderr, "bench_scaling: maps/example.netmap: unreadable or too long\n");
		return 1;
	}
	fclose(f);
	memcpy(text + len, BENCH_LINKS, sizeof(BENCH_LINKS) - 1);
	len += sizeof(BENCH_LINKS) - 1;
	struct itr_netmap_error err;
	struct itr_netmap *map = itr_netmap_parse_text(text, len, "maps/example.netmap", &err);
	if (!map) {
		char buf[512];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "bench_scaling: %s\n", buf);
		return 1;
	}
	itr_netmap_publish(map);

	printf("itr_tracker_announce from 1 and 2 threads (CPUs 0, 1), %d run(s) of %.1f s, %u "
	       "peers, the example map with an uplink per AS; \"apart\": 2 threads on 2 trackers "
	       "that share nothing\n",
	       runs, seconds, stored_peers);
	printf("%-24s %26s %26s %20s %20s %20s\n", "shape", "1 thread /s min/med/max",
	       "2 threads /s min/med/max", "2 / 1 min/med/max", "apart 2 / 1", "shared / apart");
	for (size_t s = 0; s < NSHAPES; s++) {
		const struct shape *sh = &shapes[s];
		if (only && !strstr(sh->name, only))
			continue;
		double one[MAX_RUNS], two[MAX_RUNS], ratio[MAX_RUNS], apart[MAX_RUNS],
		    loss[MAX_RUNS];
		for (int r = 0; r < runs; r++) {
			struct itr_tracker *tr[2];
			struct itr_price *price[2];
			for (int k = 0; k < 2; k++)
				if (!(tr[k] = filled_tracker(sh, map, &price[k])))
					return 1;
			struct itr_tracker *shared[2] = {tr[0], tr[0]};
			/* the three loads in an order that turns every run */
			double got[3];
			for (int k = 0; k < 3; k++) {
				int which = (k + r) % 3;
				got[which] = measure(which == 2 ? tr : shared, sh,
				                     which == 0 ? 1 : 2, seconds);
				if (got[which] <= 0)
					return 1;
			}
			for (int k = 0; k < 2; k++) {
				itr_tracker_free(tr[k]);
				itr_price_free(price[k]);
			}
			one[r] = got[0];
			two[r] = got[1];
			ratio[r] = got[1] / got[0];
			apart[r] = got[2] / got[0];
			loss[r] = got[1] / got[2];
		}
		qsort(one, (size_t)runs, sizeof(double), cmp_double);
		qsort(two, (size_t)runs, sizeof(double), cmp_double);
		double med_one = one[runs / 2], med_two = two[runs / 2];
		qsort(ratio, (size_t)runs, sizeof(double), cmp_double);
		qsort(apart, (size_t)runs, sizeof(double), cmp_double);
		qsort(loss, (size_t)runs, sizeof(double), cmp_double);
		printf("%-24s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %6.2f %6.2f %6.2f %6.2f %6.2f "
		       "%6.2f %6.2f %6.2f %6.2f\n",
		       sh->name, one[0], med_one, one[runs - 1], two[0], med_two, two[runs - 1],
		       ratio[0], ratio[runs / 2], ratio[runs - 1], apart[0], apart[runs / 2],
		       apart[runs - 1], loss[0], loss[runs / 2], loss[runs - 1]);
		char name[128];
		snprintf(name, sizeof(name), "announce path %s, 2 threads", sh->name);
		benchjson_append(name, med_two, "announces/s", med_one);
	}
	printf("reproduce: BUILD=build build/bench/bench_scaling --runs %d --seconds %.1f --peers "
	       "%u%s%s%s\n",
	       runs, seconds, stored_peers, only ? " --only '" : "", only ? only : "",
	       only ? "'" : "");
	itr_netmap_publish(NULL);
	return 0;
}
