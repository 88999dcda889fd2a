/* swarm.c - the in-memory peer store (the default itr_swarm_store).
 *
 * Layout, chosen for the memory budget (under 24 bytes per IPv4 peer at a
 * million peers, see tools/bench/bench_swarm.c):
 *   - shards, each a mutex and an open-addressing (linear probing) table of
 *     56-byte swarm entries keyed by info_hash with a keyed SipHash, so
 *     crafted info_hashes cannot pile up in one probe run;
 *   - per swarm one block of fixed-size peer records per address family,
 *     sorted by (group, address, port): a group's peers are one binary
 *     search away, an announce finds its own record in O(log n), and the
 *     compact form (address + port, big-endian) is a contiguous slice.
 *
 * Record: [group u16 BE][address][port u16 BE][last seen minute u16][flags]
 * = 11 bytes for IPv4, 23 for IPv6. Flags: bit 0 seeder, bits 1-7 what
 * the peer has left in 127ths of the torrent's size (the price controller's
 * tallies), so that knowing it costs no byte per peer. The minute counter wraps every 45 days;
 * expiry compares differences, which is exact as long as every swarm is
 * swept more often than that (each touch sweeps once a minute, and the
 * periodic expire pass sweeps all). A swarm lives while it has peers: the
 * last one leaving (stopped or expired) deletes it, download count too.
 */
#include "swarm.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byte_order.h"

#define FLAG_SEEDER        0x01u
#define LEFT_SHIFT         1 /* flags bits 1-7: left fraction, ITR_SWARM_LEFT_UNITS */
#define DEFAULT_SHARDS     64
#define MIN_TABLE          16
#define MAX_EXPIRY_MINUTES 30000 /* well under the 65536-minute wrap */

enum { FAM4 = 0, FAM6 = 1 };

static const size_t addr_len[2] = {4, 16};
static const size_t key_len[2] = {2 + 4 + 2, 2 + 16 + 2};
static const size_t rec_size[2] = {11, 23}; /* key, seen minute, flags */

/* A vector of records with its header in the same allocation, so a swarm
 * holds one pointer per family and an absent family costs nothing. */
struct peer_block {
	uint32_t len;
	uint32_t cap;
	uint8_t rec[];
};

/* 56 bytes, stored inline in the table. A swarm exists while it has peers:
 * a slot is in use iff one of its blocks is allocated. */
struct swarm {
	uint8_t info_hash[ITR_INFO_HASH_LEN];
	uint16_t generation; /* grouping generation the records are sorted by */
	uint16_t swept;      /* minute of the last expiry pass over this swarm */
	uint32_t seeders;
	uint32_t downloaded;
	uint32_t left_units; /* sum of the records' left fractions */
	float size;          /* largest left + downloaded announced (bytes) */
	struct peer_block *vec[2];
};

/* One cache line each at least: neighbouring shards' locks shared one, so
 * two workers on different swarms still pulled it back and forth. */
struct shard {
	_Alignas(64) pthread_mutex_t lock;
	struct swarm *slots;
	size_t cap; /* power of two */
	size_t count;
	size_t vec_bytes;
};

struct mem_store {
	struct itr_swarm_store base;
	struct itr_swarm_config cfg;
	uint16_t expiry_minutes;
	unsigned nshards;
	struct shard *shards;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	atomic_size_t torrents;
	atomic_size_t peers[2];
	atomic_uint_fast64_t refused_torrents;
	atomic_uint_fast64_t refused_peers;
	atomic_uint_fast64_t expired;
	atomic_uint_fast64_t evicted;
	atomic_uint last_log_torrents; /* minute + 1 of the last log line */
	atomic_uint last_log_peers;
};

/* ---- records ----------------------------------------------------------- */

static int family_index(uint8_t family)
{
	return family == 6 ? FAM6 : FAM4;
}

static uint32_t block_len(const struct peer_block *b)
{
	return b ? b->len : 0;
}

static uint8_t *rec_at(const struct peer_block *b, int fam, uint32_t i)
{
	return (uint8_t *)b->rec + (size_t)i * rec_size[fam];
}

static bool swarm_used(const struct swarm *sw)
{
	return sw->vec[0] || sw->vec[1];
}

static uint16_t rec_group(const uint8_t *rec)
{
	return (uint16_t)(rec[0] << 8 | rec[1]);
}

static uint16_t rec_seen(const uint8_t *rec, int fam)
{
	uint16_t v;
	memcpy(&v, rec + key_len[fam], 2);
	return v;
}

static void rec_set_seen(uint8_t *rec, int fam, uint16_t minute)
{
	memcpy(rec + key_len[fam], &minute, 2);
}

static uint8_t *rec_flags(uint8_t *rec, int fam)
{
	return rec + key_len[fam] + 2;
}

static unsigned rec_left(const uint8_t *rec, int fam)
{
	return rec[key_len[fam] + 2] >> LEFT_SHIFT;
}

/* The swarm's size estimate grows with the announce (as the price
 * controller's own table did: the largest left + downloaded, unless that
 * sum overflowed), and the peer's left fraction in ITR_SWARM_LEFT_UNITS. */
static unsigned left_fraction(struct swarm *sw, const struct itr_swarm_announce *ann)
{
	uint64_t total = ann->left + ann->downloaded;
	if (total >= ann->left && (float)total > sw->size)
		sw->size = (float)total;
	if (ann->left == 0 || !(sw->size > 0))
		return 0;
	double f = (double)ann->left / (double)sw->size;
	if (f > 1)
		f = 1;
	return (unsigned)(f * ITR_SWARM_LEFT_UNITS + 0.5);
}

static uint8_t make_flags(bool seeder, unsigned left)
{
	return (uint8_t)((seeder ? FLAG_SEEDER : 0) | left << LEFT_SHIFT);
}

static void make_key(int fam, uint16_t group, const struct itr_peer_addr *peer, uint8_t *key)
{
	key[0] = (uint8_t)(group >> 8);
	key[1] = (uint8_t)group;
	memcpy(key + 2, peer->addr, addr_len[fam]);
	key[2 + addr_len[fam]] = (uint8_t)(peer->port >> 8);
	key[3 + addr_len[fam]] = (uint8_t)peer->port;
}

/* The two families spelt out: fixed-size copies and compares compile to a
 * few moves, where a length from the table is a libc call per record
 * (perf: a tenth of the tracker's user time went to memcmp). */
static void rec_to_peer(const uint8_t *rec, int fam, struct itr_peer_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (fam == FAM4) {
		out->family = 4;
		memcpy(out->addr, rec + 2, 4);
		out->port = (uint16_t)(rec[6] << 8 | rec[7]);
	} else {
		out->family = 6;
		memcpy(out->addr, rec + 2, 16);
		out->port = (uint16_t)(rec[18] << 8 | rec[19]);
	}
}

