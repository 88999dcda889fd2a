/* udp_tracker.c - BEP 15 over UDP.
 *
 * Anti-spoofing and amplification: an announce or scrape is served only
 * with a connection ID that proves the source received our connect answer
 * (a keyed MAC over its address and time slot, compared in constant
 * time). A connect answer is exactly as long as the request; anything we
 * cannot parse is dropped; an error goes out only if it is no longer than
 * the datagram that caused it.
 */
#include "udp_tracker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sock_diag.h> /* SK_MEMINFO_DROPS */

#include "announce_backend.h"
#include "byte_order.h"

#define MAX_SOCKETS   4
#define BATCH         32
#define DATAGRAM_MAX  2048
#define UDP_PEERS_MAX ((ITR_UDP_MAX_REPLY_V4 - 20) / 6) /* peers one answer holds at most */

enum itr_udp_parse_status itr_udp_parse(const uint8_t *pkt, size_t len, struct itr_udp_request *out,
                                        const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (len < 16)
		return ITR_UDP_DROP;
	memcpy(out->connection_id, pkt, 8);
	out->action = itr_be32_get(pkt + 8);
	out->transaction_id = itr_be32_get(pkt + 12);
	switch (out->action) {
	case ITR_UDP_CONNECT:
		if (itr_be64_get(pkt) != ITR_UDP_PROTOCOL_ID)
			return ITR_UDP_DROP;
		return ITR_UDP_PARSED; /* trailing bytes are tolerated */
	case ITR_UDP_ANNOUNCE:
		if (len < ITR_UDP_ANNOUNCE_LEN) {
			*why = "announce shorter than 98 bytes";
			return ITR_UDP_INVALID;
		}
		memcpy(out->info_hash, pkt + 16, 20);
		memcpy(out->peer_id, pkt + 36, 20);
		out->downloaded = itr_be64_get(pkt + 56);
		out->left = itr_be64_get(pkt + 64);
		out->uploaded = itr_be64_get(pkt + 72);
		out->event = itr_be32_get(pkt + 80);
		memcpy(out->ipv4, pkt + 84, 4);
		out->key = itr_be32_get(pkt + 88);
		out->num_want = (int32_t)itr_be32_get(pkt + 92);
		out->port = (uint16_t)(pkt[96] << 8 | pkt[97]);
		if (out->event > 3) {
			*why = "bad event";
			return ITR_UDP_INVALID;
		}
		if (out->port == 0) {
			*why = "bad port";
			return ITR_UDP_INVALID;
		}
		return ITR_UDP_PARSED;
	case ITR_UDP_SCRAPE:
		if (len < ITR_UDP_SCRAPE_MIN_LEN) {
			*why = "scrape without info_hash";
			return ITR_UDP_INVALID;
		}
		out->hashes = pkt + 16;
		out->nhashes = (len - 16) / 20;
		if (out->nhashes > ITR_UDP_MAX_SCRAPE)
			out->nhashes = ITR_UDP_MAX_SCRAPE;
		return ITR_UDP_PARSED;
	default:
		*why = "unknown action";
		return ITR_UDP_INVALID;
	}
}

size_t itr_udp_build_connect(uint8_t *out, size_t cap, uint32_t transaction_id,
                             const uint8_t connection_id[8])
{
	if (cap < 16)
		return 0;
	itr_be32_put(out, ITR_UDP_CONNECT);
	itr_be32_put(out + 4, transaction_id);
	memcpy(out + 8, connection_id, 8);
	return 16;
}

size_t itr_udp_build_announce(uint8_t *out, size_t cap, uint32_t transaction_id, uint32_t interval,
                              const struct itr_swarm_counts *counts,
                              const struct itr_ranked_peer *peers, size_t npeers, int family)
{
	size_t stride = family == 6 ? 18 : 6, alen = family == 6 ? 16 : 4;
	if (cap < 20)
		return 0;
	itr_be32_put(out, ITR_UDP_ANNOUNCE);
	itr_be32_put(out + 4, transaction_id);
	itr_be32_put(out + 8, interval);
	itr_be32_put(out + 12, counts->incomplete);
	itr_be32_put(out + 16, counts->complete);
	size_t len = 20;
	for (size_t i = 0; i < npeers && len + stride <= cap; i++) {
		if (peers[i].peer.family != family)
			continue;
		memcpy(out + len, peers[i].peer.addr, alen);
		out[len + alen] = (uint8_t)(peers[i].peer.port >> 8);
		out[len + alen + 1] = (uint8_t)peers[i].peer.port;
		len += stride;
	}
	return len;
}

