/* rank.c - order candidate peers for one client: by p-distance from the
 * client's PID, ties broken by BEP 40 canonical priority, then shaped by the
 * locality policy (shares and an external budget).
 *
 * Order. Every candidate gets cost = itr_netmap_cost(client PID, its PID)
 * and the BEP 40 priority of the pair. The rank order is: cost ascending,
 * then priority descending (BEP 40 keeps the higher-priority connection),
 * then family, address bytes and port ascending, so equal inputs always give
 * equal outputs. A client no PID covers gets plain BEP 40 order with no
 * policy: without a position there is no locality to enforce.
 *
 * Policy. "Internal" candidates share the client's AS (own PID included);
 * every other candidate, also one no PID covers, is "external". With
 * L = min(want, candidates left after dropping the client itself and exact
 * duplicates), selection runs three passes over the rank order:
 *
 *   1. reserve: the first min(min_external, externals, L) externals. This
 *      is what keeps every AS connected to the rest of the swarm.
 *   2. caps: take each remaining candidate while fewer than L are taken and
 *      its caps allow it: an external while fewer than
 *      max(max_external, reserved) externals are taken; an internal while
 *      the own-AS count is below floor(max_own_as_pct * L / 100) and, for
 *      the client's own PID, the own-PID count is below
 *      floor(max_own_pid_pct * L / 100).
 *   3. top-up: caps must not starve a client. If fewer than
 *      T = min(L, min_list) are taken, the candidates the caps skipped are
 *      added in rank order until T are taken.
 *
 * External budget per AS (gateways = N > 0). A per-list budget leaves
 * every peer of an AS with outside links (its own picks plus those other
 * ASes' peers open to it), each pulling pieces its AS already holds. With
 * gateways, only N peers of each AS per swarm get min_external and
 * max_external; the others get 0 for passes 1 and 2 (pass 3 still tops a
 * short list up from outside). The gateways are the N peers of the AS
 * (the client and its AS's candidates) with the highest
 * itr_rank_gateway_score(gateway_salt, peer), ties by address and port:
 * a function of the swarm's content alone, so every peer of the AS agrees
 * on them and a re-announce gets the same list, and the salt (the tracker
 * uses the swarm's info_hash) spreads the role over different hosts per
 * swarm. Every AS with peers has at least one gateway, and a peer alone in
 * its AS is always one, so no AS is cut off from the swarm. A gateway's
 * externals (passes 1 and 2) are taken from the other ASes' gateways first
 * (the N best-scored candidates of each other AS; a candidate no PID
 * covers counts as one), then from their other peers in rank order (those
 * that ranked before the last gateway by a pass after pass 2): so an AS's
 * outside links end at few peers on both sides rather than at any peer a
 * gateway happens to rank first.
 *
 * Rotated ties (policy->rotate_ties, the tracker's lists on the memory
 * store), in buckets of more than ROTATE_MIN_BUCKET candidates. Inside a
 * cost bucket the order above needs each candidate's BEP 40 priority and
 * a sort: at numwant 200 in a swarm of 1,000 that was a third of an
 * announce (in-process 5.4 us an announce with it, 3.6 us without;
 * docs/benchmarks.md). The memory store hands each PID's candidates in
 * one fixed order (address and port), so a large bucket is listed in that
 * order from the client's own starting point (itr_rank_tie_offset of the
 * swarm's salt and the client), wrapping, and a bucket cut short is a
 * window of it: clients of one PID start at different peers, a
 * re-announce gets the same list, equal inputs give equal outputs. What
 * it gives up is BEP 40's symmetry: with it two peers rank each other
 * alike, so their lists tend to name each other, which matters where
 * connection limits bind. Rotated everywhere, two swarm-lab passes of the
 * whole matrix (docs/policy.md, "Rotated ties in the lab") were slower
 * in two configurations than nearly all the runs before; the
 * lab's buckets are all small, so small buckets keep BEP 40 order, which
 * costs little there. /v1/rank, ALTO, the proxy and the Redis store
 * (candidates in the caller's or in no fixed order) keep BEP 40.
 *
 * In itrackerd these are the base of the adaptive policy: the price
 * controller (price.c, docs/policy.md) sets gateways and max_external per
 * AS per swarm unless the operator fixed them.
 *
 * The selected peers are written in rank order. So a list is never shorter
 * than min(want, min_list, candidates), and never holds more than
 * max_external outsiders unless that is needed to reach min_list.
 *
 * Why these defaults (itr_rank_policy_default). Lab measurement: 3 ISPs,
 * 33 aria2c leechers, 8 Mbit/s transit, tracker lists only. 8-peer lists
 * under P4P's 75 % own-PID / 90 % own-AS shares carried 1.14x the transit
 * bytes of opentracker's full random lists and finished 1.09x slower. Full
 * lists of every local peer plus one external peer carried 0.72x the transit
 * bytes at 0.96x the time, and every ISP finished faster. Shares cost twice:
 * they cut the local list short and the percentage of a long list still
 * sends many peers outside. So:
 *   - shares off (100 % / 100 %): every local candidate is listed;
 *   - min_external 1: one outside peer at least, for the gateways (every
 *     list when gateways is 0): what guarantees no AS is cut off;
 *   - max_external 2: a small absolute budget, not a share. The measured
 *     configuration used one; the second one gives an AS a spare path in
 *     if its single outside contact is a peer that has left (the tracker
 *     cannot know), at the cost of one more transit peer per list. Raise
 *     it for sparse ISPs, lower it to 1 to reproduce the measurement.
 *   - min_list 3 and gateways 1 (swarmlab, README.md "Swarm lab": 3 ISPs x 10
 *     hosts, both seeders in ISP 0, 8 Mbit/s transit, aria2c). The earlier
 *     defaults (min_list 11, no gateways) left every peer of an ISP with
 *     outside links and carried 0.67-0.68x opentracker's transit bytes at
 *     0.72-0.77x its mean time. Two things caused it. (a) A per-list
 *     budget: each peer's own picks plus those other ISPs' peers open to
 *     it, each pulling pieces its ISP already holds - hence one gateway
 *     per AS per swarm, whose budget goes to the other ASes' gateways.
 *     (b) The top-up at arrival: leechers start together, a client
 *     announcing before most of its ISP sees few local candidates, gets a
 *     list topped up from outside and keeps it for the whole download
 *     (clients re-announce every 30 minutes). Measured, in the same runs
 *     against opentracker: gateways 1 with min_list 9 carried 0.45-0.58x
 *     at 0.66-0.76x the time; min_list 3 without gateways 0.40x at 0.61x;
 *     min_list 3 with gateways 1 0.26-0.31x at 0.43-0.53x over four runs,
 *     every ISP faster (table in README.md "Swarm lab"). 3 still gives a peer alone in
 *     its AS (its own gateway) a list to start from, and the other ASes'
 *     gateways list it too.
 */
#include "byte_order.h"
#include "rank.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ITR_HAVE_X86_CRC 1
#endif

void itr_rank_policy_default(struct itr_rank_policy *policy)
{
	/* gateway_salt 0: the tracker sets it per swarm */
	*policy = (struct itr_rank_policy){.max_own_pid_pct = 100,
	                                   .max_own_as_pct = 100,
	                                   .min_external = 1,
	                                   .max_external = 2,
	                                   .min_list = 3,
	                                   .gateways = 1};
}