/* Address and port of a record equal key (as make_key writes them, from
 * its third byte on). */
static bool rec_key_equal(const uint8_t *rec, int fam, const uint8_t *key)
{
	return fam == FAM4 ? memcmp(rec + 2, key, 6) == 0 : memcmp(rec + 2, key, 18) == 0;
}

/* Same address and port (any group). */
static bool rec_is_peer(const uint8_t *rec, int fam, const struct itr_peer_addr *peer)
{
	uint8_t key[20];
	make_key(fam, 0, peer, key);
	return memcmp(rec + 2, key + 2, key_len[fam] - 2) == 0;
}

/* Same address (any group, any port). */
static bool rec_is_addr(const uint8_t *rec, int fam, const struct itr_peer_addr *peer)
{
	return memcmp(rec + 2, peer->addr, addr_len[fam]) == 0;
}

/* memcmp of the first klen bytes, with the group (2 bytes) and a whole
 * IPv4 key (8) as integer compares rather than libc calls. */
static int key_cmp(const uint8_t *rec, const uint8_t *key, size_t klen)
{
	if (klen == 2) {
		unsigned x = (unsigned)rec[0] << 8 | rec[1], y = (unsigned)key[0] << 8 | key[1];
		return (x > y) - (x < y);
	}
	if (klen == 8) {
		uint64_t x = itr_be64_get(rec), y = itr_be64_get(key);
		return (x > y) - (x < y);
	}
	return memcmp(rec, key, klen);
}

