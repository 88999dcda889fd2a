/* test_proxy.c - pTracker proxy mode against a real upstream: itrackerd's
 * own tracker served over HTTP and UDP on 127.0.0.1 in this process. The
 * proxy's answers must be the upstream's swarm ranked for the client (the
 * same list itr_rank gives for those candidates), the upstream must store
 * the client's own address (ip= / the BEP 15 IP field from a trusted
 * source), failure reasons pass through, dead upstreams time out with a
 * failure reason, UDP connection ids are cached for a minute, and the
 * tracker's own front ends (tracker_http.c, udp_tracker.c) answer real
 * clients through the proxy as their backend, counting each announce
 * under the transport it came over, and one client's hung upstream
 * exchange does not hold up another's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "byte_order.h"
#include "announce_backend.h"
#include "bencode.h"
#include "netmap.h"
#include "proxy.h"
#include "tracker_http.h"
#include "udp_tracker.h"

static const char MAP[] = "pid a-metro1 id 1 asn 64500 loc 1\n"
                          "prefix a-metro1 10.10.1.0/24\n"
                          "pid a-metro2 id 2 asn 64500 loc 2\n"
                          "prefix a-metro2 10.10.2.0/24\n"
                          "pid b-core id 10 asn 64501 loc 10\n"
                          "prefix b-core 10.20.0.0/16\n"
                          "pid c-all id 20 asn 64502 loc 20\n"
                          "prefix c-all 10.30.0.0/16\n";

static const uint8_t IH[20] = "proxy-test-infohash!";

static _Atomic uint32_t proxy_now = 5000;
static uint32_t proxy_clock(void *arg)
{
	(void)arg;
	return proxy_now;
}

struct upstream {
	struct itr_tracker *tr;
	struct itr_http_server *http;
	struct itr_udp_tracker *udp;
	uint16_t http_port, udp_port;
	struct itr_peer_addr swarm[16];
	size_t nswarm;
};

static struct upstream up;
static struct itr_tracker *front; /* the proxy's tracker: config, clock, trust */

static struct itr_peer_addr addr4(const char *text, uint16_t port)
{
	struct itr_peer_addr a;
	memset(&a, 0, sizeof(a));
	a.family = 4;
	assert_int_equal(inet_pton(AF_INET, text, a.addr), 1);
	a.port = port;
	return a;
}

static void upstream_add(const char *ip, uint16_t port)
{
	struct itr_announce ann = {.event = ITR_EVENT_STARTED, .left = 100, .numwant = 0};
	memcpy(ann.info_hash, IH, 20);
	ann.peer = addr4(ip, port);
	struct itr_announce_reply reply;
	struct itr_ranked_peer none[1];
	assert_int_equal(itr_tracker_announce(up.tr, &ann, &reply, none, 1), 0);
	up.swarm[up.nswarm++] = ann.peer;
}

static int setup(void **state)
{
	(void)state;
	struct itr_netmap_error err;
	struct itr_netmap *map = itr_netmap_parse_text(MAP, strlen(MAP), "test", &err);
	assert_non_null(map);
	itr_netmap_publish(map);

	char why[256];
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.trusted_proxies = "127.0.0.1";
	cfg.accept_ip_param = true;
	cfg.loopback_peers = true;
	/* an upstream that does not rank: every peer, like opentracker */
	cfg.policy = (struct itr_rank_policy){
	    .max_own_pid_pct = 100, .max_own_as_pct = 100, .max_external = 1000};
	up.tr = itr_tracker_new(&cfg, NULL, why, sizeof(why));
	assert_non_null(up.tr);
	struct itr_http_limits lim = {
	    .max_body = 4096, .max_query = 8192, .max_connections = 64, .connection_timeout_s = 5};
	up.http = itr_http_new(&lim);
	assert_non_null(up.http);
	assert_int_equal(itr_tracker_http_register(up.http, up.tr), 0);
	assert_int_equal(itr_http_start(up.http, "127.0.0.1", 0, why, sizeof(why)), 0);
	up.http_port = itr_http_port(up.http);
	up.udp = itr_udp_tracker_start(up.tr, "127.0.0.1", 0, why, sizeof(why));
	assert_non_null(up.udp);
	up.udp_port = itr_udp_tracker_port(up.udp);

	/* four peers in each of three PIDs, two ASes apart */
	char ip[32];
	for (int i = 1; i <= 4; i++) {
		snprintf(ip, sizeof(ip), "10.10.1.%d", i);
		upstream_add(ip, (uint16_t)(6880 + i));
		snprintf(ip, sizeof(ip), "10.10.2.%d", i);
		upstream_add(ip, (uint16_t)(6880 + i));
		snprintf(ip, sizeof(ip), "10.30.0.%d", i);
		upstream_add(ip, (uint16_t)(6880 + i));
	}

	itr_tracker_config_default(&cfg);
	cfg.trusted_proxies = "127.0.0.1";
	cfg.accept_ip_param = true;
	cfg.loopback_peers = true;
	cfg.clock = proxy_clock;
	/* shares that bite on a 5-peer list: at most 2 from the own PID */
	cfg.policy = (struct itr_rank_policy){
	    .max_own_pid_pct = 40, .max_own_as_pct = 80, .min_external = 1, .max_external = 2};
	front = itr_tracker_new(&cfg, NULL, why, sizeof(why));
	assert_non_null(front);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itr_udp_tracker_stop(up.udp);
	itr_http_free(up.http);
	itr_tracker_free(up.tr);
	itr_tracker_free(front);
	itr_netmap_publish(NULL);
	return 0;
}

