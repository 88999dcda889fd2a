/* test_rank.c - CRC32-C, BEP 40 priority (vectors and masks), address
 * parsing, and itr_rank's order and policy passes on the example network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <cmocka.h>

#include "netmap.h"
#include "rank.h"

/* The example network (maps/example.netmap), inline so the test does not
 * depend on the working directory. */
static const char MAP_TEXT[] = "network-map example-networkmap\n"
                               "tier same-pid 1\n"
                               "tier same-loc 5\n"
                               "tier same-as 10\n"
                               "tier other-as 100\n"
                               "pid a-metro1 id 1 asn 64500 loc 1\n"
                               "prefix a-metro1 10.10.1.0/24 fd00:10:1::/48\n"
                               "pid a-metro2 id 2 asn 64500 loc 2\n"
                               "prefix a-metro2 10.10.2.0/24 fd00:10:2::/48\n"
                               "pid a-metro1-dc id 3 asn 64500 loc 1\n"
                               "prefix a-metro1-dc 10.10.3.0/24 fd00:10:3::/48\n"
                               "pid b-core id 10 asn 64501 loc 10\n"
                               "prefix b-core 10.20.0.0/16 fd00:20::/32\n"
                               "pid b-edge id 11 asn 64501 loc 11\n"
                               "prefix b-edge 10.20.128.0/17 fd00:20:8000::/33\n"
                               "pid c-all id 20 asn 64502 loc 20\n"
                               "prefix c-all 10.30.0.0/16 fd00:30::/32\n"
                               "cost a-metro1 a-metro2 7\n"
                               "cost a-metro2 a-metro1 7\n"
                               "cost a-metro1 b-core 50\n"
                               "cost b-core a-metro1 50\n";

static struct itr_netmap *load_map(void)
{
	struct itr_netmap_error err;
	struct itr_netmap *map = itr_netmap_parse_text(MAP_TEXT, strlen(MAP_TEXT), "test", &err);
	if (!map) {
		char buf[512];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fail_msg("map: %s", buf);
	}
	return map;
}

static struct itr_peer_addr addr(const char *text)
{
	struct itr_peer_addr p;
	if (itr_peer_addr_parse(text, &p) != 0)
		fail_msg("cannot parse %s", text);
	return p;
}

static struct itr_peer_addr v4(unsigned a, unsigned b, unsigned c, unsigned d, uint16_t port)
{
	struct itr_peer_addr p = {.family = 4, .port = port};
	p.addr[0] = (uint8_t)a;
	p.addr[1] = (uint8_t)b;
	p.addr[2] = (uint8_t)c;
	p.addr[3] = (uint8_t)d;
	return p;
}

/* ---- CRC32-C and BEP 40 --------------------------------------------- */

static void test_crc32c_check_value(void **state)
{
	(void)state;
	/* The standard check value of CRC-32C over "123456789". */
	assert_int_equal(itr_crc32c(0, "123456789", 9), 0xE3069283u);
	/* Chaining equals one pass, also across the 8-byte slicing boundary. */
	const char *text = "The quick brown fox jumps over the lazy dog";
	uint32_t whole = itr_crc32c(0, text, strlen(text));
	uint32_t part = itr_crc32c(itr_crc32c(0, text, 13), text + 13, strlen(text) - 13);
	assert_int_equal(whole, part);
	assert_int_equal(itr_crc32c(0, "", 0), 0);
}

static void test_bep40_vectors(void **state)
{
	(void)state;
	struct itr_peer_addr a = addr("123.213.32.10"), b = addr("98.76.54.32"),
	                     c = addr("123.213.32.234");
	assert_int_equal(itr_bep40_priority(&a, &b), 0xec2d7224u);
	assert_int_equal(itr_bep40_priority(&b, &a), 0xec2d7224u);
	assert_int_equal(itr_bep40_priority(&a, &c), 0x99568189u);
	assert_int_equal(itr_bep40_priority(&c, &a), 0x99568189u);
}

/* CRC32-C of the two masked addresses, lower first, built by hand. */
static uint32_t masked_crc(const uint8_t *x, const uint8_t *y, const uint8_t *mask, size_t n)
{
	uint8_t mx[16], my[16], buf[32];
	for (size_t i = 0; i < n; i++) {
		mx[i] = x[i] & mask[i];
		my[i] = y[i] & mask[i];
	}
	const uint8_t *lo = memcmp(mx, my, n) < 0 ? mx : my;
	const uint8_t *hi = lo == mx ? my : mx;
	memcpy(buf, lo, n);
	memcpy(buf + n, hi, n);
	return itr_crc32c(0, buf, 2 * n);
}

static void test_bep40_ipv4_masks(void **state)
{
	(void)state;
	static const uint8_t m16[4] = {0xff, 0xff, 0x55, 0x55};
	static const uint8_t m24[4] = {0xff, 0xff, 0xff, 0x55};
	static const uint8_t m32[4] = {0xff, 0xff, 0xff, 0xff};
	struct itr_peer_addr a = v4(10, 1, 2, 3, 0);
	struct itr_peer_addr other = v4(10, 9, 2, 3, 0);    /* shares only a /8 */
	struct itr_peer_addr same16 = v4(10, 1, 200, 7, 0); /* shares a /16 */
	struct itr_peer_addr same24 = v4(10, 1, 2, 99, 0);  /* shares a /24 */
	assert_int_equal(itr_bep40_priority(&a, &other), masked_crc(a.addr, other.addr, m16, 4));
	assert_int_equal(itr_bep40_priority(&a, &same16), masked_crc(a.addr, same16.addr, m24, 4));
	assert_int_equal(itr_bep40_priority(&a, &same24), masked_crc(a.addr, same24.addr, m32, 4));
	/* A different mask would give a different value here. */
	assert_int_not_equal(itr_bep40_priority(&a, &same24),
	                     masked_crc(a.addr, same24.addr, m24, 4));
}

