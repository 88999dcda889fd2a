/* redis_store.c - the Redis Cluster announce backend (see redis_store.h).
 * One announce is one pipeline to the swarm's slot: store or remove the
 * peer, read the counts, draw candidates, refresh the TTLs, and wait for
 * one replica to have the write (so a master that dies right after an
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

#define CANDIDATES_MAX 512 /* drawn per announce at most */

/* The candidate cache: per swarm (direct-mapped on the info_hash), the
 * last draw and counts this instance read, reused for CACHE_MS. A hit
 * sends only the writes (the peer, the TTLs, WAIT), not the counts and the
 * two ZRANDMEMBER draws, which are most of an announce's reply bytes and
 * parsing. Staleness bound: a peer another instance (or this one) stored
 * is in this instance's answers at most CACHE_MS later, a departed peer
 * can be listed CACHE_MS longer, and the counts lag by as much. */
#define CACHE_SLOTS 1024
#define CACHE_MS    250

struct cand_cache {
	pthread_mutex_t lock;
	bool valid;
	uint8_t ih[ITR_INFO_HASH_LEN];
	uint64_t at_ms;
	size_t draw; /* the draw size it was filled with */
	struct itr_swarm_counts counts;
	struct itr_peer_addr *leechers, *seeds;
	size_t nleechers, nseeds, cap;
};

struct itr_redis_store {
	struct itr_rc *rc;
	struct itr_tracker *tracker;
	struct itr_announce_backend backend;
	atomic_uint_fast64_t announces, scrapes, failures, sweeps, cache_hits;
	struct cand_cache *cache;         /* CACHE_SLOTS */
	struct itr_source_ledger *ledger; /* per-source quotas; NULL: none set */
};

static struct cand_cache *cache_slot(struct itr_redis_store *st, const uint8_t *ih)
{
	uint32_t h = (uint32_t)ih[0] | (uint32_t)ih[1] << 8 | (uint32_t)ih[2] << 16;
	return &st->cache[h % CACHE_SLOTS];
}

/* A fresh entry for ih with at least draw candidates: copies them (the
 * leechers, then the seeds unless seed) and the counts. Returns the
 * candidates, or -1. */
