/* http.c - the one HTTP listener every service shares, on libmicrohttpd.
 *
 * Routes are exact paths registered before start. Each request walks:
 * raw URI (kept from MHD's URI log hook, for the raw query string and the
 * length limit) -> route lookup (404 / 405 with Allow) -> body accumulation
 * up to limits.max_body (413 past it) -> handler -> response. Limits are
 * enforced here once, so handlers only ever see requests that fit them.
 *
 * Threading: MHD polling threads on epoll (one by default, measured fastest
 * on one pinned core, see tools/bench/bench_http.sh; limits.threads > 1 gives
 * an MHD thread pool) do the I/O and run the cheap handlers inline. Routes
 * marked with itr_http_offload (work that grows with the request or waits
 * on someone else) run on a bounded worker pool instead: the connection is
 * suspended, a worker runs the handler and resumes it, so no such request
 * holds up the polling threads and the other clients behind them. The pool
 * has a bounded queue and a per-address share of it; past either the
 * answer is 503. Handlers may run concurrently and must be thread safe.
 *
 * Connections over the per-address limit get a fixed 503 with Retry-After
 * written straight to the socket when they are accepted (non-blocking,
 * best effort, the request never read), then are shut down: MHD's own
 * per-IP limit closes them without a word, and a client cannot tell that
 * from a crash. The counts per address live in a keyed hash table here.
 *
 * Deadlines: MHD only knows an inactivity timeout, which a client that
 * sends one byte now and then never hits. A reaper thread shuts down every
 * connection whose request line and headers are not complete within
 * limits.header_timeout_s, or whose request is not answered within
 * limits.request_timeout_s (both counted from the end of the previous
 * request, or the connect); MHD then sees the connection end and frees it.
 * A request whose line has come gets a fixed 408 first (one non-blocking
 * send, as the 503 above); an idle keep-alive connection is just closed.
 *
 * The fast lane: on a TCP listener with routes marked itr_http_lane (the
 * tracker's announce and scrape), this file owns the listening socket. A
 * lane thread accepts (TCP_DEFER_ACCEPT: a connection comes with its
 * request), peeks at what arrived, and answers it itself when it is one
 * whole closing GET of a lane route (http_lane.c says exactly which): it
 * reads it, runs the handler, sends the answer with MSG_MORE and closes,
 * so that the FIN leaves on the answer's segment. libmicrohttpd sends the
 * answer, sets TCP_NODELAY, which pushes it alone, then closes: two
 * segments where one does, and a connection per announce is mostly the
 * kernel's TCP work (docs/benchmarks.md, bench_tcp_close). Every other
 * connection (keep-alive, a partial or larger request, any other path or
 * form) goes to libmicrohttpd untouched (MHD_add_connection; the lane only
 * peeked), with every limit and deadline above. The lane never waits on a
 * client: it holds one connection at a time, only while answering.
 */
#include "http.h"
#include "clock.h"
#include "http_lane.h"
#include "http_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* An address as a hash key: its family, then its 4 or 16 bytes. */
#define ADDR_KEY_LEN 17
/* Buckets of the per-address table: chains stay short up to a few times
 * as many addresses, and the hash is keyed, so they cannot be aimed. */
#define ADDR_BUCKETS 4096

struct http_route {
	char *method; /* NULL: any */
	char *path;
	itr_http_handler handler;
	void *arg;
	bool offload; /* runs on the worker pool */
	bool lane;    /* may be answered by the fast lane */
	/* run in batches (itr_http_batch): by at most batch_runners workers
	 * at a time; batch_running under jobs_lock */
	itr_http_batch_handler batch;
	unsigned batch_runners, batch_running;
};

struct http_conn;

/* Open connections from one address (the per-address limit). */
struct addr_count {
	struct addr_count *next; /* in its bucket */
	uint8_t key[ADDR_KEY_LEN];
	unsigned count;
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
	char *unix_path; /* removed again on free, if still ours */
	dev_t unix_dev;
	ino_t unix_ino;
	unsigned max_connections; /* after fitting under the file limit */

	/* every open connection, for the reaper */
	pthread_mutex_t conns_lock;
	struct http_conn *conns;
	/* per-address connection counts (under conns_lock); NULL: no limit */
	struct addr_count **addr_counts;
	uint8_t addr_hash_key[crypto_shorthash_KEYBYTES];
	/* whole answers written straight to a socket, not through MHD: to a
	 * connection over the per-address limit, and to a request that
	 * missed its deadline */
	char too_many[384];
	size_t too_many_len;
	char too_late[384];
	size_t too_late_len;
	char busy[384]; /* a lane job the worker pool has no room for */
	size_t busy_len;
	pthread_t reaper;
	bool reaper_running;

	/* the worker pool: a FIFO of suspended requests */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_wake;
	pthread_cond_t reaper_wake;
	struct http_request_state *jobs_head, *jobs_tail;
	size_t jobs_queued, jobs_running;
	struct http_worker *workers;
	size_t nworkers;
	bool stopping;

	atomic_uint_fast64_t stat_reaped_headers, stat_reaped_request, stat_busy;
	atomic_uint_fast64_t stat_over_address_limit;

	/* the fast lane: its listening socket (-1: MHD listens itself) */
	int lane_fd;
	pthread_t lane;
	bool lane_running;
	atomic_bool lane_stop;
	atomic_uint_fast64_t stat_lane_answered, stat_lane_handed;
	/* Connections the lane handed to MHD and MHD has not closed yet. The
	 * lane refuses more than max_connections itself: libmicrohttpd 0.9.75
	 * fed with MHD_add_connection past its own limit, under slowloris,
	 * was seen to deadlock its polling thread on its own mutex (held by
	 * that thread), after which none of its sockets was ever closed. */
	bool lane_feeds;
	atomic_uint mhd_open;
	atomic_uint_fast64_t stat_over_total_limit;
	/* A bit per descriptor the lane handed to MHD that MHD has not yet
	 * reported started. MHD_add_connection can say yes and MHD drop the
	 * connection later without a word (its pool out of memory, its own
	 * limit in the polling thread): no started, no closed, so mhd_open
	 * would keep it for good, and enough such drops would make the lane
	 * refuse everyone. The kernel reuses only a closed number, so a
	 * descriptor handed while its bit is still set was such a drop: its
	 * place in mhd_open goes to the new connection. */
	_Atomic unsigned long *handed_bits;
	size_t handed_fds; /* descriptors the bits cover; others are not tracked */
	atomic_uint_fast64_t stat_lane_dropped;
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

	/* offloaded to the worker pool */
	struct MHD_Connection *mhd;
	struct itr_http_request req;
	struct itr_http_response resp;
	bool queued;                     /* handed to the pool (and suspended) */
	atomic_bool job_done;            /* resp is ready */
	struct http_request_state *next; /* in the job queue, then in its worker's batch */
	struct http_conn *conn;
	/* a job from the fast lane: the worker answers on lane_fd and closes */
	bool lane_job;
	int lane_fd;
};

/* Per-connection state, from MHD's connection-started to connection-closed
 * notification: both always come, unlike the request-completed one. */
