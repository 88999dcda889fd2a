/* netmap.c - the network map object: reference counting, the process-wide
 * current map, lookups (longest prefix, by name, by id), p-distance and
 * locality class, prefix text, and loading a file in either format.
 *
 * Parsing lives in netmap_text.c and netmap_alto.c, validation and indexing
 * in netmap_build.c, the kernel sync in netmap_sync.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netmap_build.h"

void itr_netmap_free_internal(struct itr_netmap *m);
bool nm_cost_find(const struct itr_netmap *m, uint32_t src, uint32_t dst, uint32_t *cost);

/* ---- prefixes and names ------------------------------------------------- */

int itr_prefix_cmp(const struct itr_prefix *a, const struct itr_prefix *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16);
	if (c)
		return c < 0 ? -1 : 1;
	return a->len < b->len ? -1 : a->len > b->len;
}

const char *itr_prefix_format(const struct itr_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	if (!inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, addr, sizeof(addr)))
		snprintf(addr, sizeof(addr), "?");
	snprintf(buf, len, "%s/%u", addr, p->len);
	return buf;
}

int itr_prefix_parse(const char *text, struct itr_prefix *out, char *why, size_t whylen)
{
	const char *slash = strchr(text, '/');
	char addr[INET6_ADDRSTRLEN + 1];
	if (!slash) {
		snprintf(why, whylen, "no '/length'");
		return -1;
	}
	size_t alen = (size_t)(slash - text);
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(why, whylen, "bad address");
		return -1;
	}
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (memchr(addr, ':', alen)) {
		out->family = 6;
		if (inet_pton(AF_INET6, addr, out->addr) != 1) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
	} else {
		out->family = 4;
		if (inet_pton(AF_INET, addr, out->addr) != 1) {
			snprintf(why, whylen, "bad IPv4 address");
			return -1;
		}
	}
	const char *l = slash + 1;
	unsigned len = 0;
	size_t digits = 0;
	for (; *l >= '0' && *l <= '9'; l++, digits++) {
		len = len * 10 + (unsigned)(*l - '0');
		if (len > 1000)
			len = 1000; /* out of range anyway; keeps the value bounded */
	}
	if (digits == 0 || *l != '\0' || (digits > 1 && slash[1] == '0')) {
		snprintf(why, whylen, "bad prefix length");
		return -1;
	}
	unsigned max = out->family == 4 ? 32 : 128;
	if (len > max) {
		snprintf(why, whylen, "prefix length %u out of range 0..%u", len, max);
		return -1;
	}
	out->len = (uint8_t)len;
	for (unsigned bit = len; bit < max; bit++) {
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			snprintf(why, whylen, "host bits set (address has bits beyond /%u)", len);
			return -1;
		}
	}
	return 0;
}

bool itr_netmap_name_valid(const char *s, size_t len, char *why, size_t whylen)
{
	if (len == 0) {
		snprintf(why, whylen, "empty name");
		return false;
	}
	if (len > ITR_NAME_MAX) {
		snprintf(why, whylen, "longer than %d characters", ITR_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == ':' || c == '@' || c == '_')
			continue;
		if (c == '.')
			snprintf(why, whylen, "'.' is reserved in ALTO names");
		else if (c >= 0x21 && c < 0x7f)
			snprintf(why, whylen, "character '%c' not allowed (only A-Za-z0-9-:@_)", c);
		else
			snprintf(why, whylen, "byte 0x%02x not allowed (only A-Za-z0-9-:@_)",
			         (uint8_t)c);
		return false;
	}
	return true;
}

void itr_netmap_error_format(const struct itr_netmap_error *err, char *buf, size_t len)
{
	/* A reason may quote what the file holds: bytes outside printable
	 * ASCII are written as \xNN so that no message garbles a terminal. */
	char reason[4 * sizeof(err->reason)];
	size_t k = 0;
	for (const unsigned char *p = (const unsigned char *)err->reason; *p; p++) {
		if (*p >= 0x20 && *p < 0x7f)
			reason[k++] = (char)*p;
		else
			k += (size_t)snprintf(reason + k, sizeof(reason) - k, "\\x%02x", *p);
	}
	reason[k] = '\0';
	const char *file = err->file[0] ? err->file : "<memory>";
	if (err->line > 0 && err->column > 0)
		snprintf(buf, len, "%s:%d:%d: %s", file, err->line, err->column, reason);
	else if (err->line > 0)
		snprintf(buf, len, "%s:%d: %s", file, err->line, reason);
	else
		snprintf(buf, len, "%s: %s", file, reason);
}

