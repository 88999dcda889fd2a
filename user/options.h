/* options.h - itrackerd's options: one table (long name, short name,
 * argument, default, help text, handler) that feeds getopt_long, the config
 * file reader and --help, and the checks across options. Every option is
 * validated here, before anything touches the kernel.
 */
#ifndef ITR_OPTIONS_H
#define ITR_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "http.h"
#include "loader.h"
#include "price.h"
#include "privileges.h"
#include "proxy.h"
#include "rank.h"
#include "routes.h"
#include "shaper.h"
#include "tracker.h"
#include "udp_tracker.h"

#define ITRACKER_VERSION "0.1.0"

enum itr_options_action {
	ITR_OPTIONS_RUN = 0,
	ITR_OPTIONS_HELP,    /* --help: print the help and exit 0 */
	ITR_OPTIONS_VERSION, /* --version */
	ITR_OPTIONS_PURGE,   /* --purge: remove the data plane and exit */
};

struct itr_options {
	enum itr_options_action action;
	const char *map_file;
	const char *map_from;     /* --map-from: a primary's ALTO directory URL */
	uint32_t map_from_wait_s; /* without --map: how long to wait for its first map */
	struct itr_loader_opts loader;
	bool no_dataplane;
	bool keep_attached;
	/* --listen, split; listen_off for 'off' */
	bool listen_off;
	char listen_addr[128];
	uint16_t listen_port;
	size_t max_body;
	bool udp_off;
	uint16_t udp_port;
	const char *udp_bind;
	unsigned udp_workers;  /* one per CPU unless given (set by itr_options_parse) */
	const char *alto_base; /* ALTO IRD base URI */
	/* HTTP server: what keeps one client from stalling the others */
	struct {
		unsigned threads;            /* MHD polling threads */
		unsigned workers;            /* pool for the heavy routes */
		unsigned max_connections;    /* kept under the file limit */
		unsigned per_ip_connections; /* 0: none */
		unsigned header_timeout_s;
		unsigned request_timeout_s;
	} http;
	const char *admin_socket;     /* Unix socket of the admin API; NULL: off */
	const char *admin_token_file; /* NULL: none */
	const char *loopback_peers;   /* auto, yes, no */
	unsigned max_map_shrink;      /* percent of prefixes a reload may lose */
	bool force;                   /* install the map at start even if empty */
	const char *user;             /* --user: drop to it after the data plane is set up */
	struct itr_tracker_config tracker;
	struct itr_rank_policy policy_rank;
	struct itr_routes_config routes; /* --route rules: kernel routes feed PIDs */
	struct itr_proxy_config proxy;   /* --upstream: pTracker proxy mode */
	/* Ranking knobs given on the command line or in a config file (not by
	 * default): the price controller leaves them as given. */
	struct itr_price_overrides fixed;
	uint32_t price_period;        /* --price-period, seconds */
	const char *price_matrix[15]; /* --price-matrix pin roots */
	size_t nprice_matrix;
	const char *store;                          /* --store URL; NULL: in memory */
	struct itr_shape_spec shape[ITR_SHAPE_MAX]; /* --shape LINK=DEV */
	size_t nshape;
	/* Values read from config files, freed by itr_options_free. */
	char **owned;
	size_t nowned;
	int config_depth;
};

/* One option. arg names the argument in --help (NULL: the option takes
 * none); def is its default, applied through the handler before anything
 * else is read and shown in --help (NULL: none, or the help text says).
 * A handler returns 0, or -1 with err filled. */
struct itr_option_spec {
	const char *name;
	char short_name;
	const char *arg;
	const char *def;
	const char *help;
	int (*handler)(struct itr_options *o, const char *arg, char *err, size_t errlen);
	const char *section; /* a heading --help prints before this option */
};

extern const struct itr_option_spec itr_option_specs[];
extern const size_t itr_option_count;

/* Defaults from the table (and the modules' own config defaults). */
void itr_options_init(struct itr_options *o);
void itr_options_free(struct itr_options *o);

/* The command line (and config files it names), then the checks across
 * options. 0, or -1 with err filled (exit status 2). */
int itr_options_parse(struct itr_options *o, int argc, char **argv, char *err, size_t errlen);

/* "option value" lines, option names without "--", '#' comments; a
 * no-argument option may say "yes" or "true". Errors name file:line. */
int itr_options_read_config(struct itr_options *o, const char *path, char *err, size_t errlen);
/* The same from memory (name_of_file is for the messages). */
int itr_options_parse_config_text(struct itr_options *o, const char *text, size_t size,
                                  const char *name_of_file, char *err, size_t errlen);

/* The price controller's configuration from the options (the matrix
 * sources and map lock are the daemon's); false when both budget knobs are
 * fixed and no controller runs. */
bool itr_options_price_config(const struct itr_options *o, struct itr_price_config *cfg);
/* What the run needs to keep after --user drops privileges; dir (of
 * dirlen bytes) holds the admin socket's directory, which needs.owned_dir
 * may point to. pin_root: the data plane's, NULL without one. */
void itr_options_privilege_needs(const struct itr_options *o, const char *pin_root,
                                 struct itr_privilege_needs *needs, char *dir, size_t dirlen);
/* The HTTP listener's limits; backend_threads: workers an announce backend
 * that waits on the network needs at least. */
void itr_options_http_limits(const struct itr_options *o, unsigned backend_threads,
                             struct itr_http_limits *lim);

/* What the command line asks for instead of a run (--help, --version,
 * --purge), done: the exit status, or -1 for ITR_OPTIONS_RUN. */
int itr_options_other_action(const struct itr_options *o);

/* --help, generated from the table. */
void itr_options_help(FILE *out);

/* --loopback-peers auto: true when every listener is on loopback. */
bool itr_options_listeners_loopback_only(const struct itr_options *o);

#endif
