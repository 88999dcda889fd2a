/* alto_updates.c - the RFC 8895 update stream service (see alto_updates.h).
 *
 * One thread, woken by every map publish, turns the change into events: it
 * encodes each resource of the new map once, diffs it against the previous
 * version once (RFC 7396 merge patch), and writes the resulting event to
 * every substream that carries it. Streams are HTTP streams (http_stream.h)
 * with a bounded backlog, so a client that stops reading is cut off rather
 * than buffered for; it reconnects and gets the full resources again.
 */
#include "alto_updates.h"
#include "clock.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alto.h"
#include "http.h"
#include "http_stream.h"
#include "json_merge_patch.h"
#include "netmap.h"
#include "netmap_build.h"
#include "sse.h"

#define STREAM_ID_HEX 32 /* 128 random bits: the control URI is the capability */
#define RID_MAX       (2 * ITR_NAME_MAX + 2)

struct substream {
	char id[ITR_NAME_MAX + 1];
	enum itr_alto_resource res;
	bool incremental;
};

struct stream {
	char id[STREAM_ID_HEX + 1];
	struct itr_http_stream *http;
	struct substream *subs;
	unsigned nsubs;
	struct stream *next;
};

/* One version of a resource, as sent. */
struct version {
	char *text;  /* full body */
	json_t *doc; /* the same, parsed: what the next patch is diffed against */
	char tag[80];
};

struct itr_alto_updates {
	struct itr_alto_updates_limits limits;
	struct itr_alto_config cfg; /* strings owned below */
	char base_uri[256], prefix[ITR_NAME_MAX + 1];

	pthread_mutex_t lock; /* streams, current, nstreams */
	pthread_cond_t wake;
	bool changed, stopping;
	pthread_t thread;
	bool thread_started;
	struct stream *streams;
	unsigned nstreams;
	struct itr_netmap *map; /* the map `current` describes */
	struct version current[ITR_ALTO_RES_COUNT];
};

/* ---- versions ------------------------------------------------------------- */

static void version_clear(struct version *v)
{
	free(v->text);
	json_decref(v->doc);
	memset(v, 0, sizeof(*v));
}

static int version_make(struct version *v, const struct itr_netmap *map, enum itr_alto_resource res)
{
	memset(v, 0, sizeof(*v));
	v->text = itr_alto_resource_encode(map, res);
	if (!v->text)
		return -ENOMEM;
	json_error_t err;
	v->doc = json_loads(v->text, 0, &err);
	if (!v->doc) {
		version_clear(v);
		return -ENOMEM;
	}
	snprintf(v->tag, sizeof(v->tag), "%s", itr_netmap_vtag(map));
	return 0;
}

/* ---- events ---------------------------------------------------------------- */

static void stream_free(struct stream *s)
{
	itr_http_stream_close(s->http);
	itr_http_stream_unref(s->http);
	free(s->subs);
	free(s);
}

/* Write one event; a failed write (client gone or too far behind) closes
 * the HTTP stream, and the publisher thread drops the stream later. */
static void send_event(struct stream *s, const char *type, const char *data, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	if (itr_sse_append(&buf, &n, type, data, len) == 0)
		itr_http_stream_write(s->http, buf, n);
	else
		itr_http_stream_close(s->http);
	free(buf);
}

static void send_control(struct stream *s, json_t *control)
{
	char *text = json_dumps(control, JSON_COMPACT);
	json_decref(control);
	if (text)
		send_event(s, ITR_ALTO_MT_UPDATESTREAMCONTROL, text, strlen(text));
	else
		itr_http_stream_close(s->http);
	free(text);
}

static void send_full(struct itr_alto_updates *u, struct stream *s, const struct substream *sub)
{
	char type[160];
	const struct version *v = &u->current[sub->res];
	snprintf(type, sizeof(type), "%s,%s", itr_alto_resource_media(sub->res), sub->id);
	send_event(s, type, v->text, strlen(v->text));
}

static json_t *id_list(const struct substream *subs, unsigned n)
{
	json_t *ids = json_array();
	for (unsigned i = 0; ids && i < n; i++)
		json_array_append_new(ids, json_string(subs[i].id));
	return ids;
}

