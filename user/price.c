/* price.c - P4P's feedback loop: prices on inter-AS links from the BitTorrent
 * rate the data plane measures, turned into each AS's external budget per
 * swarm and into the dynamic p-distance (see price.h, docs/policy.md).
 *
 * Three parts:
 *   - the link controller (itr_price_update): an EWMA of the measured rate
 *     and a velocity-form PI update of a price clamped to [0, 1], with a
 *     deadband around the budget;
 *   - swarm state: none of its own. The tracker's store tallies each
 *     swarm's peers per PID group (peers, seeds, what they have left, in
 *     the flags byte every record already has); the tracker turns that
 *     into a view per AS when it asks for a policy, and hands every
 *     swarm's views to the tick for the per-AS totals (a swarm source).
 *     So the controller's memory follows the map (links, ASes), never the
 *     number of swarms or peers;
 *   - the mapping from price and swarm state to a rank policy
 *     (itr_price_as_policy) and to extra p-distance (itr_price_cost_step),
 *     published as a derived map with its own vtag.
 */
#include "price.h"
#include "clock.h"
#include "epoch.h"

#include "itracker_maps.h"
#include "stats.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the link controller ------------------------------------------------ */

void itr_price_params_default(struct itr_price_params *p)
{
	*p = (struct itr_price_params){.ewma_tau_s = 2.0,
	                               .kp = 0.2,
	                               .ki = 0.12,
	                               .deadband = 0.05,
	                               .max_step = 0.5,
	                               .min_allowance = 0.05,
	                               .max_allowance = 2.0,
	                               .headroom_min_use = 0.10,
	                               .initial_price = 0.5};
}

