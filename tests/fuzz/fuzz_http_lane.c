/* fuzz_http_lane.c - libFuzzer harness over the HTTP fast lane's request
 * reader (user/http_lane.c). Whatever the bytes, the reader stays inside
 * them; when it takes a request, the strings it hands out lie inside the
 * buffer, are NUL-terminated there, hold no control characters, and the
 * path starts with '/' and is no longer than the target limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_lane.h"

static void inside(const char *s, const char *buf, size_t len)
{
	if (!s)
		return;
	if (s < buf || s >= buf + len + 1)
		abort();
	for (const char *p = s; *p; p++) {
		if (p >= buf + len || ((unsigned char)*p < ' ' && *p != '\t'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t max_target = 256;
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 'Z'; /* the reader must not look here */
	struct itr_lane_request r;
	if (itr_lane_parse(buf, size, max_target, &r)) {
		inside(r.path, buf, size);
		inside(r.query, buf, size);
		inside(r.forwarded_for, buf, size);
		inside(r.forwarded, buf, size);
		if (r.path[0] != '/' || strlen(r.path) > max_target)
			abort();
	}
	char head[128];
	(void)itr_lane_head(head, size % sizeof(head), (int)(size % 600), size & 1 ? "t/p" : NULL,
	                    size);
	free(buf);
	return 0;
}
