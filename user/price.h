/* price.h - the P4P feedback loop: a price per declared inter-AS link
 * (netmap `link` statements), computed from the BitTorrent rate the data
 * plane measures on it, and the swarm state the tracker's store holds
 * (peers, seeds and what they have left, per AS; the controller keeps no
 * per-swarm state of its own). The price sets the external budget per AS per
 * swarm (how many gateway peers, how many outside peers each) and the
 * dynamic p-distance served over /v1/rank and ALTO. docs/policy.md
 * explains the design and the measurements behind the defaults.
 */
#ifndef ITR_PRICE_H
#define ITR_PRICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "netmap.h"
#include "rank.h"
#include "stats.h"

/* ---- the controller of one link (pure; unit tested) ------------------- */

struct itr_price_params {
	double ewma_tau_s; /* time constant of the smoothed rate */
	double kp;         /* proportional gain on the log error */
	double ki;         /* integral gain on the log error, per second */
	/* |log(rate / budget)| at or below this counts as on budget: the price
	 * holds (hysteresis against hunting around the budget). */
	double deadband;
	double max_step;      /* largest change of log(1 - price) in one update */
	double min_allowance; /* 1 - price never goes below this */
	/* 1 - price never goes above this: a price below 0 is headroom, a link
	 * under its budget while BitTorrent crosses it, and lets more out of
	 * the AS than the base policy (more gateways, outside peers). */
	double max_allowance;
	/* Headroom grows only while the smoothed rate is at least this share
	 * of the budget: an idle link says nothing about demand, and a swarm
	 * that starts on it starts from the base policy, not beyond it. */
	double headroom_min_use;
	double initial_price; /* of a link the data plane measures, until it has */
};

/* Defaults (tests/unit/test_price.c simulates them against lagging swarms;
 * docs/policy.md): tau 2 s, kp 0.2, ki 0.12/s, deadband 0.05, max step
 * 0.5, allowance 0.05 to 2, headroom from 10 % use, initial price 0.5. */
void itr_price_params_default(struct itr_price_params *p);

struct itr_price_link_state {
	bool primed;      /* a first sample was taken */
	double rate_ewma; /* bits/s, smoothed */
	double rate_last; /* bits/s, last sample */
	double price;     /* 1 - max_allowance (headroom) .. 0 (base) .. 1 (far above budget) */
	double err_prev;  /* relative error after the deadband, last update */
};

/* One update: a rate sample (bits/s) over dt seconds against the budget
 * (bits/s). The allowance 1 - price scales what the tracker lets out of an
 * AS; the log error e = ln(ewma / budget), clamped to [-2, 2], less the
 * deadband, moves it multiplicatively in velocity form:
 * allowance *= exp(-(kp (e - e_prev) + ki e dt)), the exponent limited to
 * max_step and the allowance clamped to [min_allowance, max_allowance]
 * (above 1 only while the link is in use, see headroom_min_use); clamping
 * the state itself leaves nothing to wind up. Returns the new price. */
double itr_price_update(const struct itr_price_params *p, struct itr_price_link_state *s,
                        double rate_bps, double budget_bps, double dt);

/* ---- external budget per AS per swarm (pure; unit tested) ------------- */

/* What the tracker knows about one AS in one swarm. */
struct itr_price_as_view {
	uint32_t peers;         /* peers of the AS in the swarm (seeds included) */
	uint32_t seeds;         /* of which complete */
	double remaining;       /* mean fraction left over the AS's peers, 0..1 */
	double swarm_remaining; /* the same over every peer of the swarm */
	uint32_t swarm_seeds;   /* complete peers of the swarm, every AS */
};

/* Which fields the operator fixed on the command line: those are used as
 * given, the rest adapt. */
struct itr_price_overrides {
	bool gateways, max_external, min_list;
};

