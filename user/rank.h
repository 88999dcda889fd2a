/* rank.h - order candidate peers by p-distance from a client, under the
 * locality policy (shares and external budget), with BEP 40 tie-breaks.
 */
#ifndef ITR_RANK_H
#define ITR_RANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netmap.h"

struct itr_peer_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t addr[16];
	uint16_t port; /* host byte order */
};

/* max_external with no cap: the list is ranked, nothing is left out */
#define ITR_RANK_UNCAPPED UINT32_MAX

struct itr_rank_policy {
	unsigned max_own_pid_pct; /* at most this % of the list from the client's PID */
	unsigned max_own_as_pct;  /* at most this % from the client's AS (PID included) */
	unsigned min_external;    /* at least this many from outside the AS, if any exist */
	unsigned max_external;    /* at most this many from outside the AS */
	/* Caps never leave a list shorter than min(want, min_list, candidates):
	 * skipped candidates top it up in rank order. 0: caps are hard. */
	unsigned min_list;
	/* 0: every client gets the external budget above. N > 0: per AS, not
	 * per list - only the client's AS's N "gateway" peers (see
	 * itr_rank_gateway_score) get min_external/max_external; every other
	 * peer of the AS gets no outside peer unless the min_list top-up needs
	 * one. A client alone in its AS is always its AS's gateway. */
	unsigned gateways;
	/* Mixed into the gateway score so each swarm has its own gateways (the
	 * tracker sets it per announce with itr_rank_swarm_salt; 0 elsewhere). */
	uint32_t gateway_salt;
	/* Order among equal costs. false: BEP 40 priority descending, then
	 * address and port (canonical: the same whatever order the candidates
	 * come in). true: the same in a bucket of up to 64 equal costs; in a
	 * larger one the candidates' own order, rotated by a point that is a
	 * function of the client and gateway_salt (itr_rank_tie_offset), so
	 * it is never hashed or sorted. For a store that hands each PID's
	 * candidates in a fixed order (the tracker's own lists); see rank.c
	 * for why and what it costs. */
	bool rotate_ties;
};

/* The defaults (see rank.c for the measurements that chose them). */
void itr_rank_policy_default(struct itr_rank_policy *policy);

struct itr_ranked_peer {
	struct itr_peer_addr peer;
	const struct itr_pid *pid; /* NULL if no PID covers it */
	uint32_t cost;             /* p-distance from the client's PID */
	uint32_t priority;         /* BEP 40 canonical priority with the client
	                            * (0 in a rotated bucket: not computed) */
};

/* Rank n candidates for client; writes at most want entries to out (which
 * has room for want) and returns how many. Candidates equal to the client
 * (same address and port) and exact duplicates are left out.
 *
 * Order: cost ascending, BEP 40 priority descending, then address and port
 * (with rotate_ties, a bucket of more than 64 equal costs: the candidates'
 * order rotated). A client no PID covers (or map NULL) gets plain BEP 40
 * order (the same exception), no policy.
 * Otherwise, over L = min(want, candidates): (1) the best
 * min(min_external, externals, L) peers from outside the client's AS are
 * reserved; (2) the rest are taken in order while their caps allow (at most
 * max_external outsiders, floor(pct * L / 100) for the shares); (3) if that
 * left fewer than min(L, min_list), skipped candidates top the list up in
 * rank order. With gateways = N > 0, a client that is not among the N
 * best-scored peers of its AS (itself and its AS's candidates) has
 * min_external and max_external 0 for (1) and (2); a gateway's externals in
 * (1) and (2) are the other ASes' gateways first.
 * The result is written in rank order. Returns 0 if memory for
 * n > 64 candidates cannot be allocated. Thread safe; map may be NULL. */
size_t itr_rank(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                const struct itr_peer_addr *client, const struct itr_peer_addr *cands, size_t n,
                size_t want, struct itr_ranked_peer *out);

/* itr_rank with each candidate's PID already known: pids[i] must be what
 * itr_netmap_lookup(map, cands[i]) answers (NULL: none). The tracker's
 * store keeps every peer's PID, which saves a trie walk per candidate;
 * pids NULL: look them up (itr_rank). distinct: the caller knows no two
 * candidates are the same address and port (the memory store's records
 * are keyed by them), so duplicates are not looked for; a duplicate
 * handed in anyway may then be listed twice, nothing worse. */
size_t itr_rank_known(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                      const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                      const struct itr_pid *const *pids, bool distinct, size_t n, size_t want,
                      struct itr_ranked_peer *out);

/* itr_rank_known with each candidate's PID given as its place in the map,
 * as the memory store keeps it per record: groups[i] 0, no PID covers it;
 * 1 to itr_netmap_pid_count(map), itr_netmap_pid_at(map, groups[i] - 1);
 * larger, not known (looked up). A map of ITR_RANK_GROUPS_MAX PIDs or more
 * has every candidate looked up. It spares the caller a pass that turns
 * groups into pointers (callgrind, numwant 200: 3.7k of 50.8k instructions
 * an announce). */
#define ITR_RANK_GROUPS_MAX 0xffff
size_t itr_rank_grouped(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                        const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                        const uint16_t *groups, bool distinct, size_t n, size_t want,
                        struct itr_ranked_peer *out);

/* Gateway score of a peer: CRC32-C of salt (4 bytes big-endian), address
 * (4 or 16 bytes) and port (2 bytes big-endian). The N peers of an AS with
 * the highest score (ties: address, port ascending) are its gateways. */
uint32_t itr_rank_gateway_score(uint32_t salt, const struct itr_peer_addr *peer);
/* Where a client's rotated ties start (rotate_ties): a bucket of n equal
 * costs is listed from its candidate at itr_rank_tie_offset(salt, client)
 * % n on, wrapping. The client's gateway score under salt with its bits
 * reversed: any fixed function of the swarm and the client would do, and
 * an independent checker can recompute this one from the spec above. */
uint32_t itr_rank_tie_offset(uint32_t salt, const struct itr_peer_addr *client);
/* The salt of one swarm: CRC32-C of its 20-byte info_hash. */
uint32_t itr_rank_swarm_salt(const uint8_t info_hash[20]);

/* BEP 40 canonical peer priority of a pair. */
uint32_t itr_bep40_priority(const struct itr_peer_addr *a, const struct itr_peer_addr *b);
uint32_t itr_crc32c(uint32_t crc, const void *buf, size_t len);

/* "1.2.3.4", "[2001:db8::1]:6881", "1.2.3.4:6881" -> peer; 0 or -1. */
int itr_peer_addr_parse(const char *text, struct itr_peer_addr *out);
/* Address only (no port) into buf (INET6_ADDRSTRLEN). */
const char *itr_peer_addr_ntop(const struct itr_peer_addr *peer, char *buf, size_t len);

#endif
