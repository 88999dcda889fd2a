/* test_tracker.c - announce/scrape logic on a real network map: peers
 * ranked by p-distance, the client's PID bucket found in a big swarm,
 * stable answers on re-announce, no seeders for seeders, events and
 * counts, numwant bounds, expiry on an injected clock, regrouping after a
 * map reload, trusted proxies and config validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <cmocka.h>

#include "netmap.h"
#include "announce_backend.h"
#include "tracker.h"

/* The example network (maps/example.netmap), inline so the test does not
 * depend on the working directory. */
static const char MAP_TEXT[] = "network-map example-networkmap\n"
                               "tier same-pid 1\n"
                               "tier same-loc 5\n"
                               "tier same-as 10\n"
                               "tier other-as 100\n"
                               "pid a-metro1 id 1 asn 64500 loc 1\n"
                               "prefix a-metro1 10.10.1.0/24 fd00:10:1::/48\n"
                               "pid a-metro2 id 2 asn 64500 loc 2\n"
                               "prefix a-metro2 10.10.2.0/24 fd00:10:2::/48\n"
                               "pid c-all id 20 asn 64502 loc 20\n"
                               "prefix c-all 10.30.0.0/16 fd00:30::/32\n"
                               "cost a-metro1 a-metro2 7\n"
                               "cost a-metro2 a-metro1 7\n";

/* The same network after a renumbering: 10.10.1.0/24 now belongs to a new
 * PID declared first, so every PID index (group) moves. */
static const char MAP_TEXT_RELOADED[] = "pid a-metro1-new id 7 asn 64500 loc 1\n"
                                        "prefix a-metro1-new 10.10.1.0/24\n"
                                        "pid a-metro2 id 2 asn 64500 loc 2\n"
                                        "prefix a-metro2 10.10.2.0/24\n"
                                        "pid c-all id 20 asn 64502 loc 20\n"
                                        "prefix c-all 10.30.0.0/16\n";

static uint32_t fake_now = 100000;
static uint32_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void publish(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *map = itr_netmap_parse_text(text, strlen(text), "test", &err);
	if (!map) {
		char buf[512];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fail_msg("map: %s", buf);
	}
	itr_netmap_publish(map);
}

static const uint8_t IH[20] = "0123456789abcdefghij";

