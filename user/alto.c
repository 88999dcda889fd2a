/* alto.c - the ALTO server (RFC 7285): request parsers, JSON encoders and
 * the HTTP handlers that tie them to the current network map.
 *
 * Decisions where RFC 7285 leaves room (each is also stated where it is
 * implemented):
 * - Ordinal costs are ranks relative to the m*n entries of the returned map
 *   (RFC 7285 6.2), 1 = best. Cost maps use dense ranks (equal costs share
 *   a rank: PIDs are aggregates, a tie between them is real). The endpoint
 *   cost service ranks strictly (1..m*n) and breaks ties of equal cost with
 *   the pair's BEP 40 canonical priority, higher first, so that a tracker
 *   using it as a peer ranking spreads load the same way itracker's own
 *   ranking does.
 * - Constraints are evaluated on the values returned, i.e. on the ranks in
 *   ordinal mode (RFC 7285 11.3.2.4 warns clients about exactly that).
 * - An endpoint no PID covers: the endpoint property response lists the
 *   endpoint with the pid (and the private properties) omitted, as RFC 7285
 *   11.4.1.6 requires for undefined values; the endpoint cost service gives
 *   it the network map's cost for "no PID" (other-AS tier plus one), so a
 *   ranking still places such peers last rather than dropping them.
 * - Errors: E_SYNTAX for a body that is not a JSON object or a malformed
 *   identifier (PID name, typed endpoint address); E_MISSING_FIELD,
 *   E_INVALID_FIELD_TYPE and E_INVALID_FIELD_VALUE as RFC 7285 8.5.2
 *   describes, with "field" the path of the member ("cost-type/cost-mode",
 *   "pids/srcs") and "value" the offending value as a string. A POST whose
 *   Content-Type is not the resource's "accepts" media type gets HTTP 415
 *   with an E_SYNTAX body; every other request error is HTTP 400.
 * - Cost rows left empty by constraints are omitted from a cost map.
 */
#include "alto.h"
#include "alto_updates.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "json_text.h"
#include "rank.h"

#define COST_TYPE_NUM "num-routingcost"
#define COST_TYPE_ORD "ord-routingcost"
#define COST_METRIC   "routingcost"

/* ---- small helpers ------------------------------------------------------- */

const char *itr_alto_code_name(enum itr_alto_code code)
{
	switch (code) {
	case ITR_ALTO_OK:
		return "OK";
	case ITR_ALTO_E_SYNTAX:
		return "E_SYNTAX";
	case ITR_ALTO_E_MISSING_FIELD:
		return "E_MISSING_FIELD";
	case ITR_ALTO_E_INVALID_FIELD_TYPE:
		return "E_INVALID_FIELD_TYPE";
	case ITR_ALTO_E_INVALID_FIELD_VALUE:
		return "E_INVALID_FIELD_VALUE";
	}
	return "E_SYNTAX";
}

static void copy_trunc(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* Fill err; value_json (may be NULL) is stringified per RFC 7285 8.5.2: a
 * string is itself, anything else its compact JSON text. Returns -1. */
static int fail(struct itr_alto_error *err, enum itr_alto_code code, const char *field,
                const json_t *value_json, const char *value_text)
{
	memset(err, 0, sizeof(*err));
	err->code = code;
	copy_trunc(err->field, sizeof(err->field), field);
	if (value_text) {
		copy_trunc(err->value, sizeof(err->value), value_text);
	} else if (value_json && json_is_string(value_json)) {
		copy_trunc(err->value, sizeof(err->value), json_string_value(value_json));
	} else if (value_json) {
		char *text = json_dumps(value_json, JSON_ENCODE_ANY | JSON_COMPACT);
		copy_trunc(err->value, sizeof(err->value), text);
		free(text);
	}
	return -1;
}

static int fail_syntax(struct itr_alto_error *err, const char *field, const char *value,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_syntax(struct itr_alto_error *err, const char *field, const char *value,
                       const char *fmt, ...)
{
	va_list ap;
	fail(err, ITR_ALTO_E_SYNTAX, field, NULL, value);
	va_start(ap, fmt);
	vsnprintf(err->syntax_error, sizeof(err->syntax_error), fmt, ap);
	va_end(ap);
	return -1;
}

/* RFC 7285 10.1: at most 64 of [A-Za-z0-9-:@_]; '.' is reserved. */
static bool valid_pid_name(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == ':' || c == '@' || c == '_';
		if (!ok || n >= ITR_NAME_MAX)
			return false;
	}
	return n > 0;
}

/* Stable de-duplication: keep the first occurrence of each key, in order.
 * keys[i] is compared with cmp; returns the new count and compacts items
 * (elements of size sz) in place. */
struct dedup_ent {
	const void *item;
	size_t index;
};
/* qsort has no context argument; the comparison lives per thread. */
static _Thread_local int (*tls_cmp)(const void *, const void *);

static int dedup_order(const void *a, const void *b)
{
	const struct dedup_ent *x = a, *y = b;
	int c = tls_cmp(x->item, y->item);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

static size_t dedup(void *items, size_t n, size_t sz, int (*cmp)(const void *, const void *),
                    void (*drop)(void *))
{
	struct dedup_ent *ents;
	bool *keep;
	size_t i, out = 0;
	char *base = items;

	if (n < 2)
		return n;
	ents = calloc(n, sizeof(*ents));
	keep = calloc(n, sizeof(*keep));
	if (!ents || !keep) {
		free(ents);
		free(keep);
		return n; /* duplicates are harmless, only wasteful */
	}
	for (i = 0; i < n; i++) {
		ents[i].item = base + i * sz;
		ents[i].index = i;
	}
	tls_cmp = cmp;
	qsort(ents, n, sizeof(*ents), dedup_order);
	for (i = 0; i < n; i++)
		keep[ents[i].index] = i == 0 || cmp(ents[i - 1].item, ents[i].item) != 0;
	for (i = 0; i < n; i++) {
		if (keep[i]) {
			if (out != i)
				memcpy(base + out * sz, base + i * sz, sz);
			out++;
		} else if (drop) {
			drop(base + i * sz);
		}
	}
	free(ents);
	free(keep);
	return out;
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void drop_name_ptr(void *p)
{
	free(*(char **)p);
}

static int cmp_endpoint(const void *a, const void *b)
{
	const struct itr_alto_endpoint *x = a, *y = b;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* ---- constraints --------------------------------------------------------- */

int itr_alto_constraint_parse(const char *text, struct itr_alto_constraint *out)
{
	static const struct {
		const char *name;
		enum itr_alto_op op;
	} ops[] = {{"gt", ITR_ALTO_OP_GT},
	           {"lt", ITR_ALTO_OP_LT},
	           {"ge", ITR_ALTO_OP_GE},
	           {"le", ITR_ALTO_OP_LE},
	           {"eq", ITR_ALTO_OP_EQ}};
	const char *p = text;
	char *end;
	size_t i;
	bool found = false;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strncmp(p, ops[i].name, 2) == 0) {
			out->op = ops[i].op;
			found = true;
			break;
		}
	}
	if (!found)
		return -1;
	p += 2;
	if (*p != ' ' && *p != '\t')
		return -1; /* "two entities separated by whitespace" */
	while (*p == ' ' || *p == '\t')
		p++;
	/* A JSON-style number only: strtod alone would take "nan", "inf", hex. */
	if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.'))
		return -1;
	for (const char *q = p; *q && *q != ' ' && *q != '\t'; q++) {
		if (!((*q >= '0' && *q <= '9') || *q == '-' || *q == '+' || *q == '.' ||
		      *q == 'e' || *q == 'E'))
			return -1;
	}
	errno = 0;
	out->value = strtod(p, &end);
	if (end == p || errno == ERANGE || !isfinite(out->value))
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	return *end ? -1 : 0;
}

static bool constraint_holds(const struct itr_alto_constraint *c, double cost)
{
	switch (c->op) {
	case ITR_ALTO_OP_GT:
		return cost > c->value;
	case ITR_ALTO_OP_LT:
		return cost < c->value;
	case ITR_ALTO_OP_GE:
		return cost >= c->value;
	case ITR_ALTO_OP_LE:
		return cost <= c->value;
	case ITR_ALTO_OP_EQ:
		return cost == c->value;
	}
	return false;
}

bool itr_alto_constraints_pass(const struct itr_alto_constraints *cons, double cost)
{
	if (!cons || cons->ngroups == 0)
		return true;
	for (size_t g = 0; g < cons->ngroups; g++) {
		bool all = true;
		for (size_t i = 0; i < cons->group_len[g] && all; i++)
			all = constraint_holds(&cons->groups[g][i], cost);
		if (all)
			return true;
	}
	return false;
}

static void constraints_free(struct itr_alto_constraints *cons)
{
	for (size_t g = 0; g < cons->ngroups; g++)
		free(cons->groups[g]);
	free(cons->groups);
	free(cons->group_len);
	memset(cons, 0, sizeof(*cons));
}

/* Append one group parsed from a JSON array of strings. field names the
 * array for error reports. */
static int constraints_add_group(struct itr_alto_constraints *cons, const json_t *arr,
                                 const char *field, struct itr_alto_error *err)
{
	size_t n = json_array_size(arr), i;
	struct itr_alto_constraint *group = NULL;
	struct itr_alto_constraint **groups;
	size_t *lens;

	if (n) {
		group = calloc(n, sizeof(*group));
		if (!group)
			return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL, NULL);
	}
	for (i = 0; i < n; i++) {
		const json_t *elem = json_array_get(arr, i);
		/* RFC 7285 8.5.2: a wrong-typed array element is an invalid value. */
		if (!json_is_string(elem) ||
		    itr_alto_constraint_parse(json_string_value(elem), &group[i]) < 0) {
			free(group);
			return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, elem, NULL);
		}
	}
	groups = realloc(cons->groups, (cons->ngroups + 1) * sizeof(*groups));
	if (!groups) {
		free(group);
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL, NULL);
	}
	cons->groups = groups;
	lens = realloc(cons->group_len, (cons->ngroups + 1) * sizeof(*lens));
	if (!lens) {
		free(group);
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL, NULL);
	}
	cons->group_len = lens;
	cons->groups[cons->ngroups] = group;
	cons->group_len[cons->ngroups] = n;
	cons->ngroups++;
	return 0;
}

