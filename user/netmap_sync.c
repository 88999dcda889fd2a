/* netmap_sync.c - make the kernel's LPM tries hold exactly a network map.
 *
 * The desired set (itr_netmap_kernel_entries) is diffed against what the
 * tries hold: the previous map when the caller knows it, else the tries'
 * real content read back. Updates (adds and changes) go first and deletes
 * last, so an address covered before and after a reload is covered at every
 * instant: a changed prefix is overwritten in place (the trie swaps the node
 * under RCU) and a prefix that disappears is removed only after everything
 * that replaces it is in. Batched syscalls are used where the kernel
 * supports them for LPM tries, single-element calls otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "netmap_build.h"

#define BATCH 8192

static int cmp_kentry(const void *a, const void *b)
{
	const struct itr_netmap_kentry *x = a, *y = b;
	return itr_prefix_cmp(&x->prefix, &y->prefix);
}

void itr_netmap_kentries_sort(struct itr_netmap_kentry *entries, size_t n)
{
	if (n > 1)
		qsort(entries, n, sizeof(*entries), cmp_kentry);
}

static struct itr_pid_info info_of(const struct itr_pid *p, uint32_t flags)
{
	return (struct itr_pid_info){.pid = p->id, .asn = p->asn, .loc = p->loc, .flags = flags};
}

static void put_default(struct itr_netmap_kentry *e, int family, const struct itr_pid *p)
{
	memset(e, 0, sizeof(*e));
	e->prefix.family = (uint8_t)family;
	e->info = info_of(p, ITR_PID_F_DEFAULT);
}

int itr_netmap_kernel_entries(const struct itr_netmap *map, struct itr_netmap_kentry **out,
                              size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!map)
		return 0;
	size_t total = map->nentries + (map->default_pid ? 2 : 0);
	struct itr_netmap_kentry *e = calloc(total + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	size_t k = 0;
	bool v4_default = map->default_pid != NULL, v6_default = map->default_pid != NULL;
	/* The /0 defaults sort first within their family; the builder refuses
	 * an explicit /0 next to a default PID, so they never collide. */
	for (size_t i = 0; i < map->nentries; i++) {
		const struct nm_entry *src = &map->entries[i];
		if (v4_default && src->prefix.family == 4) {
			put_default(&e[k++], 4, map->default_pid);
			v4_default = false;
		}
		if (v6_default && src->prefix.family == 6) {
			if (v4_default) {
				put_default(&e[k++], 4, map->default_pid);
				v4_default = false;
			}
			put_default(&e[k++], 6, map->default_pid);
			v6_default = false;
		}
		e[k].prefix = src->prefix;
		e[k].info = info_of(&map->pids[src->pid], 0);
		k++;
	}
	if (v4_default)
		put_default(&e[k++], 4, map->default_pid);
	if (v6_default)
		put_default(&e[k++], 6, map->default_pid);
	*out = e;
	*n = k;
	return 0;
}

static bool same_info(const struct itr_pid_info *a, const struct itr_pid_info *b)
{
	return a->pid == b->pid && a->asn == b->asn && a->loc == b->loc && a->flags == b->flags;
}

/* A sorted sequence of kernel entries: an array, or a map's entries with
 * its default /0s spliced in, read in place so a reload of a big map does
 * not copy both maps first. */
struct ksrc {
	const struct itr_netmap_kentry *arr;
	const struct itr_netmap *map;
	size_t n;
	size_t v4_default_at, v6_default_at; /* SIZE_MAX: none */
};

static void ksrc_array(struct ksrc *s, const struct itr_netmap_kentry *arr, size_t n)
{
	*s =
	    (struct ksrc){.arr = arr, .n = n, .v4_default_at = SIZE_MAX, .v6_default_at = SIZE_MAX};
}

static void ksrc_map(struct ksrc *s, const struct itr_netmap *map)
{
	*s = (struct ksrc){.map = map, .v4_default_at = SIZE_MAX, .v6_default_at = SIZE_MAX};
	if (!map)
		return;
	s->n = map->nentries;
	if (map->default_pid) {
		/* Each /0 default sorts first in its family. */
		s->v4_default_at = 0;
		s->v6_default_at = itr_netmap_prefix_count_family(map, 4) + 1;
		s->n += 2;
	}
}

