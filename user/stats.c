/* stats.c - read the pinned counters, matrix and config maps, sum the
 * per-CPU values, and print them as aligned tables or JSON.
 *
 * Everything here works from map file descriptors only, so itrackerctl can
 * show figures while itrackerd is stopped (the pinned links keep counting).
 */
#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "itracker_names.h"
#include "netmap.h"

const char *itr_class_name(unsigned cls)
{
	return cls < ITR_CLASS_MAX ? itr_class_names[cls] : "invalid";
}

const char *itr_kind_name(unsigned kind)
{
	return kind < ITR_KIND_MAX ? itr_kind_names[kind] : "invalid";
}

const char *itr_dir_name(unsigned dir)
{
	return dir < ITR_DIR_MAX ? itr_dir_names[dir] : "invalid";
}

int itr_stats_open_pinned(const char *pin_root, const char *name)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", pin_root, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int itr_stats_fold_pinned(const char *pin_root)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);
	int fd = itr_stats_open_pinned(pin_root, ITR_PIN_PROG_FOLD);
	if (fd < 0)
		return fd;
	int rc = bpf_prog_test_run_opts(fd, &run) ? -errno : 0;
	close(fd);
	return rc;
}

/* Per-CPU lookups fill one value per possible CPU, each rounded up to 8
 * bytes; struct itr_counter already is a multiple of 8. */
static int possible_cpus(void)
{
	int n = libbpf_num_possible_cpus();
	return n > 0 ? n : -EINVAL;
}

static int sum_percpu(int fd, const void *key, struct itr_counter *percpu, int ncpus,
                      struct itr_counter *sum)
{
	if (bpf_map_lookup_elem(fd, key, percpu) != 0)
		return -errno;
	sum->packets = 0;
	sum->bytes = 0;
	for (int cpu = 0; cpu < ncpus; cpu++) {
		sum->packets += percpu[cpu].packets;
		sum->bytes += percpu[cpu].bytes;
	}
	return 0;
}

int itr_stats_read_counters(int counters_fd, struct itr_counter_table *out)
{
	int ncpus = possible_cpus();
	if (ncpus < 0)
		return ncpus;
	struct itr_counter *percpu = calloc((size_t)ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	int err = 0;
	for (unsigned d = 0; d < ITR_DIR_MAX && !err; d++)
		for (unsigned c = 0; c < ITR_CLASS_MAX && !err; c++)
			for (unsigned k = 0; k < ITR_KIND_MAX && !err; k++) {
				__u32 idx = itr_counter_index(d, c, k);
				err =
				    sum_percpu(counters_fd, &idx, percpu, ncpus, &out->c[d][c][k]);
			}
	free(percpu);
	return err;
}

static int matrix_order(const void *a, const void *b)
{
	const struct itr_matrix_entry *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->src_pid != y->src_pid)
		return x->src_pid < y->src_pid ? -1 : 1;
	if (x->dst_pid != y->dst_pid)
		return x->dst_pid < y->dst_pid ? -1 : 1;
	return 0;
}

