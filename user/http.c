/* http.c - the one HTTP listener every service shares, on libmicrohttpd.
 *
 * Routes are exact paths registered before start. Each request walks:
 * raw URI (kept from MHD's URI log hook, for the raw query string and the
 * length limit) -> route lookup (404 / 405 with Allow) -> body accumulation
 * up to limits.max_body (413 past it) -> handler -> response. Limits are
 * enforced here once, so handlers only ever see requests that fit them.
 *
 * Threading: one MHD polling thread on epoll by default (measured fastest on
 * one pinned core, see tools/bench/bench_http.sh); limits.threads > 1 gives
 * an MHD thread pool. Handlers may run concurrently and must be thread safe.
 */
#include "http.h"
#include "http_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_route {
	char *method; /* NULL: any */
	char *path;
	itr_http_handler handler;
	void *arg;
};

struct http_attachment {
	void *ptr;
	void (*release)(void *ptr);
};

struct itr_http_server {
	struct itr_http_limits limits;
	struct http_route *routes;
	size_t nroutes;
	struct http_attachment *attachments;
	size_t nattachments;
	struct MHD_Daemon *daemon;
	uint16_t port;
};

/* Per-request state. It lives inside the per-connection state below, so it
 * is freed with the connection whatever happens to the request. */
struct http_request_state {
	char *uri; /* raw request target, NULL if over the limit */
	bool uri_too_long;
	bool headers_done;
	int reject;      /* HTTP status to answer instead of routing, 0 if none */
	char allow[128]; /* for 405 */
	const struct http_route *route;
	char *body;
	size_t body_len, body_cap;
};

/* Per-connection state, from MHD's connection-started to connection-closed
 * notification: both always come, unlike the request-completed one. */
struct http_conn {
	struct http_request_state req;
};

static const char JSON_TYPE[] = "application/json";

struct itr_http_server *itr_http_new(const struct itr_http_limits *limits)
{
	struct itr_http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->limits = *limits;
	return srv;
}

int itr_http_route(struct itr_http_server *srv, const char *method, const char *path,
                   itr_http_handler handler, void *arg)
{
	if (srv->daemon || !path || !handler)
		return -1;
	struct http_route *r = realloc(srv->routes, (srv->nroutes + 1) * sizeof(*r));
	if (!r)
		return -1;
	srv->routes = r;
	r = &srv->routes[srv->nroutes];
	r->method = method ? strdup(method) : NULL;
	r->path = strdup(path);
	if ((method && !r->method) || !r->path) {
		free(r->method);
		free(r->path);
		return -1;
	}
	r->handler = handler;
	r->arg = arg;
	srv->nroutes++;
	return 0;
}

int itr_http_attach(struct itr_http_server *srv, void *ptr, void (*release)(void *ptr))
{
	struct http_attachment *a = realloc(srv->attachments, (srv->nattachments + 1) * sizeof(*a));
	if (!a)
		return -1;
	srv->attachments = a;
	a[srv->nattachments].ptr = ptr;
	a[srv->nattachments].release = release;
	srv->nattachments++;
	return 0;
}

void itr_http_set_body(struct itr_http_response *resp, int status, const char *content_type,
                       char *body, size_t len)
{
	if (resp->body != body)
		free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->body_len = len;
}