/* ---- loading ------------------------------------------------------------ */

static bool looks_like_json(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		return c == '{';
	}
	return false;
}

struct itr_netmap *itr_netmap_load_file(const char *path, struct itr_netmap_error *err)
{
	struct itr_netmap_error local;
	if (!err)
		err = &local;
	memset(err, 0, sizeof(*err));
	snprintf(err->file, sizeof(err->file), "%s", path);

	/* O_NONBLOCK: a FIFO (or a device) at the map path must not block the
	 * thread that reloads (the main thread also handles SIGTERM); it is
	 * refused below as not a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		snprintf(err->reason, sizeof(err->reason), "cannot open: %s", strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err->reason, sizeof(err->reason), "not a regular file");
		close(fd);
		return NULL;
	}
	if ((unsigned long long)st.st_size > ITR_NETMAP_MAX_FILE) {
		snprintf(err->reason, sizeof(err->reason),
		         "file is %lld bytes; the limit is %u MiB", (long long)st.st_size,
		         ITR_NETMAP_MAX_FILE >> 20);
		close(fd);
		return NULL;
	}
	size_t size = (size_t)st.st_size;
	char *buf = malloc(size + 1);
	if (!buf) {
		snprintf(err->reason, sizeof(err->reason), "out of memory");
		close(fd);
		return NULL;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err->reason, sizeof(err->reason), "read failed: %s",
			         r < 0 ? strerror(errno) : "file shrank while reading");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)r;
	}
	close(fd);
	struct itr_netmap *m = looks_like_json(buf, size)
	                           ? itr_netmap_parse_alto(buf, size, path, err)
	                           : itr_netmap_parse_text(buf, size, path, err);
	free(buf);
	return m;
}

/* ---- reference counting and the current map ----------------------------- */

void itr_netmap_ref(struct itr_netmap *map)
{
	if (map)
		atomic_fetch_add_explicit(&map->refs, 1, memory_order_relaxed);
}

void itr_netmap_unref(struct itr_netmap *map)
{
	if (map && atomic_fetch_sub_explicit(&map->refs, 1, memory_order_acq_rel) == 1)
		itr_netmap_free_internal(map);
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct itr_netmap *current_map;

struct itr_netmap *itr_netmap_current(void)
{
	pthread_mutex_lock(&current_lock);
	struct itr_netmap *m = current_map;
	itr_netmap_ref(m);
	pthread_mutex_unlock(&current_lock);
	return m;
}

static void (*publish_hook)(void *arg);
static void *publish_hook_arg;

void itr_netmap_on_publish(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&current_lock);
	publish_hook = fn;
	publish_hook_arg = arg;
	pthread_mutex_unlock(&current_lock);
}

static atomic_uint_fast64_t publishes;

uint64_t itr_netmap_publish_count(void)
{
	return atomic_load_explicit(&publishes, memory_order_acquire);
}

void itr_netmap_publish(struct itr_netmap *map)
{
	pthread_mutex_lock(&current_lock);
	struct itr_netmap *old = current_map;
	current_map = map;
	atomic_fetch_add_explicit(&publishes, 1, memory_order_release);
	if (publish_hook)
		publish_hook(publish_hook_arg);
	pthread_mutex_unlock(&current_lock);
	itr_netmap_unref(old);
}

/* ---- accessors ---------------------------------------------------------- */

const char *itr_netmap_vtag(const struct itr_netmap *map)
{
	return map->vtag;
}

const char *itr_netmap_resource_id(const struct itr_netmap *map)
{
	return map->resource_id;
}

size_t itr_netmap_pid_count(const struct itr_netmap *map)
{
	return map->npids;
}

const struct itr_pid *itr_netmap_pid_at(const struct itr_netmap *map, size_t i)
{
	return i < map->npids ? &map->pids[i] : NULL;
}

const struct itr_pid *itr_netmap_pid_by_name(const struct itr_netmap *map, const char *name)
{
	size_t lo = 0, hi = map->npids;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(map->pids[mid].name, name);
		if (c == 0)
			return &map->pids[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct itr_pid *itr_netmap_pid_by_id(const struct itr_netmap *map, uint32_t id)
{
	size_t lo = 0, hi = map->npids;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct itr_pid *p = &map->pids[map->by_id[mid]];
		if (p->id == id)
			return p;
		if (p->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct itr_pid *itr_netmap_default_pid(const struct itr_netmap *map)
{
	return map->default_pid;
}

size_t itr_netmap_prefix_count(const struct itr_netmap *map)
{
	return map->nentries;
}

const char *itr_netmap_warning(const struct itr_netmap *map)
{
	if (map->nentries || map->default_pid)
		return NULL;
	return map->npids ? "the map declares PIDs but no prefixes and no default PID: every "
	                    "address is outside the map (class unknown)"
	                  : "the map is empty (no PIDs, no prefixes): every address is outside "
	                    "the map (class unknown)";
}

size_t itr_netmap_prefix_count_family(const struct itr_netmap *map, int family)
{
	/* Entries sort IPv4 before IPv6: find where IPv6 starts. */
	size_t lo = 0, hi = map->nentries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (map->entries[mid].prefix.family == 4)
			lo = mid + 1;
		else
			hi = mid;
	}
	return family == 4 ? lo : map->nentries - lo;
}

uint32_t itr_netmap_tier(const struct itr_netmap *map, enum itr_tier tier)
{
	return tier < ITR_TIER_MAX ? map->tiers[tier] : UINT32_MAX;
}

size_t itr_netmap_explicit_cost_count(const struct itr_netmap *map)
{
	return map->ncosts;
}

bool itr_netmap_cost_is_explicit(const struct itr_netmap *map, const struct itr_pid *src,
                                 const struct itr_pid *dst)
{
	uint32_t cost;
	return src && dst && nm_cost_find(map, src->id, dst->id, &cost);
}

/* ---- lookups ------------------------------------------------------------ */

static const struct itr_pid *lookup4(const struct itr_netmap *m, uint32_t a)
{
	for (int i = 0; i < m->nlens4; i++) {
		unsigned len = m->lens4[i];
		uint32_t key = len ? a & ~(uint32_t)0 << (32 - len) : 0;
		size_t lo, hi;
		if (m->lpm4_top16[len]) {
			lo = m->lpm4_top16[len][key >> 16];
			hi = m->lpm4_top16[len][(key >> 16) + 1];
		} else {
			lo = m->lpm4_off[len];
			hi = m->lpm4_off[len + 1];
		}
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			uint32_t v = m->lpm4[mid].addr;
			if (v == key)
				return &m->pids[m->lpm4[mid].pid];
			if (v < key)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return NULL;
}

static const struct itr_pid *lookup6(const struct itr_netmap *m, uint64_t hi_a, uint64_t lo_a)
{
	for (int i = 0; i < m->nlens6; i++) {
		unsigned len = m->lens6[i];
		uint64_t kh, kl;
		if (len == 0) {
			kh = kl = 0;
		} else if (len <= 64) {
			kh = hi_a & ~(uint64_t)0 << (64 - len);
			kl = 0;
		} else {
			kh = hi_a;
			kl = len == 128 ? lo_a : lo_a & ~(uint64_t)0 << (128 - len);
		}
		size_t lo = m->lpm6_off[len], hi = m->lpm6_off[len + 1];
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct nm_lpm6_slot *s = &m->lpm6[mid];
			if (s->hi == kh && s->lo == kl)
				return &m->pids[s->pid];
			if (s->hi < kh || (s->hi == kh && s->lo < kl))
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return NULL;
}

const struct itr_pid *itr_netmap_lookup(const struct itr_netmap *map, int family,
                                        const uint8_t *addr)
{
	const struct itr_pid *p = NULL;
	if (!map || !addr)
		return NULL;
	if (family == 4) {
		uint32_t a = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
		             (uint32_t)addr[2] << 8 | addr[3];
		p = lookup4(map, a);
	} else if (family == 6) {
		uint64_t hi = 0, lo = 0;
		for (int i = 0; i < 8; i++) {
			hi = hi << 8 | addr[i];
			lo = lo << 8 | addr[8 + i];
		}
		p = lookup6(map, hi, lo);
	} else {
		return NULL;
	}
	return p ? p : map->default_pid;
}

const struct itr_pid *itr_netmap_lookup_str(const struct itr_netmap *map, const char *ip)
{
	uint8_t addr[16];
	if (!ip)
		return NULL;
	if (inet_pton(AF_INET, ip, addr) == 1)
		return itr_netmap_lookup(map, 4, addr);
	if (inet_pton(AF_INET6, ip, addr) == 1)
		return itr_netmap_lookup(map, 6, addr);
	return NULL;
}

/* ---- p-distance and class ----------------------------------------------- */

enum itr_class itr_netmap_class(const struct itr_pid *a, const struct itr_pid *b)
{
	if (!a || !b)
		return ITR_CLASS_UNKNOWN;
	if (a->id == b->id)
		return ITR_CLASS_INTRA_PID;
	if (a->asn != b->asn)
		return ITR_CLASS_INTER_AS;
	if (a->loc != ITR_LOC_NONE && a->loc == b->loc)
		return ITR_CLASS_INTRA_LOC;
	return ITR_CLASS_INTRA_AS;
}

size_t itr_netmap_link_count(const struct itr_netmap *map)
{
	return map->nlinks;
}

const struct itr_link *itr_netmap_link_at(const struct itr_netmap *map, size_t i)
{
	return i < map->nlinks ? &map->links[i] : NULL;
}

static ptrdiff_t link_index(const struct itr_netmap *map, uint32_t asn, uint32_t peer_asn)
{
	for (size_t i = 0; i < map->nlinks; i++) {
		const struct itr_link *l = &map->links[i];
		if ((l->asn == asn && l->peer_asn == peer_asn) ||
		    (peer_asn && l->asn == peer_asn && l->peer_asn == asn))
			return (ptrdiff_t)i;
	}
	return -1;
}

const struct itr_link *itr_netmap_link_find(const struct itr_netmap *map, uint32_t asn,
                                            uint32_t peer_asn)
{
	ptrdiff_t i = link_index(map, asn, peer_asn);
	return i < 0 ? NULL : &map->links[i];
}

/* Extra cost of the links between two ASes in a derived map: the link
 * joining them, else both uplinks. Saturates instead of wrapping. */
static uint32_t path_extra(const struct itr_netmap *map, uint32_t a, uint32_t b)
{
	if (!map->link_extra)
		return 0;
	ptrdiff_t direct = link_index(map, a, b);
	if (direct >= 0)
		return map->link_extra[direct];
	uint64_t sum = 0;
	ptrdiff_t ua = link_index(map, a, 0), ub = link_index(map, b, 0);
	if (ua >= 0)
		sum += map->link_extra[ua];
	if (ub >= 0)
		sum += map->link_extra[ub];
	return sum > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)sum;
}

int itr_rate_parse(const char *text, size_t len, uint64_t *bps)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}};
	size_t i = 0;
	double v = 0, frac = 0.1;
	bool digits = false;
	while (i < len && text[i] >= '0' && text[i] <= '9') {
		v = v * 10 + (text[i++] - '0');
		digits = true;
		if (v > 1e15)
			return -1;
	}
	if (i < len && text[i] == '.') {
		i++;
		while (i < len && text[i] >= '0' && text[i] <= '9') {
			v += frac * (text[i++] - '0');
			frac /= 10;
			digits = true;
		}
	}
	if (!digits)
		return -1;
	double mult = 1;
	if (i < len) {
		bool known = false;
		for (size_t u = 0; u < sizeof(units) / sizeof(units[0]) && !known; u++) {
			size_t n = strlen(units[u].suffix);
			if (len - i == n && strncasecmp(text + i, units[u].suffix, n) == 0) {
				mult = units[u].mult;
				known = true;
			}
		}
		if (!known)
			return -1;
	}
	v *= mult;
	if (v < 1 || v > 1e15)
		return -1;
	*bps = (uint64_t)(v + 0.5);
	return 0;
}

uint32_t itr_netmap_cost(const struct itr_netmap *map, const struct itr_pid *src,
                         const struct itr_pid *dst)
{
	if (!src || !dst)
		return map->tiers[ITR_TIER_OTHER_AS] + 1;
	uint32_t cost;
	if (nm_cost_find(map, src->id, dst->id, &cost))
		return cost;
	switch (itr_netmap_class(src, dst)) {
	case ITR_CLASS_INTRA_PID:
		return map->tiers[ITR_TIER_SAME_PID];
	case ITR_CLASS_INTRA_LOC:
		return map->tiers[ITR_TIER_SAME_LOC];
	case ITR_CLASS_INTRA_AS:
		return map->tiers[ITR_TIER_SAME_AS];
	default:
		return map->tiers[ITR_TIER_OTHER_AS] + path_extra(map, src->asn, dst->asn);
	}
}
