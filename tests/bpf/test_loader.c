/* test_loader.c - the data plane loader against the real kernel (root):
 * pinning under a private root, adoption of pinned maps by a second open
 * (counters survive), refusal of a pinned map with another layout and of a
 * foreign ABI version, the upgrade of the previous ABI's flow caches, purge, and clear errors for
 * bad interfaces. Attaching to interfaces is covered by the e2e tests (it needs a veth pair).
 *
 * It runs in a mount namespace of its own where nothing is mounted at
 * /sys/fs/bpf (tests/private_bpffs.h), as on a fresh machine: the loader
 * must mount the bpffs itself, and that mount ends with the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "private_bpffs.h"

static char root[128];

static int setup(void **state)
{
	char err[512];
	(void)state;
	snprintf(root, sizeof(root), "/sys/fs/bpf/itr-test-loader-%d", getpid());
	if (itr_ensure_bpffs(root, err, sizeof(err))) {
		fprintf(stderr, "cannot prepare %s: %s (this test needs root)\n", root, err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char err[512];
	(void)state;
	itr_dataplane_purge(root, err, sizeof(err));
	rmdir(root);
	return 0;
}

static struct itr_dataplane *open_dp(char *err, size_t len)
{
	struct itr_loader_opts o = {.pin_root = root};
	return itr_dataplane_open(&o, err, len);
}

static bool pinned(const char *name)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", root, name);
	return stat(path, &st) == 0;
}

static void test_pins_and_adopts(void **state)
{
	char err[512] = "";
	(void)state;
	struct itr_dataplane *dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	assert_false(dp->maps_adopted);
	const char *names[] = {ITR_MAP_LPM_V4, ITR_MAP_LPM_V6,    ITR_MAP_FLOWS_V4,
	                       ITR_MAP_FLOWS,  ITR_MAP_ENDPOINTS, ITR_MAP_COUNTERS,
	                       ITR_MAP_MATRIX, ITR_MAP_POLICY,    ITR_MAP_CONFIG};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_true(pinned(names[i]));

	/* Leave a mark in the counters and the generation. */
	int ncpu = libbpf_num_possible_cpus();
	struct itr_counter *vals = calloc((size_t)ncpu, sizeof(*vals));
	vals[0].packets = 42;
	vals[0].bytes = 4200;
	__u32 slot = itr_counter_index(ITR_DIR_INGRESS, ITR_CLASS_INTER_AS, ITR_KIND_PEER_WIRE);
	assert_int_equal(bpf_map_update_elem(dp->fd_counters, &slot, vals, BPF_ANY), 0);
	uint64_t gen = 0;
	assert_int_equal(itr_dataplane_bump_generation(dp, "vtag-one", &gen), 0);
	assert_int_equal(gen, 1);
	itr_dataplane_close(dp, false);

	/* A second open adopts: same counters, same generation and vtag. */
	dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	assert_true(dp->maps_adopted);
	memset(vals, 0, (size_t)ncpu * sizeof(*vals));
	assert_int_equal(bpf_map_lookup_elem(dp->fd_counters, &slot, vals), 0);
	assert_int_equal(vals[0].packets, 42);
	assert_int_equal(vals[0].bytes, 4200);
	struct itr_config cfg;
	assert_int_equal(itr_dataplane_get_config(dp, &cfg), 0);
	assert_int_equal(cfg.generation, 1);
	assert_string_equal(cfg.vtag, "vtag-one");
	assert_int_equal(cfg.abi_version, ITR_ABI_VERSION);
	itr_dataplane_close(dp, false);
	free(vals);
}

static void test_refuses_other_abi(void **state)
{
	char err[512] = "";
	(void)state;
	struct itr_dataplane *dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	struct itr_config cfg;
	assert_int_equal(itr_dataplane_get_config(dp, &cfg), 0);
	cfg.abi_version = ITR_ABI_VERSION + 7;
	__u32 zero = 0;
	assert_int_equal(bpf_map_update_elem(dp->fd_config, &zero, &cfg, BPF_ANY), 0);
	itr_dataplane_close(dp, false);

	assert_null(open_dp(err, sizeof(err)));
	assert_non_null(strstr(err, "ABI"));
	/* Refusing must not have removed what was there. */
	assert_true(pinned(ITR_MAP_CONFIG));
	char perr[512];
	assert_int_equal(itr_dataplane_purge(root, perr, sizeof(perr)), 0);
	assert_false(pinned(ITR_MAP_CONFIG));
}

