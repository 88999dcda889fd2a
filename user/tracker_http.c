/* tracker_http.c - BEP 3 announce and BEP 48 scrape over HTTP.
 *
 * Bad requests get a bencoded "failure reason" that names what was wrong
 * (with HTTP 200, because clients only read the body of a 200). The client's
 * address is the connection's source; `ip` and X-Forwarded-For count only
 * when the connection comes from a configured trusted proxy, since anyone
 * else could use them to point a swarm at a victim.
 */
#include "tracker_http.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announce_backend.h"
#include "bencode.h"

#define MAX_VALUE 128 /* longer values are only ever reported as too long */

struct query_param {
	char key[24];
	uint8_t value[MAX_VALUE + 1]; /* NUL-terminated when it fits */
	size_t value_len;             /* decoded length, may exceed MAX_VALUE */
};

/* Next key=value pair from *pos; 1 with p filled, 0 at the end, -1 on a
 * broken escape. Keys too long for p->key come back as "". */
static int next_param(const char *query, size_t len, size_t *pos, struct query_param *p)
{
	while (*pos < len && query[*pos] == '&')
		(*pos)++;
	if (*pos >= len)
		return 0;
	size_t start = *pos, end = start;
	while (end < len && query[end] != '&')
		end++;
	*pos = end;
	const char *eq = memchr(query + start, '=', end - start);
	size_t key_end = eq ? (size_t)(eq - query) : end;
	long klen = itr_http_percent_decode(query + start, key_end - start, (uint8_t *)p->key,
	                                    sizeof(p->key) - 1);
	if (klen < 0)
		return -1;
	if ((size_t)klen >= sizeof(p->key) || memchr(p->key, '\0', (size_t)klen))
		klen = 0;
	p->key[klen] = '\0';
	size_t vstart = eq ? key_end + 1 : end;
	long vlen = itr_http_percent_decode(query + vstart, end - vstart, p->value, MAX_VALUE);
	if (vlen < 0)
		return -1;
	p->value_len = (size_t)vlen;
	p->value[p->value_len <= MAX_VALUE ? p->value_len : MAX_VALUE] = '\0';
	return 1;
}

static bool value_is(const struct query_param *p, const char *s)
{
	return p->value_len == strlen(s) && memcmp(p->value, s, p->value_len) == 0;
}

/* Strict non-negative decimal. */
static int parse_u64(const struct query_param *p, uint64_t *out)
{
	if (p->value_len == 0 || p->value_len > 20)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < p->value_len; i++) {
		uint8_t c = p->value[i];
		if (c < '0' || c > '9')
			return -1;
		if (v > (UINT64_MAX - (c - '0')) / 10)
			return -1;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return 0;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, whylen, __VA_ARGS__);                                                \
		return -1;                                                                         \
	} while (0)

