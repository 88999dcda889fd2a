/* metrics.h - the Prometheus /metrics endpoint (text exposition format 0.0.4).
 *
 * Data plane figures are read from the pinned maps on every scrape (so they
 * survive daemon restarts and map re-creation); tracker and reload figures
 * come from callbacks the daemon supplies; process figures from /proc.
 */
#ifndef ITR_METRICS_H
#define ITR_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct itr_http_server;

/* Matrix pairs exported per scrape when sources->matrix_top is 0. */
#define ITR_METRICS_MATRIX_TOP_DEFAULT 50

enum itr_metrics_protocol {
	ITR_METRICS_PROTO_HTTP = 0, /* BEP 3 announce over HTTP */
	ITR_METRICS_PROTO_UDP = 1,  /* BEP 15 */
	ITR_METRICS_PROTO_MAX = 2,
};

enum itr_metrics_announce_outcome {
	ITR_METRICS_ANNOUNCE_OK = 0,       /* answered with peers */
	ITR_METRICS_ANNOUNCE_REJECTED = 1, /* bad request: failure reason / UDP error sent */
	ITR_METRICS_ANNOUNCE_ERROR = 2,    /* our fault: out of memory, upstream failed */
	ITR_METRICS_ANNOUNCE_MAX = 3,
};

#define ITR_METRICS_REFUSED_MAX 8

/* Filled by the tracker callback; counters are cumulative since start. */
struct itr_metrics_tracker {
	uint64_t torrents; /* swarms currently held */
	uint64_t peers;    /* peers currently held, over all swarms */
	uint64_t announces[ITR_METRICS_PROTO_MAX][ITR_METRICS_ANNOUNCE_MAX];
	/* Announces refused or peers not stored, by reason (label values
	 * from the tracker: "rate", "source_peers", ...); nrefused in use. */
	size_t nrefused;
	const char *refused_reason[ITR_METRICS_REFUSED_MAX];
	uint64_t refused[ITR_METRICS_REFUSED_MAX];
	uint64_t evicted_torrents; /* swarms evicted at a global limit */
	uint64_t sources;          /* source addresses tracked for quotas */
	uint64_t sources_evicted;  /* pushed out of the bounded source table */
};

enum itr_metrics_reload_outcome {
	ITR_METRICS_RELOAD_OK = 0,       /* new map validated and synced */
	ITR_METRICS_RELOAD_REJECTED = 1, /* validation failed, old map kept */
	ITR_METRICS_RELOAD_FAILED = 2,   /* valid map but the kernel sync failed */
	ITR_METRICS_RELOAD_MAX = 3,
};

/* Filled by the reloads callback. */
struct itr_metrics_reloads {
	uint64_t count[ITR_METRICS_RELOAD_MAX];
	double last_success_unix_seconds; /* 0 if no reload succeeded yet */
};

/* What a scrape reads. itr_metrics_register copies it (pin_root too); the
 * callback args must stay valid while the server runs. Callbacks are called
 * from HTTP worker threads and must be thread safe; a NULL callback leaves
 * its metrics out. */
struct itr_metrics_sources {
	const char *pin_root; /* NULL: ITR_PIN_ROOT_DEFAULT */
	size_t matrix_top;    /* 0: ITR_METRICS_MATRIX_TOP_DEFAULT */
	void (*tracker)(void *arg, struct itr_metrics_tracker *out);
	void *tracker_arg;
	void (*reloads)(void *arg, struct itr_metrics_reloads *out);
	void *reloads_arg;
	/* Writes further complete metric families (the price controller's). */
	int (*extra)(void *arg, FILE *out);
	void *extra_arg;
};

/* Route GET /metrics on srv (before it starts). 0 or -1. */
int itr_metrics_register(struct itr_http_server *srv, const struct itr_metrics_sources *sources);

/* Write one scrape to out (what the handler serves). 0 or -1 on a write
 * error. Absent pinned maps are not an error: itracker_dataplane_up is 0. */
int itr_metrics_render(const struct itr_metrics_sources *sources, FILE *out);

/* Fields 14, 15 and 22 of /proc/PID/stat (pid 0: this process): user and
 * system CPU time and the start time after boot, in clock ticks. The
 * process_* metrics come from here, and the benchmarks read servers' CPU
 * time with it. 0, or -1 if the file cannot be read or parsed. */
int itr_proc_stat(pid_t pid, unsigned long long *utime, unsigned long long *stime,
                  unsigned long long *starttime);

/* The content type of the exposition format. */
#define ITR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
