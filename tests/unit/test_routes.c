/* test_routes.c - the route source without a kernel: rule parsing and
 * matching, the merge of a file map with route prefixes under both
 * precedences, the route table's incremental trie operations (held equal to
 * a full merge after every step of random route churn), and the coalescing
 * policy driven by a made-up clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netmap.h"
#include "netmap_merge.h"
#include "routes.h"

static const char file_text[] = "network-map routes-test\n"
                                "tier same-pid 1\n"
                                "tier same-loc 5\n"
                                "tier same-as 10\n"
                                "tier other-as 100\n"
                                "pid core id 1 asn 64500 loc 1\n"
                                "prefix core 10.0.0.0/8 fd00::/16\n"
                                "pid edge id 2 asn 64500 loc 2\n"
                                "prefix edge 10.1.0.0/16\n"
                                "pid transit id 3 asn 64999 loc 9\n"
                                "cost core edge 3\n";

static struct itr_netmap *load(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "test.netmap", &err);
	if (!m) {
		char buf[600];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		fail_msg("map: %s", buf);
	}
	return m;
}

static struct itr_prefix pfx(const char *text)
{
	struct itr_prefix p;
	char why[128];
	if (itr_prefix_parse(text, &p, why, sizeof(why)))
		fail_msg("%s: %s", text, why);
	return p;
}

static const char *pid_at(const struct itr_netmap *m, const char *ip)
{
	const struct itr_pid *p = itr_netmap_lookup_str(m, ip);
	return p ? p->name : "-";
}

/* ---- rules ---------------------------------------------------------------- */

static void test_parse_rules(void **state)
{
	(void)state;
	struct itr_routes_config cfg = {0};
	char err[256];
	assert_int_equal(itr_routes_parse_rule(&cfg, "edge=realm:5", err, sizeof(err)), 0);
	assert_int_equal(itr_routes_parse_rule(&cfg, "core=table:main", err, sizeof(err)), 0);
	assert_int_equal(itr_routes_parse_rule(&cfg, "core=table:100", err, sizeof(err)), 0);
	assert_int_equal(itr_routes_parse_rule(&cfg, "transit=proto:bird", err, sizeof(err)), 0);
	assert_int_equal(itr_routes_parse_rule(&cfg, "transit=proto:0x04", err, sizeof(err)), 0);
	assert_int_equal(cfg.nrules, 5);
	assert_string_equal(cfg.rules[0].pid, "edge");
	assert_int_equal(cfg.rules[0].match, ITR_ROUTE_BY_REALM);
	assert_int_equal(cfg.rules[0].value, 5);
	assert_int_equal(cfg.rules[1].value, 254); /* RT_TABLE_MAIN */
	assert_int_equal(cfg.rules[2].value, 100);
	assert_int_equal(cfg.rules[3].match, ITR_ROUTE_BY_PROTO);
	assert_int_equal(cfg.rules[3].value, 12); /* RTPROT_BIRD */
	assert_int_equal(cfg.rules[4].value, 4);  /* RTPROT_STATIC */

	static const char *const bad[] = {
	    "edge",
	    "edge=realm",
	    "=realm:1",
	    "edge=realm:0",
	    "edge=realm:65536",
	    "edge=realm:-1",
	    "edge=colour:1",
	    "edge=table:0",
	    "edge=table:no-such-table",
	    "edge=proto:no-such-proto",
	    "edge=proto:256",
	    "edge=realm:",
	    "edge=realm:5x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (itr_routes_parse_rule(&cfg, bad[i], err, sizeof(err)) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(err, "--route"));
	}
	assert_int_equal(cfg.nrules, 5); /* rejected specs add nothing */

	assert_int_equal(cfg.winner, ITR_WINNER_FILE);
	assert_int_equal(itr_routes_parse_precedence(&cfg, "routes", err, sizeof(err)), 0);
	assert_int_equal(cfg.winner, ITR_WINNER_ROUTES);
	assert_int_equal(itr_routes_parse_precedence(&cfg, "file", err, sizeof(err)), 0);
	assert_int_equal(cfg.winner, ITR_WINNER_FILE);
	assert_int_equal(itr_routes_parse_precedence(&cfg, "kernel", err, sizeof(err)), -1);
}

