/* fuzz_rank_request.c - libFuzzer harness for the POST /v1/rank body:
 * the parser must accept or reject any bytes cleanly, and whatever it
 * accepts must rank (against the example network) without fault, with
 * every output a distinct input candidate in rank order. The fast path
 * (p4p_api.c) and the jansson parser must agree on every input: the same
 * request, or the same error. The same checks hold for the tracker's
 * rotated ties.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netmap.h"
#include "p4p_api.h"
#include "rank.h"

static const char MAP_TEXT[] = "tier same-pid 1\ntier same-loc 5\ntier same-as 10\n"
                               "tier other-as 100\n"
                               "pid a-metro1 id 1 asn 64500 loc 1\n"
                               "prefix a-metro1 10.10.1.0/24 fd00:10:1::/48\n"
                               "pid a-metro2 id 2 asn 64500 loc 2\n"
                               "prefix a-metro2 10.10.2.0/24 fd00:10:2::/48\n"
                               "pid b-core id 10 asn 64501 loc 10\n"
                               "prefix b-core 10.20.0.0/16 fd00:20::/32\n"
                               "pid c-all id 20 asn 64502\n"
                               "prefix c-all 10.30.0.0/16 fd00:30::/32\n"
                               "cost a-metro1 b-core 50\n";

static struct itr_netmap *map;

/* Rank rr under pol into out and check the list: no longer than asked
 * or given, each peer a distinct input candidate other than the client, in
 * cost order and, with priority_order, in BEP 40 priority order among
 * equal costs. */
static void rank_and_check(const struct itr_p4p_rank_request *rr, const struct itr_rank_policy *pol,
                           struct itr_ranked_peer *out, bool priority_order)
{
	size_t k = itr_rank(map, pol, &rr->client, rr->peers, rr->npeers, rr->numwant, out);
	if (k > rr->numwant || k > rr->npeers)
		abort();
	for (size_t i = 0; i < k; i++) {
		if (i > 0 && (out[i - 1].cost > out[i].cost ||
		              (priority_order && out[i - 1].cost == out[i].cost &&
		               out[i - 1].priority < out[i].priority)))
			abort();
		if (out[i].peer.port == rr->client.port &&
		    out[i].peer.family == rr->client.family &&
		    memcmp(out[i].peer.addr, rr->client.addr, 16) == 0)
			abort();
		for (size_t j = 0; j < i; j++)
			if (memcmp(&out[i].peer, &out[j].peer, sizeof(out[i].peer)) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct itr_p4p_api_config cfg;
	struct itr_p4p_rank_request rr;
	struct itr_p4p_error err;

	if (!map) {
		struct itr_netmap_error merr;
		map = itr_netmap_parse_text(MAP_TEXT, strlen(MAP_TEXT), "fuzz", &merr);
		if (!map)
			abort();
	}
	itr_p4p_api_config_default(&cfg);
	/* the fast path and jansson agree on every input */
	struct itr_p4p_rank_request slow;
	struct itr_p4p_error slow_err;
	int rc_slow =
	    itr_p4p_parse_rank_request_jansson((const char *)data, size, &cfg, &slow, &slow_err);
	int rc = itr_p4p_parse_rank_request((const char *)data, size, &cfg, &rr, &err);
	if (rc != rc_slow)
		abort();
	if (rc == 0) {
		if (rr.npeers != slow.npeers || rr.numwant != slow.numwant ||
		    memcmp(&rr.client, &slow.client, sizeof(rr.client)) != 0 ||
		    (rr.npeers && memcmp(rr.peers, slow.peers, rr.npeers * sizeof(*rr.peers)) != 0))
			abort();
		itr_p4p_rank_request_free(&slow);
	} else if (strcmp(err.code, slow_err.code) != 0 || strcmp(err.field, slow_err.field) != 0) {
		abort();
	}
	if (rc < 0) {
		size_t len;
		char *json = itr_p4p_error_json(&err, &len);
		if (!json || strlen(json) != len || !err.code)
			abort();
		free(json);
		return 0;
	}
	if (rr.numwant > cfg.max_numwant || rr.npeers > cfg.max_peers)
		abort();
	struct itr_ranked_peer *out = malloc((rr.numwant + 1) * sizeof(*out));
	struct itr_rank_policy pol = cfg.policy;
	/* Vary the policy with the input so the cap passes get exercised. */
	pol.max_own_pid_pct = (unsigned)(size % 101);
	pol.max_own_as_pct = (unsigned)((size / 3) % 101);
	rank_and_check(&rr, &pol, out, true);
	/* The tracker's rotated ties (rank.c): a large bucket is then not in
	 * priority order, so only cost order is checked. */
	pol.rotate_ties = true;
	pol.gateway_salt = (uint32_t)size * 2654435761u;
	rank_and_check(&rr, &pol, out, false);
	free(out);
	itr_p4p_rank_request_free(&rr);
	return 0;
}
