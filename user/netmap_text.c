/* netmap_text.c - parser for the compact text network-map format (see the
 * header comment of maps/example.netmap for the grammar).
 *
 * One statement per line, tokens separated by blanks, '#' starts a comment
 * anywhere on a line. Statements may come in any order (a prefix may name a
 * PID declared further down): the builder resolves names once the whole file
 * is read. Every error carries the line and the column of the offending
 * token.
 */
#include <stdio.h>
#include <string.h>

#include "netmap_build.h"

struct tok {
	const char *s;
	size_t len;
	int col; /* 1-based */
};

struct line_ctx {
	const char *line; /* first byte of the line */
	const char *p;    /* next unread byte */
	const char *end;  /* end of the line (excluding '\n') */
	int lineno;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool next_tok(struct line_ctx *lc, struct tok *t)
{
	while (lc->p < lc->end && is_blank(*lc->p))
		lc->p++;
	if (lc->p >= lc->end || *lc->p == '#')
		return false;
	t->s = lc->p;
	t->col = (int)(lc->p - lc->line) + 1;
	while (lc->p < lc->end && !is_blank(*lc->p) && *lc->p != '#')
		lc->p++;
	t->len = (size_t)(lc->p - t->s);
	return true;
}

static bool tok_is(const struct tok *t, const char *word)
{
	size_t n = strlen(word);
	return t->len == n && memcmp(t->s, word, n) == 0;
}

static int tok_show_len(const struct tok *t)
{
	return (int)(t->len > 64 ? 64 : t->len);
}

static int parse_u32(struct nm_builder *b, const struct line_ctx *lc, const struct tok *t,
                     const char *what, uint32_t *out)
{
	if (t->s[0] == '-')
		return nm_error(b, lc->lineno, t->col, "negative %s '%.*s'", what, tok_show_len(t),
		                t->s);
	uint64_t v = 0;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->s[i];
		if (c < '0' || c > '9')
			return nm_error(b, lc->lineno, t->col, "%s '%.*s' is not a number", what,
			                tok_show_len(t), t->s);
		v = v * 10 + (uint64_t)(c - '0');
		if (v > UINT32_MAX)
			return nm_error(b, lc->lineno, t->col,
			                "%s '%.*s' out of range (at most %u)", what,
			                tok_show_len(t), t->s, UINT32_MAX);
	}
	*out = (uint32_t)v;
	return 0;
}

/* The next token, or an error naming what was expected after `after`. */
static int need_tok(struct nm_builder *b, struct line_ctx *lc, struct tok *t, const char *what,
                    const struct tok *after)
{
	if (next_tok(lc, t))
		return 0;
	return nm_error(b, lc->lineno, (int)(lc->p - lc->line) + 1, "missing %s after '%.*s'", what,
	                tok_show_len(after), after->s);
}

static int no_more(struct nm_builder *b, struct line_ctx *lc, const char *stmt)
{
	struct tok t;
	if (!next_tok(lc, &t))
		return 0;
	return nm_error(b, lc->lineno, t.col, "unexpected '%.*s' at the end of a %s statement",
	                tok_show_len(&t), t.s, stmt);
}

static uint32_t name_tok(struct nm_builder *b, const struct line_ctx *lc, const struct tok *t)
{
	return nm_intern(b, t->s, t->len, lc->lineno, t->col);
}

static int stmt_network_map(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok t;
	char rid[ITR_NAME_MAX + 2];
	if (need_tok(b, lc, &t, "resource id", kw))
		return -1;
	if (t.len > ITR_NAME_MAX)
		return nm_error(b, lc->lineno, t.col, "bad resource id: longer than %d characters",
		                ITR_NAME_MAX);
	memcpy(rid, t.s, t.len);
	rid[t.len] = '\0';
	if (nm_set_resource_id(b, rid, lc->lineno, t.col))
		return -1;
	return no_more(b, lc, "network-map");
}

static int stmt_tier(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok name, val;
	uint32_t v;
	if (need_tok(b, lc, &name, "tier name (same-pid, same-loc, same-as, other-as)", kw))
		return -1;
	int tier = -1;
	for (int i = 0; i < ITR_TIER_MAX; i++)
		if (tok_is(&name, itr_tier_names[i]))
			tier = i;
	if (tier < 0)
		return nm_error(b, lc->lineno, name.col,
		                "unknown tier '%.*s' (same-pid, same-loc, same-as, other-as)",
		                tok_show_len(&name), name.s);
	if (need_tok(b, lc, &val, "cost", &name) || parse_u32(b, lc, &val, "cost", &v) ||
	    nm_set_tier(b, (enum itr_tier)tier, v, lc->lineno, val.col))
		return -1;
	return no_more(b, lc, "tier");
}

