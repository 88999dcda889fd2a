/* proxy.c - pTracker proxy mode: forward announces and scrapes to an
 * upstream tracker, re-rank its peers by locality, answer the client.
 *
 * The upstream clients are deliberately plain: one blocking exchange per
 * request on its own socket against one deadline, so no step can outlive
 * the timeout. HTTP goes through the one HTTP/1.1 client (http_client.h);
 * UDP is BEP 15 with the connection id cached for a minute and one fresh
 * connect when a cached id is refused.
 *
 * The upstream must see the client, not the proxy: HTTP upstreams get
 * `ip=` (honoured only by trackers that trust us), UDP upstreams the BEP 15
 * IPv4 field (same caveat; IPv6 clients cannot be named over UDP). An
 * upstream that ignores both (Debian's opentracker does: it is built
 * without WANT_IP_FROM_QUERY_STRING, checked on loopback) stores proxied
 * clients under the proxy's address. The peers it returns are still the
 * swarm's - those that announce to it directly - and those are what get
 * ranked; the entries at our own address point at the proxy, not at a
 * peer, and are dropped. Proxied clients then find each other only if the
 * upstream honours ip=.
 */
#include "byte_order.h"
#include "proxy.h"

#include "peer_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bencode.h"
#include "http_client.h"
#include "udp_tracker.h"

#define MAX_RESPONSE   (1u << 20) /* bytes of an upstream HTTP answer */
#define MAX_CANDIDATES 10000      /* upstream peers considered per announce */
#define UDP_RESEND_MS  1000       /* BEP 15 says 15 s; our whole budget is less */
#define DATAGRAM_MAX   2048

enum upstream_kind { UPSTREAM_HTTP, UPSTREAM_UDP };

struct itr_proxy {
	struct itr_proxy_config cfg;
	struct itr_tracker *tr;
	enum upstream_kind kind;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host_header[300]; /* host[:port] as in the URL */
	char announce_path[1024];
	char scrape_path[1024]; /* "" if the URL has no scrape convention */

	pthread_mutex_t connid_lock;
	bool connid_valid;
	uint8_t connid[8];
	uint32_t connid_at;

	atomic_uint_fast64_t announces, scrapes, upstream_failures, upstream_errors, udp_connects,
	    upstream_peers;
	atomic_uint_fast64_t by_transport[ITR_TRANSPORT_MAX];
	struct itr_announce_backend backend;
};

static const struct itr_announce_backend_ops proxy_ops;

void itr_proxy_config_default(struct itr_proxy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = 5000;
	cfg->upstream_factor = 4;
	cfg->min_upstream_want = 200;
	cfg->threads = 16;
	cfg->connid_lifetime_s = 60;
}

/* ---- small helpers ------------------------------------------------------- */

/* A growing text buffer for request targets; truncation is an error. */
struct strbuf {
	char buf[4096];
	size_t len;
	bool overflow;
};

static void sb_add(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct strbuf *sb, const char *fmt, ...)
{
	if (sb->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(sb->buf + sb->len, sizeof(sb->buf) - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(sb->buf) - sb->len)
		sb->overflow = true;
	else
		sb->len += (size_t)n;
}

/* %-escape everything but RFC 3986 unreserved characters. */
static void sb_escape(struct strbuf *sb, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			sb_add(sb, "%c", c);
		else
			sb_add(sb, "%%%02X", c);
	}
}

/* ---- configuration ------------------------------------------------------- */

