/*
 * bench/sync_cond.c — the `cond` scenario: round trips per second of a turn
 * handed back and forth between two sides under one lock, each side
 * waiting on its own condition until the turn is its own and notifying
 * the other's when it hands the turn over.
 *
 * Every round trip is two sleeps and two wake-ups through the kernel (on
 * two cores the waiter is usually asleep by the time it is notified), so
 * this measures a condition's whole wait path: release the lock, sleep,
 * wake, take the lock back. kart (kart_cond over kart_lock) is compared
 * with pthread_cond over pthread_mutex between two threads, and
 * kart-shared with pthread-shared between a parent and a forked child,
 * everything in a MAP_SHARED mapping.
 *
 * The count must be exact: side 1 goes first and side 0 answers each of
 * its turns, so both sides hand over the turn equally often. Side 0 keeps
 * the time: the clock starts at its first turn (the other side is running
 * by then, whether thread or child) and stops when it decides to stop.
 * Beside the rate, the CPU time both sides spent per round trip.
 */
#include "sync_util.h"

#include <kart.h>
#include <pthread.h>
#include <string.h>

#define BATCH 16 /* round trips between two looks at the clock */

typedef struct cond_mem {
    _Alignas(64) union {
        struct {
            kart_lock lock;
            kart_cond cond[2]; /* cond[i]: the turn became side i's */
        } k;
        struct {
            pthread_mutex_t lock;
            pthread_cond_t cond[2];
        } p;
    } u;
    int turn, stop; /* under the lock */
    _Alignas(64) uint64_t trips[2];
    int64_t cpu[2]; /* CPU time of each side, ns */
    int64_t start, stop_at;
    double seconds;
} cond_mem;

static void check(int err, const char *what)
{
    if (err != 0)
        bench_fail("%s: %s", what, strerror(err < 0 ? -err : err));
}

/* Side 0's look at the clock, under the lock on its turn: whether to
 * stop now. */
static bool side0_turn(cond_mem *m, uint64_t trips)
{
    if (trips == 0) {
        m->start = bench_now_ns();
        return false;
    }
    if (trips % BATCH != 0)
        return false;
    int64_t now = bench_now_ns();
    if (now - m->start < (int64_t)(m->seconds * 1e9))
        return false;
    m->stop_at = now;
    return true;
}

static void kart_side(cond_mem *m, int me)
{
    kart_lock *l = &m->u.k.lock;
    uint64_t trips = 0;
    check(kart_lock_acquire(l, -1), "kart_lock_acquire");
    for (;;) {
        while (m->turn != me)
            check(kart_cond_wait(&m->u.k.cond[me], l, -1), "kart_cond_wait");
        if (m->stop)
            break;
        if (me == 0 && side0_turn(m, trips))
            m->stop = 1;
        m->turn = 1 - me;
        trips++;
        check(kart_cond_notify(&m->u.k.cond[1 - me], l, 1), "kart_cond_notify");
        if (m->stop)
            break;
    }
    check(kart_lock_release(l), "kart_lock_release");
    m->trips[me] = trips;
}

static void pthread_side(cond_mem *m, int me)
{
    pthread_mutex_t *l = &m->u.p.lock;
    uint64_t trips = 0;
    check(pthread_mutex_lock(l), "pthread_mutex_lock");
    for (;;) {
        while (m->turn != me)
            check(pthread_cond_wait(&m->u.p.cond[me], l), "pthread_cond_wait");
        if (m->stop)
            break;
        if (me == 0 && side0_turn(m, trips))
            m->stop = 1;
        m->turn = 1 - me;
        trips++;
        check(pthread_cond_signal(&m->u.p.cond[1 - me]), "pthread_cond_signal");
        if (m->stop)
            break;
    }
    check(pthread_mutex_unlock(l), "pthread_mutex_unlock");
    m->trips[me] = trips;
}

/* Runs one side and records its CPU time. */
static void run_side(cond_mem *m, int me, void (*side)(cond_mem *m, int me))
{
    int64_t cpu = sync_cpu_ns();
    side(m, me);
    m->cpu[me] = sync_cpu_ns() - cpu;
}

/* The sides as thread functions and child functions. */
typedef struct side_arg {
    cond_mem *m;
    int me;
} side_arg;

