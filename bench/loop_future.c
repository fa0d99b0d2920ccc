/*
 * bench/loop_future.c — a loop waiting for thread-pool futures: tasks
 * submitted from the loop's thread, `window` in flight, each done future's
 * callback on the loop (it submits the next), until `futures` are done.
 * Futures/s, the median and p99 time from submit to callback, and the
 * process CPU (loop, workers) per future.
 *
 * kart-<backend>: kart_future_await. On io_uring with FUTEX_WAIT (6.7) the
 * ring waits on the state words of up to KART__AWAIT_RING_MAX futures at
 * a time (core/loop/loop_private.h), the rest go through the loop's
 * inbox; with KART_URING_FEATURES=-futex_wait in the environment (and on
 * every other backend) the completing worker hands every future to the
 * loop through the inbox's async handle. bridge-<backend>, each row's
 * peer: the older way, kart_future_on_loop through a kart_pool_bridge (an
 * async handle too) on the same backend and pool. One pool worker, so
 * that the loop and the worker each have a core of a two-core machine.
 * The feature switch is per process: compare the ring with the inbox by
 * alternating runs with and without it (docs/io.md shows how).
 */
#include "harness.h"
#include "servers.h"

#include <errno.h>
#include <kart.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct lf_run {
    kart_loop *loop;
    kart_pool *pool;
    kart_pool_bridge *bridge; /* NULL: kart_future_await */
    long n, submitted, done;
    int64_t *t0;
    double *lat;
} lf_run;

/* Returns its argument (the future's index) as its result. */
static int t_echo(const void *arg, size_t len, void *res, size_t *res_len)
{
    memcpy(res, arg, len);
    *res_len = len;
    return 0;
}

static void lf_done(kart_future *f, void *arg);

static void lf_submit(lf_run *r)
{
    long k = r->submitted++;
    kart_future *f;
    r->t0[k] = bench_now_ns();
    int err = kart_pool_submit(r->pool, t_echo, &k, sizeof(k), &f);
    if (err)
        bench_fail("kart_pool_submit: %s", kart_strerror(err));
    err = r->bridge ? kart_future_on_loop(f, r->bridge, lf_done, r)
                    : kart_future_await(f, r->loop, lf_done, r);
    if (err)
        bench_fail("await: %s", kart_strerror(err));
}

static void lf_done(kart_future *f, void *arg)
{
    lf_run *r = arg;
    long k = -1;
    size_t len = sizeof(k);
    int task_err = 0;
    if (kart_future_result(f, 0, &k, &len, &task_err) || task_err || k < 0 || k >= r->n)
        bench_fail("a future's result is wrong");
    r->lat[k] = (double)(bench_now_ns() - r->t0[k]) / 1e3;
    kart_future_free(f);
    if (++r->done == r->n && r->bridge)
        kart_loop_stop(r->loop); /* the bridge's handle keeps the loop up */
    if (r->submitted < r->n)
        lf_submit(r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run(const bench_impl *impl, bench_ctx *ctx, bool bridge)
{
    long n = bench_param_get(ctx->c, "futures"), window = bench_param_get(ctx->c, "window");
    if (ctx->light)
        n = n / 10 > window ? n / 10 : window;
    lf_run r = {.n = n};
    kart_loop_options lo = {.selector = {.backend = impl->arg}};
    int err = kart_loop_create(&r.loop, &lo);
    if (err)
        bench_fail("kart_loop_create(%s): %s", impl->arg, kart_strerror(err));
    kart_pool_options po = {.kind = KART_POOL_THREADS, .workers = 1};
    if ((err = kart_pool_create(&r.pool, &po)))
        bench_fail("kart_pool_create: %s", kart_strerror(err));
    if (bridge && (err = kart_pool_bridge_create(r.loop, &r.bridge)))
        bench_fail("kart_pool_bridge_create: %s", kart_strerror(err));
    r.t0 = calloc((size_t)n, sizeof(*r.t0));
    r.lat = calloc((size_t)n, sizeof(*r.lat));
    if (!r.t0 || !r.lat)
        bench_fail("out of memory");
    int64_t c0 = bench_proc_cpu_ns(getpid());
    int64_t start = bench_now_ns();
    for (long k = 0; k < window && k < n; k++)
        lf_submit(&r);
    if ((err = kart_loop_run(r.loop, KART_RUN_DEFAULT)) < 0)
        bench_fail("kart_loop_run: %s", kart_strerror(err));
    int64_t end = bench_now_ns();
    int64_t c1 = bench_proc_cpu_ns(getpid());
    if (r.done != n)
        bench_fail("%ld of %ld futures delivered", r.done, n);
    qsort(r.lat, (size_t)n, sizeof(*r.lat), cmp_double);
    ctx->value[0] = (double)n * 1e9 / (double)(end - start);
    ctx->value[1] = r.lat[n / 2];
    ctx->value[2] = r.lat[n - 1 - n / 100];
    ctx->value[3] = (double)(c1 - c0) / 1e3 / (double)n; /* us */
    kart_pool_bridge_free(r.bridge);
    kart_pool_free(r.pool);
    kart_loop_free(r.loop);
    free(r.t0);
    free(r.lat);
    return 0;
}

static int run_await(const bench_impl *impl, bench_ctx *ctx)
{
    return run(impl, ctx, false);
}

static int run_bridge(const bench_impl *impl, bench_ctx *ctx)
{
    return run(impl, ctx, true);
}

static const bench_metric metrics[] = {{"futures_per_s", "fut/s", true},
                                       {"lat_p50", "us", false},
                                       {"lat_p99", "us", false},
                                       {"cpu_per_future", "us", false}};

static int cases(bench_case *out, bool quick)
{
    /* One in flight (a loop waiting for one answer at a time), 8 and 64
     * (a batch the worker drains back to back): where the ring's
     * futex_wake per future meets the inbox's one wake-up per batch
     * (KART__AWAIT_RING_MAX, docs/io.md). --quick leaves 8 out. */
    long n = quick ? 20000 : 100000;
    int k = 0;
    out[k++] = (bench_case){2, {{"futures", n}, {"window", 1}}};
    if (!quick)
        out[k++] = (bench_case){2, {{"futures", n}, {"window", 8}}};
    out[k++] = (bench_case){2, {{"futures", n}, {"window", 64}}};
    return k;
}

static int impls(bench_impl *out)
{
    int n = bench_add_kart_backends(out, run_await, false);
    /* The bridge on the same backends, each kart-<backend>'s peer. */
    static char peers[BENCH_MAX_IMPLS][32];
    int m = n;
    for (int i = 0; i < m && n < BENCH_MAX_IMPLS; i++) {
        bench_impl b = out[i];
        snprintf(b.name, sizeof(b.name), "bridge-%s", out[i].arg);
        b.run = run_bridge;
        snprintf(peers[i], sizeof(peers[i]), "%s", b.name);
        out[i].peer = peers[i];
        out[n++] = b;
    }
    return n;
}

const bench_scenario bench_loop_future = {
    .name = "loop_future",
    .summary = "a loop waiting for thread-pool futures (window in flight, the callback submits "
               "the next): kart_future_await (io_uring: FUTEX_WAIT on the ring; "
               "KART_URING_FEATURES=-futex_wait and other backends: the async handle) against "
               "kart_future_on_loop through a kart_pool_bridge on the same backend",
    .baseline = "bridge-uring",
    .nmetrics = 4,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.3,
    .quick_rounds = 3,
    .metric_note = {NULL, "submit to callback", "submit to callback", "process CPU"},
};
