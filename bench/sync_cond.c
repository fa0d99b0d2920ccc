/*
 * bench/sync_cond.c — the `cond` scenario: round trips per second of a turn
 * handed back and forth between two sides under one lock, each side
 * waiting on its own condition until the turn is its own and notifying
 * the other's when it hands the turn over: two threads free to run
 * anywhere, both pinned to one CPU, four such pairs on two CPUs, and a
 * parent and a forked child.
 *
 * Every round trip is two waits and two wake-ups, so this measures a
 * condition's whole wait path: release the lock, wait, wake, take the
 * lock back. kart_cond spins briefly before it sleeps; glibc's condition
 * never does. So kart (kart_cond over kart_lock) is compared with the best
 * of the peers that spin: spin-futex (sync_spin.h: a sequence-number
 * condition over a futex mutex, with kart's own spin budget) and
 * pthread-adaptive (pthread_cond over a PTHREAD_MUTEX_ADAPTIVE_NP mutex:
 * glibc's condition itself never spins, so only taking the mutex back
 * does). kart-shared likewise with the process-shared variants of those,
 * between a parent and a forked child. pthread (a default mutex) stays in
 * the table. Everything sits in a MAP_SHARED mapping.
 *
 * The count must be exact: side 1 goes first and side 0 answers each of
 * its turns, so both sides hand over the turn equally often. Side 0 of
 * each pair keeps the time: the clock starts at its first turn (the other
 * side is running by then, whether thread or child) and stops when it
 * decides to stop; the pairs' rates add up. Beside the rate, the CPU time
 * both sides spent per round trip, and the CPUs each side kept busy (its
 * CPU ns per wall ns, over the pairs): a condition that spins buys its
 * rate with CPU that a sleeper leaves to others.
 */
#include "sync_util.h"
#include "sync_spin.h"

#include <kart.h>
#include <pthread.h>
#include <string.h>

#define BATCH 16    /* round trips between two looks at the clock */
#define MAX_PAIRS 4 /* the oversubscribed case: 4 pairs on 2 CPUs */

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
        struct {
            spin_mutex lock;
            spin_cond cond[2];
        } s;
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

static void spin_side(cond_mem *m, int me)
{
    spin_mutex *l = &m->u.s.lock;
    uint64_t trips = 0;
    spin_mutex_lock(l);
    for (;;) {
        while (m->turn != me)
            spin_cond_wait(&m->u.s.cond[me], l);
        if (m->stop)
            break;
        if (me == 0 && side0_turn(m, trips))
            m->stop = 1;
        m->turn = 1 - me;
        trips++;
        spin_cond_signal(&m->u.s.cond[1 - me]);
        if (m->stop)
            break;
    }
    spin_mutex_unlock(l);
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
    void (*side)(cond_mem *m, int me);
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

static int pthread_as_child(void *arg)
{
    run_side(arg, 1, pthread_side);
    return 0;
}

static int spin_as_child(void *arg)
{
    run_side(arg, 1, spin_side);
    return 0;
}

/* One cond_mem per pair, each in its own mapping. */
static int open_mem(bench_ctx *ctx, cond_mem **m)
{
    int pairs = sync_case_pairs(ctx->c);
    if (pairs < 1 || pairs > MAX_PAIRS)
        bench_fail("pairs=%d: this scenario runs 1 to %d", pairs, MAX_PAIRS);
    for (int k = 0; k < pairs; k++) {
        m[k] = sync_map(sizeof(*m[k]));
        m[k]->seconds = ctx->seconds;
        m[k]->turn = 1; /* side 1 first: side 0's first turn says it is running */
    }
    return pairs;
}

static void close_mem(cond_mem **m, int pairs)
{
    for (int k = 0; k < pairs; k++)
        sync_unmap(m[k], sizeof(*m[k]));
}

/* Runs the two sides of every pair, as threads or (one pair) as parent
 * and child; checks the counts; fills in the metrics. */
static void drive(bench_ctx *ctx, cond_mem **m, int pairs, void (*side)(cond_mem *, int),
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
            bench_fail("side 0 handed the turn over %llu times, side 1 %llu times",
                       (unsigned long long)m[k]->trips[0], (unsigned long long)m[k]->trips[1]);
        double ns = (double)(m[k]->stop_at - m[k]->start);
        rate += (double)(m[k]->trips[0] - 1) * 1e9 / ns;
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
    unsigned flags = shared ? KART_SYNC_SHARED : 0;
    cond_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++) {
        check(kart_lock_init(&m[k]->u.k.lock, flags), "kart_lock_init");
        for (int i = 0; i < 2; i++)
            check(kart_cond_init(&m[k]->u.k.cond[i], flags), "kart_cond_init");
    }
    drive(ctx, m, pairs, kart_side, shared ? kart_as_child : NULL);
    for (int k = 0; k < pairs; k++)
        kart_lock_destroy(&m[k]->u.k.lock);
    close_mem(m, pairs);
    return 0;
}

