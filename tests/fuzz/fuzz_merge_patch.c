/* fuzz_merge_patch.c - libFuzzer harness for RFC 7396 merge patches, which
 * an ALTO update-stream follower applies as a primary sends them: the input
 * is two JSON texts separated by a NUL. The second is applied to the first
 * as a patch (any shape, any depth), and the diff from the first to the
 * second, when one exists, must turn the first into the second.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_merge_patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	if (!nul)
		return 0;
	json_error_t err;
	size_t first_len = (size_t)(nul - data);
	json_t *a = json_loadb((const char *)data, first_len, JSON_DECODE_ANY, &err);
	json_t *b = json_loadb((const char *)nul + 1, size - first_len - 1, JSON_DECODE_ANY, &err);
	if (a && b) {
		json_t *target = json_deep_copy(a);
		itr_merge_patch_apply(&target, b);
		json_decref(target);

		json_t *patch = NULL;
		if (itr_merge_patch_diff(a, b, &patch) == 0) {
			json_t *copy = json_deep_copy(a);
			if (patch && itr_merge_patch_apply(&copy, patch) != 0)
				abort();
			if (!json_equal(patch ? copy : a, b))
				abort();
			json_decref(copy);
			json_decref(patch);
		}
	}
	json_decref(a);
	json_decref(b);
	return 0;
}