int itr_stats_read_matrix(int matrix_fd, struct itr_matrix_entry **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	int ncpus = possible_cpus();
	if (ncpus < 0)
		return ncpus;
	struct itr_counter *percpu = calloc((size_t)ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	struct itr_matrix_entry *entries = NULL;
	size_t n = 0, cap = 0;
	struct itr_matrix_key key, next;
	const void *prev = NULL;
	int err = 0;
	while (bpf_map_get_next_key(matrix_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		struct itr_counter sum = {0, 0};
		int rc = sum_percpu(matrix_fd, &key, percpu, ncpus, &sum);
		if (rc == -ENOENT)
			continue; /* deleted between the two calls */
		if (rc < 0) {
			err = rc;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct itr_matrix_entry *grown = realloc(entries, ncap * sizeof(*grown));
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			entries = grown;
			cap = ncap;
		}
		entries[n++] = (struct itr_matrix_entry){
		    .src_pid = key.src_pid,
		    .dst_pid = key.dst_pid,
		    .packets = sum.packets,
		    .bytes = sum.bytes,
		};
	}
	/* The walk ends with ENOENT; anything else (EBADF, EPERM) is real. */
	if (!err && errno != ENOENT)
		err = -errno;
	free(percpu);
	if (err) {
		free(entries);
		return err;
	}
	if (n > 1)
		qsort(entries, n, sizeof(*entries), matrix_order);
	*out = entries;
	*count = n;
	return 0;
}

int itr_stats_read_config(int config_fd, struct itr_config *out)
{
	__u32 zero = 0;
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(config_fd, &zero, out) != 0)
		return -errno;
	out->vtag[sizeof(out->vtag) - 1] = '\0';
	return 0;
}

static const char *map_type_name(__u32 type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
		return "hash";
	case BPF_MAP_TYPE_ARRAY:
		return "array";
	case BPF_MAP_TYPE_PERCPU_HASH:
		return "percpu_hash";
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return "percpu_array";
	case BPF_MAP_TYPE_LRU_HASH:
		return "lru_hash";
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return "lru_percpu_hash";
	case BPF_MAP_TYPE_LPM_TRIE:
		return "lpm_trie";
	default:
		return "other";
	}
}

static bool is_array_type(__u32 type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

int itr_stats_count_entries(int map_fd, uint64_t *entries, uint32_t *max_entries,
                            const char **type_name)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
		return -errno;
	if (type_name)
		*type_name = map_type_name(info.type);
	if (max_entries)
		*max_entries = info.max_entries;
	if (is_array_type(info.type)) {
		*entries = info.max_entries;
		return 0;
	}
	if (info.key_size == 0 || info.key_size > 256)
		return -EINVAL;
	unsigned char key[256], next[256];
	const void *prev = NULL;
	uint64_t n = 0;
	while (bpf_map_get_next_key(map_fd, prev, next) == 0) {
		memcpy(key, next, info.key_size);
		prev = key;
		n++;
	}
	if (errno != ENOENT)
		return -errno;
	*entries = n;
	return 0;
}

struct itr_counter itr_counter_sum(const struct itr_counter_table *t, int dir, bool bittorrent_only)
{
	struct itr_counter sum = {0, 0};
	for (unsigned d = 0; d < ITR_DIR_MAX; d++) {
		if (dir >= 0 && (unsigned)dir != d)
			continue;
		for (unsigned c = 0; c < ITR_CLASS_MAX; c++)
			for (unsigned k = bittorrent_only ? 1 : 0; k < ITR_KIND_MAX; k++) {
				sum.packets += t->c[d][c][k].packets;
				sum.bytes += t->c[d][c][k].bytes;
			}
	}
	return sum;
}

double itr_stats_inter_as_ratio(const struct itr_counter_table *t)
{
	uint64_t inter = 0, all = 0;
	for (unsigned d = 0; d < ITR_DIR_MAX; d++)
		for (unsigned c = 0; c < ITR_CLASS_MAX; c++)
			for (unsigned k = ITR_KIND_NONE + 1; k < ITR_KIND_MAX; k++) {
				all += t->c[d][c][k].bytes;
				if (c == ITR_CLASS_INTER_AS)
					inter += t->c[d][c][k].bytes;
			}
	if (all == 0)
		return -1.0;
	return (double)inter / (double)all;
}

const char *itr_format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	double v = (double)bytes / 1024.0;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

const char *itr_format_count(double count, char *buf, size_t len)
{
	static const char *const units[] = {"k", "M", "G", "T", "P", "E"};
	if (count < 1000.0) {
		if (count == (double)(uint64_t)count)
			snprintf(buf, len, "%llu", (unsigned long long)count);
		else
			snprintf(buf, len, "%.2f", count);
		return buf;
	}
	double v = count / 1000.0;
	size_t u = 0;
	while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000.0;
		u++;
	}
	snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

