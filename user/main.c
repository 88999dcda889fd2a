/* main.c - itrackerd: read the options, wire the modules together, run.
 *
 * Nothing here is logic of its own: the options are user/options.c, the
 * data plane user/loader.c, the map path user/daemon.c + user/netmap*.c,
 * the services user/http.c with the handlers that register on it, the
 * daemon's own endpoints user/admin.c. main() only decides what runs, in
 * which order, and how it stops: every option is checked before anything
 * touches the kernel, and every exit after that goes through one cleanup.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "alto.h"
#include "map_follow.h"
#include "options.h"
#include "p4p_api.h"
#include "price.h"
#include "stats.h"
#include "redis_store.h"
#include "tracker_http.h"

/* Exit statuses (see --help). */
enum { EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

/* Everything a run may have started; stop_all undoes whatever is set. */
struct run {
	struct itr_options o;
	struct itr_daemon d;
	struct itr_admin admin;
	struct itr_tracker *tracker;
	struct itr_proxy *proxy;
	struct itr_redis_store *store; /* --store redis-cluster://... */
	struct itr_routes *routes;
	struct itr_http_server *http;
	struct itr_http_server *admin_http; /* the admin API's Unix socket */
	char *admin_token;
	struct itr_udp_tracker *udp;
	struct itr_map_follower *follower; /* --map-from */
	struct itr_price *price;           /* NULL: --gateways and --max-external fixed */
	int price_fds[16];                 /* --price-matrix pins opened here */
	size_t nprice_fds;
};

static void stop_all(struct run *r)
{
	/* HTTP first: once it is gone no handler can see what is freed next. */
	itr_http_free(r->http);
	itr_http_free(r->admin_http);
	free(r->admin_token);
	itr_map_follow_stop(r->follower);
	itr_routes_stop(r->routes);
	itr_udp_tracker_stop(r->udp);
	itr_proxy_free(r->proxy);
	itr_redis_store_free(r->store);
	itr_tracker_free(r->tracker);
	itr_price_free(r->price);
	for (size_t i = 0; i < r->nprice_fds; i++)
		close(r->price_fds[i]);
	itr_dataplane_close(r->d.dp, r->o.keep_attached);
	struct itr_netmap *map = itr_netmap_current();
	itr_netmap_publish(NULL);
	itr_netmap_unref(map);
	itr_options_free(&r->o);
}

/* The user-space parts that need no kernel: built before the data plane
 * so that a bad upstream URL changes nothing. */
static int start_tracker(struct run *r, char *err, size_t len)
{
	struct itr_options *o = &r->o;
	o->tracker.policy = o->policy_rank;
	if (!o->loopback_peers || strcmp(o->loopback_peers, "auto") == 0)
		o->tracker.loopback_peers = itr_options_listeners_loopback_only(o);
	else
		o->tracker.loopback_peers = strcmp(o->loopback_peers, "yes") == 0;
	if (o->tracker.loopback_peers)
		fprintf(stderr, "itrackerd: loopback addresses are accepted as peers%s\n",
		        strcmp(o->loopback_peers, "auto") ? ""
		                                          : " (every listener is on loopback)");
	/* The price controller: on unless both budget knobs are fixed. Its
	 * matrix sources are added once the data plane is open. */
	if (!(o->fixed.gateways && o->fixed.max_external)) {
		struct itr_price_config pcfg;
		itr_price_config_default(&pcfg);
		pcfg.policy = o->policy_rank;
		pcfg.overrides = o->fixed;
		pcfg.peer_expiry_s = o->tracker.peer_expiry;
		pcfg.period_s = o->price_period;
		pcfg.map_lock = &r->d.reload_lock;
		r->price = itr_price_new(&pcfg);
		if (!r->price) {
			snprintf(err, len, "price controller: out of memory");
			return EXIT_RUNTIME;
		}
	}
	o->tracker.price = r->price;
	r->tracker = itr_tracker_new(&o->tracker, NULL, err, len);
	if (!r->tracker)
		return EXIT_RUNTIME;
	if (o->store && !(r->store = itr_redis_store_new(o->store, r->tracker, err, len)))
		return EXIT_CONFIG;
	if (r->store)
		itr_tracker_use_backend(r->tracker, itr_redis_store_backend(r->store));
	if (o->proxy.upstream) {
		r->proxy = itr_proxy_new(&o->proxy, r->tracker, err, len);
		if (!r->proxy)
			return EXIT_CONFIG;
		fprintf(stderr, "itrackerd: proxy mode, upstream %s\n", o->proxy.upstream);
		itr_tracker_use_backend(r->tracker, itr_proxy_backend(r->proxy));
	}
	return 0;
}

static int start_dataplane(struct run *r, struct itr_netmap *map, char *err, size_t len)
{
	struct itr_options *o = &r->o;
	if (!o->no_dataplane) {
		r->d.dp = itr_dataplane_open(&o->loader, err, len);
		if (!r->d.dp) {
			itr_netmap_unref(map);
			return EXIT_RUNTIME;
		}
		for (int cls = 0; cls < ITR_CLASS_MAX; cls++) {
			/* The policy is this run's configuration: rewrite every slot. */
			struct itr_policy none = {0};
			itr_dataplane_set_policy(
			    r->d.dp, cls, o->policy[cls].set ? &o->policy[cls].policy : &none);
		}
	}
	if (itr_netmap_warning(map))
		fprintf(stderr, "itrackerd: warning: %s: %s\n", r->d.map_source,
		        itr_netmap_warning(map));
	struct itr_reload_result res;
	itr_daemon_install_map(&r->d, map, &res);
	if (!res.ok) {
		snprintf(err, len, "%s", res.error);
		return EXIT_RUNTIME;
	}
	fprintf(stderr, "itrackerd: map %s loaded: vtag %s, generation %llu (+%zu ~%zu -%zu)\n",
	        r->d.map_source, res.vtag, (unsigned long long)res.generation, res.added,
	        res.changed, res.deleted);
	for (size_t i = 0; r->d.dp && i < r->d.dp->nifaces; i++) {
		const struct itr_iface_state *s = &r->d.dp->ifaces[i];
		fprintf(stderr, "itrackerd: %s: XDP %s%s, TC egress%s\n", s->name, s->xdp_mode_name,
		        s->xdp_adopted ? " (adopted)" : "", s->tc_adopted ? " (adopted)" : "");
	}
	if (o->routes.nrules) {
		r->routes = itr_routes_start(&r->d, &o->routes, err, len);
		if (!r->routes)
			return EXIT_RUNTIME;
		struct itr_routes_stats rst;
		itr_routes_get_stats(r->routes, &rst);
		fprintf(stderr, "itrackerd: following routes: %zu routes, %zu prefixes\n",
		        rst.routes, rst.prefixes);
	}
	if (r->price) {
		if (r->d.dp && r->d.dp->fd_matrix >= 0)
			itr_price_add_matrix(r->price, r->d.dp->fd_matrix);
		for (size_t i = 0; i < o->nprice_matrix; i++) {
			int fd = itr_stats_open_pinned(o->price_matrix[i], "matrix");
			if (fd < 0) {
				snprintf(err, len, "--price-matrix %s: %s", o->price_matrix[i],
				         strerror(-fd));
				return EXIT_RUNTIME;
			}
			r->price_fds[r->nprice_fds++] = fd;
			itr_price_add_matrix(r->price, fd);
		}
		if (itr_price_start(r->price)) {
			snprintf(err, len, "price controller: cannot start");
			return EXIT_RUNTIME;
		}
		fprintf(stderr, "itrackerd: price controller: %s, every %u s\n",
		        (r->d.dp || o->nprice_matrix) ? "measured inter-AS rates and swarm state"
		                                      : "swarm state only (no data plane)",
		        o->price_period);
	}
	return itr_tracker_start_janitor(r->tracker)
	           ? (snprintf(err, len, "tracker: cannot start"), EXIT_RUNTIME)
	           : 0;
}

/* --map-from: without a map file, the primary's first map is the start map. */
static int start_follower(struct run *r, struct itr_netmap **map, char *err, size_t len)
{
	struct itr_map_follow_config fc = {.url = r->o.map_from};
	if (!(r->follower = itr_map_follow_start(&fc, err, len)))
		return EXIT_CONFIG;
	fprintf(stderr, "itrackerd: map-from %s\n", r->o.map_from);
	if (!*map)
		*map = itr_map_follow_first(r->follower, r->o.map_from_wait_s * 1000, err, len);
	return *map ? 0 : EXIT_RUNTIME;
}

static int start_udp(struct run *r, char *err, size_t len)
{
	struct itr_options *o = &r->o;
	if (o->udp_off)
		return 0;
	unsigned workers = o->udp_workers ? o->udp_workers : itr_udp_default_workers();
	r->udp =
	    itr_udp_tracker_start_workers(r->tracker, o->udp_bind, o->udp_port, workers, err, len);
	if (!r->udp)
		return EXIT_RUNTIME;
	workers = itr_udp_tracker_workers(r->udp); /* a proxy may want more */
	fprintf(stderr, "itrackerd: UDP tracker on %s port %u, %u worker%s\n", o->udp_bind,
	        itr_udp_tracker_port(r->udp), workers, workers == 1 ? "" : "s");
	return 0;
}

/* Routes whose work grows with the request (ALTO, P4P ranking) run on the
 * HTTP worker pool, and so do announces and scrapes when the backend waits
 * on an upstream tracker: none of them can hold up /v1/status, /metrics or
 * a local announce. */
static const char *const heavy_routes[] = {
    "/alto",
    "/alto/ird",
    "/alto/networkmap",
    "/alto/costmap/num-routingcost",
    "/alto/costmap/ord-routingcost",
    "/alto/networkmap/filtered",
    "/alto/costmap/filtered",
    "/alto/endpointprop",
    "/alto/endpointcost",
    "/alto/itracker-map",
    "/v1/rank",
};

static int start_admin_socket(struct run *r, char *err, size_t len)
{
	const char *path = r->o.admin_socket;
	if (!path)
		return 0;
	/* systemd's RuntimeDirectory makes it; by hand it may be missing */
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return snprintf(err, len, "--admin-socket %s: %s: %s", path, dir,
			                strerror(errno)),
			       EXIT_RUNTIME;
	}
	struct itr_http_limits lim = {
	    .max_body = 4096,
	    .max_query = 1024,
	    .max_connections = 16,
	    .connection_timeout_s = 10,
	    .header_timeout_s = 10,
	    .request_timeout_s = 60,
	};
	r->admin_http = itr_http_new(&lim);
	if (!r->admin_http || itr_admin_register_socket(r->admin_http, &r->admin))
		return snprintf(err, len, "out of memory"), EXIT_RUNTIME;
	if (itr_http_start_unix(r->admin_http, path, 0600, (gid_t)-1, err, len))
		return EXIT_RUNTIME;
	fprintf(stderr, "itrackerd: admin API on %s\n", path);
	return 0;
}

