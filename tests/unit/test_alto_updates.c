/* test_alto_updates.c - the RFC 8895 update stream service on a real
 * listener: the itracker map document round-trips to the same vtag; a
 * stream opens with the control URI, the full resources and "started"; a
 * map change arrives as merge patches that rebuild the new resources
 * exactly; stream control removes substreams ("stopped") and ends the
 * stream; bad requests get ALTO errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "alto.h"
#include "http.h"
#include "json_merge_patch.h"
#include "netmap.h"
#include "sse.h"

static const char map_a[] = "network-map nm\n"
                            "pid east id 1 asn 64500 loc 1\n"
                            "prefix east 10.10.1.0/24 fd00:10:1::/48\n"
                            "pid west id 2 asn 64500 loc 2\n"
                            "prefix west 10.10.2.0/24\n"
                            "pid far id 3 asn 64501\n"
                            "prefix far 10.30.0.0/16\n"
                            "default-pid far\n"
                            "cost east west 7\n";
/* west grows, far goes, a new PID comes, a cost changes */
static const char map_b[] = "network-map nm\n"
                            "pid east id 1 asn 64500 loc 1\n"
                            "prefix east 10.10.1.0/24 fd00:10:1::/48\n"
                            "pid west id 2 asn 64500 loc 2\n"
                            "prefix west 10.10.2.0/24 10.10.9.0/24\n"
                            "pid new id 4 asn 64502\n"
                            "prefix new 10.40.0.0/16\n"
                            "cost east west 9\n";

static struct itr_netmap *parse(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "test", &err);
	if (!m)
		fail_msg("map: %s", err.reason);
	return m;
}

static void test_document_roundtrip(void **state)
{
	(void)state;
	const char *maps[] = {map_a, map_b};
	for (int i = 0; i < 2; i++) {
		struct itr_netmap *m = parse(maps[i]);
		json_t *doc = itr_netmap_alto_document(m);
		assert_non_null(doc);
		char *text = json_dumps(doc, JSON_COMPACT);
		struct itr_netmap_error err;
		struct itr_netmap *back = itr_netmap_parse_alto(text, strlen(text), "doc", &err);
		if (!back)
			fail_msg("re-parse: %s", err.reason);
		assert_string_equal(itr_netmap_vtag(back), itr_netmap_vtag(m));
		assert_int_equal(itr_netmap_pid_count(back), itr_netmap_pid_count(m));
		itr_netmap_unref(back);
		free(text);
		json_decref(doc);
		itr_netmap_unref(m);
	}
}

/* ---- a client on a raw socket -------------------------------------------- */

struct client {
	int fd;
	bool in_body;
	char head[4096];
	size_t head_len;
	struct itr_sse_parser sse;
	struct {
		char type[128];
		char *data;
	} events[32];
	int nevents;
};

static int on_event(const char *type, const char *data, size_t len, void *arg)
{
	struct client *c = arg;
	assert_true(c->nevents < 32);
	snprintf(c->events[c->nevents].type, sizeof(c->events[0].type), "%s", type);
	c->events[c->nevents].data = strndup(data, len);
	c->nevents++;
	return 0;
}

static int connect_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* HTTP/1.0, so the stream comes unchunked and ends with the connection. */
static void send_post(int fd, const char *path, const char *type, const char *body)
{
	char req[2048];
	int n = snprintf(req, sizeof(req),
	                 "POST %s HTTP/1.0\r\nHost: t\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 path, type, strlen(body), body);
	assert_int_equal(write(fd, req, (size_t)n), n);
}

/* Read until n events arrived (or the stream ended: returns false). */
static bool read_events(struct client *c, int n)
{
	while (c->nevents < n) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, 5000) != 1)
			fail_msg("no event within 5 s (have %d of %d)", c->nevents, n);
		char buf[8192];
		ssize_t got = read(c->fd, buf, sizeof(buf));
		if (got <= 0)
			return false;
		size_t off = 0;
		if (!c->in_body) {
			size_t take = (size_t)got < sizeof(c->head) - c->head_len - 1
			                  ? (size_t)got
			                  : sizeof(c->head) - c->head_len - 1;
			memcpy(c->head + c->head_len, buf, take);
			c->head_len += take;
			c->head[c->head_len] = '\0';
			char *end = strstr(c->head, "\r\n\r\n");
			if (!end)
				continue;
			c->in_body = true;
			off = (size_t)got - (c->head_len - (size_t)(end + 4 - c->head));
		}
		assert_int_equal(itr_sse_feed(&c->sse, buf + off, (size_t)got - off), 0);
	}
	return true;
}

static void client_free(struct client *c)
{
	for (int i = 0; i < c->nevents; i++)
		free(c->events[i].data);
	itr_sse_parser_free(&c->sse);
	close(c->fd);
}

static void open_stream(struct client *c, uint16_t port, const char *body)
{
	memset(c, 0, sizeof(*c));
	itr_sse_parser_init(&c->sse, 1 << 20, on_event, c);
	c->fd = connect_to(port);
	send_post(c->fd, "/alto/updates", "application/alto-updatestreamparams+json", body);
}

