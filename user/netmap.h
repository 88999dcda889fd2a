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
	uint32_t id; /* numeric id (kernel value), never ITR_PID_NONE */
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

/* An inter-AS link the operator declared (`link` statement / itracker.links):
 * its capacity and the BitTorrent budget on it, for the price controller
 * (price.h). Rates are bits per second, one direction. */
struct itr_link {
	char name[ITR_NAME_MAX + 1];
	uint32_t asn;      /* the AS whose link it is */
	uint32_t peer_asn; /* the AS at the other end; 0: asn's uplink (to every other AS) */
	uint64_t capacity_bps;
	uint64_t budget_bps;      /* a share is resolved against the capacity */
	uint32_t budget_pct;      /* the share as written; 0 when given as a rate */
	uint64_t host_upload_bps; /* one host's upload in asn (sizes gateways); 0: unknown */
};

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

/* The map as one document of the ALTO JSON form that itr_netmap_parse_alto
 * reads back into a map with the same vtag (network map, explicit costs,
 * and the "itracker" member): what an ALTO update stream sends followers.
 * A new jansson reference, NULL on ENOMEM. */
struct json_t;
struct json_t *itr_netmap_alto_document(const struct itr_netmap *map);

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
/* Whether map's kernel entries (its prefixes plus a default PID's /0) fit
 * tries of these capacities; why names the family, the count and the
 * capacity when not. The sync refuses (-E2BIG) a map that does not fit
 * before it writes anything. */
bool itr_netmap_fits(const struct itr_netmap *map, size_t v4_cap, size_t v6_cap, char *why,
                     size_t whylen);
/* A trie's max_entries (SIZE_MAX if the kernel does not say). */
size_t itr_netmap_trie_capacity(int lpm_fd);

/* ---- kernel entries and the diff a sync applies ------------------------
 * What the tries should hold for a map: one entry per prefix (flags 0) and,
 * if the map has a default PID, 0.0.0.0/0 and ::/0 with ITR_PID_F_DEFAULT.
 * Arrays are sorted by prefix (family, address bytes, length). */
struct itr_netmap_kentry {
	struct itr_prefix prefix;
	struct itr_pid_info info;
};

enum itr_netmap_op_kind {
	ITR_NETMAP_OP_ADD = 0,    /* prefix not in the old set */
	ITR_NETMAP_OP_CHANGE = 1, /* prefix in both, value differs */
	ITR_NETMAP_OP_DELETE = 2, /* prefix not in the new set */
};

struct itr_netmap_op {
	enum itr_netmap_op_kind kind;
	struct itr_netmap_kentry entry; /* new value; old value for DELETE */
};

/* The kernel entries of map (NULL map: none). *out is malloc'd (free it);
 * 0 or -ENOMEM. */
int itr_netmap_kernel_entries(const struct itr_netmap *map, struct itr_netmap_kentry **out,
                              size_t *n);
/* Read both tries (either fd may be -1 to skip it); host bits found in a key
 * are cleared. Sorted like itr_netmap_kernel_entries. 0 or -errno. */
int itr_netmap_dump_bpf(int lpm_v4_fd, int lpm_v6_fd, struct itr_netmap_kentry **out, size_t *n);
/* Sort entries by prefix (for sets read from elsewhere). */
void itr_netmap_kentries_sort(struct itr_netmap_kentry *entries, size_t n);
/* The one trie writer: apply ops to the tries in their order (the callers
 * put every ADD and CHANGE before every DELETE), batched where the kernel
 * supports batches on LPM tries. 0 or -errno. */
int itr_netmap_write_ops(int lpm_v4_fd, int lpm_v6_fd, const struct itr_netmap_op *ops,
                         size_t nops);
/* The operations turning sorted set old into sorted set new: every ADD and
 * CHANGE (in prefix order) before every DELETE. *ops is malloc'd (NULL when
 * *nops is 0). 0 or -ENOMEM. */
int itr_netmap_diff(const struct itr_netmap_kentry *old, size_t nold,
                    const struct itr_netmap_kentry *new_entries, size_t nnew,
                    struct itr_netmap_op **ops, size_t *nops);

/* Declared inter-AS links, sorted by name. */
size_t itr_netmap_link_count(const struct itr_netmap *map);
const struct itr_link *itr_netmap_link_at(const struct itr_netmap *map, size_t i);
/* The uplink of asn, or the link joining asn and peer_asn (either way
 * round) when peer_asn != 0; NULL if none is declared. */
const struct itr_link *itr_netmap_link_find(const struct itr_netmap *map, uint32_t asn,
                                            uint32_t peer_asn);

/* P4P's dynamic p-distance. A map equal to base except that the derived
 * cost between two ASes (other-as tier, no explicit cost) grows by the
 * extra cost of the links on the path: the link joining the two ASes if one
 * is declared, else the source's and the destination's uplinks. extra has
 * itr_netmap_link_count(base) entries, in link order. The new map shares
 * base's tables (it holds a reference) and has its own vtag, derived from
 * base's and the extras. NULL on out of memory. */
struct itr_netmap *itr_netmap_with_link_costs(struct itr_netmap *base, const uint32_t *extra);
/* The map a derived map was made from; map itself for a map read from a file. */
struct itr_netmap *itr_netmap_base(struct itr_netmap *map);
/* The extra cost of link i in this map (0 for a map read from a file). */
uint32_t itr_netmap_link_extra(const struct itr_netmap *map, size_t i);

/* "8mbit", "500kbit", "1gbit", "1000000" (bits/s), "12.5mbit" -> bits/s;
 * 0 or -1. */
int itr_rate_parse(const char *text, size_t len, uint64_t *bps);

/* More accessors. */
const struct itr_pid *itr_netmap_default_pid(const struct itr_netmap *map); /* or NULL */
size_t itr_netmap_prefix_count(const struct itr_netmap *map); /* v4 + v6, no default */
/* What an operator should hear about a valid map, or NULL: a map with no
 * prefixes and no default PID puts every address outside the map. */
const char *itr_netmap_warning(const struct itr_netmap *map);
/* Prefixes of one family (4 or 6), no default. */
size_t itr_netmap_prefix_count_family(const struct itr_netmap *map, int family);
size_t itr_netmap_explicit_cost_count(const struct itr_netmap *map);

/* The process-wide current map (thread safe). current() returns a new
 * reference (or NULL) that the caller unrefs; publish() takes over the
 * caller's reference and drops the old map's. */
struct itr_netmap *itr_netmap_current(void);
void itr_netmap_publish(struct itr_netmap *map);
/* How many publishes so far: a reader that cached something derived from
 * the current map rechecks this (one load) instead of taking the map's
 * lock. A count read before itr_netmap_current() belongs to that map or
 * an older one. */
uint64_t itr_netmap_publish_count(void);
/* One watcher of publishes (the ALTO update streams): fn runs inside
 * publish, under the map lock, so it must only wake a thread of its own.
 * NULL removes it. */
void itr_netmap_on_publish(void (*fn)(void *arg), void *arg);

/* Parse "192.0.2.0/24" / "2001:db8::/32" (host bits must be zero). */
int itr_prefix_parse(const char *text, struct itr_prefix *out, char *why, size_t whylen);

#endif
