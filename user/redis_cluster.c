/* redis_cluster.c - Redis Cluster slot routing over hiredis (see
 * redis_cluster.h). The slot map is a 16384-byte table of node indexes
 * behind a read-write lock; connections are per thread, found through a
 * pthread key and all kept on one list so itr_rc_free can close them.
 */
#include "redis_cluster.h"

#include <errno.h>
#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NODES      64
#define NO_NODE        255
#define REFRESH_GAP_MS 100 /* a failing cluster is asked for its map this often at most */

struct node {
	char host[64];
	uint16_t port;
};

struct conn {
	struct node node;
	redisContext *ctx;
};

struct thread_conns {
	struct conn conns[MAX_NODES];
	unsigned n;
	struct thread_conns *next;
};

struct itr_rc {
	unsigned connect_ms, command_ms;
	struct node seeds[16];
	unsigned nseeds;

	pthread_rwlock_t lock; /* nodes, slot_node */
	struct node nodes[MAX_NODES];
	unsigned nnodes;
	uint8_t slot_node[ITR_RC_SLOTS];
	pthread_mutex_t refresh_lock;
	uint64_t last_refresh_ms;

	pthread_key_t key;
	pthread_mutex_t threads_lock;
	struct thread_conns *threads;

	atomic_uint_fast64_t commands, redirects, refreshes, failures;
};

/* ---- key slots ------------------------------------------------------------ */

uint16_t itr_rc_crc16(const void *buf, size_t len)
{
	/* CRC16/XMODEM: polynomial 0x1021, initial 0, no reflection */
	const uint8_t *p = buf;
	uint16_t crc = 0;
	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

uint16_t itr_rc_keyslot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);
	if (open) {
		size_t rest = len - (size_t)(open - key) - 1;
		const char *close = memchr(open + 1, '}', rest);
		if (close && close > open + 1)
			return itr_rc_crc16(open + 1, (size_t)(close - open - 1)) % ITR_RC_SLOTS;
	}
	return itr_rc_crc16(key, len) % ITR_RC_SLOTS;
}

/* ---- connections ----------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval tv_of(unsigned ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
}

static redisContext *connect_node(struct itr_rc *rc, const struct node *n)
{
	redisContext *c = redisConnectWithTimeout(n->host, n->port, tv_of(rc->connect_ms));
	if (!c)
		return NULL;
	if (c->err || redisSetTimeout(c, tv_of(rc->command_ms)) != REDIS_OK) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static struct thread_conns *my_conns(struct itr_rc *rc)
{
	struct thread_conns *tc = pthread_getspecific(rc->key);
	if (tc)
		return tc;
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	pthread_mutex_lock(&rc->threads_lock);
	tc->next = rc->threads;
	rc->threads = tc;
	pthread_mutex_unlock(&rc->threads_lock);
	pthread_setspecific(rc->key, tc);
	return tc;
}

static bool same_node(const struct node *a, const struct node *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* This thread's connection to n (made or remade as needed), or NULL. */
static struct conn *conn_to(struct itr_rc *rc, const struct node *n)
{
	struct thread_conns *tc = my_conns(rc);
	if (!tc)
		return NULL;
	struct conn *c = NULL;
	for (unsigned i = 0; i < tc->n && !c; i++)
		if (same_node(&tc->conns[i].node, n))
			c = &tc->conns[i];
	if (!c) {
		if (tc->n == MAX_NODES) { /* recycle the oldest slot */
			redisFree(tc->conns[0].ctx);
			memmove(&tc->conns[0], &tc->conns[1],
			        (MAX_NODES - 1) * sizeof(tc->conns[0]));
			tc->n--;
		}
		c = &tc->conns[tc->n++];
		c->node = *n;
		c->ctx = NULL;
	}
	if (c->ctx && c->ctx->err) {
		redisFree(c->ctx);
		c->ctx = NULL;
	}
	if (!c->ctx)
		c->ctx = connect_node(rc, n);
	return c->ctx ? c : NULL;
}

static void conn_drop(struct conn *c)
{
	redisFree(c->ctx);
	c->ctx = NULL;
}

/* ---- the slot map -------------------------------------------------------- */

static int parse_node(const char *text, struct node *out)
{
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text || (size_t)(colon - text) >= sizeof(out->host))
		return -1;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -1;
	size_t hl = (size_t)(colon - text);
	/* [v6]:port */
	if (text[0] == '[' && hl >= 2 && text[hl - 1] == ']') {
		memcpy(out->host, text + 1, hl - 2);
		out->host[hl - 2] = '\0';
	} else {
		memcpy(out->host, text, hl);
		out->host[hl] = '\0';
	}
	out->port = (uint16_t)port;
	return 0;
}

