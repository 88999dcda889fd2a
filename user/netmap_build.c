/* netmap_build.c - the netmap builder: collects what a parser read, checks
 * the whole-map rules (unknown PIDs, a prefix in two PIDs, duplicate ids,
 * tier order, default-PID conflicts) and freezes an indexed struct
 * itr_netmap (name and id indexes, longest-prefix tables, cost hash, vtag).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "byte_order.h"
#include "netmap_build.h"

const char *const itr_tier_names[ITR_TIER_MAX] = {"same-pid", "same-loc", "same-as", "other-as"};
static const uint32_t default_tiers[ITR_TIER_MAX] = {1, 5, 10, 100};

struct nm_name {
	char text[ITR_NAME_MAX + 1];
	int line, col; /* first mention */
	int32_t decl;  /* index into decls, -1 if never declared */
};

struct nm_decl {
	uint32_t name;
	uint32_t id, asn, loc;
	bool have_id;
	int line, col;
};

struct nm_pref {
	struct itr_prefix p;
	uint32_t name;
	int line, col;
};

struct nm_cost_decl {
	uint32_t src, dst, cost;
	int line, col;
};

struct nm_link_decl {
	struct itr_link link;
	int line, col;
};

struct nm_builder {
	struct itr_netmap_error *err;
	bool failed;
	bool json;

	char resource_id[ITR_NAME_MAX + 1];
	int rid_line;

	uint32_t tiers[ITR_TIER_MAX];
	int tier_line[ITR_TIER_MAX]; /* 0: not given */
	bool tier_set[ITR_TIER_MAX];

	uint32_t default_name;
	int default_line, default_col;

	struct nm_name *names;
	size_t nnames, cap_names;
	uint32_t *name_table; /* open addressing, UINT32_MAX = empty */
	size_t name_mask;

	struct nm_decl *decls;
	size_t ndecls, cap_decls;
	struct nm_pref *prefs;
	size_t nprefs, cap_prefs;
	struct nm_cost_decl *costs;
	size_t ncosts, cap_costs;
	struct nm_link_decl *links;
	size_t nlinks, cap_links;
};

int nm_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*arr, ncap * elem);
	if (!n)
		return -1;
	*arr = n;
	*cap = ncap;
	return 0;
}

struct nm_builder *nm_builder_new(const char *filename, bool json, struct itr_netmap_error *err)
{
	struct nm_builder *b = calloc(1, sizeof(*b));
	if (!b) {
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->reason, sizeof(err->reason), "out of memory");
		}
		return NULL;
	}
	b->err = err;
	b->json = json;
	if (err) {
		memset(err, 0, sizeof(*err));
		snprintf(err->file, sizeof(err->file), "%s", filename ? filename : "<memory>");
	}
	snprintf(b->resource_id, sizeof(b->resource_id), "networkmap");
	b->default_name = UINT32_MAX;
	b->name_mask = 63;
	b->name_table = malloc((b->name_mask + 1) * sizeof(uint32_t));
	if (!b->name_table) {
		free(b);
		return NULL;
	}
	memset(b->name_table, 0xff, (b->name_mask + 1) * sizeof(uint32_t));
	return b;
}

struct nm_builder *nm_builder_for_file(const char *filename, bool json, size_t len,
                                       struct itr_netmap_error *err)
{
	struct nm_builder *b = nm_builder_new(filename, json, err);
	if (b && len > ITR_NETMAP_MAX_FILE) {
		nm_error(b, 0, 0, "map is %zu bytes; the limit is %u MiB", len,
		         ITR_NETMAP_MAX_FILE >> 20);
		nm_builder_free(b);
		return NULL;
	}
	return b;
}

void nm_builder_free(struct nm_builder *b)
{
	if (!b)
		return;
	free(b->names);
	free(b->name_table);
	free(b->decls);
	free(b->prefs);
	free(b->costs);
	free(b->links);
	free(b);
}

int nm_error(struct nm_builder *b, int line, int col, const char *fmt, ...)
{
	if (b->failed)
		return -1;
	b->failed = true;
	if (b->err) {
		b->err->line = line;
		b->err->column = col;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(b->err->reason, sizeof(b->err->reason), fmt, ap);
		va_end(ap);
	}
	return -1;
}

bool nm_failed(const struct nm_builder *b)
{
	return b->failed;
}

/* FNV-1a: names come from the operator's own file, not from the network. */
static uint32_t name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t table_find(const struct nm_builder *b, const char *s, size_t len, size_t *slot)
{
	size_t i = name_hash(s, len) & b->name_mask;
	for (;;) {
		uint32_t idx = b->name_table[i];
		if (idx == UINT32_MAX) {
			*slot = i;
			return UINT32_MAX;
		}
		const char *t = b->names[idx].text;
		if (strncmp(t, s, len) == 0 && t[len] == '\0')
			return idx;
		i = (i + 1) & b->name_mask;
	}
}

