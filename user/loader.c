/* loader.c - load, pin, attach, adopt and detach the kernel data plane.
 *
 * Adoption is the normal case, not a special one: maps are pinned by name
 * and libbpf reuses a compatible pinned map instead of creating a new one;
 * an XDP link pinned by an earlier run is updated to the freshly loaded
 * program (atomic replacement, no gap in counting); the TC egress filter is
 * attached with a fixed handle/priority and BPF_TC_F_REPLACE. Starting the
 * daemon twice therefore never attaches twice, and a restart never resets a
 * counter.
 */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "itracker_names.h"
#include "locality.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

int itr_class_from_name(const char *name)
{
	char buf[32];
	size_t i;

	/* Operators type "inter-as"; the names table spells "inter_as". */
	for (i = 0; name[i] && i + 1 < sizeof(buf); i++)
		buf[i] = name[i] == '-' ? '_' : name[i];
	buf[i] = '\0';
	for (int c = 0; c < ITR_CLASS_MAX; c++)
		if (strcmp(buf, itr_class_names[c]) == 0)
			return c;
	return -1;
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int itr_ensure_bpffs(const char *dir, char *err, size_t errlen)
{
	struct statfs st;

	/* The conventional mount point: mount it if the system did not. */
	if (strncmp(dir, "/sys/fs/bpf", 11) == 0 &&
	    (statfs("/sys/fs/bpf", &st) || st.f_type != BPF_FS_MAGIC)) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
			snprintf(err, errlen,
			         "cannot mount bpffs at /sys/fs/bpf: %s (run as root, or mount it: "
			         "mount -t bpf bpf /sys/fs/bpf)",
			         strerror(errno));
			return -errno;
		}
	}
	int rc = mkdir_p(dir);
	if (rc) {
		snprintf(err, errlen, "cannot create pin root %s: %s", dir, strerror(-rc));
		return rc;
	}
	if (statfs(dir, &st) || st.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen,
		         "pin root %s is not on a BPF filesystem (mount one: mount -t bpf bpf %s)",
		         dir, dir);
		return -EINVAL;
	}
	return 0;
}

/* Effective capabilities from /proc/self/status; 0 if unreadable. */
static uint64_t effective_caps(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long caps = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps;
}

/* Say up front, in one line, what is missing: libbpf's own complaints for
 * an unprivileged load are several lines about RLIMIT_MEMLOCK and kernel
 * config, neither of which is the problem. */
static int check_privileges(char *err, size_t errlen)
{
	enum {
		CAP_NET_ADMIN_BIT = 12,
		CAP_SYS_ADMIN_BIT = 21,
		CAP_PERFMON_BIT = 38,
		CAP_BPF_BIT = 39
	};
	uint64_t caps = effective_caps();
	bool bpf = caps & (1ull << CAP_BPF_BIT) || caps & (1ull << CAP_SYS_ADMIN_BIT);
	bool net = caps & (1ull << CAP_NET_ADMIN_BIT);
	bool perf = caps & (1ull << CAP_PERFMON_BIT) || caps & (1ull << CAP_SYS_ADMIN_BIT);

	if (bpf && net && perf)
		return 0;
	snprintf(err, errlen,
	         "missing privileges to load the data plane (need CAP_BPF, CAP_PERFMON and "
	         "CAP_NET_ADMIN%s%s%s): run itrackerd as root, or with --no-dataplane to serve "
	         "the iTracker only",
	         bpf ? "" : "; CAP_BPF missing", perf ? "" : "; CAP_PERFMON missing",
	         net ? "" : "; CAP_NET_ADMIN missing");
	return -EPERM;
}

static void explain_errno(char *err, size_t errlen, const char *what, int e)
{
	if (e == EPERM || e == EACCES)
		snprintf(err, errlen,
		         "%s: permission denied; run itrackerd as root (it needs CAP_BPF, "
		         "CAP_NET_ADMIN, CAP_PERFMON and CAP_SYS_ADMIN for bpffs)",
		         what);
	else if (e == ENOSYS)
		snprintf(err, errlen, "%s: this kernel has no BPF support (CONFIG_BPF_SYSCALL)",
		         what);
	else
		snprintf(err, errlen, "%s: %s", what, strerror(e));
}

/* The flow caches: their entries can be rebuilt from the traffic, so a
 * pinned one with an older layout is replaced rather than refused. */