static int resolve(struct itr_proxy *p, const char *host, const char *port, char *err,
                   size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = p->kind == UPSTREAM_UDP ? SOCK_DGRAM : SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, errlen, "upstream host '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int parse_upstream(struct itr_proxy *p, const char *url, char *err, size_t errlen)
{
	struct itr_http_url u;
	char why[64];
	if (strncmp(url, "http://", 7) == 0) {
		p->kind = UPSTREAM_HTTP;
	} else if (strncmp(url, "udp://", 6) == 0) {
		p->kind = UPSTREAM_UDP;
	} else {
		snprintf(err, errlen,
		         "upstream '%s': expected http://HOST[:PORT]/PATH or "
		         "udp://HOST:PORT (https is not supported)",
		         url);
		return -1;
	}
	/* a UDP tracker has no default port */
	if (itr_http_url_parse(url, p->kind == UPSTREAM_HTTP ? "80" : NULL, &u, why, sizeof(why)) <
	    0) {
		snprintf(err, errlen, "upstream '%s': %s", url, why);
		return -1;
	}
	snprintf(p->host_header, sizeof(p->host_header), "%s", u.authority);
	if (p->kind == UPSTREAM_HTTP) {
		size_t len = strlen(u.path);
		if (len + 2 > sizeof(p->announce_path)) {
			snprintf(err, errlen, "upstream '%s': path too long", url);
			return -1;
		}
		/* "?query" alone (or nothing) means the root path */
		size_t root = u.path[0] == '/' ? 0 : 1;
		p->announce_path[0] = '/';
		memcpy(p->announce_path + root, u.path, len + 1);
		/* BEP 48: scrape lives where the last path part "announce" is */
		size_t plen = strcspn(p->announce_path, "?");
		const char *slash = p->announce_path;
		for (size_t i = 0; i < plen; i++)
			if (p->announce_path[i] == '/')
				slash = p->announce_path + i;
		if (strncmp(slash, "/announce", 9) == 0) {
			size_t pre = (size_t)(slash - p->announce_path);
			snprintf(p->scrape_path, sizeof(p->scrape_path), "%.*s/scrape%s", (int)pre,
			         p->announce_path, slash + 9);
		}
	}
	return resolve(p, u.host, u.port, err, errlen);
}

struct itr_proxy *itr_proxy_new(const struct itr_proxy_config *cfg, struct itr_tracker *tr,
                                char *err, size_t errlen)
{
	if (!cfg->upstream || !*cfg->upstream) {
		snprintf(err, errlen, "proxy: no upstream tracker URL");
		return NULL;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return NULL;
	}
	struct itr_proxy *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = *cfg;
	p->cfg.upstream = NULL; /* the string stays the caller's */
	struct itr_proxy_config def;
	itr_proxy_config_default(&def);
	if (!p->cfg.timeout_ms)
		p->cfg.timeout_ms = def.timeout_ms;
	if (!p->cfg.upstream_factor)
		p->cfg.upstream_factor = def.upstream_factor;
	if (!p->cfg.threads)
		p->cfg.threads = def.threads;
	if (!p->cfg.connid_lifetime_s)
		p->cfg.connid_lifetime_s = def.connid_lifetime_s;
	p->tr = tr;
	p->backend = (struct itr_announce_backend){.ops = &proxy_ops,
	                                           .impl = p,
	                                           .threads = p->cfg.threads,
	                                           .max_scrape = ITR_PROXY_MAX_SCRAPE};
	pthread_mutex_init(&p->connid_lock, NULL);
	if (parse_upstream(p, cfg->upstream, err, errlen) < 0) {
		itr_proxy_free(p);
		return NULL;
	}
	return p;
}

void itr_proxy_free(struct itr_proxy *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->connid_lock);
	free(p);
}

void itr_proxy_get_stats(struct itr_proxy *p, struct itr_proxy_stats *st)
{
	st->announces = atomic_load(&p->announces);
	st->upstream_failures = atomic_load(&p->upstream_failures);
	st->upstream_errors = atomic_load(&p->upstream_errors);
	st->udp_connects = atomic_load(&p->udp_connects);
	st->upstream_peers = atomic_load(&p->upstream_peers);
	for (int t = 0; t < ITR_TRANSPORT_MAX; t++)
		st->by_transport[t] = atomic_load(&p->by_transport[t]);
}

/* ---- HTTP client --------------------------------------------------------- */

static void timed_out(struct itr_proxy *p, char *why, size_t whylen)
{
	snprintf(why, whylen, "upstream tracker timed out after %u ms", p->cfg.timeout_ms);
}

static void local_address(int fd, struct itr_peer_addr *local)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(local, 0, sizeof(*local));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		itr_peer_addr_from_sockaddr((struct sockaddr *)&ss, local);
}

/* GET target from the upstream (http_client.h). 0 with the body
 * (malloc'ed) in *body and our end of the connection in *local (may be
 * NULL), or -1 with why. */