struct http_conn {
	struct http_request_state req;
	struct itr_http_server *srv;
	int fd;
	/* under srv->conns_lock: */
	struct http_conn *prev, *next;
	int64_t phase_start_ms; /* connect, or end of the previous request */
	bool awaiting_headers;  /* no complete request line + headers yet */
	bool suspended;         /* in the worker pool: its deadline is the pool's */
	bool streaming;         /* a stream (http_stream.h): ends when its writer says */
	bool reaped;
	bool over_limit;          /* answered 503 at accept, its requests dropped */
	bool line_seen;           /* the current request's line is in */
	bool answering;           /* a response to it is queued: MHD writes */
	struct addr_count *count; /* its address's count, if it holds one */
	struct sockaddr_storage peer;
};

static const char JSON_TYPE[] = "application/json";

/* A whole HTTP/1.1 answer with an error body like send_error's, closing
 * the connection (a 503 says Retry-After: 1); its length, 0 if it does not
 * fit. */
static size_t fixed_answer(char *out, size_t cap, int status, const char *code, const char *reason)
{
	char body[192];
	int blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"reason\":\"%s\"}}\n",
	                    code, reason);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return 0;
	size_t head = itr_lane_head(out, cap, status, JSON_TYPE, (size_t)blen);
	if (!head || head + (size_t)blen >= cap)
		return 0;
	memcpy(out + head, body, (size_t)blen + 1);
	return head + (size_t)blen;
}

struct itr_http_server *itr_http_new(const struct itr_http_limits *limits)
{
	struct itr_http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->limits = *limits;
	if (sodium_init() < 0) {
		free(srv);
		return NULL;
	}
	randombytes_buf(srv->addr_hash_key, sizeof(srv->addr_hash_key));
	srv->too_many_len =
	    fixed_answer(srv->too_many, sizeof(srv->too_many), 503, "E_TOO_MANY_CONNECTIONS",
	                 "too many connections from your address, retry later");
	srv->too_late_len = fixed_answer(srv->too_late, sizeof(srv->too_late), 408,
	                                 "E_REQUEST_TIMEOUT", "the request did not arrive in time");
	srv->busy_len =
	    fixed_answer(srv->busy, sizeof(srv->busy), 503, "E_BUSY", "server busy, retry later");
	srv->lane_fd = -1;
	pthread_mutex_init(&srv->conns_lock, NULL);
	pthread_mutex_init(&srv->jobs_lock, NULL);
	pthread_cond_init(&srv->jobs_wake, NULL);
	itr_cond_init_monotonic(&srv->reaper_wake);
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
	r->offload = false;
	r->lane = false;
	r->batch = NULL;
	r->batch_runners = r->batch_running = 0;
	srv->nroutes++;
	return 0;
}

/* Set a flag (offload or lane) on every route of path, before start. */
static int mark_routes(struct itr_http_server *srv, const char *path, bool lane)
{
	int n = 0;
	if (srv->daemon || !path)
		return -1;
	for (size_t i = 0; i < srv->nroutes; i++)
		if (strcmp(srv->routes[i].path, path) == 0) {
			if (lane)
				srv->routes[i].lane = true;
			else
				srv->routes[i].offload = true;
			n++;
		}
	return n ? 0 : -1;
}

int itr_http_offload(struct itr_http_server *srv, const char *path)
{
	return mark_routes(srv, path, false);
}

int itr_http_lane(struct itr_http_server *srv, const char *path)
{
	return mark_routes(srv, path, true);
}

int itr_http_batch(struct itr_http_server *srv, const char *path, itr_http_batch_handler fn,
                   unsigned runners)
{
	int n = 0;
	if (srv->daemon || !path || !fn || !runners)
		return -1;
	for (size_t i = 0; i < srv->nroutes; i++)
		if (strcmp(srv->routes[i].path, path) == 0) {
			if (!srv->routes[i].offload)
				return -1;
			srv->routes[i].batch = fn;
			srv->routes[i].batch_runners = runners;
			n++;
		}
	return n ? 0 : -1;
}

void itr_http_get_stats(struct itr_http_server *srv, struct itr_http_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->lane_answered = atomic_load(&srv->stat_lane_answered);
	st->lane_handed = atomic_load(&srv->stat_lane_handed);
	st->lane_dropped = atomic_load(&srv->stat_lane_dropped);
	st->reaped_headers = atomic_load(&srv->stat_reaped_headers);
	st->reaped_request = atomic_load(&srv->stat_reaped_request);
	st->busy = atomic_load(&srv->stat_busy);
	st->over_address_limit = atomic_load(&srv->stat_over_address_limit);
	st->over_total_limit = atomic_load(&srv->stat_over_total_limit);
	st->max_connections = srv->max_connections;
	pthread_mutex_lock(&srv->jobs_lock);
	st->jobs_queued = srv->jobs_queued;
	st->jobs_running = srv->jobs_running;
	pthread_mutex_unlock(&srv->jobs_lock);
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
	if (resp->shared) {
		itr_http_shared_unref(resp->shared);
		resp->shared = NULL;
	}
	if (resp->gen_free)
		resp->gen_free(resp->gen_cls);
	resp->gen_fill = NULL;
	resp->gen_free = NULL;
	resp->gen_cls = NULL;
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->body_len = len;
}

/* ---- shared bodies --------------------------------------------------------- */

struct itr_http_shared {
	atomic_size_t refs;
	char *data;
	size_t len;
};

struct itr_http_shared *itr_http_shared_new(char *data, size_t len)
{
	struct itr_http_shared *sh = malloc(sizeof(*sh));
	if (!sh) {
		free(data);
		return NULL;
	}
	atomic_init(&sh->refs, 1);
	sh->data = data;
	sh->len = len;
	return sh;
}

struct itr_http_shared *itr_http_shared_ref(struct itr_http_shared *sh)
{
	if (sh)
		atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
	return sh;
}

void itr_http_shared_unref(struct itr_http_shared *sh)
{
	if (sh && atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1) {
		free(sh->data);
		free(sh);
	}
}

size_t itr_http_shared_len(const struct itr_http_shared *sh)
{
	return sh ? sh->len : 0;
}

void itr_http_set_shared(struct itr_http_response *resp, int status, const char *content_type,
                         struct itr_http_shared *sh)
{
	itr_http_set_body(resp, status, content_type, NULL, 0);
	resp->shared = itr_http_shared_ref(sh);
}

static void shared_release(void *cls)
{
	itr_http_shared_unref(cls);
}

void itr_http_set_generator(struct itr_http_response *resp, int status, const char *content_type,
                            long (*fill)(void *cls, char *buf, size_t max),
                            void (*free_cls)(void *cls), void *cls)
{
	itr_http_set_body(resp, status, content_type, NULL, 0);
	resp->gen_fill = fill;
	resp->gen_free = free_cls;
	resp->gen_cls = cls;
}

/* A generated body as libmicrohttpd takes it (its content reader). */
struct http_generator {
	long (*fill)(void *cls, char *buf, size_t max);
	void (*free_cls)(void *cls);
	void *cls;
};