static struct itr_proxy *new_proxy(const char *fmt, uint16_t port, unsigned timeout_ms)
{
	char url[256], why[256];
	snprintf(url, sizeof(url), fmt, port);
	struct itr_proxy_config cfg;
	itr_proxy_config_default(&cfg);
	cfg.upstream = url;
	cfg.timeout_ms = timeout_ms;
	cfg.threads = 2;
	struct itr_proxy *p = itr_proxy_new(&cfg, front, why, sizeof(why));
	if (!p)
		fail_msg("itr_proxy_new(%s): %s", url, why);
	return p;
}

static struct itr_backend_request request(const char *ip, uint16_t port, int64_t numwant)
{
	struct itr_backend_request r;
	memset(&r, 0, sizeof(r));
	memcpy(r.ann.info_hash, IH, 20);
	memcpy(r.peer_id, "-IT0001-proxytest000", 20);
	r.ann.peer = addr4(ip, port);
	r.ann.left = 1000;
	r.ann.event = ITR_EVENT_STARTED;
	r.ann.numwant = numwant;
	r.key_text = "1a2b3c4d";
	r.has_key = true;
	return r;
}

/* The list the ranker makes for client out of the upstream's swarm. */
static size_t expected(const struct itr_peer_addr *client, size_t want, struct itr_ranked_peer *out)
{
	struct itr_netmap *map = itr_netmap_current();
	size_t n = itr_rank(map, &itr_tracker_get_config(front)->policy, client, up.swarm,
	                    up.nswarm, want, out);
	itr_netmap_unref(map);
	return n;
}

static void assert_same_peers(const struct itr_ranked_peer *got, size_t ngot,
                              const struct itr_ranked_peer *want, size_t nwant)
{
	assert_int_equal(ngot, nwant);
	for (size_t i = 0; i < ngot; i++) {
		assert_int_equal(got[i].peer.family, want[i].peer.family);
		assert_memory_equal(got[i].peer.addr, want[i].peer.addr, 4);
		assert_int_equal(got[i].peer.port, want[i].peer.port);
	}
}

/* Whether the upstream stores peer (asked directly, not through the proxy). */
static bool upstream_has(const struct itr_peer_addr *peer)
{
	struct itr_announce ann = {.event = ITR_EVENT_NONE, .left = 0, .numwant = 200};
	memcpy(ann.info_hash, IH, 20);
	ann.peer = addr4("10.20.0.200", 1); /* a seeder that is not in the swarm yet */
	struct itr_ranked_peer peers[200];
	struct itr_announce_reply reply;
	assert_int_equal(itr_tracker_announce(up.tr, &ann, &reply, peers, 200), 0);
	bool found = false;
	for (size_t i = 0; i < reply.npeers; i++)
		if (memcmp(peers[i].peer.addr, peer->addr, 4) == 0 &&
		    peers[i].peer.port == peer->port)
			found = true;
	ann.event = ITR_EVENT_STOPPED;
	assert_int_equal(itr_tracker_announce(up.tr, &ann, &reply, peers, 200), 0);
	return found;
}

