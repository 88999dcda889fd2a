/* test_metrics.c - user/metrics.c: one scrape rendered from real pinned maps
 * (per-CPU values summed), the callbacks' figures, the exposition format's
 * rules (HELP and TYPE before every family's samples, label escaping), the
 * "data plane down" case, and GET /metrics through the real HTTP server.
 *
 * Needs root (bpf_map_create, bpffs). The test runs in a mount namespace of
 * its own with a private bpffs at /sys/fs/bpf (tests/private_bpffs.h), so it
 * needs nothing mounted beforehand and leaves nothing mounted behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "http.h"
#include "itracker_maps.h"
#include "metrics.h"
#include "private_bpffs.h"

struct fixture {
	char dir[64];
	int ncpus;
	int fds[3];
};

static const char *const pin_names[3] = {ITR_MAP_COUNTERS, ITR_MAP_MATRIX, ITR_MAP_CONFIG};

static int teardown(void **state)
{
	struct fixture *fx = *state;
	for (int i = 0; i < 3; i++) {
		if (fx->dir[0]) {
			char path[128];
			snprintf(path, sizeof(path), "%s/%s", fx->dir, pin_names[i]);
			unlink(path);
		}
		if (fx->fds[i] >= 0)
			close(fx->fds[i]);
	}
	if (fx->dir[0])
		rmdir(fx->dir);
	free(fx);
	return 0;
}

/* A failed setup returns instead of failing an assertion: cmocka runs no
 * teardown after a failed setup, so setup must release what it made. */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	*state = fx;
	fx->fds[0] = fx->fds[1] = fx->fds[2] = -1;
	strcpy(fx->dir, "/sys/fs/bpf/itr-test-metrics-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		fprintf(stderr, "mkdtemp in /sys/fs/bpf: %s\n", strerror(errno));
		fx->dir[0] = '\0';
		goto fail;
	}
	fx->ncpus = libbpf_num_possible_cpus();
	fx->fds[0] = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "counters", 4,
	                            sizeof(struct itr_counter), ITR_COUNTER_SLOTS, NULL);
	fx->fds[1] =
	    bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "matrix", sizeof(struct itr_matrix_key),
	                   sizeof(struct itr_counter), 128, NULL);
	fx->fds[2] =
	    bpf_map_create(BPF_MAP_TYPE_ARRAY, "config", 4, sizeof(struct itr_config), 1, NULL);
	for (int i = 0; i < 3; i++) {
		if (fx->fds[i] < 0) {
			fprintf(stderr, "bpf_map_create: %s (run as root)\n", strerror(errno));
			goto fail;
		}
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", fx->dir, pin_names[i]);
		if (bpf_obj_pin(fx->fds[i], path) != 0) {
			fprintf(stderr, "bpf_obj_pin(%s): %s\n", path, strerror(errno));
			goto fail;
		}
	}
	return 0;
fail:
	teardown(state);
	*state = NULL;
	return -1;
}

/* Every CPU holds the same value: the scrape must show ncpus times it. */
static void put_percpu(int fd, const void *key, int ncpus, __u64 packets, __u64 bytes)
{
	struct itr_counter *v = calloc((size_t)ncpus, sizeof(*v));
	for (int i = 0; i < ncpus; i++)
		v[i] = (struct itr_counter){packets, bytes};
	assert_int_equal(bpf_map_update_elem(fd, key, v, BPF_ANY), 0);
	free(v);
}

static void tracker_figures(void *arg, struct itr_metrics_tracker *out)
{
	int *calls = arg;
	(*calls)++;
	out->torrents = 3;
	out->peers = 41;
	out->announces[ITR_METRICS_PROTO_HTTP][ITR_METRICS_ANNOUNCE_OK] = 100;
	out->announces[ITR_METRICS_PROTO_UDP][ITR_METRICS_ANNOUNCE_REJECTED] = 7;
}

