/* epoch.c - epoch-based reclamation (see epoch.h).
 *
 * A global epoch counts retirements. A reader entering a section records
 * the epoch it saw in its own slot (a full barrier orders that record
 * before any load of the shared pointer); leaving, it clears the slot.
 * Retiring stamps the object with the epoch and advances it. An object
 * stamped s can be freed once every slot is clear or holds more than s:
 * a reader that loaded the old pointer did so before the writer swapped
 * it, hence recorded an epoch no later than s. The slots are registered
 * in one list under a lock that only registration, retirement and
 * reclamation take, never a read section.
 */
#include "epoch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* A line of its own: every section writes its slot twice, and two
 * threads' slots from one malloc would share a line that then moves
 * between their cores on every announce. */
struct reader {
	_Alignas(64) _Atomic uint64_t epoch; /* 0: outside any section */
	struct reader *prev, *next;
};

static _Atomic uint64_t global_epoch = 1;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reader *readers;
static struct itr_epoch_node *retired;
static atomic_bool retired_waiting;
/* Threads inside a section without a slot (out of memory when they
 * registered): while any is, nothing is freed. */
static atomic_uint anonymous_readers;

static _Thread_local struct reader *self;
static _Thread_local unsigned depth; /* nested sections of this thread */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void forget_reader(void *arg)
{
	struct reader *r = arg;
	pthread_mutex_lock(&registry_lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		readers = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&registry_lock);
	free(r);
	self = NULL;
	/* what this thread held back may be free now */
	if (atomic_load_explicit(&retired_waiting, memory_order_relaxed))
		itr_epoch_reclaim();
}

static void make_exit_key(void)
{
	pthread_key_create(&exit_key, forget_reader);
}

/* NULL only if out of memory. */
static struct reader *register_self(void)
{
	pthread_once(&exit_key_once, make_exit_key);
	struct reader *r = aligned_alloc(_Alignof(struct reader), sizeof(struct reader));
	if (!r)
		return NULL;
	*r = (struct reader){0};
	pthread_mutex_lock(&registry_lock);
	r->next = readers;
	if (readers)
		readers->prev = r;
	readers = r;
	pthread_mutex_unlock(&registry_lock);
	pthread_setspecific(exit_key, r);
	self = r;
	return r;
}

static size_t reclaim(bool wait);

void itr_epoch_enter(void)
{
	if (depth++ > 0)
		return;
	struct reader *r = self ? self : register_self();
	if (r)
		atomic_store_explicit(&r->epoch, atomic_load(&global_epoch), memory_order_relaxed);
	else /* a reader that cannot say where it is holds everything */
		atomic_fetch_add(&anonymous_readers, 1);
	/* the record above before any load of a shared pointer (a store
	 * followed by a load needs a full fence even on x86) */
	atomic_thread_fence(memory_order_seq_cst);
}

void itr_epoch_exit(void)
{
	if (--depth > 0)
		return;
	if (self)
		atomic_store_explicit(&self->epoch, 0, memory_order_release);
	else
		atomic_fetch_sub(&anonymous_readers, 1);
	if (atomic_load_explicit(&retired_waiting, memory_order_relaxed))
		reclaim(false);
}

void itr_epoch_retire(struct itr_epoch_node *node, void (*free_fn)(struct itr_epoch_node *node))
{
	node->free_fn = free_fn;
	pthread_mutex_lock(&registry_lock);
	node->epoch = atomic_fetch_add(&global_epoch, 1);
	node->next = retired;
	retired = node;
	atomic_store(&retired_waiting, true);
	pthread_mutex_unlock(&registry_lock);
	reclaim(true);
}

/* wait false (the read path): if another thread holds the lock, leave it
 * to the next exit rather than queue behind it. */
static size_t reclaim(bool wait)
{
	struct itr_epoch_node *done = NULL;
	size_t waiting = 0;
	if (!wait && pthread_mutex_trylock(&registry_lock) != 0)
		return 1;
	if (wait)
		pthread_mutex_lock(&registry_lock);
	uint64_t oldest = atomic_load(&anonymous_readers) ? 0 : UINT64_MAX;
	for (const struct reader *r = readers; r; r = r->next) {
		uint64_t e = atomic_load(&r->epoch);
		if (e && e < oldest)
			oldest = e;
	}
	for (struct itr_epoch_node **p = &retired; *p;) {
		struct itr_epoch_node *n = *p;
		if (n->epoch < oldest) {
			*p = n->next;
			n->next = done;
			done = n;
		} else {
			p = &n->next;
			waiting++;
		}
	}
	atomic_store(&retired_waiting, waiting > 0);
	pthread_mutex_unlock(&registry_lock);
	while (done) {
		struct itr_epoch_node *n = done;
		done = n->next;
		n->free_fn(n);
	}
	return waiting;
}

size_t itr_epoch_reclaim(void)
{
	return reclaim(true);
}