static void test_rule_limit(void **state)
{
	(void)state;
	struct itr_routes_config cfg = {0};
	char err[256];
	for (int i = 0; i < ITR_ROUTES_MAX_RULES; i++)
		assert_int_equal(itr_routes_parse_rule(&cfg, "edge=realm:1", err, sizeof(err)), 0);
	assert_int_equal(itr_routes_parse_rule(&cfg, "edge=realm:1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many"));
}

static void test_match(void **state)
{
	(void)state;
	struct itr_routes_config cfg = {0};
	char err[256];
	itr_routes_parse_rule(&cfg, "edge=realm:5", err, sizeof(err));
	itr_routes_parse_rule(&cfg, "core=table:100", err, sizeof(err));
	itr_routes_parse_rule(&cfg, "transit=proto:bird", err, sizeof(err));
	uint32_t realm5 = 5, from7_to5 = 7u << 16 | 5, from5_to7 = 5u << 16 | 7;
	uint32_t multi[2] = {0, 5};
	/* first matching rule wins, in configuration order */
	assert_int_equal(itr_routes_match(&cfg, 100, 12, &realm5, 1), 0);
	assert_int_equal(itr_routes_match(&cfg, 100, 12, NULL, 0), 1);
	assert_int_equal(itr_routes_match(&cfg, 254, 12, NULL, 0), 2);
	assert_int_equal(itr_routes_match(&cfg, 254, 4, NULL, 0), -1);
	/* the destination realm is the low 16 bits of RTA_FLOW */
	assert_int_equal(itr_routes_match(&cfg, 254, 4, &from7_to5, 1), 0);
	assert_int_equal(itr_routes_match(&cfg, 254, 4, &from5_to7, 1), -1);
	/* multipath: any next hop's realm */
	assert_int_equal(itr_routes_match(&cfg, 254, 4, multi, 2), 0);
}

