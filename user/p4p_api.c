/* p4p_api.c - GET /v1/netinfo and POST /v1/rank: the P4P iTracker
 * interfaces (network position of an address; a candidate list ranked for a
 * client) as JSON over the shared HTTP listener.
 *
 * GET /v1/netinfo[?ip=ADDR]: ADDR defaults to the caller's address
 * (IPv4-mapped IPv6 callers are shown as IPv4). Answer:
 *   {"ip":"10.10.1.5","pid":"a-metro1","asid":64500,"loc":1,"vtag":"..."}
 * An address no PID covers (and no default PID) gets "pid":null,
 * "asid":null,"loc":null; a PID without a LOC gets "loc":null. So a client
 * always learns the map's vtag and can tell "not in this network" apart
 * from an error.
 *
 * POST /v1/rank {"client":ADDR,"peers":[...],"numwant":N}: answer
 *   {"client":{netinfo},"vtag":"...","peers":[{"ip","port","pid","cost"}]}
 * in rank order (see rank.c). "port" is 0 for a candidate given without one.
 *
 * Errors are 400 (503 with no map published) with
 * {"error":{"code","field","reason"}}; codes are ALTO's (RFC 7285), so one
 * client library reads both APIs' errors.
 */
#include "p4p_api.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netmap.h"

static const char JSON_TYPE[] = "application/json";

void itr_p4p_api_config_default(struct itr_p4p_api_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	itr_rank_policy_default(&cfg->policy);
	cfg->max_numwant = 200;
	cfg->default_numwant = 50;
	cfg->max_peers = 10000;
}

/* ---- errors ------------------------------------------------------------- */

static void set_error(struct itr_p4p_error *err, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_error(struct itr_p4p_error *err, const char *code, const char *field,
                      const char *fmt, ...)
{
	va_list ap;
	memset(err, 0, sizeof(*err));
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
}

char *itr_p4p_error_json(const struct itr_p4p_error *err, size_t *len)
{
	json_t *inner = json_pack("{s:s, s:s, s:s}", "code", err->code, "field", err->field,
	                          "reason", err->reason);
	if (!inner)
		return NULL;
	if (err->line > 0) {
		json_object_set_new(inner, "line", json_integer(err->line));
		json_object_set_new(inner, "column", json_integer(err->column));
	}
	json_t *root = json_pack("{s:o}", "error", inner);
	if (!root)
		return NULL;
	char *s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s && len)
		*len = strlen(s);
	return s;
}

static void respond_error(struct itr_http_response *resp, int status,
                          const struct itr_p4p_error *err)
{
	size_t len = 0;
	char *body = itr_p4p_error_json(err, &len);
	itr_http_set_body(resp, body ? status : 500, JSON_TYPE, body, body ? len : 0);
}

static void respond_json(struct itr_http_response *resp, json_t *root)
{
	char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!s) {
		itr_http_set_body(resp, 500, JSON_TYPE, NULL, 0);
		return;
	}
	itr_http_set_body(resp, 200, JSON_TYPE, s, strlen(s));
}

/* ---- the /v1/rank request parser ----------------------------------------- */

static int parse_address(json_t *v, const char *field, struct itr_peer_addr *out,
                         struct itr_p4p_error *err)
{
	if (!json_is_string(v)) {
		set_error(err, "E_INVALID_FIELD_TYPE", field, "must be an address string");
		return -1;
	}
	if (itr_peer_addr_parse(json_string_value(v), out) < 0) {
		set_error(err, "E_INVALID_FIELD_VALUE", field,
		          "not an address (ADDR, ADDR:PORT or [V6]:PORT)");
		return -1;
	}
	return 0;
}

