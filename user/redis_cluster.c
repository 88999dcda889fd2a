/* redis_cluster.c - Redis Cluster slot routing over hiredis (see
 * redis_cluster.h). The slot map is a 16384-byte table of node indexes
 * behind a read-write lock; connections are per thread, found through a
 * pthread key and all kept on one list so itr_rc_free can close them.
 * Group-committed writes (itr_rc_write) go through one queue and one
 * connection per master instead.
 */
#include "redis_cluster.h"
#include "clock.h"

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
#define MAX_REPLICAS   2
#define REFRESH_GAP_MS 25 /* a failing cluster is asked for its map this often at most */

struct node {
	char host[64];
	uint16_t port;
	uint8_t replicas; /* as CLUSTER SLOTS listed them (not part of the identity) */
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

/* One caller's commands in a master's write queue. The leader of a batch
 * fills replies and result; state is what the caller waits on. */
struct write_req {
	const struct itr_rc_cmd *cmds;
	size_t n;
	void **replies;
	int result;          /* leader's: 1 answered, -1 send again alone */
	int state;           /* under the queue lock: 0 queued, else result */
	bool lead;           /* under the queue lock: the last leader handed over to it */
	pthread_cond_t wake; /* one per caller: only the callers concerned wake */
	struct write_req *next;
};

struct master_queue {
	struct node node;
	pthread_mutex_t lock;
	bool busy; /* a leader is sending a batch, or was just named */
	struct write_req *head, *tail;
	redisContext *ctx; /* the leader's (one leader at a time) */
};

struct itr_rc {
	unsigned connect_ms, command_ms, replica_wait_ms;
	struct node seeds[16];
	unsigned nseeds;

	pthread_rwlock_t lock; /* nodes, slot_node */
	struct node nodes[MAX_NODES];
	unsigned nnodes;
	/* each master's first replicas, asked first for the slot map when the
	 * master fails: the one that takes over knows it first */
	struct node replicas[MAX_NODES][MAX_REPLICAS];
	uint8_t slot_node[ITR_RC_SLOTS];
	pthread_mutex_t refresh_lock;
	uint64_t last_refresh_ms;

	pthread_key_t key;
	pthread_mutex_t threads_lock;
	struct thread_conns *threads;

	/* write queues, one per master ever seen; never freed before the end */
	pthread_mutex_t queues_lock;
	struct master_queue *queues[MAX_NODES];
	atomic_uint nqueues;

