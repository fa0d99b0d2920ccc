/*
 * bench/pool.c — the `pool` scenario: worker pools against OpenMP, a
 * plain pthread pool and Python's multiprocessing.
 *
 * Cases:
 *  - tasks: N empty tasks submitted one by one from one thread, each with
 *    a way to learn it is done (kart: a future, waited for and freed in
 *    batches of 1024; OpenMP: `omp task` from a single thread, then
 *    taskwait; pthread: a queued task and a completion count; Python:
 *    apply_async and get). Rate: tasks per second.
 *  - map: 1,000,000 items of 8 bytes, each run through ~100 dependent
 *    multiply-xor-shift steps (a few hundred ns), results checked against
 *    a serial run; with chunk size 1 and with the default chunk
 *    (ceil(n / (4 x workers)), Python's rule, which OpenMP's dynamic
 *    schedule is given too; openmp-static uses schedule(static), one
 *    block per thread, at the default chunk, and schedule(static, 1) at
 *    chunk 1). Rate: items per second.
 *
 * Every pool has one worker per usable CPU; kart's pools and the pthread
 * pool are created before the clock starts, OpenMP's team persists between
 * regions anyway. Python runs as a python3 subprocess (same workers, fork
 * start method), timing itself around the work only; its work function
 * is one multiply-add on an int, since a Python loop of a hundred steps
 * would measure the interpreter, not the pool. Python runs fewer items
 * (tasks: 20,000; map: 20,000 at chunk 1, 200,000 at the default chunk)
 * and every figure is a per-item rate, so ratios stay comparable. A
 * warm-up or --smoke run does a tenth of each count.
 */
#include "harness.h"
#include "python.h"

#include <kart.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if KART_BENCH_HAVE_OPENMP
#include <omp.h>
#endif

#define MAP_ITEMS 1000000
#define PY_TASKS 20000
#define PY_MAP1 20000
#define PY_MAPD 200000
#define WORK_STEPS 100
#define BATCH 1024

static int nworkers(void)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof(s), &s) == 0 && CPU_COUNT(&s) > 0)
        return CPU_COUNT(&s);
    return 1;
}

