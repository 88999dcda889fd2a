/* tracker.c - announce and scrape for both tracker front ends.
 *
 * An announce stores the peer under its PID's group, asks the store for a
 * bounded set of candidates (the client's PID first, then a sample of the
 * rest that depends only on the swarm and the client), and lets itr_rank
 * order them by p-distance under the locality policy. Everything is a pure
 * function of the swarm's content and the client's address, so a client
 * that re-announces sees the same list while the swarm stays the same.
 *
 * Groups are PID indexes in the current network map. A map reload builds a
 * new id -> index table with a new generation number; the store regroups a
 * swarm lazily the next time it is touched.
 */
#include "tracker.h"
#include "clock.h"
#include "epoch.h"

#include "peer_policy.h"
#include "price.h"
#include "quota.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "announce_backend.h"

struct proxy_prefix {
	uint8_t family;
	uint8_t len;
	uint8_t addr[16];
};

struct pid_group {
	uint32_t id;
	uint16_t group;
};

struct as_group {
	uint32_t asn;
	uint16_t group;
};

/* An immutable snapshot: one network map and its PID id -> group table. */
struct group_index {
	struct itr_epoch_node retire; /* first: the node is the index */
	uint64_t publishes;           /* itr_netmap_publish_count it was built for */
	struct itr_netmap *map;       /* may be NULL: no map published yet */
	uint32_t generation;
	size_t n;
	struct pid_group *ids;      /* sorted by id */
	struct as_group *as_groups; /* n of them, sorted by (asn, group) */
};

/* The price controller's view of one AS in one swarm, kept for the second
 * it was tallied in when the tally read many records (big swarms): the
 * controller's own table used to refresh its aggregates once a second. */
#define VIEW_CACHE_SLOTS   1024
#define VIEW_CACHE_STRIPES 64
#define VIEW_CACHE_MIN     256 /* records read: below this a tally is cheaper than a lookup */
struct view_slot {
	uint8_t info_hash[ITR_INFO_HASH_LEN];
	uint32_t asn;
	uint32_t generation;
	uint32_t at; /* second of the tally; 0 with used false: empty */
	bool used;
	struct itr_price_as_view view;
};

/* Counters every announce bumps, one set per stripe, each stripe on cache
 * lines of its own; a thread counts in its own stripe and readers sum them.
 * One shared counter was a locked add on a line that every worker wrote
 * and pulled from the others, on every announce. */
#define COUNT_STRIPES 16
struct count_stripe {
	_Alignas(64) atomic_uint_fast64_t announces;
	atomic_uint_fast64_t scrapes;
	atomic_uint_fast64_t rejected;
	atomic_uint_fast64_t by_transport[ITR_TRANSPORT_MAX][ITR_OUTCOME_MAX];
	atomic_uint_fast64_t refused[ITR_REFUSED_MAX];
};

static atomic_uint next_count_stripe;
static _Thread_local unsigned count_stripe_plus1; /* 0: not chosen yet */

/* This thread's stripe: threads take them in turn as they first count. */
static struct count_stripe *my_counts(struct itr_tracker *tr);

static void count_one(atomic_uint_fast64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

struct itr_tracker {
	struct itr_tracker_config cfg;
	struct itr_swarm_store *store;
	bool own_store;
	struct proxy_prefix *proxies;
	size_t nproxies;
	uint8_t seed_key[crypto_shorthash_KEYBYTES];

	pthread_mutex_t index_lock; /* held to replace the index, never to read it */
	_Atomic(struct group_index *) index;
	uint32_t next_generation;

	struct itr_announce_backend backend; /* the local store's */
	struct itr_announce_backend *active; /* what the front ends use */
	struct count_stripe counts[COUNT_STRIPES];
	struct itr_quota *quota;
	struct view_slot *views; /* VIEW_CACHE_SLOTS, with a price controller */
	pthread_mutex_t view_locks[VIEW_CACHE_STRIPES];

	struct itr_periodic janitor;
};

static struct count_stripe *my_counts(struct itr_tracker *tr)
{
	if (!count_stripe_plus1)
		count_stripe_plus1 =
		    atomic_fetch_add_explicit(&next_count_stripe, 1, memory_order_relaxed) %
		        COUNT_STRIPES +
		    1;
	return &tr->counts[count_stripe_plus1 - 1];
}

/* The sum over the stripes of the counter at offset `field`. */
static uint64_t count_sum(const struct itr_tracker *tr, size_t field)
{
	uint64_t sum = 0;
	for (int i = 0; i < COUNT_STRIPES; i++)
		sum += atomic_load_explicit(
		    (const atomic_uint_fast64_t *)((const char *)&tr->counts[i] + field),
		    memory_order_relaxed);
	return sum;
}

void itr_tracker_config_default(struct itr_tracker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->interval = 1800;
	cfg->min_interval = 900;
	cfg->default_numwant = 50;
	cfg->max_numwant = 200;
	cfg->peer_expiry = 2700;
	cfg->max_torrents = 1000000;
	cfg->max_peers = 10000000;
	cfg->max_candidates = 1000;
	cfg->max_scrape = 100;
	cfg->max_peers_per_source = 16;
	cfg->max_torrents_per_source = 10000;
	cfg->announce_rate = 50;
	cfg->announce_burst = 1000;
	cfg->source_table = 65536;
	itr_rank_policy_default(&cfg->policy);
}

static uint32_t monotonic_seconds(void *arg)
{
	(void)arg;
	return (uint32_t)(itr_clock_ns() / 1000000000u);
}

uint32_t itr_tracker_now(const struct itr_tracker *tr)
{
	return tr->cfg.clock(tr->cfg.clock_arg);
}

const struct itr_tracker_config *itr_tracker_get_config(const struct itr_tracker *tr)
{
	return &tr->cfg;
}

/* ---- trusted proxies ----------------------------------------------------- */

static int parse_proxy(const char *text, struct proxy_prefix *out, char *why, size_t whylen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	if (strlen(text) >= sizeof(buf)) {
		snprintf(why, whylen, "trusted proxy '%s' is too long", text);
		return -1;
	}
	strcpy(buf, text);
	char *slash = strchr(buf, '/');
	long len = -1;
	if (slash) {
		char *end;
		*slash = '\0';
		errno = 0;
		len = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || len < 0) {
			snprintf(why, whylen, "trusted proxy '%s': bad prefix length", text);
			return -1;
		}
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		if (len < 0)
			len = 32;
		if (len > 32) {
			snprintf(why, whylen, "trusted proxy '%s': prefix longer than 32", text);
			return -1;
		}
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		out->family = 6;
		if (len < 0)
			len = 128;
		if (len > 128) {
			snprintf(why, whylen, "trusted proxy '%s': prefix longer than 128", text);
			return -1;
		}
		/* Requests from IPv4-mapped sources are matched as IPv4
		 * (itr_peer_addr_from_sockaddr), so a mapped entry must be too. */
		if (memcmp(out->addr, v4mapped, 12) == 0) {
			if (len < 96) {
				snprintf(
				    why, whylen,
				    "trusted proxy '%s': an IPv4-mapped prefix needs a length of "
				    "at least 96",
				    text);
				return -1;
			}
			memmove(out->addr, out->addr + 12, 4);
			memset(out->addr + 4, 0, 12);
			out->family = 4;
			len -= 96;
		}
	} else {
		snprintf(why, whylen, "trusted proxy '%s' is not an IP address or prefix", text);
		return -1;
	}
	out->len = (uint8_t)len;
	return 0;
}