/* "constraints" (RFC 7285, AND) and "or-constraints" (RFC 8189, OR of
 * ANDs); both absent means no filtering; both present is invalid. */
static int parse_constraints(const json_t *root, struct itr_alto_constraints *out,
                             struct itr_alto_error *err)
{
	const json_t *and_list = json_object_get(root, "constraints");
	const json_t *or_list = json_object_get(root, "or-constraints");

	memset(out, 0, sizeof(*out));
	if (and_list && or_list)
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "or-constraints", NULL, NULL);
	/* Every constraint is checked for every pair of the answer: the count
	 * is bounded before anything is allocated (thousands of them in a
	 * 27 kB request kept a thread busy 17.7 s on a 1,300-PID map). */
	size_t total = json_array_size(and_list);
	const json_t *g;
	size_t gi;
	if (json_is_array(or_list)) {
		total = 0;
		json_array_foreach(or_list, gi, g) total +=
		    json_is_array(g) ? json_array_size(g) : 1;
	}
	if (total > ITR_ALTO_MAX_CONSTRAINTS) {
		char why[64];
		snprintf(why, sizeof(why), "more than %d constraints", ITR_ALTO_MAX_CONSTRAINTS);
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE,
		            or_list ? "or-constraints" : "constraints", NULL, why);
	}
	if (and_list) {
		if (!json_is_array(and_list))
			return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "constraints", NULL, NULL);
		/* An empty list constrains nothing. */
		if (json_array_size(and_list) == 0)
			return 0;
		if (constraints_add_group(out, and_list, "constraints", err) < 0) {
			constraints_free(out);
			return -1;
		}
		return 0;
	}
	if (or_list) {
		size_t i;
		const json_t *group;
		if (!json_is_array(or_list))
			return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "or-constraints", NULL,
			            NULL);
		json_array_foreach(or_list, i, group)
		{
			if (!json_is_array(group)) {
				constraints_free(out);
				return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "or-constraints",
				            group, NULL);
			}
			if (constraints_add_group(out, group, "or-constraints", err) < 0) {
				constraints_free(out);
				return -1;
			}
		}
	}
	return 0;
}

/* ---- endpoints ------------------------------------------------------------ */

int itr_alto_endpoint_parse(const char *text, struct itr_alto_endpoint *out)
{
	const char *colon = strchr(text, ':');
	char addr[INET6_ADDRSTRLEN + 1];
	size_t typelen, addrlen;

	memset(out, 0, sizeof(*out));
	if (!colon || colon == text)
		return -1;
	typelen = (size_t)(colon - text);
	for (size_t i = 0; i < typelen; i++) {
		char c = text[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return -1; /* AddressType is alphanumeric (RFC 7285 10.4.2) */
	}
	addrlen = strlen(colon + 1);
	if (addrlen == 0 || addrlen >= sizeof(addr))
		return -1;
	memcpy(addr, colon + 1, addrlen + 1);
	if (typelen == 4 && strncmp(text, "ipv4", 4) == 0) {
		if (inet_pton(AF_INET, addr, out->addr) != 1)
			return -1;
		out->family = 4;
		return 0;
	}
	if (typelen == 4 && strncmp(text, "ipv6", 4) == 0) {
		if (inet_pton(AF_INET6, addr, out->addr) != 1)
			return -1;
		out->family = 6;
		return 0;
	}
	return -2;
}

const char *itr_alto_endpoint_format(const struct itr_alto_endpoint *ep, char *buf, size_t len)
{
	char text[INET6_ADDRSTRLEN];
	if (!inet_ntop(ep->family == 4 ? AF_INET : AF_INET6, ep->addr, text, sizeof(text)))
		text[0] = '\0';
	snprintf(buf, len, "%s:%s", ep->family == 4 ? "ipv4" : "ipv6", text);
	return buf;
}

/* An array of typed endpoint addresses; absent is fine when optional. */
static int parse_endpoints(const json_t *arr, const char *field, struct itr_alto_endpoints *out,
                           struct itr_alto_error *err)
{
	size_t n, i;
	const json_t *elem;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(arr))
		return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, field, NULL, NULL);
	n = json_array_size(arr);
	if (n == 0)
		return 0;
	out->items = calloc(n, sizeof(*out->items));
	if (!out->items)
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL, NULL);
	json_array_foreach(arr, i, elem)
	{
		int rc;
		if (!json_is_string(elem)) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, elem, NULL);
			goto bad;
		}
		rc = itr_alto_endpoint_parse(json_string_value(elem), &out->items[i]);
		if (rc == -2) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, elem, NULL);
			goto bad;
		}
		if (rc < 0) {
			fail_syntax(err, field, json_string_value(elem),
			            "%s: not a typed endpoint address (ipv4:ADDR or ipv6:ADDR)",
			            field);
			goto bad;
		}
	}
	out->n = dedup(out->items, n, sizeof(*out->items), cmp_endpoint, NULL);
	return 0;
bad:
	free(out->items);
	memset(out, 0, sizeof(*out));
	return -1;
}

static int parse_pid_names(const json_t *arr, const char *field, struct itr_alto_names *out,
                           struct itr_alto_error *err)
{
	size_t n, i;
	const json_t *elem;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(arr))
		return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, field, NULL, NULL);
	n = json_array_size(arr);
	if (n == 0)
		return 0;
	out->names = calloc(n, sizeof(*out->names));
	if (!out->names)
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL, NULL);
	json_array_foreach(arr, i, elem)
	{
		if (!json_is_string(elem)) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, elem, NULL);
			goto bad;
		}
		if (!valid_pid_name(json_string_value(elem))) {
			fail_syntax(err, field, json_string_value(elem),
			            "%s: not a PID name (1-64 of A-Z a-z 0-9 - : @ _)", field);
			goto bad;
		}
		out->names[i] = strdup(json_string_value(elem));
		if (!out->names[i]) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL, NULL);
			goto bad;
		}
		out->n = i + 1;
	}
	out->n = dedup(out->names, n, sizeof(*out->names), cmp_name_ptr, drop_name_ptr);
	return 0;
bad:
	for (i = 0; i < n; i++)
		free(out->names[i]);
	free(out->names);
	memset(out, 0, sizeof(*out));
	return -1;
}

static void names_free(struct itr_alto_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->names[i]);
	free(names->names);
	memset(names, 0, sizeof(*names));
}

/* ---- request parsing ------------------------------------------------------ */

static json_t *load_object(const char *body, size_t len, struct itr_alto_error *err)
{
	json_error_t jerr;
	json_t *root;

	if (!body || len == 0) {
		fail_syntax(err, NULL, NULL, "empty request body");
		return NULL;
	}
	root = json_loadb(body, len, 0, &jerr);
	if (!root) {
		fail_syntax(err, NULL, NULL, "line %d, column %d: %s", jerr.line, jerr.column,
		            jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail_syntax(err, NULL, NULL, "line 1, column 1: request is not a JSON object");
		return NULL;
	}
	return root;
}

/* "cost-type": {"cost-mode": ..., "cost-metric": "routingcost"}. */
static int parse_cost_type(const json_t *root, enum itr_alto_mode *mode, struct itr_alto_error *err)
{
	const json_t *ct = json_object_get(root, "cost-type");
	const json_t *m, *metric;

	if (!ct)
		return fail(err, ITR_ALTO_E_MISSING_FIELD, "cost-type", NULL, NULL);
	if (!json_is_object(ct))
		return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "cost-type", NULL, NULL);
	m = json_object_get(ct, "cost-mode");
	metric = json_object_get(ct, "cost-metric");
	if (!m)
		return fail(err, ITR_ALTO_E_MISSING_FIELD, "cost-type/cost-mode", NULL, NULL);
	if (!metric)
		return fail(err, ITR_ALTO_E_MISSING_FIELD, "cost-type/cost-metric", NULL, NULL);
	if (!json_is_string(m))
		return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "cost-type/cost-mode", NULL, NULL);
	if (!json_is_string(metric))
		return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "cost-type/cost-metric", NULL,
		            NULL);
	if (strcmp(json_string_value(m), "numerical") == 0)
		*mode = ITR_ALTO_NUMERICAL;
	else if (strcmp(json_string_value(m), "ordinal") == 0)
		*mode = ITR_ALTO_ORDINAL;
	else
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "cost-type/cost-mode", m, NULL);
	if (strcmp(json_string_value(metric), COST_METRIC) != 0)
		return fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "cost-type/cost-metric", metric,
		            NULL);
	/* "description" is ignored (RFC 7285 11.3.2.3). */
	return 0;
}