/* Called with u->lock held and u->current describing the newest map. */
static void publish_change(struct itr_alto_updates *u, struct version *prev)
{
	char *patch_text[ITR_ALTO_RES_COUNT] = {0};
	for (int r = 0; r < ITR_ALTO_RES_COUNT; r++) {
		json_t *patch = NULL;
		if (prev[r].doc &&
		    itr_merge_patch_diff(prev[r].doc, u->current[r].doc, &patch) == 0 && patch) {
			patch_text[r] = json_dumps(patch, JSON_COMPACT | JSON_ENCODE_ANY);
		}
		json_decref(patch);
	}
	for (struct stream *s = u->streams; s; s = s->next) {
		for (unsigned i = 0; i < s->nsubs; i++) {
			const struct substream *sub = &s->subs[i];
			if (sub->incremental && patch_text[sub->res]) {
				char type[160];
				snprintf(type, sizeof(type), "%s,%s", ITR_ALTO_MT_MERGE_PATCH,
				         sub->id);
				send_event(s, type, patch_text[sub->res],
				           strlen(patch_text[sub->res]));
			} else if (!prev[sub->res].doc ||
			           strcmp(prev[sub->res].text, u->current[sub->res].text) != 0) {
				send_full(u, s, sub);
			}
		}
	}
	for (int r = 0; r < ITR_ALTO_RES_COUNT; r++)
		free(patch_text[r]);
}

/* Drop streams whose HTTP side has ended. Called with u->lock held. */
static void prune(struct itr_alto_updates *u)
{
	struct stream **pp = &u->streams;
	while (*pp) {
		struct stream *s = *pp;
		if (itr_http_stream_closed(s->http)) {
			*pp = s->next;
			u->nstreams--;
			stream_free(s);
		} else {
			pp = &s->next;
		}
	}
}

/* Make u->current describe the published map; 1 if it changed. */
static int refresh(struct itr_alto_updates *u)
{
	struct itr_netmap *map = itr_netmap_current();
	if (!map || map == u->map) {
		itr_netmap_unref(map);
		return 0;
	}
	struct version next[ITR_ALTO_RES_COUNT], prev[ITR_ALTO_RES_COUNT];
	for (int r = 0; r < ITR_ALTO_RES_COUNT; r++) {
		if (version_make(&next[r], map, (enum itr_alto_resource)r) < 0) {
			for (int k = 0; k < r; k++)
				version_clear(&next[k]);
			itr_netmap_unref(map);
			return -ENOMEM;
		}
	}
	memcpy(prev, u->current, sizeof(prev));
	memcpy(u->current, next, sizeof(next));
	itr_netmap_unref(u->map);
	u->map = map;
	publish_change(u, prev);
	for (int r = 0; r < ITR_ALTO_RES_COUNT; r++)
		version_clear(&prev[r]);
	return 1;
}

