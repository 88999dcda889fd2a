/* test_netmap.c - the network map: every validation error with its line (text)
 * or JSON path (ALTO), lookups (longest prefix, IPv6, default, unknown),
 * p-distance and class, vtag stability, text/ALTO equivalence of the example
 * network, the kernel diff's order, and the current-map refcounting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "netmap.h"

static const char EXAMPLE[] = "network-map example-networkmap\n"
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

static struct itr_netmap *parse(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "t.netmap", &err);
	if (!m) {
		char buf[700];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		print_error("unexpected parse error: %s\n", buf);
	}
	return m;
}

static struct itr_netmap *parse_json(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_alto(text, strlen(text), "t.json", &err);
	if (!m) {
		char buf[700];
		itr_netmap_error_format(&err, buf, sizeof(buf));
		print_error("unexpected parse error: %s\n", buf);
	}
	return m;
}

/* The text must fail at `line` with a reason containing `needle`. */
static void text_fails(const char *text, int line, const char *needle)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "bad.netmap", &err);
	if (m) {
		itr_netmap_unref(m);
		fail_msg("accepted: %s", text);
	}
	if (err.line != line || !strstr(err.reason, needle))
		fail_msg("want line %d '%s', got line %d col %d '%s'", line, needle, err.line,
		         err.column, err.reason);
	assert_string_equal(err.file, "bad.netmap");
}

static const char PIDS[] = "pid a id 1 asn 1 loc 1\n" /* line 1 */
                           "pid b id 2 asn 1 loc 2\n" /* line 2 */
                           "pid c id 3 asn 2\n";      /* line 3 */

static void with_pids(char *buf, size_t len, const char *rest)
{
	snprintf(buf, len, "%s%s", PIDS, rest);
}

static void test_errors_prefixes(void **state)
{
	(void)state;
	char buf[1024];
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.0/8\nprefix b 10.1.0.0/16 10.0.0.0/8\n");
	text_fails(buf, 5, "already belongs to PID 'a'");
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.0/8\n\n# c\nprefix a 10.0.0.0/8\n");
	text_fails(buf, 7, "listed twice");
	with_pids(buf, sizeof(buf), "prefix a 10.0.0/8\n");
	text_fails(buf, 4, "bad IPv4 address");
	with_pids(buf, sizeof(buf), "prefix a fd00::1::/64\n");
	text_fails(buf, 4, "bad IPv6 address");
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.0\n");
	text_fails(buf, 4, "no '/length'");
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.0/x\n");
	text_fails(buf, 4, "bad prefix length");
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.1/8\n");
	text_fails(buf, 4, "host bits set");
	with_pids(buf, sizeof(buf), "prefix a fd00::1/64\n");
	text_fails(buf, 4, "host bits set");
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.0/33\n");
	text_fails(buf, 4, "out of range 0..32");
	with_pids(buf, sizeof(buf), "prefix a fd00::/129\n");
	text_fails(buf, 4, "out of range 0..128");
	with_pids(buf, sizeof(buf), "prefix a\n");
	text_fails(buf, 4, "missing prefix");
}

static void test_errors_unknown_pid(void **state)
{
	(void)state;
	char buf[1024];
	with_pids(buf, sizeof(buf), "prefix a 10.0.0.0/8\nprefix zz 11.0.0.0/8\n");
	text_fails(buf, 5, "unknown PID 'zz'");
	with_pids(buf, sizeof(buf), "cost a b 3\n\ncost a nope 3\n");
	text_fails(buf, 6, "unknown PID 'nope'");
	with_pids(buf, sizeof(buf), "default-pid ghost\n");
	text_fails(buf, 4, "unknown PID 'ghost'");
	/* Forward references are fine: the PID may be declared later. */
	struct itr_netmap *m = parse("prefix late 10.0.0.0/8\npid late id 5 asn 1\n");
	assert_non_null(m);
	assert_string_equal(itr_netmap_lookup_str(m, "10.1.2.3")->name, "late");
	itr_netmap_unref(m);
}

static void test_errors_names(void **state)
{
	(void)state;
	char buf[1024];
	char longname[80];
	memset(longname, 'x', 65);
	longname[65] = '\0';
	snprintf(buf, sizeof(buf), "\npid %s id 1 asn 1\n", longname);
	text_fails(buf, 2, "longer than 64");
	memset(longname, 'x', 64);
	longname[64] = '\0';
	snprintf(buf, sizeof(buf), "pid %s id 1 asn 1\n", longname);
	struct itr_netmap *m = parse(buf);
	assert_non_null(m);
	itr_netmap_unref(m);
	text_fails("pid a!b id 1 asn 1\n", 1, "character '!' not allowed");
	text_fails("pid ok id 1 asn 1\npid a.b id 2 asn 1\n", 2, "'.' is reserved");
	text_fails("network-map bad.id\n", 1, "bad resource id");
	with_pids(buf, sizeof(buf), "pid b id 9 asn 1\n");
	text_fails(buf, 4, "duplicate PID 'b' (first declared at line 2)");
	with_pids(buf, sizeof(buf), "pid d id 2 asn 1\n");
	text_fails(buf, 4, "PID id 2 already used by PID 'b'");
	text_fails("pid z id 0 asn 1\n", 1, "out of range 1..");
	text_fails("pid z id 4294967295 asn 1\n", 1, "out of range 1..");
	text_fails("pid z id 4294967296 asn 1\n", 1, "out of range");
}

static void test_errors_costs_and_fields(void **state)
{
	(void)state;
	char buf[1024];
	with_pids(buf, sizeof(buf), "cost a b -5\n");
	text_fails(buf, 4, "negative cost");
	with_pids(buf, sizeof(buf), "cost a b cheap\n");
	text_fails(buf, 4, "is not a number");
	with_pids(buf, sizeof(buf), "cost a b\n");
	text_fails(buf, 4, "missing cost");
	with_pids(buf, sizeof(buf), "cost a b 1 2\n");
	text_fails(buf, 4, "unexpected '2'");
	with_pids(buf, sizeof(buf), "cost a b 1\ncost a b 2\n");
	text_fails(buf, 5, "given twice");
	text_fails("pid a asn 1\n", 1, "missing 'id N'");
	text_fails("pid a id 1\n", 1, "missing 'asn N'");
	text_fails("pid a id 1 asn\n", 1, "missing asn");
	text_fails("pid a id 1 asn 1 color 3\n", 1, "unknown PID attribute 'color'");
	text_fails("pid a id 1 asn 1 asn 2\n", 1, "given twice");
	text_fails("pid\n", 1, "missing PID name");
	text_fails("\n\n  route a 10.0.0.0/8\n", 3, "unknown statement 'route'");
	text_fails("tier same-pid 1\ntier same-pid 2\n", 2, "given twice");
	text_fails("tier nearby 3\n", 1, "unknown tier");
	text_fails("network-map a\nnetwork-map b\n", 2, "given twice");
	with_pids(buf, sizeof(buf), "default-pid a\ndefault-pid b\n");
	text_fails(buf, 5, "given twice");
	with_pids(buf, sizeof(buf), "prefix c 0.0.0.0/0\ndefault-pid a\n");
	text_fails(buf, 5, "conflicts with the explicit prefix 0.0.0.0/0");
}

static void test_errors_nul_byte(void **state)
{
	(void)state;
	static const char text[] = "pid a id 1 asn 1\npid b\0 id 2 asn 1\n";
	struct itr_netmap_error err;
	assert_null(itr_netmap_parse_text(text, sizeof(text) - 1, "n", &err));
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 6);
	assert_non_null(strstr(err.reason, "NUL byte"));
}

