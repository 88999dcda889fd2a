/* shaper.c - an HTB class per shaped device whose rate is a link's
 * BitTorrent budget (see shaper.h for the design, docs/policy.md for why).
 * Everything goes over rtnetlink through libnl-route, which the route
 * source already links.
 */
#include "shaper.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/class.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/fifo.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>

int itr_shape_parse(const char *arg, struct itr_shape_spec *out, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	memset(out, 0, sizeof(*out));
	if (!eq || eq == arg || !eq[1]) {
		snprintf(err, errlen, "--shape '%s': expected LINK=DEV", arg);
		return -1;
	}
	size_t nlink = (size_t)(eq - arg), ndev = strlen(eq + 1);
	if (nlink >= sizeof(out->link)) {
		snprintf(err, errlen, "--shape '%s': link name longer than %zu characters", arg,
		         sizeof(out->link) - 1);
		return -1;
	}
	/* Linux refuses '/' and white space; quotes and the like would need
	 * escaping in the metrics' labels, and no real interface has them. */
	if (ndev >= sizeof(out->dev) || strspn(eq + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                               "abcdefghijklmnopqrstuvwxyz"
	                                               "0123456789._@:-") != ndev) {
		snprintf(err, errlen, "--shape '%s': '%s' is not an interface name", arg, eq + 1);
		return -1;
	}
	memcpy(out->link, arg, nlink);
	memcpy(out->dev, eq + 1, ndev);
	return 0;
}

void itr_shape_class_for(uint64_t budget_bps, struct itr_shape_class *out)
{
	uint64_t rate = budget_bps / 8;
	if (rate == 0)
		rate = 1;
	/* Two full Ethernet frames at least, else HTB cannot send one packet
	 * of the size it just charged for; 10 ms of rate above that keeps the
	 * class busy between timer ticks at high rates. */
	uint64_t burst = rate / 100;
	if (burst < 2 * 1514)
		burst = 2 * 1514;
	if (burst > 64u << 20)
		burst = 64u << 20;
	uint64_t queue = rate * ITR_SHAPE_QUEUE_MS / 1000;
	if (queue < 10 * 1514)
		queue = 10 * 1514;
	if (queue > 64u << 20)
		queue = 64u << 20;
	uint64_t quantum = rate / 10;
	if (quantum < 1600)
		quantum = 1600;
	if (quantum > 200000)
		quantum = 200000;
	out->rate_Bps = rate;
	out->burst = (uint32_t)burst;
	out->quantum = (uint32_t)quantum;
	out->queue_bytes = (uint32_t)queue;
}

static const struct itr_link *find_link(const struct itr_netmap *map, const char *name)
{
	for (size_t i = 0, n = itr_netmap_link_count(map); i < n; i++) {
		const struct itr_link *l = itr_netmap_link_at(map, i);
		if (strcmp(l->name, name) == 0)
			return l;
	}
	return NULL;
}

int itr_shaper_check(const struct itr_shape_spec *specs, size_t n, const struct itr_netmap *map,
                     char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct itr_link *l = find_link(map, specs[i].link);
		if (!l) {
			snprintf(err, errlen,
			         "--shape %s=%s: the network map declares no link '%s' (a `link` "
			         "statement gives its budget)",
			         specs[i].link, specs[i].dev, specs[i].link);
			return -1;
		}
		if (!l->budget_bps) {
			snprintf(err, errlen, "--shape %s=%s: link '%s' has no budget",
			         specs[i].link, specs[i].dev, specs[i].link);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(specs[j].dev, specs[i].dev) == 0) {
				snprintf(err, errlen,
				         "--shape: device %s is named twice (one link per device)",
				         specs[i].dev);
				return -1;
			}
	}
	return 0;
}

struct shaped_dev {
	struct itr_shape_spec spec;
	int ifindex;
	bool installed;      /* our root qdisc is on the device */
	uint64_t budget_bps; /* the class's rate now */
	bool warned_no_link; /* said once that the map lost the link */
};

struct itr_shaper {
	pthread_mutex_t lock; /* the socket and the devices */
	struct nl_sock *sk;
	struct shaped_dev devs[ITR_SHAPE_MAX];
	size_t n;
};

