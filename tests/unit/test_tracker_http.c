/* test_tracker_http.c - the announce and scrape query parsers (every
 * failure reason), then the real thing: the shared HTTP server on loopback
 * (IPv4 and ::1) answering /announce and /scrape over sockets, compact and
 * dictionary peers, peers6, failure bodies, `ip` / X-Forwarded-For
 * honoured only from a trusted proxy, and announces in batches for a
 * backend that overlaps round trips.
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
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "bencode.h"
#include "http.h"
#include "netmap.h"
#include "announce_backend.h"
#include "tracker.h"
#include "tracker_http.h"

/* 20 bytes with every awkward value: NUL, '&', '=', '%', '+', high bytes */
static const uint8_t HASH[20] = {0x00, '&',  '=',  '%',  '+',  0xff, 0x80, 'a',  'b',  'c',
                                 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
static const char HASH_Q[] = "%00%26%3D%25%2B%FF%80abc%01%02%03%04%05%06%07%08%09%0A";
#define PEER_ID "-TR3000-abcdefghijkl"

static const char *parse_fail(const char *query)
{
	static char why[200];
	struct itr_announce_query q;
	why[0] = '\0';
	if (itr_announce_query_parse(query, strlen(query), &q, why, sizeof(why)) == 0)
		fail_msg("query parsed but should not: %s", query);
	return why;
}

static char *query(const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "info_hash=%s&peer_id=" PEER_ID "&port=6881%s", HASH_Q, extra);
	return buf;
}

static void test_announce_parse_ok(void **state)
{
	(void)state;
	struct itr_announce_query q;
	char why[200];
	const char *s = query("&uploaded=1&downloaded=22&left=333&event=started&numwant=40"
	                      "&compact=0&no_peer_id=1&key=abc&ip=10.0.0.1&trackerid=");
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), 0);
	assert_memory_equal(q.info_hash, HASH, 20);
	assert_memory_equal(q.peer_id, PEER_ID, 20);
	assert_int_equal(q.port, 6881);
	assert_int_equal(q.uploaded, 1);
	assert_int_equal(q.downloaded, 22);
	assert_int_equal(q.left, 333);
	assert_int_equal(q.event, ITR_EVENT_STARTED);
	assert_int_equal(q.numwant, 40);
	assert_false(q.compact);
	assert_true(q.no_peer_id);
	assert_true(q.has_ip);
	assert_string_equal(q.ip, "10.0.0.1");

	/* defaults: compact, numwant -1, left unknown (not a seeder) */
	s = query("");
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), 0);
	assert_true(q.compact);
	assert_int_equal(q.numwant, -1);
	assert_int_equal(q.left, UINT64_MAX);
	assert_int_equal(q.event, ITR_EVENT_NONE);

	s = query("&event=completed&compact=1&left=0");
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), 0);
	assert_int_equal(q.event, ITR_EVENT_COMPLETED);
	assert_int_equal(q.left, 0);
	s = query("&event=stopped");
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), 0);
	assert_int_equal(q.event, ITR_EVENT_STOPPED);
	s = query("&event=&numwant=99999999999999999999");
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), -1);
	s = query("&event=paused&numwant=18446744073709551615");
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), 0);
	assert_int_equal(q.numwant, INT64_MAX);

	/* An unescaped '+' in a binary value is the byte '+', as the shared
	 * query decoder (http.c) reads it, not a space: the info_hash must be
	 * the same whichever handler reads the query. */
	s = "info_hash=%00%26%3D%25+%FF%80abc%01%02%03%04%05%06%07%08%09%0A&peer_id=" PEER_ID
	    "&port=6881&key=a+b";
	assert_int_equal(itr_announce_query_parse(s, strlen(s), &q, why, sizeof(why)), 0);
	assert_memory_equal(q.info_hash, HASH, 20);
	uint8_t shared[20];
	assert_int_equal(itr_http_query_get(s, "info_hash", shared, sizeof(shared)), 20);
	assert_memory_equal(q.info_hash, shared, 20);
	assert_string_equal(q.key, "a+b");
}