static inline uint64_t work(uint64_t x)
{
    for (int i = 0; i < WORK_STEPS; i++)
        x = (x * 6364136223846793005u + 1442695040888963407u) ^ (x >> 29);
    return x;
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
        map_want[i] = work(map_in[i]);
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

/* A warm-up or --smoke run (ctx->light) does a tenth of the work. */
static long scaled(const bench_ctx *ctx, long n)
{
    return ctx->light && n >= 10 ? n / 10 : n;
}

/* Items of a map run: the first ones of map_in. */
static size_t map_items(const bench_ctx *ctx)
{
    return (size_t)scaled(ctx, MAP_ITEMS);
}

/* ---- kart ---- */

static int kart_item(const void *in, size_t in_len, void *out, size_t *out_len)
{
    uint64_t x;
    memcpy(&x, in, sizeof(x));
    x = work(x);
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

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    kart_pool_options o = {.kind = strcmp(impl->arg, "processes") == 0 ? KART_POOL_PROCESSES
                                                                       : KART_POOL_THREADS,
                           .workers = nworkers()};
    kart_pool *p;
    kcheck(kart_pool_create(&p, &o), "kart_pool_create");
    int64_t t0, t1;
    if (is_map(ctx->c)) {
        map_data();
        size_t items = map_items(ctx);
        uint64_t *out = calloc(items, sizeof(uint64_t));
        size_t chunk = (size_t)bench_param_get(ctx->c, "chunk");
        t0 = bench_now_ns();
        kcheck(kart_pool_map(p, kart_item, map_in, 8, out, 8, items, chunk), "kart_pool_map");
        t1 = bench_now_ns();
        map_check(out, items);
        free(out);
        ctx->value[0] = (double)items * 1e9 / (double)(t1 - t0);
    } else {
        long n = scaled(ctx, bench_param_get(ctx->c, "tasks"));
        kart_future *f[BATCH];
        t0 = bench_now_ns();
        for (long i = 0; i < n; i += BATCH) {
            int k = n - i < BATCH ? (int)(n - i) : BATCH;
            for (int j = 0; j < k; j++)
                kcheck(kart_pool_submit(p, kart_empty, NULL, 0, &f[j]), "kart_pool_submit");
            for (int j = 0; j < k; j++) {
                kcheck(kart_future_wait(f[j], -1), "kart_future_wait");
                if (kart_future_error(f[j]) != 0)
                    bench_fail("task failed: %s", kart_strerror(kart_future_error(f[j])));
                kart_future_free(f[j]);
            }
        }
        t1 = bench_now_ns();
        ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    }
    kcheck(kart_pool_close(p), "kart_pool_close");
    kcheck(kart_pool_join(p, -1), "kart_pool_join");
    kart_pool_free(p);
    return 0;
}

/* ---- OpenMP ---- */

#if KART_BENCH_HAVE_OPENMP
static _Atomic long omp_ran;

static int run_omp(const bench_impl *impl, bench_ctx *ctx)
{
    bool dynamic = strcmp(impl->arg, "dynamic") == 0;
    int w = nworkers();
    omp_set_num_threads(w);
    int64_t t0, t1;
    if (is_map(ctx->c)) {
        map_data();
        size_t items = map_items(ctx);
        uint64_t *out = calloc(items, sizeof(uint64_t));
        long chunk = bench_param_get(ctx->c, "chunk");
        long dchunk = chunk ? chunk : (long)default_chunk(items, w);
        const uint64_t *in = map_in;
        t0 = bench_now_ns();
        if (dynamic) {
#pragma omp parallel for schedule(dynamic, dchunk)
            for (long i = 0; i < (long)items; i++)
                out[i] = work(in[i]);
        } else if (chunk == 1) {
#pragma omp parallel for schedule(static, 1)
            for (long i = 0; i < (long)items; i++)
                out[i] = work(in[i]);
        } else {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)items; i++)
                out[i] = work(in[i]);
        }
        t1 = bench_now_ns();
        map_check(out, items);
        free(out);
        ctx->value[0] = (double)items * 1e9 / (double)(t1 - t0);
    } else {
        long n = scaled(ctx, bench_param_get(ctx->c, "tasks"));
        atomic_store(&omp_ran, 0);
        t0 = bench_now_ns();
#pragma omp parallel
#pragma omp single
        {
            for (long i = 0; i < n; i++) {
#pragma omp task
                atomic_fetch_add_explicit(&omp_ran, 1, memory_order_relaxed);
            }
#pragma omp taskwait
        }
        t1 = bench_now_ns();
        if (atomic_load(&omp_ran) != n)
            bench_fail("%ld tasks ran, not %ld", atomic_load(&omp_ran), n);
        ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    }
    return 0;
}
#endif

/* ---- a plain mutex + condition variable pool ---- */

typedef struct pt_task {
    void (*fn)(size_t a, size_t b, void *arg);
    size_t a, b;
    void *arg;
} pt_task;

typedef struct pt_pool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pt_task *q;
    size_t head, tail, cap, pending;
    bool stop;
    int n;
    pthread_t th[256];
} pt_pool;

