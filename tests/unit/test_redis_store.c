/* test_redis_store.c - what the Redis Cluster store and its client compute
 * without a cluster: CRC16/XMODEM and key slots (the Redis Cluster
 * specification's own examples, hash tags included), the 6/18-byte peer
 * members, and the refusals of bad store URLs. Then the group commit of
 * itr_rc_write on a real one-node cluster (redis-server on a loopback
 * port): many threads' writes share round trips, and each thread gets its
 * own replies; the price controller's policy per AS applied to answers
 * from the cluster, from the view a draw gives (itr_redis_draw_view), and
 * its per-AS status totals from the draws the store holds; and
 * what one announce sends: a swarm's draw read once and reused (the cache,
 * two swarms of one cache set, a seed's draw, announces of one batch), and
 * a TTL on every set the announce writes. The
 * whole store is exercised by tests/e2e/redis_cluster.sh
 * against 3 masters and 3 replicas.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "netmap.h"
#include "price.h"
#include "rank.h"
#include "redis_cluster.h"
#include "announce_backend.h"
#include "redis_store.h"
#include "swarm.h"
#include "tracker.h"
#include "unit/price_map.h"
#include "unit/redis_server.h"

static void test_keyslot(void **state)
{
	(void)state;
	/* the spec's check value of CRC16/XMODEM */
	assert_int_equal(itr_rc_crc16("123456789", 9), 0x31C3);
	/* redis-cli CLUSTER KEYSLOT answers these */
	assert_int_equal(itr_rc_keyslot("foo", 3), 12182);
	assert_int_equal(itr_rc_keyslot("bar", 3), 5061);
	/* hash tags: only what is inside the first {...} counts */
	assert_int_equal(itr_rc_keyslot("{user1000}.following", 20),
	                 itr_rc_keyslot("{user1000}.followers", 20));
	assert_int_equal(itr_rc_keyslot("{user1000}.following", 20), itr_rc_keyslot("user1000", 8));
	/* an empty tag is no tag: the whole key counts */
	assert_int_equal(itr_rc_keyslot("foo{}{bar}", 10), itr_rc_crc16("foo{}{bar}", 10) % 16384);
	assert_int_equal(itr_rc_keyslot("foo{{bar}}zap", 13), itr_rc_keyslot("{bar", 4));
	assert_int_equal(itr_rc_keyslot("foo{bar}{zap}", 13), itr_rc_keyslot("bar", 3));
	/* a swarm's three keys share one slot */
	const char *s = "itr:{00112233445566778899aabbccddeeff00112233}:s";
	const char *l = "itr:{00112233445566778899aabbccddeeff00112233}:l";
	assert_int_equal(itr_rc_keyslot(s, strlen(s)), itr_rc_keyslot(l, strlen(l)));
}

static void test_members(void **state)
{
	(void)state;
	struct itr_peer_addr v4, v6, back;
	assert_int_equal(itr_peer_addr_parse("10.10.1.2:6881", &v4), 0);
	assert_int_equal(itr_peer_addr_parse("[fd00:10:1::2]:51413", &v6), 0);
	char m[18];
	assert_int_equal(itr_redis_member_encode(&v4, m), 6);
	assert_memory_equal(m, "\x0a\x0a\x01\x02\x1a\xe1", 6);
	assert_int_equal(itr_redis_member_decode(m, 6, &back), 0);
	assert_int_equal(back.family, 4);
	assert_memory_equal(back.addr, v4.addr, 4);
	assert_int_equal(back.port, 6881);
	assert_int_equal(itr_redis_member_encode(&v6, m), 18);
	assert_int_equal(itr_redis_member_decode(m, 18, &back), 0);
	assert_int_equal(back.family, 6);
	assert_memory_equal(back.addr, v6.addr, 16);
	assert_int_equal(back.port, 51413);
	/* other lengths are not members */
	assert_int_equal(itr_redis_member_decode(m, 7, &back), -1);
	assert_int_equal(itr_redis_member_decode(m, 0, &back), -1);
}