/* ---- CRC32-C (Castagnoli, reflected polynomial 0x82F63B78) ----------- */

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static bool crc32c_hw;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
			                     crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
#ifdef ITR_HAVE_X86_CRC
	unsigned eax, ebx, ecx, edx;
	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		crc32c_hw = (ecx & bit_SSE4_2) != 0;
#endif
}

/* Slicing-by-8 over the bulk, bytewise for the rest. */
static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		                     (uint32_t)p[3] << 24);
		crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
		      crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
		      crc32c_table[3][p[4]] ^ crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
		      crc32c_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#ifdef ITR_HAVE_X86_CRC
/* The SSE4.2 crc32 instruction computes exactly CRC32-C. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                               size_t len)
{
#ifdef __x86_64__
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		crc = (uint32_t)__builtin_ia32_crc32di(crc, w);
		p += 8;
		len -= 8;
	}
#endif
	while (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		crc = __builtin_ia32_crc32si(crc, w);
		p += 4;
		len -= 4;
	}
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

#ifdef ITR_HAVE_X86_CRC
/* Eight bytes at once (x86 is little-endian: w holds them in memory order). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_word(uint32_t crc, uint64_t w)
{
#ifdef __x86_64__
	return (uint32_t)__builtin_ia32_crc32di(crc, w);
#else
	crc = __builtin_ia32_crc32si(crc, (uint32_t)w);
	return __builtin_ia32_crc32si(crc, (uint32_t)(w >> 32));
#endif
}
#endif

/* After crc32c_init has run. */
static uint32_t crc32c_ready(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
#ifdef ITR_HAVE_X86_CRC
	if (crc32c_hw)
		return ~crc32c_sse42(crc, buf, len);
#endif
	return ~crc32c_soft(crc, buf, len);
}

/* Standard CRC32-C: start with crc 0, chain by passing the previous result. */
uint32_t itr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_ready(crc, buf, len);
}

/* ---- BEP 40 canonical peer priority ---------------------------------- */

/* An address as 16 bytes plus its length: IPv4 stays 4 bytes unless the
 * pair is mixed, where the IPv4 end is IPv4-mapped so both are 16 bytes
 * (BEP 40 does not define mixed pairs; this keeps the function total and
 * symmetric). */
static size_t pair_bytes(const struct itr_peer_addr *a, const struct itr_peer_addr *b,
                         uint8_t out_a[16], uint8_t out_b[16])
{
	if (a->family == b->family) {
		size_t n = a->family == 4 ? 4 : 16;
		memcpy(out_a, a->addr, n);
		memcpy(out_b, b->addr, n);
		return n;
	}
	const struct itr_peer_addr *in[2] = {a, b};
	uint8_t *out[2] = {out_a, out_b};
	for (int i = 0; i < 2; i++) {
		if (in[i]->family == 4) {
			memset(out[i], 0, 10);
			out[i][10] = out[i][11] = 0xff;
			memcpy(out[i] + 12, in[i]->addr, 4);
		} else {
			memcpy(out[i], in[i]->addr, 16);
		}
	}
	return 16;
}

/* BEP 40: the mask keeps the first `base` bytes (2 for IPv4: FF.FF.55.55,
 * 6 for IPv6: /48) and 0x55 elsewhere; when the two addresses share at least
 * `base` leading bytes, one more byte than they share is kept whole
 * (FF.FF.FF.55 for a shared /16, FF.FF.FF.FF for a shared /24; IPv6 the same
 * in 8-bit steps from /48 on). */
static uint32_t bep40_addresses(uint8_t a[16], uint8_t b[16], size_t n)
{
	size_t base = n == 4 ? 2 : 6;
	size_t shared = 0;
	while (shared < n && a[shared] == b[shared])
		shared++;
	size_t keep = shared >= base ? shared + 1 : base;
	if (keep > n)
		keep = n;
	for (size_t i = keep; i < n; i++) {
		a[i] &= 0x55;
		b[i] &= 0x55;
	}
	/* The first differing byte is always kept whole, so ordering the masked
	 * addresses equals ordering the originals. */
	uint8_t buf[32];
	bool a_first = memcmp(a, b, n) <= 0;
	memcpy(buf, a_first ? a : b, n);
	memcpy(buf + n, a_first ? b : a, n);
	return crc32c_ready(0, buf, 2 * n);
}