size_t itr_udp_build_scrape_header(uint8_t *out, size_t cap, uint32_t transaction_id)
{
	if (cap < 8)
		return 0;
	itr_be32_put(out, ITR_UDP_SCRAPE);
	itr_be32_put(out + 4, transaction_id);
	return 8;
}

size_t itr_udp_build_error(uint8_t *out, size_t cap, uint32_t transaction_id, const char *msg)
{
	size_t mlen = strlen(msg);
	if (cap < 8 + mlen)
		return 0;
	itr_be32_put(out, ITR_UDP_ERROR);
	itr_be32_put(out + 4, transaction_id);
	memcpy(out + 8, msg, mlen);
	return 8 + mlen;
}

/* ---- connection IDs ------------------------------------------------------ */

void itr_udp_connid_init(struct itr_udp_connid *c)
{
	if (sodium_init() < 0)
		abort(); /* no randomness: nothing safe to do */
	randombytes_buf(c->key, sizeof(c->key));
}

/* Bound to the address only, not the port: clients such as libtorrent
 * cache one connection ID per tracker and use it from every local socket
 * (several listen ports or sessions), and spoofing protection only needs
 * proof that the source address receives our packets. */
static void connid_for_slot(const struct itr_udp_connid *c, const struct itr_peer_addr *src,
                            uint32_t slot, uint8_t out[8])
{
	uint8_t msg[4 + 1 + 16];
	itr_be32_put(msg, slot);
	msg[4] = src->family;
	memset(msg + 5, 0, 16);
	memcpy(msg + 5, src->addr, src->family == 6 ? 16 : 4);
	crypto_shorthash(out, msg, sizeof(msg), c->key);
}

void itr_udp_connid_make(const struct itr_udp_connid *c, const struct itr_peer_addr *src,
                         uint32_t now, uint8_t out[8])
{
	connid_for_slot(c, src, now / ITR_UDP_CONNID_SLOT, out);
}

bool itr_udp_connid_check(const struct itr_udp_connid *c, const struct itr_peer_addr *src,
                          uint32_t now, const uint8_t id[8])
{
	uint32_t slot = now / ITR_UDP_CONNID_SLOT;
	uint8_t expect[8];
	connid_for_slot(c, src, slot, expect);
	if (sodium_memcmp(expect, id, 8) == 0)
		return true;
	/* The previous slot only when the current one did not match: which
	 * slot an ID belongs to is no secret (its holder got it from us),
	 * and most announces carry a current ID, so most pay one MAC. */
	connid_for_slot(c, src, slot - 1, expect);
	return sodium_memcmp(expect, id, 8) == 0;
}

/* ---- request handling ---------------------------------------------------- */

static size_t error_reply(uint8_t *out, size_t cap, size_t request_len, uint32_t tid,
                          const char *msg)
{
	if (8 + strlen(msg) > request_len)
		return 0; /* never answer with more than was sent */
	return itr_udp_build_error(out, cap, tid, msg);
}

/* A backend's failure reason for an authenticated client, cut to the
 * request's length (never more out than in). */
static size_t failure_reply(uint8_t *out, size_t cap, size_t request_len, uint32_t tid,
                            const char *msg)
{
	char text[ITR_BACKEND_TEXT];
	size_t room = request_len > 8 ? request_len - 8 : 0;
	if (room == 0)
		return 0;
	snprintf(text, sizeof(text), "%.*s", (int)(room < sizeof(text) ? room : sizeof(text) - 1),
	         msg);
	return itr_udp_build_error(out, cap, tid, text);
}

/* An announce that passed every check, ready for the backend. */
struct pending_announce {
	struct itr_backend_request br;
	size_t want, limit, request_len;
	uint32_t tid;
	uint8_t family;
};

/* The backend request of an announce, or a refusal written to out (its
 * length in *len, false returned). */
