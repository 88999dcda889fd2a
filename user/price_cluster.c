/* price_cluster.c - the inter-AS rates of every itrackerd on a Redis
 * Cluster, summed per link for the price controller (see price_cluster.h).
 *
 * One tick is one pipeline to the {links} slot: SET this instance's record
 * with its TTL, SADD its id to the member set (and PEXPIRE the set), SREM
 * the ids found dead last time, SMEMBERS, and a GET of every other member
 * known from the last tick. Members that appeared since are read in a
 * second round trip at once, so a new instance counts from its first
 * record, not one period later.
 */
#include "price_cluster.h"

#include <hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "netmap.h"
#include "redis_cluster.h"

#define KEY_MEMBERS      "itr:{links}:m"
#define KEY_RECORD       "itr:{links}:r:"
#define RECORD_MAGIC     "itr-rates 1\n"
#define MAX_INSTANCES    1024
#define ID_SIZE          (ITR_PRICE_CLUSTER_ID_MAX + 1)
#define RECORD_KEY_SIZE  (sizeof(KEY_RECORD) + ID_SIZE)
#define TTL_PERIODS      3
#define TTL_MIN_MS       1000
#define RECORD_LINE_SIZE (ITR_NAME_MAX + 48)

struct itr_price_cluster {
	struct itr_rc *rc;
	unsigned ttl_ms;
	char id[ID_SIZE];
	uint16_t slot;
	char (*known)[ID_SIZE]; /* other members read last tick */
	size_t nknown;
	char (*dead)[ID_SIZE]; /* records found gone: SREM'd next tick */
	size_t ndead;
};

/* ---- the record ------------------------------------------------------------ */

size_t itr_price_cluster_encode(char *buf, size_t cap, const char *const *names,
                                const double *local, size_t n, double dt)
{
	size_t len = strlen(RECORD_MAGIC);
	if (cap <= len)
		return 0;
	memcpy(buf, RECORD_MAGIC, len);
	unsigned long long interval_ms = dt > 0 ? (unsigned long long)(dt * 1000.0 + 0.5) : 0;
	if (interval_ms == 0)
		interval_ms = 1;
	for (size_t k = 0; k < n; k++) {
		if (!(local[k] >= 0))
			continue;
		double b = local[k] * (double)interval_ms / 8000.0 + 0.5;
		unsigned long long bytes =
		    b < 1e18 ? (unsigned long long)b : 1000000000000000000ull;
		int w =
		    snprintf(buf + len, cap - len, "%s %llu %llu\n", names[k], bytes, interval_ms);
		if (w < 0 || (size_t)w >= cap - len)
			return 0;
		len += (size_t)w;
	}
	buf[len] = '\0';
	return len;
}

int itr_price_cluster_add(const char *value, size_t len, const char *const *names, size_t n,
                          double *total, unsigned *contributors)
{
	size_t magic = strlen(RECORD_MAGIC);
	if (!value || len < magic || memcmp(value, RECORD_MAGIC, magic) != 0)
		return -1;
	/* Parse every line before adding any, so a damaged record adds nothing. */
	struct entry {
		size_t link;
		double rate;
	};
	struct entry *found = calloc(n + 1, sizeof(*found));
	if (!found)
		return -1;
	size_t nfound = 0;
	const char *p = value + magic, *end = value + len;
	int rc = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol) {
			rc = -1;
			break;
		}
		char line[RECORD_LINE_SIZE];
		size_t ll = (size_t)(eol - p);
		if (ll >= sizeof(line)) {
			rc = -1;
			break;
		}
		memcpy(line, p, ll);
		line[ll] = '\0';
		p = eol + 1;
		char name[ITR_NAME_MAX + 1];
		unsigned long long bytes, interval_ms;
		char extra;
		if (sscanf(line, "%64s %llu %llu %c", name, &bytes, &interval_ms, &extra) != 3 ||
		    interval_ms == 0) {
			rc = -1;
			break;
		}
		size_t k = 0;
		while (k < n && strcmp(names[k], name) != 0)
			k++;
		if (k == n)
			continue;
		for (size_t i = 0; i < nfound; i++)
			if (found[i].link == k)
				rc = -1; /* a link twice: not a record this code wrote */
		if (rc)
			break;
		found[nfound++] = (struct entry){k, (double)bytes * 8000.0 / (double)interval_ms};
	}
	if (rc == 0) {
		for (size_t i = 0; i < nfound; i++) {
			size_t k = found[i].link;
			if (total[k] < 0)
				total[k] = 0;
			total[k] += found[i].rate;
			contributors[k]++;
		}
	}
	free(found);
	return rc;
}

/* ---- the instance's state --------------------------------------------------- */

