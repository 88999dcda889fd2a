/* metrics.c - render the Prometheus text exposition (format 0.0.4) for
 * GET /metrics: data plane counters and matrix from the pinned maps, the
 * network map's generation and vtag, tracker and reload figures from the
 * daemon's callbacks, and the standard process_* figures from /proc.
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http.h"
#include "itracker_maps.h"
#include "stats.h"

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void label_value(FILE *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", out);
		else if (*p == '"')
			fputs("\\\"", out);
		else if (*p == '\n')
			fputs("\\n", out);
		else
			fputc(*p, out);
	}
}

static void sample_double(FILE *out, double v)
{
	if (isnan(v))
		fputs("NaN\n", out);
	else
		fprintf(out, "%.17g\n", v);
}

static void render_counters(FILE *out, const struct itr_counter_table *t)
{
	static const struct {
		const char *name, *help;
		bool bytes;
	} fams[] = {
	    {"itracker_packets_total",
	     "Packets seen by the data plane, by hook direction, locality class and "
	     "BitTorrent kind.",
	     false},
	    {"itracker_bytes_total",
	     "Bytes (L2 frame length) seen by the data plane, by hook direction, locality "
	     "class and BitTorrent kind.",
	     true},
	};
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(out, fams[f].name, "counter", fams[f].help);
		for (unsigned d = 0; d < ITR_DIR_MAX; d++)
			for (unsigned c = 0; c < ITR_CLASS_MAX; c++)
				for (unsigned k = 0; k < ITR_KIND_MAX; k++) {
					const struct itr_counter *v = &t->c[d][c][k];
					fprintf(
					    out,
					    "%s{direction=\"%s\",class=\"%s\",kind=\"%s\"} %llu\n",
					    fams[f].name, itr_dir_name(d), itr_class_name(c),
					    itr_kind_name(k),
					    (unsigned long long)(fams[f].bytes ? v->bytes
					                                       : v->packets));
				}
	}
	double ratio = itr_stats_inter_as_ratio(t);
	family(out, "itracker_inter_as_bytes_ratio", "gauge",
	       "Share of BitTorrent bytes (both directions) classified inter-AS; NaN before any "
	       "BitTorrent byte was counted.");
	fputs("itracker_inter_as_bytes_ratio ", out);
	sample_double(out, ratio < 0 ? NAN : ratio);
}

static void render_matrix(FILE *out, const struct itr_matrix_entry *e, size_t n, size_t top)
{
	family(out, "itracker_matrix_pairs", "gauge",
	       "PID pairs present in the traffic matrix (only the largest are exported).");
	fprintf(out, "itracker_matrix_pairs %zu\n", n);
	family(out, "itracker_matrix_bytes_total", "counter",
	       "BitTorrent bytes from source PID to destination PID (0: no PID), largest pairs "
	       "only.");
	size_t shown = n < top ? n : top;
	for (size_t i = 0; i < shown; i++)
		fprintf(out, "itracker_matrix_bytes_total{src_pid=\"%u\",dst_pid=\"%u\"} %llu\n",
		        e[i].src_pid, e[i].dst_pid, (unsigned long long)e[i].bytes);
}

static void render_config(FILE *out, const struct itr_config *cfg)
{
	family(out, "itracker_netmap_generation", "gauge",
	       "Generation of the network map in the kernel, bumped on every map change.");
	fprintf(out, "itracker_netmap_generation %llu\n", (unsigned long long)cfg->generation);
	family(out, "itracker_netmap_info", "gauge",
	       "Version tag of the network map in the kernel (value is always 1).");
	fputs("itracker_netmap_info{vtag=\"", out);
	label_value(out, cfg->vtag);
	fputs("\"} 1\n", out);
	family(out, "itracker_netmap_updated_timestamp_seconds", "gauge",
	       "Unix time of the last network map change in the kernel.");
	fputs("itracker_netmap_updated_timestamp_seconds ", out);
	sample_double(out, (double)cfg->updated_ns / 1e9);
}

/* Reads every pinned map it needs; any that is missing makes the data plane
 * "down" for this scrape and its figures are left out rather than zeroed,
 * so a rate() over a restart does not see a fake reset. */
