/* cmd_metrics.c - `itrackerctl metrics`: the data plane part of /metrics
 * straight from the pins, printed once (for node_exporter's textfile
 * collector) or served on --listen while the daemon is down.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "http.h"
#include "metrics.h"

static const char metrics_usage[] =
    "usage: itrackerctl metrics [--top N] [--listen ADDR:PORT]\n"
    "\n"
    "Prometheus text format (0.0.4) of the pinned data plane maps: packets and\n"
    "bytes by direction/class/kind, the PID matrix, the network map generation\n"
    "and vtag. Tracker figures need the daemon (its own /metrics).\n"
    "\n"
    "  --top N             matrix pairs to export (default 50)\n"
    "  --listen ADDR:PORT  serve GET /metrics there until SIGINT/SIGTERM instead\n"
    "                      of printing once; port 0 picks a free port (printed)\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int split_listen(const char *arg, char *addr, size_t addrlen, uint16_t *port)
{
	const char *colon = strrchr(arg, ':');
	if (!colon || colon == arg)
		return -1;
	const char *host = arg;
	size_t hlen = (size_t)(colon - arg);
	if (host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= addrlen)
		return -1;
	memcpy(addr, host, hlen);
	addr[hlen] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

int ctl_cmd_metrics(const struct ctl_global *g, int argc, char **argv)
{
	struct itr_metrics_sources sources = {.pin_root = g->pin_root};
	const char *listen = NULL;
	unsigned long top = 0;
	const struct ctl_opt opts[] = {
	    {"top", CTL_OPT_NUMBER, &top, 1},
	    {"listen", CTL_OPT_TEXT, &listen, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, metrics_usage, opts, &first, &status))
		return status;
	if (first != argc)
		return ctl_usage_error(metrics_usage, "unexpected argument '%s'", argv[first]);
	if (top)
		sources.matrix_top = (size_t)top;
	if (!listen)
		return itr_metrics_render(&sources, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_RUNTIME;

	char addr[128];
	uint16_t port;
	if (split_listen(listen, addr, sizeof(addr), &port) != 0)
		return ctl_usage_error(metrics_usage, "--listen wants ADDR:PORT");
	struct itr_http_limits limits = {
	    .max_body = 1024,
	    .max_query = 1024,
	    .max_connections = 16,
	    .connection_timeout_s = 10,
	};
	struct itr_http_server *srv = itr_http_new(&limits);
	char err[256] = "";
	if (!srv || itr_metrics_register(srv, &sources) != 0 ||
	    itr_http_start(srv, addr, port, err, sizeof(err)) != 0) {
		ctl_error("cannot serve metrics on %s: %s", listen, err[0] ? err : "setup failed");
		itr_http_free(srv);
		return CTL_EXIT_RUNTIME;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	bool v6 = strchr(addr, ':') != NULL;
	printf("serving http://%s%s%s:%u/metrics\n", v6 ? "[" : "", addr, v6 ? "]" : "",
	       itr_http_port(srv));
	fflush(stdout);
	while (!stop_requested)
		pause();
	itr_http_free(srv);
	return CTL_EXIT_OK;
}
