/* bench_http.c - requests per second of the P4P JSON API over keep-alive on
 * loopback, against nginx serving a fixed response of the same size.
 *
 * In one run, on the same cores:
 *   - itracker's HTTP server (user/http.c + user/p4p_api.c, this process,
 *     example network map) pinned to CPU 0;
 *   - nginx (Debian nginx-light, its own temporary config and prefix, one
 *     worker, access log off) pinned to CPU 0, answering the same paths
 *     with `return 200 '<the same body>'`;
 *   - wrk pinned to CPU 1 (1 thread, 32 keep-alive connections, 5 s).
 * Workloads: GET /v1/netinfo?ip=10.10.1.5, and POST /v1/rank with 50
 * candidate peers (numwant 50). Figures: absolute req/s (wall clock), and
 * requests per CPU second of the server process (from /proc, user +
 * system), which stays meaningful when other jobs share the machine; the
 * ratio is itracker / nginx. Target: >= 20,000 req/s for /v1/netinfo.
 *
 * Records go to $BUILD/bench.json (benchjson.h). Needs wrk, nginx and
 * taskset; run from the repository root (or set ITRACKER_ROOT).
 * Reproduce: make BUILD=build bench  (or BUILD=build build/bench/bench_http)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "netmap.h"
#include "p4p_api.h"
#include "benchjson.h"
#include "benchproc.h"

extern char **environ;

#define SERVER_CPU  0
#define CLIENT_CPU  1
#define DURATION    "5s"
#define CONNECTIONS "32"
#define NETINFO     "/v1/netinfo?ip=10.10.1.5"

static char tmpdir[] = "/tmp/itr-bench-http-XXXXXX";
static pid_t nginx_pid = -1;

static void cleanup(void)
{
	if (nginx_pid > 0) {
		kill(nginx_pid, SIGTERM);
		waitpid(nginx_pid, NULL, 0);
		nginx_pid = -1;
	}
	if (tmpdir[sizeof(tmpdir) - 7] != 'X') {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_http: could not remove %s\n", tmpdir);
	}
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(sin.sin_port);
}

/* One request on a fresh connection; returns the malloc'ed body. */
static char *fetch(uint16_t port, const char *method, const char *path, const char *body,
                   int *status)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return NULL;
	}
	char *req = NULL;
	int n = asprintf(&req,
	                 "%s %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
	                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	                 method, path, body ? strlen(body) : 0, body ? body : "");
	if (n < 0 || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		free(req);
		close(fd);
		return NULL;
	}
	free(req);
	size_t cap = 65536, have = 0;
	char *buf = malloc(cap);
	ssize_t r;
	while (buf && (r = recv(fd, buf + have, cap - have - 1, 0)) > 0) {
		have += (size_t)r;
		if (have + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	if (!buf)
		return NULL;
	buf[have] = '\0';
	char *start = strstr(buf, "\r\n\r\n");
	if (!start || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
		free(buf);
		return NULL;
	}
	char *out = strdup(start + 4);
	free(buf);
	return out;
}

static pid_t spawn(char *const argv[], const char *out_path)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (out_path) {
		posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC,
		                                 0644);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "bench_http: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

/* nginx's single worker: the master's child. */
static pid_t nginx_worker(void)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)nginx_pid, (int)nginx_pid);
	FILE *f = fopen(path, "r");
	int child = -1;
	if (f) {
		if (fscanf(f, "%d", &child) != 1)
			child = -1;
		fclose(f);
	}
	return child;
}

struct wrk_result {
	double rps;     /* requests per wall-clock second */
	double per_cpu; /* requests per CPU second of the server */
};

/* Run wrk pinned to the client CPU; rps -1 on failure. server_pid is the
 * process whose CPU time the requests are divided by. */