static void test_resolve(void **state)
{
	(void)state;
	struct itr_netmap *file = load(file_text);
	struct itr_routes_config cfg = {0};
	const struct itr_pid *pids[ITR_ROUTES_MAX_RULES];
	char err[256];
	itr_routes_parse_rule(&cfg, "edge=realm:5", err, sizeof(err));
	assert_int_equal(itr_routes_resolve(&cfg, file, pids, err, sizeof(err)), 0);
	assert_string_equal(pids[0]->name, "edge");
	itr_routes_parse_rule(&cfg, "nowhere=realm:6", err, sizeof(err));
	assert_int_equal(itr_routes_resolve(&cfg, file, pids, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'nowhere'"));
	itr_netmap_unref(file);
}

/* ---- merge ------------------------------------------------------------------ */

static void test_merge_precedence(void **state)
{
	(void)state;
	struct itr_netmap *file = load(file_text);
	const struct itr_pid *edge = itr_netmap_pid_by_name(file, "edge");
	const struct itr_pid *transit = itr_netmap_pid_by_name(file, "transit");
	struct itr_route_prefix routes[] = {
	    {pfx("10.0.0.0/8"), transit},      /* the file names it too */
	    {pfx("10.2.0.0/16"), edge},        /* inside core's /8 */
	    {pfx("198.51.100.0/24"), transit}, /* only a route names it */
	    {pfx("2001:db8::/32"), edge},
	};
	struct itr_netmap_error err;

	struct itr_netmap *fw = itr_netmap_merge(file, routes, 4, ITR_WINNER_FILE, &err);
	assert_non_null(fw);
	assert_string_equal(pid_at(fw, "10.9.9.9"), "core");
	assert_string_equal(pid_at(fw, "10.2.3.4"), "edge");
	assert_string_equal(pid_at(fw, "10.1.1.1"), "edge");
	assert_string_equal(pid_at(fw, "198.51.100.7"), "transit");
	assert_string_equal(pid_at(fw, "2001:db8::1"), "edge");
	assert_string_equal(pid_at(fw, "203.0.113.1"), "-");
	assert_int_equal(itr_netmap_prefix_count(fw), 3 + 3);

	struct itr_netmap *rw = itr_netmap_merge(file, routes, 4, ITR_WINNER_ROUTES, &err);
	assert_non_null(rw);
	assert_string_equal(pid_at(rw, "10.9.9.9"), "transit");
	assert_string_equal(pid_at(rw, "10.2.3.4"), "edge");
	assert_string_equal(pid_at(rw, "10.1.1.1"), "edge"); /* longer file prefix still wins */
	assert_int_equal(itr_netmap_prefix_count(rw), 3 + 3);

	/* the file's PIDs, tiers and costs come along */
	const struct itr_pid *core = itr_netmap_pid_by_name(rw, "core");
	const struct itr_pid *redge = itr_netmap_pid_by_name(rw, "edge");
	assert_int_equal(itr_netmap_pid_count(rw), 3);
	assert_int_equal(itr_netmap_cost(rw, core, redge), 3);
	assert_int_equal(itr_netmap_cost(rw, redge, core), 10);
	assert_string_equal(itr_netmap_resource_id(rw), "routes-test");

	/* vtags name contents: differ between the two, and a merge without
	 * routes is the file map itself */
	assert_string_not_equal(itr_netmap_vtag(fw), itr_netmap_vtag(rw));
	struct itr_netmap *none = itr_netmap_merge(file, NULL, 0, ITR_WINNER_ROUTES, &err);
	assert_non_null(none);
	assert_string_equal(itr_netmap_vtag(none), itr_netmap_vtag(file));

	/* a prefix given twice, or a PID from another map, is refused */
	struct itr_route_prefix twice[] = {{pfx("192.0.2.0/24"), edge},
	                                   {pfx("192.0.2.0/24"), edge}};
	assert_null(itr_netmap_merge(file, twice, 2, ITR_WINNER_FILE, &err));
	struct itr_route_prefix foreign[] = {{pfx("192.0.2.0/24"), core}};
	assert_null(itr_netmap_merge(file, foreign, 1, ITR_WINNER_FILE, &err));

	itr_netmap_unref(none);
	itr_netmap_unref(fw);
	itr_netmap_unref(rw);
	itr_netmap_unref(file);
}

static const char default_text[] = "pid home id 1 asn 64500\n"
                                   "prefix home 10.0.0.0/8\n"
                                   "pid world id 2 asn 64999\n"
                                   "pid peer id 3 asn 64777\n"
                                   "default-pid world\n";

static void test_merge_default_routes(void **state)
{
	(void)state;
	struct itr_netmap *file = load(default_text);
	const struct itr_pid *peer = itr_netmap_pid_by_name(file, "peer");
	struct itr_route_prefix v4_default[] = {{pfx("0.0.0.0/0"), peer}};
	struct itr_netmap_error err;

	struct itr_netmap *fw = itr_netmap_merge(file, v4_default, 1, ITR_WINNER_FILE, &err);
	assert_non_null(fw);
	assert_string_equal(pid_at(fw, "192.0.2.1"), "world");
	assert_string_equal(itr_netmap_vtag(fw), itr_netmap_vtag(file));

	struct itr_netmap *rw = itr_netmap_merge(file, v4_default, 1, ITR_WINNER_ROUTES, &err);
	assert_non_null(rw);
	assert_string_equal(pid_at(rw, "192.0.2.1"), "peer");
	assert_string_equal(pid_at(rw, "2001:db8::1"), "world"); /* v6 keeps the default PID */
	assert_string_equal(pid_at(rw, "10.1.2.3"), "home");
	assert_null(itr_netmap_default_pid(rw));

	itr_netmap_unref(fw);
	itr_netmap_unref(rw);
	itr_netmap_unref(file);
}

/* ---- incremental operations == full merge ------------------------------------- */

static uint64_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* A small universe of prefixes so that routes collide: the file's own
 * prefixes, /0s, and a few nested ones. */
static struct itr_prefix random_prefix(void)
{
	static const char *const pool[] = {
	    "10.0.0.0/8",  "10.1.0.0/16",  "10.2.0.0/16",    "10.2.3.0/24",
	    "0.0.0.0/0",   "192.0.2.0/24", "192.0.2.128/25", "fd00::/16",
	    "fd00:1::/32", "::/0",         "2001:db8::/32",  "198.51.100.0/24",
	};
	return pfx(pool[rng() % (sizeof(pool) / sizeof(pool[0]))]);
}

struct sim_trie {
	struct itr_netmap_kentry e[64];
	size_t n;
};

static struct itr_netmap_kentry *sim_find(struct sim_trie *t, const struct itr_prefix *p)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].prefix.family == p->family && t->e[i].prefix.len == p->len &&
		    memcmp(t->e[i].prefix.addr, p->addr, 16) == 0)
			return &t->e[i];
	return NULL;
}