static struct itr_tracker *new_tracker(void (*tweak)(struct itr_tracker_config *))
{
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.clock = fake_clock;
	/* pure p-distance order: no shares, no external budget */
	cfg.policy = (struct itr_rank_policy){
	    .max_own_pid_pct = 100, .max_own_as_pct = 100, .max_external = 1000};
	if (tweak)
		tweak(&cfg);
	char err[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	if (!tr)
		fail_msg("tracker: %s", err);
	return tr;
}

static struct itr_peer_addr ip4(const char *text, uint16_t port)
{
	struct itr_peer_addr p = {.family = 4, .port = port};
	assert_int_equal(inet_pton(AF_INET, text, p.addr), 1);
	return p;
}

static struct itr_peer_addr net_peer(int b, int c, int d, uint16_t port)
{
	struct itr_peer_addr p = {.family = 4, .port = port};
	p.addr[0] = 10;
	p.addr[1] = (uint8_t)b;
	p.addr[2] = (uint8_t)c;
	p.addr[3] = (uint8_t)d;
	return p;
}

static size_t do_announce(struct itr_tracker *tr, struct itr_peer_addr peer, uint64_t left,
                          enum itr_event event, int64_t numwant, struct itr_announce_reply *reply,
                          struct itr_ranked_peer *out, size_t cap)
{
	struct itr_announce ann = {.peer = peer, .left = left, .event = event, .numwant = numwant};
	memcpy(ann.info_hash, IH, 20);
	struct itr_announce_reply local;
	if (!reply)
		reply = &local;
	assert_int_equal(itr_tracker_announce(tr, &ann, reply, out, cap), 0);
	return reply->npeers;
}

static void fill_three_pids(struct itr_tracker *tr)
{
	struct itr_ranked_peer none[1];
	for (int i = 1; i <= 10; i++) {
		do_announce(tr, net_peer(10, 1, i, 6881), 100, ITR_EVENT_STARTED, 0, NULL, none, 1);
		do_announce(tr, net_peer(10, 2, i, 6881), 100, ITR_EVENT_STARTED, 0, NULL, none, 1);
		do_announce(tr, net_peer(30, 0, i, 6881), 100, ITR_EVENT_STARTED, 0, NULL, none, 1);
	}
}

static void test_no_map_yet(void **state)
{
	(void)state;
	itr_netmap_publish(NULL);
	struct itr_tracker *tr = new_tracker(NULL);
	fill_three_pids(tr);
	struct itr_ranked_peer out[50];
	size_t n =
	    do_announce(tr, net_peer(10, 1, 200, 6881), 100, ITR_EVENT_STARTED, 50, NULL, out, 50);
	assert_int_equal(n, 30); /* everyone, in BEP 40 order */
	for (size_t i = 1; i < n; i++)
		assert_true(out[i - 1].priority >= out[i].priority);
	itr_tracker_free(tr);
}

static void test_ranked_by_locality(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(NULL);
	fill_three_pids(tr);
	struct itr_ranked_peer out[50];
	struct itr_announce_reply reply;
	struct itr_peer_addr me = net_peer(10, 1, 200, 6881);

	size_t n = do_announce(tr, me, 100, ITR_EVENT_STARTED, 15, &reply, out, 50);
	assert_int_equal(n, 15);
	assert_int_equal(reply.interval, 1800);
	assert_int_equal(reply.min_interval, 900);
	assert_int_equal(reply.counts.incomplete, 31);
	/* the ten a-metro1 peers, then five from a-metro2 (cost 7), none from
	 * c-all (cost 100) */
	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(out[i].peer.addr[2], 1);
		assert_int_equal(out[i].cost, 1);
	}
	for (size_t i = 10; i < 15; i++) {
		assert_int_equal(out[i].peer.addr[2], 2);
		assert_int_equal(out[i].cost, 7);
	}
	for (size_t i = 0; i < n; i++)
		assert_false(memcmp(out[i].peer.addr, me.addr, 4) == 0);
	itr_tracker_free(tr);
}

static void test_stable_selection(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(NULL);
	struct itr_ranked_peer none[1];
	for (int i = 0; i < 300; i++)
		do_announce(tr, net_peer(30, i / 250, i % 250 + 1, 6881), 100, ITR_EVENT_NONE, 0,
		            NULL, none, 1);
	struct itr_ranked_peer first[20], again[20];
	struct itr_peer_addr me = net_peer(10, 1, 9, 6881);
	size_t n = do_announce(tr, me, 100, ITR_EVENT_STARTED, 20, NULL, first, 20);
	assert_int_equal(n, 20);
	for (int round = 0; round < 3; round++) {
		fake_now += 600; /* re-announces ten minutes apart */
		size_t m = do_announce(tr, me, 100, ITR_EVENT_NONE, 20, NULL, again, 20);
		assert_int_equal(m, n);
		for (size_t i = 0; i < n; i++)
			assert_memory_equal(&first[i].peer, &again[i].peer, sizeof(first[i].peer));
	}
	itr_tracker_free(tr);
}

static void tweak_small_candidates(struct itr_tracker_config *cfg)
{
	cfg->max_candidates = 200;
}

static void test_big_swarm_own_bucket(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(tweak_small_candidates);
	struct itr_ranked_peer none[1];
	for (int i = 0; i < 20000; i++)
		do_announce(tr, net_peer(30, i / 250, i % 250 + 1, 6881), 100, ITR_EVENT_NONE, 0,
		            NULL, none, 1);
	for (int i = 1; i <= 60; i++)
		do_announce(tr, net_peer(10, 1, i, 6881), 100, ITR_EVENT_NONE, 0, NULL, none, 1);
	/* 60 local peers among 20060: a uniform sample of 200 would hold
	 * fewer than one; the PID bucket holds them all */
	struct itr_ranked_peer out[50];
	size_t n =
	    do_announce(tr, net_peer(10, 1, 100, 6881), 100, ITR_EVENT_STARTED, 50, NULL, out, 50);
	assert_int_equal(n, 50);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].peer.addr[1], 10);
	itr_tracker_free(tr);
}