static void test_announce_failure_reasons(void **state)
{
	(void)state;
	assert_string_equal(parse_fail(""), "missing info_hash");
	assert_string_equal(parse_fail("peer_id=" PEER_ID "&port=1"), "missing info_hash");
	assert_string_equal(parse_fail("info_hash=abc&peer_id=" PEER_ID "&port=1"),
	                    "info_hash is not 20 bytes (got 3)");
	assert_string_equal(parse_fail("info_hash=aaaaaaaaaaaaaaaaaaaaa&port=1"),
	                    "info_hash is not 20 bytes (got 21)");
	char two[1200];
	snprintf(two, sizeof(two), "%s&info_hash=%s", query(""), HASH_Q);
	assert_string_equal(parse_fail(two), "info_hash given more than once");
	char buf[256];
	snprintf(buf, sizeof(buf), "info_hash=%s&port=1", HASH_Q);
	assert_string_equal(parse_fail(buf), "missing peer_id");
	snprintf(buf, sizeof(buf), "info_hash=%s&port=1&peer_id=short", HASH_Q);
	assert_string_equal(parse_fail(buf), "peer_id is not 20 bytes (got 5)");
	snprintf(buf, sizeof(buf), "info_hash=%s&peer_id=" PEER_ID, HASH_Q);
	assert_string_equal(parse_fail(buf), "missing port");
	const char *bad_port = "bad port: must be a number from 1 to 65535";
	snprintf(buf, sizeof(buf), "info_hash=%s&peer_id=" PEER_ID "&port=0", HASH_Q);
	assert_string_equal(parse_fail(buf), bad_port);
	snprintf(buf, sizeof(buf), "info_hash=%s&peer_id=" PEER_ID "&port=65536", HASH_Q);
	assert_string_equal(parse_fail(buf), bad_port);
	snprintf(buf, sizeof(buf), "info_hash=%s&peer_id=" PEER_ID "&port=-1", HASH_Q);
	assert_string_equal(parse_fail(buf), bad_port);
	snprintf(buf, sizeof(buf), "info_hash=%s&peer_id=" PEER_ID "&port=", HASH_Q);
	assert_string_equal(parse_fail(buf), bad_port);
	assert_string_equal(parse_fail(query("&uploaded=x")),
	                    "bad uploaded: must be a non-negative integer");
	assert_string_equal(parse_fail(query("&downloaded=-5")),
	                    "bad downloaded: must be a non-negative integer");
	assert_string_equal(parse_fail(query("&left=1.5")),
	                    "bad left: must be a non-negative integer");
	assert_string_equal(parse_fail(query("&left=18446744073709551616")),
	                    "bad left: must be a non-negative integer");
	assert_string_equal(parse_fail(query("&event=begun")),
	                    "bad event: must be started, completed, stopped or empty");
	assert_string_equal(parse_fail(query("&numwant=lots")),
	                    "bad numwant: must be a non-negative integer");
	assert_string_equal(parse_fail(query("&compact=yes")), "bad compact: must be 0 or 1");
	assert_string_equal(parse_fail(query("&ip=0123456789012345678901234567890123456789"
	                                     "012345678901234567890123456789")),
	                    "bad ip: too long");
	assert_string_equal(parse_fail(query("&key=%G1")), "malformed query: broken %-escape");
	assert_string_equal(parse_fail(query("&key=%4")), "malformed query: broken %-escape");
	assert_string_equal(parse_fail("info_hash=%"), "malformed query: broken %-escape");
}

static void test_scrape_parse(void **state)
{
	(void)state;
	uint8_t hashes[3][20];
	char why[200];
	char buf[512];
	snprintf(buf, sizeof(buf), "info_hash=%s&x=1&info_hash=bbbbbbbbbbbbbbbbbbbb", HASH_Q);
	assert_int_equal(itr_scrape_query_parse(buf, strlen(buf), hashes, 3, why, sizeof(why)), 2);
	assert_memory_equal(hashes[0], HASH, 20);
	assert_memory_equal(hashes[1], "bbbbbbbbbbbbbbbbbbbb", 20);

	assert_int_equal(itr_scrape_query_parse("", 0, hashes, 3, why, sizeof(why)), -1);
	assert_string_equal(why, "missing info_hash (this tracker does not serve full scrapes)");
	assert_int_equal(itr_scrape_query_parse("info_hash=x", 11, hashes, 3, why, sizeof(why)),
	                 -1);
	assert_string_equal(why, "info_hash is not 20 bytes (got 1)");
	snprintf(buf, sizeof(buf), "info_hash=%s&info_hash=%s&info_hash=%s&info_hash=%s", HASH_Q,
	         HASH_Q, HASH_Q, HASH_Q);
	assert_int_equal(itr_scrape_query_parse(buf, strlen(buf), hashes, 3, why, sizeof(why)), -1);
	assert_string_equal(why, "too many info_hash values (at most 3 per scrape)");
	assert_int_equal(itr_scrape_query_parse("info_hash=%zz", 13, hashes, 3, why, sizeof(why)),
	                 -1);
	assert_string_equal(why, "malformed query: broken %-escape");
}