static void sim_apply(struct sim_trie *t, const struct itr_netmap_op *ops, size_t n)
{
	bool deleting = false;
	for (size_t i = 0; i < n; i++) {
		struct itr_netmap_kentry *e = sim_find(t, &ops[i].entry.prefix);
		if (ops[i].kind == ITR_NETMAP_OP_DELETE) {
			deleting = true;
			assert_non_null(e); /* never deletes what is not there */
			*e = t->e[--t->n];
			continue;
		}
		assert_false(deleting); /* every update comes before every delete */
		if (ops[i].kind == ITR_NETMAP_OP_ADD) {
			assert_null(e);
			assert_true(t->n < 64);
			t->e[t->n++] = ops[i].entry;
		} else {
			assert_non_null(e);
			assert_memory_not_equal(&e->info, &ops[i].entry.info, sizeof(e->info));
			e->info = ops[i].entry.info;
		}
	}
}

static void check_equal(struct sim_trie *t, const struct itr_netmap *merged)
{
	struct itr_netmap_kentry *want;
	size_t nwant;
	assert_int_equal(itr_netmap_kernel_entries(merged, &want, &nwant), 0);
	assert_int_equal(t->n, nwant);
	for (size_t i = 0; i < nwant; i++) {
		struct itr_netmap_kentry *got = sim_find(t, &want[i].prefix);
		assert_non_null(got);
		assert_memory_equal(&got->info, &want[i].info, sizeof(got->info));
	}
	free(want);
}

static void churn(const char *text, enum itr_prefix_winner winner, uint64_t seed)
{
	struct itr_netmap *file = load(text);
	const struct itr_pid *pids[3];
	for (size_t i = 0; i < 3; i++)
		pids[i] = itr_netmap_pid_at(file, i);
	struct itr_route_table *tab = itr_route_table_new(file, pids, 3, winner);
	assert_non_null(tab);
	rng_state = seed;

	/* the tries start as the file map */
	struct sim_trie trie = {0};
	struct itr_netmap_kentry *init;
	assert_int_equal(itr_netmap_kernel_entries(file, &init, &trie.n), 0);
	memcpy(trie.e, init, trie.n * sizeof(*init));
	free(init);

	for (int step = 0; step < 400; step++) {
		int changes = 1 + (int)(rng() % 6);
		for (int c = 0; c < changes; c++) {
			struct itr_prefix p = random_prefix();
			uint32_t table = 254 + rng() % 2, prio = rng() % 2;
			int rule = (int)(rng() % 4) - 1; /* -1: withdrawn or unmatched */
			assert_int_equal(itr_route_table_apply(tab, &p, table, prio, 0, rule), 0);
		}
		struct itr_netmap_op *ops;
		size_t nops;
		assert_int_equal(itr_route_table_take_ops(tab, &ops, &nops), 0);
		sim_apply(&trie, ops, nops);
		free(ops);

		struct itr_route_prefix *rp;
		size_t nrp;
		assert_int_equal(itr_route_table_prefixes(tab, &rp, &nrp), 0);
		struct itr_netmap_error err;
		struct itr_netmap *merged = itr_netmap_merge(file, rp, nrp, winner, &err);
		assert_non_null(merged);
		check_equal(&trie, merged);
		itr_netmap_unref(merged);
		free(rp);
	}
	itr_route_table_free(tab);
	itr_netmap_unref(file);
}

