/* source_ledger.h - the per-source quotas (peers per torrent, torrents)
 * for a store that keeps its peers elsewhere (the Redis Cluster store):
 * this instance's own record of which (source address, torrent) pairs it
 * stored, with the ports of each and their expiry.
 *
 * The in-memory store counts a source's records in the swarm itself; a
 * shared store cannot do that without another round trip, so each
 * instance counts what went through it. The torrents a source is in are
 * counted in the tracker's source table (quota.h: enter/leave swarm), the
 * same counter the in-memory store uses.
 *
 * The table is bounded (8-way sets under a keyed hash, so nobody can aim
 * many pairs at one set); when a set is full, the least recently seen pair
 * is forgotten (its source leaves that torrent in the count). Expired pairs
 * are swept a few sets per announce, the whole table at least every
 * minute of announces. Thread safe (striped locks).
 */
#ifndef ITR_SOURCE_LEDGER_H
#define ITR_SOURCE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rank.h"    /* struct itr_peer_addr */
#include "tracker.h" /* enum itr_refusal, ITR_INFO_HASH_LEN */

/* Ports kept per pair at most: a larger per-torrent limit is refused. */
#define ITR_LEDGER_MAX_PORTS 64

struct itr_quota;

struct itr_source_ledger_config {
	uint32_t max_ports; /* peers (ports) one source may have in one torrent; 0: no limit */
	uint32_t expiry;    /* seconds a port stays counted after its announce */
	size_t pairs;       /* (source, torrent) pairs tracked; 0: 65536 */
};

/* quota: the tracker's source table, which counts and limits each
 * source's torrents (NULL: torrents are not limited). NULL on a bad
 * config (max_ports above ITR_LEDGER_MAX_PORTS) or out of memory. */
struct itr_source_ledger *itr_source_ledger_new(const struct itr_source_ledger_config *cfg,
                                                struct itr_quota *quota);
void itr_source_ledger_free(struct itr_source_ledger *l);

/* An announce of peer (address and port) to info_hash at now (seconds):
 * ITR_REFUSED_NONE if it may be stored (and it is counted from now on),
 * ITR_REFUSED_SOURCE_PEERS if the source has max_ports other live ports in
 * this torrent, ITR_REFUSED_SOURCE_TORRENTS if the source table refused
 * one more torrent. A stopped announce is never refused: it frees its port
 * (and the torrent, with its last port). */
enum itr_refusal itr_source_ledger_announce(struct itr_source_ledger *l,
                                            const uint8_t info_hash[ITR_INFO_HASH_LEN],
                                            const struct itr_peer_addr *peer, bool stopped,
                                            uint32_t now);

struct itr_source_ledger_stats {
	size_t pairs;     /* live or not yet swept */
	size_t capacity;  /* pairs */
	uint64_t evicted; /* live pairs forgotten for newer ones */
};
void itr_source_ledger_stats(struct itr_source_ledger *l, struct itr_source_ledger_stats *st);

#endif
