/* test_swarm.c - the in-memory peer store: add/refresh/remove, counts,
 * seeder flips, per-group selection (own group first, nearest groups next,
 * bounded by the budget, stable, each group in address order,
 * no self, no seeders for seeders), families kept apart, expiry in whole
 * minutes, the torrent and peer limits (with their log line), regrouping
 * after a map change, table deletes, and concurrent announces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "swarm.h"

/* Test grouping: an IPv4 address 10.0.G.H belongs to group G (+ shift). */
static unsigned group_shift;
static uint16_t group_by_third_octet(void *ctx, uint8_t family, const uint8_t *addr)
{
	(void)ctx;
	return (uint16_t)((family == 4 ? addr[2] : addr[15]) + group_shift);
}

static struct itr_swarm_grouping grouping = {
    .generation = 1,
    .group_of = group_by_third_octet,
};

static struct itr_peer_addr v4(uint8_t g, uint8_t h, uint16_t port)
{
	struct itr_peer_addr p = {.family = 4, .port = port};
	p.addr[0] = 10;
	p.addr[2] = g;
	p.addr[3] = h;
	return p;
}

static struct itr_peer_addr v6(uint8_t last, uint16_t port)
{
	struct itr_peer_addr p = {.family = 6, .port = port};
	p.addr[0] = 0xfd;
	p.addr[15] = last;
	return p;
}

static uint8_t ih_a[20] = "aaaaaaaaaaaaaaaaaaaa";
static uint8_t ih_b[20] = "bbbbbbbbbbbbbbbbbbbb";

static struct itr_swarm_store *new_store(size_t max_torrents, size_t max_peers)
{
	struct itr_swarm_config cfg = {
	    .max_torrents = max_torrents,
	    .max_peers = max_peers,
	    .peer_expiry = 120,
	    .shards = 4,
	};
	struct itr_swarm_store *s = itr_swarm_mem_new(&cfg);
	assert_non_null(s);
	return s;
}

static enum itr_swarm_status announce(struct itr_swarm_store *s, const uint8_t *ih,
                                      struct itr_peer_addr p, bool seeder, bool completed,
                                      uint32_t now, struct itr_swarm_counts *c)
{
	struct itr_swarm_announce a = {
	    .peer = p,
	    .group = group_by_third_octet(NULL, p.family, p.addr),
	    .seeder = seeder,
	    .completed = completed,
	};
	return itr_swarm_announce(s, ih, &a, &grouping, now, c);
}

static void test_add_refresh_remove(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	struct itr_swarm_counts c;

	assert_int_equal(itr_swarm_scrape(s, ih_a, 0, &c), -1);
	assert_int_equal(announce(s, ih_a, v4(1, 1, 6881), false, false, 0, &c), ITR_SWARM_STORED);
	assert_int_equal(c.incomplete, 1);
	assert_int_equal(c.complete, 0);
	/* same address and port again: refreshed, not duplicated */
	announce(s, ih_a, v4(1, 1, 6881), false, false, 10, &c);
	assert_int_equal(c.incomplete, 1);
	/* another port of the same address is another peer */
	announce(s, ih_a, v4(1, 1, 6882), false, false, 10, &c);
	assert_int_equal(c.incomplete, 2);
	/* it completes: becomes a seeder, one download counted, once */
	announce(s, ih_a, v4(1, 1, 6882), true, true, 20, &c);
	assert_int_equal(c.complete, 1);
	assert_int_equal(c.incomplete, 1);
	assert_int_equal(c.downloaded, 1);
	announce(s, ih_a, v4(1, 1, 6882), true, true, 30, &c);
	assert_int_equal(c.downloaded, 1);
	/* and back to leeching (a new download of a changed torrent) */
	announce(s, ih_a, v4(1, 1, 6882), false, false, 40, &c);
	assert_int_equal(c.complete, 0);
	assert_int_equal(c.incomplete, 2);

	assert_int_equal(
	    itr_swarm_remove(s, ih_a, &(struct itr_peer_addr){0}, 0, &grouping, 40, &c), -1);
	struct itr_peer_addr p = v4(1, 1, 6881);
	assert_int_equal(itr_swarm_remove(s, ih_a, &p, 1, &grouping, 40, &c), 0);
	assert_int_equal(c.incomplete, 1);
	assert_int_equal(itr_swarm_remove(s, ih_a, &p, 1, &grouping, 40, &c), -1);

	assert_int_equal(itr_swarm_scrape(s, ih_a, 40, &c), 0);
	assert_int_equal(c.incomplete, 1);
	assert_int_equal(itr_swarm_scrape(s, ih_b, 40, &c), -1);

	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 1);
	assert_int_equal(st.peers_v4, 1);
	assert_int_equal(st.peers_v6, 0);
	assert_true(st.bytes > 0);

	/* the last peer leaving takes the torrent with it */
	p = v4(1, 1, 6882);
	assert_int_equal(itr_swarm_remove(s, ih_a, &p, 1, &grouping, 50, &c), 0);
	assert_int_equal(itr_swarm_scrape(s, ih_a, 50, &c), -1);
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 0);
	assert_int_equal(st.peers_v4, 0);
	itr_swarm_destroy(s);
}