static int start_http(struct run *r, char *err, size_t len)
{
	struct itr_options *o = &r->o;
	if (o->admin_token_file &&
	    !(r->admin_token = itr_admin_read_token(o->admin_token_file, err, len)))
		return EXIT_CONFIG;
	r->admin = (struct itr_admin){.daemon = &r->d,
	                              .routes = r->routes,
	                              .tracker = r->tracker,
	                              .price = r->price,
	                              .socket_path = o->admin_socket,
	                              .token = r->admin_token};
	int rc = start_admin_socket(r, err, len);
	if (rc || o->listen_off)
		return rc;
	const struct itr_announce_backend *backend = itr_tracker_active_backend(r->tracker);
	unsigned workers = o->http.workers;
	/* a proxied announce holds its worker for up to the upstream timeout */
	if (backend->threads > workers)
		workers = backend->threads;
	struct itr_http_limits lim = {
	    .max_body = o->max_body,
	    .max_query = 8192,
	    .max_connections = o->http.max_connections,
	    .connection_timeout_s = o->http.header_timeout_s,
	    .threads = o->http.threads,
	    .per_ip_connections = o->http.per_ip_connections,
	    .header_timeout_s = o->http.header_timeout_s,
	    .request_timeout_s = o->http.request_timeout_s,
	    .workers = workers,
	};
	r->http = itr_http_new(&lim);
	if (!r->http)
		return snprintf(err, len, "out of memory"), EXIT_RUNTIME;
	struct itr_p4p_api_config p4p;
	itr_p4p_api_config_default(&p4p);
	p4p.policy = o->policy_rank;
	struct itr_alto_config alto = {.base_uri = o->alto_base};
	if (itr_admin_register(r->http, &r->admin) || itr_p4p_api_register(r->http, &p4p) ||
	    itr_alto_register(r->http, &alto) || itr_tracker_http_register(r->http, r->tracker))
		return snprintf(err, len, "cannot register HTTP routes"), EXIT_RUNTIME;
	for (size_t i = 0; i < sizeof(heavy_routes) / sizeof(heavy_routes[0]); i++)
		itr_http_offload(r->http, heavy_routes[i]);
	if (backend->threads) {
		itr_http_offload(r->http, "/announce");
		itr_http_offload(r->http, "/scrape");
	}
	if (itr_http_start(r->http, o->listen_addr, o->listen_port, err, len))
		return EXIT_RUNTIME;
	struct itr_http_stats hs;
	itr_http_get_stats(r->http, &hs);
	fprintf(stderr, "itrackerd: HTTP on %s port %u (%u connections at most, %u per address)\n",
	        o->listen_addr, itr_http_port(r->http), hs.max_connections,
	        o->http.per_ip_connections);
	return 0;
}