static void test_bad_urls(void **state)
{
	(void)state;
	char err[256];
	assert_null(itr_redis_store_new("redis://127.0.0.1:7000", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "redis-cluster://"));
	assert_null(itr_redis_store_new("redis-cluster://", NULL, err, sizeof(err)));
	assert_null(itr_redis_store_new("redis-cluster://host", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "HOST:PORT"));
	assert_null(itr_redis_store_new("redis-cluster://h:1,h:99999", NULL, err, sizeof(err)));
	assert_null(itr_redis_store_new("redis-cluster://h:1,,h:2", NULL, err, sizeof(err)));
}

/* ---- the price controller's view from a draw -------------------------------- */

static struct itr_netmap *price_map(void)
{
	struct itr_netmap_error err;
	struct itr_netmap *m =
	    itr_netmap_parse_text(PRICE_MAP, strlen(PRICE_MAP), "t.netmap", &err);
	if (!m)
		fail_msg("parse: %s", err.reason);
	return m;
}

static struct itr_peer_addr peer4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct itr_peer_addr p = {.family = 4, .port = 6881};
	p.addr[0] = a, p.addr[1] = b, p.addr[2] = c, p.addr[3] = d;
	return p;
}

static void test_draw_view(void **state)
{
	(void)state;
	struct itr_netmap *m = price_map();
	const struct itr_pid *a = itr_netmap_lookup(m, 4, peer4(10, 10, 0, 1).addr);
	const struct itr_pid *c = itr_netmap_lookup(m, 4, peer4(10, 12, 0, 1).addr);
	assert_non_null(a);
	assert_non_null(c);
	/* a draw of 4 of 40 leechers (1 in a) and 2 of 10 seeds (1 in a):
	 * a holds about 10 leechers and 5 seeds */
	const struct itr_pid *pids[6] = {a, c, c, NULL, a, c};
	struct itr_swarm_counts counts = {.complete = 10, .incomplete = 40};
	struct itr_price_as_view v;
	itr_redis_draw_view(pids, 4, 2, true, 64500, false, &counts, &v);
	assert_int_equal(v.peers, 15);
	assert_int_equal(v.seeds, 5);
	assert_true(v.remaining > 0.66 && v.remaining < 0.67);
	assert_true(v.swarm_remaining > 0.79 && v.swarm_remaining < 0.81);
	/* a client alone in its AS is in it, the draw holding it or not */
	itr_redis_draw_view(pids, 4, 2, true, 64501, false, &counts, &v);
	assert_int_equal(v.peers, 1);
	assert_int_equal(v.seeds, 0);
	assert_true(v.remaining == 1.0);
	/* a seed's draw holds no seeds: the client is its AS's seed */
	itr_redis_draw_view(pids, 4, 0, false, 64502, true, &counts, &v);
	assert_int_equal(v.peers, 21);
	assert_int_equal(v.seeds, 1);
	/* an empty swarm */
	struct itr_swarm_counts none = {0};
	itr_redis_draw_view(pids, 0, 0, true, 64500, false, &none, &v);
	assert_int_equal(v.peers, 1);
	assert_true(v.swarm_remaining == 0);
	itr_netmap_unref(m);
}

/* ---- group commit on a real node ------------------------------------------ */

#define WRITERS 16
#define WRITES  200

struct writer {
	struct itr_rc *rc;
	int id;
	int bad; /* replies that were not this thread's */
};

/* Each write: INCR of the thread's own counter, then GET of it. Both
 * replies must be this thread's (the same number, one more each time). */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char key[32];
	snprintf(key, sizeof(key), "gc:{w%d}:n", w->id);
	uint16_t slot = itr_rc_keyslot(key, strlen(key));
	for (long long want = 1; want <= WRITES; want++) {
		struct itr_rc_cmd cmds[2] = {
		    {.argc = 2, .argv = {"INCR", key}, .argvlen = {4, strlen(key)}},
		    {.argc = 2, .argv = {"GET", key}, .argvlen = {3, strlen(key)}},
		};
		void *replies[2];
		char err[256];
		if (itr_rc_write(w->rc, slot, cmds, 2, replies, err, sizeof(err)) < 0) {
			w->bad++;
			continue;
		}
		const redisReply *incr = replies[0], *get = replies[1];
		if (incr->type != REDIS_REPLY_INTEGER || incr->integer != want ||
		    get->type != REDIS_REPLY_STRING || strtoll(get->str, NULL, 10) != want)
			w->bad++;
		itr_rc_replies_free(replies, 2);
	}
	return NULL;
}