int itr_alto_parse_netmap_filter(const char *body, size_t len, struct itr_alto_netmap_filter *out,
                                 struct itr_alto_error *err)
{
	json_t *root;
	const json_t *pids, *types, *elem;
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	root = load_object(body, len, err);
	if (!root)
		return -1;
	pids = json_object_get(root, "pids");
	if (!pids) {
		json_decref(root);
		return fail(err, ITR_ALTO_E_MISSING_FIELD, "pids", NULL, NULL);
	}
	types = json_object_get(root, "address-types");
	if (types && !json_is_array(types)) {
		json_decref(root);
		return fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "address-types", NULL, NULL);
	}
	json_array_foreach(types, i, elem)
	{
		if (!json_is_string(elem)) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "address-types", elem, NULL);
			json_decref(root);
			return -1;
		}
		/* Unknown address types count as absent (RFC 7285 11.3.1.6). */
		if (strcmp(json_string_value(elem), "ipv4") == 0)
			out->ipv4 = true;
		else if (strcmp(json_string_value(elem), "ipv6") == 0)
			out->ipv6 = true;
	}
	/* Absent or (effectively) empty means every known type (11.3.1.3). */
	if (!out->ipv4 && !out->ipv6)
		out->ipv4 = out->ipv6 = true;
	if (parse_pid_names(pids, "pids", &out->pids, err) < 0) {
		json_decref(root);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	json_decref(root);
	return 0;
}

int itr_alto_parse_costmap_filter(const char *body, size_t len, struct itr_alto_costmap_filter *out,
                                  struct itr_alto_error *err)
{
	json_t *root;
	const json_t *pids;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	root = load_object(body, len, err);
	if (!root)
		return -1;
	if (parse_cost_type(root, &out->mode, err) < 0)
		goto bad;
	pids = json_object_get(root, "pids");
	if (pids) {
		const json_t *srcs, *dsts;
		if (!json_is_object(pids)) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "pids", NULL, NULL);
			goto bad;
		}
		srcs = json_object_get(pids, "srcs");
		dsts = json_object_get(pids, "dsts");
		/* PIDFilter's lists are not optional (RFC 7285 11.3.2.3). */
		if (!srcs) {
			fail(err, ITR_ALTO_E_MISSING_FIELD, "pids/srcs", NULL, NULL);
			goto bad;
		}
		if (!dsts) {
			fail(err, ITR_ALTO_E_MISSING_FIELD, "pids/dsts", NULL, NULL);
			goto bad;
		}
		if (parse_pid_names(srcs, "pids/srcs", &out->srcs, err) < 0)
			goto bad;
		if (parse_pid_names(dsts, "pids/dsts", &out->dsts, err) < 0)
			goto bad;
	}
	if (parse_constraints(root, &out->constraints, err) < 0)
		goto bad;
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	itr_alto_costmap_filter_free(out);
	return -1;
}

int itr_alto_parse_endpointprop(const char *body, size_t len, const char *netmap_id,
                                struct itr_alto_endpointprop_req *out, struct itr_alto_error *err)
{
	json_t *root;
	const json_t *props, *eps, *elem;
	char pid_prop[ITR_NAME_MAX + 8];
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	root = load_object(body, len, err);
	if (!root)
		return -1;
	snprintf(pid_prop, sizeof(pid_prop), "%s.pid", netmap_id ? netmap_id : "");
	props = json_object_get(root, "properties");
	eps = json_object_get(root, "endpoints");
	if (!props) {
		fail(err, ITR_ALTO_E_MISSING_FIELD, "properties", NULL, NULL);
		goto bad;
	}
	if (!eps) {
		fail(err, ITR_ALTO_E_MISSING_FIELD, "endpoints", NULL, NULL);
		goto bad;
	}
	if (!json_is_array(props)) {
		fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "properties", NULL, NULL);
		goto bad;
	}
	/* properties<1..*> */
	if (json_array_size(props) == 0) {
		fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "properties", props, NULL);
		goto bad;
	}
	json_array_foreach(props, i, elem)
	{
		const char *p = json_string_value(elem);
		if (p && strcmp(p, pid_prop) == 0) {
			out->want |= ITR_ALTO_WANT_PID;
		} else if (p && strcmp(p, ITR_ALTO_PROP_ASID) == 0) {
			out->want |= ITR_ALTO_WANT_ASID;
		} else if (p && strcmp(p, ITR_ALTO_PROP_LOC) == 0) {
			out->want |= ITR_ALTO_WANT_LOC;
		} else {
			/* Not among the advertised prop-types (11.4.1.3), or not a string. */
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "properties", elem, NULL);
			goto bad;
		}
	}
	if (parse_endpoints(eps, "endpoints", &out->endpoints, err) < 0)
		goto bad;
	/* endpoints<1..*> */
	if (out->endpoints.n == 0) {
		fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "endpoints", eps, NULL);
		goto bad;
	}
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	itr_alto_endpointprop_req_free(out);
	return -1;
}

int itr_alto_parse_endpointcost(const char *body, size_t len, struct itr_alto_endpointcost_req *out,
                                struct itr_alto_error *err)
{
	json_t *root;
	const json_t *eps, *srcs, *dsts;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	root = load_object(body, len, err);
	if (!root)
		return -1;
	if (parse_cost_type(root, &out->mode, err) < 0)
		goto bad;
	eps = json_object_get(root, "endpoints");
	if (!eps) {
		fail(err, ITR_ALTO_E_MISSING_FIELD, "endpoints", NULL, NULL);
		goto bad;
	}
	if (!json_is_object(eps)) {
		fail(err, ITR_ALTO_E_INVALID_FIELD_TYPE, "endpoints", NULL, NULL);
		goto bad;
	}
	srcs = json_object_get(eps, "srcs");
	dsts = json_object_get(eps, "dsts");
	if (srcs && parse_endpoints(srcs, "endpoints/srcs", &out->srcs, err) < 0)
		goto bad;
	if (dsts && parse_endpoints(dsts, "endpoints/dsts", &out->dsts, err) < 0)
		goto bad;
	/* "The source and destination endpoint lists MUST NOT be both empty." */
	if (out->srcs.n == 0 && out->dsts.n == 0) {
		fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "endpoints", eps, NULL);
		goto bad;
	}
	if (parse_constraints(root, &out->constraints, err) < 0)
		goto bad;
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	itr_alto_endpointcost_req_free(out);
	return -1;
}

void itr_alto_netmap_filter_free(struct itr_alto_netmap_filter *f)
{
	names_free(&f->pids);
}

void itr_alto_costmap_filter_free(struct itr_alto_costmap_filter *f)
{
	names_free(&f->srcs);
	names_free(&f->dsts);
	constraints_free(&f->constraints);
}

void itr_alto_endpointprop_req_free(struct itr_alto_endpointprop_req *r)
{
	free(r->endpoints.items);
	memset(r, 0, sizeof(*r));
}

void itr_alto_endpointcost_req_free(struct itr_alto_endpointcost_req *r)
{
	free(r->srcs.items);
	free(r->dsts.items);
	constraints_free(&r->constraints);
	memset(r, 0, sizeof(*r));
}

/* ---- encoders ------------------------------------------------------------- */

static char *dump_and_free(json_t *root)
{
	char *text;
	if (!root)
		return NULL;
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

static json_t *vtag_json(const struct itr_netmap *map)
{
	return json_pack("{s:s, s:s}", "resource-id", itr_netmap_resource_id(map), "tag",
	                 itr_netmap_vtag(map));
}

static json_t *cost_type_json(enum itr_alto_mode mode)
{
	return json_pack("{s:s, s:s}", "cost-mode",
	                 mode == ITR_ALTO_ORDINAL ? "ordinal" : "numerical", "cost-metric",
	                 COST_METRIC);
}

static const char *prefix_text(const struct itr_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	if (!inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, addr, sizeof(addr)))
		addr[0] = '\0';
	snprintf(buf, len, "%s/%u", addr, p->len);
	return buf;
}

/* is_default: the map's default PID, which covers every address no prefix
 * does; it is listed with 0.0.0.0/0 and ::/0, the prefixes that mean exactly
 * that under longest-prefix match, so the ALTO map stays complete (RFC 7285
 * 11.2.2). The map never has both a default PID and an explicit /0. */
