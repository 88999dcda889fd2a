/* http_lane.h - the reader and writer of the HTTP fast lane (http.c): a
 * request that the lane may answer by itself, read from the bytes that came
 * with the connection, and the head of its answer.
 */
#ifndef ITR_HTTP_LANE_H
#define ITR_HTTP_LANE_H

#include <stdbool.h>
#include <stddef.h>

struct itr_lane_request {
	char *path;          /* the raw path, NUL-terminated in the buffer */
	char *query;         /* the raw query string after '?', "" if none */
	char *forwarded_for; /* X-Forwarded-For, NULL if absent */
	char *forwarded;     /* Forwarded, NULL if absent */
};

/* Whether buf[0..len) is exactly one whole request that the lane answers:
 * a GET with an HTTP/1.0 or 1.1 request line, a target of printable
 * characters starting with '/' and no longer than max_target (0: any),
 * well-formed header lines (CRLF only, no folding), a Host header for
 * HTTP/1.1, no body (no Content-Length, Transfer-Encoding or Expect), no
 * Upgrade, at most one X-Forwarded-For and one Forwarded, a connection to
 * be closed after the answer (HTTP/1.1 "Connection: close"; HTTP/1.0
 * without keep-alive), and nothing after the blank line. Anything else is
 * the general server's (false). On true, the strings of out are cut in
 * place in buf. */
bool itr_lane_parse(char *buf, size_t len, size_t max_target, struct itr_lane_request *out);

/* The status line and headers of an answer of body_len bytes that closes
 * the connection (a 503 with Retry-After: 1), for the lane and for the
 * fixed answers http.c writes straight to a socket; the length written (0
 * if cap is too small). */
size_t itr_lane_head(char *out, size_t cap, int status, const char *content_type, size_t body_len);

#endif
