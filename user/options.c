/* options.c - itrackerd's option table and everything derived from it:
 * getopt_long's table, the config file reader, --help, and the checks that
 * must pass before the daemon touches the kernel. Handlers never exit; they
 * report, and main decides.
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "admin.h" /* ITR_ADMIN_SOCKET_DEFAULT */

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > 0xffffffffUL || s[0] == '-')
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int number(const char *name, const char *arg, uint32_t lo, uint32_t hi, uint32_t *out,
                  char *err, size_t len)
{
	if (parse_u32(arg, out) || *out < lo || *out > hi)
		return fail(err, len, "--%s '%s': expected a number from %u to %u", name, arg, lo,
		            hi);
	return 0;
}

/* "[::]:6969", "127.0.0.1:8080", ":6969" -> address and port. */
static int split_listen(const char *spec, char *addr, size_t addrlen, uint16_t *port)
{
	const char *colon;
	uint32_t p;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return -1;
		snprintf(addr, addrlen, "%.*s", (int)(close - spec - 1), spec + 1);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -1;
		snprintf(addr, addrlen, "%.*s", (int)(colon - spec), spec);
		if (!addr[0])
			snprintf(addr, addrlen, "::");
	}
	if (parse_u32(colon + 1, &p) || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

/* ---- handlers ------------------------------------------------------------ */

#define HANDLER(fn) static int fn(struct itr_options *o, const char *arg, char *err, size_t len)
#define UNUSED_ARGS (void)arg, (void)err, (void)len
/* Options that only store their argument, or a fixed value. */
#define SET_HANDLER(fn, field, value)                                                              \
	HANDLER(fn)                                                                                \
	{                                                                                          \
		UNUSED_ARGS;                                                                       \
		o->field = value;                                                                  \
		return 0;                                                                          \
	}

SET_HANDLER(opt_map, map_file, arg)

SET_HANDLER(opt_map_from, map_from, arg)

HANDLER(opt_interface)
{
	if (o->loader.nifaces >= ITR_MAX_IFACES)
		return fail(err, len, "too many interfaces (at most %d)", ITR_MAX_IFACES);
	o->loader.ifaces[o->loader.nifaces++] = arg;
	return 0;
}

/* A keyword option: the index of arg among the three words (the enum
 * values follow the same order). */
static int keyword(const char *name, const char *arg, const char *const words[3], int *out,
                   char *err, size_t len)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(arg, words[i]) == 0) {
			*out = i;
			return 0;
		}
	return fail(err, len, "--%s '%s': expected %s, %s or %s", name, arg, words[0], words[1],
	            words[2]);
}

HANDLER(opt_xdp_mode)
{
	static const char *const words[3] = {
	    [ITR_XDP_AUTO] = "auto", [ITR_XDP_NATIVE] = "native", [ITR_XDP_GENERIC] = "generic"};
	int v;
	if (keyword("xdp-mode", arg, words, &v, err, len))
		return -1;
	o->loader.xdp_mode = (enum itr_xdp_mode)v;
	return 0;
}

HANDLER(opt_ingress_hook)
{
	static const char *const words[3] = {
	    [ITR_INGRESS_AUTO] = "auto", [ITR_INGRESS_XDP] = "xdp", [ITR_INGRESS_TC] = "tc"};
	int v;
	if (keyword("ingress-hook", arg, words, &v, err, len))
		return -1;
	o->loader.ingress_hook = (enum itr_ingress_hook)v;
	return 0;
}

HANDLER(opt_pin_root)
{
	if (arg[0] != '/')
		return fail(err, len, "--pin-root '%s': must be an absolute path", arg);
	o->loader.pin_root = arg;
	return 0;
}

SET_HANDLER(opt_bpf_object, loader.bpf_object, arg)

/* One "KEY=VALUE" (or "drop", "endpoint") of a --policy SPEC. */
static int policy_item(struct itr_policy *p, char *kv, const char *arg, char *err, size_t len)
{
	uint32_t v;
	if (strcmp(kv, "drop") == 0) {
		p->flags |= ITR_POLICY_DROP;
		return 0;
	}
	if (strcmp(kv, "endpoint") == 0) {
		p->flags |= ITR_POLICY_ENDPOINT;
		return 0;
	}
	char *eq = strchr(kv, '=');
	if (!eq)
		return fail(err, len, "--policy '%s': expected KEY=VALUE items", arg);
	*eq = '\0';
	const char *val = eq + 1;
	if (strcmp(kv, "dscp") == 0) {
		if (parse_u32(val, &v) || v > 63)
			return fail(err, len, "--policy '%s': dscp must be 0..63", arg);
		p->dscp = (uint8_t)v;
		p->flags |= ITR_POLICY_SET_DSCP;
	} else if (strcmp(kv, "priority") == 0) {
		const char *c = strchr(val, ':');
		if (c) {
			/* tc writes classids in hex: 1:20 is 0x10020 */
			char mj[24], mn[24];
			uint32_t maj, min;
			snprintf(mj, sizeof(mj), "0x%.*s", (int)(c - val), val);
			snprintf(mn, sizeof(mn), "0x%s", c + 1);
			if (parse_u32(mj, &maj) || parse_u32(mn, &min) || maj > 0xffff ||
			    min > 0xffff)
				return fail(err, len,
				            "--policy '%s': priority MAJ:MIN in hex, as tc writes "
				            "classids",
				            arg);
			v = maj << 16 | min;
		} else if (parse_u32(val, &v)) {
			return fail(err, len, "--policy '%s': bad priority", arg);
		}
		p->priority = v;
		p->flags |= ITR_POLICY_SET_PRIORITY;
	} else if (strcmp(kv, "mark") == 0) {
		if (parse_u32(val, &v))
			return fail(err, len, "--policy '%s': bad mark", arg);
		p->mark = v;
		p->flags |= ITR_POLICY_SET_MARK;
	} else {
		return fail(err, len,
		            "--policy '%s': unknown key (dscp, priority, mark, drop, endpoint)",
		            arg);
	}
	return 0;
}