static int parse_proxies(struct itr_tracker *tr, const char *list, char *err, size_t errlen)
{
	if (!list)
		return 0;
	char *copy = strdup(list);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", \t\n", &save); tok;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		struct proxy_prefix p;
		if (parse_proxy(tok, &p, err, errlen) < 0) {
			rc = -1;
			break;
		}
		struct proxy_prefix *grown = realloc(tr->proxies, (tr->nproxies + 1) * sizeof(p));
		if (!grown) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		tr->proxies = grown;
		tr->proxies[tr->nproxies++] = p;
	}
	free(copy);
	return rc;
}

static bool prefix_covers(const struct proxy_prefix *p, const struct itr_peer_addr *a)
{
	if (p->family != a->family)
		return false;
	unsigned full = p->len / 8, rest = p->len % 8;
	if (memcmp(p->addr, a->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (p->addr[full] & mask) == (a->addr[full] & mask);
}

bool itr_tracker_trusts(const struct itr_tracker *tr, const struct itr_peer_addr *addr)
{
	for (size_t i = 0; i < tr->nproxies; i++)
		if (prefix_covers(&tr->proxies[i], addr))
			return true;
	return false;
}

const char *itr_refusal_name(enum itr_refusal r)
{
	static const char *const names[ITR_REFUSED_MAX] = {
	    "none",          "address",   "rate", "source_peers", "source_torrents",
	    "torrents_full", "peers_full"};
	return r < ITR_REFUSED_MAX ? names[r] : "unknown";
}

const char *itr_tracker_refusal_text(const struct itr_announce_reply *reply)
{
	if (reply->refused == ITR_REFUSED_ADDRESS)
		return "refused: this address cannot be a peer";
	if (reply->refused == ITR_REFUSED_RATE)
		return "too many announces from your address, try again later";
	switch (reply->stored) {
	case ITR_SWARM_NO_TORRENTS:
		return "tracker full: torrent not stored";
	case ITR_SWARM_NO_PEERS:
		return "tracker full: peer not stored";
	case ITR_SWARM_SOURCE_PEERS:
		return "peer not stored: too many peers from your address in this torrent";
	case ITR_SWARM_SOURCE_SWARMS:
		return "peer not stored: your address is in too many torrents";
	default:
		return NULL;
	}
}

static void count_refused(struct itr_tracker *tr, enum itr_refusal r)
{
	count_one(&my_counts(tr)->refused[r]);
}

const char *itr_tracker_peer_refusal(struct itr_tracker *tr, const struct itr_peer_addr *addr)
{
	const char *why = itr_peer_refusal(addr, tr->cfg.loopback_peers);
	if (why)
		count_refused(tr, ITR_REFUSED_ADDRESS);
	return why;
}

/* Milliseconds for the announce buckets: the injected clock's seconds in
 * tests, CLOCK_MONOTONIC otherwise. */
static uint64_t now_ms(const struct itr_tracker *tr)
{
	if (tr->cfg.clock != monotonic_seconds)
		return (uint64_t)itr_tracker_now(tr) * 1000;
	return (uint64_t)itr_clock_ms();
}

const char *itr_tracker_admit(struct itr_tracker *tr, const struct itr_peer_addr *client)
{
	if (itr_quota_take(tr->quota, client, now_ms(tr)))
		return NULL;
	count_refused(tr, ITR_REFUSED_RATE);
	return itr_tracker_refusal_text(&(struct itr_announce_reply){.refused = ITR_REFUSED_RATE});
}

const char *itr_tracker_udp_client(struct itr_tracker *tr, const struct itr_peer_addr *src,
                                   const uint8_t ipv4[4], uint16_t port, struct itr_peer_addr *out)
{
	static const uint8_t zero[4];
	*out = *src;
	out->port = port;
	if (src->family == 4 && tr->cfg.accept_ip_param && memcmp(ipv4, zero, 4) != 0 &&
	    itr_tracker_trusts(tr, src))
		memcpy(out->addr, ipv4, 4);
	return itr_tracker_peer_refusal(tr, out);
}

int itr_peer_addr_from_sockaddr(const struct sockaddr *sa, struct itr_peer_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		out->family = 4;
		memcpy(out->addr, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		out->port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			out->family = 4;
			memcpy(out->addr, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			out->family = 6;
			memcpy(out->addr, &sin6->sin6_addr, 16);
		}
		return 0;
	}
	return -1;
}

/* ---- PID groups ---------------------------------------------------------- */

static void index_free(struct itr_epoch_node *node)
{
	struct group_index *idx = (struct group_index *)node;
	if (idx->map)
		itr_netmap_unref(idx->map);
	free(idx->ids);
	free(idx->as_groups);
	free(idx);
}

static int compare_pid_group(const void *a, const void *b)
{
	const struct pid_group *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int compare_as_group(const void *a, const void *b)
{
	const struct as_group *x = a, *y = b;
	if (x->asn != y->asn)
		return x->asn < y->asn ? -1 : 1;
	return (x->group > y->group) - (x->group < y->group);
}

/* Takes over the caller's reference to map. */
static struct group_index *index_build(struct itr_netmap *map, uint32_t generation)
{
	struct group_index *idx = calloc(1, sizeof(*idx));
	if (!idx)
		return NULL;
	idx->map = map;
	idx->generation = generation;
	if (!map)
		return idx;
	size_t n = itr_netmap_pid_count(map);
	idx->ids = calloc(n ? n : 1, sizeof(*idx->ids));
	idx->as_groups = calloc(n ? n : 1, sizeof(*idx->as_groups));
	if (!idx->ids || !idx->as_groups) {
		free(idx->ids);
		free(idx->as_groups);
		idx->map = NULL;
		free(idx);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		idx->ids[i].id = itr_netmap_pid_at(map, i)->id;
		/* group 0 is "no PID"; past 65535 PIDs groups are shared, which
		 * only blurs the sampling hint and the price controller's
		 * counts per AS, never the ranking */
		idx->ids[i].group = (uint16_t)(i % 0xffff + 1);
		idx->as_groups[i].asn = itr_netmap_pid_at(map, i)->asn;
		idx->as_groups[i].group = idx->ids[i].group;
	}
	qsort(idx->ids, n, sizeof(*idx->ids), compare_pid_group);
	qsort(idx->as_groups, n, sizeof(*idx->as_groups), compare_as_group);
	idx->n = n;
	return idx;
}

/* A new map was published since the index was built: build one for it
 * (under the lock, once for all threads) and retire the old one. */
static struct group_index *index_refresh(struct itr_tracker *tr, uint64_t publishes)
{
	pthread_mutex_lock(&tr->index_lock);
	struct group_index *idx = atomic_load(&tr->index);
	if (!idx || idx->publishes != publishes) {
		struct itr_netmap *map = itr_netmap_current();
		/* A map that only re-prices links (price.h) has the same PIDs:
		 * the groups stay valid, the swarms need no regrouping. */
		bool same_pids =
		    idx && idx->map && map && itr_netmap_base(idx->map) == itr_netmap_base(map);
		struct group_index *fresh =
		    index_build(map, same_pids ? idx->generation : ++tr->next_generation);
		if (fresh) {
			fresh->publishes = publishes;
			atomic_store(&tr->index, fresh);
			if (idx)
				itr_epoch_retire(&idx->retire, index_free);
			idx = fresh;
		} else if (map) {
			itr_netmap_unref(map); /* out of memory: the old index serves */
		}
	}
	pthread_mutex_unlock(&tr->index_lock);
	return idx;
}

/* The index for the current map, borrowed until index_put: a read of
 * two shared words that change only when a map is published, with no
 * lock and no shared write (epoch.h). It took the tracker's lock, the
 * map's lock and two shared reference counts per announce before, which
 * made two threads announce slower than one (bench_scaling). NULL (no
 * index could be built) needs no index_put. */
static struct group_index *index_get(struct itr_tracker *tr)
{
	itr_epoch_enter();
	uint64_t publishes = itr_netmap_publish_count();
	struct group_index *idx = atomic_load_explicit(&tr->index, memory_order_acquire);
	if (!idx || idx->publishes != publishes)
		idx = index_refresh(tr, publishes);
	if (!idx)
		itr_epoch_exit();
	return idx;
}

static void index_put(struct group_index *idx)
{
	if (idx)
		itr_epoch_exit();
}

static uint16_t group_of(void *ctx, uint8_t family, const uint8_t *addr)
{
	const struct group_index *idx = ctx;
	if (!idx->map)
		return 0;
	const struct itr_pid *pid = itr_netmap_lookup(idx->map, family, addr);
	if (!pid)
		return 0;
	size_t lo = 0, hi = idx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (idx->ids[mid].id < pid->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < idx->n && idx->ids[lo].id == pid->id ? idx->ids[lo].group : 0;
}

/* ---- announce / scrape --------------------------------------------------- */

#define CANDIDATES_MIN      64
#define CANDIDATES_ON_STACK 320 /* 200 + 100 + 16 and change: the default max_numwant */

/* SipHash of msg under the tracker's random key: what a client sends
 * cannot steer it. */
static uint64_t keyed_hash(const struct itr_tracker *tr, const uint8_t *msg, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;
	crypto_shorthash(out, msg, len, tr->seed_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static uint64_t client_seed(const struct itr_tracker *tr, const struct itr_announce *ann)
{
	uint8_t msg[ITR_INFO_HASH_LEN + 1 + 16 + 2];
	memcpy(msg, ann->info_hash, ITR_INFO_HASH_LEN);
	msg[20] = ann->peer.family;
	memcpy(msg + 21, ann->peer.addr, 16);
	msg[37] = (uint8_t)(ann->peer.port >> 8);
	msg[38] = (uint8_t)ann->peer.port;
	return keyed_hash(tr, msg, sizeof(msg));
}

/* Bucket order for the store: p-distance from the client's PID to the
 * group's PID (group g is PID index g - 1, group 0 no PID). */
struct cost_order {
	const struct group_index *idx;
	const struct itr_pid *client_pid;
};

static uint32_t group_cost(void *ctx, uint16_t group)
{
	const struct cost_order *co = ctx;
	const struct itr_netmap *map = co->idx->map;
	if (!map || !co->client_pid)
		return 0; /* no position: plain BEP 40 order, no bucket is nearer */
	const struct itr_pid *pid = NULL;
	if (group && (size_t)group - 1 < co->idx->n)
		pid = itr_netmap_pid_at(map, (size_t)group - 1);
	return itr_netmap_cost(map, co->client_pid, pid);
}

/* ---- the price controller's view of a swarm ------------------------------ */

/* The groups of an AS in the index: a run of as_groups. */
static size_t as_groups_of(const struct group_index *idx, uint32_t asn, size_t *first)
{
	size_t lo = 0, hi = idx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (idx->as_groups[mid].asn < asn)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < idx->n && idx->as_groups[end].asn == asn)
		end++;
	*first = lo;
	return end - lo;
}

static void view_of(const struct itr_swarm_tally *part, const struct itr_swarm_tally *all,
                    struct itr_price_as_view *v)
{
	memset(v, 0, sizeof(*v));
	if (!part->peers)
		return; /* the AS has no peer here: nothing is known */
	v->peers = part->peers;
	v->seeds = part->seeders;
	v->remaining = (double)part->left_units / ITR_SWARM_LEFT_UNITS / part->peers;
	v->swarm_remaining =
	    all->peers ? (double)all->left_units / ITR_SWARM_LEFT_UNITS / all->peers : 0;
	v->swarm_seeds = all->seeders;
}

/* Keyed, like the store's table: from the info_hash's bytes alone, a
 * client could pick hashes that share a slot with a big swarm's view and
 * keep evicting it, so that each of that swarm's announces re-counts its
 * AS's records (O(swarm), where an announce is meant to be O(numwant)). */
static size_t view_slot_of(const struct itr_tracker *tr, const uint8_t *ih, uint32_t asn)
{
	uint8_t msg[ITR_INFO_HASH_LEN + 4];
	memcpy(msg, ih, ITR_INFO_HASH_LEN);
	memcpy(msg + ITR_INFO_HASH_LEN, &asn, sizeof(asn));
	return (size_t)(keyed_hash(tr, msg, sizeof(msg)) % VIEW_CACHE_SLOTS);
}

/* AS asn's view of the swarm from the store's tally of its groups, or from
 * the cache when a tally of many records was taken this second.
 * swarm_peers: the swarm's size as the announce just counted it, or
 * UINT64_MAX when not known. A swarm under VIEW_CACHE_MIN cannot give a
 * view the cache keeps, and most swarms are small: for them the lookup
 * (a keyed hash, a stripe lock, a slot's line) was all cost. */
static void swarm_view(struct itr_tracker *tr, const struct group_index *idx, const uint8_t *ih,
                       uint32_t asn, uint64_t swarm_peers, struct itr_price_as_view *v)
{
	uint32_t now = itr_tracker_now(tr);
	struct view_slot *vs = NULL;
	pthread_mutex_t *lock = NULL;
	if (tr->views && swarm_peers >= VIEW_CACHE_MIN) {
		size_t slot = view_slot_of(tr, ih, asn);
		vs = &tr->views[slot];
		lock = &tr->view_locks[slot % VIEW_CACHE_STRIPES];
	}
	if (vs) {
		pthread_mutex_lock(lock);
		bool hit = vs->used && vs->at == now && vs->asn == asn &&
		           vs->generation == idx->generation &&
		           memcmp(vs->info_hash, ih, ITR_INFO_HASH_LEN) == 0;
		if (hit)
			*v = vs->view;
		pthread_mutex_unlock(lock);
		if (hit)
			return;
	}
	size_t first, n = as_groups_of(idx, asn, &first);
	uint16_t stack_groups[64], *groups = stack_groups;
	if (n > 64 && !(groups = malloc(n * sizeof(*groups)))) {
		groups = stack_groups;
		n = 64; /* a part of the AS rather than nothing */
	}
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		uint16_t g = idx->as_groups[first + i].group;
		/* groups are shared past 65535 PIDs: each once, ascending */
		if (ng == 0 || groups[ng - 1] != g)
			groups[ng++] = g;
	}
	struct itr_swarm_grouping grouping = {
	    .generation = idx->generation, .group_of = group_of, .ctx = (void *)idx};
	struct itr_swarm_tally part, all;
	itr_swarm_tally(tr->store, ih, groups, ng, &grouping, now, &part, &all);
	if (groups != stack_groups)
		free(groups);
	view_of(&part, &all, v);
	if (vs && part.peers >= VIEW_CACHE_MIN) {
		pthread_mutex_lock(lock);
		memcpy(vs->info_hash, ih, ITR_INFO_HASH_LEN);
		vs->asn = asn;
		vs->generation = idx->generation;
		vs->at = now;
		vs->used = true;
		vs->view = *v;
		pthread_mutex_unlock(lock);
	}
}

/* The configured policy with the swarm's gateway salt and, with a price
 * controller, the external budget of the client's AS in this swarm
 * (swarm_peers as for swarm_view). */
static void policy_for(struct itr_tracker *tr, const struct group_index *idx,
                       const struct itr_announce *ann, uint64_t swarm_peers,
                       struct itr_rank_policy *policy)
{
	*policy = tr->cfg.policy;
	/* each swarm picks its own gateway peers per AS */
	policy->gateway_salt = itr_rank_swarm_salt(ann->info_hash);
	if (!tr->cfg.price || !idx->map)
		return;
	const struct itr_pid *pid = itr_netmap_lookup(idx->map, ann->peer.family, ann->peer.addr);
	if (!pid)
		return;
	struct itr_price_as_view v;
	swarm_view(tr, idx, ann->info_hash, pid->asn, swarm_peers, &v);
	itr_price_policy_from_view(tr->cfg.price, idx->map, pid->asn, &v, policy);
}

/* The tick's walk over every swarm: each group's tally summed per AS. */
struct as_walk {
	const struct group_index *idx;
	itr_price_emit_fn emit;
	void *ectx;
	struct {
		uint32_t asn;
		struct itr_swarm_tally t;
	} * ases;
	size_t cap;
};

static void walk_swarm(void *ctx, const struct itr_swarm_group_tally *groups, size_t ngroups,
                       const struct itr_swarm_tally *all)
{
	struct as_walk *w = ctx;
	size_t n = 0;
	for (size_t k = 0; k < ngroups; k++) {
		uint16_t g = groups[k].group;
		uint32_t asn = g && (size_t)g - 1 < w->idx->n
		                   ? itr_netmap_pid_at(w->idx->map, (size_t)g - 1)->asn
		                   : 0;
		size_t i = 0;
		while (i < n && w->ases[i].asn != asn)
			i++;
		if (i == n) {
			if (n == w->cap) {
				size_t bigger = w->cap ? w->cap * 2 : 16;
				void *grown = realloc(w->ases, bigger * sizeof(*w->ases));
				if (!grown)
					break; /* the ASes found so far */
				w->ases = grown;
				w->cap = bigger;
			}
			w->ases[n].asn = asn;
			memset(&w->ases[n].t, 0, sizeof(w->ases[n].t));
			n++;
		}
		w->ases[i].t.peers += groups[k].tally.peers;
		w->ases[i].t.seeders += groups[k].tally.seeders;
		w->ases[i].t.left_units += groups[k].tally.left_units;
	}
	for (size_t i = 0; i < n; i++) {
		struct itr_price_as_view v;
		view_of(&w->ases[i].t, all, &v);
		w->emit(w->ectx, w->ases[i].asn, &v);
	}
}

static void walk_swarms(void *ctx, itr_price_emit_fn emit, void *ectx)
{
	struct itr_tracker *tr = ctx;
	struct group_index *idx = index_get(tr);
	if (!idx)
		return;
	if (idx->map) {
		struct itr_swarm_grouping grouping = {
		    .generation = idx->generation, .group_of = group_of, .ctx = idx};
		struct as_walk w = {.idx = idx, .emit = emit, .ectx = ectx};
		tr->store->ops->tally_each(tr->store, &grouping, itr_tracker_now(tr), walk_swarm,
		                           &w);
		free(w.ases);
	}
	index_put(idx);
}

/* Store (or, on stopped, remove) the peer, then write up to max candidates
 * for it to cands: its own group plus a stable sample of the rest. Returns
 * how many, or -1 if out of memory. */
static long store_and_select(struct itr_tracker *tr, struct group_index *idx,
                             const struct itr_announce *ann, struct itr_announce_reply *reply,
                             struct itr_peer_addr *cands, uint16_t *groups, size_t max)
{
	uint32_t now = itr_tracker_now(tr);
	struct itr_swarm_grouping grouping = {
	    .generation = idx->generation,
	    .group_of = group_of,
	    .ctx = idx,
	};
	/* The front ends refuse these first; this guards every other caller. */
	if (itr_tracker_peer_refusal(tr, &ann->peer)) {
		reply->refused = ITR_REFUSED_ADDRESS;
		return 0;
	}
	uint16_t group = group_of(idx, ann->peer.family, ann->peer.addr);
	bool seeder = ann->left == 0;

	if (ann->event == ITR_EVENT_STOPPED) {
		itr_swarm_remove(tr->store, ann->info_hash, &ann->peer, group, &grouping, now,
		                 &reply->counts);
		return 0;
	}
	struct itr_swarm_announce sa = {
	    .peer = ann->peer,
	    .group = group,
	    .seeder = seeder,
	    .completed = ann->event == ITR_EVENT_COMPLETED,
	    .max_per_source = tr->cfg.max_peers_per_source,
	    .left = ann->left,
	    .downloaded = ann->downloaded,
	};
	reply->stored =
	    itr_swarm_announce(tr->store, ann->info_hash, &sa, &grouping, now, &reply->counts);
	switch (reply->stored) {
	case ITR_SWARM_NO_MEMORY:
		return -1;
	case ITR_SWARM_SOURCE_PEERS:
		count_refused(tr, ITR_REFUSED_SOURCE_PEERS);
		break;
	case ITR_SWARM_SOURCE_SWARMS:
		count_refused(tr, ITR_REFUSED_SOURCE_TORRENTS);
		break;
	case ITR_SWARM_NO_TORRENTS:
		count_refused(tr, ITR_REFUSED_TORRENTS_FULL);
		break;
	case ITR_SWARM_NO_PEERS:
		count_refused(tr, ITR_REFUSED_PEERS_FULL);
		break;
	default:
		break;
	}
	if (max == 0)
		return 0;
	struct cost_order order = {
	    .idx = idx,
	    .client_pid =
	        idx->map ? itr_netmap_lookup(idx->map, ann->peer.family, ann->peer.addr) : NULL,
	};
	struct itr_swarm_select sel = {
	    .client = ann->peer,
	    .group = group,
	    /* A seeder needs no seeders - except to see its whole AS when
	     * gateways are chosen: without them every completed peer would
	     * find itself alone in its AS, hence a gateway, and get a list
	     * topped up from outside. */
	    .no_seeders = seeder && !tr->cfg.policy.gateways,
	    .seed = client_seed(tr, ann),
	    .max = max,
	    .group_cost = group_cost,
	    .cost_ctx = &order,
	    .groups = groups,
	};
	return (long)itr_swarm_select(tr->store, ann->info_hash, &sel, &grouping, now, cands);
}

static void reply_start(struct itr_tracker *tr, struct itr_announce_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->interval = tr->cfg.interval;
	reply->min_interval = tr->cfg.min_interval;
	count_one(&my_counts(tr)->announces);
}

size_t itr_tracker_want(const struct itr_tracker *tr, const struct itr_announce *ann, size_t cap)
{
	if (ann->event == ITR_EVENT_STOPPED)
		return 0;
	size_t want = ann->numwant < 0 ? tr->cfg.default_numwant : (size_t)ann->numwant;
	if (want > tr->cfg.max_numwant)
		want = tr->cfg.max_numwant;
	return want < cap ? want : cap;
}

/* Store the announce and rank up to want candidates into peers. */
static int announce_ranked(struct itr_tracker *tr, const struct itr_announce *ann, size_t want,
                           struct itr_announce_reply *reply, struct itr_ranked_peer *peers)
{
	reply_start(tr, reply);
	struct group_index *idx = index_get(tr);
	if (!idx)
		return -1;

	/* Candidates in O(numwant): the store hands the nearest buckets first,
	 * so one and a half lists (and at least CANDIDATES_MIN, which covers
	 * whole small swarms: their lists are exactly the ranking rule's) are
	 * enough for the ranking, whatever the swarm's size. The ranking's
	 * cost grows with the candidates (callgrind: about 300 instructions
	 * each), which is why the budget is not larger. */
	size_t budget = want + want / 2 + 16;
	if (budget < CANDIDATES_MIN)
		budget = CANDIDATES_MIN;
	if (budget > tr->cfg.max_candidates)
		budget = tr->cfg.max_candidates;
	struct itr_peer_addr stack_cands[CANDIDATES_ON_STACK];
	struct itr_peer_addr *cands = NULL;
	if (want > 0 && ann->event != ITR_EVENT_STOPPED) {
		cands =
		    budget <= CANDIDATES_ON_STACK ? stack_cands : malloc(budget * sizeof(*cands));
		if (!cands) {
			index_put(idx);
			return -1;
		}
	}
	/* the store knows each candidate's PID (group g is PID index g - 1
	 * while PIDs are fewer than 65535): no trie walk per candidate */
	uint16_t groups[CANDIDATES_ON_STACK];
	bool known = cands == stack_cands && idx->map && idx->n < ITR_RANK_GROUPS_MAX;
	if (known) /* a store that does not fill them leaves "look it up" */
		for (size_t i = 0; i < budget; i++)
			groups[i] = ITR_SWARM_GROUP_UNKNOWN;
	long n =
	    store_and_select(tr, idx, ann, reply, cands, known ? groups : NULL, cands ? budget : 0);
	if (n > 0) {
		struct itr_rank_policy policy;
		policy_for(tr, idx, ann,
		           (uint64_t)reply->counts.complete + reply->counts.incomplete, &policy);
		/* The store hands each group's candidates in a fixed order
		 * (record order: address and port): in a bucket of more than
		 * 64, ties follow it from the client's own starting point
		 * instead of BEP 40 order (rank.c, "Rotated ties"). */
		policy.rotate_ties = true;
		/* with no map published yet itr_rank falls back to BEP 40 order;
		 * the store's records are one per address and port: distinct.
		 * Group 0 is no PID (a tenth of the lookups were for these);
		 * the ranking resolves a group once per run of it. */
		reply->npeers =
		    itr_rank_grouped(idx->map, &policy, &ann->peer, cands, known ? groups : NULL,
		                     true, (size_t)n, want, peers);
	}
	if (cands != stack_cands)
		free(cands);
	index_put(idx);
	return n < 0 ? -1 : 0;
}

void itr_tracker_policy(struct itr_tracker *tr, const struct itr_netmap *map,
                        const struct itr_announce *ann, struct itr_rank_policy *policy)
{
	(void)map; /* the index holds the current map; the view must match its groups */
	struct group_index *idx = index_get(tr);
	if (idx) {
		policy_for(tr, idx, ann, UINT64_MAX, policy);
		index_put(idx);
	} else {
		*policy = tr->cfg.policy;
		policy->gateway_salt = itr_rank_swarm_salt(ann->info_hash);
	}
}

int itr_tracker_announce(struct itr_tracker *tr, const struct itr_announce *ann,
                         struct itr_announce_reply *reply, struct itr_ranked_peer *peers,
                         size_t cap)
{
	return announce_ranked(tr, ann, itr_tracker_want(tr, ann, cap), reply, peers);
}

long itr_tracker_announce_candidates(struct itr_tracker *tr, const struct itr_announce *ann,
                                     struct itr_announce_reply *reply, struct itr_peer_addr *cands,
                                     size_t max)
{
	reply_start(tr, reply);
	struct group_index *idx = index_get(tr);
	if (!idx)
		return -1;
	long n = store_and_select(tr, idx, ann, reply, cands, NULL, max);
	index_put(idx);
	return n;
}

int itr_tracker_scrape(struct itr_tracker *tr, const uint8_t info_hash[ITR_INFO_HASH_LEN],
                       struct itr_swarm_counts *counts)
{
	count_one(&my_counts(tr)->scrapes);
	return itr_swarm_scrape(tr->store, info_hash, itr_tracker_now(tr), counts);
}

size_t itr_tracker_expire(struct itr_tracker *tr)
{
	size_t dropped = itr_swarm_expire(tr->store, itr_tracker_now(tr));
	/* after the store's leave hooks: the sources that expiry left in no
	 * swarm, and whose rate bucket is full again, are forgotten and the
	 * source table's empty pages returned */
	itr_quota_sweep(tr->quota, now_ms(tr));
	return dropped;
}

void itr_tracker_stats(struct itr_tracker *tr, struct itr_tracker_stats *stats)
{
	itr_swarm_stats(tr->store, &stats->store);
	stats->announces = count_sum(tr, offsetof(struct count_stripe, announces));
	stats->scrapes = count_sum(tr, offsetof(struct count_stripe, scrapes));
	stats->rejected = count_sum(tr, offsetof(struct count_stripe, rejected));
	for (int t = 0; t < ITR_TRANSPORT_MAX; t++)
		for (int o = 0; o < ITR_OUTCOME_MAX; o++)
			stats->by_transport[t][o] =
			    count_sum(tr, offsetof(struct count_stripe, by_transport[t][o]));
	for (int r = 0; r < ITR_REFUSED_MAX; r++)
		stats->refused[r] = count_sum(tr, offsetof(struct count_stripe, refused[r]));
	struct itr_quota_stats qs;
	itr_quota_stats(tr->quota, &qs);
	stats->sources = qs.sources;
	stats->sources_evicted = qs.evicted;
}

void itr_tracker_count_refusal(struct itr_tracker *tr, enum itr_refusal r)
{
	if (r > ITR_REFUSED_NONE && r < ITR_REFUSED_MAX)
		count_refused(tr, r);
}

struct itr_quota *itr_tracker_quota(struct itr_tracker *tr)
{
	return tr->quota;
}

void itr_tracker_count_rejected(struct itr_tracker *tr)
{
	count_one(&my_counts(tr)->rejected);
}

void itr_tracker_count_announce(struct itr_tracker *tr, enum itr_transport transport,
                                enum itr_outcome outcome)
{
	count_one(&my_counts(tr)->by_transport[transport][outcome]);
}

/* ---- the local store as an announce backend ------------------------------ */

static int local_announce(void *impl, const struct itr_backend_request *req,
                          struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
                          size_t want)
{
	struct itr_tracker *tr = impl;
	struct itr_announce_reply ar;
	itr_backend_reply_init(reply);
	if (announce_ranked(tr, &req->ann, want, &ar, peers) < 0)
		return -1;
	reply->interval = ar.interval;
	reply->min_interval = ar.min_interval;
	reply->counts = ar.counts;
	reply->has_downloaded = true;
	reply->npeers = ar.npeers;
	const char *text = itr_tracker_refusal_text(&ar);
	if (text)
		snprintf(ar.refused ? reply->failure : reply->warning, ITR_BACKEND_TEXT, "%s",
		         text);
	return 0;
}

static int local_scrape(void *impl, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                        struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	(void)failure;
	(void)failurelen;
	for (size_t i = 0; i < n; i++)
		itr_tracker_scrape(impl, hashes[i], &counts[i]);
	return 0;
}

static void local_stats(void *impl, struct itr_backend_stats *st)
{
	struct itr_tracker *tr = impl;
	struct itr_swarm_stats ss;
	itr_swarm_stats(tr->store, &ss);
	st->announces = count_sum(tr, offsetof(struct count_stripe, announces));
	st->scrapes = count_sum(tr, offsetof(struct count_stripe, scrapes));
	st->failures = 0;
	st->torrents = ss.torrents;
	st->peers = ss.peers_v4 + ss.peers_v6;
}

static const struct itr_announce_backend_ops local_ops = {
    .announce = local_announce,
    .scrape = local_scrape,
    .stats = local_stats,
};

struct itr_announce_backend *itr_tracker_backend(struct itr_tracker *tr)
{
	return &tr->backend;
}

void itr_tracker_use_backend(struct itr_tracker *tr, struct itr_announce_backend *be)
{
	tr->active = be ? be : &tr->backend;
}

struct itr_announce_backend *itr_tracker_active_backend(struct itr_tracker *tr)
{
	return tr->active;
}

/* ---- lifetime ------------------------------------------------------------ */

#define TRIM_AFTER_EXPIRED 256 /* peers: a trim costs a few ms, every 30 s at most */

static void janitor_job(void *arg)
{
	struct itr_tracker *tr = arg;
	/* Freed peer blocks go back to malloc's free lists, not to the
	 * system: after a flood expires, trim them (a few ms once). */
	if (itr_tracker_expire(tr) >= TRIM_AFTER_EXPIRED)
		malloc_trim(0);
}

int itr_tracker_start_janitor(struct itr_tracker *tr)
{
	int rc = itr_periodic_start(&tr->janitor, 30 * 1000, janitor_job, tr);
	if (rc) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* The store's hooks: per-source counts in the source table. */
static bool hook_enter(void *ctx, const struct itr_peer_addr *addr)
{
	return itr_quota_enter_swarm(((struct itr_tracker *)ctx)->quota, addr);
}

static void hook_leave(void *ctx, const struct itr_peer_addr *addr)
{
	itr_quota_leave_swarm(((struct itr_tracker *)ctx)->quota, addr);
}

static uint32_t hook_weight(void *ctx, const struct itr_peer_addr *addr)
{
	return itr_quota_swarms(((struct itr_tracker *)ctx)->quota, addr);
}

struct itr_tracker *itr_tracker_new(const struct itr_tracker_config *cfg,
                                    struct itr_swarm_store *store, char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return NULL;
	}
	if (cfg->max_numwant == 0 || cfg->max_candidates == 0 || cfg->peer_expiry == 0 ||
	    cfg->interval == 0) {
		snprintf(err, errlen,
		         "tracker config: interval, peer_expiry, max_numwant and max_candidates "
		         "must be positive");
		return NULL;
	}
	if (cfg->min_interval > cfg->interval) {
		snprintf(err, errlen, "tracker config: min_interval (%u) exceeds interval (%u)",
		         cfg->min_interval, cfg->interval);
		return NULL;
	}
	/* aligned: the counter stripes are a cache line each */
	struct itr_tracker *tr = aligned_alloc(_Alignof(struct itr_tracker), sizeof(*tr));
	if (tr)
		memset(tr, 0, sizeof(*tr));
	if (!tr) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tr->cfg = *cfg;
	tr->cfg.trusted_proxies = NULL; /* parsed below; the string stays the caller's */
	if (!tr->cfg.clock)
		tr->cfg.clock = monotonic_seconds;
	if (tr->cfg.default_numwant > tr->cfg.max_numwant)
		tr->cfg.default_numwant = tr->cfg.max_numwant;
	pthread_mutex_init(&tr->index_lock, NULL);
	for (int i = 0; i < VIEW_CACHE_STRIPES; i++)
		pthread_mutex_init(&tr->view_locks[i], NULL);
	randombytes_buf(tr->seed_key, sizeof(tr->seed_key));
	tr->backend = (struct itr_announce_backend){
	    .ops = &local_ops, .impl = tr, .threads = 0, .max_scrape = cfg->max_scrape};
	tr->active = &tr->backend;
	if (parse_proxies(tr, cfg->trusted_proxies, err, errlen) < 0) {
		itr_tracker_free(tr);
		return NULL;
	}
	struct itr_quota_config qc = {
	    .rate = cfg->announce_rate,
	    .burst = cfg->announce_burst,
	    .torrents = cfg->max_torrents_per_source,
	    .sources = cfg->source_table,
	};
	tr->quota = itr_quota_new(&qc);
	if (!tr->quota) {
		snprintf(err, errlen, "out of memory creating the source table");
		itr_tracker_free(tr);
		return NULL;
	}
	if (store) {
		tr->store = store;
	} else {
		struct itr_swarm_config sc = {
		    .max_torrents = cfg->max_torrents,
		    .max_peers = cfg->max_peers,
		    .hooks = {.enter = hook_enter,
		              .leave = hook_leave,
		              .weight = hook_weight,
		              .ctx = tr},
		    .peer_expiry = cfg->peer_expiry,
		    .shards = cfg->shards,
		};
		tr->store = itr_swarm_mem_new(&sc);
		tr->own_store = true;
		if (!tr->store) {
			snprintf(err, errlen, "out of memory creating the peer store");
			itr_tracker_free(tr);
			return NULL;
		}
	}
	if (tr->cfg.price) {
		tr->views = calloc(VIEW_CACHE_SLOTS, sizeof(*tr->views));
		if (!tr->views) {
			snprintf(err, errlen, "out of memory");
			itr_tracker_free(tr);
			return NULL;
		}
		/* the controller's per-AS totals come from this store */
		if (tr->store->ops->tally_each) {
			struct itr_price_swarm_source src = {.each = walk_swarms, .ctx = tr};
			itr_price_set_swarm_source(tr->cfg.price, &src);
		}
	}
	return tr;
}

void itr_tracker_free(struct itr_tracker *tr)
{
	if (!tr)
		return;
	itr_periodic_stop(&tr->janitor);
	if (tr->cfg.price && tr->views)
		itr_price_set_swarm_source(tr->cfg.price, NULL); /* before the store goes */
	if (tr->own_store)
		itr_swarm_destroy(tr->store);
	itr_quota_free(tr->quota);
	struct group_index *idx = atomic_load(&tr->index);
	if (idx) {
		itr_epoch_retire(&idx->retire, index_free);
		itr_epoch_reclaim();
	}
	pthread_mutex_destroy(&tr->index_lock);
	for (int i = 0; i < VIEW_CACHE_STRIPES; i++)
		pthread_mutex_destroy(&tr->view_locks[i]);
	free(tr->views);
	free(tr->proxies);
	free(tr);
}