static double clamp01(double v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

double itr_price_update(const struct itr_price_params *p, struct itr_price_link_state *s,
                        double rate_bps, double budget_bps, double dt)
{
	if (!(rate_bps >= 0))
		rate_bps = 0;
	s->rate_last = rate_bps;
	if (!s->primed) {
		s->rate_ewma = rate_bps;
		s->primed = true;
	} else if (dt > 0) {
		double a = p->ewma_tau_s > 0 ? 1.0 - exp(-dt / p->ewma_tau_s) : 1.0;
		s->rate_ewma += a * (rate_bps - s->rate_ewma);
	}
	if (!(budget_bps > 0) || !(dt > 0))
		return s->price;
	/* Relative error in log terms: the rate scales with the allowance
	 * (more gateways, more outside peers), so equal ratios deserve equal
	 * steps whatever the demand; clamped so that an idle link (rate 0)
	 * or a flood moves the price at a finite speed. */
	double ratio = s->rate_ewma / budget_bps;
	double e = ratio > 0 ? log(ratio) : -2.0;
	if (e < -2)
		e = -2;
	if (e > 2)
		e = 2;
	if (fabs(e) <= p->deadband)
		e = 0;
	else
		e -= e > 0 ? p->deadband : -p->deadband;
	double d = p->kp * (e - s->err_prev) + p->ki * e * dt;
	if (d > p->max_step)
		d = p->max_step;
	if (d < -p->max_step)
		d = -p->max_step;
	double before = 1.0 - s->price;
	double allowance = before * exp(-d);
	/* beyond the base policy only on a link in use, and never past
	 * where it already was when the use stopped */
	double top = fmax(1.0, ratio >= p->headroom_min_use ? p->max_allowance : before);
	if (allowance > top)
		allowance = top;
	if (allowance < p->min_allowance)
		allowance = p->min_allowance;
	s->price = 1.0 - allowance;
	s->err_prev = e;
	return s->price;
}

/* ---- price -> policy ---------------------------------------------------- */

/* Why the price loop opens an AS's lists (starved, below). */
enum open_reason {
	OPEN_NOT,        /* capped: by the price, or the operator's fixed counts */
	OPEN_NO_SEED,    /* no seed, and too few peers to fill the link */
	OPEN_SLOW_SEEDS, /* its seeds upload less than the link's budget */
};

/* Whether (and why) an AS gets more of its pieces from outside than its
 * lists would let it, so that while its link is at or under its budget the lists
 * should be open: the per-list policy (gateways 0: every peer of the AS
 * takes outside peers, in rank order, with no preference for the other
 * ASes' gateways) and no cap. Two cases, both where the link could carry
 * more than the AS can feed itself:
 *   - no seed, and its peers cannot together upload what the link carries
 *     (5isp-even-55 in docs/policy.md: ASes of 4 hosts, every one of them
 *     1.2-1.6x slower than with opentracker while capped);
 *   - seeds whose upload together falls short of the link's budget, while
 *     the swarm has seeds in other ASes too and the AS has leechers: the
 *     budget alone brings pieces in faster than the AS's own seeds make
 *     them (O4 in docs/policy.md: a 2 Mbit/s seed in each of three ASes
 *     under a 12 Mbit/s link with a 6 Mbit/s budget; capped, each AS lived
 *     on its own seed and most leechers did not finish in 150 s). The
 *     budget rather than the capacity, so that the rule stays out of the
 *     way where one seed nearly fills the budget.
 * An AS holding the swarm's only seeds stays capped even so: its seeds'
 * upload does most for the swarm through few gateways that pass pieces on
 * at home (4isp-tr-8, seeder in an AS of 2: 0.76x capped, 0.98x open). */
static enum open_reason starved(const struct itr_price_as_view *view, const struct itr_link *uplink)
{
	double host = (double)uplink->host_upload_bps;
	if (!view->peers)
		return OPEN_NOT;
	if (!view->seeds)
		return (double)view->peers * host < (double)uplink->capacity_bps ? OPEN_NO_SEED
		                                                                 : OPEN_NOT;
	return view->swarm_seeds > view->seeds && view->peers > view->seeds &&
	               (double)view->seeds * host < (double)uplink->budget_bps
	           ? OPEN_SLOW_SEEDS
	           : OPEN_NOT;
}

/* itr_price_as_policy, saying whether the AS is open and why. */
static enum open_reason as_policy(const struct itr_rank_policy *base,
                                  const struct itr_price_overrides *ov,
                                  const struct itr_price_as_view *view,
                                  const struct itr_link *uplink, double price,
                                  struct itr_rank_policy *out)
{
	*out = *base;
	/* a price below 0 (headroom) widens the base policy, up to 4x */
	price = price > 1 ? 1 : price < -3 ? -3 : price;
	bool behind = view->remaining > view->swarm_remaining + 0.10;
	bool sized = uplink && uplink->host_upload_bps && uplink->capacity_bps;
	enum open_reason why = sized && price <= 0 ? starved(view, uplink) : OPEN_NOT;
	if (why != OPEN_NOT) {
		if (!ov->gateways)
			out->gateways = 0;
		if (!ov->max_external)
			out->max_external = ITR_RANK_UNCAPPED;
		return ov->max_external ? OPEN_NOT : why; /* open: no outside cap */
	}
	if (!ov->gateways) {
		double g = base->gateways ? base->gateways : 1;
		if (sized)
			g = ceil((double)uplink->capacity_bps / (double)uplink->host_upload_bps);
		double need = view->seeds ? 0.5 : behind ? 1.0 : 0.75;
		double want = round(g * need * (1.0 - price));
		if (want < 1)
			want = 1;
		if (view->peers && want > view->peers)
			want = view->peers;
		out->gateways = (unsigned)want;
	}
	if (!ov->max_external) {
		unsigned m = base->max_external;
		if ((!view->seeds && behind && price < 0.25) ||
		    (view->remaining > 0 && price <= -0.5))
			m++;
		else if (price >= 0.75 && m > 1)
			m--;
		out->max_external = m;
	}
	return OPEN_NOT;
}

void itr_price_as_policy(const struct itr_rank_policy *base, const struct itr_price_overrides *ov,
                         const struct itr_price_as_view *view, const struct itr_link *uplink,
                         double price, struct itr_rank_policy *out)
{
	as_policy(base, ov, view, uplink, price, out);
}

unsigned itr_price_cost_step(double price, unsigned cur_step)
{
	double x = clamp01(price) * 10.0;
	if (cur_step > 10)
		cur_step = 10;
	if (fabs(x - (double)cur_step) <= 0.75)
		return cur_step;
	return (unsigned)lround(x);
}

/* Per link: controller state and the byte totals last read per source. */
struct pc_link {
	struct itr_link link;
	struct itr_price_link_state st;
	unsigned cost_step;
	uint64_t prev_out[16], prev_in[16];
	bool have_prev[16];
	double local_rate;     /* last tick, this instance's sources; < 0: none */
	double combined_rate;  /* last tick, from the rate source; < 0: none */
	unsigned contributors; /* instances in combined_rate */
};

/* Per AS, over all swarms, for operators. */
struct pc_as_status {
	uint32_t asn;
	uint64_t peers, seeds, swarms, gateways;
	uint64_t open_swarms; /* swarms whose lists are open here (no outside cap) */
	uint64_t open_no_seed, open_slow_seeds; /* of those, opened by the price loop and why */
	unsigned max_external_min, max_external_max;
};

/* Every link's price as the last tick left it, for the announce path:
 * read in an epoch section, never under pc->lock, which every worker
 * took on every announce (bench_scaling's controller shape). Replaced
 * whole by the tick and freed once no reader can hold it. */
struct price_snapshot {
	struct itr_epoch_node node;
	size_t n;
	struct {
		char name[ITR_NAME_MAX + 1];
		double price;
	} links[];
};

struct itr_price {
	struct itr_price_config cfg;
	_Atomic(struct price_snapshot *) prices; /* NULL: no link priced yet */
	int owned_fds[16]; /* pinned matrices opened by itr_price_add_pinned_matrix */
	size_t nowned;
	/* where the tick reads every swarm's per-AS views; held while in use
	 * so that the tracker can withdraw it before it goes */
	pthread_mutex_t swarms_lock;
	struct itr_price_swarm_source swarms;

	pthread_mutex_t lock; /* links, ases, last_tick */
	struct pc_link *links;
	size_t nlinks;
	struct pc_as_status *ases;
	size_t nases;
	double last_tick;
	bool ticked;
	char map_vtag[80];
	struct itr_price_rate_source source; /* combine NULL: local only */
	void (*before_sample)(void *ctx);    /* itr_price_set_before_sample */
	void *before_sample_ctx;
	char source_error[256]; /* the last tick's, "" if none */

	struct itr_periodic worker;
};

void itr_price_config_default(struct itr_price_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	itr_price_params_default(&cfg->params);
	cfg->period_s = 2.0;
	itr_rank_policy_default(&cfg->policy);
	cfg->publish_costs = true;
}

struct itr_price *itr_price_new(const struct itr_price_config *cfg)
{
	struct itr_price *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->cfg = *cfg;
	if (pc->cfg.nmatrix > 16)
		pc->cfg.nmatrix = 16;
	if (!(pc->cfg.period_s > 0))
		pc->cfg.period_s = 2.0;
	pthread_mutex_init(&pc->swarms_lock, NULL);
	pthread_mutex_init(&pc->lock, NULL);
	return pc;
}

void itr_price_stop(struct itr_price *pc)
{
	if (pc)
		itr_periodic_stop(&pc->worker);
}

void itr_price_free(struct itr_price *pc)
{
	if (!pc)
		return;
	itr_price_stop(pc);
	pthread_mutex_destroy(&pc->swarms_lock);
	free(pc->links);
	free(pc->ases);
	/* no reader is left: the caller stopped every user of pc */
	free(atomic_load(&pc->prices));
	pthread_mutex_destroy(&pc->lock);
	for (size_t i = 0; i < pc->nowned; i++)
		close(pc->owned_fds[i]);
	free(pc);
}

/* ---- links -------------------------------------------------------------- */

static struct pc_link *link_by_name(struct itr_price *pc, const char *name)
{
	for (size_t i = 0; i < pc->nlinks; i++)
		if (strcmp(pc->links[i].link.name, name) == 0)
			return &pc->links[i];
	return NULL;
}

/* Price of asn's uplink (0: none declared or not measured). */
static double uplink_price(struct itr_price *pc, const struct itr_link *uplink)
{
	if (!uplink)
		return 0;
	double price = 0;
	itr_epoch_enter();
	const struct price_snapshot *snap = atomic_load_explicit(&pc->prices, memory_order_acquire);
	for (size_t i = 0; snap && i < snap->n; i++)
		if (strcmp(snap->links[i].name, uplink->name) == 0) {
			price = snap->links[i].price;
			break;
		}
	itr_epoch_exit();
	return price;
}

static void free_snapshot(struct itr_epoch_node *node)
{
	free((char *)node - offsetof(struct price_snapshot, node));
}

/* The links' prices for uplink_price; under pc->lock. Out of memory: the
 * readers keep the last prices until the next tick. */
static void publish_prices(struct itr_price *pc)
{
	struct price_snapshot *old = atomic_load_explicit(&pc->prices, memory_order_relaxed);
	bool same = old ? old->n == pc->nlinks : pc->nlinks == 0;
	for (size_t i = 0; same && i < pc->nlinks; i++)
		same = old->links[i].price == pc->links[i].st.price &&
		       strcmp(old->links[i].name, pc->links[i].link.name) == 0;
	if (same)
		return;
	struct price_snapshot *snap = malloc(sizeof(*snap) + pc->nlinks * sizeof(snap->links[0]));
	if (!snap)
		return;
	snap->n = pc->nlinks;
	for (size_t i = 0; i < pc->nlinks; i++) {
		snprintf(snap->links[i].name, sizeof(snap->links[i].name), "%s",
		         pc->links[i].link.name);
		snap->links[i].price = pc->links[i].st.price;
	}
	atomic_store_explicit(&pc->prices, snap, memory_order_release);
	if (old)
		itr_epoch_retire(&old->node, free_snapshot);
}

void itr_price_policy_from_view(struct itr_price *pc, const struct itr_netmap *map, uint32_t asn,
                                const struct itr_price_as_view *view,
                                struct itr_rank_policy *policy)
{
	const struct itr_link *uplink = map && asn ? itr_netmap_link_find(map, asn, 0) : NULL;
	double price = uplink_price(pc, uplink);
	struct itr_price_as_view none = {0};
	struct itr_rank_policy base = *policy;
	itr_price_as_policy(&base, &pc->cfg.overrides, view ? view : &none, uplink, price, policy);
}

void itr_price_set_swarm_source(struct itr_price *pc, const struct itr_price_swarm_source *src)
{
	pthread_mutex_lock(&pc->swarms_lock);
	if (src)
		pc->swarms = *src;
	else
		memset(&pc->swarms, 0, sizeof(pc->swarms));
	pthread_mutex_unlock(&pc->swarms_lock);
}

/* Map's links, keeping the state of links whose name is still there; a
 * link gone from the map is forgotten, a new one starts at price 0. */
static void sync_links(struct itr_price *pc, const struct itr_netmap *map, bool measuring)
{
	size_t n = map ? itr_netmap_link_count(map) : 0;
	struct pc_link *nl = calloc(n + 1, sizeof(*nl));
	if (!nl)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct itr_link *l = itr_netmap_link_at(map, i);
		struct pc_link *old = link_by_name(pc, l->name);
		if (old && old->link.asn == l->asn && old->link.peer_asn == l->peer_asn) {
			nl[i] = *old;
		} else if (measuring) {
			/* Outside connections cannot be taken back once made:
			 * a measured link starts half way and moves from
			 * there, not from wide open. */
			nl[i].st.price = pc->cfg.params.initial_price;
			nl[i].cost_step = itr_price_cost_step(nl[i].st.price, 0);
		}
		if (!old || nl[i].link.asn != l->asn || nl[i].link.peer_asn != l->peer_asn) {
			nl[i].local_rate = -1;
			nl[i].combined_rate = -1;
		}
		nl[i].link = *l;
	}
	free(pc->links);
	pc->links = nl;
	pc->nlinks = n;
}