static void render_dataplane(FILE *out, const struct itr_metrics_sources *src)
{
	const char *root = src->pin_root ? src->pin_root : ITR_PIN_ROOT_DEFAULT;
	size_t top = src->matrix_top ? src->matrix_top : ITR_METRICS_MATRIX_TOP_DEFAULT;
	int counters_fd = itr_stats_open_pinned(root, ITR_MAP_COUNTERS);
	/* Without the fold, the matrix is only up to ITR_FOLD_PERIOD_MS late. */
	itr_stats_fold_pinned(root);
	int matrix_fd = itr_stats_open_pinned(root, ITR_MAP_MATRIX);
	int config_fd = itr_stats_open_pinned(root, ITR_MAP_CONFIG);
	struct itr_counter_table *table = calloc(1, sizeof(*table));
	struct itr_matrix_entry *entries = NULL;
	size_t n = 0;
	struct itr_config cfg;
	bool up = counters_fd >= 0 && matrix_fd >= 0 && config_fd >= 0 && table &&
	          itr_stats_read_counters(counters_fd, table) == 0 &&
	          itr_stats_read_matrix(matrix_fd, &entries, &n) == 0 &&
	          itr_stats_read_config(config_fd, &cfg) == 0;

	family(out, "itracker_dataplane_up", "gauge",
	       "1 if the pinned data plane maps could be read, else 0.");
	fprintf(out, "itracker_dataplane_up %d\n", up ? 1 : 0);
	if (up) {
		render_counters(out, table);
		render_matrix(out, entries, n, top);
		render_config(out, &cfg);
	}
	free(entries);
	free(table);
	if (counters_fd >= 0)
		close(counters_fd);
	if (matrix_fd >= 0)
		close(matrix_fd);
	if (config_fd >= 0)
		close(config_fd);
}

static void render_tracker(FILE *out, const struct itr_metrics_sources *src)
{
	static const char *const protocols[ITR_METRICS_PROTO_MAX] = {"http", "udp"};
	static const char *const outcomes[ITR_METRICS_ANNOUNCE_MAX] = {"ok", "rejected", "error"};
	struct itr_metrics_tracker t;
	memset(&t, 0, sizeof(t));
	src->tracker(src->tracker_arg, &t);
	family(out, "itracker_tracker_torrents", "gauge", "Torrents (swarms) the tracker holds.");
	fprintf(out, "itracker_tracker_torrents %llu\n", (unsigned long long)t.torrents);
	family(out, "itracker_tracker_peers", "gauge", "Peers the tracker holds, all swarms.");
	fprintf(out, "itracker_tracker_peers %llu\n", (unsigned long long)t.peers);
	family(out, "itracker_tracker_announces_total", "counter",
	       "Announces handled, by protocol and outcome.");
	for (unsigned p = 0; p < ITR_METRICS_PROTO_MAX; p++)
		for (unsigned o = 0; o < ITR_METRICS_ANNOUNCE_MAX; o++)
			fprintf(out,
			        "itracker_tracker_announces_total{protocol=\"%s\",outcome=\"%s\"} "
			        "%llu\n",
			        protocols[p], outcomes[o], (unsigned long long)t.announces[p][o]);
	if (t.nrefused) {
		family(out, "itracker_tracker_refused_total", "counter",
		       "Announces refused (address, rate) or peers not stored (source and "
		       "global limits), by reason.");
		for (size_t r = 0; r < t.nrefused && r < ITR_METRICS_REFUSED_MAX; r++)
			fprintf(out, "itracker_tracker_refused_total{reason=\"%s\"} %llu\n",
			        t.refused_reason[r], (unsigned long long)t.refused[r]);
	}
	family(out, "itracker_tracker_evicted_torrents_total", "counter",
	       "Swarms evicted to make room at the global torrent or peer limit.");
	fprintf(out, "itracker_tracker_evicted_torrents_total %llu\n",
	        (unsigned long long)t.evicted_torrents);
	family(out, "itracker_tracker_sources", "gauge",
	       "Source addresses in the bounded quota table.");
	fprintf(out, "itracker_tracker_sources %llu\n", (unsigned long long)t.sources);
	family(out, "itracker_tracker_sources_evicted_total", "counter",
	       "Source addresses pushed out of the quota table by newer ones.");
	fprintf(out, "itracker_tracker_sources_evicted_total %llu\n",
	        (unsigned long long)t.sources_evicted);
}

static void render_reloads(FILE *out, const struct itr_metrics_sources *src)
{
	static const char *const outcomes[ITR_METRICS_RELOAD_MAX] = {"ok", "rejected", "failed"};
	struct itr_metrics_reloads r;
	memset(&r, 0, sizeof(r));
	src->reloads(src->reloads_arg, &r);
	family(out, "itracker_netmap_reloads_total", "counter",
	       "Network map reloads by outcome (rejected: invalid map, old map kept).");
	for (unsigned o = 0; o < ITR_METRICS_RELOAD_MAX; o++)
		fprintf(out, "itracker_netmap_reloads_total{outcome=\"%s\"} %llu\n", outcomes[o],
		        (unsigned long long)r.count[o]);
	family(out, "itracker_netmap_last_reload_success_timestamp_seconds", "gauge",
	       "Unix time of the last successful reload, 0 if none yet.");
	fputs("itracker_netmap_last_reload_success_timestamp_seconds ", out);
	sample_double(out, r.last_success_unix_seconds);
}

