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
	bool has_key;
	char key[48]; /* BEP 7 key as given (NUL-free), passed on to a proxied upstream */
};

/* Parse an announce query string (raw, %-escaped). 0, or -1 with the
 * failure reason (what was wrong, for the client) in why. */
int itr_announce_query_parse(const char *query, size_t len, struct itr_announce_query *out,
                             char *why, size_t whylen);

/* Parse a scrape query: every info_hash, at most max of them, into hashes.
 * Returns the count (>= 1) or -1 with why. */
long itr_scrape_query_parse(const char *query, size_t len, uint8_t (*hashes)[ITR_INFO_HASH_LEN],
                            size_t max, char *why, size_t whylen);

/* Register GET /announce and GET /scrape, answered by the tracker's
 * active backend (itr_tracker_use_backend); the tracker must outlive srv. */
int itr_tracker_http_register(struct itr_http_server *srv, struct itr_tracker *tr);

#endif
