/* fuzz_price_cluster.c - libFuzzer harness over the parser of the rate
 * records that itrackerd instances share in a Redis Cluster
 * (itr_price_cluster_add, user/price_cluster.c). A record is either
 * refused with nothing added, or adds a finite, non-negative rate and one
 * contributor to links the map has, and the encoder's own output for the
 * sums always parses back.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "price_cluster.h"

static const char *const names[] = {"a-up", "b-up", "a-b"};
#define NLINKS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	double total[NLINKS] = {-1, -1, -1};
	unsigned contributors[NLINKS] = {0};
	int rc =
	    itr_price_cluster_add((const char *)data, size, names, NLINKS, total, contributors);
	for (size_t k = 0; k < NLINKS; k++) {
		if (rc != 0 && (total[k] != -1 || contributors[k] != 0))
			abort(); /* a refused record added something */
		if (contributors[k] > 1)
			abort(); /* one record, one contribution per link */
		if (contributors[k] && !(isfinite(total[k]) && total[k] >= 0))
			abort();
	}
	if (rc == 0) {
		/* what was read writes back and reads again the same */
		char buf[1024];
		size_t len = itr_price_cluster_encode(buf, sizeof(buf), names, total, NLINKS, 1.0);
		if (!len)
			abort();
		double again[NLINKS] = {-1, -1, -1};
		unsigned c2[NLINKS] = {0};
		if (itr_price_cluster_add(buf, len, names, NLINKS, again, c2) != 0)
			abort();
		for (size_t k = 0; k < NLINKS; k++)
			if (c2[k] != contributors[k])
				abort();
	}
	return 0;
}