static bool is_flow_cache(const char *name)
{
	return strcmp(name, ITR_MAP_FLOWS) == 0 || strcmp(name, ITR_MAP_FLOWS_V4) == 0;
}

/* config.abi_version of the data plane pinned under root; 0 if none. */
static __u32 pinned_abi_version(const char *root)
{
	char path[PATH_MAX];
	struct itr_config cfg = {0};
	__u32 zero = 0;

	snprintf(path, sizeof(path), "%s/%s", root, ITR_MAP_CONFIG);
	int fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		cfg.abi_version = 0;
	close(fd);
	return cfg.abi_version;
}

/* A flow cache of an older layout, unpinned but still open, whose entries
 * are carried over into the new one (carry_over_flows). */
struct old_cache {
	int fd;
	char name[32];
	__u32 key_size, value_size;
};

/* Every map ABI since 2 starts the verdict with the same 48 bytes; ABI 3
 * then had the unfolded counts as two struct itr_counter (80 bytes). */
#define ITR_VERDICT_COMMON_BYTES 48
#define ITR_VERDICT_ABI3_BYTES   80
_Static_assert(offsetof(struct itr_flow_verdict, unfolded) == ITR_VERDICT_COMMON_BYTES,
               "the verdict's first 48 bytes are what older ABIs share");

/* A pinned map whose layout differs from the object's would make libbpf fail
 * with a terse message; check first and say which map and what differs.
 * The exception: the flow caches of a data plane pinned by an upgradable
 * ABI (ITR_ABI_VERSION_UPGRADABLE up to this one) are unpinned, once
 * everything else is known to fit, so that libbpf creates them anew; they
 * stay open in old[] (*nold of them) for their entries to be carried over. */
static int check_pinned_compat(struct bpf_object *obj, const char *root, char *err, size_t errlen,
                               bool *any_pinned, struct old_cache old[2], int *nold)
{
	struct bpf_map *map;
	char stale[2][PATH_MAX];
	int nstale = 0;
	__u32 pinned_abi = pinned_abi_version(root);
	bool upgradable = pinned_abi >= ITR_ABI_VERSION_UPGRADABLE && pinned_abi < ITR_ABI_VERSION;

	*any_pinned = false;
	*nold = 0;
	bpf_object__for_each_map(map, obj)
	{
		char path[PATH_MAX];
		struct bpf_map_info info = {0};
		__u32 len = sizeof(info);
		const char *name = bpf_map__name(map);

		/* Only maps the object pins by name can clash with pinned state:
		 * not .rodata/.bss (libbpf names them "locality.rodata") nor
		 * unpinned scratch maps. */
		if (bpf_map__is_internal(map) || !bpf_map__pin_path(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, name);
		int fd = bpf_obj_get(path);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			explain_errno(err, errlen, path, errno);
			return -errno;
		}
		*any_pinned = true;
		int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (rc) {
			explain_errno(err, errlen, path, errno);
			return -errno;
		}
		if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
		    info.value_size != bpf_map__value_size(map) ||
		    info.max_entries != bpf_map__max_entries(map) ||
		    info.map_flags != bpf_map__map_flags(map)) {
			if (upgradable && is_flow_cache(name) && nstale < 2 &&
			    info.key_size == bpf_map__key_size(map)) {
				snprintf(old[nstale].name, sizeof(old[nstale].name), "%s", name);
				old[nstale].key_size = info.key_size;
				old[nstale].value_size = info.value_size;
				snprintf(stale[nstale++], PATH_MAX, "%s", path);
				continue;
			}
			snprintf(err, errlen,
			         "pinned map %s has a different layout (key %u/%u bytes, value "
			         "%u/%u bytes, max %u/%u entries: pinned/new); refusing to replace "
			         "it with an empty one. Export what you need, then remove the old "
			         "data plane with `itrackerd --purge --pin-root %s`",
			         path, info.key_size, bpf_map__key_size(map), info.value_size,
			         bpf_map__value_size(map), info.max_entries,
			         bpf_map__max_entries(map), root);
			return -EEXIST;
		}
	}
	for (int i = 0; i < nstale; i++) {
		old[i].fd = bpf_obj_get(stale[i]);
		if (old[i].fd < 0 || unlink(stale[i])) {
			int e = errno;
			explain_errno(err, errlen, stale[i], e);
			for (int k = 0; k <= i; k++)
				if (old[k].fd >= 0)
					close(old[k].fd);
			return -e;
		}
		fprintf(stderr, "itrackerd: replacing the flow cache %s (map ABI %u layout)\n",
		        stale[i], pinned_abi);
		(*nold)++;
	}
	return 0;
}