static void test_refuses_other_layout(void **state)
{
	char err[512] = "";
	char path[256];
	(void)state;
	/* A "counters" map from some other build: different value size. */
	int fd =
	    bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "counters", 4, 8, ITR_COUNTER_SLOTS, NULL);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/%s", root, ITR_MAP_COUNTERS);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	assert_null(open_dp(err, sizeof(err)));
	assert_non_null(strstr(err, "different layout"));
	assert_non_null(strstr(err, ITR_MAP_COUNTERS));
	/* The foreign map is still there, untouched, and nothing else was pinned. */
	assert_true(pinned(ITR_MAP_COUNTERS));
	assert_false(pinned(ITR_MAP_FLOWS));
	assert_false(pinned(ITR_MAP_FLOWS_V4));
	unlink(path);
}

/* Replaces the pinned flow caches with maps whose itr_flow_verdict has
 * value_size bytes: 48 in map ABI 2 (before the unfolded matrix counts),
 * 80 in ABI 3 (before they were packed). */
static void pin_old_flow_caches(__u32 value_size)
{
	static const struct {
		const char *name;
		__u32 key_size;
	} caches[] = {{ITR_MAP_FLOWS_V4, sizeof(struct itr_flow_key_v4)},
	              {ITR_MAP_FLOWS, sizeof(struct itr_flow_key)}};
	for (size_t i = 0; i < 2; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", root, caches[i].name);
		assert_int_equal(unlink(path), 0);
		int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, caches[i].name, caches[i].key_size,
		                        value_size, ITR_FLOWS_MAX, NULL);
		assert_true(fd >= 0);
		assert_int_equal(bpf_obj_pin(fd, path), 0);
		close(fd);
	}
}

static __u32 pinned_value_size(const char *name)
{
	char path[256];
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	snprintf(path, sizeof(path), "%s/%s", root, name);
	int fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info.value_size;
}

/* An established inter-AS peer-wire flow, PID 1 -> PID 20, in the pinned
 * (older) flows_v4 whose values are value_size bytes; ABI 3's 80-byte
 * values also carry 3 unfolded packets of 300 bytes from the lo end. */
static const struct itr_flow_key_v4 old_flow_key = {
    .addr_lo = 0x01010a0a, .addr_hi = 0x02001e0a, .port_lo = 0x1a2b, .port_hi = 0xe11a, .proto = 6};

static struct itr_flow_verdict old_flow_verdict(void)
{
	struct itr_flow_verdict v = {.generation = 1,
	                             .pid_lo = 1,
	                             .pid_hi = 20,
	                             .asn_lo = 64500,
	                             .asn_hi = 64502,
	                             .kind = ITR_KIND_PEER_WIRE,
	                             .state = ITR_FLOW_FINAL,
	                             .cls = ITR_CLASS_INTER_AS};
	return v;
}

static void put_old_flow(__u32 value_size)
{
	char path[256];
	unsigned char value[80] = {0};
	struct itr_flow_verdict v = old_flow_verdict();
	memcpy(value, &v, 48);
	if (value_size == 80) {
		struct itr_counter c[2] = {{.packets = 3, .bytes = 300}, {0, 0}};
		memcpy(value + 48, c, sizeof(c));
	}
	snprintf(path, sizeof(path), "%s/%s", root, ITR_MAP_FLOWS_V4);
	int fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_update_elem(fd, &old_flow_key, value, BPF_ANY), 0);
	close(fd);
}

/* The carried-over entry: the old verdict, and unfolded what ABI 3 had. */
static void expect_carried_flow(struct itr_dataplane *dp, uint64_t unfolded_lo_hi)
{
	struct itr_flow_verdict got, want = old_flow_verdict();
	int fd = bpf_object__find_map_fd_by_name(dp->obj, ITR_MAP_FLOWS_V4);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &old_flow_key, &got), 0);
	assert_memory_equal(&got, &want, offsetof(struct itr_flow_verdict, unfolded));
	assert_int_equal(got.unfolded[ITR_FLOW_LO_TO_HI], unfolded_lo_hi);
	assert_int_equal(got.unfolded[ITR_FLOW_HI_TO_LO], 0);
	assert_int_equal(dp->flows_carried, 1);
}

