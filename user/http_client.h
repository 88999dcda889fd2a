/* http_client.h - the one HTTP/1.1 client: the proxy's upstream tracker
 * exchanges (proxy.c) and itrackerctl's calls to the daemon.
 *
 * One request per connection ("Connection: close"), bounded in every
 * direction: a single deadline covers connect, send and receive (an
 * upstream that accepts and never answers costs the timeout, not a
 * thread), and the answer may not exceed max_response bytes. Answers with
 * Content-Length, chunked transfer coding, or read-until-close bodies are
 * understood. Lines end in CRLF (RFC 9112); a bare LF is accepted as well,
 * the same way everywhere (status line, header fields, chunk sizes, chunk
 * ends, trailers), and a CR anywhere else in a line is an error.
 */
#ifndef ITR_HTTP_CLIENT_H
#define ITR_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "clock.h" /* itr_clock_ms: the clock of every deadline here */

#define ITR_HTTP_CLIENT_TIMEOUT_MS   5000        /* default deadline of one exchange */
#define ITR_HTTP_CLIENT_MAX_RESPONSE (1u << 20)  /* default cap on an answer's bytes */
#define ITR_HTTP_CLIENT_MAX_HEADER   (64u << 10) /* status line and header fields */
#define ITR_HTTP_CLIENT_MAX_REQ_HEAD (16u << 10) /* our request line and fields */

/* "[http://]host[:port][/path][?query]"; host may be an [IPv6] literal. */
struct itr_http_url {
	char scheme[8];      /* "http", "udp", ... ("" when the URL gave none) */
	char host[256];      /* without the brackets of an IPv6 literal */
	char port[8];        /* as given, or default_port */
	char authority[300]; /* host[:port] as written: the Host field */
	char path[2048];     /* from the first '/' or '?' on ("" if none) */
};

/* Parse url; a missing port is default_port (NULL: the URL must name
 * one). 0, or -1 with err saying what is wrong. */
int itr_http_url_parse(const char *url, const char *default_port, struct itr_http_url *out,
                       char *err, size_t errlen);

struct itr_http_client_request {
	const char *method; /* "GET", "POST" */
	const char *host;   /* the Host field */
	const char *target; /* "/path?query" */
	const char *user_agent;
	const char *accept;       /* NULL: no Accept field */
	const char *content_type; /* with a body; NULL: application/json */
	const void *body;         /* NULL: none (a POST still says Content-Length: 0) */
	size_t body_len;
	const char *authorization; /* NULL: no Authorization field */
};

struct itr_http_client_limits {
	unsigned timeout_ms; /* connect + send + receive together; 0: the default */
	size_t max_response; /* status line, fields and body; 0: the default */
};

struct itr_http_client_response {
	int status;
	char *body; /* malloc'ed and NUL-terminated (also when empty); free() it */
	size_t body_len;
	struct sockaddr_storage local; /* our end of the connection */
};

enum itr_http_client_result {
	ITR_HTTP_CLIENT_OK = 0,
	ITR_HTTP_CLIENT_UNREACHABLE = -1, /* could not resolve or connect */
	ITR_HTTP_CLIENT_TIMEOUT = -2,     /* the deadline passed */
	ITR_HTTP_CLIENT_BROKEN = -3, /* send/receive failed, or the answer is not HTTP we take */
	ITR_HTTP_CLIENT_NO_MEMORY = -4,
};

/* One exchange with the server at addr. On ITR_HTTP_CLIENT_OK resp is
 * filled (any status); otherwise err says why (without naming the peer:
 * callers add that) and resp->body is NULL. */
int itr_http_client_exchange(const struct sockaddr *addr, socklen_t addrlen,
                             const struct itr_http_client_request *req,
                             const struct itr_http_client_limits *lim,
                             struct itr_http_client_response *resp, char *err, size_t errlen);

/* The same, resolving host and port first and trying each address in
 * turn until one connects, all within the one deadline. */
int itr_http_client_exchange_host(const char *host, const char *port,
                                  const struct itr_http_client_request *req,
                                  const struct itr_http_client_limits *lim,
                                  struct itr_http_client_response *resp, char *err, size_t errlen);

/* The exchange's deadline wait, also driving the proxy's BEP 15 client: a
 * poll for events on fd until deadline_ms on itr_clock_ms's clock (1 ready,
 * 0 timed out, -1 error with errno). */
int itr_wait_fd(int fd, short events, int64_t deadline_ms);

/* Body bytes of a streamed answer as they arrive, decoded (chunked or
 * not); also called with len 0 at least every 200 ms while nothing
 * arrives, so the caller can stop. A non-zero return ends the stream. */
typedef int (*itr_http_body_fn)(const char *bytes, size_t len, void *arg);

/* The incremental body decoder under itr_http_client_stream_host: feed
 * it bytes as they come; it hands decoded data to on_body. feed returns 1
 * when the body ended or on_body said stop, 0 for more, -1 malformed;
 * *used is what it took (keep the rest, a partial chunk-size line, and
 * feed it again with the next bytes). Pure: a fuzz target. */
struct itr_http_body_decoder {
	bool chunked;
	bool done;
	uint64_t chunk_left; /* data bytes of the current chunk still to come */
	bool want_end;       /* the chunk's data is in; its line end is next */
	itr_http_body_fn on_body;
	void *arg;
};
void itr_http_body_decoder_init(struct itr_http_body_decoder *b, bool chunked,
                                itr_http_body_fn on_body, void *arg);
int itr_http_body_decoder_feed(struct itr_http_body_decoder *b, const char *buf, size_t len,
                               size_t *used);

/* A long-lived answer (server-sent events): connect and send within
 * connect_timeout_ms, then hand the body of a 200 answer to on_body until
 * the server ends it, on_body says stop (ITR_HTTP_CLIENT_OK both), or
 * nothing came for idle_timeout_ms (TIMEOUT). *status gets the answer's
 * status; the body of any other status is not streamed. */
int itr_http_client_stream_host(const char *host, const char *port,
                                const struct itr_http_client_request *req,
                                unsigned connect_timeout_ms, unsigned idle_timeout_ms, int *status,
                                itr_http_body_fn on_body, void *arg, char *err, size_t errlen);

/* What itr_http_response_parse found. */
struct itr_http_parsed {
	int status;
	size_t body_off; /* the body (decoded, for chunked) is buf[body_off..+body_len) */
	size_t body_len;
};

/* Parse a response received so far: buf[0..len), eof when the server has
 * closed the connection (a body without a length ends there). 1: complete,
 * out filled, a chunked body decoded in place; 0: more bytes are needed;
 * -1: malformed (or the header section is over ITR_HTTP_CLIENT_MAX_HEADER).
 * Interim 1xx answers are skipped. Pure: the fuzz target. */
int itr_http_response_parse(char *buf, size_t len, bool eof, struct itr_http_parsed *out);

#endif