static int http_get(struct itr_proxy *p, const char *target, char **body, size_t *bodylen,
                    struct itr_peer_addr *local, char *why, size_t whylen)
{
	const struct itr_http_client_request req = {
	    .method = "GET",
	    .host = p->host_header,
	    .target = target,
	    .user_agent = "itrackerd-proxy",
	};
	const struct itr_http_client_limits lim = {.timeout_ms = p->cfg.timeout_ms,
	                                           .max_response = MAX_RESPONSE};
	struct itr_http_client_response resp;
	char err[160];
	int rc = itr_http_client_exchange((const struct sockaddr *)&p->addr, p->addrlen, &req, &lim,
	                                  &resp, err, sizeof(err));
	switch (rc) {
	case ITR_HTTP_CLIENT_OK:
		break;
	case ITR_HTTP_CLIENT_TIMEOUT:
		timed_out(p, why, whylen);
		return -1;
	case ITR_HTTP_CLIENT_UNREACHABLE:
		snprintf(why, whylen, "upstream tracker unreachable: %s", err);
		return -1;
	default:
		snprintf(why, whylen, "upstream tracker: %s", err);
		return -1;
	}
	if (resp.status != 200) {
		snprintf(why, whylen, "upstream tracker answered HTTP %d", resp.status);
		free(resp.body);
		return -1;
	}
	if (local) {
		memset(local, 0, sizeof(*local));
		itr_peer_addr_from_sockaddr((struct sockaddr *)&resp.local, local);
	}
	*body = resp.body;
	*bodylen = resp.body_len;
	return 0;
}

/* ---- UDP client ---------------------------------------------------------- */

/* Send req, resend every UDP_RESEND_MS, return the first answer whose
 * transaction id matches: its length, 0 on timeout, -1 on error. */
