/* alto.h - the ALTO server (RFC 7285): information resource directory,
 * network map, cost maps (numerical and ordinal routingcost), filtered
 * network and cost maps, endpoint property and endpoint cost services, all
 * served from the current network map on the shared HTTP listener.
 *
 * The request parsers and JSON encoders are pure functions (no HTTP, no
 * global state) so that unit tests and the fuzz harness call them directly;
 * itr_alto_register() wires them to HTTP routes.
 *
 * Resources (paths are fixed, the IRD announces them):
 *   GET  /alto, /alto/ird              IRD (application/alto-directory+json)
 *   GET  /alto/networkmap              network map
 *   GET  /alto/costmap/num-routingcost cost map, numerical routingcost
 *   GET  /alto/costmap/ord-routingcost cost map, ordinal routingcost
 *   POST /alto/networkmap/filtered     filtered network map
 *   POST /alto/costmap/filtered        filtered cost map (constraints)
 *   POST /alto/endpointprop            endpoint properties
 *   POST /alto/endpointcost            endpoint cost (ordinal = ranking)
 */
#ifndef ITR_ALTO_H
#define ITR_ALTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netmap.h"

struct itr_http_server;
struct itr_peer_addr;

#define ITR_ALTO_MT_DIRECTORY          "application/alto-directory+json"
#define ITR_ALTO_MT_NETWORKMAP         "application/alto-networkmap+json"
#define ITR_ALTO_MT_NETWORKMAPFILTER   "application/alto-networkmapfilter+json"
#define ITR_ALTO_MT_COSTMAP            "application/alto-costmap+json"
#define ITR_ALTO_MT_COSTMAPFILTER      "application/alto-costmapfilter+json"
#define ITR_ALTO_MT_ENDPOINTPROP       "application/alto-endpointprop+json"
#define ITR_ALTO_MT_ENDPOINTPROPPARAMS "application/alto-endpointpropparams+json"
#define ITR_ALTO_MT_ENDPOINTCOST       "application/alto-endpointcost+json"
#define ITR_ALTO_MT_ENDPOINTCOSTPARAMS "application/alto-endpointcostparams+json"
#define ITR_ALTO_MT_ERROR              "application/alto-error+json"
/* The whole map with what ALTO has no field for (netmap_alto.c's form). */
#define ITR_ALTO_MT_ITRACKER_MAP        "application/json"
#define ITR_ALTO_MT_UPDATESTREAMPARAMS  "application/alto-updatestreamparams+json"
#define ITR_ALTO_MT_UPDATESTREAMCONTROL "application/alto-updatestreamcontrol+json"
#define ITR_ALTO_MT_MERGE_PATCH         "application/merge-patch+json"
#define ITR_ALTO_MT_EVENT_STREAM        "text/event-stream"

/* Private endpoint properties (RFC 7285 10.8.2: "priv:" plus a name). */
#define ITR_ALTO_PROP_ASID "priv:itracker-asid"
#define ITR_ALTO_PROP_LOC  "priv:itracker-loc"

struct itr_alto_config {
	/* Prefix of every "uri" in the IRD, e.g. "http://alto.example.net:8080"
	 * (no trailing slash). NULL or "" makes the URIs relative to the IRD's
	 * own URI, which RFC 7285 9.2.2 allows and which stays right when the
	 * listener picks its port at start. */
	const char *base_uri;
	/* Prefix of the resource ids of everything but the network map (whose
	 * id comes from the map file), e.g. "itracker-". NULL or "" for none.
	 * The result must still be a valid ResourceID (<= 64 chars of
	 * [A-Za-z0-9-:@_]). */
	const char *resource_prefix;
};

/* Add the ALTO routes to srv (before itr_http_start). The handlers read the
 * process-wide map (itr_netmap_current) per request and answer 503 while
 * none is published. Returns 0, or -EINVAL for a bad config, or the error
 * of itr_http_route. cfg is copied. */
int itr_alto_register(struct itr_http_server *srv, const struct itr_alto_config *cfg);

/* The resources an ALTO update stream (RFC 8895, alto_updates.h) carries:
 * each one's resource id under cfg, media type and full body. */
