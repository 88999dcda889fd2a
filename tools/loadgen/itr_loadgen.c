/* itr_loadgen.c - announce load for a BitTorrent tracker (itrackerd or any
 * other), over UDP (BEP 15, pipelined, on one or more sockets) or HTTP
 * (BEP 3, a new connection per announce as clients do, or keep-alive),
 * bounded by time and count, to an IPv4 or IPv6 target.
 *
 * Peers are spread over the PIDs of maps/example.netmap (or, --outside,
 * over addresses no PID covers) and named with ip= / the BEP 15 IP field
 * (itrackerd uses them with --trusted-proxy --accept-ip-param; a tracker
 * that does not stores the source address). Every peer also has its own
 * port, so a tracker that ignores the names still stores one entry per
 * peer: both kinds do the same amount of storing. BEP 15 has no IPv6 IP
 * field: over IPv6 the source address is the peer.
 *
 *   itr_loadgen --mode udp|http --target HOST:PORT|[V6]:PORT [--torrents N]
 *               [--peers N] [--seconds S] [--count N] [--window N]
 *               [--numwant N] [--sockets N] [--sources N] [--keepalive]
 *               [--outside] [--v6-peers]
 *   itr_loadgen --hashes N      print the first N info_hashes in hex (for
 *                               a tracker's whitelist) and exit
 *
 * --sockets: UDP sockets (source ports), each with its own window, so a
 * server's SO_REUSEPORT workers all get load. --sources N (UDP to an IPv4
 * loopback target): socket k sends from 127.0.0.(1 + k % N), so the load
 * comes from N client addresses, as from N NATs or proxies; the server
 * must then trust them all to name their peers. --v6-peers: HTTP ip= names
 * IPv6 addresses (the example map's IPv6 prefixes).
 *
 * Prints one line: "mode M announces N seconds S rate R errors E lost L":
 * errors are error answers (UDP) or failed requests (HTTP); lost are UDP
 * requests without an answer after 0.5 s (dropped datagrams).
 */
#include "byte_order.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_WINDOW  1024
#define MAX_SOCKETS 64

struct opts {
	bool udp, keepalive, outside, v6_peers;
	struct sockaddr_storage target;
	socklen_t target_len;
	char host[80]; /* as the Host header spells it */
	unsigned torrents, peers, window, numwant, sockets, sources;
	double seconds;
	uint64_t count;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Torrent t's info_hash: a fixed tag and t, mixed so hashes spread. */
static void info_hash(unsigned t, uint8_t out[20])
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (t + 1);
	for (int i = 0; i < 20; i++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		out[i] = (uint8_t)(x >> 32);
	}
}

/* Peer i: an address in one of the example map's PIDs (or none) and a
 * port of its own; outside: 172.16.0.0/12, which no PID covers. */
static void peer_addr(const struct opts *o, unsigned i, uint8_t addr[4], uint16_t *port)
{
	static const uint8_t bases[7][3] = {{10, 10, 1},   {10, 10, 2}, {10, 10, 3}, {10, 20, 0},
	                                    {10, 20, 128}, {10, 30, 0}, {10, 99, 0}};
	unsigned pid = i % 7, n = i / 7;
	*port = (uint16_t)(1024 + i % 64000);
	if (o->outside) {
		addr[0] = 172;
		addr[1] = (uint8_t)(16 + (i >> 16) % 16);
		addr[2] = (uint8_t)(i >> 8);
		addr[3] = (uint8_t)i;
		return;
	}
	addr[0] = bases[pid][0];
	addr[1] = bases[pid][1];
	/* the /24 PIDs keep their third byte; the /16 and /17 ones use it */
	addr[2] = (uint8_t)(pid < 3 ? bases[pid][2] : bases[pid][2] + (n / 250) % 64);
	addr[3] = (uint8_t)(1 + n % 250);
}

/* The same peer as text for ip=; v6_peers: the example map's IPv6
 * prefixes (fd00:10:1::/48 ...) with the IPv4 address in the last bits. */