static struct wrk_result run_wrk(uint16_t port, const char *path, const char *script,
                                 const char *label, pid_t server_pid)
{
	struct wrk_result res = {-1, -1};
	char url[256], out[512], cpu[8];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	snprintf(out, sizeof(out), "%s/wrk.out", tmpdir);
	snprintf(cpu, sizeof(cpu), "%d", CLIENT_CPU);
	char *argv[16];
	int a = 0;
	argv[a++] = "taskset";
	argv[a++] = "-c";
	argv[a++] = cpu;
	argv[a++] = "wrk";
	argv[a++] = "-t1";
	argv[a++] = "-c" CONNECTIONS;
	argv[a++] = "-d" DURATION;
	if (script) {
		argv[a++] = "-s";
		argv[a++] = (char *)script;
	}
	argv[a++] = url;
	argv[a] = NULL;
	double cpu0 = bench_proc_cpu_seconds(server_pid);
	pid_t pid = spawn(argv, out);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_http: wrk failed for %s\n", label);
		return res;
	}
	double cpu_used = bench_proc_cpu_seconds(server_pid) - cpu0;
	FILE *f = fopen(out, "r");
	char line[512];
	double rps = -1, requests = -1;
	int bad = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " Requests/sec: %lf", &rps) == 1)
			continue;
		if (sscanf(line, " %lf requests in", &requests) == 1)
			continue;
		if (strstr(line, "Non-2xx") || strstr(line, "Socket errors"))
			bad = 1, fprintf(stderr, "bench_http: %s: %s", label, line);
	}
	if (f)
		fclose(f);
	if (bad || rps < 0 || requests < 0 || cpu_used <= 0)
		return res;
	res.rps = rps;
	res.per_cpu = requests / cpu_used;
	printf("  %-34s %10.0f req/s %10.0f req/CPU-s (server CPU %.2f s)\n", label, rps,
	       res.per_cpu, cpu_used);
	return res;
}

/* nginx-light with its own prefix, answering both paths with fixed bodies. */
static int start_nginx(uint16_t port, const char *netinfo_body, const char *rank_body)
{
	char conf[512], cpu[8];
	snprintf(conf, sizeof(conf), "%s/nginx.conf", tmpdir);
	FILE *f = fopen(conf, "w");
	if (!f)
		return -1;
	if (strchr(netinfo_body, '\'') || strchr(rank_body, '\'')) {
		fclose(f);
		return -1;
	}
	fprintf(f,
	        "worker_processes 1;\n"
	        "daemon off;\n"
	        "pid %s/nginx.pid;\n"
	        "error_log %s/error.log;\n"
	        "events { worker_connections 1024; }\n"
	        "http {\n"
	        "  access_log off;\n"
	        "  keepalive_requests 100000000;\n"
	        "  client_body_temp_path %s/body;\n"
	        "  proxy_temp_path %s/proxy;\n"
	        "  fastcgi_temp_path %s/fastcgi;\n"
	        "  uwsgi_temp_path %s/uwsgi;\n"
	        "  scgi_temp_path %s/scgi;\n"
	        "  server {\n"
	        "    listen 127.0.0.1:%u;\n"
	        "    location = /v1/netinfo { default_type application/json; return 200 '%s'; }\n"
	        "    location = /v1/rank { default_type application/json; return 200 '%s'; }\n"
	        "  }\n"
	        "}\n",
	        tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, port, netinfo_body,
	        rank_body);
	fclose(f);
	snprintf(cpu, sizeof(cpu), "%d", SERVER_CPU);
	char errlog[512];
	snprintf(errlog, sizeof(errlog), "%s/error.log", tmpdir);
	char *argv[] = {"taskset", "-c", cpu,  "nginx", "-p", tmpdir,
	                "-c",      conf, "-e", errlog,  NULL};
	nginx_pid = spawn(argv, NULL);
	if (nginx_pid < 0)
		return -1;
	for (int i = 0; i < 100; i++) {
		int st;
		char *b = fetch(port, "GET", NETINFO, NULL, &st);
		if (b) {
			int same = st == 200 && strcmp(b, netinfo_body) == 0;
			free(b);
			return same ? 0 : -1;
		}
		usleep(50000);
	}
	fprintf(stderr, "bench_http: nginx did not come up (see %s)\n", errlog);
	return -1;
}

static char *rank_request_body(void)
{
	/* 50 candidates spread over the example map's PIDs and outside it. */
	static const char *const nets[] = {"10.10.1",   "10.10.2", "10.10.3", "10.20.5",
	                                   "10.20.200", "10.30.7", "192.0.2"};
	size_t cap = 4096, at = 0;
	char *b = malloc(cap);
	at += (size_t)snprintf(b + at, cap - at,
	                       "{\"client\":\"10.10.1.5\",\"numwant\":50,\"peers\":[");
	for (int i = 0; i < 50; i++)
		at += (size_t)snprintf(b + at, cap - at, "%s\"%s.%d:%d\"", i ? "," : "",
		                       nets[i % 7], 10 + i, 6881 + i % 5);
	snprintf(b + at, cap - at, "]}");
	return b;
}

