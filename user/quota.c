/* quota.c - per-source token buckets and swarm counts in a bounded,
 * set-associative table (see quota.h).
 *
 * An entry is 40 bytes, a set of 8 is 320; a page holds whole sets only
 * (12 in 4 KiB, 256 bytes unused), so the default 65536 entries take
 * 2.7 MiB of an anonymous mapping, touched only as sources arrive. Buckets
 * hold milli-tokens so that rates below one per millisecond refill
 * smoothly.
 *
 * The sweep gives empty pages back with madvise(MADV_DONTNEED). A page
 * that is not resident is never read: its sets are empty by definition.
 * Reading it would fault it in again, and not every kernel maps such a
 * read to the shared zero page (measured: on one 6.18 guest every read
 * page counted in RSS again). Whole sets per page make that rule cheap:
 * a set is in one page, known touched or not. A page must not be written
 * while it is dropped, so one lock covers every set of a page.
 */
#include "quota.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
	uint8_t *map; /* the sets, page by page, in a mapping of map_bytes */
	size_t map_bytes;
	size_t page;          /* bytes */
	size_t sets_per_page; /* whole sets only */
	uint8_t *touched;     /* per page: written since it was last given back */
	pthread_mutex_t locks[STRIPES];
	uint8_t key[crypto_shorthash_KEYBYTES];
	atomic_size_t used;
	atomic_size_t resident_pages;
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
	long page = sysconf(_SC_PAGESIZE);
	q->page = page > 0 ? (size_t)page : 4096;
	size_t set_bytes = WAYS * sizeof(struct source);
	q->sets_per_page = q->page / set_bytes; /* pages are 4 KiB or more */
	size_t pages = (q->nsets + q->sets_per_page - 1) / q->sets_per_page;
	q->map_bytes = pages * q->page;
	q->touched = calloc(pages, 1);
	void *m =
	    mmap(NULL, q->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || !q->touched) {
		if (m != MAP_FAILED)
			munmap(m, q->map_bytes);
		free(q->touched);
		free(q);
		return NULL;
	}
	q->map = m;
	/* pages are given back one by one: a huge page would keep its 2 MiB
	 * for the one source left in it */
	madvise(m, q->map_bytes, MADV_NOHUGEPAGE);
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
	munmap(q->map, q->map_bytes);
	free(q->touched);
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

static size_t page_of(const struct itr_quota *q, size_t set)
{
	return set / q->sets_per_page;
}

static struct source *ways_of(const struct itr_quota *q, size_t set)
{
	return (struct source *)(q->map + page_of(q, set) * q->page +
	                         set % q->sets_per_page * WAYS * sizeof(struct source));
}

/* The entry of a in its (locked) set, or NULL; a set in a page given back
 * is empty, and is not read. */
static struct source *find(struct itr_quota *q, size_t set, const struct itr_peer_addr *a)
{
	if (!q->touched[page_of(q, set)])
		return NULL;
	struct source *ways = ways_of(q, set);
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
	size_t page = page_of(q, set);
	struct source *ways = ways_of(q, set), *victim = NULL;
	if (!q->touched[page]) { /* every way free; written below, so resident */
		q->touched[page] = 1;
		atomic_fetch_add(&q->resident_pages, 1);
		victim = &ways[0];
	}
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
	return &q->locks[page_of(q, set) % STRIPES];
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

/* An entry made anew now would be the same: in no swarm, and its bucket
 * full again (or no rate at all). */
static bool idle(const struct itr_quota *q, const struct source *s, uint64_t now_ms)
{
	if (s->swarms || (q->cfg.rate && now_ms < s->stamp_ms))
		return false;
	if (!q->cfg.rate)
		return true;
	uint64_t cap = (uint64_t)q->cfg.burst * 1000;
	uint64_t missing = cap > s->tokens_milli ? cap - s->tokens_milli : 0;
	/* rate milli-tokens come back per millisecond */
	return now_ms - s->stamp_ms >= (missing + q->cfg.rate - 1) / q->cfg.rate;
}

size_t itr_quota_sweep(struct itr_quota *q, uint64_t now_ms)
{
	if (!q)
		return 0;
	size_t forgotten = 0;
	for (size_t first = 0; first < q->nsets; first += q->sets_per_page) {
		size_t page = page_of(q, first);
		size_t end =
		    first + q->sets_per_page < q->nsets ? first + q->sets_per_page : q->nsets;
		pthread_mutex_lock(lock_of(q, first));
		if (!q->touched[page]) { /* nothing in it, and not to be read */
			pthread_mutex_unlock(lock_of(q, first));
			continue;
		}
		bool empty = true;
		for (size_t set = first; set < end; set++) {
			struct source *ways = ways_of(q, set);
			for (int w = 0; w < WAYS; w++) {
				struct source *s = &ways[w];
				if (s->family && idle(q, s, now_ms)) {
					memset(s, 0, sizeof(*s));
					atomic_fetch_sub(&q->used, 1);
					forgotten++;
				}
				empty = empty && !s->family;
			}
		}
		/* a page that holds no source goes back */
		if (empty && madvise(q->map + page * q->page, q->page, MADV_DONTNEED) == 0) {
			q->touched[page] = 0;
			atomic_fetch_sub(&q->resident_pages, 1);
		}
		pthread_mutex_unlock(lock_of(q, first));
	}
	return forgotten;
}

void itr_quota_stats(struct itr_quota *q, struct itr_quota_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!q)
		return;
	st->sources = atomic_load(&q->used);
	st->capacity = q->nsets * WAYS;
	st->evicted = atomic_load(&q->evicted);
	st->resident = atomic_load(&q->resident_pages) * q->page;
}
