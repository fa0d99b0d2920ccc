/*
 * bench/pool_omp.c — the `pool` scenario's OpenMP peers (gcc's libgomp):
 * one round, run by bench/pool.c in a child process.
 *
 * The schedules and what their chunk means (the map's `chunk`, or the
 * default chunk ceil(n / (4 x workers))):
 *  - dynamic: schedule(dynamic, chunk): a thread claims exactly `chunk`
 *    items per atomic operation on the shared iteration counter;
 *  - nonmonotonic: schedule(nonmonotonic:dynamic, chunk): the same claims,
 *    the order relaxed (libgomp 12 runs it through the same code as
 *    dynamic; a runtime with work stealing, LLVM's, would not);
 *  - guided: schedule(guided, chunk): each claim takes remaining/threads
 *    items, never fewer than `chunk` (the last may be shorter): few claims
 *    while much is left, small ones at the end;
 *  - static: no claims at all: schedule(static, 1) deals the items out
 *    round-robin at chunk 1, schedule(static) one block per thread at the
 *    default chunk.
 * openmp-tasks, the tasks cases: `omp task` from a single thread, a
 * taskwait every `burst` tasks (1: after each).
 */
#include "harness.h"
#include "pool_peers.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#if KART_BENCH_HAVE_OPENMP
#include <omp.h>

static void map(const char *v, const uint64_t *in, uint64_t *out, long n, long chunk)
{
    if (strcmp(v, "dynamic") == 0) {
#pragma omp parallel for schedule(dynamic, chunk)
        for (long i = 0; i < n; i++)
            out[i] = pool_work(in[i]);
    } else if (strcmp(v, "nonmonotonic") == 0) {
#pragma omp parallel for schedule(nonmonotonic : dynamic, chunk)
        for (long i = 0; i < n; i++)
            out[i] = pool_work(in[i]);
    } else if (strcmp(v, "guided") == 0) {
#pragma omp parallel for schedule(guided, chunk)
        for (long i = 0; i < n; i++)
            out[i] = pool_work(in[i]);
    } else if (chunk == 1) {
#pragma omp parallel for schedule(static, 1)
        for (long i = 0; i < n; i++)
            out[i] = pool_work(in[i]);
    } else {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = pool_work(in[i]);
    }
}

/* Placed (on_caller), the caller, thread 0, submits: it is the thread
 * pool_place pinned. Otherwise whichever thread reaches `single` first. */
static long tasks(long n, long burst, bool on_caller)
{
    _Atomic long ran = 0;
#pragma omp parallel
    {
        bool submitter = on_caller && omp_get_thread_num() == 0;
        if (!on_caller) {
#pragma omp single nowait
            submitter = true;
        }
        for (long i = 0; submitter && i < n; i += burst) {
            long k = n - i < burst ? n - i : burst;
            for (long j = 0; j < k; j++) {
#pragma omp task
                atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
            }
#pragma omp taskwait
        }
    } /* the others run tasks at the region's closing barrier */
    return atomic_load(&ran);
}

int pool_omp_round(pool_round *r)
{
    omp_set_num_threads(r->workers);
    /* Start the team before the clock: a region that does nothing. */
    _Atomic int started = 0;
#pragma omp parallel
    atomic_fetch_add(&started, 1);
    if (atomic_load(&started) != r->workers) {
        snprintf(r->error, sizeof(r->error), "a team of %d threads, not %d", atomic_load(&started),
                 r->workers);
        return -1;
    }
    if (r->cpus && pool_place(r->cpus, r->error, sizeof(r->error)) < 0)
        return -1;
    int64_t c0 = pool_cpu_ns(), t0 = bench_now_ns();
    if (r->in)
        map(r->variant, r->in, r->out, (long)r->n, (long)r->chunk);
    else
        r->ran = tasks((long)r->n, (long)r->burst, r->cpus != 0);
    r->ns = bench_now_ns() - t0;
    r->cpu_ns = pool_cpu_ns() - c0;
    return 0;
}
#endif
