/* routes.c - the route source: rules (realm, table, protocol -> PID), the
 * route state (which prefixes routes give to which PID), the follower thread
 * on a libnl cache manager that keeps that state and writes each changed
 * prefix to the kernel tries, and the publisher thread that rebuilds and
 * publishes the merged map. See routes.h for the two paths and why.
 */
#include "routes.h"
#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <netlink/cache.h>
#include <netlink/hashtable.h>
#include <netlink/list.h>
#include <netlink/netlink.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>
#include <linux/rtnetlink.h>
#include <sodium.h>

/* ---- configuration ------------------------------------------------------ */

static int fail(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
	snprintf(err, len, fmt, a, b);
	return -1;
}

static int parse_number(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* The kernel's RTPROT_* values (linux/rtnetlink.h): libnl only knows the
 * names in /etc/iproute2/rt_protos, which a minimal system may lack. */
static const struct {
	const char *name;
	uint8_t value;
} known_protos[] = {
    {"redirect", RTPROT_REDIRECT},
    {"kernel", RTPROT_KERNEL},
    {"boot", RTPROT_BOOT},
    {"static", RTPROT_STATIC},
    {"gated", RTPROT_GATED},
    {"ra", RTPROT_RA},
    {"mrt", RTPROT_MRT},
    {"zebra", RTPROT_ZEBRA},
    {"bird", RTPROT_BIRD},
    {"dnrouted", RTPROT_DNROUTED},
    {"xorp", RTPROT_XORP},
    {"ntk", RTPROT_NTK},
    {"dhcp", RTPROT_DHCP},
    {"mrouted", RTPROT_MROUTED},
    {"keepalived", 18},
    {"babel", RTPROT_BABEL},
    {"openr", 99},
    {"bgp", 186},
    {"isis", 187},
    {"ospf", 188},
    {"rip", 189},
    {"eigrp", 192},
};

static int proto_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(known_protos) / sizeof(known_protos[0]); i++)
		if (strcmp(known_protos[i].name, name) == 0)
			return known_protos[i].value;
	return rtnl_route_str2proto(name);
}

int itr_routes_parse_rule(struct itr_routes_config *cfg, const char *spec, char *err, size_t len)
{
	char buf[256];
	if (strlen(spec) >= sizeof(buf))
		return fail(err, len, "--route '%.80s%s': too long", spec, "...");
	snprintf(buf, sizeof(buf), "%s", spec);
	char *eq = strchr(buf, '=');
	char *colon = eq ? strchr(eq + 1, ':') : NULL;
	if (!eq || !colon)
		return fail(err, len,
		            "--route '%s': expected PID=realm:N, PID=table:N or PID=proto:NAME%s",
		            spec, "");
	*eq = '\0';
	*colon = '\0';
	const char *pid = buf, *kind = eq + 1, *value = colon + 1;
	size_t plen = strlen(pid);
	if (plen == 0 || plen > ITR_NAME_MAX)
		return fail(err, len, "--route '%s': the PID name must have 1..64 characters%s",
		            spec, "");
	if (cfg->nrules >= ITR_ROUTES_MAX_RULES)
		return fail(err, len, "--route '%s': too many rules (at most %s)", spec, "64");
	struct itr_route_rule r = {0};
	memcpy(r.pid, pid, plen + 1);
	if (strcmp(kind, "realm") == 0) {
		r.match = ITR_ROUTE_BY_REALM;
		/* A realm is 16 bits; 0 means "no realm" and cannot select. */
		if (parse_number(value, 0xffff, &r.value) || r.value == 0)
			return fail(err, len, "--route '%s': realm must be 1..65535%s", spec, "");
	} else if (strcmp(kind, "table") == 0) {
		r.match = ITR_ROUTE_BY_TABLE;
		if (parse_number(value, UINT32_MAX, &r.value)) {
			int t = rtnl_route_str2table(value);
			if (t < 0)
				return fail(
				    err, len,
				    "--route '%s': unknown table '%s' (a number, main, local "
				    "or a name from /etc/iproute2/rt_tables)",
				    spec, value);
			r.value = (uint32_t)t;
		}
		if (r.value == 0)
			return fail(err, len, "--route '%s': table 0 is not a table%s", spec, "");
	} else if (strcmp(kind, "proto") == 0) {
		r.match = ITR_ROUTE_BY_PROTO;
		if (parse_number(value, 255, &r.value)) {
			int p = proto_from_name(value);
			if (p < 0 || p > 255)
				return fail(err, len,
				            "--route '%s': unknown protocol '%s' (0..255, or bird, "
				            "static, kernel, boot, zebra, ...)",
				            spec, value);
			r.value = (uint32_t)p;
		}
	} else {
		return fail(err, len, "--route '%s': unknown selector '%s' (realm, table, proto)",
		            spec, kind);
	}
	cfg->rules[cfg->nrules++] = r;
	return 0;
}

int itr_routes_parse_precedence(struct itr_routes_config *cfg, const char *text, char *err,
                                size_t len)
{
	if (strcmp(text, "routes") == 0)
		cfg->winner = ITR_WINNER_ROUTES;
	else if (strcmp(text, "file") == 0)
		cfg->winner = ITR_WINNER_FILE;
	else
		return fail(err, len, "--route-precedence '%s': expected 'routes' or 'file'%s",
		            text, "");
	return 0;
}

int itr_routes_match(const struct itr_routes_config *cfg, uint32_t table, uint8_t protocol,
                     const uint32_t *realms, size_t nrealms)
{
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct itr_route_rule *r = &cfg->rules[i];
		switch (r->match) {
		case ITR_ROUTE_BY_REALM:
			for (size_t k = 0; k < nrealms; k++)
				if (RTNL_REALM_TO(realms[k]) == r->value)
					return (int)i;
			break;
		case ITR_ROUTE_BY_TABLE:
			if (table == r->value)
				return (int)i;
			break;
		case ITR_ROUTE_BY_PROTO:
			if (protocol == r->value)
				return (int)i;
			break;
		}
	}
	return -1;
}

