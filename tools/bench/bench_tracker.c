/* bench_tracker.c - announces per second and per server CPU second:
 * itrackerd against Debian's opentracker, over a matrix of load shapes,
 * each measured against opentracker in the same run, on loopback.
 *
 * Shapes: UDP swarm sizes 1, 64, 1,000 and 10,000 with numwant 50; 1,000
 * with numwant 200; IPv6; clients outside every PID; 1 and 2 server cores
 * (taskset; itrackerd's --udp-workers follows the CPUs it may use); the
 * price controller off (--gateways and --max-external fixed); HTTP
 * with a connection per announce (swarms of 64 and 1,000, IPv4 and IPv6)
 * and with keep-alive; and 10,000 swarms of 64 loaded from 64 client
 * addresses (127.0.0.1-64, each with its own peers and 8 announces in
 * flight; itrackerd trusts 127.0.0.0/8 to name them). Every (shape, server) starts a fresh server,
 * announces every peer once (event=started: the swarms are full), then
 * measures re-announces for a fixed time with itr_loadgen. The load
 * generator runs on CPU 1 and the server on CPU 0 (one core) or on both
 * (two cores: then the generator shares them and only the per CPU second
 * figure compares servers). Runs rotate: the shape order turns by one and
 * the server order flips every run; min/median/max over the runs.
 *
 * Peers are named with the BEP 15 IP field / ip= (itrackerd uses them with
 * --trusted-proxy --accept-ip-param; opentracker stores 127.0.0.1 and each
 * peer's own port, so both store one entry per peer). opentracker is built
 * without IPv6 in Debian: an IPv6 shape's reference is opentracker's IPv4
 * figure for the same shape (said so in the output). opentracker refuses
 * root (-u nobody) and serves only whitelisted info_hashes (-w).
 *
 * Also: RSS per stored IPv4 peer of each running daemon, (RSS after
 * 220,000 peers - RSS after 20,000) / 200,000, swarms of 64, once per run;
 * itrackerd also with the price controller off (the controller keeps no
 * swarm state of its own: the two should agree).
 *
 *   bench_tracker [--quick] [--runs N] [--seconds S] [--only TEXT]
 * --quick: four shapes, one run, one second each (a smoke test: seconds);
 * --only: the shapes whose name contains TEXT (the RSS figure only with
 * --only rss).
 * Records go to $BUILD/bench.json (benchjson.h). Needs root, opentracker,
 * taskset, ss and two CPUs; run from the repository root.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchjson.h"
#include "benchproc.h"

#define MAX_RUNS      9
#define WHITELIST     20000
#define RSS_PEERS_LOW 20000
#define RSS_PEERS     220000

static char build[512], tmp[256];
static int base_port;

/* The servers' first port (they use four from it), outside the kernel's
 * ephemeral range: a connection-per-announce load leaves a few of its own
 * sockets in TIME_WAIT on ports of that range (the client closed first),
 * and a server's bind to such a port fails even with SO_REUSEADDR. */
static int pick_base_port(void)
{
	int low = 32768, high = 60999, lo, hi; /* the kernel's default */
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%d %d", &lo, &hi) == 2)
			low = lo, high = hi;
		fclose(f);
	}
	if (low - 10000 > 64)
		return 10000 + getpid() % (low - 10000 - 8);
	if (65535 - high > 64)
		return high + 1 + getpid() % (65535 - high - 8);
	fprintf(stderr,
	        "bench_tracker: the ephemeral range %d-%d leaves no ports outside it; "
	        "a server may fail to start\n",
	        low, high);
	return 20000 + getpid() % 20000;
}

struct shape {
	const char *name;
	bool udp;
	unsigned swarm, numwant;
	bool v6, outside, keepalive;
	int cores;
	bool quick;        /* part of --quick */
	bool fixed_budget; /* itrackerd with the price controller off */
	unsigned peers;    /* 0: peers_for's default */
	unsigned sources;  /* > 1: client addresses (itr_loadgen --sources), 8 in flight each */
};