static void *kart_as_thread(void *arg)
{
    side_arg *a = arg;
    run_side(a->m, a->me, kart_side);
    return NULL;
}

static void *pthread_as_thread(void *arg)
{
    side_arg *a = arg;
    run_side(a->m, a->me, pthread_side);
    return NULL;
}

static int kart_as_child(void *arg)
{
    run_side(arg, 1, kart_side);
    return 0;
}

static int pthread_as_child(void *arg)
{
    run_side(arg, 1, pthread_side);
    return 0;
}

static cond_mem *open_mem(bench_ctx *ctx)
{
    cond_mem *m = sync_map(sizeof(*m));
    m->seconds = ctx->seconds;
    m->turn = 1; /* side 1 first: side 0's first turn says it is running */
    return m;
}

/* Runs the two sides, as threads or as parent and child; checks the
 * count; fills in the metric. */
static void drive(bench_ctx *ctx, cond_mem *m, bool fork_child, void *(*thread)(void *),
                  int (*child)(void *))
{
    if (fork_child) {
        pid_t pid = sync_fork(child, m);
        side_arg a = {m, 0};
        thread(&a);
        sync_reap(pid);
    } else {
        side_arg a[2] = {{m, 0}, {m, 1}};
        void *arg[2] = {&a[0], &a[1]};
        sync_threads(2, thread, arg);
    }
    if (m->trips[0] != m->trips[1] || m->trips[0] < 2)
        bench_fail("side 0 handed the turn over %llu times, side 1 %llu times",
                   (unsigned long long)m->trips[0], (unsigned long long)m->trips[1]);
    ctx->value[0] = (double)(m->trips[0] - 1) * 1e9 / (double)(m->stop_at - m->start);
    ctx->value[1] = (double)(m->cpu[0] + m->cpu[1]) / (double)m->trips[0];
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = strcmp(impl->arg, "shared") == 0;
    unsigned flags = shared ? KART_SYNC_SHARED : 0;
    cond_mem *m = open_mem(ctx);
    check(kart_lock_init(&m->u.k.lock, flags), "kart_lock_init");
    for (int i = 0; i < 2; i++)
        check(kart_cond_init(&m->u.k.cond[i], flags), "kart_cond_init");
    drive(ctx, m, shared, kart_as_thread, kart_as_child);
    check(kart_lock_destroy(&m->u.k.lock), "kart_lock_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_pthread(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = strcmp(impl->arg, "shared") == 0;
    int ps = shared ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE;
    cond_mem *m = open_mem(ctx);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    check(pthread_mutexattr_init(&ma), "pthread_mutexattr_init");
    check(pthread_mutexattr_setpshared(&ma, ps), "pthread_mutexattr_setpshared");
    check(pthread_mutex_init(&m->u.p.lock, &ma), "pthread_mutex_init");
    pthread_mutexattr_destroy(&ma);
    check(pthread_condattr_init(&ca), "pthread_condattr_init");
    check(pthread_condattr_setpshared(&ca, ps), "pthread_condattr_setpshared");
    for (int i = 0; i < 2; i++)
        check(pthread_cond_init(&m->u.p.cond[i], &ca), "pthread_cond_init");
    pthread_condattr_destroy(&ca);
    drive(ctx, m, shared, pthread_as_thread, pthread_as_child);
    for (int i = 0; i < 2; i++)
        check(pthread_cond_destroy(&m->u.p.cond[i]), "pthread_cond_destroy");
    check(pthread_mutex_destroy(&m->u.p.lock), "pthread_mutex_destroy");
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
    return 2;
}

/* Two processes run the process-shared variants; one, the others. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    return (strcmp(impl->arg, "shared") == 0) == (bench_param_get(c, "processes") == 2);
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_kart, .arg = "plain"};
    out[n++] = (bench_impl){.name = "pthread", .run = run_pthread, .arg = "plain"};
    out[n++] = (bench_impl){
        .name = "kart-shared", .run = run_kart, .arg = "shared", .peer = "pthread-shared"};
    out[n++] = (bench_impl){
        .name = "pthread-shared", .run = run_pthread, .arg = "shared", .peer = "pthread-shared"};
    return n;
}

const bench_scenario bench_cond = {
    .name = "cond",
    .summary = "condition ping-pong round trips/s: 2 threads, and parent and forked child",
    .baseline = "pthread",
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.2,
};
