/* swarm.h - the tracker's peer store: info_hash -> peers, behind a small
 * interface (a table of operations) so that a shared backend can be added
 * next to the default in-memory store without touching the tracker.
 *
 * Peers are grouped by a 16-bit group number (the tracker uses the index of
 * the peer's PID in the network map), so that the peers of one PID are found
 * without scanning the swarm. Times are seconds on the tracker's clock.
 */
#ifndef ITR_SWARM_H
#define ITR_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rank.h" /* struct itr_peer_addr */

#define ITR_INFO_HASH_LEN 20

struct itr_swarm_store;

struct itr_swarm_counts {
	uint32_t complete;   /* seeders */
	uint32_t incomplete; /* leechers */
	uint32_t downloaded; /* completed events seen */
};

/* How the caller groups addresses. group_of must be a pure function of the
 * address for one generation; when its answers may change (the network map
 * was reloaded) the caller bumps generation and the store regroups a swarm
 * the next time it touches it. */
struct itr_swarm_grouping {
	uint32_t generation;
	uint16_t (*group_of)(void *ctx, uint8_t family, const uint8_t *addr);
	void *ctx;
};

struct itr_swarm_announce {
	struct itr_peer_addr peer;
	uint16_t group;
	bool seeder;
	bool completed;          /* a completed event: counts one download */
	uint32_t max_per_source; /* records one address may hold in the swarm; 0: no limit */
	/* What the peer has left and has downloaded (bytes): the store keeps
	 * left as a fraction of the torrent's size (see itr_swarm_tally). */
	uint64_t left, downloaded;
};

enum itr_swarm_status {
	ITR_SWARM_STORED = 0,    /* peer added or refreshed */
	ITR_SWARM_NO_TORRENTS,   /* new torrent refused: max_torrents reached */
	ITR_SWARM_NO_PEERS,      /* new peer refused: max_peers reached */
	ITR_SWARM_NO_MEMORY,     /* allocation failed */
	ITR_SWARM_SOURCE_PEERS,  /* new peer refused: its address has max_per_source here */
	ITR_SWARM_SOURCE_SWARMS, /* new peer refused: the enter hook said no */
};

struct itr_swarm_select {
	struct itr_peer_addr client; /* left out of the answer */
	uint16_t group;              /* the client's group: taken first */
	bool no_seeders;             /* the client seeds: leave seeders out */
	uint64_t seed;               /* per-client seed of the deterministic sample */
	size_t max;                  /* at most this many candidates */
	/* Order of the other groups, lower first (the tracker: p-distance from
	 * the client's PID); NULL: by group number. */
	uint32_t (*group_cost)(void *ctx, uint16_t group);
	void *cost_ctx;
	/* Optional: each candidate's group in the request's generation (0: no
	 * group), or ITR_SWARM_GROUP_UNKNOWN where the store cannot say (a
	 * swarm grouped by a newer map). A store that does not fill it leaves
	 * what the caller put there. */
	uint16_t *groups;
};

/* Not a group number callers use while they pass groups (they number
 * fewer than 65535 groups): "look it up". */
#define ITR_SWARM_GROUP_UNKNOWN 0xffff

struct itr_swarm_stats {
	size_t torrents;
	size_t peers_v4;
	size_t peers_v6;
	size_t seeders;
	size_t bytes; /* bytes held by tables and peer vectors */
	uint64_t refused_torrents;
	uint64_t refused_peers;
	uint64_t expired_peers;
	uint64_t evicted_torrents; /* swarms dropped to make room at a global limit */
};

/* Peers of a part of a swarm, for the price controller (price.h): how many,
 * how many seed, and the sum of each peer's left fraction in units of
 * 1/ITR_SWARM_LEFT_UNITS. A peer's fraction is its `left` over the largest
 * left + downloaded announced in the swarm (its size), taken when the peer
 * last announced: a size that grows later reaches the older records at
 * their next announce. */
#define ITR_SWARM_LEFT_UNITS 127
struct itr_swarm_tally {
	uint32_t peers;
	uint32_t seeders;
	uint64_t left_units;
};

struct itr_swarm_group_tally {
	uint16_t group;
	struct itr_swarm_tally tally;
};

/* Called for every swarm by tally_each, with the swarm's groups (ascending,
 * each once; IPv4 and IPv6 records together) and its whole tally. Called
 * with a store lock held: it must not call back into the store. */
typedef void (*itr_swarm_tally_fn)(void *ctx, const struct itr_swarm_group_tally *groups,
                                   size_t ngroups, const struct itr_swarm_tally *all);