/* "inter-as:dscp=8,priority=1:20,mark=0x10" */
HANDLER(opt_policy)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", arg);
	char *colon = strchr(buf, ':');
	if (!colon)
		return fail(err, len, "--policy '%s': expected CLASS:SPEC", arg);
	*colon = '\0';
	int cls = itr_class_from_name(buf);
	if (cls < 0)
		return fail(err, len,
		            "--policy '%s': unknown class (intra-pid, intra-loc, intra-as, "
		            "inter-as, unknown)",
		            arg);
	struct itr_policy *p = &o->loader.policy[cls];
	char *save = NULL;
	for (char *kv = strtok_r(colon + 1, ",", &save); kv; kv = strtok_r(NULL, ",", &save))
		if (policy_item(p, kv, arg, err, len))
			return -1;
	return 0;
}

/* "a-transit=eth1": shape that link's inter-AS BitTorrent on eth1. */
HANDLER(opt_shape)
{
	if (o->nshape >= ITR_SHAPE_MAX)
		return fail(err, len, "--shape: at most %d devices", ITR_SHAPE_MAX);
	if (itr_shape_parse(arg, &o->shape[o->nshape], err, len))
		return -1;
	o->nshape++;
	return 0;
}

SET_HANDLER(opt_user, user, arg)
SET_HANDLER(opt_force, force, true)
SET_HANDLER(opt_keep_attached, keep_attached, true)

SET_HANDLER(opt_no_dataplane, no_dataplane, true)

SET_HANDLER(opt_purge, action, ITR_OPTIONS_PURGE)

HANDLER(opt_route)
{
	return itr_routes_parse_rule(&o->routes, arg, err, len);
}

HANDLER(opt_route_precedence)
{
	return itr_routes_parse_precedence(&o->routes, arg, err, len);
}

HANDLER(opt_listen)
{
	o->listen_off = strcmp(arg, "off") == 0;
	if (!o->listen_off &&
	    split_listen(arg, o->listen_addr, sizeof(o->listen_addr), &o->listen_port))
		return fail(err, len, "--listen '%s': expected ADDR:PORT, [V6ADDR]:PORT or 'off'",
		            arg);
	return 0;
}

HANDLER(opt_max_body)
{
	uint32_t v;
	if (parse_u32(arg, &v) || v < 1024)
		return fail(err, len, "--max-body '%s': a byte count of at least 1024", arg);
	o->max_body = v;
	return 0;
}

HANDLER(opt_udp)
{
	uint32_t v = 0;
	o->udp_off = strcmp(arg, "off") == 0;
	if (!o->udp_off && (parse_u32(arg, &v) || v > 65535))
		return fail(err, len, "--udp '%s': expected a port from 0 to 65535 or 'off'", arg);
	o->udp_port = (uint16_t)v;
	return 0;
}

SET_HANDLER(opt_udp_bind, udp_bind, arg)

HANDLER(opt_udp_workers)
{
	uint32_t v;
	if (number("udp-workers", arg, 1, ITR_UDP_MAX_WORKERS, &v, err, len))
		return -1;
	o->udp_workers = v;
	return 0;
}