static void print_counter_row(FILE *out, const char *cls, const char *kind,
                              const struct itr_counter *in, const struct itr_counter *eg)
{
	char a[32], b[32], c[32], d[32], e[32], f[32];
	fprintf(out, "%-10s %-13s %10s %12s %10s %12s %10s %12s\n", cls, kind,
	        itr_format_count((double)in->packets, a, sizeof(a)),
	        itr_format_bytes(in->bytes, b, sizeof(b)),
	        itr_format_count((double)eg->packets, c, sizeof(c)),
	        itr_format_bytes(eg->bytes, d, sizeof(d)),
	        itr_format_count((double)(in->packets + eg->packets), e, sizeof(e)),
	        itr_format_bytes(in->bytes + eg->bytes, f, sizeof(f)));
}

static void print_ratio_line(FILE *out, double ratio)
{
	if (ratio < 0)
		fprintf(out, "inter-AS share of BitTorrent bytes: n/a (no BitTorrent traffic)\n");
	else
		fprintf(out, "inter-AS share of BitTorrent bytes: %.1f %%\n", ratio * 100.0);
}

void itr_stats_print_table(FILE *out, const struct itr_counter_table *t, bool all)
{
	fprintf(out, "%-10s %-13s %10s %12s %10s %12s %10s %12s\n", "CLASS", "KIND", "IN PKTS",
	        "IN BYTES", "OUT PKTS", "OUT BYTES", "PKTS", "BYTES");
	for (unsigned c = 0; c < ITR_CLASS_MAX; c++)
		for (unsigned k = 0; k < ITR_KIND_MAX; k++) {
			const struct itr_counter *in = &t->c[ITR_DIR_INGRESS][c][k];
			const struct itr_counter *eg = &t->c[ITR_DIR_EGRESS][c][k];
			if (!all && in->packets == 0 && eg->packets == 0)
				continue;
			print_counter_row(out, itr_class_names[c], itr_kind_names[k], in, eg);
		}
	struct itr_counter bt_in = itr_counter_sum(t, ITR_DIR_INGRESS, true);
	struct itr_counter bt_eg = itr_counter_sum(t, ITR_DIR_EGRESS, true);
	struct itr_counter all_in = itr_counter_sum(t, ITR_DIR_INGRESS, false);
	struct itr_counter all_eg = itr_counter_sum(t, ITR_DIR_EGRESS, false);
	print_counter_row(out, "bittorrent", "(all kinds)", &bt_in, &bt_eg);
	print_counter_row(out, "total", "", &all_in, &all_eg);
	print_ratio_line(out, itr_stats_inter_as_ratio(t));
}

static json_t *counter_json(const struct itr_counter *c)
{
	return json_pack("{s:I,s:I}", "packets", (json_int_t)c->packets, "bytes",
	                 (json_int_t)c->bytes);
}

static json_t *ratio_json(double ratio)
{
	return ratio < 0 ? json_null() : json_real(ratio);
}

static void dump_json(FILE *out, json_t *root)
{
	json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(root);
}

void itr_stats_print_json(FILE *out, const struct itr_counter_table *t)
{
	json_t *root = json_object();
	for (unsigned d = 0; d < ITR_DIR_MAX; d++) {
		json_t *dir = json_object();
		for (unsigned c = 0; c < ITR_CLASS_MAX; c++) {
			json_t *cls = json_object();
			for (unsigned k = 0; k < ITR_KIND_MAX; k++)
				json_object_set_new(cls, itr_kind_names[k],
				                    counter_json(&t->c[d][c][k]));
			json_object_set_new(dir, itr_class_names[c], cls);
		}
		json_object_set_new(root, itr_dir_names[d], dir);
	}
	for (unsigned d = 0; d < ITR_DIR_MAX; d++) {
		char key[32];
		struct itr_counter s = itr_counter_sum(t, (int)d, false);
		snprintf(key, sizeof(key), "%s_total", itr_dir_names[d]);
		json_object_set_new(root, key, counter_json(&s));
	}
	struct itr_counter total = itr_counter_sum(t, -1, false);
	struct itr_counter bt = itr_counter_sum(t, -1, true);
	json_object_set_new(root, "total", counter_json(&total));
	json_object_set_new(root, "bittorrent", counter_json(&bt));
	json_object_set_new(root, "inter_as_ratio", ratio_json(itr_stats_inter_as_ratio(t)));
	dump_json(out, root);
}

