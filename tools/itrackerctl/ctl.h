/* ctl.h - what the itrackerctl subcommands share: global options, exit
 * codes, the small HTTP client used to reach the daemon, and one entry
 * point per subcommand.
 */
#ifndef ITR_CTL_H
#define ITR_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Documented exit codes (itrackerctl --help). */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_RUNTIME = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_UNREACHABLE = 3,
};

#define CTL_SERVER_DEFAULT "http://127.0.0.1:6969"
#define CTL_MAP_DEFAULT    "/etc/itracker/network.map"

struct ctl_global {
	const char *pin_root;
	const char *server;
	const char *admin_socket;     /* the daemon's admin API */
	const char *admin_token_file; /* NULL: no token sent */
	bool json;
	int timeout_s; /* --timeout: bound on one exchange with the daemon; 0: the
	                * command's own (CTL_TIMEOUT_DEFAULT, 3 s for status) */
};

#define CTL_TIMEOUT_DEFAULT 10

/* An HTTP exchange with the daemon. */
struct ctl_http_reply {
	int status;
	char *body; /* NUL-terminated, malloc'ed */
	size_t body_len;
};

enum ctl_http_result {
	CTL_HTTP_OK = 0,
	CTL_HTTP_UNREACHABLE = -1, /* resolve/connect failed: daemon not running */
	CTL_HTTP_BROKEN = -2,      /* connected, but the answer was not HTTP we understand */
	CTL_HTTP_BAD_URL = -3,
};

/* method + path (with query) to server ("http://host[:port]"); body may be
 * NULL. The timeout in seconds bounds the whole exchange: connect, send
 * and receive (user/http_client.h). err gets a human readable reason on
 * failure. */
int ctl_http(const char *server, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, int timeout_s, struct ctl_http_reply *reply,
             char *err, size_t errlen);
/* The same over the Unix socket at path, with an Authorization field
 * unless NULL. */
int ctl_http_unix(const char *path, const char *authorization, const char *method,
                  const char *target, int timeout_s, struct ctl_http_reply *reply, char *err,
                  size_t errlen);
void ctl_http_reply_free(struct ctl_http_reply *reply);

/* Percent-encode s for a query string value into buf. */
void ctl_url_encode(const char *s, char *buf, size_t len);

/* One JSON exchange with the daemon: prints the reason of any failure and
 * returns an exit code; on CTL_EXIT_OK *answer holds the parsed 200 body. */
int ctl_daemon_call(const struct ctl_global *g, const char *method, const char *path,
                    const char *body, json_t **answer);
/* The same for the admin API: over the admin socket when it is there
 * (with the token of --admin-token-file), else over --server. */
int ctl_admin_call(const struct ctl_global *g, const char *method, const char *path,
                   json_t **answer);
void ctl_print_json(const json_t *doc);
/* A scalar JSON value as table text ("-" for null). */
const char *ctl_json_text(const json_t *v, char *buf, size_t len);

/* A capture file read frame by frame (capture.c). */
struct ctl_capture;
/* Opens a pcap/pcapng file; NULL with err filled (also for a link type
 * it cannot turn into Ethernet frames; the message names it). */
struct ctl_capture *ctl_capture_open(const char *file, char *err, size_t errlen);
const char *ctl_capture_linktype(const struct ctl_capture *cap);
/* Next record as an Ethernet frame: 1 (len 0 if the record cannot be
 * turned into one), 0 at the end, -1 on a read error. The frame stays
 * valid until the next call. wire_len: the frame's length on the wire. */
int ctl_capture_next(struct ctl_capture *cap, const uint8_t **frame, size_t *len,
                     uint64_t *wire_len);
const char *ctl_capture_error(struct ctl_capture *cap);
void ctl_capture_close(struct ctl_capture *cap);

/* The flow key the data plane builds for an Ethernet frame, by its own
 * parser (frame_key.c); -1 for a frame it leaves alone. */
struct itr_flow_key;
int ctl_frame_flow_key(const uint8_t *frame, size_t len, struct itr_flow_key *key);
/* An IPv4 flow-cache key (ITR_MAP_FLOWS_V4) in the form above. */
struct itr_flow_key_v4;
void ctl_flow_key_widen_v4(struct itr_flow_key *key, const struct itr_flow_key_v4 *key4);

/* Subcommands: argv[0] is the subcommand name; each returns an exit code. */
int ctl_cmd_status(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_stats(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_matrix(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_netinfo(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_rank(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_map(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_classify(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_metrics(const struct ctl_global *g, int argc, char **argv);
int ctl_cmd_policy(const struct ctl_global *g, int argc, char **argv);

/* One option of a subcommand (--NAME), for ctl_options. */
enum ctl_opt_kind {
	CTL_OPT_FLAG,   /* target: bool *, set to true */
	CTL_OPT_TEXT,   /* target: const char **, the value */
	CTL_OPT_NUMBER, /* target: unsigned long *, a whole number >= min */
};
struct ctl_opt {
	const char *name;
	enum ctl_opt_kind kind;
	void *target;
	unsigned long min;
};
/* Every subcommand's command line, one way: -h/--help prints usage; the
 * options of opts (ended by a NULL name) fill their targets, in any order
 * and between operands; a bad one is a usage error. Returns true when the
 * command should run, with argv[*first..argc) its operands (permuted as
 * getopt_long does); false when it should exit with *status (0 after
 * help, CTL_EXIT_USAGE). */
bool ctl_options(int argc, char **argv, const char *usage, const struct ctl_opt *opts, int *first,
                 int *status);
/* Print "itrackerctl: " + message to stderr and return CTL_EXIT_USAGE. */
int ctl_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "itrackerctl: " + message to stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
