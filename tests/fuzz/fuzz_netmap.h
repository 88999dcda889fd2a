/* fuzz_netmap.h - what both network-map harnesses do with a parser: any
 * input must parse or fail cleanly (no crash, leak or UB), and a map that
 * parses must answer lookups, costs and the kernel diff against itself
 * (which must be empty).
 */
#ifndef ITR_FUZZ_NETMAP_H
#define ITR_FUZZ_NETMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netmap.h"

static void exercise(struct itr_netmap *m, const uint8_t *data, size_t size)
{
	uint8_t addr[16] = {0};
	memcpy(addr, data, size < 16 ? size : 16);
	const struct itr_pid *a = itr_netmap_lookup(m, 4, addr);
	const struct itr_pid *b = itr_netmap_lookup(m, 6, addr);
	(void)itr_netmap_cost(m, a, b);
	(void)itr_netmap_class(a, b);
	(void)itr_netmap_vtag(m);
	for (size_t i = 0; i < itr_netmap_pid_count(m); i++) {
		const struct itr_pid *p = itr_netmap_pid_at(m, i);
		if (itr_netmap_pid_by_name(m, p->name) != p || itr_netmap_pid_by_id(m, p->id) != p)
			abort();
		for (size_t k = 0; k < p->nprefixes; k++)
			if (itr_netmap_lookup(m, p->prefixes[k].family, p->prefixes[k].addr) ==
			    NULL)
				abort(); /* a PID's own prefix must match something */
	}
	struct itr_netmap_kentry *e;
	size_t n;
	if (itr_netmap_kernel_entries(m, &e, &n) == 0) {
		struct itr_netmap_op *ops;
		size_t nops;
		if (itr_netmap_diff(e, n, e, n, &ops, &nops) == 0) {
			if (nops != 0)
				abort();
			free(ops);
		}
		free(e);
	}
}

typedef struct itr_netmap *(*netmap_parser)(const char *buf, size_t len, const char *filename,
                                            struct itr_netmap_error *err);

static int fuzz_netmap_parser(netmap_parser parse, const uint8_t *data, size_t size)
{
	struct itr_netmap_error err;
	struct itr_netmap *m = parse((const char *)data, size, "fuzz", &err);
	if (m) {
		exercise(m, data, size);
		itr_netmap_unref(m);
	} else {
		char buf[700];
		itr_netmap_error_format(&err, buf, sizeof(buf));
	}
	return 0;
}

#endif
