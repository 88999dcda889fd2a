/* test_netmap_sync.c - itr_netmap_sync_bpf against real kernel LPM tries
 * (created here with bpf_map_create; needs root): initial load, reloads
 * with adds/changes/deletes, the restart path (no old map: the tries' own
 * content, junk included, is read and corrected), and lookups that run in a
 * second thread while the main thread reloads back and forth, which must
 * never miss an address both maps cover.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "netmap.h"

struct tries {
	int v4, v6;
};

static int setup(void **state)
{
	struct tries *t = calloc(1, sizeof(*t));
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	t->v4 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_lpm_v4", sizeof(struct itr_lpm_v4_key),
	                       sizeof(struct itr_pid_info), 100000, &opts);
	t->v6 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_lpm_v6", sizeof(struct itr_lpm_v6_key),
	                       sizeof(struct itr_pid_info), 100000, &opts);
	if (t->v4 < 0 || t->v6 < 0) {
		fprintf(stderr, "bpf_map_create(LPM_TRIE) failed: %s (need root)\n",
		        strerror(errno));
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tries *t = *state;
	close(t->v4);
	close(t->v6);
	free(t);
	return 0;
}

static struct itr_netmap *parse(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "t", &err);
	if (!m)
		fail_msg("parse: line %d: %s", err.line, err.reason);
	return m;
}

/* The trie's content read with plain get_next_key/lookup, independent of
 * the library's own dump code. */
static size_t raw_dump(int fd, int family, struct itr_netmap_kentry *out, size_t max)
{
	uint8_t key[20], next[20];
	size_t ksz = family == 4 ? 8 : 20, n = 0;
	bool have = false;
	while (bpf_map_get_next_key(fd, have ? key : NULL, next) == 0) {
		memcpy(key, next, ksz);
		have = true;
		assert_true(n < max);
		struct itr_netmap_kentry *e = &out[n++];
		memset(e, 0, sizeof(*e));
		uint32_t plen;
		memcpy(&plen, key, 4);
		e->prefix.family = (uint8_t)family;
		e->prefix.len = (uint8_t)plen;
		memcpy(e->prefix.addr, key + 4, ksz - 4);
		assert_int_equal(bpf_map_lookup_elem(fd, key, &e->info), 0);
	}
	return n;
}

/* The tries hold exactly map's kernel entries. */
static void assert_tries_equal(const struct tries *t, const struct itr_netmap *map)
{
	struct itr_netmap_kentry *want;
	size_t nwant;
	assert_int_equal(itr_netmap_kernel_entries(map, &want, &nwant), 0);
	size_t max = nwant + 1000;
	struct itr_netmap_kentry *got = calloc(max, sizeof(*got));
	size_t ngot = raw_dump(t->v4, 4, got, max);
	ngot += raw_dump(t->v6, 6, got + ngot, max - ngot);
	itr_netmap_kentries_sort(got, ngot);
	assert_int_equal(ngot, nwant);
	for (size_t i = 0; i < nwant; i++) {
		assert_int_equal(got[i].prefix.family, want[i].prefix.family);
		assert_int_equal(got[i].prefix.len, want[i].prefix.len);
		assert_memory_equal(got[i].prefix.addr, want[i].prefix.addr, 16);
		assert_memory_equal(&got[i].info, &want[i].info, sizeof(got[i].info));
	}
	free(got);
	free(want);
}

static const char MAP_A[] = "pid a1 id 1 asn 64500 loc 1\n"
                            "prefix a1 10.10.1.0/24 fd00:10:1::/48\n"
                            "pid a2 id 2 asn 64500 loc 2\n"
                            "prefix a2 10.10.2.0/24 fd00:10:2::/48\n"
                            "pid b id 10 asn 64501 loc 10\n"
                            "prefix b 10.20.0.0/16 fd00:20::/32\n"
                            "pid be id 11 asn 64501 loc 11\n"
                            "prefix be 10.20.128.0/17 fd00:20:8000::/33\n"
                            "pid c id 20 asn 64502\n"
                            "prefix c 10.30.0.0/16 10.31.0.0/16\n";

