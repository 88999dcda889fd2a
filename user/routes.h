/* routes.h - the route source: kernel routes feed PIDs of the network map.
 *
 * Rules name which routes feed which PID: by route realm (RTA_FLOW, what
 * BIRD's krt_realm sets), by routing table, or by protocol (RTPROT_*). The
 * follower dumps the routes at start and then follows RTM_NEWROUTE and
 * RTM_DELROUTE through a libnl cache manager in its own thread.
 *
 * Two paths, so that one route change costs work in proportion to the
 * change and not to the table:
 *  - the tries: changes are coalesced (a quiet gap, or a cap on how long the
 *    first pending change waits), then each changed prefix is written to the
 *    kernel LPM tries (adds and changes before deletes) and the data plane
 *    generation is bumped;
 *  - the served map: a publisher thread rebuilds the merged map (file map +
 *    route prefixes, new vtag) from a snapshot and publishes it, at most once
 *    per interval that grows with the cost of a rebuild, so a full-table load
 *    makes a handful of vtags, not one per route.
 */
#ifndef ITR_ROUTES_H
#define ITR_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "netmap.h"
#include "netmap_merge.h"

#define ITR_ROUTES_MAX_RULES 64

enum itr_route_match {
	ITR_ROUTE_BY_REALM = 0, /* destination realm (low 16 bits of RTA_FLOW) */
	ITR_ROUTE_BY_TABLE = 1, /* routing table id */
	ITR_ROUTE_BY_PROTO = 2, /* rtm_protocol (RTPROT_BIRD = 12, ...) */
};

struct itr_route_rule {
	char pid[ITR_NAME_MAX + 1]; /* a PID declared in the map file */
	enum itr_route_match match;
	uint32_t value;
};

struct itr_routes_config {
	struct itr_route_rule rules[ITR_ROUTES_MAX_RULES]; /* first match wins */
	size_t nrules;
	enum itr_prefix_winner winner; /* default ITR_WINNER_FILE */
	/* Coalescing (0: defaults): flush the tries once no route change has
	 * arrived for quiet_us, or once the oldest pending change has waited
	 * max_delay_us, whichever comes first. */
	uint32_t quiet_us;     /* default 1000 */
	uint32_t max_delay_us; /* default 10000 */
	/* The served map is rebuilt at most every max(min_publish_ms,
	 * publish_cost_factor x the last rebuild's duration). */
	uint32_t min_publish_ms;      /* default 0 */
	uint32_t publish_cost_factor; /* default 4 */
};

/* "PID=realm:N", "PID=table:N|main|local|NAME", "PID=proto:N|NAME" (names
 * from libnl / /etc/iproute2). Appends a rule. 0, or -1 with err filled. */
int itr_routes_parse_rule(struct itr_routes_config *cfg, const char *spec, char *err, size_t len);
/* "routes" or "file": which PID a prefix named by both gets. */
int itr_routes_parse_precedence(struct itr_routes_config *cfg, const char *text, char *err,
                                size_t len);

/* Which rule (index) a route matches, or -1. realms are the routes' RTA_FLOW
 * values (one per next hop; a route matches a realm rule if any does). */
int itr_routes_match(const struct itr_routes_config *cfg, uint32_t table, uint8_t protocol,
                     const uint32_t *realms, size_t nrealms);

/* Resolve every rule's PID in map: pids[i] for rule i. 0, or -1 naming the
 * first rule whose PID the map does not declare. */
int itr_routes_resolve(const struct itr_routes_config *cfg, const struct itr_netmap *map,
                       const struct itr_pid **pids, char *err, size_t len);

/* ---- the follower ------------------------------------------------------ */
struct itr_routes;

/* Start following: dump the routes, install the merged map through d (the
 * published map must be the file map, d->map_file), start the threads and
 * become d's file map handler, so that every file reload (itr_daemon_reload)
 * is merged with the routes. NULL with err filled on failure. */
struct itr_routes *itr_routes_start(struct itr_daemon *d, const struct itr_routes_config *cfg,
                                    char *err, size_t len);
/* Stop the threads and free; the last published map stays published. Call
 * it when no reload can be under way any more. */
void itr_routes_stop(struct itr_routes *r);

struct itr_routes_stats {
	uint64_t events;          /* route notifications handled */
	uint64_t resyncs;         /* full re-dumps after a lost notification */
	uint64_t flushes;         /* batches written to the tries */
	uint64_t trie_ops;        /* prefixes written or deleted */
	uint64_t publishes;       /* merged maps published */
	size_t routes;            /* routes currently matching a rule */
	size_t prefixes;          /* distinct prefixes among them */
	uint64_t last_flush_ns;   /* CLOCK_MONOTONIC of the last trie flush */
	uint64_t last_publish_ns; /* CLOCK_MONOTONIC of the last publish */
	double last_rebuild_s;    /* duration of the last map rebuild */
	size_t pending;           /* changed prefixes not yet in the tries */
};
void itr_routes_get_stats(struct itr_routes *r, struct itr_routes_stats *st);

/* ---- the route table: the follower's state, callable on its own --------
 * Which prefixes routes give to which PID, and what changed since the last
 * take_ops: the trie operations that bring the tries from the merged map of
 * that moment to the merged map of now. Not thread safe (one owner). */
struct itr_route_table;

/* rule_pids[i]: the PID of rule i, from file (which must outlive the table). */
struct itr_route_table *itr_route_table_new(const struct itr_netmap *file,
                                            const struct itr_pid *const *rule_pids, size_t nrules,
                                            enum itr_prefix_winner winner);
void itr_route_table_free(struct itr_route_table *t);
/* A route (identified by destination, table, priority, tos) now matches
 * rule (>= 0), or no rule / is gone (rule < 0). 0 or -ENOMEM. */
int itr_route_table_apply(struct itr_route_table *t, const struct itr_prefix *dst, uint32_t table,
                          uint32_t prio, uint8_t tos, int rule);
/* The changes since the last call, as trie operations: every ADD and CHANGE
 * before every DELETE. *ops is malloc'd (NULL when *n is 0). */
int itr_route_table_take_ops(struct itr_route_table *t, struct itr_netmap_op **ops, size_t *n);
/* Every prefix a route gives a PID (the input of itr_netmap_merge). */
int itr_route_table_prefixes(struct itr_route_table *t, struct itr_route_prefix **out, size_t *n);
size_t itr_route_table_routes(const struct itr_route_table *t);

/* ---- coalescing policy, separate so tests can drive it with a clock ---- */
struct itr_coalescer {
	uint64_t quiet_ns, max_delay_ns;
	uint64_t first_ns, last_ns; /* first and latest pending change */
	bool pending;
};
void itr_coalescer_init(struct itr_coalescer *c, uint64_t quiet_ns, uint64_t max_delay_ns);
void itr_coalescer_note(struct itr_coalescer *c, uint64_t now_ns); /* a change arrived */
/* When to flush: 0 = now, UINT64_MAX = nothing pending, else ns to wait. */
uint64_t itr_coalescer_wait(const struct itr_coalescer *c, uint64_t now_ns);
void itr_coalescer_flushed(struct itr_coalescer *c);

#endif