static bool same_address(const struct itr_peer_addr *a, const struct itr_peer_addr *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

/* IPv4 pairs, the common case, on integers: the same masks as
 * bep40_addresses, without the byte loops. The 8 bytes to hash, in memory
 * order as one little-endian word (x86 is little-endian). */
static inline uint64_t bep40_v4_word(uint32_t x, uint32_t y)
{
	uint32_t diff = x ^ y;
	uint32_t mask = diff < 0x100u ? 0xffffffffu : diff < 0x10000u ? 0xffffff55u : 0xffff5555u;
	x &= mask;
	y &= mask;
	uint32_t lo = x < y ? x : y, hi = x < y ? y : x;
	return (uint64_t)__builtin_bswap32(hi) << 32 | __builtin_bswap32(lo);
}

static uint32_t bep40_v4(const uint8_t *a, const uint8_t *b)
{
	uint64_t word = bep40_v4_word(itr_be32_get(a), itr_be32_get(b));
#ifdef ITR_HAVE_X86_CRC
	if (crc32c_hw)
		return ~crc32c_word(~0u, word);
#endif
	uint8_t buf[8];
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(word >> (8 * i));
	return crc32c_ready(0, buf, sizeof(buf));
}

static uint32_t bep40_priority(const struct itr_peer_addr *a, const struct itr_peer_addr *b)
{
	if (same_address(a, b)) {
		/* Equal addresses: CRC32-C of the two ports, big-endian, sorted. */
		uint16_t lo = a->port < b->port ? a->port : b->port;
		uint16_t hi = a->port < b->port ? b->port : a->port;
		uint8_t buf[4] = {lo >> 8, lo & 0xff, hi >> 8, hi & 0xff};
		return crc32c_ready(0, buf, sizeof(buf));
	}
	if (a->family == 4 && b->family == 4)
		return bep40_v4(a->addr, b->addr);
	uint8_t x[16], y[16];
	size_t n = pair_bytes(a, b, x, y);
	return bep40_addresses(x, y, n);
}

uint32_t itr_bep40_priority(const struct itr_peer_addr *a, const struct itr_peer_addr *b)
{
	pthread_once(&crc32c_once, crc32c_init);
	return bep40_priority(a, b);
}

/* ---- gateways --------------------------------------------------------- */

uint32_t itr_rank_gateway_score(uint32_t salt, const struct itr_peer_addr *peer)
{
	uint8_t buf[4 + 16 + 2];
	size_t alen = peer->family == 4 ? 4 : 16;
	buf[0] = (uint8_t)(salt >> 24);
	buf[1] = (uint8_t)(salt >> 16);
	buf[2] = (uint8_t)(salt >> 8);
	buf[3] = (uint8_t)salt;
	memcpy(buf + 4, peer->addr, alen);
	buf[4 + alen] = (uint8_t)(peer->port >> 8);
	buf[5 + alen] = (uint8_t)peer->port;
	return itr_crc32c(0, buf, 6 + alen);
}

uint32_t itr_rank_tie_offset(uint32_t salt, const struct itr_peer_addr *client)
{
	uint32_t x = itr_rank_gateway_score(salt, client);
	x = (x >> 16) | (x << 16);
	x = ((x & 0xff00ff00u) >> 8) | ((x & 0x00ff00ffu) << 8);
	x = ((x & 0xf0f0f0f0u) >> 4) | ((x & 0x0f0f0f0fu) << 4);
	x = ((x & 0xccccccccu) >> 2) | ((x & 0x33333333u) << 2);
	return ((x & 0xaaaaaaaau) >> 1) | ((x & 0x55555555u) << 1);
}

uint32_t itr_rank_swarm_salt(const uint8_t info_hash[20])
{
	return itr_crc32c(0, info_hash, 20);
}

/* True if a outscores b: higher score, then lower address and port. */
static bool gateway_before(uint32_t score_a, const struct itr_peer_addr *a, uint32_t score_b,
                           const struct itr_peer_addr *b);

/* ---- ranking ---------------------------------------------------------- */

enum rank_side {
	SIDE_OWN_PID, /* the client's own PID */
	SIDE_OWN_AS,  /* another PID of the client's AS */
	SIDE_EXTERNAL,
};

/* Sorting works on 16-byte items: the primary key (cost << 32 | ~priority,
 * ascending = rank order) and the candidate's index. The address tie-break
 * is needed only inside runs of equal keys; tie_key makes it one integer
 * compare in nearly every case: IPv4 address and port are unique in 48
 * bits, IPv6 falls back to the full address only when the first 63 bits
 * agree. */
struct sort_item {
	uint64_t key;
	uint32_t idx;   /* index into cands */
	uint32_t group; /* group_by_cost's scratch */
};

static uint64_t tie_key(const struct itr_peer_addr *p)
{
	if (p->family == 4)
		return (uint64_t)itr_be32_get(p->addr) << 16 | p->port;
	uint64_t k = itr_be64_get(p->addr);
	return 1ull << 63 | k >> 1;
}

static int addr_cmp(const struct itr_peer_addr *a, const struct itr_peer_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16);
	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

/* tie_cmp past equal tie keys (IPv6 sharing 63 bits, or equal peers). */
__attribute__((noinline)) static int tie_cmp_full(const struct sort_item *x,
                                                  const struct sort_item *y,
                                                  const struct itr_peer_addr *cands)
{
	int c = addr_cmp(&cands[x->idx], &cands[y->idx]);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Order inside a run of equal keys: address, port, then input position.
 * The tie keys decide nearly always; kept small so that it inlines into
 * tie_sort (one address on many ports makes long runs: callgrind counted
 * 130 calls an announce at numwant 200). */
static inline int tie_cmp(const struct sort_item *x, const struct sort_item *y,
                          const uint64_t *ties, const struct itr_peer_addr *cands)
{
	uint64_t tx = ties[x->idx], ty = ties[y->idx];
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return tie_cmp_full(x, y, cands);
}

static void swap_items(struct sort_item *a, struct sort_item *b)
{
	struct sort_item t = *a;
	*a = *b;
	*b = t;
}

/* Quicksort of one run of equal keys by tie_cmp (median of three,
 * insertion sort below 16, loop on the larger half). Runs are short except
 * for one address announced on many ports. */
static void tie_sort(struct sort_item *e, size_t n, const uint64_t *ties,
                     const struct itr_peer_addr *cands)
{
	while (n > 16) {
		size_t mid = n / 2;
		if (tie_cmp(&e[mid], &e[0], ties, cands) < 0)
			swap_items(&e[mid], &e[0]);
		if (tie_cmp(&e[n - 1], &e[0], ties, cands) < 0)
			swap_items(&e[n - 1], &e[0]);
		if (tie_cmp(&e[n - 1], &e[mid], ties, cands) < 0)
			swap_items(&e[n - 1], &e[mid]);
		struct sort_item pivot = e[mid];
		size_t i = 0, j = n - 1;
		for (;;) {
			while (tie_cmp(&e[i], &pivot, ties, cands) < 0)
				i++;
			while (tie_cmp(&pivot, &e[j], ties, cands) < 0)
				j--;
			if (i >= j)
				break;
			swap_items(&e[i], &e[j]);
			i++;
			j--;
		}
		/* [0, j] <= pivot <= [j + 1, n); items are distinct, so
		 * both halves are non-empty. */
		size_t left = j + 1, right = n - left;
		if (left < right) {
			tie_sort(e, left, ties, cands);
			e += left;
			n = right;
		} else {
			tie_sort(e + left, right, ties, cands);
			n = left;
		}
	}
	for (size_t i = 1; i < n; i++) {
		struct sort_item v = e[i];
		size_t j = i;
		while (j > 0 && tie_cmp(&v, &e[j - 1], ties, cands) < 0) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = v;
	}
}

static void insertion_sort(struct sort_item *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct sort_item v = a[i];
		size_t j = i;
		while (j > 0 && v.key < a[j - 1].key) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = v;
	}
}

/* Bottom-up merge sort: runs of 8 by insertion, then merges between the
 * two buffers. Stable. Returns the buffer holding the result. */
static struct sort_item *merge_sort(struct sort_item *a, struct sort_item *tmp, size_t n)
{
	for (size_t i = 0; i < n; i += 8)
		insertion_sort(a + i, n - i < 8 ? n - i : 8);
	for (size_t width = 8; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				tmp[k++] = a[j].key < a[i].key ? a[j++] : a[i++];
			while (i < mid)
				tmp[k++] = a[i++];
			while (j < hi)
				tmp[k++] = a[j++];
		}
		struct sort_item *t = a;
		a = tmp;
		tmp = t;
	}
	return a;
}

/* Sort by key. Stable. Returns the buffer holding the result (a or tmp).
 * Insertion sort for short inputs; keys that differ in one byte only (the
 * first pass: costs) take one counting pass; other inputs of up to a few
 * hundred (the tracker's candidate lists) a merge sort: every radix pass
 * sweeps its 256 counters whatever n is, which callgrind showed to be the
 * tracker's largest single cost at 128 candidates. Above that, LSD radix
 * over the bytes that differ somewhere: no data-dependent branches, which
 * on random priorities makes it several times faster than a comparison
 * sort on thousands of items. */
static struct sort_item *key_sort(struct sort_item *a, struct sort_item *tmp, size_t n)
{
	if (n <= 16) {
		insertion_sort(a, n);
		return a;
	}
	uint64_t all_or = 0, all_and = ~0ull;
	for (size_t i = 0; i < n; i++) {
		all_or |= a[i].key;
		all_and &= a[i].key;
	}
	uint64_t varying = all_or ^ all_and;
	if (varying == 0)
		return a;
	unsigned low = (unsigned)__builtin_ctzll(varying) / 8 * 8;
	bool one_byte = (varying >> low) <= 0xff;
	if (!one_byte && n <= 384)
		return merge_sort(a, tmp, n);
	for (unsigned shift = 0; shift < 64; shift += 8) {
		if (((varying >> shift) & 0xff) == 0)
			continue;
		size_t count[256] = {0};
		for (size_t i = 0; i < n; i++)
			count[(a[i].key >> shift) & 0xff]++;
		size_t sum = 0;
		for (int b = 0; b < 256; b++) {
			size_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(a[i].key >> shift) & 0xff]++] = a[i];
		struct sort_item *t = a;
		a = tmp;
		tmp = t;
	}
	return a;
}