/* config.abi_version of the pinned data plane, with no dataplane open. */
static void set_pinned_config_abi(__u32 abi)
{
	char path[256];
	struct itr_config cfg;
	__u32 zero = 0;
	snprintf(path, sizeof(path), "%s/%s", root, ITR_MAP_CONFIG);
	int fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, &cfg), 0);
	cfg.abi_version = abi;
	assert_int_equal(bpf_map_update_elem(fd, &zero, &cfg, BPF_ANY), 0);
	close(fd);
}

/* ABI 3's caches (80-byte verdicts) are replaced the same way. */
static void test_upgrades_abi3_flow_caches(void **state)
{
	char err[512] = "";
	(void)state;
	struct itr_dataplane *dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	itr_dataplane_close(dp, false);
	pin_old_flow_caches(80);
	put_old_flow(80);
	set_pinned_config_abi(3);
	dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	assert_int_equal(dp->caches_replaced, 2);
	expect_carried_flow(dp, itr_unfolded_pack(3, 300));
	/* The carried unfolded counts reach the matrix with the next fold. */
	assert_int_equal(itr_dataplane_fold(dp), 0);
	int ncpu = libbpf_num_possible_cpus();
	struct itr_counter *cells = calloc((size_t)ncpu, sizeof(*cells));
	struct itr_matrix_key mk = {.src_pid = 1, .dst_pid = 20};
	assert_int_equal(bpf_map_lookup_elem(dp->fd_matrix, &mk, cells), 0);
	uint64_t packets = 0, bytes = 0;
	for (int c = 0; c < ncpu; c++) {
		packets += cells[c].packets;
		bytes += cells[c].bytes;
	}
	free(cells);
	assert_int_equal(packets, 3);
	assert_int_equal(bytes, 300);
	assert_int_equal(pinned_value_size(ITR_MAP_FLOWS_V4), sizeof(struct itr_flow_verdict));
	struct itr_config cfg;
	assert_int_equal(itr_dataplane_get_config(dp, &cfg), 0);
	assert_int_equal(cfg.abi_version, ITR_ABI_VERSION);
	itr_dataplane_close(dp, false);
}

static void set_pinned_abi(struct itr_dataplane *dp, __u32 abi)
{
	struct itr_config cfg;
	__u32 zero = 0;
	assert_int_equal(itr_dataplane_get_config(dp, &cfg), 0);
	cfg.abi_version = abi;
	assert_int_equal(bpf_map_update_elem(dp->fd_config, &zero, &cfg, BPF_ANY), 0);
}

/* A data plane pinned by the previous map ABI (flow caches of the older
 * layout) is adopted: the flow caches are replaced, the counters, the
 * generation and everything else kept, and the ABI recorded anew. The same
 * caches under this ABI, or a non-cache map of another layout beside them,
 * are refused as before, and nothing is removed. */
static void test_upgrades_abi2_flow_caches(void **state)
{
	char err[512] = "";
	(void)state;
	struct itr_dataplane *dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	int ncpu = libbpf_num_possible_cpus();
	struct itr_counter *vals = calloc((size_t)ncpu, sizeof(*vals));
	vals[0].packets = 7;
	__u32 slot = itr_counter_index(ITR_DIR_EGRESS, ITR_CLASS_INTRA_AS, ITR_KIND_UTP);
	assert_int_equal(bpf_map_update_elem(dp->fd_counters, &slot, vals, BPF_ANY), 0);
	assert_int_equal(itr_dataplane_bump_generation(dp, "before-upgrade", NULL), 0);
	itr_dataplane_close(dp, false);
	pin_old_flow_caches(48);
	put_old_flow(48);

	/* Under this ABI the older caches are refused. */
	assert_null(open_dp(err, sizeof(err)));
	assert_non_null(strstr(err, "different layout"));
	assert_int_equal(pinned_value_size(ITR_MAP_FLOWS_V4), 48);

	/* Recorded as ABI 2: adopted, caches replaced. */
	set_pinned_config_abi(ITR_ABI_VERSION_UPGRADABLE);
	struct itr_config cfg;
	char path[256];
	int fd;
	dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	assert_true(dp->maps_adopted);
	assert_int_equal(dp->caches_replaced, 2);
	expect_carried_flow(dp, 0);
	assert_int_equal(pinned_value_size(ITR_MAP_FLOWS_V4), sizeof(struct itr_flow_verdict));
	assert_int_equal(pinned_value_size(ITR_MAP_FLOWS), sizeof(struct itr_flow_verdict));
	memset(vals, 0, (size_t)ncpu * sizeof(*vals));
	assert_int_equal(bpf_map_lookup_elem(dp->fd_counters, &slot, vals), 0);
	assert_int_equal(vals[0].packets, 7);
	assert_int_equal(itr_dataplane_get_config(dp, &cfg), 0);
	assert_int_equal(cfg.abi_version, ITR_ABI_VERSION);
	assert_int_equal(cfg.generation, 1);
	assert_string_equal(cfg.vtag, "before-upgrade");
	assert_int_equal(itr_dataplane_fold(dp), 0);

	/* ABI 2 with another map of a foreign layout: refused, caches kept. */
	set_pinned_abi(dp, ITR_ABI_VERSION_UPGRADABLE);
	itr_dataplane_close(dp, false);
	pin_old_flow_caches(48);
	snprintf(path, sizeof(path), "%s/%s", root, ITR_MAP_COUNTERS);
	assert_int_equal(unlink(path), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "counters", 4, 8, ITR_COUNTER_SLOTS, NULL);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);
	assert_null(open_dp(err, sizeof(err)));
	assert_non_null(strstr(err, ITR_MAP_COUNTERS));
	assert_int_equal(pinned_value_size(ITR_MAP_FLOWS_V4), 48);
	assert_int_equal(pinned_value_size(ITR_MAP_FLOWS), 48);
	free(vals);
}

