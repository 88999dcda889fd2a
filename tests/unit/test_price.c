/* test_price.c - the price controller (price.h): the link controller's step
 * response against a simulated swarm (settles on the budget, no
 * oscillation, bounds), the external budget per AS from price and swarm
 * state, the cost steps' hysteresis, and the running controller fed with
 * matrices: a link missing from the map, links appearing and leaving with a
 * reload, swarm state from announces, status and metrics.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "netmap.h"
#include "price.h"
#include "tracker.h"
#include "unit/price_map.h"

/* A swarm as the price sees it: the inter-AS BitTorrent rate the tracker's
 * lists allow falls with the price, and follows with a lag (clients only
 * act on a new list at their next announce). demand: the rate at price 0. */
struct plant {
	double demand, rate, lag_s;
};

static double plant_step(struct plant *pl, double price, double dt)
{
	double target = pl->demand * (1.0 - price);
	double a = 1.0 - exp(-dt / pl->lag_s);
	pl->rate += a * (target - pl->rate);
	return pl->rate;
}

struct run {
	double settle_s; /* first time after which the rate stays within 10 % */
	int reversals;   /* sign changes of the price's movement, moves > 0.005 */
	double price_min, price_max, final_rate, final_price;
	double late_swing; /* price max - min over the second half of the run */
};

/* start_price 0: the demand arrives at an open link (overload step);
 * start_price 1: a new link opens from the conservative end (ramp). */
static struct run simulate(double demand, double budget, double lag_s, double seconds,
                           double start_price)
{
	struct itr_price_params p;
	itr_price_params_default(&p);
	struct itr_price_link_state st;
	memset(&st, 0, sizeof(st));
	st.price = start_price;
	struct plant pl = {demand, demand * (1.0 - start_price), lag_s};
	struct run r = {-1, 0, 1, -2, 0, 0, 0};
	double dt = 2.0, last_move = 0, prev_price = start_price, late_min = 1, late_max = -2;
	for (double t = dt; t <= seconds + 1e-9; t += dt) {
		double rate = plant_step(&pl, st.price, dt);
		double price = itr_price_update(&p, &st, rate, budget, dt);
		double move = price - prev_price;
		if (fabs(move) > 0.005) {
			if (last_move != 0 && (move > 0) != (last_move > 0))
				r.reversals++;
			last_move = move;
		}
		prev_price = price;
		if (t > seconds / 2) {
			late_min = price < late_min ? price : late_min;
			late_max = price > late_max ? price : late_max;
		}
		bool inside = fabs(pl.rate - budget) <= 0.1 * budget;
		if (inside && r.settle_s < 0)
			r.settle_s = t;
		else if (!inside)
			r.settle_s = -1;
		if (price < r.price_min)
			r.price_min = price;
		if (price > r.price_max)
			r.price_max = price;
	}
	r.final_rate = pl.rate;
	r.final_price = st.price;
	r.late_swing = late_max - late_min;
	return r;
}

/* Step response: demand 2.5x the budget; the rate settles within 10 % of
 * the budget in 30 s and stays there. */
static void test_step_response(void **state)
{
	(void)state;
	struct run r = simulate(10e6, 4e6, 3.0, 120, 0.0);
	print_message("step: settled after %.0f s, price %.3f, rate %.2f Mbit/s, %d reversals\n",
	              r.settle_s, r.final_price, r.final_rate / 1e6, r.reversals);
	assert_true(r.settle_s > 0 && r.settle_s <= 30);
	assert_true(fabs(r.final_rate - 4e6) <= 0.1 * 4e6);
	assert_true(fabs(r.final_price - 0.6) < 0.1);
	assert_int_equal(r.reversals, 0);
}

/* Ramp from the conservative end: the rate climbs to the budget within
 * 30 s and never passes it by more than 10 % on the way (outside
 * connections, once made, cannot be taken back). */
static void test_ramp_from_initial_price(void **state)
{
	(void)state;
	double demands[] = {6e6, 10e6, 20e6};
	for (size_t i = 0; i < 3; i++) {
		struct itr_price_params p;
		itr_price_params_default(&p);
		struct itr_price_link_state st;
		memset(&st, 0, sizeof(st));
		st.price = 1 - p.min_allowance;
		struct plant pl = {demands[i], 0, 3.0};
		double settle = -1, peak = 0;
		for (double t = 2; t <= 120; t += 2) {
			double rate = plant_step(&pl, st.price, 2);
			itr_price_update(&p, &st, rate, 4e6, 2);
			peak = rate > peak ? rate : peak;
			bool inside = fabs(rate - 4e6) <= 0.4e6;
			if (inside && settle < 0)
				settle = t;
			else if (!inside)
				settle = -1;
		}
		print_message("ramp: demand %.0f Mbit/s settled after %.0f s, peak %.2f Mbit/s\n",
		              demands[i] / 1e6, settle, peak / 1e6);
		assert_true(settle > 0 && settle <= 30);
		assert_true(peak <= 4.4e6);
	}
}

/* No oscillation: over a range of demands and lags the price moves one way
 * and turns back at most once (the correction of its first overshoot), the
 * rate stays within 10 % of the budget once it got there, and in the
 * second half of the run the price moves by 0.01 at most. */
