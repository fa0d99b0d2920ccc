/*
 * bench/timers.h — what the timers scenario's implementations share
 * (timers.c): the seeded timeouts, the check that every timer fires once,
 * and the figure. libev's implementation is in a file of its own
 * (timers_libev.c), since its ev.h and libevent's headers define the same
 * names.
 */
#ifndef KART_BENCH_TIMERS_H
#define KART_BENCH_TIMERS_H

#include "harness.h"

#define SPAN_NS 50000000   /* deadlines fall in [0, 50 ms) */
#define MARGIN_NS 20000000 /* beyond two coarse-clock ticks at HZ=100 */

/* What the callbacks check against. */
typedef struct tm_state {
    int n;
    uint32_t *timeout; /* ns, the seeded sequence */
    uint8_t *fired;
    int count;
    int last; /* kart: index of the last timer fired, -1 before the first */
} tm_state;

extern tm_state tm_st;

/* The case's count; a fifth of it for a warm-up or --smoke run. */
int tm_ntimers(const bench_ctx *ctx);
/* Draws the n timeouts (once per n) and clears the record of firings. */
void tm_begin(int n);
/* Timer i fired; bench_fail() if it did before or is not one of ours. */
void tm_fired(int i);
/* Sleeps until CLOCK_MONOTONIC reaches t (ns). */
void tm_sleep_until(int64_t t);
/* Checks that every timer fired and stores the figures. t0..t1: the
 * starting burst; t2..t3: the firing pass, which took `passes` calls. */
void tm_result(bench_ctx *ctx, const char *name, int passes, int64_t t0, int64_t t1, int64_t t2,
               int64_t t3);

#if KART_BENCH_HAVE_LIBEV
/* libev on the backend impl->modes[ctx->mode] names ("epoll", "poll"). */
int tm_run_libev(const bench_impl *impl, bench_ctx *ctx);
#endif

#endif