static void test_bad_interfaces(void **state)
{
	char err[512] = "";
	(void)state;
	struct itr_loader_opts o = {.pin_root = root, .nifaces = 1};
	o.ifaces[0] = "itr-nosuch0";
	assert_null(itr_dataplane_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "no such interface: itr-nosuch0"));
	/* Nothing was loaded or pinned for a typo. */
	assert_false(pinned(ITR_MAP_COUNTERS));

	o.nifaces = 2;
	o.ifaces[0] = "lo";
	o.ifaces[1] = "lo";
	assert_null(itr_dataplane_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "given twice"));

	o.nifaces = 1;
	o.ifaces[0] = "this-name-is-far-too-long-for-linux";
	assert_null(itr_dataplane_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "too long"));
}

static void test_policy_and_class_names(void **state)
{
	char err[512] = "";
	(void)state;
	assert_int_equal(itr_class_from_name("inter-as"), ITR_CLASS_INTER_AS);
	assert_int_equal(itr_class_from_name("intra_pid"), ITR_CLASS_INTRA_PID);
	assert_int_equal(itr_class_from_name("unknown"), ITR_CLASS_UNKNOWN);
	assert_int_equal(itr_class_from_name("inter"), -1);

	struct itr_dataplane *dp = open_dp(err, sizeof(err));
	assert_non_null(dp);
	struct itr_policy p = {
	    .flags = ITR_POLICY_SET_DSCP | ITR_POLICY_SET_MARK, .dscp = 10, .mark = 7};
	assert_int_equal(itr_dataplane_set_policy(dp, ITR_CLASS_INTER_AS, &p), 0);
	assert_int_equal(itr_dataplane_set_policy(dp, ITR_CLASS_MAX, &p), -EINVAL);
	struct itr_policy back;
	__u32 key = ITR_CLASS_INTER_AS;
	assert_int_equal(bpf_map_lookup_elem(dp->fd_policy, &key, &back), 0);
	assert_int_equal(back.dscp, 10);
	assert_int_equal(back.mark, 7);
	itr_dataplane_close(dp, false);
}

/* A machine where nothing mounted /sys/fs/bpf: the loader mounts it. */
static void test_mounts_bpffs_when_absent(void **state)
{
	char err[512];
	char fresh_root[128];
	(void)state;
	while (itr_test_bpffs_mounted())
		assert_int_equal(umount2("/sys/fs/bpf", MNT_DETACH), 0);
	snprintf(fresh_root, sizeof(fresh_root), "/sys/fs/bpf/itr-test-loader-fresh-%d", getpid());
	assert_int_equal(itr_ensure_bpffs(fresh_root, err, sizeof(err)), 0);
	assert_true(itr_test_bpffs_mounted());
	assert_int_equal(rmdir(fresh_root), 0);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_loader: must run as root (BPF, bpffs)\n");
		return 1; /* never skip: CI runs as root */
	}
	if (itr_test_private_mount_ns() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mounts_bpffs_when_absent),
	    cmocka_unit_test_setup_teardown(test_pins_and_adopts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuses_other_abi, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuses_other_layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrades_abi2_flow_caches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrades_abi3_flow_caches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_interfaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_policy_and_class_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
