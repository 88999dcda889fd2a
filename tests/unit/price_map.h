/* price_map.h - the network map the price controller's unit tests share
 * (test_price, test_redis_store): three ASes, and an uplink of 4 Mbit/s
 * with hosts of 1 Mbit/s for AS 64500 (a), so fewer than four of its peers
 * without a seed cannot feed it (price.h). */
#ifndef ITR_TEST_PRICE_MAP_H
#define ITR_TEST_PRICE_MAP_H

static const char PRICE_MAP[] = "pid a id 1 asn 64500\nprefix a 10.10.0.0/16\n"
                                "pid b id 2 asn 64501\nprefix b 10.11.0.0/16\n"
                                "pid c id 3 asn 64502\nprefix c 10.12.0.0/16\n"
                                "link a-up asn 64500 uplink capacity 4mbit budget 2mbit "
                                "host-upload 1mbit\n";

#endif
