/* http_lane.c - the reader and writer of the HTTP fast lane (see http.c for
 * why the lane exists). The reader is strict on purpose: it accepts only the
 * plain form of a closing GET and leaves every other request, valid or not,
 * to libmicrohttpd, whose answers (400, 414, keep-alive, bodies) stay the
 * only ones a client can get for them.
 */
#include "http_lane.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool token_char(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* The comma-separated tokens of a Connection value: close, keep-alive, or
 * something the lane does not handle (upgrade). */
static bool connection_tokens(const char *v, size_t len, bool *close, bool *keep_alive)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		size_t n = i - start;
		if (!n)
			continue;
		if (name_is(v + start, n, "close"))
			*close = true;
		else if (name_is(v + start, n, "keep-alive"))
			*keep_alive = true;
		else if (name_is(v + start, n, "upgrade"))
			return false;
	}
	return true;
}

bool itr_lane_parse(char *buf, size_t len, size_t max_target, struct itr_lane_request *out)
{
	memset(out, 0, sizeof(*out));
	char *end = buf + len;
	if (len < 4 || memcmp(buf, "GET ", 4) != 0)
		return false;
	char *target = buf + 4, *sp = target;
	while (sp<end && * sp> ' ' && *sp < 0x7f)
		sp++;
	size_t target_len = (size_t)(sp - target);
	if (!target_len || target[0] != '/' || sp >= end || *sp != ' ' ||
	    (max_target && target_len > max_target))
		return false;
	const char *version = sp + 1;
	if (end - version < 10 || memcmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1') || version[8] != '\r' || version[9] != '\n')
		return false;
	bool http11 = version[7] == '1';

	bool close = false, keep_alive = false;
	int hosts = 0;
	char *forwarded_for = NULL, *forwarded = NULL;
	char *cut[2] = {NULL, NULL}; /* where the two values end, cut last */
	char *line = sp + 11;
	for (;;) {
		if (end - line < 2)
			return false; /* the blank line has not come */
		if (line[0] == '\r' && line[1] == '\n')
			break;
		char *cr = memchr(line, '\r', (size_t)(end - line));
		if (!cr || cr + 1 >= end || cr[1] != '\n' ||
		    memchr(line, '\n', (size_t)(cr - line)))
			return false;
		char *colon = memchr(line, ':', (size_t)(cr - line));
		if (!colon || colon == line)
			return false;
		for (const char *p = line; p < colon; p++)
			if (!token_char(*p))
				return false;
		char *value = colon + 1, *value_end = cr;
		while (value < value_end && (*value == ' ' || *value == '\t'))
			value++;
		while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
			value_end--;
		for (const char *p = value; p < value_end; p++)
			if (((unsigned char)*p < ' ' && *p != '\t') || (unsigned char)*p >= 0x7f)
				return false;
		size_t name_len = (size_t)(colon - line);
		size_t value_len = (size_t)(value_end - value);
		if (name_is(line, name_len, "content-length") ||
		    name_is(line, name_len, "transfer-encoding") ||
		    name_is(line, name_len, "expect") || name_is(line, name_len, "upgrade"))
			return false;
		if (name_is(line, name_len, "host"))
			hosts++;
		if (name_is(line, name_len, "connection") &&
		    !connection_tokens(value, value_len, &close, &keep_alive))
			return false;
		if (name_is(line, name_len, "x-forwarded-for")) {
			if (forwarded_for)
				return false;
			forwarded_for = value;
			cut[0] = value_end;
		}
		if (name_is(line, name_len, "forwarded")) {
			if (forwarded)
				return false;
			forwarded = value;
			cut[1] = value_end;
		}
		line = cr + 2;
	}
	if (line + 2 != end) /* a body or a second request: not the lane's */
		return false;
	if (http11 ? !close || hosts != 1 : keep_alive || hosts > 1)
		return false;

	/* cut the strings in place; each cut lands on a byte already read */
	for (int i = 0; i < 2; i++)
		if (cut[i])
			*cut[i] = '\0';
	*sp = '\0';
	char *q = memchr(target, '?', target_len);
	if (q) {
		*q = '\0';
		out->query = q + 1;
	} else {
		out->query = sp;
	}
	out->path = target;
	out->forwarded_for = forwarded_for;
	out->forwarded = forwarded;
	return true;
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

size_t itr_lane_head(char *out, size_t cap, int status, const char *content_type, size_t body_len)
{
	int n = snprintf(out, cap,
	                 "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: %zu\r\n"
	                 "%s%s%s%s\r\n",
	                 status, reason_of(status), body_len, content_type ? "Content-Type: " : "",
	                 content_type ? content_type : "", content_type ? "\r\n" : "",
	                 status == 503 ? "Retry-After: 1\r\n" : "");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
