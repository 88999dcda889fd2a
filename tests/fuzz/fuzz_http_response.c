/* fuzz_http_response.c - libFuzzer harness for the HTTP client's response
 * parser and dechunker (http_client.c), which reads what upstream trackers
 * and the daemon answer. Any input is parsed as a whole answer (eof); a
 * complete answer's body must lie inside the input, and the same bytes
 * arriving in pieces must never be called malformed before the end nor
 * give another answer than the whole: every cut of a complete answer
 * parses as incomplete or as the same answer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t len, bool eof, struct itr_http_parsed *out,
                      char **body)
{
	char *buf = malloc(len + 1);
	if (!buf)
		abort();
	memcpy(buf, data, len);
	int rc = itr_http_response_parse(buf, len, eof, out);
	if (rc == 1) {
		if (out->body_off > len || out->body_len > len - out->body_off)
			abort();
		if (out->status < 100 || out->status > 999)
			abort();
		*body = malloc(out->body_len + 1);
		if (!*body)
			abort();
		memcpy(*body, buf + out->body_off, out->body_len);
	}
	free(buf);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct itr_http_parsed whole, part;
	char *whole_body = NULL, *part_body = NULL;
	int rc = parse_copy(data, size, true, &whole, &whole_body);
	if (rc == 0)
		abort(); /* at the end of the stream there is no "more to come" */
	if (rc < 0 || size > 8192)
		return 0;
	/* A complete answer that did not need the end of the stream. */
	if (parse_copy(data, size, false, &part, &part_body) != 1) {
		free(whole_body);
		free(part_body);
		return 0;
	}
	free(part_body);
	for (size_t i = 1; i <= 16; i++) {
		size_t cut = size * i / 17;
		part_body = NULL;
		int prc = parse_copy(data, cut, false, &part, &part_body);
		if (prc < 0)
			abort(); /* a prefix of a valid answer called malformed */
		if (prc == 1 && (part.status != whole.status || part.body_len != whole.body_len ||
		                 memcmp(part_body, whole_body, whole.body_len) != 0))
			abort();
		free(part_body);
	}
	free(whole_body);
	return 0;
}
