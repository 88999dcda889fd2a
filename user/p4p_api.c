/* p4p_api.c - GET /v1/netinfo and POST /v1/rank: the P4P iTracker
 * interfaces (network position of an address; a candidate list ranked for a
 * client) as JSON over the shared HTTP listener.
 *
 * GET /v1/netinfo[?ip=ADDR]: ADDR defaults to the caller's address
 * (IPv4-mapped IPv6 callers are shown as IPv4). Answer:
 *   {"ip":"10.10.1.5","pid":"a-metro1","asid":64500,"loc":1,"vtag":"..."}
 * An address no PID covers (and no default PID) gets "pid":null,
 * "asid":null,"loc":null; a PID without a LOC gets "loc":null. So a client
 * always learns the map's vtag and can tell "not in this network" apart
 * from an error.
 *
 * POST /v1/rank {"client":ADDR,"peers":[...],"numwant":N}: answer
 *   {"client":{netinfo},"vtag":"...","peers":[{"ip","port","pid","cost"}]}
 * in rank order (see rank.c). "port" is 0 for a candidate given without one.
 *
 * Errors are 400 (503 with no map published) with
 * {"error":{"code","field","reason"}}; codes are ALTO's (RFC 7285), so one
 * client library reads both APIs' errors.
 */
#include "p4p_api.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "netmap.h"

static const char JSON_TYPE[] = "application/json";

void itr_p4p_api_config_default(struct itr_p4p_api_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	itr_rank_policy_default(&cfg->policy);
	cfg->max_numwant = 200;
	cfg->default_numwant = 50;
	cfg->max_peers = 10000;
}

/* ---- errors ------------------------------------------------------------- */

static void set_error(struct itr_p4p_error *err, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_error(struct itr_p4p_error *err, const char *code, const char *field,
                      const char *fmt, ...)
{
	va_list ap;
	memset(err, 0, sizeof(*err));
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
}

char *itr_p4p_error_json(const struct itr_p4p_error *err, size_t *len)
{
	/* The reason may quote the request's bytes (jansson's parse errors
	 * do): itr_json_text keeps the reply encodable whatever they are. */
	json_t *inner = json_pack("{s:s, s:o, s:o}", "code", err->code, "field",
	                          itr_json_text(err->field), "reason", itr_json_text(err->reason));
	if (!inner)
		return NULL;
	if (err->line > 0) {
		json_object_set_new(inner, "line", json_integer(err->line));
		json_object_set_new(inner, "column", json_integer(err->column));
	}
	json_t *root = json_pack("{s:o}", "error", inner);
	if (!root)
		return NULL;
	char *s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s && len)
		*len = strlen(s);
	return s;
}

static void respond_error(struct itr_http_response *resp, int status,
                          const struct itr_p4p_error *err)
{
	size_t len = 0;
	char *body = itr_p4p_error_json(err, &len);
	itr_http_set_body(resp, body ? status : 500, JSON_TYPE, body, body ? len : 0);
}

/* ---- the /v1/rank request parser ----------------------------------------- */

static int parse_address(json_t *v, const char *field, struct itr_peer_addr *out,
                         struct itr_p4p_error *err)
{
	if (!json_is_string(v)) {
		set_error(err, "E_INVALID_FIELD_TYPE", field, "must be an address string");
		return -1;
	}
	if (itr_peer_addr_parse(json_string_value(v), out) < 0) {
		set_error(err, "E_INVALID_FIELD_VALUE", field,
		          "not an address (ADDR, ADDR:PORT or [V6]:PORT)");
		return -1;
	}
	return 0;
}

