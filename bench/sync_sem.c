/*
 * bench/sync_sem.c — the `sem` scenario: round trips per second of a token
 * passed between two sides through two semaphores (side 0 releases sem[1]
 * and acquires sem[0]; side 1 the other way round), between two threads
 * and between a parent and a forked child; and the round trips per second
 * of two threads meeting at a barrier.
 *
 * kart (kart_sem) is compared with POSIX sem_t (posix-sem), kart-shared
 * (KART_SYNC_SHARED) with a process-shared sem_t (posix-sem-shared) across
 * fork, and kart-barrier with pthread_barrier. Every object sits in a
 * MAP_SHARED mapping. Beside the rate, the CPU time both sides spent per
 * round trip: a primitive that spins before it sleeps may buy its rate
 * with CPU that a sleeper leaves to others.
 *
 * Side 0 keeps the time, from the first token side 1 sends (so the other
 * side is running, thread or child) to the moment it decides to stop; it
 * then raises `stop` before it releases side 1 a last time, so that the
 * semaphore's release/acquire ordering carries the flag across. The
 * counts must match on both sides and both semaphores must end at zero;
 * at the barrier, exactly one side of each round must get each index.
 */
#include "sync_util.h"

#include <errno.h>
#include <kart.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#define BATCH 16 /* round trips between two looks at the clock */

typedef struct sem_mem {
    _Alignas(64) union {
        kart_sem k[2];
        sem_t p[2];
        kart_barrier kb;
        pthread_barrier_t pb;
    } u;
    _Alignas(64) _Atomic int stop;
    _Atomic uint64_t stop_round; /* barrier: the last round, 0 until known */
    uint64_t trips[2];
    uint64_t index_sum[2]; /* barrier: the indices each side got */
    int64_t cpu[2];        /* CPU time of each side, ns */
    int64_t start, stop_at;
    double seconds;
} sem_mem;

static void check(int err, const char *what)
{
    if (err != 0)
        bench_fail("%s: %s", what, strerror(err < 0 ? -err : err));
}

static void check_errno(int rc, const char *what)
{
    if (rc != 0)
        bench_fail("%s: %s", what, strerror(errno));
}

/* Side 0, after each round trip: whether the time is up. */
static bool due(sem_mem *m, uint64_t trips)
{
    return trips % BATCH == 0 && bench_now_ns() - m->start >= (int64_t)(m->seconds * 1e9);
}

/* ---- semaphore ping-pong ---- */

static void kart_side(sem_mem *m, int me)
{
    kart_sem *mine = &m->u.k[me], *theirs = &m->u.k[1 - me];
    uint64_t trips = 0;
    if (me == 1) {
        check(kart_sem_release(theirs, 1), "kart_sem_release");
        for (;;) {
            check(kart_sem_acquire(mine, -1), "kart_sem_acquire");
            if (atomic_load_explicit(&m->stop, memory_order_relaxed))
                break;
            trips++;
            check(kart_sem_release(theirs, 1), "kart_sem_release");
        }
    } else {
        check(kart_sem_acquire(mine, -1), "kart_sem_acquire");
        m->start = bench_now_ns();
        while (!due(m, trips)) {
            check(kart_sem_release(theirs, 1), "kart_sem_release");
            check(kart_sem_acquire(mine, -1), "kart_sem_acquire");
            trips++;
        }
        m->stop_at = bench_now_ns();
        atomic_store_explicit(&m->stop, 1, memory_order_relaxed); /* the release orders it */
        check(kart_sem_release(theirs, 1), "kart_sem_release");
    }
    m->trips[me] = trips;
}

static void posix_side(sem_mem *m, int me)
{
    sem_t *mine = &m->u.p[me], *theirs = &m->u.p[1 - me];
    uint64_t trips = 0;
    if (me == 1) {
        check_errno(sem_post(theirs), "sem_post");
        for (;;) {
            while (sem_wait(mine) != 0)
                if (errno != EINTR)
                    bench_fail("sem_wait: %s", strerror(errno));
            if (atomic_load_explicit(&m->stop, memory_order_relaxed))
                break;
            trips++;
            check_errno(sem_post(theirs), "sem_post");
        }
    } else {
        while (sem_wait(mine) != 0)
            if (errno != EINTR)
                bench_fail("sem_wait: %s", strerror(errno));
        m->start = bench_now_ns();
        while (!due(m, trips)) {
            check_errno(sem_post(theirs), "sem_post");
            while (sem_wait(mine) != 0)
                if (errno != EINTR)
                    bench_fail("sem_wait: %s", strerror(errno));
            trips++;
        }
        m->stop_at = bench_now_ns();
        atomic_store_explicit(&m->stop, 1, memory_order_relaxed); /* the post orders it */
        check_errno(sem_post(theirs), "sem_post");
    }
    m->trips[me] = trips;
}