static void test_bep40_ipv6_masks(void **state)
{
	(void)state;
	static const uint8_t base[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x55, 0x55,
	                                 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
	static const uint8_t m48[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x55,
	                                0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
	static const uint8_t m56[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
	struct itr_peer_addr a = addr("2001:db8:1:2233:aaaa:bbbb:cccc:dddd");
	struct itr_peer_addr far = addr("2001:db8:9:2233:aaaa:bbbb:cccc:dddd");
	struct itr_peer_addr s48 = addr("2001:db8:1:ff33:1111:bbbb:cccc:eeee");
	struct itr_peer_addr s56 = addr("2001:db8:1:22ff:1111:bbbb:cccc:eeee");
	assert_int_equal(itr_bep40_priority(&a, &far), masked_crc(a.addr, far.addr, base, 16));
	assert_int_equal(itr_bep40_priority(&a, &s48), masked_crc(a.addr, s48.addr, m48, 16));
	assert_int_equal(itr_bep40_priority(&s56, &a), masked_crc(a.addr, s56.addr, m56, 16));
	assert_int_not_equal(itr_bep40_priority(&a, &s48), masked_crc(a.addr, s48.addr, base, 16));
}

static void test_bep40_equal_addresses_hash_ports(void **state)
{
	(void)state;
	struct itr_peer_addr a = v4(10, 1, 2, 3, 6881), b = v4(10, 1, 2, 3, 51413);
	uint8_t ports[4] = {6881 >> 8, 6881 & 0xff, 51413 >> 8, 51413 & 0xff};
	assert_int_equal(itr_bep40_priority(&a, &b), itr_crc32c(0, ports, 4));
	assert_int_equal(itr_bep40_priority(&b, &a), itr_crc32c(0, ports, 4));
}

static void test_bep40_mixed_family_symmetric(void **state)
{
	(void)state;
	struct itr_peer_addr a = v4(10, 1, 2, 3, 1), b = addr("2001:db8::7");
	assert_int_equal(itr_bep40_priority(&a, &b), itr_bep40_priority(&b, &a));
}

/* ---- addresses -------------------------------------------------------- */

static void test_peer_addr_parse(void **state)
{
	(void)state;
	struct itr_peer_addr p;
	char buf[64];

	assert_int_equal(itr_peer_addr_parse("1.2.3.4", &p), 0);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.port, 0);
	assert_string_equal(itr_peer_addr_ntop(&p, buf, sizeof(buf)), "1.2.3.4");

	assert_int_equal(itr_peer_addr_parse("1.2.3.4:6881", &p), 0);
	assert_int_equal(p.port, 6881);

	assert_int_equal(itr_peer_addr_parse("[2001:db8::1]:51413", &p), 0);
	assert_int_equal(p.family, 6);
	assert_int_equal(p.port, 51413);
	assert_string_equal(itr_peer_addr_ntop(&p, buf, sizeof(buf)), "2001:db8::1");

	assert_int_equal(itr_peer_addr_parse("2001:db8::1", &p), 0);
	assert_int_equal(p.family, 6);
	assert_int_equal(p.port, 0);

	assert_int_equal(itr_peer_addr_parse("[fd00::5]", &p), 0);
	assert_int_equal(p.family, 6);

	/* IPv4-mapped IPv6 is folded to IPv4. */
	assert_int_equal(itr_peer_addr_parse("[::ffff:10.10.1.9]:80", &p), 0);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.port, 80);
	assert_string_equal(itr_peer_addr_ntop(&p, buf, sizeof(buf)), "10.10.1.9");

	static const char *const bad[] = {
	    "",          "abc",           "1.2.3",       "1.2.3.4:",
	    "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:12a", "[1.2.3.4]:5",
	    "[::1",      "[::1]x",        "[::1]:",      "::1:99999x",
	    "1.2.3.4 ",  "256.1.1.1",     ":80",         "[]:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (itr_peer_addr_parse(bad[i], &p) != -1)
			fail_msg("'%s' parsed", bad[i]);
	}
	assert_int_equal(itr_peer_addr_parse(NULL, &p), -1);
}

/* ---- ranking ---------------------------------------------------------- */

struct fixture {
	struct itr_netmap *map;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->map = load_map();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	itr_netmap_unref(f->map);
	free(f);
	return 0;
}

static const struct itr_pid *pid_of(const struct itr_netmap *map, const struct itr_peer_addr *p)
{
	return itr_netmap_lookup(map, p->family, p->addr);
}

static size_t count_asn(const struct itr_ranked_peer *r, size_t k, uint32_t asn, int want_in)
{
	size_t n = 0;
	for (size_t i = 0; i < k; i++) {
		int in = r[i].pid && r[i].pid->asn == asn;
		n += in == want_in;
	}
	return n;
}

/* Every output is in rank order: cost up, priority down. */
static void assert_rank_order(const struct itr_ranked_peer *r, size_t k)
{
	for (size_t i = 1; i < k; i++) {
		if (r[i - 1].cost > r[i].cost)
			fail_msg("cost out of order at %zu", i);
		if (r[i - 1].cost == r[i].cost && r[i - 1].priority < r[i].priority)
			fail_msg("priority out of order at %zu", i);
	}
}

static void test_rank_default_policy_locals_plus_budget(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	pol.gateways = 0; /* the per-list budget */
	pol.min_list = 11;
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	struct itr_peer_addr c[40];
	size_t n = 0;
	for (int i = 0; i < 6; i++)
		c[n++] = v4(10, 10, 1, 20 + i, 6881); /* own PID, cost 1 */
	for (int i = 0; i < 3; i++)
		c[n++] = v4(10, 10, 3, 20 + i, 6881); /* same LOC, cost 5 */
	for (int i = 0; i < 3; i++)
		c[n++] = v4(10, 10, 2, 20 + i, 6881); /* explicit cost 7 */
	for (int i = 0; i < 5; i++)
		c[n++] = v4(10, 30, 0, 20 + i, 6881); /* other AS, cost 100 */
	for (int i = 0; i < 5; i++)
		c[n++] = v4(10, 20, 1, 20 + i, 6881); /* b-core, explicit cost 50 */
	for (int i = 0; i < 5; i++)
		c[n++] = v4(192, 0, 2, 20 + i, 6881); /* no PID, cost 101 */
	struct itr_ranked_peer out[50];
	size_t k = itr_rank(f->map, &pol, &client, c, n, 50, out);

	/* All 12 locals plus max_external (2) outsiders: 14 >= min_list. */
	assert_int_equal(k, 14);
	assert_int_equal(count_asn(out, k, 64500, 1), 12);
	assert_rank_order(out, k);
	assert_int_equal(out[0].cost, 1);
	assert_int_equal(out[6].cost, 5);
	assert_int_equal(out[9].cost, 7);
	/* The cheapest outsiders are b-core's (private peering, cost 50). */
	assert_int_equal(out[12].cost, 50);
	assert_int_equal(out[13].cost, 50);
	assert_string_equal(out[12].pid->name, "b-core");
}

/* rotate_ties: a bucket of more than 64 equal costs comes in the
 * candidates' own order from the client's tie offset on, wrapping, and a
 * bucket cut short takes a window of that order, with no priority
 * computed; a smaller bucket keeps BEP 40 order. A client's list is
 * stable and another client starts elsewhere. */
static void test_rank_rotated_ties(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	pol.gateways = 0;
	pol.min_list = 0;
	pol.max_external = 3;
	pol.rotate_ties = true;
	pol.gateway_salt = 0x5eed;
	enum { OWN = 70, SAME_AS = 5, OTHER = 90 };
	struct itr_peer_addr c[OWN + SAME_AS + OTHER];
	size_t n = 0;
	for (int i = 0; i < OWN; i++)
		c[n++] = v4(10, 10, 1, 30 + i, 6881); /* own PID, cost 1: rotated, whole */
	for (int i = 0; i < SAME_AS; i++)
		c[n++] = v4(10, 10, 3, 20 + i, 6881); /* same LOC, cost 5: BEP 40 */
	for (int i = 0; i < OTHER; i++)
		c[n++] = v4(10, 30, 0, 200 - i, 6881); /* other AS, cost 100: 3 of 90 */
	struct itr_ranked_peer out[200], again[200];
	size_t starts[2];
	for (int who = 0; who < 2; who++) {
		struct itr_peer_addr client = v4(10, 10, 1, 5 + who, 6881);
		size_t k = itr_rank(f->map, &pol, &client, c, n, 200, out);
		assert_int_equal(k, OWN + SAME_AS + 3);
		size_t start = itr_rank_tie_offset(pol.gateway_salt, &client);
		starts[who] = start % OWN;
		for (size_t i = 0; i < OWN; i++) {
			assert_int_equal(out[i].cost, 1);
			assert_memory_equal(&out[i].peer, &c[(start + i) % OWN], sizeof(c[0]));
			assert_int_equal(out[i].priority, 0);
		}
		for (size_t i = OWN; i < OWN + SAME_AS; i++) {
			assert_int_equal(out[i].cost, 5);
			assert_int_equal(out[i].priority,
			                 itr_bep40_priority(&client, &out[i].peer));
			if (i > OWN)
				assert_true(out[i - 1].priority >= out[i].priority);
		}
		for (size_t i = 0; i < 3; i++) {
			assert_int_equal(out[OWN + SAME_AS + i].cost, 100);
			assert_memory_equal(&out[OWN + SAME_AS + i].peer,
			                    &c[OWN + SAME_AS + (start + i) % OTHER], sizeof(c[0]));
		}
		assert_int_equal(itr_rank(f->map, &pol, &client, c, n, 200, again), k);
		for (size_t i = 0; i < k; i++)
			assert_memory_equal(&again[i].peer, &out[i].peer, sizeof(out[i].peer));
	}
	assert_int_not_equal(starts[0], starts[1]);
}

static void test_rank_lonely_peer_gets_usable_list(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = v4(10, 30, 7, 7, 6881); /* c-all, alone in AS 64502 */
	struct itr_peer_addr c[30];
	size_t n = 0;
	for (int i = 0; i < 15; i++)
		c[n++] = v4(10, 10, 1, 20 + i, 6881);
	for (int i = 0; i < 15; i++)
		c[n++] = v4(10, 20, 1, 20 + i, 6881);
	struct itr_ranked_peer out[50];
	size_t k = itr_rank(f->map, &pol, &client, c, n, 50, out);
	assert_int_equal(k, pol.min_list);
	assert_int_equal(count_asn(out, k, 64502, 0), k);
	assert_rank_order(out, k);

	/* With fewer candidates than min_list, it gets all of them. */
	k = itr_rank(f->map, &pol, &client, c, pol.min_list - 1, 50, out);
	assert_int_equal(k, pol.min_list - 1);
}

static void test_rank_fewer_than_wanted_returns_all(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	struct itr_peer_addr c[3] = {v4(10, 30, 0, 1, 1), v4(10, 10, 2, 1, 1), v4(10, 10, 1, 1, 1)};
	struct itr_ranked_peer out[50];
	size_t k = itr_rank(f->map, &pol, &client, c, 3, 50, out);
	assert_int_equal(k, 3);
	assert_int_equal(out[0].cost, 1);
	assert_int_equal(out[1].cost, 7);
	assert_int_equal(out[2].cost, 100);
	assert_memory_equal(out[2].peer.addr, c[0].addr, 4);
	assert_int_equal(itr_rank(f->map, &pol, &client, c, 3, 0, out), 0);
	assert_int_equal(itr_rank(f->map, &pol, &client, c, 0, 5, out), 0);
}

static void test_rank_min_external_reserved(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	pol.gateways = 0; /* every list gets the reserve */
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	struct itr_peer_addr c[35];
	size_t n = 0;
	for (int i = 0; i < 30; i++)
		c[n++] = v4(10, 10, 1, 20 + i, 6881);
	for (int i = 0; i < 5; i++)
		c[n++] = v4(10, 30, 1, 20 + i, 6881);
	struct itr_ranked_peer out[10];
	size_t k = itr_rank(f->map, &pol, &client, c, n, 10, out);
	assert_int_equal(k, 10);
	/* 30 locals would fill the list; one slot stays reserved outside. */
	assert_int_equal(count_asn(out, k, 64500, 0), 1);
	assert_int_equal(out[9].cost, 100);
	assert_rank_order(out, k);

	/* min_external 0 gives the whole list to locals. */
	pol.min_external = 0;
	k = itr_rank(f->map, &pol, &client, c, n, 10, out);
	assert_int_equal(count_asn(out, k, 64500, 0), 0);
}

static void test_rank_shares_compose_with_budget(void **state)
{
	struct fixture *f = *state;
	/* P4P appTracker style: 75 % own PID, 90 % own AS, no absolute caps. */
	struct itr_rank_policy pol = {.max_own_pid_pct = 75,
	                              .max_own_as_pct = 90,
	                              .min_external = 0,
	                              .max_external = UINT_MAX,
	                              .min_list = 0};
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	struct itr_peer_addr c[60];
	size_t n = 0;
	for (int i = 0; i < 20; i++)
		c[n++] = v4(10, 10, 1, 20 + i, 6881);
	for (int i = 0; i < 20; i++)
		c[n++] = v4(10, 10, 2, 20 + i, 6881);
	for (int i = 0; i < 20; i++)
		c[n++] = v4(10, 30, 2, 20 + i, 6881);
	struct itr_ranked_peer out[8];
	const struct itr_pid *own = pid_of(f->map, &client);
	size_t k = itr_rank(f->map, &pol, &client, c, n, 8, out);
	assert_int_equal(k, 8);
	size_t own_pid = 0;
	for (size_t i = 0; i < k; i++)
		own_pid += out[i].pid == own;
	assert_int_equal(own_pid, 6);                     /* floor(75 % of 8) */
	assert_int_equal(count_asn(out, k, 64500, 1), 7); /* floor(90 % of 8) */
	assert_int_equal(count_asn(out, k, 64500, 0), 1);

	/* An absolute budget caps the outsiders below what shares leave:
	 * with max_external 0 and no top-up the list stays short. */
	pol.max_external = 0;
	k = itr_rank(f->map, &pol, &client, c, n, 8, out);
	assert_int_equal(k, 7);
	assert_int_equal(count_asn(out, k, 64500, 0), 0);

	/* min_list tops it up from the skipped candidates in rank order:
	 * the next own-PID peer (cost 1) comes before any outsider. */
	pol.min_list = 8;
	k = itr_rank(f->map, &pol, &client, c, n, 8, out);
	assert_int_equal(k, 8);
	own_pid = 0;
	for (size_t i = 0; i < k; i++)
		own_pid += out[i].pid == own;
	assert_int_equal(own_pid, 7);
	assert_rank_order(out, k);
}

static void test_rank_client_without_pid_is_plain_bep40(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = v4(192, 0, 2, 1, 6881);
	struct itr_peer_addr c[20];
	for (int i = 0; i < 10; i++)
		c[i] = v4(10, 10, 1, 20 + i, 6881);
	for (int i = 10; i < 20; i++)
		c[i] = v4(10, 30, 1, 20 + i, 6881);
	struct itr_ranked_peer out[20];
	size_t k = itr_rank(f->map, &pol, &client, c, 20, 20, out);
	assert_int_equal(k, 20);
	for (size_t i = 0; i < k; i++) {
		assert_int_equal(out[i].cost, 101); /* other-AS tier + 1 */
		assert_int_equal(out[i].priority, itr_bep40_priority(&client, &out[i].peer));
		if (i > 0 && out[i - 1].priority < out[i].priority)
			fail_msg("not BEP 40 order at %zu", i);
	}
	/* No policy: no reserved external, just the best priorities. */
	k = itr_rank(f->map, &pol, &client, c, 20, 3, out);
	assert_int_equal(k, 3);

	/* Without a map at all: the same BEP 40 order, cost 0. */
	struct itr_ranked_peer out2[20];
	k = itr_rank(NULL, &pol, &client, c, 20, 20, out2);
	assert_int_equal(k, 20);
	for (size_t i = 0; i < k; i++) {
		assert_int_equal(out2[i].cost, 0);
		assert_null(out2[i].pid);
	}
}

static void test_rank_leaves_out_client_and_duplicates(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	struct itr_peer_addr c[5] = {client, v4(10, 10, 1, 5, 6882), v4(10, 10, 1, 9, 1),
	                             v4(10, 10, 1, 9, 1), v4(10, 10, 1, 9, 2)};
	struct itr_ranked_peer out[10];
	size_t k = itr_rank(f->map, &pol, &client, c, 5, 10, out);
	assert_int_equal(k, 3);
	for (size_t i = 0; i < k; i++)
		assert_false(out[i].peer.port == 6881 &&
		             memcmp(out[i].peer.addr, client.addr, 4) == 0);
}

/* Many IPv6 candidates of one address (every BEP 15 peer behind one IPv6
 * source): each port once in the list, a repeated one left out, in BEP 40
 * order (equal addresses: the priority hashes the ports). */
static void test_rank_ipv6_one_address_many_ports(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = addr("[fd00:10:1::5]:6881");
	enum { N = 300 };
	struct itr_peer_addr c[N];
	for (int i = 0; i < N; i++) {
		c[i] = addr("[fd00:10:1::9]:1");
		c[i].port = (uint16_t)(1000 + i % 200); /* 100 ports twice */
	}
	struct itr_ranked_peer out[N];
	size_t k = itr_rank(f->map, &pol, &client, c, N, N, out);
	assert_int_equal(k, 200);
	uint8_t seen[200] = {0};
	for (size_t i = 0; i < k; i++) {
		assert_memory_equal(out[i].peer.addr, c[0].addr, 16);
		assert_int_equal(seen[out[i].peer.port - 1000]++, 0);
	}
	assert_rank_order(out, k);
}

static void test_rank_deterministic_under_permutation(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = v4(10, 20, 200, 5, 6881); /* b-edge */
	enum { N = 300 };
	struct itr_peer_addr c[N];
	srand(7);
	for (int i = 0; i < N; i++) {
		unsigned net = (unsigned)i % 4;
		static const unsigned second[4] = {10, 20, 20, 30};
		static const unsigned third[4] = {1, 1, 130, 5};
		c[i] = v4(10, second[net], third[net] + (unsigned)(i % 3), (unsigned)(i / 4),
		          (uint16_t)(6000 + i % 7));
	}
	struct itr_ranked_peer a[60], b[60];
	size_t ka = itr_rank(f->map, &pol, &client, c, N, 60, a);
	for (int i = N - 1; i > 0; i--) {
		int j = rand() % (i + 1);
		struct itr_peer_addr t = c[i];
		c[i] = c[j];
		c[j] = t;
	}
	size_t kb = itr_rank(f->map, &pol, &client, c, N, 60, b);
	assert_int_equal(ka, kb);
	for (size_t i = 0; i < ka; i++) {
		assert_memory_equal(&a[i].peer, &b[i].peer, sizeof(a[i].peer));
		assert_int_equal(a[i].cost, b[i].cost);
	}
	assert_rank_order(a, ka);
}

/* Known PIDs (the tracker's store has them) rank exactly like looked-up
 * ones, and are what the ranker uses: PIDs given wrong on purpose show up
 * in the answer. */
static void test_rank_known_pids(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	enum { N = 120 };
	struct itr_peer_addr c[N];
	const struct itr_pid *pids[N];
	for (int i = 0; i < N; i++) {
		static const unsigned second[4] = {10, 10, 20, 30};
		static const unsigned third[4] = {1, 2, 130, 5};
		unsigned net = (unsigned)i % 4;
		c[i] = v4(10, second[net], third[net], (unsigned)(i / 4 + 1), (uint16_t)(6000 + i));
		pids[i] = pid_of(f->map, &c[i]);
	}
	struct itr_ranked_peer a[50], b[50];
	size_t ka = itr_rank(f->map, &pol, &client, c, N, 50, a);
	/* the candidates are distinct: saying so changes nothing */
	for (int distinct = 0; distinct < 2; distinct++) {
		size_t kb = itr_rank_known(f->map, &pol, &client, c, pids, distinct, N, 50, b);
		assert_int_equal(ka, kb);
		for (size_t i = 0; i < ka; i++) {
			assert_memory_equal(&a[i].peer, &b[i].peer, sizeof(a[i].peer));
			assert_ptr_equal(a[i].pid, b[i].pid);
			assert_int_equal(a[i].cost, b[i].cost);
		}
	}
	/* the same candidates grouped by PID, nearest first, as the store
	 * hands them (costs already in order): the same list */
	struct itr_peer_addr grouped[N];
	const struct itr_pid *grouped_pids[N];
	size_t g = 0;
	for (int net = 0; net < 4; net++)
		for (int i = net; i < N; i += 4) {
			grouped[g] = c[i];
			grouped_pids[g++] = pids[i];
		}
	size_t kg = itr_rank_known(f->map, &pol, &client, grouped, grouped_pids, true, N, 50, b);
	assert_int_equal(ka, kg);
	for (size_t i = 0; i < ka; i++)
		assert_memory_equal(&a[i].peer, &b[i].peer, sizeof(a[i].peer));
	/* every candidate claimed to be in the client's PID: all cost the same */
	const struct itr_pid *own = pid_of(f->map, &client);
	for (int i = 0; i < N; i++)
		pids[i] = own;
	size_t kb = itr_rank_known(f->map, &pol, &client, c, pids, false, N, 50, b);
	for (size_t i = 0; i < kb; i++)
		assert_ptr_equal(b[i].pid, own);
}

/* Groups (the memory store's per-record PID index) rank exactly like the
 * PIDs they name: 0 is no PID, an unknown group is looked up, and a group
 * is resolved once per run, so a run of one group broken by an unknown
 * candidate, or by a group 0, still gets each candidate's own PID. */
static void test_rank_grouped_matches_known(void **state)
{
	struct fixture *f = *state;
	size_t npids = itr_netmap_pid_count(f->map);
	struct itr_peer_addr client = v4(10, 10, 1, 5, 6881);
	enum { N = 150 };
	struct itr_peer_addr c[N];
	const struct itr_pid *pids[N];
	uint16_t groups[N];
	for (int i = 0; i < N; i++) {
		/* runs of five: own PID, another of its AS, another AS, no PID */
		static const unsigned second[4] = {10, 10, 20, 99};
		static const unsigned third[4] = {1, 2, 130, 5};
		unsigned net = (unsigned)(i / 5) % 4;
		c[i] = v4(10, second[net], third[net], (unsigned)(i + 1), (uint16_t)(6000 + i));
		pids[i] = pid_of(f->map, &c[i]);
		groups[i] = 0;
		for (size_t j = 0; j < npids; j++)
			if (itr_netmap_pid_at(f->map, j) == pids[i])
				groups[i] = (uint16_t)(j + 1);
		if (i % 10 == 4 || i % 10 == 5) /* unknown, across a run boundary */
			groups[i] = ITR_RANK_GROUPS_MAX;
	}
	assert_int_equal(groups[16], 0); /* 10.99.5.x: no PID covers it */
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	for (int variant = 0; variant < 3; variant++) {
		pol.rotate_ties = variant == 1;
		pol.gateways = variant == 2 ? 0 : 1;
		for (size_t want = 5; want <= N; want += 29) {
			struct itr_ranked_peer a[N], b[N];
			size_t ka =
			    itr_rank_known(f->map, &pol, &client, c, pids, true, N, want, a);
			size_t kb =
			    itr_rank_grouped(f->map, &pol, &client, c, groups, true, N, want, b);
			assert_int_equal(ka, kb);
			for (size_t i = 0; i < ka; i++) {
				assert_memory_equal(&a[i].peer, &b[i].peer, sizeof(a[i].peer));
				assert_ptr_equal(a[i].pid, b[i].pid);
				assert_int_equal(a[i].cost, b[i].cost);
				assert_int_equal(a[i].priority, b[i].priority);
			}
		}
	}
	/* a group names the map's PID: one claimed wrong shows up */
	for (int i = 0; i < N; i++)
		groups[i] = 1;
	struct itr_ranked_peer b[N];
	size_t kb = itr_rank_grouped(f->map, &pol, &client, c, groups, true, N, N, b);
	assert_int_equal(kb, N);
	for (size_t i = 0; i < kb; i++)
		assert_ptr_equal(b[i].pid, itr_netmap_pid_at(f->map, 0));
}

/* Large random inputs exercise the sort: with a PID-less client the output
 * must be exactly the candidates sorted by priority (then address). */
static int ref_cmp(const void *x, const void *y)
{
	const struct itr_ranked_peer *a = x, *b = y;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	int c = memcmp(a->peer.addr, b->peer.addr, 4);
	if (c)
		return c;
	return (a->peer.port > b->peer.port) - (a->peer.port < b->peer.port);
}

static void assert_sorted_like_reference(const struct itr_peer_addr *client,
                                         const struct itr_peer_addr *c, size_t n)
{
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_ranked_peer *out = calloc(n, sizeof(*out));
	struct itr_ranked_peer *ref = calloc(n, sizeof(*ref));
	for (size_t i = 0; i < n; i++) {
		ref[i].peer = c[i];
		ref[i].priority = itr_bep40_priority(client, &c[i]);
	}
	qsort(ref, n, sizeof(*ref), ref_cmp);
	size_t k = itr_rank(NULL, &pol, client, c, n, n, out);
	assert_int_equal(k, n);
	for (size_t i = 0; i < k; i++)
		assert_memory_equal(&out[i].peer, &ref[i].peer, sizeof(out[i].peer));
	free(out);
	free(ref);
}

static int by_address_and_port(const void *x, const void *y)
{
	const struct itr_peer_addr *a = x, *b = y;
	int c = memcmp(a->addr, b->addr, 4);
	if (c)
		return c;
	return (a->port > b->port) - (a->port < b->port);
}

static void test_rank_sort_matches_reference(void **state)
{
	(void)state;
	struct itr_peer_addr client = v4(192, 0, 2, 1, 6881);
	enum { N = 5000 };
	struct itr_peer_addr *c = calloc(N, sizeof(*c));
	srand(11);
	/* Every sorting path: small buckets, the packed words' counting pass
	 * (24 to 384), the radix passes beyond; candidates in random order and
	 * in address order. Few distinct addresses, many ports: lots of
	 * priority ties. */
	static const size_t sizes[] = {2, 5, 23, 24, 50, 143, 316, 384, 385, N};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t i = 0; i < sizes[s]; i++)
			c[i] = v4(10, (unsigned)rand() % 4, (unsigned)rand() % 8,
			          (unsigned)rand() % 256, (uint16_t)(1 + i));
		assert_sorted_like_reference(&client, c, sizes[s]);
		/* in address order, as the memory store hands a group: the
		 * ties need no pass of their own, and must come out the same */
		qsort(c, sizes[s], sizeof(*c), by_address_and_port);
		assert_sorted_like_reference(&client, c, sizes[s]);
	}
	free(c);
}