static void *publisher(void *arg)
{
	struct itr_alto_updates *u = arg;
	pthread_mutex_lock(&u->lock);
	while (!u->stopping) {
		struct timespec deadline = itr_deadline_ms(u->limits.heartbeat_ms);
		int rc = 0;
		while (!u->changed && !u->stopping && rc == 0)
			rc = pthread_cond_timedwait(&u->wake, &u->lock, &deadline);
		if (u->stopping)
			break;
		if (u->changed) {
			u->changed = false;
			refresh(u);
		} else {
			/* idle: a comment line tells proxies and clients the stream lives,
			 * and finds the clients that left */
			for (struct stream *s = u->streams; s; s = s->next)
				itr_http_stream_write(s->http, ":\n\n", 3);
		}
		prune(u);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

static void on_publish(void *arg)
{
	struct itr_alto_updates *u = arg;
	pthread_mutex_lock(&u->lock);
	u->changed = true;
	pthread_cond_signal(&u->wake);
	pthread_mutex_unlock(&u->lock);
}

/* ---- requests -------------------------------------------------------------- */

static void set_alto_error(struct itr_http_response *resp, int status, enum itr_alto_code code,
                           const char *field, const char *value, const char *why)
{
	struct itr_alto_error err = {.code = code};
	snprintf(err.field, sizeof(err.field), "%s", field ? field : "");
	snprintf(err.value, sizeof(err.value), "%s", value ? value : "");
	if (code == ITR_ALTO_E_SYNTAX)
		snprintf(err.syntax_error, sizeof(err.syntax_error), "%s", why ? why : "");
	char *body = itr_alto_encode_error(&err);
	itr_http_set_body(resp, status, ITR_ALTO_MT_ERROR, body, body ? strlen(body) : 0);
}

static bool media_is(const char *header, const char *want)
{
	size_t n = strlen(want);
	return header && strncasecmp(header, want, n) == 0 &&
	       (header[n] == '\0' || header[n] == ';' || header[n] == ' ');
}

/* Parse an update stream request (RFC 8895 6.5): "add" substreams to
 * *subs (appending; ids must be new), "remove" ids into *remove. Fills the
 * ALTO error and returns -1 on a bad request. Called with u->lock held. */
struct parsed_req {
	struct substream add[16];
	unsigned nadd;
	char remove[16][ITR_NAME_MAX + 1];
	unsigned nremove;
	char tags[16][80];
};

static int parse_request(struct itr_alto_updates *u, const struct itr_http_request *req,
                         struct parsed_req *out, struct itr_http_response *resp)
{
	memset(out, 0, sizeof(*out));
	if (!media_is(req->content_type, ITR_ALTO_MT_UPDATESTREAMPARAMS)) {
		set_alto_error(resp, 415, ITR_ALTO_E_SYNTAX, NULL, NULL,
		               "Content-Type must be " ITR_ALTO_MT_UPDATESTREAMPARAMS);
		return -1;
	}
	json_error_t jerr;
	json_t *root =
	    req->body ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!root || !json_is_object(root)) {
		char why[200];
		snprintf(why, sizeof(why), "%s",
		         root ? "the request must be a JSON object" : jerr.text);
		json_decref(root);
		set_alto_error(resp, 400, ITR_ALTO_E_SYNTAX, NULL, NULL, why);
		return -1;
	}
	int rc = -1;
	json_t *add = json_object_get(root, "add"), *remove = json_object_get(root, "remove");
	if (add && !json_is_object(add)) {
		set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_TYPE, "add", NULL, NULL);
		goto out;
	}
	if (remove && !json_is_array(remove)) {
		set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_TYPE, "remove", NULL, NULL);
		goto out;
	}
	if (json_object_size(add) > u->limits.max_substreams ||
	    json_array_size(remove) > u->limits.max_substreams ||
	    json_object_size(add) > sizeof(out->add) / sizeof(out->add[0]) ||
	    json_array_size(remove) > sizeof(out->remove) / sizeof(out->remove[0])) {
		char limit[32];
		snprintf(limit, sizeof(limit), "at most %u", u->limits.max_substreams);
		set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, add ? "add" : "remove",
		               limit, NULL);
		goto out;
	}
	const char *sid;
	json_t *item;
	json_object_foreach(add, sid, item)
	{
		char field[ITR_NAME_MAX + 32];
		snprintf(field, sizeof(field), "add/%.64s", sid);
		char why[128];
		if (!itr_netmap_name_valid(sid, strlen(sid), why, sizeof(why))) {
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, "add", sid, NULL);
			goto out;
		}
		if (!json_is_object(item)) {
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_TYPE, field, NULL, NULL);
			goto out;
		}
		json_t *rid = json_object_get(item, "resource-id");
		json_t *tag = json_object_get(item, "tag");
		json_t *inc = json_object_get(item, "incremental-changes");
		if (!rid) {
			snprintf(field + strlen(field), sizeof(field) - strlen(field),
			         "/resource-id");
			set_alto_error(resp, 400, ITR_ALTO_E_MISSING_FIELD, field, NULL, NULL);
			goto out;
		}
		if (!json_is_string(rid) || (tag && !json_is_string(tag)) ||
		    (inc && !json_is_boolean(inc))) {
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_TYPE, field, NULL, NULL);
			goto out;
		}
		if (json_object_get(item, "input")) {
			/* every resource offered here is a GET resource: no input */
			snprintf(field + strlen(field), sizeof(field) - strlen(field), "/input");
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, field, NULL,
			               NULL);
			goto out;
		}
		int res = -1;
		for (int r = 0; r < ITR_ALTO_RES_COUNT; r++) {
			char id[RID_MAX];
			itr_alto_resource_id(u->map, &u->cfg, (enum itr_alto_resource)r, id,
			                     sizeof(id));
			if (strcmp(id, json_string_value(rid)) == 0)
				res = r;
		}
		if (res < 0) {
			snprintf(field + strlen(field), sizeof(field) - strlen(field),
			         "/resource-id");
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, field,
			               json_string_value(rid), NULL);
			goto out;
		}
		struct substream *sub = &out->add[out->nadd];
		snprintf(sub->id, sizeof(sub->id), "%s", sid);
		sub->res = (enum itr_alto_resource)res;
		sub->incremental = inc ? json_is_true(inc) : true;
		snprintf(out->tags[out->nadd], sizeof(out->tags[0]), "%s",
		         tag ? json_string_value(tag) : "");
		out->nadd++;
	}
	size_t i;
	json_array_foreach(remove, i, item)
	{
		if (!json_is_string(item)) {
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_TYPE, "remove", NULL,
			               NULL);
			goto out;
		}
		snprintf(out->remove[out->nremove++], sizeof(out->remove[0]), "%s",
		         json_string_value(item));
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static struct substream *find_sub(struct stream *s, const char *id)
{
	for (unsigned i = 0; i < s->nsubs; i++)
		if (strcmp(s->subs[i].id, id) == 0)
			return &s->subs[i];
	return NULL;
}