/* The nearest buckets come first however small: 10 a-metro2 peers (cost 7)
 * among 20,000 of c-all (cost 100) all reach an a-metro1 client's list. A
 * candidate sample in proportion to bucket size (before: 1,000 drawn from
 * 20,010 peers) held none of them, so the list was c-all only. */
static void test_near_bucket_first(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(NULL);
	struct itr_ranked_peer none[1];
	for (int i = 0; i < 20000; i++)
		do_announce(tr, net_peer(30, i / 250, i % 250 + 1, 6881), 100, ITR_EVENT_NONE, 0,
		            NULL, none, 1);
	for (int i = 1; i <= 10; i++)
		do_announce(tr, net_peer(10, 2, i, 6881), 100, ITR_EVENT_NONE, 0, NULL, none, 1);
	struct itr_ranked_peer out[50];
	size_t n =
	    do_announce(tr, net_peer(10, 1, 100, 6881), 100, ITR_EVENT_STARTED, 50, NULL, out, 50);
	assert_int_equal(n, 50);
	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(out[i].peer.addr[1], 10);
		assert_int_equal(out[i].cost, 7);
	}
	for (size_t i = 10; i < n; i++)
		assert_int_equal(out[i].peer.addr[1], 30);
	itr_tracker_free(tr);
}

static void test_seeders_and_events(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(NULL);
	struct itr_ranked_peer out[50];
	struct itr_announce_reply reply;
	/* three seeders, two leechers */
	for (int i = 1; i <= 3; i++)
		do_announce(tr, net_peer(10, 1, i, 1), 0, ITR_EVENT_STARTED, 0, NULL, out, 50);
	do_announce(tr, net_peer(10, 1, 4, 1), 5, ITR_EVENT_STARTED, 0, NULL, out, 50);
	do_announce(tr, net_peer(10, 1, 5, 1), 5, ITR_EVENT_STARTED, 0, &reply, out, 50);
	assert_int_equal(reply.counts.complete, 3);
	assert_int_equal(reply.counts.incomplete, 2);
	assert_int_equal(reply.npeers, 0); /* numwant 0 */

	/* a seeder gets only the other leecher */
	size_t n = do_announce(tr, net_peer(10, 1, 1, 1), 0, ITR_EVENT_NONE, -1, NULL, out, 50);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_true(out[i].peer.addr[3] >= 4);
	/* a leecher gets everyone else */
	n = do_announce(tr, net_peer(10, 1, 4, 1), 5, ITR_EVENT_NONE, -1, NULL, out, 50);
	assert_int_equal(n, 4);

	/* completed: a download, and now a seeder */
	do_announce(tr, net_peer(10, 1, 4, 1), 0, ITR_EVENT_COMPLETED, 0, &reply, out, 50);
	assert_int_equal(reply.counts.complete, 4);
	assert_int_equal(reply.counts.downloaded, 1);
	/* stopped: gone */
	do_announce(tr, net_peer(10, 1, 5, 1), 5, ITR_EVENT_STOPPED, -1, &reply, out, 50);
	assert_int_equal(reply.npeers, 0);
	assert_int_equal(reply.counts.incomplete, 0);
	struct itr_swarm_counts c;
	assert_int_equal(itr_tracker_scrape(tr, IH, &c), 0);
	assert_int_equal(c.complete, 4);
	assert_int_equal(c.incomplete, 0);
	assert_int_equal(c.downloaded, 1);
	uint8_t unknown[20] = {1};
	assert_int_equal(itr_tracker_scrape(tr, unknown, &c), -1);
	assert_int_equal(c.complete, 0);

	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.announces, 9);
	assert_int_equal(st.scrapes, 2);
	assert_int_equal(st.store.peers_v4, 4);
	/* the same figures through the announce backend interface */
	struct itr_backend_stats bs;
	itr_backend_stats(itr_tracker_backend(tr), &bs);
	assert_int_equal(bs.announces, 9);
	assert_int_equal(bs.scrapes, 2);
	assert_int_equal(bs.peers, 4);
	assert_int_equal(bs.torrents, st.store.torrents);
	itr_tracker_free(tr);
}

static void tweak_numwant(struct itr_tracker_config *cfg)
{
	cfg->default_numwant = 5;
	cfg->max_numwant = 8;
}

