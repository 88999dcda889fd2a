/* daemon.h - itrackerd's shared state: the options it runs with, the data
 * plane it owns, and the map reload that SIGHUP, the admin endpoint and the
 * route follower all go through.
 */
#ifndef ITR_DAEMON_H
#define ITR_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "netmap.h"

struct itr_reload_result {
	bool ok;
	char error[512]; /* "file:line:col: reason" when !ok */
	char vtag[80];
	uint64_t generation;
	size_t added, changed, deleted;
};

struct itr_daemon {
	const char *map_file;
	struct itr_dataplane *dp; /* NULL with --no-dataplane */
	pthread_mutex_t reload_lock;
	uint64_t reloads_ok;
	uint64_t reloads_rejected; /* the map failed validation; old map kept */
	uint64_t reloads_failed;   /* valid map, but the kernel sync failed */
	double last_reload_ok;     /* CLOCK_REALTIME seconds of the last good install */
	uint64_t generation;       /* last generation written (0 without data plane) */
	double started_at;         /* CLOCK_REALTIME seconds */
};

/* Re-read the map file, sync the tries, bump the generation and publish the
 * new map. A map that fails to parse leaves everything as it was. */
void itr_daemon_reload(struct itr_daemon *d, struct itr_reload_result *res);

/* Install an already built map (used by the reload and the route follower). */
void itr_daemon_install_map(struct itr_daemon *d, struct itr_netmap *map,
                            struct itr_reload_result *res);

#endif
