/* test_http_client.c - the one HTTP/1.1 client (http_client.c): the
 * response parser and dechunker on CRLF and on bare-LF answers (the two
 * old dechunkers disagreed on these), every cut of a valid answer read as
 * incomplete, malformed answers refused, URLs, and whole exchanges against
 * a scripted server on loopback: answers in pieces, a server that accepts
 * and never answers (the deadline), a refused connection, an answer over
 * the size limit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "http_client.h"

/* ---- the parser ---------------------------------------------------------- */

/* Parse text (a copy: chunked bodies are decoded in place); returns the
 * result and, when complete, the status and body. */
static int parse(const char *text, bool eof, int *status, char *body, size_t bodycap)
{
	size_t len = strlen(text);
	char *buf = malloc(len + 1);
	assert_non_null(buf);
	memcpy(buf, text, len + 1);
	struct itr_http_parsed p;
	int rc = itr_http_response_parse(buf, len, eof, &p);
	if (rc == 1) {
		assert_true(p.body_len < bodycap);
		memcpy(body, buf + p.body_off, p.body_len);
		body[p.body_len] = '\0';
		*status = p.status;
	}
	free(buf);
	return rc;
}

static void assert_answer(const char *text, bool eof, int want_status, const char *want_body)
{
	char body[1024];
	int status = 0;
	int rc = parse(text, eof, &status, body, sizeof(body));
	if (rc != 1)
		fail_msg("parse gave %d for: %s", rc, text);
	assert_int_equal(status, want_status);
	assert_string_equal(body, want_body);
}

static void assert_malformed(const char *text)
{
	char body[1024];
	int status;
	if (parse(text, true, &status, body, sizeof(body)) != -1)
		fail_msg("accepted: %s", text);
}

/* The same answer with CRLF line ends, with bare LF, and mixed, gives
 * the same body: the old proxy dechunker refused bare LF chunk lines, the
 * old itrackerctl one skipped any byte after a chunk's data. */
static void test_line_endings(void **state)
{
	(void)state;
	const char *forms[] = {
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n7;name=v\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n",
	    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
	    "5\nhello\n7;name=v\n, world\n0\nX-Trailer: 1\n\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\n\r\n"
	    "5\nhello\r\n7;name=v\r\n, world\n0\n\r\n",
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		assert_answer(forms[i], false, 200, "hello, world");
	assert_answer("HTTP/1.1 200 OK\nContent-Length: 3\n\nabcdef", false, 200, "abc");
	assert_answer("HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\nnot here", true, 404,
	              "not here");
	/* upper-case hex, white space before an extension, a list of codings */
	assert_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity , Chunked\r\n\r\n"
	              "A ;x\r\n0123456789\r\n0\r\n\r\n",
	              false, 200, "0123456789");
	/* an interim answer is skipped; 204 has no body */
	assert_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	              false, 200, "ok");
	assert_answer("HTTP/1.1 204 No Content\r\n\r\n", false, 204, "");
}

static void test_incomplete_until_the_end(void **state)
{
	(void)state;
	const char *answers[] = {
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	};
	for (size_t a = 0; a < sizeof(answers) / sizeof(answers[0]); a++) {
		size_t len = strlen(answers[a]);
		char body[64];
		int status;
		for (size_t cut = 0; cut < len; cut++) {
			char prefix[256];
			memcpy(prefix, answers[a], cut);
			prefix[cut] = '\0';
			if (parse(prefix, false, &status, body, sizeof(body)) != 0)
				fail_msg("answer %zu cut at %zu is not 'incomplete'", a, cut);
			/* cut off by the server closing: an error, never a short body */
			if (parse(prefix, true, &status, body, sizeof(body)) != -1)
				fail_msg("answer %zu closed at %zu was accepted", a, cut);
		}
		assert_answer(answers[a], false, 200, "hello");
	}
	/* no length: the body runs to the close */
	char body[64];
	int status;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\npart", false, &status, body, sizeof(body)),
	                 0);
	assert_answer("HTTP/1.1 200 OK\r\n\r\npart", true, 200, "part");
}