int itr_p4p_parse_rank_request_jansson(const char *body, size_t len,
                                       const struct itr_p4p_api_config *cfg,
                                       struct itr_p4p_rank_request *out, struct itr_p4p_error *err)
{
	json_error_t jerr;
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		set_error(err, "E_SYNTAX", "", "%s", jerr.text);
		err->line = jerr.line > 0 ? jerr.line : 1;
		err->column = jerr.column > 0 ? jerr.column : 1;
		return -1;
	}
	if (!json_is_object(root)) {
		set_error(err, "E_INVALID_FIELD_TYPE", "", "the request must be a JSON object");
		goto fail;
	}

	json_t *client = json_object_get(root, "client");
	if (!client) {
		set_error(err, "E_MISSING_FIELD", "client", "the client's address is required");
		goto fail;
	}
	if (parse_address(client, "client", &out->client, err) < 0)
		goto fail;

	json_t *peers = json_object_get(root, "peers");
	if (!peers) {
		set_error(err, "E_MISSING_FIELD", "peers", "the candidate list is required");
		goto fail;
	}
	if (!json_is_array(peers)) {
		set_error(err, "E_INVALID_FIELD_TYPE", "peers", "must be an array of addresses");
		goto fail;
	}
	size_t n = json_array_size(peers);
	if (n > cfg->max_peers) {
		set_error(err, "E_INVALID_FIELD_VALUE", "peers", "%zu candidates, at most %zu", n,
		          cfg->max_peers);
		goto fail;
	}

	out->numwant = cfg->default_numwant;
	json_t *numwant = json_object_get(root, "numwant");
	if (numwant) {
		if (!json_is_integer(numwant)) {
			set_error(err, "E_INVALID_FIELD_TYPE", "numwant", "must be an integer");
			goto fail;
		}
		json_int_t w = json_integer_value(numwant);
		if (w < 0 || w > (json_int_t)cfg->max_numwant) {
			set_error(err, "E_INVALID_FIELD_VALUE", "numwant", "must be 0..%u",
			          cfg->max_numwant);
			goto fail;
		}
		out->numwant = (unsigned)w;
	}

	out->peers = malloc((n ? n : 1) * sizeof(*out->peers));
	if (!out->peers) {
		set_error(err, "E_INVALID_FIELD_VALUE", "peers", "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		char field[32];
		snprintf(field, sizeof(field), "peers[%zu]", i);
		if (parse_address(json_array_get(peers, i), field, &out->peers[i], err) < 0)
			goto fail;
	}
	out->npeers = n;
	json_decref(root);
	return 0;
fail:
	itr_p4p_rank_request_free(out);
	json_decref(root);
	return -1;
}

/* ---- the fast path --------------------------------------------------------
 *
 * The profile of POST /v1/rank (50 candidates) under callgrind: about
 * 770,000 instructions a request, 98 % of them jansson building, dumping
 * and freeing trees, malloc and printf; ranking took 2 %. The fast path
 * reads the common request - one object of plain strings, integers and an
 * array of strings - straight into the request, and gives up on anything
 * else (escapes, non-ASCII, other value types, a duplicate member, any
 * error at all), which the jansson parser above then handles with its exact
 * errors. So it only ever accepts, and what it accepts jansson accepts the
 * same way (tests/fuzz/fuzz_rank_request.c checks both on every input). */

struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *sc)
{
	while (sc->p < sc->end &&
	       (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
		sc->p++;
}

/* A string of printable ASCII without escapes; out gets its bytes (not
 * NUL-terminated: *len). */
static bool scan_plain_string(struct scan *sc, const char **out, size_t *len)
{
	if (sc->p >= sc->end || *sc->p != '"')
		return false;
	const char *start = ++sc->p;
	while (sc->p < sc->end && *sc->p != '"') {
		unsigned char c = (unsigned char)*sc->p;
		if (c < 0x20 || c > 0x7e || c == '\\')
			return false;
		sc->p++;
	}
	if (sc->p >= sc->end)
		return false;
	*out = start;
	*len = (size_t)(sc->p - start);
	sc->p++;
	return true;
}

/* An integer as JSON spells it (no leading zeros, no fraction or exponent),
 * at most 18 digits so that it fits jansson's json_int_t as well. */
static bool scan_integer(struct scan *sc, long long *out)
{
	bool neg = false;
	if (sc->p < sc->end && *sc->p == '-') {
		neg = true;
		sc->p++;
	}
	const char *start = sc->p;
	long long v = 0;
	while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9') {
		if (sc->p - start == 18)
			return false; /* a 19th digit could overflow v: refuse before multiplying */
		v = v * 10 + (*sc->p - '0');
		sc->p++;
	}
	size_t digits = (size_t)(sc->p - start);
	if (digits == 0 || (digits > 1 && *start == '0'))
		return false;
	if (sc->p < sc->end && (*sc->p == '.' || *sc->p == 'e' || *sc->p == 'E'))
		return false;
	*out = neg ? -v : v;
	return true;
}

/* "a.b.c.d" or "a.b.c.d:port" in the strict form (no leading zeros, port
 * 1..65535 without them): what inet_pton and itr_peer_addr_parse accept,
 * without their cost; anything else goes to itr_peer_addr_parse. */
static bool parse_v4_strict(const char *text, size_t len, struct itr_peer_addr *out)
{
	const char *p = text, *end = text + len;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 4; i++) {
		if (i && (p >= end || *p++ != '.'))
			return false;
		const char *start = p;
		unsigned v = 0;
		while (p < end && *p >= '0' && *p <= '9' && p - start < 3)
			v = v * 10 + (unsigned)(*p++ - '0');
		if (p == start || v > 255 || (p - start > 1 && *start == '0'))
			return false;
		out->addr[i] = (uint8_t)v;
	}
	if (p < end) {
		if (*p++ != ':' || p >= end || *p == '0' || end - p > 5)
			return false;
		unsigned v = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return false;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > 65535)
			return false;
		out->port = (uint16_t)v;
	}
	out->family = 4;
	return true;
}