static void check_ranked_announce(struct itr_proxy *p, const char *client_ip, uint16_t port,
                                  size_t expect_n)
{
	struct itr_backend_request r = request(client_ip, port, 5);
	struct itr_backend_reply reply;
	struct itr_ranked_peer got[50], want[50];
	struct itr_proxy_stats before, after;
	itr_proxy_get_stats(p, &before);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 5), 0);
	assert_string_equal(reply.failure, "");
	assert_int_equal(reply.interval, itr_tracker_get_config(up.tr)->interval);
	itr_proxy_get_stats(p, &after);
	/* the whole swarm came back */
	assert_true(after.upstream_peers - before.upstream_peers >= up.nswarm);
	size_t n = expected(&r.ann.peer, 5, want);
	/* rank.c's rule: 1 external reserved, 2 own-PID (40 %), 4 own-AS (80 %),
	 * 2 externals; a client in the one-PID AS fills only 2 + 2 */
	assert_int_equal(n, expect_n);
	assert_same_peers(got, reply.npeers, want, n);
	/* the policy bit: at most 2 from the own PID although 4 are closest */
	size_t own = 0;
	for (size_t i = 0; i < reply.npeers; i++)
		own += memcmp(got[i].peer.addr, r.ann.peer.addr, 3) == 0;
	assert_int_equal(own, 2);
	/* the upstream stored the client under its own address, not ours */
	assert_true(upstream_has(&r.ann.peer));
	struct itr_swarm_counts c;
	itr_tracker_scrape(up.tr, IH, &c);
	assert_int_equal(reply.counts.incomplete, c.incomplete);
	assert_int_equal(reply.counts.complete, c.complete);
	/* stopped: forwarded, the upstream forgets the client, no peers */
	r.ann.event = ITR_EVENT_STOPPED;
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure, "");
	assert_int_equal(reply.npeers, 0);
	assert_false(upstream_has(&r.ann.peer));
}

static void test_http_upstream(void **state)
{
	(void)state;
	struct itr_proxy *p = new_proxy("http://127.0.0.1:%u/announce", up.http_port, 3000);
	check_ranked_announce(p, "10.10.1.50", 7000, 5);
	check_ranked_announce(p, "10.30.0.77", 7001, 4);
	itr_proxy_free(p);
}

static void test_udp_upstream_and_connid_cache(void **state)
{
	(void)state;
	struct itr_proxy *p = new_proxy("udp://127.0.0.1:%u", up.udp_port, 3000);
	struct itr_proxy_stats st;
	check_ranked_announce(p, "10.10.2.50", 7002, 5);
	itr_proxy_get_stats(p, &st);
	assert_int_equal(st.udp_connects, 1); /* two announces, one connect */
	check_ranked_announce(p, "10.10.1.51", 7003, 5);
	itr_proxy_get_stats(p, &st);
	assert_int_equal(st.udp_connects, 1);
	proxy_now += 61; /* past the minute: a fresh connect */
	check_ranked_announce(p, "10.10.1.52", 7004, 5);
	itr_proxy_get_stats(p, &st);
	assert_int_equal(st.udp_connects, 2);
	itr_proxy_free(p);
}

static void test_failure_reason_passes_through(void **state)
{
	(void)state;
	/* a real upstream failure: the URL's own query gives a bad event */
	struct itr_proxy *p =
	    new_proxy("http://127.0.0.1:%u/announce?event=bogus", up.http_port, 3000);
	struct itr_backend_request r = request("10.10.1.53", 7005, 5);
	r.ann.event = ITR_EVENT_NONE;
	struct itr_backend_reply reply;
	struct itr_ranked_peer got[50];
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure,
	                    "bad event: must be started, completed, stopped or empty");
	assert_int_equal(reply.npeers, 0);
	struct itr_proxy_stats st;
	itr_proxy_get_stats(p, &st);
	assert_int_equal(st.upstream_failures, 1);
	/* the backend's own figures say the same */
	struct itr_backend_stats bs;
	itr_backend_stats(itr_proxy_backend(p), &bs);
	assert_int_equal(bs.announces, 1);
	assert_int_equal(bs.failures, 1);
	itr_proxy_free(p);

	/* a path that is not a tracker: the HTTP status is the reason */
	p = new_proxy("http://127.0.0.1:%u/nothing-here", up.http_port, 3000);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure, "upstream tracker answered HTTP 404");
	itr_proxy_free(p);
}

