/* cmd_status.c - `itrackerctl status`: which interfaces carry the XDP and TC
 * programs, the pinned maps and their fill, the network map the kernel
 * holds (vtag, generation), and whether itrackerd answers.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include <jansson.h>
#include <linux/if_link.h>

#include "ctl.h"
#include "itracker_names.h"
#include "stats.h"

static const char status_usage[] =
    "usage: itrackerctl status [--json]\n"
    "\n"
    "Programs attached per interface (XDP link pinned under the pin root, XDP\n"
    "mode, TC egress filter), pinned maps with entry counts, the network map's\n"
    "vtag and generation from the config map, and whether the daemon answers\n"
    "GET /v1/status. Exits 0 whenever the status could be gathered, also when\n"
    "nothing is loaded or the daemon is down.\n";

static json_t *prog_json(__u32 id)
{
	json_t *o = json_object();
	json_object_set_new(o, "prog_id", json_integer(id));
	int fd = bpf_prog_get_fd_by_id(id);
	if (fd >= 0) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			json_object_set_new(o, "prog_name", json_string(info.name));
		close(fd);
	}
	if (!json_object_get(o, "prog_name"))
		json_object_set_new(o, "prog_name", json_null());
	return o;
}

/* The XDP link pinned for ifname, or NULL if none. */
static json_t *pinned_xdp_link(const char *pin_root, const char *ifname)
{
	char path[512];
	if (itr_xdp_link_pin_path(path, sizeof(path), pin_root, ifname) || access(path, F_OK) != 0)
		return NULL;
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(path));
	int fd = bpf_obj_get(path);
	if (fd < 0) {
		json_object_set_new(o, "error", json_string(strerror(errno)));
		return o;
	}
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
		json_object_set_new(o, "link_id", json_integer(info.id));
		json_object_set_new(o, "prog_id", json_integer(info.prog_id));
		/* ifindex 0: the interface went away, the link is defunct. */
		json_object_set_new(
		    o, "ifindex",
		    json_integer(info.type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex : 0));
	} else {
		json_object_set_new(o, "error", json_string(strerror(errno)));
	}
	close(fd);
	return o;
}

static json_t *interfaces_json(const char *pin_root)
{
	json_t *list = json_array();
	struct if_nameindex *ifs = if_nameindex();
	if (!ifs)
		return list;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		json_t *o = json_object();
		bool any = false;
		json_object_set_new(o, "name", json_string(i->if_name));
		json_object_set_new(o, "ifindex", json_integer(i->if_index));

		LIBBPF_OPTS(bpf_xdp_query_opts, xq);
		if (bpf_xdp_query((int)i->if_index, 0, &xq) == 0 &&
		    xq.attach_mode != XDP_ATTACHED_NONE) {
			__u32 id = xq.prog_id ? xq.prog_id
			                      : (xq.drv_prog_id ? xq.drv_prog_id : xq.skb_prog_id);
			json_t *x = prog_json(id);
			json_object_set_new(x, "mode",
			                    json_string(itr_xdp_attach_mode_name(xq.attach_mode)));
			json_object_set_new(o, "xdp", x);
			any = true;
		} else {
			json_object_set_new(o, "xdp", json_null());
		}
		json_t *link = pinned_xdp_link(pin_root, i->if_name);
		json_object_set_new(o, "xdp_link", link ? link : json_null());
		any |= link != NULL;

		for (int k = 0; k < 2; k++) {
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)i->if_index,
			            .attach_point = k ? BPF_TC_INGRESS : BPF_TC_EGRESS);
			LIBBPF_OPTS(bpf_tc_opts, tq, .handle = ITR_TC_HANDLE,
			            .priority = ITR_TC_PRIORITY);
			const char *key = k ? "tc_ingress" : "tc_egress";
			if (bpf_tc_query(&hook, &tq) == 0 && tq.prog_id) {
				json_object_set_new(o, key, prog_json(tq.prog_id));
				any = true;
			} else {
				json_object_set_new(o, key, json_null());
			}
		}
		/* where ingress is classified, and why there (auto's rule) */
		json_object_set_new(o, "virtual", json_boolean(itr_iface_is_virtual(i->if_name)));
		if (any)
			json_array_append_new(list, o);
		else
			json_decref(o);
	}
	if_freenameindex(ifs);
	return list;
}