int itr_announce_query_parse(const char *query, size_t len, struct itr_announce_query *out,
                             char *why, size_t whylen)
{
	struct query_param p;
	bool have_hash = false, have_peer_id = false, have_port = false;
	size_t pos = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->left = UINT64_MAX;
	out->numwant = -1;
	out->compact = true;
	while ((rc = next_param(query, len, &pos, &p)) > 0) {
		uint64_t v;
		if (strcmp(p.key, "info_hash") == 0) {
			if (have_hash)
				FAIL("info_hash given more than once");
			if (p.value_len != ITR_INFO_HASH_LEN)
				FAIL("info_hash is not 20 bytes (got %zu)", p.value_len);
			memcpy(out->info_hash, p.value, ITR_INFO_HASH_LEN);
			have_hash = true;
		} else if (strcmp(p.key, "peer_id") == 0) {
			if (p.value_len != 20)
				FAIL("peer_id is not 20 bytes (got %zu)", p.value_len);
			memcpy(out->peer_id, p.value, 20);
			have_peer_id = true;
		} else if (strcmp(p.key, "port") == 0) {
			if (parse_u64(&p, &v) < 0 || v == 0 || v > 65535)
				FAIL("bad port: must be a number from 1 to 65535");
			out->port = (uint16_t)v;
			have_port = true;
		} else if (strcmp(p.key, "uploaded") == 0) {
			if (parse_u64(&p, &out->uploaded) < 0)
				FAIL("bad uploaded: must be a non-negative integer");
		} else if (strcmp(p.key, "downloaded") == 0) {
			if (parse_u64(&p, &out->downloaded) < 0)
				FAIL("bad downloaded: must be a non-negative integer");
		} else if (strcmp(p.key, "left") == 0) {
			if (parse_u64(&p, &out->left) < 0)
				FAIL("bad left: must be a non-negative integer");
		} else if (strcmp(p.key, "event") == 0) {
			if (value_is(&p, "started"))
				out->event = ITR_EVENT_STARTED;
			else if (value_is(&p, "completed"))
				out->event = ITR_EVENT_COMPLETED;
			else if (value_is(&p, "stopped"))
				out->event = ITR_EVENT_STOPPED;
			else if (value_is(&p, "") || value_is(&p, "empty") ||
			         value_is(&p, "paused"))
				out->event = ITR_EVENT_NONE; /* paused: BEP 21 partial seed */
			else
				FAIL("bad event: must be started, completed, stopped or empty");
		} else if (strcmp(p.key, "numwant") == 0) {
			if (parse_u64(&p, &v) < 0)
				FAIL("bad numwant: must be a non-negative integer");
			out->numwant = v > INT64_MAX ? INT64_MAX : (int64_t)v;
		} else if (strcmp(p.key, "compact") == 0) {
			if (value_is(&p, "1"))
				out->compact = true;
			else if (value_is(&p, "0"))
				out->compact = false;
			else
				FAIL("bad compact: must be 0 or 1");
		} else if (strcmp(p.key, "no_peer_id") == 0) {
			out->no_peer_id = !value_is(&p, "0");
		} else if (strcmp(p.key, "key") == 0) {
			/* only ever passed on: one we cannot pass on is left out */
			out->has_key =
			    p.value_len < sizeof(out->key) && !memchr(p.value, '\0', p.value_len);
			if (out->has_key) {
				memcpy(out->key, p.value, p.value_len);
				out->key[p.value_len] = '\0';
			}
		} else if (strcmp(p.key, "ip") == 0) {
			if (p.value_len >= sizeof(out->ip))
				FAIL("bad ip: too long");
			memcpy(out->ip, p.value, p.value_len);
			out->ip[p.value_len] = '\0';
			out->has_ip = true;
		}
		/* trackerid, ipv4, ipv6, supportcrypto...: not used */
	}
	if (rc < 0)
		FAIL("malformed query: broken %%-escape");
	if (!have_hash)
		FAIL("missing info_hash");
	if (!have_peer_id)
		FAIL("missing peer_id");
	if (!have_port)
		FAIL("missing port");
	return 0;
}

long itr_scrape_query_parse(const char *query, size_t len, uint8_t (*hashes)[ITR_INFO_HASH_LEN],
                            size_t max, char *why, size_t whylen)
{
	struct query_param p;
	size_t pos = 0, n = 0;
	int rc;
	while ((rc = next_param(query, len, &pos, &p)) > 0) {
		if (strcmp(p.key, "info_hash") != 0)
			continue;
		if (p.value_len != ITR_INFO_HASH_LEN)
			FAIL("info_hash is not 20 bytes (got %zu)", p.value_len);
		if (n >= max)
			FAIL("too many info_hash values (at most %zu per scrape)", max);
		memcpy(hashes[n++], p.value, ITR_INFO_HASH_LEN);
	}
	if (rc < 0)
		FAIL("malformed query: broken %%-escape");
	if (n == 0)
		FAIL("missing info_hash (this tracker does not serve full scrapes)");
	return (long)n;
}

#undef FAIL

/* ---- handlers ------------------------------------------------------------ */