static void test_numwant_bounds(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(tweak_numwant);
	fill_three_pids(tr);
	struct itr_ranked_peer out[50];
	struct itr_peer_addr me = net_peer(10, 2, 99, 1);
	assert_int_equal(do_announce(tr, me, 1, ITR_EVENT_NONE, -1, NULL, out, 50), 5);
	assert_int_equal(do_announce(tr, me, 1, ITR_EVENT_NONE, 1000, NULL, out, 50), 8);
	assert_int_equal(do_announce(tr, me, 1, ITR_EVENT_NONE, 3, NULL, out, 50), 3);
	assert_int_equal(do_announce(tr, me, 1, ITR_EVENT_NONE, 1000, NULL, out, 2), 2);
	itr_tracker_free(tr);
}

static void tweak_expiry(struct itr_tracker_config *cfg)
{
	cfg->peer_expiry = 120;
	cfg->interval = 60;
	cfg->min_interval = 30;
}

static void test_expiry_on_clock(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	fake_now = 60 * 1000;
	struct itr_tracker *tr = new_tracker(tweak_expiry);
	struct itr_ranked_peer out[10];
	do_announce(tr, net_peer(10, 1, 1, 1), 1, ITR_EVENT_STARTED, 0, NULL, out, 10);
	fake_now += 60;
	do_announce(tr, net_peer(10, 1, 2, 1), 1, ITR_EVENT_STARTED, 0, NULL, out, 10);
	fake_now += 119; /* first peer: 2 minutes 59 s old, still within its minute */
	assert_int_equal(itr_tracker_expire(tr), 0);
	fake_now += 1;
	assert_int_equal(itr_tracker_expire(tr), 1);
	size_t n = do_announce(tr, net_peer(10, 1, 3, 1), 1, ITR_EVENT_STARTED, 10, NULL, out, 10);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].peer.addr[3], 2);
	itr_tracker_free(tr);
}

static void test_map_reload_regroups(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(NULL);
	fill_three_pids(tr);
	publish(MAP_TEXT_RELOADED);
	struct itr_ranked_peer out[50];
	struct itr_announce_reply reply;
	/* an existing peer re-announces: found, not duplicated */
	size_t n =
	    do_announce(tr, net_peer(10, 1, 3, 6881), 100, ITR_EVENT_NONE, 9, &reply, out, 50);
	assert_int_equal(reply.counts.incomplete, 30);
	assert_int_equal(n, 9);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].peer.addr[2], 1);
		assert_non_null(out[i].pid);
		assert_string_equal(out[i].pid->name, "a-metro1-new");
	}
	itr_tracker_free(tr);
}

static void test_ipv6_kept_apart(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(NULL);
	fill_three_pids(tr);
	struct itr_peer_addr a6 = {.family = 6, .port = 7000};
	assert_int_equal(inet_pton(AF_INET6, "fd00:10:1::5", a6.addr), 1);
	struct itr_peer_addr b6 = a6;
	b6.addr[15] = 6;
	struct itr_ranked_peer out[50];
	struct itr_announce_reply reply;
	do_announce(tr, a6, 1, ITR_EVENT_STARTED, 0, NULL, out, 50);
	size_t n = do_announce(tr, b6, 1, ITR_EVENT_STARTED, 50, &reply, out, 50);
	assert_int_equal(reply.counts.incomplete, 32);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].peer.family, 6);
	assert_memory_equal(out[0].peer.addr, a6.addr, 16);
	itr_tracker_free(tr);
}

static void tweak_proxies(struct itr_tracker_config *cfg)
{
	cfg->trusted_proxies = "127.0.0.1, 192.0.2.0/24 ::1 ::ffff:10.1.0.0/112";
}

