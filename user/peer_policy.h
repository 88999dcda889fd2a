/* peer_policy.h - which addresses may be stored as peers and handed out.
 *
 * A tracker that stores whatever address a request names becomes a
 * reflector: a forged ip=255.255.255.255, 224.0.0.1 or a victim's loopback
 * would be handed to every peer of the swarm. Addresses no BitTorrent peer
 * can have on the Internet are refused here, in one place, for every front
 * end (HTTP, UDP, proxy mode).
 */
#ifndef ITR_PEER_POLICY_H
#define ITR_PEER_POLICY_H

#include <stdbool.h>

#include "rank.h" /* struct itr_peer_addr */

/* NULL if addr may be a peer, else a short reason ("multicast address",
 * ...). Loopback (127.0.0.0/8, ::1) is allowed only when allow_loopback is
 * set: a tracker that listens on loopback only (tests, demos) has no other
 * peers. Refused: unspecified (0.0.0.0/8, ::), limited broadcast and the
 * reserved 240.0.0.0/4, multicast (224.0.0.0/4, ff00::/8), link-local
 * (169.254.0.0/16, fe80::/10), documentation (RFC 5737: 192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24; RFC 3849: 2001:db8::/32; RFC 9637:
 * 3fff::/20), IPv4-mapped IPv6 that maps to one of these, and port 0. */
const char *itr_peer_refusal(const struct itr_peer_addr *addr, bool allow_loopback);

#endif
