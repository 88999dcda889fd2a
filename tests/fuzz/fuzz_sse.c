/* fuzz_sse.c - libFuzzer harness for the text/event-stream parser that an
 * ALTO update-stream follower runs on what a primary sends: any bytes, fed
 * in chunks whose sizes come from the input; every event the parser yields
 * is encoded again and must parse back to the same type and data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct expect {
	const char *type;
	const char *data;
	size_t len;
	int hits;
};

static int check_same(const char *type, const char *data, size_t len, void *arg)
{
	struct expect *e = arg;
	if (strcmp(type, e->type) != 0 || len != e->len || memcmp(data, e->data, len) != 0)
		abort();
	e->hits++;
	return 0;
}

static int reencode(const char *type, const char *data, size_t len, void *arg)
{
	(void)arg;
	char *buf = NULL;
	size_t buf_len = 0;
	if (itr_sse_append(&buf, &buf_len, type, data, len) != 0)
		abort(); /* a parsed type never holds a line break */
	struct expect e = {type, data, len, 0};
	struct itr_sse_parser p;
	itr_sse_parser_init(&p, 1 << 16, check_same, &e);
	if (itr_sse_feed(&p, buf, buf_len) != 0 || e.hits != 1)
		abort();
	itr_sse_parser_free(&p);
	free(buf);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (data[0] % 16) + 1;
	struct itr_sse_parser p;
	itr_sse_parser_init(&p, 4096, reencode, NULL);
	for (size_t off = 1; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (itr_sse_feed(&p, (const char *)data + off, n) != 0)
			break;
	}
	itr_sse_parser_free(&p);
	return 0;
}