/* Peers chosen so that their priorities for this client share their top
 * byte, handed in lowest priority first: the counting pass leaves them all
 * in one bin in reverse order, so the insertion sort must give up and
 * merge, and the order must not change for it. */
static int by_priority_ascending(const void *x, const void *y)
{
	const struct itr_ranked_peer *a = x, *b = y;
	return (a->priority > b->priority) - (a->priority < b->priority);
}

static void test_rank_colliding_priorities_match_reference(void **state)
{
	(void)state;
	struct itr_peer_addr client = v4(192, 0, 2, 1, 6881);
	enum { N = 300 };
	struct itr_ranked_peer found[N];
	size_t n = 0;
	for (uint32_t i = 0; n < N && i < (1u << 24); i++) {
		struct itr_peer_addr p = v4(10, i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff, 6881);
		uint32_t prio = itr_bep40_priority(&client, &p);
		if (prio >> 24 == 0x5a) {
			found[n].peer = p;
			found[n++].priority = prio;
		}
	}
	assert_int_equal(n, N);
	qsort(found, N, sizeof(found[0]), by_priority_ascending);
	struct itr_peer_addr c[N];
	for (size_t i = 0; i < N; i++)
		c[i] = found[i].peer;
	assert_sorted_like_reference(&client, c, N);
}

