/* bench_routes.c - how fast the route follower (user/routes.c) brings kernel
 * route changes into the data plane's LPM tries and the served map.
 *
 * Runs in a private network and mount namespace (unshare; root needed), with
 * a private bpffs for the data plane's maps (loaded, attached nowhere). The
 * follower runs in-process, as in itrackerd, with rules realm 1 -> bench-a,
 * realm 2 -> bench-b, table 100 -> bench-v6.
 *
 * 1. Change latency: one route at a time (IPv4 /32 with a realm, IPv6 /128
 *    in table 100; added, later deleted), from just before the netlink
 *    request is sent to the moment the trie answers for that prefix
 *    (polled with bpf_map_lookup_elem every 20 us). Median and p99 over
 *    CHANGES changes, first with a small table, then with the full table
 *    loaded. Target p99 <= 50 ms. Reference: the kernel's own netlink round
 *    trip for the same route requests (send to ack), measured alongside.
 * 2. Full-table load: FULL IPv4 /24 routes with realms, sent in batches of
 *    raw rtnetlink requests; time from the first request until the tries
 *    hold every prefix and until the served map holds them. Reference: the
 *    time the kernel takes to accept the requests. Target <= 10 s. Also
 *    reported: the follower's memory (RSS growth), vtags (published maps)
 *    and generations (trie flushes) the load caused, re-dumps after lost
 *    notifications.
 *
 * Reproduce: sudo make BUILD=build bench  (or sudo build/bench/bench_routes
 * [FULL] [CHANGES])
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "daemon.h"
#include "loader.h"
#include "netmap.h"
#include "routes.h"
#include "benchjson.h"
#include "benchproc.h"

#define BATCH_BYTES (256 * 1024)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static double pct(uint64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1e6; /* ms */
}

/* CPU seconds (user + system) of this process's thread named comm. */
static double thread_cpu_s(const char *comm)
{
	char path[320], name[64], stat[1024];
	double total = 0;
	long tick = sysconf(_SC_CLK_TCK);
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool match = fgets(name, sizeof(name), f) && strncmp(name, comm, strlen(comm)) == 0;
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		if (!match || !(f = fopen(path, "r")))
			continue;
		if (fgets(stat, sizeof(stat), f)) {
			/* fields after the ")" of comm: state is 3rd, utime 14th, stime 15th */
			char *p = strrchr(stat, ')');
			unsigned long ut = 0, st = 0;
			if (p &&
			    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			           &ut, &st) == 2)
				total += (double)(ut + st) / (double)tick;
		}
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return total;
}

/* ---- raw rtnetlink requests --------------------------------------------- */

struct req_buf {
	char *buf;
	size_t len;
	uint32_t seq;
};

static void put_attr(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Append one route request: blackhole routes need no interface; realm goes
 * in RTA_FLOW (IPv4 only in Linux), table in RTA_TABLE. */
static void put_route(struct req_buf *b, bool add, int family, const uint8_t *addr, int len,
                      uint32_t realm, uint32_t table, bool ack)
{
	struct nlmsghdr *h = (struct nlmsghdr *)(b->buf + b->len);
	memset(h, 0, NLMSG_SPACE(sizeof(struct rtmsg)) + 64);
	h->nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	h->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	h->nlmsg_flags =
	    NLM_F_REQUEST | (add ? NLM_F_CREATE | NLM_F_EXCL : 0) | (ack ? NLM_F_ACK : 0);
	h->nlmsg_seq = ++b->seq;
	struct rtmsg *rt = NLMSG_DATA(h);
	rt->rtm_family = (unsigned char)family;
	rt->rtm_dst_len = (unsigned char)len;
	rt->rtm_table = RT_TABLE_UNSPEC;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_BLACKHOLE;
	put_attr(h, RTA_DST, addr, family == AF_INET ? 4 : 16);
	put_attr(h, RTA_TABLE, &table, 4);
	if (realm)
		put_attr(h, RTA_FLOW, &realm, 4);
	b->len += NLMSG_ALIGN(h->nlmsg_len);
}

static int send_buf(int fd, struct req_buf *b)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	ssize_t n = sendto(fd, b->buf, b->len, 0, (struct sockaddr *)&sa, sizeof(sa));
	b->len = 0;
	return n < 0 ? -errno : 0;
}

/* Read acks/errors; with block, until the ack of seq arrives. Returns the
 * number of error replies seen (non-zero error codes). */
