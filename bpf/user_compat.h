/* user_compat.h - lets the packet parser and signature checks of bpf/
 * (parse.h, flow_key.h, bt_signatures.h, tracker_peers.h) compile as
 * ordinary C for userspace: itrackerctl classify's flow keys and the
 * libFuzzer harnesses use the very code the kernel runs.
 *
 * It supplies what those headers take from the BPF toolchain: the
 * bpf_endian.h byte-order macros and bpf_loop(), run here as the plain
 * loop the kernel helper is. Include it instead of <bpf/bpf_helpers.h>.
 */
#ifndef ITR_USER_COMPAT_H
#define ITR_USER_COMPAT_H

#include <arpa/inet.h>
#include <linux/types.h>
#include <stdint.h>

/* clang's loop hints in the headers mean nothing to gcc. */
#pragma GCC diagnostic ignored "-Wunknown-pragmas"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* -std=c11 has no `asm` keyword; the headers' register barriers use it. */
#ifndef asm
#define asm __asm__
#endif

#define bpf_htons(x) htons(x)
#define bpf_ntohs(x) ntohs(x)
#define bpf_htonl(x) htonl(x)
#define bpf_ntohl(x) ntohl(x)

/* The kernel helper: calls fn(i, ctx) for i = 0.. until it returns 1 or
 * nr_loops calls were made; returns the number of calls. */
static inline long bpf_loop(__u32 nr_loops, long (*fn)(__u64 index, void *ctx), void *ctx,
                            __u64 flags)
{
	(void)flags;
	__u32 i;
	for (i = 0; i < nr_loops; i++)
		if (fn(i, ctx))
			return (long)i + 1;
	return (long)i;
}

#endif /* ITR_USER_COMPAT_H */
