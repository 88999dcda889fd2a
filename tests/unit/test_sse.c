/* test_sse.c - text/event-stream: the encoder's exact bytes, the parser on
 * every line ending, byte-by-byte feeding, comments, fields it ignores,
 * events without data, the size bound, and encoder/parser round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sse.h"

struct seen {
	char log[2048];
	int count;
	int stop_after;
};

static int record(const char *type, const char *data, size_t data_len, void *arg)
{
	struct seen *s = arg;
	assert_int_equal(strlen(data), data_len);
	size_t used = strlen(s->log);
	snprintf(s->log + used, sizeof(s->log) - used, "[%s|%s]", type, data);
	s->count++;
	return s->stop_after && s->count >= s->stop_after ? 7 : 0;
}

static void parse_whole(const char *stream, size_t chunk, const char *expect)
{
	struct seen s = {0};
	struct itr_sse_parser p;
	itr_sse_parser_init(&p, 4096, record, &s);
	size_t len = strlen(stream);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		assert_int_equal(itr_sse_feed(&p, stream + off, n), 0);
	}
	itr_sse_parser_free(&p);
	assert_string_equal(s.log, expect);
}

static void test_encoder(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(itr_sse_append(&buf, &len, "application/alto-updatestreamcontrol+json",
	                                "{\"control-uri\":\"/x\"}", 20),
	                 0);
	assert_int_equal(itr_sse_append(&buf, &len, "t", "a\nb\r\nc\n", 7), 0);
	assert_string_equal(buf, "event: application/alto-updatestreamcontrol+json\n"
	                         "data: {\"control-uri\":\"/x\"}\n\n"
	                         "event: t\ndata: a\ndata: b\ndata: c\ndata: \n\n");
	assert_int_equal(len, strlen(buf));
	assert_int_equal(itr_sse_append(&buf, &len, "bad\ntype", "x", 1), -EINVAL);
	free(buf);
}

static void test_parser(void **state)
{
	(void)state;
	const char *stream = "\xEF\xBB\xBF: a comment\r\n"
	                     "event: one\r\ndata: {\"a\":1}\r\n\r\n"
	                     "event:two\rdata:x\rdata:  y\r\r"
	                     "id: 5\nretry: 10\nunknown: z\ndata\n\n"
	                     "event: no-data\n\n"
	                     "data: last\n\n"
	                     "data: not dispatched without a blank line\n";
	const char *expect = "[one|{\"a\":1}][two|x\n y][message|][message|last]";
	for (size_t chunk = 1; chunk <= strlen(stream); chunk++)
		parse_whole(stream, chunk, expect);
}

static void test_bounds_and_stop(void **state)
{
	(void)state;
	struct seen s = {0};
	struct itr_sse_parser p;
	itr_sse_parser_init(&p, 16, record, &s);
	assert_int_equal(itr_sse_feed(&p, "data: 0123456789abcdef\n", 23), -E2BIG);
	itr_sse_parser_free(&p);

	itr_sse_parser_init(&p, 16, record, &s);
	/* the bound is on an event's data, summed over its lines */
	assert_int_equal(itr_sse_feed(&p, "data: 01234567\ndata: 01234567\n", 30), -E2BIG);
	itr_sse_parser_free(&p);

	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	itr_sse_parser_init(&p, 64, record, &s);
	assert_int_equal(itr_sse_feed(&p, "data: a\n\ndata: b\n\n", 18), 7);
	assert_int_equal(s.count, 1);
	itr_sse_parser_free(&p);
}

static void test_roundtrip(void **state)
{
	(void)state;
	const char *datas[] = {"", "x", "a\nb", "\n", "\n\n", "trailing\n", "{\"k\":\"v: w\"}"};
	for (size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		assert_int_equal(itr_sse_append(&buf, &len, "ev", datas[i], strlen(datas[i])), 0);
		char expect[128];
		snprintf(expect, sizeof(expect), "[ev|%s]", datas[i]);
		parse_whole(buf, 1, expect);
		parse_whole(buf, len, expect);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encoder),
	    cmocka_unit_test(test_parser),
	    cmocka_unit_test(test_bounds_and_stop),
	    cmocka_unit_test(test_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
