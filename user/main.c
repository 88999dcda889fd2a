/* main.c - itrackerd: read the options, wire the modules together, run.
 *
 * Nothing here is logic of its own: the options are user/options.c, the
 * data plane user/loader.c, the map path user/daemon.c + user/netmap*.c,
 * the services user/http.c with the handlers that register on it, the
 * daemon's own endpoints user/admin.c. main() only decides what runs, in
 * which order, and how it stops: every option is checked before anything
 * touches the kernel, and every exit after that goes through one cleanup.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "listeners.h"
#include "map_follow.h"
#include "options.h"
#include "price.h"
#include "price_cluster.h"
#include "redis_store.h"

/* Exit statuses (see --help). */
enum { EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

/* Everything a run may have started; stop_all undoes whatever is set. */
struct run {
	struct itr_options o;
	struct itr_daemon d;
	struct itr_listeners net; /* HTTP, the admin socket, UDP */
	struct itr_tracker *tracker;
	struct itr_proxy *proxy;
	struct itr_redis_store *store;           /* --store redis-cluster://... */
	struct itr_price_cluster *price_cluster; /* rates summed in that cluster */
	struct itr_routes *routes;
	struct itr_map_follower *follower; /* --map-from */
	struct itr_price *price;           /* NULL: --gateways and --max-external fixed */
	struct itr_shaper *shaper;         /* --shape */
};

static void stop_all(struct run *r)
{
	itr_listeners_stop(&r->net); /* first: no handler sees what is freed next */
	itr_map_follow_stop(r->follower);
	itr_routes_stop(r->routes);
	itr_proxy_free(r->proxy);
	/* the price thread may be reading the cluster: stop it before the
	 * cluster client goes */
	itr_price_stop(r->price);
	itr_price_cluster_free(r->price_cluster);
	itr_redis_store_free(r->store);
	itr_tracker_free(r->tracker);
	itr_price_free(r->price);
	itr_dataplane_close(r->d.dp, r->o.keep_attached);
	r->d.shaper = NULL;
	itr_shaper_free(r->shaper, r->o.keep_attached);
	struct itr_netmap *map = itr_netmap_current();
	itr_netmap_publish(NULL);
	itr_netmap_unref(map);
	itr_options_free(&r->o);
}

/* The price controller's hook before a sample (itr_price_set_before_sample). */
static void fold_dataplane(void *dp)
{
	itr_dataplane_fold(dp);
}

/* The user-space parts that need no kernel: built before the data plane
 * so that a bad upstream URL changes nothing. */
static int start_tracker(struct run *r, char *err, size_t len)
{
	struct itr_options *o = &r->o;
	if (o->tracker.loopback_peers)
		fprintf(stderr, "itrackerd: loopback addresses are accepted as peers%s\n",
		        strcmp(o->loopback_peers, "auto") ? ""
		                                          : " (every listener is on loopback)");
	/* The price controller; its matrix sources come with the data plane. */
	struct itr_price_config pcfg;
	if (itr_options_price_config(o, &pcfg)) {
		pcfg.map_lock = &r->d.reload_lock;
		if (!(r->price = itr_price_new(&pcfg)))
			return snprintf(err, len, "price controller: out of memory"), EXIT_RUNTIME;
	}
	o->tracker.price = r->price;
	r->tracker = itr_tracker_new(&o->tracker, NULL, err, len);
	if (!r->tracker)
		return EXIT_RUNTIME;
	if (o->store && !(r->store = itr_redis_store_new(o->store, r->tracker, err, len)))
		return EXIT_CONFIG;
	if (r->store)
		itr_tracker_use_backend(r->tracker, itr_redis_store_backend(r->store));
	if (r->store && r->price &&
	    !(r->price_cluster = itr_price_cluster_attach(
	          r->price, itr_redis_store_cluster(r->store), (double)o->price_period)))
		return snprintf(err, len, "price controller: out of memory"), EXIT_RUNTIME;
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
	}
	struct itr_reload_result res;
	r->d.max_shrink_pct = o->max_map_shrink;
	if (itr_daemon_install_start_map(&r->d, map, o->force, &res)) {
		snprintf(err, len, "%s", res.error);
		return res.outcome == ITR_RELOAD_REJECTED ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	itr_dataplane_describe(r->d.dp, "itrackerd: ", stderr);
	if (o->nshape) {
		struct itr_netmap *cur = itr_netmap_current();
		r->shaper = itr_shaper_start(o->shape, o->nshape, cur, err, len);
		itr_netmap_unref(cur);
		if (!r->shaper)
			return EXIT_RUNTIME;
		pthread_mutex_lock(&r->d.reload_lock);
		r->d.shaper = r->shaper; /* from now on every install moves the rates */
		pthread_mutex_unlock(&r->d.reload_lock);
	}
	/* Least privilege from here on: no thread exists yet, so every thread
	 * started below inherits the trimmed set. */
	if (o->user) {
		struct itr_privilege_needs needs;
		char dir[256];
		itr_options_privilege_needs(o, r->d.dp ? r->d.dp->pin_root : NULL, &needs, dir,
		                            sizeof(dir));
		if (itr_drop_privileges(o->user, &needs, err, len) < 0)
			return EXIT_RUNTIME;
		fprintf(stderr, "itrackerd: running as %s (uid %u), capabilities: %s\n", o->user,
		        (unsigned)getuid(), itr_privileges_describe());
	}
	if (o->routes.nrules) {
		r->routes = itr_routes_start(&r->d, &o->routes, err, len);
		if (!r->routes)
			return EXIT_RUNTIME;
	}
	if (r->price) {
		if (r->d.dp)
			itr_price_set_before_sample(r->price, fold_dataplane, r->d.dp);
		if (itr_price_start_with(r->price, r->d.dp ? r->d.dp->fd_matrix : -1,
		                         o->price_matrix, o->nprice_matrix, err, len))
			return EXIT_RUNTIME;
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

/* SIGHUP reloads; SIGINT/SIGTERM end the run. */
static void serve(struct run *r, const sigset_t *sigs)
{
	bool fold_failed = false; /* said once, until a fold works again */
	for (;;) {
		siginfo_t si;
		/* The wake-up also folds the flows' BitTorrent counts into the
		 * PID matrix, so the matrix lags the packets by at most this. */
		struct timespec tick = {.tv_sec = ITR_FOLD_PERIOD_MS / 1000,
		                        .tv_nsec = ITR_FOLD_PERIOD_MS % 1000 * 1000000L};
		int sig = sigtimedwait(sigs, &si, &tick);
		int fold_err = r->d.dp ? itr_dataplane_fold(r->d.dp) : 0;
		if (fold_err && !fold_failed)
			fprintf(stderr,
			        "itrackerd: folding the flows' BitTorrent counts into the matrix "
			        "failed: %s (the matrix falls behind until it works again)\n",
			        strerror(-fold_err));
		fold_failed = fold_err != 0;
		if (sig == SIGHUP && r->follower) {
			fprintf(stderr, "itrackerd: SIGHUP: reconnecting to %s\n", r->o.map_from);
			itr_map_follow_reconnect(r->follower);
		} else if (sig == SIGHUP) {
			struct itr_reload_result res;
			itr_daemon_reload(&r->d, &res);
			itr_reload_result_log("SIGHUP: map reload", &res);
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
	struct run run = {.d = {.reload_lock = PTHREAD_MUTEX_INITIALIZER}};
	struct run *r = &run;
	char err[1024] = "";

	itr_options_init(&r->o);
	if (itr_options_parse(&r->o, argc, argv, err, sizeof(err))) {
		fprintf(stderr, "itrackerd: %s\nTry 'itrackerd --help'.\n", err);
		itr_options_free(&r->o);
		return EXIT_CONFIG;
	}
	if (r->o.action != ITR_OPTIONS_RUN)
		return itr_options_other_action(&r->o);

	/* Signals are taken synchronously by the main thread; block them before
	 * any thread exists so service threads never see them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Blocks of 1 MB and more (cost map answers, the swarm store's tables)
	 * come straight from mmap and go back to the system when freed. With
	 * glibc's default the threshold grows to the largest block ever freed
	 * (up to 32 MB), after which such blocks sit in the worker threads'
	 * arenas, whose free tops malloc_trim does not return: each of the
	 * HTTP workers kept 16 MB after building one large filtered cost map. */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	r->d.map_file = r->o.map_from ? NULL : r->o.map_file; /* a followed map is not re-read */
	r->d.map_source = r->o.map_file ? r->o.map_file : r->o.map_from;
	itr_daemon_started(&r->d);

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
	if (!rc && r->o.nshape &&
	    ((map && itr_shaper_check(r->o.shape, r->o.nshape, map, err, sizeof(err))) ||
	     itr_shaper_probe(r->o.shape, r->o.nshape, err, sizeof(err))))
		rc = EXIT_CONFIG;
	if (!rc)
		rc = start_tracker(r, err, sizeof(err));
	if (rc && map)
		itr_netmap_unref(map);
	else if (!rc)
		rc = start_dataplane(r, map, err, sizeof(err));
	if (!rc && r->follower) /* from now on each version is installed */
		itr_map_follow_set_install(r->follower, itr_daemon_install_followed, &r->d);
	if (!rc)
		rc = itr_listeners_start(&r->net, &r->o, &r->d, r->routes, r->tracker, r->price,
		                         err, sizeof(err));
	if (rc)
		fprintf(stderr, "itrackerd: %s\n", err);
	else
		serve(r, &sigs);
	stop_all(r);
	return rc;
}
