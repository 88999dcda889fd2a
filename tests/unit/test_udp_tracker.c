/* test_udp_tracker.c - BEP 15: packet parsing and building, connection IDs
 * (keyed, bound to the address, expiring on an injected clock, never
 * amplifying for unauthenticated sources), and the server over real UDP
 * on 127.0.0.1 and ::1: connect, announce (IPv4 and IPv6 answers),
 * scrape, errors, drops.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "announce_backend.h"
#include "byte_order.h"
#include "netmap.h"
#include "udp_tracker.h"

static _Atomic uint32_t fake_now = 600;
static uint32_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static size_t make_connect(uint8_t *b, uint32_t tid)
{
	itr_be32_put(b, 0x417);
	itr_be32_put(b + 4, 0x27101980);
	itr_be32_put(b + 8, 0);
	itr_be32_put(b + 12, tid);
	return 16;
}

static size_t make_announce(uint8_t *b, const uint8_t cid[8], uint32_t tid, const char *ih,
                            uint64_t left, uint32_t event, int32_t num_want, uint16_t port)
{
	memset(b, 0, 98);
	memcpy(b, cid, 8);
	itr_be32_put(b + 8, 1);
	itr_be32_put(b + 12, tid);
	memcpy(b + 16, ih, 20);
	memcpy(b + 36, "-XX0001-abcdefghijkl", 20);
	itr_be32_put(b + 64, (uint32_t)(left >> 32));
	itr_be32_put(b + 68, (uint32_t)left);
	itr_be32_put(b + 80, event);
	itr_be32_put(b + 92, (uint32_t)num_want);
	b[96] = (uint8_t)(port >> 8);
	b[97] = (uint8_t)port;
	return 98;
}

static const char IH[21] = "udp-info-hash-012345";

static void test_parse(void **state)
{
	(void)state;
	uint8_t b[2048];
	struct itr_udp_request r;
	const char *why;

	size_t n = make_connect(b, 77);
	assert_int_equal(itr_udp_parse(b, n, &r, &why), ITR_UDP_PARSED);
	assert_int_equal(r.action, ITR_UDP_CONNECT);
	assert_int_equal(r.transaction_id, 77);
	assert_int_equal(itr_udp_parse(b, 15, &r, &why), ITR_UDP_DROP);
	b[0] ^= 1; /* wrong magic */
	assert_int_equal(itr_udp_parse(b, n, &r, &why), ITR_UDP_DROP);

	uint8_t cid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	n = make_announce(b, cid, 9, IH, 1234, 2, -1, 6881);
	itr_be32_put(b + 84, 0x0a000001);
	itr_be32_put(b + 88, 0xabcdef);
	assert_int_equal(itr_udp_parse(b, n, &r, &why), ITR_UDP_PARSED);
	assert_memory_equal(r.connection_id, cid, 8);
	assert_int_equal(r.action, ITR_UDP_ANNOUNCE);
	assert_memory_equal(r.info_hash, IH, 20);
	assert_int_equal(r.left, 1234);
	assert_int_equal(r.event, 2);
	assert_int_equal(r.num_want, -1);
	assert_int_equal(r.port, 6881);
	assert_int_equal(r.key, 0xabcdef);
	assert_memory_equal(r.ipv4, "\x0a\x00\x00\x01", 4);
	/* BEP 41 options after byte 98: tolerated */
	b[98] = 2;
	b[99] = 5;
	memcpy(b + 100, "/ann?", 5);
	b[105] = 1;
	b[106] = 0;
	assert_int_equal(itr_udp_parse(b, 107, &r, &why), ITR_UDP_PARSED);

	assert_int_equal(itr_udp_parse(b, 97, &r, &why), ITR_UDP_INVALID);
	assert_string_equal(why, "announce shorter than 98 bytes");
	itr_be32_put(b + 80, 4);
	assert_int_equal(itr_udp_parse(b, 98, &r, &why), ITR_UDP_INVALID);
	assert_string_equal(why, "bad event");
	itr_be32_put(b + 80, 0);
	b[96] = b[97] = 0;
	assert_int_equal(itr_udp_parse(b, 98, &r, &why), ITR_UDP_INVALID);
	assert_string_equal(why, "bad port");
	itr_be32_put(b + 8, 9);
	assert_int_equal(itr_udp_parse(b, 98, &r, &why), ITR_UDP_INVALID);
	assert_string_equal(why, "unknown action");
	assert_int_equal(r.transaction_id, 9);

	/* scrape: at most 74 hashes are answered */
	itr_be32_put(b + 8, 2);
	assert_int_equal(itr_udp_parse(b, 16, &r, &why), ITR_UDP_INVALID);
	assert_int_equal(itr_udp_parse(b, 16 + 20 * 3 + 7, &r, &why), ITR_UDP_PARSED);
	assert_int_equal(r.nhashes, 3);
	assert_ptr_equal(r.hashes, b + 16);
	assert_int_equal(itr_udp_parse(b, 16 + 20 * 100, &r, &why), ITR_UDP_PARSED);
	assert_int_equal(r.nhashes, ITR_UDP_MAX_SCRAPE);
}