/* Bytes out of / into each link's AS in one matrix snapshot: the link
 * joining the two ASes if declared, else the sender's and the receiver's
 * uplinks. */
static void link_totals(struct itr_price *pc, const struct itr_netmap *map,
                        const struct itr_matrix_entry *e, size_t n, uint64_t *out, uint64_t *in)
{
	memset(out, 0, pc->nlinks * sizeof(*out));
	memset(in, 0, pc->nlinks * sizeof(*in));
	for (size_t i = 0; i < n; i++) {
		const struct itr_pid *sp = itr_netmap_pid_by_id(map, e[i].src_pid);
		const struct itr_pid *dp = itr_netmap_pid_by_id(map, e[i].dst_pid);
		if (!sp || !dp || sp->asn == dp->asn)
			continue;
		for (size_t k = 0; k < pc->nlinks; k++) {
			const struct itr_link *l = &pc->links[k].link;
			if (l->peer_asn) {
				if (l->asn == sp->asn && l->peer_asn == dp->asn)
					out[k] += e[i].bytes;
				else if (l->asn == dp->asn && l->peer_asn == sp->asn)
					in[k] += e[i].bytes;
			}
		}
		const struct itr_link *direct = itr_netmap_link_find(map, sp->asn, dp->asn);
		if (direct)
			continue;
		for (size_t k = 0; k < pc->nlinks; k++) {
			const struct itr_link *l = &pc->links[k].link;
			if (l->peer_asn)
				continue;
			if (l->asn == sp->asn)
				out[k] += e[i].bytes;
			else if (l->asn == dp->asn)
				in[k] += e[i].bytes;
		}
	}
}