static void test_rank_ipv6_candidates(void **state)
{
	struct fixture *f = *state;
	struct itr_rank_policy pol;
	itr_rank_policy_default(&pol);
	struct itr_peer_addr client = addr("[fd00:10:1::5]:6881");
	struct itr_peer_addr c[4] = {addr("[fd00:30::9]:1"), addr("[fd00:10:1::9]:1"),
	                             addr("[fd00:10:2::9]:1"), addr("10.10.1.77:1")};
	struct itr_ranked_peer out[4];
	size_t k = itr_rank(f->map, &pol, &client, c, 4, 4, out);
	assert_int_equal(k, 4);
	assert_int_equal(out[0].cost, 1);
	assert_int_equal(out[1].cost, 1);
	assert_int_equal(out[2].cost, 7);
	assert_int_equal(out[3].cost, 100);
	assert_string_equal(out[3].pid->name, "c-all");
}

/* ---- external budget per AS (gateways) ---------------------------- */

/* A swarm over three ASes: 8 + 3 peers in AS 64500 (two PIDs), 5 in
 * AS 64501, one alone in AS 64502. */
static size_t gateway_swarm(struct itr_peer_addr *s)
{
	size_t n = 0;
	for (int i = 0; i < 8; i++)
		s[n++] = v4(10, 10, 1, 20 + i, 6881);
	for (int i = 0; i < 3; i++)
		s[n++] = v4(10, 10, 2, 20 + i, 6881);
	for (int i = 0; i < 5; i++)
		s[n++] = v4(10, 20, 1, 20 + i, 6881);
	s[n++] = v4(10, 30, 0, 9, 6881);
	return n;
}

