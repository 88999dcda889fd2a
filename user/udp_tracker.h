/* udp_tracker.h - the UDP tracker (BEP 15): pure packet parsing/building,
 * keyed expiring connection IDs, the request handler (answered by the
 * tracker's announce backend), and server threads (SO_REUSEPORT workers)
 * with IPv4 and IPv6 sockets batching with recvmmsg/sendmmsg.
 */
#ifndef ITR_UDP_TRACKER_H
#define ITR_UDP_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "tracker.h"

#define ITR_UDP_PROTOCOL_ID    0x41727101980ull
#define ITR_UDP_CONNECT_LEN    16
#define ITR_UDP_ANNOUNCE_LEN   98
#define ITR_UDP_SCRAPE_MIN_LEN (16 + 20)
/* A scrape answers at most this many hashes (BEP 15: about 74 fit in one
 * packet); the answer (8 + 12 n) is always smaller than the request. */
#define ITR_UDP_MAX_SCRAPE 74
/* Answers are kept to one unfragmented datagram: 1472 bytes over IPv4
 * (1500-byte MTU), 1232 over IPv6 (the 1280-byte minimum MTU), which
 * limits announce answers to 242 IPv4 / 67 IPv6 peers. */
#define ITR_UDP_MAX_REPLY_V4 1472
#define ITR_UDP_MAX_REPLY_V6 1232
/* Connection IDs are valid for the time slot they were made in and the
 * next one: at least one minute (what BEP 15 lets clients assume), at most
 * two (what it lets servers accept). */
#define ITR_UDP_CONNID_SLOT 60

enum itr_udp_action {
	ITR_UDP_CONNECT = 0,
	ITR_UDP_ANNOUNCE = 1,
	ITR_UDP_SCRAPE = 2,
	ITR_UDP_ERROR = 3,
};

struct itr_udp_request {
	uint8_t connection_id[8]; /* as on the wire */
	uint32_t action;
	uint32_t transaction_id;
	/* announce */
	uint8_t info_hash[20];
	uint8_t peer_id[20];
	uint64_t downloaded;
	uint64_t left;
	uint64_t uploaded;
	uint32_t event;
	uint8_t ipv4[4];
	uint32_t key;
	int32_t num_want;
	uint16_t port;
	/* scrape: hashes point into the packet */
	const uint8_t *hashes;
	size_t nhashes;
};

enum itr_udp_parse_status {
	ITR_UDP_PARSED = 0,
	ITR_UDP_DROP = -1,   /* not worth an answer: too short, wrong magic */
	ITR_UDP_INVALID = -2 /* answer with an error (if the connection id is valid) */
};

/* Parse a request. For ITR_UDP_INVALID, why says what was wrong and the
 * connection and transaction ids are filled. BEP 41 options after byte 98
 * of an announce are accepted and not interpreted. */
enum itr_udp_parse_status itr_udp_parse(const uint8_t *pkt, size_t len, struct itr_udp_request *out,
                                        const char **why);

/* Builders return the length written (0 if cap is too small). */
size_t itr_udp_build_connect(uint8_t *out, size_t cap, uint32_t transaction_id,
                             const uint8_t connection_id[8]);
size_t itr_udp_build_announce(uint8_t *out, size_t cap, uint32_t transaction_id, uint32_t interval,
                              const struct itr_swarm_counts *counts,
                              const struct itr_ranked_peer *peers, size_t npeers, int family);
size_t itr_udp_build_scrape_header(uint8_t *out, size_t cap, uint32_t transaction_id);
size_t itr_udp_build_error(uint8_t *out, size_t cap, uint32_t transaction_id, const char *msg);

/* Keyed connection IDs: SipHash-2-4 (crypto_shorthash) of the client's
 * address (not port) and time slot under a random per-process key. */
struct itr_udp_connid {
	uint8_t key[crypto_shorthash_KEYBYTES];
};
void itr_udp_connid_init(struct itr_udp_connid *c);
void itr_udp_connid_make(const struct itr_udp_connid *c, const struct itr_peer_addr *src,
                         uint32_t now, uint8_t out[8]);
/* Constant-time check against the current and the previous slot. */
bool itr_udp_connid_check(const struct itr_udp_connid *c, const struct itr_peer_addr *src,
                          uint32_t now, const uint8_t id[8]);

/* Handle one datagram from src (the real source: address and port),
 * answered by tr's active backend (itr_tracker_use_backend); the
 * answer goes to out (room for cap bytes). Returns the answer's length,
 * 0 to drop. Never answers an unauthenticated source with more bytes than
 * it sent. */
size_t itr_udp_handle(struct itr_tracker *tr, const struct itr_udp_connid *cid,
                      const struct itr_peer_addr *src, const uint8_t *pkt, size_t len, uint8_t *out,
                      size_t cap);

struct itr_udp_tracker;

/* Serve on every address in addrs (comma separated, e.g. "0.0.0.0,::" or
 * "127.0.0.1,::1"; NULL: "0.0.0.0,::"), all on one port (0: the first
 * socket picks a free one and the others use it), with as many worker
 * threads as tr's active backend asks for (one if it never waits). NULL
 * with err on error. */
struct itr_udp_tracker *itr_udp_tracker_start(struct itr_tracker *tr, const char *addrs,
                                              uint16_t port, char *err, size_t errlen);
/* The same with several worker threads, each with its own sockets bound to
 * the same port with SO_REUSEPORT (workers > 1): the kernel spreads clients
 * over them by source address and port. 1..ITR_UDP_MAX_WORKERS. A backend
 * that waits on the network (the proxy) gets at least its `threads`
 * workers, sharing one socket per address. */
#define ITR_UDP_MAX_WORKERS 256
/* One worker per CPU this process may run on (taskset, cpusets), 1..64. */
unsigned itr_udp_default_workers(void);
struct itr_udp_tracker *itr_udp_tracker_start_workers(struct itr_tracker *tr, const char *addrs,
                                                      uint16_t port, unsigned workers, char *err,
                                                      size_t errlen);
uint16_t itr_udp_tracker_port(const struct itr_udp_tracker *u);
unsigned itr_udp_tracker_workers(const struct itr_udp_tracker *u);

struct itr_udp_stats {
	uint64_t received; /* datagrams the workers read */
	uint64_t answered; /* answers sent */
	uint64_t dropped;  /* read but not answered: unparsable, or the send failed */
	/* Dropped by the kernel before a worker could read them, because a
	 * socket's receive buffer was full (SO_MEMINFO's drops, all sockets). */
	uint64_t socket_dropped;
};
void itr_udp_tracker_stats(const struct itr_udp_tracker *u, struct itr_udp_stats *st);
/* Stops the thread, closes the sockets and frees u. */
void itr_udp_tracker_stop(struct itr_udp_tracker *u);

#endif