	atomic_uint_fast64_t commands, redirects, refreshes, failures, batches, batched;
	atomic_uint_fast64_t read_batches, read_batched;
};

/* ---- key slots ------------------------------------------------------------ */

/* CRC16/XMODEM (polynomial 0x1021, initial 0, no reflection), a byte at a
 * time from a table: every announce hashes its 40-character hash tag, and
 * bit by bit that was 2.5 % of the store's CPU time under load. */
static uint16_t crc16_table[256];
static pthread_once_t crc16_once = PTHREAD_ONCE_INIT;

static void crc16_fill(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint16_t crc = (uint16_t)(i << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
		crc16_table[i] = crc;
	}
}

uint16_t itr_rc_crc16(const void *buf, size_t len)
{
	pthread_once(&crc16_once, crc16_fill);
	const uint8_t *p = buf;
	uint16_t crc = 0;
	for (size_t i = 0; i < len; i++)
		crc = (uint16_t)(crc << 8) ^ crc16_table[(crc >> 8) ^ p[i]];
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
	struct node nodes[MAX_NODES], replicas[MAX_NODES][MAX_REPLICAS];
	memset(replicas, 0, sizeof(replicas));
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
		n.replicas = (uint8_t)(range->elements - 3 < 255 ? range->elements - 3 : 255);
		unsigned idx = 0;
		while (idx < nnodes && !same_node(&nodes[idx], &n))
			idx++;
		if (idx == nnodes) {
			if (nnodes == MAX_NODES)
				continue;
			nodes[nnodes++] = n;
		}
		for (size_t k = 3; k < range->elements && k < 3 + MAX_REPLICAS; k++) {
			redisReply *rep = range->element[k];
			struct node *r = &replicas[idx][k - 3];
			if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
			    rep->element[1]->type != REDIS_REPLY_INTEGER)
				continue;
			if (rep->element[0]->type == REDIS_REPLY_STRING &&
			    rep->element[0]->len > 0 && rep->element[0]->len < sizeof(r->host) &&
			    strcmp(rep->element[0]->str, "?"))
				snprintf(r->host, sizeof(r->host), "%s", rep->element[0]->str);
			else
				snprintf(r->host, sizeof(r->host), "%s", from->host);
			r->port = (uint16_t)rep->element[1]->integer;
		}
		long long lo = range->element[0]->integer, hi = range->element[1]->integer;
		for (long long s = lo; s <= hi && s < ITR_RC_SLOTS; s++)
			if (s >= 0)
				map[s] = (uint8_t)idx;
	}
	if (nnodes) {
		pthread_rwlock_wrlock(&rc->lock);
		memcpy(rc->nodes, nodes, nnodes * sizeof(nodes[0]));
		memcpy(rc->replicas, replicas, nnodes * sizeof(replicas[0]));
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
 * REFRESH_GAP_MS unless forced). After a failure of master failed (or
 * NULL), its replicas are asked first: the one that takes over answers
 * with the new map as soon as it has won, before the other nodes hear of
 * it. 0 if a map was read. */
static int refresh(struct itr_rc *rc, bool force, const struct node *failed)
{
	pthread_mutex_lock(&rc->refresh_lock);
	uint64_t now = (uint64_t)itr_clock_ms();
	if (!force && now - rc->last_refresh_ms < REFRESH_GAP_MS) {
		pthread_mutex_unlock(&rc->refresh_lock);
		return -1;
	}
	rc->last_refresh_ms = now;
	atomic_fetch_add(&rc->refreshes, 1);
	struct node cands[MAX_REPLICAS + MAX_NODES + 16];
	unsigned n = 0;
	pthread_rwlock_rdlock(&rc->lock);
	for (unsigned i = 0; failed && i < rc->nnodes; i++)
		for (unsigned k = 0; same_node(&rc->nodes[i], failed) && k < MAX_REPLICAS; k++)
			if (rc->replicas[i][k].port)
				cands[n++] = rc->replicas[i][k];
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
			refresh(rc, false, NULL);
			if (!(have_target = owner_of(rc, slot, &target)))
				continue;
		}
		struct conn *c = conn_to(rc, &target);
		if (!c) {
			snprintf(err, errlen, "cannot connect to %s:%u", target.host, target.port);
			have_target = false;
			refresh(rc, false, &target);
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
			refresh(rc, false, &target);
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
			refresh(rc, true, NULL);
	}
	atomic_fetch_add(&rc->failures, 1);
	return -1;
}

/* ---- group-committed writes ---------------------------------------------- */

static struct master_queue *queue_for(struct itr_rc *rc, const struct node *n)
{
	unsigned count = atomic_load(&rc->nqueues);
	for (unsigned i = 0; i < count; i++)
		if (same_node(&rc->queues[i]->node, n))
			return rc->queues[i];
	pthread_mutex_lock(&rc->queues_lock);
	struct master_queue *q = NULL;
	count = atomic_load(&rc->nqueues);
	for (unsigned i = 0; i < count && !q; i++)
		if (same_node(&rc->queues[i]->node, n))
			q = rc->queues[i];
	if (!q && count < MAX_NODES && (q = calloc(1, sizeof(*q)))) {
		q->node = *n;
		pthread_mutex_init(&q->lock, NULL);
		rc->queues[count] = q;
		atomic_store(&rc->nqueues, count + 1);
	}
	pthread_mutex_unlock(&rc->queues_lock);
	return q;
}