/* A bencoded failure reason, HTTP 200 as BEP 3 wants. */
static void http_failure(struct itr_http_response *resp, const char *reason)
{
	char *body;
	size_t len;
	if (itr_benc_failure(reason, &body, &len) < 0) {
		itr_http_set_body(resp, 500, "text/plain", NULL, 0);
		return;
	}
	itr_http_set_body(resp, 200, "text/plain", body, len);
}

static void reply_failure(struct itr_tracker *tr, struct itr_http_response *resp,
                          const char *reason)
{
	itr_tracker_count_rejected(tr);
	http_failure(resp, reason);
}

static int parse_ip_text(const char *text, struct itr_peer_addr *out)
{
	char buf[64];
	size_t n = strlen(text);
	while (n && (text[0] == ' ' || text[0] == '\t')) {
		text++;
		n--;
	}
	while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
		n--;
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		text++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		out->family = 6;
		if (memcmp(out->addr, v4mapped, 12) == 0) {
			memmove(out->addr, out->addr + 12, 4);
			memset(out->addr + 4, 0, 12);
			out->family = 4;
		}
		return 0;
	}
	return -1;
}

/* The address peers should connect to; NULL or the failure reason. Only a
 * trusted proxy may name another address: its X-Forwarded-For (the entry it
 * appended, the rightmost) wins; its `ip=` counts only when the operator
 * opted in (accept_ip_param) and no X-Forwarded-For came. Whatever the
 * source, the result must be an address a peer can have. */
static const char *client_address(struct itr_tracker *tr, const struct itr_http_request *req,
                                  const struct itr_announce_query *q, struct itr_peer_addr *out)
{
	if (itr_peer_addr_from_sockaddr((const struct sockaddr *)&req->peer, out) < 0)
		return "unsupported address family";
	if (itr_tracker_trusts(tr, out)) {
		if (req->forwarded_for) {
			const char *last = strrchr(req->forwarded_for, ',');
			last = last ? last + 1 : req->forwarded_for;
			if (parse_ip_text(last, out) < 0)
				return "bad X-Forwarded-For: not an IPv4 or IPv6 address";
		} else if (q->has_ip && itr_tracker_get_config(tr)->accept_ip_param) {
			if (parse_ip_text(q->ip, out) < 0)
				return "bad ip: not an IPv4 or IPv6 address";
		}
	}
	out->port = q->port;
	const char *refusal = itr_tracker_peer_refusal(tr, out);
	if (refusal) {
		static _Thread_local char why[96];
		snprintf(why, sizeof(why), "refused: %s, cannot be a peer", refusal);
		return why;
	}
	return NULL;
}

/* key: the count of peers of family (BEP 23 / BEP 7 compact form: the
 * address, then the port, network order). */
static void put_compact(struct itr_benc *b, const char *key, const struct itr_ranked_peer *peers,
                        size_t n, uint8_t family, size_t count)
{
	size_t alen = family == 6 ? 16 : 4;
	char prefix[32];
	int plen = snprintf(prefix, sizeof(prefix), "%zu:", count * (alen + 2));
	itr_benc_cstr(b, key);
	itr_benc_raw(b, prefix, (size_t)plen);
	for (size_t i = 0; i < n; i++) {
		if (peers[i].peer.family != family)
			continue;
		uint8_t rec[18];
		memcpy(rec, peers[i].peer.addr, alen);
		rec[alen] = (uint8_t)(peers[i].peer.port >> 8);
		rec[alen + 1] = (uint8_t)peers[i].peer.port;
		itr_benc_raw(b, rec, alen + 2);
	}
}

/* "peers" (compact: IPv4, with "peers6" when the client or a peer is IPv6;
 * else a list of {ip, port} dictionaries). */
