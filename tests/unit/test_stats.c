/* test_stats.c - user/stats.c against real BPF maps: per-CPU sums of the
 * counters and the matrix, config reading, entry counting, and the table and
 * JSON printers (captured through a memory stream).
 *
 * Needs root (bpf_map_create, bpffs). The test runs in a mount namespace of
 * its own with a private bpffs at /sys/fs/bpf (tests/private_bpffs.h), so it
 * needs nothing mounted beforehand and leaves nothing mounted behind.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "itracker_maps.h"
#include "private_bpffs.h"
#include "stats.h"

struct fixture {
	char dir[64];
	int ncpus;
	int counters_fd, matrix_fd, config_fd;
};

static int create_map(enum bpf_map_type type, const char *name, __u32 key_size, __u32 value_size,
                      __u32 max_entries, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd = bpf_map_create(type, name, key_size, value_size, max_entries, &opts);
	if (fd < 0)
		fprintf(stderr, "bpf_map_create(%s): %s (run as root)\n", name, strerror(errno));
	return fd;
}

static int pin(struct fixture *fx, int fd, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	if (bpf_obj_pin(fd, path) != 0) {
		fprintf(stderr, "bpf_obj_pin(%s): %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	const char *names[] = {ITR_MAP_COUNTERS, ITR_MAP_MATRIX, ITR_MAP_CONFIG};
	if (fx->dir[0]) {
		for (size_t i = 0; i < 3; i++) {
			char path[128];
			snprintf(path, sizeof(path), "%s/%s", fx->dir, names[i]);
			unlink(path);
		}
		rmdir(fx->dir);
	}
	int fds[] = {fx->counters_fd, fx->matrix_fd, fx->config_fd};
	for (size_t i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
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
	fx->counters_fd = fx->matrix_fd = fx->config_fd = -1;
	strcpy(fx->dir, "/sys/fs/bpf/itr-test-stats-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		fprintf(stderr, "mkdtemp in /sys/fs/bpf: %s\n", strerror(errno));
		fx->dir[0] = '\0';
		goto fail;
	}
	fx->ncpus = libbpf_num_possible_cpus();
	if (fx->ncpus <= 0)
		goto fail;
	fx->counters_fd = create_map(BPF_MAP_TYPE_PERCPU_ARRAY, "counters", 4,
	                             sizeof(struct itr_counter), ITR_COUNTER_SLOTS, 0);
	fx->matrix_fd =
	    create_map(BPF_MAP_TYPE_PERCPU_HASH, "matrix", sizeof(struct itr_matrix_key),
	               sizeof(struct itr_counter), 64, 0);
	fx->config_fd =
	    create_map(BPF_MAP_TYPE_ARRAY, "config", 4, sizeof(struct itr_config), 1, 0);
	if (fx->counters_fd < 0 || fx->matrix_fd < 0 || fx->config_fd < 0)
		goto fail;
	if (pin(fx, fx->counters_fd, ITR_MAP_COUNTERS) || pin(fx, fx->matrix_fd, ITR_MAP_MATRIX) ||
	    pin(fx, fx->config_fd, ITR_MAP_CONFIG))
		goto fail;
	return 0;
fail:
	teardown(state);
	*state = NULL;
	return -1;
}

/* CPU i holds (base + i) packets and (base + i) * 100 bytes, so the sum is
 * n*base + n(n-1)/2 and a reader that only looks at CPU 0 gets it wrong. */
static void put_percpu(int fd, const void *key, int ncpus, __u64 base)
{
	struct itr_counter *v = calloc((size_t)ncpus, sizeof(*v));
	assert_non_null(v);
	for (int i = 0; i < ncpus; i++) {
		v[i].packets = base + (__u64)i;
		v[i].bytes = (base + (__u64)i) * 100;
	}
	assert_int_equal(bpf_map_update_elem(fd, key, v, BPF_ANY), 0);
	free(v);
}

static __u64 expected_packets(int ncpus, __u64 base)
{
	return (__u64)ncpus * base + (__u64)ncpus * (__u64)(ncpus - 1) / 2;
}

static void fill_counters(struct fixture *fx)
{
	__u32 idx = itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE);
	put_percpu(fx->counters_fd, &idx, fx->ncpus, 10);
	idx = itr_counter_index(ITR_DIR_EGRESS, ITR_CLASS_INTRA_PID, ITR_KIND_UTP);
	put_percpu(fx->counters_fd, &idx, fx->ncpus, 30);
	idx = itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_UNKNOWN, ITR_KIND_NONE);
	put_percpu(fx->counters_fd, &idx, fx->ncpus, 1000);
}