int itr_p4p_parse_rank_request(const char *body, size_t len, const struct itr_p4p_api_config *cfg,
                               struct itr_p4p_rank_request *out, struct itr_p4p_error *err)
{
	json_error_t jerr;
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		set_error(err, "E_SYNTAX", "", "%s", jerr.text);
		err->line = jerr.line > 0 ? jerr.line : 1;
		err->column = jerr.column > 0 ? jerr.column : 1;
		return -1;
	}
	if (!json_is_object(root)) {
		set_error(err, "E_INVALID_FIELD_TYPE", "", "the request must be a JSON object");
		goto fail;
	}

	json_t *client = json_object_get(root, "client");
	if (!client) {
		set_error(err, "E_MISSING_FIELD", "client", "the client's address is required");
		goto fail;
	}
	if (parse_address(client, "client", &out->client, err) < 0)
		goto fail;

	json_t *peers = json_object_get(root, "peers");
	if (!peers) {
		set_error(err, "E_MISSING_FIELD", "peers", "the candidate list is required");
		goto fail;
	}
	if (!json_is_array(peers)) {
		set_error(err, "E_INVALID_FIELD_TYPE", "peers", "must be an array of addresses");
		goto fail;
	}
	size_t n = json_array_size(peers);
	if (n > cfg->max_peers) {
		set_error(err, "E_INVALID_FIELD_VALUE", "peers", "%zu candidates, at most %zu", n,
		          cfg->max_peers);
		goto fail;
	}

	out->numwant = cfg->default_numwant;
	json_t *numwant = json_object_get(root, "numwant");
	if (numwant) {
		if (!json_is_integer(numwant)) {
			set_error(err, "E_INVALID_FIELD_TYPE", "numwant", "must be an integer");
			goto fail;
		}
		json_int_t w = json_integer_value(numwant);
		if (w < 0 || w > (json_int_t)cfg->max_numwant) {
			set_error(err, "E_INVALID_FIELD_VALUE", "numwant", "must be 0..%u",
			          cfg->max_numwant);
			goto fail;
		}
		out->numwant = (unsigned)w;
	}

	out->peers = malloc((n ? n : 1) * sizeof(*out->peers));
	if (!out->peers) {
		set_error(err, "E_INVALID_FIELD_VALUE", "peers", "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		char field[32];
		snprintf(field, sizeof(field), "peers[%zu]", i);
		if (parse_address(json_array_get(peers, i), field, &out->peers[i], err) < 0)
			goto fail;
	}
	out->npeers = n;
	json_decref(root);
	return 0;
fail:
	itr_p4p_rank_request_free(out);
	json_decref(root);
	return -1;
}

void itr_p4p_rank_request_free(struct itr_p4p_rank_request *req)
{
	free(req->peers);
	req->peers = NULL;
	req->npeers = 0;
}

/* ---- handlers ------------------------------------------------------------ */

static json_t *pid_name_or_null(const struct itr_pid *pid)
{
	return pid ? json_string(pid->name) : json_null();
}

static json_t *netinfo_json(const struct itr_netmap *map, const struct itr_peer_addr *addr)
{
	char ip[INET6_ADDRSTRLEN];
	const struct itr_pid *pid = itr_netmap_lookup(map, addr->family, addr->addr);
	itr_peer_addr_ntop(addr, ip, sizeof(ip));
	return json_pack("{s:s, s:o, s:o, s:o, s:s}", "ip", ip, "pid", pid_name_or_null(pid),
	                 "asid", pid ? json_integer(pid->asn) : json_null(), "loc",
	                 pid && pid->loc != ITR_LOC_NONE ? json_integer(pid->loc) : json_null(),
	                 "vtag", itr_netmap_vtag(map));
}

static int sockaddr_to_peer(const struct sockaddr_storage *ss, socklen_t len,
                            struct itr_peer_addr *out)
{
	char text[INET6_ADDRSTRLEN];
	memset(out, 0, sizeof(*out));
	if (len >= sizeof(struct sockaddr_in) && ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	} else if (len >= sizeof(struct sockaddr_in6) && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	} else {
		return -1;
	}
	/* Through the parser, which folds IPv4-mapped addresses to IPv4. */
	return itr_peer_addr_parse(text, out);
}