/* One request on a fresh connection; returns the status, body in out. */
static int request(uint16_t port, const char *path, const char *type, const char *body, char *out,
                   size_t outlen)
{
	int fd = connect_to(port);
	send_post(fd, path, type, body);
	size_t len = 0;
	ssize_t got;
	while (len + 1 < outlen && (got = read(fd, out + len, outlen - len - 1)) > 0)
		len += (size_t)got;
	out[len] = '\0';
	close(fd);
	int status = 0;
	sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

static void test_stream(void **state)
{
	(void)state;
	struct itr_http_limits limits = {.max_body = 1 << 16, .max_query = 4096};
	struct itr_http_server *srv = itr_http_new(&limits);
	char err[256];
	assert_int_equal(itr_alto_register(srv, NULL), 0);
	assert_int_equal(itr_http_start(srv, "127.0.0.1", 0, err, sizeof(err)), 0);
	uint16_t port = itr_http_port(srv);
	struct itr_netmap *a = parse(map_a), *b = parse(map_b);
	itr_netmap_ref(a);
	itr_netmap_publish(a);

	/* bad requests: ALTO errors, no stream */
	char resp[4096];
	assert_int_equal(
	    request(port, "/alto/updates", "application/json", "{}", resp, sizeof(resp)), 415);
	assert_int_equal(request(port, "/alto/updates", "application/alto-updatestreamparams+json",
	                         "{}", resp, sizeof(resp)),
	                 400);
	assert_non_null(strstr(resp, "E_MISSING_FIELD"));
	assert_int_equal(request(port, "/alto/updates", "application/alto-updatestreamparams+json",
	                         "{\"add\":{\"x\":{\"resource-id\":\"nope\"}}}", resp,
	                         sizeof(resp)),
	                 400);
	assert_non_null(strstr(resp, "E_INVALID_FIELD_VALUE"));
	assert_int_equal(request(port, "/alto/updates/control?stream=0123",
	                         "application/alto-updatestreamparams+json", "{\"remove\":[\"x\"]}",
	                         resp, sizeof(resp)),
	                 404);

	/* open: control URI, two full resources, started */
	struct client c;
	open_stream(&c, port,
	            "{\"add\":{\"doc\":{\"resource-id\":\"itracker-map\"},"
	            "\"cm\":{\"resource-id\":\"costmap-num-routingcost\"},"
	            "\"nm\":{\"resource-id\":\"nm\",\"incremental-changes\":false}}}");
	assert_true(read_events(&c, 5));
	assert_string_equal(c.events[0].type, "application/alto-updatestreamcontrol+json");
	json_t *ctl = json_loads(c.events[0].data, 0, NULL);
	const char *control_uri = json_string_value(json_object_get(ctl, "control-uri"));
	assert_non_null(control_uri);
	assert_string_equal(c.events[1].type, "application/json,doc");
	assert_string_equal(c.events[2].type, "application/alto-costmap+json,cm");
	assert_string_equal(c.events[3].type, "application/alto-networkmap+json,nm");
	assert_string_equal(c.events[4].type, "application/alto-updatestreamcontrol+json");
	assert_non_null(strstr(c.events[4].data, "\"started\""));
	json_t *doc = json_loads(c.events[1].data, 0, NULL);
	json_t *costs = json_loads(c.events[2].data, 0, NULL);

	/* a change: patches for the incremental substreams, the full network
	 * map for the one that asked for no incremental changes */
	itr_netmap_ref(b);
	itr_netmap_publish(b);
	assert_true(read_events(&c, 8));
	assert_string_equal(c.events[5].type, "application/merge-patch+json,doc");
	assert_string_equal(c.events[6].type, "application/merge-patch+json,cm");
	assert_string_equal(c.events[7].type, "application/alto-networkmap+json,nm");
	json_t *patch = json_loads(c.events[5].data, 0, NULL);
	assert_int_equal(itr_merge_patch_apply(&doc, patch), 0);
	json_t *want = itr_netmap_alto_document(b);
	assert_true(json_equal(doc, want));
	json_decref(patch);
	json_decref(want);
	patch = json_loads(c.events[6].data, 0, NULL);
	assert_int_equal(itr_merge_patch_apply(&costs, patch), 0);
	char *want_text = itr_alto_resource_encode(b, ITR_ALTO_RES_COSTMAP_NUM);
	want = json_loads(want_text, 0, NULL);
	assert_true(json_equal(costs, want));
	free(want_text);
	json_decref(want);
	json_decref(patch);
	assert_non_null(strstr(c.events[7].data, "10.10.9.0/24"));

	/* stream control: remove two, then the last; the stream ends */
	assert_int_equal(request(port, control_uri, "application/alto-updatestreamparams+json",
	                         "{\"remove\":[\"doc\",\"cm\"]}", resp, sizeof(resp)),
	                 204);
	assert_true(read_events(&c, 9));
	assert_string_equal(c.events[8].type, "application/alto-updatestreamcontrol+json");
	assert_non_null(strstr(c.events[8].data, "\"stopped\""));
	assert_int_equal(request(port, control_uri, "application/alto-updatestreamparams+json",
	                         "{\"remove\":[\"doc\"]}", resp, sizeof(resp)),
	                 400); /* not a substream any more */
	assert_int_equal(request(port, control_uri, "application/alto-updatestreamparams+json",
	                         "{\"remove\":[\"nm\"]}", resp, sizeof(resp)),
	                 204);
	assert_false(read_events(&c, 11)); /* stopped, then the end of the stream */
	assert_int_equal(c.nevents, 10);

	json_decref(ctl);
	json_decref(doc);
	json_decref(costs);
	client_free(&c);

	/* a client that stays connected does not keep the server from stopping */
	open_stream(&c, port,
	            "{\"add\":{\"doc\":{\"resource-id\":\"itracker-map\",\"tag\":\"x\"}}}");
	assert_true(read_events(&c, 3));
	itr_http_free(srv);
	client_free(&c);
	itr_netmap_publish(NULL);
	itr_netmap_unref(a);
	itr_netmap_unref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_document_roundtrip),
	    cmocka_unit_test(test_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
