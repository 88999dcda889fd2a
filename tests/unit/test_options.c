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
	    cmocka_unit_test(test_config_file),
	    cmocka_unit_test(test_help_names_every_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
