/* map_follow.h - take the network map from a primary itrackerd over its
 * ALTO update stream (RFC 8895): `itrackerd --map-from URL`.
 *
 * The follower reads the primary's IRD (URL), finds the update stream and
 * the itracker map document it carries, subscribes with incremental
 * changes, and hands every version it rebuilds (the full document first,
 * then each RFC 7396 merge patch applied to it) to an install callback:
 * in itrackerd that is the one map-install path, so a followed map reaches
 * the kernel tries exactly as a file reload does. A broken stream is
 * reopened with backoff; the installed map stays meanwhile.
 */
#ifndef ITR_MAP_FOLLOW_H
#define ITR_MAP_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>

struct itr_netmap;

/* Receives a new reference to each map version (it must unref it). */
typedef void (*itr_map_follow_install_fn)(void *arg, struct itr_netmap *map);

/* ---- the event state machine (no network; unit-tested) ----------------- */

struct itr_alto_stream;

struct itr_map_follow_state {
	char substream[65];
	struct itr_alto_stream *stream; /* the stream's resources (alto_stream.h) */
	char control_uri[512];
	bool stopped; /* the primary stopped our substream */
};

/* 0, or -ENOMEM. */
int itr_map_follow_state_init(struct itr_map_follow_state *st, const char *substream);
void itr_map_follow_state_free(struct itr_map_follow_state *st);
/* Apply one event. *out gets a new map when the event made one (full
 * document or patch), else NULL. 0, or -1 with err saying why (a patch
 * before any document, a document that is not a valid map, ...). */
int itr_map_follow_event(struct itr_map_follow_state *st, const char *type, const char *data,
                         size_t len, struct itr_netmap **out, char *err, size_t errlen);

/* ---- the follower thread ------------------------------------------------- */

struct itr_map_follower;

struct itr_map_follow_config {
	const char *url;         /* the primary's IRD, e.g. http://10.0.0.1:6969/alto */
	unsigned idle_ms;        /* reconnect when nothing came this long (45000) */
	unsigned backoff_max_ms; /* between reconnects (5000) */
	bool verbose;            /* log each version installed */
};

/* Check the URL and start the thread. Versions that arrive before an
 * install callback is set are kept (the newest one only) for
 * itr_map_follow_take. NULL with err filled on a bad URL or ENOMEM. */
struct itr_map_follower *itr_map_follow_start(const struct itr_map_follow_config *cfg, char *err,
                                              size_t errlen);
/* Wait until a first version arrived (or timeout_ms passed) and take the
 * newest one kept: a new reference, or NULL with err saying what failed
 * last (prefixed with the URL and the time waited). */
struct itr_netmap *itr_map_follow_first(struct itr_map_follower *f, unsigned timeout_ms, char *err,
                                        size_t errlen);
/* From now on every version goes to install (a kept one at once): set it
 * once the daemon can install maps. */
void itr_map_follow_set_install(struct itr_map_follower *f, itr_map_follow_install_fn install,
                                void *arg);
/* Drop the stream and open it again (SIGHUP). */
void itr_map_follow_reconnect(struct itr_map_follower *f);
void itr_map_follow_stop(struct itr_map_follower *f);

#endif
