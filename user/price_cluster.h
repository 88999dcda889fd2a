/* price_cluster.h - the measured inter-AS traffic summed over every
 * itrackerd on one Redis Cluster: a rate source for the price controller
 * (price.h) so that each gateway prices a link from the whole ISP's
 * BitTorrent traffic on it, not from its own share.
 *
 * Every instance keeps one key of its own, "itr:{links}:r:<instance>",
 * holding what its data plane measured per declared link in its last
 * sampling period (bytes and the period's length), written with a TTL of
 * three periods, and its id in the set "itr:{links}:m". All keys share the
 * hash tag {links}: one slot, so one pipelined round trip writes this
 * instance's record and reads every other's. An instance that dies stops
 * refreshing its key: Redis drops it after the TTL, the readers stop
 * counting it and remove its id from the set.
 */
#ifndef ITR_PRICE_CLUSTER_H
#define ITR_PRICE_CLUSTER_H

#include <stddef.h>

#include "price.h"

struct itr_rc;
struct itr_price_cluster;

#define ITR_PRICE_CLUSTER_ID_MAX 64

/* A rate source on rc (not owned; shared with the swarm store). period_s:
 * the controller's sampling period, which sets the records' TTL (three
 * periods, at least one second). id: this instance's name in the cluster;
 * NULL picks "<hostname>-<8 random hex digits>". NULL on out of memory. */
struct itr_price_cluster *itr_price_cluster_new(struct itr_rc *rc, double period_s, const char *id);
void itr_price_cluster_free(struct itr_price_cluster *pcl);
/* The daemon's wiring: every instance on rc publishes its measured link
 * rates there and pc prices each link from the sum over the live ones.
 * Says so on stderr. The new source (free it after itr_price_stop), or
 * NULL when out of memory. */
struct itr_price_cluster *itr_price_cluster_attach(struct itr_price *pc, struct itr_rc *rc,
                                                   double period_s);
/* The source to hand to itr_price_set_rate_source. */
struct itr_price_rate_source itr_price_cluster_source(struct itr_price_cluster *pcl);
const char *itr_price_cluster_id(const struct itr_price_cluster *pcl);
unsigned itr_price_cluster_ttl_ms(const struct itr_price_cluster *pcl);

/* ---- the record and the sum (pure; unit tested) -------------------------- */

/* One instance's record: "itr-rates 1\n" then a line "<link> <bytes>
 * <interval_ms>" per link with a sample (local[k] >= 0; bytes = local[k] *
 * dt / 8). Length written (without the NUL), or 0 if cap is too small. */
size_t itr_price_cluster_encode(char *buf, size_t cap, const char *const *names,
                                const double *local, size_t n, double dt);

/* Add one record to the sums: total[k] (bits/s; a negative total counts as
 * 0 before the first addition) and contributors[k] for each of names that
 * the record has. Links the record names but this map has not are skipped
 * (a map reload reaches the instances one by one). 0, or -1 if value is
 * not a record (nothing added). */
int itr_price_cluster_add(const char *value, size_t len, const char *const *names, size_t n,
                          double *total, unsigned *contributors);

#endif