/* Each candidate's group comes back with it (0: a peer in no group); a
 * request holding an older generation than the swarm's gets "unknown",
 * never a number from the newer grouping nor 0, which would say "no PID". */
static void test_select_reports_groups(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	group_shift = 0;
	for (uint8_t g = 0; g < 3; g++)
		for (uint8_t h = 1; h <= 4; h++)
			announce(s, ih_a, v4(g, h, 6881), false, false, 0, NULL);
	struct itr_peer_addr out[16];
	uint16_t groups[16];
	struct itr_swarm_select req = {
	    .client = v4(1, 9, 6881), .group = 1, .max = 16, .groups = groups};
	size_t n = itr_swarm_select(s, ih_a, &req, &grouping, 0, out);
	assert_int_equal(n, 12);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(groups[i], out[i].addr[2]);

	/* a reload renumbers the groups (generation 2), then a request still
	 * holding generation 1 arrives */
	struct itr_swarm_grouping newer = grouping;
	newer.generation = 2;
	group_shift = 10;
	n = itr_swarm_select(s, ih_a, &req, &newer, 0, out);
	assert_int_equal(n, 12);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(groups[i], out[i].addr[2] + 10);
	group_shift = 0;
	n = itr_swarm_select(s, ih_a, &req, &grouping, 0, out);
	assert_int_equal(n, 12);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(groups[i], ITR_SWARM_GROUP_UNKNOWN);
	itr_swarm_destroy(s);
}

static size_t select_for(struct itr_swarm_store *s, struct itr_peer_addr client, bool seeder,
                         size_t max, uint64_t seed, struct itr_peer_addr *out)
{
	struct itr_swarm_select req = {
	    .client = client,
	    .group = group_by_third_octet(NULL, client.family, client.addr),
	    .no_seeders = seeder,
	    .seed = seed,
	    .max = max,
	};
	return itr_swarm_select(s, ih_a, &req, &grouping, 0, out);
}

static void test_select(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	/* groups 1..4 with 50 peers each; in group 2 every other peer seeds */
	for (uint8_t g = 1; g <= 4; g++)
		for (uint8_t h = 1; h <= 50; h++)
			announce(s, ih_a, v4(g, h, 6881), g == 2 && h % 2 == 0, false, 0, NULL);
	for (uint8_t h = 1; h <= 5; h++)
		announce(s, ih_a, v6(h, 6881), false, false, 0, NULL);

	struct itr_peer_addr out[300], again[300];
	struct itr_peer_addr me = v4(2, 1, 6881);

	/* everything fits: all 199 other IPv4 peers, never the client, no v6 */
	size_t n = select_for(s, me, false, 300, 7, out);
	assert_int_equal(n, 199);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].family, 4);
		assert_false(memcmp(out[i].addr, me.addr, 4) == 0 && out[i].port == me.port);
	}

	/* bounded: three quarters of the budget down the group order (own
	 * group first, then by group number without a cost), a quarter
	 * sampled over what every group has left */
	n = select_for(s, me, false, 40, 7, out);
	assert_int_equal(n, 40);
	size_t own = 0, per_group[5] = {0};
	for (size_t i = 0; i < n; i++) {
		per_group[out[i].addr[2]]++;
		if (out[i].addr[2] == 2)
			own++;
	}
	/* 30 in order (49 in the own group less me: all 30 there), then 10
	 * over the 19 + 50 + 50 + 50 left: 1, 3, 3, 3 (rounded cumulative) */
	assert_int_equal(own, 31);
	for (int g = 1; g <= 4; g++)
		assert_true(per_group[g] > 0);
	for (size_t i = 0; i < own; i++)
		assert_int_equal(out[i].addr[2], 2); /* own group comes first */

	/* stable: same swarm, same seed -> same answer */
	size_t m = select_for(s, me, false, 40, 7, again);
	assert_int_equal(m, n);
	assert_memory_equal(out, again, n * sizeof(out[0]));
	/* another client (seed) gets another window */
	m = select_for(s, me, false, 40, 8, again);
	assert_int_equal(m, n);
	assert_memory_not_equal(out, again, n * sizeof(out[0]));

	/* a seeder gets no seeders */
	n = select_for(s, me, true, 300, 7, out);
	assert_int_equal(n, 174); /* 200 - 25 seeders - me */
	for (size_t i = 0; i < n; i++)
		assert_false(out[i].addr[2] == 2 && out[i].addr[3] % 2 == 0);

	/* IPv6 clients get IPv6 peers only */
	n = select_for(s, v6(1, 6881), false, 300, 7, out);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].family, 6);

	/* unknown torrent, zero budget */
	struct itr_swarm_select req = {.client = me, .max = 10};
	assert_int_equal(itr_swarm_select(s, ih_b, &req, &grouping, 0, out), 0);
	assert_int_equal(select_for(s, me, false, 0, 7, out), 0);
	itr_swarm_destroy(s);
}