static long udp_exchange(int fd, const uint8_t *req, size_t reqlen, uint32_t tid, uint8_t *resp,
                         size_t cap, int64_t deadline)
{
	for (;;) {
		if (send(fd, req, reqlen, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED)
			return -1;
		int64_t resend = itr_clock_ms() + UDP_RESEND_MS;
		for (;;) {
			int64_t until = resend < deadline ? resend : deadline;
			int rc = itr_wait_fd(fd, POLLIN, until);
			if (rc < 0)
				return -1;
			if (rc == 0)
				break;
			ssize_t n = recv(fd, resp, cap, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
					continue; /* ICMP unreachable: keep trying until the
					             deadline */
				return -1;
			}
			if (n >= 8 && itr_be32_get(resp + 4) == tid)
				return n;
		}
		if (itr_clock_ms() >= deadline)
			return 0;
	}
}

static int udp_socket(struct itr_proxy *p, char *why, size_t whylen)
{
	int fd = socket(p->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "upstream tracker: socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&p->addr, p->addrlen) < 0) {
		snprintf(why, whylen, "upstream tracker unreachable: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A connection id: cached if younger than connid_lifetime_s, else a fresh
 * connect. 1 fresh, 0 cached, -1 with why. */
static int udp_connid(struct itr_proxy *p, int fd, bool force, int64_t deadline, uint8_t id[8],
                      char *why, size_t whylen)
{
	uint32_t now = itr_tracker_now(p->tr);
	pthread_mutex_lock(&p->connid_lock);
	if (!force && p->connid_valid && now - p->connid_at < p->cfg.connid_lifetime_s) {
		memcpy(id, p->connid, 8);
		pthread_mutex_unlock(&p->connid_lock);
		return 0;
	}
	pthread_mutex_unlock(&p->connid_lock);

	uint8_t req[16], resp[64];
	uint32_t tid = randombytes_random();
	itr_be64_put(req, ITR_UDP_PROTOCOL_ID);
	itr_be32_put(req + 8, ITR_UDP_CONNECT);
	itr_be32_put(req + 12, tid);
	atomic_fetch_add(&p->udp_connects, 1);
	long n = udp_exchange(fd, req, sizeof(req), tid, resp, sizeof(resp), deadline);
	if (n == 0) {
		timed_out(p, why, whylen);
		return -1;
	}
	if (n < 0) {
		snprintf(why, whylen, "upstream tracker: %s", strerror(errno));
		return -1;
	}
	if (itr_be32_get(resp) == ITR_UDP_ERROR) {
		snprintf(why, whylen, "%.*s", (int)(n - 8), (const char *)resp + 8);
		return -1;
	}
	if (n < 16 || itr_be32_get(resp) != ITR_UDP_CONNECT) {
		snprintf(why, whylen, "upstream tracker sent a bad connect answer");
		return -1;
	}
	memcpy(id, resp + 8, 8);
	pthread_mutex_lock(&p->connid_lock);
	memcpy(p->connid, id, 8);
	p->connid_at = now;
	p->connid_valid = true;
	pthread_mutex_unlock(&p->connid_lock);
	return 1;
}

static void udp_forget_connid(struct itr_proxy *p)
{
	pthread_mutex_lock(&p->connid_lock);
	p->connid_valid = false;
	pthread_mutex_unlock(&p->connid_lock);
}

/* One request that needs a connection id (announce or scrape); the id is
 * written at offset 0 of req. Returns the answer length (action 1/2, or 3
 * with the message as why and -2), or -1 with why. */
static long udp_request(struct itr_proxy *p, uint8_t *req, size_t reqlen, uint8_t *resp, size_t cap,
                        struct itr_peer_addr *local, char *why, size_t whylen)
{
	int64_t deadline = itr_clock_ms() + p->cfg.timeout_ms;
	int fd = udp_socket(p, why, whylen);
	if (fd < 0)
		return -1;
	if (local)
		local_address(fd, local);
	long result = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		uint8_t id[8];
		int fresh = udp_connid(p, fd, attempt > 0, deadline, id, why, whylen);
		if (fresh < 0)
			break;
		memcpy(req, id, 8);
		uint32_t tid = randombytes_random();
		itr_be32_put(req + 12, tid);
		long n = udp_exchange(fd, req, reqlen, tid, resp, cap, deadline);
		if (n == 0) {
			timed_out(p, why, whylen);
			break;
		}
		if (n < 0) {
			snprintf(why, whylen, "upstream tracker: %s", strerror(errno));
			break;
		}
		if (itr_be32_get(resp) == ITR_UDP_ERROR) {
			snprintf(why, whylen, "%.*s", (int)(n - 8), (const char *)resp + 8);
			udp_forget_connid(p);
			result = -2;
			if (fresh)
				break;
			continue; /* perhaps our cached id was refused: once more, fresh */
		}
		result = n;
		break;
	}
	close(fd);
	return result;
}

/* ---- announce ------------------------------------------------------------ */

static const char *event_name(enum itr_event e)
{
	switch (e) {
	case ITR_EVENT_STARTED:
		return "started";
	case ITR_EVENT_COMPLETED:
		return "completed";
	case ITR_EVENT_STOPPED:
		return "stopped";
	default:
		return NULL;
	}
}

struct candidates {
	struct itr_peer_addr *v;
	size_t n, cap;
	struct itr_peer_addr local; /* our end of the upstream exchange */
	bool loopback_peers;        /* the tracker's peer policy */
};

/* An upstream's list is not trusted either: an address no peer can have
 * (peer_policy.h) is never handed on. */
static void add_candidate(struct candidates *c, int family, const uint8_t *addr, uint16_t port)
{
	if (c->n >= c->cap || port == 0)
		return;
	struct itr_peer_addr *a = &c->v[c->n];
	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)family;
	memcpy(a->addr, addr, family == 6 ? 16 : 4);
	a->port = port;
	if (!itr_peer_refusal(a, c->loopback_peers))
		c->n++;
}

static void add_compact(struct candidates *c, const uint8_t *data, size_t len, int family)
{
	size_t alen = family == 6 ? 16 : 4, stride = alen + 2;
	for (size_t off = 0; off + stride <= len; off += stride)
		add_candidate(c, family, data + off,
		              (uint16_t)(data[off + alen] << 8 | data[off + alen + 1]));
}

/* An upstream that ignores ip= / the IP field stores proxied clients under
 * our address: those entries point at the proxy, not at a peer. Dropped,
 * unless the client really is at our address. */
static void drop_proxy_entries(struct candidates *c, const struct itr_peer_addr *client)
{
	const struct itr_peer_addr *l = &c->local;
	size_t alen = l->family == 6 ? 16 : 4;
	if (!l->family || (client->family == l->family && memcmp(client->addr, l->addr, alen) == 0))
		return;
	size_t kept = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].family != l->family || memcmp(c->v[i].addr, l->addr, alen) != 0)
			c->v[kept++] = c->v[i];
	c->n = kept;
}

