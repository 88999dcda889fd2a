/* bt_signatures.h - BitTorrent payload signatures for the kernel programs.
 *
 * Each check looks at the first bytes of one L4 payload, copied into a
 * fixed-size scratch buffer (ITR_SCRATCH_BYTES), and never reads past
 * `len`. itr_scan_signatures() runs the checks that apply to the transport
 * and returns a bit set of ITR_SIG_*; deciding what a flow is (which may
 * also need the endpoint cache and earlier packets) is the caller's job.
 *
 * Wire facts: BEP 3 (peer wire, HTTP tracker), BEP 5 (DHT KRPC), BEP 15
 * (UDP tracker), BEP 29 (uTP), BEP 42 (ip key in DHT responses).
 */
#ifndef ITR_BT_SIGNATURES_H
#define ITR_BT_SIGNATURES_H

#define ITR_SCRATCH_BYTES 512

#define ITR_SIG_PEER_WIRE    (1u << 0) /* 0x13 "BitTorrent protocol" */
#define ITR_SIG_HTTP_TRACKER (1u << 1) /* GET .../announce?...info_hash= */
#define ITR_SIG_DHT          (1u << 2) /* KRPC query, response or error */
#define ITR_SIG_UDP_CONNECT  (1u << 3) /* BEP 15 connect request */
#define ITR_SIG_UDP_ANNOUNCE (1u << 4) /* BEP 15 announce shape (needs a known tracker) */
#define ITR_SIG_UTP          (1u << 5) /* one packet passed the uTP header check */
#define ITR_SIG_UTP_SYN      (1u << 6) /* ... and it was a SYN */

/* Tracker answers are read further than signatures: a compact peer list of
 * a few dozen peers follows the HTTP headers (bpf/tracker_peers.h). */
#define ITR_TRACKER_SCAN_BYTES 2048

/* Signature checks use the first ITR_SCRATCH_BYTES; tracker answers the
 * whole buffer. */
struct itr_scratch {
	__u8 buf[ITR_TRACKER_SCAN_BYTES];
};

/* True if lit[0..n) sits at buf[off..off+n) and lies within len; size is
 * the buffer's capacity (a constant). */
static __always_inline int itr_bytes_within(const __u8 *buf, __u32 len, __u32 size, __u32 off,
                                            const char *lit, __u32 n)
{
	/* The barrier hides off's origin from clang, so the register tested
	 * against the buffer size is the one that indexes, as the verifier
	 * needs. */
	__u64 at = off;
	asm volatile("" : "+r"(at));
	if (at > size - n || at + n > len)
		return 0;
	const __u8 *p = buf + at;
	/* Constant n: clang unrolls this where it can; a bounded loop is fine
	 * for the verifier where it cannot. */
	for (__u32 k = 0; k < n; k++)
		if (p[k] != (__u8)lit[k])
			return 0;
	return 1;
}

static __always_inline int itr_bytes_at(const __u8 *buf, __u32 len, __u32 off, const char *lit,
                                        __u32 n)
{
	return itr_bytes_within(buf, len, ITR_SCRATCH_BYTES, off, lit, n);
}

/* Longest decimal number itr_decimal_at() reads: ports and the lengths of
 * peer lists that fit a packet need no more. */
#define ITR_DECIMAL_MAX_DIGITS 5

/* Reads the decimal digits at buf[off..] (size: the buffer's capacity, a
 * constant) and stores the offset of the first byte after them in *end.
 * Returns the number, or -1 if there is no digit, more than
 * ITR_DECIMAL_MAX_DIGITS, or the digits run up to len (the number might go
 * on past what we hold). */
static __always_inline long itr_decimal_at(const __u8 *buf, __u32 len, __u32 size, __u32 off,
                                           __u32 *end)
{
	long value = 0;

	for (__u32 k = 0; k <= ITR_DECIMAL_MAX_DIGITS; k++) {
		__u64 at = (__u64)off + k;
		asm volatile("" : "+r"(at)); /* test and index one register */
		if (at >= len || at >= size)
			return -1;
		__u8 c = buf[at];
		if (c < '0' || c > '9') {
			*end = (__u32)at;
			return k ? value : -1;
		}
		value = value * 10 + (c - '0');
	}
	return -1;
}

static __always_inline int itr_sig_peer_wire(const __u8 *buf, __u32 len)
{
	return itr_bytes_at(buf, len, 0,
	                    "\x13"
	                    "BitTorrent protocol",
	                    20);
}

/* State of the HTTP request-target scan, one bpf_loop step per byte. */
struct itr_http_scan {
	const __u8 *buf;
	__u32 len;
	__u8 path_ok;
	__u8 hash_ok;
	__u16 port; /* the port= parameter, host byte order; 0 if none */
};

static long itr_http_scan_step(__u64 index, void *ctx)
{
	struct itr_http_scan *st = ctx;
	const __u8 *buf = st->buf;
	/* 64-bit, so the bounds-checked register is the one that indexes. */
	__u64 i = index + 4; /* after "GET " */

	asm volatile("" : "+r"(i));
	if (i < 4 || i >= st->len)
		return 1;
	if (i >= ITR_SCRATCH_BYTES)
		return 1;
	__u8 c = buf[i];
	if (c == ' ' || c == '\r' || c == '\n')
		return 1; /* end of the request target */
	if (c == '/') {
		if (itr_bytes_at(buf, st->len, i, "/announce?", 10) ||
		    itr_bytes_at(buf, st->len, i, "/scrape?", 8))
			st->path_ok = 1;
	} else if (c == 'i') {
		__u8 before = buf[i - 1];
		if ((before == '?' || before == '&') &&
		    itr_bytes_at(buf, st->len, i, "info_hash=", 10))
			st->hash_ok = 1;
	} else if (c == 'p') {
		__u8 before = buf[i - 1];
		__u32 end;
		if ((before == '?' || before == '&') && itr_bytes_at(buf, st->len, i, "port=", 5)) {
			long port = itr_decimal_at(buf, st->len, ITR_SCRATCH_BYTES, i + 5, &end);
			st->port = port > 0 && port <= 0xffff ? (__u16)port : 0;
		}
	}
	return 0;
}

