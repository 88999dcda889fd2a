/* http_stream.h - long-lived HTTP response bodies (server-sent events):
 * a handler answers with a stream instead of a body, and other threads
 * write to the stream for as long as the client stays. The connection is
 * suspended while the stream has nothing to send, so an idle stream costs
 * no polling. Memory is bounded per stream: a client that reads slower
 * than the stream is written is cut off, not buffered for.
 */
#ifndef ITR_HTTP_STREAM_H
#define ITR_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>

struct itr_http_stream;
struct itr_http_response;

/* A new stream holding one reference for the caller. max_pending: most
 * bytes written but not yet taken by the connection. NULL on ENOMEM. */
struct itr_http_stream *itr_http_stream_new(size_t max_pending);
void itr_http_stream_ref(struct itr_http_stream *s);
void itr_http_stream_unref(struct itr_http_stream *s);

/* Append bytes. 0, or -EPIPE when the stream is closed (by either side),
 * or -ENOBUFS when the client has fallen max_pending behind: the stream is
 * then closed. */
int itr_http_stream_write(struct itr_http_stream *s, const char *bytes, size_t len);
/* End the stream once what is written has been sent. */
void itr_http_stream_close(struct itr_http_stream *s);
/* Whether the stream ended (closed, client gone, or cut off). */
bool itr_http_stream_closed(struct itr_http_stream *s);

/* Answer the request with the stream (takes a reference of its own). */
void itr_http_set_stream(struct itr_http_response *resp, int status, const char *content_type,
                         struct itr_http_stream *s);

/* ---- for http.c ---------------------------------------------------------- */
struct MHD_Connection;
/* Queue the stream as the connection's response; MHD's result. */
int itr_http_stream_queue(struct MHD_Connection *conn, int status, const char *content_type,
                          struct itr_http_stream *s);
/* Close every stream that has a connection, so that a stopping server has
 * no suspended connection left (MHD requires that). */
void itr_http_stream_close_all(void);
/* Streams that still have a connection. */
size_t itr_http_stream_live_count(void);

#endif
