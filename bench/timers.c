/*
 * bench/timers.c — start and fire a million one-shot timers with random
 * deadlines: the cost of a loop's timer queue.
 *
 * The method, so that the figure is CPU work and not sleeping: every timer
 * is started in one burst, with a timeout drawn uniformly from [0, 50 ms)
 * (the same seeded sequence for every implementation); then the program
 * sleeps, untimed, until every deadline has passed with a margin; then the
 * loop is run without blocking until every timer has fired. The time
 * reported is the starting burst plus the firing pass, which together hold
 * all the queue's work (inserting, and removing the minimum N times), with
 * the 50 ms of waiting left out. Deadlines far apart from each other keep
 * the queue honest: it really has to order them, unlike a burst of timers
 * that all fall due in the same millisecond.
 *
 * The margin covers libevent, which reads CLOCK_MONOTONIC_COARSE by
 * default: that clock lags by up to one tick (10 ms at HZ=100), so just
 * after the last deadline, libevent might still see some timers as not due.
 * Handle setup (kart_timer_init, uv_timer_init, evtimer_assign) happens
 * before the clock starts and is not part of the figure; every handle lives
 * in one big caller-allocated array per implementation. libev
 * (timers_libev.c) runs on epoll, its Linux default: its timer heap does
 * not depend on the backend, so a second backend would only cost time.
 *
 * Each implementation takes the timeout in its own unit: kart nanoseconds,
 * libevent microseconds, libev seconds as a double, libuv milliseconds (so libuv sees only 50 distinct
 * deadlines; that is its API). Every timer must fire exactly once, and
 * kart's in deadline order with ties in start order, as it promises. A
 * warm-up or --smoke run starts a fifth as many.
 */
#include "timers.h"

#include <kart.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

tm_state tm_st;

int tm_ntimers(const bench_ctx *ctx)
{
    int n = (int)bench_param_get(ctx->c, "timers");
    return ctx->light ? n / 5 : n;
}

static void make_timeouts(int n)
{
    free(tm_st.timeout);
    tm_st.timeout = malloc((size_t)n * sizeof(*tm_st.timeout));
    if (!tm_st.timeout)
        bench_fail("out of memory");
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64*, fixed seed */
    for (int i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        tm_st.timeout[i] = (uint32_t)((x * 0x2545f4914f6cdd1du) % SPAN_NS);
    }
}

void tm_begin(int n)
{
    if (tm_st.n != n || !tm_st.timeout)
        make_timeouts(n);
    tm_st.n = n;
    free(tm_st.fired);
    tm_st.fired = calloc((size_t)n, 1);
    if (!tm_st.fired)
        bench_fail("out of memory");
    tm_st.count = 0;
    tm_st.last = -1;
}

void tm_fired(int i)
{
    if (i < 0 || i >= tm_st.n || tm_st.fired[i])
        bench_fail("timer %d fired twice or is not ours", i);
    tm_st.fired[i] = 1;
    tm_st.count++;
}

void tm_sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

void tm_result(bench_ctx *ctx, const char *name, int passes, int64_t t0, int64_t t1, int64_t t2,
               int64_t t3)
{
    if (tm_st.count != tm_st.n)
        bench_fail("%d of %d timers fired", tm_st.count, tm_st.n);
    if (passes > 1)
        fprintf(stderr,
                "\nkart-bench: timers/%s: took %d non-blocking passes to fire "
                "every timer; the figure includes the spinning\n",
                name, passes);
    ctx->value[0] = (double)tm_st.n * 1e9 / (double)((t1 - t0) + (t3 - t2));
    ctx->value[1] = (double)(t1 - t0) / tm_st.n;
}

/* ---- kart ---- */

static kart_timer *kart_timers;

static void kart_fire(kart_timer *t)
{
    int i = (int)(t - kart_timers);
    tm_fired(i);
    /* Every deadline is the same cached now plus the timeout, so deadline
     * order is (timeout, start order = index) order. */
    if (tm_st.last >= 0 && (tm_st.timeout[i] < tm_st.timeout[tm_st.last] ||
                            (tm_st.timeout[i] == tm_st.timeout[tm_st.last] && i < tm_st.last)))
        bench_fail("timer %d (%u ns) fired after timer %d (%u ns)", i, tm_st.timeout[i], tm_st.last,
                   tm_st.timeout[tm_st.last]);
    tm_st.last = i;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int n = tm_ntimers(ctx);
    kart_loop *loop;
    int err = kart_loop_create(&loop, NULL);
    if (err < 0)
        bench_fail("kart_loop_create: %s", kart_strerror(err));
    tm_begin(n);
    kart_timers = malloc((size_t)n * sizeof(*kart_timers));
    if (!kart_timers)
        bench_fail("out of memory");
    for (int i = 0; i < n; i++)
        kart_timer_init(loop, &kart_timers[i]);
    kart_loop_update_time(loop);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
        if ((err = kart_timer_start(&kart_timers[i], kart_fire, tm_st.timeout[i], 0)) < 0)
            bench_fail("kart_timer_start: %s", kart_strerror(err));
    int64_t t1 = bench_now_ns();
    tm_sleep_until(t1 + SPAN_NS + MARGIN_NS);
    int passes = 0;
    int64_t t2 = bench_now_ns();
    while (tm_st.count < n && passes < 1000000) {
        if ((err = kart_loop_run(loop, KART_RUN_NOWAIT)) < 0)
            bench_fail("kart_loop_run: %s", kart_strerror(err));
        passes++;
    }
    int64_t t3 = bench_now_ns();
    tm_result(ctx, impl->name, passes, t0, t1, t2, t3);
    if (kart_loop_active_handles(loop) != 0)
        bench_fail("kart_loop_free: %d handles still active", kart_loop_active_handles(loop));
    kart_loop_free(loop);
    free(kart_timers);
    return 0;
}