static ssize_t generator_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct http_generator *g = cls;
	long n = g->fill(g->cls, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void generator_release(void *cls)
{
	struct http_generator *g = cls;
	if (g->free_cls)
		g->free_cls(g->cls);
	free(g);
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

static enum MHD_Result queue_response(struct MHD_Connection *conn, int status,
                                      const char *content_type, struct MHD_Response *r,
                                      const char *allow);
static struct http_conn *conn_state(struct MHD_Connection *conn);

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
	return queue_response(conn, status, content_type, r, allow);
}

/* A handler's answer; a shared body is sent from the one copy, which lives
 * until the last connection that sends it is done. */
static enum MHD_Result send_handler_response(struct MHD_Connection *conn,
                                             struct itr_http_response *resp)
{
	int status = resp->status ? resp->status : 200;
	if (resp->stream) {
		struct itr_http_stream *stream = resp->stream;
		resp->stream = NULL;
		free(resp->body);
		resp->body = NULL;
		struct http_conn *c = conn_state(conn);
		if (c) {
			pthread_mutex_lock(&c->srv->conns_lock);
			c->streaming = true;
			pthread_mutex_unlock(&c->srv->conns_lock);
		}
		return (enum MHD_Result)itr_http_stream_queue(conn, status, resp->content_type,
		                                              stream);
	}
	if (resp->gen_fill) {
		struct http_generator *g = malloc(sizeof(*g));
		if (!g)
			return MHD_NO; /* resp's owner frees the generator */
		*g = (struct http_generator){resp->gen_fill, resp->gen_free, resp->gen_cls};
		resp->gen_fill = NULL; /* the response's from here */
		resp->gen_free = NULL;
		resp->gen_cls = NULL;
		/* pieces of 32 KiB: each fill is short work for the polling thread */
		struct MHD_Response *r = MHD_create_response_from_callback(
		    MHD_SIZE_UNKNOWN, 32 * 1024, generator_read, g, generator_release);
		if (!r) {
			generator_release(g);
			return MHD_NO;
		}
		return queue_response(conn, status, resp->content_type, r, NULL);
	}
	struct itr_http_shared *sh = resp->shared;
	if (!sh) {
		char *body = resp->body; /* MHD's from here */
		resp->body = NULL;
		return send_response(conn, status, resp->content_type, body, resp->body_len, NULL);
	}
	resp->shared = NULL;
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
	    sh->len, sh->data, shared_release, sh);
	if (!r) {
		itr_http_shared_unref(sh);
		return MHD_NO;
	}
	return queue_response(conn, status, resp->content_type, r, NULL);
}

static enum MHD_Result queue_response(struct MHD_Connection *conn, int status,
                                      const char *content_type, struct MHD_Response *r,
                                      const char *allow)
{
	if (content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	/* From here MHD writes to the socket: the reaper must not (a 408 in
	 * the middle of an answer) */
	struct http_conn *c = conn_state(conn);
	if (c) {
		pthread_mutex_lock(&c->srv->conns_lock);
		c->answering = true;
		pthread_mutex_unlock(&c->srv->conns_lock);
	}
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

/* What a response holds that was made and never handed to MHD. */
static void response_release(struct itr_http_response *resp)
{
	free(resp->body);
	itr_http_shared_unref(resp->shared);
	if (resp->gen_free)
		resp->gen_free(resp->gen_cls);
	if (resp->stream) {
		itr_http_stream_close(resp->stream);
		itr_http_stream_unref(resp->stream);
	}
	memset(resp, 0, sizeof(*resp));
}

static void request_state_clear(struct http_request_state *st)
{
	struct http_conn *c = st->conn;
	free(st->uri);
	free(st->body);
	response_release(&st->resp);
	memset(st, 0, sizeof(*st));
	st->conn = c;
}

/* The connection's deadline clock restarts: the next request (line and
 * headers) is awaited from now. */
static void phase_restart(struct http_conn *c, bool awaiting_headers)
{
	pthread_mutex_lock(&c->srv->conns_lock);
	if (awaiting_headers) {
		c->phase_start_ms = itr_clock_ms();
		c->streaming = false;
		c->line_seen = false;
		c->answering = false;
	}
	c->awaiting_headers = awaiting_headers;
	pthread_mutex_unlock(&c->srv->conns_lock);
}

/* ---- the per-address connection limit ------------------------------------ */

static bool addr_key_of(const struct sockaddr_storage *ss, uint8_t key[ADDR_KEY_LEN])
{
	memset(key, 0, ADDR_KEY_LEN);
	key[0] = (uint8_t)ss->ss_family;
	if (ss->ss_family == AF_INET) {
		memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		return true;
	}
	return false; /* a Unix socket: one local client, no limit */
}

static size_t addr_bucket(const struct itr_http_server *srv, const uint8_t key[ADDR_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, key, ADDR_KEY_LEN, srv->addr_hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)(v % ADDR_BUCKETS);
}

/* key's entry in the per-address table, or NULL (under conns_lock). */
static struct addr_count *address_count_find(struct itr_http_server *srv, const uint8_t *key)
{
	struct addr_count *e = srv->addr_counts[addr_bucket(srv, key)];
	while (e && memcmp(e->key, key, ADDR_KEY_LEN) != 0)
		e = e->next;
	return e;
}

/* Count c against its address, under conns_lock: false when the address
 * already holds the limit (or there is no memory to count it), and c must
 * be refused. */
static bool address_count_take(struct itr_http_server *srv, struct http_conn *c)
{
	uint8_t key[ADDR_KEY_LEN];
	if (!srv->addr_counts || !addr_key_of(&c->peer, key))
		return true;
	struct addr_count **head = &srv->addr_counts[addr_bucket(srv, key)];
	struct addr_count *e = address_count_find(srv, key);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return false;
		memcpy(e->key, key, ADDR_KEY_LEN);
		e->next = *head;
		*head = e;
	}
	if (e->count >= srv->limits.per_ip_connections)
		return false;
	e->count++;
	c->count = e;
	return true;
}

/* Whether peer's address holds its limit now. The lane asks before it
 * hands a connection on, so that a flood from one address is answered
 * there and never fills libmicrohttpd's connection table; the count itself
 * is taken (and the limit enforced) when MHD starts the connection. */
static bool address_at_limit(struct itr_http_server *srv, const struct sockaddr_storage *peer)
{
	uint8_t key[ADDR_KEY_LEN];
	if (!srv->addr_counts || !addr_key_of(peer, key))
		return false;
	pthread_mutex_lock(&srv->conns_lock);
	const struct addr_count *e = address_count_find(srv, key);
	bool full = e && e->count >= srv->limits.per_ip_connections;
	pthread_mutex_unlock(&srv->conns_lock);
	return full;
}

/* c closes: its address holds one connection less (under conns_lock). */
static void address_count_drop(struct itr_http_server *srv, struct http_conn *c)
{
	struct addr_count *e = c->count;
	c->count = NULL;
	if (!e || --e->count > 0)
		return;
	struct addr_count **p = &srv->addr_counts[addr_bucket(srv, e->key)];
	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	free(e);
}

/* Ends a connection MHD still owns: a fixed answer (len 0: none) in one
 * non-blocking send (it fits any fresh socket's buffer; if not, the client
 * gets less, never a stalled server), then both directions shut, so that
 * MHD sees the end of the connection at once and closes it. */
static void answer_and_end(int fd, const char *answer, size_t len)
{
	if (len)
		(void)send(fd, answer, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_RDWR);
}

/* A connection over the per-address limit gets the fixed 503. Its request
 * is never parsed: MHD may still read what is already there, and its
 * handlers drop it (over_limit). */
static void refuse_connection(struct itr_http_server *srv, struct http_conn *c)
{
	atomic_fetch_add_explicit(&srv->stat_over_address_limit, 1, memory_order_relaxed);
	if (c->fd >= 0)
		answer_and_end(c->fd, srv->too_many, srv->too_many_len);
}

#define HANDED_WORD_BITS (8 * sizeof(unsigned long))

/* fd's word in handed_bits and its bit there; NULL if fd is not tracked. */
static _Atomic unsigned long *handed_word(struct itr_http_server *srv, int fd, unsigned long *bit)
{
	if (fd < 0 || (size_t)fd >= srv->handed_fds)
		return NULL;
	*bit = 1UL << ((size_t)fd % HANDED_WORD_BITS);
	return &srv->handed_bits[(size_t)fd / HANDED_WORD_BITS];
}

/* Marks fd handed; true if it already was (MHD dropped the last one). */
static bool handed_mark(struct itr_http_server *srv, int fd)
{
	unsigned long bit;
	_Atomic unsigned long *word = handed_word(srv, fd, &bit);
	return word && (atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit);
}

static void handed_clear(struct itr_http_server *srv, int fd)
{
	unsigned long bit;
	_Atomic unsigned long *word = handed_word(srv, fd, &bit);
	if (word)
		atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed);
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	struct itr_http_server *srv = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		int fd = ci ? ci->connect_fd : -1;
		handed_clear(srv, fd);
		struct http_conn *c = calloc(1, sizeof(*c));
		*socket_context = c; /* NULL: its requests are dropped */
		if (!c)
			return;
		c->srv = srv;
		c->req.conn = c;
		c->fd = fd;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr) {
			socklen_t len =
			    ci->client_addr->sa_family == AF_INET6  ? sizeof(struct sockaddr_in6)
			    : ci->client_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
			                                            : 0;
			memcpy(&c->peer, ci->client_addr, len);
		}
		pthread_mutex_lock(&srv->conns_lock);
		c->phase_start_ms = itr_clock_ms();
		c->awaiting_headers = true;
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		c->over_limit = !address_count_take(srv, c);
		c->reaped = c->over_limit; /* nothing left for the reaper to do */
		pthread_mutex_unlock(&srv->conns_lock);
		if (c->over_limit)
			refuse_connection(srv, c);
		return;
	}
	if (srv->lane_feeds)
		atomic_fetch_sub_explicit(&srv->mhd_open, 1, memory_order_relaxed);
	struct http_conn *c = *socket_context;
	if (!c)
		return;
	/* MHD closes the socket after this: the reaper must not see it then. */
	pthread_mutex_lock(&srv->conns_lock);
	address_count_drop(srv, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&srv->conns_lock);
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
	struct http_request_state *st = c && !c->over_limit ? &c->req : NULL;
	if (st) {
		pthread_mutex_lock(&srv->conns_lock);
		c->line_seen = true; /* a deadline missed from now on gets a 408 */
		pthread_mutex_unlock(&srv->conns_lock);
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
	if (st) {
		request_state_clear(st);
		if (st->conn)
			phase_restart(st->conn, true);
	}
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

/* The handler's view of the request; every pointer stays valid until the
 * request completes (MHD's header values live in the connection's pool). */
static void fill_request(struct MHD_Connection *conn, struct http_request_state *st,
                         const char *path, const char *method, struct itr_http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = path;
	const char *q = st->uri ? strchr(st->uri, '?') : NULL;
	req->query = q ? q + 1 : "";
	if (st->body) {
		st->body[st->body_len] = '\0';
		req->body = st->body;
		req->body_len = st->body_len;
	}
	req->content_type =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req->accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	req->forwarded_for = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	req->forwarded = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Forwarded");
	req->authorization =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		sa_family_t fam = ci->client_addr->sa_family;
		socklen_t len = fam == AF_INET6  ? sizeof(struct sockaddr_in6)
		                : fam == AF_INET ? sizeof(struct sockaddr_in)
		                                 : sizeof(sa_family_t);
		memcpy(&req->peer, ci->client_addr, len);
		req->peer_len = len;
	}
}

