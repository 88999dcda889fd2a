/* test_clock.c - monotonic deadlines (the nanosecond carry, waits that time
 * out on the monotonic clock) and the periodic worker: it runs its job at
 * once and then every period, stop wakes its sleep instead of waiting out
 * the period, and stop is safe on a worker that never started. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"

static void test_deadline_carries_nanoseconds(void **state)
{
	(void)state;
	for (uint64_t ms = 0; ms < 2500; ms += 7) {
		uint64_t before = itr_clock_ns();
		struct timespec at = itr_deadline_ms(ms);
		uint64_t after = itr_clock_ns();
		assert_in_range(at.tv_nsec, 0, 999999999);
		uint64_t at_ns = (uint64_t)at.tv_sec * 1000000000u + (uint64_t)at.tv_nsec;
		assert_true(at_ns >= before + ms * 1000000u);
		assert_true(at_ns <= after + ms * 1000000u);
	}
}

static void test_timed_wait_uses_the_monotonic_clock(void **state)
{
	(void)state;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	itr_cond_init_monotonic(&cond);
	int64_t t0 = itr_clock_ms();
	struct timespec until = itr_deadline_ms(50);
	pthread_mutex_lock(&lock);
	int rc;
	while ((rc = pthread_cond_timedwait(&cond, &lock, &until)) == 0) {
	}
	pthread_mutex_unlock(&lock);
	int64_t waited = itr_clock_ms() - t0;
	assert_int_equal(rc, ETIMEDOUT);
	/* On a realtime cond a monotonic deadline lies decades in the past
	 * (no wait at all); 50 ms proves the clocks match. */
	assert_true(waited >= 49);
	assert_true(waited < 10000);
	pthread_cond_destroy(&cond);
}

static atomic_int runs;

static void count_run(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&runs, 1);
}

static void test_periodic_runs_at_once_and_stops_without_waiting(void **state)
{
	(void)state;
	struct itr_periodic p = {0};
	atomic_store(&runs, 0);
	assert_int_equal(itr_periodic_start(&p, 3600 * 1000, count_run, NULL), 0);
	for (int i = 0; i < 5000 && atomic_load(&runs) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&runs), 1);
	int64_t t0 = itr_clock_ms();
	itr_periodic_stop(&p); /* the worker sleeps for an hour: stop wakes it */
	assert_true(itr_clock_ms() - t0 < 10000);
	assert_int_equal(atomic_load(&runs), 1);
	itr_periodic_stop(&p); /* twice is fine */
}

static void test_periodic_repeats(void **state)
{
	(void)state;
	struct itr_periodic p = {0};
	atomic_store(&runs, 0);
	assert_int_equal(itr_periodic_start(&p, 5, count_run, NULL), 0);
	for (int i = 0; i < 10000 && atomic_load(&runs) < 4; i++)
		usleep(1000);
	itr_periodic_stop(&p);
	assert_true(atomic_load(&runs) >= 4);
	int after_stop = atomic_load(&runs);
	usleep(20000);
	assert_int_equal(atomic_load(&runs), after_stop);
	/* and it starts again after a stop */
	assert_int_equal(itr_periodic_start(&p, 3600 * 1000, count_run, NULL), 0);
	for (int i = 0; i < 5000 && atomic_load(&runs) == after_stop; i++)
		usleep(1000);
	itr_periodic_stop(&p);
	assert_int_equal(atomic_load(&runs), after_stop + 1);
}

static void test_stop_on_a_worker_never_started(void **state)
{
	(void)state;
	struct itr_periodic p = {0};
	itr_periodic_stop(&p);
	assert_false(p.running);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deadline_carries_nanoseconds),
	    cmocka_unit_test(test_timed_wait_uses_the_monotonic_clock),
	    cmocka_unit_test(test_periodic_runs_at_once_and_stops_without_waiting),
	    cmocka_unit_test(test_periodic_repeats),
	    cmocka_unit_test(test_stop_on_a_worker_never_started),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
