/* cmd_stats.c - `itrackerctl stats` (counters by class x kind, optionally as
 * rates with --watch) and `itrackerctl matrix` (PID x PID traffic), both
 * read straight from the pinned maps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "netmap.h"
#include "stats.h"

static const char stats_usage[] =
    "usage: itrackerctl stats [--all] [--watch SECONDS [--count K]] [--json]\n"
    "\n"
    "Packets and bytes counted by the data plane, by locality class and\n"
    "BitTorrent kind, ingress (XDP) and egress (TC) and total, summed over CPUs.\n"
    "\n"
    "  --all            also rows where nothing was counted\n"
    "  --watch SECONDS  print rates every SECONDS seconds\n"
    "  --count K        stop after K rate reports (default: until interrupted)\n"
    "  --json           JSON (one object; with --watch one line per report)\n";

static const char matrix_usage[] =
    "usage: itrackerctl matrix [--map FILE] [--top N] [--json]\n"
    "\n"
    "The PID x PID matrix of BitTorrent traffic, largest pairs first, and the\n"
    "share of BitTorrent bytes that crossed AS borders.\n"
    "\n"
    "  --map FILE  network map for PID names and pair scope (default\n"
    "              " CTL_MAP_DEFAULT " if it exists, else numeric ids)\n"
    "  --top N     show the N largest pairs (default 20, 0: all)\n"
    "  --json      JSON\n";

static int open_map_or_complain(const struct ctl_global *g, const char *name)
{
	int fd = itr_stats_open_pinned(g->pin_root, name);
	if (fd < 0)
		ctl_error("cannot open pinned map %s/%s: %s (is the data plane loaded?)",
		          g->pin_root, name, strerror(-fd));
	return fd;
}

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ctl_cmd_stats(const struct ctl_global *g, int argc, char **argv)
{
	bool all = false, json = g->json;
	unsigned long watch = 0, count = 0;
	const struct ctl_opt opts[] = {
	    {"all", CTL_OPT_FLAG, &all, 0},
	    {"watch", CTL_OPT_NUMBER, &watch, 1},
	    {"count", CTL_OPT_NUMBER, &count, 1},
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, stats_usage, opts, &first, &status))
		return status;
	if (first != argc)
		return ctl_usage_error(stats_usage, "unexpected argument '%s'", argv[first]);
	if (count && !watch)
		return ctl_usage_error(stats_usage, "--count needs --watch");

	int fd = open_map_or_complain(g, ITR_MAP_COUNTERS);
	if (fd < 0)
		return CTL_EXIT_RUNTIME;
	struct itr_counter_table prev, cur;
	int err = itr_stats_read_counters(fd, &cur);
	if (err) {
		ctl_error("reading counters: %s", strerror(-err));
		close(fd);
		return CTL_EXIT_RUNTIME;
	}
	if (!watch) {
		if (json)
			itr_stats_print_json(stdout, &cur);
		else
			itr_stats_print_table(stdout, &cur, all);
		close(fd);
		return CTL_EXIT_OK;
	}
	double then = monotonic_seconds();
	for (unsigned long n = 0; count == 0 || n < count; n++) {
		prev = cur;
		sleep((unsigned)watch);
		err = itr_stats_read_counters(fd, &cur);
		if (err) {
			ctl_error("reading counters: %s", strerror(-err));
			close(fd);
			return CTL_EXIT_RUNTIME;
		}
		double now = monotonic_seconds();
		if (!json && n > 0)
			putchar('\n');
		itr_stats_print_rates(stdout, &prev, &cur, now - then, json);
		fflush(stdout);
		then = now;
	}
	close(fd);
	return CTL_EXIT_OK;
}

int ctl_cmd_matrix(const struct ctl_global *g, int argc, char **argv)
{
	const char *map_file = NULL;
	unsigned long top = 20;
	bool json = g->json;
	const struct ctl_opt opts[] = {
	    {"map", CTL_OPT_TEXT, &map_file, 0},
	    {"top", CTL_OPT_NUMBER, &top, 0},
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, matrix_usage, opts, &first, &status))
		return status;
	if (first != argc)
		return ctl_usage_error(matrix_usage, "unexpected argument '%s'", argv[first]);

	struct itr_netmap *map = NULL;
	if (!map_file && access(CTL_MAP_DEFAULT, R_OK) == 0)
		map_file = CTL_MAP_DEFAULT;
	if (map_file) {
		struct itr_netmap_error nerr;
		map = itr_netmap_load_file(map_file, &nerr);
		if (!map) {
			char msg[600];
			itr_netmap_error_format(&nerr, msg, sizeof(msg));
			ctl_error("%s", msg);
			return CTL_EXIT_RUNTIME;
		}
	}
	int rc = CTL_EXIT_RUNTIME;
	/* The matrix up to this moment; without the fold (an older data plane)
	 * it is up to ITR_FOLD_PERIOD_MS late. */
	itr_stats_fold_pinned(g->pin_root);
	int matrix_fd = open_map_or_complain(g, ITR_MAP_MATRIX);
	int counters_fd = matrix_fd >= 0 ? open_map_or_complain(g, ITR_MAP_COUNTERS) : -1;
	struct itr_matrix_entry *entries = NULL;
	size_t n = 0;
	struct itr_counter_table table;
	if (matrix_fd >= 0 && counters_fd >= 0) {
		int err = itr_stats_read_matrix(matrix_fd, &entries, &n);
		if (!err)
			err = itr_stats_read_counters(counters_fd, &table);
		if (err) {
			ctl_error("reading the matrix: %s", strerror(-err));
		} else {
			double ratio = itr_stats_inter_as_ratio(&table);
			if (json)
				itr_stats_print_matrix_json(stdout, entries, n, top, map, ratio);
			else
				itr_stats_print_matrix_table(stdout, entries, n, top, map, ratio);
			rc = CTL_EXIT_OK;
		}
	}
	free(entries);
	if (matrix_fd >= 0)
		close(matrix_fd);
	if (counters_fd >= 0)
		close(counters_fd);
	if (map)
		itr_netmap_unref(map);
	return rc;
}
