/* test_price_cluster.c - the inter-AS rates summed over instances
 * (price_cluster.h): the record's encoding and parsing, sums over several
 * instances' records, refusals of damaged records; the controller's rate
 * source seam (the price follows the combined rate, the local rate when the
 * source fails); and the aging on a real one-node Redis Cluster
 * (redis-server started here on a loopback port): two instances see each
 * other's rates, and once one stops, its rate leaves the other's sum within
 * the records' TTL and its id leaves the member set.
 */
#include <errno.h>
#include <hiredis.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "netmap.h"
#include "price.h"
#include "price_cluster.h"
#include "redis_cluster.h"
#include "unit/redis_server.h"

static const char *const names[] = {"a-up", "b-up", "a-b"};
#define NLINKS 3

static void test_record_roundtrip(void **state)
{
	(void)state;
	double local[NLINKS] = {10e6, -1, 0};
	char buf[512];
	size_t len = itr_price_cluster_encode(buf, sizeof(buf), names, local, NLINKS, 2.0);
	/* 10 Mbit/s over 2 s is 2.5 MB; an unmeasured link is left out */
	assert_string_equal(buf, "itr-rates 1\na-up 2500000 2000\na-b 0 2000\n");
	assert_int_equal(len, strlen(buf));
	double total[NLINKS] = {-1, -1, -1};
	unsigned contributors[NLINKS] = {0};
	assert_int_equal(itr_price_cluster_add(buf, len, names, NLINKS, total, contributors), 0);
	assert_true(fabs(total[0] - 10e6) < 1);
	assert_true(total[1] < 0);
	assert_true(total[2] == 0);
	assert_int_equal(contributors[0], 1);
	assert_int_equal(contributors[1], 0);
	assert_int_equal(contributors[2], 1);
	/* too small a buffer: nothing */
	assert_int_equal(itr_price_cluster_encode(buf, 20, names, local, NLINKS, 2.0), 0);
}

/* Three instances with different periods: their rates add per link. */
static void test_sum_over_instances(void **state)
{
	(void)state;
	const char *records[] = {
	    "itr-rates 1\na-up 250000 2000\n",                /* 1 Mbit/s */
	    "itr-rates 1\na-up 375000 1000\nb-up 125 1000\n", /* 3 Mbit/s, 1 kbit/s */
	    "itr-rates 1\na-b 5000000 4000\ngone-up 7 1\n", /* 10 Mbit/s, a link not in this map */
	};
	double total[NLINKS] = {-1, -1, -1};
	unsigned contributors[NLINKS] = {0};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(itr_price_cluster_add(records[i], strlen(records[i]), names,
		                                       NLINKS, total, contributors),
		                 0);
	assert_true(fabs(total[0] - 4e6) < 1);
	assert_true(fabs(total[1] - 1e3) < 1e-6);
	assert_true(fabs(total[2] - 10e6) < 1);
	assert_int_equal(contributors[0], 2);
	assert_int_equal(contributors[1], 1);
	assert_int_equal(contributors[2], 1);
}

static void test_damaged_records(void **state)
{
	(void)state;
	const char *bad[] = {
	    "",
	    "itr-rates 2\na-up 1 1\n",
	    "itr-rates 1\na-up 1 1",             /* no end of line */
	    "itr-rates 1\na-up 1 0\n",           /* no interval */
	    "itr-rates 1\na-up x 1\n",           /* not a number */
	    "itr-rates 1\na-up 1 1 1\n",         /* one field too many */
	    "itr-rates 1\na-up 1 1\na-up 2 1\n", /* a link twice */
	    "itr-rates 1\nb-up 1 1\n\n",         /* an empty line */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double total[NLINKS] = {-1, -1, -1};
		unsigned contributors[NLINKS] = {0};
		assert_int_equal(itr_price_cluster_add(bad[i], strlen(bad[i]), names, NLINKS, total,
		                                       contributors),
		                 -1);
		for (size_t k = 0; k < NLINKS; k++) {
			assert_true(total[k] == -1);
			assert_int_equal(contributors[k], 0);
		}
	}
	char line[300] = "itr-rates 1\n";
	memset(line + 12, 'a', 200);
	strcpy(line + 212, " 1 1\n");
	double total[NLINKS] = {-1, -1, -1};
	unsigned contributors[NLINKS] = {0};
	assert_int_equal(
	    itr_price_cluster_add(line, strlen(line), names, NLINKS, total, contributors), -1);
}

