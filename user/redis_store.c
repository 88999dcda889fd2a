/* redis_store.c - the Redis Cluster announce backend (see redis_store.h).
 * One announce is one pipeline to the swarm's slot: store or remove the
 * peer, read the counts and draw candidates unless a recent read of the
 * swarm serves (the cache, or an earlier announce of the same batch), and
 * wait for one replica to have the write (so a master that dies right after an
 * answer does not take the peer with it). Concurrent announces to the same
 * master share one round trip and one WAIT (itr_rc_write).
 */
#include "redis_store.h"
#include "clock.h"

#include <hiredis.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "announce_backend.h"
#include "netmap.h"
#include "price.h"
#include "rank.h"
#include "redis_cluster.h"
#include "source_ledger.h"
#include "tracker.h"

#define CANDIDATES_MAX 512 /* drawn per set per announce at most */
/* candidates in one draw at most: each ZRANDMEMBER asks for one more, as
 * the set's marker may come (see job_prepare) */
#define DRAW_MAX (2 * (CANDIDATES_MAX + 1))

/* One read of a swarm: its counts and the candidates drawn (leechers, then
 * seeds), immutable once filled and shared by reference between the cache
 * and the announces answered from it, so a cache hit copies nothing. */
struct draw {
	atomic_uint refs;
	size_t size;    /* the draw size asked for */
	bool has_seeds; /* false: a seed's read, which draws leechers only */
	struct itr_swarm_counts counts;
	size_t nleechers, n;
	/* each candidate's PID in map (held), looked up once per draw, not
	 * once per announce answered from it; NULL map: not looked up */
	struct itr_netmap *map;
	const struct itr_pid **pids;
	struct itr_peer_addr peers[];
};

static struct draw *draw_new(size_t cap)
{
	struct draw *d = calloc(1, sizeof(*d) + cap * sizeof(d->peers[0]));
	if (!d)
		return NULL;
	atomic_init(&d->refs, 1);
	if (cap && !(d->pids = calloc(cap, sizeof(*d->pids)))) {
		free(d);
		return NULL;
	}
	return d;
}

/* The candidates' PIDs in the current map (map: that map, held). */
static void draw_lookup(struct draw *d)
{
	struct itr_netmap *map = itr_netmap_current();
	if (!map)
		return;
	for (size_t i = 0; i < d->n; i++)
		d->pids[i] = itr_netmap_lookup(map, d->peers[i].family, d->peers[i].addr);
	d->map = map;
}

/* The PIDs of d's first n candidates in map: d's own when it looked them
 * up in that map, else looked up into buf (DRAW_MAX entries). */
static const struct itr_pid *const *draw_pids(const struct draw *d, const struct itr_netmap *map,
                                              size_t n, const struct itr_pid **buf)
{
	if (map == d->map)
		return d->pids;
	for (size_t i = 0; i < n; i++)
		buf[i] = map ? itr_netmap_lookup(map, d->peers[i].family, d->peers[i].addr) : NULL;
	return buf;
}

static struct draw *draw_ref(struct draw *d)
{
	if (d)
		atomic_fetch_add(&d->refs, 1);
	return d;
}

static void draw_unref(struct draw *d)
{
	if (d && atomic_fetch_sub(&d->refs, 1) == 1) {
		if (d->map)
			itr_netmap_unref(d->map);
		free(d->pids);
		free(d);
	}
}

/* The candidate cache: per swarm, the last draw and counts this instance
 * read, reused for CACHE_MS. A hit sends only the writes (the peer, its
 * set's TTL, WAIT), not the counts and the two ZRANDMEMBER draws, which are
 * most of an announce's reply bytes and parsing. Staleness bound: a peer
 * another instance (or this one) stored is in this instance's answers at
 * most CACHE_MS later, a departed peer can be listed CACHE_MS longer, and
 * the counts lag by as much.
 *
 * An entry also remembers when this instance last refreshed the swarm's
 * keys (see job_prepare): once per REFRESH_MS per swarm, not on every
 * announce.
 *
 * CACHE_SETS sets of CACHE_WAYS entries, the set chosen by the info_hash:
 * a direct-mapped table of 1024 put a quarter of 312 busy swarms on a slot
 * shared with another, and two swarms on one slot evict each other on
 * every announce. */
#define CACHE_SETS 1024
#define CACHE_WAYS 4
#define CACHE_MS   250
#define REFRESH_MS 10000

struct cache_entry {
	uint8_t ih[ITR_INFO_HASH_LEN];
	bool used;
	uint64_t at_ms;        /* when last was read */
	struct draw *last;     /* NULL: none */
	uint64_t refreshed_ms; /* 0: not refreshed by this instance */
};

struct cache_set {
	pthread_mutex_t lock;
	struct cache_entry way[CACHE_WAYS];
};

struct itr_redis_store {
	struct itr_rc *rc;
	struct itr_tracker *tracker;
	struct itr_announce_backend backend;
	atomic_uint_fast64_t announces, scrapes, failures, cache_hits, shared_reads;
	struct cache_set *cache;          /* CACHE_SETS */
	struct itr_source_ledger *ledger; /* per-source quotas; NULL: none set */
};

