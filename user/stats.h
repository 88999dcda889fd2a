/* stats.h - read the data plane's pinned maps (counters, PID matrix, config)
 * and print what they hold.
 *
 * Shared by itrackerctl (which must work while the daemon is down, so it
 * reads the pins itself) and the /metrics handler. Per-CPU values are summed
 * here and nowhere else. Printing takes a FILE* so that tests can capture
 * the output in a memory stream.
 */
#ifndef ITR_STATS_H
#define ITR_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>

#include "itracker_maps.h"

struct itr_netmap;

/* Summed counters, indexed [direction][class][kind]. */
struct itr_counter_table {
	struct itr_counter c[ITR_DIR_MAX][ITR_CLASS_MAX][ITR_KIND_MAX];
};

/* One PID pair of the traffic matrix, summed over CPUs. */
struct itr_matrix_entry {
	uint32_t src_pid;
	uint32_t dst_pid;
	uint64_t packets;
	uint64_t bytes;
};

/* Label names used by the table, the JSON and the metrics. */
const char *itr_class_name(unsigned cls); /* "intra_pid", ... */
const char *itr_kind_name(unsigned kind); /* "none", "peer_wire", ... */
const char *itr_dir_name(unsigned dir);   /* "ingress", "egress" */

/* Open <pin_root>/<name> (a pinned map); fd or -errno. */
int itr_stats_open_pinned(const char *pin_root, const char *name);
/* Runs the fold program pinned under pin_root (ITR_PIN_PROG_FOLD), so that
 * the matrix read next holds every BitTorrent packet counted so far rather
 * than up to ITR_FOLD_PERIOD_MS less. 0 or -errno (no such pin: a data
 * plane from before the fold program). */
int itr_stats_fold_pinned(const char *pin_root);

/* Sum the per-CPU counters array (fd of ITR_MAP_COUNTERS). 0 or -errno. */
int itr_stats_read_counters(int counters_fd, struct itr_counter_table *out);

/* Every matrix pair summed over CPUs, sorted by bytes (largest first, ties
 * by pid ids). *out is malloc'ed (NULL when empty). 0 or -errno. */
int itr_stats_read_matrix(int matrix_fd, struct itr_matrix_entry **out, size_t *count);

/* Element 0 of the config array. 0 or -errno. */
int itr_stats_read_config(int config_fd, struct itr_config *out);

/* Entries in use: hash, LRU hash and LPM tries are walked key by key,
 * arrays report max_entries. type_name gets bpftool's name of the map type
 * if not NULL. 0 or -errno. */
int itr_stats_count_entries(int map_fd, uint64_t *entries, uint32_t *max_entries,
                            const char **type_name);

/* Totals over classes/kinds/directions. dir < 0 means both directions. */
struct itr_counter itr_counter_sum(const struct itr_counter_table *t, int dir,
                                   bool bittorrent_only);

/* Share of BitTorrent bytes (kind != none, both directions) classified
 * INTER_AS; -1 when no BitTorrent byte was counted yet. */
double itr_stats_inter_as_ratio(const struct itr_counter_table *t);

/* "0 B", "1023 B", "1.50 KiB", "3.20 GiB". Returns buf. */
const char *itr_format_bytes(uint64_t bytes, char *buf, size_t len);
/* "0", "999", "1.50 k", "2.00 M" (SI, for packet counts). Returns buf. */
const char *itr_format_count(double count, char *buf, size_t len);

/* `itrackerctl stats`: one row per (class, kind) with traffic, columns
 * ingress/egress/total packets and bytes; a totals row at the end. Rows
 * where nothing was counted are left out unless all is true. */
void itr_stats_print_table(FILE *out, const struct itr_counter_table *t, bool all);
/* {"ingress":{"<class>":{"<kind>":{"packets":N,"bytes":N}}},"egress":...,
 *  "total":{"packets":N,"bytes":N},"bittorrent":{...},"inter_as_ratio":x|null} */
void itr_stats_print_json(FILE *out, const struct itr_counter_table *t);
/* Rates between two readings taken seconds apart (packets/s, bytes/s). */
void itr_stats_print_rates(FILE *out, const struct itr_counter_table *prev,
                           const struct itr_counter_table *cur, double seconds, bool json);

/* The matrix: at most top rows (0: all), PID names from map when given
 * (map may be NULL), the share of inter-AS bytes from the counters. */
void itr_stats_print_matrix_table(FILE *out, const struct itr_matrix_entry *e, size_t n, size_t top,
                                  const struct itr_netmap *map, double inter_as_ratio);
void itr_stats_print_matrix_json(FILE *out, const struct itr_matrix_entry *e, size_t n, size_t top,
                                 const struct itr_netmap *map, double inter_as_ratio);

#endif