/* Rate of each link over all sources: per source the busier direction's
 * byte delta; across sources the largest (each gateway sees its own AS's
 * traffic, both ends' gateways see the traffic between two ASes). */
static void measure(struct itr_price *pc, const struct itr_netmap *map, double dt,
                    const struct itr_matrix_entry *given, size_t ngiven, double *rate)
{
	uint64_t *out = calloc(pc->nlinks + 1, sizeof(uint64_t));
	uint64_t *in = calloc(pc->nlinks + 1, sizeof(uint64_t));
	for (size_t k = 0; k < pc->nlinks; k++)
		rate[k] = -1;
	size_t nsrc = given ? 1 : pc->cfg.nmatrix;
	if (!given && nsrc && pc->before_sample)
		pc->before_sample(pc->before_sample_ctx);
	for (size_t src = 0; out && in && src < nsrc; src++) {
		struct itr_matrix_entry *e = NULL;
		size_t n = 0;
		if (given) {
			link_totals(pc, map, given, ngiven, out, in);
		} else {
			if (itr_stats_read_matrix(pc->cfg.matrix_fds[src], &e, &n))
				continue;
			link_totals(pc, map, e, n, out, in);
			free(e);
		}
		for (size_t k = 0; k < pc->nlinks; k++) {
			struct pc_link *l = &pc->links[k];
			if (l->have_prev[src] && dt > 0) {
				/* a counter that went back (map re-created, LRU
				 * eviction) gives no sample, only a new baseline */
				if (out[k] >= l->prev_out[src] && in[k] >= l->prev_in[src]) {
					uint64_t d_out = out[k] - l->prev_out[src];
					uint64_t d_in = in[k] - l->prev_in[src];
					double r = (double)(d_out > d_in ? d_out : d_in) * 8.0 / dt;
					if (r > rate[k])
						rate[k] = r;
				}
			}
			l->prev_out[src] = out[k];
			l->prev_in[src] = in[k];
			l->have_prev[src] = true;
		}
	}
	free(out);
	free(in);
}

/* Publish the dynamic p-distance: a derived map when any link has an extra
 * cost, the plain map otherwise; nothing when that is what is published. */
static void publish_costs(struct itr_price *pc)
{
	if (!pc->cfg.publish_costs)
		return;
	if (pc->cfg.map_lock)
		pthread_mutex_lock(pc->cfg.map_lock);
	struct itr_netmap *cur = itr_netmap_current();
	if (cur) {
		struct itr_netmap *base = itr_netmap_base(cur);
		size_t n = itr_netmap_link_count(base);
		uint32_t *extra = calloc(n + 1, sizeof(uint32_t));
		bool any = false, differs = false;
		uint32_t tier = itr_netmap_tier(base, ITR_TIER_OTHER_AS);
		for (size_t i = 0; extra && i < n; i++) {
			const struct pc_link *l =
			    link_by_name(pc, itr_netmap_link_at(base, i)->name);
			unsigned step = l ? l->cost_step : 0;
			extra[i] = (uint32_t)((uint64_t)tier * step / 10);
			any |= extra[i] != 0;
			differs |= extra[i] != itr_netmap_link_extra(cur, i);
		}
		if (extra && (differs || (!any && cur != base))) {
			struct itr_netmap *next = NULL;
			if (any) {
				next = itr_netmap_with_link_costs(base, extra);
			} else {
				itr_netmap_ref(base);
				next = base;
			}
			if (next)
				itr_netmap_publish(next);
		}
		free(extra);
		itr_netmap_unref(cur);
	}
	if (pc->cfg.map_lock)
		pthread_mutex_unlock(pc->cfg.map_lock);
}