/* ---- query strings ---------------------------------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long itr_http_percent_decode(const char *s, size_t len, uint8_t *out, size_t outlen)
{
	const char *end = s + len;
	size_t n = 0;
	while (s < end) {
		uint8_t c;
		if (*s == '%') {
			if (end - s < 3)
				return -1;
			int hi = hex_value(s[1]), lo = hex_value(s[2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (uint8_t)(hi << 4 | lo);
			s += 3;
		} else {
			c = (uint8_t)*s++;
		}
		if (out && n < outlen)
			out[n] = c;
		n++;
	}
	return (long)n;
}

long itr_http_query_get(const char *query, const char *key, uint8_t *out, size_t outlen)
{
	if (!query || !key)
		return -1;
	size_t keylen = strlen(key);
	const char *p = query;
	while (*p) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *kend = eq ? eq : end;
		uint8_t kbuf[256];
		long klen = itr_http_percent_decode(p, (size_t)(kend - p), kbuf, sizeof(kbuf));
		if (klen == (long)keylen && keylen <= sizeof(kbuf) &&
		    memcmp(kbuf, key, keylen) == 0) {
			long vlen = eq ? itr_http_percent_decode(eq + 1, (size_t)(end - eq - 1),
			                                         out, outlen)
			               : 0;
			if (vlen < 0)
				return -2;
			if (out && (size_t)vlen < outlen)
				out[vlen] = '\0';
			return vlen;
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	return -1;
}

/* ---- request handling ------------------------------------------------- */

static enum MHD_Result send_response(struct MHD_Connection *conn, int status,
                                     const char *content_type, char *body, size_t len,
                                     const char *allow)
{
	struct MHD_Response *r;
	if (body)
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Errors the server itself answers, as {"error":{"code","reason"}} like
 * the JSON APIs; no request text is echoed back. */
static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *code,
                                  const char *reason, const char *allow)
{
	char *body = NULL;
	int n = asprintf(&body, "{\"error\":{\"code\":\"%s\",\"reason\":\"%s\"}}\n", code, reason);
	if (n < 0)
		return MHD_NO;
	return send_response(conn, status, JSON_TYPE, body, (size_t)n, allow);
}

static void request_state_clear(struct http_request_state *st)
{
	free(st->uri);
	free(st->body);
	memset(st, 0, sizeof(*st));
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct http_conn)); /* NULL: requests dropped */
		return;
	}
	struct http_conn *c = *socket_context;
	if (!c)
		return;
	request_state_clear(&c->req);
	free(c);
	*socket_context = NULL;
}

static struct http_conn *conn_state(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* First sight of a request: keep the raw target (MHD decodes the path and
 * splits the query; handlers want the raw query string). Whatever an
 * earlier request on this connection left behind is dropped here.
 *
 * Then the query is cut off in MHD's own copy. MHD 0.9.75 parses it into
 * one pool entry per '&'-separated argument right after this hook, and when
 * they overflow the connection's pool (about 500 arguments in 32 KB) it
 * gives up on the request without an answer and without the completion
 * callback. Nothing here reads MHD's parsed arguments (handlers parse the
 * raw query kept above), so MHD gets an empty query instead. The buffer is
 * MHD's writable read buffer, which MHD itself cuts at the '?' next; the
 * test_many_arguments unit test fails if a libmicrohttpd stops honouring
 * this. */
static void *uri_hook(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct itr_http_server *srv = cls;
	struct http_conn *c = conn_state(conn);
	struct http_request_state *st = c ? &c->req : NULL;
	if (st) {
		request_state_clear(st);
		if (srv->limits.max_query && strlen(uri) > srv->limits.max_query)
			st->uri_too_long = true;
		else if (!(st->uri = strdup(uri)))
			st = NULL; /* the request is dropped */
	}
	char *query = strchr(uri, '?');
	if (query && query[1])
		query[1] = '\0';
	return st;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct http_request_state *st = *con_cls;
	if (st)
		request_state_clear(st);
	*con_cls = NULL;
}

static bool method_matches(const struct http_route *r, const char *method)
{
	return !r->method || strcmp(r->method, method) == 0;
}

/* Route for path+method, or NULL with *path_known set when only the method
 * is wrong; allow receives the path's methods then. */
static const struct http_route *find_route(const struct itr_http_server *srv, const char *path,
                                           const char *method, bool *path_known, char *allow,
                                           size_t allowlen)
{
	*path_known = false;
	allow[0] = '\0';
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct http_route *r = &srv->routes[i];
		if (strcmp(r->path, path) != 0)
			continue;
		if (method_matches(r, method))
			return r;
		*path_known = true;
		size_t used = strlen(allow);
		snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", r->method);
	}
	return NULL;
}