static void test_build(void **state)
{
	(void)state;
	uint8_t b[256];
	uint8_t cid[8] = {9, 8, 7, 6, 5, 4, 3, 2};
	assert_int_equal(itr_udp_build_connect(b, 15, 5, cid), 0);
	assert_int_equal(itr_udp_build_connect(b, 16, 5, cid), 16);
	assert_int_equal(itr_be32_get(b), 0);
	assert_int_equal(itr_be32_get(b + 4), 5);
	assert_memory_equal(b + 8, cid, 8);

	struct itr_ranked_peer peers[3] = {0};
	peers[0].peer = (struct itr_peer_addr){.family = 4, .addr = {1, 2, 3, 4}, .port = 0x1234};
	peers[1].peer = (struct itr_peer_addr){.family = 6, .addr = {0xfd}, .port = 1};
	peers[2].peer = (struct itr_peer_addr){.family = 4, .addr = {5, 6, 7, 8}, .port = 0xabcd};
	struct itr_swarm_counts c = {.complete = 3, .incomplete = 4};
	size_t n = itr_udp_build_announce(b, sizeof(b), 6, 1800, &c, peers, 3, 4);
	assert_int_equal(n, 20 + 12); /* the IPv6 peer is not in an IPv4 answer */
	assert_int_equal(itr_be32_get(b), 1);
	assert_int_equal(itr_be32_get(b + 4), 6);
	assert_int_equal(itr_be32_get(b + 8), 1800);
	assert_int_equal(itr_be32_get(b + 12), 4); /* leechers */
	assert_int_equal(itr_be32_get(b + 16), 3); /* seeders */
	assert_memory_equal(b + 20, "\x01\x02\x03\x04\x12\x34\x05\x06\x07\x08\xab\xcd", 12);
	/* truncated to the room given */
	assert_int_equal(itr_udp_build_announce(b, 20 + 6 + 5, 6, 1800, &c, peers, 3, 4), 26);

	assert_int_equal(itr_udp_build_error(b, sizeof(b), 7, "oops"), 12);
	assert_int_equal(itr_be32_get(b), 3);
	assert_int_equal(itr_be32_get(b + 4), 7);
	assert_memory_equal(b + 8, "oops", 4);
	assert_int_equal(itr_udp_build_error(b, 11, 7, "oops"), 0);
}

static void test_connid_expiry(void **state)
{
	(void)state;
	struct itr_udp_connid c;
	itr_udp_connid_init(&c);
	struct itr_peer_addr src = {.family = 4, .addr = {127, 0, 0, 1}, .port = 5000};
	uint8_t id[8];
	itr_udp_connid_make(&c, &src, 600, id); /* at the start of a slot */
	assert_true(itr_udp_connid_check(&c, &src, 600, id));
	assert_true(itr_udp_connid_check(&c, &src, 719, id));
	assert_false(itr_udp_connid_check(&c, &src, 720, id)); /* two minutes: gone */
	assert_false(itr_udp_connid_check(&c, &src, 599, id)); /* not from the future */
	itr_udp_connid_make(&c, &src, 659, id);                /* at the end of a slot */
	assert_true(itr_udp_connid_check(&c, &src, 719, id));  /* still a minute later */

	/* bound to the address, not the port (clients share one ID among
	 * their sockets) */
	itr_udp_connid_make(&c, &src, 600, id);
	struct itr_peer_addr other = src;
	other.port = 5001;
	assert_true(itr_udp_connid_check(&c, &other, 600, id));
	other = src;
	other.addr[3] = 2;
	assert_false(itr_udp_connid_check(&c, &other, 600, id));
	id[7] ^= 1;
	assert_false(itr_udp_connid_check(&c, &src, 600, id));
	/* another key (another process) does not accept it */
	id[7] ^= 1;
	struct itr_udp_connid c2;
	itr_udp_connid_init(&c2);
	assert_false(itr_udp_connid_check(&c2, &src, 600, id));
}

