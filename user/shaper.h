/* shaper.h - the data plane enforces a link's BitTorrent budget.
 *
 * The tracker's lists decide who meets whom, not how fast they talk: one
 * pair of peers can fill a transit link whatever its budget (docs/policy.md).
 * With `--shape LINK=DEV`, itrackerd installs an HTB qdisc as the root of
 * DEV (rtnetlink through libnl-route; no tc binary) with one class whose
 * rate (and ceiling) is LINK's budget from the network map, followed on
 * every map install. The TC egress program puts DEV's inter-AS BitTorrent
 * packets into that class by setting skb->priority to its classid, which
 * HTB reads before any filter: no classifier is installed. Everything else
 * takes HTB's direct path (no default class), unshaped. On exit the qdisc
 * is removed and the device gets its default one back.
 */
#ifndef ITR_SHAPER_H
#define ITR_SHAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "netmap.h"

/* Our root qdisc's handle major ("IT"): a root qdisc with it is ours (a
 * previous run's, adopted); any other explicitly installed root qdisc is
 * the operator's and is never replaced. */
#define ITR_SHAPE_MAJOR 0x4954u
/* The class BitTorrent goes into: the TC egress program's skb->priority. */
#define ITR_SHAPE_CLASSID ((ITR_SHAPE_MAJOR << 16) | 1u)
/* Its queue: a byte FIFO holding ITR_SHAPE_QUEUE_MS at the class's rate.
 * (fq_codel would be nicer, but not every kernel has it; HTB and the
 * FIFOs are always built in.) Enough for TCP to keep the class busy, short
 * enough that a low budget does not queue seconds. */
#define ITR_SHAPE_LEAF_MAJOR 0x4955u
#define ITR_SHAPE_QUEUE_MS   200u
#define ITR_SHAPE_MAX        8

struct itr_shape_spec {
	char link[65]; /* a link the map declares */
	char dev[16];  /* an interface the data plane is attached to (IFNAMSIZ) */
};

/* "LINK=DEV" -> spec. 0, or -1 with err filled. */
int itr_shape_parse(const char *arg, struct itr_shape_spec *out, char *err, size_t errlen);

/* HTB class parameters for a budget (bits/s): rate and ceiling in bytes/s,
 * the burst in bytes (10 ms at the rate, at least two full frames), the
 * quantum (rate / 10 within [1600, 200000], where the kernel does not
 * warn), and the queue's limit in bytes (ITR_SHAPE_QUEUE_MS at the rate,
 * at least ten full frames, at most 64 MiB). */
struct itr_shape_class {
	uint64_t rate_Bps;
	uint32_t burst;
	uint32_t quantum;
	uint32_t queue_bytes;
};
void itr_shape_class_for(uint64_t budget_bps, struct itr_shape_class *out);

/* Every spec's link is declared by map (and has a budget): 0, or -1 with
 * err naming the first that is not. Touches nothing. */
int itr_shaper_check(const struct itr_shape_spec *specs, size_t n, const struct itr_netmap *map,
                     char *err, size_t errlen);

/* Every spec's device exists and its root qdisc is the kernel's default
 * or a previous run's of ours: 0, or -1 with err. Changes nothing (checked
 * before the data plane is loaded; itr_shaper_start checks again). */
int itr_shaper_probe(const struct itr_shape_spec *specs, size_t n, char *err, size_t errlen);

struct itr_shaper;

/* Install the qdisc, class and leaf on every spec's device at its link's
 * budget in map. A device whose root qdisc was set by someone else (a
 * non-zero handle that is not ours) is refused. On failure nothing
 * installed by this call stays; NULL with err filled. */
struct itr_shaper *itr_shaper_start(const struct itr_shape_spec *specs, size_t n,
                                    const struct itr_netmap *map, char *err, size_t errlen);

/* Each class's rate to its link's budget in map (a reloaded map). A link
 * the map no longer declares keeps its last rate (a reload that drops a
 * statement by mistake must not unleash the link), said once on stderr.
 * Returns how many classes changed, or -1 when the kernel refused one
 * (said on stderr; the old rate stays). Thread safe. */
int itr_shaper_follow_map(struct itr_shaper *s, const struct itr_netmap *map);

/* Remove every qdisc this shaper installed (keep: leave them, e.g. with
 * --keep-attached, for the next run to adopt), then free. NULL is fine. */
void itr_shaper_free(struct itr_shaper *s, bool keep);

/* `itrackerd --purge`: remove every root qdisc of ours (handle
 * ITR_SHAPE_MAJOR:, a run with --keep-attached left it) from every device
 * of this network namespace. How many, or -1 with err. */
int itr_shaper_purge(char *err, size_t errlen);

/* [{"link", "dev", "rate_bps", "sent_bytes", "sent_packets", "drops",
 *   "overlimits", "backlog_bytes"}] with the class's kernel counters. */
json_t *itr_shaper_status_json(struct itr_shaper *s);
/* itracker_shaper_* lines for Prometheus. 0 or -1. */
int itr_shaper_metrics(struct itr_shaper *s, FILE *out);

#endif
