/* test_json_text.c - user/json_text.c: which bytes the UTF-8 scrubber keeps
 * (every well-formed sequence) and which it replaces (stray continuation
 * bytes, truncated sequences, overlongs, surrogates, code points past
 * U+10FFFF), and that itr_json_text always yields an encodable string.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_text.h"

static void test_scrub_cases(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *out;
		size_t replaced;
	} cases[] = {
	    {"plain ascii", "plain ascii", 0},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0},
	    {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf",
	     0},                              /* U+FFFF, U+10FFFF */
	    {"near '\xdd", "near '?", 1},     /* cut after lead */
	    {"\xe2\x82", "??", 2},            /* 3-byte sequence cut after two */
	    {"\x80 stray", "? stray", 1},     /* continuation without lead */
	    {"\xc0\xaf", "??", 2},            /* overlong '/' */
	    {"\xe0\x80\xaf", "???", 3},       /* overlong, 3 bytes */
	    {"\xed\xa0\x80", "???", 3},       /* surrogate U+D800 */
	    {"\xf4\x90\x80\x80", "????", 4},  /* past U+10FFFF */
	    {"\xf5\xff\xfe", "???", 3},       /* never in UTF-8 */
	    {"\xc3\xa9\xc3", "\xc3\xa9?", 1}, /* valid, then cut */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = strdup(cases[i].in);
		assert_non_null(s);
		size_t n = itr_utf8_scrub(s);
		if (strcmp(s, cases[i].out) != 0 || n != cases[i].replaced)
			fail_msg("case %zu: got \"%s\" (%zu replaced)", i, s, n);
		free(s);
	}
}

static void test_json_text(void **state)
{
	(void)state;
	json_t *v = itr_json_text("invalid escape near '\"numwant\\\xdd'");
	assert_non_null(v);
	assert_string_equal(json_string_value(v), "invalid escape near '\"numwant\\?'");
	char *dumped = json_dumps(v, JSON_ENCODE_ANY);
	assert_non_null(dumped);
	free(dumped);
	json_decref(v);

	v = itr_json_text("caf\xc3\xa9");
	assert_string_equal(json_string_value(v), "caf\xc3\xa9");
	json_decref(v);
	assert_null(itr_json_text(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scrub_cases),
	    cmocka_unit_test(test_json_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