static void test_incremental_matches_merge(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		churn(file_text, ITR_WINNER_FILE, seed * 0x9e3779b97f4a7c15ull);
		churn(file_text, ITR_WINNER_ROUTES, seed * 0x9e3779b97f4a7c15ull + 1);
		churn(default_text, ITR_WINNER_FILE, seed * 0x9e3779b97f4a7c15ull + 2);
		churn(default_text, ITR_WINNER_ROUTES, seed * 0x9e3779b97f4a7c15ull + 3);
	}
}

static void test_table_counts_and_noops(void **state)
{
	(void)state;
	struct itr_netmap *file = load(file_text);
	const struct itr_pid *pids[2] = {itr_netmap_pid_by_name(file, "edge"),
	                                 itr_netmap_pid_by_name(file, "transit")};
	struct itr_route_table *tab = itr_route_table_new(file, pids, 2, ITR_WINNER_FILE);
	struct itr_prefix p = pfx("198.51.100.0/24"), q = pfx("10.0.0.0/8");
	struct itr_netmap_op *ops;
	size_t n;

	/* the same destination in two tables is two routes, one prefix */
	itr_route_table_apply(tab, &p, 254, 0, 0, 0);
	itr_route_table_apply(tab, &p, 100, 0, 0, 1);
	assert_int_equal(itr_route_table_routes(tab), 2);
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ops[0].kind, ITR_NETMAP_OP_ADD);
	assert_int_equal(ops[0].entry.info.pid, pids[0]->id); /* rule 0 before rule 1 */
	free(ops);

	/* removing the preferred route hands the prefix to the other */
	itr_route_table_apply(tab, &p, 254, 0, 0, -1);
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ops[0].kind, ITR_NETMAP_OP_CHANGE);
	assert_int_equal(ops[0].entry.info.pid, pids[1]->id);
	free(ops);

	/* a route the file outranks changes nothing in the tries */
	itr_route_table_apply(tab, &q, 254, 0, 0, 1);
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &n), 0);
	assert_int_equal(n, 0);
	/* add then withdraw within one batch: nothing either */
	struct itr_prefix r = pfx("203.0.113.0/24");
	itr_route_table_apply(tab, &r, 254, 0, 0, 0);
	itr_route_table_apply(tab, &r, 254, 0, 0, -1);
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &n), 0);
	assert_int_equal(n, 0);
	/* deleting a route never seen is harmless */
	itr_route_table_apply(tab, &r, 254, 7, 0, -1);
	assert_int_equal(itr_route_table_routes(tab), 2);

	itr_route_table_apply(tab, &p, 100, 0, 0, -1);
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ops[0].kind, ITR_NETMAP_OP_DELETE);
	free(ops);
	itr_route_table_apply(tab, &q, 254, 0, 0, -1);
	assert_int_equal(itr_route_table_routes(tab), 0);
	itr_route_table_free(tab);
	itr_netmap_unref(file);
}