/* A group's part of a selection comes out in record (address) order, the
 * ranking's tie order, also when its window wraps past the group's end; and
 * it is still one window: the peers taken are consecutive records, the
 * client and (for a seeder) the seeders passed over. */
static void test_select_windows_in_address_order(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	for (uint8_t h = 1; h <= 50; h++)
		announce(s, ih_a, v4(2, h, 6881), h % 2 == 0, false, 0, NULL);
	struct itr_peer_addr me = v4(2, 9, 6881), out[50];
	for (int seeder = 0; seeder < 2; seeder++) {
		size_t wrapped = 0;
		for (uint64_t seed = 0; seed < 64; seed++) {
			size_t n = select_for(s, me, seeder, 10, seed, out);
			assert_int_equal(n, 10);
			/* which of the group's records were passed over */
			bool eligible[51] = {false}, taken[51] = {false};
			for (unsigned h = 1; h <= 50; h++)
				eligible[h] = h != 9 && !(seeder && h % 2 == 0);
			for (size_t i = 0; i < n; i++) {
				assert_true(eligible[out[i].addr[3]]);
				taken[out[i].addr[3]] = true;
				if (i > 0)
					assert_true(out[i].addr[3] > out[i - 1].addr[3]);
			}
			/* one run of eligible records, circularly: exactly one
			 * taken record follows one that is not */
			size_t starts = 0;
			for (unsigned h = 1; h <= 50; h++) {
				if (!taken[h])
					continue;
				unsigned prev = h;
				do
					prev = prev == 1 ? 50 : prev - 1;
				while (!eligible[prev]);
				starts += !taken[prev];
			}
			assert_int_equal(starts, 1);
			/* the group's first and last eligible record: it wrapped */
			wrapped += taken[1] && taken[seeder ? 49 : 50];
		}
		assert_true(wrapped > 0); /* the wrapping path ran */
	}
	itr_swarm_destroy(s);
}

/* Cost order for test_select_cost_order: group 3 nearest, then 1, then 4. */
static uint32_t cost_by_table(void *ctx, uint16_t group)
{
	(void)ctx;
	static const uint32_t cost[] = {0, 20, 0, 5, 90, 90};
	return group < 6 ? cost[group] : 1000;
}

/* Best buckets first: the nearest groups fill the list, the far ones are
 * only in the sample; windows are bounded by the budget, not the swarm. */
static void test_select_cost_order(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	/* group 1: 30 peers, group 2 (own): 10, group 3: 20, group 4: 2000 */
	for (uint16_t i = 0; i < 2000; i++)
		announce(s, ih_a, v4(4, (uint8_t)(i % 250), (uint16_t)(1000 + i)), false, false, 0,
		         NULL);
	for (uint8_t h = 1; h <= 30; h++)
		announce(s, ih_a, v4(1, h, 6881), false, false, 0, NULL);
	for (uint8_t h = 1; h <= 10; h++)
		announce(s, ih_a, v4(2, h, 6881), false, false, 0, NULL);
	for (uint8_t h = 1; h <= 20; h++)
		announce(s, ih_a, v4(3, h, 6881), false, false, 0, NULL);

	struct itr_peer_addr me = v4(2, 1, 6881), out[100];
	struct itr_swarm_select req = {
	    .client = me,
	    .group = 2,
	    .seed = 42,
	    .max = 80,
	    .group_cost = cost_by_table,
	};
	size_t n = itr_swarm_select(s, ih_a, &req, &grouping, 0, out);
	/* 60 in order: the own group's 10 (9 without me), group 3's 20, group
	 * 1's 30; then 20 sampled over what is left: 0 + 0 + 0 + 2000 */
	assert_int_equal(n, 79);
	size_t per_group[5] = {0};
	for (size_t i = 0; i < n; i++)
		per_group[out[i].addr[2]]++;
	assert_int_equal(per_group[2], 9);
	assert_int_equal(per_group[3], 20);
	assert_int_equal(per_group[1], 30);
	assert_int_equal(per_group[4], 20);
	/* in order: own, 3, 1, 4 */
	for (size_t i = 0; i < n; i++) {
		static const uint8_t order[] = {2, 3, 1, 4};
		size_t bound = i < 9 ? 0 : i < 29 ? 1 : i < 59 ? 2 : 3;
		assert_int_equal(out[i].addr[2], order[bound]);
	}
	/* no duplicates */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_false(memcmp(&out[i], &out[j], sizeof(out[i])) == 0);
	/* a client of the far group gets its own group first, the budget
	 * bounds the answer whatever the group's size */
	req.client = v4(4, 3, 1003);
	req.group = 4;
	n = itr_swarm_select(s, ih_a, &req, &grouping, 0, out);
	assert_int_equal(n, 80);
	size_t own = 0;
	for (size_t i = 0; i < n; i++)
		own += out[i].addr[2] == 4;
	assert_true(own >= 60);
	for (size_t i = 0; i < 60; i++)
		assert_int_equal(out[i].addr[2], 4);
	itr_swarm_destroy(s);
}