static int stmt_pid(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok name, key, val;
	uint32_t id = 0, asn = 0, loc = ITR_LOC_NONE;
	bool have_id = false, have_asn = false, have_loc = false;
	if (need_tok(b, lc, &name, "PID name", kw))
		return -1;
	uint32_t n = name_tok(b, lc, &name);
	if (n == UINT32_MAX)
		return -1;
	while (next_tok(lc, &key)) {
		bool *seen;
		uint32_t *dst;
		if (tok_is(&key, "id")) {
			seen = &have_id;
			dst = &id;
		} else if (tok_is(&key, "asn")) {
			seen = &have_asn;
			dst = &asn;
		} else if (tok_is(&key, "loc")) {
			seen = &have_loc;
			dst = &loc;
		} else {
			return nm_error(b, lc->lineno, key.col,
			                "unknown PID attribute '%.*s' (id, asn, loc)",
			                tok_show_len(&key), key.s);
		}
		if (*seen)
			return nm_error(b, lc->lineno, key.col, "'%.*s' given twice",
			                tok_show_len(&key), key.s);
		char what[8];
		snprintf(what, sizeof(what), "%.*s", (int)key.len, key.s);
		if (need_tok(b, lc, &val, what, &key) || parse_u32(b, lc, &val, what, dst))
			return -1;
		if (dst == &id && (id == ITR_PID_NONE || id > ITR_PID_ID_MAX))
			return nm_error(b, lc->lineno, val.col, "PID id %u out of range 1..%u", id,
			                ITR_PID_ID_MAX);
		*seen = true;
	}
	int end_col = (int)(lc->p - lc->line) + 1;
	if (!have_id)
		return nm_error(b, lc->lineno, end_col, "PID '%.*s': missing 'id N'",
		                tok_show_len(&name), name.s);
	if (!have_asn)
		return nm_error(b, lc->lineno, end_col, "PID '%.*s': missing 'asn N'",
		                tok_show_len(&name), name.s);
	return nm_declare_pid(b, n, true, id, asn, loc, lc->lineno, name.col);
}

static int stmt_prefix(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok name, t;
	if (need_tok(b, lc, &name, "PID name", kw))
		return -1;
	uint32_t n = name_tok(b, lc, &name);
	if (n == UINT32_MAX)
		return -1;
	if (need_tok(b, lc, &t, "prefix", &name))
		return -1;
	do {
		char text[64], why[128];
		struct itr_prefix p;
		if (t.len >= sizeof(text))
			return nm_error(b, lc->lineno, t.col, "bad prefix '%.*s': too long",
			                tok_show_len(&t), t.s);
		memcpy(text, t.s, t.len);
		text[t.len] = '\0';
		if (itr_prefix_parse(text, &p, why, sizeof(why)))
			return nm_error(b, lc->lineno, t.col, "bad prefix '%s': %s", text, why);
		if (nm_add_prefix(b, n, &p, lc->lineno, t.col))
			return -1;
	} while (next_tok(lc, &t));
	return 0;
}

static int stmt_cost(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok src, dst, val;
	uint32_t s, d, v;
	if (need_tok(b, lc, &src, "source PID", kw))
		return -1;
	if ((s = name_tok(b, lc, &src)) == UINT32_MAX)
		return -1;
	if (need_tok(b, lc, &dst, "destination PID", &src))
		return -1;
	if ((d = name_tok(b, lc, &dst)) == UINT32_MAX)
		return -1;
	if (need_tok(b, lc, &val, "cost", &dst) || parse_u32(b, lc, &val, "cost", &v) ||
	    nm_add_cost(b, s, d, v, lc->lineno, src.col))
		return -1;
	return no_more(b, lc, "cost");
}

static int stmt_default(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok name;
	uint32_t n;
	if (need_tok(b, lc, &name, "PID name", kw))
		return -1;
	if ((n = name_tok(b, lc, &name)) == UINT32_MAX ||
	    nm_set_default(b, n, lc->lineno, name.col))
		return -1;
	return no_more(b, lc, "default-pid");
}

static int parse_rate_tok(struct nm_builder *b, const struct line_ctx *lc, const struct tok *t,
                          const char *what, uint64_t *bps)
{
	if (itr_rate_parse(t->s, t->len, bps))
		return nm_error(b, lc->lineno, t->col,
		                "%s '%.*s' is not a rate (e.g. 8mbit, 500kbit, 1gbit, or bits/s)",
		                what, tok_show_len(t), t->s);
	return 0;
}

/* link NAME asn N (uplink | peer-asn N) capacity RATE budget RATE|PCT%
 *      [host-upload RATE]; the builder checks the values against each other. */
