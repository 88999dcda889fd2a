/* test_http_lane.c - the HTTP fast lane's reader and writer (http_lane.c):
 * which requests the lane answers itself (one whole closing GET in its
 * plain form) and which it must leave to libmicrohttpd, the strings it
 * cuts, and the head of its answers. The lane in a running server is
 * tested in test_http.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http_lane.h"

static bool parse(const char *text, size_t max_target, struct itr_lane_request *out, char *buf,
                  size_t cap)
{
	size_t len = strlen(text);
	assert_true(len < cap);
	memcpy(buf, text, len + 1);
	return itr_lane_parse(buf, len, max_target, out);
}

static void test_lane_takes(void **state)
{
	(void)state;
	char buf[1024];
	struct itr_lane_request r;
	assert_true(parse("GET /announce?info_hash=%41&port=1 HTTP/1.0\r\nHost: t\r\n\r\n", 0, &r,
	                  buf, sizeof(buf)));
	assert_string_equal(r.path, "/announce");
	assert_string_equal(r.query, "info_hash=%41&port=1");
	assert_null(r.forwarded_for);
	assert_null(r.forwarded);
	/* HTTP/1.0 needs no Host; HTTP/1.1 asks to close, any case */
	assert_true(parse("GET /scrape HTTP/1.0\r\n\r\n", 0, &r, buf, sizeof(buf)));
	assert_string_equal(r.path, "/scrape");
	assert_string_equal(r.query, "");
	assert_true(parse("GET /a?b HTTP/1.1\r\nhost: t\r\nConnection: TE, Close\r\n\r\n", 0, &r,
	                  buf, sizeof(buf)));
	assert_string_equal(r.query, "b");
	/* the proxy headers, trimmed of spaces */
	assert_true(parse("GET /a HTTP/1.0\r\nX-Forwarded-For:  10.0.0.1, 10.0.0.2 \r\n"
	                  "Forwarded: for=192.0.2.1\r\nUser-Agent: x/1\r\n\r\n",
	                  0, &r, buf, sizeof(buf)));
	assert_string_equal(r.forwarded_for, "10.0.0.1, 10.0.0.2");
	assert_string_equal(r.forwarded, "for=192.0.2.1");
	/* the target at its limit */
	assert_true(parse("GET /abcd HTTP/1.0\r\n\r\n", 5, &r, buf, sizeof(buf)));
}

static void test_lane_leaves(void **state)
{
	(void)state;
	static const char *const others[] = {
	    "",
	    "GET",
	    "GET / HTTP/1.0\r\n",            /* not all there */
	    "GET / HTTP/1.0\r\nHost: t\r\n", /* no blank line yet */
	    "POST /a HTTP/1.0\r\n\r\n",
	    "HEAD /a HTTP/1.0\r\n\r\n",
	    "get /a HTTP/1.0\r\n\r\n",
	    "GET  /a HTTP/1.0\r\n\r\n",
	    "GET a HTTP/1.0\r\n\r\n",
	    "GET /a HTTP/2.0\r\n\r\n",
	    "GET /a HTTP/1.0\n\n",
	    "GET /a HTTP/1.0\r\nHost: t\n\r\n",             /* bare LF */
	    "GET /a\tb HTTP/1.0\r\n\r\n",                   /* control in target */
	    "GET /a HTTP/1.1\r\nHost: t\r\n\r\n",           /* keep-alive by default */
	    "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", /* 1.1 without Host */
	    "GET /a HTTP/1.1\r\nHost: t\r\nHost: u\r\nConnection: close\r\n\r\n",
	    "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	    "GET /a HTTP/1.0\r\nConnection: close, upgrade\r\nUpgrade: h2c\r\n\r\n",
	    "GET /a HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
	    "GET /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    "GET /a HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
	    "GET /a HTTP/1.0\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n",
	    "GET /a HTTP/1.0\r\nForwarded: for=a\r\nforwarded: for=b\r\n\r\n",
	    "GET /a HTTP/1.0\r\n folded: x\r\n\r\n",
	    "GET /a HTTP/1.0\r\nBad Name: x\r\n\r\n",
	    "GET /a HTTP/1.0\r\n: x\r\n\r\n",
	    "GET /a HTTP/1.0\r\nNoColon\r\n\r\n",
	    "GET /a HTTP/1.0\r\nX: a\x01b\r\n\r\n",
	    "GET /a HTTP/1.0\r\nX: caf\xc3\xa9\r\n\r\n",
	    "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n", /* pipelined */
	    "GET /a HTTP/1.0\r\n\r\nx",                       /* bytes after */
	};
	char buf[1024];
	struct itr_lane_request r;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (parse(others[i], 0, &r, buf, sizeof(buf)))
			fail_msg("the lane took request %zu: %s", i, others[i]);
	/* over the target limit: libmicrohttpd answers 414 */
	assert_false(parse("GET /abcde HTTP/1.0\r\n\r\n", 5, &r, buf, sizeof(buf)));
	/* a NUL inside is not a target character */
	char nul[] = "GET /a\0b HTTP/1.0\r\n\r\n";
	assert_false(itr_lane_parse(nul, sizeof(nul) - 1, 0, &r));
}

static void test_lane_head(void **state)
{
	(void)state;
	char head[256];
	size_t n = itr_lane_head(head, sizeof(head), 200, "text/plain", 92);
	assert_int_equal(n, strlen(head));
	assert_string_equal(head, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 92\r\n"
	                          "Content-Type: text/plain\r\n\r\n");
	n = itr_lane_head(head, sizeof(head), 503, NULL, 0);
	assert_string_equal(head, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
	                          "Content-Length: 0\r\nRetry-After: 1\r\n\r\n");
	assert_int_equal(itr_lane_head(head, 20, 200, "text/plain", 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lane_takes),
	    cmocka_unit_test(test_lane_leaves),
	    cmocka_unit_test(test_lane_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
