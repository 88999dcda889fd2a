/* itr_loadgen.c - announce load for a BitTorrent tracker (itrackerd or any
 * other), over UDP (BEP 15, pipelined on one socket) or HTTP (BEP 3, a new
 * connection per announce, as clients do), bounded by time and count.
 *
 * Peers are spread over the PIDs of maps/example.netmap and named with
 * ip= / the BEP 15 IP field (itrackerd uses them with --trusted-proxy
 * 127.0.0.1 --accept-ip-param; a tracker that does not stores 127.0.0.1). Every peer also
 * has its own port, so a tracker that ignores the names still stores one
 * entry per peer: both kinds do the same amount of storing.
 *
 *   itr_loadgen --mode udp|http --target HOST:PORT [--torrents N] [--peers N]
 *               [--seconds S] [--count N] [--window N] [--numwant N]
 *   itr_loadgen --hashes N      print the first N info_hashes in hex (for
 *                               a tracker's whitelist) and exit
 *
 * Prints one line: "mode M announces N seconds S rate R errors E".
 */
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

#define MAX_WINDOW 1024

struct opts {
	bool udp;
	struct sockaddr_in target;
	char host[64];
	unsigned torrents, peers, window, numwant;
	double seconds;
	uint64_t count;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
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
 * port of its own. */
static void peer_addr(unsigned i, uint8_t addr[4], uint16_t *port)
{
	static const uint8_t bases[7][3] = {{10, 10, 1},   {10, 10, 2}, {10, 10, 3}, {10, 20, 0},
	                                    {10, 20, 128}, {10, 30, 0}, {10, 99, 0}};
	unsigned pid = i % 7, n = i / 7;
	addr[0] = bases[pid][0];
	addr[1] = bases[pid][1];
	/* the /24 PIDs keep their third byte; the /16 and /17 ones use it */
	addr[2] = (uint8_t)(pid < 3 ? bases[pid][2] : bases[pid][2] + (n / 250) % 64);
	addr[3] = (uint8_t)(1 + n % 250);
	*port = (uint16_t)(1024 + i % 64000);
}

static void usage(void)
{
	fprintf(stderr, "usage: itr_loadgen --mode udp|http --target HOST:PORT [--torrents N] "
	                "[--peers N] [--seconds S] [--count N] [--window N] [--numwant N]\n"
	                "       itr_loadgen --hashes N\n");
	exit(2);
}

/* ---- UDP ------------------------------------------------------------------ */

static int udp_connect_id(int fd, uint8_t id[8])
{
	uint8_t req[16], resp[64];
	put32(req, 0x417);
	put32(req + 4, 0x27101980);
	put32(req + 8, 0);
	for (int attempt = 0; attempt < 5; attempt++) {
		uint32_t tid = 0xc0000000u | (uint32_t)attempt;
		put32(req + 12, tid);
		send(fd, req, sizeof(req), 0);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		double until = now_s() + 1;
		while (now_s() < until && poll(&pfd, 1, 100) >= 0) {
			ssize_t n = recv(fd, resp, sizeof(resp), MSG_DONTWAIT);
			if (n >= 16 && get32(resp) == 0 && get32(resp + 4) == tid) {
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
	peer_addr(peer, addr, &port);
	memset(pkt, 0, 98);
	memcpy(pkt, id, 8);
	put32(pkt + 8, 1);
	put32(pkt + 12, (uint32_t)seq);
	info_hash(peer % o->torrents, pkt + 16);
	snprintf((char *)pkt + 36, 21, "-LG0001-%012u", peer);
	put32(pkt + 68, peer % 4 == 0 ? 0 : 1000); /* left: a quarter seed */
	put32(pkt + 80, seq < o->peers ? 2 : 0);   /* started, then periodic */
	memcpy(pkt + 84, addr, 4);
	put32(pkt + 88, peer);
	put32(pkt + 92, o->numwant);
	pkt[96] = (uint8_t)(port >> 8);
	pkt[97] = (uint8_t)port;
}

static int run_udp(const struct opts *o, uint64_t *done, uint64_t *errors)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int buf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (connect(fd, (struct sockaddr *)&o->target, sizeof(o->target)) < 0) {
		perror("connect");
		return -1;
	}
	uint8_t id[8];
	if (udp_connect_id(fd, id) < 0) {
		fprintf(stderr, "itr_loadgen: no connect answer from the tracker\n");
		return -1;
	}
	double start = now_s(), deadline = start + o->seconds, id_at = start;
	uint64_t sent = 0, inflight = 0;
	double last_progress = start;
	uint8_t pkt[98], resp[2048];
	while (*done < o->count) {
		double t = now_s();
		if (t >= deadline)
			break;
		if (t - id_at > 50) { /* connection ids live for a minute */
			if (udp_connect_id(fd, id) < 0)
				return -1;
			id_at = t;
		}
		while (inflight < o->window && sent < o->count) {
			udp_announce(o, sent, id, pkt);
			if (send(fd, pkt, sizeof(pkt), MSG_DONTWAIT) < 0)
				break;
			sent++;
			inflight++;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		poll(&pfd, 1, 10);
		ssize_t n;
		while ((n = recv(fd, resp, sizeof(resp), MSG_DONTWAIT)) > 0) {
			if (n >= 8 && get32(resp) == 1) {
				(*done)++;
			} else if (n >= 8 && get32(resp) == 3) {
				(*errors)++;
			} else {
				continue;
			}
			if (inflight) /* answers to requests given up on do not count twice */
				inflight--;
			last_progress = now_s();
		}
		/* a lost datagram must not stall the window forever */
		if (inflight && now_s() - last_progress > 0.5) {
			*errors += inflight;
			inflight = 0;
			last_progress = now_s();
		}
	}
	close(fd);
	return 0;
}

/* ---- HTTP ----------------------------------------------------------------- */

struct conn {
	int fd;
	char req[512];
	size_t reqlen, sent;
	size_t got;
	char head[16];
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

static int http_open(const struct opts *o, struct conn *c, uint64_t seq, int ep)
{
	unsigned peer = (unsigned)(seq % o->peers);
	uint8_t addr[4], ih[20];
	uint16_t port;
	char ihx[61], ip[INET_ADDRSTRLEN];
	peer_addr(peer, addr, &port);
	info_hash(peer % o->torrents, ih);
	url_escape(ihx, ih, 20);
	inet_ntop(AF_INET, addr, ip, sizeof(ip));
	int n = snprintf(c->req, sizeof(c->req),
	                 "GET /announce?info_hash=%s&peer_id=-LG0001-%012u&port=%u&uploaded=0"
	                 "&downloaded=0&left=%u&compact=1&numwant=%u%s&key=%x&ip=%s HTTP/1.0\r\n"
	                 "Host: %s\r\n\r\n",
	                 ihx, peer, port, peer % 4 == 0 ? 0 : 1000, o->numwant,
	                 seq < o->peers ? "&event=started" : "", peer, ip, o->host);
	c->reqlen = (size_t)n;
	c->sent = c->got = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&o->target, sizeof(o->target)) < 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		return -1;
	}
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
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
			bool finished = false, ok = false;
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
					size_t keep = sizeof(c->head) - c->got;
					if (keep > (size_t)r)
						keep = (size_t)r;
					if (c->got < sizeof(c->head))
						memcpy(c->head + c->got, buf, keep);
					c->got += (size_t)r;
				}
				if (r == 0) {
					finished = true;
					ok = c->got >= 12 && memcmp(c->head + 9, "200", 3) == 0;
				} else if (errno != EAGAIN) {
					finished = true;
				}
			}
			if (!finished)
				continue;
			close(c->fd);
			if (ok)
				(*done)++;
			else
				(*errors)++;
			open_conns--;
			if (started < o->count && now_s() < deadline) {
				if (http_open(o, c, started++, ep) == 0)
					open_conns++;
				else
					(*errors)++;
			}
		}
	}
	for (unsigned i = 0; i < o->window; i++)
		if (open_conns && conns[i].fd > 0)
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
	                 .count = UINT64_MAX};
	const char *mode = NULL, *target = NULL;
	static const struct option lo[] = {
	    {"mode", 1, 0, 'm'},   {"target", 1, 0, 't'},  {"torrents", 1, 0, 'T'},
	    {"peers", 1, 0, 'p'},  {"seconds", 1, 0, 's'}, {"count", 1, 0, 'c'},
	    {"window", 1, 0, 'w'}, {"numwant", 1, 0, 'n'}, {"hashes", 1, 0, 'H'},
	    {"help", 0, 0, 'h'},   {0, 0, 0, 0},
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
	    !o.peers || !o.window || o.window > MAX_WINDOW || o.seconds <= 0)
		usage();
	o.udp = strcmp(mode, "udp") == 0;
	const char *colon = strrchr(target, ':');
	if (!colon || (size_t)(colon - target) >= sizeof(o.host))
		usage();
	snprintf(o.host, sizeof(o.host), "%.*s", (int)(colon - target), target);
	o.target.sin_family = AF_INET;
	o.target.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, o.host, &o.target.sin_addr) != 1) {
		fprintf(stderr, "itr_loadgen: target must be an IPv4 address:port\n");
		return 2;
	}
	uint64_t done = 0, errors = 0;
	double start = now_s();
	int rc = o.udp ? run_udp(&o, &done, &errors) : run_http(&o, &done, &errors);
	double took = now_s() - start;
	if (rc < 0)
		return 1;
	printf("mode %s announces %llu seconds %.3f rate %.1f errors %llu\n", mode,
	       (unsigned long long)done, took, took > 0 ? (double)done / took : 0.0,
	       (unsigned long long)errors);
	return done > 0 ? 0 : 1;
}