static void put_peers(struct itr_benc *b, const struct itr_ranked_peer *peers, size_t n,
                      bool compact, bool client_v6)
{
	if (!compact) {
		itr_benc_cstr(b, "peers");
		itr_benc_list(b);
		for (size_t i = 0; i < n; i++) {
			char text[INET6_ADDRSTRLEN];
			itr_benc_dict(b);
			itr_benc_cstr(b, "ip");
			itr_benc_cstr(b, itr_peer_addr_ntop(&peers[i].peer, text, sizeof(text)));
			/* peer ids are not stored (memory budget): the "no_peer_id"
			 * form, which clients accept for compact=0 as well */
			itr_benc_key_int(b, "port", peers[i].peer.port);
			itr_benc_end(b);
		}
		itr_benc_end(b);
		return;
	}
	size_t n6 = 0;
	for (size_t i = 0; i < n; i++)
		n6 += peers[i].peer.family == 6;
	put_compact(b, "peers", peers, n, 4, n - n6);
	if (n6 > 0 || client_v6)
		put_compact(b, "peers6", peers, n, 6, n6);
}

/* Peers up to this many are ranked into a stack buffer (the default
 * max_numwant is 200); a larger --max-numwant costs an allocation. */
#define STACK_PEERS 256

static void reply_announce_failure(struct itr_tracker *tr, struct itr_http_response *resp,
                                   enum itr_outcome outcome, const char *reason)
{
	if (outcome == ITR_OUTCOME_REJECTED)
		itr_tracker_count_rejected(tr);
	itr_tracker_count_announce(tr, ITR_TRANSPORT_HTTP, outcome);
	http_failure(resp, reason);
}

static void put_announce_reply(struct itr_benc *b, const struct itr_backend_reply *reply,
                               const struct itr_ranked_peer *peers, bool compact, bool client_v6)
{
	itr_benc_reserve(b, 160 + reply->npeers * (compact ? 18 : 64));
	itr_benc_dict(b);
	itr_benc_key_int(b, "complete", reply->counts.complete);
	if (reply->has_downloaded)
		itr_benc_key_int(b, "downloaded", reply->counts.downloaded);
	itr_benc_key_int(b, "incomplete", reply->counts.incomplete);
	itr_benc_key_int(b, "interval", reply->interval);
	if (reply->min_interval)
		itr_benc_key_int(b, "min interval", reply->min_interval);
	put_peers(b, peers, reply->npeers, compact, client_v6);
	if (reply->warning[0])
		itr_benc_key_str(b, "warning message", reply->warning, strlen(reply->warning));
	itr_benc_end(b);
}

/* An announce's backend request from its HTTP request: NULL, or the
 * reason it is refused (why holds a parse error's). */
static const char *announce_request(struct itr_tracker *tr, const struct itr_http_request *req,
                                    struct itr_announce_query *q, struct itr_backend_request *br,
                                    char *why, size_t whylen)
{
	const char *query = req->query ? req->query : "";
	if (itr_announce_query_parse(query, strlen(query), q, why, whylen) < 0)
		return why;
	*br = (struct itr_backend_request){
	    .ann =
	        {
	            .downloaded = q->downloaded,
	            .left = q->left,
	            .uploaded = q->uploaded,
	            .event = q->event,
	            .numwant = q->numwant,
	        },
	    .key_text = q->has_key ? q->key : NULL,
	    .has_key = q->has_key,
	    .transport = ITR_TRANSPORT_HTTP,
	};
	memcpy(br->ann.info_hash, q->info_hash, ITR_INFO_HASH_LEN);
	memcpy(br->peer_id, q->peer_id, sizeof(br->peer_id));
	const char *bad = client_address(tr, req, q, &br->ann.peer);
	return bad ? bad : itr_tracker_admit(tr, &br->ann.peer);
}

/* The answer to an announce from the backend's reply (rc: what announce
 * returned). */
static void announce_answer(struct itr_tracker *tr, struct itr_http_response *resp,
                            const struct itr_announce_query *q,
                            const struct itr_backend_request *br,
                            const struct itr_backend_reply *reply,
                            const struct itr_ranked_peer *peers, int rc)
{
	if (rc < 0) {
		reply_announce_failure(tr, resp, ITR_OUTCOME_ERROR,
		                       "tracker out of memory, try later");
		return;
	}
	if (reply->failure[0]) {
		reply_announce_failure(tr, resp, ITR_OUTCOME_ERROR, reply->failure);
		return;
	}
	struct itr_benc b;
	itr_benc_init(&b);
	put_announce_reply(&b, reply, peers, q->compact, br->ann.peer.family == 6);
	char *body;
	size_t len;
	if (itr_benc_finish(&b, &body, &len) < 0) {
		reply_announce_failure(tr, resp, ITR_OUTCOME_ERROR,
		                       "tracker out of memory, try later");
		return;
	}
	itr_tracker_count_announce(tr, ITR_TRANSPORT_HTTP, ITR_OUTCOME_OK);
	itr_http_set_body(resp, 200, "text/plain", body, len);
}

