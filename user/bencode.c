/* bencode.c - bencoding writer and reader (BEP 3).
 *
 * The writer is what every tracker response goes through; the reader is
 * strict (canonical integers, sorted unique keys, bounded depth) because it
 * also reads input we did not produce.
 */
#include "bencode.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ------------------------------------------------------------ */

void itr_benc_init(struct itr_benc *b)
{
	b->buf = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void itr_benc_reserve(struct itr_benc *b, size_t extra)
{
	if (b->oom || b->cap - b->len >= extra)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	char *grown = realloc(b->buf, cap);
	if (!grown) {
		b->oom = true;
		return;
	}
	b->buf = grown;
	b->cap = cap;
}

void itr_benc_raw(struct itr_benc *b, const void *data, size_t len)
{
	itr_benc_reserve(b, len);
	if (b->oom || len == 0)
		return;
	memcpy(b->buf + b->len, data, len);
	b->len += len;
}

static void put_char(struct itr_benc *b, char c)
{
	itr_benc_raw(b, &c, 1);
}

void itr_benc_dict(struct itr_benc *b)
{
	put_char(b, 'd');
}

void itr_benc_list(struct itr_benc *b)
{
	put_char(b, 'l');
}

void itr_benc_end(struct itr_benc *b)
{
	put_char(b, 'e');
}

/* Decimal digits of v ending at end; returns where they start. (snprintf
 * was a tenth of an HTTP announce's instructions under callgrind.) */
static char *decimal(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

void itr_benc_int(struct itr_benc *b, int64_t value)
{
	char tmp[32];
	char *end = tmp + sizeof(tmp);
	*--end = 'e';
	/* the magnitude as unsigned: INT64_MIN has no positive int64_t */
	uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
	char *p = decimal(end, mag);
	if (value < 0)
		*--p = '-';
	*--p = 'i';
	itr_benc_raw(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void itr_benc_str(struct itr_benc *b, const void *data, size_t len)
{
	char tmp[32];
	char *end = tmp + sizeof(tmp);
	*--end = ':';
	char *p = decimal(end, len);
	size_t n = (size_t)(tmp + sizeof(tmp) - p);
	itr_benc_reserve(b, n + len);
	itr_benc_raw(b, p, n);
	itr_benc_raw(b, data, len);
}

void itr_benc_cstr(struct itr_benc *b, const char *s)
{
	itr_benc_str(b, s, strlen(s));
}

void itr_benc_key_int(struct itr_benc *b, const char *key, int64_t value)
{
	itr_benc_cstr(b, key);
	itr_benc_int(b, value);
}

void itr_benc_key_str(struct itr_benc *b, const char *key, const void *data, size_t len)
{
	itr_benc_cstr(b, key);
	itr_benc_str(b, data, len);
}

int itr_benc_finish(struct itr_benc *b, char **out, size_t *len)
{
	if (b->oom) {
		itr_benc_free(b);
		return -1;
	}
	if (!b->buf) /* an empty writer still hands back a valid buffer */
		itr_benc_reserve(b, 1);
	if (b->oom)
		return -1;
	*out = b->buf;
	*len = b->len;
	itr_benc_init(b);
	return 0;
}

void itr_benc_free(struct itr_benc *b)
{
	free(b->buf);
	itr_benc_init(b);
}

int itr_benc_failure(const char *reason, char **out, size_t *len)
{
	struct itr_benc b;
	itr_benc_init(&b);
	itr_benc_dict(&b);
	itr_benc_key_str(&b, "failure reason", reason, strlen(reason));
	itr_benc_end(&b);
	return itr_benc_finish(&b, out, len);
}

/* ---- reader ------------------------------------------------------------ */

/* Digits of a non-negative decimal without leading zeros; returns the count
 * of digits consumed (0 if none or malformed) and the value in *out. */
static size_t read_decimal(const uint8_t *p, size_t len, uint64_t limit, uint64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < len && p[i] >= '0' && p[i] <= '9') {
		unsigned d = p[i] - '0';
		if (i == 1 && p[0] == '0')
			return 0; /* leading zero */
		if (v > (limit - d) / 10)
			return 0; /* overflow */
		v = v * 10 + d;
		i++;
	}
	*out = v;
	return i;
}

static long parse_value(const uint8_t *buf, size_t len, struct itr_bval *out, int depth);

static long parse_int(const uint8_t *buf, size_t len, struct itr_bval *out)
{
	size_t i = 1; /* past 'i' */
	bool negative = false;
	if (i < len && buf[i] == '-') {
		negative = true;
		i++;
	}
	uint64_t mag;
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t n = read_decimal(buf + i, len - i, limit, &mag);
	if (n == 0 || (negative && mag == 0))
		return -1; /* "i-0e", "ie", "i-e" */
	i += n;
	if (i >= len || buf[i] != 'e')
		return -1;
	out->type = ITR_BVAL_INT;
	out->data = buf;
	out->len = i + 1;
	out->num = negative ? (int64_t)(0 - mag) : (int64_t)mag;
	return (long)(i + 1);
}

static long parse_str(const uint8_t *buf, size_t len, struct itr_bval *out)
{
	uint64_t slen;
	size_t n = read_decimal(buf, len, (uint64_t)len, &slen);
	if (n == 0 || n >= len || buf[n] != ':')
		return -1;
	if (slen > len - n - 1)
		return -1;
	out->type = ITR_BVAL_STR;
	out->data = buf + n + 1;
	out->len = (size_t)slen;
	out->num = 0;
	return (long)(n + 1 + slen);
}

static int compare_keys(const struct itr_bval *a, const struct itr_bval *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->data, b->data, n);
	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static long parse_container(const uint8_t *buf, size_t len, struct itr_bval *out, int depth)
{
	bool is_dict = buf[0] == 'd';
	size_t i = 1;
	struct itr_bval prev_key = {0};
	bool have_prev = false;
	if (depth >= ITR_BENC_MAX_DEPTH)
		return -1;
	for (;;) {
		if (i >= len)
			return -1;
		if (buf[i] == 'e')
			break;
		struct itr_bval item;
		if (is_dict) {
			long n = parse_str(buf + i, len - i, &item);
			if (n < 0)
				return -1;
			if (have_prev && compare_keys(&prev_key, &item) >= 0)
				return -1; /* keys must be sorted and unique */
			prev_key = item;
			have_prev = true;
			i += (size_t)n;
		}
		long n = parse_value(buf + i, len - i, &item, depth + 1);
		if (n < 0)
			return -1;
		i += (size_t)n;
	}
	out->type = is_dict ? ITR_BVAL_DICT : ITR_BVAL_LIST;
	out->data = buf;
	out->len = i + 1;
	out->num = 0;
	return (long)(i + 1);
}

static long parse_value(const uint8_t *buf, size_t len, struct itr_bval *out, int depth)
{
	if (len == 0)
		return -1;
	switch (buf[0]) {
	case 'i':
		return parse_int(buf, len, out);
	case 'l':
	case 'd':
		return parse_container(buf, len, out, depth);
	default:
		if (buf[0] >= '0' && buf[0] <= '9')
			return parse_str(buf, len, out);
		return -1;
	}
}

long itr_bdec(const uint8_t *buf, size_t len, struct itr_bval *out)
{
	if (len > (size_t)LONG_MAX)
		return -1;
	return parse_value(buf, len, out, 0);
}

bool itr_bdec_valid(const uint8_t *buf, size_t len)
{
	struct itr_bval v;
	long n = itr_bdec(buf, len, &v);
	return n >= 0 && (size_t)n == len;
}

/* Items of an already validated container start after its type byte. */
int itr_bdec_list_next(const struct itr_bval *list, size_t *pos, struct itr_bval *out)
{
	if (list->type != ITR_BVAL_LIST && list->type != ITR_BVAL_DICT)
		return 0;
	size_t i = *pos ? *pos : 1;
	if (i >= list->len || list->data[i] == 'e')
		return 0;
	long n = parse_value(list->data + i, list->len - i, out, 1);
	if (n < 0)
		return 0;
	*pos = i + (size_t)n;
	return 1;
}

int itr_bdec_dict_next(const struct itr_bval *dict, size_t *pos, struct itr_bval *key,
                       struct itr_bval *value)
{
	if (dict->type != ITR_BVAL_DICT)
		return 0;
	size_t i = *pos ? *pos : 1;
	if (i >= dict->len || dict->data[i] == 'e')
		return 0;
	long n = parse_str(dict->data + i, dict->len - i, key);
	if (n < 0)
		return 0;
	i += (size_t)n;
	n = parse_value(dict->data + i, dict->len - i, value, 1);
	if (n < 0)
		return 0;
	*pos = i + (size_t)n;
	return 1;
}

int itr_bdec_dict_get(const struct itr_bval *dict, const char *key, struct itr_bval *out)
{
	size_t pos = 0;
	struct itr_bval k, v;
	size_t klen = strlen(key);
	while (itr_bdec_dict_next(dict, &pos, &k, &v)) {
		if (k.len == klen && memcmp(k.data, key, klen) == 0) {
			*out = v;
			return 0;
		}
	}
	return -1;
}
