/* cmd_daemon.c - the subcommands that ask itrackerd over HTTP:
 * `netinfo ADDR` (GET /v1/netinfo) and `rank CLIENT PEER...` (POST /v1/rank).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <sys/stat.h>

#include "ctl.h"

static const char netinfo_usage[] =
    "usage: itrackerctl netinfo ADDR [--json]\n"
    "\n"
    "Network position of ADDR (IPv4 or IPv6) as the daemon's current map sees\n"
    "it: PID, ASID, LOC and the map's vtag. Exit 3 if the daemon is down.\n";

static const char rank_usage[] =
    "usage: itrackerctl rank CLIENT PEER... [--numwant N] [--json]\n"
    "\n"
    "Rank candidate peers (ADDR or ADDR:PORT, [V6]:PORT) for CLIENT the way\n"
    "the tracker would, cheapest first. Exit 3 if the daemon is down.\n"
    "\n"
    "  --numwant N  how many to return (daemon default when absent)\n";

/* The exit code for an exchange with where; on CTL_EXIT_OK *answer holds
 * the parsed 200 body. */
static int daemon_answer(const char *where, int rc, const char *err, const char *method,
                         const char *path, struct ctl_http_reply reply, json_t **answer)
{
	*answer = NULL;
	if (rc == CTL_HTTP_UNREACHABLE) {
		ctl_error("daemon not reachable at %s: %s", where, err);
		return CTL_EXIT_UNREACHABLE;
	}
	if (rc == CTL_HTTP_BAD_URL) {
		ctl_error("%s", err);
		return CTL_EXIT_USAGE;
	}
	if (rc != CTL_HTTP_OK) {
		ctl_error("%s: %s", where, err);
		return CTL_EXIT_RUNTIME;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(reply.body, reply.body_len, 0, &jerr);
	if (reply.status != 200) {
		json_t *e = doc ? json_object_get(doc, "error") : NULL;
		const char *reason = json_string_value(json_object_get(e, "reason"));
		const char *field = json_string_value(json_object_get(e, "field"));
		const char *code = json_string_value(json_object_get(e, "code"));
		if (reason)
			ctl_error("%s %s: HTTP %d%s%s: %s%s%s", method, path, reply.status,
			          code ? " " : "", code ? code : "", reason,
			          field && *field ? " in " : "", field && *field ? field : "");
		else
			ctl_error("%s %s: HTTP %d: %.200s", method, path, reply.status, reply.body);
		json_decref(doc);
		ctl_http_reply_free(&reply);
		return CTL_EXIT_RUNTIME;
	}
	if (!doc) {
		ctl_error("%s %s: the answer is not JSON (%s)", method, path, jerr.text);
		ctl_http_reply_free(&reply);
		return CTL_EXIT_RUNTIME;
	}
	ctl_http_reply_free(&reply);
	*answer = doc;
	return CTL_EXIT_OK;
}

int ctl_daemon_call(const struct ctl_global *g, const char *method, const char *path,
                    const char *body, json_t **answer)
{
	struct ctl_http_reply reply;
	char err[256];
	int rc =
	    ctl_http(g->server, method, path, "application/json", body, body ? strlen(body) : 0,
	             g->timeout_s ? g->timeout_s : CTL_TIMEOUT_DEFAULT, &reply, err, sizeof(err));
	return daemon_answer(g->server, rc, err, method, path, reply, answer);
}

int ctl_admin_call(const struct ctl_global *g, const char *method, const char *path,
                   json_t **answer)
{
	struct stat sb;
	*answer = NULL;
	/* a daemon run with --admin-socket off serves admin on its listener */
	if (!g->admin_socket || stat(g->admin_socket, &sb) != 0 || !S_ISSOCK(sb.st_mode))
		return ctl_daemon_call(g, method, path, NULL, answer);
	char auth[600] = "";
	if (g->admin_token_file) {
		FILE *f = fopen(g->admin_token_file, "r");
		char tok[512] = "";
		if (!f || !fgets(tok, sizeof(tok), f)) {
			ctl_error("cannot read the admin token from %s", g->admin_token_file);
			if (f)
				fclose(f);
			return CTL_EXIT_USAGE;
		}
		fclose(f);
		char *start = tok + strspn(tok, " \t\r\n");
		start[strcspn(start, " \t\r\n")] = '\0';
		snprintf(auth, sizeof(auth), "Bearer %s", start);
	}
	struct ctl_http_reply reply;
	char err[256];
	int rc = ctl_http_unix(g->admin_socket, auth[0] ? auth : NULL, method, path,
	                       g->timeout_s ? g->timeout_s : CTL_TIMEOUT_DEFAULT, &reply, err,
	                       sizeof(err));
	return daemon_answer(g->admin_socket, rc, err, method, path, reply, answer);
}

void ctl_print_json(const json_t *doc)
{
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
}

/* A scalar JSON value as text for tables ("-" for null). */
const char *ctl_json_text(const json_t *v, char *buf, size_t len)
{
	if (!v || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	char *s = json_dumps(v, JSON_COMPACT);
	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
	return buf;
}

int ctl_cmd_netinfo(const struct ctl_global *g, int argc, char **argv)
{
	bool json = g->json;
	const struct ctl_opt opts[] = {
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, netinfo_usage, opts, &first, &status))
		return status;
	if (first == argc)
		return ctl_usage_error(netinfo_usage, "which address?");
	if (argc - first > 1)
		return ctl_usage_error(netinfo_usage, "one address only");
	const char *addr = argv[first];
	char enc[256], path[300];
	ctl_url_encode(addr, enc, sizeof(enc));
	snprintf(path, sizeof(path), "/v1/netinfo?ip=%s", enc);
	json_t *doc;
	int rc = ctl_daemon_call(g, "GET", path, NULL, &doc);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (json) {
		ctl_print_json(doc);
	} else {
		const char *key;
		json_t *v;
		json_object_foreach(doc, key, v)
		{
			char buf[128];
			printf("%-8s %s\n", key, ctl_json_text(v, buf, sizeof(buf)));
		}
	}
	json_decref(doc);
	return CTL_EXIT_OK;
}

int ctl_cmd_rank(const struct ctl_global *g, int argc, char **argv)
{
	bool json = g->json;
	unsigned long numwant = ULONG_MAX; /* not given: the daemon's default */
	const struct ctl_opt opts[] = {
	    {"numwant", CTL_OPT_NUMBER, &numwant, 0},
	    {"json", CTL_OPT_FLAG, &json, 0},
	    {NULL, 0, NULL, 0},
	};
	int first, status;
	if (!ctl_options(argc, argv, rank_usage, opts, &first, &status))
		return status;
	if (argc - first < 2)
		return ctl_usage_error(rank_usage, "need a client and at least one peer");
	json_t *req = json_object();
	json_object_set_new(req, "client", json_string(argv[first]));
	json_t *peers = json_array();
	for (int i = first + 1; i < argc; i++)
		json_array_append_new(peers, json_string(argv[i]));
	json_object_set_new(req, "peers", peers);
	if (numwant != ULONG_MAX)
		json_object_set_new(req, "numwant", json_integer((json_int_t)numwant));
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body) {
		ctl_error("out of memory");
		return CTL_EXIT_RUNTIME;
	}
	json_t *doc;
	int rc = ctl_daemon_call(g, "POST", "/v1/rank", body, &doc);
	free(body);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (json) {
		ctl_print_json(doc);
		json_decref(doc);
		return CTL_EXIT_OK;
	}
	json_t *client = json_object_get(doc, "client");
	char b1[128], b2[128], b3[128], b4[128];
	printf("client %s: pid %s, asid %s, loc %s; map vtag %s\n",
	       ctl_json_text(json_object_get(client, "ip"), b1, sizeof(b1)),
	       ctl_json_text(json_object_get(client, "pid"), b2, sizeof(b2)),
	       ctl_json_text(json_object_get(client, "asid"), b3, sizeof(b3)),
	       ctl_json_text(json_object_get(client, "loc"), b4, sizeof(b4)),
	       ctl_json_text(json_object_get(doc, "vtag"), b1, sizeof(b1)));
	printf("%4s  %-40s %6s  %-24s %10s\n", "RANK", "PEER", "PORT", "PID", "COST");
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(doc, "peers"), i, p)
	{
		printf("%4zu  %-40s %6s  %-24s %10s\n", i + 1,
		       ctl_json_text(json_object_get(p, "ip"), b1, sizeof(b1)),
		       ctl_json_text(json_object_get(p, "port"), b2, sizeof(b2)),
		       ctl_json_text(json_object_get(p, "pid"), b3, sizeof(b3)),
		       ctl_json_text(json_object_get(p, "cost"), b4, sizeof(b4)));
	}
	json_decref(doc);
	return CTL_EXIT_OK;
}