static void handle_announce(const struct itr_http_request *req, struct itr_http_response *resp,
                            void *arg)
{
	struct itr_tracker *tr = arg;
	struct itr_announce_query q;
	struct itr_backend_request br;
	char why[160];
	const char *bad = announce_request(tr, req, &q, &br, why, sizeof(why));
	if (bad) {
		reply_announce_failure(tr, resp, ITR_OUTCOME_REJECTED, bad);
		return;
	}
	size_t cap = itr_tracker_get_config(tr)->max_numwant;
	struct itr_ranked_peer stack_peers[STACK_PEERS];
	struct itr_ranked_peer *peers =
	    cap <= STACK_PEERS ? stack_peers : malloc(cap * sizeof(*peers));
	struct itr_backend_reply reply;
	int rc = peers ? itr_backend_announce(itr_tracker_active_backend(tr), &br, &reply, peers,
	                                      itr_tracker_want(tr, &br.ann, cap))
	               : -1;
	announce_answer(tr, resp, &q, &br, &reply, peers, rc);
	if (peers != stack_peers)
		free(peers);
}

/* A batch of announces (itr_http_batch): the refused ones answered at
 * once, the others through the backend's announce_many together, so that
 * a backend that waits on the network shares its round trips among them. */
static void handle_announce_many(const struct itr_http_request *const *reqs,
                                 struct itr_http_response *const *resps, size_t n, void *arg)
{
	struct itr_tracker *tr = arg;
	struct batch {
		struct itr_announce_query q[ITR_HTTP_BATCH_MAX];
		struct itr_backend_request br[ITR_HTTP_BATCH_MAX];
		struct itr_backend_reply reply[ITR_HTTP_BATCH_MAX];
		struct itr_ranked_peer *peers[ITR_HTTP_BATCH_MAX];
		size_t want[ITR_HTTP_BATCH_MAX];
		size_t at[ITR_HTTP_BATCH_MAX]; /* the request each came in */
	} batch, *b = &batch; /* about 28 KB: on the worker's stack, no allocation per batch */
	size_t cap = itr_tracker_get_config(tr)->max_numwant;
	size_t m = 0, wanted = 0;
	for (size_t i = 0; i < n && i < ITR_HTTP_BATCH_MAX; i++) {
		char why[160];
		const char *bad =
		    announce_request(tr, reqs[i], &b->q[m], &b->br[m], why, sizeof(why));
		if (bad) {
			reply_announce_failure(tr, resps[i], ITR_OUTCOME_REJECTED, bad);
			continue;
		}
		b->want[m] = itr_tracker_want(tr, &b->br[m].ann, cap);
		wanted += b->want[m];
		b->at[m++] = i;
	}
	/* room for what each asked for, not max_numwant each: a batch of
	 * numwant 50 stays under malloc's mmap threshold */
	struct itr_ranked_peer *peer_buf = malloc((wanted ? wanted : 1) * sizeof(*peer_buf));
	for (size_t k = 0, at = 0; k < m; at += b->want[k++])
		b->peers[k] = peer_buf ? peer_buf + at : NULL;
	const struct itr_announce_backend *be = itr_tracker_active_backend(tr);
	int rc = !peer_buf ? -1
	         : m       ? be->ops->announce_many(be->impl, b->br, b->reply, b->peers, b->want, m)
	                   : 0;
	for (size_t k = 0; k < m; k++)
		announce_answer(tr, resps[b->at[k]], &b->q[k], &b->br[k], &b->reply[k], b->peers[k],
		                rc);
	free(peer_buf);
}