/* Copies the entries of the older flow caches into the new ones, so that
 * flows keep their verdicts (a peer-wire flow past its handshake would
 * otherwise be known only by its endpoint from now on): the common first
 * bytes as they are, and ABI 3's unfolded counts packed. The old program
 * keeps running on the old maps until the links are updated; what it
 * changes in them meanwhile stays there (counters and matrix are shared,
 * so no count is lost). Closes the old maps. Returns the entries carried. */
static int map_fd(struct bpf_object *obj, const char *name);

static long carry_over_flows(struct itr_dataplane *dp, struct old_cache old[2], int nold)
{
	long carried = 0;
	for (int i = 0; i < nold; i++) {
		int to = map_fd(dp->obj, old[i].name);
		unsigned char key[sizeof(struct itr_flow_key)], next[sizeof(struct itr_flow_key)];
		unsigned char value[ITR_VERDICT_ABI3_BYTES];
		const void *prev = NULL;
		if (to >= 0 && old[i].key_size <= sizeof(key) &&
		    old[i].value_size <= sizeof(value) &&
		    old[i].value_size >= ITR_VERDICT_COMMON_BYTES) {
			while (bpf_map_get_next_key(old[i].fd, prev, next) == 0) {
				memcpy(key, next, old[i].key_size);
				prev = key;
				struct itr_flow_verdict v = {0};
				if (bpf_map_lookup_elem(old[i].fd, key, value))
					continue; /* gone meanwhile */
				memcpy(&v, value, ITR_VERDICT_COMMON_BYTES);
				if (old[i].value_size == ITR_VERDICT_ABI3_BYTES) {
					struct itr_counter c[2];
					memcpy(c, value + ITR_VERDICT_COMMON_BYTES, sizeof(c));
					for (int d = 0; d < 2; d++)
						v.unfolded[d] =
						    itr_unfolded_pack(c[d].packets, c[d].bytes);
				}
				if (bpf_map_update_elem(to, key, &v, BPF_ANY) == 0)
					carried++;
			}
		}
		close(old[i].fd);
		old[i].fd = -1;
	}
	return carried;
}

static int link_pin_path(char *buf, size_t len, const char *root, const char *ifname)
{
	return itr_xdp_link_pin_path(buf, len, root, ifname) ? -ENAMETOOLONG : 0;
}

static const char *xdp_mode_of(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	if (bpf_xdp_query(ifindex, 0, &q))
		return "?";
	return itr_xdp_attach_mode_name(q.attach_mode);
}

/* An XDP link pinned by an earlier run: update it to prog_fd if it is still
 * alive on this interface. Returns the link fd, or -1 if there is none to
 * adopt (a stale pin is removed). */
static int adopt_xdp_link(const char *path, int ifindex, int prog_fd)
{
	struct bpf_link_info info = {0};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_LINK_TYPE_XDP ||
	    (int)info.xdp.ifindex != ifindex) {
		/* The interface went away (defunct link) or the pin is foreign. */
		close(fd);
		unlink(path);
		return -1;
	}
	if (bpf_link_update(fd, prog_fd, NULL)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int attach_xdp(struct itr_dataplane *dp, struct itr_iface_state *ifs, int prog_fd,
                      enum itr_xdp_mode mode, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	if (link_pin_path(path, sizeof(path), dp->pin_root, ifs->name)) {
		snprintf(err, errlen, "interface name %s too long for a pin path", ifs->name);
		return -ENAMETOOLONG;
	}
	fd = adopt_xdp_link(path, ifs->ifindex, prog_fd);
	if (fd >= 0) {
		ifs->xdp_link_fd = fd;
		ifs->xdp_attached = ifs->xdp_adopted = true;
		ifs->xdp_mode_name = xdp_mode_of(ifs->ifindex);
		return 0;
	}

	const __u32 tries[2] = {
	    mode == ITR_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
	    mode == ITR_XDP_AUTO ? XDP_FLAGS_SKB_MODE : 0,
	};
	int e = 0;
	for (int i = 0; i < 2 && tries[i]; i++) {
		LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = tries[i]);
		fd = bpf_link_create(prog_fd, ifs->ifindex, BPF_XDP, &lo);
		if (fd >= 0)
			break;
		e = errno;
		/* Busy means someone else's program: falling back won't help. */
		if (e == EBUSY || e == EEXIST)
			break;
	}
	if (fd < 0) {
		char what[128];
		if (e == EBUSY || e == EEXIST)
			snprintf(err, errlen,
			         "%s already has an XDP program that itracker did not attach; "
			         "detach it (ip link set dev %s xdp off) or pick another interface",
			         ifs->name, ifs->name);
		else if (e == EOPNOTSUPP && mode == ITR_XDP_NATIVE)
			snprintf(err, errlen,
			         "%s: driver has no native XDP support; use --xdp-mode generic "
			         "or auto",
			         ifs->name);
		else {
			snprintf(what, sizeof(what), "attaching XDP to %s", ifs->name);
			explain_errno(err, errlen, what, e);
		}
		return -e;
	}
	if (bpf_obj_pin(fd, path)) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "pinning XDP link at %s: %s", path, strerror(e));
		return -e;
	}
	ifs->xdp_link_fd = fd;
	ifs->xdp_attached = true;
	ifs->xdp_mode_name = xdp_mode_of(ifs->ifindex);
	return 0;
}