static struct cache_set *cache_set(struct itr_redis_store *st, const uint8_t *ih)
{
	uint32_t h = (uint32_t)ih[0] | (uint32_t)ih[1] << 8 | (uint32_t)ih[2] << 16;
	return &st->cache[h % CACHE_SETS];
}

/* When an entry was last used (read or refreshed); 0: free. */
static uint64_t entry_used_at(const struct cache_entry *e)
{
	if (!e->used)
		return 0;
	return e->at_ms > e->refreshed_ms ? e->at_ms : e->refreshed_ms;
}

/* ih's entry in its set (locked), or NULL; with make, the least recently
 * used entry is given to ih when it has none. */
static struct cache_entry *cache_entry(struct cache_set *set, const uint8_t *ih, bool make)
{
	struct cache_entry *lru = &set->way[0];
	for (int w = 0; w < CACHE_WAYS; w++) {
		struct cache_entry *e = &set->way[w];
		if (e->used && memcmp(e->ih, ih, ITR_INFO_HASH_LEN) == 0)
			return e;
		if (entry_used_at(e) < entry_used_at(lru))
			lru = e;
	}
	if (!make)
		return NULL;
	draw_unref(lru->last);
	*lru = (struct cache_entry){.used = true};
	memcpy(lru->ih, ih, ITR_INFO_HASH_LEN);
	return lru;
}

/* Whether draw d serves an announce that wants size candidates (a seed
 * needs no seeds). */
static bool draw_serves(const struct draw *d, size_t size, bool seed)
{
	return d->size >= size && (seed || d->has_seeds);
}

/* A fresh draw of ih that serves the announce (a reference), or NULL. */
static struct draw *cache_get(struct itr_redis_store *st, const uint8_t *ih, size_t size, bool seed,
                              uint64_t now)
{
	struct cache_set *set = cache_set(st, ih);
	struct draw *d = NULL;
	pthread_mutex_lock(&set->lock);
	struct cache_entry *e = cache_entry(set, ih, false);
	if (e && e->last && now - e->at_ms < CACHE_MS && draw_serves(e->last, size, seed))
		d = draw_ref(e->last);
	pthread_mutex_unlock(&set->lock);
	return d;
}

/* A seed's draw (no seeds in it) does not replace a fresh leecher's. */
static void cache_put(struct itr_redis_store *st, const uint8_t *ih, uint64_t now, struct draw *d)
{
	struct cache_set *set = cache_set(st, ih);
	struct draw *old = NULL;
	pthread_mutex_lock(&set->lock);
	struct cache_entry *e = cache_entry(set, ih, true);
	if (d->has_seeds || !e->last || !e->last->has_seeds || now - e->at_ms >= CACHE_MS) {
		old = e->last;
		e->last = draw_ref(d);
		e->at_ms = now;
	}
	pthread_mutex_unlock(&set->lock);
	draw_unref(old);
}

/* Whether this announce refreshes ih's download counter TTL and sweeps its
 * expired members (claimed here: one announce per REFRESH_MS does). */
static bool refresh_claim(struct itr_redis_store *st, const uint8_t *ih, uint64_t now)
{
	struct cache_set *set = cache_set(st, ih);
	pthread_mutex_lock(&set->lock);
	struct cache_entry *e = cache_entry(set, ih, true);
	bool due = e->refreshed_ms == 0 || now - e->refreshed_ms >= REFRESH_MS;
	if (due)
		e->refreshed_ms = now ? now : 1;
	pthread_mutex_unlock(&set->lock);
	return due;
}

/* A claimed refresh that did not reach Redis: the next announce does it. */
static void refresh_release(struct itr_redis_store *st, const uint8_t *ih)
{
	struct cache_set *set = cache_set(st, ih);
	pthread_mutex_lock(&set->lock);
	struct cache_entry *e = cache_entry(set, ih, false);
	if (e)
		e->refreshed_ms = 0;
	pthread_mutex_unlock(&set->lock);
}

size_t itr_redis_member_encode(const struct itr_peer_addr *peer, char out[18])
{
	size_t alen = peer->family == 4 ? 4 : peer->family == 6 ? 16 : 0;
	if (!alen)
		return 0;
	memcpy(out, peer->addr, alen);
	out[alen] = (char)(peer->port >> 8);
	out[alen + 1] = (char)(peer->port & 0xff);
	return alen + 2;
}

int itr_redis_member_decode(const char *buf, size_t len, struct itr_peer_addr *out)
{
	if (len != 6 && len != 18)
		return -1;
	memset(out, 0, sizeof(*out));
	out->family = len == 6 ? 4 : 6;
	memcpy(out->addr, buf, len - 2);
	out->port = (uint16_t)((uint8_t)buf[len - 2] << 8 | (uint8_t)buf[len - 1]);
	return 0;
}

