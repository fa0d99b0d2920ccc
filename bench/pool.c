/*
 * bench/pool.c — the `pool` scenario: worker pools against OpenMP, oneTBB,
 * a plain pthread pool and Python's multiprocessing.
 *
 * Cases:
 *  - tasks: N empty tasks submitted one by one from one thread, in bursts
 *    of `burst` each waited for before the next: 1 (submit, wait, next:
 *    what a server that hands each request to a pool does) and POOL_BURST
 *    (1,000). Tiny-task submit-and-wait (kart: a future each, waited for
 *    and freed; kart-threads-many: each burst in one kart_pool_submit_many
 *    call; OpenMP: `omp task` from a single thread, then taskwait;
 *    oneTBB: task_group run, then wait; pthread: a mutex + condition
 *    variable queue and a completion count, and pthread-spin, the same
 *    queue whose workers and waiter spin before they sleep as kart's do;
 *    Python: apply_async and get). Rate: tasks per second.
 *  - map: 1,000,000 items (--quick: 250,000) of 8 bytes, each run through ~100 dependent
 *    multiply-xor-shift steps (a few hundred ns), every result checked
 *    against a serial run; with chunk 1 and with the default chunk
 *    (ceil(n / (4 x workers)), Python's rule, given to every peer that
 *    takes a chunk). What a chunk means differs: bench/pool_omp.c,
 *    bench/pool_tbb.cc and docs/bench.md ("pool") say it per peer; kart's
 *    workers each start with 1/workers of the chunks and claim an eighth
 *    of what their range holds, up to 64 chunks, per compare-and-swap,
 *    stealing half of another's range when theirs is empty. Rate: items
 *    per second.
 *
 * Every pool has one worker per usable CPU; kart's pools and the pthread
 * pool are created before the clock starts and joined after it. OpenMP and
 * oneTBB run each round in a child process of their own (fork, no exec;
 * kart-bench never starts either runtime itself), which starts the
 * runtime's threads before its clock and checks the results itself: their
 * threads spin a while after the work (libgomp GOMP_SPINCOUNT iterations
 * by default, forever under OMP_WAIT_POLICY=active), and that must not
 * land on the next implementation's round. The child exits, its threads
 * with it. Each runs with the runtime's default wait policy, its fastest;
 * OMP_WAIT_POLICY and GOMP_SPINCOUNT set in kart-bench's environment
 * reach the child.
 *
 * Every case also reports the CPU time per task or item (cpu_ns): all
 * the threads of the process over the timed window (getrusage), and for
 * process pools their workers' too (/proc/PID/schedstat). A pool that
 * spins buys rate with CPU; this column shows the price.
 *
 * kart's ratios, and every row's, are to the best of the thread-pool peers
 * in each case ("best:" baseline: the table names which); kart-processes
 * is compared with Python's process pool.
 *
 * Python runs as a python3 subprocess (same workers, fork start method),
 * timing itself around the work only; its work function is one
 * multiply-add on an int, since a Python loop of a hundred steps would
 * measure the interpreter, not the pool. Python runs fewer items (tasks:
 * 20,000; map: 20,000 at chunk 1, 200,000 at the default chunk) and every
 * figure is a per-item rate, so ratios stay comparable; --quick runs a
 * quarter of those. A warm-up or --smoke run does a tenth of each count.
 */
#include "harness.h"
#include "pool_peers.h"
#include "python.h"

#include <kart.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAP_ITEMS 1000000
#define PY_TASKS 20000
#define PY_MAP1 20000
#define PY_MAPD 200000

static int nworkers(void)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof(s), &s) == 0 && CPU_COUNT(&s) > 0)
        return CPU_COUNT(&s);
    return 1;
}

/* The input and the serial results, made once. */
static uint64_t *map_in, *map_want;

static void map_data(void)
{
    if (map_in)
        return;
    map_in = malloc(MAP_ITEMS * sizeof(uint64_t));
    map_want = malloc(MAP_ITEMS * sizeof(uint64_t));
    if (!map_in || !map_want)
        bench_fail("out of memory");
    for (size_t i = 0; i < MAP_ITEMS; i++) {
        map_in[i] = i * 0x9e3779b97f4a7c15u;
        map_want[i] = pool_work(map_in[i]);
    }
}

