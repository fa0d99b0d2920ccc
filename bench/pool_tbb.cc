/*
 * bench/pool_tbb.cc — the `pool` scenario's oneTBB peer: one round, run by
 * bench/pool.c in a child process. C++, as oneTBB is; the Makefile builds
 * and links it only where pkg-config finds tbb (libtbb-dev).
 *
 * The map: tbb::parallel_for over a blocked_range with grainsize `chunk`
 * and TBB's default auto_partitioner, which is what a TBB user writes. The
 * grainsize is a floor: the range is split into tasks no smaller than it,
 * adaptively (more splits when threads steal), so at chunk 1 a task holds
 * many items, as kart's claims do. (simple_partitioner at grainsize 1
 * would make a task of each item.)
 * The tasks cases: a tbb::task_group, g.run() per task, g.wait() every
 * `burst` tasks (1: after each): issue 17's tiny-task submit-and-wait peer.
 * Both run in a task_arena of `workers` slots (the caller takes one).
 */
#include "pool_peers.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

static int64_t now_ns()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void map(const uint64_t *in, uint64_t *out, size_t n, size_t chunk)
{
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n, chunk ? chunk : 1),
                      [=](const tbb::blocked_range<size_t> &b) {
                          for (size_t i = b.begin(); i != b.end(); i++)
                              out[i] = pool_work(in[i]);
                      });
}

static long tasks(size_t n, size_t burst)
{
    std::atomic<long> ran{0};
    tbb::task_group g;
    for (size_t i = 0; i < n; i += burst) {
        size_t k = n - i < burst ? n - i : burst;
        for (size_t j = 0; j < k; j++)
            g.run([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        g.wait();
    }
    return ran.load();
}

extern "C" int pool_tbb_round(pool_round *r)
{
    try {
        tbb::task_arena arena(r->workers);
        bool placed = true;
        arena.execute([r, &placed] {
            /* Start the workers before the clock. */
            std::atomic<long> warm{0};
            tbb::parallel_for(0, 64 * r->workers, [&warm](int) { warm++; });
            if (r->cpus && pool_place(r->cpus, r->error, sizeof(r->error)) < 0) {
                placed = false;
                return;
            }
            int64_t c0 = pool_cpu_ns(), t0 = now_ns();
            if (r->in)
                map(r->in, r->out, r->n, r->chunk);
            else
                r->ran = tasks(r->n, r->burst);
            r->ns = now_ns() - t0;
            r->cpu_ns = pool_cpu_ns() - c0;
        });
        if (!placed)
            return -1;
    } catch (const std::exception &e) {
        snprintf(r->error, sizeof(r->error), "oneTBB: %s", e.what());
        return -1;
    }
    return 0;
}
