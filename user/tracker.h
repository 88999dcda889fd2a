/* tracker.h - the BitTorrent tracker: what the HTTP (BEP 3) and UDP
 * (BEP 15) front ends share (configuration, numwant limits, trusted
 * proxies, per-transport counts, the clock) and the local announce backend
 * (announce_backend.h) on the in-memory swarm store: store the peer, pick
 * candidates, rank them by locality; scrape; expiry.
 */
#ifndef ITR_TRACKER_H
#define ITR_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rank.h"
#include "swarm.h"

struct itr_price;
struct itr_netmap;

struct itr_tracker_config {
	uint32_t interval;        /* seconds: "interval" in every answer */
	uint32_t min_interval;    /* seconds: "min interval" */
	uint32_t default_numwant; /* peers when the client does not say */
	uint32_t max_numwant;     /* cap on numwant / num_want */
	uint32_t peer_expiry;     /* seconds without an announce before a peer is dropped */
	size_t max_torrents;      /* 0: unlimited */
	size_t max_peers;         /* 0: unlimited (IPv4 and IPv6 together) */
	uint32_t max_candidates;  /* cap on the candidates ranked per announce (the tracker
	                           * takes 1.5 numwant + 16, at least 64: O(numwant)) */
	uint32_t max_scrape;      /* info_hashes per HTTP scrape */
	/* Addresses or prefixes ("10.0.0.1, 192.0.2.0/24, ::1") whose requests
	 * may name the client with X-Forwarded-For (and, with accept_ip_param,
	 * `ip` / the BEP 15 IP field). IPv4-mapped IPv6 ("::ffff:127.0.0.1")
	 * means the IPv4 address. NULL or "": none. */
	const char *trusted_proxies;
	/* A trusted proxy's `ip=` / BEP 15 IP field names the client when it
	 * sends no X-Forwarded-For. Off by default: the operator opts in. */
	bool accept_ip_param;
	/* Loopback addresses may be peers (a tracker that listens on loopback
	 * only: tests, demos). Never from other sources' point of view. */
	bool loopback_peers;
	/* Per source address (the peer's address, after the trust rules): */
	uint32_t max_peers_per_source;    /* peers in one swarm; 0: no limit */
	uint32_t max_torrents_per_source; /* swarms it is a peer in; 0: no limit */
	uint32_t announce_rate;           /* announces per second; 0: no limit */
	uint32_t announce_burst;          /* announces at once (bucket size) */
	size_t source_table;              /* sources tracked (bounded memory) */
	struct itr_rank_policy policy;
	/* The price controller (price.h): told every announce, and sets the
	 * external budget per AS per swarm. NULL: policy is used as is. */
	struct itr_price *price;
	unsigned shards; /* store lock shards; 0: default */
	/* Seconds on a monotonic clock; NULL: CLOCK_MONOTONIC. Tests inject one. */
	uint32_t (*clock)(void *arg);
	void *clock_arg;
};

/* The defaults: interval 1800 s, min interval 900 s, numwant 50 (max 200),
 * peer expiry 2700 s, 1M torrents, 10M peers, 1000 candidates, 100 hashes
 * per scrape, no trusted proxy, per source 16 peers per swarm, 10000
 * torrents, 50 announces/s with bursts of 1000, 65536 sources tracked,
 * itr_rank_policy_default. */
void itr_tracker_config_default(struct itr_tracker_config *cfg);

struct itr_tracker;
struct itr_announce_backend;

/* store: NULL for the in-memory store (then owned by the tracker); a store
 * passed in stays the caller's. NULL on error with err filled. */
struct itr_tracker *itr_tracker_new(const struct itr_tracker_config *cfg,
                                    struct itr_swarm_store *store, char *err, size_t errlen);
/* Stops the janitor if running. */
void itr_tracker_free(struct itr_tracker *tr);
/* A thread that drops expired peers every 30 s until itr_tracker_free. */
int itr_tracker_start_janitor(struct itr_tracker *tr);

