/* admin.h - itrackerd's own endpoints: GET /v1/status, POST
 * /v1/admin/reload (see below who may), and the sources /metrics reads the
 * tracker and reload figures from. One context holds what they look at, so
 * main keeps no globals: main fills it before the HTTP server starts and
 * frees the parts only after the server is gone.
 */
#ifndef ITR_ADMIN_H
#define ITR_ADMIN_H

#include "daemon.h"
#include "http.h"
#include "metrics.h"
#include "price.h"
#include "routes.h"
#include "tracker.h"

/* Where itrackerd puts the admin socket and itrackerctl looks for it. */
#define ITR_ADMIN_SOCKET_DEFAULT "/run/itrackerd/admin.sock"

struct itr_admin {
	struct itr_daemon *daemon;
	struct itr_routes *routes;       /* NULL: routes not followed */
	struct itr_tracker *tracker;     /* NULL: none yet */
	struct itr_price *price;         /* NULL: no price controller */
	struct itr_udp_tracker *udp;     /* NULL: no UDP tracker; its figures in /metrics */
	struct itr_metrics_sources msrc; /* filled by itr_admin_register */
	/* Who may reload. A request that a proxy forwarded (Forwarded or
	 * X-Forwarded-For present) never may: the socket peer is the proxy. */
	const char *socket_path;      /* admin socket on: the HTTP listener refuses admin */
	const char *token;            /* not NULL: "Authorization: Bearer TOKEN" needed */
	struct itr_http_server *http; /* set by itr_admin_register: its figures in /metrics */
};

/* Route /v1/status, /v1/admin/reload and /metrics on srv (before it
 * starts); a must outlive the server. 0 or -1. */
int itr_admin_register(struct itr_http_server *srv, struct itr_admin *a);
/* The admin socket's routes: /v1/status and /v1/admin/reload. */
int itr_admin_register_socket(struct itr_http_server *srv, struct itr_admin *a);
/* The admin API on a Unix socket at path (mode 0600; its directory made
 * if missing), started; NULL with err filled. */
struct itr_http_server *itr_admin_start_socket(struct itr_admin *a, const char *path, char *err,
                                               size_t errlen);
/* Read the token of --admin-token-file (one line, at least 16 characters,
 * blanks around it dropped); malloc'ed, or NULL with err filled. */
char *itr_admin_read_token(const char *file, char *err, size_t errlen);

#endif
