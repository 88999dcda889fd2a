/* netmap_alto.c - parser for network maps in ALTO (RFC 7285) JSON form.
 *
 * The file is one JSON object holding a full ALTO network-map response, an
 * optional full cost-map response that depends on it, and an optional
 * "itracker" member with what ALTO has no field for:
 *
 *   {
 *     "network-map": {                               RFC 7285 §11.2.1.6
 *       "meta": {"vtag": {"resource-id": "example-networkmap", "tag": "..."}},
 *       "network-map": {"a-metro1": {"ipv4": ["10.10.1.0/24"],
 *                                    "ipv6": ["fd00:10:1::/48"]}, ...}
 *     },
 *     "cost-map": {                                  RFC 7285 §11.2.3.6
 *       "meta": {"dependent-vtags": [{"resource-id": "example-networkmap",
 *                                     "tag": "..."}],
 *                "cost-type": {"cost-mode": "numerical",
 *                              "cost-metric": "routingcost"}},
 *       "cost-map": {"a-metro1": {"a-metro2": 7}, ...}
 *     },
 *     "itracker": {
 *       "pids": {"a-metro1": {"id": 1, "asid": 64500, "loc": 1}, ...},
 *       "tiers": {"same-pid": 1, "same-loc": 5, "same-as": 10, "other-as": 100},
 *       "default-pid": "a-metro1",
 *       "links": {"a-transit": {"asn": 64500, "uplink": true, "capacity": "1gbit",
 *                               "budget": "30%", "host-upload": "20mbit"},
 *                 "a-b": {"asn": 64500, "peer-asn": 64501, "capacity": 10000000000,
 *                         "budget": "2gbit"}}
 *     }
 *   }
 *
 * Rules: duplicate object keys are rejected (JSON_REJECT_DUPLICATES);
 * unknown members are ignored, as RFC 7285 asks; address types other than
 * ipv4/ipv6 are ignored. Costs are kept as unsigned 32-bit integers, so a
 * fractional or negative cost is refused. The input's own vtag tag is only
 * used to check the cost map's dependent-vtags; the loaded map's vtag is
 * computed from its content, like a text map's. A PID with no entry in
 * itracker.pids gets ASID 0, LOC 0 and an id assigned as documented in
 * netmap_build.h: in byte order of their names, the smallest ids from 1 up
 * that no itracker.pids entry uses.
 *
 * Syntax errors carry jansson's line and column; semantic errors name the
 * JSON path of the offending value (json_t keeps no positions), e.g.
 * "network-map.network-map.b-core.ipv4[2]".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "netmap_build.h"

#define PATH_MAX_LEN 400

static int path_error(struct nm_builder *b, const char *path, const char *what)
{
	return nm_error(b, 0, 0, "%s: %s", path, what);
}

static int want_object(struct nm_builder *b, json_t *parent, const char *key, const char *path,
                       bool required, json_t **out)
{
	json_t *v = json_object_get(parent, key);
	*out = NULL;
	if (!v) {
		if (required)
			return nm_error(b, 0, 0, "%s: missing field", path);
		return 0;
	}
	if (!json_is_object(v))
		return path_error(b, path, "must be an object");
	*out = v;
	return 0;
}

static int want_u32(struct nm_builder *b, json_t *v, const char *path, uint32_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return nm_error(b, 0, 0, "%s: negative value %lld", path, (long long)i);
		if (i > (json_int_t)UINT32_MAX)
			return nm_error(b, 0, 0, "%s: %lld out of range (at most %u)", path,
			                (long long)i, UINT32_MAX);
		*out = (uint32_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d < 0)
			return nm_error(b, 0, 0, "%s: negative value %g", path, d);
		if (!(d <= (double)UINT32_MAX))
			return nm_error(b, 0, 0, "%s: %g out of range (at most %u)", path, d,
			                UINT32_MAX);
		if (floor(d) != d)
			return nm_error(b, 0, 0,
			                "%s: %g is not an integer (itracker keeps integer costs)",
			                path, d);
		*out = (uint32_t)d;
		return 0;
	}
	return path_error(b, path, "must be a non-negative integer");
}

static int want_string(struct nm_builder *b, json_t *parent, const char *key, const char *path,
                       const char **out)
{
	json_t *v = json_object_get(parent, key);
	if (!v)
		return nm_error(b, 0, 0, "%s: missing field", path);
	if (!json_is_string(v))
		return path_error(b, path, "must be a string");
	*out = json_string_value(v);
	return 0;
}

static int check_name(struct nm_builder *b, const char *name, const char *path)
{
	char why[128];
	if (!itr_netmap_name_valid(name, strlen(name), why, sizeof(why)))
		return nm_error(b, 0, 0, "%s: bad PID name '%.80s': %s", path, name, why);
	return 0;
}

static int check_tag(struct nm_builder *b, const char *tag, const char *path)
{
	size_t n = strlen(tag);
	if (n == 0 || n > 64)
		return path_error(b, path, "vtag tag must be 1..64 characters");
	for (size_t i = 0; i < n; i++)
		if (tag[i] < 0x21 || tag[i] > 0x7e)
			return path_error(b, path, "vtag tag must be printable ASCII");
	return 0;
}

static int parse_addresses(struct nm_builder *b, uint32_t name, json_t *pid_obj, int family,
                           const char *pid_path)
{
	char path[PATH_MAX_LEN];
	const char *key = family == 4 ? "ipv4" : "ipv6";
	json_t *arr = json_object_get(pid_obj, key);
	snprintf(path, sizeof(path), "%s.%s", pid_path, key);
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return path_error(b, path, "must be an array of prefixes");
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		char ipath[PATH_MAX_LEN + 24], why[128];
		struct itr_prefix p;
		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if (!json_is_string(v))
			return path_error(b, ipath, "must be a string");
		const char *text = json_string_value(v);
		if (itr_prefix_parse(text, &p, why, sizeof(why)))
			return nm_error(b, 0, 0, "%s: bad prefix '%.64s': %s", ipath, text, why);
		if (p.family != family)
			return nm_error(b, 0, 0, "%s: %s prefix '%.64s' in the %s list", ipath,
			                p.family == 4 ? "IPv4" : "IPv6", text, key);
		if (nm_add_prefix(b, name, &p, 0, (int)i))
			return -1;
	}
	return 0;
}

static int parse_network_map(struct nm_builder *b, json_t *root, json_t *itr_pids,
                             const char **tag_out)
{
	json_t *nm, *meta, *vtag, *pids;
	const char *rid, *tag;
	*tag_out = NULL;
	if (want_object(b, root, "network-map", "network-map", true, &nm) ||
	    want_object(b, nm, "meta", "network-map.meta", true, &meta) ||
	    want_object(b, meta, "vtag", "network-map.meta.vtag", true, &vtag) ||
	    want_string(b, vtag, "resource-id", "network-map.meta.vtag.resource-id", &rid) ||
	    want_string(b, vtag, "tag", "network-map.meta.vtag.tag", &tag) ||
	    check_tag(b, tag, "network-map.meta.vtag.tag") ||
	    want_object(b, nm, "network-map", "network-map.network-map", true, &pids))
		return -1;
	char why[128];
	if (!itr_netmap_name_valid(rid, strlen(rid), why, sizeof(why)))
		return nm_error(b, 0, 0, "network-map.meta.vtag.resource-id: bad resource id: %s",
		                why);
	if (nm_set_resource_id(b, rid, 0, 0))
		return -1;
	*tag_out = tag;

	const char *name;
	json_t *pid_obj;
	json_object_foreach(pids, name, pid_obj)
	{
		char path[PATH_MAX_LEN];
		snprintf(path, sizeof(path), "network-map.network-map.%.80s", name);
		if (check_name(b, name, path))
			return -1;
		if (!json_is_object(pid_obj))
			return path_error(b, path, "must be an object");
		uint32_t n = nm_intern(b, name, strlen(name), 0, 0);
		if (n == UINT32_MAX)
			return -1;
		uint32_t id = 0, asn = 0, loc = ITR_LOC_NONE;
		bool have_id = false;
		json_t *extra = itr_pids ? json_object_get(itr_pids, name) : NULL;
		if (extra) {
			char xpath[PATH_MAX_LEN + 16];
			snprintf(xpath, sizeof(xpath), "itracker.pids.%.80s", name);
			if (!json_is_object(extra))
				return path_error(b, xpath, "must be an object");
			json_t *v;
			if ((v = json_object_get(extra, "id"))) {
				snprintf(xpath, sizeof(xpath), "itracker.pids.%.80s.id", name);
				if (want_u32(b, v, xpath, &id))
					return -1;
				if (id == ITR_PID_NONE || id > ITR_PID_ID_MAX)
					return nm_error(b, 0, 0, "%s: id %u out of range 1..%u",
					                xpath, id, ITR_PID_ID_MAX);
				have_id = true;
			}
			snprintf(xpath, sizeof(xpath), "itracker.pids.%.80s.asid", name);
			if ((v = json_object_get(extra, "asid")) && want_u32(b, v, xpath, &asn))
				return -1;
			snprintf(xpath, sizeof(xpath), "itracker.pids.%.80s.loc", name);
			if ((v = json_object_get(extra, "loc")) && want_u32(b, v, xpath, &loc))
				return -1;
		}
		if (nm_declare_pid(b, n, have_id, id, asn, loc, 0, 0) ||
		    parse_addresses(b, n, pid_obj, 4, path) ||
		    parse_addresses(b, n, pid_obj, 6, path))
			return -1;
	}
	if (itr_pids) {
		json_t *v;
		json_object_foreach(itr_pids, name, v)
		{
			uint32_t n = nm_find(b, name);
			if (n == UINT32_MAX || !nm_declared(b, n))
				return nm_error(b, 0, 0,
				                "itracker.pids.%.80s: PID not in the network map",
				                name);
		}
	}
	return 0;
}

static uint32_t declared_pid(struct nm_builder *b, const char *name, const char *path)
{
	uint32_t n = nm_find(b, name);
	if (n == UINT32_MAX || !nm_declared(b, n)) {
		nm_error(b, 0, 0, "%s: unknown PID '%.80s'", path, name);
		return UINT32_MAX;
	}
	return n;
}

static int parse_cost_map(struct nm_builder *b, json_t *root, const char *nm_tag)
{
	json_t *cm, *meta, *type, *deps, *costs;
	if (want_object(b, root, "cost-map", "cost-map", false, &cm) || !cm)
		return nm_failed(b) ? -1 : 0;
	const char *mode, *metric;
	if (want_object(b, cm, "meta", "cost-map.meta", true, &meta) ||
	    want_object(b, meta, "cost-type", "cost-map.meta.cost-type", true, &type) ||
	    want_string(b, type, "cost-mode", "cost-map.meta.cost-type.cost-mode", &mode) ||
	    want_string(b, type, "cost-metric", "cost-map.meta.cost-type.cost-metric", &metric))
		return -1;
	if (strcmp(mode, "numerical") != 0 && strcmp(mode, "ordinal") != 0)
		return nm_error(b, 0, 0,
		                "cost-map.meta.cost-type.cost-mode: '%.40s' (numerical or ordinal)",
		                mode);
	if (strcmp(metric, "routingcost") != 0)
		return nm_error(b, 0, 0,
		                "cost-map.meta.cost-type.cost-metric: '%.40s' (only routingcost)",
		                metric);
	deps = json_object_get(meta, "dependent-vtags");
	if (!deps)
		return path_error(b, "cost-map.meta.dependent-vtags", "missing field");
	if (!json_is_array(deps) || json_array_size(deps) == 0)
		return path_error(b, "cost-map.meta.dependent-vtags", "must be a non-empty array");
	json_t *dep = json_array_get(deps, 0);
	const char *rid, *tag;
	if (!json_is_object(dep))
		return path_error(b, "cost-map.meta.dependent-vtags[0]", "must be an object");
	if (want_string(b, dep, "resource-id", "cost-map.meta.dependent-vtags[0].resource-id",
	                &rid) ||
	    want_string(b, dep, "tag", "cost-map.meta.dependent-vtags[0].tag", &tag))
		return -1;
	if (strcmp(rid, nm_resource_id(b)) != 0)
		return nm_error(b, 0, 0,
		                "cost-map.meta.dependent-vtags[0].resource-id: '%.64s' is not the "
		                "network map's resource id '%s'",
		                rid, nm_resource_id(b));
	if (strcmp(tag, nm_tag) != 0)
		return nm_error(b, 0, 0,
		                "cost-map.meta.dependent-vtags[0].tag: '%.64s' does not match the "
		                "network map's tag '%.64s'",
		                tag, nm_tag);
	if (want_object(b, cm, "cost-map", "cost-map.cost-map", true, &costs))
		return -1;
	const char *src_name;
	json_t *row;
	json_object_foreach(costs, src_name, row)
	{
		char path[PATH_MAX_LEN];
		snprintf(path, sizeof(path), "cost-map.cost-map.%.80s", src_name);
		uint32_t src = declared_pid(b, src_name, path);
		if (src == UINT32_MAX)
			return -1;
		if (!json_is_object(row))
			return path_error(b, path, "must be an object");
		const char *dst_name;
		json_t *v;
		json_object_foreach(row, dst_name, v)
		{
			char cpath[PATH_MAX_LEN + 90];
			uint32_t cost;
			snprintf(cpath, sizeof(cpath), "%s.%.80s", path, dst_name);
			uint32_t dst = declared_pid(b, dst_name, cpath);
			if (dst == UINT32_MAX || want_u32(b, v, cpath, &cost) ||
			    nm_add_cost(b, src, dst, cost, 0, 0))
				return -1;
		}
	}
	return 0;
}

static int parse_itracker(struct nm_builder *b, json_t *itr)
{
	json_t *tiers;
	if (!itr)
		return 0;
	if (want_object(b, itr, "tiers", "itracker.tiers", false, &tiers))
		return -1;
	if (tiers) {
		const char *key;
		json_t *v;
		json_object_foreach(tiers, key, v)
		{
			char path[PATH_MAX_LEN];
			int tier = -1;
			uint32_t value;
			snprintf(path, sizeof(path), "itracker.tiers.%.80s", key);
			for (int t = 0; t < ITR_TIER_MAX; t++)
				if (strcmp(key, itr_tier_names[t]) == 0)
					tier = t;
			if (tier < 0)
				return path_error(b, path,
				                  "unknown tier (same-pid, same-loc, same-as, "
				                  "other-as)");
			if (want_u32(b, v, path, &value))
				return -1;
			if (value > UINT32_MAX - 1)
				return path_error(b, path, "too large");
			if (nm_set_tier(b, (enum itr_tier)tier, value, 0, 0))
				return -1;
		}
	}
	json_t *def = json_object_get(itr, "default-pid");
	if (def) {
		if (!json_is_string(def))
			return path_error(b, "itracker.default-pid", "must be a string");
		uint32_t n = declared_pid(b, json_string_value(def), "itracker.default-pid");
		if (n == UINT32_MAX || nm_set_default(b, n, 0, 0))
			return -1;
	}
	return 0;
}

/* A rate: a number of bits/s or a string like the text format's ("8mbit"). */
static int want_rate(struct nm_builder *b, json_t *v, const char *path, uint64_t *out)
{
	if (json_is_string(v)) {
		const char *t = json_string_value(v);
		if (itr_rate_parse(t, strlen(t), out))
			return path_error(b, path, "not a rate (e.g. 8mbit, 500kbit, 1gbit)");
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	return path_error(b, path, "must be a positive number of bit/s or a rate string");
}

/* itracker.links: {"NAME": {"asn", "uplink": true | "peer-asn", "capacity",
 * "budget" (rate or "N%"), "host-upload"}} */
static int parse_links(struct nm_builder *b, json_t *itr)
{
	json_t *links;
	if (!itr || want_object(b, itr, "links", "itracker.links", false, &links) || !links)
		return nm_failed(b) ? -1 : 0;
	const char *name;
	json_t *o;
	json_object_foreach(links, name, o)
	{
		char path[PATH_MAX_LEN], fpath[PATH_MAX_LEN + 20];
		struct itr_link l;
		memset(&l, 0, sizeof(l));
		snprintf(path, sizeof(path), "itracker.links.%.80s", name);
		if (!json_is_object(o))
			return path_error(b, path, "must be an object");
		if (strlen(name) > ITR_NAME_MAX)
			return path_error(b, path, "bad link name: too long");
		snprintf(l.name, sizeof(l.name), "%s", name);
		json_t *v = json_object_get(o, "asn");
		snprintf(fpath, sizeof(fpath), "%s.asn", path);
		if (!v)
			return path_error(b, fpath, "missing field");
		if (want_u32(b, v, fpath, &l.asn))
			return -1;
		json_t *up = json_object_get(o, "uplink");
		v = json_object_get(o, "peer-asn");
		snprintf(fpath, sizeof(fpath), "%s.peer-asn", path);
		if (up && !json_is_true(up))
			return path_error(b, path, "uplink must be true when given");
		if (!up == !v)
			return path_error(b, path, "give either \"uplink\": true or \"peer-asn\"");
		if (v && want_u32(b, v, fpath, &l.peer_asn))
			return -1;
		if (v && l.peer_asn == 0)
			return path_error(b, fpath, "0 is not an AS; use \"uplink\": true");
		static const char *const rates[] = {"capacity", "budget", "host-upload"};
		uint64_t *dst[] = {&l.capacity_bps, &l.budget_bps, &l.host_upload_bps};
		for (int k = 0; k < 3; k++) {
			v = json_object_get(o, rates[k]);
			snprintf(fpath, sizeof(fpath), "%s.%s", path, rates[k]);
			if (!v) {
				if (k < 2)
					return path_error(b, fpath, "missing field");
				continue;
			}
			const char *t = json_is_string(v) ? json_string_value(v) : "";
			size_t n = strlen(t);
			if (k == 1 && n > 1 && t[n - 1] == '%') {
				uint32_t pct = 0;
				for (size_t i = 0; i + 1 < n; i++) {
					if (t[i] < '0' || t[i] > '9' || pct > 100)
						return path_error(b, fpath, "bad share (1%..100%)");
					pct = pct * 10 + (uint32_t)(t[i] - '0');
				}
				if (pct < 1 || pct > 100)
					return path_error(b, fpath, "share out of range 1%..100%");
				l.budget_pct = pct;
			} else if (want_rate(b, v, fpath, dst[k])) {
				return -1;
			}
		}
		if (nm_add_link(b, &l, 0, 0))
			return -1;
	}
	return 0;
}

struct itr_netmap *itr_netmap_parse_alto(const char *buf, size_t len, const char *filename,
                                         struct itr_netmap_error *err)
{
	struct nm_builder *b = nm_builder_for_file(filename, true, len, err);
	if (!b)
		return NULL;
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		nm_error(b, jerr.line > 0 ? jerr.line : 0, jerr.column > 0 ? jerr.column : 0,
		         "JSON: %s", jerr.text);
		nm_builder_free(b);
		return NULL;
	}
	json_t *itr = NULL, *itr_pids = NULL;
	const char *nm_tag = NULL;
	int rc = -1;
	if (!json_is_object(root)) {
		nm_error(b, 0, 0, "top level must be an object");
		goto out;
	}
	if (want_object(b, root, "itracker", "itracker", false, &itr) ||
	    (itr && want_object(b, itr, "pids", "itracker.pids", false, &itr_pids)))
		goto out;
	if (parse_network_map(b, root, itr_pids, &nm_tag) || parse_itracker(b, itr) ||
	    parse_links(b, itr))
		goto out;
	if (parse_cost_map(b, root, nm_tag))
		goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc) {
		nm_builder_free(b);
		return NULL;
	}
	return nm_builder_finish(b);
}