static enum MHD_Result dispatch(struct MHD_Connection *conn, struct http_request_state *st,
                                const char *path, const char *method)
{
	fill_request(conn, st, path, method, &st->req);
	st->resp = (struct itr_http_response){.status = 200, .content_type = "text/plain"};
	st->route->handler(&st->req, &st->resp, st->route->arg);
	return send_handler_response(conn, &st->resp);
}

/* ---- the worker pool ------------------------------------------------------ */

#define TRIM_AFTER_BYTES (64 * 1024)

struct http_worker {
	struct itr_http_server *srv;
	struct http_request_state *current; /* under jobs_lock; a batch: linked by next */
	pthread_t thread;
};

bool itr_http_same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return true; /* Unix sockets: one local client */
}

/* How many of the queued and running jobs come from this address. */
static size_t jobs_from(const struct itr_http_server *srv, const struct sockaddr_storage *peer)
{
	size_t n = 0;
	for (const struct http_request_state *j = srv->jobs_head; j; j = j->next)
		if (j->req.peer_len && itr_http_same_address(&j->req.peer, peer))
			n++;
	for (size_t i = 0; i < srv->nworkers; i++)
		for (const struct http_request_state *j = srv->workers[i].current; j; j = j->next)
			if (j->req.peer_len && itr_http_same_address(&j->req.peer, peer))
				n++;
	return n;
}

static void conn_set_suspended(struct http_conn *c, bool suspended);

/* Whether a worker may start the job now: a batch route's only while fewer
 * than its runners run it. Under jobs_lock. */
static bool job_startable(const struct http_request_state *st)
{
	const struct http_route *r = st->route;
	return !r->batch || r->batch_running < r->batch_runners;
}

/* Take the first job a worker may start, out of the queue; for a batch
 * route, with every other queued job of that route (up to
 * ITR_HTTP_BATCH_MAX, in their order), linked by next; *taken: how many.
 * NULL if none. Under jobs_lock. */
static struct http_request_state *jobs_take(struct itr_http_server *srv, size_t *taken)
{
	struct http_request_state **at = &srv->jobs_head, *prev = NULL;
	while (*at && !job_startable(*at)) {
		prev = *at;
		at = &(*at)->next;
	}
	struct http_request_state *first = *at;
	if (!first)
		return NULL;
	const struct http_route *route = first->route;
	struct http_request_state *last = NULL;
	size_t n = 0;
	while (*at && n < (route->batch ? ITR_HTTP_BATCH_MAX : 1)) {
		struct http_request_state *j = *at;
		if (j->route != route) {
			prev = j;
			at = &j->next;
			continue;
		}
		*at = j->next; /* out of the queue */
		if (last)
			last->next = j;
		last = j;
		n++;
	}
	last->next = NULL;
	srv->jobs_tail = prev ? prev : srv->jobs_head;
	while (srv->jobs_tail && srv->jobs_tail->next)
		srv->jobs_tail = srv->jobs_tail->next;
	srv->jobs_queued -= n;
	srv->jobs_running += n;
	*taken = n;
	if (route->batch)
		srv->routes[route - srv->routes].batch_running++;
	return first;
}