/* The clients that announce through us are kept in the local store too,
 * under their real addresses, and offered as candidates: an upstream that
 * ignores ip= (Debian's opentracker does) can only file them under our
 * address, so without this they would never find each other, and they are
 * exactly the peers that are close to one another. Stopped removes them. */
static void add_local_clients(struct itr_proxy *p, const struct itr_backend_request *req,
                              struct candidates *c)
{
	size_t max = itr_tracker_get_config(p->tr)->max_candidates;
	struct itr_peer_addr *local = malloc((max ? max : 1) * sizeof(*local));
	struct itr_announce_reply lr;

	if (!local)
		return;
	long n = itr_tracker_announce_candidates(p->tr, &req->ann, &lr, local, max);
	/* An upstream that honours ip= lists them too: itr_rank drops the
	 * duplicates, so no pass over the upstream's list here. */
	for (long i = 0; i < n; i++)
		add_candidate(c, local[i].family, local[i].addr, local[i].port);
	free(local);
}

static uint32_t clamp_u32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int http_announce(struct itr_proxy *p, const struct itr_backend_request *req, size_t upwant,
                         struct itr_backend_reply *reply, struct candidates *cands)
{
	const struct itr_announce *ann = &req->ann;
	struct strbuf sb = {.len = 0};
	char ip[INET6_ADDRSTRLEN];
	sb_add(&sb, "%s%cinfo_hash=", p->announce_path, strchr(p->announce_path, '?') ? '&' : '?');
	sb_escape(&sb, ann->info_hash, ITR_INFO_HASH_LEN);
	sb_add(&sb, "&peer_id=");
	sb_escape(&sb, req->peer_id, 20);
	sb_add(&sb, "&port=%u&uploaded=%" PRIu64 "&downloaded=%" PRIu64, ann->peer.port,
	       ann->uploaded, ann->downloaded);
	if (ann->left != UINT64_MAX)
		sb_add(&sb, "&left=%" PRIu64, ann->left);
	sb_add(&sb, "&compact=1&numwant=%zu", upwant);
	if (event_name(ann->event))
		sb_add(&sb, "&event=%s", event_name(ann->event));
	if (req->key_text) {
		sb_add(&sb, "&key=");
		sb_escape(&sb, (const uint8_t *)req->key_text, strlen(req->key_text));
	} else if (req->has_key) {
		sb_add(&sb, "&key=%08" PRIX32, req->key);
	}
	sb_add(&sb, "&ip=%s", itr_peer_addr_ntop(&ann->peer, ip, sizeof(ip)));
	if (sb.overflow) {
		snprintf(reply->failure, sizeof(reply->failure), "upstream request too long");
		return -1;
	}

