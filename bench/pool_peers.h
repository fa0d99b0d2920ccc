/*
 * bench/pool_peers.h — what the `pool` scenario (bench/pool.c) shares with
 * its OpenMP and oneTBB peers (bench/pool_omp.c, bench/pool_tbb.cc): the
 * per-item work, and one round of a peer.
 *
 * pool.c runs each round of these peers in a child process of its own
 * (fork, no exec): their runtimes keep worker threads that spin after the
 * work is done (libgomp for GOMP_SPINCOUNT iterations, TBB's workers
 * before they sleep), and that spinning must not land on whatever runs
 * next. kart-bench itself never starts either runtime, so each child
 * starts a fresh one. C and C++ both include this file.
 */
#ifndef KART_BENCH_POOL_PEERS_H
#define KART_BENCH_POOL_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Steps of the per-item work: a few hundred ns of dependent arithmetic. */
#define POOL_WORK_STEPS 100
/* The tasks cases submit bursts of `burst` tasks and wait for each burst
 * (kart: a future each, waited for and freed; the peers: a wait for the
 * burst): 1 (submit, wait, next) and POOL_BURST. */
#define POOL_BURST 1000

static inline uint64_t pool_work(uint64_t x)
{
    for (int i = 0; i < POOL_WORK_STEPS; i++)
        x = (x * 6364136223846793005u + 1442695040888963407u) ^ (x >> 29);
    return x;
}

/* The CPU time of this process so far, every thread of it, user and
 * system, in ns (getrusage's microseconds): the tasks cases report CPU
 * per task, since a pool that sleeps and wakes pays in CPU what a
 * spinning one pays in latency, and the other way round. */
static inline int64_t pool_cpu_ns(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return ((int64_t)u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000;
}

/* One round of a peer. A map when in is not NULL: out[i] = pool_work(in[i])
 * for i < n, in chunks of `chunk` items as the peer understands a chunk
 * (docs/bench.md, "pool"). Otherwise n empty tasks (each counts itself in
 * `ran`), waited for every `burst`. The runtime starts `workers`
 * threads, caller included, and runs once before the clock starts. */
typedef struct pool_round {
    const char *variant; /* the peer's schedule: "dynamic", "guided", ... */
    int workers;
    const uint64_t *in;
    uint64_t *out;
    size_t n;
    size_t chunk;
    size_t burst;    /* tasks: how many are submitted before a wait */
    int cpus;        /* tasks: 0, or placed on 1 or 2 CPUs after the warm-up (pool_place) */
    int64_t ns;      /* out: the time of the work alone */
    int64_t cpu_ns;  /* out: the CPU time of the process (every thread) over it */
    long ran;        /* out: tasks that ran (tasks only) */
    char error[160]; /* out: why the round failed */
} pool_round;

/* Each returns 0, or -1 with r->error set. */
int pool_omp_round(pool_round *r);
int pool_tbb_round(pool_round *r);

/* The placed tasks cases (bench/pool_place.c): called by the submitting
 * thread once the runtime's threads are started, it pins itself to the
 * first usable CPU and every other thread of the process to the first
 * (cpus 1) or the second (cpus 2). pool_place_undo gives every thread the
 * mask the first call found. Each returns 0, or -1 with err set. */
int pool_place(int cpus, char *err, size_t errlen);
int pool_place_undo(char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