static void test_trusted_proxies(void **state)
{
	(void)state;
	struct itr_tracker *tr = new_tracker(tweak_proxies);
	assert_true(itr_tracker_trusts(tr, &(struct itr_peer_addr){0}) == false);
	struct itr_peer_addr p = ip4("127.0.0.1", 0);
	assert_true(itr_tracker_trusts(tr, &p));
	p = ip4("127.0.0.2", 0);
	assert_false(itr_tracker_trusts(tr, &p));
	p = ip4("192.0.2.200", 0);
	assert_true(itr_tracker_trusts(tr, &p));
	p = ip4("192.0.3.1", 0);
	assert_false(itr_tracker_trusts(tr, &p));
	struct itr_peer_addr v6 = {.family = 6};
	v6.addr[15] = 1;
	assert_true(itr_tracker_trusts(tr, &v6));
	v6.addr[15] = 2;
	assert_false(itr_tracker_trusts(tr, &v6));
	/* requests from IPv4-mapped sources arrive as IPv4: a mapped entry
	 * (::ffff:10.1.0.0/112 = 10.1.0.0/16) must match them */
	p = ip4("10.1.200.3", 0);
	assert_true(itr_tracker_trusts(tr, &p));
	p = ip4("10.2.0.1", 0);
	assert_false(itr_tracker_trusts(tr, &p));
	itr_tracker_free(tr);

	struct itr_tracker *none = new_tracker(NULL);
	p = ip4("127.0.0.1", 0);
	assert_false(itr_tracker_trusts(none, &p));
	itr_tracker_free(none);
}

static void expect_config_error(void (*tweak)(struct itr_tracker_config *), const char *needle)
{
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	tweak(&cfg);
	char err[256] = "";
	assert_null(itr_tracker_new(&cfg, NULL, err, sizeof(err)));
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void bad_proxy_addr(struct itr_tracker_config *c)
{
	c->trusted_proxies = "10.0.0.1,300.1.1.1";
}
static void bad_proxy_len(struct itr_tracker_config *c)
{
	c->trusted_proxies = "10.0.0.0/33";
}
static void bad_proxy_mapped_len(struct itr_tracker_config *c)
{
	c->trusted_proxies = "::ffff:0:0/80";
}
static void bad_intervals(struct itr_tracker_config *c)
{
	c->min_interval = c->interval + 1;
}
static void bad_numwant(struct itr_tracker_config *c)
{
	c->max_numwant = 0;
}

static void test_config_errors(void **state)
{
	(void)state;
	expect_config_error(bad_proxy_addr, "'300.1.1.1' is not an IP address");
	expect_config_error(bad_proxy_mapped_len, "IPv4-mapped");
	expect_config_error(bad_proxy_len, "prefix longer than 32");
	expect_config_error(bad_intervals, "min_interval");
	expect_config_error(bad_numwant, "must be positive");
}

static void test_peer_addr_from_sockaddr(void **state)
{
	(void)state;
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
	struct itr_peer_addr p;
	assert_int_equal(itr_peer_addr_from_sockaddr((struct sockaddr *)&sin6, &p), 0);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.port, 80);
	assert_memory_equal(p.addr, "\xc0\x00\x02\x07", 4);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	assert_int_equal(itr_peer_addr_from_sockaddr((struct sockaddr *)&sin6, &p), 0);
	assert_int_equal(p.family, 6);
	struct sockaddr sa = {.sa_family = AF_UNIX};
	assert_int_equal(itr_peer_addr_from_sockaddr(&sa, &p), -1);
}

static int teardown(void **state)
{
	(void)state;
	itr_netmap_publish(NULL);
	return 0;
}

static void one_gateway(struct itr_tracker_config *cfg)
{
	cfg->policy = (struct itr_rank_policy){.max_own_pid_pct = 100,
	                                       .max_own_as_pct = 100,
	                                       .min_external = 1,
	                                       .max_external = 2,
	                                       .gateways = 1};
}

/* External budget per AS: in each AS exactly one peer (the best-scored
 * under the swarm's salt, CRC32-C of the info_hash) is handed outside
 * peers; the rest get their AS only. Re-announces keep every list. */