static json_t *pid_addr_group(const struct itr_pid *pid, bool is_default, bool v4, bool v6)
{
	json_t *group = json_object(), *a4 = json_array(), *a6 = json_array();
	char buf[INET6_ADDRSTRLEN + 8];

	for (size_t i = 0; i < pid->nprefixes; i++) {
		const struct itr_prefix *p = &pid->prefixes[i];
		if (p->family == 4 && v4)
			json_array_append_new(a4, json_string(prefix_text(p, buf, sizeof(buf))));
		else if (p->family == 6 && v6)
			json_array_append_new(a6, json_string(prefix_text(p, buf, sizeof(buf))));
	}
	if (is_default && v4)
		json_array_append_new(a4, json_string("0.0.0.0/0"));
	if (is_default && v6)
		json_array_append_new(a6, json_string("::/0"));
	/* Address types a PID has no prefix of are left out, as in the RFC's
	 * example (its PID1 has no "ipv6" member). */
	if (json_array_size(a4))
		json_object_set(group, "ipv4", a4);
	if (json_array_size(a6))
		json_object_set(group, "ipv6", a6);
	json_decref(a4);
	json_decref(a6);
	return group;
}

char *itr_alto_encode_networkmap(const struct itr_netmap *map,
                                 const struct itr_alto_netmap_filter *filter)
{
	json_t *root = json_object(), *meta = json_object(), *nm = json_object();
	bool v4 = filter ? filter->ipv4 : true, v6 = filter ? filter->ipv6 : true;
	const struct itr_pid *dflt = itr_netmap_default_pid(map);

	json_object_set_new(meta, "vtag", vtag_json(map));
	json_object_set_new(root, "meta", meta);
	if (filter && filter->pids.n) {
		/* Names the map does not define are ignored (RFC 7285 11.3.1.6). */
		for (size_t i = 0; i < filter->pids.n; i++) {
			const struct itr_pid *pid =
			    itr_netmap_pid_by_name(map, filter->pids.names[i]);
			if (pid)
				json_object_set_new(nm, pid->name,
				                    pid_addr_group(pid, pid == dflt, v4, v6));
		}
	} else {
		for (size_t i = 0; i < itr_netmap_pid_count(map); i++) {
			const struct itr_pid *pid = itr_netmap_pid_at(map, i);
			json_object_set_new(nm, pid->name,
			                    pid_addr_group(pid, pid == dflt, v4, v6));
		}
	}
	json_object_set_new(root, "network-map", nm);
	return dump_and_free(root);
}

/* The PIDs a name list selects: all (empty list) or the named ones the map
 * defines, in request order. Returns count; *out is malloc'ed. */
static size_t select_pids(const struct itr_netmap *map, const struct itr_alto_names *names,
                          const struct itr_pid ***out)
{
	size_t n = 0, cap = names && names->n ? names->n : itr_netmap_pid_count(map);
	const struct itr_pid **pids = calloc(cap ? cap : 1, sizeof(*pids));

	*out = pids;
	if (!pids)
		return 0;
	if (names && names->n) {
		for (size_t i = 0; i < names->n; i++) {
			const struct itr_pid *pid = itr_netmap_pid_by_name(map, names->names[i]);
			if (pid)
				pids[n++] = pid;
		}
	} else {
		for (size_t i = 0; i < cap; i++)
			pids[n++] = itr_netmap_pid_at(map, i);
	}
	return n;
}

/* A growing text buffer for the cost map, the one document that gets big
 * (PIDs squared entries): building it as a jansson tree took seconds for a
 * thousand PIDs, writing the text directly takes a fraction of that. */
struct text_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void tb_put(struct text_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (cap - b->len <= n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void tb_puts(struct text_buf *b, const char *s)
{
	tb_put(b, s, strlen(s));
}

/* A JSON string; PID names need no escaping, but the map is not trusted
 * to have checked that. */
static void tb_json_string(struct text_buf *b, const char *s)
{
	tb_put(b, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c && c != '"' && c != '\\' && c >= 0x20)
			continue;
		tb_put(b, run, (size_t)(s - run));
		if (!c)
			break;
		char esc[8];
		snprintf(esc, sizeof(esc), "\\u%04x", c);
		tb_puts(b, esc);
		run = s + 1;
	}
	tb_put(b, "\"", 1);
}

/* A set of distinct uint32 costs (open addressing, at most half full):
 * what dense ordinal ranks need to know, without an m*n matrix. */
struct cost_set {
	uint32_t *slot; /* COST_SET_EMPTY where free */
	size_t cap, n;
	bool has_empty_value; /* the one cost that cannot sit in a slot */
};
#define COST_SET_EMPTY UINT32_MAX

static size_t cost_hash(uint32_t v, size_t cap)
{
	return (size_t)(v * 2654435761u) & (cap - 1);
}

static bool cost_set_add(struct cost_set *set, uint32_t v)
{
	if (v == COST_SET_EMPTY) {
		set->has_empty_value = true;
		return true;
	}
	if (2 * (set->n + 1) > set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 64;
		uint32_t *slot = malloc(cap * sizeof(*slot));
		if (!slot)
			return false;
		memset(slot, 0xff, cap * sizeof(*slot));
		for (size_t i = 0; i < set->cap; i++) {
			if (set->slot[i] == COST_SET_EMPTY)
				continue;
			size_t h = cost_hash(set->slot[i], cap);
			while (slot[h] != COST_SET_EMPTY)
				h = (h + 1) & (cap - 1);
			slot[h] = set->slot[i];
		}
		free(set->slot);
		set->slot = slot;
		set->cap = cap;
	}
	size_t h = cost_hash(v, set->cap);
	while (set->slot[h] != COST_SET_EMPTY) {
		if (set->slot[h] == v)
			return true;
		h = (h + 1) & (set->cap - 1);
	}
	set->slot[h] = v;
	set->n++;
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The distinct costs among srcs x dsts, ascending (*n of them): a cost's
 * dense ordinal rank (RFC 7285 6.2, relative to the m*n returned entries)
 * is its position + 1. Their number is that of distinct costs, a handful of
 * tiers in most maps, not m*n. NULL when out of memory. */
static uint32_t *distinct_costs(const struct itr_netmap *map, const struct itr_pid **srcs,
                                size_t ns, const struct itr_pid **dsts, size_t nd, size_t *n)
{
	struct cost_set set = {0};
	uint32_t *sorted;
	size_t k = 0;

	for (size_t s = 0; s < ns; s++)
		for (size_t d = 0; d < nd; d++)
			if (!cost_set_add(&set, itr_netmap_cost(map, srcs[s], dsts[d]))) {
				free(set.slot);
				return NULL;
			}
	sorted = malloc((set.n + 1) * sizeof(*sorted));
	if (sorted) {
		for (size_t i = 0; i < set.cap; i++)
			if (set.slot[i] != COST_SET_EMPTY)
				sorted[k++] = set.slot[i];
		qsort(sorted, k, sizeof(*sorted), cmp_u32);
		if (set.has_empty_value)
			sorted[k++] = COST_SET_EMPTY; /* the largest there is */
		*n = k;
	}
	free(set.slot);
	return sorted;
}

static uint32_t dense_rank_of(const uint32_t *sorted, size_t n, uint32_t cost)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted[mid] < cost)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t)lo + 1;
}

/* The cost map as text, one entry at a time: each cost is looked up where it
 * is written, so that building it costs about the answer's size and no m*n
 * matrix beside it (a 1,300-PID map: 13.5 MB of doubles, 20 MB for ordinal
 * ranks, next to an 18 MB answer). The writer can stop and go on: the whole
 * answer at once (itr_alto_encode_costmap), or a piece at a time as a
 * client takes it (itr_alto_costmap_stream_fill), so that a large filtered
 * map is never held whole. */
struct itr_alto_costmap_stream {
	struct itr_netmap *map; /* a reference, for a stream: reloads go on */
	const struct itr_alto_costmap_filter *filter;
	struct itr_alto_costmap_filter owned; /* a stream's own filter */
	bool owns_map, owns_filter;
	enum itr_alto_mode mode;
	const struct itr_pid **srcs, **dsts;
	size_t ns, nd, s, d;
	uint32_t *ranked;
	size_t nranks;
	bool started, row_open, first_row, done;
	struct text_buf out; /* out.p[sent..len) is written, not yet taken */
	size_t sent;
	void (*on_end)(void *arg); /* once: all handed out, or freed before */
	void *on_end_arg;
};

static bool costmap_writer_init(struct itr_alto_costmap_stream *w, const struct itr_netmap *map,
                                enum itr_alto_mode mode,
                                const struct itr_alto_costmap_filter *filter)
{
	w->filter = filter;
	w->mode = filter ? filter->mode : mode;
	w->first_row = true;
	w->ns = select_pids(map, filter ? &filter->srcs : NULL, &w->srcs);
	w->nd = select_pids(map, filter ? &filter->dsts : NULL, &w->dsts);
	if (!w->srcs || !w->dsts)
		return false;
	if (w->mode == ITR_ALTO_ORDINAL) {
		w->ranked = distinct_costs(map, w->srcs, w->ns, w->dsts, w->nd, &w->nranks);
		if (!w->ranked)
			return false;
	}
	return true;
}

static void costmap_writer_clear(struct itr_alto_costmap_stream *w)
{
	free(w->srcs);
	free(w->dsts);
	free(w->ranked);
	free(w->out.p);
	w->srcs = w->dsts = NULL;
	w->ranked = NULL;
	w->out = (struct text_buf){0};
}

