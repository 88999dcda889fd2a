/* test_options.c - itrackerd's option table: the defaults it shows in
 * --help are the modules' own, bad values are refused with the option's
 * name before anything runs (--listen and --udp included), config files
 * go through the same handlers, and --help names every option.
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

#include "options.h"

static int parse(struct itr_options *o, char *err, size_t len, ...)
{
	char *argv[32] = {"itrackerd"};
	int argc = 1;
	va_list ap;
	va_start(ap, len);
	for (char *a; (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	itr_options_init(o);
	return itr_options_parse(o, argc, argv, err, len);
}

static void test_table_defaults_are_the_modules(void **state)
{
	(void)state;
	struct itr_options o;
	itr_options_init(&o);
	struct itr_tracker_config tc;
	struct itr_rank_policy rp;
	struct itr_proxy_config pc;
	itr_tracker_config_default(&tc);
	itr_rank_policy_default(&rp);
	itr_proxy_config_default(&pc);
	assert_memory_equal(&o.tracker, &tc, sizeof(tc));
	assert_memory_equal(&o.policy_rank, &rp, sizeof(rp));
	assert_memory_equal(&o.proxy, &pc, sizeof(pc));
	assert_string_equal(o.listen_addr, "::");
	assert_int_equal(o.listen_port, 6969);
	assert_int_equal(o.udp_port, 6969);
	assert_false(o.udp_off);
	assert_string_equal(o.loader.pin_root, ITR_PIN_ROOT_DEFAULT);
	itr_options_free(&o);
}

static void test_bad_values_named(void **state)
{
	(void)state;
	struct itr_options o;
	char err[512];
	static const char *const bad[][3] = {
	    {"--listen", "bogus", "--listen 'bogus'"},
	    {"--listen", "127.0.0.1:99999", "--listen"},
	    {"--udp", "bogus", "--udp 'bogus'"},
	    {"--udp", "70000", "--udp '70000'"},
	    {"--interval", "0", "--interval '0'"},
	    {"--policy", "inter-as:dscp=64", "dscp must be 0..63"},
	    {"--xdp-mode", "fast", "--xdp-mode"},
	    {"--pin-root", "relative", "absolute"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(&o, err, sizeof(err), "--map", "m", (char *)bad[i][0],
		                       (char *)bad[i][1], NULL),
		                 -1);
		if (!strstr(err, bad[i][2]))
			fail_msg("%s %s: '%s' does not say '%s'", bad[i][0], bad[i][1], err,
			         bad[i][2]);
		itr_options_free(&o);
	}
	assert_int_equal(parse(&o, err, sizeof(err), "--listen", "off", NULL), -1);
	assert_non_null(strstr(err, "--map"));
	assert_int_equal(
	    parse(&o, err, sizeof(err), "-m", "m", "--no-dataplane", "-i", "eth0", NULL), -1);
	assert_int_equal(parse(&o, err, sizeof(err), "-m", "m", "--bogus", NULL), -1);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&o, err, sizeof(err), "-m", "m", "extra", NULL), -1);
	assert_non_null(strstr(err, "'extra'"));

	assert_int_equal(parse(&o, err, sizeof(err), "-m", "m", "-l", "[::1]:8080", "-u", "off",
	                       "--policy", "inter-as:dscp=8,priority=1:20", NULL),
	                 0);
	assert_string_equal(o.listen_addr, "::1");
	assert_int_equal(o.listen_port, 8080);
	assert_true(o.udp_off);
	assert_int_equal(o.loader.policy[ITR_CLASS_INTER_AS].priority, 0x10020);
	assert_false(o.loader.policy[ITR_CLASS_INTER_AS].flags & ITR_POLICY_ENDPOINT);
	assert_true(itr_options_listeners_loopback_only(&o));
	itr_options_free(&o);

	/* Endpoint-only flows are policed only when the SPEC says so. */
	assert_int_equal(
	    parse(&o, err, sizeof(err), "-m", "m", "--policy", "inter-as:drop,endpoint", NULL), 0);
	assert_int_equal(o.loader.policy[ITR_CLASS_INTER_AS].flags,
	                 ITR_POLICY_DROP | ITR_POLICY_ENDPOINT);
	itr_options_free(&o);
}