static void test_dead_upstreams_time_out(void **state)
{
	(void)state;
	/* a TCP listener that never accepts: connect succeeds, no answer */
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(tcp, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(tcp, 8), 0);
	assert_int_equal(bind(udp, (struct sockaddr *)&sin, sizeof(sin)), 0);
	struct sockaddr_in bound;
	socklen_t sl = sizeof(bound);
	getsockname(tcp, (struct sockaddr *)&bound, &sl);
	uint16_t tcp_port = ntohs(bound.sin_port);
	sl = sizeof(bound);
	getsockname(udp, (struct sockaddr *)&bound, &sl);
	uint16_t udp_port = ntohs(bound.sin_port);

	struct itr_backend_request r = request("10.10.1.54", 7006, 5);
	struct itr_backend_reply reply;
	struct itr_ranked_peer got[50];
	struct itr_proxy *p = new_proxy("http://127.0.0.1:%u/announce", tcp_port, 300);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure, "upstream tracker timed out after 300 ms");
	itr_proxy_free(p);
	p = new_proxy("udp://127.0.0.1:%u", udp_port, 300);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure, "upstream tracker timed out after 300 ms");
	struct itr_proxy_stats st;
	itr_proxy_get_stats(p, &st);
	assert_int_equal(st.upstream_errors, 1);
	itr_proxy_free(p);
	close(tcp);
	close(udp);

	/* nobody listening at all: refused, said so */
	p = new_proxy("http://127.0.0.1:%u/announce", tcp_port, 300);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure, "upstream tracker unreachable: Connection refused");
	itr_proxy_free(p);
}

static void test_scrape(void **state)
{
	(void)state;
	uint8_t hashes[2][20];
	memcpy(hashes[0], IH, 20);
	memset(hashes[1], 0x77, 20); /* unknown upstream */
	struct itr_swarm_counts want, got[2];
	itr_tracker_scrape(up.tr, IH, &want);
	assert_true(want.incomplete >= 12);
	char why[256];
	for (int kind = 0; kind < 2; kind++) {
		struct itr_proxy *p =
		    kind ? new_proxy("udp://127.0.0.1:%u", up.udp_port, 3000)
		         : new_proxy("http://127.0.0.1:%u/announce", up.http_port, 3000);
		assert_int_equal(
		    itr_proxy_scrape(p, (const uint8_t(*)[20])hashes, 2, got, why, sizeof(why)), 0);
		assert_int_equal(got[0].incomplete, want.incomplete);
		assert_int_equal(got[0].complete, want.complete);
		assert_int_equal(got[1].incomplete, 0);
		itr_proxy_free(p);
	}
	/* an announce URL without "announce" in it has no scrape */
	struct itr_proxy *p = new_proxy("http://127.0.0.1:%u/a", up.http_port, 3000);
	assert_int_equal(
	    itr_proxy_scrape(p, (const uint8_t(*)[20])hashes, 2, got, why, sizeof(why)), -1);
	assert_string_equal(why, "upstream tracker does not support scrape");
	itr_proxy_free(p);
}

static void test_bad_urls(void **state)
{
	(void)state;
	const char *bad[] = {"ftp://127.0.0.1/announce",
	                     "https://127.0.0.1/announce",
	                     "udp://127.0.0.1",
	                     "http://127.0.0.1:99999/announce",
	                     "http:///announce",
	                     "http://[::1/announce",
	                     ""};
	char why[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct itr_proxy_config cfg;
		itr_proxy_config_default(&cfg);
		cfg.upstream = bad[i];
		struct itr_proxy *p = itr_proxy_new(&cfg, front, why, sizeof(why));
		if (p)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(why[0] != '\0');
	}
}

/* An upstream that does not trust us stores proxied clients under our own
 * address (Debian's opentracker does this with ip=); those entries point
 * at the proxy and must not reach clients. */