static int table_grow(struct nm_builder *b)
{
	size_t nmask = b->name_mask * 2 + 1;
	uint32_t *nt = malloc((nmask + 1) * sizeof(uint32_t));
	if (!nt)
		return -1;
	memset(nt, 0xff, (nmask + 1) * sizeof(uint32_t));
	for (size_t n = 0; n < b->nnames; n++) {
		const char *t = b->names[n].text;
		size_t i = name_hash(t, strlen(t)) & nmask;
		while (nt[i] != UINT32_MAX)
			i = (i + 1) & nmask;
		nt[i] = (uint32_t)n;
	}
	free(b->name_table);
	b->name_table = nt;
	b->name_mask = nmask;
	return 0;
}

uint32_t nm_intern(struct nm_builder *b, const char *name, size_t len, int line, int col)
{
	char why[128];
	if (!itr_netmap_name_valid(name, len, why, sizeof(why))) {
		nm_error(b, line, col, "bad PID name '%.*s': %s", (int)(len > 80 ? 80 : len), name,
		         why);
		return UINT32_MAX;
	}
	size_t slot;
	uint32_t idx = table_find(b, name, len, &slot);
	if (idx != UINT32_MAX)
		return idx;
	if (nm_grow((void **)&b->names, &b->cap_names, b->nnames + 1, sizeof(*b->names))) {
		nm_error(b, line, col, "out of memory");
		return UINT32_MAX;
	}
	idx = (uint32_t)b->nnames++;
	struct nm_name *n = &b->names[idx];
	memcpy(n->text, name, len);
	n->text[len] = '\0';
	n->line = line;
	n->col = col;
	n->decl = -1;
	b->name_table[slot] = idx;
	if (b->nnames * 2 > b->name_mask && table_grow(b)) {
		nm_error(b, line, col, "out of memory");
		return UINT32_MAX;
	}
	return idx;
}

uint32_t nm_find(const struct nm_builder *b, const char *name)
{
	size_t slot;
	return table_find(b, name, strlen(name), &slot);
}

const char *nm_name(const struct nm_builder *b, uint32_t name)
{
	return b->names[name].text;
}

bool nm_declared(const struct nm_builder *b, uint32_t name)
{
	return name < b->nnames && b->names[name].decl >= 0;
}

const char *nm_resource_id(const struct nm_builder *b)
{
	return b->resource_id;
}

int nm_set_resource_id(struct nm_builder *b, const char *rid, int line, int col)
{
	char why[128];
	if (b->rid_line)
		return nm_error(b, line, col, "network-map given twice (first at line %d)",
		                b->rid_line);
	if (!itr_netmap_name_valid(rid, strlen(rid), why, sizeof(why)))
		return nm_error(b, line, col, "bad resource id '%.80s': %s", rid, why);
	snprintf(b->resource_id, sizeof(b->resource_id), "%s", rid);
	b->rid_line = line ? line : -1;
	return 0;
}

int nm_declare_pid(struct nm_builder *b, uint32_t name, bool have_id, uint32_t id, uint32_t asn,
                   uint32_t loc, int line, int col)
{
	struct nm_name *n = &b->names[name];
	if (n->decl >= 0) {
		const struct nm_decl *d = &b->decls[n->decl];
		if (b->json)
			return nm_error(b, line, col, "duplicate PID '%s'", n->text);
		return nm_error(b, line, col, "duplicate PID '%s' (first declared at line %d)",
		                n->text, d->line);
	}
	if (have_id && (id == ITR_PID_NONE || id > ITR_PID_ID_MAX))
		return nm_error(b, line, col, "PID '%s': id %u out of range 1..%u", n->text, id,
		                ITR_PID_ID_MAX);
	if (nm_grow((void **)&b->decls, &b->cap_decls, b->ndecls + 1, sizeof(*b->decls)))
		return nm_error(b, line, col, "out of memory");
	n->decl = (int32_t)b->ndecls;
	b->decls[b->ndecls++] = (struct nm_decl){
	    .name = name,
	    .id = id,
	    .asn = asn,
	    .loc = loc,
	    .have_id = have_id,
	    .line = line,
	    .col = col,
	};
	return 0;
}

int nm_add_prefix(struct nm_builder *b, uint32_t name, const struct itr_prefix *p, int line,
                  int col)
{
	if (nm_grow((void **)&b->prefs, &b->cap_prefs, b->nprefs + 1, sizeof(*b->prefs)))
		return nm_error(b, line, col, "out of memory");
	b->prefs[b->nprefs++] = (struct nm_pref){.p = *p, .name = name, .line = line, .col = col};
	return 0;
}