/* Write on until at least want bytes wait in w->out, or the map is done.
 * False when out of memory. */
static bool costmap_write(struct itr_alto_costmap_stream *w, const struct itr_netmap *map,
                          size_t want)
{
	char num[16];
	struct text_buf *b = &w->out;
	if (!w->started) {
		json_t *meta = json_object(), *deps = json_array();
		json_array_append_new(deps, vtag_json(map));
		json_object_set_new(meta, "dependent-vtags", deps);
		json_object_set_new(meta, "cost-type", cost_type_json(w->mode));
		char *meta_text = dump_and_free(meta);
		if (!meta_text)
			return false;
		tb_puts(b, "{\"meta\":");
		tb_puts(b, meta_text);
		tb_puts(b, ",\"cost-map\":{");
		free(meta_text);
		w->started = true;
	}
	while (!w->done && b->len - w->sent < want && !b->oom) {
		/* no destination: every row would be empty, so none is written */
		if (w->s == w->ns || w->nd == 0) {
			tb_puts(b, "}}");
			w->done = true;
			break;
		}
		const struct itr_pid *src = w->srcs[w->s], *dst = w->dsts[w->d];
		uint32_t v = itr_netmap_cost(map, src, dst);
		if (w->mode == ITR_ALTO_ORDINAL)
			v = dense_rank_of(w->ranked, w->nranks, v);
		if (itr_alto_constraints_pass(w->filter ? &w->filter->constraints : NULL, v)) {
			/* A row is opened by its first entry: one that the
			 * constraints leave empty is left out. */
			if (!w->row_open) {
				if (!w->first_row)
					tb_put(b, ",", 1);
				tb_json_string(b, src->name);
				tb_put(b, ":{", 2);
				w->row_open = true;
				w->first_row = false;
			} else {
				tb_put(b, ",", 1);
			}
			tb_json_string(b, dst->name);
			snprintf(num, sizeof(num), ":%u", v);
			tb_puts(b, num);
		}
		if (++w->d == w->nd) {
			if (w->row_open)
				tb_put(b, "}", 1);
			w->row_open = false;
			w->d = 0;
			w->s++;
		}
	}
	return !b->oom;
}

char *itr_alto_encode_costmap(const struct itr_netmap *map, enum itr_alto_mode mode,
                              const struct itr_alto_costmap_filter *filter)
{
	struct itr_alto_costmap_stream w = {0};
	char *text = NULL;
	if (costmap_writer_init(&w, map, mode, filter) && costmap_write(&w, map, SIZE_MAX) &&
	    w.out.p) {
		/* The buffer doubled as it grew: give back what the text does
		 * not use. */
		char *fit = realloc(w.out.p, w.out.len + 1);
		text = fit ? fit : w.out.p;
		w.out.p = NULL;
	}
	costmap_writer_clear(&w);
	return text;
}

static void stream_ended(struct itr_alto_costmap_stream *w)
{
	void (*on_end)(void *arg) = w->on_end;
	w->on_end = NULL;
	if (on_end)
		on_end(w->on_end_arg);
}

struct itr_alto_costmap_stream *itr_alto_costmap_stream_new(struct itr_netmap *map,
                                                            struct itr_alto_costmap_filter *filter,
                                                            void (*on_end)(void *arg), void *arg)
{
	struct itr_alto_costmap_stream *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->owned = *filter;
	memset(filter, 0, sizeof(*filter)); /* the stream's now */
	w->owns_filter = true;
	itr_netmap_ref(map);
	w->map = map;
	w->owns_map = true;
	if (!costmap_writer_init(w, map, w->owned.mode, &w->owned)) {
		itr_alto_costmap_stream_free(w);
		return NULL;
	}
	w->on_end = on_end;
	w->on_end_arg = arg;
	return w;
}

long itr_alto_costmap_stream_fill(void *cls, char *buf, size_t max)
{
	struct itr_alto_costmap_stream *w = cls;
	if (!costmap_write(w, w->map, max))
		return -1;
	size_t n = w->out.len - w->sent;
	if (n > max)
		n = max;
	if (n)
		memcpy(buf, w->out.p + w->sent, n);
	w->sent += n;
	if (w->sent == w->out.len)
		w->out.len = w->sent = 0; /* the buffer stays, one piece big */
	/* The last piece is out: the end is told now, not when the connection
	 * lets go of the stream (a client may ask again before that). */
	if (w->done && w->out.len == 0)
		stream_ended(w);
	return (long)n;
}

void itr_alto_costmap_stream_free(void *cls)
{
	struct itr_alto_costmap_stream *w = cls;
	if (!w)
		return;
	costmap_writer_clear(w);
	if (w->owns_filter)
		itr_alto_costmap_filter_free(&w->owned);
	if (w->owns_map)
		itr_netmap_unref(w->map);
	stream_ended(w);
	free(w);
}

char *itr_alto_encode_endpointprop(const struct itr_netmap *map,
                                   const struct itr_alto_endpointprop_req *req)
{
	json_t *root = json_object(), *meta = json_object(), *deps = json_array();
	json_t *props = json_object();
	char pid_prop[ITR_NAME_MAX + 8], key[64], num[16];

	snprintf(pid_prop, sizeof(pid_prop), "%s.pid", itr_netmap_resource_id(map));
	json_array_append_new(deps, vtag_json(map));
	json_object_set_new(meta, "dependent-vtags", deps);
	json_object_set_new(root, "meta", meta);
	for (size_t i = 0; i < req->endpoints.n; i++) {
		const struct itr_alto_endpoint *ep = &req->endpoints.items[i];
		const struct itr_pid *pid = itr_netmap_lookup(map, ep->family, ep->addr);
		json_t *obj = json_object();
		/* Undefined values are omitted for that endpoint only (11.4.1.6). */
		if (pid && (req->want & ITR_ALTO_WANT_PID))
			json_object_set_new(obj, pid_prop, json_string(pid->name));
		if (pid && (req->want & ITR_ALTO_WANT_ASID)) {
			snprintf(num, sizeof(num), "%u", pid->asn);
			json_object_set_new(obj, ITR_ALTO_PROP_ASID, json_string(num));
		}
		if (pid && pid->loc != ITR_LOC_NONE && (req->want & ITR_ALTO_WANT_LOC)) {
			snprintf(num, sizeof(num), "%u", pid->loc);
			json_object_set_new(obj, ITR_ALTO_PROP_LOC, json_string(num));
		}
		json_object_set_new(props, itr_alto_endpoint_format(ep, key, sizeof(key)), obj);
	}
	json_object_set_new(root, "endpoint-properties", props);
	return dump_and_free(root);
}

struct ecs_pair {
	size_t s, d;
	double cost;
	uint32_t priority;
};

static int ecs_pair_order(const void *a, const void *b)
{
	const struct ecs_pair *x = a, *y = b;
	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1; /* higher BEP 40 priority first */
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return x->d < y->d ? -1 : x->d > y->d;
}

static uint32_t pair_priority(const struct itr_alto_endpoint *a, const struct itr_alto_endpoint *b)
{
	struct itr_peer_addr pa = {0}, pb = {0};
	if (a->family != b->family)
		return 0; /* BEP 40 defines no mixed-family priority */
	pa.family = a->family;
	pb.family = b->family;
	memcpy(pa.addr, a->addr, sizeof(pa.addr));
	memcpy(pb.addr, b->addr, sizeof(pb.addr));
	return itr_bep40_priority(&pa, &pb);
}

char *itr_alto_encode_endpointcost(const struct itr_netmap *map,
                                   const struct itr_alto_endpointcost_req *req,
                                   const struct itr_alto_endpoint *client,
                                   struct itr_alto_error *err)
{
	const struct itr_alto_endpoint *srcs = req->srcs.items, *dsts = req->dsts.items;
	size_t ns = req->srcs.n, nd = req->dsts.n, n;
	const struct itr_pid **spid = NULL, **dpid = NULL;
	struct ecs_pair *pairs = NULL;
	uint32_t *rank = NULL;
	double *cost = NULL;
	json_t *root, *meta, *ecm;
	char *text = NULL, key[64];