static int cmp_as_status(const void *a, const void *b)
{
	const struct pc_as_status *x = a, *y = b;
	return x->asn < y->asn ? -1 : x->asn > y->asn;
}

static struct pc_as_status *as_status_get(struct pc_as_status **arr, size_t *n, size_t *cap,
                                          uint32_t asn)
{
	for (size_t i = 0; i < *n; i++)
		if ((*arr)[i].asn == asn)
			return &(*arr)[i];
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 8;
		struct pc_as_status *a = realloc(*arr, c * sizeof(*a));
		if (!a)
			return NULL;
		*arr = a;
		*cap = c;
	}
	struct pc_as_status *s = &(*arr)[(*n)++];
	memset(s, 0, sizeof(*s));
	s->asn = asn;
	s->max_external_min = UINT32_MAX;
	return s;
}

struct as_collect {
	struct itr_price *pc;
	const struct itr_netmap *map;
	struct pc_as_status *arr;
	size_t n, cap;
};

/* One AS in one swarm, from the swarm source. */
static void collect_one(void *ctx, uint32_t asn, const struct itr_price_as_view *v)
{
	struct as_collect *c = ctx;
	if (!v->peers)
		return;
	struct pc_as_status *st = as_status_get(&c->arr, &c->n, &c->cap, asn);
	if (!st)
		return;
	const struct itr_link *up = c->map && asn ? itr_netmap_link_find(c->map, asn, 0) : NULL;
	pthread_mutex_lock(&c->pc->lock);
	double price = uplink_price(c->pc, up);
	pthread_mutex_unlock(&c->pc->lock);
	struct itr_rank_policy pol;
	enum open_reason why =
	    as_policy(&c->pc->cfg.policy, &c->pc->cfg.overrides, v, up, price, &pol);
	st->peers += v->peers;
	st->seeds += v->seeds;
	st->swarms++;
	/* gateways 0 is the per-list policy: every peer is one */
	st->gateways += pol.gateways && pol.gateways < v->peers ? pol.gateways : v->peers;
	if (pol.max_external == ITR_RANK_UNCAPPED)
		st->open_swarms++;
	st->open_no_seed += why == OPEN_NO_SEED;
	st->open_slow_seeds += why == OPEN_SLOW_SEEDS;
	if (pol.max_external < st->max_external_min)
		st->max_external_min = pol.max_external;
	if (pol.max_external > st->max_external_max)
		st->max_external_max = pol.max_external;
}

/* Per AS over all swarms: peers, seeds, swarms, the gateways the policy
 * gives it now (from the swarm source; none: no ASes). */
static void collect_ases(struct itr_price *pc, const struct itr_netmap *map,
                         struct pc_as_status **out, size_t *nout)
{
	struct as_collect c = {.pc = pc, .map = map};
	pthread_mutex_lock(&pc->swarms_lock);
	if (pc->swarms.each)
		pc->swarms.each(pc->swarms.ctx, collect_one, &c);
	pthread_mutex_unlock(&pc->swarms_lock);
	if (c.n)
		qsort(c.arr, c.n, sizeof(*c.arr), cmp_as_status);
	*out = c.arr;
	*nout = c.n;
}

/* The rate source's view of this tick's local rates (pc->lock held on
 * entry and on return; released while the source works, which is safe
 * because only tick, on one thread, changes pc->links). */
static void combine_rates(struct itr_price *pc, double dt, double *rate)
{
	size_t n = pc->nlinks;
	const char **names = calloc(n + 1, sizeof(*names));
	char *name_buf = calloc(n + 1, ITR_NAME_MAX + 1);
	double *local = calloc(n + 1, sizeof(double));
	double *total = calloc(n + 1, sizeof(double));
	unsigned *contributors = calloc(n + 1, sizeof(unsigned));
	struct itr_price_rate_source src = pc->source;
	char err[256] = "";
	int rc = -1;
	if (names && name_buf && local && total && contributors) {
		for (size_t k = 0; k < n; k++) {
			char *nm = name_buf + k * (ITR_NAME_MAX + 1);
			snprintf(nm, ITR_NAME_MAX + 1, "%s", pc->links[k].link.name);
			names[k] = nm;
			local[k] = rate[k];
		}
		pthread_mutex_unlock(&pc->lock);
		rc = src.combine(src.ctx, names, local, n, dt, total, contributors, err,
		                 sizeof(err));
		pthread_mutex_lock(&pc->lock);
	} else {
		snprintf(err, sizeof(err), "out of memory");
	}
	for (size_t k = 0; k < n; k++) {
		struct pc_link *l = &pc->links[k];
		l->combined_rate = rc == 0 ? total[k] : -1;
		l->contributors = rc == 0 ? contributors[k] : 0;
		if (rc == 0)
			rate[k] = total[k];
	}
	snprintf(pc->source_error, sizeof(pc->source_error), "%s", rc == 0 ? "" : err);
	free(names);
	free(name_buf);
	free(local);
	free(total);
	free(contributors);
}