/* ---- the controller's seam -------------------------------------------------- */

/* A rate source as another instance would add to the sum: local + other. */
struct other {
	double other_bps;
	bool fail;
	unsigned calls;
	double last_local;
};

static int add_other(void *ctx, const char *const *nm, const double *local, size_t n, double dt,
                     double *total, unsigned *contributors, char *err, size_t errlen)
{
	(void)nm;
	(void)dt;
	struct other *o = ctx;
	o->calls++;
	if (o->fail) {
		snprintf(err, errlen, "cluster down");
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		o->last_local = local[k];
		total[k] = (local[k] > 0 ? local[k] : 0) + o->other_bps;
		contributors[k] = (local[k] >= 0) + 1;
	}
	return 0;
}

static const char MAP[] = "pid a id 1 asn 64500\nprefix a 10.10.0.0/16\n"
                          "pid b id 2 asn 64501\nprefix b 10.11.0.0/16\n"
                          "link a-up asn 64500 uplink capacity 20mbit budget 8mbit\n";

static void test_controller_uses_source(void **state)
{
	(void)state;
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(MAP, strlen(MAP), "t.netmap", &err);
	assert_non_null(m);
	struct itr_price_config cfg;
	itr_price_config_default(&cfg);
	cfg.publish_costs = false;
	/* two controllers on the same local traffic (4 Mbit/s, half the
	 * budget): alone, and with another gateway carrying 12 Mbit/s more */
	struct itr_price *alone = itr_price_new(&cfg), *summed = itr_price_new(&cfg);
	struct other o = {.other_bps = 12e6};
	struct itr_price_rate_source src = {.combine = add_other, .ctx = &o, .name = "test"};
	itr_price_set_rate_source(summed, &src);
	struct itr_matrix_entry e = {2, 1, 0, 0};
	double t = 0;
	for (int i = 0; i < 15; i++, t += 2) {
		itr_price_tick_matrix(alone, m, t, &e, 1);
		itr_price_tick_matrix(summed, m, t, &e, 1);
		e.bytes += 4000000 / 8 * 2;
	}
	double local, combined;
	unsigned n;
	assert_int_equal(itr_price_link_rates(summed, "a-up", &local, &combined, &n), 0);
	assert_true(fabs(local - 4e6) < 1);
	assert_true(fabs(combined - 16e6) < 1);
	assert_int_equal(n, 2);
	assert_true(fabs(o.last_local - 4e6) < 1);
	/* the price follows the sum: above budget it rises, below it falls */
	assert_true(fabs(itr_price_link_rate(summed, "a-up") - 16e6) < 0.5e6);
	assert_true(itr_price_link_price(summed, "a-up") > 0.6);
	assert_true(itr_price_link_price(alone, "a-up") < 0.3);

	json_t *st = itr_price_status_json(summed);
	assert_string_equal(json_string_value(json_object_get(st, "rate_source")), "test");
	assert_string_equal(json_string_value(json_object_get(st, "mode")), "cluster");
	json_t *l = json_array_get(json_object_get(st, "links"), 0);
	assert_true(fabs(json_real_value(json_object_get(l, "cluster_rate_bps")) - 16e6) < 1);
	assert_int_equal(json_integer_value(json_object_get(l, "cluster_instances")), 2);
	json_decref(st);
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	assert_int_equal(itr_price_metrics(summed, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "itracker_link_cluster_rate_bits_per_second{link=\"a-up\","
	                             "asn=\"64500\",peer_asn=\"uplink\"} 16000000\n"));
	assert_non_null(strstr(text, "itracker_link_cluster_instances{link=\"a-up\","
	                             "asn=\"64500\",peer_asn=\"uplink\"} 2\n"));
	free(text);

	/* the source fails: the local rate is priced, the error shown */
	o.fail = true;
	for (int i = 0; i < 15; i++, t += 2) {
		itr_price_tick_matrix(summed, m, t, &e, 1);
		e.bytes += 4000000 / 8 * 2;
	}
	assert_true(fabs(itr_price_link_rate(summed, "a-up") - 4e6) < 0.5e6);
	st = itr_price_status_json(summed);
	assert_string_equal(json_string_value(json_object_get(st, "rate_source_error")),
	                    "cluster down");
	json_decref(st);
	itr_price_free(alone);
	itr_price_free(summed);
	itr_netmap_unref(m);
}