static void test_untrusting_upstream(void **state)
{
	(void)state;
	char why[256];
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.loopback_peers = true;
	cfg.policy = (struct itr_rank_policy){
	    .max_own_pid_pct = 100, .max_own_as_pct = 100, .max_external = 1000};
	struct itr_tracker *plain = itr_tracker_new(&cfg, NULL, why, sizeof(why));
	assert_non_null(plain);
	struct itr_http_limits lim = {
	    .max_body = 4096, .max_query = 8192, .max_connections = 64, .connection_timeout_s = 5};
	struct itr_http_server *srv = itr_http_new(&lim);
	assert_int_equal(itr_tracker_http_register(srv, plain), 0);
	assert_int_equal(itr_http_start(srv, "127.0.0.1", 0, why, sizeof(why)), 0);
	struct itr_announce seed = {.event = ITR_EVENT_STARTED, .left = 0, .numwant = 0};
	memcpy(seed.info_hash, IH, 20);
	seed.peer = addr4("10.20.0.9", 6999);
	struct itr_announce_reply ar;
	struct itr_ranked_peer none[1];
	assert_int_equal(itr_tracker_announce(plain, &seed, &ar, none, 1), 0);

	struct itr_proxy *p = new_proxy("http://127.0.0.1:%u/announce", itr_http_port(srv), 3000);
	struct itr_backend_reply reply;
	struct itr_ranked_peer got[50];
	struct itr_proxy_stats before, after;
	struct itr_backend_request r = request("10.10.1.70", 7100, 50);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	r = request("10.10.1.71", 7101, 50);
	itr_proxy_get_stats(p, &before);
	assert_int_equal(itr_proxy_announce(p, &r, &reply, got, 50), 0);
	assert_string_equal(reply.failure, "");
	itr_proxy_get_stats(p, &after);
	/* upstream: the seed and 127.0.0.1:7100 (the first client, misfiled) */
	assert_int_equal(after.upstream_peers - before.upstream_peers, 2);
	assert_int_equal(reply.npeers, 1);
	assert_memory_equal(got[0].peer.addr, seed.peer.addr, 4);
	itr_proxy_free(p);
	itr_http_free(srv);
	itr_tracker_free(plain);
}

/* ---- the front ends, as a client sees them ------------------------------- */

static size_t http_get_body(uint16_t port, const char *target, uint8_t *body, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	char req[1024];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", target);
	assert_int_equal(send(fd, req, (size_t)n, 0), n);
	static uint8_t buf[65536];
	size_t len = 0;
	ssize_t got;
	while ((got = recv(fd, buf + len, sizeof(buf) - len, 0)) > 0)
		len += (size_t)got;
	close(fd);
	uint8_t *hend = memmem(buf, len, "\r\n\r\n", 4);
	assert_non_null(hend);
	size_t blen = len - (size_t)(hend + 4 - buf);
	assert_true(blen <= cap);
	memcpy(body, hend + 4, blen);
	return blen;
}

