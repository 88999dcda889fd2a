/* bench_tcp_close.c - what the kernel's TCP work per HTTP announce on a
 * new connection could shrink to: a minimal server (accept, one recv,
 * the answer, close) whose answer goes either in a plain send, as
 * libmicrohttpd sends it (the answer, then the FIN: two segments), or
 * with MSG_MORE, so that close() puts the FIN on the answer's segment.
 * Connections per server CPU second of the two, each under itr_loadgen's
 * HTTP load (a connection per announce) in the same run, rounds
 * alternating which goes first. It measures the kernel's side only: the
 * server does no tracker work. Why it is here: docs/benchmarks.md
 * ("HTTP announce").
 *
 *   bench_tcp_close [--rounds N] [--seconds S]
 * The server runs on CPU 0, the load generator on CPU 1 (taskset); run
 * from the repository root with $BUILD/itr_loadgen built. Records go to
 * $BUILD/bench.json (benchjson.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchjson.h"
#include "benchproc.h"

#define MAX_ROUNDS 9

/* The child: serve until killed. */
static void serve(int listen_fd, bool more)
{
	static const char body[] = "d8:completei1e10:incompletei0e8:intervali1800e5:peers300:";
	char answer[1024], request[4096];
	int n = snprintf(answer, sizeof(answer),
	                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n%s",
	                 sizeof(body) - 1 + 300 + 1, body);
	memset(answer + n, 'x', 300); /* 50 compact peers' worth */
	n += 300;
	answer[n++] = 'e';
	for (;;) {
		int c = accept(listen_fd, NULL, NULL);
		if (c < 0)
			continue;
		if (recv(c, request, sizeof(request), 0) > 0 &&
		    send(c, answer, (size_t)n, MSG_NOSIGNAL | (more ? MSG_MORE : 0)) < 0)
			perror("bench_tcp_close: send");
		close(c);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One measurement: connections per server CPU second, or -1. */
static double measure(const char *build, bool more, double seconds)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("bench_tcp_close: listen");
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		cpu_set_t cpu0;
		CPU_ZERO(&cpu0);
		CPU_SET(0, &cpu0);
		sched_setaffinity(0, sizeof(cpu0), &cpu0);
		serve(fd, more);
		_exit(0);
	}
	close(fd);
	if (pid < 0)
		return -1;
	char cmd[1024], out[512];
	snprintf(cmd, sizeof(cmd),
	         "taskset -c 1 %s/itr_loadgen --mode http --target 127.0.0.1:%u --peers 20000 "
	         "--torrents 312 --numwant 50 --window 32 --seconds %.1f",
	         build, ntohs(sa.sin_port), seconds);
	double cpu0 = bench_proc_cpu_seconds(pid);
	FILE *p = popen(cmd, "r");
	unsigned long long n = 0, errors = 0;
	bool ok = p && fgets(out, sizeof(out), p) &&
	          sscanf(out, "mode %*s announces %llu seconds %*f rate %*f errors %llu", &n,
	                 &errors) == 2;
	if (p)
		pclose(p);
	double used = bench_proc_cpu_seconds(pid) - cpu0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (!ok || errors || used <= 0 || n == 0) {
		fprintf(stderr, "bench_tcp_close: no measurement (%s)\n", cmd);
		return -1;
	}
	return (double)n / used;
}

int main(int argc, char **argv)
{
	int rounds = 3;
	double seconds = 3;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_tcp_close [--rounds N] [--seconds S]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || seconds <= 0) {
		fprintf(stderr, "bench_tcp_close: --rounds 1..%d, --seconds > 0\n", MAX_ROUNDS);
		return 2;
	}
	const char *b = getenv("BUILD");
	const char *build = b && *b ? b : "build";
	double plain[MAX_ROUNDS], more[MAX_ROUNDS], ratio[MAX_ROUNDS];
	for (int r = 0; r < rounds; r++) {
		/* alternate which goes first: the machine's load drifts */
		for (int k = 0; k < 2; k++) {
			bool with_more = (k + r) % 2 == 1;
			double v = measure(build, with_more, seconds);
			if (v < 0)
				return 1;
			(with_more ? more : plain)[r] = v;
		}
		ratio[r] = more[r] / plain[r];
		printf("round %d: plain send %.0f, MSG_MORE %.0f connections/cpu-s (%.2fx)\n",
		       r + 1, plain[r], more[r], ratio[r]);
	}
	qsort(plain, (size_t)rounds, sizeof(double), cmp_double);
	qsort(more, (size_t)rounds, sizeof(double), cmp_double);
	qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
	int mid = rounds / 2;
	printf("connections per server CPU second, min / median / max of %d rounds: plain send "
	       "%.0f / %.0f / %.0f, MSG_MORE then close %.0f / %.0f / %.0f; ratio %.2f / %.2f / "
	       "%.2f\n",
	       rounds, plain[0], plain[mid], plain[rounds - 1], more[0], more[mid],
	       more[rounds - 1], ratio[0], ratio[mid], ratio[rounds - 1]);
	return benchjson_append("tcp close: answer with MSG_MORE then close, connections per cpu-s",
	                        more[mid], "conn/cpu-s", plain[mid]) == 0
	           ? 0
	           : 1;
}
