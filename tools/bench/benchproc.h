/* benchproc.h - what the benchmarks under tools/bench/ measure and draw the
 * same way, in one place: a process's CPU seconds (metrics.c's reader of
 * /proc/PID/stat) and memory figures from /proc, and one seeded pseudo-random sequence
 * (xorshift64*), so that every run of a benchmark loads the same data.
 */
#ifndef ITR_BENCHPROC_H
#define ITR_BENCHPROC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "metrics.h" /* itr_proc_stat */

/* xorshift64*: the next number of the sequence *state (never 0) holds. */
static inline uint64_t bench_rng(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* CPU seconds (user + system, all threads) process pid has used so far;
 * -1 if it cannot be read. */
static inline double bench_proc_cpu_seconds(pid_t pid)
{
	unsigned long long utime, stime, start;
	if (itr_proc_stat(pid, &utime, &stime, &start) != 0)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* A kB figure of /proc/PID/status, e.g. field "VmRSS:" or "VmHWM:"; pid 0
 * is this process. -1 if it cannot be read. */
static inline long bench_proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	size_t flen = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, flen) == 0) {
			kb = strtol(line + flen, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

#endif /* ITR_BENCHPROC_H */