static void test_no_oscillation(void **state)
{
	(void)state;
	double demands[] = {5e6, 8e6, 20e6, 40e6};
	double lags[] = {1.0, 3.0, 6.0};
	for (size_t i = 0; i < 4; i++) {
		for (size_t k = 0; k < 3; k++) {
			struct run r = simulate(demands[i], 4e6, lags[k], 300, 0.0);
			if (r.reversals > 1 || r.settle_s < 0 || r.settle_s > 60 ||
			    r.late_swing > 0.01)
				fail_msg("demand %.0f lag %.0f: %d reversals, settled at %.0f s, "
				         "late swing %.3f",
				         demands[i], lags[k], r.reversals, r.settle_s,
				         r.late_swing);
		}
	}
	/* demand below the budget (the lists are more local than the link
	 * needs): the allowance grows past 1 until the rate meets the budget,
	 * here at 4/3 (price -1/3), without overshoot or hunting */
	double under[] = {2.2e6, 2.5e6, 3e6, 3.6e6};
	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 3; k++) {
			struct run r = simulate(under[i], 4e6, lags[k], 300, 0.0);
			print_message("under: demand %.1f lag %.0f: settled at %.0f s, price %.3f, "
			              "%d reversals, peak price %.3f\n",
			              under[i] / 1e6, lags[k], r.settle_s, r.final_price,
			              r.reversals, r.price_max);
			if (r.reversals > 1 || r.settle_s < 0 || r.settle_s > 90 ||
			    r.late_swing > 0.01 || fabs(r.final_price - (1 - 4e6 / under[i])) > 0.1)
				fail_msg(
				    "demand %.1f lag %.0f below the budget: %d reversals, settled "
				    "at %.0f s, late swing %.3f, price %.3f",
				    under[i] / 1e6, lags[k], r.reversals, r.settle_s, r.late_swing,
				    r.final_price);
		}
	/* demand so low that twice the base cannot reach the budget: the
	 * allowance stops at max_allowance (price -1) */
	struct run low = simulate(1e6, 4e6, 3.0, 300, 0.0);
	assert_true(fabs(low.final_price - -1.0) < 1e-9);
	assert_true(low.price_min >= -1.0 - 1e-9);
}

/* Bounds: the price stays in [1 - max_allowance, 1] whatever the rate; a
 * step never moves it by more than max_step; an idle link earns no
 * headroom, and one that goes idle keeps what it had; junk input does not
 * poison the state. */
static void test_bounds(void **state)
{
	(void)state;
	struct itr_price_params p;
	itr_price_params_default(&p);
	struct itr_price_link_state st;
	memset(&st, 0, sizeof(st));
	double prev = 0;
	for (int i = 0; i < 50; i++) {
		double price = itr_price_update(&p, &st, 1e12, 1e6, 2.0);
		assert_true(price >= 0 && price <= 1);
		/* the allowance 1 - price shrinks by exp(max_step) at most */
		assert_true((1 - prev) / (1 - price) <= exp(p.max_step) + 1e-9);
		prev = price;
	}
	assert_true(fabs(st.price - (1 - p.min_allowance)) < 1e-9);
	for (int i = 0; i < 100; i++)
		itr_price_update(&p, &st, 0, 1e6, 2.0);
	assert_true(st.price == 0.0); /* idle: back to the base, no further */
	for (int i = 0; i < 100; i++) /* in use at 20 % of the budget */
		itr_price_update(&p, &st, 0.2e6, 1e6, 2.0);
	assert_true(fabs(st.price - (1 - p.max_allowance)) < 1e-9);
	double earned = st.price;
	for (int i = 0; i < 3; i++) /* 5 % of the budget: below headroom_min_use */
		itr_price_update(&p, &st, 0.05e6, 1e6, 2.0);
	assert_true(st.price >= earned - 1e-9);
	for (int i = 0; i < 100; i++)
		itr_price_update(&p, &st, 0, 1e6, 2.0);
	assert_true(st.price >= earned - 1e-9 && st.price <= 0);
	itr_price_update(&p, &st, NAN, 1e6, 2.0);
	assert_false(isnan(st.rate_ewma));
	assert_true(st.price >= 1 - p.max_allowance && st.price <= 1);
	/* no budget or no time: the price holds */
	st.price = 0.5;
	assert_true(itr_price_update(&p, &st, 5e6, 0, 2.0) == 0.5);
	assert_true(itr_price_update(&p, &st, 5e6, 1e6, 0) == 0.5);
}

/* The deadband holds the price near the budget (hysteresis). */
static void test_deadband(void **state)
{
	(void)state;
	struct itr_price_params p;
	itr_price_params_default(&p);
	struct itr_price_link_state st;
	memset(&st, 0, sizeof(st));
	st.price = 0.4;
	for (int i = 0; i < 30; i++)
		itr_price_update(&p, &st, i % 2 ? 4.15e6 : 3.85e6, 4e6, 2.0);
	assert_true(fabs(st.price - 0.4) < 1e-9);
}

static void test_cost_steps(void **state)
{
	(void)state;
	assert_int_equal(itr_price_cost_step(0, 0), 0);
	assert_int_equal(itr_price_cost_step(0.07, 0), 0); /* within 0.75 step */
	assert_int_equal(itr_price_cost_step(0.08, 0), 1);
	assert_int_equal(itr_price_cost_step(0.5, 1), 5);
	assert_int_equal(itr_price_cost_step(0.43, 5), 5); /* back 0.7 step: held */
	assert_int_equal(itr_price_cost_step(0.42, 5), 4);
	assert_int_equal(itr_price_cost_step(1.0, 4), 10);
	assert_int_equal(itr_price_cost_step(7.0, 99), 10); /* clamped */
}

/* AS 1's uplink: 8 Mbit/s, a 4 Mbit/s budget, and hosts that upload
 * 2 Mbit/s each, so four of them fill it. */
static struct itr_link uplink_of_four_hosts(void)
{
	struct itr_link up;
	memset(&up, 0, sizeof(up));
	up.asn = 1;
	up.capacity_bps = 8000000;
	up.budget_bps = 4000000;
	up.host_upload_bps = 2000000;
	return up;
}

