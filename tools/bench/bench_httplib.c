/* bench_httplib.c - what the HTTP library itself costs: itracker's HTTP
 * server (user/http.c on libmicrohttpd, the routes, the flags and the
 * pool itrackerd uses) against h2o's event-loop library (Debian's
 * libh2o-evloop), both answering every GET with the same fixed 130-byte
 * JSON body (the size of a /v1/netinfo answer), one thread each, pinned
 * to CPU 0; wrk on CPU 1. Two loads: 32 keep-alive connections, and a new
 * connection per request ("Connection: close", as trackers see announces).
 *
 * The question it answers (issue 13): with the JSON work gone from
 * /v1/rank and /v1/netinfo, is libmicrohttpd what stands between itracker
 * and its HTTP targets? Figures: requests per server CPU second (from
 * /proc, user + system) and per wall second; ratio h2o / itracker-MHD,
 * min/median/max over 3 rounds that alternate which server goes first.
 * Records go to $BUILD/bench.json. Needs wrk and taskset.
 * Reproduce: sudo make BUILD=build bench (or BUILD=build build/bench/bench_httplib)
 */
#include <errno.h>
#include <stdbool.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <h2o.h>

#include "http.h"
#include "benchjson.h"
#include "benchproc.h"

#define ROUNDS   3
#define DURATION "3s"
#define BODY                                                                                       \
	"{\"ip\":\"10.10.1.5\",\"pid\":\"a-metro1\",\"asid\":64500,\"loc\":1,\"vtag\":"            \
	"\"eef7b0d01c022f0b1176420c52f7999dc7cfdffc53f6784741257c55d0fa99f3\"}"

/* ---- itracker's server (libmicrohttpd) -------------------------------- */

static void fixed_handler(const struct itr_http_request *req, struct itr_http_response *resp,
                          void *arg)
{
	(void)req;
	(void)arg;
	/* like every itracker handler: a body of its own, handed over */
	char *body = strdup(BODY);
	itr_http_set_body(resp, body ? 200 : 500, "application/json", body,
	                  body ? sizeof(BODY) - 1 : 0);
}

static int serve_itracker(uint16_t port)
{
	struct itr_http_limits lim = {.max_body = 1 << 20,
	                              .max_query = 8192,
	                              .max_connections = 1024,
	                              .connection_timeout_s = 60};
	struct itr_http_server *srv = itr_http_new(&lim);
	char err[256];
	if (!srv || itr_http_route(srv, "GET", "/v1/netinfo", fixed_handler, NULL) < 0 ||
	    itr_http_start(srv, "127.0.0.1", port, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_httplib: itracker http: %s\n", srv ? err : "no memory");
		return 1;
	}
	for (;;)
		pause();
}

/* ---- h2o (libh2o-evloop) ---------------------------------------------- */

static h2o_globalconf_t h2o_config;
static h2o_context_t h2o_ctx;
static h2o_accept_ctx_t h2o_accept_ctx;

static int h2o_fixed(h2o_handler_t *self, h2o_req_t *req)
{
	(void)self;
	static h2o_generator_t generator = {NULL, NULL};
	req->res.status = 200;
	req->res.reason = "OK";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
	               H2O_STRLIT("application/json"));
	h2o_start_response(req, &generator);
	h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT(BODY));
	h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
	return 0;
}

static void h2o_on_accept(h2o_socket_t *listener, const char *err)
{
	if (err)
		return;
	h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
	if (sock)
		h2o_accept(&h2o_accept_ctx, sock);
}

static int serve_h2o(uint16_t port)
{
	h2o_config_init(&h2o_config);
	h2o_hostconf_t *host =
	    h2o_config_register_host(&h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
	handler->on_req = h2o_fixed;
	h2o_evloop_t *loop = h2o_evloop_create();
	h2o_context_init(&h2o_ctx, loop, &h2o_config);
	h2o_accept_ctx.ctx = &h2o_ctx;
	h2o_accept_ctx.hosts = h2o_config.hosts;

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 1024) < 0) {
		perror("bench_httplib: h2o listen");
		return 1;
	}
	h2o_socket_t *sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
	h2o_socket_read_start(sock, h2o_on_accept);
	while (h2o_evloop_run(loop, INT32_MAX) == 0)
		;
	return 1;
}

/* ---- measurement ------------------------------------------------------ */

