/* main.c - itrackerd: parse options, wire the modules together, run.
 *
 * Nothing here is logic of its own: the data plane is user/loader.c, the map
 * path user/daemon.c + user/netmap*.c, the services user/http.c with the
 * handlers that register on it. main() only decides what runs, in which
 * order, and how it stops.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sched.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>

#include "alto.h"
#include "daemon.h"
#include "http.h"
#include "loader.h"
#include "metrics.h"
#include "netmap.h"
#include "p4p_api.h"
#include "proxy.h"
#include "rank.h"
#include "routes.h"
#include "tracker.h"
#include "tracker_http.h"
#include "udp_tracker.h"

#define ITRACKER_VERSION "0.1.0"
#define DEFAULT_PORT     6969

struct options {
	const char *map_file;
	const char *listen;
	struct itr_loader_opts loader;
	bool no_dataplane;
	bool keep_attached;
	bool purge;
	bool verbose;
	struct {
		bool set;
		struct itr_policy policy;
	} policy[ITR_CLASS_MAX];
	size_t max_body;
	const char *udp; /* "off" or PORT */
	const char *udp_bind;
	unsigned udp_workers;       /* 0: one per CPU */
	const char *alto_base;      /* ALTO IRD base URI */
	const char *loopback_peers; /* auto, yes, no */
	struct itr_tracker_config tracker;
	struct itr_rank_policy policy_rank;
	struct itr_routes_config routes; /* --route rules: kernel routes feed PIDs */
	struct itr_proxy_config proxy;   /* --upstream: pTracker proxy mode */
};

/* Set while routes are followed: a file reload must re-merge them. */
static struct itr_routes *routes_follower;