static void test_http_front_end(void **state)
{
	(void)state;
	struct itr_proxy *p = new_proxy("http://127.0.0.1:%u/announce", up.http_port, 3000);
	struct itr_http_limits lim = {.max_body = 4096,
	                              .max_query = 8192,
	                              .max_connections = 64,
	                              .connection_timeout_s = 5,
	                              .threads = 4};
	struct itr_http_server *srv = itr_http_new(&lim);
	char why[256];
	struct itr_tracker_stats ts_before, ts_after;
	struct itr_proxy_stats ps;
	itr_tracker_stats(front, &ts_before);
	itr_tracker_use_backend(front, itr_proxy_backend(p));
	assert_int_equal(itr_tracker_http_register(srv, front), 0);
	assert_int_equal(itr_http_start(srv, "127.0.0.1", 0, why, sizeof(why)), 0);

	char target[512];
	snprintf(target, sizeof(target),
	         "/announce?info_hash=proxy-test-infohash%%21&peer_id=-IT0001-frontendhttp"
	         "&port=7010&left=5&compact=1&numwant=5&event=started&ip=10.10.2.60");
	uint8_t body[4096];
	size_t len = http_get_body(itr_http_port(srv), target, body, sizeof(body));
	struct itr_bval root, peers, interval;
	assert_true(itr_bdec_valid(body, len));
	itr_bdec(body, len, &root);
	if (itr_bdec_dict_get(&root, "failure reason", &peers) == 0)
		fail_msg("failure: %.*s", (int)peers.len, (const char *)peers.data);
	assert_int_equal(itr_bdec_dict_get(&root, "interval", &interval), 0);
	assert_int_equal(interval.num, itr_tracker_get_config(up.tr)->interval);
	assert_int_equal(itr_bdec_dict_get(&root, "peers", &peers), 0);
	struct itr_ranked_peer want[5];
	struct itr_peer_addr client = addr4("10.10.2.60", 7010);
	size_t n = expected(&client, 5, want);
	assert_int_equal(peers.len, 6 * n);
	for (size_t i = 0; i < n; i++) {
		assert_memory_equal(peers.data + 6 * i, want[i].peer.addr, 4);
		assert_int_equal(peers.data[6 * i + 4] << 8 | peers.data[6 * i + 5],
		                 want[i].peer.port);
	}
	assert_true(upstream_has(&client));
	/* counted as an HTTP announce, by the front end and by the proxy */
	itr_tracker_stats(front, &ts_after);
	assert_int_equal(ts_after.by_transport[ITR_TRANSPORT_HTTP][ITR_OUTCOME_OK] -
	                     ts_before.by_transport[ITR_TRANSPORT_HTTP][ITR_OUTCOME_OK],
	                 1);
	assert_int_equal(ts_after.by_transport[ITR_TRANSPORT_UDP][ITR_OUTCOME_OK],
	                 ts_before.by_transport[ITR_TRANSPORT_UDP][ITR_OUTCOME_OK]);
	itr_proxy_get_stats(p, &ps);
	assert_int_equal(ps.by_transport[ITR_TRANSPORT_HTTP], 1);
	assert_int_equal(ps.by_transport[ITR_TRANSPORT_UDP], 0);

	/* scrape through the front end */
	len = http_get_body(itr_http_port(srv), "/scrape?info_hash=proxy-test-infohash%21", body,
	                    sizeof(body));
	struct itr_bval files, entry, v;
	itr_bdec(body, len, &root);
	assert_int_equal(itr_bdec_dict_get(&root, "files", &files), 0);
	size_t pos = 0;
	assert_int_equal(itr_bdec_dict_next(&files, &pos, &v, &entry), 1);
	assert_memory_equal(v.data, IH, 20);
	struct itr_swarm_counts c;
	itr_tracker_scrape(up.tr, IH, &c);
	assert_int_equal(itr_bdec_dict_get(&entry, "incomplete", &v), 0);
	assert_int_equal(v.num, c.incomplete);

	/* the upstream's failure reaches the client as its failure reason */
	itr_http_free(srv);
	itr_proxy_free(p);
	p = new_proxy("http://127.0.0.1:%u/announce?event=bogus", up.http_port, 3000);
	itr_tracker_use_backend(front, itr_proxy_backend(p));
	srv = itr_http_new(&lim);
	assert_int_equal(itr_tracker_http_register(srv, front), 0);
	assert_int_equal(itr_http_start(srv, "127.0.0.1", 0, why, sizeof(why)), 0);
	len = http_get_body(itr_http_port(srv),
	                    "/announce?info_hash=proxy-test-infohash%21"
	                    "&peer_id=-IT0001-frontendhttp&port=7010",
	                    body, sizeof(body));
	itr_bdec(body, len, &root);
	assert_int_equal(itr_bdec_dict_get(&root, "failure reason", &v), 0);
	assert_int_equal(v.len, strlen("bad event: must be started, completed, stopped or empty"));
	itr_tracker_stats(front, &ts_before);
	assert_int_equal(ts_before.by_transport[ITR_TRANSPORT_HTTP][ITR_OUTCOME_ERROR] -
	                     ts_after.by_transport[ITR_TRANSPORT_HTTP][ITR_OUTCOME_ERROR],
	                 1);
	itr_http_free(srv);
	itr_tracker_use_backend(front, NULL);
	itr_proxy_free(p);
}

static size_t udp_ask(int fd, const uint8_t *req, size_t len, uint8_t *resp, size_t cap)
{
	assert_int_equal(send(fd, req, len, 0), (ssize_t)len);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	ssize_t n = recv(fd, resp, cap, 0);
	assert_true(n >= 8);
	return (size_t)n;
}