static void test_errors_tiers(void **state)
{
	(void)state;
	text_fails("tier same-pid 1\ntier same-loc 20\ntier same-as 10\n", 3,
	           "tier same-as (10) is below tier same-loc (20)");
	/* Against a default: same-as defaults to 10. */
	text_fails("\ntier same-loc 50\n", 2, "tier same-as (10) is below tier same-loc (50)");
	text_fails("tier other-as 4294967295\n", 1, "too large");
	/* Equal tiers are allowed (non-decreasing). */
	struct itr_netmap *m = parse("tier same-pid 3\ntier same-loc 3\ntier same-as 3\n"
	                             "tier other-as 3\n");
	assert_non_null(m);
	itr_netmap_unref(m);
}

static void test_error_columns_and_format(void **state)
{
	(void)state;
	struct itr_netmap_error err;
	const char *text = "pid a id 1 asn 1\nprefix a  10.0.0.0/8   10.0.0.1/24\n";
	assert_null(itr_netmap_parse_text(text, strlen(text), "maps/x.netmap", &err));
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 24);
	char buf[600];
	itr_netmap_error_format(&err, buf, sizeof(buf));
	assert_non_null(strstr(buf, "maps/x.netmap:2:24: bad prefix '10.0.0.1/24'"));
}

static void test_file_limits(void **state)
{
	(void)state;
	char path[] = "/tmp/test_netmap_big_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	/* Sparse: no disk space is used. */
	assert_int_equal(ftruncate(fd, (off_t)(257u << 20)), 0);
	close(fd);
	struct itr_netmap_error err;
	assert_null(itr_netmap_load_file(path, &err));
	assert_non_null(strstr(err.reason, "limit is 256 MiB"));
	unlink(path);
	assert_null(itr_netmap_load_file("/nonexistent/x.netmap", &err));
	assert_non_null(strstr(err.reason, "cannot open"));
}

/* A FIFO at the map path (nobody writing) must be refused at once, not
 * block the reloading thread in open(): SIGALRM kills the test if it does. */
static void test_fifo_refused_without_blocking(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_netmap_fifo_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/map", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	struct itr_netmap_error err;
	alarm(5);
	assert_null(itr_netmap_load_file(path, &err));
	alarm(0);
	assert_non_null(strstr(err.reason, "not a regular file"));
	unlink(path);
	rmdir(dir);
}

static void test_lookups(void **state)
{
	(void)state;
	struct itr_netmap *m = parse(EXAMPLE);
	assert_non_null(m);
	assert_string_equal(itr_netmap_resource_id(m), "example-networkmap");
	assert_int_equal(itr_netmap_pid_count(m), 6);
	assert_int_equal(itr_netmap_prefix_count(m), 12);
	assert_string_equal(itr_netmap_lookup_str(m, "10.20.0.1")->name, "b-core");
	assert_string_equal(itr_netmap_lookup_str(m, "10.20.127.255")->name, "b-core");
	assert_string_equal(itr_netmap_lookup_str(m, "10.20.128.0")->name, "b-edge");
	assert_string_equal(itr_netmap_lookup_str(m, "10.20.255.255")->name, "b-edge");
	assert_string_equal(itr_netmap_lookup_str(m, "10.10.3.9")->name, "a-metro1-dc");
	assert_string_equal(itr_netmap_lookup_str(m, "fd00:20::1")->name, "b-core");
	assert_string_equal(itr_netmap_lookup_str(m, "fd00:20:7fff:ffff::1")->name, "b-core");
	assert_string_equal(itr_netmap_lookup_str(m, "fd00:20:8000::1")->name, "b-edge");
	assert_string_equal(itr_netmap_lookup_str(m, "fd00:10:2:ffff::")->name, "a-metro2");
	assert_null(itr_netmap_lookup_str(m, "10.21.0.1"));
	assert_null(itr_netmap_lookup_str(m, "192.0.2.1"));
	assert_null(itr_netmap_lookup_str(m, "fd00:21::1"));
	assert_null(itr_netmap_lookup_str(m, "not-an-ip"));
	assert_null(itr_netmap_default_pid(m));
	uint8_t a[4] = {10, 30, 1, 1};
	assert_string_equal(itr_netmap_lookup(m, 4, a)->name, "c-all");
	assert_null(itr_netmap_lookup(m, 5, a));

	const struct itr_pid *p = itr_netmap_pid_by_name(m, "b-edge");
	assert_non_null(p);
	assert_int_equal(p->id, 11);
	assert_int_equal(p->asn, 64501);
	assert_int_equal(p->loc, 11);
	assert_int_equal(p->nprefixes, 2);
	assert_int_equal(p->prefixes[0].family, 4);
	assert_int_equal(p->prefixes[0].len, 17);
	assert_int_equal(p->prefixes[1].family, 6);
	assert_int_equal(p->prefixes[1].len, 33);
	assert_ptr_equal(itr_netmap_pid_by_id(m, 11), p);
	assert_null(itr_netmap_pid_by_id(m, 12));
	assert_null(itr_netmap_pid_by_name(m, "b-edg"));
	/* pid_at is in name order. */
	for (size_t i = 1; i < itr_netmap_pid_count(m); i++)
		assert_true(
		    strcmp(itr_netmap_pid_at(m, i - 1)->name, itr_netmap_pid_at(m, i)->name) < 0);
	assert_null(itr_netmap_pid_at(m, 6));
	itr_netmap_unref(m);
}

