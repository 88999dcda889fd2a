/* quota.h - what one source address may take from the tracker: announces
 * per second (a token bucket) and the number of swarms it is a peer in.
 *
 * The table is bounded (a fixed number of 8-way sets, keyed by the address
 * with a keyed hash, so nobody can aim many addresses at one set) and
 * evicts the least recently seen source of a set when a new one comes. A
 * source that is evicted starts again with a full bucket and a count of 0:
 * that takes as many addresses as the table has entries, which is no
 * longer one source. Thread safe (striped locks).
 *
 * Memory follows the sources that are active: itr_quota_sweep forgets the
 * idle ones (in no swarm, bucket full again: an entry made anew would be
 * the same) and gives the table's pages that hold no source back to the
 * system.
 */
#ifndef ITR_QUOTA_H
#define ITR_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rank.h" /* struct itr_peer_addr */

struct itr_quota_config {
	uint32_t rate;     /* announces per second per source; 0: no limit */
	uint32_t burst;    /* bucket size (announces at once); 0: rate */
	uint32_t torrents; /* swarms one source may be in; 0: no limit */
	size_t sources;    /* table entries (rounded up to a multiple of 8) */
};

struct itr_quota;

/* NULL if out of memory. */
struct itr_quota *itr_quota_new(const struct itr_quota_config *cfg);
void itr_quota_free(struct itr_quota *q);

/* One announce from src at now_ms (a monotonic clock in milliseconds):
 * true if its bucket had a token (taken), false if over the rate. */
bool itr_quota_take(struct itr_quota *q, const struct itr_peer_addr *src, uint64_t now_ms);

/* src is about to become a peer of one more swarm: true (counted) unless it
 * is in the torrents limit's worth already. */
bool itr_quota_enter_swarm(struct itr_quota *q, const struct itr_peer_addr *src);
/* src left a swarm (its last record there is gone). */
void itr_quota_leave_swarm(struct itr_quota *q, const struct itr_peer_addr *src);
/* How many swarms src is counted in (0 if not in the table). */
uint32_t itr_quota_swarms(struct itr_quota *q, const struct itr_peer_addr *src);

/* Forget the sources that are idle at now_ms and return the pages left
 * empty to the system (madvise). Returns how many sources were forgotten.
 * Meant for a periodic janitor: O(table). */
size_t itr_quota_sweep(struct itr_quota *q, uint64_t now_ms);

struct itr_quota_stats {
	size_t sources;   /* entries in use */
	size_t capacity;  /* entries */
	uint64_t evicted; /* sources pushed out of the table */
	size_t resident;  /* bytes of the table not given back (touched since) */
};
void itr_quota_stats(struct itr_quota *q, struct itr_quota_stats *st);

#endif