static void peer_text(const struct opts *o, unsigned i, char *out, size_t cap, uint16_t *port)
{
	uint8_t a4[4];
	peer_addr(o, i, a4, port);
	if (!o->v6_peers) {
		inet_ntop(AF_INET, a4, out, (socklen_t)cap);
		return;
	}
	uint8_t a6[16] = {0xfd, 0};
	if (o->outside) {
		a6[0] = 0xfc; /* fc00::/8: no PID */
	} else {
		a6[3] = (uint8_t)(a4[1] / 10 * 16);     /* 10.10 -> fd00:10, 10.20 -> fd00:20 */
		a6[4] = a4[1] == 20 ? a4[2] & 0x80 : 0; /* b-edge: fd00:20:8000::/33 */
		a6[5] = a4[1] == 10 ? a4[2] : 0;        /* a-metroN: fd00:10:N::/48 */
		if (a4[1] == 99)
			a6[0] = 0xfc;
	}
	memcpy(a6 + 12, a4, 4);
	inet_ntop(AF_INET6, a6, out, (socklen_t)cap);
}

static void usage(void)
{
	fprintf(stderr, "usage: itr_loadgen --mode udp|http --target HOST:PORT|[V6]:PORT "
	                "[--torrents N] [--peers N] [--seconds S] [--count N] [--window N] "
	                "[--numwant N] [--sockets N] [--sources N] [--keepalive] [--outside] "
	                "[--v6-peers]\n"
	                "       itr_loadgen --hashes N\n");
	exit(2);
}

/* ---- UDP ------------------------------------------------------------------ */

static int udp_connect_id(int fd, uint8_t id[8])
{
	uint8_t req[16], resp[64];
	itr_be32_put(req, 0x417);
	itr_be32_put(req + 4, 0x27101980);
	itr_be32_put(req + 8, 0);
	for (int attempt = 0; attempt < 5; attempt++) {
		uint32_t tid = 0xc0000000u | (uint32_t)attempt;
		itr_be32_put(req + 12, tid);
		send(fd, req, sizeof(req), 0);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		double until = now_s() + 1;
		while (now_s() < until && poll(&pfd, 1, 100) >= 0) {
			ssize_t n = recv(fd, resp, sizeof(resp), MSG_DONTWAIT);
			if (n >= 16 && itr_be32_get(resp) == 0 && itr_be32_get(resp + 4) == tid) {
				memcpy(id, resp + 8, 8);
				return 0;
			}
		}
	}
	return -1;
}

static void udp_announce(const struct opts *o, uint64_t seq, const uint8_t id[8], uint8_t pkt[98])
{
	unsigned peer = (unsigned)(seq % o->peers);
	uint8_t addr[4];
	uint16_t port;
	peer_addr(o, peer, addr, &port);
	memset(pkt, 0, 98);
	memcpy(pkt, id, 8);
	itr_be32_put(pkt + 8, 1);
	itr_be32_put(pkt + 12, (uint32_t)seq);
	info_hash(peer % o->torrents, pkt + 16);
	snprintf((char *)pkt + 36, 21, "-LG0001-%012u", peer);
	itr_be32_put(pkt + 68, peer % 4 == 0 ? 0 : 1000); /* left: a quarter seed */
	itr_be32_put(pkt + 80, seq < o->peers ? 2 : 0);   /* started, then periodic */
	if (o->target.ss_family == AF_INET)
		memcpy(pkt + 84, addr, 4);
	itr_be32_put(pkt + 88, peer);
	itr_be32_put(pkt + 92, o->numwant);
	pkt[96] = (uint8_t)(port >> 8);
	pkt[97] = (uint8_t)port;
}

struct udp_sock {
	int fd;
	uint8_t id[8];
	uint64_t sent, quota; /* --sources: this socket's own peers */
	uint64_t inflight;
	double last_progress;
};