static void test_expiry_minutes(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0); /* peer_expiry 120 s = 2 minutes */
	struct itr_swarm_counts c;
	uint32_t t0 = 6000; /* minute 100 */
	announce(s, ih_a, v4(1, 1, 1), false, false, t0, NULL);
	announce(s, ih_a, v4(1, 2, 1), false, false, t0 + 60, NULL);
	assert_int_equal(itr_swarm_expire(s, t0 + 179), 0); /* minute 102: 2 old */
	assert_int_equal(itr_swarm_scrape(s, ih_a, t0 + 179, &c), 0);
	assert_int_equal(c.incomplete, 2);
	assert_int_equal(itr_swarm_expire(s, t0 + 180), 1); /* minute 103: first gone */
	/* lazy expiry on touch, without an expire pass; with its last peer
	 * gone the torrent goes too */
	assert_int_equal(itr_swarm_scrape(s, ih_a, t0 + 240, &c), -1);
	assert_int_equal(c.incomplete, 0);
	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 0);
	assert_int_equal(st.expired_peers, 2);
	itr_swarm_destroy(s);
}

/* The price controller's tallies (peers, seeders, left fractions in
 * 127ths) follow every change: a new peer, a re-announce with less left,
 * completion, stop, expiry; per group and for the whole swarm, in one
 * swarm's lookup and in the walk over all swarms. */
static enum itr_swarm_status announce_left(struct itr_swarm_store *s, const uint8_t *ih,
                                           struct itr_peer_addr p, uint64_t left,
                                           uint64_t downloaded, bool completed, uint32_t now)
{
	struct itr_swarm_announce a = {
	    .peer = p,
	    .group = group_by_third_octet(NULL, p.family, p.addr),
	    .seeder = left == 0,
	    .completed = completed,
	    .left = left,
	    .downloaded = downloaded,
	};
	return itr_swarm_announce(s, ih, &a, &grouping, now, NULL);
}

static void check_tally(struct itr_swarm_store *s, uint16_t group, uint32_t now, uint32_t peers,
                        uint32_t seeders, uint64_t left_units, uint32_t all_peers,
                        uint64_t all_left_units)
{
	struct itr_swarm_tally part, all;
	assert_int_equal(itr_swarm_tally(s, ih_a, &group, 1, &grouping, now, &part, &all), 0);
	assert_int_equal(part.peers, peers);
	assert_int_equal(part.seeders, seeders);
	assert_int_equal(part.left_units, left_units);
	assert_int_equal(all.peers, all_peers);
	assert_int_equal(all.left_units, all_left_units);
}

struct walked {
	size_t swarms;
	struct itr_swarm_group_tally g[8];
	size_t ng;
	struct itr_swarm_tally all;
};

static void walk(void *ctx, const struct itr_swarm_group_tally *groups, size_t n,
                 const struct itr_swarm_tally *all)
{
	struct walked *w = ctx;
	w->swarms++;
	w->ng = n < 8 ? n : 8;
	memcpy(w->g, groups, w->ng * sizeof(*groups));
	w->all = *all;
}

