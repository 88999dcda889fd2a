/* Time in the daemon: the monotonic clock in the units each caller wants,
 * deadlines for condition variables that wait on that clock, and the
 * periodic worker (a thread that runs a job every period until stopped).
 * Every wait is on CLOCK_MONOTONIC, so a wall-clock step (NTP, an operator's
 * `date -s`) never stalls a timer or makes it spin. */
#ifndef ITR_CLOCK_H
#define ITR_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t itr_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int64_t itr_clock_ms(void)
{
	return (int64_t)(itr_clock_ns() / 1000000u);
}

static inline double itr_clock_s(void)
{
	return (double)itr_clock_ns() / 1e9;
}

/* A condition variable whose timed waits take itr_deadline_ms's deadlines. */
void itr_cond_init_monotonic(pthread_cond_t *cond);

/* The CLOCK_MONOTONIC instant ms milliseconds from now, for
 * pthread_cond_timedwait on a cond from itr_cond_init_monotonic. */
struct timespec itr_deadline_ms(uint64_t ms);

/* Runs job(ctx) at start and then every period_ms until stopped; stop
 * wakes the sleep at once and waits for a running job to finish. */
struct itr_periodic {
	void (*job)(void *ctx);
	void *ctx;
	uint64_t period_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running;
	bool stopping;
};

/* 0, or an errno value from pthread_create (p is then not running). */
int itr_periodic_start(struct itr_periodic *p, uint64_t period_ms, void (*job)(void *ctx),
                       void *ctx);
/* Safe on a zeroed or already stopped worker. */
void itr_periodic_stop(struct itr_periodic *p);

#endif