/* The leader's round trip: every queued request's commands, one WAIT, the
 * replies handed out. Sets each request's result. */
static void flush_batch(struct itr_rc *rc, struct master_queue *q, bool wait_replica,
                        struct write_req *batch)
{
	if (q->ctx && q->ctx->err) {
		redisFree(q->ctx);
		q->ctx = NULL;
	}
	if (!q->ctx)
		q->ctx = connect_node(rc, &q->node);
	if (!q->ctx) {
		for (struct write_req *r = batch; r; r = r->next)
			r->result = -1;
		refresh(rc, false, &q->node);
		return;
	}
	uint64_t nreq = 0, ncmd = 0;
	for (struct write_req *r = batch; r; r = r->next, nreq++)
		for (size_t i = 0; i < r->n; i++, ncmd++)
			redisAppendCommandArgv(q->ctx, r->cmds[i].argc,
			                       (const char **)r->cmds[i].argv, r->cmds[i].argvlen);
	char wait_ms[16];
	snprintf(wait_ms, sizeof(wait_ms), "%u", rc->replica_wait_ms);
	if (wait_replica) {
		const char *argv[] = {"WAIT", "1", wait_ms};
		size_t argvlen[] = {4, 1, strlen(wait_ms)};
		redisAppendCommandArgv(q->ctx, 3, argv, argvlen);
		ncmd++;
	}
	atomic_fetch_add(&rc->commands, ncmd);
	atomic_fetch_add(&rc->batches, 1);
	atomic_fetch_add(&rc->batched, nreq);
	bool broken = false, moved = false;
	for (struct write_req *r = batch; r; r = r->next) {
		r->result = 1;
		int kind = 0;
		struct node to;
		for (size_t i = 0; i < r->n && !broken; i++) {
			broken = redisGetReply(q->ctx, &r->replies[i]) != REDIS_OK;
			if (!broken && !kind)
				kind = redirection(r->replies[i], &to);
		}
		if (kind) { /* sent again alone, where the redirection points */
			atomic_fetch_add(&rc->redirects, 1);
			moved |= kind == 1;
			r->result = -1;
			itr_rc_replies_free(r->replies, r->n);
		}
	}
	if (!broken && wait_replica) {
		void *ack = NULL;
		broken = redisGetReply(q->ctx, &ack) != REDIS_OK;
		if (ack)
			freeReplyObject(ack);
	}
	if (broken) { /* whatever was answered may not be on a replica */
		for (struct write_req *r = batch; r; r = r->next) {
			r->result = -1;
			itr_rc_replies_free(r->replies, r->n);
		}
		redisFree(q->ctx);
		q->ctx = NULL;
		refresh(rc, false, &q->node);
	} else if (moved) {
		refresh(rc, true, NULL);
	}
}

#define WRITE_MAX_CMDS 32