/* Stable sort of items whose keys are costs (cost << 32). A swarm's
 * candidates span few PIDs, hence few distinct costs: a counting sort over
 * the distinct keys found, where key_sort's counting pass clears and sums
 * 256 counters (about 1,500 instructions an announce, callgrind). Many
 * distinct costs go to key_sort. */
#define COST_GROUPS_MAX 16

static struct sort_item *group_by_cost(struct sort_item *a, struct sort_item *tmp, size_t n)
{
	uint64_t keys[COST_GROUPS_MAX];
	size_t count[COST_GROUPS_MAX], order[COST_GROUPS_MAX], start[COST_GROUPS_MAX];
	size_t nk = 0, last = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = a[i].key;
		if (nk == 0 || keys[last] != k) {
			size_t j = 0;
			while (j < nk && keys[j] != k)
				j++;
			if (j == nk) {
				if (nk == COST_GROUPS_MAX)
					return key_sort(a, tmp, n);
				keys[nk] = k;
				count[nk++] = 0;
			}
			last = j;
		}
		count[last]++;
		a[i].group = (uint32_t)last;
	}
	if (nk <= 1)
		return a;
	for (size_t j = 0; j < nk; j++) {
		size_t r = j;
		while (r > 0 && keys[order[r - 1]] > keys[j]) {
			order[r] = order[r - 1];
			r--;
		}
		order[r] = j;
	}
	size_t sum = 0;
	for (size_t r = 0; r < nk; r++) {
		start[order[r]] = sum;
		sum += count[order[r]];
	}
	for (size_t i = 0; i < n; i++)
		tmp[start[a[i].group]++] = a[i];
	return tmp;
}

/* Buckets up to this size sort as packed 64-bit words (sort_u64); larger
 * ones take key_sort's radix passes. */
#define PACKED_SORT_MAX 384

/* Two sorted runs [a, a + na) and [b, b + nb) into out. The branch on the
 * comparison is replaced by selects: on random priorities a branch
 * mispredicts every other step, which made the merges and insertion sorts
 * the tracker's largest user-space cost (perf, swarms of 64). */
static void merge_u64(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, uint64_t *out)
{
	size_t i = 0, j = 0, k = 0;
	while (i < na && j < nb) {
		uint64_t x = a[i], y = b[j];
		bool right = y < x;
		out[k++] = right ? y : x;
		j += right;
		i += !right;
	}
	while (i < na)
		out[k++] = a[i++];
	while (j < nb)
		out[k++] = b[j++];
}

static void compare_swap(uint64_t *a, size_t i, size_t j)
{
	uint64_t x = a[i], y = a[j];
	a[i] = x < y ? x : y;
	a[j] = x < y ? y : x;
}

/* Sort n distinct-or-equal words ascending: runs of four by a sorting
 * network, then bottom-up branch-free merges between a and spare (each n
 * long). Returns the buffer holding the result. */
static uint64_t *merge_sort_u64(uint64_t *a, uint64_t *spare, size_t n)
{
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		compare_swap(a, i, i + 1);
		compare_swap(a, i + 2, i + 3);
		compare_swap(a, i, i + 2);
		compare_swap(a, i + 1, i + 3);
		compare_swap(a, i + 1, i + 2);
	}
	if (n - i >= 2)
		compare_swap(a, i, i + 1);
	if (n - i == 3) {
		compare_swap(a, i + 1, i + 2);
		compare_swap(a, i, i + 1);
	}
	for (size_t width = 4; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			merge_u64(a + lo, mid - lo, a + mid, hi - mid, spare + lo);
		}
		uint64_t *t = a;
		a = spare;
		spare = t;
	}
	return a;
}

/* Words whose top bits are uniform, as the BEP 40 priorities (CRC-32C
 * values) make a bucket's packed words: one counting pass on the top bits
 * leaves each word among fewer than two of its bucket on average, and an
 * insertion sort finishes the nearly sorted result. The merges above are
 * one long chain of dependent loads and compares (perf: two thirds of
 * sort_bucket on buckets of 150); this is about n steps of each kind.
 * Priorities are not secret, so peers chosen to collide could make the
 * insertion sort quadratic: past 8 moves a word it gives up and merges.
 * Up to 512 bins of 16-bit counts: enough for PACKED_SORT_MAX words. */
_Static_assert(PACKED_SORT_MAX <= 512, "sort_u64 counts in 16 bits, at most 512 bins");
static uint64_t *sort_u64(uint64_t *a, uint64_t *spare, size_t n)
{
	if (n < 24)
		return merge_sort_u64(a, spare, n);
	unsigned bits = 4;
	while (bits < 9 && (1u << bits) < n)
		bits++;
	unsigned shift = 64 - bits;
	uint16_t start[(1u << 9) + 1];
	memset(start, 0, ((1u << bits) + 1) * sizeof(start[0]));
	for (size_t i = 0; i < n; i++)
		start[(a[i] >> shift) + 1]++;
	for (size_t b = 1; b <= (1u << bits); b++)
		start[b] = (uint16_t)(start[b] + start[b - 1]);
	for (size_t i = 0; i < n; i++)
		spare[start[a[i] >> shift]++] = a[i];
	size_t moves = 0, budget = 8 * n;
	for (size_t i = 1; i < n; i++) {
		uint64_t x = spare[i];
		size_t j = i;
		while (j > 0 && spare[j - 1] > x) {
			spare[j] = spare[j - 1];
			j--;
		}
		spare[j] = x;
		moves += i - j;
		if (moves > budget)
			return merge_sort_u64(a, spare, n); /* a is untouched */
	}
	return spare;
}

static uint64_t pct_of(unsigned pct, size_t n)
{
	if (pct >= 100)
		return n;
	return (uint64_t)pct * n / 100;
}

static bool gateway_before(uint32_t score_a, const struct itr_peer_addr *a, uint32_t score_b,
                           const struct itr_peer_addr *b)
{
	if (score_a != score_b)
		return score_a > score_b;
	return addr_cmp(a, b) < 0;
}

/* Per-candidate facts, indexed like cands. */
struct cand_info {
	const struct itr_pid *pid;
	uint32_t cost;
	uint8_t side;
	uint8_t taken;
	uint8_t gateway; /* external and one of its AS's gateways */
};

/* One external candidate while its AS's gateways are found. */
struct gw_item {
	uint32_t asn;
	uint32_t score;
	uint32_t idx;
};

/* qsort_r order: AS, then gateway order inside it (arg: the candidates). */
static int gw_item_cmp(const void *pa, const void *pb, void *arg)
{
	const struct gw_item *a = pa, *b = pb;
	const struct itr_peer_addr *gw_cands = arg;
	if (a->asn != b->asn)
		return a->asn < b->asn ? -1 : 1;
	if (gateway_before(a->score, &gw_cands[a->idx], b->score, &gw_cands[b->idx]))
		return -1;
	return gateway_before(b->score, &gw_cands[b->idx], a->score, &gw_cands[a->idx]) ? 1 : 0;
}

/* The cost from the client's PID depends only on the candidate's PID, and
 * a swarm spans few PIDs: a small direct-mapped memo saves the cost map's
 * search for nearly every candidate. */