static void tick(struct itr_price *pc, const struct itr_netmap *map, double now,
                 const struct itr_matrix_entry *given, size_t ngiven)
{
	pthread_mutex_lock(&pc->lock);
	sync_links(pc, map, given || pc->cfg.nmatrix);
	snprintf(pc->map_vtag, sizeof(pc->map_vtag), "%s", map ? itr_netmap_vtag(map) : "");
	double dt = pc->ticked ? now - pc->last_tick : 0;
	double *rate = calloc(pc->nlinks + 1, sizeof(double));
	bool local_sources = given || pc->cfg.nmatrix;
	if (rate && map && (local_sources || pc->source.combine)) {
		if (local_sources)
			measure(pc, map, dt, given, ngiven, rate);
		else
			for (size_t k = 0; k < pc->nlinks; k++)
				rate[k] = -1;
		for (size_t k = 0; k < pc->nlinks; k++)
			pc->links[k].local_rate = rate[k];
		if (pc->source.combine)
			combine_rates(pc, dt, rate);
		for (size_t k = 0; k < pc->nlinks; k++) {
			struct pc_link *l = &pc->links[k];
			if (rate[k] < 0)
				continue; /* no sample this round */
			itr_price_update(&pc->cfg.params, &l->st, rate[k],
			                 (double)l->link.budget_bps, dt);
			l->cost_step = itr_price_cost_step(l->st.price, l->cost_step);
		}
	}
	free(rate);
	publish_prices(pc);
	pc->last_tick = now;
	pc->ticked = true;
	pthread_mutex_unlock(&pc->lock);

	struct pc_as_status *ases;
	size_t nases;
	collect_ases(pc, map, &ases, &nases);
	pthread_mutex_lock(&pc->lock);
	free(pc->ases);
	pc->ases = ases;
	pc->nases = nases;
	pthread_mutex_unlock(&pc->lock);
	publish_costs(pc);
}

void itr_price_tick(struct itr_price *pc, const struct itr_netmap *map, double now)
{
	tick(pc, map, now, NULL, 0);
}

void itr_price_tick_matrix(struct itr_price *pc, const struct itr_netmap *map, double now,
                           const struct itr_matrix_entry *e, size_t n)
{
	tick(pc, map, now, e, n);
}

static void price_job(void *arg)
{
	struct itr_price *pc = arg;
	struct itr_netmap *cur = itr_netmap_current();
	/* Links and PIDs are the base map's; the derived one only adds costs. */
	itr_price_tick(pc, cur ? itr_netmap_base(cur) : NULL, itr_clock_s());
	if (cur)
		itr_netmap_unref(cur);
}

void itr_price_set_before_sample(struct itr_price *pc, void (*fn)(void *ctx), void *ctx)
{
	pc->before_sample = fn;
	pc->before_sample_ctx = ctx;
}

int itr_price_add_matrix(struct itr_price *pc, int fd)
{
	if (pc->cfg.nmatrix >= sizeof(pc->cfg.matrix_fds) / sizeof(pc->cfg.matrix_fds[0]))
		return -1;
	pc->cfg.matrix_fds[pc->cfg.nmatrix++] = fd;
	return 0;
}

int itr_price_add_pinned_matrix(struct itr_price *pc, const char *pin_root, char *err,
                                size_t errlen)
{
	if (pc->nowned == sizeof(pc->owned_fds) / sizeof(pc->owned_fds[0])) {
		snprintf(err, errlen, "%s: too many matrix sources", pin_root);
		return -1;
	}
	int fd = itr_stats_open_pinned(pin_root, ITR_MAP_MATRIX);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", pin_root, strerror(-fd));
		return -1;
	}
	if (itr_price_add_matrix(pc, fd)) {
		close(fd);
		snprintf(err, errlen, "%s: too many matrix sources", pin_root);
		return -1;
	}
	pc->owned_fds[pc->nowned++] = fd;
	return 0;
}

int itr_price_start_with(struct itr_price *pc, int own_matrix_fd, const char *const *pin_roots,
                         size_t npin_roots, char *err, size_t errlen)
{
	char why[300];
	if (own_matrix_fd >= 0)
		itr_price_add_matrix(pc, own_matrix_fd);
	for (size_t i = 0; i < npin_roots; i++)
		if (itr_price_add_pinned_matrix(pc, pin_roots[i], why, sizeof(why))) {
			snprintf(err, errlen, "--price-matrix %s", why);
			return -1;
		}
	if (itr_price_start(pc)) {
		snprintf(err, errlen, "price controller: cannot start");
		return -1;
	}
	fprintf(stderr, "itrackerd: price controller: %s, every %g s\n",
	        pc->cfg.nmatrix      ? "measured inter-AS rates and swarm state"
	        : pc->source.combine ? "the cluster's measured inter-AS rates and swarm state"
	                             : "swarm state only (no data plane)",
	        pc->cfg.period_s);
	return 0;
}