static void tc_on(struct rtnl_tc *tc, int ifindex, uint32_t parent, uint32_t handle,
                  const char *kind)
{
	rtnl_tc_set_ifindex(tc, ifindex);
	rtnl_tc_set_parent(tc, parent);
	rtnl_tc_set_handle(tc, handle);
	rtnl_tc_set_kind(tc, kind);
}

/* Add (flags NLM_F_CREATE | NLM_F_EXCL) or change (0) the class. */
static int set_class(struct itr_shaper *s, const struct shaped_dev *d, uint64_t budget_bps,
                     int flags)
{
	struct itr_shape_class c;
	itr_shape_class_for(budget_bps, &c);
	struct rtnl_class *cl = rtnl_class_alloc();
	if (!cl)
		return -NLE_NOMEM;
	tc_on(TC_CAST(cl), d->ifindex, TC_HANDLE(ITR_SHAPE_MAJOR, 0), ITR_SHAPE_CLASSID, "htb");
	int rc = rtnl_htb_set_rate64(cl, c.rate_Bps);
	if (!rc)
		rc = rtnl_htb_set_ceil64(cl, c.rate_Bps); /* no borrowing: the budget is a cap */
	if (!rc)
		rc = rtnl_htb_set_rbuffer(cl, c.burst);
	if (!rc)
		rc = rtnl_htb_set_cbuffer(cl, c.burst);
	if (!rc)
		rc = rtnl_htb_set_quantum(cl, c.quantum);
	if (!rc)
		rc = rtnl_class_add(s->sk, cl, flags);
	rtnl_class_put(cl);
	return rc;
}

/* The class's queue: a byte FIFO of ITR_SHAPE_QUEUE_MS at the rate. Add
 * (NLM_F_CREATE | NLM_F_EXCL) or change (0). */
static int set_leaf(struct itr_shaper *s, const struct shaped_dev *d, uint64_t budget_bps,
                    int flags)
{
	struct itr_shape_class c;
	itr_shape_class_for(budget_bps, &c);
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	if (!q)
		return -NLE_NOMEM;
	tc_on(TC_CAST(q), d->ifindex, ITR_SHAPE_CLASSID, TC_HANDLE(ITR_SHAPE_LEAF_MAJOR, 0),
	      "bfifo");
	int rc = rtnl_qdisc_fifo_set_limit(q, (int)c.queue_bytes);
	if (!rc)
		rc = rtnl_qdisc_add(s->sk, q, flags);
	rtnl_qdisc_put(q);
	return rc;
}

static int delete_root(struct itr_shaper *s, int ifindex)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	if (!q)
		return -NLE_NOMEM;
	tc_on(TC_CAST(q), ifindex, TC_H_ROOT, TC_HANDLE(ITR_SHAPE_MAJOR, 0), "htb");
	int rc = rtnl_qdisc_delete(s->sk, q);
	rtnl_qdisc_put(q);
	return rc;
}

/* The device's root qdisc now: 0 when it is the kernel's default (handle
 * 0:) or ours, -1 with err when someone else installed it. *ours says which. */
static int root_is_free(struct itr_shaper *s, const struct shaped_dev *d, bool *ours, char *err,
                        size_t errlen)
{
	struct nl_cache *cache = NULL;
	int rc = rtnl_qdisc_alloc_cache(s->sk, &cache);
	*ours = false;
	if (rc < 0) {
		snprintf(err, errlen, "--shape %s=%s: listing qdiscs: %s", d->spec.link,
		         d->spec.dev, nl_geterror(rc));
		return -1;
	}
	struct rtnl_qdisc *root = rtnl_qdisc_get_by_parent(cache, d->ifindex, TC_H_ROOT);
	int ret = 0;
	if (root) {
		uint32_t h = rtnl_tc_get_handle(TC_CAST(root));
		const char *kind = rtnl_tc_get_kind(TC_CAST(root));
		if (TC_H_MAJ(h) == TC_HANDLE(ITR_SHAPE_MAJOR, 0) && kind && !strcmp(kind, "htb")) {
			*ours = true;
		} else if (h != 0) {
			snprintf(err, errlen,
			         "--shape %s=%s: %s already has a root qdisc (%s, handle %x:) that "
			         "itrackerd did not install; remove it or shape another device",
			         d->spec.link, d->spec.dev, d->spec.dev, kind ? kind : "?",
			         TC_H_MAJ(h) >> 16);
			ret = -1;
		}
		rtnl_qdisc_put(root);
	}
	nl_cache_free(cache);
	return ret;
}

