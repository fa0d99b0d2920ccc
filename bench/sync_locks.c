/*
 * bench/sync_locks.c — the `locks` scenario: what a lock costs alone
 * (acquire+release with nobody else around, ns per pair), what two threads
 * get through when they fight over one (each takes it, bumps a counter,
 * drops it, flat out), and the read-mostly throughput of a reader-writer
 * lock (two threads, 95% reads).
 *
 * Each variant is compared with the same variant of the peer: kart with a
 * default pthread_mutex, kart-shared (KART_SYNC_SHARED) with a
 * PTHREAD_PROCESS_SHARED mutex, kart-robust (KART_SYNC_ROBUST|SHARED) with
 * a robust process-shared one, kart-rwlock with pthread_rwlock. Every
 * object sits in a MAP_SHARED mapping, so that only the flags differ. The
 * counters the locks protect must come out exact: a lock that let two
 * holders in would lose increments, and a reader that saw a writer half
 * way (a != b) fails the run. Beside the rates, the CPU time the threads
 * spent per operation: spinning instead of sleeping shows there.
 */
#include "sync_util.h"

#include <errno.h>
#include <kart.h>
#include <pthread.h>
#include <string.h>

#define BATCH 64 /* operations between two looks at the clock */

typedef struct locks_mem locks_mem;

/* One thread's share of the run, on its own line. */
typedef struct locks_side {
    _Alignas(64) uint64_t ops, writes;
    int64_t cpu; /* ns */
    int side;
    locks_mem *m;
} locks_side;

struct locks_mem {
    _Alignas(64) union {
        kart_lock k;
        pthread_mutex_t p;
        kart_rwlock krw;
        pthread_rwlock_t prw;
    } u;
    /* What the lock protects, on the lock's line as in most programs. */
    uint64_t counter;
    uint64_t a, b; /* the RWLock case: writers bump both, readers compare */
    _Alignas(64) sync_clock clock;
    locks_side side[2];
    int threads;
    unsigned read_pct;
};

enum variant { PLAIN, SHARED, ROBUST };

static enum variant variant_of(const bench_impl *impl)
{
    return strcmp(impl->arg, "robust") == 0   ? ROBUST
           : strcmp(impl->arg, "shared") == 0 ? SHARED
                                              : PLAIN;
}

static void check(int err, const char *what)
{
    if (err != 0)
        bench_fail("%s: %s", what, strerror(err < 0 ? -err : err));
}

/* ---- the workers: one side's loop, until the clock says stop ---- */

static void *kart_mutex_side(void *arg)
{
    locks_side *s = arg;
    locks_mem *m = s->m;
    uint64_t ops = 0;
    sync_clock_start(&m->clock, m->threads);
    int64_t cpu = sync_cpu_ns();
    do {
        for (int i = 0; i < BATCH; i++) {
            check(kart_lock_acquire(&m->u.k, -1), "kart_lock_acquire");
            m->counter++;
            check(kart_lock_release(&m->u.k), "kart_lock_release");
        }
        ops += BATCH;
    } while (!sync_clock_done(&m->clock));
    s->cpu = sync_cpu_ns() - cpu;
    s->ops = ops;
    return NULL;
}

static void *pthread_mutex_side(void *arg)
{
    locks_side *s = arg;
    locks_mem *m = s->m;
    uint64_t ops = 0;
    sync_clock_start(&m->clock, m->threads);
    int64_t cpu = sync_cpu_ns();
    do {
        for (int i = 0; i < BATCH; i++) {
            check(pthread_mutex_lock(&m->u.p), "pthread_mutex_lock");
            m->counter++;
            check(pthread_mutex_unlock(&m->u.p), "pthread_mutex_unlock");
        }
        ops += BATCH;
    } while (!sync_clock_done(&m->clock));
    s->cpu = sync_cpu_ns() - cpu;
    s->ops = ops;
    return NULL;
}

/* xorshift32: which operations are writes, the same sequence for both
 * implementations (seeded by side). */