void itr_price_set_rate_source(struct itr_price *pc, const struct itr_price_rate_source *src)
{
	pthread_mutex_lock(&pc->lock);
	if (src)
		pc->source = *src;
	else
		memset(&pc->source, 0, sizeof(pc->source));
	pthread_mutex_unlock(&pc->lock);
}

int itr_price_start(struct itr_price *pc)
{
	return itr_periodic_start(&pc->worker, (uint64_t)(pc->cfg.period_s * 1000), price_job, pc)
	           ? -1
	           : 0;
}

double itr_price_link_price(struct itr_price *pc, const char *name)
{
	pthread_mutex_lock(&pc->lock);
	const struct pc_link *l = link_by_name(pc, name);
	double p = l ? l->st.price : NAN;
	pthread_mutex_unlock(&pc->lock);
	return p;
}

double itr_price_link_rate(struct itr_price *pc, const char *name)
{
	pthread_mutex_lock(&pc->lock);
	const struct pc_link *l = link_by_name(pc, name);
	double r = l ? l->st.rate_ewma : -1;
	pthread_mutex_unlock(&pc->lock);
	return r;
}

int itr_price_link_rates(struct itr_price *pc, const char *name, double *local, double *combined,
                         unsigned *contributors)
{
	pthread_mutex_lock(&pc->lock);
	const struct pc_link *l = link_by_name(pc, name);
	if (l) {
		*local = l->local_rate;
		*combined = l->combined_rate;
		*contributors = l->contributors;
	}
	pthread_mutex_unlock(&pc->lock);
	return l ? 0 : -1;
}

static const char *mode_name(const struct itr_price *pc)
{
	if (pc->source.combine)
		return pc->cfg.nmatrix ? "dataplane+cluster" : "cluster";
	return pc->cfg.nmatrix ? "dataplane" : "swarm-state";
}

json_t *itr_price_status_json(struct itr_price *pc)
{
	json_t *o = json_object();
	json_t *links = json_array(), *ases = json_array();
	pthread_mutex_lock(&pc->lock);
	json_object_set_new(o, "mode", json_string(mode_name(pc)));
	json_object_set_new(o, "period_s", json_real(pc->cfg.period_s));
	json_object_set_new(o, "rate_source",
	                    json_string(pc->source.combine
	                                    ? (pc->source.name ? pc->source.name : "combined")
	                                    : "local"));
	if (pc->source.combine)
		json_object_set_new(o, "rate_source_error",
		                    pc->source_error[0] ? json_string(pc->source_error)
		                                        : json_null());
	for (size_t i = 0; i < pc->nlinks; i++) {
		const struct pc_link *l = &pc->links[i];
		json_t *j = json_object();
		json_object_set_new(j, "name", json_string(l->link.name));
		json_object_set_new(j, "asn", json_integer(l->link.asn));
		json_object_set_new(j, "peer_asn",
		                    l->link.peer_asn ? json_integer(l->link.peer_asn)
		                                     : json_string("uplink"));
		json_object_set_new(j, "capacity_bps",
		                    json_integer((json_int_t)l->link.capacity_bps));
		json_object_set_new(j, "budget_bps", json_integer((json_int_t)l->link.budget_bps));
		json_object_set_new(j, "measured", json_boolean(l->st.primed));
		json_object_set_new(j, "rate_bps", json_real(l->st.rate_last));
		json_object_set_new(j, "rate_smoothed_bps", json_real(l->st.rate_ewma));
		json_object_set_new(j, "local_rate_bps",
		                    l->local_rate >= 0 ? json_real(l->local_rate) : json_null());
		if (pc->source.combine) {
			json_object_set_new(j, "cluster_rate_bps",
			                    l->combined_rate >= 0 ? json_real(l->combined_rate)
			                                          : json_null());
			json_object_set_new(j, "cluster_instances", json_integer(l->contributors));
		}
		json_object_set_new(j, "price", json_real(l->st.price));
		json_object_set_new(j, "extra_cost_tenths", json_integer(l->cost_step));
		json_array_append_new(links, j);
	}
	for (size_t i = 0; i < pc->nases; i++) {
		const struct pc_as_status *a = &pc->ases[i];
		json_t *j = json_object();
		json_object_set_new(j, "asn", json_integer(a->asn));
		json_object_set_new(j, "swarms", json_integer((json_int_t)a->swarms));
		json_object_set_new(j, "peers", json_integer((json_int_t)a->peers));
		json_object_set_new(j, "seeds", json_integer((json_int_t)a->seeds));
		json_object_set_new(j, "gateways", json_integer((json_int_t)a->gateways));
		json_object_set_new(j, "open_swarms", json_integer((json_int_t)a->open_swarms));
		json_object_set_new(j, "open_no_seed_swarms",
		                    json_integer((json_int_t)a->open_no_seed));
		json_object_set_new(j, "open_slow_seeds_swarms",
		                    json_integer((json_int_t)a->open_slow_seeds));
		json_object_set_new(j, "max_external_min", json_integer(a->max_external_min));
		json_object_set_new(j, "max_external_max", json_integer(a->max_external_max));
		json_array_append_new(ases, j);
	}
	pthread_mutex_unlock(&pc->lock);
	json_object_set_new(o, "links", links);
	json_object_set_new(o, "ases", ases);
	return o;
}

