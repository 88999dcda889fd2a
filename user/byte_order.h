/* byte_order.h - big-endian (network order) loads and stores on byte
 * buffers, for wire formats read and written field by field: the UDP
 * tracker protocol (BEP 15), the proxy's upstream requests, and address
 * bytes. Byte-wise, so no alignment is assumed. */
#ifndef ITR_BYTE_ORDER_H
#define ITR_BYTE_ORDER_H

#include <stdint.h>

static inline uint32_t itr_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t itr_be64_get(const uint8_t *p)
{
	return (uint64_t)itr_be32_get(p) << 32 | itr_be32_get(p + 4);
}

static inline void itr_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void itr_be64_put(uint8_t *p, uint64_t v)
{
	itr_be32_put(p, (uint32_t)(v >> 32));
	itr_be32_put(p + 4, (uint32_t)v);
}

#endif