/* "itr:{<40 hex>}:X" */
#define KEY_LEN 48
static void swarm_key(char out[KEY_LEN + 1], const uint8_t ih[ITR_INFO_HASH_LEN], char kind)
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "itr:{", 5);
	for (int i = 0; i < ITR_INFO_HASH_LEN; i++) {
		out[5 + 2 * i] = hex[ih[i] >> 4];
		out[6 + 2 * i] = hex[ih[i] & 15];
	}
	out[45] = '}';
	out[46] = ':';
	out[47] = kind;
	out[48] = '\0';
}

static void cmd(struct itr_rc_cmd *c, int argc, ...)
{
	va_list ap;
	va_start(ap, argc);
	c->argc = argc;
	for (int i = 0; i < argc; i++) {
		c->argv[i] = va_arg(ap, const char *);
		c->argvlen[i] = va_arg(ap, size_t);
	}
	va_end(ap);
}
#define S(str) (str), strlen(str)

static long long reply_int(const void *r)
{
	const redisReply *rep = r;
	if (rep && rep->type == REDIS_REPLY_INTEGER)
		return rep->integer;
	if (rep && rep->type == REDIS_REPLY_STRING)
		return strtoll(rep->str, NULL, 10);
	return 0;
}

static const char *reply_error(void **replies, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const redisReply *r = replies[i];
		if (r && r->type == REDIS_REPLY_ERROR)
			return r->str;
	}
	return NULL;
}

/* Candidates from a ZRANDMEMBER ... WITHSCORES answer that have not expired. */
static size_t take_candidates(const void *r, long long now, struct itr_peer_addr *out, size_t n,
                              size_t cap)
{
	const redisReply *rep = r;
	if (!rep || rep->type != REDIS_REPLY_ARRAY)
		return n;
	for (size_t i = 0; i + 1 < rep->elements && n < cap; i += 2) {
		const redisReply *m = rep->element[i], *score = rep->element[i + 1];
		if (m->type != REDIS_REPLY_STRING)
			continue;
		if (score->type == REDIS_REPLY_STRING && strtoll(score->str, NULL, 10) < now)
			continue;
		if (itr_redis_member_decode(m->str, m->len, &out[n]) == 0)
			n++;
	}
	return n;
}

/* The view AS asn has of a swarm from a draw; client: -1 none (the status
 * walk), 0 a leecher of asn, 1 a seed of asn (counted even when the draw
 * does not hold it). */
static void view_of_draw(const struct itr_pid *const *pids, size_t nl, size_t ns, bool seeds_drawn,
                         uint32_t asn, int client, const struct itr_swarm_counts *counts,
                         struct itr_price_as_view *v)
{
	size_t as_leechers = 0, as_seeds = 0;
	for (size_t i = 0; i < nl + ns; i++) {
		if (pids[i] && pids[i]->asn == asn) {
			if (i < nl)
				as_leechers++;
			else
				as_seeds++;
		}
	}
	/* a draw is a random sample of its set: scale it to the set's size */
	double leechers = nl ? (double)as_leechers * counts->incomplete / (double)nl : 0;
	double seeds = seeds_drawn && ns ? (double)as_seeds * counts->complete / (double)ns : 0;
	if (client == 1 && seeds < 1)
		seeds = 1;
	if (client == 0 && leechers < 1)
		leechers = 1;
	memset(v, 0, sizeof(*v));
	v->peers = (uint32_t)lround(leechers + seeds);
	v->seeds = (uint32_t)lround(seeds);
	if (!v->seeds && as_seeds)
		v->seeds = 1;
	/* Redis keeps no `left`: a leecher counts as all left, a seed as none */
	v->remaining = leechers + seeds > 0 ? leechers / (leechers + seeds) : 0;
	uint64_t all = (uint64_t)counts->complete + counts->incomplete;
	v->swarm_remaining = all ? (double)counts->incomplete / (double)all : 0;
	v->swarm_seeds = counts->complete > v->seeds ? counts->complete : v->seeds;
}

void itr_redis_draw_view(const struct itr_pid *const *pids, size_t nl, size_t ns, bool seeds_drawn,
                         uint32_t asn, bool client_seed, const struct itr_swarm_counts *counts,
                         struct itr_price_as_view *v)
{
	view_of_draw(pids, nl, ns, seeds_drawn, asn, client_seed ? 1 : 0, counts, v);
}

/* One announce between its commands and its answer: what the commands
 * point into (keys, numbers, the member) lives here until they are sent. */
struct announce_job {
	const uint8_t *ih;
	long long now;
	uint64_t mono;
	char now_text[24], excl_now[24], expiry[24], ttl[24], count[16];
	char ks[KEY_LEN + 1], kl[KEY_LEN + 1], kd[KEY_LEN + 1], member[18];
	bool seed, writes, refresh;
	size_t size, n, at_counts, at_cands;
	struct draw *cached; /* a fresh draw from the cache (a reference), or NULL */
	long lender;         /* a batch's earlier announce whose read this one shares, or -1 */
	struct draw *drawn;  /* after job_finish: the draw it answered from (a reference) */
	struct itr_rc_cmd cmds[16]; /* at most 4 writes, 5 reads and 7 for the refresh */
	void *replies[16];
};