const struct itr_tracker_config *itr_tracker_get_config(const struct itr_tracker *tr);
uint32_t itr_tracker_now(const struct itr_tracker *tr);

/* BEP 15 numbering (BEP 3 spells them in the query). */
enum itr_event {
	ITR_EVENT_NONE = 0,
	ITR_EVENT_COMPLETED = 1,
	ITR_EVENT_STARTED = 2,
	ITR_EVENT_STOPPED = 3,
};

struct itr_announce {
	uint8_t info_hash[ITR_INFO_HASH_LEN];
	struct itr_peer_addr peer; /* where the peer accepts connections */
	uint64_t downloaded;
	uint64_t left;
	uint64_t uploaded;
	enum itr_event event;
	int64_t numwant; /* negative: the default */
};

/* Why an announce was refused, or a peer not stored (metrics by reason). */
enum itr_refusal {
	ITR_REFUSED_NONE = 0,
	ITR_REFUSED_ADDRESS,         /* not an address a peer can have */
	ITR_REFUSED_RATE,            /* the source's announce rate */
	ITR_REFUSED_SOURCE_PEERS,    /* the source's peers in this swarm */
	ITR_REFUSED_SOURCE_TORRENTS, /* the source's torrents */
	ITR_REFUSED_TORRENTS_FULL,   /* global torrent limit, nothing to evict */
	ITR_REFUSED_PEERS_FULL,      /* global peer limit, nothing to evict */
	ITR_REFUSED_MAX,
};
/* "address", "rate", "source_peers", ...: the metrics label. */
const char *itr_refusal_name(enum itr_refusal r);
struct itr_announce_reply;
/* What a client is told: the failure reason for ADDRESS / RATE, else the
 * warning for a peer that was not stored (NULL when it was). */
const char *itr_tracker_refusal_text(const struct itr_announce_reply *reply);

struct itr_announce_reply {
	/* Not NONE for ADDRESS and RATE: nothing was stored nor selected and
	 * the front end answers with a failure. Other reasons only mean the
	 * peer was not stored (stored says how); it still gets peers. */
	enum itr_refusal refused;
	uint32_t interval;
	uint32_t min_interval;
	struct itr_swarm_counts counts;
	enum itr_swarm_status stored; /* anything but STORED: a limit was hit */
	size_t npeers;                /* entries written to the peers buffer */
};

/* Store (or, on stopped, remove) the peer and rank peers of its address
 * family for it. peers has room for cap entries (max_numwant is enough).
 * Returns 0, or -1 if out of memory. */
int itr_tracker_announce(struct itr_tracker *tr, const struct itr_announce *ann,
                         struct itr_announce_reply *reply, struct itr_ranked_peer *peers,
                         size_t cap);

/* The same store (or remove), but hand back up to max unranked candidates
 * (the peer's own PID group first, then a stable sample) for a caller that
 * ranks them together with peers of its own (proxy mode). Returns how many,
 * or -1 if out of memory. */
long itr_tracker_announce_candidates(struct itr_tracker *tr, const struct itr_announce *ann,
                                     struct itr_announce_reply *reply, struct itr_peer_addr *cands,
                                     size_t max);

/* The local store as an announce backend (announce_backend.h); it lives
 * as long as tr. */
struct itr_announce_backend *itr_tracker_backend(struct itr_tracker *tr);
/* The backend both front ends answer with: the local store unless another
 * (the proxy) was set before they started. be must outlive them. */
void itr_tracker_use_backend(struct itr_tracker *tr, struct itr_announce_backend *be);
struct itr_announce_backend *itr_tracker_active_backend(struct itr_tracker *tr);

/* How many peers to answer with: numwant (negative: the default) within
 * max_numwant and cap; 0 for a stopped event. */
size_t itr_tracker_want(const struct itr_tracker *tr, const struct itr_announce *ann, size_t cap);

