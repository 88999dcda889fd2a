/* http_client.c - the one HTTP/1.1 client (http_client.h): URL parsing,
 * the response parser and dechunker, and a deadline-bound exchange on a
 * non-blocking socket driven by poll.
 */
#include "http_client.h"
#include "clock.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- URLs ---------------------------------------------------------------- */

int itr_http_url_parse(const char *url, const char *default_port, struct itr_http_url *out,
                       char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	const char *rest = url;
	const char *sep = strstr(url, "://");
	if (sep) {
		size_t slen = (size_t)(sep - url);
		if (slen == 0 || slen >= sizeof(out->scheme)) {
			snprintf(err, errlen, "bad scheme");
			return -1;
		}
		memcpy(out->scheme, url, slen);
		rest = sep + 3;
	}
	size_t alen = strcspn(rest, "/?");
	if (alen == 0 || alen >= sizeof(out->authority)) {
		snprintf(err, errlen, "bad host");
		return -1;
	}
	memcpy(out->authority, rest, alen);
	const char *path = rest + alen;
	if (strlen(path) >= sizeof(out->path)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	strcpy(out->path, path);

	const char *a = out->authority, *port = NULL;
	size_t hlen;
	if (a[0] == '[') {
		const char *close = strchr(a, ']');
		if (!close || (close[1] && close[1] != ':')) {
			snprintf(err, errlen, "bad IPv6 literal");
			return -1;
		}
		a++;
		hlen = (size_t)(close - a);
		port = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strchr(a, ':');
		hlen = colon ? (size_t)(colon - a) : alen;
		port = colon ? colon + 1 : NULL;
	}
	if (hlen == 0 || hlen >= sizeof(out->host)) {
		snprintf(err, errlen, "bad host");
		return -1;
	}
	memcpy(out->host, a, hlen);
	if (port) {
		size_t plen = strspn(port, "0123456789");
		long v = plen && plen < 6 ? strtol(port, NULL, 10) : 0;
		if (port[plen] || v < 1 || v > 65535) {
			snprintf(err, errlen, "bad port");
			return -1;
		}
		snprintf(out->port, sizeof(out->port), "%ld", v);
	} else if (default_port) {
		snprintf(out->port, sizeof(out->port), "%s", default_port);
	} else {
		snprintf(err, errlen, "a port is needed");
		return -1;
	}
	return 0;
}

/* ---- the response parser ------------------------------------------------- */

/* The line starting at p (len bytes available): its length without the
 * terminator in *linelen, and where the next one starts in *next. 1, 0 if
 * no LF yet, -1 for a CR that does not end the line. */
static int next_line(const char *p, size_t len, size_t *linelen, size_t *next)
{
	const char *lf = memchr(p, '\n', len);
	size_t n = lf ? (size_t)(lf - p) : len;
	const char *cr = memchr(p, '\r', n);
	/* a CR may only stand right before the LF (or be the last byte so far,
	 * its LF still to come) */
	if (cr && cr != p + n - 1)
		return -1;
	if (!lf)
		return 0;
	*next = n + 1;
	*linelen = cr ? n - 1 : n;
	return 1;
}

static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* Trim optional white space (SP / HTAB) around [*v, *v + *n). */
static void trim_ows(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

struct head {
	int status;
	size_t end; /* first byte after the header section */
	bool chunked;
	long long content_length; /* -1: none */
};

/* One response head (status line and fields) at buf. 1, 0, -1 as
 * itr_http_response_parse. */
static int parse_head(const char *buf, size_t len, struct head *h)
{
	size_t pos = 0, n, next;
	size_t limit = len < ITR_HTTP_CLIENT_MAX_HEADER ? len : ITR_HTTP_CLIENT_MAX_HEADER;
	int rc = next_line(buf, limit, &n, &next);
	if (rc <= 0)
		return rc < 0 || len >= ITR_HTTP_CLIENT_MAX_HEADER ? -1 : 0;
	/* HTTP/1.x SP 3DIGIT [SP reason] */
	if (n < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
	    buf[8] != ' ' || (n > 12 && buf[12] != ' '))
		return -1;
	h->status = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		h->status = h->status * 10 + (buf[i] - '0');
	}
	if (h->status < 100)
		return -1;
	h->chunked = false;
	h->content_length = -1;
	pos = next;
	for (;;) {
		rc = next_line(buf + pos, limit - pos, &n, &next);
		if (rc <= 0)
			return rc < 0 || len >= ITR_HTTP_CLIENT_MAX_HEADER ? -1 : 0;
		const char *line = buf + pos;
		pos += next;
		if (n == 0)
			break;
		size_t name_len = 0;
		while (name_len < n && is_token_char((unsigned char)line[name_len]))
			name_len++;
		/* no white space before the colon, no obsolete line folding */
		if (name_len == 0 || name_len == n || line[name_len] != ':')
			return -1;
		const char *v = line + name_len + 1;
		size_t vlen = n - name_len - 1;
		trim_ows(&v, &vlen);
		if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
			if (vlen == 0 || vlen > 15 || strspn(v, "0123456789") < vlen)
				return -1;
			long long cl = 0;
			for (size_t i = 0; i < vlen; i++)
				cl = cl * 10 + (v[i] - '0');
			if (h->content_length >= 0 && h->content_length != cl)
				return -1; /* two different lengths: which body is real? */
			h->content_length = cl;
		} else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
			/* the last coding must be chunked: we asked for identity */
			const char *last = v + vlen;
			while (last > v && last[-1] != ',')
				last--;
			size_t llen = (size_t)(v + vlen - last);
			trim_ows(&last, &llen);
			if (llen != 7 || strncasecmp(last, "chunked", 7) != 0)
				return -1;
			h->chunked = true;
		}
	}
	h->end = pos;
	return 1;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* The chunk-size line at buf[0..len) (RFC 9112 7.1: hex size, BWS, chunk
 * extensions): 1 with the size and the bytes the line took, 0 incomplete,
 * -1 malformed. Shared by the whole-answer and the streaming decoders. */
