/*
 * bench/timers_libev.c — the timers scenario on libev: ev_timer watchers,
 * one-shot, started in one burst and fired by non-blocking ev_run passes,
 * exactly as timers.c runs the others, on the backend the implementation's
 * mode names (epoll; libev's timer heap is the same on every backend).
 */
#include "pingpong.h" /* bench_libev_loop() */
#include "timers.h"

#if KART_BENCH_HAVE_LIBEV
#include <ev.h>
#include <stdlib.h>

static ev_timer *lev_timers;

static void lev_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    if (revents != EV_TIMER)
        bench_fail("timer %d: events 0x%x", (int)(w - lev_timers), (unsigned)revents);
    tm_fired((int)(w - lev_timers));
}

int tm_run_libev(const bench_impl *impl, bench_ctx *ctx)
{
    int n = tm_ntimers(ctx);
    struct ev_loop *loop = bench_libev_loop(impl->modes[ctx->mode]);
    tm_begin(n);
    lev_timers = malloc((size_t)n * sizeof(*lev_timers));
    if (!lev_timers)
        bench_fail("out of memory");
    for (int i = 0; i < n; i++)
        ev_timer_init(&lev_timers[i], lev_fire, tm_st.timeout[i] / 1e9, 0.);
    ev_now_update(loop);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
        ev_timer_start(loop, &lev_timers[i]);
    int64_t t1 = bench_now_ns();
    tm_sleep_until(t1 + SPAN_NS + MARGIN_NS);
    int passes = 0;
    int64_t t2 = bench_now_ns();
    while (tm_st.count < n && passes < 1000000) {
        ev_run(loop, EVRUN_NOWAIT);
        passes++;
    }
    int64_t t3 = bench_now_ns();
    tm_result(ctx, impl->name, passes, t0, t1, t2, t3);
    ev_loop_destroy(loop);
    free(lev_timers);
    return 0;
}
#endif