/* Loopback peers on: every test client is on 127.0.0.1. */
static struct itr_tracker *new_tracker_ip(const char *trusted, bool accept_ip_param)
{
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.clock = fake_clock;
	cfg.trusted_proxies = trusted;
	cfg.accept_ip_param = accept_ip_param;
	cfg.loopback_peers = true;
	char err[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	if (!tr)
		fail_msg("tracker: %s", err);
	return tr;
}

static struct itr_tracker *new_tracker(const char *trusted)
{
	return new_tracker_ip(trusted, false);
}

/* Whatever an unauthenticated source sends, the answer is no longer. */
static void test_no_amplification(void **state)
{
	(void)state;
	struct itr_tracker *tr = new_tracker(NULL);
	struct itr_udp_connid cid;
	itr_udp_connid_init(&cid);
	struct itr_peer_addr src = {.family = 4, .addr = {127, 0, 0, 9}, .port = 4000};
	uint8_t pkt[1500], out[2048];
	uint64_t x = 0x9e3779b97f4a7c15ull; /* fixed xorshift seed: deterministic */
	size_t answered = 0;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t len = (size_t)(x % 200);
		for (size_t j = 0; j < len; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			pkt[j] = (uint8_t)x;
		}
		if (len >= 12 && i % 2)
			itr_be32_put(pkt + 8, (uint32_t)(i / 2 % 5)); /* every action, often */
		if (len >= 16 && i % 4 == 1) {
			make_connect(pkt, 1);
		}
		size_t n = itr_udp_handle(tr, &cid, &src, pkt, len, out, sizeof(out));
		assert_true(n <= len);
		answered += n > 0;
	}
	assert_true(answered > 0); /* connects (and small errors) were answered */
	itr_tracker_free(tr);
}

/* ---- over real sockets --------------------------------------------------- */

static int client_socket(int family, uint16_t port, struct sockaddr_storage *to, socklen_t *tolen)
{
	int fd = socket(family, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 10}; /* only a guard against hanging forever */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(to, 0, sizeof(*to));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)to;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
		*tolen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)to;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, "::1", &sin6->sin6_addr);
		*tolen = sizeof(*sin6);
	}
	assert_int_equal(connect(fd, (struct sockaddr *)to, *tolen), 0);
	return fd;
}

static size_t exchange(int fd, const uint8_t *req, size_t len, uint8_t *resp, size_t cap)
{
	assert_int_equal(send(fd, req, len, 0), (ssize_t)len);
	ssize_t n = recv(fd, resp, cap, 0);
	if (n < 0)
		fail_msg("no answer from the udp tracker");
	return (size_t)n;
}

static void do_connect(int fd, uint8_t cid[8])
{
	uint8_t b[64], r[64];
	size_t n = make_connect(b, 0x1111);
	assert_int_equal(exchange(fd, b, n, r, sizeof(r)), 16);
	assert_int_equal(itr_be32_get(r), 0);
	assert_int_equal(itr_be32_get(r + 4), 0x1111);
	memcpy(cid, r + 8, 8);
}

