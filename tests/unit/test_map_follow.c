/* test_map_follow.c - the follower's event state machine: a full document
 * makes a map, patches make the next versions, other substreams' events
 * and unknown types are ignored, a patch before any document or one that
 * breaks the map is refused while the last good document stays, and a
 * "stopped" control event for our substream is noticed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "map_follow.h"
#include "netmap.h"

static const char map_text[] = "network-map nm\n"
                               "pid east id 1 asn 64500 loc 1\n"
                               "prefix east 10.10.1.0/24\n"
                               "pid west id 2 asn 64501\n"
                               "prefix west 10.20.0.0/16\n";

static char *document(const char *text)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = itr_netmap_parse_text(text, strlen(text), "t", &err);
	assert_non_null(m);
	json_t *doc = itr_netmap_alto_document(m);
	char *out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	itr_netmap_unref(m);
	return out;
}

static struct itr_netmap *feed(struct itr_map_follow_state *st, const char *type, const char *data,
                               int want_rc)
{
	struct itr_netmap *map = NULL;
	char err[256] = "";
	int rc = itr_map_follow_event(st, type, data, strlen(data), &map, err, sizeof(err));
	if (rc != want_rc)
		fail_msg("event %s: rc %d (%s), want %d", type, rc, err, want_rc);
	if (rc < 0)
		assert_true(err[0] != '\0');
	return map;
}

static void test_versions(void **state)
{
	(void)state;
	struct itr_map_follow_state st;
	itr_map_follow_state_init(&st, "me");
	char *doc = document(map_text);

	/* a patch first: nothing to patch */
	assert_null(feed(&st, "application/merge-patch+json,me", "{}", -1));
	/* the control event and another substream's data change nothing */
	assert_null(feed(&st, "application/alto-updatestreamcontrol+json",
	                 "{\"control-uri\":\"/alto/updates/control?stream=ab\"}", 0));
	assert_string_equal(st.control_uri, "/alto/updates/control?stream=ab");
	assert_null(feed(&st, "application/json,other", doc, 0));
	assert_null(feed(&st, "message", "x", 0));

	struct itr_netmap *m = feed(&st, "application/json,me", doc, 0);
	assert_non_null(m);
	assert_non_null(itr_netmap_lookup_str(m, "10.10.1.5"));
	assert_null(itr_netmap_lookup_str(m, "10.30.0.1"));
	itr_netmap_unref(m);

	/* west takes 10.30.0.0/16 too */
	m = feed(&st, "application/merge-patch+json,me",
	         "{\"network-map\":{\"network-map\":{\"west\":{\"ipv4\":[\"10.20.0.0/16\","
	         "\"10.30.0.0/16\"]}}}}",
	         0);
	assert_non_null(m);
	assert_string_equal(itr_netmap_lookup_str(m, "10.30.0.1")->name, "west");
	itr_netmap_unref(m);

	/* a patch that leaves an invalid map (a prefix in two PIDs) is refused
	 * and the document stays as it was */
	assert_null(feed(
	    &st, "application/merge-patch+json,me",
	    "{\"network-map\":{\"network-map\":{\"east\":{\"ipv4\":[\"10.30.0.0/16\"]}}}}", -1));
	assert_null(feed(&st, "application/merge-patch+json,me", "not json", -1));
	m = feed(&st, "application/merge-patch+json,me", "{}", 0);
	assert_non_null(m);
	assert_string_equal(itr_netmap_lookup_str(m, "10.10.1.5")->name, "east");
	assert_string_equal(itr_netmap_lookup_str(m, "10.30.0.1")->name, "west");
	itr_netmap_unref(m);

	assert_false(st.stopped);
	assert_null(
	    feed(&st, "application/alto-updatestreamcontrol+json", "{\"stopped\":[\"x\"]}", 0));
	assert_false(st.stopped);
	assert_null(
	    feed(&st, "application/alto-updatestreamcontrol+json", "{\"stopped\":[\"me\"]}", 0));
	assert_true(st.stopped);

	free(doc);
	itr_map_follow_state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
