/* source_ledger.c - (source, torrent) pairs with their ports, in a bounded
 * set-associative table (see source_ledger.h).
 *
 * An entry is a 48-byte head and max_ports slots of 8 bytes (port and
 * expiry): 176 bytes with the default limit of 16, 11 MiB for the
 * default 65536 pairs, touched only as pairs arrive.
 */
#include "source_ledger.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

#define WAYS           8
#define STRIPES        64
#define SWEEP_PERIOD_S 60  /* the whole table is swept this often, given announces */
#define SWEEP_MAX_SETS 256 /* per announce at most (it holds one stripe at a time) */

struct pair {
	uint8_t addr[16];
	uint8_t family; /* 0: free */
	uint8_t nports;
	uint16_t port; /* max_ports 0: the one port seen last (nothing is limited) */
	uint8_t ih[ITR_INFO_HASH_LEN];
	uint32_t expires; /* the latest of its ports' */
	uint32_t seen;    /* last announce, for the least recently seen victim */
};

struct port_slot {
	uint16_t port;
	uint16_t pad;
	uint32_t expires;
};

struct itr_source_ledger {
	struct itr_source_ledger_config cfg;
	struct itr_quota *quota;
	size_t nsets, stride;
	uint8_t *slots; /* nsets * WAYS entries of stride bytes */
	pthread_mutex_t locks[STRIPES];
	uint8_t key[crypto_shorthash_KEYBYTES];
	atomic_size_t used;
	atomic_uint_fast64_t evicted;
	pthread_mutex_t sweep_lock;
	uint32_t sweep_at; /* the second the sweep was last due from */
	size_t sweep_cursor, sweep_due;
};

static struct pair *entry(struct itr_source_ledger *l, size_t set, int way)
{
	return (struct pair *)(l->slots + (set * WAYS + (size_t)way) * l->stride);
}

static struct port_slot *ports_of(struct pair *p)
{
	return (struct port_slot *)(p + 1);
}

struct itr_source_ledger *itr_source_ledger_new(const struct itr_source_ledger_config *cfg,
                                                struct itr_quota *quota)
{
	if (cfg->max_ports > ITR_LEDGER_MAX_PORTS || sodium_init() < 0)
		return NULL;
	struct itr_source_ledger *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->cfg = *cfg;
	l->quota = quota;
	size_t n = cfg->pairs ? cfg->pairs : 65536;
	l->nsets = (n + WAYS - 1) / WAYS;
	l->stride = sizeof(struct pair) + cfg->max_ports * sizeof(struct port_slot);
	l->slots = calloc(l->nsets * WAYS, l->stride);
	if (!l->slots) {
		free(l);
		return NULL;
	}
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&l->locks[i], NULL);
	pthread_mutex_init(&l->sweep_lock, NULL);
	randombytes_buf(l->key, sizeof(l->key));
	return l;
}

void itr_source_ledger_free(struct itr_source_ledger *l)
{
	if (!l)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&l->locks[i]);
	pthread_mutex_destroy(&l->sweep_lock);
	free(l->slots);
	free(l);
}

static size_t addr_len(uint8_t family)
{
	return family == 6 ? 16 : 4;
}

static size_t set_of(const struct itr_source_ledger *l, const uint8_t *ih,
                     const struct itr_peer_addr *a)
{
	uint8_t msg[1 + 16 + ITR_INFO_HASH_LEN], out[crypto_shorthash_BYTES];
	size_t alen = addr_len(a->family);
	msg[0] = a->family;
	memcpy(msg + 1, a->addr, alen);
	memcpy(msg + 1 + alen, ih, ITR_INFO_HASH_LEN);
	crypto_shorthash(out, msg, 1 + alen + ITR_INFO_HASH_LEN, l->key);
	uint64_t h;
	memcpy(&h, out, sizeof(h));
	return (size_t)(h % l->nsets);
}

static pthread_mutex_t *lock_of(struct itr_source_ledger *l, size_t set)
{
	return &l->locks[set % STRIPES];
}

static struct itr_peer_addr source_of(const struct pair *p)
{
	struct itr_peer_addr a = {.family = p->family};
	memcpy(a.addr, p->addr, addr_len(p->family));
	return a;
}

/* Forget a pair: its source leaves the torrent in the count. */
static void drop(struct itr_source_ledger *l, struct pair *p)
{
	struct itr_peer_addr src = source_of(p);
	itr_quota_leave_swarm(l->quota, &src);
	memset(p, 0, l->stride);
	atomic_fetch_sub(&l->used, 1);
}

/* Drop p's expired ports; the pair itself if nothing is left. true if it
 * is still live. */
static bool prune(struct itr_source_ledger *l, struct pair *p, uint32_t now)
{
	if (l->cfg.max_ports) {
		struct port_slot *ports = ports_of(p);
		uint32_t latest = 0;
		uint8_t kept = 0;
		for (uint8_t i = 0; i < p->nports; i++)
			if (ports[i].expires > now) {
				latest = ports[i].expires > latest ? ports[i].expires : latest;
				ports[kept++] = ports[i];
			}
		p->nports = kept;
		p->expires = latest;
	}
	if (p->expires > now)
		return true;
	drop(l, p);
	return false;
}