static double rate(uint64_t prev, uint64_t cur, double seconds)
{
	/* A counter that went backwards was reset (maps recreated): count
	 * from zero rather than printing a huge wrapped value. */
	uint64_t delta = cur >= prev ? cur - prev : cur;
	return seconds > 0 ? (double)delta / seconds : 0.0;
}

void itr_stats_print_rates(FILE *out, const struct itr_counter_table *prev,
                           const struct itr_counter_table *cur, double seconds, bool json)
{
	if (json) {
		json_t *root = json_object();
		json_object_set_new(root, "interval_seconds", json_real(seconds));
		for (unsigned d = 0; d < ITR_DIR_MAX; d++) {
			json_t *dir = json_object();
			for (unsigned c = 0; c < ITR_CLASS_MAX; c++) {
				json_t *cls = json_object();
				for (unsigned k = 0; k < ITR_KIND_MAX; k++) {
					const struct itr_counter *p = &prev->c[d][c][k];
					const struct itr_counter *n = &cur->c[d][c][k];
					json_object_set_new(
					    cls, itr_kind_names[k],
					    json_pack("{s:f,s:f}", "packets_per_second",
					              rate(p->packets, n->packets, seconds),
					              "bytes_per_second",
					              rate(p->bytes, n->bytes, seconds)));
				}
				json_object_set_new(dir, itr_class_names[c], cls);
			}
			json_object_set_new(root, itr_dir_names[d], dir);
		}
		json_dumpf(root, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', out);
		json_decref(root);
		return;
	}
	fprintf(out, "%-10s %-13s %10s %12s %10s %12s\n", "CLASS", "KIND", "IN PKT/s", "IN B/s",
	        "OUT PKT/s", "OUT B/s");
	double tin_p = 0, tin_b = 0, teg_p = 0, teg_b = 0;
	for (unsigned c = 0; c < ITR_CLASS_MAX; c++)
		for (unsigned k = 0; k < ITR_KIND_MAX; k++) {
			const struct itr_counter *pi = &prev->c[ITR_DIR_INGRESS][c][k];
			const struct itr_counter *ni = &cur->c[ITR_DIR_INGRESS][c][k];
			const struct itr_counter *pe = &prev->c[ITR_DIR_EGRESS][c][k];
			const struct itr_counter *ne = &cur->c[ITR_DIR_EGRESS][c][k];
			double ip = rate(pi->packets, ni->packets, seconds);
			double ib = rate(pi->bytes, ni->bytes, seconds);
			double ep = rate(pe->packets, ne->packets, seconds);
			double eb = rate(pe->bytes, ne->bytes, seconds);
			tin_p += ip;
			tin_b += ib;
			teg_p += ep;
			teg_b += eb;
			if (ip == 0 && ep == 0)
				continue;
			char a[32], b[32], x[32], y[32];
			fprintf(out, "%-10s %-13s %10s %10s/s %10s %10s/s\n", itr_class_names[c],
			        itr_kind_names[k], itr_format_count(ip, a, sizeof(a)),
			        itr_format_bytes((uint64_t)ib, b, sizeof(b)),
			        itr_format_count(ep, x, sizeof(x)),
			        itr_format_bytes((uint64_t)eb, y, sizeof(y)));
		}
	char a[32], b[32], x[32], y[32];
	fprintf(
	    out, "%-10s %-13s %10s %10s/s %10s %10s/s\n", "total", "",
	    itr_format_count(tin_p, a, sizeof(a)), itr_format_bytes((uint64_t)tin_b, b, sizeof(b)),
	    itr_format_count(teg_p, x, sizeof(x)), itr_format_bytes((uint64_t)teg_b, y, sizeof(y)));
}

static const char *pid_label(const struct itr_netmap *map, uint32_t id, char *buf, size_t len)
{
	if (id == ITR_PID_NONE)
		return "(none)";
	const struct itr_pid *pid = map ? itr_netmap_pid_by_id(map, id) : NULL;
	if (pid)
		return pid->name;
	snprintf(buf, len, "%u", id);
	return buf;
}

/* "intra_pid" .. "inter_as" for a pair when the map knows both PIDs. */
static const char *pair_scope(const struct itr_netmap *map, uint32_t src, uint32_t dst)
{
	if (src == ITR_PID_NONE || dst == ITR_PID_NONE)
		return itr_class_name(ITR_CLASS_UNKNOWN);
	if (!map)
		return src == dst ? itr_class_name(ITR_CLASS_INTRA_PID) : NULL;
	const struct itr_pid *a = itr_netmap_pid_by_id(map, src);
	const struct itr_pid *b = itr_netmap_pid_by_id(map, dst);
	if (!a || !b)
		return NULL;
	return itr_class_name(itr_netmap_class(a, b));
}

static uint64_t matrix_total_bytes(const struct itr_matrix_entry *e, size_t n)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].bytes;
	return total;
}