static const struct shape shapes[] = {
    {"udp swarm 1", true, 1, 50, false, false, false, 1, false, false, 0, 0},
    {"udp swarm 64", true, 64, 50, false, false, false, 1, true, false, 0, 0},
    {"udp swarm 1000", true, 1000, 50, false, false, false, 1, true, false, 0, 0},
    {"udp swarm 10000", true, 10000, 50, false, false, false, 1, false, false, 0, 0},
    {"udp swarm 1000 numwant 200", true, 1000, 200, false, false, false, 1, false, false, 0, 0},
    {"udp swarm 64 ipv6", true, 64, 50, true, false, false, 1, false, false, 0, 0},
    {"udp swarm 64 outside PIDs", true, 64, 50, false, true, false, 1, false, false, 0, 0},
    {"udp swarm 64 price controller off", true, 64, 50, false, false, false, 1, false, true, 0, 0},
    {"udp swarm 64 2 cores", true, 64, 50, false, false, false, 2, true, false, 0, 0},
    {"udp swarm 1000 2 cores", true, 1000, 50, false, false, false, 2, false, false, 0, 0},
    {"http swarm 64 conn/announce", false, 64, 50, false, false, false, 1, true, false, 0, 0},
    {"http swarm 1000 conn/announce", false, 1000, 50, false, false, false, 1, false, false, 0, 0},
    {"http swarm 64 conn/announce ipv6", false, 64, 50, true, false, false, 1, false, false, 0, 0},
    {"http swarm 64 keep-alive", false, 64, 50, false, false, true, 1, false, false, 0, 0},
    /* another shape than the rest: many swarms, and the load from many
     * addresses, each with a few announces in flight (as through NATs) */
    {"udp 10000 swarms of 64, 64 sources", true, 64, 50, false, false, false, 1, false, false,
     640000, 64},
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

enum { OT = 0, ITR = 1 };
static const char *server_name[2] = {"opentracker", "itrackerd"};

struct sample {
	double rate, per_cpu;
};

static struct sample results[NSHAPES][2][MAX_RUNS];

static pid_t spawn(const char *cmd, const char *log)
{
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		FILE *f = freopen(log, "a", stderr);
		(void)f;
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		sleep_ms(100);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int wait_port(int port, const char *proto)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ss -Hln%s 'sport = :%d' | grep -q .", proto, port);
	for (int i = 0; i < 50; i++) {
		if (system(cmd) == 0)
			return 0;
		sleep_ms(100);
	}
	return -1;
}

static unsigned peers_for(const struct shape *sh)
{
	if (sh->peers)
		return sh->peers;
	return sh->swarm >= 10000 ? 3 * sh->swarm : 20000;
}

/* Run itr_loadgen; returns announces/s or -1; *n gets the announces. */
static double loadgen(const struct shape *sh, int port, const char *extra, unsigned long long *n)
{
	unsigned peers = peers_for(sh);
	char cmd[2048], out[512], sockets[64] = "";
	if (sh->sources > 1)
		snprintf(sockets, sizeof(sockets), "--sockets %u --sources %u", sh->sources,
		         sh->sources);
	else if (sh->udp)
		snprintf(sockets, sizeof(sockets), "--sockets 8");
	snprintf(cmd, sizeof(cmd),
	         "%s %s/itr_loadgen --mode %s --target %s:%d --peers %u --torrents %u "
	         "--numwant %u --window %u %s %s %s %s",
	         sh->cores == 1 ? "taskset -c 1" : "", build, sh->udp ? "udp" : "http",
	         sh->v6 ? "[::1]" : "127.0.0.1", port, peers, peers / sh->swarm, sh->numwant,
	         sh->sources > 1 ? 8 * sh->sources
	         : sh->udp       ? 128
	                         : 32,
	         sockets, sh->keepalive ? "--keepalive" : "", sh->outside ? "--outside" : "",
	         sh->v6 && !sh->udp ? "--v6-peers" : "");
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", extra);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	double rate = -1, secs;
	unsigned long long errors, lost;
	if (!fgets(out, sizeof(out), p) ||
	    sscanf(out, "mode %*s announces %llu seconds %lf rate %lf errors %llu lost %llu", n,
	           &secs, &rate, &errors, &lost) != 5) {
		rate = -1;
	} else if (errors * 100 > *n || lost * 10 > *n) {
		/* error answers mean a wrong setup; some lost datagrams are
		 * what a loaded machine does to UDP, many a broken server */
		fprintf(stderr, "bench_tracker: %llu errors, %llu lost in %llu announces (%s)\n",
		        errors, lost, *n, cmd);
		rate = -1;
	}
	pclose(p);
	return rate;
}

/* Extra itrackerd options (the RSS figure without the price controller). */
static const char *itrd_extra = "";

static pid_t start_server(int which, const struct shape *sh, int port)
{
	char cmd[2048], log[512];
	const char *cpus = sh->cores == 1 ? "0" : "0,1";
	snprintf(log, sizeof(log), "%s/%s.log", tmp, server_name[which]);
	if (which == OT)
		snprintf(cmd, sizeof(cmd),
		         "exec taskset -c %s opentracker -i 127.0.0.1 -p %d -P %d -u nobody -d %s "
		         "-w /whitelist",
		         cpus, port, port, tmp);
	else
		snprintf(
		    cmd, sizeof(cmd),
		    "exec taskset -c %s %s/itrackerd --map maps/example.netmap --no-dataplane "
		    "--listen %s:%d --udp %d --udp-bind %s --trusted-proxy %s --admin-socket off "
		    "--accept-ip-param%s%s",
		    cpus, build, sh->v6 ? "[::1]" : "127.0.0.1", port, port,
		    sh->v6 ? "::1" : "127.0.0.1",
		    sh->v6            ? "::1"
		    : sh->sources > 1 ? "127.0.0.0/8"
		                      : "127.0.0.1",
		    /* BEP 15 over IPv6 has no IP field: every peer is ::1, one
		     * source, which the per-source quotas would stop */
		    sh->v6 && sh->udp
		        ? " --announce-rate 0 --max-peers-per-source 0 --max-torrents-per-source 0"
		        : "",
		    sh->fixed_budget ? " --gateways 1 --max-external 2" : itrd_extra);
	pid_t pid = spawn(cmd, log);
	if (wait_port(port, "t") < 0 || wait_port(port, "u") < 0) {
		stop(pid);
		/* the log goes with the temporary directory: show its end */
		fprintf(stderr, "bench_tracker: %s did not start; the end of its log:\n",
		        server_name[which]);
		char tail[600];
		snprintf(tail, sizeof(tail), "tail -n 20 '%s' >&2", log);
		if (system(tail) != 0)
			fprintf(stderr, "bench_tracker: (no log at %s)\n", log);
		return -1;
	}
	return pid;
}

/* One shape against one server: fill the swarms, then measure. */
static int measure(int which, const struct shape *sh, double seconds, struct sample *out)
{
	/* opentracker has no IPv6: its reference is the IPv4 shape */
	struct shape real = *sh;
	if (which == OT)
		real.v6 = false;
	int port = base_port + which;
	pid_t pid = start_server(which, &real, port);
	if (pid < 0)
		return -1;
	char extra[128];
	unsigned long long n = 0;
	snprintf(extra, sizeof(extra), "--count %u --seconds 60", peers_for(sh));
	double fill = loadgen(&real, port, extra, &n);
	double cpu0 = bench_proc_cpu_seconds(pid);
	snprintf(extra, sizeof(extra), "--seconds %.1f", seconds);
	double rate = fill > 0 ? loadgen(&real, port, extra, &n) : -1;
	double used = bench_proc_cpu_seconds(pid) - cpu0;
	stop(pid);
	if (rate <= 0) {
		fprintf(stderr, "bench_tracker: %s, %s failed\n", server_name[which], sh->name);
		return -1;
	}
	/* no CPU time read (the process's stat unreadable, or 0 clock ticks on
	 * a starved machine): a per-CPU ratio from it would be meaningless */
	if (!(cpu0 >= 0 && used > 0)) {
		fprintf(stderr, "bench_tracker: %s, %s: no CPU time measured, run left out\n",
		        server_name[which], sh->name);
		return -1;
	}
	out->rate = rate;
	out->per_cpu = (double)n / used;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct stat3 {
	double min, med, max;
};

static struct stat3 stat_of(const double *v, int n)
{
	double s[MAX_RUNS];
	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	struct stat3 r = {s[0], n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[n - 1]};
	return r;
}

/* RSS per stored peer: the marginal cost between two fill levels, so the
 * process's fixed memory (code, threads, buffers) is left out. */
static double rss_per_peer(int which)
{
	struct shape sh = {"rss", true, 64, 0, false, false, false, 1, false, false, 0, 0};
	int port = base_port + 2 + which;
	pid_t pid = start_server(which, &sh, port);
	if (pid < 0)
		return -1;
	char cmd[2048], out[256];
	long rss[2];
	unsigned counts[2] = {RSS_PEERS_LOW, RSS_PEERS};
	for (int k = 0; k < 2; k++) {
		snprintf(
		    cmd, sizeof(cmd),
		    "taskset -c 1 %s/itr_loadgen --mode udp --target 127.0.0.1:%d --peers %u "
		    "--torrents %u --numwant 0 --window 128 --sockets 8 --count %u --seconds 120",
		    build, port, RSS_PEERS, RSS_PEERS / 64, counts[k]);
		FILE *p = popen(cmd, "r");
		if (!p || !fgets(out, sizeof(out), p))
			out[0] = '\0';
		if (p)
			pclose(p);
		sleep_ms(200);
		/* the server is the shell's exec'd process: same pid */
		rss[k] = bench_proc_status_kb(pid, "VmRSS:");
		printf("  %s: %u peers announced (%.*s), RSS %ld kB\n", server_name[which],
		       counts[k], (int)strcspn(out, "\n"), out, rss[k]);
	}
	stop(pid);
	if (rss[0] <= 0 || rss[1] <= 0)
		return -1;
	return (double)(rss[1] - rss[0]) * 1024.0 / (RSS_PEERS - RSS_PEERS_LOW);
}

static void load_average(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/loadavg", "r");
	if (!f || !fgets(buf, (int)cap, f))
		snprintf(buf, cap, "?\n");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

int main(int argc, char **argv)
{
	bool quick = getenv("BENCH_QUICK") && *getenv("BENCH_QUICK") == '1';
	int runs = 3;
	double seconds = 2;
	const char *only = NULL; /* shapes whose name contains this */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: bench_tracker [--quick] [--runs N] [--seconds S] "
			                "[--only TEXT]\n");
			return 2;
		}
	}
	if (quick) {
		runs = 1;
		seconds = 1;
	}
	if (runs < 1 || runs > MAX_RUNS || seconds <= 0) {
		fprintf(stderr, "bench_tracker: --runs 1..%d, --seconds > 0\n", MAX_RUNS);
		return 2;
	}
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
	snprintf(cmd, sizeof(cmd), "%s/itr_loadgen --hashes %d > %s/whitelist", build, WHITELIST,
	         tmp);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_tracker: %s/itr_loadgen missing\n", build);
		return 1;
	}
	base_port = pick_base_port();
	char load[128];
	load_average(load, sizeof(load));
	printf("load average before: %s; %d run(s), %.1f s per measurement\n", load, runs, seconds);

	int failed = 0;
	bool done[NSHAPES] = {false}, broken[NSHAPES] = {false};
	for (int r = 0; r < runs; r++) {
		for (size_t k = 0; k < NSHAPES; k++) {
			size_t s = (k + (size_t)r) % NSHAPES;
			if ((quick && !shapes[s].quick) || (only && !strstr(shapes[s].name, only)))
				continue;
			for (int w = 0; w < 2; w++) {
				int which = (w + r) % 2 ? ITR : OT;
				if (measure(which, &shapes[s], seconds, &results[s][which][r]) <
				    0) {
					failed++;
					broken[s] = true;
				}
			}
			done[s] = true;
			const struct sample *o = &results[s][OT][r], *i = &results[s][ITR][r];
			printf("run %d %-34s itrackerd %7.0f/s %7.0f/cpu-s  opentracker %7.0f/s "
			       "%7.0f/cpu-s\n",
			       r + 1, shapes[s].name, i->rate, i->per_cpu, o->rate, o->per_cpu);
			fflush(stdout);
		}
	}
	/* a shape with a failed measurement is left out of the summary */
	for (size_t s = 0; s < NSHAPES; s++)
		done[s] = done[s] && !broken[s];

	printf("\n%-34s %23s %23s %23s\n", "shape (ratio itrackerd/opentracker)",
	       "announces/s min/med/max", "per CPU-s min/med/max", "itrackerd/s median");
	double one_core[NSHAPES] = {0};
	for (size_t s = 0; s < NSHAPES; s++) {
		if (!done[s])
			continue;
		double ratio[MAX_RUNS], ratio_cpu[MAX_RUNS], rate[MAX_RUNS];
		for (int r = 0; r < runs; r++) {
			ratio[r] = results[s][ITR][r].rate / results[s][OT][r].rate;
			ratio_cpu[r] = results[s][ITR][r].per_cpu / results[s][OT][r].per_cpu;
			rate[r] = results[s][ITR][r].rate;
		}
		struct stat3 a = stat_of(ratio, runs), c = stat_of(ratio_cpu, runs),
		             v = stat_of(rate, runs);
		printf("%-34s %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %15.0f%s\n", shapes[s].name,
		       a.min, a.med, a.max, c.min, c.med, c.max, v.med,
		       shapes[s].v6 ? " (reference: opentracker IPv4)" : "");
		one_core[s] = v.med;
		char name[128], ref[64];
		snprintf(name, sizeof(name), "tracker %s announces/s", shapes[s].name);
		double ot_rate[MAX_RUNS], ot_cpu[MAX_RUNS], itr_cpu[MAX_RUNS];
		for (int r = 0; r < runs; r++) {
			ot_rate[r] = results[s][OT][r].rate;
			ot_cpu[r] = results[s][OT][r].per_cpu;
			itr_cpu[r] = results[s][ITR][r].per_cpu;
		}
		benchjson_append(name, v.med, "announces/s", stat_of(ot_rate, runs).med);
		snprintf(name, sizeof(name), "tracker %s per cpu-s", shapes[s].name);
		snprintf(ref, sizeof(ref), "announces/cpu-s");
		benchjson_append(name, stat_of(itr_cpu, runs).med, ref, stat_of(ot_cpu, runs).med);
	}
	/* 2 workers on 2 cores against 1 on 1, same shape, itrackerd alone */
	for (size_t s = 0; s < NSHAPES; s++) {
		if (!done[s] || shapes[s].cores != 2)
			continue;
		for (size_t t = 0; t < NSHAPES; t++) {
			if (!done[t] || shapes[t].cores != 1 || !shapes[t].udp ||
			    shapes[t].swarm != shapes[s].swarm ||
			    shapes[t].numwant != shapes[s].numwant || shapes[t].v6 ||
			    shapes[t].outside || shapes[t].fixed_budget || shapes[t].peers ||
			    shapes[t].sources != shapes[s].sources)
				continue;
			printf(
			    "itrackerd %s vs 1 core: %.2fx announces/s (the load generator shares "
			    "the 2 cores)\n",
			    shapes[s].name, one_core[s] / one_core[t]);
			char name[128];
			snprintf(name, sizeof(name), "tracker %s vs 1 core", shapes[s].name);
			benchjson_append(name, one_core[s], "announces/s", one_core[t]);
		}
	}

	printf("\nRSS per stored IPv4 peer (swarms of 64, between %d and %d peers):\n",
	       RSS_PEERS_LOW, RSS_PEERS);
	if (!only || strstr("rss", only)) {
		/* per run: opentracker, itrackerd with defaults, and with the
		 * price controller off (--gateways and --max-external fixed) */
		double rss[3][MAX_RUNS];
		int got = 0;
		for (int r = 0; r < runs; r++) {
			rss[0][got] = rss_per_peer(OT);
			rss[1][got] = rss_per_peer(ITR);
			itrd_extra = " --gateways 1 --max-external 2";
			rss[2][got] = rss_per_peer(ITR);
			itrd_extra = "";
			if (rss[0][got] > 0 && rss[1][got] > 0 && rss[2][got] > 0)
				got++;
			else
				failed++;
		}
		if (got) {
			struct stat3 ot = stat_of(rss[0], got), itr = stat_of(rss[1], got),
			             off = stat_of(rss[2], got);
			printf("RSS per stored peer (min / median / max of %d runs): itrackerd "
			       "%.1f / %.1f / %.1f B, with the price controller off (--gateways 1 "
			       "--max-external 2) %.1f / %.1f / %.1f B, opentracker %.1f / %.1f / "
			       "%.1f B\n",
			       got, itr.min, itr.med, itr.max, off.min, off.med, off.max, ot.min,
			       ot.med, ot.max);
			benchjson_append("tracker_rss_per_peer", itr.med, "bytes/peer", ot.med);
			benchjson_append("tracker_rss_per_peer_no_price_controller", off.med,
			                 "bytes/peer", ot.med);
		}
	}
	load_average(load, sizeof(load));
	printf("load average after: %s\n", load);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_tracker: could not remove %s\n", tmp);
	printf("reproduce: sudo BUILD=%s %s/bench/bench_tracker%s\n", build, build,
	       quick ? " --quick" : "");
	if (failed)
		fprintf(stderr, "bench_tracker: %d measurement(s) failed (left out above)\n",
		        failed);
	return failed ? 1 : 0;
}
