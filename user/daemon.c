/* daemon.c - the one path by which a network map reaches the kernel and the
 * services: parse (or take a built map), sync the tries, bump the data plane
 * generation, publish to readers. Serialised by a mutex because SIGHUP, the
 * admin endpoint and the route follower can all ask at once.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void install_locked(struct itr_daemon *d, struct itr_netmap *map,
                           struct itr_reload_result *res)
{
	struct itr_netmap *old = itr_netmap_current();

	snprintf(res->vtag, sizeof(res->vtag), "%s", itr_netmap_vtag(map));
	res->generation = d->generation;
	if (d->dp) {
		struct itr_netmap_sync_stats st = {0};
		/* After a restart the tries hold what the previous run left:
		 * diff against their real content, not against our memory. */
		const struct itr_netmap *believed = old;
		int rc =
		    itr_netmap_sync_bpf(believed, map, d->dp->fd_lpm_v4, d->dp->fd_lpm_v6, &st);
		if (rc) {
			snprintf(res->error, sizeof(res->error),
			         "updating the kernel tries failed: %s; the previous map stays "
			         "published",
			         strerror(-rc));
			res->ok = false;
			d->reloads_failed++;
			itr_netmap_unref(map);
			if (old)
				itr_netmap_unref(old);
			return;
		}
		res->added = st.added;
		res->changed = st.changed;
		res->deleted = st.deleted;
		struct itr_config cfg;
		bool vtag_moved =
		    itr_dataplane_get_config(d->dp, &cfg) != 0 || strcmp(cfg.vtag, res->vtag) != 0;
		/* An unchanged map keeps the generation: flows stay classified. */
		if (st.added || st.changed || st.deleted || vtag_moved) {
			uint64_t gen = 0;
			if (itr_dataplane_bump_generation(d->dp, res->vtag, &gen) == 0)
				d->generation = gen;
		} else {
			d->generation = cfg.generation;
		}
		res->generation = d->generation;
	}
	if (old)
		itr_netmap_unref(old);
	itr_netmap_publish(map);
	res->ok = true;
	d->reloads_ok++;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	d->last_reload_ok = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void itr_daemon_install_map(struct itr_daemon *d, struct itr_netmap *map,
                            struct itr_reload_result *res)
{
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&d->reload_lock);
	install_locked(d, map, res);
	pthread_mutex_unlock(&d->reload_lock);
}

void itr_daemon_reload(struct itr_daemon *d, struct itr_reload_result *res)
{
	struct itr_netmap_error err;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&d->reload_lock);
	memset(&err, 0, sizeof(err));
	struct itr_netmap *map = itr_netmap_load_file(d->map_file, &err);
	if (!map) {
		itr_netmap_error_format(&err, res->error, sizeof(res->error));
		res->ok = false;
		d->reloads_rejected++;
	} else {
		install_locked(d, map, res);
	}
	pthread_mutex_unlock(&d->reload_lock);
}
