/* itracker_names.h - the names of the contract in itracker_maps.h: pinned
 * maps, link pins, traffic classes, traffic kinds and directions, as pins,
 * metrics labels, JSON keys and options spell them. Kept beside the
 * contract so that a new map, class or kind gets its name in the same
 * change; every user-space reader (loader, stats, metrics, itrackerctl)
 * takes the names from here. User space only (the BPF side needs no names).
 */
#ifndef ITRACKER_NAMES_H
#define ITRACKER_NAMES_H

#include <stddef.h>
#include <stdio.h>

#include <linux/if_link.h>

#include "itracker_maps.h"

/* Every map the data plane pins under the pin root. */
static const char *const itr_map_names[] = {
    ITR_MAP_LPM_V4,   ITR_MAP_LPM_V6, ITR_MAP_FLOWS_V4, ITR_MAP_FLOWS,  ITR_MAP_ENDPOINTS,
    ITR_MAP_COUNTERS, ITR_MAP_MATRIX, ITR_MAP_POLICY,   ITR_MAP_CONFIG,
};
#define ITR_MAP_COUNT (sizeof(itr_map_names) / sizeof(itr_map_names[0]))

/* Metrics labels and JSON keys; options also take "-" for "_". */
static const char *const itr_class_names[ITR_CLASS_MAX] = {
    [ITR_CLASS_INTRA_PID] = "intra_pid", [ITR_CLASS_INTRA_LOC] = "intra_loc",
    [ITR_CLASS_INTRA_AS] = "intra_as",   [ITR_CLASS_INTER_AS] = "inter_as",
    [ITR_CLASS_UNKNOWN] = "unknown",
};

static const char *const itr_kind_names[ITR_KIND_MAX] = {
    [ITR_KIND_NONE] = "none",
    [ITR_KIND_PEER_WIRE] = "peer_wire",
    [ITR_KIND_UTP] = "utp",
    [ITR_KIND_DHT] = "dht",
    [ITR_KIND_UDP_TRACKER] = "udp_tracker",
    [ITR_KIND_HTTP_TRACKER] = "http_tracker",
    [ITR_KIND_ENDPOINT] = "endpoint",
};

static const char *const itr_dir_names[ITR_DIR_MAX] = {
    [ITR_DIR_INGRESS] = "ingress",
    [ITR_DIR_EGRESS] = "egress",
};

/* How an XDP program is attached (bpf_xdp_query's attach_mode). */
static inline const char *itr_xdp_attach_mode_name(unsigned mode)
{
	switch (mode) {
	case XDP_ATTACHED_DRV:
		return "native";
	case XDP_ATTACHED_SKB:
		return "generic";
	case XDP_ATTACHED_HW:
		return "offload";
	case XDP_ATTACHED_MULTI:
		return "multi";
	default:
		return "none";
	}
}

/* "<root>/link_xdp_<ifname>": 0, or -1 when it does not fit. */
static inline int itr_xdp_link_pin_path(char *buf, size_t len, const char *root, const char *ifname)
{
	int n = snprintf(buf, len, "%s/%s%s", root, ITR_PIN_LINK_XDP_PREFIX, ifname);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

#endif /* ITRACKER_NAMES_H */