	memset(err, 0, sizeof(*err));
	/* An empty list stands for the client's own address (RFC 7285 11.5.1.3). */
	if (ns == 0 || nd == 0) {
		if (!client || (client->family != 4 && client->family != 6)) {
			fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "endpoints", NULL, NULL);
			return NULL;
		}
		if (ns == 0) {
			srcs = client;
			ns = 1;
		} else {
			dsts = client;
			nd = 1;
		}
	}
	/* m*n pairs cost memory and time: bound what one request may ask for. */
	if (ns > ITR_ALTO_MAX_PAIRS / nd) {
		fail(err, ITR_ALTO_E_INVALID_FIELD_VALUE, "endpoints", NULL, NULL);
		return NULL;
	}
	n = ns * nd;
	spid = calloc(ns, sizeof(*spid));
	dpid = calloc(nd, sizeof(*dpid));
	pairs = calloc(n, sizeof(*pairs));
	rank = calloc(n, sizeof(*rank));
	cost = calloc(n, sizeof(*cost));
	if (!spid || !dpid || !pairs || !rank || !cost)
		goto out;
	for (size_t s = 0; s < ns; s++)
		spid[s] = itr_netmap_lookup(map, srcs[s].family, srcs[s].addr);
	for (size_t d = 0; d < nd; d++)
		dpid[d] = itr_netmap_lookup(map, dsts[d].family, dsts[d].addr);
	for (size_t s = 0; s < ns; s++) {
		for (size_t d = 0; d < nd; d++) {
			struct ecs_pair *p = &pairs[s * nd + d];
			p->s = s;
			p->d = d;
			/* No PID: the map's "unknown" cost, so such peers rank last. */
			p->cost = itr_netmap_cost(map, spid[s], dpid[d]);
			cost[s * nd + d] = p->cost;
		}
	}
	if (req->mode == ITR_ALTO_ORDINAL) {
		/* A strict ranking of all m*n pairs: cost, then BEP 40 priority. */
		for (size_t k = 0; k < n; k++)
			pairs[k].priority = pair_priority(&srcs[pairs[k].s], &dsts[pairs[k].d]);
		qsort(pairs, n, sizeof(*pairs), ecs_pair_order);
		for (size_t k = 0; k < n; k++)
			rank[pairs[k].s * nd + pairs[k].d] = (uint32_t)k + 1;
	}

	root = json_object();
	meta = json_object();
	ecm = json_object();
	/* The ECS "uses" no network map (RFC 7285 11.5.1.5): cost-type only. */
	json_object_set_new(meta, "cost-type", cost_type_json(req->mode));
	json_object_set_new(root, "meta", meta);
	for (size_t s = 0; s < ns; s++) {
		json_t *row = json_object();
		for (size_t d = 0; d < nd; d++) {
			size_t k = s * nd + d;
			double v = req->mode == ITR_ALTO_ORDINAL ? rank[k] : cost[k];
			if (!itr_alto_constraints_pass(&req->constraints, v))
				continue;
			json_object_set_new(row,
			                    itr_alto_endpoint_format(&dsts[d], key, sizeof(key)),
			                    json_integer((json_int_t)v));
		}
		if (json_object_size(row))
			json_object_set_new(
			    ecm, itr_alto_endpoint_format(&srcs[s], key, sizeof(key)), row);
		else
			json_decref(row);
	}
	json_object_set_new(root, "endpoint-cost-map", ecm);
	text = dump_and_free(root);
out:
	free(spid);
	free(dpid);
	free(pairs);
	free(rank);
	free(cost);
	return text;
}

char *itr_alto_encode_error(const struct itr_alto_error *err)
{
	/* Field, value and syntax error quote the request's bytes, cut to fixed
	 * buffers: itr_json_text keeps each member, whatever those bytes are. */
	json_t *meta = json_object();
	json_object_set_new(meta, "code", json_string(itr_alto_code_name(err->code)));
	if (err->field[0])
		json_object_set_new(meta, "field", itr_json_text(err->field));
	/* RFC 7285 8.5.2: "value" only together with "field". */
	if (err->value[0] && err->field[0])
		json_object_set_new(meta, "value", itr_json_text(err->value));
	if (err->code == ITR_ALTO_E_SYNTAX)
		json_object_set_new(
		    meta, "syntax-error",
		    itr_json_text(err->syntax_error[0] ? err->syntax_error : "invalid request"));
	return dump_and_free(json_pack("{s:o}", "meta", meta));
}

/* ---- IRD and routes ------------------------------------------------------- */

enum route_kind {
	R_IRD,
	R_NETWORKMAP,
	R_COSTMAP_NUM,
	R_COSTMAP_ORD,
	R_NETWORKMAP_FILTERED,
	R_COSTMAP_FILTERED,
	R_ENDPOINTPROP,
	R_ENDPOINTCOST,
	R_ITRACKER_MAP,
	R_UPDATES, /* served by alto_updates.c; listed here for the IRD */
	R_COUNT,
};

static const struct route {
	enum route_kind kind;
	const char *path;
	const char *id;      /* resource id suffix (after the prefix); NULL: none */
	const char *accepts; /* POST media type; NULL for GET resources */
	const char *media;   /* response media type */
} routes[] = {
    {R_IRD, "/alto", NULL, NULL, ITR_ALTO_MT_DIRECTORY},
    {R_IRD, "/alto/ird", NULL, NULL, ITR_ALTO_MT_DIRECTORY},
    {R_NETWORKMAP, "/alto/networkmap", NULL, NULL, ITR_ALTO_MT_NETWORKMAP},
    {R_COSTMAP_NUM, "/alto/costmap/num-routingcost", "costmap-num-routingcost", NULL,
     ITR_ALTO_MT_COSTMAP},
    {R_COSTMAP_ORD, "/alto/costmap/ord-routingcost", "costmap-ord-routingcost", NULL,
     ITR_ALTO_MT_COSTMAP},
    {R_NETWORKMAP_FILTERED, "/alto/networkmap/filtered", "networkmap-filtered",
     ITR_ALTO_MT_NETWORKMAPFILTER, ITR_ALTO_MT_NETWORKMAP},
    {R_COSTMAP_FILTERED, "/alto/costmap/filtered", "costmap-filtered", ITR_ALTO_MT_COSTMAPFILTER,
     ITR_ALTO_MT_COSTMAP},
    {R_ENDPOINTPROP, "/alto/endpointprop", "endpoint-property", ITR_ALTO_MT_ENDPOINTPROPPARAMS,
     ITR_ALTO_MT_ENDPOINTPROP},
    {R_ENDPOINTCOST, "/alto/endpointcost", "endpoint-cost", ITR_ALTO_MT_ENDPOINTCOSTPARAMS,
     ITR_ALTO_MT_ENDPOINTCOST},
    {R_ITRACKER_MAP, "/alto/itracker-map", "itracker-map", NULL, ITR_ALTO_MT_ITRACKER_MAP},
    {R_UPDATES, "/alto/updates", "update-stream", ITR_ALTO_MT_UPDATESTREAMPARAMS,
     ITR_ALTO_MT_EVENT_STREAM},
};

/* The resources an update stream carries, in enum itr_alto_resource order. */
static const enum route_kind stream_resources[ITR_ALTO_RES_COUNT] = {R_NETWORKMAP, R_COSTMAP_NUM,
                                                                     R_COSTMAP_ORD, R_ITRACKER_MAP};

static const char *cfg_str(const char *s)
{
	return s ? s : "";
}

static json_t *ird_entry(const struct itr_alto_config *cfg, const char *path, const char *media,
                         const char *accepts)
{
	char uri[512];
	json_t *e;
	snprintf(uri, sizeof(uri), "%s%s", cfg_str(cfg->base_uri), path);
	e = json_pack("{s:s, s:s}", "uri", uri, "media-type", media);
	if (accepts)
		json_object_set_new(e, "accepts", json_string(accepts));
	return e;
}

char *itr_alto_encode_ird(const struct itr_netmap *map, const struct itr_alto_config *cfg)
{
	const char *nm = itr_netmap_resource_id(map);
	json_t *root = json_object(), *meta = json_object(), *res = json_object();
	char id[2 * ITR_NAME_MAX + 2], pid_prop[ITR_NAME_MAX + 8];

	json_object_set_new(meta, "cost-types",
	                    json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", COST_TYPE_NUM,
	                              "cost-mode", "numerical", "cost-metric", COST_METRIC,
	                              "description", "p-distance between PIDs (lower is better)",
	                              COST_TYPE_ORD, "cost-mode", "ordinal", "cost-metric",
	                              COST_METRIC, "description",
	                              "rank of the p-distance (1 = best)"));
	json_object_set_new(meta, "default-alto-network-map", json_string(nm));
	json_object_set_new(root, "meta", meta);
	snprintf(pid_prop, sizeof(pid_prop), "%s.pid", nm);

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		json_t *e;
		if (r->kind == R_IRD)
			continue;
		e = ird_entry(cfg, r->path, r->media, r->accepts);
		switch (r->kind) {
		case R_COSTMAP_NUM:
		case R_COSTMAP_ORD:
			/* A GET cost map names exactly one cost type (11.2.3.4). */
			json_object_set_new(
			    e, "capabilities",
			    json_pack("{s:[s]}", "cost-type-names",
			              r->kind == R_COSTMAP_NUM ? COST_TYPE_NUM : COST_TYPE_ORD));
			json_object_set_new(e, "uses", json_pack("[s]", nm));
			break;
		case R_NETWORKMAP_FILTERED:
			json_object_set_new(e, "uses", json_pack("[s]", nm));
			break;
		case R_COSTMAP_FILTERED:
			json_object_set_new(e, "capabilities",
			                    json_pack("{s:[s,s], s:b}", "cost-type-names",
			                              COST_TYPE_NUM, COST_TYPE_ORD,
			                              "cost-constraints", 1));
			json_object_set_new(e, "uses", json_pack("[s]", nm));
			break;
		case R_ENDPOINTPROP:
			json_object_set_new(e, "capabilities",
			                    json_pack("{s:[s,s,s]}", "prop-types", pid_prop,
			                              ITR_ALTO_PROP_ASID, ITR_ALTO_PROP_LOC));
			break;
		case R_UPDATES: {
			/* RFC 8895 8.3: what it can carry, and how changes come. */
			json_t *uses = json_array(), *inc = json_object();
			for (int k = 0; k < ITR_ALTO_RES_COUNT; k++) {
				char rid[2 * ITR_NAME_MAX + 2];
				itr_alto_resource_id(map, cfg, (enum itr_alto_resource)k, rid,
				                     sizeof(rid));
				json_array_append_new(uses, json_string(rid));
				json_object_set_new(inc, rid, json_string(ITR_ALTO_MT_MERGE_PATCH));
			}
			json_object_set_new(e, "uses", uses);
			json_object_set_new(e, "capabilities",
			                    json_pack("{s:o, s:b}",
			                              "incremental-change-media-types", inc,
			                              "support-stream-control", 1));
			break;
		}
		case R_ENDPOINTCOST:
			/* No "uses" for the ECS (11.5.1.5). */
			json_object_set_new(e, "capabilities",
			                    json_pack("{s:[s,s], s:b}", "cost-type-names",
			                              COST_TYPE_NUM, COST_TYPE_ORD,
			                              "cost-constraints", 1));
			break;
		default:
			break;
		}
		if (r->id)
			snprintf(id, sizeof(id), "%s%s", cfg_str(cfg->resource_prefix), r->id);
		else
			snprintf(id, sizeof(id), "%s", nm);
		json_object_set_new(res, id, e);
	}
	json_object_set_new(root, "resources", res);
	return dump_and_free(root);
}