/* SIGHUP reloads; SIGINT/SIGTERM end the run. */
static void serve(struct run *r, const sigset_t *sigs)
{
	for (;;) {
		siginfo_t si;
		struct timespec tick = {.tv_sec = 1};
		int sig = sigtimedwait(sigs, &si, &tick);
		if (sig == SIGHUP && r->follower) {
			fprintf(stderr, "itrackerd: SIGHUP: reconnecting to %s\n", r->o.map_from);
			itr_map_follow_reconnect(r->follower);
		} else if (sig == SIGHUP) {
			struct itr_reload_result res;
			itr_daemon_reload(&r->d, &res);
			if (res.ok)
				fprintf(stderr,
				        "itrackerd: SIGHUP: map reloaded: vtag %s generation %llu "
				        "(+%zu ~%zu -%zu)\n",
				        res.vtag, (unsigned long long)res.generation, res.added,
				        res.changed, res.deleted);
			else
				fprintf(stderr,
				        "itrackerd: SIGHUP: map rejected, old map stays: %s\n",
				        res.error);
		} else if (sig == SIGINT || sig == SIGTERM) {
			fprintf(stderr, "itrackerd: %s, stopping%s\n",
			        sig == SIGINT ? "SIGINT" : "SIGTERM",
			        r->o.keep_attached ? " (data plane stays attached)" : "");
			return;
		}
	}
}