static void test_tallies(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0); /* expiry 2 minutes */
	uint32_t t0 = 6000;
	/* group 1: two leechers with all left (size 1000) */
	announce_left(s, ih_a, v4(1, 1, 1), 1000, 0, false, t0);
	announce_left(s, ih_a, v4(1, 2, 1), 1000, 0, false, t0);
	/* group 2: a seeder, and an IPv6 peer in the same group half done */
	announce_left(s, ih_a, v4(2, 1, 1), 0, 1000, false, t0);
	announce_left(s, ih_a, v6(2, 1), 500, 500, false, t0);
	check_tally(s, 1, t0, 2, 0, 254, 4, 254 + 64);
	check_tally(s, 2, t0, 2, 1, 64, 4, 254 + 64);
	struct itr_swarm_tally part, all;
	uint16_t both[2] = {1, 2};
	assert_int_equal(itr_swarm_tally(s, ih_a, both, 2, &grouping, t0, &part, &all), 0);
	assert_int_equal(part.peers, 4);
	assert_int_equal(part.seeders, 1);
	assert_int_equal(all.seeders, 1);
	/* a re-announce with a tenth left replaces its fraction */
	announce_left(s, ih_a, v4(1, 1, 1), 100, 900, false, t0 + 1);
	check_tally(s, 1, t0 + 1, 2, 0, 127 + 13, 4, 127 + 13 + 64);
	/* completion: a seeder now, nothing left */
	announce_left(s, ih_a, v4(1, 2, 1), 0, 1000, true, t0 + 2);
	check_tally(s, 1, t0 + 2, 2, 1, 13, 4, 13 + 64);
	/* stop */
	struct itr_peer_addr gone = v4(1, 1, 1);
	assert_int_equal(itr_swarm_remove(s, ih_a, &gone, 1, &grouping, t0 + 3, NULL), 0);
	check_tally(s, 1, t0 + 3, 1, 1, 0, 3, 64);
	/* the walk over every swarm sees the same, groups merged over both
	 * families */
	announce_left(s, ih_b, v4(3, 1, 1), 10, 0, false, t0 + 3);
	struct walked w = {0};
	s->ops->tally_each(s, &grouping, t0 + 3, walk, &w);
	assert_int_equal(w.swarms, 2);
	/* expiry: the group-2 peers stay fresh, the rest expires */
	announce_left(s, ih_a, v4(2, 1, 1), 0, 1000, false, t0 + 120);
	announce_left(s, ih_a, v6(2, 1), 250, 750, false, t0 + 120);
	check_tally(s, 1, t0 + 200, 0, 0, 0, 2, 32);
	check_tally(s, 2, t0 + 200, 2, 1, 32, 2, 32);
	memset(&w, 0, sizeof(w));
	s->ops->tally_each(s, &grouping, t0 + 200, walk, &w);
	assert_int_equal(w.swarms, 1); /* ih_b expired on the way */
	assert_int_equal(w.ng, 1);
	assert_int_equal(w.g[0].group, 2);
	assert_int_equal(w.g[0].tally.peers, 2);
	assert_int_equal(w.g[0].tally.seeders, 1);
	assert_int_equal(w.g[0].tally.left_units, 32);
	assert_int_equal(w.all.peers, 2);
	/* an unknown torrent */
	uint16_t g1 = 1;
	assert_int_equal(itr_swarm_tally(s, ih_b, &g1, 1, &grouping, t0 + 200, &part, &all), -1);
	assert_int_equal(all.peers, 0);
	itr_swarm_destroy(s);
}

/* Runs fn with stderr going to a temporary file; returns what was written. */
static char *capture_stderr(void (*fn)(struct itr_swarm_store *), struct itr_swarm_store *s)
{
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), 2);
	fn(s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long len = ftell(tmp);
	char *text = calloc(1, (size_t)len + 1);
	rewind(tmp);
	assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
	fclose(tmp);
	return text;
}

static struct itr_swarm_store *new_store_shards(size_t max_torrents, size_t max_peers,
                                                unsigned shards,
                                                struct itr_swarm_source_hooks *hooks)
{
	struct itr_swarm_config cfg = {
	    .max_torrents = max_torrents,
	    .max_peers = max_peers,
	    .peer_expiry = 120,
	    .shards = shards,
	};
	if (hooks)
		cfg.hooks = *hooks;
	struct itr_swarm_store *s = itr_swarm_mem_new(&cfg);
	assert_non_null(s);
	return s;
}

