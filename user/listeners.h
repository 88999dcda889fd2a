/* listeners.h - what itrackerd opens to the network, started last and
 * stopped first: the HTTP listener with every service's routes (admin
 * status, P4P, ALTO, tracker), the admin API's Unix socket, and the UDP
 * tracker's workers. main.c decides when; this module knows how.
 */
#ifndef ITR_LISTENERS_H
#define ITR_LISTENERS_H

#include <stddef.h>

#include "admin.h"

struct itr_options;
struct itr_daemon;
struct itr_routes;
struct itr_tracker;
struct itr_price;
struct itr_http_server;
struct itr_udp_tracker;

struct itr_listeners {
	struct itr_admin admin;
	struct itr_http_server *http;
	struct itr_http_server *admin_http; /* the admin API's Unix socket */
	char *admin_token;
	struct itr_udp_tracker *udp;
};

/* Start the UDP tracker, the admin socket and the HTTP listener as the
 * options say, saying on stderr where each listens. 0, or an exit status
 * (1 runtime, 2 configuration) with err filled; what started stays in l
 * for itr_listeners_stop. */
int itr_listeners_start(struct itr_listeners *l, const struct itr_options *o, struct itr_daemon *d,
                        struct itr_routes *routes, struct itr_tracker *tracker,
                        struct itr_price *price, char *err, size_t len);
/* Close everything started (safe on a zeroed or partly started l). */
void itr_listeners_stop(struct itr_listeners *l);

#endif