/* Changes against MAP_A: a2 moves to LOC 3 (2 changes), 10.31/16 leaves c
 * (1 delete), be loses its IPv6 prefix (1 delete), c gains 10.32/16 and
 * fd00:30::/32 (2 adds) and a default PID appears (2 adds: both /0). */
static const char MAP_B[] = "pid a1 id 1 asn 64500 loc 1\n"
                            "prefix a1 10.10.1.0/24 fd00:10:1::/48\n"
                            "pid a2 id 2 asn 64500 loc 3\n"
                            "prefix a2 10.10.2.0/24 fd00:10:2::/48\n"
                            "pid b id 10 asn 64501 loc 10\n"
                            "prefix b 10.20.0.0/16 fd00:20::/32\n"
                            "pid be id 11 asn 64501 loc 11\n"
                            "prefix be 10.20.128.0/17\n"
                            "pid c id 20 asn 64502\n"
                            "prefix c 10.30.0.0/16 10.32.0.0/16 fd00:30::/32\n"
                            "default-pid a1\n";

static void test_load_and_reload(void **state)
{
	struct tries *t = *state;
	struct itr_netmap *a = parse(MAP_A), *b = parse(MAP_B);
	struct itr_netmap_sync_stats st;

	assert_int_equal(itr_netmap_sync_bpf(NULL, a, t->v4, t->v6, &st), 0);
	assert_int_equal(st.added, 10);
	assert_int_equal(st.changed, 0);
	assert_int_equal(st.deleted, 0);
	assert_tries_equal(t, a);

	assert_int_equal(itr_netmap_sync_bpf(a, b, t->v4, t->v6, &st), 0);
	assert_int_equal(st.added, 4);
	assert_int_equal(st.changed, 2);
	assert_int_equal(st.deleted, 2);
	assert_tries_equal(t, b);
	/* The kernel does longest-prefix matching on what we wrote. */
	struct itr_lpm_v4_key k4 = {.prefixlen = 32, .addr = {10, 20, 200, 1}};
	struct itr_pid_info info;
	assert_int_equal(bpf_map_lookup_elem(t->v4, &k4, &info), 0);
	assert_int_equal(info.pid, 11);
	k4.addr[0] = 192; /* only the default covers it */
	assert_int_equal(bpf_map_lookup_elem(t->v4, &k4, &info), 0);
	assert_int_equal(info.pid, 1);
	assert_int_equal(info.flags, ITR_PID_F_DEFAULT);

	/* Same map again: nothing to do. */
	assert_int_equal(itr_netmap_sync_bpf(b, b, t->v4, t->v6, &st), 0);
	assert_int_equal(st.added + st.changed + st.deleted, 0);
	/* And back. */
	assert_int_equal(itr_netmap_sync_bpf(b, a, t->v4, t->v6, &st), 0);
	assert_int_equal(st.added, 2);
	assert_int_equal(st.changed, 2);
	assert_int_equal(st.deleted, 4);
	assert_tries_equal(t, a);
	k4.addr[0] = 192;
	assert_int_equal(bpf_map_lookup_elem(t->v4, &k4, &info), -ENOENT);

	/* An empty map empties the tries. */
	struct itr_netmap *empty = parse("pid x id 1 asn 1\n");
	assert_int_equal(itr_netmap_sync_bpf(a, empty, t->v4, t->v6, &st), 0);
	assert_int_equal(st.deleted, 10);
	assert_tries_equal(t, empty);
	itr_netmap_unref(empty);
	itr_netmap_unref(a);
	itr_netmap_unref(b);
}

static void put4(int fd, const char *cidr, uint32_t pid)
{
	/* Junk may have host bits set: build the key by hand. */
	unsigned a, b, c, d, len;
	assert_int_equal(sscanf(cidr, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &len), 5);
	struct itr_lpm_v4_key k = {.prefixlen = len, .addr = {a, b, c, d}};
	struct itr_pid_info v = {.pid = pid, .asn = 99};
	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
}