static int install(struct itr_shaper *s, struct shaped_dev *d, uint64_t budget_bps, char *err,
                   size_t errlen)
{
	bool ours;
	if (root_is_free(s, d, &ours, err, errlen))
		return -1;
	/* A previous run's qdisc (--keep-attached, or a crash): start afresh
	 * from the map's budget rather than trust what it left. */
	if (ours)
		delete_root(s, d->ifindex);
	const char *step = "the HTB qdisc";
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	int rc = q ? 0 : -NLE_NOMEM;
	if (!rc) {
		tc_on(TC_CAST(q), d->ifindex, TC_H_ROOT, TC_HANDLE(ITR_SHAPE_MAJOR, 0), "htb");
		/* default class 0: what the data plane did not steer takes
		 * HTB's direct path, unshaped */
		rc = rtnl_htb_set_defcls(q, 0);
	}
	if (!rc)
		rc = rtnl_qdisc_add(s->sk, q, NLM_F_CREATE | NLM_F_EXCL);
	if (q)
		rtnl_qdisc_put(q);
	if (!rc) {
		d->installed = true;
		step = "the BitTorrent class";
		rc = set_class(s, d, budget_bps, NLM_F_CREATE | NLM_F_EXCL);
	}
	if (!rc) {
		step = "the class's queue";
		rc = set_leaf(s, d, budget_bps, NLM_F_CREATE | NLM_F_EXCL);
	}
	if (rc) {
		snprintf(err, errlen, "--shape %s=%s: installing %s: %s", d->spec.link, d->spec.dev,
		         step, nl_geterror(rc));
		return -1;
	}
	d->budget_bps = budget_bps;
	return 0;
}

/* A shaper for specs with its socket, each device found and its root
 * qdisc free (the kernel's default, or ours), nothing installed yet. */
static struct itr_shaper *shaper_new(const struct itr_shape_spec *specs, size_t n, char *err,
                                     size_t errlen)
{
	if (n > ITR_SHAPE_MAX) {
		snprintf(err, errlen, "--shape: at most %d devices", ITR_SHAPE_MAX);
		return NULL;
	}
	struct itr_shaper *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "--shape: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	if (!(s->sk = nl_socket_alloc()) || nl_connect(s->sk, NETLINK_ROUTE) < 0) {
		snprintf(err, errlen, "--shape: cannot open a netlink socket");
		itr_shaper_free(s, false);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct shaped_dev *d = &s->devs[s->n++];
		bool ours;
		d->spec = specs[i];
		d->ifindex = (int)if_nametoindex(d->spec.dev);
		if (!d->ifindex) {
			snprintf(err, errlen, "--shape %s=%s: no interface %s", d->spec.link,
			         d->spec.dev, d->spec.dev);
			itr_shaper_free(s, false);
			return NULL;
		}
		if (root_is_free(s, d, &ours, err, errlen)) {
			itr_shaper_free(s, false);
			return NULL;
		}
	}
	return s;
}

int itr_shaper_probe(const struct itr_shape_spec *specs, size_t n, char *err, size_t errlen)
{
	struct itr_shaper *s = shaper_new(specs, n, err, errlen);
	itr_shaper_free(s, false); /* installed nothing, removes nothing */
	return s ? 0 : -1;
}

struct itr_shaper *itr_shaper_start(const struct itr_shape_spec *specs, size_t n,
                                    const struct itr_netmap *map, char *err, size_t errlen)
{
	if (itr_shaper_check(specs, n, map, err, errlen))
		return NULL;
	struct itr_shaper *s = shaper_new(specs, n, err, errlen);
	for (size_t i = 0; s && i < s->n; i++) {
		struct shaped_dev *d = &s->devs[i];
		if (install(s, d, find_link(map, d->spec.link)->budget_bps, err, errlen)) {
			itr_shaper_free(s, false);
			return NULL;
		}
		fprintf(stderr,
		        "itrackerd: shaping inter-AS BitTorrent on %s to link %s's budget, %.3f "
		        "Mbit/s (HTB class %x:%x)\n",
		        d->spec.dev, d->spec.link, (double)d->budget_bps / 1e6, ITR_SHAPE_MAJOR,
		        ITR_SHAPE_CLASSID & 0xffff);
	}
	return s;
}

