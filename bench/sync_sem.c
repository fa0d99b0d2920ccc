/*
 * bench/sync_sem.c — the `sem` scenario: round trips per second of a token
 * passed between two sides through two semaphores (side 0 releases sem[1]
 * and acquires sem[0]; side 1 the other way round), and of two threads
 * meeting at a barrier: two threads free to run anywhere, both pinned to
 * one CPU, four such pairs on two CPUs; and the semaphores between a
 * parent and a forked child.
 *
 * kart_sem and kart_barrier spin briefly before they sleep; POSIX
 * semaphores and glibc's barrier never do, and glibc has no spinning
 * variant of either. So kart is compared with spin-futex (sync_spin.h: a
 * semaphore whose futex word is its value, and a generation-counting
 * barrier, each with kart's own spin budget), kart-shared with
 * spin-futex-shared across fork, kart-barrier with spin-futex-barrier;
 * posix-sem, posix-sem-shared and pthread-barrier stay in the table. Every
 * object sits in a MAP_SHARED mapping. Beside the rate, the CPU time both
 * sides spent per round trip and the CPUs each side kept busy (its CPU ns
 * per wall ns, over the pairs): a primitive that spins before it sleeps
 * may buy its rate with CPU that a sleeper leaves to others.
 *
 * Side 0 of each pair keeps the time, from the first token side 1 sends
 * (so the other side is running, thread or child) to the moment it
 * decides to stop; it then raises `stop` before it releases side 1 a last
 * time, so that the semaphore's release/acquire ordering carries the flag
 * across. The pairs' rates add up. The counts must match on both sides and
 * both semaphores must end at zero; at the barrier, exactly one side of
 * each round must get each index.
 */
#include "sync_util.h"
#include "sync_spin.h"

#include <errno.h>
#include <kart.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#define BATCH 16    /* round trips between two looks at the clock */
#define MAX_PAIRS 4 /* the oversubscribed cases: 4 pairs on 2 CPUs */