#define COST_CACHE_SLOTS 16

struct cost_cache {
	const struct itr_pid *pid[COST_CACHE_SLOTS];
	uint32_t cost[COST_CACHE_SLOTS];
	bool valid[COST_CACHE_SLOTS];
	bool have_none;
	uint32_t none_cost; /* for candidates no PID covers */
};

static uint32_t cached_cost(struct cost_cache *cc, const struct itr_netmap *map,
                            const struct itr_pid *src, const struct itr_pid *dst)
{
	if (!dst) {
		if (!cc->have_none) {
			cc->none_cost = itr_netmap_cost(map, src, NULL);
			cc->have_none = true;
		}
		return cc->none_cost;
	}
	unsigned slot = dst->id % COST_CACHE_SLOTS;
	if (!cc->valid[slot] || cc->pid[slot] != dst) {
		cc->pid[slot] = dst;
		cc->cost[slot] = itr_netmap_cost(map, src, dst);
		cc->valid[slot] = true;
	}
	return cc->cost[slot];
}

/* Everything one call needs, in one allocation (stack for small n). */
struct rank_scratch {
	struct sort_item *items, *tmp;
	uint64_t *ties;
	struct cand_info *info;
	uint32_t *seen; /* dedup hash table: candidate index + 1, 0 = empty */
	size_t seen_mask;
};

#define RANK_STACK_MAX  64
#define RANK_STACK_SEEN 128

/* The dedup table's hash of a candidate: its whole address and port.
 * tie_key will not do for IPv6: it keeps the first 63 bits only, so
 * candidates of one /64 (or one address on many ports, as every BEP 15
 * peer behind one IPv6 source is) all hashed to one slot and each insert
 * probed past all the others: O(n^2) address compares. */
static uint64_t dedup_hash(const struct itr_peer_addr *p, uint64_t tie)
{
	uint64_t h = tie; /* IPv4: address and port, whole */
	if (p->family == 6) {
		uint64_t hi, lo;
		memcpy(&hi, p->addr, 8);
		memcpy(&lo, p->addr + 8, 8);
		h = (hi * 0x9e3779b97f4a7c15ull) ^ lo ^ p->port;
	}
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ h >> 31;
}

/* True if an equal candidate (address and port) was inserted before. */
static bool seen_before(struct rank_scratch *sc, const struct itr_peer_addr *cands, uint32_t i)
{
	uint64_t k = sc->ties[i];
	size_t h = (size_t)(dedup_hash(&cands[i], k) >> 32) & sc->seen_mask;
	for (;; h = (h + 1) & sc->seen_mask) {
		uint32_t v = sc->seen[h];
		if (v == 0) {
			sc->seen[h] = i + 1;
			return false;
		}
		if (sc->ties[v - 1] == k && addr_cmp(&cands[v - 1], &cands[i]) == 0)
			return true;
	}
}

/* For a gateway client: mark the external candidates that are gateways of
 * their own AS (its `gateways` best-scored candidates; one no PID covers is
 * its own place and always one) and return how many there are. A gateway
 * hands its outside budget to these first, so an AS's outside links end at
 * the other ASes' few gateways instead of at peers all over them. */
static size_t mark_external_gateways(struct rank_scratch *sc, const struct itr_peer_addr *cands,
                                     const struct sort_item *e, size_t m,
                                     const struct itr_rank_policy *policy)
{
	size_t n = 0, marked = 0;
	for (size_t i = 0; i < m; i++) {
		const struct cand_info *ci = &sc->info[e[i].idx];
		n += ci->side == SIDE_EXTERNAL && ci->pid;
	}
	struct gw_item stack_items[RANK_STACK_MAX];
	struct gw_item *items = n <= RANK_STACK_MAX ? stack_items : malloc(n * sizeof(*items));
	if (!items)
		return 0; /* no preference: still a valid list */
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		struct cand_info *ci = &sc->info[e[i].idx];
		if (ci->side != SIDE_EXTERNAL)
			continue;
		if (!ci->pid) {
			ci->gateway = 1;
			marked++;
			continue;
		}
		items[k].asn = ci->pid->asn;
		items[k].score = itr_rank_gateway_score(policy->gateway_salt, &cands[e[i].idx]);
		items[k].idx = e[i].idx;
		k++;
	}
	qsort_r(items, k, sizeof(*items), gw_item_cmp, (void *)cands);
	for (size_t i = 0, in_as = 0; i < k; i++) {
		in_as = i > 0 && items[i].asn == items[i - 1].asn ? in_as + 1 : 0;
		if (in_as < policy->gateways) {
			sc->info[items[i].idx].gateway = 1;
			marked++;
		}
	}
	if (items != stack_items)
		free(items);
	return marked;
}

/* The first pass over the candidates, and what it leaves. */
struct collect {
	const struct itr_netmap *map;
	const struct itr_peer_addr *client, *cands;
	const struct itr_pid *const *pids;
	const uint16_t *groups;
	const struct itr_pid *cpid;
	struct cost_cache *cache;
	struct rank_scratch *sc;
	size_t *bucket_end;
	uint8_t *bucket_sorted;
	size_t m, externals;
	bool ascending; /* the buckets came nearest first: no grouping pass */
};

/* A PID no candidate has: the run before the first. */
static const struct itr_pid no_run;

/* Where collect_candidates takes each candidate's PID from. */
enum pid_source {
	PIDS_LOOKUP, /* the map's trie (none without a map) */
	PIDS_GIVEN,  /* pids[i] */
	PIDS_GROUPS, /* groups[i]: an index into the map's PIDs (itr_rank_grouped) */
};

/* A group no candidate has (groups are 16 bits). */
#define NO_GROUP 0x10000u

/* Unique candidates other than the client into sc->items, keyed by cost,
 * and their facts into sc->info. A store hands a PID's candidates
 * together, so cost, side and bucket are worked out once per run of one
 * PID: the rest of the pass is a store or two per candidate (callgrind,
 * numwant 200 into swarms of 1,000: this pass was three fifths of the
 * ranking while it did all of it per candidate). The memory store hands
 * its groups nearest first: then the cost buckets are found here, and
 * need no grouping pass. Inlined with constant flags, so each caller's
 * case gets its own copy without the tests. */