const char *itr_alto_resource_id(const struct itr_netmap *map, const struct itr_alto_config *cfg,
                                 enum itr_alto_resource res, char *buf, size_t len)
{
	const struct route *r = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].kind == stream_resources[res])
			r = &routes[i];
	if (r && r->id)
		snprintf(buf, len, "%s%s", cfg_str(cfg ? cfg->resource_prefix : NULL), r->id);
	else
		snprintf(buf, len, "%s", itr_netmap_resource_id(map));
	return buf;
}

const char *itr_alto_resource_media(enum itr_alto_resource res)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].kind == stream_resources[res])
			return routes[i].media;
	return NULL;
}

char *itr_alto_resource_encode(const struct itr_netmap *map, enum itr_alto_resource res)
{
	switch (stream_resources[res]) {
	case R_NETWORKMAP:
		return itr_alto_encode_networkmap(map, NULL);
	case R_COSTMAP_NUM:
		return itr_alto_encode_costmap(map, ITR_ALTO_NUMERICAL, NULL);
	case R_COSTMAP_ORD:
		return itr_alto_encode_costmap(map, ITR_ALTO_ORDINAL, NULL);
	case R_ITRACKER_MAP:
		return dump_and_free(itr_netmap_alto_document(map));
	default:
		return NULL;
	}
}

/* ---- HTTP ------------------------------------------------------------------ */

/* One ALTO service per process: the config lives in static storage, so
 * nothing is allocated per registration. */
static struct {
	char base_uri[256];
	char resource_prefix[ITR_NAME_MAX + 1];
	struct itr_alto_config cfg;
} alto_state;

/* Encoded GET responses of the map with this vtag, shared by all threads;
 * keyed by resource id + vtag rather than holding a map reference, so a
 * reload frees the old map as soon as its readers are done. */
/* The bodies are shared (http.h): every client is sent the one copy, so
 * 60 clients that GET a 24 MB cost map and never read it hold 24 MB, not
 * 60 x 24 MB. A reload drops the cache's reference; answers still being
 * sent keep theirs. */
static struct {
	pthread_mutex_t lock;
	char key[2 * (ITR_NAME_MAX + 1) + 2];
	struct itr_http_shared *body[R_COUNT];
} get_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Filtered cost maps asked for again (the same request body against the
 * same map) come from here: building one can take long and weigh
 * megabytes. Small answers are cheap to build and not kept; large ones
 * (more than ITR_ALTO_MAX_PAIRS pairs) are written as they are sent and
 * never held whole, so not kept either. */
#define FILTERED_CACHE_SLOTS 2
#define FILTERED_CACHE_MIN   (64 * 1024)
static struct {
	pthread_mutex_t lock;
	struct {
		char key[2 * (ITR_NAME_MAX + 1) + 2];
		char *request;
		size_t request_len;
		struct itr_http_shared *body;
		uint64_t used;
	} slot[FILTERED_CACHE_SLOTS];
	uint64_t clock;
} filtered_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Large filtered maps being written to clients: each is written on a
 * polling thread, piece by piece, so a few at once, and one per address
 * (one client's slow readers cannot take them all). */
#define LARGE_STREAMS 4
static struct {
	pthread_mutex_t lock;
	bool used[LARGE_STREAMS];
	struct sockaddr_storage peer[LARGE_STREAMS];
} large_streams = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A place for a large stream to peer: its index, or -1 (all taken, or
 * this address has one). */
static intptr_t large_stream_claim(const struct sockaddr_storage *peer)
{
	intptr_t slot = -1;
	pthread_mutex_lock(&large_streams.lock);
	for (intptr_t i = 0; i < LARGE_STREAMS; i++) {
		if (large_streams.used[i] && itr_http_same_address(&large_streams.peer[i], peer)) {
			slot = -1;
			break;
		}
		if (!large_streams.used[i] && slot < 0)
			slot = i;
	}
	if (slot >= 0) {
		large_streams.used[slot] = true;
		large_streams.peer[slot] = *peer;
	}
	pthread_mutex_unlock(&large_streams.lock);
	return slot;
}

static void large_stream_release(void *slot)
{
	pthread_mutex_lock(&large_streams.lock);
	large_streams.used[(intptr_t)slot] = false;
	pthread_mutex_unlock(&large_streams.lock);
}

static void map_key(const struct itr_netmap *map, char *key, size_t len)
{
	snprintf(key, len, "%s\n%s", itr_netmap_resource_id(map), itr_netmap_vtag(map));
}

/* A reference to the cached answer for this map and request, or NULL. */
static struct itr_http_shared *filtered_lookup(const struct itr_netmap *map, const char *request,
                                               size_t len)
{
	char key[sizeof(filtered_cache.slot[0].key)];
	struct itr_http_shared *hit = NULL;
	map_key(map, key, sizeof(key));
	pthread_mutex_lock(&filtered_cache.lock);
	for (int i = 0; i < FILTERED_CACHE_SLOTS && !hit; i++) {
		if (!filtered_cache.slot[i].body || strcmp(filtered_cache.slot[i].key, key) != 0 ||
		    filtered_cache.slot[i].request_len != len ||
		    memcmp(filtered_cache.slot[i].request, request, len) != 0)
			continue;
		hit = itr_http_shared_ref(filtered_cache.slot[i].body);
		filtered_cache.slot[i].used = ++filtered_cache.clock;
	}
	pthread_mutex_unlock(&filtered_cache.lock);
	return hit;
}

static void filtered_store(const struct itr_netmap *map, const char *request, size_t len,
                           struct itr_http_shared *body)
{
	char *copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, request, len);
	pthread_mutex_lock(&filtered_cache.lock);
	int victim = 0;
	for (int i = 1; i < FILTERED_CACHE_SLOTS; i++)
		if (filtered_cache.slot[i].used < filtered_cache.slot[victim].used)
			victim = i;
	itr_http_shared_unref(filtered_cache.slot[victim].body);
	free(filtered_cache.slot[victim].request);
	map_key(map, filtered_cache.slot[victim].key, sizeof(filtered_cache.slot[victim].key));
	filtered_cache.slot[victim].request = copy;
	filtered_cache.slot[victim].request_len = len;
	filtered_cache.slot[victim].body = itr_http_shared_ref(body);
	filtered_cache.slot[victim].used = ++filtered_cache.clock;
	pthread_mutex_unlock(&filtered_cache.lock);
}

static struct itr_http_shared *cached_get(const struct itr_netmap *map, enum route_kind kind)
{
	char key[sizeof(get_cache.key)];
	struct itr_http_shared *ref = NULL;

	map_key(map, key, sizeof(key));
	pthread_mutex_lock(&get_cache.lock);
	if (strcmp(key, get_cache.key) != 0) {
		for (int i = 0; i < R_COUNT; i++) {
			itr_http_shared_unref(get_cache.body[i]);
			get_cache.body[i] = NULL;
		}
		memcpy(get_cache.key, key, sizeof(key));
	}
	if (!get_cache.body[kind]) {
		char *body = NULL;
		if (kind == R_IRD)
			body = itr_alto_encode_ird(map, &alto_state.cfg);
		for (int k = 0; k < ITR_ALTO_RES_COUNT; k++)
			if (stream_resources[k] == kind)
				body = itr_alto_resource_encode(map, (enum itr_alto_resource)k);
		get_cache.body[kind] = body ? itr_http_shared_new(body, strlen(body)) : NULL;
	}
	ref = itr_http_shared_ref(get_cache.body[kind]);
	pthread_mutex_unlock(&get_cache.lock);
	return ref;
}

