/* redis_server.h - for unit tests that need a real Redis Cluster node:
 * start_redis() runs Debian's redis-server in cluster mode on a free
 * loopback port with every slot its own (one master, no replica; cmocka
 * group setup), stop_redis() kills it and removes its directory, and
 * redis_cmd() sends one command on a fresh connection.
 */
#ifndef ITR_TEST_REDIS_SERVER_H
#define ITR_TEST_REDIS_SERVER_H

#include <hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t redis_pid;
static char redis_dir[64];
static unsigned redis_port;

static redisReply *redis_cmd(const char *fmt, ...)
{
	redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
	if (!c || c->err) {
		redisFree(c);
		return NULL;
	}
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	return r;
}

/* redis-server in cluster mode on a free loopback port, every slot its own. */
static int start_redis(void **state)
{
	(void)state;
	snprintf(redis_dir, sizeof(redis_dir), "/tmp/itr-redis.XXXXXX");
	if (!mkdtemp(redis_dir))
		return -1;
	for (int attempt = 0; attempt < 20; attempt++) {
		redis_port = 20000 + (unsigned)((getpid() * 7 + attempt * 131) % 30000);
		char port[16], conf[128];
		snprintf(port, sizeof(port), "%u", redis_port);
		snprintf(conf, sizeof(conf), "%s/nodes-%u.conf", redis_dir, redis_port);
		redis_pid = fork();
		if (redis_pid == 0) {
			freopen("/dev/null", "w", stdout);
			execlp("redis-server", "redis-server", "--port", port, "--bind",
			       "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file",
			       conf, "--save", "", "--appendonly", "no", "--dir", redis_dir,
			       (char *)NULL);
			_exit(127);
		}
		for (int i = 0; i < 50; i++) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
			int status;
			if (waitpid(redis_pid, &status, WNOHANG) == redis_pid) {
				redis_pid = 0; /* the port was taken: try another */
				break;
			}
			redisReply *r = redis_cmd("CLUSTER ADDSLOTSRANGE 0 16383");
			if (!r)
				continue;
			freeReplyObject(r);
			for (int j = 0; j < 100; j++) {
				r = redis_cmd("CLUSTER INFO");
				bool ok = r && r->type == REDIS_REPLY_STRING &&
				          strstr(r->str, "cluster_state:ok");
				freeReplyObject(r);
				if (ok)
					return 0;
				nanosleep(&ts, NULL);
			}
			return -1;
		}
		/* not up in time: this one goes before the next attempt */
		if (redis_pid > 0) {
			kill(redis_pid, SIGKILL);
			waitpid(redis_pid, NULL, 0);
			redis_pid = 0;
		}
	}
	return -1;
}

static int stop_redis(void **state)
{
	(void)state;
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", redis_dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
