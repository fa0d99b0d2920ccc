/*
 * bench/sync_locks.c — the `locks` scenario: what a lock costs alone
 * (acquire+release with nobody else around, ns per pair), what two threads
 * get through when they fight over one (each takes it, bumps a counter,
 * drops it, flat out) — free to run anywhere, both pinned to one CPU, and
 * four such pairs on two CPUs — and the read-mostly throughput of a
 * reader-writer lock (two threads, 95% reads).
 *
 * kart spins a little before it sleeps; glibc's default mutex never spins.
 * So kart is compared with the best of the peers that spin as it does:
 * pthread-adaptive (PTHREAD_MUTEX_ADAPTIVE_NP, glibc's spinning mutex) and
 * spin-futex (sync_spin.h: a plain futex mutex with kart's own spin
 * budget). kart-shared (KART_SYNC_SHARED) likewise with the process-shared
 * variants of those two, and kart-robust (glibc's robust mutex inside,
 * which does not spin) with a robust process-shared pthread mutex;
 * kart-rwlock with the best of pthread_rwlock (which never spins) and
 * spin-futex-rwlock (sync_spin.h: a plain writer-preferring futex RWLock,
 * kart's spin budget before each sleep, as kart's RWLock spins). The
 * plain pthread mutexes stay in the table,
 * compared with pthread. Every object sits in a MAP_SHARED mapping, so
 * that only the flags differ.
 *
 * The counters the locks protect must come out exact: a lock that let two
 * holders in would lose increments, and a reader that saw a writer half
 * way (a != b) fails the run. Beside the rates: the CPU time the threads
 * spent per operation and how many CPUs they kept busy (spinning instead
 * of sleeping shows there), and how evenly the two threads of a pair
 * shared the lock (a lock that lets one thread keep it is not faster for
 * being unfair: a pair where one thread got more than twice the other's
 * acquisitions is flagged "unfair").
 */
#include "sync_util.h"
#include "sync_spin.h"

#include <errno.h>
#include <kart.h>
#include <pthread.h>
#include <string.h>

#define BATCH 64    /* operations between two looks at the clock */
#define MAX_PAIRS 4 /* the oversubscribed case: 4 pairs on 2 CPUs */

/* One lock and what it protects. */
typedef struct locks_pair {
    _Alignas(64) union {
        kart_lock k;
        pthread_mutex_t p;
        spin_mutex s;
        kart_rwlock krw;
        pthread_rwlock_t prw;
        spin_rwlock srw;
    } u;
    /* What the lock protects, on the lock's line as in most programs. */
    uint64_t counter;
    uint64_t a, b; /* the RWLock case: writers bump both, readers compare */
} locks_pair;

typedef struct locks_mem locks_mem;

/* One thread's share of the run, on its own line. */
typedef struct locks_side {
    _Alignas(64) uint64_t ops, writes;
    int64_t cpu; /* ns */
    int side;
    locks_pair *pair;
    locks_mem *m;
} locks_side;

struct locks_mem {
    locks_pair pair[MAX_PAIRS];
    /* One clock for every thread of every pair: they start and stop
     * together. */
    _Alignas(64) sync_clock clock;
    locks_side side[2 * MAX_PAIRS];
    int threads; /* per pair */
    int pairs;
    unsigned read_pct;
};

/* impl->arg: the flavour and whether it is process-shared. */
static bool is_shared(const bench_impl *impl)
{
    return strstr(impl->arg, "shared") != NULL;
}

static bool is_robust(const bench_impl *impl)
{
    return strcmp(impl->arg, "robust") == 0;
}

static void check(int err, const char *what)
{
    if (err != 0)
        bench_fail("%s: %s", what, strerror(err < 0 ? -err : err));
}

/* ---- the workers: one side's loop, until the clock says stop ---- */

/* The loop every mutex runs, around its own lock and unlock: a macro, so
 * that no indirect call sits in the measured loop. */
#define MUTEX_LOOP(s, LOCK, UNLOCK)                                                                \
    do {                                                                                           \
        locks_side *s_ = (s);                                                                      \
        locks_pair *p = s_->pair;                                                                  \
        uint64_t ops = 0;                                                                          \
        sync_clock_start(&s_->m->clock, s_->m->threads * s_->m->pairs);                            \
        int64_t cpu = sync_cpu_ns();                                                               \
        do {                                                                                       \
            for (int i = 0; i < BATCH; i++) {                                                      \
                LOCK;                                                                              \
                p->counter++;                                                                      \
                UNLOCK;                                                                            \
            }                                                                                      \
            ops += BATCH;                                                                          \
        } while (!sync_clock_done(&s_->m->clock));                                                 \
        s_->cpu = sync_cpu_ns() - cpu;                                                             \
        s_->ops = ops;                                                                             \
    } while (0)

