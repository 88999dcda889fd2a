/* announce_backend.h - what the tracker's two front ends (tracker_http.c
 * for BEP 3, udp_tracker.c for BEP 15) ask of whatever answers announces
 * and scrapes: the local in-memory swarm store (tracker.c), the pTracker
 * proxy (proxy.c), later a shared store.
 *
 * The front ends own the wire: parsing, the client's address and whether
 * it may name another one, numwant limits, encoding, per-transport counts.
 * A backend only sees a decoded request and fills a reply and a
 * caller-provided peer array, so the hot path allocates nothing on either
 * side. Calls are synchronous; a backend that waits on the network (the
 * proxy, a remote store) says how many front-end threads it wants in
 * `threads`, and the front ends then serve that many requests at once.
 */
#ifndef ITR_ANNOUNCE_BACKEND_H
#define ITR_ANNOUNCE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rank.h"
#include "swarm.h"
#include "tracker.h"

struct itr_backend_request {
	struct itr_announce ann; /* ann.peer: where the client accepts connections */
	uint8_t peer_id[20];
	/* The client's key (BEP 7): as text from HTTP, as a number from UDP;
	 * key_text NULL when the client sent none or sent it as a number. */
	const char *key_text;
	uint32_t key;
	bool has_key;
	enum itr_transport transport;
};

#define ITR_BACKEND_TEXT 256

struct itr_backend_reply {
	char failure[ITR_BACKEND_TEXT]; /* non-empty: answer with this failure reason */
	char warning[ITR_BACKEND_TEXT]; /* non-empty: a warning message beside the peers */
	uint32_t interval;
	uint32_t min_interval; /* 0: none to announce */
	struct itr_swarm_counts counts;
	bool has_downloaded; /* counts.downloaded is known */
	size_t npeers;       /* ranked peers written */
};

struct itr_backend_stats {
	uint64_t announces;
	uint64_t scrapes;
	uint64_t failures; /* requests answered with reply->failure or a scrape failure */
	size_t torrents;   /* swarms held here (0 where another server holds them) */
	size_t peers;
};

struct itr_announce_backend_ops {
	/* Store the announce and write up to want ranked peers (the front end
	 * has applied numwant's default and limits). 0 with the reply filled
	 * (check reply->failure), -1 out of memory. Thread safe. */
	int (*announce)(void *impl, const struct itr_backend_request *req,
	                struct itr_backend_reply *reply, struct itr_ranked_peer *peers,
	                size_t want);
	/* counts[i] for hashes[i] (zero for an unknown torrent). 0, or -1 with
	 * failure filled. Thread safe. */
	/* Optional: n announces at once, as n calls of announce would do
	 * (reply i and peers[i] for reqs[i]), for a front end that has
	 * several in hand (the UDP tracker's batch of datagrams). A backend
	 * that waits on the network overlaps them. 0, -1 out of memory. */
	int (*announce_many)(void *impl, const struct itr_backend_request *reqs,
	                     struct itr_backend_reply *replies, struct itr_ranked_peer **peers,
	                     const size_t *want, size_t n);
	int (*scrape)(void *impl, const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
	              struct itr_swarm_counts *counts, char *failure, size_t failurelen);
	void (*stats)(void *impl, struct itr_backend_stats *st);
};

struct itr_announce_backend {
	const struct itr_announce_backend_ops *ops;
	void *impl;
	/* 0: answers without waiting (one front-end thread is best); N: each
	 * request may wait on the network, so run N front-end threads. */
	unsigned threads;
	/* With announce_many: the UDP workers to run, each taking a batch of
	 * datagrams at a time (0: threads, one datagram at a time). Few, so
	 * that datagrams queue up meanwhile and make the next batch. */
	unsigned batch_threads;
	/* With announce_many and threads: the HTTP workers that may run
	 * announces at a time, each taking every announce queued meanwhile
	 * as one batch (0: one announce per worker, on all threads). */
	unsigned http_batch_runners;
	/* Hashes one scrape may ask for (the front ends cut longer requests). */
	size_t max_scrape;
};

static inline int itr_backend_announce(const struct itr_announce_backend *be,
                                       const struct itr_backend_request *req,
                                       struct itr_backend_reply *reply,
                                       struct itr_ranked_peer *peers, size_t want)
{
	return be->ops->announce(be->impl, req, reply, peers, want);
}

static inline int itr_backend_scrape(const struct itr_announce_backend *be,
                                     const uint8_t (*hashes)[ITR_INFO_HASH_LEN], size_t n,
                                     struct itr_swarm_counts *counts, char *failure,
                                     size_t failurelen)
{
	return be->ops->scrape(be->impl, hashes, n, counts, failure, failurelen);
}

static inline void itr_backend_stats(const struct itr_announce_backend *be,
                                     struct itr_backend_stats *st)
{
	be->ops->stats(be->impl, st);
}

/* Clear what every backend sets, without touching the text buffers' tails
 * (a reply is on the hot path). */
static inline void itr_backend_reply_init(struct itr_backend_reply *reply)
{
	reply->failure[0] = '\0';
	reply->warning[0] = '\0';
	reply->interval = 0;
	reply->min_interval = 0;
	reply->counts = (struct itr_swarm_counts){0};
	reply->has_downloaded = false;
	reply->npeers = 0;
}

#endif
