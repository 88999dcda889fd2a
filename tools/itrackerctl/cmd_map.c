/* cmd_map.c - `itrackerctl map check|diff|reload`: validate a network map
 * file offline, show what changes between two files, and ask the daemon to
 * reload its map.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "netmap.h"

static const char map_usage[] =
    "usage: itrackerctl map check FILE [--json]\n"
    "       itrackerctl map diff OLD NEW [--json]\n"
    "       itrackerctl map reload [--force] [--json]\n"
    "\n"
    "  check   validate FILE (text or ALTO JSON) without a daemon; errors are\n"
    "          printed as file:line:column: reason and exit 1\n"
    "  diff    PIDs, prefixes, explicit and derived costs and tiers that differ\n"
    "          between OLD and NEW (exit 0 either way; --json for scripts)\n"
    "  reload  POST /v1/admin/reload (over the admin socket when it is there, else\n"
    "          --server): the daemon re-reads its map file; a map that fails\n"
    "          validation, is empty or loses more than --max-map-shrink of the\n"
    "          prefixes is rejected (exit 1) and the old one stays; --force\n"
    "          installs an empty or shrunken (but valid) map anyway\n";

static const char *const tier_names[ITR_TIER_MAX] = {"same-pid", "same-loc", "same-as", "other-as"};

static json_t *error_json(const struct itr_netmap_error *err)
{
	return json_pack("{s:s,s:i,s:i,s:s}", "file", err->file, "line", err->line, "column",
	                 err->column, "reason", err->reason);
}

static struct itr_netmap *load_or_report(const char *file, bool json, int *rc)
{
	struct itr_netmap_error err;
	memset(&err, 0, sizeof(err));
	struct itr_netmap *map = itr_netmap_load_file(file, &err);
	if (map)
		return map;
	if (json) {
		json_t *doc = json_pack("{s:b,s:o}", "valid", 0, "error", error_json(&err));
		ctl_print_json(doc);
		json_decref(doc);
	}
	char msg[700];
	itr_netmap_error_format(&err, msg, sizeof(msg));
	fprintf(stderr, "%s\n", msg);
	*rc = CTL_EXIT_RUNTIME;
	return NULL;
}

static int map_check(const char *file, bool json)
{
	int rc = CTL_EXIT_OK;
	struct itr_netmap *map = load_or_report(file, json, &rc);
	if (!map)
		return rc;
	size_t v4 = itr_netmap_prefix_count_family(map, 4),
	       v6 = itr_netmap_prefix_count_family(map, 6);
	/* The capacities are the kernel tries' (maps/itracker_maps.h). */
	char why[256] = "";
	bool fits = itr_netmap_fits(map, ITR_LPM_V4_MAX, ITR_LPM_V6_MAX, why, sizeof(why));
	const char *warning = itr_netmap_warning(map);
	if (json) {
		json_t *doc = json_pack(
		    "{s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "valid", fits, "vtag",
		    itr_netmap_vtag(map), "resource_id", itr_netmap_resource_id(map), "pids",
		    (json_int_t)itr_netmap_pid_count(map), "prefixes_v4", (json_int_t)v4,
		    "prefixes_v6", (json_int_t)v6, "capacity_v4", (json_int_t)ITR_LPM_V4_MAX,
		    "capacity_v6", (json_int_t)ITR_LPM_V6_MAX);
		if (!fits)
			json_object_set_new(doc, "error",
			                    json_pack("{s:s,s:s}", "file", file, "reason", why));
		if (warning)
			json_object_set_new(doc, "warnings", json_pack("[s]", warning));
		json_object_set_new(doc, "links",
		                    json_integer((json_int_t)itr_netmap_link_count(map)));
		ctl_print_json(doc);
		json_decref(doc);
	} else if (fits) {
		char links[48] = "";
		if (itr_netmap_link_count(map))
			snprintf(links, sizeof(links), ", %zu inter-AS links",
			         itr_netmap_link_count(map));
		printf("%s: valid: %zu PIDs, %zu IPv4 prefixes (of at most %u) and %zu IPv6 (of at "
		       "most %u)%s, vtag %s\n",
		       file, itr_netmap_pid_count(map), v4, ITR_LPM_V4_MAX, v6, ITR_LPM_V6_MAX,
		       links, itr_netmap_vtag(map));
	}
	if (!fits)
		fprintf(stderr, "%s: does not fit the data plane: %s\n", file, why);
	if (warning)
		fprintf(stderr, "%s: warning: %s\n", file, warning);
	itr_netmap_unref(map);
	return fits ? CTL_EXIT_OK : CTL_EXIT_RUNTIME;
}