static void reload_figures(void *arg, struct itr_metrics_reloads *out)
{
	(void)arg;
	out->count[ITR_METRICS_RELOAD_OK] = 4;
	out->count[ITR_METRICS_RELOAD_REJECTED] = 1;
	out->last_success_unix_seconds = 1700000000.5;
}

static char *scrape(const struct itr_metrics_sources *src)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	assert_non_null(out);
	assert_int_equal(itr_metrics_render(src, out), 0);
	fclose(out);
	return buf;
}

static void assert_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return;
	fail_msg("no line '%s' in:\n%s", line, text);
}

/* Every sample's family was introduced by HELP and TYPE lines, once. */
static void assert_well_formed(const char *text)
{
	char current[128] = "";
	const char *line = text;
	while (*line) {
		const char *eol = strchr(line, '\n');
		assert_non_null(eol); /* the format ends every line with \n */
		char name[128];
		if (sscanf(line, "# HELP %127s", name) == 1) {
			assert_string_not_equal(name, current);
			char type_line[200];
			int n = snprintf(type_line, sizeof(type_line), "# TYPE %s ", name);
			assert_memory_equal(eol + 1, type_line, (size_t)n);
			strcpy(current, name);
		} else if (line[0] != '#') {
			size_t len = strcspn(line, "{ ");
			assert_true(len == strlen(current) && strncmp(line, current, len) == 0);
		}
		line = eol + 1;
	}
}

static void test_scrape_from_pinned_maps(void **state)
{
	struct fixture *fx = *state;
	__u32 idx = itr_counter_index(ITR_DIR_EGRESS, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE);
	put_percpu(fx->fds[0], &idx, fx->ncpus, 10, 3000);
	idx = itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTRA_PID, ITR_KIND_UTP);
	put_percpu(fx->fds[0], &idx, fx->ncpus, 10, 1000);
	struct itr_matrix_key mk = {.src_pid = 1, .dst_pid = 11};
	put_percpu(fx->fds[1], &mk, fx->ncpus, 2, 500);
	mk = (struct itr_matrix_key){.src_pid = 2, .dst_pid = 3};
	put_percpu(fx->fds[1], &mk, fx->ncpus, 1, 100);
	struct itr_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.generation = 9;
	cfg.abi_version = ITR_ABI_VERSION;
	cfg.updated_ns = 1700000000000000000ull;
	strcpy(cfg.vtag, "map\"v\\2");
	__u32 zero = 0;
	assert_int_equal(bpf_map_update_elem(fx->fds[2], &zero, &cfg, BPF_ANY), 0);

	int calls = 0;
	struct itr_metrics_sources src = {
	    .pin_root = fx->dir,
	    .matrix_top = 1,
	    .tracker = tracker_figures,
	    .tracker_arg = &calls,
	    .reloads = reload_figures,
	};
	char *text = scrape(&src);
	assert_well_formed(text);
	assert_int_equal(calls, 1);
	char line[256];
	assert_has_line(text, "itracker_dataplane_up 1");
	snprintf(
	    line, sizeof(line),
	    "itracker_bytes_total{direction=\"egress\",class=\"inter_as\",kind=\"peer_wire\"} %d",
	    3000 * fx->ncpus);
	assert_has_line(text, line);
	snprintf(
	    line, sizeof(line),
	    "itracker_packets_total{direction=\"ingress\",class=\"intra_pid\",kind=\"utp\"} %d",
	    10 * fx->ncpus);
	assert_has_line(text, line);
	assert_has_line(
	    text,
	    "itracker_packets_total{direction=\"ingress\",class=\"unknown\",kind=\"none\"} 0");
	/* 3000 of 4000 BitTorrent bytes crossed an AS border. */
	assert_has_line(text, "itracker_inter_as_bytes_ratio 0.75");
	/* top 1 of 2 pairs: only the larger one is exported. */
	assert_has_line(text, "itracker_matrix_pairs 2");
	snprintf(line, sizeof(line), "itracker_matrix_bytes_total{src_pid=\"1\",dst_pid=\"11\"} %d",
	         500 * fx->ncpus);
	assert_has_line(text, line);
	assert_null(strstr(text, "src_pid=\"2\""));
	assert_has_line(text, "itracker_netmap_generation 9");
	assert_has_line(text, "itracker_netmap_info{vtag=\"map\\\"v\\\\2\"} 1");
	assert_has_line(text, "itracker_netmap_updated_timestamp_seconds 1700000000");
	assert_has_line(text, "itracker_tracker_torrents 3");
	assert_has_line(text, "itracker_tracker_peers 41");
	assert_has_line(text,
	                "itracker_tracker_announces_total{protocol=\"http\",outcome=\"ok\"} 100");
	assert_has_line(
	    text, "itracker_tracker_announces_total{protocol=\"udp\",outcome=\"rejected\"} 7");
	assert_has_line(text, "itracker_netmap_reloads_total{outcome=\"ok\"} 4");
	assert_has_line(text, "itracker_netmap_reloads_total{outcome=\"rejected\"} 1");
	assert_has_line(text, "itracker_netmap_last_reload_success_timestamp_seconds 1700000000.5");
	assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
	assert_non_null(strstr(text, "\nprocess_cpu_seconds_total "));
	assert_non_null(strstr(text, "\nprocess_start_time_seconds "));
	assert_non_null(strstr(text, "\nprocess_open_fds "));
	free(text);
}

