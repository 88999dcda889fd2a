/* fuzz_announce_query.c - libFuzzer harness for the HTTP tracker's query
 * parsers (announce and scrape): no crash, no overread, and a parsed
 * announce always carries a usable port and a failure always a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracker_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy: the parsers must stay within len */
	char *query = malloc(size ? size : 1);
	if (!query)
		return 0;
	memcpy(query, data, size);
	struct itr_announce_query q;
	char why[160];
	why[0] = '\0';
	if (itr_announce_query_parse(query, size, &q, why, sizeof(why)) == 0) {
		if (q.port == 0)
			abort();
	} else if (why[0] == '\0') {
		abort();
	}
	uint8_t hashes[8][ITR_INFO_HASH_LEN];
	long n = itr_scrape_query_parse(query, size, hashes, 8, why, sizeof(why));
	if (n == 0 || n > 8)
		abort();
	free(query);
	return 0;
}
