/* tracker_peers.h - where the peers sit in a tracker's announce answer.
 *
 * A gateway sees its clients talk to their trackers; the answers list the
 * peers (address and listen port) the clients are about to dial, with
 * whatever obfuscation they use (MSE has no plaintext marker). These
 * helpers find the compact peer lists in one payload packet held in the
 * scratch buffer; locality.bpf.c writes the peers into the endpoint cache.
 * Every read is bounded by the bytes held (len) and the buffer's capacity
 * (ITR_TRACKER_SCAN_BYTES); a list cut off by the end of the packet yields
 * its whole entries inside the packet, nothing beyond.
 *
 * Wire facts: BEP 3 and BEP 23 (HTTP answer: bencoded dictionary, "peers"
 * a string of 6-byte IPv4 address + port entries), BEP 7 ("peers6",
 * 18-byte entries), BEP 15 (UDP announce answer: action 1, transaction id,
 * interval, leechers, seeders, then 6-byte entries over IPv4 and 18-byte
 * ones over IPv6).
 */
#ifndef ITR_TRACKER_PEERS_H
#define ITR_TRACKER_PEERS_H

#include "bt_signatures.h"

#define ITR_PEER4_BYTES 6
#define ITR_PEER6_BYTES 18
/* Peers taken from one list of one packet: bounds the endpoint-cache
 * writes a single packet can cause. */
#define ITR_PEERS_PER_LIST 64

/* A run of compact peer entries inside the scratch buffer. */
struct itr_peer_list {
	__u32 off;   /* first entry */
	__u32 count; /* whole entries inside the packet, at most ITR_PEERS_PER_LIST */
};

/* State of the bencode key scan, one bpf_loop step per byte. */
struct itr_peers_scan {
	const __u8 *buf;
	__u32 len;
	struct itr_peer_list v4;
	struct itr_peer_list v6;
	__u8 v4_seen; /* a well-formed "peers" string was found (maybe empty) */
	__u8 v6_seen;
};

/* The bencoded string "<n>:" + n bytes at buf[off..]: fills *list with its
 * whole entry_bytes-sized entries that lie inside len. Returns 0 if it is
 * not a well-formed compact list (no length, no colon, a length that is not
 * a multiple of entry_bytes). */
static __always_inline int itr_peer_string_at(const __u8 *buf, __u32 len, __u32 off,
                                              __u32 entry_bytes, struct itr_peer_list *list)
{
	__u32 end = 0;
	long n = itr_decimal_at(buf, len, ITR_TRACKER_SCAN_BYTES, off, &end);

	if (n < 0 || n % entry_bytes)
		return 0;
	__u64 colon = end;
	asm volatile("" : "+r"(colon)); /* test and index one register */
	if (colon >= len || colon >= ITR_TRACKER_SCAN_BYTES || buf[colon] != ':')
		return 0;
	__u32 start = (__u32)colon + 1;
	__u32 held = (len - start) / entry_bytes; /* start <= len: colon < len */
	__u32 count = (__u32)n / entry_bytes;
	if (count > held)
		count = held;
	if (count > ITR_PEERS_PER_LIST)
		count = ITR_PEERS_PER_LIST;
	list->off = start;
	list->count = count;
	return 1;
}

static long itr_peers_scan_step(__u64 index, void *ctx)
{
	struct itr_peers_scan *st = ctx;
	const __u8 *buf = st->buf;
	__u64 i = index;

	asm volatile("" : "+r"(i));
	if (i >= st->len || i >= ITR_TRACKER_SCAN_BYTES)
		return 1;
	__u8 c = buf[i];
	if (c == '5' && !st->v4_seen &&
	    itr_bytes_within(buf, st->len, ITR_TRACKER_SCAN_BYTES, i, "5:peers", 7))
		st->v4_seen = itr_peer_string_at(buf, st->len, i + 7, ITR_PEER4_BYTES, &st->v4);
	else if (c == '6' && !st->v6_seen &&
	         itr_bytes_within(buf, st->len, ITR_TRACKER_SCAN_BYTES, i, "6:peers6", 8))
		st->v6_seen = itr_peer_string_at(buf, st->len, i + 8, ITR_PEER6_BYTES, &st->v6);
	return st->v4_seen && st->v6_seen;
}

/* Finds the "peers" and "peers6" compact lists of an HTTP announce answer
 * (or the part of it one packet holds). Keys are matched as bencoded
 * strings ("5:peers", "6:peers6") followed by a well-formed string of whole
 * entries; the non-compact form (a list of dictionaries) is not read. */
static __always_inline void itr_http_peer_lists(const __u8 *buf, __u32 len,
                                                struct itr_peers_scan *st)
{
	st->buf = buf;
	st->len = len;
	st->v4.count = st->v6.count = 0;
	st->v4.off = st->v6.off = 0;
	st->v4_seen = st->v6_seen = 0;
	bpf_loop(ITR_TRACKER_SCAN_BYTES, itr_peers_scan_step, st, 0);
}

/* The first packet of an HTTP tracker's answer: a status line with code
 * 200 ("HTTP/1.0 200" or "HTTP/1.1 200"). A page or an error the tracker
 * sends is not a peer list. */
static __always_inline int itr_http_answer_ok(const __u8 *buf, __u32 len)
{
	return itr_bytes_within(buf, len, ITR_TRACKER_SCAN_BYTES, 0, "HTTP/1.", 7) &&
	       (itr_bytes_within(buf, len, ITR_TRACKER_SCAN_BYTES, 7, "0 200", 5) ||
	        itr_bytes_within(buf, len, ITR_TRACKER_SCAN_BYTES, 7, "1 200", 5));
}

/* BEP 15 announce answer: action 1 and a 20-byte header, then whole
 * entries of entry_bytes (by the flow's address family). payload_len is
 * the whole UDP payload, len what the buffer holds of it. Returns 0 for
 * anything else (connect answer, error, scrape, a torn answer). */
static __always_inline int itr_udp_peer_list(const __u8 *buf, __u32 len, __u32 payload_len,
                                             __u32 entry_bytes, struct itr_peer_list *list)
{
	if (payload_len < 20 || len < 20 || (payload_len - 20) % entry_bytes)
		return 0;
	if (!itr_bytes_within(buf, len, ITR_TRACKER_SCAN_BYTES, 0, "\0\0\0\x01", 4))
		return 0;
	__u32 count = (len - 20) / entry_bytes;
	list->off = 20;
	list->count = count < ITR_PEERS_PER_LIST ? count : ITR_PEERS_PER_LIST;
	return 1;
}

/* BEP 15 announce request (from the client): its port field, network byte
 * order, or 0. */
static __always_inline __u16 itr_udp_announce_port(const __u8 *buf, __u32 len)
{
	if (len < 98 || len > ITR_TRACKER_SCAN_BYTES || !itr_sig_udp_announce(buf, len))
		return 0;
	__u16 port; /* zero in either byte order */
	__builtin_memcpy(&port, buf + 96, 2);
	return port;
}

#endif /* ITR_TRACKER_PEERS_H */