static void hit_limits(struct itr_swarm_store *s)
{
	struct itr_swarm_counts c;
	assert_int_equal(announce(s, ih_a, v4(1, 1, 1), false, false, 0, &c), ITR_SWARM_STORED);
	assert_int_equal(announce(s, ih_a, v4(1, 2, 1), false, false, 0, &c), ITR_SWARM_STORED);
	/* third peer refused: the only swarm to evict is its own */
	assert_int_equal(announce(s, ih_a, v4(1, 5, 1), false, false, 0, &c), ITR_SWARM_NO_PEERS);
	assert_int_equal(c.incomplete, 2);
	assert_int_equal(announce(s, ih_a, v4(1, 1, 1), true, false, 0, &c), ITR_SWARM_STORED);
	assert_int_equal(c.complete, 1);
	/* a second refusal in the same minute does not log again */
	assert_int_equal(announce(s, ih_a, v4(1, 6, 1), false, false, 0, &c), ITR_SWARM_NO_PEERS);
}

static void test_limits(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store_shards(0, 2, 1, NULL);
	char *log = capture_stderr(hit_limits, s);
	assert_non_null(strstr(log, "peers limit of 2 reached"));
	const char *first = strstr(log, "peers limit");
	assert_null(strstr(first + 1, "peers limit")); /* once per minute */
	free(log);
	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.refused_peers, 2);
	assert_int_equal(st.peers_v4, 2);
	itr_swarm_destroy(s);
}

/* At the torrent limit a new torrent is stored: an older swarm makes room
 * (issue 10: after a flood every real client got "tracker full"). */
static void test_full_store_evicts(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store_shards(2, 0, 1, NULL);
	struct itr_swarm_counts c;
	uint8_t ih_c[20] = "cccccccccccccccccccc";
	assert_int_equal(announce(s, ih_a, v4(1, 1, 1), false, false, 0, &c), ITR_SWARM_STORED);
	assert_int_equal(announce(s, ih_b, v4(1, 3, 1), false, false, 60, &c), ITR_SWARM_STORED);
	assert_int_equal(announce(s, ih_c, v4(1, 4, 1), false, false, 120, &c), ITR_SWARM_STORED);
	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 2);
	assert_int_equal(st.peers_v4, 2);
	assert_int_equal(st.evicted_torrents, 1);
	assert_int_equal(st.refused_torrents, 0);
	/* the one silent longest went */
	assert_int_equal(itr_swarm_scrape(s, ih_a, 120, &c), -1);
	assert_int_equal(itr_swarm_scrape(s, ih_c, 120, &c), 0);
	itr_swarm_destroy(s);
}

/* A flood that expires gives its memory back: the tables shrink to the
 * live state (RSS stayed at 147 MB after 907k torrents expired). */
static void test_tables_shrink_after_expiry(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	struct itr_swarm_stats empty, full, after;
	itr_swarm_stats(s, &empty);
	uint8_t ih[20] = "zzzzzzzzzzzzzzzzzzzz";
	for (uint32_t i = 0; i < 100000; i++) {
		memcpy(ih, &i, sizeof(i));
		assert_int_equal(announce(s, ih, v4(1, 1, 1), false, false, 0, NULL),
		                 ITR_SWARM_STORED);
	}
	itr_swarm_stats(s, &full);
	assert_int_equal(full.torrents, 100000);
	/* ten live torrents, announced later */
	for (uint32_t i = 0; i < 10; i++) {
		memcpy(ih, &i, sizeof(i));
		ih[19] = 'L';
		announce(s, ih, v4(1, 2, 1), false, false, 6000, NULL);
	}
	assert_int_equal(itr_swarm_expire(s, 6060), 100000);
	itr_swarm_stats(s, &after);
	assert_int_equal(after.torrents, 10);
	/* 4 shards of at most 16 slots of 56 bytes, plus ten small blocks */
	assert_true(after.bytes < empty.bytes + 4 * 16 * 56 + 10 * 64);
	assert_true(full.bytes > 50 * after.bytes);
	/* and the store still works at its new size */
	ih[19] = 'z';
	for (uint32_t i = 0; i < 1000; i++) {
		memcpy(ih, &i, sizeof(i));
		assert_int_equal(announce(s, ih, v4(1, 3, 1), false, false, 6060, NULL),
		                 ITR_SWARM_STORED);
	}
	itr_swarm_stats(s, &after);
	assert_int_equal(after.torrents, 1010);
	itr_swarm_destroy(s);
}