/* A few sets past the cursor: as many as the time since the last sweep
 * asks for (the whole table every SWEEP_PERIOD_S), at least one. */
static void sweep(struct itr_source_ledger *l, uint32_t now)
{
	if (pthread_mutex_trylock(&l->sweep_lock) != 0)
		return;
	if (now > l->sweep_at) {
		uint64_t due = (uint64_t)l->nsets * (now - l->sweep_at) / SWEEP_PERIOD_S;
		l->sweep_due = due > l->nsets ? l->nsets : (size_t)due;
		l->sweep_at = now;
	}
	size_t n = l->sweep_due > SWEEP_MAX_SETS ? SWEEP_MAX_SETS : l->sweep_due;
	if (n == 0)
		n = 1;
	l->sweep_due -= n <= l->sweep_due ? n : l->sweep_due;
	for (size_t k = 0; k < n; k++) {
		size_t set = l->sweep_cursor;
		l->sweep_cursor = (set + 1) % l->nsets;
		pthread_mutex_lock(lock_of(l, set));
		for (int w = 0; w < WAYS; w++) {
			struct pair *p = entry(l, set, w);
			if (p->family)
				prune(l, p, now);
		}
		pthread_mutex_unlock(lock_of(l, set));
	}
	pthread_mutex_unlock(&l->sweep_lock);
}

static bool is_pair(const struct pair *p, const uint8_t *ih, const struct itr_peer_addr *a)
{
	return p->family == a->family && memcmp(p->addr, a->addr, addr_len(a->family)) == 0 &&
	       memcmp(p->ih, ih, ITR_INFO_HASH_LEN) == 0;
}

/* A way for a new pair in the (locked) set: a free one, else the least
 * recently seen pair (forgotten: counted as evicted if still live). */
static struct pair *make_room(struct itr_source_ledger *l, size_t set, uint32_t now)
{
	struct pair *victim = NULL;
	for (int w = 0; w < WAYS; w++) {
		struct pair *p = entry(l, set, w);
		if (!p->family)
			return p;
		if (!victim || p->seen < victim->seen)
			victim = p;
	}
	if (victim->expires > now)
		atomic_fetch_add(&l->evicted, 1);
	drop(l, victim);
	return victim;
}

enum itr_refusal itr_source_ledger_announce(struct itr_source_ledger *l,
                                            const uint8_t info_hash[ITR_INFO_HASH_LEN],
                                            const struct itr_peer_addr *peer, bool stopped,
                                            uint32_t now)
{
	size_t set = set_of(l, info_hash, peer);
	uint32_t expires = now + l->cfg.expiry;
	enum itr_refusal verdict = ITR_REFUSED_NONE;
	pthread_mutex_lock(lock_of(l, set));
	struct pair *p = NULL;
	for (int w = 0; w < WAYS && !p; w++)
		if (is_pair(entry(l, set, w), info_hash, peer))
			p = entry(l, set, w);
	if (p && !prune(l, p, now))
		p = NULL;
	struct port_slot *ports = p ? ports_of(p) : NULL;
	int at = -1;
	for (int i = 0; p && i < p->nports && at < 0; i++)
		if (ports[i].port == peer->port)
			at = i;
	if (stopped) {
		if (at >= 0) {
			ports[at] = ports[--p->nports];
			if (p->nports == 0)
				drop(l, p);
		} else if (p && !l->cfg.max_ports && p->port == peer->port) {
			drop(l, p); /* no ports kept: the last one seen leaves */
		}
	} else if (p && at < 0 && l->cfg.max_ports && p->nports >= l->cfg.max_ports) {
		verdict = ITR_REFUSED_SOURCE_PEERS;
	} else if (p) {
		p->seen = now;
		p->expires = expires;
		p->port = peer->port;
		if (at >= 0)
			ports[at].expires = expires;
		else if (l->cfg.max_ports)
			ports[p->nports++] =
			    (struct port_slot){.port = peer->port, .expires = expires};
	} else if (!itr_quota_enter_swarm(l->quota, peer)) {
		verdict = ITR_REFUSED_SOURCE_TORRENTS;
	} else {
		p = make_room(l, set, now);
		p->family = peer->family;
		memcpy(p->addr, peer->addr, addr_len(peer->family));
		memcpy(p->ih, info_hash, ITR_INFO_HASH_LEN);
		p->seen = now;
		p->expires = expires;
		p->port = peer->port;
		if (l->cfg.max_ports) {
			p->nports = 1;
			ports_of(p)[0] = (struct port_slot){.port = peer->port, .expires = expires};
		}
		atomic_fetch_add(&l->used, 1);
	}
	pthread_mutex_unlock(lock_of(l, set));
	sweep(l, now);
	return verdict;
}

void itr_source_ledger_stats(struct itr_source_ledger *l, struct itr_source_ledger_stats *st)
{
	st->pairs = atomic_load(&l->used);
	st->capacity = l->nsets * WAYS;
	st->evicted = atomic_load(&l->evicted);
}