static json_t *maps_json(const char *pin_root)
{
	json_t *list = json_array();
	for (size_t i = 0; i < ITR_MAP_COUNT; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(itr_map_names[i]));
		int fd = itr_stats_open_pinned(pin_root, itr_map_names[i]);
		if (fd < 0) {
			json_object_set_new(o, "pinned", json_false());
			json_object_set_new(o, "error", json_string(strerror(-fd)));
			json_array_append_new(list, o);
			continue;
		}
		json_object_set_new(o, "pinned", json_true());
		uint64_t entries;
		uint32_t max;
		const char *type;
		int err = itr_stats_count_entries(fd, &entries, &max, &type);
		if (err == 0) {
			json_object_set_new(o, "type", json_string(type));
			json_object_set_new(o, "entries", json_integer((json_int_t)entries));
			json_object_set_new(o, "max_entries", json_integer(max));
		} else {
			json_object_set_new(o, "error", json_string(strerror(-err)));
		}
		close(fd);
		json_array_append_new(list, o);
	}
	return list;
}

static json_t *netmap_json(const char *pin_root)
{
	int fd = itr_stats_open_pinned(pin_root, ITR_MAP_CONFIG);
	if (fd < 0)
		return json_null();
	struct itr_config cfg;
	int err = itr_stats_read_config(fd, &cfg);
	close(fd);
	if (err)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "vtag", json_string(cfg.vtag));
	json_object_set_new(o, "generation", json_integer((json_int_t)cfg.generation));
	json_object_set_new(o, "abi_version", json_integer(cfg.abi_version));
	json_object_set_new(o, "abi_compatible", json_boolean(cfg.abi_version == ITR_ABI_VERSION));
	json_object_set_new(o, "updated_ns", json_integer((json_int_t)cfg.updated_ns));
	if (cfg.updated_ns) {
		time_t secs = (time_t)(cfg.updated_ns / 1000000000ull);
		struct tm tm;
		char when[64];
		gmtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(o, "updated", json_string(when));
	} else {
		json_object_set_new(o, "updated", json_null());
	}
	return o;
}

/* A quick probe: 3 s unless --timeout says otherwise. */
static json_t *daemon_json(const char *server, int timeout_s)
{
	json_t *o = json_object();
	json_object_set_new(o, "server", json_string(server));
	struct ctl_http_reply reply;
	char err[256];
	int rc = ctl_http(server, "GET", "/v1/status", NULL, NULL, 0, timeout_s ? timeout_s : 3,
	                  &reply, err, sizeof(err));
	json_object_set_new(o, "running", json_boolean(rc == CTL_HTTP_OK || rc == CTL_HTTP_BROKEN));
	if (rc != CTL_HTTP_OK) {
		json_object_set_new(o, "error", json_string(err));
		return o;
	}
	json_object_set_new(o, "http_status", json_integer(reply.status));
	json_t *info = json_loadb(reply.body, reply.body_len, 0, NULL);
	json_object_set_new(o, "info", info ? info : json_null());
	ctl_http_reply_free(&reply);
	return o;
}