int itr_price_metrics(struct itr_price *pc, FILE *out)
{
	int rc = 0;
	pthread_mutex_lock(&pc->lock);
	static const struct {
		const char *name, *type, *help;
	} link_metrics[] = {
	    {"itracker_link_capacity_bits_per_second", "gauge",
	     "Declared capacity of the inter-AS link (network map)."},
	    {"itracker_link_budget_bits_per_second", "gauge",
	     "BitTorrent budget on the inter-AS link (network map)."},
	    {"itracker_link_rate_bits_per_second", "gauge",
	     "Inter-AS BitTorrent rate the data plane measured on the link, smoothed."},
	    {"itracker_link_price", "gauge",
	     "P4P price of the link: 1 far above budget, 0 the base policy, below 0 "
	     "headroom (a link in use under its budget lets more out)."},
	    {"itracker_link_local_rate_bits_per_second", "gauge",
	     "Inter-AS BitTorrent rate this instance's data plane measured on the link in the "
	     "last sampling period (-1: no sample)."},
	    {"itracker_link_cluster_rate_bits_per_second", "gauge",
	     "Sum of the rates every live instance on the Redis Cluster measured on the link "
	     "in its last sampling period (-1: none); the price follows it."},
	    {"itracker_link_cluster_instances", "gauge",
	     "Live instances whose measurement of the link is in the cluster rate."},
	};
	/* the cluster series exist only with a cluster rate source */
	size_t nlink_metrics = pc->source.combine ? 7 : 5;
	for (size_t m = 0; m < nlink_metrics; m++) {
		if (fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", link_metrics[m].name,
		            link_metrics[m].help, link_metrics[m].name, link_metrics[m].type) < 0)
			rc = -1;
		for (size_t i = 0; i < pc->nlinks; i++) {
			const struct pc_link *l = &pc->links[i];
			double v = m == 0   ? (double)l->link.capacity_bps
			           : m == 1 ? (double)l->link.budget_bps
			           : m == 2 ? l->st.rate_ewma
			           : m == 3 ? l->st.price
			           : m == 4 ? (l->local_rate >= 0 ? l->local_rate : -1)
			           : m == 5 ? (l->combined_rate >= 0 ? l->combined_rate : -1)
			                    : (double)l->contributors;
			char peer[16];
			if (l->link.peer_asn)
				snprintf(peer, sizeof(peer), "%u", l->link.peer_asn);
			else
				snprintf(peer, sizeof(peer), "uplink");
			if (fprintf(out, "%s{link=\"%s\",asn=\"%u\",peer_asn=\"%s\"} %.17g\n",
			            link_metrics[m].name, l->link.name, l->link.asn, peer, v) < 0)
				rc = -1;
		}
	}
	static const struct {
		const char *name, *help;
	} as_metrics[] = {
	    {"itracker_as_peers", "Peers of the AS over all swarms (seeds included)."},
	    {"itracker_as_seeds", "Seeds of the AS over all swarms."},
	    {"itracker_as_gateways", "Gateway peers of the AS over all swarms (external budget)."},
	    {"itracker_as_max_external",
	     "Largest outside-peer count per gateway in the AS (4294967295: no cap)."},
	    {"itracker_as_open_swarms",
	     "Swarms in which the AS's lists are open (no outside cap): it cannot feed itself "
	     "and its link is at or under its budget."},
	    {"itracker_as_open_swarms_by_reason",
	     "Swarms the price loop opened for the AS, by reason: no_seed (no seed, and its "
	     "peers' upload is under the link's capacity) or slow_seeds (its seeds' upload is "
	     "under the link's budget while other ASes hold seeds too)."},
	};
	enum { AS_VALUES = sizeof(as_metrics) / sizeof(as_metrics[0]) - 1 }; /* last: by reason */
	for (size_t m = 0; m < AS_VALUES; m++) {
		if (fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", as_metrics[m].name,
		            as_metrics[m].help, as_metrics[m].name) < 0)
			rc = -1;
		for (size_t i = 0; i < pc->nases; i++) {
			const struct pc_as_status *a = &pc->ases[i];
			const uint64_t v[AS_VALUES] = {a->peers, a->seeds, a->gateways,
			                               a->max_external_max, a->open_swarms};
			if (fprintf(out, "%s{asn=\"%u\"} %llu\n", as_metrics[m].name, a->asn,
			            (unsigned long long)v[m]) < 0)
				rc = -1;
		}
	}
	const char *by_reason = as_metrics[AS_VALUES].name;
	if (fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", by_reason, as_metrics[AS_VALUES].help,
	            by_reason) < 0)
		rc = -1;
	for (size_t i = 0; i < pc->nases; i++) {
		const struct pc_as_status *a = &pc->ases[i];
		if (fprintf(out,
		            "%s{asn=\"%u\",reason=\"no_seed\"} %llu\n"
		            "%s{asn=\"%u\",reason=\"slow_seeds\"} %llu\n",
		            by_reason, a->asn, (unsigned long long)a->open_no_seed, by_reason,
		            a->asn, (unsigned long long)a->open_slow_seeds) < 0)
			rc = -1;
	}
	pthread_mutex_unlock(&pc->lock);
	return rc;
}