static void test_udp_front_end(void **state)
{
	(void)state;
	struct itr_proxy *p = new_proxy("udp://127.0.0.1:%u", up.udp_port, 3000);
	char why[256];
	struct itr_tracker_stats ts_before, ts_after;
	itr_tracker_stats(front, &ts_before);
	itr_tracker_use_backend(front, itr_proxy_backend(p));
	struct itr_udp_tracker *u = itr_udp_tracker_start(front, "127.0.0.1", 0, why, sizeof(why));
	assert_non_null(u);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(itr_udp_tracker_port(u)),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);

	uint8_t req[98], resp[2048];
	itr_be32_put(req, 0x417);
	itr_be32_put(req + 4, 0x27101980);
	itr_be32_put(req + 8, 0);
	itr_be32_put(req + 12, 11);
	size_t n = udp_ask(fd, req, 16, resp, sizeof(resp));
	assert_int_equal(n, 16);
	assert_int_equal(itr_be32_get(resp + 4), 11);
	uint8_t connid[8];
	memcpy(connid, resp + 8, 8);

	memset(req, 0, sizeof(req));
	memcpy(req, connid, 8);
	itr_be32_put(req + 8, 1);
	itr_be32_put(req + 12, 12);
	memcpy(req + 16, IH, 20);
	memcpy(req + 36, "-IT0001-frontendudp0", 20);
	itr_be32_put(req + 68, 77); /* left */
	itr_be32_put(req + 80, 2);  /* started */
	struct itr_peer_addr client = addr4("10.30.0.61", 7011);
	memcpy(req + 84, client.addr, 4); /* trusted source: the IP field counts */
	itr_be32_put(req + 92, 4);
	req[96] = 7011 >> 8;
	req[97] = 7011 & 0xff;
	n = udp_ask(fd, req, 98, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 1);
	assert_int_equal(itr_be32_get(resp + 4), 12);
	assert_int_equal(itr_be32_get(resp + 8), itr_tracker_get_config(up.tr)->interval);
	struct itr_ranked_peer want[4];
	size_t nwant = expected(&client, 4, want);
	assert_int_equal(n, 20 + 6 * nwant);
	for (size_t i = 0; i < nwant; i++)
		assert_memory_equal(resp + 20 + 6 * i, want[i].peer.addr, 4);
	assert_true(upstream_has(&client));
	/* counted as a UDP announce, not an HTTP one */
	itr_tracker_stats(front, &ts_after);
	assert_int_equal(ts_after.by_transport[ITR_TRANSPORT_UDP][ITR_OUTCOME_OK] -
	                     ts_before.by_transport[ITR_TRANSPORT_UDP][ITR_OUTCOME_OK],
	                 1);
	assert_int_equal(ts_after.by_transport[ITR_TRANSPORT_HTTP][ITR_OUTCOME_OK],
	                 ts_before.by_transport[ITR_TRANSPORT_HTTP][ITR_OUTCOME_OK]);
	struct itr_proxy_stats ps;
	itr_proxy_get_stats(p, &ps);
	assert_int_equal(ps.by_transport[ITR_TRANSPORT_UDP], 1);
	assert_int_equal(ps.by_transport[ITR_TRANSPORT_HTTP], 0);

	/* a wrong connection id: an error, never forwarded */
	struct itr_proxy_stats before, after;
	itr_proxy_get_stats(p, &before);
	req[0] ^= 0xff;
	n = udp_ask(fd, req, 98, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 3);
	assert_memory_equal(resp + 8, "bad connection id", n - 8);
	itr_proxy_get_stats(p, &after);
	assert_int_equal(after.announces, before.announces);

	itr_tracker_stats(front, &ts_before);
	assert_int_equal(ts_before.by_transport[ITR_TRANSPORT_UDP][ITR_OUTCOME_REJECTED] -
	                     ts_after.by_transport[ITR_TRANSPORT_UDP][ITR_OUTCOME_REJECTED],
	                 1);

	close(fd);
	itr_udp_tracker_stop(u);
	itr_tracker_use_backend(front, NULL);
	itr_proxy_free(p);
}

/* An HTTP upstream that takes its first connection and never answers it,
 * and answers every later one at once with an empty swarm. */
struct stalling_upstream {
	int listen_fd;
	uint16_t port;
	int held_fd;
	atomic_bool stop;
	pthread_t thread;
};