/* Ask one node for CLUSTER SLOTS and install the answer. 0 or -1. */
static int refresh_from(struct itr_rc *rc, const struct node *from)
{
	redisContext *c = connect_node(rc, from);
	if (!c)
		return -1;
	redisReply *r = redisCommand(c, "CLUSTER SLOTS");
	int rc_ok = -1;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		goto out;
	struct node nodes[MAX_NODES];
	unsigned nnodes = 0;
	uint8_t *map = malloc(ITR_RC_SLOTS);
	if (!map)
		goto out;
	memset(map, NO_NODE, ITR_RC_SLOTS);
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *range = r->element[i];
		if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
		    range->element[0]->type != REDIS_REPLY_INTEGER ||
		    range->element[1]->type != REDIS_REPLY_INTEGER ||
		    range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2)
			continue;
		redisReply *master = range->element[2];
		struct node n = {0};
		/* an empty or "?" endpoint means: the address we reached it at */
		if (master->element[0]->type == REDIS_REPLY_STRING && master->element[0]->len > 0 &&
		    master->element[0]->len < sizeof(n.host) &&
		    strcmp(master->element[0]->str, "?"))
			snprintf(n.host, sizeof(n.host), "%s", master->element[0]->str);
		else
			snprintf(n.host, sizeof(n.host), "%s", from->host);
		if (master->element[1]->type != REDIS_REPLY_INTEGER)
			continue;
		n.port = (uint16_t)master->element[1]->integer;
		unsigned idx = 0;
		while (idx < nnodes && !same_node(&nodes[idx], &n))
			idx++;
		if (idx == nnodes) {
			if (nnodes == MAX_NODES)
				continue;
			nodes[nnodes++] = n;
		}
		long long lo = range->element[0]->integer, hi = range->element[1]->integer;
		for (long long s = lo; s <= hi && s < ITR_RC_SLOTS; s++)
			if (s >= 0)
				map[s] = (uint8_t)idx;
	}
	if (nnodes) {
		pthread_rwlock_wrlock(&rc->lock);
		memcpy(rc->nodes, nodes, nnodes * sizeof(nodes[0]));
		rc->nnodes = nnodes;
		memcpy(rc->slot_node, map, ITR_RC_SLOTS);
		pthread_rwlock_unlock(&rc->lock);
		rc_ok = 0;
	}
	free(map);
out:
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return rc_ok;
}

/* Read the slot map again from any known node or seed (at most every
 * REFRESH_GAP_MS unless forced at start). 0 if a map was read. */
static int refresh(struct itr_rc *rc, bool force)
{
	pthread_mutex_lock(&rc->refresh_lock);
	uint64_t now = now_ms();
	if (!force && now - rc->last_refresh_ms < REFRESH_GAP_MS) {
		pthread_mutex_unlock(&rc->refresh_lock);
		return -1;
	}
	rc->last_refresh_ms = now;
	atomic_fetch_add(&rc->refreshes, 1);
	struct node cands[MAX_NODES + 16];
	unsigned n = 0;
	pthread_rwlock_rdlock(&rc->lock);
	for (unsigned i = 0; i < rc->nnodes; i++)
		cands[n++] = rc->nodes[i];
	pthread_rwlock_unlock(&rc->lock);
	for (unsigned i = 0; i < rc->nseeds; i++)
		cands[n++] = rc->seeds[i];
	int ok = -1;
	for (unsigned i = 0; i < n && ok < 0; i++)
		ok = refresh_from(rc, &cands[i]);
	pthread_mutex_unlock(&rc->refresh_lock);
	return ok;
}

static bool owner_of(struct itr_rc *rc, uint16_t slot, struct node *out)
{
	pthread_rwlock_rdlock(&rc->lock);
	uint8_t idx = rc->slot_node[slot];
	bool ok = idx != NO_NODE && idx < rc->nnodes;
	if (ok)
		*out = rc->nodes[idx];
	pthread_rwlock_unlock(&rc->lock);
	return ok;
}

/* ---- pipelines ------------------------------------------------------------- */

