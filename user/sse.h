/* sse.h - Server-Sent Events framing (the text/event-stream format of the
 * WHATWG HTML standard, which RFC 8895 ALTO update streams use): an encoder
 * for the server side and an incremental, size-bounded parser for the
 * follower side.
 */
#ifndef ITR_SSE_H
#define ITR_SSE_H

#include <stdbool.h>
#include <stddef.h>

/* Append one event ("event: TYPE", one "data:" line per line of data, a
 * blank line) to a malloc'ed buffer *buf of *len bytes. type must not hold
 * a line break. Returns 0, -EINVAL or -ENOMEM. */
int itr_sse_append(char **buf, size_t *len, const char *type, const char *data, size_t data_len);

/* Called for each complete event: type is "message" when the event named
 * none; data is NUL-terminated (data_len excludes the NUL). A non-zero
 * return stops the parser and is returned by itr_sse_feed. */
typedef int (*itr_sse_event_fn)(const char *type, const char *data, size_t data_len, void *arg);

struct itr_sse_parser {
	itr_sse_event_fn on_event;
	void *arg;
	size_t max_event; /* bytes of one event's data (and of one line) */
	/* private */
	char *line;
	size_t line_len, line_cap;
	char *data;
	size_t data_len, data_cap;
	char type[128];
	bool type_set;
	bool seen_line; /* a BOM is skipped only on the first line */
	bool last_cr;   /* the previous chunk ended in CR: a following LF is part of it */
};

void itr_sse_parser_init(struct itr_sse_parser *p, size_t max_event, itr_sse_event_fn fn,
                         void *arg);
/* Feed bytes as they arrive. Returns 0, the callback's non-zero value,
 * -E2BIG when a line or an event exceeds max_event, -ENOMEM. After an
 * error the parser must be reset (freed and initialised again). */
int itr_sse_feed(struct itr_sse_parser *p, const char *bytes, size_t len);
void itr_sse_parser_free(struct itr_sse_parser *p);

#endif
