/* admin.c - /v1/status, /v1/admin/reload and the /metrics sources that
 * belong to the daemon as a whole (tracker and reload figures). */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "announce_backend.h"
#include "json_text.h"
#include "options.h"

static double now_realtime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void reply_json(struct itr_http_response *resp, int status, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text) {
		itr_http_set_body(resp, 500, "text/plain", strdup("out of memory\n"), 14);
		return;
	}
	itr_http_set_body(resp, status, "application/json", text, strlen(text));
}

static json_t *interfaces_json(const struct itr_dataplane *dp)
{
	json_t *ifs = json_array();
	for (size_t i = 0; dp && i < dp->nifaces; i++) {
		const struct itr_iface_state *s = &dp->ifaces[i];
		json_array_append_new(
		    ifs, json_pack("{s:s,s:i,s:s,s:s,s:b,s:b}", "name", s->name, "ifindex",
		                   s->ifindex, "ingress", s->ingress_tc ? "tc" : "xdp", "xdp",
		                   !s->ingress_tc && s->xdp_mode_name ? s->xdp_mode_name : "none",
		                   "tc_egress", s->tc_attached, "adopted",
		                   s->xdp_adopted || s->tc_adopted || s->tc_in_adopted));
	}
	return ifs;
}

static void handle_status(const struct itr_http_request *req, struct itr_http_response *resp,
                          void *arg)
{
	const struct itr_admin *a = arg;
	const struct itr_daemon *d = a->daemon;
	(void)req;
	json_t *o = json_object();
	json_object_set_new(o, "version", json_string(ITRACKER_VERSION));
	json_object_set_new(o, "pid", json_integer(getpid()));
	json_object_set_new(o, "uptime_s", json_real(now_realtime() - d->started_at));
	json_object_set_new(o, "map_file", json_string(d->map_file));
	struct itr_netmap *map = itr_netmap_current();
	json_object_set_new(o, "vtag", map ? json_string(itr_netmap_vtag(map)) : json_null());
	json_object_set_new(o, "pids",
	                    json_integer(map ? (json_int_t)itr_netmap_pid_count(map) : 0));
	itr_netmap_unref(map);
	json_object_set_new(o, "generation", json_integer((json_int_t)d->generation));
	json_object_set_new(o, "dataplane", json_boolean(d->dp != NULL));
	if (d->dp) {
		json_object_set_new(o, "pin_root", json_string(d->dp->pin_root));
		json_object_set_new(o, "maps_adopted", json_boolean(d->dp->maps_adopted));
	}
	json_object_set_new(o, "interfaces", interfaces_json(d->dp));
	json_object_set_new(o, "reloads",
	                    json_pack("{s:I,s:I,s:I}", "ok", (json_int_t)d->reloads_ok, "rejected",
	                              (json_int_t)d->reloads_rejected, "failed",
	                              (json_int_t)d->reloads_failed));
	if (a->routes) {
		struct itr_routes_stats rs;
		itr_routes_get_stats(a->routes, &rs);
		json_object_set_new(
		    o, "routes",
		    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "routes", (json_int_t)rs.routes,
		              "prefixes", (json_int_t)rs.prefixes, "events", (json_int_t)rs.events,
		              "resyncs", (json_int_t)rs.resyncs, "publishes",
		              (json_int_t)rs.publishes, "pending", (json_int_t)rs.pending));
	}
	if (a->price)
		json_object_set_new(o, "policy", itr_price_status_json(a->price));
	if (d->shaper)
		json_object_set_new(o, "shaper", itr_shaper_status_json(d->shaper));
	reply_json(resp, 200, o);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		static const uint8_t v4mapped_lo[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (IN6_IS_ADDR_LOOPBACK(&s->sin6_addr))
			return true;
		return memcmp(s->sin6_addr.s6_addr, v4mapped_lo, 12) == 0 &&
		       s->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

/* Why this request may not use the admin API, or NULL if it may. */
static const char *admin_refusal(const struct itr_admin *a, const struct itr_http_request *req,
                                 int *status)
{
	*status = 403;
	/* Behind a reverse proxy the socket peer is the proxy, whoever the
	 * client is: a forwarded request is never trusted with admin. */
	if (req->forwarded || req->forwarded_for)
		return "the admin API refuses forwarded requests";
	if (req->peer.ss_family != AF_UNIX) {
		if (a->socket_path)
			return "the admin API answers on its Unix socket only";
		if (!is_loopback(&req->peer))
			return "the admin API answers on loopback only";
	}
	if (a->token) {
		static const char bearer[] = "Bearer ";
		const char *h = req->authorization;
		size_t tlen = strlen(a->token);
		*status = 401;
		if (!h || strncasecmp(h, bearer, sizeof(bearer) - 1) != 0)
			return "the admin API needs Authorization: Bearer TOKEN";
		h += sizeof(bearer) - 1;
		if (strlen(h) != tlen || sodium_memcmp(h, a->token, tlen) != 0)
			return "wrong admin token";
	}
	return NULL;
}

static void handle_reload(const struct itr_http_request *req, struct itr_http_response *resp,
                          void *arg)
{
	struct itr_admin *a = arg;
	struct itr_reload_result res;

	int status;
	const char *why = admin_refusal(a, req, &status);
	if (why) {
		reply_json(
		    resp, status,
		    json_pack("{s:{s:s,s:s}}", "error", "code", "E_FORBIDDEN", "reason", why));
		return;
	}
	/* ?force=1: install a map that is empty or shrinks past --max-map-shrink */
	bool force =
	    req->query && (strstr(req->query, "force=1") || strstr(req->query, "force=true"));
	itr_daemon_reload_forced(a->daemon, force, &res);
	itr_reload_result_log("admin: map reload", &res);
	if (!res.ok) {
		reply_json(resp, 422, json_pack("{s:{s:s}}", "error", "reason", res.error));
		return;
	}
	reply_json(resp, 200,
	           json_pack("{s:s,s:I,s:I,s:I,s:I}", "vtag", res.vtag, "generation",
	                     (json_int_t)res.generation, "added", (json_int_t)res.added, "changed",
	                     (json_int_t)res.changed, "deleted", (json_int_t)res.deleted));
}

static void metrics_tracker(void *arg, struct itr_metrics_tracker *out)
{
	const struct itr_admin *a = arg;
	struct itr_tracker_stats st;
	memset(out, 0, sizeof(*out));
	if (!a->tracker)
		return;
	itr_tracker_stats(a->tracker, &st);
	/* swarms and peers where they are held: the local store, or what the
	 * active backend (proxy mode, a shared store) reports */
	struct itr_backend_stats bs;
	itr_backend_stats(itr_tracker_active_backend(a->tracker), &bs);
	out->torrents = bs.torrents;
	out->peers = bs.peers;
	/* counted by the front end that took them, whichever backend answered */
	for (int t = 0; t < ITR_TRANSPORT_MAX; t++)
		for (int o = 0; o < ITR_OUTCOME_MAX; o++)
			out->announces[t == ITR_TRANSPORT_UDP ? ITR_METRICS_PROTO_UDP
			                                      : ITR_METRICS_PROTO_HTTP][o] =
			    st.by_transport[t][o];
	for (int r = ITR_REFUSED_NONE + 1;
	     r < ITR_REFUSED_MAX && out->nrefused < ITR_METRICS_REFUSED_MAX; r++) {
		out->refused_reason[out->nrefused] = itr_refusal_name((enum itr_refusal)r);
		out->refused[out->nrefused++] = st.refused[r];
	}
	out->evicted_torrents = st.store.evicted_torrents;
	out->sources = st.sources;
	out->sources_evicted = st.sources_evicted;
}

static void metrics_reloads(void *arg, struct itr_metrics_reloads *out)
{
	const struct itr_admin *a = arg;
	const struct itr_daemon *d = a->daemon;
	memset(out, 0, sizeof(*out));
	out->count[ITR_METRICS_RELOAD_OK] = d->reloads_ok;
	out->count[ITR_METRICS_RELOAD_REJECTED] = d->reloads_rejected;
	out->count[ITR_METRICS_RELOAD_FAILED] = d->reloads_failed;
	out->last_success_unix_seconds = d->last_reload_ok;
}

/* The HTTP server's own figures (http.h), then the price controller's and
 * the shaper's. */
static int metrics_extra(void *arg, FILE *out)
{
	const struct itr_admin *a = arg;
	struct itr_http_stats hs;
	itr_http_get_stats(a->http, &hs);
	fprintf(
	    out,
	    "# HELP itracker_http_deadline_closed_total HTTP connections shut for a missed "
	    "deadline.\n"
	    "# TYPE itracker_http_deadline_closed_total counter\n"
	    "itracker_http_deadline_closed_total{deadline=\"header\"} %llu\n"
	    "itracker_http_deadline_closed_total{deadline=\"request\"} %llu\n"
	    "# HELP itracker_http_busy_total Requests answered 503 because the HTTP worker pool "
	    "had no room for them.\n"
	    "# TYPE itracker_http_busy_total counter\n"
	    "itracker_http_busy_total %llu\n"
	    "# HELP itracker_http_connections_refused_total HTTP connections answered 503 at "
	    "once, by the limit they were over.\n"
	    "# TYPE itracker_http_connections_refused_total counter\n"
	    "itracker_http_connections_refused_total{limit=\"per_address\"} %llu\n"
	    "itracker_http_connections_refused_total{limit=\"total\"} %llu\n"
	    "# HELP itracker_http_worker_requests Requests on the HTTP worker pool now.\n"
	    "# TYPE itracker_http_worker_requests gauge\n"
	    "itracker_http_worker_requests{state=\"queued\"} %zu\n"
	    "itracker_http_worker_requests{state=\"running\"} %zu\n"
	    "# HELP itracker_http_max_connections The HTTP connection limit in force.\n"
	    "# TYPE itracker_http_max_connections gauge\n"
	    "itracker_http_max_connections %u\n"
	    "# HELP itracker_http_lane_total Connections the fast lane took: answered itself "
	    "(one closing GET of an announce or scrape, or a 503 over a connection limit), or "
	    "handed to the general server.\n"
	    "# TYPE itracker_http_lane_total counter\n"
	    "itracker_http_lane_total{outcome=\"answered\"} %llu\n"
	    "itracker_http_lane_total{outcome=\"handed\"} %llu\n"
	    "# HELP itracker_http_lane_dropped_total Handed connections the general server "
	    "dropped without a word (seen when their descriptor was handed again).\n"
	    "# TYPE itracker_http_lane_dropped_total counter\n"
	    "itracker_http_lane_dropped_total %llu\n",
	    (unsigned long long)hs.reaped_headers, (unsigned long long)hs.reaped_request,
	    (unsigned long long)hs.busy, (unsigned long long)hs.over_address_limit,
	    (unsigned long long)hs.over_total_limit, hs.jobs_queued, hs.jobs_running,
	    hs.max_connections, (unsigned long long)hs.lane_answered,
	    (unsigned long long)hs.lane_handed, (unsigned long long)hs.lane_dropped);
	if (a->udp) {
		struct itr_udp_stats us;
		itr_udp_tracker_stats(a->udp, &us);
		fprintf(
		    out,
		    "# HELP itracker_udp_datagrams_total UDP tracker datagrams: read by a worker, "
		    "answered, or read and not answered (unparsable, or the send failed).\n"
		    "# TYPE itracker_udp_datagrams_total counter\n"
		    "itracker_udp_datagrams_total{outcome=\"received\"} %llu\n"
		    "itracker_udp_datagrams_total{outcome=\"answered\"} %llu\n"
		    "itracker_udp_datagrams_total{outcome=\"dropped\"} %llu\n"
		    "# HELP itracker_udp_socket_drops_total UDP tracker datagrams the kernel "
		    "dropped because a socket's receive buffer was full.\n"
		    "# TYPE itracker_udp_socket_drops_total counter\n"
		    "itracker_udp_socket_drops_total %llu\n",
		    (unsigned long long)us.received, (unsigned long long)us.answered,
		    (unsigned long long)us.dropped, (unsigned long long)us.socket_dropped);
	}
	if (ferror(out))
		return -1;
	if (a->price && itr_price_metrics(a->price, out))
		return -1;
	return itr_shaper_metrics(a->daemon->shaper, out);
}

int itr_admin_register(struct itr_http_server *srv, struct itr_admin *a)
{
	a->msrc = (struct itr_metrics_sources){
	    .pin_root = a->daemon->dp ? a->daemon->dp->pin_root : NULL,
	    .tracker = metrics_tracker,
	    .tracker_arg = a,
	    .reloads = metrics_reloads,
	    .reloads_arg = a,
	    .extra = metrics_extra,
	    .extra_arg = a,
	};
	a->http = srv;
	if (itr_http_route(srv, "GET", "/v1/status", handle_status, a) ||
	    itr_http_route(srv, "POST", "/v1/admin/reload", handle_reload, a))
		return -1;
	return itr_metrics_register(srv, &a->msrc);
}

int itr_admin_register_socket(struct itr_http_server *srv, struct itr_admin *a)
{
	if (itr_http_route(srv, "GET", "/v1/status", handle_status, a) ||
	    itr_http_route(srv, "POST", "/v1/admin/reload", handle_reload, a))
		return -1;
	return 0;
}

struct itr_http_server *itr_admin_start_socket(struct itr_admin *a, const char *path, char *err,
                                               size_t errlen)
{
	/* systemd's RuntimeDirectory makes the directory; by hand it may be missing */
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "--admin-socket %s: %s: %s", path, dir,
			         strerror(errno));
			return NULL;
		}
	}
	struct itr_http_limits lim = {
	    .max_body = 4096,
	    .max_query = 1024,
	    .max_connections = 16,
	    .connection_timeout_s = 10,
	    .header_timeout_s = 10,
	    .request_timeout_s = 60,
	};
	struct itr_http_server *srv = itr_http_new(&lim);
	if (!srv || itr_admin_register_socket(srv, a)) {
		itr_http_free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (itr_http_start_unix(srv, path, 0600, (gid_t)-1, err, errlen)) {
		itr_http_free(srv);
		return NULL;
	}
	return srv;
}

char *itr_admin_read_token(const char *file, char *err, size_t errlen)
{
	char buf[512];
	int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "--admin-token-file %s: %s", file,
		         fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (sb.st_mode & 0077)
		fprintf(stderr, "itrackerd: warning: %s is readable by others than its owner\n",
		        file);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	char *start = buf;
	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	size_t len = strcspn(start, " \t\r\n");
	start[len] = '\0';
	if (len < 16) {
		snprintf(err, errlen,
		         "--admin-token-file %s: want a token of 16 characters or more", file);
		return NULL;
	}
	char *tok = strdup(start);
	sodium_memzero(buf, sizeof(buf));
	if (!tok)
		snprintf(err, errlen, "out of memory");
	return tok;
}