int itr_routes_resolve(const struct itr_routes_config *cfg, const struct itr_netmap *map,
                       const struct itr_pid **pids, char *err, size_t len)
{
	for (size_t i = 0; i < cfg->nrules; i++) {
		pids[i] = itr_netmap_pid_by_name(map, cfg->rules[i].pid);
		if (!pids[i])
			return fail(err, len,
			            "route rule for PID '%s': the map does not declare PID '%s'",
			            cfg->rules[i].pid, cfg->rules[i].pid);
	}
	return 0;
}

/* ---- coalescing --------------------------------------------------------- */

void itr_coalescer_init(struct itr_coalescer *c, uint64_t quiet_ns, uint64_t max_delay_ns)
{
	memset(c, 0, sizeof(*c));
	c->quiet_ns = quiet_ns;
	c->max_delay_ns = max_delay_ns;
}

void itr_coalescer_note(struct itr_coalescer *c, uint64_t now_ns)
{
	if (!c->pending) {
		c->pending = true;
		c->first_ns = now_ns;
	}
	c->last_ns = now_ns;
}

uint64_t itr_coalescer_wait(const struct itr_coalescer *c, uint64_t now_ns)
{
	if (!c->pending)
		return UINT64_MAX;
	uint64_t quiet_at = c->last_ns + c->quiet_ns;
	uint64_t cap_at = c->first_ns + c->max_delay_ns;
	uint64_t at = quiet_at < cap_at ? quiet_at : cap_at;
	return now_ns >= at ? 0 : at - now_ns;
}

void itr_coalescer_flushed(struct itr_coalescer *c)
{
	c->pending = false;
}

/* ---- route state -------------------------------------------------------- */

/* One route feeding a prefix: the kernel identifies a route by (family,
 * table, destination, tos, priority); the prefix's node holds the rest. */
struct rt_contrib {
	uint32_t table, prio;
	uint16_t rule;
	uint8_t tos;
};

struct rt_node {
	struct itr_prefix prefix;
	uint8_t used;
	uint8_t dirty; /* has a record in the dirty list */
	uint16_t n, cap;
	uint32_t hash;           /* of prefix, kept so probes and growth skip SipHash */
	struct rt_contrib one;   /* storage while cap == 0 */
	struct rt_contrib *many; /* storage once cap > 0 */
};

struct rt_dirty {
	struct itr_prefix prefix;
	bool had;
	struct itr_pid_info before;
};

struct itr_route_table {
	struct rt_node *slots;
	size_t mask, count;
	size_t nroutes;
	uint64_t changes; /* modifications applied, ever */
	uint8_t hash_key[crypto_shorthash_KEYBYTES];

	struct rt_dirty *dirty;
	size_t ndirty, cap_dirty;

	const struct itr_netmap *file; /* not owned here */
	const struct itr_pid *rule_pid[ITR_ROUTES_MAX_RULES];
	enum itr_prefix_winner winner;
};

static size_t prefix_bytes(const struct itr_prefix *p)
{
	return p->family == 4 ? 4 : 16;
}

static uint32_t rt_hash(const struct itr_route_table *s, const struct itr_prefix *p)
{
	uint8_t key[18];
	uint64_t h;
	key[0] = p->family;
	key[1] = p->len;
	memcpy(key + 2, p->addr, 16);
	crypto_shorthash((unsigned char *)&h, key, sizeof(key), s->hash_key);
	return (uint32_t)h;
}

static bool same_prefix(const struct itr_prefix *a, const struct itr_prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	       memcmp(a->addr, b->addr, prefix_bytes(a)) == 0;
}

static int rt_init(struct itr_route_table *s)
{
	memset(s, 0, sizeof(*s));
	if (sodium_init() < 0)
		return -ENOMEM;
	s->mask = 1023;
	s->slots = calloc(s->mask + 1, sizeof(*s->slots));
	if (!s->slots)
		return -ENOMEM;
	randombytes_buf(s->hash_key, sizeof(s->hash_key));
	return 0;
}

static void rt_free(struct itr_route_table *s)
{
	if (s->slots)
		for (size_t i = 0; i <= s->mask; i++)
			if (s->slots[i].used && s->slots[i].cap)
				free(s->slots[i].many);
	free(s->slots);
	free(s->dirty);
	memset(s, 0, sizeof(*s));
}

static struct rt_node *rt_find_h(const struct itr_route_table *s, const struct itr_prefix *p,
                                 uint32_t h)
{
	for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
		struct rt_node *n = &s->slots[i];
		if (!n->used)
			return NULL;
		if (n->hash == h && same_prefix(&n->prefix, p))
			return n;
	}
}

static struct rt_node *rt_find(const struct itr_route_table *s, const struct itr_prefix *p)
{
	return rt_find_h(s, p, rt_hash(s, p));
}

static int rt_grow(struct itr_route_table *s)
{
	size_t nmask = s->mask * 2 + 1;
	struct rt_node *ns = calloc(nmask + 1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i <= s->mask; i++) {
		if (!s->slots[i].used)
			continue;
		size_t k = s->slots[i].hash & nmask;
		while (ns[k].used)
			k = (k + 1) & nmask;
		ns[k] = s->slots[i];
	}
	free(s->slots);
	s->slots = ns;
	s->mask = nmask;
	return 0;
}

/* The node for p (hash h), created empty if missing; NULL only when out of
 * memory. Pointers into the table are valid until the next insert or delete.
 * Load stays at most 1/2: linear probing's misses grow fast beyond it. */
static struct rt_node *rt_insert_h(struct itr_route_table *s, const struct itr_prefix *p,
                                   uint32_t h);

static struct rt_node *rt_get_h(struct itr_route_table *s, const struct itr_prefix *p, uint32_t h)
{
	struct rt_node *n = rt_find_h(s, p, h);
	return n ? n : rt_insert_h(s, p, h);
}

/* Insert p, known to be absent. */
static struct rt_node *rt_insert_h(struct itr_route_table *s, const struct itr_prefix *p,
                                   uint32_t h)
{
	struct rt_node *n;
	if ((s->count + 1) * 2 > s->mask + 1 && rt_grow(s))
		return NULL;
	size_t i = h & s->mask;
	while (s->slots[i].used)
		i = (i + 1) & s->mask;
	n = &s->slots[i];
	memset(n, 0, sizeof(*n));
	n->prefix = *p;
	n->hash = h;
	n->used = 1;
	s->count++;
	return n;
}