/* Hand the request to the pool and suspend its connection (conn NULL: a
 * lane job, nothing to suspend), or (pool full, or this address's share of
 * it taken, or stopping) do neither. Suspended under the pool's lock: no
 * worker can pick the job up and resume the connection before it is
 * suspended; and a refusal costs no suspend and resume round, which at
 * thousands a second delayed everyone. */
static bool job_submit(struct itr_http_server *srv, struct MHD_Connection *conn,
                       struct http_request_state *st)
{
	bool ok = false;
	pthread_mutex_lock(&srv->jobs_lock);
	size_t cap = srv->limits.queue ? srv->limits.queue : 64;
	/* one address gets at most half the workers (running or queued): the
	 * other half is always there for everyone else */
	size_t half = srv->nworkers / 2 ? srv->nworkers / 2 : 1;
	size_t per_ip = srv->limits.queue_per_address ? srv->limits.queue_per_address : half;
	if (!srv->stopping && srv->jobs_queued < cap &&
	    (!st->req.peer_len || jobs_from(srv, &st->req.peer) < (per_ip ? per_ip : 1))) {
		st->mhd = conn;
		st->queued = true;
		if (conn) {
			conn_set_suspended(st->conn, true);
			MHD_suspend_connection(conn);
		}
		st->next = NULL;
		if (srv->jobs_tail)
			srv->jobs_tail->next = st;
		else
			srv->jobs_head = st;
		srv->jobs_tail = st;
		srv->jobs_queued++;
		/* a batch job that no worker may start now waits for a runner
		 * to come back for it: waking an idle worker would be for
		 * nothing (and cost a wake-up per request) */
		if (job_startable(st))
			pthread_cond_signal(&srv->jobs_wake);
		ok = true;
	}
	pthread_mutex_unlock(&srv->jobs_lock);
	return ok;
}

static void job_finish(struct http_request_state *st)
{
	atomic_store_explicit(&st->job_done, true, memory_order_release);
	MHD_resume_connection(st->mhd);
}

static void lane_job_finish(struct itr_http_server *srv, struct http_request_state *st);

/* Run a taken job, or a batch of them, to their answers. */
static void jobs_run(struct http_request_state *first)
{
	const struct http_route *route = first->route;
	if (!route->batch) {
		first->resp =
		    (struct itr_http_response){.status = 200, .content_type = "text/plain"};
		route->handler(&first->req, &first->resp, route->arg);
		return;
	}
	const struct itr_http_request *reqs[ITR_HTTP_BATCH_MAX];
	struct itr_http_response *resps[ITR_HTTP_BATCH_MAX];
	size_t n = 0;
	for (struct http_request_state *j = first; j; j = j->next) {
		j->resp = (struct itr_http_response){.status = 200, .content_type = "text/plain"};
		reqs[n] = &j->req;
		resps[n++] = &j->resp;
	}
	route->batch(reqs, resps, n, route->arg);
}

static void *worker_main(void *arg)
{
	struct http_worker *w = arg;
	struct itr_http_server *srv = w->srv;
	pthread_mutex_lock(&srv->jobs_lock);
	for (;;) {
		size_t n;
		struct http_request_state *first = jobs_take(srv, &n);
		if (!first) {
			if (srv->stopping && !srv->jobs_head) {
				/* nothing left to answer: the workers that waited
				 * for a batch runner see it too */
				pthread_cond_broadcast(&srv->jobs_wake);
				break;
			}
			pthread_cond_wait(&srv->jobs_wake, &srv->jobs_lock);
			continue;
		}
		w->current = first;
		pthread_mutex_unlock(&srv->jobs_lock);
		jobs_run(first);
		pthread_mutex_lock(&srv->jobs_lock);
		w->current = NULL;
		srv->jobs_running -= n;
		if (first->route->batch)
			srv->routes[first->route - srv->routes].batch_running--;
		pthread_mutex_unlock(&srv->jobs_lock);
		/* A large request's parse trees and answers are freed into this
		 * worker's malloc arena, which glibc keeps: give the pages back,
		 * or every worker holds the high-water mark of its worst request
		 * (measured: +11 MB RSS on 210 kB endpoint-cost requests). Only
		 * then: a trim walks and locks every arena, the polling thread's
		 * too, and a trim per small request delayed it. */
		bool large = false;
		for (struct http_request_state *j = first, *next; j; j = next) {
			next = j->next; /* a lane job is freed when finished */
			large = large || j->body_len >= TRIM_AFTER_BYTES ||
			        j->resp.body_len >= TRIM_AFTER_BYTES ||
			        (j->resp.shared &&
			         itr_http_shared_len(j->resp.shared) >= TRIM_AFTER_BYTES);
			if (j->lane_job)
				lane_job_finish(srv, j);
			else
				job_finish(j);
		}
		if (large)
			malloc_trim(0);
		pthread_mutex_lock(&srv->jobs_lock);
	}
	pthread_mutex_unlock(&srv->jobs_lock);
	return NULL;
}

static void conn_set_suspended(struct http_conn *c, bool suspended)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->srv->conns_lock);
	c->suspended = suspended;
	pthread_mutex_unlock(&c->srv->conns_lock);
}

/* Run the route's handler on the pool; 503 with Retry-After at once when
 * there is no room for it. */
static enum MHD_Result offload(struct itr_http_server *srv, struct MHD_Connection *conn,
                               struct http_request_state *st, const char *path, const char *method)
{
	fill_request(conn, st, path, method, &st->req);
	if (job_submit(srv, conn, st))
		return MHD_YES;
	atomic_fetch_add_explicit(&srv->stat_busy, 1, memory_order_relaxed);
	return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "E_BUSY", "server busy, retry later",
	                  NULL);
}

/* ---- deadlines ------------------------------------------------------------ */