/* libbpf's messages are shown by level: warnings always, information
 * (what it pins, reuses, loads) with --verbose, debug output with
 * ITRACKER_LIBBPF_DEBUG set. A probe asks a question whose "no" libbpf
 * reports as a warning (bpf_tc_query on an interface without our filter or
 * without a clsact qdisc, bpf_tc_hook_create where the qdisc exists): during
 * a probe its warnings count as debug output. */
static enum libbpf_print_level libbpf_shown = LIBBPF_WARN;
static _Thread_local bool probing;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (probing && level == LIBBPF_WARN)
		level = LIBBPF_DEBUG;
	return level <= libbpf_shown ? vfprintf(stderr, fmt, ap) : 0;
}

static void use_libbpf_print(bool verbose)
{
	libbpf_shown = getenv("ITRACKER_LIBBPF_DEBUG") ? LIBBPF_DEBUG
	               : verbose                       ? LIBBPF_INFO
	                                               : LIBBPF_WARN;
	libbpf_set_print(print_libbpf);
}

static void tc_hook_init(struct bpf_tc_hook *hook, int ifindex, enum bpf_tc_attach_point point)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = ifindex;
	hook->attach_point = point;
}

static bool tc_filter_present(int ifindex, enum bpf_tc_attach_point point)
{
	struct bpf_tc_hook hook;
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = ITR_TC_HANDLE, .priority = ITR_TC_PRIORITY);

	tc_hook_init(&hook, ifindex, point);
	probing = true;
	bool present = bpf_tc_query(&hook, &q) == 0;
	probing = false;
	return present;
}

static int attach_tc(struct itr_iface_state *ifs, int prog_fd, enum bpf_tc_attach_point point,
                     char *err, size_t errlen)
{
	struct bpf_tc_hook hook;
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ITR_TC_HANDLE, .priority = ITR_TC_PRIORITY,
	            .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	bool ingress = point == BPF_TC_INGRESS;

	tc_hook_init(&hook, ifs->ifindex, point);
	probing = true; /* "exists" is the usual answer */
	int rc = bpf_tc_hook_create(&hook);
	probing = false;
	if (rc && rc != -EEXIST) {
		char what[128];
		snprintf(what, sizeof(what), "creating clsact qdisc on %s", ifs->name);
		explain_errno(err, errlen, what, -rc);
		return rc;
	}
	bool adopted = tc_filter_present(ifs->ifindex, point);
	rc = bpf_tc_attach(&hook, &opts);
	if (rc) {
		char what[128];
		snprintf(what, sizeof(what), "attaching TC %s to %s",
		         ingress ? "ingress" : "egress", ifs->name);
		explain_errno(err, errlen, what, -rc);
		return rc;
	}
	if (ingress) {
		ifs->tc_in_attached = true;
		ifs->tc_in_adopted = adopted;
	} else {
		ifs->tc_attached = true;
		ifs->tc_adopted = adopted;
	}
	return 0;
}