#define HTTP_NUMBER(fn, field, lo, hi)                                                             \
	HANDLER(fn)                                                                                \
	{                                                                                          \
		uint32_t v;                                                                        \
		if (number(#field, arg, lo, hi, &v, err, len))                                     \
			return -1;                                                                 \
		o->http.field = v;                                                                 \
		return 0;                                                                          \
	}
HTTP_NUMBER(opt_http_threads, threads, 1, 64)
HTTP_NUMBER(opt_http_workers, workers, 0, 256)
HTTP_NUMBER(opt_max_connections, max_connections, 16, 1000000)
HTTP_NUMBER(opt_per_ip_connections, per_ip_connections, 0, 1000000)
HTTP_NUMBER(opt_header_timeout, header_timeout_s, 1, 3600)
HTTP_NUMBER(opt_request_timeout, request_timeout_s, 1, 86400)

SET_HANDLER(opt_admin_socket, admin_socket, strcmp(arg, "off") == 0 ? NULL : arg)
SET_HANDLER(opt_admin_token_file, admin_token_file, arg)
SET_HANDLER(opt_alto_base, alto_base, arg)

/* Numeric options that only store a value: where, and the range. */
#define U32_HANDLER(fn, name, field, lo, hi)                                                       \
	HANDLER(fn)                                                                                \
	{                                                                                          \
		uint32_t v;                                                                        \
		if (number(name, arg, lo, hi, &v, err, len))                                       \
			return -1;                                                                 \
		o->field = v;                                                                      \
		return 0;                                                                          \
	}

U32_HANDLER(opt_interval, "interval", tracker.interval, 1, 86400)
U32_HANDLER(opt_map_from_wait, "map-from-wait", map_from_wait_s, 1, 3600)
U32_HANDLER(opt_min_interval, "min-interval", tracker.min_interval, 1, 86400)
U32_HANDLER(opt_numwant, "numwant", tracker.default_numwant, 0, 10000)
U32_HANDLER(opt_max_numwant, "max-numwant", tracker.max_numwant, 1, 10000)
U32_HANDLER(opt_peer_expiry, "peer-expiry", tracker.peer_expiry, 10, 7 * 86400)
U32_HANDLER(opt_max_torrents, "max-torrents", tracker.max_torrents, 1, 0xffffffffu)
U32_HANDLER(opt_max_peers, "max-peers", tracker.max_peers, 1, 0xffffffffu)
U32_HANDLER(opt_max_map_shrink, "max-map-shrink", max_map_shrink, 1, 100)
U32_HANDLER(opt_peers_per_source, "max-peers-per-source", tracker.max_peers_per_source, 0,
            0xffffffffu)
U32_HANDLER(opt_torrents_per_source, "max-torrents-per-source", tracker.max_torrents_per_source, 0,
            0xffffffffu)
U32_HANDLER(opt_announce_rate, "announce-rate", tracker.announce_rate, 0, 1000000)
U32_HANDLER(opt_announce_burst, "announce-burst", tracker.announce_burst, 1, 100000000)
U32_HANDLER(opt_source_table, "source-table", tracker.source_table, 8, 1u << 26)
U32_HANDLER(opt_own_pid_share, "own-pid-share", policy_rank.max_own_pid_pct, 0, 100)
U32_HANDLER(opt_own_as_share, "own-as-share", policy_rank.max_own_as_pct, 0, 100)
U32_HANDLER(opt_min_external, "min-external", policy_rank.min_external, 0, 10000)
U32_HANDLER(opt_price_period, "price-period", price_period, 1, 3600)

/* The external budget's knobs: a value given by the operator is fixed, the
 * price controller adapts the others (itr_options_init clears the marks
 * the defaults leave). */
#define FIXED_U32_HANDLER(fn, name, field, mark, lo, hi)                                           \
	HANDLER(fn)                                                                                \
	{                                                                                          \
		uint32_t v;                                                                        \
		if (number(name, arg, lo, hi, &v, err, len))                                       \
			return -1;                                                                 \
		o->field = v;                                                                      \
		o->fixed.mark = true;                                                              \
		return 0;                                                                          \
	}

FIXED_U32_HANDLER(opt_max_external, "max-external", policy_rank.max_external, max_external, 0,
                  10000)
FIXED_U32_HANDLER(opt_min_list, "min-list", policy_rank.min_list, min_list, 0, 10000)
FIXED_U32_HANDLER(opt_gateways, "gateways", policy_rank.gateways, gateways, 0, 10000)

HANDLER(opt_price_matrix)
{
	UNUSED_ARGS;
	if (o->nprice_matrix == sizeof(o->price_matrix) / sizeof(o->price_matrix[0])) {
		snprintf(err, len, "--price-matrix: at most %zu",
		         sizeof(o->price_matrix) / sizeof(o->price_matrix[0]));
		return -1;
	}
	o->price_matrix[o->nprice_matrix++] = arg;
	return 0;
}
U32_HANDLER(opt_upstream_timeout, "upstream-timeout", proxy.timeout_ms, 1, 600000)

SET_HANDLER(opt_trusted_proxy, tracker.trusted_proxies, arg)

SET_HANDLER(opt_accept_ip_param, tracker.accept_ip_param, true)

HANDLER(opt_loopback_peers)
{
	if (strcmp(arg, "auto") && strcmp(arg, "yes") && strcmp(arg, "no"))
		return fail(err, len, "--loopback-peers '%s': expected auto, yes or no", arg);
	o->loopback_peers = arg;
	return 0;
}

HANDLER(opt_store)
{
	UNUSED_ARGS;
	o->store = strcmp(arg, "memory") == 0 ? NULL : arg;
	return 0;
}

SET_HANDLER(opt_upstream, proxy.upstream, arg)

HANDLER(opt_config)
{
	return itr_options_read_config(o, arg, err, len);
}

SET_HANDLER(opt_verbose, loader.verbose, true)

SET_HANDLER(opt_help, action, ITR_OPTIONS_HELP)

SET_HANDLER(opt_version, action, ITR_OPTIONS_VERSION)

/* ---- the table ----------------------------------------------------------- */

const struct itr_option_spec itr_option_specs[] = {
    {"map", 'm', "FILE", NULL,
     "network map, text or ALTO JSON (required unless --map-from; with it, served until the "
     "primary answers)",
     opt_map, "Network map:"},
    {"map-from", 0, "URL", NULL,
     "follow the map of a primary itrackerd over its ALTO update stream (RFC 8895); URL is "
     "its ALTO directory, e.g. http://10.0.0.1:6969/alto; SIGHUP reconnects",
     opt_map_from, NULL},
    {"map-from-wait", 0, "S", "30",
     "without --map, wait this long for the primary's first map before giving up",
     opt_map_from_wait, NULL},
    {"max-map-shrink", 0, "PCT", "50",
     "refuse a reload that loses more than PCT % of the prefixes (an empty map is always "
     "refused); SIGHUP, admin reload; 100: only empty maps; itrackerctl map reload --force "
     "installs it anyway",
     opt_max_map_shrink, NULL},
    {"force", 0, NULL, NULL, "install the map at start even if it has no prefixes", opt_force,
     NULL},
    {"user", 0, "NAME", NULL,
     "once the data plane is attached and the map installed, run as NAME with only "
     "CAP_NET_ADMIN (to detach on exit and for --shape; none with --keep-attached or "
     "--no-dataplane) "
     "and CAP_NET_BIND_SERVICE (a port below 1024); the pins become NAME's",
     opt_user, NULL},
    {"interface", 'i', "IFACE", NULL,
     "attach XDP (ingress) and TC (egress) to IFACE; repeat for several interfaces", opt_interface,
     "Data plane:"},
    {"ingress-hook", 0, "HOOK", "auto",
     "where ingress is classified: xdp, tc, or auto (TC on virtual devices such as veth and "
     "bridges, where XDP costs the stack its GRO; XDP on physical NICs)",
     opt_ingress_hook, NULL},
    {"xdp-mode", 0, "MODE", "auto", "auto (native, else generic), native or generic", opt_xdp_mode,
     NULL},
    {"pin-root", 0, "DIR", ITR_PIN_ROOT_DEFAULT, "where maps and links are pinned", opt_pin_root,
     NULL},
    {"bpf-object", 0, "FILE", NULL,
     "load this BPF object instead of the built-in one (upgrade: the running program is "
     "replaced atomically)",
     opt_bpf_object, NULL},
    {"policy", 0, "CLASS:SPEC", NULL,
     "tag BitTorrent packets of CLASS on egress; CLASS is intra-pid, intra-loc, intra-as, "
     "inter-as or unknown; SPEC is a comma list of dscp=0..63, priority=MAJ:MIN or N, "
     "mark=N, drop, endpoint (also flows known only by a learned endpoint, e.g. MSE). "
     "Default: count only.",
     opt_policy, NULL},
    {"shape", 0, "LINK=DEV", NULL,
     "enforce LINK's BitTorrent budget (a link of the map) on DEV (an --interface): an "
     "HTB qdisc on DEV whose class, at the budget, takes every inter-AS BitTorrent packet "
     "leaving DEV (also MSE flows known by endpoint); other traffic is not shaped; the rate "
     "follows map reloads; removed on exit (docs/policy.md); repeat per device",
     opt_shape, NULL},
    {"keep-attached", 0, NULL, NULL,
     "on exit leave the data plane (and --shape's qdiscs) running (it keeps counting; the "
     "next itrackerd adopts it)",
     opt_keep_attached, NULL},
    {"no-dataplane", 0, NULL, NULL, "serve the iTracker only, load nothing into the kernel",
     opt_no_dataplane, NULL},
    {"purge", 0, NULL, NULL,
     "detach itracker from every interface, remove everything pinned under the pin root "
     "and --shape's qdiscs, and exit",
     opt_purge, NULL},
    {"route", 0, "PID=SEL", NULL,
     "routes selected by SEL give their prefixes to PID (a PID of the map file); SEL is "
     "realm:N (RTA_FLOW, BIRD's krt_realm; IPv4 only), table:N|main|NAME or "
     "proto:N|bird|static|...; repeat, first match wins",
     opt_route, "Routes (kernel routes feed PIDs of the map):"},
    {"route-precedence", 0, "routes|file", "file", "who keeps a prefix both name",
     opt_route_precedence, NULL},
    {"listen", 'l', "ADDR:PORT", "[::]:6969", "HTTP listener ('off' to disable)", opt_listen,
     "Services:"},
    {"max-body", 0, "BYTES", "1048576", "largest request body accepted", opt_max_body, NULL},
    {"udp", 'u', "PORT", "6969", "BEP 15 UDP tracker port ('off' to disable)", opt_udp, NULL},
    {"udp-bind", 0, "LIST", "0.0.0.0,::", "addresses for the UDP tracker", opt_udp_bind, NULL},
    {"udp-workers", 0, "N", NULL,
     "UDP tracker threads, SO_REUSEPORT sockets each (default: one per CPU it may run on)",
     opt_udp_workers, NULL},
    {"http-threads", 0, "N", "1", "HTTP polling threads (I/O and the cheap routes)",
     opt_http_threads, NULL},
    {"http-workers", 0, "N", "4",
     "HTTP threads for the heavy routes (ALTO, P4P, proxied announces), so these never hold "
     "up the others (0: they run on the polling threads)",
     opt_http_workers, NULL},
    {"max-connections", 0, "N", "4096",
     "most HTTP connections (kept under the open-file limit, which is raised to its hard "
     "limit)",
     opt_max_connections, NULL},
    {"per-ip-connections", 0, "N", "64", "most HTTP connections from one address (0: no limit)",
     opt_per_ip_connections, NULL},
    {"header-timeout", 0, "S", "10",
     "close a connection whose request line and headers are not in after S seconds (also "
     "the keep-alive idle time)",
     opt_header_timeout, NULL},
    {"request-timeout", 0, "S", "120",
     "close a connection whose request is not answered (body in, answer out) after S "
     "seconds",
     opt_request_timeout, NULL},
    {"admin-socket", 0, "PATH", ITR_ADMIN_SOCKET_DEFAULT,
     "Unix socket (mode 0600) of the admin API: /v1/admin/reload and /v1/status ('off': "
     "admin API on the HTTP listener, loopback only)",
     opt_admin_socket, NULL},
    {"admin-token-file", 0, "FILE", NULL,
     "admin requests must send 'Authorization: Bearer' with the token in FILE (on the HTTP "
     "listener and the socket alike)",
     opt_admin_token_file, NULL},
    {"alto-base", 0, "URI", NULL,
     "prefix of the URIs in the ALTO directory (default: relative URIs)", opt_alto_base, NULL},
    {"interval", 0, "S", "1800", "announce interval", opt_interval, "Tracker and ranking:"},
    {"min-interval", 0, "S", "900", "minimum announce interval", opt_min_interval, NULL},
    {"numwant", 0, "N", "50", "peers per answer when the client does not say", opt_numwant, NULL},
    {"max-numwant", 0, "N", "200", "most peers per answer", opt_max_numwant, NULL},
    {"peer-expiry", 0, "S", "2700", "drop peers silent this long", opt_peer_expiry, NULL},
    {"max-torrents", 0, "N", "1000000", "most swarms held", opt_max_torrents, NULL},
    {"max-peers", 0, "N", "10000000",
     "most peers held; at either limit a small, stale swarm of the source in the most "
     "torrents is evicted to make room",
     opt_max_peers, NULL},
    {"max-peers-per-source", 0, "N", "16",
     "peers one address may have in one torrent (0: no limit)", opt_peers_per_source, NULL},
    {"max-torrents-per-source", 0, "N", "10000",
     "torrents one address may be a peer in (0: no limit)", opt_torrents_per_source, NULL},
    {"announce-rate", 0, "N", "50", "announces per second per address (0: no limit)",
     opt_announce_rate, NULL},
    {"announce-burst", 0, "N", "1000", "announces one address may send at once", opt_announce_burst,
     NULL},
    {"source-table", 0, "N", "65536",
     "addresses tracked for these quotas (the least recently seen is forgotten first)",
     opt_source_table, NULL},
    {"trusted-proxy", 0, "LIST", NULL,
     "addresses/prefixes (IPv4-mapped IPv6 = IPv4) whose X-Forwarded-For names the client "
     "(default: none)",
     opt_trusted_proxy, NULL},
    {"accept-ip-param", 0, NULL, NULL,
     "a trusted proxy's ip= (BEP 15: IP field) names the client when it sends no "
     "X-Forwarded-For (default: ignored; from other sources always ignored)",
     opt_accept_ip_param, NULL},
    {"loopback-peers", 0, "auto|yes|no", "auto",
     "store loopback addresses as peers; auto: only when every listener is on loopback",
     opt_loopback_peers, NULL},
    {"own-pid-share", 0, "PCT", "100", "at most PCT % of a list from the client's PID",
     opt_own_pid_share, NULL},
    {"own-as-share", 0, "PCT", "100", "at most PCT % from the client's AS", opt_own_as_share, NULL},
    {"min-external", 0, "N", "1", "at least N peers from other ASes when any exist",
     opt_min_external, NULL},
    {"max-external", 0, "N", "2",
     "at most N peers from other ASes, unless more are needed to reach --min-list",
     opt_max_external, NULL},
    {"min-list", 0, "N", "3", "top a short list up to N peers with outside peers in cost order",
     opt_min_list, NULL},
    {"gateways", 0, "N", "1",
     "external budget per AS, not per list: only the N gateway peers of each AS (per swarm) "
     "get outside peers; 0 = every list gets them. Unless --gateways and --max-external are "
     "given, the price controller sets them per AS per swarm from the links the map declares, "
     "the measured inter-AS rate and the swarm state (docs/policy.md); this value is then "
     "its base",
     opt_gateways, NULL},
    {"price-period", 0, "S", "2", "price controller: sample the PID matrix every S seconds",
     opt_price_period, NULL},
    {"price-matrix", 0, "DIR", NULL,
     "price controller: also read the PID matrix pinned under DIR (another itrackerd's "
     "--pin-root on this host); repeatable",
     opt_price_matrix, NULL},
    {"store", 0, "memory|URL", "memory",
     "where swarms live: in this process, or shared by every itrackerd on the same Redis "
     "Cluster (redis-cluster://HOST:PORT[,HOST:PORT...]); the price controller then prices "
     "each link from the rates every live instance on that cluster measured",
     opt_store, "Swarm store:"},
    {"upstream", 0, "URL", NULL,
     "forward announces and scrapes to this tracker (http://HOST:PORT/announce or "
     "udp://HOST:PORT) and answer with its peers ranked by locality; the local swarm store "
     "is then not used",
     opt_upstream, "Proxy mode (pTracker: rank another tracker's peers):"},
    {"upstream-timeout", 0, "MS", "5000", "give up on the upstream after MS ms",
     opt_upstream_timeout, NULL},
    {"config", 'c', "FILE", NULL,
     "read options from FILE: one 'option value' per line, option names as above without "
     "'--', '#' comments",
     opt_config, "Other:"},
    {"verbose", 'v', NULL, NULL, "log what libbpf does (pins, reuses, loads)", opt_verbose, NULL},
    {"help", 'h', NULL, NULL, "show this help and exit", opt_help, NULL},
    {"version", 'V', NULL, NULL, "show the version and exit", opt_version, NULL},
};
const size_t itr_option_count = sizeof(itr_option_specs) / sizeof(itr_option_specs[0]);

/* ---- reading them -------------------------------------------------------- */

void itr_options_init(struct itr_options *o)
{
	memset(o, 0, sizeof(*o));
	itr_tracker_config_default(&o->tracker);
	itr_rank_policy_default(&o->policy_rank);
	itr_proxy_config_default(&o->proxy);
	char err[256];
	for (size_t i = 0; i < itr_option_count; i++) {
		const struct itr_option_spec *s = &itr_option_specs[i];
		/* A default the table cannot take back is a bug in the table. */
		if (s->def && s->handler(o, s->def, err, sizeof(err))) {
			fprintf(stderr, "itrackerd: bad built-in default: %s\n", err);
			abort();
		}
	}
	memset(&o->fixed, 0, sizeof(o->fixed)); /* defaults fix nothing */
}

void itr_options_free(struct itr_options *o)
{
	for (size_t i = 0; i < o->nowned; i++)
		free(o->owned[i]);
	free(o->owned);
	o->owned = NULL;
	o->nowned = 0;
}

static const char *keep(struct itr_options *o, const char *value)
{
	char **grown = realloc(o->owned, (o->nowned + 1) * sizeof(*grown));
	char *copy = strdup(value);
	if (!grown || !copy) {
		free(copy);
		if (grown)
			o->owned = grown;
		return NULL;
	}
	o->owned = grown;
	o->owned[o->nowned++] = copy;
	return copy;
}

static const struct itr_option_spec *by_name(const char *name)
{
	for (size_t i = 0; i < itr_option_count; i++)
		if (strcmp(itr_option_specs[i].name, name) == 0)
			return &itr_option_specs[i];
	return NULL;
}

/* One "option value" line (comment and line end already cut). */
static int config_line(struct itr_options *o, char *line, const char *name_of_file, int lineno,
                       char *err, size_t len)
{
	char why[512];
	char *save = NULL;
	char *name = strtok_r(line, " \t\r", &save);
	if (!name)
		return 0;
	char *value = strtok_r(NULL, "\r", &save);
	while (value && (*value == ' ' || *value == '\t'))
		value++;
	for (size_t n = value ? strlen(value) : 0;
	     n && (value[n - 1] == ' ' || value[n - 1] == '\t');)
		value[--n] = '\0';
	const struct itr_option_spec *s = by_name(name);
	if (!s || s->handler == opt_config || s->handler == opt_help || s->handler == opt_version)
		return fail(err, len, "%s:%d: unknown option '%s'", name_of_file, lineno, name);
	if (s->arg && (!value || !*value))
		return fail(err, len, "%s:%d: option '%s' needs a value", name_of_file, lineno,
		            name);
	if (!s->arg && value && *value && strcmp(value, "yes") != 0 && strcmp(value, "true") != 0)
		return fail(err, len, "%s:%d: option '%s' takes no value", name_of_file, lineno,
		            name);
	if (s->arg && !(value = (char *)keep(o, value)))
		return fail(err, len, "out of memory");
	if (s->handler(o, s->arg ? value : NULL, why, sizeof(why)))
		return fail(err, len, "%s:%d: %s", name_of_file, lineno, why);
	return 0;
}

int itr_options_parse_config_text(struct itr_options *o, const char *text, size_t size,
                                  const char *name_of_file, char *err, size_t len)
{
	if (o->config_depth > 0)
		return fail(err, len, "%s: a config file cannot name another config file",
		            name_of_file);
	o->config_depth++;
	int rc = 0, lineno = 0;
	for (const char *p = text, *end = text + size; !rc && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		char line[1024];
		lineno++;
		if (n >= sizeof(line)) {
			rc = fail(err, len, "%s:%d: line longer than %zu bytes", name_of_file,
			          lineno, sizeof(line) - 1);
			break;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		rc = config_line(o, line, name_of_file, lineno, err, len);
		p = nl ? nl + 1 : end;
	}
	o->config_depth--;
	return rc;
}

int itr_options_read_config(struct itr_options *o, const char *path, char *err, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(err, len, "cannot open config %s: %s", path, strerror(errno));
	/* A config file is a few hundred bytes; a megabyte is a mistake. */
	enum { CONFIG_MAX = 1 << 20 };
	char *text = malloc(CONFIG_MAX);
	size_t size = text ? fread(text, 1, CONFIG_MAX, f) : 0;
	int rc;
	if (!text)
		rc = fail(err, len, "out of memory");
	else if (ferror(f))
		rc = fail(err, len, "cannot read config %s: %s", path, strerror(errno));
	else if (size == CONFIG_MAX)
		rc = fail(err, len, "config %s is larger than %d bytes", path, CONFIG_MAX);
	else
		rc = itr_options_parse_config_text(o, text, size, path, err, len);
	free(text);
	fclose(f);
	return rc;
}

/* --shape: every device is one the data plane is attached to (its TC
 * egress program does the steering), and the inter-as policy's priority is
 * the shaper's. */
static int check_shape(struct itr_options *o, char *err, size_t len)
{
	if (o->no_dataplane)
		return fail(err, len, "--shape needs the data plane (not --no-dataplane)");
	for (size_t i = 0; i < o->nshape; i++) {
		bool attached = false;
		for (size_t k = 0; k < o->loader.nifaces; k++)
			attached |= strcmp(o->loader.ifaces[k], o->shape[i].dev) == 0;
		if (!attached)
			return fail(
			    err, len,
			    "--shape %s=%s: %s is not an --interface (its TC egress program "
			    "steers the packets)",
			    o->shape[i].link, o->shape[i].dev, o->shape[i].dev);
		for (size_t k = 0; k < i; k++)
			if (strcmp(o->shape[k].dev, o->shape[i].dev) == 0)
				return fail(err, len, "--shape: device %s is named twice",
				            o->shape[i].dev);
	}
	struct itr_policy *p = &o->loader.policy[ITR_CLASS_INTER_AS];
	if (p->flags & (ITR_POLICY_SET_PRIORITY | ITR_POLICY_DROP))
		return fail(err, len,
		            "--shape and --policy inter-as:%s exclude each other (the shaper "
		            "steers inter-AS BitTorrent by skb priority)",
		            p->flags & ITR_POLICY_DROP ? "drop" : "priority=...");
	/* Endpoint flows too: the price controller's matrix counts them, so
	 * what is measured against the budget is what is shaped. */
	p->flags |= ITR_POLICY_SET_PRIORITY | ITR_POLICY_ENDPOINT;
	p->priority = ITR_SHAPE_CLASSID;
	return 0;
}

/* Checks that need every option read. */
static int check_across(struct itr_options *o, char *err, size_t len)
{
	if (o->action != ITR_OPTIONS_RUN)
		return 0;
	if (!o->map_file && !o->map_from)
		return fail(err, len, "a network map is required (--map FILE or --map-from URL)");
	if (o->store && o->proxy.upstream)
		return fail(err, len,
		            "--store and --upstream exclude each other (a proxy keeps no swarms)");
	if (o->map_from && o->routes.nrules)
		return fail(err, len, "--route needs a map file and cannot follow --map-from");
	if (o->no_dataplane && (o->loader.nifaces || o->keep_attached))
		return fail(err, len,
		            "--no-dataplane cannot be combined with --interface/--keep-attached");
	if (o->nshape && check_shape(o, err, len))
		return -1;
	/* What follows from the options together. */
	o->tracker.policy = o->policy_rank;
	if (strcmp(o->loopback_peers, "auto") == 0)
		o->tracker.loopback_peers = itr_options_listeners_loopback_only(o);
	else
		o->tracker.loopback_peers = strcmp(o->loopback_peers, "yes") == 0;
	if (o->udp_workers == 0)
		o->udp_workers = itr_udp_default_workers();
	return 0;
}

bool itr_options_price_config(const struct itr_options *o, struct itr_price_config *cfg)
{
	itr_price_config_default(cfg);
	cfg->policy = o->policy_rank;
	cfg->overrides = o->fixed;
	cfg->period_s = o->price_period;
	/* On unless both budget knobs are fixed on the command line. */
	return !(o->fixed.gateways && o->fixed.max_external);
}

void itr_options_privilege_needs(const struct itr_options *o, const char *pin_root,
                                 struct itr_privilege_needs *needs, char *dir, size_t dirlen)
{
	*needs = (struct itr_privilege_needs){
	    /* detaching on exit takes CAP_NET_ADMIN, and so does changing or
	     * removing --shape's qdiscs */
	    .net_admin = (pin_root && !o->keep_attached) || o->nshape > 0,
	    .bind_low_port = (!o->listen_off && o->listen_port && o->listen_port < 1024) ||
	                     (!o->udp_off && o->udp_port && o->udp_port < 1024),
	    .pin_root = pin_root,
	};
	if (o->admin_socket) {
		snprintf(dir, dirlen, "%s", o->admin_socket);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			needs->owned_dir = dir;
		}
	}
}

void itr_options_http_limits(const struct itr_options *o, unsigned backend_threads,
                             struct itr_http_limits *lim)
{
	*lim = (struct itr_http_limits){
	    .max_body = o->max_body,
	    .max_query = 8192,
	    .max_connections = o->http.max_connections,
	    .connection_timeout_s = o->http.header_timeout_s,
	    .threads = o->http.threads,
	    .per_ip_connections = o->http.per_ip_connections,
	    .header_timeout_s = o->http.header_timeout_s,
	    .request_timeout_s = o->http.request_timeout_s,
	    /* a proxied announce holds its worker for up to the upstream timeout */
	    .workers = backend_threads > o->http.workers ? backend_threads : o->http.workers,
	};
}

int itr_options_parse(struct itr_options *o, int argc, char **argv, char *err, size_t len)
{
	struct option longs[sizeof(itr_option_specs) / sizeof(itr_option_specs[0]) + 1];
	char shorts[2 * sizeof(itr_option_specs) / sizeof(itr_option_specs[0]) + 2] = ":";
	size_t ns = 1;
	for (size_t i = 0; i < itr_option_count; i++) {
		const struct itr_option_spec *s = &itr_option_specs[i];
		/* getopt_long answers the table index (+256) for long names,
		 * the letter for short ones. */
		longs[i] = (struct option){s->name, s->arg ? required_argument : no_argument, NULL,
		                           (int)(256 + i)};
		if (s->short_name) {
			shorts[ns++] = s->short_name;
			if (s->arg)
				shorts[ns++] = ':';
		}
	}
	longs[itr_option_count] = (struct option){0};
	shorts[ns] = '\0';
	char why[512];
	int c, longindex;
	optind = 0; /* glibc: start over, also inside a grouped short option */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, &longindex)) != -1) {
		const struct itr_option_spec *s = NULL;
		if (c >= 256)
			s = &itr_option_specs[c - 256];
		for (size_t i = 0; !s && c != '?' && c != ':' && i < itr_option_count; i++)
			if (itr_option_specs[i].short_name == c)
				s = &itr_option_specs[i];
		if (!s) {
			const char *opt = argv[optind - 1];
			return fail(err, len, "%s option '%s'",
			            c == ':' ? "a value is missing after the" : "unknown", opt);
		}
		if (s->handler(o, optarg, why, sizeof(why)))
			return fail(err, len, "%s", why);
		if (o->action == ITR_OPTIONS_HELP || o->action == ITR_OPTIONS_VERSION)
			return 0;
	}
	if (optind < argc)
		return fail(err, len, "unexpected argument '%s'", argv[optind]);
	return check_across(o, err, len);
}