static void ksrc_get(const struct ksrc *s, size_t k, struct itr_netmap_kentry *out)
{
	if (s->arr) {
		*out = s->arr[k];
		return;
	}
	if (k == s->v4_default_at || k == s->v6_default_at) {
		put_default(out, k == s->v4_default_at ? 4 : 6, s->map->default_pid);
		return;
	}
	size_t i = k;
	if (s->v4_default_at != SIZE_MAX)
		i -= k > s->v6_default_at ? 2 : 1;
	const struct nm_entry *e = &s->map->entries[i];
	out->prefix = e->prefix;
	out->info = info_of(&s->map->pids[e->pid], 0);
}

struct opvec {
	struct itr_netmap_op *v;
	size_t n, cap;
};

static int opvec_push(struct opvec *ov, enum itr_netmap_op_kind kind,
                      const struct itr_netmap_kentry *e)
{
	if (nm_grow((void **)&ov->v, &ov->cap, ov->n + 1, sizeof(*ov->v)))
		return -ENOMEM;
	ov->v[ov->n].kind = kind;
	ov->v[ov->n].entry = *e;
	ov->n++;
	return 0;
}

/* One merge pass; updates and deletes are collected apart and the deletes
 * appended after every update. */
static int diff_sources(const struct ksrc *old, const struct ksrc *new_src,
                        struct itr_netmap_op **ops, size_t *nops)
{
	struct opvec up = {0}, del = {0};
	struct itr_netmap_kentry o, n;
	size_t i = 0, j = 0;
	int rc = 0;
	*ops = NULL;
	*nops = 0;
	if (i < old->n)
		ksrc_get(old, i, &o);
	if (j < new_src->n)
		ksrc_get(new_src, j, &n);
	while (!rc && (i < old->n || j < new_src->n)) {
		int c = i == old->n       ? 1
		        : j == new_src->n ? -1
		                          : itr_prefix_cmp(&o.prefix, &n.prefix);
		if (c < 0)
			rc = opvec_push(&del, ITR_NETMAP_OP_DELETE, &o);
		else if (c > 0)
			rc = opvec_push(&up, ITR_NETMAP_OP_ADD, &n);
		else if (!same_info(&o.info, &n.info))
			rc = opvec_push(&up, ITR_NETMAP_OP_CHANGE, &n);
		if (c <= 0 && ++i < old->n)
			ksrc_get(old, i, &o);
		if (c >= 0 && ++j < new_src->n)
			ksrc_get(new_src, j, &n);
	}
	if (!rc && del.n) {
		rc = -ENOMEM;
		void *nv = realloc(up.v, (up.n + del.n) * sizeof(*up.v));
		if (nv) {
			up.v = nv;
			memcpy(up.v + up.n, del.v, del.n * sizeof(*del.v));
			up.n += del.n;
			rc = 0;
		}
	}
	free(del.v);
	if (rc) {
		free(up.v);
		return rc;
	}
	if (up.n == 0) {
		free(up.v);
		return 0;
	}
	*ops = up.v;
	*nops = up.n;
	return 0;
}

int itr_netmap_diff(const struct itr_netmap_kentry *old, size_t nold,
                    const struct itr_netmap_kentry *new_entries, size_t nnew,
                    struct itr_netmap_op **ops, size_t *nops)
{
	struct ksrc a, b;
	ksrc_array(&a, old, nold);
	ksrc_array(&b, new_entries, nnew);
	return diff_sources(&a, &b, ops, nops);
}

/* ---- reading the tries -------------------------------------------------- */

static void clear_host_bits(struct itr_prefix *p)
{
	unsigned max = p->family == 4 ? 32 : 128;
	for (unsigned bit = p->len; bit < max; bit++)
		p->addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
}

struct kset {
	struct itr_netmap_kentry *e;
	size_t n, cap;
};

static int kset_add(struct kset *s, int family, const uint8_t *key, size_t addr_len,
                    const struct itr_pid_info *info)
{
	if (nm_grow((void **)&s->e, &s->cap, s->n + 1, sizeof(*s->e)))
		return -ENOMEM;
	struct itr_netmap_kentry *e = &s->e[s->n++];
	memset(e, 0, sizeof(*e));
	uint32_t plen;
	memcpy(&plen, key, 4);
	e->prefix.family = (uint8_t)family;
	e->prefix.len = (uint8_t)(plen > addr_len * 8 ? addr_len * 8 : plen);
	memcpy(e->prefix.addr, key + 4, addr_len);
	clear_host_bits(&e->prefix);
	e->info = *info;
	return 0;
}