static struct itr_daemon daemon_state = {
    .reload_lock = PTHREAD_MUTEX_INITIALIZER,
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: itrackerd [OPTION]...\n"
	    "Locality enforcer for BitTorrent traffic (P4P iTracker): an XDP/TC data plane that\n"
	    "counts and tags BitTorrent flows by network locality, and the iTracker services\n"
	    "(network info, peer ranking, ALTO, BitTorrent tracker) on one HTTP listener.\n"
	    "\n"
	    "Network map:\n"
	    "  -m, --map FILE           network map, text or ALTO JSON (required)\n"
	    "Data plane:\n"
	    "  -i, --interface IFACE    attach XDP (ingress) and TC (egress) to IFACE;\n"
	    "                           repeat for several interfaces\n"
	    "      --xdp-mode MODE      auto (native, else generic; default), native, generic\n"
	    "      --pin-root DIR       where maps and links are pinned (default %s)\n"
	    "      --bpf-object FILE    load this BPF object instead of the built-in one\n"
	    "                           (upgrade: the running program is replaced atomically)\n"
	    "      --policy CLASS:SPEC  tag BitTorrent packets of CLASS on egress; CLASS is\n"
	    "                           intra-pid, intra-loc, intra-as, inter-as or unknown;\n"
	    "                           SPEC is a comma list of dscp=0..63, priority=MAJ:MIN\n"
	    "                           or N, mark=N, drop. Default: count only.\n"
	    "      --keep-attached      on exit leave the data plane running (it keeps\n"
	    "                           counting; the next itrackerd adopts it)\n"
	    "      --no-dataplane       serve the iTracker only, load nothing into the kernel\n"
	    "      --purge              detach itracker from every interface, remove everything\n"
	    "                           pinned under the pin root, and exit\n"
	    "Routes (kernel routes feed PIDs of the map):\n"
	    "      --route PID=SEL      routes selected by SEL give their prefixes to PID (a\n"
	    "                           PID of the map file); SEL is realm:N (RTA_FLOW, BIRD's\n"
	    "                           krt_realm; IPv4 only), table:N|main|NAME or\n"
	    "                           proto:N|bird|static|...; repeat, first match wins\n"
	    "      --route-precedence routes|file\n"
	    "                           who keeps a prefix both name (default file)\n"
	    "Services:\n"
	    "  -l, --listen ADDR:PORT   HTTP listener (default [::]:%d; 'off' to disable)\n"
	    "      --max-body BYTES     largest request body accepted (default 1048576)\n"
	    "  -u, --udp PORT           BEP 15 UDP tracker port (default 6969; 'off' to disable)\n"
	    "      --udp-bind LIST      addresses for the UDP tracker (default 0.0.0.0,::)\n"
	    "      --udp-workers N      UDP tracker threads, SO_REUSEPORT sockets each\n"
	    "                           (default: one per CPU it may run on)\n"
	    "      --alto-base URI      prefix of the URIs in the ALTO directory (default:\n"
	    "                           relative URIs)\n"
	    "Tracker and ranking:\n"
	    "      --interval S         announce interval (default 1800)\n"
	    "      --min-interval S     minimum announce interval (default 900)\n"
	    "      --numwant N          peers per answer when the client does not say (50)\n"
	    "      --max-numwant N      most peers per answer (default 200)\n"
	    "      --peer-expiry S      drop peers silent this long (default 2700)\n"
	    "      --max-torrents N     most swarms held (default 1000000)\n"
	    "      --max-peers N        most peers held (default 10000000)\n"
	    "      --trusted-proxy LIST addresses/prefixes (IPv4-mapped IPv6 = IPv4) whose\n"
	    "                           X-Forwarded-For names the client (default: none)\n"
	    "      --accept-ip-param    a trusted proxy's ip= (BEP 15: IP field) names the\n"
	    "                           client when it sends no X-Forwarded-For (default:\n"
	    "                           ignored; from other sources always ignored)\n"
	    "      --loopback-peers auto|yes|no\n"
	    "                           store loopback addresses as peers; auto (default):\n"
	    "                           only when every listener is on loopback\n"
	    "      --own-pid-share PCT  at most PCT %% of a list from the client's PID (100)\n"
	    "      --own-as-share PCT   at most PCT %% from the client's AS (100)\n"
	    "      --min-external N     at least N peers from other ASes when any exist (1)\n"
	    "      --max-external N     at most N peers from other ASes (default 2), unless\n"
	    "                           more are needed to reach --min-list\n"
	    "      --min-list N         top a short list up to N peers with outside peers\n"
	    "                           in cost order (default 3)\n"
	    "      --gateways N         external budget per AS, not per list: only the N\n"
	    "                           gateway peers of each AS (per swarm) get outside\n"
	    "                           peers; 0 = every list gets them (default 1)\n"
	    "Proxy mode (pTracker: rank another tracker's peers):\n"
	    "      --upstream URL       forward announces and scrapes to this tracker\n"
	    "                           (http://HOST:PORT/announce or udp://HOST:PORT) and\n"
	    "                           answer with its peers ranked by locality; the local\n"
	    "                           swarm store is then not used\n"
	    "      --upstream-timeout MS  give up on the upstream after MS ms (default 5000)\n"
	    "Other:\n"
	    "  -c, --config FILE        read options from FILE: one 'option value' per line,\n"
	    "                           option names as above without '--', '#' comments\n"
	    "  -v, --verbose            log what libbpf does (pins, reuses, loads)\n"
	    "  -h, --help               show this help and exit\n"
	    "  -V, --version            show the version and exit\n"
	    "\n"
	    "Signals: SIGHUP reloads the map file (an invalid file is rejected, the running map\n"
	    "stays); SIGINT/SIGTERM stop (detaching unless --keep-attached).\n"
	    "Exit status: 0 ok, 1 runtime failure, 2 bad command line or configuration.\n",
	    ITR_PIN_ROOT_DEFAULT, DEFAULT_PORT);
}

static _Noreturn void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "itrackerd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'itrackerd --help'.\n");
	exit(2);
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

/* "inter-as:dscp=8,priority=1:20,mark=0x10" */
static void parse_policy(struct options *o, const char *arg)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", arg);
	char *colon = strchr(buf, ':');
	if (!colon)
		die_usage("--policy '%s': expected CLASS:SPEC", arg);
	*colon = '\0';
	int cls = itr_class_from_name(buf);
	if (cls < 0)
		die_usage("--policy '%s': unknown class (intra-pid, intra-loc, intra-as, "
		          "inter-as, unknown)",
		          arg);
	struct itr_policy *p = &o->policy[cls].policy;
	o->policy[cls].set = true;
	char *save = NULL;
	for (char *kv = strtok_r(colon + 1, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		uint32_t v;
		if (strcmp(kv, "drop") == 0) {
			p->flags |= ITR_POLICY_DROP;
			continue;
		}
		if (!eq)
			die_usage("--policy '%s': expected KEY=VALUE items", arg);
		*eq = '\0';
		const char *val = eq + 1;
		if (strcmp(kv, "dscp") == 0) {
			if (parse_u32(val, &v) || v > 63)
				die_usage("--policy '%s': dscp must be 0..63", arg);
			p->dscp = (uint8_t)v;
			p->flags |= ITR_POLICY_SET_DSCP;
		} else if (strcmp(kv, "priority") == 0) {
			const char *c = strchr(val, ':');
			if (c) {
				char major[16];
				uint32_t maj, min;
				snprintf(major, sizeof(major), "%.*s", (int)(c - val), val);
				/* tc writes classids in hex: 1:20 is 0x10020 */
				char mj[20], mn[20];
				snprintf(mj, sizeof(mj), "0x%s", major);
				snprintf(mn, sizeof(mn), "0x%s", c + 1);
				if (parse_u32(mj, &maj) || parse_u32(mn, &min) || maj > 0xffff ||
				    min > 0xffff)
					die_usage("--policy '%s': priority MAJ:MIN in hex, as tc "
					          "writes classids",
					          arg);
				v = maj << 16 | min;
			} else if (parse_u32(val, &v)) {
				die_usage("--policy '%s': bad priority", arg);
			}
			p->priority = v;
			p->flags |= ITR_POLICY_SET_PRIORITY;
		} else if (strcmp(kv, "mark") == 0) {
			if (parse_u32(val, &v))
				die_usage("--policy '%s': bad mark", arg);
			p->mark = v;
			p->flags |= ITR_POLICY_SET_MARK;
		} else {
			die_usage("--policy '%s': unknown key (dscp, priority, mark, drop)", arg);
		}
	}
}

