/* json_text.h - text that goes into JSON replies must be valid UTF-8.
 *
 * Error messages echo what a client or a file sent (jansson's parse errors
 * quote the bytes near the fault), and fixed-size buffers cut messages
 * anywhere; either can leave a string that is not UTF-8, which jansson
 * refuses to encode. These helpers replace such bytes, so an error reply is
 * always built.
 */
#ifndef ITR_JSON_TEXT_H
#define ITR_JSON_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* Replace, in place, every byte of s that is not part of a well-formed UTF-8
 * sequence (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF,
 * no truncated sequence) with '?'. Returns how many bytes were replaced. */
size_t itr_utf8_scrub(char *s);

/* json_string(s), with the bytes itr_utf8_scrub would replace replaced;
 * NULL only without memory (or for s == NULL). */
json_t *itr_json_text(const char *s);

#endif