static inline __attribute__((always_inline)) void
collect_candidates(struct collect *x, size_t n, bool distinct, enum pid_source source)
{
	/* everything the loop reads, in locals: its stores into info (which
	 * holds PID pointers) would otherwise make the compiler reload them */
	struct rank_scratch *sc = x->sc;
	struct sort_item *items = sc->items;
	struct cand_info *info = sc->info;
	const struct itr_peer_addr *client = x->client, *cands = x->cands;
	const struct itr_pid *const *pids = x->pids;
	const uint16_t *groups = x->groups;
	size_t npids = source == PIDS_GROUPS ? itr_netmap_pid_count(x->map) : 0;
	uint32_t run_group = NO_GROUP;
	const struct itr_pid *cpid = x->cpid;
	const struct itr_netmap *map = x->map;
	uint16_t client_port = client->port;
	size_t m = 0, externals = 0, bucket_start = 0, run_start = 0;
	bool ascending = true;
	const struct itr_pid *run_pid = &no_run; /* equal to no candidate's */
	uint32_t run_cost = 0;
	uint8_t run_side = SIDE_EXTERNAL;
	uint64_t key = 0;
	for (size_t i = 0; i < n; i++) {
		const struct itr_peer_addr *c = &cands[i];
		if (c->port == client_port && same_address(c, client))
			continue;
		/* the duplicate check needs every tie key; else sort_bucket
		 * makes them for the buckets it sorts */
		if (!distinct) {
			sc->ties[i] = tie_key(c);
			if (seen_before(sc, cands, (uint32_t)i))
				continue;
		}
		const struct itr_pid *pid;
		if (source == PIDS_GROUPS) {
			uint32_t g = groups[i];
			if (g == run_group) {
				pid = run_pid;
			} else {
				pid = g == 0       ? NULL
				      : g <= npids ? itr_netmap_pid_at(map, g - 1)
				                   : itr_netmap_lookup(map, c->family, c->addr);
				run_group = g <= npids ? g : NO_GROUP;
			}
		} else {
			pid = source == PIDS_GIVEN ? pids[i]
			      : map                ? itr_netmap_lookup(map, c->family, c->addr)
			                           : NULL;
		}
		if (pid != run_pid) {
			if (run_side == SIDE_EXTERNAL)
				externals += m - run_start;
			run_start = m;
			run_pid = pid;
			run_cost = map ? cached_cost(x->cache, map, cpid, pid) : 0;
			run_side = SIDE_EXTERNAL;
			if (cpid && pid && pid->asn == cpid->asn)
				run_side = pid == cpid ? SIDE_OWN_PID : SIDE_OWN_AS;
			/* Without a client PID every cost is the same constant:
			 * one bucket, ordered by priority alone - plain BEP 40. */
			key = (uint64_t)(cpid ? run_cost : 0) << 32;
			if (m > 0 && key != items[m - 1].key) {
				ascending = ascending && key > items[m - 1].key;
				x->bucket_end[bucket_start] = m;
				x->bucket_sorted[bucket_start] = 0;
				bucket_start = m;
			}
		}
		/* field by field: a compound literal also zeroes the padding,
		 * and items' group (group_by_cost's scratch) needs no value */
		info[i].pid = run_pid;
		info[i].cost = run_cost;
		info[i].side = run_side;
		info[i].taken = 0;
		info[i].gateway = 0;
		items[m].key = key;
		items[m].idx = (uint32_t)i;
		m++;
	}
	if (run_side == SIDE_EXTERNAL)
		externals += m - run_start;
	x->bucket_end[bucket_start] = m;
	x->bucket_sorted[bucket_start] = 0;
	x->m = m;
	x->externals = externals;
	x->ascending = ascending;
}

/* rotate_ties: buckets of more candidates than this are rotated; smaller
 * ones keep BEP 40 order ("Rotated ties" at the top of this file). */
#define ROTATE_MIN_BUCKET 64

/* The rank order is produced lazily, one cost bucket at a time: items are
 * grouped by cost first (a radix pass or two, costs are small), and a
 * bucket gets its BEP 40 priorities, tie keys and sort only when a pass
 * reaches it. A typical request (numwant 50 of 1,000) fills up inside the
 * first bucket or two, so most candidates are never hashed or sorted. */
struct rank_walk {
	struct rank_scratch *sc;
	const struct itr_peer_addr *client, *cands;
	struct sort_item *e; /* grouped by cost; sorted inside sorted buckets */
	size_t m;
	size_t *bucket_end; /* per item index: end of its bucket */
	uint8_t *bucket_sorted;
	bool rotate;        /* rotate_ties: large buckets are rotated, not sorted */
	bool ties_ready;    /* sc->ties filled for every candidate (duplicate check) */
	uint32_t tie_start; /* itr_rank_tie_offset of the client */
};

/* packed[i] = ~priority << 32 | index for the items e[0, n): the words a
 * bucket sorts. */
static void pack_priorities(const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                            const struct sort_item *e, size_t n, uint64_t *packed)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t prio = bep40_priority(client, &cands[e[i].idx]);
		packed[i] = (uint64_t)(uint32_t)~prio << 32 | e[i].idx;
	}
}

#ifdef ITR_HAVE_X86_CRC
/* The same for an IPv4 client with the crc32 instruction, inline: a call
 * to bep40_priority and one to crc32c_word per candidate cost as much as
 * the hashing (perf: a tenth of the ranking at numwant 200). */
__attribute__((target("sse4.2"))) static void
pack_priorities_v4_hw(const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                      const struct sort_item *e, size_t n, uint64_t *packed)
{
	uint32_t x = itr_be32_get(client->addr);
	for (size_t i = 0; i < n; i++) {
		const struct itr_peer_addr *c = &cands[e[i].idx];
		uint32_t y = itr_be32_get(c->addr), prio;
		if (c->family == 4 && y != x)
			prio = ~(uint32_t)__builtin_ia32_crc32di(~0u, bep40_v4_word(x, y));
		else
			prio = bep40_priority(client, c); /* same address, or IPv6 */
		packed[i] = (uint64_t)(uint32_t)~prio << 32 | e[i].idx;
	}
}
#endif

static void sort_bucket(struct rank_walk *w, size_t s)
{
	size_t t = w->bucket_end[s];
	if (w->bucket_sorted[s])
		return;
	struct sort_item *e = w->e;
	if (w->rotate && t - s > ROTATE_MIN_BUCKET) {
		/* Input order from the client's own starting point. The low
		 * half of a key is ~priority elsewhere: all ones here, so the
		 * priority listed is 0 (not computed). */
		size_t n = t - s, r = w->tie_start % n;
		if (r) {
			memcpy(w->sc->tmp, e + s, r * sizeof(*e));
			memmove(e + s, e + s + r, (n - r) * sizeof(*e));
			memcpy(e + s + (n - r), w->sc->tmp, r * sizeof(*e));
		}
		for (size_t i = s; i < t; i++)
			e[i].key |= 0xffffffffu;
		w->bucket_sorted[s] = 1;
		return;
	}
	uint64_t *ties = w->sc->ties;
	if (!w->ties_ready)
		for (size_t i = s; i < t; i++)
			ties[e[i].idx] = tie_key(&w->cands[e[i].idx]);
	/* Both sorts below keep input order among equal priorities. A store
	 * that hands candidates in address order (the memory store's records
	 * are sorted so) gives a bucket whose input order is the tie order
	 * already: then no run needs the tie pass. */
	bool in_tie_order = true;
	for (size_t i = s + 1; i < t && in_tie_order; i++)
		in_tie_order = ties[e[i].idx] > ties[e[i - 1].idx];
	if (t - s <= PACKED_SORT_MAX) {
		/* One cost: the order is ~priority, then input index (what the
		 * stable sort of items gave), both in one 64-bit word. */
		uint64_t *packed = (uint64_t *)(w->sc->tmp + s), *spare = packed + (t - s);
		uint64_t cost = e[s].key & 0xffffffff00000000ull;
#ifdef ITR_HAVE_X86_CRC
		if (crc32c_hw && w->client->family == 4)
			pack_priorities_v4_hw(w->client, w->cands, e + s, t - s, packed);
		else
#endif
			pack_priorities(w->client, w->cands, e + s, t - s, packed);
		const uint64_t *res = sort_u64(packed, spare, t - s);
		for (size_t i = s; i < t; i++) {
			e[i].key = cost | res[i - s] >> 32;
			e[i].idx = (uint32_t)res[i - s];
		}
	} else {
		for (size_t i = s; i < t; i++) {
			uint32_t prio = bep40_priority(w->client, &w->cands[e[i].idx]);
			e[i].key = (e[i].key & 0xffffffff00000000ull) | (uint32_t)~prio;
		}
		struct sort_item *res = key_sort(e + s, w->sc->tmp + s, t - s);
		if (res != e + s)
			memcpy(e + s, res, (t - s) * sizeof(*e));
	}
	for (size_t a = s; a < t && !in_tie_order;) {
		size_t b = a + 1;
		while (b < t && e[b].key == e[a].key)
			b++;
		if (b - a > 1)
			tie_sort(e + a, b - a, ties, w->cands);
		a = b;
	}
	w->bucket_sorted[s] = 1;
}