int nm_set_tier(struct nm_builder *b, enum itr_tier tier, uint32_t value, int line, int col)
{
	if (b->tier_set[tier])
		return nm_error(b, line, col, "tier %s given twice", itr_tier_names[tier]);
	/* The other-as tier plus one is the cost of an unmatched end. */
	if (value > UINT32_MAX - 1)
		return nm_error(b, line, col, "tier %s: %u is too large (at most %u)",
		                itr_tier_names[tier], value, UINT32_MAX - 1);
	b->tier_set[tier] = true;
	b->tiers[tier] = value;
	b->tier_line[tier] = line;
	return 0;
}

int nm_add_cost(struct nm_builder *b, uint32_t src, uint32_t dst, uint32_t cost, int line, int col)
{
	if (nm_grow((void **)&b->costs, &b->cap_costs, b->ncosts + 1, sizeof(*b->costs)))
		return nm_error(b, line, col, "out of memory");
	b->costs[b->ncosts++] =
	    (struct nm_cost_decl){.src = src, .dst = dst, .cost = cost, .line = line, .col = col};
	return 0;
}

int nm_set_default(struct nm_builder *b, uint32_t name, int line, int col)
{
	if (b->default_name != UINT32_MAX)
		return nm_error(b, line, col, "default-pid given twice (first at line %d)",
		                b->default_line);
	b->default_name = name;
	b->default_line = line;
	b->default_col = col;
	return 0;
}

/* ---- finishing ---------------------------------------------------------- */

/* qsort with an empty (possibly NULL) array is undefined behaviour. */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* qsort has no context argument in C11; finishing is single-threaded per
 * builder but parsers may run in parallel threads, so keep it per thread. */
static _Thread_local const struct nm_builder *sort_builder;