static void test_restart_path_removes_junk(void **state)
{
	struct tries *t = *state;
	struct itr_netmap *b = parse(MAP_B);
	struct itr_netmap_sync_stats st;
	/* What a previous daemon (or anyone) left behind. */
	put4(t->v4, "10.10.1.0/24", 1);   /* right prefix, wrong value */
	put4(t->v4, "172.16.0.0/12", 77); /* not in the map */
	put4(t->v4, "10.30.0.7/16", 20);  /* host bits set, same prefix as c's */
	put4(t->v4, "0.0.0.0/0", 5);      /* wrong default */
	struct itr_lpm_v6_key k6 = {.prefixlen = 64, .addr = {0x20, 0x01, 0x0d, 0xb8}};
	struct itr_pid_info v = {.pid = 3};
	assert_int_equal(bpf_map_update_elem(t->v6, &k6, &v, BPF_ANY), 0);

	assert_int_equal(itr_netmap_sync_bpf(NULL, b, t->v4, t->v6, &st), 0);
	assert_tries_equal(t, b);
	assert_int_equal(st.deleted, 2); /* 172.16/12 and 2001:db8::/64 */

	/* The library's dump agrees with the raw one. */
	struct itr_netmap_kentry *e, *want;
	size_t n, nwant;
	assert_int_equal(itr_netmap_dump_bpf(t->v4, t->v6, &e, &n), 0);
	assert_int_equal(itr_netmap_kernel_entries(b, &want, &nwant), 0);
	assert_int_equal(n, nwant);
	assert_memory_equal(e, want, n * sizeof(*e));
	free(e);
	free(want);

	/* Restart path with nothing to change. */
	assert_int_equal(itr_netmap_sync_bpf(NULL, b, t->v4, t->v6, &st), 0);
	assert_int_equal(st.added + st.changed + st.deleted, 0);
	itr_netmap_unref(b);
}

/* ---- reload while looking up ------------------------------------------- */

#define GRID 40 /* 10.<i>.<j>.0/24 for i, j < GRID in map X */

struct prober {
	int fd4, fd6;
	atomic_bool stop;
	atomic_ulong lookups, misses;
};

static void *probe(void *arg)
{
	struct prober *p = arg;
	unsigned long n = 0, miss = 0;
	while (!atomic_load(&p->stop)) {
		for (int i = 0; i < GRID; i++) {
			struct itr_pid_info info;
			for (int j = 0; j < GRID; j++) {
				struct itr_lpm_v4_key k = {.prefixlen = 32,
				                           .addr = {10, (uint8_t)i, (uint8_t)j, 9}};
				if (bpf_map_lookup_elem(p->fd4, &k, &info) != 0)
					miss++;
				n++;
			}
			/* fd00:<i>::1 */
			struct itr_lpm_v6_key k6 = {.prefixlen = 128,
			                            .addr = {0xfd, 0, 0, (uint8_t)i}};
			k6.addr[15] = 1;
			if (bpf_map_lookup_elem(p->fd6, &k6, &info) != 0)
				miss++;
			n++;
		}
	}
	atomic_store(&p->lookups, n);
	atomic_store(&p->misses, miss);
	return NULL;
}

/* Map X: every 10.i.j.0/24 and fd00:i::/32 in PID (i+j)%7+1. Map Y covers
 * the same addresses differently: rows with even i become one 10.i.0.0/16
 * (the /24s go away), odd rows keep their /24s with other PIDs, IPv6 rows
 * switch between /32 and /24+/32 halves. */
static char *grid_map(bool y)
{
	size_t cap = 1 << 20, off = 0;
	char *s = malloc(cap);
	for (int p = 1; p <= 8; p++)
		off += (size_t)snprintf(s + off, cap - off, "pid p%d id %d asn %d loc %d\n", p, p,
		                        64500 + p % 2, p);
	for (int i = 0; i < GRID; i++) {
		if (y && i % 2 == 0) {
			off += (size_t)snprintf(s + off, cap - off, "prefix p8 10.%d.0.0/16\n", i);
			off += (size_t)snprintf(s + off, cap - off, "prefix p8 fd00:%x::/31\n",
			                        i & ~1);
			continue;
		}
		for (int j = 0; j < GRID; j++)
			off += (size_t)snprintf(s + off, cap - off, "prefix p%d 10.%d.%d.0/24\n",
			                        (i + j + (y ? 3 : 0)) % 7 + 1, i, j);
		if (!y || i % 2 == 1)
			off += (size_t)snprintf(s + off, cap - off, "prefix p%d fd00:%x::/32\n",
			                        (i + (y ? 2 : 0)) % 7 + 1, i);
	}
	return s;
}

