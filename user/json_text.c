/* json_text.c - UTF-8 scrubbing for text placed in JSON replies (see
 * json_text.h for why). */
#include "json_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (RFC 3629, table 3-7 of
 * Unicode), or 0 if the bytes there do not form one. */
static size_t utf8_sequence_length(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf) /* a NUL ends the check here too */
			return 0;
	return n;
}

size_t itr_utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t replaced = 0;

	while (*p) {
		size_t n = utf8_sequence_length(p);
		if (n == 0) {
			*p++ = '?';
			replaced++;
		} else {
			p += n;
		}
	}
	return replaced;
}

json_t *itr_json_text(const char *s)
{
	if (!s)
		return NULL;
	json_t *v = json_string(s);
	if (v)
		return v;
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	itr_utf8_scrub(copy);
	v = json_string(copy);
	free(copy);
	return v;
}