/* The gateway swarm and the default policy with gateways and min_list. */
static size_t gateway_setup(struct itr_peer_addr *swarm, struct itr_rank_policy *pol,
                            unsigned gateways, unsigned min_list)
{
	itr_rank_policy_default(pol);
	pol->gateways = gateways;
	pol->min_list = min_list;
	return gateway_swarm(swarm);
}

/* Rank the swarm for member `self` (the swarm minus itself as candidates,
 * as the tracker hands them) and count the outsiders in its list. */
static size_t rank_member(const struct fixture *f, const struct itr_rank_policy *pol,
                          const struct itr_peer_addr *swarm, size_t n, size_t self, size_t want,
                          struct itr_ranked_peer *out, size_t *outsiders)
{
	struct itr_peer_addr cands[32];
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (i != self)
			cands[m++] = swarm[i];
	size_t k = itr_rank(f->map, pol, &swarm[self], cands, m, want, out);
	uint32_t asn = pid_of(f->map, &swarm[self])->asn;
	*outsiders = count_asn(out, k, asn, 0);
	return k;
}

/* How many members of self's AS outscore it (the rank.h definition). */
static size_t outscored_by(const struct fixture *f, uint32_t salt, const struct itr_peer_addr *s,
                           size_t n, size_t self)
{
	uint32_t asn = pid_of(f->map, &s[self])->asn;
	uint32_t own = itr_rank_gateway_score(salt, &s[self]);
	size_t better = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == self || pid_of(f->map, &s[i])->asn != asn)
			continue;
		uint32_t sc = itr_rank_gateway_score(salt, &s[i]);
		better += sc > own || (sc == own && memcmp(s[i].addr, s[self].addr, 4) < 0);
	}
	return better;
}

