/* fuzz_packet_parse.c - libFuzzer harness over the kernel's packet parser
 * and BitTorrent signature checks (bpf/parse.h, bpf/bt_signatures.h,
 * bpf/tracker_peers.h), compiled for userspace through bpf/user_compat.h:
 * the same code the verifier accepted, run on arbitrary bytes. The input is
 * a frame; a parsed frame must place its payload inside the frame, and
 * every check on the payload must stay inside the bytes it was given
 * (AddressSanitizer watches the reads) and report offsets inside them; an
 * IPv4 frame's 16-byte flow key must name the flow its generic key does.
 */
#include "user_compat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "itracker_maps.h"
#include "parse.h"
#include "flow_key.h"
#include "tracker_peers.h"

static void check_list(const struct itr_peer_list *l, __u32 len, __u32 entry)
{
	if (l->count && (l->off + l->count * entry > len || l->count > ITR_PEERS_PER_LIST))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct itr_scratch s;
	struct itr_pkt p;
	uint8_t *buf, *frame;

	if (size > 65535)
		return 0;
	/* A heap copy that ends where the frame ends (reads past it trap) and
	 * starts 2 bytes into an aligned block, as drivers place frames
	 * (NET_IP_ALIGN): the IP header behind the 14-byte Ethernet header is
	 * then 4-byte aligned, as the kernel's structs expect. */
	buf = malloc(size + 2);
	if (!buf)
		return 0;
	frame = buf + 2;
	memcpy(frame, data, size);
	if (itr_parse(frame, frame + size, (__u32)size, &p) == 0) {
		if (p.payload_off > size || p.payload_len > size - p.payload_off)
			abort();
		struct itr_flow_key k;
		int src_lo = itr_src_is_lo(&p);
		itr_flow_key_fill(&k, &p, src_lo);
		if (p.family == 4) {
			/* The IPv4 flow cache's key names the same flow: the
			 * same "lo" end, and widened it is the generic key
			 * (classify matches frames to kernel entries that way). */
			struct itr_flow_key_v4 k4;
			struct itr_flow_key wide;
			if (itr_src_is_lo_v4(&p) != src_lo)
				abort();
			itr_flow_key_v4_fill(&k4, &p, src_lo);
			itr_flow_key_widen_v4(&wide, &k4);
			if (memcmp(&wide, &k, sizeof(k)) != 0)
				abort();
		}
	}
	free(buf);

	/* The signature checks, on the input as a payload held in the
	 * scratch buffer (zeroed past it, as the kernel's is not: the checks
	 * must not read past len anyway). */
	__u32 len = size < ITR_TRACKER_SCAN_BYTES ? (__u32)size : ITR_TRACKER_SCAN_BYTES;
	memset(s.buf, 0xa5, sizeof(s.buf));
	memcpy(s.buf, data, len);
	__u32 head = len < ITR_SCRATCH_BYTES ? len : ITR_SCRATCH_BYTES;
	struct itr_utp_hdr uh;
	(void)itr_sig_peer_wire(s.buf, head);
	(void)itr_sig_http_tracker(s.buf, head);
	(void)itr_sig_udp_connect(s.buf, head);
	(void)itr_sig_udp_announce(s.buf, head);
	(void)itr_sig_dht(s.buf, len, (__u32)size);
	(void)itr_sig_utp(s.buf, head, &uh);
	(void)itr_http_answer_ok(s.buf, len);
	(void)itr_udp_announce_port(s.buf, len);
	struct itr_peers_scan st;
	itr_http_peer_lists(s.buf, len, &st);
	check_list(&st.v4, len, ITR_PEER4_BYTES);
	check_list(&st.v6, len, ITR_PEER6_BYTES);
	struct itr_peer_list l;
	if (itr_udp_peer_list(s.buf, len, (__u32)size, ITR_PEER4_BYTES, &l))
		check_list(&l, len, ITR_PEER4_BYTES);
	return 0;
}