static void test_default_pid(void **state)
{
	(void)state;
	struct itr_netmap *m = parse("pid a id 1 asn 1\nprefix a 10.0.0.0/8\n"
	                             "pid rest id 2 asn 9\ndefault-pid rest\n");
	assert_non_null(m);
	assert_string_equal(itr_netmap_lookup_str(m, "10.0.0.1")->name, "a");
	assert_string_equal(itr_netmap_lookup_str(m, "11.0.0.1")->name, "rest");
	assert_string_equal(itr_netmap_lookup_str(m, "2001:db8::1")->name, "rest");
	assert_string_equal(itr_netmap_default_pid(m)->name, "rest");

	struct itr_netmap_kentry *e;
	size_t n;
	assert_int_equal(itr_netmap_kernel_entries(m, &e, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(e[0].prefix.family, 4);
	assert_int_equal(e[0].prefix.len, 0);
	assert_int_equal(e[0].info.pid, 2);
	assert_int_equal(e[0].info.flags, ITR_PID_F_DEFAULT);
	assert_int_equal(e[1].prefix.len, 8);
	assert_int_equal(e[1].info.pid, 1);
	assert_int_equal(e[1].info.flags, 0);
	assert_int_equal(e[2].prefix.family, 6);
	assert_int_equal(e[2].prefix.len, 0);
	assert_int_equal(e[2].info.flags, ITR_PID_F_DEFAULT);
	free(e);
	itr_netmap_unref(m);

	/* An explicit /0 is a catch-all too (no default flag). */
	m = parse("pid a id 1 asn 1\nprefix a 0.0.0.0/0 10.0.0.0/8\npid b id 2 asn 1\n"
	          "prefix b 10.1.0.0/16\n");
	assert_non_null(m);
	assert_string_equal(itr_netmap_lookup_str(m, "99.0.0.1")->name, "a");
	assert_string_equal(itr_netmap_lookup_str(m, "10.1.0.1")->name, "b");
	assert_null(itr_netmap_lookup_str(m, "::1"));
	itr_netmap_unref(m);
}

static void test_longest_prefix_many_lengths(void **state)
{
	(void)state;
	/* Nested prefixes of every length along one address: the longest wins
	 * at each depth. */
	char *text = malloc(20000);
	size_t off = 0;
	off += (size_t)sprintf(text + off, "pid p0 id 1000 asn 1\nprefix p0 ::/0\n");
	for (int len = 1; len <= 128; len++) {
		struct in6_addr a;
		inet_pton(AF_INET6, "fd12:3456:789a:bcde:f012:3456:789a:bcde", &a);
		for (int bit = len; bit < 128; bit++)
			a.s6_addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
		char s[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &a, s, sizeof(s));
		off += (size_t)sprintf(text + off, "pid p%d id %d asn 1\nprefix p%d %s/%d\n", len,
		                       len, len, s, len);
	}
	struct itr_netmap *m = parse(text);
	free(text);
	assert_non_null(m);
	assert_string_equal(
	    itr_netmap_lookup_str(m, "fd12:3456:789a:bcde:f012:3456:789a:bcde")->name, "p128");
	assert_string_equal(
	    itr_netmap_lookup_str(m, "fd12:3456:789a:bcde:f012:3456:789a:bcdf")->name, "p127");
	assert_string_equal(itr_netmap_lookup_str(m, "fd12:3456:789a:bcde::")->name, "p64");
	assert_string_equal(itr_netmap_lookup_str(m, "fd12:3456:789a:bcdf::")->name, "p63");
	assert_string_equal(itr_netmap_lookup_str(m, "7d12::")->name, "p0");
	assert_string_equal(itr_netmap_lookup_str(m, "fd00::")->name, "p11");
	itr_netmap_unref(m);
}

/* Enough prefixes per length to use the top-16-bit index, checked against
 * a brute-force longest match. */
static void test_lookup_indexed_against_brute_force(void **state)
{
	(void)state;
	enum { N24 = 3000, N20 = 600, N28 = 400 };
	static struct itr_prefix pfx[N24 + N20 + N28];
	static uint32_t owner[N24 + N20 + N28];
	size_t cap = 200000, off = 0, n = 0;
	char *text = malloc(cap);
	for (int p = 1; p <= 5; p++)
		off += (size_t)snprintf(text + off, cap - off, "pid p%d id %d asn 1\n", p, p);
	for (int i = 0; i < N24 + N20 + N28; i++) {
		uint32_t a;
		unsigned len;
		if (i < N24) {
			a = 0x0a000000u | ((uint32_t)(i * 7919) % 65536) << 8;
			len = 24;
		} else if (i < N24 + N20) {
			a = 0x0a000000u | ((uint32_t)((i - N24) * 13) % 4096) << 12;
			len = 20;
		} else {
			a = 0x0a000000u | ((uint32_t)((i - N24 - N20) * 7919) % 65536) << 8 |
			    (uint32_t)(i % 16) << 4;
			len = 28;
		}
		pfx[n] = (struct itr_prefix){
		    .family = 4, .len = (uint8_t)len, .addr = {a >> 24, a >> 16, a >> 8, a}};
		owner[n] = (uint32_t)(i % 5) + 1;
		off +=
		    (size_t)snprintf(text + off, cap - off, "prefix p%u %u.%u.%u.%u/%u\n", owner[n],
		                     a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, len);
		n++;
	}
	struct itr_netmap *m = parse(text);
	free(text);
	assert_non_null(m);
	uint64_t seed = 88172645463325252ull;
	for (int k = 0; k < 20000; k++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		uint32_t a = 0x0a000000u | (uint32_t)(seed & 0xffffff);
		uint8_t b[4] = {a >> 24, a >> 16, a >> 8, a};
		int best = -1;
		for (size_t i = 0; i < n; i++) {
			uint32_t pa = (uint32_t)pfx[i].addr[0] << 24 |
			              (uint32_t)pfx[i].addr[1] << 16 |
			              (uint32_t)pfx[i].addr[2] << 8 | pfx[i].addr[3];
			uint32_t mask = ~0u << (32 - pfx[i].len);
			if ((a & mask) == pa && (best < 0 || pfx[i].len > pfx[best].len))
				best = (int)i;
		}
		const struct itr_pid *p = itr_netmap_lookup(m, 4, b);
		if (best < 0)
			assert_null(p);
		else
			assert_int_equal(p ? p->id : 0, owner[best]);
	}
	itr_netmap_unref(m);
}

static void test_costs_and_class(void **state)
{
	(void)state;
	struct itr_netmap *m = parse(EXAMPLE);
	assert_non_null(m);
	const struct itr_pid *m1 = itr_netmap_pid_by_name(m, "a-metro1");
	const struct itr_pid *m2 = itr_netmap_pid_by_name(m, "a-metro2");
	const struct itr_pid *dc = itr_netmap_pid_by_name(m, "a-metro1-dc");
	const struct itr_pid *core = itr_netmap_pid_by_name(m, "b-core");
	const struct itr_pid *edge = itr_netmap_pid_by_name(m, "b-edge");
	const struct itr_pid *c = itr_netmap_pid_by_name(m, "c-all");
	/* Explicit entries override tiers. */
	assert_int_equal(itr_netmap_cost(m, m1, m2), 7);
	assert_true(itr_netmap_cost_is_explicit(m, m1, m2));
	assert_int_equal(itr_netmap_cost(m, m1, core), 50);
	assert_int_equal(itr_netmap_cost(m, core, m1), 50);
	assert_int_equal(itr_netmap_explicit_cost_count(m), 4);
	/* The four tiers. */
	assert_int_equal(itr_netmap_cost(m, c, c), 1);
	assert_int_equal(itr_netmap_cost(m, m1, dc), 5);
	assert_int_equal(itr_netmap_cost(m, core, edge), 10);
	assert_int_equal(itr_netmap_cost(m, m2, core), 100);
	assert_false(itr_netmap_cost_is_explicit(m, m2, core));
	assert_false(itr_netmap_cost_is_explicit(m, m1, NULL));
	/* An unmatched end costs other-as + 1. */
	assert_int_equal(itr_netmap_cost(m, NULL, c), 101);
	assert_int_equal(itr_netmap_cost(m, c, NULL), 101);
	assert_int_equal(itr_netmap_tier(m, ITR_TIER_SAME_LOC), 5);

	assert_int_equal(itr_netmap_class(c, c), ITR_CLASS_INTRA_PID);
	assert_int_equal(itr_netmap_class(m1, dc), ITR_CLASS_INTRA_LOC);
	assert_int_equal(itr_netmap_class(m1, m2), ITR_CLASS_INTRA_AS);
	assert_int_equal(itr_netmap_class(core, edge), ITR_CLASS_INTRA_AS);
	assert_int_equal(itr_netmap_class(edge, c), ITR_CLASS_INTER_AS);
	assert_int_equal(itr_netmap_class(NULL, c), ITR_CLASS_UNKNOWN);
	assert_int_equal(itr_netmap_class(c, NULL), ITR_CLASS_UNKNOWN);
	itr_netmap_unref(m);

	/* loc 0 is "no LOC": two PIDs without one are same-AS, not same-LOC. */
	m = parse("pid x id 1 asn 7\npid y id 2 asn 7\ntier same-loc 4\ntier same-as 8\n");
	assert_non_null(m);
	assert_int_equal(
	    itr_netmap_class(itr_netmap_pid_by_name(m, "x"), itr_netmap_pid_by_name(m, "y")),
	    ITR_CLASS_INTRA_AS);
	assert_int_equal(
	    itr_netmap_cost(m, itr_netmap_pid_by_name(m, "x"), itr_netmap_pid_by_name(m, "y")), 8);
	/* Default tiers when none are given. */
	assert_int_equal(itr_netmap_tier(m, ITR_TIER_SAME_PID), 1);
	assert_int_equal(itr_netmap_tier(m, ITR_TIER_OTHER_AS), 100);
	itr_netmap_unref(m);
}

static char *vtag_of(const char *text)
{
	struct itr_netmap *m = parse(text);
	assert_non_null(m);
	char *v = strdup(itr_netmap_vtag(m));
	itr_netmap_unref(m);
	return v;
}

/* Replace the first occurrence of `from` in EXAMPLE with `to`. */
static char *edited(const char *from, const char *to)
{
	const char *at = strstr(EXAMPLE, from);
	assert_non_null(at);
	size_t len = strlen(EXAMPLE) - strlen(from) + strlen(to) + 1;
	char *out = malloc(len);
	snprintf(out, len, "%.*s%s%s", (int)(at - EXAMPLE), EXAMPLE, to, at + strlen(from));
	return out;
}

static void test_vtag(void **state)
{
	(void)state;
	char *base = vtag_of(EXAMPLE);
	assert_true(strlen(base) > 0 && strlen(base) <= 64);
	for (const char *c = base; *c; c++)
		assert_true(*c >= 0x21 && *c <= 0x7e);

	/* Same content, different layout: statement order, comments, blanks,
	 * prefixes split across lines and reordered. */
	const char *reformatted = "# reordered copy\n"
	                          "cost b-core a-metro1 50\n"
	                          "prefix b-edge   fd00:20:8000::/33\n"
	                          "\tpid c-all id 20 asn 64502 loc 20   # C\n"
	                          "prefix c-all fd00:30::/32 10.30.0.0/16\n"
	                          "cost a-metro1 b-core 50\r\n"
	                          "pid b-edge loc 11 asn 64501 id 11\n"
	                          "prefix b-edge 10.20.128.0/17\n"
	                          "tier other-as 100\n"
	                          "pid b-core id 10 asn 64501 loc 10\n"
	                          "prefix b-core fd00:20::/32\n"
	                          "prefix b-core 10.20.0.0/16\n"
	                          "pid a-metro1-dc id 3 asn 64500 loc 1\n"
	                          "prefix a-metro1-dc 10.10.3.0/24 fd00:10:3::/48\n"
	                          "cost a-metro2 a-metro1 7\n"
	                          "pid a-metro2 id 2 asn 64500 loc 2\n"
	                          "prefix a-metro2 fd00:10:2::/48 10.10.2.0/24\n"
	                          "pid a-metro1 id 1 asn 64500 loc 1\n"
	                          "prefix a-metro1 10.10.1.0/24 fd00:10:1::/48\n"
	                          "cost a-metro1 a-metro2 7\n"
	                          "network-map example-networkmap\n";
	char *v = vtag_of(reformatted);
	assert_string_equal(v, base);
	free(v);
	/* Explicit default tiers equal omitted ones. */
	char *no_tiers = edited("tier same-pid 1\ntier same-loc 5\ntier same-as 10\n"
	                        "tier other-as 100\n",
	                        "");
	v = vtag_of(no_tiers);
	assert_string_equal(v, base);
	free(v);
	free(no_tiers);

	/* Any content change changes it. */
	static const char *const changes[][2] = {
	    {"network-map example-networkmap", "network-map other-map"},
	    {"tier same-loc 5", "tier same-loc 6"},
	    {"pid a-metro1 id 1 ", "pid a-metro1 id 4 "},
	    {"asn 64502 loc 20", "asn 64503 loc 20"},
	    {"asn 64502 loc 20", "asn 64502 loc 21"},
	    {"asn 64502 loc 20", "asn 64502"},
	    {"10.30.0.0/16", "10.30.0.0/15"},
	    {"10.30.0.0/16", "10.31.0.0/16"},
	    {"fd00:30::/32", "fd00:31::/32"},
	    {"10.30.0.0/16", "10.30.0.0/16 10.40.0.0/16"},
	    {"cost b-core a-metro1 50", "cost b-core a-metro1 51"},
	    {"cost b-core a-metro1 50", "cost b-core a-metro2 50"},
	    {"cost b-core a-metro1 50\n", ""},
	    {"cost b-core a-metro1 50", "cost b-core a-metro1 50\ndefault-pid c-all"},
	    {"prefix c-all 10.30.0.0/16 fd00:30::/32\n", "prefix b-core 10.30.0.0/16 "
	                                                 "fd00:30::/32\n"},
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		char *t = edited(changes[i][0], changes[i][1]);
		v = vtag_of(t);
		if (strcmp(v, base) == 0)
			fail_msg("vtag unchanged after '%s' -> '%s'", changes[i][0], changes[i][1]);
		free(v);
		free(t);
	}
	/* Renaming a PID changes it too. */
	char *renamed = malloc(sizeof(EXAMPLE));
	memcpy(renamed, EXAMPLE, sizeof(EXAMPLE));
	for (char *p = renamed; (p = strstr(p, "c-all")); p++)
		p[0] = 'd';
	v = vtag_of(renamed);
	assert_string_not_equal(v, base);
	free(v);
	free(renamed);
	free(base);
}

static char *slurp(const char *rel)
{
	const char *root = getenv("ITRACKER_ROOT");
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run from the repository root or set ITRACKER_ROOT)",
		         path);
	char *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void assert_same_content(const struct itr_netmap *a, const struct itr_netmap *b)
{
	assert_string_equal(itr_netmap_resource_id(a), itr_netmap_resource_id(b));
	assert_int_equal(itr_netmap_pid_count(a), itr_netmap_pid_count(b));
	for (size_t i = 0; i < itr_netmap_pid_count(a); i++) {
		const struct itr_pid *p = itr_netmap_pid_at(a, i), *q = itr_netmap_pid_at(b, i);
		assert_string_equal(p->name, q->name);
		assert_int_equal(p->id, q->id);
		assert_int_equal(p->asn, q->asn);
		assert_int_equal(p->loc, q->loc);
		assert_int_equal(p->nprefixes, q->nprefixes);
		for (size_t k = 0; k < p->nprefixes; k++)
			assert_memory_equal(&p->prefixes[k], &q->prefixes[k],
			                    sizeof(struct itr_prefix));
		for (size_t j = 0; j < itr_netmap_pid_count(a); j++) {
			const struct itr_pid *p2 = itr_netmap_pid_at(a, j);
			const struct itr_pid *q2 = itr_netmap_pid_at(b, j);
			assert_int_equal(itr_netmap_cost(a, p, p2), itr_netmap_cost(b, q, q2));
			assert_int_equal(itr_netmap_cost_is_explicit(a, p, p2),
			                 itr_netmap_cost_is_explicit(b, q, q2));
		}
	}
	for (int t = 0; t < ITR_TIER_MAX; t++)
		assert_int_equal(itr_netmap_tier(a, t), itr_netmap_tier(b, t));
	assert_string_equal(itr_netmap_vtag(a), itr_netmap_vtag(b));
}

static void test_text_and_alto_examples_agree(void **state)
{
	(void)state;
	char *text = slurp("maps/example.netmap");
	char *json = slurp("maps/example-alto.json");
	struct itr_netmap *t = parse(text), *j = parse_json(json), *inline_map = parse(EXAMPLE);
	assert_non_null(t);
	assert_non_null(j);
	assert_same_content(t, j);
	assert_same_content(t, inline_map);
	/* The example's tag is the vtag of its content. */
	assert_non_null(strstr(json, itr_netmap_vtag(t)));
	itr_netmap_unref(t);
	itr_netmap_unref(j);
	itr_netmap_unref(inline_map);
	free(text);
	free(json);

	struct itr_netmap_error err;
	char path[512];
	const char *root = getenv("ITRACKER_ROOT");
	snprintf(path, sizeof(path), "%s/maps/example-alto.json", root ? root : ".");
	struct itr_netmap *f = itr_netmap_load_file(path, &err);
	assert_non_null(f);
	assert_int_equal(itr_netmap_pid_count(f), 6);
	itr_netmap_unref(f);
}

/* ---- ALTO JSON ---------------------------------------------------------- */

static const char JSON_HEAD[] = "{\"network-map\": {\"meta\": {\"vtag\": "
                                "{\"resource-id\": \"nm\", \"tag\": \"t1\"}},"
                                "\"network-map\": {";

static void json_fails(const char *body, int line, const char *needle)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_alto(body, strlen(body), "bad.json", &err);
	if (m) {
		itr_netmap_unref(m);
		fail_msg("accepted: %s", body);
	}
	if (err.line != line || !strstr(err.reason, needle))
		fail_msg("want line %d '%s', got line %d col %d '%s'", line, needle, err.line,
		         err.column, err.reason);
}

