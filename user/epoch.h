/* epoch.h - epoch-based reclamation for read-mostly snapshots.
 *
 * Readers borrow a shared snapshot between itr_epoch_enter and
 * itr_epoch_exit with no write to any shared cache line; a writer that
 * replaces a snapshot hands the old one to itr_epoch_retire, and it is
 * freed once every thread that was inside a read section when it was
 * retired has left it. The tracker's PID-group index is read on every
 * announce: a mutex and a reference count there made two UDP workers
 * slower than one (docs/benchmarks.md, bench_scaling).
 *
 * Sections nest. A thread registers on its first itr_epoch_enter and is
 * forgotten when it exits. A retired object waits for the next
 * itr_epoch_reclaim after its readers left; itr_epoch_exit tries one
 * whenever something waits, so nothing outlives the last reader of it by
 * more than that reader's next read section, or an explicit reclaim.
 */
#ifndef ITR_EPOCH_H
#define ITR_EPOCH_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in each object that may be retired: retiring never allocates,
 * so it cannot fail. */
struct itr_epoch_node {
	struct itr_epoch_node *next;
	uint64_t epoch;
	void (*free_fn)(struct itr_epoch_node *node);
};

void itr_epoch_enter(void);
void itr_epoch_exit(void);
/* The object holding node is no longer reachable for a reader entering
 * from now on; free_fn(node) frees it later (never inside a lock the
 * caller holds: from itr_epoch_reclaim or itr_epoch_exit). */
void itr_epoch_retire(struct itr_epoch_node *node, void (*free_fn)(struct itr_epoch_node *node));
/* Free what no reader can still hold; returns how many remain retired. */
size_t itr_epoch_reclaim(void);

#endif
