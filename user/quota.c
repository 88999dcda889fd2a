/* quota.c - per-source token buckets and swarm counts in a bounded,
 * set-associative table (see quota.h).
 *
 * An entry is 40 bytes; the default 65536 entries take 2.5 MiB, touched
 * only as sources arrive. Buckets hold milli-tokens so that rates below
 * one per millisecond refill smoothly.
 */
#include "quota.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WAYS    8
#define STRIPES 64

struct source {
	uint8_t addr[16];
	uint8_t family; /* 0: free */
	uint8_t pad[3];
	uint32_t swarms;
	uint64_t tokens_milli;
	uint64_t stamp_ms; /* last refill and last use */
};

struct itr_quota {
	struct itr_quota_config cfg;
	size_t nsets;
	struct source *slots; /* nsets * WAYS */
	pthread_mutex_t locks[STRIPES];
	uint8_t key[crypto_shorthash_KEYBYTES];
	atomic_size_t used;
	atomic_uint_fast64_t evicted;
};

struct itr_quota *itr_quota_new(const struct itr_quota_config *cfg)
{
	if (sodium_init() < 0)
		return NULL;
	struct itr_quota *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->cfg = *cfg;
	if (q->cfg.burst == 0)
		q->cfg.burst = q->cfg.rate;
	size_t n = cfg->sources ? cfg->sources : 65536;
	q->nsets = (n + WAYS - 1) / WAYS;
	q->slots = calloc(q->nsets * WAYS, sizeof(*q->slots));
	if (!q->slots) {
		free(q);
		return NULL;
	}
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&q->locks[i], NULL);
	randombytes_buf(q->key, sizeof(q->key));
	return q;
}

void itr_quota_free(struct itr_quota *q)
{
	if (!q)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&q->locks[i]);
	free(q->slots);
	free(q);
}

static size_t addr_len(uint8_t family)
{
	return family == 6 ? 16 : 4;
}

static size_t set_of(const struct itr_quota *q, const struct itr_peer_addr *a)
{
	uint8_t msg[17], out[crypto_shorthash_BYTES];
	uint64_t h;
	msg[0] = a->family;
	memcpy(msg + 1, a->addr, 16);
	crypto_shorthash(out, msg, 1 + addr_len(a->family), q->key);
	memcpy(&h, out, sizeof(h));
	return (size_t)(h % q->nsets);
}

static bool same(const struct source *s, const struct itr_peer_addr *a)
{
	return s->family == a->family && memcmp(s->addr, a->addr, addr_len(a->family)) == 0;
}

/* The entry of a in its (locked) set, or NULL. */
static struct source *find(struct itr_quota *q, size_t set, const struct itr_peer_addr *a)
{
	struct source *ways = &q->slots[set * WAYS];
	for (int i = 0; i < WAYS; i++)
		if (same(&ways[i], a))
			return &ways[i];
	return NULL;
}

/* The entry of a, made if missing: a free way, else the least recently
 * seen source of the set, preferring one that is in no swarm (its count
 * would be lost). */
static struct source *find_or_make(struct itr_quota *q, size_t set, const struct itr_peer_addr *a,
                                   uint64_t now_ms)
{
	struct source *s = find(q, set, a);
	if (s)
		return s;
	struct source *ways = &q->slots[set * WAYS], *victim = NULL;
	for (int i = 0; i < WAYS && !victim; i++)
		if (!ways[i].family)
			victim = &ways[i];
	if (victim) {
		atomic_fetch_add(&q->used, 1);
	} else {
		for (int i = 0; i < WAYS; i++) {
			struct source *c = &ways[i];
			if (!victim || (c->swarms == 0) > (victim->swarms == 0) ||
			    ((c->swarms == 0) == (victim->swarms == 0) &&
			     c->stamp_ms < victim->stamp_ms))
				victim = c;
		}
		atomic_fetch_add(&q->evicted, 1);
	}
	memset(victim, 0, sizeof(*victim));
	victim->family = a->family;
	memcpy(victim->addr, a->addr, addr_len(a->family));
	victim->tokens_milli = (uint64_t)q->cfg.burst * 1000;
	victim->stamp_ms = now_ms;
	return victim;
}

static pthread_mutex_t *lock_of(struct itr_quota *q, size_t set)
{
	return &q->locks[set % STRIPES];
}

bool itr_quota_take(struct itr_quota *q, const struct itr_peer_addr *src, uint64_t now_ms)
{
	if (!q || q->cfg.rate == 0)
		return true;
	size_t set = set_of(q, src);
	pthread_mutex_lock(lock_of(q, set));
	struct source *s = find_or_make(q, set, src, now_ms);
	uint64_t cap = (uint64_t)q->cfg.burst * 1000;
	if (now_ms > s->stamp_ms) {
		/* rate tokens per second = rate milli-tokens per millisecond */
		uint64_t refill = (now_ms - s->stamp_ms) * q->cfg.rate;
		s->tokens_milli = s->tokens_milli + refill > cap ? cap : s->tokens_milli + refill;
	}
	s->stamp_ms = now_ms;
	bool ok = s->tokens_milli >= 1000;
	if (ok)
		s->tokens_milli -= 1000;
	pthread_mutex_unlock(lock_of(q, set));
	return ok;
}

bool itr_quota_enter_swarm(struct itr_quota *q, const struct itr_peer_addr *src)
{
	if (!q)
		return true;
	size_t set = set_of(q, src);
	pthread_mutex_lock(lock_of(q, set));
	struct source *s = find(q, set, src);
	if (!s) {
		/* not seen by the rate limiter (no rate configured): a stamp
		 * of the oldest kind makes it the first to go */
		s = find_or_make(q, set, src, 0);
	}
	bool ok = q->cfg.torrents == 0 || s->swarms < q->cfg.torrents;
	if (ok)
		s->swarms++;
	pthread_mutex_unlock(lock_of(q, set));
	return ok;
}

void itr_quota_leave_swarm(struct itr_quota *q, const struct itr_peer_addr *src)
{
	if (!q)
		return;
	size_t set = set_of(q, src);
	pthread_mutex_lock(lock_of(q, set));
	struct source *s = find(q, set, src);
	if (s && s->swarms > 0)
		s->swarms--;
	pthread_mutex_unlock(lock_of(q, set));
}

uint32_t itr_quota_swarms(struct itr_quota *q, const struct itr_peer_addr *src)
{
	if (!q)
		return 0;
	size_t set = set_of(q, src);
	pthread_mutex_lock(lock_of(q, set));
	struct source *s = find(q, set, src);
	uint32_t n = s ? s->swarms : 0;
	pthread_mutex_unlock(lock_of(q, set));
	return n;
}

void itr_quota_stats(struct itr_quota *q, struct itr_quota_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!q)
		return;
	st->sources = atomic_load(&q->used);
	st->capacity = q->nsets * WAYS;
	st->evicted = atomic_load(&q->evicted);
}