static void test_gateway_per_as(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(one_gateway);
	fill_three_pids(tr);
	uint32_t salt = itr_rank_swarm_salt(IH);
	struct itr_peer_addr best[2];
	uint32_t best_score[2] = {0, 0};
	size_t with_outside[2] = {0, 0};
	for (int rnd = 0; rnd < 2; rnd++) {
		for (int b = 0; b < 3; b++) {
			for (int i = 1; i <= 10; i++) {
				struct itr_peer_addr me =
				    net_peer(b < 2 ? 10 : 30, b < 2 ? b + 1 : 0, i, 6881);
				int as = b < 2 ? 0 : 1;
				struct itr_ranked_peer out[50], again[50];
				size_t n =
				    do_announce(tr, me, 100, ITR_EVENT_NONE, 50, NULL, out, 50);
				size_t m =
				    do_announce(tr, me, 100, ITR_EVENT_NONE, 50, NULL, again, 50);
				assert_int_equal(n, m);
				for (size_t k = 0; k < n; k++)
					assert_memory_equal(&out[k].peer, &again[k].peer,
					                    sizeof(out[k].peer));
				size_t ext = 0;
				for (size_t k = 0; k < n; k++)
					ext += out[k].peer.addr[1] != me.addr[1];
				if (rnd == 0) {
					with_outside[as] += ext > 0;
					uint32_t sc = itr_rank_gateway_score(salt, &me);
					if (sc > best_score[as]) {
						best_score[as] = sc;
						best[as] = me;
					}
				} else if (ext) {
					/* the gateway is the best-scored peer of its AS */
					assert_memory_equal(me.addr, best[as].addr, 4);
					assert_int_equal(ext, 2);
				}
			}
		}
	}
	assert_int_equal(with_outside[0], 1);
	assert_int_equal(with_outside[1], 1);

	/* Once c-all's peers have all completed, a seeder still sees its AS's
	 * other seeders, so it is not alone there and only one of them is
	 * handed outside peers (not every completed peer a topped-up list). */
	struct itr_ranked_peer none[1];
	for (int i = 1; i <= 10; i++)
		do_announce(tr, net_peer(30, 0, i, 6881), 0, ITR_EVENT_COMPLETED, 0, NULL, none, 1);
	size_t seeders_outside = 0;
	for (int i = 1; i <= 10; i++) {
		struct itr_ranked_peer out[50];
		struct itr_peer_addr me = net_peer(30, 0, i, 6881);
		size_t n = do_announce(tr, me, 0, ITR_EVENT_NONE, 50, NULL, out, 50);
		size_t ext = 0;
		for (size_t k = 0; k < n; k++)
			ext += out[k].peer.addr[1] != 30;
		seeders_outside += ext > 0;
	}
	assert_int_equal(seeders_outside, 1);
	itr_tracker_free(tr);
}

/* ---- issue 10: what one source may take --------------------------------- */

static enum itr_swarm_status announce_hash(struct itr_tracker *tr, struct itr_peer_addr peer,
                                           uint32_t n, struct itr_announce_reply *reply)
{
	struct itr_announce ann = {.peer = peer, .left = 1, .numwant = 0};
	memcpy(ann.info_hash, IH, 20);
	memcpy(ann.info_hash, &n, sizeof(n));
	struct itr_ranked_peer none[1];
	assert_int_equal(itr_tracker_announce(tr, &ann, reply, none, 1), 0);
	return reply->stored;
}

static void tweak_flood(struct itr_tracker_config *cfg)
{
	cfg->max_torrents = 100;
	cfg->max_torrents_per_source = 40;
	cfg->announce_rate = 0;
}

/* One source announcing new info_hashes (983k torrents in 10 s) filled the
 * store, and every real client then got "tracker full". */
static void test_flood_of_new_torrents(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(tweak_flood);
	struct itr_announce_reply reply;
	struct itr_peer_addr flooder = net_peer(10, 1, 66, 6881);
	uint32_t stored = 0;
	for (uint32_t i = 0; i < 1000; i++)
		stored += announce_hash(tr, flooder, i, &reply) == ITR_SWARM_STORED;
	assert_int_equal(stored, 40);
	assert_int_equal(reply.stored, ITR_SWARM_SOURCE_SWARMS);
	assert_non_null(strstr(itr_tracker_refusal_text(&reply), "too many torrents"));
	/* two more flooders fill the store to its global limit... */
	struct itr_peer_addr f2 = net_peer(10, 2, 66, 6881), f3 = net_peer(30, 0, 66, 6881);
	for (uint32_t i = 1000; i < 2000; i++) {
		announce_hash(tr, f2, i, &reply);
		announce_hash(tr, f3, i + 1000, &reply);
	}
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.store.torrents, 100);
	/* ...and every real client still gets its torrent stored */
	for (uint32_t i = 0; i < 20; i++) {
		struct itr_peer_addr real = net_peer(10, 2, (int)(1 + i), 6881);
		assert_int_equal(announce_hash(tr, real, 50000 + i, &reply), ITR_SWARM_STORED);
		assert_int_equal(reply.counts.incomplete, 1);
	}
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.store.torrents, 100);
	assert_true(st.store.evicted_torrents >= 20);
	assert_int_equal(st.refused[ITR_REFUSED_TORRENTS_FULL], 0);
	assert_true(st.refused[ITR_REFUSED_SOURCE_TORRENTS] >= 960);
	itr_tracker_free(tr);
}

