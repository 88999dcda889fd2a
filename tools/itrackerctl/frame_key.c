/* frame_key.c - the flow key of a captured frame for `itrackerctl
 * classify`, computed by the data plane's own parser: bpf/parse.h and
 * bpf/flow_key.h compiled for userspace (bpf/user_compat.h). classify runs
 * every frame through the real XDP program for its verdicts; this only
 * tells which flow a frame's packets and bytes belong to, with the very
 * rules (VLAN tags, IPv4 fragments, IPv6 extension headers, lengths) the
 * program used.
 *
 * Its own translation unit: the compat header defines asm and byte-order
 * macros the rest of itrackerctl need not see.
 */
#include "user_compat.h"

#include <stddef.h>
#include <stdint.h>

#include "itracker_maps.h"
#include "parse.h"
#include "flow_key.h"
#include "ctl.h"

int ctl_frame_flow_key(const uint8_t *frame, size_t len, struct itr_flow_key *key)
{
	struct itr_pkt p;
	void *data = (void *)frame;

	if (len > UINT32_MAX || itr_parse(data, (uint8_t *)data + len, (__u32)len, &p) < 0)
		return -1;
	itr_flow_key_fill(key, &p, itr_src_is_lo(&p));
	return 0;
}

void ctl_flow_key_widen_v4(struct itr_flow_key *key, const struct itr_flow_key_v4 *key4)
{
	itr_flow_key_widen_v4(key, key4);
}