static void map_check(const uint64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] != map_want[i])
            bench_fail("item %zu: got %llx, want %llx", i, (unsigned long long)out[i],
                       (unsigned long long)map_want[i]);
}

static size_t default_chunk(size_t n, int w)
{
    size_t c = (n + 4 * (size_t)w - 1) / (4 * (size_t)w);
    return c ? c : 1;
}

static bool is_map(const bench_case *c)
{
    return bench_param_get(c, "items") > 0;
}

/* A placed tasks case's CPUs (bench/pool_place.c), or 0 for none. */
static int placed_cpus(const bench_case *c)
{
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].key, "cpus") == 0)
            return (int)c->params[i].value;
    return 0;
}

/* Threads beside the submitter: one in a placed case, one per CPU else. */
static int pool_workers(const bench_case *c)
{
    return placed_cpus(c) ? 1 : nworkers();
}

/* Places this process's threads for a placed case (the caller submits). */
static void place(const bench_case *c)
{
    char err[160];
    if (placed_cpus(c) && pool_place(placed_cpus(c), err, sizeof(err)) < 0)
        bench_fail("%s", err);
}

static void unplace(const bench_case *c)
{
    char err[160];
    if (placed_cpus(c) && pool_place_undo(err, sizeof(err)) < 0)
        bench_fail("%s", err);
}

/* A warm-up or --smoke run (ctx->light) does a tenth of the work. */
static long scaled(const bench_ctx *ctx, long n)
{
    return ctx->light && n >= 10 ? n / 10 : n;
}

/* Items of a map run: the first ones of map_in. */
static size_t map_items(const bench_ctx *ctx)
{
    return (size_t)scaled(ctx, bench_param_get(ctx->c, "items"));
}

/* ---- CPU time ---- */

/* The CPU time a process has run, in ns (the first field of
 * /proc/PID/schedstat: the main thread's, which is a process worker's
 * only thread); 0 if it cannot be read. */
static int64_t proc_cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    long long v = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

/* CPU ns per task or item over a window; NaN with a reason when the clock
 * did not move. */
static void report_cpu(bench_ctx *ctx, int64_t cpu, long n)
{
    if (cpu <= 0 || n <= 0)
        bench_metric_error(ctx, 1, "the CPU clock read %lld ns over %ld tasks", (long long)cpu, n);
    else
        ctx->value[1] = (double)cpu / (double)n;
}

/* The CPU time of this process and, for a process pool, of its workers. */
static int64_t kart_cpu_ns(kart_pool *p, bool procs)
{
    int64_t t = pool_cpu_ns();
    for (int i = 0; procs && i < kart_pool_workers(p); i++) {
        kart_pool_worker_info wi;
        if (kart_pool_worker_info_get(p, (size_t)i, &wi) == 0)
            t += proc_cpu_ns(wi.pid);
    }
    return t;
}

/* ---- kart ---- */

static int kart_item(const void *in, size_t in_len, void *out, size_t *out_len)
{
    uint64_t x;
    memcpy(&x, in, sizeof(x));
    x = pool_work(x);
    memcpy(out, &x, sizeof(x));
    *out_len = sizeof(x);
    return 0;
}

static int kart_empty(const void *in, size_t in_len, void *out, size_t *out_len)
{
    *out_len = 0;
    return 0;
}

static void kcheck(int rc, const char *what)
{
    if (rc < 0)
        bench_fail("%s: %s", what, kart_strerror(rc));
}

/* Starts the pool's workers just before the clock, as the OpenMP and
 * oneTBB rounds start theirs (a parallel region, a parallel_for of 64 per
 * worker, that do nothing): workers created earlier may have gone to
 * sleep, and the first map of a new pool then pays their wake-ups and
 * cold caches (73-93 ns per item at chunk 1 against 65-67 for the maps
 * after it, /work/exp driver, 2026-12-07). */
