/* Monotonic deadlines and the periodic worker (see clock.h). */
#include "clock.h"

#include <errno.h>

void itr_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

struct timespec itr_deadline_ms(uint64_t ms)
{
	uint64_t at = itr_clock_ns() + ms * 1000000u;
	return (struct timespec){.tv_sec = (time_t)(at / 1000000000u),
	                         .tv_nsec = (long)(at % 1000000000u)};
}

static void *periodic_main(void *arg)
{
	struct itr_periodic *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		pthread_mutex_unlock(&p->lock);
		p->job(p->ctx);
		pthread_mutex_lock(&p->lock);
		struct timespec until = itr_deadline_ms(p->period_ms);
		while (!p->stopping &&
		       pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT) {
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int itr_periodic_start(struct itr_periodic *p, uint64_t period_ms, void (*job)(void *ctx),
                       void *ctx)
{
	if (p->running)
		return 0;
	p->job = job;
	p->ctx = ctx;
	p->period_ms = period_ms;
	p->stopping = false;
	pthread_mutex_init(&p->lock, NULL);
	itr_cond_init_monotonic(&p->wake);
	int rc = pthread_create(&p->thread, NULL, periodic_main, p);
	if (rc) {
		pthread_cond_destroy(&p->wake);
		pthread_mutex_destroy(&p->lock);
		return rc;
	}
	p->running = true;
	return 0;
}

void itr_periodic_stop(struct itr_periodic *p)
{
	if (!p->running)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	p->running = false;
}