static struct itr_netmap *current_map_or_503(struct itr_http_response *resp)
{
	struct itr_netmap *map = itr_netmap_current();
	if (!map) {
		struct itr_p4p_error err;
		set_error(&err, "E_UNAVAILABLE", "", "no network map is loaded");
		respond_error(resp, 503, &err);
	}
	return map;
}

static void handle_netinfo(const struct itr_http_request *req, struct itr_http_response *resp,
                           void *arg)
{
	(void)arg;
	struct itr_p4p_error err;
	struct itr_peer_addr addr;
	char ip[INET6_ADDRSTRLEN + 1];

	long n = itr_http_query_get(req->query, "ip", (uint8_t *)ip, sizeof(ip));
	if (n == -1) {
		if (sockaddr_to_peer(&req->peer, req->peer_len, &addr) < 0) {
			set_error(&err, "E_MISSING_FIELD", "ip",
			          "the caller's address is unknown; give ?ip=");
			respond_error(resp, 400, &err);
			return;
		}
	} else if (n < 0 || (size_t)n >= sizeof(ip) || strlen(ip) != (size_t)n ||
	           itr_peer_addr_parse(ip, &addr) < 0 || addr.port != 0) {
		set_error(&err, "E_INVALID_FIELD_VALUE", "ip", "not an IPv4 or IPv6 address");
		respond_error(resp, 400, &err);
		return;
	}

	struct itr_netmap *map = current_map_or_503(resp);
	if (!map)
		return;
	respond_json(resp, netinfo_json(map, &addr));
	itr_netmap_unref(map);
}

static void handle_rank(const struct itr_http_request *req, struct itr_http_response *resp,
                        void *arg)
{
	const struct itr_p4p_api_config *cfg = arg;
	struct itr_p4p_error err;
	struct itr_p4p_rank_request rr;

	if (itr_p4p_parse_rank_request(req->body, req->body_len, cfg, &rr, &err) < 0) {
		respond_error(resp, 400, &err);
		return;
	}
	struct itr_netmap *map = current_map_or_503(resp);
	if (!map) {
		itr_p4p_rank_request_free(&rr);
		return;
	}

	size_t want = rr.numwant;
	struct itr_ranked_peer *ranked = malloc((want ? want : 1) * sizeof(*ranked));
	json_t *root = NULL;
	if (ranked) {
		size_t k =
		    itr_rank(map, &cfg->policy, &rr.client, rr.peers, rr.npeers, want, ranked);
		json_t *list = json_array();
		for (size_t i = 0; list && i < k; i++) {
			char ip[INET6_ADDRSTRLEN];
			itr_peer_addr_ntop(&ranked[i].peer, ip, sizeof(ip));
			json_array_append_new(list,
			                      json_pack("{s:s, s:i, s:o, s:I}", "ip", ip, "port",
			                                (int)ranked[i].peer.port, "pid",
			                                pid_name_or_null(ranked[i].pid), "cost",
			                                (json_int_t)ranked[i].cost));
		}
		root = json_pack("{s:o, s:s, s:o}", "client", netinfo_json(map, &rr.client), "vtag",
		                 itr_netmap_vtag(map), "peers", list);
	}
	respond_json(resp, root);
	free(ranked);
	itr_netmap_unref(map);
	itr_p4p_rank_request_free(&rr);
}

int itr_p4p_api_register(struct itr_http_server *srv, const struct itr_p4p_api_config *cfg)
{
	struct itr_p4p_api_config *copy = malloc(sizeof(*copy));
	if (!copy)
		return -1;
	*copy = *cfg;
	if (itr_http_attach(srv, copy, free) < 0) {
		free(copy);
		return -1;
	}
	if (itr_http_route(srv, "GET", "/v1/netinfo", handle_netinfo, copy) < 0 ||
	    itr_http_route(srv, "POST", "/v1/rank", handle_rank, copy) < 0)
		return -1;
	return 0;
}
