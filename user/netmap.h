/* netmap.h - the network map: PIDs (name, id, ASID, LOC, prefixes), the
 * p-distance between them, lookups, file parsing and syncing to the kernel.
 *
 * A loaded map is immutable and reference counted: readers (HTTP threads,
 * the tracker) take a reference, a reload builds a new map and swaps it in
 * (see itr_netmap_current/itr_netmap_publish), so no reader ever sees a
 * half-built map.
 */
#ifndef ITR_NETMAP_H
#define ITR_NETMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "itracker_maps.h"

#define ITR_NAME_MAX 64 /* ALTO: at most 64 chars of [A-Za-z0-9-:@_] */

struct itr_prefix {
	uint8_t family; /* 4 or 6 */
	uint8_t len;    /* prefix length in bits */
	uint8_t addr[16];
};

struct itr_pid {
	char name[ITR_NAME_MAX + 1];
	uint32_t id;  /* numeric id (kernel value), never ITR_PID_NONE */
	uint32_t asn;
	uint32_t loc; /* ITR_LOC_NONE if not given */
	size_t nprefixes;
	struct itr_prefix *prefixes;
};

/* Cost tiers used where no explicit cost is given. */
enum itr_tier {
	ITR_TIER_SAME_PID = 0,
	ITR_TIER_SAME_LOC,
	ITR_TIER_SAME_AS,
	ITR_TIER_OTHER_AS,
	ITR_TIER_MAX,
};

struct itr_netmap; /* opaque */

struct itr_netmap_error {
	char file[256];
	int line;   /* 1-based, 0 if not applicable */
	int column; /* 1-based, 0 if unknown */
	char reason[256];
};

/* "file:line:column: reason" into buf. */
void itr_netmap_error_format(const struct itr_netmap_error *err, char *buf, size_t len);

/* Load a map file; the format is detected from content (JSON object: ALTO
 * network map + cost map; anything else: the text format). NULL on error
 * with err filled. */
struct itr_netmap *itr_netmap_load_file(const char *path, struct itr_netmap_error *err);
struct itr_netmap *itr_netmap_parse_text(const char *buf, size_t len, const char *filename,
					 struct itr_netmap_error *err);
struct itr_netmap *itr_netmap_parse_alto(const char *buf, size_t len, const char *filename,
					 struct itr_netmap_error *err);

void itr_netmap_ref(struct itr_netmap *map);
void itr_netmap_unref(struct itr_netmap *map);

/* Accessors. */
const char *itr_netmap_vtag(const struct itr_netmap *map);        /* changes iff content does */
const char *itr_netmap_resource_id(const struct itr_netmap *map); /* ALTO resource id */
size_t itr_netmap_pid_count(const struct itr_netmap *map);
const struct itr_pid *itr_netmap_pid_at(const struct itr_netmap *map, size_t i);
const struct itr_pid *itr_netmap_pid_by_name(const struct itr_netmap *map, const char *name);
const struct itr_pid *itr_netmap_pid_by_id(const struct itr_netmap *map, uint32_t id);
uint32_t itr_netmap_tier(const struct itr_netmap *map, enum itr_tier tier);
/* Whether src->dst has an explicit cost entry (else it is derived). */
bool itr_netmap_cost_is_explicit(const struct itr_netmap *map, const struct itr_pid *src,
				 const struct itr_pid *dst);

/* Longest-prefix match; falls back to the default PID if one is declared;
 * NULL if no PID covers the address. family is 4 or 6, addr big-endian. */
const struct itr_pid *itr_netmap_lookup(const struct itr_netmap *map, int family,
					const uint8_t *addr);
/* Same, from text ("192.0.2.1", "2001:db8::1"); NULL on a bad address too. */
const struct itr_pid *itr_netmap_lookup_str(const struct itr_netmap *map, const char *ip);

/* p-distance: explicit cost if given, else the tier from the hierarchy.
 * A NULL end (no PID) costs the other-AS tier plus one. */
uint32_t itr_netmap_cost(const struct itr_netmap *map, const struct itr_pid *src,
			 const struct itr_pid *dst);
enum itr_class itr_netmap_class(const struct itr_pid *a, const struct itr_pid *b);

/* Kernel sync: make the two LPM tries hold exactly new_map's prefixes.
 * old_map is what the tries are believed to hold (NULL: read the tries and
 * diff against their real content, as after a restart). Adds and changes
 * are applied before deletes so that no address covered in both maps is
 * ever unmatched. Returns 0 or -errno. The caller bumps the generation. */
struct itr_netmap_sync_stats {
	size_t added, changed, deleted;
};
int itr_netmap_sync_bpf(const struct itr_netmap *old_map, const struct itr_netmap *new_map,
			int lpm_v4_fd, int lpm_v6_fd, struct itr_netmap_sync_stats *stats);

/* The process-wide current map (thread safe). current() returns a new
 * reference (or NULL) that the caller unrefs; publish() takes over the
 * caller's reference and drops the old map's. */
struct itr_netmap *itr_netmap_current(void);
void itr_netmap_publish(struct itr_netmap *map);

/* Parse "192.0.2.0/24" / "2001:db8::/32" (host bits must be zero). */
int itr_prefix_parse(const char *text, struct itr_prefix *out, char *why, size_t whylen);

#endif
