/* daemon.c - the one path by which a network map reaches the kernel and the
 * services: check it fits the tries, sync them, bump the data plane
 * generation, publish to readers, count the outcome. Serialised by a mutex
 * because SIGHUP, the admin endpoint and the route follower can all ask at
 * once.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void count(struct itr_daemon *d, struct itr_reload_result *res,
                  enum itr_reload_outcome outcome)
{
	res->ok = outcome == ITR_RELOAD_OK;
	res->outcome = outcome;
	if (outcome == ITR_RELOAD_OK) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		d->reloads_ok++;
		d->last_reload_ok = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	} else if (outcome == ITR_RELOAD_REJECTED) {
		d->reloads_rejected++;
	} else {
		d->reloads_failed++;
	}
}

/* What stays served when an install does not happen, for the message. */
static void say_what_stays(const struct itr_netmap *old, struct itr_reload_result *res)
{
	size_t used = strlen(res->error);
	if (old)
		snprintf(res->error + used, sizeof(res->error) - used,
		         "; the previous map (vtag %s) stays published", itr_netmap_vtag(old));
	else
		snprintf(res->error + used, sizeof(res->error) - used, "; no map is published");
}

/* The tries must hold map: sync them (per basis), then move the generation
 * if anything the data plane sees changed. 0, or an outcome with
 * res->error filled. */
static int sync_dataplane(struct itr_daemon *d, const struct itr_netmap *old,
                          const struct itr_netmap *map, enum itr_trie_basis basis,
                          struct itr_reload_result *res, enum itr_reload_outcome *outcome)
{
	struct itr_dataplane *dp = d->dp;
	char why[256];
	if (!itr_netmap_fits(map, itr_netmap_trie_capacity(dp->fd_lpm_v4),
	                     itr_netmap_trie_capacity(dp->fd_lpm_v6), why, sizeof(why))) {
		snprintf(res->error, sizeof(res->error), "%s; nothing was written", why);
		*outcome = ITR_RELOAD_REJECTED;
		return -1;
	}
	struct itr_netmap_sync_stats st = {0};
	if (basis != ITR_TRIES_ALREADY_WRITTEN) {
		const struct itr_netmap *held = basis == ITR_TRIES_HOLD_PUBLISHED ? old : NULL;
		int rc = itr_netmap_sync_bpf(held, map, dp->fd_lpm_v4, dp->fd_lpm_v6, &st);
		if (rc) {
			snprintf(res->error, sizeof(res->error),
			         "updating the kernel tries failed: %s", strerror(-rc));
			*outcome = ITR_RELOAD_FAILED;
			return -1;
		}
	}
	res->added = st.added;
	res->changed = st.changed;
	res->deleted = st.deleted;
	struct itr_config cfg;
	bool vtag_moved =
	    itr_dataplane_get_config(dp, &cfg) != 0 || strcmp(cfg.vtag, res->vtag) != 0;
	/* An unchanged map keeps the generation: flows stay classified. */
	if (st.added || st.changed || st.deleted || vtag_moved) {
		uint64_t gen = 0;
		if (itr_dataplane_bump_generation(dp, res->vtag, &gen) == 0)
			d->generation = gen;
	} else {
		d->generation = cfg.generation;
	}
	return 0;
}

void itr_daemon_install_locked(struct itr_daemon *d, struct itr_netmap *map,
                               enum itr_trie_basis basis, struct itr_reload_result *res)
{
	struct itr_netmap *old = itr_netmap_current();
	enum itr_reload_outcome outcome = ITR_RELOAD_OK;

	memset(res, 0, sizeof(*res));
	snprintf(res->vtag, sizeof(res->vtag), "%s", itr_netmap_vtag(map));
	if (d->dp && sync_dataplane(d, old, map, basis, res, &outcome)) {
		say_what_stays(old, res);
		itr_netmap_unref(map);
	} else {
		itr_netmap_publish(map);
		/* the published map holds the reference; the lock keeps it there */
		itr_shaper_follow_map(d->shaper, map);
	}
	res->generation = d->generation;
	count(d, res, outcome);
	itr_netmap_unref(old);
}

void itr_daemon_install_map(struct itr_daemon *d, struct itr_netmap *map,
                            struct itr_reload_result *res)
{
	pthread_mutex_lock(&d->reload_lock);
	itr_daemon_install_locked(d, map, ITR_TRIES_HOLD_PUBLISHED, res);
	pthread_mutex_unlock(&d->reload_lock);
}

void itr_daemon_refused(struct itr_daemon *d, struct itr_reload_result *res,
                        enum itr_reload_outcome outcome)
{
	pthread_mutex_lock(&d->reload_lock);
	count(d, res, outcome);
	pthread_mutex_unlock(&d->reload_lock);
}

bool itr_daemon_map_shrinks(const struct itr_daemon *d, const struct itr_netmap *map,
                            struct itr_reload_result *res)
{
	size_t n = itr_netmap_prefix_count(map);
	if (n == 0) {
		snprintf(res->error, sizeof(res->error),
		         "the map has no prefixes: every address would lose its PID (a truncated "
		         "file?); force the reload to install it anyway");
		return true;
	}
	unsigned pct = d->max_shrink_pct == 0    ? 50
	               : d->max_shrink_pct > 100 ? 100
	                                         : d->max_shrink_pct;
	if (d->have_file_map &&
	    (unsigned long long)n * 100 < (unsigned long long)d->file_prefixes * (100 - pct)) {
		snprintf(res->error, sizeof(res->error),
		         "the map has %zu prefixes, the running one %zu: it would lose more than "
		         "%u %% of them (--max-map-shrink); force the reload to install it anyway",
		         n, d->file_prefixes, pct);
		return true;
	}
	return false;
}