static char *json_doc(const char *pids, const char *rest)
{
	size_t len = strlen(JSON_HEAD) + strlen(pids) + strlen(rest) + 16;
	char *s = malloc(len);
	snprintf(s, len, "%s%s}}%s}", JSON_HEAD, pids, rest);
	return s;
}

static void check_json(const char *pids, const char *rest, const char *needle)
{
	char *doc = json_doc(pids, rest);
	json_fails(doc, 0, needle);
	free(doc);
}

static const char COSTMETA[] = ",\"cost-map\": {\"meta\": {\"dependent-vtags\": "
                               "[{\"resource-id\": \"nm\", \"tag\": \"t1\"}], \"cost-type\": "
                               "{\"cost-mode\": \"numerical\", \"cost-metric\": \"routingcost\"}},"
                               "\"cost-map\": ";

static void test_alto_errors(void **state)
{
	(void)state;
	json_fails("{\n\"network-map\": {\n  \"meta\": ,\n}}", 3, "JSON:");
	json_fails("{\"network-map\": 1,\n\"network-map\": 2}", 2, "duplicate object key");
	json_fails("[]", 0, "top level must be an object");
	json_fails("{}", 0, "network-map: missing field");
	json_fails("{\"network-map\": {\"network-map\": {}}}", 0,
	           "network-map.meta: missing field");
	check_json("\"a\": {\"ipv4\": [\"10.0.0.0/8\", \"11.0.0.0/8\", \"12.0.0.1/8\"]}", "",
	           "network-map.network-map.a.ipv4[2]: bad prefix '12.0.0.1/8': host bits set");
	check_json("\"a\": {\"ipv4\": [\"10.0.0.0/33\"]}", "",
	           "network-map.network-map.a.ipv4[0]: bad prefix '10.0.0.0/33'");
	check_json("\"a\": {\"ipv6\": [\"10.0.0.0/8\"]}", "",
	           "network-map.network-map.a.ipv6[0]: IPv4 prefix '10.0.0.0/8' in the ipv6 list");
	check_json("\"a\": {\"ipv4\": \"10.0.0.0/8\"}", "",
	           "network-map.network-map.a.ipv4: must be an array");
	check_json("\"a\": {\"ipv4\": [\"10.0.0.0/8\"]}, \"b\": {\"ipv4\": [\"11.0.0.0/8\", "
	           "\"10.0.0.0/8\"]}",
	           "",
	           "network-map.network-map.b.ipv4[1]: prefix 10.0.0.0/8 already belongs to PID "
	           "'a' (network-map.network-map.a.ipv4[0])");
	check_json("\"a.b\": {}", "", "network-map.network-map.a.b: bad PID name");
	check_json("\"a\": {}", ",\"itracker\": {\"pids\": {\"a\": {\"id\": 0}}}",
	           "itracker.pids.a.id: id 0 out of range");
	check_json("\"a\": {}, \"b\": {}",
	           ",\"itracker\": {\"pids\": {\"a\": {\"id\": 3}, \"b\": {\"id\": 3}}}",
	           "itracker.pids.b.id: id 3 already used by PID 'a'");
	check_json("\"a\": {}", ",\"itracker\": {\"pids\": {\"zz\": {\"id\": 3}}}",
	           "itracker.pids.zz: PID not in the network map");
	check_json("\"a\": {}", ",\"itracker\": {\"pids\": {\"a\": {\"asid\": -1}}}",
	           "itracker.pids.a.asid: negative value");
	check_json("\"a\": {}", ",\"itracker\": {\"default-pid\": \"zz\"}",
	           "itracker.default-pid: unknown PID 'zz'");
	check_json("\"a\": {}", ",\"itracker\": {\"tiers\": {\"same-as\": 1}}",
	           "itracker.tiers: tier same-as (1) is below tier same-loc (5)");
	check_json("\"a\": {}", ",\"itracker\": {\"tiers\": {\"far\": 1}}",
	           "itracker.tiers.far: unknown tier");

	char rest[1024];
	snprintf(rest, sizeof(rest), "%s{\"a\": {\"zz\": 1}}}", COSTMETA);
	check_json("\"a\": {}", rest, "cost-map.cost-map.a.zz: unknown PID 'zz'");
	snprintf(rest, sizeof(rest), "%s{\"a\": {\"a\": -3}}}", COSTMETA);
	check_json("\"a\": {}", rest, "cost-map.cost-map.a.a: negative value");
	snprintf(rest, sizeof(rest), "%s{\"a\": {\"a\": 1.5}}}", COSTMETA);
	check_json("\"a\": {}", rest, "cost-map.cost-map.a.a: 1.5 is not an integer");
	snprintf(rest, sizeof(rest), "%s{\"a\": {\"a\": \"1\"}}}", COSTMETA);
	check_json("\"a\": {}", rest, "cost-map.cost-map.a.a: must be a non-negative integer");
	snprintf(rest, sizeof(rest), "%s{\"a\": {\"a\": 4294967296}}}", COSTMETA);
	check_json("\"a\": {}", rest, "out of range");
	check_json("\"a\": {}",
	           ",\"cost-map\": {\"meta\": {\"dependent-vtags\": [{\"resource-id\": \"nm\", "
	           "\"tag\": \"t2\"}], \"cost-type\": {\"cost-mode\": \"ordinal\", "
	           "\"cost-metric\": \"routingcost\"}}, \"cost-map\": {}}",
	           "does not match the network map's tag");
	check_json("\"a\": {}",
	           ",\"cost-map\": {\"meta\": {\"dependent-vtags\": [{\"resource-id\": \"nm\", "
	           "\"tag\": \"t1\"}], \"cost-type\": {\"cost-mode\": \"ordinal\", "
	           "\"cost-metric\": \"hopcount\"}}, \"cost-map\": {}}",
	           "only routingcost");
	check_json("\"a\": {}", ",\"cost-map\": {\"meta\": {}, \"cost-map\": {}}",
	           "cost-map.meta.cost-type: missing field");
}