/* External budget per AS from swarm state, the uplink and its price. */
static void test_as_policy(void **state)
{
	(void)state;
	struct itr_rank_policy base, out;
	itr_rank_policy_default(&base);
	struct itr_price_overrides none = {false, false, false};
	struct itr_link up = uplink_of_four_hosts();

	/* no seed, far behind, no price: every gateway the link can carry and
	 * one more outside peer each */
	struct itr_price_as_view behind = {16, 0, 0.9, 0.5, 1};
	itr_price_as_policy(&base, &none, &behind, &up, 0.0, &out);
	assert_int_equal(out.gateways, 4);
	assert_int_equal(out.max_external, base.max_external + 1);
	assert_int_equal(out.min_list, base.min_list);
	/* the price takes gateways away, down to one, and outside peers */
	itr_price_as_policy(&base, &none, &behind, &up, 0.5, &out);
	assert_int_equal(out.gateways, 2);
	assert_int_equal(out.max_external, base.max_external);
	itr_price_as_policy(&base, &none, &behind, &up, 1.0, &out);
	assert_int_equal(out.gateways, 1);
	assert_int_equal(out.max_external, base.max_external - 1);
	/* headroom (a link in use under its budget): more gateways, and one
	 * more outside peer for an AS still downloading even with a seed */
	itr_price_as_policy(&base, &none, &behind, &up, -0.5, &out);
	assert_int_equal(out.gateways, 6);
	assert_int_equal(out.max_external, base.max_external + 1);
	itr_price_as_policy(&base, &none, &behind, &up, -1.0, &out);
	assert_int_equal(out.gateways, 8);
	assert_int_equal(out.max_external, base.max_external + 1);
	/* a local seed: half the gateways */
	struct itr_price_as_view seeded = {16, 1, 0.5, 0.5, 1};
	itr_price_as_policy(&base, &none, &seeded, &up, 0.0, &out);
	assert_int_equal(out.gateways, 2);
	assert_int_equal(out.max_external, base.max_external);
	itr_price_as_policy(&base, &none, &seeded, &up, -1.0, &out);
	assert_int_equal(out.gateways, 4);
	assert_int_equal(out.max_external, base.max_external + 1);
	struct itr_price_as_view done = {16, 16, 0, 0, 16};
	itr_price_as_policy(&base, &none, &done, &up, -1.0, &out);
	assert_int_equal(out.max_external, base.max_external); /* nothing left to fetch */
	/* never more gateways than peers (over the budget: two peers with
	 * 4 of the link's 8 Mbit/s would be open under it) */
	struct itr_price_as_view two = {2, 0, 0.9, 0.5, 1};
	itr_price_as_policy(&base, &none, &two, &up, 0.1, &out);
	assert_int_equal(out.gateways, 2);
	/* no uplink declared: the configured count times need, at least 1 */
	itr_price_as_policy(&base, &none, &behind, NULL, 0.0, &out);
	assert_int_equal(out.gateways, base.gateways);
	/* operator overrides win */
	struct itr_rank_policy fixed = base;
	fixed.gateways = 7;
	fixed.max_external = 5;
	struct itr_price_overrides ov = {true, true, true};
	itr_price_as_policy(&fixed, &ov, &behind, &up, 1.0, &out);
	assert_int_equal(out.gateways, 7);
	assert_int_equal(out.max_external, 5);
}

/* An AS with no seed whose peers' uploads together fall short of the
 * link's capacity is open (gateways 0: every peer takes outside peers; no
 * cap) while the link is at or under its budget, and capped like any other
 * AS once it is over. */
static void test_as_policy_small_as(void **state)
{
	(void)state;
	struct itr_rank_policy base, out;
	itr_rank_policy_default(&base);
	struct itr_price_overrides none = {false, false, false};
	struct itr_link up = uplink_of_four_hosts();

	struct itr_price_as_view three = {3, 0, 0.9, 0.5, 1}; /* 6 of 8 Mbit/s */
	const double open_prices[] = {0.0, -0.5, -1.0};
	for (size_t i = 0; i < sizeof(open_prices) / sizeof(open_prices[0]); i++) {
		itr_price_as_policy(&base, &none, &three, &up, open_prices[i], &out);
		assert_int_equal(out.gateways, 0);
		assert_int_equal(out.max_external, ITR_RANK_UNCAPPED);
		assert_int_equal(out.min_list, base.min_list);
	}
	/* over the budget: the caps of any AS */
	itr_price_as_policy(&base, &none, &three, &up, 0.1, &out);
	assert_int_equal(out.gateways, 3);
	assert_int_equal(out.max_external, base.max_external + 1);
	itr_price_as_policy(&base, &none, &three, &up, 1.0, &out);
	assert_int_equal(out.gateways, 1);
	assert_int_equal(out.max_external, base.max_external - 1);
	/* a seed in the AS: capped, so that its upload goes to few gateways */
	struct itr_price_as_view seeded = {3, 1, 0.5, 0.5, 1};
	itr_price_as_policy(&base, &none, &seeded, &up, -1.0, &out);
	assert_int_not_equal(out.max_external, ITR_RANK_UNCAPPED);
	assert_int_not_equal(out.gateways, 0);
	/* four peers fill the link: not small */
	struct itr_price_as_view four = {4, 0, 0.9, 0.5, 1};
	itr_price_as_policy(&base, &none, &four, &up, 0.0, &out);
	assert_int_equal(out.gateways, 4);
	assert_int_equal(out.max_external, base.max_external + 1);
	/* without the hosts' upload the AS's size is unknown: never open */
	struct itr_link unsized = up;
	unsized.host_upload_bps = 0;
	itr_price_as_policy(&base, &none, &three, &unsized, 0.0, &out);
	assert_int_equal(out.max_external, base.max_external + 1);
	itr_price_as_policy(&base, &none, &three, NULL, -1.0, &out);
	assert_int_not_equal(out.max_external, ITR_RANK_UNCAPPED);
	/* operator overrides still win */
	struct itr_rank_policy fixed = base;
	fixed.gateways = 7;
	fixed.max_external = 5;
	struct itr_price_overrides ov = {true, true, true};
	itr_price_as_policy(&fixed, &ov, &three, &up, -1.0, &out);
	assert_int_equal(out.gateways, 7);
	assert_int_equal(out.max_external, 5);
}

