/* alto_updates.h - ALTO incremental updates over server-sent events
 * (RFC 8895): the update stream service and its stream control service,
 * for the network map, the two cost maps and the itracker map document
 * (the whole map with ids, ASIDs and LOCs, which follower instances load).
 *
 *   POST /alto/updates           application/alto-updatestreamparams+json
 *                                -> text/event-stream
 *   POST /alto/updates/control?stream=ID   add or remove substreams (204)
 *
 * A client names substreams ("add": {"ID": {"resource-id": ...}}); the
 * stream opens with a control event carrying the control URI, then sends
 * each resource in full (unless the client's "tag" is already current),
 * and after every map change a JSON merge patch (RFC 7396) per substream,
 * or the full resource where the client asked for no incremental changes.
 * Patches are computed once per change, not once per client.
 */
#ifndef ITR_ALTO_UPDATES_H
#define ITR_ALTO_UPDATES_H

#include <stddef.h>

struct itr_http_server;
struct itr_alto_config;

struct itr_alto_updates_limits {
	unsigned max_streams;    /* open update streams (default 64) */
	unsigned max_substreams; /* per stream (default 8) */
	size_t max_pending;      /* bytes a client may fall behind (default 64 MiB) */
	unsigned heartbeat_ms;   /* comment line on idle streams (default 15000) */
};

/* Register the two routes and start the thread that turns map changes
 * into events. The service lives as long as srv (itr_http_attach). cfg is
 * the ALTO config (URIs and resource ids), limits may be NULL. 0 or -errno. */
int itr_alto_updates_register(struct itr_http_server *srv, const struct itr_alto_config *cfg,
                              const struct itr_alto_updates_limits *limits);

#endif