/* An earlier announce of the batch that reads the same swarm with a draw
 * that serves this one, or -1. Announces of one swarm often arrive
 * together: they then share one read instead of drawing the same set. */
static long find_lender(const struct announce_job *batch, size_t n, const uint8_t *ih, size_t size,
                        bool seed)
{
	for (size_t k = 0; k < n; k++) {
		const struct announce_job *b = &batch[k];
		if (b->cached || b->lender >= 0 || b->size < size || (!seed && b->seed) ||
		    memcmp(b->ih, ih, ITR_INFO_HASH_LEN) != 0)
			continue;
		return (long)k;
	}
	return -1;
}

/* The reply's fixed part, the quotas, the cache, and the commands; batch
 * holds the n announces prepared before this one in the same batch. */
static void job_prepare(struct itr_redis_store *st, struct announce_job *j,
                        const struct itr_backend_request *req, struct itr_backend_reply *reply,
                        size_t want, const struct announce_job *batch, size_t nbatch)
{
	const struct itr_announce *ann = &req->ann;
	const struct itr_tracker_config *cfg = itr_tracker_get_config(st->tracker);
	itr_backend_reply_init(reply);
	reply->interval = cfg->interval;
	reply->min_interval = cfg->min_interval;
	atomic_fetch_add(&st->announces, 1);

	/* expiry times are wall-clock seconds: every instance must agree */
	long long now = j->now = (long long)time(NULL);
	char *ks = j->ks, *kl = j->kl, *kd = j->kd, *member = j->member;
	j->ih = ann->info_hash;
	swarm_key(ks, ann->info_hash, 's');
	memcpy(kl, ks, sizeof(j->ks)); /* the same key but its last letter */
	memcpy(kd, ks, sizeof(j->ks));
	kl[KEY_LEN - 1] = 'l';
	kd[KEY_LEN - 1] = 'd';
	size_t mlen = itr_redis_member_encode(&ann->peer, member);
	bool seed = j->seed = ann->left == 0, stopped = ann->event == ITR_EVENT_STOPPED;
	const char *mine = seed ? ks : kl, *other = seed ? kl : ks;

	size_t size = want ? 2 * want + 16 : 0;
	if (size > CANDIDATES_MAX)
		size = CANDIDATES_MAX;
	j->size = size;

	/* a fresh enough draw of this swarm, in the cache or being read by
	 * an earlier announce of the batch: only the writes go out */
	j->mono = (uint64_t)itr_clock_ms();
	j->drawn = NULL;
	j->cached = cache_get(st, ann->info_hash, size, seed, j->mono);
	j->lender = j->cached ? -1 : find_lender(batch, nbatch, ann->info_hash, size, seed);
	bool reads = !j->cached && j->lender < 0;

	/* the per-source quotas, as this instance has seen the source: a
	 * refused peer is not stored but still gets peers */
	enum itr_refusal refusal =
	    st->ledger ? itr_source_ledger_announce(st->ledger, ann->info_hash, &ann->peer, stopped,
	                                            (uint32_t)now)
	               : ITR_REFUSED_NONE;
	bool writes = j->writes = refusal == ITR_REFUSED_NONE;
	if (!writes) {
		itr_tracker_count_refusal(st->tracker, refusal);
		struct itr_announce_reply why = {.stored = refusal == ITR_REFUSED_SOURCE_PEERS
		                                               ? ITR_SWARM_SOURCE_PEERS
		                                               : ITR_SWARM_SOURCE_SWARMS};
		snprintf(reply->warning, ITR_BACKEND_TEXT, "%s", itr_tracker_refusal_text(&why));
	}

	/* The keys' lifetime. Each set holds a marker member (empty, score
	 * -1: never counted, drawn or swept), so removing peers never empties
	 * it and Redis never deletes it: a set is created only by a ZADD, and
	 * goes only when its TTL runs out. The TTL is the peer expiry plus
	 * REFRESH_MS, set by the refresh that each instance sends once per
	 * REFRESH_MS per swarm with the marker. So an announce whose instance
	 * refreshed less than REFRESH_MS ago finds the sets in place, with a
	 * TTL that outlives the peer it adds, and sends no EXPIRE: two write
	 * commands, not three (the EXPIRE was a third of the cluster's CPU
	 * time under load). A new swarm, or one gone for lack of announces,
	 * has no fresh refresh on any instance, so its first announce sends
	 * one. */
	j->refresh = writes && refresh_claim(st, ann->info_hash, j->mono);
	bool completed = writes && ann->event == ITR_EVENT_COMPLETED;
	/* the numbers the commands carry, as text: only those this one sends */
	if (writes && !stopped)
		snprintf(j->expiry, sizeof(j->expiry), "%lld", now + cfg->peer_expiry);
	if (completed || j->refresh)
		snprintf(j->ttl, sizeof(j->ttl), "%u", cfg->peer_expiry + REFRESH_MS / 1000);
	if (reads)
		snprintf(j->now_text, sizeof(j->now_text), "%lld", now);
	if (reads && size) /* the marker may come too */
		snprintf(j->count, sizeof(j->count), "%zu", size + 1);
	if (j->refresh)
		snprintf(j->excl_now, sizeof(j->excl_now), "(%lld", now);

	struct itr_rc_cmd *cmds = j->cmds;
	size_t n = 0;
	if (writes) {
		if (stopped)
			cmd(&cmds[n++], 3, S("ZREM"), S(mine), member, mlen);
		else
			cmd(&cmds[n++], 4, S("ZADD"), S(mine), S(j->expiry), member, mlen);
		cmd(&cmds[n++], 3, S("ZREM"), S(other), member, mlen);
		if (completed) {
			cmd(&cmds[n++], 2, S("INCR"), S(kd));
			cmd(&cmds[n++], 3, S("EXPIRE"), S(kd), S(j->ttl));
		}
	}
	j->at_counts = n;
	if (reads) {
		cmd(&cmds[n++], 4, S("ZCOUNT"), S(ks), S(j->now_text), S("+inf"));
		cmd(&cmds[n++], 4, S("ZCOUNT"), S(kl), S(j->now_text), S("+inf"));
		cmd(&cmds[n++], 2, S("GET"), S(kd));
	}
	j->at_cands = n;
	if (size && reads) {
		cmd(&cmds[n++], 4, S("ZRANDMEMBER"), S(kl), S(j->count), S("WITHSCORES"));
		if (!seed) /* a seed has no use for other seeds */
			cmd(&cmds[n++], 4, S("ZRANDMEMBER"), S(ks), S(j->count), S("WITHSCORES"));
	}
	/* the refresh: the markers, the TTLs, and the expired members out
	 * (counts and draws skip them meanwhile) */
	if (j->refresh) {
		cmd(&cmds[n++], 4, S("ZADD"), S(ks), S("-1"), S(""));
		cmd(&cmds[n++], 4, S("ZADD"), S(kl), S("-1"), S(""));
		cmd(&cmds[n++], 3, S("EXPIRE"), S(ks), S(j->ttl));
		cmd(&cmds[n++], 3, S("EXPIRE"), S(kl), S(j->ttl));
		cmd(&cmds[n++], 3, S("EXPIRE"), S(kd), S(j->ttl));
		cmd(&cmds[n++], 4, S("ZREMRANGEBYSCORE"), S(ks), S("0"), S(j->excl_now));
		cmd(&cmds[n++], 4, S("ZREMRANGEBYSCORE"), S(kl), S("0"), S(j->excl_now));
	}
	j->n = n;
}

