/* test_daemon.c - the map install path without a data plane: a reload
 * publishes the new map, a file that fails validation leaves the published
 * map and the counters of good reloads alone and reports file:line, and an
 * unchanged file keeps its vtag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"
#include "routes.h"

static char path[64];

static void write_map(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *const MAP1 = "pid a id 1 asn 64500 loc 1\n"
                                "prefix a 10.1.0.0/16\n"
                                "pid b id 2 asn 64501\n"
                                "prefix b 10.2.0.0/16 2001:db8::/32\n";

static const char *const MAP2 = "pid a id 1 asn 64500 loc 1\n"
                                "prefix a 10.1.0.0/16 10.3.0.0/16\n"
                                "pid b id 2 asn 64501\n"
                                "prefix b 10.2.0.0/16 2001:db8::/32\n";

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/itr-test-daemon-%d.map", getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	struct itr_netmap *m = itr_netmap_current();
	itr_netmap_publish(NULL);
	if (m)
		itr_netmap_unref(m);
	return 0;
}

static const char *pid_of(const char *ip)
{
	static char name[80];
	struct itr_netmap *m = itr_netmap_current();
	const struct itr_pid *p = m ? itr_netmap_lookup_str(m, ip) : NULL;
	snprintf(name, sizeof(name), "%s", p ? p->name : "-");
	if (m)
		itr_netmap_unref(m);
	return name;
}

static void test_reload_publishes_and_rejects(void **state)
{
	struct itr_daemon d = {.map_file = path, .reload_lock = PTHREAD_MUTEX_INITIALIZER};
	struct itr_reload_result res;
	(void)state;

	write_map(MAP1);
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	assert_string_equal(pid_of("10.2.3.4"), "b");
	assert_string_equal(pid_of("10.3.0.1"), "-");
	char vtag1[80];
	snprintf(vtag1, sizeof(vtag1), "%s", res.vtag);

	/* Same content, other layout: same vtag. */
	write_map("# reformatted\npid b id 2 asn 64501\nprefix b 2001:db8::/32 10.2.0.0/16\n"
	          "pid a id 1 asn 64500 loc 1\n\nprefix a 10.1.0.0/16\n");
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	assert_string_equal(res.vtag, vtag1);

	write_map(MAP2);
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	assert_string_not_equal(res.vtag, vtag1);
	assert_string_equal(pid_of("10.3.0.1"), "a");
	char vtag2[80];
	snprintf(vtag2, sizeof(vtag2), "%s", res.vtag);

	/* A bad file: rejected with file:line, the old map stays published. */
	write_map("pid a id 1 asn 64500\nprefix a 10.1.0.1/16\n");
	itr_daemon_reload(&d, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, path));
	assert_non_null(strstr(res.error, ":2:"));
	assert_string_equal(pid_of("10.3.0.1"), "a");
	struct itr_netmap *m = itr_netmap_current();
	assert_string_equal(itr_netmap_vtag(m), vtag2);
	itr_netmap_unref(m);

	/* A missing file is rejected the same way. */
	unlink(path);
	itr_daemon_reload(&d, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, path));

	assert_int_equal(d.reloads_ok, 3);
	assert_int_equal(d.reloads_rejected, 2);
	assert_int_equal(d.reloads_failed, 0);
	assert_true(d.last_reload_ok > 0);
}

/* With routes followed, a file reload goes through the follower (so the
 * route prefixes stay merged in), and the counters mean the same as without:
 * a file that fails validation, or that lacks a PID a route rule names, is
 * a rejected reload, not a failed one. */
static void test_reload_with_routes_counts_rejects(void **state)
{
	struct itr_daemon d = {.map_file = path, .reload_lock = PTHREAD_MUTEX_INITIALIZER};
	struct itr_reload_result res;
	char err[256];
	(void)state;

	write_map(MAP1);
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	struct itr_routes_config cfg = {0};
	/* A realm nothing in this namespace carries: the merged map is the file. */
	assert_int_equal(itr_routes_parse_rule(&cfg, "a=realm:4242", err, sizeof(err)), 0);
	struct itr_routes *r = itr_routes_start(&d, &cfg, err, sizeof(err));
	if (!r)
		fail_msg("itr_routes_start: %s", err);

	write_map("pid a id 1 asn 64500\nprefix a 10.1.0.1/16\n");
	itr_daemon_reload(&d, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, ":2:"));
	write_map("pid b id 2 asn 64501\nprefix b 10.2.0.0/16 10.5.0.0/16 10.6.0.0/16\n");
	itr_daemon_reload(&d, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, "'a'"));
	assert_string_equal(pid_of("10.1.2.3"), "a");
	assert_int_equal(d.reloads_rejected, 2);
	assert_int_equal(d.reloads_failed, 0);

	write_map(MAP2);
	uint64_t ok_before = d.reloads_ok;
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	assert_string_equal(pid_of("10.3.0.1"), "a");
	assert_int_equal(d.reloads_ok, ok_before + 1);
	itr_routes_stop(r);
}

/* Maps that cannot shrink by accident (issue 10: a map truncated to 0
 * bytes, or left with only a comment, was accepted on SIGHUP: 0 PIDs,
 * every lookup lost; with a data plane every prefix deleted). */
static void test_reload_refuses_empty_and_shrunken_maps(void **state)
{
	struct itr_daemon d = {.map_file = path, .reload_lock = PTHREAD_MUTEX_INITIALIZER};
	struct itr_reload_result res;
	(void)state;

	write_map(MAP2); /* 4 prefixes */
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	const char *empty[] = {"", "# only a comment\n", "pid a id 1 asn 64500\n"};
	for (size_t i = 0; i < 3; i++) {
		write_map(empty[i]);
		itr_daemon_reload(&d, &res);
		assert_false(res.ok);
		assert_int_equal(res.outcome, ITR_RELOAD_REJECTED);
		if (!strstr(res.error, "no prefixes") && !strstr(res.error, path))
			fail_msg("unexpected reason: %s", res.error);
		assert_string_equal(pid_of("10.3.0.1"), "a");
	}
	/* 1 of 4 prefixes left: loses 75 % > 50 % */
	write_map("pid a id 1 asn 64500 loc 1\nprefix a 10.1.0.0/16\n");
	itr_daemon_reload(&d, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, "more than 50 %"));
	assert_string_equal(pid_of("10.2.3.4"), "b");
	/* 2 of 4: exactly half, allowed */
	write_map("pid a id 1 asn 64500 loc 1\nprefix a 10.1.0.0/16 10.3.0.0/16\n");
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	assert_string_equal(pid_of("10.2.3.4"), "-");
	/* measured against the map now served: 1 of 2 is half again */
	write_map("pid a id 1 asn 64500 loc 1\nprefix a 10.1.0.0/16\n");
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	/* forced: even an empty map goes in */
	write_map("# nothing\n");
	itr_daemon_reload_forced(&d, true, &res);
	assert_true(res.ok);
	assert_string_equal(pid_of("10.1.0.1"), "-");
	/* a stricter operator: --max-map-shrink 10 */
	d.max_shrink_pct = 10;
	write_map(MAP2);
	itr_daemon_reload(&d, &res);
	assert_true(res.ok);
	write_map(MAP1); /* 3 of 4 */
	itr_daemon_reload(&d, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, "more than 10 %"));
	assert_int_equal(d.reloads_rejected, 5);
	assert_int_equal(d.reloads_ok, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reload_publishes_and_rejects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_with_routes_counts_rejects, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reload_refuses_empty_and_shrunken_maps, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