static enum MHD_Result dispatch(struct MHD_Connection *conn, struct http_request_state *st,
                                const char *path, const char *method)
{
	struct itr_http_request req = {0};
	req.method = method;
	req.path = path;
	const char *q = st->uri ? strchr(st->uri, '?') : NULL;
	req.query = q ? q + 1 : "";
	if (st->body) {
		st->body[st->body_len] = '\0';
		req.body = st->body;
		req.body_len = st->body_len;
	}
	req.content_type =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req.accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	req.forwarded_for = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                                       : sizeof(struct sockaddr_in);
		memcpy(&req.peer, ci->client_addr, len);
		req.peer_len = len;
	}

	struct itr_http_response resp = {.status = 200, .content_type = "text/plain"};
	st->route->handler(&req, &resp, st->route->arg);
	if (resp.stream) {
		free(resp.body);
		return (enum MHD_Result)itr_http_stream_queue(conn, resp.status ? resp.status : 200,
		                                              resp.content_type, resp.stream);
	}
	return send_response(conn, resp.status ? resp.status : 200, resp.content_type, resp.body,
	                     resp.body_len, NULL);
}

/* The answer to a request that failed routing or limits, decided when its
 * headers arrive and sent once MHD has the whole request: MHD 0.9.75 closes
 * the connection after any response queued before that, which would break
 * keep-alive for every GET. Only an announced oversized body is answered
 * early, on purpose, so its bytes are never read. */
static enum MHD_Result send_rejection(struct itr_http_server *srv, struct MHD_Connection *conn,
                                      const struct http_request_state *st)
{
	char reason[160];
	switch (st->reject) {
	case MHD_HTTP_URI_TOO_LONG:
		snprintf(reason, sizeof(reason), "request target longer than %zu bytes",
		         srv->limits.max_query);
		return send_error(conn, st->reject, "E_URI_TOO_LONG", reason, NULL);
	case MHD_HTTP_METHOD_NOT_ALLOWED:
		return send_error(conn, st->reject, "E_METHOD_NOT_ALLOWED",
		                  "method not allowed on this path", st->allow);
	case MHD_HTTP_CONTENT_TOO_LARGE:
		snprintf(reason, sizeof(reason), "request body larger than %zu bytes",
		         srv->limits.max_body);
		return send_error(conn, st->reject, "E_BODY_TOO_LARGE", reason, NULL);
	default:
		return send_error(conn, MHD_HTTP_NOT_FOUND, "E_NOT_FOUND", "no such path", NULL);
	}
}