static int dump_one(int fd, int family, struct kset *s)
{
	size_t addr_len = family == 4 ? 4 : 16;
	size_t ksz = 4 + addr_len;
	uint8_t *keys = malloc(BATCH * ksz);
	struct itr_pid_info *vals = malloc(BATCH * sizeof(*vals));
	uint8_t token[20];
	int rc = 0;
	bool first = true, batched = true;
	if (!keys || !vals) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = BATCH;
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		int r = bpf_map_lookup_batch(fd, first ? NULL : token, token, keys, vals, &count,
		                             &opts);
		if (r < 0 && r != -ENOENT) {
			if (first && (r == -EINVAL || r == -EOPNOTSUPP || r == -524 /* ENOTSUPP */))
				batched = false;
			else
				rc = r;
			break;
		}
		for (__u32 i = 0; i < count; i++)
			if ((rc = kset_add(s, family, keys + i * ksz, addr_len, &vals[i])))
				goto out;
		first = false;
		if (r == -ENOENT)
			break;
	}
	if (!batched) {
		uint8_t key[20], next[20];
		struct itr_pid_info info;
		bool have = false;
		for (;;) {
			int r = bpf_map_get_next_key(fd, have ? key : NULL, next);
			if (r == -ENOENT)
				break;
			if (r < 0) {
				rc = r;
				break;
			}
			memcpy(key, next, ksz);
			have = true;
			r = bpf_map_lookup_elem(fd, key, &info);
			if (r == -ENOENT)
				continue; /* removed under our feet */
			if (r < 0) {
				rc = r;
				break;
			}
			if ((rc = kset_add(s, family, key, addr_len, &info)))
				break;
		}
	}
out:
	free(keys);
	free(vals);
	return rc;
}

int itr_netmap_dump_bpf(int lpm_v4_fd, int lpm_v6_fd, struct itr_netmap_kentry **out, size_t *n)
{
	struct kset s = {0};
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (lpm_v4_fd >= 0)
		rc = dump_one(lpm_v4_fd, 4, &s);
	if (!rc && lpm_v6_fd >= 0)
		rc = dump_one(lpm_v6_fd, 6, &s);
	if (rc) {
		free(s.e);
		return rc;
	}
	itr_netmap_kentries_sort(s.e, s.n);
	*out = s.e;
	*n = s.n;
	return 0;
}

/* ---- writing the tries -------------------------------------------------- */

static bool batch_unsupported(int r)
{
	return r == -EINVAL || r == -EOPNOTSUPP || r == -524 /* ENOTSUPP */;
}

