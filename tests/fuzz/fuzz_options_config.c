/* fuzz_options_config.c - libFuzzer harness for itrackerd's config file
 * reader: any bytes either configure or fail with a message that names
 * the file, never crash, overread or leak what the options keep.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy: the reader must stay within size */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	struct itr_options o;
	char err[1024] = "";
	itr_options_init(&o);
	if (itr_options_parse_config_text(&o, text, size, "fuzz.conf", err, sizeof(err)) != 0 &&
	    strncmp(err, "fuzz.conf", 9) != 0 && strcmp(err, "out of memory") != 0)
		abort();
	itr_options_free(&o);
	free(text);
	return 0;
}