static void test_rank_gateways_budget_per_as(void **state)
{
	struct fixture *f = *state;
	struct itr_peer_addr swarm[32];
	struct itr_rank_policy pol;
	/* min_list 4, no top-up: every AS but the lone one has >= 4 */
	size_t n = gateway_setup(swarm, &pol, 1, 4);
	for (unsigned gateways = 1; gateways <= 3; gateways++) {
		pol.gateways = gateways;
		pol.gateway_salt = 0x5eed0000u + gateways;
		size_t with_outside[3] = {0};
		for (size_t self = 0; self < n; self++) {
			struct itr_ranked_peer out[50];
			size_t ext;
			size_t k = rank_member(f, &pol, swarm, n, self, 50, out, &ext);
			assert_rank_order(out, k);
			int gw = outscored_by(f, pol.gateway_salt, swarm, n, self) < gateways;
			if (self == n - 1) {
				/* alone in its AS: topped up from outside */
				assert_true(gw);
				assert_int_equal(ext, pol.min_list);
			} else if (gw) {
				/* a gateway: the whole AS plus the external budget,
				 * spent on the other ASes' gateways */
				assert_int_equal(ext, pol.max_external);
				for (size_t i = 0; i < k; i++) {
					size_t j = 0;
					while (memcmp(&swarm[j], &out[i].peer, sizeof(swarm[j])))
						j++;
					if (pid_of(f->map, &swarm[j])->asn !=
					    pid_of(f->map, &swarm[self])->asn)
						assert_true(outscored_by(f, pol.gateway_salt, swarm,
						                         n, j) < gateways);
				}
			} else {
				assert_int_equal(ext, 0);
				assert_true(k >= pol.min_list);
			}
			with_outside[pid_of(f->map, &swarm[self])->asn - 64500] += ext > 0;
		}
		/* Exactly `gateways` peers of each AS reach outside (the lone
		 * peer being its AS's only one): no AS is cut off. */
		assert_int_equal(with_outside[0], gateways);
		assert_int_equal(with_outside[1], gateways);
		assert_int_equal(with_outside[2], 1);
	}
}