size_t itr_rank(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                const struct itr_peer_addr *client, const struct itr_peer_addr *cands, size_t n,
                size_t want, struct itr_ranked_peer *out)
{
	return itr_rank_known(map, policy, client, cands, NULL, false, n, want, out);
}

static size_t rank_with(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                        const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                        const struct itr_pid *const *pids, const uint16_t *groups, bool distinct,
                        size_t n, size_t want, struct itr_ranked_peer *out)
{
	if (want == 0 || n == 0 || n >= UINT32_MAX / 4)
		return 0;

	size_t seen_slots = 16;
	while (seen_slots < 2 * n)
		seen_slots *= 2;
	struct sort_item stack_items[2 * RANK_STACK_MAX];
	uint64_t stack_ties[RANK_STACK_MAX];
	struct cand_info stack_info[RANK_STACK_MAX];
	uint32_t stack_seen[RANK_STACK_SEEN];
	size_t stack_ends[RANK_STACK_MAX];
	uint8_t stack_sorted[RANK_STACK_MAX];
	void *heap = NULL;
	struct rank_scratch sc;
	size_t *bucket_end;
	uint8_t *bucket_sorted;
	if (n <= RANK_STACK_MAX && seen_slots <= RANK_STACK_SEEN) {
		sc.items = stack_items;
		sc.tmp = stack_items + RANK_STACK_MAX;
		sc.ties = stack_ties;
		sc.info = stack_info;
		sc.seen = stack_seen;
		bucket_end = stack_ends;
		bucket_sorted = stack_sorted;
	} else {
		size_t per = 2 * sizeof(struct sort_item) + sizeof(uint64_t) +
		             sizeof(struct cand_info) + sizeof(size_t) + 1;
		heap = malloc(n * per + seen_slots * sizeof(uint32_t));
		if (!heap)
			return 0;
		sc.items = heap;
		sc.tmp = sc.items + n;
		sc.ties = (uint64_t *)(sc.tmp + n);
		bucket_end = (size_t *)(sc.ties + n);
		sc.info = (struct cand_info *)(bucket_end + n);
		sc.seen = (uint32_t *)(sc.info + n);
		bucket_sorted = (uint8_t *)(sc.seen + seen_slots);
	}
	sc.seen_mask = seen_slots - 1;
	if (!distinct)
		memset(sc.seen, 0, seen_slots * sizeof(uint32_t));

	pthread_once(&crc32c_once, crc32c_init);
	const struct itr_pid *cpid =
	    map ? itr_netmap_lookup(map, client->family, client->addr) : NULL;
	struct cost_cache cache;
	memset(&cache, 0, sizeof(cache));

	struct collect col = {.map = map,
	                      .client = client,
	                      .cands = cands,
	                      .pids = pids,
	                      .groups = groups,
	                      .cpid = cpid,
	                      .cache = &cache,
	                      .sc = &sc,
	                      .bucket_end = bucket_end,
	                      .bucket_sorted = bucket_sorted};
	/* the tracker's call (its store's records are distinct, and their
	 * groups known) gets a copy of the pass with the tests folded away */
	if (distinct && groups && map)
		collect_candidates(&col, n, true, PIDS_GROUPS);
	else if (groups && map)
		collect_candidates(&col, n, distinct, PIDS_GROUPS);
	else
		collect_candidates(&col, n, distinct, pids && map ? PIDS_GIVEN : PIDS_LOOKUP);
	size_t m = col.m, externals = col.externals;
	bool ascending = col.ascending;
	struct sort_item *e = sc.items;
	if (!ascending) {
		e = group_by_cost(sc.items, sc.tmp, m);
		if (e != sc.items) {
			memcpy(sc.items, e, m * sizeof(*e));
			e = sc.items;
		}
		for (size_t s = 0; s < m;) {
			size_t t = s + 1;
			while (t < m && e[t].key == e[s].key)
				t++;
			bucket_end[s] = t;
			bucket_sorted[s] = 0;
			s = t;
		}
	}
	struct rank_walk w = {.sc = &sc,
	                      .client = client,
	                      .cands = cands,
	                      .e = e,
	                      .m = m,
	                      .bucket_end = bucket_end,
	                      .bucket_sorted = bucket_sorted,
	                      .rotate = policy->rotate_ties,
	                      .ties_ready = !distinct};
	if (w.rotate)
		w.tie_start = itr_rank_tie_offset(policy->gateway_salt, client);

	size_t list_len = want < m ? want : m;
	size_t taken = 0;
	if (!cpid) {
		for (size_t s = 0; s < m && taken < list_len; s = bucket_end[s]) {
			sort_bucket(&w, s);
			for (size_t i = s; i < bucket_end[s] && taken < list_len; i++) {
				sc.info[e[i].idx].taken = 1;
				taken++;
			}
		}
	} else {
		size_t ext_gateways = 0; /* external gateways not taken yet */
		size_t min_external = policy->min_external;
		size_t max_external = policy->max_external;
		if (policy->gateways) {
			/* Count the client's AS peers that outscore it; it is a
			 * gateway while fewer than `gateways` do, so every AS has
			 * at least one and a lone peer is always one. */
			uint32_t own = itr_rank_gateway_score(policy->gateway_salt, client);
			size_t better = 0;
			for (size_t i = 0; i < m && better < policy->gateways; i++) {
				const struct itr_peer_addr *c = &cands[e[i].idx];
				if (sc.info[e[i].idx].side == SIDE_EXTERNAL)
					continue;
				uint32_t score = itr_rank_gateway_score(policy->gateway_salt, c);
				better += gateway_before(score, c, own, client);
			}
			if (better >= policy->gateways)
				min_external = max_external = 0;
			else if (max_external || min_external)
				ext_gateways = mark_external_gateways(&sc, cands, e, m, policy);
		}
		size_t reserve = min_external;
		if (reserve > externals)
			reserve = externals;
		if (reserve > list_len)
			reserve = list_len;
		size_t ext_cap = max_external > reserve ? max_external : reserve;
		uint64_t pid_cap = pct_of(policy->max_own_pid_pct, list_len);
		uint64_t as_cap = pct_of(policy->max_own_as_pct, list_len);

		/* Pass 1: reserve the best externals, other ASes' gateways
		 * first; buckets holding none are passed over unsorted. */
		size_t ext_taken = 0;
		for (int sweep = ext_gateways ? 0 : 1; sweep < 2; sweep++) {
			for (size_t s = 0; s < m && ext_taken < reserve; s = bucket_end[s]) {
				bool any = false;
				for (size_t i = s; i < bucket_end[s] && !any; i++) {
					const struct cand_info *ci = &sc.info[e[i].idx];
					any = ci->side == SIDE_EXTERNAL && !ci->taken &&
					      (sweep || ci->gateway);
				}
				if (!any)
					continue;
				sort_bucket(&w, s);
				for (size_t i = s; i < bucket_end[s] && ext_taken < reserve; i++) {
					struct cand_info *ci = &sc.info[e[i].idx];
					if (ci->side == SIDE_EXTERNAL && !ci->taken &&
					    (sweep || ci->gateway)) {
						ci->taken = 1;
						ext_taken++;
						ext_gateways -= ci->gateway;
					}
				}
			}
		}
		taken = ext_taken;

		/* Pass 2: everything else under the caps. A bucket holding
		 * nothing the caps allow at its start is passed over unsorted:
		 * only taking changes the caps, so it would yield nothing. With
		 * the default policy most lists take no or few outsiders, which
		 * spares hashing and sorting the buckets outside the AS. */
		size_t pid_taken = 0, as_taken = 0;
		for (size_t s = 0; s < m && taken < list_len; s = bucket_end[s]) {
			bool any = false;
			for (size_t i = s; i < bucket_end[s] && !any; i++) {
				const struct cand_info *ci = &sc.info[e[i].idx];
				if (ci->taken)
					continue;
				if (ci->side == SIDE_EXTERNAL)
					any = ext_taken < ext_cap && (ci->gateway || !ext_gateways);
				else
					any = as_taken < as_cap &&
					      (ci->side != SIDE_OWN_PID || pid_taken < pid_cap);
			}
			if (!any)
				continue;
			sort_bucket(&w, s);
			for (size_t i = s; i < bucket_end[s] && taken < list_len; i++) {
				struct cand_info *ci = &sc.info[e[i].idx];
				if (ci->taken)
					continue;
				if (ci->side == SIDE_EXTERNAL) {
					if (ext_taken >= ext_cap)
						continue;
					/* other ASes' gateways fill the budget first */
					if (!ci->gateway && ext_gateways)
						continue;
					ext_taken++;
					ext_gateways -= ci->gateway;
				} else {
					if (as_taken >= as_cap)
						continue;
					if (ci->side == SIDE_OWN_PID) {
						if (pid_taken >= pid_cap)
							continue;
						pid_taken++;
					}
					as_taken++;
				}
				ci->taken = 1;
				taken++;
			}
		}

		/* Pass 2b: the nearest outsiders pass 2 held back while the
		 * other ASes' gateways were owed their places (a gateway that
		 * sorted after them in their bucket, or came in a later one)
		 * fill what is left of the budget, now that the gateways are
		 * in. Without it a budget larger than the gateways ended short. */
		for (size_t s = 0; s < m && taken < list_len && ext_taken < ext_cap;
		     s = bucket_end[s]) {
			bool any = false;
			for (size_t i = s; i < bucket_end[s] && !any; i++) {
				const struct cand_info *ci = &sc.info[e[i].idx];
				any = ci->side == SIDE_EXTERNAL && !ci->taken;
			}
			if (!any)
				continue;
			sort_bucket(&w, s);
			for (size_t i = s;
			     i < bucket_end[s] && taken < list_len && ext_taken < ext_cap; i++) {
				struct cand_info *ci = &sc.info[e[i].idx];
				if (ci->side != SIDE_EXTERNAL || ci->taken)
					continue;
				ci->taken = 1;
				ext_taken++;
				taken++;
			}
		}

		/* Pass 3: top up to a usable list from what the caps skipped. */
		size_t floor_len = policy->min_list < list_len ? policy->min_list : list_len;
		for (size_t s = 0; s < m && taken < floor_len; s = bucket_end[s]) {
			sort_bucket(&w, s);
			for (size_t i = s; i < bucket_end[s] && taken < floor_len; i++) {
				struct cand_info *ci = &sc.info[e[i].idx];
				if (!ci->taken) {
					ci->taken = 1;
					taken++;
				}
			}
		}
	}

	/* Taken candidates only live in sorted buckets. */
	size_t k = 0;
	for (size_t s = 0; s < m && k < taken; s = bucket_end[s]) {
		if (!bucket_sorted[s])
			continue;
		for (size_t i = s; i < bucket_end[s] && k < taken; i++) {
			const struct cand_info *ci = &sc.info[e[i].idx];
			if (!ci->taken)
				continue;
			out[k].peer = cands[e[i].idx];
			out[k].pid = ci->pid;
			out[k].cost = ci->cost;
			out[k].priority = ~(uint32_t)e[i].key;
			k++;
		}
	}
	free(heap);
	return k;
}