static pid_t start(int (*serve)(uint16_t), uint16_t port)
{
	pid_t pid = fork();
	if (pid == 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
		_exit(serve(port));
	}
	/* wait for the listener */
	for (int i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return pid;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

struct result {
	double rps, per_cpu;
};

static int run_wrk(pid_t server, uint16_t port, int close_each, struct result *r)
{
	char cmd[512], line[256];
	snprintf(cmd, sizeof(cmd),
	         "taskset -c 1 wrk -t1 -c32 -d%s %s http://127.0.0.1:%u/v1/netinfo 2>&1", DURATION,
	         close_each ? "-H 'Connection: close'" : "", port);
	double cpu0 = bench_proc_cpu_seconds(server);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	r->rps = -1;
	unsigned long long requests = 0;
	while (fgets(line, sizeof(line), p)) {
		double v;
		unsigned long long n;
		if (sscanf(line, "Requests/sec: %lf", &v) == 1)
			r->rps = v;
		else if (sscanf(line, " %llu requests in", &n) == 1)
			requests = n;
	}
	pclose(p);
	double used = bench_proc_cpu_seconds(server) - cpu0;
	r->per_cpu = used > 0 ? (double)requests / used : -1;
	return r->rps > 0 && r->per_cpu > 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	if (system("command -v wrk >/dev/null && command -v taskset >/dev/null") != 0) {
		fprintf(stderr, "bench_httplib: wrk and taskset are needed\n");
		return 1;
	}
	uint16_t base = (uint16_t)(40000 + getpid() % 10000);
	static const char *const load_name[2] = {"keep-alive", "connection per request"};
	static const char *const lib_name[2] = {"itracker (libmicrohttpd)", "h2o (libh2o-evloop)"};
	int (*const serve[2])(uint16_t) = {serve_itracker, serve_h2o};
	int failed = 0;
	printf("fixed %zu-byte body, one server thread on CPU 0, wrk -t1 -c32 -d%s on CPU 1\n",
	       sizeof(BODY) - 1, DURATION);
	for (int load = 0; load < 2; load++) {
		double ratio[ROUNDS], ratio_cpu[ROUNDS];
		struct result res[ROUNDS][2];
		int good = 0; /* rounds where both servers were measured */
		for (int round = 0; round < ROUNDS; round++) {
			bool ok = true;
			for (int k = 0; k < 2; k++) {
				int lib = (k + round) % 2;
				uint16_t port = (uint16_t)(base + 8 * load + 2 * round + lib);
				pid_t pid = start(serve[lib], port);
				if (pid < 0 || run_wrk(pid, port, load, &res[round][lib]) < 0) {
					fprintf(stderr, "bench_httplib: %s, %s failed\n",
					        lib_name[lib], load_name[load]);
					failed++;
					ok = false;
				}
				if (pid > 0) {
					kill(pid, SIGKILL);
					waitpid(pid, NULL, 0);
				}
				if (ok)
					printf("  %-26s %-24s %9.0f req/s %9.0f req/CPU-s\n",
					       lib_name[lib], load_name[load], res[round][lib].rps,
					       res[round][lib].per_cpu);
			}
			if (!ok)
				continue; /* a failed round is left out */
			res[good][0] = res[round][0];
			res[good][1] = res[round][1];
			ratio[good] = res[round][1].rps / res[round][0].rps;
			ratio_cpu[good] = res[round][1].per_cpu / res[round][0].per_cpu;
			good++;
		}
		if (good == 0)
			continue;
		double med_itr[ROUNDS], med_h2o[ROUNDS];
		for (int i = 0; i < good; i++) {
			med_itr[i] = res[i][0].per_cpu;
			med_h2o[i] = res[i][1].per_cpu;
		}
		qsort(ratio, (size_t)good, sizeof(double), cmp_double);
		qsort(ratio_cpu, (size_t)good, sizeof(double), cmp_double);
		qsort(med_itr, (size_t)good, sizeof(double), cmp_double);
		qsort(med_h2o, (size_t)good, sizeof(double), cmp_double);
		printf("%s: h2o / itracker-MHD per CPU-s %.2f / %.2f / %.2f, per s %.2f / %.2f / "
		       "%.2f (min / median / max of %d rounds)\n",
		       load_name[load], ratio_cpu[0], ratio_cpu[good / 2], ratio_cpu[good - 1],
		       ratio[0], ratio[good / 2], ratio[good - 1], good);
		char name[128];
		snprintf(name, sizeof(name), "httplib h2o %s per cpu-s", load_name[load]);
		benchjson_append(name, med_h2o[good / 2], "req/cpu-s", med_itr[good / 2]);
	}
	return failed ? 1 : 0;
}
