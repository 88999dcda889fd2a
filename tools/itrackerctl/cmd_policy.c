/* cmd_policy.c - `itrackerctl policy`: the price controller's loop as the
 * daemon sees it (GET /v1/status, member "policy"): per declared inter-AS
 * link the measured BitTorrent rate against capacity and budget and the
 * price; per AS the peers, seeds and external budget it gets now; and the
 * links itrackerd shapes (--shape, member "shaper").
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "rank.h"

static const char policy_usage[] =
    "usage: itrackerctl policy [--json]\n"
    "\n"
    "The ranking policy's feedback loop (docs/policy.md), asked from the daemon:\n"
    "per inter-AS link of the network map its capacity, BitTorrent budget, the\n"
    "inter-AS BitTorrent rate the data plane measured (smoothed) and the price;\n"
    "per AS its peers and seeds over all swarms and the external budget they\n"
    "get now (gateway peers, outside peers per gateway); and each link the data\n"
    "plane shapes to its budget (--shape): device, rate, bytes sent and packets\n"
    "dropped by its HTB class (in --json: member \"shaper\"). Exit 3 if the\n"
    "daemon is down.\n";

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* An outside-peer cap; ITR_RANK_UNCAPPED (an AS too small to feed itself,
 * docs/policy.md) reads "all". */
static const char *cap_text(double cap, char *buf, size_t len)
{
	if (cap >= (double)ITR_RANK_UNCAPPED)
		return "all";
	snprintf(buf, len, "%.0f", cap);
	return buf;
}

/* Why an AS's lists are open, per swarm count: "no-seed N", "slow-seeds N",
 * both, or "-". */
static void why_open_text(json_t *as, char *buf, size_t len)
{
	double no_seed = num(as, "open_no_seed_swarms"), slow = num(as, "open_slow_seeds_swarms");
	if (no_seed > 0 && slow > 0)
		snprintf(buf, len, "no-seed %.0f, slow-seeds %.0f", no_seed, slow);
	else if (no_seed > 0)
		snprintf(buf, len, "no-seed %.0f", no_seed);
	else if (slow > 0)
		snprintf(buf, len, "slow-seeds %.0f", slow);
	else
		snprintf(buf, len, "-");
}

static const char *mbit(double bps, char *buf, size_t len)
{
	snprintf(buf, len, "%.2f", bps / 1e6);
	return buf;
}

/* The links the data plane shapes to their budgets (--shape), if any. */
static void print_shaper(json_t *shaper)
{
	if (!json_array_size(shaper))
		return;
	printf("\n%-20s %-15s %11s %10s %8s\n", "SHAPED LINK", "DEV", "RATE Mbit/s", "SENT MB",
	       "DROPS");
	size_t i;
	json_t *s;
	json_array_foreach(shaper, i, s)
	{
		char b[32];
		printf("%-20s %-15s %11s %10.2f %8.0f\n",
		       json_string_value(json_object_get(s, "link")),
		       json_string_value(json_object_get(s, "dev")),
		       mbit(num(s, "rate_bps"), b, sizeof(b)), num(s, "sent_bytes") / 1e6,
		       num(s, "drops"));
	}
}

int ctl_cmd_policy(const struct ctl_global *g, int argc, char **argv)
{
	bool json = g->json;
	const struct ctl_opt opts[] = {
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, policy_usage, opts, &first, &status))
		return status;
	if (first != argc)
		return ctl_usage_error(policy_usage, "unexpected argument '%s'", argv[first]);
	json_t *doc;
	int rc = ctl_daemon_call(g, "GET", "/v1/status", NULL, &doc);
	if (rc != CTL_EXIT_OK)
		return rc;
	json_t *pol = json_object_get(doc, "policy");
	json_t *shaper = json_object_get(doc, "shaper");
	if (json) {
		if (pol && shaper)
			json_object_set(pol, "shaper", shaper);
		if (pol)
			ctl_print_json(pol);
		else
			printf("null\n");
		json_decref(doc);
		return CTL_EXIT_OK;
	}
	if (!pol) {
		printf("no price controller: --gateways and --max-external are both fixed\n");
		print_shaper(shaper);
		json_decref(doc);
		return CTL_EXIT_OK;
	}
	printf("price controller: %s, every %.0f s\n\n",
	       strcmp(json_string_value(json_object_get(pol, "mode")) ?: "", "dataplane") == 0
	           ? "measured inter-AS rates and swarm state"
	           : "swarm state only (no data plane: rates not measured)",
	       num(pol, "period_s"));
	printf("%-20s %8s %8s %10s %10s %10s %6s %6s\n", "LINK", "ASN", "PEER", "CAP Mbit/s",
	       "BUDGET", "RATE", "UTIL", "PRICE");
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(pol, "links"), i, l)
	{
		char b1[32], b2[32], b3[32], pbuf[32];
		const char *peer =
		    ctl_json_text(json_object_get(l, "peer_asn"), pbuf, sizeof(pbuf));
		double budget = num(l, "budget_bps"), rate = num(l, "rate_smoothed_bps");
		bool measured = json_is_true(json_object_get(l, "measured"));
		char util[16] = "-";
		if (measured && budget > 0)
			snprintf(util, sizeof(util), "%.0f%%", 100.0 * rate / budget);
		printf("%-20s %8.0f %8s %10s %10s %10s %6s %6.2f\n",
		       json_string_value(json_object_get(l, "name")), num(l, "asn"), peer,
		       mbit(num(l, "capacity_bps"), b1, sizeof(b1)), mbit(budget, b2, sizeof(b2)),
		       measured ? mbit(rate, b3, sizeof(b3)) : "-", util, num(l, "price"));
	}
	if (i == 0)
		printf("(the network map declares no link)\n");
	printf("\n%-10s %7s %8s %6s %9s %12s %6s %s\n", "ASN", "SWARMS", "PEERS", "SEEDS",
	       "GATEWAYS", "EXTERNAL/GW", "OPEN", "WHY OPEN");
	json_t *a;
	json_array_foreach(json_object_get(pol, "ases"), i, a)
	{
		char ext[32], lo_text[16], hi_text[16];
		double lo = num(a, "max_external_min"), hi = num(a, "max_external_max");
		if (lo == hi)
			snprintf(ext, sizeof(ext), "%s", cap_text(hi, hi_text, sizeof(hi_text)));
		else
			snprintf(ext, sizeof(ext), "%s-%s", cap_text(lo, lo_text, sizeof(lo_text)),
			         cap_text(hi, hi_text, sizeof(hi_text)));
		char why[64];
		why_open_text(a, why, sizeof(why));
		printf("%-10.0f %7.0f %8.0f %6.0f %9.0f %12s %6.0f %s\n", num(a, "asn"),
		       num(a, "swarms"), num(a, "peers"), num(a, "seeds"), num(a, "gateways"), ext,
		       num(a, "open_swarms"), why);
	}
	if (i == 0)
		printf("(no peer announced yet)\n");
	print_shaper(shaper);
	json_decref(doc);
	return CTL_EXIT_OK;
}