/* The draw of an announce that read the swarm itself, from its replies. */
static struct draw *draw_from_replies(const struct announce_job *j)
{
	const redisReply *rl = j->size ? j->replies[j->at_cands] : NULL;
	const redisReply *rs = j->size && !j->seed ? j->replies[j->at_cands + 1] : NULL;
	size_t cap = 0;
	if (rl && rl->type == REDIS_REPLY_ARRAY)
		cap += rl->elements / 2;
	if (rs && rs->type == REDIS_REPLY_ARRAY)
		cap += rs->elements / 2;
	struct draw *d = draw_new(cap);
	if (!d)
		return NULL;
	d->size = j->size;
	d->has_seeds = !j->seed;
	d->counts.complete = (uint32_t)reply_int(j->replies[j->at_counts]);
	d->counts.incomplete = (uint32_t)reply_int(j->replies[j->at_counts + 1]);
	d->counts.downloaded = (uint32_t)reply_int(j->replies[j->at_counts + 2]);
	d->nleechers = take_candidates(rl, j->now, d->peers, 0, cap);
	d->n = take_candidates(rs, j->now, d->peers, d->nleechers, cap);
	draw_lookup(d);
	return d;
}

/* The answer from the replies (sent: 0, or -1 with err), ranked; batch
 * holds the batch's announces finished before this one. */