/* Linear probing delete: shift later members of the run back so lookups
 * never stop early at the hole. */
static void rt_delete(struct itr_route_table *s, struct rt_node *n)
{
	size_t hole = (size_t)(n - s->slots);
	if (n->cap)
		free(n->many);
	n->used = 0;
	s->count--;
	for (size_t i = (hole + 1) & s->mask; s->slots[i].used; i = (i + 1) & s->mask) {
		size_t home = s->slots[i].hash & s->mask;
		/* Move i into the hole unless its home lies cyclically in (hole, i]. */
		bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
		if (stays)
			continue;
		s->slots[hole] = s->slots[i];
		s->slots[i].used = 0;
		hole = i;
	}
}

static struct rt_contrib *contrib_at(struct rt_node *n, size_t i)
{
	return n->cap ? &n->many[i] : &n->one;
}

/* The route that gives the prefix its PID: first rule, then the lowest
 * priority value (the route the kernel prefers), then the lowest table. */
static const struct itr_pid *rt_route_pid(const struct itr_route_table *s, struct rt_node *n)
{
	if (!n || !n->n)
		return NULL;
	const struct rt_contrib *best = contrib_at(n, 0);
	for (size_t i = 1; i < n->n; i++) {
		const struct rt_contrib *c = contrib_at(n, i);
		if (c->rule != best->rule   ? c->rule < best->rule
		    : c->prio != best->prio ? c->prio < best->prio
		                            : c->table < best->table)
			best = c;
	}
	return s->rule_pid[best->rule];
}

/* What the tries should hold for p right now; n is p's node or NULL. */
static bool rt_desired_node(const struct itr_route_table *s, const struct itr_prefix *p,
                            struct rt_node *n, struct itr_pid_info *out)
{
	const struct itr_pid *route_pid = rt_route_pid(s, n);
	bool other_zero = false;
	if (p->len == 0) {
		struct itr_prefix other = {.family = p->family == 4 ? 6 : 4};
		other_zero = rt_route_pid(s, rt_find(s, &other)) != NULL;
	}
	return itr_netmap_merged_kentry(s->file, p, route_pid, other_zero, s->winner, out);
}

/* Record node n's prefix as changed (with what the tries hold for it now),
 * unless it already is. May insert a node: re-find n afterwards. */
static int rt_mark_dirty(struct itr_route_table *s, struct rt_node *n)
{
	if (n->dirty)
		return 0;
	if (s->ndirty == s->cap_dirty) {
		size_t ncap = s->cap_dirty ? s->cap_dirty * 2 : 256;
		void *nd = realloc(s->dirty, ncap * sizeof(*s->dirty));
		if (!nd)
			return -ENOMEM;
		s->dirty = nd;
		s->cap_dirty = ncap;
	}
	struct rt_dirty *d = &s->dirty[s->ndirty++];
	d->prefix = n->prefix;
	d->had = rt_desired_node(s, &n->prefix, n, &d->before);
	n->dirty = 1;
	/* With a default PID, both /0 entries depend on either /0 route. */
	if (n->prefix.len == 0 && itr_netmap_default_pid(s->file)) {
		struct itr_prefix other = {.family = n->prefix.family == 4 ? 6 : 4};
		struct rt_node *o = rt_get_h(s, &other, rt_hash(s, &other));
		return o ? rt_mark_dirty(s, o) : -ENOMEM;
	}
	return 0;
}

struct rt_key {
	struct itr_prefix prefix;
	uint32_t table, prio;
	uint8_t tos;
};

/* Set (rule >= 0) or remove (rule < 0) the route key's contribution. */
static int rt_apply(struct itr_route_table *s, const struct rt_key *k, int rule)
{
	uint32_t h = rt_hash(s, &k->prefix);
	struct rt_node *n = rt_find_h(s, &k->prefix, h);
	if (!n && rule < 0)
		return 0;
	size_t at = SIZE_MAX;
	for (size_t i = 0; n && i < n->n; i++) {
		const struct rt_contrib *c = contrib_at(n, i);
		if (c->table == k->table && c->prio == k->prio && c->tos == k->tos)
			at = i;
	}
	if (rule < 0 && at == SIZE_MAX)
		return 0;
	if (at != SIZE_MAX && rule >= 0 && contrib_at(n, at)->rule == (uint16_t)rule)
		return 0; /* a change that does not touch what we use */
	if (!n && !(n = rt_insert_h(s, &k->prefix, h)))
		return -ENOMEM;
	int rc = rt_mark_dirty(s, n);
	if (rc)
		return rc;
	if (k->prefix.len == 0)
		n = rt_find_h(s, &k->prefix, h); /* marking may have inserted the other /0 */
	s->changes++;
	if (rule < 0) {
		*contrib_at(n, at) = *contrib_at(n, n->n - 1);
		n->n--;
		s->nroutes--;
		return 0;
	}
	if (at != SIZE_MAX) {
		contrib_at(n, at)->rule = (uint16_t)rule;
		return 0;
	}
	struct rt_contrib c = {
	    .table = k->table, .prio = k->prio, .rule = (uint16_t)rule, .tos = k->tos};
	if (n->n == 0 && n->cap == 0) {
		n->one = c;
	} else {
		if (n->cap == 0 || n->n == n->cap) {
			uint16_t ncap = n->cap ? (uint16_t)(n->cap * 2) : 4;
			struct rt_contrib *m = malloc(ncap * sizeof(*m));
			if (!m)
				return -ENOMEM;
			memcpy(m, n->cap ? n->many : &n->one, n->n * sizeof(*m));
			if (n->cap)
				free(n->many);
			n->many = m;
			n->cap = ncap;
		}
		n->many[n->n] = c;
	}
	n->n++;
	s->nroutes++;
	return 0;
}