/* ---- writer --------------------------------------------------------------
 * The inverse of the parser: the whole map as one document of the form
 * above, which itr_netmap_parse_alto turns back into a map with the same
 * vtag. An ALTO update stream carries it to follower instances (with RFC
 * 7396 merge patches between versions), so members are written in a fixed
 * order and only what the map really holds: explicit costs only, and no
 * 0.0.0.0/0 for the default PID (the "default-pid" member says it). */
static json_t *prefixes_json(const struct itr_pid *pid, int family)
{
	json_t *arr = json_array();
	char text[INET6_ADDRSTRLEN + 8];
	for (size_t i = 0; arr && i < pid->nprefixes; i++) {
		if (pid->prefixes[i].family != family)
			continue;
		if (json_array_append_new(arr, json_string(itr_prefix_format(
		                                   &pid->prefixes[i], text, sizeof(text)))) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *itr_netmap_alto_document(const struct itr_netmap *map)
{
	const char *rid = itr_netmap_resource_id(map), *vtag = itr_netmap_vtag(map);
	json_t *doc = json_object(), *pids = json_object(), *extra = json_object(),
	       *costs = json_object(), *tiers = json_object();
	if (!doc || !pids || !extra || !costs || !tiers)
		goto nomem;
	size_t n = itr_netmap_pid_count(map);
	for (size_t i = 0; i < n; i++) {
		const struct itr_pid *pid = itr_netmap_pid_at(map, i);
		json_t *group = json_object(), *info;
		json_t *v4 = prefixes_json(pid, 4), *v6 = prefixes_json(pid, 6);
		if (!group || !v4 || !v6) {
			json_decref(group);
			json_decref(v4);
			json_decref(v6);
			goto nomem;
		}
		json_object_set_new(group, "ipv4", v4);
		json_object_set_new(group, "ipv6", v6);
		json_object_set_new(pids, pid->name, group);
		info = json_pack("{s:I, s:I}", "id", (json_int_t)pid->id, "asid",
		                 (json_int_t)pid->asn);
		if (info && pid->loc != ITR_LOC_NONE)
			json_object_set_new(info, "loc", json_integer(pid->loc));
		if (!info)
			goto nomem;
		json_object_set_new(extra, pid->name, info);

		json_t *row = NULL;
		for (size_t j = 0; j < n; j++) {
			const struct itr_pid *dst = itr_netmap_pid_at(map, j);
			if (!itr_netmap_cost_is_explicit(map, pid, dst))
				continue;
			if (!row && !(row = json_object()))
				goto nomem;
			json_object_set_new(row, dst->name,
			                    json_integer(itr_netmap_cost(map, pid, dst)));
		}
		if (row)
			json_object_set_new(costs, pid->name, row);
	}
	for (int t = 0; t < ITR_TIER_MAX; t++)
		json_object_set_new(tiers, itr_tier_names[t],
		                    json_integer(itr_netmap_tier(map, t)));

	json_t *itr = json_pack("{s:o, s:o}", "pids", extra, "tiers", tiers);
	extra = tiers = NULL;
	const struct itr_pid *dflt = itr_netmap_default_pid(map);
	if (itr && dflt)
		json_object_set_new(itr, "default-pid", json_string(dflt->name));
	json_t *nm = json_pack("{s:{s:{s:s, s:s}}, s:o}", "meta", "vtag", "resource-id", rid, "tag",
	                       vtag, "network-map", pids);
	pids = NULL;
	json_t *cm = json_pack("{s:{s:[{s:s, s:s}], s:{s:s, s:s}}, s:o}", "meta", "dependent-vtags",
	                       "resource-id", rid, "tag", vtag, "cost-type", "cost-mode",
	                       "numerical", "cost-metric", "routingcost", "cost-map", costs);
	costs = NULL;
	if (!itr || !nm || !cm) {
		json_decref(itr);
		json_decref(nm);
		json_decref(cm);
		goto nomem;
	}
	json_object_set_new(doc, "network-map", nm);
	json_object_set_new(doc, "cost-map", cm);
	json_object_set_new(doc, "itracker", itr);
	return doc;
nomem:
	json_decref(doc);
	json_decref(pids);
	json_decref(extra);
	json_decref(costs);
	json_decref(tiers);
	return NULL;
}