/* ---- over the wire ------------------------------------------------------- */

struct fixture {
	struct itr_tracker *tr;
	struct itr_http_server *srv;
	uint16_t port;
	int family;
};

/* Loopback peers on: every test client is on loopback. */
static struct fixture start_ip(const char *addr, const char *trusted, bool accept_ip_param)
{
	struct fixture f = {.family = strchr(addr, ':') ? AF_INET6 : AF_INET};
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.trusted_proxies = trusted;
	cfg.accept_ip_param = accept_ip_param;
	cfg.loopback_peers = true;
	char err[256];
	f.tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	if (!f.tr)
		fail_msg("tracker: %s", err);
	struct itr_http_limits limits = {
	    .max_body = 4096, .max_query = 8192, .max_connections = 64, .connection_timeout_s = 10};
	f.srv = itr_http_new(&limits);
	assert_non_null(f.srv);
	assert_int_equal(itr_tracker_http_register(f.srv, f.tr), 0);
	if (itr_http_start(f.srv, addr, 0, err, sizeof(err)) < 0)
		fail_msg("http start: %s", err);
	f.port = itr_http_port(f.srv);
	return f;
}

static struct fixture start(const char *addr, const char *trusted)
{
	return start_ip(addr, trusted, false);
}

static void stop(struct fixture *f)
{
	itr_http_free(f->srv);
	itr_tracker_free(f->tr);
}