static void job_finish(struct itr_redis_store *st, struct announce_job *j,
                       const struct itr_backend_request *req, struct itr_backend_reply *reply,
                       struct itr_ranked_peer *peers, size_t want, int sent, const char *err,
                       const struct announce_job *batch)
{
	const struct itr_announce *ann = &req->ann;
	void **replies = j->replies;
	const char *rerr = sent < 0 ? NULL : reply_error(replies, j->n);
	if (sent < 0 || rerr) {
		atomic_fetch_add(&st->failures, 1);
		if (j->refresh) /* the next announce sends it again */
			refresh_release(st, j->ih);
		if (!rerr) { /* nothing came back */
			snprintf(reply->failure, ITR_BACKEND_TEXT,
			         "tracker store unavailable, try again later (%.160s)", err);
			return;
		}
		snprintf(reply->failure, ITR_BACKEND_TEXT, "tracker store: %.200s", rerr);
		itr_rc_replies_free(replies, j->n);
		return;
	}
	struct draw *d;
	if (j->cached) {
		atomic_fetch_add(&st->cache_hits, 1);
		d = j->cached;
		j->cached = NULL;
	} else if (j->lender >= 0) {
		atomic_fetch_add(&st->shared_reads, 1);
		d = draw_ref(batch[j->lender].drawn);
	} else {
		d = draw_from_replies(j);
		if (d && d->size)
			cache_put(st, ann->info_hash, j->mono, d);
	}
	itr_rc_replies_free(replies, j->n);
	if (!d) { /* out of memory, or the read it shared failed */
		atomic_fetch_add(&st->failures, 1);
		snprintf(reply->failure, ITR_BACKEND_TEXT,
		         "tracker store unavailable, try again later");
		return;
	}
	j->drawn = d;
	reply->counts = d->counts;
	reply->has_downloaded = true;
	if (!j->size)
		return;

	/* a seed answered from a leecher's draw ranks the leechers alone */
	size_t nc = j->seed ? d->nleechers : d->n;
	const struct itr_tracker_config *cfg = itr_tracker_get_config(st->tracker);
	struct itr_netmap *map = itr_netmap_current();
	struct itr_rank_policy policy = cfg->policy;
	policy.gateway_salt = itr_rank_swarm_salt(ann->info_hash);
	/* each candidate's PID: from the draw, unless the map changed since */
	const struct itr_pid *looked_up[DRAW_MAX];
	const struct itr_pid *const *pids = draw_pids(d, map, nc, looked_up);
	const struct itr_pid *own =
	    map ? itr_netmap_lookup(map, ann->peer.family, ann->peer.addr) : NULL;
	if (cfg->price && map && own) {
		struct itr_price_as_view view;
		itr_redis_draw_view(pids, d->nleechers, nc - d->nleechers, !j->seed, own->asn,
		                    j->seed, &reply->counts, &view);
		itr_price_policy_from_view(cfg->price, map, own->asn, &view, &policy);
	}
	reply->npeers =
	    itr_rank_known(map, &policy, &ann->peer, d->peers, pids, false, nc, want, peers);
	itr_netmap_unref(map);
}

static int redis_announce(void *impl, const struct itr_backend_request *req,
                          struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
                          size_t want)
{
	struct itr_redis_store *st = impl;
	struct announce_job j;
	job_prepare(st, &j, req, reply, want, NULL, 0);
	/* writes: one round trip shared with the other threads' announces to
	 * this master, and a replica has them before the client is answered;
	 * reads alone need neither (and a refused peer with a fresh cached
	 * draw needs no round trip at all) */
	char err[256];
	uint16_t slot = itr_rc_keyslot(j.ks, KEY_LEN);
	int sent = j.n == 0 ? 0
	           : j.writes
	               ? itr_rc_write(st->rc, slot, j.cmds, j.n, j.replies, err, sizeof(err))
	               : itr_rc_pipeline(st->rc, slot, j.cmds, j.n, j.replies, err, sizeof(err));
	job_finish(st, &j, req, reply, peers, want, sent, err, NULL);
	draw_unref(j.cached);
	draw_unref(j.drawn);
	return 0;
}

/* A front end's batch: every announce's commands out at once, one pipeline
 * and one WAIT per master (itr_rc_write_many), then every answer. */
static int redis_announce_many(void *impl, const struct itr_backend_request *reqs,
                               struct itr_backend_reply *replies, struct itr_ranked_peer **peers,
                               const size_t *want, size_t n)
{
	struct itr_redis_store *st = impl;
	struct announce_job *jobs = malloc(n * sizeof(*jobs));
	struct itr_rc_item *items = malloc(n * sizeof(*items));
	if (!jobs || !items) {
		free(jobs);
		free(items);
		for (size_t i = 0; i < n; i++) /* one at a time, on the stack */
			redis_announce(impl, &reqs[i], &replies[i], peers[i], want[i]);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		job_prepare(st, &jobs[i], &reqs[i], &replies[i], want[i], jobs, i);
		items[i] = (struct itr_rc_item){.slot = itr_rc_keyslot(jobs[i].ks, KEY_LEN),
		                                .cmds = jobs[i].cmds,
		                                .n = jobs[i].n,
		                                .replies = jobs[i].replies};
	}
	itr_rc_write_many(st->rc, items, n);
	/* in order: a lender is finished before the announces sharing its read */
	for (size_t i = 0; i < n; i++)
		job_finish(st, &jobs[i], &reqs[i], &replies[i], peers[i], want[i], items[i].result,
		           items[i].err, jobs);
	for (size_t i = 0; i < n; i++) {
		draw_unref(jobs[i].cached);
		draw_unref(jobs[i].drawn);
	}
	free(jobs);
	free(items);
	return 0;
}

/* Every hash's three reads at once: each master gets its share in one
 * pipeline (itr_rc_read_many), so a scrape of many hashes costs a round
 * trip per master, not per hash. */
struct scrape_one {
	char ks[KEY_LEN + 1], kl[KEY_LEN + 1], kd[KEY_LEN + 1];
	struct itr_rc_cmd cmds[3];
	void *replies[3];
};

