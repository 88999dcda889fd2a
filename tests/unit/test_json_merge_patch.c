/* test_json_merge_patch.c - RFC 7396 merge patches: the examples of the
 * RFC's Appendix A applied, diffs that round-trip, minimal diffs, and the
 * refusals (null in a target, nesting too deep).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json_merge_patch.h"

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
	if (!v)
		fail_msg("bad test JSON %s: %s", text, err.text);
	return v;
}

static void assert_apply(const char *target, const char *patch, const char *expect)
{
	json_t *t = parse(target), *p = parse(patch), *e = parse(expect);
	assert_int_equal(itr_merge_patch_apply(&t, p), 0);
	if (!json_equal(t, e)) {
		char *got = json_dumps(t, JSON_ENCODE_ANY | JSON_COMPACT);
		fail_msg("apply(%s, %s) = %s, want %s", target, patch, got, expect);
	}
	json_decref(t);
	json_decref(p);
	json_decref(e);
}

/* RFC 7396 Appendix A, every row. */
static void test_rfc_examples(void **state)
{
	(void)state;
	assert_apply("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	assert_apply("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
	assert_apply("{\"a\":\"b\"}", "{\"a\":null}", "{}");
	assert_apply("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
	assert_apply("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	assert_apply("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
	assert_apply("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	             "{\"a\":{\"b\":\"d\"}}");
	assert_apply("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
	assert_apply("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
	assert_apply("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
	assert_apply("{\"a\":\"foo\"}", "null", "null");
	assert_apply("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
	assert_apply("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
	assert_apply("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
	assert_apply("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

static void assert_roundtrip(const char *from, const char *to, const char *expect_patch)
{
	json_t *f = parse(from), *t = parse(to), *patch = NULL;
	assert_int_equal(itr_merge_patch_diff(f, t, &patch), 0);
	if (!expect_patch) {
		assert_null(patch);
	} else {
		json_t *e = parse(expect_patch);
		if (!json_equal(patch, e)) {
			char *got = json_dumps(patch, JSON_ENCODE_ANY | JSON_COMPACT);
			fail_msg("diff(%s, %s) = %s, want %s", from, to, got, expect_patch);
		}
		json_decref(e);
		json_t *applied = json_deep_copy(f);
		assert_int_equal(itr_merge_patch_apply(&applied, patch), 0);
		assert_true(json_equal(applied, t));
		json_decref(applied);
	}
	json_decref(patch);
	json_decref(f);
	json_decref(t);
}

static void test_diff(void **state)
{
	(void)state;
	/* equal documents: no patch at all */
	assert_roundtrip("{\"a\":{\"b\":[1,2]}}", "{\"a\":{\"b\":[1,2]}}", NULL);
	/* only what changed, deep inside; removed members become null */
	assert_roundtrip(
	    "{\"meta\":{\"vtag\":{\"tag\":\"1\"}},\"network-map\":{\"p\":{\"ipv4\":[\"10.0.0.0/"
	    "8\"]},"
	    "\"q\":{\"ipv4\":[\"11.0.0.0/8\"]}}}",
	    "{\"meta\":{\"vtag\":{\"tag\":\"2\"}},\"network-map\":{\"p\":{\"ipv4\":[\"10.0.0.0/8\","
	    "\"12.0.0.0/8\"]}}}",
	    "{\"meta\":{\"vtag\":{\"tag\":\"2\"}},\"network-map\":{\"p\":{\"ipv4\":[\"10.0.0.0/8\","
	    "\"12.0.0.0/8\"]},\"q\":null}}");
	/* type changes replace whole values */
	assert_roundtrip("{\"a\":{\"b\":1}}", "{\"a\":5}", "{\"a\":5}");
	assert_roundtrip("{\"a\":5}", "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}");
	assert_roundtrip("[1]", "{\"a\":1}", "{\"a\":1}");
	assert_roundtrip("{\"a\":1}", "[1]", "[1]");
}

static void test_refusals(void **state)
{
	(void)state;
	json_t *f = parse("{}"), *t = parse("{\"a\":[null]}"), *patch = (json_t *)1;
	assert_int_equal(itr_merge_patch_diff(f, t, &patch), -EINVAL);
	assert_null(patch);
	json_decref(t);

	/* 100 levels of nesting: apply refuses instead of recursing without bound */
	char deep[1024] = "";
	for (int i = 0; i < 100; i++)
		strcat(deep, "{\"a\":");
	strcat(deep, "1");
	for (int i = 0; i < 100; i++)
		strcat(deep, "}");
	json_t *p = parse(deep);
	json_t *target = json_object();
	assert_int_equal(itr_merge_patch_apply(&target, p), -E2BIG);
	json_decref(target);
	json_decref(p);
	json_decref(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_examples),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
