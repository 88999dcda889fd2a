/* netmap_merge.h - combine a file network map with prefixes learned from
 * routes: the PIDs, tiers, costs and default PID come from the file; the
 * prefixes are the file's plus the routes', each route prefix assigned to a
 * PID the file declares. Where the file and a route name the same prefix,
 * the configured winner keeps it.
 */
#ifndef ITR_NETMAP_MERGE_H
#define ITR_NETMAP_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "netmap.h"

enum itr_prefix_winner {
	ITR_WINNER_FILE = 0,   /* the file's PID for a prefix both name */
	ITR_WINNER_ROUTES = 1, /* the route's PID for a prefix both name */
};

/* One prefix a route assigns; pid points into the file map it is merged
 * with. A prefix may appear at most once in a merge's input. */
struct itr_route_prefix {
	struct itr_prefix prefix;
	const struct itr_pid *pid;
};

/* A new map: file's PIDs, tiers, costs, resource id, and its prefixes plus
 * routes[0..n). A file's default PID counts as holding 0.0.0.0/0 and ::/0:
 * where a route for a /0 wins, the default PID keeps the other family's /0
 * as an explicit prefix. NULL with err filled on failure (out of memory, a
 * route prefix given twice, a pid not from file). */
struct itr_netmap *itr_netmap_merge(const struct itr_netmap *file,
                                    const struct itr_route_prefix *routes, size_t n,
                                    enum itr_prefix_winner winner, struct itr_netmap_error *err);

/* The PID holding exactly prefix p in map (not a covering one), or NULL.
 * The default PID is not reported here. */
const struct itr_pid *itr_netmap_exact(const struct itr_netmap *map, const struct itr_prefix *p);

/* What the kernel trie holds for prefix p in the merged map, given the route
 * PID for p (NULL: no route names p) and, for a /0 only, whether a route wins
 * the other family's /0 (other_zero_routed). False: p is not in the tries. */
bool itr_netmap_merged_kentry(const struct itr_netmap *file, const struct itr_prefix *p,
                              const struct itr_pid *route_pid, bool other_zero_routed,
                              enum itr_prefix_winner winner, struct itr_pid_info *out);

#endif
