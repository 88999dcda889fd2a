/* bencode.h - bencoding (BEP 3): a growable writer for tracker responses and
 * a bounded, allocation-free reader used to check and pick apart encoded
 * values (tests, proxy replies).
 */
#ifndef ITR_BENCODE_H
#define ITR_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writer ------------------------------------------------------------ */

/* The writer never fails midway: an allocation failure sets oom and later
 * calls do nothing, so callers check once, at itr_benc_finish. Dictionary
 * keys must be written in sorted order by the caller (BEP 3). */
struct itr_benc {
	char *buf;
	size_t len;
	size_t cap;
	bool oom;
};

void itr_benc_init(struct itr_benc *b);
void itr_benc_reserve(struct itr_benc *b, size_t extra);
void itr_benc_dict(struct itr_benc *b);
void itr_benc_list(struct itr_benc *b);
void itr_benc_end(struct itr_benc *b);
void itr_benc_int(struct itr_benc *b, int64_t value);
void itr_benc_str(struct itr_benc *b, const void *data, size_t len);
void itr_benc_cstr(struct itr_benc *b, const char *s);
/* Raw bytes appended as they are (no length prefix). */
void itr_benc_raw(struct itr_benc *b, const void *data, size_t len);
/* key + integer / key + string, the common dictionary entries. */
void itr_benc_key_int(struct itr_benc *b, const char *key, int64_t value);
void itr_benc_key_str(struct itr_benc *b, const char *key, const void *data, size_t len);
/* Hands the buffer over (caller frees) and resets b; -1 if out of memory. */
int itr_benc_finish(struct itr_benc *b, char **out, size_t *len);
void itr_benc_free(struct itr_benc *b);

/* A whole failure response: d14:failure reason<len>:<reason>e. */
int itr_benc_failure(const char *reason, char **out, size_t *len);

/* ---- reader ------------------------------------------------------------ */

enum itr_bval_type {
	ITR_BVAL_INT = 'i',
	ITR_BVAL_STR = 's',
	ITR_BVAL_LIST = 'l',
	ITR_BVAL_DICT = 'd',
};

/* A view into an encoded buffer: for strings data/len are the bytes, for
 * lists and dictionaries they span the whole encoding (from 'l'/'d' to 'e'). */
struct itr_bval {
	enum itr_bval_type type;
	const uint8_t *data;
	size_t len;
	int64_t num; /* ITR_BVAL_INT */
};

#define ITR_BENC_MAX_DEPTH 32

/* Parse one value at buf; returns bytes consumed or -1 if malformed
 * (including leading zeros, "-0", unsorted or duplicate dict keys,
 * nesting deeper than ITR_BENC_MAX_DEPTH). */
long itr_bdec(const uint8_t *buf, size_t len, struct itr_bval *out);
/* Whole-buffer check: exactly one valid value and nothing after it. */
bool itr_bdec_valid(const uint8_t *buf, size_t len);
/* Look key up in a dictionary value; 0 found, -1 not. */
int itr_bdec_dict_get(const struct itr_bval *dict, const char *key, struct itr_bval *out);
/* Iterate a list: *pos starts at 0; returns 1 with the next item, 0 at end. */
int itr_bdec_list_next(const struct itr_bval *list, size_t *pos, struct itr_bval *out);
/* Iterate a dictionary the same way (key is a string view). */
int itr_bdec_dict_next(const struct itr_bval *dict, size_t *pos, struct itr_bval *key,
                       struct itr_bval *value);

#endif