int itr_rc_write(struct itr_rc *rc, uint16_t slot, const struct itr_rc_cmd *cmds, size_t n,
                 void **replies, char *err, size_t errlen)
{
	if (n == 0 || n >= WRITE_MAX_CMDS) {
		snprintf(err, errlen, "%zu commands in one write (1 to %d)", n, WRITE_MAX_CMDS - 1);
		return -1;
	}
	memset(replies, 0, n * sizeof(*replies));
	struct node target;
	struct master_queue *q = owner_of(rc, slot, &target) ? queue_for(rc, &target) : NULL;
	if (q) {
		struct write_req req = {.cmds = cmds, .n = n, .replies = replies};
		pthread_cond_init(&req.wake, NULL);
		pthread_mutex_lock(&q->lock);
		if (q->tail)
			q->tail->next = &req;
		else
			q->head = &req;
		q->tail = &req;
		if (q->busy)
			while (req.state == 0 && !req.lead)
				pthread_cond_wait(&req.wake, &q->lock);
		if (req.state == 0) { /* lead: take everything queued, ours included */
			struct write_req *batch = q->head;
			q->head = q->tail = NULL;
			q->busy = true;
			pthread_mutex_unlock(&q->lock);
			flush_batch(rc, q, target.replicas > 0, batch);
			pthread_mutex_lock(&q->lock);
			/* the callers' requests live on their stacks: read next
			 * before waking one */
			for (struct write_req *r = batch, *next; r; r = next) {
				next = r->next;
				r->state = r->result;
				if (r != &req)
					pthread_cond_signal(&r->wake);
			}
			/* the first caller that came meanwhile leads the next batch */
			if (q->head) {
				q->head->lead = true;
				pthread_cond_signal(&q->head->wake);
			} else {
				q->busy = false;
			}
		}
		pthread_mutex_unlock(&q->lock);
		pthread_cond_destroy(&req.wake);
		if (req.state > 0)
			return 0;
	}
	/* alone: the usual pipeline with redirections and refreshes, and a WAIT */
	struct itr_rc_cmd alone[WRITE_MAX_CMDS];
	void *alone_replies[WRITE_MAX_CMDS];
	char wait_ms[16];
	snprintf(wait_ms, sizeof(wait_ms), "%u", rc->replica_wait_ms);
	memcpy(alone, cmds, n * sizeof(*cmds));
	alone[n] = (struct itr_rc_cmd){
	    .argc = 3, .argv = {"WAIT", "1", wait_ms}, .argvlen = {4, 1, strlen(wait_ms)}};
	if (itr_rc_pipeline(rc, slot, alone, n + 1, alone_replies, err, errlen) < 0)
		return -1;
	memcpy(replies, alone_replies, n * sizeof(*replies));
	itr_rc_replies_free(&alone_replies[n], 1);
	return 0;
}

#define MANY_MAX 64

/* itr_rc_write_many (replicated: a WAIT ends each master's pipeline, and
 * an item left over goes alone through itr_rc_write) and itr_rc_read_many
 * (no WAIT; alone through itr_rc_pipeline). */