static void test_counters_are_summed_over_cpus(void **state)
{
	struct fixture *fx = *state;
	fill_counters(fx);
	int fd = itr_stats_open_pinned(fx->dir, ITR_MAP_COUNTERS);
	assert_true(fd >= 0);
	struct itr_counter_table t;
	memset(&t, 0xff, sizeof(t));
	assert_int_equal(itr_stats_read_counters(fd, &t), 0);
	close(fd);

	__u64 p10 = expected_packets(fx->ncpus, 10), p30 = expected_packets(fx->ncpus, 30);
	__u64 p1000 = expected_packets(fx->ncpus, 1000);
	assert_int_equal(t.c[ITR_DIR_INGRESS][ITR_CLASS_INTER_AS][ITR_KIND_PEER_WIRE].packets, p10);
	assert_int_equal(t.c[ITR_DIR_INGRESS][ITR_CLASS_INTER_AS][ITR_KIND_PEER_WIRE].bytes,
	                 p10 * 100);
	assert_int_equal(t.c[ITR_DIR_EGRESS][ITR_CLASS_INTRA_PID][ITR_KIND_UTP].packets, p30);
	assert_int_equal(t.c[ITR_DIR_INGRESS][ITR_CLASS_UNKNOWN][ITR_KIND_NONE].bytes, p1000 * 100);
	assert_int_equal(t.c[ITR_DIR_EGRESS][ITR_CLASS_INTER_AS][ITR_KIND_PEER_WIRE].packets, 0);

	struct itr_counter all = itr_counter_sum(&t, -1, false);
	struct itr_counter bt = itr_counter_sum(&t, -1, true);
	struct itr_counter in = itr_counter_sum(&t, ITR_DIR_INGRESS, false);
	assert_int_equal(all.packets, p10 + p30 + p1000);
	assert_int_equal(bt.packets, p10 + p30);
	assert_int_equal(in.bytes, (p10 + p1000) * 100);

	/* inter-AS share counts BitTorrent bytes only: p10 of p10 + p30. */
	double ratio = itr_stats_inter_as_ratio(&t);
	assert_true(ratio > 0 && ratio < 1);
	assert_true(ratio * (double)(p10 + p30) > (double)p10 - 0.001);
	assert_true(ratio * (double)(p10 + p30) < (double)p10 + 0.001);
}

static void test_inter_as_ratio_undefined_without_bittorrent(void **state)
{
	(void)state;
	struct itr_counter_table t;
	memset(&t, 0, sizeof(t));
	t.c[ITR_DIR_INGRESS][ITR_CLASS_INTER_AS][ITR_KIND_NONE].bytes = 5000;
	assert_true(itr_stats_inter_as_ratio(&t) < 0);
}

static void test_matrix_summed_and_sorted(void **state)
{
	struct fixture *fx = *state;
	struct itr_matrix_key k1 = {.src_pid = 1, .dst_pid = 2};
	struct itr_matrix_key k2 = {.src_pid = 10, .dst_pid = 20};
	struct itr_matrix_key k3 = {.src_pid = 0, .dst_pid = 1};
	put_percpu(fx->matrix_fd, &k1, fx->ncpus, 5);
	put_percpu(fx->matrix_fd, &k2, fx->ncpus, 500);
	put_percpu(fx->matrix_fd, &k3, fx->ncpus, 50);

	int fd = itr_stats_open_pinned(fx->dir, ITR_MAP_MATRIX);
	assert_true(fd >= 0);
	struct itr_matrix_entry *e = NULL;
	size_t n = 0;
	assert_int_equal(itr_stats_read_matrix(fd, &e, &n), 0);
	close(fd);
	assert_int_equal(n, 3);
	assert_int_equal(e[0].src_pid, 10);
	assert_int_equal(e[0].dst_pid, 20);
	assert_int_equal(e[0].bytes, expected_packets(fx->ncpus, 500) * 100);
	assert_int_equal(e[1].src_pid, 0);
	assert_int_equal(e[2].src_pid, 1);
	assert_int_equal(e[2].packets, expected_packets(fx->ncpus, 5));

	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	itr_stats_print_matrix_json(out, e, n, 2, NULL, 0.25);
	fclose(out);
	json_error_t jerr;
	json_t *root = json_loads(buf, 0, &jerr);
	assert_non_null(root);
	assert_int_equal(json_array_size(json_object_get(root, "pairs")), 2);
	assert_int_equal(json_integer_value(json_object_get(root, "pair_count")), 3);
	json_t *first = json_array_get(json_object_get(root, "pairs"), 0);
	assert_int_equal(json_integer_value(json_object_get(first, "src_pid")), 10);
	assert_true(json_real_value(json_object_get(root, "inter_as_ratio")) == 0.25);
	json_t *second = json_array_get(json_object_get(root, "pairs"), 1);
	assert_string_equal(json_string_value(json_object_get(second, "scope")), "unknown");
	json_decref(root);
	free(buf);

	buf = NULL;
	out = open_memstream(&buf, &len);
	itr_stats_print_matrix_table(out, e, n, 0, NULL, -1);
	fclose(out);
	assert_non_null(strstr(buf, "SRC PID"));
	assert_non_null(strstr(buf, "(none)"));
	assert_non_null(strstr(buf, "3 pair(s), 3 shown"));
	assert_non_null(strstr(buf, "n/a"));
	free(buf);
	free(e);
}

