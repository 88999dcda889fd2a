/* test_source_ledger.c - the per-source quotas of a shared store
 * (source_ledger.h): ports per source and torrent, torrents per source
 * through the tracker's source table, stopped announces and expiry giving
 * both back, the sweep that lowers counts nobody touches again, and the
 * bounded table forgetting the least recently seen pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "quota.h"
#include "source_ledger.h"

static struct itr_peer_addr at(const char *text)
{
	struct itr_peer_addr a;
	assert_int_equal(itr_peer_addr_parse(text, &a), 0);
	return a;
}

static void torrent(uint8_t ih[ITR_INFO_HASH_LEN], int n)
{
	memset(ih, 0, ITR_INFO_HASH_LEN);
	ih[0] = (uint8_t)n;
	ih[19] = (uint8_t)(n >> 8);
}

static void test_ports_per_torrent(void **state)
{
	(void)state;
	struct itr_source_ledger_config cfg = {.max_ports = 2, .expiry = 100, .pairs = 64};
	struct itr_source_ledger *l = itr_source_ledger_new(&cfg, NULL);
	assert_non_null(l);
	uint8_t t1[20], t2[20];
	torrent(t1, 1);
	torrent(t2, 2);
	struct itr_peer_addr a1 = at("10.0.0.1:1"), a2 = at("10.0.0.1:2"), a3 = at("10.0.0.1:3"),
	                     b1 = at("10.0.0.2:1"), v6 = at("[fd00::1]:3");
	assert_int_equal(itr_source_ledger_announce(l, t1, &a1, false, 1000), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &a2, false, 1000), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &a3, false, 1001),
	                 ITR_REFUSED_SOURCE_PEERS);
	/* a re-announce is no new peer; other torrents, addresses and
	 * families count on their own */
	assert_int_equal(itr_source_ledger_announce(l, t1, &a1, false, 1050), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t2, &a3, false, 1001), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &b1, false, 1001), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &v6, false, 1001), ITR_REFUSED_NONE);
	/* stopped gives the port back */
	assert_int_equal(itr_source_ledger_announce(l, t1, &a2, true, 1002), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &a3, false, 1002), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &a2, false, 1002),
	                 ITR_REFUSED_SOURCE_PEERS);
	/* expiry too: a3 (1002) has gone at 1103, a1 (1050) has not */
	assert_int_equal(itr_source_ledger_announce(l, t1, &a2, false, 1103), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t1, &a3, false, 1103),
	                 ITR_REFUSED_SOURCE_PEERS);
	itr_source_ledger_free(l);
	/* more ports than an entry can hold: refused at creation */
	cfg.max_ports = ITR_LEDGER_MAX_PORTS + 1;
	assert_null(itr_source_ledger_new(&cfg, NULL));
}

static void test_torrents_per_source(void **state)
{
	(void)state;
	struct itr_quota_config qc = {.torrents = 3, .sources = 64};
	struct itr_quota *q = itr_quota_new(&qc);
	struct itr_source_ledger_config cfg = {.max_ports = 16, .expiry = 100, .pairs = 64};
	struct itr_source_ledger *l = itr_source_ledger_new(&cfg, q);
	assert_non_null(l);
	struct itr_peer_addr a = at("10.0.0.1:1"), a9 = at("10.0.0.1:9"), b = at("10.0.0.2:1");
	uint8_t t[6][20];
	for (int i = 0; i < 6; i++)
		torrent(t[i], i);
	for (int i = 0; i < 3; i++)
		assert_int_equal(itr_source_ledger_announce(l, t[i], &a, false, 1000),
		                 ITR_REFUSED_NONE);
	assert_int_equal(itr_quota_swarms(q, &a), 3);
	assert_int_equal(itr_source_ledger_announce(l, t[3], &a, false, 1000),
	                 ITR_REFUSED_SOURCE_TORRENTS);
	/* another port in a torrent it is in already is no new torrent */
	assert_int_equal(itr_source_ledger_announce(l, t[0], &a9, false, 1000), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t[3], &b, false, 1000), ITR_REFUSED_NONE);
	/* it leaves t0 with its last port: room for t3 */
	assert_int_equal(itr_source_ledger_announce(l, t[0], &a, true, 1001), ITR_REFUSED_NONE);
	assert_int_equal(itr_source_ledger_announce(l, t[3], &a, false, 1001),
	                 ITR_REFUSED_SOURCE_TORRENTS);
	assert_int_equal(itr_source_ledger_announce(l, t[0], &a9, true, 1001), ITR_REFUSED_NONE);
	assert_int_equal(itr_quota_swarms(q, &a), 2);
	assert_int_equal(itr_source_ledger_announce(l, t[3], &a, false, 1001), ITR_REFUSED_NONE);
	/* nobody announces a's torrents again: once they expire, the sweep
	 * lowers its count although a never comes back */
	assert_int_equal(itr_quota_swarms(q, &a), 3);
	assert_int_equal(itr_source_ledger_announce(l, t[5], &b, false, 1200), ITR_REFUSED_NONE);
	assert_int_equal(itr_quota_swarms(q, &a), 0);
	itr_source_ledger_free(l);
	itr_quota_free(q);
}

static void test_bounded_table(void **state)
{
	(void)state;
	struct itr_quota_config qc = {.sources = 64};
	struct itr_quota *q = itr_quota_new(&qc);
	/* one set of 8 pairs */
	struct itr_source_ledger_config cfg = {.max_ports = 1, .expiry = 100, .pairs = 8};
	struct itr_source_ledger *l = itr_source_ledger_new(&cfg, q);
	struct itr_peer_addr a = at("10.0.0.1:1");
	uint8_t t[20];
	for (int i = 0; i < 9; i++) {
		torrent(t, i);
		assert_int_equal(itr_source_ledger_announce(l, t, &a, false, 1000 + (uint32_t)i),
		                 ITR_REFUSED_NONE);
	}
	struct itr_source_ledger_stats st;
	itr_source_ledger_stats(l, &st);
	assert_int_equal(st.capacity, 8);
	assert_int_equal(st.pairs, 8);
	assert_int_equal(st.evicted, 1);
	/* the forgotten pair (the first, least recently seen) left the count */
	assert_int_equal(itr_quota_swarms(q, &a), 8);
	itr_source_ledger_free(l);
	itr_quota_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ports_per_torrent),
	    cmocka_unit_test(test_torrents_per_source),
	    cmocka_unit_test(test_bounded_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
