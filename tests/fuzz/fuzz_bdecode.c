/* fuzz_bdecode.c - libFuzzer harness for the bencode reader, which parses
 * what upstream trackers answer in proxy mode: any input is parsed, every
 * list and dictionary is walked recursively, and an accepted value is
 * re-encoded and must parse back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(const struct itr_bval *v, struct itr_benc *out, int depth)
{
	struct itr_bval item, key;
	size_t pos = 0;

	if (depth > ITR_BENC_MAX_DEPTH)
		abort(); /* the reader promised to refuse this */
	switch (v->type) {
	case ITR_BVAL_INT:
		itr_benc_int(out, v->num);
		break;
	case ITR_BVAL_STR:
		itr_benc_str(out, v->data, v->len);
		break;
	case ITR_BVAL_LIST:
		itr_benc_list(out);
		while (itr_bdec_list_next(v, &pos, &item) == 1)
			encode(&item, out, depth + 1);
		itr_benc_end(out);
		break;
	case ITR_BVAL_DICT:
		itr_benc_dict(out);
		while (itr_bdec_dict_next(v, &pos, &key, &item) == 1) {
			itr_benc_str(out, key.data, key.len);
			encode(&item, out, depth + 1);
		}
		itr_benc_end(out);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct itr_bval root, v;
	long used = itr_bdec(data, size, &root);

	if (used < 0)
		return 0;
	if ((size_t)used > size)
		abort();
	if (root.type == ITR_BVAL_DICT)
		(void)itr_bdec_dict_get(&root, "peers", &v);

	/* A valid value re-encodes to exactly the bytes it was read from. */
	struct itr_benc out;
	char *text = NULL;
	size_t len = 0;
	itr_benc_init(&out);
	encode(&root, &out, 0);
	if (itr_benc_finish(&out, &text, &len) == 0) {
		if (len != (size_t)used || memcmp(text, data, len) != 0)
			abort();
		free(text);
	} /* on failure finish has already freed the writer */
	return 0;
}