static void test_reload_while_looking_up(void **state)
{
	struct tries *t = *state;
	char *tx = grid_map(false), *ty = grid_map(true);
	struct itr_netmap *x = parse(tx), *y = parse(ty);
	free(tx);
	free(ty);
	struct itr_netmap_sync_stats st;
	assert_int_equal(itr_netmap_sync_bpf(NULL, x, t->v4, t->v6, &st), 0);
	assert_tries_equal(t, x);
	/* Every probed address is covered by both maps. */
	for (int i = 0; i < GRID; i++)
		for (int j = 0; j < GRID; j++) {
			uint8_t a[4] = {10, (uint8_t)i, (uint8_t)j, 9};
			assert_non_null(itr_netmap_lookup(x, 4, a));
			assert_non_null(itr_netmap_lookup(y, 4, a));
			uint8_t a6[16] = {0xfd, 0, 0, (uint8_t)i, [15] = 1};
			assert_non_null(itr_netmap_lookup(x, 6, a6));
			assert_non_null(itr_netmap_lookup(y, 6, a6));
		}

	struct prober pr = {.fd4 = t->v4, .fd6 = t->v6};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, probe, &pr), 0);
	size_t deleted = 0;
	for (int round = 0; round < 60; round++) {
		bool to_y = round % 2 == 0;
		assert_int_equal(itr_netmap_sync_bpf(to_y ? x : y, to_y ? y : x, t->v4, t->v6, &st),
		                 0);
		deleted += st.deleted;
	}
	atomic_store(&pr.stop, true);
	pthread_join(th, NULL);
	assert_tries_equal(t, x);
	assert_true(deleted > 0);
	assert_true(atomic_load(&pr.lookups) > 0);
	fprintf(stderr, "reload-while-looking-up: %lu lookups, %lu misses, %zu deletes\n",
	        atomic_load(&pr.lookups), atomic_load(&pr.misses), deleted);
	assert_int_equal(atomic_load(&pr.misses), 0);
	itr_netmap_unref(x);
	itr_netmap_unref(y);
}

/* ---- a trie near or past its capacity ---------------------------------- */

static void small_tries(struct tries *t, uint32_t cap4, uint32_t cap6)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	t->v4 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_small_v4", sizeof(struct itr_lpm_v4_key),
	                       sizeof(struct itr_pid_info), cap4, &opts);
	t->v6 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_small_v6", sizeof(struct itr_lpm_v6_key),
	                       sizeof(struct itr_pid_info), cap6, &opts);
	assert_true(t->v4 >= 0 && t->v6 >= 0);
}

/* A previous run filled the trie to the brim (an oversized map, another
 * program): a small map must still go in, which it cannot if every add
 * has to fit before the first delete. */
static void test_full_trie_takes_a_small_map(void **state)
{
	(void)state;
	struct tries t;
	small_tries(&t, 8, 8);
	char cidr[32];
	for (int i = 0; i < 8; i++) {
		snprintf(cidr, sizeof(cidr), "192.168.%d.0/24", i);
		put4(t.v4, cidr, 99);
	}
	struct itr_netmap *a = parse(MAP_A);
	struct itr_netmap_sync_stats st;
	assert_int_equal(itr_netmap_sync_bpf(NULL, a, t.v4, t.v6, &st), 0);
	assert_tries_equal(&t, a);
	assert_int_equal(st.deleted, 8);
	itr_netmap_unref(a);
	close(t.v4);
	close(t.v6);
}

/* A map with more prefixes of a family than its trie holds is refused
 * before anything is written: the tries keep what they held. */
