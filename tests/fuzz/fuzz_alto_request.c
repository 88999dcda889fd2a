/* fuzz_alto_request.c - libFuzzer harness over every ALTO request body
 * parser (user/alto.c). The first input byte selects the parser (modulo 4:
 * filtered network map, filtered cost map, endpoint property, endpoint
 * cost); the rest is the body. An accepted request is also encoded against
 * RFC 7285's example network, as the server would, and every output must be
 * valid JSON; a refused one must produce a valid error document with one of
 * the four RFC 7285 codes.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alto.h"
#include "netmap.h"

static const char map_text[] = "network-map my-default-network-map\n"
                               "tier same-pid 1\n"
                               "pid PID1 id 1 asn 64496 loc 1\n"
                               "prefix PID1 192.0.2.0/24 198.51.100.0/25 2001:db8:1::/48\n"
                               "pid PID2 id 2 asn 64496 loc 2\n"
                               "prefix PID2 198.51.100.128/25\n"
                               "pid PID3 id 3 asn 64497\n"
                               "prefix PID3 0.0.0.0/0 ::/0\n"
                               "cost PID1 PID2 5\n"
                               "cost PID2 PID1 5\n"
                               "cost PID3 PID1 20\n";

static struct itr_netmap *map;

static void must_be_json(char *text)
{
	json_error_t jerr;
	json_t *doc;
	if (!text)
		return; /* out of memory is allowed */
	doc = json_loads(text, 0, &jerr);
	if (!doc) {
		fprintf(stderr, "encoder produced invalid JSON: %s\n%s\n", jerr.text, text);
		abort();
	}
	json_decref(doc);
	free(text);
}

static void check_error(const struct itr_alto_error *err)
{
	if (err->code < ITR_ALTO_E_SYNTAX || err->code > ITR_ALTO_E_INVALID_FIELD_VALUE) {
		fprintf(stderr, "refused without an error code\n");
		abort();
	}
	/* Every member the error carries is sent, whatever bytes of the
	 * request it quotes (a member that is not UTF-8 used to be dropped). */
	char *text = itr_alto_encode_error(err);
	if (!text)
		return; /* out of memory is allowed */
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	json_t *meta = doc ? json_object_get(doc, "meta") : NULL;
	if (!meta || (err->field[0] && !json_object_get(meta, "field")) ||
	    (err->code == ITR_ALTO_E_SYNTAX && !json_object_get(meta, "syntax-error"))) {
		fprintf(stderr, "error reply lost a member or is not JSON:\n%s\n", text);
		abort();
	}
	json_decref(doc);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct itr_alto_error err;
	struct itr_alto_endpoint client = {.family = 4, .addr = {198, 51, 100, 200}};
	const char *body;
	size_t len;

	if (!map) {
		struct itr_netmap_error merr;
		map = itr_netmap_parse_text(map_text, strlen(map_text), "fuzz", &merr);
		if (!map)
			abort();
	}
	if (size == 0)
		return 0;
	body = (const char *)data + 1;
	len = size - 1;

	switch (data[0] % 4) {
	case 0: {
		struct itr_alto_netmap_filter f;
		if (itr_alto_parse_netmap_filter(body, len, &f, &err) < 0) {
			check_error(&err);
			break;
		}
		must_be_json(itr_alto_encode_networkmap(map, &f));
		itr_alto_netmap_filter_free(&f);
		break;
	}
	case 1: {
		struct itr_alto_costmap_filter f;
		if (itr_alto_parse_costmap_filter(body, len, &f, &err) < 0) {
			check_error(&err);
			break;
		}
		must_be_json(itr_alto_encode_costmap(map, f.mode, &f));
		itr_alto_costmap_filter_free(&f);
		break;
	}
	case 2: {
		struct itr_alto_endpointprop_req q;
		if (itr_alto_parse_endpointprop(body, len, itr_netmap_resource_id(map), &q, &err) <
		    0) {
			check_error(&err);
			break;
		}
		must_be_json(itr_alto_encode_endpointprop(map, &q));
		itr_alto_endpointprop_req_free(&q);
		break;
	}
	case 3: {
		struct itr_alto_endpointcost_req q;
		char *out;
		if (itr_alto_parse_endpointcost(body, len, &q, &err) < 0) {
			check_error(&err);
			break;
		}
		/* Alternate between having a client address and not. */
		out = itr_alto_encode_endpointcost(map, &q, (data[0] & 4) ? &client : NULL, &err);
		if (out)
			must_be_json(out);
		else if (err.code != ITR_ALTO_OK)
			check_error(&err);
		itr_alto_endpointcost_req_free(&q);
		break;
	}
	}
	return 0;
}