struct itr_route_table *itr_route_table_new(const struct itr_netmap *file,
                                            const struct itr_pid *const *rule_pids, size_t nrules,
                                            enum itr_prefix_winner winner)
{
	struct itr_route_table *t = malloc(sizeof(*t));
	if (!t || nrules > ITR_ROUTES_MAX_RULES || rt_init(t)) {
		free(t);
		return NULL;
	}
	t->file = file;
	t->winner = winner;
	for (size_t i = 0; i < nrules; i++)
		t->rule_pid[i] = rule_pids[i];
	return t;
}

void itr_route_table_free(struct itr_route_table *t)
{
	if (!t)
		return;
	rt_free(t);
	free(t);
}

int itr_route_table_apply(struct itr_route_table *t, const struct itr_prefix *dst, uint32_t table,
                          uint32_t prio, uint8_t tos, int rule)
{
	struct rt_key k = {.prefix = *dst, .table = table, .prio = prio, .tos = tos};
	return rt_apply(t, &k, rule);
}

static bool same_info(const struct itr_pid_info *a, const struct itr_pid_info *b)
{
	return a->pid == b->pid && a->asn == b->asn && a->loc == b->loc && a->flags == b->flags;
}

int itr_route_table_take_ops(struct itr_route_table *t, struct itr_netmap_op **ops, size_t *n)
{
	*ops = NULL;
	*n = 0;
	if (!t->ndirty)
		return 0;
	struct itr_netmap_op *o = malloc(t->ndirty * sizeof(*o));
	if (!o)
		return -ENOMEM;
	size_t nup = 0, ndel = 0;
	/* updates fill from the front, deletes from the back, then the
	 * deletes are moved up behind the updates */
	for (size_t i = 0; i < t->ndirty; i++) {
		const struct rt_dirty *d = &t->dirty[i];
		struct itr_netmap_kentry e = {.prefix = d->prefix};
		struct rt_node *node = rt_find(t, &d->prefix);
		bool has = rt_desired_node(t, &d->prefix, node, &e.info);
		if (node && node->prefix.len) {
			/* done with it: clear here, one lookup instead of two
			 * (a /0 may be looked at again through its twin) */
			node->dirty = 0;
			if (!node->n)
				rt_delete(t, node);
		}
		if (has && (!d->had || !same_info(&d->before, &e.info)))
			o[nup++] = (struct itr_netmap_op){
			    d->had ? ITR_NETMAP_OP_CHANGE : ITR_NETMAP_OP_ADD, e};
		else if (!has && d->had)
			o[t->ndirty - ++ndel] = (struct itr_netmap_op){
			    ITR_NETMAP_OP_DELETE, {.prefix = d->prefix, .info = d->before}};
	}
	memmove(o + nup, o + t->ndirty - ndel, ndel * sizeof(*o));
	for (size_t i = 0; i < t->ndirty; i++) {
		if (t->dirty[i].prefix.len)
			continue; /* cleared above */
		struct rt_node *node = rt_find(t, &t->dirty[i].prefix);
		if (!node)
			continue;
		node->dirty = 0;
		if (!node->n)
			rt_delete(t, node);
	}
	t->ndirty = 0;
	if (nup + ndel == 0)
		free(o);
	else
		*ops = o;
	*n = nup + ndel;
	return 0;
}

int itr_route_table_prefixes(struct itr_route_table *t, struct itr_route_prefix **out, size_t *n)
{
	*n = 0;
	*out = malloc((t->count + 1) * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i <= t->mask; i++) {
		struct rt_node *node = &t->slots[i];
		const struct itr_pid *pid = node->used ? rt_route_pid(t, node) : NULL;
		if (pid)
			(*out)[(*n)++] = (struct itr_route_prefix){node->prefix, pid};
	}
	return 0;
}

size_t itr_route_table_routes(const struct itr_route_table *t)
{
	return t->nroutes;
}

/* ---- the follower ------------------------------------------------------- */

struct snapshot {
	struct itr_netmap *file; /* a reference */
	struct itr_route_prefix *routes;
	size_t n;
	uint64_t seq;
};

struct itr_routes {
	struct itr_daemon *d;
	struct itr_routes_config cfg;

	/* follower thread only */
	struct itr_route_table st;
	struct itr_netmap *file; /* our reference to the file map */
	struct nl_cache_mngr *mngr;
	struct nl_cache *cache;
	struct nl_sock *sync_sock;
	struct nl_sock *event_sock; /* the cache manager's; ours to free */
	struct itr_coalescer co;
	bool map_dirty; /* route prefixes changed since the last snapshot */
	int cb_error;   /* first error inside a libnl callback */
	bool seeding;   /* reading the first dump: nothing is written yet */
	uint64_t events_unreported;

	int wake_fd; /* eventfd: stop or reload request */
	pthread_t follower, publisher;

	/* shared, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct snapshot *snap_pending; /* for the publisher */
	bool publisher_busy;
	uint64_t next_seq, published_seq;
	uint64_t publish_done_ns;
	double last_rebuild_s;
	struct itr_netmap *reload_map; /* a reload request's new file map */
	bool reload_pending;
	struct itr_reload_result reload_res;
	bool reload_done;
	struct itr_routes_stats stats;
};

static bool route_key(struct rtnl_route *route, struct rt_key *k)
{
	struct nl_addr *dst = rtnl_route_get_dst(route);
	int family = rtnl_route_get_family(route);
	if (!dst || (family != AF_INET && family != AF_INET6))
		return false;
	memset(k, 0, sizeof(*k));
	k->prefix.family = family == AF_INET ? 4 : 6;
	unsigned max = family == AF_INET ? 32 : 128;
	unsigned len = nl_addr_get_prefixlen(dst);
	k->prefix.len = (uint8_t)(len > max ? max : len);
	size_t blen = nl_addr_get_len(dst);
	if (blen > prefix_bytes(&k->prefix))
		blen = prefix_bytes(&k->prefix);
	if (blen)
		memcpy(k->prefix.addr, nl_addr_get_binary_addr(dst), blen);
	for (unsigned bit = k->prefix.len; bit < max; bit++)
		k->prefix.addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
	k->table = rtnl_route_get_table(route);
	k->prio = rtnl_route_get_priority(route);
	k->tos = rtnl_route_get_tos(route);
	return true;
}