static void test_oversized_map_writes_nothing(void **state)
{
	(void)state;
	struct tries t;
	small_tries(&t, 4, 16);
	struct itr_netmap *small = parse("pid a id 1 asn 1\nprefix a 10.0.0.0/8 fd00::/8\n");
	struct itr_netmap *a = parse(MAP_A); /* 6 IPv4 prefixes */
	struct itr_netmap_sync_stats st;
	assert_int_equal(itr_netmap_sync_bpf(NULL, small, t.v4, t.v6, &st), 0);
	assert_int_equal(itr_netmap_sync_bpf(small, a, t.v4, t.v6, &st), -E2BIG);
	assert_tries_equal(&t, small);
	char why[256] = "";
	assert_false(itr_netmap_fits(a, 4, 16, why, sizeof(why)));
	assert_non_null(strstr(why, "6 IPv4 prefixes"));
	assert_non_null(strstr(why, "at most 4"));
	assert_true(itr_netmap_fits(a, 6, 4, why, sizeof(why)));
	itr_netmap_unref(small);
	itr_netmap_unref(a);
	close(t.v4);
	close(t.v6);
}

/* The trie writer the route follower uses: ops in the order given. */
static void test_write_ops(void **state)
{
	struct tries *t = *state;
	struct itr_netmap *a = parse(MAP_A), *b = parse(MAP_B);
	struct itr_netmap_kentry *ea, *eb;
	size_t na, nb;
	assert_int_equal(itr_netmap_kernel_entries(a, &ea, &na), 0);
	assert_int_equal(itr_netmap_kernel_entries(b, &eb, &nb), 0);
	struct itr_netmap_op *ops;
	size_t nops;
	assert_int_equal(itr_netmap_diff(NULL, 0, ea, na, &ops, &nops), 0);
	assert_int_equal(itr_netmap_write_ops(t->v4, t->v6, ops, nops), 0);
	free(ops);
	assert_tries_equal(t, a);
	assert_int_equal(itr_netmap_diff(ea, na, eb, nb, &ops, &nops), 0);
	assert_int_equal(itr_netmap_write_ops(t->v4, t->v6, ops, nops), 0);
	free(ops);
	assert_tries_equal(t, b);
	free(ea);
	free(eb);
	itr_netmap_unref(a);
	itr_netmap_unref(b);
}

/* A write that fails half way (here: the IPv6 trie refuses writes, after
 * the IPv4 trie took its share) leaves the tries as they were, not half
 * the new map. */
static void test_failed_write_rolls_back(void **state)
{
	(void)state;
	LIBBPF_OPTS(bpf_map_create_opts, rw, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, ro, .map_flags = BPF_F_NO_PREALLOC | BPF_F_RDONLY);
	struct tries t;
	t.v4 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_rb_v4", sizeof(struct itr_lpm_v4_key),
	                      sizeof(struct itr_pid_info), 64, &rw);
	t.v6 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_rb_v6", sizeof(struct itr_lpm_v6_key),
	                      sizeof(struct itr_pid_info), 64, &ro);
	assert_true(t.v4 >= 0 && t.v6 >= 0);
	put4(t.v4, "172.16.0.0/12", 77);     /* what a previous run left */
	struct itr_netmap *a = parse(MAP_A); /* IPv4 and IPv6 prefixes */
	struct itr_netmap_sync_stats st;
	int rc = itr_netmap_sync_bpf(NULL, a, t.v4, t.v6, &st);
	assert_true(rc < 0);
	struct itr_netmap_kentry *e;
	size_t n;
	assert_int_equal(itr_netmap_dump_bpf(t.v4, -1, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].prefix.len, 12);
	assert_int_equal(e[0].info.pid, 77);
	free(e);
	itr_netmap_unref(a);
	close(t.v4);
	close(t.v6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_load_and_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_path_removes_junk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_while_looking_up, setup, teardown),
	    cmocka_unit_test(test_full_trie_takes_a_small_map),
	    cmocka_unit_test(test_oversized_map_writes_nothing),
	    cmocka_unit_test_setup_teardown(test_write_ops, setup, teardown),
	    cmocka_unit_test(test_failed_write_rolls_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