static bool parse_plain_address(const char *text, size_t len, struct itr_peer_addr *out)
{
	if (parse_v4_strict(text, len, out))
		return true;
	char buf[INET6_ADDRSTRLEN + 8];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	return itr_peer_addr_parse(buf, out) == 0;
}

/* 1: parsed into out; 0: not the common form or not valid, ask jansson. */
static int parse_rank_request_fast(const char *body, size_t len,
                                   const struct itr_p4p_api_config *cfg,
                                   struct itr_p4p_rank_request *out)
{
	struct scan sc = {body, body + len};
	bool have_client = false, have_peers = false, have_numwant = false;
	long long numwant = 0;
	size_t cap = 0;
	const char *key;
	size_t klen;

	memset(out, 0, sizeof(*out));
	if (!body)
		return 0;
	skip_ws(&sc);
	if (sc.p >= sc.end || *sc.p++ != '{')
		return 0;
	skip_ws(&sc);
	if (sc.p < sc.end && *sc.p == '}')
		goto fallback; /* no members: jansson says which is missing */
	for (;;) {
		skip_ws(&sc);
		if (!scan_plain_string(&sc, &key, &klen))
			goto fallback;
		skip_ws(&sc);
		if (sc.p >= sc.end || *sc.p++ != ':')
			goto fallback;
		skip_ws(&sc);
		if (klen == 6 && memcmp(key, "client", 6) == 0) {
			const char *v;
			size_t vlen;
			if (have_client || !scan_plain_string(&sc, &v, &vlen) ||
			    !parse_plain_address(v, vlen, &out->client))
				goto fallback;
			have_client = true;
		} else if (klen == 7 && memcmp(key, "numwant", 7) == 0) {
			if (have_numwant || !scan_integer(&sc, &numwant))
				goto fallback;
			have_numwant = true;
		} else if (klen == 5 && memcmp(key, "peers", 5) == 0) {
			if (have_peers || sc.p >= sc.end || *sc.p++ != '[')
				goto fallback;
			have_peers = true;
			skip_ws(&sc);
			if (sc.p < sc.end && *sc.p == ']') {
				sc.p++;
			} else {
				for (;;) {
					const char *v;
					size_t vlen;
					skip_ws(&sc);
					if (!scan_plain_string(&sc, &v, &vlen))
						goto fallback;
					if (out->npeers == cfg->max_peers)
						goto fallback; /* too many: jansson's error */
					if (out->npeers == cap) {
						size_t bigger = cap ? cap * 2 : 64;
						struct itr_peer_addr *grown =
						    realloc(out->peers, bigger * sizeof(*grown));
						if (!grown)
							goto fallback;
						out->peers = grown;
						cap = bigger;
					}
					if (!parse_plain_address(v, vlen, &out->peers[out->npeers]))
						goto fallback;
					out->npeers++;
					skip_ws(&sc);
					if (sc.p < sc.end && *sc.p == ',') {
						sc.p++;
						continue;
					}
					if (sc.p < sc.end && *sc.p == ']') {
						sc.p++;
						break;
					}
					goto fallback;
				}
			}
		} else {
			goto fallback; /* other members: rare, jansson skips them */
		}
		skip_ws(&sc);
		if (sc.p < sc.end && *sc.p == ',') {
			sc.p++;
			continue;
		}
		if (sc.p < sc.end && *sc.p == '}') {
			sc.p++;
			break;
		}
		goto fallback;
	}
	skip_ws(&sc);
	if (sc.p != sc.end || !have_client || !have_peers)
		goto fallback;
	if (have_numwant && (numwant < 0 || numwant > (long long)cfg->max_numwant))
		goto fallback;
	out->numwant = have_numwant ? (unsigned)numwant : cfg->default_numwant;
	if (!out->peers && !(out->peers = malloc(sizeof(*out->peers))))
		goto fallback;
	return 1;
fallback:
	itr_p4p_rank_request_free(out);
	memset(out, 0, sizeof(*out));
	return 0;
}