static void detach_tc(int ifindex, enum bpf_tc_attach_point point)
{
	struct bpf_tc_hook hook;
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ITR_TC_HANDLE, .priority = ITR_TC_PRIORITY);

	tc_hook_init(&hook, ifindex, point);
	probing = true; /* gone already is fine */
	bpf_tc_detach(&hook, &opts);
	probing = false;
}

static void detach_iface(struct itr_dataplane *dp, struct itr_iface_state *ifs)
{
	char path[PATH_MAX];

	if (ifs->xdp_attached) {
		if (!link_pin_path(path, sizeof(path), dp->pin_root, ifs->name))
			unlink(path);
		/* Closing the last reference to an unpinned link detaches it. */
		if (ifs->xdp_link_fd >= 0)
			close(ifs->xdp_link_fd);
		ifs->xdp_link_fd = -1;
		ifs->xdp_attached = false;
	}
	if (ifs->tc_attached) {
		detach_tc(ifs->ifindex, BPF_TC_EGRESS);
		ifs->tc_attached = false;
	}
	if (ifs->tc_in_attached) {
		detach_tc(ifs->ifindex, BPF_TC_INGRESS);
		ifs->tc_in_attached = false;
	}
}

bool itr_iface_is_virtual(const char *ifname)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/class/net/%s/device", ifname);
	return access(path, F_OK) != 0;
}

/* The hook this run does not use may still carry what an earlier run
 * attached with the other choice: remove it, or ingress would be counted
 * twice. */
static void drop_other_ingress_hook(struct itr_dataplane *dp, struct itr_iface_state *ifs)
{
	if (ifs->ingress_tc) {
		char path[PATH_MAX];
		if (!link_pin_path(path, sizeof(path), dp->pin_root, ifs->name))
			unlink(path); /* the pin held the XDP link: unpinned, it detaches */
	} else if (tc_filter_present(ifs->ifindex, BPF_TC_INGRESS)) {
		detach_tc(ifs->ifindex, BPF_TC_INGRESS);
	}
}

/* The fold program under the pin root, replacing an earlier run's. Only
 * readers of the pins use it (they fold before reading the matrix; without
 * it they see the matrix up to ITR_FOLD_PERIOD_MS late), so a failure is
 * reported and the run goes on. */
static void pin_fold_program(const struct itr_dataplane *dp)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dp->pin_root, ITR_PIN_PROG_FOLD);
	unlink(path);
	if (bpf_obj_pin(dp->fd_fold, path))
		fprintf(stderr,
		        "itrackerd: pinning %s: %s (readers see the matrix up to %d ms late)\n",
		        path, strerror(errno), ITR_FOLD_PERIOD_MS);
}

static int map_fd(struct bpf_object *obj, const char *name)
{
	return bpf_object__find_map_fd_by_name(obj, name);
}

static struct bpf_object *open_object(const struct itr_loader_opts *opts, const char *root,
                                      char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = root, .object_name = "locality");
	struct bpf_object *obj;

	if (opts->bpf_object) {
		obj = bpf_object__open_file(opts->bpf_object, &oo);
	} else {
		size_t sz = 0;
		const void *bytes = locality__elf_bytes(&sz);
		obj = bpf_object__open_mem(bytes, sz, &oo);
	}
	if (!obj) {
		char what[PATH_MAX + 32];
		snprintf(what, sizeof(what), "opening BPF object %s",
		         opts->bpf_object ? opts->bpf_object : "(embedded)");
		explain_errno(err, errlen, what, errno);
	}
	return obj;
}

static int check_object_shape(struct bpf_object *obj, char *err, size_t errlen)
{
	for (size_t i = 0; i < ITR_MAP_COUNT; i++)
		if (!bpf_object__find_map_by_name(obj, itr_map_names[i])) {
			snprintf(err, errlen,
			         "BPF object has no map named %s: not an itracker "
			         "data plane object",
			         itr_map_names[i]);
			return -EINVAL;
		}
	if (!bpf_object__find_program_by_name(obj, ITR_PROG_XDP) ||
	    !bpf_object__find_program_by_name(obj, ITR_PROG_TC) ||
	    !bpf_object__find_program_by_name(obj, ITR_PROG_FOLD)) {
		snprintf(err, errlen,
		         "BPF object lacks %s, %s or %s: not an itracker data plane object",
		         ITR_PROG_XDP, ITR_PROG_TC, ITR_PROG_FOLD);
		return -EINVAL;
	}
	return 0;
}

