/* map_follow.c - the ALTO update stream follower (see map_follow.h): the
 * event state machine, the IRD discovery and the reconnecting thread.
 */
#include "map_follow.h"
#include "clock.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alto.h"
#include "alto_stream.h"
#include "http_client.h"
#include "json_merge_patch.h"
#include "netmap.h"
#include "sse.h"

#define MAX_DOC (64u << 20) /* the largest document (or event) accepted */

/* ---- state machine -------------------------------------------------------- */

int itr_map_follow_state_init(struct itr_map_follow_state *st, const char *substream)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->substream, sizeof(st->substream), "%s", substream);
	st->stream = itr_alto_stream_new();
	return st->stream ? 0 : -ENOMEM;
}

void itr_map_follow_state_free(struct itr_map_follow_state *st)
{
	itr_alto_stream_free(st->stream);
	st->stream = NULL;
}

/* The itracker map document we hold, NULL before the first. */
static json_t *current_document(const struct itr_map_follow_state *st)
{
	return st->stream ? itr_alto_stream_resource(st->stream, st->substream) : NULL;
}

/* "media-type,substream" names one of ours: the media type, else NULL. */
static bool event_for(const struct itr_map_follow_state *st, const char *type, const char *media)
{
	size_t n = strlen(media);
	return strncmp(type, media, n) == 0 && type[n] == ',' &&
	       strcmp(type + n + 1, st->substream) == 0;
}

static int build_map(json_t *doc, struct itr_netmap **out, char *err, size_t errlen)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct itr_netmap_error nerr;
	*out = itr_netmap_parse_alto(text, strlen(text), "update stream", &nerr);
	free(text);
	if (!*out) {
		char why[600];
		itr_netmap_error_format(&nerr, why, sizeof(why));
		snprintf(err, errlen, "the primary's map is not valid here: %s", why);
		return -1;
	}
	return 0;
}

int itr_map_follow_event(struct itr_map_follow_state *st, const char *type, const char *data,
                         size_t len, struct itr_netmap **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!st->stream) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	bool control = strcmp(type, ITR_ALTO_MT_UPDATESTREAMCONTROL) == 0;
	/* only our substream's document and its patches: other substreams'
	 * resources are not kept */
	if (!control && !event_for(st, type, ITR_ALTO_MT_ITRACKER_MAP) &&
	    !event_for(st, type, ITR_ALTO_MT_MERGE_PATCH))
		return 0;
	json_t *prev = json_incref(current_document(st));
	const char *changed = NULL;
	int rc = itr_alto_stream_event(st->stream, type, data, len, &changed, err, errlen);
	if (control) {
		snprintf(st->control_uri, sizeof(st->control_uri), "%s",
		         itr_alto_stream_control_uri(st->stream));
		st->stopped = itr_alto_stream_stopped(st->stream, st->substream);
	}
	if (rc == 0 && changed && build_map(current_document(st), out, err, errlen) < 0) {
		/* keep the last good document: the next full one repairs it */
		itr_alto_stream_restore(st->stream, st->substream, prev);
		rc = -1;
	}
	json_decref(prev);
	return rc;
}

/* ---- the thread ------------------------------------------------------------- */

struct itr_map_follower {
	struct itr_map_follow_config cfg;
	char url[1024];
	struct itr_http_url ird;
	itr_map_follow_install_fn install; /* NULL: keep the newest in `kept` */
	void *arg;
	struct itr_netmap *kept;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	volatile bool stop; /* read by the stream reader between reads */
	volatile bool reconnect;
	bool have_first;
	unsigned versions;
	char last_error[512];
	char last_logged[512];
	struct itr_map_follow_state st;
	struct itr_sse_parser sse;
	int event_rc;
};

static void set_error(struct itr_map_follower *f, const char *what, const char *detail)
{
	pthread_mutex_lock(&f->lock);
	snprintf(f->last_error, sizeof(f->last_error), "%s%.400s", what, detail);
	pthread_mutex_unlock(&f->lock);
}

