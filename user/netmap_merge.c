/* netmap_merge.c - build the map itrackerd serves when routes feed PIDs:
 * the file map's PIDs, tiers, costs and prefixes plus the route prefixes,
 * through the same builder (and so the same checks and vtag) as a file.
 *
 * itr_netmap_merged_kentry states, for one prefix, what the merge gives the
 * kernel; the route follower uses it to update the tries one prefix at a
 * time without rebuilding the map, and the unit tests hold it equal to
 * itr_netmap_kernel_entries(itr_netmap_merge(...)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netmap_build.h"
#include "netmap_merge.h"

bool nm_cost_find(const struct itr_netmap *m, uint32_t src, uint32_t dst, uint32_t *cost);

const struct itr_pid *itr_netmap_exact(const struct itr_netmap *map, const struct itr_prefix *p)
{
	size_t lo = 0, hi = map->nentries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = itr_prefix_cmp(&map->entries[mid].prefix, p);
		if (c == 0)
			return &map->pids[map->entries[mid].pid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct itr_pid_info pid_info(const struct itr_pid *p, uint32_t flags)
{
	return (struct itr_pid_info){.pid = p->id, .asn = p->asn, .loc = p->loc, .flags = flags};
}

bool itr_netmap_merged_kentry(const struct itr_netmap *file, const struct itr_prefix *p,
                              const struct itr_pid *route_pid, bool other_zero_routed,
                              enum itr_prefix_winner winner, struct itr_pid_info *out)
{
	const struct itr_pid *def = file->default_pid;
	if (p->len == 0 && def) {
		if (route_pid && winner == ITR_WINNER_ROUTES) {
			*out = pid_info(route_pid, 0);
			return true;
		}
		/* A routed /0 of the other family turns the default into two
		 * explicit prefixes, of which this one stays the default's. */
		bool explicit_default = other_zero_routed && winner == ITR_WINNER_ROUTES;
		*out = pid_info(def, explicit_default ? 0 : ITR_PID_F_DEFAULT);
		return true;
	}
	const struct itr_pid *from_file = itr_netmap_exact(file, p);
	if (route_pid && (winner == ITR_WINNER_ROUTES || !from_file)) {
		*out = pid_info(route_pid, 0);
		return true;
	}
	if (from_file) {
		*out = pid_info(from_file, 0);
		return true;
	}
	return false;
}

static bool pid_of_map(const struct itr_netmap *map, const struct itr_pid *p)
{
	return p >= map->pids && p < map->pids + map->npids;
}

struct itr_netmap *itr_netmap_merge(const struct itr_netmap *file,
                                    const struct itr_route_prefix *routes, size_t n,
                                    enum itr_prefix_winner winner, struct itr_netmap_error *err)
{
	struct nm_builder *b = nm_builder_new("<routes>", false, err);
	uint8_t *overridden = NULL;
	if (!b)
		return NULL;
	nm_set_resource_id(b, file->resource_id, 0, 0);
	for (int t = 0; t < ITR_TIER_MAX; t++)
		nm_set_tier(b, (enum itr_tier)t, file->tiers[t], 0, 0);
	/* Interned in file order, so name index i is file PID i. */
	for (size_t i = 0; i < file->npids; i++) {
		const struct itr_pid *p = &file->pids[i];
		uint32_t name = nm_intern(b, p->name, strlen(p->name), 0, 0);
		if (name != i) {
			nm_error(b, 0, 0, "internal: PID '%s' interned out of order", p->name);
			goto fail;
		}
		nm_declare_pid(b, name, true, p->id, p->asn, p->loc, 0, 0);
	}
	for (size_t s = 0; file->ncosts && s <= file->cost_mask; s++) {
		const struct nm_cost_slot *c = &file->costs[s];
		if (!c->key)
			continue;
		const struct itr_pid *src = itr_netmap_pid_by_id(file, (uint32_t)(c->key >> 32));
		const struct itr_pid *dst = itr_netmap_pid_by_id(file, (uint32_t)c->key);
		nm_add_cost(b, (uint32_t)(src - file->pids), (uint32_t)(dst - file->pids), c->cost,
		            0, 0);
	}
	/* The file's inter-AS links stay with the merged map (price.h). */
	for (size_t i = 0; i < file->nlinks; i++)
		nm_add_link(b, &file->links[i], 0, 0);

	overridden = calloc(file->nentries + 1, 1);
	if (!overridden) {
		nm_error(b, 0, 0, "out of memory");
		goto fail;
	}
	bool zero_routed[2] = {false, false}; /* [v4, v6] a route wins that /0 */
	for (size_t i = 0; i < n && !nm_failed(b); i++) {
		const struct itr_route_prefix *r = &routes[i];
		if (!r->pid || !pid_of_map(file, r->pid)) {
			nm_error(b, 0, 0, "route prefix %zu: PID not from the file map", i);
			break;
		}
		if (r->prefix.len == 0 && file->default_pid) {
			if (winner == ITR_WINNER_FILE)
				continue;
			zero_routed[r->prefix.family == 6] = true;
		} else {
			const struct itr_pid *f = itr_netmap_exact(file, &r->prefix);
			if (f) {
				if (winner == ITR_WINNER_FILE)
					continue;
				/* exact() found it, so this search finds its index */
				size_t lo = 0, hi = file->nentries;
				while (lo < hi) {
					size_t mid = lo + (hi - lo) / 2;
					if (itr_prefix_cmp(&file->entries[mid].prefix, &r->prefix) <
					    0)
						lo = mid + 1;
					else
						hi = mid;
				}
				overridden[lo] = 1;
			}
		}
		nm_add_prefix(b, (uint32_t)(r->pid - file->pids), &r->prefix, 0, 0);
	}
	for (size_t i = 0; i < file->nentries; i++)
		if (!overridden[i])
			nm_add_prefix(b, file->entries[i].pid, &file->entries[i].prefix, 0, 0);
	if (file->default_pid) {
		uint32_t def = (uint32_t)(file->default_pid - file->pids);
		if (!zero_routed[0] && !zero_routed[1]) {
			nm_set_default(b, def, 0, 0);
		} else {
			for (int f = 0; f < 2; f++) {
				if (zero_routed[f])
					continue;
				struct itr_prefix zero = {.family = f ? 6 : 4};
				nm_add_prefix(b, def, &zero, 0, 0);
			}
		}
	}
	free(overridden);
	return nm_builder_finish(b);
fail:
	free(overridden);
	nm_builder_free(b);
	return NULL;
}
