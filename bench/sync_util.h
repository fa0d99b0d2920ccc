/*
 * bench/sync_util.h — what the locks, cond and sem scenarios share: memory
 * that stays shared across fork(), threads or a forked child running the
 * sides of a benchmark, and the clock that starts and stops a timed run.
 *
 * Every synchronization object of these scenarios lives in a MAP_SHARED
 * mapping, whichever variant runs, so that the variants differ only in the
 * flags they pass and never in where their memory comes from.
 */
#ifndef KART_BENCH_SYNC_UTIL_H
#define KART_BENCH_SYNC_UTIL_H

#include "harness.h"

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

/* A zeroed MAP_SHARED anonymous mapping of size bytes; bench_fail() if
 * none. Page-aligned, so objects placed at 64-byte offsets own their line. */
void *sync_map(size_t size);
void sync_unmap(void *p, size_t size);

/* The most threads sync_threads() runs: 4 pairs. */
#define SYNC_MAX_THREADS 8

/* Runs fn(arg[i]) on n threads (n <= SYNC_MAX_THREADS) and joins them.
 * cpus > 0 confines every thread to the first `cpus` CPUs this process may
 * run on (1: all on one CPU; 2 with 8 threads: oversubscribed); 0 leaves
 * them to the scheduler. */
void sync_threads(int n, void *(*fn)(void *), void *const *arg, int cpus);

/* How many CPUs this process may run on (its affinity mask). */
int sync_cpus_allowed(void);

/* Forks a child that runs fn(arg) and _exit()s with its result; returns the
 * child's pid. The caller is single-threaded when it forks. */
pid_t sync_fork(int (*fn)(void *), void *arg);
/* Waits for the child; bench_fail() unless it exited with status 0. */
void sync_reap(pid_t pid);

/* The calling thread's CPU time in nanoseconds: what a side spends
 * spinning shows here, while sleeping does not. */
int64_t sync_cpu_ns(void);

/* Whether the case has this parameter. */
bool sync_case_has(const bench_case *c, const char *key);

/* The case's pairs (default 1) and the CPUs its sides are confined to
 * (default 0: anywhere). */
int sync_case_pairs(const bench_case *c);
int sync_case_cpus(const bench_case *c);

/* The sides of a timed run meet at the start (so that none is timed while
 * the other is still being created) and stop together once one of them
 * sees the deadline. Lives in shared memory when a side is a child. */
typedef struct sync_clock {
    _Atomic int arrived;
    _Atomic int stop;
    int64_t start, stop_at;
    double seconds;
} sync_clock;

/* Returns once `parties` callers have called it (spinning, and yielding
 * so that a party that shares the CPU gets to arrive); the last one sets
 * start. */
void sync_clock_start(sync_clock *k, int parties);
/* True, for every side, once any side has seen the deadline pass (and
 * then stop_at is when). Reads the clock: call it every so many
 * operations, not every one. */
bool sync_clock_done(sync_clock *k);

#endif