static void test_malformed(void **state)
{
	(void)state;
	assert_malformed("");
	assert_malformed("HTTP/2 200 OK\r\n\r\n");
	assert_malformed("HTTP/1.1 20 OK\r\n\r\n");
	assert_malformed("HTTP/1.1 2000 OK\r\n\r\n");
	assert_malformed("ICY 200 OK\r\n\r\n");
	/* a CR that does not end a line */
	assert_malformed("HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n");
	assert_malformed("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n");
	/* white space before the colon, obsolete line folding */
	assert_malformed("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n");
	assert_malformed("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n");
	/* lengths that cannot be trusted */
	assert_malformed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
	assert_malformed("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
	assert_malformed("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n");
	assert_malformed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx");
	/* chunks: no size, bad size, junk after the data, a size too large */
	assert_malformed(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nab\r\n0\r\n\r\n");
	assert_malformed(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\nab\r\n0\r\n\r\n");
	assert_malformed(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n0\r\n\r\n");
	assert_malformed(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n");
	assert_malformed(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\r\n0\r\n\r\n");
	assert_malformed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                 "1000000000000000\r\nab\r\n0\r\n\r\n");
	/* a header section that never ends */
	size_t big = ITR_HTTP_CLIENT_MAX_HEADER + 64;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	strcpy(huge, "HTTP/1.1 200 OK\r\nX-Big: ");
	memset(huge + strlen(huge), 'a', big - strlen(huge));
	huge[big] = '\0';
	char body[8];
	int status;
	assert_int_equal(parse(huge, false, &status, body, sizeof(body)), -1);
	free(huge);
}

static void test_urls(void **state)
{
	(void)state;
	struct itr_http_url u;
	char err[128];
	assert_int_equal(itr_http_url_parse("http://tracker.example:6969/announce?x=1", "80", &u,
	                                    err, sizeof(err)),
	                 0);
	assert_string_equal(u.scheme, "http");
	assert_string_equal(u.host, "tracker.example");
	assert_string_equal(u.port, "6969");
	assert_string_equal(u.authority, "tracker.example:6969");
	assert_string_equal(u.path, "/announce?x=1");
	assert_int_equal(itr_http_url_parse("[::1]", "80", &u, err, sizeof(err)), 0);
	assert_string_equal(u.scheme, "");
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.port, "80");
	assert_string_equal(u.path, "");
	assert_int_equal(itr_http_url_parse("udp://[2001:db8::1]:80", NULL, &u, err, sizeof(err)),
	                 0);
	assert_string_equal(u.host, "2001:db8::1");
	const char *bad[] = {"http:///x",   "http://h:0/",  "http://h:65536/",
	                     "http://h:x/", "http://[::1/", "udp://h",
	                     "://h"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (itr_http_url_parse(bad[i], NULL, &u, err, sizeof(err)) == 0)
			fail_msg("accepted %s", bad[i]);
}

/* ---- exchanges with a scripted server ------------------------------------ */

struct script {
	int listen_fd;
	uint16_t port;
	const char *const *pieces; /* sent one by one after the request; NULL ends */
	bool never_answer;         /* accept, read, then hold the connection */
	atomic_bool stop;
	char request[2048];
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct script *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	size_t len = 0;
	while (len < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
		ssize_t n = recv(fd, s->request + len, sizeof(s->request) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		s->request[len] = '\0';
	}
	if (s->never_answer) {
		while (!atomic_load(&s->stop))
			usleep(10000);
	} else {
		for (size_t i = 0; s->pieces && s->pieces[i]; i++) {
			send(fd, s->pieces[i], strlen(s->pieces[i]), MSG_NOSIGNAL);
			usleep(5000); /* separate segments: the client reads in pieces */
		}
		/* the end of the answer; then read what is left of the request
		 * until the client closes (closing with unread bytes would reset
		 * the connection under the answer) */
		shutdown(fd, SHUT_WR);
		char sink[512];
		while (recv(fd, sink, sizeof(sink), 0) > 0)
			;
	}
	close(fd);
	return NULL;
}

static void script_start(struct script *s)
{
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->listen_fd, 4), 0);
	socklen_t sl = sizeof(sin);
	getsockname(s->listen_fd, (struct sockaddr *)&sin, &sl);
	s->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void script_stop(struct script *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
}

static const struct itr_http_client_request GET = {
    .method = "GET", .host = "127.0.0.1", .target = "/x?y=1", .user_agent = "test"};

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_exchange_in_pieces(void **state)
{
	(void)state;
	static const char *const pieces[] = {"HTTP/1.1 200 OK\r\nTransfer-",
	                                     "Encoding: chunked\r\n\r\nb\r\nd8:i",
	                                     "n",
	                                     "t",
	                                     "ei1ee\r",
	                                     "\n0\r\n\r\n",
	                                     NULL};
	struct script s = {.pieces = pieces};
	script_start(&s);
	char port[8];
	snprintf(port, sizeof(port), "%u", s.port);
	struct itr_http_client_response r;
	char err[128];
	struct itr_http_client_request post = GET;
	post.method = "POST";
	post.body = "{}";
	post.body_len = 2;
	int rc =
	    itr_http_client_exchange_host("127.0.0.1", port, &post, NULL, &r, err, sizeof(err));
	if (rc != ITR_HTTP_CLIENT_OK)
		fail_msg("exchange: %d %s", rc, err);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "d8:intei1ee");
	assert_int_equal(r.local.ss_family, AF_INET);
	free(r.body);
	script_stop(&s);
	assert_non_null(strstr(s.request, "POST /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
	assert_non_null(strstr(s.request, "Content-Length: 2\r\n"));
	assert_non_null(strstr(s.request, "Connection: close\r\n"));
}

/* An upstream that accepts and never answers costs the timeout, not more. */
static void test_exchange_deadline(void **state)
{
	(void)state;
	struct script s = {.never_answer = true};
	script_start(&s);
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(s.port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct itr_http_client_limits lim = {.timeout_ms = 300};
	struct itr_http_client_response r;
	char err[128];
	int64_t start = ms_now();
	assert_int_equal(itr_http_client_exchange((struct sockaddr *)&sin, sizeof(sin), &GET, &lim,
	                                          &r, err, sizeof(err)),
	                 ITR_HTTP_CLIENT_TIMEOUT);
	int64_t took = ms_now() - start;
	assert_true(took >= 290 && took < 2000);
	assert_null(r.body);
	script_stop(&s);

	/* nobody listening: refused at once */
	assert_int_equal(itr_http_client_exchange((struct sockaddr *)&sin, sizeof(sin), &GET, &lim,
	                                          &r, err, sizeof(err)),
	                 ITR_HTTP_CLIENT_UNREACHABLE);
	assert_string_equal(err, "Connection refused");
}

static void test_exchange_limits(void **state)
{
	(void)state;
	static char big[9000];
	memset(big, 'b', sizeof(big) - 1);
	static const char *const pieces[] = {"HTTP/1.1 200 OK\r\n\r\n", big, NULL};
	struct script s = {.pieces = pieces};
	script_start(&s);
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(s.port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct itr_http_client_limits lim = {.timeout_ms = 3000, .max_response = 8192};
	struct itr_http_client_response r;
	char err[128];
	assert_int_equal(itr_http_client_exchange((struct sockaddr *)&sin, sizeof(sin), &GET, &lim,
	                                          &r, err, sizeof(err)),
	                 ITR_HTTP_CLIENT_BROKEN);
	assert_string_equal(err, "answer larger than 8192 bytes");
	script_stop(&s);

	/* a garbage answer */
	static const char *const garbage[] = {"SSH-2.0-OpenSSH\r\n", NULL};
	struct script g = {.pieces = garbage};
	script_start(&g);
	sin.sin_port = htons(g.port);
	assert_int_equal(itr_http_client_exchange((struct sockaddr *)&sin, sizeof(sin), &GET, &lim,
	                                          &r, err, sizeof(err)),
	                 ITR_HTTP_CLIENT_BROKEN);
	assert_string_equal(err, "not a valid HTTP answer");
	script_stop(&g);
}

struct collected {
	char text[256];
	size_t len;
};

static int collect(const char *bytes, size_t len, void *arg)
{
	struct collected *c = arg;
	if (len && c->len + len < sizeof(c->text)) {
		memcpy(c->text + c->len, bytes, len);
		c->len += len;
	}
	return 0;
}

/* A streamed body that arrives a byte at a time is delivered whole: one
 * byte read must not look like the callback's "stop" (it did: both were 1). */
static void test_stream_byte_by_byte(void **state)
{
	(void)state;
	static const char *const chunked[] = {
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "3",
	    "\r",
	    "\n",
	    "a",
	    "b",
	    "c",
	    "\r",
	    "\n",
	    "1\r\nd\r\n",
	    "0\r\n\r\n",
	    NULL};
	static const char *const closed[] = {"HTTP/1.1 200 OK\r\n\r\n", "x", "y", "z", NULL};
	const char *const *scripts[] = {chunked, closed};
	const char *want[] = {"abcd", "xyz"};
	for (size_t i = 0; i < 2; i++) {
		struct script s = {.pieces = scripts[i]};
		script_start(&s);
		char port[8], err[128];
		snprintf(port, sizeof(port), "%u", s.port);
		struct collected c = {.len = 0};
		int status = 0;
		int rc = itr_http_client_stream_host("127.0.0.1", port, &GET, 2000, 2000, &status,
		                                     collect, &c, err, sizeof(err));
		if (rc != ITR_HTTP_CLIENT_OK)
			fail_msg("stream %zu: %d %s", i, rc, err);
		assert_int_equal(status, 200);
		c.text[c.len] = '\0';
		assert_string_equal(c.text, want[i]);
		script_stop(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_endings),
	    cmocka_unit_test(test_incomplete_until_the_end),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_exchange_in_pieces),
	    cmocka_unit_test(test_exchange_deadline),
	    cmocka_unit_test(test_exchange_limits),
	    cmocka_unit_test(test_stream_byte_by_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
