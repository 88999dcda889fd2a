/* test_p4p_api.c - /v1/netinfo and /v1/rank on a real listener over
 * loopback, with the example network map published as the current map;
 * every error case of the request parser.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "netmap.h"
#include "p4p_api.h"

static const char MAP_TEXT[] = "network-map example-networkmap\n"
                               "tier same-pid 1\n"
                               "tier same-loc 5\n"
                               "tier same-as 10\n"
                               "tier other-as 100\n"
                               "pid a-metro1 id 1 asn 64500 loc 1\n"
                               "prefix a-metro1 10.10.1.0/24 fd00:10:1::/48\n"
                               "pid a-metro2 id 2 asn 64500 loc 2\n"
                               "prefix a-metro2 10.10.2.0/24 fd00:10:2::/48\n"
                               "pid a-metro1-dc id 3 asn 64500 loc 1\n"
                               "prefix a-metro1-dc 10.10.3.0/24 fd00:10:3::/48\n"
                               "pid b-core id 10 asn 64501 loc 10\n"
                               "prefix b-core 10.20.0.0/16 fd00:20::/32\n"
                               "pid b-edge id 11 asn 64501 loc 11\n"
                               "prefix b-edge 10.20.128.0/17 fd00:20:8000::/33\n"
                               "pid c-all id 20 asn 64502\n"
                               "prefix c-all 10.30.0.0/16 fd00:30::/32\n"
                               "cost a-metro1 a-metro2 7\n"
                               "cost a-metro2 a-metro1 7\n"
                               "cost a-metro1 b-core 50\n"
                               "cost b-core a-metro1 50\n";

/* ---- a tiny HTTP/1.1 client -------------------------------------------- */

struct reply {
	int status;
	char headers[4096];
	char *body;
	json_t *json;
};