static long cache_get(struct itr_redis_store *st, const uint8_t *ih, size_t draw, bool seed,
                      uint64_t now, struct itr_peer_addr *out, size_t *nleechers,
                      struct itr_swarm_counts *counts)
{
	struct cand_cache *c = cache_slot(st, ih);
	long n = -1;
	pthread_mutex_lock(&c->lock);
	if (c->valid && now - c->at_ms < CACHE_MS && c->draw >= draw &&
	    memcmp(c->ih, ih, ITR_INFO_HASH_LEN) == 0) {
		memcpy(out, c->leechers, c->nleechers * sizeof(*out));
		n = (long)c->nleechers;
		*nleechers = c->nleechers;
		if (!seed) {
			memcpy(out + n, c->seeds, c->nseeds * sizeof(*out));
			n += (long)c->nseeds;
		}
		*counts = c->counts;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void cache_put(struct itr_redis_store *st, const uint8_t *ih, size_t draw, uint64_t now,
                      const struct itr_peer_addr *leechers, size_t nl,
                      const struct itr_peer_addr *seeds, size_t ns,
                      const struct itr_swarm_counts *counts)
{
	struct cand_cache *c = cache_slot(st, ih);
	pthread_mutex_lock(&c->lock);
	if (c->cap < CANDIDATES_MAX) {
		c->leechers = calloc(CANDIDATES_MAX, sizeof(*c->leechers));
		c->seeds = calloc(CANDIDATES_MAX, sizeof(*c->seeds));
		c->cap = c->leechers && c->seeds ? CANDIDATES_MAX : 0;
	}
	if (c->cap) {
		memcpy(c->ih, ih, ITR_INFO_HASH_LEN);
		c->at_ms = now;
		c->draw = draw;
		c->counts = *counts;
		memcpy(c->leechers, leechers, nl * sizeof(*leechers));
		memcpy(c->seeds, seeds, ns * sizeof(*seeds));
		c->nleechers = nl;
		c->nseeds = ns;
		c->valid = true;
	}
	pthread_mutex_unlock(&c->lock);
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

void itr_redis_draw_view(const struct itr_pid *const *pids, size_t nl, size_t ns, bool seeds_drawn,
                         uint32_t asn, bool client_seed, const struct itr_swarm_counts *counts,
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
	/* the client is a peer of its AS whether or not the draw holds it */
	if (client_seed && seeds < 1)
		seeds = 1;
	if (!client_seed && leechers < 1)
		leechers = 1;
	memset(v, 0, sizeof(*v));
	v->peers = (uint32_t)lround(leechers + seeds);
	v->seeds = (uint32_t)lround(seeds);
	if (!v->seeds && as_seeds)
		v->seeds = 1;
	/* Redis keeps no `left`: a leecher counts as all left, a seed as none */
	v->remaining = leechers / (leechers + seeds);
	uint64_t all = (uint64_t)counts->complete + counts->incomplete;
	v->swarm_remaining = all ? (double)counts->incomplete / (double)all : 0;
}

/* One announce between its commands and its answer: what the commands
 * point into (keys, numbers, the member) lives here until they are sent. */
struct announce_job {
	long long now;
	uint64_t mono;
	char now_text[24], excl_now[24], expiry[24], ttl[24], count[16];
	char ks[KEY_LEN + 1], kl[KEY_LEN + 1], kd[KEY_LEN + 1], member[18];
	bool seed, hit, writes;
	size_t draw, n, at_counts, at_cands;
	long cached;
	size_t cached_leechers;
	struct itr_swarm_counts cached_counts;
	struct itr_rc_cmd cmds[16];
	void *replies[16];
	struct itr_peer_addr cands[2 * CANDIDATES_MAX];
};

/* The reply's fixed part, the quotas, the cache, and the commands. */
static void job_prepare(struct itr_redis_store *st, struct announce_job *j,
                        const struct itr_backend_request *req, struct itr_backend_reply *reply,
                        size_t want)
{
	const struct itr_announce *ann = &req->ann;
	const struct itr_tracker_config *cfg = itr_tracker_get_config(st->tracker);
	itr_backend_reply_init(reply);
	reply->interval = cfg->interval;
	reply->min_interval = cfg->min_interval;
	atomic_fetch_add(&st->announces, 1);

	/* expiry times are wall-clock seconds: every instance must agree */
	long long now = j->now = (long long)time(NULL);
	snprintf(j->now_text, sizeof(j->now_text), "%lld", now);
	snprintf(j->excl_now, sizeof(j->excl_now), "(%lld", now);
	snprintf(j->expiry, sizeof(j->expiry), "%lld", now + cfg->peer_expiry);
	snprintf(j->ttl, sizeof(j->ttl), "%u", cfg->peer_expiry);
	char *ks = j->ks, *kl = j->kl, *kd = j->kd, *member = j->member;
	swarm_key(ks, ann->info_hash, 's');
	swarm_key(kl, ann->info_hash, 'l');
	swarm_key(kd, ann->info_hash, 'd');
	size_t mlen = itr_redis_member_encode(&ann->peer, member);
	bool seed = j->seed = ann->left == 0, stopped = ann->event == ITR_EVENT_STOPPED;
	const char *mine = seed ? ks : kl, *other = seed ? kl : ks;

	size_t draw = want ? 2 * want + 16 : 0;
	if (draw > CANDIDATES_MAX)
		draw = CANDIDATES_MAX;
	j->draw = draw;
	snprintf(j->count, sizeof(j->count), "%zu", draw);

	/* a fresh enough draw of this swarm: only the writes go out */
	j->mono = (uint64_t)itr_clock_ms();
	j->cached = draw ? cache_get(st, ann->info_hash, draw, seed, j->mono, j->cands,
	                             &j->cached_leechers, &j->cached_counts)
	                 : -1;
	bool hit = j->hit = j->cached >= 0;

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

	struct itr_rc_cmd *cmds = j->cmds;
	size_t n = 0;
	if (writes) {
		if (stopped)
			cmd(&cmds[n++], 3, S("ZREM"), S(mine), member, mlen);
		else
			cmd(&cmds[n++], 4, S("ZADD"), S(mine), S(j->expiry), member, mlen);
		cmd(&cmds[n++], 3, S("ZREM"), S(other), member, mlen);
		if (ann->event == ITR_EVENT_COMPLETED)
			cmd(&cmds[n++], 2, S("INCR"), S(kd));
	}
	j->at_counts = n;
	if (!hit) {
		cmd(&cmds[n++], 4, S("ZCOUNT"), S(ks), S(j->now_text), S("+inf"));
		cmd(&cmds[n++], 4, S("ZCOUNT"), S(kl), S(j->now_text), S("+inf"));
		cmd(&cmds[n++], 2, S("GET"), S(kd));
	}
	j->at_cands = n;
	if (draw && !hit) {
		cmd(&cmds[n++], 4, S("ZRANDMEMBER"), S(kl), S(j->count), S("WITHSCORES"));
		if (!seed) /* a seed has no use for other seeds */
			cmd(&cmds[n++], 4, S("ZRANDMEMBER"), S(ks), S(j->count), S("WITHSCORES"));
	}
	if (writes) {
		/* expired members go in a sweep every 16th announce of the
		 * cluster (counts and draws skip them meanwhile) */
		if ((atomic_fetch_add(&st->sweeps, 1) & 15) == 0) {
			cmd(&cmds[n++], 4, S("ZREMRANGEBYSCORE"), S(ks), S("-inf"), S(j->excl_now));
			cmd(&cmds[n++], 4, S("ZREMRANGEBYSCORE"), S(kl), S("-inf"), S(j->excl_now));
		}
		cmd(&cmds[n++], 3, S("EXPIRE"), S(ks), S(j->ttl));
		cmd(&cmds[n++], 3, S("EXPIRE"), S(kl), S(j->ttl));
		cmd(&cmds[n++], 3, S("EXPIRE"), S(kd), S(j->ttl));
	}
	j->n = n;
}

/* The answer from the replies (sent: 0, or -1 with err), ranked. */
static void job_finish(struct itr_redis_store *st, struct announce_job *j,
                       const struct itr_backend_request *req, struct itr_backend_reply *reply,
                       struct itr_ranked_peer *peers, size_t want, int sent, const char *err)
{
	const struct itr_announce *ann = &req->ann;
	void **replies = j->replies;
	if (sent < 0) {
		atomic_fetch_add(&st->failures, 1);
		snprintf(reply->failure, ITR_BACKEND_TEXT,
		         "tracker store unavailable, try again later (%.160s)", err);
		return;
	}
	const char *rerr = reply_error(replies, j->at_cands);
	if (rerr) {
		atomic_fetch_add(&st->failures, 1);
		snprintf(reply->failure, ITR_BACKEND_TEXT, "tracker store: %.200s", rerr);
		itr_rc_replies_free(replies, j->n);
		return;
	}
	if (j->hit) {
		atomic_fetch_add(&st->cache_hits, 1);
		reply->counts = j->cached_counts;
	} else {
		reply->counts.complete = (uint32_t)reply_int(replies[j->at_counts]);
		reply->counts.incomplete = (uint32_t)reply_int(replies[j->at_counts + 1]);
		reply->counts.downloaded = (uint32_t)reply_int(replies[j->at_counts + 2]);
	}
	reply->has_downloaded = true;

	if (j->draw) {
		struct itr_peer_addr *cands = j->cands;
		size_t nc = j->hit ? (size_t)j->cached : 0;
		size_t nl = j->hit ? j->cached_leechers : 0;
		if (!j->hit) {
			nl =
			    take_candidates(replies[j->at_cands], j->now, cands, 0, CANDIDATES_MAX);
			nc = nl;
			if (!j->seed) {
				/* a leecher's draw has both sets: it fills the cache */
				nc = take_candidates(replies[j->at_cands + 1], j->now, cands, nl,
				                     nl + CANDIDATES_MAX);
				cache_put(st, ann->info_hash, j->draw, j->mono, cands, nl,
				          cands + nl, nc - nl, &reply->counts);
			}
		}
		const struct itr_tracker_config *cfg = itr_tracker_get_config(st->tracker);
		struct itr_netmap *map = itr_netmap_current();
		struct itr_rank_policy policy = cfg->policy;
		policy.gateway_salt = itr_rank_swarm_salt(ann->info_hash);
		/* each candidate's PID once: for the AS's view and the ranking */
		const struct itr_pid *pids[2 * CANDIDATES_MAX];
		for (size_t i = 0; i < nc; i++)
			pids[i] =
			    map ? itr_netmap_lookup(map, cands[i].family, cands[i].addr) : NULL;
		const struct itr_pid *own =
		    map ? itr_netmap_lookup(map, ann->peer.family, ann->peer.addr) : NULL;
		if (cfg->price && map && own) {
			struct itr_price_as_view view;
			itr_redis_draw_view(pids, nl, nc - nl, !j->seed, own->asn, j->seed,
			                    &reply->counts, &view);
			itr_price_policy_from_view(cfg->price, map, own->asn, &view, &policy);
		}
		reply->npeers =
		    itr_rank_known(map, &policy, &ann->peer, cands, pids, nc, want, peers);
		itr_netmap_unref(map);
	}
	itr_rc_replies_free(replies, j->n);
}

static int redis_announce(void *impl, const struct itr_backend_request *req,
                          struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
                          size_t want)
{
	struct itr_redis_store *st = impl;
	struct announce_job j;
	job_prepare(st, &j, req, reply, want);
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
	job_finish(st, &j, req, reply, peers, want, sent, err);
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
		job_prepare(st, &jobs[i], &reqs[i], &replies[i], want[i]);
		items[i] = (struct itr_rc_item){.slot = itr_rc_keyslot(jobs[i].ks, KEY_LEN),
		                                .cmds = jobs[i].cmds,
		                                .n = jobs[i].n,
		                                .replies = jobs[i].replies};
	}
	itr_rc_write_many(st->rc, items, n);
	for (size_t i = 0; i < n; i++)
		job_finish(st, &jobs[i], &reqs[i], &replies[i], peers[i], want[i], items[i].result,
		           items[i].err);
	free(jobs);
	free(items);
	return 0;
}

static int redis_scrape(void *impl, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                        struct itr_swarm_counts *counts, char *failure, size_t failurelen)
{
	struct itr_redis_store *st = impl;
	atomic_fetch_add(&st->scrapes, 1);
	char now_text[24];
	snprintf(now_text, sizeof(now_text), "%lld", (long long)time(NULL));
	for (size_t i = 0; i < n; i++) {
		char ks[KEY_LEN + 1], kl[KEY_LEN + 1], kd[KEY_LEN + 1], err[256];
		swarm_key(ks, hashes[i], 's');
		swarm_key(kl, hashes[i], 'l');
		swarm_key(kd, hashes[i], 'd');
		struct itr_rc_cmd cmds[3];
		cmd(&cmds[0], 4, S("ZCOUNT"), S(ks), S(now_text), S("+inf"));
		cmd(&cmds[1], 4, S("ZCOUNT"), S(kl), S(now_text), S("+inf"));
		cmd(&cmds[2], 2, S("GET"), S(kd));
		void *replies[3];
		if (itr_rc_pipeline(st->rc, itr_rc_keyslot(ks, KEY_LEN), cmds, 3, replies, err,
		                    sizeof(err)) < 0) {
			atomic_fetch_add(&st->failures, 1);
			snprintf(failure, failurelen, "tracker store unavailable, try again later");
			return -1;
		}
		counts[i].complete = (uint32_t)reply_int(replies[0]);
		counts[i].incomplete = (uint32_t)reply_int(replies[1]);
		counts[i].downloaded = (uint32_t)reply_int(replies[2]);
		itr_rc_replies_free(replies, 3);
	}
	return 0;
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
	st->cache = calloc(CACHE_SLOTS, sizeof(*st->cache));
	if (!st->cache) {
		snprintf(err, errlen, "out of memory");
		itr_rc_free(st->rc);
		itr_source_ledger_free(st->ledger);
		free(st);
		return NULL;
	}
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		pthread_mutex_init(&st->cache[i].lock, NULL);
	st->tracker = tracker;
	st->backend = (struct itr_announce_backend){
	    .ops = &redis_ops,
	    .impl = st,
	    .threads = 48,      /* each announce waits for a round trip */
	    .batch_threads = 4, /* announce_many overlaps a batch's round trips */
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
		        "%llu cache hits\n",
		        (unsigned long long)atomic_load(&st->announces),
		        (unsigned long long)rs.batched, (unsigned long long)rs.batches,
		        (unsigned long long)atomic_load(&st->cache_hits));
	itr_rc_free(st->rc);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		pthread_mutex_destroy(&st->cache[i].lock);
		free(st->cache[i].leechers);
		free(st->cache[i].seeds);
	}
	free(st->cache);
	itr_source_ledger_free(st->ledger);
	free(st);
}