/* An AS whose seeds upload less than its link's budget, in a swarm with
 * seeds elsewhere too, is open under its budget: its leechers can fetch
 * from the other ASes' seeds faster than from its own. The AS holding the
 * swarm's only seeds stays capped, and so does one whose seeds fill the
 * link or that has no leecher. */
static void test_as_policy_seed_starved(void **state)
{
	(void)state;
	struct itr_rank_policy base, out;
	itr_rank_policy_default(&base);
	struct itr_price_overrides none = {false, false, false};
	struct itr_link up = uplink_of_four_hosts(); /* 8 Mbit/s, budget 4, hosts 2 */

	/* 6 peers, 1 seed (2 of the budget's 4 Mbit/s), 3 seeds in the swarm */
	struct itr_price_as_view slow_seed = {6, 1, 0.7, 0.7, 3};
	const double open_prices[] = {0.0, -0.5, -1.0};
	for (size_t i = 0; i < sizeof(open_prices) / sizeof(open_prices[0]); i++) {
		itr_price_as_policy(&base, &none, &slow_seed, &up, open_prices[i], &out);
		assert_int_equal(out.gateways, 0);
		assert_int_equal(out.max_external, ITR_RANK_UNCAPPED);
	}
	/* over the budget: capped like any AS with a seed */
	itr_price_as_policy(&base, &none, &slow_seed, &up, 0.1, &out);
	assert_int_equal(out.gateways, 2);
	assert_int_not_equal(out.max_external, ITR_RANK_UNCAPPED);
	/* the swarm's only seed: capped, its upload goes to few gateways */
	struct itr_price_as_view only_seed = {6, 1, 0.7, 0.7, 1};
	itr_price_as_policy(&base, &none, &only_seed, &up, -1.0, &out);
	assert_int_equal(out.gateways, 4);
	assert_int_equal(out.max_external, base.max_external + 1);
	/* two seeds fill the budget (2 x 2 = 4 Mbit/s): capped */
	struct itr_price_as_view fed = {10, 2, 0.5, 0.6, 6};
	itr_price_as_policy(&base, &none, &fed, &up, -1.0, &out);
	assert_int_not_equal(out.max_external, ITR_RANK_UNCAPPED);
	assert_int_not_equal(out.gateways, 0);
	/* nothing left to fetch: capped */
	struct itr_price_as_view all_seeds = {2, 2, 0, 0.5, 5};
	itr_price_as_policy(&base, &none, &all_seeds, &up, -1.0, &out);
	assert_int_not_equal(out.max_external, ITR_RANK_UNCAPPED);
	/* without the hosts' upload: never open */
	struct itr_link unsized = up;
	unsized.host_upload_bps = 0;
	itr_price_as_policy(&base, &none, &slow_seed, &unsized, -1.0, &out);
	assert_int_not_equal(out.max_external, ITR_RANK_UNCAPPED);
	/* operator overrides still win */
	struct itr_rank_policy fixed = base;
	fixed.gateways = 7;
	fixed.max_external = 5;
	struct itr_price_overrides ov = {true, true, true};
	itr_price_as_policy(&fixed, &ov, &slow_seed, &up, -1.0, &out);
	assert_int_equal(out.gateways, 7);
	assert_int_equal(out.max_external, 5);
}

static struct itr_netmap *parse(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "t.netmap", &err);
	if (!m)
		fail_msg("parse: %s", err.reason);
	return m;
}

static struct itr_price *new_controller(void)
{
	struct itr_price_config cfg;
	itr_price_config_default(&cfg);
	cfg.publish_costs = false;
	struct itr_price *pc = itr_price_new(&cfg);
	assert_non_null(pc);
	return pc;
}

/* The default policy for an AS with no view, at a given uplink price. */
static void policy_at(const struct itr_netmap *m, uint32_t asn, double price,
                      struct itr_rank_policy *out)
{
	struct itr_rank_policy base;
	itr_rank_policy_default(&base);
	struct itr_price_as_view none = {0};
	struct itr_price_overrides ov = {0};
	itr_price_as_policy(&base, &ov, &none, itr_netmap_link_find(m, asn, 0), price, out);
}

/* What an announce's policy is built from (the prices the tick
 * published, read without the controller's lock) is the link's price. */
static void assert_policy_at_price(struct itr_price *pc, const struct itr_netmap *m, uint32_t asn,
                                   double price)
{
	struct itr_rank_policy got, want;
	itr_rank_policy_default(&got);
	itr_price_policy_from_view(pc, m, asn, NULL, &got);
	policy_at(m, asn, price, &want);
	assert_memory_equal(&got, &want, sizeof(got));
}

/* The running controller on matrices: a 10 Mbit/s flow from b into a is
 * a's uplink traffic; traffic between b and c (no link declared for either)
 * is priced nowhere; the price climbs. */