static void test_alto_ids_and_costs(void **state)
{
	(void)state;
	char rest[1024];
	/* c has id 2 explicitly; a, b, d get 1, 3, 4 in name order. A 2.0 cost
	 * is an integer. */
	snprintf(rest, sizeof(rest),
	         "%s{\"a\": {\"b\": 2.0, \"d\": 0}}}, \"itracker\": {\"pids\": {\"c\": "
	         "{\"id\": 2, \"asid\": 7, \"loc\": 3}}, \"default-pid\": \"d\"}",
	         COSTMETA);
	char *doc =
	    json_doc("\"d\": {\"ipv4\": []}, \"b\": {\"ipv6\": [\"2001:db8::/32\"], "
	             "\"anycast\": [\"x\"]}, \"c\": {}, \"a\": {\"ipv4\": [\"10.0.0.0/8\"]}",
	             rest);
	struct itr_netmap *m = parse_json(doc);
	free(doc);
	assert_non_null(m);
	assert_string_equal(itr_netmap_resource_id(m), "nm");
	assert_int_equal(itr_netmap_pid_by_name(m, "a")->id, 1);
	assert_int_equal(itr_netmap_pid_by_name(m, "b")->id, 3);
	assert_int_equal(itr_netmap_pid_by_name(m, "c")->id, 2);
	assert_int_equal(itr_netmap_pid_by_name(m, "c")->asn, 7);
	assert_int_equal(itr_netmap_pid_by_name(m, "c")->loc, 3);
	assert_int_equal(itr_netmap_pid_by_name(m, "d")->id, 4);
	assert_int_equal(itr_netmap_pid_by_name(m, "a")->asn, 0);
	assert_int_equal(itr_netmap_pid_by_name(m, "a")->loc, 0);
	const struct itr_pid *a = itr_netmap_pid_by_name(m, "a");
	assert_int_equal(itr_netmap_cost(m, a, itr_netmap_pid_by_name(m, "b")), 2);
	assert_int_equal(itr_netmap_cost(m, a, itr_netmap_pid_by_name(m, "d")), 0);
	assert_string_equal(itr_netmap_lookup_str(m, "2001:db8::5")->name, "b");
	assert_string_equal(itr_netmap_lookup_str(m, "192.0.2.1")->name, "d");
	itr_netmap_unref(m);
}