static void *stalling_serve(void *arg)
{
	struct stalling_upstream *s = arg;
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n"
	                             "d8:intervali1800e5:peers0:e";
	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = {.fd = s->listen_fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int fd = accept(s->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		if (s->held_fd < 0) {
			s->held_fd = fd; /* read nothing, answer nothing */
			continue;
		}
		char req[4096];
		size_t len = 0;
		ssize_t n;
		while (len < sizeof(req) - 1 &&
		       (n = recv(fd, req + len, sizeof(req) - 1 - len, 0)) > 0) {
			len += (size_t)n;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

static void announce_packet(uint8_t *req, const uint8_t connid[8], uint32_t tid, const char *ip,
                            uint16_t port)
{
	memset(req, 0, 98);
	memcpy(req, connid, 8);
	itr_be32_put(req + 8, 1);
	itr_be32_put(req + 12, tid);
	memcpy(req + 16, IH, 20);
	memcpy(req + 36, "-IT0001-frontendudp1", 20);
	itr_be32_put(req + 80, 2); /* started */
	struct itr_peer_addr client = addr4(ip, port);
	memcpy(req + 84, client.addr, 4);
	itr_be32_put(req + 92, 4);
	req[96] = (uint8_t)(port >> 8);
	req[97] = (uint8_t)port;
}

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The UDP front end runs the proxy's threads: while one client's upstream
 * exchange hangs until its timeout, another client is answered at once. */
static void test_udp_front_end_slow_upstream(void **state)
{
	(void)state;
	struct stalling_upstream s = {.held_fd = -1};
	s.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s.listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s.listen_fd, 16), 0);
	socklen_t sl = sizeof(sin);
	getsockname(s.listen_fd, (struct sockaddr *)&sin, &sl);
	s.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s.thread, NULL, stalling_serve, &s), 0);

	struct itr_proxy *p = new_proxy("http://127.0.0.1:%u/announce", s.port, 1500);
	itr_tracker_use_backend(front, itr_proxy_backend(p));
	char why[256];
	struct itr_udp_tracker *u = itr_udp_tracker_start(front, "127.0.0.1", 0, why, sizeof(why));
	assert_non_null(u);
	assert_true(itr_udp_tracker_workers(u) >= 2); /* new_proxy asks for 2 threads */
	int fds[2];
	sin.sin_port = htons(itr_udp_tracker_port(u));
	for (int i = 0; i < 2; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	uint8_t req[98], resp[2048];
	itr_be32_put(req, 0x417);
	itr_be32_put(req + 4, 0x27101980);
	itr_be32_put(req + 8, 0);
	itr_be32_put(req + 12, 21);
	assert_int_equal(udp_ask(fds[0], req, 16, resp, sizeof(resp)), 16);
	uint8_t connid[8]; /* one id serves both: it is bound to the address */
	memcpy(connid, resp + 8, 8);

	int64_t start = ms_now();
	announce_packet(req, connid, 22, "10.30.0.71", 7021);
	assert_int_equal(send(fds[0], req, 98, 0), 98);
	usleep(100000); /* the first is in its upstream exchange by now */
	announce_packet(req, connid, 23, "10.30.0.72", 7022);
	size_t n = udp_ask(fds[1], req, 98, resp, sizeof(resp));
	int64_t second = ms_now() - start;
	assert_int_equal(itr_be32_get(resp), 1); /* an announce answer */
	assert_int_equal(itr_be32_get(resp + 4), 23);
	assert_true(n >= 20);
	if (second >= 1000)
		fail_msg("the second client waited %lld ms behind the first", (long long)second);
	/* the first gets its failure once the upstream timed out */
	struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	ssize_t got = recv(fds[0], resp, sizeof(resp), 0);
	assert_true(got > 8);
	assert_int_equal(itr_be32_get(resp), 3);
	assert_int_equal(itr_be32_get(resp + 4), 22);
	assert_true(ms_now() - start >= 1400);
	assert_memory_equal(resp + 8, "upstream tracker timed out", 26);

	for (int i = 0; i < 2; i++)
		close(fds[i]);
	itr_udp_tracker_stop(u);
	itr_tracker_use_backend(front, NULL);
	itr_proxy_free(p);
	atomic_store(&s.stop, true);
	pthread_join(s.thread, NULL);
	if (s.held_fd >= 0)
		close(s.held_fd);
	close(s.listen_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_upstream),
	    cmocka_unit_test(test_udp_upstream_and_connid_cache),
	    cmocka_unit_test(test_failure_reason_passes_through),
	    cmocka_unit_test(test_dead_upstreams_time_out),
	    cmocka_unit_test(test_scrape),
	    cmocka_unit_test(test_bad_urls),
	    cmocka_unit_test(test_untrusting_upstream),
	    cmocka_unit_test(test_http_front_end),
	    cmocka_unit_test(test_udp_front_end),
	    cmocka_unit_test(test_udp_front_end_slow_upstream),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