struct itr_dataplane *itr_dataplane_open(const struct itr_loader_opts *opts, char *err,
                                         size_t errlen)
{
	const char *root = opts->pin_root ? opts->pin_root : ITR_PIN_ROOT_DEFAULT;
	struct itr_dataplane *dp;
	bool any_pinned = false;
	int rc;

	use_libbpf_print(opts->verbose);
	if (opts->nifaces > ITR_MAX_IFACES) {
		snprintf(err, errlen, "too many interfaces (at most %d)", ITR_MAX_IFACES);
		return NULL;
	}
	/* Resolve interfaces first: a typo must not leave anything behind. */
	dp = calloc(1, sizeof(*dp));
	if (!dp) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < opts->nifaces; i++) {
		struct itr_iface_state *ifs = &dp->ifaces[i];
		if (strlen(opts->ifaces[i]) >= IF_NAMESIZE) {
			snprintf(err, errlen, "interface name '%s' is too long", opts->ifaces[i]);
			goto fail_free;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(opts->ifaces[i], opts->ifaces[j]) == 0) {
				snprintf(err, errlen, "interface %s given twice", opts->ifaces[i]);
				goto fail_free;
			}
		snprintf(ifs->name, sizeof(ifs->name), "%s", opts->ifaces[i]);
		ifs->ifindex = (int)if_nametoindex(ifs->name);
		ifs->xdp_link_fd = -1;
		if (!ifs->ifindex) {
			snprintf(err, errlen,
			         "no such interface: %s (list them with `ip -br link`)", ifs->name);
			goto fail_free;
		}
	}
	dp->nifaces = opts->nifaces;
	snprintf(dp->pin_root, sizeof(dp->pin_root), "%s", root);

	if (check_privileges(err, errlen))
		goto fail_free;
	if (itr_ensure_bpffs(root, err, errlen))
		goto fail_free;
	dp->obj = open_object(opts, root, err, errlen);
	if (!dp->obj)
		goto fail_free;
	if (check_object_shape(dp->obj, err, errlen))
		goto fail_obj;
	/* A refusal leaves every pin as it was: nothing is loaded or pinned
	 * yet, so there is nothing of this run's to unpin (unpinning the
	 * object's maps here would remove the pinned data plane it refused). */
	struct old_cache old[2];
	if (check_pinned_compat(dp->obj, root, err, errlen, &any_pinned, old, &dp->caches_replaced))
		goto fail_close;
	dp->maps_adopted = any_pinned;

	rc = bpf_object__load(dp->obj);
	if (rc) {
		for (int i = 0; i < dp->caches_replaced; i++)
			close(old[i].fd);
		explain_errno(err, errlen, "loading the BPF data plane", -rc);
		goto fail_obj;
	}
	if (dp->caches_replaced) {
		dp->flows_carried = carry_over_flows(dp, old, dp->caches_replaced);
		fprintf(stderr,
		        "itrackerd: %ld cached flows carried over into the new flow caches\n",
		        dp->flows_carried);
	}
	dp->fd_lpm_v4 = map_fd(dp->obj, ITR_MAP_LPM_V4);
	dp->fd_lpm_v6 = map_fd(dp->obj, ITR_MAP_LPM_V6);
	dp->fd_flows = map_fd(dp->obj, ITR_MAP_FLOWS);
	dp->fd_endpoints = map_fd(dp->obj, ITR_MAP_ENDPOINTS);
	dp->fd_counters = map_fd(dp->obj, ITR_MAP_COUNTERS);
	dp->fd_matrix = map_fd(dp->obj, ITR_MAP_MATRIX);
	dp->fd_policy = map_fd(dp->obj, ITR_MAP_POLICY);
	dp->fd_config = map_fd(dp->obj, ITR_MAP_CONFIG);
	dp->fd_fold = bpf_program__fd(bpf_object__find_program_by_name(dp->obj, ITR_PROG_FOLD));

	struct itr_config cfg;
	if (itr_dataplane_get_config(dp, &cfg)) {
		explain_errno(err, errlen, "reading the config map", errno);
		goto fail_obj;
	}
	/* An upgradable data plane's flow caches were replaced above; the rest
	 * is this ABI's, so it is recorded as such. */
	if (cfg.abi_version >= ITR_ABI_VERSION_UPGRADABLE && cfg.abi_version < ITR_ABI_VERSION)
		cfg.abi_version = 0;
	if (cfg.abi_version && cfg.abi_version != ITR_ABI_VERSION) {
		snprintf(err, errlen,
		         "pinned data plane under %s was written with map ABI %u, this build "
		         "uses %u; refusing to mix them (remove it with `itrackerd --purge`)",
		         root, cfg.abi_version, ITR_ABI_VERSION);
		goto fail_obj;
	}
	if (!cfg.abi_version) {
		__u32 zero = 0;
		cfg.abi_version = ITR_ABI_VERSION;
		if (bpf_map_update_elem(dp->fd_config, &zero, &cfg, BPF_ANY)) {
			explain_errno(err, errlen, "writing the config map", errno);
			goto fail_obj;
		}
	}
	/* The policy is this run's configuration: every slot, before anything
	 * is attached (an adopted map may hold a previous run's). */
	for (int cls = 0; cls < ITR_CLASS_MAX; cls++)
		if (itr_dataplane_set_policy(dp, cls, &opts->policy[cls])) {
			explain_errno(err, errlen, "writing the policy map", errno);
			goto fail_obj;
		}

	int xdp_fd = bpf_program__fd(bpf_object__find_program_by_name(dp->obj, ITR_PROG_XDP));
	int tc_fd = bpf_program__fd(bpf_object__find_program_by_name(dp->obj, ITR_PROG_TC));
	int tc_in_fd =
	    bpf_program__fd(bpf_object__find_program_by_name(dp->obj, ITR_PROG_TC_INGRESS));
	for (size_t i = 0; i < dp->nifaces; i++) {
		struct itr_iface_state *ifs = &dp->ifaces[i];
		ifs->ingress_tc =
		    opts->ingress_hook == ITR_INGRESS_TC ||
		    (opts->ingress_hook == ITR_INGRESS_AUTO && itr_iface_is_virtual(ifs->name));
		if (ifs->ingress_tc && tc_in_fd < 0) {
			snprintf(err, errlen, "the BPF object has no %s program (an older build?)",
			         ITR_PROG_TC_INGRESS);
			goto fail_detach;
		}
		drop_other_ingress_hook(dp, ifs);
		if (ifs->ingress_tc ? attach_tc(ifs, tc_in_fd, BPF_TC_INGRESS, err, errlen)
		                    : attach_xdp(dp, ifs, xdp_fd, opts->xdp_mode, err, errlen))
			goto fail_detach;
		if (attach_tc(ifs, tc_fd, BPF_TC_EGRESS, err, errlen))
			goto fail_detach;
	}
	pin_fold_program(dp);
	return dp;