static int route_rule(const struct itr_routes *r, struct rtnl_route *route)
{
	uint8_t type = rtnl_route_get_type(route);
	/* Routes that say where a prefix is: forwarded, or an aggregate kept
	 * as blackhole/unreachable. Local, broadcast, multicast routes and
	 * cloned cache entries say nothing about a PID. */
	if (type != RTN_UNICAST && type != RTN_BLACKHOLE && type != RTN_UNREACHABLE &&
	    type != RTN_PROHIBIT)
		return -1;
	if (rtnl_route_get_flags(route) & RTM_F_CLONED)
		return -1;
	uint32_t realms[16];
	size_t nrealms = 0;
	int nh = rtnl_route_get_nnexthops(route);
	for (int i = 0; i < nh && nrealms < 16; i++) {
		struct rtnl_nexthop *h = rtnl_route_nexthop_n(route, i);
		if (h)
			realms[nrealms++] = rtnl_route_nh_get_realms(h);
	}
	return itr_routes_match(&r->cfg, rtnl_route_get_table(route),
	                        (uint8_t)rtnl_route_get_protocol(route), realms, nrealms);
}

static int flush_tries(struct itr_routes *r);
static void take_file_map(void *ctx, struct itr_netmap *file, struct itr_reload_result *res);
static void maybe_hand_snapshot(struct itr_routes *r, uint64_t now);

static void publish_counts(struct itr_routes *r)
{
	pthread_mutex_lock(&r->lock);
	r->stats.events += r->events_unreported;
	r->events_unreported = 0;
	r->stats.routes = r->st.nroutes;
	r->stats.prefixes = r->st.count;
	r->stats.pending = r->st.ndirty;
	pthread_mutex_unlock(&r->lock);
}

static void handle_route(struct itr_routes *r, struct nl_object *obj, int action)
{
	struct rtnl_route *route = (struct rtnl_route *)obj;
	struct rt_key k;
	if (!route_key(route, &k))
		return;
	int rule = action == NL_ACT_DEL ? -1 : route_rule(r, route);
	uint64_t changes = r->st.changes;
	int rc = rt_apply(&r->st, &k, rule);
	if (rc && !r->cb_error)
		r->cb_error = rc;
	uint64_t now = itr_clock_ns();
	if (r->st.changes != changes) {
		itr_coalescer_note(&r->co, now);
		r->map_dirty = true;
	}
	if (++r->events_unreported >= 4096)
		publish_counts(r);
	/* libnl keeps reading while the socket has data, so in a storm the
	 * follower's loop would not get back to flush: the cap is checked
	 * here too. */
	if (!r->seeding && itr_coalescer_wait(&r->co, now) == 0) {
		rc = flush_tries(r);
		if (rc)
			fprintf(stderr, "itrackerd: routes: writing the tries failed: %s\n",
			        strerror(-rc));
		maybe_hand_snapshot(r, itr_clock_ns());
	}
}

static void change_cb(struct nl_cache *cache, struct nl_object *obj, int action, void *arg)
{
	(void)cache;
	handle_route(arg, obj, action);
}

static void seed_cb(struct nl_object *obj, void *arg)
{
	handle_route(arg, obj, NL_ACT_NEW);
}

/* Apply the table's pending changes to the tries (adds and changes before
 * deletes) and bump the generation so the data plane re-classifies cached
 * flows; the served map follows from the publisher. */
static int flush_tries(struct itr_routes *r)
{
	struct itr_netmap_op *ops = NULL;
	size_t nops = 0;
	int rc = itr_route_table_take_ops(&r->st, &ops, &nops);
	if (rc)
		return rc;
	itr_coalescer_flushed(&r->co);
	rc = itr_daemon_write_trie_ops(r->d, ops, nops);
	free(ops);
	struct itr_route_table *s = &r->st;
	pthread_mutex_lock(&r->lock);
	r->stats.flushes++;
	r->stats.trie_ops += nops;
	r->stats.last_flush_ns = itr_clock_ns();
	r->stats.events += r->events_unreported;
	r->events_unreported = 0;
	r->stats.routes = s->nroutes;
	r->stats.prefixes = s->count;
	r->stats.pending = 0;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static struct snapshot *take_snapshot(struct itr_routes *r)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));
	if (!snap)
		return NULL;
	if (itr_route_table_prefixes(&r->st, &snap->routes, &snap->n)) {
		free(snap);
		return NULL;
	}
	itr_netmap_ref(r->file);
	snap->file = r->file;
	return snap;
}

static void snapshot_free(struct snapshot *snap)
{
	if (!snap)
		return;
	itr_netmap_unref(snap->file);
	free(snap->routes);
	free(snap);
}

/* Publish map (taking the reference) unless a newer one already went out.
 * The follower already wrote its prefixes to the tries. */
