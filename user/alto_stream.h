/* alto_stream.h - the client side of an ALTO update stream (RFC 8895): the
 * resources a stream carries, rebuilt event by event.
 *
 * Each data update event is typed "MEDIA-TYPE,SUBSTREAM-ID" (RFC 8895
 * 5.2): a resource's own media type replaces that substream's resource
 * whole, application/merge-patch+json patches it (RFC 7396). Control
 * events (application/alto-updatestreamcontrol+json, 5.3) carry the
 * control URI and the substreams the server started or stopped.
 * application/json-patch+json (RFC 6902) is refused: our IRD and our
 * follower ask for merge patches only.
 *
 * itrackerd's map follower (map_follow.c) replays its primary's stream
 * with this; the RFC's own examples are replayed by
 * tests/unit/test_alto_updates.c.
 */
#ifndef ITR_ALTO_STREAM_H
#define ITR_ALTO_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct itr_alto_stream;

struct itr_alto_stream *itr_alto_stream_new(void);
void itr_alto_stream_free(struct itr_alto_stream *s);

/* Apply one event (type and data as the SSE parser hands them). *changed
 * (may be NULL) gets the substream whose resource the event replaced or
 * patched, else NULL; valid until the next call. Events that name no
 * substream ("message") are ignored. 0, or -1 with err
 * saying why: not JSON, a patch before any resource, JSON patch. On error
 * the substream keeps the resource it had. */
int itr_alto_stream_event(struct itr_alto_stream *s, const char *type, const char *data, size_t len,
                          const char **changed, char *err, size_t errlen);

/* The substream's resource (borrowed), NULL if none came yet. */
json_t *itr_alto_stream_resource(const struct itr_alto_stream *s, const char *substream);
/* The media type of its last full replacement, NULL if none. */
const char *itr_alto_stream_media_type(const struct itr_alto_stream *s, const char *substream);
/* Put back a resource the caller kept (a new reference is taken), e.g. the
 * last one it could use when a patch made one it cannot. 0 or -ENOMEM. */
int itr_alto_stream_restore(struct itr_alto_stream *s, const char *substream, json_t *resource);

/* From control events: the control URI ("" before any), and whether the
 * server said it started / stopped a substream (the later of the two
 * wins). */
const char *itr_alto_stream_control_uri(const struct itr_alto_stream *s);
bool itr_alto_stream_started(const struct itr_alto_stream *s, const char *substream);
bool itr_alto_stream_stopped(const struct itr_alto_stream *s, const char *substream);
/* Forget the stopped/started marks (a new subscription on a new stream). */
void itr_alto_stream_reset_control(struct itr_alto_stream *s);

#endif