/* ---- barrier round trips (threads only) ----
 *
 * Rounds are numbered from 1 on each side. Side 0 decides before it
 * arrives at round n that n is the last, and writes n to stop_round; both
 * sides leave after the round whose number they find there. Side 1 may
 * read stop_round early (after round n-1, while side 0 is writing it), but
 * then it cannot see n-1 there, and after round n the barrier has ordered
 * the write before its read. Side 0 stops the clock after the last round,
 * so rounds 2..n are the ones timed. */

/* Side 0, before it arrives at round n + 1. */
static void barrier_turn(sem_mem *m, int me, uint64_t n)
{
    if (me == 0 && n > 0 && due(m, n))
        atomic_store_explicit(&m->stop_round, n + 1, memory_order_relaxed);
}

/* After round n: whether it was the last. */
static bool barrier_last(sem_mem *m, int me, uint64_t n)
{
    if (me == 0 && n == 1)
        m->start = bench_now_ns();
    if (atomic_load_explicit(&m->stop_round, memory_order_relaxed) != n)
        return false;
    if (me == 0)
        m->stop_at = bench_now_ns();
    m->trips[me] = n;
    return true;
}

static void kart_barrier_side(sem_mem *m, int me)
{
    uint64_t n = 0, sum = 0;
    do {
        barrier_turn(m, me, n);
        int idx = kart_barrier_wait(&m->u.kb, -1);
        if (idx < 0)
            check(idx, "kart_barrier_wait");
        sum += (uint64_t)idx;
    } while (!barrier_last(m, me, ++n));
    m->index_sum[me] = sum;
}

static void pthread_barrier_side(sem_mem *m, int me)
{
    uint64_t n = 0, serial = 0;
    do {
        barrier_turn(m, me, n);
        int rc = pthread_barrier_wait(&m->u.pb);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            serial++;
        else
            check(rc, "pthread_barrier_wait");
    } while (!barrier_last(m, me, ++n));
    m->index_sum[me] = serial;
}

/* ---- running the sides ---- */

/* Runs one side and records its CPU time. */
static void run_side(sem_mem *m, int me, void (*side)(sem_mem *m, int me))
{
    int64_t cpu = sync_cpu_ns();
    side(m, me);
    m->cpu[me] = sync_cpu_ns() - cpu;
}

typedef struct side_arg {
    sem_mem *m;
    int me;
    void (*side)(sem_mem *m, int me);
} side_arg;

static void *as_thread(void *arg)
{
    side_arg *a = arg;
    run_side(a->m, a->me, a->side);
    return NULL;
}

static int kart_as_child(void *arg)
{
    run_side(arg, 1, kart_side);
    return 0;
}

static int posix_as_child(void *arg)
{
    run_side(arg, 1, posix_side);
    return 0;
}

static sem_mem *open_mem(bench_ctx *ctx)
{
    sem_mem *m = sync_map(sizeof(*m));
    m->seconds = ctx->seconds;
    return m;
}

/* Runs the sides as threads, or side 1 as a forked child (child != NULL);
 * checks the counts; fills in the metric. */