/* GET the IRD; find the update stream that carries an itracker map. */
static int discover(struct itr_map_follower *f, struct itr_http_url *stream_url, char *rid,
                    size_t ridlen)
{
	struct itr_http_client_request req = {.method = "GET",
	                                      .host = f->ird.authority,
	                                      .target = f->ird.path[0] ? f->ird.path : "/",
	                                      .user_agent = "itrackerd-follower",
	                                      .accept = ITR_ALTO_MT_DIRECTORY};
	struct itr_http_client_response resp = {0};
	char err[256];
	if (itr_http_client_exchange_host(f->ird.host, f->ird.port, &req, NULL, &resp, err,
	                                  sizeof(err)) != ITR_HTTP_CLIENT_OK) {
		set_error(f, "IRD: ", err);
		return -1;
	}
	int rc = -1;
	json_t *ird = resp.status == 200 ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	json_t *resources = json_object_get(ird, "resources");
	const char *id, *stream_uri = NULL;
	json_t *entry;
	rid[0] = '\0';
	json_object_foreach(resources, id, entry)
	{
		if (strcmp(json_string_value(json_object_get(entry, "media-type")) ?: "",
		           ITR_ALTO_MT_EVENT_STREAM) != 0)
			continue;
		size_t i;
		json_t *used;
		json_array_foreach(json_object_get(entry, "uses"), i, used)
		{
			json_t *target = json_object_get(resources, json_string_value(used) ?: "");
			const char *media =
			    json_string_value(json_object_get(target, "media-type"));
			if (media && strcmp(media, ITR_ALTO_MT_ITRACKER_MAP) == 0) {
				snprintf(rid, ridlen, "%s", json_string_value(used));
				stream_uri = json_string_value(json_object_get(entry, "uri"));
			}
		}
	}
	if (!stream_uri) {
		set_error(f, "the IRD names no update stream carrying an itracker map", "");
		goto out;
	}
	/* a relative URI (the usual) is on the IRD's server */
	char parse_err[128];
	if (stream_uri[0] == '/') {
		*stream_url = f->ird;
		snprintf(stream_url->path, sizeof(stream_url->path), "%s", stream_uri);
	} else if (itr_http_url_parse(stream_uri, "80", stream_url, parse_err, sizeof(parse_err)) <
	           0) {
		set_error(f, "update stream URI: ", parse_err);
		goto out;
	}
	rc = 0;
out:
	json_decref(ird);
	free(resp.body);
	return rc;
}

static int on_sse_event(const char *type, const char *data, size_t len, void *arg)
{
	struct itr_map_follower *f = arg;
	struct itr_netmap *map = NULL;
	char err[700];
	if (itr_map_follow_event(&f->st, type, data, len, &map, err, sizeof(err)) < 0) {
		set_error(f, "", err);
		fprintf(stderr, "itrackerd: map-from %s: %s\n", f->url, err);
		return 0; /* keep the stream: the next full document may repair it */
	}
	if (map) {
		/* the lock orders this against set_install: no version is lost
		 * or installed twice */
		pthread_mutex_lock(&f->lock);
		if (f->install) {
			f->install(f->arg, map);
		} else {
			itr_netmap_unref(f->kept);
			f->kept = map;
		}
		f->versions++;
		f->have_first = true;
		f->last_error[0] = '\0';
		f->last_logged[0] = '\0';
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
	}
	return f->st.stopped ? 1 : 0;
}

static int on_body(const char *bytes, size_t len, void *arg)
{
	struct itr_map_follower *f = arg;
	if (f->stop || f->reconnect)
		return 1;
	if (len == 0)
		return 0;
	int rc = itr_sse_feed(&f->sse, bytes, len);
	if (rc < 0)
		set_error(f, "event stream: ", rc == -E2BIG ? "event too large" : "broken");
	return rc != 0;
}

/* One subscription, until it breaks. */
static void follow_once(struct itr_map_follower *f)
{
	struct itr_http_url stream_url;
	char rid[2 * 64 + 2], body[512], err[256];
	if (discover(f, &stream_url, rid, sizeof(rid)) < 0)
		return;
	const char *tag = NULL;
	json_t *doc = current_document(&f->st);
	if (doc)
		tag = json_string_value(json_object_get(
		    json_object_get(json_object_get(json_object_get(doc, "network-map"), "meta"),
		                    "vtag"),
		    "tag"));
	json_t *add = json_pack("{s:{s:{s:s, s:b}}}", "add", f->st.substream, "resource-id", rid,
	                        "incremental-changes", 1);
	if (add && tag) /* what we hold needs no second copy */
		json_object_set_new(json_object_get(json_object_get(add, "add"), f->st.substream),
		                    "tag", json_string(tag));
	char *text = add ? json_dumps(add, JSON_COMPACT) : NULL;
	json_decref(add);
	if (!text)
		return;
	snprintf(body, sizeof(body), "%s", text);
	free(text);
	struct itr_http_client_request req = {.method = "POST",
	                                      .host = stream_url.authority,
	                                      .target = stream_url.path,
	                                      .user_agent = "itrackerd-follower",
	                                      .accept =
	                                          ITR_ALTO_MT_EVENT_STREAM "," ITR_ALTO_MT_ERROR,
	                                      .content_type = ITR_ALTO_MT_UPDATESTREAMPARAMS,
	                                      .body = body,
	                                      .body_len = strlen(body)};
	f->st.stopped = false;
	itr_alto_stream_reset_control(f->st.stream);
	itr_sse_parser_free(&f->sse);
	itr_sse_parser_init(&f->sse, MAX_DOC, on_sse_event, f);
	int status = 0;
	int rc = itr_http_client_stream_host(stream_url.host, stream_url.port, &req, 5000,
	                                     f->cfg.idle_ms, &status, on_body, f, err, sizeof(err));
	if (f->stop || f->reconnect)
		return; /* we ended it */
	if (rc != ITR_HTTP_CLIENT_OK)
		set_error(f, "update stream: ", err);
	else if (status != 200) {
		char st[48];
		snprintf(st, sizeof(st), "HTTP status %d%s", status,
		         status == 503 ? " (no map yet)" : "");
		set_error(f, "update stream: ", st);
	}
}