int main(int argc, char **argv)
{
	static struct run run = {.d = {.reload_lock = PTHREAD_MUTEX_INITIALIZER}};
	struct run *r = &run;
	char err[1024] = "";

	itr_options_init(&r->o);
	if (itr_options_parse(&r->o, argc, argv, err, sizeof(err))) {
		fprintf(stderr, "itrackerd: %s\nTry 'itrackerd --help'.\n", err);
		itr_options_free(&r->o);
		return EXIT_CONFIG;
	}
	switch (r->o.action) {
	case ITR_OPTIONS_HELP:
		itr_options_help(stdout);
		return 0;
	case ITR_OPTIONS_VERSION:
		printf("itrackerd %s\n", ITRACKER_VERSION);
		return 0;
	case ITR_OPTIONS_PURGE:
		if (itr_dataplane_purge(r->o.loader.pin_root, err, sizeof(err))) {
			fprintf(stderr, "itrackerd: %s\n", err);
			return EXIT_RUNTIME;
		}
		printf("itrackerd: data plane removed from %s\n", r->o.loader.pin_root);
		return 0;
	case ITR_OPTIONS_RUN:
		break;
	}

	/* Signals are taken synchronously by the main thread; block them before
	 * any thread exists so service threads never see them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	r->d.map_file = r->o.map_from ? NULL : r->o.map_file; /* a followed map is not re-read */
	r->d.map_source = r->o.map_file ? r->o.map_file : r->o.map_from;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	r->d.started_at = (double)now.tv_sec + (double)now.tv_nsec / 1e9;

	/* Validate the map before touching the kernel: a bad file changes nothing. */
	struct itr_netmap_error merr = {0};
	struct itr_netmap *map = r->o.map_file ? itr_netmap_load_file(r->o.map_file, &merr) : NULL;
	int rc = 0;
	if (!map && r->o.map_file) {
		itr_netmap_error_format(&merr, err, sizeof(err));
		rc = EXIT_CONFIG;
	}
	if (!rc && r->o.map_from)
		rc = start_follower(r, &map, err, sizeof(err));
	if (!rc)
		rc = start_tracker(r, err, sizeof(err));
	if (rc && map)
		itr_netmap_unref(map);
	else if (!rc)
		rc = start_dataplane(r, map, err, sizeof(err));
	if (!rc && r->follower) /* from now on each version is installed */
		itr_map_follow_set_install(r->follower, itr_daemon_install_followed, &r->d);
	if (!rc)
		rc = start_udp(r, err, sizeof(err));
	if (!rc)
		rc = start_http(r, err, sizeof(err));
	if (rc)
		fprintf(stderr, "itrackerd: %s\n", err);
	else
		serve(r, &sigs);
	stop_all(r);
	return rc;
}