static int chunk_size_line(const char *buf, size_t len, uint64_t *size, size_t *consumed)
{
	size_t n, next;
	int rc = next_line(buf, len, &n, &next);
	if (rc <= 0)
		return rc;
	size_t digits = 0;
	int v;
	*size = 0;
	while (digits < n && (v = hex_digit(buf[digits])) >= 0) {
		if (digits == 15)
			return -1; /* no sane chunk is that large */
		*size = *size * 16 + (uint64_t)v;
		digits++;
	}
	if (digits == 0)
		return -1;
	/* then only BWS and chunk extensions */
	size_t rest = digits;
	while (rest < n && (buf[rest] == ' ' || buf[rest] == '\t'))
		rest++;
	if (rest < n && buf[rest] != ';')
		return -1;
	*consumed = next;
	return 1;
}

/* The line terminator after a chunk's data: 1 with its length, 0
 * incomplete, -1 anything else. */
static int chunk_end(const char *buf, size_t len, size_t *consumed)
{
	size_t n;
	int rc = next_line(buf, len, &n, consumed);
	if (rc <= 0)
		return rc == 0 && len < 2 ? 0 : -1;
	return n == 0 ? 1 : -1;
}

/* Walk a chunked body at buf[0..len); with decode, move the data to the
 * front as it goes (the output never overtakes the input). 1 with the
 * decoded length in *out_len, 0 incomplete, -1 malformed. */
static int dechunk(char *buf, size_t len, bool decode, size_t *out_len)
{
	size_t in = 0, out = 0, n, next;
	for (;;) {
		uint64_t size;
		int rc = chunk_size_line(buf + in, len - in, &size, &next);
		if (rc <= 0)
			return rc;
		in += next;
		if (size == 0)
			break;
		if (size > len - in)
			return 0;
		if (decode)
			memmove(buf + out, buf + in, size);
		out += size;
		in += size;
		rc = chunk_end(buf + in, len - in, &next);
		if (rc <= 0)
			return rc;
		in += next;
	}
	/* trailer fields, ignored, up to the empty line */
	for (;;) {
		int rc = next_line(buf + in, len - in, &n, &next);
		if (rc <= 0)
			return rc;
		in += next;
		if (n == 0)
			break;
	}
	*out_len = out;
	return 1;
}