static int redis_scrape(void *impl, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                        struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	struct itr_redis_store *st = impl;
	atomic_fetch_add(&st->scrapes, 1);
	if (n == 0)
		return 0;
	char now_text[24];
	snprintf(now_text, sizeof(now_text), "%lld", (long long)time(NULL));
	/* the items, then the commands and keys they point into */
	struct itr_rc_item *items = malloc(n * (sizeof(*items) + sizeof(struct scrape_one)));
	if (!items)
		goto unavailable;
	struct scrape_one *one = (struct scrape_one *)(items + n);
	for (size_t i = 0; i < n; i++) {
		struct scrape_one *o = &one[i];
		swarm_key(o->ks, hashes[i], 's');
		swarm_key(o->kl, hashes[i], 'l');
		swarm_key(o->kd, hashes[i], 'd');
		cmd(&o->cmds[0], 4, S("ZCOUNT"), S(o->ks), S(now_text), S("+inf"));
		cmd(&o->cmds[1], 4, S("ZCOUNT"), S(o->kl), S(now_text), S("+inf"));
		cmd(&o->cmds[2], 2, S("GET"), S(o->kd));
		items[i] = (struct itr_rc_item){.slot = itr_rc_keyslot(o->ks, KEY_LEN),
		                                .cmds = o->cmds,
		                                .n = 3,
		                                .replies = o->replies};
	}
	itr_rc_read_many(st->rc, items, n);
	int result = 0;
	for (size_t i = 0; i < n; i++) {
		if (items[i].result != 0) {
			result = -1;
			continue;
		}
		counts[i].complete = (uint32_t)reply_int(one[i].replies[0]);
		counts[i].incomplete = (uint32_t)reply_int(one[i].replies[1]);
		counts[i].downloaded = (uint32_t)reply_int(one[i].replies[2]);
		itr_rc_replies_free(one[i].replies, 3);
	}
	free(items);
	if (result == 0)
		return 0;
unavailable:
	atomic_fetch_add(&st->failures, 1);
	snprintf(failure, failurelen, "tracker store unavailable, try again later");
	return -1;
}

static void redis_stats(void *impl, struct itr_backend_stats *out)
{
	struct itr_redis_store *st = impl;
	out->announces = atomic_load(&st->announces);
	out->scrapes = atomic_load(&st->scrapes);
	out->failures = atomic_load(&st->failures);
	out->torrents = 0; /* held by the cluster, not here */
	out->peers = 0;
}

/* The price controller's per-AS totals (its status and /metrics) come
 * from the swarms this instance read in the last STATUS_WINDOW_MS and its
 * cache still holds (up to CACHE_SETS x CACHE_WAYS): each AS's peers and
 * seeds in a swarm are estimated from the last draw, as for the policy. The
 * cluster holds no per-AS totals, and a scan of it on every tick would
 * cost what the announces cost. */
#define STATUS_WINDOW_MS (5 * 60 * 1000)
#define STATUS_ASES_MAX  64 /* ASes counted per swarm */

static void emit_draw(const struct draw *d, const struct itr_netmap *map, itr_price_emit_fn emit,
                      void *ectx)
{
	const struct itr_pid *looked_up[DRAW_MAX];
	const struct itr_pid *const *pids = draw_pids(d, map, d->n, looked_up);
	uint32_t ases[STATUS_ASES_MAX];
	size_t nases = 0;
	for (size_t i = 0; i < d->n && nases < STATUS_ASES_MAX; i++) {
		if (!pids[i])
			continue;
		size_t k = 0;
		while (k < nases && ases[k] != pids[i]->asn)
			k++;
		if (k == nases)
			ases[nases++] = pids[i]->asn;
	}
	for (size_t k = 0; k < nases; k++) {
		struct itr_price_as_view v;
		view_of_draw(pids, d->nleechers, d->n - d->nleechers, d->has_seeds, ases[k], -1,
		             &d->counts, &v);
		emit(ectx, ases[k], &v);
	}
}

static void walk_swarms(void *ctx, itr_price_emit_fn emit, void *ectx)
{
	struct itr_redis_store *st = ctx;
	struct itr_netmap *map = itr_netmap_current();
	if (!map)
		return;
	uint64_t now = (uint64_t)itr_clock_ms();
	for (size_t i = 0; i < CACHE_SETS; i++) {
		struct cache_set *set = &st->cache[i];
		struct draw *recent[CACHE_WAYS];
		int n = 0;
		pthread_mutex_lock(&set->lock);
		for (int w = 0; w < CACHE_WAYS; w++) {
			const struct cache_entry *e = &set->way[w];
			if (e->used && e->last && e->last->has_seeds &&
			    now - e->at_ms < STATUS_WINDOW_MS)
				recent[n++] = draw_ref(e->last);
		}
		pthread_mutex_unlock(&set->lock);
		for (int k = 0; k < n; k++) {
			emit_draw(recent[k], map, emit, ectx);
			draw_unref(recent[k]);
		}
	}
	itr_netmap_unref(map);
}

