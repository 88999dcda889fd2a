/* bench_swarm.c - memory and speed of the tracker's peer store.
 *
 * Memory: resident bytes per stored IPv4 peer with 1,000,000 peers, from
 * the process RSS (/proc/self/statm) before and after filling a fresh store
 * (each measurement runs in its own forked child so freed memory of one
 * cannot flatter the next). Two shapes: 10,000 torrents x 100 peers, and
 * 50,000 torrents with Zipf-like sizes (torrent i gets ~1/(i+1)^0.9 of the
 * peers) as on a public tracker. Reference, measured the same way in the
 * same run: the same peers as one bare array of 6-byte compact records
 * (address + port, nothing else) - the floor any store must pay. Target:
 * at most 24 bytes per peer.
 *
 * Speed: microseconds per announce on the 1M-peer store (10,000 x 100,
 * example network map, numwant 50): a full itr_tracker_announce (store,
 * candidate sample, itr_rank) versus the reference of the store's announce
 * alone (refreshing a known peer), same peers, same run. Median of 5 rounds.
 *
 * Peers are random addresses and ports from a fixed-seed generator.
 * Reproduce: make BUILD=build bench  (or BUILD=build build/bench/bench_swarm)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchjson.h"
#include "benchproc.h"
#include "netmap.h"
#include "swarm.h"
#include "tracker.h"

#define PEERS  1000000
#define ROUNDS 5

static uint64_t rng_state;

static uint64_t rng(void)
{
	return bench_rng(&rng_state);
}

static size_t resident_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2) {
		perror("statm");
		exit(1);
	}
	fclose(f);
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

enum shape { UNIFORM, ZIPF };

/* Torrent index of the i-th peer. */
static uint32_t torrent_of(enum shape shape, const uint32_t *zipf_cum, size_t ntorrents, size_t i)
{
	if (shape == UNIFORM)
		return (uint32_t)(i % 10000);
	/* the peer's rank in [0, PEERS) mapped through the cumulative sizes */
	size_t lo = 0, hi = ntorrents;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (zipf_cum[mid] <= i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

static uint32_t *zipf_sizes(size_t ntorrents)
{
	double *w = malloc(ntorrents * sizeof(*w)), total = 0;
	uint32_t *cum = malloc(ntorrents * sizeof(*cum));
	for (size_t t = 0; t < ntorrents; t++) {
		w[t] = 1.0 / pow((double)(t + 1), 0.9);
		total += w[t];
	}
	double acc = 0;
	for (size_t t = 0; t < ntorrents; t++) {
		acc += w[t];
		cum[t] = (uint32_t)(acc / total * PEERS);
	}
	cum[ntorrents - 1] = PEERS;
	free(w);
	return cum;
}

static void random_peer(struct itr_peer_addr *p)
{
	uint64_t r = rng();
	memset(p, 0, sizeof(*p));
	p->family = 4;
	memcpy(p->addr, &r, 4);
	p->port = (uint16_t)(r >> 32 | 1);
}

static uint16_t group_by_first_octet(void *ctx, uint8_t family, const uint8_t *addr)
{
	(void)ctx;
	(void)family;
	return (uint16_t)(addr[0] % 16 + 1); /* a map of 16 PIDs */
}

/* Child: fill a store in the given shape; prints bytes/peer to fd. */
static void measure_store(enum shape shape, int fd)
{
	size_t ntorrents = shape == UNIFORM ? 10000 : 50000;
	uint32_t *cum = shape == ZIPF ? zipf_sizes(ntorrents) : NULL;
	struct itr_swarm_grouping grouping = {.generation = 1, .group_of = group_by_first_octet};
	struct itr_swarm_config cfg = {.peer_expiry = 2700};
	rng_state = 0x9e3779b97f4a7c15ull;
	size_t before = resident_bytes();
	struct itr_swarm_store *store = itr_swarm_mem_new(&cfg);
	for (size_t i = 0; i < PEERS; i++) {
		uint8_t ih[20] = {0};
		uint32_t t = torrent_of(shape, cum, ntorrents, i);
		memcpy(ih, &t, sizeof(t));
		struct itr_swarm_announce a = {.seeder = i % 3 == 0};
		random_peer(&a.peer);
		a.group = group_by_first_octet(NULL, 4, a.peer.addr);
		itr_swarm_announce(store, ih, &a, &grouping, 1000, NULL);
	}
	size_t after = resident_bytes();
	struct itr_swarm_stats st;
	itr_swarm_stats(store, &st);
	double per_peer = (double)(after - before) / (double)st.peers_v4;
	printf("  %-8s %zu torrents, %zu IPv4 peers: RSS +%.1f MiB = %.2f bytes/peer "
	       "(store's own count: %.2f bytes/peer)\n",
	       shape == UNIFORM ? "uniform" : "zipf", st.torrents, st.peers_v4,
	       (double)(after - before) / 1048576.0, per_peer,
	       (double)st.bytes / (double)st.peers_v4);
	if (write(fd, &per_peer, sizeof(per_peer)) != sizeof(per_peer))
		exit(1);
	itr_swarm_destroy(store);
	free(cum);
}

/* Child: the floor - the same peers as bare 6-byte compact records. */
static void measure_floor(int fd)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	size_t before = resident_bytes();
	uint8_t *compact = malloc((size_t)PEERS * 6);
	for (size_t i = 0; i < PEERS; i++) {
		struct itr_peer_addr p;
		random_peer(&p);
		memcpy(compact + 6 * i, p.addr, 4);
		compact[6 * i + 4] = (uint8_t)(p.port >> 8);
		compact[6 * i + 5] = (uint8_t)p.port;
	}
	size_t after = resident_bytes();
	double per_peer = (double)(after - before) / PEERS;
	printf("  floor    bare compact array: %.2f bytes/peer (checksum %u)\n", per_peer,
	       compact[12345]);
	if (write(fd, &per_peer, sizeof(per_peer)) != sizeof(per_peer))
		exit(1);
	free(compact);
}

static const char MAP[] = "tier same-pid 1\ntier same-loc 5\ntier same-as 10\ntier other-as 100\n"
                          "pid a1 id 1 asn 64500 loc 1\nprefix a1 10.10.0.0/16\n"
                          "pid a2 id 2 asn 64500 loc 2\nprefix a2 10.11.0.0/16\n"
                          "pid b id 10 asn 64501 loc 10\nprefix b 10.20.0.0/16\n"
                          "pid c id 20 asn 64502 loc 20\nprefix c 10.30.0.0/16\n";

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Child: microseconds per announce, with and without a ranked answer. */
static void measure_speed(int fd)
{
	struct itr_netmap_error err;
	itr_netmap_publish(itr_netmap_parse_text(MAP, strlen(MAP), "bench", &err));
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	char why[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, why, sizeof(why));
	if (!tr) {
		fprintf(stderr, "tracker: %s\n", why);
		exit(1);
	}
	static const uint8_t second_octet[4] = {10, 11, 20, 30};
	struct itr_announce *anns = malloc((size_t)PEERS * sizeof(*anns));
	struct itr_ranked_peer out[50];
	struct itr_announce_reply reply;
	rng_state = 0x243f6a8885a308d3ull;
	for (size_t i = 0; i < PEERS; i++) {
		struct itr_announce *a = &anns[i];
		memset(a, 0, sizeof(*a));
		uint32_t t = (uint32_t)(i % 10000);
		memcpy(a->info_hash, &t, sizeof(t));
		random_peer(&a->peer);
		a->peer.addr[0] = 10;
		a->peer.addr[1] = second_octet[rng() % 4];
		a->left = i % 3 ? 100 : 0;
		a->numwant = 0;
		itr_tracker_announce(tr, a, &reply, out, 50);
	}
	double results[2];
	for (int kind = 0; kind < 2; kind++) {
		double rounds[ROUNDS];
		for (int r = 0; r < ROUNDS; r++) {
			const size_t n = kind == 0 ? 5000 : 100000;
			double t0 = now_us();
			for (size_t k = 0; k < n; k++) {
				struct itr_announce a = anns[rng() % PEERS];
				a.numwant = kind == 0 ? 50 : 0;
				itr_tracker_announce(tr, &a, &reply, out, 50);
			}
			rounds[r] = (now_us() - t0) / (double)n;
		}
		qsort(rounds, ROUNDS, sizeof(double), cmp_double);
		results[kind] = rounds[ROUNDS / 2];
	}
	printf("  announce with 50 ranked peers: %.2f us; store only (numwant=0): %.2f us\n",
	       results[0], results[1]);
	if (write(fd, results, sizeof(results)) != sizeof(results))
		exit(1);
	itr_tracker_free(tr);
	free(anns);
	itr_netmap_publish(NULL);
}

/* Run fn in a child; read nvalues doubles from it. */
static int in_child(void (*fn)(int), double *values, size_t nvalues)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		fn(p[1]);
		fflush(stdout);
		_exit(0);
	}
	close(p[1]);
	ssize_t want = (ssize_t)(nvalues * sizeof(double));
	ssize_t got = read(p[0], values, (size_t)want);
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	return got == want && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void uniform_child(int fd)
{
	measure_store(UNIFORM, fd);
}

static void zipf_child(int fd)
{
	measure_store(ZIPF, fd);
}

int main(void)
{
	double uniform, zipf, floor_bytes, speed[2];
	printf("peer store memory, %d IPv4 peers (target <= 24 bytes/peer):\n", PEERS);
	if (in_child(measure_floor, &floor_bytes, 1) < 0 ||
	    in_child(uniform_child, &uniform, 1) < 0 || in_child(zipf_child, &zipf, 1) < 0 ||
	    in_child(measure_speed, speed, 2) < 0) {
		fprintf(stderr, "bench_swarm: a measurement failed\n");
		return 1;
	}
	bool ok = uniform <= 24 && zipf <= 24;
	printf("  target %s\n", ok ? "met" : "MISSED");
	if (benchjson_append("swarm_bytes_per_ipv4_peer_1M_uniform", uniform, "bytes",
	                     floor_bytes) < 0 ||
	    benchjson_append("swarm_bytes_per_ipv4_peer_1M_zipf", zipf, "bytes", floor_bytes) < 0 ||
	    benchjson_append("tracker_announce_numwant50_1M_peers", speed[0], "us", speed[1]) < 0)
		return 1;
	return ok ? 0 : 1;
}