void itr_stats_print_matrix_table(FILE *out, const struct itr_matrix_entry *e, size_t n, size_t top,
                                  const struct itr_netmap *map, double inter_as_ratio)
{
	uint64_t total = matrix_total_bytes(e, n);
	size_t shown = top && top < n ? top : n;
	fprintf(out, "%-20s %-20s %-10s %10s %12s %7s\n", "SRC PID", "DST PID", "SCOPE", "PKTS",
	        "BYTES", "SHARE");
	for (size_t i = 0; i < shown; i++) {
		char s[16], d[16], p[32], b[32];
		const char *scope = pair_scope(map, e[i].src_pid, e[i].dst_pid);
		double share = total ? 100.0 * (double)e[i].bytes / (double)total : 0.0;
		fprintf(out, "%-20s %-20s %-10s %10s %12s %6.1f%%\n",
		        pid_label(map, e[i].src_pid, s, sizeof(s)),
		        pid_label(map, e[i].dst_pid, d, sizeof(d)), scope ? scope : "?",
		        itr_format_count((double)e[i].packets, p, sizeof(p)),
		        itr_format_bytes(e[i].bytes, b, sizeof(b)), share);
	}
	char b[32];
	fprintf(out, "%zu pair(s), %zu shown, %s in the matrix\n", n, shown,
	        itr_format_bytes(total, b, sizeof(b)));
	print_ratio_line(out, inter_as_ratio);
}

void itr_stats_print_matrix_json(FILE *out, const struct itr_matrix_entry *e, size_t n, size_t top,
                                 const struct itr_netmap *map, double inter_as_ratio)
{
	size_t shown = top && top < n ? top : n;
	json_t *root = json_object();
	json_t *pairs = json_array();
	for (size_t i = 0; i < shown; i++) {
		json_t *row = json_pack("{s:I,s:I,s:I,s:I}", "src_pid", (json_int_t)e[i].src_pid,
		                        "dst_pid", (json_int_t)e[i].dst_pid, "packets",
		                        (json_int_t)e[i].packets, "bytes", (json_int_t)e[i].bytes);
		const struct itr_pid *sp = map ? itr_netmap_pid_by_id(map, e[i].src_pid) : NULL;
		const struct itr_pid *dp = map ? itr_netmap_pid_by_id(map, e[i].dst_pid) : NULL;
		json_object_set_new(row, "src_name", sp ? json_string(sp->name) : json_null());
		json_object_set_new(row, "dst_name", dp ? json_string(dp->name) : json_null());
		const char *scope = pair_scope(map, e[i].src_pid, e[i].dst_pid);
		json_object_set_new(row, "scope", scope ? json_string(scope) : json_null());
		json_array_append_new(pairs, row);
	}
	json_object_set_new(root, "pairs", pairs);
	json_object_set_new(root, "pair_count", json_integer((json_int_t)n));
	json_object_set_new(root, "total_bytes",
	                    json_integer((json_int_t)matrix_total_bytes(e, n)));
	json_object_set_new(root, "inter_as_ratio", ratio_json(inter_as_ratio));
	dump_json(out, root);
}
