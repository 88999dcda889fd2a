/* proxy.h - pTracker proxy mode: itrackerd in front of an existing tracker.
 *
 * A client's announce goes to the upstream tracker (HTTP or UDP, BEP 3 /
 * BEP 15) naming the client's own address, asking for more peers than the
 * client wants; the upstream's peers are ranked by locality for the client
 * (itr_rank) and the client gets its numwant of them, with the upstream's
 * interval and counts. Scrapes are forwarded too. The upstream owns the
 * swarm; the local store keeps only the clients that announce through us
 * (proxy.c says why).
 *
 * It is an announce backend (announce_backend.h): the tracker's own HTTP
 * and UDP front ends answer through it. Every upstream exchange is bounded
 * by a timeout; the client then gets a failure reason saying so. Each
 * request in flight holds a front-end thread (`threads` of them).
 */
#ifndef ITR_PROXY_H
#define ITR_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announce_backend.h"
#include "tracker.h"

struct itr_proxy_config {
	/* "http://host:port/path" (the announce URL; the scrape URL replaces a
	 * last path part "announce" with "scrape") or "udp://host:port". */
	const char *upstream;
	unsigned timeout_ms;        /* whole upstream exchange (default 5000) */
	unsigned upstream_factor;   /* ask upstream for numwant * factor peers (4) */
	unsigned min_upstream_want; /* ... and at least this many (200) */
	unsigned threads;           /* requests in flight per front end (16) */
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

/* Forward one announce and rank the answer into up to want peers.
 * Returns 0 (check reply->failure), -1 out of memory. Thread safe. */
int itr_proxy_announce(struct itr_proxy *p, const struct itr_backend_request *req,
                       struct itr_backend_reply *reply, struct itr_ranked_peer *peers, size_t want);

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
	uint64_t upstream_peers;    /* peers the upstream returned, all announces together */
	/* proxied announces by the transport the client used */
	uint64_t by_transport[ITR_TRANSPORT_MAX];
};
void itr_proxy_get_stats(struct itr_proxy *p, struct itr_proxy_stats *st);

/* The proxy as the announce backend of the tracker's front ends
 * (itr_tracker_use_backend); it lives as long as p. */
struct itr_announce_backend *itr_proxy_backend(struct itr_proxy *p);

#endif
