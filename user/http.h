/* http.h - one HTTP listener (libmicrohttpd, with a fast lane in front
 * for closing GETs of lane routes: see http.c) shared by every service:
 * tracker, P4P JSON, ALTO and metrics register exact-path routes on it.
 */
#ifndef ITR_HTTP_H
#define ITR_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct itr_http_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* without the query string */
	const char *query;  /* raw query string after '?', "" if none */
	const char *body;   /* NUL-terminated copy, NULL if none */
	size_t body_len;
	const char *content_type;  /* NULL if absent */
	const char *accept;        /* NULL if absent */
	const char *forwarded_for; /* X-Forwarded-For, NULL if absent */
	const char *forwarded;     /* Forwarded (RFC 7239), NULL if absent */
	const char *authorization; /* NULL if absent */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct itr_http_shared;

struct itr_http_response {
	int status;               /* default 200 */
	const char *content_type; /* static string */
	char *body;               /* malloc'ed, freed by the server */
	size_t body_len;
	struct itr_http_shared *shared; /* instead of body: see itr_http_set_shared */
	/* Instead of a body: a stream that other threads keep writing to
	 * (http_stream.h, itr_http_set_stream). */
	struct itr_http_stream *stream;
	/* Instead of a body: one made as it is sent (itr_http_set_generator). */
	long (*gen_fill)(void *cls, char *buf, size_t max);
	void (*gen_free)(void *cls);
	void *gen_cls;
};

typedef void (*itr_http_handler)(const struct itr_http_request *req, struct itr_http_response *resp,
                                 void *arg);
/* A handler for n requests at once: resps[i] answers reqs[i]. */
typedef void (*itr_http_batch_handler)(const struct itr_http_request *const *reqs,
                                       struct itr_http_response *const *resps, size_t n, void *arg);

/* The most requests one batch handler call gets. */
#define ITR_HTTP_BATCH_MAX 32

struct itr_http_limits {
	size_t max_body;  /* bytes; larger bodies get 413 */
	size_t max_query; /* bytes; longer URLs get 414 */
	unsigned max_connections;
	unsigned connection_timeout_s;
	unsigned threads;            /* 0 or 1: one epoll polling thread; more: MHD thread pool */
	unsigned per_ip_connections; /* 0: no limit; past it: 503 at the accept */
	/* Absolute deadlines (0: none), from the connect or the end of the
	 * previous request on the connection: request line and headers
	 * complete, and the whole request answered (body in, answer out). */
	unsigned header_timeout_s;
	unsigned request_timeout_s;
	/* The pool that runs offloaded routes (itr_http_offload); 0: they run
	 * inline like the others. queue: most requests waiting for it (0: 64);
	 * queue_per_address: most requests from one address running or
	 * waiting (0: half the workers, at least one). */
	unsigned workers;
	unsigned queue;
	unsigned queue_per_address;
};

struct itr_http_server;

/* Routes must be added before start. method NULL matches any method. */
struct itr_http_server *itr_http_new(const struct itr_http_limits *limits);
int itr_http_route(struct itr_http_server *srv, const char *method, const char *path,
                   itr_http_handler handler, void *arg);
/* addr: "127.0.0.1", "::", "0.0.0.0"...; port 0 picks a free one. */
int itr_http_start(struct itr_http_server *srv, const char *addr, uint16_t port, char *err,
                   size_t errlen);
uint16_t itr_http_port(const struct itr_http_server *srv);

/* Whether two peers are the same client address (the port aside); every
 * Unix socket peer is one local client. For per-address limits. */
bool itr_http_same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* Listen on a Unix socket instead (created with mode, group unless
 * (gid_t)-1; a stale socket file is replaced, removed again on free). */
int itr_http_start_unix(struct itr_http_server *srv, const char *path, mode_t mode, gid_t group,
                        char *err, size_t errlen);
/* Run the handlers of path (every method) on the worker pool: for work
 * that grows with the request or waits on another server. Before start. */