/* A GET sent over a fresh connection, its answer not read yet. */
static int http_send(const struct fixture *f, const char *target, const char *headers)
{
	int fd = socket(f->family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (f->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(f->port);
		inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(f->port);
		inet_pton(AF_INET6, "::1", &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	char req[4096];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n%s\r\n", target,
	                 headers ? headers : "");
	assert_int_equal(write(fd, req, (size_t)n), n);
	return fd;
}

/* The answer's body (malloc'ed), read to the end; fd closed. */
static char *http_body(int fd, size_t *body_len)
{
	size_t cap = 65536, got = 0;
	char *resp = malloc(cap);
	ssize_t r;
	while ((r = read(fd, resp + got, cap - got - 1)) > 0)
		got += (size_t)r;
	close(fd);
	resp[got] = '\0';
	assert_non_null(strstr(resp, "HTTP/1.1 200"));
	char *body = strstr(resp, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	*body_len = got - (size_t)(body - resp);
	char *out = malloc(*body_len + 1);
	memcpy(out, body, *body_len);
	out[*body_len] = '\0';
	free(resp);
	return out;
}

/* One GET over a fresh connection; returns the body (malloc'ed). */
static char *http_get(const struct fixture *f, const char *target, const char *headers,
                      size_t *body_len)
{
	return http_body(http_send(f, target, headers), body_len);
}

static struct itr_bval get_dict(const char *body, size_t len)
{
	struct itr_bval root;
	if (!itr_bdec_valid((const uint8_t *)body, len))
		fail_msg("not bencoded: %.*s", (int)len, body);
	itr_bdec((const uint8_t *)body, len, &root);
	assert_int_equal(root.type, ITR_BVAL_DICT);
	return root;
}

static int64_t get_int(const struct itr_bval *d, const char *key)
{
	struct itr_bval v;
	if (itr_bdec_dict_get(d, key, &v) < 0 || v.type != ITR_BVAL_INT)
		fail_msg("no integer %s", key);
	return v.num;
}

static struct itr_bval get_key(const struct itr_bval *d, const char *key)
{
	struct itr_bval v;
	if (itr_bdec_dict_get(d, key, &v) < 0)
		fail_msg("no key %s", key);
	return v;
}

static char *announce_target(uint16_t port, const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "/announce?info_hash=%s&peer_id=" PEER_ID "&port=%u&left=10%s",
	         HASH_Q, port, extra);
	return buf;
}

static void test_http_announce_v4(void **state)
{
	(void)state;
	itr_netmap_publish(NULL);
	struct fixture f = start("127.0.0.1", NULL);
	size_t len;
	char *body = http_get(&f, announce_target(7001, "&event=started"), NULL, &len);
	struct itr_bval d = get_dict(body, len);
	assert_int_equal(get_int(&d, "interval"), 1800);
	assert_int_equal(get_int(&d, "min interval"), 900);
	assert_int_equal(get_int(&d, "incomplete"), 1);
	assert_int_equal(get_int(&d, "complete"), 0);
	assert_int_equal(get_key(&d, "peers").len, 0);
	free(body);

	/* X-Forwarded-For from an untrusted source is ignored */
	body = http_get(&f, announce_target(7002, "&compact=1"), "X-Forwarded-For: 10.9.9.9\r\n",
	                &len);
	d = get_dict(body, len);
	assert_int_equal(get_int(&d, "incomplete"), 2);
	struct itr_bval peers = get_key(&d, "peers");
	assert_int_equal(peers.type, ITR_BVAL_STR);
	assert_int_equal(peers.len, 6);
	assert_memory_equal(peers.data, "\x7f\x00\x00\x01\x1b\x59", 6); /* 127.0.0.1:7001 */
	free(body);

	/* dictionary form (no peer ids stored: the no_peer_id form) */
	body = http_get(&f, announce_target(7003, "&compact=0&numwant=10"), NULL, &len);
	d = get_dict(body, len);
	peers = get_key(&d, "peers");
	assert_int_equal(peers.type, ITR_BVAL_LIST);
	size_t pos = 0, count = 0;
	struct itr_bval item;
	while (itr_bdec_list_next(&peers, &pos, &item)) {
		struct itr_bval ip = get_key(&item, "ip");
		assert_int_equal(ip.len, 9);
		assert_memory_equal(ip.data, "127.0.0.1", 9);
		int64_t port = get_int(&item, "port");
		assert_true(port == 7001 || port == 7002);
		count++;
	}
	assert_int_equal(count, 2);
	free(body);

	/* a seeder (left=0) completing */
	body = http_get(&f,
	                "/announce?info_hash="
	                "%00%26%3D%25%2B%FF%80abc%01%02%03%04%05%06%07%08%09%0A"
	                "&peer_id=" PEER_ID "&port=7001&left=0&event=completed",
	                NULL, &len);
	d = get_dict(body, len);
	assert_int_equal(get_int(&d, "complete"), 1);
	assert_int_equal(get_int(&d, "incomplete"), 2);
	assert_int_equal(get_int(&d, "downloaded"), 1);
	assert_int_equal(get_key(&d, "peers").len, 12); /* the two leechers */
	free(body);

	/* a failure names what was wrong */
	body = http_get(&f, "/announce?peer_id=" PEER_ID "&port=1", NULL, &len);
	d = get_dict(body, len);
	struct itr_bval reason = get_key(&d, "failure reason");
	assert_int_equal(reason.len, strlen("missing info_hash"));
	assert_memory_equal(reason.data, "missing info_hash", reason.len);
	free(body);

	/* scrape: known and unknown hashes, sorted keys */
	char target[256];
	snprintf(target, sizeof(target), "/scrape?info_hash=%s&info_hash=zzzzzzzzzzzzzzzzzzzz",
	         HASH_Q);
	body = http_get(&f, target, NULL, &len);
	d = get_dict(body, len);
	struct itr_bval files = get_key(&d, "files");
	struct itr_bval entry;
	/* HASH starts with NUL, so look it up by iterating */
	pos = 0;
	struct itr_bval k;
	size_t seen = 0;
	while (itr_bdec_dict_next(&files, &pos, &k, &entry)) {
		assert_int_equal(k.len, 20);
		if (memcmp(k.data, HASH, 20) == 0) {
			assert_int_equal(get_int(&entry, "complete"), 1);
			assert_int_equal(get_int(&entry, "incomplete"), 2);
			assert_int_equal(get_int(&entry, "downloaded"), 1);
		} else {
			assert_memory_equal(k.data, "zzzzzzzzzzzzzzzzzzzz", 20);
			assert_int_equal(get_int(&entry, "complete"), 0);
		}
		seen++;
	}
	assert_int_equal(seen, 2);
	free(body);

	body = http_get(&f, "/scrape", NULL, &len);
	d = get_dict(body, len);
	get_key(&d, "failure reason");
	free(body);

	struct itr_tracker_stats st;
	itr_tracker_stats(f.tr, &st);
	assert_int_equal(st.rejected, 2);
	stop(&f);
}

static void test_http_trusted_proxy(void **state)
{
	(void)state;
	struct fixture f = start_ip("127.0.0.1", "127.0.0.0/8", true);
	size_t len;
	/* the proxy names the client with ip=, or X-Forwarded-For (rightmost) */
	char *body = http_get(&f, announce_target(7001, "&ip=10.10.1.5"), NULL, &len);
	free(body);
	body = http_get(&f, announce_target(7002, ""),
	                "X-Forwarded-For: 203.0.113.9, 10.10.1.6\r\n", &len);
	struct itr_bval d = get_dict(body, len);
	struct itr_bval peers = get_key(&d, "peers");
	assert_int_equal(peers.len, 6);
	assert_memory_equal(peers.data, "\x0a\x0a\x01\x05\x1b\x59", 6);
	free(body);
	body = http_get(&f, announce_target(7003, ""), NULL, &len);
	d = get_dict(body, len);
	peers = get_key(&d, "peers");
	assert_int_equal(peers.len, 12);
	bool saw_xff = false;
	for (size_t i = 0; i < 2; i++)
		if (memcmp(peers.data + 6 * i, "\x0a\x0a\x01\x06\x1b\x5a", 6) == 0)
			saw_xff = true;
	assert_true(saw_xff);
	free(body);
	body = http_get(&f, announce_target(7004, "&ip=not-an-ip"), NULL, &len);
	d = get_dict(body, len);
	struct itr_bval reason = get_key(&d, "failure reason");
	assert_memory_equal(reason.data, "bad ip", 6);
	free(body);
	stop(&f);
}

/* The peer list a later announce (port 7999, no ip=) sees after one
 * announce with the given extra query and headers; NULL: the first answer
 * must be a failure containing fail_text. */
static void trust_case(const char *trusted, bool accept, const char *extra, const char *headers,
                       const char *expect_peer, const char *fail_text)
{
	struct fixture f = start_ip("127.0.0.1", trusted, accept);
	size_t len;
	char *body = http_get(&f, announce_target(7001, extra), headers, &len);
	struct itr_bval d = get_dict(body, len);
	if (fail_text) {
		struct itr_bval reason = get_key(&d, "failure reason");
		if (!memmem(reason.data, reason.len, fail_text, strlen(fail_text)))
			fail_msg("expected '%s' in '%.*s'", fail_text, (int)reason.len,
			         (const char *)reason.data);
	}
	free(body);
	body = http_get(&f, announce_target(7999, ""), NULL, &len);
	d = get_dict(body, len);
	struct itr_bval peers = get_key(&d, "peers");
	if (expect_peer) {
		assert_int_equal(peers.len, 6);
		assert_memory_equal(peers.data, expect_peer, 6);
	} else {
		assert_int_equal(peers.len, 0);
	}
	free(body);
	stop(&f);
}

static void test_http_trust_model(void **state)
{
	(void)state;
	/* the proxy's X-Forwarded-For wins over the client's ip= */
	trust_case("127.0.0.1", true, "&ip=6.6.6.6", "X-Forwarded-For: 10.10.1.6\r\n",
	           "\x0a\x0a\x01\x06\x1b\x59", NULL);
	/* ip= from a trusted proxy is ignored unless the operator opted in */
	trust_case("127.0.0.1", false, "&ip=6.6.6.6", NULL, "\x7f\x00\x00\x01\x1b\x59", NULL);
	/* ip= and X-Forwarded-For from an untrusted source: both ignored */
	trust_case(NULL, true, "&ip=6.6.6.6", "X-Forwarded-For: 6.6.6.7\r\n",
	           "\x7f\x00\x00\x01\x1b\x59", NULL);
	/* a trusted proxy given as IPv4-mapped IPv6 matches */
	trust_case("::ffff:127.0.0.1", false, "", "X-Forwarded-For: 10.10.1.6\r\n",
	           "\x0a\x0a\x01\x06\x1b\x59", NULL);
	/* addresses no peer can have: refused, not stored, not handed out */
	const char *bogus[] = {"0.0.0.0",     "255.255.255.255", "224.0.0.1", "ff02::1",
	                       "169.254.1.1", "fe80::1",         "192.0.2.1", "198.51.100.7",
	                       "203.0.113.9", "2001:db8::1",     "::"};
	for (size_t i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++) {
		char q[80], h[80];
		snprintf(q, sizeof(q), "&ip=%s", bogus[i]);
		trust_case("127.0.0.1", true, q, NULL, NULL, "cannot be a peer");
		snprintf(h, sizeof(h), "X-Forwarded-For: %s\r\n", bogus[i]);
		trust_case("127.0.0.1", false, "", h, NULL, "cannot be a peer");
	}
}

/* Without loopback peers configured, a loopback client is not stored. */
static void test_http_loopback_refused(void **state)
{
	(void)state;
	struct fixture f = start("127.0.0.1", NULL);
	stop(&f);
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	char err[256];
	f.tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	struct itr_http_limits limits = {
	    .max_body = 4096, .max_query = 8192, .max_connections = 64, .connection_timeout_s = 10};
	f.srv = itr_http_new(&limits);
	assert_int_equal(itr_tracker_http_register(f.srv, f.tr), 0);
	assert_int_equal(itr_http_start(f.srv, "127.0.0.1", 0, err, sizeof(err)), 0);
	f.port = itr_http_port(f.srv);
	size_t len;
	char *body = http_get(&f, announce_target(7001, ""), NULL, &len);
	struct itr_bval d = get_dict(body, len);
	struct itr_bval reason = get_key(&d, "failure reason");
	assert_non_null(memmem(reason.data, reason.len, "loopback", 8));
	free(body);
	struct itr_tracker_stats st;
	itr_tracker_stats(f.tr, &st);
	assert_int_equal(st.store.peers_v4, 0);
	stop(&f);
}

static void test_http_announce_v6(void **state)
{
	(void)state;
	struct fixture f = start("::1", NULL);
	size_t len;
	free(http_get(&f, announce_target(7001, ""), NULL, &len));
	char *body = http_get(&f, announce_target(7002, ""), NULL, &len);
	struct itr_bval d = get_dict(body, len);
	assert_int_equal(get_key(&d, "peers").len, 0);
	struct itr_bval peers6 = get_key(&d, "peers6");
	assert_int_equal(peers6.len, 18);
	static const uint8_t expect[18] = {[15] = 1, [16] = 0x1b, [17] = 0x59}; /* [::1]:7001 */
	assert_memory_equal(peers6.data, expect, 18);
	free(body);
	body = http_get(&f, announce_target(7003, "&compact=0"), NULL, &len);
	d = get_dict(body, len);
	struct itr_bval list = get_key(&d, "peers"), item;
	size_t pos = 0, n = 0;
	while (itr_bdec_list_next(&list, &pos, &item)) {
		struct itr_bval ip = get_key(&item, "ip");
		assert_int_equal(ip.len, 3);
		assert_memory_equal(ip.data, "::1", 3);
		n++;
	}
	assert_int_equal(n, 2);
	free(body);
	stop(&f);
}

/* ---- announces in batches ------------------------------------------------ */

/* A backend that overlaps round trips (as the Redis store): the local
 * store's announces, a batch at a time, the first batch held up as a slow
 * round trip would. */
static struct itr_announce_backend *batch_inner;
static size_t batch_sizes[8], batch_count;

static int batch_announce(void *impl, const struct itr_backend_request *req,
                          struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
                          size_t want)
{
	(void)impl;
	return itr_backend_announce(batch_inner, req, reply, peers, want);
}

static int batch_announce_many(void *impl, const struct itr_backend_request *reqs,
                               struct itr_backend_reply *replies, struct itr_ranked_peer **peers,
                               const size_t *want, size_t n)
{
	if (batch_count < 8)
		batch_sizes[batch_count] = n;
	if (batch_count++ == 0)
		usleep(300 * 1000);
	for (size_t i = 0; i < n; i++)
		batch_announce(impl, &reqs[i], &replies[i], peers[i], want[i]);
	return 0;
}

static int batch_scrape(void *impl, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                        struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	(void)impl;
	return itr_backend_scrape(batch_inner, hashes, n, counts, failure, failurelen);
}

static void batch_stats(void *impl, struct itr_backend_stats *st)
{
	(void)impl;
	itr_backend_stats(batch_inner, st);
}

static const struct itr_announce_backend_ops batch_ops = {
    .announce = batch_announce,
    .announce_many = batch_announce_many,
    .scrape = batch_scrape,
    .stats = batch_stats,
};

/* Announces that queue while the one runner is busy reach the backend as
 * one batch; each client gets its own answer, and a refused one its own
 * failure without taking a place in the batch. */
static void test_http_announce_batches(void **state)
{
	(void)state;
	itr_netmap_publish(NULL);
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.loopback_peers = true;
	char err[256];
	struct fixture f = {.family = AF_INET};
	f.tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	assert_non_null(f.tr);
	batch_inner = itr_tracker_backend(f.tr);
	struct itr_announce_backend be = {.ops = &batch_ops,
	                                  .threads = 4,
	                                  .batch_threads = 1,
	                                  .http_batch_runners = 1,
	                                  .max_scrape = 8};
	itr_tracker_use_backend(f.tr, &be);
	struct itr_http_limits limits = {.max_body = 4096,
	                                 .max_query = 8192,
	                                 .max_connections = 64,
	                                 .connection_timeout_s = 10,
	                                 .workers = 4,
	                                 .queue_per_address = 8};
	f.srv = itr_http_new(&limits);
	assert_int_equal(itr_tracker_http_register(f.srv, f.tr), 0);
	assert_int_equal(itr_http_start(f.srv, "127.0.0.1", 0, err, sizeof(err)), 0);
	f.port = itr_http_port(f.srv);

	int first = http_send(&f, announce_target(7001, "&event=started"), NULL);
	usleep(100 * 1000); /* the runner holds it */
	int second = http_send(&f, announce_target(7002, ""), NULL);
	char bad[512];
	snprintf(bad, sizeof(bad), "/announce?info_hash=%s&peer_id=" PEER_ID "&left=1", HASH_Q);
	int refused = http_send(&f, bad, NULL);
	int third = http_send(&f, announce_target(7003, "&compact=0"), NULL);
	size_t len;
	char *body = http_body(first, &len);
	struct itr_bval d = get_dict(body, len);
	assert_int_equal(get_int(&d, "incomplete"), 1);
	free(body);
	body = http_body(second, &len);
	d = get_dict(body, len);
	assert_int_equal(get_int(&d, "incomplete"), 2);
	struct itr_bval peers = get_key(&d, "peers");
	assert_int_equal(peers.type, ITR_BVAL_STR);
	assert_memory_equal(peers.data, "\x7f\x00\x00\x01\x1b\x59", 6); /* 127.0.0.1:7001 */
	free(body);
	body = http_body(refused, &len);
	d = get_dict(body, len);
	struct itr_bval why = get_key(&d, "failure reason");
	assert_int_equal(why.len, strlen("missing port"));
	assert_memory_equal(why.data, "missing port", why.len);
	free(body);
	body = http_body(third, &len);
	d = get_dict(body, len);
	assert_int_equal(get_int(&d, "incomplete"), 3);
	assert_int_equal(get_key(&d, "peers").type, ITR_BVAL_LIST); /* its own compact=0 */
	free(body);
	assert_int_equal(batch_count, 2);
	assert_int_equal(batch_sizes[0], 1);
	assert_int_equal(batch_sizes[1], 2);
	itr_http_free(f.srv);
	itr_tracker_free(f.tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_announce_parse_ok),
	    cmocka_unit_test(test_announce_failure_reasons),
	    cmocka_unit_test(test_scrape_parse),
	    cmocka_unit_test(test_http_announce_v4),
	    cmocka_unit_test(test_http_trusted_proxy),
	    cmocka_unit_test(test_http_trust_model),
	    cmocka_unit_test(test_http_loopback_refused),
	    cmocka_unit_test(test_http_announce_v6),
	    cmocka_unit_test(test_http_announce_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
