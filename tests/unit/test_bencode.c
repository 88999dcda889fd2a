/* test_bencode.c - the bencode writer's exact output and the strict
 * reader: canonical integers and lengths, sorted unique keys, depth limit,
 * lookups and iteration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bencode.h"

/* expect is a literal: its length comes from sizeof, it may hold NULs */
#define assert_encoded(b, expect) assert_encoded_len(b, expect, sizeof(expect) - 1)

static void assert_encoded_len(struct itr_benc *b, const char *expect, size_t expect_len)
{
	char *out;
	size_t len;
	assert_int_equal(itr_benc_finish(b, &out, &len), 0);
	assert_int_equal(len, expect_len);
	assert_memory_equal(out, expect, len);
	free(out);
}

static void test_writer(void **state)
{
	(void)state;
	struct itr_benc b;
	itr_benc_init(&b);
	itr_benc_dict(&b);
	itr_benc_key_int(&b, "complete", 3);
	itr_benc_key_int(&b, "neg", INT64_MIN);
	itr_benc_cstr(&b, "peers");
	itr_benc_list(&b);
	itr_benc_str(&b, "\0\x01", 2);
	itr_benc_int(&b, 0);
	itr_benc_end(&b);
	itr_benc_key_str(&b, "z", "", 0);
	itr_benc_end(&b);
	assert_encoded(&b, "d8:completei3e3:negi-9223372036854775808e5:peersl2:\0\x01i0ee1:z0:e");

	/* the writer is reusable after finish */
	itr_benc_int(&b, INT64_MAX);
	assert_encoded(&b, "i9223372036854775807e");
}

static void test_writer_grows(void **state)
{
	(void)state;
	struct itr_benc b;
	itr_benc_init(&b);
	char big[5000];
	memset(big, 'x', sizeof(big));
	itr_benc_str(&b, big, sizeof(big));
	char *out;
	size_t len;
	assert_int_equal(itr_benc_finish(&b, &out, &len), 0);
	assert_int_equal(len, 5 + sizeof(big));
	assert_memory_equal(out, "5000:", 5);
	assert_true(itr_bdec_valid((uint8_t *)out, len));
	free(out);
}

static void test_failure(void **state)
{
	(void)state;
	char *out;
	size_t len;
	assert_int_equal(itr_benc_failure("missing info_hash", &out, &len), 0);
	const char *expect = "d14:failure reason17:missing info_hashe";
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(out, expect, len);
	free(out);
}

static bool valid(const char *s)
{
	return itr_bdec_valid((const uint8_t *)s, strlen(s));
}

static void test_reader_accepts(void **state)
{
	(void)state;
	assert_true(valid("i0e"));
	assert_true(valid("i-1e"));
	assert_true(valid("i9223372036854775807e"));
	assert_true(valid("i-9223372036854775808e"));
	assert_true(valid("0:"));
	assert_true(valid("4:spam"));
	assert_true(valid("le"));
	assert_true(valid("de"));
	assert_true(valid("d1:ai1e1:bl1:xee"));
	assert_true(valid("d1:a0:2:aai0ee")); /* "a" < "aa" */
}

static void test_reader_rejects(void **state)
{
	(void)state;
	assert_false(valid(""));
	assert_false(valid("i03e")); /* leading zero */
	assert_false(valid("i-0e")); /* negative zero */
	assert_false(valid("ie"));
	assert_false(valid("i-e"));
	assert_false(valid("i1"));                    /* unterminated */
	assert_false(valid("i9223372036854775808e")); /* overflow */
	assert_false(valid("i-9223372036854775809e"));
	assert_false(valid("03:abc"));  /* leading zero length */
	assert_false(valid("5:abc"));   /* short */
	assert_false(valid("4:spamx")); /* trailing bytes */
	assert_false(valid("l"));
	assert_false(valid("d1:ae"));          /* key without value */
	assert_false(valid("di1ei2ee"));       /* non-string key */
	assert_false(valid("d1:bi1e1:ai2ee")); /* unsorted */
	assert_false(valid("d1:ai1e1:ai2ee")); /* duplicate */
	assert_false(valid("x"));

	char deep[2 * ITR_BENC_MAX_DEPTH + 3];
	size_t n = 0;
	for (int i = 0; i <= ITR_BENC_MAX_DEPTH; i++)
		deep[n++] = 'l';
	for (int i = 0; i <= ITR_BENC_MAX_DEPTH; i++)
		deep[n++] = 'e';
	assert_false(itr_bdec_valid((uint8_t *)deep, n));
	/* one level less is fine */
	assert_true(itr_bdec_valid((uint8_t *)deep + 1, n - 2));
}

static void test_lookup_and_iterate(void **state)
{
	(void)state;
	const char *s = "d8:completei7e5:filesd3:abcd1:xi1eee5:peersl1:a2:bbee";
	struct itr_bval root, v, item;
	assert_int_equal(itr_bdec((const uint8_t *)s, strlen(s), &root), (long)strlen(s));
	assert_int_equal(root.type, ITR_BVAL_DICT);
	assert_int_equal(itr_bdec_dict_get(&root, "complete", &v), 0);
	assert_int_equal(v.type, ITR_BVAL_INT);
	assert_int_equal(v.num, 7);
	assert_int_equal(itr_bdec_dict_get(&root, "missing", &v), -1);

	assert_int_equal(itr_bdec_dict_get(&root, "files", &v), 0);
	struct itr_bval inner, x;
	assert_int_equal(itr_bdec_dict_get(&v, "abc", &inner), 0);
	assert_int_equal(itr_bdec_dict_get(&inner, "x", &x), 0);
	assert_int_equal(x.num, 1);

	assert_int_equal(itr_bdec_dict_get(&root, "peers", &v), 0);
	assert_int_equal(v.type, ITR_BVAL_LIST);
	size_t pos = 0;
	assert_int_equal(itr_bdec_list_next(&v, &pos, &item), 1);
	assert_int_equal(item.len, 1);
	assert_memory_equal(item.data, "a", 1);
	assert_int_equal(itr_bdec_list_next(&v, &pos, &item), 1);
	assert_memory_equal(item.data, "bb", 2);
	assert_int_equal(itr_bdec_list_next(&v, &pos, &item), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_writer),         cmocka_unit_test(test_writer_grows),
	    cmocka_unit_test(test_failure),        cmocka_unit_test(test_reader_accepts),
	    cmocka_unit_test(test_reader_rejects), cmocka_unit_test(test_lookup_and_iterate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