int itr_http_offload(struct itr_http_server *srv, const char *path);
/* Let the fast lane answer closing GETs of path on a TCP listener
 * (http.c): for handlers that answer with a plain body. An offloaded
 * path's handler still runs on the worker pool. Before start. */
int itr_http_lane(struct itr_http_server *srv, const char *path);
/* Run an offloaded path's requests (every method) in batches through fn
 * (arg: the route's): at most `runners` workers run them at a time, each
 * taking every queued request of the path, up to ITR_HTTP_BATCH_MAX. For
 * work whose cost is mostly a round trip that many requests can share:
 * while the runners wait, requests queue up and make the next batch.
 * Before start; the path must be offloaded. */
int itr_http_batch(struct itr_http_server *srv, const char *path, itr_http_batch_handler fn,
                   unsigned runners);

struct itr_http_stats {
	uint64_t reaped_headers;     /* connections shut for the header deadline */
	uint64_t reaped_request;     /* ... for the request deadline */
	uint64_t busy;               /* offloaded requests answered 503: pool full */
	uint64_t over_address_limit; /* connections answered 503: per-address limit */
	uint64_t over_total_limit;   /* ... the connection limit (the lane's) */
	uint64_t lane_answered;      /* requests the fast lane answered */
	uint64_t lane_handed;        /* connections it handed to libmicrohttpd */
	uint64_t lane_dropped;       /* ... that libmicrohttpd dropped unannounced */
	size_t jobs_queued, jobs_running;
	unsigned max_connections; /* in force, after fitting the file limit */
};
void itr_http_get_stats(struct itr_http_server *srv, struct itr_http_stats *st);
/* Hand ptr to the server: release(ptr) runs in itr_http_free after the
 * listener has stopped (for state that route handlers use as arg). */
int itr_http_attach(struct itr_http_server *srv, void *ptr, void (*release)(void *ptr));
void itr_http_free(struct itr_http_server *srv); /* stops if running */

/* Helpers for handlers. */
/* Answer with a body made a piece at a time while it is sent (chunked):
 * fill(cls, buf, max) writes at most max bytes and returns their number, 0
 * at the end, -1 on an error (the connection is cut); free(cls) runs once
 * the answer is done or dropped, whatever happened. For a large answer
 * that must not be held whole; fill runs on a polling thread, so each
 * piece must be cheap. */
void itr_http_set_generator(struct itr_http_response *resp, int status, const char *content_type,
                            long (*fill)(void *cls, char *buf, size_t max),
                            void (*free_cls)(void *cls), void *cls);
void itr_http_set_body(struct itr_http_response *resp, int status, const char *content_type,
                       char *body, size_t len);
/* %-decode s[0..len) into out (at most outlen bytes written; out may be
 * NULL); returns the full decoded length or -1 on a malformed escape. '+'
 * stays '+': info_hash bytes are binary and clients escape a literal plus
 * as %2B. The one query decoder: every handler reads bytes alike. */
long itr_http_percent_decode(const char *s, size_t len, uint8_t *out, size_t outlen);
/* A large answer built once and sent to many clients from the one copy:
 * reference counted, immutable once made. itr_http_shared_new takes data
 * (malloc'ed) with one reference, for the caller (a cache) to hold. */
struct itr_http_shared *itr_http_shared_new(char *data, size_t len);
struct itr_http_shared *itr_http_shared_ref(struct itr_http_shared *sh);
void itr_http_shared_unref(struct itr_http_shared *sh);
size_t itr_http_shared_len(const struct itr_http_shared *sh);
/* Answer with sh (a reference is taken; the caller keeps its own). */
void itr_http_set_shared(struct itr_http_response *resp, int status, const char *content_type,
                         struct itr_http_shared *sh);
/* Decode the value of key in a query string (first occurrence); returns
 * length or -1 if absent; binary-safe (info_hash). %XX escapes are decoded,
 * '+' is kept literally; -2 on a malformed escape. At most outlen bytes are
 * written (the return value is the full length, compare it); a NUL follows
 * the value when it fits. "key" without '=' has the empty value. */
long itr_http_query_get(const char *query, const char *key, uint8_t *out, size_t outlen);

#endif