static void tweak_ports(struct itr_tracker_config *cfg)
{
	cfg->max_peers_per_source = 16;
	cfg->announce_rate = 0;
	cfg->policy.max_external = 1000;
}

/* One address with 65k ports filled a swarm, and a client asking for many
 * peers got only the attacker's. */
static void test_many_ports_one_address(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(tweak_ports);
	struct itr_ranked_peer out[200];
	struct itr_announce_reply reply;
	for (int port = 1; port <= 5000; port++)
		do_announce(tr, net_peer(10, 1, 66, (uint16_t)port), 1, ITR_EVENT_STARTED, 0,
		            &reply, out, 1);
	assert_int_equal(reply.stored, ITR_SWARM_SOURCE_PEERS);
	for (int i = 1; i <= 30; i++)
		do_announce(tr, net_peer(10, 1, i, 6881), 1, ITR_EVENT_STARTED, 0, NULL, out, 1);
	size_t n =
	    do_announce(tr, net_peer(10, 1, 99, 6881), 1, ITR_EVENT_NONE, 200, &reply, out, 200);
	assert_int_equal(reply.counts.incomplete, 16 + 30 + 1);
	assert_int_equal(n, 46);
	size_t attacker = 0;
	for (size_t i = 0; i < n; i++)
		attacker += out[i].peer.addr[3] == 66;
	assert_int_equal(attacker, 16);
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.refused[ITR_REFUSED_SOURCE_PEERS], 5000 - 16);
	itr_tracker_free(tr);
}

static void tweak_rate(struct itr_tracker_config *cfg)
{
	cfg->announce_rate = 10;
	cfg->announce_burst = 20;
}

static void test_announce_rate_per_source(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	fake_now = 50000;
	struct itr_tracker *tr = new_tracker(tweak_rate);
	struct itr_peer_addr flooder = net_peer(10, 1, 66, 1), real = net_peer(10, 1, 5, 1);
	int ok = 0;
	const char *why = NULL;
	for (int i = 0; i < 100; i++) {
		why = itr_tracker_admit(tr, &flooder);
		ok += why == NULL;
	}
	assert_int_equal(ok, 20); /* the burst */
	assert_non_null(strstr(why, "too many announces"));
	/* another address is not affected; nor is another port of it */
	assert_null(itr_tracker_admit(tr, &real));
	flooder.port = 2;
	assert_non_null(itr_tracker_admit(tr, &flooder));
	/* two seconds later: 20 more tokens */
	fake_now += 2;
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += itr_tracker_admit(tr, &flooder) == NULL;
	assert_int_equal(ok, 20);
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.refused[ITR_REFUSED_RATE], 161);
	assert_int_equal(st.sources, 2);
	itr_tracker_free(tr);
}

/* Sources go idle when their peers expire: the janitor's expiry pass
 * forgets them, so the source table follows the live sources (it used to
 * keep every source it had seen until a newcomer pushed it out). */