fail_detach:
	/* Undo only what this run added; adopted attachments were there before
	 * and keep running (now with the new program). */
	for (size_t i = 0; i < dp->nifaces; i++) {
		struct itr_iface_state *ifs = &dp->ifaces[i];
		if (ifs->xdp_attached && !ifs->xdp_adopted) {
			char path[PATH_MAX];
			if (!link_pin_path(path, sizeof(path), dp->pin_root, ifs->name))
				unlink(path);
		}
		if (ifs->xdp_link_fd >= 0)
			close(ifs->xdp_link_fd);
		if (ifs->tc_attached && !ifs->tc_adopted)
			detach_tc(ifs->ifindex, BPF_TC_EGRESS);
		if (ifs->tc_in_attached && !ifs->tc_in_adopted)
			detach_tc(ifs->ifindex, BPF_TC_INGRESS);
	}
fail_obj:
	if (!dp->maps_adopted && dp->obj) {
		/* Maps pinned by this failed run would look like state to adopt. */
		bpf_object__unpin_maps(dp->obj, NULL);
	}
fail_close:
	bpf_object__close(dp->obj);
fail_free:
	free(dp);
	return NULL;
}

int itr_dataplane_fold(const struct itr_dataplane *dp)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);
	if (!dp || dp->fd_fold < 0)
		return -EINVAL;
	return bpf_prog_test_run_opts(dp->fd_fold, &run) ? -errno : 0;
}