static void drive(bench_ctx *ctx, sem_mem *m, void (*side)(sem_mem *, int), int (*child)(void *))
{
    if (child) {
        pid_t pid = sync_fork(child, m);
        run_side(m, 0, side);
        sync_reap(pid);
    } else {
        side_arg a[2] = {{m, 0, side}, {m, 1, side}};
        void *arg[2] = {&a[0], &a[1]};
        sync_threads(2, as_thread, arg);
    }
    if (m->trips[0] != m->trips[1] || m->trips[0] < 2)
        bench_fail("side 0 counted %llu round trips, side 1 %llu", (unsigned long long)m->trips[0],
                   (unsigned long long)m->trips[1]);
    /* Ping-pong: every trip counted is timed; barrier: all but round 1. */
    uint64_t timed = m->trips[0] - (atomic_load(&m->stop_round) != 0);
    ctx->value[0] = (double)timed * 1e9 / (double)(m->stop_at - m->start);
    ctx->value[1] = (double)(m->cpu[0] + m->cpu[1]) / (double)m->trips[0];
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = strcmp(impl->arg, "shared") == 0;
    sem_mem *m = open_mem(ctx);
    for (int i = 0; i < 2; i++)
        check(kart_sem_init(&m->u.k[i], 0, shared ? KART_SYNC_SHARED : 0), "kart_sem_init");
    drive(ctx, m, kart_side, shared ? kart_as_child : NULL);
    for (int i = 0; i < 2; i++)
        if (kart_sem_value(&m->u.k[i]) != 0)
            bench_fail("semaphore %d ends at %d, not 0", i, kart_sem_value(&m->u.k[i]));
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_posix(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = strcmp(impl->arg, "shared") == 0;
    sem_mem *m = open_mem(ctx);
    for (int i = 0; i < 2; i++)
        check_errno(sem_init(&m->u.p[i], shared, 0), "sem_init");
    drive(ctx, m, posix_side, shared ? posix_as_child : NULL);
    for (int i = 0; i < 2; i++) {
        int v = -1;
        check_errno(sem_getvalue(&m->u.p[i], &v), "sem_getvalue");
        if (v != 0)
            bench_fail("semaphore %d ends at %d, not 0", i, v);
        check_errno(sem_destroy(&m->u.p[i]), "sem_destroy");
    }
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_kart_barrier(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    sem_mem *m = open_mem(ctx);
    check(kart_barrier_init(&m->u.kb, (int)bench_param_get(ctx->c, "parties"), 0, NULL, NULL),
          "kart_barrier_init");
    drive(ctx, m, kart_barrier_side, NULL);
    /* Indices 0 and 1 each round: their sum is the number of rounds. */
    uint64_t rounds = m->trips[0];
    if (m->index_sum[0] + m->index_sum[1] != rounds)
        bench_fail("%llu rounds, but the indices add up to %llu", (unsigned long long)rounds,
                   (unsigned long long)(m->index_sum[0] + m->index_sum[1]));
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_pthread_barrier(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    sem_mem *m = open_mem(ctx);
    check(pthread_barrier_init(&m->u.pb, NULL, (unsigned)bench_param_get(ctx->c, "parties")),
          "pthread_barrier_init");
    drive(ctx, m, pthread_barrier_side, NULL);
    uint64_t rounds = m->trips[0];
    if (m->index_sum[0] + m->index_sum[1] != rounds)
        bench_fail("%llu rounds, but %llu serial threads", (unsigned long long)rounds,
                   (unsigned long long)(m->index_sum[0] + m->index_sum[1]));
    check(pthread_barrier_destroy(&m->u.pb), "pthread_barrier_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"round_trips_per_s", "rt/s", true}, {"cpu_ns_per_rt", "ns", false}, /* both sides together */
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){1, {{"processes", 1}}};
    out[1] = (bench_case){1, {{"processes", 2}}};
    out[2] = (bench_case){1, {{"parties", 2}}};
    return 3;
}

/* The barrier case runs the barriers; two processes run the
 * process-shared semaphores; one, the others. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    if (sync_case_has(c, "parties"))
        return strcmp(impl->arg, "barrier") == 0;
    return strcmp(impl->arg, "barrier") != 0 &&
           (strcmp(impl->arg, "shared") == 0) == (bench_param_get(c, "processes") == 2);
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_kart, .arg = "plain"};
    out[n++] = (bench_impl){.name = "posix-sem", .run = run_posix, .arg = "plain"};
    out[n++] = (bench_impl){
        .name = "kart-shared", .run = run_kart, .arg = "shared", .peer = "posix-sem-shared"};
    out[n++] = (bench_impl){
        .name = "posix-sem-shared", .run = run_posix, .arg = "shared", .peer = "posix-sem-shared"};
    out[n++] = (bench_impl){.name = "kart-barrier",
                            .run = run_kart_barrier,
                            .arg = "barrier",
                            .peer = "pthread-barrier"};
    out[n++] = (bench_impl){.name = "pthread-barrier",
                            .run = run_pthread_barrier,
                            .arg = "barrier",
                            .peer = "pthread-barrier"};
    return n;
}

const bench_scenario bench_sem = {
    .name = "sem",
    .summary = "semaphore ping-pong round trips/s (2 threads; parent and forked child), "
               "and barrier round trips/s (2 threads)",
    .baseline = "posix-sem",
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.2,
};