/* The AS's policy in this swarm: base (the configured policy) with
 * gateways and max_external set from the view, the AS's uplink (NULL if
 * none declared) and its price:
 *   gateways = clamp(round(G * need * (1 - price)), 1, peers), where
 *     G = ceil(capacity / host-upload) when the uplink declares both (enough
 *     gateways that their uploads can fill the link; the price holds the
 *     rate at the budget), else base->gateways; need = 0.5 with a local
 *     seed, 1 when the AS is more than 10 points behind the swarm, 0.75
 *     otherwise;
 *   max_external = base->max_external, +1 when the AS has no seed, is
 *     behind and the price is below 0.25, or still downloads at price
 *     <= -0.5 (headroom); -1 (not below 1) at price >= 0.75.
 * An AS that cannot feed itself, on a link at or under its budget (price
 * <= 0), is open: gateways 0 (every peer takes outside peers),
 * max_external ITR_RANK_UNCAPPED. It cannot feed itself when it has no
 * seed and its peers' uploads together are below the link's capacity, or
 * when it has leechers, other ASes hold seeds of the swarm too, and its own
 * seeds' uploads together are below the link's budget.
 * A field in ov keeps base's value. */
void itr_price_as_policy(const struct itr_rank_policy *base, const struct itr_price_overrides *ov,
                         const struct itr_price_as_view *view, const struct itr_link *uplink,
                         double price, struct itr_rank_policy *out);

/* Extra p-distance of a link at a price: price * other-as tier, in steps of
 * a tenth of the tier; a step is only left once the price is 0.075 (three
 * quarters of a step) away from it, so a price hovering at a boundary does
 * not flip the vtag. cur_step is the step in use (0..10). */
unsigned itr_price_cost_step(double price, unsigned cur_step);

/* ---- where the measured rate comes from -------------------------------- */

/* By default a link is priced from what this instance's own matrix sources
 * measured. A rate source sees those local rates at every tick and returns
 * the rate to price from instead: price_cluster.c adds the local rates of
 * every live instance on a Redis Cluster, so that every gateway prices a
 * link from the whole ISP's traffic on it. */
struct itr_price_rate_source {
	/* names[k] and local[k] (bits/s measured over the last dt seconds;
	 * < 0: no sample this tick) for the n links of the map. Fills total[k]
	 * (bits/s; < 0: nobody measured the link) and contributors[k] (live
	 * instances that did). 0, or -1 with err: the controller then prices
	 * from the local rates this tick. Called from the controller's thread
	 * with no lock held (it may wait for a network round trip). */
	int (*combine)(void *ctx, const char *const *names, const double *local, size_t n,
	               double dt, double *total, unsigned *contributors, char *err, size_t errlen);
	void *ctx;
	const char *name; /* for operators: "redis-cluster" */
};

/* ---- the running controller ------------------------------------------- */

struct itr_price_config {
	struct itr_price_params params;
	double period_s;               /* sampling period (default 2 s) */
	struct itr_rank_policy policy; /* the configured policy */
	struct itr_price_overrides overrides;
	/* Matrix sources (fds of pinned `matrix` maps): the daemon's own data
	 * plane and any --price-matrix pin roots. 0 sources: swarm state only. */
	int matrix_fds[16];
	size_t nmatrix;
	/* Taken while a derived map (dynamic p-distance) is published, so it
	 * never replaces a map a reload published meanwhile. NULL: none. */
	pthread_mutex_t *map_lock;
	bool publish_costs; /* publish derived maps (false in unit tests) */
};

void itr_price_config_default(struct itr_price_config *cfg);

struct itr_price;

struct itr_price *itr_price_new(const struct itr_price_config *cfg);
void itr_price_free(struct itr_price *pc); /* stops the thread if started */
/* Stop the thread (if started) so that what a rate source uses can go. */
void itr_price_stop(struct itr_price *pc);
/* One more matrix source (fd of a pinned `matrix` map, kept open by the
 * caller); before itr_price_start. 0, or -1 when 16 are taken. */