static void test_table_grows(void **state)
{
	(void)state;
	struct itr_netmap *file = load(file_text);
	const struct itr_pid *pids[1] = {itr_netmap_pid_by_name(file, "transit")};
	struct itr_route_table *tab = itr_route_table_new(file, pids, 1, ITR_WINNER_FILE);
	const size_t n = 50000;
	for (size_t i = 0; i < n; i++) {
		struct itr_prefix p = {.family = 4, .len = 32};
		uint32_t a = (100u << 24) + (uint32_t)i;
		p.addr[0] = a >> 24, p.addr[1] = a >> 16, p.addr[2] = a >> 8,
		p.addr[3] = (uint8_t)a;
		assert_int_equal(itr_route_table_apply(tab, &p, 254, 0, 0, 0), 0);
	}
	struct itr_netmap_op *ops;
	size_t nops;
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &nops), 0);
	assert_int_equal(nops, n);
	free(ops);
	/* delete every other one: the hash table's backward shift must keep
	 * every remaining prefix findable */
	for (size_t i = 0; i < n; i += 2) {
		struct itr_prefix p = {.family = 4, .len = 32};
		uint32_t a = (100u << 24) + (uint32_t)i;
		p.addr[0] = a >> 24, p.addr[1] = a >> 16, p.addr[2] = a >> 8,
		p.addr[3] = (uint8_t)a;
		itr_route_table_apply(tab, &p, 254, 0, 0, -1);
	}
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &nops), 0);
	assert_int_equal(nops, n / 2);
	free(ops);
	struct itr_route_prefix *rp;
	size_t nrp;
	assert_int_equal(itr_route_table_prefixes(tab, &rp, &nrp), 0);
	assert_int_equal(nrp, n / 2);
	for (size_t i = 0; i < nrp; i++)
		assert_int_equal(rp[i].prefix.addr[3] % 2, 1);
	free(rp);
	for (size_t i = 1; i < n; i += 2) {
		struct itr_prefix p = {.family = 4, .len = 32};
		uint32_t a = (100u << 24) + (uint32_t)i;
		p.addr[0] = a >> 24, p.addr[1] = a >> 16, p.addr[2] = a >> 8,
		p.addr[3] = (uint8_t)a;
		itr_route_table_apply(tab, &p, 254, 0, 0, -1);
	}
	assert_int_equal(itr_route_table_routes(tab), 0);
	assert_int_equal(itr_route_table_take_ops(tab, &ops, &nops), 0);
	assert_int_equal(nops, n / 2);
	free(ops);
	itr_route_table_free(tab);
	itr_netmap_unref(file);
}

/* ---- coalescing ------------------------------------------------------------- */

#define MS 1000000ull

static void test_coalescer(void **state)
{
	(void)state;
	struct itr_coalescer c;
	itr_coalescer_init(&c, 1 * MS, 10 * MS);
	assert_int_equal(itr_coalescer_wait(&c, 0), UINT64_MAX);

	/* one change: flush after the quiet gap */
	itr_coalescer_note(&c, 100 * MS);
	assert_int_equal(itr_coalescer_wait(&c, 100 * MS), 1 * MS);
	assert_int_equal(itr_coalescer_wait(&c, 100 * MS + MS / 2), MS / 2);
	assert_int_equal(itr_coalescer_wait(&c, 101 * MS), 0);
	itr_coalescer_flushed(&c);
	assert_int_equal(itr_coalescer_wait(&c, 101 * MS), UINT64_MAX);

	/* a storm: a change every 0.5 ms never leaves a quiet gap, so the cap
	 * decides: one flush per 10 ms, not one per change */
	uint64_t t = 200 * MS, flushes = 0, changes = 0;
	for (; t < 300 * MS; t += MS / 2) {
		itr_coalescer_note(&c, t);
		changes++;
		if (itr_coalescer_wait(&c, t) == 0) {
			itr_coalescer_flushed(&c);
			flushes++;
		}
	}
	assert_int_equal(changes, 200);
	assert_in_range(flushes, 9, 10);

	/* the cap counts from the first pending change, not the latest */
	itr_coalescer_flushed(&c);
	itr_coalescer_note(&c, 400 * MS);
	itr_coalescer_note(&c, 409 * MS + MS / 2);
	assert_int_equal(itr_coalescer_wait(&c, 409 * MS + MS / 2), MS / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_rules),
	    cmocka_unit_test(test_rule_limit),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_merge_precedence),
	    cmocka_unit_test(test_merge_default_routes),
	    cmocka_unit_test(test_incremental_matches_merge),
	    cmocka_unit_test(test_table_counts_and_noops),
	    cmocka_unit_test(test_table_grows),
	    cmocka_unit_test(test_coalescer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