static bool announce_prepare(struct itr_tracker *tr, const struct itr_peer_addr *src,
                             const struct itr_udp_request *req, size_t request_len, uint8_t *out,
                             size_t cap, struct pending_announce *pa, size_t *len)
{
	pa->br = (struct itr_backend_request){
	    .ann =
	        {
	            .downloaded = req->downloaded,
	            .left = req->left,
	            .uploaded = req->uploaded,
	            .event = (enum itr_event)req->event,
	            .numwant = req->num_want < 0 ? -1 : req->num_want,
	        },
	    .key = req->key,
	    .has_key = true,
	    .transport = ITR_TRANSPORT_UDP,
	};
	memcpy(pa->br.ann.info_hash, req->info_hash, ITR_INFO_HASH_LEN);
	memcpy(pa->br.peer_id, req->peer_id, sizeof(pa->br.peer_id));
	const char *refusal =
	    itr_tracker_udp_client(tr, src, req->ipv4, req->port, &pa->br.ann.peer);
	if (!refusal)
		refusal = itr_tracker_admit(tr, &pa->br.ann.peer);
	if (refusal) {
		itr_tracker_count_rejected(tr);
		itr_tracker_count_announce(tr, ITR_TRANSPORT_UDP, ITR_OUTCOME_REJECTED);
		*len = error_reply(out, cap, request_len, req->transaction_id, refusal);
		return false;
	}
	size_t stride = src->family == 6 ? 18 : 6;
	size_t limit = src->family == 6 ? ITR_UDP_MAX_REPLY_V6 : ITR_UDP_MAX_REPLY_V4;
	if (limit > cap)
		limit = cap;
	size_t room = limit < 20 ? 0 : (limit - 20) / stride;
	if (room > UDP_PEERS_MAX)
		room = UDP_PEERS_MAX;
	pa->want = itr_tracker_want(tr, &pa->br.ann, room);
	pa->limit = limit;
	pa->request_len = request_len;
	pa->tid = req->transaction_id;
	pa->family = src->family;
	return true;
}

/* The answer to a prepared announce from the backend's reply (rc: what
 * the backend returned). */
static size_t announce_finish(struct itr_tracker *tr, const struct pending_announce *pa, int rc,
                              const struct itr_backend_reply *reply,
                              const struct itr_ranked_peer *peers, uint8_t *out, size_t cap)
{
	if (rc < 0) {
		itr_tracker_count_announce(tr, ITR_TRANSPORT_UDP, ITR_OUTCOME_ERROR);
		return failure_reply(out, cap, pa->request_len, pa->tid, "out of memory");
	}
	if (reply->failure[0]) {
		itr_tracker_count_announce(tr, ITR_TRANSPORT_UDP, ITR_OUTCOME_ERROR);
		return failure_reply(out, cap, pa->request_len, pa->tid, reply->failure);
	}
	itr_tracker_count_announce(tr, ITR_TRANSPORT_UDP, ITR_OUTCOME_OK);
	return itr_udp_build_announce(out, pa->limit, pa->tid, reply->interval, &reply->counts,
	                              peers, reply->npeers, pa->family);
}

static size_t handle_announce(struct itr_tracker *tr, const struct itr_peer_addr *src,
                              const struct itr_udp_request *req, size_t request_len, uint8_t *out,
                              size_t cap)
{
	struct pending_announce pa;
	size_t len;
	if (!announce_prepare(tr, src, req, request_len, out, cap, &pa, &len))
		return len;
	/* on the stack: no allocation per announce (about 10 KiB) */
	struct itr_ranked_peer peers[UDP_PEERS_MAX];
	struct itr_backend_reply reply;
	int rc =
	    itr_backend_announce(itr_tracker_active_backend(tr), &pa.br, &reply, peers, pa.want);
	return announce_finish(tr, &pa, rc, &reply, peers, out, cap);
}

static size_t handle_scrape(struct itr_tracker *tr, const struct itr_udp_request *req,
                            size_t request_len, uint8_t *out, size_t cap)
{
	struct itr_announce_backend *be = itr_tracker_active_backend(tr);
	uint8_t hashes[ITR_UDP_MAX_SCRAPE][ITR_INFO_HASH_LEN];
	struct itr_swarm_counts counts[ITR_UDP_MAX_SCRAPE];
	size_t n = req->nhashes < ITR_UDP_MAX_SCRAPE ? req->nhashes : ITR_UDP_MAX_SCRAPE;
	if (be->max_scrape && n > be->max_scrape)
		n = be->max_scrape;
	char failure[ITR_BACKEND_TEXT];
	memcpy(hashes, req->hashes, n * ITR_INFO_HASH_LEN);
	if (itr_backend_scrape(be, (const uint8_t(*)[ITR_INFO_HASH_LEN])hashes, n, counts, failure,
	                       sizeof(failure)) < 0)
		return failure_reply(out, cap, request_len, req->transaction_id, failure);
	size_t len = itr_udp_build_scrape_header(out, cap, req->transaction_id);
	for (size_t i = 0; i < n && len + 12 <= cap; i++) {
		itr_be32_put(out + len, counts[i].complete);
		itr_be32_put(out + len + 4, counts[i].downloaded);
		itr_be32_put(out + len + 8, counts[i].incomplete);
		len += 12;
	}
	return len;
}