static void publish(struct itr_routes *r, struct itr_netmap *map, uint64_t seq)
{
	struct itr_daemon *d = r->d;
	pthread_mutex_lock(&d->reload_lock);
	pthread_mutex_lock(&r->lock);
	bool stale = seq <= r->published_seq;
	if (!stale)
		r->published_seq = seq;
	pthread_mutex_unlock(&r->lock);
	if (stale) {
		pthread_mutex_unlock(&d->reload_lock);
		itr_netmap_unref(map);
		return;
	}
	struct itr_reload_result res;
	itr_daemon_install_locked(d, map, ITR_TRIES_ALREADY_WRITTEN, &res);
	pthread_mutex_unlock(&d->reload_lock);
	if (!res.ok) {
		fprintf(stderr, "itrackerd: routes: merged map not published: %s\n", res.error);
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->stats.publishes++;
	r->stats.last_publish_ns = itr_clock_ns();
	pthread_mutex_unlock(&r->lock);
}

static void *publisher_main(void *arg)
{
	struct itr_routes *r = arg;
	pthread_setname_np(pthread_self(), "itr-publish");
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stop && !r->snap_pending)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		struct snapshot *snap = r->snap_pending;
		r->snap_pending = NULL;
		r->publisher_busy = true;
		pthread_mutex_unlock(&r->lock);

		uint64_t t0 = itr_clock_ns();
		struct itr_netmap_error err = {0};
		struct itr_netmap *map =
		    itr_netmap_merge(snap->file, snap->routes, snap->n, r->cfg.winner, &err);
		double cost = (double)(itr_clock_ns() - t0) / 1e9;
		if (map) {
			publish(r, map, snap->seq);
		} else {
			char msg[600];
			itr_netmap_error_format(&err, msg, sizeof(msg));
			fprintf(stderr, "itrackerd: routes: merged map rejected: %s\n", msg);
		}
		snapshot_free(snap);

		pthread_mutex_lock(&r->lock);
		r->publisher_busy = false;
		r->last_rebuild_s = cost;
		r->stats.last_rebuild_s = cost;
		r->publish_done_ns = itr_clock_ns();
		pthread_cond_broadcast(&r->cond);
		/* wake the follower: it may have a snapshot waiting to go */
		uint64_t one = 1;
		if (write(r->wake_fd, &one, sizeof(one)) < 0) {
			/* the counter only saturates; the follower polls anyway */
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* When the next snapshot may go to the publisher (ns, CLOCK_MONOTONIC). */
static uint64_t publish_due(const struct itr_routes *r)
{
	double gap = r->last_rebuild_s * r->cfg.publish_cost_factor;
	double min_gap = r->cfg.min_publish_ms / 1e3;
	if (gap < min_gap)
		gap = min_gap;
	return r->publish_done_ns + (uint64_t)(gap * 1e9);
}

static void maybe_hand_snapshot(struct itr_routes *r, uint64_t now)
{
	if (!r->map_dirty || r->st.ndirty)
		return;
	pthread_mutex_lock(&r->lock);
	bool ready = !r->publisher_busy && !r->snap_pending && now >= publish_due(r);
	pthread_mutex_unlock(&r->lock);
	if (!ready)
		return;
	struct snapshot *snap = take_snapshot(r);
	if (!snap)
		return; /* out of memory: try again on the next wake-up */
	pthread_mutex_lock(&r->lock);
	snap->seq = ++r->next_seq;
	r->snap_pending = snap;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	r->map_dirty = false;
}

/* libnl sizes a cache's object hash table from the cache type (1024 chains
 * for route/route) and offers no call to change it: with a million routes
 * every insert and delete walks a chain of a thousand objects, and a
 * full-table load takes minutes. struct nl_cache is private, so its head is
 * mirrored here (libnl 3.2 to 3.7) and checked against what the public calls
 * report before the empty table is swapped for a larger one; when anything
 * does not match, the cache keeps its table (correct, only slower). */
struct libnl_cache_head {
	struct nl_list_head items;
	int nitems;
	int iarg1, iarg2;
	int refcnt;
	unsigned int flags;
	nl_hash_table_t *hashtable;
	struct nl_cache_ops *ops;
};

#define ROUTE_HASH_CHAINS (1 << 20)

static bool widen_cache_hash(struct nl_cache *cache)
{
	struct libnl_cache_head *h = (struct libnl_cache_head *)cache;
	if (h->ops != nl_cache_get_ops(cache) || h->nitems != 0 || nl_cache_nitems(cache) != 0 ||
	    !h->hashtable || h->hashtable->size <= 0 || h->hashtable->size >= ROUTE_HASH_CHAINS ||
	    h->items.next != &h->items || h->items.prev != &h->items)
		return false;
	nl_hash_table_t *bigger = nl_hash_table_alloc(ROUTE_HASH_CHAINS);
	if (!bigger)
		return false;
	for (int i = 0; i < h->hashtable->size; i++)
		if (h->hashtable->nodes[i]) { /* not empty after all: leave it */
			nl_hash_table_free(bigger);
			return false;
		}
	nl_hash_table_free(h->hashtable);
	h->hashtable = bigger;
	return true;
}

static void set_rcvbuf(int fd, int bytes)
{
	/* As root, past rmem_max: a full-table load arrives faster than any
	 * reader at times; a lost notification costs a full re-dump. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

/* A file reload, in the follower thread: the route state is flushed, the
 * new file map swapped in, the merged map built and synced against what the
 * tries really hold (they may be ahead of the served map). */
static void do_reload(struct itr_routes *r, struct itr_netmap *file, struct itr_reload_result *res)
{
	struct itr_daemon *d = r->d;
	memset(res, 0, sizeof(*res));
	int rc = flush_tries(r);
	if (rc) {
		snprintf(res->error, sizeof(res->error), "updating the tries failed: %s",
		         strerror(-rc));
		itr_netmap_unref(file);
		itr_daemon_refused(d, res, ITR_RELOAD_FAILED);
		return;
	}
	const struct itr_pid *pids[ITR_ROUTES_MAX_RULES];
	if (itr_routes_resolve(&r->cfg, file, pids, res->error, sizeof(res->error))) {
		itr_netmap_unref(file);
		itr_daemon_refused(d, res, ITR_RELOAD_REJECTED);
		return;
	}
	/* The route prefixes name their PIDs through the rules: point the
	 * rules at the new file's PIDs, and back if the new map goes nowhere. */
	const struct itr_pid *old_pids[ITR_ROUTES_MAX_RULES];
	memcpy(old_pids, r->st.rule_pid, sizeof(old_pids));
	memcpy(r->st.rule_pid, pids, sizeof(pids));
	struct itr_route_prefix *routes = NULL;
	size_t nroutes = 0;
	struct itr_netmap *map = NULL;
	struct itr_netmap_error err = {0};
	enum itr_reload_outcome refusal = ITR_RELOAD_FAILED;
	if (itr_route_table_prefixes(&r->st, &routes, &nroutes)) {
		snprintf(res->error, sizeof(res->error), "out of memory");
	} else {
		map = itr_netmap_merge(file, routes, nroutes, r->cfg.winner, &err);
		free(routes);
		if (!map) {
			itr_netmap_error_format(&err, res->error, sizeof(res->error));
			refusal = ITR_RELOAD_REJECTED;
		}
	}
	if (!map) {
		memcpy(r->st.rule_pid, old_pids, sizeof(old_pids));
		itr_netmap_unref(file);
		itr_daemon_refused(d, res, refusal);
		return;
	}
	pthread_mutex_lock(&d->reload_lock);
	itr_daemon_install_locked(d, map, ITR_TRIES_READ_BACK, res);
	if (res->ok) {
		pthread_mutex_lock(&r->lock);
		r->published_seq = ++r->next_seq; /* older snapshots in flight are stale */
		pthread_mutex_unlock(&r->lock);
		/* The new file map is the base of every later merge. */
		itr_netmap_unref(r->file);
		r->file = file;
		r->st.file = file;
		r->map_dirty = false;
	} else {
		memcpy(r->st.rule_pid, old_pids, sizeof(old_pids));
		itr_netmap_unref(file);
	}
	pthread_mutex_unlock(&d->reload_lock);
}

static int resync(struct itr_routes *r)
{
	int rc = nl_cache_resync(r->sync_sock, r->cache, change_cb, r);
	pthread_mutex_lock(&r->lock);
	r->stats.resyncs++;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static void *follower_main(void *arg)
{
	struct itr_routes *r = arg;
	pthread_setname_np(pthread_self(), "itr-routes");
	int nl_fd = nl_cache_mngr_get_fd(r->mngr);
	for (;;) {
		uint64_t now = itr_clock_ns();
		uint64_t wait = itr_coalescer_wait(&r->co, now);
		if (wait == 0) {
			int rc = flush_tries(r);
			if (rc)
				fprintf(stderr, "itrackerd: routes: writing the tries failed: %s\n",
				        strerror(-rc));
			now = itr_clock_ns();
			wait = UINT64_MAX;
		}
		maybe_hand_snapshot(r, now);
		if (r->map_dirty && !r->st.ndirty) {
			pthread_mutex_lock(&r->lock);
			uint64_t due = publish_due(r);
			bool busy = r->publisher_busy || r->snap_pending;
			pthread_mutex_unlock(&r->lock);
			/* a busy publisher wakes us through wake_fd */
			if (!busy && due > now && due - now < wait)
				wait = due - now;
		}
		if (wait == UINT64_MAX)
			wait = 200000000ull;
		struct timespec timeout = {.tv_sec = (time_t)(wait / 1000000000ull),
		                           .tv_nsec = (long)(wait % 1000000000ull)};
		struct pollfd pfd[2] = {{.fd = nl_fd, .events = POLLIN},
		                        {.fd = r->wake_fd, .events = POLLIN}};
		int n = ppoll(pfd, 2, &timeout, NULL);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (pfd[1].revents & POLLIN)) {
			uint64_t v;
			if (read(r->wake_fd, &v, sizeof(v)) < 0) {
				/* nothing to read: someone else drained it */
			}
			pthread_mutex_lock(&r->lock);
			bool stop = r->stop;
			struct itr_netmap *reload = r->reload_pending ? r->reload_map : NULL;
			r->reload_pending = false;
			r->reload_map = NULL;
			pthread_mutex_unlock(&r->lock);
			if (stop)
				break;
			if (reload) {
				struct itr_reload_result res;
				do_reload(r, reload, &res);
				pthread_mutex_lock(&r->lock);
				r->reload_res = res;
				r->reload_done = true;
				pthread_cond_broadcast(&r->cond);
				pthread_mutex_unlock(&r->lock);
			}
		}
		if (n > 0 && (pfd[0].revents & (POLLIN | POLLERR))) {
			int rc = nl_cache_mngr_data_ready(r->mngr);
			publish_counts(r);
			if (rc < 0 || r->cb_error) {
				/* A lost notification (ENOBUFS) or a failed update:
				 * the cache no longer mirrors the kernel; re-dump. */
				r->cb_error = 0;
				if (resync(r) < 0)
					fprintf(stderr, "itrackerd: routes: re-dump failed\n");
			}
		}
	}
	return NULL;
}

/* Everything the follower holds, once no thread of it runs (a start that
 * failed half way included). */
static void routes_free(struct itr_routes *r)
{
	snapshot_free(r->snap_pending);
	itr_netmap_unref(r->reload_map);
	if (r->mngr)
		nl_cache_mngr_free(r->mngr);
	nl_socket_free(r->event_sock);
	nl_socket_free(r->sync_sock);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	rt_free(&r->st);
	itr_netmap_unref(r->file);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

void itr_routes_stop(struct itr_routes *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->d->reload_lock);
	if (r->d->file_map_ctx == r) {
		r->d->file_map_handler = NULL;
		r->d->file_map_ctx = NULL;
	}
	pthread_mutex_unlock(&r->d->reload_lock);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	uint64_t one = 1;
	if (write(r->wake_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for an eventfd below its maximum */
	}
	pthread_join(r->follower, NULL);
	pthread_join(r->publisher, NULL);
	routes_free(r);
}

struct itr_routes *itr_routes_start(struct itr_daemon *d, const struct itr_routes_config *cfg,
                                    char *err, size_t len)
{
	if (sodium_init() < 0) {
		snprintf(err, len, "routes: libsodium failed to initialise");
		return NULL;
	}
	struct itr_routes *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, len, "routes: out of memory");
		return NULL;
	}
	r->d = d;
	r->cfg = *cfg;
	if (!r->cfg.quiet_us)
		r->cfg.quiet_us = 1000;
	if (!r->cfg.max_delay_us)
		r->cfg.max_delay_us = 10000;
	if (!r->cfg.publish_cost_factor)
		r->cfg.publish_cost_factor = 4;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->wake_fd = -1;
	itr_coalescer_init(&r->co, (uint64_t)r->cfg.quiet_us * 1000,
	                   (uint64_t)r->cfg.max_delay_us * 1000);
	if (rt_init(&r->st)) {
		snprintf(err, len, "routes: out of memory");
		goto fail_early;
	}
	r->file = itr_netmap_current();
	if (!r->file) {
		snprintf(err, len, "routes: no network map is published to add routes to");
		goto fail_early;
	}
	r->st.file = r->file;
	r->st.winner = r->cfg.winner;
	if (itr_routes_resolve(&r->cfg, r->file, r->st.rule_pid, err, len))
		goto fail_early;
	r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->wake_fd < 0) {
		snprintf(err, len, "routes: eventfd: %s", strerror(errno));
		goto fail_early;
	}
	r->sync_sock = nl_socket_alloc();
	if (!r->sync_sock || nl_connect(r->sync_sock, NETLINK_ROUTE) < 0) {
		snprintf(err, len, "routes: cannot open a netlink socket");
		goto fail_early;
	}
	set_rcvbuf(nl_socket_get_fd(r->sync_sock), 64 << 20);
	/* Our own event socket: libnl's default reads every message twice
	 * (a MSG_PEEK for its size, then the read); notifications are small,
	 * so one read into a fixed buffer does. */
	r->event_sock = nl_socket_alloc();
	if (!r->event_sock) {
		snprintf(err, len, "routes: out of memory");
		goto fail_early;
	}
	nl_socket_disable_msg_peek(r->event_sock);
	nl_socket_set_msg_buf_size(r->event_sock, 65536);
	int rc = nl_cache_mngr_alloc(r->event_sock, NETLINK_ROUTE, 0, &r->mngr);
	if (rc < 0) {
		snprintf(err, len, "routes: libnl cache manager: %s", nl_geterror(rc));
		goto fail_early;
	}
	set_rcvbuf(nl_cache_mngr_get_fd(r->mngr), 256 << 20);
	/* Subscribes to the IPv4 and IPv6 route groups, then dumps: a change
	 * made during the dump is seen either in the dump or as an event. */
	rc = nl_cache_alloc_name("route/route", &r->cache);
	if (rc < 0) {
		snprintf(err, len, "routes: libnl route cache: %s", nl_geterror(rc));
		goto fail_early;
	}
	if (!widen_cache_hash(r->cache))
		fprintf(stderr, "itrackerd: routes: libnl's route cache keeps its small hash "
		                "table; very large route tables will load slowly\n");
	rc = nl_cache_mngr_add_cache(r->mngr, r->cache, change_cb, r);
	if (rc < 0) {
		nl_cache_free(r->cache);
		r->cache = NULL;
		snprintf(err, len, "routes: following route/route: %s", nl_geterror(rc));
		goto fail_early;
	}
	r->seeding = true;
	nl_cache_foreach(r->cache, seed_cb, r);
	r->seeding = false;
	if (r->cb_error) {
		snprintf(err, len, "routes: out of memory while reading the routes");
		goto fail_early;
	}
	/* First map: the tries hold the file map; install_map diffs to the merge. */
	r->st.ndirty = 0;
	for (size_t i = 0; i <= r->st.mask; i++)
		r->st.slots[i].dirty = 0;
	itr_coalescer_flushed(&r->co);
	struct snapshot *snap = take_snapshot(r);
	if (!snap) {
		snprintf(err, len, "routes: out of memory");
		goto fail_early;
	}
	struct itr_netmap_error merr = {0};
	struct itr_netmap *map =
	    itr_netmap_merge(snap->file, snap->routes, snap->n, r->cfg.winner, &merr);
	snapshot_free(snap);
	if (!map) {
		char msg[600];
		itr_netmap_error_format(&merr, msg, sizeof(msg));
		snprintf(err, len, "routes: merged map rejected: %s", msg);
		goto fail_early;
	}
	/* Drop empty nodes left by routes that matched no rule. */
	for (size_t i = 0; i <= r->st.mask;) {
		struct rt_node *n = &r->st.slots[i];
		if (n->used && !n->n)
			rt_delete(&r->st, n); /* may shift a later node into i */
		else
			i++;
	}
	struct itr_reload_result res;
	itr_daemon_install_map(d, map, &res);
	if (!res.ok) {
		snprintf(err, len, "routes: %s", res.error);
		goto fail_early;
	}
	r->map_dirty = false;
	r->publish_done_ns = itr_clock_ns();
	publish_counts(r);
	if (pthread_create(&r->publisher, NULL, publisher_main, r)) {
		snprintf(err, len, "routes: cannot start a thread");
		goto fail_early;
	}
	if (pthread_create(&r->follower, NULL, follower_main, r)) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->publisher, NULL);
		snprintf(err, len, "routes: cannot start a thread");
		goto fail_early;
	}
	pthread_mutex_lock(&d->reload_lock);
	d->file_map_handler = take_file_map;
	d->file_map_ctx = r;
	pthread_mutex_unlock(&d->reload_lock);
	struct itr_routes_stats st;
	itr_routes_get_stats(r, &st); /* the threads run: under the lock */
	fprintf(stderr, "itrackerd: following routes: %zu routes, %zu prefixes\n", st.routes,
	        st.prefixes);
	return r;