static void sanitize_id(char *id)
{
	for (char *c = id; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		          (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_';
		if (!ok)
			*c = '_';
	}
}

struct itr_price_cluster *itr_price_cluster_new(struct itr_rc *rc, double period_s, const char *id)
{
	struct itr_price_cluster *pcl = calloc(1, sizeof(*pcl));
	if (!pcl)
		return NULL;
	pcl->known = calloc(MAX_INSTANCES, ID_SIZE);
	pcl->dead = calloc(MAX_INSTANCES, ID_SIZE);
	if (!pcl->known || !pcl->dead) {
		itr_price_cluster_free(pcl);
		return NULL;
	}
	pcl->rc = rc;
	double ttl = period_s * TTL_PERIODS * 1000.0;
	pcl->ttl_ms = ttl > TTL_MIN_MS ? (unsigned)ttl : TTL_MIN_MS;
	if (id) {
		snprintf(pcl->id, sizeof(pcl->id), "%s", id);
	} else {
		/* a fresh id per start: a restarted instance is a new member
		 * and its old record simply ages out */
		char host[40] = "itrackerd";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)getpid() ^ (uint32_t)time(NULL);
		snprintf(pcl->id, sizeof(pcl->id), "%s-%08x", host, r);
	}
	sanitize_id(pcl->id);
	pcl->slot = itr_rc_keyslot(KEY_MEMBERS, strlen(KEY_MEMBERS));
	return pcl;
}

void itr_price_cluster_free(struct itr_price_cluster *pcl)
{
	if (!pcl)
		return;
	free(pcl->known);
	free(pcl->dead);
	free(pcl);
}

struct itr_price_cluster *itr_price_cluster_attach(struct itr_price *pc, struct itr_rc *rc,
                                                   double period_s)
{
	struct itr_price_cluster *pcl = itr_price_cluster_new(rc, period_s, NULL);
	if (!pcl)
		return NULL;
	struct itr_price_rate_source src = itr_price_cluster_source(pcl);
	itr_price_set_rate_source(pc, &src);
	fprintf(stderr,
	        "itrackerd: price controller: link rates summed over the cluster as %s (records "
	        "live %u ms)\n",
	        itr_price_cluster_id(pcl), itr_price_cluster_ttl_ms(pcl));
	return pcl;
}

const char *itr_price_cluster_id(const struct itr_price_cluster *pcl)
{
	return pcl->id;
}

unsigned itr_price_cluster_ttl_ms(const struct itr_price_cluster *pcl)
{
	return pcl->ttl_ms;
}

static void record_key(char out[RECORD_KEY_SIZE], const char *id)
{
	snprintf(out, RECORD_KEY_SIZE, "%s%s", KEY_RECORD, id);
}

static void set_cmd(struct itr_rc_cmd *c, int argc, const char *const *argv)
{
	c->argc = argc;
	for (int i = 0; i < argc; i++) {
		c->argv[i] = argv[i];
		c->argvlen[i] = strlen(argv[i]);
	}
}

static bool id_in(char (*list)[ID_SIZE], size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], id) == 0)
			return true;
	return false;
}

static void note_dead(struct itr_price_cluster *pcl, const char *id)
{
	if (pcl->ndead < MAX_INSTANCES && !id_in(pcl->dead, pcl->ndead, id))
		snprintf(pcl->dead[pcl->ndead++], ID_SIZE, "%s", id);
}

/* Add the GET answer for id: a record counts, a missing key is a dead
 * instance. */
static void take_record(struct itr_price_cluster *pcl, const char *id, const redisReply *r,
                        const char *const *names, size_t n, double *total, unsigned *contributors)
{
	if (r && r->type == REDIS_REPLY_STRING)
		itr_price_cluster_add(r->str, r->len, names, n, total, contributors);
	else if (r && r->type == REDIS_REPLY_NIL)
		note_dead(pcl, id);
}

/* GET the records of ids in one round trip. */
static int read_records(struct itr_price_cluster *pcl, char (*ids)[ID_SIZE], size_t nids,
                        const char *const *names, size_t n, double *total, unsigned *contributors,
                        char *err, size_t errlen)
{
	if (!nids)
		return 0;
	struct itr_rc_cmd *cmds = calloc(nids, sizeof(*cmds));
	char(*keys)[RECORD_KEY_SIZE] = calloc(nids, RECORD_KEY_SIZE);
	void **replies = calloc(nids, sizeof(*replies));
	int rc = -1;
	if (!cmds || !keys || !replies) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		record_key(keys[i], ids[i]);
		set_cmd(&cmds[i], 2, (const char *[]){"GET", keys[i]});
	}
	if (itr_rc_pipeline(pcl->rc, pcl->slot, cmds, nids, replies, err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < nids; i++)
		take_record(pcl, ids[i], replies[i], names, n, total, contributors);
	itr_rc_replies_free(replies, nids);
	rc = 0;
out:
	free(cmds);
	free(keys);
	free(replies);
	return rc;
}