/* /proc/PID/stat: fields after the parenthesised command name, which may
 * itself contain spaces and parentheses, so parse from the last ')'. */
int itr_proc_stat(pid_t pid, unsigned long long *utime, unsigned long long *stime,
                  unsigned long long *starttime)
{
	char buf[2048], path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/stat");
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* p+2 is field 3 (state); utime is field 14, stime 15, starttime 22. */
	p += 2;
	unsigned long long v[20];
	int field = 3, got = 0;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok && field <= 22;
	     tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 14 || field == 15 || field == 22)
			v[got++] = strtoull(tok, NULL, 10);
	}
	if (got != 3)
		return -1;
	*utime = v[0];
	*stime = v[1];
	*starttime = v[2];
	return 0;
}

static long long boot_time_seconds(void)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return -1;
	char line[256];
	long long btime = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	return btime;
}

static long long resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	if (!f)
		return -1;
	unsigned long long size, resident;
	int got = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	if (got != 2)
		return -1;
	return (long long)(resident * (unsigned long long)sysconf(_SC_PAGESIZE));
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	long n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

static void render_process(FILE *out)
{
	long ticks = sysconf(_SC_CLK_TCK);
	unsigned long long ut, st, start;
	if (ticks > 0 && itr_proc_stat(0, &ut, &st, &start) == 0) {
		family(out, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.");
		fputs("process_cpu_seconds_total ", out);
		sample_double(out, (double)(ut + st) / (double)ticks);
		long long btime = boot_time_seconds();
		if (btime >= 0) {
			family(out, "process_start_time_seconds", "gauge",
			       "Start time of the process since unix epoch in seconds.");
			fputs("process_start_time_seconds ", out);
			sample_double(out, (double)btime + (double)start / (double)ticks);
		}
	}
	long long rss = resident_bytes();
	if (rss >= 0) {
		family(out, "process_resident_memory_bytes", "gauge",
		       "Resident memory size in bytes.");
		fprintf(out, "process_resident_memory_bytes %lld\n", rss);
	}
	long fds = open_fds();
	if (fds >= 0) {
		family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
		fprintf(out, "process_open_fds %ld\n", fds);
	}
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
		family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		fprintf(out, "process_max_fds %llu\n", (unsigned long long)lim.rlim_cur);
	}
}

int itr_metrics_render(const struct itr_metrics_sources *sources, FILE *out)
{
	render_dataplane(out, sources);
	if (sources->reloads)
		render_reloads(out, sources);
	if (sources->tracker)
		render_tracker(out, sources);
	if (sources->extra && sources->extra(sources->extra_arg, out))
		return -1;
	render_process(out);
	fflush(out);
	return ferror(out) ? -1 : 0;
}

static void metrics_handler(const struct itr_http_request *req, struct itr_http_response *resp,
                            void *arg)
{
	(void)req;
	const struct itr_metrics_sources *sources = arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (!out) {
		itr_http_set_body(resp, 500, "text/plain", strdup("out of memory\n"),
		                  strlen("out of memory\n"));
		return;
	}
	int rc = itr_metrics_render(sources, out);
	if (fclose(out) != 0 || rc != 0) {
		free(buf);
		itr_http_set_body(resp, 500, "text/plain", strdup("metrics rendering failed\n"),
		                  strlen("metrics rendering failed\n"));
		return;
	}
	itr_http_set_body(resp, 200, ITR_METRICS_CONTENT_TYPE, buf, len);
}

static void sources_free(void *ptr)
{
	struct itr_metrics_sources *copy = ptr;
	free((char *)copy->pin_root);
	free(copy);
}

int itr_metrics_register(struct itr_http_server *srv, const struct itr_metrics_sources *sources)
{
	if (!srv || !sources)
		return -1;
	struct itr_metrics_sources *copy = malloc(sizeof(*copy));
	if (!copy)
		return -1;
	*copy = *sources;
	copy->pin_root = strdup(sources->pin_root ? sources->pin_root : ITR_PIN_ROOT_DEFAULT);
	if (!copy->pin_root || itr_http_attach(srv, copy, sources_free) < 0) {
		sources_free(copy);
		return -1;
	}
	return itr_http_route(srv, "GET", "/metrics", metrics_handler, copy) == 0 ? 0 : -1;
}