void itr_daemon_file_map_installed(struct itr_daemon *d, size_t prefixes)
{
	d->file_prefixes = prefixes;
	d->have_file_map = true;
}

void itr_daemon_install_file_map(struct itr_daemon *d, struct itr_netmap *map, bool force,
                                 struct itr_reload_result *res)
{
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&d->reload_lock);
	bool shrinks = !force && itr_daemon_map_shrinks(d, map, res);
	pthread_mutex_unlock(&d->reload_lock);
	if (shrinks) {
		itr_netmap_unref(map);
		size_t used = strlen(res->error);
		snprintf(res->error + used, sizeof(res->error) - used, "; the running map stays");
		itr_daemon_refused(d, res, ITR_RELOAD_REJECTED);
		return;
	}
	size_t prefixes = itr_netmap_prefix_count(map);
	pthread_mutex_lock(&d->reload_lock);
	itr_file_map_handler handler = d->file_map_handler;
	void *ctx = d->file_map_ctx;
	if (!handler) {
		itr_daemon_install_locked(d, map, ITR_TRIES_HOLD_PUBLISHED, res);
	} else {
		pthread_mutex_unlock(&d->reload_lock);
		memset(res, 0, sizeof(*res));
		handler(ctx, map, res);
		pthread_mutex_lock(&d->reload_lock);
	}
	if (res->ok) {
		d->file_prefixes = prefixes;
		d->have_file_map = true;
	}
	pthread_mutex_unlock(&d->reload_lock);
}

void itr_reload_result_log(const char *what, const struct itr_reload_result *res)
{
	if (res->ok)
		fprintf(stderr, "itrackerd: %s: vtag %s generation %llu (+%zu ~%zu -%zu)\n", what,
		        res->vtag, (unsigned long long)res->generation, res->added, res->changed,
		        res->deleted);
	else
		fprintf(stderr, "itrackerd: %s %s, old map stays: %s\n", what,
		        res->outcome == ITR_RELOAD_FAILED ? "failed" : "rejected", res->error);
}

void itr_daemon_install_followed(void *arg, struct itr_netmap *map)
{
	struct itr_daemon *d = arg;
	struct itr_reload_result res;
	char what[300];
	itr_daemon_install_file_map(d, map, false, &res);
	snprintf(what, sizeof(what), "map from %s", d->map_source);
	itr_reload_result_log(what, &res);
}

int itr_daemon_install_start_map(struct itr_daemon *d, struct itr_netmap *map, bool force,
                                 struct itr_reload_result *res)
{
	memset(res, 0, sizeof(*res));
	if (itr_netmap_warning(map))
		fprintf(stderr, "itrackerd: warning: %s: %s\n", d->map_source,
		        itr_netmap_warning(map));
	/* an empty map would delete every prefix the tries hold */
	if (!force && itr_daemon_map_shrinks(d, map, res)) {
		char why[sizeof(res->error)];
		snprintf(why, sizeof(why), "%s", res->error);
		snprintf(res->error, sizeof(res->error), "%.300s: %.180s (--force)", d->map_source,
		         why);
		res->ok = false;
		res->outcome = ITR_RELOAD_REJECTED;
		itr_netmap_unref(map);
		return -1;
	}
	size_t prefixes = itr_netmap_prefix_count(map);
	itr_daemon_install_map(d, map, res);
	if (!res->ok)
		return -1;
	itr_daemon_file_map_installed(d, prefixes);
	char what[300];
	snprintf(what, sizeof(what), "map %s loaded", d->map_source);
	itr_reload_result_log(what, res);
	return 0;
}

void itr_daemon_started(struct itr_daemon *d)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	d->started_at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void itr_daemon_reload(struct itr_daemon *d, struct itr_reload_result *res)
{
	itr_daemon_reload_forced(d, false, res);
}

void itr_daemon_reload_forced(struct itr_daemon *d, bool force, struct itr_reload_result *res)
{
	if (!d->map_file) {
		memset(res, 0, sizeof(*res));
		snprintf(res->error, sizeof(res->error),
		         "no map file: the map follows %s (SIGHUP reconnects)", d->map_source);
		itr_daemon_refused(d, res, ITR_RELOAD_REJECTED);
		return;
	}
	struct itr_netmap_error err = {0};
	struct itr_netmap *map = itr_netmap_load_file(d->map_file, &err);
	if (!map) {
		memset(res, 0, sizeof(*res));
		itr_netmap_error_format(&err, res->error, sizeof(res->error));
		itr_daemon_refused(d, res, ITR_RELOAD_REJECTED);
		return;
	}
	itr_daemon_install_file_map(d, map, force, res);
}

int itr_daemon_write_trie_ops(struct itr_daemon *d, const struct itr_netmap_op *ops, size_t nops)
{
	if (!nops || !d->dp)
		return 0;
	pthread_mutex_lock(&d->reload_lock);
	int rc = itr_netmap_write_ops(d->dp->fd_lpm_v4, d->dp->fd_lpm_v6, ops, nops);
	if (!rc) {
		/* The served map (and its vtag) follows later; until then the
		 * config keeps the served map's vtag. */
		struct itr_netmap *cur = itr_netmap_current();
		uint64_t gen = 0;
		if (itr_dataplane_bump_generation(d->dp, cur ? itr_netmap_vtag(cur) : "", &gen) ==
		    0)
			d->generation = gen;
		itr_netmap_unref(cur);
	}
	pthread_mutex_unlock(&d->reload_lock);
	return rc;
}
