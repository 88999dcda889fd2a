/* peer_policy.c - the addresses a tracker must never store or hand out
 * (see peer_policy.h for the list and why). */
#include "peer_policy.h"

#include <stdint.h>
#include <string.h>

static bool in_v4(const uint8_t *a, uint32_t net, unsigned len)
{
	uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
	uint32_t mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
	return (v & mask) == (net & mask);
}

static const char *v4_refusal(const uint8_t *a, bool allow_loopback)
{
	if (in_v4(a, 0x00000000, 8))
		return "unspecified address";
	if (in_v4(a, 0x7f000000, 8))
		return allow_loopback ? NULL : "loopback address";
	if (in_v4(a, 0xa9fe0000, 16))
		return "link-local address";
	if (in_v4(a, 0xe0000000, 4))
		return "multicast address";
	if (in_v4(a, 0xf0000000, 4)) /* 255.255.255.255 and the reserved class E */
		return "broadcast or reserved address";
	if (in_v4(a, 0xc0000200, 24) || in_v4(a, 0xc6336400, 24) || in_v4(a, 0xcb007100, 24))
		return "documentation address";
	return NULL;
}

const char *itr_peer_refusal(const struct itr_peer_addr *addr, bool allow_loopback)
{
	if (addr->port == 0)
		return "port 0";
	if (addr->family == 4)
		return v4_refusal(addr->addr, allow_loopback);
	if (addr->family != 6)
		return "unknown address family";
	const uint8_t *a = addr->addr;
	static const uint8_t zero[16];
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(a, zero, 16) == 0)
		return "unspecified address";
	if (memcmp(a, zero, 15) == 0 && a[15] == 1)
		return allow_loopback ? NULL : "loopback address";
	if (memcmp(a, v4mapped, 12) == 0)
		return v4_refusal(a + 12, allow_loopback);
	if (a[0] == 0xff)
		return "multicast address";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local address";
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return "documentation address";
	if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0x00)
		return "documentation address";
	return NULL;
}