int itr_p4p_parse_rank_request(const char *body, size_t len, const struct itr_p4p_api_config *cfg,
                               struct itr_p4p_rank_request *out, struct itr_p4p_error *err)
{
	if (parse_rank_request_fast(body, len, cfg, out))
		return 0;
	return itr_p4p_parse_rank_request_jansson(body, len, cfg, out, err);
}

void itr_p4p_rank_request_free(struct itr_p4p_rank_request *req)
{
	free(req->peers);
	req->peers = NULL;
	req->npeers = 0;
}

/* ---- handlers ------------------------------------------------------------
 *
 * Answers are written straight into one buffer (no jansson tree): the
 * members and their order are exactly what the comment at the top shows. */

struct jbuf {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory: the answer is a 500 */
};

static bool jb_reserve(struct jbuf *b, size_t more)
{
	if (b->failed)
		return false;
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	char *grown = realloc(b->p, cap);
	if (!grown) {
		b->failed = true;
		return false;
	}
	b->p = grown;
	b->cap = cap;
	return true;
}

static void jb_raw(struct jbuf *b, const char *text, size_t n)
{
	if (!jb_reserve(b, n))
		return;
	memcpy(b->p + b->len, text, n);
	b->len += n;
}

#define JB_LIT(b, lit) jb_raw((b), (lit), sizeof(lit) - 1)

/* A JSON string: quotes, backslash and control characters escaped. */
static void jb_string(struct jbuf *b, const char *text)
{
	size_t n = strlen(text);
	if (!jb_reserve(b, 6 * n + 2))
		return;
	char *o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20) {
			static const char hex[] = "0123456789abcdef";
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
}

static void jb_uint(struct jbuf *b, unsigned long long v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jb_raw(b, tmp + sizeof(tmp) - n, n);
}

/* An address as a JSON string; IPv4 without inet_ntop's printf. */
static void jb_address(struct jbuf *b, const struct itr_peer_addr *addr)
{
	if (addr->family != 4) {
		char ip[INET6_ADDRSTRLEN];
		itr_peer_addr_ntop(addr, ip, sizeof(ip));
		jb_string(b, ip);
		return;
	}
	JB_LIT(b, "\"");
	for (int i = 0; i < 4; i++) {
		if (i)
			JB_LIT(b, ".");
		jb_uint(b, addr->addr[i]);
	}
	JB_LIT(b, "\"");
}

static void jb_pid_name(struct jbuf *b, const struct itr_pid *pid)
{
	if (pid)
		jb_string(b, pid->name);
	else
		JB_LIT(b, "null");
}

/* {"ip":...,"pid":...,"asid":...,"loc":...,"vtag":...} */
static void jb_netinfo(struct jbuf *b, const struct itr_netmap *map,
                       const struct itr_peer_addr *addr)
{
	const struct itr_pid *pid = itr_netmap_lookup(map, addr->family, addr->addr);
	JB_LIT(b, "{\"ip\":");
	jb_address(b, addr);
	JB_LIT(b, ",\"pid\":");
	jb_pid_name(b, pid);
	JB_LIT(b, ",\"asid\":");
	if (pid)
		jb_uint(b, pid->asn);
	else
		JB_LIT(b, "null");
	JB_LIT(b, ",\"loc\":");
	if (pid && pid->loc != ITR_LOC_NONE)
		jb_uint(b, pid->loc);
	else
		JB_LIT(b, "null");
	JB_LIT(b, ",\"vtag\":");
	jb_string(b, itr_netmap_vtag(map));
	JB_LIT(b, "}");
}

static void respond_jbuf(struct itr_http_response *resp, struct jbuf *b)
{
	if (b->failed) {
		free(b->p);
		itr_http_set_body(resp, 500, JSON_TYPE, NULL, 0);
		return;
	}
	itr_http_set_body(resp, 200, JSON_TYPE, b->p, b->len);
}

static int sockaddr_to_peer(const struct sockaddr_storage *ss, socklen_t len,
                            struct itr_peer_addr *out)
{
	char text[INET6_ADDRSTRLEN];
	memset(out, 0, sizeof(*out));
	if (len >= sizeof(struct sockaddr_in) && ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	} else if (len >= sizeof(struct sockaddr_in6) && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	} else {
		return -1;
	}
	/* Through the parser, which folds IPv4-mapped addresses to IPv4. */
	return itr_peer_addr_parse(text, out);
}