static void kart_warm(kart_pool *p)
{
    kart_pool_map_options mo = {.chunk = 1};
    kart_pool_failure fl;
    kcheck(kart_pool_map(p, kart_empty, NULL, 0, NULL, 0, 64 * (size_t)nworkers(), &mo, &fl),
           "kart_pool_map (warm-up)");
    kcheck(fl.err, "a task of the warm-up");
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    bool procs = strcmp(impl->arg, "processes") == 0;
    bool many = strcmp(impl->arg, "threads-many") == 0;
    kart_pool_options o = {.kind = procs ? KART_POOL_PROCESSES : KART_POOL_THREADS,
                           .workers = pool_workers(ctx->c)};
    kart_pool *p;
    kcheck(kart_pool_create(&p, &o), "kart_pool_create");
    int64_t t0, t1, c0, c1;
    long count;
    if (is_map(ctx->c)) {
        map_data();
        size_t items = map_items(ctx);
        uint64_t *out = calloc(items, sizeof(uint64_t));
        size_t chunk = (size_t)bench_param_get(ctx->c, "chunk");
        kart_pool_map_options mo = {.chunk = chunk};
        kart_pool_failure fl;
        kart_warm(p);
        t0 = bench_now_ns();
        c0 = kart_cpu_ns(p, procs);
        kcheck(kart_pool_map(p, kart_item, map_in, 8, out, 8, items, &mo, &fl), "kart_pool_map");
        t1 = bench_now_ns();
        c1 = kart_cpu_ns(p, procs);
        count = (long)items;
        kcheck(fl.err, "a task of kart_pool_map");
        map_check(out, items);
        free(out);
        ctx->value[0] = (double)items * 1e9 / (double)(t1 - t0);
    } else {
        long n = scaled(ctx, bench_param_get(ctx->c, "tasks"));
        long burst = bench_param_get(ctx->c, "burst");
        kart_future *f[POOL_BURST];
        kart_warm(p);
        place(ctx->c);
        c0 = kart_cpu_ns(p, procs);
        t0 = bench_now_ns();
        for (long i = 0; i < n; i += burst) {
            int k = n - i < burst ? (int)(n - i) : (int)burst;
            if (many)
                kcheck(kart_pool_submit_many(p, kart_empty, NULL, 0, (size_t)k, f),
                       "kart_pool_submit_many");
            else
                for (int j = 0; j < k; j++)
                    kcheck(kart_pool_submit(p, kart_empty, NULL, 0, &f[j]), "kart_pool_submit");
            for (int j = 0; j < k; j++) {
                int te = 0;
                kcheck(kart_future_error(f[j], -1, &te), "kart_future_error");
                if (te != 0)
                    bench_fail("task failed: %s", kart_strerror(te));
                kart_future_free(f[j]);
            }
        }
        t1 = bench_now_ns();
        c1 = kart_cpu_ns(p, procs);
        count = n;
        ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    }
    report_cpu(ctx, c1 - c0, count);
    kcheck(kart_pool_close(p), "kart_pool_close");
    kcheck(kart_pool_join(p, -1), "kart_pool_join");
    kart_pool_free(p);
    unplace(ctx->c);
    return 0;
}

/* ---- OpenMP and oneTBB: each round in a child process ---- */

/* The round function of a peer built in, or NULL. */
static int (*peer_round(const bench_impl *impl))(pool_round *)
{
#if KART_BENCH_HAVE_OPENMP
    if (strncmp(impl->name, "openmp-", 7) == 0)
        return pool_omp_round;
#endif
#if KART_BENCH_HAVE_TBB
    if (strcmp(impl->name, "tbb") == 0)
        return pool_tbb_round;
#endif
    return NULL;
}

/* In the child: runs the round, checks every result, and sends r back.
 * No bench_fail() here (its exit() would flush kart-bench's stdio buffers
 * a second time): errors travel in r.error. */