struct itr_swarm_store_ops {
	enum itr_swarm_status (*announce)(struct itr_swarm_store *store,
	                                  const uint8_t info_hash[ITR_INFO_HASH_LEN],
	                                  const struct itr_swarm_announce *ann,
	                                  const struct itr_swarm_grouping *grouping, uint32_t now,
	                                  struct itr_swarm_counts *counts);
	/* Forget a peer (event=stopped); 0 if it was stored, -1 if not. counts
	 * (may be NULL) receives the swarm's counts afterwards. */
	int (*remove)(struct itr_swarm_store *store, const uint8_t info_hash[ITR_INFO_HASH_LEN],
	              const struct itr_peer_addr *peer, uint16_t group,
	              const struct itr_swarm_grouping *grouping, uint32_t now,
	              struct itr_swarm_counts *counts);
	/* At most req->max candidates of the client's address family, in
	 * O(groups + max): the client's group first, then the other groups by
	 * req->group_cost, each group a window of its peers that depends only
	 * on the swarm's content and req->seed; a quarter of the budget is
	 * kept for a sample of every group when not all fit (mem_select).
	 * Returns how many were written. */
	size_t (*select)(struct itr_swarm_store *store, const uint8_t info_hash[ITR_INFO_HASH_LEN],
	                 const struct itr_swarm_select *req,
	                 const struct itr_swarm_grouping *grouping, uint32_t now,
	                 struct itr_peer_addr *out);
	/* 0 and counts if the torrent is known, -1 (counts zeroed) if not. */
	int (*scrape)(struct itr_swarm_store *store, const uint8_t info_hash[ITR_INFO_HASH_LEN],
	              uint32_t now, struct itr_swarm_counts *counts);
	/* Drop expired peers and empty torrents; returns peers dropped. */
	size_t (*expire)(struct itr_swarm_store *store, uint32_t now);
	void (*stats)(struct itr_swarm_store *store, struct itr_swarm_stats *stats);
	void (*destroy)(struct itr_swarm_store *store);
	/* Optional (NULL: the backend keeps no such state). The peers of the
	 * given groups in a swarm (of_groups) and of the whole swarm (all):
	 * O(groups log n + the records of those groups). 0, or -1 (both
	 * zeroed) if the torrent is unknown. */
	int (*tally)(struct itr_swarm_store *store, const uint8_t info_hash[ITR_INFO_HASH_LEN],
	             const uint16_t *groups, size_t ngroups,
	             const struct itr_swarm_grouping *grouping, uint32_t now,
	             struct itr_swarm_tally *of_groups, struct itr_swarm_tally *all);
	/* Optional: every swarm's tallies per group (one pass over the store,
	 * expired peers dropped on the way). */
	void (*tally_each)(struct itr_swarm_store *store, const struct itr_swarm_grouping *grouping,
	                   uint32_t now, itr_swarm_tally_fn fn, void *ctx);
};

struct itr_swarm_store {
	const struct itr_swarm_store_ops *ops;
};

/* Per-source accounting (optional; every hook may be NULL). Called with a
 * store lock held: they must not call back into the store. */
struct itr_swarm_source_hooks {
	/* addr is about to get its first record in a swarm: false refuses it. */
	bool (*enter)(void *ctx, const struct itr_peer_addr *addr);
	/* addr's last record in a swarm is gone (stopped, expired, evicted). */
	void (*leave)(void *ctx, const struct itr_peer_addr *addr);
	/* How many swarms addr is in: eviction picks the heaviest source. */
	uint32_t (*weight)(void *ctx, const struct itr_peer_addr *addr);
	void *ctx;
};

struct itr_swarm_config {
	/* At either limit a new torrent or peer evicts a small, stale swarm of
	 * the heaviest source (a sample, not a scan); refused only when no
	 * other swarm is there to evict. */
	size_t max_torrents; /* 0: unlimited */
	size_t max_peers;    /* 0: unlimited */
	struct itr_swarm_source_hooks hooks;
	uint32_t peer_expiry; /* seconds without an announce before a peer is dropped */
	unsigned shards;      /* lock shards (by info_hash); 0: default */
};

/* The default store: in memory, sharded by info_hash, thread safe. Peer
 * records are 11 bytes (IPv4) / 23 bytes (IPv6), kept sorted by (group,
 * address, port) in one vector per family per torrent; expiry is kept in
 * whole minutes. */
struct itr_swarm_store *itr_swarm_mem_new(const struct itr_swarm_config *config);

static inline enum itr_swarm_status itr_swarm_announce(struct itr_swarm_store *s, const uint8_t *ih,
                                                       const struct itr_swarm_announce *a,
                                                       const struct itr_swarm_grouping *g,
                                                       uint32_t now, struct itr_swarm_counts *c)
{
	return s->ops->announce(s, ih, a, g, now, c);
}

static inline int itr_swarm_remove(struct itr_swarm_store *s, const uint8_t *ih,
                                   const struct itr_peer_addr *peer, uint16_t group,
                                   const struct itr_swarm_grouping *g, uint32_t now,
                                   struct itr_swarm_counts *c)
{
	return s->ops->remove(s, ih, peer, group, g, now, c);
}

static inline size_t itr_swarm_select(struct itr_swarm_store *s, const uint8_t *ih,
                                      const struct itr_swarm_select *req,
                                      const struct itr_swarm_grouping *g, uint32_t now,
                                      struct itr_peer_addr *out)
{
	return s->ops->select(s, ih, req, g, now, out);
}

static inline int itr_swarm_scrape(struct itr_swarm_store *s, const uint8_t *ih, uint32_t now,
                                   struct itr_swarm_counts *c)
{
	return s->ops->scrape(s, ih, now, c);
}

static inline size_t itr_swarm_expire(struct itr_swarm_store *s, uint32_t now)
{
	return s->ops->expire(s, now);
}

static inline void itr_swarm_stats(struct itr_swarm_store *s, struct itr_swarm_stats *st)
{
	s->ops->stats(s, st);
}

/* -1 (zeroed tallies) where the backend keeps no tallies. */
static inline int itr_swarm_tally(struct itr_swarm_store *s, const uint8_t *ih,
                                  const uint16_t *groups, size_t ngroups,
                                  const struct itr_swarm_grouping *g, uint32_t now,
                                  struct itr_swarm_tally *of_groups, struct itr_swarm_tally *all)
{
	if (!s->ops->tally) {
		*of_groups = (struct itr_swarm_tally){0};
		*all = (struct itr_swarm_tally){0};
		return -1;
	}
	return s->ops->tally(s, ih, groups, ngroups, g, now, of_groups, all);
}

static inline void itr_swarm_destroy(struct itr_swarm_store *s)
{
	if (s)
		s->ops->destroy(s);
}

#endif