static void test_udp_server(void **state)
{
	(void)state;
	itr_netmap_publish(NULL);
	fake_now = 6000;
	struct itr_tracker *tr = new_tracker(NULL);
	char err[256];
	struct itr_udp_tracker *u = itr_udp_tracker_start(tr, "127.0.0.1,::1", 0, err, sizeof(err));
	if (!u)
		fail_msg("udp tracker: %s", err);
	uint16_t port = itr_udp_tracker_port(u);
	assert_true(port != 0);

	struct sockaddr_storage to;
	socklen_t tolen;
	int a = client_socket(AF_INET, port, &to, &tolen);
	int b = client_socket(AF_INET, port, &to, &tolen);
	uint8_t cid_a[8], cid_b[8], req[256], resp[2048];
	do_connect(a, cid_a);
	do_connect(b, cid_b);

	/* a announces, then b: b gets a (as 127.0.0.1:6001) */
	size_t n = make_announce(req, cid_a, 21, IH, 100, 2, -1, 6001);
	itr_be32_put(req + 84, 0x0a0a0a0a); /* an ip field from an untrusted source: ignored */
	size_t got = exchange(a, req, n, resp, sizeof(resp));
	assert_int_equal(got, 20);
	assert_int_equal(itr_be32_get(resp), 1);
	assert_int_equal(itr_be32_get(resp + 4), 21);
	assert_int_equal(itr_be32_get(resp + 8), 1800);
	assert_int_equal(itr_be32_get(resp + 12), 1); /* leechers */
	assert_int_equal(itr_be32_get(resp + 16), 0); /* seeders */
	n = make_announce(req, cid_b, 22, IH, 0, 2, 50, 6002);
	got = exchange(b, req, n, resp, sizeof(resp));
	assert_int_equal(got, 26);
	assert_int_equal(itr_be32_get(resp + 12), 1);
	assert_int_equal(itr_be32_get(resp + 16), 1);
	assert_memory_equal(resp + 20, "\x7f\x00\x00\x01\x17\x71", 6);

	/* a forged connection id gets an error no longer than the request */
	cid_b[0] ^= 0x80;
	n = make_announce(req, cid_b, 23, IH, 0, 0, 50, 6001);
	got = exchange(a, req, n, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 3);
	assert_int_equal(itr_be32_get(resp + 4), 23);
	assert_memory_equal(resp + 8, "bad connection id", got - 8);

	/* scrape: one known and one unknown hash */
	memcpy(req, cid_a, 8);
	itr_be32_put(req + 8, 2);
	itr_be32_put(req + 12, 24);
	memcpy(req + 16, IH, 20);
	memset(req + 36, 'q', 20);
	got = exchange(a, req, 56, resp, sizeof(resp));
	assert_int_equal(got, 8 + 24);
	assert_int_equal(itr_be32_get(resp), 2);
	assert_int_equal(itr_be32_get(resp + 4), 24);
	assert_int_equal(itr_be32_get(resp + 8), 1);  /* seeders */
	assert_int_equal(itr_be32_get(resp + 12), 0); /* completed */
	assert_int_equal(itr_be32_get(resp + 16), 1); /* leechers */
	assert_int_equal(itr_be32_get(resp + 20), 0);

	/* an unknown action with a valid id gets an error */
	itr_be32_put(req + 8, 7);
	got = exchange(a, req, 56, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 3);
	assert_memory_equal(resp + 8, "unknown action", got - 8);

	/* garbage is dropped: the next answer is the one to the next request */
	uint8_t junk[10] = {1, 2, 3};
	assert_int_equal(send(a, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	make_connect(req, 0x2222);
	req[3] ^= 0xff; /* connect with a wrong magic */
	assert_int_equal(send(a, req, 16, 0), 16);
	make_connect(req, 0x3333);
	got = exchange(a, req, 16, resp, sizeof(resp));
	assert_int_equal(got, 16);
	assert_int_equal(itr_be32_get(resp + 4), 0x3333);

	/* two minutes later the id has expired */
	fake_now += 120;
	n = make_announce(req, cid_a, 25, IH, 100, 0, -1, 6001);
	got = exchange(a, req, n, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 3);
	assert_int_equal(itr_be32_get(resp + 4), 25);
	do_connect(a, cid_a);
	got = exchange(a, (make_announce(req, cid_a, 26, IH, 100, 0, -1, 6001), req), n, resp,
	               sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 1);
	close(a);
	close(b);

	/* IPv6: answers carry 18-byte peers */
	int c = client_socket(AF_INET6, port, &to, &tolen);
	int d = client_socket(AF_INET6, port, &to, &tolen);
	uint8_t cid_c[8], cid_d[8];
	do_connect(c, cid_c);
	do_connect(d, cid_d);
	n = make_announce(req, cid_c, 31, IH, 100, 2, -1, 7001);
	got = exchange(c, req, n, resp, sizeof(resp));
	assert_int_equal(got, 20);
	n = make_announce(req, cid_d, 32, IH, 100, 2, -1, 7002);
	got = exchange(d, req, n, resp, sizeof(resp));
	assert_int_equal(got, 20 + 18);
	static const uint8_t expect[18] = {[15] = 1, [16] = 0x1b, [17] = 0x59};
	assert_memory_equal(resp + 20, expect, 18);
	assert_int_equal(itr_be32_get(resp + 12), 3); /* counts cover both families: a, c, d */
	assert_int_equal(itr_be32_get(resp + 16), 1); /* b */
	close(c);
	close(d);

	struct itr_udp_stats st;
	itr_udp_tracker_stats(u, &st);
	assert_true(st.received >= 17);
	assert_true(st.dropped >= 2);
	itr_udp_tracker_stop(u);
	itr_tracker_free(tr);
}

/* One announce from a fresh tracker whose socket source is 127.0.0.1 and
 * whose IP field says ip_field; the peer a second client then sees (6
 * bytes), or the error text of the first answer. */
static void ip_field_case(const char *trusted, bool accept, uint32_t ip_field,
                          const char *expect_peer, const char *expect_error)
{
	fake_now = 9000;
	struct itr_tracker *tr = new_tracker_ip(trusted, accept);
	char err[256];
	struct itr_udp_tracker *u = itr_udp_tracker_start(tr, "127.0.0.1", 0, err, sizeof(err));
	if (!u)
		fail_msg("udp tracker: %s", err);
	struct sockaddr_storage to;
	socklen_t tolen;
	int a = client_socket(AF_INET, itr_udp_tracker_port(u), &to, &tolen);
	uint8_t cid[8], req[128], resp[512];
	do_connect(a, cid);
	size_t n = make_announce(req, cid, 1, IH, 100, 2, -1, 6001);
	itr_be32_put(req + 84, ip_field);
	size_t got = exchange(a, req, n, resp, sizeof(resp));
	if (expect_error) {
		assert_int_equal(itr_be32_get(resp), 3); /* error */
		assert_true(got > 8);
		assert_memory_equal(resp + 8, expect_error, strlen(expect_error));
	}
	n = make_announce(req, cid, 2, IH, 100, 2, -1, 6002);
	got = exchange(a, req, n, resp, sizeof(resp));
	if (expect_peer) {
		assert_int_equal(got, 26);
		assert_memory_equal(resp + 20, expect_peer, 6);
	} else {
		assert_int_equal(got, 20); /* nobody stored */
	}
	close(a);
	itr_udp_tracker_stop(u);
	itr_tracker_free(tr);
}

static void test_udp_trusted_ip_field(void **state)
{
	(void)state;
	/* 10.10.1.5 from a trusted proxy, operator opted in: honoured */
	ip_field_case("127.0.0.1", true, 0x0a0a0105, "\x0a\x0a\x01\x05\x17\x71", NULL);
	/* the same without --accept-ip-param: the source address stands */
	ip_field_case("127.0.0.1", false, 0x0a0a0105, "\x7f\x00\x00\x01\x17\x71", NULL);
	/* a trusted proxy written as IPv4-mapped IPv6 matches the IPv4 source */
	ip_field_case("::ffff:127.0.0.1", true, 0x0a0a0105, "\x0a\x0a\x01\x05\x17\x71", NULL);
	ip_field_case("::ffff:127.0.0.0/104", true, 0x0a0a0105, "\x0a\x0a\x01\x05\x17\x71", NULL);
	/* addresses no peer can have are refused, never stored */
	ip_field_case("127.0.0.1", true, 0xffffffff, NULL, "broadcast");
	ip_field_case("127.0.0.1", true, 0xe0000001, NULL, "multicast");
	ip_field_case("127.0.0.1", true, 0xc0000207, NULL, "documentation");
	ip_field_case("127.0.0.1", true, 0xa9fe0101, NULL, "link-local");

	/* bad addresses are refused at start */
	struct itr_tracker *tr = new_tracker(NULL);
	char err[256];
	assert_null(itr_udp_tracker_start(tr, "127.0.0.1,not-an-ip", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not-an-ip"));
	itr_tracker_free(tr);
}

/* One source flooding announces gets its burst, then errors no longer
 * than its requests, while another source is served. */
static void test_udp_announce_rate(void **state)
{
	(void)state;
	fake_now = 9000;
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.clock = fake_clock;
	cfg.loopback_peers = true;
	cfg.announce_rate = 5;
	cfg.announce_burst = 10;
	char err[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	assert_non_null(tr);
	struct itr_udp_tracker *u = itr_udp_tracker_start(tr, "127.0.0.1,::1", 0, err, sizeof(err));
	assert_non_null(u);
	struct sockaddr_storage to;
	socklen_t tolen;
	int a = client_socket(AF_INET, itr_udp_tracker_port(u), &to, &tolen);
	int b = client_socket(AF_INET6, itr_udp_tracker_port(u), &to, &tolen);
	uint8_t cid[8], cid6[8], req[128], resp[512];
	do_connect(a, cid);
	do_connect(b, cid6);
	int ok = 0, limited = 0;
	for (uint32_t i = 0; i < 50; i++) {
		size_t n = make_announce(req, cid, i, IH, 100, 0, 10, 6001);
		size_t got = exchange(a, req, n, resp, sizeof(resp));
		assert_true(got <= n);
		if (itr_be32_get(resp) == 1)
			ok++;
		else if (itr_be32_get(resp) == 3 && memmem(resp + 8, got - 8, "too many", 8))
			limited++;
	}
	assert_int_equal(ok, 10);
	assert_int_equal(limited, 40);
	size_t n = make_announce(req, cid6, 99, IH, 100, 0, 10, 6002);
	exchange(b, req, n, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 1);
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.refused[ITR_REFUSED_RATE], 40);
	close(a);
	close(b);
	itr_udp_tracker_stop(u);
	itr_tracker_free(tr);
}

/* Several SO_REUSEPORT workers on one port: clients on different source
 * ports (spread over the workers by the kernel) share one store, and a
 * connection id handed out by one worker is good at every other one (same
 * key, bound to the address, not the port), while a forged one is not. */
static void test_udp_workers(void **state)
{
	(void)state;
	itr_netmap_publish(NULL);
	fake_now = 12000;
	struct itr_tracker *tr = new_tracker(NULL);
	char err[256];
	struct itr_udp_tracker *u =
	    itr_udp_tracker_start_workers(tr, "127.0.0.1,::1", 0, 4, err, sizeof(err));
	if (!u)
		fail_msg("udp tracker: %s", err);
	assert_int_equal(itr_udp_tracker_workers(u), 4);
	uint16_t port = itr_udp_tracker_port(u);
	enum { CLIENTS = 16 };
	int fds[CLIENTS];
	struct sockaddr_storage to;
	socklen_t tolen;
	uint8_t cid[8], req[128], resp[2048];
	for (int i = 0; i < CLIENTS; i++)
		fds[i] = client_socket(AF_INET, port, &to, &tolen);
	do_connect(fds[0], cid);
	for (int i = 0; i < CLIENTS; i++) {
		/* every client uses the first one's connection id */
		size_t n = make_announce(req, cid, 100 + (uint32_t)i, IH, 100, 2, 200,
		                         (uint16_t)(7000 + i));
		size_t got = exchange(fds[i], req, n, resp, sizeof(resp));
		assert_int_equal(itr_be32_get(resp), 1);
		assert_int_equal(itr_be32_get(resp + 4), 100 + (uint32_t)i);
		/* all earlier clients, whatever worker stored them */
		assert_int_equal(got, 20 + 6 * (size_t)i);
		assert_int_equal(itr_be32_get(resp + 12), (uint32_t)i + 1);
	}
	uint8_t forged[8];
	memcpy(forged, cid, 8);
	forged[7] ^= 1;
	for (int i = 0; i < CLIENTS; i++) {
		size_t n = make_announce(req, forged, 300, IH, 100, 0, 10, 7100);
		size_t got = exchange(fds[i], req, n, resp, sizeof(resp));
		assert_int_equal(itr_be32_get(resp), 3);
		assert_true(got <= n);
	}
	/* IPv6 sockets have workers too */
	int v6 = client_socket(AF_INET6, port, &to, &tolen);
	do_connect(v6, cid);
	close(v6);
	for (int i = 0; i < CLIENTS; i++)
		close(fds[i]);
	struct itr_udp_stats st;
	itr_udp_tracker_stats(u, &st);
	assert_int_equal(st.received, 1 + 2 * CLIENTS + 1);
	itr_udp_tracker_stop(u);

	/* worker count bounds */
	assert_null(itr_udp_tracker_start_workers(tr, "127.0.0.1", 0, 0, err, sizeof(err)));
	assert_null(itr_udp_tracker_start_workers(tr, "127.0.0.1", 0, ITR_UDP_MAX_WORKERS + 1, err,
	                                          sizeof(err)));
	itr_tracker_free(tr);
}

/* Loopback peers are refused unless the tracker is configured for them. */
static void test_udp_loopback_source_refused(void **state)
{
	(void)state;
	fake_now = 9000;
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.clock = fake_clock;
	char err[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	assert_non_null(tr);
	struct itr_udp_tracker *u = itr_udp_tracker_start(tr, "127.0.0.1", 0, err, sizeof(err));
	assert_non_null(u);
	struct sockaddr_storage to;
	socklen_t tolen;
	int a = client_socket(AF_INET, itr_udp_tracker_port(u), &to, &tolen);
	uint8_t cid[8], req[128], resp[512];
	do_connect(a, cid);
	size_t n = make_announce(req, cid, 1, IH, 100, 2, -1, 6001);
	size_t got = exchange(a, req, n, resp, sizeof(resp));
	assert_int_equal(itr_be32_get(resp), 3);
	assert_true(got > 8 && memmem(resp + 8, got - 8, "loopback", 8));
	struct itr_tracker_stats st;
	itr_tracker_stats(tr, &st);
	assert_int_equal(st.store.peers_v4, 0);
	close(a);
	itr_udp_tracker_stop(u);
	itr_tracker_free(tr);
}

/* A backend whose announce waits until the test opens the gate: the
 * worker stops reading, so the socket fills and the kernel drops. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int gate_waiting;

static int gated_announce(void *impl, const struct itr_backend_request *req,
                          struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
                          size_t want)
{
	(void)impl, (void)req, (void)peers, (void)want;
	atomic_fetch_add(&gate_waiting, 1);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	memset(reply, 0, sizeof(*reply));
	reply->interval = 1800;
	return 0;
}

static void test_udp_socket_drops_counted(void **state)
{
	(void)state;
	static const struct itr_announce_backend_ops gated_ops = {.announce = gated_announce};
	struct itr_announce_backend gated = {.ops = &gated_ops, .threads = 1};
	struct itr_tracker *tr = new_tracker(NULL);
	itr_tracker_use_backend(tr, &gated);
	char err[256];
	struct itr_udp_tracker *u = itr_udp_tracker_start(tr, "127.0.0.1", 0, err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(itr_udp_tracker_workers(u), 1);
	struct sockaddr_storage to;
	socklen_t tolen;
	int a = client_socket(AF_INET, itr_udp_tracker_port(u), &to, &tolen);
	uint8_t cid[8], req[128];
	do_connect(a, cid);
	size_t n = make_announce(req, cid, 1, IH, 100, 2, -1, 6001);
	assert_int_equal(send(a, req, n, 0), (ssize_t)n);
	for (int i = 0; i < 10000 && atomic_load(&gate_waiting) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&gate_waiting), 1); /* the only worker waits */
	/* far more than the tracker's receive buffer holds (it asks for 4 MB,
	 * doubled by the kernel; a 16-byte datagram costs ~1 KB of it) */
	enum { FLOOD = 50000 };
	uint8_t connect_req[16];
	size_t cn = make_connect(connect_req, 7);
	for (int i = 0; i < FLOOD; i++)
		assert_int_equal(send(a, connect_req, cn, 0), (ssize_t)cn);
	struct itr_udp_stats st;
	itr_udp_tracker_stats(u, &st);
	assert_true(st.socket_dropped > 0);
	assert_true(st.socket_dropped < FLOOD);
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	/* every datagram sent was either read or dropped by the kernel */
	const uint64_t sent = 1 + 1 + FLOOD;
	for (int i = 0; i < 10000; i++) {
		itr_udp_tracker_stats(u, &st);
		if (st.received + st.socket_dropped >= sent)
			break;
		usleep(1000);
	}
	assert_int_equal(st.received + st.socket_dropped, sent);
	close(a);
	itr_udp_tracker_stop(u);
	itr_tracker_free(tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_connid_expiry),
	    cmocka_unit_test(test_no_amplification),
	    cmocka_unit_test(test_udp_server),
	    cmocka_unit_test(test_udp_trusted_ip_field),
	    cmocka_unit_test(test_udp_loopback_source_refused),
	    cmocka_unit_test(test_udp_workers),
	    cmocka_unit_test(test_udp_announce_rate),
	    cmocka_unit_test(test_udp_socket_drops_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