size_t itr_rank_known(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                      const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                      const struct itr_pid *const *pids, bool distinct, size_t n, size_t want,
                      struct itr_ranked_peer *out)
{
	return rank_with(map, policy, client, cands, pids, NULL, distinct, n, want, out);
}

size_t itr_rank_grouped(const struct itr_netmap *map, const struct itr_rank_policy *policy,
                        const struct itr_peer_addr *client, const struct itr_peer_addr *cands,
                        const uint16_t *groups, bool distinct, size_t n, size_t want,
                        struct itr_ranked_peer *out)
{
	/* past 65535 PIDs a group no longer names one */
	if (map && itr_netmap_pid_count(map) >= ITR_RANK_GROUPS_MAX)
		groups = NULL;
	return rank_with(map, policy, client, cands, NULL, groups, distinct, n, want, out);
}

/* ---- addresses -------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *port)
{
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	if (v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded to IPv4 so that it ranks,
 * looks up and prints like the IPv4 address it is. */
static void fold_mapped(struct itr_peer_addr *p)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (p->family == 6 && memcmp(p->addr, prefix, 12) == 0) {
		memmove(p->addr, p->addr + 12, 4);
		memset(p->addr + 4, 0, 12);
		p->family = 4;
	}
}

int itr_peer_addr_parse(const char *text, struct itr_peer_addr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text = NULL;
	bool bracketed = text && text[0] == '[';
	size_t len;

	if (!text)
		return -1;
	memset(out, 0, sizeof(*out));
	if (bracketed) {
		const char *close = strchr(text, ']');
		if (!close)
			return -1;
		len = (size_t)(close - text - 1);
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return -1;
		text++;
	} else {
		const char *colon = strchr(text, ':');
		len = strlen(text);
		/* One colon: IPv4 with a port. More: a bare IPv6 address. */
		if (colon && !strchr(colon + 1, ':')) {
			len = (size_t)(colon - text);
			port_text = colon + 1;
		}
	}
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	if (port_text && parse_port(port_text, &out->port) < 0)
		return -1;
	if (strchr(host, ':')) {
		if (inet_pton(AF_INET6, host, out->addr) != 1)
			return -1;
		out->family = 6;
		fold_mapped(out);
	} else {
		if (bracketed || inet_pton(AF_INET, host, out->addr) != 1)
			return -1;
		out->family = 4;
	}
	return 0;
}

const char *itr_peer_addr_ntop(const struct itr_peer_addr *peer, char *buf, size_t len)
{
	return inet_ntop(peer->family == 4 ? AF_INET : AF_INET6, peer->addr, buf, (socklen_t)len);
}
