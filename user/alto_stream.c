/* alto_stream.c - the client side of an RFC 8895 update stream (see
 * alto_stream.h): one entry per substream, holding its current resource.
 */
#include "alto_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alto.h"
#include "json_merge_patch.h"

#define ITR_ALTO_MT_JSON_PATCH "application/json-patch+json"

/* RFC 8895 5.2: a SubstreamID is a ResourceID-like string of at most 64
 * characters; one more for the NUL. */
#define SUBSTREAM_MAX 65
/* A server names the substreams; past this many, a stream is refused
 * rather than let it grow our memory without bound. */
#define SUBSTREAMS_MAX 256

struct substream {
	char id[SUBSTREAM_MAX];
	char media_type[128];
	json_t *resource;
	bool started, stopped;
};

struct itr_alto_stream {
	char control_uri[512];
	struct substream *subs;
	size_t n, cap;
};

struct itr_alto_stream *itr_alto_stream_new(void)
{
	return calloc(1, sizeof(struct itr_alto_stream));
}

void itr_alto_stream_free(struct itr_alto_stream *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		json_decref(s->subs[i].resource);
	free(s->subs);
	free(s);
}

static struct substream *find(const struct itr_alto_stream *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->subs[i].id, id) == 0)
			return &s->subs[i];
	return NULL;
}

/* The substream's entry, made if missing. NULL: id empty or too long, too
 * many substreams, or ENOMEM. */
static struct substream *entry(struct itr_alto_stream *s, const char *id, size_t id_len)
{
	if (id_len == 0 || id_len >= SUBSTREAM_MAX)
		return NULL;
	char key[SUBSTREAM_MAX];
	memcpy(key, id, id_len);
	key[id_len] = '\0';
	struct substream *sub = find(s, key);
	if (sub)
		return sub;
	if (s->n == SUBSTREAMS_MAX)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4;
		struct substream *grown = realloc(s->subs, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		s->subs = grown;
		s->cap = cap;
	}
	sub = &s->subs[s->n++];
	memset(sub, 0, sizeof(*sub));
	memcpy(sub->id, key, id_len + 1);
	return sub;
}

static void mark(struct itr_alto_stream *s, json_t *ids, bool started)
{
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		const char *text = json_string_value(id);
		struct substream *sub = text ? entry(s, text, strlen(text)) : NULL;
		if (sub) {
			sub->started = started;
			sub->stopped = !started;
		}
	}
}

static int control_event(struct itr_alto_stream *s, const char *data, size_t len, char *err,
                         size_t errlen)
{
	json_t *ctl = json_loadb(data, len, 0, NULL);
	if (!json_is_object(ctl)) {
		json_decref(ctl);
		snprintf(err, errlen, "control event is not a JSON object");
		return -1;
	}
	const char *uri = json_string_value(json_object_get(ctl, "control-uri"));
	if (uri)
		snprintf(s->control_uri, sizeof(s->control_uri), "%s", uri);
	mark(s, json_object_get(ctl, "started"), true);
	mark(s, json_object_get(ctl, "stopped"), false);
	json_decref(ctl);
	return 0;
}

int itr_alto_stream_event(struct itr_alto_stream *s, const char *type, const char *data, size_t len,
                          const char **changed, char *err, size_t errlen)
{
	if (changed)
		*changed = NULL;
	if (strcmp(type, ITR_ALTO_MT_UPDATESTREAMCONTROL) == 0)
		return control_event(s, data, len, err, errlen);
	/* "MEDIA-TYPE,SUBSTREAM-ID": a media type may hold commas in its
	 * parameters, a substream id may not, so the last comma splits. */
	const char *comma = strrchr(type, ',');
	if (!comma)
		return 0;
	size_t media_len = (size_t)(comma - type);
	struct substream *sub = entry(s, comma + 1, strlen(comma + 1));
	if (!sub) {
		snprintf(err, errlen, "event type '%.200s': bad substream id, or too many", type);
		return -1;
	}
	if (media_len == strlen(ITR_ALTO_MT_JSON_PATCH) &&
	    strncmp(type, ITR_ALTO_MT_JSON_PATCH, media_len) == 0) {
		snprintf(err, errlen, "%s: JSON patch (RFC 6902) is not supported", sub->id);
		return -1;
	}
	bool patch = media_len == strlen(ITR_ALTO_MT_MERGE_PATCH) &&
	             strncmp(type, ITR_ALTO_MT_MERGE_PATCH, media_len) == 0;
	if (!patch && media_len >= sizeof(sub->media_type)) {
		snprintf(err, errlen, "%s: media type too long", sub->id);
		return -1;
	}
	json_error_t jerr;
	json_t *value = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!value) {
		snprintf(err, errlen, "%s: %s event: JSON: %s", sub->id,
		         patch ? "patch" : "resource", jerr.text);
		return -1;
	}
	json_t *next = value;
	if (patch) {
		if (!sub->resource) {
			json_decref(value);
			snprintf(err, errlen, "%s: a patch came before the resource", sub->id);
			return -1;
		}
		/* patch a copy: a refused patch leaves the resource as it was */
		next = json_deep_copy(sub->resource);
		int rc = next ? itr_merge_patch_apply(&next, value) : -ENOMEM;
		json_decref(value);
		if (rc < 0) {
			json_decref(next);
			snprintf(err, errlen, "%s: patch: %s", sub->id, strerror(-rc));
			return -1;
		}
	} else {
		memcpy(sub->media_type, type, media_len);
		sub->media_type[media_len] = '\0';
	}
	json_decref(sub->resource);
	sub->resource = next;
	if (changed)
		*changed = sub->id;
	return 0;
}

json_t *itr_alto_stream_resource(const struct itr_alto_stream *s, const char *substream)
{
	const struct substream *sub = find(s, substream);
	return sub ? sub->resource : NULL;
}

const char *itr_alto_stream_media_type(const struct itr_alto_stream *s, const char *substream)
{
	const struct substream *sub = find(s, substream);
	return sub && sub->media_type[0] ? sub->media_type : NULL;
}

int itr_alto_stream_restore(struct itr_alto_stream *s, const char *substream, json_t *resource)
{
	struct substream *sub = entry(s, substream, strlen(substream));
	if (!sub)
		return -ENOMEM;
	json_incref(resource);
	json_decref(sub->resource);
	sub->resource = resource;
	return 0;
}

const char *itr_alto_stream_control_uri(const struct itr_alto_stream *s)
{
	return s->control_uri;
}

bool itr_alto_stream_started(const struct itr_alto_stream *s, const char *substream)
{
	const struct substream *sub = find(s, substream);
	return sub && sub->started;
}

bool itr_alto_stream_stopped(const struct itr_alto_stream *s, const char *substream)
{
	const struct substream *sub = find(s, substream);
	return sub && sub->stopped;
}

void itr_alto_stream_reset_control(struct itr_alto_stream *s)
{
	s->control_uri[0] = '\0';
	for (size_t i = 0; i < s->n; i++)
		s->subs[i].started = s->subs[i].stopped = false;
}