	char *body;
	size_t len;
	if (http_get(p, sb.buf, &body, &len, &cands->local, reply->failure,
	             sizeof(reply->failure)) < 0)
		return -1;
	struct itr_bval root, v;
	if (!itr_bdec_valid((const uint8_t *)body, len) ||
	    itr_bdec((const uint8_t *)body, len, &root) < 0 || root.type != ITR_BVAL_DICT) {
		snprintf(reply->failure, sizeof(reply->failure),
		         "upstream tracker sent an invalid answer");
		free(body);
		return -1;
	}
	if (itr_bdec_dict_get(&root, "failure reason", &v) == 0 && v.type == ITR_BVAL_STR) {
		snprintf(reply->failure, sizeof(reply->failure), "%.*s", (int)v.len,
		         (const char *)v.data);
		if (!reply->failure[0])
			snprintf(reply->failure, sizeof(reply->failure), "upstream tracker failed");
		free(body);
		return 1;
	}
	if (itr_bdec_dict_get(&root, "warning message", &v) == 0 && v.type == ITR_BVAL_STR)
		snprintf(reply->warning, sizeof(reply->warning), "%.*s", (int)v.len,
		         (const char *)v.data);
	if (itr_bdec_dict_get(&root, "interval", &v) == 0 && v.type == ITR_BVAL_INT)
		reply->interval = clamp_u32(v.num);
	if (itr_bdec_dict_get(&root, "min interval", &v) == 0 && v.type == ITR_BVAL_INT)
		reply->min_interval = clamp_u32(v.num);
	if (itr_bdec_dict_get(&root, "complete", &v) == 0 && v.type == ITR_BVAL_INT)
		reply->counts.complete = clamp_u32(v.num);
	if (itr_bdec_dict_get(&root, "incomplete", &v) == 0 && v.type == ITR_BVAL_INT)
		reply->counts.incomplete = clamp_u32(v.num);
	if (itr_bdec_dict_get(&root, "downloaded", &v) == 0 && v.type == ITR_BVAL_INT) {
		reply->counts.downloaded = clamp_u32(v.num);
		reply->has_downloaded = true;
	}
	if (itr_bdec_dict_get(&root, "peers", &v) == 0) {
		if (v.type == ITR_BVAL_STR) {
			add_compact(cands, v.data, v.len, 4);
		} else if (v.type == ITR_BVAL_LIST) {
			size_t pos = 0;
			struct itr_bval item, f;
			while (itr_bdec_list_next(&v, &pos, &item) == 1) {
				if (item.type != ITR_BVAL_DICT ||
				    itr_bdec_dict_get(&item, "ip", &f) < 0 ||
				    f.type != ITR_BVAL_STR || f.len >= INET6_ADDRSTRLEN)
					continue;
				char text[INET6_ADDRSTRLEN];
				memcpy(text, f.data, f.len);
				text[f.len] = '\0';
				struct itr_peer_addr a;
				if (itr_peer_addr_parse(text, &a) < 0 ||
				    itr_bdec_dict_get(&item, "port", &f) < 0 ||
				    f.type != ITR_BVAL_INT || f.num < 1 || f.num > 65535)
					continue;
				add_candidate(cands, a.family, a.addr, (uint16_t)f.num);
			}
		}
	}
	if (itr_bdec_dict_get(&root, "peers6", &v) == 0 && v.type == ITR_BVAL_STR)
		add_compact(cands, v.data, v.len, 6);
	free(body);
	return 0;
}

/* The client's key as BEP 15's 32 bits. */
static uint32_t key_value(const struct itr_backend_request *req)
{
	const char *key = req->key_text;
	if (!key)
		return req->has_key ? req->key : 0;
	if (!key[0])
		return 0;
	char *end;
	unsigned long v = strtoul(key, &end, 16);
	if (!*end && strlen(key) <= 8)
		return (uint32_t)v;
	/* not a hex number: any stable 32 bits of it will do */
	return itr_crc32c(0, key, strlen(key));
}

static int udp_announce(struct itr_proxy *p, const struct itr_backend_request *req, size_t upwant,
                        struct itr_backend_reply *reply, struct candidates *cands)
{
	const struct itr_announce *ann = &req->ann;
	uint8_t pkt[ITR_UDP_ANNOUNCE_LEN], resp[DATAGRAM_MAX];
	memset(pkt, 0, sizeof(pkt));
	itr_be32_put(pkt + 8, ITR_UDP_ANNOUNCE);
	memcpy(pkt + 16, ann->info_hash, 20);
	memcpy(pkt + 36, req->peer_id, 20);
	itr_be64_put(pkt + 56, ann->downloaded);
	itr_be64_put(pkt + 64, ann->left);
	itr_be64_put(pkt + 72, ann->uploaded);
	itr_be32_put(pkt + 80, (uint32_t)ann->event);
	if (ann->peer.family == 4)
		memcpy(pkt + 84, ann->peer.addr, 4);
	itr_be32_put(pkt + 88, key_value(req));
	itr_be32_put(pkt + 92, (uint32_t)(upwant > INT32_MAX ? INT32_MAX : upwant));
	pkt[96] = (uint8_t)(ann->peer.port >> 8);
	pkt[97] = (uint8_t)ann->peer.port;
	long n = udp_request(p, pkt, sizeof(pkt), resp, sizeof(resp), &cands->local, reply->failure,
	                     sizeof(reply->failure));
	if (n == -2)
		return 1;
	if (n < 0)
		return -1;
	if (n < 20 || itr_be32_get(resp) != ITR_UDP_ANNOUNCE) {
		snprintf(reply->failure, sizeof(reply->failure),
		         "upstream tracker sent a bad announce answer");
		return -1;
	}
	reply->interval = itr_be32_get(resp + 8);
	reply->counts.incomplete = itr_be32_get(resp + 12);
	reply->counts.complete = itr_be32_get(resp + 16);
	/* BEP 15: the peer format follows the family the request went over */
	add_compact(cands, resp + 20, (size_t)n - 20, p->addr.ss_family == AF_INET6 ? 6 : 4);
	return 0;
}