static const char *prefix_text(const struct itr_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, p->len);
	return buf;
}

static int prefix_order(const void *a, const void *b)
{
	const struct itr_prefix *x = a, *y = b;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	int c = memcmp(x->addr, y->addr, sizeof(x->addr));
	if (c)
		return c;
	return (int)x->len - (int)y->len;
}

static struct itr_prefix *sorted_prefixes(const struct itr_pid *pid)
{
	struct itr_prefix *copy = malloc((pid->nprefixes ? pid->nprefixes : 1) * sizeof(*copy));
	if (!copy)
		return NULL;
	if (pid->nprefixes)
		memcpy(copy, pid->prefixes, pid->nprefixes * sizeof(*copy));
	qsort(copy, pid->nprefixes, sizeof(*copy), prefix_order);
	return copy;
}

static void add_prefix(json_t *list, const char *pid, const struct itr_prefix *p)
{
	char buf[64];
	json_array_append_new(
	    list, json_pack("{s:s,s:s}", "pid", pid, "prefix", prefix_text(p, buf, sizeof(buf))));
}

/* Merge two sorted prefix lists into added/removed. */
static int diff_prefixes(const struct itr_pid *o, const struct itr_pid *n, json_t *added,
                         json_t *removed)
{
	struct itr_prefix *a = sorted_prefixes(o), *b = sorted_prefixes(n);
	if (!a || !b) {
		free(a);
		free(b);
		return -1;
	}
	size_t i = 0, j = 0;
	while (i < o->nprefixes || j < n->nprefixes) {
		int c = i == o->nprefixes ? 1 : j == n->nprefixes ? -1 : prefix_order(&a[i], &b[j]);
		if (c < 0)
			add_prefix(removed, o->name, &a[i++]);
		else if (c > 0)
			add_prefix(added, n->name, &b[j++]);
		else
			i++, j++;
	}
	free(a);
	free(b);
	return 0;
}

static void add_change(json_t *list, const char *pid, const char *field, uint32_t from, uint32_t to)
{
	json_array_append_new(list, json_pack("{s:s,s:s,s:I,s:I}", "pid", pid, "field", field,
	                                      "old", (json_int_t)from, "new", (json_int_t)to));
}