static double now_ms_f(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t mono_ms(void)
{
	return (uint64_t)now_ms_f();
}

static void test_group_commit(void **state)
{
	(void)state;
	char seeds[32], err[256];
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%u", redis_port);
	struct itr_rc_config cfg = {.seeds = seeds};
	struct itr_rc *rc = itr_rc_new(&cfg, err, sizeof(err));
	assert_non_null(rc);
	struct writer w[WRITERS];
	pthread_t threads[WRITERS];
	uint64_t start = mono_ms();
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.rc = rc, .id = i};
		assert_int_equal(pthread_create(&threads[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	uint64_t took = mono_ms() - start;
	struct itr_rc_stats st;
	itr_rc_stats(rc, &st);
	print_message("%d writes in %llu round trips, %llu ms\n", WRITERS * WRITES,
	              (unsigned long long)st.batches, (unsigned long long)took);
	assert_int_equal(st.batched, WRITERS * WRITES);
	/* sixteen threads at once: writes shared round trips */
	assert_true(st.batches < st.batched);
	/* the node has no replica: no WAIT, which would time out after 50 ms
	 * on every round trip */
	assert_true(took < st.batches * 25);
	itr_rc_free(rc);
}

/* A store on the test node with the default tracker config and the price
 * controller pc (NULL: none). */
struct store_fixture {
	struct itr_tracker *tr;
	struct itr_redis_store *st;
	const struct itr_announce_backend *be;
	struct itr_rc *rc;
};

static void store_open(struct store_fixture *f, struct itr_price *pc)
{
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.price = pc;
	char err[256], url[64];
	f->tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	assert_non_null(f->tr);
	snprintf(url, sizeof(url), "redis-cluster://127.0.0.1:%u", redis_port);
	f->st = itr_redis_store_new(url, f->tr, err, sizeof(err));
	if (!f->st)
		fail_msg("store: %s", err);
	f->be = itr_redis_store_backend(f->st);
	f->rc = itr_redis_store_cluster(f->st);
}

static void store_close(struct store_fixture *f)
{
	itr_redis_store_free(f->st);
	itr_tracker_free(f->tr);
}

static uint64_t commands_sent(struct itr_rc *rc)
{
	struct itr_rc_stats s;
	itr_rc_stats(rc, &s);
	return s.commands;
}

/* One announce, its peers into out (NULL: not kept); returns the commands
 * it sent. */
static uint64_t announce_one(struct store_fixture *f, const uint8_t ih[20],
                             struct itr_peer_addr peer, uint64_t left, enum itr_event event,
                             size_t want, struct itr_backend_reply *reply,
                             struct itr_ranked_peer *out)
{
	struct itr_backend_request req = {.transport = ITR_TRANSPORT_UDP};
	memcpy(req.ann.info_hash, ih, 20);
	req.ann.peer = peer;
	req.ann.left = left;
	req.ann.event = event;
	struct itr_ranked_peer kept[64];
	uint64_t before = commands_sent(f->rc);
	assert_int_equal(itr_backend_announce(f->be, &req, reply, out ? out : kept, want), 0);
	assert_string_equal(reply->failure, "");
	return commands_sent(f->rc) - before;
}

/* The price controller's per-AS policy on answers from the cluster: AS
 * 64500 holds one leecher (1 Mbit/s, a 4 Mbit/s uplink) and no seed, so it
 * cannot feed itself and is open while its link is under budget: a client
 * there gets every outside peer. With the base policy (no controller) the
 * same client gets its AS's peer and at most two outsiders. */
static size_t answer_in_open_as(bool with_price)
{
	itr_netmap_publish(price_map());
	struct itr_price_config pcfg;
	itr_price_config_default(&pcfg);
	pcfg.publish_costs = false;
	struct itr_price *pc = with_price ? itr_price_new(&pcfg) : NULL;
	struct store_fixture f;
	store_open(&f, pc);

	uint8_t ih[20] = {0x70, with_price};
	struct itr_peer_addr joined[7] = {peer4(10, 10, 0, 10)};
	for (uint8_t i = 0; i < 6; i++)
		joined[1 + i] = peer4(10, 12, 0, (uint8_t)(10 + i));
	struct itr_backend_reply reply;
	struct itr_ranked_peer out[64];
	for (size_t i = 0; i < 7; i++)
		announce_one(&f, ih, joined[i], 1000, ITR_EVENT_STARTED, 0, &reply, NULL);
	announce_one(&f, ih, peer4(10, 10, 0, 11), 1000, ITR_EVENT_STARTED, 50, &reply, out);
	size_t n = reply.npeers;
	/* its own AS's peer first */
	assert_true(n >= 1);
	assert_memory_equal(out[0].peer.addr, joined[0].addr, 4);
	if (pc) {
		/* the controller's per-AS totals, from the draw the store just
		 * read: AS 64500 has the two leechers (the client's ZADD came
		 * before the draw), AS 64502 the six */
		struct itr_netmap *map = itr_netmap_current();
		itr_price_tick(pc, map, 1.0);
		itr_netmap_unref(map);
		json_t *status = itr_price_status_json(pc);
		json_t *ases = json_object_get(status, "ases"), *as;
		size_t i, seen = 0;
		json_array_foreach(ases, i, as)
		{
			json_int_t asn = json_integer_value(json_object_get(as, "asn"));
			json_int_t peers = json_integer_value(json_object_get(as, "peers"));
			assert_int_equal(json_integer_value(json_object_get(as, "swarms")), 1);
			assert_int_equal(json_integer_value(json_object_get(as, "seeds")), 0);
			if (asn == 64500)
				assert_int_equal(peers, 2), seen++;
			if (asn == 64502)
				assert_int_equal(peers, 6), seen++;
		}
		assert_int_equal(seen, 2);
		json_decref(status);
	}
	store_close(&f);
	if (pc)
		itr_price_free(pc);
	itr_netmap_publish(NULL);
	return n;
}

static void test_price_policy_on_cluster(void **state)
{
	(void)state;
	assert_int_equal(answer_in_open_as(true), 7);
	assert_true(answer_in_open_as(false) <= 3);
}

static long long key_ttl(const uint8_t ih[20], char kind)
{
	char key[64];
	int n = snprintf(key, sizeof(key), "itr:{");
	for (int i = 0; i < 20; i++)
		n += snprintf(key + n, sizeof(key) - (size_t)n, "%02x", ih[i]);
	snprintf(key + n, sizeof(key) - (size_t)n, "}:%c", kind);
	redisReply *r = redis_cmd("TTL %s", key);
	assert_non_null(r);
	long long ttl = r->integer;
	freeReplyObject(r);
	return ttl;
}

/* A leecher's announce writes ZADD and ZREM (2 commands); a read adds
 * ZCOUNT, ZCOUNT, GET and two ZRANDMEMBER (5); the first announce of a
 * swarm also refreshes its keys (2 markers, 3 EXPIRE, 2 sweeps: 7). The
 * reuse checks hold only while the cache's 250 ms last: a slow machine
 * skips them. */
static void test_reads_reused(void **state)
{
	(void)state;
	struct store_fixture f;
	store_open(&f, NULL);
	struct itr_backend_reply reply;
	/* two swarms in one cache set (its index comes from bytes 0-2) */
	const uint8_t x[20] = {0x51, 0x52, 0x53, 1}, y[20] = {0x51, 0x52, 0x53, 2};
	uint64_t start = mono_ms();
	assert_int_equal(
	    announce_one(&f, x, peer4(10, 0, 0, 1), 1000, ITR_EVENT_STARTED, 50, &reply, NULL),
	    2 + 5 + 7);
	assert_int_equal(
	    announce_one(&f, y, peer4(10, 0, 0, 2), 1000, ITR_EVENT_STARTED, 50, &reply, NULL),
	    2 + 5 + 7);
	uint64_t x_again =
	    announce_one(&f, x, peer4(10, 0, 0, 3), 1000, ITR_EVENT_STARTED, 50, &reply, NULL);
	size_t x_peers = reply.npeers;
	uint64_t y_again =
	    announce_one(&f, y, peer4(10, 0, 0, 4), 1000, ITR_EVENT_STARTED, 50, &reply, NULL);
	if (mono_ms() - start < 200) {
		assert_int_equal(x_again, 2);
		assert_int_equal(y_again, 2);
		assert_int_equal(x_peers, 1); /* from the cached draw: peer 1 */
	} else {
		print_message("slow machine: the cache checks were skipped\n");
	}

	/* a seed's draw (leechers only) serves the next seed, not a leecher */
	const uint8_t z[20] = {0x61, 1};
	start = mono_ms();
	assert_int_equal(
	    announce_one(&f, z, peer4(10, 0, 1, 1), 0, ITR_EVENT_STARTED, 50, &reply, NULL),
	    2 + 4 + 7);
	uint64_t seed_again =
	    announce_one(&f, z, peer4(10, 0, 1, 2), 0, ITR_EVENT_NONE, 50, &reply, NULL);
	uint64_t leecher =
	    announce_one(&f, z, peer4(10, 0, 1, 3), 1000, ITR_EVENT_NONE, 50, &reply, NULL);
	if (mono_ms() - start < 200) {
		assert_int_equal(seed_again, 2);
		assert_int_equal(leecher, 2 + 5);
		assert_int_equal(reply.counts.complete, 2);
		assert_int_equal(reply.npeers, 2); /* both seeds */
	}
	store_close(&f);
}

/* Four announces of one swarm in one batch: one read, shared. */
static void test_batch_shares_read(void **state)
{
	(void)state;
	struct store_fixture f;
	store_open(&f, NULL);
	const uint8_t ih[20] = {0x71, 7};
	struct itr_backend_reply first;
	announce_one(&f, ih, peer4(10, 0, 2, 1), 0, ITR_EVENT_STARTED, 0, &first, NULL);

	struct itr_backend_request reqs[4];
	struct itr_backend_reply replies[4];
	struct itr_ranked_peer out[4][64], *peers[4];
	size_t want[4];
	for (int i = 0; i < 4; i++) {
		reqs[i] = (struct itr_backend_request){.transport = ITR_TRANSPORT_UDP};
		memcpy(reqs[i].ann.info_hash, ih, 20);
		reqs[i].ann.peer = peer4(10, 0, 2, (uint8_t)(10 + i));
		reqs[i].ann.left = 1000;
		reqs[i].ann.event = ITR_EVENT_STARTED;
		peers[i] = out[i];
		want[i] = 50;
	}
	uint64_t before = commands_sent(f.rc);
	assert_int_equal(f.be->ops->announce_many(f.be->impl, reqs, replies, peers, want, 4), 0);
	/* four writes, one read (the first announce's draw had no seeds) */
	assert_int_equal(commands_sent(f.rc) - before, 4 * 2 + 5);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(replies[i].failure, "");
		assert_int_equal(replies[i].counts.complete, 1);
		assert_true(replies[i].npeers >= 1); /* the seed at least */
	}
	store_close(&f);
}

/* Every key of a swarm expires, and the marker that keeps a set from
 * being emptied (and so deleted and made again without a TTL) is never
 * counted or listed. */
static void test_keys_expire(void **state)
{
	(void)state;
	struct store_fixture f;
	store_open(&f, NULL);
	struct itr_backend_reply reply;
	const uint8_t ih[20] = {0x81, 8};
	announce_one(&f, ih, peer4(10, 0, 3, 1), 1000, ITR_EVENT_STARTED, 50, &reply, NULL);
	assert_true(key_ttl(ih, 'l') > 0);
	assert_true(key_ttl(ih, 's') > 0);
	assert_true(key_ttl(ih, 'd') == -2); /* no download yet */
	assert_int_equal(reply.counts.incomplete, 1);
	assert_int_equal(reply.counts.complete, 0);
	assert_int_equal(reply.npeers, 0);
	announce_one(&f, ih, peer4(10, 0, 3, 1), 1000, ITR_EVENT_STOPPED, 0, &reply, NULL);
	assert_true(key_ttl(ih, 'l') > 0); /* empty of peers, still there */
	announce_one(&f, ih, peer4(10, 0, 3, 2), 0, ITR_EVENT_COMPLETED, 50, &reply, NULL);
	assert_true(key_ttl(ih, 'd') > 0);

	/* a second store (another gateway): its reads see the marker as
	 * nothing, its scrape too */
	struct store_fixture g;
	store_open(&g, NULL);
	announce_one(&g, ih, peer4(10, 0, 3, 3), 1000, ITR_EVENT_STARTED, 50, &reply, NULL);
	assert_int_equal(reply.counts.complete, 1);
	assert_int_equal(reply.counts.incomplete, 1);
	assert_int_equal(reply.counts.downloaded, 1);
	assert_int_equal(reply.npeers, 1); /* the seed */
	uint8_t hashes[1][20];
	memcpy(hashes[0], ih, 20);
	struct itr_swarm_counts counts;
	char failure[128];
	assert_int_equal(
	    g.be->ops->scrape(g.be->impl, hashes, 1, &counts, failure, sizeof(failure)), 0);
	assert_int_equal(counts.complete, 1);
	assert_int_equal(counts.incomplete, 1);
	store_close(&g);
	store_close(&f);
}

/* A scrape of many hashes reads them all in one round trip per master
 * (one here), with each swarm's own counts, unknown swarms at zero. */
static void test_scrape_many(void **state)
{
	(void)state;
	struct store_fixture f;
	store_open(&f, NULL);
	enum { HASHES = 64 };
	uint8_t hashes[HASHES][20];
	for (int i = 0; i < HASHES; i++) {
		memset(hashes[i], 0, 20);
		hashes[i][0] = 0x91;
		hashes[i][1] = (uint8_t)i;
	}
	struct itr_backend_reply reply;
	/* swarm k (k = 0, 1, 2) gets k + 1 leechers and k seeds */
	for (int k = 0; k < 3; k++) {
		for (int p = 0; p <= k; p++)
			announce_one(&f, hashes[k * 20], peer4(10, 9, (unsigned)k, (unsigned)p + 1),
			             500, ITR_EVENT_STARTED, 0, &reply, NULL);
		for (int p = 0; p < k; p++)
			announce_one(&f, hashes[k * 20],
			             peer4(10, 9, (unsigned)k, (unsigned)p + 100), 0,
			             ITR_EVENT_COMPLETED, 0, &reply, NULL);
	}
	struct itr_swarm_counts counts[HASHES];
	char failure[128] = "";
	struct itr_rc_stats before, after;
	itr_rc_stats(f.rc, &before);
	double t0 = now_ms_f();
	assert_int_equal(
	    f.be->ops->scrape(f.be->impl, hashes, HASHES, counts, failure, sizeof(failure)), 0);
	double many_ms = now_ms_f() - t0;
	itr_rc_stats(f.rc, &after);
	assert_int_equal(after.read_batches - before.read_batches, 1);
	assert_int_equal(after.read_batched - before.read_batched, HASHES);
	for (int i = 0; i < HASHES; i++) {
		bool known = i % 20 == 0 && i / 20 < 3;
		int k = i / 20;
		assert_int_equal(counts[i].incomplete, known ? k + 1 : 0);
		assert_int_equal(counts[i].complete, known ? k : 0);
		assert_int_equal(counts[i].downloaded, known ? k : 0);
	}
	/* the same hashes one scrape each, as the store read them before */
	t0 = now_ms_f();
	for (int i = 0; i < HASHES; i++)
		assert_int_equal(f.be->ops->scrape(f.be->impl, &hashes[i], 1, &counts[i], failure,
		                                   sizeof(failure)),
		                 0);
	double one_by_one_ms = now_ms_f() - t0;
	print_message("scrape of %d hashes: %.3f ms at once, %.3f ms one by one\n", HASHES, many_ms,
	              one_by_one_ms);
	store_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keyslot),
	    cmocka_unit_test(test_members),
	    cmocka_unit_test(test_bad_urls),
	    cmocka_unit_test(test_draw_view),
	};
	const struct CMUnitTest on_node[] = {
	    cmocka_unit_test(test_group_commit), cmocka_unit_test(test_price_policy_on_cluster),
	    cmocka_unit_test(test_reads_reused), cmocka_unit_test(test_batch_shares_read),
	    cmocka_unit_test(test_keys_expire),  cmocka_unit_test(test_scrape_many),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed + cmocka_run_group_tests(on_node, start_redis, stop_redis);
}
