/* http.h - one HTTP listener (libmicrohttpd) shared by every service:
 * tracker, P4P JSON, ALTO and metrics register exact-path routes on it.
 */
#ifndef ITR_HTTP_H
#define ITR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct itr_http_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* without the query string */
	const char *query;  /* raw query string after '?', "" if none */
	const char *body;   /* NUL-terminated copy, NULL if none */
	size_t body_len;
	const char *content_type;  /* NULL if absent */
	const char *accept;        /* NULL if absent */
	const char *forwarded_for; /* X-Forwarded-For, NULL if absent */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct itr_http_response {
	int status;               /* default 200 */
	const char *content_type; /* static string */
	char *body;               /* malloc'ed, freed by the server */
	size_t body_len;
	/* Instead of a body: a stream that other threads keep writing to
	 * (http_stream.h, itr_http_set_stream). */
	struct itr_http_stream *stream;
};

typedef void (*itr_http_handler)(const struct itr_http_request *req, struct itr_http_response *resp,
                                 void *arg);

struct itr_http_limits {
	size_t max_body;  /* bytes; larger bodies get 413 */
	size_t max_query; /* bytes; longer URLs get 414 */
	unsigned max_connections;
	unsigned connection_timeout_s;
	unsigned threads; /* 0 or 1: one epoll polling thread; more: MHD thread pool */
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
/* Hand ptr to the server: release(ptr) runs in itr_http_free after the
 * listener has stopped (for state that route handlers use as arg). */
int itr_http_attach(struct itr_http_server *srv, void *ptr, void (*release)(void *ptr));
void itr_http_free(struct itr_http_server *srv); /* stops if running */

/* Helpers for handlers. */
void itr_http_set_body(struct itr_http_response *resp, int status, const char *content_type,
                       char *body, size_t len);
/* %-decode s[0..len) into out (at most outlen bytes written; out may be
 * NULL); returns the full decoded length or -1 on a malformed escape. '+'
 * stays '+': info_hash bytes are binary and clients escape a literal plus
 * as %2B. The one query decoder: every handler reads bytes alike. */
long itr_http_percent_decode(const char *s, size_t len, uint8_t *out, size_t outlen);
/* Decode the value of key in a query string (first occurrence); returns
 * length or -1 if absent; binary-safe (info_hash). %XX escapes are decoded,
 * '+' is kept literally; -2 on a malformed escape. At most outlen bytes are
 * written (the return value is the full length, compare it); a NUL follows
 * the value when it fits. "key" without '=' has the empty value. */
long itr_http_query_get(const char *query, const char *key, uint8_t *out, size_t outlen);

#endif