/* Scans the request target of an HTTP request held in buf (the scratch
 * buffer) and fills *st. bpf_loop keeps the verifier from walking all 508
 * positions. Returns 0 if buf does not start "GET ". */
static __always_inline int itr_http_scan_request(const __u8 *buf, __u32 len,
                                                 struct itr_http_scan *st)
{
	st->buf = buf;
	st->len = len;
	st->path_ok = st->hash_ok = 0;
	st->port = 0;
	if (!itr_bytes_at(buf, len, 0, "GET ", 4))
		return 0;
	bpf_loop(ITR_SCRATCH_BYTES - 4, itr_http_scan_step, st, 0);
	return 1;
}

/* "GET <path> HTTP/1.x": the request target must contain "/announce?" or
 * "/scrape?" and an "info_hash=" parameter, all within the scratch buffer. */
static __always_inline int itr_sig_http_tracker(const __u8 *buf, __u32 len)
{
	struct itr_http_scan st;

	return itr_http_scan_request(buf, len, &st) && st.path_ok && st.hash_ok;
}

/* KRPC messages are bencoded dictionaries with sorted keys: a query starts
 * with its "a" dict, a response with "r" (after "ip" in BEP 42 responses),
 * an error with its "e" list of code and message. */
static __always_inline int itr_sig_dht(const __u8 *buf, __u32 len)
{
	if (len < 2 || buf[0] != 'd')
		return 0;
	if (itr_bytes_at(buf, len, 0, "d1:ad2:id20:", 12) ||
	    itr_bytes_at(buf, len, 0, "d1:rd2:id20:", 12))
		return len >= 12 + 20;
	if (itr_bytes_at(buf, len, 0, "d2:ip6:", 7))
		return itr_bytes_at(buf, len, 7 + 6, "1:rd2:id20:", 11);
	if (itr_bytes_at(buf, len, 0, "d2:ip18:", 8))
		return itr_bytes_at(buf, len, 8 + 18, "1:rd2:id20:", 11);
	if (itr_bytes_at(buf, len, 0, "d1:eli", 6) && len > 7)
		return buf[6] >= '0' && buf[6] <= '9';
	return 0;
}

/* BEP 15 connect request: exactly 16 bytes, protocol magic, action 0. */
static __always_inline int itr_sig_udp_connect(const __u8 *buf, __u32 len)
{
	return len == 16 && itr_bytes_at(buf, len, 0, "\0\0\x04\x17\x27\x10\x19\x80\0\0\0\0", 12);
}

/* BEP 15 announce request: 98 bytes or more (BEP 41 options), action 1.
 * Its connection id is random, so this alone proves nothing. */
static __always_inline int itr_sig_udp_announce(const __u8 *buf, __u32 len)
{
	return len >= 98 && itr_bytes_at(buf, len, 8, "\0\0\0\x01", 4);
}

#define ITR_UTP_DATA    0
#define ITR_UTP_STATE   2
#define ITR_UTP_SYN     4
#define ITR_UTP_MAX_EXT 8

/* BEP 29 header: type << 4 | version 1, type 0..4, a walkable extension
 * chain inside the packet; SYN and STATE carry no payload, DATA does, and a
 * SYN's timestamp difference is 0. Returns ITR_SIG_UTP (| ITR_SIG_UTP_SYN). */
static __always_inline __u32 itr_sig_utp(const __u8 *buf, __u32 len)
{
	if (len < 20 || len > ITR_SCRATCH_BYTES)
		return 0;
	__u8 type = buf[0] >> 4;
	if ((buf[0] & 0x0f) != 1 || type > ITR_UTP_SYN)
		return 0;
	__u8 ext = buf[1];
	__u32 off = 20;
	for (int i = 0; i < ITR_UTP_MAX_EXT; i++) {
		if (ext == 0)
			break;
		__u64 pos = off;
		asm volatile("" : "+r"(pos)); /* test and index one register */
		if (pos > ITR_SCRATCH_BYTES - 2 || pos + 2 > len)
			return 0;
		const __u8 *hdr = buf + pos;
		__u8 ext_len = hdr[1];
		/* Selective ACK: a bitmask of at least 32 bits, whole bytes of 4. */
		if (ext == 1 && (ext_len < 4 || (ext_len & 3)))
			return 0;
		ext = hdr[0];
		off = pos + 2 + ext_len;
		if (off > len)
			return 0;
	}
	if (ext != 0)
		return 0;
	__u32 payload = len - off;
	if ((type == ITR_UTP_SYN || type == ITR_UTP_STATE) && payload)
		return 0;
	if (type == ITR_UTP_DATA && !payload)
		return 0;
	if (type == ITR_UTP_SYN) {
		if (buf[8] | buf[9] | buf[10] | buf[11])
			return 0;
		return ITR_SIG_UTP | ITR_SIG_UTP_SYN;
	}
	return ITR_SIG_UTP;
}

#endif /* ITR_BT_SIGNATURES_H */