static void *reaper_main(void *arg)
{
	struct itr_http_server *srv = arg;
	const int64_t header_ms = (int64_t)srv->limits.header_timeout_s * 1000;
	const int64_t request_ms = (int64_t)srv->limits.request_timeout_s * 1000;
	pthread_mutex_lock(&srv->jobs_lock);
	while (!srv->stopping) {
		struct timespec until = itr_deadline_ms(250);
		pthread_cond_timedwait(&srv->reaper_wake, &srv->jobs_lock, &until);
		if (srv->stopping)
			break;
		pthread_mutex_unlock(&srv->jobs_lock);
		int64_t now = itr_clock_ms();
		pthread_mutex_lock(&srv->conns_lock);
		for (struct http_conn *c = srv->conns; c; c = c->next) {
			if (c->suspended || c->streaming || c->reaped || c->fd < 0)
				continue;
			int64_t age = now - c->phase_start_ms;
			bool late_headers = header_ms && c->awaiting_headers && age > header_ms;
			bool late_request = request_ms && age > request_ms;
			if (!late_headers && !late_request)
				continue;
			/* The socket stays MHD's (it closes it after the closed
			 * notification, which waits for this lock): shutting it
			 * down only makes MHD see the end of the connection.
			 * A request under way gets its 408 first, in one
			 * non-blocking send, while MHD only reads: not an idle
			 * keep-alive connection (no request to answer), nor one
			 * whose answer MHD is writing (answering is set under
			 * this lock before MHD may write; what it writes after
			 * the shutdown fails). */
			c->reaped = true;
			atomic_fetch_add_explicit(late_headers ? &srv->stat_reaped_headers
			                                       : &srv->stat_reaped_request,
			                          1, memory_order_relaxed);
			answer_and_end(c->fd, srv->too_late,
			               c->line_seen && !c->answering ? srv->too_late_len : 0);
		}
		pthread_mutex_unlock(&srv->conns_lock);
		pthread_mutex_lock(&srv->jobs_lock);
	}
	pthread_mutex_unlock(&srv->jobs_lock);
	return NULL;
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

	if (st->queued) {
		/* resumed by the worker that ran the handler */
		if (!atomic_load_explicit(&st->job_done, memory_order_acquire))
			return MHD_YES;
		conn_set_suspended(st->conn, false);
		st->queued = false;
		return send_handler_response(conn, &st->resp);
	}

	if (!st->headers_done) {
		st->headers_done = true;
		if (st->conn)
			phase_restart(st->conn, false);
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
	if (st->route->offload && srv->nworkers)
		return offload(srv, conn, st, url, method);
	return dispatch(conn, st, url, method);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* The connection limit must stay under the file limit, or accept() fails
 * with EMFILE for everyone (and MHD stops accepting for a while): raise the
 * soft limit to the hard one, and keep room for the files and sockets the
 * rest of the process needs. */
static unsigned fit_connection_limit(unsigned wanted)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return wanted;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl); /* best effort; re-read below */
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return wanted;
	const rlim_t reserve = 64 + rl.rlim_cur / 8;
	rlim_t room = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 16;
	if (!wanted || room < wanted)
		return (unsigned)(room > 1000000 ? 1000000 : room);
	return wanted;
}

static int start_threads(struct itr_http_server *srv, char *err, size_t errlen)
{
	bool any_offload = false;
	for (size_t i = 0; i < srv->nroutes; i++)
		any_offload |= srv->routes[i].offload;
	if (any_offload && srv->limits.workers) {
		srv->workers = calloc(srv->limits.workers, sizeof(*srv->workers));
		if (!srv->workers) {
			snprintf(err, errlen, "http: out of memory");
			return -1;
		}
		for (unsigned i = 0; i < srv->limits.workers; i++) {
			srv->workers[i].srv = srv;
			if (pthread_create(&srv->workers[i].thread, NULL, worker_main,
			                   &srv->workers[i]) != 0) {
				snprintf(err, errlen, "http: cannot start worker threads");
				return -1;
			}
			srv->nworkers++;
		}
	}
	if (srv->limits.header_timeout_s || srv->limits.request_timeout_s) {
		if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
			snprintf(err, errlen, "http: cannot start the deadline thread");
			return -1;
		}
		srv->reaper_running = true;
	}
	return 0;
}

static void stop_threads(struct itr_http_server *srv)
{
	pthread_mutex_lock(&srv->jobs_lock);
	srv->stopping = true;
	pthread_cond_broadcast(&srv->jobs_wake);
	pthread_cond_broadcast(&srv->reaper_wake);
	pthread_mutex_unlock(&srv->jobs_lock);
	/* Workers answer what is queued before they leave: no connection
	 * stays suspended when MHD stops. */
	for (size_t i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i].thread, NULL);
	free(srv->workers);
	srv->workers = NULL;
	srv->nworkers = 0;
	if (srv->reaper_running)
		pthread_join(srv->reaper, NULL);
	srv->reaper_running = false;
}

/* ---- the fast lane (see the top of this file) ------------------------------ */

/* The route the lane answers for a parsed request, or NULL. */
static const struct http_route *lane_route(const struct itr_http_server *srv, const char *path)
{
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct http_route *r = &srv->routes[i];
		if (r->lane && method_matches(r, "GET") && strcmp(r->path, path) == 0)
			return r;
	}
	return NULL;
}

/* Take the len peeked bytes of the request off the socket (or close sends
 * a RST instead of the FIN); false if they are not all there. */
static bool lane_take(int fd, size_t len)
{
	char sink[512];
	while (len) {
		ssize_t n = recv(fd, sink, len < sizeof(sink) ? len : sizeof(sink), MSG_DONTWAIT);
		if (n <= 0)
			return false;
		len -= (size_t)n;
	}
	return true;
}