enum itr_alto_resource {
	ITR_ALTO_RES_NETWORKMAP = 0,
	ITR_ALTO_RES_COSTMAP_NUM,
	ITR_ALTO_RES_COSTMAP_ORD,
	ITR_ALTO_RES_ITRACKER_MAP,
	ITR_ALTO_RES_COUNT,
};
const char *itr_alto_resource_id(const struct itr_netmap *map, const struct itr_alto_config *cfg,
                                 enum itr_alto_resource res, char *buf, size_t len);
const char *itr_alto_resource_media(enum itr_alto_resource res);
char *itr_alto_resource_encode(const struct itr_netmap *map, enum itr_alto_resource res);

/* ---- errors (RFC 7285 8.5) ---------------------------------------------- */

enum itr_alto_code {
	ITR_ALTO_OK = 0,
	ITR_ALTO_E_SYNTAX,
	ITR_ALTO_E_MISSING_FIELD,
	ITR_ALTO_E_INVALID_FIELD_TYPE,
	ITR_ALTO_E_INVALID_FIELD_VALUE,
};

struct itr_alto_error {
	enum itr_alto_code code;
	char field[64];         /* "cost-type/cost-mode", "" if none */
	char value[128];        /* offending value as a string, "" if none */
	char syntax_error[192]; /* E_SYNTAX: what and where, "" otherwise */
};

const char *itr_alto_code_name(enum itr_alto_code code);

/* ---- parsed requests ----------------------------------------------------- */

enum itr_alto_mode {
	ITR_ALTO_NUMERICAL = 0,
	ITR_ALTO_ORDINAL,
};

enum itr_alto_op {
	ITR_ALTO_OP_GT,
	ITR_ALTO_OP_LT,
	ITR_ALTO_OP_GE,
	ITR_ALTO_OP_LE,
	ITR_ALTO_OP_EQ,
};

struct itr_alto_constraint {
	enum itr_alto_op op;
	double value;
};

/* Constraints in disjunctive normal form: a cost passes if every constraint
 * of at least one group holds. "constraints": [a, b] is one group {a, b};
 * "or-constraints" (RFC 8189): [[a, b], [c]] is two groups. No group at all
 * means every cost passes. */
struct itr_alto_constraints {
	size_t ngroups;
	size_t *group_len;                   /* ngroups entries */
	struct itr_alto_constraint **groups; /* ngroups arrays */
};

bool itr_alto_constraints_pass(const struct itr_alto_constraints *cons, double cost);
/* Parse one "op value" string; 0 or -1. */
int itr_alto_constraint_parse(const char *text, struct itr_alto_constraint *out);

/* A typed endpoint address ("ipv4:192.0.2.1", "ipv6:2001:db8::1"). */
struct itr_alto_endpoint {
	uint8_t family; /* 4 or 6 */
	uint8_t addr[16];
};

/* Parse a TypedEndpointAddr; 0, or -1 (malformed) or -2 (well-formed but an
 * address type other than ipv4/ipv6). */
int itr_alto_endpoint_parse(const char *text, struct itr_alto_endpoint *out);
/* Canonical "ipv4:..."/"ipv6:..." (RFC 5952) text into buf (>= 52 bytes). */
const char *itr_alto_endpoint_format(const struct itr_alto_endpoint *ep, char *buf, size_t len);

/* Lists hold unique entries in request order (duplicates are dropped, RFC
 * 7285 11.3.1.3 and the like). A name list of length 0 means "all PIDs". */
struct itr_alto_names {
	size_t n;
	char **names;
};

struct itr_alto_endpoints {
	size_t n;
	struct itr_alto_endpoint *items;
};

struct itr_alto_netmap_filter {
	struct itr_alto_names pids;
	bool ipv4, ipv6; /* address types to list */
};

struct itr_alto_costmap_filter {
	enum itr_alto_mode mode;
	struct itr_alto_constraints constraints;
	struct itr_alto_names srcs, dsts;
};

enum {
	ITR_ALTO_WANT_PID = 1u << 0,
	ITR_ALTO_WANT_ASID = 1u << 1,
	ITR_ALTO_WANT_LOC = 1u << 2,
};

struct itr_alto_endpointprop_req {
	unsigned want; /* ITR_ALTO_WANT_* bits */
	struct itr_alto_endpoints endpoints;
};