/* ---- kernel diff -------------------------------------------------------- */

static struct itr_netmap_kentry kentry(const char *cidr, uint32_t pid)
{
	struct itr_netmap_kentry e;
	char why[100];
	memset(&e, 0, sizeof(e));
	assert_int_equal(itr_prefix_parse(cidr, &e.prefix, why, sizeof(why)), 0);
	e.info.pid = pid;
	e.info.asn = 1;
	return e;
}

static void test_diff_order(void **state)
{
	(void)state;
	struct itr_netmap_kentry old[] = {
	    kentry("10.0.0.0/8", 1),  kentry("10.1.0.0/16", 2), kentry("10.2.0.0/16", 3),
	    kentry("10.9.0.0/16", 4), kentry("fd00::/16", 1),   kentry("fd01::/16", 5),
	};
	struct itr_netmap_kentry new_entries[] = {
	    kentry("9.0.0.0/8", 7),   kentry("10.0.0.0/8", 1), kentry("10.1.0.0/16", 9),
	    kentry("10.9.0.0/24", 4), kentry("fd00::/16", 1),  kentry("fd02::/16", 5),
	};
	size_t nold = sizeof(old) / sizeof(old[0]), nnew = sizeof(new_entries) / sizeof(old[0]);
	itr_netmap_kentries_sort(old, nold);
	itr_netmap_kentries_sort(new_entries, nnew);
	struct itr_netmap_op *ops;
	size_t nops;
	assert_int_equal(itr_netmap_diff(old, nold, new_entries, nnew, &ops, &nops), 0);
	/* 9/8 add, 10.1/16 change, 10.9/24 add, fd02 add; 10.2/16, 10.9/16,
	 * fd01 delete. */
	assert_int_equal(nops, 7);
	size_t adds = 0, changes = 0, deletes = 0;
	bool seen_delete = false;
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].kind == ITR_NETMAP_OP_DELETE) {
			seen_delete = true;
			deletes++;
		} else {
			assert_false(seen_delete); /* no update after a delete */
			if (ops[i].kind == ITR_NETMAP_OP_ADD)
				adds++;
			else
				changes++;
		}
	}
	assert_int_equal(adds, 3);
	assert_int_equal(changes, 1);
	assert_int_equal(deletes, 3);
	assert_int_equal(ops[0].kind, ITR_NETMAP_OP_ADD);
	assert_int_equal(ops[0].entry.info.pid, 7);
	assert_int_equal(ops[1].kind, ITR_NETMAP_OP_CHANGE);
	assert_int_equal(ops[1].entry.info.pid, 9);
	assert_int_equal(ops[4].kind, ITR_NETMAP_OP_DELETE);
	assert_int_equal(ops[4].entry.info.pid, 3);
	free(ops);

	/* Identical sets: nothing to do. */
	assert_int_equal(itr_netmap_diff(old, nold, old, nold, &ops, &nops), 0);
	assert_int_equal(nops, 0);
	assert_null(ops);
	/* From empty: all adds; to empty: all deletes. */
	assert_int_equal(itr_netmap_diff(NULL, 0, old, nold, &ops, &nops), 0);
	assert_int_equal(nops, nold);
	for (size_t i = 0; i < nops; i++)
		assert_int_equal(ops[i].kind, ITR_NETMAP_OP_ADD);
	free(ops);
	assert_int_equal(itr_netmap_diff(old, nold, NULL, 0, &ops, &nops), 0);
	assert_int_equal(nops, nold);
	for (size_t i = 0; i < nops; i++)
		assert_int_equal(ops[i].kind, ITR_NETMAP_OP_DELETE);
	free(ops);
}

static void test_diff_between_maps(void **state)
{
	(void)state;
	struct itr_netmap *a = parse(EXAMPLE);
	char *t = edited("prefix c-all 10.30.0.0/16 fd00:30::/32",
	                 "prefix c-all 10.30.0.0/15 fd00:30::/32\ndefault-pid c-all");
	char *t2 = edited("asn 64501 loc 11", "asn 64501 loc 12");
	struct itr_netmap *b = parse(t), *c = parse(t2);
	free(t);
	free(t2);
	struct itr_netmap_kentry *ea, *eb, *ec;
	size_t na, nb, nc;
	assert_int_equal(itr_netmap_kernel_entries(a, &ea, &na), 0);
	assert_int_equal(itr_netmap_kernel_entries(b, &eb, &nb), 0);
	assert_int_equal(itr_netmap_kernel_entries(c, &ec, &nc), 0);
	assert_int_equal(na, 12);
	assert_int_equal(nb, 14);
	struct itr_netmap_op *ops;
	size_t nops;
	assert_int_equal(itr_netmap_diff(ea, na, eb, nb, &ops, &nops), 0);
	/* 0.0.0.0/0, ::/0 and 10.30/15 in; 10.30/16 out, last. */
	assert_int_equal(nops, 4);
	assert_int_equal(ops[3].kind, ITR_NETMAP_OP_DELETE);
	assert_int_equal(ops[3].entry.prefix.len, 16);
	free(ops);
	/* A LOC change rewrites the PID's prefixes in place. */
	assert_int_equal(itr_netmap_diff(ea, na, ec, nc, &ops, &nops), 0);
	assert_int_equal(nops, 2);
	assert_int_equal(ops[0].kind, ITR_NETMAP_OP_CHANGE);
	assert_int_equal(ops[0].entry.info.loc, 12);
	assert_int_equal(ops[1].kind, ITR_NETMAP_OP_CHANGE);
	free(ops);
	free(ea);
	free(eb);
	free(ec);
	itr_netmap_unref(a);
	itr_netmap_unref(b);
	itr_netmap_unref(c);
}

/* ---- current map -------------------------------------------------------- */