static void print_status_table(const json_t *root)
{
	printf("pin root: %s\n\n", json_string_value(json_object_get(root, "pin_root")));
	json_t *ifs = json_object_get(root, "interfaces");
	printf("%-16s %7s %-22s %-13s %-22s %s\n", "INTERFACE", "IFINDEX", "INGRESS", "HOOK",
	       "TC EGRESS", "PINNED XDP LINK");
	if (json_array_size(ifs) == 0)
		printf("(no interface carries an XDP or TC program or a pinned itracker link)\n");
	size_t i;
	json_t *itf;
	json_array_foreach(ifs, i, itf)
	{
		char xdp[64] = "-", tc[64] = "-", link[64] = "-";
		const char *mode = "-";
		json_t *x = json_object_get(itf, "xdp"), *ti = json_object_get(itf, "tc_ingress");
		char hook[32] = "-";
		if (json_is_object(x)) {
			const char *n = json_string_value(json_object_get(x, "prog_name"));
			snprintf(xdp, sizeof(xdp), "%s (id %lld)", n ? n : "?",
			         json_integer_value(json_object_get(x, "prog_id")));
			mode = json_string_value(json_object_get(x, "mode"));
			snprintf(hook, sizeof(hook), "xdp %s", mode ? mode : "?");
		} else if (json_is_object(ti)) {
			const char *n = json_string_value(json_object_get(ti, "prog_name"));
			snprintf(xdp, sizeof(xdp), "%s (id %lld)", n ? n : "?",
			         json_integer_value(json_object_get(ti, "prog_id")));
			snprintf(hook, sizeof(hook), "tc%s",
			         json_is_true(json_object_get(itf, "virtual")) ? " (virtual)" : "");
		}
		(void)mode;
		json_t *t = json_object_get(itf, "tc_egress");
		if (json_is_object(t)) {
			const char *n = json_string_value(json_object_get(t, "prog_name"));
			snprintf(tc, sizeof(tc), "%s (id %lld)", n ? n : "?",
			         json_integer_value(json_object_get(t, "prog_id")));
		}
		json_t *l = json_object_get(itf, "xdp_link");
		if (json_is_object(l)) {
			if (json_object_get(l, "error"))
				snprintf(link, sizeof(link), "error: %s",
				         json_string_value(json_object_get(l, "error")));
			else
				snprintf(link, sizeof(link), "link %lld -> prog %lld%s",
				         json_integer_value(json_object_get(l, "link_id")),
				         json_integer_value(json_object_get(l, "prog_id")),
				         json_integer_value(json_object_get(l, "ifindex"))
				             ? ""
				             : " (defunct)");
		}
		printf("%-16s %7lld %-22s %-13s %-22s %s\n",
		       json_string_value(json_object_get(itf, "name")),
		       json_integer_value(json_object_get(itf, "ifindex")), xdp, hook, tc, link);
	}

	printf("\n%-10s %-16s %12s %12s\n", "MAP", "TYPE", "ENTRIES", "MAX");
	json_t *m;
	json_array_foreach(json_object_get(root, "maps"), i, m)
	{
		const char *name = json_string_value(json_object_get(m, "name"));
		if (!json_is_true(json_object_get(m, "pinned"))) {
			printf("%-10s (not pinned: %s)\n", name,
			       json_string_value(json_object_get(m, "error")));
			continue;
		}
		if (json_object_get(m, "error")) {
			printf("%-10s (unreadable: %s)\n", name,
			       json_string_value(json_object_get(m, "error")));
			continue;
		}
		printf("%-10s %-16s %12lld %12lld\n", name,
		       json_string_value(json_object_get(m, "type")),
		       json_integer_value(json_object_get(m, "entries")),
		       json_integer_value(json_object_get(m, "max_entries")));
	}

	json_t *nm = json_object_get(root, "netmap");
	printf("\nnetwork map: ");
	if (!json_is_object(nm)) {
		printf("unknown (config map not pinned)\n");
	} else {
		const char *vtag = json_string_value(json_object_get(nm, "vtag"));
		const char *updated = json_string_value(json_object_get(nm, "updated"));
		printf("vtag %s, generation %lld, updated %s, abi %lld%s\n",
		       vtag && *vtag ? vtag : "(none)",
		       json_integer_value(json_object_get(nm, "generation")),
		       updated ? updated : "never",
		       json_integer_value(json_object_get(nm, "abi_version")),
		       json_is_true(json_object_get(nm, "abi_compatible"))
		           ? ""
		           : " (INCOMPATIBLE with this tool)");
	}

	json_t *d = json_object_get(root, "daemon");
	printf("daemon: %s ", json_string_value(json_object_get(d, "server")));
	if (!json_is_true(json_object_get(d, "running")))
		printf("not running (%s)\n", json_string_value(json_object_get(d, "error")));
	else if (json_object_get(d, "error"))
		printf("answers, but badly (%s)\n", json_string_value(json_object_get(d, "error")));
	else
		printf("running (GET /v1/status: HTTP %lld)\n",
		       json_integer_value(json_object_get(d, "http_status")));
}

int ctl_cmd_status(const struct ctl_global *g, int argc, char **argv)
{
	bool json = g->json;
	const struct ctl_opt opts[] = {
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, status_usage, opts, &first, &status))
		return status;
	if (first != argc)
		return ctl_usage_error(status_usage, "unexpected argument '%s'", argv[first]);

	/* libbpf logs a warning for every interface without a clsact qdisc
	 * during bpf_tc_query; those are expected answers, not problems. */
	libbpf_set_print(NULL);
	json_t *root = json_object();
	json_object_set_new(root, "pin_root", json_string(g->pin_root));
	json_object_set_new(root, "interfaces", interfaces_json(g->pin_root));
	json_object_set_new(root, "maps", maps_json(g->pin_root));
	json_object_set_new(root, "netmap", netmap_json(g->pin_root));
	json_object_set_new(root, "daemon", daemon_json(g->server, g->timeout_s));
	if (json) {
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		print_status_table(root);
	}
	json_decref(root);
	return CTL_EXIT_OK;
}
