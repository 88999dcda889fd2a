/* sse.c - text/event-stream encoder and incremental parser (see sse.h).
 * The parser follows the WHATWG "event stream interpretation" rules: CR,
 * LF and CRLF end lines; ':' starts a comment; one space after the colon
 * is dropped; data lines join with LF; a blank line dispatches; an event
 * with no data is not dispatched. id and retry are accepted and ignored:
 * RFC 8895 streams do not resume from an id.
 */
#include "sse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	char *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (grow(buf, cap, *len + n + 1) < 0)
		return -ENOMEM;
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

int itr_sse_append(char **buf, size_t *len, const char *type, const char *data, size_t data_len)
{
	if (!type || strpbrk(type, "\r\n"))
		return -EINVAL;
	size_t cap = *buf ? *len + 1 : 0; /* grow() reallocates as needed */
	int rc = put(buf, len, &cap, "event: ", 7);
	rc = rc ? rc : put(buf, len, &cap, type, strlen(type));
	rc = rc ? rc : put(buf, len, &cap, "\n", 1);
	/* one "data:" line per line of data; a trailing line break leaves an
	 * empty last line, which the parser turns back into that break */
	size_t start = 0;
	for (;;) {
		if (rc)
			return rc;
		size_t end = start;
		while (end < data_len && data[end] != '\n' && data[end] != '\r')
			end++;
		rc = put(buf, len, &cap, "data: ", 6);
		rc = rc ? rc : put(buf, len, &cap, data + start, end - start);
		rc = rc ? rc : put(buf, len, &cap, "\n", 1);
		if (end >= data_len)
			break;
		start = end + 1;
		if (data[end] == '\r' && start < data_len && data[start] == '\n')
			start++;
	}
	return rc ? rc : put(buf, len, &cap, "\n", 1);
}

void itr_sse_parser_init(struct itr_sse_parser *p, size_t max_event, itr_sse_event_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->max_event = max_event ? max_event : 1 << 20;
	p->on_event = fn;
	p->arg = arg;
}

void itr_sse_parser_free(struct itr_sse_parser *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

static int dispatch(struct itr_sse_parser *p)
{
	int rc = 0;
	if (p->data_len > 0) {
		p->data_len--; /* the LF after the last data line */
		p->data[p->data_len] = '\0';
		rc = p->on_event(p->type_set ? p->type : "message", p->data, p->data_len, p->arg);
	}
	p->data_len = 0;
	p->type_set = false;
	return rc;
}

static int process_line(struct itr_sse_parser *p, const char *line, size_t len)
{
	if (!p->seen_line) { /* a UTF-8 BOM may open the stream, however it was chunked */
		p->seen_line = true;
		if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
			line += 3;
			len -= 3;
		}
	}
	if (len == 0)
		return dispatch(p);
	if (line[0] == ':')
		return 0;
	const char *colon = memchr(line, ':', len);
	size_t name_len = colon ? (size_t)(colon - line) : len;
	const char *value = colon ? colon + 1 : line + len;
	size_t value_len = len - (size_t)(value - line);
	if (value_len > 0 && value[0] == ' ') {
		value++;
		value_len--;
	}
	if (name_len == 5 && memcmp(line, "event", 5) == 0) {
		if (value_len >= sizeof(p->type))
			return -E2BIG;
		memcpy(p->type, value, value_len);
		p->type[value_len] = '\0';
		p->type_set = true;
	} else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
		if (p->data_len + value_len + 1 > p->max_event)
			return -E2BIG;
		if (put(&p->data, &p->data_len, &p->data_cap, value, value_len) < 0 ||
		    put(&p->data, &p->data_len, &p->data_cap, "\n", 1) < 0)
			return -ENOMEM;
	}
	return 0; /* id, retry and unknown fields are ignored */
}

int itr_sse_feed(struct itr_sse_parser *p, const char *bytes, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = bytes[i];
		if (p->last_cr) {
			p->last_cr = false;
			if (c == '\n')
				continue; /* second half of a CRLF */
		}
		if (c == '\r' || c == '\n') {
			p->last_cr = c == '\r';
			int rc = process_line(p, p->line ? p->line : "", p->line_len);
			p->line_len = 0;
			if (rc)
				return rc;
			continue;
		}
		if (p->line_len + 1 > p->max_event)
			return -E2BIG;
		if (grow(&p->line, &p->line_cap, p->line_len + 2) < 0)
			return -ENOMEM;
		p->line[p->line_len++] = c;
	}
	return 0;
}