/* One datagram: its answer in out (the length), or, with defer, an
 * announce that passed every check left in *defer for the caller's batch
 * (*deferred set, 0 returned). */
static size_t handle_or_defer(struct itr_tracker *tr, const struct itr_udp_connid *cid,
                              const struct itr_peer_addr *src, const uint8_t *pkt, size_t len,
                              uint8_t *out, size_t cap, struct pending_announce *defer,
                              bool *deferred)
{
	struct itr_udp_request req;
	const char *why;
	enum itr_udp_parse_status st = itr_udp_parse(pkt, len, &req, &why);
	if (st == ITR_UDP_DROP)
		return 0;
	uint32_t now = itr_tracker_now(tr);
	if (st == ITR_UDP_PARSED && req.action == ITR_UDP_CONNECT) {
		uint8_t id[8];
		itr_udp_connid_make(cid, src, now, id);
		return itr_udp_build_connect(out, cap, req.transaction_id, id);
	}
	bool valid_id = itr_udp_connid_check(cid, src, now, req.connection_id);
	if (!valid_id || st == ITR_UDP_INVALID) {
		itr_tracker_count_rejected(tr);
		if (req.action == ITR_UDP_ANNOUNCE)
			itr_tracker_count_announce(tr, ITR_TRANSPORT_UDP, ITR_OUTCOME_REJECTED);
		return error_reply(out, cap, len, req.transaction_id,
		                   valid_id ? why : "bad connection id");
	}
	if (req.action == ITR_UDP_ANNOUNCE && defer) {
		size_t refused;
		if (!announce_prepare(tr, src, &req, len, out, cap, defer, &refused))
			return refused;
		*deferred = true;
		return 0;
	}
	if (req.action == ITR_UDP_ANNOUNCE)
		return handle_announce(tr, src, &req, len, out, cap);
	return handle_scrape(tr, &req, len, out, cap);
}

size_t itr_udp_handle(struct itr_tracker *tr, const struct itr_udp_connid *cid,
                      const struct itr_peer_addr *src, const uint8_t *pkt, size_t len, uint8_t *out,
                      size_t cap)
{
	return handle_or_defer(tr, cid, src, pkt, len, out, cap, NULL, NULL);
}

/* ---- server -------------------------------------------------------------- */

/* One thread with its own socket per address, all bound to the same port
 * with SO_REUSEPORT: the kernel spreads datagrams over the workers by a
 * hash of the source address and port, so a client stays with one worker
 * and the workers share nothing but the (sharded) store and the
 * connection-id key.
 *
 * A backend that waits on the network (announce_backend.h: threads > 0,
 * the proxy) gets at least that many workers on one shared socket per
 * address (dup'ed), each taking one datagram at a time: whichever worker
 * is free takes the next request, so a slow upstream exchange holds up
 * only its own. */
/* A worker's batch of announces for the backend's announce_many. */
struct many_scratch {
	struct pending_announce pend[BATCH];
	int at[BATCH]; /* the datagram each came in */
	struct itr_backend_request reqs[BATCH];
	struct itr_backend_reply replies[BATCH];
	struct itr_ranked_peer *peers[BATCH];
	size_t want[BATCH];
	struct itr_ranked_peer peer_buf[BATCH][UDP_PEERS_MAX];
};

struct udp_worker {
	struct itr_udp_tracker *u;
	struct many_scratch *many; /* NULL: one announce at a time */
	int fds[MAX_SOCKETS];
	int nfds;
	pthread_t thread;
	bool started;
	uint8_t in[BATCH][DATAGRAM_MAX];
	uint8_t out[BATCH][DATAGRAM_MAX];
};