static void test_max_per_source(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	struct itr_swarm_counts c;
	struct itr_swarm_announce a = {.peer = v4(1, 1, 1), .group = 1, .max_per_source = 3};
	for (uint16_t port = 1; port <= 3; port++) {
		a.peer.port = port;
		assert_int_equal(itr_swarm_announce(s, ih_a, &a, &grouping, 0, &c),
		                 ITR_SWARM_STORED);
	}
	a.peer.port = 4;
	assert_int_equal(itr_swarm_announce(s, ih_a, &a, &grouping, 0, &c), ITR_SWARM_SOURCE_PEERS);
	/* a known port still refreshes; another address and another swarm are free */
	a.peer.port = 2;
	assert_int_equal(itr_swarm_announce(s, ih_a, &a, &grouping, 0, &c), ITR_SWARM_STORED);
	a.peer.port = 4;
	assert_int_equal(itr_swarm_announce(s, ih_b, &a, &grouping, 0, &c), ITR_SWARM_STORED);
	a.peer = v4(1, 2, 9);
	assert_int_equal(itr_swarm_announce(s, ih_a, &a, &grouping, 0, &c), ITR_SWARM_STORED);
	assert_int_equal(c.incomplete, 4);
	itr_swarm_destroy(s);
}

/* A test source table: swarms per fourth octet of 10.0.G.H. */
static uint32_t swarms_of[256];
static uint32_t swarms_limit;
static bool test_enter(void *ctx, const struct itr_peer_addr *a)
{
	(void)ctx;
	if (swarms_limit && swarms_of[a->addr[3]] >= swarms_limit)
		return false;
	swarms_of[a->addr[3]]++;
	return true;
}
static void test_leave(void *ctx, const struct itr_peer_addr *a)
{
	(void)ctx;
	assert_true(swarms_of[a->addr[3]] > 0);
	swarms_of[a->addr[3]]--;
}
static uint32_t test_weight(void *ctx, const struct itr_peer_addr *a)
{
	(void)ctx;
	return swarms_of[a->addr[3]];
}

static void test_source_hooks(void **state)
{
	(void)state;
	memset(swarms_of, 0, sizeof(swarms_of));
	swarms_limit = 3;
	struct itr_swarm_source_hooks hooks = {
	    .enter = test_enter, .leave = test_leave, .weight = test_weight};
	struct itr_swarm_store *s = new_store_shards(0, 0, 4, &hooks);
	struct itr_swarm_counts c;
	uint8_t ih[20] = "xxxxxxxxxxxxxxxxxxxx";
	for (uint8_t t = 0; t < 3; t++) {
		ih[0] = t;
		/* two ports of one address count once per swarm */
		assert_int_equal(announce(s, ih, v4(1, 7, 1), false, false, 0, &c),
		                 ITR_SWARM_STORED);
		assert_int_equal(announce(s, ih, v4(1, 7, 2), false, false, 0, &c),
		                 ITR_SWARM_STORED);
	}
	assert_int_equal(swarms_of[7], 3);
	ih[0] = 3;
	assert_int_equal(announce(s, ih, v4(1, 7, 1), false, false, 0, &c),
	                 ITR_SWARM_SOURCE_SWARMS);
	assert_int_equal(itr_swarm_scrape(s, ih, 0, &c), -1);
	/* removing one of two ports keeps the swarm counted, the second does not */
	ih[0] = 0;
	assert_int_equal(itr_swarm_remove(s, ih, &(struct itr_peer_addr){0}, 1, &grouping, 0, &c),
	                 -1);
	struct itr_peer_addr p = v4(1, 7, 1);
	assert_int_equal(itr_swarm_remove(s, ih, &p, 1, &grouping, 0, &c), 0);
	assert_int_equal(swarms_of[7], 3);
	p.port = 2;
	assert_int_equal(itr_swarm_remove(s, ih, &p, 1, &grouping, 0, &c), 0);
	assert_int_equal(swarms_of[7], 2);
	/* another address, then expiry of everything */
	assert_int_equal(announce(s, ih, v4(1, 8, 1), false, false, 0, &c), ITR_SWARM_STORED);
	assert_int_equal(swarms_of[8], 1);
	assert_int_equal(itr_swarm_expire(s, 10000), 5);
	assert_int_equal(swarms_of[7], 0);
	assert_int_equal(swarms_of[8], 0);
	itr_swarm_destroy(s);
}

