/* daemon.h - itrackerd's shared state and the one map-install path.
 *
 * Every map that reaches the kernel and the services goes through
 * itr_daemon_install_locked: check it fits the tries, sync the tries, bump
 * the data plane generation, publish it to readers, count the outcome.
 * File reloads (start, SIGHUP, the admin endpoint) enter through
 * itr_daemon_reload; a module that must see every file map first (the route
 * follower merges its routes in) registers as the file map handler and then
 * installs the result through the same path.
 */
#ifndef ITR_DAEMON_H
#define ITR_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader.h"
#include "netmap.h"
#include "shaper.h"

/* How a reload ended; each has its counter (and its metrics label). */
enum itr_reload_outcome {
	ITR_RELOAD_OK = 0,
	ITR_RELOAD_REJECTED, /* the map failed validation or does not fit: nothing changed */
	ITR_RELOAD_FAILED,   /* a valid map, but writing the kernel tries failed */
};

struct itr_reload_result {
	bool ok;
	enum itr_reload_outcome outcome;
	char error[512]; /* "file:line:col: reason" when !ok */
	char vtag[80];
	uint64_t generation;
	size_t added, changed, deleted;
};

/* Takes the reference to file, installs what it makes of it (through
 * itr_daemon_install_locked) or counts a refusal (itr_daemon_refused), and
 * fills res. Called without the reload lock held. */
typedef void (*itr_file_map_handler)(void *ctx, struct itr_netmap *file,
                                     struct itr_reload_result *res);

struct itr_daemon {
	const char *map_file;     /* NULL when the map comes only from a primary */
	const char *map_source;   /* the file, or the --map-from URL: for messages */
	struct itr_dataplane *dp; /* NULL with --no-dataplane */
	pthread_mutex_t reload_lock;
	uint64_t reloads_ok;
	uint64_t reloads_rejected; /* the map failed validation; old map kept */
	uint64_t reloads_failed;   /* valid map, but the kernel sync failed */
	double last_reload_ok;     /* CLOCK_REALTIME seconds of the last good install */
	uint64_t generation;       /* last generation written (0 without data plane) */
	double started_at;         /* CLOCK_REALTIME seconds */
	/* A file map with fewer than (100 - max_shrink_pct) % of the last
	 * installed file map's prefixes, or none at all, is refused unless
	 * forced (a truncated file would delete every prefix). 100: only the
	 * empty map is refused; 0: the default, 50. */
	unsigned max_shrink_pct;
	size_t file_prefixes; /* prefixes of the last installed file map */
	bool have_file_map;
	/* Set (under reload_lock) while someone must see file maps first. */
	itr_file_map_handler file_map_handler;
	void *file_map_ctx;
	/* --shape: every installed map sets the shaped classes' rates to its
	 * links' budgets. NULL: none. */
	struct itr_shaper *shaper;
};

/* Where the sync takes what the tries hold now from. */
enum itr_trie_basis {
	/* The published map; with none published, the tries' own content
	 * (after a restart they hold what the previous run left). */
	ITR_TRIES_HOLD_PUBLISHED = 0,
	/* Read the tries: they may be ahead of the published map. */
	ITR_TRIES_READ_BACK,
	/* The caller already wrote them (itr_daemon_write_trie_ops). */
	ITR_TRIES_ALREADY_WRITTEN,
};

/* The map a run starts with (takes the reference): warned about when
 * empty, refused when it would shrink what the tries hold unless force,
 * installed, logged. 0, or -1 with res->error and res->outcome (rejected:
 * the map; failed: the kernel). */
int itr_daemon_install_start_map(struct itr_daemon *d, struct itr_netmap *map, bool force,
                                 struct itr_reload_result *res);

/* Note the start time (/v1/status uptime). */
void itr_daemon_started(struct itr_daemon *d);

/* Re-read the map file and hand it to the file map handler, or install it.
 * A map that fails to parse, is empty or shrinks by more than
 * max_shrink_pct leaves everything as it was (rejected; force skips the
 * size check). */
void itr_daemon_reload(struct itr_daemon *d, struct itr_reload_result *res);
void itr_daemon_reload_forced(struct itr_daemon *d, bool force, struct itr_reload_result *res);

/* A new file map from elsewhere than the file (takes the reference): the
 * same as a reload from here on. */
void itr_daemon_install_file_map(struct itr_daemon *d, struct itr_netmap *map, bool force,
                                 struct itr_reload_result *res);

/* The size check of file maps: false, or true with res->error filled when
 * map would shrink the served one too much (see max_shrink_pct). */
bool itr_daemon_map_shrinks(const struct itr_daemon *d, const struct itr_netmap *map,
                            struct itr_reload_result *res);
/* A file map of that many prefixes was installed: the next one is
 * measured against it. */
void itr_daemon_file_map_installed(struct itr_daemon *d, size_t prefixes);

/* Install map as it is (takes the reference), syncing against the
 * published map: the route follower's first merged map. */
void itr_daemon_install_map(struct itr_daemon *d, struct itr_netmap *map,
                            struct itr_reload_result *res);

/* The install itself, for callers that hold d->reload_lock around more than
 * the install (the route follower orders its own publishes under it).
 * Takes the reference to map; counts ok, rejected (does not fit the tries)
 * or failed; the published map changes only when res->ok. */
void itr_daemon_install_locked(struct itr_daemon *d, struct itr_netmap *map,
                               enum itr_trie_basis basis, struct itr_reload_result *res);

/* One line on stderr saying how an install ended: "itrackerd: WHAT: vtag
 * V generation G (+added ~changed -deleted)", or "itrackerd: WHAT rejected
 * (or failed), old map stays: REASON". */
void itr_reload_result_log(const char *what, const struct itr_reload_result *res);

/* The --map-from follower's install callback (map_follow.h): install
 * map (a new reference, taken) like a file reload, and say so on stderr.
 * arg is the daemon. */
void itr_daemon_install_followed(void *arg, struct itr_netmap *map);

/* Count a map refused before it got to the install (res->error says why);
 * sets res->ok false and res->outcome. Takes the reload lock. */
void itr_daemon_refused(struct itr_daemon *d, struct itr_reload_result *res,
                        enum itr_reload_outcome outcome);

/* Write trie operations ahead of the served map (the route follower's
 * incremental path) and bump the generation, keeping the published map's
 * vtag. Takes the reload lock. 0 or -errno. */
int itr_daemon_write_trie_ops(struct itr_daemon *d, const struct itr_netmap_op *ops, size_t nops);

#endif