/* Add the parsed substreams to s and send them; -1 with resp filled on a
 * duplicate id or too many. Called with u->lock held. */
static int add_substreams(struct itr_alto_updates *u, struct stream *s, const struct parsed_req *p,
                          struct itr_http_response *resp)
{
	if (s->nsubs + p->nadd > u->limits.max_substreams) {
		char limit[32];
		snprintf(limit, sizeof(limit), "at most %u", u->limits.max_substreams);
		set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, "add", limit, NULL);
		return -1;
	}
	for (unsigned i = 0; i < p->nadd; i++) {
		if (find_sub(s, p->add[i].id)) {
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, "add",
			               p->add[i].id, NULL);
			return -1;
		}
	}
	struct substream *subs = realloc(s->subs, (s->nsubs + p->nadd) * sizeof(*subs));
	if (!subs && s->nsubs + p->nadd > 0) {
		itr_http_set_body(resp, 500, "text/plain", strdup("out of memory\n"), 14);
		return -1;
	}
	s->subs = subs;
	for (unsigned i = 0; i < p->nadd; i++) {
		struct substream *sub = &s->subs[s->nsubs++];
		*sub = p->add[i];
		/* a client that holds the current version (its "tag") needs no copy */
		bool has_vtag =
		    sub->res == ITR_ALTO_RES_NETWORKMAP || sub->res == ITR_ALTO_RES_ITRACKER_MAP;
		if (!has_vtag || strcmp(p->tags[i], u->current[sub->res].tag) != 0)
			send_full(u, s, sub);
	}
	if (p->nadd)
		send_control(s, json_pack("{s:o}", "started", id_list(p->add, p->nadd)));
	return 0;
}

static void handle_open(const struct itr_http_request *req, struct itr_http_response *resp,
                        void *arg)
{
	struct itr_alto_updates *u = arg;
	if (strcmp(req->method, "POST") != 0) {
		itr_http_set_body(resp, 405, "text/plain", strdup("use POST\n"), 9);
		return;
	}
	pthread_mutex_lock(&u->lock);
	refresh(u);
	struct parsed_req p;
	if (!u->map) {
		itr_http_set_body(resp, 503, "text/plain", strdup("no network map loaded\n"), 22);
		goto out;
	}
	if (parse_request(u, req, &p, resp) < 0)
		goto out;
	if (p.nadd == 0) {
		set_alto_error(resp, 400, ITR_ALTO_E_MISSING_FIELD, "add", NULL, NULL);
		goto out;
	}
	if (u->nstreams >= u->limits.max_streams) {
		itr_http_set_body(resp, 503, "text/plain",
		                  strdup("too many update streams; try again later\n"), 41);
		goto out;
	}
	struct stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->http = itr_http_stream_new(u->limits.max_pending))) {
		free(s);
		itr_http_set_body(resp, 500, "text/plain", strdup("out of memory\n"), 14);
		goto out;
	}
	unsigned char rnd[STREAM_ID_HEX / 2];
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(s->id, sizeof(s->id), rnd, sizeof(rnd));
	char uri[512];
	snprintf(uri, sizeof(uri), "%s/alto/updates/control?stream=%s", u->base_uri, s->id);
	send_control(s, json_pack("{s:s}", "control-uri", uri));
	if (add_substreams(u, s, &p, resp) < 0) {
		stream_free(s);
		goto out;
	}
	s->next = u->streams;
	u->streams = s;
	u->nstreams++;
	itr_http_set_stream(resp, 200, ITR_ALTO_MT_EVENT_STREAM, s->http);
out:
	pthread_mutex_unlock(&u->lock);
}