static void test_controller_matrix(void **state)
{
	(void)state;
	struct itr_netmap *m = parse(PRICE_MAP);
	struct itr_price *pc = new_controller();
	struct itr_matrix_entry e[2] = {{2, 1, 0, 0}, {2, 3, 0, 0}};
	double t = 0;
	for (int i = 0; i <= 10; i++, t += 2) {
		itr_price_tick_matrix(pc, m, t, e, 2);
		e[0].bytes += 10000000 / 8 * 2; /* 10 Mbit/s for 2 s */
		e[1].bytes += 50000000 / 8 * 2;
	}
	double rate = itr_price_link_rate(pc, "a-up");
	assert_true(fabs(rate - 10e6) < 0.5e6);
	assert_true(itr_price_link_price(pc, "a-up") > 0.5);
	assert_true(isnan(itr_price_link_price(pc, "b-up")));
	assert_policy_at_price(pc, m, 64500, itr_price_link_price(pc, "a-up"));
	/* a policy at price 0 differs, so the check above can tell */
	struct itr_rank_policy at_zero, at_price;
	policy_at(m, 64500, 0, &at_zero);
	policy_at(m, 64500, itr_price_link_price(pc, "a-up"), &at_price);
	assert_memory_not_equal(&at_zero, &at_price, sizeof(at_zero));
	json_t *st = itr_price_status_json(pc);
	assert_int_equal(json_array_size(json_object_get(st, "links")), 1);
	json_decref(st);
	itr_price_free(pc);
	itr_netmap_unref(m);
}

/* A link missing from the map: its traffic is not priced, nothing breaks;
 * a reload that drops a link forgets its state, one that adds it starts it
 * at price 0. */
static void test_link_missing_from_map(void **state)
{
	(void)state;
	struct itr_netmap *with = parse(PRICE_MAP);
	struct itr_netmap *without = parse("pid a id 1 asn 64500\nprefix a 10.10.0.0/16\n"
	                                   "pid b id 2 asn 64501\nprefix b 10.11.0.0/16\n");
	struct itr_price *pc = new_controller();
	struct itr_matrix_entry e = {2, 1, 0, 0};
	double t = 0;
	for (int i = 0; i < 8; i++, t += 2) {
		itr_price_tick_matrix(pc, without, t, &e, 1);
		e.bytes += 20000000 / 8 * 2;
	}
	assert_true(isnan(itr_price_link_price(pc, "a-up")));
	json_t *st = itr_price_status_json(pc);
	assert_int_equal(json_array_size(json_object_get(st, "links")), 0);
	json_decref(st);
	/* the link arrives with a reload: it starts at the initial price and
	 * is measured from its first full period (no jump from counts it never
	 * saw) */
	itr_price_tick_matrix(pc, with, t, &e, 1);
	struct itr_price_params defaults;
	itr_price_params_default(&defaults);
	assert_true(itr_price_link_price(pc, "a-up") == defaults.initial_price);
	for (int i = 0; i < 8; i++) {
		t += 2;
		e.bytes += 20000000 / 8 * 2;
		itr_price_tick_matrix(pc, with, t, &e, 1);
	}
	assert_true(fabs(itr_price_link_rate(pc, "a-up") - 20e6) < 2e6);
	assert_true(itr_price_link_price(pc, "a-up") > 0.3);
	assert_policy_at_price(pc, with, 64500, itr_price_link_price(pc, "a-up"));
	/* and leaves with the next */
	itr_price_tick_matrix(pc, without, t + 2, &e, 1);
	assert_true(isnan(itr_price_link_price(pc, "a-up")));
	assert_policy_at_price(pc, without, 64500, 0);
	/* a matrix that went back (map re-created) gives no sample */
	itr_price_tick_matrix(pc, with, t + 4, &e, 1);
	e.bytes = 0;
	itr_price_tick_matrix(pc, with, t + 6, &e, 1);
	assert_true(itr_price_link_rate(pc, "a-up") < 1);
	itr_price_free(pc);
	itr_netmap_unref(with);
	itr_netmap_unref(without);
}

static struct itr_peer_addr peer4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct itr_peer_addr p;
	memset(&p, 0, sizeof(p));
	p.family = 4;
	p.addr[0] = a;
	p.addr[1] = b;
	p.addr[2] = c;
	p.addr[3] = d;
	p.port = 6881;
	return p;
}

/* The tracker tells the controller every stored announce and asks it for
 * each list: with an uplink declared (capacity 4 x the hosts' upload) an
 * AS without a seed that is behind gets 4 gateways, which is what the lists
 * show; a peer the store refuses (per-source limit) is not counted; a
 * stopped peer leaves. */
static uint32_t tracker_now = 1000;
static uint32_t tracker_clock(void *arg)
{
	(void)arg;
	return tracker_now;
}