static void test_current_publish(void **state)
{
	(void)state;
	assert_null(itr_netmap_current());
	struct itr_netmap *a = parse(EXAMPLE);
	itr_netmap_publish(a); /* takes our reference */
	struct itr_netmap *cur = itr_netmap_current();
	assert_ptr_equal(cur, a);
	struct itr_netmap *b = parse("pid x id 1 asn 1\n");
	itr_netmap_publish(b);
	/* The old map stays valid for the reader holding it. */
	assert_string_equal(itr_netmap_lookup_str(cur, "10.30.0.1")->name, "c-all");
	itr_netmap_unref(cur);
	cur = itr_netmap_current();
	assert_ptr_equal(cur, b);
	itr_netmap_unref(cur);
	itr_netmap_publish(NULL);
	assert_null(itr_netmap_current());
}

static void test_prefix_parse(void **state)
{
	(void)state;
	struct itr_prefix p;
	char why[100];
	assert_int_equal(itr_prefix_parse("0.0.0.0/0", &p, why, sizeof(why)), 0);
	assert_int_equal(p.len, 0);
	assert_int_equal(itr_prefix_parse("192.0.2.128/25", &p, why, sizeof(why)), 0);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.addr[3], 128);
	assert_int_equal(itr_prefix_parse("2001:db8::/32", &p, why, sizeof(why)), 0);
	assert_int_equal(p.family, 6);
	assert_int_equal(itr_prefix_parse("::/0", &p, why, sizeof(why)), 0);
	assert_int_equal(itr_prefix_parse("::1/128", &p, why, sizeof(why)), 0);
	assert_int_equal(itr_prefix_parse("10.0.0.0/08", &p, why, sizeof(why)), -1);
	assert_int_equal(itr_prefix_parse("10.0.0.0/", &p, why, sizeof(why)), -1);
	assert_int_equal(itr_prefix_parse("/8", &p, why, sizeof(why)), -1);
	assert_int_equal(itr_prefix_parse("10.0.0.0/8 ", &p, why, sizeof(why)), -1);
	assert_int_equal(itr_prefix_parse("10.0.0.0/99999999999", &p, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "out of range"));
}

/* A binary file given as a map: the error says so and carries no raw bytes
 * that would garble a terminal; a token with such bytes is escaped too. */
static void test_binary_file_reported_clearly(void **state)
{
	(void)state;
	static const char elf[] =
	    "\x7f"
	    "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0\xe0\x1b\0\0";
	struct itr_netmap_error err;
	char msg[700];
	assert_null(itr_netmap_parse_text(elf, sizeof(elf) - 1, "a.out", &err));
	itr_netmap_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, "binary"));
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			fail_msg("raw byte 0x%02x in '%s'", *p, msg);

	static const char latin1[] = "pid caf\xe9 id 1 asn 1\n";
	assert_null(itr_netmap_parse_text(latin1, sizeof(latin1) - 1, "m", &err));
	itr_netmap_error_format(&err, msg, sizeof(msg));
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			fail_msg("raw byte 0x%02x in '%s'", *p, msg);
	assert_non_null(strstr(msg, "\\xe9"));
}

/* ---- inter-AS links (price.h) ------------------------------------------- */

static void test_links_text(void **state)
{
	(void)state;
	char buf[2048];
	with_pids(buf, sizeof(buf),
	          "link up1 asn 1 uplink capacity 8mbit budget 50% host-upload 5mbit\n"
	          "link one-two asn 1 peer-asn 2 capacity 1gbit budget 200mbit\n"
	          "link up2 asn 2 uplink capacity 2500000 budget 1.5mbit\n");
	struct itr_netmap *m = parse(buf);
	assert_non_null(m);
	assert_int_equal(itr_netmap_link_count(m), 3);
	const struct itr_link *l = itr_netmap_link_at(m, 0); /* sorted by name */
	assert_string_equal(l->name, "one-two");
	assert_int_equal(l->peer_asn, 2);
	assert_int_equal(l->capacity_bps, 1000000000ull);
	assert_int_equal(l->budget_bps, 200000000ull);
	l = itr_netmap_link_find(m, 1, 0);
	assert_non_null(l);
	assert_string_equal(l->name, "up1");
	assert_int_equal(l->budget_bps, 4000000);
	assert_int_equal(l->budget_pct, 50);
	assert_int_equal(l->host_upload_bps, 5000000);
	assert_ptr_equal(itr_netmap_link_find(m, 2, 1), itr_netmap_link_at(m, 0));
	assert_int_equal(itr_netmap_link_find(m, 2, 0)->budget_bps, 1500000);
	assert_null(itr_netmap_link_find(m, 3, 0));

	/* links are content: the vtag moves with a budget */
	char buf2[2048];
	with_pids(buf2, sizeof(buf2),
	          "link up1 asn 1 uplink capacity 8mbit budget 40% host-upload 5mbit\n"
	          "link one-two asn 1 peer-asn 2 capacity 1gbit budget 200mbit\n"
	          "link up2 asn 2 uplink capacity 2500000 budget 1.5mbit\n");
	struct itr_netmap *m2 = parse(buf2);
	assert_non_null(m2);
	assert_string_not_equal(itr_netmap_vtag(m), itr_netmap_vtag(m2));
	itr_netmap_unref(m2);
	itr_netmap_unref(m);

	with_pids(buf, sizeof(buf), "link x asn 1 uplink capacity 8mbit\n");
	text_fails(buf, 4, "missing 'budget RATE|PCT%'");
	with_pids(buf, sizeof(buf), "link x asn 1 capacity 8mbit budget 1mbit\n");
	text_fails(buf, 4, "missing 'uplink or peer-asn N'");
	with_pids(buf, sizeof(buf), "link x asn 1 uplink capacity 8mbps budget 1mbit\n");
	text_fails(buf, 4, "capacity '8mbps' is not a rate");
	with_pids(buf, sizeof(buf), "link x asn 1 uplink capacity 8mbit budget 120%\n");
	text_fails(buf, 4, "out of range 1..100");
	with_pids(buf, sizeof(buf), "link x asn 1 uplink capacity 8mbit budget 9mbit\n");
	text_fails(buf, 4, "exceeds the capacity");
	with_pids(buf, sizeof(buf), "link x asn 7 uplink capacity 8mbit budget 1mbit\n");
	text_fails(buf, 4, "no PID has asn 7");
	with_pids(buf, sizeof(buf), "link x asn 1 peer-asn 9 capacity 8mbit budget 1mbit\n");
	text_fails(buf, 4, "no PID has peer asn 9");
	with_pids(buf, sizeof(buf), "link x asn 1 peer-asn 1 capacity 8mbit budget 1mbit\n");
	text_fails(buf, 4, "peer-asn equals asn");
	with_pids(buf, sizeof(buf), "link x asn 1 uplink peer-asn 2 capacity 8mbit budget 1mbit\n");
	text_fails(buf, 4, "give uplink or peer-asn, once");
	with_pids(buf, sizeof(buf),
	          "link x asn 1 uplink capacity 8mbit budget 1mbit\n"
	          "link y asn 1 uplink capacity 8mbit budget 1mbit\n");
	text_fails(buf, 5, "already has an uplink ('x', line 4)");
	with_pids(buf, sizeof(buf),
	          "link x asn 1 peer-asn 2 capacity 8mbit budget 1mbit\n"
	          "link y asn 2 peer-asn 1 capacity 8mbit budget 1mbit\n");
	text_fails(buf, 5, "already joined by link 'x'");
	with_pids(buf, sizeof(buf),
	          "link x asn 1 uplink capacity 8mbit budget 1mbit\n"
	          "link x asn 2 uplink capacity 8mbit budget 1mbit\n");
	text_fails(buf, 5, "link name given twice");
	with_pids(buf, sizeof(buf), "link x.y asn 1 uplink capacity 8mbit budget 1mbit\n");
	text_fails(buf, 4, "bad link name");
	with_pids(buf, sizeof(buf), "link x asn 1 uplink capacity 8mbit budget 1mbit color 2\n");
	text_fails(buf, 4, "unknown link attribute 'color'");
}