struct itr_udp_tracker {
	struct itr_tracker *tr;
	struct itr_udp_connid cid;
	struct udp_worker *workers;
	unsigned nworkers;
	unsigned batch; /* datagrams a worker takes at once */
	bool shared;    /* the workers share one socket per address */
	int wake_fd;    /* written once at stop; never read, so it wakes every worker */
	uint16_t port;
	atomic_bool stop;
	atomic_uint_fast64_t received, answered, dropped;
};

static int udp_bind_opt(const char *what, const char *addr, uint16_t port, bool reuseport,
                        uint16_t *bound, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sslen = sizeof(*sin6);
	} else {
		snprintf(err, errlen, "%s: '%s' is not an IP address", what, addr);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: socket: %s", what, strerror(errno));
		return -1;
	}
	int one = 1;
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "%s: SO_REUSEPORT: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	int buf = 4 << 20; /* room for bursts; the kernel caps it at rmem_max */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		snprintf(err, errlen, "%s: bind %s port %u: %s", what, addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	sslen = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sslen);
	*bound = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

static void serve_socket(struct udp_worker *w, int fd)
{
	struct itr_udp_tracker *u = w->u;
	uint8_t(*in)[DATAGRAM_MAX] = w->in;
	uint8_t(*out)[DATAGRAM_MAX] = w->out;
	unsigned batch = u->batch;
	struct sockaddr_storage from[BATCH];
	struct iovec in_iov[BATCH], out_iov[BATCH];
	struct mmsghdr in_msgs[BATCH], out_msgs[BATCH];

	for (;;) {
		for (unsigned i = 0; i < batch; i++) {
			in_iov[i] = (struct iovec){.iov_base = in[i], .iov_len = DATAGRAM_MAX};
			in_msgs[i] = (struct mmsghdr){0};
			in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
			in_msgs[i].msg_hdr.msg_iovlen = 1;
			in_msgs[i].msg_hdr.msg_name = &from[i];
			in_msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		/* on a shared socket another worker may have taken it: EAGAIN */
		int n = recvmmsg(fd, in_msgs, batch, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		atomic_fetch_add_explicit(&u->received, (uint64_t)n, memory_order_relaxed);
		int nout = 0;
		uint64_t dropped = 0;
		size_t lens[BATCH];
		int np = 0; /* announces kept for the backend's batch */
		for (int i = 0; i < n; i++) {
			struct itr_peer_addr src;
			lens[i] = 0;
			if (itr_peer_addr_from_sockaddr((struct sockaddr *)&from[i], &src) < 0)
				continue;
			bool deferred = false;
			lens[i] = handle_or_defer(u->tr, &u->cid, &src, in[i], in_msgs[i].msg_len,
			                          out[i], DATAGRAM_MAX,
			                          w->many ? &w->many->pend[np] : NULL, &deferred);
			if (deferred)
				w->many->at[np++] = i;
		}
		if (np) {
			struct many_scratch *m = w->many;
			for (int k = 0; k < np; k++) {
				m->reqs[k] = m->pend[k].br;
				m->want[k] = m->pend[k].want;
				m->peers[k] = m->peer_buf[k];
			}
			const struct itr_announce_backend *be = itr_tracker_active_backend(u->tr);
			int rc = be->ops->announce_many(be->impl, m->reqs, m->replies, m->peers,
			                                m->want, (size_t)np);
			for (int k = 0; k < np; k++)
				lens[m->at[k]] =
				    announce_finish(u->tr, &m->pend[k], rc, &m->replies[k],
				                    m->peers[k], out[m->at[k]], DATAGRAM_MAX);
		}
		for (int i = 0; i < n; i++) {
			if (lens[i] == 0) {
				dropped++;
				continue;
			}
			out_iov[nout] = (struct iovec){.iov_base = out[i], .iov_len = lens[i]};
			out_msgs[nout] = (struct mmsghdr){0};
			out_msgs[nout].msg_hdr.msg_iov = &out_iov[nout];
			out_msgs[nout].msg_hdr.msg_iovlen = 1;
			out_msgs[nout].msg_hdr.msg_name = &from[i];
			out_msgs[nout].msg_hdr.msg_namelen = in_msgs[i].msg_hdr.msg_namelen;
			nout++;
		}
		for (int sent = 0; sent < nout;) {
			int r = sendmmsg(fd, out_msgs + sent, (unsigned)(nout - sent), 0);
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				/* a full send buffer or an unreachable peer: the
				 * client retries (BEP 15 timeouts), drop the rest */
				dropped += (uint64_t)(nout - sent);
				break;
			}
			atomic_fetch_add_explicit(&u->answered, (uint64_t)r, memory_order_relaxed);
			sent += r;
		}
		if (dropped)
			atomic_fetch_add_explicit(&u->dropped, dropped, memory_order_relaxed);
		if ((unsigned)n < batch)
			return;
	}
}

/* Workers on a shared socket wait in epoll with EPOLLEXCLUSIVE: a datagram
 * wakes one idle worker, not all of them. poll() woke every worker (48
 * with the Redis store) for each datagram, and the losers' EAGAIN round
 * cost more CPU than the announce on two cores. */
static int exclusive_epoll(const struct udp_worker *w, int wake_fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	for (int i = 0; i < w->nfds; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
		                         .data.u32 = (uint32_t)i};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->fds[i], &ev) < 0)
			goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)w->nfds};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev) < 0)
		goto fail;
	return ep;