/* ---- libuv ---- */

#if KART_BENCH_HAVE_LIBUV
#include <uv.h>

static uv_timer_t *luv_timers;

static void luv_fire(uv_timer_t *t)
{
    tm_fired((int)(t - luv_timers));
}

static int run_libuv(const bench_impl *impl, bench_ctx *ctx)
{
    int n = tm_ntimers(ctx);
    uv_loop_t loop;
    int err = uv_loop_init(&loop);
    if (err < 0)
        bench_fail("uv_loop_init: %s", uv_strerror(err));
    tm_begin(n);
    luv_timers = malloc((size_t)n * sizeof(*luv_timers));
    if (!luv_timers)
        bench_fail("out of memory");
    for (int i = 0; i < n; i++)
        uv_timer_init(&loop, &luv_timers[i]);
    uv_update_time(&loop);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
        if ((err = uv_timer_start(&luv_timers[i], luv_fire, tm_st.timeout[i] / 1000000, 0)) < 0)
            bench_fail("uv_timer_start: %s", uv_strerror(err));
    int64_t t1 = bench_now_ns();
    tm_sleep_until(t1 + SPAN_NS + MARGIN_NS);
    int passes = 0;
    int64_t t2 = bench_now_ns();
    while (tm_st.count < n && passes < 1000000) {
        uv_run(&loop, UV_RUN_NOWAIT);
        passes++;
    }
    int64_t t3 = bench_now_ns();
    tm_result(ctx, impl->name, passes, t0, t1, t2, t3);
    for (int i = 0; i < n; i++)
        uv_close((uv_handle_t *)&luv_timers[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if ((err = uv_loop_close(&loop)) < 0)
        bench_fail("uv_loop_close: %s", uv_strerror(err));
    free(luv_timers);
    return 0;
}
#endif

/* ---- libevent ---- */

#if KART_BENCH_HAVE_LIBEVENT
#include <event2/event.h>
#include <event2/event_struct.h>

static struct event *ev_timers;

static void ev_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tm_fired((int)((struct event *)arg - ev_timers));
}

static int run_libevent(const bench_impl *impl, bench_ctx *ctx)
{
    int n = tm_ntimers(ctx);
    struct event_base *base = event_base_new();
    if (!base)
        bench_fail("event_base_new failed");
    tm_begin(n);
    ev_timers = malloc((size_t)n * sizeof(*ev_timers));
    if (!ev_timers)
        bench_fail("out of memory");
    for (int i = 0; i < n; i++)
        evtimer_assign(&ev_timers[i], base, ev_fire, &ev_timers[i]);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = tm_st.timeout[i] / 1000};
        if (evtimer_add(&ev_timers[i], &tv) < 0)
            bench_fail("evtimer_add failed");
    }
    int64_t t1 = bench_now_ns();
    tm_sleep_until(t1 + SPAN_NS + MARGIN_NS);
    int passes = 0;
    int64_t t2 = bench_now_ns();
    while (tm_st.count < n && passes < 1000000) {
        if (event_base_loop(base, EVLOOP_NONBLOCK) < 0)
            bench_fail("event_base_loop failed");
        passes++;
    }
    int64_t t3 = bench_now_ns();
    tm_result(ctx, impl->name, passes, t0, t1, t2, t3);
    event_base_free(base);
    free(ev_timers);
    return 0;
}
#endif

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"timers_per_s", "timer/s", true},
    {"start_ns", "ns/timer", false},
};

static int cases(bench_case *out, bool quick)
{
    out[0] =
        (bench_case){2, {{"timers", quick ? 200000 : 1000000}, {"span_ms", SPAN_NS / 1000000}}};
    return 1;
}

static int impls(bench_impl *out)
{
    int n = 0;
    /* kart on its default backend, which the mode column names. */
    out[n] = (bench_impl){.name = "kart", .run = run_kart};
    kart_loop *loop;
    int err = kart_loop_create(&loop, NULL);
    if (err < 0) {
        out[n].skip = kart_strerror(err);
    } else {
        out[n].modes[0] = kart_loop_backend_name(loop);
        kart_loop_free(loop);
    }
    n++;
#if KART_BENCH_HAVE_LIBUV
    out[n++] = (bench_impl){.name = "libuv", .run = run_libuv};
#else
    out[n++] = (bench_impl){.name = "libuv", .skip = "libuv not installed"};
#endif
#if KART_BENCH_HAVE_LIBEVENT
    out[n++] = (bench_impl){.name = "libevent", .run = run_libevent};
#else
    out[n++] = (bench_impl){.name = "libevent", .skip = "libevent not installed"};
#endif
#if KART_BENCH_HAVE_LIBEV
    out[n++] = (bench_impl){.name = "libev", .modes = {"epoll"}, .run = tm_run_libev};
#else
    out[n++] = (bench_impl){.name = "libev", .skip = "libev not installed (libev-dev)"};
#endif
    return n;
}

const bench_scenario bench_timers = {
    .name = "timers",
    .summary = "start and fire one-shot timers with random deadlines in [0, 50 ms)",
    .baseline = "libuv",
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 0,
    .quick_seconds = 0,
};