static void send_many(struct itr_rc *rc, struct itr_rc_item *items, size_t n, bool replicated)
{
	for (; n > MANY_MAX; items += MANY_MAX, n -= MANY_MAX)
		send_many(rc, items, MANY_MAX, replicated);
	/* the masters concerned and this thread's connection to each */
	struct node nodes[MAX_NODES];
	struct conn *conns[MAX_NODES];
	uint8_t node_of[MANY_MAX];
	unsigned nn = 0;
	for (size_t i = 0; i < n; i++) {
		struct itr_rc_item *it = &items[i];
		memset(it->replies, 0, it->n * sizeof(*it->replies));
		it->result = it->n ? 1 : 0; /* 1: to send */
		node_of[i] = NO_NODE;
		struct node target;
		if (it->n == 0 || it->n >= WRITE_MAX_CMDS || !owner_of(rc, it->slot, &target))
			continue;
		unsigned k = 0;
		while (k < nn && !same_node(&nodes[k], &target))
			k++;
		if (k == nn) {
			nodes[nn] = target;
			conns[nn++] = NULL;
		}
		node_of[i] = (uint8_t)k;
	}
	char wait_ms[16];
	snprintf(wait_ms, sizeof(wait_ms), "%u", rc->replica_wait_ms);
	const char *wait_argv[] = {"WAIT", "1", wait_ms};
	size_t wait_len[] = {4, 1, strlen(wait_ms)};
	for (unsigned k = 0; k < nn; k++) { /* every pipeline out first */
		if (!(conns[k] = conn_to(rc, &nodes[k])))
			continue;
		uint64_t nreq = 0, ncmd = 0;
		for (size_t i = 0; i < n; i++) {
			if (node_of[i] != k)
				continue;
			for (size_t c = 0; c < items[i].n; c++, ncmd++)
				redisAppendCommandArgv(conns[k]->ctx, items[i].cmds[c].argc,
				                       (const char **)items[i].cmds[c].argv,
				                       items[i].cmds[c].argvlen);
			nreq++;
		}
		if (replicated && nodes[k].replicas) {
			redisAppendCommandArgv(conns[k]->ctx, 3, wait_argv, wait_len);
			ncmd++;
		}
		atomic_fetch_add(&rc->commands, ncmd);
		atomic_fetch_add(replicated ? &rc->batches : &rc->read_batches, 1);
		atomic_fetch_add(replicated ? &rc->batched : &rc->read_batched, nreq);
	}
	bool moved = false;
	const struct node *failed = NULL;
	for (unsigned k = 0; k < nn; k++) { /* then every answer */
		if (!conns[k]) {
			failed = &nodes[k];
			continue;
		}
		bool broken = false;
		for (size_t i = 0; i < n; i++) {
			struct itr_rc_item *it = &items[i];
			if (node_of[i] != k)
				continue;
			int kind = 0;
			struct node to;
			for (size_t c = 0; c < it->n && !broken; c++) {
				broken = redisGetReply(conns[k]->ctx, &it->replies[c]) != REDIS_OK;
				if (!broken && !kind)
					kind = redirection(it->replies[c], &to);
			}
			if (kind) {
				atomic_fetch_add(&rc->redirects, 1);
				moved |= kind == 1;
				itr_rc_replies_free(it->replies, it->n);
			} else {
				it->result = 0;
			}
		}
		if (!broken && replicated && nodes[k].replicas) {
			void *ack = NULL;
			broken = redisGetReply(conns[k]->ctx, &ack) != REDIS_OK;
			if (ack)
				freeReplyObject(ack);
		}
		if (broken) { /* what was answered may not be on a replica */
			for (size_t i = 0; i < n; i++)
				if (node_of[i] == k) {
					items[i].result = 1;
					itr_rc_replies_free(items[i].replies, items[i].n);
				}
			conn_drop(conns[k]);
			failed = &nodes[k];
		}
	}
	if (moved)
		refresh(rc, true, NULL);
	else if (failed)
		refresh(rc, false, failed);
	for (size_t i = 0; i < n; i++) { /* whatever is left goes alone */
		struct itr_rc_item *it = &items[i];
		if (it->result <= 0)
			continue;
		if (replicated)
			it->result = itr_rc_write(rc, it->slot, it->cmds, it->n, it->replies,
			                          it->err, sizeof(it->err));
		else
			it->result = itr_rc_pipeline(rc, it->slot, it->cmds, it->n, it->replies,
			                             it->err, sizeof(it->err));
	}
}

void itr_rc_write_many(struct itr_rc *rc, struct itr_rc_item *items, size_t n)
{
	send_many(rc, items, n, true);
}

void itr_rc_read_many(struct itr_rc *rc, struct itr_rc_item *items, size_t n)
{
	send_many(rc, items, n, false);
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
	rc->replica_wait_ms = cfg->replica_wait_ms ? cfg->replica_wait_ms : 50;
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
	pthread_mutex_init(&rc->queues_lock, NULL);
	if (pthread_key_create(&rc->key, NULL) != 0) {
		snprintf(err, errlen, "out of thread keys");
		free(rc);
		return NULL;
	}
	refresh(rc, true, NULL);
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
	for (unsigned i = 0; i < atomic_load(&rc->nqueues); i++) {
		struct master_queue *q = rc->queues[i];
		if (q->ctx)
			redisFree(q->ctx);
		pthread_mutex_destroy(&q->lock);
		free(q);
	}
	pthread_mutex_destroy(&rc->queues_lock);
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
	out->batches = atomic_load(&rc->batches);
	out->batched = atomic_load(&rc->batched);
	out->read_batches = atomic_load(&rc->read_batches);
	out->read_batched = atomic_load(&rc->read_batched);
	pthread_rwlock_rdlock(&rc->lock);
	out->nodes = rc->nnodes;
	pthread_rwlock_unlock(&rc->lock);
}
