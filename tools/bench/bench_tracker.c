/* bench_tracker.c - announces per second: itrackerd against opentracker
 * (Debian's), measured in the same run, on loopback.
 *
 * Each server runs alone on CPU 0 (taskset), the load generator
 * ($BUILD/itr_loadgen) on CPU 1. Same load for both: the same torrents
 * (whitelisted for opentracker), the same peers spread over the example
 * map's PIDs and named with ip= / the BEP 15 IP field (itrackerd trusts
 * 127.0.0.1 and ranks them by PID; opentracker ignores the names and
 * stores 127.0.0.1 with each peer's own port, so both store one entry per
 * peer), numwant 50; UDP pipelined, HTTP one connection per announce.
 * Also: resident memory per stored peer (RSS growth / peers), both.
 * Needs root (opentracker drops to nobody) and two CPUs.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchjson.h"

#define SECONDS  "5"
#define PEERS    50000
#define TORRENTS 1000

static char build[1024], tmp[256];

static pid_t spawn(const char *cmd, const char *log)
{
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		FILE *f = freopen(log, "w", stderr);
		(void)f;
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The server's process: the newest process of the group (sh execs it). */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* CPU seconds the process has used (user + system). */
static double cpu_s(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	unsigned long ut = 0, st = 0;
	if (!f)
		return -1;
	/* fields 14 and 15; the command name (field 2) has no spaces here */
	int n = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	fclose(f);
	return n == 2 ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* Run the generator; returns announces/s or -1. *per_cpu: announces per
 * CPU second the server used, meaningful also when the generator is the
 * one that saturates. */
static double load(const char *mode, int port, pid_t server, double *per_cpu)
{
	double cpu0 = cpu_s(server);
	char cmd[2048], out[512];
	snprintf(cmd, sizeof(cmd),
	         "taskset -c 1 %s/itr_loadgen --mode %s --target 127.0.0.1:%d --seconds %s "
	         "--peers %d --torrents %d --numwant 50 --window %d",
	         build, mode, port, SECONDS, PEERS, TORRENTS, strcmp(mode, "udp") ? 32 : 128);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	double rate = -1;
	unsigned long long n, errors;
	double secs;
	if (fgets(out, sizeof(out), p) &&
	    sscanf(out, "mode %*s announces %llu seconds %lf rate %lf errors %llu", &n, &secs,
	           &rate, &errors) == 4) {
		double used = cpu_s(server) - cpu0;
		*per_cpu = used > 0 ? (double)n / used : -1;
		printf("  %-5s %.*s, server CPU %.2f s, %.0f announces per CPU second\n", mode,
		       (int)strcspn(out, "\n"), out, used, *per_cpu);
		if (errors * 100 > n) {
			fprintf(stderr, "bench_tracker: %llu errors in %llu announces\n", errors,
			        n);
			rate = -1;
		}
	}
	pclose(p);
	return rate;
}

static int wait_port(int port, const char *proto)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ss -Hln%s 'sport = :%d' | grep -q .", proto, port);
	for (int i = 0; i < 50; i++) {
		if (system(cmd) == 0)
			return 0;
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

struct result {
	double udp, http, bytes_per_peer, udp_cpu, http_cpu;
};

static int measure(const char *name, const char *cmd, int port, struct result *r)
{
	char log[512];
	snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
	pid_t pid = spawn(cmd, log);
	if (wait_port(port, "t") < 0 || wait_port(port, "u") < 0) {
		fprintf(stderr, "bench_tracker: %s did not start (see %s)\n", name, log);
		stop(pid);
		return -1;
	}
	long before = rss_kb(pid);
	printf("%s (CPU 0):\n", name);
	r->udp = load("udp", port, pid, &r->udp_cpu);
	r->http = load("http", port, pid, &r->http_cpu);
	long after = rss_kb(pid);
	r->bytes_per_peer =
	    before > 0 && after > 0 ? (double)(after - before) * 1024.0 / PEERS : -1;
	stop(pid);
	return r->udp > 0 && r->http > 0 ? 0 : -1;
}

int main(void)
{
	const char *b = getenv("BUILD");
	snprintf(build, sizeof(build), "%s", b && *b ? b : "build");
	if (geteuid() != 0) {
		fprintf(stderr, "bench_tracker: needs root (opentracker -u nobody)\n");
		return 1;
	}
	if (system("command -v opentracker >/dev/null && command -v taskset >/dev/null") != 0) {
		fprintf(stderr, "bench_tracker: opentracker and taskset are needed\n");
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "/tmp/bench_tracker.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	chmod(tmp, 0755);
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "%s/itr_loadgen --hashes %d > %s/whitelist", build, TORRENTS,
	         tmp);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_tracker: %s/itr_loadgen missing\n", build);
		return 1;
	}
	int port = 20000 + getpid() % 20000;

	struct result ot, itr;
	snprintf(cmd, sizeof(cmd),
	         "exec taskset -c 0 opentracker -i 127.0.0.1 -p %d -P %d -u nobody -d %s "
	         "-w /whitelist",
	         port, port, tmp);
	int rc = measure("opentracker", cmd, port, &ot);
	snprintf(cmd, sizeof(cmd),
	         "exec taskset -c 0 %s/itrackerd --map maps/example.netmap --no-dataplane "
	         "--listen 127.0.0.1:%d --udp %d --udp-bind 127.0.0.1 --trusted-proxy 127.0.0.1 "
	         "--accept-ip-param",
	         build, port + 1, port + 1);
	rc |= measure("itrackerd", cmd, port + 1, &itr);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_tracker: could not remove %s\n", tmp);
	if (rc) {
		fprintf(stderr, "bench_tracker: a run failed\n");
		return 1;
	}
	printf("UDP  announces/s: itrackerd %.0f, opentracker %.0f, ratio %.2f (target >= 1.0)\n",
	       itr.udp, ot.udp, itr.udp / ot.udp);
	printf("HTTP announces/s: itrackerd %.0f, opentracker %.0f, ratio %.2f (target >= 1.0)\n",
	       itr.http, ot.http, itr.http / ot.http);
	printf("UDP  announces per server CPU second: itrackerd %.0f, opentracker %.0f, ratio "
	       "%.2f\n",
	       itr.udp_cpu, ot.udp_cpu, itr.udp_cpu / ot.udp_cpu);
	printf("HTTP announces per server CPU second: itrackerd %.0f, opentracker %.0f, ratio "
	       "%.2f\n",
	       itr.http_cpu, ot.http_cpu, itr.http_cpu / ot.http_cpu);
	printf("RSS growth per stored peer (%d peers): itrackerd %.0f B, opentracker %.0f B\n",
	       PEERS, itr.bytes_per_peer, ot.bytes_per_peer);
	benchjson_append("tracker_udp_announces_per_s", itr.udp, "announces/s", ot.udp);
	benchjson_append("tracker_http_announces_per_s", itr.http, "announces/s", ot.http);
	benchjson_append("tracker_udp_announces_per_cpu_s", itr.udp_cpu, "announces/cpu-s",
	                 ot.udp_cpu);
	benchjson_append("tracker_http_announces_per_cpu_s", itr.http_cpu, "announces/cpu-s",
	                 ot.http_cpu);
	if (itr.bytes_per_peer > 0 && ot.bytes_per_peer > 0)
		benchjson_append("tracker_rss_per_peer", itr.bytes_per_peer, "bytes/peer",
		                 ot.bytes_per_peer);
	return 0;
}