static uint32_t next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void read_side(locks_mem *m)
{
    /* volatile: two real loads, so a writer caught half way shows. */
    if (((volatile uint64_t *)&m->a)[0] != ((volatile uint64_t *)&m->b)[0])
        bench_fail("a reader saw a writer's update half done");
}

static void write_side(locks_mem *m)
{
    ((volatile uint64_t *)&m->a)[0]++;
    ((volatile uint64_t *)&m->b)[0]++;
}

static void *kart_rw_side(void *arg)
{
    locks_side *s = arg;
    locks_mem *m = s->m;
    uint64_t ops = 0, writes = 0;
    uint32_t x = 2463534242u + (uint32_t)s->side;
    sync_clock_start(&m->clock, m->threads);
    int64_t cpu = sync_cpu_ns();
    do {
        for (int i = 0; i < BATCH; i++) {
            if (next(&x) % 100 < m->read_pct) {
                check(kart_rwlock_rdlock(&m->u.krw, -1), "kart_rwlock_rdlock");
                read_side(m);
            } else {
                check(kart_rwlock_wrlock(&m->u.krw, -1), "kart_rwlock_wrlock");
                write_side(m);
                writes++;
            }
            check(kart_rwlock_unlock(&m->u.krw), "kart_rwlock_unlock");
        }
        ops += BATCH;
    } while (!sync_clock_done(&m->clock));
    s->cpu = sync_cpu_ns() - cpu;
    s->ops = ops;
    s->writes = writes;
    return NULL;
}

static void *pthread_rw_side(void *arg)
{
    locks_side *s = arg;
    locks_mem *m = s->m;
    uint64_t ops = 0, writes = 0;
    uint32_t x = 2463534242u + (uint32_t)s->side;
    sync_clock_start(&m->clock, m->threads);
    int64_t cpu = sync_cpu_ns();
    do {
        for (int i = 0; i < BATCH; i++) {
            if (next(&x) % 100 < m->read_pct) {
                check(pthread_rwlock_rdlock(&m->u.prw), "pthread_rwlock_rdlock");
                read_side(m);
            } else {
                check(pthread_rwlock_wrlock(&m->u.prw), "pthread_rwlock_wrlock");
                write_side(m);
                writes++;
            }
            check(pthread_rwlock_unlock(&m->u.prw), "pthread_rwlock_unlock");
        }
        ops += BATCH;
    } while (!sync_clock_done(&m->clock));
    s->cpu = sync_cpu_ns() - cpu;
    s->ops = ops;
    s->writes = writes;
    return NULL;
}

/* ---- one timed run ---- */

static locks_mem *open_mem(bench_ctx *ctx, int threads)
{
    if (threads < 1 || threads > 2)
        bench_fail("threads=%d: this scenario runs 1 or 2", threads);
    locks_mem *m = sync_map(sizeof(*m));
    m->clock.seconds = ctx->seconds;
    m->threads = threads;
    for (int i = 0; i < threads; i++) {
        m->side[i].side = i;
        m->side[i].m = m;
    }
    return m;
}

/* Runs the sides (the caller's thread alone when there is one), checks
 * the count, fills in the metrics. */
