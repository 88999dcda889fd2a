/* redis_store.h - swarms in a Redis Cluster, shared by every itrackerd
 * that names the same cluster (`--store redis-cluster://host:port,...`):
 * an announce backend (announce_backend.h) beside the in-memory store.
 *
 * Per swarm, three keys with the info_hash as hash tag, so one swarm is one
 * slot and one round trip: "itr:{HASH}:s" and "itr:{HASH}:l" (seeds and
 * leechers: sorted sets of 6-byte IPv4 or 18-byte IPv6 address+port
 * members, scored by their expiry time) and "itr:{HASH}:d" (completed
 * downloads). Every write also refreshes the keys' TTL, so a swarm nobody
 * announces to leaves the cluster by itself. Candidates are drawn at
 * random (ZRANDMEMBER, O(numwant)) and ranked here by the local map.
 */
#ifndef ITR_REDIS_STORE_H
#define ITR_REDIS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct itr_tracker;
struct itr_announce_backend;
struct itr_redis_store;

#define ITR_REDIS_STORE_SCHEME "redis-cluster://"

/* url: "redis-cluster://host:port[,host:port...]". The tracker supplies
 * the intervals, the peer expiry and the ranking policy. NULL with err on
 * a bad URL (an unreachable cluster is not an error: announces fail with
 * a reason until it answers). */
struct itr_redis_store *itr_redis_store_new(const char *url, struct itr_tracker *tracker, char *err,
                                            size_t errlen);
struct itr_announce_backend *itr_redis_store_backend(struct itr_redis_store *st);
void itr_redis_store_free(struct itr_redis_store *st);
/* The store's cluster client, for other state kept in the same cluster
 * (price_cluster.h); valid until itr_redis_store_free. */
struct itr_rc;
struct itr_rc *itr_redis_store_cluster(struct itr_redis_store *st);

/* Member encoding (exposed for tests): 6 or 18 bytes, address then port,
 * network order. Returns the length, 0 for an unknown family. */
struct itr_peer_addr;
size_t itr_redis_member_encode(const struct itr_peer_addr *peer, char out[18]);
int itr_redis_member_decode(const char *buf, size_t len, struct itr_peer_addr *out);

/* The view of a swarm (price.h) that AS asn has from one announce's draw,
 * for the price controller's policy: pids of the nl drawn leechers, then
 * of the ns drawn seeds (seeds_drawn false: a seed's draw, which holds no
 * seeds). Each draw is a random sample of its set, scaled here to the
 * set's size in counts; the client (a seed if client_seed) is counted in
 * its AS even when the draw does not hold it. Redis keeps no `left`, so
 * "remaining" is the share of leechers, for the AS and the swarm alike. */
struct itr_pid;
struct itr_swarm_counts;
struct itr_price_as_view;
void itr_redis_draw_view(const struct itr_pid *const *pids, size_t nl, size_t ns, bool seeds_drawn,
                         uint32_t asn, bool client_seed, const struct itr_swarm_counts *counts,
                         struct itr_price_as_view *v);

#endif