void itr_rc_replies_free(void **replies, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (replies[i])
			freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": where to go, 1 MOVED, 2 ASK, 0 neither. */
static int redirection(const redisReply *r, struct node *to)
{
	if (!r || r->type != REDIS_REPLY_ERROR)
		return 0;
	int kind = strncmp(r->str, "MOVED ", 6) == 0 ? 1 : strncmp(r->str, "ASK ", 4) == 0 ? 2 : 0;
	if (!kind)
		return 0;
	const char *sp = strrchr(r->str, ' ');
	return sp && parse_node(sp + 1, to) == 0 ? kind : 0;
}

int itr_rc_pipeline(struct itr_rc *rc, uint16_t slot, const struct itr_rc_cmd *cmds, size_t n,
                    void **replies, char *err, size_t errlen)
{
	struct node target;
	bool have_target = owner_of(rc, slot, &target);
	bool asking = false;
	memset(replies, 0, n * sizeof(*replies));
	snprintf(err, errlen, "no node serves slot %u", slot);
	for (int attempt = 0; attempt < 3; attempt++) {
		if (!have_target) {
			refresh(rc, false);
			if (!(have_target = owner_of(rc, slot, &target)))
				continue;
		}
		struct conn *c = conn_to(rc, &target);
		if (!c) {
			snprintf(err, errlen, "cannot connect to %s:%u", target.host, target.port);
			have_target = false;
			refresh(rc, false);
			continue;
		}
		if (asking)
			redisAppendCommand(c->ctx, "ASKING");
		for (size_t i = 0; i < n; i++)
			redisAppendCommandArgv(c->ctx, cmds[i].argc, (const char **)cmds[i].argv,
			                       cmds[i].argvlen);
		atomic_fetch_add(&rc->commands, n);
		bool broken = false;
		if (asking) {
			void *ask_reply = NULL;
			broken = redisGetReply(c->ctx, &ask_reply) != REDIS_OK;
			if (ask_reply)
				freeReplyObject(ask_reply);
		}
		for (size_t i = 0; i < n && !broken; i++)
			broken = redisGetReply(c->ctx, &replies[i]) != REDIS_OK;
		if (broken) {
			snprintf(err, errlen, "%s:%u: %s", target.host, target.port,
			         c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
			conn_drop(c);
			itr_rc_replies_free(replies, n);
			have_target = false;
			asking = false;
			refresh(rc, false);
			continue;
		}
		struct node to;
		int kind = 0;
		for (size_t i = 0; i < n && !kind; i++)
			kind = redirection(replies[i], &to);
		if (!kind)
			return 0;
		atomic_fetch_add(&rc->redirects, 1);
		itr_rc_replies_free(replies, n);
		snprintf(err, errlen, "slot %u keeps moving", slot);
		target = to;
		asking = kind == 2;
		if (kind == 1) /* the slot has a new owner: learn the whole new map */
			refresh(rc, true);
	}
	atomic_fetch_add(&rc->failures, 1);
	return -1;
}

/* ---- lifecycle ------------------------------------------------------------ */

struct itr_rc *itr_rc_new(const struct itr_rc_config *cfg, char *err, size_t errlen)
{
	struct itr_rc *rc = calloc(1, sizeof(*rc));
	if (!rc) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rc->connect_ms = cfg->connect_ms ? cfg->connect_ms : 300;
	rc->command_ms = cfg->command_ms ? cfg->command_ms : 1000;
	const char *p = cfg->seeds ? cfg->seeds : "";
	while (*p) {
		size_t len = strcspn(p, ",");
		char one[96];
		if (len == 0 || len >= sizeof(one) || rc->nseeds == 16 ||
		    (memcpy(one, p, len), one[len] = '\0',
		     parse_node(one, &rc->seeds[rc->nseeds])) < 0) {
			snprintf(err, errlen, "bad Redis node '%.*s' (HOST:PORT, at most 16)",
			         (int)(len < 80 ? len : 80), p);
			free(rc);
			return NULL;
		}
		rc->nseeds++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!rc->nseeds) {
		snprintf(err, errlen, "no Redis node given");
		free(rc);
		return NULL;
	}
	memset(rc->slot_node, NO_NODE, sizeof(rc->slot_node));
	pthread_rwlock_init(&rc->lock, NULL);
	pthread_mutex_init(&rc->refresh_lock, NULL);
	pthread_mutex_init(&rc->threads_lock, NULL);
	if (pthread_key_create(&rc->key, NULL) != 0) {
		snprintf(err, errlen, "out of thread keys");
		free(rc);
		return NULL;
	}
	refresh(rc, true);
	return rc;
}

void itr_rc_free(struct itr_rc *rc)
{
	if (!rc)
		return;
	struct thread_conns *tc = rc->threads;
	while (tc) {
		struct thread_conns *next = tc->next;
		for (unsigned i = 0; i < tc->n; i++)
			redisFree(tc->conns[i].ctx);
		free(tc);
		tc = next;
	}
	pthread_key_delete(rc->key);
	pthread_rwlock_destroy(&rc->lock);
	pthread_mutex_destroy(&rc->refresh_lock);
	pthread_mutex_destroy(&rc->threads_lock);
	free(rc);
}

void itr_rc_stats(struct itr_rc *rc, struct itr_rc_stats *out)
{
	out->commands = atomic_load(&rc->commands);
	out->redirects = atomic_load(&rc->redirects);
	out->refreshes = atomic_load(&rc->refreshes);
	out->failures = atomic_load(&rc->failures);
	pthread_rwlock_rdlock(&rc->lock);
	out->nodes = rc->nnodes;
	pthread_rwlock_unlock(&rc->lock);
}
