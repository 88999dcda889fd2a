/* tracker_http.h - the HTTP tracker: GET /announce (BEP 3, 23, 7) and
 * GET /scrape (BEP 48) on the shared HTTP server, with the query parsers
 * exposed for tests and fuzzing.
 */
#ifndef ITR_TRACKER_HTTP_H
#define ITR_TRACKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bencode.h"
#include "http.h"
#include "tracker.h"

struct itr_announce_query {
	uint8_t info_hash[ITR_INFO_HASH_LEN];
	uint8_t peer_id[20];
	uint16_t port;
	uint64_t uploaded;
	uint64_t downloaded;
	uint64_t left; /* UINT64_MAX when absent: not a seeder */
	enum itr_event event;
	int64_t numwant; /* -1 when absent */
	bool compact;    /* false only for compact=0 */
	bool no_peer_id;
	bool has_ip;
	char ip[64]; /* the `ip` parameter as given, used only from trusted proxies */
};

/* Parse an announce query string (raw, %-escaped). 0, or -1 with the
 * failure reason (what was wrong, for the client) in why. */
int itr_announce_query_parse(const char *query, size_t len, struct itr_announce_query *out,
                             char *why, size_t whylen);

/* Parse a scrape query: every info_hash, at most max of them, into hashes.
 * Returns the count (>= 1) or -1 with why. */
long itr_scrape_query_parse(const char *query, size_t len, uint8_t (*hashes)[ITR_INFO_HASH_LEN],
                            size_t max, char *why, size_t whylen);

/* Register GET /announce and GET /scrape; the tracker must outlive srv. */
int itr_tracker_http_register(struct itr_http_server *srv, struct itr_tracker *tr);

/* Shared with the proxy's front end (proxy.c), so both answer alike. */
/* A bencoded failure reason, HTTP 200 as BEP 3 wants. */
void itr_tracker_http_failure(struct itr_http_response *resp, const char *reason);
/* The address peers should connect to: the connection's source, unless
 * it is a trusted proxy naming the client (X-Forwarded-For; ip= only with
 * accept_ip_param). NULL, or the failure reason (also for an address that
 * cannot be a peer, peer_policy.h). */
const char *itr_tracker_http_client(struct itr_tracker *tr, const struct itr_http_request *req,
                                    const struct itr_announce_query *q, struct itr_peer_addr *out);
/* "peers" (compact: IPv4, with "peers6" when the client or a peer is IPv6;
 * else a list of {ip, port} dictionaries). */
void itr_tracker_http_put_peers(struct itr_benc *b, const struct itr_ranked_peer *peers, size_t n,
                                bool compact, bool client_v6);

#endif