/* pthread, pthread-adaptive and their -shared variants. */
static int run_pthread(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = is_shared(impl);
    int ps = shared ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE;
    cond_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    check(pthread_mutexattr_init(&ma), "pthread_mutexattr_init");
    check(pthread_mutexattr_setpshared(&ma, ps), "pthread_mutexattr_setpshared");
    if (strncmp(impl->arg, "adaptive", 8) == 0)
        check(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP),
              "pthread_mutexattr_settype");
    check(pthread_condattr_init(&ca), "pthread_condattr_init");
    check(pthread_condattr_setpshared(&ca, ps), "pthread_condattr_setpshared");
    for (int k = 0; k < pairs; k++) {
        check(pthread_mutex_init(&m[k]->u.p.lock, &ma), "pthread_mutex_init");
        for (int i = 0; i < 2; i++)
            check(pthread_cond_init(&m[k]->u.p.cond[i], &ca), "pthread_cond_init");
    }
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_destroy(&ca);
    drive(ctx, m, pairs, pthread_side, shared ? pthread_as_child : NULL);
    for (int k = 0; k < pairs; k++) {
        for (int i = 0; i < 2; i++)
            check(pthread_cond_destroy(&m[k]->u.p.cond[i]), "pthread_cond_destroy");
        check(pthread_mutex_destroy(&m[k]->u.p.lock), "pthread_mutex_destroy");
    }
    close_mem(m, pairs);
    return 0;
}

static int run_spin(const bench_impl *impl, bench_ctx *ctx)
{
    bool shared = is_shared(impl);
    cond_mem *m[MAX_PAIRS];
    int pairs = open_mem(ctx, m);
    for (int k = 0; k < pairs; k++) {
        spin_mutex_init(&m[k]->u.s.lock, shared);
        for (int i = 0; i < 2; i++)
            spin_cond_init(&m[k]->u.s.cond[i], shared);
    }
    drive(ctx, m, pairs, spin_side, shared ? spin_as_child : NULL);
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
    int n = 0;
    out[n++] = (bench_case){1, {{"processes", 1}}};
    /* Both sides on one CPU, and 4 pairs on 2 CPUs (more threads than
     * CPUs): where spinning can only take time from the partner. */
    out[n++] = (bench_case){2, {{"processes", 1}, {"cpus", 1}}};
    if (sync_cpus_allowed() >= 2)
        out[n++] = (bench_case){3, {{"processes", 1}, {"pairs", 4}, {"cpus", 2}}};
    out[n++] = (bench_case){1, {{"processes", 2}}};
    return n;
}

/* Two processes run the process-shared variants; one, the others. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    return is_shared(impl) == (bench_param_get(c, "processes") == 2);
}

static int impls(bench_impl *out)
{
    int n = 0;
    /* kart's like-for-like peers: the spinning ones; the ratio is to
     * whichever of them did best. */
    out[n++] = (bench_impl){
        .name = "kart", .run = run_kart, .arg = "plain", .peer = "spin-futex,pthread-adaptive"};
    out[n++] = (bench_impl){.name = "pthread", .run = run_pthread, .arg = "plain"};
    out[n++] = (bench_impl){.name = "pthread-adaptive", .run = run_pthread, .arg = "adaptive"};
    out[n++] = (bench_impl){.name = "spin-futex", .run = run_spin, .arg = "spin"};
    out[n++] = (bench_impl){.name = "kart-shared",
                            .run = run_kart,
                            .arg = "shared",
                            .peer = "spin-futex-shared,pthread-adaptive-shared"};
    out[n++] = (bench_impl){
        .name = "pthread-shared", .run = run_pthread, .arg = "shared", .peer = "pthread-shared"};
    out[n++] = (bench_impl){.name = "pthread-adaptive-shared",
                            .run = run_pthread,
                            .arg = "adaptive-shared",
                            .peer = "pthread-shared"};
    out[n++] = (bench_impl){.name = "spin-futex-shared",
                            .run = run_spin,
                            .arg = "spin-shared",
                            .peer = "pthread-shared"};
    return n;
}

const bench_scenario bench_cond = {
    .name = "cond",
    .summary = "condition ping-pong round trips/s: 2 threads (free, on one CPU, 4 pairs on 2 "
               "CPUs), and parent and forked child",
    .baseline = "pthread",
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