int itr_proxy_announce(struct itr_proxy *p, const struct itr_backend_request *req,
                       struct itr_backend_reply *reply, struct itr_ranked_peer *peers, size_t want)
{
	const struct itr_tracker_config *tc = itr_tracker_get_config(p->tr);
	itr_backend_reply_init(reply);
	reply->interval = tc->interval;
	atomic_fetch_add(&p->announces, 1);
	atomic_fetch_add(&p->by_transport[req->transport], 1);

	if (req->ann.event == ITR_EVENT_STOPPED)
		want = 0;
	size_t upwant = want * p->cfg.upstream_factor;
	if (upwant < p->cfg.min_upstream_want)
		upwant = p->cfg.min_upstream_want;
	struct candidates cands = {.cap = MAX_CANDIDATES,
	                           .local = {.family = 0},
	                           .loopback_peers = itr_tracker_get_config(p->tr)->loopback_peers};
	cands.v = malloc(cands.cap * sizeof(*cands.v));
	if (!cands.v)
		return -1;
	int rc = p->kind == UPSTREAM_HTTP ? http_announce(p, req, upwant, reply, &cands)
	                                  : udp_announce(p, req, upwant, reply, &cands);
	if (rc != 0) {
		atomic_fetch_add(rc > 0 ? &p->upstream_failures : &p->upstream_errors, 1);
		free(cands.v);
		return 0;
	}
	if (reply->interval == 0)
		reply->interval = tc->interval;
	atomic_fetch_add(&p->upstream_peers, cands.n);
	drop_proxy_entries(&cands, &req->ann.peer);
	add_local_clients(p, req, &cands);
	if (want > 0) {
		struct itr_netmap *map = itr_netmap_current();
		/* Same policy as the local tracker: gateways per swarm, the
		 * price controller's budget per AS. */
		struct itr_rank_policy policy;
		itr_tracker_policy(p->tr, map, &req->ann, &policy);
		reply->npeers =
		    itr_rank(map, &policy, &req->ann.peer, cands.v, cands.n, want, peers);
		if (map)
			itr_netmap_unref(map);
	}
	free(cands.v);
	return 0;
}

/* ---- scrape -------------------------------------------------------------- */

static int http_scrape(struct itr_proxy *p, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                       struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	if (!p->scrape_path[0]) {
		snprintf(failure, failurelen, "upstream tracker does not support scrape");
		return -1;
	}
	struct strbuf sb = {.len = 0};
	char sep = strchr(p->scrape_path, '?') ? '&' : '?';
	sb_add(&sb, "%s", p->scrape_path);
	for (size_t i = 0; i < n; i++) {
		sb_add(&sb, "%cinfo_hash=", i == 0 ? sep : '&');
		sb_escape(&sb, hashes[i], ITR_INFO_HASH_LEN);
	}
	if (sb.overflow) {
		snprintf(failure, failurelen, "upstream request too long");
		return -1;
	}
	char *body;
	size_t len;
	if (http_get(p, sb.buf, &body, &len, NULL, failure, failurelen) < 0)
		return -1;
	struct itr_bval root, files, v;
	if (!itr_bdec_valid((const uint8_t *)body, len) ||
	    itr_bdec((const uint8_t *)body, len, &root) < 0 || root.type != ITR_BVAL_DICT) {
		snprintf(failure, failurelen, "upstream tracker sent an invalid answer");
		free(body);
		return -1;
	}
	if (itr_bdec_dict_get(&root, "failure reason", &v) == 0 && v.type == ITR_BVAL_STR) {
		snprintf(failure, failurelen, "%.*s", (int)v.len, (const char *)v.data);
		free(body);
		return -1;
	}
	if (itr_bdec_dict_get(&root, "files", &files) == 0 && files.type == ITR_BVAL_DICT) {
		size_t pos = 0;
		struct itr_bval key, val, f;
		while (itr_bdec_dict_next(&files, &pos, &key, &val) == 1) {
			if (key.len != ITR_INFO_HASH_LEN || val.type != ITR_BVAL_DICT)
				continue;
			for (size_t i = 0; i < n; i++) {
				if (memcmp(hashes[i], key.data, ITR_INFO_HASH_LEN) != 0)
					continue;
				if (itr_bdec_dict_get(&val, "complete", &f) == 0 &&
				    f.type == ITR_BVAL_INT)
					counts[i].complete = clamp_u32(f.num);
				if (itr_bdec_dict_get(&val, "incomplete", &f) == 0 &&
				    f.type == ITR_BVAL_INT)
					counts[i].incomplete = clamp_u32(f.num);
				if (itr_bdec_dict_get(&val, "downloaded", &f) == 0 &&
				    f.type == ITR_BVAL_INT)
					counts[i].downloaded = clamp_u32(f.num);
			}
		}
	}
	free(body);
	return 0;
}

