/* test_quota.c - the per-source table: token buckets refill by the clock,
 * swarm counts with their limit, a bounded table that forgets the least
 * recently seen source first, keeping those that hold swarms, and a sweep
 * that forgets idle sources and gives their pages back to the system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "quota.h"

static struct itr_peer_addr src(uint32_t n)
{
	struct itr_peer_addr a = {.family = 4, .port = 1};
	a.addr[0] = 10;
	a.addr[1] = (uint8_t)(n >> 16);
	a.addr[2] = (uint8_t)(n >> 8);
	a.addr[3] = (uint8_t)n;
	return a;
}

static void test_bucket(void **state)
{
	(void)state;
	struct itr_quota_config cfg = {.rate = 1000, .burst = 5, .sources = 64};
	struct itr_quota *q = itr_quota_new(&cfg);
	assert_non_null(q);
	struct itr_peer_addr a = src(1), b = src(2);
	for (int i = 0; i < 5; i++)
		assert_true(itr_quota_take(q, &a, 1000));
	assert_false(itr_quota_take(q, &a, 1000));
	assert_true(itr_quota_take(q, &b, 1000)); /* a bucket per source */
	assert_true(itr_quota_take(q, &a, 1001)); /* 1000/s: one per ms */
	assert_false(itr_quota_take(q, &a, 1001));
	for (int i = 0; i < 5; i++) /* a long pause refills to the burst, no more */
		assert_true(itr_quota_take(q, &a, 90000));
	assert_false(itr_quota_take(q, &a, 90000));
	/* the port does not matter, the family does */
	a.port = 2;
	assert_false(itr_quota_take(q, &a, 90000));
	struct itr_peer_addr v6 = {.family = 6, .port = 1};
	memcpy(v6.addr, a.addr, 4);
	assert_true(itr_quota_take(q, &v6, 90000));
	itr_quota_free(q);

	cfg.rate = 0; /* no limit */
	q = itr_quota_new(&cfg);
	for (int i = 0; i < 1000; i++)
		assert_true(itr_quota_take(q, &a, 1));
	itr_quota_free(q);
}

static void test_swarm_counts(void **state)
{
	(void)state;
	struct itr_quota_config cfg = {.torrents = 3, .sources = 64};
	struct itr_quota *q = itr_quota_new(&cfg);
	struct itr_peer_addr a = src(1);
	for (int i = 0; i < 3; i++)
		assert_true(itr_quota_enter_swarm(q, &a));
	assert_false(itr_quota_enter_swarm(q, &a));
	assert_int_equal(itr_quota_swarms(q, &a), 3);
	itr_quota_leave_swarm(q, &a);
	assert_true(itr_quota_enter_swarm(q, &a));
	for (int i = 0; i < 10; i++) /* never below zero */
		itr_quota_leave_swarm(q, &a);
	assert_int_equal(itr_quota_swarms(q, &a), 0);
	itr_quota_free(q);
}

/* 100k sources through a 64-entry table: memory stays bounded; sources
 * that hold swarms outlive those that only announced. */
static void test_bounded_table(void **state)
{
	(void)state;
	struct itr_quota_config cfg = {.rate = 10, .burst = 10, .torrents = 100, .sources = 64};
	struct itr_quota *q = itr_quota_new(&cfg);
	struct itr_peer_addr holder = src(7);
	assert_true(itr_quota_take(q, &holder, 1));
	assert_true(itr_quota_enter_swarm(q, &holder));
	for (uint32_t i = 100; i < 100100; i++) {
		struct itr_peer_addr a = src(i);
		assert_true(itr_quota_take(q, &a, 2 + i));
	}
	struct itr_quota_stats st;
	itr_quota_stats(q, &st);
	assert_int_equal(st.capacity, 64);
	assert_true(st.sources <= 64);
	assert_true(st.evicted >= 100000 - 64);
	assert_int_equal(itr_quota_swarms(q, &holder), 1);
	itr_quota_free(q);
}

static long rss_bytes(void)
{
	long pages = -1, rss = -1;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	if (f)
		fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

/* A source is idle once it is in no swarm and its bucket is full again:
 * the sweep forgets it (an entry made anew would be the same) and the
 * pages left without a source go back to the system. Busy sources stay
 * with their state: one whose bucket is still refilling, one in a swarm. */
static void test_sweep_returns_memory(void **state)
{
	(void)state;
	struct itr_quota_config cfg = {.rate = 10, .burst = 10, .torrents = 100, .sources = 65536};
	struct itr_quota *q = itr_quota_new(&cfg);
	long before = rss_bytes();
	for (uint32_t i = 0; i < 60000; i++) {
		struct itr_peer_addr a = src(i);
		assert_true(itr_quota_take(q, &a, 1000)); /* 9 of 10 tokens left */
	}
	struct itr_quota_stats st;
	itr_quota_stats(q, &st);
	size_t filled = st.sources;
	assert_true(filled > 50000);
	assert_true(st.resident >= 65536 * 40 * 9 / 10);
	long full = rss_bytes();
	assert_true(full - before >= 65536L * 40 * 8 / 10);

	/* 50 ms on, no bucket is full yet (one token takes 100 ms) */
	assert_int_equal(itr_quota_sweep(q, 1050), 0);
	struct itr_peer_addr holder = src(1), busy = src(2);
	assert_true(itr_quota_enter_swarm(q, &holder));
	/* a second later every bucket is full: all go but the one in a swarm
	 * and the one that just announced */
	assert_true(itr_quota_take(q, &busy, 2000));
	assert_int_equal(itr_quota_sweep(q, 2000), filled - 2);
	itr_quota_stats(q, &st);
	assert_int_equal(st.sources, 2);
	assert_true(st.resident <= 2 * 4096 * 2);
	long after = rss_bytes();
	assert_true(full - after >= 65536L * 40 * 8 / 10);
	/* lookups read no page given back: on some kernels a read makes an
	 * anonymous page resident again */
	for (uint32_t i = 200000; i < 260000; i++) {
		struct itr_peer_addr a = src(i);
		assert_int_equal(itr_quota_swarms(q, &a), 0);
	}
	assert_true(rss_bytes() - after < 64 * 1024);
	assert_int_equal(itr_quota_swarms(q, &holder), 1);
	/* the busy source kept its bucket: 9 tokens, not a fresh 10 */
	for (int i = 0; i < 9; i++)
		assert_true(itr_quota_take(q, &busy, 2000));
	assert_false(itr_quota_take(q, &busy, 2000));
	/* and the table works on: a returned page is read as free entries */
	for (uint32_t i = 100000; i < 101000; i++) {
		struct itr_peer_addr a = src(i);
		assert_true(itr_quota_take(q, &a, 3000));
	}
	itr_quota_stats(q, &st);
	assert_int_equal(st.sources, 1002);
	itr_quota_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_swarm_counts),
	    cmocka_unit_test(test_bounded_table),
	    cmocka_unit_test(test_sweep_returns_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