/* The rank policy for this announce: the configured one with the swarm's
 * gateway salt, adapted by the price controller when there is one. */
void itr_tracker_policy(struct itr_tracker *tr, const struct itr_netmap *map,
                        const struct itr_announce *ann, struct itr_rank_policy *policy);

/* Counts for one torrent; 0 if known, -1 (counts zero) if not. */
int itr_tracker_scrape(struct itr_tracker *tr, const uint8_t info_hash[ITR_INFO_HASH_LEN],
                       struct itr_swarm_counts *counts);

/* Drop expired peers now; returns how many. */
size_t itr_tracker_expire(struct itr_tracker *tr);

/* The transports the front ends serve. */
enum itr_transport {
	ITR_TRANSPORT_HTTP = 0,
	ITR_TRANSPORT_UDP = 1,
	ITR_TRANSPORT_MAX = 2,
};

/* How a front end answered an announce. */
enum itr_outcome {
	ITR_OUTCOME_OK = 0,       /* answered with peers */
	ITR_OUTCOME_REJECTED = 1, /* bad request: failure reason / UDP error sent */
	ITR_OUTCOME_ERROR = 2,    /* the backend failed: out of memory, upstream down */
	ITR_OUTCOME_MAX = 3,
};

struct itr_tracker_stats {
	struct itr_swarm_stats store;
	uint64_t announces; /* announces the local store answered */
	uint64_t scrapes;
	uint64_t rejected; /* requests of any kind answered with a failure / error */
	/* announces by the transport they came over, whatever answered them */
	uint64_t by_transport[ITR_TRANSPORT_MAX][ITR_OUTCOME_MAX];
	uint64_t refused[ITR_REFUSED_MAX]; /* by reason, ADDRESS and RATE included */
	size_t sources;                    /* source addresses tracked */
	uint64_t sources_evicted;          /* pushed out of the bounded table */
};
void itr_tracker_stats(struct itr_tracker *tr, struct itr_tracker_stats *stats);
/* Front ends count every rejected request here... */
void itr_tracker_count_rejected(struct itr_tracker *tr);
/* ... and every announce by transport and outcome. */
void itr_tracker_count_announce(struct itr_tracker *tr, enum itr_transport transport,
                                enum itr_outcome outcome);
/* A store that applies the per-source quotas itself (the Redis
 * store: source_ledger.h) counts its refusals by reason here, and counts
 * each source's torrents in the tracker's source table. */
void itr_tracker_count_refusal(struct itr_tracker *tr, enum itr_refusal r);
struct itr_quota;
struct itr_quota *itr_tracker_quota(struct itr_tracker *tr);

/* Whether requests from addr may name another client address. */
bool itr_tracker_trusts(const struct itr_tracker *tr, const struct itr_peer_addr *addr);

/* NULL if addr may be stored and handed out as a peer, else why not
 * (peer_policy.h; loopback per the config). */
const char *itr_tracker_peer_refusal(struct itr_tracker *tr, const struct itr_peer_addr *addr);

/* Whether client (the resolved peer address) may announce now: NULL, or
 * the failure reason when its announce rate is exceeded (counted). Both
 * front ends ask before any backend, local store or proxy, sees it. */
const char *itr_tracker_admit(struct itr_tracker *tr, const struct itr_peer_addr *client);

/* The peer a BEP 15 announce names: the source, or the request's IPv4
 * field when the source is a trusted proxy and accept_ip_param is set
 * (ipv4: 4 bytes, all zero when not given). NULL, or why it cannot be a
 * peer (out is filled either way). */
const char *itr_tracker_udp_client(struct itr_tracker *tr, const struct itr_peer_addr *src,
                                   const uint8_t ipv4[4], uint16_t port, struct itr_peer_addr *out);

/* sockaddr -> peer address; IPv4-mapped IPv6 becomes IPv4. 0 or -1. */
int itr_peer_addr_from_sockaddr(const struct sockaddr *sa, struct itr_peer_addr *out);

#endif