/* The lane's answer on fd, then the close, which adds the FIN to it. */
static void lane_write_close(struct itr_http_server *srv, int fd, struct iovec *iov, size_t n)
{
	/* MSG_MORE: held back until the close. A fresh socket's buffer takes
	 * any answer of these routes; if it does not, the client gets less,
	 * and the lane never waits. */
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
	(void)sendmsg(fd, &msg, MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
	atomic_fetch_add_explicit(&srv->stat_lane_answered, 1, memory_order_relaxed);
	close(fd);
}

/* Send the handler's answer on a lane connection and close it; resp's
 * parts are freed. */
static void lane_send(struct itr_http_server *srv, int fd, struct itr_http_response *resp)
{
	int status = resp->status ? resp->status : 200;
	const char *body = resp->body;
	size_t body_len = resp->body_len;
	if (resp->shared) {
		body = resp->shared->data;
		body_len = resp->shared->len;
	} else if (resp->stream || resp->gen_fill) { /* not for lane routes */
		status = 500;
		body = NULL;
		body_len = 0;
	}
	char head[256];
	size_t head_len = itr_lane_head(head, sizeof(head), status, resp->content_type, body_len);
	struct iovec iov[2] = {{head, head_len}, {(void *)body, body_len}};
	lane_write_close(srv, fd, iov, body_len ? 2 : 1);
	response_release(resp);
}

static void lane_job_finish(struct itr_http_server *srv, struct http_request_state *st)
{
	lane_send(srv, st->lane_fd, &st->resp);
	free(st->uri); /* the request's strings */
	free(st);
}

/* An offloaded route's request from the lane: to the worker pool with a
 * copy of its strings, or (no room) the fixed 503, as libmicrohttpd's. */
static void lane_offload(struct itr_http_server *srv, int fd, const struct http_route *route,
                         const struct itr_http_request *req)
{
	size_t lp = strlen(req->path) + 1, lq = strlen(req->query) + 1;
	size_t lx = req->forwarded_for ? strlen(req->forwarded_for) + 1 : 0;
	size_t lf = req->forwarded ? strlen(req->forwarded) + 1 : 0;
	struct http_request_state *st = calloc(1, sizeof(*st));
	char *strings = malloc(lp + lq + lx + lf);
	if (st && strings) {
		st->uri = strings;
		st->lane_job = true;
		st->lane_fd = fd;
		st->route = route;
		st->req = *req;
		st->req.path = memcpy(strings, req->path, lp);
		st->req.query = memcpy(strings + lp, req->query, lq);
		if (lx)
			st->req.forwarded_for = memcpy(strings + lp + lq, req->forwarded_for, lx);
		if (lf)
			st->req.forwarded = memcpy(strings + lp + lq + lx, req->forwarded, lf);
		if (job_submit(srv, NULL, st))
			return;
	}
	free(strings);
	free(st);
	atomic_fetch_add_explicit(&srv->stat_busy, 1, memory_order_relaxed);
	struct iovec iov = {srv->busy, srv->busy_len};
	lane_write_close(srv, fd, &iov, 1);
}

/* Answer one connection whose whole request is in buf[0..len) (peeked, not
 * yet read): read it, run the handler here (or on the worker pool for an
 * offloaded route), send, close. */
static void lane_answer(struct itr_http_server *srv, int fd, const struct http_route *route,
                        const struct itr_lane_request *lr, const struct sockaddr_storage *peer,
                        socklen_t peer_len, size_t len)
{
	if (!lane_take(fd, len)) {
		close(fd);
		return;
	}
	struct itr_http_request req = {
	    .method = "GET",
	    .path = lr->path,
	    .query = lr->query,
	    .forwarded_for = lr->forwarded_for,
	    .forwarded = lr->forwarded,
	    .peer_len = peer_len,
	};
	memcpy(&req.peer, peer, peer_len);
	if (route->offload && srv->nworkers) {
		lane_offload(srv, fd, route, &req);
		return;
	}
	struct itr_http_response resp = {.status = 200, .content_type = "text/plain"};
	route->handler(&req, &resp, route->arg);
	lane_send(srv, fd, &resp);
}

static void *lane_main(void *arg)
{
	struct itr_http_server *srv = arg;
	/* the request line and headers the lane reads at most; a request that
	 * is longer is libmicrohttpd's, which answers 414 or reads it */
	size_t cap = srv->limits.max_query + 4096;
	if (cap > 64 * 1024)
		cap = 64 * 1024;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	while (!atomic_load(&srv->lane_stop)) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int fd = accept4(srv->lane_fd, (struct sockaddr *)&peer, &peer_len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				struct pollfd p = {.fd = srv->lane_fd, .events = POLLIN};
				(void)poll(&p, 1, 250); /* also how often the stop flag is seen */
			} else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			           errno == ENOMEM) {
				usleep(10 * 1000); /* out of descriptors: let some close */
			}
			continue;
		}
		ssize_t n = recv(fd, buf, cap, MSG_PEEK | MSG_DONTWAIT);
		struct itr_lane_request lr;
		const struct http_route *route = NULL;
		if (n > 0 && (size_t)n < cap &&
		    itr_lane_parse(buf, (size_t)n, srv->limits.max_query, &lr))
			route = lane_route(srv, lr.path);
		if (route) {
			lane_answer(srv, fd, route, &lr, &peer, peer_len, (size_t)n);
			continue;
		}
		bool over_address = address_at_limit(srv, &peer);
		if (over_address || (srv->max_connections &&
		                     atomic_load_explicit(&srv->mhd_open, memory_order_relaxed) >=
		                         srv->max_connections)) {
			atomic_fetch_add_explicit(over_address ? &srv->stat_over_address_limit
			                                       : &srv->stat_over_total_limit,
			                          1, memory_order_relaxed);
			/* what it sent is read first: closing on unread data
			 * would reset the connection, answer and all */
			if (n > 0)
				(void)lane_take(fd, (size_t)n);
			struct iovec iov = over_address
			                       ? (struct iovec){srv->too_many, srv->too_many_len}
			                       : (struct iovec){srv->busy, srv->busy_len};
			lane_write_close(srv, fd, &iov, 1);
			continue;
		}
		atomic_fetch_add_explicit(&srv->stat_lane_handed, 1, memory_order_relaxed);
		if (handed_mark(srv, fd))
			atomic_fetch_add_explicit(&srv->stat_lane_dropped, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&srv->mhd_open, 1, memory_order_relaxed);
		/* on failure MHD has closed it, and told nobody */
		if (MHD_add_connection(srv->daemon, fd, (const struct sockaddr *)&peer, peer_len) !=
		    MHD_YES) {
			handed_clear(srv, fd);
			atomic_fetch_sub_explicit(&srv->mhd_open, 1, memory_order_relaxed);
		}
	}
	free(buf);
	return NULL;
}

/* The lane's listening socket on sa (as libmicrohttpd would make it), or
 * -1 with err saying what of what failed. */
static int lane_listen(const struct sockaddr_storage *sa, bool dual_stack, const char *what,
                       char *err, size_t errlen)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "http: cannot listen on %s: socket: %s", what,
		         strerror(errno));
		return -1;
	}
	int one = 1, v6only = dual_stack ? 0 : 1;
	/* a connection is accepted once its first data is in (or after 1 s) */
	int defer_s = 1;
	socklen_t sa_len =
	    sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (sa->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof(defer_s)) < 0 ||
	    bind(fd, (const struct sockaddr *)sa, sa_len) < 0 || listen(fd, SOMAXCONN) < 0) {
		snprintf(err, errlen, "http: cannot listen on %s: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static bool has_lane_routes(const struct itr_http_server *srv)
{
	for (size_t i = 0; i < srv->nroutes; i++)
		if (srv->routes[i].lane)
			return true;
	return false;
}

static void lane_stop(struct itr_http_server *srv)
{
	if (srv->lane_running) {
		atomic_store(&srv->lane_stop, true);
		pthread_join(srv->lane, NULL);
		srv->lane_running = false;
	}
	if (srv->lane_fd >= 0)
		close(srv->lane_fd);
	srv->lane_fd = -1;
}

/* A bit for every descriptor the process may open (the file limit, which
 * fit_connection_limit has raised; at most 2^24 descriptors, 2 MiB). */
static int handed_alloc(struct itr_http_server *srv)
{
	struct rlimit rl;
	size_t fds = 1u << 24;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < fds)
		fds = (size_t)rl.rlim_cur;
	size_t words = (fds + HANDED_WORD_BITS - 1) / HANDED_WORD_BITS;
	srv->handed_bits = calloc(words, sizeof(*srv->handed_bits));
	if (!srv->handed_bits)
		return -1;
	srv->handed_fds = words * HANDED_WORD_BITS;
	return 0;
}

/* Places over the lane's limit in MHD's own: connections the lane counted
 * closed that MHD still counts (start_daemon). */
#define MHD_CLOSE_SLACK 64

/* listen_fd >= 0: a bound, listening socket (a Unix one); else sa, or
 * with MHD_USE_NO_LISTEN_SOCKET in flags none (the lane feeds it). */
static int start_daemon(struct itr_http_server *srv, unsigned flags, const struct sockaddr *sa,
                        uint16_t port, int listen_fd, const char *what, char *err, size_t errlen)
{
	if (srv->daemon) {
		snprintf(err, errlen, "http: already started");
		return -1;
	}
	/* The request line and headers must fit MHD's per-connection pool;
	 * grow it when the configured URI limit needs more than the default. */
	size_t pool = 32 * 1024;
	if (srv->limits.max_query + 16 * 1024 > pool)
		pool = srv->limits.max_query + 16 * 1024;
	srv->max_connections = fit_connection_limit(srv->limits.max_connections);
	/* counted here, not by MHD's own per-IP limit: see refuse_connection */
	if (srv->limits.per_ip_connections && listen_fd < 0) {
		srv->addr_counts = calloc(ADDR_BUCKETS, sizeof(*srv->addr_counts));
		if (!srv->addr_counts) {
			snprintf(err, errlen, "http: out of memory");
			return -1;
		}
	}
	if (start_threads(srv, err, errlen) < 0) {
		stop_threads(srv);
		return -1;
	}
	/* suspend/resume: offloaded requests wait for their worker, and
	 * streamed bodies (http_stream.c) wait without polling */
	flags |= MHD_ALLOW_SUSPEND_RESUME;

	struct MHD_OptionItem opts[16];
	size_t k = 0;
	if (listen_fd >= 0)
		opts[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL};
	else if (!(flags & MHD_USE_NO_LISTEN_SOCKET))
		opts[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)sa};
	opts[k++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_hook, srv};
	opts[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_done, srv};
	opts[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connection_notify, srv};
	opts[k++] =
	    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)pool, NULL};
	if (srv->max_connections) {
		/* Fed by the lane, MHD must never reach its own limit; the lane
		 * keeps the total under max_connections. With a thread pool MHD
		 * gives each polling thread limit / threads, and
		 * MHD_add_connection may queue a connection on a thread whose
		 * share is full: 0.9.75 then wedged that thread (gdb: blocked on
		 * a mutex for good), and with it every connection it had and the
		 * shutdown; hence max_connections per thread. And MHD counts a
		 * connection closed only after the close callback, where the lane
		 * does: a connection handed in between found MHD at its limit and
		 * was closed without an answer; hence the slack. */
		unsigned limit = srv->max_connections;
		if (flags & MHD_USE_NO_LISTEN_SOCKET)
			limit = limit * (srv->limits.threads > 1 ? srv->limits.threads : 1) +
			        MHD_CLOSE_SLACK;
		opts[k++] =
		    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)limit, NULL};
	}
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
		snprintf(err, errlen, "http: cannot listen on %s%s%s", what, errno ? ": " : "",
		         errno ? strerror(errno) : "");
		stop_threads(srv);
		return -1;
	}
	return 0;
}