static int update_all(int fd, const uint8_t *keys, size_t ksz, const struct itr_pid_info *vals,
                      size_t n)
{
	size_t done = 0;
	while (done < n) {
		__u32 count = (__u32)(n - done < BATCH ? n - done : BATCH);
		LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
		int r = bpf_map_update_batch(fd, keys + done * ksz, vals + done, &count, &opts);
		if (r == 0) {
			done += count;
			continue;
		}
		if (!batch_unsupported(r) || count != 0)
			return r;
		/* Per element, in the same order. */
		for (; done < n; done++) {
			r = bpf_map_update_elem(fd, keys + done * ksz, vals + done, BPF_ANY);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int delete_all(int fd, const uint8_t *keys, size_t ksz, size_t n)
{
	size_t done = 0;
	while (done < n) {
		__u32 count = (__u32)(n - done < BATCH ? n - done : BATCH);
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		int r = bpf_map_delete_batch(fd, keys + done * ksz, &count, &opts);
		if (r == 0) {
			done += count;
			continue;
		}
		if (r == -ENOENT) {
			/* Already gone: the goal is reached for it; skip it. */
			done += count + 1;
			continue;
		}
		if (!batch_unsupported(r) || count != 0)
			return r;
		for (; done < n; done++) {
			r = bpf_map_delete_elem(fd, keys + done * ksz);
			if (r < 0 && r != -ENOENT)
				return r;
		}
	}
	return 0;
}

struct family_ops {
	uint8_t *keys;
	struct itr_pid_info *vals;
	size_t n;
};

static void put_key(uint8_t *dst, const struct itr_prefix *p)
{
	uint32_t plen = p->len;
	memcpy(dst, &plen, 4);
	memcpy(dst + 4, p->addr, p->family == 4 ? 4 : 16);
}

/* Split ops[from, to) by family into key/value arrays. */
static int split(const struct itr_netmap_op *ops, size_t from, size_t to, struct family_ops *v4,
                 struct family_ops *v6)
{
	size_t n4 = 0, n6 = 0;
	for (size_t i = from; i < to; i++)
		if (ops[i].entry.prefix.family == 4)
			n4++;
		else
			n6++;
	v4->keys = malloc((n4 + 1) * sizeof(struct itr_lpm_v4_key));
	v4->vals = malloc((n4 + 1) * sizeof(struct itr_pid_info));
	v6->keys = malloc((n6 + 1) * sizeof(struct itr_lpm_v6_key));
	v6->vals = malloc((n6 + 1) * sizeof(struct itr_pid_info));
	if (!v4->keys || !v4->vals || !v6->keys || !v6->vals)
		return -ENOMEM;
	v4->n = v6->n = 0;
	for (size_t i = from; i < to; i++) {
		const struct itr_netmap_kentry *e = &ops[i].entry;
		if (e->prefix.family == 4) {
			put_key(v4->keys + v4->n * sizeof(struct itr_lpm_v4_key), &e->prefix);
			v4->vals[v4->n++] = e->info;
		} else {
			put_key(v6->keys + v6->n * sizeof(struct itr_lpm_v6_key), &e->prefix);
			v6->vals[v6->n++] = e->info;
		}
	}
	return 0;
}

static void family_ops_free(struct family_ops *f)
{
	free(f->keys);
	free(f->vals);
	f->keys = NULL;
	f->vals = NULL;
}

/* Write what split() produced. A family whose trie would overflow if every
 * add went in before the first delete (a trie left full by an earlier run)
 * has its deletes written first: a moment without some old prefixes beats
 * a reload that cannot happen at all. */
static int write_split(const int fds[2], struct family_ops up[2], struct family_ops del[2],
                       const bool deletes_first[2])
{
	static const size_t ksz[2] = {sizeof(struct itr_lpm_v4_key), sizeof(struct itr_lpm_v6_key)};
	int rc = 0;
	for (int f = 0; f < 2 && !rc; f++)
		if (deletes_first[f])
			rc = delete_all(fds[f], del[f].keys, ksz[f], del[f].n);
	for (int f = 0; f < 2 && !rc; f++)
		rc = update_all(fds[f], up[f].keys, ksz[f], up[f].vals, up[f].n);
	for (int f = 0; f < 2 && !rc; f++)
		if (!deletes_first[f])
			rc = delete_all(fds[f], del[f].keys, ksz[f], del[f].n);
	return rc;
}

static int write_ops(int lpm_v4_fd, int lpm_v6_fd, const struct itr_netmap_op *ops, size_t nops,
                     const bool deletes_first[2])
{
	struct family_ops up[2] = {0}, del[2] = {0};
	const int fds[2] = {lpm_v4_fd, lpm_v6_fd};
	size_t nup = 0;
	while (nup < nops && ops[nup].kind != ITR_NETMAP_OP_DELETE)
		nup++;
	int rc = split(ops, 0, nup, &up[0], &up[1]);
	if (!rc)
		rc = split(ops, nup, nops, &del[0], &del[1]);
	if (!rc)
		rc = write_split(fds, up, del, deletes_first);
	for (int f = 0; f < 2; f++) {
		family_ops_free(&up[f]);
		family_ops_free(&del[f]);
	}
	return rc;
}

int itr_netmap_write_ops(int lpm_v4_fd, int lpm_v6_fd, const struct itr_netmap_op *ops, size_t nops)
{
	static const bool in_order[2] = {false, false};
	if (!nops)
		return 0;
	return write_ops(lpm_v4_fd, lpm_v6_fd, ops, nops, in_order);
}

size_t itr_netmap_trie_capacity(int lpm_fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(lpm_fd, &info, &len) || !info.max_entries)
		return SIZE_MAX;
	return info.max_entries;
}

/* Kernel entries of one family in a sorted source (IPv4 sorts first). */
static size_t ksrc_count_family(const struct ksrc *s, int family)
{
	size_t lo = 0, hi = s->n;
	struct itr_netmap_kentry e;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		ksrc_get(s, mid, &e);
		if (e.prefix.family == 4)
			lo = mid + 1;
		else
			hi = mid;
	}
	return family == 4 ? lo : s->n - lo;
}

bool itr_netmap_fits(const struct itr_netmap *map, size_t v4_cap, size_t v6_cap, char *why,
                     size_t whylen)
{
	struct ksrc src;
	ksrc_map(&src, map);
	size_t n4 = ksrc_count_family(&src, 4), n6 = ksrc_count_family(&src, 6);
	if (n4 > v4_cap)
		snprintf(
		    why, whylen,
		    "the map has %zu IPv4 prefixes%s; the kernel's IPv4 trie holds at most %zu", n4,
		    map->default_pid ? " (with the default PID's 0.0.0.0/0)" : "", v4_cap);
	else if (n6 > v6_cap)
		snprintf(
		    why, whylen,
		    "the map has %zu IPv6 prefixes%s; the kernel's IPv6 trie holds at most %zu", n6,
		    map->default_pid ? " (with the default PID's ::/0)" : "", v6_cap);
	return n4 <= v4_cap && n6 <= v6_cap;
}

/* A write failed half way: bring the tries back to what they held, so a
 * failed reload or start leaves no mix of two maps behind. Best effort:
 * the caller reports the write's error either way. */
static void roll_back(int lpm_v4_fd, int lpm_v6_fd, const struct ksrc *before)
{
	static const bool room_first[2] = {true, true};
	struct itr_netmap_kentry *now = NULL;
	struct itr_netmap_op *ops = NULL;
	size_t n = 0, nops = 0;
	if (itr_netmap_dump_bpf(lpm_v4_fd, lpm_v6_fd, &now, &n) == 0) {
		struct ksrc cur;
		ksrc_array(&cur, now, n);
		if (diff_sources(&cur, before, &ops, &nops) == 0 && nops)
			write_ops(lpm_v4_fd, lpm_v6_fd, ops, nops, room_first);
	}
	free(now);
	free(ops);
}

int itr_netmap_sync_bpf(const struct itr_netmap *old_map, const struct itr_netmap *new_map,
                        int lpm_v4_fd, int lpm_v6_fd, struct itr_netmap_sync_stats *stats)
{
	struct itr_netmap_kentry *olde = NULL;
	struct itr_netmap_op *ops = NULL;
	size_t nold = 0, nops = 0;
	int rc;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!new_map || lpm_v4_fd < 0 || lpm_v6_fd < 0)
		return -EINVAL;
	const size_t cap[2] = {itr_netmap_trie_capacity(lpm_v4_fd),
	                       itr_netmap_trie_capacity(lpm_v6_fd)};
	char why[160];
	if (!itr_netmap_fits(new_map, cap[0], cap[1], why, sizeof(why)))
		return -E2BIG;

	struct ksrc old_src, new_src;
	if (old_map) {
		ksrc_map(&old_src, old_map);
	} else {
		if ((rc = itr_netmap_dump_bpf(lpm_v4_fd, lpm_v6_fd, &olde, &nold)))
			goto out;
		ksrc_array(&old_src, olde, nold);
	}
	ksrc_map(&new_src, new_map);
	if ((rc = diff_sources(&old_src, &new_src, &ops, &nops)))
		goto out;
	size_t held[2] = {ksrc_count_family(&old_src, 4), ksrc_count_family(&old_src, 6)};
	size_t adds[2] = {0, 0}, counts[3] = {0, 0, 0};
	for (size_t i = 0; i < nops; i++) {
		counts[ops[i].kind]++;
		if (ops[i].kind == ITR_NETMAP_OP_ADD)
			adds[ops[i].entry.prefix.family == 6]++;
	}
	if (stats) {
		stats->added = counts[ITR_NETMAP_OP_ADD];
		stats->changed = counts[ITR_NETMAP_OP_CHANGE];
		stats->deleted = counts[ITR_NETMAP_OP_DELETE];
	}
	const bool deletes_first[2] = {held[0] + adds[0] > cap[0], held[1] + adds[1] > cap[1]};
	rc = write_ops(lpm_v4_fd, lpm_v6_fd, ops, nops, deletes_first);
	if (rc) {
		free(ops);
		ops = NULL;
		roll_back(lpm_v4_fd, lpm_v6_fd, &old_src);
	}
out:
	free(olde);
	free(ops);
	return rc;
}