static void *follower_main(void *arg)
{
	struct itr_map_follower *f = arg;
	unsigned backoff = 100;
	while (!f->stop) {
		f->reconnect = false;
		unsigned before = f->versions;
		follow_once(f);
		if (f->stop)
			break;
		if (f->versions != before)
			backoff = 100; /* it worked for a while: retry soon */
		pthread_mutex_lock(&f->lock);
		/* say each failure once, not once per retry */
		if (f->last_error[0] && strcmp(f->last_error, f->last_logged) != 0) {
			fprintf(stderr,
			        "itrackerd: map-from %s: %s; retrying (every %u ms at most)\n",
			        f->url, f->last_error, f->cfg.backoff_max_ms);
			snprintf(f->last_logged, sizeof(f->last_logged), "%s", f->last_error);
		}
		struct timespec until = itr_deadline_ms(backoff);
		while (!f->stop && !f->reconnect &&
		       pthread_cond_timedwait(&f->cond, &f->lock, &until) == 0) {
		}
		pthread_mutex_unlock(&f->lock);
		backoff = backoff * 2 > f->cfg.backoff_max_ms ? f->cfg.backoff_max_ms : backoff * 2;
	}
	return NULL;
}

struct itr_map_follower *itr_map_follow_start(const struct itr_map_follow_config *cfg, char *err,
                                              size_t errlen)
{
	struct itr_map_follower *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->cfg = *cfg;
	if (!f->cfg.idle_ms)
		f->cfg.idle_ms = 45000;
	if (!f->cfg.backoff_max_ms)
		f->cfg.backoff_max_ms = 5000;
	snprintf(f->url, sizeof(f->url), "%s", cfg->url ? cfg->url : "");
	char why[128];
	if (itr_http_url_parse(f->url, "80", &f->ird, why, sizeof(why)) < 0 ||
	    (f->ird.scheme[0] && strcmp(f->ird.scheme, "http") != 0)) {
		snprintf(err, errlen, "--map-from '%s': %s", f->url,
		         f->ird.scheme[0] && strcmp(f->ird.scheme, "http") != 0
		             ? "only http:// URLs"
		             : why);
		free(f);
		return NULL;
	}
	if (itr_map_follow_state_init(&f->st, "itrackerd") < 0) {
		snprintf(err, errlen, "out of memory");
		free(f);
		return NULL;
	}
	itr_sse_parser_init(&f->sse, MAX_DOC, on_sse_event, f);
	pthread_mutex_init(&f->lock, NULL);
	itr_cond_init_monotonic(&f->cond);
	if (pthread_create(&f->thread, NULL, follower_main, f) != 0) {
		snprintf(err, errlen, "cannot start the follower thread");
		itr_map_follow_state_free(&f->st);
		free(f);
		return NULL;
	}
	return f;
}

struct itr_netmap *itr_map_follow_first(struct itr_map_follower *f, unsigned timeout_ms, char *err,
                                        size_t errlen)
{
	struct timespec until = itr_deadline_ms(timeout_ms);
	pthread_mutex_lock(&f->lock);
	while (!f->have_first && pthread_cond_timedwait(&f->cond, &f->lock, &until) == 0) {
	}
	struct itr_netmap *map = f->kept;
	f->kept = NULL;
	if (!map)
		snprintf(err, errlen, "no map from %s within %u s: %s", f->url, timeout_ms / 1000,
		         f->last_error[0] ? f->last_error : "no answer");
	pthread_mutex_unlock(&f->lock);
	return map;
}

void itr_map_follow_set_install(struct itr_map_follower *f, itr_map_follow_install_fn install,
                                void *arg)
{
	pthread_mutex_lock(&f->lock);
	f->install = install;
	f->arg = arg;
	if (f->kept && install) {
		install(arg, f->kept);
		f->kept = NULL;
	}
	pthread_mutex_unlock(&f->lock);
}

void itr_map_follow_reconnect(struct itr_map_follower *f)
{
	pthread_mutex_lock(&f->lock);
	f->reconnect = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

void itr_map_follow_stop(struct itr_map_follower *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	itr_sse_parser_free(&f->sse);
	itr_map_follow_state_free(&f->st);
	itr_netmap_unref(f->kept);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