static void test_empty_matrix(void **state)
{
	struct fixture *fx = *state;
	struct itr_matrix_entry *e = (void *)1;
	size_t n = 99;
	assert_int_equal(itr_stats_read_matrix(fx->matrix_fd, &e, &n), 0);
	assert_null(e);
	assert_int_equal(n, 0);
}

static void test_config_and_missing_pin(void **state)
{
	struct fixture *fx = *state;
	struct itr_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.generation = 42;
	cfg.abi_version = ITR_ABI_VERSION;
	cfg.updated_ns = 1700000000000000000ull;
	strcpy(cfg.vtag, "example-networkmap:3f2a");
	__u32 zero = 0;
	assert_int_equal(bpf_map_update_elem(fx->config_fd, &zero, &cfg, BPF_ANY), 0);

	int fd = itr_stats_open_pinned(fx->dir, ITR_MAP_CONFIG);
	assert_true(fd >= 0);
	struct itr_config got;
	assert_int_equal(itr_stats_read_config(fd, &got), 0);
	close(fd);
	assert_int_equal(got.generation, 42);
	assert_int_equal(got.abi_version, ITR_ABI_VERSION);
	assert_string_equal(got.vtag, "example-networkmap:3f2a");

	assert_int_equal(itr_stats_open_pinned(fx->dir, "no_such_map"), -ENOENT);
}

static void test_count_entries(void **state)
{
	struct fixture *fx = *state;
	uint64_t entries = 0;
	uint32_t max = 0;
	const char *type = NULL;
	assert_int_equal(itr_stats_count_entries(fx->counters_fd, &entries, &max, &type), 0);
	assert_int_equal(entries, ITR_COUNTER_SLOTS);
	assert_string_equal(type, "percpu_array");

	int lpm = create_map(BPF_MAP_TYPE_LPM_TRIE, "lpm_v4", sizeof(struct itr_lpm_v4_key),
	                     sizeof(struct itr_pid_info), 16, BPF_F_NO_PREALLOC);
	struct itr_pid_info info = {.pid = 1, .asn = 64500, .loc = 1};
	for (unsigned i = 0; i < 5; i++) {
		struct itr_lpm_v4_key k = {.prefixlen = 24, .addr = {10, 10, (__u8)i, 0}};
		assert_int_equal(bpf_map_update_elem(lpm, &k, &info, BPF_ANY), 0);
	}
	assert_int_equal(itr_stats_count_entries(lpm, &entries, &max, &type), 0);
	assert_int_equal(entries, 5);
	assert_int_equal(max, 16);
	assert_string_equal(type, "lpm_trie");
	close(lpm);

	struct itr_matrix_key k = {.src_pid = 3, .dst_pid = 4};
	put_percpu(fx->matrix_fd, &k, fx->ncpus, 1);
	assert_int_equal(itr_stats_count_entries(fx->matrix_fd, &entries, NULL, &type), 0);
	assert_int_equal(entries, 1);
	assert_string_equal(type, "percpu_hash");
}