int itr_http_response_parse(char *buf, size_t len, bool eof, struct itr_http_parsed *out)
{
	size_t start = 0;
	struct head h;
	for (;;) {
		int rc = parse_head(buf + start, len - start, &h);
		if (rc <= 0)
			return rc < 0 || eof ? -1 : 0;
		h.end += start;
		/* interim answers (100 Continue, 103 Early Hints) have no body */
		if (h.status >= 200 || h.status == 101)
			break;
		start = h.end;
	}
	out->status = h.status;
	out->body_off = h.end;
	size_t avail = len - h.end;
	if (h.status == 101)
		return -1; /* no protocol switch was asked for */
	if (h.status == 204 || h.status == 304) {
		out->body_len = 0;
		return 1;
	}
	if (h.chunked) {
		size_t decoded;
		int rc = dechunk(buf + h.end, avail, false, &decoded);
		if (rc <= 0)
			return rc < 0 || eof ? -1 : 0;
		dechunk(buf + h.end, avail, true, &decoded);
		out->body_len = decoded;
		return 1;
	}
	if (h.content_length >= 0) {
		if ((unsigned long long)h.content_length > avail)
			return eof ? -1 : 0; /* closed early: a truncated answer */
		out->body_len = (size_t)h.content_length;
		return 1;
	}
	if (!eof)
		return 0;
	out->body_len = avail;
	return 1;
}

/* ---- the exchange -------------------------------------------------------- */

int itr_wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - itr_clock_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int rc = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

static int fail_wait(int rc, const char *what, char *err, size_t errlen)
{
	if (rc == 0) {
		snprintf(err, errlen, "timed out");
		return ITR_HTTP_CLIENT_TIMEOUT;
	}
	snprintf(err, errlen, "%s: %s", what, strerror(errno));
	return ITR_HTTP_CLIENT_BROKEN;
}

/* A connected non-blocking socket, or a negative result with err. */
static int connect_until(const struct sockaddr *addr, socklen_t addrlen, int64_t deadline,
                         char *err, size_t errlen, int *result)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		*result = ITR_HTTP_CLIENT_UNREACHABLE;
		return -1;
	}
	if (connect(fd, addr, addrlen) < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "%s", strerror(errno));
		*result = ITR_HTTP_CLIENT_UNREACHABLE;
		close(fd);
		return -1;
	}
	int rc = itr_wait_fd(fd, POLLOUT, deadline);
	if (rc <= 0) {
		*result = fail_wait(rc, "connect", err, errlen);
		close(fd);
		return -1;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		snprintf(err, errlen, "%s", strerror(soerr ? soerr : errno));
		*result = ITR_HTTP_CLIENT_UNREACHABLE;
		close(fd);
		return -1;
	}
	return fd;
}

static size_t request_head(const struct itr_http_client_request *req, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n", req->method,
	                 req->target, req->host, req->user_agent ? req->user_agent : "itracker");
	size_t len = n < 0 ? cap : (size_t)n;
	if (len < cap && req->accept) {
		n = snprintf(out + len, cap - len, "Accept: %s\r\n", req->accept);
		len = n < 0 ? cap : len + (size_t)n;
	}
	if (len < cap && req->authorization) {
		n = snprintf(out + len, cap - len, "Authorization: %s\r\n", req->authorization);
		len = n < 0 ? cap : len + (size_t)n;
	}
	if (len < cap && (req->body || strcmp(req->method, "POST") == 0)) {
		n = snprintf(out + len, cap - len, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		             req->content_type ? req->content_type : "application/json",
		             req->body ? req->body_len : 0);
		len = n < 0 ? cap : len + (size_t)n;
	}
	if (len < cap) {
		n = snprintf(out + len, cap - len,
		             "Accept-Encoding: identity\r\nConnection: close\r\n\r\n");
		len = n < 0 ? cap : len + (size_t)n;
	}
	return len < cap ? len : 0;
}

static int send_all(int fd, const char *data, size_t len, int64_t deadline, char *err,
                    size_t errlen)
{
	for (size_t sent = 0; sent < len;) {
		ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "send: %s", strerror(errno));
			return ITR_HTTP_CLIENT_BROKEN;
		}
		int rc = itr_wait_fd(fd, POLLOUT, deadline);
		if (rc <= 0)
			return fail_wait(rc, "send", err, errlen);
	}
	return ITR_HTTP_CLIENT_OK;
}