static int cluster_combine(void *ctx, const char *const *names, const double *local, size_t n,
                           double dt, double *total, unsigned *contributors, char *err,
                           size_t errlen)
{
	struct itr_price_cluster *pcl = ctx;
	for (size_t k = 0; k < n; k++) {
		total[k] = local[k] >= 0 ? local[k] : -1;
		contributors[k] = local[k] >= 0;
	}
	size_t cap = strlen(RECORD_MAGIC) + n * RECORD_LINE_SIZE + 1;
	char *record = malloc(cap);
	size_t ncmds = 4 + pcl->ndead + pcl->nknown;
	struct itr_rc_cmd *cmds = calloc(ncmds, sizeof(*cmds));
	void **replies = calloc(ncmds, sizeof(*replies));
	char(*keys)[RECORD_KEY_SIZE] = calloc(pcl->nknown + 1, RECORD_KEY_SIZE);
	char(*fresh)[ID_SIZE] = calloc(MAX_INSTANCES, ID_SIZE);
	char(*next_known)[ID_SIZE] = calloc(MAX_INSTANCES, ID_SIZE);
	int rc = -1;
	if (!record || !cmds || !replies || !keys || !fresh || !next_known) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	size_t rlen = itr_price_cluster_encode(record, cap, names, local, n, dt);
	char ttl[16], my_key[RECORD_KEY_SIZE];
	snprintf(ttl, sizeof(ttl), "%u", pcl->ttl_ms);
	record_key(my_key, pcl->id);

	size_t c = 0;
	set_cmd(&cmds[c], 5, (const char *[]){"SET", my_key, "", "PX", ttl});
	cmds[c].argv[2] = record;
	cmds[c++].argvlen[2] = rlen;
	set_cmd(&cmds[c++], 3, (const char *[]){"SADD", KEY_MEMBERS, pcl->id});
	set_cmd(&cmds[c++], 3, (const char *[]){"PEXPIRE", KEY_MEMBERS, ttl});
	for (size_t i = 0; i < pcl->ndead; i++)
		set_cmd(&cmds[c++], 3, (const char *[]){"SREM", KEY_MEMBERS, pcl->dead[i]});
	size_t at_members = c;
	set_cmd(&cmds[c++], 2, (const char *[]){"SMEMBERS", KEY_MEMBERS});
	size_t at_records = c;
	for (size_t i = 0; i < pcl->nknown; i++) {
		record_key(keys[i], pcl->known[i]);
		set_cmd(&cmds[c++], 2, (const char *[]){"GET", keys[i]});
	}
	if (itr_rc_pipeline(pcl->rc, pcl->slot, cmds, c, replies, err, errlen) < 0)
		goto out;
	const redisReply *set = replies[0];
	if (!set || set->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "SET: %s", set ? set->str : "no reply");
		itr_rc_replies_free(replies, c);
		goto out;
	}
	/* the dead were removed: forget them */
	pcl->ndead = 0;
	for (size_t i = 0; i < pcl->nknown; i++)
		take_record(pcl, pcl->known[i], replies[at_records + i], names, n, total,
		            contributors);
	/* the members now: the known ones still alive, and the fresh ones */
	size_t nnext = 0, nfresh = 0;
	const redisReply *m = replies[at_members];
	for (size_t i = 0; m && m->type == REDIS_REPLY_ARRAY && i < m->elements; i++) {
		const redisReply *e = m->element[i];
		if (e->type != REDIS_REPLY_STRING || e->len >= ID_SIZE || nnext >= MAX_INSTANCES)
			continue;
		char id[ID_SIZE];
		memcpy(id, e->str, e->len);
		id[e->len] = '\0';
		if (strcmp(id, pcl->id) == 0)
			continue;
		if (id_in(pcl->dead, pcl->ndead, id))
			continue; /* its key was gone just now */
		if (!id_in(pcl->known, pcl->nknown, id))
			snprintf(fresh[nfresh++], ID_SIZE, "%s", id);
		snprintf(next_known[nnext++], ID_SIZE, "%s", id);
	}
	itr_rc_replies_free(replies, c);
	if (read_records(pcl, fresh, nfresh, names, n, total, contributors, err, errlen) < 0)
		goto out;
	pcl->nknown = 0;
	for (size_t i = 0; i < nnext; i++)
		if (!id_in(pcl->dead, pcl->ndead, next_known[i]))
			memcpy(pcl->known[pcl->nknown++], next_known[i], ID_SIZE);
	rc = 0;
out:
	free(record);
	free(cmds);
	free(replies);
	free(keys);
	free(fresh);
	free(next_known);
	return rc;
}

struct itr_price_rate_source itr_price_cluster_source(struct itr_price_cluster *pcl)
{
	return (struct itr_price_rate_source){
	    .combine = cluster_combine,
	    .ctx = pcl,
	    .name = "redis-cluster",
	};
}