typedef struct sem_mem {
    _Alignas(64) union {
        kart_sem k[2];
        sem_t p[2];
        spin_sem s[2];
        kart_barrier kb;
        pthread_barrier_t pb;
        spin_barrier sb;
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

static void spin_side(sem_mem *m, int me)
{
    spin_sem *mine = &m->u.s[me], *theirs = &m->u.s[1 - me];
    uint64_t trips = 0;
    if (me == 1) {
        spin_sem_post(theirs);
        for (;;) {
            spin_sem_wait(mine);
            if (atomic_load_explicit(&m->stop, memory_order_relaxed))
                break;
            trips++;
            spin_sem_post(theirs);
        }
    } else {
        spin_sem_wait(mine);
        m->start = bench_now_ns();
        while (!due(m, trips)) {
            spin_sem_post(theirs);
            spin_sem_wait(mine);
            trips++;
        }
        m->stop_at = bench_now_ns();
        atomic_store_explicit(&m->stop, 1, memory_order_relaxed); /* the post orders it */
        spin_sem_post(theirs);
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

static void spin_barrier_side(sem_mem *m, int me)
{
    uint64_t n = 0, serial = 0;
    do {
        barrier_turn(m, me, n);
        serial += (uint64_t)spin_barrier_wait(&m->u.sb);
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

static int spin_as_child(void *arg)
{
    run_side(arg, 1, spin_side);
    return 0;
}

/* One sem_mem per pair, each in its own mapping. */
static int open_mem(bench_ctx *ctx, sem_mem **m)
{
    int pairs = sync_case_pairs(ctx->c);
    if (pairs < 1 || pairs > MAX_PAIRS)
        bench_fail("pairs=%d: this scenario runs 1 to %d", pairs, MAX_PAIRS);
    for (int k = 0; k < pairs; k++) {
        m[k] = sync_map(sizeof(*m[k]));
        m[k]->seconds = ctx->seconds;
    }
    return pairs;
}

static void close_mem(sem_mem **m, int pairs)
{
    for (int k = 0; k < pairs; k++)
        sync_unmap(m[k], sizeof(*m[k]));
}

/* Runs the sides of every pair as threads, or side 1 of the one pair as
 * a forked child (child != NULL); checks the counts; fills in the
 * metrics. */
static void drive(bench_ctx *ctx, sem_mem **m, int pairs, void (*side)(sem_mem *, int),
                  int (*child)(void *))
{
    if (child) {
        pid_t pid = sync_fork(child, m[0]);
        run_side(m[0], 0, side);
        sync_reap(pid);
    } else {
        side_arg a[2 * MAX_PAIRS];
        void *arg[2 * MAX_PAIRS];
        for (int i = 0; i < 2 * pairs; i++) {
            a[i] = (side_arg){m[i / 2], i % 2, side};
            arg[i] = &a[i];
        }
        sync_threads(2 * pairs, as_thread, arg, sync_case_cpus(ctx->c));
    }
    double rate = 0, cpu_ns = 0, busy[2] = {0, 0};
    uint64_t trips = 0;
    for (int k = 0; k < pairs; k++) {
        if (m[k]->trips[0] != m[k]->trips[1] || m[k]->trips[0] < 2)
            bench_fail("side 0 counted %llu round trips, side 1 %llu",
                       (unsigned long long)m[k]->trips[0], (unsigned long long)m[k]->trips[1]);
        /* Ping-pong: every trip counted is timed; barrier: all but round 1. */
        uint64_t timed = m[k]->trips[0] - (atomic_load(&m[k]->stop_round) != 0);
        double ns = (double)(m[k]->stop_at - m[k]->start);
        rate += (double)timed * 1e9 / ns;
        cpu_ns += (double)(m[k]->cpu[0] + m[k]->cpu[1]);
        trips += m[k]->trips[0];
        for (int i = 0; i < 2; i++)
            busy[i] += (double)m[k]->cpu[i] / ns;
    }
    ctx->value[0] = rate;
    ctx->value[1] = cpu_ns / (double)trips;
    ctx->value[2] = busy[0];
    ctx->value[3] = busy[1];
}

static bool is_shared(const bench_impl *impl)
{
    return strstr(impl->arg, "shared") != NULL;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = is_shared(impl);
    sem_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++)
        for (int i = 0; i < 2; i++)
            check(kart_sem_init(&m[k]->u.k[i], 0, shared ? KART_SYNC_SHARED : 0), "kart_sem_init");
    drive(ctx, m, pairs, kart_side, shared ? kart_as_child : NULL);
    for (int k = 0; k < pairs; k++)
        for (int i = 0; i < 2; i++)
            if (kart_sem_value(&m[k]->u.k[i]) != 0)
                bench_fail("semaphore %d ends at %d, not 0", i, kart_sem_value(&m[k]->u.k[i]));
    close_mem(m, pairs);
    return 0;
}

static int run_posix(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = is_shared(impl);
    sem_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++)
        for (int i = 0; i < 2; i++)
            check_errno(sem_init(&m[k]->u.p[i], shared, 0), "sem_init");
    drive(ctx, m, pairs, posix_side, shared ? posix_as_child : NULL);
    for (int k = 0; k < pairs; k++)
        for (int i = 0; i < 2; i++) {
            int v = -1;
            check_errno(sem_getvalue(&m[k]->u.p[i], &v), "sem_getvalue");
            if (v != 0)
                bench_fail("semaphore %d ends at %d, not 0", i, v);
            check_errno(sem_destroy(&m[k]->u.p[i]), "sem_destroy");
        }
    close_mem(m, pairs);
    return 0;
}

static int run_spin(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = is_shared(impl);
    sem_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++)
        for (int i = 0; i < 2; i++)
            spin_sem_init(&m[k]->u.s[i], 0, shared);
    drive(ctx, m, pairs, spin_side, shared ? spin_as_child : NULL);
    for (int k = 0; k < pairs; k++)
        for (int i = 0; i < 2; i++) {
            uint32_t v = atomic_load(&m[k]->u.s[i].value);
            if (v != 0)
                bench_fail("semaphore %d ends at %u, not 0", i, v);
        }
    close_mem(m, pairs);
    return 0;
}

/* Each round of a two-party barrier hands out one index 0 and one 1 (or
 * one serial thread): per pair, they add up to the number of rounds. */
static void check_indices(sem_mem **m, int pairs)
{
    for (int k = 0; k < pairs; k++) {
        uint64_t rounds = m[k]->trips[0], sum = m[k]->index_sum[0] + m[k]->index_sum[1];
        if (sum != rounds)
            bench_fail("%llu rounds, but the indices (serial threads) add up to %llu",
                       (unsigned long long)rounds, (unsigned long long)sum);
    }
}

static int run_kart_barrier(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    sem_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++)
        check(kart_barrier_init(&m[k]->u.kb, (size_t)bench_param_get(ctx->c, "parties"), 0, NULL,
                                NULL),
              "kart_barrier_init");
    drive(ctx, m, pairs, kart_barrier_side, NULL);
    check_indices(m, pairs);
    close_mem(m, pairs);
    return 0;
}

static int run_pthread_barrier(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    sem_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++)
        check(pthread_barrier_init(&m[k]->u.pb, NULL, (unsigned)bench_param_get(ctx->c, "parties")),
              "pthread_barrier_init");
    drive(ctx, m, pairs, pthread_barrier_side, NULL);
    check_indices(m, pairs);
    for (int k = 0; k < pairs; k++)
        check(pthread_barrier_destroy(&m[k]->u.pb), "pthread_barrier_destroy");
    close_mem(m, pairs);
    return 0;
}

static int run_spin_barrier(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    sem_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++)
        spin_barrier_init(&m[k]->u.sb, (uint32_t)bench_param_get(ctx->c, "parties"), false);
    drive(ctx, m, pairs, spin_barrier_side, NULL);
    check_indices(m, pairs);
    close_mem(m, pairs);
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"round_trips_per_s", "rt/s", true},
    {"cpu_ns_per_rt", "ns", false}, /* both sides together */
    {"cpu_busy_side0", "CPUs", false},
    {"cpu_busy_side1", "CPUs", false},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    bool two = sync_cpus_allowed() >= 2;
    int n = 0;
    /* Each kind free, on one CPU, and 4 pairs on 2 CPUs (more threads
     * than CPUs): where spinning can only take time from the partner. */
    out[n++] = (bench_case){1, {{"processes", 1}}};
    out[n++] = (bench_case){2, {{"processes", 1}, {"cpus", 1}}};
    if (two)
        out[n++] = (bench_case){3, {{"processes", 1}, {"pairs", 4}, {"cpus", 2}}};
    out[n++] = (bench_case){1, {{"processes", 2}}};
    out[n++] = (bench_case){1, {{"parties", 2}}};
    out[n++] = (bench_case){2, {{"parties", 2}, {"cpus", 1}}};
    if (two)
        out[n++] = (bench_case){3, {{"parties", 2}, {"pairs", 4}, {"cpus", 2}}};
    return n;
}