static void test_rank_gateways_lone_peer_and_top_up(void **state)
{
	struct fixture *f = *state;
	struct itr_peer_addr swarm[32];
	struct itr_rank_policy pol;
	size_t n = gateway_setup(swarm, &pol, 1, 11);
	pol.gateway_salt = 0xabcdef01u;
	struct itr_ranked_peer out[50];
	size_t ext;
	/* Alone in AS 64502: its own gateway, topped up to min_list. */
	size_t k = rank_member(f, &pol, swarm, n, n - 1, 50, out, &ext);
	assert_int_equal(k, pol.min_list);
	assert_int_equal(ext, k);
	/* A non-gateway of AS 64501 (4 local peers) still gets a usable list:
	 * the top-up adds outsiders up to min_list. */
	for (size_t self = 11; self < 16; self++) {
		if (outscored_by(f, pol.gateway_salt, swarm, n, self) == 0)
			continue;
		k = rank_member(f, &pol, swarm, n, self, 50, out, &ext);
		assert_int_equal(k, pol.min_list);
		assert_int_equal(ext, pol.min_list - 4);
		assert_rank_order(out, k);
	}
}

/* A budget larger than the other ASes' gateways: the gateways come
 * first, then the nearest other outsiders fill the budget, also those
 * that share a cost bucket with a gateway and sort before it. */