static void test_tracker_integration(void **state)
{
	(void)state;
	itr_netmap_publish(parse(PRICE_MAP));
	struct itr_price *pc = new_controller();
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.clock = tracker_clock;
	cfg.price = pc;
	cfg.max_peers_per_source = 1; /* one peer per address and swarm */
	char err[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	assert_non_null(tr);
	uint8_t ih[20] = {7};
	struct itr_ranked_peer out[64];
	struct itr_announce_reply reply;
	for (uint8_t i = 0; i < 8; i++) {
		struct itr_announce ann = {.peer = peer4(10, 10, 0, (uint8_t)(10 + i)),
		                           .left = 1000,
		                           .event = ITR_EVENT_STARTED,
		                           .numwant = 50};
		memcpy(ann.info_hash, ih, 20);
		assert_int_equal(itr_tracker_announce(tr, &ann, &reply, out, 64), 0);
	}
	for (uint8_t i = 0; i < 4; i++) {
		struct itr_announce ann = {.peer = peer4(10, 11, 0, (uint8_t)(10 + i)),
		                           .left = 0,
		                           .downloaded = 1000,
		                           .event = ITR_EVENT_STARTED,
		                           .numwant = 50};
		memcpy(ann.info_hash, ih, 20);
		assert_int_equal(itr_tracker_announce(tr, &ann, &reply, out, 64), 0);
	}
	/* a second port on a known address: the per-source limit refuses it */
	struct itr_announce extra = {
	    .peer = peer4(10, 10, 0, 10), .left = 1000, .event = ITR_EVENT_STARTED, .numwant = 0};
	extra.peer.port = 7000;
	memcpy(extra.info_hash, ih, 20);
	assert_int_equal(itr_tracker_announce(tr, &extra, &reply, out, 64), 0);
	assert_int_not_equal(reply.stored, ITR_SWARM_STORED);

	struct itr_announce probe = {.peer = peer4(10, 10, 0, 10), .left = 1000, .numwant = 50};
	memcpy(probe.info_hash, ih, 20);
	struct itr_netmap *map = itr_netmap_current();
	struct itr_rank_policy pol;
	itr_tracker_policy(tr, map, &probe, &pol);
	assert_int_equal(pol.gateways, 4);
	assert_int_equal(pol.max_external, 3);
	itr_netmap_unref(map);

	struct itr_announce stop = probe;
	stop.event = ITR_EVENT_STOPPED;
	assert_int_equal(itr_tracker_announce(tr, &stop, &reply, out, 64), 0);
	itr_price_tick_matrix(pc, NULL, tracker_now + 2, NULL, 0);
	json_t *st = itr_price_status_json(pc);
	json_t *ases = json_object_get(st, "ases");
	assert_int_equal(json_array_size(ases), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ases, 0), "peers")), 7);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ases, 1), "seeds")), 4);
	json_decref(st);
	itr_tracker_free(tr);
	itr_price_free(pc);
	itr_netmap_publish(NULL);
}

/* A tracker on the published PRICE_MAP with the controller (its clock is
 * tracker_now). */
static struct itr_tracker *tracker_with(struct itr_price *pc)
{
	struct itr_tracker_config cfg;
	itr_tracker_config_default(&cfg);
	cfg.clock = tracker_clock;
	cfg.price = pc;
	char err[256];
	struct itr_tracker *tr = itr_tracker_new(&cfg, NULL, err, sizeof(err));
	assert_non_null(tr);
	return tr;
}

/* A tracker whose policy comes from a controller, on PRICE_MAP published
 * as the current map; priced_tracker_free undoes all three. */
static struct itr_tracker *priced_tracker(struct itr_price **pc)
{
	itr_netmap_publish(parse(PRICE_MAP));
	*pc = new_controller();
	return tracker_with(*pc);
}

static void priced_tracker_free(struct itr_tracker *tr, struct itr_price *pc)
{
	itr_tracker_free(tr);
	itr_price_free(pc);
	itr_netmap_publish(NULL);
}

static void announce_peer(struct itr_tracker *tr, const uint8_t *ih, struct itr_peer_addr p,
                          uint64_t left, uint64_t downloaded, enum itr_event event)
{
	struct itr_announce ann = {
	    .peer = p, .left = left, .downloaded = downloaded, .event = event, .numwant = 0};
	memcpy(ann.info_hash, ih, 20);
	struct itr_announce_reply reply;
	struct itr_ranked_peer out[4];
	assert_int_equal(itr_tracker_announce(tr, &ann, &reply, out, 4), 0);
	if (event != ITR_EVENT_STOPPED)
		assert_int_equal(reply.stored, ITR_SWARM_STORED);
}

static void policy_of(struct itr_tracker *tr, const uint8_t *ih, struct itr_peer_addr p,
                      struct itr_rank_policy *pol)
{
	struct itr_announce probe = {.peer = p, .left = 1000, .numwant = 50};
	memcpy(probe.info_hash, ih, 20);
	struct itr_netmap *map = itr_netmap_current();
	itr_tracker_policy(tr, map, &probe, pol);
	itr_netmap_unref(map);
}

/* In a tracker: two peers of AS 64500 (1 Mbit/s each on a 4 Mbit/s link)
 * cannot feed themselves, so a client there gets every outside peer, its
 * own AS's peer first; a client of AS 64502 (no link declared) gets the
 * base policy's cap. */
