/* netmap_build.h - internal to the netmap module (netmap*.c only): the map
 * object's layout and the builder that both parsers (text and ALTO JSON)
 * fill and that validates and freezes a map.
 *
 * Parsers report what they read, statement by statement, with the place it
 * came from; the builder checks what can only be checked with the whole file
 * in view (unknown PIDs, duplicate prefixes and ids, tier order) and builds
 * the immutable, indexed struct itr_netmap.
 */
#ifndef ITR_NETMAP_BUILD_H
#define ITR_NETMAP_BUILD_H

#include <stdatomic.h>
#include <stdarg.h>

#include "netmap.h"

/* Make *arr (of *cap elements of elem bytes) hold at least need, doubling.
 * 0, or -1 when out of memory (*arr unchanged). */
int nm_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Largest map file accepted (both formats). */
#define ITR_NETMAP_MAX_FILE (256u << 20)
/* Largest id a PID may have: 2^32-1 is kept free as a sentinel. */
#define ITR_PID_ID_MAX 0xfffffffeu

/* One prefix of a frozen map; the array is sorted by itr_prefix_cmp. */
struct nm_entry {
	struct itr_prefix prefix;
	uint32_t pid; /* index into map->pids */
};

struct nm_lpm4_slot {
	uint32_t addr; /* host byte order, host bits zero */
	uint32_t pid;
};

struct nm_lpm6_slot {
	uint64_t hi, lo; /* host byte order, host bits zero */
	uint32_t pid;
};

struct nm_cost_slot {
	uint64_t key; /* src id << 32 | dst id; 0 = empty (ids are never 0) */
	uint32_t cost;
};

struct itr_netmap {
	atomic_uint refs;
	char resource_id[ITR_NAME_MAX + 1];
	char vtag[65];

	size_t npids;
	struct itr_pid *pids;            /* sorted by name (strcmp) */
	uint32_t *by_id;                 /* indices into pids, sorted by id */
	struct itr_prefix *prefix_store; /* every PID's prefixes, one block */
	const struct itr_pid *default_pid;
	uint32_t tiers[ITR_TIER_MAX];

	size_t nentries;
	struct nm_entry *entries;

	size_t ncosts;
	size_t cost_mask; /* table size - 1 (a power of two) */
	struct nm_cost_slot *costs;

	/* Longest-prefix match: for each prefix length a sorted run of slots
	 * in one block; lens4/lens6 list the non-empty lengths, longest first. */
	struct nm_lpm4_slot *lpm4;
	uint32_t lpm4_off[34];
	/* For long runs of length >= 16: where each value of the top 16
	 * address bits starts in the run (65537 absolute positions), so a
	 * lookup binary-searches a handful of slots, not the whole run. */
	uint32_t *lpm4_top16[33];
	uint8_t lens4[33];
	int nlens4;
	size_t nlinks;
	struct itr_link *links; /* sorted by name */
	/* A derived map (itr_netmap_with_link_costs) borrows every table above
	 * from base and owns only link_extra. */
	struct itr_netmap *base;
	uint32_t *link_extra;

	struct nm_lpm6_slot *lpm6;
	uint32_t lpm6_off[130];
	uint8_t lens6[129];
	int nlens6;
};

/* Total order on prefixes: family, then address bytes, then length. */
int itr_prefix_cmp(const struct itr_prefix *a, const struct itr_prefix *b);
/* "10.0.0.0/8" into buf (at least 64 bytes). */
const char *itr_prefix_format(const struct itr_prefix *p, char *buf, size_t len);
/* ALTO name rules; why gets the reason when false. */
bool itr_netmap_name_valid(const char *s, size_t len, char *why, size_t whylen);

/* Where a statement came from: the text parser passes line/column; the JSON
 * parser passes line 0 and lets the builder name the JSON path. */
struct nm_builder;

struct nm_builder *nm_builder_new(const char *filename, bool json, struct itr_netmap_error *err);
/* A builder for a map file of len bytes: NULL (err filled) when the file is
 * larger than ITR_NETMAP_MAX_FILE, what both parsers refuse first. */
struct nm_builder *nm_builder_for_file(const char *filename, bool json, size_t len,
                                       struct itr_netmap_error *err);
void nm_builder_free(struct nm_builder *b);

/* Fill err (first error wins) and return -1. */
int nm_error(struct nm_builder *b, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool nm_failed(const struct nm_builder *b);

/* Names are interned: every PID name mentioned gets an index; the first
 * mention's place is kept for "unknown PID" errors. UINT32_MAX on error. */
uint32_t nm_intern(struct nm_builder *b, const char *name, size_t len, int line, int col);
/* Index of a name already interned, or UINT32_MAX. */
uint32_t nm_find(const struct nm_builder *b, const char *name);
const char *nm_name(const struct nm_builder *b, uint32_t name);
bool nm_declared(const struct nm_builder *b, uint32_t name);

const char *nm_resource_id(const struct nm_builder *b);
int nm_set_resource_id(struct nm_builder *b, const char *rid, int line, int col);
/* have_id false: the builder assigns one (see nm_builder_finish). */
int nm_declare_pid(struct nm_builder *b, uint32_t name, bool have_id, uint32_t id, uint32_t asn,
                   uint32_t loc, int line, int col);
/* For JSON, col is the index in the PID's ipv4/ipv6 array. */
int nm_add_prefix(struct nm_builder *b, uint32_t name, const struct itr_prefix *p, int line,
                  int col);
int nm_set_tier(struct nm_builder *b, enum itr_tier tier, uint32_t value, int line, int col);
int nm_add_cost(struct nm_builder *b, uint32_t src, uint32_t dst, uint32_t cost, int line, int col);
int nm_set_default(struct nm_builder *b, uint32_t name, int line, int col);
/* An inter-AS link; what needs the whole map (ASNs in use, duplicates) is
 * checked by nm_builder_finish. For JSON, line is 0 and the place is
 * itracker.links.<name>. */
int nm_add_link(struct nm_builder *b, const struct itr_link *link, int line, int col);

/* Validate and freeze. PIDs declared without an id get, in byte order of
 * their names, the smallest ids from 1 up that no PID declared with an id
 * uses. NULL on error (err filled). The builder is freed either way. */
struct itr_netmap *nm_builder_finish(struct nm_builder *b);

extern const char *const itr_tier_names[ITR_TIER_MAX];

#endif