static void test_idle_sources_forgotten(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	fake_now = 60000;
	struct itr_tracker *tr = new_tracker(tweak_rate);
	struct itr_ranked_peer none[1];
	for (int i = 1; i <= 200; i++) {
		struct itr_peer_addr p = net_peer(1, i / 100 + 1, i % 100 + 1, 6881);
		assert_null(itr_tracker_admit(tr, &p));
		do_announce(tr, p, 100, ITR_EVENT_STARTED, 0, NULL, none, 1);
	}
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.sources, 200);
	/* a minute on: every peer is live, so every source stays */
	fake_now += 60;
	itr_tracker_expire(tr);
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.sources, 200);
	/* past the expiry, one source still announcing */
	fake_now += 3000;
	struct itr_peer_addr alive = net_peer(1, 1, 2, 6881);
	assert_null(itr_tracker_admit(tr, &alive));
	do_announce(tr, alive, 100, ITR_EVENT_NONE, 0, NULL, none, 1);
	itr_tracker_expire(tr); /* the announce dropped the others already */
	struct itr_swarm_counts c;
	assert_int_equal(itr_tracker_scrape(tr, IH, &c), 0);
	assert_int_equal(c.incomplete, 1);
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.sources, 1);
	itr_tracker_free(tr);
}

/* The counters are one stripe per thread, summed when read: more threads
 * than stripes, each with its own announces and scrapes, add up exactly. */
#define COUNTING_THREADS 20
#define COUNTED_EACH     200

struct counting {
	struct itr_tracker *tr;
	int index;
};

static void *count_from_thread(void *arg)
{
	struct counting *c = arg;
	struct itr_ranked_peer out[4];
	for (int i = 0; i < COUNTED_EACH; i++) {
		struct itr_announce ann = {
		    .peer = net_peer(10, 1, c->index + 1, (uint16_t)(1000 + i)), .left = 100};
		memcpy(ann.info_hash, IH, 20);
		struct itr_announce_reply reply;
		if (itr_tracker_announce(c->tr, &ann, &reply, out, 4) != 0)
			return "announce failed";
		struct itr_swarm_counts counts;
		itr_tracker_scrape(c->tr, IH, &counts);
		itr_tracker_count_rejected(c->tr);
	}
	return NULL;
}

static void tweak_many_sources(struct itr_tracker_config *cfg)
{
	cfg->announce_rate = 0;
	cfg->max_peers_per_source = 1000;
}

static void test_counters_from_many_threads(void **state)
{
	(void)state;
	publish(MAP_TEXT);
	struct itr_tracker *tr = new_tracker(tweak_many_sources);
	pthread_t threads[COUNTING_THREADS];
	struct counting args[COUNTING_THREADS];
	for (int t = 0; t < COUNTING_THREADS; t++) {
		args[t] = (struct counting){.tr = tr, .index = t};
		assert_int_equal(pthread_create(&threads[t], NULL, count_from_thread, &args[t]), 0);
	}
	for (int t = 0; t < COUNTING_THREADS; t++) {
		void *failed;
		assert_int_equal(pthread_join(threads[t], &failed), 0);
		assert_null(failed);
	}
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.announces, COUNTING_THREADS * COUNTED_EACH);
	assert_int_equal(st.scrapes, COUNTING_THREADS * COUNTED_EACH);
	assert_int_equal(st.rejected, COUNTING_THREADS * COUNTED_EACH);
	struct itr_backend_stats bs;
	itr_backend_stats(itr_tracker_backend(tr), &bs);
	assert_int_equal(bs.announces, COUNTING_THREADS * COUNTED_EACH);
	assert_int_equal(bs.peers, COUNTING_THREADS * COUNTED_EACH);
	itr_tracker_free(tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_map_yet),
	    cmocka_unit_test(test_idle_sources_forgotten),
	    cmocka_unit_test(test_ranked_by_locality),
	    cmocka_unit_test(test_stable_selection),
	    cmocka_unit_test(test_big_swarm_own_bucket),
	    cmocka_unit_test(test_near_bucket_first),
	    cmocka_unit_test(test_seeders_and_events),
	    cmocka_unit_test(test_numwant_bounds),
	    cmocka_unit_test(test_expiry_on_clock),
	    cmocka_unit_test(test_map_reload_regroups),
	    cmocka_unit_test(test_ipv6_kept_apart),
	    cmocka_unit_test(test_trusted_proxies),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_peer_addr_from_sockaddr),
	    cmocka_unit_test(test_gateway_per_as),
	    cmocka_unit_test(test_flood_of_new_torrents),
	    cmocka_unit_test(test_many_ports_one_address),
	    cmocka_unit_test(test_announce_rate_per_source),
	    cmocka_unit_test(test_counters_from_many_threads),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