int itr_price_add_matrix(struct itr_price *pc, int fd);
/* The `matrix` map pinned under pin_root as one more source, opened here
 * and closed by itr_price_free. 0, or -1 with err filled. */
int itr_price_add_pinned_matrix(struct itr_price *pc, const char *pin_root, char *err,
                                size_t errlen);
/* The daemon's sources (its own data plane's matrix fd, -1 for none, and
 * the `matrix` maps pinned under pin_roots), then the thread. 0, or -1
 * with err filled. */
int itr_price_start_with(struct itr_price *pc, int own_matrix_fd, const char *const *pin_roots,
                         size_t npin_roots, char *err, size_t errlen);
/* Called in the controller's thread right before it reads the matrix
 * sources for a sample: itrackerd folds its data plane's unfolded counts
 * into the matrix there, so a sample sees every packet up to that moment.
 * Before itr_price_start; fn NULL: nothing. */
void itr_price_set_before_sample(struct itr_price *pc, void (*fn)(void *ctx), void *ctx);
/* Price from src's rates instead of the local ones (copied; before
 * itr_price_start). src NULL: local only, the default. */
void itr_price_set_rate_source(struct itr_price *pc, const struct itr_price_rate_source *src);
/* A thread that calls itr_price_tick every period until itr_price_free. */
int itr_price_start(struct itr_price *pc);

/* The policy for a client of AS asn in a swarm where its AS has view
 * (the tracker tallies it from its store; NULL or peers 0: the AS has no
 * peer there). policy: in, the configured policy with the swarm's gateway
 * salt; out, with gateways and max_external set. Thread safe. */
void itr_price_policy_from_view(struct itr_price *pc, const struct itr_netmap *map, uint32_t asn,
                                const struct itr_price_as_view *view,
                                struct itr_rank_policy *policy);

/* Where the tick reads the swarms for the per-AS totals of the status and
 * /metrics: each calls emit once per AS per swarm (the tracker walks its
 * store). Called from the controller's thread. */
typedef void (*itr_price_emit_fn)(void *ectx, uint32_t asn, const struct itr_price_as_view *v);
struct itr_price_swarm_source {
	void (*each)(void *ctx, itr_price_emit_fn emit, void *ectx);
	void *ctx;
};
/* Set (copied) or, with NULL, withdraw the swarm source; returns once no
 * tick uses the old one. Thread safe. */
void itr_price_set_swarm_source(struct itr_price *pc, const struct itr_price_swarm_source *src);

/* One sampling step at time now (seconds): read the matrix sources, update
 * every link's price against map's links, publish the dynamic p-distance.
 * Called by the thread; tests call it directly. */
void itr_price_tick(struct itr_price *pc, const struct itr_netmap *map, double now);
/* The same with a matrix given by the caller as source 0 (tests). */
void itr_price_tick_matrix(struct itr_price *pc, const struct itr_netmap *map, double now,
                           const struct itr_matrix_entry *e, size_t n);

/* Price of the link named name (below 0: headroom); NAN if the controller
 * has no such link. */
double itr_price_link_price(struct itr_price *pc, const char *name);
/* Smoothed rate (bits/s) of the link; -1 if none. */
double itr_price_link_rate(struct itr_price *pc, const char *name);
/* The last tick's rates of the link: this instance's own (bits/s, < 0: no
 * sample) and, with a rate source, the combined one and how many
 * instances contributed to it. -1 if the controller has no such link. */
int itr_price_link_rates(struct itr_price *pc, const char *name, double *local, double *combined,
                         unsigned *contributors);

/* The loop for operators: {"mode":..., "links":[...], "ases":[...]}. */
json_t *itr_price_status_json(struct itr_price *pc);
/* Prometheus lines (itracker_link_*, itracker_as_*). 0 or -1. */
int itr_price_metrics(struct itr_price *pc, FILE *out);

#endif