/* A full store evicts the flooding source's swarms, not a real client's. */
static void test_eviction_picks_heaviest_source(void **state)
{
	(void)state;
	memset(swarms_of, 0, sizeof(swarms_of));
	swarms_limit = 0;
	struct itr_swarm_source_hooks hooks = {
	    .enter = test_enter, .leave = test_leave, .weight = test_weight};
	struct itr_swarm_store *s = new_store_shards(24, 0, 1, &hooks);
	struct itr_swarm_counts c;
	uint8_t ih[20] = "yyyyyyyyyyyyyyyyyyyy";
	/* real clients first (older), one torrent each, then a flood */
	for (uint8_t t = 0; t < 4; t++) {
		ih[0] = t;
		assert_int_equal(announce(s, ih, v4(1, (uint8_t)(10 + t), 1), false, false, 0, &c),
		                 ITR_SWARM_STORED);
	}
	for (uint8_t t = 4; t < 24; t++) {
		ih[0] = t;
		assert_int_equal(announce(s, ih, v4(1, 66, 1), false, false, 60, &c),
		                 ITR_SWARM_STORED);
	}
	/* 8 new torrents: each evicts a flood swarm (a sample of 16 of the 24
	 * swarms always holds one while the flood has more than 8 left) */
	for (uint8_t t = 24; t < 32; t++) {
		ih[0] = t;
		assert_int_equal(
		    announce(s, ih, v4(1, (uint8_t)(100 + t), 1), false, false, 90, &c),
		    ITR_SWARM_STORED);
	}
	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 24);
	assert_int_equal(st.evicted_torrents, 8);
	assert_int_equal(swarms_of[66], 12);
	for (uint8_t t = 0; t < 4; t++) {
		ih[0] = t;
		assert_int_equal(itr_swarm_scrape(s, ih, 90, &c), 0);
	}
	itr_swarm_destroy(s);
}

static void test_regroup(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	struct itr_swarm_counts c;
	group_shift = 0;
	grouping.generation = 1;
	for (uint8_t h = 1; h <= 10; h++)
		announce(s, ih_a, v4((uint8_t)(h % 2 + 1), h, 1), false, false, 0, NULL);
	/* the map changes: every group number moves */
	group_shift = 100;
	grouping.generation = 2;
	/* a re-announce finds the existing record under its new group */
	announce(s, ih_a, v4(2, 1, 1), false, false, 0, &c);
	assert_int_equal(c.incomplete, 10);
	/* selection by the new group numbers finds the right peers */
	struct itr_peer_addr out[10];
	size_t n = select_for(s, v4(2, 99, 1), false, 4, 1, out);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(out[i].addr[2], 2);
	/* a request still holding the older map: found by address, no duplicate */
	grouping.generation = 1;
	group_shift = 0;
	announce(s, ih_a, v4(1, 2, 1), false, false, 0, &c);
	assert_int_equal(c.incomplete, 10);
	grouping.generation = 1;
	group_shift = 0;
	itr_swarm_destroy(s);
}

static void test_many_torrents(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	struct itr_swarm_counts c;
	uint8_t ih[20] = {0};
	/* odd torrents announced at minute 0, even ones at minute 10 */
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(ih, &i, sizeof(i));
		announce(s, ih, v4(1, 1, 1), false, false, i % 2 ? 0 : 600, NULL);
	}
	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 5000);
	/* at minute 12 the odd ones have expired and are deleted, which
	 * shuffles probe runs: every even one must still be found */
	assert_int_equal(itr_swarm_expire(s, 720), 2500);
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(ih, &i, sizeof(i));
		assert_int_equal(itr_swarm_scrape(s, ih, 720, &c), i % 2 ? -1 : 0);
	}
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 2500);
	itr_swarm_destroy(s);
}

struct worker {
	struct itr_swarm_store *s;
	uint8_t id;
};

static void *announce_worker(void *arg)
{
	struct worker *w = arg;
	uint8_t ih[20] = {0};
	for (int round = 0; round < 3; round++)
		for (unsigned t = 0; t < 50; t++) {
			ih[0] = (uint8_t)t;
			for (uint8_t h = 0; h < 40; h++)
				announce(w->s, ih, v4(w->id, h, 1), false, false, 0, NULL);
		}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	struct itr_swarm_store *s = new_store(0, 0);
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.s = s, .id = (uint8_t)(i + 1)};
		pthread_create(&th[i], NULL, announce_worker, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	struct itr_swarm_stats st;
	itr_swarm_stats(s, &st);
	assert_int_equal(st.torrents, 50);
	assert_int_equal(st.peers_v4, 50 * 4 * 40);
	itr_swarm_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_refresh_remove),
	    cmocka_unit_test(test_select_reports_groups),
	    cmocka_unit_test(test_select),
	    cmocka_unit_test(test_select_windows_in_address_order),
	    cmocka_unit_test(test_select_cost_order),
	    cmocka_unit_test(test_expiry_minutes),
	    cmocka_unit_test(test_tallies),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_full_store_evicts),
	    cmocka_unit_test(test_max_per_source),
	    cmocka_unit_test(test_tables_shrink_after_expiry),
	    cmocka_unit_test(test_source_hooks),
	    cmocka_unit_test(test_eviction_picks_heaviest_source),
	    cmocka_unit_test(test_regroup),
	    cmocka_unit_test(test_many_torrents),
	    cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