fail_early:
	routes_free(r);
	return NULL;
}

/* The daemon's file map handler while routes are followed: the follower
 * thread merges the routes into the new file map and installs the result
 * (do_reload); this waits for it. */
static void take_file_map(void *ctx, struct itr_netmap *file, struct itr_reload_result *res)
{
	struct itr_routes *r = ctx;
	pthread_mutex_lock(&r->lock);
	while (r->reload_pending)
		pthread_cond_wait(&r->cond, &r->lock);
	r->reload_map = file;
	r->reload_pending = true;
	r->reload_done = false;
	pthread_mutex_unlock(&r->lock);
	uint64_t one = 1;
	if (write(r->wake_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for an eventfd below its maximum */
	}
	pthread_mutex_lock(&r->lock);
	while (!r->reload_done && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
	bool done = r->reload_done;
	if (done)
		*res = r->reload_res;
	r->reload_done = false;
	pthread_mutex_unlock(&r->lock);
	if (!done) {
		snprintf(res->error, sizeof(res->error), "the route follower is stopping");
		itr_daemon_refused(r->d, res, ITR_RELOAD_FAILED);
	}
}

void itr_routes_get_stats(struct itr_routes *r, struct itr_routes_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->stats;
	pthread_mutex_unlock(&r->lock);
}