void itr_dataplane_close(struct itr_dataplane *dp, bool keep_attached)
{
	if (!dp)
		return;
	/* What the flows counted since the last fold is in the matrix before
	 * this process goes (a data plane left attached keeps counting, and
	 * the next run folds the rest). */
	itr_dataplane_fold(dp);
	for (size_t i = 0; i < dp->nifaces; i++) {
		struct itr_iface_state *ifs = &dp->ifaces[i];
		if (keep_attached) {
			if (ifs->xdp_link_fd >= 0)
				close(ifs->xdp_link_fd);
		} else {
			detach_iface(dp, ifs);
		}
	}
	bpf_object__close(dp->obj);
	free(dp);
}

void itr_dataplane_describe(const struct itr_dataplane *dp, const char *prefix, FILE *out)
{
	for (size_t i = 0; dp && i < dp->nifaces; i++) {
		const struct itr_iface_state *s = &dp->ifaces[i];
		if (s->ingress_tc)
			fprintf(out, "%s%s: TC ingress%s%s, TC egress%s\n", prefix, s->name,
			        itr_iface_is_virtual(s->name) ? " (virtual device)" : "",
			        s->tc_in_adopted ? " (adopted)" : "",
			        s->tc_adopted ? " (adopted)" : "");
		else
			fprintf(out, "%s%s: XDP %s%s, TC egress%s\n", prefix, s->name,
			        s->xdp_mode_name, s->xdp_adopted ? " (adopted)" : "",
			        s->tc_adopted ? " (adopted)" : "");
	}
}

int itr_dataplane_purge(const char *pin_root, char *err, size_t errlen)
{
	const char *root = pin_root ? pin_root : ITR_PIN_ROOT_DEFAULT;
	struct if_nameindex *ifs = if_nameindex();
	char path[PATH_MAX];
	int removed = 0;

	use_libbpf_print(false);
	if (ifs) {
		for (struct if_nameindex *p = ifs; p->if_index; p++) {
			for (int k = 0; k < 2; k++) {
				enum bpf_tc_attach_point pt = k ? BPF_TC_INGRESS : BPF_TC_EGRESS;
				if (tc_filter_present((int)p->if_index, pt)) {
					detach_tc((int)p->if_index, pt);
					removed++;
				}
			}
		}
		if_freenameindex(ifs);
	}
	DIR *d = opendir(root);
	if (!d) {
		if (errno == ENOENT)
			return removed ? 0 : 0;
		snprintf(err, errlen, "cannot open %s: %s", root, strerror(errno));
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		bool ours = strncmp(de->d_name, ITR_PIN_LINK_XDP_PREFIX,
		                    strlen(ITR_PIN_LINK_XDP_PREFIX)) == 0;
		ours = ours || strcmp(de->d_name, ITR_PIN_PROG_FOLD) == 0;
		for (size_t i = 0; !ours && i < ITR_MAP_COUNT; i++)
			ours = strcmp(de->d_name, itr_map_names[i]) == 0;
		if (!ours)
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	rmdir(root); /* only succeeds if nothing else lives there */
	return 0;
}

int itr_dataplane_get_config(const struct itr_dataplane *dp, struct itr_config *cfg)
{
	__u32 zero = 0;
	memset(cfg, 0, sizeof(*cfg));
	return bpf_map_lookup_elem(dp->fd_config, &zero, cfg);
}

int itr_dataplane_bump_generation(struct itr_dataplane *dp, const char *vtag,
                                  uint64_t *new_generation)
{
	struct itr_config cfg;
	struct timespec ts;
	__u32 zero = 0;

	if (itr_dataplane_get_config(dp, &cfg))
		return -errno;
	cfg.generation++;
	cfg.abi_version = ITR_ABI_VERSION;
	clock_gettime(CLOCK_REALTIME, &ts);
	cfg.updated_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	memset(cfg.vtag, 0, sizeof(cfg.vtag));
	if (vtag)
		snprintf(cfg.vtag, sizeof(cfg.vtag), "%s", vtag);
	if (bpf_map_update_elem(dp->fd_config, &zero, &cfg, BPF_ANY))
		return -errno;
	if (new_generation)
		*new_generation = cfg.generation;
	return 0;
}

int itr_dataplane_set_policy(struct itr_dataplane *dp, enum itr_class cls,
                             const struct itr_policy *policy)
{
	__u32 key = (__u32)cls;
	if (key >= ITR_CLASS_MAX)
		return -EINVAL;
	return bpf_map_update_elem(dp->fd_policy, &key, policy, BPF_ANY) ? -errno : 0;
}