static bool is_barrier(const bench_impl *impl)
{
    return strcmp(impl->arg, "barrier") == 0;
}

/* The barrier cases run the barriers; two processes run the
 * process-shared semaphores; one, the others. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    if (sync_case_has(c, "parties"))
        return is_barrier(impl);
    return !is_barrier(impl) && is_shared(impl) == (bench_param_get(c, "processes") == 2);
}

static int impls(bench_impl *out)
{
    int n = 0;
    /* kart against the peer that spins as it does (glibc has no spinning
     * semaphore or barrier). */
    out[n++] = (bench_impl){.name = "kart", .run = run_kart, .arg = "plain", .peer = "spin-futex"};
    out[n++] = (bench_impl){.name = "posix-sem", .run = run_posix, .arg = "plain"};
    out[n++] = (bench_impl){.name = "spin-futex", .run = run_spin, .arg = "spin"};
    out[n++] = (bench_impl){
        .name = "kart-shared", .run = run_kart, .arg = "shared", .peer = "spin-futex-shared"};
    out[n++] = (bench_impl){
        .name = "posix-sem-shared", .run = run_posix, .arg = "shared", .peer = "posix-sem-shared"};
    out[n++] = (bench_impl){.name = "spin-futex-shared",
                            .run = run_spin,
                            .arg = "spin-shared",
                            .peer = "posix-sem-shared"};
    out[n++] = (bench_impl){.name = "kart-barrier",
                            .run = run_kart_barrier,
                            .arg = "barrier",
                            .peer = "spin-futex-barrier"};
    out[n++] = (bench_impl){.name = "pthread-barrier",
                            .run = run_pthread_barrier,
                            .arg = "barrier",
                            .peer = "pthread-barrier"};
    out[n++] = (bench_impl){.name = "spin-futex-barrier",
                            .run = run_spin_barrier,
                            .arg = "barrier",
                            .peer = "pthread-barrier"};
    return n;
}

const bench_scenario bench_sem = {
    .name = "sem",
    .summary = "semaphore ping-pong round trips/s (2 threads: free, on one CPU, 4 pairs on 2 "
               "CPUs; parent and forked child), and barrier round trips/s (2 threads, the same "
               "three ways)",
    .baseline = "posix-sem",
    .nmetrics = 4,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.12,
    .metric_note = {"all pairs together", "both sides together",
                    "side 0's CPU ns per wall ns, over the pairs", "side 1's, likewise"},
    .descriptive = 1u << 2 | 1u << 3,
};