__attribute__((noreturn)) static void child_round(int (*round)(pool_round *), pool_round *r, int fd)
{
    int rc = -1;
    if (r->in && !(r->out = calloc(r->n, sizeof(uint64_t))))
        snprintf(r->error, sizeof(r->error), "out of memory");
    else
        rc = round(r);
    for (size_t i = 0; rc == 0 && r->in && i < r->n; i++)
        if (r->out[i] != map_want[i]) {
            snprintf(r->error, sizeof(r->error), "item %zu: got %llx, want %llx", i,
                     (unsigned long long)r->out[i], (unsigned long long)map_want[i]);
            rc = -1;
        }
    if (rc == 0 && !r->in && r->ran != (long)r->n) {
        snprintf(r->error, sizeof(r->error), "%ld tasks ran, not %zu", r->ran, r->n);
        rc = -1;
    }
    const char *p = (const char *)r;
    for (size_t off = 0; off < sizeof(*r);) {
        ssize_t k = write(fd, p + off, sizeof(*r) - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(2);
        off += (size_t)k;
    }
    _exit(rc == 0 ? 0 : 1);
}

static int run_forked(const bench_impl *impl, bench_ctx *ctx)
{
    int (*round)(pool_round *) = peer_round(impl);
    if (!round)
        bench_fail("not built in");
    int w = nworkers();
    pool_round r = {.variant = impl->arg, .workers = w, .cpus = placed_cpus(ctx->c)};
    if (r.cpus)
        r.workers = 1 + pool_workers(ctx->c); /* their count takes in the caller */
    if (is_map(ctx->c)) {
        map_data();
        r.in = map_in;
        r.n = map_items(ctx);
        r.chunk = (size_t)bench_param_get(ctx->c, "chunk");
        if (!r.chunk)
            r.chunk = default_chunk(r.n, w);
    } else {
        r.n = (size_t)scaled(ctx, bench_param_get(ctx->c, "tasks"));
        r.burst = (size_t)bench_param_get(ctx->c, "burst");
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        bench_fail("pipe2: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        child_round(round, &r, fds[1]);
    }
    close(fds[1]);
    pool_round back;
    size_t got = 0;
    while (got < sizeof(back)) {
        ssize_t k = read(fds[0], (char *)&back + got, sizeof(back) - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            bench_fail("waitpid: %s", strerror(errno));
    if (got < sizeof(back))
        bench_fail("the child round died (status %#x) before it reported", status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("%s", back.error[0] ? back.error : "the child round failed");
    if (back.ns <= 0)
        bench_fail("the child round timed %lld ns", (long long)back.ns);
    ctx->value[0] = (double)r.n * 1e9 / (double)back.ns;
    report_cpu(ctx, back.cpu_ns, (long)r.n);
    return 0;
}

/* ---- a plain mutex + condition variable pool ----
 *
 * pthread: workers sleep on a condition variable as soon as the queue is
 * empty, and the waiter as soon as tasks are pending. pthread-spin: the
 * same queue, but its idle workers poll the queue before they sleep, as
 * kart's do (KART__POOL_IDLE_ROUNDS in core/pool/pool_job.c: 300 rounds
 * of 32 pauses, a yield every 8th), and its waiter polls the pending
 * count with kart's waiters' back-off (core/base/futex.h's kart__spin:
 * doubling pauses, yields past 4, 4,096 pauses in all) before it sleeps:
 * like for like with kart's spinning. The counts are atomics so that the
 * polls may read them without the lock; they change under it. */

typedef struct pt_task {
    void (*fn)(size_t a, size_t b, void *arg);
    size_t a, b;
    void *arg;
} pt_task;

typedef struct pt_pool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pt_task *q;
    _Atomic size_t head, tail, pending;
    size_t cap;
    _Atomic bool stop;
    bool spin;
    int n;
    pthread_t th[256];
} pt_pool;

static inline void pt_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* pthread-spin's idle poll: whether work came (or the pool stopped). */
static bool pt_poll_work(pt_pool *p)
{
    for (int i = 0; i < 300; i++) {
        if (atomic_load_explicit(&p->head, memory_order_relaxed) !=
                atomic_load_explicit(&p->tail, memory_order_relaxed) ||
            atomic_load_explicit(&p->stop, memory_order_relaxed))
            return true;
        for (int k = 0; k < 32; k++)
            pt_relax();
        if (i % 8 == 7)
            sched_yield();
    }
    return false;
}

static void *pt_main(void *arg)
{
    pt_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->spin && p->head == p->tail && !p->stop) {
            pthread_mutex_unlock(&p->mu);
            pt_poll_work(p);
            pthread_mutex_lock(&p->mu);
        }
        while (p->head == p->tail && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->head == p->tail)
            break;
        pt_task t = p->q[p->head++ % p->cap];
        pthread_mutex_unlock(&p->mu);
        t.fn(t.a, t.b, t.arg);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pt_start(pt_pool *p, int n, size_t cap, bool spin)
{
    memset(p, 0, sizeof(*p));
    p->spin = spin;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->cap = cap;
    p->q = malloc(cap * sizeof(pt_task));
    p->n = n < 256 ? n : 256;
    for (int i = 0; i < p->n; i++)
        if (pthread_create(&p->th[i], NULL, pt_main, p))
            bench_fail("pthread_create");
}

static void pt_submit(pt_pool *p, pt_task t)
{
    pthread_mutex_lock(&p->mu);
    p->q[p->tail++ % p->cap] = t;
    p->pending++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

static void pt_wait(pt_pool *p)
{
    /* pthread-spin: kart__spin's back-off, 4,096 pauses in all. */
    for (uint32_t n = 1, spent = 0; p->spin && spent < 4096; spent += n, n *= 2) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        for (uint32_t i = 0; i < n; i++)
            pt_relax();
        if (n >= 4)
            sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void pt_stop(pt_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    free(p->q);
}

static void pt_empty(size_t a, size_t b, void *arg)
{
    (void)a, (void)b, (void)arg;
}

static void pt_chunk(size_t a, size_t b, void *arg)
{
    uint64_t *out = arg;
    for (size_t i = a; i < b; i++)
        out[i] = pool_work(map_in[i]);
}

static int run_pthread(const bench_impl *impl, bench_ctx *ctx)
{
    bool spin = strcmp(impl->arg, "spin") == 0;
    int w = pool_workers(ctx->c);
    pt_pool p;
    int64_t t0, t1, c0, c1;
    if (is_map(ctx->c)) {
        map_data();
        size_t items = map_items(ctx);
        uint64_t *out = calloc(items, sizeof(uint64_t));
        size_t chunk = (size_t)bench_param_get(ctx->c, "chunk");
        if (!chunk)
            chunk = default_chunk(items, w);
        pt_start(&p, w, (items + chunk - 1) / chunk, spin);
        c0 = pool_cpu_ns();
        t0 = bench_now_ns();
        for (size_t a = 0; a < items; a += chunk)
            pt_submit(&p, (pt_task){pt_chunk, a, a + chunk < items ? a + chunk : items, out});
        pt_wait(&p);
        t1 = bench_now_ns();
        c1 = pool_cpu_ns();
        report_cpu(ctx, c1 - c0, (long)items);
        pt_stop(&p);
        map_check(out, items);
        free(out);
        ctx->value[0] = (double)items * 1e9 / (double)(t1 - t0);
    } else {
        long n = scaled(ctx, bench_param_get(ctx->c, "tasks"));
        long burst = bench_param_get(ctx->c, "burst");
        pt_start(&p, w, (size_t)n, spin);
        place(ctx->c);
        c0 = pool_cpu_ns();
        t0 = bench_now_ns();
        for (long i = 0; i < n; i += burst) {
            long k = n - i < burst ? n - i : burst;
            for (long j = 0; j < k; j++)
                pt_submit(&p, (pt_task){pt_empty, 0, 0, NULL});
            pt_wait(&p);
        }
        t1 = bench_now_ns();
        c1 = pool_cpu_ns();
        report_cpu(ctx, c1 - c0, n);
        pt_stop(&p);
        unplace(ctx->c);
        ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    }
    return 0;
}

/* ---- Python ---- */

/* Its tasks cases wait every `burst` tasks, as the others. Its CPU time:
 * the process's (every thread), and for a process pool its workers'
 * (/proc/PID/schedstat, as kart-processes'). */
static const char py_script[] =
    "import sys, time\n"
    "from multiprocessing import Pool\n"
    "from multiprocessing.pool import ThreadPool\n"
    "def f(x):\n"
    "    return (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF\n"
    "def empty():\n"
    "    return None\n"
    "def cpu(pool):\n"
    "    t = time.process_time_ns()\n"
    "    for p in getattr(pool, '_pool', []):\n"
    "        pid = getattr(p, 'pid', None)\n"
    "        if pid:\n"
    "            with open('/proc/%d/schedstat' % pid) as s: t += int(s.read().split()[0])\n"
    "    return t\n"
    "if __name__ == '__main__':\n"
    "    kind, case, n, chunk, w, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), "
    "int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])\n"
    "    P = Pool if kind == 'processes' else ThreadPool\n"
    "    with P(w) as pool:\n"
    "        pool.map(f, range(w * 4))\n"
    "        if case == 'map':\n"
    "            data = list(range(n))\n"
    "            c = chunk if chunk else None\n"
    "            c0 = cpu(pool)\n"
    "            t0 = time.perf_counter()\n"
    "            out = pool.map(f, data, chunksize=c) if c else pool.map(f, data)\n"
    "            t1 = time.perf_counter()\n"
    "            c1 = cpu(pool)\n"
    "            assert out == [f(x) for x in data]\n"
    "        else:\n"
    "            c0 = cpu(pool)\n"
    "            t0 = time.perf_counter()\n"
    "            for i in range(0, n, burst):\n"
    "                rs = [pool.apply_async(empty) for _ in range(min(burst, n - i))]\n"
    "                for r in rs: r.get()\n"
    "            t1 = time.perf_counter()\n"
    "            c1 = cpu(pool)\n"
    "    print('rate %f cpu %f' % (n / (t1 - t0), (c1 - c0) / n))\n";

static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    bool map = is_map(ctx->c);
    long chunk = map ? bench_param_get(ctx->c, "chunk") : 0;
    long n = scaled(ctx, !map ? PY_TASKS : chunk == 1 ? PY_MAP1 : PY_MAPD);
    if (ctx->quick)
        n /= 4;
    long burst = map ? 1 : bench_param_get(ctx->c, "burst");
    char items[32], chunks[32], workers[32], bursts[32], out[256];
    snprintf(items, sizeof(items), "%ld", n);
    snprintf(chunks, sizeof(chunks), "%ld", chunk);
    snprintf(workers, sizeof(workers), "%d", nworkers());
    snprintf(bursts, sizeof(bursts), "%ld", burst);
    const char *const args[] = {impl->arg, map ? "map" : "tasks", items, chunks, workers, bursts,
                                NULL};
    if (!bench_python_run(py_script, args, out, sizeof(out)))
        bench_fail("python3 failed: %s", out);
    const char *line = strstr(out, "rate ");
    double rate = line ? strtod(line + 5, NULL) : 0;
    if (rate <= 0)
        bench_fail("python3 printed %s", out);
    ctx->value[0] = rate;
    const char *c = strstr(out, " cpu ");
    double cpu = c ? strtod(c + 5, NULL) : 0;
    if (cpu <= 0)
        bench_metric_error(ctx, 1, "python3 printed %s", out);
    else
        ctx->value[1] = cpu;
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"per_s", "op/s", true},    /* tasks or items per second */
    {"cpu_ns", "ns/op", false}, /* CPU time per task or item, every thread */
};

static int cases(bench_case *out, bool quick)
{
    /* One at a time: a quarter of the tasks, since a pool whose workers
     * sleep pays a wake-up per task (tens of microseconds on a loaded VM). */
    long tasks = quick ? 100000 : 200000;
    out[0] = (bench_case){3, {{"tasks", tasks / 4}, {"burst", 1}, {"items", 0}}};
    out[1] = (bench_case){3, {{"tasks", tasks}, {"burst", POOL_BURST}, {"items", 0}}};
    long items = quick ? MAP_ITEMS / 4 : MAP_ITEMS;
    out[2] = (bench_case){2, {{"items", items}, {"chunk", 1}}};
    out[3] = (bench_case){2, {{"items", items}, {"chunk", 0}}}; /* 0: the default */
    /* The tasks cases placed (bench/pool_place.c): submitter and one
     * worker on one CPU, then on two. */
    int n = 4;
    for (int cpus = 1; cpus <= 2 && cpus <= nworkers(); cpus++) {
        out[n++] =
            (bench_case){4, {{"tasks", tasks / 4}, {"burst", 1}, {"items", 0}, {"cpus", cpus}}};
        out[n++] = (bench_case){
            4, {{"tasks", tasks}, {"burst", POOL_BURST}, {"items", 0}, {"cpus", cpus}}};
    }
    return n;
}

/* The OpenMP loop schedules run the maps, openmp-tasks the tasks case. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    /* Placed: thread pools only (the processes and Python are not). */
    if (placed_cpus(c) &&
        (strcmp(impl->name, "kart-processes") == 0 || strncmp(impl->name, "python", 6) == 0))
        return false;
    if (strcmp(impl->name, "kart-threads-many") == 0)
        return !is_map(c);
    if (strncmp(impl->name, "openmp-", 7) != 0)
        return true;
    return is_map(c) == (strcmp(impl->name, "openmp-tasks") != 0);
}

#if KART_BENCH_HAVE_OPENMP
#define OMP_SKIP NULL
#else
#define OMP_SKIP "built without -fopenmp"
#endif
#if KART_BENCH_HAVE_TBB
#define TBB_SKIP NULL
#else
#define TBB_SKIP "built without oneTBB (libtbb-dev: pkg-config tbb)"
#endif

/* The thread-pool peers kart-threads is measured against: the best of
 * them in each case. */
#define BEST_PEER                                                                                  \
    "best:openmp-dynamic,openmp-nonmonotonic,openmp-guided,openmp-static,tbb,pthread,pthread-spin"

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart-threads", .run = run_kart, .arg = "threads"};
    /* The tasks cases with kart_pool_submit_many: each burst in one call. */
    out[n++] = (bench_impl){.name = "kart-threads-many", .run = run_kart, .arg = "threads-many"};
    out[n++] = (bench_impl){
        .name = "kart-processes", .run = run_kart, .arg = "processes", .peer = "python"};
    static const char *const omp[] = {"dynamic", "nonmonotonic", "guided", "static", "tasks"};
    for (int i = 0; i < 5; i++) {
        out[n] = (bench_impl){.run = run_forked, .arg = omp[i], .skip = OMP_SKIP};
        snprintf(out[n].name, sizeof(out[n].name), "openmp-%s", omp[i]);
        n++;
    }
    out[n++] = (bench_impl){.name = "tbb", .run = run_forked, .arg = "auto", .skip = TBB_SKIP};
    out[n++] = (bench_impl){.name = "pthread", .run = run_pthread, .arg = ""};
    out[n++] = (bench_impl){.name = "pthread-spin", .run = run_pthread, .arg = "spin"};
    out[n++] = (bench_impl){.name = "python",
                            .run = run_python,
                            .arg = "processes",
                            .skip = bench_python_skip(),
                            .peer = "python"};
    out[n++] = (bench_impl){
        .name = "python-threads", .run = run_python, .arg = "threads", .skip = bench_python_skip()};
    return n;
}

const bench_scenario bench_pool = {
    .name = "pool",
    .summary = "worker pools: empty tasks/s submitted and waited for one at a time and in "
               "bursts of 1,000, and items/s of a 1M-item map at chunk 1 and the default "
               "chunk, with CPU ns per task or item, against OpenMP, oneTBB, pthread pools "
               "and Python; ratios to the best thread-pool peer of each case",
    .baseline = BEST_PEER,
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.3,
};