/* The request head, then the body, before deadline. */
static int send_request(int fd, const struct itr_http_client_request *req, int64_t deadline,
                        char *err, size_t errlen)
{
	char head[ITR_HTTP_CLIENT_MAX_REQ_HEAD];
	size_t head_len = request_head(req, head, sizeof(head));
	if (head_len == 0) {
		snprintf(err, errlen, "request longer than %u bytes", ITR_HTTP_CLIENT_MAX_REQ_HEAD);
		return ITR_HTTP_CLIENT_BROKEN;
	}
	int rc = send_all(fd, head, head_len, deadline, err, errlen);
	if (rc == ITR_HTTP_CLIENT_OK && req->body)
		rc = send_all(fd, req->body, req->body_len, deadline, err, errlen);
	return rc;
}

/* Send the request on fd and read the answer into resp. */
static int exchange_fd(int fd, const struct itr_http_client_request *req, size_t max_response,
                       int64_t deadline, struct itr_http_client_response *resp, char *err,
                       size_t errlen)
{
	int rc = send_request(fd, req, deadline, err, errlen);
	if (rc != ITR_HTTP_CLIENT_OK)
		return rc;

	size_t cap = 4096 < max_response ? 4096 : max_response, len = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return ITR_HTTP_CLIENT_NO_MEMORY;
	}
	struct itr_http_parsed parsed;
	for (;;) {
		if (len == cap) {
			if (cap >= max_response) {
				snprintf(err, errlen, "answer larger than %zu bytes", max_response);
				rc = ITR_HTTP_CLIENT_BROKEN;
				break;
			}
			size_t grown_cap = cap * 2 < max_response ? cap * 2 : max_response;
			char *grown = realloc(buf, grown_cap + 1);
			if (!grown) {
				snprintf(err, errlen, "out of memory");
				rc = ITR_HTTP_CLIENT_NO_MEMORY;
				break;
			}
			buf = grown;
			cap = grown_cap;
		}
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int w = itr_wait_fd(fd, POLLIN, deadline);
			if (w <= 0) {
				rc = fail_wait(w, "recv", err, errlen);
				break;
			}
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "recv: %s", strerror(errno));
			rc = ITR_HTTP_CLIENT_BROKEN;
			break;
		}
		len += (size_t)n;
		int p = itr_http_response_parse(buf, len, n == 0, &parsed);
		if (p < 0) {
			snprintf(err, errlen, "not a valid HTTP answer");
			rc = ITR_HTTP_CLIENT_BROKEN;
			break;
		}
		if (p > 0) {
			rc = ITR_HTTP_CLIENT_OK;
			break;
		}
	}
	if (rc != ITR_HTTP_CLIENT_OK) {
		free(buf);
		return rc;
	}
	memmove(buf, buf + parsed.body_off, parsed.body_len);
	buf[parsed.body_len] = '\0';
	resp->status = parsed.status;
	resp->body = buf;
	resp->body_len = parsed.body_len;
	return ITR_HTTP_CLIENT_OK;
}

/* Start an exchange: the deadline and size cap from lim, resp cleared. */
static void begin(const struct itr_http_client_limits *lim, struct itr_http_client_response *resp,
                  int64_t *deadline, size_t *max)
{
	unsigned timeout = lim && lim->timeout_ms ? lim->timeout_ms : ITR_HTTP_CLIENT_TIMEOUT_MS;
	*deadline = itr_clock_ms() + timeout;
	*max = lim && lim->max_response ? lim->max_response : ITR_HTTP_CLIENT_MAX_RESPONSE;
	memset(resp, 0, sizeof(*resp));
}

static int exchange_addr(const struct sockaddr *addr, socklen_t addrlen,
                         const struct itr_http_client_request *req, size_t max_response,
                         int64_t deadline, struct itr_http_client_response *resp, char *err,
                         size_t errlen)
{
	int result;
	int fd = connect_until(addr, addrlen, deadline, err, errlen, &result);
	if (fd < 0)
		return result;
	socklen_t sl = sizeof(resp->local);
	if (getsockname(fd, (struct sockaddr *)&resp->local, &sl) < 0)
		memset(&resp->local, 0, sizeof(resp->local));
	result = exchange_fd(fd, req, max_response, deadline, resp, err, errlen);
	close(fd);
	return result;
}

