/* fuzz_alto_stream.c - libFuzzer harness for the client side of an ALTO
 * update stream (alto_stream.c): the input is an event stream
 * (text/event-stream bytes), parsed and applied event by event. A full
 * resource that is taken must be held exactly as sent; a refused event
 * must leave the substream's resource as it was.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alto.h"
#include "alto_stream.h"
#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int apply(const char *type, const char *data, size_t len, void *arg)
{
	struct itr_alto_stream *s = arg;
	const char *comma = strrchr(type, ',');
	char id[80] = "";
	if (comma && strlen(comma + 1) < sizeof(id))
		memcpy(id, comma + 1, strlen(comma + 1) + 1);
	json_t *before = json_incref(itr_alto_stream_resource(s, id));
	const char *changed = NULL;
	char err[512];
	int rc = itr_alto_stream_event(s, type, data, len, &changed, err, sizeof(err));
	json_t *after = itr_alto_stream_resource(s, id);
	if (rc < 0 && after != before)
		abort(); /* refused, yet changed */
	if (rc == 0 && changed) {
		if (strcmp(changed, id) != 0 || !after)
			abort();
		bool patch = strncmp(type, ITR_ALTO_MT_MERGE_PATCH ",",
		                     strlen(ITR_ALTO_MT_MERGE_PATCH) + 1) == 0;
		if (!patch) {
			json_t *sent = json_loadb(data, len, JSON_DECODE_ANY, NULL);
			if (!json_equal(sent, after))
				abort();
			json_decref(sent);
		}
	}
	json_decref(before);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct itr_alto_stream *s = itr_alto_stream_new();
	if (!s)
		return 0;
	struct itr_sse_parser p;
	itr_sse_parser_init(&p, 1 << 16, apply, s);
	itr_sse_feed(&p, (const char *)data, size);
	itr_sse_parser_free(&p);
	itr_alto_stream_free(s);
	return 0;
}