static void test_tracker_small_as_open(void **state)
{
	(void)state;
	struct itr_price *pc;
	struct itr_tracker *tr = priced_tracker(&pc);
	uint8_t ih[20] = {9};
	announce_peer(tr, ih, peer4(10, 10, 0, 10), 1000, 0, ITR_EVENT_STARTED);
	for (uint8_t i = 0; i < 6; i++)
		announce_peer(tr, ih, peer4(10, 12, 0, (uint8_t)(10 + i)), 1000, 0,
		              ITR_EVENT_STARTED);

	struct itr_announce ann = {
	    .peer = peer4(10, 10, 0, 11), .left = 1000, .event = ITR_EVENT_STARTED, .numwant = 50};
	memcpy(ann.info_hash, ih, 20);
	struct itr_announce_reply reply;
	struct itr_ranked_peer out[64];
	assert_int_equal(itr_tracker_announce(tr, &ann, &reply, out, 64), 0);
	assert_int_equal(reply.npeers, 7);
	assert_memory_equal(out[0].peer.addr, peer4(10, 10, 0, 10).addr, 4);
	struct itr_rank_policy pol;
	policy_of(tr, ih, peer4(10, 10, 0, 11), &pol);
	assert_int_equal(pol.max_external, ITR_RANK_UNCAPPED);
	assert_int_equal(pol.gateways, 0);
	/* operators see why: the AS has no seed and too few peers */
	struct itr_netmap *m = parse(PRICE_MAP);
	itr_price_tick_matrix(pc, m, 1, NULL, 0);
	json_t *st = itr_price_status_json(pc);
	json_t *as = json_array_get(json_object_get(st, "ases"), 0);
	assert_int_equal(json_integer_value(json_object_get(as, "asn")), 64500);
	assert_int_equal(json_integer_value(json_object_get(as, "open_no_seed_swarms")), 1);
	assert_int_equal(json_integer_value(json_object_get(as, "open_slow_seeds_swarms")), 0);
	json_decref(st);
	itr_netmap_unref(m);

	/* the other side, with no link declared, keeps the base cap */
	struct itr_rank_policy base;
	itr_rank_policy_default(&base);
	policy_of(tr, ih, peer4(10, 12, 0, 20), &pol);
	assert_int_equal(pol.max_external, base.max_external);
	priced_tracker_free(tr, pc);
}

/* The tracker's view carries the swarm's seeds: AS a (hosts of 1 Mbit/s
 * under a 4 Mbit/s link) with one seed and five leechers is open while AS
 * b holds a seed too, and capped once a's seed is the swarm's only one. */
static void test_tracker_seed_starved_open(void **state)
{
	(void)state;
	struct itr_price *pc;
	struct itr_tracker *tr = priced_tracker(&pc);
	uint8_t ih[20] = {10};
	announce_peer(tr, ih, peer4(10, 10, 0, 10), 0, 1000, ITR_EVENT_COMPLETED);
	for (uint8_t i = 0; i < 5; i++)
		announce_peer(tr, ih, peer4(10, 10, 0, (uint8_t)(20 + i)), 1000, 0,
		              ITR_EVENT_STARTED);
	announce_peer(tr, ih, peer4(10, 11, 0, 10), 0, 1000, ITR_EVENT_COMPLETED);

	struct itr_rank_policy pol;
	policy_of(tr, ih, peer4(10, 10, 0, 20), &pol);
	assert_int_equal(pol.max_external, ITR_RANK_UNCAPPED);
	assert_int_equal(pol.gateways, 0);
	/* operators see it: the AS is open in one swarm, b in none */
	struct itr_netmap *m = parse(PRICE_MAP);
	itr_price_tick_matrix(pc, m, 1, NULL, 0);
	json_t *st = itr_price_status_json(pc);
	json_t *ases = json_object_get(st, "ases");
	assert_int_equal(json_array_size(ases), 2);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(ases, 0), "open_swarms")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(ases, 1), "open_swarms")), 0);
	/* and why: its seeds are too slow, not that it has none */
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(ases, 0), "open_slow_seeds_swarms")),
	    1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(ases, 0), "open_no_seed_swarms")), 0);
	json_decref(st);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(itr_price_metrics(pc, f), 0);
	fclose(f);
	assert_non_null(strstr(
	    buf, "itracker_as_open_swarms_by_reason{asn=\"64500\",reason=\"slow_seeds\"} 1\n"));
	assert_non_null(
	    strstr(buf, "itracker_as_open_swarms_by_reason{asn=\"64500\",reason=\"no_seed\"} 0\n"));
	free(buf);

	announce_peer(tr, ih, peer4(10, 11, 0, 10), 0, 1000, ITR_EVENT_STOPPED);
	policy_of(tr, ih, peer4(10, 10, 0, 20), &pol);
	assert_int_not_equal(pol.max_external, ITR_RANK_UNCAPPED);
	assert_int_not_equal(pol.gateways, 0);
	priced_tracker_free(tr, pc);
	itr_netmap_unref(m);
}

/* Swarm state from announces (the tracker's store tallies it; the
 * controller keeps none): an AS without a seed that is behind gets its
 * uplink's gateway count (capacity / host upload = 4); once a peer of it
 * completes, its one seed (1 of the budget's 2 Mbit/s) cannot feed it while
 * AS b holds a seed too, so it is open; a stopped peer leaves; status counts peers and seeds
 * per AS; peers silent past the expiry are gone from the counts. */