static int udp_scrape(struct itr_proxy *p, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                      struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	uint8_t pkt[16 + 20 * ITR_PROXY_MAX_SCRAPE], resp[DATAGRAM_MAX];
	itr_be32_put(pkt + 8, ITR_UDP_SCRAPE);
	for (size_t i = 0; i < n; i++)
		memcpy(pkt + 16 + 20 * i, hashes[i], 20);
	long len = udp_request(p, pkt, 16 + 20 * n, resp, sizeof(resp), NULL, failure, failurelen);
	if (len < 0)
		return -1;
	if (len < 8 || itr_be32_get(resp) != ITR_UDP_SCRAPE) {
		snprintf(failure, failurelen, "upstream tracker sent a bad scrape answer");
		return -1;
	}
	for (size_t i = 0; i < n && 8 + 12 * (i + 1) <= (size_t)len; i++) {
		const uint8_t *r = resp + 8 + 12 * i;
		counts[i].complete = itr_be32_get(r);
		counts[i].downloaded = itr_be32_get(r + 4);
		counts[i].incomplete = itr_be32_get(r + 8);
	}
	return 0;
}

int itr_proxy_scrape(struct itr_proxy *p, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                     struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	memset(counts, 0, n * sizeof(*counts));
	if (n == 0)
		return 0;
	if (n > ITR_PROXY_MAX_SCRAPE)
		n = ITR_PROXY_MAX_SCRAPE;
	atomic_fetch_add(&p->scrapes, 1);
	int rc = p->kind == UPSTREAM_HTTP ? http_scrape(p, hashes, n, counts, failure, failurelen)
	                                  : udp_scrape(p, hashes, n, counts, failure, failurelen);
	if (rc < 0)
		atomic_fetch_add(&p->upstream_errors, 1);
	return rc;
}

/* ---- the proxy as an announce backend ------------------------------------ */

static int backend_announce(void *impl, const struct itr_backend_request *req,
                            struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
                            size_t want)
{
	return itr_proxy_announce(impl, req, reply, peers, want);
}

static int backend_scrape(void *impl, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                          struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	return itr_proxy_scrape(impl, hashes, n, counts, failure, failurelen);
}

static void backend_stats(void *impl, struct itr_backend_stats *st)
{
	struct itr_proxy *p = impl;
	/* the upstream holds the swarms; the local store only the proxied clients */
	struct itr_tracker_stats ts;
	itr_tracker_stats(p->tr, &ts);
	st->announces = atomic_load(&p->announces);
	st->scrapes = atomic_load(&p->scrapes);
	st->failures = atomic_load(&p->upstream_failures) + atomic_load(&p->upstream_errors);
	st->torrents = ts.store.torrents;
	st->peers = ts.store.peers_v4 + ts.store.peers_v6;
}

static const struct itr_announce_backend_ops proxy_ops = {
    .announce = backend_announce,
    .scrape = backend_scrape,
    .stats = backend_stats,
};

struct itr_announce_backend *itr_proxy_backend(struct itr_proxy *p)
{
	return &p->backend;
}
