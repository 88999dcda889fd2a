/* fuzz_map_follow.c - libFuzzer harness for what a follower takes from a
 * primary's update stream: the input is an event stream (text/event-stream
 * bytes), parsed and applied event by event to the follower's state; every
 * map it accepts must be a map the netmap parser accepts again from its
 * own document, with the same vtag.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map_follow.h"
#include "netmap.h"
#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int apply(const char *type, const char *data, size_t len, void *arg)
{
	struct itr_map_follow_state *st = arg;
	struct itr_netmap *map = NULL;
	char err[512];
	if (itr_map_follow_event(st, type, data, len, &map, err, sizeof(err)) == 0 && map) {
		json_t *doc = itr_netmap_alto_document(map);
		char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		struct itr_netmap_error nerr;
		struct itr_netmap *again =
		    text ? itr_netmap_parse_alto(text, strlen(text), "again", &nerr) : NULL;
		if (!again || strcmp(itr_netmap_vtag(again), itr_netmap_vtag(map)) != 0)
			abort();
		itr_netmap_unref(again);
		free(text);
		json_decref(doc);
		itr_netmap_unref(map);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct itr_map_follow_state st;
	struct itr_sse_parser p;
	itr_map_follow_state_init(&st, "s");
	itr_sse_parser_init(&p, 1 << 16, apply, &st);
	itr_sse_feed(&p, (const char *)data, size);
	itr_sse_parser_free(&p);
	itr_map_follow_state_free(&st);
	return 0;
}