static void test_dataplane_down(void **state)
{
	(void)state;
	struct itr_metrics_sources src = {.pin_root = "/sys/fs/bpf/itr-test-metrics-absent"};
	char *text = scrape(&src);
	assert_well_formed(text);
	assert_has_line(text, "itracker_dataplane_up 0");
	assert_null(strstr(text, "itracker_packets_total"));
	assert_null(strstr(text, "itracker_tracker_")); /* no callback, no figures */
	assert_non_null(strstr(text, "process_open_fds"));
	free(text);
}

static void test_ratio_is_nan_without_bittorrent(void **state)
{
	struct fixture *fx = *state;
	__u32 idx = itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_NONE);
	put_percpu(fx->fds[0], &idx, fx->ncpus, 1, 60);
	struct itr_metrics_sources src = {.pin_root = fx->dir};
	char *text = scrape(&src);
	assert_has_line(text, "itracker_inter_as_bytes_ratio NaN");
	free(text);
}

static void test_served_over_http(void **state)
{
	struct fixture *fx = *state;
	struct itr_http_limits limits = {
	    .max_body = 1024, .max_query = 1024, .max_connections = 4, .connection_timeout_s = 5};
	struct itr_http_server *srv = itr_http_new(&limits);
	assert_non_null(srv);
	/* The sources are copied: the caller's struct may go away. */
	char *root = strdup(fx->dir);
	struct itr_metrics_sources *src = calloc(1, sizeof(*src));
	src->pin_root = root;
	assert_int_equal(itr_metrics_register(srv, src), 0);
	free(root);
	free(src);
	char err[256];
	assert_int_equal(itr_http_start(srv, "127.0.0.1", 0, err, sizeof(err)), 0);

	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(itr_http_port(srv))};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	assert_int_equal(write(s, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	ssize_t n;
	while ((n = read(s, buf + len, cap - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(s);
	itr_http_free(srv);
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	assert_non_null(strstr(buf, "text/plain; version=0.0.4"));
	assert_non_null(strstr(buf, "\nitracker_dataplane_up 1\n"));
	free(buf);
}

int main(void)
{
	if (itr_test_private_bpffs() != 0)
		return 1; /* never skip: CI runs as root */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_scrape_from_pinned_maps, setup, teardown),
	    cmocka_unit_test(test_dataplane_down),
	    cmocka_unit_test_setup_teardown(test_ratio_is_nan_without_bittorrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_served_over_http, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