static json_t *diff_json(const struct itr_netmap *om, const struct itr_netmap *nm)
{
	json_t *pid_added = json_array(), *pid_removed = json_array(), *pid_changed = json_array();
	json_t *pfx_added = json_array(), *pfx_removed = json_array();
	json_t *cost_changed = json_array(), *tier_changed = json_array();

	for (size_t i = 0; i < itr_netmap_pid_count(om); i++) {
		const struct itr_pid *o = itr_netmap_pid_at(om, i);
		if (!itr_netmap_pid_by_name(nm, o->name))
			json_array_append_new(pid_removed, json_string(o->name));
	}
	for (size_t i = 0; i < itr_netmap_pid_count(nm); i++) {
		const struct itr_pid *n = itr_netmap_pid_at(nm, i);
		const struct itr_pid *o = itr_netmap_pid_by_name(om, n->name);
		if (!o) {
			json_array_append_new(pid_added, json_pack("{s:s,s:I,s:I,s:I,s:I}", "name",
			                                           n->name, "id", (json_int_t)n->id,
			                                           "asn", (json_int_t)n->asn, "loc",
			                                           (json_int_t)n->loc, "prefixes",
			                                           (json_int_t)n->nprefixes));
			continue;
		}
		if (o->id != n->id)
			add_change(pid_changed, n->name, "id", o->id, n->id);
		if (o->asn != n->asn)
			add_change(pid_changed, n->name, "asn", o->asn, n->asn);
		if (o->loc != n->loc)
			add_change(pid_changed, n->name, "loc", o->loc, n->loc);
		if (diff_prefixes(o, n, pfx_added, pfx_removed) != 0)
			break;
	}
	/* Prefixes of removed PIDs are removed too. */
	for (size_t i = 0; i < itr_netmap_pid_count(om); i++) {
		const struct itr_pid *o = itr_netmap_pid_at(om, i);
		if (!itr_netmap_pid_by_name(nm, o->name))
			for (size_t j = 0; j < o->nprefixes; j++)
				add_prefix(pfx_removed, o->name, &o->prefixes[j]);
	}
	for (size_t i = 0; i < itr_netmap_pid_count(nm); i++) {
		const struct itr_pid *n = itr_netmap_pid_at(nm, i);
		if (!itr_netmap_pid_by_name(om, n->name))
			for (size_t j = 0; j < n->nprefixes; j++)
				add_prefix(pfx_added, n->name, &n->prefixes[j]);
	}
	/* Effective cost between every pair both maps know, explicit or derived. */
	for (size_t i = 0; i < itr_netmap_pid_count(nm); i++) {
		const struct itr_pid *ns = itr_netmap_pid_at(nm, i);
		const struct itr_pid *os = itr_netmap_pid_by_name(om, ns->name);
		if (!os)
			continue;
		for (size_t j = 0; j < itr_netmap_pid_count(nm); j++) {
			const struct itr_pid *nd = itr_netmap_pid_at(nm, j);
			const struct itr_pid *od = itr_netmap_pid_by_name(om, nd->name);
			if (!od)
				continue;
			uint32_t before = itr_netmap_cost(om, os, od);
			uint32_t after = itr_netmap_cost(nm, ns, nd);
			if (before != after)
				json_array_append_new(
				    cost_changed,
				    json_pack("{s:s,s:s,s:I,s:I,s:b}", "src", ns->name, "dst",
				              nd->name, "old", (json_int_t)before, "new",
				              (json_int_t)after, "explicit",
				              itr_netmap_cost_is_explicit(nm, ns, nd)));
		}
	}
	for (int t = 0; t < ITR_TIER_MAX; t++) {
		uint32_t before = itr_netmap_tier(om, (enum itr_tier)t);
		uint32_t after = itr_netmap_tier(nm, (enum itr_tier)t);
		if (before != after)
			json_array_append_new(
			    tier_changed, json_pack("{s:s,s:I,s:I}", "tier", tier_names[t], "old",
			                            (json_int_t)before, "new", (json_int_t)after));
	}
	return json_pack("{s:s,s:s,s:b,s:{s:o,s:o,s:o},s:{s:o,s:o},s:o,s:o}", "old_vtag",
	                 itr_netmap_vtag(om), "new_vtag", itr_netmap_vtag(nm), "identical",
	                 strcmp(itr_netmap_vtag(om), itr_netmap_vtag(nm)) == 0, "pids", "added",
	                 pid_added, "removed", pid_removed, "changed", pid_changed, "prefixes",
	                 "added", pfx_added, "removed", pfx_removed, "costs_changed", cost_changed,
	                 "tiers_changed", tier_changed);
}