static int run_udp(const struct opts *o, uint64_t *done, uint64_t *errors, uint64_t *lost)
{
	struct udp_sock socks[MAX_SOCKETS];
	struct pollfd pfd[MAX_SOCKETS];
	unsigned ns = o->sockets;
	unsigned window = o->window / ns ? o->window / ns : 1;
	double start = now_s(), deadline = start + o->seconds, id_at = start;
	for (unsigned k = 0; k < ns; k++) {
		int fd = socket(o->target.ss_family, SOCK_DGRAM, 0);
		int buf = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		if (o->sources > 1) {
			struct sockaddr_in from = {.sin_family = AF_INET};
			from.sin_addr.s_addr = htonl(0x7f000001u + k % o->sources);
			if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
				perror("bind");
				return -1;
			}
		}
		if (connect(fd, (struct sockaddr *)&o->target, o->target_len) < 0) {
			perror("connect");
			return -1;
		}
		if (udp_connect_id(fd, socks[k].id) < 0) {
			fprintf(stderr, "itr_loadgen: no connect answer from the tracker\n");
			return -1;
		}
		socks[k].fd = fd;
		socks[k].sent = 0;
		socks[k].quota = o->count / ns + (k < o->count % ns);
		socks[k].inflight = 0;
		socks[k].last_progress = start;
		pfd[k] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	uint64_t sent = 0;
	uint8_t pkt[98], resp[2048];
	for (;;) {
		double t = now_s();
		if (t >= deadline)
			break;
		if (t - id_at > 50) { /* connection ids live for a minute */
			for (unsigned k = 0; k < ns; k++)
				if (udp_connect_id(socks[k].fd, socks[k].id) < 0)
					return -1;
			id_at = t;
		}
		uint64_t inflight = 0;
		for (unsigned k = 0; k < ns; k++) {
			struct udp_sock *u = &socks[k];
			while (u->inflight < window && sent < o->count) {
				/* with --sources a peer always announces from the
				 * same address: socket k sends peers k, k + ns, ... */
				uint64_t seq = sent;
				if (o->sources > 1) {
					if (u->sent >= u->quota)
						break;
					seq = k + (uint64_t)ns * u->sent;
				}
				udp_announce(o, seq, u->id, pkt);
				if (send(u->fd, pkt, sizeof(pkt), MSG_DONTWAIT) < 0)
					break;
				sent++;
				u->sent++;
				u->inflight++;
			}
			inflight += u->inflight;
		}
		if (sent >= o->count && inflight == 0)
			break;
		poll(pfd, ns, 10);
		for (unsigned k = 0; k < ns; k++) {
			struct udp_sock *u = &socks[k];
			ssize_t n;
			while ((n = recv(u->fd, resp, sizeof(resp), MSG_DONTWAIT)) > 0) {
				if (n >= 8 && itr_be32_get(resp) == 1) {
					(*done)++;
				} else if (n >= 8 && itr_be32_get(resp) == 3) {
					(*errors)++;
				} else {
					continue;
				}
				if (u->inflight) /* answers to requests given up on do not count
				                    twice */
					u->inflight--;
				u->last_progress = now_s();
			}
			/* a lost datagram must not stall the window forever */
			if (u->inflight && now_s() - u->last_progress > 0.5) {
				*lost += u->inflight;
				u->inflight = 0;
				u->last_progress = now_s();
			}
		}
	}
	for (unsigned k = 0; k < ns; k++)
		close(socks[k].fd);
	return 0;
}

/* ---- HTTP ----------------------------------------------------------------- */

struct conn {
	int fd;
	char req[600];
	size_t reqlen, sent;
	char head[2048]; /* the response's head, as much as fits */
	size_t got;      /* bytes of the response so far */
	long body_at;    /* offset of the body; -1 until the head is complete */
	long body_len;   /* Content-Length; -1 unknown (read to the close) */
	bool server_closes;
	bool reused;  /* the request went out on a kept-alive connection */
	uint64_t seq; /* the announce this request carries */
};

static void url_escape(char *out, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		*out++ = '%';
		*out++ = hex[data[i] >> 4];
		*out++ = hex[data[i] & 15];
	}
	*out = '\0';
}

static void http_request(const struct opts *o, struct conn *c, uint64_t seq)
{
	unsigned peer = (unsigned)(seq % o->peers);
	uint8_t ih[20];
	uint16_t port;
	char ihx[61], ip[INET6_ADDRSTRLEN];
	peer_text(o, peer, ip, sizeof(ip), &port);
	info_hash(peer % o->torrents, ih);
	url_escape(ihx, ih, 20);
	int n = snprintf(c->req, sizeof(c->req),
	                 "GET /announce?info_hash=%s&peer_id=-LG0001-%012u&port=%u&uploaded=0"
	                 "&downloaded=0&left=%u&compact=1&numwant=%u%s&key=%x&ip=%s HTTP/1.%c\r\n"
	                 "Host: %s\r\n\r\n",
	                 ihx, peer, port, peer % 4 == 0 ? 0 : 1000, o->numwant,
	                 seq < o->peers ? "&event=started" : "", peer, ip, o->keepalive ? '1' : '0',
	                 o->host);
	c->reqlen = (size_t)n;
	c->sent = c->got = 0;
	c->body_at = c->body_len = -1;
	c->server_closes = !o->keepalive;
	c->reused = false;
	c->seq = seq;
}

