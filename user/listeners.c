/* listeners.c - itrackerd's network-facing listeners (see listeners.h).
 * The order matters: the UDP tracker and the admin socket first, the HTTP
 * listener last, so that a port already in use fails the start before the
 * public listener answers anything.
 */
#include "listeners.h"

#include <stdio.h>
#include <stdlib.h>

#include "alto.h"
#include "http.h"
#include "options.h"
#include "p4p_api.h"
#include "tracker_http.h"
#include "udp_tracker.h"

enum { EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

static int start_udp(struct itr_listeners *l, const struct itr_options *o,
                     struct itr_tracker *tracker, char *err, size_t len)
{
	if (o->udp_off)
		return 0;
	l->udp = itr_udp_tracker_start_workers(tracker, o->udp_bind, o->udp_port, o->udp_workers,
	                                       err, len);
	if (!l->udp)
		return EXIT_RUNTIME;
	unsigned workers = itr_udp_tracker_workers(l->udp); /* a proxy may want more */
	fprintf(stderr, "itrackerd: UDP tracker on %s port %u, %u worker%s\n", o->udp_bind,
	        itr_udp_tracker_port(l->udp), workers, workers == 1 ? "" : "s");
	return 0;
}

static int start_http(struct itr_listeners *l, const struct itr_options *o,
                      struct itr_tracker *tracker, char *err, size_t len)
{
	if (o->admin_socket) {
		if (!(l->admin_http = itr_admin_start_socket(&l->admin, o->admin_socket, err, len)))
			return EXIT_RUNTIME;
		fprintf(stderr, "itrackerd: admin API on %s\n", o->admin_socket);
	}
	if (o->listen_off)
		return 0;
	struct itr_http_limits lim;
	itr_options_http_limits(o, itr_tracker_active_backend(tracker)->threads, &lim);
	l->http = itr_http_new(&lim);
	if (!l->http)
		return snprintf(err, len, "out of memory"), EXIT_RUNTIME;
	struct itr_p4p_api_config p4p;
	itr_p4p_api_config_default(&p4p);
	p4p.policy = o->policy_rank;
	struct itr_alto_config alto = {.base_uri = o->alto_base};
	if (itr_admin_register(l->http, &l->admin) || itr_p4p_api_register(l->http, &p4p) ||
	    itr_alto_register(l->http, &alto) || itr_tracker_http_register(l->http, tracker))
		return snprintf(err, len, "cannot register HTTP routes"), EXIT_RUNTIME;
	if (itr_http_start(l->http, o->listen_addr, o->listen_port, err, len))
		return EXIT_RUNTIME;
	struct itr_http_stats hs;
	itr_http_get_stats(l->http, &hs);
	fprintf(stderr, "itrackerd: HTTP on %s port %u (%u connections at most, %u per address)\n",
	        o->listen_addr, itr_http_port(l->http), hs.max_connections,
	        o->http.per_ip_connections);
	return 0;
}

int itr_listeners_start(struct itr_listeners *l, const struct itr_options *o, struct itr_daemon *d,
                        struct itr_routes *routes, struct itr_tracker *tracker,
                        struct itr_price *price, char *err, size_t len)
{
	if (o->admin_token_file &&
	    !(l->admin_token = itr_admin_read_token(o->admin_token_file, err, len)))
		return EXIT_CONFIG;
	l->admin = (struct itr_admin){.daemon = d,
	                              .routes = routes,
	                              .tracker = tracker,
	                              .price = price,
	                              .socket_path = o->admin_socket,
	                              .token = l->admin_token};
	int rc = start_udp(l, o, tracker, err, len);
	l->admin.udp = l->udp;
	return rc ? rc : start_http(l, o, tracker, err, len);
}

void itr_listeners_stop(struct itr_listeners *l)
{
	/* HTTP first: once it is gone no handler can see what is freed next. */
	itr_http_free(l->http);
	itr_http_free(l->admin_http);
	itr_udp_tracker_stop(l->udp);
	free(l->admin_token);
	*l = (struct itr_listeners){0};
}