static int cmp_pref(const void *a, const void *b)
{
	const struct nm_pref *x = a, *y = b;
	int c = itr_prefix_cmp(&x->p, &y->p);
	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

static int cmp_decl_id(const void *a, const void *b)
{
	const struct nm_decl *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_decl_name(const void *a, const void *b)
{
	const struct nm_decl *x = a, *y = b;
	return strcmp(sort_builder->names[x->name].text, sort_builder->names[y->name].text);
}

static int cmp_cost_decl(const void *a, const void *b)
{
	const struct nm_cost_decl *x = a, *y = b;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	if (x->dst != y->dst)
		return x->dst < y->dst ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static _Thread_local const struct itr_pid *sort_pid_base;

static int cmp_by_id(const void *a, const void *b)
{
	uint32_t x = sort_pid_base[*(const uint32_t *)a].id;
	uint32_t y = sort_pid_base[*(const uint32_t *)b].id;
	return x < y ? -1 : x > y;
}

static void map_free(struct itr_netmap *m)
{
	if (!m)
		return;
	if (m->base) {
		/* derived: every table belongs to the base */
		free(m->link_extra);
		itr_netmap_unref(m->base);
		free(m);
		return;
	}
	free(m->links);
	free(m->pids);
	free(m->by_id);
	free(m->prefix_store);
	free(m->entries);
	free(m->costs);
	free(m->lpm4);
	for (int l = 0; l <= 32; l++)
		free(m->lpm4_top16[l]);
	free(m->lpm6);
	free(m);
}

void itr_netmap_free_internal(struct itr_netmap *m);
void itr_netmap_free_internal(struct itr_netmap *m)
{
	map_free(m);
}

static int check_unknown_names(struct nm_builder *b)
{
	/* Names are interned in order of first mention, so the first one
	 * never declared is also the earliest such mention. */
	for (size_t i = 0; i < b->nnames; i++) {
		const struct nm_name *n = &b->names[i];
		if (n->decl < 0)
			return nm_error(b, n->line, n->col, "unknown PID '%s'", n->text);
	}
	return 0;
}

static int assign_ids(struct nm_builder *b)
{
	size_t nused = 0;
	uint32_t *used = malloc((b->ndecls + 1) * sizeof(uint32_t));
	struct nm_decl *sorted = malloc((b->ndecls + 1) * sizeof(*sorted));
	if (!used || !sorted) {
		free(used);
		free(sorted);
		return nm_error(b, 0, 0, "out of memory");
	}
	size_t nsorted = 0;
	for (size_t i = 0; i < b->ndecls; i++)
		if (b->decls[i].have_id)
			sorted[nsorted++] = b->decls[i];
	sort_n(sorted, nsorted, sizeof(*sorted), cmp_decl_id);
	for (size_t i = 0; i < nsorted; i++) {
		if (i > 0 && sorted[i].id == sorted[i - 1].id) {
			const struct nm_decl *d = &sorted[i], *first = &sorted[i - 1];
			int rc;
			if (b->json)
				rc = nm_error(
				    b, 0, 0, "itracker.pids.%s.id: id %u already used by PID '%s'",
				    b->names[d->name].text, d->id, b->names[first->name].text);
			else
				rc = nm_error(b, d->line, d->col,
				              "PID id %u already used by PID '%s' (line %d)", d->id,
				              b->names[first->name].text, first->line);
			free(used);
			free(sorted);
			return rc;
		}
		used[nused++] = sorted[i].id;
	}
	/* The rest, in byte order of their names, take the free ids from 1. */
	nsorted = 0;
	for (size_t i = 0; i < b->ndecls; i++)
		if (!b->decls[i].have_id)
			sorted[nsorted++] = b->decls[i];
	if (nsorted) {
		sort_builder = b;
		sort_n(sorted, nsorted, sizeof(*sorted), cmp_decl_name);
		uint32_t next = 1;
		size_t u = 0;
		for (size_t i = 0; i < nsorted; i++) {
			while (u < nused && used[u] < next)
				u++;
			while (u < nused && used[u] == next) {
				next++;
				u++;
			}
			b->decls[b->names[sorted[i].name].decl].id = next;
			b->decls[b->names[sorted[i].name].decl].have_id = true;
			next++;
		}
	}
	free(used);
	free(sorted);
	return 0;
}

static int check_tiers(struct nm_builder *b)
{
	for (int t = 0; t < ITR_TIER_MAX; t++)
		if (!b->tier_set[t])
			b->tiers[t] = default_tiers[t];
	for (int t = 1; t < ITR_TIER_MAX; t++) {
		if (b->tiers[t] >= b->tiers[t - 1])
			continue;
		int line = b->tier_set[t] ? b->tier_line[t] : b->tier_line[t - 1];
		if (b->json)
			return nm_error(b, 0, 0,
			                "itracker.tiers: tier %s (%u) is below tier %s (%u); tiers "
			                "must not decrease from same-pid to other-as",
			                itr_tier_names[t], b->tiers[t], itr_tier_names[t - 1],
			                b->tiers[t - 1]);
		return nm_error(b, line, 0,
		                "tier %s (%u) is below tier %s (%u); tiers must not decrease "
		                "from same-pid to other-as",
		                itr_tier_names[t], b->tiers[t], itr_tier_names[t - 1],
		                b->tiers[t - 1]);
	}
	return 0;
}

static void pref_site(const struct nm_builder *b, const struct nm_pref *p, char *buf, size_t len)
{
	if (b->json)
		snprintf(buf, len, "network-map.network-map.%s.ipv%d[%d]", b->names[p->name].text,
		         p->p.family, p->col);
	else
		snprintf(buf, len, "line %d", p->line);
}

static int check_prefixes(struct nm_builder *b)
{
	sort_n(b->prefs, b->nprefs, sizeof(*b->prefs), cmp_pref);
	for (size_t i = 1; i < b->nprefs; i++) {
		const struct nm_pref *p = &b->prefs[i], *q = &b->prefs[i - 1];
		if (itr_prefix_cmp(&p->p, &q->p) != 0)
			continue;
		char text[64], site[160];
		itr_prefix_format(&p->p, text, sizeof(text));
		pref_site(b, q, site, sizeof(site));
		const char *here = "";
		char path[160] = "";
		if (b->json) {
			pref_site(b, p, path, sizeof(path));
			here = ": ";
		}
		if (p->name == q->name)
			return nm_error(b, p->line, p->col,
			                "%s%sprefix %s listed twice for PID '%s' (%s)", path, here,
			                text, b->names[p->name].text, site);
		return nm_error(
		    b, p->line, p->col,
		    "%s%sprefix %s already belongs to PID '%s' (%s); a prefix may be in "
		    "one PID only",
		    path, here, text, b->names[q->name].text, site);
	}
	if (b->default_name != UINT32_MAX) {
		for (size_t i = 0; i < b->nprefs; i++) {
			if (b->prefs[i].p.len != 0)
				continue;
			char text[64];
			itr_prefix_format(&b->prefs[i].p, text, sizeof(text));
			return nm_error(
			    b, b->default_line, b->default_col,
			    "%sdefault-pid '%s' conflicts with the explicit prefix %s of PID "
			    "'%s'; use one or the other",
			    b->json ? "itracker.default-pid: " : "", b->names[b->default_name].text,
			    text, b->names[b->prefs[i].name].text);
		}
	}
	return 0;
}

int nm_add_link(struct nm_builder *b, const struct itr_link *in, int line, int col)
{
	const char *where = b->json ? "itracker.links." : "link ";
	struct itr_link l = *in;
	char why[128];
	if (!itr_netmap_name_valid(l.name, strlen(l.name), why, sizeof(why)))
		return nm_error(b, line, col, "%s%.64s: bad link name: %s", where, l.name, why);
	if (l.peer_asn == l.asn)
		return nm_error(b, line, col, "%s%s: peer-asn equals asn %u", where, l.name, l.asn);
	if (l.budget_pct > 100 || (l.budget_pct == 0 && l.budget_bps == 0))
		return nm_error(b, line, col, "%s%s: budget share must be 1..100 %%", where,
		                l.name);
	if (l.budget_pct)
		l.budget_bps = (l.capacity_bps * l.budget_pct + 50) / 100;
	if (l.budget_bps > l.capacity_bps)
		return nm_error(
		    b, line, col, "%s%s: budget %llu bit/s exceeds the capacity %llu bit/s", where,
		    l.name, (unsigned long long)l.budget_bps, (unsigned long long)l.capacity_bps);
	const struct itr_link *link = &l;
	if (nm_grow((void **)&b->links, &b->cap_links, b->nlinks + 1, sizeof(*b->links)))
		return nm_error(b, line, col, "out of memory");
	b->links[b->nlinks].link = *link;
	b->links[b->nlinks].line = line;
	b->links[b->nlinks].col = col;
	b->nlinks++;
	return 0;
}

static int cmp_link_decl(const void *pa, const void *pb)
{
	const struct nm_link_decl *a = pa, *b = pb;
	return strcmp(a->link.name, b->link.name);
}

static bool asn_in_use(const struct nm_builder *b, uint32_t asn)
{
	for (size_t i = 0; i < b->ndecls; i++)
		if (b->decls[i].asn == asn)
			return true;
	return false;
}

/* A link's ASes must be the map's, a name and an AS pair (or an AS's
 * uplink) may be declared once. */
static int check_links(struct nm_builder *b)
{
	const char *where = b->json ? "itracker.links." : "link ";
	for (size_t i = 0; i < b->nlinks; i++) {
		const struct nm_link_decl *d = &b->links[i];
		const struct itr_link *l = &d->link;
		if (!asn_in_use(b, l->asn))
			return nm_error(b, d->line, d->col, "%s%s: no PID has asn %u", where,
			                l->name, l->asn);
		if (l->peer_asn && !asn_in_use(b, l->peer_asn))
			return nm_error(b, d->line, d->col, "%s%s: no PID has peer asn %u", where,
			                l->name, l->peer_asn);
		for (size_t k = 0; k < i; k++) {
			const struct nm_link_decl *e = &b->links[k];
			const struct itr_link *o = &e->link;
			bool same_pair =
			    (o->asn == l->asn && o->peer_asn == l->peer_asn) ||
			    (l->peer_asn && o->asn == l->peer_asn && o->peer_asn == l->asn);
			if (strcmp(o->name, l->name) == 0)
				return nm_error(b, d->line, d->col,
				                "%s%s: link name given twice (first at line %d)",
				                where, l->name, e->line);
			if (same_pair && l->peer_asn)
				return nm_error(b, d->line, d->col,
				                "%s%s: ASes %u and %u already joined by link '%s' "
				                "(line %d)",
				                where, l->name, l->asn, l->peer_asn, o->name,
				                e->line);
			if (same_pair)
				return nm_error(b, d->line, d->col,
				                "%s%s: AS %u already has an uplink ('%s', line %d)",
				                where, l->name, l->asn, o->name, e->line);
		}
	}
	sort_n(b->links, b->nlinks, sizeof(*b->links), cmp_link_decl);
	return 0;
}

static int check_costs(struct nm_builder *b)
{
	sort_n(b->costs, b->ncosts, sizeof(*b->costs), cmp_cost_decl);
	for (size_t i = 1; i < b->ncosts; i++) {
		const struct nm_cost_decl *c = &b->costs[i], *d = &b->costs[i - 1];
		if (c->src == d->src && c->dst == d->dst)
			return nm_error(b, c->line, c->col,
			                "cost %s -> %s given twice (first at line %d)",
			                b->names[c->src].text, b->names[c->dst].text, d->line);
	}
	return 0;
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static size_t cost_slot(const struct itr_netmap *m, uint64_t key)
{
	/* Fibonacci hashing; ids are small consecutive numbers in practice. */
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & m->cost_mask;
}

bool nm_cost_find(const struct itr_netmap *m, uint32_t src, uint32_t dst, uint32_t *cost);
bool nm_cost_find(const struct itr_netmap *m, uint32_t src, uint32_t dst, uint32_t *cost)
{
	if (!m->ncosts)
		return false;
	uint64_t key = (uint64_t)src << 32 | dst;
	for (size_t i = cost_slot(m, key);; i = (i + 1) & m->cost_mask) {
		if (m->costs[i].key == key) {
			*cost = m->costs[i].cost;
			return true;
		}
		if (m->costs[i].key == 0)
			return false;
	}
}

/* vtag: BLAKE2b over a length-prefixed canonical form. PIDs in name order
 * with their prefixes in itr_prefix_cmp order, tiers, costs by (src name,
 * dst name), the default PID and the resource id: nothing about the file's
 * layout or statement order enters it. */
struct vtag_writer {
	crypto_generichash_state st;
	uint8_t buf[8192];
	size_t n;
};

static void vw_put(struct vtag_writer *w, const void *data, size_t len)
{
	if (w->n + len > sizeof(w->buf)) {
		crypto_generichash_update(&w->st, w->buf, w->n);
		w->n = 0;
	}
	if (len > sizeof(w->buf)) {
		crypto_generichash_update(&w->st, data, len);
		return;
	}
	memcpy(w->buf + w->n, data, len);
	w->n += len;
}

static void vw_u32(struct vtag_writer *w, uint32_t v)
{
	uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};
	vw_put(w, b, 4);
}

static void vw_str(struct vtag_writer *w, const char *s)
{
	size_t len = strlen(s);
	vw_u32(w, (uint32_t)len);
	vw_put(w, s, len);
}

static int cmp_cost_by_name(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b; /* [src pid idx, dst pid idx, cost] */
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

static int compute_vtag(struct itr_netmap *m, const struct nm_builder *b,
                        const uint32_t *final_of_name)
{
	struct vtag_writer *w = malloc(sizeof(*w));
	uint32_t *triples = malloc((m->ncosts + 1) * 3 * sizeof(uint32_t));
	if (!w || !triples) {
		free(w);
		free(triples);
		return -1;
	}
	/* Picks the fastest BLAKE2b code; idempotent and thread safe. */
	if (sodium_init() < 0) {
		free(w);
		free(triples);
		return -1;
	}
	crypto_generichash_init(&w->st, NULL, 0, 32);
	w->n = 0;
	vw_str(w, "itracker-netmap-v1");
	vw_str(w, m->resource_id);
	for (int t = 0; t < ITR_TIER_MAX; t++)
		vw_u32(w, m->tiers[t]);
	vw_str(w, m->default_pid ? m->default_pid->name : "");
	vw_u32(w, (uint32_t)m->npids);
	for (size_t i = 0; i < m->npids; i++) {
		const struct itr_pid *p = &m->pids[i];
		vw_str(w, p->name);
		vw_u32(w, p->id);
		vw_u32(w, p->asn);
		vw_u32(w, p->loc);
		vw_u32(w, (uint32_t)p->nprefixes);
		for (size_t k = 0; k < p->nprefixes; k++) {
			const struct itr_prefix *x = &p->prefixes[k];
			uint8_t rec[18];
			rec[0] = x->family;
			rec[1] = x->len;
			memcpy(rec + 2, x->addr, 16);
			vw_put(w, rec, sizeof(rec));
		}
	}
	/* pids are in name order, so ordering by final index is name order. */
	for (size_t i = 0; i < b->ncosts; i++) {
		triples[3 * i] = final_of_name[b->costs[i].src];
		triples[3 * i + 1] = final_of_name[b->costs[i].dst];
		triples[3 * i + 2] = b->costs[i].cost;
	}
	sort_n(triples, b->ncosts, 3 * sizeof(uint32_t), cmp_cost_by_name);
	vw_u32(w, (uint32_t)b->ncosts);
	for (size_t i = 0; i < b->ncosts; i++) {
		vw_str(w, m->pids[triples[3 * i]].name);
		vw_str(w, m->pids[triples[3 * i + 1]].name);
		vw_u32(w, triples[3 * i + 2]);
	}
	/* Links (sorted by name) only when declared: maps without any keep
	 * the vtag they always had. */
	if (m->nlinks) {
		vw_str(w, "links");
		vw_u32(w, (uint32_t)m->nlinks);
		for (size_t i = 0; i < m->nlinks; i++) {
			const struct itr_link *l = &m->links[i];
			vw_str(w, l->name);
			vw_u32(w, l->asn);
			vw_u32(w, l->peer_asn);
			uint64_t rates[3] = {l->capacity_bps, l->budget_bps, l->host_upload_bps};
			for (int k = 0; k < 3; k++) {
				vw_u32(w, (uint32_t)(rates[k] >> 32));
				vw_u32(w, (uint32_t)rates[k]);
			}
			vw_u32(w, l->budget_pct);
		}
	}
	uint8_t digest[32];
	crypto_generichash_update(&w->st, w->buf, w->n);
	crypto_generichash_final(&w->st, digest, sizeof(digest));
	sodium_bin2hex(m->vtag, sizeof(m->vtag), digest, sizeof(digest));
	free(w);
	free(triples);
	return 0;
}

static int build_lpm(struct itr_netmap *m)
{
	size_t n4 = 0, n6 = 0;
	uint32_t count4[33] = {0}, count6[129] = {0};
	for (size_t i = 0; i < m->nentries; i++) {
		const struct itr_prefix *p = &m->entries[i].prefix;
		if (p->family == 4) {
			count4[p->len]++;
			n4++;
		} else {
			count6[p->len]++;
			n6++;
		}
	}
	m->lpm4 = malloc((n4 + 1) * sizeof(*m->lpm4));
	m->lpm6 = malloc((n6 + 1) * sizeof(*m->lpm6));
	if (!m->lpm4 || !m->lpm6)
		return -1;
	m->lpm4_off[0] = 0;
	for (int l = 0; l <= 32; l++)
		m->lpm4_off[l + 1] = m->lpm4_off[l] + count4[l];
	m->lpm6_off[0] = 0;
	for (int l = 0; l <= 128; l++)
		m->lpm6_off[l + 1] = m->lpm6_off[l] + count6[l];
	uint32_t fill4[33], fill6[129];
	memcpy(fill4, m->lpm4_off, sizeof(fill4));
	memcpy(fill6, m->lpm6_off, sizeof(fill6));
	/* Entries are in address order, so each length's run comes out sorted. */
	for (size_t i = 0; i < m->nentries; i++) {
		const struct nm_entry *e = &m->entries[i];
		if (e->prefix.family == 4) {
			struct nm_lpm4_slot *s = &m->lpm4[fill4[e->prefix.len]++];
			s->addr = itr_be32_get(e->prefix.addr);
			s->pid = e->pid;
		} else {
			struct nm_lpm6_slot *s = &m->lpm6[fill6[e->prefix.len]++];
			s->hi = load_be64(e->prefix.addr);
			s->lo = load_be64(e->prefix.addr + 8);
			s->pid = e->pid;
		}
	}
	for (int l = 16; l <= 32; l++) {
		if (count4[l] < 256)
			continue;
		uint32_t *idx = malloc(65537 * sizeof(uint32_t));
		if (!idx)
			return -1;
		uint32_t pos = m->lpm4_off[l], end = m->lpm4_off[l + 1];
		for (uint32_t h = 0; h <= 65536; h++) {
			while (pos < end && (m->lpm4[pos].addr >> 16) < h)
				pos++;
			idx[h] = pos;
		}
		m->lpm4_top16[l] = idx;
	}
	m->nlens4 = 0;
	for (int l = 32; l >= 0; l--)
		if (count4[l])
			m->lens4[m->nlens4++] = (uint8_t)l;
	m->nlens6 = 0;
	for (int l = 128; l >= 0; l--)
		if (count6[l])
			m->lens6[m->nlens6++] = (uint8_t)l;
	return 0;
}

static int build_costs(struct itr_netmap *m, const struct nm_builder *b,
                       const uint32_t *final_of_name)
{
	size_t size = 16;
	while (size < b->ncosts * 2)
		size *= 2;
	m->costs = calloc(size, sizeof(*m->costs));
	if (!m->costs)
		return -1;
	m->cost_mask = size - 1;
	m->ncosts = b->ncosts;
	for (size_t i = 0; i < b->ncosts; i++) {
		uint32_t src = m->pids[final_of_name[b->costs[i].src]].id;
		uint32_t dst = m->pids[final_of_name[b->costs[i].dst]].id;
		uint64_t key = (uint64_t)src << 32 | dst;
		size_t s = cost_slot(m, key);
		while (m->costs[s].key)
			s = (s + 1) & m->cost_mask;
		m->costs[s].key = key;
		m->costs[s].cost = b->costs[i].cost;
	}
	return 0;
}

static struct itr_netmap *freeze(struct nm_builder *b)
{
	struct itr_netmap *m = calloc(1, sizeof(*m));
	uint32_t *final_of_name = malloc((b->nnames + 1) * sizeof(uint32_t));
	size_t *count = NULL;
	if (!m || !final_of_name)
		goto oom;
	atomic_init(&m->refs, 1);
	snprintf(m->resource_id, sizeof(m->resource_id), "%s", b->resource_id);
	memcpy(m->tiers, b->tiers, sizeof(m->tiers));

	/* PIDs in name order. */
	sort_builder = b;
	sort_n(b->decls, b->ndecls, sizeof(*b->decls), cmp_decl_name);
	m->npids = b->ndecls;
	m->pids = calloc(m->npids + 1, sizeof(*m->pids));
	m->by_id = malloc((m->npids + 1) * sizeof(uint32_t));
	if (!m->pids || !m->by_id)
		goto oom;
	for (size_t i = 0; i < b->ndecls; i++) {
		const struct nm_decl *d = &b->decls[i];
		struct itr_pid *p = &m->pids[i];
		snprintf(p->name, sizeof(p->name), "%s", b->names[d->name].text);
		p->id = d->id;
		p->asn = d->asn;
		p->loc = d->loc;
		final_of_name[d->name] = (uint32_t)i;
		m->by_id[i] = (uint32_t)i;
	}
	sort_pid_base = m->pids;
	sort_n(m->by_id, m->npids, sizeof(uint32_t), cmp_by_id);
	if (b->default_name != UINT32_MAX)
		m->default_pid = &m->pids[final_of_name[b->default_name]];

	/* Prefixes: b->prefs is sorted by prefix already (check_prefixes). */
	m->nentries = b->nprefs;
	m->entries = malloc((m->nentries + 1) * sizeof(*m->entries));
	m->prefix_store = malloc((m->nentries + 1) * sizeof(*m->prefix_store));
	count = calloc(m->npids + 1, sizeof(size_t));
	if (!m->entries || !m->prefix_store || !count)
		goto oom;
	for (size_t i = 0; i < b->nprefs; i++) {
		uint32_t pid = final_of_name[b->prefs[i].name];
		m->entries[i].prefix = b->prefs[i].p;
		m->entries[i].pid = pid;
		count[pid]++;
	}
	size_t off = 0;
	for (size_t i = 0; i < m->npids; i++) {
		m->pids[i].prefixes = m->prefix_store + off;
		m->pids[i].nprefixes = 0;
		off += count[i];
	}
	for (size_t i = 0; i < m->nentries; i++) {
		struct itr_pid *p = &m->pids[m->entries[i].pid];
		p->prefixes[p->nprefixes++] = m->entries[i].prefix;
	}
	free(count);
	count = NULL;

	m->nlinks = b->nlinks;
	m->links = calloc(m->nlinks + 1, sizeof(*m->links));
	if (!m->links)
		goto oom;
	for (size_t i = 0; i < b->nlinks; i++)
		m->links[i] = b->links[i].link;

	if (build_lpm(m) || build_costs(m, b, final_of_name) || compute_vtag(m, b, final_of_name))
		goto oom;
	free(final_of_name);
	return m;
oom:
	free(count);
	free(final_of_name);
	map_free(m);
	nm_error(b, 0, 0, "out of memory");
	return NULL;
}

struct itr_netmap *nm_builder_finish(struct nm_builder *b)
{
	struct itr_netmap *m = NULL;
	if (b->failed)
		goto out;
	if (check_unknown_names(b) || assign_ids(b) || check_tiers(b) || check_prefixes(b) ||
	    check_costs(b) || check_links(b))
		goto out;
	m = freeze(b);
out:
	nm_builder_free(b);
	return m;
}

/* ---- derived maps: P4P's dynamic p-distance ------------------------------ */

struct itr_netmap *itr_netmap_with_link_costs(struct itr_netmap *base, const uint32_t *extra)
{
	base = itr_netmap_base(base);
	struct itr_netmap *m = malloc(sizeof(*m));
	uint32_t *copy = malloc((base->nlinks + 1) * sizeof(uint32_t));
	if (!m || !copy || sodium_init() < 0) {
		free(m);
		free(copy);
		return NULL;
	}
	memcpy(m, base, sizeof(*m));
	atomic_init(&m->refs, 1);
	if (base->nlinks)
		memcpy(copy, extra, base->nlinks * sizeof(uint32_t));
	m->link_extra = copy;
	itr_netmap_ref(base);
	m->base = base;
	/* vtag: the base's and the extras, so equal prices give equal vtags. */
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)"itracker-price-v1", 17);
	crypto_generichash_update(&st, (const uint8_t *)base->vtag, strlen(base->vtag));
	for (size_t i = 0; i < base->nlinks; i++) {
		uint8_t be[4] = {copy[i] >> 24, copy[i] >> 16, copy[i] >> 8, copy[i]};
		crypto_generichash_update(&st, be, 4);
	}
	uint8_t digest[32];
	crypto_generichash_final(&st, digest, sizeof(digest));
	sodium_bin2hex(m->vtag, sizeof(m->vtag), digest, sizeof(digest));
	return m;
}

struct itr_netmap *itr_netmap_base(struct itr_netmap *map)
{
	return map && map->base ? map->base : map;
}

uint32_t itr_netmap_link_extra(const struct itr_netmap *map, size_t i)
{
	return map->link_extra && i < map->nlinks ? map->link_extra[i] : 0;
}