fail:
	close(ep);
	return -1;
}

static void *udp_main(void *arg)
{
	struct udp_worker *w = arg;
	struct itr_udp_tracker *u = w->u;
	int ep = u->shared ? exclusive_epoll(w, u->wake_fd) : -1;
	struct pollfd pfd[MAX_SOCKETS + 1];
	for (int i = 0; i < w->nfds; i++)
		pfd[i] = (struct pollfd){.fd = w->fds[i], .events = POLLIN};
	pfd[w->nfds] = (struct pollfd){.fd = u->wake_fd, .events = POLLIN};
	while (!atomic_load(&u->stop)) {
		if (ep >= 0) {
			struct epoll_event evs[MAX_SOCKETS + 1];
			int r = epoll_wait(ep, evs, MAX_SOCKETS + 1, -1);
			if (r < 0 && errno != EINTR) {
				fprintf(stderr, "itracker: udp tracker: epoll: %s\n",
				        strerror(errno));
				break;
			}
			for (int i = 0; i < r; i++)
				if (evs[i].data.u32 < (uint32_t)w->nfds)
					serve_socket(w, w->fds[evs[i].data.u32]);
			continue;
		}
		int r = poll(pfd, (nfds_t)w->nfds + 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "itracker: udp tracker: poll: %s\n", strerror(errno));
			break;
		}
		for (int i = 0; i < w->nfds; i++)
			if (pfd[i].revents & POLLIN)
				serve_socket(w, w->fds[i]);
	}
	if (ep >= 0)
		close(ep);
	return NULL;
}

/* Joins the started workers (stop must be set and wake_fd written). */
static void close_all(struct itr_udp_tracker *u)
{
	for (unsigned k = 0; u->workers && k < u->nworkers; k++) {
		struct udp_worker *w = &u->workers[k];
		if (w->started)
			pthread_join(w->thread, NULL);
		for (int i = 0; i < w->nfds; i++)
			close(w->fds[i]);
		free(w->many);
	}
	free(u->workers);
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	free(u);
}