static void test_table_and_json_output(void **state)
{
	struct fixture *fx = *state;
	fill_counters(fx);
	struct itr_counter_table t;
	assert_int_equal(itr_stats_read_counters(fx->counters_fd, &t), 0);

	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	itr_stats_print_table(out, &t, false);
	fclose(out);
	/* header + 3 non-empty rows + bittorrent + total + ratio line */
	int lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 7);
	assert_non_null(strstr(buf, "inter_as   peer_wire"));
	assert_non_null(strstr(buf, "intra_pid  utp"));
	assert_null(strstr(buf, "intra_loc"));
	/* Columns line up: every row is as wide as the header. */
	size_t header = (size_t)(strchr(buf, '\n') - buf);
	char *row = strchr(buf, '\n') + 1;
	assert_int_equal((size_t)(strchr(row, '\n') - row), header);
	free(buf);

	buf = NULL;
	out = open_memstream(&buf, &len);
	itr_stats_print_json(out, &t);
	fclose(out);
	json_error_t jerr;
	json_t *root = json_loads(buf, 0, &jerr);
	assert_non_null(root);
	json_t *pw = json_object_get(json_object_get(json_object_get(root, "ingress"), "inter_as"),
	                             "peer_wire");
	assert_int_equal(json_integer_value(json_object_get(pw, "packets")),
	                 expected_packets(fx->ncpus, 10));
	json_t *total = json_object_get(root, "total");
	assert_int_equal(json_integer_value(json_object_get(total, "packets")),
	                 expected_packets(fx->ncpus, 10) + expected_packets(fx->ncpus, 30) +
	                     expected_packets(fx->ncpus, 1000));
	assert_true(json_is_real(json_object_get(root, "inter_as_ratio")));
	json_decref(root);
	free(buf);
}

static void test_rates(void **state)
{
	(void)state;
	struct itr_counter_table a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.c[ITR_DIR_INGRESS][ITR_CLASS_INTRA_AS][ITR_KIND_DHT] = (struct itr_counter){100, 10000};
	b.c[ITR_DIR_INGRESS][ITR_CLASS_INTRA_AS][ITR_KIND_DHT] = (struct itr_counter){300, 30480};
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	itr_stats_print_rates(out, &a, &b, 2.0, true);
	fclose(out);
	json_error_t jerr;
	json_t *root = json_loads(buf, 0, &jerr);
	assert_non_null(root);
	json_t *dht =
	    json_object_get(json_object_get(json_object_get(root, "ingress"), "intra_as"), "dht");
	assert_true(json_real_value(json_object_get(dht, "packets_per_second")) == 100.0);
	assert_true(json_real_value(json_object_get(dht, "bytes_per_second")) == 10240.0);
	json_decref(root);
	free(buf);

	buf = NULL;
	out = open_memstream(&buf, &len);
	itr_stats_print_rates(out, &a, &b, 2.0, false);
	fclose(out);
	assert_non_null(strstr(buf, "10.00 KiB/s"));
	free(buf);
}

static void test_formatting(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(itr_format_bytes(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(itr_format_bytes(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(itr_format_bytes(1536, buf, sizeof(buf)), "1.50 KiB");
	assert_string_equal(itr_format_bytes(5ull << 30, buf, sizeof(buf)), "5.00 GiB");
	assert_string_equal(itr_format_count(999, buf, sizeof(buf)), "999");
	assert_string_equal(itr_format_count(1500, buf, sizeof(buf)), "1.50 k");
	assert_string_equal(itr_format_count(2500000, buf, sizeof(buf)), "2.50 M");
	assert_string_equal(itr_class_name(ITR_CLASS_INTRA_LOC), "intra_loc");
	assert_string_equal(itr_kind_name(ITR_KIND_UDP_TRACKER), "udp_tracker");
	assert_string_equal(itr_dir_name(ITR_DIR_EGRESS), "egress");
	assert_string_equal(itr_kind_name(ITR_KIND_MAX), "invalid");
}

int main(void)
{
	if (itr_test_private_bpffs() != 0)
		return 1; /* never skip: CI runs as root */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counters_are_summed_over_cpus, setup, teardown),
	    cmocka_unit_test(test_inter_as_ratio_undefined_without_bittorrent),
	    cmocka_unit_test_setup_teardown(test_matrix_summed_and_sorted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_matrix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_and_missing_pin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_count_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table_and_json_output, setup, teardown),
	    cmocka_unit_test(test_rates),
	    cmocka_unit_test(test_formatting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