int itr_http_start(struct itr_http_server *srv, const char *addr, uint16_t port, char *err,
                   size_t errlen)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;

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
	char what[160];
	snprintf(what, sizeof(what), "%s port %u", addr, port);
	if (has_lane_routes(srv)) {
		srv->lane_fd =
		    lane_listen(&ss, (flags & MHD_USE_DUAL_STACK) != 0, what, err, errlen);
		if (srv->lane_fd < 0)
			return -1;
		struct sockaddr_storage bound;
		socklen_t blen = sizeof(bound);
		getsockname(srv->lane_fd, (struct sockaddr *)&bound, &blen);
		srv->port =
		    ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                                      : ((struct sockaddr_in *)&bound)->sin_port);
		flags = (flags & ~(unsigned)(MHD_USE_DUAL_STACK | MHD_USE_IPv6)) |
		        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
		srv->lane_feeds = true;
		if (start_daemon(srv, flags, NULL, 0, -1, what, err, errlen) < 0) {
			lane_stop(srv);
			return -1;
		}
		/* after start_daemon, which raises the file limit the bits cover */
		if (handed_alloc(srv) < 0) {
			snprintf(err, errlen, "http: out of memory");
			lane_stop(srv);
			return -1;
		}
		if (pthread_create(&srv->lane, NULL, lane_main, srv) != 0) {
			snprintf(err, errlen, "http: cannot start the lane thread");
			lane_stop(srv);
			return -1;
		}
		srv->lane_running = true;
		return 0;
	}
	if (start_daemon(srv, flags, (const struct sockaddr *)&ss, port, -1, what, err, errlen))
		return -1;
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : port;
	return 0;
}

/* Whether a live listener answers at a socket path. Removing its file
 * would cut a running daemon off its admin API while it keeps running, so
 * only a dead socket (connection refused) is replaced. A daemon that is
 * shutting down gets a few seconds to close its listener: restarts
 * overlap by that much. */
static bool unix_socket_in_use(const struct sockaddr_un *sun)
{
	for (int tries = 0; tries < 30; tries++) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0)
			return false;
		int rc = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
		int saved = errno;
		close(probe);
		/* EAGAIN: alive, with a full backlog */
		if (rc < 0 && saved != EAGAIN)
			return false;
		usleep(100 * 1000);
	}
	return true;
}

int itr_http_start_unix(struct itr_http_server *srv, const char *path, mode_t mode, gid_t group,
                        char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (!path || strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "http: Unix socket path too long");
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "http: socket: %s", strerror(errno));
		return -1;
	}
	/* A socket file left by an earlier run is replaced; anything else
	 * at that path is not ours to remove. */
	struct stat sb;
	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
		if (unix_socket_in_use(&sun)) {
			snprintf(err, errlen,
			         "http: Unix socket %s is in use: another process (another "
			         "itrackerd?) answers on it; give this one its own path",
			         path);
			close(fd);
			return -1;
		}
		unlink(path);
	}
	/* Created with no access for anyone, then opened up to mode: no
	 * window in which another user can connect. */
	mode_t old = umask(0777);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0 || (group != (gid_t)-1 && chown(path, (uid_t)-1, group) < 0) ||
	    chmod(path, mode) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "http: Unix socket %s: %s", path, strerror(errno));
		close(fd);
		if (rc == 0)
			unlink(path);
		return -1;
	}
	char what[160];
	snprintf(what, sizeof(what), "%s", path);
	if (start_daemon(srv, MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, NULL, 0, fd, what,
	                 err, errlen)) {
		close(fd);
		unlink(path);
		return -1;
	}
	srv->unix_path = strdup(path);
	if (stat(path, &sb) == 0) {
		srv->unix_dev = sb.st_dev;
		srv->unix_ino = sb.st_ino;
	}
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
	/* The lane first: it hands connections to MHD. Then the workers:
	 * they resume what they hold, so MHD can stop. */
	lane_stop(srv);
	stop_threads(srv);
	if (srv->daemon) {
		/* MHD must not stop with suspended connections: end the streams
		 * and give the polling thread a moment to send their last bytes. */
		for (int i = 0; i < 50 && itr_http_stream_live_count() > 0; i++) {
			itr_http_stream_close_all();
			usleep(2000);
		}
		MHD_stop_daemon(srv->daemon);
	}
	if (srv->unix_path) {
		/* another daemon may have replaced it meanwhile: not ours then */
		struct stat sb;
		if (lstat(srv->unix_path, &sb) == 0 && sb.st_dev == srv->unix_dev &&
		    sb.st_ino == srv->unix_ino)
			unlink(srv->unix_path);
		free(srv->unix_path);
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
	free(srv->addr_counts); /* empty: every connection has closed */
	free(srv->handed_bits);
	pthread_mutex_destroy(&srv->conns_lock);
	pthread_mutex_destroy(&srv->jobs_lock);
	pthread_cond_destroy(&srv->jobs_wake);
	pthread_cond_destroy(&srv->reaper_wake);
	free(srv);
}