static int stmt_link(struct nm_builder *b, struct line_ctx *lc, const struct tok *kw)
{
	struct tok name, key, val;
	struct itr_link l;
	bool have_asn = false, have_peer = false, have_cap = false, have_budget = false;
	bool have_up = false;
	memset(&l, 0, sizeof(l));
	if (need_tok(b, lc, &name, "link name", kw))
		return -1;
	if (name.len > ITR_NAME_MAX)
		return nm_error(b, lc->lineno, name.col, "bad link name: longer than %d characters",
		                ITR_NAME_MAX);
	memcpy(l.name, name.s, name.len);
	while (next_tok(lc, &key)) {
		bool *seen;
		if (tok_is(&key, "asn"))
			seen = &have_asn;
		else if (tok_is(&key, "peer-asn") || tok_is(&key, "uplink"))
			seen = &have_peer;
		else if (tok_is(&key, "capacity"))
			seen = &have_cap;
		else if (tok_is(&key, "budget"))
			seen = &have_budget;
		else if (tok_is(&key, "host-upload"))
			seen = &have_up;
		else
			return nm_error(b, lc->lineno, key.col,
			                "unknown link attribute '%.*s' (asn, uplink, peer-asn, "
			                "capacity, budget, host-upload)",
			                tok_show_len(&key), key.s);
		if (*seen)
			return nm_error(b, lc->lineno, key.col,
			                seen == &have_peer ? "'%.*s': give uplink or peer-asn, once"
			                                   : "'%.*s' given twice",
			                tok_show_len(&key), key.s);
		*seen = true;
		if (tok_is(&key, "uplink"))
			continue;
		if (need_tok(b, lc, &val, "value", &key))
			return -1;
		if (tok_is(&key, "asn")) {
			if (parse_u32(b, lc, &val, "asn", &l.asn))
				return -1;
		} else if (tok_is(&key, "peer-asn")) {
			if (parse_u32(b, lc, &val, "peer-asn", &l.peer_asn))
				return -1;
			if (l.peer_asn == 0)
				return nm_error(
				    b, lc->lineno, val.col,
				    "peer-asn 0: write 'uplink' for the AS's link to every "
				    "other AS");
		} else if (tok_is(&key, "capacity")) {
			if (parse_rate_tok(b, lc, &val, "capacity", &l.capacity_bps))
				return -1;
		} else if (tok_is(&key, "host-upload")) {
			if (parse_rate_tok(b, lc, &val, "host-upload", &l.host_upload_bps))
				return -1;
		} else if (val.len > 1 && val.s[val.len - 1] == '%') {
			struct tok pct = val;
			pct.len--;
			if (parse_u32(b, lc, &pct, "budget share", &l.budget_pct))
				return -1;
			if (l.budget_pct < 1 || l.budget_pct > 100)
				return nm_error(b, lc->lineno, val.col,
				                "budget share %u%% out of range 1..100",
				                l.budget_pct);
		} else if (parse_rate_tok(b, lc, &val, "budget", &l.budget_bps)) {
			return -1;
		}
	}
	int end_col = (int)(lc->p - lc->line) + 1;
	const char *miss = !have_asn      ? "asn N"
	                   : !have_peer   ? "uplink or peer-asn N"
	                   : !have_cap    ? "capacity RATE"
	                   : !have_budget ? "budget RATE|PCT%"
	                                  : NULL;
	if (miss)
		return nm_error(b, lc->lineno, end_col, "link '%s': missing '%s'", l.name, miss);
	return nm_add_link(b, &l, lc->lineno, name.col);
}

static int parse_line(struct nm_builder *b, struct line_ctx *lc)
{
	struct tok kw;
	if (!next_tok(lc, &kw))
		return 0;
	if (tok_is(&kw, "prefix"))
		return stmt_prefix(b, lc, &kw);
	if (tok_is(&kw, "pid"))
		return stmt_pid(b, lc, &kw);
	if (tok_is(&kw, "cost"))
		return stmt_cost(b, lc, &kw);
	if (tok_is(&kw, "tier"))
		return stmt_tier(b, lc, &kw);
	if (tok_is(&kw, "default-pid"))
		return stmt_default(b, lc, &kw);
	if (tok_is(&kw, "network-map"))
		return stmt_network_map(b, lc, &kw);
	if (tok_is(&kw, "link"))
		return stmt_link(b, lc, &kw);
	return nm_error(b, lc->lineno, kw.col,
	                "unknown statement '%.*s' (network-map, tier, pid, prefix, cost, "
	                "default-pid, link)",
	                tok_show_len(&kw), kw.s);
}

struct itr_netmap *itr_netmap_parse_text(const char *buf, size_t len, const char *filename,
                                         struct itr_netmap_error *err)
{
	struct nm_builder *b = nm_builder_for_file(filename, false, len, err);
	if (!b)
		return NULL;
	const char *p = buf, *end = buf + len;
	int lineno = 0;
	/* Control bytes (NUL above all) never occur in a text map: name a
	 * binary file as such instead of reporting its bytes as a token. */
	for (size_t i = 0, line = 1, col = 1; i < len; i++, col++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n') {
			line++;
			col = 0;
		} else if ((c < 0x20 && c != '\t' && c != '\r' && c != '\f' && c != '\v') ||
		           c == 0x7f) {
			char what[24];
			snprintf(what, sizeof(what), c ? "byte 0x%02x" : "NUL byte", c);
			nm_error(b, (int)line, (int)col,
			         "%s: this looks like a binary file, not a network map (text or "
			         "ALTO JSON)",
			         what);
			nm_builder_free(b);
			return NULL;
		}
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct line_ctx lc = {.line = p, .p = p, .end = eol, .lineno = ++lineno};
		if (parse_line(b, &lc)) {
			nm_builder_free(b);
			return NULL;
		}
		p = nl ? nl + 1 : end;
	}
	return nm_builder_finish(b);
}