int main(void)
{
	int failed = 0;
	atexit(cleanup);
	if (!mkdtemp(tmpdir)) {
		perror("bench_http: mkdtemp");
		return 1;
	}

	/* Server side on SERVER_CPU: MHD's thread inherits this affinity. */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(SERVER_CPU, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		perror("bench_http: sched_setaffinity");
		return 1;
	}

	const char *root = getenv("ITRACKER_ROOT");
	char path[4096];
	snprintf(path, sizeof(path), "%s/maps/example.netmap", root && *root ? root : ".");
	struct itr_netmap_error merr;
	struct itr_netmap *map = itr_netmap_load_file(path, &merr);
	if (!map) {
		char buf[512];
		itr_netmap_error_format(&merr, buf, sizeof(buf));
		fprintf(stderr, "bench_http: %s\n", buf);
		return 1;
	}
	itr_netmap_publish(map);

	struct itr_http_limits lim = {.max_body = 1 << 20,
	                              .max_query = 8192,
	                              .max_connections = 1024,
	                              .connection_timeout_s = 60};
	struct itr_p4p_api_config cfg;
	itr_p4p_api_config_default(&cfg);
	struct itr_http_server *srv = itr_http_new(&lim);
	char err[256];
	if (!srv || itr_p4p_api_register(srv, &cfg) < 0 ||
	    itr_http_start(srv, "127.0.0.1", 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_http: %s\n", err);
		return 1;
	}
	uint16_t port = itr_http_port(srv);

	/* The bodies nginx will serve: exactly what itracker answers. */
	char *rank_req = rank_request_body();
	int st1 = 0, st2 = 0;
	char *netinfo_body = fetch(port, "GET", NETINFO, NULL, &st1);
	char *rank_body = fetch(port, "POST", "/v1/rank", rank_req, &st2);
	if (!netinfo_body || !rank_body || st1 != 200 || st2 != 200) {
		fprintf(stderr, "bench_http: itracker did not answer 200 (%d, %d)\n", st1, st2);
		return 1;
	}
	char script[512];
	snprintf(script, sizeof(script), "%s/rank.lua", tmpdir);
	FILE *f = fopen(script, "w");
	if (!f)
		return 1;
	fprintf(f,
	        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
	        "wrk.body = [[%s]]\n",
	        rank_req);
	fclose(f);

	int nginx_port = free_port();
	if (nginx_port < 0 || start_nginx((uint16_t)nginx_port, netinfo_body, rank_body) < 0) {
		fprintf(stderr, "bench_http: cannot start nginx\n");
		return 1;
	}

	printf("server CPU %d, wrk CPU %d, -c%s -d%s; bodies: netinfo %zu B, rank %zu B\n",
	       SERVER_CPU, CLIENT_CPU, CONNECTIONS, DURATION, strlen(netinfo_body),
	       strlen(rank_body));
	pid_t self = getpid(), worker = nginx_worker();
	if (worker <= 0) {
		fprintf(stderr, "bench_http: cannot find the nginx worker\n");
		return 1;
	}
	struct wrk_result it_info = run_wrk(port, NETINFO, NULL, "itracker GET /v1/netinfo", self);
	struct wrk_result ng_info =
	    run_wrk((uint16_t)nginx_port, NETINFO, NULL, "nginx    GET /v1/netinfo", worker);
	struct wrk_result it_rank =
	    run_wrk(port, "/v1/rank", script, "itracker POST /v1/rank (50 peers)", self);
	struct wrk_result ng_rank = run_wrk((uint16_t)nginx_port, "/v1/rank", script,
	                                    "nginx    POST /v1/rank (fixed)", worker);
	if (it_info.rps < 0 || ng_info.rps < 0 || it_rank.rps < 0 || ng_rank.rps < 0) {
		failed = 1;
	} else {
		printf("ratio itracker/nginx: netinfo %.2f (per CPU-s %.2f); rank %.2f (per "
		       "CPU-s %.2f)\n",
		       it_info.rps / ng_info.rps, it_info.per_cpu / ng_info.per_cpu,
		       it_rank.rps / ng_rank.rps, it_rank.per_cpu / ng_rank.per_cpu);
		printf("target: /v1/netinfo >= 20,000 req/s: %s (%.0f wall, %.0f per CPU-s)\n",
		       it_info.rps >= 20000 ? "met" : "MISSED", it_info.rps, it_info.per_cpu);
		if (benchjson_append("http_netinfo_keepalive", it_info.rps, "req/s", ng_info.rps) <
		        0 ||
		    benchjson_append("http_netinfo_per_cpu", it_info.per_cpu, "req/CPU-s",
		                     ng_info.per_cpu) < 0 ||
		    benchjson_append("http_rank50_keepalive", it_rank.rps, "req/s", ng_rank.rps) <
		        0 ||
		    benchjson_append("http_rank50_per_cpu", it_rank.per_cpu, "req/CPU-s",
		                     ng_rank.per_cpu) < 0)
			failed = 1;
	}

	free(netinfo_body);
	free(rank_body);
	free(rank_req);
	itr_http_free(srv);
	itr_netmap_publish(NULL);
	return failed;
}