/* The addresses of host:port for a TCP connection (freeaddrinfo them), or
 * NULL with err. */
static struct addrinfo *resolve_host(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	return res;
}

int itr_http_client_exchange(const struct sockaddr *addr, socklen_t addrlen,
                             const struct itr_http_client_request *req,
                             const struct itr_http_client_limits *lim,
                             struct itr_http_client_response *resp, char *err, size_t errlen)
{
	int64_t deadline;
	size_t max;
	begin(lim, resp, &deadline, &max);
	return exchange_addr(addr, addrlen, req, max, deadline, resp, err, errlen);
}

int itr_http_client_exchange_host(const char *host, const char *port,
                                  const struct itr_http_client_request *req,
                                  const struct itr_http_client_limits *lim,
                                  struct itr_http_client_response *resp, char *err, size_t errlen)
{
	int64_t deadline;
	size_t max;
	begin(lim, resp, &deadline, &max);
	struct addrinfo *res = resolve_host(host, port, err, errlen);
	if (!res)
		return ITR_HTTP_CLIENT_UNREACHABLE;
	int result = ITR_HTTP_CLIENT_UNREACHABLE;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		result = exchange_addr(ai->ai_addr, ai->ai_addrlen, req, max, deadline, resp, err,
		                       errlen);
		if (result != ITR_HTTP_CLIENT_UNREACHABLE)
			break; /* an answer, or a server that took the connection */
	}
	freeaddrinfo(res);
	return result;
}

/* ---- streamed answers ------------------------------------------------------ */

void itr_http_body_decoder_init(struct itr_http_body_decoder *b, bool chunked,
                                itr_http_body_fn on_body, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->chunked = chunked;
	b->on_body = on_body;
	b->arg = arg;
}

int itr_http_body_decoder_feed(struct itr_http_body_decoder *b, const char *buf, size_t len,
                               size_t *used)
{
	size_t in = 0;
	*used = 0;
	while (in < len && !b->done) {
		if (!b->chunked) {
			if (b->on_body(buf, len, b->arg))
				return 1;
			in = len;
			break;
		}
		size_t next;
		int rc;
		if (b->chunk_left > 0) {
			size_t n = len - in < b->chunk_left ? len - in : (size_t)b->chunk_left;
			b->chunk_left -= n;
			b->want_end = b->chunk_left == 0;
			if (b->on_body(buf + in, n, b->arg)) {
				*used = in + n;
				return 1;
			}
			in += n;
			continue;
		}
		if (b->want_end) {
			rc = chunk_end(buf + in, len - in, &next);
			if (rc <= 0)
				break;
			b->want_end = false;
			in += next;
			continue;
		}
		uint64_t size;
		rc = chunk_size_line(buf + in, len - in, &size, &next);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		in += next;
		if (size == 0)
			b->done = true; /* trailers are not read: the stream is over */
		b->chunk_left = size;
	}
	*used = in;
	return b->done ? 1 : 0;
}

/* recv_idle's "on_body asked to stop": negative, so that it can never be
 * mistaken for a byte count (one byte read is 1). */
#define STREAM_STOPPED (-100)

/* Receive into buf at *len (cap bytes) until the idle deadline: bytes
 * read (0 at the end of the stream), or a result code (< 0). Between
 * polls on_body(NULL, 0) may stop the stream: STREAM_STOPPED. */
static ssize_t recv_idle(int fd, char *buf, size_t cap, unsigned idle_ms,
                         const struct itr_http_body_decoder *b, char *err, size_t errlen)
{
	int64_t deadline = itr_clock_ms() + idle_ms;
	for (;;) {
		ssize_t n = recv(fd, buf, cap, 0);
		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "recv: %s", strerror(errno));
			return ITR_HTTP_CLIENT_BROKEN;
		}
		int64_t slice = itr_clock_ms() + 200;
		int w = itr_wait_fd(fd, POLLIN, slice < deadline ? slice : deadline);
		if (w < 0)
			return fail_wait(w, "recv", err, errlen);
		if (w == 0 && itr_clock_ms() >= deadline) {
			snprintf(err, errlen, "nothing received for %u ms", idle_ms);
			return ITR_HTTP_CLIENT_TIMEOUT;
		}
		if (w == 0 && b->on_body(NULL, 0, b->arg))
			return STREAM_STOPPED;
	}
}