static void *kart_mutex_side(void *arg)
{
    MUTEX_LOOP(arg, check(kart_lock_acquire(&p->u.k, -1), "kart_lock_acquire"),
               check(kart_lock_release(&p->u.k), "kart_lock_release"));
    return NULL;
}

static void *pthread_mutex_side(void *arg)
{
    MUTEX_LOOP(arg, check(pthread_mutex_lock(&p->u.p), "pthread_mutex_lock"),
               check(pthread_mutex_unlock(&p->u.p), "pthread_mutex_unlock"));
    return NULL;
}

static void *spin_mutex_side(void *arg)
{
    MUTEX_LOOP(arg, spin_mutex_lock(&p->u.s), spin_mutex_unlock(&p->u.s));
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

static void read_side(locks_pair *p)
{
    /* volatile: two real loads, so a writer caught half way shows. */
    if (((volatile uint64_t *)&p->a)[0] != ((volatile uint64_t *)&p->b)[0])
        bench_fail("a reader saw a writer's update half done");
}

static void write_side(locks_pair *p)
{
    ((volatile uint64_t *)&p->a)[0]++;
    ((volatile uint64_t *)&p->b)[0]++;
}

/* The loop both RWLocks run (a macro for the same reason). */
#define RW_LOOP(s, RDLOCK, WRLOCK, UNLOCK)                                                         \
    do {                                                                                           \
        locks_side *s_ = (s);                                                                      \
        locks_pair *p = s_->pair;                                                                  \
        uint64_t ops = 0, writes = 0;                                                              \
        uint32_t x = 2463534242u + (uint32_t)s_->side;                                             \
        sync_clock_start(&s_->m->clock, s_->m->threads * s_->m->pairs);                            \
        int64_t cpu = sync_cpu_ns();                                                               \
        do {                                                                                       \
            for (int i = 0; i < BATCH; i++) {                                                      \
                if (next(&x) % 100 < s_->m->read_pct) {                                            \
                    RDLOCK;                                                                        \
                    read_side(p);                                                                  \
                } else {                                                                           \
                    WRLOCK;                                                                        \
                    write_side(p);                                                                 \
                    writes++;                                                                      \
                }                                                                                  \
                UNLOCK;                                                                            \
            }                                                                                      \
            ops += BATCH;                                                                          \
        } while (!sync_clock_done(&s_->m->clock));                                                 \
        s_->cpu = sync_cpu_ns() - cpu;                                                             \
        s_->ops = ops;                                                                             \
        s_->writes = writes;                                                                       \
    } while (0)

static void *kart_rw_side(void *arg)
{
    RW_LOOP(arg, check(kart_rwlock_rdlock(&p->u.krw, -1), "kart_rwlock_rdlock"),
            check(kart_rwlock_wrlock(&p->u.krw, -1), "kart_rwlock_wrlock"),
            check(kart_rwlock_unlock(&p->u.krw), "kart_rwlock_unlock"));
    return NULL;
}

static void *pthread_rw_side(void *arg)
{
    RW_LOOP(arg, check(pthread_rwlock_rdlock(&p->u.prw), "pthread_rwlock_rdlock"),
            check(pthread_rwlock_wrlock(&p->u.prw), "pthread_rwlock_wrlock"),
            check(pthread_rwlock_unlock(&p->u.prw), "pthread_rwlock_unlock"));
    return NULL;
}

static void *spin_rw_side(void *arg)
{
    RW_LOOP(arg, spin_rwlock_rdlock(&p->u.srw), spin_rwlock_wrlock(&p->u.srw),
            spin_rwlock_unlock(&p->u.srw));
    return NULL;
}

/* ---- one timed run ---- */

static locks_mem *open_mem(bench_ctx *ctx)
{
    int threads = (int)bench_param_get(ctx->c, "threads");
    int pairs = sync_case_pairs(ctx->c);
    if (threads < 1 || threads > 2 || pairs < 1 || pairs > MAX_PAIRS)
        bench_fail("threads=%d pairs=%d: this scenario runs 1 or 2 threads, in 1 to %d pairs",
                   threads, pairs, MAX_PAIRS);
    locks_mem *m = sync_map(sizeof(*m));
    m->clock.seconds = ctx->seconds;
    m->threads = threads;
    m->pairs = pairs;
    if (sync_case_has(ctx->c, "read_pct"))
        m->read_pct = (unsigned)bench_param_get(ctx->c, "read_pct");
    for (int i = 0; i < threads * pairs; i++) {
        m->side[i].side = i;
        m->side[i].pair = &m->pair[i / threads];
        m->side[i].m = m;
    }
    return m;
}

/* Runs the sides, each on a thread of its own (even a lone one: once a
 * process has created a thread, glibc's mutex stops taking its
 * single-threaded shortcut, plain stores for atomics, which no program that
 * needs a lock gets; so every variant is measured the same way whichever
 * case runs first), checks each pair's count, fills in the metrics. */
static void drive(bench_ctx *ctx, locks_mem *m, void *(*side)(void *))
{
    int n = m->threads * m->pairs;
    void *arg[2 * MAX_PAIRS];
    for (int i = 0; i < n; i++)
        arg[i] = &m->side[i];
    sync_threads(n, side, arg, sync_case_cpus(ctx->c));
    bool rw = side == kart_rw_side || side == pthread_rw_side || side == spin_rw_side;
    uint64_t ops = 0;
    int64_t cpu = 0;
    double worst = 1; /* the most uneven pair: its busiest thread's ops / its idlest's */
    for (int k = 0; k < m->pairs; k++) {
        locks_pair *p = &m->pair[k];
        locks_side *s = &m->side[k * m->threads];
        uint64_t pops = 0, writes = 0, most = 0, least = UINT64_MAX;
        for (int t = 0; t < m->threads; t++) {
            pops += s[t].ops;
            writes += s[t].writes;
            cpu += s[t].cpu;
            most = s[t].ops > most ? s[t].ops : most;
            least = s[t].ops < least ? s[t].ops : least;
        }
        if (rw && (p->a != writes || p->b != writes))
            bench_fail("%llu writes, but a=%llu b=%llu", (unsigned long long)writes,
                       (unsigned long long)p->a, (unsigned long long)p->b);
        if (!rw && p->counter != pops)
            bench_fail("%llu increments under the lock, but the counter says %llu",
                       (unsigned long long)pops, (unsigned long long)p->counter);
        /* Every thread does at least one batch: least > 0. */
        if ((double)most / (double)least > worst)
            worst = (double)most / (double)least;
        ops += pops;
    }
    double ns = (double)(m->clock.stop_at - m->clock.start);
    ctx->value[0] = ns / (double)ops;
    ctx->value[1] = (double)ops * 1e9 / ns;
    ctx->value[2] = (double)cpu / (double)ops;
    ctx->value[3] = (double)cpu / ns;
    ctx->value[4] = worst;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    locks_mem *m = open_mem(ctx);
    unsigned flags = is_robust(impl)   ? KART_SYNC_SHARED | KART_SYNC_ROBUST
                     : is_shared(impl) ? KART_SYNC_SHARED
                                       : 0;
    for (int k = 0; k < m->pairs; k++)
        check(kart_lock_init(&m->pair[k].u.k, flags), "kart_lock_init");
    drive(ctx, m, kart_mutex_side);
    for (int k = 0; k < m->pairs; k++)
        kart_lock_destroy(&m->pair[k].u.k);
    sync_unmap(m, sizeof(*m));
    return 0;
}

/* pthread, pthread-shared, pthread-robust, pthread-adaptive and
 * pthread-adaptive-shared: one mutex, different attributes. */
static int run_pthread(const bench_impl *impl, bench_ctx *ctx)
{
    locks_mem *m = open_mem(ctx);
    pthread_mutexattr_t a;
    check(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
    if (is_shared(impl) || is_robust(impl))
        check(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED),
              "pthread_mutexattr_setpshared");
    if (is_robust(impl))
        check(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), "pthread_mutexattr_setrobust");
    if (strncmp(impl->arg, "adaptive", 8) == 0)
        check(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP),
              "pthread_mutexattr_settype");
    for (int k = 0; k < m->pairs; k++)
        check(pthread_mutex_init(&m->pair[k].u.p, &a), "pthread_mutex_init");
    pthread_mutexattr_destroy(&a);
    drive(ctx, m, pthread_mutex_side);
    for (int k = 0; k < m->pairs; k++)
        check(pthread_mutex_destroy(&m->pair[k].u.p), "pthread_mutex_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_spin(const bench_impl *impl, bench_ctx *ctx)
{
    locks_mem *m = open_mem(ctx);
    for (int k = 0; k < m->pairs; k++)
        spin_mutex_init(&m->pair[k].u.s, is_shared(impl));
    drive(ctx, m, spin_mutex_side);
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_kart_rw(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    locks_mem *m = open_mem(ctx);
    for (int k = 0; k < m->pairs; k++)
        check(kart_rwlock_init(&m->pair[k].u.krw, 0), "kart_rwlock_init");
    drive(ctx, m, kart_rw_side);
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_pthread_rw(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    locks_mem *m = open_mem(ctx);
    for (int k = 0; k < m->pairs; k++)
        check(pthread_rwlock_init(&m->pair[k].u.prw, NULL), "pthread_rwlock_init");
    drive(ctx, m, pthread_rw_side);
    for (int k = 0; k < m->pairs; k++)
        check(pthread_rwlock_destroy(&m->pair[k].u.prw), "pthread_rwlock_destroy");
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_spin_rw(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    locks_mem *m = open_mem(ctx);
    for (int k = 0; k < m->pairs; k++)
        spin_rwlock_init(&m->pair[k].u.srw, false);
    drive(ctx, m, spin_rw_side);
    sync_unmap(m, sizeof(*m));
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"ns_per_op", "ns", false},     {"ops_per_s", "op/s", true},
    {"cpu_ns_per_op", "ns", false}, /* all threads together */
    {"cpu_busy", "CPUs", false},    /* all threads' CPU ns per wall ns */
    {"max_min_share", "x", false},  /* the most uneven pair's busiest/idlest thread */
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    int n = 0;
    out[n++] = (bench_case){1, {{"threads", 1}}};
    out[n++] = (bench_case){1, {{"threads", 2}}};
    /* Both threads on one CPU: a spinner can only waste the holder's
     * time there; and 4 pairs on 2 CPUs, more threads than CPUs. */
    out[n++] = (bench_case){2, {{"threads", 2}, {"cpus", 1}}};
    if (sync_cpus_allowed() >= 2)
        out[n++] = (bench_case){3, {{"threads", 2}, {"pairs", 4}, {"cpus", 2}}};
    out[n++] = (bench_case){2, {{"threads", 2}, {"read_pct", 95}}};
    return n;
}

/* The RWLock case runs the RWLocks; the pinned and oversubscribed cases
 * the private mutexes; the others every mutex. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    bool rw = strcmp(impl->arg, "rwlock") == 0;
    if (sync_case_has(c, "read_pct"))
        return rw;
    if (sync_case_has(c, "cpus"))
        return !rw && !is_shared(impl) && !is_robust(impl);
    return !rw;
}

/* kart's like-for-like peers: the spinning ones; the ratio is to
 * whichever of them did best. */
#define SPINNING_PEERS "spin-futex,pthread-adaptive"
#define SPINNING_SHARED_PEERS "spin-futex-shared,pthread-adaptive-shared"

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] =
        (bench_impl){.name = "kart", .run = run_kart, .arg = "plain", .peer = SPINNING_PEERS};
    out[n++] = (bench_impl){
        .name = "kart-shared", .run = run_kart, .arg = "shared", .peer = SPINNING_SHARED_PEERS};
    out[n++] = (bench_impl){
        .name = "kart-robust", .run = run_kart, .arg = "robust", .peer = "pthread-robust"};
    out[n++] = (bench_impl){.name = "pthread", .run = run_pthread, .arg = "plain"};
    out[n++] = (bench_impl){
        .name = "pthread-shared", .run = run_pthread, .arg = "shared", .peer = "pthread-shared"};
    out[n++] = (bench_impl){
        .name = "pthread-robust", .run = run_pthread, .arg = "robust", .peer = "pthread-robust"};
    out[n++] = (bench_impl){.name = "pthread-adaptive", .run = run_pthread, .arg = "adaptive"};
    out[n++] = (bench_impl){.name = "pthread-adaptive-shared",
                            .run = run_pthread,
                            .arg = "adaptive-shared",
                            .peer = "pthread-shared"};
    out[n++] = (bench_impl){.name = "spin-futex", .run = run_spin, .arg = "spin"};
    out[n++] = (bench_impl){.name = "spin-futex-shared",
                            .run = run_spin,
                            .arg = "spin-shared",
                            .peer = "pthread-shared"};
    out[n++] = (bench_impl){.name = "kart-rwlock",
                            .run = run_kart_rw,
                            .arg = "rwlock",
                            .peer = "spin-futex-rwlock,pthread-rwlock"};
    out[n++] = (bench_impl){
        .name = "pthread-rwlock", .run = run_pthread_rw, .arg = "rwlock", .peer = "pthread-rwlock"};
    out[n++] = (bench_impl){
        .name = "spin-futex-rwlock", .run = run_spin_rw, .arg = "rwlock", .peer = "pthread-rwlock"};
    return n;
}

const bench_scenario bench_locks = {
    .name = "locks",
    .summary = "lock+unlock alone (ns/pair), 2 threads contending (op/s; also pinned to one "
               "CPU, and 4 pairs on 2 CPUs), RWLock 95% reads (op/s)",
    .baseline = "pthread",
    .nmetrics = 5,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.12,
    .metric_note = {NULL, NULL, "all threads together",
                    "CPUs the threads kept busy: CPU ns per wall ns",
                    "the most uneven pair: its busiest thread's acquisitions over its idlest's"},
    .descriptive = 1u << 3 | 1u << 4,
    .flag_above = {[4] = 2.0},
    .flag = {[4] = "unfair"},
};
