/* fuzz_http_body_stream.c - libFuzzer harness for the HTTP client's
 * incremental body decoder (itr_http_body_decoder, under the update-stream
 * follower): the input is a chunked body, fed in pieces whose sizes come
 * from its first byte. Whatever the pieces, the decoder must yield exactly
 * the bytes that the whole-answer parser decodes from the same body when
 * that one finds it complete, and must never call a body malformed that
 * the whole-answer parser accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	char *buf;
	size_t len, cap;
};

static int collect(const char *bytes, size_t len, void *arg)
{
	struct sink *s = arg;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2 + 16;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf)
			abort();
	}
	memcpy(s->buf + s->len, bytes, len);
	s->len += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	if (size < 1 || size > 16384)
		return 0;
	size_t piece = (size_t)(data[0] % 17) + 1;
	const char *body = (const char *)data + 1;
	size_t body_len = size - 1;

	/* the whole answer, parsed at once */
	size_t whole_len = sizeof(head) - 1 + body_len;
	char *whole = malloc(whole_len + 1);
	if (!whole)
		abort();
	memcpy(whole, head, sizeof(head) - 1);
	memcpy(whole + sizeof(head) - 1, body, body_len);
	struct itr_http_parsed parsed;
	int whole_rc = itr_http_response_parse(whole, whole_len, false, &parsed);

	/* the same body, in pieces, through the decoder (keeping what it did
	 * not take, as the client does) */
	struct sink out = {0};
	struct itr_http_body_decoder dec;
	itr_http_body_decoder_init(&dec, true, collect, &out);
	char *pending = malloc(body_len + 1);
	if (!pending)
		abort();
	size_t npending = 0;
	int rc = 0;
	for (size_t off = 0; off < body_len && rc == 0; off += piece) {
		size_t n = body_len - off < piece ? body_len - off : piece;
		memcpy(pending + npending, body + off, n);
		npending += n;
		size_t used;
		rc = itr_http_body_decoder_feed(&dec, pending, npending, &used);
		if (used > npending)
			abort();
		memmove(pending, pending + used, npending - used);
		npending -= used;
	}
	if (whole_rc == 1) {
		/* complete as a whole: the decoder reached the last chunk too, and
		 * produced the same data */
		if (rc != 1 || out.len != parsed.body_len ||
		    (out.len && memcmp(out.buf, whole + parsed.body_off, out.len) != 0))
			abort();
	}
	free(pending);
	free(out.buf);
	free(whole);
	return 0;
}