static void handle_control(const struct itr_http_request *req, struct itr_http_response *resp,
                           void *arg)
{
	struct itr_alto_updates *u = arg;
	char id[STREAM_ID_HEX + 1];
	if (strcmp(req->method, "POST") != 0) {
		itr_http_set_body(resp, 405, "text/plain", strdup("use POST\n"), 9);
		return;
	}
	long idlen = itr_http_query_get(req->query, "stream", (uint8_t *)id, sizeof(id) - 1);
	if (idlen <= 0 || idlen > STREAM_ID_HEX) {
		set_alto_error(resp, 400, ITR_ALTO_E_MISSING_FIELD, "stream", NULL, NULL);
		return;
	}
	id[idlen] = '\0';
	pthread_mutex_lock(&u->lock);
	struct stream *s = u->streams;
	while (s && (strcmp(s->id, id) != 0 || itr_http_stream_closed(s->http)))
		s = s->next;
	struct parsed_req p;
	if (!s) {
		/* RFC 8895 7.6: an unknown or ended stream */
		set_alto_error(resp, 404, ITR_ALTO_E_INVALID_FIELD_VALUE, "stream", id, NULL);
		goto out;
	}
	if (parse_request(u, req, &p, resp) < 0)
		goto out;
	for (unsigned i = 0; i < p.nremove; i++) {
		if (!find_sub(s, p.remove[i])) {
			set_alto_error(resp, 400, ITR_ALTO_E_INVALID_FIELD_VALUE, "remove",
			               p.remove[i], NULL);
			goto out;
		}
	}
	if (add_substreams(u, s, &p, resp) < 0)
		goto out;
	struct substream removed[16];
	unsigned nremoved = 0;
	for (unsigned i = 0; i < p.nremove; i++) {
		struct substream *sub = find_sub(s, p.remove[i]);
		if (!sub)
			continue; /* named twice */
		removed[nremoved++] = *sub;
		*sub = s->subs[--s->nsubs];
	}
	if (nremoved)
		send_control(s, json_pack("{s:o}", "stopped", id_list(removed, nremoved)));
	if (s->nsubs == 0)
		itr_http_stream_close(s->http); /* nothing left to send */
	itr_http_set_body(resp, 204, "text/plain", NULL, 0);
out:
	pthread_mutex_unlock(&u->lock);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void release(void *arg)
{
	struct itr_alto_updates *u = arg;
	itr_netmap_on_publish(NULL, NULL);
	if (u->thread_started) {
		pthread_mutex_lock(&u->lock);
		u->stopping = true;
		pthread_cond_signal(&u->wake);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	while (u->streams) {
		struct stream *s = u->streams;
		u->streams = s->next;
		stream_free(s);
	}
	for (int r = 0; r < ITR_ALTO_RES_COUNT; r++)
		version_clear(&u->current[r]);
	itr_netmap_unref(u->map);
	pthread_cond_destroy(&u->wake);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int itr_alto_updates_register(struct itr_http_server *srv, const struct itr_alto_config *cfg,
                              const struct itr_alto_updates_limits *limits)
{
	if (!srv || sodium_init() < 0)
		return -EINVAL;
	struct itr_alto_updates *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	if (limits)
		u->limits = *limits;
	if (!u->limits.max_streams)
		u->limits.max_streams = 64;
	if (!u->limits.max_substreams || u->limits.max_substreams > 16)
		u->limits.max_substreams = 8;
	if (!u->limits.max_pending)
		u->limits.max_pending = 64u << 20;
	if (!u->limits.heartbeat_ms)
		u->limits.heartbeat_ms = 15000;
	snprintf(u->base_uri, sizeof(u->base_uri), "%s", cfg && cfg->base_uri ? cfg->base_uri : "");
	snprintf(u->prefix, sizeof(u->prefix), "%s",
	         cfg && cfg->resource_prefix ? cfg->resource_prefix : "");
	u->cfg.base_uri = u->base_uri;
	u->cfg.resource_prefix = u->prefix;
	pthread_mutex_init(&u->lock, NULL);
	itr_cond_init_monotonic(&u->wake);

	/* From here on the server owns u: its release runs in itr_http_free. */
	int rc = itr_http_attach(srv, u, release);
	if (rc < 0) {
		release(u);
		return rc;
	}
	if (pthread_create(&u->thread, NULL, publisher, u) != 0)
		return -EAGAIN;
	u->thread_started = true;
	rc = itr_http_route(srv, NULL, "/alto/updates", handle_open, u);
	if (rc == 0)
		rc = itr_http_route(srv, NULL, "/alto/updates/control", handle_control, u);
	if (rc < 0)
		return rc;
	itr_netmap_on_publish(on_publish, u);
	return 0;
}