/* --shape LINK=DEV: parsed, checked against the interfaces and --policy,
 * and it makes the inter-as policy steer (endpoint flows too) into the
 * shaper's class. */
static void test_shape(void **state)
{
	(void)state;
	struct itr_options o;
	char err[512];
	static const char *const bad[][4] = {
	    {"-i", "eth1", "eth1", "expected LINK=DEV"},
	    {"-i", "eth1", "=eth1", "expected LINK=DEV"},
	    {"-i", "eth1", "up=", "expected LINK=DEV"},
	    {"-i", "eth1", "up=eth\"1", "not an interface name"},
	    {"-i", "eth1", "up=averyveryverylongname", "not an interface name"},
	    {"-u", "off", "up=eth2", "eth2 is not an --interface"},
	    {"--no-dataplane", NULL, "up=eth1", "--no-dataplane"},
	    {"--policy", "inter-as:priority=1:20", "up=eth1", "exclude each other"},
	    {"--policy", "inter-as:drop", "up=eth1", "exclude each other"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		/* "-i eth1" is always there; the pair before --shape adds to it */
		int rc =
		    strcmp(bad[i][0], "--no-dataplane") == 0
		        ? parse(&o, err, sizeof(err), "-m", "m", bad[i][0], "--shape",
		                (char *)bad[i][2], NULL)
		        : parse(&o, err, sizeof(err), "-m", "m", "-i", "eth1", (char *)bad[i][0],
		                (char *)bad[i][1], "--shape", (char *)bad[i][2], NULL);
		assert_int_equal(rc, -1);
		if (!strstr(err, bad[i][3]))
			fail_msg("--shape %s: '%s' does not say '%s'", bad[i][2], err, bad[i][3]);
		itr_options_free(&o);
	}
	assert_int_equal(parse(&o, err, sizeof(err), "-m", "m", "-i", "eth1", "--shape", "up=eth1",
	                       "--shape", "up=eth1", NULL),
	                 -1);
	assert_non_null(strstr(err, "named twice"));
	itr_options_free(&o);

	assert_int_equal(parse(&o, err, sizeof(err), "-m", "m", "-i", "eth0", "-i", "eth1",
	                       "--policy", "inter-as:dscp=8", "--shape", "a-up=eth1", "--shape",
	                       "a-up=eth0", NULL),
	                 0);
	assert_int_equal(o.nshape, 2);
	assert_string_equal(o.shape[0].link, "a-up");
	assert_string_equal(o.shape[0].dev, "eth1");
	assert_string_equal(o.shape[1].dev, "eth0");
	const struct itr_policy *p = &o.loader.policy[ITR_CLASS_INTER_AS];
	assert_int_equal(p->flags,
	                 ITR_POLICY_SET_DSCP | ITR_POLICY_SET_PRIORITY | ITR_POLICY_ENDPOINT);
	assert_int_equal(p->priority, ITR_SHAPE_CLASSID);
	assert_int_equal(p->dscp, 8);
	/* no other class is steered */
	assert_int_equal(o.loader.policy[ITR_CLASS_INTRA_AS].flags, 0);
	assert_int_equal(o.loader.policy[ITR_CLASS_UNKNOWN].flags, 0);
	/* changing and removing the qdiscs needs CAP_NET_ADMIN even with
	 * --keep-attached */
	struct itr_privilege_needs needs;
	char dir[64];
	o.keep_attached = true;
	itr_options_privilege_needs(&o, "/sys/fs/bpf/x", &needs, dir, sizeof(dir));
	assert_true(needs.net_admin);
	itr_options_free(&o);
}

/* The HTB class's figures for a budget: bytes/s, a burst of two frames or
 * 10 ms, a quantum the kernel does not warn about, 200 ms of queue. */
static void test_shape_class(void **state)
{
	(void)state;
	struct itr_shape_class c;
	itr_shape_class_for(6000000, &c);
	assert_int_equal(c.rate_Bps, 750000);
	assert_int_equal(c.burst, 7500);
	assert_int_equal(c.quantum, 75000);
	assert_int_equal(c.queue_bytes, 150000);
	itr_shape_class_for(10000000000ull, &c);
	assert_int_equal(c.rate_Bps, 1250000000);
	assert_int_equal(c.burst, 12500000);
	assert_int_equal(c.quantum, 200000);
	assert_int_equal(c.queue_bytes, 64u << 20);
	itr_shape_class_for(8000, &c); /* 1 kB/s */
	assert_int_equal(c.rate_Bps, 1000);
	assert_int_equal(c.burst, 2 * 1514);
	assert_int_equal(c.quantum, 1600);
	assert_int_equal(c.queue_bytes, 10 * 1514);
	itr_shape_class_for(0, &c);
	assert_int_equal(c.rate_Bps, 1);
}

/* The links --shape names must be in the map, with a budget. */
static void test_shape_check(void **state)
{
	(void)state;
	const char *text = "pid a id 1 asn 64500\nprefix a 10.0.0.0/8\n"
	                   "pid b id 2 asn 64501\nprefix b 11.0.0.0/8\n"
	                   "link a-up asn 64500 uplink capacity 8mbit budget 25%\n";
	struct itr_netmap_error merr;
	struct itr_netmap *map = itr_netmap_parse_text(text, strlen(text), "shape.netmap", &merr);
	assert_non_null(map);
	struct itr_shape_spec specs[2];
	char err[256];
	assert_int_equal(itr_shape_parse("a-up=eth1", &specs[0], err, sizeof(err)), 0);
	assert_int_equal(itr_shaper_check(specs, 1, map, err, sizeof(err)), 0);
	assert_int_equal(itr_shape_parse("b-up=eth2", &specs[1], err, sizeof(err)), 0);
	assert_int_equal(itr_shaper_check(specs, 2, map, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "declares no link 'b-up'"));
	/* the daemon's shaper follows maps; none is fine */
	assert_int_equal(itr_shaper_follow_map(NULL, map), 0);
	itr_shaper_free(NULL, false);
	itr_netmap_unref(map);
}

static void test_config_file(void **state)
{
	(void)state;
	char path[64], err[512];
	snprintf(path, sizeof(path), "/tmp/itr-test-options-%d.conf", getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("# comment\nmap /etc/itracker/m.netmap\nlisten 127.0.0.1:7000 # trailing\n"
	      "keep-attached yes\ninterval 60\n",
	      f);
	fclose(f);
	struct itr_options o;
	assert_int_equal(parse(&o, err, sizeof(err), "-c", path, "--interval", "90", NULL), 0);
	assert_string_equal(o.map_file, "/etc/itracker/m.netmap");
	assert_string_equal(o.listen_addr, "127.0.0.1");
	assert_int_equal(o.listen_port, 7000);
	assert_true(o.keep_attached);
	assert_int_equal(o.tracker.interval, 90); /* the command line came later */
	itr_options_free(&o);

	f = fopen(path, "w");
	fputs("map m\nudp nonsense\n", f);
	fclose(f);
	assert_int_equal(parse(&o, err, sizeof(err), "-c", path, NULL), -1);
	assert_non_null(strstr(err, ":2: --udp 'nonsense'"));
	itr_options_free(&o);
	f = fopen(path, "w");
	fputs("map m\nhelp\n", f);
	fclose(f);
	assert_int_equal(parse(&o, err, sizeof(err), "-c", path, NULL), -1);
	assert_non_null(strstr(err, ":2: unknown option 'help'"));
	itr_options_free(&o);
	unlink(path);
}

static void test_help_names_every_option(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	itr_options_help(f);
	fclose(f);
	for (size_t i = 0; i < itr_option_count; i++) {
		char want[64];
		snprintf(want, sizeof(want), "--%s", itr_option_specs[i].name);
		if (!strstr(text, want))
			fail_msg("--help does not mention %s", want);
		if (itr_option_specs[i].def) {
			snprintf(want, sizeof(want), "(default %s)", itr_option_specs[i].def);
			if (!strstr(text, want))
				fail_msg("--help does not show --%s's default",
				         itr_option_specs[i].name);
		}
	}
	/* No line wider than a terminal. */
	for (char *line = text; *line;) {
		size_t n = strcspn(line, "\n");
		assert_true(n <= 80);
		line += n + (line[n] == '\n');
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_defaults_are_the_modules),
	    cmocka_unit_test(test_bad_values_named),
	    cmocka_unit_test(test_shape),
	    cmocka_unit_test(test_shape_class),
	    cmocka_unit_test(test_shape_check),
	    cmocka_unit_test(test_config_file),
	    cmocka_unit_test(test_help_names_every_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
