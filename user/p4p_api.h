/* p4p_api.h - the P4P-style JSON API on the shared HTTP listener:
 * GET /v1/netinfo (an address's network position) and POST /v1/rank
 * (a pTracker's candidate list ranked for one client).
 */
#ifndef ITR_P4P_API_H
#define ITR_P4P_API_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "rank.h"

struct itr_p4p_api_config {
	struct itr_rank_policy policy;
	unsigned max_numwant;     /* numwant above this is a 400 */
	unsigned default_numwant; /* when the request has no numwant */
	size_t max_peers;         /* candidates per request; more is a 400 */
};

/* policy default, max_numwant 200, default_numwant 50, max_peers 10000. */
void itr_p4p_api_config_default(struct itr_p4p_api_config *cfg);

/* Register GET /v1/netinfo and POST /v1/rank on srv (before it starts).
 * cfg is copied. Handlers read the map with itr_netmap_current(); with no
 * map published they answer 503. Returns 0 or -1. */
int itr_p4p_api_register(struct itr_http_server *srv, const struct itr_p4p_api_config *cfg);

/* ---- the /v1/rank request parser, callable without HTTP (fuzzing) ---- */

/* One error per request: {"error":{"code","field","reason"[,"line","column"]}}.
 * Codes follow ALTO (RFC 7285): E_SYNTAX (bad JSON, line/column set),
 * E_MISSING_FIELD, E_INVALID_FIELD_TYPE, E_INVALID_FIELD_VALUE (bad address,
 * numwant out of range, too many peers). field is a path such as
 * "peers[3]"; empty for syntax errors. */
struct itr_p4p_error {
	const char *code;
	char field[64];
	char reason[200];
	int line, column; /* 1-based; 0 unless code is E_SYNTAX */
};

struct itr_p4p_rank_request {
	struct itr_peer_addr client;
	struct itr_peer_addr *peers; /* malloc'ed */
	size_t npeers;
	unsigned numwant;
};

/* Parse {"client":ADDR,"peers":[ADDR[:PORT]|"[v6]:port",...],"numwant":N}.
 * Unknown members are ignored. 0 on success (free with
 * itr_p4p_rank_request_free), -1 with err filled. */
int itr_p4p_parse_rank_request(const char *body, size_t len, const struct itr_p4p_api_config *cfg,
                               struct itr_p4p_rank_request *out, struct itr_p4p_error *err);
void itr_p4p_rank_request_free(struct itr_p4p_rank_request *req);
/* The same through jansson alone. itr_p4p_parse_rank_request reads the
 * common form itself and leaves everything else (and every error) to this
 * one; the fuzz harness checks that both agree. */
int itr_p4p_parse_rank_request_jansson(const char *body, size_t len,
                                       const struct itr_p4p_api_config *cfg,
                                       struct itr_p4p_rank_request *out, struct itr_p4p_error *err);

/* The error as a malloc'ed JSON body (NULL if out of memory). */
char *itr_p4p_error_json(const struct itr_p4p_error *err, size_t *len);

#endif
