/* loader.h - load, pin, attach, adopt and detach the kernel data plane.
 *
 * The BPF object comes embedded in the binary (the libbpf skeleton's ELF
 * bytes) or from a file (--bpf-object, for upgrades). Maps are pinned by name
 * under the pin root and reused when already pinned, so counters survive a
 * daemon restart; XDP links are pinned too and updated in place, so a new
 * program replaces the old one atomically; the TC egress filter is replaced
 * in place (BPF_TC_F_REPLACE), never duplicated.
 */
#ifndef ITR_LOADER_H
#define ITR_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "itracker_maps.h"

enum itr_xdp_mode {
	ITR_XDP_AUTO = 0, /* native, falling back to generic */
	ITR_XDP_NATIVE,
	ITR_XDP_GENERIC,
};

#define ITR_MAX_IFACES 32

/* Where ingress traffic is classified. auto: TC on virtual devices (veth,
 * bridges, VLANs, tunnels: no /sys/class/net/IF/device), where native XDP
 * costs the stack its GRO aggregation and generic XDP runs on every
 * segment; XDP (native where the driver has it, see xdp_mode) on physical
 * NICs, where it runs before the stack allocates anything. */
enum itr_ingress_hook {
	ITR_INGRESS_AUTO = 0,
	ITR_INGRESS_XDP,
	ITR_INGRESS_TC,
};

struct itr_loader_opts {
	const char *pin_root;   /* default ITR_PIN_ROOT_DEFAULT */
	const char *bpf_object; /* NULL: the embedded object */
	enum itr_xdp_mode xdp_mode;
	enum itr_ingress_hook ingress_hook;
	const char *ifaces[ITR_MAX_IFACES];
	size_t nifaces;
	bool verbose;
	/* Egress policy per class, written into every slot at open (all zero:
	 * count only). */
	struct itr_policy policy[ITR_CLASS_MAX];
};

struct itr_iface_state {
	char name[32];
	int ifindex;
	bool xdp_attached; /* by us, in this run or adopted */
	bool xdp_adopted;  /* a pinned link existed and was updated */
	bool tc_attached;
	bool tc_adopted;     /* our filter was already there */
	bool ingress_tc;     /* ingress is classified by TC, not XDP */
	bool tc_in_attached; /* our TC ingress filter, by us or adopted */
	bool tc_in_adopted;
	const char *xdp_mode_name; /* "native" or "generic" */
	int xdp_link_fd;
};

struct itr_dataplane {
	struct bpf_object *obj;
	char pin_root[256];
	int fd_lpm_v4, fd_lpm_v6, fd_flows, fd_endpoints, fd_counters, fd_matrix, fd_policy,
	    fd_config;
	int fd_fold;         /* the itr_fold program (ITR_PROG_FOLD) */
	bool maps_adopted;   /* pinned maps existed and were reused */
	int caches_replaced; /* pinned flow caches of an older layout replaced */
	long flows_carried;  /* ... and the entries copied from them */
	struct itr_iface_state ifaces[ITR_MAX_IFACES];
	size_t nifaces;
};

/* Load the object, reuse or create pinned maps, attach to every interface.
 * On failure nothing attached by this call stays attached; err holds one
 * line saying what failed and what to do. Returns NULL on failure. */
struct itr_dataplane *itr_dataplane_open(const struct itr_loader_opts *opts, char *err,
                                         size_t errlen);

/* Stop: keep_attached leaves programs, links and maps in place (the data
 * plane keeps counting); otherwise detach from every interface and keep the
 * maps pinned (counters stay readable and are adopted by the next start). */
void itr_dataplane_close(struct itr_dataplane *dp, bool keep_attached);

/* Whether ifname is a virtual device (no device behind it in sysfs). */
bool itr_iface_is_virtual(const char *ifname);

/* One line per interface: "PREFIXeth0: XDP native (adopted), TC egress"
 * or "PREFIXveth0: TC ingress (virtual device), TC egress".
 * Nothing for a NULL dp. */
void itr_dataplane_describe(const struct itr_dataplane *dp, const char *prefix, FILE *out);

/* Remove everything under the pin root that itracker pinned and detach
 * programs from the given interfaces (or from every interface where our
 * TC filter or a pinned XDP link is found). Returns 0 or -errno. */
int itr_dataplane_purge(const char *pin_root, char *err, size_t errlen);

/* Moves every flow's unfolded BitTorrent counts into the PID matrix (runs
 * the itr_fold program). Safe from any thread, and beside the packets:
 * each count is taken whole, by one folder. 0 or -errno. itrackerd calls
 * it every ITR_FOLD_PERIOD_MS, before each price sample and on exit. */
int itr_dataplane_fold(const struct itr_dataplane *dp);

/* Config map access: read, and bump the generation with a new vtag. */
int itr_dataplane_get_config(const struct itr_dataplane *dp, struct itr_config *cfg);
int itr_dataplane_bump_generation(struct itr_dataplane *dp, const char *vtag,
                                  uint64_t *new_generation);

/* Policy: set the record for one class. */
int itr_dataplane_set_policy(struct itr_dataplane *dp, enum itr_class cls,
                             const struct itr_policy *policy);

/* "intra-pid" (or "intra_pid"), "inter-as"... -> enum; -1 if unknown. */
int itr_class_from_name(const char *name);

/* Make sure a bpffs is mounted at (or above) dir and dir exists. */
int itr_ensure_bpffs(const char *dir, char *err, size_t errlen);

#endif
