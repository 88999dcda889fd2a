/* fuzz_netmap_text.c - libFuzzer harness for the text network-map parser (the checks
 * are in fuzz_netmap.h, shared with the other map format).
 */
#include "fuzz_netmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_netmap_parser(itr_netmap_parse_text, data, size);
}