static long drain(int fd, bool block, uint32_t seq)
{
	static char rbuf[1 << 16];
	long errors = 0;
	for (;;) {
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), block ? 0 : MSG_DONTWAIT);
		if (n <= 0)
			return errors;
		for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error)
				errors++;
			if (block && h->nlmsg_seq == seq)
				return errors;
		}
	}
}

/* ---- setup -------------------------------------------------------------- */

static const char *map_text = "network-map bench\n"
                              "pid bench-a id 1 asn 64500 loc 1\n"
                              "pid bench-b id 2 asn 64500 loc 2\n"
                              "pid bench-v6 id 3 asn 64501 loc 3\n"
                              "prefix bench-a 192.0.2.0/24\n";

static int die(const char *what)
{
	fprintf(stderr, "bench_routes: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct itr_daemon daemon_state = {.reload_lock = PTHREAD_MUTEX_INITIALIZER};

static bool trie_has(struct itr_daemon *d, int family, const uint8_t *addr, int len)
{
	struct itr_lpm_v6_key k = {.prefixlen = (uint32_t)len};
	struct itr_pid_info v;
	memcpy(k.addr, addr, family == AF_INET ? 4 : 16);
	int fd = family == AF_INET ? d->dp->fd_lpm_v4 : d->dp->fd_lpm_v6;
	/* An exact key: LPM lookup of a full-length key finds the longest
	 * match, which is this /32 or /128 once present. */
	if (bpf_map_lookup_elem(fd, &k, &v))
		return false;
	return v.pid == (family == AF_INET ? 1u : 3u);
}

static void wait_trie(struct itr_daemon *d, int family, const uint8_t *addr, int len, bool present)
{
	struct timespec gap = {.tv_nsec = 20000};
	uint64_t give_up = now_ns() + 10000000000ull;
	while (trie_has(d, family, addr, len) != present) {
		if (now_ns() > give_up) {
			fprintf(stderr, "bench_routes: the trie did not follow a change in 10 s\n");
			exit(1);
		}
		nanosleep(&gap, NULL);
	}
}

struct latency {
	double median, p99, ref_median, ref_p99;
};

/* CHANGES changes: add (or delete) a /32 or /128, wait for the trie. */
static struct latency measure_changes(struct itr_daemon *d, int fd, size_t changes)
{
	uint64_t *lat = calloc(changes, sizeof(uint64_t));
	uint64_t *ref = calloc(changes, sizeof(uint64_t));
	struct req_buf b = {.buf = malloc(4096)};
	if (!lat || !ref || !b.buf)
		die("malloc");
	size_t pairs = changes / 2;
	for (size_t i = 0; i < pairs; i++) {
		for (int del = 0; del < 2; del++) {
			bool v6 = i % 2;
			uint8_t addr[16] = {0};
			if (v6) {
				addr[0] = 0xfd;
				addr[1] = 0x99;
				addr[14] = (uint8_t)(i >> 8);
				addr[15] = (uint8_t)i;
			} else {
				addr[0] = 198;
				addr[1] = 18;
				addr[2] = (uint8_t)(i >> 8);
				addr[3] = (uint8_t)i;
			}
			int family = v6 ? AF_INET6 : AF_INET;
			int len = v6 ? 128 : 32;
			put_route(&b, !del, family, addr, len, v6 ? 0 : 1, v6 ? 100 : RT_TABLE_MAIN,
			          true);
			uint64_t t0 = now_ns();
			if (send_buf(fd, &b))
				die("send");
			if (drain(fd, true, b.seq))
				fprintf(stderr,
				        "bench_routes: the kernel refused a route change\n");
			uint64_t t1 = now_ns();
			wait_trie(d, family, addr, len, !del);
			uint64_t t2 = now_ns();
			lat[i * 2 + (size_t)del] = t2 - t0;
			ref[i * 2 + (size_t)del] = t1 - t0;
			/* spaced out: each change is its own event, not a storm */
			struct timespec gap = {.tv_nsec = 2000000};
			nanosleep(&gap, NULL);
		}
	}
	struct latency out = {pct(lat, pairs * 2, 0.5), pct(lat, pairs * 2, 0.99),
	                      pct(ref, pairs * 2, 0.5), pct(ref, pairs * 2, 0.99)};
	free(lat);
	free(ref);
	free(b.buf);
	return out;
}

int main(int argc, char **argv)
{
	size_t full = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	size_t changes = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
	char err[1024], dir[] = "/tmp/bench_routes.XXXXXX";

	if (geteuid() != 0) {
		fprintf(stderr, "bench_routes: needs root (network namespace, BPF)\n");
		return 1;
	}
	if (full == 0 || full > (1u << 20) || changes < 100) {
		fprintf(stderr, "usage: bench_routes [FULL<=1048576] [CHANGES>=100]\n");
		return 2;
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWNS))
		die("unshare");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("mount --make-rprivate /");
	if (!mkdtemp(dir))
		die("mkdtemp");
	if (mount("bpf", dir, "bpf", 0, NULL))
		die("mount bpffs");
	char pin_root[sizeof(dir) + 16], map_path[sizeof(dir) + 16];
	snprintf(pin_root, sizeof(pin_root), "%s/itracker", dir);
	/* not inside the bpffs: it holds BPF objects only */
	snprintf(map_path, sizeof(map_path), "%s.map", dir);
	FILE *mf = fopen(map_path, "w");
	if (!mf || fputs(map_text, mf) < 0 || fclose(mf))
		die("writing the map");

	struct itr_daemon *d = &daemon_state;
	struct itr_loader_opts lo = {.pin_root = pin_root};
	d->map_file = map_path;
	d->dp = itr_dataplane_open(&lo, err, sizeof(err));
	if (!d->dp) {
		fprintf(stderr, "bench_routes: %s\n", err);
		return 1;
	}
	struct itr_netmap_error merr;
	struct itr_netmap *file = itr_netmap_load_file(map_path, &merr);
	if (!file)
		die("loading the map");
	struct itr_reload_result res;
	itr_daemon_install_map(d, file, &res);

	struct itr_routes_config cfg = {0};
	if (itr_routes_parse_rule(&cfg, "bench-a=realm:1", err, sizeof(err)) ||
	    itr_routes_parse_rule(&cfg, "bench-b=realm:2", err, sizeof(err)) ||
	    itr_routes_parse_rule(&cfg, "bench-v6=table:100", err, sizeof(err))) {
		fprintf(stderr, "bench_routes: %s\n", err);
		return 1;
	}
	struct itr_routes *r = itr_routes_start(d, &cfg, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "bench_routes: %s\n", err);
		return 1;
	}

	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		die("netlink socket");
	int big = 32 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));

	/* 1a. latency, small table */
	struct latency small = measure_changes(d, fd, changes);
	printf("change -> trie, small table: median %.3f ms, p99 %.3f ms over %zu changes "
	       "(kernel ack: median %.3f ms, p99 %.3f ms)\n",
	       small.median, small.p99, changes, small.ref_median, small.ref_p99);

	/* 2. full-table load */
	struct itr_routes_stats st0, st1;
	itr_routes_get_stats(r, &st0);
	long rss0 = bench_proc_status_kb(0, "VmRSS:");
	double cpu_follow0 = thread_cpu_s("itr-routes"), cpu_pub0 = thread_cpu_s("itr-publish");
	struct req_buf b = {.buf = malloc(BATCH_BYTES + 4096)};
	if (!b.buf)
		die("malloc");
	uint64_t t0 = now_ns();
	long refused = 0;
	for (size_t i = 0; i < full; i++) {
		/* 16.0.0.0/24 upwards: 2^20 /24s fit below 32.0.0.0 */
		uint32_t net = (16u << 24) + ((uint32_t)i << 8);
		uint8_t addr[4] = {net >> 24, net >> 16, net >> 8, 0};
		put_route(&b, true, AF_INET, addr, 24, 1 + (uint32_t)(i % 2), RT_TABLE_MAIN, false);
		if (b.len > BATCH_BYTES || i + 1 == full) {
			if (send_buf(fd, &b))
				die("send");
			refused += drain(fd, false, 0);
		}
	}
	/* an acked request last: every earlier one has been processed */
	uint8_t last[4] = {192, 0, 2, 0};
	put_route(&b, false, AF_INET, last, 32, 0, RT_TABLE_MAIN, true);
	send_buf(fd, &b);
	drain(fd, true, b.seq);
	uint64_t t_kernel = now_ns();
	size_t want = st0.routes + full;
	struct itr_routes_stats st;
	for (;;) {
		itr_routes_get_stats(r, &st);
		if (st.routes >= want && st.pending == 0)
			break;
		if (now_ns() - t0 > 300000000000ull) {
			fprintf(stderr, "bench_routes: follower stuck at %zu of %zu routes\n",
			        st.routes, want);
			return 1;
		}
		if (getenv("BENCH_ROUTES_TRACE") && (now_ns() - t0) % 500000000ull < 1100000ull)
			fprintf(stderr, "  t=%.2f s: %zu routes, %zu pending, %llu events\n",
			        (double)(now_ns() - t0) / 1e9, st.routes, st.pending,
			        (unsigned long long)st.events);
		usleep(1000);
	}
	uint32_t last_net = (16u << 24) + ((uint32_t)(full - 1) << 8);
	struct itr_lpm_v4_key lk = {.prefixlen = 24,
	                            .addr = {last_net >> 24, last_net >> 16, last_net >> 8, 0}};
	struct itr_pid_info lv;
	bool in_trie = bpf_map_lookup_elem(d->dp->fd_lpm_v4, &lk, &lv) == 0;
	uint64_t t_tries = now_ns();
	for (;;) {
		struct itr_netmap *m = itr_netmap_current();
		size_t n = m ? itr_netmap_prefix_count(m) : 0;
		itr_netmap_unref(m);
		if (n >= full)
			break;
		if (now_ns() - t0 > 300000000000ull) {
			fprintf(stderr, "bench_routes: the served map never reached %zu prefixes\n",
			        full);
			return 1;
		}
		usleep(1000);
	}
	uint64_t t_map = now_ns();
	itr_routes_get_stats(r, &st1);
	long rss1 = bench_proc_status_kb(0, "VmRSS:"), hwm = bench_proc_status_kb(0, "VmHWM:");
	double kernel_s = (double)(t_kernel - t0) / 1e9;
	double tries_s = (double)(t_tries - t0) / 1e9, map_s = (double)(t_map - t0) / 1e9;
	printf("full load of %zu IPv4 routes: kernel accepted them in %.2f s (%ld refused); "
	       "tries complete after %.2f s (last prefix %s), served map after %.2f s\n",
	       full, kernel_s, refused, tries_s, in_trie ? "present" : "MISSING", map_s);
	printf("  vtags (maps published): %llu, generations (trie flushes): %llu, trie ops: "
	       "%llu, re-dumps: %llu, last rebuild %.3f s\n",
	       (unsigned long long)(st1.publishes - st0.publishes),
	       (unsigned long long)(st1.flushes - st0.flushes),
	       (unsigned long long)(st1.trie_ops - st0.trie_ops),
	       (unsigned long long)(st1.resyncs - st0.resyncs), st1.last_rebuild_s);
	printf("  CPU: follower %.2f s, publisher %.2f s\n",
	       thread_cpu_s("itr-routes") - cpu_follow0, thread_cpu_s("itr-publish") - cpu_pub0);
	printf("  memory: RSS %.0f MB before, %.0f MB after (%.0f bytes/route), peak %.0f MB\n",
	       rss0 / 1024.0, rss1 / 1024.0, (double)(rss1 - rss0) * 1024.0 / (double)full,
	       hwm / 1024.0);

	/* 1b. latency with the full table in place */
	struct latency large = measure_changes(d, fd, changes);
	printf("change -> trie, %zu-route table: median %.3f ms, p99 %.3f ms over %zu changes "
	       "(kernel ack: median %.3f ms, p99 %.3f ms)\n",
	       full, large.median, large.p99, changes, large.ref_median, large.ref_p99);

	benchjson_append("routes: change->trie p99, small table", small.p99, "ms", small.ref_p99);
	benchjson_append("routes: change->trie median, small table", small.median, "ms",
	                 small.ref_median);
	benchjson_append("routes: change->trie p99, full table", large.p99, "ms", large.ref_p99);
	benchjson_append("routes: change->trie median, full table", large.median, "ms",
	                 large.ref_median);
	benchjson_append("routes: full load -> tries", tries_s, "s", kernel_s);
	benchjson_append("routes: full load -> served map", map_s, "s", kernel_s);
	benchjson_append("routes: follower memory per route",
	                 (double)(rss1 - rss0) * 1024.0 / (double)full, "bytes", 0);

	itr_routes_stop(r);
	free(b.buf);
	close(fd);
	itr_dataplane_close(d->dp, false);
	struct itr_netmap *m = itr_netmap_current();
	itr_netmap_publish(NULL);
	itr_netmap_unref(m);
	unlink(map_path);
	umount(dir);
	rmdir(dir);
	return in_trie ? 0 : 1;
}