int itr_options_other_action(const struct itr_options *o)
{
	char err[512];
	switch (o->action) {
	case ITR_OPTIONS_HELP:
		itr_options_help(stdout);
		return 0;
	case ITR_OPTIONS_VERSION:
		printf("itrackerd %s\n", ITRACKER_VERSION);
		return 0;
	case ITR_OPTIONS_PURGE:
		if (itr_dataplane_purge(o->loader.pin_root, err, sizeof(err))) {
			fprintf(stderr, "itrackerd: %s\n", err);
			return 1;
		}
		printf("itrackerd: data plane removed from %s\n", o->loader.pin_root);
		int shaped = itr_shaper_purge(err, sizeof(err));
		if (shaped < 0) {
			fprintf(stderr, "itrackerd: %s\n", err);
			return 1;
		}
		if (shaped)
			printf("itrackerd: --shape's qdisc removed from %d device%s\n", shaped,
			       shaped == 1 ? "" : "s");
		return 0;
	case ITR_OPTIONS_RUN:
		break;
	}
	return -1;
}

/* ---- --help -------------------------------------------------------------- */

#define HELP_COLUMN 27
#define HELP_WIDTH  80

/* A space --help never breaks a line at ("(default /sys/fs/bpf/...)"). */
#define HELP_GLUE '\x01'