static int stream_fd(int fd, const struct itr_http_client_request *req, int64_t deadline,
                     unsigned idle_ms, int *status, struct itr_http_body_decoder *b, char *err,
                     size_t errlen)
{
	int rc = send_request(fd, req, deadline, err, errlen);
	if (rc != ITR_HTTP_CLIENT_OK)
		return rc;
	/* the header section first, bounded; then the body as it comes */
	size_t cap = ITR_HTTP_CLIENT_MAX_HEADER + 65536, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return ITR_HTTP_CLIENT_NO_MEMORY;
	}
	struct head h = {0};
	size_t start = 0;
	bool in_body = false;
	for (;;) {
		if (len == cap) {
			snprintf(err, errlen, "%s",
			         in_body ? "chunk header too long" : "header too long");
			rc = ITR_HTTP_CLIENT_BROKEN;
			break;
		}
		ssize_t n = recv_idle(fd, buf + len, cap - len, idle_ms, b, err, errlen);
		if (n < 0) {
			rc = n == STREAM_STOPPED ? ITR_HTTP_CLIENT_OK : (int)n;
			break;
		}
		if (n == 0) { /* the server ended the stream */
			rc = ITR_HTTP_CLIENT_OK;
			if (!in_body) {
				snprintf(err, errlen, "connection closed before an answer");
				rc = ITR_HTTP_CLIENT_BROKEN;
			}
			break;
		}
		len += (size_t)n;
		if (!in_body) {
			int p = parse_head(buf + start, len - start, &h);
			if (p < 0) {
				snprintf(err, errlen, "not a valid HTTP answer");
				rc = ITR_HTTP_CLIENT_BROKEN;
				break;
			}
			if (p == 0)
				continue;
			if (h.status < 200) { /* interim answer: the real one follows */
				start += h.end;
				continue;
			}
			*status = h.status;
			if (h.status != 200) {
				rc = ITR_HTTP_CLIENT_OK;
				break;
			}
			in_body = true;
			b->chunked = h.chunked;
			start += h.end;
		}
		size_t used;
		int d = itr_http_body_decoder_feed(b, buf + start, len - start, &used);
		if (d != 0) {
			if (d < 0)
				snprintf(err, errlen, "malformed chunked body");
			rc = d < 0 ? ITR_HTTP_CLIENT_BROKEN : ITR_HTTP_CLIENT_OK;
			break;
		}
		/* keep only what is not decoded yet (a partial chunk header) */
		memmove(buf, buf + start + used, len - start - used);
		len -= start + used;
		start = 0;
	}
	free(buf);
	return rc;
}

int itr_http_client_stream_host(const char *host, const char *port,
                                const struct itr_http_client_request *req,
                                unsigned connect_timeout_ms, unsigned idle_timeout_ms, int *status,
                                itr_http_body_fn on_body, void *arg, char *err, size_t errlen)
{
	*status = 0;
	struct addrinfo *res = resolve_host(host, port, err, errlen);
	if (!res)
		return ITR_HTTP_CLIENT_UNREACHABLE;
	int64_t deadline = itr_clock_ms() + (connect_timeout_ms ? connect_timeout_ms : 5000);
	int result = ITR_HTTP_CLIENT_UNREACHABLE;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = connect_until(ai->ai_addr, ai->ai_addrlen, deadline, err, errlen, &result);
		if (fd < 0)
			continue;
		struct itr_http_body_decoder b;
		itr_http_body_decoder_init(&b, false, on_body, arg);
		result = stream_fd(fd, req, deadline, idle_timeout_ms ? idle_timeout_ms : 45000,
		                   status, &b, err, errlen);
		close(fd);
		break;
	}
	freeaddrinfo(res);
	return result;
}
