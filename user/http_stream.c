/* http_stream.c - streamed HTTP bodies on libmicrohttpd with
 * suspend/resume (see http_stream.h). MHD pulls bytes through a content
 * reader; when there are none, the reader suspends the connection and the
 * next write resumes it. Every stream that has a connection is on a list,
 * so the server can end them all before it stops.
 */
#include "http_stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#include "http.h"

struct itr_http_stream {
	pthread_mutex_t lock;
	unsigned refs;
	char *buf; /* pending bytes: buf[head .. len) */
	size_t head, len, cap, max_pending;
	bool closed;    /* no more writes; end once drained */
	bool suspended; /* the connection waits for a write */
	struct MHD_Connection *conn;
	struct itr_http_stream *prev, *next; /* live list, while conn is set */
};

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct itr_http_stream *live;

struct itr_http_stream *itr_http_stream_new(size_t max_pending)
{
	struct itr_http_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->refs = 1;
	s->max_pending = max_pending ? max_pending : 1 << 20;
	return s;
}

void itr_http_stream_ref(struct itr_http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->refs++;
	pthread_mutex_unlock(&s->lock);
}

void itr_http_stream_unref(struct itr_http_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	unsigned left = --s->refs;
	pthread_mutex_unlock(&s->lock);
	if (left)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->buf);
	free(s);
}

/* Called with s->lock held. */
static void wake(struct itr_http_stream *s)
{
	if (s->suspended && s->conn) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

int itr_http_stream_write(struct itr_http_stream *s, const char *bytes, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		rc = -EPIPE;
	} else if (s->len - s->head + len > s->max_pending) {
		s->closed = true; /* a slow reader is cut off, not buffered for */
		s->head = s->len = 0;
		rc = -ENOBUFS;
	} else {
		if (s->head > 0 && s->len + len > s->cap) { /* reuse the consumed front */
			memmove(s->buf, s->buf + s->head, s->len - s->head);
			s->len -= s->head;
			s->head = 0;
		}
		if (s->len + len > s->cap) {
			size_t cap = s->cap ? s->cap : 4096;
			while (cap < s->len + len)
				cap *= 2;
			char *b = realloc(s->buf, cap);
			if (!b) {
				pthread_mutex_unlock(&s->lock);
				return -ENOMEM;
			}
			s->buf = b;
			s->cap = cap;
		}
		memcpy(s->buf + s->len, bytes, len);
		s->len += len;
	}
	wake(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void itr_http_stream_close(struct itr_http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	wake(s);
	pthread_mutex_unlock(&s->lock);
}

bool itr_http_stream_closed(struct itr_http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	bool closed = s->closed;
	pthread_mutex_unlock(&s->lock);
	return closed;
}

void itr_http_set_stream(struct itr_http_response *resp, int status, const char *content_type,
                         struct itr_http_stream *s)
{
	itr_http_stream_ref(s);
	resp->status = status;
	resp->content_type = content_type;
	resp->stream = s;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	struct itr_http_stream *s = cls;
	ssize_t n;
	pthread_mutex_lock(&s->lock);
	if (s->len > s->head) {
		size_t avail = s->len - s->head;
		n = (ssize_t)(avail < max ? avail : max);
		memcpy(out, s->buf + s->head, (size_t)n);
		s->head += (size_t)n;
		if (s->head == s->len)
			s->head = s->len = 0;
	} else if (s->closed) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/* Nothing to send: leave MHD's event loop until a write. */
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		n = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void release_stream(void *cls)
{
	struct itr_http_stream *s = cls;
	pthread_mutex_lock(&live_lock);
	if (s->prev)
		s->prev->next = s->next;
	else if (live == s)
		live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	pthread_mutex_unlock(&live_lock);
	pthread_mutex_lock(&s->lock);
	s->closed = true; /* the client is gone: writers stop */
	s->conn = NULL;
	s->suspended = false;
	pthread_mutex_unlock(&s->lock);
	itr_http_stream_unref(s);
}

int itr_http_stream_queue(struct MHD_Connection *conn, int status, const char *content_type,
                          struct itr_http_stream *s)
{
	struct MHD_Response *r =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_stream, s,
	                                      release_stream); /* owns the handler's reference */
	if (!r) {
		itr_http_stream_unref(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	pthread_mutex_lock(&s->lock);
	s->conn = conn;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&live_lock);
	s->next = live;
	if (live)
		live->prev = s;
	live = s;
	pthread_mutex_unlock(&live_lock);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

void itr_http_stream_close_all(void)
{
	pthread_mutex_lock(&live_lock);
	for (struct itr_http_stream *s = live; s; s = s->next)
		itr_http_stream_close(s);
	pthread_mutex_unlock(&live_lock);
}

size_t itr_http_stream_live_count(void)
{
	size_t n = 0;
	pthread_mutex_lock(&live_lock);
	for (struct itr_http_stream *s = live; s; s = s->next)
		n++;
	pthread_mutex_unlock(&live_lock);
	return n;
}