enum {
	OPT_XDP_MODE = 256,
	OPT_PIN_ROOT,
	OPT_BPF_OBJECT,
	OPT_POLICY,
	OPT_KEEP,
	OPT_NO_DP,
	OPT_PURGE,
	OPT_MAX_BODY,
	OPT_ALTO_BASE,
	OPT_UDP_BIND,
	OPT_UDP_WORKERS,
	OPT_INTERVAL,
	OPT_MIN_INTERVAL,
	OPT_NUMWANT,
	OPT_MAX_NUMWANT,
	OPT_PEER_EXPIRY,
	OPT_MAX_TORRENTS,
	OPT_MAX_PEERS,
	OPT_TRUSTED_PROXY,
	OPT_ACCEPT_IP_PARAM,
	OPT_LOOPBACK_PEERS,
	OPT_OWN_PID_SHARE,
	OPT_OWN_AS_SHARE,
	OPT_MIN_EXTERNAL,
	OPT_MAX_EXTERNAL,
	OPT_MIN_LIST,
	OPT_GATEWAYS,
	OPT_ROUTE,
	OPT_ROUTE_PRECEDENCE,
	OPT_UPSTREAM,
	OPT_UPSTREAM_TIMEOUT,
};

static const struct option long_opts[] = {
    {"map", required_argument, NULL, 'm'},
    {"interface", required_argument, NULL, 'i'},
    {"xdp-mode", required_argument, NULL, OPT_XDP_MODE},
    {"pin-root", required_argument, NULL, OPT_PIN_ROOT},
    {"bpf-object", required_argument, NULL, OPT_BPF_OBJECT},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"keep-attached", no_argument, NULL, OPT_KEEP},
    {"no-dataplane", no_argument, NULL, OPT_NO_DP},
    {"purge", no_argument, NULL, OPT_PURGE},
    {"listen", required_argument, NULL, 'l'},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"udp", required_argument, NULL, 'u'},
    {"udp-bind", required_argument, NULL, OPT_UDP_BIND},
    {"udp-workers", required_argument, NULL, OPT_UDP_WORKERS},
    {"alto-base", required_argument, NULL, OPT_ALTO_BASE},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"min-interval", required_argument, NULL, OPT_MIN_INTERVAL},
    {"numwant", required_argument, NULL, OPT_NUMWANT},
    {"max-numwant", required_argument, NULL, OPT_MAX_NUMWANT},
    {"peer-expiry", required_argument, NULL, OPT_PEER_EXPIRY},
    {"max-torrents", required_argument, NULL, OPT_MAX_TORRENTS},
    {"max-peers", required_argument, NULL, OPT_MAX_PEERS},
    {"trusted-proxy", required_argument, NULL, OPT_TRUSTED_PROXY},
    {"accept-ip-param", no_argument, NULL, OPT_ACCEPT_IP_PARAM},
    {"loopback-peers", required_argument, NULL, OPT_LOOPBACK_PEERS},
    {"own-pid-share", required_argument, NULL, OPT_OWN_PID_SHARE},
    {"own-as-share", required_argument, NULL, OPT_OWN_AS_SHARE},
    {"min-external", required_argument, NULL, OPT_MIN_EXTERNAL},
    {"max-external", required_argument, NULL, OPT_MAX_EXTERNAL},
    {"min-list", required_argument, NULL, OPT_MIN_LIST},
    {"gateways", required_argument, NULL, OPT_GATEWAYS},
    {"route", required_argument, NULL, OPT_ROUTE},
    {"route-precedence", required_argument, NULL, OPT_ROUTE_PRECEDENCE},
    {"upstream", required_argument, NULL, OPT_UPSTREAM},
    {"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
    {"config", required_argument, NULL, 'c'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void apply_option(struct options *o, int c, const char *arg);

static uint32_t option_u32(const char *name, const char *arg, uint32_t lo, uint32_t hi)
{
	uint32_t v;
	if (parse_u32(arg, &v) || v < lo || v > hi) {
		fprintf(stderr, "itrackerd: %s '%s': expected a number from %u to %u\n", name, arg,
		        lo, hi);
		fprintf(stderr, "Try 'itrackerd --help'.\n");
		exit(2);
	}
	return v;
}

/* Config file: "option value" lines, same names as the long options. */
static void read_config(struct options *o, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;

	if (!f) {
		fprintf(stderr, "itrackerd: cannot open config %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *name = strtok(line, " \t\r\n");
		if (!name)
			continue;
		char *value = strtok(NULL, "\r\n");
		while (value && (*value == ' ' || *value == '\t'))
			value++;
		const struct option *opt = NULL;
		for (const struct option *p = long_opts; p->name; p++)
			if (strcmp(p->name, name) == 0)
				opt = p;
		if (!opt || opt->val == 'c' || opt->val == 'h' || opt->val == 'V') {
			fprintf(stderr, "itrackerd: %s:%d: unknown option '%s'\n", path, lineno,
			        name);
			exit(2);
		}
		if (opt->has_arg == required_argument && (!value || !*value)) {
			fprintf(stderr, "itrackerd: %s:%d: option '%s' needs a value\n", path,
			        lineno, name);
			exit(2);
		}
		if (opt->has_arg == no_argument && value && *value && strcmp(value, "yes") != 0 &&
		    strcmp(value, "true") != 0) {
			fprintf(stderr, "itrackerd: %s:%d: option '%s' takes no value\n", path,
			        lineno, name);
			exit(2);
		}
		apply_option(o, opt->val, value ? strdup(value) : NULL);
	}
	fclose(f);
}

static void apply_option(struct options *o, int c, const char *arg)
{
	switch (c) {
	case 'm':
		o->map_file = arg;
		break;
	case 'i':
		if (o->loader.nifaces >= ITR_MAX_IFACES)
			die_usage("too many interfaces (at most %s)", "32");
		o->loader.ifaces[o->loader.nifaces++] = arg;
		break;
	case OPT_XDP_MODE:
		if (strcmp(arg, "auto") == 0)
			o->loader.xdp_mode = ITR_XDP_AUTO;
		else if (strcmp(arg, "native") == 0)
			o->loader.xdp_mode = ITR_XDP_NATIVE;
		else if (strcmp(arg, "generic") == 0)
			o->loader.xdp_mode = ITR_XDP_GENERIC;
		else
			die_usage("--xdp-mode '%s': expected auto, native or generic", arg);
		break;
	case OPT_PIN_ROOT:
		if (arg[0] != '/')
			die_usage("--pin-root '%s': must be an absolute path", arg);
		o->loader.pin_root = arg;
		break;
	case OPT_BPF_OBJECT:
		o->loader.bpf_object = arg;
		break;
	case OPT_POLICY:
		parse_policy(o, arg);
		break;
	case OPT_KEEP:
		o->keep_attached = true;
		break;
	case OPT_NO_DP:
		o->no_dataplane = true;
		break;
	case OPT_PURGE:
		o->purge = true;
		break;
	case 'l':
		o->listen = arg;
		break;
	case OPT_MAX_BODY: {
		uint32_t v;
		if (parse_u32(arg, &v) || v < 1024)
			die_usage("--max-body '%s': a byte count of at least 1024", arg);
		o->max_body = v;
		break;
	}
	case 'u':
		o->udp = arg;
		break;
	case OPT_UDP_BIND:
		o->udp_bind = arg;
		break;
	case OPT_UDP_WORKERS:
		o->udp_workers = option_u32("--udp-workers", arg, 1, ITR_UDP_MAX_WORKERS);
		break;
	case OPT_ALTO_BASE:
		o->alto_base = arg;
		break;
	case OPT_INTERVAL:
		o->tracker.interval = option_u32("--interval", arg, 1, 86400);
		break;
	case OPT_MIN_INTERVAL:
		o->tracker.min_interval = option_u32("--min-interval", arg, 1, 86400);
		break;
	case OPT_NUMWANT:
		o->tracker.default_numwant = option_u32("--numwant", arg, 0, 10000);
		break;
	case OPT_MAX_NUMWANT:
		o->tracker.max_numwant = option_u32("--max-numwant", arg, 1, 10000);
		break;
	case OPT_PEER_EXPIRY:
		o->tracker.peer_expiry = option_u32("--peer-expiry", arg, 10, 7 * 86400);
		break;
	case OPT_MAX_TORRENTS:
		o->tracker.max_torrents = option_u32("--max-torrents", arg, 1, 0xffffffffu);
		break;
	case OPT_MAX_PEERS:
		o->tracker.max_peers = option_u32("--max-peers", arg, 1, 0xffffffffu);
		break;
	case OPT_TRUSTED_PROXY:
		o->tracker.trusted_proxies = arg;
		break;
	case OPT_ACCEPT_IP_PARAM:
		o->tracker.accept_ip_param = true;
		break;
	case OPT_LOOPBACK_PEERS:
		if (strcmp(arg, "auto") && strcmp(arg, "yes") && strcmp(arg, "no"))
			die_usage("--loopback-peers '%s': expected auto, yes or no", arg);
		o->loopback_peers = arg;
		break;
	case OPT_OWN_PID_SHARE:
		o->policy_rank.max_own_pid_pct = option_u32("--own-pid-share", arg, 0, 100);
		break;
	case OPT_OWN_AS_SHARE:
		o->policy_rank.max_own_as_pct = option_u32("--own-as-share", arg, 0, 100);
		break;
	case OPT_MIN_EXTERNAL:
		o->policy_rank.min_external = option_u32("--min-external", arg, 0, 10000);
		break;
	case OPT_MAX_EXTERNAL:
		o->policy_rank.max_external = option_u32("--max-external", arg, 0, 10000);
		break;
	case OPT_MIN_LIST:
		o->policy_rank.min_list = option_u32("--min-list", arg, 0, 10000);
		break;
	case OPT_GATEWAYS:
		o->policy_rank.gateways = option_u32("--gateways", arg, 0, 10000);
		break;
	case OPT_ROUTE:
	case OPT_ROUTE_PRECEDENCE: {
		char why[300];
		if ((c == OPT_ROUTE
		         ? itr_routes_parse_rule(&o->routes, arg, why, sizeof(why))
		         : itr_routes_parse_precedence(&o->routes, arg, why, sizeof(why))))
			die_usage("%s", why);
		break;
	}
	case OPT_UPSTREAM:
		o->proxy.upstream = arg;
		break;
	case OPT_UPSTREAM_TIMEOUT:
		o->proxy.timeout_ms = option_u32("--upstream-timeout", arg, 1, 600000);
		break;
	case 'c':
		read_config(o, arg);
		break;
	case 'v':
		o->verbose = true;
		o->loader.verbose = true;
		break;
	case 'h':
		usage(stdout);
		exit(0);
	case 'V':
		printf("itrackerd %s\n", ITRACKER_VERSION);
		exit(0);
	default:
		fprintf(stderr, "Try 'itrackerd --help'.\n");
		exit(2);
	}
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

/* --loopback-peers auto: a tracker reachable from loopback only (tests,
 * demos, a proxy in front on the same host) has no peers but loopback
 * ones; anywhere else a loopback peer is a forgery. */
static bool listeners_loopback_only(const struct options *o)
{
	char addr[128];
	uint16_t port;
	if (strcmp(o->listen, "off") != 0 &&
	    (split_listen(o->listen, addr, sizeof(addr), &port) || !text_is_loopback(addr)))
		return false;
	if (strcmp(o->udp, "off") != 0) {
		char list[256];
		snprintf(list, sizeof(list), "%s", o->udp_bind);
		char *save = NULL;
		for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
			if (!text_is_loopback(t))
				return false;
	}
	return true;
}

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

static void handle_status(const struct itr_http_request *req, struct itr_http_response *resp,
                          void *arg)
{
	struct itr_daemon *d = arg;
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
	if (map)
		itr_netmap_unref(map);
	json_object_set_new(o, "generation", json_integer((json_int_t)d->generation));
	json_object_set_new(o, "dataplane", json_boolean(d->dp != NULL));
	json_t *ifs = json_array();
	if (d->dp) {
		json_object_set_new(o, "pin_root", json_string(d->dp->pin_root));
		json_object_set_new(o, "maps_adopted", json_boolean(d->dp->maps_adopted));
		for (size_t i = 0; i < d->dp->nifaces; i++) {
			const struct itr_iface_state *s = &d->dp->ifaces[i];
			json_t *j = json_object();
			json_object_set_new(j, "name", json_string(s->name));
			json_object_set_new(j, "ifindex", json_integer(s->ifindex));
			json_object_set_new(
			    j, "xdp", json_string(s->xdp_mode_name ? s->xdp_mode_name : "none"));
			json_object_set_new(j, "tc_egress", json_boolean(s->tc_attached));
			json_object_set_new(j, "adopted",
			                    json_boolean(s->xdp_adopted || s->tc_adopted));
			json_array_append_new(ifs, j);
		}
	}
	json_object_set_new(o, "interfaces", ifs);
	json_t *r = json_object();
	json_object_set_new(r, "ok", json_integer((json_int_t)d->reloads_ok));
	json_object_set_new(r, "rejected", json_integer((json_int_t)d->reloads_rejected));
	json_object_set_new(r, "failed", json_integer((json_int_t)d->reloads_failed));
	json_object_set_new(o, "reloads", r);
	if (routes_follower) {
		struct itr_routes_stats rs;
		itr_routes_get_stats(routes_follower, &rs);
		json_object_set_new(
		    o, "routes",
		    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "routes", (json_int_t)rs.routes,
		              "prefixes", (json_int_t)rs.prefixes, "events", (json_int_t)rs.events,
		              "resyncs", (json_int_t)rs.resyncs, "publishes",
		              (json_int_t)rs.publishes, "pending", (json_int_t)rs.pending));
	}
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

static void handle_reload(const struct itr_http_request *req, struct itr_http_response *resp,
                          void *arg)
{
	struct itr_daemon *d = arg;
	struct itr_reload_result res;

	if (!is_loopback(&req->peer)) {
		json_t *e = json_pack("{s:{s:s}}", "error", "reason",
		                      "the admin API answers on loopback only");
		reply_json(resp, 403, e);
		return;
	}
	itr_daemon_reload(d, &res);
	if (!res.ok) {
		fprintf(stderr, "itrackerd: map reload rejected: %s\n", res.error);
		reply_json(resp, 422, json_pack("{s:{s:s}}", "error", "reason", res.error));
		return;
	}
	fprintf(stderr, "itrackerd: map reloaded: vtag %s generation %llu (+%zu ~%zu -%zu)\n",
	        res.vtag, (unsigned long long)res.generation, res.added, res.changed, res.deleted);
	reply_json(resp, 200,
	           json_pack("{s:s,s:I,s:I,s:I,s:I}", "vtag", res.vtag, "generation",
	                     (json_int_t)res.generation, "added", (json_int_t)res.added, "changed",
	                     (json_int_t)res.changed, "deleted", (json_int_t)res.deleted));
}

static struct itr_tracker *tracker;

static void metrics_tracker(void *arg, struct itr_metrics_tracker *out)
{
	struct itr_tracker_stats st;
	(void)arg;
	memset(out, 0, sizeof(*out));
	if (!tracker)
		return;
	itr_tracker_stats(tracker, &st);
	out->torrents = st.store.torrents;
	out->peers = st.store.peers_v4 + st.store.peers_v6;
	/* counted by the front end that took them, whichever backend answered */
	for (int t = 0; t < ITR_TRANSPORT_MAX; t++)
		for (int o = 0; o < ITR_OUTCOME_MAX; o++)
			out->announces[t == ITR_TRANSPORT_UDP ? ITR_METRICS_PROTO_UDP
			                                      : ITR_METRICS_PROTO_HTTP][o] =
			    st.by_transport[t][o];
}

static void metrics_reloads(void *arg, struct itr_metrics_reloads *out)
{
	struct itr_daemon *d = arg;
	memset(out, 0, sizeof(*out));
	out->count[ITR_METRICS_RELOAD_OK] = d->reloads_ok;
	out->count[ITR_METRICS_RELOAD_REJECTED] = d->reloads_rejected;
	out->count[ITR_METRICS_RELOAD_FAILED] = d->reloads_failed;
	out->last_success_unix_seconds = d->last_reload_ok;
}

int main(int argc, char **argv)
{
	struct options o = {
	    .listen = "[::]:6969", .udp = "6969", .udp_bind = "0.0.0.0,::", .max_body = 1 << 20};

	itr_tracker_config_default(&o.tracker);
	itr_rank_policy_default(&o.policy_rank);
	itr_proxy_config_default(&o.proxy);
	struct itr_daemon *d = &daemon_state;
	char err[1024] = "";
	int c;

	while ((c = getopt_long(argc, argv, "m:i:l:u:c:vhV", long_opts, NULL)) != -1)
		apply_option(&o, c, optarg);
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);

	if (o.purge) {
		if (itr_dataplane_purge(o.loader.pin_root, err, sizeof(err))) {
			fprintf(stderr, "itrackerd: %s\n", err);
			return 1;
		}
		printf("itrackerd: data plane removed from %s\n",
		       o.loader.pin_root ? o.loader.pin_root : ITR_PIN_ROOT_DEFAULT);
		return 0;
	}
	if (!o.map_file)
		die_usage("%s", "a network map is required (--map FILE)");
	if (o.no_dataplane && (o.loader.nifaces || o.keep_attached))
		die_usage("%s",
		          "--no-dataplane cannot be combined with --interface/--keep-attached");

	/* Signals are taken synchronously by the main thread; block them before
	 * any thread exists so service threads never see them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d->map_file = o.map_file;
	d->started_at = now_realtime();

	/* Validate the map before touching the kernel: a bad file changes nothing. */
	struct itr_netmap_error merr = {0};
	struct itr_netmap *map = itr_netmap_load_file(o.map_file, &merr);
	if (!map) {
		itr_netmap_error_format(&merr, err, sizeof(err));
		fprintf(stderr, "itrackerd: %s\n", err);
		return 2;
	}

	if (!o.no_dataplane) {
		d->dp = itr_dataplane_open(&o.loader, err, sizeof(err));
		if (!d->dp) {
			fprintf(stderr, "itrackerd: %s\n", err);
			itr_netmap_unref(map);
			return 1;
		}
		for (int cls = 0; cls < ITR_CLASS_MAX; cls++) {
			/* The policy is this run's configuration: rewrite every slot. */
			struct itr_policy none = {0};
			itr_dataplane_set_policy(d->dp, cls,
			                         o.policy[cls].set ? &o.policy[cls].policy : &none);
		}
	}
	struct itr_reload_result res;
	itr_daemon_install_map(d, map, &res);
	if (!res.ok) {
		fprintf(stderr, "itrackerd: %s\n", res.error);
		itr_dataplane_close(d->dp, o.keep_attached);
		return 1;
	}
	fprintf(stderr, "itrackerd: map %s loaded: vtag %s, generation %llu (+%zu ~%zu -%zu)\n",
	        o.map_file, res.vtag, (unsigned long long)res.generation, res.added, res.changed,
	        res.deleted);
	if (d->dp)
		for (size_t i = 0; i < d->dp->nifaces; i++) {
			const struct itr_iface_state *s = &d->dp->ifaces[i];
			fprintf(stderr, "itrackerd: %s: XDP %s%s, TC egress%s\n", s->name,
			        s->xdp_mode_name, s->xdp_adopted ? " (adopted)" : "",
			        s->tc_adopted ? " (adopted)" : "");
		}

	struct itr_routes *routes = NULL;
	if (o.routes.nrules) {
		routes = itr_routes_start(d, &o.routes, err, sizeof(err));
		if (!routes) {
			fprintf(stderr, "itrackerd: %s\n", err);
			itr_dataplane_close(d->dp, o.keep_attached);
			return 1;
		}
		routes_follower = routes;
		struct itr_routes_stats rst;
		itr_routes_get_stats(routes, &rst);
		fprintf(stderr, "itrackerd: following routes: %zu routes, %zu prefixes\n",
		        rst.routes, rst.prefixes);
	}

	o.tracker.policy = o.policy_rank;
	if (!o.loopback_peers || strcmp(o.loopback_peers, "auto") == 0)
		o.tracker.loopback_peers = listeners_loopback_only(&o);
	else
		o.tracker.loopback_peers = strcmp(o.loopback_peers, "yes") == 0;
	if (o.tracker.loopback_peers)
		fprintf(stderr, "itrackerd: loopback addresses are accepted as peers%s\n",
		        o.loopback_peers ? "" : " (every listener is on loopback)");
	tracker = itr_tracker_new(&o.tracker, NULL, err, sizeof(err));
	if (!tracker || itr_tracker_start_janitor(tracker)) {
		fprintf(stderr, "itrackerd: tracker: %s\n", err[0] ? err : "cannot start");
		itr_dataplane_close(d->dp, o.keep_attached);
		return 1;
	}

	/* Proxy mode: announces and scrapes go to the upstream (proxy.h). */
	struct itr_proxy *proxy = NULL;
	struct itr_udp_tracker *udp_tracker = NULL;
	if (o.proxy.upstream) {
		proxy = itr_proxy_new(&o.proxy, tracker, err, sizeof(err));
		if (!proxy) {
			fprintf(stderr, "itrackerd: %s\n", err);
			return 2;
		}
		fprintf(stderr, "itrackerd: proxy mode, upstream %s\n", o.proxy.upstream);
		itr_tracker_use_backend(tracker, itr_proxy_backend(proxy));
	}

	struct itr_http_server *srv = NULL;
	if (strcmp(o.listen, "off") != 0) {
		char addr[128];
		uint16_t port;
		if (split_listen(o.listen, addr, sizeof(addr), &port))
			die_usage("--listen '%s': expected ADDR:PORT, [V6ADDR]:PORT or 'off'",
			          o.listen);
		struct itr_http_limits lim = {
		    .max_body = o.max_body,
		    .max_query = 8192,
		    .max_connections = 4096,
		    .connection_timeout_s = 30,
		    /* a proxied announce holds its thread for up to the timeout */
		    .threads = itr_tracker_active_backend(tracker)->threads,
		};
		srv = itr_http_new(&lim);
		if (!srv) {
			fprintf(stderr, "itrackerd: out of memory\n");
			return 1;
		}
		itr_http_route(srv, "GET", "/v1/status", handle_status, d);
		itr_http_route(srv, "POST", "/v1/admin/reload", handle_reload, d);
		struct itr_p4p_api_config p4p;
		itr_p4p_api_config_default(&p4p);
		p4p.policy = o.policy_rank;
		struct itr_alto_config alto = {.base_uri = o.alto_base};
		static struct itr_metrics_sources msrc;
		msrc.pin_root = d->dp ? d->dp->pin_root : NULL;
		msrc.tracker = metrics_tracker;
		msrc.reloads = metrics_reloads;
		msrc.reloads_arg = d;
		if (itr_p4p_api_register(srv, &p4p) || itr_alto_register(srv, &alto) ||
		    itr_tracker_http_register(srv, tracker) || itr_metrics_register(srv, &msrc)) {
			fprintf(stderr, "itrackerd: cannot register HTTP routes\n");
			return 1;
		}
		if (itr_http_start(srv, addr, port, err, sizeof(err))) {
			fprintf(stderr, "itrackerd: %s\n", err);
			itr_http_free(srv);
			itr_dataplane_close(d->dp, o.keep_attached);
			return 1;
		}
		fprintf(stderr, "itrackerd: HTTP on %s port %u\n", addr, itr_http_port(srv));
	}
	if (strcmp(o.udp, "off") != 0) {
		uint16_t port = (uint16_t)option_u32("--udp", o.udp, 0, 65535);
		unsigned workers = o.udp_workers;
		if (workers == 0) {
			/* the CPUs this process may run on (taskset, cpusets) */
			cpu_set_t set;
			int cpus =
			    sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
			workers = cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;
		}
		udp_tracker = itr_udp_tracker_start_workers(tracker, o.udp_bind, port, workers, err,
		                                            sizeof(err));
		if (!udp_tracker) {
			fprintf(stderr, "itrackerd: UDP tracker: %s\n", err);
			itr_http_free(srv);
			itr_proxy_free(proxy);
			itr_tracker_free(tracker);
			itr_dataplane_close(d->dp, o.keep_attached);
			return 1;
		}
		workers = itr_udp_tracker_workers(udp_tracker); /* a proxy may want more */
		fprintf(stderr, "itrackerd: UDP tracker on %s port %u, %u worker%s\n", o.udp_bind,
		        itr_udp_tracker_port(udp_tracker), workers, workers == 1 ? "" : "s");
	}

	for (;;) {
		siginfo_t si;
		struct timespec tick = {.tv_sec = 1};
		int sig = sigtimedwait(&sigs, &si, &tick);
		if (sig == SIGHUP) {
			itr_daemon_reload(d, &res);
			if (res.ok)
				fprintf(stderr,
				        "itrackerd: SIGHUP: map reloaded: vtag %s generation %llu "
				        "(+%zu ~%zu -%zu)\n",
				        res.vtag, (unsigned long long)res.generation, res.added,
				        res.changed, res.deleted);
			else
				fprintf(stderr,
				        "itrackerd: SIGHUP: map rejected, old map stays: %s\n",
				        res.error);
		} else if (sig == SIGINT || sig == SIGTERM) {
			fprintf(stderr, "itrackerd: %s, stopping%s\n",
			        sig == SIGINT ? "SIGINT" : "SIGTERM",
			        o.keep_attached ? " (data plane stays attached)" : "");
			break;
		}
	}

	/* HTTP first: once it is gone no handler can see what is freed next. */
	itr_http_free(srv);
	routes_follower = NULL;
	itr_routes_stop(routes);
	itr_udp_tracker_stop(udp_tracker);
	itr_proxy_free(proxy);
	itr_tracker_free(tracker);
	tracker = NULL;
	itr_dataplane_close(d->dp, o.keep_attached);
	map = itr_netmap_current();
	itr_netmap_publish(NULL);
	if (map)
		itr_netmap_unref(map);
	return 0;
}