int itr_shaper_follow_map(struct itr_shaper *s, const struct itr_netmap *map)
{
	if (!s || !map)
		return 0;
	int changed = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct shaped_dev *d = &s->devs[i];
		const struct itr_link *l = find_link(map, d->spec.link);
		if (!l || !l->budget_bps) {
			if (!d->warned_no_link)
				fprintf(stderr,
				        "itrackerd: the map no longer declares link %s (or its "
				        "budget): "
				        "%s stays shaped to %.3f Mbit/s\n",
				        d->spec.link, d->spec.dev, (double)d->budget_bps / 1e6);
			d->warned_no_link = true;
			continue;
		}
		d->warned_no_link = false;
		if (l->budget_bps == d->budget_bps)
			continue;
		int rc = set_class(s, d, l->budget_bps, 0);
		if (!rc)
			rc = set_leaf(s, d, l->budget_bps, 0);
		if (rc) {
			fprintf(stderr,
			        "itrackerd: shaping %s: changing the class to %.3f Mbit/s failed: "
			        "%s; it stays at %.3f Mbit/s\n",
			        d->spec.dev, (double)l->budget_bps / 1e6, nl_geterror(rc),
			        (double)d->budget_bps / 1e6);
			changed = -1;
			continue;
		}
		fprintf(stderr, "itrackerd: shaping %s: link %s's budget %.3f -> %.3f Mbit/s\n",
		        d->spec.dev, d->spec.link, (double)d->budget_bps / 1e6,
		        (double)l->budget_bps / 1e6);
		d->budget_bps = l->budget_bps;
		if (changed >= 0)
			changed++;
	}
	pthread_mutex_unlock(&s->lock);
	return changed;
}

void itr_shaper_free(struct itr_shaper *s, bool keep)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct shaped_dev *d = &s->devs[i];
		if (!d->installed || keep)
			continue;
		/* The leaf and the class go with the root; the kernel puts the
		 * device's default qdisc back. */
		int rc = delete_root(s, d->ifindex);
		if (rc && rc != -NLE_OBJ_NOTFOUND && rc != -NLE_NODEV)
			fprintf(stderr, "itrackerd: removing the shaper from %s: %s\n", d->spec.dev,
			        nl_geterror(rc));
	}
	if (s->sk)
		nl_socket_free(s->sk);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int itr_shaper_purge(char *err, size_t errlen)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	int rc = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (!rc)
		rc = rtnl_qdisc_alloc_cache(sk, &cache);
	int removed = 0;
	for (struct nl_object *o = rc ? NULL : nl_cache_get_first(cache); o && rc >= 0;
	     o = nl_cache_get_next(o)) {
		struct rtnl_tc *tc = (struct rtnl_tc *)o;
		const char *kind = rtnl_tc_get_kind(tc);
		if (rtnl_tc_get_parent(tc) != TC_H_ROOT || !kind || strcmp(kind, "htb") ||
		    rtnl_tc_get_handle(tc) != TC_HANDLE(ITR_SHAPE_MAJOR, 0))
			continue;
		rc = rtnl_qdisc_delete(sk, (struct rtnl_qdisc *)o);
		if (!rc)
			removed++;
	}
	if (rc < 0)
		snprintf(err, errlen, "removing --shape's qdiscs: %s", nl_geterror(rc));
	if (cache)
		nl_cache_free(cache);
	if (sk)
		nl_socket_free(sk);
	return rc < 0 ? -1 : removed;
}

struct class_counters {
	uint64_t bytes, packets, drops, overlimits, backlog;
	bool ok;
};