static void print_diff(const json_t *d)
{
	size_t i;
	json_t *v;
	printf("vtag %s -> %s\n", json_string_value(json_object_get(d, "old_vtag")),
	       json_string_value(json_object_get(d, "new_vtag")));
	json_t *pids = json_object_get(d, "pids"), *pfx = json_object_get(d, "prefixes");
	json_array_foreach(json_object_get(pids, "added"), i, v)
	    printf("+ pid %s id %lld asn %lld loc %lld (%lld prefixes)\n",
	           json_string_value(json_object_get(v, "name")),
	           json_integer_value(json_object_get(v, "id")),
	           json_integer_value(json_object_get(v, "asn")),
	           json_integer_value(json_object_get(v, "loc")),
	           json_integer_value(json_object_get(v, "prefixes")));
	json_array_foreach(json_object_get(pids, "removed"), i, v)
	    printf("- pid %s\n", json_string_value(v));
	json_array_foreach(json_object_get(pids, "changed"), i, v)
	    printf("~ pid %s %s %lld -> %lld\n", json_string_value(json_object_get(v, "pid")),
	           json_string_value(json_object_get(v, "field")),
	           json_integer_value(json_object_get(v, "old")),
	           json_integer_value(json_object_get(v, "new")));
	json_array_foreach(json_object_get(pfx, "added"), i, v)
	    printf("+ prefix %s %s\n", json_string_value(json_object_get(v, "pid")),
	           json_string_value(json_object_get(v, "prefix")));
	json_array_foreach(json_object_get(pfx, "removed"), i, v)
	    printf("- prefix %s %s\n", json_string_value(json_object_get(v, "pid")),
	           json_string_value(json_object_get(v, "prefix")));
	json_array_foreach(json_object_get(d, "tiers_changed"), i, v)
	    printf("~ tier %s %lld -> %lld\n", json_string_value(json_object_get(v, "tier")),
	           json_integer_value(json_object_get(v, "old")),
	           json_integer_value(json_object_get(v, "new")));
	json_array_foreach(json_object_get(d, "costs_changed"), i, v)
	    printf("~ cost %s %s %lld -> %lld%s\n", json_string_value(json_object_get(v, "src")),
	           json_string_value(json_object_get(v, "dst")),
	           json_integer_value(json_object_get(v, "old")),
	           json_integer_value(json_object_get(v, "new")),
	           json_is_true(json_object_get(v, "explicit")) ? "" : " (derived)");
	printf("pids +%zu -%zu ~%zu, prefixes +%zu -%zu, costs ~%zu, tiers ~%zu\n",
	       json_array_size(json_object_get(pids, "added")),
	       json_array_size(json_object_get(pids, "removed")),
	       json_array_size(json_object_get(pids, "changed")),
	       json_array_size(json_object_get(pfx, "added")),
	       json_array_size(json_object_get(pfx, "removed")),
	       json_array_size(json_object_get(d, "costs_changed")),
	       json_array_size(json_object_get(d, "tiers_changed")));
}

static int map_diff(const char *old_file, const char *new_file, bool json)
{
	int rc = CTL_EXIT_OK;
	struct itr_netmap *om = load_or_report(old_file, json, &rc);
	if (!om)
		return rc;
	struct itr_netmap *nm = load_or_report(new_file, json, &rc);
	if (!nm) {
		itr_netmap_unref(om);
		return rc;
	}
	json_t *d = diff_json(om, nm);
	if (!d) {
		ctl_error("out of memory");
		rc = CTL_EXIT_RUNTIME;
	} else if (json) {
		ctl_print_json(d);
	} else {
		print_diff(d);
	}
	json_decref(d);
	itr_netmap_unref(om);
	itr_netmap_unref(nm);
	return rc;
}

static int map_reload(const struct ctl_global *g, bool json, bool force)
{
	json_t *doc;
	int rc = ctl_admin_call(g, "POST", force ? "/v1/admin/reload?force=1" : "/v1/admin/reload",
	                        &doc);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (json) {
		ctl_print_json(doc);
	} else {
		char b1[128], b2[64];
		printf("reloaded: vtag %s, generation %s, prefixes +%lld ~%lld -%lld\n",
		       ctl_json_text(json_object_get(doc, "vtag"), b1, sizeof(b1)),
		       ctl_json_text(json_object_get(doc, "generation"), b2, sizeof(b2)),
		       json_integer_value(json_object_get(doc, "added")),
		       json_integer_value(json_object_get(doc, "changed")),
		       json_integer_value(json_object_get(doc, "deleted")));
	}
	json_decref(doc);
	return CTL_EXIT_OK;
}

int ctl_cmd_map(const struct ctl_global *g, int argc, char **argv)
{
	bool json = g->json, force = false;
	const struct ctl_opt opts[] = {
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {"force", CTL_OPT_FLAG, &force, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, map_usage, opts, &first, &status))
		return status;
	char **args = argv + first;
	int nargs = argc - first;
	if (nargs == 0)
		return ctl_usage_error(map_usage, "map what? (check, diff, reload)");
	if (strcmp(args[0], "check") == 0) {
		if (nargs != 2)
			return ctl_usage_error(map_usage, "map check takes one FILE");
		return map_check(args[1], json);
	}
	if (strcmp(args[0], "diff") == 0) {
		if (nargs != 3)
			return ctl_usage_error(map_usage, "map diff takes OLD and NEW");
		return map_diff(args[1], args[2], json);
	}
	if (strcmp(args[0], "reload") == 0) {
		if (nargs != 1)
			return ctl_usage_error(map_usage, "map reload takes no argument");
		return map_reload(g, json, force);
	}
	return ctl_usage_error(map_usage, "unknown map command '%s'", args[0]);
}