struct itr_alto_endpointcost_req {
	enum itr_alto_mode mode;
	struct itr_alto_constraints constraints;
	/* Empty (or absent) lists stand for the requesting client's address
	 * (RFC 7285 11.5.1.3); at most one of them is empty. */
	struct itr_alto_endpoints srcs, dsts;
};

/* Request body parsers. Each returns 0 with *out filled (free it with the
 * matching free function), or -1 with *err filled and *out left empty.
 * Unknown members are ignored (RFC 7285 8.3.7). netmap_id is the network
 * map's resource id ("<id>.pid" is the pid property). */
int itr_alto_parse_netmap_filter(const char *body, size_t len, struct itr_alto_netmap_filter *out,
                                 struct itr_alto_error *err);
int itr_alto_parse_costmap_filter(const char *body, size_t len, struct itr_alto_costmap_filter *out,
                                  struct itr_alto_error *err);
int itr_alto_parse_endpointprop(const char *body, size_t len, const char *netmap_id,
                                struct itr_alto_endpointprop_req *out, struct itr_alto_error *err);
int itr_alto_parse_endpointcost(const char *body, size_t len, struct itr_alto_endpointcost_req *out,
                                struct itr_alto_error *err);

void itr_alto_netmap_filter_free(struct itr_alto_netmap_filter *f);
void itr_alto_costmap_filter_free(struct itr_alto_costmap_filter *f);
void itr_alto_endpointprop_req_free(struct itr_alto_endpointprop_req *r);
void itr_alto_endpointcost_req_free(struct itr_alto_endpointcost_req *r);

/* ---- encoders: malloc'ed NUL-terminated JSON, NULL only without memory --- */

char *itr_alto_encode_ird(const struct itr_netmap *map, const struct itr_alto_config *cfg);
/* filter NULL: the full map. */
char *itr_alto_encode_networkmap(const struct itr_netmap *map,
                                 const struct itr_alto_netmap_filter *filter);
/* filter NULL: the full map in the given mode; otherwise filter->mode wins. */
char *itr_alto_encode_costmap(const struct itr_netmap *map, enum itr_alto_mode mode,
                              const struct itr_alto_costmap_filter *filter);
/* The same text as itr_alto_encode_costmap(map, filter->mode, filter),
 * written a piece at a time as a client takes it: the answer is never
 * held whole (a large filtered map). The stream takes filter (zeroed
 * here; free it afterwards either way) and a reference to map;
 * on_end(arg), if not NULL, runs once: when the last byte is handed out,
 * or when the stream is freed before that. NULL without memory. fill
 * writes at most max bytes to buf: their number, 0 at the end, -1 without
 * memory (itr_http_set_generator's callbacks). */
struct itr_alto_costmap_stream;
struct itr_alto_costmap_stream *itr_alto_costmap_stream_new(struct itr_netmap *map,
                                                            struct itr_alto_costmap_filter *filter,
                                                            void (*on_end)(void *arg), void *arg);
long itr_alto_costmap_stream_fill(void *cls, char *buf, size_t max);
void itr_alto_costmap_stream_free(void *cls);
char *itr_alto_encode_endpointprop(const struct itr_netmap *map,
                                   const struct itr_alto_endpointprop_req *req);
/* Resource bound of one endpoint cost request (srcs x dsts); larger ones
 * get E_INVALID_FIELD_VALUE on "endpoints". A 35 kB request of 1000 x 1000
 * addresses took 4.9 s and 230 MB to answer (1000-PID map, one core), so a
 * small body must not buy that; 65536 pairs (256 x 256, far above a peer
 * list) stay near 0.3 s. */
#define ITR_ALTO_MAX_PAIRS 65536
/* Most constraints one request may carry ("constraints" or all groups of
 * "or-constraints" together); more get E_INVALID_FIELD_VALUE. */
#define ITR_ALTO_MAX_CONSTRAINTS 64

/* client: the requester's address, used for an empty srcs or dsts list;
 * NULL (or no usable address) with an empty list yields E_INVALID_FIELD_VALUE
 * through err and a NULL return. */
char *itr_alto_encode_endpointcost(const struct itr_netmap *map,
                                   const struct itr_alto_endpointcost_req *req,
                                   const struct itr_alto_endpoint *client,
                                   struct itr_alto_error *err);
char *itr_alto_encode_error(const struct itr_alto_error *err);

#endif