static void *pt_main(void *arg)
{
    pt_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
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

static void pt_start(pt_pool *p, int n, size_t cap)
{
    memset(p, 0, sizeof(*p));
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
        out[i] = work(map_in[i]);
}

static int run_pthread(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int w = nworkers();
    pt_pool p;
    int64_t t0, t1;
    if (is_map(ctx->c)) {
        map_data();
        size_t items = map_items(ctx);
        uint64_t *out = calloc(items, sizeof(uint64_t));
        size_t chunk = (size_t)bench_param_get(ctx->c, "chunk");
        if (!chunk)
            chunk = default_chunk(items, w);
        pt_start(&p, w, (items + chunk - 1) / chunk);
        t0 = bench_now_ns();
        for (size_t a = 0; a < items; a += chunk)
            pt_submit(&p, (pt_task){pt_chunk, a, a + chunk < items ? a + chunk : items, out});
        pt_wait(&p);
        t1 = bench_now_ns();
        pt_stop(&p);
        map_check(out, items);
        free(out);
        ctx->value[0] = (double)items * 1e9 / (double)(t1 - t0);
    } else {
        long n = scaled(ctx, bench_param_get(ctx->c, "tasks"));
        pt_start(&p, w, (size_t)n);
        t0 = bench_now_ns();
        for (long i = 0; i < n; i++)
            pt_submit(&p, (pt_task){pt_empty, 0, 0, NULL});
        pt_wait(&p);
        t1 = bench_now_ns();
        pt_stop(&p);
        ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    }
    return 0;
}

/* ---- Python ---- */

static const char py_script[] =
    "import sys, time\n"
    "from multiprocessing import Pool\n"
    "from multiprocessing.pool import ThreadPool\n"
    "def f(x):\n"
    "    return (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF\n"
    "def empty():\n"
    "    return None\n"
    "if __name__ == '__main__':\n"
    "    kind, case, n, chunk, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "
    "int(sys.argv[5])\n"
    "    P = Pool if kind == 'processes' else ThreadPool\n"
    "    with P(w) as pool:\n"
    "        pool.map(f, range(w * 4))\n"
    "        if case == 'map':\n"
    "            data = list(range(n))\n"
    "            c = chunk if chunk else None\n"
    "            t0 = time.perf_counter()\n"
    "            out = pool.map(f, data, chunksize=c) if c else pool.map(f, data)\n"
    "            t1 = time.perf_counter()\n"
    "            assert out == [f(x) for x in data]\n"
    "        else:\n"
    "            t0 = time.perf_counter()\n"
    "            rs = [pool.apply_async(empty) for _ in range(n)]\n"
    "            for r in rs: r.get()\n"
    "            t1 = time.perf_counter()\n"
    "    print('rate %f' % (n / (t1 - t0)))\n";

static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    bool map = is_map(ctx->c);
    long chunk = map ? bench_param_get(ctx->c, "chunk") : 0;
    long n = scaled(ctx, !map ? PY_TASKS : chunk == 1 ? PY_MAP1 : PY_MAPD);
    char items[32], chunks[32], workers[32], out[256];
    snprintf(items, sizeof(items), "%ld", n);
    snprintf(chunks, sizeof(chunks), "%ld", chunk);
    snprintf(workers, sizeof(workers), "%d", nworkers());
    const char *const args[] = {impl->arg, map ? "map" : "tasks", items, chunks, workers, NULL};
    if (!bench_python_run(py_script, args, out, sizeof(out)))
        bench_fail("python3 failed: %s", out);
    const char *line = strstr(out, "rate ");
    double rate = line ? strtod(line + 5, NULL) : 0;
    if (rate <= 0)
        bench_fail("python3 printed %s", out);
    ctx->value[0] = rate;
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"per_s", "op/s", true}, /* tasks or items per second */
};

static int cases(bench_case *out, bool quick)
{
    out[0] = (bench_case){2, {{"tasks", quick ? 100000 : 200000}, {"items", 0}}};
    out[1] = (bench_case){2, {{"items", MAP_ITEMS}, {"chunk", 1}}};
    out[2] = (bench_case){2, {{"items", MAP_ITEMS}, {"chunk", 0}}}; /* 0: the default */
    return 3;
}

/* OpenMP's static schedule runs only the maps. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    return is_map(c) || strcmp(impl->name, "openmp-static") != 0;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart-threads", .run = run_kart, .arg = "threads"};
    out[n++] = (bench_impl){
        .name = "kart-processes", .run = run_kart, .arg = "processes", .peer = "python"};
#if KART_BENCH_HAVE_OPENMP
    out[n++] = (bench_impl){.name = "openmp-dynamic", .run = run_omp, .arg = "dynamic"};
    out[n++] = (bench_impl){.name = "openmp-static", .run = run_omp, .arg = "static"};
#else
    out[n++] = (bench_impl){.name = "openmp-dynamic", .skip = "built without -fopenmp"};
    out[n++] = (bench_impl){.name = "openmp-static", .skip = "built without -fopenmp"};
#endif
    out[n++] = (bench_impl){.name = "pthread", .run = run_pthread, .arg = ""};
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
    .summary = "worker pools: empty tasks/s, and items/s of a 1M-item map at chunk 1 and "
               "the default chunk, against OpenMP, a pthread pool and Python",
    .baseline = "openmp-dynamic",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.3,
};