static void test_rank_gateways_budget_beyond_gateways(void **state)
{
	struct fixture *f = *state;
	struct itr_peer_addr swarm[32];
	struct itr_rank_policy pol;
	size_t n = gateway_setup(swarm, &pol, 1, 4);
	for (uint32_t salt = 1; salt <= 8; salt++) {
		pol.gateway_salt = salt;
		for (unsigned budget = 1; budget <= 9; budget++) {
			pol.max_external = budget;
			for (size_t self = 0; self < n - 1; self++) {
				if (outscored_by(f, pol.gateway_salt, swarm, n, self) != 0)
					continue;
				struct itr_ranked_peer out[50];
				size_t ext;
				size_t k = rank_member(f, &pol, swarm, n, self, 50, out, &ext);
				assert_rank_order(out, k);
				uint32_t asn = pid_of(f->map, &swarm[self])->asn;
				size_t outside = 0, gateways_listed = 0;
				for (size_t j = 0; j < n; j++) {
					if (pid_of(f->map, &swarm[j])->asn == asn)
						continue;
					outside++;
					if (outscored_by(f, pol.gateway_salt, swarm, n, j) != 0)
						continue;
					for (size_t i = 0; i < k; i++)
						if (!memcmp(&swarm[j], &out[i].peer,
						            sizeof(swarm[j])))
							gateways_listed++;
				}
				assert_int_equal(ext, budget < outside ? budget : outside);
				/* two other ASes, one gateway each */
				assert_int_equal(gateways_listed, budget < 2 ? budget : 2);
			}
		}
	}
}

static void test_rank_gateways_stable_and_salted(void **state)
{
	struct fixture *f = *state;
	struct itr_peer_addr swarm[32];
	struct itr_rank_policy pol;
	size_t n = gateway_setup(swarm, &pol, 1, 4);
	/* Re-announces (same swarm, candidates in another order) give the
	 * same list. */
	for (size_t self = 0; self < n; self++) {
		struct itr_ranked_peer a[50], b[50];
		size_t ea, eb;
		size_t ka = rank_member(f, &pol, swarm, n, self, 50, a, &ea);
		struct itr_peer_addr rev[32];
		for (size_t i = 0; i < n; i++)
			rev[i] = swarm[n - 1 - i];
		size_t kb = rank_member(f, &pol, rev, n, n - 1 - self, 50, b, &eb);
		assert_int_equal(ka, kb);
		for (size_t i = 0; i < ka; i++)
			assert_memory_equal(&a[i].peer, &b[i].peer, sizeof(a[i].peer));
	}
	/* The salt picks each swarm's gateways: over a few salts, more than
	 * one peer of AS 64500 serves as its gateway. */
	size_t distinct = 0;
	int was_gateway[11] = {0};
	for (uint32_t salt = 1; salt <= 16; salt++) {
		pol.gateway_salt = salt;
		for (size_t self = 0; self < 11; self++) {
			struct itr_ranked_peer out[50];
			size_t ext;
			rank_member(f, &pol, swarm, n, self, 50, out, &ext);
			if (ext && !was_gateway[self]++)
				distinct++;
		}
	}
	assert_true(distinct > 1);
	/* the swarm salt is CRC32-C of the info_hash */
	uint8_t ih[20];
	for (int i = 0; i < 20; i++)
		ih[i] = (uint8_t)i;
	assert_int_equal(itr_rank_swarm_salt(ih), itr_crc32c(0, ih, 20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c_check_value),
	    cmocka_unit_test(test_bep40_vectors),
	    cmocka_unit_test(test_bep40_ipv4_masks),
	    cmocka_unit_test(test_bep40_ipv6_masks),
	    cmocka_unit_test(test_bep40_equal_addresses_hash_ports),
	    cmocka_unit_test(test_bep40_mixed_family_symmetric),
	    cmocka_unit_test(test_peer_addr_parse),
	    cmocka_unit_test_setup_teardown(test_rank_default_policy_locals_plus_budget, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_lonely_peer_gets_usable_list, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_fewer_than_wanted_returns_all, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_min_external_reserved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_shares_compose_with_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_client_without_pid_is_plain_bep40, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_leaves_out_client_and_duplicates, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_deterministic_under_permutation, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_known_pids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_grouped_matches_known, setup, teardown),
	    cmocka_unit_test(test_rank_sort_matches_reference),
	    cmocka_unit_test(test_rank_colliding_priorities_match_reference),
	    cmocka_unit_test_setup_teardown(test_rank_ipv6_one_address_many_ports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_ipv6_candidates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_gateways_budget_per_as, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_gateways_lone_peer_and_top_up, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_gateways_budget_beyond_gateways, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rank_gateways_stable_and_salted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rank_rotated_ties, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