/* Answer with a shared body (dropping the reference the caller got). */
static void set_shared(struct itr_http_response *resp, const char *media,
                       struct itr_http_shared *body)
{
	if (!body) {
		itr_http_set_body(resp, 500, "text/plain", strdup("out of memory\n"), 14);
		return;
	}
	itr_http_set_shared(resp, 200, media, body);
	itr_http_shared_unref(body);
}

static void set_text(struct itr_http_response *resp, int status, const char *msg)
{
	char *body = strdup(msg);
	itr_http_set_body(resp, status, "text/plain", body, body ? strlen(body) : 0);
}

static void set_json(struct itr_http_response *resp, int status, const char *media, char *body)
{
	if (!body) {
		set_text(resp, 500, "out of memory\n");
		return;
	}
	itr_http_set_body(resp, status, media, body, strlen(body));
}

static void set_error(struct itr_http_response *resp, int status, const struct itr_alto_error *err)
{
	set_json(resp, status, ITR_ALTO_MT_ERROR, itr_alto_encode_error(err));
}

/* Compare the media type of a Content-Type header, ignoring parameters
 * ("; charset=utf-8"), case and surrounding blanks. */
static bool media_type_is(const char *header, const char *want)
{
	size_t n;
	if (!header)
		return false;
	while (*header == ' ' || *header == '\t')
		header++;
	n = strcspn(header, ";");
	while (n && (header[n - 1] == ' ' || header[n - 1] == '\t'))
		n--;
	return n == strlen(want) && strncasecmp(header, want, n) == 0;
}

static bool client_endpoint(const struct itr_http_request *req, struct itr_alto_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	if (req->peer.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&req->peer;
		out->family = 4;
		memcpy(out->addr, &sin->sin_addr, 4);
		return true;
	}
	if (req->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&req->peer;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			out->family = 4;
			memcpy(out->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			out->family = 6;
			memcpy(out->addr, &sin6->sin6_addr, 16);
		}
		return true;
	}
	return false;
}

static void handle_post(const struct route *r, struct itr_netmap *map,
                        const struct itr_http_request *req, struct itr_http_response *resp)
{
	struct itr_alto_error err;
	size_t len = req->body ? req->body_len : 0;
	char *body = NULL;

	switch (r->kind) {
	case R_NETWORKMAP_FILTERED: {
		struct itr_alto_netmap_filter f;
		if (itr_alto_parse_netmap_filter(req->body, len, &f, &err) < 0)
			break;
		body = itr_alto_encode_networkmap(map, &f);
		itr_alto_netmap_filter_free(&f);
		set_json(resp, 200, r->media, body);
		return;
	}
	case R_COSTMAP_FILTERED: {
		struct itr_alto_costmap_filter f;
		if (itr_alto_parse_costmap_filter(req->body, len, &f, &err) < 0)
			break;
		/* No filter at all: the full map, from the GET cache. */
		if (!f.constraints.ngroups && !f.srcs.n && !f.dsts.n) {
			enum route_kind full =
			    f.mode == ITR_ALTO_ORDINAL ? R_COSTMAP_ORD : R_COSTMAP_NUM;
			itr_alto_costmap_filter_free(&f);
			set_shared(resp, r->media, cached_get(map, full));
			return;
		}
		size_t npids = itr_netmap_pid_count(map);
		size_t pairs = (f.srcs.n ? f.srcs.n : npids) * (f.dsts.n ? f.dsts.n : npids);
		if (pairs > ITR_ALTO_MAX_PAIRS) {
			/* Large: written as the client takes it, never held whole
			 * (a whole 18.8 MB answer took a fresh daemon's RSS to
			 * 3.4x), and so not cached; LARGE_STREAMS at once. */
			intptr_t slot = large_stream_claim(&req->peer);
			if (slot < 0) {
				itr_alto_costmap_filter_free(&f);
				set_text(
				    resp, 503,
				    "too many large filtered cost maps being sent, retry later\n");
				return;
			}
			struct itr_alto_costmap_stream *gen = itr_alto_costmap_stream_new(
			    map, &f, large_stream_release, (void *)slot);
			itr_alto_costmap_filter_free(&f);
			if (!gen) {
				large_stream_release((void *)slot);
				set_text(resp, 500, "out of memory\n");
				return;
			}
			itr_http_set_generator(resp, 200, r->media, itr_alto_costmap_stream_fill,
			                       itr_alto_costmap_stream_free, gen);
			return;
		}
		struct itr_http_shared *hit = filtered_lookup(map, req->body, len);
		if (hit) {
			itr_alto_costmap_filter_free(&f);
			set_shared(resp, r->media, hit);
			return;
		}
		body = itr_alto_encode_costmap(map, f.mode, &f);
		itr_alto_costmap_filter_free(&f);
		size_t blen = body ? strlen(body) : 0;
		struct itr_http_shared *sh = NULL;
		if (blen >= FILTERED_CACHE_MIN) {
			sh = itr_http_shared_new(body, blen);
			body = NULL;
			if (sh)
				filtered_store(map, req->body, len, sh);
		}
		if (sh)
			set_shared(resp, r->media, sh);
		else
			set_json(resp, 200, r->media, body);
		return;
	}
	case R_ENDPOINTPROP: {
		struct itr_alto_endpointprop_req q;
		if (itr_alto_parse_endpointprop(req->body, len, itr_netmap_resource_id(map), &q,
		                                &err) < 0)
			break;
		body = itr_alto_encode_endpointprop(map, &q);
		itr_alto_endpointprop_req_free(&q);
		set_json(resp, 200, r->media, body);
		return;
	}
	case R_ENDPOINTCOST: {
		struct itr_alto_endpointcost_req q;
		struct itr_alto_endpoint client;
		bool have_client;
		if (itr_alto_parse_endpointcost(req->body, len, &q, &err) < 0)
			break;
		have_client = client_endpoint(req, &client);
		body = itr_alto_encode_endpointcost(map, &q, have_client ? &client : NULL, &err);
		itr_alto_endpointcost_req_free(&q);
		if (!body && err.code != ITR_ALTO_OK)
			break;
		set_json(resp, 200, r->media, body);
		return;
	}
	default:
		set_text(resp, 500, "internal error\n");
		return;
	}
	set_error(resp, 400, &err);
}

static void alto_handle(const struct itr_http_request *req, struct itr_http_response *resp,
                        void *arg)
{
	const struct route *r = arg;
	struct itr_netmap *map;
	bool is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

	/* GET and POST are not interchangeable (RFC 7285 8.3.2). */
	if (r->accepts ? strcmp(req->method, "POST") != 0 : !is_get) {
		set_text(resp, 405, r->accepts ? "use POST\n" : "use GET\n");
		return;
	}
	if (r->accepts && !media_type_is(req->content_type, r->accepts)) {
		struct itr_alto_error err = {.code = ITR_ALTO_E_SYNTAX};
		snprintf(err.syntax_error, sizeof(err.syntax_error), "Content-Type must be %s",
		         r->accepts);
		set_error(resp, 415, &err);
		return;
	}
	map = itr_netmap_current();
	if (!map) {
		set_text(resp, 503, "no network map loaded\n");
		return;
	}
	if (r->accepts) {
		handle_post(r, map, req, resp);
	} else {
		set_shared(resp, r->media, cached_get(map, r->kind));
	}
	itr_netmap_unref(map);
}

int itr_alto_register(struct itr_http_server *srv, const struct itr_alto_config *cfg)
{
	const char *prefix = cfg ? cfg_str(cfg->resource_prefix) : "";
	const char *base = cfg ? cfg_str(cfg->base_uri) : "";
	char probe[2 * ITR_NAME_MAX + 2];

	if (!srv || strlen(base) >= sizeof(alto_state.base_uri) ||
	    strlen(prefix) >= sizeof(alto_state.resource_prefix))
		return -EINVAL;
	/* Every derived resource id must itself be a valid ResourceID. */
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!routes[i].id)
			continue;
		snprintf(probe, sizeof(probe), "%s%s", prefix, routes[i].id);
		if (!valid_pid_name(probe))
			return -EINVAL;
	}
	snprintf(alto_state.base_uri, sizeof(alto_state.base_uri), "%s", base);
	snprintf(alto_state.resource_prefix, sizeof(alto_state.resource_prefix), "%s", prefix);
	alto_state.cfg.base_uri = alto_state.base_uri;
	alto_state.cfg.resource_prefix = alto_state.resource_prefix;
	pthread_mutex_lock(&get_cache.lock);
	get_cache.key[0] = '\0'; /* the IRD depends on the config */
	pthread_mutex_unlock(&get_cache.lock);

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (routes[i].kind == R_UPDATES)
			continue; /* below */
		/* Any method: the handler answers 405 itself for the wrong one.
		 * The work grows with the map and the request: on the HTTP
		 * worker pool, where it cannot hold up /v1/status or /metrics. */
		int rc = itr_http_route(srv, NULL, routes[i].path, alto_handle, (void *)&routes[i]);
		if (rc < 0 || (rc = itr_http_offload(srv, routes[i].path)) < 0)
			return rc;
	}
	return itr_alto_updates_register(srv, &alto_state.cfg, NULL);
}
