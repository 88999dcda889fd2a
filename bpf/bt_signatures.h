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
#define ITR_SIG_DHT          (1u << 2) /* a whole KRPC query, response or error */
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

/* ---- DHT: a whole KRPC message ------------------------------------- */

/* KRPC keys found at the top level of the dictionary (itr_krpc_walk.found). */
#define ITR_KRPC_T (1u << 0) /* "t": transaction id, a string */
#define ITR_KRPC_Y (1u << 1) /* "y": message type, a one-byte string */
#define ITR_KRPC_Q (1u << 2) /* "q": query name, a string */
#define ITR_KRPC_A (1u << 3) /* "a": query arguments, a dictionary */
#define ITR_KRPC_R (1u << 4) /* "r": response values, a dictionary */
#define ITR_KRPC_E (1u << 5) /* "e": error, a list */

/* Deepest nesting walked: KRPC values nest two or three levels. */
#define ITR_KRPC_MAX_DEPTH 8

/* State of the bencode walk, one bpf_loop step per token. */
struct itr_krpc_walk {
	const __u8 *buf;
	__u32 len;
	__u32 pos;
	__u8 depth;
	__u8 want_key; /* at depth 1: the next token is a key */
	__u8 key;      /* last top-level key if one byte long, else 0 */
	__u8 found;    /* ITR_KRPC_* */
	__u8 y;        /* the "y" value */
	__u8 done;     /* 1: the dictionary closed, 2: not bencode */
};

static long itr_krpc_step(__u64 index, void *ctx)
{
	struct itr_krpc_walk *w = ctx;
	const __u8 *buf = w->buf;
	__u64 pos = w->pos;
	(void)index;

	asm volatile("" : "+r"(pos)); /* test and index one register */
	if (pos >= w->len || pos >= ITR_TRACKER_SCAN_BYTES)
		goto bad;
	__u8 c = buf[pos];
	int top = w->depth == 1;
	if (w->depth == 0) {
		if (pos != 0 || c != 'd')
			goto bad;
		w->depth = 1;
		w->want_key = 1;
		w->pos = 1;
		return 0;
	}
	if (c == 'e') {
		if (top && !w->want_key)
			goto bad; /* a key without its value */
		w->depth--;
		w->pos = (__u32)pos + 1;
		if (w->depth == 0) {
			w->done = 1;
			return 1;
		}
		if (w->depth == 1)
			w->want_key = 1;
		return 0;
	}
	if (top && w->want_key && (c < '0' || c > '9'))
		goto bad; /* keys are strings */
	if (c == 'd' || c == 'l') {
		if (top) {
			if (c == 'd' && w->key == 'a')
				w->found |= ITR_KRPC_A;
			else if (c == 'd' && w->key == 'r')
				w->found |= ITR_KRPC_R;
			else if (c == 'l' && w->key == 'e')
				w->found |= ITR_KRPC_E;
		}
		if (w->depth >= ITR_KRPC_MAX_DEPTH)
			goto bad;
		w->depth++;
		w->pos = (__u32)pos + 1;
		return 0;
	}
	if (c == 'i') {
		/* i<digits>e: at most 20 digits and a sign. */
		for (__u32 k = 1; k <= 22; k++) {
			__u64 at = pos + k;
			asm volatile("" : "+r"(at));
			if (at >= w->len || at >= ITR_TRACKER_SCAN_BYTES)
				goto bad;
			__u8 d = buf[at];
			if (d == 'e' && k > 1) {
				w->pos = (__u32)at + 1;
				if (top)
					w->want_key = 1;
				return 0;
			}
			if ((d < '0' || d > '9') && !(d == '-' && k == 1))
				goto bad;
		}
		goto bad;
	}
	if (c >= '0' && c <= '9') {
		__u32 end = 0;
		long n = itr_decimal_at(buf, w->len, ITR_TRACKER_SCAN_BYTES, (__u32)pos, &end);
		__u64 colon = end;
		asm volatile("" : "+r"(colon));
		if (n < 0 || colon >= w->len || colon >= ITR_TRACKER_SCAN_BYTES ||
		    buf[colon] != ':')
			goto bad;
		__u64 start = colon + 1;
		if (start + n > w->len)
			goto bad;
		if (top) {
			__u8 first = 0;
			__u64 at = start;
			asm volatile("" : "+r"(at)); /* test and index one register */
			if (n >= 1 && at < ITR_TRACKER_SCAN_BYTES)
				first = buf[at];
			if (w->want_key) {
				w->key = n == 1 ? first : 0;
				w->want_key = 0;
			} else {
				if (w->key == 't' && n >= 1) {
					w->found |= ITR_KRPC_T;
				} else if (w->key == 'y' && n == 1) {
					w->found |= ITR_KRPC_Y;
					w->y = first;
				} else if (w->key == 'q' && n >= 1) {
					w->found |= ITR_KRPC_Q;
				}
				w->want_key = 1;
			}
		}
		w->pos = (__u32)(start + n);
		return 0;
	}
bad:
	w->done = 2;
	return 1;
}