static void wake_all(struct itr_udp_tracker *u)
{
	atomic_store(&u->stop, true);
	uint64_t one = 1;
	if (u->wake_fd >= 0 && write(u->wake_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "itracker: udp tracker: wake: %s\n", strerror(errno));
}

unsigned itr_udp_default_workers(void)
{
	cpu_set_t set;
	int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	return cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;
}

struct itr_udp_tracker *itr_udp_tracker_start_workers(struct itr_tracker *tr, const char *addrs,
                                                      uint16_t port, unsigned workers, char *err,
                                                      size_t errlen)
{
	if (workers == 0 || workers > ITR_UDP_MAX_WORKERS) {
		snprintf(err, errlen, "udp tracker: workers must be 1..%d", ITR_UDP_MAX_WORKERS);
		return NULL;
	}
	struct itr_udp_tracker *u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->tr = tr;
	u->wake_fd = -1;
	itr_udp_connid_init(&u->cid);
	const struct itr_announce_backend *be = itr_tracker_active_backend(tr);
	unsigned backend_threads = be->threads;
	bool shared = backend_threads > 0;
	/* a backend that takes a batch: a few workers, each with a batch of
	 * datagrams (what queued while they waited on the last one) */
	bool many = shared && be->ops->announce_many && be->batch_threads;
	if (many)
		backend_threads = be->batch_threads;
	if (workers < backend_threads)
		workers =
		    backend_threads < ITR_UDP_MAX_WORKERS ? backend_threads : ITR_UDP_MAX_WORKERS;
	u->batch = shared && !many ? 1 : BATCH;
	u->shared = shared;
	/* calloc: the batch buffers are 128 KiB a worker, touched as used */
	u->workers = calloc(workers, sizeof(*u->workers));
	u->nworkers = workers;
	bool scratch_ok = true;
	for (unsigned k = 0; many && u->workers && k < workers; k++)
		scratch_ok &= (u->workers[k].many = malloc(sizeof(struct many_scratch))) != NULL;
	char *list = strdup(addrs ? addrs : "0.0.0.0,::");
	if (!list || !u->workers || !scratch_ok) {
		snprintf(err, errlen, "out of memory");
		free(list);
		close_all(u);
		return NULL;
	}
	bool reuse = workers > 1 && !shared;
	char *save = NULL;
	int naddrs = 0;
	for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
		if (naddrs == MAX_SOCKETS) {
			snprintf(err, errlen, "udp tracker: at most %d addresses", MAX_SOCKETS);
			goto fail;
		}
		/* the first socket of the first address may pick the port */
		for (unsigned k = 0; k < workers; k++) {
			uint16_t bound = u->port;
			int fd = shared && k > 0
			             ? dup(u->workers[0].fds[naddrs])
			             : udp_bind_opt("udp tracker", a, naddrs || k ? u->port : port,
			                            reuse, &bound, err, errlen);
			if (fd < 0) {
				if (shared && k > 0)
					snprintf(err, errlen, "udp tracker: dup: %s",
					         strerror(errno));
				goto fail;
			}
			u->workers[k].fds[u->workers[k].nfds++] = fd;
			u->port = bound;
		}
		naddrs++;
	}
	if (naddrs == 0) {
		snprintf(err, errlen, "udp tracker: no address to listen on");
		goto fail;
	}
	u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->wake_fd < 0) {
		snprintf(err, errlen, "udp tracker: eventfd: %s", strerror(errno));
		goto fail;
	}
	for (unsigned k = 0; k < workers; k++) {
		struct udp_worker *w = &u->workers[k];
		w->u = u;
		int rc = pthread_create(&w->thread, NULL, udp_main, w);
		if (rc) {
			snprintf(err, errlen, "udp tracker: thread: %s", strerror(rc));
			wake_all(u);
			goto fail;
		}
		w->started = true;
	}
	free(list);
	return u;
fail:
	free(list);
	close_all(u);
	return NULL;
}

struct itr_udp_tracker *itr_udp_tracker_start(struct itr_tracker *tr, const char *addrs,
                                              uint16_t port, char *err, size_t errlen)
{
	return itr_udp_tracker_start_workers(tr, addrs, port, 1, err, errlen);
}

unsigned itr_udp_tracker_workers(const struct itr_udp_tracker *u)
{
	return u->nworkers;
}

uint16_t itr_udp_tracker_port(const struct itr_udp_tracker *u)
{
	return u->port;
}

void itr_udp_tracker_stats(const struct itr_udp_tracker *u, struct itr_udp_stats *st)
{
	st->received = atomic_load(&u->received);
	st->answered = atomic_load(&u->answered);
	st->dropped = atomic_load(&u->dropped);
	st->socket_dropped = 0;
	/* shared sockets sit in every worker's list: count them once */
	for (unsigned w = 0; w < (u->shared ? 1 : u->nworkers); w++)
		for (int i = 0; i < u->workers[w].nfds; i++) {
			uint32_t mem[SK_MEMINFO_VARS];
			socklen_t len = sizeof(mem);
			if (getsockopt(u->workers[w].fds[i], SOL_SOCKET, SO_MEMINFO, mem, &len) ==
			        0 &&
			    len > SK_MEMINFO_DROPS * sizeof(uint32_t))
				st->socket_dropped += mem[SK_MEMINFO_DROPS];
		}
}

void itr_udp_tracker_stop(struct itr_udp_tracker *u)
{
	if (!u)
		return;
	wake_all(u);
	close_all(u);
}