/* First index whose first klen key bytes are >= key. */
static uint32_t lower_bound(const struct peer_block *b, int fam, const uint8_t *key, size_t klen)
{
	uint32_t lo = 0, hi = block_len(b);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (key_cmp(rec_at(b, fam, mid), key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t group_end(const struct peer_block *b, int fam, uint16_t group)
{
	if (group == 0xffff)
		return block_len(b);
	uint8_t next[2] = {(uint8_t)((group + 1) >> 8), (uint8_t)(group + 1)};
	return lower_bound(b, fam, next, 2);
}

static int compare_rec4(const void *a, const void *b)
{
	return memcmp(a, b, 8);
}

static int compare_rec6(const void *a, const void *b)
{
	return memcmp(a, b, 20);
}

/* ---- the store ---------------------------------------------------------- */

static struct mem_store *as_mem(struct itr_swarm_store *s)
{
	return (struct mem_store *)s;
}

static uint64_t hash_info(const struct mem_store *m, const uint8_t *ih)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;
	crypto_shorthash(out, ih, ITR_INFO_HASH_LEN, m->hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static struct shard *shard_of(struct mem_store *m, uint64_t h)
{
	return &m->shards[(h >> 40) % m->nshards];
}

static uint16_t minute_of(uint32_t now)
{
	return (uint16_t)(now / 60);
}

static void log_limit(struct mem_store *m, atomic_uint *last, uint32_t now, const char *what,
                      size_t limit)
{
	unsigned stamp = now / 60 + 1;
	unsigned prev = atomic_load(last);
	if (prev == stamp || !atomic_compare_exchange_strong(last, &prev, stamp))
		return;
	fprintf(stderr,
	        "itracker: tracker store: %s limit of %zu reached; new %s are not stored "
	        "(refused so far: %llu torrents, %llu peers)\n",
	        what, limit, what, (unsigned long long)atomic_load(&m->refused_torrents),
	        (unsigned long long)atomic_load(&m->refused_peers));
}

static struct swarm *table_find(struct shard *sh, uint64_t h, const uint8_t *ih)
{
	if (!sh->cap)
		return NULL;
	size_t mask = sh->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct swarm *sw = &sh->slots[i];
		if (!swarm_used(sw))
			return NULL;
		if (memcmp(sw->info_hash, ih, ITR_INFO_HASH_LEN) == 0)
			return sw;
	}
}

/* Move every swarm into a new table of cap slots (a power of two, larger
 * than the count; 0 frees the table of an empty shard). */
static int table_rehash(struct mem_store *m, struct shard *sh, size_t cap)
{
	if (cap == 0) {
		free(sh->slots);
		sh->slots = NULL;
		sh->cap = 0;
		return 0;
	}
	struct swarm *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < sh->cap; i++) {
		struct swarm *old = &sh->slots[i];
		if (!swarm_used(old))
			continue;
		size_t j = hash_info(m, old->info_hash) & (cap - 1);
		while (swarm_used(&slots[j]))
			j = (j + 1) & (cap - 1);
		slots[j] = *old;
	}
	free(sh->slots);
	sh->slots = slots;
	sh->cap = cap;
	return 0;
}

static int table_grow(struct mem_store *m, struct shard *sh)
{
	return table_rehash(m, sh, sh->cap ? sh->cap * 2 : MIN_TABLE);
}

/* The table only grows on insert; after an expiry pass a shard that is
 * below an eighth full goes back to twice its count (so RSS follows the
 * live state after a flood expires, issue 10). The gap between the two
 * thresholds keeps a table at a steady size from flapping. */
static void table_fit(struct mem_store *m, struct shard *sh)
{
	if (sh->cap <= MIN_TABLE && sh->count > 0)
		return;
	if (sh->count * 8 >= sh->cap)
		return;
	size_t cap = 0;
	if (sh->count > 0)
		for (cap = MIN_TABLE; cap < sh->count * 2; cap *= 2)
			;
	table_rehash(m, sh, cap); /* on failure the larger table stays: harmless */
}

/* A new swarm with its first block (which makes the slot used). */
static struct swarm *table_insert(struct mem_store *m, struct shard *sh, uint64_t h,
                                  const uint8_t *ih, int fam, struct peer_block *block)
{
	if ((sh->count + 1) * 4 > sh->cap * 3 && table_grow(m, sh) < 0)
		return NULL;
	size_t mask = sh->cap - 1;
	size_t i = h & mask;
	while (swarm_used(&sh->slots[i]))
		i = (i + 1) & mask;
	struct swarm *sw = &sh->slots[i];
	memset(sw, 0, sizeof(*sw));
	memcpy(sw->info_hash, ih, ITR_INFO_HASH_LEN);
	sw->vec[fam] = block;
	sh->count++;
	atomic_fetch_add(&m->torrents, 1);
	return sw;
}

/* Backward-shift deletion keeps probe runs intact without tombstones. */
static void table_delete(struct mem_store *m, struct shard *sh, struct swarm *sw)
{
	size_t mask = sh->cap - 1;
	size_t hole = (size_t)(sw - sh->slots);
	for (int f = 0; f < 2; f++) {
		if (sw->vec[f]) {
			sh->vec_bytes -= sizeof(struct peer_block) + sw->vec[f]->cap * rec_size[f];
			free(sw->vec[f]);
			sw->vec[f] = NULL;
		}
	}
	sh->count--;
	atomic_fetch_sub(&m->torrents, 1);
	for (size_t j = (hole + 1) & mask; swarm_used(&sh->slots[j]); j = (j + 1) & mask) {
		size_t home = hash_info(m, sh->slots[j].info_hash) & mask;
		/* Move j into the hole unless its home lies cyclically in (hole, j]. */
		bool home_between =
		    hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (home_between)
			continue;
		sh->slots[hole] = sh->slots[j];
		sh->slots[j].vec[0] = sh->slots[j].vec[1] = NULL;
		hole = j;
	}
}

/* Growth by a quarter keeps the slack of big vectors near 10 %; small
 * ones start at 2 records because most torrents have few peers. */
static int vec_reserve(struct shard *sh, struct peer_block **bp, int fam)
{
	struct peer_block *b = *bp;
	uint32_t old_cap = b ? b->cap : 0;
	if (b && b->len < b->cap)
		return 0;
	uint32_t cap = old_cap < 2 ? 2 : old_cap + (old_cap / 4 ? old_cap / 4 : 1);
	if (cap < old_cap)
		return -1;
	struct peer_block *grown = realloc(b, sizeof(*b) + (size_t)cap * rec_size[fam]);
	if (!grown)
		return -1;
	if (!b) {
		grown->len = 0;
		sh->vec_bytes += sizeof(*b);
	}
	grown->cap = cap;
	sh->vec_bytes += (size_t)(cap - old_cap) * rec_size[fam];
	*bp = grown;
	return 0;
}

static void vec_shrink(struct shard *sh, struct peer_block **bp, int fam)
{
	struct peer_block *b = *bp;
	if (!b)
		return;
	if (b->len == 0) {
		sh->vec_bytes -= sizeof(*b) + (size_t)b->cap * rec_size[fam];
		free(b);
		*bp = NULL;
		return;
	}
	if (b->cap <= 8 || b->len >= b->cap / 4)
		return;
	uint32_t cap = b->len * 2;
	struct peer_block *smaller = realloc(b, sizeof(*b) + (size_t)cap * rec_size[fam]);
	if (!smaller)
		return; /* keeping the larger block is harmless */
	sh->vec_bytes -= (size_t)(smaller->cap - cap) * rec_size[fam];
	smaller->cap = cap;
	*bp = smaller;
}

/* ---- per-source accounting ----------------------------------------------
 * With current groups the records of one address are contiguous (the key is
 * group, address, port, and the group is a function of the address), so a
 * pass over a block sees each address as one run. */

struct addr_run {
	bool active;
	bool kept; /* a record of the run survives */
	struct itr_peer_addr addr;
};

static void run_end(struct mem_store *m, struct addr_run *run)
{
	if (run->active && !run->kept && m->cfg.hooks.leave)
		m->cfg.hooks.leave(m->cfg.hooks.ctx, &run->addr);
	run->active = false;
}

/* Feed the next record of a pass; closes the previous run on a new address. */
static void run_next(struct mem_store *m, struct addr_run *run, const uint8_t *rec, int fam)
{
	if (!m->cfg.hooks.leave)
		return;
	if (run->active && memcmp(rec + 2, run->addr.addr, addr_len[fam]) == 0)
		return;
	run_end(m, run);
	rec_to_peer(rec, fam, &run->addr);
	run->active = true;
	run->kept = false;
}

/* First index whose first klen key bytes are > key. */
static uint32_t upper_bound(const struct peer_block *b, int fam, const uint8_t *key, size_t klen)
{
	uint32_t lo = 0, hi = block_len(b);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (memcmp(rec_at(b, fam, mid), key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* How many records the peer's address holds in the block. */
static uint32_t addr_records(const struct peer_block *b, int fam, uint16_t group,
                             const struct itr_peer_addr *peer, bool groups_current)
{
	if (!groups_current) {
		uint32_t n = 0;
		for (uint32_t i = 0; i < block_len(b); i++)
			n += rec_is_addr(rec_at(b, fam, i), fam, peer);
		return n;
	}
	uint8_t key[20];
	make_key(fam, group, peer, key);
	size_t klen = 2 + addr_len[fam];
	return upper_bound(b, fam, key, klen) - lower_bound(b, fam, key, klen);
}

/* Drop every record of a swarm (telling the hooks) and the swarm. */
static void evict_swarm(struct mem_store *m, struct shard *sh, struct swarm *sw)
{
	for (int f = 0; f < 2; f++) {
		struct peer_block *b = sw->vec[f];
		struct addr_run run = {0};
		for (uint32_t i = 0; i < block_len(b); i++)
			run_next(m, &run, rec_at(b, f, i), f);
		run_end(m, &run);
		if (b)
			atomic_fetch_sub(&m->peers[f], b->len);
	}
	table_delete(m, sh, sw);
	atomic_fetch_add(&m->evicted, 1);
}

/* At a global limit: evict one swarm of this shard other than keep (whose
 * slot may move: find it again afterwards). Among a small random sample,
 * the victim is a small swarm (at most 2 peers, as a flood makes them) of
 * the source in the most swarms, then the one silent longest. Whole slots
 * are sampled, so this costs O(sample), not O(shard). */
static bool evict_in_shard(struct mem_store *m, struct shard *sh, const uint8_t *keep, uint32_t now)
{
	enum { SAMPLE = 16, PROBES = 256 };
	if (!sh->cap || sh->count == 0)
		return false;
	uint16_t minute = minute_of(now);
	struct swarm *victim = NULL;
	bool v_small = false;
	uint32_t v_weight = 0;
	uint16_t v_age = 0;
	size_t start = randombytes_uniform((uint32_t)sh->cap), seen = 0;
	/* past PROBES only while nothing was found: a sparse table must not
	 * make a shard that holds swarms look empty */
	for (size_t k = 0; k < sh->cap && seen < SAMPLE && (k < PROBES || !victim); k++) {
		struct swarm *sw = &sh->slots[(start + k) & (sh->cap - 1)];
		if (!swarm_used(sw) ||
		    (keep && memcmp(sw->info_hash, keep, ITR_INFO_HASH_LEN) == 0))
			continue;
		seen++;
		uint32_t n = block_len(sw->vec[0]) + block_len(sw->vec[1]);
		int f = sw->vec[0] ? FAM4 : FAM6;
		const uint8_t *first = rec_at(sw->vec[f], f, 0);
		uint16_t newest = rec_seen(first, f);
		for (uint32_t i = 1; i < block_len(sw->vec[f]) && i < 8; i++) {
			uint16_t t = rec_seen(rec_at(sw->vec[f], f, i), f);
			if ((int16_t)(t - newest) > 0)
				newest = t;
		}
		bool small = n <= 2;
		uint32_t weight = 0;
		if (small && m->cfg.hooks.weight) {
			struct itr_peer_addr a;
			rec_to_peer(first, f, &a);
			weight = m->cfg.hooks.weight(m->cfg.hooks.ctx, &a);
		}
		uint16_t age = (uint16_t)(minute - newest);
		bool better = !victim || small > v_small ||
		              (small == v_small &&
		               (weight > v_weight || (weight == v_weight && age > v_age)));
		if (better) {
			victim = sw;
			v_small = small;
			v_weight = weight;
			v_age = age;
		}
	}
	if (!victim)
		return false;
	evict_swarm(m, sh, victim);
	return true;
}

/* Evict from this shard, or, when it holds nothing else, from another one:
 * a newcomer whose info_hash falls in an empty shard must still find room.
 * Other shards are only tried (trylock), so two threads evicting across
 * shards never wait on each other. */
static bool evict_one(struct mem_store *m, struct shard *sh, const uint8_t *keep, uint32_t now)
{
	if (evict_in_shard(m, sh, keep, now))
		return true;
	for (unsigned i = 0; i < m->nshards; i++) {
		struct shard *other = &m->shards[i];
		if (other == sh || pthread_mutex_trylock(&other->lock) != 0)
			continue;
		bool done = evict_in_shard(m, other, NULL, now);
		pthread_mutex_unlock(&other->lock);
		if (done)
			return true;
	}
	return false;
}

static size_t sweep(struct mem_store *m, struct shard *sh, struct swarm *sw, uint32_t now)
{
	uint16_t minute = minute_of(now);
	size_t dropped = 0;
	sw->swept = minute;
	for (int f = 0; f < 2; f++) {
		struct peer_block *b = sw->vec[f];
		if (!b)
			continue;
		size_t rs = rec_size[f];
		uint32_t kept = 0;
		struct addr_run run = {0};
		for (uint32_t i = 0; i < b->len; i++) {
			uint8_t *rec = rec_at(b, f, i);
			run_next(m, &run, rec, f);
			if ((uint16_t)(minute - rec_seen(rec, f)) > m->expiry_minutes) {
				if (*rec_flags(rec, f) & FLAG_SEEDER)
					sw->seeders--;
				sw->left_units -= rec_left(rec, f);
				continue;
			}
			run.kept = true;
			if (kept != i)
				memcpy(rec_at(b, f, kept), rec, rs);
			kept++;
		}
		run_end(m, &run);
		if (kept != b->len) {
			atomic_fetch_sub(&m->peers[f], b->len - kept);
			dropped += b->len - kept;
			b->len = kept;
			vec_shrink(sh, &sw->vec[f], f);
		}
	}
	if (dropped)
		atomic_fetch_add(&m->expired, dropped);
	return dropped;
}

static void regroup(struct swarm *sw, const struct itr_swarm_grouping *g)
{
	for (int f = 0; f < 2; f++) {
		struct peer_block *b = sw->vec[f];
		for (uint32_t i = 0; i < block_len(b); i++) {
			uint8_t *rec = rec_at(b, f, i);
			uint16_t group = g->group_of(g->ctx, f == FAM6 ? 6 : 4, rec + 2);
			rec[0] = (uint8_t)(group >> 8);
			rec[1] = (uint8_t)group;
		}
		if (block_len(b) > 1)
			qsort(b->rec, b->len, rec_size[f], f == FAM6 ? compare_rec6 : compare_rec4);
	}
	sw->generation = (uint16_t)g->generation;
}

/* Bring a swarm up to date before use: regroup after a map change and drop
 * expired peers once a minute. A swarm left without peers is deleted and
 * NULL returned; *current says whether the groups match the request's. */
static struct swarm *touch(struct mem_store *m, struct shard *sh, struct swarm *sw,
                           const struct itr_swarm_grouping *g, uint32_t now, bool *current)
{
	*current = true;
	if (g && g->group_of && sw->generation != (uint16_t)g->generation) {
		if ((int16_t)((uint16_t)g->generation - sw->generation) > 0)
			regroup(sw, g);
		else
			*current = false; /* a request holding an older map than the swarm */
	}
	if (sw->swept != minute_of(now))
		sweep(m, sh, sw, now);
	if (!swarm_used(sw)) {
		/* every peer expired: close the gap in the probe run */
		table_delete(m, sh, sw);
		return NULL;
	}
	return sw;
}

/* Index of the peer's record or -1. With stale groups, search by address. */
static long find_peer(const struct peer_block *b, int fam, const struct itr_peer_addr *peer,
                      uint16_t group, bool groups_current)
{
	if (!groups_current) {
		for (uint32_t i = 0; i < block_len(b); i++)
			if (rec_is_peer(rec_at(b, fam, i), fam, peer))
				return i;
		return -1;
	}
	uint8_t key[20];
	make_key(fam, group, peer, key);
	uint32_t i = lower_bound(b, fam, key, key_len[fam]);
	if (i < block_len(b) && memcmp(rec_at(b, fam, i), key, key_len[fam]) == 0)
		return i;
	return -1;
}

static void fill_counts(const struct swarm *sw, struct itr_swarm_counts *c)
{
	if (!c)
		return;
	uint32_t total = block_len(sw->vec[0]) + block_len(sw->vec[1]);
	c->complete = sw->seeders;
	c->incomplete = total - sw->seeders;
	c->downloaded = sw->downloaded;
}

static void insert_record(struct swarm *sw, int fam, uint32_t at, const uint8_t *key,
                          uint16_t minute, const struct itr_swarm_announce *ann)
{
	struct peer_block *b = sw->vec[fam];
	size_t rs = rec_size[fam];
	uint8_t *rec = rec_at(b, fam, at);
	memmove(rec + rs, rec, (size_t)(b->len - at) * rs);
	memcpy(rec, key, key_len[fam]);
	rec_set_seen(rec, fam, minute);
	unsigned left = left_fraction(sw, ann);
	*rec_flags(rec, fam) = make_flags(ann->seeder, left);
	sw->left_units += left;
	if (ann->seeder)
		sw->seeders++;
	if (ann->completed)
		sw->downloaded++;
	b->len++;
}

/* May a new record for ann->peer go in (*swp: its swarm, NULL if new)?
 * Per-source limits first (nothing is evicted for a request that is refused
 * anyway), then the global ones, which make room by eviction; *swp is found
 * again after an eviction, which can move slots. */
static enum itr_swarm_status admit(struct mem_store *m, struct shard *sh, uint64_t h,
                                   const uint8_t *ih, struct swarm **swp,
                                   const struct itr_swarm_announce *ann, int fam, bool current,
                                   uint32_t now)
{
	struct swarm *sw = *swp;
	uint32_t same = sw ? addr_records(sw->vec[fam], fam, ann->group, &ann->peer, current) : 0;
	if (ann->max_per_source && same >= ann->max_per_source)
		return ITR_SWARM_SOURCE_PEERS;
	bool entered = false;
	if (same == 0 && m->cfg.hooks.enter) {
		if (!m->cfg.hooks.enter(m->cfg.hooks.ctx, &ann->peer))
			return ITR_SWARM_SOURCE_SWARMS;
		entered = true;
	}
	enum itr_swarm_status status = ITR_SWARM_STORED;
	/* other shards insert meanwhile: a few evictions may be needed */
	int tries = 4;
	while (!sw && m->cfg.max_torrents && atomic_load(&m->torrents) >= m->cfg.max_torrents &&
	       tries-- > 0 && evict_one(m, sh, NULL, now))
		;
	if (!sw && m->cfg.max_torrents && atomic_load(&m->torrents) >= m->cfg.max_torrents) {
		atomic_fetch_add(&m->refused_torrents, 1);
		status = ITR_SWARM_NO_TORRENTS;
	} else if (m->cfg.max_peers &&
	           atomic_load(&m->peers[0]) + atomic_load(&m->peers[1]) >= m->cfg.max_peers) {
		bool made_room = evict_one(m, sh, ih, now);
		if (sw)
			*swp = table_find(sh, h, ih);
		if (!made_room ||
		    atomic_load(&m->peers[0]) + atomic_load(&m->peers[1]) >= m->cfg.max_peers) {
			atomic_fetch_add(&m->refused_peers, 1);
			status = ITR_SWARM_NO_PEERS;
		}
	}
	if (status != ITR_SWARM_STORED && entered && m->cfg.hooks.leave)
		m->cfg.hooks.leave(m->cfg.hooks.ctx, &ann->peer);
	return status;
}

static enum itr_swarm_status mem_announce(struct itr_swarm_store *store, const uint8_t *ih,
                                          const struct itr_swarm_announce *ann,
                                          const struct itr_swarm_grouping *g, uint32_t now,
                                          struct itr_swarm_counts *counts)
{
	struct mem_store *m = as_mem(store);
	uint64_t h = hash_info(m, ih);
	struct shard *sh = shard_of(m, h);
	enum itr_swarm_status status = ITR_SWARM_STORED;
	int fam = family_index(ann->peer.family);
	uint8_t key[20];
	bool current = true;

	if (counts)
		memset(counts, 0, sizeof(*counts));
	make_key(fam, ann->group, &ann->peer, key);
	pthread_mutex_lock(&sh->lock);
	struct swarm *sw = table_find(sh, h, ih);
	if (sw)
		sw = touch(m, sh, sw, g, now, &current);
	long at = sw ? find_peer(sw->vec[fam], fam, &ann->peer, ann->group, current) : -1;
	if (at >= 0) {
		uint8_t *rec = rec_at(sw->vec[fam], fam, (uint32_t)at);
		uint8_t *flags = rec_flags(rec, fam);
		bool was_seeder = *flags & FLAG_SEEDER;
		/* Stores only where a value changes: a re-announce mostly
		 * changes nothing, and a store of the same value still takes the
		 * line from the other workers that read this swarm. */
		uint16_t minute = minute_of(now);
		if (rec_seen(rec, fam) != minute)
			rec_set_seen(rec, fam, minute);
		if (ann->seeder && !was_seeder)
			sw->seeders++;
		else if (!ann->seeder && was_seeder)
			sw->seeders--;
		unsigned left = left_fraction(sw, ann), was_left = rec_left(rec, fam);
		if (left != was_left)
			sw->left_units = sw->left_units - was_left + left;
		uint8_t new_flags = make_flags(ann->seeder, left);
		if (*flags != new_flags)
			*flags = new_flags;
		if (ann->completed && !was_seeder)
			sw->downloaded++;
	} else if ((status = admit(m, sh, h, ih, &sw, ann, fam, current, now)) !=
	           ITR_SWARM_STORED) {
		/* refused: counted and logged below */
	} else if (!sw) {
		struct peer_block *block = NULL;
		if (vec_reserve(sh, &block, fam) < 0) {
			status = ITR_SWARM_NO_MEMORY;
		} else if (!(sw = table_insert(m, sh, h, ih, fam, block))) {
			sh->vec_bytes -= sizeof(*block) + block->cap * rec_size[fam];
			free(block);
			status = ITR_SWARM_NO_MEMORY;
		} else {
			sw->swept = minute_of(now);
			sw->generation = g ? (uint16_t)g->generation : 0;
			insert_record(sw, fam, 0, key, minute_of(now), ann);
			atomic_fetch_add(&m->peers[fam], 1);
		}
	} else if (vec_reserve(sh, &sw->vec[fam], fam) < 0) {
		status = ITR_SWARM_NO_MEMORY;
	} else {
		uint32_t i =
		    current ? lower_bound(sw->vec[fam], fam, key, key_len[fam]) : sw->vec[fam]->len;
		insert_record(sw, fam, i, key, minute_of(now), ann);
		atomic_fetch_add(&m->peers[fam], 1);
	}
	if (status == ITR_SWARM_NO_MEMORY && m->cfg.hooks.leave &&
	    (!sw || addr_records(sw->vec[fam], fam, ann->group, &ann->peer, current) == 0))
		m->cfg.hooks.leave(m->cfg.hooks.ctx, &ann->peer); /* undo admit's enter */
	if (sw)
		fill_counts(sw, counts);
	pthread_mutex_unlock(&sh->lock);
	if (status == ITR_SWARM_NO_PEERS)
		log_limit(m, &m->last_log_peers, now, "peers", m->cfg.max_peers);
	else if (status == ITR_SWARM_NO_TORRENTS)
		log_limit(m, &m->last_log_torrents, now, "torrents", m->cfg.max_torrents);
	return status;
}

static int mem_remove(struct itr_swarm_store *store, const uint8_t *ih,
                      const struct itr_peer_addr *peer, uint16_t group,
                      const struct itr_swarm_grouping *g, uint32_t now,
                      struct itr_swarm_counts *counts)
{
	struct mem_store *m = as_mem(store);
	uint64_t h = hash_info(m, ih);
	struct shard *sh = shard_of(m, h);
	int fam = family_index(peer->family);
	int rc = -1;
	bool current;

	if (counts)
		memset(counts, 0, sizeof(*counts));
	pthread_mutex_lock(&sh->lock);
	struct swarm *sw = table_find(sh, h, ih);
	if (sw)
		sw = touch(m, sh, sw, g, now, &current);
	if (sw) {
		struct peer_block *b = sw->vec[fam];
		long at = find_peer(b, fam, peer, group, current);
		if (at >= 0) {
			size_t rs = rec_size[fam];
			uint8_t *rec = rec_at(b, fam, (uint32_t)at);
			if (*rec_flags(rec, fam) & FLAG_SEEDER)
				sw->seeders--;
			sw->left_units -= rec_left(rec, fam);
			memmove(rec, rec + rs, (size_t)(b->len - (uint32_t)at - 1) * rs);
			b->len--;
			atomic_fetch_sub(&m->peers[fam], 1);
			if (m->cfg.hooks.leave && addr_records(b, fam, group, peer, current) == 0)
				m->cfg.hooks.leave(m->cfg.hooks.ctx, peer);
			vec_shrink(sh, &sw->vec[fam], fam);
			rc = 0;
		}
		fill_counts(sw, counts);
		if (!swarm_used(sw)) {
			table_delete(m, sh, sw);
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser: spreads a seed over all bits */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Copy (out NULL: count) the records of [from, to) that a selection may
 * list, at most quota; stop_at, if given, gets where the scan stopped.
 * Returns how many. */
static inline __attribute__((always_inline)) size_t
copy_records_of(const struct peer_block *b, int fam, uint32_t from, uint32_t to, size_t quota,
                bool no_seeders, const uint8_t *client_key, struct itr_peer_addr *out,
                uint16_t *groups, uint32_t *stop_at)
{
	size_t got = 0;
	uint32_t at = from;
	/* by pointer from a local base: the byte stores into out may alias
	 * anything, so b->rec would be loaded again for every record */
	const uint8_t *rec = rec_at(b, fam, from);
	for (; at < to && got < quota; at++, rec += rec_size[fam]) {
		if (no_seeders && (rec[key_len[fam] + 2] & FLAG_SEEDER))
			continue;
		if (client_key && rec_key_equal(rec, fam, client_key))
			continue;
		if (out) {
			if (groups)
				groups[got] = rec_group(rec);
			rec_to_peer(rec, fam, &out[got]);
		}
		got++;
	}
	if (stop_at)
		*stop_at = at;
	return got;
}

/* The selection's case, an IPv4 swarm copied out with groups, gets a copy
 * of the loop with the family's sizes and the output tests folded away
 * (callgrind, numwant 200 into swarms of 1,000: 36 instructions a record
 * before, a fifth of an announce). */
static size_t copy_records(const struct peer_block *b, int fam, uint32_t from, uint32_t to,
                           size_t quota, bool no_seeders, const uint8_t *client_key,
                           struct itr_peer_addr *out, uint16_t *groups, uint32_t *stop_at)
{
	if (fam == FAM4 && out && groups)
		return copy_records_of(b, FAM4, from, to, quota, no_seeders, client_key, out,
		                       groups, stop_at);
	return copy_records_of(b, fam, from, to, quota, no_seeders, client_key, out, groups,
	                       stop_at);
}

/* Take up to quota peers from records [begin, end), a window starting at a
 * seeded offset and wrapping at end; scans a bounded number of records so
 * that a seeder asking a swarm of seeders costs O(quota), not O(swarm).
 * client_key is the client's address and port as records hold them (NULL:
 * another family). The peers come out in record order (the wrapped part
 * first): that is the ranking's tie order, which then needs no tie pass.
 * Each record is read once: the tail is copied out first, and only a window
 * that wraps moves it behind the head (out holds quota entries). */
static size_t take_window(const struct peer_block *b, int fam, uint32_t begin, uint32_t end,
                          size_t quota, uint64_t seed, bool no_seeders, const uint8_t *client_key,
                          struct itr_peer_addr *out, uint16_t *groups)
{
	uint32_t size = end - begin;
	if (size == 0 || quota == 0)
		return 0;
	uint32_t start = begin + (quota >= size ? 0 : (uint32_t)(mix64(seed) % size));
	size_t scan_limit = quota * 8 + 64;
	uint32_t tail_to = start + (uint32_t)(end - start < scan_limit ? end - start : scan_limit);
	uint32_t tail_end;
	size_t tail = copy_records(b, fam, start, tail_to, quota, no_seeders, client_key, out,
	                           groups, &tail_end);
	if (start == begin || tail == quota || tail_end != end)
		return tail;
	size_t left = scan_limit - (end - start);
	uint32_t head_to = begin + (uint32_t)(start - begin < left ? start - begin : left);
	/* park the tail at the end of out, copy the head in front of it, and
	 * close the gap between them */
	size_t park = quota - tail;
	memmove(out + park, out, tail * sizeof(*out));
	if (groups)
		memmove(groups + park, groups, tail * sizeof(*groups));
	size_t head =
	    copy_records(b, fam, begin, head_to, park, no_seeders, client_key, out, groups, NULL);
	if (head < park) {
		memmove(out + head, out + park, tail * sizeof(*out));
		if (groups)
			memmove(groups + head, groups + park, tail * sizeof(*groups));
	}
	return head + tail;
}

/* One group's records in a swarm's block, and what selection takes. */
struct group_span {
	uint32_t begin, end;
	uint32_t cost;
	uint16_t group;
	bool own;
	size_t quota;
};

static int span_order(const void *pa, const void *pb)
{
	const struct group_span *a = pa, *b = pb;
	if (a->own != b->own)
		return a->own ? -1 : 1;
	if (a->cost != b->cost)
		return a->cost < b->cost ? -1 : 1;
	return (a->group > b->group) - (a->group < b->group);
}

#define SPANS_ON_STACK 64

/* Best buckets first, in O(groups log n + max): the swarm's groups are
 * found by binary search (records are sorted by group), ordered (the
 * client's own group, then group_cost ascending, then group number), and
 * each takes one seeded window. If everything fits, everything is taken.
 * Otherwise three quarters of the budget go down that order, each group
 * taking what it has, and a quarter is a sample spread over what the groups
 * have left, in proportion: so the far groups (outside the client's AS,
 * which the ranking's external budget needs) are always represented. */
static size_t mem_select(struct itr_swarm_store *store, const uint8_t *ih,
                         const struct itr_swarm_select *req, const struct itr_swarm_grouping *g,
                         uint32_t now, struct itr_peer_addr *out)
{
	struct mem_store *m = as_mem(store);
	uint64_t h = hash_info(m, ih);
	struct shard *sh = shard_of(m, h);
	int fam = family_index(req->client.family);
	struct group_span stack_spans[SPANS_ON_STACK];
	struct group_span *spans = stack_spans;
	size_t got = 0;
	bool current;

	pthread_mutex_lock(&sh->lock);
	struct swarm *sw = table_find(sh, h, ih);
	if (sw && req->max)
		sw = touch(m, sh, sw, g, now, &current);
	if (!sw || req->max == 0 || !sw->vec[fam])
		goto out;
	const struct peer_block *b = sw->vec[fam];
	size_t nspans = 0, cap_spans = SPANS_ON_STACK;
	for (uint32_t i = 0; i < b->len;) {
		if (nspans == cap_spans) {
			size_t bigger = cap_spans * 4;
			struct group_span *grown = malloc(bigger * sizeof(*grown));
			if (!grown)
				break; /* select from the groups found so far */
			memcpy(grown, spans, nspans * sizeof(*spans));
			if (spans != stack_spans)
				free(spans);
			spans = grown;
			cap_spans = bigger;
		}
		uint16_t group = rec_group(rec_at(b, fam, i));
		uint32_t end = group_end(b, fam, group);
		spans[nspans++] = (struct group_span){
		    .begin = i,
		    .end = end,
		    .group = group,
		    .own = group == req->group,
		    .cost = req->group_cost ? req->group_cost(req->cost_ctx, group) : 0,
		};
		i = end;
	}
	if (nspans <= 16) {
		/* a swarm spans few groups: qsort's setup alone cost more than
		 * this (callgrind: 1,100 instructions an announce) */
		for (size_t i = 1; i < nspans; i++) {
			struct group_span v = spans[i];
			size_t j = i;
			while (j > 0 && span_order(&v, &spans[j - 1]) < 0) {
				spans[j] = spans[j - 1];
				j--;
			}
			spans[j] = v;
		}
	} else {
		qsort(spans, nspans, sizeof(*spans), span_order);
	}

	size_t total = 0;
	for (size_t k = 0; k < nspans; k++)
		total += spans[k].end - spans[k].begin;
	if (total <= req->max) {
		for (size_t k = 0; k < nspans; k++)
			spans[k].quota = spans[k].end - spans[k].begin;
	} else {
		size_t sample = req->max / 4 ? req->max / 4 : 1;
		size_t left = req->max - sample, rest = 0;
		for (size_t k = 0; k < nspans; k++) {
			size_t size = spans[k].end - spans[k].begin;
			spans[k].quota = size < left ? size : left;
			left -= spans[k].quota;
			rest += size - spans[k].quota;
		}
		/* shares are differences of rounded cumulative sums: they add
		 * up to the sample exactly */
		size_t seen = 0;
		for (size_t k = 0; k < nspans && rest; k++) {
			size_t more = spans[k].end - spans[k].begin - spans[k].quota;
			size_t before = sample * seen / rest;
			seen += more;
			spans[k].quota += sample * seen / rest - before;
		}
	}
	uint8_t client_key[20];
	bool same_family = req->client.family == (fam == FAM6 ? 6 : 4);
	make_key(fam, 0, &req->client, client_key);
	for (size_t k = 0; k < nspans && got < req->max; k++) {
		const struct group_span *sp = &spans[k];
		uint64_t seed = sp->own ? req->seed ^ sp->group : mix64(req->seed) ^ sp->group;
		size_t quota = sp->quota < req->max - got ? sp->quota : req->max - got;
		/* the client's own record, if any, is in its group (any group
		 * while the records' groups are not the request's) */
		bool may_hold_client = same_family && (!current || sp->group == req->group);
		got += take_window(b, fam, sp->begin, sp->end, quota, seed, req->no_seeders,
		                   may_hold_client ? client_key + 2 : NULL, out + got,
		                   req->groups ? req->groups + got : NULL);
	}
	for (size_t i = 0; req->groups && !current && i < got; i++)
		req->groups[i] = ITR_SWARM_GROUP_UNKNOWN; /* numbered by a newer map */
out:
	pthread_mutex_unlock(&sh->lock);
	if (spans != stack_spans)
		free(spans);
	return got;
}

static int mem_scrape(struct itr_swarm_store *store, const uint8_t *ih, uint32_t now,
                      struct itr_swarm_counts *counts)
{
	struct mem_store *m = as_mem(store);
	uint64_t h = hash_info(m, ih);
	struct shard *sh = shard_of(m, h);
	bool current;

	memset(counts, 0, sizeof(*counts));
	pthread_mutex_lock(&sh->lock);
	struct swarm *sw = table_find(sh, h, ih);
	if (sw)
		sw = touch(m, sh, sw, NULL, now, &current);
	if (sw)
		fill_counts(sw, counts);
	pthread_mutex_unlock(&sh->lock);
	return sw ? 0 : -1;
}

static size_t mem_expire(struct itr_swarm_store *store, uint32_t now)
{
	struct mem_store *m = as_mem(store);
	size_t dropped = 0;
	for (unsigned s = 0; s < m->nshards; s++) {
		struct shard *sh = &m->shards[s];
		pthread_mutex_lock(&sh->lock);
		for (size_t i = 0; i < sh->cap;) {
			struct swarm *sw = &sh->slots[i];
			if (!swarm_used(sw)) {
				i++;
				continue;
			}
			dropped += sweep(m, sh, sw, now);
			if (!swarm_used(sw)) {
				/* the backward shift may pull an unvisited entry into i */
				table_delete(m, sh, sw);
				continue;
			}
			i++;
		}
		table_fit(m, sh);
		pthread_mutex_unlock(&sh->lock);
	}
	return dropped;
}

static void mem_stats(struct itr_swarm_store *store, struct itr_swarm_stats *st)
{
	struct mem_store *m = as_mem(store);
	memset(st, 0, sizeof(*st));
	st->bytes = sizeof(*m) + m->nshards * sizeof(struct shard);
	for (unsigned s = 0; s < m->nshards; s++) {
		struct shard *sh = &m->shards[s];
		pthread_mutex_lock(&sh->lock);
		st->bytes += sh->cap * sizeof(struct swarm) + sh->vec_bytes;
		for (size_t i = 0; i < sh->cap; i++)
			if (swarm_used(&sh->slots[i]))
				st->seeders += sh->slots[i].seeders;
		pthread_mutex_unlock(&sh->lock);
	}
	st->torrents = atomic_load(&m->torrents);
	st->peers_v4 = atomic_load(&m->peers[FAM4]);
	st->peers_v6 = atomic_load(&m->peers[FAM6]);
	st->refused_torrents = atomic_load(&m->refused_torrents);
	st->refused_peers = atomic_load(&m->refused_peers);
	st->expired_peers = atomic_load(&m->expired);
	st->evicted_torrents = atomic_load(&m->evicted);
}

static void mem_destroy(struct itr_swarm_store *store)
{
	struct mem_store *m = as_mem(store);
	for (unsigned s = 0; s < m->nshards; s++) {
		struct shard *sh = &m->shards[s];
		for (size_t i = 0; i < sh->cap; i++) {
			free(sh->slots[i].vec[0]);
			free(sh->slots[i].vec[1]);
		}
		free(sh->slots);
		pthread_mutex_destroy(&sh->lock);
	}
	free(m->shards);
	free(m);
}

/* ---- tallies for the price controller ------------------------------------ */

static void tally_add(struct itr_swarm_tally *t, const uint8_t *rec, int fam)
{
	t->peers++;
	t->seeders += rec[key_len[fam] + 2] & FLAG_SEEDER;
	t->left_units += rec_left(rec, fam);
}

static void swarm_tally_all(const struct swarm *sw, struct itr_swarm_tally *all)
{
	all->peers = block_len(sw->vec[0]) + block_len(sw->vec[1]);
	all->seeders = sw->seeders;
	all->left_units = sw->left_units;
}

static int mem_tally(struct itr_swarm_store *store, const uint8_t *ih, const uint16_t *groups,
                     size_t ngroups, const struct itr_swarm_grouping *g, uint32_t now,
                     struct itr_swarm_tally *of_groups, struct itr_swarm_tally *all)
{
	struct mem_store *m = as_mem(store);
	uint64_t h = hash_info(m, ih);
	struct shard *sh = shard_of(m, h);
	bool current = true;

	memset(of_groups, 0, sizeof(*of_groups));
	memset(all, 0, sizeof(*all));
	pthread_mutex_lock(&sh->lock);
	struct swarm *sw = table_find(sh, h, ih);
	if (sw)
		sw = touch(m, sh, sw, g, now, &current);
	if (sw) {
		swarm_tally_all(sw, all);
		/* groups numbered by an older map than the swarm's cannot be
		 * found: the part stays empty (a reload race, one request) */
		for (size_t k = 0; current && k < ngroups; k++) {
			for (int f = 0; f < 2; f++) {
				const struct peer_block *b = sw->vec[f];
				uint8_t key[2] = {(uint8_t)(groups[k] >> 8), (uint8_t)groups[k]};
				uint32_t end = group_end(b, f, groups[k]);
				for (uint32_t i = lower_bound(b, f, key, 2); i < end; i++)
					tally_add(of_groups, rec_at(b, f, i), f);
			}
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return sw ? 0 : -1;
}

/* A swarm's records per group, both families merged (each block is sorted
 * by group). *buf grows as needed; returns how many groups, or 0 when out
 * of memory. */
static size_t group_tallies(const struct swarm *sw, struct itr_swarm_group_tally **buf, size_t *cap)
{
	size_t n = 0;
	uint32_t at[2] = {0, 0};
	for (;;) {
		int pick = -1;
		uint16_t group = 0;
		for (int f = 0; f < 2; f++) {
			if (at[f] >= block_len(sw->vec[f]))
				continue;
			uint16_t gf = rec_group(rec_at(sw->vec[f], f, at[f]));
			if (pick < 0 || gf < group) {
				pick = f;
				group = gf;
			}
		}
		if (pick < 0)
			return n;
		if (n == *cap) {
			size_t bigger = *cap ? *cap * 2 : 16;
			struct itr_swarm_group_tally *grown = realloc(*buf, bigger * sizeof(**buf));
			if (!grown)
				return 0;
			*buf = grown;
			*cap = bigger;
		}
		struct itr_swarm_group_tally *t = &(*buf)[n++];
		memset(t, 0, sizeof(*t));
		t->group = group;
		for (int f = 0; f < 2; f++) {
			const struct peer_block *b = sw->vec[f];
			while (at[f] < block_len(b) && rec_group(rec_at(b, f, at[f])) == group)
				tally_add(&t->tally, rec_at(b, f, at[f]++), f);
		}
	}
}

static void mem_tally_each(struct itr_swarm_store *store, const struct itr_swarm_grouping *g,
                           uint32_t now, itr_swarm_tally_fn fn, void *ctx)
{
	struct mem_store *m = as_mem(store);
	struct itr_swarm_group_tally *buf = NULL;
	size_t cap = 0;
	for (unsigned s = 0; s < m->nshards; s++) {
		struct shard *sh = &m->shards[s];
		pthread_mutex_lock(&sh->lock);
		for (size_t i = 0; i < sh->cap;) {
			struct swarm *sw = &sh->slots[i];
			bool current;
			if (!swarm_used(sw)) {
				i++;
				continue;
			}
			if (!touch(m, sh, sw, g, now, &current))
				continue; /* deleted: the backward shift may have filled i */
			struct itr_swarm_tally all;
			swarm_tally_all(sw, &all);
			size_t n = group_tallies(sw, &buf, &cap);
			fn(ctx, buf, n, &all);
			i++;
		}
		pthread_mutex_unlock(&sh->lock);
	}
	free(buf);
}

static const struct itr_swarm_store_ops mem_ops = {
    .announce = mem_announce,
    .remove = mem_remove,
    .select = mem_select,
    .scrape = mem_scrape,
    .expire = mem_expire,
    .stats = mem_stats,
    .destroy = mem_destroy,
    .tally = mem_tally,
    .tally_each = mem_tally_each,
};

struct itr_swarm_store *itr_swarm_mem_new(const struct itr_swarm_config *config)
{
	if (sodium_init() < 0)
		return NULL;
	struct mem_store *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	m->cfg = *config;
	uint32_t minutes = (config->peer_expiry + 59) / 60;
	if (minutes == 0)
		minutes = 1;
	if (minutes > MAX_EXPIRY_MINUTES)
		minutes = MAX_EXPIRY_MINUTES;
	m->expiry_minutes = (uint16_t)minutes;
	m->nshards = config->shards ? config->shards : DEFAULT_SHARDS;
	/* aligned as the shards ask (calloc only promises 16 bytes) */
	m->shards = aligned_alloc(_Alignof(struct shard), m->nshards * sizeof(*m->shards));
	if (!m->shards) {
		free(m);
		return NULL;
	}
	memset(m->shards, 0, m->nshards * sizeof(*m->shards));
	/* Held for a few hundred nanoseconds: a waiter spins a little before
	 * it sleeps, since a futex round trip costs more than the wait (and
	 * more still in a VM). 64 shards and these: two threads announcing
	 * into the same swarms 1.29-1.36x one thread -> 1.50x (bench_scaling,
	 * swarms of 64, docs/benchmarks.md). */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	for (unsigned s = 0; s < m->nshards; s++)
		pthread_mutex_init(&m->shards[s].lock, &attr);
	pthread_mutexattr_destroy(&attr);
	randombytes_buf(m->hash_key, sizeof(m->hash_key));
	return &m->base;
}