/* ---- aging on a real cluster ------------------------------------------------ */

static void test_aging_on_cluster(void **state)
{
	(void)state;
	char seeds[32], err[256];
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%u", redis_port);
	struct itr_rc_config rcfg = {.seeds = seeds};
	struct itr_rc *rc = itr_rc_new(&rcfg, err, sizeof(err));
	assert_non_null(rc);
	/* period 0.2 s: records live the one-second minimum */
	struct itr_price_cluster *a = itr_price_cluster_new(rc, 0.2, "gw-a");
	struct itr_price_cluster *b = itr_price_cluster_new(rc, 0.2, "gw-b");
	assert_int_equal(itr_price_cluster_ttl_ms(a), 1000);
	struct itr_price_rate_source sa = itr_price_cluster_source(a),
	                             sb = itr_price_cluster_source(b);
	double la[NLINKS] = {2e6, -1, -1}, lb[NLINKS] = {3e6, 1e6, -1};
	double total[NLINKS];
	unsigned contributors[NLINKS];
	/* a first, then b: b reads a's record at once (a fresh member) */
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_true(fabs(total[0] - 2e6) < 1);
	assert_int_equal(contributors[0], 1);
	assert_int_equal(
	    sb.combine(sb.ctx, names, lb, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_true(fabs(total[0] - 5e6) < 1);
	assert_true(fabs(total[1] - 1e6) < 1);
	assert_true(total[2] < 0);
	assert_int_equal(contributors[0], 2);
	assert_int_equal(contributors[1], 1);
	assert_int_equal(contributors[2], 0);
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_true(fabs(total[0] - 5e6) < 1);
	assert_int_equal(contributors[0], 2);

	/* b stops. Within the TTL a still counts it; after it, not. */
	struct timespec half = {0, 500 * 1000 * 1000}, more = {0, 700 * 1000 * 1000};
	nanosleep(&half, NULL);
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_int_equal(contributors[0], 2);
	nanosleep(&more, NULL);
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_true(fabs(total[0] - 2e6) < 1);
	assert_int_equal(contributors[0], 1);
	assert_true(total[1] < 0);
	/* the next tick removes b's id from the member set */
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	redisReply *r = redis_cmd("SMEMBERS itr:{links}:m");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 1);
	assert_string_equal(r->element[0]->str, "gw-a");
	freeReplyObject(r);
	r = redis_cmd("PTTL itr:{links}:r:gw-a");
	assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 1000);
	freeReplyObject(r);

	/* b comes back under the same id: counted again at once */
	assert_int_equal(
	    sb.combine(sb.ctx, names, lb, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_int_equal(contributors[0], 2);
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), 0);
	assert_true(fabs(total[0] - 5e6) < 1);
	assert_int_equal(contributors[0], 2);
	itr_price_cluster_free(a);
	itr_price_cluster_free(b);
	itr_rc_free(rc);
}

/* No cluster at the address: an error, quickly, never a hang. */
static void test_cluster_down(void **state)
{
	(void)state;
	char err[256];
	struct itr_rc_config rcfg = {.seeds = "127.0.0.1:1"};
	struct itr_rc *rc = itr_rc_new(&rcfg, err, sizeof(err));
	assert_non_null(rc);
	struct itr_price_cluster *a = itr_price_cluster_new(rc, 2, NULL);
	assert_non_null(a);
	assert_int_equal(itr_price_cluster_ttl_ms(a), 6000);
	struct itr_price_rate_source sa = itr_price_cluster_source(a);
	double la[NLINKS] = {2e6, -1, -1}, total[NLINKS];
	unsigned contributors[NLINKS];
	assert_int_equal(
	    sa.combine(sa.ctx, names, la, NLINKS, 1.0, total, contributors, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	itr_price_cluster_free(a);
	itr_rc_free(rc);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_record_roundtrip), cmocka_unit_test(test_sum_over_instances),
	    cmocka_unit_test(test_damaged_records),  cmocka_unit_test(test_controller_uses_source),
	    cmocka_unit_test(test_cluster_down),
	};
	const struct CMUnitTest cluster[] = {
	    cmocka_unit_test(test_aging_on_cluster),
	};
	int failed = cmocka_run_group_tests_name("price_cluster", pure, NULL, NULL);
	failed +=
	    cmocka_run_group_tests_name("price_cluster_redis", cluster, start_redis, stop_redis);
	return failed;
}