static int compare_hash(const void *a, const void *b)
{
	return memcmp(a, b, ITR_INFO_HASH_LEN);
}

static void handle_scrape(const struct itr_http_request *req, struct itr_http_response *resp,
                          void *arg)
{
	struct itr_tracker *tr = arg;
	struct itr_announce_backend *be = itr_tracker_active_backend(tr);
	size_t max = be->max_scrape ? be->max_scrape : 1;
	uint8_t(*hashes)[ITR_INFO_HASH_LEN] = calloc(max, ITR_INFO_HASH_LEN);
	struct itr_swarm_counts *counts = calloc(max, sizeof(*counts));
	char why[ITR_BACKEND_TEXT];
	const char *query = req->query ? req->query : "";

	if (!hashes || !counts) {
		free(hashes);
		free(counts);
		http_failure(resp, "tracker out of memory, try later");
		return;
	}
	long n = itr_scrape_query_parse(query, strlen(query), hashes, max, why, sizeof(why));
	if (n < 0) {
		free(hashes);
		free(counts);
		reply_failure(tr, resp, why);
		return;
	}
	/* dictionary keys must be sorted and unique */
	qsort(hashes, (size_t)n, ITR_INFO_HASH_LEN, compare_hash);
	size_t unique = 0;
	for (long i = 0; i < n; i++)
		if (unique == 0 || memcmp(hashes[i], hashes[unique - 1], ITR_INFO_HASH_LEN) != 0)
			memmove(hashes[unique++], hashes[i], ITR_INFO_HASH_LEN);
	if (itr_backend_scrape(be, (const uint8_t(*)[ITR_INFO_HASH_LEN])hashes, unique, counts, why,
	                       sizeof(why)) < 0) {
		free(hashes);
		free(counts);
		http_failure(resp, why);
		return;
	}
	struct itr_benc b;
	itr_benc_init(&b);
	itr_benc_dict(&b);
	itr_benc_cstr(&b, "files");
	itr_benc_dict(&b);
	for (size_t i = 0; i < unique; i++) {
		itr_benc_str(&b, hashes[i], ITR_INFO_HASH_LEN);
		itr_benc_dict(&b);
		itr_benc_key_int(&b, "complete", counts[i].complete);
		itr_benc_key_int(&b, "downloaded", counts[i].downloaded);
		itr_benc_key_int(&b, "incomplete", counts[i].incomplete);
		itr_benc_end(&b);
	}
	itr_benc_end(&b);
	itr_benc_end(&b);
	free(hashes);
	free(counts);
	char *body;
	size_t len;
	if (itr_benc_finish(&b, &body, &len) < 0) {
		http_failure(resp, "tracker out of memory, try later");
		return;
	}
	itr_http_set_body(resp, 200, "text/plain", body, len);
}

int itr_tracker_http_register(struct itr_http_server *srv, struct itr_tracker *tr)
{
	if (itr_http_route(srv, "GET", "/announce", handle_announce, tr) < 0)
		return -1;
	if (itr_http_route(srv, "GET", "/scrape", handle_scrape, tr) < 0)
		return -1;
	/* A backend that waits on an upstream tracker holds its thread: on the
	 * worker pool, where it cannot hold up a local answer. */
	const struct itr_announce_backend *be = itr_tracker_active_backend(tr);
	if (be->threads &&
	    (itr_http_offload(srv, "/announce") < 0 || itr_http_offload(srv, "/scrape") < 0))
		return -1;
	/* A backend that overlaps a batch's round trips gets announces a batch
	 * at a time. */
	if (be->threads && be->ops->announce_many && be->http_batch_runners &&
	    itr_http_batch(srv, "/announce", handle_announce_many, be->http_batch_runners) < 0)
		return -1;
	/* Offloaded or not, the fast lane may take a closing GET. */
	if (itr_http_lane(srv, "/announce") < 0 || itr_http_lane(srv, "/scrape") < 0)
		return -1;
	return 0;
}