/* The class's counters, plus the drops of its queue (tail drops are counted there). */
static void read_counters(struct itr_shaper *s, struct class_counters *out)
{
	struct nl_cache *classes = NULL, *qdiscs = NULL;
	for (size_t i = 0; i < s->n; i++)
		out[i] = (struct class_counters){0};
	if (rtnl_qdisc_alloc_cache(s->sk, &qdiscs) < 0)
		qdiscs = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct shaped_dev *d = &s->devs[i];
		if (rtnl_class_alloc_cache(s->sk, d->ifindex, &classes) < 0)
			continue;
		struct rtnl_class *cl = rtnl_class_get(classes, d->ifindex, ITR_SHAPE_CLASSID);
		if (cl) {
			struct rtnl_tc *tc = TC_CAST(cl);
			out[i].bytes = rtnl_tc_get_stat(tc, RTNL_TC_BYTES);
			out[i].packets = rtnl_tc_get_stat(tc, RTNL_TC_PACKETS);
			out[i].drops = rtnl_tc_get_stat(tc, RTNL_TC_DROPS);
			out[i].overlimits = rtnl_tc_get_stat(tc, RTNL_TC_OVERLIMITS);
			out[i].backlog = rtnl_tc_get_stat(tc, RTNL_TC_BACKLOG);
			out[i].ok = true;
			rtnl_class_put(cl);
		}
		nl_cache_free(classes);
		struct rtnl_qdisc *leaf =
		    qdiscs ? rtnl_qdisc_get(qdiscs, d->ifindex, TC_HANDLE(ITR_SHAPE_LEAF_MAJOR, 0))
		           : NULL;
		if (leaf) {
			out[i].drops += rtnl_tc_get_stat(TC_CAST(leaf), RTNL_TC_DROPS);
			rtnl_qdisc_put(leaf);
		}
	}
	if (qdiscs)
		nl_cache_free(qdiscs);
}

json_t *itr_shaper_status_json(struct itr_shaper *s)
{
	json_t *arr = json_array();
	if (!s || !arr)
		return arr;
	struct class_counters c[ITR_SHAPE_MAX];
	pthread_mutex_lock(&s->lock);
	read_counters(s, c);
	for (size_t i = 0; i < s->n; i++) {
		const struct shaped_dev *d = &s->devs[i];
		json_t *o = json_pack("{s:s, s:s, s:I}", "link", d->spec.link, "dev", d->spec.dev,
		                      "rate_bps", (json_int_t)d->budget_bps);
		if (!o)
			continue;
		if (c[i].ok) {
			json_object_set_new(o, "sent_bytes", json_integer((json_int_t)c[i].bytes));
			json_object_set_new(o, "sent_packets",
			                    json_integer((json_int_t)c[i].packets));
			json_object_set_new(o, "drops", json_integer((json_int_t)c[i].drops));
			json_object_set_new(o, "overlimits",
			                    json_integer((json_int_t)c[i].overlimits));
			json_object_set_new(o, "backlog_bytes",
			                    json_integer((json_int_t)c[i].backlog));
		}
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&s->lock);
	return arr;
}

int itr_shaper_metrics(struct itr_shaper *s, FILE *out)
{
	if (!s || !s->n)
		return 0;
	struct class_counters c[ITR_SHAPE_MAX];
	pthread_mutex_lock(&s->lock);
	read_counters(s, c);
	static const struct {
		const char *name, *type, *help;
	} m[] = {
	    {"itracker_shaper_rate_bits_per_second", "gauge",
	     "rate of the HTB class inter-AS BitTorrent is shaped to (the link's budget)"},
	    {"itracker_shaper_sent_bytes_total", "counter", "bytes the class sent"},
	    {"itracker_shaper_drops_total", "counter", "packets the class and its queue dropped"},
	};
	int rc = 0;
	for (size_t k = 0; k < sizeof(m) / sizeof(m[0]) && rc >= 0; k++) {
		rc = fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name,
		             m[k].type);
		for (size_t i = 0; i < s->n && rc >= 0; i++) {
			const struct shaped_dev *d = &s->devs[i];
			if (k > 0 && !c[i].ok)
				continue;
			uint64_t v = k == 0 ? d->budget_bps : k == 1 ? c[i].bytes : c[i].drops;
			rc = fprintf(out, "%s{link=\"%s\",dev=\"%s\"} %llu\n", m[k].name,
			             d->spec.link, d->spec.dev, (unsigned long long)v);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? -1 : 0;
}
