/* ctl_http.c - itrackerctl's calls to the daemon, over the one HTTP/1.1
 * client of libitracker (user/http_client.h): the server URL, the error
 * wording operators see, and percent-encoding for query values.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "ctl.h"
#include "http_client.h"

/* The daemon's answers (a full /metrics page included) stay well below. */
#define CTL_MAX_RESPONSE (64u << 20)

/* One exchange with the daemon: at addr when given, else at host:port. The
 * answer goes to reply; the result is http_client.h's, with detail. */
static int call(const char *host, const char *port, const struct sockaddr *addr, socklen_t addrlen,
                struct itr_http_client_request *req, int timeout_s, struct ctl_http_reply *reply,
                char *detail, size_t detaillen)
{
	req->user_agent = "itrackerctl";
	req->accept = "application/json";
	const struct itr_http_client_limits lim = {
	    .timeout_ms = timeout_s > 0 ? (unsigned)timeout_s * 1000 : 0,
	    .max_response = CTL_MAX_RESPONSE,
	};
	struct itr_http_client_response resp;
	int rc =
	    addr ? itr_http_client_exchange(addr, addrlen, req, &lim, &resp, detail, detaillen)
	         : itr_http_client_exchange_host(host, port, req, &lim, &resp, detail, detaillen);
	if (rc == ITR_HTTP_CLIENT_OK) {
		reply->status = resp.status;
		reply->body = resp.body;
		reply->body_len = resp.body_len;
	}
	return rc;
}

int ctl_http(const char *server, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, int timeout_s, struct ctl_http_reply *reply,
             char *err, size_t errlen)
{
	memset(reply, 0, sizeof(*reply));
	struct itr_http_url u;
	char why[64];
	if (itr_http_url_parse(server, "80", &u, why, sizeof(why)) != 0 ||
	    (u.scheme[0] && strcmp(u.scheme, "http") != 0) || strchr(u.path, '?')) {
		snprintf(err, errlen, "bad server URL '%s' (want http://HOST[:PORT])", server);
		return CTL_HTTP_BAD_URL;
	}
	/* a path in the URL prefixes every request (a daemon behind a proxy) */
	size_t plen = strlen(u.path);
	while (plen > 0 && u.path[plen - 1] == '/')
		plen--;
	char target[4096];
	if ((size_t)snprintf(target, sizeof(target), "%.*s%s", (int)plen, u.path, path) >=
	    sizeof(target)) {
		snprintf(err, errlen, "request path too long");
		return CTL_HTTP_BAD_URL;
	}
	struct itr_http_client_request req = {
	    .method = method,
	    .host = u.authority,
	    .target = target,
	    .content_type = content_type,
	    .body = body,
	    .body_len = body_len,
	};
	char detail[160];
	int rc = call(u.host, u.port, NULL, 0, &req, timeout_s, reply, detail, sizeof(detail));
	switch (rc) {
	case ITR_HTTP_CLIENT_OK:
		return CTL_HTTP_OK;
	case ITR_HTTP_CLIENT_UNREACHABLE:
		snprintf(err, errlen, "cannot connect to %s port %s: %s", u.host, u.port, detail);
		return CTL_HTTP_UNREACHABLE;
	case ITR_HTTP_CLIENT_TIMEOUT:
		snprintf(err, errlen, "no answer from %s port %s within %d s", u.host, u.port,
		         timeout_s > 0 ? timeout_s : ITR_HTTP_CLIENT_TIMEOUT_MS / 1000);
		return CTL_HTTP_BROKEN;
	default:
		snprintf(err, errlen, "the server's answer is not usable: %s", detail);
		return CTL_HTTP_BROKEN;
	}
}

int ctl_http_unix(const char *path, const char *authorization, const char *method,
                  const char *target, int timeout_s, struct ctl_http_reply *reply, char *err,
                  size_t errlen)
{
	memset(reply, 0, sizeof(*reply));
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "admin socket path too long");
		return CTL_HTTP_BAD_URL;
	}
	strcpy(sun.sun_path, path);
	struct itr_http_client_request req = {
	    .method = method,
	    .host = "localhost",
	    .target = target,
	    .authorization = authorization,
	};
	char detail[160];
	int rc = call(NULL, NULL, (const struct sockaddr *)&sun, sizeof(sun), &req, timeout_s,
	              reply, detail, sizeof(detail));
	if (rc == ITR_HTTP_CLIENT_OK)
		return CTL_HTTP_OK;
	snprintf(err, errlen, "%s: %s", path, detail);
	return rc == ITR_HTTP_CLIENT_UNREACHABLE ? CTL_HTTP_UNREACHABLE : CTL_HTTP_BROKEN;
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
