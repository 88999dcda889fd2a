/* test_epoch.c - epoch-based reclamation: nothing a reader may still hold
 * is freed, and everything else is, without waiting for anyone. */
#include "epoch.h"

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

struct obj {
	struct itr_epoch_node node; /* first */
	atomic_int alive;           /* 1 until freed (checked by readers) */
	atomic_int *freed_count;    /* frees may run on any thread */
};

static void obj_free(struct itr_epoch_node *node)
{
	struct obj *o = (struct obj *)node;
	atomic_store(&o->alive, 0);
	atomic_fetch_add(o->freed_count, 1);
	free(o);
}

static struct obj *obj_new(atomic_int *freed_count)
{
	struct obj *o = calloc(1, sizeof(*o));
	assert_non_null(o);
	atomic_init(&o->alive, 1);
	o->freed_count = freed_count;
	return o;
}

static void test_retire_without_readers_frees_at_once(void **state)
{
	(void)state;
	atomic_int freed = 0;
	itr_epoch_retire(&obj_new(&freed)->node, obj_free);
	assert_int_equal(freed, 1);
	assert_int_equal(itr_epoch_reclaim(), 0);
}

/* A reader inside a section (this thread, nested) holds what is retired
 * meanwhile until its outermost exit, which frees it. */
static void test_section_holds_until_outermost_exit(void **state)
{
	(void)state;
	atomic_int freed = 0;
	itr_epoch_enter();
	itr_epoch_enter();
	itr_epoch_retire(&obj_new(&freed)->node, obj_free);
	assert_int_equal(freed, 0);
	assert_int_equal(itr_epoch_reclaim(), 1);
	itr_epoch_exit();
	assert_int_equal(freed, 0);
	itr_epoch_exit();
	assert_int_equal(freed, 1);
	assert_int_equal(itr_epoch_reclaim(), 0);
}

struct holder {
	pthread_t thread;
	atomic_int stage; /* 0 start, 1 inside, 2 told to leave, 3 left */
	bool exit_thread; /* leave by ending the thread, not by itr_epoch_exit */
};

static void *hold(void *arg)
{
	struct holder *h = arg;
	itr_epoch_enter();
	atomic_store(&h->stage, 1);
	while (atomic_load(&h->stage) != 2)
		sched_yield();
	if (!h->exit_thread)
		itr_epoch_exit();
	atomic_store(&h->stage, 3);
	/* exit_thread: ends inside a section; forgetting the thread must not
	 * leave its slot holding anything */
	return NULL;
}

static void start_holder(struct holder *h, bool exit_thread)
{
	atomic_init(&h->stage, 0);
	h->exit_thread = exit_thread;
	assert_int_equal(pthread_create(&h->thread, NULL, hold, h), 0);
	while (atomic_load(&h->stage) != 1)
		sched_yield();
}

/* Another thread's section holds an object retired while it is inside;
 * one retired before it entered, or after it left, is not held. */
static void test_other_thread_holds_only_what_it_could_see(void **state)
{
	(void)state;
	atomic_int freed = 0;
	struct holder h;
	start_holder(&h, false);
	itr_epoch_retire(&obj_new(&freed)->node, obj_free);
	assert_int_equal(freed, 0);
	atomic_store(&h.stage, 2);
	while (atomic_load(&h.stage) != 3)
		sched_yield();
	pthread_join(h.thread, NULL);
	itr_epoch_reclaim(); /* the holder's exit tried too; it may have lost the race */
	assert_int_equal(freed, 1);

	/* retired before a reader enters: that reader does not hold it */
	struct holder late;
	struct obj *o = obj_new(&freed);
	itr_epoch_enter(); /* keep it retired-but-held by this thread first */
	itr_epoch_retire(&o->node, obj_free);
	start_holder(&late, false);
	itr_epoch_exit(); /* this thread's hold goes; the late reader never held it */
	itr_epoch_reclaim();
	assert_int_equal(freed, 2);
	atomic_store(&late.stage, 2);
	pthread_join(late.thread, NULL);
}

/* A thread that ends inside a section (it should not, but may be
 * cancelled) is forgotten with its slot: what it held is freed. */
static void test_thread_end_releases(void **state)
{
	(void)state;
	atomic_int freed = 0;
	struct holder h;
	start_holder(&h, true);
	itr_epoch_retire(&obj_new(&freed)->node, obj_free);
	assert_int_equal(freed, 0);
	atomic_store(&h.stage, 2);
	pthread_join(h.thread, NULL);
	itr_epoch_reclaim();
	assert_int_equal(freed, 1);
}

/* Readers load a shared pointer inside sections and check the object is
 * alive for as long as they hold it, while a writer swaps it and retires
 * the old one thousands of times (under ASan a use after free also
 * shows). */
static _Atomic(struct obj *) shared;
static atomic_bool stop_readers;
static atomic_long reads;

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_readers)) {
		itr_epoch_enter();
		struct obj *o = atomic_load(&shared);
		for (int i = 0; i < 50; i++)
			if (atomic_load(&o->alive) != 1)
				abort();
		itr_epoch_exit();
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static void test_stress_swaps_under_readers(void **state)
{
	(void)state;
	atomic_int freed = 0;
	atomic_store(&shared, obj_new(&freed));
	atomic_store(&stop_readers, false);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
	enum { SWAPS = 20000 };
	for (int i = 0; i < SWAPS; i++) {
		struct obj *old = atomic_exchange(&shared, obj_new(&freed));
		itr_epoch_retire(&old->node, obj_free);
		if (i % 64 == 0)
			sched_yield();
	}
	atomic_store(&stop_readers, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(itr_epoch_reclaim(), 0);
	assert_int_equal(freed, SWAPS);
	assert_true(atomic_load(&reads) > 0);
	struct obj *last = atomic_load(&shared);
	itr_epoch_retire(&last->node, obj_free);
	assert_int_equal(freed, SWAPS + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retire_without_readers_frees_at_once),
	    cmocka_unit_test(test_section_holds_until_outermost_exit),
	    cmocka_unit_test(test_other_thread_holds_only_what_it_could_see),
	    cmocka_unit_test(test_thread_end_releases),
	    cmocka_unit_test(test_stress_swaps_under_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