/* A KRPC message (BEP 5): the UDP payload is exactly one bencoded
 * dictionary (payload_len bytes, all held in buf), walked token by token,
 * with a transaction id "t", a type "y" and what the type needs: "q" and
 * an "a" dictionary for a query, an "r" dictionary for a response, an "e"
 * list for an error. What each check rejects:
 * - one well-formed dictionary and nothing after it: text and binary
 *   payloads whose first byte happens to be 'd' (0x64) stop at the first
 *   byte that is no bencode token, or leave bytes after its end;
 * - the KRPC keys: other bencoded payloads (a tracker's answer, a
 *   BitTorrent extension message) are dictionaries too, without y and t;
 * - a payload longer than ITR_TRACKER_SCAN_BYTES is not walked: KRPC
 *   messages fit a 1500-byte packet. */
static __always_inline int itr_sig_dht(const __u8 *buf, __u32 len, __u32 payload_len)
{
	struct itr_krpc_walk w = {};

	if (len < 12 || len != payload_len || buf[0] != 'd')
		return 0;
	w.buf = buf;
	w.len = len;
	bpf_loop(ITR_TRACKER_SCAN_BYTES, itr_krpc_step, &w, 0);
	if (w.done != 1 || w.pos != len)
		return 0;
	if ((w.found & (ITR_KRPC_T | ITR_KRPC_Y)) != (ITR_KRPC_T | ITR_KRPC_Y))
		return 0;
	if (w.y == 'q')
		return (w.found & (ITR_KRPC_Q | ITR_KRPC_A)) == (ITR_KRPC_Q | ITR_KRPC_A);
	if (w.y == 'r')
		return (w.found & ITR_KRPC_R) != 0;
	if (w.y == 'e')
		return (w.found & ITR_KRPC_E) != 0;
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

/* The header fields that tie the two directions of a uTP connection
 * together (BEP 29), host byte order. */
struct itr_utp_hdr {
	__u8 type;
	__u16 conn_id;
	__u16 seq_nr;
	__u16 ack_nr;
};

/* BEP 29 header of one packet: type << 4 | version 1 with a type 0..4, an
 * extension chain of known extensions (1 selective ACK: whole 4-byte
 * groups, at least 4; 2 extension bits: 8 bytes; 3 close reason, which
 * libtorrent sends: 4 bytes) that ends inside the packet; SYN and STATE
 * carry no payload, DATA does; a SYN's timestamp difference is 0 (it has
 * heard nothing yet). Fills *h. Returns ITR_SIG_UTP (| ITR_SIG_UTP_SYN).
 * Rejected here: RTP/RTCP (version 2 in the top bits: type 8..11), DTLS
 * (content types 20-23: version 4..7), WireGuard responses and data
 * (first byte 2, 4: version 2, 4), anything whose chain names an unknown
 * extension or runs off the packet. One packet passing still proves
 * little (a DNS query, a STUN answer, a WireGuard initiation pass by
 * chance): the caller wants the two directions of one connection too
 * (itr_utp_pair in locality.bpf.c). */
static __always_inline __u32 itr_sig_utp(const __u8 *buf, __u32 len, struct itr_utp_hdr *h)
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
		if (ext > 3 || (ext == 1 && (ext_len < 4 || (ext_len & 3))) ||
		    (ext == 2 && ext_len != 8) || (ext == 3 && ext_len != 4))
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
	h->type = type;
	h->conn_id = (__u16)(buf[2] << 8 | buf[3]);
	h->seq_nr = (__u16)(buf[16] << 8 | buf[17]);
	h->ack_nr = (__u16)(buf[18] << 8 | buf[19]);
	if (type == ITR_UTP_SYN) {
		if (buf[8] | buf[9] | buf[10] | buf[11])
			return 0;
		return ITR_SIG_UTP | ITR_SIG_UTP_SYN;
	}
	return ITR_SIG_UTP;
}

#endif /* ITR_BT_SIGNATURES_H */