static void test_swarm_state(void **state)
{
	(void)state;
	struct itr_netmap *m = parse(PRICE_MAP);
	struct itr_price *pc;
	struct itr_tracker *tr = priced_tracker(&pc);
	uint8_t ih[20] = {1, 2, 3};
	tracker_now = 100;
	uint32_t now = tracker_now;
	for (uint8_t i = 0; i < 10; i++)
		announce_peer(tr, ih, peer4(10, 10, 0, (uint8_t)(10 + i)), 1000, 0,
		              ITR_EVENT_STARTED);
	for (uint8_t i = 0; i < 5; i++)
		announce_peer(tr, ih, peer4(10, 11, 0, (uint8_t)(10 + i)), i ? 100 : 0, 900,
		              ITR_EVENT_STARTED);
	struct itr_rank_policy pol;
	policy_of(tr, ih, peer4(10, 10, 0, 10), &pol);
	assert_int_equal(pol.gateways, 4);
	assert_int_equal(pol.max_external, 3);
	policy_of(tr, ih, peer4(10, 11, 0, 10), &pol);
	assert_int_equal(pol.gateways, 1); /* a seed, no uplink declared */

	struct itr_peer_addr first = peer4(10, 10, 0, 10);
	tracker_now = now + 2;
	announce_peer(tr, ih, first, 0, 1000, ITR_EVENT_COMPLETED);
	policy_of(tr, ih, peer4(10, 10, 0, 11), &pol);
	assert_int_equal(pol.gateways, 0);
	assert_int_equal(pol.max_external, ITR_RANK_UNCAPPED);
	tracker_now = now + 3;
	announce_peer(tr, ih, first, 0, 1000, ITR_EVENT_STOPPED);

	itr_price_tick_matrix(pc, m, now + 4, NULL, 0);
	json_t *st = itr_price_status_json(pc);
	json_t *ases = json_object_get(st, "ases");
	assert_int_equal(json_array_size(ases), 2);
	json_t *a = json_array_get(ases, 0);
	assert_int_equal(json_integer_value(json_object_get(a, "asn")), 64500);
	assert_int_equal(json_integer_value(json_object_get(a, "peers")), 9);
	assert_int_equal(json_integer_value(json_object_get(a, "seeds")), 0);
	assert_int_equal(json_integer_value(json_object_get(a, "gateways")), 4);
	json_t *b = json_array_get(ases, 1);
	assert_int_equal(json_integer_value(json_object_get(b, "seeds")), 1);
	json_decref(st);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(itr_price_metrics(pc, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "itracker_as_peers{asn=\"64500\"} 9\n"));
	assert_non_null(strstr(buf,
	                       "itracker_link_budget_bits_per_second{link=\"a-up\",asn=\"64500\","
	                       "peer_asn=\"uplink\"} 2000000\n"));
	free(buf);

	/* peers silent past the expiry are dropped, and then the swarm */
	tracker_now = now + 4000;
	itr_price_tick_matrix(pc, m, now + 4000, NULL, 0);
	st = itr_price_status_json(pc);
	assert_int_equal(json_array_size(json_object_get(st, "ases")), 0);
	json_decref(st);
	priced_tracker_free(tr, pc);
	itr_netmap_unref(m);
}

/* Many peers: every peer counted once, seeds and stops followed. */
static void test_swarm_growth(void **state)
{
	(void)state;
	struct itr_netmap *m = parse(PRICE_MAP);
	struct itr_price *pc;
	struct itr_tracker *tr = priced_tracker(&pc);
	uint8_t ih[20] = {9};
	tracker_now = 50;
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 3000; i++)
			announce_peer(tr, ih, peer4(10, 10, (uint8_t)(i >> 8), (uint8_t)i),
			              i % 3 ? 10 : 0, 0, ITR_EVENT_NONE);
	tracker_now = 51;
	for (int i = 0; i < 1000; i++)
		announce_peer(tr, ih, peer4(10, 10, (uint8_t)(i >> 8), (uint8_t)i), 0, 0,
		              ITR_EVENT_STOPPED);
	itr_price_tick_matrix(pc, m, 52, NULL, 0);
	json_t *st = itr_price_status_json(pc);
	json_t *a = json_array_get(json_object_get(st, "ases"), 0);
	assert_int_equal(json_integer_value(json_object_get(a, "peers")), 2000);
	/* seeds: i % 3 == 0 among 1000..2999: 1002 .. 2997 */
	assert_int_equal(json_integer_value(json_object_get(a, "seeds")), 666);
	json_decref(st);
	priced_tracker_free(tr, pc);
	itr_netmap_unref(m);
}

/* The per-AS view of a big swarm is cached for the second it was tallied
 * in: a second query in that second gets the cached view (here still 300
 * leechers, enough to feed the AS, though 299 left meanwhile), and the
 * next second's query tallies again (1 leecher: too few, so the AS is
 * open). */
static void test_view_cached_for_its_second(void **state)
{
	(void)state;
	struct itr_price *pc;
	struct itr_tracker *tr = priced_tracker(&pc);
	uint8_t ih[20] = {7};
	tracker_now = 70;
	for (int i = 1; i <= 300; i++)
		announce_peer(tr, ih, peer4(10, 10, (uint8_t)(i >> 8), (uint8_t)i), 1000, 0,
		              ITR_EVENT_STARTED);
	struct itr_peer_addr client = peer4(10, 10, 9, 9);
	struct itr_rank_policy first, cached, next;
	policy_of(tr, ih, client, &first);
	assert_int_not_equal(first.max_external, ITR_RANK_UNCAPPED);
	for (int i = 2; i <= 300; i++)
		announce_peer(tr, ih, peer4(10, 10, (uint8_t)(i >> 8), (uint8_t)i), 1000, 0,
		              ITR_EVENT_STOPPED);
	policy_of(tr, ih, client, &cached);
	assert_memory_equal(&first, &cached, sizeof(first));
	tracker_now = 71;
	policy_of(tr, ih, client, &next);
	assert_int_equal(next.max_external, ITR_RANK_UNCAPPED);
	priced_tracker_free(tr, pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_step_response),
	    cmocka_unit_test(test_ramp_from_initial_price),
	    cmocka_unit_test(test_no_oscillation),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_deadband),
	    cmocka_unit_test(test_cost_steps),
	    cmocka_unit_test(test_as_policy),
	    cmocka_unit_test(test_as_policy_small_as),
	    cmocka_unit_test(test_as_policy_seed_starved),
	    cmocka_unit_test(test_tracker_small_as_open),
	    cmocka_unit_test(test_tracker_seed_starved_open),
	    cmocka_unit_test(test_controller_matrix),
	    cmocka_unit_test(test_link_missing_from_map),
	    cmocka_unit_test(test_swarm_state),
	    cmocka_unit_test(test_swarm_growth),
	    cmocka_unit_test(test_view_cached_for_its_second),
	    cmocka_unit_test(test_tracker_integration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
