/* fuzz_udp_packet.c - libFuzzer harness for the UDP tracker: the BEP 15
 * parser, and the full handler for a source that never got a connection
 * ID, which must never answer with more bytes than it received.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "udp_tracker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct itr_tracker *tracker;
static struct itr_udp_connid connid;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tracker) {
		struct itr_tracker_config cfg;
		char err[256];
		itr_tracker_config_default(&cfg);
		tracker = itr_tracker_new(&cfg, NULL, err, sizeof(err));
		if (!tracker)
			abort();
		itr_udp_connid_init(&connid);
	}
	uint8_t *pkt = malloc(size ? size : 1);
	if (!pkt)
		return 0;
	memcpy(pkt, data, size);

	struct itr_udp_request req;
	const char *why;
	enum itr_udp_parse_status st = itr_udp_parse(pkt, size, &req, &why);
	if (st == ITR_UDP_INVALID && !why)
		abort();
	if (st == ITR_UDP_PARSED && req.action == ITR_UDP_SCRAPE &&
	    (req.nhashes == 0 || req.nhashes > ITR_UDP_MAX_SCRAPE || 16 + 20 * req.nhashes > size))
		abort();

	/* the source address comes from the input too */
	struct itr_peer_addr src = {.family = size && (data[0] & 1) ? 6 : 4, .port = 4242};
	if (size > 20)
		memcpy(src.addr, data + size - 16, 16);
	uint8_t out[2048];
	size_t n = itr_udp_handle(tracker, &connid, &src, pkt, size, out, sizeof(out));
	if (n > size)
		abort(); /* amplification */
	free(pkt);
	return 0;
}
