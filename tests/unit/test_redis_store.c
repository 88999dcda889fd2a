/* test_redis_store.c - what the Redis Cluster store and its client compute
 * without a cluster: CRC16/XMODEM and key slots (the Redis Cluster
 * specification's own examples, hash tags included), the 6/18-byte peer
 * members, and the refusals of bad store URLs. The cluster itself is
 * exercised by tests/e2e/redis_cluster.sh against real redis-server nodes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rank.h"
#include "redis_cluster.h"
#include "redis_store.h"

static void test_keyslot(void **state)
{
	(void)state;
	/* the spec's check value of CRC16/XMODEM */
	assert_int_equal(itr_rc_crc16("123456789", 9), 0x31C3);
	/* redis-cli CLUSTER KEYSLOT answers these */
	assert_int_equal(itr_rc_keyslot("foo", 3), 12182);
	assert_int_equal(itr_rc_keyslot("bar", 3), 5061);
	/* hash tags: only what is inside the first {...} counts */
	assert_int_equal(itr_rc_keyslot("{user1000}.following", 20),
	                 itr_rc_keyslot("{user1000}.followers", 20));
	assert_int_equal(itr_rc_keyslot("{user1000}.following", 20), itr_rc_keyslot("user1000", 8));
	/* an empty tag is no tag: the whole key counts */
	assert_int_equal(itr_rc_keyslot("foo{}{bar}", 10), itr_rc_crc16("foo{}{bar}", 10) % 16384);
	assert_int_equal(itr_rc_keyslot("foo{{bar}}zap", 13), itr_rc_keyslot("{bar", 4));
	assert_int_equal(itr_rc_keyslot("foo{bar}{zap}", 13), itr_rc_keyslot("bar", 3));
	/* a swarm's three keys share one slot */
	const char *s = "itr:{00112233445566778899aabbccddeeff00112233}:s";
	const char *l = "itr:{00112233445566778899aabbccddeeff00112233}:l";
	assert_int_equal(itr_rc_keyslot(s, strlen(s)), itr_rc_keyslot(l, strlen(l)));
}

static void test_members(void **state)
{
	(void)state;
	struct itr_peer_addr v4, v6, back;
	assert_int_equal(itr_peer_addr_parse("10.10.1.2:6881", &v4), 0);
	assert_int_equal(itr_peer_addr_parse("[fd00:10:1::2]:51413", &v6), 0);
	char m[18];
	assert_int_equal(itr_redis_member_encode(&v4, m), 6);
	assert_memory_equal(m, "\x0a\x0a\x01\x02\x1a\xe1", 6);
	assert_int_equal(itr_redis_member_decode(m, 6, &back), 0);
	assert_int_equal(back.family, 4);
	assert_memory_equal(back.addr, v4.addr, 4);
	assert_int_equal(back.port, 6881);
	assert_int_equal(itr_redis_member_encode(&v6, m), 18);
	assert_int_equal(itr_redis_member_decode(m, 18, &back), 0);
	assert_int_equal(back.family, 6);
	assert_memory_equal(back.addr, v6.addr, 16);
	assert_int_equal(back.port, 51413);
	/* other lengths are not members */
	assert_int_equal(itr_redis_member_decode(m, 7, &back), -1);
	assert_int_equal(itr_redis_member_decode(m, 0, &back), -1);
}

static void test_bad_urls(void **state)
{
	(void)state;
	char err[256];
	assert_null(itr_redis_store_new("redis://127.0.0.1:7000", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "redis-cluster://"));
	assert_null(itr_redis_store_new("redis-cluster://", NULL, err, sizeof(err)));
	assert_null(itr_redis_store_new("redis-cluster://host", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "HOST:PORT"));
	assert_null(itr_redis_store_new("redis-cluster://h:1,h:99999", NULL, err, sizeof(err)));
	assert_null(itr_redis_store_new("redis-cluster://h:1,,h:2", NULL, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keyslot),
	    cmocka_unit_test(test_members),
	    cmocka_unit_test(test_bad_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