static int connect_to(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

static void reply_free(struct reply *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* One request on a fresh connection; the body is parsed as JSON. */
static void http(const char *ip, uint16_t port, const char *method, const char *target,
                 const char *body, struct reply *r)
{
	char head[1024];
	size_t blen = body ? strlen(body) : 0;
	int fd = connect_to(ip, port);
	int hl = snprintf(head, sizeof(head),
	                  "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
	                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	                  method, target, blen);
	assert_int_equal(send(fd, head, (size_t)hl, MSG_NOSIGNAL), hl);
	if (blen)
		assert_int_equal(send(fd, body, blen, MSG_NOSIGNAL), (ssize_t)blen);
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (have + 1 == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = recv(fd, buf + have, cap - have - 1, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	buf[have] = '\0';
	memset(r, 0, sizeof(*r));
	char *end = strstr(buf, "\r\n\r\n");
	assert_non_null(end);
	assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(end - buf), buf);
	r->body = strdup(end + 4);
	free(buf);
	json_error_t jerr;
	r->json = json_loads(r->body, 0, &jerr);
	if (!r->json)
		fail_msg("not JSON (%s): %s", jerr.text, r->body);
	assert_non_null(strcasestr(r->headers, "Content-Type: application/json"));
}

/* ---- fixture ----------------------------------------------------------- */

struct fixture {
	struct itr_http_server *srv;
	struct itr_netmap *map; /* borrowed from the published one, for vtag */
	uint16_t port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct itr_netmap_error err;
	struct itr_netmap *map = itr_netmap_parse_text(MAP_TEXT, strlen(MAP_TEXT), "test", &err);
	if (!map) {
		char buf[512];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fail_msg("map: %s", buf);
	}
	f->map = map;
	itr_netmap_ref(map);
	itr_netmap_publish(map);

	struct itr_http_limits lim = {.max_body = 1 << 20, .max_query = 2048};
	struct itr_p4p_api_config cfg;
	itr_p4p_api_config_default(&cfg);
	/* the per-list external budget these expectations were written for
	 * (the per-AS one, rank.c's gateways, is tested in test_rank) */
	cfg.policy.gateways = 0;
	cfg.policy.min_list = 11;
	cfg.max_numwant = 100;
	cfg.max_peers = 500;
	f->srv = itr_http_new(&lim);
	assert_int_equal(itr_p4p_api_register(f->srv, &cfg), 0);
	char e[256];
	/* Dual stack, so callers arrive as IPv4-mapped IPv6 too. */
	if (itr_http_start(f->srv, "::", 0, e, sizeof(e)) != 0)
		fail_msg("%s", e);
	f->port = itr_http_port(f->srv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	itr_http_free(f->srv);
	itr_netmap_publish(NULL);
	itr_netmap_unref(f->map);
	free(f);
	return 0;
}

static const char *str_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- /v1/netinfo ------------------------------------------------------- */

static void expect_netinfo(struct fixture *f, const char *target, const char *ip, const char *pid,
                           json_int_t asid, json_int_t loc)
{
	struct reply r;
	http("127.0.0.1", f->port, "GET", target, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(str_at(r.json, "ip"), ip);
	assert_string_equal(str_at(r.json, "vtag"), itr_netmap_vtag(f->map));
	if (pid) {
		assert_string_equal(str_at(r.json, "pid"), pid);
		assert_int_equal(json_integer_value(json_object_get(r.json, "asid")), asid);
	} else {
		assert_true(json_is_null(json_object_get(r.json, "pid")));
		assert_true(json_is_null(json_object_get(r.json, "asid")));
	}
	if (loc)
		assert_int_equal(json_integer_value(json_object_get(r.json, "loc")), loc);
	else
		assert_true(json_is_null(json_object_get(r.json, "loc")));
	reply_free(&r);
}

static void test_netinfo(void **state)
{
	struct fixture *f = *state;
	expect_netinfo(f, "/v1/netinfo?ip=10.10.1.5", "10.10.1.5", "a-metro1", 64500, 1);
	expect_netinfo(f, "/v1/netinfo?ip=10.20.200.1", "10.20.200.1", "b-edge", 64501, 11);
	expect_netinfo(f, "/v1/netinfo?ip=10.20.1.1", "10.20.1.1", "b-core", 64501, 10);
	expect_netinfo(f, "/v1/netinfo?ip=fd00:20:8000::1", "fd00:20:8000::1", "b-edge", 64501, 11);
	/* %-escaped, and IPv4-mapped folded to IPv4; c-all has no LOC. */
	expect_netinfo(f, "/v1/netinfo?ip=%3A%3Affff%3A10.30.0.1", "10.30.0.1", "c-all", 64502, 0);
	/* Not in the map. */
	expect_netinfo(f, "/v1/netinfo?ip=192.0.2.1", "192.0.2.1", NULL, 0, 0);
	/* Default: the caller, here 127.0.0.1 reaching a dual-stack listener. */
	expect_netinfo(f, "/v1/netinfo", "127.0.0.1", NULL, 0, 0);

	struct reply r;
	http("::1", f->port, "GET", "/v1/netinfo", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(str_at(r.json, "ip"), "::1");
	reply_free(&r);
}

static void expect_error(struct reply *r, int status, const char *code, const char *field)
{
	assert_int_equal(r->status, status);
	json_t *e = json_object_get(r->json, "error");
	if (!json_is_object(e))
		fail_msg("no error object: %s", r->body);
	assert_string_equal(str_at(e, "code"), code);
	if (field)
		assert_string_equal(str_at(e, "field"), field);
	assert_true(strlen(str_at(e, "reason")) > 0);
}

static void test_netinfo_errors(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	static const char *const bad[] = {"/v1/netinfo?ip=nope", "/v1/netinfo?ip=10.10.1.5:80",
	                                  "/v1/netinfo?ip=", "/v1/netinfo?ip=10.1%00.1.1",
	                                  "/v1/netinfo?ip=%zz"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http("127.0.0.1", f->port, "GET", bad[i], NULL, &r);
		expect_error(&r, 400, "E_INVALID_FIELD_VALUE", "ip");
		reply_free(&r);
	}
	http("127.0.0.1", f->port, "POST", "/v1/netinfo", "{}", &r);
	expect_error(&r, 405, "E_METHOD_NOT_ALLOWED", NULL);
	reply_free(&r);

	/* No map published: 503, for both endpoints. */
	itr_netmap_publish(NULL);
	http("127.0.0.1", f->port, "GET", "/v1/netinfo?ip=10.10.1.5", NULL, &r);
	expect_error(&r, 503, "E_UNAVAILABLE", NULL);
	reply_free(&r);
	http("127.0.0.1", f->port, "POST", "/v1/rank", "{\"client\":\"10.10.1.5\",\"peers\":[]}",
	     &r);
	expect_error(&r, 503, "E_UNAVAILABLE", NULL);
	reply_free(&r);
	itr_netmap_ref(f->map);
	itr_netmap_publish(f->map);
}

/* ---- /v1/rank ----------------------------------------------------------- */

static void test_rank_orders_by_cost(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	http("127.0.0.1", f->port, "POST", "/v1/rank",
	     "{\"client\":\"10.10.1.5\",\"numwant\":10,\"peers\":["
	     "\"10.30.0.9:6881\",\"192.0.2.7:1\",\"10.20.5.5:51413\",\"10.10.2.8:6881\","
	     "\"[fd00:10:1::9]:6882\",\"10.10.3.3\",\"10.10.1.5\",\"10.10.1.200:6881\"],"
	     "\"ignored\":true}",
	     &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(str_at(r.json, "vtag"), itr_netmap_vtag(f->map));
	json_t *client = json_object_get(r.json, "client");
	assert_string_equal(str_at(client, "ip"), "10.10.1.5");
	assert_string_equal(str_at(client, "pid"), "a-metro1");
	json_t *peers = json_object_get(r.json, "peers");
	assert_true(json_is_array(peers));
	/* The client itself (10.10.1.5, no port = port 0) is left out; the
	 * default policy keeps all 4 locals and 2 outsiders, then tops up
	 * to min_list with the rest, so all 7 others come back, in order. */
	assert_int_equal(json_array_size(peers), 7);
	static const struct {
		const char *ip;
		int port;
		const char *pid;
		int cost;
	} want[] = {
	    {NULL, 0, "a-metro1", 1}, /* two own-PID peers; BEP 40 orders them */
	    {NULL, 0, "a-metro1", 1},           {"10.10.3.3", 0, "a-metro1-dc", 5},
	    {"10.10.2.8", 6881, "a-metro2", 7}, {"10.20.5.5", 51413, "b-core", 50},
	    {"10.30.0.9", 6881, "c-all", 100},  {"192.0.2.7", 1, NULL, 101},
	};
	for (size_t i = 0; i < 7; i++) {
		json_t *p = json_array_get(peers, i);
		if (want[i].ip) {
			assert_string_equal(str_at(p, "ip"), want[i].ip);
			assert_int_equal(json_integer_value(json_object_get(p, "port")),
			                 want[i].port);
		}
		if (want[i].pid)
			assert_string_equal(str_at(p, "pid"), want[i].pid);
		else
			assert_true(json_is_null(json_object_get(p, "pid")));
		assert_int_equal(json_integer_value(json_object_get(p, "cost")), want[i].cost);
	}
	reply_free(&r);

	/* numwant 3 with the default policy: 2 locals + 1 reserved outsider. */
	http("127.0.0.1", f->port, "POST", "/v1/rank",
	     "{\"client\":\"10.10.1.5\",\"numwant\":3,\"peers\":["
	     "\"10.30.0.9:6881\",\"10.10.2.8:6881\",\"10.10.1.7:1\",\"10.10.1.8:1\","
	     "\"10.10.3.3:1\"]}",
	     &r);
	assert_int_equal(r.status, 200);
	peers = json_object_get(r.json, "peers");
	assert_int_equal(json_array_size(peers), 3);
	assert_string_equal(str_at(json_array_get(peers, 2), "ip"), "10.30.0.9");
	reply_free(&r);

	/* An IPv6 client; numwant defaults (50). */
	http("127.0.0.1", f->port, "POST", "/v1/rank",
	     "{\"client\":\"fd00:20:8000::1\",\"peers\":[\"10.20.200.1:1\",\"[fd00:20:8000::2]:2\"]"
	     "}",
	     &r);
	assert_int_equal(r.status, 200);
	peers = json_object_get(r.json, "peers");
	assert_int_equal(json_array_size(peers), 2);
	/* Same PID, same cost: BEP 40 priority with the client decides. */
	struct itr_peer_addr c6, p4, p6;
	assert_int_equal(itr_peer_addr_parse("fd00:20:8000::1", &c6), 0);
	assert_int_equal(itr_peer_addr_parse("10.20.200.1:1", &p4), 0);
	assert_int_equal(itr_peer_addr_parse("[fd00:20:8000::2]:2", &p6), 0);
	int v4_first = itr_bep40_priority(&c6, &p4) > itr_bep40_priority(&c6, &p6);
	assert_string_equal(str_at(json_array_get(peers, v4_first ? 0 : 1), "ip"), "10.20.200.1");
	assert_string_equal(str_at(json_array_get(peers, v4_first ? 1 : 0), "ip"),
	                    "fd00:20:8000::2");
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(
		    json_integer_value(json_object_get(json_array_get(peers, i), "cost")), 1);
	assert_string_equal(str_at(json_object_get(r.json, "client"), "pid"), "b-edge");
	reply_free(&r);
}

static void test_rank_errors(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *body;
		const char *code;
		const char *field;
	} cases[] = {
	    {"{\"client\": \"10.10.1.5\",\n  \"peers\": [,]}", "E_SYNTAX", ""},
	    {"", "E_SYNTAX", ""},
	    {"[1,2]", "E_INVALID_FIELD_TYPE", ""},
	    {"{\"peers\":[]}", "E_MISSING_FIELD", "client"},
	    {"{\"client\":5,\"peers\":[]}", "E_INVALID_FIELD_TYPE", "client"},
	    {"{\"client\":\"10.10.1.999\",\"peers\":[]}", "E_INVALID_FIELD_VALUE", "client"},
	    {"{\"client\":\"10.10.1.5\"}", "E_MISSING_FIELD", "peers"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":\"10.0.0.1\"}", "E_INVALID_FIELD_TYPE", "peers"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[\"10.0.0.1\",7]}", "E_INVALID_FIELD_TYPE",
	     "peers[1]"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[\"10.0.0.1\",\"x\",\"10.0.0.2:99999\"]}",
	     "E_INVALID_FIELD_VALUE", "peers[1]"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[\"10.0.0.2:99999\"]}", "E_INVALID_FIELD_VALUE",
	     "peers[0]"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[],\"numwant\":\"5\"}", "E_INVALID_FIELD_TYPE",
	     "numwant"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[],\"numwant\":2.5}", "E_INVALID_FIELD_TYPE",
	     "numwant"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[],\"numwant\":-1}", "E_INVALID_FIELD_VALUE",
	     "numwant"},
	    {"{\"client\":\"10.10.1.5\",\"peers\":[],\"numwant\":101}", "E_INVALID_FIELD_VALUE",
	     "numwant"},
	    {"{\"client\":\"10.10.1.5\",\"client\":\"10.10.1.6\",\"peers\":[]}", "E_SYNTAX", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r;
		http("127.0.0.1", f->port, "POST", "/v1/rank", cases[i].body, &r);
		expect_error(&r, 400, cases[i].code, cases[i].field);
		reply_free(&r);
	}

	/* Syntax errors carry the position: line 2, the column of ','. */
	struct reply r;
	http("127.0.0.1", f->port, "POST", "/v1/rank",
	     "{\"client\": \"10.10.1.5\",\n  \"peers\": [,]}", &r);
	json_t *e = json_object_get(r.json, "error");
	assert_int_equal(json_integer_value(json_object_get(e, "line")), 2);
	assert_int_equal(json_integer_value(json_object_get(e, "column")), 13);
	reply_free(&r);

	/* Too many candidates. */
	size_t n = 501;
	char *big = malloc(n * 16 + 64);
	size_t at = (size_t)sprintf(big, "{\"client\":\"10.10.1.5\",\"peers\":[");
	for (size_t i = 0; i < n; i++)
		at += (size_t)sprintf(big + at, "%s\"10.10.%zu.%zu\"", i ? "," : "", i / 250,
		                      i % 250);
	sprintf(big + at, "]}");
	http("127.0.0.1", f->port, "POST", "/v1/rank", big, &r);
	expect_error(&r, 400, "E_INVALID_FIELD_VALUE", "peers");
	reply_free(&r);
	free(big);

	http("127.0.0.1", f->port, "GET", "/v1/rank", NULL, &r);
	expect_error(&r, 405, "E_METHOD_NOT_ALLOWED", NULL);
	assert_non_null(strcasestr(r.headers, "Allow: POST"));
	reply_free(&r);
}

/* jansson's error text quotes the bytes near the fault, which need not be
 * UTF-8 (here: a bad escape followed by 0xdd, found by fuzz_rank_request).
 * The reply must still be the 400 error document, not a 500 without body. */
static void test_rank_error_quoting_bad_utf8(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	http("127.0.0.1", f->port, "POST", "/v1/rank",
	     "{\"client\":\"10.10.1.5\",\"peers\":[],\"numwant\\\xdd\x82\":1}", &r);
	expect_error(&r, 400, "E_SYNTAX", "");
	const char *reason = str_at(json_object_get(r.json, "error"), "reason");
	assert_non_null(reason);
	assert_non_null(strchr(reason, '?'));
	reply_free(&r);

	/* The encoder alone, with a reason and a field cut inside a character. */
	struct itr_p4p_error err = {.code = "E_SYNTAX", .line = 1, .column = 1};
	snprintf(err.reason, sizeof(err.reason), "near '\xc3'");
	snprintf(err.field, sizeof(err.field), "peers\xe2\x82");
	size_t len;
	char *json = itr_p4p_error_json(&err, &len);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"reason\":\"near '?'\""));
	assert_non_null(strstr(json, "\"field\":\"peers??\""));
	free(json);
}

/* The parser alone, as the fuzzer drives it. */
static void test_parse_without_http(void **state)
{
	(void)state;
	struct itr_p4p_api_config cfg;
	itr_p4p_api_config_default(&cfg);
	struct itr_p4p_rank_request rr;
	struct itr_p4p_error err;
	const char *ok = "{\"client\":\"[fd00::1]:80\",\"peers\":[\"1.2.3.4:5\"],\"numwant\":0}";
	assert_int_equal(itr_p4p_parse_rank_request(ok, strlen(ok), &cfg, &rr, &err), 0);
	assert_int_equal(rr.client.family, 6);
	assert_int_equal(rr.client.port, 80);
	assert_int_equal(rr.npeers, 1);
	assert_int_equal(rr.peers[0].port, 5);
	assert_int_equal(rr.numwant, 0);
	itr_p4p_rank_request_free(&rr);

	/* Embedded NUL bytes are a syntax error, not a truncated document. */
	const char nul[] = "{\"client\":\"1.2.3.4\",\"peers\":[]}\0garbage";
	assert_int_equal(itr_p4p_parse_rank_request(nul, sizeof(nul) - 1, &cfg, &rr, &err), -1);
	assert_string_equal(err.code, "E_SYNTAX");
	assert_int_equal(itr_p4p_parse_rank_request(NULL, 0, &cfg, &rr, &err), -1);
	size_t len;
	char *json = itr_p4p_error_json(&err, &len);
	assert_non_null(json);
	assert_int_equal(strlen(json), len);
	assert_non_null(strstr(json, "\"line\":"));
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_netinfo),
	    cmocka_unit_test(test_netinfo_errors),
	    cmocka_unit_test(test_rank_orders_by_cost),
	    cmocka_unit_test(test_rank_errors),
	    cmocka_unit_test(test_rank_error_quoting_bad_utf8),
	    cmocka_unit_test(test_parse_without_http),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
