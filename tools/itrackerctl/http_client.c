/* http_client.c - the minimal HTTP/1.1 client itrackerctl needs to talk to
 * itrackerd: one request per connection (Connection: close), answers with
 * Content-Length, chunked encoding or read-until-close.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ctl.h"

struct url {
	char host[256];
	char port[8];
	char prefix[256]; /* path prefix without trailing '/', "" if none */
};

static int parse_url(const char *server, struct url *u)
{
	const char *p = server;
	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else if (strstr(p, "://"))
		return -1; /* https and friends: not supported */
	const char *host_end;
	const char *host = p;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(p, ']');
		if (!host_end)
			return -1;
		p = host_end + 1;
	} else {
		host_end = p + strcspn(p, ":/");
		p = host_end;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof(u->host))
		return -1;
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	strcpy(u->port, "80");
	if (*p == ':') {
		p++;
		size_t plen = strspn(p, "0123456789");
		if (plen == 0 || plen >= sizeof(u->port))
			return -1;
		memcpy(u->port, p, plen);
		u->port[plen] = '\0';
		p += plen;
	}
	if (*p && *p != '/')
		return -1;
	size_t rest = strlen(p);
	while (rest > 0 && p[rest - 1] == '/')
		rest--;
	if (rest >= sizeof(u->prefix))
		return -1;
	memcpy(u->prefix, p, rest);
	u->prefix[rest] = '\0';
	return 0;
}

static int connect_to(const struct url *u, int timeout_s, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return -1;
	}
	int fd = -1, last_errno = 0;
	struct timeval tv = {.tv_sec = timeout_s};
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		/* SO_SNDTIMEO also bounds a blocking connect() on Linux. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		last_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s port %s: %s", u->host, u->port,
		         strerror(last_errno));
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static char *read_all(int fd, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap > (64u << 20)) { /* no sane daemon answer is this big */
				free(buf);
				return NULL;
			}
			char *grown = realloc(buf, cap * 2 + 1);
			if (!grown) {
				free(buf);
				return NULL;
			}
			buf = grown;
			cap *= 2;
		}
		ssize_t got = recv(fd, buf + n, cap - n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return NULL;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Value of header name in the header block [start, end), or NULL. */
static const char *find_header(const char *start, const char *end, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	for (const char *line = start; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		line = eol + 1;
	}
	return NULL;
}

/* Decode a chunked body in place; returns the decoded length or -1. */
static long dechunk(char *body, size_t len)
{
	size_t in = 0, out = 0;
	for (;;) {
		char *end;
		if (in >= len)
			return -1;
		unsigned long size = strtoul(body + in, &end, 16);
		char *eol = memchr(body + in, '\n', len - in);
		if (!eol || end == body + in)
			return -1;
		in = (size_t)(eol - body) + 1;
		if (size == 0)
			return (long)out;
		if (size > len - in)
			return -1;
		memmove(body + out, body + in, size);
		out += size;
		in += size;
		if (in < len && body[in] == '\r')
			in++;
		if (in < len && body[in] == '\n')
			in++;
	}
}

static int parse_reply(char *raw, size_t len, struct ctl_http_reply *reply)
{
	int status;
	if (len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || sscanf(raw + 9, "%3d", &status) != 1)
		return -1;
	char *hdr_end = strstr(raw, "\r\n\r\n");
	size_t sep = 4;
	if (!hdr_end) {
		hdr_end = strstr(raw, "\n\n");
		sep = 2;
	}
	if (!hdr_end)
		return -1;
	char *body = hdr_end + sep;
	size_t body_len = len - (size_t)(body - raw);
	size_t vlen;
	const char *te = find_header(raw, hdr_end, "Transfer-Encoding", &vlen);
	if (te && vlen >= 7 && strncasecmp(te, "chunked", 7) == 0) {
		long n = dechunk(body, body_len);
		if (n < 0)
			return -1;
		body_len = (size_t)n;
	} else {
		const char *cl = find_header(raw, hdr_end, "Content-Length", &vlen);
		if (cl) {
			unsigned long long want = strtoull(cl, NULL, 10);
			if (want > body_len)
				return -1; /* connection closed early */
			body_len = (size_t)want;
		}
	}
	reply->status = status;
	reply->body = malloc(body_len + 1);
	if (!reply->body)
		return -1;
	memcpy(reply->body, body, body_len);
	reply->body[body_len] = '\0';
	reply->body_len = body_len;
	return 0;
}

int ctl_http(const char *server, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, int timeout_s, struct ctl_http_reply *reply,
             char *err, size_t errlen)
{
	memset(reply, 0, sizeof(*reply));
	struct url u;
	if (parse_url(server, &u) != 0) {
		snprintf(err, errlen, "bad server URL '%s' (want http://HOST[:PORT])", server);
		return CTL_HTTP_BAD_URL;
	}
	int fd = connect_to(&u, timeout_s, err, errlen);
	if (fd < 0)
		return CTL_HTTP_UNREACHABLE;
	char *req = NULL;
	size_t req_len = 0;
	FILE *f = open_memstream(&req, &req_len);
	if (!f) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return CTL_HTTP_BROKEN;
	}
	bool v6 = strchr(u.host, ':') != NULL;
	fprintf(f, "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: itrackerctl\r\n", method,
	        u.prefix, path, v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
	fputs("Accept: application/json\r\nConnection: close\r\n", f);
	if (body) {
		fprintf(f, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		        content_type ? content_type : "application/json", body_len);
	} else if (strcmp(method, "POST") == 0) {
		fputs("Content-Length: 0\r\n", f);
	}
	fputs("\r\n", f);
	if (body)
		fwrite(body, 1, body_len, f);
	fclose(f);
	int rc = send_all(fd, req, req_len);
	free(req);
	if (rc != 0) {
		snprintf(err, errlen, "sending the request failed: %s", strerror(errno));
		close(fd);
		return CTL_HTTP_BROKEN;
	}
	size_t raw_len = 0;
	char *raw = read_all(fd, &raw_len);
	int saved = errno;
	close(fd);
	if (!raw) {
		snprintf(err, errlen, "reading the answer failed: %s",
		         saved == EAGAIN ? "timed out" : strerror(saved));
		return CTL_HTTP_BROKEN;
	}
	rc = parse_reply(raw, raw_len, reply);
	free(raw);
	if (rc != 0) {
		snprintf(err, errlen, "the server's answer is not valid HTTP");
		return CTL_HTTP_BROKEN;
	}
	return CTL_HTTP_OK;
}

void ctl_http_reply_free(struct ctl_http_reply *reply)
{
	free(reply->body);
	reply->body = NULL;
	reply->body_len = 0;
}

void ctl_url_encode(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
}