static const struct itr_announce_backend_ops redis_ops = {
    .announce = redis_announce,
    .announce_many = redis_announce_many,
    .scrape = redis_scrape,
    .stats = redis_stats,
};

struct itr_redis_store *itr_redis_store_new(const char *url, struct itr_tracker *tracker, char *err,
                                            size_t errlen)
{
	size_t sl = strlen(ITR_REDIS_STORE_SCHEME);
	if (!url || strncmp(url, ITR_REDIS_STORE_SCHEME, sl) != 0) {
		snprintf(err, errlen, "--store '%s': expected memory or %sHOST:PORT[,HOST:PORT...]",
		         url ? url : "", ITR_REDIS_STORE_SCHEME);
		return NULL;
	}
	const struct itr_tracker_config *tcfg = tracker ? itr_tracker_get_config(tracker) : NULL;
	if (tcfg && tcfg->max_peers_per_source > ITR_LEDGER_MAX_PORTS) {
		snprintf(err, errlen,
		         "--max-peers-per-source %u: the Redis store counts at most %d peers per "
		         "address in one torrent",
		         tcfg->max_peers_per_source, ITR_LEDGER_MAX_PORTS);
		return NULL;
	}
	struct itr_redis_store *st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (tcfg && (tcfg->max_peers_per_source || tcfg->max_torrents_per_source)) {
		struct itr_source_ledger_config lcfg = {
		    .max_ports = tcfg->max_peers_per_source,
		    .expiry = tcfg->peer_expiry,
		    .pairs = tcfg->source_table,
		};
		st->ledger = itr_source_ledger_new(&lcfg, itr_tracker_quota(tracker));
		if (!st->ledger) {
			snprintf(err, errlen, "out of memory creating the source ledger");
			free(st);
			return NULL;
		}
	}
	struct itr_rc_config rcfg = {.seeds = url + sl};
	char why[256];
	st->rc = itr_rc_new(&rcfg, why, sizeof(why));
	if (!st->rc) {
		snprintf(err, errlen, "--store: %s", why);
		itr_source_ledger_free(st->ledger);
		free(st);
		return NULL;
	}
	st->cache = calloc(CACHE_SETS, sizeof(*st->cache));
	if (!st->cache) {
		snprintf(err, errlen, "out of memory");
		itr_rc_free(st->rc);
		itr_source_ledger_free(st->ledger);
		free(st);
		return NULL;
	}
	for (size_t i = 0; i < CACHE_SETS; i++)
		pthread_mutex_init(&st->cache[i].lock, NULL);
	st->tracker = tracker;
	if (tcfg && tcfg->price) { /* replaces the unused in-memory store's walk */
		struct itr_price_swarm_source src = {.each = walk_swarms, .ctx = st};
		itr_price_set_swarm_source(tcfg->price, &src);
	}
	st->backend = (struct itr_announce_backend){
	    .ops = &redis_ops,
	    .impl = st,
	    .threads = 48, /* a scrape waits for its round trips */
	    /* announce_many overlaps a batch's round trips; few workers, so
	     * that batches are large and the masters see few round trips
	     * (docs/benchmarks.md: 2 UDP workers beat 4 and 3, 1 HTTP runner
	     * beats 2) */
	    .batch_threads = 2,
	    .http_batch_runners = 1,
	    .max_scrape = 64,
	};
	return st;
}

struct itr_announce_backend *itr_redis_store_backend(struct itr_redis_store *st)
{
	return &st->backend;
}

struct itr_rc *itr_redis_store_cluster(struct itr_redis_store *st)
{
	return st->rc;
}

void itr_redis_store_free(struct itr_redis_store *st)
{
	if (!st)
		return;
	struct itr_rc_stats rs;
	itr_rc_stats(st->rc, &rs);
	if (rs.batches) /* how much the group commit saved, for the operator */
		fprintf(stderr,
		        "itrackerd: redis store: %llu announces, %llu writes in %llu round trips, "
		        "%llu cache hits, %llu reads shared in a batch\n",
		        (unsigned long long)atomic_load(&st->announces),
		        (unsigned long long)rs.batched, (unsigned long long)rs.batches,
		        (unsigned long long)atomic_load(&st->cache_hits),
		        (unsigned long long)atomic_load(&st->shared_reads));
	const struct itr_tracker_config *tcfg =
	    st->tracker ? itr_tracker_get_config(st->tracker) : NULL;
	if (tcfg && tcfg->price) /* returns once no tick walks the cache */
		itr_price_set_swarm_source(tcfg->price, NULL);
	itr_rc_free(st->rc);
	for (size_t i = 0; i < CACHE_SETS; i++) {
		pthread_mutex_destroy(&st->cache[i].lock);
		for (int w = 0; w < CACHE_WAYS; w++)
			draw_unref(st->cache[i].way[w].last);
	}
	free(st->cache);
	itr_source_ledger_free(st->ledger);
	free(st);
}