/* text from column HELP_COLUMN, wrapped at word boundaries. */
static void wrap(FILE *out, const char *text, size_t at)
{
	const char *p = text;
	while (*p) {
		size_t room = HELP_WIDTH - HELP_COLUMN, n = strlen(p);
		if (n > room) {
			n = room;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = strcspn(p, " ");
		}
		fprintf(out, "%*s", (int)(HELP_COLUMN - at), "");
		for (size_t i = 0; i < n; i++)
			fputc(p[i] == HELP_GLUE ? ' ' : p[i], out);
		fputc('\n', out);
		at = 0;
		p += n;
		while (*p == ' ')
			p++;
	}
}

void itr_options_help(FILE *out)
{
	fputs("Usage: itrackerd [OPTION]...\n"
	      "Locality enforcer for BitTorrent traffic (P4P iTracker): an XDP/TC data\n"
	      "plane that counts and tags BitTorrent flows by network locality, and the\n"
	      "iTracker services (network info, peer ranking, ALTO, BitTorrent tracker) on\n"
	      "one HTTP listener.\n"
	      "\n",
	      out);
	for (size_t i = 0; i < itr_option_count; i++) {
		const struct itr_option_spec *s = &itr_option_specs[i];
		char left[64], text[512];
		if (s->section)
			fprintf(out, "%s\n", s->section);
		int n = snprintf(left, sizeof(left), "  %c%c%c --%s%s%s", s->short_name ? '-' : ' ',
		                 s->short_name ? s->short_name : ' ', s->short_name ? ',' : ' ',
		                 s->name, s->arg ? " " : "", s->arg ? s->arg : "");
		snprintf(text, sizeof(text), "%s%s%s%s", s->help, s->def ? " (default\x01" : "",
		         s->def ? s->def : "", s->def ? ")" : "");
		fputs(left, out);
		if (n + 1 > HELP_COLUMN) {
			fputc('\n', out);
			n = 0;
		}
		wrap(out, text, (size_t)n);
	}
	fputs("\n"
	      "Signals: SIGHUP reloads the map file (an invalid file is rejected, the\n"
	      "running map stays); SIGINT/SIGTERM stop (detaching unless --keep-attached).\n"
	      "Exit status: 0 ok, 1 runtime failure, 2 bad command line or configuration.\n",
	      out);
}

/* ---- derived ------------------------------------------------------------- */

static bool text_is_loopback(const char *text)
{
	uint8_t a[16];
	if (inet_pton(AF_INET, text, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, text, a) == 1) {
		static const uint8_t lo[16] = {[15] = 1};
		static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		return memcmp(a, lo, 16) == 0 || (memcmp(a, v4mapped, 12) == 0 && a[12] == 127);
	}
	return false;
}

/* A tracker reachable from loopback only (tests, demos, a proxy in front
 * on the same host) has no peers but loopback ones; anywhere else a
 * loopback peer is a forgery. */
bool itr_options_listeners_loopback_only(const struct itr_options *o)
{
	if (!o->listen_off && !text_is_loopback(o->listen_addr))
		return false;
	if (!o->udp_off) {
		char list[256];
		snprintf(list, sizeof(list), "%s", o->udp_bind);
		char *save = NULL;
		for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
			if (!text_is_loopback(t))
				return false;
	}
	return true;
}