static int http_open(const struct opts *o, struct conn *c, uint64_t seq, int ep)
{
	http_request(o, c, seq);
	c->fd = socket(o->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&o->target, o->target_len) < 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		return -1;
	}
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

/* Once the head is in: where the body starts, its length, and whether the
 * server keeps the connection. */
static void parse_head(struct conn *c)
{
	size_t have = c->got < sizeof(c->head) ? c->got : sizeof(c->head);
	for (size_t i = 0; i + 3 < have; i++) {
		if (memcmp(c->head + i, "\r\n\r\n", 4) != 0)
			continue;
		c->body_at = (long)(i + 4);
		for (size_t k = 0; k < i; k++) {
			if (c->head[k] != '\n')
				continue;
			const char *line = c->head + k + 1;
			if (strncasecmp(line, "content-length:", 15) == 0)
				c->body_len = strtol(line + 15, NULL, 10);
			else if (strncasecmp(line, "connection: close", 17) == 0)
				c->server_closes = true;
		}
		return;
	}
}

static int run_http(const struct opts *o, uint64_t *done, uint64_t *errors)
{
	int ep = epoll_create1(0);
	struct conn *conns = calloc(o->window, sizeof(*conns));
	uint64_t started = 0;
	double deadline = now_s() + o->seconds;
	unsigned open_conns = 0;
	for (unsigned i = 0; i < o->window && started < o->count; i++) {
		if (http_open(o, &conns[i], started++, ep) == 0)
			open_conns++;
		else
			(*errors)++;
	}
	struct epoll_event evs[256];
	while (open_conns && now_s() < deadline) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			bool finished = false, complete = false, closed = false;
			if (c->sent < c->reqlen && (evs[i].events & EPOLLOUT)) {
				ssize_t w = send(c->fd, c->req + c->sent, c->reqlen - c->sent,
				                 MSG_NOSIGNAL);
				if (w > 0) {
					c->sent += (size_t)w;
					if (c->sent == c->reqlen) {
						struct epoll_event ev = {.events = EPOLLIN,
						                         .data.ptr = c};
						epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					}
				} else if (errno != EAGAIN) {
					finished = true;
				}
			}
			if (!finished && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				char buf[8192];
				ssize_t r;
				while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
					if (c->got < sizeof(c->head)) {
						size_t keep = sizeof(c->head) - c->got;
						memcpy(c->head + c->got, buf,
						       keep < (size_t)r ? keep : (size_t)r);
					}
					c->got += (size_t)r;
					if (c->body_at < 0)
						parse_head(c);
					if (c->body_at >= 0 && c->body_len >= 0 &&
					    (long)c->got >= c->body_at + c->body_len) {
						complete = true;
						break;
					}
				}
				if (r == 0) {
					closed = true;
					complete = c->body_at >= 0;
				} else if (r < 0 && errno != EAGAIN) {
					closed = true;
				}
				finished = complete || closed;
			}
			if (!finished)
				continue;
			if (closed && c->reused && c->got == 0) {
				/* the server closed an idle kept-alive connection (or
				 * does not keep any, like opentracker): the same
				 * announce on a new one, not an error */
				close(c->fd);
				if (http_open(o, c, c->seq, ep) < 0) {
					(*errors)++;
					open_conns--;
				}
				continue;
			}
			bool ok = complete && c->got >= 12 && memcmp(c->head + 9, "200", 3) == 0;
			if (ok)
				(*done)++;
			else
				(*errors)++;
			bool more = started < o->count && now_s() < deadline;
			if (ok && more && !closed && !c->server_closes) {
				/* keep-alive: the next announce on the same connection */
				http_request(o, c, started++);
				c->reused = true;
				struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN,
				                         .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			close(c->fd);
			c->fd = -1;
			open_conns--;
			if (more) {
				if (http_open(o, c, started++, ep) == 0)
					open_conns++;
				else
					(*errors)++;
			}
		}
	}
	for (unsigned i = 0; i < o->window; i++)
		if (conns[i].fd > 0)
			close(conns[i].fd);
	free(conns);
	close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.torrents = 1000,
	                 .peers = 100000,
	                 .window = 64,
	                 .numwant = 50,
	                 .seconds = 5,
	                 .sockets = 1,
	                 .count = UINT64_MAX};
	const char *mode = NULL, *target = NULL;
	static const struct option lo[] = {
	    {"mode", 1, 0, 'm'},      {"target", 1, 0, 't'},
	    {"torrents", 1, 0, 'T'},  {"peers", 1, 0, 'p'},
	    {"seconds", 1, 0, 's'},   {"count", 1, 0, 'c'},
	    {"window", 1, 0, 'w'},    {"numwant", 1, 0, 'n'},
	    {"hashes", 1, 0, 'H'},    {"sockets", 1, 0, 'S'},
	    {"keepalive", 0, 0, 'k'}, {"outside", 0, 0, 'o'},
	    {"v6-peers", 0, 0, '6'},  {"sources", 1, 0, 'a'},
	    {"help", 0, 0, 'h'},      {0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'T':
			o.torrents = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o.peers = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.seconds = strtod(optarg, NULL);
			break;
		case 'c':
			o.count = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			o.window = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.numwant = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'S':
			o.sockets = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'a':
			o.sources = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			o.keepalive = true;
			break;
		case 'o':
			o.outside = true;
			break;
		case '6':
			o.v6_peers = true;
			break;
		case 'H': {
			unsigned n = (unsigned)strtoul(optarg, NULL, 10);
			for (unsigned t = 0; t < n; t++) {
				uint8_t ih[20];
				info_hash(t, ih);
				for (int i = 0; i < 20; i++)
					printf("%02x", ih[i]);
				printf("\n");
			}
			return 0;
		}
		default:
			usage();
		}
	}
	if (!mode || !target || (strcmp(mode, "udp") && strcmp(mode, "http")) || !o.torrents ||
	    !o.peers || !o.window || o.window > MAX_WINDOW || o.seconds <= 0 || !o.sockets ||
	    o.sockets > MAX_SOCKETS)
		usage();
	o.udp = strcmp(mode, "udp") == 0;
	const char *colon = strrchr(target, ':');
	if (!colon || (size_t)(colon - target) >= sizeof(o.host))
		usage();
	snprintf(o.host, sizeof(o.host), "%.*s", (int)(colon - target), target);
	uint16_t tport = (uint16_t)atoi(colon + 1);
	char addr[64];
	bool bracketed = o.host[0] == '[' && o.host[strlen(o.host) - 1] == ']';
	snprintf(addr, sizeof(addr), "%.*s", (int)strlen(o.host) - (bracketed ? 2 : 0),
	         o.host + (bracketed ? 1 : 0));
	memset(&o.target, 0, sizeof(o.target));
	struct sockaddr_in *sin = (struct sockaddr_in *)&o.target;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o.target;
	if (!bracketed && inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(tport);
		o.target_len = sizeof(*sin);
	} else if (bracketed && inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(tport);
		o.target_len = sizeof(*sin6);
	} else {
		fprintf(stderr, "itr_loadgen: target must be IPV4:PORT or [IPV6]:PORT\n");
		return 2;
	}
	if (o.sources > 1 &&
	    (!o.udp || sin->sin_family != AF_INET || (ntohl(sin->sin_addr.s_addr) >> 24) != 127 ||
	     o.sources > 254 || o.peers % o.sockets)) {
		fprintf(stderr, "itr_loadgen: --sources is for UDP to an IPv4 loopback target, at "
		                "most 254, with --peers a multiple of --sockets\n");
		return 2;
	}
	uint64_t done = 0, errors = 0, lost = 0;
	double start = now_s();
	int rc = o.udp ? run_udp(&o, &done, &errors, &lost) : run_http(&o, &done, &errors);
	double took = now_s() - start;
	if (rc < 0)
		return 1;
	printf("mode %s announces %llu seconds %.3f rate %.1f errors %llu lost %llu\n", mode,
	       (unsigned long long)done, took, took > 0 ? (double)done / took : 0.0,
	       (unsigned long long)errors, (unsigned long long)lost);
	return done > 0 ? 0 : 1;
}