static void drive(bench_ctx *ctx, locks_mem *m, int threads, void *(*side)(void *))
{
    if (threads == 1) {
        side(&m->side[0]);
    } else {
        void *arg[2] = {&m->side[0], &m->side[1]};
        sync_threads(2, side, arg);
    }
    uint64_t ops = m->side[0].ops + m->side[1].ops;
    uint64_t writes = m->side[0].writes + m->side[1].writes;
    if (side == kart_rw_side || side == pthread_rw_side) {
        if (m->a != writes || m->b != writes)
            bench_fail("%llu writes, but a=%llu b=%llu", (unsigned long long)writes,
                       (unsigned long long)m->a, (unsigned long long)m->b);
    } else if (m->counter != ops) {
        bench_fail("%llu increments under the lock, but the counter says %llu",
                   (unsigned long long)ops, (unsigned long long)m->counter);
    }
    double ns = (double)(m->clock.stop_at - m->clock.start);
    ctx->value[0] = ns / (double)ops;
    ctx->value[1] = (double)ops * 1e9 / ns;
    ctx->value[2] = (double)(m->side[0].cpu + m->side[1].cpu) / (double)ops;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    int threads = (int)bench_param_get(ctx->c, "threads");
    locks_mem *m = open_mem(ctx, threads);
    enum variant v = variant_of(impl);
    unsigned flags = v == PLAIN    ? 0
                     : v == SHARED ? KART_SYNC_SHARED
                                   : KART_SYNC_SHARED | KART_SYNC_ROBUST;
    check(kart_lock_init(&m->u.k, flags), "kart_lock_init");
    drive(ctx, m, threads, kart_mutex_side);
    check(kart_lock_destroy(&m->u.k), "kart_lock_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_pthread(const bench_impl *impl, bench_ctx *ctx)
{
    int threads = (int)bench_param_get(ctx->c, "threads");
    locks_mem *m = open_mem(ctx, threads);
    enum variant v = variant_of(impl);
    pthread_mutexattr_t a;
    check(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
    if (v != PLAIN)
        check(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED),
              "pthread_mutexattr_setpshared");
    if (v == ROBUST)
        check(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), "pthread_mutexattr_setrobust");
    check(pthread_mutex_init(&m->u.p, &a), "pthread_mutex_init");
    pthread_mutexattr_destroy(&a);
    drive(ctx, m, threads, pthread_mutex_side);
    check(pthread_mutex_destroy(&m->u.p), "pthread_mutex_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_kart_rw(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int threads = (int)bench_param_get(ctx->c, "threads");
    locks_mem *m = open_mem(ctx, threads);
    m->read_pct = (unsigned)bench_param_get(ctx->c, "read_pct");
    check(kart_rwlock_init(&m->u.krw, 0), "kart_rwlock_init");
    drive(ctx, m, threads, kart_rw_side);
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_pthread_rw(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int threads = (int)bench_param_get(ctx->c, "threads");
    locks_mem *m = open_mem(ctx, threads);
    m->read_pct = (unsigned)bench_param_get(ctx->c, "read_pct");
    check(pthread_rwlock_init(&m->u.prw, NULL), "pthread_rwlock_init");
    drive(ctx, m, threads, pthread_rw_side);
    check(pthread_rwlock_destroy(&m->u.prw), "pthread_rwlock_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"ns_per_op", "ns", false},
    {"ops_per_s", "op/s", true},
    {"cpu_ns_per_op", "ns", false}, /* all threads together */
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){1, {{"threads", 1}}};
    out[1] = (bench_case){1, {{"threads", 2}}};
    out[2] = (bench_case){2, {{"threads", 2}, {"read_pct", 95}}};
    return 3;
}

/* The RWLock case runs the RWLocks; the others, the mutexes. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    return (strcmp(impl->arg, "rwlock") == 0) == sync_case_has(c, "read_pct");
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_kart, .arg = "plain"};
    out[n++] = (bench_impl){
        .name = "kart-shared", .run = run_kart, .arg = "shared", .peer = "pthread-shared"};
    out[n++] = (bench_impl){
        .name = "kart-robust", .run = run_kart, .arg = "robust", .peer = "pthread-robust"};
    out[n++] = (bench_impl){.name = "pthread", .run = run_pthread, .arg = "plain"};
    out[n++] = (bench_impl){
        .name = "pthread-shared", .run = run_pthread, .arg = "shared", .peer = "pthread-shared"};
    out[n++] = (bench_impl){
        .name = "pthread-robust", .run = run_pthread, .arg = "robust", .peer = "pthread-robust"};
    out[n++] = (bench_impl){
        .name = "kart-rwlock", .run = run_kart_rw, .arg = "rwlock", .peer = "pthread-rwlock"};
    out[n++] = (bench_impl){
        .name = "pthread-rwlock", .run = run_pthread_rw, .arg = "rwlock", .peer = "pthread-rwlock"};
    return n;
}

const bench_scenario bench_locks = {
    .name = "locks",
    .summary = "lock+unlock alone (ns/pair), 2 threads contending (op/s), "
               "RWLock 95% reads (op/s)",
    .baseline = "pthread",
    .nmetrics = 3,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.2,
};