static struct itr_netmap *current_map_or_503(struct itr_http_response *resp)
{
	struct itr_netmap *map = itr_netmap_current();
	if (!map) {
		struct itr_p4p_error err;
		set_error(&err, "E_UNAVAILABLE", "", "no network map is loaded");
		respond_error(resp, 503, &err);
	}
	return map;
}

static void handle_netinfo(const struct itr_http_request *req, struct itr_http_response *resp,
                           void *arg)
{
	(void)arg;
	struct itr_p4p_error err;
	struct itr_peer_addr addr;
	char ip[INET6_ADDRSTRLEN + 1];

	long n = itr_http_query_get(req->query, "ip", (uint8_t *)ip, sizeof(ip));
	if (n == -1) {
		if (sockaddr_to_peer(&req->peer, req->peer_len, &addr) < 0) {
			set_error(&err, "E_MISSING_FIELD", "ip",
			          "the caller's address is unknown; give ?ip=");
			respond_error(resp, 400, &err);
			return;
		}
	} else if (n < 0 || (size_t)n >= sizeof(ip) || strlen(ip) != (size_t)n ||
	           itr_peer_addr_parse(ip, &addr) < 0 || addr.port != 0) {
		set_error(&err, "E_INVALID_FIELD_VALUE", "ip", "not an IPv4 or IPv6 address");
		respond_error(resp, 400, &err);
		return;
	}

	struct itr_netmap *map = current_map_or_503(resp);
	if (!map)
		return;
	struct jbuf b = {0};
	jb_netinfo(&b, map, &addr);
	respond_jbuf(resp, &b);
	itr_netmap_unref(map);
}

static void handle_rank(const struct itr_http_request *req, struct itr_http_response *resp,
                        void *arg)
{
	const struct itr_p4p_api_config *cfg = arg;
	struct itr_p4p_error err;
	struct itr_p4p_rank_request rr;

	if (itr_p4p_parse_rank_request(req->body, req->body_len, cfg, &rr, &err) < 0) {
		respond_error(resp, 400, &err);
		return;
	}
	struct itr_netmap *map = current_map_or_503(resp);
	if (!map) {
		itr_p4p_rank_request_free(&rr);
		return;
	}

	size_t want = rr.numwant;
	struct itr_ranked_peer stack_ranked[64];
	struct itr_ranked_peer *ranked =
	    want <= 64 ? stack_ranked : malloc((want ? want : 1) * sizeof(*ranked));
	struct jbuf b = {0};
	if (!ranked) {
		b.failed = true;
	} else {
		size_t k =
		    itr_rank(map, &cfg->policy, &rr.client, rr.peers, rr.npeers, want, ranked);
		/* about 70 bytes a peer: one allocation for the whole answer */
		jb_reserve(&b, 256 + k * 80);
		JB_LIT(&b, "{\"client\":");
		jb_netinfo(&b, map, &rr.client);
		JB_LIT(&b, ",\"vtag\":");
		jb_string(&b, itr_netmap_vtag(map));
		JB_LIT(&b, ",\"peers\":[");
		for (size_t i = 0; i < k; i++) {
			if (i)
				JB_LIT(&b, ",");
			JB_LIT(&b, "{\"ip\":");
			jb_address(&b, &ranked[i].peer);
			JB_LIT(&b, ",\"port\":");
			jb_uint(&b, ranked[i].peer.port);
			JB_LIT(&b, ",\"pid\":");
			jb_pid_name(&b, ranked[i].pid);
			JB_LIT(&b, ",\"cost\":");
			jb_uint(&b, ranked[i].cost);
			JB_LIT(&b, "}");
		}
		JB_LIT(&b, "]}");
	}
	respond_jbuf(resp, &b);
	if (ranked != stack_ranked)
		free(ranked);
	itr_netmap_unref(map);
	itr_p4p_rank_request_free(&rr);
}

int itr_p4p_api_register(struct itr_http_server *srv, const struct itr_p4p_api_config *cfg)
{
	struct itr_p4p_api_config *copy = malloc(sizeof(*copy));
	if (!copy)
		return -1;
	*copy = *cfg;
	if (itr_http_attach(srv, copy, free) < 0) {
		free(copy);
		return -1;
	}
	if (itr_http_route(srv, "GET", "/v1/netinfo", handle_netinfo, copy) < 0 ||
	    itr_http_route(srv, "POST", "/v1/rank", handle_rank, copy) < 0 ||
	    itr_http_offload(srv, "/v1/rank") < 0) /* grows with the request: worker pool */
		return -1;
	return 0;
}
