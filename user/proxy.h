/* proxy.h - pTracker proxy mode: itrackerd in front of an existing tracker.
 *
 * A client's announce goes to the upstream tracker (HTTP or UDP, BEP 3 /
 * BEP 15) naming the client's own address, asking for more peers than the
 * client wants; the upstream's peers are ranked by locality for the client
 * (itr_rank) and the client gets its numwant of them, with the upstream's
 * interval and counts. Scrapes are forwarded too. In proxy mode the local
 * swarm store is not used: the upstream owns the swarm.
 *
 * Every upstream exchange is bounded by a timeout; the client then gets a
 * failure reason saying so. The front ends (HTTP routes and a UDP server
 * with worker threads) block one thread per request in flight.
 */
#ifndef ITR_PROXY_H
#define ITR_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "tracker.h"

struct itr_proxy_config {
	/* "http://host:port/path" (the announce URL; the scrape URL replaces a
	 * last path part "announce" with "scrape") or "udp://host:port". */
	const char *upstream;
	unsigned timeout_ms;        /* whole upstream exchange (default 5000) */
	unsigned upstream_factor;   /* ask upstream for numwant * factor peers (4) */
	unsigned min_upstream_want; /* ... and at least this many (200) */
	unsigned udp_workers;       /* UDP front-end threads (16) */
	unsigned connid_lifetime_s; /* reuse a UDP connection id this long (60) */
};

void itr_proxy_config_default(struct itr_proxy_config *cfg);

struct itr_proxy;

/* tr gives numwant defaults and limits, the rank policy, the trusted
 * proxies and the clock (its store is not used). The upstream host is
 * resolved here, once. NULL with err on a bad URL or unknown host. */
struct itr_proxy *itr_proxy_new(const struct itr_proxy_config *cfg, struct itr_tracker *tr,
                                char *err, size_t errlen);
void itr_proxy_free(struct itr_proxy *p);

struct itr_proxy_request {
	struct itr_announce ann; /* ann.peer: the client's address and port */
	uint8_t peer_id[20];
	char key[48]; /* the client's key as text ("" if none) */
};

struct itr_proxy_reply {
	char failure[256]; /* non-empty: answer the client with this failure reason */
	char warning[256]; /* the upstream's warning message, if any */
	uint32_t interval;
	uint32_t min_interval; /* 0 if the upstream gave none */
	struct itr_swarm_counts counts;
	bool has_downloaded;   /* counts.downloaded came from upstream */
	size_t upstream_peers; /* peers the upstream returned */
	size_t npeers;         /* ranked peers written */
};

/* Forward one announce and rank the answer into peers (room for cap).
 * Returns 0 (check reply->failure), -1 out of memory. Thread safe. */
int itr_proxy_announce(struct itr_proxy *p, const struct itr_proxy_request *req,
                       struct itr_proxy_reply *reply, struct itr_ranked_peer *peers, size_t cap);

/* Forward a scrape of n hashes (at most ITR_PROXY_MAX_SCRAPE); counts[i]
 * for hashes[i] (zero for a hash the upstream did not mention). 0, or -1
 * with failure filled. */
#define ITR_PROXY_MAX_SCRAPE 74
int itr_proxy_scrape(struct itr_proxy *p, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                     struct itr_swarm_counts *counts, char *failure, size_t failurelen);

struct itr_proxy_stats {
	uint64_t announces;
	uint64_t upstream_failures; /* upstream answered with a failure reason */
	uint64_t upstream_errors;   /* timeouts, refused connections, garbage */
	uint64_t udp_connects;      /* BEP 15 connects sent upstream */
};
void itr_proxy_get_stats(struct itr_proxy *p, struct itr_proxy_stats *st);

/* HTTP front end: GET /announce and GET /scrape answered through the
 * proxy (instead of itr_tracker_http_register). The server should run a
 * thread pool: each request holds a thread for up to timeout_ms. */
int itr_proxy_http_register(struct itr_http_server *srv, struct itr_proxy *p);

/* UDP front end (BEP 15, own connection ids) on every address of addrs
 * ("0.0.0.0,::"), one port (0: pick one). NULL with err on error. */
struct itr_proxy_udp;
struct itr_proxy_udp *itr_proxy_udp_start(struct itr_proxy *p, const char *addrs, uint16_t port,
                                          char *err, size_t errlen);
uint16_t itr_proxy_udp_port(const struct itr_proxy_udp *u);
void itr_proxy_udp_stop(struct itr_proxy_udp *u);

#endif