static void test_links_json(void **state)
{
	(void)state;
	const char *pids = "\"a\": {\"ipv4\": [\"10.0.0.0/8\"]}, \"b\": {}";
	const char *itr_pids = "\"pids\": {\"a\": {\"asid\": 1}, \"b\": {\"asid\": 2}}";
	char rest[1024];
	snprintf(rest, sizeof(rest),
	         ",\"itracker\": {%s, \"links\": {\"up\": {\"asn\": 1, \"uplink\": true, "
	         "\"capacity\": \"8mbit\", \"budget\": \"25%%\", \"host-upload\": 2000000}, "
	         "\"ab\": {\"asn\": 1, \"peer-asn\": 2, \"capacity\": 100000000, "
	         "\"budget\": \"10mbit\"}}}",
	         itr_pids);
	char *doc = json_doc(pids, rest);
	struct itr_netmap *m = parse_json(doc);
	free(doc);
	assert_non_null(m);
	assert_int_equal(itr_netmap_link_count(m), 2);
	const struct itr_link *up = itr_netmap_link_find(m, 1, 0);
	assert_non_null(up);
	assert_int_equal(up->budget_bps, 2000000);
	assert_int_equal(up->host_upload_bps, 2000000);
	assert_int_equal(itr_netmap_link_find(m, 1, 2)->budget_bps, 10000000);
	itr_netmap_unref(m);

	snprintf(rest, sizeof(rest),
	         ",\"itracker\": {%s, \"links\": {\"up\": {\"asn\": 1, \"capacity\": "
	         "\"8mbit\", \"budget\": \"25%%\"}}}",
	         itr_pids);
	check_json(pids, rest, "itracker.links.up: give either \"uplink\": true or \"peer-asn\"");
	snprintf(rest, sizeof(rest),
	         ",\"itracker\": {%s, \"links\": {\"up\": {\"asn\": 1, \"uplink\": true, "
	         "\"capacity\": \"8mbit\"}}}",
	         itr_pids);
	check_json(pids, rest, "itracker.links.up.budget: missing field");
	snprintf(rest, sizeof(rest),
	         ",\"itracker\": {%s, \"links\": {\"up\": {\"asn\": 1, \"uplink\": true, "
	         "\"capacity\": \"8 mbit\", \"budget\": 1}}}",
	         itr_pids);
	check_json(pids, rest, "itracker.links.up.capacity: not a rate");
	snprintf(rest, sizeof(rest),
	         ",\"itracker\": {%s, \"links\": {\"up\": {\"asn\": 5, \"uplink\": true, "
	         "\"capacity\": \"8mbit\", \"budget\": \"1mbit\"}}}",
	         itr_pids);
	check_json(pids, rest, "itracker.links.up: no PID has asn 5");
}

/* P4P's dynamic p-distance: a derived map adds each link's extra cost on the
 * path between two ASes, keeps PIDs and lookups, and has its own vtag. */
static void test_links_derived_costs(void **state)
{
	(void)state;
	const char *text = "tier other-as 100\n"
	                   "pid a id 1 asn 1\nprefix a 10.1.0.0/16\n"
	                   "pid b id 2 asn 2\nprefix b 10.2.0.0/16\n"
	                   "pid c id 3 asn 3\nprefix c 10.3.0.0/16\n"
	                   "pid a2 id 4 asn 1\nprefix a2 10.4.0.0/16\n"
	                   "cost a c 70\n"
	                   "link ab asn 1 peer-asn 2 capacity 1gbit budget 50%\n"
	                   "link up1 asn 1 uplink capacity 1gbit budget 50%\n"
	                   "link up3 asn 3 uplink capacity 1gbit budget 50%\n";
	struct itr_netmap *m = parse(text);
	assert_non_null(m);
	const struct itr_pid *a = itr_netmap_pid_by_name(m, "a"),
	                     *b = itr_netmap_pid_by_name(m, "b");
	const struct itr_pid *c = itr_netmap_pid_by_name(m, "c"),
	                     *a2 = itr_netmap_pid_by_name(m, "a2");
	/* links sorted by name: ab, up1, up3 */
	uint32_t extra[3] = {30, 20, 50};
	struct itr_netmap *d = itr_netmap_with_link_costs(m, extra);
	assert_non_null(d);
	assert_ptr_equal(itr_netmap_base(d), m);
	assert_ptr_equal(itr_netmap_base(m), m);
	assert_string_not_equal(itr_netmap_vtag(d), itr_netmap_vtag(m));
	assert_ptr_equal(itr_netmap_lookup_str(d, "10.2.3.4"), b);
	assert_int_equal(itr_netmap_cost(m, a, b), 100);
	assert_int_equal(itr_netmap_cost(d, a, b), 130); /* the direct link only */
	assert_int_equal(itr_netmap_cost(d, b, a), 130);
	assert_int_equal(itr_netmap_cost(d, b, c), 150); /* b has no uplink: c's */
	assert_int_equal(itr_netmap_cost(d, a, c), 70);  /* explicit costs stay */
	assert_int_equal(itr_netmap_cost(d, c, a), 170); /* both uplinks */
	assert_int_equal(itr_netmap_cost(d, a, a2), itr_netmap_cost(m, a, a2));
	assert_int_equal(itr_netmap_link_extra(d, 2), 50);
	assert_int_equal(itr_netmap_link_extra(m, 2), 0);
	/* equal extras, equal vtag; a derived map of a derived map starts
	 * from the base */
	struct itr_netmap *d2 = itr_netmap_with_link_costs(d, extra);
	assert_ptr_equal(itr_netmap_base(d2), m);
	assert_string_equal(itr_netmap_vtag(d2), itr_netmap_vtag(d));
	itr_netmap_unref(m); /* the derived maps keep the base alive */
	assert_int_equal(itr_netmap_cost(d2, c, a), 170);
	itr_netmap_unref(d2);
	itr_netmap_unref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errors_prefixes),
	    cmocka_unit_test(test_errors_unknown_pid),
	    cmocka_unit_test(test_errors_names),
	    cmocka_unit_test(test_errors_costs_and_fields),
	    cmocka_unit_test(test_errors_nul_byte),
	    cmocka_unit_test(test_errors_tiers),
	    cmocka_unit_test(test_error_columns_and_format),
	    cmocka_unit_test(test_file_limits),
	    cmocka_unit_test(test_fifo_refused_without_blocking),
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_default_pid),
	    cmocka_unit_test(test_longest_prefix_many_lengths),
	    cmocka_unit_test(test_lookup_indexed_against_brute_force),
	    cmocka_unit_test(test_costs_and_class),
	    cmocka_unit_test(test_vtag),
	    cmocka_unit_test(test_text_and_alto_examples_agree),
	    cmocka_unit_test(test_alto_errors),
	    cmocka_unit_test(test_alto_ids_and_costs),
	    cmocka_unit_test(test_diff_order),
	    cmocka_unit_test(test_diff_between_maps),
	    cmocka_unit_test(test_current_publish),
	    cmocka_unit_test(test_prefix_parse),
	    cmocka_unit_test(test_binary_file_reported_clearly),
	    cmocka_unit_test(test_links_text),
	    cmocka_unit_test(test_links_json),
	    cmocka_unit_test(test_links_derived_costs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