static void check_headers(struct itr_http_server *srv, struct MHD_Connection *conn,
                          struct http_request_state *st, const char *url, const char *method)
{
	if (st->uri_too_long) {
		st->reject = MHD_HTTP_URI_TOO_LONG;
		return;
	}
	bool path_known;
	st->route = find_route(srv, url, method, &path_known, st->allow, sizeof(st->allow));
	if (!st->route) {
		st->reject = path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
		return;
	}
	const char *clen =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(clen, &end, 10);
		if (errno || *end || n > srv->limits.max_body)
			st->reject = MHD_HTTP_CONTENT_TOO_LARGE;
	}
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
	struct itr_http_server *srv = cls;
	struct http_request_state *st = *con_cls;
	(void)version;

	if (!st)
		return MHD_NO; /* the URI hook could not allocate: drop */

	if (!st->headers_done) {
		st->headers_done = true;
		check_headers(srv, conn, st, url, method);
		if (st->reject == MHD_HTTP_CONTENT_TOO_LARGE)
			return send_rejection(srv, conn, st); /* MHD closes after it */
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (st->reject)
			return MHD_YES; /* discard */
		if (st->body_len + n > srv->limits.max_body) {
			/* Chunked bodies reveal their size only as they arrive:
			 * drop what we have, discard the rest, answer 413 at the end. */
			st->reject = MHD_HTTP_CONTENT_TOO_LARGE;
			free(st->body);
			st->body = NULL;
			st->body_len = st->body_cap = 0;
			return MHD_YES;
		}
		if (st->body_len + n + 1 > st->body_cap) {
			size_t cap = st->body_cap ? st->body_cap : 1024;
			while (cap < st->body_len + n + 1)
				cap *= 2;
			char *b = realloc(st->body, cap);
			if (!b)
				return MHD_NO;
			st->body = b;
			st->body_cap = cap;
		}
		memcpy(st->body + st->body_len, upload_data, n);
		st->body_len += n;
		return MHD_YES;
	}

	if (st->reject)
		return send_rejection(srv, conn, st);
	/* A request that announced a body gets one, even when empty. */
	if (!st->body &&
	    (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
	     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                 MHD_HTTP_HEADER_TRANSFER_ENCODING))) {
		st->body = malloc(1);
		if (!st->body)
			return MHD_NO;
	}
	return dispatch(conn, st, url, method);
}

/* ---- lifecycle ---------------------------------------------------------- */

int itr_http_start(struct itr_http_server *srv, const char *addr, uint16_t port, char *err,
                   size_t errlen)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	/* suspend/resume: streamed bodies (http_stream.c) wait without polling */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
	                 MHD_ALLOW_SUSPEND_RESUME;

	if (srv->daemon) {
		snprintf(err, errlen, "http: already started");
		return -1;
	}
	if (!addr)
		addr = "::";
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		/* "::" serves IPv4 too (IPv4-mapped); a specific address only
		 * itself. */
		flags |=
		    IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	} else {
		snprintf(err, errlen, "http: bad listen address '%s'", addr);
		return -1;
	}

	/* The request line and headers must fit MHD's per-connection pool;
	 * grow it when the configured URI limit needs more than the default. */
	size_t pool = 32 * 1024;
	if (srv->limits.max_query + 16 * 1024 > pool)
		pool = srv->limits.max_query + 16 * 1024;

	struct MHD_OptionItem opts[12];
	size_t k = 0;
	opts[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	opts[k++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_hook, srv};
	opts[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_done, srv};
	opts[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connection_notify, srv};
	opts[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)pool, NULL};
	if (srv->limits.max_connections)
		opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
		                                    (intptr_t)srv->limits.max_connections, NULL};
	if (srv->limits.connection_timeout_s)
		opts[k++] =
		    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
		                            (intptr_t)srv->limits.connection_timeout_s, NULL};
	if (srv->limits.threads > 1)
		opts[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
		                                    (intptr_t)srv->limits.threads, NULL};
	opts[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	errno = 0;
	srv->daemon = MHD_start_daemon(flags, port, NULL, NULL, access_handler, srv,
	                               MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!srv->daemon) {
		snprintf(err, errlen, "http: cannot listen on %s port %u%s%s", addr, port,
		         errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : port;
	return 0;
}

uint16_t itr_http_port(const struct itr_http_server *srv)
{
	return srv->port;
}

void itr_http_free(struct itr_http_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon) {
		/* MHD must not stop with suspended connections: end the streams
		 * and give the polling thread a moment to send their last bytes. */
		for (int i = 0; i < 50 && itr_http_stream_live_count() > 0; i++) {
			itr_http_stream_close_all();
			usleep(2000);
		}
		MHD_stop_daemon(srv->daemon);
	}
	for (size_t i = 0; i < srv->nroutes; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].path);
	}
	free(srv->routes);
	for (size_t i = 0; i < srv->nattachments; i++)
		if (srv->attachments[i].release)
			srv->attachments[i].release(srv->attachments[i].ptr);
	free(srv->attachments);
	free(srv);
}
